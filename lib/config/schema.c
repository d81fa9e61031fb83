/* schema.c: the table-driven key parser (schema.h). Off the event loop,
 * while a snapshot is built. */
#include "config/schema.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "base/str.h"
#include "base/time.h"
#include "config/suggest.h"

/* Values quoted in messages are cut here; only values of typed keys (ints,
 * durations, enums...) are ever quoted, never free strings, which may be
 * secrets. */
#define QUOTE_MAX 40

bool pg__cfg_want_map(pg_cfg_ctx_t *c, const pg_ynode_t *n)
{
    if (n != NULL && n->kind == PG_YNODE_MAP)
        return true;
    pg__cfg_report(c->diag, c->path.s, "expected a mapping, got %s",
                   pg__ynode_kind_name(n));
    return false;
}

bool pg__cfg_want_seq(pg_cfg_ctx_t *c, const pg_ynode_t *n)
{
    if (n != NULL && n->kind == PG_YNODE_SEQ)
        return true;
    pg__cfg_report(c->diag, c->path.s, "expected a list, got %s",
                   pg__ynode_kind_name(n));
    return false;
}

bool pg__cfg_want_scalar(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                         const char *what)
{
    if (n != NULL && n->kind == PG_YNODE_SCALAR)
        return true;
    pg__cfg_report(c->diag, c->path.s, "expected %s, got %s", what,
                   pg__ynode_kind_name(n));
    return false;
}

bool pg__cfg_is_off(const pg_ynode_t *n)
{
    return n == NULL ||
           (n->kind == PG_YNODE_SCALAR &&
            (n->null || pg_str_ieq(n->scalar, PG_STR("false"))));
}

int pg__cfg_add_ref(pg_cfg_ctx_t *c, pg_str_t name, int *dst)
{
    pg_cfg_ref_t *r = pg_arena_calloc(c->tmp, 1, sizeof(*r));
    char *path = pg_arena_cstr(c->tmp, pg_str(c->path.s, c->path.n));
    if (r == NULL || path == NULL)
        return pg__cfg_oom(c);
    r->name = name;
    r->path = path;
    r->dst = dst;
    r->next = c->refs;
    c->refs = r;
    return PG_OK;
}

void pg__cfg_unknown_key(pg_cfg_ctx_t *c, pg_str_t key,
                         const pg_cfg_table_t *t)
{
    pg_cfg_suggest_t s;
    pg__cfg_suggest_init(&s, key);
    for (size_t i = 0; i < t->nfields; i++)
        pg__cfg_suggest_add(&s, pg_str_c(t->fields[i].key));
    int kn = key.n > 64 ? 64 : (int)key.n;
    if (s.best.p != NULL)
        pg__cfg_report(c->diag, c->path.s,
                       "unknown key \"%.*s\"; did you mean \"%.*s\"?", kn,
                       key.p, (int)s.best.n, s.best.p);
    else
        pg__cfg_report(c->diag, c->path.s, "unknown key \"%.*s\"", kn,
                       key.p);
}

static void report_bad(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                       const char *expected)
{
    int qn = n->scalar.n > QUOTE_MAX ? QUOTE_MAX : (int)n->scalar.n;
    pg__cfg_report(c->diag, c->path.s, "expected %s, got \"%.*s%s\"",
                   expected, qn, n->scalar.p,
                   n->scalar.n > QUOTE_MAX ? "..." : "");
}

static int parse_str(pg_cfg_ctx_t *c, const pg_ynode_t *n, pg_str_t *out)
{
    if (n != NULL && n->bad)
        return PG_ECONFIG; /* reported by the expansion */
    if (!pg__cfg_want_scalar(c, n, "a string"))
        return PG_ECONFIG;
    *out = pg_arena_strdup(c->out, n->scalar);
    return out->p == NULL ? pg__cfg_oom(c) : PG_OK;
}

static int parse_i64(pg_cfg_ctx_t *c, const pg_cfg_field_t *f,
                     const pg_ynode_t *n, int64_t *out)
{
    char what[96];
    snprintf(what, sizeof(what), "an integer from %" PRId64 " to %" PRId64,
             f->min, f->max);
    if (!pg__cfg_want_scalar(c, n, what))
        return PG_ECONFIG;
    if (pg_str_to_i64(n->scalar, out) != PG_OK || *out < f->min ||
        *out > f->max) {
        report_bad(c, n, what);
        return PG_ECONFIG;
    }
    return PG_OK;
}

static int parse_bool(pg_cfg_ctx_t *c, const pg_ynode_t *n, bool *out)
{
    if (!pg__cfg_want_scalar(c, n, "true or false"))
        return PG_ECONFIG;
    if (pg_str_ieq(n->scalar, PG_STR("true")))
        *out = true;
    else if (pg_str_ieq(n->scalar, PG_STR("false")))
        *out = false;
    else {
        report_bad(c, n, "true or false");
        return PG_ECONFIG;
    }
    return PG_OK;
}

static int parse_unit(pg_cfg_ctx_t *c, const pg_ynode_t *n, bool duration,
                      uint64_t *out)
{
    const char *what = duration
                           ? "a duration such as 250ms, 30s, 5m or 1h"
                           : "a size such as 512, 64KiB, 10MiB or 1GiB";
    if (!pg__cfg_want_scalar(c, n, what))
        return PG_ECONFIG;
    int rc = duration ? pg_parse_duration_ms(n->scalar, out)
                      : pg_parse_size(n->scalar, out);
    if (rc != PG_OK) {
        report_bad(c, n, what);
        return PG_ECONFIG;
    }
    return PG_OK;
}

static int parse_enum(pg_cfg_ctx_t *c, const pg_cfg_field_t *f,
                      const pg_ynode_t *n, int *out)
{
    char what[160] = "one of ";
    size_t w = strlen(what);
    for (const pg_cfg_enum_t *e = f->enums; e->name != NULL; e++) {
        int k = snprintf(what + w, sizeof(what) - w, "%s%s",
                         e == f->enums ? "" : ", ", e->name);
        if (k > 0 && (size_t)k < sizeof(what) - w)
            w += (size_t)k;
    }
    if (!pg__cfg_want_scalar(c, n, what))
        return PG_ECONFIG;
    for (const pg_cfg_enum_t *e = f->enums; e->name != NULL; e++) {
        if (pg_str_eqc(n->scalar, e->name)) {
            *out = e->value;
            return PG_OK;
        }
    }
    report_bad(c, n, what);
    return PG_ECONFIG;
}

static int parse_strs(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                      pg_cfg_strs_t *out)
{
    if (!pg__cfg_want_seq(c, n))
        return PG_ECONFIG;
    pg_str_t *s = pg_arena_calloc(c->out, n->n, sizeof(*s));
    if (s == NULL)
        return pg__cfg_oom(c);
    size_t i = 0, kept = 0;
    for (const pg_ynode_t *it = n->items; it != NULL; it = it->next, i++) {
        size_t mark = pg__cfg_path_index(&c->path, i);
        int rc = parse_str(c, it, &s[kept]);
        pg__cfg_path_restore(&c->path, mark);
        if (rc == PG_ENOMEM)
            return rc;
        if (rc == PG_OK)
            kept++;
    }
    out->s = s;
    out->n = kept;
    out->present = true;
    return PG_OK;
}

/* A mapping of scalars, flattened to string pairs (headers, mock and
 * provider options). */
static int parse_kvs(pg_cfg_ctx_t *c, const pg_ynode_t *n, pg_cfg_kvs_t *out)
{
    if (!pg__cfg_want_map(c, n))
        return PG_ECONFIG;
    pg_kv_t *kv = pg_arena_calloc(c->out, n->n, sizeof(*kv));
    if (kv == NULL)
        return pg__cfg_oom(c);
    size_t kept = 0;
    for (const pg_yentry_t *e = n->entries; e != NULL; e = e->next) {
        size_t mark = pg__cfg_path_key(&c->path, e->key);
        int rc = PG_OK;
        if (e->value != NULL && e->value->kind == PG_YNODE_SCALAR &&
            e->value->null) {
            kv[kept].value = PG_STR(""); /* "key:" alone: empty */
        } else {
            rc = parse_str(c, e->value, &kv[kept].value);
        }
        pg__cfg_path_restore(&c->path, mark);
        if (rc == PG_ENOMEM)
            return rc;
        if (rc != PG_OK)
            continue;
        kv[kept].key = pg_arena_strdup(c->out, e->key);
        if (kv[kept].key.p == NULL)
            return pg__cfg_oom(c);
        kept++;
    }
    out->kv = kv;
    out->n = kept;
    out->present = true;
    return PG_OK;
}

static int parse_list(pg_cfg_ctx_t *c, const pg_cfg_table_t *t,
                      const pg_ynode_t *n, pg_cfg_list_t *out)
{
    if (!pg__cfg_want_seq(c, n))
        return PG_ECONFIG;
    unsigned char *items = pg_arena_calloc(c->tmp, n->n ? n->n : 1,
                                           t->item_size);
    bool *ok = pg_arena_calloc(c->tmp, n->n ? n->n : 1, sizeof(*ok));
    if (items == NULL || ok == NULL)
        return pg__cfg_oom(c);
    out->items = items;
    out->ok = ok;
    out->n = n->n;
    out->present = true;
    size_t i = 0;
    for (const pg_ynode_t *it = n->items; it != NULL; it = it->next, i++) {
        void *item = items + i * t->item_size;
        if (t->init != NULL)
            t->init(item);
        size_t mark = pg__cfg_path_index(&c->path, i);
        int rc = PG_OK;
        if (pg__cfg_want_map(c, it)) {
            ok[i] = true;
            rc = pg__cfg_apply(c, it, t, item);
        }
        pg__cfg_path_restore(&c->path, mark);
        if (rc == PG_ENOMEM)
            return rc;
    }
    return PG_OK;
}

static int parse_unsupported(pg_cfg_ctx_t *c, const pg_cfg_field_t *f,
                             const pg_ynode_t *n)
{
    if (f->off_ok && pg__cfg_is_off(n))
        return PG_OK;
    if (f->msg != NULL)
        pg__cfg_report(c->diag, c->path.s, "%s", f->msg);
    else
        pg__cfg_report(c->diag, c->path.s,
                       "%s is not implemented in this version", f->key);
    return PG_ECONFIG;
}

int pg__cfg_field(pg_cfg_ctx_t *c, const pg_cfg_field_t *f,
                  const pg_ynode_t *n, void *base)
{
    void *dst = (unsigned char *)base + f->off;
    int64_t v = 0;
    uint64_t u = 0;
    int rc;
    if (n != NULL && n->bad)
        return PG_ECONFIG; /* reported by the expansion */
    switch (f->kind) {
    case PG_CFG_STR: return parse_str(c, n, dst);
    case PG_CFG_CSTR: {
        pg_str_t s;
        rc = parse_str(c, n, &s);
        if (rc == PG_OK)
            *(const char **)dst = s.p;
        return rc;
    }
    case PG_CFG_INT:
        rc = parse_i64(c, f, n, &v);
        if (rc == PG_OK)
            *(int *)dst = (int)v;
        return rc;
    case PG_CFG_U64:
        rc = parse_i64(c, f, n, &v);
        if (rc == PG_OK)
            *(uint64_t *)dst = (uint64_t)v;
        return rc;
    case PG_CFG_BOOL: return parse_bool(c, n, dst);
    case PG_CFG_DURATION:
    case PG_CFG_SIZE:
        rc = parse_unit(c, n, f->kind == PG_CFG_DURATION, &u);
        if (rc == PG_OK && f->max > 0 && u > (uint64_t)f->max) {
            char what[96];
            snprintf(what, sizeof(what), "%s of at most %" PRId64 "%s",
                     f->kind == PG_CFG_DURATION ? "a duration" : "a size",
                     f->max, f->kind == PG_CFG_DURATION ? "ms" : " bytes");
            report_bad(c, n, what);
            return PG_ECONFIG;
        }
        if (rc == PG_OK)
            *(uint64_t *)dst = u;
        return rc;
    case PG_CFG_ENUM: return parse_enum(c, f, n, dst);
    case PG_CFG_STRS: return parse_strs(c, n, dst);
    case PG_CFG_KVS: return parse_kvs(c, n, dst);
    case PG_CFG_SECTION:
        if (!pg__cfg_want_map(c, n))
            return PG_ECONFIG;
        return pg__cfg_apply(c, n, f->sub, dst);
    case PG_CFG_LIST: return parse_list(c, f->sub, n, dst);
    case PG_CFG_REF: {
        pg_str_t name;
        rc = parse_str(c, n, &name);
        if (rc != PG_OK)
            return rc;
        return pg__cfg_add_ref(c, name, dst);
    }
    case PG_CFG_CUSTOM: return f->parse(c, n, dst);
    case PG_CFG_UNSUPPORTED: return parse_unsupported(c, f, n);
    }
    return PG_ECONFIG;
}

static bool absent(const pg_ynode_t *n)
{
    return n == NULL || (n->kind == PG_YNODE_SCALAR && n->null);
}

int pg__cfg_apply(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                  const pg_cfg_table_t *t, void *base)
{
    bool seen[64] = {false};
    if (!pg__cfg_want_map(c, n))
        return PG_OK;
    for (const pg_yentry_t *e = n->entries; e != NULL; e = e->next) {
        size_t mark = pg__cfg_path_key(&c->path, e->key);
        size_t i = 0;
        while (i < t->nfields && !pg_str_eqc(e->key, t->fields[i].key))
            i++;
        int rc = PG_OK;
        if (i == t->nfields) {
            /* The path names the key itself: "apps[1].fronddoor". */
            pg__cfg_unknown_key(c, e->key, t);
        } else if (!absent(e->value)) {
            /* A null value ("key:" or "key: ~") reads as absent. */
            if (i < 64)
                seen[i] = true;
            rc = pg__cfg_field(c, &t->fields[i], e->value, base);
        }
        pg__cfg_path_restore(&c->path, mark);
        if (rc == PG_ENOMEM || c->oom)
            return PG_ENOMEM;
    }
    for (size_t i = 0; i < t->nfields && i < 64; i++) {
        if (t->fields[i].required && !seen[i]) {
            size_t mark =
                pg__cfg_path_key(&c->path, pg_str_c(t->fields[i].key));
            pg__cfg_report(c->diag, c->path.s, "is required");
            pg__cfg_path_restore(&c->path, mark);
        }
    }
    return PG_OK;
}
