/* stream_common.h: what every dialect's frontdoor does the same way
 * around a provider call: the SSE keepalive timer, the upstream-wait
 * accounting behind x-polyglot-overhead-us, relaying upstream headers,
 * and the error text for the access log. Loop thread of the request. */
#ifndef PG_FRONTDOOR_STREAM_COMMON_H
#define PG_FRONTDOOR_STREAM_COMMON_H

#include <stdbool.h>

#include "frontdoor/frontdoor.h"

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

/* The short error text of the access log line. */
void pg_fd_set_error(pg_fd_ctx_t *ctx, pg_str_t msg);

#endif
