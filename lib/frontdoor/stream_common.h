/* stream_common.h: what every dialect's frontdoor does the same way
 * around a provider call: the client's SSE stream (head, batched writes,
 * pause/resume of the upstream, keepalive), the upstream-wait accounting
 * behind x-polyglot-overhead-us, relaying upstream headers, and the error
 * text for the access log. Loop thread of the request. */
#ifndef PG_FRONTDOOR_STREAM_COMMON_H
#define PG_FRONTDOOR_STREAM_COMMON_H

#include <stdbool.h>

#include "base/buf.h"
#include "frontdoor/frontdoor.h"
#include "polyglot/provider.h"

struct pg_provider_call;

/* A keepalive: while the upstream is silent, text is written to the
 * client's stream every server.sse_keepalive. Heap-allocated: its timer
 * outlives the request arena until the close callback. */
typedef struct pg_fd_keepalive pg_fd_keepalive_t;

/* (Re)arms *ka (created on first use) to write text, a literal that lives
 * forever, after server.sse_keepalive of silence. Without memory or with
 * sse_keepalive 0 there are no pings; the stream itself still works. */
void pg_fd_keepalive_arm(pg_fd_keepalive_t **ka, pg_fd_ctx_t *ctx,
                         pg_str_t text);
/* Stops the pings (the stream ended). NULL is a no-op. */
void pg_fd_keepalive_stop(pg_fd_keepalive_t *ka);
/* Closes and frees *ka (from the request arena's cleanup); sets NULL. */
void pg_fd_keepalive_close(pg_fd_keepalive_t **ka);

/* The client's response is about to start: the time since the provider
 * call began was spent upstream, not in the gateway. Once per request
 * (*waiting goes false). */
void pg_fd_note_upstream_wait(pg_fd_ctx_t *ctx, bool *waiting);

/* Upstream headers to relay (Retry-After, rate limits) as HTTP headers;
 * returns how many were written to out (at most max). */
size_t pg_fd_relay_headers(const pg_kv_t *kv, size_t n, pg_http_header_t *out,
                           size_t max);

/* Notes usage (MESSAGE_START, USAGE) and the response id (MESSAGE_START)
 * of a provider event for the access log. */
void pg_fd_note_usage(pg_fd_ctx_t *ctx, const pg_event_t *ev);

/* The short error text of the access log line. */
void pg_fd_set_error(pg_fd_ctx_t *ctx, pg_str_t msg);

/* The message of a 405 for the request (allow: the method its endpoint
 * takes), in the request arena; also the log's error text. */
pg_str_t pg_fd_method_error(pg_fd_ctx_t *ctx, const char *allow);

/* A translated hop to provider: at debug level, one log line naming the
 * request's top-level fields the client's decoder could not map to the
 * canonical model (q->unmapped), which that provider does not get. */
void pg_fd_log_unmapped(pg_fd_ctx_t *ctx, const pg_request_t *q,
                        pg_str_t provider);

/* End-of-loop-turn flush of a stream (a uv_check_t). Heap-allocated, like
 * the keepalive, because its handle outlives the request arena. */
typedef struct pg_fd_turn pg_fd_turn_t;

/* The client's SSE stream for one provider call, embedded in a
 * frontdoor's per-request state (request arena). Events are framed into
 * `sse` and written in one go: by pg_fd_stream_flush at once, or by
 * pg_fd_stream_push at the end of the loop turn, so that the events one
 * upstream read produced (often dozens) cost one write to the client
 * instead of one each. A client that reads slower than the upstream sends
 * pauses the call until its queue drains. */
typedef struct pg_fd_stream {
    pg_fd_ctx_t *ctx;
    struct pg_provider_call *call; /* resumed when the client drained */
    pg_str_t ping;                 /* keepalive text, a literal */
    pg_buf_t sse;                  /* owned: framed events not yet written */
    pg_fd_keepalive_t *ka;         /* owned */
    pg_fd_turn_t *turn;            /* owned; NULL until the first push */
    bool started;                  /* head sent */
    bool waiting;                  /* upstream time is still being counted */
    bool paused;                   /* the call was told PG_PENDING */
    bool sent_first;               /* the first event went out on its own */
} pg_fd_stream_t;

/* Sets s up (nothing allocated yet); max caps the framed bytes. The owner
 * calls pg_fd_stream_destroy from its arena cleanup. */
void pg_fd_stream_init(pg_fd_stream_t *s, pg_fd_ctx_t *ctx,
                       struct pg_provider_call *call, pg_str_t ping,
                       size_t max);
void pg_fd_stream_destroy(pg_fd_stream_t *s);
/* Sends the head: 200 text/event-stream with Cache-Control: no-cache and
 * the headers the provider relayed; starts the keepalive. */
int pg_fd_stream_begin(pg_fd_stream_t *s);
/* Writes what is framed in s->sse and empties it. PG_PENDING when the
 * client is behind (the data is queued; the caller pauses the upstream). */
int pg_fd_stream_flush(pg_fd_stream_t *s);
/* The events just framed in s->sse may wait for the end of this loop
 * turn, to go out with the others of the same turn in one write. Writes
 * at once the stream's first event (the client's time to first token
 * does not wait for the rest of a burst), when the client is already
 * behind (then PG_PENDING: pause the upstream), when PG_FD_TURN_MAX bytes
 * are waiting, or without memory for the turn handle. PG_OK otherwise. */
#define PG_FD_TURN_MAX (32 * 1024)
int pg_fd_stream_push(pg_fd_stream_t *s);
/* The upstream spoke: the keepalive waits a full period again. */
void pg_fd_stream_rearm(pg_fd_stream_t *s);
/* From now on a client that goes away cancels s->call (and the log says
 * so). */
void pg_fd_stream_watch_abort(pg_fd_stream_t *s);
/* Ends the stream (what waits for the turn's end written first,
 * keepalive stopped, last chunk written). */
void pg_fd_stream_end(pg_fd_stream_t *s);

#endif
