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

/* The body to forward: the client's bytes (ctx->req->body, parsed as
 * root) with the value of "model" replaced by model when it differs (or
 * "model" added when absent), and `extra`, a complete "key":value member,
 * added when not empty. Every other byte is the client's. In the request
 * arena. PG_OK, PG_ENOMEM, or PG_EPARSE (an empty object to which a
 * member would be added: left to the decoder's error). */
int pg_fd_raw_body(pg_fd_ctx_t *ctx, const cJSON *root, pg_str_t model,
                   pg_str_t extra, pg_str_t *out);

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
