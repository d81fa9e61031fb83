/* provider.h: the canonical model that every dialect decodes into and
 * encodes from (DESIGN.md section 6), and the provider vtable through which
 * the gateway asks a model for an answer. The built-in providers (mock,
 * later openai, anthropic, openai-compatible) implement exactly this vtable,
 * as a host's own provider does.
 *
 * Threads: a provider instance is created once per config snapshot, off the
 * loop, and shared by every worker; its call slots (start, cancel) run on the
 * worker loop that owns the call, so an instance must not keep mutable state
 * outside its calls without its own locking. */
#ifndef POLYGLOT_PROVIDER_H
#define POLYGLOT_PROVIDER_H

#include "polyglot/polyglot.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;

/* ---- canonical request ------------------------------------------------ */

typedef enum pg_role {
    PG_ROLE_SYSTEM = 0,
    PG_ROLE_USER,
    PG_ROLE_ASSISTANT,
    PG_ROLE_TOOL
} pg_role_t;

typedef enum pg_part_kind {
    PG_PART_TEXT = 0,
    PG_PART_IMAGE,
    PG_PART_TOOL_CALL,
    PG_PART_TOOL_RESULT,
    PG_PART_THINKING,
    PG_PART_REDACTED_THINKING,
    PG_PART_REFUSAL
} pg_part_kind_t;

/** One ordered part of a message. Which fields mean something depends on
 * kind; the rest are empty. All slices point into the request's arena. */
typedef struct pg_part {
    pg_part_kind_t kind;
    /* TEXT, REFUSAL: the text. THINKING: the thinking text.
     * REDACTED_THINKING: the opaque data, byte-exact. */
    pg_str_t text;
    /* THINKING: the provider's signature, byte-exact. */
    pg_str_t signature;
    struct {
        pg_str_t url;        /* http(s) URL, empty when data is set */
        pg_str_t media_type; /* "image/png" */
        pg_str_t data;       /* base64, no "data:" prefix */
    } image;
    struct {
        pg_str_t id;
        pg_str_t name;
        pg_str_t arguments; /* JSON text, as the model produced it */
    } tool_call;
    struct {
        pg_str_t call_id;
        const struct pg_part *content; /* TEXT / IMAGE parts */
        size_t ncontent;
        bool is_error;
    } tool_result;
} pg_part_t;

typedef struct pg_message {
    pg_role_t role;
    pg_str_t name; /* optional participant name */
    const pg_part_t *parts;
    size_t nparts;
} pg_message_t;

typedef struct pg_tool {
    pg_str_t name;
    pg_str_t description;
    pg_str_t parameters; /* JSON Schema text; empty = {} */
} pg_tool_t;

typedef enum pg_tool_choice {
    PG_TOOL_CHOICE_UNSET = 0,
    PG_TOOL_CHOICE_AUTO,
    PG_TOOL_CHOICE_NONE,
    PG_TOOL_CHOICE_REQUIRED, /* OpenAI "required", Anthropic "any" */
    PG_TOOL_CHOICE_NAMED     /* tool_choice_name says which */
} pg_tool_choice_t;

typedef enum pg_response_format {
    PG_FORMAT_UNSET = 0,
    PG_FORMAT_TEXT,
    PG_FORMAT_JSON_OBJECT,
    PG_FORMAT_JSON_SCHEMA /* response_schema holds the schema object */
} pg_response_format_t;

/* Bits of pg_request_t.set: a sampling field is meaningful only when its
 * bit is set, so an explicit temperature of 0 survives translation. */
#define PG_SET_TEMPERATURE (1u << 0)
#define PG_SET_TOP_P (1u << 1)
#define PG_SET_TOP_K (1u << 2)
#define PG_SET_MAX_TOKENS (1u << 3)
#define PG_SET_SEED (1u << 4)
#define PG_SET_PARALLEL_TOOL_CALLS (1u << 5)
#define PG_SET_N (1u << 6)
#define PG_SET_PRESENCE_PENALTY (1u << 7)
#define PG_SET_FREQUENCY_PENALTY (1u << 8)

/** A model request in the gateway's own terms. Built by a frontdoor decoder
 * in the request arena; read-only for providers. */
typedef struct pg_request {
    pg_str_t model; /* after routing: the model the provider should use */
    const pg_part_t *system; /* system / developer text, in order */
    size_t nsystem;
    const pg_message_t *messages;
    size_t nmessages;
    const pg_tool_t *tools;
    size_t ntools;
    pg_tool_choice_t tool_choice;
    pg_str_t tool_choice_name;
    uint32_t set; /* PG_SET_* bits */
    double temperature;
    double top_p;
    double presence_penalty;
    double frequency_penalty;
    int64_t top_k;
    int64_t max_tokens;
    int64_t seed;
    int64_t n;
    bool parallel_tool_calls;
    const pg_str_t *stop;
    size_t nstop;
    bool stream;
    bool include_usage; /* OpenAI stream_options.include_usage */
    pg_response_format_t response_format;
    pg_str_t response_schema; /* JSON text of the json_schema object */
    pg_str_t reasoning_effort;
    pg_str_t user;
    /* Top-level fields the decoder could not map, by name ("logit_bias"):
     * recorded and logged at debug, never silently lost. */
    const pg_str_t *unmapped;
    size_t nunmapped;
} pg_request_t;

/* ---- canonical response and stream events ----------------------------- */

typedef enum pg_stop_reason {
    PG_STOP_NONE = 0,
    PG_STOP_END_TURN,
    PG_STOP_MAX_TOKENS,
    PG_STOP_STOP_SEQUENCE,
    PG_STOP_TOOL_USE,
    PG_STOP_CONTENT_FILTER,
    PG_STOP_ERROR
} pg_stop_reason_t;

typedef struct pg_usage {
    int64_t input_tokens;
    int64_t output_tokens;
    int64_t cache_read_tokens;
    int64_t cache_write_tokens;
    int64_t reasoning_tokens;
} pg_usage_t;

typedef enum pg_event_kind {
    PG_EV_MESSAGE_START = 0, /* id, model; usage.input_tokens if known */
    PG_EV_BLOCK_START,       /* index, block; tool: id, name */
    PG_EV_TEXT_DELTA,        /* index, text */
    PG_EV_TOOL_ARGS_DELTA,   /* index, text: a fragment of the JSON */
    PG_EV_THINKING_DELTA,    /* index, text */
    PG_EV_SIGNATURE,         /* index, text: the thinking signature */
    PG_EV_BLOCK_STOP,        /* index */
    PG_EV_USAGE,             /* usage: totals so far */
    PG_EV_MESSAGE_STOP,      /* stop_reason, stop_sequence */
    PG_EV_ERROR              /* status, error_type, text: mid-stream failure */
} pg_event_kind_t;

/** One stream event. Slices are borrowed for the duration of the emit call
 * only; the receiver copies what it keeps. */
typedef struct pg_event {
    pg_event_kind_t kind;
    uint32_t index;       /* content block index, from 0 */
    pg_part_kind_t block; /* BLOCK_START: TEXT, TOOL_CALL, THINKING... */
    pg_str_t id;          /* MESSAGE_START: response id; tool call id */
    pg_str_t name;        /* BLOCK_START of a tool call: the tool name */
    pg_str_t model;       /* MESSAGE_START: the model that answers */
    pg_str_t text;        /* deltas; ERROR: the message */
    pg_usage_t usage;
    pg_stop_reason_t stop_reason;
    pg_str_t stop_sequence;
    int status;           /* ERROR: the HTTP status it corresponds to */
    pg_str_t error_type;  /* ERROR: "overloaded_error", "server_error"... */
} pg_event_t;

/* ---- provider configuration ------------------------------------------- */

/** What a providers[] entry of the config says, as the provider sees it.
 * Borrowed: valid while the config snapshot that created the instance
 * lives, which is at least as long as the instance. */
typedef struct pg_provider_config {
    pg_str_t name;     /* providers[].name */
    pg_str_t type;     /* providers[].type */
    pg_str_t api_key;  /* secret: never log or return it */
    pg_str_t base_url; /* empty: the type's default */
    const pg_kv_t *headers; /* extra upstream headers */
    size_t nheaders;
    /* The type's own block, flattened to strings: for type "mock" the keys
     * of providers[].mock ("reply", "chunks", "chunk_delay"); for any other
     * type the keys of providers[].options. */
    const pg_kv_t *options;
    size_t noptions;
    /* The environment variable api_key came from ("OPENAI_API_KEY" for
     * ${OPENAI_API_KEY:-}); empty when it was written literally. Safe to
     * show: it names the secret, it is not the secret. */
    pg_str_t api_key_env;
    uint64_t connect_timeout_ms;
    uint64_t first_byte_timeout_ms;
    uint64_t idle_timeout_ms;
    uint64_t total_timeout_ms;
    int max_retries;
    /* providers[].tls.ca_file: a PEM bundle of the only CAs that may sign
     * the upstream's certificate (empty: the system's CA store), and its
     * contents, read when the config was loaded. */
    pg_str_t tls_ca_file;
    pg_str_t tls_ca_pem;
    /* providers[].max_response_bytes: the most body bytes one upstream
     * response may have. */
    uint64_t max_response_bytes;
    /* providers[].http1_client: curl: http:// base URLs go through libcurl
     * instead of the gateway's native HTTP/1.1 client (https:// always
     * does). */
    bool http1_curl;
} pg_provider_config_t;

/** Looks up an option by key; returns PG_STR_NULL (p == NULL) if absent. */
PG_EXTERN pg_str_t pg_provider_config_option(const pg_provider_config_t *cfg,
                                             const char *key);

/* ---- provider calls ----------------------------------------------------- */

/** One request in flight to one provider. Owned by the gateway; the
 * provider borrows it from start() until it calls pg_provider_call_done()
 * or until its cancel() slot returns, whichever comes first. Used only on
 * the loop thread that runs the call. */
typedef struct pg_provider_call pg_provider_call_t;

/** The request to answer; lives as long as the call. */
PG_EXTERN const pg_request_t *pg_provider_call_request(pg_provider_call_t *call);
/** The worker loop this call runs on: schedule timers and I/O here. */
PG_EXTERN struct uv_loop_s *pg_provider_call_loop(pg_provider_call_t *call);
/** Memory that lives as long as the call (the request arena); NULL on OOM. */
PG_EXTERN void *pg_provider_call_alloc(pg_provider_call_t *call, size_t size);
/** A slot for the provider's per-call state. */
PG_EXTERN void pg_provider_call_set_data(pg_provider_call_t *call, void *data);
PG_EXTERN void *pg_provider_call_get_data(pg_provider_call_t *call);

/** Delivers one event to the client side, in order. Events must form a
 * well-formed stream: MESSAGE_START first, blocks started before their
 * deltas, MESSAGE_STOP last. Returns PG_OK; PG_PENDING when the event was
 * taken but the client reads slower than the provider produces: stop
 * producing until the gateway calls the vtable's resume() (providers
 * without resume may go on; what they send is queued); or PG_ECANCELED
 * when the client is gone (the provider then stops; cancel() follows).
 * Never re-entered: the gateway does not call the provider back from
 * inside emit. */
PG_EXTERN int pg_provider_call_emit(pg_provider_call_t *call, const pg_event_t *ev);

/** Headers of the upstream's answer to relay to the client with a
 * successful response (rate-limit headers, Retry-After). Copied. Call
 * before the first emit; later calls are ignored. PG_OK or PG_ENOMEM. */
PG_EXTERN int pg_provider_call_set_headers(pg_provider_call_t *call,
                                           const pg_kv_t *headers, size_t n);

/** A failure as the provider reports it. */
typedef struct pg_provider_error {
    int http_status;     /* the status the client should see: 400, 429, 502... */
    pg_str_t type;       /* "invalid_request_error", "rate_limit_error"... */
    pg_str_t message;    /* safe to show the client: never a key */
    pg_str_t param;      /* the request field at fault, when known */
    /* The failure came before any part of the answer (connect error,
     * timeout before the first byte, 429, 500, 502, 503, 529) and after
     * the provider's own retries: the gateway may try the next provider
     * of the routing's failover list. */
    bool retryable;
    /* Upstream headers to relay with the error (Retry-After, rate-limit
     * headers); borrowed for the done call. */
    const pg_kv_t *headers;
    size_t nheaders;
} pg_provider_error_t;

/** Ends the call: err NULL means success (the stream ended with
 * MESSAGE_STOP). Call exactly once, from the loop, never from inside
 * start(); after it the provider must not touch call. */
PG_EXTERN void pg_provider_call_done(pg_provider_call_t *call,
                                     const pg_provider_error_t *err);

/* ---- the vtable ---------------------------------------------------------- */

#define PG_PROVIDER_ABI_1 1u

struct pg_provider_vtable {
    uint32_t abi;     /* PG_PROVIDER_ABI_1; checked at registration */
    const char *type; /* the config's providers[].type, e.g. "mock" */
    /* Builds an instance for one providers[] entry, off the loop, while a
     * config snapshot is built. On failure returns a negative pg_err and
     * writes a message (which may start with the option key at fault,
     * "chunks: must be between 1 and 4096") into err; nothing to destroy. */
    int (*create)(const pg_provider_config_t *cfg, void **self, char *err,
                  size_t errlen);
    /* Frees an instance when its snapshot is released; never fails. */
    void (*destroy)(void *self);
    /* Starts answering a call. Returns PG_PENDING (events and done follow
     * from the loop) or a negative pg_err (no callback follows; the
     * gateway answers the client with 502). */
    int (*start)(void *self, pg_provider_call_t *call);
    /* The client went away: stop at once. After cancel returns the
     * provider never touches call again and does not call done. */
    void (*cancel)(void *self, pg_provider_call_t *call);
    /* Optional (may be NULL): the client drained what was queued after an
     * emit returned PG_PENDING; produce again. */
    void (*resume)(void *self, pg_provider_call_t *call);
};

#ifdef __cplusplus
}
#endif

#endif
