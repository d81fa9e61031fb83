/* server.h: the HTTP/1.1 server of one worker: a listening socket on the
 * worker's loop, its connections, llhttp parsing, limits and timeouts, and
 * the response writer the handlers use.
 *
 * One request per connection is active at a time: bytes of a pipelined
 * next request stay buffered until the current response has ended, so
 * answers go out in order. Each request gets its own arena; the handler
 * answers with exactly one pg_http_respond(), or with pg_http_stream_start()
 * + pg_http_stream_write()* + pg_http_stream_end().
 *
 * The server answers by itself: 400 (malformed HTTP, then close), 408
 * (headers not complete within header_timeout, then close), 413 (body over
 * max_body_bytes), 431 (request line + headers over max_header_bytes), and
 * 100 Continue for "Expect: 100-continue". Their JSON bodies come from the
 * render_error hook so that they are in the dialect of the app the path
 * names.
 *
 * Threads: everything here runs on the worker's loop thread. */
#ifndef PG_HTTP_SERVER_H
#define PG_HTTP_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "base/arena.h"
#include "base/ids.h"
#include "base/list.h"
#include "polyglot/polyglot.h"

typedef struct pg_http_server pg_http_server_t;
typedef struct pg_http_req pg_http_req_t;

typedef struct pg_http_header {
    pg_str_t name;
    pg_str_t value;
} pg_http_header_t;

typedef struct pg_http_limits {
    uint64_t max_header_bytes;
    uint64_t max_body_bytes;
    uint64_t header_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t max_connections;
    /* Bytes queued for one client beyond which pg_http_stream_write
     * reports PG_ETOOBIG (the caller pauses its producer). */
    uint64_t max_queued_bytes;
} pg_http_limits_t;

typedef struct pg_http_handler {
    /* A complete request (headers and body) arrived. The handler must
     * eventually answer it (respond or stream), possibly later from the
     * loop. */
    void (*on_request)(void *ud, pg_http_req_t *req);
    /* The request ended: its response was fully handed to the socket, or
     * the client went away. For the access log and to release what the
     * handler attached to req. Called exactly once per request that
     * on_request saw, and also for requests the server answered itself. */
    void (*on_complete)(void *ud, pg_http_req_t *req);
    /* Writes the JSON error body for a server-generated error into arena
     * (path may be empty when the request line was not parsed) and returns
     * it; content type is application/json. NULL hook: a generic OpenAI
     * shaped body. */
    pg_str_t (*render_error)(void *ud, pg_arena_t *arena, pg_str_t path,
                             int status, const char *message);
    void *ud;
} pg_http_handler_t;

/* A parsed request. Every slice points into req->arena (or the server's
 * read buffer copy in the arena) and lives until on_complete returns. */
struct pg_http_req {
    pg_arena_t arena;
    pg_str_t method;           /* "POST" */
    pg_str_t path;             /* "/openai/v1/models", percent-decoding not applied */
    pg_str_t query;            /* after '?', without it; may be empty */
    const pg_http_header_t *headers;
    size_t nheaders;
    pg_str_t body;             /* de-chunked; NUL follows it in memory */
    char request_id[PG_REQUEST_ID_MAX + 1]; /* kept or generated */
    pg_str_t remote_addr;      /* "127.0.0.1" */
    uint64_t start_ns;         /* first byte of the request seen */
    /* Set by the handler: time spent waiting on upstreams before the
     * response starts. Every response head carries
     * x-polyglot-overhead-us = (now - start_ns - upstream_ns) / 1000. */
    uint64_t upstream_ns;
    int http_minor;            /* 0 or 1 */
    bool keep_alive;           /* the client asked for it (and we allow) */

    /* Response facts, filled by the server for on_complete. */
    int status;                /* 0 until a response started */
    uint64_t bytes_out;        /* response bytes, headers included */
    bool aborted;              /* client went away before the end */

    /* The handler's slot: whatever it attaches (frontdoor context). */
    void *handler_data;
};

/* Case-insensitive header lookup; PG_STR_NULL (p == NULL) if absent. */
pg_str_t pg_http_req_header(const pg_http_req_t *req, pg_str_t name);

/* Creates a server on loop, listening on the already bound socket fd
 * (the gateway binds all workers' sockets with SO_REUSEPORT before the
 * threads start). Takes ownership of fd. PG_OK or a negative pg_err with
 * a message in err (PG_ERRMSG_SIZE). Loop thread. */
int pg_http_server_new(uv_loop_t *loop, uv_os_sock_t fd,
                       const pg_http_limits_t *limits,
                       const pg_http_handler_t *handler,
                       pg_http_server_t **out, char *err);

/* Stops accepting and starts draining: idle keep-alive connections close
 * now, busy ones close after their current response (which is sent with
 * "Connection: close"). */
void pg_http_server_drain(pg_http_server_t *srv);
/* Number of open connections. */
size_t pg_http_server_connections(const pg_http_server_t *srv);
/* Closes everything now (in-flight requests see aborted = true) and calls
 * done_cb(ud) once every handle is closed and srv is freed. */
void pg_http_server_close(pg_http_server_t *srv, void (*done_cb)(void *ud),
                          void *ud);

/* ---- responses --------------------------------------------------------- */

/* A complete response. extra headers are added to Content-Type,
 * Content-Length, X-Request-ID, Date-less defaults. PG_OK, PG_ESTATE if
 * this request already answered, PG_ECANCELED if the client is gone. */
int pg_http_respond(pg_http_req_t *req, int status, pg_str_t content_type,
                    const pg_http_header_t *extra, size_t nextra,
                    pg_str_t body);

/* Starts a chunked streaming response ("text/event-stream" for SSE). */
int pg_http_stream_start(pg_http_req_t *req, int status, pg_str_t content_type,
                         const pg_http_header_t *extra, size_t nextra);
/* Queues data as one chunk. PG_OK, PG_ETOOBIG when more than
 * max_queued_bytes are waiting for the client (the data is still queued),
 * PG_ECANCELED when the client is gone. */
int pg_http_stream_write(pg_http_req_t *req, pg_str_t data);
/* Ends the chunked body. */
int pg_http_stream_end(pg_http_req_t *req);

/* Bytes queued for the client and not yet written. */
uint64_t pg_http_queued_bytes(const pg_http_req_t *req);
/* True while more than max_queued_bytes wait for the client (the last
 * pg_http_stream_write said PG_ETOOBIG and on_drain has not fired yet). */
bool pg_http_queue_full(const pg_http_req_t *req);

/* Registers a callback for when the client goes away before the response
 * ended (the handler cancels its work). After it returns, on_complete
 * follows and req must not be answered. */
void pg_http_req_on_abort(pg_http_req_t *req, void (*cb)(void *ud), void *ud);
/* Registers a callback for when the queued bytes drop to zero after a
 * PG_ETOOBIG (backpressure release). */
void pg_http_req_on_drain(pg_http_req_t *req, void (*cb)(void *ud), void *ud);

/* The reason phrase for a status ("Not Found"). */
const char *pg_http_status_text(int status);

#endif
