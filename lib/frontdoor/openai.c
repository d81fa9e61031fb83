/* openai.c: the OpenAI frontdoor. POST /v1/chat/completions decodes the
 * client's JSON, routes the model, runs one provider call and answers as a
 * chat.completion (accumulated) or as chat.completion.chunk SSE (streamed
 * as events arrive); GET /v1/models lists what the app can reach. Other
 * paths under the app get OpenAI-shaped 404/405s.
 *
 * Per-request state (struct oai_chat) lives in the request arena; the
 * heap-backed buffers it holds are released by an arena cleanup. The call
 * is canceled when the client goes away, and the response is only ended
 * from the provider's done (or at start failure), so the arena never goes
 * away under a running call. Loop thread of the request. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/str.h"
#include "base/time.h"
#include "canon/response.h"
#include "codec/openai_chat.h"
#include "frontdoor/frontdoor.h"
#include "frontdoor/passthrough.h"
#include "frontdoor/stream_common.h"
#include "http/sse.h"
#include "provider/call.h"
#include "routing/routing.h"

/* Largest encoded chunk or non-stream body we build. */
#define OAI_MAX_OUT (64u * 1024u * 1024u)
/* "created" of /v1/models entries: a fixed time keeps the list stable. */
#define OAI_MODELS_CREATED 1735689600

#define T_INVALID PG_STR("invalid_request_error")

struct oai_chat {
    pg_fd_ctx_t *ctx;
    struct pg_provider_call call;
    pg_request_t req;          /* the client's, with the routed model */
    char id[48];               /* "chatcmpl-..." */
    int64_t created;
    bool stream;
    bool broken;               /* provider broke the event order */
    pg_canon_response_t acc;   /* non-stream */
    pg_openai_stream_enc_t enc;/* stream */
    pg_fd_stream_t out;        /* the client's stream (owned buffers) */
    /* Passthrough: the body to forward first; the client's side (its
     * parsed body and edits; zero when it was decoded up front); whether
     * the running provider takes the raw bytes. */
    pg_str_t raw_body;
    pg_fd_raw_t client;
    bool raw;
    bool answered;             /* raw non-stream: the body went out */
};

/* Passthrough (below): the raw answer path. */
static int on_raw(void *ud, pg_str_t event, pg_str_t data);

static void oai_cleanup(void *ud)
{
    struct oai_chat *st = ud;
    pg_openai_stream_enc_destroy(&st->enc);
    pg_fd_stream_destroy(&st->out);
}

static void respond_error(pg_fd_ctx_t *ctx, int status, pg_str_t msg,
                          pg_str_t type, pg_str_t param, pg_str_t code)
{
    pg_fd_set_error(ctx, msg);
    pg_openai_respond_error(ctx->req, status, msg, type, param, code);
}

/* A provider's failure before anything was sent, with its relayed
 * headers. */
static void respond_provider_error(pg_fd_ctx_t *ctx,
                                   const pg_provider_error_t *err)
{
    pg_http_header_t extra[16];
    size_t n = pg_fd_relay_headers(err->headers, err->nheaders, extra, 16);
    pg_fd_set_error(ctx, err->message);
    pg_openai_respond_error_h(ctx->req,
                              err->http_status ? err->http_status : 502,
                              err->message,
                              err->type.n ? err->type : PG_STR("server_error"),
                              err->param, PG_STR_NULL, extra, n);
}

/* ---- streaming ------------------------------------------------------------ */

static int on_chunk(void *ud, pg_str_t payload)
{
    struct oai_chat *st = ud;
    return pg_sse_append_event(&st->out.sse, PG_STR_NULL, payload);
}

/* Writes an error payload into a started stream (no [DONE] follows). */
static void stream_fail(struct oai_chat *st, pg_str_t type, pg_str_t msg)
{
    pg_event_t ev = {.kind = PG_EV_ERROR, .error_type = type, .text = msg};
    (void)pg_fd_stream_flush(&st->out); /* what was gathered before the failure goes first */
    if (pg_openai_stream_enc_feed(&st->enc, &ev, on_chunk, st) != PG_OK) {
        /* The encoder already ended: frame the error body ourselves. */
        pg_buf_t b;
        pg_buf_init(&b, OAI_MAX_OUT);
        if (pg_openai_error_json(&b, msg, type, PG_STR_NULL, PG_STR_NULL) ==
                PG_OK)
            (void)on_chunk(st, pg_buf_str(&b));
        pg_buf_free(&b);
    }
    (void)pg_fd_stream_flush(&st->out);
    pg_fd_set_error(st->ctx, msg);
}

static int stream_event(struct oai_chat *st, const pg_event_t *ev)
{
    int rc;
    if (!st->out.started) {
        if (ev->kind == PG_EV_ERROR) {
            /* Nothing sent yet: the client gets a plain error answer. */
            st->broken = true;
            respond_error(st->ctx, ev->status ? ev->status : 502, ev->text,
                          ev->error_type.n ? ev->error_type
                                           : PG_STR("server_error"),
                          PG_STR_NULL, PG_STR_NULL);
            return PG_OK;
        }
        if ((rc = pg_fd_stream_begin(&st->out)) != PG_OK)
            return rc;
    }
    if (ev->kind == PG_EV_MESSAGE_START && ev->model.n > 0) {
        /* Chunks name the model that answers, like the non-stream body. */
        pg_str_t m = pg_arena_strdup(&st->ctx->req->arena, ev->model);
        if (m.p != NULL)
            st->enc.model = m;
    }
    pg_fd_stream_rearm(&st->out);
    rc = pg_openai_stream_enc_feed(&st->enc, ev, on_chunk, st);
    if (rc == PG_EPARSE) {
        st->broken = true;
        stream_fail(st, PG_STR("server_error"),
                    PG_STR("The provider sent a malformed event stream."));
        return PG_OK;
    }
    if (rc != PG_OK) {
        st->broken = true;
        stream_fail(st, PG_STR("server_error"), pg_str_c(pg_strerror(rc)));
        return PG_OK;
    }
    /* The events of one upstream read go to the client in one write. */
    return pg_fd_stream_push(&st->out);
}

static void stream_done(struct oai_chat *st, const pg_provider_error_t *err)
{
    if (!st->out.started) {
        if (st->broken)
            return; /* already answered with an error */
        pg_fd_note_upstream_wait(st->ctx, &st->out.waiting);
        if (err != NULL) {
            respond_provider_error(st->ctx, err);
            return;
        }
        respond_error(st->ctx, 502,
                      PG_STR("The provider ended without an answer."),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    if (err != NULL && !st->broken) {
        stream_fail(st, err->type.n ? err->type : PG_STR("server_error"),
                    err->message);
    } else if (st->raw || st->broken) {
        /* Passthrough relayed the upstream's own end ([DONE]). */
    } else if (st->enc.state != PG_OAI_STREAM_DONE &&
               st->enc.state != PG_OAI_STREAM_FAILED) {
        stream_fail(st, PG_STR("server_error"),
                    PG_STR("The provider ended the stream early."));
    } else if (st->enc.state == PG_OAI_STREAM_DONE) {
        /* After what waits for the turn's end. */
        (void)pg_fd_stream_flush(&st->out);
        (void)pg_http_stream_write(st->ctx->req, PG_STR("data: [DONE]\n\n"));
    }
    pg_fd_stream_end(&st->out);
}

/* ---- non-stream ------------------------------------------------------------ */

static void whole_done(struct oai_chat *st, const pg_provider_error_t *err)
{
    pg_fd_ctx_t *ctx = st->ctx;
    pg_canon_response_t *acc = &st->acc;
    pg_fd_note_upstream_wait(st->ctx, &st->out.waiting);
    if (st->raw && st->answered)
        return; /* passthrough relayed the body */
    if (err != NULL) {
        respond_provider_error(ctx, err);
        return;
    }
    if (st->raw) {
        respond_error(ctx, 502, PG_STR("The provider ended without an answer."),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    if (acc->failed) {
        respond_error(ctx, acc->error_status ? acc->error_status : 502,
                      acc->error_message,
                      acc->error_type.n ? acc->error_type
                                        : PG_STR("server_error"),
                      PG_STR_NULL, PG_STR_NULL);
        return;
    }
    if (st->broken || pg_canon_response_finish(acc) != PG_OK) {
        respond_error(ctx, 502,
                      PG_STR("The provider sent a malformed response."),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    pg_buf_t b;
    pg_buf_init(&b, OAI_MAX_OUT);
    pg_str_t model = acc->model.n ? acc->model : st->req.model;
    pg_str_t body = PG_STR_NULL;
    if (pg_openai_chat_encode(&b, acc, pg_str_c(st->id), st->created,
                              model) == PG_OK)
        body = pg_arena_strdup(&ctx->req->arena, pg_buf_str(&b));
    pg_buf_free(&b);
    if (body.p == NULL) {
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    pg_http_header_t extra[16];
    size_t nextra = pg_fd_relay_headers(st->call.relay, st->call.nrelay, extra, 16);
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), extra,
                          nextra, body);
}

/* ---- the call ----------------------------------------------------------------- */

static int on_event(void *ud, const pg_event_t *ev)
{
    struct oai_chat *st = ud;
    pg_fd_note_usage(st->ctx, ev);
    if (st->broken)
        return PG_OK; /* already answered; let the provider finish */
    if (st->stream)
        return stream_event(st, ev); /* PG_PENDING: the client is slow */
    int rc = pg_canon_response_add(&st->acc, ev);
    if (rc == PG_EPARSE)
        st->broken = true;
    return rc == PG_ENOMEM ? PG_ECANCELED : PG_OK;
}

static void on_done(void *ud, const pg_provider_error_t *err)
{
    struct oai_chat *st = ud;
    st->ctx->upstream_end_ns = pg_now_ns();
    if (st->stream)
        stream_done(st, err);
    else
        whole_done(st, err);
}

/* Applies default_model, routes, and checks what the mock-era gateway
 * cannot do. Answers and returns false on failure. */
static bool chat_route(pg_fd_ctx_t *ctx, pg_request_t *q, pg_route_t *rt)
{
    if (q->model.n == 0 && ctx->app != NULL)
        q->model = ctx->app->default_model;
    if (q->model.n == 0) {
        respond_error(ctx, 400, PG_STR("you must provide a model parameter"),
                      T_INVALID, PG_STR("model"), PG_STR_NULL);
        return false;
    }
    ctx->model = q->model;
    if (pg_route_resolve(ctx->cfg, ctx->app, q->model, rt) != PG_OK) {
        pg_str_t msg = pg_arena_printf(
            &ctx->req->arena,
            "The model `%.*s` does not exist or you do not have access to "
            "it.", (int)q->model.n, q->model.p);
        respond_error(ctx, 404, msg.p ? msg : PG_STR("model not found"),
                      T_INVALID, PG_STR_NULL, PG_STR("model_not_found"));
        return false;
    }
    if ((q->set & PG_SET_N) && q->n > 1) {
        respond_error(ctx, 400,
                      PG_STR("n > 1 is not supported by this gateway: ask "
                             "for one choice per request."),
                      T_INVALID, PG_STR("n"), PG_STR("unsupported_value"));
        return false;
    }
    return true;
}

/* Parses the body (a tree in the request arena). Answers and returns NULL
 * on failure. */
static cJSON *chat_parse(pg_fd_ctx_t *ctx)
{
    pg_http_req_t *req = ctx->req;
    size_t off = 0;
    cJSON *root = req->body.n ? pg_json_parse_arena(&req->arena, req->body, &off)
                               : NULL;
    if (root == NULL) {
        pg_str_t msg = pg_arena_printf(
            &req->arena,
            "We could not parse the JSON body of your request: %s at byte "
            "%zu. The API expects a JSON payload.",
            req->body.n ? "invalid JSON" : "empty body", off);
        respond_error(ctx, 400, msg.p ? msg : PG_STR("invalid JSON body"),
                      T_INVALID, PG_STR_NULL, PG_STR_NULL);
    }
    return root;
}

/* Decodes the parsed body into q. Answers and returns false on failure. */
static bool chat_decode(pg_fd_ctx_t *ctx, const cJSON *root, pg_request_t *q)
{
    pg_http_req_t *req = ctx->req;
    pg_openai_decode_err_t err;
    /* The tree lives in the request arena: nothing to delete. */
    int rc = pg_openai_chat_decode(&req->arena, root, q, &err);
    if (rc == PG_OK)
        return true;
    if (rc == PG_EPARSE)
        respond_error(ctx, err.status, err.message, T_INVALID, err.param,
                      err.code);
    else
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
    return false;
}

/* A provider of the failover chain that needs translation while the
 * request went passthrough so far: the client's body is decoded now (as
 * the translation path would have done up front). A body it cannot take
 * skips that provider. */
static int decode_late(void *ud)
{
    struct oai_chat *st = ud;
    pg_request_t q;
    pg_openai_decode_err_t err;
    int rc = pg_openai_chat_decode(&st->ctx->req->arena, st->client.root, &q,
                                   &err);
    if (rc != PG_OK)
        return rc;
    if ((q.set & PG_SET_N) && q.n > 1)
        return PG_EUNSUPPORTED;
    st->req = q;
    return PG_OK;
}

/* Each provider of the failover chain that starts: the log names the one
 * that answered and the model it was sent; it takes the client's bytes or
 * a translation, with that model either way. */
static int on_attempt(void *ud, const pg_cfg_provider_t *p)
{
    struct oai_chat *st = ud;
    st->raw = st->call.raw;
    /* A stream names this model until the answer names its own. */
    st->enc.model = st->call.model;
    return pg_fd_attempt(st->ctx, &st->client, &st->call, p, decode_late, st,
                         &st->req);
}

static void chat_start(pg_fd_ctx_t *ctx, struct oai_chat *st,
                       const pg_route_t *rt)
{
    const pg_cfg_provider_t *pv = &ctx->cfg->providers[rt->provider];
    st->ctx = ctx;
    st->req.model = rt->model;
    st->stream = st->req.stream;
    st->created = pg_unix_ms() / 1000;
    memcpy(st->id, "chatcmpl-", 9);
    pg_random_alnum(st->id + 9, 29);
    ctx->served_model = rt->model;
    ctx->provider = pv->pub.name;
    ctx->stream = st->stream;
    pg_canon_response_init(&st->acc, &ctx->req->arena);
    pg_openai_stream_enc_init(&st->enc, &ctx->req->arena, pg_str_c(st->id),
                              st->created, rt->model, st->req.include_usage,
                              OAI_MAX_OUT);
    pg_fd_stream_init(&st->out, ctx, &st->call, PG_STR(": ping\n\n"),
                      OAI_MAX_OUT);
    if (pg_arena_on_free(&ctx->req->arena, oai_cleanup, st) != PG_OK) {
        oai_cleanup(st);
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    const pg_cfg_hop_t *chain = NULL;
    size_t nchain = 0;
    if (pg_route_chain(ctx->cfg, rt, ctx->model, &ctx->req->arena, &chain,
                       &nchain) != PG_OK) {
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    st->call = (struct pg_provider_call){
        .raw_kind = st->raw_body.p ? PG_RAW_OPENAI_CHAT : PG_RAW_NONE,
        .raw_body = st->raw_body,
        .on_raw = on_raw,
        .request = &st->req,
        .loop = ctx->loop,
        .arena = &ctx->req->arena,
        .provider = pv,
        .model = rt->model,
        .upstream = ctx->upstream,
        .cfg = ctx->cfg,
        .chain = chain,
        .nchain = nchain,
        .on_attempt = on_attempt,
        .on_event = on_event,
        .on_done = on_done,
        .ud = st,
    };
    ctx->upstream_start_ns = pg_now_ns();
    st->out.waiting = true;
    int rc = pg_call_start(&st->call);
    if (rc != PG_PENDING) {
        ctx->upstream_end_ns = pg_now_ns();
        pg_fd_note_upstream_wait(st->ctx, &st->out.waiting);
        pg_str_t msg = pg_arena_printf(&ctx->req->arena,
                                       "The provider %.*s could not start "
                                       "the request: %s.",
                                       (int)pv->pub.name.n, pv->pub.name.p,
                                       pg_strerror(rc));
        respond_error(ctx, 502, msg.p ? msg : PG_STR("provider error"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    pg_fd_stream_watch_abort(&st->out);
}

/* ---- passthrough ------------------------------------------------------------- */

/* The usage object and id of a chunk or body, for the access log. */
static void note_raw_usage(pg_fd_ctx_t *ctx, const cJSON *root)
{
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(root, "usage");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(in))
        ctx->input_tokens = (int64_t)in->valuedouble;
    if (cJSON_IsNumber(out))
        ctx->output_tokens = (int64_t)out->valuedouble;
    ctx->response_id = pg_json_get_str(root, "id");
}

/* Whether a chunk holds a usage object ("usage": {...}; servers such as
 * vLLM send "usage": null on every chunk). A memchr walk over the rare
 * 'u' bytes: this runs on every relayed event. */
static bool has_usage_object(pg_str_t p)
{
    const char *s = p.p, *end = p.p + p.n;
    while (s != NULL && s < end &&
           (s = memchr(s, 'u', (size_t)(end - s))) != NULL) {
        if (s > p.p && s[-1] == '"' && end - s > 6 &&
            memcmp(s, "usage\"", 6) == 0) {
            const char *v = s + 6;
            while (v < end && (*v == ' ' || *v == '\t' || *v == '\n' ||
                               *v == '\r' || *v == ':'))
                v++;
            if (v < end && *v == '{')
                return true;
        }
        s++;
    }
    return false;
}

/* One payload of a passthrough stream. The bytes go to the client as the
 * upstream sent them; only the usage chunk the gateway asked for on its
 * own (to log usage) is held back when the client did not ask for it. */
static int raw_stream_payload(struct oai_chat *st, pg_str_t event,
                              pg_str_t payload)
{
    pg_fd_ctx_t *ctx = st->ctx;
    /* Only the last chunks carry usage: look before parsing anything. */
    if (payload.p != NULL && has_usage_object(payload)) {
        cJSON *j = pg_json_parse_arena(&ctx->req->arena, payload, NULL);
        if (j != NULL) {
            note_raw_usage(ctx, j);
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(j, "choices");
            if (!st->req.include_usage && cJSON_IsArray(ch) &&
                cJSON_GetArraySize(ch) == 0)
                return PG_OK;
        }
    }
    return pg_fd_raw_stream_event(&st->out, event, payload);
}

static int on_raw(void *ud, pg_str_t event, pg_str_t data)
{
    struct oai_chat *st = ud;
    pg_fd_ctx_t *ctx = st->ctx;
    if (st->stream)
        return raw_stream_payload(st, event, data);
    /* A whole body: relayed as it is, after a look at its usage. */
    pg_str_t body;
    cJSON *j = pg_fd_raw_whole(&st->out, data, &body);
    if (body.p == NULL)
        return PG_ENOMEM;
    st->answered = true;
    if (j == NULL || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "choices"))) {
        /* A 200 that is not a chat.completion (malformed, or an error
         * object): the client gets a clean error, not the upstream's lie. */
        respond_error(ctx, 502, pg_fd_raw_lie_message(&st->out, j),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return PG_OK;
    }
    note_raw_usage(ctx, j);
    return pg_fd_raw_respond(&st->out, body);
}

/* A passthrough stream whose client did not ask for usage: the edit that
 * asks upstream for it anyway (the log wants the tokens; raw_stream_payload
 * holds the usage chunk back from the client). stream_options absent or
 * null: set to {"include_usage":true}; an object: its include_usage (absent,
 * null or false) set to true. Anything else (a stream_options or
 * include_usage of another type, or a key the byte scan cannot find) is
 * PG_EINVAL: the decode path answers with its precise 400. */
static int usage_edit(pg_fd_ctx_t *ctx, cJSON *root, pg_fd_edit_t *out)
{
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    pg_str_t body = ctx->req->body;
    if (so == NULL || cJSON_IsNull(so))
        return pg_fd_raw_member_edit(ctx, 0, body.n, root, "stream_options",
                                     PG_STR("{\"include_usage\":true}"),
                                     out);
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
    size_t a = 0, z = 0;
    if (!cJSON_IsObject(so) || (iu != NULL && !cJSON_IsNull(iu) &&
                                !cJSON_IsFalse(iu)) ||
        pg_json_member_span(body, "stream_options", &a, &z) != PG_OK)
        return PG_EINVAL;
    return pg_fd_raw_member_edit(ctx, a, z, so, "include_usage",
                                 PG_STR("true"), out);
}

/* Passthrough: an OpenAI request routed to an OpenAI-type provider goes
 * out as the client's bytes (only the model rewritten, and usage asked
 * for on a stream), and the answer comes back byte for byte. Returns
 * false when the request must take the decode path (which also produces
 * the precise 400s): not routed to such a provider, or a body the
 * splices cannot take. */
static bool try_passthrough(pg_fd_ctx_t *ctx, struct oai_chat *st,
                            cJSON *root)
{
    pg_str_t model;
    pg_route_t rt;
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "messages")) ||
        !pg_fd_raw_route(ctx, root, PG_RAW_OPENAI_CHAT, &model, &rt))
        return false;
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(root, "stream");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    st->req.stream = cJSON_IsTrue(js);
    st->req.include_usage =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    st->client.root = root;
    if ((st->req.stream && !st->req.include_usage &&
         usage_edit(ctx, root, &st->client.edits[st->client.nedits++]) !=
             PG_OK) ||
        pg_fd_raw_body(ctx, &st->client, rt.model, &st->raw_body) != PG_OK) {
        st->client = (pg_fd_raw_t){0}; /* the decode path takes it */
        return false;
    }
    st->req.model = model;
    ctx->model = model;
    chat_start(ctx, st, &rt);
    return true;
}

static void chat_completions(pg_fd_ctx_t *ctx)
{
    struct oai_chat *st = pg_arena_calloc(&ctx->req->arena, 1, sizeof(*st));
    pg_route_t rt;
    if (st == NULL) {
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    cJSON *root = chat_parse(ctx);
    if (root == NULL || try_passthrough(ctx, st, root))
        return;
    if (!chat_decode(ctx, root, &st->req) || !chat_route(ctx, &st->req, &rt))
        return;
    chat_start(ctx, st, &rt);
}

/* ---- models ---------------------------------------------------------------- */

static void list_models(pg_fd_ctx_t *ctx)
{
    const pg_cfg_model_t *models = NULL;
    size_t n = 0;
    pg_buf_t b;
    int rc;
    pg_buf_init(&b, OAI_MAX_OUT);
    rc = pg_route_models(ctx->cfg, ctx->app, &ctx->req->arena, &models, &n);
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && rc == PG_OK; i++) {
        pg_str_t owner = models[i].owned_by.n ? models[i].owned_by
                                              : PG_STR("polyglot");
        if ((i > 0 && (rc = pg_buf_append_char(&b, ','))) ||
            (rc = pg_buf_append_char(&b, '{')) ||
            (rc = pg_json_append_key(&b, false, "id")) ||
            (rc = pg_json_append_string(&b, models[i].id)) ||
            (rc = pg_buf_append_cstr(&b, ",\"object\":\"model\"")) ||
            (rc = pg_json_append_key(&b, true, "created")) ||
            (rc = pg_json_append_i64(&b, OAI_MODELS_CREATED)) ||
            (rc = pg_json_append_key(&b, true, "owned_by")) ||
            (rc = pg_json_append_string(&b, owner)) ||
            (rc = pg_buf_append_char(&b, '}')))
            break;
    }
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(&b, "]}");
    pg_str_t body = rc == PG_OK ? pg_arena_strdup(&ctx->req->arena,
                                                  pg_buf_str(&b))
                                : PG_STR_NULL;
    pg_buf_free(&b);
    if (body.p == NULL) {
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), NULL, 0,
                          body);
}

/* ---- endpoint table ------------------------------------------------------------ */

static void method_not_allowed(pg_fd_ctx_t *ctx, const char *allow)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t msg = pg_arena_printf(
        &req->arena, "Method %.*s is not allowed for %.*s: use %s.",
        (int)req->method.n, req->method.p, (int)req->path.n, req->path.p,
        allow);
    if (msg.p == NULL)
        msg = PG_STR("method not allowed");
    pg_fd_set_error(ctx, msg);
    pg_str_t body = pg_openai_error_body(&req->arena, msg, T_INVALID,
                                         PG_STR_NULL,
                                         PG_STR("method_not_allowed"));
    pg_http_header_t extra[] = {{PG_STR("Allow"), pg_str_c(allow)}};
    (void)pg_http_respond(req, 405, PG_STR("application/json"), extra, 1,
                          body);
}

void pg_frontdoor_openai_handle(pg_fd_ctx_t *ctx)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t ep = ctx->endpoint;
    /* A trailing slash names the same endpoint, as it does for OpenAI. */
    if (ep.n > 1 && ep.p[ep.n - 1] == '/')
        ep.n--;
    if (pg_str_eqc(ep, "/v1/chat/completions")) {
        if (pg_str_eqc(req->method, "POST"))
            chat_completions(ctx);
        else
            method_not_allowed(ctx, "POST");
        return;
    }
    if (pg_str_eqc(ep, "/v1/models")) {
        if (pg_str_eqc(req->method, "GET"))
            list_models(ctx);
        else
            method_not_allowed(ctx, "GET");
        return;
    }
    pg_str_t msg = pg_arena_printf(&req->arena, "Unknown request URL: %.*s %.*s",
                                   (int)req->method.n, req->method.p,
                                   (int)req->path.n, req->path.p);
    respond_error(ctx, 404, msg.p ? msg : PG_STR("Unknown request URL"),
                  T_INVALID, PG_STR_NULL, PG_STR("unknown_url"));
}
