/* test_openai_upstream.c: lib/codec/openai_upstream{,_encode}.c.
 *
 * Golden fixtures in tests/fixtures/openai/: <name>.sse (an upstream SSE
 * stream) or <name>.json (a whole chat.completion) next to <name>.events,
 * the canonical events expected, one per line. Each stream is fed through
 * the SSE parser into the stream decoder whole, one byte at a time and in
 * random splits, and must render identically every time. The request
 * encoder is checked by decoding its output with the client-side decoder
 * (pg_openai_chat_decode) and comparing the canonical requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/json.h"
#include "base/str.h"
#include "canon/response.h"
#include "codec/openai_chat.h"
#include "codec/openai_upstream.h"
#include "http/sse.h"
#include "oom_alloc.h"
#include "test_client.h"

#ifndef PG_FIXTURE_DIR
#error "PG_FIXTURE_DIR must name tests/fixtures/openai"
#endif

/* ---- fixtures ----------------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len)
{
    char *p = tc_read_file(PG_FIXTURE_DIR, name, len);
    if (p == NULL)
        fail_msg("cannot open fixture %s/%s", PG_FIXTURE_DIR, name);
    return p;
}

static const char *stop_name(pg_stop_reason_t r)
{
    static const char *const names[] = {"none", "end_turn", "max_tokens",
                                        "stop_sequence", "tool_use",
                                        "content_filter", "error"};
    return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "?";
}

static const char *block_name(pg_part_kind_t k)
{
    switch (k) {
    case PG_PART_TEXT:
        return "text";
    case PG_PART_REFUSAL:
        return "refusal";
    case PG_PART_TOOL_CALL:
        return "tool_call";
    case PG_PART_THINKING:
        return "thinking";
    default:
        return "?";
    }
}

/* Renders events as text lines and checks they form a stream the
 * canonical accumulator accepts. */
struct render {
    pg_buf_t out;
    pg_arena_t arena;
    pg_canon_response_t resp;
};

static void put(struct render *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct render *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    assert_int_equal(pg_buf_vprintf(&r->out, fmt, ap), PG_OK);
    va_end(ap);
}

static void put_quoted(struct render *r, pg_str_t s)
{
    assert_int_equal(pg_json_append_string(&r->out, s), PG_OK);
}

static int on_event(void *ud, const pg_event_t *ev)
{
    struct render *r = ud;
    switch (ev->kind) {
    case PG_EV_MESSAGE_START:
        put(r, "message_start id=%.*s model=%.*s input=%lld\n",
            (int)ev->id.n, ev->id.p, (int)ev->model.n, ev->model.p,
            (long long)ev->usage.input_tokens);
        break;
    case PG_EV_BLOCK_START:
        put(r, "block_start %u %s", ev->index, block_name(ev->block));
        if (ev->block == PG_PART_TOOL_CALL)
            put(r, " id=%.*s name=%.*s", (int)ev->id.n, ev->id.p,
                (int)ev->name.n, ev->name.p);
        put(r, "\n");
        break;
    case PG_EV_TEXT_DELTA:
    case PG_EV_TOOL_ARGS_DELTA:
        put(r, "%s %u ", ev->kind == PG_EV_TEXT_DELTA ? "text_delta"
                                                      : "tool_args_delta",
            ev->index);
        put_quoted(r, ev->text);
        put(r, "\n");
        break;
    case PG_EV_BLOCK_STOP:
        put(r, "block_stop %u\n", ev->index);
        break;
    case PG_EV_USAGE:
        put(r, "usage input=%lld output=%lld cache_read=%lld "
               "cache_write=%lld reasoning=%lld\n",
            (long long)ev->usage.input_tokens,
            (long long)ev->usage.output_tokens,
            (long long)ev->usage.cache_read_tokens,
            (long long)ev->usage.cache_write_tokens,
            (long long)ev->usage.reasoning_tokens);
        break;
    case PG_EV_MESSAGE_STOP:
        put(r, "message_stop %s\n", stop_name(ev->stop_reason));
        break;
    case PG_EV_ERROR:
        put(r, "error status=%d type=%.*s ", ev->status,
            (int)ev->error_type.n, ev->error_type.p);
        put_quoted(r, ev->text);
        put(r, "\n");
        break;
    default:
        put(r, "unexpected kind %d\n", (int)ev->kind);
        break;
    }
    int rc = pg_canon_response_add(&r->resp, ev);
    if (rc == PG_ENOMEM)
        return rc; /* the OOM sweep */
    assert_int_equal(rc, PG_OK);
    return PG_OK;
}

static void render_init(struct render *r)
{
    pg_buf_init(&r->out, 0);
    pg_arena_init(&r->arena, 0);
    pg_canon_response_init(&r->resp, &r->arena);
}

static void render_free(struct render *r)
{
    pg_buf_free(&r->out);
    pg_arena_destroy(&r->arena);
}

static void put_result(struct render *r, const char *what, int rc,
                       const char *why)
{
    if (rc == PG_OK) {
        put(r, "end ok\n");
        return;
    }
    put(r, "%s %s ", what, pg_err_name(rc));
    put_quoted(r, pg_str_c(why ? why : "(no reason)"));
    put(r, "\n");
}

/* The pipeline a provider runs: SSE bytes -> parser -> stream decoder. */
struct pipe {
    pg_openai_stream_dec_t dec;
    struct render *r;
    const char *why;
};

static int on_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct pipe *p = ud;
    (void)event;
    return pg_openai_stream_dec_feed(&p->dec, data, on_event, p->r, &p->why);
}

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

enum { SPLIT_WHOLE, SPLIT_BYTES, SPLIT_RANDOM };

static void run_stream(const char *in, size_t n, int split, struct render *r)
{
    /* The decoder allocates from the request arena; a separate one here
     * shows it does not depend on the renderer's. */
    pg_arena_t req;
    pg_arena_init(&req, 0);
    struct pipe p = {.r = r};
    pg_openai_stream_dec_init(&p.dec, &req);
    pg_sse_parser_t sse;
    pg_sse_parser_init(&sse, 1 << 20);
    int rc = PG_OK;
    size_t i = 0;
    while (i < n && rc == PG_OK) {
        size_t k = n - i;
        if (split == SPLIT_BYTES)
            k = 1;
        else if (split == SPLIT_RANDOM)
            k = 1 + rng() % (k < 40 ? k : 40);
        rc = pg_sse_parser_feed(&sse, pg_str(in + i, k), on_sse, &p);
        i += k;
    }
    if (rc != PG_OK) {
        put_result(r, "feed", rc, p.why);
    } else if ((rc = pg_sse_parser_finish(&sse, on_sse, &p)) != PG_OK) {
        put_result(r, "sse_finish", rc, "unfinished event");
    } else {
        rc = pg_openai_stream_dec_finish(&p.dec, on_event, r, &p.why);
        put_result(r, "finish", rc, p.why);
    }
    pg_sse_parser_destroy(&sse);
    pg_arena_destroy(&req);
}

static void check_stream_fixture(const char *name)
{
    char file[128];
    size_t n, wn;
    snprintf(file, sizeof(file), "%s.sse", name);
    char *in = read_fixture(file, &n);
    snprintf(file, sizeof(file), "%s.events", name);
    char *want = read_fixture(file, &wn);
    for (int split = SPLIT_WHOLE; split <= SPLIT_RANDOM; split++) {
        int reps = split == SPLIT_RANDOM ? 20 : 1;
        for (int k = 0; k < reps; k++) {
            struct render r;
            render_init(&r);
            run_stream(in, n, split, &r);
            if (getenv("PG_FIXTURE_SHOW") != NULL)
                fprintf(stderr, "--- %s split %d\n%s", name, split, r.out.p);
            assert_string_equal(r.out.p, want);
            /* A stream that ended well is a complete response. */
            if (strstr(want, "message_stop") != NULL)
                assert_int_equal(pg_canon_response_finish(&r.resp), PG_OK);
            render_free(&r);
        }
    }
    free(in);
    free(want);
}

static void check_whole_fixture(const char *name)
{
    char file[128];
    size_t n, wn;
    snprintf(file, sizeof(file), "%s.json", name);
    char *in = read_fixture(file, &n);
    snprintf(file, sizeof(file), "%s.events", name);
    char *want = read_fixture(file, &wn);
    struct render r;
    render_init(&r);
    pg_arena_t req;
    pg_arena_init(&req, 0);
    const char *why = NULL;
    int rc = pg_openai_chat_decode_response(&req, pg_str(in, n), on_event,
                                            &r, &why);
    put_result(&r, "decode", rc, why);
    if (getenv("PG_FIXTURE_SHOW") != NULL)
        fprintf(stderr, "--- %s\n%s", name, r.out.p);
    assert_string_equal(r.out.p, want);
    assert_int_equal(pg_canon_response_finish(&r.resp), PG_OK);
    pg_arena_destroy(&req);
    render_free(&r);
    free(in);
    free(want);
}

#define STREAM_TEST(name)                                                    \
    static void test_##name(void **state)                                    \
    {                                                                        \
        (void)state;                                                         \
        check_stream_fixture(#name);                                         \
    }

STREAM_TEST(stream_text)
STREAM_TEST(stream_tool_call)
STREAM_TEST(stream_parallel_tools)
STREAM_TEST(stream_usage_details)
STREAM_TEST(stream_length)
STREAM_TEST(stream_content_filter)
STREAM_TEST(stream_refusal)
STREAM_TEST(stream_error_midstream)
STREAM_TEST(stream_error_first)
STREAM_TEST(stream_truncated)
STREAM_TEST(stream_invalid_json)
STREAM_TEST(stream_n2)
STREAM_TEST(stream_text_then_tool)
STREAM_TEST(stream_delta_after_finish)
STREAM_TEST(stream_tool_without_id)
STREAM_TEST(stream_usage_on_finish)
STREAM_TEST(stream_done_without_finish)

#define WHOLE_TEST(name)                                                     \
    static void test_##name(void **state)                                    \
    {                                                                        \
        (void)state;                                                         \
        check_whole_fixture(#name);                                          \
    }

WHOLE_TEST(completion_text)
WHOLE_TEST(completion_tool_calls)
WHOLE_TEST(completion_refusal)
WHOLE_TEST(completion_length)

/* A stream cut in the middle of a line: the SSE layer reports it. */
static void test_stream_cut_mid_line(void **state)
{
    (void)state;
    size_t n;
    char *in = read_fixture("stream_text.sse", &n);
    struct render r;
    render_init(&r);
    run_stream(in, 400, SPLIT_WHOLE, &r);
    assert_non_null(strstr(r.out.p, "sse_finish PG_EPARSE"));
    assert_null(strstr(r.out.p, "message_stop"));
    render_free(&r);
    free(in);
}

static void test_whole_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "not json",
        "[1,2]",
        "{\"error\":{\"message\":\"x\",\"type\":\"server_error\"}}",
        "{\"id\":\"a\",\"choices\":[]}",
        "{\"id\":\"a\",\"choices\":[{\"index\":0}]}",
        "{\"id\":\"a\",\"choices\":[{\"index\":0,\"message\":{\"tool_calls\":"
        "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]},"
        "\"finish_reason\":\"tool_calls\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct render r;
        render_init(&r);
        const char *why = NULL;
        int rc = pg_openai_chat_decode_response(&r.arena, pg_str_c(bad[i]),
                                                on_event, &r, &why);
        assert_int_equal(rc, PG_EPARSE);
        assert_non_null(why);
        render_free(&r);
    }
}

/* A sink that refuses: its code comes back from feed unchanged. */
static int refuse(void *ud, const pg_event_t *ev)
{
    (void)ev;
    (*(int *)ud)++;
    return PG_ECANCELED;
}

static void test_sink_return_propagates(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_openai_stream_dec_t d;
    pg_openai_stream_dec_init(&d, &a);
    int calls = 0;
    const char *why = NULL;
    assert_int_equal(pg_openai_stream_dec_feed(
                         &d, PG_STR("{\"id\":\"c\",\"model\":\"m\","
                                    "\"choices\":[{\"index\":0,\"delta\":"
                                    "{\"content\":\"x\"}}]}"),
                         refuse, &calls, &why),
                     PG_ECANCELED);
    assert_int_equal(calls, 1);
    calls = 0;
    assert_int_equal(pg_openai_chat_decode_response(
                         &a, PG_STR("{\"choices\":[{\"message\":{\"content\":"
                                    "\"x\"},\"finish_reason\":\"stop\"}]}"),
                         refuse, &calls, &why),
                     PG_ECANCELED);
    assert_int_equal(calls, 1);
    pg_arena_destroy(&a);
}

static void test_failed_decoder_stays_failed(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_openai_stream_dec_t d;
    pg_openai_stream_dec_init(&d, &a);
    struct render r;
    render_init(&r);
    const char *why = NULL;
    assert_int_equal(pg_openai_stream_dec_feed(&d, PG_STR("{oops"), on_event,
                                               &r, &why),
                     PG_EPARSE);
    assert_int_equal(d.state, PG_OAI_DEC_FAILED);
    why = NULL;
    assert_int_equal(pg_openai_stream_dec_feed(&d, PG_STR("[DONE]"), on_event,
                                               &r, &why),
                     PG_EPARSE);
    assert_non_null(why);
    /* Nothing reached the sink. */
    assert_int_equal(r.out.n, 0);
    /* Nothing more to say at the end either: feed already said it. */
    assert_int_equal(pg_openai_stream_dec_finish(&d, on_event, &r, &why),
                     PG_OK);
    render_free(&r);
    pg_arena_destroy(&a);
}

/* Tool call index far beyond any real answer: refused, not allocated. */
static void test_tool_index_bounds(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":"
        "99999999,\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":-1,"
        "\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":"
        "\"0\",\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":{}}}]}",
        "{\"choices\":{}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_openai_stream_dec_t d;
        pg_openai_stream_dec_init(&d, &a);
        struct render r;
        render_init(&r);
        const char *why = NULL;
        assert_int_equal(pg_openai_stream_dec_feed(&d, pg_str_c(bad[i]),
                                                   on_event, &r, &why),
                         PG_EPARSE);
        assert_non_null(why);
        render_free(&r);
        pg_arena_destroy(&a);
    }
}

/* ---- error bodies ----------------------------------------------------------------- */

static void test_parse_error(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    size_t n;
    char *body = read_fixture("error_context_length.json", &n);
    pg_str_t type, msg, param, code;
    assert_int_equal(pg_openai_parse_error(&a, pg_str(body, n), &type, &msg,
                                           &param, &code),
                     PG_OK);
    free(body); /* the slices live in the arena, not in the body */
    assert_true(pg_str_eqc(type, "invalid_request_error"));
    assert_true(pg_str_starts_with(msg, PG_STR("This model's maximum")));
    assert_true(pg_str_eqc(param, "messages"));
    assert_true(pg_str_eqc(code, "context_length_exceeded"));

    body = read_fixture("error_invalid_api_key.json", &n);
    assert_int_equal(pg_openai_parse_error(&a, pg_str(body, n), &type, &msg,
                                           &param, &code),
                     PG_OK);
    free(body);
    assert_true(pg_str_eqc(type, "invalid_request_error"));
    assert_int_equal(param.n, 0);
    assert_true(pg_str_eqc(code, "invalid_api_key"));

    /* A numeric code, and the bare-string form some servers send. */
    assert_int_equal(pg_openai_parse_error(
                         &a, PG_STR("{\"error\":{\"message\":\"m\","
                                    "\"code\":429}}"),
                         &type, &msg, &param, &code),
                     PG_OK);
    assert_true(pg_str_eqc(code, "429"));
    assert_true(pg_str_eqc(msg, "m"));
    assert_int_equal(pg_openai_parse_error(
                         &a, PG_STR("{\"error\":\"model overloaded\"}"),
                         &type, &msg, &param, &code),
                     PG_OK);
    assert_true(pg_str_eqc(msg, "model overloaded"));
    assert_int_equal(type.n, 0);

    static const char *const bad[] = {"", "<html>502</html>", "{}",
                                      "{\"error\":null}", "{\"error\":1}",
                                      "[]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pg_openai_parse_error(&a, pg_str_c(bad[i]), &type,
                                               &msg, &param, &code),
                         PG_EPARSE);
    pg_arena_destroy(&a);
}

/* ---- request encoder ------------------------------------------------------------- */

static pg_request_t *full_request(void)
{
    static const pg_part_t system[] = {
        {.kind = PG_PART_TEXT, .text = PG_STR("You are terse.")},
        {.kind = PG_PART_TEXT, .text = PG_STR("Answer in \"French\".")},
    };
    static const pg_part_t user1[] = {
        {.kind = PG_PART_TEXT, .text = PG_STR("What is in this image?")},
        {.kind = PG_PART_IMAGE,
         .image = {.url = PG_STR("https://example.com/a.png")}},
        {.kind = PG_PART_IMAGE,
         .image = {.media_type = PG_STR("image/png"),
                   .data = PG_STR("iVBORw0KGgo=")}},
    };
    static const pg_part_t asst1[] = {
        {.kind = PG_PART_THINKING, .text = PG_STR("hmm"),
         .signature = PG_STR("sig")},
        {.kind = PG_PART_TEXT, .text = PG_STR("Checking.")},
        {.kind = PG_PART_TOOL_CALL,
         .tool_call = {.id = PG_STR("call_1"), .name = PG_STR("get_weather"),
                       .arguments = PG_STR("{\"city\":\"Paris\"}")}},
        {.kind = PG_PART_TOOL_CALL,
         .tool_call = {.id = PG_STR("call_2"), .name = PG_STR("get_time"),
                       .arguments = PG_STR("{}")}},
    };
    static const pg_part_t result1[] = {
        {.kind = PG_PART_TEXT, .text = PG_STR("18C")},
    };
    static const pg_part_t result2[] = {
        {.kind = PG_PART_TEXT, .text = PG_STR("10:00")},
        {.kind = PG_PART_TEXT, .text = PG_STR(" CET")},
    };
    static const pg_part_t tools1[] = {
        {.kind = PG_PART_TOOL_RESULT,
         .tool_result = {.call_id = PG_STR("call_1"), .content = result1,
                         .ncontent = 1}},
        {.kind = PG_PART_TOOL_RESULT,
         .tool_result = {.call_id = PG_STR("call_2"), .content = result2,
                         .ncontent = 2}},
    };
    static const pg_part_t asst2[] = {
        {.kind = PG_PART_TEXT, .text = PG_STR("It is 18C.")},
    };
    static const pg_message_t msgs[] = {
        {.role = PG_ROLE_USER, .name = PG_STR("alice"), .parts = user1,
         .nparts = 3},
        {.role = PG_ROLE_ASSISTANT, .parts = asst1, .nparts = 4},
        {.role = PG_ROLE_TOOL, .parts = tools1, .nparts = 2},
        {.role = PG_ROLE_ASSISTANT, .parts = asst2, .nparts = 1},
    };
    static const pg_tool_t tools[] = {
        {.name = PG_STR("get_weather"), .description = PG_STR("Weather"),
         .parameters = PG_STR("{\"type\":\"object\",\"properties\":{\"city\":"
                              "{\"type\":\"string\"}}}")},
        {.name = PG_STR("get_time")},
    };
    static const pg_str_t stop[] = {PG_STR("END"), PG_STR("\n\n")};
    static pg_request_t q;
    memset(&q, 0, sizeof(q));
    q.model = PG_STR("gpt-4o");
    q.system = system;
    q.nsystem = 2;
    q.messages = msgs;
    q.nmessages = 4;
    q.tools = tools;
    q.ntools = 2;
    q.tool_choice = PG_TOOL_CHOICE_NAMED;
    q.tool_choice_name = PG_STR("get_weather");
    q.set = PG_SET_TEMPERATURE | PG_SET_TOP_P | PG_SET_MAX_TOKENS |
            PG_SET_SEED | PG_SET_N | PG_SET_PARALLEL_TOOL_CALLS |
            PG_SET_PRESENCE_PENALTY | PG_SET_FREQUENCY_PENALTY | PG_SET_TOP_K;
    q.temperature = 0; /* explicit zero: must survive */
    q.top_p = 0.9;
    q.presence_penalty = -0.5;
    q.frequency_penalty = 0;
    q.top_k = 40; /* no Chat Completions field: dropped */
    q.max_tokens = 256;
    q.seed = 0;
    q.n = 1;
    q.parallel_tool_calls = false;
    q.stop = stop;
    q.nstop = 2;
    q.response_format = PG_FORMAT_JSON_SCHEMA;
    q.response_schema = PG_STR("{\"name\":\"w\",\"schema\":{\"type\":"
                               "\"object\"},\"strict\":true}");
    q.reasoning_effort = PG_STR("low");
    q.user = PG_STR("user-1");
    return &q;
}

static void assert_str_eq(pg_str_t a, pg_str_t b)
{
    if (!pg_str_eq(a, b))
        fail_msg("'%.*s' != '%.*s'", (int)a.n, a.p, (int)b.n, b.p);
}

static void assert_parts_eq(const pg_part_t *a, size_t na, const pg_part_t *b,
                            size_t nb)
{
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_int_equal(a[i].kind, b[i].kind);
        assert_str_eq(a[i].text, b[i].text);
        assert_str_eq(a[i].image.url, b[i].image.url);
        assert_str_eq(a[i].image.media_type, b[i].image.media_type);
        assert_str_eq(a[i].image.data, b[i].image.data);
        assert_str_eq(a[i].tool_call.id, b[i].tool_call.id);
        assert_str_eq(a[i].tool_call.name, b[i].tool_call.name);
        assert_str_eq(a[i].tool_call.arguments, b[i].tool_call.arguments);
        assert_str_eq(a[i].tool_result.call_id, b[i].tool_result.call_id);
        assert_parts_eq(a[i].tool_result.content, a[i].tool_result.ncontent,
                        b[i].tool_result.content, b[i].tool_result.ncontent);
    }
}

/* Encodes q and decodes the body back with the client-side decoder. */
static void round_trip(pg_arena_t *a, const pg_request_t *q,
                       const pg_openai_req_opts_t *o, pg_buf_t *body,
                       pg_request_t *back)
{
    const char *why = NULL;
    pg_buf_init(body, 1 << 20);
    assert_int_equal(pg_openai_chat_encode_request(body, q, o, &why), PG_OK);
    assert_null(why);
    size_t off = 0;
    cJSON *root = pg_json_parse_arena(a, pg_buf_str(body), &off);
    if (root == NULL)
        fail_msg("encoder output is not JSON at %zu: %s", off, body->p);
    pg_openai_decode_err_t err;
    int rc = pg_openai_chat_decode(a, root, back, &err);
    if (rc != PG_OK)
        fail_msg("decoder refused the encoder's output: %.*s\n%s",
                 (int)err.message.n, err.message.p, body->p);
}

static void test_encode_round_trip(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    const pg_request_t *q = full_request();
    pg_openai_req_opts_t o = {.stream = true, .include_usage = true};
    pg_buf_t body;
    pg_request_t back;
    round_trip(&a, q, &o, &body, &back);

    assert_str_eq(back.model, q->model);
    assert_parts_eq(back.system, back.nsystem, q->system, q->nsystem);
    /* The tool turn's two results come back as two tool messages, which
     * is how Chat Completions carries them. */
    assert_int_equal(back.nmessages, q->nmessages + 1);
    /* Thinking has no field in Chat Completions: the assistant turn comes
     * back without it. */
    assert_parts_eq(back.messages[0].parts, back.messages[0].nparts,
                    q->messages[0].parts, q->messages[0].nparts);
    assert_str_eq(back.messages[0].name, PG_STR("alice"));
    assert_parts_eq(back.messages[1].parts, back.messages[1].nparts,
                    q->messages[1].parts + 1, q->messages[1].nparts - 1);
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(back.messages[2 + k].role, PG_ROLE_TOOL);
        assert_parts_eq(back.messages[2 + k].parts,
                        back.messages[2 + k].nparts,
                        q->messages[2].parts + k, 1);
    }
    assert_int_equal(back.messages[4].role, PG_ROLE_ASSISTANT);
    assert_parts_eq(back.messages[4].parts, back.messages[4].nparts,
                    q->messages[3].parts, q->messages[3].nparts);
    assert_int_equal(back.ntools, 2);
    assert_str_eq(back.tools[0].name, q->tools[0].name);
    assert_str_eq(back.tools[0].description, q->tools[0].description);
    assert_str_eq(back.tools[0].parameters, q->tools[0].parameters);
    assert_str_eq(back.tools[1].name, q->tools[1].name);
    assert_str_eq(back.tools[1].parameters,
                  PG_STR("{\"type\":\"object\",\"properties\":{}}"));
    assert_int_equal(back.tool_choice, PG_TOOL_CHOICE_NAMED);
    assert_str_eq(back.tool_choice_name, q->tool_choice_name);
    /* Every set bit but top_k's survives, explicit zeros included. */
    assert_int_equal(back.set, q->set & ~PG_SET_TOP_K);
    assert_true(back.temperature == 0);
    assert_true(back.top_p == 0.9);
    assert_true(back.presence_penalty == -0.5);
    assert_true(back.frequency_penalty == 0);
    assert_int_equal(back.max_tokens, 256);
    assert_int_equal(back.seed, 0);
    assert_int_equal(back.n, 1);
    assert_false(back.parallel_tool_calls);
    assert_int_equal(back.nstop, 2);
    assert_str_eq(back.stop[0], q->stop[0]);
    assert_str_eq(back.stop[1], q->stop[1]);
    assert_int_equal(back.response_format, PG_FORMAT_JSON_SCHEMA);
    assert_str_eq(back.response_schema, q->response_schema);
    assert_str_eq(back.reasoning_effort, q->reasoning_effort);
    assert_str_eq(back.user, q->user);
    assert_true(back.stream);
    assert_true(back.include_usage);
    assert_int_equal(back.nunmapped, 0);
    assert_null(strstr(body.p, "top_k"));
    assert_null(strstr(body.p, "hmm"));
    assert_non_null(strstr(body.p, "\"temperature\":0,"));
    assert_non_null(strstr(body.p, "\"max_tokens\":256"));
    pg_buf_free(&body);
    pg_arena_destroy(&a);
}

static void test_encode_exact_small(void **state)
{
    (void)state;
    pg_part_t text = {.kind = PG_PART_TEXT, .text = PG_STR("Hi")};
    pg_message_t m = {.role = PG_ROLE_USER, .parts = &text, .nparts = 1};
    pg_request_t q = {.model = PG_STR("gpt-4o-mini"), .messages = &m,
                      .nmessages = 1, .set = PG_SET_MAX_TOKENS,
                      .max_tokens = 5, .top_p = 0.5 /* bit unset */};
    pg_openai_req_opts_t o = {.max_completion_tokens = true};
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, &o, NULL), PG_OK);
    assert_string_equal(b.p, "{\"model\":\"gpt-4o-mini\",\"messages\":["
                             "{\"role\":\"user\",\"content\":\"Hi\"}],"
                             "\"max_completion_tokens\":5}");
    /* Stream without include_usage: no stream_options. */
    pg_buf_reset(&b);
    o = (pg_openai_req_opts_t){.stream = true};
    q.set = 0;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, &o, NULL), PG_OK);
    assert_string_equal(b.p, "{\"model\":\"gpt-4o-mini\",\"messages\":["
                             "{\"role\":\"user\",\"content\":\"Hi\"}],"
                             "\"stream\":true}");
    pg_buf_free(&b);
}

/* Anthropic-style turns: tool results inside a user message become tool
 * messages, in order, around the user's own parts; a refusal is sent as
 * assistant text. */
static void test_encode_anthropic_shapes(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_part_t res_text = {.kind = PG_PART_TEXT, .text = PG_STR("ok")};
    pg_part_t asst[] = {
        {.kind = PG_PART_REFUSAL, .text = PG_STR("I can't.")},
        {.kind = PG_PART_REDACTED_THINKING, .text = PG_STR("opaque")},
    };
    pg_part_t call = {.kind = PG_PART_TOOL_CALL,
                      .tool_call = {.id = PG_STR("t1"), .name = PG_STR("f")}};
    pg_part_t user[] = {
        {.kind = PG_PART_TOOL_RESULT,
         .tool_result = {.call_id = PG_STR("t1"), .content = &res_text,
                         .ncontent = 1, .is_error = true}},
        {.kind = PG_PART_TEXT, .text = PG_STR("and now?")},
    };
    pg_message_t msgs[] = {
        {.role = PG_ROLE_ASSISTANT, .parts = asst, .nparts = 2},
        {.role = PG_ROLE_ASSISTANT, .parts = &call, .nparts = 1},
        {.role = PG_ROLE_USER, .parts = user, .nparts = 2},
    };
    pg_request_t q = {.model = PG_STR("m"), .messages = msgs,
                      .nmessages = 3};
    pg_buf_t body;
    pg_request_t back;
    round_trip(&a, &q, NULL, &body, &back);
    assert_int_equal(back.nmessages, 4);
    assert_int_equal(back.messages[0].role, PG_ROLE_ASSISTANT);
    assert_int_equal(back.messages[0].nparts, 1);
    assert_int_equal(back.messages[0].parts[0].kind, PG_PART_TEXT);
    assert_str_eq(back.messages[0].parts[0].text, PG_STR("I can't."));
    /* Empty arguments go out as an empty object. */
    assert_str_eq(back.messages[1].parts[0].tool_call.arguments,
                  PG_STR("{}"));
    assert_int_equal(back.messages[2].role, PG_ROLE_TOOL);
    assert_str_eq(back.messages[2].parts[0].tool_result.call_id,
                  PG_STR("t1"));
    assert_int_equal(back.messages[3].role, PG_ROLE_USER);
    assert_str_eq(back.messages[3].parts[0].text, PG_STR("and now?"));
    assert_null(strstr(body.p, "opaque"));
    assert_non_null(strstr(body.p, "\"content\":null,\"tool_calls\""));
    pg_buf_free(&body);
    pg_arena_destroy(&a);
}

static void test_encode_unsupported(void **state)
{
    (void)state;
    pg_part_t img = {.kind = PG_PART_IMAGE,
                     .image = {.url = PG_STR("https://x/y.png")}};
    pg_part_t res = {.kind = PG_PART_TOOL_RESULT,
                     .tool_result = {.call_id = PG_STR("c"), .content = &img,
                                     .ncontent = 1}};
    pg_message_t m = {.role = PG_ROLE_TOOL, .parts = &res, .nparts = 1};
    pg_request_t q = {.model = PG_STR("m"), .messages = &m, .nmessages = 1};
    pg_buf_t b;
    pg_buf_init(&b, 0);
    const char *why = NULL;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, NULL, &why),
                     PG_EUNSUPPORTED);
    assert_non_null(why);
    assert_non_null(strstr(why, "tool result"));

    /* The same inside a user turn (Anthropic shape). */
    m.role = PG_ROLE_USER;
    pg_buf_reset(&b);
    why = NULL;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, NULL, &why),
                     PG_EUNSUPPORTED);
    assert_non_null(why);

    /* An image in an assistant turn. */
    pg_message_t am = {.role = PG_ROLE_ASSISTANT, .parts = &img,
                       .nparts = 1};
    q.messages = &am;
    pg_buf_reset(&b);
    why = NULL;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, NULL, &why),
                     PG_EUNSUPPORTED);
    assert_non_null(why);

    /* Tool parameters that are not a JSON object. */
    pg_part_t t = {.kind = PG_PART_TEXT, .text = PG_STR("x")};
    pg_message_t um = {.role = PG_ROLE_USER, .parts = &t, .nparts = 1};
    pg_tool_t tool = {.name = PG_STR("f"), .parameters = PG_STR("[1")};
    q.messages = &um;
    q.tools = &tool;
    q.ntools = 1;
    pg_buf_reset(&b);
    why = NULL;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, NULL, &why),
                     PG_EUNSUPPORTED);
    assert_non_null(why);

    /* base64 data with a quote would break out of the data URL. */
    pg_part_t bad = {.kind = PG_PART_IMAGE,
                     .image = {.media_type = PG_STR("image/png"),
                               .data = PG_STR("AAA\",\"x")}};
    um.parts = &bad;
    q.ntools = 0;
    pg_buf_reset(&b);
    why = NULL;
    assert_int_equal(pg_openai_chat_encode_request(&b, &q, NULL, &why),
                     PG_EUNSUPPORTED);
    assert_non_null(why);
    pg_buf_free(&b);
}

static void test_encode_too_big(void **state)
{
    (void)state;
    const pg_request_t *q = full_request();
    for (size_t cap = 1; cap < 200; cap += 7) {
        pg_buf_t b;
        pg_buf_init(&b, cap);
        assert_int_equal(pg_openai_chat_encode_request(&b, q, NULL, NULL),
                         PG_ETOOBIG);
        pg_buf_free(&b);
    }
}


/* ---- allocation failures ------------------------------------------------------- */

/* Fails each allocation of a whole stream and of the request encoder in
 * turn: every run must end cleanly (a failure code, never a crash) and
 * free everything. A failed JSON parse cannot tell OOM from bad input
 * (the arena parser returns NULL for both), so PG_EPARSE is allowed. */
static void test_oom_sweep(void **state)
{
    (void)state;
    size_t n;
    char *in = read_fixture("stream_tool_call.sse", &n);
    char *want = read_fixture("stream_tool_call.events", &n);
    n = strlen(in);
    oom_install();
    bool completed = false;
    long target;
    for (target = 0; target < 400 && !completed; target++) {
        struct render r;
        render_init(&r);
        /* The renderer's own buffer must not take the failures. */
        assert_int_equal(pg_buf_reserve(&r.out, 4096), PG_OK);
        long before = oom_live();
        oom_arm(target);
        run_stream(in, n, SPLIT_WHOLE, &r);
        oom_arm(-1);
        completed = strcmp(r.out.p, want) == 0;
        if (!completed &&
            strstr(r.out.p, "PG_ENOMEM") == NULL &&
            strstr(r.out.p, "PG_EPARSE") == NULL)
            fail_msg("fail_at %ld: %s", target, r.out.p);
        render_free(&r);
        assert_int_equal(oom_live(), before - 1);
    }
    assert_true(completed);
    assert_true(target > 3); /* runs with a failure came first */

    const pg_request_t *q = full_request();
    completed = false;
    for (target = 0; target < 400 && !completed; target++) {
        long before = oom_live();
        oom_arm(target);
        pg_buf_t b;
        pg_buf_init(&b, 0);
        const char *why = NULL;
        int rc = pg_openai_chat_encode_request(&b, q, NULL, &why);
        completed = rc == PG_OK;
        if (rc != PG_OK && rc != PG_ENOMEM && rc != PG_EUNSUPPORTED)
            fail_msg("fail_at %ld: %s", target, pg_err_name(rc));
        pg_buf_free(&b);
        assert_int_equal(oom_live(), before);
    }
    assert_true(completed);
    assert_true(target > 3);
    oom_uninstall();
    free(in);
    free(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_call),
        cmocka_unit_test(test_stream_parallel_tools),
        cmocka_unit_test(test_stream_usage_details),
        cmocka_unit_test(test_stream_length),
        cmocka_unit_test(test_stream_content_filter),
        cmocka_unit_test(test_stream_refusal),
        cmocka_unit_test(test_stream_error_midstream),
        cmocka_unit_test(test_stream_error_first),
        cmocka_unit_test(test_stream_truncated),
        cmocka_unit_test(test_stream_invalid_json),
        cmocka_unit_test(test_stream_n2),
        cmocka_unit_test(test_stream_text_then_tool),
        cmocka_unit_test(test_stream_delta_after_finish),
        cmocka_unit_test(test_stream_tool_without_id),
        cmocka_unit_test(test_stream_usage_on_finish),
        cmocka_unit_test(test_stream_done_without_finish),
        cmocka_unit_test(test_stream_cut_mid_line),
        cmocka_unit_test(test_completion_text),
        cmocka_unit_test(test_completion_tool_calls),
        cmocka_unit_test(test_completion_refusal),
        cmocka_unit_test(test_completion_length),
        cmocka_unit_test(test_whole_errors),
        cmocka_unit_test(test_sink_return_propagates),
        cmocka_unit_test(test_failed_decoder_stays_failed),
        cmocka_unit_test(test_tool_index_bounds),
        cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_exact_small),
        cmocka_unit_test(test_encode_anthropic_shapes),
        cmocka_unit_test(test_encode_unsupported),
        cmocka_unit_test(test_encode_too_big),
        cmocka_unit_test(test_oom_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
