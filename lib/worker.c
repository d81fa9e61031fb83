/* worker.c: one gateway event loop. Owns the loop (unless the embedder's),
 * the HTTP server on it, the dispatcher, the stop async and the drain
 * timer. pg_worker_init and pg_worker_join run on the host's thread while
 * the loop is not running; everything else on the loop thread. */
#include "worker.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/arena.h"
#include "base/list.h"
#include "base/time.h"
#include "gateway_internal.h"
#include "provider/http_provider.h"
#include "upstream/upstream.h"

#define DRAIN_POLL_MS 10

static void on_handle_closed(uv_handle_t *h);

static pg_http_limits_t limits_from(const pg_cfg_server_t *s)
{
    return (pg_http_limits_t){
        .max_header_bytes = s->max_header_bytes,
        .max_body_bytes = s->max_body_bytes,
        .header_timeout_ms = s->header_timeout_ms,
        .idle_timeout_ms = s->idle_timeout_ms,
        .max_connections = s->max_connections,
        /* Bound what a slow client can make us hold per stream. */
        .max_queued_bytes = 1024 * 1024,
    };
}

static void on_closed_noop(void *ud) { (void)ud; }

static bool config_uses_http(const pg_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        if (pg_http_provider_is(cfg->providers[i].vt))
            return true;
    }
    return false;
}

static void on_log_flush(uv_prepare_t *p)
{
    (void)p;
    pg_log_batch_flush();
}

static void on_stop_async(uv_async_t *a)
{
    pg_worker_t *w = pg_container_of(a, pg_worker_t, stop_async);
    pg_worker_begin_drain(w, atomic_load(&w->drain_timeout_ms));
}

int pg_worker_init(pg_worker_t *w, struct pg_gateway *gw, int index,
                   uv_loop_t *loop, uv_os_sock_t fd)
{
    int rc;
    memset(w, 0, sizeof(*w));
    w->gw = gw;
    w->index = index;
    w->fd = fd;
    atomic_init(&w->stopped, false);
    atomic_init(&w->drain_timeout_ms, 0);
    if (loop == NULL) {
        if ((rc = uv_loop_init(&w->own_loop)) != 0) {
            pg__failf(gw, "worker %d: uv_loop_init: %s", index, uv_err_name(rc));
            return PG_ESYS;
        }
        w->loop = &w->own_loop;
        w->own_thread = true;
    } else {
        w->loop = loop;
    }
    pg_dispatch_init(&w->dispatch, w->loop, &gw->logger, gw->config);
    pg_http_limits_t limits = limits_from(&gw->config->server);
    w->busy_poll_ns = gw->config->server.busy_poll_ms * 1000000u;
    pg_http_handler_t handler = pg_dispatch_handler(&w->dispatch);
    char err[PG_ERRMSG_SIZE] = "";
    rc = pg_http_server_new(w->loop, fd, &limits, &handler, &w->server, err);
    w->fd = -1; /* the server owns it now, failed or not */
    if (rc != PG_OK) {
        w->server = NULL;
        pg__failf(gw, "worker %d: %s", index, err);
        goto fail;
    }
    /* libcurl (and the TLS library it loads) only for configs that reach
     * a provider over HTTP: a mock-only gateway stays small. */
    if (config_uses_http(gw->config) &&
        (rc = pg_upstream_new(w->loop, &w->upstream)) != PG_OK) {
        w->upstream = NULL;
        pg__failf(gw, "worker %d: upstream client: %s", index,
                  pg_strerror(rc));
        goto fail;
    }
    w->dispatch.upstream = w->upstream;
    uv_async_init(w->loop, &w->stop_async, on_stop_async);
    uv_timer_init(w->loop, &w->drain_timer);
    uv_prepare_init(w->loop, &w->log_flush);
    if (w->own_thread) {
        uv_prepare_start(&w->log_flush, on_log_flush);
        uv_unref((uv_handle_t *)&w->log_flush);
    }
    return PG_OK;
fail:
    /* Handles may exist already (the server's): close them, and on our
     * own loop run it until they are gone. On a host loop they finish
     * closing when the host runs it (the gateway keeps the worker array
     * alive for that: see pg_gateway_start). */
    if (w->server != NULL)
        pg_http_server_close(w->server, on_closed_noop, NULL);
    w->server = NULL;
    if (w->own_thread) {
        uv_run(&w->own_loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->own_loop);
    }
    pg_dispatch_destroy(&w->dispatch);
    return rc;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* server.busy_poll (HAProxy's busy-polling, bounded by a window): after a
 * turn of the loop, the worker looks for the next event without sleeping
 * for up to window_ns before it blocks in epoll again. Inside a virtual
 * machine a vCPU that sleeps goes back to the hypervisor and waking it
 * costs tens of microseconds; a proxied request waits for two such
 * wake-ups (the client's request, the upstream's answer). The price is
 * CPU: a worker spins whenever its events come closer together than the
 * window. Timers keep their times: the spin ends when one is due. */
static void run_busy_polling(uv_loop_t *loop, uint64_t window_ns)
{
    int fd = uv_backend_fd(loop);
    while (uv_run(loop, UV_RUN_ONCE) != 0) {
        int timeout_ms = uv_backend_timeout(loop);
        if (timeout_ms == 0)
            continue; /* something to run already */
        uint64_t now = uv_hrtime();
        uint64_t until = now + window_ns;
        if (timeout_ms > 0) {
            /* The loop's clock (uv_now) never runs ahead of uv_hrtime, so
             * this ends the spin at or before the timer's due time. */
            uint64_t due = (uv_now(loop) + (uint64_t)timeout_ms) * 1000000u;
            if (due < until)
                until = due;
        }
        struct epoll_event ev;
        while (now < until && epoll_wait(fd, &ev, 1, 0) == 0) {
            cpu_relax();
            now = uv_hrtime();
        }
    }
}

static void worker_thread_main(void *arg)
{
    pg_worker_t *w = arg;
    /* A peer that closes while we write must give EPIPE, not kill the
     * host process: SIGPIPE is blocked on the gateway's own threads. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    /* Access log lines collect per loop turn instead of one write(2)
     * each (on_log_flush). Only on our own threads: a host's loop thread
     * keeps its logging as it is. The same for the arena chunk cache. */
    pg_log_batch_enable();
    pg_arena_cache_enable();
    if (w->busy_poll_ns > 0)
        run_busy_polling(w->loop, w->busy_poll_ns);
    else
        uv_run(w->loop, UV_RUN_DEFAULT);
    pg_arena_cache_disable();
    pg_log_batch_disable();
}

int pg_worker_run_thread(pg_worker_t *w)
{
    int rc = uv_thread_create(&w->thread, worker_thread_main, w);
    if (rc != 0) {
        pg__failf(w->gw, "worker %d: uv_thread_create: %s", w->index,
                  uv_err_name(rc));
        return PG_ESYS;
    }
    w->thread_started = true;
    return PG_OK;
}

void pg_worker_stop(pg_worker_t *w, int timeout_ms)
{
    atomic_store(&w->drain_timeout_ms, timeout_ms);
    uv_async_send(&w->stop_async);
}

static void finish_close(pg_worker_t *w)
{
    /* The server is gone: close our own handles; the loop then has
     * nothing left and uv_run returns. */
    w->pending_closes = 3;
    uv_close((uv_handle_t *)&w->stop_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->log_flush, on_handle_closed);
}

static void on_upstream_closed(void *ud)
{
    pg_worker_t *w = ud;
    w->upstream = NULL;
    finish_close(w);
}

static void on_server_closed(void *ud)
{
    pg_worker_t *w = ud;
    w->server = NULL;
    /* Requests are gone, so are their transfers; now the client itself. */
    if (w->upstream != NULL)
        pg_upstream_close(w->upstream, on_upstream_closed, w);
    else
        finish_close(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    pg_worker_t *w;
    if (h->type == UV_ASYNC)
        w = pg_container_of((uv_async_t *)h, pg_worker_t, stop_async);
    else if (h->type == UV_TIMER)
        w = pg_container_of((uv_timer_t *)h, pg_worker_t, drain_timer);
    else
        w = pg_container_of((uv_prepare_t *)h, pg_worker_t, log_flush);
    if (--w->pending_closes == 0) {
        pg_dispatch_destroy(&w->dispatch);
        atomic_store(&w->stopped, true);
    }
}

static void on_drain_tick(uv_timer_t *t)
{
    pg_worker_t *w = pg_container_of(t, pg_worker_t, drain_timer);
    if (w->server == NULL)
        return;
    bool idle = pg_http_server_connections(w->server) == 0;
    if (idle || pg_now_ns() >= w->drain_deadline_ns) {
        uv_timer_stop(&w->drain_timer);
        if (!idle)
            pg_logf(&w->gw->logger, PG_LOG_WARN,
                    "worker %d: shutdown timeout, closing %zu connections",
                    w->index, pg_http_server_connections(w->server));
        pg_http_server_t *srv = w->server;
        pg_http_server_close(srv, on_server_closed, w);
    }
}

void pg_worker_begin_drain(pg_worker_t *w, int timeout_ms)
{
    if (w->draining)
        return;
    w->draining = true;
    if (timeout_ms < 0)
        timeout_ms = 0;
    w->drain_deadline_ns = pg_now_ns() + (uint64_t)timeout_ms * 1000000u;
    pg_http_server_drain(w->server);
    uv_timer_start(&w->drain_timer, on_drain_tick, 0, DRAIN_POLL_MS);
}

int pg_worker_join(pg_worker_t *w)
{
    if (!w->own_thread)
        return PG_OK;
    if (w->thread_started)
        uv_thread_join(&w->thread);
    else
        uv_run(w->loop, UV_RUN_DEFAULT); /* start failed: close it here */
    int rc = uv_loop_close(&w->own_loop);
    if (rc != 0) {
        /* A handle we never closed: a bug, reported to the caller so that
         * every test that shuts a gateway down checks for it. */
        pg__failf(w->gw, "worker %d: loop closed with handles left (%s)",
                  w->index, uv_err_name(rc));
        pg_logf(&w->gw->logger, PG_LOG_ERROR, "%s", w->gw->errmsg);
        return PG_ESTATE;
    }
    return PG_OK;
}
