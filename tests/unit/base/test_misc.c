/* test_misc.c: lib/base/sha256.c, log.c, alloc.c (error table) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "base/sha256.h"
#include "polyglot/polyglot.h"

static void test_sha256(void **state)
{
    char hex[65];
    pg_hash_key("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    pg_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static char captured[PG_LOG_LINE_MAX + 8];
static pg_log_level_t captured_level;
static void sink(void *ud, pg_log_level_t lvl, const char *line, size_t len)
{
    (void)ud;
    captured_level = lvl;
    memcpy(captured, line, len);
    captured[len] = '\0';
}

static void test_log_json_and_text(void **state)
{
    pg_logger_t lg = {.level = PG_LOG_INFO, .json = true, .sink = sink};
    pg_log_field_t f[] = {PG_LF_S("app", PG_STR("a\"pp")), PG_LF_I("status", 200),
                          PG_LF_US_AS_MS("total_ms", 1234)};
    captured[0] = '\0';
    pg_log_fields(&lg, PG_LOG_INFO, "request", f, 3);
    assert_non_null(strstr(captured, "\"level\":\"info\",\"msg\":\"request\""));
    assert_non_null(strstr(captured, "\"app\":\"a\\\"pp\",\"status\":200,\"total_ms\":1.234}"));
    captured[0] = '\0';
    pg_log_fields(&lg, PG_LOG_DEBUG, "hidden", NULL, 0);
    assert_string_equal(captured, "");
    lg.json = false;
    pg_log_fields(&lg, PG_LOG_WARN, "request", f, 3);
    assert_non_null(strstr(captured, " warn request app=\"a\\\"pp\" status=200 total_ms=1.234"));
    assert_int_equal(captured_level, PG_LOG_WARN);
}

static void test_log_long_line_is_cut(void **state)
{
    pg_logger_t lg = {.level = PG_LOG_INFO, .json = true, .sink = sink};
    static char big[10000];
    memset(big, 'x', sizeof(big));
    pg_log_field_t f[] = {PG_LF_S("v", ((pg_str_t){big, sizeof(big)}))};
    pg_log_fields(&lg, PG_LOG_INFO, "m", f, 1);
    assert_true(strlen(captured) < PG_LOG_LINE_MAX);
    assert_non_null(strstr(captured, "xxx...\"}"));
    assert_true(captured[strlen(captured) - 1] == '}');
}

static void test_error_table(void **state)
{
    assert_string_equal(pg_err_name(PG_ENOMEM), "PG_ENOMEM");
    assert_string_equal(pg_strerror(PG_ENOMEM), "out of memory");
    assert_string_equal(pg_err_name(-999), "PG_EUNKNOWN");
    assert_string_equal(pg_version(), PG_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_log_json_and_text),
        cmocka_unit_test(test_log_long_line_is_cut),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
