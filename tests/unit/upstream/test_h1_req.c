/* test_h1_req.c: the URL side of lib/upstream/h1_req.c. The cache must
 * give, for any sequence of URLs, what pg__h1_parse_url gives for each
 * one alone: alternating URLs, more URLs than slots, URLs that share a
 * prefix or a length, refused URLs and URLs too long to be kept. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/h1_req.h"

static void assert_str(pg_str_t got, pg_str_t want)
{
    assert_int_equal(got.n, want.n);
    assert_memory_equal(got.p, want.p, want.n);
}

/* Parses url through the cache and alone; both must agree. The cached
 * call gets a copy of the URL in a buffer of its own, so the results
 * cannot agree by pointing at the same bytes. */
static bool check(pg_h1_url_cache_t *cache, const char *url)
{
    pg_h1_url_t want, got;
    char copy[2048];
    size_t n = strlen(url);

    assert_true(n < sizeof copy);
    memcpy(copy, url, n + 1);
    bool ok = pg__h1_parse_url(url, &want);
    assert_int_equal(pg__h1_parse_url_cached(cache, copy, &got), ok);
    if (ok) {
        /* A URL short enough is served from (or put into) the cache. */
        const char *lo = (const char *)cache, *hi = (const char *)(cache + 1);
        assert_int_equal(got.host.p >= lo && got.host.p < hi,
                         n < PG_H1_URL_CACHE_LEN);
        assert_str(got.host, want.host);
        assert_str(got.name, want.name);
        assert_str(got.target, want.target);
        assert_int_equal(got.port, want.port);
    }
    return ok;
}

static void test_alternating(void **state)
{
    (void)state;
    static pg_h1_url_cache_t cache;
    const char *a = "http://127.0.0.1:8080/v1/chat/completions";
    const char *b = "http://[::1]:9000/v1/messages?beta=true#frag";

    for (int i = 0; i < 10; i++) {
        assert_true(check(&cache, a));
        assert_true(check(&cache, b));
    }
}

static void test_more_urls_than_slots(void **state)
{
    (void)state;
    static pg_h1_url_cache_t cache;
    char urls[PG_H1_URL_CACHE_N * 2 + 1][64];
    size_t k = sizeof urls / sizeof urls[0];

    for (size_t i = 0; i < k; i++)
        snprintf(urls[i], sizeof urls[i], "http://host%zu.example:%zu/p%zu",
                 i, 1000 + i, i);
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < k; i++)
            assert_true(check(&cache, urls[i]));
        for (size_t i = k; i-- > 0;)
            assert_true(check(&cache, urls[i]));
    }
}

/* Same length, one byte apart; one a prefix of the other. */
static void test_near_misses(void **state)
{
    (void)state;
    static pg_h1_url_cache_t cache;
    const char *u[] = {
        "http://a.example/v1/x", "http://a.example/v1/y",
        "http://a.example:81/v1", "http://a.example:82/v1",
        "http://a.example/v1",    "http://a.example/v1/",
        "http://a.example",       "HTTP://A.EXAMPLE",
    };

    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
            assert_true(check(&cache, u[i]));
}

/* Refusals are remembered as refusals and do not disturb the rest. */
static void test_refused(void **state)
{
    (void)state;
    static pg_h1_url_cache_t cache;
    const char *good = "http://127.0.0.1:1/v1/chat/completions";
    const char *bad[] = {
        "https://api.example/v1", "http://user:pw@h/v1", "http://h:0/",
        "http://h:99999/",        "http://h/a b",        "",
    };

    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            assert_false(check(&cache, bad[i]));
            assert_true(check(&cache, good));
        }
    }
}

/* A URL too long to keep is parsed each time, correctly. */
static void test_long_url(void **state)
{
    (void)state;
    static pg_h1_url_cache_t cache;
    char u[PG_H1_URL_CACHE_LEN + 100];
    const char *short_url = "http://h.example/s";

    for (size_t n = PG_H1_URL_CACHE_LEN - 2; n <= PG_H1_URL_CACHE_LEN + 1;
         n++) {
        memcpy(u, "http://h.example/", 17);
        memset(u + 17, 'q', n - 17);
        u[n] = '\0';
        for (int round = 0; round < 2; round++) {
            assert_true(check(&cache, u));
            assert_true(check(&cache, short_url));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alternating),
        cmocka_unit_test(test_more_urls_than_slots),
        cmocka_unit_test(test_near_misses),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_long_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
