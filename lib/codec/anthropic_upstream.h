/* anthropic_upstream.h: the Anthropic Messages dialect seen from the
 * gateway's side of an upstream: canonical request -> Messages request
 * JSON, and the provider's answer (a whole message, or the SSE event
 * sequence message_start / content_block_* / message_delta /
 * message_stop / ping / error) -> canonical events. Also Anthropic error
 * bodies. Knows JSON and canon, not HTTP. Loop thread of the request. */
#ifndef PG_CODEC_ANTHROPIC_UPSTREAM_H
#define PG_CODEC_ANTHROPIC_UPSTREAM_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/buf.h"
#include "canon/event.h"
#include "polyglot/provider.h"

typedef struct pg_anthropic_req_opts {
    bool stream;
    /* max_tokens is required by Anthropic: used when the request has none
     * (providers[].options.default_max_tokens, 4096 by default). */
    int64_t default_max_tokens;
} pg_anthropic_req_opts_t;

/* Appends the Messages request body for q: system (text blocks), messages
 * with consecutive same-role turns merged and tool results as user-turn
 * tool_result blocks, content blocks text / image (base64 or url) /
 * tool_use (arguments parsed as the input object) / tool_result (is_error)
 * / thinking (signature byte-exact) / redacted_thinking, tools with
 * input_schema, tool_choice (auto/any/tool/none), stop_sequences,
 * temperature, top_p, top_k, max_tokens, metadata.user_id, stream;
 * reasoning_effort low / medium / high -> thinking with a budget of
 * 2048 / 8192 / 24576 tokens (see thinking_budget in the .c for when it
 * is left out and how max_tokens makes room for it).
 * PG_OK, PG_ENOMEM, PG_ETOOBIG, or PG_EUNSUPPORTED (*why names what, e.g.
 * tool arguments that are not a JSON object, with the call id; *why is
 * static or a per-thread buffer valid until the next call on the thread).
 * On failure nothing is left appended to b. */
int pg_anthropic_encode_request(pg_buf_t *b, const pg_request_t *q,
                                const pg_anthropic_req_opts_t *o,
                                const char **why);

/* Decodes a whole Messages response body into the event sequence a
 * stream would have produced. PG_OK, PG_EPARSE (*why), or the sink's. */
int pg_anthropic_decode_response(pg_arena_t *a, pg_str_t body,
                                 pg_event_sink_fn sink, void *ud,
                                 const char **why);

typedef enum pg_anthropic_dec_state {
    PG_ANT_DEC_START = 0,  /* before message_start */
    PG_ANT_DEC_MESSAGE,    /* between message_start and message_stop */
    PG_ANT_DEC_DONE,       /* message_stop seen */
    PG_ANT_DEC_FAILED
} pg_anthropic_dec_state_t;

/* Stream decoder: an explicit state machine fed one SSE event (name and
 * data) at a time. Block indices are kept as the upstream numbers them
 * and checked (a delta for a block never started breaks the protocol);
 * text_delta, input_json_delta, thinking_delta and signature_delta map to
 * their canonical deltas; message_delta carries stop_reason,
 * stop_sequence and output usage; message_start's usage (input, cache
 * read/write) comes out as USAGE; ping is ignored; error -> PG_EV_ERROR. */
typedef struct pg_anthropic_stream_dec {
    pg_anthropic_dec_state_t state;
    pg_arena_t *arena;
    uint8_t *open;         /* arena: state (+ kind) per block index */
    size_t nopen;
    pg_usage_t usage;
    pg_stop_reason_t stop;
    pg_str_t stop_sequence; /* arena copy */
    bool errored;          /* an error event was emitted (state FAILED) */
} pg_anthropic_stream_dec_t;

void pg_anthropic_stream_dec_init(pg_anthropic_stream_dec_t *d, pg_arena_t *a);
/* One SSE event: event is the "event:" name (may be empty: the data's
 * "type" names it then), data its JSON. PG_OK (an error event also
 * returns PG_OK after emitting PG_EV_ERROR; the decoder is then FAILED);
 * PG_EPARSE when the event breaks the protocol (*why says how; FAILED);
 * PG_ENOMEM; or the sink's non-zero return. Unknown event and delta types
 * are skipped, as the API asks; blocks of types with no canonical
 * counterpart (server tools) are accepted and dropped. Each event's JSON
 * is parsed in a scratch arena freed before return. */
int pg_anthropic_stream_dec_feed(pg_anthropic_stream_dec_t *d, pg_str_t event,
                                 pg_str_t data, pg_event_sink_fn sink,
                                 void *ud, const char **why);
/* PG_OK after message_stop; PG_EUPSTREAM when the stream ended with an
 * error event (already emitted as PG_EV_ERROR); else PG_EPARSE
 * (truncated or broken; the caller reports it). */
int pg_anthropic_stream_dec_finish(pg_anthropic_stream_dec_t *d,
                                   const char **why);

/* Reads {"type":"error","error":{"type","message"}}. PG_OK or PG_EPARSE.
 * The slices live in a. */
int pg_anthropic_parse_error(pg_arena_t *a, pg_str_t body, pg_str_t *type,
                             pg_str_t *message);

/* The HTTP status an Anthropic error type stands for
 * (invalid_request_error 400, authentication_error 401, permission_error
 * 403, not_found_error 404, request_too_large 413, rate_limit_error 429,
 * api_error 500, overloaded_error 529...); 502 for an unknown type. */
int pg_anthropic_error_status(pg_str_t type);

#endif
