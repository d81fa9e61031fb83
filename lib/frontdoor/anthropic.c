/* anthropic.c: the Anthropic frontdoor. POST /v1/messages routes the
 * model and runs the chat call of chat_common.c (one provider call
 * through the failover chain) with the Anthropic parts: to an
 * anthropic-type provider as passthrough (the client's bytes, only the
 * model rewritten when routing changed it; the answer relayed byte for
 * byte, usage and id read on the way for the log), to any other through
 * the canonical model (decoded Messages JSON, answered as a Messages
 * object or as the Messages SSE event sequence as events arrive). A chain
 * may mix both: each provider gets what it speaks. POST
 * /v1/messages/count_tokens is forwarded to the anthropic-type providers
 * the model routes to, else answered with a local estimate; GET
 * /v1/models lists what the app can reach in Anthropic's list shape.
 * Every error is {"type":"error","error":{"type","message"}}; an
 * overloaded upstream (Anthropic 529, an OpenAI-type 503/529) is a 529
 * overloaded_error.
 *
 * The client's anthropic-version / anthropic-beta reach anthropic-type
 * providers through call.client_headers.
 *
 * Per-request state (struct ant_msg around the shared pg_fd_chat_t, and
 * struct ant_count) lives in the request arena; count_tokens' call is
 * canceled when the client goes away and answers only from its done (or
 * at start failure), as the chat call does. Loop thread of the
 * request. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/list.h"
#include "base/str.h"
#include "base/time.h"
#include "codec/anthropic_messages.h"
#include "frontdoor/chat_common.h"
#include "http/sse.h"
#include "provider/http_provider.h"

/* Largest encoded event or non-stream body we build. */
#define ANT_MAX_OUT (64u * 1024u * 1024u)
/* "created_at" of /v1/models entries: a fixed time keeps the list stable. */
#define ANT_MODELS_CREATED "2025-01-01T00:00:00Z"
/* Anthropic's own keepalive event, sent while the upstream is silent. */
#define ANT_PING "event: ping\ndata: {\"type\": \"ping\"}\n\n"

#define T_INVALID PG_STR("invalid_request_error")
#define T_API PG_STR("api_error")

struct ant_msg {
    pg_fd_chat_t base;         /* first: the call both dialects run */
    char id[32];               /* "msg_..." */
    pg_anthropic_stream_enc_t enc; /* stream */
    pg_kv_t fwd[2];            /* anthropic-version / anthropic-beta */
};

static struct ant_msg *ant_of(pg_fd_chat_t *c)
{
    return pg_container_of(c, struct ant_msg, base);
}

static void respond_error(pg_fd_ctx_t *ctx, int status, pg_str_t type,
                          pg_str_t msg)
{
    pg_fd_set_error(ctx, msg);
    pg_anthropic_respond_error(ctx->req, status, type, msg, NULL, 0);
}

/* The status an Anthropic client sees. The provider layer turns an
 * upstream 529 into 503 for OpenAI clients; an Anthropic client knows 529
 * overloaded_error and gets it for any overloaded upstream: an Anthropic
 * 529 (or overloaded_error event), an OpenAI-type 503 or 529. upstream is
 * the upstream's own status (pg_provider_call.upstream_status, 0 when
 * the failure was not an upstream answer: the gateway's own 503s, a
 * missing key, stay 503). */
static int client_status(int status, pg_str_t type, int upstream)
{
    if (status == 0)
        return 502;
    if (upstream == 503 || upstream == 529 ||
        (status == 503 && pg_str_eqc(type, "overloaded_error")))
        return 529;
    return status;
}

/* The error type for that status: overloaded_error for 529 whatever the
 * upstream called it (OpenAI's "server_error"); else the upstream's when
 * Anthropic defines it, or the one the status implies. */
static pg_str_t client_type(int status, pg_str_t type)
{
    if (status == 529)
        return PG_STR("overloaded_error");
    return pg_anthropic_client_error_type(status, type);
}

static void ant_client_error(const pg_provider_error_t *err, int upstream,
                             int *status, pg_str_t *type)
{
    *status = client_status(err->http_status, err->type, upstream);
    *type = client_type(*status, err->type);
}

static void ant_respond_error(pg_http_req_t *req, int status, pg_str_t type,
                              pg_str_t msg, pg_str_t param,
                              const pg_http_header_t *extra, size_t nextra)
{
    (void)param; /* Anthropic's errors name no field */
    pg_anthropic_respond_error(req, status, type, msg, extra, nextra);
}

/* The usage of a message (a non-stream body, message_start's message) or
 * of message_delta, for the access log. */
static void note_raw_usage(pg_fd_ctx_t *ctx, const cJSON *usage)
{
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(usage, "input_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(usage,
                                                        "output_tokens");
    if (cJSON_IsNumber(in))
        ctx->input_tokens = (int64_t)in->valuedouble;
    if (cJSON_IsNumber(out))
        ctx->output_tokens = (int64_t)out->valuedouble;
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
 * providers. fwd holds two. */
static size_t collect_forwarded(pg_fd_ctx_t *ctx, pg_kv_t *fwd)
{
    static const char *const names[] = {"anthropic-version",
                                        "anthropic-beta"};
    size_t n = 0;
    for (size_t i = 0; i < 2; i++) {
        pg_str_t v = pg_http_req_header(ctx->req, pg_str_c(names[i]));
        if (v.p != NULL && v.n > 0)
            fwd[n++] = (pg_kv_t){pg_str_c(names[i]), v};
    }
    return n;
}

/* ---- the chat call's Anthropic parts (chat_common.h) ---------------------- */

static void ant_begin(pg_fd_chat_t *c, const pg_route_t *rt)
{
    struct ant_msg *st = ant_of(c);
    pg_fd_ctx_t *ctx = c->ctx;
    memcpy(st->id, "msg_", 4);
    pg_random_alnum(st->id + 4, 24);
    st->id[28] = '\0';
    pg_anthropic_stream_enc_init(&st->enc, &ctx->req->arena,
                                 pg_str_c(st->id), rt->model, ANT_MAX_OUT);
    c->fwd = st->fwd;
    c->nfwd = collect_forwarded(ctx, st->fwd);
}

static void ant_destroy(pg_fd_chat_t *c)
{
    pg_anthropic_stream_enc_destroy(&ant_of(c)->enc);
}

static void ant_name_model(pg_fd_chat_t *c, pg_str_t model)
{
    ant_of(c)->enc.model = model;
}

static int on_sse(void *ud, pg_str_t event, pg_str_t data)
{
    pg_fd_chat_t *c = ud;
    return pg_sse_append_event(&c->out.sse, event, data);
}

static int ant_feed(pg_fd_chat_t *c, const pg_event_t *ev)
{
    return pg_anthropic_stream_enc_feed(&ant_of(c)->enc, ev, on_sse, c);
}

static bool ant_stream_end(pg_fd_chat_t *c)
{
    pg_anthropic_enc_state_t state = ant_of(c)->enc.state;
    return state == PG_ANT_ENC_DONE || state == PG_ANT_ENC_FAILED;
}

static int ant_encode(pg_fd_chat_t *c, pg_buf_t *b, pg_str_t model)
{
    return pg_anthropic_messages_encode(b, &c->acc, pg_str_c(ant_of(c)->id),
                                        model);
}

/* message_start (id, input usage) and message_delta (output usage) are
 * the only events a passthrough stream parses; the rest is relayed
 * unread. */
static bool ant_raw_event(pg_fd_chat_t *c, pg_str_t event, pg_str_t data)
{
    pg_fd_ctx_t *ctx = c->ctx;
    bool start = pg_str_eqc(event, "message_start");
    if (!start && !pg_str_eqc(event, "message_delta"))
        return true;
    const cJSON *j = pg_json_parse_arena(&ctx->req->arena, data, NULL);
    if (start) {
        j = cJSON_GetObjectItemCaseSensitive(j, "message");
        ctx->response_id = pg_json_get_str(j, "id");
    }
    note_raw_usage(ctx, cJSON_GetObjectItemCaseSensitive(j, "usage"));
    return true;
}

/* A whole body is an answer when it is a message. */
static bool ant_raw_answer(pg_fd_chat_t *c, const cJSON *j)
{
    static const char *const keys[] = {"type", "id", "usage"};
    const cJSON *m[3];
    pg_fd_raw_members(j, keys, 3, m);
    if (!pg_str_eqc(pg_json_str(m[0]), "message"))
        return false;
    c->ctx->response_id = pg_json_str(m[1]);
    note_raw_usage(c->ctx, m[2]);
    return true;
}

/* The late decode (a translated hop after passthrough so far). A body the
 * canonical model cannot hold (a document block...) skips that provider:
 * the client then gets the previous provider's failure. */
static int ant_decode(pg_fd_chat_t *c, pg_request_t *q)
{
    pg_fd_ctx_t *ctx = c->ctx;
    pg_anthropic_decode_err_t err = {0};
    if (!add_default_model(ctx, c->client.root))
        return PG_ENOMEM;
    int rc = pg_anthropic_messages_decode(&ctx->req->arena, c->client.root,
                                          q, &err);
    if (rc != PG_OK) {
        pg_log_field_t f[] = {
            PG_LF_S("request_id", pg_str_c(ctx->req->request_id)),
            PG_LF_S("provider", c->call.provider->pub.name),
            PG_LF_S("reason", err.message),
        };
        pg_log_fields(ctx->log, PG_LOG_WARN,
                      "failover skips a provider: the request cannot be "
                      "translated for it", f, sizeof(f) / sizeof(f[0]));
        return rc < 0 ? rc : PG_EUNSUPPORTED;
    }
    return PG_OK;
}

/* Passthrough (pg_fd_chat_try_raw): a Messages request routed to an
 * anthropic-type provider goes out as the client's bytes. Only what
 * routing needs is checked (a JSON object with messages, max_tokens, a
 * boolean stream, a string model or the app's default); everything else —
 * document blocks, cache_control anywhere, block types this gateway has
 * never heard of — is the upstream's to judge. */
static bool ant_raw_check(pg_fd_chat_t *c, const cJSON *root)
{
    static const char *const keys[] = {"messages", "max_tokens", "stream"};
    const cJSON *m[3];
    pg_fd_raw_members(root, keys, 3, m);
    const cJSON *js = m[2];
    if (!cJSON_IsArray(m[0]) || !cJSON_IsNumber(m[1]) ||
        (js != NULL && !cJSON_IsBool(js)))
        return false;
    c->req.stream = cJSON_IsTrue(js);
    return true;
}

static const pg_fd_chat_ops_t ant_ops = {
    .raw_kind = PG_RAW_ANTHROPIC_MESSAGES,
    .ping = PG_STR(ANT_PING),
    .max_out = ANT_MAX_OUT,
    .own_type = T_API,
    .error_event = PG_STR("error"),
    .client_error = ant_client_error,
    .respond_error = ant_respond_error,
    .error_json = pg_anthropic_error_json,
    .begin = ant_begin,
    .destroy = ant_destroy,
    .name_model = ant_name_model,
    .feed = ant_feed,
    .stream_end = ant_stream_end,
    .encode = ant_encode,
    .raw_check = ant_raw_check,
    .raw_event = ant_raw_event,
    .raw_answer = ant_raw_answer,
    .decode = ant_decode,
};

static void messages(pg_fd_ctx_t *ctx)
{
    struct ant_msg *st = pg_arena_calloc(&ctx->req->arena, 1, sizeof(*st));
    if (st == NULL) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    pg_fd_chat_t *c = &st->base;
    c->ops = &ant_ops;
    cJSON *root = parse_body(ctx);
    if (root == NULL || pg_fd_chat_try_raw(c, ctx, root))
        return;
    if (!add_default_model(ctx, root)) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return;
    }
    pg_anthropic_decode_err_t err;
    /* The tree lives in the request arena: nothing to delete. */
    int rc = pg_anthropic_messages_decode(&ctx->req->arena, root, &c->req,
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
    if (!route_model(ctx, &c->req.model, &rt))
        return;
    pg_fd_chat_start(c, ctx, &rt);
}

/* ---- count_tokens ------------------------------------------------------------ */

/* One count_tokens request forwarded to the anthropic-type providers of
 * the model's chain. */
struct ant_count {
    pg_fd_ctx_t *ctx;
    struct pg_provider_call call;
    pg_request_t req;          /* empty: the body goes raw, never a stream */
    pg_fd_stream_t out;        /* only its upstream-wait and relay parts */
    pg_kv_t fwd[2];
    size_t nfwd;
    pg_fd_raw_t client;        /* the body, per provider's model; for the
                                  estimate after a failure */
    pg_str_t model;
    bool fallback;             /* the chain has other types: estimate */
    bool answered;
};

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

/* The local estimate: about four characters a token, rounded up, over the
 * text of system, messages and tools; the log line says it is one. */
static void count_estimate(pg_fd_ctx_t *ctx, const cJSON *root,
                           pg_str_t model)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
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

static int count_on_raw(void *ud, pg_str_t event, pg_str_t data)
{
    struct ant_count *st = ud;
    (void)event;
    pg_str_t body;
    cJSON *j = pg_fd_raw_whole(&st->out, data, &body);
    if (body.p == NULL)
        return PG_ENOMEM;
    st->answered = true;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "input_tokens");
    if (!cJSON_IsNumber(n)) {
        respond_error(st->ctx, 502, T_API,
                      PG_STR("The provider sent a malformed count_tokens "
                             "response."));
        return PG_OK;
    }
    st->ctx->input_tokens = (int64_t)n->valuedouble;
    return pg_fd_raw_respond(&st->out, body);
}

/* A raw call has no events; the slot is required. */
static int count_on_event(void *ud, const pg_event_t *ev)
{
    (void)ud;
    (void)ev;
    return PG_ECANCELED;
}

/* An Anthropic-compatible server without count_tokens answers the path
 * with 404 or 405 (or 501): not the client's mistake, so the answer is
 * the local estimate. Anthropic's own 404 for an unknown model
 * (not_found_error, "model: ...") is the client's and is relayed. */
static bool count_endpoint_missing(const pg_provider_error_t *err,
                                   int upstream_status)
{
    if (upstream_status != 404 && upstream_status != 405 &&
        upstream_status != 501)
        return false;
    return !(pg_str_eqc(err->type, "not_found_error") &&
             pg_str_starts_with(err->message, PG_STR("model:")));
}

static void count_on_done(void *ud, const pg_provider_error_t *err)
{
    struct ant_count *st = ud;
    pg_fd_ctx_t *ctx = st->ctx;
    ctx->upstream_end_ns = pg_now_ns();
    pg_fd_note_upstream_wait(ctx, &st->out.waiting);
    if (st->answered)
        return;
    if (err != NULL && err->retryable && st->fallback) {
        /* The Messages request would fail over to a provider whose count
         * is the estimate anyway. */
        count_estimate(ctx, st->client.root, st->model);
        return;
    }
    if (err != NULL && count_endpoint_missing(err, st->call.upstream_status)) {
        pg_log_field_t f[] = {
            PG_LF_S("request_id", pg_str_c(ctx->req->request_id)),
            PG_LF_S("provider", ctx->provider),
            PG_LF_I("upstream_status", st->call.upstream_status),
        };
        pg_log_fields(ctx->log, PG_LOG_WARN,
                      "the provider has no count_tokens endpoint; the "
                      "answer is the local estimate",
                      f, sizeof(f) / sizeof(f[0]));
        count_estimate(ctx, st->client.root, st->model);
        return;
    }
    if (err != NULL) {
        pg_fd_respond_failure(ctx, &ant_ops, err,
                              st->call.upstream_status);
        return;
    }
    respond_error(ctx, 502, T_API,
                  PG_STR("The provider ended without an answer."));
}

static int count_on_attempt(void *ud, const pg_cfg_provider_t *p)
{
    struct ant_count *st = ud;
    /* Only anthropic-type providers are in its chain: never translated. */
    return pg_fd_attempt(st->ctx, &st->client, &st->call, p, NULL, NULL,
                         &st->req);
}

/* Forwards the client's body (model rewritten as routing says) to the
 * anthropic-type providers of the model's chain, in order, with their
 * retries and failover; their answer is relayed as it is, their errors
 * in Anthropic's shape. When they all fail with a retryable error and the
 * chain also holds other provider types — where the Messages request
 * would go next — the answer is the local estimate. Returns false when
 * the routed provider is not anthropic-type (the caller estimates). */
static bool count_forward(pg_fd_ctx_t *ctx, cJSON *root, pg_str_t model,
                          const pg_route_t *rt)
{
    const pg_raw_kind_t kind = PG_RAW_ANTHROPIC_COUNT_TOKENS;
    if (!pg_http_provider_takes_raw(ctx->cfg->providers[rt->provider].vt,
                                    kind))
        return false;
    pg_arena_t *a = &ctx->req->arena;
    struct ant_count *st = pg_arena_calloc(a, 1, sizeof(*st));
    const pg_cfg_hop_t *chain = NULL;
    size_t nchain = 0, n = 0;
    pg_cfg_hop_t *own = NULL;
    pg_str_t body;
    if (st != NULL)
        st->client.root = root;
    if (st == NULL ||
        pg_route_chain(ctx->cfg, rt, model, a, &chain, &nchain) != PG_OK ||
        (own = pg_arena_calloc(a, nchain, sizeof(*own))) == NULL ||
        pg_fd_raw_body(ctx, &st->client, rt->model, &body) != PG_OK) {
        respond_error(ctx, 500, T_API, PG_STR("out of memory"));
        return true;
    }
    for (size_t i = 0; i < nchain; i++) {
        if (pg_http_provider_takes_raw(
                ctx->cfg->providers[chain[i].provider].vt, kind))
            own[n++] = chain[i];
    }
    st->ctx = ctx;
    st->model = model;
    st->fallback = n < nchain;
    st->req.model = rt->model;
    /* Nothing is framed or pinged: the stream part stays unallocated. */
    pg_fd_stream_init(&st->out, ctx, &st->call, PG_STR_NULL, 0);
    st->nfwd = collect_forwarded(ctx, st->fwd);
    static const pg_fd_call_cbs_t cbs = {count_on_raw, count_on_attempt,
                                         count_on_event, count_on_done};
    pg_fd_call_init(&st->call, ctx, &st->req, rt, own, n, st->fwd, st->nfwd,
                    kind, body, &cbs, st);
    int rc;
    if (!pg_fd_call_run(ctx, &st->call, &st->out, &rc)) {
        if (st->fallback) {
            count_estimate(ctx, root, model);
            return true;
        }
        respond_error(ctx, 502, T_API,
                      PG_STR("The provider could not start the request."));
    }
    return true;
}

/* POST /v1/messages/count_tokens: the routed provider's own count when it
 * is anthropic-type (see count_forward), else a local estimate. */
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
    if (!count_forward(ctx, root, model, &rt))
        count_estimate(ctx, root, model);
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
    pg_fd_respond_json(ctx, &ant_ops, &b, rc);
}

/* ---- endpoint table ------------------------------------------------------------ */

static void method_not_allowed(pg_fd_ctx_t *ctx, const char *allow)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t msg = pg_fd_method_error(ctx, allow);
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
