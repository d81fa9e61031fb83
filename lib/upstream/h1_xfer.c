/* h1_xfer.c: a transfer's way through the native HTTP/1.1 client (see
 * h1_xfer.h): a pooled connection to its host or a new one (after the
 * name resolves, trying each address in turn), the request sent in one
 * writev, one retry on a fresh connection when a reused one turns out
 * dead, and the end: on_done once, the connection pooled or closed, the
 * memory freed in the timer's close callback.
 *
 * Re-entrancy: user callbacks run inside llhttp's callbacks. A transfer
 * canceled from inside its own callback (in_user) or while its parser runs
 * (in_parse) is only marked; the frame that called out frees it when the
 * callback returns. Nothing calls back from inside start/cancel/resume:
 * failures found there go through the transfer's timer at 0 ms.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1_xfer.h"

#include <stdarg.h>
#include <stdio.h>

#include "upstream/h1_conn.h"
#include "upstream/h1_deadline.h"
#include "upstream/h1_host.h"
#include "upstream/h1_pool.h"
#include "upstream/h1_resp.h"

void pg__h1_attach(h1_xfer_t *x, h1_conn_t *c)
{
    x->conn = c;
    c->x = x;
    llhttp_init(&c->parser, HTTP_RESPONSE, &pg__h1_parser_settings);
}

static void on_write(uv_write_t *req, int status);

static void xfer_send(h1_xfer_t *x)
{
    h1_conn_t *c = x->conn;
    uv_buf_t b[2] = {uv_buf_init(x->req, (unsigned)x->reqn),
                     uv_buf_init((char *)x->body.p, (unsigned)x->body.n)};
    unsigned nb = x->body.n > 0 ? 2 : 1;
    int rc;

    pg__h1_xfer_set_phase(x, PH_HEAD);
    pg__h1_conn_read_start(c);
    /* One writev, usually complete: then no write request at all (libuv
     * 1.44 re-arms the socket in epoll after every uv_write, a syscall
     * per request). What the socket did not take goes with uv_write. */
    rc = uv_try_write((uv_stream_t *)&c->tcp, b, nb);
    if (rc == UV_EAGAIN)
        rc = 0;
    if (rc >= 0) {
        size_t done = (size_t)rc;
        if (done >= x->reqn + x->body.n)
            return;
        if (done >= b[0].len) {
            done -= b[0].len;
            b[0] = uv_buf_init((char *)x->body.p + done,
                               (unsigned)(x->body.n - done));
            nb = 1;
        } else {
            b[0].base += done;
            b[0].len -= (unsigned)done;
        }
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, b, nb, on_write);
        if (rc == 0) {
            c->writing = true;
            return;
        }
    }
    pg__h1_xfer_conn_lost(x, "send failed", rc);
}

/* The connection failed before the response began. A reused pooled
 * connection the upstream had closed meanwhile gets one more try on a
 * fresh one, as curl does; anything else ends the transfer. */
void pg__h1_xfer_conn_lost(h1_xfer_t *x, const char *what, int err)
{
    bool retry = x->reused && !x->got_byte && !x->retried;
    h1_host_t *ho = x->conn != NULL ? x->conn->host : NULL;

    if (retry && ho != NULL) {
        x->retried = true;
        x->host = ho; /* pg__h1_xfer_connect takes this reference */
        ho->refs++;
        pg__h1_conn_close(x->conn);
        pg__h1_xfer_set_phase(x, PH_CONNECT);
        pg__h1_xfer_connect(x, false);
        return;
    }
    if (x->conn != NULL)
        pg__h1_conn_close(x->conn);
    if (x->got_byte || err != UV_EOF)
        pg__h1_xfer_fail(x, PG_UPSTREAM_BROKEN, "%s: %s", what,
                         uv_strerror(err));
    else
        pg__h1_xfer_fail(x, PG_UPSTREAM_BROKEN, "empty reply from server");
}

void pg__h1_on_connect(uv_connect_t *req, int status)
{
    h1_conn_t *c = pg_container_of(req, h1_conn_t, creq);
    h1_xfer_t *x = c->x;

    if (status == UV_ECANCELED || c->closing || x == NULL)
        return;
    if (status == 0) {
        c->host->pref = x->addr_i;
        xfer_send(x);
        return;
    }
    h1_host_t *ho = c->host;
    ho->refs++; /* pg__h1_conn_close drops the connection's reference */
    pg__h1_conn_close(c);
    if (++x->tries < ho->naddr) {
        x->addr_i = (x->addr_i + 1) % ho->naddr;
        pg__h1_conn_open(x, ho);
    } else {
        pg__h1_xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED,
                         "connect to %s failed: %s", ho->key,
                         uv_strerror(status));
    }
    pg__h1_host_unref(ho);
}

static void on_write(uv_write_t *req, int status)
{
    h1_conn_t *c = pg_container_of(req, h1_conn_t, wreq);

    c->writing = false;
    if (status == UV_ECANCELED || c->closing)
        return;
    /* Once the response began, the read side tells how it ends (an
     * upstream may answer early and stop reading the request). */
    if (status < 0 && c->x != NULL && !c->x->got_byte)
        pg__h1_xfer_conn_lost(c->x, "send failed", status);
}

/* Finds a connection for x: a pooled one if allowed, else a new one once
 * the host's address is known. */
void pg__h1_xfer_connect(h1_xfer_t *x, bool may_reuse)
{
    h1_host_t *ho = x->host;
    h1_conn_t *c;
    uint64_t now;
    int rc;

    x->host = NULL; /* the reference passes to the connection or waiter */
    x->got_byte = false;
    x->head_raw = 0;
    if (may_reuse && (c = pg__h1_pool_take(ho)) != NULL) {
        pg__h1_host_unref(ho);
        x->reused = true;
        pg__h1_attach(x, c);
        xfer_send(x);
        return;
    }
    x->reused = false;
    now = uv_now(x->h->loop);
    if (!pg__h1_host_fresh(ho, now)) {
        /* A lookup in flight answers this transfer too (one lookup per
         * host, however many wait); without one, a recent failure does. */
        if (!ho->resolving && pg__h1_host_failing(ho, now)) {
            pg__h1_xfer_fail_resolve(x, ho, ho->fail_status);
            pg__h1_host_unref(ho);
            return;
        }
        if ((rc = pg__h1_host_resolve(ho)) != 0) {
            pg__h1_xfer_fail_resolve(x, ho, rc);
            pg__h1_host_unref(ho);
            return;
        }
        x->host = ho;
        pg_list_push_back(&ho->waiters, &x->wnode);
        return;
    }
    x->tries = 0;
    x->addr_i = ho->pref < ho->naddr ? ho->pref : 0;
    pg__h1_conn_open(x, ho);
    pg__h1_host_unref(ho);
}

/* ---- ending ------------------------------------------------------------- */

static void on_xfer_timer_close(uv_handle_t *hd)
{
    h1_xfer_t *x = pg_container_of((uv_timer_t *)hd, h1_xfer_t, timer);
    pg_h1_t *h = x->h;

    pg__free(x);
    pg__h1_pending_done(h);
}

/* Out of every list, its connection pooled (reuse) or closed. */
void pg__h1_xfer_detach(h1_xfer_t *x, bool reuse)
{
    h1_conn_t *c = x->conn;

    if (c != NULL) {
        x->conn = NULL;
        c->x = NULL;
        if (reuse && !c->writing && c->pendn == 0 && !x->h->closing &&
            x->h->max_idle > 0)
            pg__h1_pool_put(c);
        else
            pg__h1_conn_close(c);
    }
    if (x->host != NULL) {
        pg_list_remove(&x->wnode);
        h1_host_t *ho = x->host;
        x->host = NULL;
        pg__h1_host_unref(ho);
    }
    if (pg_list_linked(&x->node)) {
        pg_list_remove(&x->node);
        x->h->stats->transfers_active--;
    }
}

void pg__h1_xfer_destroy(h1_xfer_t *x)
{
    pg__free(x->req);
    x->req = NULL;
    pg__uphead_free(&x->head);
    x->magic = 0;
    uv_close((uv_handle_t *)&x->timer, on_xfer_timer_close);
}

/* on_done once, then free. Outside llhttp and x's own callbacks only. */
void pg__h1_xfer_end(h1_xfer_t *x, pg_upstream_result_t r, const char *msg)
{
    pg__h1_xfer_detach(x, r == PG_UPSTREAM_OK && x->keep_alive && !x->rest);
    x->done = true;
    x->in_user = true;
    x->cbs.on_done(x->ud, r, msg);
    x->in_user = false;
    pg__h1_xfer_destroy(x);
}

/* Records why x ends and ends it, or, inside pg_upstream_start, leaves
 * that to the timer so no callback runs from inside the call. */
void pg__h1_xfer_fail(h1_xfer_t *x, pg_upstream_result_t r,
                      const char *fmt, ...)
{
    va_list ap;

    x->forced = r;
    va_start(ap, fmt);
    vsnprintf(x->errbuf, sizeof x->errbuf, fmt, ap);
    va_end(ap);
    if (x->in_start) {
        x->fail_due = true;
        pg__h1_xfer_arm(x);
        return;
    }
    pg__h1_xfer_end(x, r, x->errbuf);
}

void pg__h1_xfer_cancel_now(h1_xfer_t *x)
{
    pg__h1_xfer_detach(x, false);
    pg__h1_xfer_destroy(x);
}
