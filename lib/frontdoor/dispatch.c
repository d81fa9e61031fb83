/* dispatch.c: path -> app -> frontdoor, /health, server error bodies, and
 * the access log. Loop thread only. */
#include "frontdoor/dispatch.h"

#include <string.h>

#include "base/str.h"
#include "base/time.h"
#include "codec/anthropic_messages.h"
#include "frontdoor/frontdoor.h"

void pg_dispatch_init(pg_dispatch_t *d, uv_loop_t *loop, const pg_logger_t *log,
                      pg_config_t *cfg)
{
    d->loop = loop;
    d->log = log;
    d->cfg = pg_config_ref(cfg);
    d->upstream = NULL;
}

void pg_dispatch_destroy(pg_dispatch_t *d)
{
    if (d->cfg != NULL)
        pg_config_unref(d->cfg);
    d->cfg = NULL;
}

const pg_cfg_app_t *pg_dispatch_find_app(const pg_config_t *cfg, pg_str_t path,
                                         pg_str_t *rest)
{
    const pg_cfg_app_t *best = NULL;
    for (size_t i = 0; i < cfg->napps; i++) {
        const pg_cfg_app_t *app = &cfg->apps[i];
        if (!pg_str_starts_with(path, app->path))
            continue;
        /* "/openai" matches "/openai" and "/openai/...", not "/openaix". */
        if (path.n > app->path.n && path.p[app->path.n] != '/')
            continue;
        if (best == NULL || app->path.n > best->path.n)
            best = app;
    }
    if (best != NULL && rest != NULL)
        *rest = (pg_str_t){path.p + best->path.n, path.n - best->path.n};
    return best;
}

static void on_ctx_release(void *ud)
{
    pg_fd_ctx_t *ctx = ud;
    pg_config_unref(ctx->cfg);
}

static void respond_health(pg_http_req_t *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    pg_http_respond(req, 200, PG_STR("application/json"), NULL, 0,
                    PG_STR(body));
}

static void on_request(void *ud, pg_http_req_t *req)
{
    pg_dispatch_t *d = ud;
    if (pg_str_eqc(req->path, "/health") &&
        (pg_str_eqc(req->method, "GET") || pg_str_eqc(req->method, "HEAD"))) {
        respond_health(req);
        return;
    }
    pg_str_t rest = PG_STR_NULL;
    const pg_cfg_app_t *app = pg_dispatch_find_app(d->cfg, req->path, &rest);
    if (app == NULL) {
        pg_str_t msg = pg_arena_printf(&req->arena,
                                       "Unknown request URL: %.*s %.*s",
                                       (int)req->method.n, req->method.p,
                                       (int)req->path.n, req->path.p);
        pg_openai_respond_error(req, 404, msg, PG_STR("invalid_request_error"),
                                PG_STR_NULL, PG_STR("unknown_url"));
        return;
    }
    pg_fd_ctx_t *ctx = pg_arena_calloc(&req->arena, 1, sizeof(*ctx));
    if (ctx == NULL ||
        pg_arena_on_free(&req->arena, on_ctx_release, ctx) != PG_OK) {
        pg_openai_respond_error(req, 500, PG_STR("out of memory"),
                                PG_STR("server_error"), PG_STR_NULL,
                                PG_STR_NULL);
        return;
    }
    ctx->cfg = pg_config_ref(d->cfg);
    ctx->app = app;
    ctx->log = d->log;
    ctx->loop = d->loop;
    ctx->upstream = d->upstream;
    ctx->req = req;
    ctx->endpoint = rest;
    req->handler_data = ctx;
    switch (app->frontdoor) {
    case PG_FRONTDOOR_OPENAI:
        pg_frontdoor_openai_handle(ctx);
        break;
    case PG_FRONTDOOR_ANTHROPIC:
        pg_frontdoor_anthropic_handle(ctx);
        break;
    default:
        pg_openai_respond_error(req, 501,
                                PG_STR("this frontdoor is not available"),
                                PG_STR("server_error"), PG_STR_NULL,
                                PG_STR_NULL);
        break;
    }
}

static int64_t ns_to_us(uint64_t ns) { return (int64_t)(ns / 1000); }

static void on_complete(void *ud, pg_http_req_t *req)
{
    pg_dispatch_t *d = ud;
    if (!pg_log_enabled(d->log, PG_LOG_INFO))
        return;
    const pg_fd_ctx_t *ctx = req->handler_data;
    uint64_t now = pg_now_ns();
    int64_t upstream_us = 0;
    if (ctx != NULL && ctx->upstream_start_ns != 0) {
        uint64_t end = ctx->upstream_end_ns ? ctx->upstream_end_ns : now;
        upstream_us = ns_to_us(end - ctx->upstream_start_ns);
    }
    pg_log_field_t f[18];
    size_t n = 0;
    f[n++] = PG_LF_S("request_id", pg_str_c(req->request_id));
    f[n++] = PG_LF_S("method", req->method);
    f[n++] = PG_LF_S("path", req->path);
    f[n++] = PG_LF_I("status", req->status);
    f[n++] = PG_LF_I("bytes_out", (int64_t)req->bytes_out);
    f[n++] = PG_LF_US_AS_MS("total_ms", ns_to_us(now - req->start_ns));
    if (ctx != NULL) {
        f[n++] = PG_LF_S("app", ctx->app->name);
        if (ctx->model.n)
            f[n++] = PG_LF_S("model", ctx->model);
        if (ctx->provider.n) {
            f[n++] = PG_LF_S("provider", ctx->provider);
            f[n++] = PG_LF_S("served_model", ctx->served_model);
            f[n++] = PG_LF_I("stream", ctx->stream);
            f[n++] = PG_LF_US_AS_MS("upstream_ms", upstream_us);
            f[n++] = PG_LF_I("input_tokens", ctx->input_tokens);
            f[n++] = PG_LF_I("output_tokens", ctx->output_tokens);
            if (ctx->response_id.n)
                f[n++] = PG_LF_S("response_id", ctx->response_id);
        }
        if (ctx->error.n)
            f[n++] = PG_LF_S("error", ctx->error);
    }
    if (req->aborted)
        f[n++] = PG_LF_I("client_aborted", 1);
    pg_log_fields(d->log, PG_LOG_INFO, "request", f, n);
}

static pg_str_t render_error(void *ud, pg_arena_t *arena, pg_str_t path,
                             int status, const char *message)
{
    pg_dispatch_t *d = ud;
    /* The server's own errors (413, 431, timeouts...) take the shape of
     * the app the path is under; OpenAI's elsewhere. */
    const pg_cfg_app_t *app =
        d->cfg != NULL ? pg_dispatch_find_app(d->cfg, path, NULL) : NULL;
    if (app != NULL && app->frontdoor == PG_FRONTDOOR_ANTHROPIC)
        return pg_anthropic_error_body(arena, pg_anthropic_error_type(status),
                                       pg_str_c(message));
    pg_str_t type = status >= 500 ? PG_STR("server_error")
                                  : PG_STR("invalid_request_error");
    return pg_openai_error_body(arena, pg_str_c(message), type, PG_STR_NULL,
                                PG_STR_NULL);
}

pg_http_handler_t pg_dispatch_handler(pg_dispatch_t *d)
{
    return (pg_http_handler_t){.on_request = on_request,
                               .on_complete = on_complete,
                               .render_error = render_error,
                               .ud = d};
}
