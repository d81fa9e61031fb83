/* server.c: the listening socket of one worker: accept (with the
 * max_connections cap and TCP_NODELAY), the connection list, drain and
 * close. The server owns its connections and the idle handle that settles
 * them (conn.c); it is freed once the listener and every connection have
 * closed after pg_http_server_close, and then that idle handle.
 *
 * Called only on the server's loop thread. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "http/conn.h"

#define LISTEN_BACKLOG 511

/* Defaults for limits left at 0 (CONFIG.md's server section). */
#define DEF_MAX_HEADER_BYTES (64u * 1024u)
#define DEF_MAX_BODY_BYTES (10u * 1024u * 1024u)
#define DEF_HEADER_TIMEOUT_MS 10000u
#define DEF_IDLE_TIMEOUT_MS 75000u
#define DEF_MAX_QUEUED_BYTES (1024u * 1024u)

static void on_settle_idle_close(uv_handle_t *h)
{
    pg_http_server_t *srv =
        pg_container_of((uv_idle_t *)h, pg_http_server_t, settle_idle);
    void (*cb)(void *) = srv->done_cb;
    void *ud = srv->done_ud;
    pg__free(srv->rbuf);
    pg__free(srv);
    if (cb != NULL)
        cb(ud);
}

static void server_maybe_done(pg_http_server_t *srv)
{
    if (!srv->closing || !srv->listener_closed || srv->nconns > 0 ||
        uv_is_closing((uv_handle_t *)&srv->settle_idle))
        return;
    /* Only a connection can queue a settle, and the last one is gone. */
    uv_close((uv_handle_t *)&srv->settle_idle, on_settle_idle_close);
}

static void on_listener_close(uv_handle_t *h)
{
    pg_http_server_t *srv =
        pg_container_of((uv_tcp_t *)h, pg_http_server_t, listener);
    srv->listener_closed = true;
    server_maybe_done(srv);
}

static void close_listener(pg_http_server_t *srv)
{
    if (!srv->listener_open)
        return;
    srv->listener_open = false;
    uv_close((uv_handle_t *)&srv->listener, on_listener_close);
}

void pg__http_server_conn_gone(pg_http_server_t *srv, struct pg_http_conn *c)
{
    pg_list_remove(&c->node);
    srv->nconns--;
    server_maybe_done(srv);
}

/* A connection over max_connections: accepted only to be closed. */
struct rejected {
    uv_tcp_t tcp;
};

static void on_rejected_close(uv_handle_t *h)
{
    pg__free(pg_container_of((uv_tcp_t *)h, struct rejected, tcp));
}

static void reject_connection(pg_http_server_t *srv)
{
    struct rejected *r = pg__malloc(sizeof(*r));
    if (r == NULL)
        return; /* retried on the next connection event */
    uv_tcp_init(srv->loop, &r->tcp);
    (void)uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&r->tcp);
    uv_close((uv_handle_t *)&r->tcp, on_rejected_close);
}

static void on_connection(uv_stream_t *s, int status)
{
    pg_http_server_t *srv =
        pg_container_of((uv_tcp_t *)s, pg_http_server_t, listener);
    if (status < 0 || !srv->listener_open)
        return;
    if (srv->limits.max_connections > 0 &&
        srv->nconns >= srv->limits.max_connections) {
        reject_connection(srv);
        return;
    }
    struct pg_http_conn *c = pg__calloc(1, sizeof(*c));
    if (c == NULL) {
        reject_connection(srv);
        return;
    }
    c->srv = srv;
    pg_list_init(&c->settle_node);
    pg_list_push_back(&srv->conns, &c->node);
    srv->nconns++;
    uv_timer_init(srv->loop, &c->timer);
    uv_tcp_init(srv->loop, &c->tcp);
    if (uv_accept(s, (uv_stream_t *)&c->tcp) != 0) {
        pg__http_conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    pg__http_conn_start(c);
}

static void on_failed_close(uv_handle_t *h)
{
    pg_http_server_t *srv =
        pg_container_of((uv_tcp_t *)h, pg_http_server_t, listener);
    pg__free(srv->rbuf);
    pg__free(srv);
}

static void apply_defaults(pg_http_limits_t *l)
{
    if (l->max_header_bytes == 0)
        l->max_header_bytes = DEF_MAX_HEADER_BYTES;
    if (l->max_body_bytes == 0)
        l->max_body_bytes = DEF_MAX_BODY_BYTES;
    if (l->header_timeout_ms == 0)
        l->header_timeout_ms = DEF_HEADER_TIMEOUT_MS;
    if (l->idle_timeout_ms == 0)
        l->idle_timeout_ms = DEF_IDLE_TIMEOUT_MS;
    if (l->max_queued_bytes == 0)
        l->max_queued_bytes = DEF_MAX_QUEUED_BYTES;
}

int pg_http_server_new(uv_loop_t *loop, uv_os_sock_t fd,
                       const pg_http_limits_t *limits,
                       const pg_http_handler_t *handler,
                       pg_http_server_t **out, char *err)
{
    *out = NULL;
    if (loop == NULL || limits == NULL || handler == NULL ||
        handler->on_request == NULL) {
        snprintf(err, PG_ERRMSG_SIZE, "http server: missing loop, limits or "
                                      "on_request handler");
        close(fd);
        return PG_EINVAL;
    }
    pg_http_server_t *srv = pg__calloc(1, sizeof(*srv));
    char *rbuf = pg__malloc(PG_HTTP_READ_BUF);
    if (srv == NULL || rbuf == NULL) {
        pg__free(srv);
        pg__free(rbuf);
        snprintf(err, PG_ERRMSG_SIZE, "http server: out of memory");
        close(fd);
        return PG_ENOMEM;
    }
    srv->loop = loop;
    srv->rbuf = rbuf;
    srv->limits = *limits;
    apply_defaults(&srv->limits);
    srv->handler = *handler;
    pg_list_init(&srv->conns);
    pg_list_init(&srv->settle_q);
    int r = uv_tcp_init(loop, &srv->listener);
    if (r != 0) {
        snprintf(err, PG_ERRMSG_SIZE, "http server: uv_tcp_init: %s",
                 uv_err_name(r));
        pg__free(rbuf);
        pg__free(srv);
        close(fd);
        return PG_ESYS;
    }
    r = uv_tcp_open(&srv->listener, fd);
    if (r != 0) {
        snprintf(err, PG_ERRMSG_SIZE, "http server: uv_tcp_open: %s",
                 uv_err_name(r));
        close(fd);
    } else {
        r = uv_listen((uv_stream_t *)&srv->listener, LISTEN_BACKLOG,
                      on_connection);
        if (r != 0)
            snprintf(err, PG_ERRMSG_SIZE, "http server: uv_listen: %s",
                     uv_err_name(r));
    }
    if (r != 0) {
        /* The handle is initialised: its memory goes in its close
         * callback, on the caller's next loop run. */
        uv_close((uv_handle_t *)&srv->listener, on_failed_close);
        return PG_ELISTEN;
    }
    /* Last, so that the failures above have no idle handle to close. */
    uv_idle_init(loop, &srv->settle_idle);
    srv->listener_open = true;
    *out = srv;
    return PG_OK;
}

void pg_http_server_drain(pg_http_server_t *srv)
{
    srv->draining = true;
    close_listener(srv);
    pg_list_t *n, *tmp;
    pg_list_foreach_safe(n, tmp, &srv->conns)
    {
        struct pg_http_conn *c = pg_container_of(n, struct pg_http_conn, node);
        if (c->state == CONN_IDLE && c->pending.n == c->pending_off)
            pg__http_conn_close(c);
    }
}

size_t pg_http_server_connections(const pg_http_server_t *srv)
{
    return srv->nconns;
}

void pg_http_server_close(pg_http_server_t *srv, void (*done_cb)(void *ud),
                          void *ud)
{
    srv->closing = true;
    srv->draining = true;
    srv->done_cb = done_cb;
    srv->done_ud = ud;
    close_listener(srv);
    pg_list_t *n, *tmp;
    pg_list_foreach_safe(n, tmp, &srv->conns)
    {
        struct pg_http_conn *c = pg_container_of(n, struct pg_http_conn, node);
        if (c->state == CONN_ACTIVE)
            pg__http_conn_abort(c);
        else
            pg__http_conn_close(c);
    }
    /* Everything may already be closed (drained earlier). */
    server_maybe_done(srv);
}
