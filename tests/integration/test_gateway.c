/* test_gateway.c: the whole gateway in-process, driven over real TCP. Each
 * test builds a YAML config, starts its own gateway on 127.0.0.1:0 through
 * the public API only (include/polyglot), talks to it with libcurl (or a
 * raw socket where the exact bytes matter) and frees it. The mock provider
 * answers, so every expected reply is known in advance.
 *
 * Threads: the test thread is the gateway's host thread; the gateway runs
 * its own worker threads (or, in the host-loop test, a test-owned loop),
 * so blocking libcurl calls from the test thread are fine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <uv.h>

#include "gw_fixture.h"
#include "polyglot/polyglot.h"
#include "test_client.h"

#define CHAT_PATH "/openai/v1/chat/completions"

/* ---- config ------------------------------------------------------------- */

typedef struct cfg_opts {
    int workers;              /* 0: 2 */
    int chunks;               /* 0: 8 */
    int chunk_delay_ms;
    bool no_default_provider; /* routing without default_provider */
    const char *max_body;     /* NULL: 1KiB */
    const char *header_timeout; /* NULL: 300ms */
    const char *idle_timeout; /* NULL: 5s */
    const char *extra_providers; /* YAML list items appended to providers */
    const char *extra_rules;  /* YAML flow items appended to routing.rules */
    const char *busy_poll;    /* NULL: 0 (off) */
} cfg_opts_t;

/* The config of the task description, with knobs. The mock provider holds
 * an api_key only to prove that it never reaches a log line. */
static char *cfg_build(const cfg_opts_t *o)
{
    return tc_xasprintf(
        "server: {host: 127.0.0.1, port: 0, workers: %d, max_body_bytes: %s,"
        " max_header_bytes: 4KiB,\n"
        "         header_timeout: %s, idle_timeout: %s, shutdown_timeout: 5s,\n"
        "         busy_poll: %s}\n"
        "providers:\n"
        "  - name: mock\n"
        "    type: mock\n"
        "    api_key: sk-secret-123\n"
        "    models: [mock-echo]\n"
        "    mock: {reply: echo, chunks: %d, chunk_delay: %dms}\n"
        "%s"
        "routing:\n"
        "  rules: [{model_prefix: mock, provider: mock},"
        " {model_exact: alias, provider: mock, model: mock-echo}%s]\n"
        "%s"
        "apps:\n"
        "  - {name: openai-api, frontdoor: openai, path: /openai,"
        " default_model: mock-echo}\n"
        "  - {name: bare, frontdoor: openai, path: /bare}\n"
        "logging: {level: info, format: json}\n",
        o->workers ? o->workers : 2, o->max_body ? o->max_body : "1KiB",
        o->header_timeout ? o->header_timeout : "300ms",
        o->idle_timeout ? o->idle_timeout : "5s",
        o->busy_poll ? o->busy_poll : "0",
        o->chunks ? o->chunks : 8, o->chunk_delay_ms,
        o->extra_providers ? o->extra_providers : "",
        o->extra_rules ? o->extra_rules : "",
        o->no_default_provider ? "" : "  default_provider: mock\n");
}

/* ---- fixture -------------------------------------------------------------- */

/* A started gateway (tests/support/gw_fixture) on the config of o. */
static gwf_t *fx_start(const cfg_opts_t *o)
{
    char *yaml = cfg_build(o);
    gwf_t *f = gwf_start_yaml(yaml);
    free(yaml);
    return f;
}

/* ---- request helpers -------------------------------------------------------- */

/* {"model":..,"messages":[{"role":"user","content":text}],...} */
static char *chat_body(const char *model, const char *text, bool stream,
                       bool include_usage)
{
    cJSON *o = cJSON_CreateObject();
    if (model != NULL)
        cJSON_AddStringToObject(o, "model", model);
    cJSON *msgs = cJSON_AddArrayToObject(o, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddItemToArray(msgs, m);
    if (stream)
        cJSON_AddBoolToObject(o, "stream", true);
    if (include_usage) {
        cJSON *so = cJSON_AddObjectToObject(o, "stream_options");
        cJSON_AddBoolToObject(so, "include_usage", true);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static cJSON *parse_json_or_fail(const char *what, const char *s)
{
    cJSON *j = cJSON_Parse(s);
    if (j == NULL)
        fail_msg("%s is not JSON: %s", what, s);
    return j;
}

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_jstr(const cJSON *o, const char *key, const char *want)
{
    const char *got = jstr(o, key);
    if (got == NULL || strcmp(got, want) != 0) {
        char *s = cJSON_PrintUnformatted(o);
        fail_msg("\"%s\": want \"%s\", got %s in %s", key, want,
                 got ? got : "(missing)", s);
    }
}

static double jnum(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        char *s = cJSON_PrintUnformatted(o);
        fail_msg("\"%s\" is not a number in %s", key, s);
    }
    return v->valuedouble;
}

/* One request that must complete at the HTTP level (any status). */
static void request_ok(gwf_t *f, const char *method, const char *path,
                       const char *body, const char *const *headers,
                       tc_response_t *r)
{
    CURLcode rc = gwf_request(f, method, path, body, headers, r);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s (%s)", method, path, curl_easy_strerror(rc),
                 r->curl_err);
}

static void post_chat(gwf_t *f, const char *body, tc_response_t *r)
{
    request_ok(f, "POST", CHAT_PATH, body, NULL, r);
}

/* ---- stream checking --------------------------------------------------------- */

typedef struct stream_result {
    char *content;       /* concatenated deltas */
    char *finish_reason; /* of the last choice chunk */
    char *id;
    bool role_first;
    bool done_last;
    bool usage_chunk;    /* a chunk with choices [] and usage */
    long prompt_tokens;
    long completion_tokens;
    size_t nchunks;
} stream_result_t;

static void stream_result_free(stream_result_t *s)
{
    free(s->content);
    free(s->finish_reason);
    free(s->id);
}

/* Parses an OpenAI SSE body; fails the test on a structural problem and
 * returns what it found for the caller to compare. */
static void check_stream(const char *body, size_t len, stream_result_t *out)
{
    tc_sse_t sse;
    tc_bytes_t content = {0};
    tc_bytes_append(&content, "", 0);
    memset(out, 0, sizeof(*out));
    tc_sse_parse(body, len, &sse);
    if (sse.trailing_garbage)
        fail_msg("stream ends with an incomplete event: %s", body);
    if (sse.n < 2)
        fail_msg("stream has %zu events: %s", sse.n, body);
    out->done_last = strcmp(sse.data[sse.n - 1], "[DONE]") == 0;
    bool finished = false;
    for (size_t i = 0; i + 1 < sse.n; i++) {
        cJSON *c = parse_json_or_fail("stream chunk", sse.data[i]);
        out->nchunks++;
        assert_jstr(c, "object", "chat.completion.chunk");
        const char *id = jstr(c, "id");
        assert_non_null(id);
        if (out->id == NULL)
            out->id = tc_xstrdup(id);
        else if (strcmp(out->id, id) != 0)
            fail_msg("chunk id changed from %s to %s", out->id, id);
        cJSON *choices = cJSON_GetObjectItemCaseSensitive(c, "choices");
        assert_true(cJSON_IsArray(choices));
        if (cJSON_GetArraySize(choices) == 0) {
            cJSON *u = cJSON_GetObjectItemCaseSensitive(c, "usage");
            if (!cJSON_IsObject(u))
                fail_msg("chunk without choices nor usage: %s", sse.data[i]);
            out->usage_chunk = true;
            out->prompt_tokens = (long)jnum(u, "prompt_tokens");
            out->completion_tokens = (long)jnum(u, "completion_tokens");
            assert_int_equal((long)jnum(u, "total_tokens"),
                             out->prompt_tokens + out->completion_tokens);
            cJSON_Delete(c);
            continue;
        }
        if (finished)
            fail_msg("choice chunk after finish_reason: %s", sse.data[i]);
        if (out->usage_chunk)
            fail_msg("choice chunk after the usage chunk: %s", sse.data[i]);
        cJSON *ch = cJSON_GetArrayItem(choices, 0);
        cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
        assert_true(cJSON_IsObject(delta));
        if (i == 0)
            out->role_first = jstr(delta, "role") &&
                              strcmp(jstr(delta, "role"), "assistant") == 0;
        const char *t = jstr(delta, "content");
        if (t != NULL)
            tc_bytes_append(&content, t, strlen(t));
        const char *fr = jstr(ch, "finish_reason");
        if (fr != NULL) {
            finished = true;
            out->finish_reason = tc_xstrdup(fr);
        }
        cJSON_Delete(c);
    }
    out->content = content.p;
    tc_sse_free(&sse);
}

/* ---- tests: completions ------------------------------------------------------- */

static void test_chat_nonstream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char *body = chat_body("mock-echo", "hello there brave world", false,
                           false);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    char *ct = tc_response_header(&r, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "application/json"));
    free(ct);
    cJSON *j = parse_json_or_fail("completion", r.body.p);
    const char *id = jstr(j, "id");
    assert_non_null(id);
    assert_memory_equal(id, "chatcmpl-", 9);
    assert_true(strlen(id) > 9);
    assert_jstr(j, "object", "chat.completion");
    assert_jstr(j, "model", "mock-echo");
    assert_true(jnum(j, "created") > 1600000000.0);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_non_null(ch);
    assert_int_equal((int)jnum(ch, "index"), 0);
    cJSON *msg = cJSON_GetObjectItem(ch, "message");
    assert_jstr(msg, "role", "assistant");
    assert_jstr(msg, "content", "hello there brave world");
    assert_jstr(ch, "finish_reason", "stop");
    cJSON *u = cJSON_GetObjectItem(j, "usage");
    assert_int_equal((int)jnum(u, "prompt_tokens"), 4);
    assert_int_equal((int)jnum(u, "completion_tokens"), 4);
    assert_int_equal((int)jnum(u, "total_tokens"), 8);
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_chat_default_model_and_alias(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    /* No model: the app's default_model answers. */
    char *body = chat_body(NULL, "defaulted", false, false);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    cJSON *j = parse_json_or_fail("completion", r.body.p);
    assert_jstr(j, "model", "mock-echo");
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    /* model_exact "alias" routes to mock with model mock-echo. */
    body = chat_body("alias", "aliased", false, false);
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    j = parse_json_or_fail("completion", r.body.p);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_jstr(cJSON_GetObjectItem(ch, "message"), "content", "aliased");
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_chat_max_tokens_length(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    const char *body = "{\"model\":\"mock-echo\",\"max_tokens\":2,\"messages\":"
                       "[{\"role\":\"user\",\"content\":\"one two three four\"}]}";
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    cJSON *j = parse_json_or_fail("completion", r.body.p);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const char *content = jstr(cJSON_GetObjectItem(ch, "message"), "content");
    assert_non_null(content);
    /* The mock cuts to two words; spacing between them is the mock's. */
    assert_non_null(strstr(content, "one"));
    assert_non_null(strstr(content, "two"));
    assert_null(strstr(content, "three"));
    assert_jstr(ch, "finish_reason", "length");
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "usage"),
                               "completion_tokens"), 2);
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_free(f);
}

static void test_chat_stream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.chunks = 4});
    const char *text = "streaming is a sequence of small pieces";
    /* With include_usage. */
    char *body = chat_body("mock-echo", text, true, true);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    char *ct = tc_response_header(&r, "Content-Type");
    assert_non_null(ct);
    assert_non_null(strstr(ct, "text/event-stream"));
    free(ct);
    stream_result_t s;
    check_stream(r.body.p, r.body.n, &s);
    assert_true(s.role_first);
    assert_string_equal(s.content, text);
    assert_non_null(s.finish_reason);
    assert_string_equal(s.finish_reason, "stop");
    assert_true(s.done_last);
    assert_true(s.usage_chunk);
    assert_int_equal(s.prompt_tokens, 7);
    assert_int_equal(s.completion_tokens, 7);
    assert_memory_equal(s.id, "chatcmpl-", 9);
    /* role + 4 content pieces + finish + usage, at least. */
    assert_true(s.nchunks >= 6);
    stream_result_free(&s);
    tc_response_free(&r);
    free(body);

    /* Without include_usage: no usage chunk. */
    body = chat_body("mock-echo", text, true, false);
    post_chat(f, body, &r);
    assert_int_equal(r.status, 200);
    check_stream(r.body.p, r.body.n, &s);
    assert_string_equal(s.content, text);
    assert_false(s.usage_chunk);
    assert_true(s.done_last);
    stream_result_free(&s);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

/* ---- tests: connection handling ------------------------------------------------ */

static void test_keepalive_reuse(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    CURL *h = curl_easy_init();
    char *url = gwf_url(f, CHAT_PATH);
    char *b1 = chat_body("mock-echo", "first", false, false);
    char *b2 = chat_body("mock-echo", "second", true, false);
    tc_response_t r1 = {0}, r2 = {0}, r3 = {0};
    assert_int_equal(tc_request_on(h, "POST", url, b1, NULL, &r1), CURLE_OK);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r1.num_connects, 1);
    /* A stream in the middle: the connection must survive it too. */
    assert_int_equal(tc_request_on(h, "POST", url, b2, NULL, &r2), CURLE_OK);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r2.num_connects, 0);
    assert_int_equal(tc_request_on(h, "POST", url, b1, NULL, &r3), CURLE_OK);
    assert_int_equal(r3.status, 200);
    assert_int_equal(r3.num_connects, 0);
    assert_non_null(strstr(r3.body.p, "\"first\""));
    tc_response_free(&r1);
    tc_response_free(&r2);
    tc_response_free(&r3);
    free(b1);
    free(b2);
    free(url);
    curl_easy_cleanup(h);
    gwf_free(f);
}

static void test_pipelining(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.chunk_delay_ms = 2});
    char *b1 = chat_body("mock-echo", "pipelined number one", false, false);
    char *b2 = chat_body("mock-echo", "pipelined number two", false, false);
    char *r1 = tc_raw_post_text(CHAT_PATH, b1, "X-Request-ID: pipe-1\r\n");
    char *r2 = tc_raw_post_text(CHAT_PATH, b2, "X-Request-ID: pipe-2\r\n");
    char *both = tc_xasprintf("%s%s", r1, r2);
    int fd = tc_raw_connect(f->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_raw_send(fd, both, strlen(both)), 0);
    tc_bytes_t in = {0};
    bool closed = false;
    if (!tc_raw_recv_responses(fd, 2, 10000, &in, &closed))
        fail_msg("two pipelined answers did not arrive (closed=%d): %s",
                 closed, in.p ? in.p : "(nothing)");
    tc_http_msg_t m[2];
    size_t used = 0;
    assert_int_equal(tc_http_parse(in.p, in.n, m, 2, &used), 2);
    assert_int_equal(m[0].status, 200);
    assert_int_equal(m[1].status, 200);
    assert_non_null(strstr(m[0].body, "pipelined number one"));
    assert_non_null(strstr(m[1].body, "pipelined number two"));
    char *id1 = tc_http_msg_header(&m[0], "X-Request-ID");
    char *id2 = tc_http_msg_header(&m[1], "X-Request-ID");
    assert_non_null(id1);
    assert_non_null(id2);
    assert_string_equal(id1, "pipe-1");
    assert_string_equal(id2, "pipe-2");
    free(id1);
    free(id2);
    tc_http_msg_free(&m[0]);
    tc_http_msg_free(&m[1]);
    assert_int_equal(used, in.n); /* nothing extra after the two answers */
    close(fd);
    tc_bytes_free(&in);
    free(both);
    free(r1);
    free(r2);
    free(b1);
    free(b2);
    gwf_free(f);
}

static void test_413_body_too_big(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char big[2048];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *body = chat_body("mock-echo", big, false, false);
    tc_response_t r;
    post_chat(f, body, &r);
    cJSON *j = gwf_assert_openai_error(&r, 413, NULL);
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    /* Just under the limit still works. */
    char small[900];
    memset(small, 'b', sizeof(small) - 1);
    small[sizeof(small) - 1] = '\0';
    body = chat_body("mock-echo", small, false, false);
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("a %zu-byte body got %ld: %s", strlen(body), r.status,
                 r.body.p);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_431_headers_too_big(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char *val = tc_xmalloc(5001);
    memset(val, 'h', 5000);
    val[5000] = '\0';
    char *hdr = tc_xasprintf("X-Big: %s", val);
    const char *const hdrs[] = {hdr, NULL};
    char *body = chat_body("mock-echo", "x", false, false);
    tc_response_t r = {0};
    request_ok(f, "POST", CHAT_PATH, body, hdrs, &r);
    cJSON *j = gwf_assert_openai_error(&r, 431, NULL);
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    free(hdr);
    free(val);
    gwf_free(f);
}

static void test_408_header_timeout(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    int fd = tc_raw_connect(f->port);
    assert_true(fd >= 0);
    const char *partial = "POST " CHAT_PATH " HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Content-Type: app";
    assert_int_equal(tc_raw_send(fd, partial, strlen(partial)), 0);
    tc_bytes_t in = {0};
    bool closed = false;
    tc_raw_recv(fd, 10000, 1 << 20, &in, &closed);
    if (!closed)
        fail_msg("connection still open past the header timeout; got: %s",
                 in.p ? in.p : "(nothing)");
    tc_http_msg_t m;
    size_t used = 0;
    if (in.p == NULL || tc_http_parse(in.p, in.n, &m, 1, &used) != 1)
        fail_msg("no complete response before the close: %s",
                 in.p ? in.p : "(nothing)");
    assert_int_equal(m.status, 408);
    cJSON *j = parse_json_or_fail("408 body", m.body);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
    tc_http_msg_free(&m);
    tc_bytes_free(&in);
    close(fd);
    gwf_free(f);
}

static void test_garbage_then_new_connection(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    int fd = tc_raw_connect(f->port);
    assert_true(fd >= 0);
    const char garbage[] = "\x16\x03\x01\x02\x00GARBAGE \x01\x02 NOT HTTP\r\n\r\n";
    assert_int_equal(tc_raw_send(fd, garbage, sizeof(garbage) - 1), 0);
    tc_bytes_t in = {0};
    bool closed = false;
    tc_raw_recv(fd, 3000, 1 << 20, &in, &closed);
    if (!closed)
        fail_msg("connection not closed after garbage; got: %s",
                 in.p ? in.p : "(nothing)");
    tc_http_msg_t m;
    size_t used = 0;
    if (in.p == NULL || tc_http_parse(in.p, in.n, &m, 1, &used) != 1)
        fail_msg("no response before the close: %s", in.p ? in.p : "(nothing)");
    assert_int_equal(m.status, 400);
    cJSON *j = parse_json_or_fail("400 body", m.body);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(j, "error")));
    cJSON_Delete(j);
    tc_http_msg_free(&m);
    tc_bytes_free(&in);
    close(fd);

    /* The server is fine: a good request on a new connection. */
    char *body = chat_body("mock-echo", "still alive", false, false);
    tc_response_t r;
    post_chat(f, body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.p, "still alive"));
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

/* ---- tests: errors -------------------------------------------------------------- */

static void test_404_unknown_route(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    tc_response_t r = {0};
    request_ok(f, "GET", "/nowhere/v1/chat/completions", NULL, NULL, &r);
    cJSON *j = gwf_assert_openai_error(&r, 404, NULL);
    cJSON_Delete(j);
    tc_response_free(&r);
    /* An unknown endpoint under a known app is a 404 too. */
    request_ok(f, "GET", "/openai/v1/nothing-here", NULL, NULL, &r);
    j = gwf_assert_openai_error(&r, 404, NULL);
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_free(f);
}

static void test_404_model_not_found(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.no_default_provider = true});
    char *body = chat_body("gpt-nonexistent", "hi", false, false);
    tc_response_t r;
    post_chat(f, body, &r);
    cJSON *j = gwf_assert_openai_error(&r, 404, NULL);
    assert_jstr(cJSON_GetObjectItem(j, "error"), "code", "model_not_found");
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    /* The rules still route mock models. */
    body = chat_body("mock-x", "routed", false, false);
    post_chat(f, body, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_400_invalid_json(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    tc_response_t r;
    post_chat(f, "{\"model\": \"mock-echo\", \"messages\": [", &r);
    cJSON *j = gwf_assert_openai_error(&r, 400, NULL);
    cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_jstr(e, "type", "invalid_request_error");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(e, "param")));
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_free(f);
}

static void test_400_missing_model(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char *body = chat_body(NULL, "no model here", false, false);
    tc_response_t r = {0};
    request_ok(f, "POST", "/bare/v1/chat/completions", body, NULL, &r);
    cJSON *j = gwf_assert_openai_error(&r, 400, NULL);
    assert_jstr(cJSON_GetObjectItem(j, "error"), "param", "model");
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

/* ---- tests: concurrency and shutdown ------------------------------------------- */

#define NSTREAMS 200

static void test_200_concurrent_streams(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.chunk_delay_ms = 5, .chunks = 8,
                                      .workers = 2});
    CURLM *multi = curl_multi_init();
    CURL *h[NSTREAMS];
    tc_response_t *r = calloc(NSTREAMS, sizeof(*r));
    struct curl_slist *hdrs[NSTREAMS];
    char *bodies[NSTREAMS];
    char *texts[NSTREAMS];
    char *url = gwf_url(f, CHAT_PATH);
    assert_non_null(r);
    for (int i = 0; i < NSTREAMS; i++) {
        texts[i] = tc_xasprintf("stream %d says hello to number %d", i,
                                i * 7919 % 1000);
        bodies[i] = chat_body("mock-echo", texts[i], true, true);
        h[i] = curl_easy_init();
        hdrs[i] = tc_prepare(h[i], "POST", url, bodies[i], NULL, &r[i]);
        curl_easy_setopt(h[i], CURLOPT_TIMEOUT_MS, 60000L);
        curl_multi_add_handle(multi, h[i]);
    }
    int running = 1;
    while (running > 0) {
        curl_multi_perform(multi, &running);
        if (running > 0)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    int nok = 0;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
        if (msg->msg == CURLMSG_DONE && msg->data.result == CURLE_OK)
            nok++;
    }
    assert_int_equal(nok, NSTREAMS);
    for (int i = 0; i < NSTREAMS; i++) {
        long status = 0;
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &status);
        if (status != 200)
            fail_msg("stream %d: status %ld: %s", i, status, r[i].body.p);
        stream_result_t s;
        check_stream(r[i].body.p, r[i].body.n, &s);
        if (strcmp(s.content, texts[i]) != 0)
            fail_msg("stream %d: want \"%s\", got \"%s\"", i, texts[i],
                     s.content);
        assert_true(s.done_last);
        assert_true(s.role_first);
        assert_true(s.usage_chunk);
        assert_string_equal(s.finish_reason, "stop");
        stream_result_free(&s);
        curl_multi_remove_handle(multi, h[i]);
        curl_easy_cleanup(h[i]);
        curl_slist_free_all(hdrs[i]);
        tc_response_free(&r[i]);
        free(bodies[i]);
        free(texts[i]);
    }
    curl_multi_cleanup(multi);
    free(r);
    free(url);
    gwf_free(f);
}

typedef struct slow_client {
    const char *url;
    const char *body;
    tc_response_t resp;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool got_bytes;
    CURLcode rc;
} slow_client_t;

static size_t slow_on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    slow_client_t *c = ud;
    tc_bytes_append(&c->resp.body, data, size * nmemb);
    pthread_mutex_lock(&c->mu);
    /* The first content delta, not only the role chunk, proves the stream
     * is mid-way. */
    if (strstr(c->resp.body.p, "\"content\"") != NULL) {
        c->got_bytes = true;
        pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return size * nmemb;
}

static void *slow_client_main(void *arg)
{
    slow_client_t *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = tc_prepare(h, "POST", c->url, c->body, NULL,
                                         &c->resp);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, slow_on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    c->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->resp.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    /* Wake the test even if no bytes ever came. */
    pthread_mutex_lock(&c->mu);
    c->got_bytes = true;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void test_graceful_shutdown_drains_stream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.chunk_delay_ms = 50, .chunks = 8});
    const char *text = "one two three four five six seven eight";
    char *url = gwf_url(f, CHAT_PATH);
    char *body = chat_body("mock-echo", text, true, false);
    slow_client_t c = {.url = url, .body = body};
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_client_main, &c), 0);
    pthread_mutex_lock(&c.mu);
    while (!c.got_bytes)
        pthread_cond_wait(&c.cv, &c.mu);
    pthread_mutex_unlock(&c.mu);

    /* The drain must let the remaining chunks through: checked below by
     * the content of the stream, not by timing. */
    int rc = pg_gateway_shutdown(f->gw, 30000);
    assert_int_equal(rc, PG_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    if (c.rc != CURLE_OK)
        fail_msg("client: %s (%s); got: %s", curl_easy_strerror(c.rc),
                 c.resp.curl_err, c.resp.body.p ? c.resp.body.p : "");
    assert_int_equal(c.resp.status, 200);
    stream_result_t s;
    check_stream(c.resp.body.p, c.resp.body.n, &s);
    assert_string_equal(s.content, text);
    assert_true(s.done_last);
    assert_string_equal(s.finish_reason, "stop");
    stream_result_free(&s);

    /* The port no longer accepts. */
    int fd = tc_raw_connect(f->port);
    if (fd >= 0) {
        close(fd);
        fail_msg("port %d still accepts after shutdown", f->port);
    }
    /* A second shutdown is a state error, not a crash. */
    assert_true(pg_gateway_shutdown(f->gw, 100) != PG_OK);

    tc_response_free(&c.resp);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
    free(body);
    free(url);
    gwf_free(f);
}

/* ---- tests: models, tools, ids, logs ----------------------------------------- */

static void test_models_list(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    tc_response_t r = {0};
    request_ok(f, "GET", "/openai/v1/models", NULL, NULL, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    cJSON *j = parse_json_or_fail("models", r.body.p);
    assert_jstr(j, "object", "list");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_true(cJSON_IsArray(data));
    bool found = false;
    cJSON *m;
    cJSON_ArrayForEach(m, data) {
        assert_jstr(m, "object", "model");
        assert_non_null(jstr(m, "id"));
        assert_non_null(jstr(m, "owned_by"));
        assert_true(jnum(m, "created") >= 0);
        if (strcmp(jstr(m, "id"), "mock-echo") == 0)
            found = true;
    }
    if (!found)
        fail_msg("mock-echo not listed: %s", r.body.p);
    cJSON_Delete(j);
    tc_response_free(&r);

    /* /health answers too. */
    request_ok(f, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    j = parse_json_or_fail("health", r.body.p);
    assert_jstr(j, "status", "ok");
    cJSON_Delete(j);
    tc_response_free(&r);
    gwf_free(f);
}

static char *tool_body(bool stream)
{
    return tc_xasprintf(
        "{\"model\":\"mock-echo\",\"stream\":%s,"
        "\"messages\":[{\"role\":\"user\",\"content\":"
        "\"please call get_weather for me\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{"
        "\"name\":\"get_weather\",\"description\":\"weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{"
        "\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\"},"
        "\"metric\":{\"type\":\"boolean\"},\"note\":{\"type\":\"string\"}},"
        "\"required\":[\"city\",\"days\",\"metric\"]}}}]}",
        stream ? "true" : "false");
}

static void check_tool_args(const char *args)
{
    cJSON *a = parse_json_or_fail("tool arguments", args);
    assert_jstr(a, "city", "mock");
    assert_int_equal((int)jnum(a, "days"), 1);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "metric")));
    assert_null(cJSON_GetObjectItem(a, "note")); /* not required */
    cJSON_Delete(a);
}

static void test_tool_call_nonstream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.max_body = "64KiB"});
    char *body = tool_body(false);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    cJSON *j = parse_json_or_fail("completion", r.body.p);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_jstr(ch, "finish_reason", "tool_calls");
    cJSON *msg = cJSON_GetObjectItem(ch, "message");
    assert_jstr(msg, "role", "assistant");
    cJSON *calls = cJSON_GetObjectItem(msg, "tool_calls");
    assert_int_equal(cJSON_GetArraySize(calls), 1);
    cJSON *call = cJSON_GetArrayItem(calls, 0);
    assert_jstr(call, "type", "function");
    assert_non_null(jstr(call, "id"));
    assert_true(strlen(jstr(call, "id")) > 0);
    cJSON *fn = cJSON_GetObjectItem(call, "function");
    assert_jstr(fn, "name", "get_weather");
    assert_non_null(jstr(fn, "arguments"));
    check_tool_args(jstr(fn, "arguments"));
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_tool_call_stream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.max_body = "64KiB"});
    char *body = tool_body(true);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    tc_sse_t sse;
    tc_sse_parse(r.body.p, r.body.n, &sse);
    assert_true(sse.n >= 3);
    assert_string_equal(sse.data[sse.n - 1], "[DONE]");
    tc_bytes_t args = {0};
    tc_bytes_append(&args, "", 0);
    int ndeltas = 0;
    char *finish = NULL;
    for (size_t i = 0; i + 1 < sse.n; i++) {
        cJSON *c = parse_json_or_fail("chunk", sse.data[i]);
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0);
        if (ch == NULL) {
            cJSON_Delete(c);
            continue;
        }
        if (jstr(ch, "finish_reason") != NULL) {
            free(finish);
            finish = tc_xstrdup(jstr(ch, "finish_reason"));
        }
        cJSON *delta = cJSON_GetObjectItem(ch, "delta");
        cJSON *tcs = cJSON_GetObjectItem(delta, "tool_calls");
        cJSON *tcd;
        cJSON_ArrayForEach(tcd, tcs) {
            assert_int_equal((int)jnum(tcd, "index"), 0);
            cJSON *fn = cJSON_GetObjectItem(tcd, "function");
            if (ndeltas == 0) {
                /* The first delta opens the call: id, type, name. */
                assert_non_null(jstr(tcd, "id"));
                assert_jstr(tcd, "type", "function");
                assert_jstr(fn, "name", "get_weather");
            } else {
                if (cJSON_HasObjectItem(tcd, "id") ||
                    (fn && cJSON_HasObjectItem(fn, "name")))
                    fail_msg("id/name repeated in a later delta: %s",
                             sse.data[i]);
            }
            const char *a = fn ? jstr(fn, "arguments") : NULL;
            if (a != NULL)
                tc_bytes_append(&args, a, strlen(a));
            ndeltas++;
        }
        cJSON_Delete(c);
    }
    assert_true(ndeltas >= 2);
    assert_non_null(finish);
    assert_string_equal(finish, "tool_calls");
    check_tool_args(args.p);
    free(finish);
    tc_bytes_free(&args);
    tc_sse_free(&sse);
    tc_response_free(&r);
    free(body);
    gwf_free(f);
}

static void test_request_id(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    const char *const mine[] = {"X-Request-ID: client-id-42.a_b:c", NULL};
    tc_response_t r = {0};
    request_ok(f, "GET", "/openai/v1/models", NULL, mine, &r);
    char *id = tc_response_header(&r, "X-Request-ID");
    assert_non_null(id);
    assert_string_equal(id, "client-id-42.a_b:c");
    free(id);
    tc_response_free(&r);

    /* None given: generated. */
    request_ok(f, "GET", "/openai/v1/models", NULL, NULL, &r);
    char *gen1 = tc_response_header(&r, "X-Request-ID");
    assert_non_null(gen1);
    assert_true(strlen(gen1) >= 8);
    tc_response_free(&r);
    request_ok(f, "GET", "/openai/v1/models", NULL, NULL, &r);
    char *gen2 = tc_response_header(&r, "X-Request-ID");
    assert_non_null(gen2);
    assert_string_not_equal(gen1, gen2);
    tc_response_free(&r);

    /* Not sane (too long, odd bytes): replaced by a generated one. */
    char longid[400];
    memset(longid, 'z', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    char *h1 = tc_xasprintf("X-Request-ID: %s", longid);
    const char *const insane[] = {h1, NULL};
    request_ok(f, "GET", "/openai/v1/models", NULL, insane, &r);
    id = tc_response_header(&r, "X-Request-ID");
    assert_non_null(id);
    assert_string_not_equal(id, longid);
    assert_true(strlen(id) > 0 && strlen(id) <= 128);
    free(id);
    tc_response_free(&r);
    const char *const weird[] = {"X-Request-ID: has spaces <and> \"quotes\"",
                                 NULL};
    request_ok(f, "GET", "/openai/v1/models", NULL, weird, &r);
    id = tc_response_header(&r, "X-Request-ID");
    assert_non_null(id);
    assert_null(strchr(id, ' '));
    assert_null(strchr(id, '"'));
    free(id);
    tc_response_free(&r);

    /* Errors carry it too. */
    const char *const err_id[] = {"X-Request-ID: err-id-1", NULL};
    request_ok(f, "GET", "/nowhere", NULL, err_id, &r);
    assert_int_equal(r.status, 404);
    id = tc_response_header(&r, "X-Request-ID");
    assert_non_null(id);
    assert_string_equal(id, "err-id-1");
    free(id);
    tc_response_free(&r);
    free(h1);
    free(gen1);
    free(gen2);
    gwf_free(f);
}

static void test_access_log(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char *body = chat_body("mock-echo", "log me please", false, false);
    const char *const hdrs[] = {"X-Request-ID: log-test-1", NULL};
    tc_response_t r = {0};
    request_ok(f, "POST", CHAT_PATH, body, hdrs, &r);
    assert_int_equal(r.status, 200);
    const char *const needles[] = {"\"request_id\":\"log-test-1\"", NULL};
    char *line = gwf_log_wait(f, needles);
    if (line == NULL)
        fail_msg("no access log line for log-test-1");
    cJSON *j = parse_json_or_fail("log line", line);
    assert_jstr(j, "msg", "request");
    assert_non_null(jstr(j, "ts"));
    assert_non_null(jstr(j, "level"));
    assert_jstr(j, "method", "POST");
    assert_jstr(j, "path", CHAT_PATH);
    assert_int_equal((int)jnum(j, "status"), 200);
    assert_jstr(j, "app", "openai-api");
    assert_jstr(j, "model", "mock-echo");
    assert_jstr(j, "provider", "mock");
    assert_jstr(j, "served_model", "mock-echo");
    assert_int_equal((int)jnum(j, "input_tokens"), 3);
    assert_int_equal((int)jnum(j, "output_tokens"), 3);
    assert_true(jnum(j, "bytes_out") > 0);
    assert_true(jnum(j, "total_ms") >= 0);
    cJSON_Delete(j);
    free(line);
    tc_response_free(&r);

    /* An error is logged with its status. */
    const char *const h404[] = {"X-Request-ID: log-test-404", NULL};
    request_ok(f, "GET", "/nowhere", NULL, h404, &r);
    const char *const n404[] = {"\"request_id\":\"log-test-404\"",
                                "\"status\":404", NULL};
    line = gwf_log_wait(f, n404);
    if (line == NULL)
        fail_msg("no access log line with status 404");
    free(line);
    tc_response_free(&r);

    /* After shutdown every line is in: none may hold the api_key. */
    assert_int_equal(pg_gateway_shutdown(f->gw, 2000), PG_OK);
    assert_true(f->log.n > 0);
    if (tc_log_contains(&f->log, "sk-secret-123"))
        fail_msg("a log line contains the provider api_key");
    free(body);
    gwf_free(f);
}

/* ---- tests: config and lifecycle -------------------------------------------- */

typedef struct diags {
    int n;
    char paths[16][128];
} diags_t;

static void on_diag(void *ud, const char *path, const char *message)
{
    diags_t *d = ud;
    assert_non_null(path);
    assert_non_null(message);
    assert_true(strlen(message) > 0);
    if (d->n < 16)
        snprintf(d->paths[d->n], sizeof(d->paths[0]), "%s", path);
    d->n++;
}

static bool diags_have(const diags_t *d, const char *path)
{
    for (int i = 0; i < d->n && i < 16; i++) {
        if (strcmp(d->paths[i], path) == 0)
            return true;
    }
    return false;
}

static void test_config_errors(void **state)
{
    (void)state;
    /* A typo: start refuses and names the path and the right key. */
    const char *typo =
        "server: {host: 127.0.0.1, port: 0, workers: 1}\n"
        "providers:\n  - {name: mock, type: mock}\n"
        "routing: {default_provider: mock}\n"
        "apps:\n  - {name: a, fronddoor: openai, path: /a}\n";
    gwf_t *f = gwf_new(typo);
    assert_int_equal(pg_gateway_start(f->gw), PG_ECONFIG);
    const char *err = pg_gateway_last_error(f->gw);
    if (strstr(err, "apps[0].fronddoor") == NULL ||
        strstr(err, "frontdoor") == NULL)
        fail_msg("last_error does not name the path and the suggestion: %s",
                 err);
    assert_int_equal(pg_gateway_port(f->gw), -1);
    /* Nothing was bound, and the failure was logged. */
    assert_true(tc_log_contains(&f->log, "fronddoor"));
    gwf_free(f);

    /* Four independent problems: check_config reports each one. */
    const char *bad =
        "server: {host: 127.0.0.1, port: notaport, workers: 1,"
        " max_body_bytes: 12 parsecs}\n"
        "providers:\n  - {name: mock, type: mock}\n"
        "routing: {default_provider: mock}\n"
        "apps:\n  - {name: a, frontdoor: openai, path: /a, colour: blue}\n"
        "logging: {level: loud}\n";
    f = gwf_new(bad);
    diags_t d = {0};
    assert_int_equal(pg_gateway_check_config(f->gw, on_diag, &d), PG_ECONFIG);
    if (d.n != 4 || !diags_have(&d, "server.port") ||
        !diags_have(&d, "server.max_body_bytes") ||
        !diags_have(&d, "apps[0].colour") || !diags_have(&d, "logging.level"))
        fail_msg("want 4 problems (server.port, server.max_body_bytes, "
                 "apps[0].colour, logging.level), got %d: %s | %s | %s | %s "
                 "| %s", d.n, d.paths[0], d.paths[1], d.paths[2], d.paths[3],
                 d.paths[4]);
    assert_true(strlen(pg_gateway_last_error(f->gw)) > 0);
    /* check without a callback still fails the same way. */
    assert_int_equal(pg_gateway_check_config(f->gw, NULL, NULL), PG_ECONFIG);
    gwf_free(f);

    /* Unknown provider type, and a rule naming a missing provider. */
    const char *refs =
        "server: {host: 127.0.0.1, port: 0}\n"
        "providers:\n  - {name: p, type: nosuchtype}\n"
        "routing: {rules: [{model_prefix: x, provider: ghost}],"
        " default_provider: p}\n"
        "apps:\n  - {name: a, frontdoor: openai, path: /a}\n";
    f = gwf_new(refs);
    memset(&d, 0, sizeof(d));
    assert_int_equal(pg_gateway_check_config(f->gw, on_diag, &d), PG_ECONFIG);
    if (!diags_have(&d, "providers[0].type") ||
        !diags_have(&d, "routing.rules[0].provider"))
        fail_msg("want providers[0].type and routing.rules[0].provider, "
                 "got %d: %s | %s | %s", d.n, d.paths[0], d.paths[1],
                 d.paths[2]);
    gwf_free(f);

    /* A good config checks clean and reports nothing. */
    char *good = cfg_build(&(cfg_opts_t){0});
    f = gwf_new(good);
    memset(&d, 0, sizeof(d));
    assert_int_equal(pg_gateway_check_config(f->gw, on_diag, &d), PG_OK);
    assert_int_equal(d.n, 0);
    gwf_free(f);
    free(good);
}

static int fixed_create(const pg_provider_config_t *cfg, void **self,
                        char *err, size_t errlen);
static void fixed_destroy(void *self);
static int fixed_start(void *self, pg_provider_call_t *call);
static void fixed_cancel(void *self, pg_provider_call_t *call);

static const struct pg_provider_vtable fixed_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "fixed-text",
    .create = fixed_create,
    .destroy = fixed_destroy,
    .start = fixed_start,
    .cancel = fixed_cancel,
};

static void test_setters_busy_after_start(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    const char *y = "server: {port: 0}\n";
    uv_loop_t loop;
    assert_int_equal(pg_gateway_set_config_yaml(f->gw, y, strlen(y)), PG_EBUSY);
    assert_true(strlen(pg_gateway_last_error(f->gw)) > 0);
    assert_int_equal(pg_gateway_set_config_file(f->gw, "/tmp/x.yaml"),
                     PG_EBUSY);
    assert_int_equal(pg_gateway_set_listen(f->gw, "127.0.0.1", 0), PG_EBUSY);
    assert_int_equal(pg_gateway_set_workers(f->gw, 3), PG_EBUSY);
    assert_int_equal(pg_gateway_set_loop(f->gw, &loop), PG_EBUSY);
    assert_int_equal(pg_gateway_set_log_level(f->gw, PG_LOG_DEBUG), PG_EBUSY);
    assert_int_equal(pg_gateway_set_log_sink(f->gw, NULL, NULL), PG_EBUSY);
    assert_int_equal(pg_gateway_register_provider(f->gw, &fixed_vtable),
                     PG_EBUSY);
    assert_true(pg_gateway_start(f->gw) < 0);
    /* It still serves. */
    tc_response_t r = {0};
    request_ok(f, "GET", "/health", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    tc_response_free(&r);
    gwf_free(f);

    /* Before start, bad values are refused. */
    pg_gateway_t *gw = pg_gateway_new();
    assert_int_equal(pg_gateway_set_workers(gw, 0), PG_EINVAL);
    assert_int_equal(pg_gateway_set_workers(gw, 257), PG_EINVAL);
    assert_int_equal(pg_gateway_set_listen(gw, "127.0.0.1", 70000), PG_EINVAL);
    assert_int_equal(pg_gateway_set_loop(gw, NULL), PG_EINVAL);
    assert_int_equal(pg_gateway_port(gw), -1);
    pg_gateway_free(gw);
}

/* ---- a provider registered by the test ---------------------------------------- */

/* "fixed-text": answers providers[].options.text after a 1 ms uv timer on
 * the call's loop, or fails with 503 when the user says "please fail". It
 * counts live instances so the test can see every create matched by a
 * destroy. */
static atomic_int fixed_live;
static atomic_int fixed_calls;

struct fixed {
    char text[256];
};

struct fixed_call {
    uv_timer_t timer; /* the struct is freed in the timer's close callback */
    pg_provider_call_t *call;
    const struct fixed *self;
    bool closing;
};

static int fixed_create(const pg_provider_config_t *cfg, void **self,
                        char *err, size_t errlen)
{
    pg_str_t text = pg_provider_config_option(cfg, "text");
    if (text.p == NULL) {
        snprintf(err, errlen, "text: required");
        return PG_ECONFIG;
    }
    if (text.n >= sizeof(((struct fixed *)0)->text)) {
        snprintf(err, errlen, "text: too long");
        return PG_ECONFIG;
    }
    struct fixed *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return PG_ENOMEM;
    memcpy(p->text, text.p, text.n);
    *self = p;
    atomic_fetch_add(&fixed_live, 1);
    return PG_OK;
}

static void fixed_destroy(void *self)
{
    free(self);
    atomic_fetch_sub(&fixed_live, 1);
}

static void on_fixed_close(uv_handle_t *h)
{
    free((char *)h - offsetof(struct fixed_call, timer));
}

static void fixed_close(struct fixed_call *fc)
{
    if (fc->closing)
        return;
    fc->closing = true;
    uv_timer_stop(&fc->timer);
    uv_close((uv_handle_t *)&fc->timer, on_fixed_close);
}

static bool last_user_says(const pg_request_t *r, const char *what)
{
    for (size_t i = r->nmessages; i-- > 0;) {
        const pg_message_t *m = &r->messages[i];
        if (m->role != PG_ROLE_USER)
            continue;
        for (size_t k = 0; k < m->nparts; k++) {
            const pg_part_t *p = &m->parts[k];
            if (p->kind == PG_PART_TEXT && p->text.n == strlen(what) &&
                memcmp(p->text.p, what, p->text.n) == 0)
                return true;
        }
        return false;
    }
    return false;
}

static void on_fixed_timer(uv_timer_t *t)
{
    struct fixed_call *fc = (struct fixed_call *)((char *)t -
                                                  offsetof(struct fixed_call,
                                                           timer));
    pg_provider_call_t *call = fc->call;
    const pg_request_t *req = pg_provider_call_request(call);
    if (last_user_says(req, "please fail")) {
        pg_provider_error_t e = {.http_status = 503,
                                 .type = PG_STR("server_error"),
                                 .message = PG_STR("fixed-text is down")};
        fixed_close(fc);
        pg_provider_call_done(call, &e);
        return;
    }
    pg_str_t text = {fc->self->text, strlen(fc->self->text)};
    pg_event_t evs[] = {
        {.kind = PG_EV_MESSAGE_START, .id = PG_STR("fixed-1"),
         .model = req->model, .usage = {.input_tokens = 2}},
        {.kind = PG_EV_BLOCK_START, .index = 0, .block = PG_PART_TEXT},
        {.kind = PG_EV_TEXT_DELTA, .index = 0, .text = text},
        {.kind = PG_EV_BLOCK_STOP, .index = 0},
        {.kind = PG_EV_USAGE, .usage = {.input_tokens = 2,
                                        .output_tokens = 4}},
        {.kind = PG_EV_MESSAGE_STOP, .stop_reason = PG_STOP_END_TURN},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        /* The client is gone: cancel() follows and closes the timer. */
        if (pg_provider_call_emit(call, &evs[i]) != PG_OK)
            return;
    }
    fixed_close(fc);
    pg_provider_call_done(call, NULL);
}

static int fixed_start(void *self, pg_provider_call_t *call)
{
    struct fixed_call *fc = calloc(1, sizeof(*fc));
    if (fc == NULL)
        return PG_ENOMEM;
    fc->call = call;
    fc->self = self;
    uv_timer_init(pg_provider_call_loop(call), &fc->timer);
    uv_timer_start(&fc->timer, on_fixed_timer, 1, 0);
    pg_provider_call_set_data(call, fc);
    atomic_fetch_add(&fixed_calls, 1);
    return PG_PENDING;
}

static void fixed_cancel(void *self, pg_provider_call_t *call)
{
    (void)self;
    struct fixed_call *fc = pg_provider_call_get_data(call);
    if (fc != NULL)
        fixed_close(fc);
}

static void test_register_provider(void **state)
{
    (void)state;
    atomic_store(&fixed_live, 0);
    atomic_store(&fixed_calls, 0);
    char *yaml = cfg_build(&(cfg_opts_t){
        .extra_providers = "  - name: custom\n"
                           "    type: fixed-text\n"
                           "    options: {text: from the test provider}\n",
        .extra_rules = ", {model_prefix: custom, provider: custom}"});
    gwf_t *f = gwf_new(yaml);
    free(yaml);
    /* Registration checks: a taken type, a wrong ABI. */
    struct pg_provider_vtable bad_abi = fixed_vtable;
    bad_abi.abi = 99;
    bad_abi.type = "other";
    assert_int_equal(pg_gateway_register_provider(f->gw, &bad_abi), PG_EABI);
    struct pg_provider_vtable mock_again = fixed_vtable;
    mock_again.type = "mock";
    assert_int_equal(pg_gateway_register_provider(f->gw, &mock_again),
                     PG_EEXIST);
    assert_int_equal(pg_gateway_register_provider(f->gw, &fixed_vtable), PG_OK);
    assert_int_equal(pg_gateway_register_provider(f->gw, &fixed_vtable),
                     PG_EEXIST);
    gwf_start(f);
    assert_true(atomic_load(&fixed_live) >= 1);

    char *body = chat_body("custom-model-1", "anything", false, false);
    tc_response_t r;
    post_chat(f, body, &r);
    if (r.status != 200)
        fail_msg("status %ld: %s", r.status, r.body.p);
    cJSON *j = parse_json_or_fail("completion", r.body.p);
    assert_jstr(j, "model", "custom-model-1");
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_jstr(cJSON_GetObjectItem(ch, "message"), "content",
                "from the test provider");
    assert_jstr(ch, "finish_reason", "stop");
    assert_int_equal((int)jnum(cJSON_GetObjectItem(j, "usage"),
                               "completion_tokens"), 4);
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);

    /* Streamed through the same provider. */
    body = chat_body("custom-model-1", "anything", true, false);
    post_chat(f, body, &r);
    assert_int_equal(r.status, 200);
    stream_result_t s;
    check_stream(r.body.p, r.body.n, &s);
    assert_string_equal(s.content, "from the test provider");
    assert_true(s.done_last);
    stream_result_free(&s);
    tc_response_free(&r);
    free(body);

    /* The provider's error reaches the client in OpenAI's shape. */
    body = chat_body("custom-model-1", "please fail", false, false);
    post_chat(f, body, &r);
    j = gwf_assert_openai_error(&r, 503, NULL);
    assert_non_null(strstr(jstr(cJSON_GetObjectItem(j, "error"), "message"),
                           "fixed-text is down"));
    cJSON_Delete(j);
    tc_response_free(&r);
    free(body);

    /* The mock still answers its own models. */
    body = chat_body("mock-echo", "mock here", false, false);
    post_chat(f, body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.p, "mock here"));
    tc_response_free(&r);
    free(body);

    assert_int_equal(atomic_load(&fixed_calls), 3);
    gwf_free(f);
    assert_int_equal(atomic_load(&fixed_live), 0);
}

/* ---- host loop ------------------------------------------------------------------- */

typedef struct host_ctx {
    pg_gateway_t *gw;
    uv_async_t async;
    uv_timer_t watchdog;
    char *url;
    char *body;
    tc_response_t resp;
    int shutdown_rc;
    bool timed_out;
} host_ctx_t;

static void *host_client_main(void *arg)
{
    host_ctx_t *c = arg;
    tc_request("POST", c->url, c->body, NULL, &c->resp);
    uv_async_send(&c->async);
    return NULL;
}

/* Runs on the host loop: the request is done, shut the gateway down from
 * the loop thread as the API asks. */
static void on_host_async(uv_async_t *a)
{
    host_ctx_t *c = (host_ctx_t *)((char *)a - offsetof(host_ctx_t, async));
    c->shutdown_rc = pg_gateway_shutdown(c->gw, 2000);
    uv_close((uv_handle_t *)a, NULL);
}

static void on_watchdog(uv_timer_t *t)
{
    host_ctx_t *c = (host_ctx_t *)((char *)t - offsetof(host_ctx_t, watchdog));
    c->timed_out = true;
    uv_stop(t->loop);
}

static void test_host_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    char *yaml = cfg_build(&(cfg_opts_t){0});
    gwf_t *f = gwf_new(yaml);
    free(yaml);
    assert_int_equal(pg_gateway_set_loop(f->gw, &loop), PG_OK);
    gwf_start(f);

    host_ctx_t c = {.gw = f->gw, .shutdown_rc = 12345};
    c.url = gwf_url(f, CHAT_PATH);
    c.body = chat_body("mock-echo", "hosted on your loop", false, false);
    assert_int_equal(uv_async_init(&loop, &c.async, on_host_async), 0);
    /* An unref'd watchdog: it never keeps the loop alive by itself. */
    assert_int_equal(uv_timer_init(&loop, &c.watchdog), 0);
    uv_timer_start(&c.watchdog, on_watchdog, 15000, 0);
    uv_unref((uv_handle_t *)&c.watchdog);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, host_client_main, &c), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(pthread_join(th, NULL), 0);
    uv_close((uv_handle_t *)&c.watchdog, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_false(c.timed_out);
    assert_int_equal(c.shutdown_rc, PG_PENDING);
    if (c.resp.status != 200)
        fail_msg("status %ld: %s", c.resp.status, c.resp.body.p);
    cJSON *j = parse_json_or_fail("completion", c.resp.body.p);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    assert_jstr(cJSON_GetObjectItem(ch, "message"), "content",
                "hosted on your loop");
    cJSON_Delete(j);
    /* Every handle the gateway put on the loop is closed. */
    assert_int_equal(uv_loop_close(&loop), 0);
    gwf_free(f);
    tc_response_free(&c.resp);
    free(c.url);
    free(c.body);
}

/* ---- tests: more of the HTTP contract ----------------------------------------- */

static void test_405_wrong_method(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    tc_response_t r = {0};
    request_ok(f, "GET", CHAT_PATH, NULL, NULL, &r);
    cJSON *j = gwf_assert_openai_error(&r, 405, NULL);
    cJSON_Delete(j);
    char *allow = tc_response_header(&r, "Allow");
    assert_non_null(allow);
    assert_non_null(strstr(allow, "POST"));
    free(allow);
    tc_response_free(&r);
    gwf_free(f);
}

static void test_expect_continue_and_chunked_body(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){0});
    char *body = chat_body("mock-echo", "continue please", false, false);
    const char *const cont[] = {"Expect: 100-continue", NULL};
    tc_response_t r = {0};
    request_ok(f, "POST", CHAT_PATH, body, cont, &r);
    if (r.status != 200)
        fail_msg("100-continue request got %ld: %s", r.status, r.body.p);
    assert_non_null(strstr(r.body.p, "continue please"));
    tc_response_free(&r);
    free(body);

    /* A chunked request body, split in odd places. */
    body = chat_body("mock-echo", "chunked upload", false, false);
    size_t n = strlen(body);
    size_t half = n / 3;
    char *req = tc_xasprintf(
        "POST " CHAT_PATH " HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n",
        half, (int)half, body, n - half, body + half);
    int fd = tc_raw_connect(f->port);
    assert_true(fd >= 0);
    assert_int_equal(tc_raw_send(fd, req, strlen(req)), 0);
    tc_bytes_t in = {0};
    bool closed = false;
    if (!tc_raw_recv_responses(fd, 1, 5000, &in, &closed))
        fail_msg("no answer to a chunked body: %s", in.p ? in.p : "");
    tc_http_msg_t m;
    size_t used;
    assert_int_equal(tc_http_parse(in.p, in.n, &m, 1, &used), 1);
    if (m.status != 200)
        fail_msg("chunked body got %d: %s", m.status, m.body);
    assert_non_null(strstr(m.body, "chunked upload"));
    tc_http_msg_free(&m);
    tc_bytes_free(&in);
    close(fd);
    free(req);
    free(body);
    gwf_free(f);
}

/* One request on a raw keep-alive connection, answered and left open;
 * then the gateway must close it once its idle timeout has passed. */
static void expect_idle_close(const gwf_t *f)
{
    int fd = tc_raw_connect(f->port);
    assert_true(fd >= 0);
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(tc_raw_send(fd, req, strlen(req)), 0);
    tc_bytes_t in = {0};
    bool closed = false;
    assert_true(tc_raw_recv_responses(fd, 1, 3000, &in, &closed));
    assert_false(closed);
    tc_raw_recv(fd, 10000, 1 << 20, &in, &closed);
    if (!closed)
        fail_msg("keep-alive connection still open after its idle timeout");
    tc_bytes_free(&in);
    close(fd);
}

static void test_idle_timeout_closes(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.idle_timeout = "300ms"});
    expect_idle_close(f);
    gwf_free(f);
}

/* server.busy_poll: the workers spin between events instead of sleeping
 * in epoll. Everything that rides on the loop still works: answers, a
 * stream whose chunks come from the mock's timer (each delay longer than
 * the spin window, so the loop sleeps and wakes between them), the
 * keep-alive idle timer, and the drain at shutdown. */
static void test_busy_poll(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.busy_poll = "2ms", .chunks = 4,
                                      .chunk_delay_ms = 20,
                                      .idle_timeout = "300ms"});
    const char *text = "spinning loops still keep their timers";
    for (int i = 0; i < 20; i++) {
        char *body = chat_body("mock-echo", text, i % 2 == 1, false);
        tc_response_t r;
        post_chat(f, body, &r);
        if (r.status != 200)
            fail_msg("status %ld: %s", r.status, r.body.p);
        if (i % 2 == 1) {
            stream_result_t s;
            check_stream(r.body.p, r.body.n, &s);
            assert_string_equal(s.content, text);
            assert_true(s.done_last);
            stream_result_free(&s);
        } else {
            cJSON *j = parse_json_or_fail("completion", r.body.p);
            cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
            assert_jstr(cJSON_GetObjectItem(ch, "message"), "content", text);
            cJSON_Delete(j);
        }
        tc_response_free(&r);
        free(body);
    }
    expect_idle_close(f);
    gwf_stop(f);
}

static void test_client_abort_mid_stream(void **state)
{
    (void)state;
    gwf_t *f = fx_start(&(cfg_opts_t){.chunk_delay_ms = 50, .chunks = 16});
    char *body = chat_body("mock-echo",
                           "a b c d e f g h i j k l m n o p q r s t u v w x",
                           true, false);
    int fd = tc_raw_post(f->port, CHAT_PATH, body, "X-Request-ID: abort-1\r\n");
    assert_true(fd >= 0);
    tc_bytes_t in = {0};
    bool closed = false;
    /* Read until the stream has started, then hang up. */
    while (!closed && (in.p == NULL || !strstr(in.p, "data:")))
        if (tc_raw_recv(fd, 3000, 1, &in, &closed) == 0)
            break;
    assert_non_null(in.p);
    assert_non_null(strstr(in.p, "data:"));
    assert_null(strstr(in.p, "[DONE]"));
    close(fd);
    const char *const needles[] = {"\"request_id\":\"abort-1\"", NULL};
    char *line = gwf_log_wait(f, needles);
    if (line == NULL)
        fail_msg("no access log line for the aborted stream");
    assert_non_null(strstr(line, "\"client_aborted\":1"));
    free(line);
    /* The gateway keeps serving. */
    char *b2 = chat_body("mock-echo", "after the abort", false, false);
    tc_response_t r;
    post_chat(f, b2, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.p, "after the abort"));
    tc_response_free(&r);
    /* The abandoned stream is gone: shutdown drains cleanly. */
    assert_int_equal(pg_gateway_shutdown(f->gw, 30000), PG_OK);
    free(b2);
    tc_bytes_free(&in);
    free(body);
    gwf_free(f);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_nonstream),
        cmocka_unit_test(test_chat_default_model_and_alias),
        cmocka_unit_test(test_chat_max_tokens_length),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_413_body_too_big),
        cmocka_unit_test(test_431_headers_too_big),
        cmocka_unit_test(test_408_header_timeout),
        cmocka_unit_test(test_garbage_then_new_connection),
        cmocka_unit_test(test_404_unknown_route),
        cmocka_unit_test(test_404_model_not_found),
        cmocka_unit_test(test_400_invalid_json),
        cmocka_unit_test(test_400_missing_model),
        cmocka_unit_test(test_200_concurrent_streams),
        cmocka_unit_test(test_graceful_shutdown_drains_stream),
        cmocka_unit_test(test_models_list),
        cmocka_unit_test(test_tool_call_nonstream),
        cmocka_unit_test(test_tool_call_stream),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_setters_busy_after_start),
        cmocka_unit_test(test_register_provider),
        cmocka_unit_test(test_host_loop),
        cmocka_unit_test(test_405_wrong_method),
        cmocka_unit_test(test_expect_continue_and_chunked_body),
        cmocka_unit_test(test_idle_timeout_closes),
        cmocka_unit_test(test_busy_poll),
        cmocka_unit_test(test_client_abort_mid_stream),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
