/* conn.c: the life of one HTTP connection: reads, the pump that feeds
 * buffered input to the parser one request at a time, the handler calls,
 * timeouts (header, body, keep-alive idle), the end of each request, the
 * client going away, and closing (graceful with a short linger, or hard).
 *
 * Safe teardown: a connection's memory is freed only in the close callback
 * of the last of its handles, which libuv runs on a later loop phase, never
 * inside one of our frames. Handler calls are bracketed by c->depth; work
 * that would call the handler again (on_complete, the next pipelined
 * request, on_abort) is done by settle() only when no handler frame of the
 * connection is on the stack, and API calls made from the handler's own
 * callbacks defer it to the next loop turn through the server's settle
 * queue (pg__http_conn_kick).
 *
 * Called only on the server's loop thread. */
#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "http/conn.h"

static void settle(struct pg_http_conn *c);
static void pump(struct pg_http_conn *c);

/* ---- timers -------------------------------------------------------------- */

/* Lazy deadlines: timer_kind and timer_due are the deadline that counts,
 * and the uv timer moves only when a new deadline is earlier than the one
 * it is armed for. A stop, or a later deadline (header, then body, then
 * none while the handler answers), leaves it alone: every uv_timer_start
 * and uv_timer_stop is a remove and an insert in libuv's timer heap, and
 * a request would do several. When the uv timer fires, on_timer compares
 * the loop time with the real deadline: none, nothing; not due yet, armed
 * again for the rest; due, the timeout. Deadlines count in uv_now() ms,
 * the clock uv_timer_start counts from, so a timeout runs on the same
 * loop turn as a timer started for it directly would. */

static void on_timer(uv_timer_t *t);

static void timer_arm(struct pg_http_conn *c, uint64_t now)
{
    c->timer_armed = true;
    c->timer_armed_at = c->timer_due;
    uv_timer_start(&c->timer, on_timer,
                   c->timer_due > now ? c->timer_due - now : 0, 0);
}

/* Arms the uv timer if the deadline that counts is earlier than it. */
static void timer_sync(struct pg_http_conn *c)
{
    if (c->handles_closed || c->timer_kind == TIMER_NONE)
        return;
    if (!c->timer_armed || c->timer_due < c->timer_armed_at)
        timer_arm(c, uv_now(c->timer.loop));
}

static void on_timer(uv_timer_t *t)
{
    struct pg_http_conn *c = pg_container_of(t, struct pg_http_conn, timer);
    timer_kind_t kind = c->timer_kind;
    uint64_t now = uv_now(t->loop);
    c->timer_armed = false;
    if (kind == TIMER_NONE)
        return;
    if (now < c->timer_due) {
        timer_arm(c, now);
        return;
    }
    c->timer_kind = TIMER_NONE;
    switch (kind) {
    case TIMER_HEADER:
        if (c->state == CONN_IDLE || c->state == CONN_READING)
            pg__http_conn_error(c, 408, "request headers not received in time");
        break;
    case TIMER_BODY:
        if (c->state == CONN_READING)
            pg__http_conn_error(c, 408, "request body not received in time");
        break;
    case TIMER_IDLE:
    case TIMER_LINGER:
        pg__http_conn_close(c);
        break;
    case TIMER_NONE:
        break;
    }
}

void pg__http_conn_timer(struct pg_http_conn *c, timer_kind_t kind,
                         uint64_t ms)
{
    if (c->handles_closed)
        return;
    uint64_t now = uv_now(c->timer.loop);
    c->timer_kind = kind;
    /* Saturated as uv_timer_start saturates its own sum. */
    c->timer_due = ms < UINT64_MAX - now ? now + ms : UINT64_MAX;
    if (!c->timer_hold)
        timer_sync(c);
}

void pg__http_conn_timer_stop(struct pg_http_conn *c)
{
    c->timer_kind = TIMER_NONE;
}

/* ---- deferred settle ------------------------------------------------------ */

/* A handler that answers from one of its own callbacks (an upstream
 * response, a timer of its own) is still inside pg_http_respond or
 * pg_http_stream_end when the request can end; settling there would run
 * on_complete, and on_request for the next pipelined request, inside that
 * call. The connection waits on its server's settle queue instead, and one
 * uv_idle handle per server settles the queue on the next loop turn, in
 * the order of the kicks. A kick is a list insert; the idle handle starts
 * and stops at most once per loop turn for all connections (a 0 ms timer
 * per connection moved twice in libuv's timer heap per request). Idle
 * handles run before the poll of every loop turn, so a queued settle never
 * waits for I/O or a timer, whichever phase kicked it; an active one also
 * makes the poll return at once, so it is stopped as soon as the queue is
 * empty. */

static void settle_unlink(struct pg_http_conn *c)
{
    pg_list_remove(&c->settle_node);
    if (pg_list_empty(&c->srv->settle_q))
        uv_idle_stop(&c->srv->settle_idle);
}

static void on_settle_idle(uv_idle_t *h)
{
    pg_http_server_t *srv = pg_container_of(h, pg_http_server_t, settle_idle);
    /* A connection kicked meanwhile (a handler called from one settle
     * answers another connection's request) joins the tail and is
     * settled in this pass, as a 0 ms timer started from a timer
     * callback would have run in the same pass. */
    while (!pg_list_empty(&srv->settle_q)) {
        struct pg_http_conn *c = pg_container_of(
            srv->settle_q.next, struct pg_http_conn, settle_node);
        settle_unlink(c);
        settle(c);
    }
}

void pg__http_conn_kick(struct pg_http_conn *c)
{
    if (c->depth > 0 || c->handles_closed || pg_list_linked(&c->settle_node))
        return;
    pg_http_server_t *srv = c->srv;
    if (pg_list_empty(&srv->settle_q))
        uv_idle_start(&srv->settle_idle, on_settle_idle);
    pg_list_push_back(&srv->settle_q, &c->settle_node);
}

/* ---- closing ------------------------------------------------------------- */

static void conn_free(struct pg_http_conn *c)
{
    assert(!pg_list_linked(&c->settle_node));
    /* A request that began but reached neither the handler nor a server
     * answer is owed no on_complete. */
    if (c->req_live)
        pg_arena_destroy(&c->req.arena);
    pg_buf_free(&c->hdr);
    pg_buf_free(&c->body);
    pg_buf_free(&c->pending);
    pg__http_server_conn_gone(c->srv, c);
    pg__free(c);
}

static void on_tcp_close(uv_handle_t *h)
{
    struct pg_http_conn *c =
        pg_container_of((uv_tcp_t *)h, struct pg_http_conn, tcp);
    if (--c->pending_closes == 0)
        conn_free(c);
}

static void on_timer_close(uv_handle_t *h)
{
    struct pg_http_conn *c =
        pg_container_of((uv_timer_t *)h, struct pg_http_conn, timer);
    if (--c->pending_closes == 0)
        conn_free(c);
}

void pg__http_conn_close(struct pg_http_conn *c)
{
    if (c->handles_closed)
        return;
    c->handles_closed = true;
    c->state = CONN_CLOSING;
    c->timer_kind = TIMER_NONE;
    /* Its memory goes after the close callbacks: no settle may be owed. */
    if (pg_list_linked(&c->settle_node))
        settle_unlink(c);
    c->pending_closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_tcp_close);
    uv_close((uv_handle_t *)&c->timer, on_timer_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct pg_http_conn *c =
        pg_container_of(req, struct pg_http_conn, shutdown);
    if (status < 0)
        pg__http_conn_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Sends FIN after the last response and keeps reading (discarding) for a
 * while: closing with unread input would send RST and could destroy the
 * response the client has not read yet. */
static void conn_close_graceful(struct pg_http_conn *c)
{
    if (c->handles_closed || c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        pg__http_conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc,
                                     on_read) == 0)
        c->reading = true;
    pg__http_conn_timer(c, TIMER_LINGER, PG_HTTP_LINGER_MS);
}

/* ---- requests -------------------------------------------------------------- */

void pg__http_req_begin(struct pg_http_conn *c)
{
    pg_http_req_t *req = &c->req;
    memset(req, 0, sizeof(*req));
    pg_arena_init(&req->arena, 0);
    req->method = PG_STR("");
    req->path = PG_STR("");
    req->query = PG_STR("");
    req->body = PG_STR("");
    req->remote_addr = (pg_str_t){c->remote, strlen(c->remote)};
    req->start_ns = uv_hrtime();
    req->http_minor = 1;
    c->req_live = true;
    c->dispatched = false;
    c->server_made = false;
    pg_buf_reset(&c->hdr);
    c->url_len = 0;
    c->hdr_state = HDR_NONE;
    c->nheaders = 0;
    c->hdr_bytes = 0;
    c->raw_hdr_bytes = 0;
    c->headers_done = false;
    pg_buf_reset(&c->body);
    c->err_status = 0;
    c->err_msg = NULL;
    c->resp = RESP_NONE;
    c->chunked = false;
    c->close_after = false;
    c->head_only = false;
    c->need_finish = false;
    c->want_drain = false;
    c->abort_cb = NULL;
    c->drain_cb = NULL;
}

/* Calls on_complete and frees the request's arena. */
static void req_complete(struct pg_http_conn *c)
{
    const pg_http_handler_t *h = &c->srv->handler;
    c->req_live = false;
    if (h->on_complete != NULL) {
        c->depth++;
        h->on_complete(h->ud, &c->req);
        c->depth--;
    }
    pg_arena_destroy(&c->req.arena);
}

/* The response is fully written: end the request, then either close or
 * wait for the next one (the caller pumps buffered input). */
static void req_finish(struct pg_http_conn *c)
{
    pg__http_conn_timer_stop(c);
    req_complete(c);
    c->need_finish = false;
    c->dispatched = false;
    if (c->io_error) {
        pg__http_conn_close(c);
        return;
    }
    if (c->close_after || c->srv->draining) {
        conn_close_graceful(c);
        return;
    }
    c->state = CONN_IDLE;
    c->first = false;
    /* A large body buffer is not kept for an idle connection. */
    if (c->body.cap > PG_HTTP_PENDING_MAX)
        pg_buf_free(&c->body);
    pg__http_conn_timer(c, TIMER_IDLE, c->srv->limits.idle_timeout_ms);
}

void pg__http_conn_abort(struct pg_http_conn *c)
{
    if (c->handles_closed)
        return;
    if (c->depth > 0) {
        /* settle() finishes the job once the handler's frame returns. */
        c->io_error = true;
        return;
    }
    if (c->req_live && (c->dispatched || c->server_made)) {
        c->resp = RESP_ABORTED;
        c->req.aborted = true;
        if (c->abort_cb != NULL) {
            void (*cb)(void *) = c->abort_cb;
            c->abort_cb = NULL;
            c->depth++;
            cb(c->abort_ud);
            c->depth--;
        }
        req_complete(c);
    }
    pg__http_conn_close(c);
}

/* Does whatever became due while a handler frame was on the stack: abort
 * after an I/O error, end a finished response, feed the next request. */
static void settle(struct pg_http_conn *c)
{
    if (c->depth > 0 || c->handles_closed)
        return;
    /* This settle does all that a queued one would. */
    if (pg_list_linked(&c->settle_node))
        settle_unlink(c);
    if (c->io_error) {
        /* A response fully handed to the socket before the peer left is
         * not an abort. */
        if (c->need_finish && c->queued == 0 && c->req_live)
            req_finish(c);
        else if (c->state != CONN_CLOSING)
            pg__http_conn_abort(c);
        else
            pg__http_conn_close(c);
        return;
    }
    if (c->need_finish && c->queued == 0 && c->req_live)
        req_finish(c);
    pump(c);
}

void pg__http_conn_error(struct pg_http_conn *c, int status, const char *msg)
{
    if (c->handles_closed || c->state == CONN_CLOSING)
        return;
    if (!c->req_live)
        pg__http_req_begin(c);
    pg_http_req_t *req = &c->req;
    if (req->request_id[0] == '\0')
        pg_request_id_new(req->request_id);
    c->server_made = true;
    c->state = CONN_ACTIVE;
    c->close_after = true;
    pg__http_conn_timer_stop(c);

    const pg_http_handler_t *h = &c->srv->handler;
    pg_str_t body = PG_STR_NULL;
    if (h->render_error != NULL) {
        c->depth++;
        body = h->render_error(h->ud, &req->arena, req->path, status, msg);
        c->depth--;
    }
    if (body.p == NULL)
        body = pg_arena_printf(&req->arena,
                               "{\"error\":{\"message\":\"%s\",\"type\":"
                               "\"invalid_request_error\",\"param\":null,"
                               "\"code\":null}}",
                               msg);
    if (body.p == NULL)
        body = PG_STR("{\"error\":{\"message\":\"request rejected\","
                      "\"type\":\"invalid_request_error\",\"param\":null,"
                      "\"code\":null}}");
    (void)pg__http_respond(c, status, PG_STR("application/json"), NULL, 0,
                           body);
    settle(c);
}

/* ---- input ----------------------------------------------------------------- */

static void dispatch(struct pg_http_conn *c)
{
    const pg_http_handler_t *h = &c->srv->handler;
    c->state = CONN_ACTIVE;
    c->dispatched = true;
    pg__http_conn_timer_stop(c);
    c->depth++;
    h->on_request(h->ud, &c->req);
    c->depth--;
    settle(c);
}

static size_t pending_len(const struct pg_http_conn *c)
{
    return c->pending.n - c->pending_off;
}

static void read_control(struct pg_http_conn *c)
{
    if (c->handles_closed || c->state == CONN_CLOSING)
        return;
    bool want = !(c->state == CONN_ACTIVE &&
                  pending_len(c) > PG_HTTP_PENDING_MAX);
    if (want && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

/* Feeds buffered input to the parser and hands complete requests to the
 * handler, one at a time, until a request stays active or input runs out.
 * A loop rather than recursion, so a long pipeline does not grow the
 * stack. */
static void pump(struct pg_http_conn *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    while (!c->handles_closed && c->state != CONN_CLOSING) {
        if (c->state == CONN_COMPLETE) {
            dispatch(c);
            continue;
        }
        if (c->state == CONN_ACTIVE || pending_len(c) == 0)
            break;
        size_t used = 0;
        exec_outcome_t out = pg__http_execute(
            c, c->pending.p + c->pending_off, pending_len(c), &used);
        if (out == EXEC_ERROR) {
            pg__http_conn_error(c, c->err_status, c->err_msg);
            break;
        }
        c->pending_off += used;
        if (c->pending_off == c->pending.n) {
            pg_buf_reset(&c->pending);
            c->pending_off = 0;
        }
        if (c->io_error) {
            settle(c);
            break;
        }
    }
    c->pumping = false;
    read_control(c);
}

static int pending_add(struct pg_http_conn *c, const char *p, size_t n)
{
    if (c->pending_off > 0 && c->pending_off == c->pending.n) {
        pg_buf_reset(&c->pending);
        c->pending_off = 0;
    }
    return pg_buf_append(&c->pending, p, n);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pg_http_conn *c =
        pg_container_of((uv_tcp_t *)h, struct pg_http_conn, tcp);
    /* One buffer per server: libuv hands it to on_read before any other
     * read, and we copy out what must outlive the callback. */
    buf->base = c->srv->rbuf;
    buf->len = PG_HTTP_READ_BUF;
}

static void on_eof(struct pg_http_conn *c)
{
    if (c->state == CONN_ACTIVE) {
        c->io_error = true;
        settle(c);
    } else {
        /* Idle, lingering, or a request the handler never saw. */
        pg__http_conn_close(c);
    }
}

static void conn_input(struct pg_http_conn *c, ssize_t nread,
                       const uv_buf_t *buf)
{
    if (nread == 0 || c->handles_closed)
        return;
    if (nread < 0) {
        on_eof(c);
        return;
    }
    if (c->state == CONN_CLOSING)
        return; /* lingering: discard */
    if (c->state == CONN_READING && c->timer_kind == TIMER_BODY)
        pg__http_conn_timer(c, TIMER_BODY, c->srv->limits.idle_timeout_ms);

    const char *p = buf->base;
    size_t n = (size_t)nread;
    if (c->state == CONN_ACTIVE || pending_len(c) > 0) {
        if (pending_add(c, p, n) != PG_OK) {
            pg__http_conn_close(c);
            return;
        }
        if (c->state != CONN_ACTIVE)
            pump(c);
        else
            read_control(c);
        return;
    }
    size_t used = 0;
    exec_outcome_t out = pg__http_execute(c, p, n, &used);
    if (out == EXEC_ERROR) {
        pg__http_conn_error(c, c->err_status, c->err_msg);
        return;
    }
    if (out == EXEC_COMPLETE && used < n &&
        pending_add(c, p + used, n - used) != PG_OK) {
        pg__http_conn_close(c);
        return;
    }
    if (c->io_error)
        settle(c);
    else
        pump(c);
}

/* The deadlines set while a read is handled (often header, body, none
 * and idle, one after the other) are armed once, when it is done, with
 * the loop time they were set at: the uv timer fires when it would have,
 * and moves at most once per read. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pg_http_conn *c =
        pg_container_of((uv_tcp_t *)s, struct pg_http_conn, tcp);
    c->timer_hold = true;
    conn_input(c, nread, buf);
    c->timer_hold = false;
    timer_sync(c);
}

/* ---- start ------------------------------------------------------------------- */

static void remote_name(struct pg_http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    c->remote[0] = '\0';
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof(c->remote));
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof(c->remote));
}

void pg__http_conn_start(struct pg_http_conn *c)
{
    const pg_http_limits_t *lim = &c->srv->limits;
    remote_name(c);
    pg__http_parser_init(c);
    /* The hdr buffer holds the URL and headers plus 8 bytes of lengths per
     * header; the byte count in parse.c enforces the real limit. */
    pg_buf_init(&c->hdr, (size_t)lim->max_header_bytes * 2 + 1024);
    pg_buf_init(&c->body, (size_t)lim->max_body_bytes);
    pg_buf_init(&c->pending, 0);
    c->state = CONN_IDLE;
    c->first = true;
    pg__http_conn_timer(c, TIMER_HEADER, lim->header_timeout_ms);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        pg__http_conn_close(c);
        return;
    }
    c->reading = true;
}

/* ---- output ------------------------------------------------------------------- */

struct wreq {
    uv_write_t req;
    struct pg_http_conn *conn; /* borrowed: outlives its writes */
    size_t len;
    char data[];
};

static void on_write(uv_write_t *wr, int status)
{
    struct wreq *w = pg_container_of(wr, struct wreq, req);
    struct pg_http_conn *c = w->conn;
    c->queued -= w->len;
    pg__free(w);
    if (c->handles_closed)
        return;
    if (status < 0) {
        c->io_error = true;
        settle(c);
        return;
    }
    if (c->want_drain && c->queued == 0) {
        c->want_drain = false;
        if (c->drain_cb != NULL && c->resp == RESP_STREAMING) {
            c->depth++;
            c->drain_cb(c->drain_ud);
            c->depth--;
        }
    }
    settle(c);
}

static int write_failed(struct pg_http_conn *c, int rc)
{
    c->io_error = true;
    pg__http_conn_kick(c);
    return rc;
}

int pg__http_conn_write(struct pg_http_conn *c, const uv_buf_t *bufs,
                        unsigned nbufs)
{
    if (c->handles_closed || c->io_error)
        return PG_ECANCELED;
    size_t total = 0;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (c->req_live)
        c->req.bytes_out += total;
    size_t done = 0;
    /* uv_try_write refuses (EAGAIN) while writes are queued, which keeps
     * the bytes in order. */
    if (c->queued == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (r >= 0)
            done = (size_t)r;
        else if (r != UV_EAGAIN && r != UV_ENOSYS)
            return write_failed(c, PG_ECANCELED);
    }
    if (done == total)
        return PG_OK;
    size_t rest = total - done;
    struct wreq *w = pg__malloc(sizeof(*w) + rest);
    if (w == NULL)
        return write_failed(c, PG_ENOMEM);
    w->conn = c;
    w->len = rest;
    size_t skip = done, off = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t len = bufs[i].len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        memcpy(w->data + off, bufs[i].base + skip, len - skip);
        off += len - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)rest);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        pg__free(w);
        return write_failed(c, PG_ECANCELED);
    }
    c->queued += rest;
    return PG_OK;
}
