/* passthrough.h: the same-dialect path both frontdoors share. A request
 * whose routed provider speaks the client's dialect is forwarded as the
 * client's bytes, only the model's value changed when routing changed it
 * (no full decode); the answer comes back byte for byte: a non-stream
 * body as it is, a stream event by event, re-framed as the upstream
 * framed it. The dialect's frontdoor keeps what differs: which fields it
 * validates, how it reads usage, its error shapes.
 *
 * Failover chains may mix dialects: the provider call marks each
 * provider raw or not (pg_provider_call.raw) and the frontdoor translates
 * for the others. Loop thread of the request. */
#ifndef PG_FRONTDOOR_PASSTHROUGH_H
#define PG_FRONTDOOR_PASSTHROUGH_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "frontdoor/frontdoor.h"
#include "frontdoor/stream_common.h"
#include "provider/call.h"
#include "routing/routing.h"

/* Routes a passthrough candidate: the body's model (a string, or absent:
 * the app's default_model) through the app's routing. True when the
 * routed provider takes a body of this kind as it is; *model is the
 * client's model, *rt the route. False: the request takes the translation
 * path (which also produces the precise 400s and 404s). */
bool pg_fd_raw_route(pg_fd_ctx_t *ctx, const cJSON *root, pg_raw_kind_t kind,
                     pg_str_t *model, pg_route_t *rt);

/* One change to the client's bytes: [at, end) replaced by text (at ==
 * end: text inserted there). */
typedef struct pg_fd_edit {
    size_t at, end;
    pg_str_t text;
} pg_fd_edit_t;

#define PG_FD_RAW_MAX_EDITS 2

/* A passthrough request's client side: its parsed body and the changes to
 * its bytes other than the model (OpenAI: usage asked for on a stream),
 * kept so that each provider of a failover chain gets the client's bytes
 * with its own model, or a translation decoded from root once. Lives in
 * the frontdoor's request state; all zero for a request decoded up
 * front. */
typedef struct pg_fd_raw {
    cJSON *root;         /* the client's body (request arena) */
    pg_fd_edit_t edits[PG_FD_RAW_MAX_EDITS]; /* ascending, disjoint */
    size_t nedits;
    pg_str_t model;      /* the model the last built body carries */
    bool decoded;        /* a translated hop decoded root already */
} pg_fd_raw_t;

/* The members of obj named keys[0..n), in out[0..n): for each the first
 * of that name, NULL when absent, as cJSON_GetObjectItemCaseSensitive
 * finds it (a NULL or nameless obj finds none), in one walk of obj's
 * children instead of one each: the dialects' looks at a raw request or
 * answer run on every request. The keys are distinct and not empty. */
void pg_fd_raw_members(const cJSON *obj, const char *const *keys, size_t n,
                       const cJSON **out);

/* The edit that makes the member key of a JSON object in the client's
 * bytes (ctx->req->body) hold value, a complete JSON value: the member's
 * value replaced, or "key":value added as the object's first member. The
 * object is bytes [a, z), parsed as obj. The text is in the request
 * arena. PG_OK, PG_ENOMEM, or PG_EPARSE. */
int pg_fd_raw_member_edit(pg_fd_ctx_t *ctx, size_t a, size_t z,
                          const cJSON *obj, const char *key, pg_str_t value,
                          pg_fd_edit_t *out);

/* The body to forward: the client's bytes (ctx->req->body, parsed as
 * raw->root) with the value of "model" replaced by model when it differs
 * (or "model" added when absent), and raw->edits applied. Every other
 * byte is the client's. In the request arena; raw->model is set to model.
 * PG_OK, PG_ENOMEM, or PG_EPARSE (an empty object: left to the decoder's
 * error). */
int pg_fd_raw_body(pg_fd_ctx_t *ctx, pg_fd_raw_t *raw, pg_str_t model,
                   pg_str_t *out);

/* Each provider of a failover chain that starts (the call's on_attempt):
 * the access log names it and the model it is sent (call->model). One
 * that takes the client's bytes (call->raw) gets them with that model in
 * call->raw_body, built again only when the model differs from the one
 * the body holds. One that needs a translation gets *req with that model:
 * decoded by decode(ud) first when the request went passthrough so far
 * (raw->root set; decode fills *req), and its unmapped fields logged.
 * decode may be NULL when no provider of the chain needs a translation.
 * PG_OK, or an error that skips the provider (the log then keeps naming
 * the one before). */
int pg_fd_attempt(pg_fd_ctx_t *ctx, pg_fd_raw_t *raw,
                  struct pg_provider_call *call, const pg_cfg_provider_t *p,
                  int (*decode)(void *ud), void *ud, pg_request_t *req);

/* One event of a passthrough stream (on_raw): opens the client's stream
 * on the first, re-arms the keepalive, frames it as the upstream did
 * (event name when it had one, then data) and gathers it until the batch
 * ends (data.p == NULL), which writes it. PG_PENDING when the client is
 * behind (the upstream pauses). */
int pg_fd_raw_stream_event(pg_fd_stream_t *s, pg_str_t event, pg_str_t data);

/* A passthrough non-stream body (on_raw): copied into the request arena
 * (*body) and parsed for the frontdoor's look at it (NULL: not JSON, or
 * out of memory when body->p is NULL too). Upstream time ends here. */
cJSON *pg_fd_raw_whole(pg_fd_stream_t *s, pg_str_t data, pg_str_t *body);
/* Answers 200 with the body as the upstream sent it and the headers the
 * provider relayed. */
int pg_fd_raw_respond(pg_fd_stream_t *s, pg_str_t body);
/* The message for a 200 whose body j is not an answer (not JSON, or an
 * error object): "The provider sent a malformed response", with the
 * error object's message when it has one (both dialects keep it in
 * error.message). In the request arena. */
pg_str_t pg_fd_raw_lie_message(pg_fd_stream_t *s, const cJSON *j);

#endif
