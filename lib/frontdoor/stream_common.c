/* stream_common.c: keepalive pings, upstream-wait accounting, header
 * relay and log error text, shared by the OpenAI and Anthropic
 * frontdoors. Loop thread of the request. */
#include "frontdoor/stream_common.h"

#include "base/alloc.h"
#include "base/list.h"
#include "base/time.h"

struct pg_fd_keepalive {
    uv_timer_t timer;
    pg_http_req_t *req; /* borrowed: the timer is closed before it goes */
    pg_str_t text;      /* a literal */
};

static void on_keepalive(uv_timer_t *t)
{
    pg_fd_keepalive_t *ka = pg_container_of(t, pg_fd_keepalive_t, timer);
    /* SSE clients skip it; proxies on the way see traffic. */
    (void)pg_http_stream_write(ka->req, ka->text);
}

void pg_fd_keepalive_arm(pg_fd_keepalive_t **ka, pg_fd_ctx_t *ctx,
                         pg_str_t text)
{
    uint64_t every = ctx->cfg->server.sse_keepalive_ms;
    if (every == 0)
        return;
    if (*ka == NULL) {
        *ka = pg__malloc(sizeof(**ka));
        if (*ka == NULL)
            return;
        uv_timer_init(ctx->loop, &(*ka)->timer);
        (*ka)->req = ctx->req;
        (*ka)->text = text;
    }
    uv_timer_start(&(*ka)->timer, on_keepalive, every, every);
}

void pg_fd_keepalive_stop(pg_fd_keepalive_t *ka)
{
    if (ka != NULL)
        uv_timer_stop(&ka->timer);
}

static void on_keepalive_closed(uv_handle_t *h)
{
    pg__free(pg_container_of((uv_timer_t *)h, pg_fd_keepalive_t, timer));
}

void pg_fd_keepalive_close(pg_fd_keepalive_t **ka)
{
    if (*ka == NULL)
        return;
    uv_close((uv_handle_t *)&(*ka)->timer, on_keepalive_closed);
    *ka = NULL;
}

void pg_fd_note_upstream_wait(pg_fd_ctx_t *ctx, bool *waiting)
{
    if (!*waiting)
        return;
    *waiting = false;
    ctx->req->upstream_ns = pg_now_ns() - ctx->upstream_start_ns;
}

size_t pg_fd_relay_headers(const pg_kv_t *kv, size_t n, pg_http_header_t *out,
                           size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k < max; i++)
        out[k++] = (pg_http_header_t){kv[i].key, kv[i].value};
    return k;
}

void pg_fd_set_error(pg_fd_ctx_t *ctx, pg_str_t msg)
{
    ctx->error = pg_arena_strdup(&ctx->req->arena, msg);
}
