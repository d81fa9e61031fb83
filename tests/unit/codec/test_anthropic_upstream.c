/* test_anthropic_upstream.c: the Anthropic Messages upstream codec.
 * Golden fixtures in tests/fixtures/anthropic (the directory is argv[1]):
 * NAME.sse is what an upstream streams, NAME.json a whole response, and
 * NAME.events the canonical events they must decode to, one line each.
 * Streams are fed as whole events, then through the SSE parser in one
 * piece, byte by byte and in random splits, all with identical results.
 * Set PG_FIXTURE_PRINT=1 to print what a fixture decodes to. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/json.h"
#include "base/str.h"
#include "canon/response.h"
#include "codec/anthropic_upstream.h"
#include "http/sse.h"
#include "oom_alloc.h"
#include "test_client.h"
#include "unit_fixture.h"

static const char *fixdir = "tests/fixtures/anthropic";

/* ---- fixture files --------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len)
{
    char *p = tc_read_file(fixdir, name, len);
    if (p == NULL)
        fail_msg("cannot open fixture %s/%s", fixdir, name);
    return p;
}

/* ---- rendering events as text lines ----------------------------------------- */

static void put(pg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(pg_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(pg_buf_vprintf(b, fmt, ap), PG_OK);
    va_end(ap);
}

static void put_quoted(pg_buf_t *b, pg_str_t s)
{
    put(b, "\"");
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '"' || c == '\\')
            put(b, "\\%c", c);
        else if (c == '\n')
            put(b, "\\n");
        else
            put(b, "%c", c);
    }
    put(b, "\"");
}

static const char *kind_name(pg_part_kind_t k)
{
    switch (k) {
    case PG_PART_TEXT:
        return "text";
    case PG_PART_TOOL_CALL:
        return "tool_call";
    case PG_PART_THINKING:
        return "thinking";
    case PG_PART_REDACTED_THINKING:
        return "redacted_thinking";
    default:
        return "other";
    }
}

static const char *stop_name(pg_stop_reason_t r)
{
    static const char *names[] = {"none",          "end_turn", "max_tokens",
                                  "stop_sequence", "tool_use", "content_filter",
                                  "error"};
    return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

struct rec {
    pg_buf_t out;
    pg_arena_t arena;
    pg_canon_response_t canon; /* every event must also be well-formed */
};

static void rec_init(struct rec *r)
{
    pg_buf_init(&r->out, 1 << 20);
    pg_arena_init(&r->arena, 0);
    pg_canon_response_init(&r->canon, &r->arena);
}

static void rec_free(struct rec *r)
{
    pg_buf_free(&r->out);
    pg_arena_destroy(&r->arena);
}

static int on_event(void *ud, const pg_event_t *ev)
{
    struct rec *r = ud;
    pg_buf_t *b = &r->out;
    const pg_usage_t *u = &ev->usage;
    switch (ev->kind) {
    case PG_EV_MESSAGE_START:
        put(b, "message_start id=%.*s model=%.*s input=%lld\n", (int)ev->id.n,
            ev->id.p, (int)ev->model.n, ev->model.p,
            (long long)u->input_tokens);
        break;
    case PG_EV_BLOCK_START:
        put(b, "block_start %u %s", ev->index, kind_name(ev->block));
        if (ev->block == PG_PART_TOOL_CALL)
            put(b, " id=%.*s name=%.*s", (int)ev->id.n, ev->id.p,
                (int)ev->name.n, ev->name.p);
        if (ev->text.n) {
            put(b, " ");
            put_quoted(b, ev->text);
        }
        put(b, "\n");
        break;
    case PG_EV_TEXT_DELTA:
    case PG_EV_TOOL_ARGS_DELTA:
    case PG_EV_THINKING_DELTA:
    case PG_EV_SIGNATURE:
        put(b, "%s %u ",
            ev->kind == PG_EV_TEXT_DELTA        ? "text_delta"
            : ev->kind == PG_EV_TOOL_ARGS_DELTA ? "tool_args_delta"
            : ev->kind == PG_EV_THINKING_DELTA  ? "thinking_delta"
                                                : "signature",
            ev->index);
        put_quoted(b, ev->text);
        put(b, "\n");
        break;
    case PG_EV_BLOCK_STOP:
        put(b, "block_stop %u\n", ev->index);
        break;
    case PG_EV_USAGE:
        put(b, "usage input=%lld output=%lld cache_read=%lld cache_write=%lld\n",
            (long long)u->input_tokens, (long long)u->output_tokens,
            (long long)u->cache_read_tokens, (long long)u->cache_write_tokens);
        break;
    case PG_EV_MESSAGE_STOP:
        put(b, "message_stop %s stop_sequence=", stop_name(ev->stop_reason));
        put_quoted(b, ev->stop_sequence);
        put(b, "\n");
        break;
    case PG_EV_ERROR:
        put(b, "error %d %.*s ", ev->status, (int)ev->error_type.n,
            ev->error_type.p);
        put_quoted(b, ev->text);
        put(b, "\n");
        break;
    }
    if (pg_canon_response_add(&r->canon, ev) != PG_OK)
        put(b, "!! canon response rejected the event above\n");
    return PG_OK;
}

/* Counts events; allocates nothing (for the OOM sweep). */
static int on_count(void *ud, const pg_event_t *ev)
{
    (void)ev;
    size_t *count = ud;
    (*count)++;
    return PG_OK;
}

static void put_rc(pg_buf_t *b, const char *what, int rc, const char *why)
{
    put(b, "%s: %s", what, rc == PG_OK ? "PG_OK" : pg_err_name(rc));
    if (rc != PG_OK)
        put(b, ": %s", why ? why : "(no why)");
    put(b, "\n");
}

/* ---- feeding streams -------------------------------------------------------- */

struct feed {
    pg_anthropic_stream_dec_t dec;
    struct rec rec;
    int rc;
};

static int feed_one(void *ud, pg_str_t event, pg_str_t data)
{
    struct feed *f = ud;
    const char *why = NULL;
    f->rc = pg_anthropic_stream_dec_feed(&f->dec, event, data, on_event,
                                         &f->rec, &why);
    if (f->rc != PG_OK)
        put_rc(&f->rec.out, "feed", f->rc, why);
    return f->rc;
}

static void feed_finish(struct feed *f)
{
    if (f->rc != PG_OK)
        return;
    const char *why = NULL;
    int rc = pg_anthropic_stream_dec_finish(&f->dec, &why);
    put_rc(&f->rec.out, "finish", rc, why);
}

/* Splits a well-formed fixture into its events (blank-line separated
 * "event:" / "data:" lines) without the SSE parser, so the decoder is
 * checked on its own. */
static void run_whole_events(const char *sse, size_t n, struct feed *f)
{
    const char *p = sse, *end = sse + n;
    while (p < end && f->rc == PG_OK) {
        pg_str_t ev = PG_STR_NULL, data = PG_STR_NULL;
        bool any = false;
        while (p < end && *p != '\n') {
            const char *eol = memchr(p, '\n', (size_t)(end - p));
            if (eol == NULL)
                eol = end;
            pg_str_t line = {p, (size_t)(eol - p)};
            if (pg_str_starts_with(line, PG_STR("event: ")))
                ev = (pg_str_t){line.p + 7, line.n - 7};
            else if (pg_str_starts_with(line, PG_STR("data: ")))
                data = (pg_str_t){line.p + 6, line.n - 6};
            any = true;
            p = eol < end ? eol + 1 : end;
        }
        if (p < end)
            p++; /* the blank line */
        if (any)
            feed_one(f, ev, data);
    }
    feed_finish(f);
}

/* Feeds the bytes through pg_sse_parser in chunks: step 0 = one piece,
 * 1 = byte by byte, else random lengths from 1 to step. */
static void run_sse(const char *sse, size_t n, size_t step, unsigned seed,
                    struct feed *f)
{
    pg_sse_parser_t ps;
    pg_sse_parser_init(&ps, 1 << 20);
    size_t off = 0;
    int rc = PG_OK;
    srand(seed);
    while (off < n && rc == PG_OK) {
        size_t k = step == 0 ? n - off : step == 1 ? 1 : 1 + (size_t)rand() % step;
        if (k > n - off)
            k = n - off;
        rc = pg_sse_parser_feed(&ps, (pg_str_t){sse + off, k}, feed_one, f);
        off += k;
    }
    if (rc == PG_OK) {
        rc = pg_sse_parser_finish(&ps, feed_one, f);
        if (rc != PG_OK && f->rc == PG_OK)
            put_rc(&f->rec.out, "sse", rc, "parser");
    }
    pg_sse_parser_destroy(&ps);
    if (rc == PG_OK)
        feed_finish(f);
}

static void feed_init(struct feed *f)
{
    memset(f, 0, sizeof(*f));
    rec_init(&f->rec);
    pg_anthropic_stream_dec_init(&f->dec, &f->rec.arena);
}

static void expect_same(const char *name, const char *how, pg_str_t want,
                        pg_str_t got)
{
    if (!pg_str_eq(want, got))
        fail_msg("%s (%s): events differ\n--- want\n%.*s--- got\n%.*s", name,
                 how, (int)want.n, want.p, (int)got.n, got.p);
}

static void check_stream(const char *name)
{
    char file[128];
    size_t n, wn;
    snprintf(file, sizeof(file), "%s.sse", name);
    char *sse = read_fixture(file, &n);
    struct feed f;
    feed_init(&f);
    run_whole_events(sse, n, &f);
    if (getenv("PG_FIXTURE_PRINT"))
        printf("== %s\n%s", name, f.rec.out.p ? f.rec.out.p : "");
    snprintf(file, sizeof(file), "%s.events", name);
    char *want = read_fixture(file, &wn);
    pg_str_t w = {want, wn};
    expect_same(name, "whole events", w, pg_buf_str(&f.rec.out));
    rec_free(&f.rec);

    static const struct {
        size_t step;
        unsigned seed;
    } splits[] = {{0, 0}, {1, 0}, {3, 1}, {7, 2}, {16, 3}, {64, 4}, {200, 5}};
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        char how[64];
        snprintf(how, sizeof(how), "sse parser, step %zu seed %u",
                 splits[i].step, splits[i].seed);
        feed_init(&f);
        run_sse(sse, n, splits[i].step, splits[i].seed, &f);
        expect_same(name, how, w, pg_buf_str(&f.rec.out));
        rec_free(&f.rec);
    }
    free(want);
    free(sse);
}

static void check_whole(const char *name)
{
    char file[128];
    size_t n, wn;
    snprintf(file, sizeof(file), "%s.json", name);
    char *body = read_fixture(file, &n);
    struct rec r;
    rec_init(&r);
    const char *why = NULL;
    int rc = pg_anthropic_decode_response(&r.arena, (pg_str_t){body, n},
                                          on_event, &r, &why);
    put_rc(&r.out, "decode", rc, why);
    if (getenv("PG_FIXTURE_PRINT"))
        printf("== %s\n%s", name, r.out.p);
    snprintf(file, sizeof(file), "%s.events", name);
    char *want = read_fixture(file, &wn);
    expect_same(name, "whole message", (pg_str_t){want, wn}, pg_buf_str(&r.out));
    rec_free(&r);
    free(want);
    free(body);
}

#define STREAM_TEST(n)                                                         \
    static void test_stream_##n(void **state)                                  \
    {                                                                          \
        (void)state;                                                           \
        check_stream(#n);                                                      \
    }
#define WHOLE_TEST(n)                                                          \
    static void test_whole_##n(void **state)                                   \
    {                                                                          \
        (void)state;                                                           \
        check_whole(#n);                                                       \
    }

STREAM_TEST(text)
STREAM_TEST(tool_use)
STREAM_TEST(two_tools)
STREAM_TEST(thinking)
STREAM_TEST(stop_sequence)
STREAM_TEST(max_tokens)
STREAM_TEST(refusal)
STREAM_TEST(cache_usage)
STREAM_TEST(error_mid)
STREAM_TEST(truncated)
STREAM_TEST(server_tool)
STREAM_TEST(break_delta_unstarted)
STREAM_TEST(break_block_twice)
STREAM_TEST(break_before_start)
STREAM_TEST(break_after_stop)
STREAM_TEST(break_bad_json)
STREAM_TEST(break_delta_kind)
STREAM_TEST(break_open_at_stop)
STREAM_TEST(break_out_of_order)
WHOLE_TEST(msg_text)
WHOLE_TEST(msg_tool_use)
WHOLE_TEST(msg_thinking)
WHOLE_TEST(msg_cache_usage)
WHOLE_TEST(msg_error_body)
WHOLE_TEST(msg_no_content)

/* A whole message and the stream of the same answer build the same
 * canonical response. */
static void test_whole_equals_stream(void **state)
{
    (void)state;
    size_t n, m;
    char *sse = read_fixture("text.sse", &n);
    char *body = read_fixture("msg_text.json", &m);
    struct feed f;
    feed_init(&f);
    run_whole_events(sse, n, &f);
    struct rec r;
    rec_init(&r);
    assert_int_equal(pg_anthropic_decode_response(&r.arena, (pg_str_t){body, m},
                                                  on_event, &r, NULL),
                     PG_OK);
    assert_int_equal(pg_canon_response_finish(&f.rec.canon), PG_OK);
    assert_int_equal(pg_canon_response_finish(&r.canon), PG_OK);
    const pg_canon_response_t *a = &f.rec.canon, *b = &r.canon;
    assert_true(pg_str_eq(a->id, b->id));
    assert_true(pg_str_eq(a->model, b->model));
    assert_int_equal(a->stop_reason, b->stop_reason);
    assert_memory_equal(&a->usage, &b->usage, sizeof(a->usage));
    assert_int_equal(a->nparts, 1);
    assert_int_equal(b->nparts, 1);
    assert_true(pg_str_eq(a->parts[0].text, b->parts[0].text));
    assert_str(a->parts[0].text, "Hello, \"world\"\n");
    rec_free(&f.rec);
    rec_free(&r);
    free(sse);
    free(body);
}

/* The event name may be missing (the data's type names it) but must not
 * contradict the data; a failed decoder stays failed. */
static void test_stream_event_names(void **state)
{
    (void)state;
    struct feed f;
    feed_init(&f);
    const char *why = NULL;
    pg_str_t start = PG_STR("{\"type\":\"message_start\",\"message\":{\"id\":"
                            "\"m\",\"model\":\"x\",\"usage\":{}}}");
    assert_int_equal(pg_anthropic_stream_dec_feed(&f.dec, PG_STR_NULL, start,
                                                  on_event, &f.rec, &why),
                     PG_OK);
    assert_int_equal(f.dec.state, PG_ANT_DEC_MESSAGE);
    /* Unknown event types are skipped, as the API asks. */
    assert_int_equal(
        pg_anthropic_stream_dec_feed(&f.dec, PG_STR("future_event"),
                                     PG_STR("{\"type\":\"future_event\"}"),
                                     on_event, &f.rec, &why),
        PG_OK);
    assert_int_equal(
        pg_anthropic_stream_dec_feed(&f.dec, PG_STR("message_stop"),
                                     PG_STR("{\"type\":\"ping\"}"), on_event,
                                     &f.rec, &why),
        PG_EPARSE);
    assert_string_equal(why, "the event name does not match its data type");
    assert_int_equal(f.dec.state, PG_ANT_DEC_FAILED);
    assert_int_equal(
        pg_anthropic_stream_dec_feed(&f.dec, PG_STR("message_stop"),
                                     PG_STR("{\"type\":\"message_stop\"}"),
                                     on_event, &f.rec, &why),
        PG_EPARSE);
    assert_int_equal(pg_anthropic_stream_dec_finish(&f.dec, &why), PG_EPARSE);
    rec_free(&f.rec);
}

/* A sink's non-zero return stops the decoder and comes back from feed. */
static int cancel_sink(void *ud, const pg_event_t *ev)
{
    (void)ud;
    return ev->kind == PG_EV_USAGE ? PG_ECANCELED : PG_OK;
}

static void test_stream_sink_stops(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_anthropic_stream_dec_t d;
    pg_anthropic_stream_dec_init(&d, &a);
    pg_str_t start = PG_STR("{\"type\":\"message_start\",\"message\":{\"id\":"
                            "\"m\",\"model\":\"x\"}}");
    assert_int_equal(pg_anthropic_stream_dec_feed(&d, PG_STR("message_start"),
                                                  start, cancel_sink, NULL,
                                                  NULL),
                     PG_ECANCELED);
    assert_int_equal(d.state, PG_ANT_DEC_FAILED);
    pg_arena_destroy(&a);
}

/* ---- error bodies ------------------------------------------------------------ */

static void test_parse_error(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_str_t type, msg;
    assert_int_equal(
        pg_anthropic_parse_error(
            &a,
            PG_STR("{\"type\":\"error\",\"error\":{\"type\":"
                   "\"rate_limit_error\",\"message\":\"Number of request "
                   "tokens has exceeded your per-minute rate limit\"}}"),
            &type, &msg),
        PG_OK);
    assert_str(type, "rate_limit_error");
    assert_str(msg,
               "Number of request tokens has exceeded your per-minute rate "
               "limit");
    assert_int_equal(pg_anthropic_error_status(type), 429);
    /* The message is optional; the type is not. */
    assert_int_equal(pg_anthropic_parse_error(
                         &a, PG_STR("{\"error\":{\"type\":\"api_error\"}}"),
                         &type, &msg),
                     PG_OK);
    assert_int_equal(msg.n, 0);
    assert_int_equal(pg_anthropic_parse_error(
                         &a, PG_STR("{\"error\":{\"message\":\"x\"}}"), &type,
                         &msg),
                     PG_EPARSE);
    assert_int_equal(pg_anthropic_parse_error(&a, PG_STR("<html>502</html>"),
                                              &type, &msg),
                     PG_EPARSE);
    /* An OpenAI-shaped body from a misconfigured base_url is not ours. */
    assert_int_equal(
        pg_anthropic_parse_error(
            &a,
            PG_STR("{\"type\":\"message\",\"error\":{\"type\":\"x\"}}"), &type,
            &msg),
        PG_EPARSE);
    pg_arena_destroy(&a);
}

static void test_error_status(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int status;
    } cases[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401},
        {"permission_error", 403},      {"not_found_error", 404},
        {"request_too_large", 413},     {"rate_limit_error", 429},
        {"api_error", 500},             {"overloaded_error", 529},
        {"something_new", 502},         {"", 502},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(pg_anthropic_error_status(pg_str_c(cases[i].type)),
                         cases[i].status);
}

/* ---- encoder ------------------------------------------------------------------ */

static pg_part_t text_part(const char *s)
{
    pg_part_t p = {.kind = PG_PART_TEXT};
    p.text = pg_str_c(s);
    return p;
}

/* The request behind request_full.json: every field the encoder writes. */
struct full_req {
    pg_part_t system[2];
    pg_part_t u0[2], u1[1], a2[3], t3[1], t4[1], u5[1], a6[2];
    pg_part_t r3[1], r4[2];
    pg_message_t msgs[7];
    pg_tool_t tools[2];
    pg_str_t stop[2];
    pg_request_t q;
};

static void full_req_init(struct full_req *f)
{
    memset(f, 0, sizeof(*f));
    f->system[0] = text_part("You are terse.");
    f->system[1] = text_part("Answer in French.");
    f->u0[0] = text_part("What's the weather?");
    f->u0[1].kind = PG_PART_IMAGE;
    f->u0[1].image.media_type = PG_STR("image/png");
    f->u0[1].image.data = PG_STR("iVBORw0KGgo=");
    f->u1[0].kind = PG_PART_IMAGE;
    f->u1[0].image.url = PG_STR("https://example.com/cat.jpg");
    f->a2[0].kind = PG_PART_THINKING;
    f->a2[0].text = PG_STR("I should call the tool");
    f->a2[0].signature = PG_STR("EqQBCgIYAhIM+/sig==");
    f->a2[1] = text_part("Checking.");
    f->a2[2].kind = PG_PART_TOOL_CALL;
    f->a2[2].tool_call.id = PG_STR("call_1");
    f->a2[2].tool_call.name = PG_STR("get_weather");
    f->a2[2].tool_call.arguments = PG_STR("{\"city\": \"Paris\", \"n\": 1.50}");
    f->r3[0] = text_part("18C");
    f->t3[0].kind = PG_PART_TOOL_RESULT;
    f->t3[0].tool_result.call_id = PG_STR("call_1");
    f->t3[0].tool_result.content = f->r3;
    f->t3[0].tool_result.ncontent = 1;
    f->r4[0] = text_part("boom");
    f->r4[1] = f->u0[1];
    f->t4[0].kind = PG_PART_TOOL_RESULT;
    f->t4[0].tool_result.call_id = PG_STR("call_2");
    f->t4[0].tool_result.content = f->r4;
    f->t4[0].tool_result.ncontent = 2;
    f->t4[0].tool_result.is_error = true;
    f->u5[0] = text_part("Thanks");
    f->a6[0].kind = PG_PART_REDACTED_THINKING;
    f->a6[0].text = PG_STR("opaque+data==");
    f->a6[1].kind = PG_PART_REFUSAL;
    f->a6[1].text = PG_STR("I won't.");
    const pg_message_t msgs[7] = {
        {PG_ROLE_USER, PG_STR_NULL, f->u0, 2},
        {PG_ROLE_USER, PG_STR_NULL, f->u1, 1},
        {PG_ROLE_ASSISTANT, PG_STR_NULL, f->a2, 3},
        {PG_ROLE_TOOL, PG_STR_NULL, f->t3, 1},
        {PG_ROLE_TOOL, PG_STR_NULL, f->t4, 1},
        {PG_ROLE_USER, PG_STR("bob"), f->u5, 1},
        {PG_ROLE_ASSISTANT, PG_STR_NULL, f->a6, 2},
    };
    memcpy(f->msgs, msgs, sizeof(msgs));
    f->tools[0].name = PG_STR("get_weather");
    f->tools[0].description = PG_STR("Weather for a city");
    f->tools[0].parameters =
        PG_STR("{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
               "\"string\"}},\"required\":[\"city\"]}");
    f->tools[1].name = PG_STR("get_time");
    f->stop[0] = PG_STR("END");
    f->stop[1] = PG_STR("\n\nHuman:");
    pg_request_t *q = &f->q;
    q->model = PG_STR("claude-sonnet-4-5");
    q->system = f->system;
    q->nsystem = 2;
    q->messages = f->msgs;
    q->nmessages = 7;
    q->tools = f->tools;
    q->ntools = 2;
    q->tool_choice = PG_TOOL_CHOICE_NAMED;
    q->tool_choice_name = PG_STR("get_weather");
    q->set = PG_SET_TEMPERATURE | PG_SET_TOP_P | PG_SET_TOP_K |
             PG_SET_PARALLEL_TOOL_CALLS | PG_SET_SEED;
    q->temperature = 0;
    q->top_p = 0.9;
    q->top_k = 40;
    q->seed = 7;
    q->parallel_tool_calls = false;
    q->stop = f->stop;
    q->nstop = 2;
    q->user = PG_STR("user-42");
}

static int encode(const pg_request_t *q, const pg_anthropic_req_opts_t *o,
                  pg_buf_t *b, const char **why)
{
    pg_buf_init(b, 1 << 20);
    return pg_anthropic_encode_request(b, q, o, why);
}

static void test_encode_full_golden(void **state)
{
    (void)state;
    struct full_req f;
    full_req_init(&f);
    pg_anthropic_req_opts_t o = {.stream = true, .default_max_tokens = 1000};
    pg_buf_t b;
    const char *why = NULL;
    assert_int_equal(encode(&f.q, &o, &b, &why), PG_OK);
    size_t n;
    char *want_text = read_fixture("request_full.json", &n);
    cJSON *got = pg_json_parse(pg_buf_str(&b), NULL);
    cJSON *want = pg_json_parse((pg_str_t){want_text, n}, NULL);
    assert_non_null(want);
    if (got == NULL || !cJSON_Compare(want, got, true))
        fail_msg("request_full.json differs; got\n%s", b.p);
    /* Tool arguments are forwarded byte for byte (1.50 stays 1.50). */
    assert_non_null(
        strstr(b.p, "\"input\":{\"city\": \"Paris\", \"n\": 1.50}"));
    /* The thinking signature too. */
    assert_non_null(strstr(b.p, "\"signature\":\"EqQBCgIYAhIM+/sig==\""));

    /* Every field where the API reference puts it. */
    assert_string_equal(cJSON_GetObjectItem(got, "model")->valuestring,
                        "claude-sonnet-4-5");
    assert_int_equal(cJSON_GetObjectItem(got, "max_tokens")->valueint, 1000);
    const cJSON *sys = cJSON_GetObjectItem(got, "system");
    assert_true(cJSON_IsArray(sys));
    assert_int_equal(cJSON_GetArraySize(sys), 2);
    const cJSON *msgs = cJSON_GetObjectItem(got, "messages");
    /* user+user merged, assistant, tool+tool+user merged, assistant. */
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    const cJSON *turn2 = cJSON_GetArrayItem(msgs, 2);
    assert_string_equal(cJSON_GetObjectItem(turn2, "role")->valuestring,
                        "user");
    const cJSON *c2 = cJSON_GetObjectItem(turn2, "content");
    assert_int_equal(cJSON_GetArraySize(c2), 3);
    const cJSON *tr = cJSON_GetArrayItem(c2, 1);
    assert_string_equal(cJSON_GetObjectItem(tr, "type")->valuestring,
                        "tool_result");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(tr, "is_error")));
    const cJSON *tc = cJSON_GetObjectItem(got, "tool_choice");
    assert_string_equal(cJSON_GetObjectItem(tc, "type")->valuestring, "tool");
    assert_string_equal(cJSON_GetObjectItem(tc, "name")->valuestring,
                        "get_weather");
    assert_true(
        cJSON_IsTrue(cJSON_GetObjectItem(tc, "disable_parallel_tool_use")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(got, "temperature")));
    assert_null(cJSON_GetObjectItem(got, "seed"));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "metadata"),
                                            "user_id")
                            ->valuestring,
                        "user-42");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(got, "stream")));
    cJSON_Delete(got);
    cJSON_Delete(want);
    free(want_text);
    pg_buf_free(&b);
}

static cJSON *encode_json(const pg_request_t *q, const pg_anthropic_req_opts_t *o)
{
    pg_buf_t b;
    const char *why = NULL;
    int rc = encode(q, o, &b, &why);
    if (rc != PG_OK)
        fail_msg("encode: %s: %s", pg_err_name(rc), why ? why : "");
    cJSON *j = pg_json_parse(pg_buf_str(&b), NULL);
    assert_non_null(j);
    pg_buf_free(&b);
    return j;
}

static void test_encode_minimal(void **state)
{
    (void)state;
    pg_part_t sys = text_part("Be brief.");
    pg_part_t hi = text_part("hi");
    pg_part_t empty = text_part("");
    pg_message_t msgs[2] = {{PG_ROLE_USER, PG_STR_NULL, &hi, 1},
                            {PG_ROLE_ASSISTANT, PG_STR_NULL, &empty, 1}};
    pg_request_t q = {.model = PG_STR("claude-haiku-4-5"),
                      .system = &sys,
                      .nsystem = 1,
                      .messages = msgs,
                      .nmessages = 2};
    pg_anthropic_req_opts_t o = {0};
    cJSON *j = encode_json(&q, &o);
    /* One plain system part: the string form. */
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "system")));
    assert_string_equal(cJSON_GetObjectItem(j, "system")->valuestring,
                        "Be brief.");
    /* No max_tokens anywhere: the built-in default. */
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 4096);
    /* A turn of only empty text is dropped (the API rejects it). */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), 1);
    assert_null(cJSON_GetObjectItem(j, "stream"));
    assert_null(cJSON_GetObjectItem(j, "tools"));
    assert_null(cJSON_GetObjectItem(j, "tool_choice"));
    assert_null(cJSON_GetObjectItem(j, "temperature"));
    assert_null(cJSON_GetObjectItem(j, "metadata"));
    assert_null(cJSON_GetObjectItem(j, "stop_sequences"));
    cJSON_Delete(j);

    /* The request's own max_tokens wins over the default. */
    q.set = PG_SET_MAX_TOKENS;
    q.max_tokens = 77;
    o.default_max_tokens = 1000;
    j = encode_json(&q, &o);
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 77);
    cJSON_Delete(j);
    q.set = 0;
    j = encode_json(&q, &o);
    assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 1000);
    cJSON_Delete(j);
}

static void test_encode_tool_choice(void **state)
{
    (void)state;
    pg_part_t hi = text_part("hi");
    pg_message_t m = {PG_ROLE_USER, PG_STR_NULL, &hi, 1};
    pg_tool_t t = {.name = PG_STR("f")};
    pg_request_t q = {.model = PG_STR("m"), .messages = &m, .nmessages = 1,
                      .tools = &t, .ntools = 1};
    pg_anthropic_req_opts_t o = {0};
    static const struct {
        pg_tool_choice_t choice;
        bool no_parallel;
        const char *want; /* NULL: no tool_choice */
    } cases[] = {
        {PG_TOOL_CHOICE_UNSET, false, NULL},
        {PG_TOOL_CHOICE_UNSET, true,
         "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}"},
        {PG_TOOL_CHOICE_AUTO, false, "{\"type\":\"auto\"}"},
        {PG_TOOL_CHOICE_REQUIRED, false, "{\"type\":\"any\"}"},
        {PG_TOOL_CHOICE_REQUIRED, true,
         "{\"type\":\"any\",\"disable_parallel_tool_use\":true}"},
        {PG_TOOL_CHOICE_NAMED, false, "{\"type\":\"tool\",\"name\":\"f\"}"},
        {PG_TOOL_CHOICE_NONE, true, "{\"type\":\"none\"}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        q.tool_choice = cases[i].choice;
        q.tool_choice_name = cases[i].choice == PG_TOOL_CHOICE_NAMED
                                 ? PG_STR("f")
                                 : PG_STR_NULL;
        q.set = cases[i].no_parallel ? PG_SET_PARALLEL_TOOL_CALLS : 0;
        q.parallel_tool_calls = false;
        cJSON *j = encode_json(&q, &o);
        const cJSON *tc = cJSON_GetObjectItem(j, "tool_choice");
        /* A tool without parameters gets the empty object schema. */
        const cJSON *schema = cJSON_GetObjectItem(
            cJSON_GetArrayItem(cJSON_GetObjectItem(j, "tools"), 0),
            "input_schema");
        assert_string_equal(cJSON_GetObjectItem(schema, "type")->valuestring,
                            "object");
        if (cases[i].want == NULL) {
            assert_null(tc);
        } else {
            cJSON *want = pg_json_parse(pg_str_c(cases[i].want), NULL);
            if (!cJSON_Compare(want, tc, true))
                fail_msg("case %zu: want %s got %s", i, cases[i].want,
                         tc ? cJSON_PrintUnformatted(tc) : "nothing");
            cJSON_Delete(want);
        }
        cJSON_Delete(j);
    }
    /* Parallel calls left on (or unset) never add the flag. */
    q.tool_choice = PG_TOOL_CHOICE_AUTO;
    q.set = PG_SET_PARALLEL_TOOL_CALLS;
    q.parallel_tool_calls = true;
    cJSON *j = encode_json(&q, &o);
    assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "tool_choice"),
                                    "disable_parallel_tool_use"));
    cJSON_Delete(j);
}

static void expect_unsupported(const pg_request_t *q, const char *why_part)
{
    pg_buf_t b;
    const char *why = NULL;
    pg_anthropic_req_opts_t o = {0};
    assert_int_equal(encode(q, &o, &b, &why), PG_EUNSUPPORTED);
    assert_non_null(why);
    if (strstr(why, why_part) == NULL)
        fail_msg("why '%s' does not mention '%s'", why, why_part);
    /* Nothing half-written is left behind. */
    assert_int_equal(b.n, 0);
    pg_buf_free(&b);
}

static void test_encode_unsupported(void **state)
{
    (void)state;
    pg_part_t call = {.kind = PG_PART_TOOL_CALL};
    call.tool_call.id = PG_STR("call_xyz");
    call.tool_call.name = PG_STR("f");
    pg_message_t m = {PG_ROLE_ASSISTANT, PG_STR_NULL, &call, 1};
    pg_request_t q = {.model = PG_STR("m"), .messages = &m, .nmessages = 1};
    static const char *bad_args[] = {"[1,2]", "\"text\"", "{\"a\":", "42",
                                     "{\"a\":1} x"};
    for (size_t i = 0; i < sizeof(bad_args) / sizeof(bad_args[0]); i++) {
        call.tool_call.arguments = pg_str_c(bad_args[i]);
        expect_unsupported(&q, "call_xyz");
    }
    /* Empty arguments (a call without parameters) are the empty object. */
    call.tool_call.arguments = PG_STR("");
    pg_anthropic_req_opts_t o = {0};
    cJSON *j = encode_json(&q, &o);
    const cJSON *blk = cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"),
                                               0),
                            "content"),
        0);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(blk, "input")));
    cJSON_Delete(j);

    call.tool_call.arguments = PG_STR("{}");
    q.response_format = PG_FORMAT_JSON_SCHEMA;
    q.response_schema = PG_STR("{\"name\":\"s\",\"schema\":{}}");
    expect_unsupported(&q, "response_format");
    q.response_format = PG_FORMAT_UNSET;
    q.set = PG_SET_N;
    q.n = 2;
    expect_unsupported(&q, "n");
    q.n = 1;
    j = encode_json(&q, &o);
    cJSON_Delete(j);
    q.set = 0;

    pg_tool_t t = {.name = PG_STR("weird"), .parameters = PG_STR("[]")};
    q.tools = &t;
    q.ntools = 1;
    expect_unsupported(&q, "weird");
    q.ntools = 0;

    /* An image in an assistant turn has no Anthropic form. */
    pg_part_t img = {.kind = PG_PART_IMAGE};
    img.image.url = PG_STR("https://x.test/a.png");
    m.parts = &img;
    expect_unsupported(&q, "assistant");
    /* Nor a base64 image without its media type. */
    img.image.url = PG_STR_NULL;
    img.image.data = PG_STR("AAAA");
    m.role = PG_ROLE_USER;
    expect_unsupported(&q, "media_type");
    m.role = PG_ROLE_SYSTEM;
    expect_unsupported(&q, "system");
}

static void test_encode_too_big(void **state)
{
    (void)state;
    struct full_req f;
    full_req_init(&f);
    pg_anthropic_req_opts_t o = {0};
    pg_buf_t b;
    pg_buf_init(&b, 64);
    const char *why = NULL;
    assert_int_equal(pg_anthropic_encode_request(&b, &f.q, &o, &why),
                     PG_ETOOBIG);
    assert_int_equal(b.n, 0);
    pg_buf_free(&b);
}


/* ---- out of memory ------------------------------------------------------------- */

/* Fails each allocation in turn: every failure must come back as a clean
 * PG_ENOMEM (no crash, no leak under ASan, nothing half-written). */
static void test_oom_sweep(void **state)
{
    (void)state;
    struct full_req f;
    full_req_init(&f);
    pg_anthropic_req_opts_t o = {.stream = true};
    size_t n, m;
    char *sse = read_fixture("thinking.sse", &n);
    char *body = read_fixture("msg_tool_use.json", &m);
    oom_install();
    long oom_at;
    bool enc_done = false, stream_done = false, whole_done = false;
    for (oom_at = 0; oom_at < 500 && !(enc_done && stream_done && whole_done);
         oom_at++) {
        pg_buf_t b;
        const char *why = NULL;
        oom_arm(oom_at);
        pg_buf_init(&b, 1 << 20);
        int rc = pg_anthropic_encode_request(&b, &f.q, &o, &why);
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("encode, allocation %ld failing: %s", oom_at,
                     pg_err_name(rc));
        if (rc == PG_ENOMEM)
            assert_int_equal(b.n, 0);
        enc_done = enc_done || rc == PG_OK;
        pg_buf_free(&b);

        oom_arm(oom_at);
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_anthropic_stream_dec_t d;
        pg_anthropic_stream_dec_init(&d, &a);
        /* A sink that allocates nothing: only the decoder is judged. */
        size_t count = 0;
        long saved = oom_at;
        const char *p = sse, *end = sse + n;
        rc = PG_OK;
        while (p < end && rc == PG_OK) {
            const char *sep = strstr(p, "\n\n");
            const char *ev = strstr(p, "event: ") + 7;
            const char *evend = strchr(ev, '\n');
            const char *data = strstr(p, "data: ") + 6;
            const char *dend = strchr(data, '\n');
            rc = pg_anthropic_stream_dec_feed(
                &d, (pg_str_t){ev, (size_t)(evend - ev)},
                (pg_str_t){data, (size_t)(dend - data)}, on_count, &count, &why);
            p = sep ? sep + 2 : end;
        }
        if (rc == PG_OK)
            rc = pg_anthropic_stream_dec_finish(&d, &why);
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("stream, allocation %ld failing: %s: %s", saved,
                     pg_err_name(rc), why);
        stream_done = stream_done || rc == PG_OK;
        pg_arena_destroy(&a);

        oom_arm(oom_at);
        pg_arena_init(&a, 0);
        rc = pg_anthropic_decode_response(&a, (pg_str_t){body, m}, on_count,
                                          &count, &why);
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("whole, allocation %ld failing: %s: %s", saved,
                     pg_err_name(rc), why);
        whole_done = whole_done || rc == PG_OK;
        pg_arena_destroy(&a);
    }
    long swept = oom_at;
    oom_uninstall();
    assert_true(enc_done && stream_done && whole_done);
    /* Several allocations were made to fail before all three passed. */
    assert_true(swept > 3);
    free(sse);
    free(body);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        fixdir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_use),
        cmocka_unit_test(test_stream_two_tools),
        cmocka_unit_test(test_stream_thinking),
        cmocka_unit_test(test_stream_stop_sequence),
        cmocka_unit_test(test_stream_max_tokens),
        cmocka_unit_test(test_stream_refusal),
        cmocka_unit_test(test_stream_cache_usage),
        cmocka_unit_test(test_stream_error_mid),
        cmocka_unit_test(test_stream_truncated),
        cmocka_unit_test(test_stream_server_tool),
        cmocka_unit_test(test_stream_break_delta_unstarted),
        cmocka_unit_test(test_stream_break_block_twice),
        cmocka_unit_test(test_stream_break_before_start),
        cmocka_unit_test(test_stream_break_after_stop),
        cmocka_unit_test(test_stream_break_bad_json),
        cmocka_unit_test(test_stream_break_delta_kind),
        cmocka_unit_test(test_stream_break_open_at_stop),
        cmocka_unit_test(test_stream_break_out_of_order),
        cmocka_unit_test(test_whole_msg_text),
        cmocka_unit_test(test_whole_msg_tool_use),
        cmocka_unit_test(test_whole_msg_thinking),
        cmocka_unit_test(test_whole_msg_cache_usage),
        cmocka_unit_test(test_whole_msg_error_body),
        cmocka_unit_test(test_whole_msg_no_content),
        cmocka_unit_test(test_whole_equals_stream),
        cmocka_unit_test(test_stream_event_names),
        cmocka_unit_test(test_stream_sink_stops),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_error_status),
        cmocka_unit_test(test_encode_full_golden),
        cmocka_unit_test(test_encode_minimal),
        cmocka_unit_test(test_encode_tool_choice),
        cmocka_unit_test(test_encode_unsupported),
        cmocka_unit_test(test_encode_too_big),
        cmocka_unit_test(test_oom_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
