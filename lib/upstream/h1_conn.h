/* h1_conn.h: the native client's connections (h1_conn.c): one uv_tcp_t
 * with its llhttp parser, serving one transfer at a time or idle in the
 * pool.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_CONN_H
#define PG_UPSTREAM_H1_CONN_H

#include "upstream/h1_int.h"

/* Closes c at once (out of the pool, off its transfer, its host reference
 * dropped); the memory goes in the close callback. Idempotent. */
void pg__h1_conn_close(h1_conn_t *c);
/* Starts reading (into h->rbuf, parsed by pg__h1_on_read) unless it
 * reads already or closes. */
void pg__h1_conn_read_start(h1_conn_t *c);
void pg__h1_conn_read_stop(h1_conn_t *c);
/* Opens a new connection for x to ho's address x->addr_i; a failure to
 * start fails x. */
void pg__h1_conn_open(h1_xfer_t *x, h1_host_t *ho);

#endif
