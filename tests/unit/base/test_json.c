/* test_json.c: lib/base/json.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"

static char *escaped(pg_buf_t *b, const char *s, size_t n)
{
    pg_buf_reset(b);
    assert_int_equal(pg_json_append_string(b, (pg_str_t){s, n}), PG_OK);
    return b->p;
}

static void test_escape(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_string_equal(escaped(&b, "plain", 5), "\"plain\"");
    assert_string_equal(escaped(&b, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    assert_string_equal(escaped(&b, "l1\nl2\r\t", 7), "\"l1\\nl2\\r\\t\"");
    assert_string_equal(escaped(&b, "\x01", 1), "\"\\u0001\"");
    assert_string_equal(escaped(&b, "caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
    /* Invalid UTF-8 becomes U+FFFD instead of producing invalid JSON. */
    assert_string_equal(escaped(&b, "a\xff" "b", 3), "\"a\xef\xbf\xbd" "b\"");
    /* A truncated sequence at the end, and an overlong form. */
    assert_string_equal(escaped(&b, "\xe2\x82", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    assert_string_equal(escaped(&b, "\xc0\xaf", 2), "\"\xef\xbf\xbd\xef\xbf\xbd\"");
    pg_buf_free(&b);
}

static void test_roundtrip_through_cjson(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    const char raw[] = "quote\" back\\ nl\n ctl\x1f emoji \xf0\x9f\x98\x80";
    assert_int_equal(pg_buf_append_cstr(&b, "{\"k\":"), PG_OK);
    assert_int_equal(pg_json_append_string(&b, (pg_str_t){raw, sizeof(raw) - 1}), PG_OK);
    assert_int_equal(pg_buf_append_char(&b, '}'), PG_OK);
    cJSON *root = pg_json_parse(pg_buf_str(&b), NULL);
    assert_non_null(root);
    pg_str_t v = pg_json_get_str(root, "k");
    assert_int_equal(v.n, sizeof(raw) - 1);
    assert_memory_equal(v.p, raw, v.n);
    cJSON_Delete(root);
    pg_buf_free(&b);
}

static void test_numbers(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_json_append_double(&b, 0.7), PG_OK);
    assert_string_equal(b.p, "0.7");
    pg_buf_reset(&b);
    assert_int_equal(pg_json_append_double(&b, 1.0 / 0.0), PG_OK);
    assert_string_equal(b.p, "null");
    pg_buf_reset(&b);
    assert_int_equal(pg_json_append_i64(&b, -42), PG_OK);
    assert_string_equal(b.p, "-42");
    pg_buf_free(&b);
}

/* pg_i64_to_chars against printf: every length, both signs, the ends of
 * the range, and the values either side of each power of ten. */
static void check_i64(int64_t v)
{
    char want[32], got[24];
    snprintf(want, sizeof(want), "%lld", (long long)v);
    size_t n = pg_i64_to_chars(v, got);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(got, want, n);
}

static void test_i64_to_chars(void **state)
{
    check_i64(INT64_MIN);
    check_i64(INT64_MAX);
    check_i64(INT64_MIN + 1);
    int64_t p = 1;
    for (int k = 0; k <= 18; k++) {
        for (int64_t d = -1; d <= 1; d++) {
            check_i64(p + d);
            check_i64(-(p + d));
        }
        if (k < 18)
            p *= 10; /* 10^19 would overflow */
    }
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_i64((int64_t)(x >> (i % 64)));
        check_i64(-(int64_t)(x >> (i % 63 + 1))); /* shifts of 1..63 */
    }
}

static void test_parse_error_offset(void **state)
{
    size_t off = 0;
    const char bad[] = "{\"a\": tru}";
    assert_null(pg_json_parse((pg_str_t){bad, sizeof(bad) - 1}, &off));
    assert_true(off > 0 && off < sizeof(bad));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_roundtrip_through_cjson),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_i64_to_chars),
        cmocka_unit_test(test_parse_error_offset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
