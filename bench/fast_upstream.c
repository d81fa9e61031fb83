/* fast_upstream.c: the fake OpenAI and Anthropic upstream of `make bench`
 * (proxy and translation lanes). A single-threaded HTTP/1.1 keep-alive
 * server on one libuv loop with llhttp. POST /v1/chat/completions is
 * answered at once with a fixed chat.completion, or, when the body has
 * "stream":true, with a fixed SSE stream (chunked) of a role chunk, N
 * content chunks, a finish chunk, a usage chunk when the body asks for
 * include_usage, and data: [DONE]. POST /v1/messages is answered the
 * Anthropic way: a fixed message, or the event stream message_start,
 * content_block_start, N content_block_delta, content_block_stop,
 * message_delta, message_stop.
 * Every response is built once at start-up, so answering is one write of
 * static bytes; with --chunk-delay-ms the stream's events go out one per
 * timer tick instead (the slow-stream lane).
 *
 *   fast_upstream [--host 127.0.0.1] [--port 0] [--chunks 20]
 *                 [--chunk-delay-ms 0]
 *
 * Prints the bound port on stdout, then serves until killed. One request
 * at a time per connection: it reads nothing while a slow stream is being
 * sent, and closes a connection that pipelined behind one.
 * Everything runs on the one loop thread. */
#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "bodies.h"
#include "base/list.h"

#define URL_MAX 256
#define BODY_MAX (64 * 1024)
#define READ_SIZE (64 * 1024)
#define MAX_CHUNKS 4096

/* One precomputed response: the head + body as a list of pieces. A
 * stream has one piece per SSE event (chunk-encoded) so that the slow
 * lane can send them one by one. */
struct resp {
    uv_buf_t *bufs;
    unsigned nbufs;
};

struct upstream {
    uv_loop_t *loop;
    uv_tcp_t listener;
    unsigned chunks;
    uint64_t delay_ms;
    struct resp whole;          /* chat.completion */
    struct resp stream;         /* SSE without the usage chunk */
    struct resp stream_usage;   /* SSE with it */
    struct resp message;        /* Anthropic message */
    struct resp message_stream; /* Anthropic event stream */
    struct resp not_found;
    struct resp bad_request;
    char *arena;                /* owned: the bytes the bufs point into */
    size_t arena_len, arena_cap;
};

struct conn {
    struct upstream *up;
    uv_tcp_t tcp;
    uv_timer_t timer;
    llhttp_t parser;
    int pending_closes;
    bool closing;
    bool close_after;          /* the client said Connection: close */
    bool streaming;            /* a slow stream is going out */
    bool pipelined;            /* bytes arrived behind a slow stream */
    const struct resp *cur;    /* the slow stream being sent */
    unsigned next;             /* its next piece */
    size_t url_len;
    char url[URL_MAX];
    size_t body_len;
    bool body_too_big;
    char body[BODY_MAX];
    char rbuf[READ_SIZE];
};

/* A write that did not go out at once: the rest of the pieces. Their
 * bytes are static (the upstream's arena), so only the list is copied. */
struct wreq {
    uv_write_t req;
    struct conn *c;
    bool close_after;
};

static llhttp_settings_t parser_settings;

static void conn_close(struct conn *c);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* ---- building the responses at start-up ---------------------------- */

/* Appends n bytes to the arena; returns the offset or -1 when full. */
static long arena_put(struct upstream *up, const char *p, size_t n)
{
    if (up->arena_len + n > up->arena_cap)
        return -1;
    memcpy(up->arena + up->arena_len, p, n);
    up->arena_len += n;
    return (long)(up->arena_len - n);
}

/* Offsets are turned into pointers once the arena is complete. */
static int resp_piece(struct upstream *up, struct resp *r, const char *p,
                      size_t n)
{
    long off = arena_put(up, p, n);
    if (off < 0)
        return -ENOMEM;
    r->bufs[r->nbufs].base = (char *)(intptr_t)off;
    r->bufs[r->nbufs].len = n;
    r->nbufs++;
    return 0;
}

static int resp_init(struct resp *r, unsigned max_pieces)
{
    r->nbufs = 0;
    r->bufs = pg__calloc(max_pieces, sizeof(uv_buf_t));
    return r->bufs ? 0 : -ENOMEM;
}

static void resp_fix(struct upstream *up, struct resp *r)
{
    for (unsigned i = 0; i < r->nbufs; i++)
        r->bufs[i].base = up->arena + (intptr_t)r->bufs[i].base;
}

static int build_fixed(struct upstream *up, struct resp *r, int status,
                       const char *reason, const char *body)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     status, reason, strlen(body));
    int rc = resp_init(r, 2);
    if (rc == 0)
        rc = resp_piece(up, r, head, (size_t)n);
    if (rc == 0)
        rc = resp_piece(up, r, body, strlen(body));
    return rc;
}

/* One SSE event as one HTTP chunk: "<hex>\r\n[event: <name>\n]data:
 * <json>\n\n\r\n". name NULL: no event line (OpenAI's streams). */
static int sse_event(struct upstream *up, struct resp *r, const char *name,
                     const char *json)
{
    char ev[64] = "";
    char buf[1024];
    size_t dlen;
    int n;
    if (name != NULL)
        snprintf(ev, sizeof ev, "event: %s\n", name);
    dlen = strlen(ev) + strlen("data: ") + strlen(json) + 2;
    n = snprintf(buf, sizeof buf, "%zx\r\n%sdata: %s\n\n\r\n", dlen, ev,
                 json);
    if (n < 0 || (size_t)n >= sizeof buf)
        return -EINVAL;
    return resp_piece(up, r, buf, (size_t)n);
}

static int stream_event(struct upstream *up, struct resp *r,
                        const char *json)
{
    return sse_event(up, r, NULL, json);
}

static const char sse_head[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static const char chunked_end[] = "0\r\n\r\n";

/* The Anthropic event stream of one text block of up->chunks deltas,
 * shaped as the Messages streaming reference shows it. */
static int build_message_stream(struct upstream *up, struct resp *r)
{
    char json[512];
    int rc = resp_init(r, up->chunks + 8);
    if (rc == 0)
        rc = resp_piece(up, r, sse_head, sizeof sse_head - 1);
    if (rc == 0)
        rc = sse_event(up, r, "message_start",
            "{\"type\":\"message_start\",\"message\":{\"id\":"
            "\"msg_fast\",\"type\":\"message\",\"role\":\"assistant\","
            "\"content\":[],\"model\":\"fast-upstream\",\"stop_reason\":"
            "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
            "\"output_tokens\":1}}}");
    if (rc == 0)
        rc = sse_event(up, r, "content_block_start",
            "{\"type\":\"content_block_start\",\"index\":0,"
            "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    for (unsigned i = 0; rc == 0 && i < up->chunks; i++) {
        snprintf(json, sizeof json, "{\"type\":\"content_block_delta\","
                 "\"index\":0,\"delta\":{\"type\":\"text_delta\","
                 "\"text\":\"tok%u \"}}", i);
        rc = sse_event(up, r, "content_block_delta", json);
    }
    if (rc == 0)
        rc = sse_event(up, r, "content_block_stop",
            "{\"type\":\"content_block_stop\",\"index\":0}");
    if (rc == 0) {
        snprintf(json, sizeof json, "{\"type\":\"message_delta\",\"delta\":"
                 "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                 "\"usage\":{\"output_tokens\":%u}}", up->chunks);
        rc = sse_event(up, r, "message_delta", json);
    }
    if (rc == 0)
        rc = sse_event(up, r, "message_stop", "{\"type\":\"message_stop\"}");
    if (rc == 0)
        rc = resp_piece(up, r, chunked_end, sizeof chunked_end - 1);
    return rc;
}

#define CHUNK_PRE "{\"id\":\"chatcmpl-fast\",\"object\":\"chat.completion.chunk\"," \
    "\"created\":1700000000,\"model\":\"fast-upstream\",\"choices\":"

static int build_stream(struct upstream *up, struct resp *r, bool usage)
{
    /* The last event and the chunked terminator. */
    static const char done[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    char json[512];
    int rc = resp_init(r, up->chunks + 7);
    if (rc == 0)
        rc = resp_piece(up, r, sse_head, sizeof sse_head - 1);
    if (rc == 0)
        rc = stream_event(up, r, CHUNK_PRE "[{\"index\":0,\"delta\":"
                          "{\"role\":\"assistant\",\"content\":\"\"},"
                          "\"finish_reason\":null}]}");
    for (unsigned i = 0; rc == 0 && i < up->chunks; i++) {
        snprintf(json, sizeof json, CHUNK_PRE "[{\"index\":0,\"delta\":"
                 "{\"content\":\"tok%u \"},\"finish_reason\":null}]}", i);
        rc = stream_event(up, r, json);
    }
    if (rc == 0)
        rc = stream_event(up, r, CHUNK_PRE "[{\"index\":0,\"delta\":{},"
                          "\"finish_reason\":\"stop\"}]}");
    if (rc == 0 && usage) {
        snprintf(json, sizeof json, CHUNK_PRE "[],\"usage\":"
                 "{\"prompt_tokens\":12,\"completion_tokens\":%u,"
                 "\"total_tokens\":%u}}", up->chunks, up->chunks + 12);
        rc = stream_event(up, r, json);
    }
    if (rc == 0)
        rc = resp_piece(up, r, done, sizeof done - 1);
    return rc;
}

static int build_all(struct upstream *up)
{
    int rc;
    up->arena_cap = 8192 + (size_t)(up->chunks + 8) * 3 * 256;
    up->arena = pg__malloc(up->arena_cap);
    if (up->arena == NULL)
        return -ENOMEM;
    rc = build_fixed(up, &up->whole, 200, "OK",
        BENCH_CHAT_COMPLETION);
    if (rc == 0)
        rc = build_fixed(up, &up->not_found, 404, "Not Found",
            "{\"error\":{\"message\":\"fast_upstream serves only POST "
            "/v1/chat/completions and /v1/messages\","
            "\"type\":\"invalid_request_error\"}}");
    if (rc == 0)
        rc = build_fixed(up, &up->message, 200, "OK",
            "{\"id\":\"msg_fast\",\"type\":\"message\",\"role\":"
            "\"assistant\",\"model\":\"fast-upstream\",\"content\":"
            "[{\"type\":\"text\",\"text\":\"Hello benchmark, this is the "
            "fast upstream.\"}],\"stop_reason\":\"end_turn\","
            "\"stop_sequence\":null,\"usage\":{\"input_tokens\":19,"
            "\"output_tokens\":9}}");
    if (rc == 0)
        rc = build_message_stream(up, &up->message_stream);
    if (rc == 0)
        rc = build_fixed(up, &up->bad_request, 413, "Payload Too Large",
            "{\"error\":{\"message\":\"body over 64 KiB\","
            "\"type\":\"invalid_request_error\"}}");
    if (rc == 0)
        rc = build_stream(up, &up->stream, false);
    if (rc == 0)
        rc = build_stream(up, &up->stream_usage, true);
    if (rc != 0)
        return rc;
    resp_fix(up, &up->whole);
    resp_fix(up, &up->not_found);
    resp_fix(up, &up->bad_request);
    resp_fix(up, &up->stream);
    resp_fix(up, &up->stream_usage);
    resp_fix(up, &up->message);
    resp_fix(up, &up->message_stream);
    return 0;
}

/* ---- writing --------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = pg_container_of(req, struct wreq, req);
    struct conn *c = w->c;
    bool close_after = w->close_after;
    pg__free(w);
    if (status != 0 || close_after)
        conn_close(c);
}

/* Writes the pieces: a try_write first (the usual case, no allocation),
 * the rest queued. close_after closes the connection once all went. */
static void conn_send(struct conn *c, const uv_buf_t *bufs, unsigned n,
                      bool close_after)
{
    uv_buf_t rest[MAX_CHUNKS + 8];
    unsigned nrest = 0;
    int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    size_t done = w > 0 ? (size_t)w : 0;
    struct wreq *req;

    if (w < 0 && w != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (done >= bufs[i].len) {
            done -= bufs[i].len;
            continue;
        }
        rest[nrest].base = bufs[i].base + done;
        rest[nrest].len = bufs[i].len - done;
        nrest++;
        done = 0;
    }
    if (nrest == 0) {
        if (close_after)
            conn_close(c);
        return;
    }
    req = pg__malloc(sizeof *req);
    if (req == NULL) {
        conn_close(c);
        return;
    }
    req->c = c;
    req->close_after = close_after;
    if (uv_write(&req->req, (uv_stream_t *)&c->tcp, rest, nrest,
                 on_write) != 0) {
        pg__free(req);
        conn_close(c);
    }
}

/* ---- slow streams ----------------------------------------------------- */

static void on_stream_tick(uv_timer_t *t)
{
    struct conn *c = pg_container_of(t, struct conn, timer);
    const struct resp *r = c->cur;
    bool last = c->next + 1 >= r->nbufs;

    if (c->closing)
        return;
    conn_send(c, &r->bufs[c->next], 1, last && (c->close_after || c->pipelined));
    c->next++;
    if (!last || c->closing)
        return;
    uv_timer_stop(&c->timer);
    c->streaming = false;
    if (!c->close_after && !c->pipelined)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- requests --------------------------------------------------------- */

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->url_len + n > URL_MAX)
        n = URL_MAX - c->url_len;
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (c->body_len + n > BODY_MAX) {
        c->body_too_big = true;
        return 0;
    }
    memcpy(c->body + c->body_len, at, n);
    c->body_len += n;
    return 0;
}

/* True when the body has "key" : true (whitespace allowed). A fixed
 * server only needs this much of JSON. */
static bool body_flag(const struct conn *c, const char *key)
{
    size_t klen = strlen(key);
    const char *end = c->body + c->body_len;
    const char *p = c->body;
    while ((p = memmem(p, (size_t)(end - p), key, klen)) != NULL) {
        p += klen;
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
                           *p == '\r' || *p == ':'))
            p++;
        if (end - p >= 4 && memcmp(p, "true", 4) == 0)
            return true;
    }
    return false;
}

static bool url_is(const struct conn *c, const char *path)
{
    size_t n = strlen(path);
    return c->url_len == n && memcmp(c->url, path, n) == 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    struct upstream *up = c->up;
    const struct resp *r;
    bool stream = false;

    c->close_after = !llhttp_should_keep_alive(p);
    if (c->body_too_big)
        r = &up->bad_request;
    else if (p->method != HTTP_POST)
        r = &up->not_found;
    else if (url_is(c, "/v1/chat/completions")) {
        if ((stream = body_flag(c, "\"stream\"")))
            r = body_flag(c, "\"include_usage\"") ? &up->stream_usage
                                                  : &up->stream;
        else
            r = &up->whole;
    } else if (url_is(c, "/v1/messages"))
        r = (stream = body_flag(c, "\"stream\"")) ? &up->message_stream
                                                  : &up->message;
    else
        r = &up->not_found;
    c->url_len = 0;
    c->body_len = 0;
    c->body_too_big = false;

    if (!stream || up->delay_ms == 0) {
        conn_send(c, r->bufs, r->nbufs, c->close_after);
        return c->closing ? HPE_PAUSED : 0;
    }
    /* Slow stream: the head and the role chunk now, one event per tick. */
    c->streaming = true;
    c->cur = r;
    conn_send(c, r->bufs, 2, false);
    c->next = 2;
    if (c->closing)
        return HPE_PAUSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_start(&c->timer, on_stream_tick, up->delay_ms, up->delay_ms);
    return HPE_PAUSED;
}

/* ---- connections ------------------------------------------------------ */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->pending_closes == 0)
        pg__free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->rbuf;
    buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    llhttp_errno_t e;

    if (n < 0) {
        conn_close(c);
        return;
    }
    if (n == 0)
        return;
    e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        llhttp_resume(&c->parser);
        /* Bytes behind a paused message were a pipelined request: this
         * server answers one at a time, so it ends the connection. */
        if (pos != NULL && pos < buf->base + n && !c->closing) {
            c->pipelined = true;
            if (!c->streaming)
                conn_close(c);
        }
        return;
    }
    if (e != HPE_OK)
        conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct upstream *up = server->data;
    struct conn *c;

    if (status != 0)
        return;
    c = pg__malloc(sizeof *c);
    if (c == NULL)
        return;
    memset(c, 0, offsetof(struct conn, body));
    c->up = up;
    uv_tcp_init(up->loop, &c->tcp);
    uv_timer_init(up->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->pending_closes = 2;
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- main ------------------------------------------------------------- */

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v > max)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: fast_upstream [--host ADDR] [--port N] "
            "[--chunks N (1..%d, default 20)] [--chunk-delay-ms N]\n",
            MAX_CHUNKS);
}

int main(int argc, char **argv)
{
    static struct upstream up;
    const char *host = "127.0.0.1";
    uint64_t port = 0, chunks = 20, delay = 0;
    struct sockaddr_storage addr;
    int namelen = sizeof addr;
    int rc;

    /* Every flag takes a value: step over the pair. */
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(argv[i], "--host") == 0)
            host = v;
        else if (v != NULL && strcmp(argv[i], "--port") == 0 &&
                 parse_uint(v, 65535, &port) == 0)
            ;
        else if (v != NULL && strcmp(argv[i], "--chunks") == 0 &&
                 parse_uint(v, MAX_CHUNKS, &chunks) == 0 && chunks > 0)
            ;
        else if (v != NULL && strcmp(argv[i], "--chunk-delay-ms") == 0 &&
                 parse_uint(v, 60000, &delay) == 0)
            ;
        else {
            usage();
            return 2;
        }
    }

    llhttp_settings_init(&parser_settings);
    parser_settings.on_url = on_url;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;

    up.loop = uv_default_loop();
    up.chunks = (unsigned)chunks;
    up.delay_ms = delay;
    if (build_all(&up) != 0) {
        fprintf(stderr, "fast_upstream: out of memory\n");
        return 1;
    }
    if ((rc = uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr)) ||
        (rc = uv_tcp_init(up.loop, &up.listener)) ||
        (rc = uv_tcp_bind(&up.listener, (struct sockaddr *)&addr, 0)) ||
        (rc = uv_listen((uv_stream_t *)&up.listener, 4096, on_connection)) ||
        (rc = uv_tcp_getsockname(&up.listener, (struct sockaddr *)&addr,
                                 &namelen))) {
        fprintf(stderr, "fast_upstream: %s:%" PRIu64 ": %s\n", host, port,
                uv_strerror(rc));
        return 1;
    }
    up.listener.data = &up;
    printf("%d\n", ntohs(((struct sockaddr_in *)&addr)->sin_port));
    fflush(stdout);
    return uv_run(up.loop, UV_RUN_DEFAULT);
}
