/* gw_fixture.h: the whole gateway in-process for the integration tests.
 * gwf_new / gwf_start run one from a YAML text on 127.0.0.1 and an
 * ephemeral port, with every line it logs kept (tc_log_t); the caller's
 * YAML carries what differs between test files (providers, routing, apps,
 * log level). Around it: a providers[] entry pointing at a fake upstream,
 * requests by path, bounded waits for log lines (the access log line is
 * written when a request completes, which may be just after the client
 * has its answer), and readers for what comes back: the body, the body as
 * JSON, the text of an OpenAI chat stream, and the error shapes of both
 * dialects.
 *
 * Test thread only (the gateway runs its own worker threads, so the
 * blocking requests here are fine). A check that does not hold fails the
 * running cmocka test; out of memory aborts (tc_xmalloc). */
#ifndef PG_TEST_GW_FIXTURE_H
#define PG_TEST_GW_FIXTURE_H

#include <stdbool.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "fake_upstream.h"
#include "polyglot/gateway.h"
#include "test_client.h"

/* One gateway under test. The test reads gw, port and log; the fixture
 * owns them. */
typedef struct gwf {
    pg_gateway_t *gw;
    int port;      /* after gwf_start */
    tc_log_t log;  /* every line the gateway logged */
    char *yaml;    /* its config, shown when it does not start */
} gwf_t;

/* A gateway configured with yaml (copied), listening on 127.0.0.1:0
 * whatever the YAML says, logging into f->log; not started, so the test
 * may call more setters (a yaml the gateway will refuse is fine here). */
gwf_t *gwf_new(const char *yaml);
/* pg_gateway_start, failing the test with the error and the config when
 * it does not start; sets f->port. */
void gwf_start(gwf_t *f);
/* gwf_new + gwf_start. */
gwf_t *gwf_start_yaml(const char *yaml);
/* pg_gateway_shutdown with 10 s to drain, which must succeed, then
 * gwf_free. */
void gwf_stop(gwf_t *f);
/* pg_gateway_free (which stops a running gateway itself) and the rest of
 * the fixture, for tests that shut down on their own terms or never
 * started. */
void gwf_free(gwf_t *f);

/* "http://127.0.0.1:<port><path>" (heap). */
char *gwf_url(const gwf_t *f, const char *path);

/* One providers[] list item (heap): a provider name of type type at fake
 * fu (base_url ending in /v1 except for type anthropic), api_key
 * sk-test-<name>, and extra YAML flow members (e.g. "max_retries: 0") when
 * not NULL. */
char *gwf_provider_yaml(const char *name, const char *type, fu_t *fu,
                        const char *extra);

/* One request on a fresh connection: r is zeroed first, then filled.
 * headers is a NULL-ended "Name: value" list or NULL. Returns libcurl's
 * code (a stream the gateway ends with an error may end the transfer
 * early; the tests say which codes they expect). */
CURLcode gwf_request(gwf_t *f, const char *method, const char *path,
                     const char *body, const char *const *headers,
                     tc_response_t *r);

/* Waits up to 5 s for a log line holding every needle (NULL-ended) and
 * returns a copy (free()), or NULL after printing what was logged. */
char *gwf_log_wait(gwf_t *f, const char *const *needles);
/* The same as a yes/no. */
bool gwf_log_has_all(gwf_t *f, const char *const *needles);
bool gwf_log_has(gwf_t *f, const char *needle);

/* The body as a C string ("" when there was none). */
const char *gwf_body(const tc_response_t *r);
/* The body parsed (caller cJSON_Deletes); fails the test when it is not
 * JSON. */
cJSON *gwf_json(const tc_response_t *r);
/* The string member key of j, or "" when j is NULL or the member is
 * missing or not a string. */
const char *gwf_jstr(const cJSON *j, const char *key);

/* The first choice's message content of an OpenAI chat completion, or
 * "". */
const char *gwf_oai_content(const cJSON *j);

/* The concatenated delta contents of an OpenAI chat stream. *done: the
 * last payload is [DONE]; *error: a chunk is an error object. When model
 * is not NULL every chunk (usage chunks too) must name it. A chunk that is
 * not JSON fails the test. Heap string. */
char *gwf_oai_stream_text(const tc_response_t *r, const char *model,
                          bool *done, bool *error);

/* ---- fake upstream scripts ---------------------------------------------------- */

/* One OpenAI chat.completion.chunk SSE event of model gpt-4o-mini (heap)
 * whose delta carries content (written as given, not escaped), with the
 * assistant role first when role is set. */
char *gwf_oai_chunk_event(const char *content, bool role);
/* The start of a fake's OpenAI stream, for the test to say how it goes
 * on (fu_resp_drop, fu_resp_stall, fu_resp_endless, more parts) before
 * fu_push: 200, text/event-stream, chunked, and, when first is not NULL,
 * gwf_oai_chunk_event(first, true) at once. */
fu_resp_t *gwf_oai_stream_opened(const char *first);

/* ---- error shapes ------------------------------------------------------------- */

/* An OpenAI error answer: the status, a JSON Content-Type, and
 * {"error":{"message" (not empty),"type","param","code"}}; when want is
 * not NULL the message contains it. Returns the parsed body for more
 * checks (caller cJSON_Deletes). */
cJSON *gwf_assert_openai_error(const tc_response_t *r, long status,
                               const char *want);
/* An Anthropic error answer: the status, a JSON Content-Type, and
 * {"type":"error","error":{"type","message" (not empty)}}; error.type
 * equal to type and the message containing want, each when not NULL. */
void gwf_assert_anthropic_error(const tc_response_t *r, long status,
                                const char *type, const char *want);

#endif
