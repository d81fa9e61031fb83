/* fake_upstream.c: the scripted fake provider (see fake_upstream.h). The
 * server side (struct conn, the llhttp callbacks, the response state
 * machine) runs only on the fake's own thread and loop; the script queue,
 * the request records and the counters sit behind fu->mu and are shared
 * with test threads. Responses are refcounted (under fu->mu) because one
 * script may be served on several connections at once when it repeats. */
#include "fake_upstream.h"

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <llhttp.h>
#include <uv.h>

#include "test_client.h"

struct fu_part {
    char *data;
    size_t len;
    int delay_ms;
};

struct fu_resp {
    int refs; /* under fu->mu once pushed */
    int status;
    fu_header_t *headers;
    size_t nheaders;
    struct fu_part *parts;
    size_t nparts;
    bool chunked, stall, drop, close;
    int slow_head_ms;
    int endless_ms;
    char *endless_part;
};

struct conn;

struct fu {
    pthread_t th;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    int loop_close_rc;
    /* under mu: */
    fu_resp_t **queue;
    size_t nq, capq, qpos;
    fu_request_t **reqs;
    size_t nreqs, capreqs;
    unsigned opened, closed;
    unsigned gen; /* bumped by fu_reset: older connections are not counted */
    /* loop thread only: */
    unsigned conn_seq;
    struct conn *conns; /* doubly linked */
};

typedef enum conn_step {
    ST_IDLE = 0,  /* reading a request */
    ST_HEAD,      /* waiting slow_head_ms before the head */
    ST_PART,      /* waiting before part part_i */
    ST_ENDLESS,   /* repeating endless_part */
    ST_STALLED
} conn_step_t;

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    fu_t *fu;
    unsigned id;
    struct conn *prev, *next;
    llhttp_t parser;
    /* The request being parsed. */
    tc_bytes_t url, field, value, body;
    fu_header_t *hdrs;
    size_t nhdrs;
    bool in_value;
    bool keep_alive;
    /* The response being served. */
    fu_resp_t *resp;
    conn_step_t step;
    size_t part_i;
    bool busy;          /* a request is being answered */
    tc_bytes_t pending; /* bytes that arrived while busy */
    int writes;         /* uv_write requests in flight */
    bool want_close;    /* close once writes drained */
    bool delay_done;    /* the current part's delay has passed */
    bool closing;
    int handles_open;
    unsigned gen;       /* fu->gen when counted as opened; 0: not counted */
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;
    char data[];
};

static const llhttp_settings_t parser_settings;

#define FU_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- small helpers ------------------------------------------------------- */

static char *xstrndup(const char *p, size_t n)
{
    char *s = tc_xmalloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void lock(fu_t *fu) { pthread_mutex_lock(&fu->mu); }
static void unlock(fu_t *fu) { pthread_mutex_unlock(&fu->mu); }

static void resp_unref_locked(fu_resp_t *r)
{
    if (r && --r->refs == 0)
        fu_resp_free(r);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* ---- connections: teardown ----------------------------------------------- */

static void conn_free(struct conn *c)
{
    fu_t *fu = c->fu;

    tc_bytes_free(&c->url);
    tc_bytes_free(&c->field);
    tc_bytes_free(&c->value);
    tc_bytes_free(&c->body);
    tc_bytes_free(&c->pending);
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdrs[i].name);
        free(c->hdrs[i].value);
    }
    free(c->hdrs);
    lock(fu);
    resp_unref_locked(c->resp);
    if (c->gen != 0 && c->gen == fu->gen)
        fu->closed++;
    pthread_cond_broadcast(&fu->cv);
    unlock(fu);
    free(c);
}

static void on_conn_handle_close(uv_handle_t *h)
{
    struct conn *c = h->data;

    if (--c->handles_open == 0)
        conn_free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->fu->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_close);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_close);
}

/* Closes once what was written has been handed to the kernel. */
static void conn_close_after_writes(struct conn *c)
{
    if (c->writes == 0)
        conn_close(c);
    else
        c->want_close = true;
}

/* ---- writing --------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = FU_CONTAINER_OF(req, struct wreq, req);
    struct conn *c = w->c;

    (void)status;
    free(w);
    c->writes--;
    if (c->writes == 0 && c->want_close)
        conn_close(c);
}

static void conn_write(struct conn *c, const void *data, size_t len)
{
    struct wreq *w;
    uv_buf_t b;

    if (c->closing || len == 0)
        return;
    w = tc_xmalloc(sizeof *w + len);
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->writes++;
}

/* ---- serving a response ---------------------------------------------------- */

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 529: return "Site Overloaded";
    default: return "Fake";
    }
}

static bool resp_has_header(const fu_resp_t *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return true;
    return false;
}

static bool resp_is_chunked(const fu_resp_t *r)
{
    return r->chunked || r->endless_ms > 0;
}

static void send_head(struct conn *c)
{
    const fu_resp_t *r = c->resp;
    tc_bytes_t h = {0};
    char *line = tc_xasprintf("HTTP/1.1 %d %s\r\n", r->status,
                              reason_phrase(r->status));

    tc_bytes_append(&h, line, strlen(line));
    free(line);
    for (size_t i = 0; i < r->nheaders; i++) {
        line = tc_xasprintf("%s: %s\r\n", r->headers[i].name,
                            r->headers[i].value);
        tc_bytes_append(&h, line, strlen(line));
        free(line);
    }
    if (resp_is_chunked(r)) {
        if (!resp_has_header(r, "Transfer-Encoding"))
            tc_bytes_append(&h, "Transfer-Encoding: chunked\r\n", 28);
    } else if (!resp_has_header(r, "Content-Length")) {
        size_t total = 0;
        for (size_t i = 0; i < r->nparts; i++)
            total += r->parts[i].len;
        /* drop and stall promise bytes that never come. */
        if (r->drop || r->stall)
            total += 100;
        line = tc_xasprintf("Content-Length: %zu\r\n", total);
        tc_bytes_append(&h, line, strlen(line));
        free(line);
    }
    if (r->close || !c->keep_alive)
        tc_bytes_append(&h, "Connection: close\r\n", 19);
    tc_bytes_append(&h, "\r\n", 2);
    conn_write(c, h.p, h.n);
    tc_bytes_free(&h);
}

static void send_part(struct conn *c, const char *data, size_t len)
{
    if (!resp_is_chunked(c->resp)) {
        conn_write(c, data, len);
        return;
    }
    if (len == 0) /* an empty chunk would end the body */
        return;
    char *pre = tc_xasprintf("%zx\r\n", len);
    tc_bytes_t b = {0};
    tc_bytes_append(&b, pre, strlen(pre));
    tc_bytes_append(&b, data, len);
    tc_bytes_append(&b, "\r\n", 2);
    conn_write(c, b.p, b.n);
    tc_bytes_free(&b);
    free(pre);
}

static void conn_process(struct conn *c, const char *data, size_t len);
static void serve_next(struct conn *c);

static void on_conn_timer(uv_timer_t *t)
{
    serve_next(t->data);
}

/* The response ended normally: keep the connection for the next request
 * or close it. */
static void serve_finish(struct conn *c)
{
    bool close_it = c->resp->close || !c->keep_alive;
    fu_t *fu = c->fu;
    tc_bytes_t rest;

    lock(fu);
    resp_unref_locked(c->resp);
    unlock(fu);
    c->resp = NULL;
    c->busy = false;
    c->step = ST_IDLE;
    if (close_it) {
        conn_close_after_writes(c);
        return;
    }
    llhttp_resume(&c->parser);
    rest = c->pending;
    memset(&c->pending, 0, sizeof c->pending);
    if (rest.n > 0)
        conn_process(c, rest.p, rest.n);
    tc_bytes_free(&rest);
}

/* Advances the response by one step: the head, each part after its delay,
 * then the behaviour at the end. Driven by c->timer. */
static void serve_next(struct conn *c)
{
    const fu_resp_t *r = c->resp;

    if (c->closing || r == NULL)
        return;
    if (c->step == ST_HEAD) {
        send_head(c);
        c->step = ST_PART;
        c->part_i = 0;
    }
    if (c->step == ST_ENDLESS) {
        send_part(c, r->endless_part, strlen(r->endless_part));
        uv_timer_start(&c->timer, on_conn_timer, (uint64_t)r->endless_ms, 0);
        return;
    }
    while (c->step == ST_PART && c->part_i < r->nparts) {
        const struct fu_part *p = &r->parts[c->part_i];
        if (p->delay_ms > 0 && !c->delay_done) {
            c->delay_done = true;
            uv_timer_start(&c->timer, on_conn_timer, (uint64_t)p->delay_ms, 0);
            return;
        }
        c->delay_done = false;
        send_part(c, p->data, p->len);
        c->part_i++;
    }
    if (r->drop) {
        conn_close_after_writes(c);
    } else if (r->stall) {
        c->step = ST_STALLED;
    } else if (r->endless_ms > 0) {
        c->step = ST_ENDLESS;
        uv_timer_start(&c->timer, on_conn_timer, (uint64_t)r->endless_ms, 0);
    } else {
        if (resp_is_chunked(r))
            conn_write(c, "0\r\n\r\n", 5);
        serve_finish(c);
    }
}

static fu_resp_t *take_script(fu_t *fu)
{
    fu_resp_t *r = NULL;

    lock(fu);
    if (fu->nq > 0) {
        r = fu->queue[fu->qpos];
        r->refs++;
        if (fu->qpos + 1 < fu->nq)
            fu->qpos++;
    }
    unlock(fu);
    if (r == NULL) {
        r = fu_resp_new(500);
        fu_resp_header(r, "Content-Type", "text/plain");
        fu_resp_part_str(r, 0, "fake upstream: no response scripted\n");
        r->refs = 1;
    }
    return r;
}

static void serve_start(struct conn *c)
{
    c->busy = true;
    c->resp = take_script(c->fu);
    c->part_i = 0;
    c->delay_done = false;
    if (c->resp->slow_head_ms > 0) {
        c->step = ST_HEAD;
        uv_timer_start(&c->timer, on_conn_timer,
                       (uint64_t)c->resp->slow_head_ms, 0);
        return;
    }
    c->step = ST_HEAD;
    serve_next(c);
}

/* ---- parsing requests --------------------------------------------------- */

static struct conn *conn_of(llhttp_t *p) { return p->data; }

static void header_flush(struct conn *c)
{
    if (c->field.n == 0)
        return;
    c->hdrs = tc_xrealloc(c->hdrs, (c->nhdrs + 1) * sizeof *c->hdrs);
    c->hdrs[c->nhdrs].name = xstrndup(c->field.p, c->field.n);
    c->hdrs[c->nhdrs].value = xstrndup(c->value.p ? c->value.p : "", c->value.n);
    c->nhdrs++;
    c->field.n = 0;
    c->value.n = 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct conn *c = conn_of(p);

    c->url.n = 0;
    c->field.n = 0;
    c->value.n = 0;
    c->body.n = 0;
    c->in_value = false;
    for (size_t i = 0; i < c->nhdrs; i++) {
        free(c->hdrs[i].name);
        free(c->hdrs[i].value);
    }
    c->nhdrs = 0;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    tc_bytes_append(&conn_of(p)->url, at, n);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);

    if (c->in_value) {
        header_flush(c);
        c->in_value = false;
    }
    tc_bytes_append(&c->field, at, n);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);

    c->in_value = true;
    tc_bytes_append(&c->value, at, n);
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    header_flush(conn_of(p));
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    tc_bytes_append(&conn_of(p)->body, at, n);
    return 0;
}

static void record_request(struct conn *c)
{
    fu_t *fu = c->fu;
    fu_request_t *rq = tc_xmalloc(sizeof *rq);

    rq->method = tc_xstrdup(llhttp_method_name(c->parser.method));
    rq->path = xstrndup(c->url.p ? c->url.p : "", c->url.n);
    rq->body = xstrndup(c->body.p ? c->body.p : "", c->body.n);
    rq->body_len = c->body.n;
    rq->nheaders = c->nhdrs;
    rq->headers = c->nhdrs ? c->hdrs : NULL;
    if (!c->nhdrs)
        free(c->hdrs);
    c->hdrs = NULL;
    c->nhdrs = 0;
    rq->conn_id = c->id;
    lock(fu);
    if (fu->nreqs == fu->capreqs) {
        fu->capreqs = fu->capreqs ? fu->capreqs * 2 : 16;
        fu->reqs = tc_xrealloc(fu->reqs, fu->capreqs * sizeof *fu->reqs);
    }
    fu->reqs[fu->nreqs++] = rq;
    pthread_cond_broadcast(&fu->cv);
    unlock(fu);
}

static int on_message_complete(llhttp_t *p)
{
    struct conn *c = conn_of(p);

    c->keep_alive = llhttp_should_keep_alive(p);
    record_request(c);
    /* Answer this one before parsing a pipelined next request. */
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void conn_process(struct conn *c, const char *data, size_t len)
{
    llhttp_errno_t err;
    size_t used;

    if (c->busy) {
        tc_bytes_append(&c->pending, data, len);
        return;
    }
    err = llhttp_execute(&c->parser, data, len);
    if (err == HPE_OK)
        return;
    if (err != HPE_PAUSED) {
        conn_close(c);
        return;
    }
    used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
    if (used < len)
        tc_bytes_append(&c->pending, data + used, len - used);
    serve_start(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = tc_xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;

    if (nread < 0)
        conn_close(c); /* EOF or reset: the client went away */
    else if (nread > 0 && !c->closing)
        conn_process(c, buf->base, (size_t)nread);
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    fu_t *fu = server->data;
    struct conn *c;

    if (status < 0)
        return;
    c = tc_xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    c->fu = fu;
    uv_tcp_init(&fu->loop, &c->tcp);
    uv_timer_init(&fu->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = fu->conns;
    if (fu->conns)
        fu->conns->prev = c;
    fu->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    lock(fu);
    fu->opened++;
    c->gen = fu->gen;
    c->id = ++fu->conn_seq;
    unlock(fu);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- the server thread ---------------------------------------------------- */

static void on_stop_async(uv_async_t *a)
{
    fu_t *fu = a->data;

    while (fu->conns)
        conn_close(fu->conns);
    uv_close((uv_handle_t *)&fu->listener, NULL);
    uv_close((uv_handle_t *)&fu->stop_async, NULL);
}

static void *fu_thread(void *arg)
{
    fu_t *fu = arg;
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof bound;

    if (uv_loop_init(&fu->loop) != 0)
        abort();
    uv_tcp_init(&fu->loop, &fu->listener);
    fu->listener.data = fu;
    uv_async_init(&fu->loop, &fu->stop_async, on_stop_async);
    fu->stop_async.data = fu;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&fu->listener, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&fu->listener, 128, on_connection) != 0 ||
        uv_tcp_getsockname(&fu->listener, (struct sockaddr *)&bound, &len) != 0) {
        fprintf(stderr, "fake_upstream: cannot listen on 127.0.0.1\n");
        abort();
    }
    lock(fu);
    fu->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    fu->ready = true;
    pthread_cond_broadcast(&fu->cv);
    unlock(fu);
    uv_run(&fu->loop, UV_RUN_DEFAULT);
    fu->loop_close_rc = uv_loop_close(&fu->loop);
    return NULL;
}

fu_t *fu_start(void)
{
    fu_t *fu = tc_xmalloc(sizeof *fu);

    memset(fu, 0, sizeof *fu);
    fu->gen = 1;
    pthread_mutex_init(&fu->mu, NULL);
    pthread_cond_init(&fu->cv, NULL);
    if (pthread_create(&fu->th, NULL, fu_thread, fu) != 0)
        abort();
    lock(fu);
    while (!fu->ready)
        pthread_cond_wait(&fu->cv, &fu->mu);
    unlock(fu);
    return fu;
}

int fu_port(fu_t *fu) { return fu->port; }

char *fu_url(fu_t *fu, const char *path)
{
    return tc_xasprintf("http://127.0.0.1:%d%s", fu->port, path ? path : "");
}

static void clear_locked(fu_t *fu)
{
    for (size_t i = 0; i < fu->nq; i++)
        resp_unref_locked(fu->queue[i]);
    fu->nq = 0;
    fu->qpos = 0;
    for (size_t i = 0; i < fu->nreqs; i++)
        fu_request_free(fu->reqs[i]);
    fu->nreqs = 0;
}

void fu_stop(fu_t *fu)
{
    if (fu == NULL)
        return;
    uv_async_send(&fu->stop_async);
    pthread_join(fu->th, NULL);
    if (fu->loop_close_rc != 0) {
        fprintf(stderr, "fake_upstream: loop did not close clean: %s\n",
                uv_strerror(fu->loop_close_rc));
        abort();
    }
    lock(fu);
    clear_locked(fu);
    unlock(fu);
    free(fu->queue);
    free(fu->reqs);
    pthread_cond_destroy(&fu->cv);
    pthread_mutex_destroy(&fu->mu);
    free(fu);
}

void fu_reset(fu_t *fu)
{
    lock(fu);
    clear_locked(fu);
    fu->opened = 0;
    fu->closed = 0;
    fu->gen++;
    unlock(fu);
}

void fu_push(fu_t *fu, fu_resp_t *r)
{
    lock(fu);
    if (fu->nq == fu->capq) {
        fu->capq = fu->capq ? fu->capq * 2 : 8;
        fu->queue = tc_xrealloc(fu->queue, fu->capq * sizeof *fu->queue);
    }
    r->refs = 1;
    fu->queue[fu->nq++] = r;
    unlock(fu);
}

/* ---- recorded requests and counters --------------------------------------- */

size_t fu_requests_count(fu_t *fu)
{
    size_t n;

    lock(fu);
    n = fu->nreqs;
    unlock(fu);
    return n;
}

fu_request_t *fu_request(fu_t *fu, size_t i)
{
    fu_request_t *out = NULL;

    lock(fu);
    if (i < fu->nreqs) {
        const fu_request_t *rq = fu->reqs[i];
        out = tc_xmalloc(sizeof *out);
        out->method = tc_xstrdup(rq->method);
        out->path = tc_xstrdup(rq->path);
        out->body = xstrndup(rq->body, rq->body_len);
        out->body_len = rq->body_len;
        out->conn_id = rq->conn_id;
        out->nheaders = rq->nheaders;
        out->headers = NULL;
        if (rq->nheaders) {
            out->headers = tc_xmalloc(rq->nheaders * sizeof *out->headers);
            for (size_t k = 0; k < rq->nheaders; k++) {
                out->headers[k].name = tc_xstrdup(rq->headers[k].name);
                out->headers[k].value = tc_xstrdup(rq->headers[k].value);
            }
        }
    }
    unlock(fu);
    return out;
}

void fu_request_free(fu_request_t *rq)
{
    if (rq == NULL)
        return;
    for (size_t i = 0; i < rq->nheaders; i++) {
        free(rq->headers[i].name);
        free(rq->headers[i].value);
    }
    free(rq->headers);
    free(rq->method);
    free(rq->path);
    free(rq->body);
    free(rq);
}

const char *fu_request_header(const fu_request_t *rq, const char *name)
{
    for (size_t i = 0; i < rq->nheaders; i++)
        if (strcasecmp(rq->headers[i].name, name) == 0)
            return rq->headers[i].value;
    return NULL;
}

unsigned fu_conns_opened(fu_t *fu)
{
    unsigned n;

    lock(fu);
    n = fu->opened;
    unlock(fu);
    return n;
}

unsigned fu_conns_closed(fu_t *fu)
{
    unsigned n;

    lock(fu);
    n = fu->closed;
    unlock(fu);
    return n;
}

/* Waits on fu->cv until *counter >= n or the deadline passes. */
static bool wait_for(fu_t *fu, const size_t *szc, const unsigned *uc, size_t n,
                     int timeout_ms)
{
    struct timespec dl;
    bool ok;

    deadline_after(&dl, timeout_ms);
    lock(fu);
    for (;;) {
        size_t v = szc ? *szc : *uc;
        if (v >= n) {
            ok = true;
            break;
        }
        if (pthread_cond_timedwait(&fu->cv, &fu->mu, &dl) == ETIMEDOUT) {
            v = szc ? *szc : *uc;
            ok = v >= n;
            break;
        }
    }
    unlock(fu);
    return ok;
}

bool fu_wait_requests(fu_t *fu, size_t n, int timeout_ms)
{
    return wait_for(fu, &fu->nreqs, NULL, n, timeout_ms);
}

bool fu_wait_closed(fu_t *fu, unsigned n, int timeout_ms)
{
    return wait_for(fu, NULL, &fu->closed, n, timeout_ms);
}

/* ---- building responses --------------------------------------------------- */

fu_resp_t *fu_resp_new(int status)
{
    fu_resp_t *r = tc_xmalloc(sizeof *r);

    memset(r, 0, sizeof *r);
    r->status = status;
    return r;
}

void fu_resp_free(fu_resp_t *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    for (size_t i = 0; i < r->nparts; i++)
        free(r->parts[i].data);
    free(r->parts);
    free(r->endless_part);
    free(r);
}

void fu_resp_header(fu_resp_t *r, const char *name, const char *value)
{
    r->headers = tc_xrealloc(r->headers, (r->nheaders + 1) * sizeof *r->headers);
    r->headers[r->nheaders].name = tc_xstrdup(name);
    r->headers[r->nheaders].value = tc_xstrdup(value);
    r->nheaders++;
}

void fu_resp_part(fu_resp_t *r, int delay_ms, const void *data, size_t len)
{
    r->parts = tc_xrealloc(r->parts, (r->nparts + 1) * sizeof *r->parts);
    r->parts[r->nparts].data = xstrndup(data, len);
    r->parts[r->nparts].len = len;
    r->parts[r->nparts].delay_ms = delay_ms;
    r->nparts++;
}

void fu_resp_part_str(fu_resp_t *r, int delay_ms, const char *s)
{
    fu_resp_part(r, delay_ms, s, strlen(s));
}

void fu_resp_part_fill(fu_resp_t *r, int delay_ms, size_t n, char ch)
{
    char *p = tc_xmalloc(n ? n : 1);

    memset(p, ch, n);
    fu_resp_part(r, delay_ms, p, n);
    free(p);
}

void fu_resp_chunked(fu_resp_t *r) { r->chunked = true; }
void fu_resp_slow_head(fu_resp_t *r, int ms) { r->slow_head_ms = ms; }
void fu_resp_stall(fu_resp_t *r) { r->stall = true; }
void fu_resp_drop(fu_resp_t *r) { r->drop = true; }
void fu_resp_close(fu_resp_t *r) { r->close = true; }

void fu_resp_endless(fu_resp_t *r, int every_ms, const char *part)
{
    r->endless_ms = every_ms > 0 ? every_ms : 1;
    free(r->endless_part);
    r->endless_part = tc_xstrdup(part);
}

/* ---- provider bodies --------------------------------------------------------
 * Shapes follow the providers' API references: OpenAI "The chat completion
 * object" / "The chat completion chunk object" / error object; Anthropic
 * Messages response, "Streaming Messages" event flow and "Errors". */

#define FU_CREATED 1700000000

static void jraw(tc_bytes_t *b, const char *s) { tc_bytes_append(b, s, strlen(s)); }

static void jfmt(tc_bytes_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void jfmt(tc_bytes_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof tmp);
    tc_bytes_append(b, tmp, (size_t)n);
}

/* A JSON string literal of p[0..n), or null when p is NULL. */
static void jstrn(tc_bytes_t *b, const char *p, size_t n)
{
    if (p == NULL) {
        jraw(b, "null");
        return;
    }
    tc_bytes_append(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            tc_bytes_append(b, e, 2);
        } else if (ch == '\n') {
            jraw(b, "\\n");
        } else if (ch == '\r') {
            jraw(b, "\\r");
        } else if (ch == '\t') {
            jraw(b, "\\t");
        } else if (ch < 0x20) {
            jfmt(b, "\\u%04x", ch);
        } else {
            tc_bytes_append(b, &p[i], 1);
        }
    }
    tc_bytes_append(b, "\"", 1);
}

static void jstr(tc_bytes_t *b, const char *s) { jstrn(b, s, s ? strlen(s) : 0); }

/* Splits s into n pieces of about equal size without cutting a UTF-8
 * sequence. Returns the end offset of piece i. */
static size_t split_end(const char *s, size_t len, int n, int i)
{
    size_t e;

    if (i + 1 >= n)
        return len;
    e = len * (size_t)(i + 1) / (size_t)n;
    while (e < len && ((unsigned char)s[e] & 0xC0) == 0x80)
        e++;
    return e;
}

static int nparts_of(const fu_llm_opts_t *o) { return o->nparts > 0 ? o->nparts : 1; }
static int in_tok(const fu_llm_opts_t *o) { return o->input_tokens ? o->input_tokens : 12; }
static int out_tok(const fu_llm_opts_t *o) { return o->output_tokens ? o->output_tokens : 7; }

static const char *tool_id(const fu_tool_call_t *t, const char *prefix, size_t i,
                           char *buf, size_t cap)
{
    if (t->id)
        return t->id;
    snprintf(buf, cap, "%sfake%zu", prefix, i + 1);
    return buf;
}

static const char *tool_args(const fu_tool_call_t *t)
{
    return t->arguments ? t->arguments : "{}";
}

static void json_resp_finish(fu_resp_t *r, tc_bytes_t *b)
{
    fu_resp_header(r, "Content-Type", "application/json");
    fu_resp_part(r, 0, b->p, b->n);
    tc_bytes_free(b);
}

/* ---- OpenAI ---- */

static const char *oa_id(const fu_llm_opts_t *o) { return o->id ? o->id : "chatcmpl-fake1"; }
static const char *oa_model(const fu_llm_opts_t *o) { return o->model ? o->model : "gpt-4o-mini"; }

static const char *oa_finish(const fu_llm_opts_t *o)
{
    if (o->stop_reason)
        return o->stop_reason;
    return o->ntools > 0 ? "tool_calls" : "stop";
}

static void oa_usage(tc_bytes_t *b, const fu_llm_opts_t *o)
{
    jfmt(b, "{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}",
         in_tok(o), out_tok(o), in_tok(o) + out_tok(o));
}

fu_resp_t *fu_openai_chat(const fu_llm_opts_t *o)
{
    fu_resp_t *r = fu_resp_new(200);
    tc_bytes_t b = {0};
    char idb[64];

    jraw(&b, "{\"id\":");
    jstr(&b, oa_id(o));
    jfmt(&b, ",\"object\":\"chat.completion\",\"created\":%d,\"model\":", FU_CREATED);
    jstr(&b, oa_model(o));
    jraw(&b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    jstr(&b, o->text);
    jraw(&b, ",\"refusal\":null");
    if (o->ntools > 0) {
        jraw(&b, ",\"tool_calls\":[");
        for (size_t i = 0; i < o->ntools; i++) {
            const fu_tool_call_t *t = &o->tools[i];
            jraw(&b, i ? ",{\"id\":" : "{\"id\":");
            jstr(&b, tool_id(t, "call_", i, idb, sizeof idb));
            jraw(&b, ",\"type\":\"function\",\"function\":{\"name\":");
            jstr(&b, t->name);
            jraw(&b, ",\"arguments\":");
            jstr(&b, tool_args(t));
            jraw(&b, "}}");
        }
        jraw(&b, "]");
    }
    jraw(&b, "},\"logprobs\":null,\"finish_reason\":");
    jstr(&b, oa_finish(o));
    jraw(&b, "}],\"usage\":");
    oa_usage(&b, o);
    jraw(&b, ",\"system_fingerprint\":\"fp_fake\"}");
    json_resp_finish(r, &b);
    return r;
}

/* One "data: {chunk}\n\n" event whose choices[0].delta is delta (raw JSON). */
static void oa_chunk(fu_resp_t *r, const fu_llm_opts_t *o, int delay,
                     const char *delta, const char *finish)
{
    tc_bytes_t b = {0};

    jraw(&b, "data: {\"id\":");
    jstr(&b, oa_id(o));
    jfmt(&b, ",\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":",
         FU_CREATED);
    jstr(&b, oa_model(o));
    jraw(&b, ",\"system_fingerprint\":\"fp_fake\",\"choices\":[{\"index\":0,\"delta\":");
    jraw(&b, delta);
    jraw(&b, ",\"logprobs\":null,\"finish_reason\":");
    jstr(&b, finish);
    jraw(&b, "}]");
    if (o->usage_chunk)
        jraw(&b, ",\"usage\":null");
    jraw(&b, "}\n\n");
    fu_resp_part(r, delay, b.p, b.n);
    tc_bytes_free(&b);
}

fu_resp_t *fu_openai_chat_stream(const fu_llm_opts_t *o)
{
    fu_resp_t *r = fu_resp_new(200);
    int n = nparts_of(o), d = o->delay_ms;
    tc_bytes_t b = {0};
    char idb[64];

    fu_resp_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    fu_resp_chunked(r);
    oa_chunk(r, o, 0,
             o->text ? "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"
                     : "{\"role\":\"assistant\",\"content\":null,\"refusal\":null}",
             NULL);
    if (o->text) {
        size_t len = strlen(o->text), at = 0;
        for (int i = 0; i < n; i++) {
            size_t e = split_end(o->text, len, n, i);
            b.n = 0;
            jraw(&b, "{\"content\":");
            jstrn(&b, o->text + at, e - at);
            jraw(&b, "}");
            oa_chunk(r, o, d, b.p, NULL);
            at = e;
        }
    }
    for (size_t t = 0; t < o->ntools; t++) {
        const fu_tool_call_t *tc = &o->tools[t];
        const char *args = tool_args(tc);
        size_t len = strlen(args), at = 0;
        b.n = 0;
        jfmt(&b, "{\"tool_calls\":[{\"index\":%zu,\"id\":", t);
        jstr(&b, tool_id(tc, "call_", t, idb, sizeof idb));
        jraw(&b, ",\"type\":\"function\",\"function\":{\"name\":");
        jstr(&b, tc->name);
        jraw(&b, ",\"arguments\":\"\"}}]}");
        oa_chunk(r, o, d, b.p, NULL);
        for (int i = 0; i < n; i++) {
            size_t e = split_end(args, len, n, i);
            b.n = 0;
            jfmt(&b, "{\"tool_calls\":[{\"index\":%zu,\"function\":{\"arguments\":", t);
            jstrn(&b, args + at, e - at);
            jraw(&b, "}}]}");
            oa_chunk(r, o, d, b.p, NULL);
            at = e;
        }
    }
    oa_chunk(r, o, d, "{}", oa_finish(o));
    if (o->usage_chunk) {
        b.n = 0;
        jraw(&b, "data: {\"id\":");
        jstr(&b, oa_id(o));
        jfmt(&b, ",\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":",
             FU_CREATED);
        jstr(&b, oa_model(o));
        jraw(&b, ",\"system_fingerprint\":\"fp_fake\",\"choices\":[],\"usage\":");
        oa_usage(&b, o);
        jraw(&b, "}\n\n");
        fu_resp_part(r, d, b.p, b.n);
    }
    fu_resp_part_str(r, d, "data: [DONE]\n\n");
    tc_bytes_free(&b);
    return r;
}

fu_resp_t *fu_openai_error(int status, const char *type, const char *code,
                           const char *message, int retry_after_s)
{
    fu_resp_t *r = fu_resp_new(status);
    tc_bytes_t b = {0};

    jraw(&b, "{\"error\":{\"message\":");
    jstr(&b, message);
    jraw(&b, ",\"type\":");
    jstr(&b, type);
    jraw(&b, ",\"param\":null,\"code\":");
    jstr(&b, code);
    jraw(&b, "}}");
    if (retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after_s);
        fu_resp_header(r, "Retry-After", v);
    }
    json_resp_finish(r, &b);
    return r;
}

fu_resp_t *fu_openai_rate_limited(int retry_after_s)
{
    return fu_openai_error(
        429, "requests", "rate_limit_exceeded",
        "Rate limit reached for gpt-4o-mini in organization org-fake on "
        "requests per min (RPM): Limit 3, Used 3, Requested 1. Please try "
        "again in 20s.",
        retry_after_s);
}

fu_resp_t *fu_openai_server_error(void)
{
    return fu_openai_error(500, "server_error", NULL,
                           "The server had an error while processing your "
                           "request. Sorry about that!",
                           0);
}

fu_resp_t *fu_openai_200_error(void)
{
    fu_resp_t *r = fu_openai_server_error();

    r->status = 200;
    return r;
}

fu_resp_t *fu_malformed_json(void)
{
    fu_resp_t *r = fu_resp_new(200);

    fu_resp_header(r, "Content-Type", "application/json");
    fu_resp_part_str(r, 0,
                     "{\"id\":\"chatcmpl-fake1\",\"object\":\"chat.completion\","
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":");
    return r;
}

/* ---- Anthropic ---- */

static const char *an_id(const fu_llm_opts_t *o) { return o->id ? o->id : "msg_fake1"; }
static const char *an_model(const fu_llm_opts_t *o)
{
    return o->model ? o->model : "claude-sonnet-4-20250514";
}

static const char *an_stop(const fu_llm_opts_t *o)
{
    if (o->stop_reason)
        return o->stop_reason;
    return o->ntools > 0 ? "tool_use" : "end_turn";
}

fu_resp_t *fu_anthropic_message(const fu_llm_opts_t *o)
{
    fu_resp_t *r = fu_resp_new(200);
    tc_bytes_t b = {0};
    char idb[64];
    bool first = true;

    jraw(&b, "{\"id\":");
    jstr(&b, an_id(o));
    jraw(&b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    jstr(&b, an_model(o));
    jraw(&b, ",\"content\":[");
    if (o->text) {
        jraw(&b, "{\"type\":\"text\",\"text\":");
        jstr(&b, o->text);
        jraw(&b, "}");
        first = false;
    }
    for (size_t i = 0; i < o->ntools; i++) {
        const fu_tool_call_t *t = &o->tools[i];
        jraw(&b, first ? "{" : ",{");
        first = false;
        jraw(&b, "\"type\":\"tool_use\",\"id\":");
        jstr(&b, tool_id(t, "toolu_", i, idb, sizeof idb));
        jraw(&b, ",\"name\":");
        jstr(&b, t->name);
        jraw(&b, ",\"input\":");
        jraw(&b, tool_args(t));
        jraw(&b, "}");
    }
    jraw(&b, "],\"stop_reason\":");
    jstr(&b, an_stop(o));
    jfmt(&b, ",\"stop_sequence\":null,\"usage\":{\"input_tokens\":%d,"
             "\"output_tokens\":%d}}",
         in_tok(o), out_tok(o));
    json_resp_finish(r, &b);
    return r;
}

static void an_event(fu_resp_t *r, int delay, const char *event, const char *data)
{
    char *s = tc_xasprintf("event: %s\ndata: %s\n\n", event, data);

    fu_resp_part_str(r, delay, s);
    free(s);
}

fu_resp_t *fu_anthropic_stream(const fu_llm_opts_t *o)
{
    fu_resp_t *r = fu_resp_new(200);
    int n = nparts_of(o), d = o->delay_ms, index = 0;
    tc_bytes_t b = {0};
    char idb[64];

    fu_resp_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    fu_resp_chunked(r);
    jraw(&b, "{\"type\":\"message_start\",\"message\":{\"id\":");
    jstr(&b, an_id(o));
    jraw(&b, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    jstr(&b, an_model(o));
    jfmt(&b, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
             "\"usage\":{\"input_tokens\":%d,\"output_tokens\":1}}}",
         in_tok(o));
    an_event(r, 0, "message_start", b.p);
    an_event(r, d, "ping", "{\"type\": \"ping\"}");
    if (o->text) {
        size_t len = strlen(o->text), at = 0;
        an_event(r, d, "content_block_start",
                 "{\"type\":\"content_block_start\",\"index\":0,"
                 "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
        for (int i = 0; i < n; i++) {
            size_t e = split_end(o->text, len, n, i);
            b.n = 0;
            jraw(&b, "{\"type\":\"content_block_delta\",\"index\":0,"
                     "\"delta\":{\"type\":\"text_delta\",\"text\":");
            jstrn(&b, o->text + at, e - at);
            jraw(&b, "}}");
            an_event(r, d, "content_block_delta", b.p);
            at = e;
        }
        an_event(r, d, "content_block_stop",
                 "{\"type\":\"content_block_stop\",\"index\":0}");
        index++;
    }
    for (size_t t = 0; t < o->ntools; t++, index++) {
        const fu_tool_call_t *tc = &o->tools[t];
        const char *args = tool_args(tc);
        size_t len = strlen(args), at = 0;
        b.n = 0;
        jfmt(&b, "{\"type\":\"content_block_start\",\"index\":%d,"
                 "\"content_block\":{\"type\":\"tool_use\",\"id\":", index);
        jstr(&b, tool_id(tc, "toolu_", t, idb, sizeof idb));
        jraw(&b, ",\"name\":");
        jstr(&b, tc->name);
        jraw(&b, ",\"input\":{}}}");
        an_event(r, d, "content_block_start", b.p);
        for (int i = 0; i < n; i++) {
            size_t e = split_end(args, len, n, i);
            b.n = 0;
            jfmt(&b, "{\"type\":\"content_block_delta\",\"index\":%d,"
                     "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":",
                 index);
            jstrn(&b, args + at, e - at);
            jraw(&b, "}}");
            an_event(r, d, "content_block_delta", b.p);
            at = e;
        }
        b.n = 0;
        jfmt(&b, "{\"type\":\"content_block_stop\",\"index\":%d}", index);
        an_event(r, d, "content_block_stop", b.p);
    }
    b.n = 0;
    jraw(&b, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    jstr(&b, an_stop(o));
    jfmt(&b, ",\"stop_sequence\":null},\"usage\":{\"output_tokens\":%d}}", out_tok(o));
    an_event(r, d, "message_delta", b.p);
    an_event(r, d, "message_stop", "{\"type\":\"message_stop\"}");
    tc_bytes_free(&b);
    return r;
}

fu_resp_t *fu_anthropic_error(int status, const char *type, const char *message,
                              int retry_after_s)
{
    fu_resp_t *r = fu_resp_new(status);
    tc_bytes_t b = {0};

    jraw(&b, "{\"type\":\"error\",\"error\":{\"type\":");
    jstr(&b, type);
    jraw(&b, ",\"message\":");
    jstr(&b, message);
    jraw(&b, "},\"request_id\":\"req_fake1\"}");
    fu_resp_header(r, "request-id", "req_fake1");
    if (retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after_s);
        fu_resp_header(r, "retry-after", v);
    }
    json_resp_finish(r, &b);
    return r;
}

fu_resp_t *fu_anthropic_rate_limited(int retry_after_s)
{
    return fu_anthropic_error(429, "rate_limit_error",
                              "Number of request tokens has exceeded your "
                              "per-minute rate limit",
                              retry_after_s);
}

fu_resp_t *fu_anthropic_server_error(void)
{
    return fu_anthropic_error(500, "api_error", "Internal server error", 0);
}

fu_resp_t *fu_anthropic_overloaded(void)
{
    return fu_anthropic_error(529, "overloaded_error", "Overloaded", 0);
}

fu_resp_t *fu_anthropic_200_error(void)
{
    fu_resp_t *r = fu_anthropic_server_error();

    r->status = 200;
    return r;
}
