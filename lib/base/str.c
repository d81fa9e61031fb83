/* str.c: the non-inline slice helpers. */
#include "base/str.h"

int pg_str_to_i64(pg_str_t s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    if (s.n == 0)
        return PG_EPARSE;
    if (s.p[0] == '-' || s.p[0] == '+') {
        neg = s.p[0] == '-';
        i = 1;
        if (s.n == 1)
            return PG_EPARSE;
    }
    for (; i < s.n; i++) {
        char c = s.p[i];
        if (c < '0' || c > '9')
            return PG_EPARSE;
        if (v > (UINT64_MAX - 9) / 10)
            return PG_EPARSE;
        v = v * 10 + (uint64_t)(c - '0');
        if (v > (uint64_t)INT64_MAX + (neg ? 1u : 0u))
            return PG_EPARSE;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return PG_OK;
}

pg_str_t pg_str_trim(pg_str_t s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

bool pg_str_ct_eq(pg_str_t a, pg_str_t b)
{
    unsigned char diff = 0;
    if (a.n != b.n)
        return false;
    for (size_t i = 0; i < a.n; i++)
        diff |= (unsigned char)(a.p[i] ^ b.p[i]);
    return diff == 0;
}
