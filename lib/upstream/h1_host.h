/* h1_host.h: the native client's hosts and names (h1_host.c): a table of
 * host:port entries per pg_h1_t, each with its resolved addresses, its
 * idle connections (h1_pool.h) and the transfers waiting for its lookup.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_HOST_H
#define PG_UPSTREAM_H1_HOST_H

#include "upstream/h1_int.h"

/* How long a name that failed to resolve fails its transfers at once,
 * without a new lookup. Each lookup takes one of libuv's threadpool
 * threads (4 by default, shared with file and other work) for as long as
 * the resolver takes, up to its own timeouts of several seconds; without
 * this a misconfigured or failing name under load queues a lookup per
 * request and starves the pool. 5 s keeps that to one lookup per name
 * every 5 s, yet is short next to an operator's fix or a resolver's
 * recovery, and matches how long a failed refresh keeps serving an old
 * answer (H1_DNS_STALE_MS). */
#define H1_DNS_NEG_MS (5 * 1000)

/* The host for u's name and port, added to h's table (and counted in
 * h->pending) if new. NULL when out of memory. Takes no reference. */
h1_host_t *pg__h1_host_get(pg_h1_t *h, const pg_h1_url_t *u);
/* Takes ho out of the table and frees it; nothing may hold it. */
void pg__h1_host_free(h1_host_t *ho);
/* Drops a reference; once the client closes, the last one frees ho.
 * Inline: twice per transfer, and the body is a test. */
static inline void pg__h1_host_unref(h1_host_t *ho)
{
    if (--ho->refs == 0 && !ho->resolving && ho->h->closing)
        pg__h1_host_free(ho);
}
/* ho's addresses serve at now without a lookup: an IP literal, an answer
 * younger than H1_DNS_TTL_MS, or an older one while a refresh failed. */
bool pg__h1_host_fresh(const h1_host_t *ho, uint64_t now);
/* Inside the negative window of a failed lookup (see H1_DNS_NEG_MS). */
bool pg__h1_host_failing(const h1_host_t *ho, uint64_t now);
/* Starts a lookup unless one runs; its answer connects or fails the
 * transfers on ho->waiters. PG_OK or a libuv error. */
int pg__h1_host_resolve(h1_host_t *ho);
/* Fails x because ho's name did not resolve (status: libuv's, 0 for no
 * usable address). */
void pg__h1_xfer_fail_resolve(h1_xfer_t *x, const h1_host_t *ho, int status);

#endif
