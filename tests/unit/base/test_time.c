/* test_time.c: lib/base/time.c (durations and sizes) and lib/base/str.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/str.h"
#include "base/time.h"

static uint64_t dur(const char *s)
{
    uint64_t v = 12345;
    assert_int_equal(pg_parse_duration_ms(pg_str_c(s), &v), PG_OK);
    return v;
}

static uint64_t size(const char *s)
{
    uint64_t v = 12345;
    assert_int_equal(pg_parse_size(pg_str_c(s), &v), PG_OK);
    return v;
}

static void test_durations(void **state)
{
    assert_int_equal(dur("250ms"), 250);
    assert_int_equal(dur("30s"), 30000);
    assert_int_equal(dur("5m"), 300000);
    assert_int_equal(dur("1h"), 3600000);
    assert_int_equal(dur("1.5s"), 1500);
    assert_int_equal(dur("0"), 0);
    uint64_t v;
    const char *bad[] = {"", "10", "s", "-1s", "1x", "1.s", "99999999999999999999h", "1 parsec"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pg_parse_duration_ms(pg_str_c(bad[i]), &v), PG_EPARSE);
}

static void test_sizes(void **state)
{
    assert_int_equal(size("512"), 512);
    assert_int_equal(size("512B"), 512);
    assert_int_equal(size("64KiB"), 65536);
    assert_int_equal(size("10MiB"), 10485760);
    assert_int_equal(size("1GiB"), 1073741824ull);
    assert_int_equal(size("2KB"), 2000);
    assert_int_equal(size("1.5KiB"), 1536);
    uint64_t v;
    const char *bad[] = {"", "KiB", "10XiB", "-5", "1.5", "999999999999999999999GiB"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pg_parse_size(pg_str_c(bad[i]), &v), PG_EPARSE);
}

static void test_str_helpers(void **state)
{
    int64_t v;
    assert_int_equal(pg_str_to_i64(PG_STR("-9223372036854775808"), &v), PG_OK);
    assert_true(v == INT64_MIN);
    assert_int_equal(pg_str_to_i64(PG_STR("9223372036854775808"), &v), PG_EPARSE);
    assert_int_equal(pg_str_to_i64(PG_STR("12a"), &v), PG_EPARSE);
    assert_true(pg_str_ieq(PG_STR("Content-Type"), PG_STR("content-type")));
    assert_true(pg_str_ct_eq(PG_STR("secret"), PG_STR("secret")));
    assert_false(pg_str_ct_eq(PG_STR("secret"), PG_STR("secreT")));
    assert_false(pg_str_ct_eq(PG_STR("secret"), PG_STR("secrets")));
    pg_str_t t = pg_str_trim(PG_STR("  a b \t"));
    assert_int_equal(t.n, 3);
}

static void test_utc_format(void **state)
{
    char out[25];
    pg_format_utc_ms(1700000000123, out);
    assert_string_equal(out, "2023-11-14T22:13:20.123Z");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_utc_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
