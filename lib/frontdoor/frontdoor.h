/* frontdoor.h: what the dispatcher hands a dialect's endpoint handler, and
 * the handlers themselves. The dispatcher (dispatch.c) maps a request path
 * to an app and an endpoint, holds a config snapshot reference for the
 * request, and writes the access log line when the request completes; a
 * frontdoor decodes the client's JSON, routes, runs the provider call, and
 * encodes the answer in its own dialect.
 *
 * Threads: the worker loop that received the request. */
#ifndef PG_FRONTDOOR_FRONTDOOR_H
#define PG_FRONTDOOR_FRONTDOOR_H

#include <stdint.h>

#include <uv.h>

#include "base/log.h"
#include "config/config.h"
#include "http/server.h"

struct pg_upstream;

/* One request's context; lives in req->arena, attached as
 * req->handler_data. */
typedef struct pg_fd_ctx {
    pg_config_t *cfg;          /* a reference, dropped at request end */
    const pg_cfg_app_t *app;   /* borrowed from cfg */
    const pg_logger_t *log;    /* borrowed: the gateway's */
    uv_loop_t *loop;           /* the worker loop */
    struct pg_upstream *upstream; /* the worker's HTTP client */
    pg_http_req_t *req;
    pg_str_t endpoint;         /* path below the app: "/v1/chat/completions" */

    /* Filled by the frontdoor, read by the access log. */
    pg_str_t model;            /* as requested by the client */
    pg_str_t served_model;     /* as sent to the provider */
    pg_str_t provider;         /* providers[].name */
    bool stream;
    uint64_t upstream_start_ns; /* 0: no upstream call */
    uint64_t upstream_end_ns;
    int64_t input_tokens;
    int64_t output_tokens;
    pg_str_t response_id;      /* the upstream's message / completion id */
    pg_str_t error;            /* short error text for the log */
} pg_fd_ctx_t;

/* Handles one request of an OpenAI-frontdoor app: POST
 * /v1/chat/completions and GET /v1/models. Answers 404 (OpenAI shape) for
 * other endpoints and 405 for a wrong method. */
void pg_frontdoor_openai_handle(pg_fd_ctx_t *ctx);

/* Writes an OpenAI-shaped error body
 * {"error":{"message","type","param","code"}} into arena. param and code
 * may be empty (written as null). */
pg_str_t pg_openai_error_body(pg_arena_t *arena, pg_str_t message,
                              pg_str_t type, pg_str_t param, pg_str_t code);

/* Answers req with an OpenAI-shaped error. type/param/code as above. */
void pg_openai_respond_error(pg_http_req_t *req, int status, pg_str_t message,
                             pg_str_t type, pg_str_t param, pg_str_t code);
/* The same with extra response headers (relayed Retry-After...). */
void pg_openai_respond_error_h(pg_http_req_t *req, int status,
                               pg_str_t message, pg_str_t type, pg_str_t param,
                               pg_str_t code, const pg_http_header_t *extra,
                               size_t nextra);

/* Handles one request of an Anthropic-frontdoor app: POST /v1/messages
 * (stream and not), POST /v1/messages/count_tokens and GET /v1/models, in
 * Anthropic's shapes. Answers 404 not_found_error (Anthropic shape) for
 * other endpoints and 405 for a wrong method. */
void pg_frontdoor_anthropic_handle(pg_fd_ctx_t *ctx);

/* Writes an Anthropic-shaped error body
 * {"type":"error","error":{"type","message"}} into arena. */
pg_str_t pg_anthropic_error_body(pg_arena_t *arena, pg_str_t type,
                                 pg_str_t message);

/* Answers req with an Anthropic-shaped error, with extra response headers
 * (relayed retry-after...; may be NULL/0). An empty type is taken from
 * the status. */
void pg_anthropic_respond_error(pg_http_req_t *req, int status, pg_str_t type,
                                pg_str_t message,
                                const pg_http_header_t *extra, size_t nextra);

#endif
