/* test_sse_parser.c: lib/http/sse.c parser (WHATWG event-stream rules),
 * fed whole, one byte at a time and in random splits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/str.h"
#include "http/sse.h"

/* Renders each event as "[event]data|" so the test compares text. */
struct log {
    pg_buf_t out;
    int stop_after; /* >0: return 42 from the Nth event */
    int count;
};

static int on_event(void *ud, pg_str_t event, pg_str_t data)
{
    struct log *l = ud;
    assert_non_null(event.p);
    assert_non_null(data.p);
    assert_int_equal(pg_buf_append_char(&l->out, '['), PG_OK);
    assert_int_equal(pg_buf_append_str(&l->out, event), PG_OK);
    assert_int_equal(pg_buf_append_char(&l->out, ']'), PG_OK);
    assert_int_equal(pg_buf_append_str(&l->out, data), PG_OK);
    assert_int_equal(pg_buf_append_char(&l->out, '|'), PG_OK);
    l->count++;
    if (l->stop_after > 0 && l->count == l->stop_after)
        return 42;
    return PG_OK;
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
    /* xorshift32: deterministic, so a failure reproduces. */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

enum { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

/* Parses in with the given split; returns finish's code, and the feed
 * code through *feed_rc. */
static int parse(const char *in, size_t n, int split, size_t max,
                 struct log *l, int *feed_rc)
{
    pg_sse_parser_t p;
    pg_sse_parser_init(&p, max);
    pg_buf_init(&l->out, 0);
    l->count = 0;
    int rc = PG_OK;
    size_t i = 0;
    while (i < n && rc == PG_OK) {
        size_t k = n - i;
        if (split == SPLIT_BYTES)
            k = 1;
        else if (split == SPLIT_RANDOM)
            k = 1 + rng() % (k < 7 ? k : 7);
        rc = pg_sse_parser_feed(&p, pg_str(in + i, k), on_event, l);
        i += k;
    }
    *feed_rc = rc;
    int frc = rc == PG_OK ? pg_sse_parser_finish(&p, on_event, l) : rc;
    pg_sse_parser_destroy(&p);
    return frc;
}

/* Checks that every split gives want (and finish gives want_finish). */
static void check(const char *in, const char *want, int want_finish)
{
    for (int split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++) {
        int reps = split == SPLIT_RANDOM ? 50 : 1;
        for (int r = 0; r < reps; r++) {
            struct log l = {0};
            int feed_rc;
            int rc = parse(in, strlen(in), split, 0, &l, &feed_rc);
            assert_int_equal(feed_rc, PG_OK);
            assert_int_equal(rc, want_finish);
            assert_string_equal(l.out.n ? l.out.p : "", want);
            pg_buf_free(&l.out);
        }
    }
}

static void test_basic(void **state)
{
    (void)state;
    check("data: {\"a\":1}\n\ndata: [DONE]\n\n", "[]{\"a\":1}|[][DONE]|",
          PG_OK);
}

static void test_event_name_and_reset(void **state)
{
    (void)state;
    /* The event name belongs to one event only. */
    check("event: message_start\ndata: x\n\ndata: y\n\n",
          "[message_start]x|[]y|", PG_OK);
    /* A blank line without data drops the name too. */
    check("event: ping\n\ndata: z\n\n", "[]z|", PG_OK);
    /* The last event field wins. */
    check("event: a\nevent: b\ndata: 1\n\n", "[b]1|", PG_OK);
}

static void test_line_endings(void **state)
{
    (void)state;
    check("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "[]a|[]b|[]c|", PG_OK);
    /* CR then LF is one line end, not a blank line. */
    check("data: a\r\ndata: b\r\n\r\n", "[]a\nb|", PG_OK);
    /* LF then CR is two line ends: the event is dispatched. */
    check("data: a\n\rdata: b\n\n", "[]a|[]b|", PG_OK);
}

static void test_fields(void **state)
{
    (void)state;
    /* One leading space is dropped, not two; no space is fine. */
    check("data:x\n\ndata:  y\n\n", "[]x|[] y|", PG_OK);
    /* Several data lines are joined with LF; an empty data line counts. */
    check("data: one\ndata\ndata: three\n\n", "[]one\n\nthree|", PG_OK);
    check("data\n\n", "[]|", PG_OK);
    check("data:\n\n", "[]|", PG_OK);
    /* Comments, id, retry and unknown fields are ignored. */
    check(": keepalive\nid: 7\nretry: 100\nfoo: bar\ndata: v\n\n", "[]v|",
          PG_OK);
    check(":\n\n: ping\n\n", "", PG_OK);
    /* Field names are case-sensitive. */
    check("Data: no\nDATA: no\n\n", "", PG_OK);
    /* Colons after the first belong to the value. */
    check("data: a:b: c\n\n", "[]a:b: c|", PG_OK);
}

static void test_blank_lines_only(void **state)
{
    (void)state;
    check("\n\n\r\n\r\r", "", PG_OK);
    check("", "", PG_OK);
}

static void test_truncated(void **state)
{
    (void)state;
    /* An unfinished line, or an event without its blank line, is not
     * dispatched, and finish reports the cut. */
    check("data: a\n\ndata: partial", "[]a|", PG_EPARSE);
    check("data: a\n\ndata: whole line\n", "[]a|", PG_EPARSE);
    check("data: a\n\nevent: x\n", "[]a|", PG_EPARSE);
    /* A trailing comment or a last CR is not a cut. */
    check("data: a\n\n: bye\n", "[]a|", PG_OK);
    check("data: a\r\r", "[]a|", PG_OK);
}

static void test_crlf_split_across_feeds(void **state)
{
    (void)state;
    pg_sse_parser_t p;
    struct log l = {0};
    pg_buf_init(&l.out, 0);
    pg_sse_parser_init(&p, 0);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("data: a\r"), on_event,
                                        &l), PG_OK);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("\n"), on_event, &l),
                     PG_OK);
    /* Had the LF counted as a second line end, "a" would be out now. */
    assert_int_equal(l.count, 0);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("\r"), on_event, &l),
                     PG_OK);
    assert_int_equal(l.count, 1);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("\ndata: b\n\n"),
                                        on_event, &l), PG_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.out.p, "[]a|[]b|");
    assert_int_equal(pg_sse_parser_finish(&p, on_event, &l), PG_OK);
    pg_sse_parser_destroy(&p);
    pg_buf_free(&l.out);
}

static void test_callback_stops(void **state)
{
    (void)state;
    pg_sse_parser_t p;
    struct log l = {.stop_after = 1};
    pg_buf_init(&l.out, 0);
    pg_sse_parser_init(&p, 0);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("data: a\n\ndata: b\n\n"),
                                        on_event, &l), 42);
    assert_int_equal(l.count, 1);
    pg_sse_parser_destroy(&p);
    pg_buf_free(&l.out);
}

static void test_max_event_bytes(void **state)
{
    (void)state;
    for (int split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++) {
        struct log l = {0};
        int feed_rc;
        /* 10 bytes of data fit exactly; the limit counts data and name. */
        const char *ok = "data: 0123456789\n\n";
        parse(ok, strlen(ok), split, 10, &l, &feed_rc);
        assert_int_equal(feed_rc, PG_OK);
        assert_string_equal(l.out.p, "[]0123456789|");
        pg_buf_free(&l.out);

        const char *joined = "data: 01234\ndata: 56789\n\n";
        parse(joined, strlen(joined), split, 10, &l, &feed_rc);
        assert_int_equal(feed_rc, PG_ETOOBIG);
        pg_buf_free(&l.out);

        const char *named = "event: e\ndata: 0123456789\n\n";
        parse(named, strlen(named), split, 10, &l, &feed_rc);
        assert_int_equal(feed_rc, PG_ETOOBIG);
        pg_buf_free(&l.out);

        /* A line that never ends is cut off at the limit too. */
        char big[64];
        memset(big, 'x', sizeof(big));
        memcpy(big, "data: ", 6);
        parse(big, sizeof(big), split, 10, &l, &feed_rc);
        assert_int_equal(feed_rc, PG_ETOOBIG);
        pg_buf_free(&l.out);
    }
}

static void test_reuse_after_finish(void **state)
{
    (void)state;
    pg_sse_parser_t p;
    struct log l = {0};
    pg_buf_init(&l.out, 0);
    pg_sse_parser_init(&p, 0);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("data: cut"), on_event,
                                        &l), PG_OK);
    assert_int_equal(pg_sse_parser_finish(&p, on_event, &l), PG_EPARSE);
    assert_int_equal(pg_sse_parser_feed(&p, PG_STR("data: new\n\n"),
                                        on_event, &l), PG_OK);
    assert_string_equal(l.out.p, "[]new|");
    pg_sse_parser_destroy(&p);
    pg_buf_free(&l.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_event_name_and_reset),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_blank_lines_only),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_crlf_split_across_feeds),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_max_event_bytes),
        cmocka_unit_test(test_reuse_after_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
