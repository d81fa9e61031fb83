/* expand.c: environment variable expansion in config values (expand.h).
 * Off the event loop, while a snapshot is built. */
#include "config/expand.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/str.h"

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* Parses "${NAME}" or "${NAME:-default}" starting at s.p[i] == '$' and
 * s.p[i+1] == '{'. On success sets *name, *dflt (p NULL when there is no
 * default) and *end (the index after "}"). */
static int parse_ref(pg_str_t s, size_t i, pg_str_t *name, pg_str_t *dflt,
                     size_t *end)
{
    size_t j = i + 2;
    size_t start = j;
    if (j >= s.n || !name_start(s.p[j]))
        return PG_EPARSE;
    while (j < s.n && name_char(s.p[j]))
        j++;
    *name = pg_str(s.p + start, j - start);
    *dflt = PG_STR_NULL;
    if (j + 1 < s.n && s.p[j] == ':' && s.p[j + 1] == '-') {
        size_t d = j + 2;
        const char *close = memchr(s.p + d, '}', s.n - d);
        if (close == NULL)
            return PG_EPARSE;
        *dflt = pg_str(s.p + d, (size_t)(close - (s.p + d)));
        *end = (size_t)(close - s.p) + 1;
        return PG_OK;
    }
    if (j >= s.n || s.p[j] != '}')
        return PG_EPARSE;
    *end = j + 1;
    return PG_OK;
}

int pg__cfg_expand_str(pg_arena_t *a, pg_str_t in, pg_str_t *out,
                       pg_cfg_expand_err_t *why, char var[PG_CFG_VAR_MAX])
{
    if (in.n == 0 || memchr(in.p, '$', in.n) == NULL) {
        *out = in;
        return PG_OK;
    }
    /* The expansion is built in a scratch buffer and copied into the arena
     * once, so a failed expansion leaves nothing behind. */
    pg_buf_t b;
    int rc = PG_OK;
    pg_buf_init(&b, 0); /* 0: no cap beyond memory */
    for (size_t i = 0; i < in.n && rc == PG_OK;) {
        if (in.p[i] != '$' || i + 1 >= in.n ||
            (in.p[i + 1] != '$' && in.p[i + 1] != '{')) {
            rc = pg_buf_append_char(&b, in.p[i]);
            i++;
            continue;
        }
        if (in.p[i + 1] == '$') {
            rc = pg_buf_append_char(&b, '$');
            i += 2;
            continue;
        }
        pg_str_t name, dflt;
        size_t end;
        if (parse_ref(in, i, &name, &dflt, &end) != PG_OK ||
            name.n >= PG_CFG_VAR_MAX) {
            *why = PG_CFG_EXPAND_SYNTAX;
            rc = PG_ECONFIG;
            break;
        }
        memcpy(var, name.p, name.n);
        var[name.n] = '\0';
        const char *v = getenv(var);
        if (v != NULL && (v[0] != '\0' || dflt.p == NULL)) {
            rc = pg_buf_append_cstr(&b, v);
        } else if (dflt.p != NULL) {
            rc = pg_buf_append_str(&b, dflt);
        } else {
            *why = PG_CFG_EXPAND_UNSET;
            rc = PG_ECONFIG;
            break;
        }
        i = end;
    }
    if (rc == PG_OK) {
        *out = pg_arena_strdup(a, pg_buf_str(&b));
        if (out->p == NULL)
            rc = PG_ENOMEM;
    }
    pg_buf_free(&b);
    return rc;
}

void pg__cfg_report_unset(pg_cfg_diag_t *d, const char *path,
                          const char *var)
{
    pg__cfg_report(d, path,
                   "environment variable %s is not set and the value gives "
                   "no default (write ${%s:-default} for one)",
                   var, var);
}

typedef struct walker {
    pg_arena_t *a;
    pg_cfg_diag_t *d;
    pg_cfg_deferred_t **deferred;
    pg_cfg_path_t path;
} walker_t;

static int expand_scalar(walker_t *w, pg_ynode_t *n, long provider)
{
    pg_cfg_expand_err_t why = 0;
    char var[PG_CFG_VAR_MAX];
    pg_str_t out;
    int rc = pg__cfg_expand_str(w->a, n->scalar, &out, &why, var);
    if (rc == PG_OK) {
        n->scalar = out;
        return PG_OK;
    }
    if (rc != PG_ECONFIG)
        return rc;
    if (why == PG_CFG_EXPAND_SYNTAX) {
        /* The value is not quoted: it may be a secret. */
        pg__cfg_report(w->d, w->path.s,
                       "bad variable reference: write ${NAME} or "
                       "${NAME:-default} (NAME is letters, digits and _), "
                       "or $$ for a literal $");
    } else if (provider < 0) {
        pg__cfg_report_unset(w->d, w->path.s, var);
    } else {
        pg_cfg_deferred_t *df = pg_arena_calloc(w->a, 1, sizeof(*df));
        char *path = pg_arena_cstr(w->a, pg_str(w->path.s, w->path.n));
        if (df == NULL || path == NULL)
            return PG_ENOMEM;
        df->provider = (size_t)provider;
        df->path = path;
        memcpy(df->var, var, sizeof(df->var));
        df->next = *w->deferred;
        *w->deferred = df;
    }
    /* The value is unusable: later stages skip it rather than report a
     * second problem about the same value. */
    n->scalar = PG_STR("");
    n->bad = true;
    return PG_OK;
}

/* provider: the index of the providers[] entry n is under, or -1. */
static int walk(walker_t *w, pg_ynode_t *n, long provider, bool root)
{
    int rc = PG_OK;
    if (n == NULL)
        return PG_OK;
    if (n->kind == PG_YNODE_SCALAR)
        return n->null ? PG_OK : expand_scalar(w, n, provider);
    if (n->kind == PG_YNODE_SEQ) {
        size_t i = 0;
        for (pg_ynode_t *it = n->items; it && rc == PG_OK; it = it->next) {
            size_t mark = pg__cfg_path_index(&w->path, i);
            rc = walk(w, it, provider, false);
            pg__cfg_path_restore(&w->path, mark);
            i++;
        }
        return rc;
    }
    for (pg_yentry_t *e = n->entries; e != NULL && rc == PG_OK; e = e->next) {
        size_t mark = pg__cfg_path_key(&w->path, e->key);
        if (root && pg_str_eqc(e->key, "providers") && e->value != NULL &&
            e->value->kind == PG_YNODE_SEQ) {
            long i = 0;
            for (pg_ynode_t *it = e->value->items; it && rc == PG_OK;
                 it = it->next) {
                size_t m2 = pg__cfg_path_index(&w->path, (size_t)i);
                rc = walk(w, it, i, false);
                pg__cfg_path_restore(&w->path, m2);
                i++;
            }
        } else {
            rc = walk(w, e->value, provider, false);
        }
        pg__cfg_path_restore(&w->path, mark);
    }
    return rc;
}

int pg__cfg_expand_tree(pg_arena_t *a, pg_ynode_t *root, pg_cfg_diag_t *d,
                        pg_cfg_deferred_t **deferred)
{
    walker_t w = {.a = a, .d = d, .deferred = deferred};
    pg__cfg_path_init(&w.path);
    *deferred = NULL;
    return walk(&w, root, -1, true);
}
