/* worker.h: one event loop of the gateway: its HTTP server, its request
 * dispatcher, and the cross-thread stop signal. A worker runs either on
 * its own thread and loop, or on the embedder's loop. Created and joined
 * by gateway.c on the host's thread; everything else on the loop thread. */
#ifndef PG_WORKER_H
#define PG_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "frontdoor/dispatch.h"
#include "http/server.h"

struct pg_gateway;

typedef struct pg_worker {
    struct pg_gateway *gw;          /* borrowed: the owner */
    int index;
    uv_loop_t own_loop;             /* used when loop == &own_loop */
    uv_loop_t *loop;
    bool own_thread;
    bool thread_started;
    uv_thread_t thread;
    uv_async_t stop_async;          /* host thread -> loop: start draining */
    uv_timer_t drain_timer;         /* polls for the end of the drain */
    uv_prepare_t log_flush;         /* flushes batched log lines each turn */
    uv_os_sock_t fd;                /* bound listener; owned until the server takes it */
    pg_http_server_t *server;
    struct pg_upstream *upstream;   /* the worker's client to providers */
    pg_dispatch_t dispatch;
    uint64_t drain_deadline_ns;
    uint64_t busy_poll_ns;          /* server.busy_poll; 0: sleep in epoll */
    atomic_int drain_timeout_ms;    /* set by the host thread before the async */
    int pending_closes;             /* handles still closing */
    atomic_bool stopped;            /* every handle of this worker is closed */
    bool draining;
} pg_worker_t;

/* Sets the worker up on loop (its own when loop is NULL) and registers
 * its handles. fd is the bound socket (taken). PG_OK or a negative error
 * with gw's last error set. Host thread, before the loop runs. */
int pg_worker_init(pg_worker_t *w, struct pg_gateway *gw, int index,
                   uv_loop_t *loop, uv_os_sock_t fd);
/* Starts the worker's own thread running its loop. */
int pg_worker_run_thread(pg_worker_t *w);
/* Asks the worker to drain within timeout_ms, then close. Any thread. */
void pg_worker_stop(pg_worker_t *w, int timeout_ms);
/* Begins the drain; loop thread only (host-loop mode calls it directly). */
void pg_worker_begin_drain(pg_worker_t *w, int timeout_ms);
/* Joins the thread and closes the worker's own loop. Host thread, after
 * pg_worker_stop. PG_ESTATE (and gw's last error) when the loop still had
 * handles: every handle must be closed by then. */
int pg_worker_join(pg_worker_t *w);

#endif
