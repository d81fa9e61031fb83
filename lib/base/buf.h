/* buf.h: a growable byte buffer with a hard cap (curl dynbuf's "toobig").
 * Always NUL-terminated after the data when non-empty. One thread at a
 * time. */
#ifndef PG_BASE_BUF_H
#define PG_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "polyglot/polyglot.h"

#define PG_WUR __attribute__((warn_unused_result))

typedef struct pg_buf {
    char *p;     /* owned */
    size_t n;    /* bytes used */
    size_t cap;  /* bytes allocated */
    size_t max;  /* appends past this fail with PG_ETOOBIG */
} pg_buf_t;

void pg_buf_init(pg_buf_t *b, size_t max);
void pg_buf_free(pg_buf_t *b);
/* Keeps the allocation, forgets the data. */
static inline void pg_buf_reset(pg_buf_t *b)
{
    b->n = 0;
    if (b->p)
        b->p[0] = '\0';
}
/* Ensures room for extra more bytes (plus the NUL). */
PG_WUR int pg_buf_reserve(pg_buf_t *b, size_t extra);
PG_WUR int pg_buf_append(pg_buf_t *b, const void *p, size_t n);
PG_WUR int pg_buf_append_str(pg_buf_t *b, pg_str_t s);
PG_WUR int pg_buf_append_cstr(pg_buf_t *b, const char *s);
PG_WUR int pg_buf_append_char(pg_buf_t *b, char c);
PG_WUR int pg_buf_printf(pg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
PG_WUR int pg_buf_vprintf(pg_buf_t *b, const char *fmt, va_list ap);
/* Drops the first n bytes. */
void pg_buf_consume(pg_buf_t *b, size_t n);
static inline pg_str_t pg_buf_str(const pg_buf_t *b)
{
    return (pg_str_t){b->p, b->n};
}

#endif
