/* test_anthropic_frontdoor.c: Anthropic Messages clients through the
 * gateway in-process: to the mock provider, to an OpenAI-type fake upstream
 * (translation of text and tool calls, stream and not), to an
 * Anthropic-type fake (passthrough: bodies byte-identical both ways apart
 * from the model, streams event by event, usage and id logged, client
 * anthropic-version / anthropic-beta forwarded, errors relayed, failover
 * to an OpenAI-type provider translated), Anthropic-shaped errors (400,
 * 404, relayed 429 with Retry-After, 529 for any overloaded upstream,
 * event: error after the first byte), keepalive pings, /v1/models and
 * count_tokens (forwarded to anthropic-type providers, else estimated).
 * Each test starts its own fake(s) and gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "fake_upstream.h"
#include "gw_fixture.h"
#include "polyglot/polyglot.h"
#include "test_client.h"

#define MESSAGES "/anthropic/v1/messages"

/* The config of a gateway with an anthropic app at /anthropic (default
 * model mock-echo) and an openai app at /openai, the mock provider, and
 * whatever providers / rules the test adds. Models the rules do not match
 * go to default_provider when one is given. */
static char *config(const char *providers_yaml, const char *rules_yaml,
                    const char *default_provider)
{
    return tc_xasprintf(
        "server: {host: 127.0.0.1, port: 0, workers: 1, sse_keepalive: 100ms}\n"
        "providers:\n"
        "  - {name: mock, type: mock, models: [mock-echo],"
        " mock: {reply: echo, chunks: 3}}\n"
        "%s"
        "routing:\n"
        "  rules: [{model_prefix: mock, provider: mock}%s]\n"
        "%s%s%s"
        "apps:\n"
        "  - {name: ant, frontdoor: anthropic, path: /anthropic,"
        " default_model: mock-echo}\n"
        "  - {name: oai, frontdoor: openai, path: /openai}\n"
        "logging: {level: info}\n",
        providers_yaml ? providers_yaml : "", rules_yaml ? rules_yaml : "",
        default_provider ? "  default_provider: " : "",
        default_provider ? default_provider : "",
        default_provider ? "\n" : "");
}

static gwf_t *gw_start(const char *providers_yaml, const char *rules_yaml,
                       const char *default_provider)
{
    char *yaml = config(providers_yaml, rules_yaml, default_provider);
    gwf_t *f = gwf_start_yaml(yaml);
    free(yaml);
    return f;
}

static void post(gwf_t *f, const char *body, tc_response_t *r)
{
    static const char *const h[] = {"x-api-key: sk-client",
                                    "anthropic-version: 2023-06-01", NULL};
    gwf_request(f, "POST", MESSAGES, body, h, r);
}

/* ---- SSE with event names -------------------------------------------------- */

typedef struct ev_list {
    char *name[256];
    cJSON *data[256];
    size_t n;
} ev_list_t;

/* Splits an SSE body into (event, data) pairs; each data must be JSON. */
static void events_parse(const char *body, ev_list_t *out)
{
    memset(out, 0, sizeof(*out));
    char *copy = tc_xstrdup(body);
    char *save = NULL;
    for (char *blk = strtok_r(copy, "\n", &save); blk != NULL;
         blk = strtok_r(NULL, "\n", &save)) {
        if (strncmp(blk, "event: ", 7) == 0) {
            assert_true(out->n < 256);
            out->name[out->n] = tc_xstrdup(blk + 7);
        } else if (strncmp(blk, "data: ", 6) == 0) {
            assert_non_null(out->name[out->n]);
            out->data[out->n] = cJSON_Parse(blk + 6);
            if (out->data[out->n] == NULL)
                fail_msg("event data is not JSON: %s", blk + 6);
            out->n++;
        }
    }
    free(copy);
}

/* Removes ping events (keepalives land between any two events). */
static void events_drop_pings(ev_list_t *l)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->name[i], "ping") == 0) {
            free(l->name[i]);
            cJSON_Delete(l->data[i]);
            continue;
        }
        l->name[k] = l->name[i];
        l->data[k++] = l->data[i];
    }
    l->n = k;
}

static void events_free(ev_list_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->name[i]);
        cJSON_Delete(l->data[i]);
    }
}

static size_t events_count(const ev_list_t *l, const char *name)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++)
        k += strcmp(l->name[i], name) == 0;
    return k;
}

/* Concatenated text_delta (or input_json_delta when json) of the stream. */
static char *events_text(const ev_list_t *l, bool json)
{
    tc_bytes_t out = {0};
    tc_bytes_append(&out, "", 0);
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->name[i], "content_block_delta") != 0)
            continue;
        cJSON *d = cJSON_GetObjectItem(l->data[i], "delta");
        const char *t = json ? gwf_jstr(d, "partial_json") : gwf_jstr(d, "text");
        tc_bytes_append(&out, t, strlen(t));
    }
    return out.p;
}

/* message_start ... message_stop, every block opened and closed, each
 * event's "type" equal to its event name. */
static void assert_sequence(const ev_list_t *l)
{
    assert_true(l->n >= 5);
    assert_string_equal(l->name[0], "message_start");
    assert_string_equal(l->name[l->n - 1], "message_stop");
    assert_string_equal(l->name[l->n - 2], "message_delta");
    for (size_t i = 0; i < l->n; i++)
        assert_string_equal(gwf_jstr(l->data[i], "type"), l->name[i]);
    assert_int_equal(events_count(l, "content_block_start"),
                     events_count(l, "content_block_stop"));
    assert_true(events_count(l, "content_block_delta") >= 1);
    cJSON *m = cJSON_GetObjectItem(l->data[0], "message");
    assert_true(strncmp(gwf_jstr(m, "id"), "msg_", 4) == 0);
    assert_string_equal(gwf_jstr(m, "role"), "assistant");
}

static char *body_for(const char *model, bool stream, bool tools)
{
    return tc_xasprintf(
        "{\"model\":\"%s\",\"max_tokens\":100,%s%s\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Say hello\"}]}",
        model, stream ? "\"stream\":true," : "",
        tools ? "\"tools\":[{\"name\":\"get_weather\",\"description\":\"w\","
                "\"input_schema\":{\"type\":\"object\",\"properties\":{"
                "\"city\":{\"type\":\"string\"}}}}]," : "");
}

/* ---- mock ------------------------------------------------------------------ */

static void test_mock_non_stream_and_stream(void **state)
{
    (void)state;
    gwf_t *f = gw_start(NULL, NULL, NULL);
    tc_response_t r;
    char *b = body_for("mock-echo", false, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "type"), "message");
    assert_string_equal(gwf_jstr(j, "role"), "assistant");
    assert_true(strncmp(gwf_jstr(j, "id"), "msg_", 4) == 0);
    assert_string_equal(gwf_jstr(j, "stop_reason"), "end_turn");
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(gwf_jstr(c0, "type"), "text");
    assert_string_equal(gwf_jstr(c0, "text"), "Say hello");
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_true(cJSON_GetObjectItem(u, "input_tokens")->valueint > 0);
    assert_true(cJSON_GetObjectItem(u, "output_tokens")->valueint > 0);
    cJSON_Delete(j);
    tc_response_free(&r);

    /* default_model when the body names none. */
    post(f, "{\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi there\"}]}", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(gwf_body(&r), "hi there"));
    tc_response_free(&r);

    b = body_for("mock-echo", true, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    char *ct = tc_response_header(&r, "content-type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/event-stream"));
    free(ct);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    assert_sequence(&l);
    char *text = events_text(&l, false);
    assert_string_equal(text, "Say hello");
    free(text);
    cJSON *d = cJSON_GetObjectItem(l.data[l.n - 2], "delta");
    assert_string_equal(gwf_jstr(d, "stop_reason"), "end_turn");
    events_free(&l);
    tc_response_free(&r);
    assert_true(gwf_log_has(f, "\"provider\":\"mock\""));
    gwf_stop(f);
}

/* Top-level fields the translation cannot carry are named at debug level
 * (the request itself is served). */
static void test_unmapped_fields_logged_at_debug(void **state)
{
    (void)state;
    char *yaml = config(NULL, NULL, NULL);
    gwf_t *f = gwf_new(yaml);
    free(yaml);
    assert_int_equal(pg_gateway_set_log_level(f->gw, PG_LOG_DEBUG), PG_OK);
    gwf_start(f);
    tc_response_t r;
    post(f, "{\"model\":\"mock-echo\",\"max_tokens\":10,\"service_tier\":"
            "\"auto\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
            "\"container\":\"c1\"}", &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    static const char *const want[] = {
        "request fields not carried by the translation",
        "\"provider\":\"mock\"", "\"fields\":\"service_tier,container\"",
        NULL};
    assert_true(gwf_log_has_all(f, want));
    gwf_stop(f);
}

/* ---- OpenAI-type upstream: translation -------------------------------------- */

static void test_openai_upstream_text_and_tools(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    static const fu_tool_call_t tc[] = {
        {.id = "call_1", .name = "get_weather",
         .arguments = "{\"city\":\"Paris\"}"}};
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "Hello from OpenAI"}));
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.tools = tc, .ntools = 1}));
    fu_push(fu, fu_openai_chat_stream(&(fu_llm_opts_t){
                    .text = "one two three", .nparts = 3, .usage_chunk = true}));
    fu_push(fu, fu_openai_chat_stream(&(fu_llm_opts_t){
                    .tools = tc, .ntools = 1, .nparts = 3}));
    char *p = gwf_provider_yaml("oa", "openai", fu, NULL);
    gwf_t *f = gw_start(p, NULL, "oa");
    tc_response_t r;

    char *b = body_for("gpt-4o-mini", false, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(gwf_jstr(c0, "text"), "Hello from OpenAI");
    assert_string_equal(gwf_jstr(j, "stop_reason"), "end_turn");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "usage"),
                                         "input_tokens")->valueint, 12);
    cJSON_Delete(j);
    tc_response_free(&r);
    /* The upstream got an OpenAI chat request with the client's limit. */
    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->path, "/v1/chat/completions");
    assert_string_equal(fu_request_header(rq, "authorization"), "Bearer sk-test-oa");
    cJSON *sent = cJSON_Parse(rq->body);
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(sent, "messages"), 0);
    assert_string_equal(gwf_jstr(m0, "content"), "Say hello");
    cJSON_Delete(sent);
    fu_request_free(rq);

    b = body_for("gpt-4o-mini", false, true);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "stop_reason"), "tool_use");
    cJSON *content = cJSON_GetObjectItem(j, "content");
    cJSON *tu = NULL;
    for (int i = 0; i < cJSON_GetArraySize(content); i++) {
        cJSON *c = cJSON_GetArrayItem(content, i);
        if (strcmp(gwf_jstr(c, "type"), "tool_use") == 0)
            tu = c;
    }
    assert_non_null(tu);
    assert_string_equal(gwf_jstr(tu, "name"), "get_weather");
    assert_string_equal(gwf_jstr(cJSON_GetObjectItem(tu, "input"), "city"), "Paris");
    cJSON_Delete(j);
    tc_response_free(&r);
    rq = fu_request(fu, 1);
    sent = cJSON_Parse(rq->body);
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(sent, "tools"), 0);
    assert_string_equal(gwf_jstr(cJSON_GetObjectItem(t0, "function"), "name"),
                        "get_weather");
    cJSON_Delete(sent);
    fu_request_free(rq);

    b = body_for("gpt-4o-mini", true, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    assert_sequence(&l);
    char *text = events_text(&l, false);
    assert_string_equal(text, "one two three");
    free(text);
    events_free(&l);
    tc_response_free(&r);

    b = body_for("gpt-4o-mini", true, true);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    events_parse(gwf_body(&r), &l);
    assert_sequence(&l);
    bool saw_tool = false;
    for (size_t i = 0; i < l.n; i++) {
        if (strcmp(l.name[i], "content_block_start") != 0)
            continue;
        cJSON *cb = cJSON_GetObjectItem(l.data[i], "content_block");
        if (strcmp(gwf_jstr(cb, "type"), "tool_use") == 0) {
            assert_string_equal(gwf_jstr(cb, "name"), "get_weather");
            saw_tool = true;
        }
    }
    assert_true(saw_tool);
    char *args = events_text(&l, true);
    cJSON *aj = cJSON_Parse(args);
    assert_non_null(aj);
    assert_string_equal(gwf_jstr(aj, "city"), "Paris");
    cJSON_Delete(aj);
    free(args);
    assert_string_equal(gwf_jstr(cJSON_GetObjectItem(l.data[l.n - 2], "delta"),
                                 "stop_reason"), "tool_use");
    events_free(&l);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- Anthropic-type upstream ----------------------------------------------------- */

static void test_anthropic_upstream_headers_forwarded(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_message(&(fu_llm_opts_t){.text = "Bonjour"}));
    fu_push(fu, fu_anthropic_stream(&(fu_llm_opts_t){.text = "Bon jour a tous",
                                                     .nparts = 4}));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, NULL, "claude");
    static const char *const h[] = {
        "Authorization: Bearer sk-client", "anthropic-version: 2024-10-22",
        "anthropic-beta: tools-2024-05-16", NULL};
    tc_response_t r;
    char *b = body_for("claude-sonnet-4-20250514", false, false);
    gwf_request(f, "POST", MESSAGES, b, h, &r);
    free(b);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(gwf_jstr(c0, "text"), "Bonjour");
    cJSON_Delete(j);
    tc_response_free(&r);

    /* No client version: the configured one. */
    b = body_for("claude-sonnet-4-20250514", true, false);
    static const char *const h2[] = {"x-api-key: sk-client", NULL};
    gwf_request(f, "POST", MESSAGES, b, h2, &r);
    free(b);
    assert_int_equal(r.status, 200);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    assert_sequence(&l);
    char *text = events_text(&l, false);
    assert_string_equal(text, "Bon jour a tous");
    free(text);
    events_free(&l);
    tc_response_free(&r);

    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->path, "/v1/messages");
    assert_string_equal(fu_request_header(rq, "x-api-key"), "sk-test-claude");
    assert_string_equal(fu_request_header(rq, "anthropic-version"), "2024-10-22");
    assert_string_equal(fu_request_header(rq, "anthropic-beta"), "tools-2024-05-16");
    cJSON *sent = cJSON_Parse(rq->body);
    assert_int_equal(cJSON_GetObjectItem(sent, "max_tokens")->valueint, 100);
    cJSON_Delete(sent);
    fu_request_free(rq);
    rq = fu_request(fu, 1);
    assert_string_equal(fu_request_header(rq, "anthropic-version"), "2023-06-01");
    assert_null(fu_request_header(rq, "anthropic-beta"));
    fu_request_free(rq);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- errors ------------------------------------------------------------------ */

static void test_request_errors(void **state)
{
    (void)state;
    gwf_t *f = gw_start(NULL, NULL, NULL);
    tc_response_t r;
    /* max_tokens is required by the Messages API. */
    post(f, "{\"model\":\"mock-echo\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}]}", &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "max_tokens"));
    tc_response_free(&r);
    post(f, "{not json", &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    tc_response_free(&r);
    /* No rule and no default provider for this model. */
    char *b = body_for("no-such-model", false, false);
    post(f, b, &r);
    free(b);
    gwf_assert_anthropic_error(&r, 404, "not_found_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "no-such-model"));
    tc_response_free(&r);
    /* Unknown URL and wrong method under the app: Anthropic's shape. */
    gwf_request(f, "GET", "/anthropic/v1/nothing", NULL, NULL, &r);
    gwf_assert_anthropic_error(&r, 404, "not_found_error", NULL);
    tc_response_free(&r);
    gwf_request(f, "GET", MESSAGES, NULL, NULL, &r);
    gwf_assert_anthropic_error(&r, 405, "invalid_request_error", NULL);
    char *allow = tc_response_header(&r, "allow");
    assert_string_equal(allow, "POST");
    free(allow);
    tc_response_free(&r);
    /* The OpenAI app next to it keeps OpenAI's shape. */
    gwf_request(f, "GET", "/openai/v1/nothing", NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    cJSON *j = gwf_json(&r);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "code"));
    assert_null(cJSON_GetObjectItem(j, "type"));
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_stop(f);
}

static void test_provider_429_and_529_relayed(void **state)
{
    (void)state;
    fu_t *oa = fu_start(), *an = fu_start();
    fu_push(oa, fu_openai_rate_limited(7));
    fu_push(an, fu_anthropic_overloaded());
    char *p1 = gwf_provider_yaml("oa", "openai", oa, "max_retries: 0");
    char *p2 = gwf_provider_yaml("claude", "anthropic", an, "max_retries: 0");
    char *ps = tc_xasprintf("%s%s", p1, p2);
    gwf_t *f = gw_start(ps, ", {model_prefix: claude, provider: claude}", "oa");
    tc_response_t r;
    char *b = body_for("gpt-4o-mini", false, false);
    post(f, b, &r);
    free(b);
    gwf_assert_anthropic_error(&r, 429, "rate_limit_error", NULL);
    char *ra = tc_response_header(&r, "retry-after");
    assert_non_null(ra);
    assert_string_equal(ra, "7");
    free(ra);
    tc_response_free(&r);
    /* A stream that fails before any byte: a plain error answer too. */
    b = body_for("claude-x", true, false);
    post(f, b, &r);
    free(b);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    ra = tc_response_header(&r, "retry-after");
    assert_non_null(ra);
    free(ra);
    tc_response_free(&r);
    gwf_stop(f);
    free(ps);
    free(p1);
    free(p2);
    fu_stop(oa);
    fu_stop(an);
}

/* Unreachable upstream -> 502 api_error; first-byte timeout -> 504
 * timeout_error (the OpenAI error types become Anthropic's). */
static void test_unreachable_502_and_timeout_504(void **state)
{
    (void)state;
    fu_t *gone = fu_start(), *slow_fu = fu_start();
    char *p1 = gwf_provider_yaml("gone", "openai-compatible", gone,
                                 "max_retries: 0");
    fu_stop(gone);
    fu_resp_t *slow = fu_openai_chat(&(fu_llm_opts_t){.text = "too late"});
    fu_resp_slow_head(slow, 3000);
    fu_push(slow_fu, slow);
    char *p2 = gwf_provider_yaml("slow", "openai", slow_fu,
                                 "max_retries: 0, timeouts: {first_byte: 200ms}");
    char *ps = tc_xasprintf("%s%s", p1, p2);
    gwf_t *f = gw_start(ps, ", {model_prefix: slow, provider: slow}", "gone");
    tc_response_t r;
    char *b = body_for("gpt-4o-mini", false, false);
    post(f, b, &r);
    free(b);
    gwf_assert_anthropic_error(&r, 502, "api_error", NULL);
    tc_response_free(&r);
    b = body_for("slow-model", true, false);
    post(f, b, &r);
    free(b);
    gwf_assert_anthropic_error(&r, 504, "timeout_error", NULL);
    tc_response_free(&r);
    gwf_stop(f);
    free(ps);
    free(p1);
    free(p2);
    fu_stop(slow_fu);
}

static void test_error_after_first_byte(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened("partial");
    fu_resp_drop(s);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("oa", "openai", fu, NULL);
    gwf_t *f = gw_start(p, NULL, "oa");
    tc_response_t r;
    char *b = body_for("gpt-4o-mini", true, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    assert_true(l.n >= 2);
    assert_string_equal(l.name[0], "message_start");
    char *text = events_text(&l, false);
    assert_string_equal(text, "partial");
    free(text);
    assert_string_equal(l.name[l.n - 1], "error");
    assert_int_equal(events_count(&l, "message_stop"), 0);
    cJSON *e = cJSON_GetObjectItem(l.data[l.n - 1], "error");
    assert_true(strlen(gwf_jstr(e, "type")) > 0);
    assert_true(strlen(gwf_jstr(e, "message")) > 0);
    events_free(&l);
    assert_int_equal(fu_requests_count(fu), 1);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_keepalive_ping_events(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_stream(&(fu_llm_opts_t){
                    .text = "slow words here", .nparts = 3, .delay_ms = 350}));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, NULL, "claude");
    tc_response_t r;
    char *b = body_for("claude-x", true, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    /* The gateway's keepalive is Anthropic's own ping event (with the
     * space the encoder's ping after message_start does not have). */
    assert_non_null(strstr(gwf_body(&r),
                           "event: ping\ndata: {\"type\": \"ping\"}\n\n"));
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    /* Passthrough: the upstream's events, with the gateway's pings in
     * the silences between any two of them. */
    events_drop_pings(&l);
    assert_sequence(&l);
    char *text = events_text(&l, false);
    assert_string_equal(text, "slow words here");
    free(text);
    events_free(&l);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- models, count_tokens ------------------------------------------------------ */

static void test_models_and_count_tokens(void **state)
{
    (void)state;
    gwf_t *f = gw_start(NULL, NULL, NULL);
    tc_response_t r;
    gwf_request(f, "GET", "/anthropic/v1/models", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(data), 1);
    cJSON *m0 = cJSON_GetArrayItem(data, 0);
    assert_string_equal(gwf_jstr(m0, "type"), "model");
    assert_string_equal(gwf_jstr(m0, "id"), "mock-echo");
    assert_string_equal(gwf_jstr(m0, "display_name"), "mock-echo");
    assert_true(strlen(gwf_jstr(m0, "created_at")) > 0);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "has_more")));
    assert_string_equal(gwf_jstr(j, "first_id"), "mock-echo");
    assert_string_equal(gwf_jstr(j, "last_id"), "mock-echo");
    cJSON_Delete(j);
    tc_response_free(&r);

    /* 10 + 6 characters of text: ceil(16 / 4) = 4. */
    gwf_request(f, "POST", "/anthropic/v1/messages/count_tokens",
                "{\"model\":\"mock-echo\",\"system\":\"abcdef\",\"messages\":"
                "[{\"role\":\"user\",\"content\":\"abcdefghij\"}]}", NULL, &r);
    assert_int_equal(r.status, 200);
    j = gwf_json(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "input_tokens")->valueint, 4);
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_true(gwf_log_has(f, "count_tokens estimate"));
    /* One more character: 5. Block content counts its text only. */
    gwf_request(f, "POST", "/anthropic/v1/messages/count_tokens",
                "{\"model\":\"mock-echo\",\"system\":\"abcdef\",\"messages\":"
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                "\"text\":\"abcdefghijk\"}]}]}", NULL, &r);
    assert_int_equal(r.status, 200);
    j = gwf_json(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "input_tokens")->valueint, 5);
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_request(f, "POST", "/anthropic/v1/messages/count_tokens",
                "{\"model\":\"mock-echo\"}", NULL, &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    tc_response_free(&r);
    gwf_request(f, "POST", "/anthropic/v1/messages/count_tokens",
                "{\"model\":\"nope\",\"messages\":[]}", NULL, &r);
    gwf_assert_anthropic_error(&r, 404, "not_found_error", NULL);
    tc_response_free(&r);
    gwf_stop(f);
}

/* ---- Anthropic-type upstream: passthrough --------------------------------------- */

/* A response scripted from exact bytes, so the test can compare. */
static fu_resp_t *exact_json(int status, const char *body)
{
    fu_resp_t *r = fu_resp_new(status);
    fu_resp_header(r, "Content-Type", "application/json");
    fu_resp_part_str(r, 0, body);
    return r;
}

/* body with every "old" replaced by "new" (heap). */
static char *replace_all(const char *body, const char *old, const char *new_)
{
    tc_bytes_t out = {0};
    tc_bytes_append(&out, "", 0);
    size_t ol = strlen(old);
    for (const char *p = body;;) {
        const char *hit = strstr(p, old);
        if (hit == NULL) {
            tc_bytes_append(&out, p, strlen(p));
            break;
        }
        tc_bytes_append(&out, p, (size_t)(hit - p));
        tc_bytes_append(&out, new_, strlen(new_));
        p = hit + ol;
    }
    return out.p;
}

/* Blocks the canonical model cannot hold, cache_control on everything,
 * a block type from the future, odd spacing and unknown fields. */
static const char passthrough_body[] =
    "{ \"model\" : \"fast\",\"max_tokens\":  64,\n"
    " \"system\":[{\"type\":\"text\",\"text\":\"be brief\","
    "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],\n"
    " \"messages\":[{\"role\":\"user\",\"content\":["
    "{\"type\":\"document\",\"source\":{\"type\":\"text\",\"media_type\":"
    "\"text/plain\",\"data\":\"The sky is blue.\"},\"title\":\"facts\","
    "\"citations\":{\"enabled\":true},\"cache_control\":{\"type\":"
    "\"ephemeral\"}},"
    "{\"type\":\"future_block_2031\",\"payload\":[1, 2.50, true]},"
    "{\"type\":\"text\",\"text\":\"What color is the sky? \\u00e9\"}]}],"
    " \"x_vendor_field\": {\"keep\": \"me\"}, \"service_tier\": \"auto\" }";

static const char passthrough_answer[] =
    "{\"id\":\"msg_01PassThrough\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-20250514\",\"content\":[{\"type\":\"text\","
    "\"text\":\"Blue.\",\"citations\":[{\"type\":\"char_location\","
    "\"cited_text\":\"The sky is blue.\",\"document_index\":0,"
    "\"document_title\":\"facts\",\"start_char_index\":0,"
    "\"end_char_index\":16}]}],\"stop_reason\":\"end_turn\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":321,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
    "\"output_tokens\":45,\"service_tier\":\"standard\"}}";

static void test_passthrough_non_stream_byte_identical(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, exact_json(200, passthrough_answer));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, ", {model_exact: fast, provider: claude,"
                           " model: claude-sonnet-4-20250514}", "claude");
    static const char *const h[] = {
        "x-api-key: sk-client", "anthropic-version: 2023-06-01",
        "anthropic-beta: prompt-caching-2024-07-31,pdfs-2024-09-25", NULL};
    tc_response_t r;
    gwf_request(f, "POST", MESSAGES, passthrough_body, h, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    /* The client reads the upstream's bytes, citations and all. */
    assert_string_equal(gwf_body(&r), passthrough_answer);
    tc_response_free(&r);
    /* The upstream reads the client's bytes; only the model's value is
     * the routed one. */
    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->path, "/v1/messages");
    char *want = replace_all(passthrough_body, "\"fast\"",
                             "\"claude-sonnet-4-20250514\"");
    assert_string_equal(rq->body, want);
    free(want);
    assert_string_equal(fu_request_header(rq, "x-api-key"), "sk-test-claude");
    assert_string_equal(fu_request_header(rq, "anthropic-version"),
                        "2023-06-01");
    assert_string_equal(fu_request_header(rq, "anthropic-beta"),
                        "prompt-caching-2024-07-31,pdfs-2024-09-25");
    fu_request_free(rq);
    /* Usage and id of the relayed body reach the request log. */
    static const char *const want_log[] = {
        "\"provider\":\"claude\"", "\"input_tokens\":321",
        "\"output_tokens\":45", "\"response_id\":\"msg_01PassThrough\"",
        "\"served_model\":\"claude-sonnet-4-20250514\"", NULL};
    assert_true(gwf_log_has_all(f, want_log));

    /* When routing keeps the model, not one byte changes. */
    fu_push(fu, exact_json(200, passthrough_answer));
    char *same = replace_all(passthrough_body, "\"fast\"",
                             "\"claude-\\u0073onnet-4\"");
    gwf_request(f, "POST", MESSAGES, same, h, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    rq = fu_request(fu, 1);
    assert_string_equal(rq->body, same);
    fu_request_free(rq);
    free(same);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* The upstream's SSE, framed as Anthropic frames it, with an event type
 * the gateway does not know. The upstream's own ping is written without
 * the space the gateway's keepalive has, to tell them apart. */
static const char *const passthrough_events[] = {
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
    "{\"id\":\"msg_01Stream\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4-20250514\",\"content\":[],\"stop_reason\":"
    "null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":77,"
    "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\","
    "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"citations_delta\",\"citation\":"
    "{\"type\":\"char_location\",\"cited_text\":\"x\"}}}\n\n",
    "event: future_event\ndata: {\"type\":\"future_event\",\"x\":1}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
    "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
    "\"index\":0}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
    "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"
    "{\"output_tokens\":19}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
};
#define NPASS_EVENTS (sizeof(passthrough_events) / sizeof(passthrough_events[0]))

static void test_passthrough_stream_event_by_event(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = fu_resp_new(200);
    fu_resp_header(s, "Content-Type", "text/event-stream");
    fu_resp_header(s, "anthropic-ratelimit-requests-remaining", "41");
    fu_resp_chunked(s);
    tc_bytes_t all = {0};
    tc_bytes_append(&all, "", 0);
    for (size_t i = 0; i < NPASS_EVENTS; i++) {
        fu_resp_part_str(s, i ? 20 : 0, passthrough_events[i]);
        tc_bytes_append(&all, passthrough_events[i],
                        strlen(passthrough_events[i]));
    }
    fu_push(fu, s);
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, NULL, "claude");
    tc_response_t r;
    char *b = body_for("claude-sonnet-4-20250514", true, false);
    post(f, b, &r);
    assert_int_equal(r.status, 200);
    char *ct = tc_response_header(&r, "content-type");
    assert_non_null(strstr(ct, "text/event-stream"));
    free(ct);
    char *rl = tc_response_header(&r, "anthropic-ratelimit-requests-remaining");
    assert_non_null(rl);
    assert_string_equal(rl, "41");
    free(rl);
    /* Event for event what the upstream sent (gateway keepalives aside,
     * should the machine be slow enough for one). */
    char *got = replace_all(gwf_body(&r),
                            "event: ping\ndata: {\"type\": \"ping\"}\n\n", "");
    assert_string_equal(got, all.p);
    free(got);
    tc_response_free(&r);
    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->body, b);
    fu_request_free(rq);
    free(b);
    static const char *const want_log[] = {
        "\"stream\":1", "\"input_tokens\":77", "\"output_tokens\":19",
        "\"response_id\":\"msg_01Stream\"", NULL};
    assert_true(gwf_log_has_all(f, want_log));
    tc_bytes_free(&all);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* Upstream errors through passthrough keep their status, headers and
 * message: 429 with retry-after and rate-limit headers, 529 (a status, or
 * an overloaded_error event opening a 200 stream), a 400 naming what the
 * upstream disliked. */
static void test_passthrough_errors_relayed(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *rl = fu_anthropic_rate_limited(12);
    fu_resp_header(rl, "anthropic-ratelimit-tokens-remaining", "0");
    fu_push(fu, rl);
    fu_push(fu, fu_anthropic_overloaded());
    fu_push(fu, fu_anthropic_overloaded());
    fu_resp_t *ev = fu_resp_new(200);
    fu_resp_header(ev, "Content-Type", "text/event-stream");
    fu_resp_part_str(ev, 0,
                     "event: error\ndata: {\"type\":\"error\",\"error\":"
                     "{\"type\":\"overloaded_error\",\"message\":"
                     "\"Overloaded right now\"}}\n\n");
    fu_push(fu, ev);
    fu_push(fu, fu_anthropic_error(400, "invalid_request_error",
                                   "messages.0.content.0.source: bad pdf", 0));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, "max_retries: 0");
    gwf_t *f = gw_start(p, NULL, "claude");
    tc_response_t r;
    char *b = body_for("claude-x", false, false);
    char *bs = body_for("claude-x", true, false);

    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 429, "rate_limit_error", NULL);
    char *v = tc_response_header(&r, "retry-after");
    assert_string_equal(v, "12");
    free(v);
    v = tc_response_header(&r, "anthropic-ratelimit-tokens-remaining");
    assert_string_equal(v, "0");
    free(v);
    tc_response_free(&r);

    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    v = tc_response_header(&r, "retry-after");
    assert_non_null(v);
    free(v);
    tc_response_free(&r);
    post(f, bs, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    tc_response_free(&r);
    post(f, bs, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "Overloaded right now"));
    tc_response_free(&r);

    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "bad pdf"));
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(fu), 5);
    free(b);
    free(bs);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* A passthrough provider retries before the first byte like any other:
 * the same bytes go out again, and the client sees only the success. */
static void test_passthrough_retry_then_success(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_overloaded());
    fu_push(fu, fu_anthropic_rate_limited(0));
    fu_push(fu, exact_json(200, passthrough_answer));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, "max_retries: 2");
    gwf_t *f = gw_start(p, NULL, "claude");
    tc_response_t r;
    post(f, passthrough_body, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    assert_string_equal(gwf_body(&r), passthrough_answer);
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(fu), 3);
    for (size_t i = 0; i < 3; i++) {
        fu_request_t *rq = fu_request(fu, i);
        assert_string_equal(rq->body, passthrough_body);
        fu_request_free(rq);
    }
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* A chain anthropic -> openai-compatible: passthrough for the first,
 * translation for the second once the first failed before any byte; a
 * document block the second cannot take leaves the first's failure. */
static void test_passthrough_failover_translates(void **state)
{
    (void)state;
    fu_t *an = fu_start(), *oa = fu_start();
    fu_push(an, fu_anthropic_overloaded());
    fu_push(oa, fu_openai_chat(&(fu_llm_opts_t){.text = "from the backup"}));
    fu_push(oa, fu_openai_chat_stream(&(fu_llm_opts_t){
                    .text = "streamed backup", .nparts = 2,
                    .usage_chunk = true}));
    char *p1 = gwf_provider_yaml("claude", "anthropic", an, "max_retries: 0");
    char *p2 = gwf_provider_yaml("oa", "openai-compatible", oa, NULL);
    char *ps = tc_xasprintf("%s%s", p1, p2);
    gwf_t *f = gw_start(ps, NULL, "claude\n  failover: {claude: [oa]}");
    tc_response_t r;
    char *b = body_for("claude-x", false, false);
    post(f, b, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "type"), "message");
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "content"), 0);
    assert_string_equal(gwf_jstr(c0, "text"), "from the backup");
    cJSON_Delete(j);
    tc_response_free(&r);
    fu_request_t *rq = fu_request(an, 0);
    assert_string_equal(rq->body, b); /* passthrough first */
    fu_request_free(rq);
    rq = fu_request(oa, 0);
    assert_string_equal(rq->path, "/v1/chat/completions");
    cJSON *sent = cJSON_Parse(rq->body);
    assert_string_equal(gwf_jstr(sent, "model"), "claude-x");
    cJSON *m0 = cJSON_GetArrayItem(cJSON_GetObjectItem(sent, "messages"), 0);
    assert_string_equal(gwf_jstr(m0, "content"), "Say hello");
    cJSON_Delete(sent);
    fu_request_free(rq);
    assert_true(gwf_log_has(f, "\"provider\":\"oa\""));
    free(b);

    /* Streamed, the backup's chunks become Anthropic's events. */
    b = body_for("claude-x", true, false);
    post(f, b, &r);
    assert_int_equal(r.status, 200);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    assert_sequence(&l);
    char *text = events_text(&l, false);
    assert_string_equal(text, "streamed backup");
    free(text);
    events_free(&l);
    tc_response_free(&r);
    free(b);

    /* A document block: fine for the first, not translatable for the
     * second, so the client gets the first one's 529. */
    post(f, passthrough_body, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(oa), 2);
    assert_true(gwf_log_has(f, "cannot be translated"));
    gwf_stop(f);
    free(ps);
    free(p1);
    free(p2);
    fu_stop(an);
    fu_stop(oa);
}

/* The translated path (an OpenAI-type provider) still refuses what the
 * canonical model cannot hold, naming the block. */
static void test_translated_document_block_400(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    char *p = gwf_provider_yaml("oa", "openai", fu, NULL);
    gwf_t *f = gw_start(p, ", {model_exact: fast, provider: oa}", "oa");
    tc_response_t r;
    post(f, passthrough_body, &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "document"));
    assert_non_null(strstr(gwf_body(&r), "messages"));
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(fu), 0);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* An overloaded OpenAI-type upstream (503 or 529) is a 529
 * overloaded_error for Anthropic clients, stream or not; the gateway's
 * own 503 (a provider without its key) stays a 503. */
static void test_openai_overloaded_is_529(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_error(503, "server_error", NULL,
                                "The server is overloaded or not ready yet.",
                                0));
    fu_push(fu, fu_openai_error(529, "server_error", NULL, "overloaded", 0));
    fu_push(fu, fu_openai_error(503, "server_error", NULL, "busy", 2));
    char *p = gwf_provider_yaml("oa", "openai", fu, "max_retries: 0");
    char *nokey = tc_xasprintf(
        "%s  - {name: nokey, type: openai, api_key: \"\"}\n", p);
    gwf_t *f = gw_start(nokey, ", {model_prefix: nokey, provider: nokey}",
                        "oa");
    tc_response_t r;
    char *b = body_for("gpt-4o-mini", false, false);
    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "overloaded or not ready"));
    tc_response_free(&r);
    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    tc_response_free(&r);
    free(b);
    b = body_for("gpt-4o-mini", true, false);
    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    char *ra = tc_response_header(&r, "retry-after");
    assert_string_equal(ra, "2");
    free(ra);
    tc_response_free(&r);
    free(b);
    b = body_for("nokey-model", false, false);
    post(f, b, &r);
    gwf_assert_anthropic_error(&r, 503, "api_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "no API key"));
    tc_response_free(&r);
    free(b);
    gwf_stop(f);
    free(nokey);
    free(p);
    fu_stop(fu);
}

/* The OpenAI frontdoor mixes dialects per provider the same way: its
 * passthrough to an OpenAI-type provider fails over to an anthropic one
 * with a translation; n > 1, which the translation cannot carry, skips
 * it. */
static void test_openai_passthrough_fails_over_to_anthropic(void **state)
{
    (void)state;
    fu_t *oa = fu_start(), *an = fu_start();
    fu_push(oa, fu_openai_server_error());
    fu_push(an, fu_anthropic_message(&(fu_llm_opts_t){.text = "from claude"}));
    char *p1 = gwf_provider_yaml("oa", "openai", oa, "max_retries: 0");
    char *p2 = gwf_provider_yaml("claude", "anthropic", an, NULL);
    char *ps = tc_xasprintf("%s%s", p1, p2);
    gwf_t *f = gw_start(ps, NULL, "oa\n  failover: {oa: [claude]}");
    const char *body = "{\"model\":\"gpt-4o-mini\",\"x_odd\": 1,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    tc_response_t r;
    gwf_request(f, "POST", "/openai/v1/chat/completions", body, NULL, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_oai_content(j), "from claude");
    cJSON_Delete(j);
    tc_response_free(&r);
    fu_request_t *rq = fu_request(oa, 0);
    assert_string_equal(rq->body, body); /* the client's bytes */
    fu_request_free(rq);
    rq = fu_request(an, 0);
    assert_string_equal(rq->path, "/v1/messages");
    cJSON *sent = cJSON_Parse(rq->body);
    assert_string_equal(gwf_jstr(sent, "model"), "gpt-4o-mini");
    assert_null(cJSON_GetObjectItem(sent, "x_odd"));
    assert_non_null(cJSON_GetObjectItem(sent, "max_tokens"));
    cJSON_Delete(sent);
    fu_request_free(rq);

    gwf_request(f, "POST", "/openai/v1/chat/completions",
                "{\"model\":\"gpt-4o-mini\",\"n\":2,\"messages\":[{\"role\":"
                "\"user\",\"content\":\"hi\"}]}", NULL, &r);
    assert_int_equal(r.status, 500);
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(an), 1);
    gwf_stop(f);
    free(ps);
    free(p1);
    free(p2);
    fu_stop(oa);
    fu_stop(an);
}

/* ---- count_tokens forwarding ---------------------------------------------------- */

#define COUNT_TOKENS "/anthropic/v1/messages/count_tokens"

static void test_count_tokens_forwarded(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    static const char answer[] = "{\"input_tokens\":1234}";
    fu_push(fu, exact_json(200, answer));
    fu_push(fu, fu_anthropic_error(400, "invalid_request_error",
                                   "messages: at least one message is "
                                   "required", 0));
    fu_push(fu, fu_anthropic_overloaded());
    fu_push(fu, exact_json(404, "{\"detail\":\"Not Found\"}"));
    fu_push(fu, fu_anthropic_error(404, "not_found_error",
                                   "model: claude-sonnet-4-20250514", 0));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, "max_retries: 0");
    gwf_t *f = gw_start(p, ", {model_exact: fast, provider: claude,"
                           " model: claude-sonnet-4-20250514}", "claude");
    static const char *const h[] = {
        "x-api-key: sk-client", "anthropic-version: 2024-10-22",
        "anthropic-beta: token-counting-2024-11-01", NULL};
    const char *body =
        "{\"model\": \"fast\", \"system\": \"s\", \"messages\": [{\"role\":"
        "\"user\",\"content\":[{\"type\":\"document\",\"source\":{\"type\":"
        "\"text\",\"media_type\":\"text/plain\",\"data\":\"abc\"}}]}]}";
    tc_response_t r;
    gwf_request(f, "POST", COUNT_TOKENS, body, h, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    assert_string_equal(gwf_body(&r), answer);
    tc_response_free(&r);
    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->method, "POST");
    assert_string_equal(rq->path, "/v1/messages/count_tokens");
    assert_string_equal(fu_request_header(rq, "x-api-key"), "sk-test-claude");
    assert_string_equal(fu_request_header(rq, "anthropic-version"),
                        "2024-10-22");
    assert_string_equal(fu_request_header(rq, "anthropic-beta"),
                        "token-counting-2024-11-01");
    char *want = replace_all(body, "\"fast\"", "\"claude-sonnet-4-20250514\"");
    assert_string_equal(rq->body, want);
    free(want);
    fu_request_free(rq);
    assert_true(gwf_log_has(f, "\"input_tokens\":1234"));
    assert_false(tc_log_contains(&f->log, "count_tokens estimate"));

    /* The upstream's errors, in Anthropic's shape with their status. */
    gwf_request(f, "POST", COUNT_TOKENS, body, h, &r);
    gwf_assert_anthropic_error(&r, 400, "invalid_request_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "at least one message"));
    tc_response_free(&r);
    /* Overloaded, with no other provider type to fall back to. */
    gwf_request(f, "POST", COUNT_TOKENS, body, h, &r);
    gwf_assert_anthropic_error(&r, 529, "overloaded_error", NULL);
    tc_response_free(&r);
    assert_false(tc_log_contains(&f->log, "count_tokens estimate"));
    /* An Anthropic-compatible server without the endpoint (404 for the
     * path): the local estimate, said so in the log. */
    gwf_request(f, "POST", COUNT_TOKENS, body, h, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    cJSON *j = gwf_json(&r);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "input_tokens")));
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_true(gwf_log_has(f, "no count_tokens endpoint"));
    assert_true(gwf_log_has(f, "count_tokens estimate"));
    /* Anthropic's own 404 for an unknown model is the client's: relayed. */
    gwf_request(f, "POST", COUNT_TOKENS, body, h, &r);
    gwf_assert_anthropic_error(&r, 404, "not_found_error", NULL);
    assert_non_null(strstr(gwf_body(&r), "model: claude-sonnet"));
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* count_tokens fails over to the chain's next anthropic-type provider;
 * when those are exhausted and the chain goes on to another type, the
 * answer is the local estimate. Other types estimate at once. */
static void test_count_tokens_failover_and_estimate(void **state)
{
    (void)state;
    fu_t *a1 = fu_start(), *a2 = fu_start(), *oa = fu_start();
    fu_push(a1, fu_anthropic_overloaded());
    fu_push(a2, exact_json(200, "{\"input_tokens\":99}"));
    fu_push(a2, fu_anthropic_server_error());
    char *p1 = gwf_provider_yaml("a1", "anthropic", a1, "max_retries: 0");
    char *p2 = gwf_provider_yaml("a2", "anthropic", a2, "max_retries: 0");
    char *p3 = gwf_provider_yaml("oa", "openai", oa, NULL);
    char *ps = tc_xasprintf("%s%s%s", p1, p2, p3);
    gwf_t *f = gw_start(ps, ", {model_prefix: gpt, provider: oa}",
                        "a1\n  failover: {a1: [oa, a2]}");
    const char *body = "{\"model\":\"claude-x\",\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"abcdefgh\"}]}";
    tc_response_t r;
    gwf_request(f, "POST", COUNT_TOKENS, body, NULL, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    assert_string_equal(gwf_body(&r), "{\"input_tokens\":99}");
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(a1), 1);
    assert_int_equal(fu_requests_count(a2), 1);
    assert_int_equal(fu_requests_count(oa), 0);
    assert_true(gwf_log_has(f, "\"provider\":\"a2\""));
    assert_false(tc_log_contains(&f->log, "count_tokens estimate"));

    /* a1 overloaded again (its last script repeats), a2 fails: oa is
     * where the Messages request would go, so: the estimate. */
    gwf_request(f, "POST", COUNT_TOKENS, body, NULL, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "input_tokens")->valueint, 2);
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_true(gwf_log_has(f, "count_tokens estimate"));

    /* A model routed to the OpenAI-type provider: the estimate, never
     * forwarded. */
    gwf_request(f, "POST", COUNT_TOKENS,
                "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"abcdefghijkl\"}]}", NULL, &r);
    assert_int_equal(r.status, 200);
    j = gwf_json(&r);
    assert_int_equal(cJSON_GetObjectItem(j, "input_tokens")->valueint, 3);
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(oa), 0);
    gwf_stop(f);
    free(ps);
    free(p1);
    free(p2);
    free(p3);
    fu_stop(a1);
    fu_stop(a2);
    fu_stop(oa);
}

/* ---- failover entries with their own model ------------------------------------ */

#define CHAT "/openai/v1/chat/completions"

/* The body the upstream must get: the client's with its model value
 * replaced (and, when so is set, stream_options added first). */
static char *with_model(const char *client, const char *from, const char *to,
                        bool so)
{
    char *a = tc_xasprintf("\"%s\"", from), *b = tc_xasprintf("\"%s\"", to);
    char *m = replace_all(client, a, b);
    char *out = so ? tc_xasprintf("{\"stream_options\":{\"include_usage\":"
                                  "true},%s", m + 1)
                   : tc_xstrdup(m);
    free(a);
    free(b);
    free(m);
    return out;
}

/* The request i an upstream received: its path and the model it was
 * sent; the whole body when want_body is set. */
static void assert_sent(fu_t *fu, size_t i, const char *path,
                        const char *model, const char *want_body)
{
    fu_request_t *rq = fu_request(fu, i);
    assert_non_null(rq);
    assert_string_equal(rq->path, path);
    cJSON *sent = cJSON_Parse(rq->body);
    assert_non_null(sent);
    assert_string_equal(gwf_jstr(sent, "model"), model);
    cJSON_Delete(sent);
    if (want_body != NULL)
        assert_string_equal(rq->body, want_body);
    fu_request_free(rq);
}

/* Three fake upstreams behind providers named names[i] of types[i] (no
 * retries, so a failure moves on at once), and a gateway over them. */
typedef struct trio {
    fu_t *fu[3];
    char *yaml;
} trio_t;

static gwf_t *trio_start(trio_t *t, const char *const names[3],
                         const char *const types[3], const char *rules,
                         const char *routing)
{
    char *p[3];
    for (int i = 0; i < 3; i++) {
        t->fu[i] = fu_start();
        p[i] = gwf_provider_yaml(names[i], types[i], t->fu[i], "max_retries: 0");
    }
    t->yaml = tc_xasprintf("%s%s%s", p[0], p[1], p[2]);
    for (int i = 0; i < 3; i++)
        free(p[i]);
    return gw_start(t->yaml, rules, routing);
}

static void trio_stop(gwf_t *f, trio_t *t)
{
    gwf_stop(f);
    free(t->yaml);
    for (int i = 0; i < 3; i++)
        fu_stop(t->fu[i]);
}

/* routing.failover entries with a model: an OpenAI client's request to
 * oa1 fails over to oa2 with oa2's model (passthrough: the client's bytes
 * with that model), then to claude with claude's (a translation). The
 * client reads the model each provider answered with; the log names the
 * provider and the model it was sent. */
static void test_failover_models_openai_client(void **state)
{
    (void)state;
    static const char *const names[] = {"oa1", "oa2", "claude"};
    static const char *const types[] = {"openai", "openai-compatible",
                                        "anthropic"};
    trio_t t;
    gwf_t *f = trio_start(&t, names, types,
                          ", {model_exact: fast, provider: oa1, model: gpt-4o}",
                          "oa1\n  failover: {oa1: [{provider: oa2, model: "
                          "backup-mini}, {provider: claude, model: "
                          "claude-haiku-4-5}]}");
    fu_t *a = t.fu[0], *b = t.fu[1], *c = t.fu[2];
    fu_push(a, fu_openai_error(503, "server_error", NULL, "down", 0));
    fu_push(b, fu_openai_chat(&(fu_llm_opts_t){
                   .model = "backup-mini-0613", .text = "from the backup"}));
    fu_push(b, fu_openai_chat_stream(&(fu_llm_opts_t){
                   .model = "backup-mini-0613", .text = "streamed backup",
                   .nparts = 3, .usage_chunk = true}));
    fu_push(b, fu_openai_error(503, "server_error", NULL, "down too", 0));
    fu_push(c, fu_anthropic_message(&(fu_llm_opts_t){
                   .model = "claude-haiku-4-5-20251001", .text = "from claude"}));
    fu_push(c, fu_anthropic_stream(&(fu_llm_opts_t){
                   .model = "claude-haiku-4-5-20251001",
                   .text = "claude streams", .nparts = 2}));
    const char *body = "{\"model\": \"fast\", \"x_odd\": [1, 2.50],"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const char *sbody = "{\"model\": \"fast\", \"stream\": true,"
                        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    tc_response_t r;

    /* Non-stream, passthrough hop: oa2 reads the client's bytes with its
     * own model; the rule's rewrite went to oa1 only. */
    gwf_request(f, "POST", CHAT, body, NULL, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "model"), "backup-mini-0613");
    cJSON_Delete(j);
    tc_response_free(&r);
    char *want = with_model(body, "fast", "gpt-4o", false);
    assert_sent(a, 0, "/v1/chat/completions", "gpt-4o", want);
    free(want);
    want = with_model(body, "fast", "backup-mini", false);
    assert_sent(b, 0, "/v1/chat/completions", "backup-mini", want);
    free(want);
    static const char *const log1[] = {
        "\"model\":\"fast\"", "\"provider\":\"oa2\"",
        "\"served_model\":\"backup-mini\"", "\"stream\":0", NULL};
    assert_true(gwf_log_has_all(f, log1));

    /* Streamed, passthrough hop: the same bytes plus the usage request. */
    gwf_request(f, "POST", CHAT, sbody, NULL, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, "backup-mini-0613", &done, &error);
    assert_true(done);
    assert_false(error);
    assert_string_equal(text, "streamed backup");
    free(text);
    tc_response_free(&r);
    want = with_model(sbody, "fast", "backup-mini", true);
    assert_sent(b, 1, "/v1/chat/completions", "backup-mini", want);
    free(want);
    static const char *const log2[] = {
        "\"provider\":\"oa2\"", "\"served_model\":\"backup-mini\"",
        "\"stream\":1", "\"output_tokens\":7", NULL};
    assert_true(gwf_log_has_all(f, log2));

    /* oa2 down too: claude gets a Messages request for its model. */
    gwf_request(f, "POST", CHAT, body, NULL, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "model"), "claude-haiku-4-5-20251001");
    assert_string_equal(gwf_oai_content(j), "from claude");
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_sent(c, 0, "/v1/messages", "claude-haiku-4-5", NULL);
    static const char *const log3[] = {
        "\"model\":\"fast\"", "\"provider\":\"claude\"",
        "\"served_model\":\"claude-haiku-4-5\"", "\"stream\":0", NULL};
    assert_true(gwf_log_has_all(f, log3));

    /* Streamed, translated hop. */
    gwf_request(f, "POST", CHAT, sbody, NULL, &r);
    assert_int_equal(r.status, 200);
    text = gwf_oai_stream_text(&r, "claude-haiku-4-5-20251001", &done,
                               &error);
    assert_true(done);
    assert_false(error);
    assert_string_equal(text, "claude streams");
    free(text);
    tc_response_free(&r);
    assert_sent(c, 1, "/v1/messages", "claude-haiku-4-5", NULL);
    static const char *const log4[] = {
        "\"provider\":\"claude\"", "\"served_model\":\"claude-haiku-4-5\"",
        "\"stream\":1", NULL};
    assert_true(gwf_log_has_all(f, log4));
    assert_int_equal(fu_requests_count(a), 4);
    assert_int_equal(fu_requests_count(b), 4);
    assert_int_equal(fu_requests_count(c), 2);
    trio_stop(f, &t);
}

/* The same for an Anthropic client, with a list mixing both forms: a
 * provider name sends the client's model (not the primary's rule
 * rewrite), an object its own model, to a passthrough hop (an2) and to a
 * translated one (oa); count_tokens follows the anthropic-type entries
 * with their models. */
static void test_failover_models_anthropic_client(void **state)
{
    (void)state;
    static const char *const names[] = {"an1", "an2", "oa"};
    static const char *const types[] = {"anthropic", "anthropic",
                                        "openai-compatible"};
    trio_t t;
    gwf_t *f = trio_start(&t, names, types,
                          ", {model_exact: fast, provider: an1, model: "
                          "claude-sonnet-4}",
                          "an1\n  failover: {an1: [an2, {provider: an2, "
                          "model: claude-small}, {provider: oa, model: "
                          "gpt-4o-mini}]}");
    fu_t *a = t.fu[0], *b = t.fu[1], *c = t.fu[2];
    fu_push(a, fu_anthropic_overloaded());
    fu_push(b, fu_anthropic_overloaded());
    fu_push(b, fu_anthropic_message(&(fu_llm_opts_t){
                   .model = "claude-small-1", .text = "small answer"}));
    char *body = body_for("fast", false, false);
    tc_response_t r;

    /* an1 gets the rule's model, an2 first the client's (a name entry),
     * then its entry's model: each time the client's bytes otherwise. */
    post(f, body, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "model"), "claude-small-1");
    cJSON_Delete(j);
    tc_response_free(&r);
    char *want = with_model(body, "fast", "claude-sonnet-4", false);
    assert_sent(a, 0, "/v1/messages", "claude-sonnet-4", want);
    free(want);
    assert_sent(b, 0, "/v1/messages", "fast", body);
    want = with_model(body, "fast", "claude-small", false);
    assert_sent(b, 1, "/v1/messages", "claude-small", want);
    free(want);
    static const char *const log1[] = {
        "\"provider\":\"an2\"", "\"served_model\":\"claude-small\"",
        "\"stream\":0", NULL};
    assert_true(gwf_log_has_all(f, log1));
    free(body);

    /* Streamed: the passthrough hop relays an2's events. */
    fu_reset(b);
    fu_push(b, fu_anthropic_overloaded());
    fu_push(b, fu_anthropic_stream(&(fu_llm_opts_t){
                   .model = "claude-small-1", .text = "small stream",
                   .nparts = 2}));
    body = body_for("fast", true, false);
    post(f, body, &r);
    assert_int_equal(r.status, 200);
    ev_list_t l;
    events_parse(gwf_body(&r), &l);
    events_drop_pings(&l);
    assert_sequence(&l);
    assert_string_equal(
        gwf_jstr(cJSON_GetObjectItem(l.data[0], "message"), "model"),
        "claude-small-1");
    char *text = events_text(&l, false);
    assert_string_equal(text, "small stream");
    free(text);
    events_free(&l);
    tc_response_free(&r);
    want = with_model(body, "fast", "claude-small", false);
    assert_sent(b, 1, "/v1/messages", "claude-small", want);
    free(want);

    /* an2 down both times: oa gets a chat request for its model, non-stream
     * and streamed; the client reads the model oa answered with. */
    fu_reset(b);
    fu_push(b, fu_anthropic_overloaded());
    fu_push(c, fu_openai_chat_stream(&(fu_llm_opts_t){
                   .model = "gpt-4o-mini-2024", .text = "oa streams",
                   .nparts = 2, .usage_chunk = true}));
    post(f, body, &r);
    assert_int_equal(r.status, 200);
    events_parse(gwf_body(&r), &l);
    events_drop_pings(&l);
    assert_sequence(&l);
    assert_string_equal(
        gwf_jstr(cJSON_GetObjectItem(l.data[0], "message"), "model"),
        "gpt-4o-mini-2024");
    text = events_text(&l, false);
    assert_string_equal(text, "oa streams");
    free(text);
    events_free(&l);
    tc_response_free(&r);
    assert_sent(c, 0, "/v1/chat/completions", "gpt-4o-mini", NULL);
    static const char *const log2[] = {
        "\"provider\":\"oa\"", "\"served_model\":\"gpt-4o-mini\"",
        "\"stream\":1", NULL};
    assert_true(gwf_log_has_all(f, log2));
    free(body);
    fu_reset(c);
    fu_push(c, fu_openai_chat(&(fu_llm_opts_t){.model = "gpt-4o-mini-2024",
                                                .text = "oa answers"}));
    body = body_for("fast", false, false);
    post(f, body, &r);
    assert_int_equal(r.status, 200);
    j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "model"), "gpt-4o-mini-2024");
    cJSON_Delete(j);
    tc_response_free(&r);
    assert_sent(c, 0, "/v1/chat/completions", "gpt-4o-mini", NULL);
    free(body);

    /* count_tokens: an1, then an2 under both entries, each with its
     * model. */
    fu_reset(b);
    fu_push(b, fu_anthropic_overloaded());
    fu_push(b, exact_json(200, "{\"input_tokens\":42}"));
    const char *cbody = "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"abcd\"}]}";
    gwf_request(f, "POST", COUNT_TOKENS, cbody, NULL, &r);
    if (r.status != 200)
        fail_msg("HTTP %ld: %s", r.status, gwf_body(&r));
    assert_string_equal(gwf_body(&r), "{\"input_tokens\":42}");
    tc_response_free(&r);
    assert_sent(b, 0, "/v1/messages/count_tokens", "fast", cbody);
    want = with_model(cbody, "fast", "claude-small", false);
    assert_sent(b, 1, "/v1/messages/count_tokens", "claude-small", want);
    free(want);
    trio_stop(f, &t);
}

/* Without an apps key the gateway serves both dialects. */
static void test_default_apps(void **state)
{
    (void)state;
    const char *yaml =
        "server: {host: 127.0.0.1, port: 0, workers: 1}\n"
        "providers:\n"
        "  - {name: mock, type: mock}\n"
        "routing: {default_provider: mock}\n"
        "logging: {level: error}\n";
    gwf_t *f = gwf_start_yaml(yaml);
    tc_response_t r;
    char *b = body_for("anything", false, false);
    post(f, b, &r);
    free(b);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_jstr(j, "type"), "message");
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_request(f, "POST", "/openai/v1/chat/completions",
                "{\"model\":\"x\",\"messages\":[{\"role\":\"user\","
                "\"content\":\"hi\"}]}", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(gwf_body(&r), "chat.completion"));
    tc_response_free(&r);
    gwf_stop(f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mock_non_stream_and_stream),
        cmocka_unit_test(test_openai_upstream_text_and_tools),
        cmocka_unit_test(test_anthropic_upstream_headers_forwarded),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_provider_429_and_529_relayed),
        cmocka_unit_test(test_unreachable_502_and_timeout_504),
        cmocka_unit_test(test_error_after_first_byte),
        cmocka_unit_test(test_keepalive_ping_events),
        cmocka_unit_test(test_models_and_count_tokens),
        cmocka_unit_test(test_default_apps),
        cmocka_unit_test(test_unmapped_fields_logged_at_debug),
        cmocka_unit_test(test_passthrough_non_stream_byte_identical),
        cmocka_unit_test(test_passthrough_stream_event_by_event),
        cmocka_unit_test(test_passthrough_errors_relayed),
        cmocka_unit_test(test_passthrough_retry_then_success),
        cmocka_unit_test(test_passthrough_failover_translates),
        cmocka_unit_test(test_translated_document_block_400),
        cmocka_unit_test(test_openai_overloaded_is_529),
        cmocka_unit_test(test_openai_passthrough_fails_over_to_anthropic),
        cmocka_unit_test(test_failover_models_openai_client),
        cmocka_unit_test(test_failover_models_anthropic_client),
        cmocka_unit_test(test_count_tokens_forwarded),
        cmocka_unit_test(test_count_tokens_failover_and_estimate),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
