/* h1_conn.c: the native client's connections (see h1_conn.h): opening
 * one for a transfer (libuv TCP, Nagle off), reading into the client's
 * one read buffer, and closing. A connection holds a reference to its
 * host while open and counts in h->pending until its close callback frees
 * it.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1_conn.h"

#include "upstream/h1_host.h"
#include "upstream/h1_pool.h"
#include "upstream/h1_resp.h"
#include "upstream/h1_xfer.h"

static void on_conn_close(uv_handle_t *hd)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)hd, h1_conn_t, tcp);
    pg_h1_t *h = c->h;

    pg__free(c);
    pg__h1_pending_done(h);
}

/* Closes at once (the upstream sees the FIN now); the memory goes in the
 * close callback. */
void pg__h1_conn_close(h1_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->x == NULL && pg_list_linked(&c->lnode))
        pg__h1_pool_remove(c);
    if (c->x != NULL) {
        c->x->conn = NULL;
        c->x = NULL;
    }
    pg__free(c->pend);
    c->pend = NULL;
    c->pendn = 0;
    h1_host_t *ho = c->host;
    c->host = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    if (ho != NULL)
        pg__h1_host_unref(ho);
}

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)hd, h1_conn_t, tcp);

    (void)want;
    *buf = uv_buf_init(c->h->rbuf, sizeof c->h->rbuf);
}

void pg__h1_conn_read_start(h1_conn_t *c)
{
    if (!c->reading && !c->closing &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, pg__h1_on_read) == 0)
        c->reading = true;
}

void pg__h1_conn_read_stop(h1_conn_t *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Opens a new connection for x to its host's address x->addr_i. */
void pg__h1_conn_open(h1_xfer_t *x, h1_host_t *ho)
{
    pg_h1_t *h = x->h;
    h1_conn_t *c = pg__calloc(1, sizeof *c);
    int rc;

    if (c == NULL) {
        pg__h1_xfer_fail(x, PG_UPSTREAM_ERROR, "out of memory");
        return;
    }
    c->h = h;
    pg_list_init(&c->hnode);
    pg_list_init(&c->lnode);
    if ((rc = uv_tcp_init(h->loop, &c->tcp)) != 0) {
        pg__free(c);
        pg__h1_xfer_fail(x, PG_UPSTREAM_ERROR, "socket: %s", uv_strerror(rc));
        return;
    }
    h->pending++;
    c->host = ho;
    ho->refs++;
    pg__h1_attach(x, c);
    uv_tcp_nodelay(&c->tcp, 1);
    h->stats->connections_opened++;
    rc = uv_tcp_connect(&c->creq, &c->tcp,
                        (const struct sockaddr *)&ho->addr[x->addr_i],
                        pg__h1_on_connect);
    if (rc != 0) {
        pg__h1_conn_close(c);
        pg__h1_xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED,
                         "connect to %s failed: %s", ho->key, uv_strerror(rc));
    }
}
