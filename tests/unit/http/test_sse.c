/* test_sse.c: lib/http/sse.c (SSE event and comment framing). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "http/server.h"
#include "http/sse.h"
#include "base/str.h"

static void expect_event(const char *event, const char *data,
                         const char *want)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_sse_append_event(&b, pg_str_c(event), pg_str_c(data)),
                     PG_OK);
    assert_int_equal(b.n, strlen(want));
    assert_memory_equal(b.p, want, b.n);
    pg_buf_free(&b);
}

static void test_single_line(void **state)
{
    expect_event("message_start", "{\"a\":1}",
                 "event: message_start\ndata: {\"a\":1}\n\n");
}

static void test_empty_event_name_is_skipped(void **state)
{
    expect_event("", "{\"x\":true}", "data: {\"x\":true}\n\n");
}

static void test_multi_line_lf(void **state)
{
    expect_event("e", "one\ntwo\nthree", "event: e\ndata: one\ndata: two\ndata: three\n\n");
}

static void test_crlf_and_cr_split_lines(void **state)
{
    /* CRLF is one line break, a lone CR another; an empty line between
     * two breaks stays an empty data line. */
    expect_event("", "a\r\nb\rc\n\nd",
                 "data: a\ndata: b\ndata: c\ndata: \ndata: d\n\n");
}

static void test_trailing_newline_gives_empty_data_line(void **state)
{
    expect_event("", "x\n", "data: x\ndata: \n\n");
}

static void test_empty_data(void **state)
{
    expect_event("ping", "", "event: ping\ndata: \n\n");
}

static void test_events_append(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_sse_append_event(&b, PG_STR(""), PG_STR("1")), PG_OK);
    assert_int_equal(pg_sse_append_event(&b, PG_STR(""), PG_STR("[DONE]")),
                     PG_OK);
    assert_string_equal(b.p, "data: 1\n\ndata: [DONE]\n\n");
    pg_buf_free(&b);
}

static void test_comment(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_sse_append_comment(&b, PG_STR("ping")), PG_OK);
    assert_string_equal(b.p, ": ping\n\n");
    pg_buf_free(&b);
}

static void test_cap_reports_toobig(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 16);
    assert_int_equal(pg_sse_append_event(&b, PG_STR("event"),
                                         PG_STR("more than sixteen bytes")),
                     PG_ETOOBIG);
    assert_int_equal(pg_sse_append_comment(&b, PG_STR("a long comment here")),
                     PG_ETOOBIG);
    pg_buf_free(&b);
}

static void test_status_text(void **state)
{
    assert_string_equal(pg_http_status_text(200), "OK");
    assert_string_equal(pg_http_status_text(404), "Not Found");
    assert_string_equal(pg_http_status_text(431),
                        "Request Header Fields Too Large");
    assert_string_equal(pg_http_status_text(529), "Site Overloaded");
    assert_string_equal(pg_http_status_text(418), "Client Error");
    assert_string_equal(pg_http_status_text(0), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_empty_event_name_is_skipped),
        cmocka_unit_test(test_multi_line_lf),
        cmocka_unit_test(test_crlf_and_cr_split_lines),
        cmocka_unit_test(test_trailing_newline_gives_empty_data_line),
        cmocka_unit_test(test_empty_data),
        cmocka_unit_test(test_events_append),
        cmocka_unit_test(test_comment),
        cmocka_unit_test(test_cap_reports_toobig),
        cmocka_unit_test(test_status_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
