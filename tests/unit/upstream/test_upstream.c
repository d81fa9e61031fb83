/* test_upstream.c: lib/upstream against the scripted fake upstream
 * (tests/support/fake_upstream). Each test runs its own uv loop on the
 * test thread with one pg_upstream_t, the fake on its own thread, and
 * asserts uv_loop_close() == 0 at the end. Waits are bounded by a watchdog
 * but the assertions are about what happened, not how long it took. */
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

typedef struct env {
    uv_loop_t loop;
    pg_upstream_t *u;
    fu_t *fu;
    uv_timer_t resume_timer;
    rec_t *to_resume;
} env_t;

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
    r->env = e;
    return pg_upstream_start(e->u, o, &cbs, r, &r->x);
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

static int setup(void **state)
{
    env_t *e = tc_xmalloc(sizeof *e);

    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(pg_upstream_new(&e->loop, &e->u), PG_OK);
    uv_timer_init(&e->loop, &e->resume_timer);
    e->fu = fu_start();
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    bool closed = false;

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

static long oom_fail_at = -1;
static long oom_calls;

static bool oom_fail(void)
{
    return oom_fail_at >= 0 && oom_calls++ == oom_fail_at;
}
static void *t_malloc(size_t n) { return oom_fail() ? NULL : malloc(n); }
static void *t_realloc(void *p, size_t n) { return oom_fail() ? NULL : realloc(p, n); }
static void *t_calloc(size_t c, size_t n) { return oom_fail() ? NULL : calloc(c, n); }

static void test_oom_sweep(void **state)
{
    env_t *e = *state;
    char *url = fu_url(e->fu, "/v1/chat/completions");
    pg_kv_t hdrs[] = {{PG_STR("Authorization"), PG_STR("Bearer k")},
                      {PG_STR("X-Empty"), PG_STR("")}};
    pg_upstream_opts_t o = {.method = "POST", .url = url, .headers = hdrs,
                            .nheaders = 2, .body = PG_STR("{\"a\":1}")};
    fu_resp_t *s = fu_openai_chat(&(fu_llm_opts_t){.text = "fine"});
    bool clean_run = false;

    fu_resp_header(s, "X-Extra", "1");
    fu_push(e->fu, s);
    assert_int_equal(pg_set_allocator(t_malloc, t_realloc, t_calloc, free), PG_OK);
    for (long n = 0; n < 500 && !clean_run; n++) {
        pg_upstream_t *u = NULL;
        rec_t r = {0};
        bool closed = false;
        int rc;

        oom_calls = 0;
        oom_fail_at = n;
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
        clean_run = oom_calls <= n; /* nothing failed: the sweep is done */
        oom_fail_at = -1;
        pg_upstream_close(u, on_closed, &closed);
        assert_true(run_until(e, &closed, WAIT_MS));
        rec_free(&r);
    }
    assert_int_equal(pg_set_allocator(malloc, realloc, calloc, free), PG_OK);
    assert_true(clean_run);
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
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
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
