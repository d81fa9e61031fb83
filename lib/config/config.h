/* config.h: the validated configuration model (struct pg_config, an
 * immutable refcounted snapshot) and the loader that builds it from YAML.
 *
 * Building (pg_config_build) happens off the event loop: at start, at
 * --check, and (later) on reload. It parses YAML with libyaml, expands
 * ${VAR} and ${VAR:-default} in every string value, checks every key
 * against the schema (unknown keys are errors that name the path and
 * suggest the closest key), converts durations and sizes, resolves
 * provider names to indices, and creates one provider instance per
 * providers[] entry through the provider registry. It reports every
 * problem it finds, each with its path, not only the first.
 *
 * A snapshot is shared by all workers: readers take a reference
 * (pg_config_ref) for as long as they use it, and the last pg_config_unref
 * frees it (and destroys its provider instances). Nothing in it changes
 * after build, so a reload is one atomic pointer swap. */
#ifndef PG_CONFIG_CONFIG_H
#define PG_CONFIG_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/log.h"
#include "polyglot/gateway.h"
#include "polyglot/ports.h"
#include "polyglot/provider.h"

struct pg_provider_registry; /* provider/registry.h */

typedef enum pg_frontdoor_kind {
    PG_FRONTDOOR_OPENAI = 0,
    PG_FRONTDOOR_ANTHROPIC
} pg_frontdoor_kind_t;

typedef struct pg_cfg_server {
    const char *host;            /* "0.0.0.0" */
    int port;                    /* 8080 */
    int workers;                 /* resolved: 0 in YAML -> CPU count */
    uint64_t max_body_bytes;     /* 10MiB */
    uint64_t max_header_bytes;   /* 64KiB: request line + headers */
    uint64_t header_timeout_ms;  /* 10s */
    uint64_t idle_timeout_ms;    /* 75s */
    uint64_t shutdown_timeout_ms;/* 30s */
    uint64_t sse_keepalive_ms;   /* 15s */
    uint64_t busy_poll_ms;       /* 0: off; worker loops spin this long */
    uint64_t max_connections;    /* per worker; 10000 */
} pg_cfg_server_t;

typedef struct pg_cfg_provider {
    pg_provider_config_t pub;               /* what the provider sees */
    const struct pg_provider_vtable *vt;    /* borrowed: registry entry */
    void *instance;                         /* owned: vt->destroy at free */
    const pg_str_t *models;                 /* providers[].models */
    size_t nmodels;
    bool supports_responses;                /* providers[].supports_responses */
} pg_cfg_provider_t;

typedef enum pg_rule_kind {
    PG_RULE_MODEL_EXACT = 0,
    PG_RULE_MODEL_PREFIX
} pg_rule_kind_t;

typedef struct pg_cfg_rule {
    pg_rule_kind_t kind;
    pg_str_t match;   /* the model name or prefix */
    int provider;     /* index into providers */
    pg_str_t model;   /* optional: the model to send instead (rewrite) */
} pg_cfg_rule_t;

/* One provider of a failover chain and the model it is sent. */
typedef struct pg_cfg_hop {
    int provider;     /* index into providers */
    pg_str_t model;   /* empty: the model the client asked for */
} pg_cfg_hop_t;

typedef struct pg_cfg_failover {
    int provider;             /* index of the primary */
    const pg_cfg_hop_t *next; /* routing.failover.<primary>, in order */
    size_t nnext;
} pg_cfg_failover_t;

typedef struct pg_cfg_routing {
    const pg_cfg_rule_t *rules;
    size_t nrules;
    int default_provider; /* -1: none */
    const pg_cfg_failover_t *failover;
    size_t nfailover;
} pg_cfg_routing_t;

typedef struct pg_cfg_model {
    pg_str_t id;
    pg_str_t owned_by;
} pg_cfg_model_t;

typedef struct pg_cfg_app {
    pg_str_t name;
    pg_frontdoor_kind_t frontdoor;
    pg_str_t path;           /* "/openai": starts with '/', no trailing '/';
                                "" for an app mounted at the root */
    int provider;            /* -1: use routing */
    pg_str_t default_model;  /* empty: none */
    const pg_cfg_model_t *models; /* static /v1/models list; NULL: derive */
    size_t nmodels;
} pg_cfg_app_t;

typedef struct pg_cfg_logging {
    pg_log_level_t level;    /* info */
    bool json;               /* format: json (default) | text */
} pg_cfg_logging_t;

struct pg_config {
    atomic_int refs;
    pg_arena_t arena;        /* owns every string and array below */
    pg_cfg_server_t server;
    const pg_cfg_provider_t *providers;
    size_t nproviders;
    pg_cfg_routing_t routing;
    const pg_cfg_app_t *apps;
    size_t napps;
    pg_cfg_logging_t logging;
    const char *origin;      /* "config.yaml" or "<memory>" */
};

/* Builds a snapshot from YAML text. Reports each problem through diag (if
 * not NULL) as (path, message); returns PG_OK with *out holding one
 * reference, or PG_ECONFIG / PG_ENOMEM with *out NULL. errbuf (may be NULL,
 * PG_ERRMSG_SIZE bytes) gets a one-line summary: the first problem and how
 * many more. registry resolves providers[].type. */
int pg_config_build(const char *yaml, size_t len, const char *origin,
                    const struct pg_provider_registry *registry,
                    pg_diag_cb diag, void *diag_ud, char *errbuf,
                    pg_config_t **out);

pg_config_t *pg_config_ref(pg_config_t *cfg);
void pg_config_unref(pg_config_t *cfg);

/* The index of the provider called name, or -1. */
int pg_config_provider_index(const pg_config_t *cfg, pg_str_t name);

#endif
