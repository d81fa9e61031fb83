/* sections.h: the config's key tables (one per section, see schema.h) and
 * the raw structs they fill: what the YAML said, checked for shape and
 * type but not yet cross-checked (provider names unresolved, providers not
 * created). build.c turns a pg_cfg_raw_t into a pg_config_t. Off the
 * event loop, while a snapshot is built. */
#ifndef PG_CONFIG_SECTIONS_H
#define PG_CONFIG_SECTIONS_H

#include "config/config.h"
#include "config/schema.h"

typedef struct pg_cfg_timeouts_raw {
    uint64_t connect, first_byte, idle, total; /* ms */
} pg_cfg_timeouts_raw_t;

typedef struct pg_cfg_provider_raw {
    pg_str_t name, type, api_key, base_url;
    pg_cfg_kvs_t headers;
    pg_cfg_timeouts_raw_t timeouts;
    int max_retries;
    bool supports_responses;
    pg_cfg_strs_t models;
    pg_cfg_kvs_t mock;    /* type mock only */
    pg_cfg_kvs_t options; /* any other type */
    pg_str_t anthropic_version; /* CONFIG.md; passed on as an option */
    pg_str_t api_key_env;  /* the variable api_key named, before expansion */
    pg_str_t tls_ca_file;  /* tls.ca_file; p NULL: the system CA store */
    pg_str_t tls_ca_pem;   /* its contents, read by build.c */
    uint64_t max_response_bytes;
    int http1_client;      /* http1_client: 0 native, 1 curl */
} pg_cfg_provider_raw_t;

typedef struct pg_cfg_rule_raw {
    pg_str_t exact, prefix, model; /* p NULL: absent */
    int provider;
} pg_cfg_rule_raw_t;

typedef struct pg_cfg_model_raw {
    pg_str_t id, owned_by;
} pg_cfg_model_raw_t;

typedef struct pg_cfg_app_raw {
    pg_str_t name, path, default_model; /* p NULL: absent */
    int frontdoor;                      /* pg_frontdoor_kind_t */
    int provider;                       /* -1: none */
    pg_cfg_list_t models;               /* pg_cfg_model_raw_t */
} pg_cfg_app_raw_t;

typedef struct pg_cfg_failover_raw {
    pg_cfg_failover_t *items; /* in out; indices filled by resolution */
    size_t n;
} pg_cfg_failover_raw_t;

typedef struct pg_cfg_routing_raw {
    pg_cfg_list_t rules; /* pg_cfg_rule_raw_t */
    int default_provider;
    pg_cfg_failover_raw_t failover;
} pg_cfg_routing_raw_t;

typedef struct pg_cfg_raw {
    pg_cfg_server_t server;
    pg_cfg_list_t providers; /* pg_cfg_provider_raw_t */
    pg_cfg_routing_raw_t routing;
    pg_cfg_list_t apps;      /* pg_cfg_app_raw_t */
    int log_level;           /* pg_log_level_t */
    int log_json;            /* 1: json, 0: text */
} pg_cfg_raw_t;

/* Sets every default of CONFIG.md and docs/configuration.md. */
void pg__cfg_raw_init(pg_cfg_raw_t *raw);

/* Parses the document root (NULL or null: all defaults) into raw. PG_OK
 * (problems reported through c->diag) or PG_ENOMEM. */
int pg__cfg_parse_root(pg_cfg_ctx_t *c, const pg_ynode_t *root,
                       pg_cfg_raw_t *raw);

#endif
