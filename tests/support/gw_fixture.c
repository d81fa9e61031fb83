/* gw_fixture.c: the in-process gateway of the integration tests and the
 * readers of its answers (see gw_fixture.h). Test thread only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_fixture.h"

/* How long a log line may take to appear, in 10 ms steps. */
#define GWF_LOG_WAIT_STEPS 500

gwf_t *gwf_new(const char *yaml)
{
    gwf_t *f = tc_xmalloc(sizeof(*f));
    memset(f, 0, sizeof(*f));
    tc_log_init(&f->log);
    f->yaml = tc_xstrdup(yaml);
    f->gw = pg_gateway_new();
    assert_non_null(f->gw);
    assert_int_equal(pg_gateway_set_config_yaml(f->gw, yaml, strlen(yaml)),
                     PG_OK);
    assert_int_equal(pg_gateway_set_listen(f->gw, "127.0.0.1", 0), PG_OK);
    assert_int_equal(pg_gateway_set_log_sink(f->gw, tc_log_sink, &f->log),
                     PG_OK);
    return f;
}

void gwf_start(gwf_t *f)
{
    int rc = pg_gateway_start(f->gw);
    if (rc != PG_OK)
        fail_msg("pg_gateway_start: %s: %s\n%s", pg_err_name(rc),
                 pg_gateway_last_error(f->gw), f->yaml);
    f->port = pg_gateway_port(f->gw);
    assert_true(f->port > 0);
}

gwf_t *gwf_start_yaml(const char *yaml)
{
    gwf_t *f = gwf_new(yaml);
    gwf_start(f);
    return f;
}

void gwf_stop(gwf_t *f)
{
    assert_int_equal(pg_gateway_shutdown(f->gw, 10000), PG_OK);
    gwf_free(f);
}

void gwf_free(gwf_t *f)
{
    pg_gateway_free(f->gw);
    tc_log_destroy(&f->log);
    free(f->yaml);
    free(f);
}

char *gwf_url(const gwf_t *f, const char *path)
{
    return tc_url(f->port, path);
}

char *gwf_provider_yaml(const char *name, const char *type, fu_t *fu,
                        const char *extra)
{
    char *base = fu_url(fu, strcmp(type, "anthropic") == 0 ? "" : "/v1");
    char *y = tc_xasprintf("  - {name: %s, type: %s, api_key: sk-test-%s, "
                           "base_url: \"%s\"%s%s}\n",
                           name, type, name, base, extra ? ", " : "",
                           extra ? extra : "");
    free(base);
    return y;
}

CURLcode gwf_request(gwf_t *f, const char *method, const char *path,
                     const char *body, const char *const *headers,
                     tc_response_t *r)
{
    char *url = gwf_url(f, path);
    memset(r, 0, sizeof(*r));
    CURLcode rc = tc_request(method, url, body, headers, r);
    free(url);
    return rc;
}

/* ---- log lines -------------------------------------------------------------- */

/* What the gateway did log, for the failure output of a wait that timed
 * out. */
static void print_log(gwf_t *f, const char *const *needles)
{
    fprintf(stderr, "no log line with");
    for (size_t k = 0; needles[k] != NULL; k++)
        fprintf(stderr, " %s", needles[k]);
    fprintf(stderr, "; the gateway logged:\n");
    pthread_mutex_lock(&f->log.mu);
    for (size_t i = 0; i < f->log.n; i++)
        fprintf(stderr, "  %s\n", f->log.lines[i]);
    pthread_mutex_unlock(&f->log.mu);
}

char *gwf_log_wait(gwf_t *f, const char *const *needles)
{
    for (int i = 0; i < GWF_LOG_WAIT_STEPS; i++) {
        char *line = tc_log_find(&f->log, needles);
        if (line != NULL)
            return line;
        usleep(10000);
    }
    print_log(f, needles);
    return NULL;
}

bool gwf_log_has_all(gwf_t *f, const char *const *needles)
{
    char *line = gwf_log_wait(f, needles);
    free(line);
    return line != NULL;
}

bool gwf_log_has(gwf_t *f, const char *needle)
{
    const char *const needles[] = {needle, NULL};
    return gwf_log_has_all(f, needles);
}

/* ---- answers ---------------------------------------------------------------- */

const char *gwf_body(const tc_response_t *r)
{
    return r->body.p ? r->body.p : "";
}

cJSON *gwf_json(const tc_response_t *r)
{
    cJSON *j = cJSON_Parse(gwf_body(r));
    if (j == NULL)
        fail_msg("not JSON (HTTP %ld): %s", r->status, gwf_body(r));
    return j;
}

const char *gwf_jstr(const cJSON *j, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

const char *gwf_oai_content(const cJSON *j)
{
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    return gwf_jstr(cJSON_GetObjectItem(c0, "message"), "content");
}

char *gwf_oai_stream_text(const tc_response_t *r, const char *model,
                          bool *done, bool *error)
{
    tc_sse_t s;
    tc_bytes_t out = {0};
    tc_bytes_append(&out, "", 0);
    tc_sse_parse(gwf_body(r), r->body.n, &s);
    *done = false;
    *error = false;
    for (size_t i = 0; i < s.n; i++) {
        if (strcmp(s.data[i], "[DONE]") == 0) {
            *done = i + 1 == s.n;
            continue;
        }
        cJSON *j = cJSON_Parse(s.data[i]);
        if (j == NULL)
            fail_msg("chunk is not JSON: %s", s.data[i]);
        if (cJSON_GetObjectItem(j, "error") != NULL)
            *error = true;
        if (model != NULL && strcmp(gwf_jstr(j, "model"), model) != 0)
            fail_msg("chunk does not name model %s: %s", model, s.data[i]);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
        const char *t = gwf_jstr(cJSON_GetObjectItem(c0, "delta"), "content");
        tc_bytes_append(&out, t, strlen(t));
        cJSON_Delete(j);
    }
    tc_sse_free(&s);
    return out.p;
}

/* ---- fake upstream scripts ---------------------------------------------------- */

char *gwf_oai_chunk_event(const char *content, bool role)
{
    return tc_xasprintf(
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{%s"
        "\"content\":\"%s\"},\"finish_reason\":null}]}\n\n",
        role ? "\"role\":\"assistant\"," : "", content);
}

fu_resp_t *gwf_oai_stream_opened(const char *first)
{
    fu_resp_t *s = fu_resp_new(200);
    fu_resp_header(s, "Content-Type", "text/event-stream");
    fu_resp_chunked(s);
    if (first != NULL) {
        char *ev = gwf_oai_chunk_event(first, true);
        fu_resp_part_str(s, 0, ev);
        free(ev);
    }
    return s;
}

/* ---- error shapes ------------------------------------------------------------- */

/* The status and Content-Type every error answer has, in either
 * dialect; returns the parsed body. */
static cJSON *error_answer(const tc_response_t *r, long status)
{
    if (r->status != status)
        fail_msg("want HTTP %ld, got %ld: %s", status, r->status, gwf_body(r));
    cJSON *j = gwf_json(r);
    char *ct = tc_response_header(r, "Content-Type");
    if (ct == NULL || strstr(ct, "application/json") == NULL)
        fail_msg("error Content-Type is %s", ct ? ct : "(missing)");
    free(ct);
    return j;
}

/* error.message: a string, not empty, containing want when given. */
static void check_error_message(const tc_response_t *r, const cJSON *e,
                                const char *want)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        fail_msg("error without a message: %s", gwf_body(r));
    if (want != NULL && strstr(m->valuestring, want) == NULL)
        fail_msg("error message without \"%s\": %s", want, gwf_body(r));
}

cJSON *gwf_assert_openai_error(const tc_response_t *r, long status,
                               const char *want)
{
    cJSON *j = error_answer(r, status);
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (!cJSON_IsObject(e))
        fail_msg("no error object: %s", gwf_body(r));
    check_error_message(r, e, want);
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "type")))
        fail_msg("error without a type: %s", gwf_body(r));
    if (!cJSON_HasObjectItem(e, "param") || !cJSON_HasObjectItem(e, "code"))
        fail_msg("error lacks param/code keys: %s", gwf_body(r));
    return j;
}

void gwf_assert_anthropic_error(const tc_response_t *r, long status,
                                const char *type, const char *want)
{
    cJSON *j = error_answer(r, status);
    if (strcmp(gwf_jstr(j, "type"), "error") != 0)
        fail_msg("not an Anthropic error: %s", gwf_body(r));
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(e, "type");
    if (!cJSON_IsString(t))
        fail_msg("error without a type: %s", gwf_body(r));
    if (type != NULL && strcmp(t->valuestring, type) != 0)
        fail_msg("error type %s, want %s: %s", t->valuestring, type,
                 gwf_body(r));
    check_error_message(r, e, want);
    cJSON_Delete(j);
}
