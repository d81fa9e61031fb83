/* test_upstream.c: lib/upstream against the scripted fake upstream
 * (tests/support/fake_upstream). Each test runs its own uv loop on the
 * test thread with one pg_upstream_t, the fake on its own thread, and
 * asserts uv_loop_close() == 0 at the end. Waits are bounded by a watchdog
 * but the assertions are about what happened, not how long it took.
 *
 * Every case runs twice: with the native HTTP/1.1 client (what http://
 * URLs get) and with libcurl (opts.force_curl), so both engines keep one
 * contract. The cases after "native only" talk to a raw scripted server
 * on the test's own loop (raw_srv_t) to send what the fake never would. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/list.h"
#include "fake_upstream.h"
#include "oom_alloc.h"
#include "test_client.h"
#include "upstream/upstream.h"

#define WAIT_MS 10000

/* ---- one transfer's observations ------------------------------------------- */

typedef struct rec {
    struct env *env;
    pg_upstream_xfer_t *x;
    int nhead;
    int status;
    char *content_type;
    char *retry_after;
    int ndata;
    tc_bytes_t body;
    int ndone;
    pg_upstream_result_t result;
    char msg[256];
    int data_before_head;
    int calls_after_end; /* any callback after done or cancel */
    bool ended;          /* done, or canceled by the test */
    bool got_data;       /* on_data ran at least once */
    /* behaviours */
    int cancel_after_ndata;  /* >0: cancel from inside on_data */
    bool cancel_in_head;
    bool pause_each;         /* on_data returns PG_PENDING, a timer resumes */
    bool paused;
    int data_while_paused;
    int abort_after_ndata;   /* >0: on_data returns PG_EIO */
    struct rec *chain;       /* started from inside on_data */
    const char *chain_url;
} rec_t;

/* A raw scripted server on the test's loop (see raw_start below). */
struct raw_step;
typedef struct raw_srv {
    uv_tcp_t lis;
    int port;
    const struct raw_step *steps; /* by request number; the last repeats */
    size_t nsteps;
    int nreq, nconns, nclosed;
    pg_list_t conns;
} raw_srv_t;

typedef struct env {
    uv_loop_t loop;
    bool curl;               /* every transfer with opts.force_curl */
    pg_upstream_t *u;
    fu_t *fu;
    uv_timer_t resume_timer;
    rec_t *to_resume;
    raw_srv_t raw;           /* the raw server, while raw_on */
    bool raw_on;
} env_t;

static void raw_stop(env_t *e, raw_srv_t *s);

static char *kv_dup(const pg_kv_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].key.n == strlen(name) &&
            strncasecmp(h[i].key.p, name, h[i].key.n) == 0) {
            char *s = tc_xmalloc(h[i].value.n + 1);
            memcpy(s, h[i].value.p, h[i].value.n);
            s[h[i].value.n] = '\0';
            return s;
        }
    return NULL;
}

static int on_head(void *ud, int status, const pg_kv_t *h, size_t n)
{
    rec_t *r = ud;

    if (r->ended)
        r->calls_after_end++;
    r->nhead++;
    r->status = status;
    r->content_type = kv_dup(h, n, "content-type");
    r->retry_after = kv_dup(h, n, "retry-after");
    if (r->cancel_in_head) {
        pg_upstream_cancel(r->x);
        r->ended = true;
    }
    return PG_OK;
}

static void on_done(void *ud, pg_upstream_result_t result, const char *msg)
{
    rec_t *r = ud;

    if (r->ended)
        r->calls_after_end++;
    r->ended = true;
    r->ndone++;
    r->result = result;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "(null)");
}

static void on_resume_timer(uv_timer_t *t)
{
    env_t *e = pg_container_of(t, env_t, resume_timer);
    rec_t *r = e->to_resume;

    r->paused = false;
    pg_upstream_resume(r->x);
}

static int start(env_t *e, rec_t *r, const pg_upstream_opts_t *o);

static int on_data(void *ud, pg_str_t b)
{
    rec_t *r = ud;

    if (r->ended)
        r->calls_after_end++;
    if (r->nhead == 0)
        r->data_before_head++;
    if (r->paused)
        r->data_while_paused++;
    r->ndata++;
    r->got_data = true;
    tc_bytes_append(&r->body, b.p, b.n);
    if (r->chain && r->ndata == 1) {
        pg_upstream_opts_t o = {.method = "GET", .url = r->chain_url};
        assert_int_equal(start(r->env, r->chain, &o), PG_OK);
    }
    if (r->cancel_after_ndata > 0 && r->ndata == r->cancel_after_ndata) {
        pg_upstream_cancel(r->x);
        r->ended = true;
        return PG_OK;
    }
    if (r->abort_after_ndata > 0 && r->ndata == r->abort_after_ndata)
        return PG_EIO;
    if (r->pause_each) {
        r->paused = true;
        r->env->to_resume = r;
        uv_timer_start(&r->env->resume_timer, on_resume_timer, 5, 0);
        return PG_PENDING;
    }
    return PG_OK;
}

static const pg_upstream_cbs_t cbs = {
    .on_head = on_head, .on_data = on_data, .on_done = on_done};

static void rec_free(rec_t *r)
{
    free(r->content_type);
    free(r->retry_after);
    tc_bytes_free(&r->body);
}

static int start(env_t *e, rec_t *r, const pg_upstream_opts_t *o)
{
    pg_upstream_opts_t c = *o;

    c.force_curl = e->curl;
    r->env = e;
    return pg_upstream_start(e->u, &c, &cbs, r, &r->x);
}

/* ---- loop helpers ------------------------------------------------------------ */

static void on_watchdog(uv_timer_t *t) { *(bool *)t->data = true; }

/* Runs the loop until *flag or ms pass. Returns *flag. */
static bool run_until(env_t *e, const bool *flag, int ms)
{
    uv_timer_t wd;
    bool expired = false;

    uv_timer_init(&e->loop, &wd);
    wd.data = &expired;
    uv_timer_start(&wd, on_watchdog, (uint64_t)ms, 0);
    while (!*flag && !expired)
        uv_run(&e->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wd, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return *flag;
}

static void run_for(env_t *e, int ms)
{
    bool never = false;
    run_until(e, &never, ms);
}

static bool run_until_done(env_t *e, rec_t *r)
{
    return run_until(e, &r->ended, WAIT_MS);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static int setup(void **state, bool curl)
{
    env_t *e = tc_xmalloc(sizeof *e);

    memset(e, 0, sizeof *e);
    e->curl = curl;
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(pg_upstream_new(&e->loop, &e->u), PG_OK);
    uv_timer_init(&e->loop, &e->resume_timer);
    e->fu = fu_start();
    *state = e;
    return 0;
}

static int setup_native(void **state) { return setup(state, false); }
static int setup_curl(void **state) { return setup(state, true); }

static int teardown(void **state)
{
    env_t *e = *state;
    bool closed = false;

    if (e->raw_on) /* a failed assertion left it running */
        raw_stop(e, &e->raw);
    if (e->u)
        pg_upstream_close(e->u, on_closed, &closed);
    uv_close((uv_handle_t *)&e->resume_timer, NULL);
    if (e->u)
        assert_true(run_until(e, &closed, WAIT_MS));
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    fu_stop(e->fu);
    free(e);
    return 0;
}

static pg_upstream_opts_t get_opts(const char *url)
{
    return (pg_upstream_opts_t){.method = "GET", .url = url};
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_post_round_trip(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    /* Bytes that a text-only path would mangle: NUL, CR, high bytes. */
    static const char body[] = "{\"model\":\"x\",\"bin\":\"\x01\r\n\xc3\xa9\"}\0tail";
    pg_kv_t hdrs[] = {
        {PG_STR("Authorization"), PG_STR("Bearer sk-test")},
        {PG_STR("Content-Type"), PG_STR("application/json")},
    };
    char *url = fu_url(e->fu, "/v1/chat/completions?x=1");
    pg_upstream_opts_t o = {.method = "POST", .url = url, .headers = hdrs,
                            .nheaders = 2,
                            .body = {body, sizeof body - 1}};
    fu_request_t *rq;

    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "Hello there"}));
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_int_equal(r.nhead + r.ndone, 0); /* never from inside start */
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.ndone, 1);
    assert_int_equal(r.data_before_head, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    cJSON *j = cJSON_ParseWithLength(r.body.p, r.body.n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring,
                        "chat.completion");
    cJSON_Delete(j);

    assert_int_equal(fu_requests_count(e->fu), 1);
    rq = fu_request(e->fu, 0);
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/v1/chat/completions?x=1");
    assert_int_equal(rq->body_len, sizeof body - 1);
    assert_memory_equal(rq->body, body, sizeof body - 1);
    assert_string_equal(fu_request_header(rq, "authorization"), "Bearer sk-test");
    assert_null(fu_request_header(rq, "expect"));
    fu_request_free(rq);
    rec_free(&r);
    free(url);
}

static void test_get_empty_body(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/v1/models");
    pg_upstream_opts_t o = get_opts(url);
    fu_request_t *rq;

    fu_push(e->fu, fu_resp_new(200));
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.ndata, 0);
    rq = fu_request(e->fu, 0);
    assert_string_equal(rq->method, "GET");
    assert_int_equal(rq->body_len, 0);
    fu_request_free(rq);
    rec_free(&r);
    free(url);
}

static void test_error_status_is_ok_transfer(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/v1/messages");
    pg_upstream_opts_t o = {.method = "POST", .url = url, .body = PG_STR("{}")};

    fu_push(e->fu, fu_anthropic_rate_limited(7));
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.status, 429);
    assert_string_equal(r.retry_after, "7");
    cJSON *j = cJSON_ParseWithLength(r.body.p, r.body.n);
    assert_non_null(j);
    assert_string_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "type")->valuestring,
        "rate_limit_error");
    cJSON_Delete(j);
    rec_free(&r);
    free(url);
}

static void test_streamed_parts(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/stream");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    for (int i = 0; i < 5; i++) {
        char part[16];
        snprintf(part, sizeof part, "part%d;", i);
        fu_resp_part_str(s, i ? 40 : 0, part);
    }
    fu_resp_chunked(s);
    fu_push(e->fu, s);
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.data_before_head, 0);
    assert_true(r.ndata >= 3); /* delayed parts arrive as separate reads */
    assert_int_equal(r.body.n, strlen("part0;part1;part2;part3;part4;"));
    assert_memory_equal(r.body.p, "part0;part1;part2;part3;part4;", r.body.n);
    rec_free(&r);
    free(url);
}

static void test_connection_reuse(void **state)
{
    env_t *e = *state;
    rec_t a = {0}, b = {0};
    char *url = fu_url(e->fu, "/v1/chat/completions");
    pg_upstream_opts_t o = {.method = "POST", .url = url, .body = PG_STR("{}")};
    pg_upstream_stats_t st;
    fu_request_t *r0, *r1;

    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "one"}));
    assert_int_equal(start(e, &a, &o), PG_OK);
    assert_true(run_until_done(e, &a));
    assert_int_equal(start(e, &b, &o), PG_OK);
    assert_true(run_until_done(e, &b));
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(fu_requests_count(e->fu), 2);
    assert_int_equal(fu_conns_opened(e->fu), 1);
    r0 = fu_request(e->fu, 0);
    r1 = fu_request(e->fu, 1);
    assert_int_equal(r0->conn_id, r1->conn_id);
    pg_upstream_get_stats(e->u, &st);
    assert_int_equal(st.connections_opened, 1);
    assert_int_equal(st.transfers_started, 2);
    assert_int_equal(st.transfers_active, 0);
    fu_request_free(r0);
    fu_request_free(r1);
    rec_free(&a);
    rec_free(&b);
    free(url);
}

/* A port nobody listens on: bind, read the port, close. */
static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_connect_failed(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = tc_url(closed_port(), "/x");
    pg_upstream_opts_t o = get_opts(url);

    o.connect_timeout_ms = 5000;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_CONNECT_FAILED);
    assert_int_equal(r.nhead, 0);
    assert_int_equal(r.ndata, 0);
    assert_true(strlen(r.msg) > 0);
    rec_free(&r);
    free(url);
}

static void test_first_byte_timeout(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/slow");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_slow_head(s, 30000);
    fu_resp_part_str(s, 0, "late");
    fu_push(e->fu, s);
    o.first_byte_timeout_ms = 150;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_FIRST_BYTE_TIMEOUT);
    assert_int_equal(r.nhead, 0);
    assert_int_equal(r.ndata, 0);
    /* The abandoned connection is closed, which the fake notices. */
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    rec_free(&r);
    free(url);
}

static void test_idle_timeout(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/stall");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_part_str(s, 0, "data: one\n\n");
    fu_resp_stall(s);
    fu_push(e->fu, s);
    o.first_byte_timeout_ms = 5000;
    o.idle_timeout_ms = 150;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_IDLE_TIMEOUT);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.body.n, strlen("data: one\n\n"));
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    rec_free(&r);
    free(url);
}

static void test_total_timeout(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/endless");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_endless(s, 20, "data: tick\n\n");
    fu_push(e->fu, s);
    o.idle_timeout_ms = 5000;
    o.total_timeout_ms = 300;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_TOTAL_TIMEOUT);
    assert_int_equal(r.nhead, 1);
    assert_true(r.ndata >= 1);
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    rec_free(&r);
    free(url);
}

static void test_too_big(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/big");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_part_fill(s, 0, 200000, 'x');
    fu_push(e->fu, s);
    o.max_response_bytes = 1000;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_TOO_BIG);
    assert_true(r.body.n <= 1000);
    rec_free(&r);
    free(url);
}

static void drop_case(env_t *e, bool chunked)
{
    rec_t r = {0};
    char *url = fu_url(e->fu, "/drop");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_part_str(s, 0, "data: a\n\n");
    fu_resp_part_str(s, 20, "data: b\n\n");
    fu_resp_drop(s);
    if (chunked)
        fu_resp_chunked(s);
    fu_push(e->fu, s);
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_BROKEN);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.body.n, strlen("data: a\n\ndata: b\n\n"));
    rec_free(&r);
    free(url);
}

static void test_drop_mid_stream(void **state)
{
    drop_case(*state, false);
    fu_reset(((env_t *)*state)->fu);
    drop_case(*state, true);
}

static void test_cancel_inside_on_data(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/endless");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);
    pg_upstream_stats_t st;

    fu_resp_endless(s, 10, "data: tick\n\n");
    fu_push(e->fu, s);
    r.cancel_after_ndata = 3;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    run_for(e, 100); /* anything still queued would show up now */
    assert_int_equal(r.ndata, 3);
    assert_int_equal(r.ndone, 0);
    assert_int_equal(r.calls_after_end, 0);
    pg_upstream_get_stats(e->u, &st);
    assert_int_equal(st.transfers_active, 0);
    rec_free(&r);
    free(url);
}

static void test_cancel_inside_on_head(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/stall");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_part_str(s, 0, "x");
    fu_resp_stall(s);
    fu_push(e->fu, s);
    r.cancel_in_head = true;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    run_for(e, 50);
    assert_int_equal(r.nhead, 1);
    assert_int_equal(r.ndata, 0);
    assert_int_equal(r.ndone, 0);
    rec_free(&r);
    free(url);
}

static void on_cancel_timer(uv_timer_t *t)
{
    rec_t *r = t->data;

    pg_upstream_cancel(r->x);
    r->ended = true;
}

static void test_cancel_from_loop(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/stall");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);
    uv_timer_t t;
    bool got_data = false;

    fu_resp_part_str(s, 0, "data: one\n\n");
    fu_resp_stall(s);
    fu_push(e->fu, s);
    assert_int_equal(start(e, &r, &o), PG_OK);
    got_data = run_until(e, &r.got_data, WAIT_MS);
    assert_true(got_data);
    uv_timer_init(&e->loop, &t);
    t.data = &r;
    uv_timer_start(&t, on_cancel_timer, 1, 0);
    assert_true(run_until_done(e, &r));
    uv_close((uv_handle_t *)&t, NULL);
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    run_for(e, 50);
    assert_int_equal(r.ndone, 0);
    assert_int_equal(r.calls_after_end, 0);
    rec_free(&r);
    free(url);
}

static void test_pause_resume(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/parts");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);
    tc_bytes_t want = {0};

    /* Many small parts, most sent at once, plus a large one, so curl has
     * data buffered when it pauses. */
    for (int i = 0; i < 40; i++) {
        char part[32];
        int n = snprintf(part, sizeof part, "<%d>", i);
        fu_resp_part(s, i % 10 == 0 ? 5 : 0, part, (size_t)n);
        tc_bytes_append(&want, part, (size_t)n);
    }
    char *big = tc_xmalloc(100000);
    for (int i = 0; i < 100000; i++)
        big[i] = (char)('a' + i % 26);
    fu_resp_part(s, 0, big, 100000);
    tc_bytes_append(&want, big, 100000);
    free(big);
    fu_push(e->fu, s);
    r.pause_each = true;
    o.idle_timeout_ms = 5000;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.data_while_paused, 0);
    assert_true(r.ndata >= 2);
    assert_int_equal(r.body.n, want.n);
    assert_memory_equal(r.body.p, want.p, want.n);
    tc_bytes_free(&want);
    rec_free(&r);
    free(url);
}

static void test_abort_from_on_data(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char *url = fu_url(e->fu, "/endless");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);

    fu_resp_endless(s, 10, "tick");
    fu_push(e->fu, s);
    r.abort_after_ndata = 2;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_ABORTED);
    assert_int_equal(r.ndata, 2);
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    rec_free(&r);
    free(url);
}

static void test_start_inside_on_data(void **state)
{
    env_t *e = *state;
    rec_t a = {0}, b = {0};
    char *url = fu_url(e->fu, "/a");
    pg_upstream_opts_t o = get_opts(url);

    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "x"}));
    a.chain = &b;
    a.chain_url = url;
    assert_int_equal(start(e, &a, &o), PG_OK);
    assert_true(run_until_done(e, &a));
    assert_true(run_until_done(e, &b));
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(b.nhead, 1);
    assert_int_equal(a.body.n, b.body.n);
    rec_free(&a);
    rec_free(&b);
    free(url);
}

static void test_close_with_transfers_in_flight(void **state)
{
    env_t *e = *state;
    rec_t a = {0}, b = {0};
    char *url = fu_url(e->fu, "/stall");
    pg_upstream_opts_t o = get_opts(url);
    fu_resp_t *s = fu_resp_new(200);
    bool closed = false;

    fu_resp_part_str(s, 0, "data: one\n\n");
    fu_resp_stall(s);
    fu_push(e->fu, s);
    assert_int_equal(start(e, &a, &o), PG_OK);
    assert_int_equal(start(e, &b, &o), PG_OK);
    /* Two HTTP/1.1 streams at once: each gets its own connection. */
    assert_true(run_until(e, &a.got_data, WAIT_MS));
    assert_true(run_until(e, &b.got_data, WAIT_MS));
    assert_false(a.ended || b.ended);
    pg_upstream_close(e->u, on_closed, &closed);
    e->u = NULL;
    assert_true(run_until(e, &closed, WAIT_MS));
    assert_true(fu_wait_closed(e->fu, 2, WAIT_MS));
    assert_int_equal(a.ndone + b.ndone, 0);
    assert_int_equal(a.calls_after_end + b.calls_after_end, 0);
    rec_free(&a);
    rec_free(&b);
    free(url);
}

/* ---- the fake's provider bodies, read back through plain libcurl ------------ */

static char *fetch(fu_t *fu, fu_resp_t *s, tc_response_t *out)
{
    char *url = fu_url(fu, "/v1/x");

    fu_reset(fu);
    fu_push(fu, s);
    memset(out, 0, sizeof *out);
    assert_int_equal(tc_request("POST", url, "{}", NULL, out), CURLE_OK);
    free(url);
    return out->body.p;
}

static void test_fake_openai_stream(void **state)
{
    env_t *e = *state;
    tc_response_t resp;
    tc_sse_t sse = {0};
    tc_bytes_t text = {0};
    fu_tool_call_t tool = {.name = "get_weather",
                           .arguments = "{\"city\":\"Paris\"}"};
    tc_bytes_t args = {0};
    bool usage = false;

    fetch(e->fu,
          fu_openai_chat_stream(&(fu_llm_opts_t){.text = "Hello wide world",
                                                 .nparts = 4, .tools = &tool,
                                                 .ntools = 1,
                                                 .usage_chunk = true}),
          &resp);
    assert_int_equal(resp.status, 200);
    tc_sse_parse(resp.body.p, resp.body.n, &sse);
    assert_true(sse.n > 6);
    assert_string_equal(sse.data[sse.n - 1], "[DONE]");
    for (size_t i = 0; i + 1 < sse.n; i++) {
        cJSON *j = cJSON_Parse(sse.data[i]);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "object")->valuestring,
                            "chat.completion.chunk");
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        if (ch == NULL) {
            usage = cJSON_GetObjectItem(
                        cJSON_GetObjectItem(j, "usage"), "total_tokens") != NULL;
        } else {
            cJSON *d = cJSON_GetObjectItem(ch, "delta");
            cJSON *c = cJSON_GetObjectItem(d, "content");
            cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "tool_calls"), 0);
            if (cJSON_IsString(c))
                tc_bytes_append(&text, c->valuestring, strlen(c->valuestring));
            if (tc) {
                cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"),
                                               "arguments");
                tc_bytes_append(&args, a->valuestring, strlen(a->valuestring));
            }
        }
        cJSON_Delete(j);
    }
    assert_true(usage);
    assert_int_equal(text.n, strlen("Hello wide world"));
    assert_memory_equal(text.p, "Hello wide world", text.n);
    assert_int_equal(args.n, strlen(tool.arguments));
    assert_memory_equal(args.p, tool.arguments, args.n);
    tc_bytes_free(&text);
    tc_bytes_free(&args);
    tc_sse_free(&sse);
    tc_response_free(&resp);
}

static void test_fake_anthropic_bodies(void **state)
{
    env_t *e = *state;
    tc_response_t resp;
    tc_sse_t sse = {0};
    tc_bytes_t text = {0};
    const char *want[] = {"message_start", "ping", "content_block_start",
                          "content_block_delta", "content_block_delta",
                          "content_block_stop", "message_delta", "message_stop"};

    fetch(e->fu, fu_anthropic_stream(&(fu_llm_opts_t){.text = "Héllo", .nparts = 2}),
          &resp);
    tc_sse_parse(resp.body.p, resp.body.n, &sse);
    assert_int_equal(sse.n, 8);
    for (size_t i = 0; i < sse.n; i++) {
        cJSON *j = cJSON_Parse(sse.data[i]);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, want[i]);
        if (strcmp(want[i], "content_block_delta") == 0) {
            const char *t = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "delta"),
                                                "text")->valuestring;
            tc_bytes_append(&text, t, strlen(t));
        }
        cJSON_Delete(j);
    }
    assert_string_equal(text.p, "Héllo");
    tc_bytes_free(&text);
    tc_sse_free(&sse);
    tc_response_free(&resp);

    fetch(e->fu, fu_anthropic_overloaded(), &resp);
    assert_int_equal(resp.status, 529);
    cJSON *j = cJSON_ParseWithLength(resp.body.p, resp.body.n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "type")->valuestring, "error");
    cJSON_Delete(j);
    tc_response_free(&resp);

    fetch(e->fu, fu_malformed_json(), &resp);
    assert_int_equal(resp.status, 200);
    assert_null(cJSON_ParseWithLength(resp.body.p, resp.body.n));
    tc_response_free(&resp);
}


/* ---- connect timeout: a listener whose accept queue is full drops SYNs ---- */

static void test_connect_timeout(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fill[8];
    char *url;
    pg_upstream_opts_t o;

    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &len), 0);
    /* Fill the accept queue (never accepted) so further SYNs are dropped. */
    for (int i = 0; i < 8; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    usleep(50000);
    url = tc_url(ntohs(a.sin_port), "/x");
    o = get_opts(url);
    o.connect_timeout_ms = 200;
    o.total_timeout_ms = 20000;
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    if (r.result != PG_UPSTREAM_CONNECT_TIMEOUT)
        print_message("msg: %s\n", r.msg);
    assert_int_equal(r.result, PG_UPSTREAM_CONNECT_TIMEOUT);
    assert_int_equal(r.nhead, 0);
    for (int i = 0; i < 8; i++)
        close(fill[i]);
    close(lfd);
    rec_free(&r);
    free(url);
}

/* ---- out of memory: fail the Nth library allocation, sweep N ------------- */

static void test_oom_sweep(void **state)
{
    env_t *e = *state;
    char *url = fu_url(e->fu, "/v1/chat/completions");
    pg_kv_t hdrs[] = {{PG_STR("Authorization"), PG_STR("Bearer k")},
                      {PG_STR("X-Empty"), PG_STR("")}};
    pg_upstream_opts_t o = {.method = "POST", .url = url, .headers = hdrs,
                            .nheaders = 2, .body = PG_STR("{\"a\":1}"),
                            .force_curl = e->curl};
    fu_resp_t *s = fu_openai_chat(&(fu_llm_opts_t){.text = "fine"});
    bool clean_run = false;

    fu_resp_header(s, "X-Extra", "1");
    fu_push(e->fu, s);
    oom_install();
    for (long n = 0; n < 500 && !clean_run; n++) {
        pg_upstream_t *u = NULL;
        rec_t r = {0};
        bool closed = false;
        int rc;

        oom_arm(n);
        rc = pg_upstream_new(&e->loop, &u);
        if (rc != PG_OK) {
            assert_int_equal(rc, PG_ENOMEM);
            continue;
        }
        r.env = e;
        rc = pg_upstream_start(u, &o, &cbs, &r, &r.x);
        if (rc == PG_OK) {
            if (!run_until_done(e, &r))
                fail_msg("stuck with allocation %ld failing", n);
            assert_true(r.result == PG_UPSTREAM_OK || r.result == PG_UPSTREAM_ERROR);
            if (r.result == PG_UPSTREAM_OK) {
                assert_int_equal(r.status, 200);
                assert_non_null(r.content_type);
            }
        } else {
            assert_int_equal(rc, PG_ENOMEM);
            assert_int_equal(r.nhead + r.ndone, 0);
        }
        clean_run = oom_calls() <= n; /* nothing failed: the sweep is done */
        oom_arm(-1);
        pg_upstream_close(u, on_closed, &closed);
        assert_true(run_until(e, &closed, WAIT_MS));
        rec_free(&r);
    }
    oom_uninstall();
    assert_true(clean_run);
    free(url);
}

/* A body larger than the socket takes at once: the rest of the request
 * goes out as the socket drains, byte-identical. */
static void test_large_request_body(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    size_t n = 6 * 1024 * 1024;
    char *body = tc_xmalloc(n);
    char *url = fu_url(e->fu, "/v1/big");

    for (size_t i = 0; i < n; i++)
        body[i] = (char)(i * 7 + i / 4096);
    pg_upstream_opts_t o = {.method = "POST", .url = url,
                            .body = {body, n}};
    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "ok"}));
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    fu_request_t *rq = fu_request(e->fu, 0);
    assert_int_equal(rq->body_len, n);
    assert_memory_equal(rq->body, body, n);
    fu_request_free(rq);
    rec_free(&r);
    free(body);
    free(url);
}

/* ---- both engines: names, Connection: close, the request on the wire ------ */

static void test_localhost_name(void **state)
{
    env_t *e = *state;
    rec_t r = {0};
    char url[64];

    /* The fake listens on 127.0.0.1 only: a resolver answering ::1 first
     * makes the client fall back to the next address. */
    snprintf(url, sizeof url, "http://localhost:%d/v1/models", fu_port(e->fu));
    pg_upstream_opts_t o = get_opts(url);
    o.connect_timeout_ms = 5000;
    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "hi"}));
    assert_int_equal(start(e, &r, &o), PG_OK);
    assert_true(run_until_done(e, &r));
    if (r.result != PG_UPSTREAM_OK)
        print_message("msg: %s\n", r.msg);
    assert_int_equal(r.result, PG_UPSTREAM_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(fu_requests_count(e->fu), 1);
    fu_request_t *rq = fu_request(e->fu, 0);
    char want[32];
    snprintf(want, sizeof want, "localhost:%d", fu_port(e->fu));
    assert_string_equal(fu_request_header(rq, "host"), want);
    fu_request_free(rq);
    rec_free(&r);
}

/* A name that cannot resolve (a label over DNS's 63 bytes under .invalid:
 * the resolver refuses it without sending a query, so nothing leaves the
 * machine) fails before anything is sent, naming the host, in both
 * engines; so does
 * the next transfer to it, which the native client answers from its
 * negative cache (test_h1.c counts the lookups). */
static void test_unresolvable_name(void **state)
{
    env_t *e = *state;
    static const char host[] =
        "pg-test-upstream-" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" ".invalid";
    rec_t r[2] = {{0}};
    pg_upstream_opts_t o = get_opts(
        "http://pg-test-upstream-" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" ".invalid/v1/x");
    pg_upstream_stats_t st;

    o.connect_timeout_ms = 30000; /* a resolver's own timeouts may be long */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(start(e, &r[i], &o), PG_OK);
        assert_int_equal(r[i].ndone, 0); /* never from inside start */
        assert_true(run_until(e, &r[i].ended, 30000));
        assert_int_equal(r[i].ndone, 1);
        assert_int_equal(r[i].result, PG_UPSTREAM_CONNECT_FAILED);
        assert_int_equal(r[i].nhead, 0);
        if (strstr(r[i].msg, host) == NULL)
            fail_msg("msg: %s", r[i].msg);
        rec_free(&r[i]);
    }
    assert_string_equal(r[1].msg, r[0].msg);
    pg_upstream_get_stats(e->u, &st);
    assert_int_equal(st.transfers_active, 0);
}

static void test_connection_close_not_pooled(void **state)
{
    env_t *e = *state;
    rec_t a = {0}, b = {0};
    char *url = fu_url(e->fu, "/v1/chat/completions");
    pg_upstream_opts_t o = {.method = "POST", .url = url, .body = PG_STR("{}")};
    fu_resp_t *s = fu_openai_chat(&(fu_llm_opts_t){.text = "one"});
    pg_upstream_stats_t st;

    fu_resp_close(s);
    fu_push(e->fu, s);
    assert_int_equal(start(e, &a, &o), PG_OK);
    assert_true(run_until_done(e, &a));
    assert_int_equal(start(e, &b, &o), PG_OK);
    assert_true(run_until_done(e, &b));
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(fu_conns_opened(e->fu), 2);
    pg_upstream_get_stats(e->u, &st);
    assert_int_equal(st.connections_opened, 2);
    rec_free(&a);
    rec_free(&b);
    free(url);
}

/* The same POST through both engines: the upstream sees the same header
 * names (the native client says Accept-Encoding: identity where curl
 * offers its decoders) and the same values for the ones that matter. */
static void test_same_request_on_the_wire(void **state)
{
    env_t *e = *state;
    pg_kv_t hdrs[] = {{PG_STR("Authorization"), PG_STR("Bearer k")},
                      {PG_STR("Content-Type"), PG_STR("application/json")},
                      {PG_STR("X-Empty"), PG_STR("")}};
    char *url = fu_url(e->fu, "/v1/chat/completions?a=b");
    fu_request_t *rq[2];

    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "x"}));
    for (int i = 0; i < 2; i++) {
        rec_t r = {0};
        pg_upstream_opts_t o = {.method = "POST", .url = url, .headers = hdrs,
                                .nheaders = 3, .body = PG_STR("{\"q\":1}"),
                                .force_curl = i == 0};
        r.env = e;
        assert_int_equal(pg_upstream_start(e->u, &o, &cbs, &r, &r.x), PG_OK);
        assert_true(run_until_done(e, &r));
        assert_int_equal(r.result, PG_UPSTREAM_OK);
        rec_free(&r);
        rq[i] = fu_request(e->fu, (size_t)i);
    }
    assert_string_equal(rq[0]->path, rq[1]->path);
    assert_string_equal(rq[0]->method, rq[1]->method);
    assert_int_equal(rq[0]->nheaders, rq[1]->nheaders);
    for (size_t i = 0; i < rq[0]->nheaders; i++) {
        const char *n = rq[0]->headers[i].name;
        const char *v1 = fu_request_header(rq[1], n);
        if (v1 == NULL)
            fail_msg("the native client does not send %s", n);
        if (strcasecmp(n, "accept-encoding") != 0)
            assert_string_equal(rq[0]->headers[i].value, v1);
    }
    assert_string_equal(fu_request_header(rq[1], "accept-encoding"), "identity");
    assert_null(fu_request_header(rq[1], "expect"));
    assert_string_equal(fu_request_header(rq[1], "x-empty"), "");
    assert_int_equal(rq[1]->body_len, strlen("{\"q\":1}"));
    fu_request_free(rq[0]);
    fu_request_free(rq[1]);
    free(url);
}

/* ---- a raw scripted server on the test loop ---------------------------------- */

typedef enum raw_after {
    RAW_KEEP = 0, /* answer, keep the connection */
    RAW_CLOSE,    /* answer, then close */
    RAW_HANGUP    /* close without answering */
} raw_after_t;

typedef struct raw_step {
    const char *data;
    size_t n;
    raw_after_t after;
} raw_step_t;


typedef struct raw_conn {
    uv_tcp_t t;
    uv_write_t w;
    raw_srv_t *s;
    pg_list_t node;
    char buf[16384];
    size_t n;
    bool close_after_write;
} raw_conn_t;

static void raw_conn_closed(uv_handle_t *h)
{
    raw_conn_t *c = pg_container_of((uv_tcp_t *)h, raw_conn_t, t);
    c->s->nclosed++;
    free(c);
}

static void raw_conn_close(raw_conn_t *c)
{
    if (uv_is_closing((uv_handle_t *)&c->t))
        return;
    pg_list_remove(&c->node);
    uv_close((uv_handle_t *)&c->t, raw_conn_closed);
}

static void raw_written(uv_write_t *w, int status)
{
    raw_conn_t *c = pg_container_of(w, raw_conn_t, w);
    (void)status;
    if (c->close_after_write)
        raw_conn_close(c);
}

static void raw_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
    raw_conn_t *c = pg_container_of((uv_tcp_t *)h, raw_conn_t, t);
    (void)want;
    if (c->n == sizeof c->buf) /* requests here are small; forget old ones */
        c->n = 0;
    *b = uv_buf_init(c->buf + c->n, (unsigned)(sizeof c->buf - c->n));
}

/* One request per blank line (the clients here send no bodies). */
static void raw_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    raw_conn_t *c = pg_container_of((uv_tcp_t *)st, raw_conn_t, t);
    char *end;

    (void)b;
    if (nread < 0) {
        raw_conn_close(c);
        return;
    }
    c->n += (size_t)nread;
    while ((end = memmem(c->buf, c->n, "\r\n\r\n", 4)) != NULL) {
        size_t used = (size_t)(end + 4 - c->buf);
        raw_srv_t *s = c->s;
        size_t i = (size_t)s->nreq < s->nsteps ? (size_t)s->nreq : s->nsteps - 1;
        const raw_step_t *step = &s->steps[i];

        memmove(c->buf, c->buf + used, c->n - used);
        c->n -= used;
        s->nreq++;
        if (step->after == RAW_HANGUP) {
            raw_conn_close(c);
            return;
        }
        uv_buf_t out = uv_buf_init((char *)step->data, (unsigned)step->n);
        c->close_after_write = step->after == RAW_CLOSE;
        assert_int_equal(uv_write(&c->w, st, &out, 1, raw_written), 0);
        return; /* one answer in flight at a time */
    }
}

static void raw_accept(uv_stream_t *l, int status)
{
    raw_srv_t *s = pg_container_of((uv_tcp_t *)l, raw_srv_t, lis);
    raw_conn_t *c = tc_xmalloc(sizeof *c);

    assert_int_equal(status, 0);
    memset(c, 0, sizeof *c);
    c->s = s;
    uv_tcp_init(l->loop, &c->t);
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->t), 0);
    pg_list_push_back(&s->conns, &c->node);
    s->nconns++;
    uv_read_start((uv_stream_t *)&c->t, raw_alloc, raw_read);
}

static raw_srv_t *raw_start(env_t *e, const raw_step_t *steps, size_t nsteps)
{
    struct sockaddr_in a;
    int len = sizeof a;
    raw_srv_t *s = &e->raw;

    memset(s, 0, sizeof *s);
    s->steps = steps;
    s->nsteps = nsteps;
    pg_list_init(&s->conns);
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&e->loop, &s->lis);
    assert_int_equal(uv_tcp_bind(&s->lis, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->lis, 64, raw_accept), 0);
    uv_tcp_getsockname(&s->lis, (struct sockaddr *)&a, &len);
    s->port = ntohs(a.sin_port);
    e->raw_on = true;
    return s;
}

static void on_raw_lis_closed(uv_handle_t *h)
{
    raw_srv_t *s = pg_container_of((uv_tcp_t *)h, raw_srv_t, lis);
    s->nsteps = 0; /* marks the listener closed */
}

/* Closes everything and waits for the close callbacks (they use s). */
static void raw_stop(env_t *e, raw_srv_t *s)
{
    while (!pg_list_empty(&s->conns))
        raw_conn_close(pg_container_of(s->conns.next, raw_conn_t, node));
    uv_close((uv_handle_t *)&s->lis, on_raw_lis_closed);
    while (s->nsteps > 0 || s->nclosed < s->nconns)
        uv_run(&e->loop, UV_RUN_ONCE);
    e->raw_on = false;
}

#define STEP(lit, after) {(lit), sizeof(lit) - 1, (after)}

/* One GET to the raw server; returns its record (caller rec_free). */
static void raw_get(env_t *e, raw_srv_t *s, rec_t *r)
{
    char *url = tc_url(s->port, "/x");
    pg_upstream_opts_t o = get_opts(url);

    memset(r, 0, sizeof *r);
    o.total_timeout_ms = 5000;
    assert_int_equal(start(e, r, &o), PG_OK);
    assert_true(run_until_done(e, r));
    assert_int_equal(r->ndone, 1);
    assert_int_equal(r->calls_after_end, 0);
    assert_int_equal(r->data_before_head, 0);
    free(url);
}

static uint64_t conns_opened(env_t *e)
{
    pg_upstream_stats_t st;
    pg_upstream_get_stats(e->u, &st);
    return st.connections_opened;
}

/* A pooled connection the upstream closes when the next request comes:
 * nothing of a response was read, so that request goes again on a fresh
 * connection (curl does the same). */
static void test_stale_pooled_connection_retried(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none", RAW_KEEP),
        STEP("", RAW_HANGUP),
        STEP("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo", RAW_KEEP),
    };
    raw_srv_t *s;
    rec_t a, b;

    s = raw_start(e, steps, 3);
    raw_get(e, s, &a);
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    raw_get(e, s, &b);
    if (b.result != PG_UPSTREAM_OK)
        print_message("msg: %s\n", b.msg);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(b.body.n, 3);
    assert_memory_equal(b.body.p, "two", 3);
    assert_int_equal(s->nreq, 3);
    assert_int_equal(s->nconns, 2);
    assert_int_equal(conns_opened(e), 2);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
}

/* No Content-Length, not chunked: the body ends with the connection. */
static void test_close_delimited_body(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, world",
             RAW_CLOSE),
    };
    raw_srv_t *s;
    rec_t a, b;

    s = raw_start(e, steps, 1);
    raw_get(e, s, &a);
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body.n, strlen("hello, world"));
    assert_memory_equal(a.body.p, "hello, world", a.body.n);
    raw_get(e, s, &b); /* not pooled: a new connection */
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(s->nconns, 2);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
}

/* HTTP/1.0 without keep-alive is not pooled, even if the peer keeps the
 * connection open; a 1xx head before the real one is skipped. */
static void test_http10_and_1xx(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", RAW_KEEP),
        STEP("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
             "HTTP/1.1 201 Created\r\nContent-Length: 3\r\nRetry-After: 9\r\n"
             "\r\nnew", RAW_KEEP),
    };
    raw_srv_t *s;
    rec_t a, b;

    s = raw_start(e, steps, 2);
    raw_get(e, s, &a);
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(a.body.n, 2);
    raw_get(e, s, &b);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(b.nhead, 1);
    assert_int_equal(b.status, 201);
    assert_string_equal(b.retry_after, "9");
    assert_memory_equal(b.body.p, "new", 3);
    assert_int_equal(s->nconns, 2);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
}

/* Heads past the limits: too many lines, or one huge value. */
static void test_head_limits(void **state)
{
    env_t *e = *state;
    size_t cap = 200000, n = 0;
    char *many = tc_xmalloc(cap), *huge = tc_xmalloc(cap);
    raw_step_t steps[2];
    raw_srv_t *s;
    rec_t a, b;

    n += (size_t)sprintf(many, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 600; i++)
        n += (size_t)sprintf(many + n, "X-H%d: v\r\n", i);
    n += (size_t)sprintf(many + n, "Content-Length: 0\r\n\r\n");
    steps[0] = (raw_step_t){many, n, RAW_KEEP};
    /* A constant length: gcc -O2 (ASan build) cannot bound sprintf's. */
    static const char big[] = "HTTP/1.1 200 OK\r\nX-Big: ";
    memcpy(huge, big, sizeof(big) - 1);
    n = sizeof(big) - 1;
    memset(huge + n, 'v', 70000);
    n += 70000;
    n += (size_t)sprintf(huge + n, "\r\nContent-Length: 0\r\n\r\n");
    steps[1] = (raw_step_t){huge, n, RAW_KEEP};
    s = raw_start(e, steps, 2);
    raw_get(e, s, &a);
    raw_get(e, s, &b);
    assert_int_equal(a.result, PG_UPSTREAM_TOO_BIG);
    assert_int_equal(b.result, PG_UPSTREAM_TOO_BIG);
    assert_int_equal(a.nhead + b.nhead, 0);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
    free(many);
    free(huge);
}

static void test_malformed_head(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", RAW_CLOSE),
    };
    raw_srv_t *s;
    rec_t a;

    s = raw_start(e, steps, 1);
    raw_get(e, s, &a);
    /* curl calls a status line it cannot read an unsupported protocol
     * (CONNECT_FAILED); the native client a broken response. */
    if (!e->curl)
        assert_int_equal(a.result, PG_UPSTREAM_BROKEN);
    assert_int_not_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(a.nhead, 0);
    assert_true(strlen(a.msg) > 0);
    raw_stop(e, s);
    rec_free(&a);
}

/* ---- native only --------------------------------------------------------------- */

/* Bytes after a complete response make the connection unfit for reuse. */
static void test_garbage_after_response(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokGARBAGE", RAW_KEEP),
        STEP("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", RAW_KEEP),
    };
    raw_srv_t *s;
    rec_t a, b;

    s = raw_start(e, steps, 2);
    raw_get(e, s, &a);
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(a.body.n, 2);
    assert_memory_equal(a.body.p, "ok", 2);
    raw_get(e, s, &b);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(s->nconns, 2);
    assert_int_equal(conns_opened(e), 2);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
}

/* The pool keeps at most max_idle connections and closes those idle past
 * the timeout; the fake sees the closes, a later request a new one. */
static void test_pool_limits(void **state)
{
    env_t *e = *state;
    rec_t a = {0}, b = {0}, c = {0};
    char *url = fu_url(e->fu, "/v1/models");
    pg_upstream_opts_t o = get_opts(url);

    pg_upstream_set_pool(e->u, 1, 100);
    fu_push(e->fu, fu_openai_chat(&(fu_llm_opts_t){.text = "x"}));
    assert_int_equal(start(e, &a, &o), PG_OK);
    assert_int_equal(start(e, &b, &o), PG_OK);
    assert_true(run_until_done(e, &a));
    assert_true(run_until_done(e, &b));
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(conns_opened(e), 2);
    /* Two came back, one fits: the other was closed at once. */
    assert_true(fu_wait_closed(e->fu, 1, WAIT_MS));
    /* The one kept goes after its idle timeout. */
    for (int i = 0; i < 100 && fu_conns_closed(e->fu) < 2; i++)
        run_for(e, 50);
    assert_int_equal(fu_conns_closed(e->fu), 2);
    assert_int_equal(start(e, &c, &o), PG_OK);
    assert_true(run_until_done(e, &c));
    assert_int_equal(c.result, PG_UPSTREAM_OK);
    assert_int_equal(conns_opened(e), 3);
    rec_free(&a);
    rec_free(&b);
    rec_free(&c);
    free(url);
}

/* An idle pooled connection the upstream closes is dropped from the pool
 * when the close arrives: the upstream only half-closes (FIN), so it sees
 * the client's close only if the client watched its idle connection. */
static void test_pooled_close_noticed(void **state)
{
    env_t *e = *state;
    static const raw_step_t steps[] = {
        STEP("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", RAW_KEEP),
    };
    raw_srv_t *s;
    rec_t a, b;

    s = raw_start(e, steps, 1);
    raw_get(e, s, &a);
    assert_int_equal(a.result, PG_UPSTREAM_OK);
    uv_shutdown_t sh;
    raw_conn_t *rc = pg_container_of(s->conns.next, raw_conn_t, node);
    assert_int_equal(uv_shutdown(&sh, (uv_stream_t *)&rc->t, NULL), 0);
    for (int i = 0; i < 200 && s->nclosed == 0; i++)
        run_for(e, 10);
    assert_int_equal(s->nclosed, 1);
    raw_get(e, s, &b);
    assert_int_equal(b.result, PG_UPSTREAM_OK);
    assert_int_equal(s->nreq, 2); /* no request was lost on the dead one */
    assert_int_equal(conns_opened(e), 2);
    raw_stop(e, s);
    rec_free(&a);
    rec_free(&b);
}

/* ---- robustness: random bytes as the upstream's answer ------------------------ */

static uint32_t rnd_state = 12345;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

/* Pure noise, noise after a valid status line, a valid head followed by
 * a mangled chunked body, or a body longer or shorter than announced: every answer ends the transfer exactly once,
 * with the head before any data, and the worker goes on. */
static void test_random_responses(void **state)
{
    env_t *e = *state;
    static const char alpha[] = "HTTP/1.0 2345\r\n:;- \tabcxyzCONTENT-LENGTH"
                                "transfer-encoding:chunked0123456789abcdef";
    char buf[1200];
    raw_step_t step;
    raw_srv_t *s;
    int ok = 0;

    for (int it = 0; it < 300; it++) {
        size_t n = 0, len = 1 + rnd() % 700;
        int kind = (int)(rnd() % 4);
        rec_t r;

        if (kind == 1)
            n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");
        else if (kind == 2)
            n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
                                     "chunked\r\n\r\n");
        else if (kind == 3) /* a body shorter or longer than announced */
            n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: "
                                     "%u\r\n\r\n", (unsigned)(rnd() % 700));
        for (size_t i = 0; i < len && n < sizeof buf; i++)
            buf[n++] = kind == 0 && rnd() % 2 ? (char)rnd()
                                              : alpha[rnd() % (sizeof alpha - 1)];
        step = (raw_step_t){buf, n, RAW_CLOSE};
        s = raw_start(e, &step, 1);
        raw_get(e, s, &r);
        if (r.result == PG_UPSTREAM_OK) {
            ok++;
            assert_int_equal(r.nhead, 1);
        }
        assert_true(r.result == PG_UPSTREAM_OK || r.result == PG_UPSTREAM_BROKEN ||
                    r.result == PG_UPSTREAM_TOO_BIG || r.result == PG_UPSTREAM_ERROR);
        raw_stop(e, s);
        rec_free(&r);
    }
    print_message("%d of 300 random answers parsed as whole responses\n", ok);
    pg_upstream_stats_t st;
    pg_upstream_get_stats(e->u, &st);
    assert_int_equal(st.transfers_active, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f)                                                          \
    {#f " (native)", f, setup_native, teardown, NULL},               \
    {#f " (curl)", f, setup_curl, teardown, NULL}
#define TN(f) {#f " (native)", f, setup_native, teardown, NULL}
        T(test_post_round_trip),
        T(test_get_empty_body),
        T(test_error_status_is_ok_transfer),
        T(test_streamed_parts),
        T(test_connection_reuse),
        T(test_connect_failed),
        T(test_connect_timeout),
        T(test_first_byte_timeout),
        T(test_idle_timeout),
        T(test_total_timeout),
        T(test_too_big),
        T(test_drop_mid_stream),
        T(test_cancel_inside_on_data),
        T(test_cancel_inside_on_head),
        T(test_cancel_from_loop),
        T(test_pause_resume),
        T(test_abort_from_on_data),
        T(test_start_inside_on_data),
        T(test_close_with_transfers_in_flight),
        T(test_oom_sweep),
        T(test_fake_openai_stream),
        T(test_fake_anthropic_bodies),
        T(test_large_request_body),
        T(test_localhost_name),
        T(test_connection_close_not_pooled),
        T(test_unresolvable_name),
        TN(test_same_request_on_the_wire), /* compares both engines */
        T(test_stale_pooled_connection_retried),
        T(test_close_delimited_body),
        T(test_http10_and_1xx),
        T(test_head_limits),
        T(test_malformed_head),
        TN(test_garbage_after_response),
        TN(test_pool_limits),
        TN(test_pooled_close_noticed),
        TN(test_random_responses),
#undef T
#undef TN
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
