/* test_openai_chat.c: Chat Completions decode, encode and stream encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/json.h"
#include "base/str.h"
#include "codec/openai_chat.h"
#include "unit_fixture.h"

static int decode(const char *json, pg_request_t *q, pg_openai_decode_err_t *e)
{
    cJSON *root = pg_json_parse(pg_str_c(json), NULL);
    assert_non_null(root);
    int rc = pg_openai_chat_decode(&unit_arena, root, q, e);
    cJSON_Delete(root);
    return rc;
}

static void expect_err(const char *json, const char *param, const char *code)
{
    pg_request_t q;
    pg_openai_decode_err_t e;
    int rc = decode(json, &q, &e);
    if (rc != PG_EPARSE)
        fail_msg("expected an error for %s", json);
    assert_int_equal(e.status, 400);
    if (param == NULL) {
        assert_null(e.param.p);
    } else if (!pg_str_eqc(e.param, param)) {
        fail_msg("param '%.*s' != '%s' (%.*s)", (int)e.param.n, e.param.p,
                 param, (int)e.message.n, e.message.p);
    }
    if (code)
        assert_str(e.code, code);
    assert_true(e.message.n > 0);
}

static void test_decode_basic(void **state)
{
    (void)state;
    pg_request_t q;
    pg_openai_decode_err_t e;
    const char *json =
        "{\"model\":\"gpt-4o\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"sys one\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"dev two\"}]},"
        "{\"role\":\"user\",\"name\":\"bob\",\"content\":\"hi\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
        "\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"42\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,AAAA\"}},{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"https://x.test/a.png\",\"detail\":\"low\"}}"
        "]}],"
        "\"temperature\":0,\"top_p\":0.5,\"presence_penalty\":-1,"
        "\"frequency_penalty\":1.5,\"seed\":7,\"n\":1,\"max_tokens\":10,"
        "\"max_completion_tokens\":20,\"stop\":[\"x\",\"y\"],\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{"
        "\"name\":\"s\",\"schema\":{\"type\":\"object\"}}},"
        "\"reasoning_effort\":\"low\",\"user\":\"u1\","
        "\"parallel_tool_calls\":false,"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"description\":\"does f\",\"parameters\":{\"type\": \"object\"}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"logit_bias\":{},\"store\":true}";
    assert_int_equal(decode(json, &q, &e), PG_OK);
    assert_str(q.model, "gpt-4o");
    assert_int_equal(q.nsystem, 2);
    assert_str(q.system[0].text, "sys one");
    assert_str(q.system[1].text, "dev two");
    assert_int_equal(q.nmessages, 4);
    assert_int_equal(q.messages[0].role, PG_ROLE_USER);
    assert_str(q.messages[0].name, "bob");
    assert_str(q.messages[0].parts[0].text, "hi");
    assert_int_equal(q.messages[1].role, PG_ROLE_ASSISTANT);
    assert_int_equal(q.messages[1].nparts, 1);
    assert_int_equal(q.messages[1].parts[0].kind, PG_PART_TOOL_CALL);
    assert_str(q.messages[1].parts[0].tool_call.id, "call_1");
    assert_str(q.messages[1].parts[0].tool_call.name, "f");
    assert_str(q.messages[1].parts[0].tool_call.arguments, "{\"a\":1}");
    assert_int_equal(q.messages[2].role, PG_ROLE_TOOL);
    assert_int_equal(q.messages[2].parts[0].kind, PG_PART_TOOL_RESULT);
    assert_str(q.messages[2].parts[0].tool_result.call_id, "call_1");
    assert_int_equal(q.messages[2].parts[0].tool_result.ncontent, 1);
    assert_str(q.messages[2].parts[0].tool_result.content[0].text, "42");
    const pg_message_t *m = &q.messages[3];
    assert_int_equal(m->nparts, 3);
    assert_int_equal(m->parts[1].kind, PG_PART_IMAGE);
    assert_str(m->parts[1].image.media_type, "image/png");
    assert_str(m->parts[1].image.data, "AAAA");
    assert_int_equal(m->parts[1].image.url.n, 0);
    assert_str(m->parts[2].image.url, "https://x.test/a.png");
    uint32_t all = PG_SET_TEMPERATURE | PG_SET_TOP_P | PG_SET_SEED |
                   PG_SET_N | PG_SET_MAX_TOKENS | PG_SET_PRESENCE_PENALTY |
                   PG_SET_FREQUENCY_PENALTY | PG_SET_PARALLEL_TOOL_CALLS;
    assert_int_equal(q.set, all);
    assert_true(q.temperature == 0.0);
    assert_true(q.top_p == 0.5);
    assert_true(q.presence_penalty == -1.0);
    assert_true(q.frequency_penalty == 1.5);
    assert_int_equal(q.seed, 7);
    assert_int_equal(q.n, 1);
    assert_int_equal(q.max_tokens, 20);
    assert_false(q.parallel_tool_calls);
    assert_int_equal(q.nstop, 2);
    assert_str(q.stop[1], "y");
    assert_true(q.stream);
    assert_true(q.include_usage);
    assert_int_equal(q.response_format, PG_FORMAT_JSON_SCHEMA);
    assert_str(q.response_schema,
               "{\"name\":\"s\",\"schema\":{\"type\":\"object\"}}");
    assert_str(q.reasoning_effort, "low");
    assert_str(q.user, "u1");
    assert_int_equal(q.ntools, 1);
    assert_str(q.tools[0].name, "f");
    assert_str(q.tools[0].description, "does f");
    assert_str(q.tools[0].parameters, "{\"type\":\"object\"}");
    assert_int_equal(q.tool_choice, PG_TOOL_CHOICE_NAMED);
    assert_str(q.tool_choice_name, "f");
    assert_int_equal(q.nunmapped, 2);
    assert_str(q.unmapped[0], "logit_bias");
    assert_str(q.unmapped[1], "store");
}

static void test_decode_minimal(void **state)
{
    (void)state;
    pg_request_t q;
    pg_openai_decode_err_t e;
    assert_int_equal(decode("{\"messages\":[{\"role\":\"user\",\"content\":"
                            "\"x\"}],\"stop\":\"END\",\"tool_choice\":"
                            "\"required\",\"temperature\":null,"
                            "\"response_format\":{\"type\":\"json_object\"}}",
                            &q, &e),
                     PG_OK);
    assert_int_equal(q.model.n, 0);
    assert_int_equal(q.set, 0);
    assert_int_equal(q.nstop, 1);
    assert_str(q.stop[0], "END");
    assert_int_equal(q.tool_choice, PG_TOOL_CHOICE_REQUIRED);
    assert_int_equal(q.response_format, PG_FORMAT_JSON_OBJECT);
    assert_false(q.stream);
    assert_int_equal(q.nunmapped, 0);
    assert_int_equal(decode("{\"messages\":[{\"role\":\"user\",\"content\":"
                            "\"x\"}],\"max_tokens\":5,\"tool_choice\":"
                            "\"none\"}", &q, &e), PG_OK);
    assert_int_equal(q.max_tokens, 5);
    assert_int_equal(q.set, PG_SET_MAX_TOKENS);
    assert_int_equal(q.tool_choice, PG_TOOL_CHOICE_NONE);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

static void test_decode_errors(void **state)
{
    (void)state;
    expect_err("[]", NULL, "invalid_type");
    expect_err("{}", "messages", "missing_required_parameter");
    expect_err("{\"messages\":[]}", "messages", "empty_array");
    expect_err("{\"messages\":{}}", "messages", "invalid_type");
    expect_err("{\"messages\":[1]}", "messages[0]", "invalid_type");
    expect_err("{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role",
               "missing_required_parameter");
    expect_err("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
               "messages[0].role", "invalid_value");
    expect_err("{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content",
               "missing_required_parameter");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
               "messages[0].content", "invalid_type");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
               "{\"role\":\"user\",\"content\":\"b\"},{\"role\":\"user\","
               "\"content\":[{\"type\":\"audio\"}]}]}",
               "messages[2].content[0].type", "invalid_value");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":"
               "\"a\"}]}]}", "messages[0].content[0].type",
               "missing_required_parameter");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"text\",\"text\":3}]}]}", "messages[0].content[0].text",
               "invalid_type");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"image_url\",\"image_url\":{\"url\":\"ftp://x\"}}]}]}",
               "messages[0].content[0].image_url.url", "invalid_image_url");
    expect_err("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
               "\"image_url\",\"image_url\":{\"url\":\"data:image/png,AA\"}}"
               "]}]}", "messages[0].content[0].image_url.url",
               "invalid_image_url");
    expect_err("{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
               "messages[0].tool_call_id", "missing_required_parameter");
    expect_err("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{"
               "\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}]}",
               "messages[0].tool_calls[0].function.arguments",
               "missing_required_parameter");
    expect_err("{" MSG ",\"model\":5}", "model", "invalid_type");
    expect_err("{" MSG ",\"temperature\":\"hot\"}", "temperature",
               "invalid_type");
    expect_err("{" MSG ",\"temperature\":2.5}", "temperature",
               "decimal_above_max_value");
    expect_err("{" MSG ",\"top_p\":-0.1}", "top_p",
               "decimal_below_min_value");
    expect_err("{" MSG ",\"presence_penalty\":3}", "presence_penalty", NULL);
    expect_err("{" MSG ",\"frequency_penalty\":-3}", "frequency_penalty",
               NULL);
    expect_err("{" MSG ",\"seed\":1.5}", "seed", "invalid_type");
    expect_err("{" MSG ",\"n\":0}", "n", "integer_below_min_value");
    expect_err("{" MSG ",\"max_tokens\":\"5\"}", "max_tokens",
               "invalid_type");
    expect_err("{" MSG ",\"max_completion_tokens\":0}",
               "max_completion_tokens", NULL);
    expect_err("{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop",
               "array_above_max_length");
    expect_err("{" MSG ",\"stop\":[\"a\",1]}", "stop[1]", "invalid_type");
    expect_err("{" MSG ",\"stream\":\"yes\"}", "stream", "invalid_type");
    expect_err("{" MSG ",\"stream_options\":{\"include_usage\":true}}",
               "stream_options", NULL);
    expect_err("{" MSG ",\"stream\":true,\"stream_options\":{"
               "\"include_usage\":1}}", "stream_options.include_usage",
               "invalid_type");
    expect_err("{" MSG ",\"tools\":{}}", "tools", "invalid_type");
    expect_err("{" MSG ",\"tools\":[{\"type\":\"function\",\"function\":{"
               "\"name\":\"a\"}},{\"type\":\"code\"}]}", "tools[1].type",
               "invalid_value");
    expect_err("{" MSG ",\"tools\":[{\"type\":\"function\",\"function\":{}}"
               "]}", "tools[0].function.name", "missing_required_parameter");
    expect_err("{" MSG ",\"tools\":[{\"type\":\"function\",\"function\":{"
               "\"name\":\"a\",\"parameters\":[]}}]}",
               "tools[0].function.parameters", "invalid_type");
    expect_err("{" MSG ",\"tool_choice\":\"maybe\"}", "tool_choice",
               "invalid_value");
    expect_err("{" MSG ",\"tool_choice\":{\"type\":\"function\"}}",
               "tool_choice.function", "missing_required_parameter");
    expect_err("{" MSG ",\"parallel_tool_calls\":1}", "parallel_tool_calls",
               "invalid_type");
    expect_err("{" MSG ",\"response_format\":{\"type\":\"xml\"}}",
               "response_format.type", "invalid_value");
    expect_err("{" MSG ",\"response_format\":{\"type\":\"json_schema\"}}",
               "response_format.json_schema", "missing_required_parameter");
    expect_err("{" MSG ",\"user\":1}", "user", "invalid_type");
    expect_err("{" MSG ",\"reasoning_effort\":[]}", "reasoning_effort",
               "invalid_type");
}

/* ---- encode ---------------------------------------------------------------- */

static void feed_all(pg_canon_response_t *r, const pg_event_t *evs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pg_canon_response_add(r, &evs[i]), PG_OK);
    assert_int_equal(pg_canon_response_finish(r), PG_OK);
}

static cJSON *parse_buf(const pg_buf_t *b)
{
    cJSON *j = pg_json_parse(pg_buf_str(b), NULL);
    if (j == NULL)
        fail_msg("invalid JSON: %.*s", (int)b->n, b->p);
    return j;
}

static const cJSON *path(const cJSON *j, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, a);
    return b ? cJSON_GetObjectItemCaseSensitive(x, b) : x;
}

static void test_encode_text(void **state)
{
    (void)state;
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START, .id = PG_STR("x"), .model = PG_STR("m1"),
         .usage = {.input_tokens = 5}},
        {.kind = PG_EV_BLOCK_START, .block = PG_PART_TEXT},
        {.kind = PG_EV_TEXT_DELTA, .text = PG_STR("Hel")},
        {.kind = PG_EV_TEXT_DELTA, .text = PG_STR("lo \"q\"")},
        {.kind = PG_EV_BLOCK_STOP},
        {.kind = PG_EV_USAGE, .usage = {.output_tokens = 3,
                                        .cache_read_tokens = 2,
                                        .reasoning_tokens = 1}},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_MAX_TOKENS},
    };
    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    feed_all(&r, evs, sizeof(evs) / sizeof(evs[0]));
    pg_buf_t b;
    pg_buf_init(&b, 1 << 20);
    assert_int_equal(pg_openai_chat_encode(&b, &r, PG_STR("chatcmpl-1"), 123,
                                           PG_STR("m1")), PG_OK);
    cJSON *j = parse_buf(&b);
    assert_string_equal(path(j, "id", NULL)->valuestring, "chatcmpl-1");
    assert_string_equal(path(j, "object", NULL)->valuestring,
                        "chat.completion");
    assert_int_equal(path(j, "created", NULL)->valueint, 123);
    assert_string_equal(path(j, "model", NULL)->valuestring, "m1");
    assert_true(cJSON_IsNull(path(j, "system_fingerprint", NULL)));
    const cJSON *c0 = cJSON_GetArrayItem(path(j, "choices", NULL), 0);
    assert_int_equal(path(c0, "index", NULL)->valueint, 0);
    assert_string_equal(path(c0, "message", "role")->valuestring,
                        "assistant");
    assert_string_equal(path(c0, "message", "content")->valuestring,
                        "Hello \"q\"");
    assert_true(cJSON_IsNull(path(c0, "message", "refusal")));
    assert_null(path(c0, "message", "tool_calls"));
    assert_true(cJSON_IsArray(path(c0, "message", "annotations")));
    assert_true(cJSON_IsNull(path(c0, "logprobs", NULL)));
    assert_string_equal(path(c0, "finish_reason", NULL)->valuestring,
                        "length");
    const cJSON *u = path(j, "usage", NULL);
    assert_int_equal(path(u, "prompt_tokens", NULL)->valueint, 5);
    assert_int_equal(path(u, "completion_tokens", NULL)->valueint, 3);
    assert_int_equal(path(u, "total_tokens", NULL)->valueint, 8);
    assert_int_equal(path(u, "prompt_tokens_details", "cached_tokens")
                         ->valueint, 2);
    assert_int_equal(path(u, "completion_tokens_details",
                          "reasoning_tokens")->valueint, 1);
    cJSON_Delete(j);
    pg_buf_free(&b);
}

static void test_encode_tools(void **state)
{
    (void)state;
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START, .model = PG_STR("m")},
        {.kind = PG_EV_BLOCK_START, .index = 0, .block = PG_PART_TOOL_CALL,
         .id = PG_STR("call_a"), .name = PG_STR("fa")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 0, .text = PG_STR("{\"x\":")},
        {.kind = PG_EV_BLOCK_START, .index = 1, .block = PG_PART_TOOL_CALL,
         .id = PG_STR("call_b"), .name = PG_STR("fb")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 0, .text = PG_STR("1}")},
        {.kind = PG_EV_BLOCK_STOP, .index = 0},
        {.kind = PG_EV_BLOCK_STOP, .index = 1},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_TOOL_USE},
    };
    pg_canon_response_t r;
    pg_canon_response_init(&r, &unit_arena);
    feed_all(&r, evs, sizeof(evs) / sizeof(evs[0]));
    pg_buf_t b;
    pg_buf_init(&b, 1 << 20);
    assert_int_equal(pg_openai_chat_encode(&b, &r, PG_STR("c"), 1,
                                           PG_STR("m")), PG_OK);
    cJSON *j = parse_buf(&b);
    const cJSON *c0 = cJSON_GetArrayItem(path(j, "choices", NULL), 0);
    assert_true(cJSON_IsNull(path(c0, "message", "content")));
    assert_string_equal(path(c0, "finish_reason", NULL)->valuestring,
                        "tool_calls");
    const cJSON *tcs = path(c0, "message", "tool_calls");
    assert_int_equal(cJSON_GetArraySize(tcs), 2);
    const cJSON *t0 = cJSON_GetArrayItem(tcs, 0);
    assert_string_equal(path(t0, "id", NULL)->valuestring, "call_a");
    assert_string_equal(path(t0, "type", NULL)->valuestring, "function");
    assert_string_equal(path(t0, "function", "name")->valuestring, "fa");
    assert_string_equal(path(t0, "function", "arguments")->valuestring,
                        "{\"x\":1}");
    /* A call without argument deltas still carries valid JSON. */
    const cJSON *t1 = cJSON_GetArrayItem(tcs, 1);
    assert_string_equal(path(t1, "function", "arguments")->valuestring,
                        "{}");
    cJSON_Delete(j);
    pg_buf_free(&b);
}

static void test_error_json(void **state)
{
    (void)state;
    pg_buf_t b;
    pg_buf_init(&b, 4096);
    assert_int_equal(pg_openai_error_json(&b, PG_STR("bad \"x\""),
                                          PG_STR("invalid_request_error"),
                                          PG_STR("messages"), PG_STR_NULL),
                     PG_OK);
    cJSON *j = parse_buf(&b);
    assert_string_equal(path(j, "error", "message")->valuestring,
                        "bad \"x\"");
    assert_string_equal(path(j, "error", "type")->valuestring,
                        "invalid_request_error");
    assert_string_equal(path(j, "error", "param")->valuestring, "messages");
    assert_true(cJSON_IsNull(path(j, "error", "code")));
    cJSON_Delete(j);
    pg_buf_free(&b);
}

/* ---- stream encoder ------------------------------------------------------------ */

struct chunks {
    cJSON *c[64];
    size_t n;
};

static int on_chunk(void *ud, pg_str_t payload)
{
    struct chunks *cs = ud;
    assert_true(cs->n < 64);
    cJSON *j = pg_json_parse(payload, NULL);
    if (j == NULL)
        fail_msg("bad chunk: %.*s", (int)payload.n, payload.p);
    cs->c[cs->n++] = j;
    return PG_OK;
}

static void chunks_free(struct chunks *cs)
{
    for (size_t i = 0; i < cs->n; i++)
        cJSON_Delete(cs->c[i]);
    cs->n = 0;
}

static void run_stream(const pg_event_t *evs, size_t n, bool usage,
                       struct chunks *cs, pg_openai_stream_state_t want)
{
    pg_openai_stream_enc_t e;
    pg_openai_stream_enc_init(&e, &unit_arena, PG_STR("chatcmpl-s"), 99,
                              PG_STR("m"), usage, 1 << 20);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pg_openai_stream_enc_feed(&e, &evs[i], on_chunk, cs),
                         PG_OK);
    assert_int_equal(e.state, want);
    pg_openai_stream_enc_destroy(&e);
}

static const cJSON *choice0(const cJSON *c)
{
    return cJSON_GetArrayItem(path(c, "choices", NULL), 0);
}

static void check_common(const struct chunks *cs, bool usage)
{
    for (size_t i = 0; i < cs->n; i++) {
        const cJSON *c = cs->c[i];
        assert_string_equal(path(c, "id", NULL)->valuestring, "chatcmpl-s");
        assert_string_equal(path(c, "object", NULL)->valuestring,
                            "chat.completion.chunk");
        assert_int_equal(path(c, "created", NULL)->valueint, 99);
        assert_string_equal(path(c, "model", NULL)->valuestring, "m");
        assert_true(cJSON_IsNull(path(c, "system_fingerprint", NULL)));
        const cJSON *u = path(c, "usage", NULL);
        if (!usage) {
            assert_null(u);
            continue;
        }
        bool last = i + 1 == cs->n;
        if (last) {
            assert_int_equal(cJSON_GetArraySize(path(c, "choices", NULL)), 0);
            assert_true(cJSON_IsObject(u));
        } else {
            assert_true(cJSON_IsNull(u));
        }
        if (last)
            continue;
        const cJSON *ch = choice0(c);
        assert_int_equal(path(ch, "index", NULL)->valueint, 0);
        assert_true(cJSON_IsNull(path(ch, "logprobs", NULL)));
    }
}

static void test_stream_text(void **state)
{
    (void)state;
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START, .usage = {.input_tokens = 4}},
        {.kind = PG_EV_BLOCK_START, .block = PG_PART_TEXT},
        {.kind = PG_EV_TEXT_DELTA, .text = PG_STR("Hi")},
        {.kind = PG_EV_TEXT_DELTA, .text = PG_STR(" there")},
        {.kind = PG_EV_BLOCK_STOP},
        {.kind = PG_EV_USAGE, .usage = {.output_tokens = 2}},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_END_TURN},
    };
    for (int usage = 0; usage <= 1; usage++) {
        struct chunks cs = {0};
        run_stream(evs, 7, usage, &cs, PG_OAI_STREAM_DONE);
        assert_int_equal(cs.n, usage ? 5 : 4);
        check_common(&cs, usage);
        const cJSON *d0 = path(choice0(cs.c[0]), "delta", NULL);
        assert_string_equal(path(d0, "role", NULL)->valuestring, "assistant");
        assert_string_equal(path(d0, "content", NULL)->valuestring, "");
        assert_true(cJSON_IsNull(path(choice0(cs.c[0]), "finish_reason",
                                      NULL)));
        assert_string_equal(path(choice0(cs.c[1]), "delta", "content")
                                ->valuestring, "Hi");
        assert_null(path(choice0(cs.c[1]), "delta", "role"));
        assert_string_equal(path(choice0(cs.c[2]), "delta", "content")
                                ->valuestring, " there");
        const cJSON *fin = choice0(cs.c[3]);
        assert_int_equal(cJSON_GetArraySize(path(fin, "delta", NULL)), 0);
        assert_string_equal(path(fin, "finish_reason", NULL)->valuestring,
                            "stop");
        if (usage) {
            const cJSON *u = path(cs.c[4], "usage", NULL);
            assert_int_equal(path(u, "prompt_tokens", NULL)->valueint, 4);
            assert_int_equal(path(u, "completion_tokens", NULL)->valueint, 2);
            assert_int_equal(path(u, "total_tokens", NULL)->valueint, 6);
        }
        chunks_free(&cs);
    }
}

static const cJSON *tc0(const cJSON *chunk)
{
    return cJSON_GetArrayItem(path(choice0(chunk), "delta", "tool_calls"), 0);
}

static void test_stream_tools(void **state)
{
    (void)state;
    /* Block 0 is text, blocks 1 and 2 are parallel tool calls whose
     * fragments interleave. */
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START},
        {.kind = PG_EV_BLOCK_START, .index = 0, .block = PG_PART_TEXT},
        {.kind = PG_EV_TEXT_DELTA, .index = 0, .text = PG_STR("ok")},
        {.kind = PG_EV_BLOCK_STOP, .index = 0},
        {.kind = PG_EV_BLOCK_START, .index = 1, .block = PG_PART_TOOL_CALL,
         .id = PG_STR("call_1"), .name = PG_STR("f1")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 1, .text = PG_STR("{\"a\"")},
        {.kind = PG_EV_BLOCK_START, .index = 2, .block = PG_PART_TOOL_CALL,
         .id = PG_STR("call_2"), .name = PG_STR("f2")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 2, .text = PG_STR("{}")},
        {.kind = PG_EV_TOOL_ARGS_DELTA, .index = 1, .text = PG_STR(":1}")},
        {.kind = PG_EV_BLOCK_STOP, .index = 1},
        {.kind = PG_EV_BLOCK_STOP, .index = 2},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_TOOL_USE},
    };
    struct chunks cs = {0};
    run_stream(evs, sizeof(evs) / sizeof(evs[0]), false, &cs,
               PG_OAI_STREAM_DONE);
    /* role, "ok", tc1 head, tc1 frag, tc2 head, tc2 frag, tc1 frag, fin */
    assert_int_equal(cs.n, 8);
    check_common(&cs, false);
    const cJSON *h1 = tc0(cs.c[2]);
    assert_int_equal(path(h1, "index", NULL)->valueint, 0);
    assert_string_equal(path(h1, "id", NULL)->valuestring, "call_1");
    assert_string_equal(path(h1, "type", NULL)->valuestring, "function");
    assert_string_equal(path(h1, "function", "name")->valuestring, "f1");
    assert_string_equal(path(h1, "function", "arguments")->valuestring, "");
    const cJSON *f1 = tc0(cs.c[3]);
    assert_int_equal(path(f1, "index", NULL)->valueint, 0);
    assert_null(path(f1, "id", NULL));
    assert_null(path(f1, "type", NULL));
    assert_null(path(f1, "function", "name"));
    assert_string_equal(path(f1, "function", "arguments")->valuestring,
                        "{\"a\"");
    const cJSON *h2 = tc0(cs.c[4]);
    assert_int_equal(path(h2, "index", NULL)->valueint, 1);
    assert_string_equal(path(h2, "id", NULL)->valuestring, "call_2");
    assert_int_equal(path(tc0(cs.c[5]), "index", NULL)->valueint, 1);
    const cJSON *f3 = tc0(cs.c[6]);
    assert_int_equal(path(f3, "index", NULL)->valueint, 0);
    assert_string_equal(path(f3, "function", "arguments")->valuestring,
                        ":1}");
    assert_string_equal(path(choice0(cs.c[7]), "finish_reason", NULL)
                            ->valuestring, "tool_calls");
    chunks_free(&cs);
}

static void test_stream_error(void **state)
{
    (void)state;
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START},
        {.kind = PG_EV_BLOCK_START, .block = PG_PART_TEXT},
        {.kind = PG_EV_TEXT_DELTA, .text = PG_STR("par")},
        {.kind = PG_EV_ERROR, .status = 529, .error_type =
         PG_STR("overloaded_error"), .text = PG_STR("busy")},
    };
    struct chunks cs = {0};
    run_stream(evs, 4, true, &cs, PG_OAI_STREAM_FAILED);
    assert_int_equal(cs.n, 3);
    const cJSON *err = path(cs.c[2], "error", NULL);
    assert_string_equal(path(err, "message", NULL)->valuestring, "busy");
    assert_string_equal(path(err, "type", NULL)->valuestring,
                        "overloaded_error");
    assert_true(cJSON_IsNull(path(err, "param", NULL)));
    assert_true(cJSON_IsNull(path(err, "code", NULL)));
    chunks_free(&cs);
}

static void test_stream_bad_order(void **state)
{
    (void)state;
    struct chunks cs = {0};
    pg_openai_stream_enc_t e;
    pg_event_t start = {.kind = PG_EV_MESSAGE_START};
    pg_event_t delta = {.kind = PG_EV_TEXT_DELTA, .index = 3,
                        .text = PG_STR("x")};
    pg_event_t stop = {.kind = PG_EV_MESSAGE_STOP};
    pg_event_t b0 = {.kind = PG_EV_BLOCK_START, .block = PG_PART_TEXT};
    pg_event_t s0 = {.kind = PG_EV_BLOCK_STOP};
    pg_openai_stream_enc_init(&e, &unit_arena, PG_STR("i"), 1, PG_STR("m"),
                              false, 4096);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &delta, on_chunk, &cs),
                     PG_EPARSE);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &start, on_chunk, &cs),
                     PG_OK);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &start, on_chunk, &cs),
                     PG_EPARSE);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &delta, on_chunk, &cs),
                     PG_EPARSE);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &b0, on_chunk, &cs), PG_OK);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &s0, on_chunk, &cs), PG_OK);
    /* A block index is never started twice, even after its stop. */
    assert_int_equal(pg_openai_stream_enc_feed(&e, &b0, on_chunk, &cs),
                     PG_EPARSE);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &stop, on_chunk, &cs),
                     PG_OK);
    assert_int_equal(pg_openai_stream_enc_feed(&e, &stop, on_chunk, &cs),
                     PG_EPARSE);
    pg_openai_stream_enc_destroy(&e);
    chunks_free(&cs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_decode_basic, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_decode_minimal, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_decode_errors, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_encode_text, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_encode_tools, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_error_json, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_stream_text, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_stream_tools, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_stream_error, unit_arena_setup,
                                        unit_arena_teardown),
        cmocka_unit_test_setup_teardown(test_stream_bad_order, unit_arena_setup,
                                        unit_arena_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
