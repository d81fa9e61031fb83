/* openai_upstream.h: the OpenAI Chat Completions dialect seen from the
 * gateway's side of an upstream: canonical request -> request JSON for an
 * OpenAI-type provider, and the provider's answer (a whole
 * chat.completion, or chat.completion.chunk stream payloads) -> canonical
 * events. Also the provider's error bodies. Knows JSON and canon, not HTTP.
 * Loop thread of the request. */
#ifndef PG_CODEC_OPENAI_UPSTREAM_H
#define PG_CODEC_OPENAI_UPSTREAM_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/buf.h"
#include "canon/event.h"
#include "polyglot/provider.h"

typedef struct pg_openai_req_opts {
    bool stream;          /* write "stream": true */
    bool include_usage;   /* with stream: stream_options.include_usage */
    /* Send max_tokens as max_completion_tokens (reasoning models and
     * current OpenAI models want it; some compatible servers only know
     * max_tokens). */
    bool max_completion_tokens;
} pg_openai_req_opts_t;

/* Appends the request body for q (model, messages with every part kind
 * the dialect can express, tools, tool_choice, sampling params whose set
 * bit is on, stop, response_format, reasoning_effort, user, seed, n,
 * parallel_tool_calls). PG_OK, PG_ENOMEM, PG_ETOOBIG, or PG_EUNSUPPORTED
 * for a part the dialect cannot carry (the message names it in *why). */
int pg_openai_chat_encode_request(pg_buf_t *b, const pg_request_t *q,
                                  const pg_openai_req_opts_t *o,
                                  const char **why);

/* Decodes a whole chat.completion body into the event sequence a stream
 * would have produced: MESSAGE_START, a block per text / tool call
 * (with its deltas and BLOCK_STOP), USAGE, MESSAGE_STOP. PG_OK, PG_EPARSE
 * (not a chat.completion: *why says what), or the sink's return. */
int pg_openai_chat_decode_response(pg_arena_t *a, pg_str_t body,
                                   pg_event_sink_fn sink, void *ud,
                                   const char **why);

/* Stream decoder: an explicit state machine fed one SSE data payload at a
 * time (the JSON of one chunk, or "[DONE]"). Maps the chunk sequence to
 * canonical events: MESSAGE_START on the first chunk (id, model), a TEXT
 * block for content deltas, one TOOL_CALL block per tool_calls[].index
 * (BLOCK_START with id/name on its first delta, TOOL_ARGS_DELTA after),
 * blocks closed when another kind begins or at the finish, USAGE from the
 * usage chunk, MESSAGE_STOP after finish_reason and usage (or at [DONE]).
 * An {"error":...} payload becomes PG_EV_ERROR. */
typedef enum pg_openai_dec_state {
    PG_OAI_DEC_START = 0,  /* nothing seen yet */
    PG_OAI_DEC_BODY,       /* deltas flowing */
    PG_OAI_DEC_FINISHED,   /* finish_reason seen; usage may follow */
    PG_OAI_DEC_DONE,       /* MESSAGE_STOP emitted */
    PG_OAI_DEC_FAILED      /* error emitted or protocol broken */
} pg_openai_dec_state_t;

typedef struct pg_openai_stream_dec {
    pg_openai_dec_state_t state;
    pg_arena_t *arena;     /* borrowed: the request's */
    uint32_t next_index;   /* next canonical block index */
    int32_t open_block;    /* canonical index of the open block, -1: none */
    bool open_is_text;
    pg_part_kind_t open_kind; /* TEXT, REFUSAL or TOOL_CALL when open */
    /* OpenAI tool_calls[].index -> canonical block index. */
    int32_t *tool_blocks;  /* arena */
    size_t ntool_blocks;
    pg_stop_reason_t stop;
    pg_usage_t usage;
    bool have_usage;
    /* Owned: each payload's JSON tree lives here and is dropped before
     * the next one, so a long stream does not grow the request arena.
     * Freed by a cleanup registered on arena at the first feed: the
     * decoder must not move after that. */
    pg_arena_t scratch;
    bool scratch_hooked;
} pg_openai_stream_dec_t;

/* Prepares a decoder; allocates nothing. No destroy call is needed: what
 * it allocates is released with arena. */
void pg_openai_stream_dec_init(pg_openai_stream_dec_t *d, pg_arena_t *a);
/* One data payload. PG_OK; PG_EPARSE when it breaks the protocol
 * (invalid JSON, a tool delta without id for a new index...: *why says
 * what; the decoder is FAILED); or the sink's return. */
int pg_openai_stream_dec_feed(pg_openai_stream_dec_t *d, pg_str_t payload,
                              pg_event_sink_fn sink, void *ud,
                              const char **why);
/* The upstream stream ended. PG_OK when it had finished (emits
 * MESSAGE_STOP if [DONE] never came but finish_reason did) or had already
 * failed (the ERROR event or feed's PG_EPARSE told that story); PG_EPARSE
 * for a truncated stream (the caller emits the error). */
int pg_openai_stream_dec_finish(pg_openai_stream_dec_t *d,
                                pg_event_sink_fn sink, void *ud,
                                const char **why);

/* Reads an OpenAI error body {"error":{"message","type","param","code"}}
 * into arena slices. PG_OK, or PG_EPARSE when body is not one (then the
 * caller uses the HTTP status alone). */
int pg_openai_parse_error(pg_arena_t *a, pg_str_t body, pg_str_t *type,
                          pg_str_t *message, pg_str_t *param, pg_str_t *code);

#endif
