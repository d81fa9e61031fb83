/* test_anthropic_messages.c: the client-side Anthropic Messages codec.
 * Decoding of every request field (fixture full_request.json in the
 * directory given as argv[1]) and of every refusal with its field; the
 * whole-message encoder read back with cJSON; the stream encoder's event
 * sequences, byte-exact; and a round trip canonical events -> stream
 * encoder -> the upstream stream decoder -> the same canonical response. */
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
#include "codec/anthropic_messages.h"
#include "codec/anthropic_upstream.h"
#include "oom_alloc.h"
#include "test_client.h"
#include "unit_fixture.h"

static const char *fixdir = "tests/fixtures/anthropic_client";

static char *read_fixture(const char *name, size_t *len)
{
    char *p = tc_read_file(fixdir, name, len);
    if (p == NULL)
        fail_msg("cannot open fixture %s/%s", fixdir, name);
    return p;
}

static int decode(pg_arena_t *a, const char *json, size_t n, pg_request_t *q,
                  pg_anthropic_decode_err_t *err)
{
    cJSON *root = pg_json_parse_arena(a, pg_str(json, n), NULL);
    if (root == NULL)
        fail_msg("test JSON does not parse: %s", json);
    return pg_anthropic_messages_decode(a, root, q, err);
}

/* ---- decoding ----------------------------------------------------------- */

static void test_decode_full(void **state)
{
    (void)state;
    size_t n;
    char *json = read_fixture("full_request.json", &n);
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_request_t q;
    pg_anthropic_decode_err_t err;
    assert_int_equal(decode(&a, json, n, &q, &err), PG_OK);

    assert_str(q.model, "claude-sonnet-4-5");
    assert_true(q.set & PG_SET_MAX_TOKENS);
    assert_int_equal(q.max_tokens, 2048);
    assert_int_equal(q.nsystem, 2);
    assert_int_equal(q.system[0].kind, PG_PART_TEXT);
    assert_str(q.system[0].text, "You are terse.");
    assert_str(q.system[1].text, "Answer in English.");

    assert_int_equal(q.nmessages, 3);
    const pg_message_t *m = &q.messages[0];
    assert_int_equal(m->role, PG_ROLE_USER);
    assert_int_equal(m->nparts, 1);
    assert_int_equal(m->parts[0].kind, PG_PART_TEXT);
    assert_str(m->parts[0].text, "What is the weather in Paris?");

    m = &q.messages[1];
    assert_int_equal(m->role, PG_ROLE_ASSISTANT);
    assert_int_equal(m->nparts, 5);
    assert_int_equal(m->parts[0].kind, PG_PART_THINKING);
    assert_str(m->parts[0].text, "I should call the tool.");
    assert_str(m->parts[0].signature, "EqQBCgIYAhIM+/sig==");
    assert_int_equal(m->parts[1].kind, PG_PART_REDACTED_THINKING);
    assert_str(m->parts[1].text, "opaque+blob==");
    assert_int_equal(m->parts[2].kind, PG_PART_TEXT);
    assert_str(m->parts[2].text, "Let me check.");
    assert_int_equal(m->parts[3].kind, PG_PART_TOOL_CALL);
    assert_str(m->parts[3].tool_call.id, "toolu_01");
    assert_str(m->parts[3].tool_call.name, "get_weather");
    assert_str(m->parts[3].tool_call.arguments,
               "{\"city\":\"Paris\",\"units\":[\"c\"]}");
    assert_int_equal(m->parts[4].kind, PG_PART_TOOL_CALL);
    assert_str(m->parts[4].tool_call.arguments, "{}");

    /* Tool results stay in the user turn, in order, before its text. */
    m = &q.messages[2];
    assert_int_equal(m->role, PG_ROLE_USER);
    assert_int_equal(m->nparts, 4);
    const pg_part_t *tr = &m->parts[0];
    assert_int_equal(tr->kind, PG_PART_TOOL_RESULT);
    assert_str(tr->tool_result.call_id, "toolu_01");
    assert_false(tr->tool_result.is_error);
    assert_int_equal(tr->tool_result.ncontent, 1);
    assert_str(tr->tool_result.content[0].text, "18C, cloudy");
    tr = &m->parts[1];
    assert_int_equal(tr->kind, PG_PART_TOOL_RESULT);
    assert_str(tr->tool_result.call_id, "toolu_02");
    assert_true(tr->tool_result.is_error);
    assert_int_equal(tr->tool_result.ncontent, 2);
    assert_str(tr->tool_result.content[0].text, "clock broken");
    assert_int_equal(tr->tool_result.content[1].kind, PG_PART_IMAGE);
    assert_str(tr->tool_result.content[1].image.url,
               "https://example.com/clock.png");
    assert_int_equal(m->parts[2].kind, PG_PART_TEXT);
    assert_str(m->parts[2].text, "And a picture?");
    assert_int_equal(m->parts[3].kind, PG_PART_IMAGE);
    assert_str(m->parts[3].image.media_type, "image/png");
    assert_str(m->parts[3].image.data, "iVBORw0KGgo=");
    assert_int_equal(m->parts[3].image.url.n, 0);

    assert_int_equal(q.ntools, 2);
    assert_str(q.tools[0].name, "get_weather");
    assert_str(q.tools[0].description, "Weather by city");
    assert_str(q.tools[0].parameters,
               "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
               "\"string\"}},\"required\":[\"city\"]}");
    assert_str(q.tools[1].name, "get_time");
    assert_int_equal(q.tools[1].description.n, 0);
    assert_str(q.tools[1].parameters, "{\"type\":\"object\"}");

    assert_int_equal(q.tool_choice, PG_TOOL_CHOICE_NAMED);
    assert_str(q.tool_choice_name, "get_weather");
    assert_true(q.set & PG_SET_PARALLEL_TOOL_CALLS);
    assert_false(q.parallel_tool_calls);

    assert_int_equal(q.nstop, 2);
    assert_str(q.stop[0], "\n\nHuman:");
    assert_str(q.stop[1], "END");
    /* An explicit 0 survives: the bit says it was given. */
    assert_true(q.set & PG_SET_TEMPERATURE);
    assert_true(q.temperature == 0.0);
    assert_true(q.set & PG_SET_TOP_P);
    assert_true(q.top_p == 0.9);
    assert_true(q.set & PG_SET_TOP_K);
    assert_int_equal(q.top_k, 40);
    assert_str(q.user, "user-1234");
    assert_true(q.stream);
    assert_str(q.reasoning_effort, "low");

    assert_int_equal(q.nunmapped, 2);
    assert_str(q.unmapped[0], "service_tier");
    assert_str(q.unmapped[1], "container");

    pg_arena_destroy(&a);
    free(json);
}

static void test_decode_minimal(void **state)
{
    (void)state;
    static const char json[] =
        "{\"model\":\"m\",\"max_tokens\":16,\"system\":\"be brief\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"temperature\":null,\"tool_choice\":{\"type\":\"any\"},"
        "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":20000}}";
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_request_t q;
    pg_anthropic_decode_err_t err;
    assert_int_equal(decode(&a, json, sizeof(json) - 1, &q, &err), PG_OK);
    assert_int_equal(q.nsystem, 1);
    assert_str(q.system[0].text, "be brief");
    assert_int_equal(q.set, PG_SET_MAX_TOKENS); /* null is "not given" */
    assert_false(q.stream);
    assert_int_equal(q.tool_choice, PG_TOOL_CHOICE_REQUIRED);
    assert_str(q.reasoning_effort, "high");
    assert_int_equal(q.nunmapped, 0);
    assert_int_equal(q.user.n, 0);
    pg_arena_destroy(&a);
}

/* thinking: each type and budget band -> the canonical effort. */
static void test_decode_thinking_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *th;
        const char *want; /* "" : none */
    } cases[] = {
        {"{\"type\":\"disabled\"}", ""},
        {"{\"type\":\"adaptive\"}", "medium"},
        {"{\"type\":\"enabled\",\"budget_tokens\":4096}", "low"},
        {"{\"type\":\"enabled\",\"budget_tokens\":4097}", "medium"},
        {"{\"type\":\"enabled\",\"budget_tokens\":16384}", "medium"},
        {"{\"type\":\"enabled\",\"budget_tokens\":16385}", "high"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[256];
        int n = snprintf(json, sizeof(json),
                         "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],"
                         "\"thinking\":%s}", cases[i].th);
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_request_t q;
        pg_anthropic_decode_err_t err;
        assert_int_equal(decode(&a, json, (size_t)n, &q, &err), PG_OK);
        assert_str(q.reasoning_effort, cases[i].want);
        pg_arena_destroy(&a);
    }
}

static void test_decode_tool_choice_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *tc;
        pg_tool_choice_t want;
    } cases[] = {
        {"{\"type\":\"auto\"}", PG_TOOL_CHOICE_AUTO},
        {"{\"type\":\"any\"}", PG_TOOL_CHOICE_REQUIRED},
        {"{\"type\":\"none\"}", PG_TOOL_CHOICE_NONE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char json[256];
        int n = snprintf(json, sizeof(json),
                         "{\"model\":\"m\",\"max_tokens\":1,\"messages\":[],"
                         "\"tool_choice\":%s}", cases[i].tc);
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_request_t q;
        pg_anthropic_decode_err_t err;
        assert_int_equal(decode(&a, json, (size_t)n, &q, &err), PG_OK);
        assert_int_equal(q.tool_choice, cases[i].want);
        assert_false(q.set & PG_SET_PARALLEL_TOOL_CALLS);
        pg_arena_destroy(&a);
    }
}

/* A valid request's members, to which one bad member is added. */
#define BASE "\"model\":\"m\",\"max_tokens\":16"
#define MSGS(c) "\"messages\":[{\"role\":\"user\",\"content\":" c "}]"
#define AMSGS(c)                                                             \
    "\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"                   \
    "{\"role\":\"assistant\",\"content\":" c "}]"

static const struct err_case {
    const char *body;
    int rc;
    const char *field; /* NULL: the body as a whole */
    const char *message;
} err_cases[] = {
    {"[1]", PG_EPARSE, NULL, "Input should be a valid dictionary"},
    {"{" MSGS("\"x\"") ",\"max_tokens\":5}", PG_EPARSE, "model",
     "model: Field required"},
    {"{\"model\":\"m\"," MSGS("\"x\"") "}", PG_EPARSE, "max_tokens",
     "max_tokens: Field required"},
    {"{\"model\":\"m\",\"max_tokens\":\"5\"," MSGS("\"x\"") "}", PG_EPARSE,
     "max_tokens", "max_tokens: Input should be a valid integer"},
    {"{\"model\":\"m\",\"max_tokens\":0," MSGS("\"x\"") "}", PG_EPARSE,
     "max_tokens", "max_tokens: Input should be greater than or equal to 1"},
    {"{\"model\":7,\"max_tokens\":1," MSGS("\"x\"") "}", PG_EPARSE, "model",
     "model: Input should be a valid string"},
    {"{" BASE "}", PG_EPARSE, "messages", "messages: Field required"},
    {"{" BASE ",\"messages\":{}}", PG_EPARSE, "messages",
     "messages: Input should be a valid list"},
    {"{" BASE ",\"messages\":[3]}", PG_EPARSE, "messages[0]",
     "messages.0: Input should be a valid dictionary"},
    {"{" BASE ",\"messages\":[{\"content\":\"x\"}]}", PG_EPARSE,
     "messages[0].role", "messages.0.role: Field required"},
    {"{" BASE ",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
     PG_EPARSE, "messages[0].role",
     "messages.0.role: Input should be 'user' or 'assistant'"},
    {"{" BASE ",\"messages\":[{\"role\":\"user\"}]}", PG_EPARSE,
     "messages[0].content", "messages.0.content: Field required"},
    {"{" BASE "," MSGS("5") "}", PG_EPARSE, "messages[0].content",
     "messages.0.content: Input should be a valid string or a valid list"},
    {"{" BASE ",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
     "{\"role\":\"assistant\",\"content\":\"b\"},{\"role\":\"user\","
     "\"content\":[{\"type\":\"bogus\"}]}]}",
     PG_EPARSE, "messages[2].content[0].type",
     "messages.2.content.0.type: Input should be 'text', 'image', "
     "'document' or 'tool_result'"},
    {"{" BASE "," MSGS("[{\"text\":\"x\"}]") "}", PG_EPARSE,
     "messages[0].content[0].type",
     "messages.0.content.0.type: Field required"},
    {"{" BASE "," MSGS("[{\"type\":\"text\"}]") "}", PG_EPARSE,
     "messages[0].content[0].text",
     "messages.0.content.0.text: Field required"},
    {"{" BASE "," MSGS("[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\","
                       "\"input\":{}}]") "}",
     PG_EPARSE, "messages[0].content[0].type", NULL},
    {"{" BASE "," AMSGS("[{\"type\":\"tool_result\",\"tool_use_id\":\"a\"}]")
     "}",
     PG_EPARSE, "messages[1].content[0].type",
     "messages.1.content.0.type: Input should be 'text', 'tool_use', "
     "'thinking' or 'redacted_thinking'"},
    {"{" BASE "," AMSGS("[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\","
                        "\"input\":[1]}]") "}",
     PG_EPARSE, "messages[1].content[0].input",
     "messages.1.content.0.input: Input should be a valid dictionary"},
    {"{" BASE "," AMSGS("[{\"type\":\"tool_use\",\"name\":\"b\","
                        "\"input\":{}}]") "}",
     PG_EPARSE, "messages[1].content[0].id", NULL},
    {"{" BASE "," AMSGS("[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":\"b\"}]")
     "}",
     PG_EPARSE, "messages[1].content[0].input", NULL},
    {"{" BASE "," AMSGS("[{\"type\":\"thinking\",\"thinking\":\"t\"}]") "}",
     PG_EPARSE, "messages[1].content[0].signature",
     "messages.1.content.0.signature: Field required"},
    {"{" BASE "," AMSGS("[{\"type\":\"redacted_thinking\"}]") "}", PG_EPARSE,
     "messages[1].content[0].data", NULL},
    {"{" BASE "," MSGS("[{\"type\":\"tool_result\"}]") "}", PG_EPARSE,
     "messages[0].content[0].tool_use_id", NULL},
    {"{" BASE "," MSGS("[{\"type\":\"tool_result\",\"tool_use_id\":\"a\","
                       "\"is_error\":1}]") "}",
     PG_EPARSE, "messages[0].content[0].is_error",
     "messages.0.content.0.is_error: Input should be a valid boolean"},
    {"{" BASE "," MSGS("[{\"type\":\"tool_result\",\"tool_use_id\":\"a\","
                       "\"content\":[{\"type\":\"tool_use\"}]}]") "}",
     PG_EPARSE, "messages[0].content[0].content[0].type",
     "messages.0.content.0.content.0.type: Input should be 'text' or "
     "'image'"},
    {"{" BASE "," MSGS("[{\"type\":\"image\",\"source\":{\"type\":\"file\"}}]")
     "}",
     PG_EPARSE, "messages[0].content[0].source.type",
     "messages.0.content.0.source.type: Input should be 'base64' or 'url'"},
    {"{" BASE "," MSGS("[{\"type\":\"image\",\"source\":{\"type\":\"base64\","
                       "\"media_type\":\"image/png\"}}]") "}",
     PG_EPARSE, "messages[0].content[0].source.data",
     "messages.0.content.0.source.data: Field required"},
    {"{" BASE "," MSGS("[{\"type\":\"image\"}]") "}", PG_EPARSE,
     "messages[0].content[0].source", NULL},
    {"{" BASE "," MSGS("[{\"type\":\"document\",\"source\":{}}]") "}",
     PG_EUNSUPPORTED, "messages[0].content[0].type",
     "messages.0.content.0.type: document blocks are not supported by this "
     "gateway"},
    {"{" BASE "," MSGS("\"x\"") ",\"system\":5}", PG_EPARSE, "system",
     "system: Input should be a valid string or a valid list"},
    {"{" BASE "," MSGS("\"x\"") ",\"system\":[{\"type\":\"image\"}]}",
     PG_EPARSE, "system[0].type", "system.0.type: Input should be 'text'"},
    {"{" BASE "," MSGS("\"x\"") ",\"tools\":{}}", PG_EPARSE, "tools", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"tools\":[{\"name\":\"a\"}]}", PG_EPARSE,
     "tools[0].input_schema", "tools.0.input_schema: Field required"},
    {"{" BASE "," MSGS("\"x\"") ",\"tools\":[{\"input_schema\":{}}]}",
     PG_EPARSE, "tools[0].name", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"tools\":[{\"name\":\"a\",\"description\":"
                                "1,\"input_schema\":{}}]}",
     PG_EPARSE, "tools[0].description", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"tools\":[{\"type\":\"web_search_20250305\","
                                "\"name\":\"web_search\"}]}",
     PG_EUNSUPPORTED, "tools[0].type", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"tool_choice\":\"auto\"}", PG_EPARSE,
     "tool_choice", "tool_choice: Input should be a valid dictionary"},
    {"{" BASE "," MSGS("\"x\"") ",\"tool_choice\":{\"type\":\"required\"}}",
     PG_EPARSE, "tool_choice.type",
     "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"},
    {"{" BASE "," MSGS("\"x\"") ",\"tool_choice\":{\"type\":\"tool\"}}",
     PG_EPARSE, "tool_choice.name", "tool_choice.name: Field required"},
    {"{" BASE "," MSGS("\"x\"") ",\"tool_choice\":{\"type\":\"auto\","
                                "\"disable_parallel_tool_use\":\"yes\"}}",
     PG_EPARSE, "tool_choice.disable_parallel_tool_use", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"stop_sequences\":\"END\"}", PG_EPARSE,
     "stop_sequences", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"stop_sequences\":[\"a\",2]}", PG_EPARSE,
     "stop_sequences[1]", "stop_sequences.1: Input should be a valid string"},
    {"{" BASE "," MSGS("\"x\"") ",\"temperature\":1.5}", PG_EPARSE,
     "temperature", "temperature: Input should be less than or equal to 1"},
    {"{" BASE "," MSGS("\"x\"") ",\"temperature\":\"hot\"}", PG_EPARSE,
     "temperature", "temperature: Input should be a valid number"},
    {"{" BASE "," MSGS("\"x\"") ",\"top_p\":-0.1}", PG_EPARSE, "top_p",
     "top_p: Input should be greater than or equal to 0"},
    {"{" BASE "," MSGS("\"x\"") ",\"top_k\":-1}", PG_EPARSE, "top_k", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"top_k\":1.5}", PG_EPARSE, "top_k",
     "top_k: Input should be a valid integer"},
    {"{" BASE "," MSGS("\"x\"") ",\"metadata\":[]}", PG_EPARSE, "metadata",
     NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"metadata\":{\"user_id\":5}}", PG_EPARSE,
     "metadata.user_id", "metadata.user_id: Input should be a valid string"},
    {"{" BASE "," MSGS("\"x\"") ",\"stream\":\"yes\"}", PG_EPARSE, "stream",
     "stream: Input should be a valid boolean"},
    {"{" BASE "," MSGS("\"x\"") ",\"thinking\":{\"type\":\"on\"}}", PG_EPARSE,
     "thinking.type",
     "thinking.type: Input should be 'enabled', 'adaptive' or 'disabled'"},
    {"{" BASE "," MSGS("\"x\"") ",\"thinking\":{\"type\":\"enabled\"}}",
     PG_EPARSE, "thinking.budget_tokens", NULL},
    {"{" BASE "," MSGS("\"x\"") ",\"thinking\":{\"type\":\"enabled\","
                                "\"budget_tokens\":100}}",
     PG_EPARSE, "thinking.budget_tokens",
     "thinking.budget_tokens: Input should be greater than or equal to "
     "1024"},
};

static void test_decode_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_request_t q;
        pg_anthropic_decode_err_t err;
        int rc = decode(&a, c->body, strlen(c->body), &q, &err);
        if (rc != c->rc)
            fail_msg("case %zu (%s): rc %s, want %s", i, c->body,
                     pg_err_name(rc), pg_err_name(c->rc));
        assert_int_equal(err.status, 400);
        assert_str(err.type, "invalid_request_error");
        if (c->field == NULL) {
            assert_null(err.field.p);
        } else if (!pg_str_eqc(err.field, c->field)) {
            fail_msg("case %zu: field %.*s, want %s", i, (int)err.field.n,
                     err.field.p ? err.field.p : "(null)", c->field);
        }
        if (c->message != NULL && !pg_str_eqc(err.message, c->message))
            fail_msg("case %zu: message \"%.*s\", want \"%s\"", i,
                     (int)err.message.n, err.message.p, c->message);
        /* Every message names its field, dotted, first. */
        assert_true(err.message.n > 0);
        pg_arena_destroy(&a);
    }
}

/* ---- events -------------------------------------------------------------- */

#define EV_START(i, m, in)                                                   \
    ((pg_event_t){.kind = PG_EV_MESSAGE_START, .id = PG_STR(i),             \
                  .model = PG_STR(m), .usage = {.input_tokens = (in)}})
#define EV_BLOCK(i, k) ((pg_event_t){.kind = PG_EV_BLOCK_START, .index = (i), \
                                     .block = (k)})
#define EV_TOOL(i, id_, name_)                                               \
    ((pg_event_t){.kind = PG_EV_BLOCK_START, .index = (i),                  \
                  .block = PG_PART_TOOL_CALL, .id = PG_STR(id_),            \
                  .name = PG_STR(name_)})
#define EV_DELTA(k, i, t) ((pg_event_t){.kind = (k), .index = (i),          \
                                        .text = PG_STR(t)})
#define EV_TEXT(i, t) EV_DELTA(PG_EV_TEXT_DELTA, i, t)
#define EV_ARGS(i, t) EV_DELTA(PG_EV_TOOL_ARGS_DELTA, i, t)
#define EV_THINK(i, t) EV_DELTA(PG_EV_THINKING_DELTA, i, t)
#define EV_SIG(i, t) EV_DELTA(PG_EV_SIGNATURE, i, t)
#define EV_BSTOP(i) ((pg_event_t){.kind = PG_EV_BLOCK_STOP, .index = (i)})
#define EV_USAGE(in, out, cr, cw)                                            \
    ((pg_event_t){.kind = PG_EV_USAGE,                                      \
                  .usage = {.input_tokens = (in), .output_tokens = (out),   \
                            .cache_read_tokens = (cr),                      \
                            .cache_write_tokens = (cw)}})
#define EV_STOP(r) ((pg_event_t){.kind = PG_EV_MESSAGE_STOP, .stop_reason = (r)})
#define EV_ERROR(st, t, msg)                                                 \
    ((pg_event_t){.kind = PG_EV_ERROR, .status = (st),                      \
                  .error_type = PG_STR(t), .text = PG_STR(msg)})

/* Builds a finished canonical response from events. */
static void canon_from(pg_canon_response_t *r, pg_arena_t *a,
                       const pg_event_t *evs, size_t n)
{
    pg_canon_response_init(r, a);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pg_canon_response_add(r, &evs[i]), PG_OK);
    assert_int_equal(pg_canon_response_finish(r), PG_OK);
}

/* ---- the whole message ------------------------------------------------- */

/* A message with thinking, text and a tool call; *n gets the count. */
#define MSG_EVENTS_N 14
static void msg_events(pg_event_t out[MSG_EVENTS_N])
{
    const pg_event_t evs[MSG_EVENTS_N] = {
    EV_START("up_1", "claude-x", 100),
    EV_BLOCK(0, PG_PART_THINKING),
    EV_THINK(0, "hmm"),
    EV_SIG(0, "sig/+=="),
    EV_BSTOP(0),
    EV_BLOCK(1, PG_PART_TEXT),
    EV_TEXT(1, "Hi \"you\""),
    EV_BSTOP(1),
    EV_TOOL(2, "toolu_9", "lookup"),
    EV_ARGS(2, "{\"q\":"),
    EV_ARGS(2, "[1,2]}"),
    EV_BSTOP(2),
    EV_USAGE(100, 42, 30, 20),
    EV_STOP(PG_STOP_TOOL_USE),
};
    memcpy(out, evs, sizeof(evs));
}

static void test_encode_message(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_canon_response_t r;
    pg_event_t evs[MSG_EVENTS_N];
    msg_events(evs);
    canon_from(&r, &a, evs, MSG_EVENTS_N);
    pg_buf_t b;
    pg_buf_init(&b, 1 << 16);
    assert_int_equal(pg_anthropic_messages_encode(&b, &r, PG_STR("msg_01"),
                                                  PG_STR("claude-alias")),
                     PG_OK);
    cJSON *js = cJSON_Parse(b.p);
    assert_non_null(js);
    assert_string_equal(cJSON_GetObjectItem(js, "id")->valuestring, "msg_01");
    assert_string_equal(cJSON_GetObjectItem(js, "type")->valuestring,
                        "message");
    assert_string_equal(cJSON_GetObjectItem(js, "role")->valuestring,
                        "assistant");
    assert_string_equal(cJSON_GetObjectItem(js, "model")->valuestring,
                        "claude-alias");
    assert_string_equal(cJSON_GetObjectItem(js, "stop_reason")->valuestring,
                        "tool_use");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(js, "stop_sequence")));
    const cJSON *content = cJSON_GetObjectItem(js, "content");
    assert_int_equal(cJSON_GetArraySize(content), 3);
    const cJSON *c0 = cJSON_GetArrayItem(content, 0);
    assert_string_equal(cJSON_GetObjectItem(c0, "type")->valuestring,
                        "thinking");
    assert_string_equal(cJSON_GetObjectItem(c0, "thinking")->valuestring,
                        "hmm");
    assert_string_equal(cJSON_GetObjectItem(c0, "signature")->valuestring,
                        "sig/+==");
    const cJSON *c1 = cJSON_GetArrayItem(content, 1);
    assert_string_equal(cJSON_GetObjectItem(c1, "type")->valuestring, "text");
    assert_string_equal(cJSON_GetObjectItem(c1, "text")->valuestring,
                        "Hi \"you\"");
    const cJSON *c2 = cJSON_GetArrayItem(content, 2);
    assert_string_equal(cJSON_GetObjectItem(c2, "type")->valuestring,
                        "tool_use");
    assert_string_equal(cJSON_GetObjectItem(c2, "id")->valuestring,
                        "toolu_9");
    assert_string_equal(cJSON_GetObjectItem(c2, "name")->valuestring,
                        "lookup");
    const cJSON *input = cJSON_GetObjectItem(c2, "input");
    assert_true(cJSON_IsObject(input));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(input, "q")), 2);
    const cJSON *u = cJSON_GetObjectItem(js, "usage");
    /* 100 in the whole prompt, of which 30 read and 20 written to cache. */
    assert_int_equal(cJSON_GetObjectItem(u, "input_tokens")->valueint, 50);
    assert_int_equal(cJSON_GetObjectItem(u, "output_tokens")->valueint, 42);
    assert_int_equal(
        cJSON_GetObjectItem(u, "cache_read_input_tokens")->valueint, 30);
    assert_int_equal(
        cJSON_GetObjectItem(u, "cache_creation_input_tokens")->valueint, 20);
    cJSON_Delete(js);
    pg_buf_free(&b);
    pg_arena_destroy(&a);
}

static void test_encode_message_stop_sequence(void **state)
{
    (void)state;
    pg_event_t evs[] = {
        EV_START("x", "m", 1), EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "a"),
        EV_BSTOP(0), EV_STOP(PG_STOP_STOP_SEQUENCE)};
    evs[4].stop_sequence = PG_STR("END");
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_canon_response_t r;
    canon_from(&r, &a, evs, 5);
    pg_buf_t b;
    pg_buf_init(&b, 1 << 16);
    assert_int_equal(
        pg_anthropic_messages_encode(&b, &r, PG_STR("msg_2"), PG_STR("m")),
        PG_OK);
    assert_string_equal(
        b.p, "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\","
             "\"model\":\"m\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}],"
             "\"stop_reason\":\"stop_sequence\",\"stop_sequence\":\"END\","
             "\"usage\":{\"input_tokens\":1,\"cache_creation_input_tokens\":0,"
             "\"cache_read_input_tokens\":0,\"output_tokens\":0}}");
    pg_buf_free(&b);
    pg_arena_destroy(&a);
}

/* Broken tool arguments are refused, leaving the buffer as it was. */
static void test_encode_message_bad_args(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("x", "m", 1), EV_TOOL(0, "t1", "f"), EV_ARGS(0, "{\"a\":"),
        EV_BSTOP(0), EV_STOP(PG_STOP_MAX_TOKENS)};
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_canon_response_t r;
    canon_from(&r, &a, evs, 5);
    pg_buf_t b;
    pg_buf_init(&b, 1 << 16);
    assert_int_equal(pg_buf_append_cstr(&b, "keep"), PG_OK);
    assert_int_equal(
        pg_anthropic_messages_encode(&b, &r, PG_STR("msg"), PG_STR("m")),
        PG_EPARSE);
    assert_string_equal(b.p, "keep");
    assert_int_equal(b.n, 4);
    pg_buf_free(&b);
    pg_arena_destroy(&a);
}

static void test_stop_reason_names(void **state)
{
    (void)state;
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_END_TURN), "end_turn");
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_MAX_TOKENS),
                        "max_tokens");
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_STOP_SEQUENCE),
                        "stop_sequence");
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_TOOL_USE), "tool_use");
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_CONTENT_FILTER),
                        "refusal");
    assert_string_equal(pg_anthropic_stop_reason(PG_STOP_NONE), "end_turn");
}

static void test_error_json(void **state)
{
    (void)state;
    pg_buf_t b;
    pg_buf_init(&b, 1024);
    assert_int_equal(pg_anthropic_error_json(&b,
                                             PG_STR("invalid_request_error"),
                                             PG_STR("max_tokens: \"x\"")),
                     PG_OK);
    assert_string_equal(b.p, "{\"type\":\"error\",\"error\":{\"type\":"
                             "\"invalid_request_error\",\"message\":"
                             "\"max_tokens: \\\"x\\\"\"}}");
    pg_buf_free(&b);
}

/* ---- the stream encoder ------------------------------------------------- */

/* Records events as "name data\n" lines. */
struct sse_rec {
    pg_buf_t out;
    int stop_after; /* > 0: the callback fails on that event */
    int count;
};

static int on_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct sse_rec *r = ud;
    if (++r->count == r->stop_after)
        return PG_ECANCELED;
    assert_int_equal(pg_buf_printf(&r->out, "%.*s %.*s\n", (int)event.n,
                                   event.p, (int)data.n, data.p),
                     PG_OK);
    /* Every data payload is one valid JSON object. */
    cJSON *js = cJSON_ParseWithLength(data.p, data.n);
    assert_non_null(js);
    cJSON_Delete(js);
    return PG_OK;
}

/* Feeds evs and compares the recorded stream with want. */
static void run_stream(const pg_event_t *evs, size_t n, const char *want)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_anthropic_stream_enc_t e;
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("msg_c"), PG_STR("alias"),
                                 1 << 16);
    struct sse_rec r = {0};
    pg_buf_init(&r.out, 1 << 20);
    for (size_t i = 0; i < n; i++) {
        int rc = pg_anthropic_stream_enc_feed(&e, &evs[i], on_sse, &r);
        if (rc != PG_OK)
            fail_msg("event %zu: %s", i, pg_err_name(rc));
    }
    if (strcmp(r.out.p ? r.out.p : "", want) != 0)
        fail_msg("stream:\n%s\nwant:\n%s", r.out.p, want);
    pg_anthropic_stream_enc_destroy(&e);
    pg_buf_free(&r.out);
    pg_arena_destroy(&a);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define MSG_START(in, cw, cr)                                                \
    "message_start {\"type\":\"message_start\",\"message\":{\"id\":"        \
    "\"msg_c\",\"type\":\"message\",\"role\":\"assistant\",\"model\":"      \
    "\"alias\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null," \
    "\"usage\":{\"input_tokens\":" #in ",\"cache_creation_input_tokens\":"  \
    #cw ",\"cache_read_input_tokens\":" #cr ",\"output_tokens\":0}}}\n"     \
    "ping {\"type\":\"ping\"}\n"
#define BLOCK_TEXT(i)                                                        \
    "content_block_start {\"type\":\"content_block_start\",\"index\":" #i   \
    ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
#define DELTA(i, type, field, v)                                             \
    "content_block_delta {\"type\":\"content_block_delta\",\"index\":" #i   \
    ",\"delta\":{\"type\":\"" type "\",\"" field "\":" v "}}\n"
#define BSTOP(i)                                                             \
    "content_block_stop {\"type\":\"content_block_stop\",\"index\":" #i "}\n"
#define MSG_DELTA(reason, seq, in, cw, cr, out)                              \
    "message_delta {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":" \
    "\"" reason "\",\"stop_sequence\":" seq "},\"usage\":{\"input_tokens\":" \
    #in ",\"cache_creation_input_tokens\":" #cw                             \
    ",\"cache_read_input_tokens\":" #cr ",\"output_tokens\":" #out "}}\n"   \
    "message_stop {\"type\":\"message_stop\"}\n"

static void test_stream_text(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 10), EV_USAGE(10, 0, 0, 0),
        EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "Hel"), EV_TEXT(0, ""),
        EV_TEXT(0, "lo\n\"x\""), EV_BSTOP(0), EV_USAGE(10, 5, 0, 0),
        EV_STOP(PG_STOP_END_TURN)};
    run_stream(evs, N(evs),
               MSG_START(10, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"Hel\"")
                       DELTA(0, "text_delta", "text", "\"lo\\n\\\"x\\\"\"")
                           BSTOP(0)
                               MSG_DELTA("end_turn", "null", 10, 0, 0, 5));
}

#define TOOL_START(i, id, name)                                              \
    "content_block_start {\"type\":\"content_block_start\",\"index\":" #i   \
    ",\"content_block\":{\"type\":\"tool_use\",\"id\":\"" id "\","          \
    "\"name\":\"" name "\",\"input\":{}}}\n"

static void test_stream_tool_use(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 7), EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "ok"),
        EV_BSTOP(0), EV_TOOL(1, "toolu_1", "get"), EV_ARGS(1, "{\"city\""),
        EV_ARGS(1, ": \"Paris\"}"), EV_BSTOP(1), EV_USAGE(7, 9, 0, 0),
        EV_STOP(PG_STOP_TOOL_USE)};
    run_stream(evs, N(evs),
               MSG_START(7, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"ok\"") BSTOP(0)
                       TOOL_START(1, "toolu_1", "get")
                           DELTA(1, "input_json_delta", "partial_json",
                                 "\"{\\\"city\\\"\"")
                               DELTA(1, "input_json_delta", "partial_json",
                                     "\": \\\"Paris\\\"}\"") BSTOP(1)
                                   MSG_DELTA("tool_use", "null", 7, 0, 0, 9));
}

/* Two tool calls; canonical indices need not start at 0 or be dense: the
 * client sees 0, 1. */
static void test_stream_two_tools(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 3), EV_TOOL(2, "t_a", "a"), EV_ARGS(2, "{}"),
        EV_BSTOP(2), EV_TOOL(5, "t_b", "b"), EV_ARGS(5, "{\"x\":1}"),
        EV_BSTOP(5), EV_USAGE(3, 4, 0, 0), EV_STOP(PG_STOP_TOOL_USE)};
    run_stream(evs, N(evs),
               MSG_START(3, 0, 0) TOOL_START(0, "t_a", "a")
                   DELTA(0, "input_json_delta", "partial_json", "\"{}\"")
                       BSTOP(0) TOOL_START(1, "t_b", "b")
                           DELTA(1, "input_json_delta", "partial_json",
                                 "\"{\\\"x\\\":1}\"") BSTOP(1)
                               MSG_DELTA("tool_use", "null", 3, 0, 0, 4));
}

static void test_stream_thinking(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 2), EV_BLOCK(0, PG_PART_THINKING),
        EV_THINK(0, "Let me"), EV_THINK(0, " think"), EV_SIG(0, "EqX+/=="),
        EV_BSTOP(0), EV_BLOCK(1, PG_PART_TEXT), EV_TEXT(1, "42"),
        EV_BSTOP(1), EV_USAGE(2, 30, 0, 0), EV_STOP(PG_STOP_END_TURN)};
    run_stream(
        evs, N(evs),
        MSG_START(2, 0, 0)
        "content_block_start {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\","
        "\"signature\":\"\"}}\n"
        DELTA(0, "thinking_delta", "thinking", "\"Let me\"")
        DELTA(0, "thinking_delta", "thinking", "\" think\"")
        DELTA(0, "signature_delta", "signature", "\"EqX+/==\"")
        BSTOP(0) BLOCK_TEXT(1) DELTA(1, "text_delta", "text", "\"42\"")
        BSTOP(1) MSG_DELTA("end_turn", "null", 2, 0, 0, 30));
}

/* max_tokens with the block still open: it is closed before message_delta. */
static void test_stream_max_tokens(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 4), EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "cut"),
        EV_USAGE(4, 1, 0, 0), EV_STOP(PG_STOP_MAX_TOKENS)};
    run_stream(evs, N(evs),
               MSG_START(4, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"cut\"") BSTOP(0)
                       MSG_DELTA("max_tokens", "null", 4, 0, 0, 1));
}

static void test_stream_stop_sequence(void **state)
{
    (void)state;
    pg_event_t evs[] = {EV_START("up", "m", 4), EV_BLOCK(0, PG_PART_TEXT),
                        EV_TEXT(0, "a"), EV_BSTOP(0),
                        EV_STOP(PG_STOP_STOP_SEQUENCE)};
    evs[4].stop_sequence = PG_STR("\n\nHuman:");
    run_stream(evs, N(evs),
               MSG_START(4, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"a\"") BSTOP(0)
                       MSG_DELTA("stop_sequence", "\"\\n\\nHuman:\"", 4, 0,
                                 0, 0));
}

/* Cache reads and writes: Anthropic's input_tokens excludes them. */
static void test_stream_cache_usage(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 1000), EV_USAGE(1000, 0, 600, 300),
        EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "x"), EV_BSTOP(0),
        EV_USAGE(1000, 12, 600, 300), EV_STOP(PG_STOP_END_TURN)};
    /* message_start carries what MESSAGE_START said (the whole prompt,
     * nothing known about cache yet); message_delta the final totals. */
    run_stream(evs, N(evs),
               MSG_START(1000, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"x\"") BSTOP(0)
                       MSG_DELTA("end_turn", "null", 100, 300, 600, 12));
    pg_event_t evs2[N(evs)];
    memcpy(evs2, evs, sizeof(evs));
    evs2[0].usage.cache_read_tokens = 600;
    evs2[0].usage.cache_write_tokens = 300;
    run_stream(evs2, N(evs2),
               MSG_START(100, 300, 600) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"x\"") BSTOP(0)
                       MSG_DELTA("end_turn", "null", 100, 300, 600, 12));
}

static void test_stream_error_mid(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 4), EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "par"),
        EV_ERROR(529, "overloaded_error", "Overloaded")};
    run_stream(evs, N(evs),
               MSG_START(4, 0, 0) BLOCK_TEXT(0)
               DELTA(0, "text_delta", "text", "\"par\"")
               "error {\"type\":\"error\",\"error\":{\"type\":"
               "\"overloaded_error\",\"message\":\"Overloaded\"}}\n");
}

/* Order violations, each refused with PG_EPARSE, the encoder then dead. */
static void expect_broken(const pg_event_t *evs, size_t n)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_anthropic_stream_enc_t e;
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"), 1 << 16);
    struct sse_rec r = {0};
    pg_buf_init(&r.out, 1 << 20);
    for (size_t i = 0; i + 1 < n; i++)
        assert_int_equal(pg_anthropic_stream_enc_feed(&e, &evs[i], on_sse, &r),
                         PG_OK);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &evs[n - 1], on_sse, &r),
                     PG_EPARSE);
    assert_int_equal(e.state, PG_ANT_ENC_FAILED);
    const pg_event_t stop = EV_STOP(PG_STOP_END_TURN);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &stop, on_sse, &r),
                     PG_EPARSE);
    pg_anthropic_stream_enc_destroy(&e);
    pg_buf_free(&r.out);
    pg_arena_destroy(&a);
}

/* A block started while another is open ends that one (a Messages stream
 * has one open block); its late BLOCK_STOP is accepted silently. Blocks
 * with no Messages form (an image) are dropped with their events; a
 * refusal is text. */
static void test_stream_overlap_and_dropped(void **state)
{
    (void)state;
    const pg_event_t evs[] = {
        EV_START("up", "m", 1), EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "a"),
        EV_BLOCK(1, PG_PART_REFUSAL), EV_BSTOP(0), EV_TEXT(1, "no"),
        EV_BSTOP(1), EV_BLOCK(2, PG_PART_IMAGE), EV_TEXT(2, "ignored"),
        EV_BSTOP(2), EV_STOP(PG_STOP_CONTENT_FILTER)};
    run_stream(evs, N(evs),
               MSG_START(1, 0, 0) BLOCK_TEXT(0)
                   DELTA(0, "text_delta", "text", "\"a\"") BSTOP(0)
                       BLOCK_TEXT(1) DELTA(1, "text_delta", "text", "\"no\"")
                           BSTOP(1) MSG_DELTA("refusal", "null", 1, 0, 0, 0));
    /* A delta for the block closed early cannot be delivered any more. */
    const pg_event_t late[] = {EV_START("a", "m", 1),
                               EV_BLOCK(0, PG_PART_TEXT),
                               EV_BLOCK(1, PG_PART_TEXT), EV_TEXT(0, "x")};
    expect_broken(late, N(late));
}

static void test_stream_order_errors(void **state)
{
    (void)state;
    const pg_event_t before_start[] = {EV_BLOCK(0, PG_PART_TEXT)};
    expect_broken(before_start, N(before_start));
    const pg_event_t two_starts[] = {EV_START("a", "m", 1),
                                     EV_START("a", "m", 1)};
    expect_broken(two_starts, N(two_starts));
    const pg_event_t unstarted[] = {EV_START("a", "m", 1), EV_TEXT(0, "x")};
    expect_broken(unstarted, N(unstarted));
    const pg_event_t wrong_kind[] = {EV_START("a", "m", 1),
                                     EV_BLOCK(0, PG_PART_TEXT),
                                     EV_ARGS(0, "{}")};
    expect_broken(wrong_kind, N(wrong_kind));
    const pg_event_t twice[] = {EV_START("a", "m", 1),
                                EV_BLOCK(0, PG_PART_TEXT), EV_BSTOP(0),
                                EV_BLOCK(0, PG_PART_TEXT)};
    expect_broken(twice, N(twice));
    const pg_event_t after_stop[] = {EV_START("a", "m", 1),
                                     EV_BLOCK(0, PG_PART_TEXT), EV_BSTOP(0),
                                     EV_TEXT(0, "late")};
    expect_broken(after_stop, N(after_stop));
    const pg_event_t stop_unstarted[] = {EV_START("a", "m", 1), EV_BSTOP(3)};
    expect_broken(stop_unstarted, N(stop_unstarted));
    const pg_event_t tool_no_id[] = {
        EV_START("a", "m", 1),
        {.kind = PG_EV_BLOCK_START, .block = PG_PART_TOOL_CALL,
         .name = PG_STR("f")}};
    expect_broken(tool_no_id, N(tool_no_id));
    const pg_event_t runaway[] = {EV_START("a", "m", 1),
                                  EV_BLOCK(PG_CANON_MAX_BLOCKS, PG_PART_TEXT)};
    expect_broken(runaway, N(runaway));
}

/* After message_stop and after an error, nothing more is accepted. */
static void test_stream_terminal_states(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_anthropic_stream_enc_t e;
    struct sse_rec r = {0};
    pg_buf_init(&r.out, 1 << 20);
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"), 1 << 16);
    const pg_event_t start = EV_START("a", "m", 1);
    const pg_event_t stop = EV_STOP(PG_STOP_END_TURN);
    const pg_event_t err = EV_ERROR(500, "api_error", "x");
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &start, on_sse, &r), 0);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &stop, on_sse, &r), 0);
    assert_int_equal(e.state, PG_ANT_ENC_DONE);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &err, on_sse, &r),
                     PG_EPARSE);
    pg_anthropic_stream_enc_destroy(&e);

    /* An error before anything else is one error event. */
    pg_buf_reset(&r.out);
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"), 1 << 16);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &err, on_sse, &r), 0);
    assert_int_equal(e.state, PG_ANT_ENC_FAILED);
    assert_string_equal(r.out.p, "error {\"type\":\"error\",\"error\":{"
                                 "\"type\":\"api_error\",\"message\":\"x\"}}\n");
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &start, on_sse, &r),
                     PG_EPARSE);
    pg_anthropic_stream_enc_destroy(&e);
    pg_buf_free(&r.out);
    pg_arena_destroy(&a);
}

/* The callback's refusal stops the encoder and comes back from feed; an
 * event bigger than max_event is PG_ETOOBIG. */
static void test_stream_cb_stops_and_toobig(void **state)
{
    (void)state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_anthropic_stream_enc_t e;
    struct sse_rec r = {.stop_after = 2};
    pg_buf_init(&r.out, 1 << 20);
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"), 1 << 16);
    const pg_event_t start = EV_START("a", "m", 1);
    /* The ping (second event) is refused. */
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &start, on_sse, &r),
                     PG_ECANCELED);
    assert_int_equal(e.state, PG_ANT_ENC_FAILED);
    pg_anthropic_stream_enc_destroy(&e);

    struct sse_rec r2 = {0};
    pg_buf_init(&r2.out, 1 << 20);
    pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"), 512);
    const pg_event_t blk = EV_BLOCK(0, PG_PART_TEXT);
    char big[600];
    memset(big, 'x', sizeof(big));
    const pg_event_t delta = {.kind = PG_EV_TEXT_DELTA,
                              .text = pg_str(big, sizeof(big))};
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &start, on_sse, &r2), 0);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &blk, on_sse, &r2), 0);
    assert_int_equal(pg_anthropic_stream_enc_feed(&e, &delta, on_sse, &r2),
                     PG_ETOOBIG);
    pg_anthropic_stream_enc_destroy(&e);
    pg_buf_free(&r.out);
    pg_buf_free(&r2.out);
    pg_arena_destroy(&a);
}

/* ---- round trip ----------------------------------------------------------- */

struct trip {
    pg_anthropic_stream_dec_t dec;
    pg_canon_response_t canon;
};

static int trip_sink(void *ud, const pg_event_t *ev)
{
    struct trip *t = ud;
    return pg_canon_response_add(&t->canon, ev);
}

static int trip_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct trip *t = ud;
    const char *why = NULL;
    int rc = pg_anthropic_stream_dec_feed(&t->dec, event, data, trip_sink, t,
                                          &why);
    if (rc != PG_OK)
        fail_msg("upstream decoder: %s: %s (%.*s)", pg_err_name(rc),
                 why ? why : "?", (int)data.n, data.p);
    return rc;
}

static void assert_same_str(pg_str_t a, pg_str_t b)
{
    if (!pg_str_eq(a, b))
        fail_msg("\"%.*s\" != \"%.*s\"", (int)a.n, a.p ? a.p : "", (int)b.n,
                 b.p ? b.p : "");
}

static void assert_same_response(const pg_canon_response_t *x,
                                 const pg_canon_response_t *y)
{
    assert_same_str(x->id, y->id);
    assert_same_str(x->model, y->model);
    assert_int_equal(x->stop_reason, y->stop_reason);
    assert_same_str(x->stop_sequence, y->stop_sequence);
    assert_int_equal(x->usage.input_tokens, y->usage.input_tokens);
    assert_int_equal(x->usage.output_tokens, y->usage.output_tokens);
    assert_int_equal(x->usage.cache_read_tokens, y->usage.cache_read_tokens);
    assert_int_equal(x->usage.cache_write_tokens, y->usage.cache_write_tokens);
    assert_int_equal(x->nparts, y->nparts);
    for (size_t i = 0; i < x->nparts; i++) {
        const pg_part_t *p = &x->parts[i], *q = &y->parts[i];
        assert_int_equal(p->kind, q->kind);
        assert_same_str(p->text, q->text);
        assert_same_str(p->signature, q->signature);
        assert_same_str(p->tool_call.id, q->tool_call.id);
        assert_same_str(p->tool_call.name, q->tool_call.name);
        assert_same_str(p->tool_call.arguments, q->tool_call.arguments);
    }
}

static void round_trip(const pg_event_t *evs, size_t n)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_canon_response_t want;
    canon_from(&want, &a, evs, n);

    struct trip t;
    pg_anthropic_stream_dec_init(&t.dec, &a);
    pg_canon_response_init(&t.canon, &a);
    pg_anthropic_stream_enc_t e;
    /* The id and model the client sees are the upstream's here, so the
     * two responses can be compared whole. */
    pg_anthropic_stream_enc_init(&e, &a, evs[0].id, evs[0].model, 1 << 16);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(pg_anthropic_stream_enc_feed(&e, &evs[i], trip_sse,
                                                      &t),
                         PG_OK);
    const char *why = NULL;
    assert_int_equal(pg_anthropic_stream_dec_finish(&t.dec, &why), PG_OK);
    assert_int_equal(pg_canon_response_finish(&t.canon), PG_OK);
    assert_same_response(&want, &t.canon);
    pg_anthropic_stream_enc_destroy(&e);
    pg_arena_destroy(&a);
}

static void test_round_trip(void **state)
{
    (void)state;
    pg_event_t evs[MSG_EVENTS_N];
    msg_events(evs);
    round_trip(evs, MSG_EVENTS_N);
    const pg_event_t cache[] = {
        {.kind = PG_EV_MESSAGE_START, .id = PG_STR("msg_rt"),
         .model = PG_STR("m"),
         .usage = {.input_tokens = 1000, .cache_read_tokens = 600,
                   .cache_write_tokens = 300}},
        EV_BLOCK(0, PG_PART_TEXT), EV_TEXT(0, "a"), EV_TEXT(0, "b"),
        EV_BSTOP(0), EV_TOOL(1, "t1", "f"), EV_ARGS(1, "{\"k\":"),
        EV_ARGS(1, "true}"), EV_BSTOP(1), EV_TOOL(2, "t2", "g"),
        EV_ARGS(2, "{}"), EV_BSTOP(2), EV_USAGE(1000, 77, 600, 300),
        EV_STOP(PG_STOP_TOOL_USE)};
    round_trip(cache, N(cache));
    pg_event_t seq[] = {EV_START("s", "m", 5), EV_BLOCK(0, PG_PART_TEXT),
                        EV_TEXT(0, "x"), EV_USAGE(5, 1, 0, 0),
                        EV_STOP(PG_STOP_STOP_SEQUENCE)};
    seq[4].stop_sequence = PG_STR("END");
    round_trip(seq, N(seq));
}

/* ---- out of memory ------------------------------------------------------- */

/* A callback that allocates nothing: only the encoder is judged. */
static int on_sse_count(void *ud, pg_str_t event, pg_str_t data)
{
    (void)event;
    (void)data;
    (*(size_t *)ud)++;
    return PG_OK;
}

/* Fails each allocation in turn: every failure must come back as a clean
 * PG_ENOMEM (no crash, no leak under ASan, nothing half-written). The
 * request tree is parsed before the sweep: the parser is not judged. */
static void test_oom_sweep(void **state)
{
    (void)state;
    size_t n;
    char *json = read_fixture("full_request.json", &n);
    pg_arena_t tree;
    pg_arena_init(&tree, 0);
    cJSON *root = pg_json_parse_arena(&tree, pg_str(json, n), NULL);
    assert_non_null(root);
    pg_event_t evs[MSG_EVENTS_N];
    msg_events(evs);
    pg_arena_t ca;
    pg_arena_init(&ca, 0);
    pg_canon_response_t r;
    canon_from(&r, &ca, evs, MSG_EVENTS_N);

    oom_install();
    long oom_at;
    bool dec_done = false, enc_done = false, stream_done = false;
    for (oom_at = 0; oom_at < 2000 && !(dec_done && enc_done && stream_done);
         oom_at++) {
        oom_arm(oom_at);
        pg_arena_t a;
        pg_arena_init(&a, 0);
        pg_request_t q;
        pg_anthropic_decode_err_t err;
        int rc = pg_anthropic_messages_decode(&a, root, &q, &err);
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("decode, allocation %ld failing: %s", oom_at,
                     pg_err_name(rc));
        dec_done = dec_done || rc == PG_OK;
        pg_arena_destroy(&a);

        oom_arm(oom_at);
        pg_buf_t b;
        pg_buf_init(&b, 1 << 20);
        rc = pg_anthropic_messages_encode(&b, &r, PG_STR("msg"), PG_STR("m"));
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("encode, allocation %ld failing: %s", oom_at,
                     pg_err_name(rc));
        if (rc == PG_ENOMEM)
            assert_int_equal(b.n, 0);
        enc_done = enc_done || rc == PG_OK;
        pg_buf_free(&b);

        oom_arm(oom_at);
        pg_arena_init(&a, 0);
        pg_anthropic_stream_enc_t e;
        pg_anthropic_stream_enc_init(&e, &a, PG_STR("i"), PG_STR("m"),
                                     1 << 16);
        size_t count = 0;
        rc = PG_OK;
        for (size_t i = 0; i < MSG_EVENTS_N && rc == PG_OK; i++)
            rc = pg_anthropic_stream_enc_feed(&e, &evs[i], on_sse_count,
                                              &count);
        if (rc != PG_OK && rc != PG_ENOMEM)
            fail_msg("stream, allocation %ld failing: %s", oom_at,
                     pg_err_name(rc));
        if (rc == PG_ENOMEM)
            assert_int_equal(e.state, PG_ANT_ENC_FAILED);
        stream_done = stream_done || rc == PG_OK;
        pg_anthropic_stream_enc_destroy(&e);
        pg_arena_destroy(&a);
    }
    long swept = oom_at;
    oom_uninstall();
    assert_true(dec_done && enc_done && stream_done);
    assert_true(swept > 3);
    pg_arena_destroy(&ca);
    pg_arena_destroy(&tree);
    free(json);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        fixdir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_full),
        cmocka_unit_test(test_decode_minimal),
        cmocka_unit_test(test_decode_tool_choice_kinds),
        cmocka_unit_test(test_decode_thinking_kinds),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_encode_message),
        cmocka_unit_test(test_encode_message_stop_sequence),
        cmocka_unit_test(test_encode_message_bad_args),
        cmocka_unit_test(test_stop_reason_names),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_use),
        cmocka_unit_test(test_stream_two_tools),
        cmocka_unit_test(test_stream_thinking),
        cmocka_unit_test(test_stream_max_tokens),
        cmocka_unit_test(test_stream_stop_sequence),
        cmocka_unit_test(test_stream_cache_usage),
        cmocka_unit_test(test_stream_error_mid),
        cmocka_unit_test(test_stream_order_errors),
        cmocka_unit_test(test_stream_overlap_and_dropped),
        cmocka_unit_test(test_stream_terminal_states),
        cmocka_unit_test(test_stream_cb_stops_and_toobig),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_oom_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
