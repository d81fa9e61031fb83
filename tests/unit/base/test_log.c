/* test_log.c: lib/base/log.c. Lines go to a capturing sink; each check
 * looks at the part after the timestamp, the only part that varies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/log.h"
#include "polyglot/polyglot.h"

/* What the pieces of a line may fill (log.c keeps 8 bytes for the tail). */
#define ROOM (PG_LOG_LINE_MAX - 8)

static char captured[PG_LOG_LINE_MAX + 8];
static size_t captured_len;
static pg_log_level_t captured_level;

static void sink(void *ud, pg_log_level_t lvl, const char *line, size_t len)
{
    (void)ud;
    captured_level = lvl;
    memcpy(captured, line, len);
    captured[len] = '\0';
    captured_len = len;
}

static pg_logger_t json_logger(void)
{
    return (pg_logger_t){.level = PG_LOG_INFO, .json = true, .sink = sink};
}

static pg_logger_t text_logger(void)
{
    return (pg_logger_t){.level = PG_LOG_INFO, .json = false, .sink = sink};
}

/* The line after {"ts":"<24>" or after <24> (text). */
static const char *after_ts(bool json)
{
    size_t off = json ? 7 + 24 : 24;
    assert_true(captured_len >= off);
    return captured + off;
}

static void log_one(const pg_logger_t *lg, pg_log_field_t f)
{
    captured[0] = '\0';
    captured_len = 0;
    pg_log_fields(lg, PG_LOG_INFO, "m", &f, 1);
}

/* Logs the one field v = value (JSON), which must be cut, and returns
 * what was kept of the value; its length goes to *kept. */
static const char *log_cut_value(const pg_logger_t *lg, pg_str_t value,
                                 size_t *kept)
{
    log_one(lg, PG_LF_S("v", value));
    const char *v = strstr(captured, ",\"v\":\"");
    assert_non_null(v);
    v += 6;
    assert_true(captured_len <= ROOM + 5);
    *kept = captured_len - (size_t)(v - captured) - 5;
    assert_string_equal(v + *kept, "...\"}");
    return v;
}

static void test_log_json_and_text(void **state)
{
    pg_logger_t lg = json_logger();
    pg_log_field_t f[] = {PG_LF_S("app", PG_STR("a\"pp")),
                          PG_LF_I("status", 200),
                          PG_LF_US_AS_MS("total_ms", 1234)};
    captured[0] = '\0';
    pg_log_fields(&lg, PG_LOG_INFO, "request", f, 3);
    assert_memory_equal(captured, "{\"ts\":\"", 7);
    assert_string_equal(after_ts(true),
                        "\",\"level\":\"info\",\"msg\":\"request\","
                        "\"app\":\"a\\\"pp\",\"status\":200,"
                        "\"total_ms\":1.234}");
    captured[0] = '\0';
    pg_log_fields(&lg, PG_LOG_DEBUG, "hidden", NULL, 0);
    assert_string_equal(captured, "");
    lg.json = false;
    pg_log_fields(&lg, PG_LOG_WARN, "request", f, 3);
    assert_string_equal(after_ts(false),
                        " warn request app=\"a\\\"pp\" status=200 "
                        "total_ms=1.234");
    assert_int_equal(captured_level, PG_LOG_WARN);
}

static void test_log_numbers(void **state)
{
    pg_logger_t lg = json_logger();
    log_one(&lg, PG_LF_I("n", INT64_MIN));
    assert_non_null(strstr(captured, ",\"n\":-9223372036854775808}"));
    log_one(&lg, PG_LF_I("n", INT64_MAX));
    assert_non_null(strstr(captured, ",\"n\":9223372036854775807}"));
    log_one(&lg, PG_LF_I("n", 0));
    assert_non_null(strstr(captured, ",\"n\":0}"));
    log_one(&lg, PG_LF_US_AS_MS("ms", 0));
    assert_non_null(strstr(captured, ",\"ms\":0.000}"));
    log_one(&lg, PG_LF_US_AS_MS("ms", 1005));
    assert_non_null(strstr(captured, ",\"ms\":1.005}"));
    log_one(&lg, PG_LF_US_AS_MS("ms", -7)); /* negative shows as zero */
    assert_non_null(strstr(captured, ",\"ms\":0.000}"));
    log_one(&lg, PG_LF_US_AS_MS("ms", INT64_MAX));
    assert_non_null(strstr(captured, ",\"ms\":9223372036854775.807}"));
}

/* Every byte value, at each offset within an 8-byte word: control
 * characters become \u00XX, '"' and '\\' get a backslash, everything
 * else (DEL and bytes >= 0x80 included) is copied as is. */
static void test_log_escapes_every_byte(void **state)
{
    pg_logger_t lg = json_logger();
    for (size_t lead = 0; lead < 8; lead++) {
        char in[8 + 256];
        char want[8 + 256 * 6 + 1];
        size_t n = 0, w = 0;
        for (size_t i = 0; i < lead; i++)
            in[n++] = want[w++] = 'x';
        for (int c = 0; c < 256; c++) {
            in[n++] = (char)c;
            if (c < 0x20)
                w += (size_t)snprintf(want + w, 7, "\\u%04x", c);
            else if (c == '"' || c == '\\')
                w += (size_t)snprintf(want + w, 3, "\\%c", c);
            else
                want[w++] = (char)c;
        }
        log_one(&lg, PG_LF_S("v", ((pg_str_t){in, n})));
        char *v = strstr(captured, ",\"v\":\"");
        assert_non_null(v);
        v += 6;
        assert_int_equal(captured_len - (size_t)(v - captured), w + 2);
        assert_memory_equal(v, want, w);
        assert_string_equal(v + w, "\"}");
    }
    /* The message is escaped the same way. */
    captured[0] = '\0';
    pg_log_fields(&lg, PG_LOG_INFO, "a\tb\"c", NULL, 0);
    assert_non_null(strstr(captured, "\"msg\":\"a\\u0009b\\\"c\"}"));
}

static void test_log_text_quoting(void **state)
{
    pg_logger_t lg = text_logger();
    log_one(&lg, PG_LF_S("k", PG_STR("plain/value.1")));
    assert_string_equal(after_ts(false), " info m k=plain/value.1");
    log_one(&lg, PG_LF_S("k", PG_STR("")));
    assert_string_equal(after_ts(false), " info m k=\"\"");
    log_one(&lg, PG_LF_S("k", PG_STR("two words")));
    assert_string_equal(after_ts(false), " info m k=\"two words\"");
    log_one(&lg, PG_LF_S("k", PG_STR("a=b")));
    assert_string_equal(after_ts(false), " info m k=\"a=b\"");
    log_one(&lg, PG_LF_S("k", PG_STR("line\nbreak")));
    assert_string_equal(after_ts(false), " info m k=\"line\\u000abreak\"");
    /* A backslash alone needs no quotes, and is not escaped. */
    log_one(&lg, PG_LF_S("k", PG_STR("a\\b")));
    assert_string_equal(after_ts(false), " info m k=a\\b");
}

static void test_log_long_line_is_cut(void **state)
{
    pg_logger_t lg = json_logger();
    static char big[10000];
    memset(big, 'x', sizeof(big));
    log_one(&lg, PG_LF_S("v", ((pg_str_t){big, sizeof(big)})));
    assert_int_equal(captured_len, ROOM + 5);
    assert_string_equal(captured + ROOM - 3, "xxx...\"}");
}

/* A value whose worst case (all escaped) does not fit but whose bytes
 * do is written whole, without "...". */
static void test_log_long_value_that_fits(void **state)
{
    pg_logger_t lg = json_logger();
    static char big[3000];
    memset(big, 'y', sizeof(big));
    pg_log_field_t f[] = {PG_LF_S("v", ((pg_str_t){big, sizeof(big)})),
                          PG_LF_I("after", 7)};
    pg_log_fields(&lg, PG_LOG_INFO, "m", f, 2);
    assert_non_null(strstr(captured, "yyy\",\"after\":7}"));
    assert_null(strstr(captured, "..."));
}

/* Multi-byte characters are never split at the cut, whatever the
 * offset of the cut within a character. */
static void test_log_cut_at_utf8_boundary(void **state)
{
    static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac",
                                  "\xf0\x9f\x98\x80"};
    pg_logger_t lg = json_logger();
    for (size_t c = 0; c < 3; c++) {
        size_t clen = strlen(chars[c]);
        for (size_t shift = 0; shift < clen; shift++) {
            static char big[6000];
            size_t n = 0;
            for (size_t i = 0; i < shift; i++)
                big[n++] = 'a';
            while (n + clen <= sizeof(big)) {
                memcpy(big + n, chars[c], clen);
                n += clen;
            }
            size_t vlen;
            const char *v = log_cut_value(&lg, (pg_str_t){big, n}, &vlen);
            /* What is kept is the shift's 'a's then whole characters. */
            assert_int_equal((vlen - shift) % clen, 0);
            assert_memory_equal(v, big, vlen);
            /* And the cut left no room for one more character. */
            assert_true(captured_len - 5 + clen > ROOM);
        }
    }
}

/* An escape is never split: a value of quotes is cut between two \" . */
static void test_log_cut_never_splits_an_escape(void **state)
{
    pg_logger_t lg = json_logger();
    static char quotes[3000];
    memset(quotes, '"', sizeof(quotes));
    for (size_t lead = 0; lead < 2; lead++) {
        quotes[0] = lead ? 'a' : '"';
        size_t vlen;
        const char *v = log_cut_value(
            &lg, (pg_str_t){quotes, sizeof(quotes)}, &vlen);
        assert_int_equal((vlen - lead) % 2, 0);
        for (size_t i = lead; i < vlen; i += 2)
            assert_memory_equal(v + i, "\\\"", 2);
    }
}

/* Text format: an unquoted value is cut at the very last byte that fits;
 * once cut, later fields are dropped. */
static void test_log_text_cut(void **state)
{
    pg_logger_t lg = text_logger();
    static char big[5000];
    memset(big, 'z', sizeof(big));
    pg_log_field_t f[] = {PG_LF_S("v", ((pg_str_t){big, sizeof(big)})),
                          PG_LF_I("after", 7)};
    pg_log_fields(&lg, PG_LOG_INFO, "m", f, 2);
    assert_int_equal(captured_len, ROOM + 3);
    assert_string_equal(captured + ROOM - 2, "zz...");
    /* Quoted: cut inside the quotes, no closing quote. */
    big[0] = ' ';
    pg_log_fields(&lg, PG_LOG_INFO, "m", f, 2);
    assert_int_equal(captured_len, ROOM + 3);
    assert_string_equal(captured + ROOM - 2, "zz...");
    assert_non_null(strstr(captured, " v=\" zz"));
}

/* A number is written whole or not at all, and once the line is cut every
 * later piece is dropped. The key and its punctuation are pieces of their
 * own, so a line may end in the middle of a field's name. */
static void test_log_number_after_cut_point(void **state)
{
    pg_logger_t lg = json_logger();
    static char big[ROOM];
    memset(big, 'q', sizeof(big));
    size_t prefix = strlen("{\"ts\":\"") + 24 +
                    strlen("\",\"level\":\"info\",\"msg\":\"m\"") +
                    strlen(",\"v\":\"\"");
    pg_log_field_t f[] = {PG_LF_S("v", ((pg_str_t){big, 0})),
                          PG_LF_I("a", 123), PG_LF_S("b", PG_STR("x"))};
    static const struct {
        size_t left; /* room left after the first field */
        const char *end;
    } cases[] = {
        {1, "q\"...\"}"},            /* ,"  does not fit */
        {3, "q\",\"a...\"}"},         /* ,"a fits, ": does not */
        {7, "q\",\"a\":...\"}"},       /* 123 does not fit */
        {8, "q\",\"a\":123...\"}"},    /* ,"a":123 fits exactly */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f[0].s.n = ROOM - prefix - cases[i].left;
        pg_log_fields(&lg, PG_LOG_INFO, "m", f, 3);
        size_t n = strlen(cases[i].end);
        assert_true(captured_len <= ROOM + 5);
        assert_string_equal(captured + captured_len - n, cases[i].end);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_json_and_text),
        cmocka_unit_test(test_log_numbers),
        cmocka_unit_test(test_log_escapes_every_byte),
        cmocka_unit_test(test_log_text_quoting),
        cmocka_unit_test(test_log_long_line_is_cut),
        cmocka_unit_test(test_log_long_value_that_fits),
        cmocka_unit_test(test_log_cut_at_utf8_boundary),
        cmocka_unit_test(test_log_cut_never_splits_an_escape),
        cmocka_unit_test(test_log_text_cut),
        cmocka_unit_test(test_log_number_after_cut_point),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
