/* chat_common.c: the chat endpoint's call, shared by the OpenAI and
 * Anthropic frontdoors (chat_common.h): set-up and start, failover
 * attempts, the streamed and the whole answer, passthrough, and the
 * failures in the dialect's shape. Loop thread of the request. */
#include "frontdoor/chat_common.h"

#include "base/str.h"
#include "base/time.h"
#include "http/sse.h"

static void chat_cleanup(void *ud)
{
    pg_fd_chat_t *c = ud;
    c->ops->destroy(c);
    pg_fd_stream_destroy(&c->out);
}

void pg_fd_respond_failure(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                           const pg_provider_error_t *err, int upstream)
{
    pg_http_header_t extra[16];
    size_t n = pg_fd_relay_headers(err->headers, err->nheaders, extra, 16);
    int status;
    pg_str_t type;
    ops->client_error(err, upstream, &status, &type);
    pg_fd_set_error(ctx, err->message);
    ops->respond_error(ctx->req, status, type, err->message, err->param,
                       extra, n);
}

void pg_fd_respond_own(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                       int status, pg_str_t msg)
{
    pg_provider_error_t err = {
        .http_status = status, .type = ops->own_type, .message = msg};
    pg_fd_respond_failure(ctx, ops, &err, 0);
}

static void chat_fail(pg_fd_chat_t *c, int status, pg_str_t msg)
{
    pg_fd_respond_own(c->ctx, c->ops, status, msg);
}

void pg_fd_respond_json(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                        pg_buf_t *b, int rc)
{
    pg_str_t body = rc == PG_OK ? pg_arena_strdup(&ctx->req->arena,
                                                  pg_buf_str(b))
                                : PG_STR_NULL;
    pg_buf_free(b);
    if (body.p == NULL) {
        pg_fd_respond_own(ctx, ops, 500, PG_STR("out of memory"));
        return;
    }
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), NULL, 0,
                          body);
}

/* ---- streaming ------------------------------------------------------------ */

/* Writes an error into a started stream; nothing follows it. */
static void stream_fail(pg_fd_chat_t *c, const pg_provider_error_t *err,
                        int upstream)
{
    pg_event_t ev = {.kind = PG_EV_ERROR, .text = err->message};
    c->ops->client_error(err, upstream, &ev.status, &ev.error_type);
    /* What was gathered before the failure goes first. */
    (void)pg_fd_stream_flush(&c->out);
    if (c->ops->feed(c, &ev) != PG_OK) {
        /* The encoder already ended: frame the error ourselves. */
        pg_buf_t b;
        pg_buf_init(&b, c->ops->max_out);
        int rc = c->ops->error_json(&b, ev.error_type, ev.text);
        if (rc == PG_OK)
            rc = pg_sse_append_event(&c->out.sse, c->ops->error_event,
                                     pg_buf_str(&b));
        (void)rc; /* without memory the stream just ends */
        pg_buf_free(&b);
    }
    (void)pg_fd_stream_flush(&c->out);
    pg_fd_set_error(c->ctx, ev.text);
}

/* The gateway's own failure in a started stream. */
static void stream_fail_own(pg_fd_chat_t *c, int status, pg_str_t msg)
{
    pg_provider_error_t err = {
        .http_status = status, .type = c->ops->own_type, .message = msg};
    stream_fail(c, &err, 0);
}

static int stream_event(pg_fd_chat_t *c, const pg_event_t *ev)
{
    int rc;
    if (!c->out.started) {
        if (ev->kind == PG_EV_ERROR) {
            /* Nothing sent yet: the client gets a plain error answer. */
            pg_provider_error_t err = {.http_status = ev->status,
                                       .type = ev->error_type,
                                       .message = ev->text};
            c->broken = true;
            pg_fd_respond_failure(c->ctx, c->ops, &err, 0);
            return PG_OK;
        }
        if ((rc = pg_fd_stream_begin(&c->out)) != PG_OK)
            return rc;
    }
    if (ev->kind == PG_EV_MESSAGE_START && ev->model.n > 0) {
        /* The stream names the model that answers, like the non-stream
         * body. */
        pg_str_t m = pg_arena_strdup(&c->ctx->req->arena, ev->model);
        if (m.p != NULL)
            c->ops->name_model(c, m);
    }
    pg_fd_stream_rearm(&c->out);
    rc = c->ops->feed(c, ev);
    if (rc == PG_EPARSE) {
        c->broken = true;
        stream_fail_own(c, 502,
                        PG_STR("The provider sent a malformed event stream."));
        return PG_OK;
    }
    if (rc != PG_OK) {
        c->broken = true;
        stream_fail_own(c, 500, pg_str_c(pg_strerror(rc)));
        return PG_OK;
    }
    /* The events of one upstream read go to the client in one write. */
    return pg_fd_stream_push(&c->out);
}

static void stream_done(pg_fd_chat_t *c, const pg_provider_error_t *err)
{
    if (!c->out.started) {
        if (c->broken)
            return; /* already answered with an error */
        pg_fd_note_upstream_wait(c->ctx, &c->out.waiting);
        if (err != NULL) {
            pg_fd_respond_failure(c->ctx, c->ops, err,
                                  c->call.upstream_status);
            return;
        }
        chat_fail(c, 502, PG_STR("The provider ended without an answer."));
        return;
    }
    if (err != NULL && !c->broken) {
        stream_fail(c, err, c->call.upstream_status);
    } else if (!c->raw && !c->broken && !c->ops->stream_end(c)) {
        /* (Passthrough relayed the upstream's own end.) */
        stream_fail_own(c, 502,
                        PG_STR("The provider ended the stream early."));
    }
    pg_fd_stream_end(&c->out);
}

/* ---- non-stream ------------------------------------------------------------ */

static void whole_done(pg_fd_chat_t *c, const pg_provider_error_t *err)
{
    pg_fd_ctx_t *ctx = c->ctx;
    pg_canon_response_t *acc = &c->acc;
    pg_fd_note_upstream_wait(ctx, &c->out.waiting);
    if (c->raw && c->answered)
        return; /* passthrough relayed the body */
    if (err != NULL) {
        pg_fd_respond_failure(ctx, c->ops, err, c->call.upstream_status);
        return;
    }
    if (c->raw) {
        chat_fail(c, 502, PG_STR("The provider ended without an answer."));
        return;
    }
    if (acc->failed) {
        pg_provider_error_t failed = {.http_status = acc->error_status,
                                      .type = acc->error_type,
                                      .message = acc->error_message};
        pg_fd_respond_failure(ctx, c->ops, &failed, 0);
        return;
    }
    if (c->broken || pg_canon_response_finish(acc) != PG_OK) {
        chat_fail(c, 502, PG_STR("The provider sent a malformed response."));
        return;
    }
    pg_buf_t b;
    pg_buf_init(&b, c->ops->max_out);
    pg_str_t model = acc->model.n ? acc->model : c->req.model;
    pg_str_t body = PG_STR_NULL;
    int rc = c->ops->encode(c, &b, model);
    if (rc == PG_OK)
        body = pg_arena_strdup(&ctx->req->arena, pg_buf_str(&b));
    pg_buf_free(&b);
    if (rc == PG_EPARSE) {
        chat_fail(c, 502,
                  PG_STR("The provider sent a tool call whose arguments are "
                         "not a JSON object."));
        return;
    }
    if (body.p == NULL) {
        chat_fail(c, 500, PG_STR("out of memory"));
        return;
    }
    pg_http_header_t extra[16];
    size_t nextra = pg_fd_relay_headers(c->call.relay, c->call.nrelay, extra,
                                        16);
    (void)pg_http_respond(ctx->req, 200, PG_STR("application/json"), extra,
                          nextra, body);
}

/* ---- the call ----------------------------------------------------------------- */

static int on_event(void *ud, const pg_event_t *ev)
{
    pg_fd_chat_t *c = ud;
    pg_fd_note_usage(c->ctx, ev);
    if (c->broken)
        return PG_OK; /* already answered; let the provider finish */
    if (c->stream)
        return stream_event(c, ev); /* PG_PENDING: the client is slow */
    int rc = pg_canon_response_add(&c->acc, ev);
    if (rc == PG_EPARSE)
        c->broken = true;
    return rc == PG_ENOMEM ? PG_ECANCELED : PG_OK;
}

static void on_done(void *ud, const pg_provider_error_t *err)
{
    pg_fd_chat_t *c = ud;
    c->ctx->upstream_end_ns = pg_now_ns();
    if (c->stream)
        stream_done(c, err);
    else
        whole_done(c, err);
}

/* The passthrough answer: a stream event by event, or a whole body relayed
 * as it is after the dialect's look at it. */
static int on_raw(void *ud, pg_str_t event, pg_str_t data)
{
    pg_fd_chat_t *c = ud;
    if (c->stream) {
        if (data.p != NULL && !c->ops->raw_event(c, event, data))
            return PG_OK;
        return pg_fd_raw_stream_event(&c->out, event, data);
    }
    pg_str_t body;
    cJSON *j = pg_fd_raw_whole(&c->out, data, &body);
    if (body.p == NULL)
        return PG_ENOMEM;
    c->answered = true;
    if (!c->ops->raw_answer(c, j)) {
        /* A 200 that is not an answer (malformed, or an error object): the
         * client gets a clean error, not the upstream's lie. */
        chat_fail(c, 502, pg_fd_raw_lie_message(&c->out, j));
        return PG_OK;
    }
    return pg_fd_raw_respond(&c->out, body);
}

/* A provider of the failover chain that needs translation while the
 * request went passthrough so far: the client's body is decoded now (as
 * the translation path would have done up front). */
static int decode_late(void *ud)
{
    pg_fd_chat_t *c = ud;
    pg_request_t q;
    int rc = c->ops->decode(c, &q);
    if (rc == PG_OK)
        c->req = q;
    return rc;
}

/* Each provider of the failover chain that starts: the log names the one
 * that answered and the model it was sent; it takes the client's bytes or
 * a translation, with that model either way. */
static int on_attempt(void *ud, const pg_cfg_provider_t *p)
{
    pg_fd_chat_t *c = ud;
    c->raw = c->call.raw;
    /* A stream names this model until the answer names its own. */
    c->ops->name_model(c, c->call.model);
    return pg_fd_attempt(c->ctx, &c->client, &c->call, p, decode_late, c,
                         &c->req);
}

/* pg_fd_call_init's body, inlined into the chat call's start (it runs on
 * every request). */
static inline void call_fill(struct pg_provider_call *c, pg_fd_ctx_t *ctx,
                             const pg_request_t *q, const pg_route_t *rt,
                             const pg_cfg_hop_t *chain, size_t nchain,
                             const pg_kv_t *fwd, size_t nfwd,
                             pg_raw_kind_t kind, pg_str_t raw,
                             const pg_fd_call_cbs_t *cbs, void *ud)
{
    *c = (struct pg_provider_call){
        .raw_kind = raw.p != NULL ? kind : PG_RAW_NONE,
        .raw_body = raw,
        .on_raw = cbs->on_raw,
        .on_attempt = cbs->on_attempt,
        .on_event = cbs->on_event,
        .on_done = cbs->on_done,
        .ud = ud,
        .request = q,
        .loop = ctx->loop,
        .arena = &ctx->req->arena,
        .provider = &ctx->cfg->providers[rt->provider],
        .model = rt->model,
        .upstream = ctx->upstream,
        .cfg = ctx->cfg,
        .chain = chain,
        .nchain = nchain,
        .client_headers = nfwd ? fwd : NULL,
        .nclient_headers = nfwd,
    };
    ctx->served_model = rt->model;
    ctx->provider = c->provider->pub.name;
    ctx->stream = q->stream;
    ctx->upstream_start_ns = pg_now_ns();
}

void pg_fd_call_init(struct pg_provider_call *c, pg_fd_ctx_t *ctx,
                     const pg_request_t *q, const pg_route_t *rt,
                     const pg_cfg_hop_t *chain, size_t nchain,
                     const pg_kv_t *fwd, size_t nfwd, pg_raw_kind_t kind,
                     pg_str_t raw, const pg_fd_call_cbs_t *cbs, void *ud)
{
    call_fill(c, ctx, q, rt, chain, nchain, fwd, nfwd, kind, raw, cbs, ud);
}

/* pg_fd_call_run's body, inlined like call_fill. */
static inline bool call_run(pg_fd_ctx_t *ctx, struct pg_provider_call *c,
                            pg_fd_stream_t *out, int *rc)
{
    out->waiting = true;
    *rc = pg_call_start(c);
    if (*rc != PG_PENDING) {
        ctx->upstream_end_ns = pg_now_ns();
        pg_fd_note_upstream_wait(ctx, &out->waiting);
        return false;
    }
    pg_fd_stream_watch_abort(out);
    return true;
}

bool pg_fd_call_run(pg_fd_ctx_t *ctx, struct pg_provider_call *c,
                    pg_fd_stream_t *out, int *rc)
{
    return call_run(ctx, c, out, rc);
}

void pg_fd_chat_start(pg_fd_chat_t *c, pg_fd_ctx_t *ctx,
                      const pg_route_t *rt)
{
    const pg_fd_chat_ops_t *ops = c->ops;
    pg_arena_t *a = &ctx->req->arena;
    c->ctx = ctx;
    c->req.model = rt->model;
    c->stream = c->req.stream;
    pg_canon_response_init(&c->acc, a);
    pg_fd_stream_init(&c->out, ctx, &c->call, ops->ping, ops->max_out);
    ops->begin(c, rt);
    if (pg_arena_on_free(a, chat_cleanup, c) != PG_OK) {
        chat_cleanup(c);
        chat_fail(c, 500, PG_STR("out of memory"));
        return;
    }
    const pg_cfg_hop_t *chain = NULL;
    size_t nchain = 0;
    if (pg_route_chain(ctx->cfg, rt, ctx->model, a, &chain, &nchain) !=
        PG_OK) {
        chat_fail(c, 500, PG_STR("out of memory"));
        return;
    }
    static const pg_fd_call_cbs_t cbs = {on_raw, on_attempt, on_event,
                                         on_done};
    call_fill(&c->call, ctx, &c->req, rt, chain, nchain, c->fwd, c->nfwd,
              ops->raw_kind, c->raw_body, &cbs, c);
    int rc;
    if (!call_run(ctx, &c->call, &c->out, &rc)) {
        /* The message names the routed provider (the chain's first). */
        pg_str_t name = ctx->cfg->providers[rt->provider].pub.name;
        pg_str_t msg = pg_arena_printf(a,
                                       "The provider %.*s could not start "
                                       "the request: %s.",
                                       (int)name.n, name.p, pg_strerror(rc));
        chat_fail(c, 502, msg.p ? msg : PG_STR("provider error"));
    }
}

bool pg_fd_chat_try_raw(pg_fd_chat_t *c, pg_fd_ctx_t *ctx, cJSON *root)
{
    pg_str_t model;
    pg_route_t rt;
    c->ctx = ctx;
    c->client.root = root;
    if (!c->ops->raw_check(c, root) ||
        !pg_fd_raw_route(ctx, root, c->ops->raw_kind, &model, &rt) ||
        pg_fd_raw_body(ctx, &c->client, rt.model, &c->raw_body) != PG_OK) {
        c->client = (pg_fd_raw_t){0}; /* the decode path takes it */
        return false;
    }
    c->req.model = model;
    ctx->model = model;
    pg_fd_chat_start(c, ctx, &rt);
    return true;
}
