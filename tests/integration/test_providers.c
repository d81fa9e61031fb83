/* test_providers.c: the gateway in-process in front of the scripted fake
 * upstream (tests/support/fake_upstream.h): OpenAI-type and Anthropic-type
 * providers, streaming relay, retries, failover, timeouts, errors after the
 * first byte, client disconnects, keepalive pings, error mapping and header
 * relay. Each test starts its own fake(s) and gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "fake_upstream.h"
#include "gw_fixture.h"
#include "polyglot/polyglot.h"
#include "test_client.h"

#define CHAT "/openai/v1/chat/completions"
#define MESSAGES "/anthropic/v1/messages"

/* A gateway with one app at /openai whose default provider is "up" (and
 * whatever extra providers/routing the test adds). */
static gwf_t *gw_start(const char *providers_yaml, const char *routing_yaml)
{
    char *yaml = tc_xasprintf(
        "server: {host: 127.0.0.1, port: 0, workers: 1, sse_keepalive: 100ms}\n"
        "providers:\n%s"
        "routing:\n%s"
        "apps: [{name: api, frontdoor: openai, path: /openai},\n"
        "       {name: ant, frontdoor: anthropic, path: /anthropic}]\n"
        "logging: {level: info}\n",
        providers_yaml, routing_yaml);
    gwf_t *f = gwf_start_yaml(yaml);
    free(yaml);
    return f;
}

static void post(gwf_t *f, const char *body, tc_response_t *r)
{
    gwf_request(f, "POST", CHAT, body, NULL, r);
}

static const char *error_message(cJSON *j)
{
    return gwf_jstr(cJSON_GetObjectItem(j, "error"), "message");
}

static const char simple_body[] =
    "{\"model\":\"gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello\"}]}";
static const char stream_body[] =
    "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"messages\":[{\"role\":"
    "\"user\",\"content\":\"Say hello\"}]}";

/* ---- OpenAI-type provider ------------------------------------------------- */

static void test_openai_non_stream(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "Hello from upstream"}));
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_oai_content(j), "Hello from upstream");
    cJSON *usage = cJSON_GetObjectItem(j, "usage");
    assert_int_equal(cJSON_GetObjectItem(usage, "prompt_tokens")->valueint, 12);
    cJSON_Delete(j);
    char *ov = tc_response_header(&r, "x-polyglot-overhead-us");
    assert_non_null(ov);
    free(ov);

    /* What the upstream got: the route, the key, the request. */
    fu_request_t *rq = fu_request(fu, 0);
    assert_non_null(rq);
    assert_string_equal(rq->path, "/v1/chat/completions");
    assert_string_equal(fu_request_header(rq, "authorization"), "Bearer sk-test-up");
    cJSON *sent = cJSON_Parse(rq->body);
    assert_string_equal(cJSON_GetObjectItem(sent, "model")->valuestring, "gpt-4o-mini");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(sent, "stream")));
    cJSON_Delete(sent);
    fu_request_free(rq);

    /* The access log names the provider and never the key. */
    assert_true(gwf_log_has(f, "\"provider\":\"up\""));
    assert_false(tc_log_contains(&f->log, "sk-test-up"));
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* providers[].http1_client: an http:// base_url goes through the native
 * HTTP/1.1 client by default and through libcurl with `curl`; the upstream
 * tells them apart by Accept-Encoding (native asks for identity, curl
 * offers its decoders). Both answer the client the same, stream or not. */
static void test_http1_client_choice(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "Hello"}));
    char *a = gwf_provider_yaml("nat", "openai-compatible", fu, NULL);
    char *b = gwf_provider_yaml("cur", "openai-compatible", fu,
                                "http1_client: curl");
    char *p = tc_xasprintf("%s%s", a, b);
    gwf_t *f = gw_start(p, "  rules: [{model_prefix: curl-, provider: cur}]\n"
                           "  default_provider: nat\n");
    static const char *bodies[] = {
        simple_body,
        "{\"model\":\"curl-x\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"Say hello\"}]}",
        stream_body,
        "{\"model\":\"curl-x\",\"stream\":true,\"messages\":[{\"role\":"
        "\"user\",\"content\":\"Say hello\"}]}",
    };
    for (size_t i = 0; i < 4; i++) {
        tc_response_t r;
        if (i == 2) { /* from now on the fake streams */
            fu_reset(fu);
            fu_push(fu, fu_openai_chat_stream(
                            &(fu_llm_opts_t){.text = "Hi there", .nparts = 3}));
        }
        post(f, bodies[i], &r);
        assert_int_equal(r.status, 200);
        if (i < 2) {
            cJSON *j = gwf_json(&r);
            assert_string_equal(gwf_oai_content(j), "Hello");
            cJSON_Delete(j);
        } else {
            bool done = false, error = false;
            char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
            assert_true(done);
            assert_false(error);
            assert_string_equal(text, "Hi there");
            free(text);
        }
        fu_request_t *rq = fu_request(fu, i % 2);
        const char *enc = fu_request_header(rq, "accept-encoding");
        assert_non_null(enc);
        if (i % 2 == 0)
            assert_string_equal(enc, "identity");
        else
            assert_non_null(strstr(enc, "gzip"));
        fu_request_free(rq);
        tc_response_free(&r);
    }
    gwf_stop(f);
    free(a);
    free(b);
    free(p);
    fu_stop(fu);
}

static void test_openai_stream_relay(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_chat_stream(&(fu_llm_opts_t){
                    .text = "one two three four five", .nparts = 5,
                    .delay_ms = 5, .usage_chunk = true}));
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "one two three four five");
    assert_true(done);
    assert_false(error);
    /* The client did not ask for usage: the usage chunk the gateway asked
     * upstream for (to log it) is not forwarded. */
    assert_null(strstr(gwf_body(&r), "\"choices\":[]"));
    fu_request_t *rq = fu_request(fu, 0);
    cJSON *sent = cJSON_Parse(rq->body);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(sent, "stream")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(
        cJSON_GetObjectItem(sent, "stream_options"), "include_usage")));
    cJSON_Delete(sent);
    fu_request_free(rq);
    if (!gwf_log_has(f, "\"output_tokens\":7"))
        fail_msg("usage of the stream not logged");
    free(text);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_passthrough_body_byte_identical(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "ok"}));
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  rules: [{model_exact: fast, provider: up, "
                           "model: gpt-4o-mini}]\n"
                           "  default_provider: up\n");
    /* Odd spacing, fields the gateway does not know, n > 1 and an escaped
     * string: all of it reaches the upstream as the client wrote it, only
     * the model's value rewritten by the routing rule. */
    const char *sent_body =
        "{ \"messages\" : [{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\"}],\n"
        "  \"model\":\"fast\", \"n\": 2, \"logit_bias\": {\"50256\": -100},"
        " \"x_vendor\": [1, 2.50, true] }";
    const char *want =
        "{ \"messages\" : [{\"role\":\"user\",\"content\":\"say \\\"hi\\\"\"}],\n"
        "  \"model\":\"gpt-4o-mini\", \"n\": 2, \"logit_bias\": {\"50256\": -100},"
        " \"x_vendor\": [1, 2.50, true] }";
    tc_response_t r;
    post(f, sent_body, &r);
    assert_int_equal(r.status, 200);
    fu_request_t *rq = fu_request(fu, 0);
    assert_non_null(rq);
    assert_string_equal(rq->body, want);
    fu_request_free(rq);
    /* The answer is the upstream's body as it sent it. */
    assert_non_null(strstr(gwf_body(&r), "chatcmpl-fake1"));
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* A stream whose client turned usage off, or sent stream_options without
 * include_usage, stays passthrough: the upstream gets the client's bytes
 * with include_usage: true spliced into its stream_options (and the model
 * rewritten where routing says), the client does not get the usage chunk,
 * and the log has the tokens. */
static void test_passthrough_stream_usage_off(void **state)
{
    (void)state;
#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]"
    static const struct {
        const char *client, *upstream;
    } cases[] = {
        {"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\":false}," MSGS "}",
         "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\":true}," MSGS "}"},
        {"{\"model\":\"gpt-4o-mini\", \"stream\": true, \"stream_options\" : "
         "{ },\n " MSGS "}",
         "{\"model\":\"gpt-4o-mini\", \"stream\": true, \"stream_options\" : "
         "{\"include_usage\":true },\n " MSGS "}"},
        {"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_obfuscation\": false}," MSGS "}",
         "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\":true,\"include_obfuscation\": false}," MSGS "}"},
        {"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\": null, \"x\": 1}," MSGS "}",
         "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\": true, \"x\": 1}," MSGS "}"},
        {"{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":null,"
         MSGS "}",
         "{\"model\":\"gpt-4o-mini\",\"stream\":true,\"stream_options\":"
         "{\"include_usage\":true}," MSGS "}"},
        /* Both splices, the model's after the usage's. */
        {"{\"stream_options\":{\"include_usage\":false},\"stream\":true,"
         "\"model\":\"fast\"," MSGS "}",
         "{\"stream_options\":{\"include_usage\":true},\"stream\":true,"
         "\"model\":\"gpt-4o-mini\"," MSGS "}"},
    };
#undef MSGS
    fu_t *fu = fu_start();
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  rules: [{model_exact: fast, provider: up, "
                           "model: gpt-4o-mini}]\n"
                           "  default_provider: up\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fu_reset(fu);
        fu_push(fu, fu_openai_chat_stream(&(fu_llm_opts_t){
                        .text = "one two three", .nparts = 3,
                        .output_tokens = 31 + (int)i, .usage_chunk = true}));
        tc_response_t r;
        post(f, cases[i].client, &r);
        if (r.status != 200)
            fail_msg("case %zu: HTTP %ld: %s", i, r.status, gwf_body(&r));
        bool done, error;
        char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
        assert_string_equal(text, "one two three");
        assert_true(done);
        assert_false(error);
        free(text);
        /* The usage chunk (empty choices) stayed with the gateway. */
        if (strstr(gwf_body(&r), "\"choices\":[]") != NULL)
            fail_msg("case %zu: the client got the usage chunk", i);
        tc_response_free(&r);
        fu_request_t *rq = fu_request(fu, 0);
        assert_non_null(rq);
        assert_string_equal(rq->body, cases[i].upstream);
        fu_request_free(rq);
        char *tokens = tc_xasprintf("\"output_tokens\":%d", 31 + (int)i);
        if (!gwf_log_has(f, tokens))
            fail_msg("case %zu: usage not logged", i);
        free(tokens);
    }
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* An OpenAI-compatible server that writes JSON with spaces ("usage": {)
 * and sends "usage": null on every chunk (as vLLM does): the usage chunk
 * is still recognised, held back from a client that did not ask for it,
 * and logged; the null ones pass as they are. */
static void test_passthrough_usage_chunk_spaced(void **state)
{
    (void)state;
#define PRE "data: {\"id\": \"c1\", \"object\": \"chat.completion.chunk\", " \
            "\"created\": 1, \"model\": \"m\", \"choices\": "
    fu_t *fu = fu_start();
    fu_resp_t *rs = fu_resp_new(200);
    fu_resp_header(rs, "Content-Type", "text/event-stream");
    fu_resp_chunked(rs);
    fu_resp_part_str(rs, 0, PRE "[{\"index\": 0, \"delta\": {\"role\": "
                            "\"assistant\", \"content\": \"hi \"}, "
                            "\"finish_reason\": null}], \"usage\": null}\n\n");
    fu_resp_part_str(rs, 0, PRE "[{\"index\": 0, \"delta\": {\"content\": "
                            "\"there\"}, \"finish_reason\": \"stop\"}], "
                            "\"usage\": null}\n\n");
    fu_resp_part_str(rs, 0, PRE "[], \"usage\" : {\"prompt_tokens\": 5, "
                            "\"completion_tokens\": 43, \"total_tokens\": 48}}"
                            "\n\ndata: [DONE]\n\n");
#undef PRE
    fu_push(fu, rs);
    char *p = gwf_provider_yaml("up", "openai-compatible", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "hi there");
    assert_true(done);
    assert_false(error);
    free(text);
    assert_null(strstr(gwf_body(&r), "completion_tokens"));
    assert_non_null(strstr(gwf_body(&r), "\"usage\": null"));
    tc_response_free(&r);
    if (!gwf_log_has(f, "\"output_tokens\":43"))
        fail_msg("usage of the stream not logged");
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- Anthropic-type provider behind the OpenAI frontdoor ------------------- */

/* n > 1 cannot be translated (Anthropic has no choices): a 400 naming
 * param n, nothing sent upstream. */
static void test_anthropic_provider_n_refused(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_message(&(fu_llm_opts_t){.text = "x"}));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: claude\n");
    tc_response_t r;
    post(f, "{\"model\":\"claude-x\",\"n\":2,\"messages\":[{\"role\":"
            "\"user\",\"content\":\"hi\"}]}", &r);
    cJSON *e = gwf_assert_openai_error(&r, 400, "n > 1");
    assert_string_equal(gwf_jstr(cJSON_GetObjectItem(e, "error"), "param"), "n");
    cJSON_Delete(e);
    tc_response_free(&r);
    assert_int_equal(fu_requests_count(fu), 0);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}


static void test_anthropic_provider(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_message(&(fu_llm_opts_t){.text = "Bonjour"}));
    fu_push(fu, fu_anthropic_stream(&(fu_llm_opts_t){.text = "Bon jour a tous",
                                                     .nparts = 4}));
    char *p = gwf_provider_yaml("claude", "anthropic", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: claude\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_oai_content(j), "Bonjour");
    cJSON_Delete(j);
    tc_response_free(&r);

    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "Bon jour a tous");
    assert_true(done);
    free(text);
    tc_response_free(&r);

    fu_request_t *rq = fu_request(fu, 0);
    assert_string_equal(rq->path, "/v1/messages");
    assert_string_equal(fu_request_header(rq, "x-api-key"), "sk-test-claude");
    assert_string_equal(fu_request_header(rq, "anthropic-version"), "2023-06-01");
    assert_null(fu_request_header(rq, "authorization"));
    cJSON *sent = cJSON_Parse(rq->body);
    /* Anthropic requires max_tokens: the default fills it in. */
    assert_int_equal(cJSON_GetObjectItem(sent, "max_tokens")->valueint, 4096);
    cJSON_Delete(sent);
    fu_request_free(rq);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- retries, failover, error mapping ---------------------------------------- */

static void test_retry_then_success(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_server_error());
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "after a retry"}));
    char *p = gwf_provider_yaml("up", "openai", fu, "max_retries: 2");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_oai_content(j), "after a retry");
    cJSON_Delete(j);
    assert_int_equal(fu_requests_count(fu), 2);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_429_retry_after_relayed(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_rate_limited(7));
    char *p = gwf_provider_yaml("up", "openai", fu, "max_retries: 0");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 429);
    char *ra = tc_response_header(&r, "retry-after");
    assert_non_null(ra);
    assert_string_equal(ra, "7");
    free(ra);
    cJSON *j = gwf_json(&r);
    assert_true(strlen(error_message(j)) > 0);
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_529_becomes_503_with_retry_after(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_anthropic_overloaded());
    char *p = gwf_provider_yaml("claude", "anthropic", fu, "max_retries: 0");
    gwf_t *f = gw_start(p, "  default_provider: claude\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 503);
    char *ra = tc_response_header(&r, "retry-after");
    assert_non_null(ra);
    free(ra);
    cJSON *j = gwf_json(&r);
    assert_non_null(cJSON_GetObjectItem(j, "error"));
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_failover_to_second_provider(void **state)
{
    (void)state;
    fu_t *bad = fu_start(), *good = fu_start();
    fu_push(bad, fu_openai_error(503, "server_error", NULL, "down", 0));
    fu_push(good, fu_openai_chat(&(fu_llm_opts_t){.text = "from the backup"}));
    char *p1 = gwf_provider_yaml("primary", "openai", bad, "max_retries: 1");
    char *p2 = gwf_provider_yaml("backup", "openai-compatible", good, NULL);
    char *providers = tc_xasprintf("%s%s", p1, p2);
    gwf_t *f = gw_start(providers, "  default_provider: primary\n"
                                   "  failover: {primary: [backup]}\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    cJSON *j = gwf_json(&r);
    assert_string_equal(gwf_oai_content(j), "from the backup");
    cJSON_Delete(j);
    /* The primary was tried once and retried once before failing over. */
    assert_int_equal(fu_requests_count(bad), 2);
    assert_int_equal(fu_requests_count(good), 1);
    assert_true(gwf_log_has(f, "\"provider\":\"backup\""));
    tc_response_free(&r);
    gwf_stop(f);
    free(p1);
    free(p2);
    free(providers);
    fu_stop(bad);
    fu_stop(good);
}

static void test_unreachable_upstream_502(void **state)
{
    (void)state;
    /* A port nothing listens on: bind one, remember it, close it. */
    fu_t *fu = fu_start();
    char *p = gwf_provider_yaml("up", "openai-compatible", fu, "max_retries: 0");
    fu_stop(fu);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 502);
    cJSON *j = gwf_json(&r);
    assert_non_null(strstr(error_message(j), "could not be reached"));
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
}

static void test_first_byte_timeout_504(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *slow = fu_openai_chat(&(fu_llm_opts_t){.text = "too late"});
    fu_resp_slow_head(slow, 3000);
    fu_push(fu, slow);
    char *p = gwf_provider_yaml("up", "openai", fu,
                                "max_retries: 0, timeouts: {first_byte: 200ms}");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 504);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_upstream_error_body_and_key_redaction(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_openai_error(401, "invalid_request_error", "invalid_api_key",
                                "Incorrect API key provided: sk-test-up.", 0));
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 401);
    assert_null(strstr(gwf_body(&r), "sk-test-up"));
    assert_non_null(strstr(gwf_body(&r), "[redacted]"));
    assert_false(tc_log_contains(&f->log, "sk-test-up"));
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_lying_upstreams_get_clean_errors(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_push(fu, fu_malformed_json());
    fu_push(fu, fu_openai_200_error());
    char *p = gwf_provider_yaml("up", "openai", fu, "max_retries: 0");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    for (int i = 0; i < 2; i++) {
        tc_response_t r;
        post(f, simple_body, &r);
        assert_int_equal(r.status, 502);
        cJSON *j = gwf_json(&r);
        assert_non_null(cJSON_GetObjectItem(j, "error"));
        cJSON_Delete(j);
        tc_response_free(&r);
    }
    /* The worker still serves. */
    fu_reset(fu);
    fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "fine again"}));
    tc_response_t r;
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* ---- failures after the first byte ----------------------------------------------- */

static void test_drop_mid_stream_ends_with_error_event(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened("partial");
    fu_resp_drop(s);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "partial");
    assert_false(done);
    assert_true(error);
    /* Bytes had gone to the client: no retry. */
    assert_int_equal(fu_requests_count(fu), 1);
    free(text);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_idle_timeout_and_keepalive_pings(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened("thinking...");
    fu_resp_stall(s);
    fu_push(fu, s);
    /* Silent upstream: pings every 100 ms (server.sse_keepalive), then the
     * idle timeout ends the stream with an error. */
    char *p = gwf_provider_yaml("up", "openai", fu, "timeouts: {idle: 700ms}");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(gwf_body(&r), ": ping\n\n"));
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "thinking...");
    assert_false(done);
    assert_true(error);
    free(text);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

static void test_client_disconnect_cancels_upstream(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened("x");
    char *y = gwf_oai_chunk_event("y", false);
    fu_resp_endless(s, 20, y);
    free(y);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("up", "openai", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");

    int fd = tc_raw_post(f->port, CHAT, stream_body, NULL);
    assert_true(fd >= 0);
    tc_bytes_t in = {0};
    bool closed = false;
    /* Some of the stream arrives, then the client goes away. */
    for (int i = 0; i < 100 && (in.n == 0 || strstr(in.p, "\"y\"") == NULL);
         i++)
        if (tc_raw_recv(fd, 5000, in.n + 1024, &in, &closed) == 0 || closed)
            break;
    if (in.p == NULL || strstr(in.p, "\"y\"") == NULL)
        fail_msg("no streamed deltas before the disconnect; got: %s",
                 in.p ? in.p : "(nothing)");
    close(fd);
    /* The gateway cancels its transfer: the fake sees the connection close. */
    assert_true(fu_wait_closed(fu, 1, 5000));
    tc_bytes_free(&in);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* The bytes libpolyglot holds right now: every allocation of the library
 * goes through pg_set_allocator's hooks (installed in main), while the
 * fake upstream and the test use plain malloc, so this counts the
 * gateway alone. */
static _Atomic long live_bytes;
/* The most live_bytes has been since the last peak_reset. */
static _Atomic long peak_bytes;
typedef struct { size_t n; size_t pad; } hdr_t;

static void peak_note(void)
{
    long now = live_bytes, seen = peak_bytes;
    while (now > seen && !atomic_compare_exchange_weak(&peak_bytes, &seen, now))
        ;
}

static long peak_reset(void)
{
    peak_bytes = live_bytes;
    return peak_bytes;
}

static void *count_malloc(size_t n)
{
    hdr_t *h = malloc(sizeof(hdr_t) + n);
    if (h == NULL)
        return NULL;
    h->n = n;
    live_bytes += (long)n;
    peak_note();
    return h + 1;
}

static void count_free(void *p)
{
    if (p == NULL)
        return;
    hdr_t *h = (hdr_t *)p - 1;
    live_bytes -= (long)h->n;
    free(h);
}

static void *count_realloc(void *p, size_t n)
{
    if (p == NULL)
        return count_malloc(n);
    hdr_t *h = (hdr_t *)p - 1;
    size_t old = h->n;
    hdr_t *nh = realloc(h, sizeof(hdr_t) + n);
    if (nh == NULL)
        return NULL;
    nh->n = n;
    live_bytes += (long)n - (long)old;
    peak_note();
    return nh + 1;
}

static void *count_calloc(size_t c, size_t n)
{
    void *p = count_malloc(c * n);
    if (p != NULL)
        memset(p, 0, c * n);
    return p;
}

static void test_slow_client_bounded_memory(void **state)
{
    (void)state;
    /* An upstream that streams ~16 KiB events as fast as it can, and a
     * client that reads nothing: the gateway must pause the upstream
     * transfer once the client's queue is full instead of buffering. */
    char *content = tc_xmalloc(16 * 1024 + 1);
    memset(content, 'z', 16 * 1024);
    content[16 * 1024] = '\0';
    char *event = gwf_oai_chunk_event(content, false);
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened(NULL);
    fu_resp_endless(s, 1, event);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("up", "openai", fu, "timeouts: {idle: 60s}");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    long before = live_bytes;
    int fd = tc_raw_post(f->port, CHAT, stream_body, NULL);
    assert_true(fd >= 0);
    /* Unbounded buffering would grow by ~16 MiB a second here. */
    sleep(3);
    long after = live_bytes;
    close(fd);
    assert_true(fu_wait_closed(fu, 1, 10000));
    /* The client queue is bounded at 1 MiB; allow the per-request state
     * and buffers on top, far below what the upstream sent meanwhile. */
    if (after - before > 4L * 1024 * 1024)
        fail_msg("the gateway held %ld more bytes while the client did not "
                 "read", after - before);
    gwf_stop(f);
    free(p);
    free(event);
    free(content);
    fu_stop(fu);
}

static void test_missing_key_names_variable_and_fails_over(void **state)
{
    (void)state;
    fu_t *good = fu_start();
    fu_push(good, fu_openai_chat(&(fu_llm_opts_t){.text = "backup answered"}));
    unsetenv("POLYGLOT_TEST_UNSET_KEY");
    char *p2 = gwf_provider_yaml("backup", "openai", good, NULL);
    char *providers = tc_xasprintf(
        "  - {name: nokey, type: openai, api_key: \"${POLYGLOT_TEST_UNSET_KEY:-}\"}\n%s",
        p2);
    gwf_t *f = gw_start(providers,
                        "  rules: [{model_prefix: solo, provider: nokey}]\n"
                        "  default_provider: nokey\n"
                        "  failover: {nokey: [backup]}\n");
    tc_response_t r;
    /* With a failover target, the request is served by it. */
    post(f, simple_body, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    gwf_stop(f);

    /* Alone, the client learns which variable to set. */
    f = gw_start("  - {name: nokey, type: openai, api_key: \"${POLYGLOT_TEST_UNSET_KEY:-}\"}\n",
                 "  default_provider: nokey\n");
    post(f, simple_body, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(gwf_body(&r), "POLYGLOT_TEST_UNSET_KEY"));
    tc_response_free(&r);
    gwf_stop(f);
    free(p2);
    free(providers);
    fu_stop(good);
}

/* ---- upstreams that lie ------------------------------------------------------- */

static const char msgs_body[] =
    "{\"model\":\"claude-x\",\"max_tokens\":64,\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello\"}]}";
static const char msgs_stream_body[] =
    "{\"model\":\"claude-x\",\"max_tokens\":64,\"stream\":true,\"messages\":"
    "[{\"role\":\"user\",\"content\":\"Say hello\"}]}";

static void post_messages(gwf_t *f, const char *body, tc_response_t *r)
{
    static const char *const hdrs[] = {"anthropic-version: 2023-06-01", NULL};
    gwf_request(f, "POST", MESSAGES, body, hdrs, r);
}

/* A 200 with an HTML page, as a captive portal or a misrouted proxy
 * answers whatever it was asked. */
static fu_resp_t *html_page(void)
{
    fu_resp_t *r = fu_resp_new(200);
    fu_resp_header(r, "Content-Type", "text/html; charset=utf-8");
    fu_resp_part_str(r, 0, "<!DOCTYPE html>\n<html><head><title>Sign in"
                           "</title></head><body><h1>Please sign in</h1>"
                           "</body></html>\n");
    return r;
}

/* After a lie, the same worker answers the next request normally. */
static void assert_still_serves(gwf_t *f, fu_t *fu, bool anthropic)
{
    tc_response_t r;
    fu_reset(fu);
    if (anthropic) {
        fu_push(fu, fu_anthropic_message(&(fu_llm_opts_t){.text = "fine again"}));
        post_messages(f, msgs_body, &r);
    } else {
        fu_push(fu, fu_openai_chat(&(fu_llm_opts_t){.text = "fine again"}));
        post(f, simple_body, &r);
    }
    if (r.status != 200 || strstr(gwf_body(&r), "fine again") == NULL)
        fail_msg("the worker does not serve after the lie: HTTP %ld %s",
                 r.status, gwf_body(&r));
    tc_response_free(&r);
}

/* An OpenAI-type provider "up" (the default) and an Anthropic-type one
 * "claude" (models claude*), each on its own fake, no retries. */
typedef struct duo {
    fu_t *oai, *ant;
    gwf_t *f;
} duo_t;

static duo_t duo_start(void)
{
    duo_t d = {.oai = fu_start(), .ant = fu_start()};
    char *p1 = gwf_provider_yaml("up", "openai", d.oai, "max_retries: 0");
    char *p2 = gwf_provider_yaml("claude", "anthropic", d.ant, "max_retries: 0");
    char *providers = tc_xasprintf("%s%s", p1, p2);
    d.f = gw_start(providers, "  rules: [{model_prefix: claude, provider: claude}]\n"
                              "  default_provider: up\n");
    free(p1);
    free(p2);
    free(providers);
    return d;
}

static void duo_stop(duo_t *d)
{
    gwf_stop(d->f);
    fu_stop(d->oai);
    fu_stop(d->ant);
}

/* One lie: fu answers the next request with lie; the client (Anthropic
 * at /anthropic, else OpenAI at /openai) posting body gets a 502 in its
 * own dialect whose message contains want (when given) and none of the
 * upstream's HTML; then the worker serves that provider normally. */
static void expect_lie(duo_t *d, fu_t *fu, bool anthropic_client,
                       fu_resp_t *lie, const char *body, const char *want)
{
    tc_response_t r;
    fu_reset(fu);
    fu_push(fu, lie);
    if (anthropic_client) {
        post_messages(d->f, body, &r);
        gwf_assert_anthropic_error(&r, 502, NULL, want);
    } else {
        post(d->f, body, &r);
        cJSON_Delete(gwf_assert_openai_error(&r, 502, want));
    }
    assert_null(strstr(gwf_body(&r), "<html>"));
    tc_response_free(&r);
    assert_still_serves(d->f, fu, fu == d->ant);
}

static const char claude_body[] =
    "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\","
    "\"content\":\"Say hello\"}]}";

/* text/html under a 200, to a non-stream request: OpenAI client through
 * an OpenAI-type provider (passthrough), through an Anthropic-type
 * provider (translation), and an Anthropic client through an
 * Anthropic-type provider (passthrough). */
static void test_html_200_to_non_stream(void **state)
{
    (void)state;
    duo_t d = duo_start();
    expect_lie(&d, d.oai, false, html_page(), simple_body, "malformed");
    expect_lie(&d, d.ant, false, html_page(), claude_body, "malformed");
    expect_lie(&d, d.ant, true, html_page(), msgs_body, "malformed");
    duo_stop(&d);
}

/* A stream was asked for and the upstream answers a whole JSON body (it
 * ignored stream: true): nothing streamable came, so the client gets a
 * 502 before any stream starts, never a 200 with an empty or broken
 * stream. */
static void test_json_body_to_stream_request(void **state)
{
    (void)state;
    duo_t d = duo_start();
    const char *want = "instead of an event stream";
    expect_lie(&d, d.oai, false,
               fu_openai_chat(&(fu_llm_opts_t){.text = "not a stream"}),
               stream_body, want);
    expect_lie(&d, d.ant, true,
               fu_anthropic_message(&(fu_llm_opts_t){.text = "not a stream"}),
               msgs_stream_body, want);
    duo_stop(&d);
}

/* An OpenAI-compatible server that labels its event stream
 * application/json (after a blank line): the body tells, the stream is
 * relayed. */
static void test_stream_labelled_json(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *rs = fu_resp_new(200);
    fu_resp_header(rs, "Content-Type", "application/json");
    fu_resp_chunked(rs);
    fu_resp_part_str(rs, 0, "\n");
    fu_resp_part_str(rs, 0, "data: {\"id\":\"c1\",\"object\":"
                            "\"chat.completion.chunk\",\"created\":1,\"model\":"
                            "\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                            "\"assistant\",\"content\":\"labelled\"},"
                            "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    fu_push(fu, rs);
    char *p = gwf_provider_yaml("up", "openai-compatible", fu, NULL);
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_string_equal(text, "labelled");
    assert_true(done);
    assert_false(error);
    free(text);
    tc_response_free(&r);
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* A 200 whose body is the provider's error object: the client gets an
 * error with the upstream's message, never a 200. Non-stream and stream,
 * OpenAI-type and Anthropic-type (as the Anthropic client's passthrough
 * and translated for an OpenAI client). */
static void test_200_with_error_body(void **state)
{
    (void)state;
    duo_t d = duo_start();
    const char *oai_msg = "The server had an error";
    const char *ant_msg = "Internal server error";
    expect_lie(&d, d.oai, false, fu_openai_200_error(), simple_body, oai_msg);
    expect_lie(&d, d.oai, false, fu_openai_200_error(), stream_body, oai_msg);
    expect_lie(&d, d.ant, true, fu_anthropic_200_error(), msgs_body, ant_msg);
    expect_lie(&d, d.ant, true, fu_anthropic_200_error(), msgs_stream_body,
               ant_msg);
    expect_lie(&d, d.ant, false, fu_anthropic_200_error(), claude_body,
               ant_msg);
    duo_stop(&d);
}

/* A non-stream answer that never ends (chunked, a part every 1 ms): the
 * call fails with 502 once max_response_bytes is reached, the gateway
 * holds no more than about that bound meanwhile, and it closes the
 * upstream connection. */
static void test_endless_body_stops_at_max_response_bytes(void **state)
{
    (void)state;
    char part[4096];
    memset(part, ' ', sizeof(part) - 1);
    part[sizeof(part) - 1] = '\0';
    fu_t *fu = fu_start();
    fu_resp_t *s = fu_resp_new(200);
    fu_resp_header(s, "Content-Type", "application/json");
    fu_resp_chunked(s);
    fu_resp_part_str(s, 0, "{\"id\":\"chatcmpl-endless\",\"object\":"
                           "\"chat.completion\",\"choices\":[");
    fu_resp_endless(s, 1, part);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("up", "openai", fu,
                                "max_retries: 0, max_response_bytes: 256KiB, "
                                "timeouts: {total: 60s}");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    long before = peak_reset();
    tc_response_t r;
    post(f, simple_body, &r);
    long peak = peak_bytes;
    cJSON_Delete(gwf_assert_openai_error(
        &r, 502, "larger than max_response_bytes (262144 bytes)"));
    tc_response_free(&r);
    assert_true(fu_wait_closed(fu, 1, 5000));
    /* The body buffer stops at the bound (plus the request's own state);
     * without it the gateway would have kept reading to 64 MiB. */
    if (peak - before > 1024L * 1024)
        fail_msg("the gateway held %ld bytes more for a 256 KiB bound",
                 peak - before);
    assert_still_serves(f, fu, false);

    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

/* The same bound ends a stream that never ends, after its first events
 * went to the client: an error event, no [DONE], connection closed. */
static void test_endless_stream_stops_at_max_response_bytes(void **state)
{
    (void)state;
    fu_t *fu = fu_start();
    fu_resp_t *s = gwf_oai_stream_opened(NULL);
    char *y = gwf_oai_chunk_event("y", false);
    fu_resp_endless(s, 1, y);
    free(y);
    fu_push(fu, s);
    char *p = gwf_provider_yaml("up", "openai", fu,
                                "max_retries: 0, max_response_bytes: 256KiB, "
                                "timeouts: {total: 60s}");
    gwf_t *f = gw_start(p, "  default_provider: up\n");
    tc_response_t r;
    post(f, stream_body, &r);
    assert_int_equal(r.status, 200);
    bool done, error;
    char *text = gwf_oai_stream_text(&r, NULL, &done, &error);
    assert_true(strlen(text) > 0);
    assert_false(done);
    assert_true(error);
    free(text);
    assert_non_null(strstr(gwf_body(&r), "larger than max_response_bytes"));
    tc_response_free(&r);
    assert_true(fu_wait_closed(fu, 1, 5000));
    gwf_stop(f);
    free(p);
    fu_stop(fu);
}

int main(void)
{
    /* Before anything allocates: see live_bytes. */
    pg_set_allocator(count_malloc, count_realloc, count_calloc, count_free);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_non_stream),
        cmocka_unit_test(test_openai_stream_relay),
        cmocka_unit_test(test_passthrough_body_byte_identical),
        cmocka_unit_test(test_passthrough_stream_usage_off),
        cmocka_unit_test(test_passthrough_usage_chunk_spaced),
        cmocka_unit_test(test_anthropic_provider_n_refused),
        cmocka_unit_test(test_stream_labelled_json),
        cmocka_unit_test(test_anthropic_provider),
        cmocka_unit_test(test_retry_then_success),
        cmocka_unit_test(test_429_retry_after_relayed),
        cmocka_unit_test(test_529_becomes_503_with_retry_after),
        cmocka_unit_test(test_failover_to_second_provider),
        cmocka_unit_test(test_unreachable_upstream_502),
        cmocka_unit_test(test_first_byte_timeout_504),
        cmocka_unit_test(test_upstream_error_body_and_key_redaction),
        cmocka_unit_test(test_lying_upstreams_get_clean_errors),
        cmocka_unit_test(test_drop_mid_stream_ends_with_error_event),
        cmocka_unit_test(test_idle_timeout_and_keepalive_pings),
        cmocka_unit_test(test_client_disconnect_cancels_upstream),
        cmocka_unit_test(test_slow_client_bounded_memory),
        cmocka_unit_test(test_missing_key_names_variable_and_fails_over),
        cmocka_unit_test(test_html_200_to_non_stream),
        cmocka_unit_test(test_json_body_to_stream_request),
        cmocka_unit_test(test_200_with_error_body),
        cmocka_unit_test(test_endless_body_stops_at_max_response_bytes),
        cmocka_unit_test(test_endless_stream_stops_at_max_response_bytes),
        cmocka_unit_test(test_http1_client_choice),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
