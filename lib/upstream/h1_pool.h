/* h1_pool.h: the native client's idle keep-alive connections (h1_pool.c),
 * per host and in one LRU per pg_h1_t, bounded in number and idle time.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_POOL_H
#define PG_UPSTREAM_H1_POOL_H

#include "upstream/h1_int.h"

#define H1_POOL_MAX_IDLE 256
#define H1_POOL_IDLE_MS (60 * 1000)

/* Arms h->pool_timer for the oldest idle connection's expiry, or stops it
 * when the pool is empty or the client closes. */
void pg__h1_pool_arm(pg_h1_t *h);
/* Takes idle c out of its host's list and the LRU. Inline, like
 * pg__h1_pool_take: once per reused connection, smaller than a call. */
static inline void pg__h1_pool_remove(h1_conn_t *c)
{
    pg_list_remove(&c->hnode);
    pg_list_remove(&c->lnode);
    c->h->nidle--;
}
/* Keeps c (no transfer on it) for the next transfer to its host, closing
 * the oldest beyond h->max_idle. */
void pg__h1_pool_put(h1_conn_t *c);
/* The most recently pooled connection to ho, out of the pool; NULL if none. */
static inline h1_conn_t *pg__h1_pool_take(h1_host_t *ho)
{
    if (pg_list_empty(&ho->idle))
        return NULL;
    h1_conn_t *c = pg_container_of(ho->idle.prev, h1_conn_t, hnode);
    pg__h1_pool_remove(c);
    return c;
}

#endif
