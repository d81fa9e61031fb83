/* conn.h: the internals shared by the files of lib/http: the server and
 * connection structs, and the functions each file exports to the others
 * (pg__http_*). Nothing outside lib/http includes this.
 *
 * Ownership: the server owns its connections (an intrusive list) and the
 * uv_idle_t that settles them on the next loop turn; a connection owns its
 * uv_tcp_t and uv_timer_t and is freed only after both close callbacks
 * ran. The request being served is embedded in its connection (one active
 * request per connection), so serving a request allocates nothing but its
 * arena's chunks.
 *
 * Threads: the loop thread of the server, only. */
#ifndef PG_HTTP_CONN_H
#define PG_HTTP_CONN_H

#include <llhttp.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/list.h"
#include "http/server.h"

/* Unparsed input kept while a request is active; above this we stop
 * reading so a pipelining client cannot make us buffer without limit. */
#define PG_HTTP_PENDING_MAX (64u * 1024u)
/* Size of the read buffer the server shares between its connections. */
#define PG_HTTP_READ_BUF (64u * 1024u)
/* How long a closing connection keeps reading (and discarding) after its
 * last response, so unread request bytes do not turn our FIN into a RST
 * that would destroy the response in flight. */
#define PG_HTTP_LINGER_MS 2000u

typedef enum conn_state {
    CONN_IDLE,     /* between requests: no byte of the next one yet */
    CONN_READING,  /* a request began: headers or body in progress */
    CONN_COMPLETE, /* parsed, not yet handed to the handler */
    CONN_ACTIVE,   /* the handler (or the server's error) answers it */
    CONN_CLOSING   /* lingering or closing; reads are discarded */
} conn_state_t;

typedef enum resp_state {
    RESP_NONE,      /* nothing sent yet */
    RESP_STREAMING, /* head sent, chunks follow */
    RESP_DONE,      /* the whole response is queued */
    RESP_ABORTED    /* the client went away */
} resp_state_t;

typedef enum timer_kind {
    TIMER_NONE,
    TIMER_HEADER, /* headers must complete: 408 */
    TIMER_BODY,   /* body inactivity (idle_timeout): 408 */
    TIMER_IDLE,   /* keep-alive idle: close silently */
    TIMER_LINGER  /* discard input, then close */
} timer_kind_t;

/* Header parsing state inside the hdr buffer (see parse.c). */
typedef enum hdr_state { HDR_NONE, HDR_FIELD, HDR_VALUE } hdr_state_t;

struct pg_http_server {
    uv_loop_t *loop;             /* borrowed: the worker's loop */
    uv_tcp_t listener;
    pg_http_limits_t limits;     /* zero fields replaced by defaults */
    pg_http_handler_t handler;   /* copied */
    pg_list_t conns;             /* struct pg_http_conn.node */
    size_t nconns;
    char *rbuf;                  /* owned: shared read buffer */
    /* Connections owed a settle on the next loop turn (struct
     * pg_http_conn.settle_node), and the idle handle that runs them: active
     * only while the queue is not empty, closed after the last
     * connection (see "deferred settle" in conn.c). */
    pg_list_t settle_q;
    uv_idle_t settle_idle;
    bool listener_open;          /* uv_close not yet called on listener */
    bool listener_closed;        /* its close callback ran */
    bool draining;
    bool closing;
    void (*done_cb)(void *ud);
    void *done_ud;
};

struct pg_http_conn {
    pg_http_server_t *srv; /* borrowed: outlives the connection */
    pg_list_t node;
    pg_list_t settle_node; /* on srv->settle_q while a settle is owed */
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown;
    int pending_closes; /* close callbacks still to come */
    bool handles_closed; /* uv_close called */
    bool reading;
    bool pumping;        /* pump() is on the stack */
    int depth;           /* handler calls on the stack for this conn */

    conn_state_t state;
    /* The deadline that counts (see "timers" in conn.c): its kind
     * (TIMER_NONE: none) and its loop time in uv_now() ms. The uv timer
     * may be armed earlier than that (timer_armed_at), never later. */
    timer_kind_t timer_kind;
    uint64_t timer_due;
    uint64_t timer_armed_at; /* when the uv timer fires, if timer_armed */
    bool timer_armed;
    bool timer_hold;     /* in on_read: deadlines are armed when it ends */
    bool first;          /* no request seen yet on this connection */

    llhttp_t parser;
    pg_buf_t pending;    /* received, not yet parsed */
    size_t pending_off;  /* parsed prefix of pending */

    /* The request being parsed or served. */
    pg_http_req_t req;
    bool req_live;       /* req initialised; on_complete still owed */
    bool dispatched;     /* on_request saw it */
    bool server_made;    /* the server answers it (4xx of its own) */
    pg_buf_t hdr;        /* url, then (u32 len, bytes) per header name/value */
    size_t url_len;
    hdr_state_t hdr_state;
    size_t hdr_len_off;  /* where the current span's length goes */
    size_t nheaders;
    uint64_t hdr_bytes;  /* request line + headers seen, approximated */
    uint64_t raw_hdr_bytes; /* bytes fed while headers were incomplete */
    bool headers_done;
    bool paused;         /* llhttp paused at a message end */
    pg_buf_t body;
    int err_status;      /* set by a parse callback that rejects */
    const char *err_msg;

    /* Response. */
    resp_state_t resp;
    bool chunked;
    bool close_after;    /* Connection: close was (or will be) sent */
    bool head_only;      /* HEAD: no body bytes */
    bool need_finish;    /* response done; finish when writes complete */
    bool io_error;       /* a write failed or the peer went away */
    bool want_drain;     /* PG_ETOOBIG was reported */
    uint64_t queued;     /* bytes handed to uv_write, not yet written */
    void (*abort_cb)(void *ud);
    void *abort_ud;
    void (*drain_cb)(void *ud);
    void *drain_ud;

    char remote[64];
};

/* ---- conn.c ------------------------------------------------------------ */
/* Sets up a connection accepted on srv (already uv_accept'ed into tcp) and
 * starts reading. */
void pg__http_conn_start(struct pg_http_conn *c);
/* Closes both handles now; freed after the close callbacks. */
void pg__http_conn_close(struct pg_http_conn *c);
/* Aborts the active request (on_abort, on_complete) and closes; deferred
 * while a handler frame of this conn is on the stack. */
void pg__http_conn_abort(struct pg_http_conn *c);
/* Called by API functions that may end the request. With a handler frame
 * of this conn on the stack, nothing: that frame settles when it returns.
 * Otherwise (the handler answers from one of its own callbacks) the
 * connection joins the server's settle queue and is settled on the next
 * loop turn, outside the caller's frame. */
void pg__http_conn_kick(struct pg_http_conn *c);
/* Answers the current (possibly not yet parsed) request with a server-made
 * error, then closes. */
void pg__http_conn_error(struct pg_http_conn *c, int status, const char *msg);
/* Begins a request: arena, start time, cleared fields. */
void pg__http_req_begin(struct pg_http_conn *c);
/* Sets the connection's one deadline to kind, ms from now, replacing the
 * previous one; the uv timer moves only when the new deadline is earlier
 * than the one it is armed for (inside the read callback, once that
 * returns). */
void pg__http_conn_timer(struct pg_http_conn *c, timer_kind_t kind,
                         uint64_t ms);
/* Clears the deadline; the uv timer stays armed and, when it fires, finds
 * nothing due. */
void pg__http_conn_timer_stop(struct pg_http_conn *c);
/* Writes bufs: uv_try_write first, the rest copied into one uv_write.
 * PG_OK or PG_ECANCELED (the connection failed; abort follows). */
int pg__http_conn_write(struct pg_http_conn *c, const uv_buf_t *bufs,
                        unsigned nbufs);

/* ---- parse.c ----------------------------------------------------------- */
typedef enum exec_outcome {
    EXEC_MORE,     /* everything consumed; the request is not complete */
    EXEC_COMPLETE, /* a request is complete; *consumed bytes were used */
    EXEC_ERROR     /* malformed or over a limit: err_status is set */
} exec_outcome_t;

void pg__http_parser_init(struct pg_http_conn *c);
/* Feeds p[0..n) to the parser. */
exec_outcome_t pg__http_execute(struct pg_http_conn *c, const char *p,
                                size_t n, size_t *consumed);

/* ---- response.c -------------------------------------------------------- */
/* Writes a complete response regardless of the request's API state (used
 * for server-made errors as well). */
int pg__http_respond(struct pg_http_conn *c, int status, pg_str_t content_type,
                     const pg_http_header_t *extra, size_t nextra,
                     pg_str_t body);

/* ---- server.c ---------------------------------------------------------- */
/* A connection's handles are closed and it is about to be freed. */
void pg__http_server_conn_gone(pg_http_server_t *srv, struct pg_http_conn *c);

static inline struct pg_http_conn *pg__http_conn_of(pg_http_req_t *req)
{
    return pg_container_of(req, struct pg_http_conn, req);
}

#endif
