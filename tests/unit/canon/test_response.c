/* test_response.c: event stream accumulation and order validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/str.h"
#include "canon/response.h"
#include "unit_fixture.h"

static void test_accumulate(void **state)
{
    (void)state;
    char idbuf[] = "msg_1";
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START, .id = pg_str_c(idbuf),
         .model = PG_STR("m"), .usage = {.input_tokens = 9}},
        {.kind = PG_EV_BLOCK_START, .index = 0, .block = PG_PART_THINKING},
        {.kind = PG_EV_THINKING_DELTA, .index = 0, .text = PG_STR("hmm ")},
        {.kind = PG_EV_THINKING_DELTA, .index = 0, .text = PG_STR("ok")},
        {.kind = PG_EV_SIGNATURE, .index = 0, .text = PG_STR("sig==")},
        {.kind = PG_EV_BLOCK_STOP, .index = 0},
        {.kind = PG_EV_BLOCK_START, .index = 1, .block = PG_PART_TEXT},
        {.kind = PG_EV_BLOCK_START, .index = 2, .block = PG_PART_TOOL_CALL,
         .id = PG_STR("call_9"), .name = PG_STR("f")},
        {.kind = PG_EV_TEXT_DELTA, .index = 1, .text = PG_STR("Hello")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 2, .text = PG_STR("{\"a\":")},
        {.kind = PG_EV_TEXT_DELTA, .index = 1, .text = PG_STR(", world")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 2, .text = PG_STR("2}")},
        {.kind = PG_EV_BLOCK_STOP, .index = 1},
        {.kind = PG_EV_BLOCK_STOP, .index = 2},
        {.kind = PG_EV_USAGE, .usage = {.output_tokens = 7,
                                        .cache_read_tokens = 3}},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_STOP_SEQUENCE,
         .stop_sequence = PG_STR("END")},
    };
    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        assert_int_equal(pg_canon_response_add(&r, &evs[i]), PG_OK);
        /* Event slices are borrowed: the response keeps copies. */
        idbuf[0] = 'X';
    }
    assert_int_equal(pg_canon_response_finish(&r), PG_OK);
    assert_str(r.id, "msg_1");
    assert_str(r.model, "m");
    assert_int_equal(r.nparts, 3);
    assert_int_equal(r.parts[0].kind, PG_PART_THINKING);
    assert_str(r.parts[0].text, "hmm ok");
    assert_str(r.parts[0].signature, "sig==");
    assert_int_equal(r.parts[1].kind, PG_PART_TEXT);
    assert_str(r.parts[1].text, "Hello, world");
    assert_int_equal(r.parts[2].kind, PG_PART_TOOL_CALL);
    assert_str(r.parts[2].tool_call.id, "call_9");
    assert_str(r.parts[2].tool_call.name, "f");
    assert_str(r.parts[2].tool_call.arguments, "{\"a\":2}");
    assert_int_equal(r.stop_reason, PG_STOP_STOP_SEQUENCE);
    assert_str(r.stop_sequence, "END");
    assert_int_equal(r.usage.input_tokens, 9);
    assert_int_equal(r.usage.output_tokens, 7);
    assert_int_equal(r.usage.cache_read_tokens, 3);
}

static void test_error_event(void **state)
{
    (void)state;
    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    pg_event_t start = {.kind = PG_EV_MESSAGE_START};
    pg_event_t err = {.kind = PG_EV_ERROR, .status = 503,
                      .error_type = PG_STR("overloaded_error"),
                      .text = PG_STR("try later")};
    pg_event_t stop = {.kind = PG_EV_MESSAGE_STOP};
    assert_int_equal(pg_canon_response_add(&r, &start), PG_OK);
    assert_int_equal(pg_canon_response_add(&r, &err), PG_OK);
    assert_true(r.failed);
    assert_int_equal(r.error_status, 503);
    assert_str(r.error_type, "overloaded_error");
    assert_str(r.error_message, "try later");
    assert_int_equal(pg_canon_response_add(&r, &stop), PG_EPARSE);
    assert_int_equal(pg_canon_response_finish(&r), PG_EPARSE);
}

/* Feeds evs[0..n-1], expecting OK for all but the last, then EPARSE. */
static void expect_bad(const pg_event_t *evs, size_t n)
{
    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(pg_canon_response_add(&r, &evs[i]), PG_OK);
    assert_int_equal(pg_canon_response_add(&r, &evs[n - 1]), PG_EPARSE);
}

static void test_bad_orders(void **state)
{
    (void)state;
    const pg_event_t start = {.kind = PG_EV_MESSAGE_START};
    const pg_event_t text0 = {.kind = PG_EV_BLOCK_START, .index = 0,
                              .block = PG_PART_TEXT};
    const pg_event_t delta0 = {.kind = PG_EV_TEXT_DELTA, .index = 0,
                               .text = PG_STR("x")};
    const pg_event_t stop0 = {.kind = PG_EV_BLOCK_STOP, .index = 0};
    const pg_event_t args0 = {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 0,
                              .text = PG_STR("{")};
    const pg_event_t mstop = {.kind = PG_EV_MESSAGE_STOP};
    const pg_event_t far = {.kind = PG_EV_BLOCK_START,
                            .index = PG_CANON_MAX_BLOCKS};

    pg_event_t a[] = {delta0};
    expect_bad(a, 1); /* before MESSAGE_START */
    pg_event_t b[] = {start, start};
    expect_bad(b, 2);
    pg_event_t c[] = {start, delta0}; /* block never started */
    expect_bad(c, 2);
    pg_event_t d[] = {start, text0, stop0, delta0}; /* after its stop */
    expect_bad(d, 4);
    pg_event_t e[] = {start, text0, args0}; /* wrong delta kind */
    expect_bad(e, 3);
    pg_event_t f[] = {start, text0, text0}; /* started twice */
    expect_bad(f, 3);
    pg_event_t g[] = {start, mstop, text0}; /* after MESSAGE_STOP */
    expect_bad(g, 3);
    pg_event_t h[] = {start, stop0}; /* stop of a block never started */
    expect_bad(h, 2);
    pg_event_t i[] = {start, far};
    expect_bad(i, 2);

    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    assert_int_equal(pg_canon_response_add(&r, &start), PG_OK);
    assert_int_equal(pg_canon_response_finish(&r), PG_EPARSE);
}

static void test_grow(void **state)
{
    (void)state;
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 100; i++) {
        void *p = v;
        assert_int_equal(
            pg_canon_grow(&unit_arena, &p, n, &cap, sizeof(int)), PG_OK);
        v = p;
        v[n++] = i;
    }
    assert_true(cap >= 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(v[i], i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accumulate, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_error_event, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_bad_orders, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_grow, unit_arena_setup,
                                        unit_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
