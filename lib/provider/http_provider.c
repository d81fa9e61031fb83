/* http_provider.c: the built-in provider types that reach a model over
 * HTTP: "openai" (api.openai.com, Bearer key), "openai-compatible" (any
 * server speaking Chat Completions: base_url required, key optional) and
 * "anthropic" (api.anthropic.com, x-api-key + anthropic-version). They
 * implement the same pg_provider_vtable a host provider does.
 *
 * One call: encode the canonical request in the provider's dialect, send
 * it with the worker's upstream client, and turn the answer back into
 * canonical events as it arrives (SSE parser -> dialect stream decoder ->
 * pg_provider_call_emit), never buffering a stream. Failures before any
 * event are retried here (max_retries, exponential backoff with jitter,
 * Retry-After when short) and then reported as retryable so the gateway
 * can fail over; failures after the first event end the stream with an
 * error. A slow client pauses the transfer (emit -> PG_PENDING).
 *
 * Instances are created off the loop and shared by all workers (read-only
 * after create); calls run on the worker loop that owns them. */
#include "provider/http_provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/ids.h"
#include "base/list.h"
#include "base/str.h"
#include "codec/anthropic_upstream.h"
#include "codec/openai_upstream.h"
#include "http/sse.h"
#include "provider/call.h"
#include "upstream/upstream.h"

#define HP_MAX_HEADERS 32
/* Client headers forwarded to anthropic-type upstreams (anthropic-beta). */
#define HP_MAX_CLIENT_HEADERS 2
#define HP_MAX_RELAY 16
#define HP_MAX_ERROR_BODY (64u * 1024u)
/* max_response_bytes when the config gives none (a host-built config). */
#define HP_MAX_BODY (64u * 1024u * 1024u)
#define HP_MAX_REQUEST (32u * 1024u * 1024u)
#define HP_MAX_SSE_EVENT (8u * 1024u * 1024u)
#define HP_BACKOFF_BASE_MS 250u
#define HP_BACKOFF_MAX_MS 8000u
/* A Retry-After longer than this is not waited for: the call fails (and
 * may fail over) at once instead of holding the client. */
#define HP_RETRY_AFTER_MAX_MS 10000u
#define HP_DEFAULT_MAX_TOKENS 4096
#define HP_DEFAULT_ANTHROPIC_VERSION "2023-06-01"

typedef enum hp_dialect {
    HP_OPENAI = 0,
    HP_ANTHROPIC
} hp_dialect_t;

typedef struct hp_kind {
    const char *type;
    hp_dialect_t dialect;
    const char *default_base_url; /* NULL: base_url required */
    const char *path;             /* appended to base_url */
    bool key_required;
    bool max_completion_tokens;   /* default for the option */
} hp_kind_t;

static const hp_kind_t kind_openai = {"openai", HP_OPENAI,
                                      "https://api.openai.com/v1",
                                      "/chat/completions", true, true};
static const hp_kind_t kind_compatible = {"openai-compatible", HP_OPENAI, NULL,
                                          "/chat/completions", false, false};
static const hp_kind_t kind_anthropic = {"anthropic", HP_ANTHROPIC,
                                         "https://api.anthropic.com",
                                         "/v1/messages", true, false};

/* One providers[] entry. Everything is owned and immutable after create. */
typedef struct hp_instance {
    const hp_kind_t *kind;
    char *url;                      /* base_url + path */
    char *count_url;                /* anthropic: url + "/count_tokens" */
    char *key;                      /* NUL-terminated copy; may be "" */
    size_t key_len;
    pg_kv_t headers[HP_MAX_HEADERS];/* slices into hdr_text */
    size_t nheaders;
    char *hdr_text;                 /* owned backing store of headers */
    char missing_key[256];          /* non-empty: requests fail with this */
    uint64_t connect_ms, first_byte_ms, idle_ms, total_ms;
    uint64_t max_body;              /* max_response_bytes */
    char *ca_pem;                   /* tls.ca_file's contents; NULL: none */
    size_t ca_pem_len;
    int max_retries;
    int64_t default_max_tokens;
    bool max_completion_tokens;
    bool http1_curl;                /* http1_client: curl */
} hp_instance_t;

/* One call. Heap-allocated: its retry timer may outlive the call's arena
 * (freed in the timer's close callback). */
typedef struct hp_call {
    hp_instance_t *inst;
    pg_provider_call_t *call;       /* NULL once done or canceled */
    pg_upstream_xfer_t *xfer;
    uv_timer_t retry_timer;
    pg_buf_t body;                  /* request body, kept for retries */
    int attempt;                    /* retries made so far */
    bool stream;
    int status;                     /* upstream status of this attempt */
    bool ok_status;
    /* A 2xx answer to a stream request that says it is JSON: the upstream
     * ignored stream: true or put an error under a 200. Collected in resp
     * (bounded like an error body) and failed, never fed to the SSE
     * parser. */
    bool json_not_stream;
    pg_buf_t resp;                  /* non-stream body or error body */
    pg_sse_parser_t sse;
    /* The decoders live in the request arena, not here: they hook their
     * scratch memory to that arena's cleanups, which run after this state
     * may already be gone. */
    pg_openai_stream_dec_t *oai;
    pg_anthropic_stream_dec_t *ant;
    bool emitted;                   /* an event went to the gateway */
    bool paused;
    pg_kv_t relay[HP_MAX_RELAY];    /* slices into relay_text */
    size_t nrelay;
    pg_buf_t relay_text;
    uint64_t retry_after_ms;        /* from the upstream; 0: none */
    const char *fail_why;           /* protocol problem seen while decoding */
    /* An error event the upstream streamed before anything else (e.g.
     * Anthropic's overloaded_error): handled like an error status, so it
     * can be retried or failed over instead of reaching the client. */
    int early_status;
    pg_str_t early_type, early_msg; /* request arena copies */
} hp_call_t;

/* ---- create / destroy --------------------------------------------------- */

static void hp_destroy(void *self)
{
    hp_instance_t *in = self;
    if (in == NULL)
        return;
    if (in->key != NULL) {
        /* Scrub the secret before the memory goes back to the allocator. */
        volatile char *k = in->key;
        for (size_t i = 0; i < in->key_len; i++)
            k[i] = 0;
    }
    pg__free(in->key);
    pg__free(in->url);
    pg__free(in->ca_pem);
    pg__free(in->count_url);
    pg__free(in->hdr_text);
    pg__free(in);
}

/* Appends "name\0value\0" pairs to text, remembering offsets; slices are
 * fixed up once text stops moving. */
typedef struct hdr_builder {
    pg_buf_t text;
    size_t off[HP_MAX_HEADERS][4]; /* name off, name len, value off, len */
    size_t n;
    int rc;
} hdr_builder_t;

static void hdr_add(hdr_builder_t *hb, pg_str_t name, pg_str_t value)
{
    if (hb->rc != PG_OK)
        return;
    if (hb->n >= HP_MAX_HEADERS) {
        hb->rc = PG_ETOOBIG;
        return;
    }
    size_t *o = hb->off[hb->n];
    o[0] = hb->text.n;
    o[1] = name.n;
    if ((hb->rc = pg_buf_append_str(&hb->text, name)) ||
        (hb->rc = pg_buf_append_char(&hb->text, '\0')))
        return;
    o[2] = hb->text.n;
    o[3] = value.n;
    if ((hb->rc = pg_buf_append_str(&hb->text, value)) ||
        (hb->rc = pg_buf_append_char(&hb->text, '\0')))
        return;
    hb->n++;
}

static bool header_value_ok(pg_str_t v)
{
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] == '\r' || v.p[i] == '\n' || v.p[i] == '\0')
            return false;
    }
    return true;
}

static int parse_options(hp_instance_t *in, const pg_provider_config_t *cfg,
                         pg_str_t *version, char *err, size_t errlen)
{
    in->default_max_tokens = HP_DEFAULT_MAX_TOKENS;
    in->max_completion_tokens = in->kind->max_completion_tokens;
    *version = PG_STR(HP_DEFAULT_ANTHROPIC_VERSION);
    for (size_t i = 0; i < cfg->noptions; i++) {
        pg_str_t k = cfg->options[i].key, v = cfg->options[i].value;
        if (in->kind->dialect == HP_ANTHROPIC &&
            pg_str_eqc(k, "default_max_tokens")) {
            int64_t n;
            if (pg_str_to_i64(v, &n) != PG_OK || n < 1 || n > 1000000) {
                snprintf(err, errlen,
                         "default_max_tokens: must be an integer from 1 to "
                         "1000000");
                return PG_ECONFIG;
            }
            in->default_max_tokens = n;
        } else if (in->kind->dialect == HP_ANTHROPIC &&
                   pg_str_eqc(k, "anthropic_version")) {
            if (v.n == 0 || !header_value_ok(v)) {
                snprintf(err, errlen, "anthropic_version: must be a date "
                                      "such as 2023-06-01");
                return PG_ECONFIG;
            }
            *version = v;
        } else if (in->kind->dialect == HP_OPENAI &&
                   pg_str_eqc(k, "max_completion_tokens")) {
            if (!pg_str_eqc(v, "true") && !pg_str_eqc(v, "false")) {
                snprintf(err, errlen,
                         "max_completion_tokens: must be true or false");
                return PG_ECONFIG;
            }
            in->max_completion_tokens = pg_str_eqc(v, "true");
        } else {
            snprintf(err, errlen, "%.*s: unknown option for type %s",
                     (int)k.n, k.p, in->kind->type);
            return PG_ECONFIG;
        }
    }
    return PG_OK;
}

static int build_url(hp_instance_t *in, const pg_provider_config_t *cfg,
                     char *err, size_t errlen)
{
    pg_str_t base = cfg->base_url;
    if (base.n == 0) {
        if (in->kind->default_base_url == NULL) {
            snprintf(err, errlen, "base_url: required for type %s",
                     in->kind->type);
            return PG_ECONFIG;
        }
        base = pg_str_c(in->kind->default_base_url);
    }
    while (base.n > 0 && base.p[base.n - 1] == '/')
        base.n--;
    pg_buf_t u;
    pg_buf_init(&u, 8192);
    if (pg_buf_append_str(&u, base) != PG_OK ||
        pg_buf_append_cstr(&u, in->kind->path) != PG_OK) {
        pg_buf_free(&u);
        snprintf(err, errlen, "base_url: too long");
        return PG_ECONFIG;
    }
    in->url = u.p; /* owned now */
    if (in->kind->dialect == HP_ANTHROPIC) {
        /* Messages count_tokens sits under the Messages endpoint. */
        pg_buf_init(&u, 8192);
        if (pg_buf_append_cstr(&u, in->url) != PG_OK ||
            pg_buf_append_cstr(&u, "/count_tokens") != PG_OK) {
            pg_buf_free(&u);
            snprintf(err, errlen, "base_url: too long");
            return PG_ECONFIG;
        }
        in->count_url = u.p;
    }
    return PG_OK;
}

static int build_headers(hp_instance_t *in, const pg_provider_config_t *cfg,
                         pg_str_t version, char *err, size_t errlen)
{
    hdr_builder_t hb = {.n = 0, .rc = PG_OK};
    pg_buf_init(&hb.text, 64 * 1024);
    pg_str_t key = {in->key, in->key_len};
    char bearer[8192];
    hdr_add(&hb, PG_STR("Content-Type"), PG_STR("application/json"));
    if (in->kind->dialect == HP_ANTHROPIC) {
        if (key.n > 0)
            hdr_add(&hb, PG_STR("x-api-key"), key);
        hdr_add(&hb, PG_STR("anthropic-version"), version);
    } else if (key.n > 0) {
        int n = snprintf(bearer, sizeof(bearer), "Bearer %s", in->key);
        if (n < 0 || (size_t)n >= sizeof(bearer)) {
            snprintf(err, errlen, "api_key: too long");
            pg_buf_free(&hb.text);
            return PG_ECONFIG;
        }
        hdr_add(&hb, PG_STR("Authorization"), (pg_str_t){bearer, (size_t)n});
    }
    for (size_t i = 0; i < cfg->nheaders; i++) {
        if (!header_value_ok(cfg->headers[i].key) ||
            !header_value_ok(cfg->headers[i].value)) {
            snprintf(err, errlen, "headers: %.*s: line breaks are not allowed",
                     (int)cfg->headers[i].key.n, cfg->headers[i].key.p);
            pg_buf_free(&hb.text);
            return PG_ECONFIG;
        }
        hdr_add(&hb, cfg->headers[i].key, cfg->headers[i].value);
    }
    memset(bearer, 0, sizeof(bearer));
    if (hb.rc != PG_OK) {
        snprintf(err, errlen, "headers: too many or too large");
        pg_buf_free(&hb.text);
        return PG_ECONFIG;
    }
    in->hdr_text = hb.text.p; /* owned now; no more appends */
    for (size_t i = 0; i < hb.n; i++) {
        in->headers[i].key = (pg_str_t){in->hdr_text + hb.off[i][0],
                                        hb.off[i][1]};
        in->headers[i].value = (pg_str_t){in->hdr_text + hb.off[i][2],
                                          hb.off[i][3]};
    }
    in->nheaders = hb.n;
    return PG_OK;
}

static int hp_create(const hp_kind_t *kind, const pg_provider_config_t *cfg,
                     void **self, char *err, size_t errlen)
{
    int rc = PG_ENOMEM;
    pg_str_t version;
    hp_instance_t *in = pg__calloc(1, sizeof(*in));
    if (in == NULL)
        goto fail;
    in->kind = kind;
    in->key = pg__strndup(cfg->api_key.p ? cfg->api_key.p : "",
                          cfg->api_key.n);
    if (in->key == NULL)
        goto fail;
    in->key_len = cfg->api_key.n;
    if (!header_value_ok(cfg->api_key)) {
        snprintf(err, errlen, "api_key: line breaks are not allowed");
        rc = PG_ECONFIG;
        goto fail;
    }
    if ((rc = parse_options(in, cfg, &version, err, errlen)) != PG_OK ||
        (rc = build_url(in, cfg, err, errlen)) != PG_OK ||
        (rc = build_headers(in, cfg, version, err, errlen)) != PG_OK)
        goto fail;
    if (kind->key_required && in->key_len == 0) {
        /* Not a config error: the gateway still serves its other models;
         * requests routed here get this message (and may fail over). */
        if (cfg->api_key_env.n > 0)
            snprintf(in->missing_key, sizeof(in->missing_key),
                     "The provider \"%.*s\" has no API key: set the %.*s "
                     "environment variable and restart the gateway.",
                     (int)cfg->name.n, cfg->name.p, (int)cfg->api_key_env.n,
                     cfg->api_key_env.p);
        else
            snprintf(in->missing_key, sizeof(in->missing_key),
                     "The provider \"%.*s\" has no API key: set its api_key "
                     "in the configuration.",
                     (int)cfg->name.n, cfg->name.p);
    }
    in->connect_ms = cfg->connect_timeout_ms;
    in->first_byte_ms = cfg->first_byte_timeout_ms;
    in->idle_ms = cfg->idle_timeout_ms;
    in->total_ms = cfg->total_timeout_ms;
    in->max_body = cfg->max_response_bytes ? cfg->max_response_bytes
                                           : HP_MAX_BODY;
    in->http1_curl = cfg->http1_curl;
    if (cfg->tls_ca_pem.n > 0) {
        in->ca_pem = pg__strndup(cfg->tls_ca_pem.p, cfg->tls_ca_pem.n);
        rc = PG_ENOMEM;
        if (in->ca_pem == NULL)
            goto fail;
        in->ca_pem_len = cfg->tls_ca_pem.n;
    }
    in->max_retries = cfg->max_retries;
    *self = in;
    return PG_OK;
fail:
    if (rc == PG_ENOMEM)
        snprintf(err, errlen, "out of memory");
    hp_destroy(in);
    return rc;
}

static int create_openai(const pg_provider_config_t *cfg, void **self,
                         char *err, size_t errlen)
{
    return hp_create(&kind_openai, cfg, self, err, errlen);
}

static int create_compatible(const pg_provider_config_t *cfg, void **self,
                             char *err, size_t errlen)
{
    return hp_create(&kind_compatible, cfg, self, err, errlen);
}

static int create_anthropic(const pg_provider_config_t *cfg, void **self,
                            char *err, size_t errlen)
{
    return hp_create(&kind_anthropic, cfg, self, err, errlen);
}

/* ---- call state ---------------------------------------------------------- */

static void on_retry_timer_closed(uv_handle_t *h)
{
    hp_call_t *hc = pg_container_of((uv_timer_t *)h, hp_call_t, retry_timer);
    pg_buf_free(&hc->body);
    pg_buf_free(&hc->resp);
    pg_buf_free(&hc->relay_text);
    pg_sse_parser_destroy(&hc->sse);
    pg__free(hc);
}

/* Ends the call's life on our side: stops the transfer and the timer and
 * frees the state once the timer has closed. The gateway's call is not
 * touched. */
static void hc_release(hp_call_t *hc)
{
    hc->call = NULL;
    if (hc->xfer != NULL) {
        pg_upstream_cancel(hc->xfer);
        hc->xfer = NULL;
    }
    uv_timer_stop(&hc->retry_timer);
    uv_close((uv_handle_t *)&hc->retry_timer, on_retry_timer_closed);
}

/* Replaces every occurrence of the instance's key in msg: an upstream
 * that echoes the key back must not make us show it. */
static pg_str_t scrub_key(pg_arena_t *a, const hp_instance_t *in, pg_str_t msg)
{
    if (in->key_len < 4 || msg.n < in->key_len ||
        memmem(msg.p, msg.n, in->key, in->key_len) == NULL)
        return msg;
    pg_buf_t b;
    pg_buf_init(&b, msg.n + 64);
    size_t i = 0;
    while (i < msg.n) {
        const char *hit = memmem(msg.p + i, msg.n - i, in->key, in->key_len);
        size_t upto = hit ? (size_t)(hit - msg.p) : msg.n;
        if (pg_buf_append(&b, msg.p + i, upto - i) != PG_OK)
            break;
        if (hit == NULL)
            break;
        if (pg_buf_append_cstr(&b, "[redacted]") != PG_OK)
            break;
        i = upto + in->key_len;
    }
    pg_str_t out = pg_arena_strdup(a, pg_buf_str(&b));
    pg_buf_free(&b);
    return out.p ? out : PG_STR("The provider returned an error.");
}

/* Finishes the call with an error. */
static void hc_fail(hp_call_t *hc, int status, pg_str_t type, pg_str_t msg,
                    bool retryable)
{
    pg_provider_call_t *call = hc->call;
    if (call == NULL)
        return;
    pg_arena_t *a = ((struct pg_provider_call *)call)->arena;
    /* Only an upstream error answer counts (a 2xx head whose body broke
     * is the gateway's verdict, not the upstream's status). */
    ((struct pg_provider_call *)call)->upstream_status =
        hc->status >= 300 ? hc->status : 0;
    pg_provider_error_t err = {
        .http_status = status,
        .type = type,
        .message = scrub_key(a, hc->inst, msg),
        .retryable = retryable && !hc->emitted,
        .headers = hc->relay,
        .nheaders = hc->nrelay,
    };
    hc_release(hc);
    pg_provider_call_done(call, &err);
}

static void hc_succeed(hp_call_t *hc)
{
    pg_provider_call_t *call = hc->call;
    if (call == NULL)
        return;
    hc_release(hc);
    pg_provider_call_done(call, NULL);
}

/* ---- events toward the gateway ----------------------------------------- */

/* The decoders' sink: forwards to the gateway. PG_PENDING (slow client)
 * is remembered so on_data pauses the transfer. */
static int sink(void *ud, const pg_event_t *ev)
{
    hp_call_t *hc = ud;
    if (hc->call == NULL)
        return PG_ECANCELED;
    if (ev->kind == PG_EV_ERROR && !hc->emitted) {
        pg_arena_t *a = hc->call->arena;
        hc->early_status = ev->status ? ev->status : 502;
        hc->early_type = pg_arena_strdup(a, ev->error_type);
        hc->early_msg = pg_arena_strdup(a, ev->text);
        return PG_EUPSTREAM; /* stops the decoder; on_done takes over */
    }
    if (!hc->emitted && hc->nrelay > 0)
        (void)pg_provider_call_set_headers(hc->call, hc->relay, hc->nrelay);
    hc->emitted = true;
    int rc = pg_provider_call_emit(hc->call, ev);
    if (rc == PG_PENDING) {
        hc->paused = true;
        return PG_OK;
    }
    return rc;
}

/* Passthrough: hands raw bytes to the gateway. */
static int deliver_raw(hp_call_t *hc, pg_str_t event, pg_str_t payload)
{
    struct pg_provider_call *c = hc->call;
    if (c == NULL || !c->running)
        return PG_ECANCELED;
    if (!hc->emitted && hc->nrelay > 0)
        (void)pg_provider_call_set_headers(c, hc->relay, hc->nrelay);
    hc->emitted = true;
    c->emitted = true;
    int rc = c->on_raw(c->ud, event, payload);
    if (rc == PG_PENDING) {
        hc->paused = true;
        return PG_OK;
    }
    return rc;
}

/* An Anthropic stream that opens with an error event (overloaded_error
 * under a 200): in passthrough, as in translation, it is handled like an
 * error status, so it can be retried or failed over instead of reaching
 * the client as a stream. */
static int early_raw_error(hp_call_t *hc, pg_str_t data)
{
    pg_arena_t *a = hc->call->arena;
    pg_str_t type = PG_STR_NULL, msg = PG_STR_NULL;
    (void)pg_anthropic_parse_error(a, data, &type, &msg);
    hc->early_status = type.n ? pg_anthropic_error_status(type) : 502;
    hc->early_type = type;
    hc->early_msg = msg;
    return PG_EUPSTREAM; /* stops the parser; on_done takes over */
}

static int on_sse_event(void *ud, pg_str_t event, pg_str_t data)
{
    hp_call_t *hc = ud;
    if (hc->call->raw) {
        if (!hc->emitted && hc->inst->kind->dialect == HP_ANTHROPIC &&
            pg_str_eqc(event, "error"))
            return early_raw_error(hc, data);
        return deliver_raw(hc, event, data);
    }
    if (hc->inst->kind->dialect == HP_OPENAI)
        return pg_openai_stream_dec_feed(hc->oai, data, sink, hc,
                                         &hc->fail_why);
    return pg_anthropic_stream_dec_feed(hc->ant, event, data, sink, hc,
                                        &hc->fail_why);
}

/* ---- the upstream transfer ------------------------------------------------ */

static bool is_relayed_header(pg_str_t name)
{
    static const char *const prefixes[] = {"x-ratelimit-",
                                           "anthropic-ratelimit-"};
    if (pg_str_ieq(name, PG_STR("retry-after")) ||
        pg_str_ieq(name, PG_STR("retry-after-ms")))
        return true;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        pg_str_t p = pg_str_c(prefixes[i]);
        if (name.n >= p.n && strncasecmp(name.p, p.p, p.n) == 0)
            return true;
    }
    return false;
}

/* Seconds ("30") or milliseconds (retry-after-ms) into ms; 0 if unusable. */
static uint64_t parse_retry_after(pg_str_t name, pg_str_t v)
{
    int64_t n;
    if (pg_str_to_i64(pg_str_trim(v), &n) != PG_OK || n < 0)
        return 0; /* an HTTP date: treated as "not short" below */
    if (pg_str_ieq(name, PG_STR("retry-after-ms")))
        return (uint64_t)n;
    return (uint64_t)n * 1000u;
}

static int on_head(void *ud, int status, const pg_kv_t *headers, size_t n)
{
    hp_call_t *hc = ud;
    hc->status = status;
    hc->ok_status = status >= 200 && status < 300;
    hc->json_not_stream = false;
    for (size_t i = 0; i < n && hc->stream && hc->ok_status; i++) {
        pg_str_t v = pg_str_trim(headers[i].value);
        if (pg_str_ieq(headers[i].key, PG_STR("content-type")))
            hc->json_not_stream =
                v.n >= 16 && pg_str_ieq(pg_str(v.p, 16),
                                        PG_STR("application/json"));
    }
    hc->nrelay = 0;
    hc->retry_after_ms = 0;
    pg_buf_reset(&hc->relay_text);
    size_t off[HP_MAX_RELAY][4];
    for (size_t i = 0; i < n && hc->nrelay < HP_MAX_RELAY; i++) {
        if (!is_relayed_header(headers[i].key))
            continue;
        uint64_t ra = parse_retry_after(headers[i].key, headers[i].value);
        if (ra > 0 && (hc->retry_after_ms == 0 || ra < hc->retry_after_ms))
            hc->retry_after_ms = ra;
        size_t *o = off[hc->nrelay];
        o[0] = hc->relay_text.n;
        o[1] = headers[i].key.n;
        o[2] = o[0] + o[1];
        o[3] = headers[i].value.n;
        if (pg_buf_append_str(&hc->relay_text, headers[i].key) != PG_OK ||
            pg_buf_append_str(&hc->relay_text, headers[i].value) != PG_OK)
            break;
        hc->nrelay++;
    }
    for (size_t i = 0; i < hc->nrelay; i++) {
        hc->relay[i].key = (pg_str_t){hc->relay_text.p + off[i][0], off[i][1]};
        hc->relay[i].value = (pg_str_t){hc->relay_text.p + off[i][2],
                                        off[i][3]};
    }
    return PG_OK;
}

static int on_data(void *ud, pg_str_t bytes)
{
    hp_call_t *hc = ud;
    if (hc->call == NULL)
        return PG_ECANCELED;
    if (hc->json_not_stream && hc->resp.n == 0) {
        /* Some OpenAI-compatible servers label their event stream
         * application/json: the first byte that is not white space tells
         * ('{' or '[' is a JSON body; "data:", "event:", ':' a stream). */
        size_t i = 0;
        while (i < bytes.n && (bytes.p[i] == ' ' || bytes.p[i] == '\t' ||
                               bytes.p[i] == '\r' || bytes.p[i] == '\n'))
            i++;
        if (i == bytes.n)
            return PG_OK; /* nothing to tell by yet; insignificant either way */
        if (bytes.p[i] != '{' && bytes.p[i] != '[')
            hc->json_not_stream = false;
    }
    if (!hc->ok_status || !hc->stream || hc->json_not_stream) {
        int rc = pg_buf_append_str(&hc->resp, bytes);
        if (rc == PG_ETOOBIG && (!hc->ok_status || hc->json_not_stream))
            return PG_OK; /* keep the start of an error body, drop the rest */
        return rc;
    }
    int rc = pg_sse_parser_feed(&hc->sse, bytes, on_sse_event, hc);
    if (rc != PG_OK)
        return rc == PG_ECANCELED ? PG_ECANCELED : PG_EPARSE;
    if (hc->paused) {
        hc->paused = false;
        return PG_PENDING;
    }
    return PG_OK;
}

static void start_attempt(hp_call_t *hc);

static void on_retry_timer(uv_timer_t *t)
{
    hp_call_t *hc = pg_container_of(t, hp_call_t, retry_timer);
    if (hc->call != NULL)
        start_attempt(hc);
}

/* Schedules another attempt when retries are left and the wait is short;
 * returns false when the caller should fail instead. */
static bool schedule_retry(hp_call_t *hc)
{
    if (hc->emitted || hc->attempt >= hc->inst->max_retries)
        return false;
    uint64_t wait;
    if (hc->retry_after_ms > 0) {
        if (hc->retry_after_ms > HP_RETRY_AFTER_MAX_MS)
            return false;
        wait = hc->retry_after_ms;
    } else {
        uint64_t cap = HP_BACKOFF_BASE_MS << (hc->attempt < 6 ? hc->attempt : 6);
        if (cap > HP_BACKOFF_MAX_MS)
            cap = HP_BACKOFF_MAX_MS;
        /* Full jitter between half the cap and the cap, so clients that
         * failed together do not come back together. */
        wait = cap / 2 + pg_random_u64() % (cap / 2 + 1);
    }
    hc->attempt++;
    uv_timer_start(&hc->retry_timer, on_retry_timer, wait, 0);
    return true;
}

static bool status_retryable(int status)
{
    return status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 529;
}

/* The client-facing status for an upstream error status. */
static int map_status(int status)
{
    if (status == 529)
        return 503; /* overloaded: OpenAI clients know 503 + Retry-After */
    if (status >= 400 && status < 500)
        return status;
    if (status == 500 || status == 502 || status == 503 || status == 504)
        return status;
    return 502;
}

/* The type and message of the provider's error object in resp, in its
 * dialect's shape; empty slices when resp holds none. */
static void parse_error_body(hp_call_t *hc, pg_str_t *type, pg_str_t *msg)
{
    pg_arena_t *a = ((struct pg_provider_call *)hc->call)->arena;
    pg_str_t param, code;
    pg_str_t body = pg_buf_str(&hc->resp);
    *type = *msg = PG_STR_NULL;
    if (hc->inst->kind->dialect == HP_OPENAI)
        (void)pg_openai_parse_error(a, body, type, msg, &param, &code);
    else
        (void)pg_anthropic_parse_error(a, body, type, msg);
}

/* A stream request answered with a whole JSON body (json_not_stream):
 * nothing went to the client, so it gets a 502 with the upstream's error
 * message when the body is an error object. Not retried: the same
 * upstream would answer the same way. */
static void fail_not_stream(hp_call_t *hc)
{
    pg_arena_t *a = ((struct pg_provider_call *)hc->call)->arena;
    pg_str_t type, msg;
    parse_error_body(hc, &type, &msg);
    if (msg.n > 0)
        msg = pg_arena_printf(a, "The provider answered the stream request "
                                 "with an error: %.*s", (int)msg.n, msg.p);
    else
        msg = PG_STR("The provider answered the stream request with a "
                     "JSON body instead of an event stream.");
    hc_fail(hc, 502, type.n ? type : PG_STR("server_error"),
            msg.p ? msg : PG_STR("The provider sent no stream."), false);
}

static void fail_from_status(hp_call_t *hc)
{
    pg_arena_t *a = ((struct pg_provider_call *)hc->call)->arena;
    pg_str_t type, msg;
    parse_error_body(hc, &type, &msg);
    if (msg.n == 0)
        msg = pg_arena_printf(a, "The provider answered HTTP %d.", hc->status);
    if (type.n == 0)
        type = hc->status >= 500 ? PG_STR("server_error")
                                 : PG_STR("invalid_request_error");
    if (hc->status == 529 && hc->nrelay < HP_MAX_RELAY &&
        hc->retry_after_ms == 0) {
        /* Overloaded without a hint: tell the client to come back soon. */
        hc->relay[hc->nrelay].key = PG_STR("Retry-After");
        hc->relay[hc->nrelay].value = PG_STR("1");
        hc->nrelay++;
    }
    hc_fail(hc, map_status(hc->status), type, msg,
            status_retryable(hc->status));
}

/* The upstream answered 200 but its stream (or body) began with an error:
 * the same treatment as an error status. */
static void fail_early(hp_call_t *hc)
{
    int status = hc->early_status;
    hc->status = status;
    if (status_retryable(status) && schedule_retry(hc)) {
        hc->early_status = 0;
        return;
    }
    hc_fail(hc, map_status(status),
            hc->early_type.n ? hc->early_type : PG_STR("server_error"),
            hc->early_msg.n ? hc->early_msg
                            : PG_STR("The provider reported an error."),
            status_retryable(status));
}

static void finish_ok(hp_call_t *hc)
{
    int rc;
    if (hc->call->raw) {
        /* Passthrough: a stream must have ended cleanly; a whole body goes
         * to the client as the upstream sent it. */
        rc = hc->stream ? pg_sse_parser_finish(&hc->sse, on_sse_event, hc)
                        : deliver_raw(hc, PG_STR_NULL, pg_buf_str(&hc->resp));
        if (rc == PG_OK && hc->stream && hc->emitted)
            rc = deliver_raw(hc, PG_STR_NULL, PG_STR_NULL);
        if (hc->call == NULL)
            return;
        if (hc->early_status != 0) {
            fail_early(hc);
            return;
        }
        if (rc == PG_OK) {
            hc_succeed(hc);
            return;
        }
        hc_fail(hc, 502, PG_STR("server_error"),
                PG_STR("The provider's stream was cut off."), false);
        return;
    }
    if (hc->stream) {
        rc = pg_sse_parser_finish(&hc->sse, on_sse_event, hc);
        if (rc == PG_OK) {
            if (hc->inst->kind->dialect == HP_OPENAI)
                rc = pg_openai_stream_dec_finish(hc->oai, sink, hc,
                                                 &hc->fail_why);
            else
                rc = pg_anthropic_stream_dec_finish(hc->ant, &hc->fail_why);
        }
    } else if (hc->inst->kind->dialect == HP_OPENAI) {
        rc = pg_openai_chat_decode_response(
            ((struct pg_provider_call *)hc->call)->arena, pg_buf_str(&hc->resp),
            sink, hc, &hc->fail_why);
    } else {
        rc = pg_anthropic_decode_response(
            ((struct pg_provider_call *)hc->call)->arena, pg_buf_str(&hc->resp),
            sink, hc, &hc->fail_why);
    }
    if (hc->call == NULL)
        return;
    if (hc->early_status != 0) {
        fail_early(hc);
        return;
    }
    /* PG_EUPSTREAM: the stream ended with an error event that already
     * went to the client; the call itself is over. */
    if (rc == PG_OK || rc == PG_EUPSTREAM) {
        hc_succeed(hc);
        return;
    }
    pg_str_t why = hc->fail_why ? pg_str_c(hc->fail_why)
                                : pg_str_c(pg_strerror(rc));
    pg_arena_t *a = ((struct pg_provider_call *)hc->call)->arena;
    pg_str_t type = PG_STR_NULL, umsg = PG_STR_NULL;
    if (!hc->stream) /* an error object under a 200: keep its message */
        parse_error_body(hc, &type, &umsg);
    pg_str_t msg = pg_arena_printf(a, "The provider sent a malformed "
                                      "response: %.*s", (int)why.n, why.p);
    if (umsg.n > 0)
        msg = pg_arena_printf(a, "The provider sent an error under HTTP %d: "
                                 "%.*s", hc->status, (int)umsg.n, umsg.p);
    hc_fail(hc, 502, type.n ? type : PG_STR("server_error"), msg, false);
}

static void on_done(void *ud, pg_upstream_result_t result, const char *m)
{
    hp_call_t *hc = ud;
    hc->xfer = NULL;
    if (hc->call == NULL)
        return;
    pg_arena_t *a = ((struct pg_provider_call *)hc->call)->arena;
    switch (result) {
    case PG_UPSTREAM_OK:
        if (hc->json_not_stream) {
            fail_not_stream(hc);
        } else if (hc->ok_status) {
            finish_ok(hc);
        } else if (!(status_retryable(hc->status) && schedule_retry(hc))) {
            fail_from_status(hc);
        }
        return;
    case PG_UPSTREAM_CONNECT_FAILED:
    case PG_UPSTREAM_CONNECT_TIMEOUT:
    case PG_UPSTREAM_FIRST_BYTE_TIMEOUT:
        hc->retry_after_ms = 0;
        if (schedule_retry(hc))
            return;
        hc_fail(hc, result == PG_UPSTREAM_CONNECT_FAILED ? 502 : 504,
                PG_STR("server_error"),
                pg_arena_printf(a, "The provider could not be reached: %s.",
                                m ? m : pg_upstream_result_name(result)),
                true);
        return;
    case PG_UPSTREAM_TOO_BIG:
        hc_fail(hc, 502, PG_STR("server_error"),
                pg_arena_printf(a, "The provider's answer is larger than "
                                   "max_response_bytes (%llu bytes).",
                                (unsigned long long)hc->inst->max_body),
                false);
        return;
    case PG_UPSTREAM_IDLE_TIMEOUT:
    case PG_UPSTREAM_TOTAL_TIMEOUT:
        hc_fail(hc, 504, PG_STR("server_error"),
                pg_arena_printf(a, "The provider timed out: %s.",
                                m ? m : pg_upstream_result_name(result)),
                false);
        return;
    case PG_UPSTREAM_ABORTED:
        if (hc->early_status != 0) {
            fail_early(hc);
            return;
        }
        if (hc->fail_why != NULL) {
            hc_fail(hc, 502, PG_STR("server_error"),
                    pg_arena_printf(a, "The provider sent a malformed "
                                       "stream: %s", hc->fail_why),
                    false);
            return;
        }
        /* Aborted by us for another reason (out of memory, client gone). */
        hc_fail(hc, 502, PG_STR("server_error"),
                PG_STR("The provider's answer could not be processed."), false);
        return;
    default:
        hc_fail(hc, 502, PG_STR("server_error"),
                pg_arena_printf(a, "The provider's answer broke off: %s.",
                                m ? m : pg_upstream_result_name(result)),
                false);
        return;
    }
}

/* After one upstream read: passthrough writes what that read produced in
 * one go (the pause for a slow client is decided per payload, in
 * on_data, where the transfer can still be paused). */
static void on_flush(void *ud)
{
    hp_call_t *hc = ud;
    if (hc->call == NULL || !hc->call->raw || !hc->emitted)
        return;
    bool was_paused = hc->paused;
    if (deliver_raw(hc, PG_STR_NULL, PG_STR_NULL) < 0 && hc->call != NULL)
        return; /* the client is gone: cancel follows from the frontdoor */
    hc->paused = was_paused;
}

static const pg_upstream_cbs_t upstream_cbs = {
    .on_head = on_head,
    .on_data = on_data,
    .on_done = on_done,
    .on_flush = on_flush,
};

/* The Anthropic headers a client may choose (call->client_headers): its
 * anthropic-version replaces the configured one, anthropic-beta is added.
 * Values with line breaks are dropped. Returns the new count. */
static size_t add_client_headers(const struct pg_provider_call *c,
                                 pg_kv_t *headers, size_t n)
{
    size_t added = 0;
    for (size_t i = 0; i < c->nclient_headers; i++) {
        pg_kv_t h = c->client_headers[i];
        if (h.value.n == 0 || !header_value_ok(h.value))
            continue;
        if (pg_str_ieq(h.key, PG_STR("anthropic-version"))) {
            for (size_t k = 0; k < n; k++) {
                if (pg_str_ieq(headers[k].key, PG_STR("anthropic-version")))
                    headers[k].value = h.value;
            }
        } else if (pg_str_ieq(h.key, PG_STR("anthropic-beta")) &&
                   added < HP_MAX_CLIENT_HEADERS) {
            headers[n++] = h;
            added++;
        }
    }
    return n;
}

static void start_attempt(hp_call_t *hc)
{
    struct pg_provider_call *c = (struct pg_provider_call *)hc->call;
    const hp_instance_t *in = hc->inst;
    pg_kv_t headers[HP_MAX_HEADERS + 1 + HP_MAX_CLIENT_HEADERS];
    size_t n = in->nheaders;
    memcpy(headers, in->headers, n * sizeof(headers[0]));
    if (in->kind->dialect == HP_ANTHROPIC)
        n = add_client_headers(c, headers, n);
    headers[n++] = (pg_kv_t){PG_STR("Accept"),
                             hc->stream ? PG_STR("text/event-stream")
                                        : PG_STR("application/json")};
    pg_upstream_opts_t o = {
        .method = "POST",
        .url = c->raw && c->raw_kind == PG_RAW_ANTHROPIC_COUNT_TOKENS
                   ? in->count_url
                   : in->url,
        .headers = headers,
        .nheaders = n,
        .body = pg_buf_str(&hc->body),
        .connect_timeout_ms = in->connect_ms,
        .first_byte_timeout_ms = in->first_byte_ms,
        .idle_timeout_ms = in->idle_ms,
        .total_timeout_ms = in->total_ms,
        .max_response_bytes = in->max_body,
        .ca_pem = {in->ca_pem, in->ca_pem_len},
        .force_curl = in->http1_curl,
    };
    pg_buf_reset(&hc->resp);
    hc->status = 0;
    hc->ok_status = false;
    if (hc->attempt > 0 && hc->stream) {
        /* A retry after an early error event: fresh parser and decoder. */
        pg_sse_parser_destroy(&hc->sse);
        pg_sse_parser_init(&hc->sse, HP_MAX_SSE_EVENT);
        if (hc->oai != NULL)
            pg_openai_stream_dec_init(hc->oai, c->arena);
        if (hc->ant != NULL)
            pg_anthropic_stream_dec_init(hc->ant, c->arena);
    }
    int rc = pg_upstream_start(c->upstream, &o, &upstream_cbs, hc, &hc->xfer);
    if (rc != PG_OK) {
        hc->xfer = NULL;
        hc_fail(hc, 502, PG_STR("server_error"),
                PG_STR("The gateway could not start the upstream request."),
                true);
    }
}

/* Fails a call from the loop (never from inside start): a zero timer. */
static void on_fail_later(uv_timer_t *t)
{
    hp_call_t *hc = pg_container_of(t, hp_call_t, retry_timer);
    hc_fail(hc, 503, PG_STR("server_error"), pg_str_c(hc->fail_why), true);
}

static int hp_start(void *self, pg_provider_call_t *call)
{
    hp_instance_t *in = self;
    struct pg_provider_call *c = (struct pg_provider_call *)call;
    if (c->upstream == NULL)
        return PG_ESTATE;
    hp_call_t *hc = pg__calloc(1, sizeof(*hc));
    if (hc == NULL)
        return PG_ENOMEM;
    hc->inst = in;
    hc->call = call;
    const pg_request_t *q = pg_provider_call_request(call);
    hc->stream = q->stream &&
                 !(c->raw && c->raw_kind == PG_RAW_ANTHROPIC_COUNT_TOKENS);
    pg_buf_init(&hc->body, HP_MAX_REQUEST);
    pg_buf_init(&hc->resp, hc->stream ? HP_MAX_ERROR_BODY : in->max_body);
    pg_buf_init(&hc->relay_text, 8192);
    pg_sse_parser_init(&hc->sse, HP_MAX_SSE_EVENT);
    uv_timer_init(c->loop, &hc->retry_timer);
    pg_provider_call_set_data(call, hc);

    if (in->missing_key[0] != '\0') {
        hc->fail_why = in->missing_key;
        uv_timer_start(&hc->retry_timer, on_fail_later, 0, 0);
        return PG_PENDING;
    }
    if (c->raw) {
        /* Passthrough: the client's bytes (model already rewritten). */
        if (!pg_http_provider_takes_raw(c->provider->vt, c->raw_kind) ||
            c->on_raw == NULL ||
            pg_buf_append_str(&hc->body, c->raw_body) != PG_OK) {
            hc_release(hc);
            pg_provider_call_set_data(call, NULL);
            return PG_EINVAL;
        }
        start_attempt(hc);
        return PG_PENDING;
    }
    const char *why = NULL;
    int rc;
    if (hc->stream && in->kind->dialect == HP_OPENAI) {
        hc->oai = pg_provider_call_alloc(call, sizeof(*hc->oai));
        if (hc->oai != NULL)
            pg_openai_stream_dec_init(hc->oai, c->arena);
    } else if (hc->stream) {
        hc->ant = pg_provider_call_alloc(call, sizeof(*hc->ant));
        if (hc->ant != NULL)
            pg_anthropic_stream_dec_init(hc->ant, c->arena);
    }
    if (hc->stream && hc->oai == NULL && hc->ant == NULL) {
        hc_release(hc);
        pg_provider_call_set_data(call, NULL);
        return PG_ENOMEM;
    }
    if (in->kind->dialect == HP_OPENAI) {
        pg_openai_req_opts_t o = {
            .stream = q->stream,
            /* Always ask for usage: the gateway logs and accounts it; the
             * frontdoor decides whether the client sees a usage chunk. */
            .include_usage = q->stream,
            .max_completion_tokens = in->max_completion_tokens,
        };
        rc = pg_openai_chat_encode_request(&hc->body, q, &o, &why);
    } else {
        pg_anthropic_req_opts_t o = {
            .stream = q->stream,
            .default_max_tokens = in->default_max_tokens,
        };
        rc = pg_anthropic_encode_request(&hc->body, q, &o, &why);
    }
    if (rc != PG_OK) {
        /* Nothing to send: answered from the loop like any failure. */
        pg_str_t msg = pg_arena_printf(
            c->arena, "This request cannot be sent to provider \"%.*s\": %s",
            (int)c->provider->pub.name.n, c->provider->pub.name.p,
            why ? why : pg_strerror(rc));
        hc->fail_why = msg.p ? msg.p : "the request cannot be encoded";
        if (rc == PG_EUNSUPPORTED) {
            uv_timer_start(&hc->retry_timer, on_fail_later, 0, 0);
            /* Not retryable on another provider of the same kind either,
             * but a different dialect might take it: let failover try. */
            return PG_PENDING;
        }
        hc_release(hc);
        pg_provider_call_set_data(call, NULL);
        return rc;
    }
    start_attempt(hc);
    return PG_PENDING;
}

static void hp_cancel(void *self, pg_provider_call_t *call)
{
    (void)self;
    hp_call_t *hc = pg_provider_call_get_data(call);
    if (hc != NULL && hc->call != NULL)
        hc_release(hc);
}

static void hp_resume(void *self, pg_provider_call_t *call)
{
    (void)self;
    hp_call_t *hc = pg_provider_call_get_data(call);
    if (hc != NULL && hc->call != NULL && hc->xfer != NULL)
        pg_upstream_resume(hc->xfer);
}

const struct pg_provider_vtable pg_openai_provider_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "openai",
    .create = create_openai,
    .destroy = hp_destroy,
    .start = hp_start,
    .cancel = hp_cancel,
    .resume = hp_resume,
};

const struct pg_provider_vtable pg_openai_compatible_provider_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "openai-compatible",
    .create = create_compatible,
    .destroy = hp_destroy,
    .start = hp_start,
    .cancel = hp_cancel,
    .resume = hp_resume,
};

const struct pg_provider_vtable pg_anthropic_provider_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "anthropic",
    .create = create_anthropic,
    .destroy = hp_destroy,
    .start = hp_start,
    .cancel = hp_cancel,
    .resume = hp_resume,
};

bool pg_http_provider_takes_raw(const struct pg_provider_vtable *vt,
                                pg_raw_kind_t kind)
{
    switch (kind) {
    case PG_RAW_OPENAI_CHAT:
        return vt == &pg_openai_provider_vtable ||
               vt == &pg_openai_compatible_provider_vtable;
    case PG_RAW_ANTHROPIC_MESSAGES:
    case PG_RAW_ANTHROPIC_COUNT_TOKENS:
        return vt == &pg_anthropic_provider_vtable;
    default:
        return false;
    }
}

bool pg_http_provider_is(const struct pg_provider_vtable *vt)
{
    return vt == &pg_openai_provider_vtable ||
           vt == &pg_openai_compatible_provider_vtable ||
           vt == &pg_anthropic_provider_vtable;
}
