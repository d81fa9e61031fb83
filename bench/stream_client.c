/* stream_client.c: the load client of the bench's streaming lanes. Opens
 * --conns keep-alive connections on one libuv loop, sends --requests
 * chat-completion POSTs on each (one at a time per connection), parses
 * the responses with llhttp and times each one: time to the first body
 * byte (TTFB) and to the end of the message, counting the SSE events
 * ("data: " lines) and checking the stream ended with data: [DONE]. With
 * --anthropic it speaks the Messages API instead: an Anthropic request body
 * (top-level system, max_tokens) and a stream that must end with
 * event: message_stop.
 *
 *   stream_client --port N [--host 127.0.0.1] [--path /v1/chat/completions]
 *                 [--model M] [--conns 1] [--requests 100] [--no-stream]
 *                 [--usage] [--anthropic] [--timeout-s 60]
 *
 * Prints one line of key=value figures (microseconds):
 *   ok= failed= events= ttfb_p50= ttfb_p99= total_p50= total_p99=
 *   max_open= wall_s=
 * max_open is the most responses that were under way at once (first
 * byte seen, end not yet): with slow streams, how many the server really
 * held open together. Exit status 1 if any request failed or timed out.
 * Everything runs on the one loop thread. */
#include <inttypes.h>
#include <llhttp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/list.h"

#define READ_SIZE (64 * 1024)

struct client {
    uv_loop_t *loop;
    struct sockaddr_in addr;
    uv_buf_t request;            /* the whole request, sent as is */
    const char *end_marker;      /* what ends a good stream */
    bool stream;
    uint64_t conns, per_conn;
    uint64_t done, ok, failed, events;
    uint64_t open_now, max_open;
    uint64_t *ttfb, *total;      /* owned: one per successful request */
    uv_timer_t deadline;
    uint64_t t0;
};

struct conn {
    struct client *cl;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    llhttp_t parser;
    uint64_t left;               /* requests still to send */
    uint64_t t_start, t_first;
    uint64_t events;
    unsigned data_match, done_match;  /* progress through the patterns */
    bool saw_done, got_body, busy, closed;
    char rbuf[READ_SIZE];
};

static llhttp_settings_t settings;

static void conn_send(struct conn *c);

static void finish_one(struct conn *c, bool ok)
{
    struct client *cl = c->cl;
    uint64_t now = uv_hrtime();

    if (c->got_body)
        cl->open_now--;
    c->busy = false;
    cl->done++;
    if (ok) {
        cl->ttfb[cl->ok] = (c->t_first - c->t_start) / 1000;
        cl->total[cl->ok] = (now - c->t_start) / 1000;
        cl->ok++;
        cl->events += c->events;
    } else {
        cl->failed++;
    }
    if (cl->done == cl->conns * cl->per_conn)
        uv_stop(cl->loop);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct client *cl = c->cl;
    /* A connection that dies takes its unsent requests with it. */
    while (c->left > 0) {
        c->left--;
        cl->done++;
        cl->failed++;
    }
    if (cl->done == cl->conns * cl->per_conn)
        uv_stop(cl->loop);
}

static void conn_fail(struct conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    if (c->busy)
        finish_one(c, false);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Advances a rolling match of pat over the bytes; returns the matches. */
static unsigned count_pattern(const char *pat, unsigned *state,
                              const char *p, size_t n)
{
    size_t plen = strlen(pat);
    unsigned hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == pat[*state])
            (*state)++;
        else
            *state = p[i] == pat[0] ? 1 : 0;
        if (*state == plen) {
            hits++;
            *state = 0;
        }
    }
    return hits;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = p->data;
    if (!c->got_body) {
        c->got_body = true;
        c->t_first = uv_hrtime();
        if (++c->cl->open_now > c->cl->max_open)
            c->cl->max_open = c->cl->open_now;
    }
    c->events += count_pattern("data: ", &c->data_match, at, n);
    if (count_pattern(c->cl->end_marker, &c->done_match, at, n) > 0)
        c->saw_done = true;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = p->data;
    bool ok = p->status_code == 200 && c->got_body &&
              (!c->cl->stream || c->saw_done);
    bool keep = llhttp_should_keep_alive(p);
    if (!ok && c->cl->failed < 5)
        fprintf(stderr, "stream_client: status %d, %s\n", p->status_code,
                c->saw_done ? "ended" : "no end marker");
    finish_one(c, ok);
    if (!keep) {
        conn_fail(c);
        return HPE_PAUSED;
    }
    if (c->left > 0)
        conn_send(c);
    return 0;
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
        conn_fail(c);
        return;
    }
    if (n == 0 || c->closed)
        return;
    e = llhttp_execute(&c->parser, buf->base, (size_t)n);
    if (e != HPE_OK && e != HPE_PAUSED)
        conn_fail(c);
}

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = pg_container_of(w, struct conn, write);
    if (status != 0)
        conn_fail(c);
}

static void conn_send(struct conn *c)
{
    c->left--;
    c->busy = true;
    c->got_body = false;
    c->saw_done = false;
    c->events = 0;
    c->data_match = c->done_match = 0;
    c->t_start = uv_hrtime();
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &c->cl->request, 1,
                 on_written) != 0)
        conn_fail(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = pg_container_of(req, struct conn, connect);
    if (status != 0) {
        if (c->cl->failed < 5)
            fprintf(stderr, "stream_client: connect: %s\n",
                    uv_strerror(status));
        conn_fail(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_fail(c);
        return;
    }
    conn_send(c);
}

static void on_deadline(uv_timer_t *t)
{
    struct client *cl = pg_container_of(t, struct client, deadline);
    fprintf(stderr, "stream_client: timed out with %" PRIu64 " of %" PRIu64
            " done\n", cl->done, cl->conns * cl->per_conn);
    uv_stop(cl->loop);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, uint64_t n, double q)
{
    uint64_t i;
    if (n == 0)
        return 0;
    i = (uint64_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static char *build_request(const char *host, uint64_t port, const char *path,
                           const char *model, bool stream, bool usage,
                           bool anthropic, size_t *len)
{
    char body[512];
    char *req;
    int bn = anthropic
        ? snprintf(body, sizeof body,
            "{\"model\":\"%s\",\"max_tokens\":256,\"system\":\"You are "
            "terse.\",\"messages\":[{\"role\":\"user\",\"content\":\"Say "
            "hello to the benchmark in a few words please\"}]%s}",
            model, stream ? ",\"stream\":true" : "")
        : snprintf(body, sizeof body,
            "{\"model\":\"%s\",\"messages\":[{\"role\":\"system\",\"content\":"
            "\"You are terse.\"},{\"role\":\"user\",\"content\":\"Say hello to "
            "the benchmark in a few words please\"}]%s%s}",
            model, stream ? ",\"stream\":true" : "",
            usage ? ",\"stream_options\":{\"include_usage\":true}" : "");
    size_t cap = (size_t)bn + 512;
    int n;
    if (bn < 0 || (size_t)bn >= sizeof body)
        return NULL;
    req = pg__malloc(cap);
    if (req == NULL)
        return NULL;
    n = snprintf(req, cap,
                 "POST %s HTTP/1.1\r\nHost: %s:%" PRIu64 "\r\n"
                 "Content-Type: application/json\r\n"
                 "Authorization: Bearer bench\r\n%s"
                 "Content-Length: %d\r\n\r\n%s",
                 path, host, port,
                 anthropic ? "anthropic-version: 2023-06-01\r\n" : "", bn, body);
    *len = (size_t)n;
    return req;
}

int main(int argc, char **argv)
{
    static struct client cl;
    const char *host = "127.0.0.1", *path = "/v1/chat/completions";
    const char *model = "fast-upstream";
    uint64_t port = 0, timeout_s = 60;
    bool usage = false, anthropic = false;
    struct conn *conns;
    uint64_t n;
    int rc = 0;

    cl.stream = true;
    cl.conns = 1;
    cl.per_conn = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-stream") == 0) {
            cl.stream = false;
            continue;
        }
        if (strcmp(a, "--anthropic") == 0) {
            anthropic = true;
            continue;
        }
        if (strcmp(a, "--usage") == 0) {
            usage = true;
            continue;
        }
        if (v != NULL && strcmp(a, "--host") == 0)
            host = v;
        else if (v != NULL && strcmp(a, "--path") == 0)
            path = v;
        else if (v != NULL && strcmp(a, "--model") == 0)
            model = v;
        else if (!(v != NULL &&
                   ((strcmp(a, "--port") == 0 && parse_u64(v, &port) == 0) ||
                    (strcmp(a, "--conns") == 0 && parse_u64(v, &cl.conns) == 0) ||
                    (strcmp(a, "--requests") == 0 &&
                     parse_u64(v, &cl.per_conn) == 0) ||
                    (strcmp(a, "--timeout-s") == 0 &&
                     parse_u64(v, &timeout_s) == 0)))) {
            fprintf(stderr, "usage: stream_client --port N [--host H] "
                    "[--path P] [--model M] [--conns C] [--requests R] "
                    "[--no-stream] [--usage] [--anthropic] [--timeout-s T]\n");
            return 2;
        }
        i++;
    }
    if (port == 0 || port > 65535 || cl.conns == 0 || cl.per_conn == 0 ||
        uv_ip4_addr(host, (int)port, &cl.addr) != 0) {
        fprintf(stderr, "stream_client: bad --host/--port/--conns/--requests\n");
        return 2;
    }

    llhttp_settings_init(&settings);
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;

    n = cl.conns * cl.per_conn;
    cl.loop = uv_default_loop();
    cl.end_marker = anthropic ? "event: message_stop" : "data: [DONE]";
    cl.request.base = build_request(host, port, path, model, cl.stream, usage,
                                    anthropic, &cl.request.len);
    cl.ttfb = pg__calloc(n, sizeof *cl.ttfb);
    cl.total = pg__calloc(n, sizeof *cl.total);
    conns = pg__calloc(cl.conns, sizeof *conns);
    if (cl.request.base == NULL || cl.ttfb == NULL || cl.total == NULL ||
        conns == NULL) {
        fprintf(stderr, "stream_client: out of memory\n");
        return 1;
    }
    uv_timer_init(cl.loop, &cl.deadline);
    uv_timer_start(&cl.deadline, on_deadline, timeout_s * 1000, 0);
    cl.t0 = uv_hrtime();
    for (uint64_t i = 0; i < cl.conns; i++) {
        struct conn *c = &conns[i];
        c->cl = &cl;
        c->left = cl.per_conn;
        uv_tcp_init(cl.loop, &c->tcp);
        c->tcp.data = c;
        llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
        c->parser.data = c;
        if (uv_tcp_connect(&c->connect, &c->tcp,
                           (const struct sockaddr *)&cl.addr, on_connect) != 0)
            conn_fail(c);
    }
    uv_run(cl.loop, UV_RUN_DEFAULT);

    qsort(cl.ttfb, cl.ok, sizeof *cl.ttfb, cmp_u64);
    qsort(cl.total, cl.ok, sizeof *cl.total, cmp_u64);
    printf("ok=%" PRIu64 " failed=%" PRIu64 " events=%.1f ttfb_p50=%" PRIu64
           " ttfb_p99=%" PRIu64 " total_p50=%" PRIu64 " total_p99=%" PRIu64
           " max_open=%" PRIu64 " wall_s=%.2f\n",
           cl.ok, n - cl.ok, cl.ok ? (double)cl.events / (double)cl.ok : 0.0,
           pct(cl.ttfb, cl.ok, 0.50), pct(cl.ttfb, cl.ok, 0.99),
           pct(cl.total, cl.ok, 0.50), pct(cl.total, cl.ok, 0.99),
           cl.max_open, (double)(uv_hrtime() - cl.t0) / 1e9);
    if (cl.ok != n)
        rc = 1;
    /* The process ends here: the kernel closes the sockets, so the
     * connections are not walked through uv_close one by one. */
    return rc;
}
