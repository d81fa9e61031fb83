/* test_event.c: stop reason names of both dialects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/str.h"
#include "canon/event.h"

static void test_openai_names(void **state)
{
    (void)state;
    assert_int_equal(pg_stop_reason_from(PG_STR("stop")), PG_STOP_END_TURN);
    assert_int_equal(pg_stop_reason_from(PG_STR("length")),
                     PG_STOP_MAX_TOKENS);
    assert_int_equal(pg_stop_reason_from(PG_STR("tool_calls")),
                     PG_STOP_TOOL_USE);
    assert_int_equal(pg_stop_reason_from(PG_STR("function_call")),
                     PG_STOP_TOOL_USE);
    assert_int_equal(pg_stop_reason_from(PG_STR("content_filter")),
                     PG_STOP_CONTENT_FILTER);
}

static void test_anthropic_names(void **state)
{
    (void)state;
    assert_int_equal(pg_stop_reason_from(PG_STR("end_turn")),
                     PG_STOP_END_TURN);
    assert_int_equal(pg_stop_reason_from(PG_STR("max_tokens")),
                     PG_STOP_MAX_TOKENS);
    assert_int_equal(pg_stop_reason_from(PG_STR("stop_sequence")),
                     PG_STOP_STOP_SEQUENCE);
    assert_int_equal(pg_stop_reason_from(PG_STR("tool_use")),
                     PG_STOP_TOOL_USE);
    assert_int_equal(pg_stop_reason_from(PG_STR("pause_turn")),
                     PG_STOP_END_TURN);
    assert_int_equal(pg_stop_reason_from(PG_STR("refusal")),
                     PG_STOP_CONTENT_FILTER);
}

static void test_unknown(void **state)
{
    (void)state;
    /* Exact, case-sensitive names only; slices need no NUL. */
    char buf[] = "stopped";
    assert_int_equal(pg_stop_reason_from(pg_str(buf, 4)), PG_STOP_END_TURN);
    assert_int_equal(pg_stop_reason_from(pg_str(buf, 7)), PG_STOP_NONE);
    assert_int_equal(pg_stop_reason_from(PG_STR("STOP")), PG_STOP_NONE);
    assert_int_equal(pg_stop_reason_from(PG_STR("")), PG_STOP_NONE);
    assert_int_equal(pg_stop_reason_from(PG_STR_NULL), PG_STOP_NONE);
    assert_int_equal(pg_stop_reason_from(PG_STR("len")), PG_STOP_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_names),
        cmocka_unit_test(test_anthropic_names),
        cmocka_unit_test(test_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
