/* test_http_server.c: lib/http end to end. Each test makes its own loop,
 * binds 127.0.0.1:0, runs a pg_http_server with a test handler (echo,
 * delayed echo, streaming on a timer, never answering, one huge chunk,
 * echo from a uv_check callback for a batch of connections) and
 * drives it from a client thread with raw sockets so the exact bytes are
 * ours (pipelining, garbage, slow headers). The client thread only records
 * what it saw; the main thread asserts after joining it, and every test
 * ends with uv_loop_close() == 0. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/str.h"
#include "http/server.h"
#include "test_client.h"

typedef enum mode {
    MODE_ECHO,   /* 200, body = request body or path */
    MODE_DELAY,  /* like echo, 10 ms later from a timer */
    MODE_STREAM, /* chunked "chunk-<i>\n" x nchunks, one per tick */
    MODE_NEVER,  /* never answers */
    MODE_BIG,    /* one chunk of BIG_LEN bytes, ends on drain */
    MODE_CHECK   /* echo once `batch` requests wait, from a uv_check */
} mode_t_;

#define BIG_LEN (8u * 1024u * 1024u)
#define MAXR 8

typedef struct fx fx_t;
typedef void (*client_fn)(fx_t *fx);

struct fx {
    uv_loop_t loop;
    pg_http_server_t *srv;
    int port;
    pg_http_limits_t limits;
    mode_t_ mode;
    int nchunks;
    bool drain_on_stream; /* drain right after stream_start of /drain */
    uv_async_t stop;
    uv_timer_t timer; /* the delayed / streaming handler's one timer */
    pg_http_req_t *cur; /* the request the timer works for */
    /* MODE_CHECK: the check handle answers the held requests from the
     * loop's check phase (after I/O, before close callbacks), then closes
     * the server if close_in_check. A request handed over outside the poll
     * phase would leave the check waiting for the next I/O: the idle
     * handle, active with it, keeps the poll from blocking. */
    uv_check_t check;
    uv_idle_t check_idle;
    int batch;
    pg_http_req_t *held[MAXR];
    int nheld;
    bool close_in_check;
    int sent_chunks;
    client_fn client;
    pthread_t thr;
    bool server_done;

    /* Seen by the loop thread; the client thread may poll them. */
    atomic_int nrequests;
    atomic_int ncomplete;
    atomic_int naborts;
    atomic_int naborted_complete; /* on_complete with req->aborted */
    atomic_int abort_before_complete;
    atomic_int ndrains;
    int big_rc;
    int last_status;
    char last_body[256];
    char last_path[128];
    char last_query[128];
    char last_request_id[PG_REQUEST_ID_MAX + 1];
    bool last_keep_alive;
    int last_minor;
    pg_str_t last_remote_seen;
    char remote[64];

    /* Written by the client thread, read after join. */
    tc_bytes_t out[MAXR];
    bool closed[MAXR];
    bool ok[MAXR];
    size_t extra;
};

static char *big_data;

/* ---- handler -------------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, pg_str_t s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    if (n > 0)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static void echo_now(pg_http_req_t *req)
{
    pg_http_header_t extra[] = {{PG_STR("X-Method"), req->method}};
    pg_str_t body = req->body.n > 0 ? req->body : req->path;
    pg_http_respond(req, 200, PG_STR("text/plain"), extra, 1, body);
}

static void on_tick(uv_timer_t *t)
{
    fx_t *fx = pg_container_of(t, fx_t, timer);
    pg_http_req_t *req = fx->cur;
    if (req == NULL)
        return;
    if (fx->mode == MODE_DELAY) {
        fx->cur = NULL;
        echo_now(req);
        return;
    }
    if (fx->sent_chunks < fx->nchunks) {
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "chunk-%d\n", fx->sent_chunks++);
        pg_http_stream_write(req, pg_str(buf, (size_t)n));
        uv_timer_start(&fx->timer, on_tick, 5, 0);
    } else {
        fx->cur = NULL;
        pg_http_stream_end(req);
    }
}

static void on_server_done(void *ud);

static void on_check_idle(uv_idle_t *h) { (void)h; }

static void on_check(uv_check_t *h)
{
    fx_t *fx = pg_container_of(h, fx_t, check);
    uv_check_stop(h);
    uv_idle_stop(&fx->check_idle);
    for (int i = 0; i < fx->nheld; i++)
        echo_now(fx->held[i]);
    fx->nheld = 0;
    if (fx->close_in_check)
        pg_http_server_close(fx->srv, on_server_done, fx);
}

static void on_abort_cb(void *ud)
{
    fx_t *fx = ud;
    atomic_fetch_add(&fx->naborts, 1);
    if (atomic_load(&fx->ncomplete) == 0)
        atomic_store(&fx->abort_before_complete, 1);
    /* The handler cancels its work: no more chunks. */
    if (fx->cur != NULL) {
        assert_int_equal(pg_http_stream_write(fx->cur, PG_STR("x")),
                         PG_ECANCELED);
        fx->cur = NULL;
        uv_timer_stop(&fx->timer);
    }
}

static void on_big_drain(void *ud)
{
    fx_t *fx = ud;
    atomic_fetch_add(&fx->ndrains, 1);
    if (fx->cur != NULL) {
        pg_http_req_t *req = fx->cur;
        fx->cur = NULL;
        pg_http_stream_end(req);
    }
}

static void on_request(void *ud, pg_http_req_t *req)
{
    fx_t *fx = ud;
    atomic_fetch_add(&fx->nrequests, 1);
    copy_str(fx->last_path, sizeof(fx->last_path), req->path);
    copy_str(fx->last_query, sizeof(fx->last_query), req->query);
    copy_str(fx->remote, sizeof(fx->remote), req->remote_addr);
    strcpy(fx->last_request_id, req->request_id);
    fx->last_keep_alive = req->keep_alive;
    fx->last_minor = req->http_minor;
    /* The body is NUL-terminated in memory for cJSON. */
    assert_int_equal(req->body.p[req->body.n], '\0');
    pg_http_req_on_abort(req, on_abort_cb, fx);
    switch (fx->mode) {
    case MODE_ECHO:
        echo_now(req);
        /* A second answer is refused. */
        assert_int_equal(pg_http_respond(req, 200, PG_STR(""), NULL, 0,
                                         PG_STR("")),
                         PG_ESTATE);
        break;
    case MODE_DELAY:
        fx->cur = req;
        uv_timer_start(&fx->timer, on_tick, 10, 0);
        break;
    case MODE_STREAM:
        fx->cur = req;
        fx->sent_chunks = 0;
        assert_int_equal(pg_http_stream_start(req, 200,
                                              PG_STR("text/event-stream"),
                                              NULL, 0),
                         PG_OK);
        if (fx->drain_on_stream && pg_str_eqc(req->path, "/drain"))
            pg_http_server_drain(fx->srv);
        uv_timer_start(&fx->timer, on_tick, 5, 0);
        break;
    case MODE_NEVER:
        break;
    case MODE_CHECK:
        fx->held[fx->nheld++] = req;
        if (fx->nheld == fx->batch) {
            uv_check_start(&fx->check, on_check);
            uv_idle_start(&fx->check_idle, on_check_idle);
        }
        break;
    case MODE_BIG:
        fx->cur = req;
        pg_http_req_on_drain(req, on_big_drain, fx);
        pg_http_stream_start(req, 200, PG_STR("application/octet-stream"),
                             NULL, 0);
        fx->big_rc = pg_http_stream_write(req, pg_str(big_data, BIG_LEN));
        if (fx->big_rc == PG_OK) {
            fx->cur = NULL;
            pg_http_stream_end(req);
        }
        break;
    }
}

static void on_complete(void *ud, pg_http_req_t *req)
{
    fx_t *fx = ud;
    atomic_fetch_add(&fx->ncomplete, 1);
    if (req->aborted)
        atomic_fetch_add(&fx->naborted_complete, 1);
    fx->last_status = req->status;
    if (fx->cur == req) {
        fx->cur = NULL;
        uv_timer_stop(&fx->timer);
    }
}

static pg_str_t render_error(void *ud, pg_arena_t *arena, pg_str_t path,
                             int status, const char *message)
{
    return pg_arena_printf(arena, "{\"test_error\":%d,\"path\":\"%.*s\"}",
                           status, (int)path.n, path.p);
}

/* ---- fixture ---------------------------------------------------------------- */

static int bind_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t len = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static void on_server_done(void *ud)
{
    fx_t *fx = ud;
    fx->server_done = true;
    fx->srv = NULL;
}

static void on_stop(uv_async_t *a)
{
    fx_t *fx = pg_container_of(a, fx_t, stop);
    /* A test may have closed it already. */
    if (fx->srv != NULL)
        pg_http_server_close(fx->srv, on_server_done, fx);
    uv_close((uv_handle_t *)&fx->stop, NULL);
    uv_close((uv_handle_t *)&fx->timer, NULL);
    uv_close((uv_handle_t *)&fx->check, NULL);
    uv_close((uv_handle_t *)&fx->check_idle, NULL);
}

static void *client_main(void *arg)
{
    fx_t *fx = arg;
    fx->client(fx);
    uv_async_send(&fx->stop);
    return NULL;
}

static fx_t *fx_new(mode_t_ mode)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    fx->mode = mode;
    fx->nchunks = 5;
    fx->batch = 1;
    fx->limits = (pg_http_limits_t){
        .max_header_bytes = 8192,
        .max_body_bytes = 1000,
        .header_timeout_ms = 5000,
        .idle_timeout_ms = 5000,
        .max_connections = 0,
        .max_queued_bytes = 64 * 1024,
    };
    return fx;
}

/* Runs the server until the client function returns, then closes it. */
static void fx_run(fx_t *fx, client_fn client)
{
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    int fd = bind_listener(&fx->port);
    pg_http_handler_t h = {.on_request = on_request,
                           .on_complete = on_complete,
                           .render_error = render_error,
                           .ud = fx};
    char err[PG_ERRMSG_SIZE] = "";
    assert_int_equal(pg_http_server_new(&fx->loop, fd, &fx->limits, &h,
                                        &fx->srv, err),
                     PG_OK);
    uv_async_init(&fx->loop, &fx->stop, on_stop);
    uv_timer_init(&fx->loop, &fx->timer);
    uv_check_init(&fx->loop, &fx->check);
    uv_idle_init(&fx->loop, &fx->check_idle);
    fx->client = client;
    assert_int_equal(pthread_create(&fx->thr, NULL, client_main, fx), 0);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    pthread_join(fx->thr, NULL);
    assert_true(fx->server_done);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void fx_free(fx_t *fx)
{
    for (int i = 0; i < MAXR; i++)
        tc_bytes_free(&fx->out[i]);
    free(fx);
}

/* Parses out[i] into msgs; returns the count. */
static size_t parse(fx_t *fx, int i, tc_http_msg_t *msgs, size_t max)
{
    size_t used = 0;
    if (fx->out[i].p == NULL)
        return 0;
    return tc_http_parse(fx->out[i].p, fx->out[i].n, msgs, max, &used);
}

static void free_msgs(tc_http_msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tc_http_msg_free(&m[i]);
}

static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++)
        usleep(10000);
}

/* Sends req on a fresh connection and reads n responses into out[slot]. */
static int send_recv(fx_t *fx, int slot, const char *req, size_t n)
{
    int fd = tc_raw_connect(fx->port);
    if (fd < 0)
        return -1;
    tc_raw_send(fd, req, strlen(req));
    fx->ok[slot] =
        tc_raw_recv_responses(fd, n, 5000, &fx->out[slot], &fx->closed[slot]);
    return fd;
}

/* After the responses: does the server close the connection? */
static void wait_close(fx_t *fx, int fd, int slot)
{
    if (!fx->closed[slot]) {
        tc_bytes_t rest = {0};
        tc_raw_recv(fd, 3000, 1 << 20, &rest, &fx->closed[slot]);
        fx->extra += rest.n;
        tc_bytes_free(&rest);
    }
}

/* ---- cases ------------------------------------------------------------------ */

static void c_get_post(fx_t *fx)
{
    int fd = send_recv(fx, 0,
                       "GET /v1/models?x=1 HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    close(fd);
    fd = send_recv(fx, 1,
                   "POST /v1/chat HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n"
                   "Content-Type: application/json\r\n\r\n{\"a\":\"bc\"}\n",
                   1);
    close(fd);
}

static void test_get_and_post(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_get_post);
    tc_http_msg_t m[2];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    assert_string_equal(m[0].body, "/v1/models");
    assert_true(m[0].keep_alive);
    char *ct = tc_http_msg_header(&m[0], "Content-Type");
    char *meth = tc_http_msg_header(&m[0], "X-Method");
    char *rid = tc_http_msg_header(&m[0], "X-Request-ID");
    assert_string_equal(ct, "text/plain");
    assert_string_equal(meth, "GET");
    assert_non_null(rid);
    assert_int_equal(strncmp(rid, "req_", 4), 0);
    free(ct);
    free(meth);
    free(rid);
    free_msgs(m, 1);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    assert_string_equal(m[0].body, "{\"a\":\"bc\"}\n");
    free_msgs(m, 1);
    assert_string_equal(fx->last_path, "/v1/chat");
    assert_string_equal(fx->remote, "127.0.0.1");
    assert_int_equal(atomic_load(&fx->nrequests), 2);
    assert_int_equal(atomic_load(&fx->ncomplete), 2);
    fx_free(fx);
}

static void c_keepalive(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *r1 = "GET /one HTTP/1.1\r\nHost: t\r\n\r\n";
    const char *r2 = "GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    tc_raw_send(fd, r1, strlen(r1));
    fx->ok[0] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[0], &fx->closed[0]);
    tc_raw_send(fd, r2, strlen(r2));
    fx->ok[1] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[1], &fx->closed[1]);
    wait_close(fx, fd, 1);
    close(fd);
}

static void test_keep_alive_then_connection_close(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_keepalive);
    assert_true(fx->ok[0]);
    assert_false(fx->closed[0]);
    assert_true(fx->ok[1]);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_string_equal(m[0].body, "/one");
    assert_true(m[0].keep_alive);
    free_msgs(m, 1);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_string_equal(m[0].body, "/two");
    assert_false(m[0].keep_alive); /* Connection: close honoured */
    free_msgs(m, 1);
    assert_true(fx->closed[1]);
    fx_free(fx);
}

static void c_http10(fx_t *fx)
{
    int fd = send_recv(fx, 0, "GET /old HTTP/1.0\r\n\r\n", 1);
    wait_close(fx, fd, 0);
    close(fd);
    fd = tc_raw_connect(fx->port);
    const char *r = "GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    tc_raw_send(fd, r, strlen(r));
    fx->ok[1] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[1], &fx->closed[1]);
    tc_raw_send(fd, r, strlen(r));
    fx->ok[2] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[2], &fx->closed[2]);
    close(fd);
}

static void test_http10_close_and_keep_alive(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_http10);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_false(m[0].keep_alive);
    free_msgs(m, 1);
    assert_true(fx->closed[0]);
    assert_true(fx->ok[1]);
    assert_true(fx->ok[2]); /* the second request reused the connection */
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_true(m[0].keep_alive);
    free_msgs(m, 1);
    assert_int_equal(fx->last_minor, 0);
    fx_free(fx);
}

static void c_pipeline(fx_t *fx)
{
    const char *r = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nbbb"
                    "GET /c HTTP/1.1\r\nHost: t\r\n\r\n";
    int fd = send_recv(fx, 0, r, 3);
    close(fd);
}

static void check_pipeline(fx_t *fx)
{
    assert_true(fx->ok[0]);
    tc_http_msg_t m[3];
    assert_int_equal(parse(fx, 0, m, 3), 3);
    assert_string_equal(m[0].body, "/a");
    assert_string_equal(m[1].body, "bbb");
    assert_string_equal(m[2].body, "/c");
    free_msgs(m, 3);
    assert_int_equal(atomic_load(&fx->nrequests), 3);
}

static void test_pipelining_sync_handler(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_pipeline);
    check_pipeline(fx);
    fx_free(fx);
}

static void test_pipelining_async_handler(void **state)
{
    fx_t *fx = fx_new(MODE_DELAY);
    fx_run(fx, c_pipeline);
    check_pipeline(fx);
    fx_free(fx);
}

/* Responses made from the check phase end their requests on the next
 * loop turn (the settle queue), and the connections go on: the pipelined
 * requests behind them are served, and keep-alive works, with timeouts
 * long enough that a loop waiting for them would fail the client's 5 s
 * read. */
static void test_pipelining_answer_from_check(void **state)
{
    fx_t *fx = fx_new(MODE_CHECK);
    fx->limits.header_timeout_ms = 60000;
    fx->limits.idle_timeout_ms = 60000;
    fx_run(fx, c_pipeline);
    check_pipeline(fx);
    assert_int_equal(atomic_load(&fx->ncomplete), 3);
    fx_free(fx);
}

/* Two connections answered in the same check callback: both wait on the
 * settle queue at once, and both take a second request afterwards. */
static void c_two_conns(fx_t *fx)
{
    int fd[2];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 2; i++) {
            char r[64];
            snprintf(r, sizeof(r), "GET /c%d-%d HTTP/1.1\r\nHost: t\r\n\r\n", i,
                     round);
            if (round == 0)
                fd[i] = tc_raw_connect(fx->port);
            tc_raw_send(fd[i], r, strlen(r));
        }
        for (int i = 0; i < 2; i++) {
            int slot = round * 2 + i;
            fx->ok[slot] = tc_raw_recv_responses(fd[i], 1, 5000, &fx->out[slot],
                                                 &fx->closed[slot]);
        }
    }
    close(fd[0]);
    close(fd[1]);
}

static void test_two_connections_settle_together(void **state)
{
    fx_t *fx = fx_new(MODE_CHECK);
    fx->batch = 2;
    fx->limits.header_timeout_ms = 60000;
    fx->limits.idle_timeout_ms = 60000;
    fx_run(fx, c_two_conns);
    for (int slot = 0; slot < 4; slot++) {
        assert_true(fx->ok[slot]);
        assert_false(fx->closed[slot]);
        tc_http_msg_t m[1];
        char want[16];
        snprintf(want, sizeof(want), "/c%d-%d", slot % 2, slot / 2);
        assert_int_equal(parse(fx, slot, m, 1), 1);
        assert_string_equal(m[0].body, want);
        free_msgs(m, 1);
    }
    assert_int_equal(atomic_load(&fx->nrequests), 4);
    assert_int_equal(atomic_load(&fx->ncomplete), 4);
    fx_free(fx);
}

static void c_chunked_body(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *a = "POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked"
                    "\r\n\r\n5\r\nhel";
    const char *b = "lo\r\n6\r\n world\r\n0\r\n\r\n";
    tc_raw_send(fd, a, strlen(a));
    usleep(20000); /* the body arrives in two reads */
    tc_raw_send(fd, b, strlen(b));
    fx->ok[0] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[0], &fx->closed[0]);
    close(fd);
}

static void test_chunked_request_body(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_chunked_body);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    assert_string_equal(m[0].body, "hello world");
    free_msgs(m, 1);
    fx_free(fx);
}

static void c_expect(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *h = "POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                    "Expect: 100-continue\r\n\r\n";
    tc_raw_send(fd, h, strlen(h));
    /* The interim response parses as one message without a body. */
    fx->ok[0] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[0], &fx->closed[0]);
    tc_raw_send(fd, "abcde", 5);
    fx->ok[1] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[1], &fx->closed[1]);
    close(fd);
}

static void test_expect_100_continue(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_expect);
    assert_true(fx->ok[0]);
    assert_int_equal(fx->out[0].n, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
    assert_memory_equal(fx->out[0].p, "HTTP/1.1 100 Continue\r\n\r\n",
                        fx->out[0].n);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    assert_string_equal(m[0].body, "abcde");
    free_msgs(m, 1);
    fx_free(fx);
}

static void c_413(fx_t *fx)
{
    /* By Content-Length: answered at once, no body sent. */
    int fd = send_recv(fx, 0,
                       "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n"
                       "Expect: 100-continue\r\n\r\n",
                       1);
    wait_close(fx, fd, 0);
    close(fd);
    /* Chunked: the cap is crossed by the second chunk. */
    fd = tc_raw_connect(fx->port);
    char chunk[700];
    memset(chunk, 'z', sizeof(chunk));
    const char *h = "POST /chunky HTTP/1.1\r\nHost: t\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n";
    tc_raw_send(fd, h, strlen(h));
    for (int i = 0; i < 2; i++) {
        tc_raw_send(fd, "2bc\r\n", 5);
        tc_raw_send(fd, chunk, sizeof(chunk));
        tc_raw_send(fd, "\r\n", 2);
    }
    fx->ok[1] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[1], &fx->closed[1]);
    wait_close(fx, fd, 1);
    close(fd);
}

static void test_413_content_length_and_chunked(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_413);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 413); /* and no 100 Continue before it */
    assert_string_equal(m[0].body, "{\"test_error\":413,\"path\":\"/big\"}");
    assert_false(m[0].keep_alive);
    char *ct = tc_http_msg_header(&m[0], "Content-Type");
    assert_string_equal(ct, "application/json");
    free(ct);
    free_msgs(m, 1);
    assert_true(fx->closed[0]);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_int_equal(m[0].status, 413);
    assert_string_equal(m[0].body, "{\"test_error\":413,\"path\":\"/chunky\"}");
    free_msgs(m, 1);
    assert_true(fx->closed[1]);
    /* Server-made answers reach on_complete, never on_request. */
    assert_int_equal(atomic_load(&fx->nrequests), 0);
    assert_int_equal(atomic_load(&fx->ncomplete), 2);
    assert_int_equal(fx->last_status, 413);
    fx_free(fx);
}

static void c_431(fx_t *fx)
{
    size_t n = 3000;
    char *r = malloc(n + 200);
    int k = snprintf(r, 200, "GET /h HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(r + k, 'v', n);
    strcpy(r + k + n, "\r\n\r\n");
    /* Three headers of 3000 bytes go over the 8 KiB limit. */
    char *all = malloc(3 * n + 300);
    int m = snprintf(all, 300, "GET /h HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 3; i++) {
        m += sprintf(all + m, "X-Big-%d: ", i);
        memset(all + m, 'v', n);
        m += (int)n;
        m += sprintf(all + m, "\r\n");
    }
    strcpy(all + m, "\r\n");
    int fd = send_recv(fx, 0, all, 1);
    wait_close(fx, fd, 0);
    close(fd);
    /* One 3000-byte header is fine. */
    fd = send_recv(fx, 1, r, 1);
    close(fd);
    free(r);
    free(all);
}

static void test_431_headers_too_large(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_431);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 431);
    free_msgs(m, 1);
    assert_true(fx->closed[0]);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    free_msgs(m, 1);
    fx_free(fx);
}

static void c_408(fx_t *fx)
{
    /* Headers started but never finished. */
    int fd = send_recv(fx, 0, "GET /slow HTTP/1.1\r\nHost: t\r\n", 1);
    wait_close(fx, fd, 0);
    close(fd);
    /* Not a single byte after connect. */
    fd = tc_raw_connect(fx->port);
    fx->ok[1] = tc_raw_recv_responses(fd, 1, 5000, &fx->out[1], &fx->closed[1]);
    wait_close(fx, fd, 1);
    close(fd);
}

static void test_408_header_timeout(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx->limits.header_timeout_ms = 200;
    fx_run(fx, c_408);
    for (int i = 0; i < 2; i++) {
        tc_http_msg_t m[1];
        assert_int_equal(parse(fx, i, m, 1), 1);
        assert_int_equal(m[0].status, 408);
        assert_false(m[0].keep_alive);
        free_msgs(m, 1);
        assert_true(fx->closed[i]);
    }
    assert_int_equal(atomic_load(&fx->ncomplete), 2);
    fx_free(fx);
}

static void c_idle(fx_t *fx)
{
    int fd = send_recv(fx, 0, "GET /i HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    wait_close(fx, fd, 0);
    close(fd);
}

static void test_idle_timeout_closes_silently(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx->limits.idle_timeout_ms = 200;
    fx_run(fx, c_idle);
    assert_true(fx->ok[0]);
    assert_true(fx->closed[0]);
    assert_int_equal(fx->extra, 0); /* no 408 on an idle keep-alive */
    assert_int_equal(atomic_load(&fx->ncomplete), 1);
    fx_free(fx);
}

/* The server closes in the same callback that answered: the connection
 * leaves the settle queue as it closes (its memory goes before the next
 * idle phase), and its request completes once, as aborted. */
static void test_close_with_settle_queued(void **state)
{
    fx_t *fx = fx_new(MODE_CHECK);
    fx->close_in_check = true;
    fx_run(fx, c_idle); /* one request, then wait for the close */
    assert_true(fx->closed[0]);
    assert_int_equal(atomic_load(&fx->nrequests), 1);
    assert_int_equal(atomic_load(&fx->ncomplete), 1);
    assert_int_equal(atomic_load(&fx->naborted_complete), 1);
    fx_free(fx);
}

static void c_garbage(fx_t *fx)
{
    int fd = send_recv(fx, 0, "\x01\x02 garbage here\r\n\r\n", 1);
    wait_close(fx, fd, 0);
    close(fd);
    fd = send_recv(fx, 1, "GET /fine HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    close(fd);
    /* A good request followed by garbage on the same connection. */
    fd = send_recv(fx, 2, "GET /first HTTP/1.1\r\nHost: t\r\n\r\nBLAH\r\n\r\n",
                   2);
    wait_close(fx, fd, 2);
    close(fd);
}

static void test_garbage_400_then_new_connection_works(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_garbage);
    tc_http_msg_t m[2];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 400);
    assert_string_equal(m[0].body, "{\"test_error\":400,\"path\":\"\"}");
    free_msgs(m, 1);
    assert_true(fx->closed[0]);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    assert_string_equal(m[0].body, "/fine");
    free_msgs(m, 1);
    assert_int_equal(parse(fx, 2, m, 2), 2);
    assert_int_equal(m[0].status, 200);
    assert_int_equal(m[1].status, 400);
    free_msgs(m, 2);
    assert_true(fx->closed[2]);
    fx_free(fx);
}

static void c_request_id(fx_t *fx)
{
    int fd = send_recv(fx, 0,
                       "GET /r HTTP/1.1\r\nHost: t\r\nx-request-id: abc-123.X_y:z"
                       "\r\n\r\n",
                       1);
    close(fd);
    fd = send_recv(fx, 1,
                   "GET /r HTTP/1.1\r\nHost: t\r\nX-Request-ID: bad id!\r\n\r\n",
                   1);
    close(fd);
}

static void test_request_id_kept_or_replaced(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx_run(fx, c_request_id);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    char *rid = tc_http_msg_header(&m[0], "X-Request-ID");
    assert_string_equal(rid, "abc-123.X_y:z");
    free(rid);
    free_msgs(m, 1);
    assert_int_equal(parse(fx, 1, m, 1), 1);
    rid = tc_http_msg_header(&m[0], "X-Request-ID");
    assert_int_equal(strncmp(rid, "req_", 4), 0);
    assert_int_equal(strlen(rid), PG_REQUEST_ID_LEN);
    assert_string_equal(rid, fx->last_request_id);
    free(rid);
    free_msgs(m, 1);
    fx_free(fx);
}

static void c_stream(fx_t *fx)
{
    int fd = send_recv(fx, 0, "GET /s HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    close(fd);
    fd = tc_raw_connect(fx->port);
    tc_raw_send(fd, "GET /s HTTP/1.0\r\n\r\n", 19);
    tc_raw_recv(fd, 3000, 1 << 20, &fx->out[1], &fx->closed[1]);
    close(fd);
}

static void test_streaming_response(void **state)
{
    fx_t *fx = fx_new(MODE_STREAM);
    fx_run(fx, c_stream);
    tc_http_msg_t m[1];
    assert_true(fx->ok[0]);
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].status, 200);
    char *te = tc_http_msg_header(&m[0], "Transfer-Encoding");
    assert_string_equal(te, "chunked");
    free(te);
    assert_string_equal(m[0].body,
                        "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    free_msgs(m, 1);
    /* HTTP/1.0: raw body up to the close. */
    assert_true(fx->closed[1]);
    const char *raw = strstr(fx->out[1].p, "\r\n\r\n");
    assert_non_null(raw);
    assert_null(strstr(fx->out[1].p, "Transfer-Encoding"));
    assert_string_equal(raw + 4, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    assert_int_equal(atomic_load(&fx->ncomplete), 2);
    assert_int_equal(atomic_load(&fx->naborts), 0);
    fx_free(fx);
}

static void c_disconnect(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *r = "GET /s HTTP/1.1\r\nHost: t\r\n\r\n";
    tc_raw_send(fd, r, strlen(r));
    bool closed;
    tc_raw_recv(fd, 200, 64, &fx->out[0], &closed);
    close(fd);
    wait_for(&fx->ncomplete, 1);
}

static void test_client_disconnect_mid_stream(void **state)
{
    fx_t *fx = fx_new(MODE_STREAM);
    fx->nchunks = 1000000; /* effectively forever */
    fx_run(fx, c_disconnect);
    assert_true(fx->out[0].n > 0);
    assert_int_equal(atomic_load(&fx->naborts), 1);
    assert_int_equal(atomic_load(&fx->ncomplete), 1);
    assert_int_equal(atomic_load(&fx->naborted_complete), 1);
    assert_int_equal(atomic_load(&fx->abort_before_complete), 1);
    fx_free(fx);
}

static void c_close_active(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *r = "GET /never HTTP/1.1\r\nHost: t\r\n\r\n";
    tc_raw_send(fd, r, strlen(r));
    wait_for(&fx->nrequests, 1);
    /* The fixture closes the server while the request is unanswered. */
    fx->extra = (size_t)fd;
}

static void test_server_close_aborts_active_request(void **state)
{
    fx_t *fx = fx_new(MODE_NEVER);
    fx_run(fx, c_close_active);
    close((int)fx->extra);
    assert_int_equal(atomic_load(&fx->nrequests), 1);
    assert_int_equal(atomic_load(&fx->naborts), 1);
    assert_int_equal(atomic_load(&fx->ncomplete), 1);
    assert_int_equal(atomic_load(&fx->abort_before_complete), 1);
    fx_free(fx);
}

static void c_drain(fx_t *fx)
{
    /* An idle keep-alive connection... */
    int idle = send_recv(fx, 0, "GET /idle HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    /* ...is closed by the drain that the streaming request triggers. */
    int fd = send_recv(fx, 1, "GET /drain HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    wait_close(fx, fd, 1);
    close(fd);
    bool closed = false;
    tc_raw_recv(idle, 3000, 1 << 16, &fx->out[2], &closed);
    fx->closed[2] = closed;
    close(idle);
    /* The listener is closed: new connections are refused. */
    int again = tc_raw_connect(fx->port);
    fx->ok[3] = again < 0;
    if (again >= 0)
        close(again);
}

static void test_drain_finishes_stream_then_closes(void **state)
{
    fx_t *fx = fx_new(MODE_STREAM);
    fx->mode = MODE_STREAM;
    fx->drain_on_stream = true;
    fx_run(fx, c_drain);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 1, m, 1), 1);
    assert_string_equal(m[0].body,
                        "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    free_msgs(m, 1);
    assert_true(fx->closed[1]);
    assert_true(fx->closed[2]);
    assert_true(fx->ok[3]);
    assert_int_equal(atomic_load(&fx->naborts), 0);
    fx_free(fx);
}

static void c_maxconn(fx_t *fx)
{
    int a = send_recv(fx, 0, "GET /a HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    int b = send_recv(fx, 1, "GET /b HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    int c = send_recv(fx, 2, "GET /c HTTP/1.1\r\nHost: t\r\n\r\n", 1);
    close(a);
    close(b);
    close(c);
}

static void test_max_connections(void **state)
{
    fx_t *fx = fx_new(MODE_ECHO);
    fx->limits.max_connections = 2;
    fx_run(fx, c_maxconn);
    assert_true(fx->ok[0]);
    assert_true(fx->ok[1]);
    assert_false(fx->ok[2]);
    assert_true(fx->closed[2]);
    assert_int_equal(fx->out[2].n, 0);
    assert_int_equal(atomic_load(&fx->nrequests), 2);
    fx_free(fx);
}

static void c_big(fx_t *fx)
{
    int fd = tc_raw_connect(fx->port);
    const char *r = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
    tc_raw_send(fd, r, strlen(r));
    usleep(100000); /* let the queue build up */
    fx->ok[0] = tc_raw_recv_responses(fd, 1, 10000, &fx->out[0], &fx->closed[0]);
    close(fd);
}

static void test_backpressure_and_drain_callback(void **state)
{
    fx_t *fx = fx_new(MODE_BIG);
    fx_run(fx, c_big);
    assert_int_equal(fx->big_rc, PG_ETOOBIG);
    assert_int_equal(atomic_load(&fx->ndrains), 1);
    assert_true(fx->ok[0]);
    tc_http_msg_t m[1];
    assert_int_equal(parse(fx, 0, m, 1), 1);
    assert_int_equal(m[0].body_len, BIG_LEN);
    assert_memory_equal(m[0].body, big_data, BIG_LEN);
    free_msgs(m, 1);
    fx_free(fx);
}

int main(void)
{
    big_data = malloc(BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        big_data[i] = (char)('a' + i % 26);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_and_post),
        cmocka_unit_test(test_keep_alive_then_connection_close),
        cmocka_unit_test(test_http10_close_and_keep_alive),
        cmocka_unit_test(test_pipelining_sync_handler),
        cmocka_unit_test(test_pipelining_async_handler),
        cmocka_unit_test(test_pipelining_answer_from_check),
        cmocka_unit_test(test_two_connections_settle_together),
        cmocka_unit_test(test_chunked_request_body),
        cmocka_unit_test(test_expect_100_continue),
        cmocka_unit_test(test_413_content_length_and_chunked),
        cmocka_unit_test(test_431_headers_too_large),
        cmocka_unit_test(test_408_header_timeout),
        cmocka_unit_test(test_idle_timeout_closes_silently),
        cmocka_unit_test(test_close_with_settle_queued),
        cmocka_unit_test(test_garbage_400_then_new_connection_works),
        cmocka_unit_test(test_request_id_kept_or_replaced),
        cmocka_unit_test(test_streaming_response),
        cmocka_unit_test(test_client_disconnect_mid_stream),
        cmocka_unit_test(test_server_close_aborts_active_request),
        cmocka_unit_test(test_drain_finishes_stream_then_closes),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_backpressure_and_drain_callback),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(big_data);
    return rc;
}
