/* str.h: helpers on pg_str_t slices. Pure functions; any thread. */
#ifndef PG_BASE_STR_H
#define PG_BASE_STR_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "polyglot/polyglot.h"

static inline pg_str_t pg_str(const char *p, size_t n)
{
    return (pg_str_t){p, n};
}

static inline pg_str_t pg_str_c(const char *s)
{
    return (pg_str_t){s, s ? strlen(s) : 0};
}

static inline bool pg_str_eq(pg_str_t a, pg_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static inline bool pg_str_eqc(pg_str_t a, const char *b)
{
    return pg_str_eq(a, pg_str_c(b));
}

static inline bool pg_str_ieq(pg_str_t a, pg_str_t b)
{
    return a.n == b.n && (a.n == 0 || strncasecmp(a.p, b.p, a.n) == 0);
}

static inline bool pg_str_starts_with(pg_str_t s, pg_str_t prefix)
{
    return s.n >= prefix.n &&
           (prefix.n == 0 || memcmp(s.p, prefix.p, prefix.n) == 0);
}

static inline bool pg_str_empty(pg_str_t s) { return s.n == 0; }

/* Parses a whole slice as a decimal int64 (optional leading '-').
 * Returns PG_OK or PG_EPARSE (empty, junk, overflow). */
int pg_str_to_i64(pg_str_t s, int64_t *out);

/* Trims ASCII spaces and tabs on both ends. */
pg_str_t pg_str_trim(pg_str_t s);

/* True when the two slices are equal, in time that depends only on the
 * length (for secrets). */
bool pg_str_ct_eq(pg_str_t a, pg_str_t b);

#endif
