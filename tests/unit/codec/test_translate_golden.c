/* test_translate_golden.c: the translation matrix of issue 4, run from the
 * golden files under tests/fixtures/translate (argv[1]; its README.md says
 * the layout and how to add a case). Two directions:
 *   openai_to_anthropic/<case>: an OpenAI Chat Completions client, an
 *     Anthropic Messages upstream;
 *   anthropic_to_openai/<case>: an Anthropic Messages client, an OpenAI
 *     Chat Completions upstream.
 * A case folder holds up to three pairs; each runs when its files exist:
 *   client_request.json    -> upstream_request.json  client decoder ->
 *                             canonical request -> upstream encoder
 *   upstream_response.json -> client_response.json   whole-body decoder ->
 *                             canonical accumulator -> client encoder
 *   upstream_stream.sse    -> client_stream.sse      SSE parser -> stream
 *                             decoder -> client stream encoder -> SSE
 * client_request.json is required: the other pairs read the request (the
 * model, stream_options.include_usage).
 *
 * The codecs are chained the way lib/provider/http_provider.c and
 * lib/frontdoor/{openai,anthropic}.c chain them; this runner stands in for
 * those two layers and does only what they do around the codecs: the
 * upstream request options of the "openai" and "anthropic" provider types
 * (max_completion_tokens, usage always asked for in a stream,
 * default_max_tokens 4096); the client stream names the model that
 * MESSAGE_START names; an encoder that refuses the event order ends the
 * stream with the frontdoor's "malformed event stream" error; a decoder
 * failure or a stream cut short ends it with the provider's "malformed"
 * error (type server_error, status 502); an OpenAI client stream that
 * finished gets "data: [DONE]". An upstream error before any event is an
 * HTTP error answer, not a stream, and fails the case here.
 *
 * Determinism: the frontdoors make the client-visible id ("chatcmpl-" /
 * "msg_" + random) and OpenAI's "created" (now) and hand them to the
 * encoders as arguments; the runner hands fixed values instead (GOLDEN_*
 * below), so no field is normalised in the comparison.
 *
 * Comparison: JSON structurally (cJSON_Compare: the same members with the
 * same values, member order free). SSE event by event: the same number of
 * events, the same event names, data compared as JSON when it parses and
 * byte for byte otherwise ("[DONE]"). Every upstream stream is fed whole,
 * one byte at a time, and in GOLDEN_SPLITS seeded random splits, and the
 * client bytes must be identical across all of them. Every client stream
 * is also read back by the same dialect's upstream decoder into the
 * canonical accumulator: the stream is one that dialect's clients parse.
 *
 * PG_GOLDEN_WRITE=1 in the environment writes the actual outputs over the
 * expected files instead of comparing them (for a new case: review the
 * diff before committing it). */
#include <dirent.h>
#include <limits.h>
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
#include "codec/anthropic_messages.h"
#include "codec/anthropic_upstream.h"
#include "codec/openai_chat.h"
#include "codec/openai_upstream.h"
#include "http/sse.h"
#include "test_client.h"

#define GOLDEN_OAI_ID "chatcmpl-golden"
#define GOLDEN_ANT_ID "msg_golden"
#define GOLDEN_CREATED 1700000000
#define GOLDEN_SPLITS 64
#define GOLDEN_MAX_OUT ((size_t)1 << 24)
/* What providers[].options.default_max_tokens defaults to. */
#define GOLDEN_DEFAULT_MAX_TOKENS 4096

static bool write_mode;

struct golden_case {
    char name[320];     /* "openai_to_anthropic/plain_text" */
    char dir[PATH_MAX + 320];
    bool openai_client; /* direction openai_to_anthropic */
};

/* ---- files ------------------------------------------------------------------ */

static void spill(const struct golden_case *c, const char *file, pg_str_t s)
{
    char path[sizeof(c->dir) + 64];
    snprintf(path, sizeof(path), "%s/%s", c->dir, file);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        fail_msg("%s: cannot write %s", c->name, path);
    assert_int_equal(fwrite(s.p, 1, s.n, f), s.n);
    fclose(f);
    print_message("[ wrote    ] %s/%s\n", c->name, file);
}

/* ---- JSON ----------------------------------------------------------------------- */

/* Compares actual JSON text with the expected file (or writes it). */
static void check_json(const struct golden_case *c, const char *file,
                       pg_str_t actual)
{
    cJSON *got = pg_json_parse(actual, NULL);
    if (got == NULL)
        fail_msg("%s: the gateway wrote invalid JSON for %s: %.*s", c->name,
                 file, (int)actual.n, actual.p);
    if (write_mode) {
        char *txt = cJSON_Print(got);
        assert_non_null(txt);
        size_t n = strlen(txt);
        char *line = malloc(n + 2);
        assert_non_null(line);
        memcpy(line, txt, n);
        line[n] = '\n';
        spill(c, file, (pg_str_t){line, n + 1});
        free(line);
        cJSON_free(txt);
        cJSON_Delete(got);
        return;
    }
    size_t n = 0;
    char *want_txt = tc_read_file(c->dir, file, &n);
    if (want_txt == NULL)
        fail_msg("%s: %s is missing", c->name, file);
    cJSON *want = pg_json_parse((pg_str_t){want_txt, n}, NULL);
    if (want == NULL)
        fail_msg("%s: %s is not valid JSON", c->name, file);
    if (!cJSON_Compare(want, got, true)) {
        char *w = cJSON_PrintUnformatted(want);
        char *g = cJSON_PrintUnformatted(got);
        print_error("%s: %s differs\n  want: %s\n  got:  %s\n", c->name, file,
                    w, g);
        cJSON_free(w);
        cJSON_free(g);
        cJSON_Delete(want);
        cJSON_Delete(got);
        free(want_txt);
        fail();
    }
    cJSON_Delete(want);
    cJSON_Delete(got);
    free(want_txt);
}

/* ---- SSE ------------------------------------------------------------------------ */

struct sse_list {
    struct sse_ev {
        char *event;
        char *data;
    } *v;
    size_t n, cap;
};

static int sse_collect(void *ud, pg_str_t event, pg_str_t data)
{
    struct sse_list *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n].event = strndup(event.p ? event.p : "", event.n);
    l->v[l->n].data = strndup(data.p ? data.p : "", data.n);
    l->n++;
    return PG_OK;
}

static void sse_list_free(struct sse_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].event);
        free(l->v[i].data);
    }
    free(l->v);
}

static void sse_parse(const struct golden_case *c, const char *what,
                      pg_str_t bytes, struct sse_list *out)
{
    pg_sse_parser_t p;
    pg_sse_parser_init(&p, GOLDEN_MAX_OUT);
    if (pg_sse_parser_feed(&p, bytes, sse_collect, out) != PG_OK ||
        pg_sse_parser_finish(&p, sse_collect, out) != PG_OK)
        fail_msg("%s: %s is not a complete event stream", c->name, what);
    pg_sse_parser_destroy(&p);
}

static bool same_data(const char *a, const char *b)
{
    cJSON *x = pg_json_parse(pg_str_c(a), NULL);
    cJSON *y = pg_json_parse(pg_str_c(b), NULL);
    bool same = x != NULL && y != NULL ? cJSON_Compare(x, y, true)
                                       : strcmp(a, b) == 0;
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

static void check_sse(const struct golden_case *c, const char *file,
                      pg_str_t actual)
{
    if (write_mode) {
        spill(c, file, actual);
        return;
    }
    size_t n = 0;
    char *want_txt = tc_read_file(c->dir, file, &n);
    if (want_txt == NULL)
        fail_msg("%s: %s is missing", c->name, file);
    struct sse_list want = {0}, got = {0};
    sse_parse(c, file, (pg_str_t){want_txt, n}, &want);
    sse_parse(c, "the client stream", actual, &got);
    for (size_t i = 0; i < want.n || i < got.n; i++) {
        if (i >= want.n || i >= got.n) {
            print_error("%s: %s has %zu events, the gateway wrote %zu:\n%.*s",
                        c->name, file, want.n, got.n, (int)actual.n,
                        actual.p);
            fail();
        }
        if (strcmp(want.v[i].event, got.v[i].event) != 0 ||
            !same_data(want.v[i].data, got.v[i].data)) {
            print_error("%s: %s event %zu differs\n  want: %s %s\n  got:  "
                        "%s %s\n", c->name, file, i, want.v[i].event,
                        want.v[i].data, got.v[i].event, got.v[i].data);
            fail();
        }
    }
    sse_list_free(&want);
    sse_list_free(&got);
    free(want_txt);
}

/* ---- the request ------------------------------------------------------------------ */

/* Decodes client_request.json into *q (in a) and checks what the upstream
 * is sent. */
static void run_request(const struct golden_case *c, pg_arena_t *a,
                        pg_request_t *q)
{
    size_t n = 0;
    char *txt = tc_read_file(c->dir, "client_request.json", &n);
    if (txt == NULL)
        fail_msg("%s: client_request.json is missing", c->name);
    cJSON *root = pg_json_parse_arena(a, (pg_str_t){txt, n}, NULL);
    if (root == NULL)
        fail_msg("%s: client_request.json is not valid JSON", c->name);
    pg_buf_t b;
    pg_buf_init(&b, GOLDEN_MAX_OUT);
    const char *why = NULL;
    int rc;
    if (c->openai_client) {
        pg_openai_decode_err_t err;
        if ((rc = pg_openai_chat_decode(a, root, q, &err)) != PG_OK)
            fail_msg("%s: the request was refused: %.*s", c->name,
                     (int)err.message.n, err.message.p);
        pg_anthropic_req_opts_t o = {
            .stream = q->stream,
            .default_max_tokens = GOLDEN_DEFAULT_MAX_TOKENS,
        };
        rc = pg_anthropic_encode_request(&b, q, &o, &why);
    } else {
        pg_anthropic_decode_err_t err;
        if ((rc = pg_anthropic_messages_decode(a, root, q, &err)) != PG_OK)
            fail_msg("%s: the request was refused: %.*s", c->name,
                     (int)err.message.n, err.message.p);
        pg_openai_req_opts_t o = {
            .stream = q->stream,
            .include_usage = q->stream,
            .max_completion_tokens = true,
        };
        rc = pg_openai_chat_encode_request(&b, q, &o, &why);
    }
    if (rc != PG_OK)
        fail_msg("%s: the request cannot be encoded: %s", c->name,
                 why ? why : pg_strerror(rc));
    check_json(c, "upstream_request.json", pg_buf_str(&b));
    pg_buf_free(&b);
    free(txt);
}

/* ---- the whole response -------------------------------------------------------------- */

static int acc_sink(void *ud, const pg_event_t *ev)
{
    pg_canon_response_t *acc = ud;
    int rc = pg_canon_response_add(acc, ev);
    if (rc != PG_OK)
        fail_msg("the decoder emitted an event out of order (kind %d)",
                 (int)ev->kind);
    return rc;
}

static void run_whole(const struct golden_case *c, pg_arena_t *a,
                      const pg_request_t *q)
{
    size_t n = 0;
    char *body = tc_read_file(c->dir, "upstream_response.json", &n);
    if (body == NULL)
        return;
    pg_canon_response_t acc;
    pg_canon_response_init(&acc, a);
    const char *why = NULL;
    int rc = c->openai_client
                 ? pg_anthropic_decode_response(a, (pg_str_t){body, n},
                                                acc_sink, &acc, &why)
                 : pg_openai_chat_decode_response(a, (pg_str_t){body, n},
                                                  acc_sink, &acc, &why);
    if (rc != PG_OK)
        fail_msg("%s: upstream_response.json was refused: %s", c->name,
                 why ? why : pg_strerror(rc));
    if (acc.failed || pg_canon_response_finish(&acc) != PG_OK)
        fail_msg("%s: upstream_response.json is not a whole answer", c->name);
    pg_str_t model = acc.model.n ? acc.model : q->model;
    pg_buf_t b;
    pg_buf_init(&b, GOLDEN_MAX_OUT);
    rc = c->openai_client
             ? pg_openai_chat_encode(&b, &acc, PG_STR(GOLDEN_OAI_ID),
                                     GOLDEN_CREATED, model)
             : pg_anthropic_messages_encode(&b, &acc, PG_STR(GOLDEN_ANT_ID),
                                            model);
    if (rc != PG_OK)
        fail_msg("%s: the client answer cannot be encoded: %s", c->name,
                 pg_strerror(rc));
    check_json(c, "client_response.json", pg_buf_str(&b));
    pg_buf_free(&b);
    free(body);
}

/* ---- the stream -------------------------------------------------------------------------- */

/* One pass of an upstream stream through the chain. */
struct stream_run {
    const struct golden_case *c;
    pg_arena_t arena;
    pg_openai_stream_dec_t odec;    /* openai upstream */
    pg_anthropic_stream_dec_t adec; /* anthropic upstream */
    pg_openai_stream_enc_t oenc;    /* openai client */
    pg_anthropic_stream_enc_t aenc; /* anthropic client */
    pg_buf_t out;                   /* the client's bytes */
    const char *why;
    bool emitted; /* an event reached the client side */
    bool broken;  /* the client stream ended with an error */
};

static int on_chunk(void *ud, pg_str_t payload)
{
    struct stream_run *s = ud;
    return pg_sse_append_event(&s->out, PG_STR_NULL, payload);
}

static int on_client_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct stream_run *s = ud;
    return pg_sse_append_event(&s->out, event, data);
}

static int enc_feed(struct stream_run *s, const pg_event_t *ev)
{
    if (s->c->openai_client)
        return pg_openai_stream_enc_feed(&s->oenc, ev, on_chunk, s);
    return pg_anthropic_stream_enc_feed(&s->aenc, ev, on_client_sse, s);
}

/* The frontdoors' stream_fail: an error event in the client's dialect
 * (type server_error; the Anthropic encoder names the type its clients
 * know for status 502). */
static void client_fail(struct stream_run *s, pg_str_t msg)
{
    pg_event_t ev = {.kind = PG_EV_ERROR, .status = 502,
                     .error_type = PG_STR("server_error"), .text = msg};
    s->broken = true;
    if (enc_feed(s, &ev) != PG_OK)
        fail_msg("%s: the encoder would not end the stream with an error",
                 s->c->name);
}

/* The provider sink and the frontdoor's stream_event in one. */
static int stream_sink(void *ud, const pg_event_t *ev)
{
    struct stream_run *s = ud;
    if (ev->kind == PG_EV_ERROR && !s->emitted)
        fail_msg("%s: an error before any event is an HTTP error answer, "
                 "not a stream", s->c->name);
    s->emitted = true;
    if (s->broken)
        return PG_OK;
    if (ev->kind == PG_EV_MESSAGE_START && ev->model.n > 0) {
        pg_str_t m = pg_arena_strdup(&s->arena, ev->model);
        assert_non_null(m.p);
        if (s->c->openai_client)
            s->oenc.model = m;
        else
            s->aenc.model = m;
    }
    int rc = enc_feed(s, ev);
    if (rc == PG_EPARSE)
        client_fail(s, PG_STR("The provider sent a malformed event stream."));
    else if (rc != PG_OK)
        fail_msg("%s: the client encoder failed: %s", s->c->name,
                 pg_strerror(rc));
    return PG_OK;
}

static int on_upstream_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct stream_run *s = ud;
    if (s->c->openai_client)
        return pg_anthropic_stream_dec_feed(&s->adec, event, data,
                                            stream_sink, s, &s->why);
    return pg_openai_stream_dec_feed(&s->odec, data, stream_sink, s, &s->why);
}

/* The provider's failure after the first event, as the client reads it. */
static void provider_fail(struct stream_run *s, const char *what, int rc)
{
    if (!s->emitted)
        fail_msg("%s: the stream failed before any event: %s", s->c->name,
                 s->why ? s->why : pg_strerror(rc));
    if (s->broken)
        return;
    pg_str_t msg = pg_arena_printf(&s->arena, "The provider sent a "
                                              "malformed %s: %s", what,
                                   s->why ? s->why : pg_strerror(rc));
    assert_non_null(msg.p);
    client_fail(s, msg);
}

/* The client stream reached its end (message stop or error event). */
static bool client_ended(const struct stream_run *s)
{
    if (s->c->openai_client)
        return s->oenc.state == PG_OAI_STREAM_DONE ||
               s->oenc.state == PG_OAI_STREAM_FAILED;
    return s->aenc.state == PG_ANT_ENC_DONE ||
           s->aenc.state == PG_ANT_ENC_FAILED;
}

/* Feeds upstream bytes in the pieces cuts[] says (lengths; 0 ends) and
 * returns the client's bytes (free()). */
static char *stream_once(const struct golden_case *c, const pg_request_t *q,
                         pg_str_t up, const size_t *cuts, size_t *outn)
{
    struct stream_run *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->c = c;
    pg_arena_init(&s->arena, 0);
    pg_openai_stream_dec_init(&s->odec, &s->arena);
    pg_anthropic_stream_dec_init(&s->adec, &s->arena);
    pg_openai_stream_enc_init(&s->oenc, &s->arena, PG_STR(GOLDEN_OAI_ID),
                              GOLDEN_CREATED, q->model, q->include_usage,
                              GOLDEN_MAX_OUT);
    pg_anthropic_stream_enc_init(&s->aenc, &s->arena, PG_STR(GOLDEN_ANT_ID),
                                 q->model, GOLDEN_MAX_OUT);
    pg_buf_init(&s->out, GOLDEN_MAX_OUT);
    pg_sse_parser_t p;
    pg_sse_parser_init(&p, GOLDEN_MAX_OUT);
    int rc = PG_OK;
    size_t off = 0;
    for (size_t i = 0; off < up.n && rc == PG_OK; i++) {
        size_t k = cuts[i] == 0 || cuts[i] > up.n - off ? up.n - off : cuts[i];
        rc = pg_sse_parser_feed(&p, (pg_str_t){up.p + off, k},
                                on_upstream_sse, s);
        off += k;
    }
    if (rc != PG_OK) {
        provider_fail(s, "stream", rc); /* the transfer is aborted */
    } else {
        rc = pg_sse_parser_finish(&p, on_upstream_sse, s);
        if (rc == PG_OK)
            rc = c->openai_client
                     ? pg_anthropic_stream_dec_finish(&s->adec, &s->why)
                     : pg_openai_stream_dec_finish(&s->odec, stream_sink, s,
                                                   &s->why);
        if (rc != PG_OK && rc != PG_EUPSTREAM)
            provider_fail(s, "response", rc);
        else if (!s->broken && !client_ended(s))
            client_fail(s, PG_STR("The provider ended the stream early."));
    }
    if (c->openai_client && s->oenc.state == PG_OAI_STREAM_DONE && !s->broken)
        assert_int_equal(pg_buf_append_cstr(&s->out, "data: [DONE]\n\n"),
                         PG_OK);
    pg_sse_parser_destroy(&p);
    char *out = malloc(s->out.n + 1);
    assert_non_null(out);
    memcpy(out, s->out.p ? s->out.p : "", s->out.n);
    out[s->out.n] = '\0';
    *outn = s->out.n;
    pg_buf_free(&s->out);
    pg_openai_stream_enc_destroy(&s->oenc);
    pg_anthropic_stream_enc_destroy(&s->aenc);
    pg_arena_destroy(&s->arena);
    free(s);
    return out;
}

/* The client stream read back by its own dialect's upstream decoder:
 * every event well-ordered, ending whole or with an error. */
static int readback_sse(void *ud, pg_str_t event, pg_str_t data);

struct readback {
    const struct golden_case *c;
    pg_arena_t arena;
    pg_canon_response_t acc;
    pg_openai_stream_dec_t odec;
    pg_anthropic_stream_dec_t adec;
    const char *why;
};

static int readback_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct readback *r = ud;
    int rc = r->c->openai_client
                 ? pg_openai_stream_dec_feed(&r->odec, data, acc_sink,
                                             &r->acc, &r->why)
                 : pg_anthropic_stream_dec_feed(&r->adec, event, data,
                                                acc_sink, &r->acc, &r->why);
    if (rc != PG_OK)
        fail_msg("%s: the client stream does not read back: %s", r->c->name,
                 r->why ? r->why : pg_strerror(rc));
    return PG_OK;
}

static void readback(const struct golden_case *c, pg_str_t client)
{
    struct readback *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->c = c;
    pg_arena_init(&r->arena, 0);
    pg_canon_response_init(&r->acc, &r->arena);
    pg_openai_stream_dec_init(&r->odec, &r->arena);
    pg_anthropic_stream_dec_init(&r->adec, &r->arena);
    pg_sse_parser_t p;
    pg_sse_parser_init(&p, GOLDEN_MAX_OUT);
    assert_int_equal(pg_sse_parser_feed(&p, client, readback_sse, r), PG_OK);
    assert_int_equal(pg_sse_parser_finish(&p, readback_sse, r), PG_OK);
    int rc = c->openai_client
                 ? pg_openai_stream_dec_finish(&r->odec, acc_sink, &r->acc,
                                               &r->why)
                 : pg_anthropic_stream_dec_finish(&r->adec, &r->why);
    if (!(rc == PG_OK || (rc == PG_EUPSTREAM && r->acc.failed)))
        fail_msg("%s: the client stream does not end cleanly: %s", c->name,
                 r->why ? r->why : pg_strerror(rc));
    if (!r->acc.failed)
        assert_int_equal(pg_canon_response_finish(&r->acc), PG_OK);
    pg_sse_parser_destroy(&p);
    pg_arena_destroy(&r->arena);
    free(r);
}

/* A small deterministic generator for the random splits. */
static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void run_stream(const struct golden_case *c, const pg_request_t *q)
{
    size_t n = 0;
    char *up = tc_read_file(c->dir, "upstream_stream.sse", &n);
    if (up == NULL)
        return;
    pg_str_t bytes = {up, n};
    size_t *cuts = calloc(n + 1, sizeof(*cuts));
    assert_non_null(cuts);
    size_t wn = 0;
    char *whole = stream_once(c, q, bytes, cuts, &wn); /* cuts all 0 */
    check_sse(c, "client_stream.sse", (pg_str_t){whole, wn});
    readback(c, (pg_str_t){whole, wn});
    for (int run = 0; run <= GOLDEN_SPLITS; run++) {
        /* Run 0: one byte at a time; then seeded random pieces of 1 to 96
         * bytes, so every kind of boundary (inside a field name, between
         * CR and LF, inside a UTF-8 sequence) comes up. */
        uint64_t x = 0x9e3779b97f4a7c15u ^ (uint64_t)(run + 1);
        for (size_t i = 0; i < n; i++)
            cuts[i] = run == 0 ? 1 : 1 + (size_t)(next_rand(&x) % 96);
        cuts[n] = 0;
        size_t sn = 0;
        char *split = stream_once(c, q, bytes, cuts, &sn);
        if (sn != wn || memcmp(split, whole, wn) != 0)
            fail_msg("%s: split run %d wrote other bytes than the whole "
                     "stream:\n%s\n--- whole:\n%s", c->name, run, split,
                     whole);
        free(split);
    }
    free(cuts);
    free(whole);
    free(up);
}

/* ---- cases --------------------------------------------------------------------------------- */

static void golden_case(void **state)
{
    const struct golden_case *c = *state;
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_request_t q;
    run_request(c, &a, &q);
    run_whole(c, &a, &q);
    run_stream(c, &q);
    pg_arena_destroy(&a);
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const struct CMUnitTest *)x)->name,
                  ((const struct CMUnitTest *)y)->name);
}

/* Adds a test per case folder of root/direction. */
static void add_cases(const char *root, const char *direction,
                      bool openai_client, struct CMUnitTest **tests,
                      size_t *n, size_t *cap)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", root, direction);
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "test_translate_golden: cannot open %s\n", dir);
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct golden_case *c = calloc(1, sizeof(*c));
        if (c == NULL)
            exit(1);
        snprintf(c->name, sizeof(c->name), "%s/%s", direction, e->d_name);
        snprintf(c->dir, sizeof(c->dir), "%s/%s", dir, e->d_name);
        c->openai_client = openai_client;
        if (*n == *cap) {
            *cap = *cap ? *cap * 2 : 32;
            *tests = realloc(*tests, *cap * sizeof(**tests));
            if (*tests == NULL)
                exit(1);
        }
        (*tests)[(*n)++] = (struct CMUnitTest){
            .name = c->name, .test_func = golden_case, .initial_state = c};
    }
    closedir(d);
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "tests/fixtures/translate";
    const char *w = getenv("PG_GOLDEN_WRITE");
    write_mode = w != NULL && strcmp(w, "1") == 0;
    struct CMUnitTest *tests = NULL;
    size_t n = 0, cap = 0;
    add_cases(root, "openai_to_anthropic", true, &tests, &n, &cap);
    add_cases(root, "anthropic_to_openai", false, &tests, &n, &cap);
    if (n == 0) {
        fprintf(stderr, "test_translate_golden: no cases under %s\n", root);
        return 1;
    }
    qsort(tests, n, sizeof(*tests), by_name);
    int failed = _cmocka_run_group_tests("translate_golden", tests, n, NULL,
                                         NULL);
    for (size_t i = 0; i < n; i++)
        free((void *)tests[i].initial_state);
    free(tests);
    return failed;
}
