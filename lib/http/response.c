/* response.c: the response writer handlers use: complete responses,
 * chunked streams (raw for HTTP/1.0 clients, then close), queued-bytes
 * backpressure, the abort/drain registrations and header lookup. The
 * response head is built in a stack buffer (the arena when extra headers
 * make it large) and goes out with the body in one write.
 *
 * Called only on the server's loop thread. */
#include <string.h>

#include "base/str.h"
#include "http/conn.h"

#define HEAD_STACK 1024

/* Appends to dst while it fits and always counts, so one pass tells the
 * size when the stack buffer was too small. */
typedef struct head_writer {
    char *p;
    size_t cap;
    size_t n;
} head_writer_t;

static void hw_put(head_writer_t *w, const char *p, size_t n)
{
    if (w->n + n <= w->cap)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void hw_str(head_writer_t *w, pg_str_t s) { hw_put(w, s.p, s.n); }
static void hw_cstr(head_writer_t *w, const char *s)
{
    hw_put(w, s, strlen(s));
}

static void hw_u64(head_writer_t *w, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    hw_put(w, tmp + i, sizeof(tmp) - i);
}

typedef enum body_mode { BODY_LENGTH, BODY_CHUNKED, BODY_RAW } body_mode_t;

static void head_emit(head_writer_t *w, const struct pg_http_conn *c,
                      int status, pg_str_t ctype,
                      const pg_http_header_t *extra, size_t nextra,
                      body_mode_t mode, uint64_t length)
{
    hw_cstr(w, "HTTP/1.1 ");
    hw_u64(w, (uint64_t)status);
    hw_put(w, " ", 1);
    hw_cstr(w, pg_http_status_text(status));
    hw_put(w, "\r\n", 2);
    if (ctype.n > 0) {
        hw_cstr(w, "Content-Type: ");
        hw_str(w, ctype);
        hw_put(w, "\r\n", 2);
    }
    if (mode == BODY_LENGTH) {
        hw_cstr(w, "Content-Length: ");
        hw_u64(w, length);
        hw_put(w, "\r\n", 2);
    } else if (mode == BODY_CHUNKED) {
        hw_cstr(w, "Transfer-Encoding: chunked\r\n");
    }
    hw_cstr(w, c->close_after ? "Connection: close\r\n"
                              : "Connection: keep-alive\r\n");
    hw_cstr(w, "X-Request-ID: ");
    hw_cstr(w, c->req.request_id);
    hw_put(w, "\r\n", 2);
    /* Time spent in the gateway so far, upstream waits excluded, so field
     * numbers can be compared with the benchmarks. */
    uint64_t spent = uv_hrtime() - c->req.start_ns;
    spent = spent > c->req.upstream_ns ? spent - c->req.upstream_ns : 0;
    hw_cstr(w, "x-polyglot-overhead-us: ");
    hw_u64(w, spent / 1000);
    hw_put(w, "\r\n", 2);
    for (size_t i = 0; i < nextra; i++) {
        hw_str(w, extra[i].name);
        hw_put(w, ": ", 2);
        hw_str(w, extra[i].value);
        hw_put(w, "\r\n", 2);
    }
    hw_put(w, "\r\n", 2);
}

static bool token_clean(pg_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] == '\r' || s.p[i] == '\n' || s.p[i] == '\0')
            return false;
    return true;
}

/* Extra headers must not smuggle line breaks into the response. */
static bool extras_valid(pg_str_t ctype, const pg_http_header_t *extra,
                         size_t nextra)
{
    if (!token_clean(ctype))
        return false;
    for (size_t i = 0; i < nextra; i++)
        if (extra[i].name.n == 0 || !token_clean(extra[i].name) ||
            !token_clean(extra[i].value))
            return false;
    return true;
}

static bool status_has_body(int status)
{
    return !(status / 100 == 1 || status == 204 || status == 304);
}

/* Writes the head, then body (may be empty) in the same write. */
static int write_head(struct pg_http_conn *c, int status, pg_str_t ctype,
                      const pg_http_header_t *extra, size_t nextra,
                      body_mode_t mode, pg_str_t body)
{
    char stack[HEAD_STACK];
    head_writer_t w = {stack, sizeof(stack), 0};
    head_emit(&w, c, status, ctype, extra, nextra, mode, body.n);
    if (w.n > w.cap) {
        char *big = pg_arena_alloc(&c->req.arena, w.n);
        if (big == NULL)
            return PG_ENOMEM;
        w = (head_writer_t){big, w.n, 0};
        head_emit(&w, c, status, ctype, extra, nextra, mode, body.n);
    }
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    bufs[0] = uv_buf_init(w.p, (unsigned)w.n);
    if (body.n > 0 && !c->head_only && status_has_body(status))
        bufs[nbufs++] = uv_buf_init((char *)body.p, (unsigned)body.n);
    c->req.status = status;
    return pg__http_conn_write(c, bufs, nbufs);
}

static void decide_close(struct pg_http_conn *c)
{
    if (!c->req.keep_alive || c->srv->draining)
        c->close_after = true;
}

int pg__http_respond(struct pg_http_conn *c, int status, pg_str_t content_type,
                     const pg_http_header_t *extra, size_t nextra,
                     pg_str_t body)
{
    decide_close(c);
    int rc = write_head(c, status, content_type, extra, nextra, BODY_LENGTH,
                        body);
    c->resp = RESP_DONE;
    c->need_finish = true;
    return rc;
}

/* PG_OK when the request may still be answered in state want. */
static int check_state(struct pg_http_conn *c, resp_state_t want)
{
    if (c->resp == RESP_ABORTED || c->io_error || c->handles_closed)
        return PG_ECANCELED;
    if (!c->req_live || !c->dispatched || c->server_made || c->resp != want)
        return PG_ESTATE;
    return PG_OK;
}

int pg_http_respond(pg_http_req_t *req, int status, pg_str_t content_type,
                    const pg_http_header_t *extra, size_t nextra,
                    pg_str_t body)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    int rc = check_state(c, RESP_NONE);
    if (rc != PG_OK)
        return rc;
    if (status < 100 || status > 999 ||
        !extras_valid(content_type, extra, nextra))
        return PG_EINVAL;
    rc = pg__http_respond(c, status, content_type, extra, nextra, body);
    pg__http_conn_kick(c);
    return rc;
}

int pg_http_stream_start(pg_http_req_t *req, int status, pg_str_t content_type,
                         const pg_http_header_t *extra, size_t nextra)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    int rc = check_state(c, RESP_NONE);
    if (rc != PG_OK)
        return rc;
    if (status < 100 || status > 999 ||
        !extras_valid(content_type, extra, nextra))
        return PG_EINVAL;
    decide_close(c);
    /* HTTP/1.0 has no chunked coding: the body runs to the close. */
    c->chunked = req->http_minor >= 1;
    if (!c->chunked)
        c->close_after = true;
    c->resp = RESP_STREAMING;
    return write_head(c, status, content_type, extra, nextra,
                      c->chunked ? BODY_CHUNKED : BODY_RAW, PG_STR(""));
}

int pg_http_stream_write(pg_http_req_t *req, pg_str_t data)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    int rc = check_state(c, RESP_STREAMING);
    if (rc != PG_OK)
        return rc;
    /* An empty chunk would end the body. */
    if (data.n == 0 || c->head_only)
        return PG_OK;
    if (c->chunked) {
        static const char hexd[] = "0123456789abcdef";
        char hex[20];
        size_t i = sizeof(hex) - 2;
        hex[i] = '\r';
        hex[i + 1] = '\n';
        size_t v = data.n;
        do {
            hex[--i] = hexd[v & 15];
            v >>= 4;
        } while (v != 0);
        uv_buf_t bufs[3] = {
            uv_buf_init(hex + i, (unsigned)(sizeof(hex) - i)),
            uv_buf_init((char *)data.p, (unsigned)data.n),
            uv_buf_init((char *)"\r\n", 2),
        };
        rc = pg__http_conn_write(c, bufs, 3);
    } else {
        uv_buf_t b = uv_buf_init((char *)data.p, (unsigned)data.n);
        rc = pg__http_conn_write(c, &b, 1);
    }
    if (rc != PG_OK)
        return rc;
    if (c->queued > c->srv->limits.max_queued_bytes) {
        c->want_drain = true;
        return PG_ETOOBIG;
    }
    return PG_OK;
}

int pg_http_stream_end(pg_http_req_t *req)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    int rc = check_state(c, RESP_STREAMING);
    if (rc != PG_OK)
        return rc;
    if (c->chunked && !c->head_only) {
        uv_buf_t b = uv_buf_init((char *)"0\r\n\r\n", 5);
        rc = pg__http_conn_write(c, &b, 1);
    }
    c->resp = RESP_DONE;
    c->need_finish = true;
    pg__http_conn_kick(c);
    return rc;
}

uint64_t pg_http_queued_bytes(const pg_http_req_t *req)
{
    return pg__http_conn_of((pg_http_req_t *)req)->queued;
}

bool pg_http_queue_full(const pg_http_req_t *req)
{
    const struct pg_http_conn *c = pg__http_conn_of((pg_http_req_t *)req);
    return c->queued > c->srv->limits.max_queued_bytes;
}

void pg_http_req_on_abort(pg_http_req_t *req, void (*cb)(void *ud), void *ud)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    c->abort_cb = cb;
    c->abort_ud = ud;
}

void pg_http_req_on_drain(pg_http_req_t *req, void (*cb)(void *ud), void *ud)
{
    struct pg_http_conn *c = pg__http_conn_of(req);
    c->drain_cb = cb;
    c->drain_ud = ud;
}

pg_str_t pg_http_req_header(const pg_http_req_t *req, pg_str_t name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (pg_str_ieq(req->headers[i].name, name))
            return req->headers[i].value;
    return PG_STR_NULL;
}
