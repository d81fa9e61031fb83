/* anthropic_messages.h: the Anthropic Messages dialect seen from the
 * client's side (the Anthropic frontdoor): a Messages request body ->
 * canonical request, a canonical response -> Messages JSON, canonical
 * events -> the Messages SSE event sequence, and error bodies. Knows JSON
 * and canon, not HTTP. Loop thread of the request. */
#ifndef PG_CODEC_ANTHROPIC_MESSAGES_H
#define PG_CODEC_ANTHROPIC_MESSAGES_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "base/buf.h"
#include "canon/response.h"
#include "polyglot/provider.h"

/* Why a request body was refused, as Anthropic words it. Slices in the
 * arena given to the decoder. */
typedef struct pg_anthropic_decode_err {
    int status;        /* 400 */
    pg_str_t type;     /* "invalid_request_error" */
    pg_str_t message;  /* "messages.2.content.0.type: Input should be ..." */
    pg_str_t field;    /* "messages[2].content[0].type": the field at fault */
} pg_anthropic_decode_err_t;

/* Decodes a Messages request (a tree from pg_json_parse_arena) into *out,
 * every slice in arena: model, max_tokens (required), system (string or
 * text blocks), messages (string content or blocks: text, image base64 /
 * url, tool_use, tool_result with string or block content and is_error,
 * thinking with signature, redacted_thinking; document -> PG_EUNSUPPORTED
 * unless the caller allows it), tools (name, description, input_schema),
 * tool_choice (auto / any / tool / none, disable_parallel_tool_use),
 * stop_sequences, temperature, top_p, top_k, metadata.user_id, stream,
 * thinking ({type: enabled, budget_tokens} -> reasoning settings); other
 * top-level keys -> unmapped. PG_OK; PG_EPARSE with *err; PG_ENOMEM. */
int pg_anthropic_messages_decode(pg_arena_t *arena, const cJSON *root,
                                 pg_request_t *out,
                                 pg_anthropic_decode_err_t *err);

/* The stop_reason string for a canonical stop reason ("end_turn",
 * "max_tokens", "stop_sequence", "tool_use", "refusal"). */
const char *pg_anthropic_stop_reason(pg_stop_reason_t r);

/* Appends the Messages response object for a finished response r:
 * {"id","type":"message","role":"assistant","model","content":[...],
 * "stop_reason","stop_sequence","usage":{"input_tokens","output_tokens",
 * "cache_creation_input_tokens","cache_read_input_tokens"}}. id is what
 * the client sees ("msg_..."). Canonical input_tokens is the whole prompt
 * (cache included): input_tokens = input - cache_read - cache_write. */
PG_WUR int pg_anthropic_messages_encode(pg_buf_t *b,
                                        const pg_canon_response_t *r,
                                        pg_str_t id, pg_str_t model);

/* The Anthropic error type for an HTTP status: 400 invalid_request_error,
 * 401 authentication_error, 403 permission_error, 404 not_found_error,
 * 413 request_too_large, 429 rate_limit_error, 504 timeout_error, 529
 * overloaded_error, other 5xx api_error, other 4xx invalid_request_error. */
pg_str_t pg_anthropic_error_type(int status);

/* The type an Anthropic client is told: type itself when it is one of
 * Anthropic's error types, else (another dialect's "server_error",
 * "insufficient_quota", none) the one status implies (0: 502). */
pg_str_t pg_anthropic_client_error_type(int status, pg_str_t type);

/* Appends {"type":"error","error":{"type","message"}}. */
PG_WUR int pg_anthropic_error_json(pg_buf_t *b, pg_str_t type,
                                   pg_str_t message);

/* Receives one SSE event (name and data JSON), borrowed for the call. A
 * non-zero return stops the encoder and is returned by feed. */
typedef int (*pg_anthropic_sse_cb)(void *ud, pg_str_t event, pg_str_t data);

typedef enum pg_anthropic_enc_state {
    PG_ANT_ENC_WAIT_START = 0, /* before MESSAGE_START */
    PG_ANT_ENC_MESSAGE,        /* message_start sent */
    PG_ANT_ENC_DONE,           /* message_stop sent */
    PG_ANT_ENC_FAILED          /* event: error sent */
} pg_anthropic_enc_state_t;

/* Stream encoder: an explicit state machine from canonical events to the
 * Messages event sequence: message_start (with input usage) and a ping;
 * content_block_start / content_block_delta (text_delta,
 * input_json_delta, thinking_delta, signature_delta) /
 * content_block_stop with the client-visible block indices (0, 1, ... in
 * order, whatever the canonical indices); message_delta (stop_reason,
 * stop_sequence, output usage); message_stop; event: error for
 * PG_EV_ERROR (its type made one Anthropic clients know, see
 * pg_anthropic_client_error_type). Blocks left open at MESSAGE_STOP are
 * closed first. */
typedef struct pg_anthropic_stream_enc {
    pg_anthropic_enc_state_t state;
    pg_arena_t *arena;       /* borrowed: the request's */
    pg_str_t id;             /* borrowed */
    pg_str_t model;          /* borrowed */
    pg_usage_t usage;        /* latest totals */
    /* canonical block index -> client index (>= 0: started), or a
     * negative mark: -1 never started, -2 stopped, -3 closed early
     * because a later block started, -4 dropped (no Messages form) */
    int32_t *map;            /* arena */
    size_t nmap;
    uint32_t next_index;     /* next client block index */
    int32_t open;            /* client index of the open block, -1: none */
    int32_t open_canon;      /* its canonical index */
    pg_part_kind_t open_kind; /* its kind: which deltas it takes */
    pg_buf_t scratch;        /* owned: one event's JSON */
} pg_anthropic_stream_enc_t;

void pg_anthropic_stream_enc_init(pg_anthropic_stream_enc_t *e,
                                  pg_arena_t *arena, pg_str_t id,
                                  pg_str_t model, size_t max_event);
void pg_anthropic_stream_enc_destroy(pg_anthropic_stream_enc_t *e);
/* PG_OK; PG_EPARSE when the event breaks the order; PG_ENOMEM /
 * PG_ETOOBIG; or cb's non-zero return. */
int pg_anthropic_stream_enc_feed(pg_anthropic_stream_enc_t *e,
                                 const pg_event_t *ev, pg_anthropic_sse_cb cb,
                                 void *ud);

#endif
