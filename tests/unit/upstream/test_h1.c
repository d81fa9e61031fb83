/* test_h1.c: the native client's name lookups (lib/upstream/h1_host.c), on a
 * pg_h1_t of the test's own: one lookup per host however many transfers
 * wait for it, a failed name remembered for the negative window (no new
 * lookup, the same failure at once), a new lookup once the window has
 * passed, and answers kept by the positive cache. Lookups are counted
 * with pg__h1_dns_lookups, never timed.
 *
 * The bad name has a label over DNS's 63 bytes under .invalid (RFC 6761):
 * the resolver refuses it before building a query, so it fails at once
 * and nothing leaves the machine (tests use loopback only);
 * "localhost" resolves from /etc/hosts, and transfers to it connect to a
 * port bound but not listening. libcurl has its own DNS cache: the case
 * both engines share (an unresolvable name fails) is in test_upstream.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "upstream/h1.h"

/* Bounds each transfer's lookup and connect: a resolver may take its own
 * timeouts to give up on a name. */
#define CONNECT_MS 30000
#define BAD_HOST                                                               \
    "pg-test-dns-" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"                             \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" ".invalid"

typedef struct env {
    uv_loop_t loop;
    pg_upstream_stats_t stats;
    pg_h1_t *h;
} env_t;

typedef struct rec {
    pg_upstream_xfer_t *x;
    int ndone;
    pg_upstream_result_t result;
    char msg[256];
    bool ended;
} rec_t;

static void on_done(void *ud, pg_upstream_result_t result, const char *msg)
{
    rec_t *r = ud;

    r->ndone++;
    r->ended = true;
    r->result = result;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "(null)");
}

static const pg_upstream_cbs_t cbs = {.on_done = on_done};

/* Runs the loop until nothing is left to do: every transfer started has
 * ended (its connect_timeout_ms bounds a lookup) and every handle closed. */
static void run(env_t *e) { uv_run(&e->loop, UV_RUN_DEFAULT); }

static void on_pass(uv_timer_t *t) { (void)t; }

/* Lets at least ms of loop time pass. */
static void pass_ms(env_t *e, uint64_t ms)
{
    uv_timer_t t;

    uv_timer_init(&e->loop, &t);
    uv_timer_start(&t, on_pass, ms, 0);
    run(e);
    uv_close((uv_handle_t *)&t, NULL);
    run(e);
}

static void on_closed(void *ud) { *(bool *)ud = true; }

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof *e);

    assert_non_null(e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(pg__h1_new(&e->loop, &e->stats, &e->h), PG_OK);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    env_t *e = *state;
    bool closed = false;

    pg__h1_close(e->h, on_closed, &closed);
    run(e);
    assert_true(closed);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    free(e);
    return 0;
}

/* Starts a GET of url; no callback may come from inside the call. */
static void start(env_t *e, rec_t *r, const char *url)
{
    pg_upstream_opts_t o = {.method = "GET", .url = url,
                            .connect_timeout_ms = CONNECT_MS};

    memset(r, 0, sizeof *r);
    assert_int_equal(pg__h1_start(e->h, &o, &cbs, r, &r->x), PG_OK);
    assert_int_equal(r->ndone, 0);
}

static void get(env_t *e, rec_t *r, const char *url)
{
    start(e, r, url);
    run(e);
    assert_int_equal(r->ndone, 1);
}

static void assert_unresolved(const rec_t *r, const char *host)
{
    char want[128];

    assert_int_equal(r->result, PG_UPSTREAM_CONNECT_FAILED);
    snprintf(want, sizeof want, "could not resolve host %s: ", host);
    if (strncmp(r->msg, want, strlen(want)) != 0)
        fail_msg("msg: %s", r->msg);
}

/* ---- tests ----------------------------------------------------------------- */

/* The first transfer looks the name up and fails; the next ones, inside
 * the default window, fail the same way with no new lookup. Another port
 * of the same name is another host:port, looked up on its own. */
static void test_negative_cached(void **state)
{
    env_t *e = *state;
    rec_t a, b, c, d;

    get(e, &a, "http://" BAD_HOST "/v1/models");
    assert_unresolved(&a, BAD_HOST);
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);

    get(e, &b, "http://" BAD_HOST "/v1/chat/completions");
    assert_unresolved(&b, BAD_HOST);
    assert_string_equal(b.msg, a.msg);
    get(e, &c, "http://" BAD_HOST ":80/other");
    assert_string_equal(c.msg, a.msg);
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);

    get(e, &d, "http://" BAD_HOST ":8080/v1/models");
    assert_unresolved(&d, BAD_HOST);
    assert_int_equal(pg__h1_dns_lookups(e->h), 2);
    assert_int_equal(e->stats.transfers_active, 0);
    assert_int_equal(e->stats.connections_opened, 0);
}

/* Once the window has passed the name is looked up again (and, failing
 * again, remembered again). The window set applies to the failure
 * already remembered; the loop runs well past it. */
static void test_negative_expires(void **state)
{
    env_t *e = *state;
    rec_t a, b, c, d;

    pg__h1_set_dns_negative(e->h, 60 * 1000);
    get(e, &a, "http://" BAD_HOST "/x");
    get(e, &b, "http://" BAD_HOST "/x");
    assert_unresolved(&b, BAD_HOST);
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);

    pg__h1_set_dns_negative(e->h, 1);
    pass_ms(e, 20);
    get(e, &c, "http://" BAD_HOST "/x");
    assert_unresolved(&c, BAD_HOST);
    assert_int_equal(pg__h1_dns_lookups(e->h), 2);

    /* 0: no negative cache, every transfer looks the name up. */
    pg__h1_set_dns_negative(e->h, 0);
    get(e, &d, "http://" BAD_HOST "/x");
    assert_unresolved(&d, BAD_HOST);
    assert_int_equal(pg__h1_dns_lookups(e->h), 3);
}

/* Transfers started while a lookup runs wait for it: one lookup, and
 * each of them gets its failure once. */
static void test_concurrent_share_one_lookup(void **state)
{
    env_t *e = *state;
    rec_t r[5];

    pg__h1_set_dns_negative(e->h, 0); /* only the sharing is at work */
    for (int i = 0; i < 5; i++)
        start(e, &r[i], "http://" BAD_HOST "/v1/models");
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);
    run(e);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i].ndone, 1);
        assert_unresolved(&r[i], BAD_HOST);
        assert_string_equal(r[i].msg, r[0].msg);
    }
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);
}

/* A transfer canceled while it waits for the lookup gets no callback; the
 * others still get their answer from the one lookup. */
static void test_cancel_while_resolving(void **state)
{
    env_t *e = *state;
    rec_t a, b;

    start(e, &a, "http://" BAD_HOST "/x");
    start(e, &b, "http://" BAD_HOST "/x");
    pg__h1_cancel(a.x);
    run(e);
    assert_int_equal(b.ndone, 1);
    assert_unresolved(&b, BAD_HOST);
    assert_int_equal(a.ndone, 0);
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);
    assert_int_equal(e->stats.transfers_active, 0);
}

/* A name that resolves is kept by the positive cache: a failed connect
 * is no DNS failure, and the next transfer reuses the answer. The port is
 * bound on the test's loop but not listening, so connects are refused. */
static void test_positive_cached(void **state)
{
    env_t *e = *state;
    struct sockaddr_in a4;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_t t;
    rec_t a, b;
    char url[64];

    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a4), 0);
    assert_int_equal(uv_tcp_init(&e->loop, &t), 0);
    assert_int_equal(uv_tcp_bind(&t, (const struct sockaddr *)&a4, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len), 0);
    snprintf(url, sizeof url, "http://localhost:%d/x",
             ntohs(((struct sockaddr_in *)&ss)->sin_port));
    get(e, &a, url);
    assert_int_equal(a.result, PG_UPSTREAM_CONNECT_FAILED);
    if (strstr(a.msg, "could not resolve") != NULL)
        fail_msg("msg: %s", a.msg);
    get(e, &b, url);
    assert_int_equal(b.result, PG_UPSTREAM_CONNECT_FAILED);
    assert_int_equal(pg__h1_dns_lookups(e->h), 1);
    uv_close((uv_handle_t *)&t, NULL);
    run(e); /* t lives on this stack */
}

int main(void)
{
    /* pg__h1_new leaves every transfer to curl while one is set. */
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY",
                                          "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_negative_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_expires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_share_one_lookup, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancel_while_resolving, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_positive_cached, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
