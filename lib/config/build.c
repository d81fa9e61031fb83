/* build.c: pg_config_build and the snapshot's lifetime (config.h). Runs
 * the stages in order: YAML tree, ${VAR} expansion, the key tables
 * (sections.c), then the checks that span sections: provider names and
 * types, references between sections, apps, and finally one provider
 * instance per providers[] entry. Every stage reports all its problems.
 * pg_config_build runs off the event loop; ref/unref from any thread. */
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/str.h"
#include "config/diag.h"
#include "config/expand.h"
#include "config/ports.h"
#include "config/schema.h"
#include "config/sections.h"
#include "config/suggest.h"
#include "config/yaml_tree.h"
#include "provider/registry.h"

/* What the stages after parsing share. */
typedef struct build {
    pg_cfg_ctx_t *c;
    pg_cfg_raw_t *raw;
    const pg_provider_registry_t *registry;
    pg_config_t *cfg;
    /* Per raw provider: its vtable (NULL when unusable), whether anything
     * references it, whether it is left out, and its final index. */
    const struct pg_provider_vtable **vt;
    bool *referenced;
    bool *dropped;
    int *index;
} build_t;

/* Reports at "<section>[i]" or "<section>[i].<key>". */
static void report_at(build_t *b, const char *section, size_t i,
                      const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void report_at(build_t *b, const char *section, size_t i,
                      const char *key, const char *fmt, ...)
{
    char msg[PG_CFG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pg_cfg_path_t p;
    pg__cfg_path_init(&p);
    pg__cfg_path_key(&p, pg_str_c(section));
    pg__cfg_path_index(&p, i);
    if (key != NULL)
        pg__cfg_path_key(&p, pg_str_c(key));
    pg__cfg_report(b->c->diag, p.s, "%s", msg);
}

static bool valid_name(pg_str_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        char ch = s.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
              ch == '-'))
            return false;
    }
    return s.n > 0;
}

static const char *clip(pg_arena_t *a, pg_str_t s)
{
    const char *r = pg_arena_cstr(a, pg_str(s.p, s.n > 64 ? 64 : s.n));
    return r ? r : "";
}

/* ---- providers ------------------------------------------------------------ */

static void check_type(build_t *b, size_t i, const pg_cfg_provider_raw_t *p)
{
    char known[256] = "";
    size_t w = 0;
    pg_cfg_suggest_t s;
    b->vt[i] = pg_provider_registry_find(b->registry, p->type);
    if (b->vt[i] != NULL)
        return;
    pg__cfg_suggest_init(&s, p->type);
    for (size_t t = 0; t < b->registry->n; t++) {
        const char *name = b->registry->types[t]->type;
        pg__cfg_suggest_add(&s, pg_str_c(name));
        int k = snprintf(known + w, sizeof(known) - w, "%s%s", t ? ", " : "",
                         name);
        if (k > 0 && (size_t)k < sizeof(known) - w)
            w += (size_t)k;
    }
    char msg[PG_CFG_MSG_MAX];
    int tn = p->type.n > 64 ? 64 : (int)p->type.n;
    if (s.best.p != NULL)
        snprintf(msg, sizeof(msg),
                 "unknown provider type \"%.*s\"; did you mean \"%.*s\"? "
                 "(known types: %s)",
                 tn, p->type.p, (int)s.best.n, s.best.p, known);
    else
        snprintf(msg, sizeof(msg),
                 "unknown provider type \"%.*s\" (known types: %s)", tn,
                 p->type.p, known);
    report_at(b, "providers", i, "type", "%s", msg);
}

/* The most a tls.ca_file may hold (Mozilla's whole bundle is ~220 KiB). */
#define CA_FILE_MAX (4u * 1024 * 1024)

/* Reads tls.ca_file into the snapshot: the TLS library then verifies from
 * memory, so no request ever reads a file on the loop, and a missing or
 * unreadable file is a config error instead of a failure per request.
 * The path is not quoted (free strings never are). */
static int load_ca_file(build_t *b, size_t i, pg_cfg_provider_raw_t *p)
{
    char path[PATH_MAX], err[256];
    char *data = NULL;
    size_t len = 0;
    if (p->tls_ca_file.p == NULL)
        return PG_OK;
    if (p->tls_ca_file.n == 0 || p->tls_ca_file.n >= sizeof(path) ||
        memchr(p->tls_ca_file.p, '\0', p->tls_ca_file.n)) {
        report_at(b, "providers", i, "tls.ca_file",
                  "must be the path of a PEM file");
        return PG_OK;
    }
    memcpy(path, p->tls_ca_file.p, p->tls_ca_file.n);
    path[p->tls_ca_file.n] = '\0';
    int rc = pg__cfg_read_file(path, "the file", CA_FILE_MAX, &data, &len,
                               err, sizeof(err));
    if (rc == PG_ENOMEM)
        return pg__cfg_oom(b->c);
    if (rc != PG_OK) {
        report_at(b, "providers", i, "tls.ca_file", "%s", err);
        return PG_OK;
    }
    if (memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) == NULL)
        report_at(b, "providers", i, "tls.ca_file",
                  "the file holds no PEM certificate");
    p->tls_ca_pem = pg_arena_strdup(b->c->out, pg_str(data, len));
    pg__free(data);
    return p->tls_ca_pem.p == NULL ? pg__cfg_oom(b->c) : PG_OK;
}

/* The checks of one providers[] entry on its own and against the ones
 * before it. */
static void check_provider(build_t *b, size_t i)
{
    const pg_cfg_provider_raw_t *p =
        &((const pg_cfg_provider_raw_t *)b->raw->providers.items)[i];
    pg_arena_t *tmp = b->c->tmp;
    if (p->name.p != NULL && !valid_name(p->name)) {
        report_at(b, "providers", i, "name",
                  "\"%s\" is not a valid name: use letters, digits, \"_\", "
                  "\".\" and \"-\"",
                  clip(tmp, p->name));
    } else if (p->name.p != NULL) {
        for (size_t j = 0; j < i; j++) {
            const pg_cfg_provider_raw_t *o =
                &((const pg_cfg_provider_raw_t *)b->raw->providers.items)[j];
            if (b->raw->providers.ok[j] && pg_str_eq(o->name, p->name)) {
                char msg[96];
                snprintf(msg, sizeof(msg),
                         "duplicate provider name (also providers[%zu])", j);
                report_at(b, "providers", i, "name", "%s", msg);
                break;
            }
        }
    }
    if (p->type.p != NULL)
        check_type(b, i, p);
    if (p->base_url.p != NULL && p->base_url.n > 0 &&
        !pg_str_starts_with(p->base_url, PG_STR("http://")) &&
        !pg_str_starts_with(p->base_url, PG_STR("https://")))
        report_at(b, "providers", i, "base_url",
                  "must start with http:// or https://");
    if (p->max_response_bytes < 1024)
        report_at(b, "providers", i, "max_response_bytes",
                  "must be at least 1KiB");
    bool is_mock = pg_str_eqc(p->type, "mock");
    if (p->mock.present && !is_mock)
        report_at(b, "providers", i, "mock",
                  "mock settings are only valid with type: mock");
    if (p->options.present && is_mock)
        report_at(b, "providers", i, "options",
                  "type mock takes its settings under mock, not options");
}

static void mark_referenced(build_t *b)
{
    const pg_cfg_list_t *pl = &b->raw->providers;
    for (const pg_cfg_ref_t *r = b->c->refs; r != NULL; r = r->next) {
        for (size_t i = 0; i < pl->n; i++) {
            const pg_cfg_provider_raw_t *p =
                &((const pg_cfg_provider_raw_t *)pl->items)[i];
            if (pl->ok[i] && pg_str_eq(p->name, r->name))
                b->referenced[i] = true;
        }
    }
}

/* An unset variable is an error only in a provider something uses; an
 * unused provider with one is left out of the snapshot (it could not work
 * anyway). */
static void settle_deferred(build_t *b, const pg_cfg_deferred_t *df)
{
    for (; df != NULL; df = df->next) {
        if (df->provider >= b->raw->providers.n)
            continue;
        if (b->referenced[df->provider])
            pg__cfg_report_unset(b->c->diag, df->path, df->var);
        else
            b->dropped[df->provider] = true;
    }
}

/* The provider's options: its mock or options block, plus the top-level
 * keys CONFIG.md gives a type (anthropic_version) as one more option. */
static int provider_options(pg_arena_t *a, const pg_cfg_provider_raw_t *p,
                            pg_cfg_kvs_t *out)
{
    *out = pg_str_eqc(p->type, "mock") ? p->mock : p->options;
    if (p->anthropic_version.p == NULL)
        return PG_OK;
    pg_kv_t *kv = pg_arena_calloc(a, out->n + 1, sizeof(*kv));
    if (kv == NULL)
        return PG_ENOMEM;
    if (out->n > 0)
        memcpy(kv, out->kv, out->n * sizeof(*kv));
    kv[out->n].key = PG_STR("anthropic_version");
    kv[out->n].value = p->anthropic_version;
    out->kv = kv;
    out->n++;
    return PG_OK;
}

static int fill_provider(pg_arena_t *a, pg_cfg_provider_t *out,
                         const pg_cfg_provider_raw_t *p,
                         const struct pg_provider_vtable *vt)
{
    pg_provider_config_t *pub = &out->pub;
    pg_cfg_kvs_t all;
    const pg_cfg_kvs_t *opts = &all;
    if (provider_options(a, p, &all) != PG_OK)
        return PG_ENOMEM;
    pub->name = p->name;
    pub->type = p->type;
    pub->api_key = p->api_key.p ? p->api_key : PG_STR("");
    pub->api_key_env = p->api_key_env;
    pub->base_url = p->base_url.p ? p->base_url : PG_STR("");
    pub->headers = p->headers.kv;
    pub->nheaders = p->headers.n;
    pub->options = opts->kv;
    pub->noptions = opts->n;
    pub->connect_timeout_ms = p->timeouts.connect;
    pub->first_byte_timeout_ms = p->timeouts.first_byte;
    pub->idle_timeout_ms = p->timeouts.idle;
    pub->total_timeout_ms = p->timeouts.total;
    pub->max_retries = p->max_retries;
    pub->tls_ca_file = p->tls_ca_file.p ? p->tls_ca_file : PG_STR("");
    pub->tls_ca_pem = p->tls_ca_pem.p ? p->tls_ca_pem : PG_STR("");
    pub->max_response_bytes = p->max_response_bytes;
    pub->http1_curl = p->http1_client == 1;
    out->vt = vt;
    out->models = p->models.s;
    out->nmodels = p->models.n;
    out->supports_responses = p->supports_responses;
    return PG_OK;
}

/* The variable named by a scalar that is one ${VAR} or ${VAR:-default}
 * reference, or an empty slice. */
static pg_str_t env_var_of(pg_str_t v)
{
    if (v.n < 4 || v.p[0] != '$' || v.p[1] != '{' || v.p[v.n - 1] != '}')
        return PG_STR_NULL;
    size_t i = 2;
    while (i < v.n - 1 && (v.p[i] == '_' || (v.p[i] >= 'A' && v.p[i] <= 'Z') ||
                           (v.p[i] >= 'a' && v.p[i] <= 'z') ||
                           (i > 2 && v.p[i] >= '0' && v.p[i] <= '9')))
        i++;
    if (i == 2 || (v.p[i] != '}' && v.p[i] != ':'))
        return PG_STR_NULL;
    return (pg_str_t){v.p + 2, i - 2};
}

/* Before expansion replaces them: which variable each providers[i].api_key
 * names, so a provider can say "set OPENAI_API_KEY" when its key is empty.
 * The names are copied into out (they outlive the YAML tree). */
static int note_key_vars(pg_arena_t *out, const pg_ynode_t *root,
                         pg_str_t **vars, size_t *n)
{
    *vars = NULL;
    *n = 0;
    const pg_ynode_t *seq = NULL;
    for (const pg_yentry_t *e = root && root->kind == PG_YNODE_MAP
                                    ? root->entries : NULL;
         e != NULL; e = e->next) {
        if (pg_str_eqc(e->key, "providers"))
            seq = e->value;
    }
    if (seq == NULL || seq->kind != PG_YNODE_SEQ || seq->n == 0)
        return PG_OK;
    pg_str_t *v = pg_arena_calloc(out, seq->n, sizeof(*v));
    if (v == NULL)
        return PG_ENOMEM;
    size_t i = 0;
    for (const pg_ynode_t *it = seq->items; it != NULL; it = it->next, i++) {
        for (const pg_yentry_t *e = it->kind == PG_YNODE_MAP ? it->entries
                                                             : NULL;
             e != NULL; e = e->next) {
            if (pg_str_eqc(e->key, "api_key") &&
                e->value->kind == PG_YNODE_SCALAR) {
                pg_str_t name = env_var_of(e->value->scalar);
                if (name.n > 0 &&
                    (v[i] = pg_arena_strdup(out, name)).p == NULL)
                    return PG_ENOMEM;
            }
        }
    }
    *vars = v;
    *n = seq->n;
    return PG_OK;
}

/* Kept providers, in document order, with their final indices. */
static int build_providers(build_t *b)
{
    const pg_cfg_list_t *pl = &b->raw->providers;
    size_t kept = 0;
    for (size_t i = 0; i < pl->n; i++)
        kept += pl->ok[i] && !b->dropped[i];
    pg_cfg_provider_t *out =
        pg_arena_calloc(&b->cfg->arena, kept ? kept : 1, sizeof(*out));
    if (out == NULL)
        return pg__cfg_oom(b->c);
    size_t k = 0;
    for (size_t i = 0; i < pl->n; i++) {
        b->index[i] = -1;
        if (!pl->ok[i] || b->dropped[i])
            continue;
        if (fill_provider(&b->cfg->arena, &out[k],
                          &((const pg_cfg_provider_raw_t *)pl->items)[i],
                          b->vt[i]) != PG_OK)
            return pg__cfg_oom(b->c);
        b->index[i] = (int)k++;
    }
    b->cfg->providers = out;
    b->cfg->nproviders = kept;
    return PG_OK;
}

static void resolve_refs(build_t *b)
{
    const pg_config_t *cfg = b->cfg;
    for (const pg_cfg_ref_t *r = b->c->refs; r != NULL; r = r->next) {
        int idx = pg_config_provider_index(cfg, r->name);
        *r->dst = idx;
        if (idx >= 0)
            continue;
        pg_cfg_suggest_t s;
        pg__cfg_suggest_init(&s, r->name);
        for (size_t i = 0; i < cfg->nproviders; i++)
            pg__cfg_suggest_add(&s, cfg->providers[i].pub.name);
        int nn = r->name.n > 64 ? 64 : (int)r->name.n;
        if (s.best.p != NULL)
            pg__cfg_report(b->c->diag, r->path,
                           "no provider is named \"%.*s\"; did you mean "
                           "\"%.*s\"?",
                           nn, r->name.p, (int)s.best.n, s.best.p);
        else
            pg__cfg_report(b->c->diag, r->path,
                           "no provider is named \"%.*s\"", nn, r->name.p);
    }
}

static void destroy_instance(void *ud)
{
    pg_cfg_provider_t *p = ud;
    if (p->instance != NULL)
        p->vt->destroy(p->instance);
    p->instance = NULL;
}

/* The key a provider's message starts with ("chunks: ..."), when it is
 * one of the entry's own options: the problem is then under mock/options. */
static bool message_names_option(const char *msg, const pg_provider_config_t *pub)
{
    const char *colon = strchr(msg, ':');
    if (colon == NULL)
        return false;
    pg_str_t key = pg_str(msg, (size_t)(colon - msg));
    for (size_t i = 0; i < pub->noptions; i++) {
        if (pg_str_eq(pub->options[i].key, key))
            return true;
    }
    return false;
}

static int create_instances(build_t *b)
{
    pg_config_t *cfg = b->cfg;
    for (size_t i = 0; i < b->raw->providers.n; i++) {
        if (b->index[i] < 0 || b->vt[i] == NULL)
            continue;
        /* Cast: the snapshot is built here and immutable afterwards. */
        pg_cfg_provider_t *p = (pg_cfg_provider_t *)&cfg->providers[b->index[i]];
        /* The cleanup is registered before create so that an instance is
         * never left without one. */
        if (pg_arena_on_free(&cfg->arena, destroy_instance, p) != PG_OK)
            return pg__cfg_oom(b->c);
        char err[PG_ERRMSG_SIZE] = "";
        void *self = NULL;
        int rc = p->vt->create(&p->pub, &self, err, sizeof(err));
        if (rc == PG_ENOMEM)
            return pg__cfg_oom(b->c);
        if (rc != PG_OK) {
            const char *where = NULL;
            if (message_names_option(err, &p->pub))
                where = pg_str_eqc(p->pub.type, "mock") ? "mock" : "options";
            report_at(b, "providers", i, where, "%s",
                      err[0] ? err : pg_strerror(rc));
            continue;
        }
        p->instance = self;
    }
    return PG_OK;
}

/* ---- routing and apps ----------------------------------------------------- */

static int build_routing(build_t *b)
{
    const pg_cfg_list_t *rl = &b->raw->routing.rules;
    pg_cfg_rule_t *rules =
        pg_arena_calloc(&b->cfg->arena, rl->n ? rl->n : 1, sizeof(*rules));
    if (rules == NULL)
        return pg__cfg_oom(b->c);
    size_t k = 0;
    for (size_t i = 0; i < rl->n; i++) {
        const pg_cfg_rule_raw_t *r = &((const pg_cfg_rule_raw_t *)rl->items)[i];
        if (!rl->ok[i])
            continue;
        if ((r->exact.p != NULL) == (r->prefix.p != NULL)) {
            report_at(b, "routing.rules", i, NULL,
                      "a rule needs exactly one of model_exact and "
                      "model_prefix");
            continue;
        }
        rules[k].kind = r->exact.p ? PG_RULE_MODEL_EXACT : PG_RULE_MODEL_PREFIX;
        rules[k].match = r->exact.p ? r->exact : r->prefix;
        rules[k].provider = r->provider;
        rules[k].model = r->model.p ? r->model : PG_STR("");
        k++;
    }
    b->cfg->routing.rules = rules;
    b->cfg->routing.nrules = k;
    b->cfg->routing.default_provider = b->raw->routing.default_provider;
    b->cfg->routing.failover = b->raw->routing.failover.items;
    b->cfg->routing.nfailover = b->raw->routing.failover.n;
    return PG_OK;
}

static void check_app_path(build_t *b, size_t i, pg_cfg_app_raw_t *a)
{
    if (a->path.p == NULL)
        return;
    if (a->path.n == 0 || a->path.p[0] != '/')
        report_at(b, "apps", i, "path", "must start with \"/\"");
    else if (a->path.n == 1)
        a->path = PG_STR(""); /* "/" mounts the app at the root */
    else if (a->path.p[a->path.n - 1] == '/')
        report_at(b, "apps", i, "path",
                  "must not end with \"/\" (write \"/\" alone for the "
                  "root)");
}

static int convert_models(build_t *b, const pg_cfg_list_t *ml,
                          pg_cfg_app_t *app)
{
    if (!ml->present)
        return PG_OK;
    pg_cfg_model_t *m =
        pg_arena_calloc(&b->cfg->arena, ml->n ? ml->n : 1, sizeof(*m));
    if (m == NULL)
        return pg__cfg_oom(b->c);
    size_t k = 0;
    for (size_t j = 0; j < ml->n; j++) {
        const pg_cfg_model_raw_t *r = &((const pg_cfg_model_raw_t *)ml->items)[j];
        if (!ml->ok[j] || r->id.p == NULL)
            continue;
        m[k].id = r->id;
        m[k].owned_by = r->owned_by;
        k++;
    }
    app->models = m;
    app->nmodels = k;
    return PG_OK;
}

static bool app_clash(build_t *b, size_t i, const pg_cfg_app_raw_t *a)
{
    const pg_cfg_list_t *al = &b->raw->apps;
    for (size_t j = 0; j < i; j++) {
        const pg_cfg_app_raw_t *o = &((const pg_cfg_app_raw_t *)al->items)[j];
        char msg[96];
        if (!al->ok[j])
            continue;
        if (a->name.p && o->name.p && pg_str_eq(a->name, o->name)) {
            snprintf(msg, sizeof(msg), "duplicate app name (also apps[%zu])", j);
            report_at(b, "apps", i, "name", "%s", msg);
            return true;
        }
        if (a->path.p && o->path.p && pg_str_eq(a->path, o->path)) {
            snprintf(msg, sizeof(msg),
                     "another app is mounted at this path (apps[%zu])", j);
            report_at(b, "apps", i, "path", "%s", msg);
            return true;
        }
    }
    return false;
}

static int build_apps(build_t *b)
{
    const pg_cfg_list_t *al = &b->raw->apps;
    if (!al->present) {
        /* No apps key: the OpenAI API at /openai and the Anthropic API at
         * /anthropic, both routed by the rules. */
        pg_cfg_app_t *app = pg_arena_calloc(&b->cfg->arena, 2, sizeof(*app));
        if (app == NULL)
            return pg__cfg_oom(b->c);
        app[0].name = PG_STR("openai");
        app[0].frontdoor = PG_FRONTDOOR_OPENAI;
        app[0].path = PG_STR("/openai");
        app[0].provider = -1;
        app[0].default_model = PG_STR("");
        app[1].name = PG_STR("anthropic");
        app[1].frontdoor = PG_FRONTDOOR_ANTHROPIC;
        app[1].path = PG_STR("/anthropic");
        app[1].provider = -1;
        app[1].default_model = PG_STR("");
        b->cfg->apps = app;
        b->cfg->napps = 2;
        return PG_OK;
    }
    pg_cfg_app_t *apps =
        pg_arena_calloc(&b->cfg->arena, al->n ? al->n : 1, sizeof(*apps));
    if (apps == NULL)
        return pg__cfg_oom(b->c);
    size_t k = 0;
    for (size_t i = 0; i < al->n; i++) {
        pg_cfg_app_raw_t *a = &((pg_cfg_app_raw_t *)al->items)[i];
        if (!al->ok[i])
            continue;
        check_app_path(b, i, a);
        if (app_clash(b, i, a) || a->name.p == NULL || a->path.p == NULL)
            continue;
        apps[k].name = a->name;
        apps[k].frontdoor = (pg_frontdoor_kind_t)a->frontdoor;
        apps[k].path = a->path;
        apps[k].provider = a->provider;
        apps[k].default_model = a->default_model.p ? a->default_model
                                                   : PG_STR("");
        if (convert_models(b, &a->models, &apps[k]) != PG_OK)
            return PG_ENOMEM;
        k++;
    }
    b->cfg->apps = apps;
    b->cfg->napps = k;
    return PG_OK;
}

/* ---- the whole build ---------------------------------------------------- */

static int finish(pg_cfg_ctx_t *c, pg_cfg_raw_t *raw,
                  const pg_provider_registry_t *registry,
                  const pg_cfg_deferred_t *deferred, pg_config_t *cfg)
{
    size_t np = raw->providers.n ? raw->providers.n : 1;
    build_t b = {.c = c, .raw = raw, .registry = registry, .cfg = cfg};
    b.vt = pg_arena_calloc(c->tmp, np, sizeof(*b.vt));
    b.referenced = pg_arena_calloc(c->tmp, np, sizeof(*b.referenced));
    b.dropped = pg_arena_calloc(c->tmp, np, sizeof(*b.dropped));
    b.index = pg_arena_calloc(c->tmp, np, sizeof(*b.index));
    if (!b.vt || !b.referenced || !b.dropped || !b.index)
        return pg__cfg_oom(c);
    for (size_t i = 0; i < raw->providers.n; i++) {
        if (!raw->providers.ok[i])
            continue;
        check_provider(&b, i);
        if (load_ca_file(&b, i, &((pg_cfg_provider_raw_t *)raw->providers.items)[i]) != PG_OK)
            return PG_ENOMEM;
    }
    mark_referenced(&b);
    settle_deferred(&b, deferred);
    if (build_providers(&b) != PG_OK)
        return PG_ENOMEM;
    resolve_refs(&b);
    if (build_routing(&b) != PG_OK || build_apps(&b) != PG_OK)
        return PG_ENOMEM;
    cfg->server = raw->server;
    if (cfg->server.workers == 0)
        cfg->server.workers = (int)uv_available_parallelism();
    cfg->logging.level = (pg_log_level_t)raw->log_level;
    cfg->logging.json = raw->log_json != 0;
    return create_instances(&b);
}

static pg_config_t *config_new(const char *origin)
{
    pg_config_t *cfg = pg__calloc(1, sizeof(*cfg));
    if (cfg == NULL)
        return NULL;
    atomic_init(&cfg->refs, 1);
    pg_arena_init(&cfg->arena, 0);
    cfg->origin = pg_arena_cstr(&cfg->arena, pg_str_c(origin));
    if (cfg->origin == NULL) {
        pg__free(cfg);
        return NULL;
    }
    return cfg;
}

int pg_config_build(const char *yaml, size_t len, const char *origin,
                    const struct pg_provider_registry *registry,
                    pg_diag_cb diag, void *diag_ud, char *errbuf,
                    pg_config_t **out)
{
    pg_cfg_diag_t d;
    pg_arena_t tmp;
    pg_cfg_raw_t raw;
    pg_ynode_t *root = NULL;
    pg_cfg_deferred_t *deferred = NULL;
    pg_str_t *key_vars = NULL;
    size_t nkey_vars = 0;
    pg_config_t *cfg = NULL;
    pg_cfg_ctx_t c = {.tmp = &tmp, .diag = &d};
    int rc;

    *out = NULL;
    if (errbuf != NULL)
        errbuf[0] = '\0';
    if (origin == NULL)
        origin = "<memory>";
    pg__cfg_diag_init(&d, diag, diag_ud);
    pg_arena_init(&tmp, 0);
    pg__cfg_raw_init(&raw);
    cfg = config_new(origin);
    if (cfg == NULL || (yaml == NULL && len > 0) || registry == NULL) {
        rc = cfg == NULL ? PG_ENOMEM : PG_EINVAL;
        goto out;
    }
    c.out = &cfg->arena;
    pg__cfg_path_init(&c.path);
    rc = pg__ytree_parse(&tmp, yaml ? yaml : "", len, cfg->origin, &d, &root);
    if (rc == PG_OK)
        rc = note_key_vars(&cfg->arena, root, &key_vars, &nkey_vars);
    if (rc == PG_OK)
        rc = pg__cfg_expand_tree(&tmp, root, &d, &deferred);
    if (rc == PG_OK)
        rc = pg__cfg_parse_root(&c, root, &raw);
    for (size_t i = 0; rc == PG_OK && i < raw.providers.n && i < nkey_vars; i++)
        ((pg_cfg_provider_raw_t *)raw.providers.items)[i].api_key_env =
            key_vars[i];
    if (rc == PG_OK)
        rc = finish(&c, &raw, registry, deferred, cfg);
    if (rc == PG_OK && c.oom)
        rc = PG_ENOMEM;
    if (rc == PG_OK && d.count > 0)
        rc = PG_ECONFIG;
out:
    if (rc == PG_OK) {
        *out = cfg;
    } else {
        if (rc == PG_ECONFIG)
            pg__cfg_summary(&d, errbuf);
        else if (errbuf != NULL)
            snprintf(errbuf, PG_ERRMSG_SIZE, "%s: %s", origin,
                     pg_strerror(rc));
        pg_config_unref(cfg);
    }
    pg_arena_destroy(&tmp);
    return rc;
}

pg_config_t *pg_config_ref(pg_config_t *cfg)
{
    if (cfg != NULL)
        atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void pg_config_unref(pg_config_t *cfg)
{
    if (cfg == NULL)
        return;
    /* acq_rel: the last owner must see every write other owners made
     * before their unref (the usual refcount ordering). */
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    pg_arena_destroy(&cfg->arena); /* runs each provider's destroy */
    pg__free(cfg);
}

int pg_config_provider_index(const pg_config_t *cfg, pg_str_t name)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (pg_str_eq(cfg->providers[i].pub.name, name))
            return (int)i;
    }
    return -1;
}
