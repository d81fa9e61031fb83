/* stream_common.c: the client SSE stream, keepalive pings, upstream-wait
 * accounting, header relay and log error text, shared by the OpenAI and
 * Anthropic frontdoors. Loop thread of the request. */
#include "frontdoor/stream_common.h"

#include "base/alloc.h"
#include "base/list.h"
#include "base/log.h"
#include "base/str.h"
#include "base/time.h"
#include "provider/call.h"

struct pg_fd_keepalive {
    uv_timer_t timer;
    pg_http_req_t *req; /* borrowed: the timer is closed before it goes */
    pg_str_t text;      /* a literal */
    uint64_t every;     /* ms */
    uint64_t last;      /* loop time of the last activity */
};

/* The timer runs on its own and looks at the time of the last activity
 * when it fires (nginx's way): an upstream that speaks every few
 * milliseconds costs no timer heap operation per event. */
static void on_keepalive(uv_timer_t *t)
{
    pg_fd_keepalive_t *ka = pg_container_of(t, pg_fd_keepalive_t, timer);
    uint64_t now = uv_now(t->loop);
    if (now - ka->last < ka->every) {
        uv_timer_start(t, on_keepalive, ka->every - (now - ka->last), 0);
        return;
    }
    /* SSE clients skip it; proxies on the way see traffic. */
    (void)pg_http_stream_write(ka->req, ka->text);
    ka->last = now;
    uv_timer_start(t, on_keepalive, ka->every, 0);
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
        (*ka)->every = every;
    }
    (*ka)->last = uv_now(ctx->loop);
    if (!uv_is_active((uv_handle_t *)&(*ka)->timer))
        uv_timer_start(&(*ka)->timer, on_keepalive, every, 0);
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

void pg_fd_note_usage(pg_fd_ctx_t *ctx, const pg_event_t *ev)
{
    if (ev->kind != PG_EV_MESSAGE_START && ev->kind != PG_EV_USAGE)
        return;
    if (ev->usage.input_tokens)
        ctx->input_tokens = ev->usage.input_tokens;
    if (ev->usage.output_tokens)
        ctx->output_tokens = ev->usage.output_tokens;
    if (ev->kind == PG_EV_MESSAGE_START && ev->id.n > 0)
        ctx->response_id = pg_arena_strdup(&ctx->req->arena, ev->id);
}

void pg_fd_set_error(pg_fd_ctx_t *ctx, pg_str_t msg)
{
    ctx->error = pg_arena_strdup(&ctx->req->arena, msg);
}

pg_str_t pg_fd_method_error(pg_fd_ctx_t *ctx, const char *allow)
{
    pg_http_req_t *req = ctx->req;
    pg_str_t msg = pg_arena_printf(
        &req->arena, "Method %.*s is not allowed for %.*s: use %s.",
        (int)req->method.n, req->method.p, (int)req->path.n, req->path.p,
        allow);
    if (msg.p == NULL)
        msg = PG_STR("method not allowed");
    pg_fd_set_error(ctx, msg);
    return msg;
}

void pg_fd_log_unmapped(pg_fd_ctx_t *ctx, const pg_request_t *q,
                        pg_str_t provider)
{
    if (q->nunmapped == 0 || !pg_log_enabled(ctx->log, PG_LOG_DEBUG))
        return;
    pg_buf_t b;
    pg_buf_init(&b, 4096);
    for (size_t i = 0; i < q->nunmapped; i++)
        if ((i > 0 && pg_buf_append_char(&b, ',') != PG_OK) ||
            pg_buf_append_str(&b, q->unmapped[i]) != PG_OK)
            break; /* a long list is cut at the bound */
    pg_log_field_t f[] = {
        PG_LF_S("request_id", pg_str_c(ctx->req->request_id)),
        PG_LF_S("provider", provider),
        PG_LF_S("fields", pg_buf_str(&b)),
    };
    pg_log_fields(ctx->log, PG_LOG_DEBUG,
                  "request fields not carried by the translation", f,
                  sizeof(f) / sizeof(f[0]));
    pg_buf_free(&b);
}

void pg_fd_stream_init(pg_fd_stream_t *s, pg_fd_ctx_t *ctx,
                       struct pg_provider_call *call, pg_str_t ping,
                       size_t max)
{
    s->ctx = ctx;
    s->call = call;
    s->ping = ping;
    pg_buf_init(&s->sse, max);
    s->ka = NULL;
    s->turn = NULL;
    s->started = false;
    s->waiting = false;
    s->paused = false;
    s->sent_first = false;
}

struct pg_fd_turn {
    uv_check_t check;
    pg_fd_stream_t *s; /* NULL once the stream is gone */
};

static void on_turn_closed(uv_handle_t *h)
{
    pg__free(pg_container_of((uv_check_t *)h, pg_fd_turn_t, check));
}

void pg_fd_stream_destroy(pg_fd_stream_t *s)
{
    pg_buf_free(&s->sse);
    pg_fd_keepalive_close(&s->ka);
    if (s->turn != NULL) {
        s->turn->s = NULL;
        uv_close((uv_handle_t *)&s->turn->check, on_turn_closed);
        s->turn = NULL;
    }
}

static void on_client_drained(void *ud)
{
    pg_fd_stream_t *s = ud;
    /* Only a call that was told to wait is resumed: a host provider may
     * not expect resume() otherwise. */
    if (!s->paused)
        return;
    s->paused = false;
    pg_call_resume(s->call);
}

void pg_fd_stream_rearm(pg_fd_stream_t *s)
{
    pg_fd_keepalive_arm(&s->ka, s->ctx, s->ping);
}

int pg_fd_stream_begin(pg_fd_stream_t *s)
{
    pg_http_header_t extra[17] = {
        {PG_STR("Cache-Control"), PG_STR("no-cache")},
    };
    size_t n = 1 + pg_fd_relay_headers(s->call->relay, s->call->nrelay,
                                       extra + 1, 16);
    s->started = true;
    pg_fd_note_upstream_wait(s->ctx, &s->waiting);
    pg_http_req_on_drain(s->ctx->req, on_client_drained, s);
    int rc = pg_http_stream_start(s->ctx->req, 200,
                                  PG_STR("text/event-stream"), extra, n);
    if (rc == PG_OK)
        pg_fd_stream_rearm(s);
    return rc;
}

int pg_fd_stream_flush(pg_fd_stream_t *s)
{
    if (s->turn != NULL)
        uv_check_stop(&s->turn->check);
    if (s->sse.n == 0)
        return PG_OK;
    /* The server copies the bytes into its queue, so the buffer is reused
     * for the next events. */
    int rc = pg_http_stream_write(s->ctx->req, pg_buf_str(&s->sse));
    pg_buf_reset(&s->sse);
    /* PG_ETOOBIG: a slow client; the data is queued, and the provider is
     * asked to pause until the queue drains. */
    if (rc == PG_ETOOBIG) {
        s->paused = true;
        return PG_PENDING;
    }
    return rc;
}

/* The loop turn's I/O is done: what its events framed goes out now. A
 * client that fell behind with this write is not told to the call here
 * (there is no emit to answer); its next event finds the queue full and
 * pauses it, so the overshoot is at most one turn's events. */
static void on_turn_end(uv_check_t *h)
{
    pg_fd_turn_t *t = pg_container_of(h, pg_fd_turn_t, check);
    uv_check_stop(h);
    if (t->s != NULL && t->s->sse.n > 0) {
        pg_fd_stream_t *s = t->s;
        int rc = pg_http_stream_write(s->ctx->req, pg_buf_str(&s->sse));
        pg_buf_reset(&s->sse);
        if (rc == PG_ETOOBIG)
            s->paused = true; /* the drain resumes it if it gets paused */
    }
}

int pg_fd_stream_push(pg_fd_stream_t *s)
{
    if (!s->sent_first || pg_http_queue_full(s->ctx->req) ||
        s->sse.n >= PG_FD_TURN_MAX) {
        s->sent_first = true;
        int rc = pg_fd_stream_flush(s);
        if (rc == PG_OK && pg_http_queue_full(s->ctx->req)) {
            s->paused = true;
            rc = PG_PENDING;
        }
        return rc;
    }
    if (s->turn == NULL) {
        s->turn = pg__malloc(sizeof(*s->turn));
        if (s->turn == NULL)
            return pg_fd_stream_flush(s);
        uv_check_init(s->ctx->loop, &s->turn->check);
        s->turn->s = s;
    }
    if (!uv_is_active((uv_handle_t *)&s->turn->check))
        uv_check_start(&s->turn->check, on_turn_end);
    return PG_OK;
}

void pg_fd_stream_end(pg_fd_stream_t *s)
{
    (void)pg_fd_stream_flush(s);
    pg_fd_keepalive_stop(s->ka);
    (void)pg_http_stream_end(s->ctx->req);
}

static void on_client_abort(void *ud)
{
    pg_fd_stream_t *s = ud;
    s->ctx->upstream_end_ns = pg_now_ns();
    pg_fd_set_error(s->ctx, PG_STR("client closed the connection"));
    pg_call_cancel(s->call);
}

void pg_fd_stream_watch_abort(pg_fd_stream_t *s)
{
    pg_http_req_on_abort(s->ctx->req, on_client_abort, s);
}
