/* h1_req.h: the request side of the native HTTP/1.1 client (private to
 * lib/upstream): an http:// URL taken apart, and the request line plus
 * headers built in one buffer, matching what the curl path sends.
 *
 * Threads: pure functions but for the URL cache, which belongs to one
 * worker; called on the loop thread of the transfer. */
#ifndef PG_UPSTREAM_H1_REQ_H
#define PG_UPSTREAM_H1_REQ_H

#include <stdbool.h>
#include <stddef.h>

#include "upstream/upstream.h"

typedef struct pg_h1_url {
    pg_str_t host;     /* as written, brackets included for IPv6 */
    pg_str_t name;     /* without brackets */
    pg_str_t target;   /* "/path?query", without the fragment */
    unsigned port;
} pg_h1_url_t;

/* Takes a plain http:// URL apart (slices into url). False for anything
 * the native client leaves to curl: another scheme, user:password@, a bad
 * port, control characters or spaces, a name longer than DNS allows. */
bool pg__h1_parse_url(const char *url, pg_h1_url_t *u);

/* The last few URLs taken apart, so that a provider's URL, the same
 * string for every transfer, is parsed once rather than per transfer.
 * Bounded: PG_H1_URL_CACHE_N entries (replaced in turn) of URLs shorter
 * than PG_H1_URL_CACHE_LEN bytes; a longer URL is parsed every time. A
 * zeroed struct is an empty cache. One per worker (pg_h1_t). */
#define PG_H1_URL_CACHE_N 4
#define PG_H1_URL_CACHE_LEN 256

typedef struct pg_h1_url_cache {
    struct pg_h1_url_cached {
        size_t n;       /* strlen(url); 0: an empty slot */
        bool ok;        /* what pg__h1_parse_url said */
        pg_h1_url_t u;  /* slices into url */
        char url[PG_H1_URL_CACHE_LEN];
    } e[PG_H1_URL_CACHE_N];
    unsigned next;      /* the slot a miss fills */
} pg_h1_url_cache_t;

/* pg__h1_parse_url through cache. On a cached URL, *u slices into the
 * cache's copy of it: valid until the next call on the same cache. */
bool pg__h1_parse_url_cached(pg_h1_url_cache_t *cache, const char *url,
                             pg_h1_url_t *u);

/* The request line and headers for o to u in one pg__malloc'd buffer
 * (*out, *outn; the body is sent after it, not copied). *is_head: a HEAD
 * request, whose response has no body. PG_OK or PG_ENOMEM. */
int pg__h1_build_request(const pg_h1_url_t *u, const pg_upstream_opts_t *o,
                         char **out, size_t *outn, bool *is_head);

#endif
