/* openai_chat.h: the OpenAI Chat Completions dialect. Decodes a request
 * body (a cJSON tree) into a canonical pg_request_t, encodes a whole
 * canonical response as a chat.completion object, and encodes a canonical
 * event stream as chat.completion.chunk payloads through an explicit state
 * machine. Also writes OpenAI error bodies. Knows JSON and canon, not HTTP.
 *
 * Pure functions over the caller's arena and buffers; one thread at a time
 * per object (the request's loop). */
#ifndef PG_CODEC_OPENAI_CHAT_H
#define PG_CODEC_OPENAI_CHAT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "base/buf.h"
#include "canon/response.h"
#include "polyglot/provider.h"

/* At most this many stop sequences (OpenAI's limit). */
#define PG_OPENAI_MAX_STOP 4

/* Why a request body was refused, as OpenAI words it. Slices live in the
 * arena given to the decoder. */
typedef struct pg_openai_decode_err {
    int status;       /* 400 */
    pg_str_t message; /* "Invalid type for 'temperature': ..." */
    pg_str_t param;   /* "messages[2].content[0].type"; empty: null */
    pg_str_t code;    /* "invalid_type", "missing_required_parameter"... */
} pg_openai_decode_err_t;

/* Decodes a Chat Completions request body into *out, every slice in arena
 * (the tree may be freed afterwards). PG_OK; PG_EPARSE with *err filled
 * (status 400, message, param); PG_ENOMEM. The model is optional here: the
 * frontdoor applies the app's default_model. */
int pg_openai_chat_decode(pg_arena_t *arena, const cJSON *root,
                          pg_request_t *out, pg_openai_decode_err_t *err);

/* The finish_reason string for a stop reason ("stop", "length",
 * "tool_calls", "content_filter"). */
const char *pg_openai_finish_reason(pg_stop_reason_t r);

/* Appends the chat.completion object for a finished response r (see
 * pg_canon_response_finish) to b. id ("chatcmpl-..."), created (Unix
 * seconds) and model are what the client sees. PG_OK, PG_ENOMEM or
 * PG_ETOOBIG. */
PG_WUR int pg_openai_chat_encode(pg_buf_t *b, const pg_canon_response_t *r,
                                 pg_str_t id, int64_t created,
                                 pg_str_t model);

/* Appends {"error":{"message","type","param","code"}}; an empty param or
 * code is written as null. */
PG_WUR int pg_openai_error_json(pg_buf_t *b, pg_str_t message, pg_str_t type,
                                pg_str_t param, pg_str_t code);

/* ---- stream encoder ------------------------------------------------------ */

/* Receives each data payload (one chunk's JSON text, borrowed for the
 * call). A non-zero return stops the encoder and is returned by feed. */
typedef int (*pg_openai_chunk_cb)(void *ud, pg_str_t payload);

typedef enum pg_openai_stream_state {
    PG_OAI_STREAM_WAIT_START = 0, /* before MESSAGE_START */
    PG_OAI_STREAM_BODY,           /* role chunk sent, deltas flow */
    PG_OAI_STREAM_DONE,           /* finish (and usage) sent: add [DONE] */
    PG_OAI_STREAM_FAILED          /* error payload sent: no [DONE] */
} pg_openai_stream_state_t;

typedef struct pg_openai_stream_enc {
    pg_openai_stream_state_t state;
    pg_arena_t *arena;      /* borrowed: the request's */
    pg_str_t id;            /* borrowed: same in every chunk */
    int64_t created;
    pg_str_t model;         /* borrowed */
    bool include_usage;
    pg_usage_t usage;       /* the latest totals */
    /* Block index -> what the block is and, for tool calls, its OpenAI
     * tool_calls index (stable, in order of appearance). */
    struct pg_oai_block {
        pg_part_kind_t kind;
        int32_t tool_index; /* -1: not a tool call */
        bool open;
        bool used;          /* started once: an index is never reused */
        bool args;          /* tool call: an arguments fragment was sent */
    } *blocks;              /* arena */
    size_t nblocks;
    size_t capblocks;
    uint32_t ntools;
    pg_buf_t scratch;       /* owned: one chunk at a time */
} pg_openai_stream_enc_t;

/* Prepares an encoder; frees nothing until pg_openai_stream_enc_destroy.
 * max_chunk caps one payload's size. */
void pg_openai_stream_enc_init(pg_openai_stream_enc_t *e, pg_arena_t *arena,
                               pg_str_t id, int64_t created, pg_str_t model,
                               bool include_usage, size_t max_chunk);
void pg_openai_stream_enc_destroy(pg_openai_stream_enc_t *e);

/* Feeds one event; calls cb for each payload it produces (0, 1 or 2).
 * PG_OK; PG_EPARSE when the event breaks the stream order (also after
 * DONE/FAILED); PG_ENOMEM / PG_ETOOBIG; or cb's non-zero return. After
 * it, e->state says whether the stream ended (DONE: the caller appends
 * "data: [DONE]"; FAILED: it does not). */
int pg_openai_stream_enc_feed(pg_openai_stream_enc_t *e, const pg_event_t *ev,
                              pg_openai_chunk_cb cb, void *ud);

#endif
