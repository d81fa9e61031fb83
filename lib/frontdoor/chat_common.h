/* chat_common.h: the chat endpoint both dialects run alike (OpenAI POST
 * /v1/chat/completions, Anthropic POST /v1/messages). A dialect's
 * per-request state embeds a pg_fd_chat_t as its first member; this module
 * runs the provider call for it through the failover chain (set-up,
 * attempts, events, done), answers as passthrough (the client's bytes out,
 * the upstream's back) or through the canonical model (streamed as events
 * arrive, or accumulated into one body), and turns every failure into the
 * dialect's error. The dialect supplies what differs through a const
 * pg_fd_chat_ops_t: its stream and response encoders, its error shapes and
 * status mapping, its look at a raw answer, its late decode.
 *
 * The state lives in the request arena; the heap-backed buffers it holds
 * are released by an arena cleanup. The call is canceled when the client
 * goes away, and the response is only ended from the provider's done (or
 * at start failure), so the arena never goes away under a running call.
 * Loop thread of the request. */
#ifndef PG_FRONTDOOR_CHAT_COMMON_H
#define PG_FRONTDOOR_CHAT_COMMON_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "canon/response.h"
#include "frontdoor/frontdoor.h"
#include "frontdoor/passthrough.h"
#include "frontdoor/stream_common.h"
#include "provider/call.h"
#include "routing/routing.h"

typedef struct pg_fd_chat pg_fd_chat_t;

/* What a dialect's chat endpoint does its own way. Every slot is set. */
typedef struct pg_fd_chat_ops {
    pg_raw_kind_t raw_kind; /* the client's bodies a provider may take */
    pg_str_t ping;          /* the stream's keepalive text, a literal */
    size_t max_out;         /* largest event or body built */
    pg_str_t own_type;      /* error type of the gateway's own failures */
    pg_str_t error_event;   /* SSE event name of an error framed by hand */
    /* The status and error type the client sees for a failure: err's
     * status (0: none known) and type (may be empty); upstream is the
     * upstream's own status (pg_provider_call.upstream_status), 0 when
     * the failure was not an upstream answer. */
    void (*client_error)(const pg_provider_error_t *err, int upstream,
                         int *status, pg_str_t *type);
    /* Answers req with an error body in the dialect's shape; param (the
     * field at fault) may be empty, extra/nextra are relayed headers. */
    void (*respond_error)(pg_http_req_t *req, int status, pg_str_t type,
                          pg_str_t msg, pg_str_t param,
                          const pg_http_header_t *extra, size_t nextra);
    /* The error payload of a stream whose encoder already ended. */
    int (*error_json)(pg_buf_t *b, pg_str_t type, pg_str_t msg);
    /* The dialect's part of the set-up, before anything can fail: its id,
     * its stream encoder, the client headers it forwards (c->fwd). */
    void (*begin)(pg_fd_chat_t *c, const pg_route_t *rt);
    /* Releases what begin allocated (from the arena cleanup). */
    void (*destroy)(pg_fd_chat_t *c);
    /* From now on the stream names model (borrowed for the request). */
    void (*name_model)(pg_fd_chat_t *c, pg_str_t model);
    /* One event through the stream encoder, framed into c->out.sse. */
    int (*feed)(pg_fd_chat_t *c, const pg_event_t *ev);
    /* A translated stream's upstream ended without error: true when the
     * encoder reached its end (what follows it is written, OpenAI's
     * [DONE]) or failed already; false: the stream ended early. */
    bool (*stream_end)(pg_fd_chat_t *c);
    /* The accumulated answer (c->acc, finished) as the dialect's body,
     * naming model. PG_EPARSE: the answer cannot be said in the dialect
     * (Anthropic: tool arguments that are not an object). */
    int (*encode)(pg_fd_chat_t *c, pg_buf_t *b, pg_str_t model);
    /* Passthrough: whether the client's body root may go as it is (the
     * dialect's light check). Sets c->req.stream (OpenAI also
     * include_usage, and the edit that asks usage of a stream in
     * c->client.edits). */
    bool (*raw_check)(pg_fd_chat_t *c, const cJSON *root);
    /* One event of a passthrough stream (data set): notes usage and id
     * for the log; false holds it back from the client. */
    bool (*raw_event)(pg_fd_chat_t *c, pg_str_t event, pg_str_t data);
    /* A passthrough non-stream body j (NULL: not JSON): whether it is an
     * answer; notes its usage and id for the log when it is. */
    bool (*raw_answer)(pg_fd_chat_t *c, const cJSON *j);
    /* Decodes the client's body (c->client.root) into *q, for a provider
     * of the chain that needs translation after passthrough so far. PG_OK,
     * or an error that skips that provider. */
    int (*decode)(pg_fd_chat_t *c, pg_request_t *q);
} pg_fd_chat_ops_t;

/* One chat request's call, the first member of a dialect's state (request
 * arena, zeroed). The dialect sets ops before anything else. */
struct pg_fd_chat {
    const pg_fd_chat_ops_t *ops;  /* borrowed: static */
    pg_fd_ctx_t *ctx;
    struct pg_provider_call call;
    pg_request_t req;          /* the client's, with the routed model */
    bool stream;
    bool broken;               /* answered already, or the order broke */
    pg_canon_response_t acc;   /* non-stream */
    pg_fd_stream_t out;        /* the client's stream (owned buffers) */
    const pg_kv_t *fwd;        /* client headers providers get (begin) */
    size_t nfwd;
    /* Passthrough: the body to forward first; the client's side (its
     * parsed body and edits; zero when it was decoded up front); whether
     * the running provider takes the raw bytes. */
    pg_str_t raw_body;
    pg_fd_raw_t client;
    bool raw;
    bool answered;             /* raw non-stream: the body went out */
};

/* Passthrough: a request whose routed provider speaks the client's
 * dialect goes out as the client's bytes (only the model rewritten, and
 * the dialect's edits), and the answer comes back byte for byte. Starts
 * the call (pg_fd_chat_start) and returns true; false when the request
 * must take the decode path (which also produces the precise 400s): the
 * dialect's check refused root, the route does not lead to such a
 * provider, or the splices cannot take the body. */
bool pg_fd_chat_try_raw(pg_fd_chat_t *c, pg_fd_ctx_t *ctx, cJSON *root);

/* Starts the call of c (c->req decoded, or c->raw_body set by
 * pg_fd_chat_try_raw) routed as rt. Answers the client itself when the
 * call cannot start; otherwise the provider's done answers. */
void pg_fd_chat_start(pg_fd_chat_t *c, pg_fd_ctx_t *ctx,
                      const pg_route_t *rt);

/* Answers a failure before anything was sent: err's status, type,
 * message and param as ops maps them (upstream as in client_error), with
 * the headers err relays; the log's error text is err's message. */
void pg_fd_respond_failure(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                           const pg_provider_error_t *err, int upstream);

/* The gateway's own failure before anything was sent (status, message),
 * typed ops->own_type. */
void pg_fd_respond_own(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                       int status, pg_str_t msg);

/* Answers 200 with the JSON built in b when rc is PG_OK, else the
 * dialect's 500 "out of memory" (the build failed); frees b. */
void pg_fd_respond_json(pg_fd_ctx_t *ctx, const pg_fd_chat_ops_t *ops,
                        pg_buf_t *b, int rc);

/* What an endpoint hears from its provider call. */
typedef struct pg_fd_call_cbs {
    int (*on_raw)(void *ud, pg_str_t event, pg_str_t data);
    int (*on_attempt)(void *ud, const pg_cfg_provider_t *p);
    int (*on_event)(void *ud, const pg_event_t *ev);
    void (*on_done)(void *ud, const pg_provider_error_t *err);
} pg_fd_call_cbs_t;

/* Fills c the way every endpoint does: the routed provider, its failover
 * chain, the client headers forwarded (fwd/nfwd, may be NULL/0), the raw
 * body of kind (when raw.p is set) and the callbacks with ud; names the
 * provider, served model and stream mode for the log and starts the
 * upstream clock. */
void pg_fd_call_init(struct pg_provider_call *c, pg_fd_ctx_t *ctx,
                     const pg_request_t *q, const pg_route_t *rt,
                     const pg_cfg_hop_t *chain, size_t nchain,
                     const pg_kv_t *fwd, size_t nfwd, pg_raw_kind_t kind,
                     pg_str_t raw, const pg_fd_call_cbs_t *cbs, void *ud);

/* Starts c, watched by out (upstream wait, client abort). false (*rc the
 * error, the upstream time closed) when no provider of the chain could
 * start; the caller answers. */
bool pg_fd_call_run(pg_fd_ctx_t *ctx, struct pg_provider_call *c,
                    pg_fd_stream_t *out, int *rc);

#endif
