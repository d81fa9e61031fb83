/* ports.h: the five port vtables (config, auth, storage, events, policy)
 * through which a host replaces a part of the gateway. Every built-in
 * adapter implements the same vtable a host would. Each port instance is a
 * `{const vtable *vt; void *self;}` pair; the gateway calls a slot through
 * its inline wrappers, never through vt-> directly.
 *
 * Calls are synchronous. auth and policy run on a worker loop unless the
 * vtable sets blocking = true (then on the threadpool); storage and events
 * never run on a loop (a writer thread / the threadpool). Each slot returns
 * PG_OK, PG_DECLINED (a chain moves to the next entry) or a negative pg_err.
 * New slots are only ever added at the end, with a new ABI number.
 *
 * In this release the gateway drives the config port (file and in-memory
 * YAML adapters); auth, storage, events and policy are declared so that
 * hosts can build against them, and are wired in by later releases. */
#ifndef POLYGLOT_PORTS_H
#define POLYGLOT_PORTS_H

#include "polyglot/polyglot.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PG_PORT_ABI_1 1u

/** A validated, immutable config snapshot (refcounted by the gateway). */
typedef struct pg_config pg_config_t;

/* ---- config port -------------------------------------------------------- */

/** What a config port hands the gateway: YAML text. The port owns the
 * bytes until the next load or destroy. origin names them in errors
 * ("config.yaml", "<memory>"). */
typedef struct pg_config_source {
    const char *yaml;
    size_t len;
    const char *origin;
} pg_config_source_t;

/** Called by a config port when its source changed and should be loaded. */
typedef void (*pg_config_changed_cb)(void *ud);

struct pg_config_vtable {
    uint32_t abi;     /* PG_PORT_ABI_1 */
    const char *name; /* "file", "yaml" */
    bool blocking;    /* load does file or network I/O */
    int (*init)(void *self);
    void (*destroy)(void *self);
    /* Fills out with the current YAML. Errors: a negative pg_err and a
     * message in err. */
    int (*load)(void *self, pg_config_source_t *out, char *err, size_t errlen);
    /* Optional (NULL: nothing to watch). Starts calling cb when the source
     * changes, from any thread. */
    int (*watch)(void *self, pg_config_changed_cb cb, void *ud);
};
typedef struct pg_config_port {
    const struct pg_config_vtable *vt;
    void *self;
} pg_config_port_t;

/* ---- auth port ------------------------------------------------------------ */

typedef struct pg_auth_req {
    pg_str_t app;           /* apps[].name */
    pg_str_t frontdoor;     /* "openai" | "anthropic" */
    pg_str_t api_key;       /* the raw key the client sent: compare in
                               constant time, never log */
    pg_str_t remote_addr;
    const pg_kv_t *headers;
    size_t nheaders;
} pg_auth_req_t;

typedef struct pg_auth_result {
    char tenant_id[128];    /* NUL-terminated */
    char key_id[128];       /* a loggable id for the key, never the key */
} pg_auth_result_t;

struct pg_auth_vtable {
    uint32_t abi;
    const char *name;
    bool blocking;
    int (*init)(void *self, const pg_config_t *cfg);
    void (*destroy)(void *self);
    /* PG_OK with out filled, PG_DECLINED for "not my key", or a negative
     * error (PG_ENOENT: unknown key, answered with 401). */
    int (*check)(void *self, const pg_auth_req_t *req, pg_auth_result_t *out);
};
typedef struct pg_auth {
    const struct pg_auth_vtable *vt;
    void *self;
} pg_auth_t;

/* ---- policy port -------------------------------------------------------- */

typedef struct pg_policy_req {
    pg_str_t tenant_id;
    pg_str_t app;
    pg_str_t model;
    int64_t estimated_tokens;
} pg_policy_req_t;

typedef struct pg_policy_result {
    bool allowed;
    int retry_after_s;       /* when refused */
    char reason[128];        /* shown to the client when refused */
} pg_policy_result_t;

typedef struct pg_policy_usage {
    pg_str_t tenant_id;
    pg_str_t model;
    int64_t input_tokens;
    int64_t output_tokens;
} pg_policy_usage_t;

struct pg_policy_vtable {
    uint32_t abi;
    const char *name;
    bool blocking;
    int (*init)(void *self, const pg_config_t *cfg);
    void (*destroy)(void *self);
    int (*admit)(void *self, const pg_policy_req_t *req, pg_policy_result_t *out);
    /* A request finished: account what it used, release its slot. */
    void (*release)(void *self, const pg_policy_usage_t *usage);
};
typedef struct pg_policy {
    const struct pg_policy_vtable *vt;
    void *self;
} pg_policy_t;

/* ---- events port ------------------------------------------------------ */

typedef struct pg_interaction {
    pg_str_t id;             /* request id */
    pg_str_t tenant_id;
    pg_str_t app;
    pg_str_t frontdoor;
    pg_str_t provider;
    pg_str_t requested_model;
    pg_str_t served_model;
    int status;
    bool stream;
    int64_t received_unix_ms;
    int64_t first_byte_us;
    int64_t total_us;
    int64_t upstream_us;
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
    int64_t reasoning_tokens;
    pg_str_t error;
    pg_str_t request_body;   /* as received; empty when not recorded */
    pg_str_t response_body;  /* as sent */
} pg_interaction_t;

struct pg_events_vtable {
    uint32_t abi;
    const char *name;
    int (*init)(void *self, const pg_config_t *cfg);
    void (*destroy)(void *self);
    /* Called on the writer thread; the interaction is borrowed. */
    int (*publish)(void *self, const pg_interaction_t *it);
};
typedef struct pg_events {
    const struct pg_events_vtable *vt;
    void *self;
} pg_events_t;

/* ---- storage port ------------------------------------------------------ */

typedef struct pg_stored_response {
    pg_str_t id;             /* Responses API id */
    pg_str_t tenant_id;
    pg_str_t previous_id;
    pg_str_t input_items;    /* JSON */
    pg_str_t output_items;   /* JSON */
    int64_t created_unix_ms;
} pg_stored_response_t;

/** Receives a row a get() found; the row is borrowed for the call. */
typedef void (*pg_storage_row_cb)(void *ud, const pg_stored_response_t *row);

struct pg_storage_vtable {
    uint32_t abi;
    const char *name;
    int (*init)(void *self, const pg_config_t *cfg);
    void (*destroy)(void *self);
    int (*put_interactions)(void *self, const pg_interaction_t *items, size_t n);
    int (*put_response)(void *self, const pg_stored_response_t *row);
    /* PG_OK after calling cb once, PG_ENOENT if absent. */
    int (*get_response)(void *self, pg_str_t tenant_id, pg_str_t id,
                        pg_storage_row_cb cb, void *ud);
};
typedef struct pg_storage {
    const struct pg_storage_vtable *vt;
    void *self;
} pg_storage_t;

#ifdef __cplusplus
}
#endif

#endif
