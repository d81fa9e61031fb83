/* anthropic.c: the Anthropic frontdoor. POST /v1/messages decodes the
 * client's Messages JSON, routes the model, runs one provider call through
 * the failover chain and answers as a Messages object (accumulated) or as
 * the Messages SSE event sequence (streamed as events arrive); POST
 * /v1/messages/count_tokens answers a local estimate; GET /v1/models lists
 * what the app can reach in Anthropic's list shape. Every error is
 * {"type":"error","error":{"type","message"}}.
 *
 * Any provider type serves an Anthropic client: the request goes through
 * the canonical model (no same-dialect passthrough in this version). The
 * client's anthropic-version / anthropic-beta reach anthropic-type
 * providers through call.client_headers.
 *
 * Per-request state (struct ant_msg) lives in the request arena; the
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
#include "codec/anthropic_messages.h"
#include "frontdoor/frontdoor.h"
#include "frontdoor/stream_common.h"
#include "http/sse.h"
#include "provider/call.h"
#include "routing/routing.h"

/* Largest encoded event or non-stream body we build. */
#define ANT_MAX_OUT (64u * 1024u * 1024u)
/* "created_at" of /v1/models entries: a fixed time keeps the list stable. */
#define ANT_MODELS_CREATED "2025-01-01T00:00:00Z"
/* Anthropic's own keepalive event, sent while the upstream is silent. */
#define ANT_PING "event: ping\ndata: {\"type\": \"ping\"}\n\n"

#define T_INVALID PG_STR("invalid_request_error")
#define T_API PG_STR("api_error")

struct ant_msg {
    pg_fd_ctx_t *ctx;
    struct pg_provider_call call;
    pg_request_t req;          /* the client's, with the routed model */
    char id[32];               /* "msg_..." */
    bool stream;
    bool started;              /* stream head sent */
    bool broken;               /* answered already, or the order broke */
    pg_canon_response_t acc;   /* non-stream */
    pg_anthropic_stream_enc_t enc; /* stream */
    pg_buf_t sse;              /* owned: framed SSE events not yet written */
    pg_fd_keepalive_t *ping;    /* owned: keepalive while upstream is silent */
    bool waiting;              /* upstream time is still being counted */
    pg_kv_t fwd[2];            /* anthropic-version / anthropic-beta */
    size_t nfwd;
};

static void ant_cleanup(void *ud)
{
    struct ant_msg *st = ud;
    pg_anthropic_stream_enc_destroy(&st->enc);
    pg_buf_free(&st->sse);
    pg_fd_keepalive_close(&st->ping);
}

static void respond_error(pg_fd_ctx_t *ctx, int status, pg_str_t type,
                          pg_str_t msg)
{
    pg_fd_set_error(ctx, msg);
    pg_anthropic_respond_error(ctx->req, status, type, msg, NULL, 0);
}

/* Is t one of the error types Anthropic clients know? Other dialects'
 * types (OpenAI's "server_error", "insufficient_quota"...) are replaced by
 * the one the status implies. */
static bool known_type(pg_str_t t)
{
    static const char *const known[] = {
        "invalid_request_error", "authentication_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error",
        "api_error", "overloaded_error", "timeout_error", "billing_error",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (pg_str_eqc(t, known[i]))
            return true;
    }
    return false;
}

/* The status an Anthropic client sees. The provider layer turns an
 * upstream 529 into 503 for OpenAI clients; an Anthropic client knows 529
 * (overloaded_error) and gets it back. */
static int client_status(int status, pg_str_t type)
{
    if (status == 0)
        return 502;
    if (status == 503 && pg_str_eqc(type, "overloaded_error"))
        return 529;
    return status;
}

static pg_str_t client_type(int status, pg_str_t type)
{
    return known_type(type) ? type : pg_anthropic_error_type(status);
}

/* A provider's failure before anything was sent, with its relayed
 * headers. */
static void respond_provider_error(pg_fd_ctx_t *ctx,
                                   const pg_provider_error_t *err)
{
    pg_http_header_t extra[16];
    size_t n = pg_fd_relay_headers(err->headers, err->nheaders, extra, 16);
    int status = client_status(err->http_status, err->type);
    pg_fd_set_error(ctx, err->message);
    pg_anthropic_respond_error(ctx->req, status,
                               client_type(status, err->type), err->message,
                               extra, n);
}

/* ---- streaming ------------------------------------------------------------ */

static int on_sse(void *ud, pg_str_t event, pg_str_t data)
{
    struct ant_msg *st = ud;
    return pg_sse_append_event(&st->sse, event, data);
}

/* Sends what is framed in st->sse. The server copies the bytes into its
 * queue, so the buffer is reused for the next event. */
static int flush_sse(struct ant_msg *st)
{
    if (st->sse.n == 0)
        return PG_OK;
    int rc = pg_http_stream_write(st->ctx->req, pg_buf_str(&st->sse));
    pg_buf_reset(&st->sse);
    /* PG_ETOOBIG: a slow client; the data is queued, and the provider is
     * asked to pause (PG_PENDING from emit) until the queue drains. */
    if (rc == PG_ETOOBIG)
        rc = PG_PENDING;
    return rc;
}

static void on_client_drained(void *ud)
{
    struct ant_msg *st = ud;
    pg_call_resume(&st->call);
}

static void ping_rearm(struct ant_msg *st)
{
    pg_fd_keepalive_arm(&st->ping, st->ctx, PG_STR(ANT_PING));
}

static int stream_begin(struct ant_msg *st)
{
    pg_http_header_t extra[17] = {
        {PG_STR("Cache-Control"), PG_STR("no-cache")},
    };
    size_t n = 1 + pg_fd_relay_headers(st->call.relay, st->call.nrelay, extra + 1,
                                 16);
    st->started = true;
    pg_fd_note_upstream_wait(st->ctx, &st->waiting);
    pg_http_req_on_drain(st->ctx->req, on_client_drained, st);
    int rc = pg_http_stream_start(st->ctx->req, 200,
                                  PG_STR("text/event-stream"), extra, n);
    if (rc == PG_OK)
        ping_rearm(st);
    return rc;
}

/* Writes an `event: error` into a started stream; nothing follows it. */
static void stream_fail(struct ant_msg *st, int status, pg_str_t type,
                        pg_str_t msg)
{
    type = client_type(status, type);
    pg_event_t ev = {.kind = PG_EV_ERROR, .status = status,
                     .error_type = type, .text = msg};
    (void)flush_sse(st); /* what was gathered before the failure goes first */
    if (pg_anthropic_stream_enc_feed(&st->enc, &ev, on_sse, st) != PG_OK) {
        /* The encoder already ended: frame the error event ourselves. */
        pg_buf_t b;
        pg_buf_init(&b, ANT_MAX_OUT);
        if (pg_anthropic_error_json(&b, type, msg) == PG_OK)
            (void)on_sse(st, PG_STR("error"), pg_buf_str(&b));
        pg_buf_free(&b);
    }
    (void)flush_sse(st);
    pg_fd_set_error(st->ctx, msg);
}

static int stream_event(struct ant_msg *st, const pg_event_t *ev)
{
    int rc;
    if (!st->started) {
        if (ev->kind == PG_EV_ERROR) {
            /* Nothing sent yet: the client gets a plain error answer. */
            int status = client_status(ev->status, ev->error_type);
            st->broken = true;
            respond_error(st->ctx, status,
                          client_type(status, ev->error_type), ev->text);
            return PG_OK;
        }
        if ((rc = stream_begin(st)) != PG_OK)
            return rc;
    }
    if (ev->kind == PG_EV_MESSAGE_START && ev->model.n > 0) {
        /* message_start names the model that answers, like the non-stream
         * body. */
        pg_str_t m = pg_arena_strdup(&st->ctx->req->arena, ev->model);
        if (m.p != NULL)
            st->enc.model = m;
    }
    ping_rearm(st);
    rc = pg_anthropic_stream_enc_feed(&st->enc, ev, on_sse, st);
    if (rc == PG_EPARSE) {
        st->broken = true;
        stream_fail(st, 502, T_API,
                    PG_STR("The provider sent a malformed event stream."));
        return PG_OK;
    }
    if (rc != PG_OK) {
        st->broken = true;
        stream_fail(st, 500, T_API, pg_str_c(pg_strerror(rc)));
        return PG_OK;
    }
    return flush_sse(st);
}

static void stream_done(struct ant_msg *st, const pg_provider_error_t *err)
{
    pg_http_req_t *req = st->ctx->req;
    if (!st->started) {
        if (st->broken)
            return; /* already answered with an error */
        pg_fd_note_upstream_wait(st->ctx, &st->waiting);
        if (err != NULL) {
            respond_provider_error(st->ctx, err);
            return;
        }
        respond_error(st->ctx, 502, T_API,
                      PG_STR("The provider ended without an answer."));
        return;
    }
    if (err != NULL && !st->broken) {
        stream_fail(st, client_status(err->http_status, err->type), err->type,
                    err->message);
    } else if (!st->broken && st->enc.state != PG_ANT_ENC_DONE &&
               st->enc.state != PG_ANT_ENC_FAILED) {
        stream_fail(st, 502, T_API,
                    PG_STR("The provider ended the stream early."));
    }
    pg_fd_keepalive_stop(st->ping);
    (void)pg_http_stream_end(req);
}

/* ---- non-stream ------------------------------------------------------------ */

static void whole_done(struct ant_msg *st, const pg_provider_error_t *err)
{
    pg_fd_ctx_t *ctx = st->ctx;
    pg_canon_response_t *acc = &st->acc;
    pg_fd_note_upstream_wait(st->ctx, &st->waiting);
    if (err != NULL) {
        respond_provider_error(ctx, err);
        return;
    }
    if (acc->failed) {
        int status = client_status(acc->error_status, acc->error_type);
        respond_error(ctx, status, client_type(status, acc->error_type),
                      acc->error_message);
        return;
    }
    if (st->broken || pg_canon_response_finish(acc) != PG_OK) {
        respond_error(ctx, 502, T_API,
                      PG_STR("The provider sent a malformed response."));
        return;
    }
    pg_buf_t b;
    pg_buf_init(&b, ANT_MAX_OUT);
    pg_str_t model = acc->model.n ? acc->model : st->req.model;
    pg_str_t body = PG_STR_NULL;
    int rc = pg_anthropic_messages_encode(&b, acc, pg_str_c(st->id), model);
    if (rc == PG_OK)
        body = pg_arena_strdup(&ctx->req->arena, pg_buf_str(&b));
    pg_buf_free(&b);
    if (rc == PG_EPARSE) {
        respond_error(ctx, 502, T_API,
                      PG_STR("The provider sent a tool call whose arguments "
                             "are not a JSON object."));
        return;
    }
    if (body.p == NULL) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    pg_http_header_t extra[16];
    size_t nextra = pg_fd_relay_headers(st->call.relay, st->call.nrelay, extra, 16);
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), extra,
                          nextra, body);
}

/* ---- the call ----------------------------------------------------------------- */

static void note_usage(pg_fd_ctx_t *ctx, const pg_event_t *ev)
{
    if (ev->usage.input_tokens)
        ctx->input_tokens = ev->usage.input_tokens;
    if (ev->usage.output_tokens)
        ctx->output_tokens = ev->usage.output_tokens;
}

static int on_event(void *ud, const pg_event_t *ev)
{
    struct ant_msg *st = ud;
    if (ev->kind == PG_EV_MESSAGE_START || ev->kind == PG_EV_USAGE)
        note_usage(st->ctx, ev);
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
    struct ant_msg *st = ud;
    st->ctx->upstream_end_ns = pg_now_ns();
    if (st->stream)
        stream_done(st, err);
    else
        whole_done(st, err);
}

static void on_abort(void *ud)
{
    struct ant_msg *st = ud;
    st->ctx->upstream_end_ns = pg_now_ns();
    pg_fd_set_error(st->ctx, PG_STR("client closed the connection"));
    pg_call_cancel(&st->call);
}

/* Each provider of the failover chain that starts: the log names the one
 * that answered. */
static void on_attempt(void *ud, const pg_cfg_provider_t *p)
{
    struct ant_msg *st = ud;
    st->ctx->provider = p->pub.name;
}

/* Parses the body (a tree in the request arena). Answers and returns NULL
 * on failure. */
static cJSON *parse_body(pg_fd_ctx_t *ctx)
{
    pg_http_req_t *req = ctx->req;
    size_t off = 0;
    cJSON *root = req->body.n ? pg_json_parse_arena(&req->arena, req->body,
                                                    &off)
                              : NULL;
    if (root == NULL || !cJSON_IsObject(root)) {
        pg_str_t msg = pg_arena_printf(
            &req->arena,
            "There was an error parsing the body: %s at byte %zu. The API "
            "expects a JSON object.",
            req->body.n == 0 ? "empty body"
                             : root == NULL ? "invalid JSON" : "not an object",
            off);
        respond_error(ctx, 400, T_INVALID,
                      msg.p ? msg : PG_STR("invalid JSON body"));
        return NULL;
    }
    return root;
}

/* Applies default_model and routes. Answers and returns false on
 * failure. */
static bool route_model(pg_fd_ctx_t *ctx, pg_str_t *model, pg_route_t *rt)
{
    if (model->n == 0 && ctx->app != NULL)
        *model = ctx->app->default_model;
    if (model->n == 0) {
        respond_error(ctx, 400, T_INVALID, PG_STR("model: Field required"));
        return false;
    }
    ctx->model = *model;
    if (pg_route_resolve(ctx->cfg, ctx->app, *model, rt) != PG_OK) {
        pg_str_t msg = pg_arena_printf(&ctx->req->arena, "model: %.*s",
                                       (int)model->n, model->p);
        respond_error(ctx, 404, PG_STR("not_found_error"),
                      msg.p ? msg : PG_STR("model not found"));
        return false;
    }
    return true;
}

/* The client's anthropic-version / anthropic-beta, for anthropic-type
 * providers. */
static void collect_forwarded(pg_fd_ctx_t *ctx, struct ant_msg *st)
{
    static const char *const names[] = {"anthropic-version",
                                        "anthropic-beta"};
    st->nfwd = 0;
    for (size_t i = 0; i < 2; i++) {
        pg_str_t v = pg_http_req_header(ctx->req, pg_str_c(names[i]));
        if (v.p != NULL && v.n > 0)
            st->fwd[st->nfwd++] = (pg_kv_t){pg_str_c(names[i]), v};
    }
}

static void msg_start(pg_fd_ctx_t *ctx, struct ant_msg *st,
                      const pg_route_t *rt)
{
    const pg_cfg_provider_t *pv = &ctx->cfg->providers[rt->provider];
    st->ctx = ctx;
    st->req.model = rt->model;
    st->stream = st->req.stream;
    memcpy(st->id, "msg_", 4);
    pg_random_alnum(st->id + 4, 24);
    st->id[28] = '\0';
    ctx->served_model = rt->model;
    ctx->provider = pv->pub.name;
    ctx->stream = st->stream;
    pg_canon_response_init(&st->acc, &ctx->req->arena);
    pg_anthropic_stream_enc_init(&st->enc, &ctx->req->arena,
                                 pg_str_c(st->id), rt->model, ANT_MAX_OUT);
    pg_buf_init(&st->sse, ANT_MAX_OUT);
    if (pg_arena_on_free(&ctx->req->arena, ant_cleanup, st) != PG_OK) {
        ant_cleanup(st);
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    const int *chain = NULL;
    size_t nchain = 0;
    if (pg_route_chain(ctx->cfg, rt->provider, &ctx->req->arena, &chain,
                       &nchain) != PG_OK) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    collect_forwarded(ctx, st);
    st->call = (struct pg_provider_call){
        .request = &st->req,
        .loop = ctx->loop,
        .arena = &ctx->req->arena,
        .provider = pv,
        .upstream = ctx->upstream,
        .cfg = ctx->cfg,
        .chain = chain,
        .nchain = nchain,
        .on_attempt = on_attempt,
        .client_headers = st->nfwd ? st->fwd : NULL,
        .nclient_headers = st->nfwd,
        .on_event = on_event,
        .on_done = on_done,
        .ud = st,
    };
    ctx->upstream_start_ns = pg_now_ns();
    st->waiting = true;
    int rc = pg_call_start(&st->call);
    if (rc != PG_PENDING) {
        ctx->upstream_end_ns = pg_now_ns();
        pg_fd_note_upstream_wait(st->ctx, &st->waiting);
        pg_str_t msg = pg_arena_printf(&ctx->req->arena,
                                       "The provider %.*s could not start "
                                       "the request: %s.",
                                       (int)pv->pub.name.n, pv->pub.name.p,
                                       pg_strerror(rc));
        respond_error(ctx, 502, T_API,
                      msg.p ? msg : PG_STR("provider error"));
        return;
    }
    pg_http_req_on_abort(ctx->req, on_abort, st);
}

/* A body without "model" gets the app's default_model as if the client
 * had sent it (the decoder requires one, as Anthropic does): a node in the
 * request arena, linked first into the arena-built tree. false: OOM. */
static bool add_default_model(pg_fd_ctx_t *ctx, cJSON *root)
{
    if (ctx->app == NULL || ctx->app->default_model.n == 0 ||
        cJSON_GetObjectItemCaseSensitive(root, "model") != NULL)
        return true;
    pg_arena_t *a = &ctx->req->arena;
    cJSON *node = pg_arena_calloc(a, 1, sizeof(*node));
    pg_str_t v = pg_arena_strdup(a, ctx->app->default_model);
    pg_str_t k = pg_arena_strdup(a, PG_STR("model"));
    if (node == NULL || v.p == NULL || k.p == NULL)
        return false;
    node->type = cJSON_String;
    node->valuestring = (char *)v.p;
    node->string = (char *)k.p;
    node->next = root->child;
    if (root->child != NULL) {
        node->prev = root->child->prev; /* cJSON: head->prev is the tail */
        root->child->prev = node;
    } else {
        node->prev = node;
    }
    root->child = node;
    return true;
}

static void messages(pg_fd_ctx_t *ctx)
{
    struct ant_msg *st = pg_arena_calloc(&ctx->req->arena, 1, sizeof(*st));
    if (st == NULL) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    cJSON *root = parse_body(ctx);
    if (root == NULL)
        return;
    if (!add_default_model(ctx, root)) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    pg_anthropic_decode_err_t err;
    /* The tree lives in the request arena: nothing to delete. */
    int rc = pg_anthropic_messages_decode(&ctx->req->arena, root, &st->req,
                                          &err);
    if (rc == PG_EPARSE) {
        respond_error(ctx, err.status ? err.status : 400,
                      err.type.n ? err.type : T_INVALID, err.message);
        return;
    }
    if (rc == PG_EUNSUPPORTED) {
        respond_error(ctx, 400, T_INVALID,
                      err.message.n ? err.message
                                    : PG_STR("This request uses a feature "
                                             "the gateway does not support."));
        return;
    }
    if (rc != PG_OK) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    pg_route_t rt;
    if (!route_model(ctx, &st->req.model, &rt))
        return;
    msg_start(ctx, st, &rt);
}

/* ---- count_tokens ------------------------------------------------------------ */

/* Keys whose string values are structure, not text the model reads. */
static bool structural_key(const char *k)
{
    static const char *const keys[] = {"type", "role", "id", "tool_use_id",
                                       "media_type", "data", "signature",
                                       "cache_control", "url"};
    if (k == NULL)
        return false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (strcmp(k, keys[i]) == 0)
            return true;
    }
    return false;
}

/* Characters of the text in a JSON value: every string except structural
 * keys' values, and the property names of tool schemas. */
static size_t text_chars(const cJSON *j, int depth)
{
    if (depth > 64)
        return 0; /* pg_json_parse_arena bounds depth; this is a backstop */
    if (cJSON_IsString(j))
        return structural_key(j->string) ? 0 : strlen(j->valuestring);
    size_t n = 0;
    if (cJSON_IsObject(j) || cJSON_IsArray(j)) {
        for (const cJSON *c = j->child; c != NULL; c = c->next) {
            if (j->string != NULL && strcmp(j->string, "properties") == 0 &&
                c->string != NULL)
                n += strlen(c->string);
            n += text_chars(c, depth + 1);
        }
    }
    return n;
}

/* A local estimate: about four characters a token, rounded up, over the
 * text of system, messages and tools. Forwarding to an anthropic-type
 * provider's count_tokens is not done in this version; the log line says
 * the count is an estimate. */
static void count_tokens(pg_fd_ctx_t *ctx)
{
    cJSON *root = parse_body(ctx);
    if (root == NULL)
        return;
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (jm != NULL && !cJSON_IsString(jm)) {
        respond_error(ctx, 400, T_INVALID,
                      PG_STR("model: Input should be a valid string"));
        return;
    }
    if (!cJSON_IsArray(msgs)) {
        respond_error(ctx, 400, T_INVALID,
                      msgs == NULL
                          ? PG_STR("messages: Field required")
                          : PG_STR("messages: Input should be a valid list"));
        return;
    }
    pg_str_t model = cJSON_IsString(jm) ? pg_json_str(jm) : PG_STR_NULL;
    pg_route_t rt;
    if (!route_model(ctx, &model, &rt))
        return;
    size_t chars = text_chars(msgs, 0) +
                   text_chars(cJSON_GetObjectItemCaseSensitive(root, "system"),
                              0) +
                   text_chars(cJSON_GetObjectItemCaseSensitive(root, "tools"),
                              0);
    int64_t tokens = (int64_t)((chars + 3) / 4);
    ctx->input_tokens = tokens;
    pg_log_field_t f[] = {
        PG_LF_S("request_id", pg_str_c(ctx->req->request_id)),
        PG_LF_S("model", model),
        PG_LF_I("input_tokens", tokens),
        PG_LF_I("estimate", 1),
    };
    pg_log_fields(ctx->log, PG_LOG_INFO, "count_tokens estimate", f,
                  sizeof(f) / sizeof(f[0]));
    pg_str_t body = pg_arena_printf(&ctx->req->arena,
                                    "{\"input_tokens\":%lld}",
                                    (long long)tokens);
    if (body.p == NULL) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), NULL, 0,
                          body);
}

/* ---- models ---------------------------------------------------------------- */

static void list_models(pg_fd_ctx_t *ctx)
{
    const pg_cfg_model_t *models = NULL;
    size_t n = 0;
    pg_buf_t b;
    int rc;
    pg_buf_init(&b, ANT_MAX_OUT);
    rc = pg_route_models(ctx->cfg, ctx->app, &ctx->req->arena, &models, &n);
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(&b, "{\"data\":[");
    for (size_t i = 0; i < n && rc == PG_OK; i++) {
        if ((i > 0 && (rc = pg_buf_append_char(&b, ','))) ||
            (rc = pg_buf_append_cstr(&b, "{\"type\":\"model\"")) ||
            (rc = pg_json_append_key(&b, true, "id")) ||
            (rc = pg_json_append_string(&b, models[i].id)) ||
            (rc = pg_json_append_key(&b, true, "display_name")) ||
            (rc = pg_json_append_string(&b, models[i].id)) ||
            (rc = pg_buf_append_cstr(&b, ",\"created_at\":\""
                                         ANT_MODELS_CREATED "\"}")))
            break;
    }
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(&b, "],\"has_more\":false,\"first_id\":");
    if (rc == PG_OK)
        rc = n ? pg_json_append_string(&b, models[0].id)
               : pg_buf_append_cstr(&b, "null");
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(&b, ",\"last_id\":");
    if (rc == PG_OK)
        rc = n ? pg_json_append_string(&b, models[n - 1].id)
               : pg_buf_append_cstr(&b, "null");
    if (rc == PG_OK)
        rc = pg_buf_append_char(&b, '}');
    pg_str_t body = rc == PG_OK ? pg_arena_strdup(&ctx->req->arena,
                                                  pg_buf_str(&b))
                                : PG_STR_NULL;
    pg_buf_free(&b);
    if (body.p == NULL) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
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
    pg_http_header_t extra[] = {{PG_STR("Allow"), pg_str_c(allow)}};
    pg_anthropic_respond_error(req, 405, T_INVALID, msg, extra, 1);
}

void pg_frontdoor_anthropic_handle(pg_fd_ctx_t *ctx)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t ep = ctx->endpoint;
    if (ep.n > 1 && ep.p[ep.n - 1] == '/')
        ep.n--;
    static const struct {
        const char *path;
        const char *method;
        void (*fn)(pg_fd_ctx_t *ctx);
    } eps[] = {
        {"/v1/messages", "POST", messages},
        {"/v1/messages/count_tokens", "POST", count_tokens},
        {"/v1/models", "GET", list_models},
    };
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        if (!pg_str_eqc(ep, eps[i].path))
            continue;
        if (pg_str_eqc(req->method, eps[i].method))
            eps[i].fn(ctx);
        else
            method_not_allowed(ctx, eps[i].method);
        return;
    }
    pg_str_t msg = pg_arena_printf(&req->arena, "Not found: %.*s %.*s",
                                   (int)req->method.n, req->method.p,
                                   (int)req->path.n, req->path.p);
    respond_error(ctx, 404, PG_STR("not_found_error"),
                  msg.p ? msg : PG_STR("Not found"));
}
