/* diag.c: problem reporting and key paths for the config builder. */
#include "config/diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void pg__cfg_diag_init(pg_cfg_diag_t *d, pg_diag_cb cb, void *ud)
{
    d->cb = cb;
    d->ud = ud;
    d->count = 0;
    d->first_path[0] = '\0';
    d->first_msg[0] = '\0';
}

void pg__cfg_report(pg_cfg_diag_t *d, const char *path, const char *fmt, ...)
{
    char msg[PG_CFG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path == NULL)
        path = "";
    if (d->count == 0) {
        snprintf(d->first_path, sizeof(d->first_path), "%s", path);
        snprintf(d->first_msg, sizeof(d->first_msg), "%s", msg);
    }
    d->count++;
    if (d->cb != NULL)
        d->cb(d->ud, path, msg);
}

/* Appends s to out (cap bytes) as far as it fits, keeping the NUL. */
static void cat(char *out, size_t cap, size_t *n, const char *s)
{
    size_t len = strlen(s);
    if (*n + 1 >= cap)
        return;
    if (len > cap - 1 - *n)
        len = cap - 1 - *n;
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
}

void pg__cfg_summary(const pg_cfg_diag_t *d, char *errbuf)
{
    if (errbuf == NULL || d->count == 0)
        return;
    char more[64] = "";
    size_t rest = d->count - 1;
    if (rest > 0)
        snprintf(more, sizeof(more), " (and %zu more problem%s)", rest,
                 rest == 1 ? "" : "s");
    /* The count is kept even when the first message has to be cut. */
    size_t cap = PG_ERRMSG_SIZE - strlen(more), n = 0;
    errbuf[0] = '\0';
    /* A problem with the whole file (a YAML syntax error) has no path:
     * the message stands alone rather than ": message". */
    if (d->first_path[0] != '\0') {
        cat(errbuf, cap, &n, d->first_path);
        cat(errbuf, cap, &n, ": ");
    }
    cat(errbuf, cap, &n, d->first_msg);
    cat(errbuf, PG_ERRMSG_SIZE, &n, more);
}

static void path_append(pg_cfg_path_t *p, const char *s, size_t n)
{
    size_t room = sizeof(p->s) - 1 - p->n;
    if (n > room)
        n = room;
    memcpy(p->s + p->n, s, n);
    p->n += n;
    p->s[p->n] = '\0';
}

size_t pg__cfg_path_key(pg_cfg_path_t *p, pg_str_t key)
{
    size_t mark = p->n;
    if (p->n > 0)
        path_append(p, ".", 1);
    path_append(p, key.p, key.n);
    return mark;
}

size_t pg__cfg_path_index(pg_cfg_path_t *p, size_t i)
{
    size_t mark = p->n;
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "[%zu]", i);
    path_append(p, tmp, (size_t)n);
    return mark;
}

void pg__cfg_path_restore(pg_cfg_path_t *p, size_t mark)
{
    if (mark <= p->n) {
        p->n = mark;
        p->s[mark] = '\0';
    }
}
