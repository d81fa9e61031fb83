/* sections.c: the key tables of every config section (sections.h). Adding
 * a key is one line in a table plus a field in a raw struct. Off the event
 * loop, while a snapshot is built. */
#include "config/sections.h"

#include <stddef.h>

#include "base/str.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)

#define F(k, kind_, T, m) {.key = (k), .kind = (kind_), .off = offsetof(T, m)}
#define F_REQ(k, kind_, T, m)                                                 \
    {.key = (k), .kind = (kind_), .off = offsetof(T, m), .required = true}
#define F_RANGE(k, kind_, T, m, lo, hi)                                       \
    {.key = (k), .kind = (kind_), .off = offsetof(T, m), .min = (lo),         \
     .max = (hi)}
#define F_ENUM(k, T, m, e)                                                    \
    {.key = (k), .kind = PG_CFG_ENUM, .off = offsetof(T, m), .enums = (e)}
#define F_SUB(k, kind_, T, m, t)                                              \
    {.key = (k), .kind = (kind_), .off = offsetof(T, m), .sub = &(t)}
#define F_CUSTOM(k, T, m, fn)                                                 \
    {.key = (k), .kind = PG_CFG_CUSTOM, .off = offsetof(T, m), .parse = (fn)}
#define F_LATER(k, message) {.key = (k), .kind = PG_CFG_UNSUPPORTED, .msg = (message)}
#define F_LATER_OFF(k) {.key = (k), .kind = PG_CFG_UNSUPPORTED, .off_ok = true}

/* ---- server ------------------------------------------------------------ */

static const pg_cfg_field_t server_fields[] = {
    F("host", PG_CFG_CSTR, pg_cfg_server_t, host),
    F_RANGE("port", PG_CFG_INT, pg_cfg_server_t, port, 0, 65535),
    F_RANGE("workers", PG_CFG_INT, pg_cfg_server_t, workers, 0, 256),
    F("max_body_bytes", PG_CFG_SIZE, pg_cfg_server_t, max_body_bytes),
    F("max_header_bytes", PG_CFG_SIZE, pg_cfg_server_t, max_header_bytes),
    F("header_timeout", PG_CFG_DURATION, pg_cfg_server_t, header_timeout_ms),
    F("idle_timeout", PG_CFG_DURATION, pg_cfg_server_t, idle_timeout_ms),
    F("shutdown_timeout", PG_CFG_DURATION, pg_cfg_server_t,
      shutdown_timeout_ms),
    F("sse_keepalive", PG_CFG_DURATION, pg_cfg_server_t, sse_keepalive_ms),
    F_RANGE("busy_poll", PG_CFG_DURATION, pg_cfg_server_t, busy_poll_ms, 0,
            1000),
    F_RANGE("max_connections", PG_CFG_U64, pg_cfg_server_t, max_connections,
            1, 10000000),
    F_LATER("tls", "TLS serving is not implemented in this version"),
};
static const pg_cfg_table_t server_table =
    PG_CFG_TABLE(server_fields, pg_cfg_server_t, NULL);

/* ---- providers ----------------------------------------------------------- */

static const pg_cfg_field_t timeouts_fields[] = {
    F("connect", PG_CFG_DURATION, pg_cfg_timeouts_raw_t, connect),
    F("first_byte", PG_CFG_DURATION, pg_cfg_timeouts_raw_t, first_byte),
    F("idle", PG_CFG_DURATION, pg_cfg_timeouts_raw_t, idle),
    F("total", PG_CFG_DURATION, pg_cfg_timeouts_raw_t, total),
};
static const pg_cfg_table_t timeouts_table =
    PG_CFG_TABLE(timeouts_fields, pg_cfg_timeouts_raw_t, NULL);

/* providers[].tls: how the upstream's certificate is checked (never
 * whether: there is no switch to turn verification off). */
static const pg_cfg_field_t provider_tls_fields[] = {
    F("ca_file", PG_CFG_STR, pg_cfg_provider_raw_t, tls_ca_file),
};
static const pg_cfg_table_t provider_tls_table =
    PG_CFG_TABLE(provider_tls_fields, pg_cfg_provider_raw_t, NULL);

/* Which client serves http:// base URLs (https:// is always libcurl). */
static const pg_cfg_enum_t http1_client_enum[] = {
    {"native", 0}, {"curl", 1}, {NULL, 0}};

static void provider_init(void *item)
{
    pg_cfg_provider_raw_t *p = item;
    p->timeouts.connect = 10 * 1000;
    p->timeouts.first_byte = 120 * 1000;
    p->timeouts.idle = 120 * 1000;
    p->timeouts.total = 15 * 60 * 1000;
    p->max_retries = 2;
    p->max_response_bytes = 64 * MIB;
}

static const pg_cfg_field_t provider_fields[] = {
    F_REQ("name", PG_CFG_STR, pg_cfg_provider_raw_t, name),
    F_REQ("type", PG_CFG_STR, pg_cfg_provider_raw_t, type),
    F("api_key", PG_CFG_STR, pg_cfg_provider_raw_t, api_key),
    F("base_url", PG_CFG_STR, pg_cfg_provider_raw_t, base_url),
    F("headers", PG_CFG_KVS, pg_cfg_provider_raw_t, headers),
    F_SUB("timeouts", PG_CFG_SECTION, pg_cfg_provider_raw_t, timeouts,
          timeouts_table),
    F_RANGE("max_retries", PG_CFG_INT, pg_cfg_provider_raw_t, max_retries, 0,
            10),
    F("supports_responses", PG_CFG_BOOL, pg_cfg_provider_raw_t,
      supports_responses),
    F("models", PG_CFG_STRS, pg_cfg_provider_raw_t, models),
    F("mock", PG_CFG_KVS, pg_cfg_provider_raw_t, mock),
    F("options", PG_CFG_KVS, pg_cfg_provider_raw_t, options),
    F("anthropic_version", PG_CFG_STR, pg_cfg_provider_raw_t,
      anthropic_version),
    /* Its fields live in the entry itself, so the section's offset is 0. */
    {.key = "tls", .kind = PG_CFG_SECTION, .off = 0,
     .sub = &provider_tls_table},
    F("max_response_bytes", PG_CFG_SIZE, pg_cfg_provider_raw_t,
      max_response_bytes),
    F_ENUM("http1_client", pg_cfg_provider_raw_t, http1_client,
           http1_client_enum),
};
static const pg_cfg_table_t provider_table =
    PG_CFG_TABLE(provider_fields, pg_cfg_provider_raw_t, provider_init);

/* ---- routing ------------------------------------------------------------- */

static void rule_init(void *item)
{
    ((pg_cfg_rule_raw_t *)item)->provider = -1;
}

static const pg_cfg_field_t rule_fields[] = {
    F("model_exact", PG_CFG_STR, pg_cfg_rule_raw_t, exact),
    F("model_prefix", PG_CFG_STR, pg_cfg_rule_raw_t, prefix),
    F_REQ("provider", PG_CFG_REF, pg_cfg_rule_raw_t, provider),
    F("model", PG_CFG_STR, pg_cfg_rule_raw_t, model),
};
static const pg_cfg_table_t rule_table =
    PG_CFG_TABLE(rule_fields, pg_cfg_rule_raw_t, rule_init);

/* routing.failover.<primary>[j] in its object form: the provider and the
 * model it is sent instead of the client's. */
static const pg_cfg_field_t hop_fields[] = {
    F_REQ("provider", PG_CFG_REF, pg_cfg_hop_t, provider),
    F("model", PG_CFG_STR, pg_cfg_hop_t, model),
};
static const pg_cfg_table_t hop_table =
    PG_CFG_TABLE(hop_fields, pg_cfg_hop_t, NULL);

/* One entry of a failover list: a provider name (the client's model goes
 * with it, as before entries could name a model), or {provider, model}. */
static int parse_hop(pg_cfg_ctx_t *c, const pg_ynode_t *n, pg_cfg_hop_t *hop)
{
    static const pg_cfg_field_t ref = {.kind = PG_CFG_REF};
    hop->provider = -1;
    hop->model = PG_STR_NULL;
    if (n != NULL && n->kind == PG_YNODE_SCALAR)
        return pg__cfg_field(c, &ref, n, &hop->provider);
    if (n == NULL || n->kind != PG_YNODE_MAP) {
        pg__cfg_report(c->diag, c->path.s,
                       "expected a provider name or a mapping {provider, "
                       "model}, got %s",
                       pg__ynode_kind_name(n));
        return PG_ECONFIG;
    }
    int rc = pg__cfg_apply(c, n, &hop_table, hop);
    if (rc == PG_OK && hop->model.p != NULL && hop->model.n == 0) {
        size_t mark = pg__cfg_path_key(&c->path, PG_STR("model"));
        pg__cfg_report(c->diag, c->path.s,
                       "must not be empty (leave model out to send the "
                       "model the client asked for)");
        pg__cfg_path_restore(&c->path, mark);
    }
    return rc;
}

/* failover: {primary: [next, ...], ...}; every name is a reference. */
static int parse_failover(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    pg_cfg_failover_raw_t *out = dst;
    if (!pg__cfg_want_map(c, n))
        return PG_ECONFIG;
    pg_cfg_failover_t *items = pg_arena_calloc(c->out, n->n, sizeof(*items));
    if (items == NULL)
        return pg__cfg_oom(c);
    out->items = items;
    out->n = 0;
    for (const pg_yentry_t *e = n->entries; e != NULL; e = e->next) {
        pg_cfg_failover_t *f = &items[out->n];
        size_t mark = pg__cfg_path_key(&c->path, e->key);
        int rc = PG_OK;
        if (pg__cfg_want_seq(c, e->value)) {
            pg_cfg_hop_t *next =
                pg_arena_calloc(c->out, e->value->n, sizeof(*next));
            pg_str_t key = pg_arena_strdup(c->out, e->key);
            if (next == NULL || key.p == NULL)
                return pg__cfg_oom(c);
            f->provider = -1;
            rc = pg__cfg_add_ref(c, key, &f->provider);
            size_t i = 0;
            for (const pg_ynode_t *it = e->value->items;
                 it != NULL && rc == PG_OK; it = it->next, i++) {
                size_t m2 = pg__cfg_path_index(&c->path, i);
                rc = parse_hop(c, it, &next[i]);
                pg__cfg_path_restore(&c->path, m2);
                if (rc == PG_ECONFIG)
                    rc = PG_OK;
            }
            f->next = next;
            f->nnext = e->value->n;
            out->n++;
        }
        pg__cfg_path_restore(&c->path, mark);
        if (rc == PG_ENOMEM || c->oom)
            return pg__cfg_oom(c);
    }
    return PG_OK;
}

static const pg_cfg_field_t routing_fields[] = {
    F_SUB("rules", PG_CFG_LIST, pg_cfg_routing_raw_t, rules, rule_table),
    F("default_provider", PG_CFG_REF, pg_cfg_routing_raw_t,
      default_provider),
    F_CUSTOM("failover", pg_cfg_routing_raw_t, failover, parse_failover),
};
static const pg_cfg_table_t routing_table =
    PG_CFG_TABLE(routing_fields, pg_cfg_routing_raw_t, NULL);

/* ---- apps ---------------------------------------------------------------- */

static void model_init(void *item)
{
    ((pg_cfg_model_raw_t *)item)->owned_by = PG_STR("polyglot");
}

static const pg_cfg_field_t model_fields[] = {
    F_REQ("id", PG_CFG_STR, pg_cfg_model_raw_t, id),
    F("owned_by", PG_CFG_STR, pg_cfg_model_raw_t, owned_by),
};
static const pg_cfg_table_t model_table =
    PG_CFG_TABLE(model_fields, pg_cfg_model_raw_t, model_init);

static const pg_cfg_enum_t frontdoor_enum[] = {
    {"openai", PG_FRONTDOOR_OPENAI},
    {"anthropic", PG_FRONTDOOR_ANTHROPIC},
    {NULL, 0},
};

/* The off form of a section that is not built yet: null, or a mapping
 * whose only key is key with one of the allowed values. */
static int off_form(pg_cfg_ctx_t *c, const pg_ynode_t *n, const char *label,
                    const char *key, const char *const *allowed)
{
    if (pg__cfg_is_off(n))
        return PG_OK;
    if (!pg__cfg_want_map(c, n))
        return PG_ECONFIG;
    for (const pg_yentry_t *e = n->entries; e != NULL; e = e->next) {
        size_t mark = pg__cfg_path_key(&c->path, e->key);
        bool ok = false;
        if (pg_str_eqc(e->key, key) && e->value != NULL &&
            e->value->kind == PG_YNODE_SCALAR) {
            for (size_t i = 0; allowed[i] != NULL; i++)
                ok = ok || pg_str_eqc(e->value->scalar, allowed[i]);
        }
        if (!ok && pg_str_eqc(e->key, key))
            pg__cfg_report(c->diag, c->path.s,
                           "%s is not implemented in this version (only "
                           "\"%s: %s\" is accepted)",
                           label, key, allowed[0]);
        else if (!ok)
            pg__cfg_report(c->diag, c->path.s,
                           "%s.%.*s is not implemented in this version",
                           label, (int)(e->key.n > 64 ? 64 : e->key.n),
                           e->key.p);
        pg__cfg_path_restore(&c->path, mark);
    }
    return PG_OK;
}

static const char *const only_false[] = {"false", NULL};
static const char *const only_none[] = {"none", NULL};
static const char *const events_off[] = {"none", "direct", NULL};

static int parse_shadow(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    return off_form(c, n, "shadow", "enabled", only_false);
}

static void app_init(void *item)
{
    pg_cfg_app_raw_t *a = item;
    a->frontdoor = PG_FRONTDOOR_OPENAI;
    a->provider = -1;
}

static const pg_cfg_field_t app_fields[] = {
    F_REQ("name", PG_CFG_STR, pg_cfg_app_raw_t, name),
    F_ENUM("frontdoor", pg_cfg_app_raw_t, frontdoor, frontdoor_enum),
    F_REQ("path", PG_CFG_STR, pg_cfg_app_raw_t, path),
    F("provider", PG_CFG_REF, pg_cfg_app_raw_t, provider),
    F("default_model", PG_CFG_STR, pg_cfg_app_raw_t, default_model),
    F_SUB("models", PG_CFG_LIST, pg_cfg_app_raw_t, models, model_table),
    F_LATER_OFF("enable_responses"),
    F_LATER_OFF("force_store"),
    F_LATER("model_routing",
           "model_routing is not implemented in this version"),
    F_CUSTOM("shadow", pg_cfg_app_raw_t, name, parse_shadow),
};
static const pg_cfg_table_t app_table =
    PG_CFG_TABLE(app_fields, pg_cfg_app_raw_t, app_init);

/* ---- logging ------------------------------------------------------------- */

static const pg_cfg_enum_t level_enum[] = {
    {"error", PG_LOG_ERROR}, {"warn", PG_LOG_WARN},
    {"info", PG_LOG_INFO},   {"debug", PG_LOG_DEBUG},
    {NULL, 0},
};
static const pg_cfg_enum_t format_enum[] = {
    {"json", 1}, {"text", 0}, {NULL, 0},
};

static const pg_cfg_field_t logging_fields[] = {
    F_ENUM("level", pg_cfg_raw_t, log_level, level_enum),
    F_ENUM("format", pg_cfg_raw_t, log_json, format_enum),
};
static const pg_cfg_table_t logging_table =
    PG_CFG_TABLE(logging_fields, pg_cfg_raw_t, NULL);

/* ---- sections known from CONFIG.md but not built yet ------------------- */

static int parse_tenants(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    if (!pg__cfg_want_seq(c, n))
        return PG_ECONFIG;
    /* Ignoring tenants would serve every request without checking a key:
     * refuse the config instead. */
    if (n->n > 0)
        pg__cfg_report(c->diag, c->path.s,
                       "tenants is not implemented in this version (serving "
                       "without the API key checks it asks for would be "
                       "unsafe)");
    return PG_OK;
}

static int parse_admin(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    return off_form(c, n, "admin", "enabled", only_false);
}

static int parse_storage(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    return off_form(c, n, "storage", "type", only_none);
}

static int parse_events(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    return off_form(c, n, "events", "type", events_off);
}

static int parse_policy(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst)
{
    return off_form(c, n, "policy", "type", only_none);
}

/* ---- the root ------------------------------------------------------------ */

/* logging's table writes into the root struct itself (its fields live
 * there), so its offset is 0. */
static const pg_cfg_field_t root_fields[] = {
    F_SUB("server", PG_CFG_SECTION, pg_cfg_raw_t, server, server_table),
    F_SUB("providers", PG_CFG_LIST, pg_cfg_raw_t, providers, provider_table),
    F_SUB("routing", PG_CFG_SECTION, pg_cfg_raw_t, routing, routing_table),
    F_SUB("apps", PG_CFG_LIST, pg_cfg_raw_t, apps, app_table),
    {.key = "logging", .kind = PG_CFG_SECTION, .off = 0,
     .sub = &logging_table},
    F_CUSTOM("tenants", pg_cfg_raw_t, server, parse_tenants),
    F_CUSTOM("admin", pg_cfg_raw_t, server, parse_admin),
    F_CUSTOM("storage", pg_cfg_raw_t, server, parse_storage),
    F_CUSTOM("events", pg_cfg_raw_t, server, parse_events),
    F_CUSTOM("policy", pg_cfg_raw_t, server, parse_policy),
};
static const pg_cfg_table_t root_table =
    PG_CFG_TABLE(root_fields, pg_cfg_raw_t, NULL);

void pg__cfg_raw_init(pg_cfg_raw_t *raw)
{
    memset(raw, 0, sizeof(*raw));
    raw->server.host = "0.0.0.0";
    raw->server.port = 8080;
    raw->server.workers = 0;
    raw->server.max_body_bytes = 10 * MIB;
    raw->server.max_header_bytes = 64 * KIB;
    raw->server.header_timeout_ms = 10 * 1000;
    raw->server.idle_timeout_ms = 75 * 1000;
    raw->server.shutdown_timeout_ms = 30 * 1000;
    raw->server.sse_keepalive_ms = 15 * 1000;
    raw->server.max_connections = 10000;
    raw->routing.default_provider = -1;
    raw->log_level = PG_LOG_INFO;
    raw->log_json = 1;
}

int pg__cfg_parse_root(pg_cfg_ctx_t *c, const pg_ynode_t *root,
                       pg_cfg_raw_t *raw)
{
    if (root == NULL || (root->kind == PG_YNODE_SCALAR && root->null))
        return PG_OK;
    if (root->kind != PG_YNODE_MAP) {
        pg__cfg_report(c->diag, "",
                       "the configuration must be a mapping of sections "
                       "(server, providers, ...), got %s",
                       pg__ynode_kind_name(root));
        return PG_OK;
    }
    return pg__cfg_apply(c, root, &root_table, raw);
}
