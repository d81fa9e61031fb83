/* parse.c: llhttp callbacks that turn the bytes of one connection into a
 * pg_http_req_t: URL and headers collected in the connection's hdr buffer
 * (spans may be split across reads) and copied into the request arena in
 * one piece when the headers are complete; the de-chunked body in the
 * connection's capped body buffer. Enforces max_header_bytes (431) and
 * max_body_bytes (413), and sends "100 Continue". Pauses the parser at the
 * end of each message so pipelined requests wait their turn.
 *
 * Called only on the server's loop thread, from conn.c. */
#include <string.h>

#include "base/str.h"
#include "http/conn.h"

static struct pg_http_conn *conn_of(llhttp_t *p)
{
    return pg_container_of(p, struct pg_http_conn, parser);
}

/* Records why we reject the request; the caller of llhttp_execute turns it
 * into a response after the parser returns. */
static int reject(struct pg_http_conn *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    llhttp_set_error_reason(&c->parser, msg);
    return HPE_USER;
}

static int count_header_bytes(struct pg_http_conn *c, size_t n)
{
    c->hdr_bytes += n;
    if (c->hdr_bytes > c->srv->limits.max_header_bytes)
        return reject(c, 431, "request header fields too large");
    return HPE_OK;
}

static int hdr_append(struct pg_http_conn *c, const char *at, size_t n)
{
    int rc = pg_buf_append(&c->hdr, at, n);
    if (rc == PG_ETOOBIG)
        return reject(c, 431, "request header fields too large");
    if (rc != PG_OK)
        return reject(c, 503, "out of memory reading the request");
    return HPE_OK;
}

/* Header names and values are stored as a 4-byte length (patched when the
 * span completes) followed by the bytes, so split spans just append. */
static int span_begin(struct pg_http_conn *c, hdr_state_t st)
{
    if (c->hdr_state == st)
        return HPE_OK;
    c->hdr_state = st;
    c->hdr_len_off = c->hdr.n;
    static const char zero[4];
    return hdr_append(c, zero, sizeof(zero));
}

static void span_end(struct pg_http_conn *c)
{
    uint32_t len = (uint32_t)(c->hdr.n - c->hdr_len_off - 4);
    memcpy(c->hdr.p + c->hdr_len_off, &len, sizeof(len));
    c->hdr_state = HDR_NONE;
}

static int on_message_begin(llhttp_t *p)
{
    struct pg_http_conn *c = conn_of(p);
    if (!c->req_live)
        pg__http_req_begin(c);
    c->state = CONN_READING;
    /* The first request of a connection is timed from accept; later ones
     * from their first byte. */
    if (c->timer_kind != TIMER_HEADER)
        pg__http_conn_timer(c, TIMER_HEADER,
                            c->srv->limits.header_timeout_ms);
    return HPE_OK;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct pg_http_conn *c = conn_of(p);
    int rc = count_header_bytes(c, n);
    if (rc == HPE_OK)
        rc = hdr_append(c, at, n);
    c->url_len += n;
    return rc;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct pg_http_conn *c = conn_of(p);
    int rc = count_header_bytes(c, n);
    if (rc == HPE_OK)
        rc = span_begin(c, HDR_FIELD);
    if (rc == HPE_OK)
        rc = hdr_append(c, at, n);
    return rc;
}

static int on_header_field_complete(llhttp_t *p)
{
    struct pg_http_conn *c = conn_of(p);
    int rc = span_begin(c, HDR_FIELD);
    if (rc == HPE_OK)
        span_end(c);
    return rc;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct pg_http_conn *c = conn_of(p);
    int rc = count_header_bytes(c, n);
    if (rc == HPE_OK)
        rc = span_begin(c, HDR_VALUE);
    if (rc == HPE_OK)
        rc = hdr_append(c, at, n);
    return rc;
}

static int on_header_value_complete(llhttp_t *p)
{
    struct pg_http_conn *c = conn_of(p);
    /* An empty value produces no on_header_value span at all. */
    int rc = span_begin(c, HDR_VALUE);
    if (rc != HPE_OK)
        return rc;
    span_end(c);
    c->nheaders++;
    /* ": " and CRLF of the line. */
    return count_header_bytes(c, 4);
}

static uint32_t read_len(const char *p)
{
    uint32_t len;
    memcpy(&len, p, sizeof(len));
    return len;
}

/* Copies the URL and headers into the arena and points req at them. */
static int build_request(struct pg_http_conn *c)
{
    pg_http_req_t *req = &c->req;
    char *blk = pg_arena_alloc(&req->arena, c->hdr.n + 1);
    pg_http_header_t *hs = NULL;
    if (c->nheaders > 0)
        hs = pg_arena_alloc(&req->arena, c->nheaders * sizeof(*hs));
    if (blk == NULL || (c->nheaders > 0 && hs == NULL))
        return PG_ENOMEM;
    if (c->hdr.n > 0)
        memcpy(blk, c->hdr.p, c->hdr.n);
    blk[c->hdr.n] = '\0';

    pg_str_t url = {blk, c->url_len};
    const char *q = memchr(url.p, '?', url.n);
    if (q != NULL) {
        req->path = (pg_str_t){url.p, (size_t)(q - url.p)};
        req->query = (pg_str_t){q + 1, url.n - req->path.n - 1};
    } else {
        req->path = url;
        req->query = (pg_str_t){url.p + url.n, 0};
    }
    size_t off = c->url_len;
    for (size_t i = 0; i < c->nheaders; i++) {
        uint32_t nlen = read_len(blk + off);
        hs[i].name = (pg_str_t){blk + off + 4, nlen};
        off += 4 + nlen;
        uint32_t vlen = read_len(blk + off);
        hs[i].value = pg_str_trim((pg_str_t){blk + off + 4, vlen});
        off += 4 + vlen;
    }
    req->headers = hs;
    req->nheaders = c->nheaders;
    req->method = pg_str_c(llhttp_method_name(c->parser.method));
    req->http_minor = c->parser.http_minor;
    return PG_OK;
}

static void set_request_id(struct pg_http_conn *c)
{
    pg_http_req_t *req = &c->req;
    pg_str_t id = pg_http_req_header(req, PG_STR("X-Request-ID"));
    if (id.p != NULL && pg_request_id_valid(id.p, id.n)) {
        memcpy(req->request_id, id.p, id.n);
        req->request_id[id.n] = '\0';
    } else {
        pg_request_id_new(req->request_id);
    }
}

static void send_continue(struct pg_http_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uv_buf_t b = uv_buf_init((char *)msg, sizeof(msg) - 1);
    /* A failed write marks the connection; the caller sees io_error. */
    (void)pg__http_conn_write(c, &b, 1);
}

static int on_headers_complete(llhttp_t *p)
{
    struct pg_http_conn *c = conn_of(p);
    pg_http_req_t *req = &c->req;
    const pg_http_limits_t *lim = &c->srv->limits;
    c->headers_done = true;
    if (build_request(c) != PG_OK) {
        reject(c, 503, "out of memory reading the request");
        return -1;
    }
    set_request_id(c);
    req->keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p) &&
                      !c->srv->draining;
    c->head_only = pg_str_eqc(req->method, "HEAD");

    bool has_body = (p->flags & F_CHUNKED) != 0 ||
                    ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
    if ((p->flags & F_CONTENT_LENGTH) &&
        p->content_length > lim->max_body_bytes) {
        reject(c, 413, "request body too large");
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0 &&
        pg_buf_reserve(&c->body, (size_t)p->content_length) != PG_OK) {
        reject(c, 503, "out of memory reading the request");
        return -1;
    }
    pg_str_t expect = pg_http_req_header(req, PG_STR("Expect"));
    if (has_body && expect.p != NULL && p->http_major == 1 &&
        p->http_minor == 1 && pg_str_ieq(expect, PG_STR("100-continue")))
        send_continue(c);
    if (has_body)
        pg__http_conn_timer(c, TIMER_BODY, lim->idle_timeout_ms);
    else
        pg__http_conn_timer_stop(c);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct pg_http_conn *c = conn_of(p);
    int rc = pg_buf_append(&c->body, at, n);
    if (rc == PG_ETOOBIG)
        return reject(c, 413, "request body too large");
    if (rc != PG_OK)
        return reject(c, 503, "out of memory reading the request");
    return HPE_OK;
}

static int on_message_complete(llhttp_t *p)
{
    struct pg_http_conn *c = conn_of(p);
    if (c->body.p != NULL)
        c->req.body = (pg_str_t){c->body.p, c->body.n};
    else
        c->req.body = PG_STR("");
    c->state = CONN_COMPLETE;
    pg__http_conn_timer_stop(c);
    /* One request at a time: the rest of the input waits. */
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void pg__http_parser_init(struct pg_http_conn *c)
{
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
}

exec_outcome_t pg__http_execute(struct pg_http_conn *c, const char *p,
                                size_t n, size_t *consumed)
{
    if (c->paused) {
        llhttp_resume(&c->parser);
        c->paused = false;
    }
    llhttp_errno_t err = llhttp_execute(&c->parser, p, n);
    if (err == HPE_OK) {
        *consumed = n;
        /* Bytes that do not reach a span callback (line ends, blank lines
         * before a request) count against the header limit too. */
        if (!c->headers_done) {
            c->raw_hdr_bytes += n;
            if (c->raw_hdr_bytes > c->srv->limits.max_header_bytes) {
                reject(c, 431, "request header fields too large");
                return EXEC_ERROR;
            }
        }
        return EXEC_MORE;
    }
    if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) &&
        c->state == CONN_COMPLETE) {
        c->paused = true;
        *consumed = (size_t)(llhttp_get_error_pos(&c->parser) - p);
        return EXEC_COMPLETE;
    }
    *consumed = 0;
    if (c->err_status == 0) {
        c->err_status = 400;
        c->err_msg = "malformed HTTP request";
    }
    return EXEC_ERROR;
}
