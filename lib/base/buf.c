/* buf.c: the capped growable buffer. */
#include "base/buf.h"

#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

void pg_buf_init(pg_buf_t *b, size_t max)
{
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
    b->max = max ? max : (size_t)-1 / 2;
}

void pg_buf_free(pg_buf_t *b)
{
    pg__free(b->p);
    b->p = NULL;
    b->n = 0;
    b->cap = 0;
}

int pg_buf_reserve(pg_buf_t *b, size_t extra)
{
    if (extra > b->max || b->n > b->max - extra)
        return PG_ETOOBIG;
    size_t need = b->n + extra + 1;
    if (need <= b->cap)
        return PG_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = pg__realloc(b->p, cap);
    if (p == NULL)
        return PG_ENOMEM;
    b->p = p;
    b->cap = cap;
    return PG_OK;
}

int pg_buf_append(pg_buf_t *b, const void *p, size_t n)
{
    int rc = pg_buf_reserve(b, n);
    if (rc != PG_OK)
        return rc;
    if (n > 0)
        memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
    return PG_OK;
}

int pg_buf_append_str(pg_buf_t *b, pg_str_t s)
{
    return pg_buf_append(b, s.p, s.n);
}

int pg_buf_append_cstr(pg_buf_t *b, const char *s)
{
    return pg_buf_append(b, s, strlen(s));
}

int pg_buf_append_char(pg_buf_t *b, char c) { return pg_buf_append(b, &c, 1); }

int pg_buf_vprintf(pg_buf_t *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    size_t room = b->cap > b->n ? b->cap - b->n : 0;
    int n = vsnprintf(room ? b->p + b->n : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return PG_EINVAL;
    if ((size_t)n < room) {
        b->n += (size_t)n;
        return PG_OK;
    }
    int rc = pg_buf_reserve(b, (size_t)n);
    if (rc != PG_OK) {
        if (b->p)
            b->p[b->n] = '\0';
        return rc;
    }
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    b->n += (size_t)n;
    return PG_OK;
}

int pg_buf_printf(pg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = pg_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void pg_buf_consume(pg_buf_t *b, size_t n)
{
    if (n >= b->n) {
        pg_buf_reset(b);
        return;
    }
    memmove(b->p, b->p + n, b->n - n);
    b->n -= n;
    b->p[b->n] = '\0';
}
