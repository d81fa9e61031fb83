/* openai.c: the OpenAI frontdoor. POST /v1/chat/completions decodes the
 * client's JSON (or, routed to an OpenAI-type provider, forwards its bytes
 * as passthrough), routes the model and runs the chat call of
 * chat_common.c with the OpenAI parts: chat.completion bodies,
 * chat.completion.chunk SSE ending in [DONE], OpenAI's error shapes, the
 * usage chunk of a passthrough stream held back unless the client asked
 * for it. GET /v1/models lists what the app can reach. Other paths under
 * the app get OpenAI-shaped 404/405s.
 *
 * Per-request state (struct oai_chat, around the shared pg_fd_chat_t)
 * lives in the request arena. Loop thread of the request. */
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/list.h"
#include "base/str.h"
#include "base/time.h"
#include "codec/openai_chat.h"
#include "frontdoor/chat_common.h"
#include "http/sse.h"

/* Largest encoded chunk or non-stream body we build. */
#define OAI_MAX_OUT (64u * 1024u * 1024u)
/* "created" of /v1/models entries: a fixed time keeps the list stable. */
#define OAI_MODELS_CREATED 1735689600

#define T_INVALID PG_STR("invalid_request_error")

struct oai_chat {
    pg_fd_chat_t base;         /* first: the call both dialects run */
    char id[48];               /* "chatcmpl-..." */
    int64_t created;
    pg_openai_stream_enc_t enc;/* stream */
};

static struct oai_chat *oai_of(pg_fd_chat_t *c)
{
    return pg_container_of(c, struct oai_chat, base);
}

static void respond_error(pg_fd_ctx_t *ctx, int status, pg_str_t msg,
                          pg_str_t type, pg_str_t param, pg_str_t code)
{
    pg_fd_set_error(ctx, msg);
    pg_openai_respond_error(ctx->req, status, msg, type, param, code);
}

/* ---- the chat call's OpenAI parts (chat_common.h) ------------------------- */

/* An OpenAI client sees the status the provider layer chose (an upstream
 * 529 is already 503 there). */
static void oai_client_error(const pg_provider_error_t *err, int upstream,
                             int *status, pg_str_t *type)
{
    (void)upstream;
    *status = err->http_status ? err->http_status : 502;
    *type = err->type.n ? err->type : PG_STR("server_error");
}

static void oai_respond_error(pg_http_req_t *req, int status, pg_str_t type,
                              pg_str_t msg, pg_str_t param,
                              const pg_http_header_t *extra, size_t nextra)
{
    pg_openai_respond_error_h(req, status, msg, type, param, PG_STR_NULL,
                              extra, nextra);
}

static int oai_error_json(pg_buf_t *b, pg_str_t type, pg_str_t msg)
{
    return pg_openai_error_json(b, msg, type, PG_STR_NULL, PG_STR_NULL);
}

static void oai_begin(pg_fd_chat_t *c, const pg_route_t *rt)
{
    struct oai_chat *st = oai_of(c);
    pg_fd_ctx_t *ctx = c->ctx;
    st->created = pg_unix_ms() / 1000;
    memcpy(st->id, "chatcmpl-", 9);
    pg_random_alnum(st->id + 9, 29);
    /* The log names the routed provider even when the set-up fails for
     * memory (pg_fd_call_init names it again once the call is filled). */
    ctx->served_model = rt->model;
    ctx->provider = ctx->cfg->providers[rt->provider].pub.name;
    ctx->stream = c->stream;
    pg_openai_stream_enc_init(&st->enc, &ctx->req->arena, pg_str_c(st->id),
                              st->created, rt->model, c->req.include_usage,
                              OAI_MAX_OUT);
}

static void oai_destroy(pg_fd_chat_t *c)
{
    pg_openai_stream_enc_destroy(&oai_of(c)->enc);
}

static void oai_name_model(pg_fd_chat_t *c, pg_str_t model)
{
    oai_of(c)->enc.model = model;
}

static int on_chunk(void *ud, pg_str_t payload)
{
    pg_fd_chat_t *c = ud;
    return pg_sse_append_event(&c->out.sse, PG_STR_NULL, payload);
}

static int oai_feed(pg_fd_chat_t *c, const pg_event_t *ev)
{
    return pg_openai_stream_enc_feed(&oai_of(c)->enc, ev, on_chunk, c);
}

static bool oai_stream_end(pg_fd_chat_t *c)
{
    pg_openai_stream_state_t state = oai_of(c)->enc.state;
    if (state == PG_OAI_STREAM_FAILED)
        return true;
    if (state != PG_OAI_STREAM_DONE)
        return false;
    /* After what waits for the turn's end. */
    (void)pg_fd_stream_flush(&c->out);
    (void)pg_http_stream_write(c->ctx->req, PG_STR("data: [DONE]\n\n"));
    return true;
}

static int oai_encode(pg_fd_chat_t *c, pg_buf_t *b, pg_str_t model)
{
    struct oai_chat *st = oai_of(c);
    return pg_openai_chat_encode(b, &c->acc, pg_str_c(st->id), st->created,
                                 model);
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

/* The late decode (a translated hop after passthrough so far), as the
 * translation path would have done up front; n > 1 skips the provider. */
static int oai_decode(pg_fd_chat_t *c, pg_request_t *q)
{
    pg_openai_decode_err_t err;
    int rc = pg_openai_chat_decode(&c->ctx->req->arena, c->client.root, q,
                                   &err);
    if (rc != PG_OK)
        return rc;
    if ((q->set & PG_SET_N) && q->n > 1)
        return PG_EUNSUPPORTED;
    return PG_OK;
}

/* ---- passthrough ------------------------------------------------------------- */

/* The members of a chunk or body the passthrough path reads. */
enum { RAW_CHOICES, RAW_USAGE, RAW_ID, RAW_N };
static const char *const raw_keys[RAW_N] = {"choices", "usage", "id"};

/* The usage object and id of a chunk or body (its members m), for the
 * access log. */
static void note_raw_usage(pg_fd_ctx_t *ctx, const cJSON *const *m)
{
    const cJSON *u = m[RAW_USAGE];
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *out = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(in))
        ctx->input_tokens = (int64_t)in->valuedouble;
    if (cJSON_IsNumber(out))
        ctx->output_tokens = (int64_t)out->valuedouble;
    ctx->response_id = pg_json_str(m[RAW_ID]);
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

/* One payload of a passthrough stream: the bytes go to the client as the
 * upstream sent them; only the usage chunk the gateway asked for on its
 * own (to log usage) is held back when the client did not ask for it. */
static bool oai_raw_event(pg_fd_chat_t *c, pg_str_t event, pg_str_t payload)
{
    (void)event;
    /* Only the last chunks carry usage: look before parsing anything. */
    if (!has_usage_object(payload))
        return true;
    cJSON *j = pg_json_parse_arena(&c->ctx->req->arena, payload, NULL);
    if (j == NULL)
        return true;
    const cJSON *m[RAW_N];
    pg_fd_raw_members(j, raw_keys, RAW_N, m);
    note_raw_usage(c->ctx, m);
    const cJSON *ch = m[RAW_CHOICES];
    return c->req.include_usage || !cJSON_IsArray(ch) ||
           cJSON_GetArraySize(ch) != 0;
}

/* A whole body is an answer when it is a chat.completion. */
static bool oai_raw_answer(pg_fd_chat_t *c, const cJSON *j)
{
    const cJSON *m[RAW_N];
    pg_fd_raw_members(j, raw_keys, RAW_N, m);
    if (!cJSON_IsArray(m[RAW_CHOICES]))
        return false;
    note_raw_usage(c->ctx, m);
    return true;
}

/* A passthrough stream whose client did not ask for usage: the edit that
 * asks upstream for it anyway (the log wants the tokens; oai_raw_event
 * holds the usage chunk back from the client). stream_options absent or
 * null: set to {"include_usage":true}; an object: its include_usage (absent,
 * null or false) set to true. Anything else (a stream_options or
 * include_usage of another type, or a key the byte scan cannot find) is
 * PG_EINVAL: the decode path answers with its precise 400. */
static int usage_edit(pg_fd_ctx_t *ctx, const cJSON *root,
                      pg_fd_edit_t *out)
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

/* Passthrough (pg_fd_chat_try_raw): an OpenAI request routed to an
 * OpenAI-type provider goes out as the client's bytes (only the model
 * rewritten, and usage asked for on a stream), and the answer comes back
 * byte for byte. A body without a messages array, or one the usage
 * splice cannot take, takes the decode path. */
static bool oai_raw_check(pg_fd_chat_t *c, const cJSON *root)
{
    static const char *const keys[] = {"messages", "stream",
                                       "stream_options"};
    const cJSON *m[3];
    pg_fd_raw_members(root, keys, 3, m);
    if (!cJSON_IsArray(m[0]))
        return false;
    const cJSON *js = m[1], *so = m[2];
    c->req.stream = cJSON_IsTrue(js);
    c->req.include_usage =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));
    return !c->req.stream || c->req.include_usage ||
           usage_edit(c->ctx, root,
                      &c->client.edits[c->client.nedits++]) == PG_OK;
}

static const pg_fd_chat_ops_t oai_ops = {
    .raw_kind = PG_RAW_OPENAI_CHAT,
    .ping = PG_STR(": ping\n\n"),
    .max_out = OAI_MAX_OUT,
    .own_type = PG_STR("server_error"),
    /* .error_event: none, an OpenAI stream has data lines only */
    .client_error = oai_client_error,
    .respond_error = oai_respond_error,
    .error_json = oai_error_json,
    .begin = oai_begin,
    .destroy = oai_destroy,
    .name_model = oai_name_model,
    .feed = oai_feed,
    .stream_end = oai_stream_end,
    .encode = oai_encode,
    .raw_check = oai_raw_check,
    .raw_event = oai_raw_event,
    .raw_answer = oai_raw_answer,
    .decode = oai_decode,
};

static void chat_completions(pg_fd_ctx_t *ctx)
{
    struct oai_chat *st = pg_arena_calloc(&ctx->req->arena, 1, sizeof(*st));
    pg_route_t rt;
    if (st == NULL) {
        respond_error(ctx, 500, PG_STR("out of memory"),
                      PG_STR("server_error"), PG_STR_NULL, PG_STR_NULL);
        return;
    }
    pg_fd_chat_t *c = &st->base;
    c->ops = &oai_ops;
    cJSON *root = chat_parse(ctx);
    if (root == NULL || pg_fd_chat_try_raw(c, ctx, root))
        return;
    if (!chat_decode(ctx, root, &c->req) || !chat_route(ctx, &c->req, &rt))
        return;
    pg_fd_chat_start(c, ctx, &rt);
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
    pg_fd_respond_json(ctx, &oai_ops, &b, rc);
}

/* ---- endpoint table ------------------------------------------------------------ */

static void method_not_allowed(pg_fd_ctx_t *ctx, const char *allow)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t msg = pg_fd_method_error(ctx, allow);
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
