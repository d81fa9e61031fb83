/* fake_upstream.h: a scriptable fake LLM provider for tests. It listens on
 * 127.0.0.1:<ephemeral port>, runs its own thread and uv loop (llhttp for
 * requests), serves a queue of scripted responses in order, records every
 * request it receives and counts connections opened and closed.
 *
 * Threads: every fu_* function is called from test threads (any number);
 * the server runs on its own thread. Scripts handed to fu_push belong to the
 * fake from then on. Test code: aborts on out of memory (tc_xmalloc).
 *
 * Typical use:
 *     fu_t *fu = fu_start();
 *     fu_push(fu, fu_openai_chat_stream(&(fu_llm_opts_t){.text = "Hi there",
 *                                                         .nparts = 3}));
 *     ... point a client at http://127.0.0.1:<fu_port(fu)>/v1/chat/completions
 *     fu_request_t *rq = fu_request(fu, 0); ... fu_request_free(rq);
 *     fu_stop(fu);
 */
#ifndef PG_TEST_FAKE_UPSTREAM_H
#define PG_TEST_FAKE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fu fu_t;
typedef struct fu_resp fu_resp_t;

/* ---- server lifecycle ------------------------------------------------------ */

/* Starts the server thread, bound to 127.0.0.1:0. Aborts if it can't. */
fu_t *fu_start(void);
/* The port it listens on. */
int fu_port(fu_t *fu);
/* "http://127.0.0.1:<port><path>" (heap, free()). */
char *fu_url(fu_t *fu, const char *path);
/* Closes every connection and the listener, joins the thread, aborts if
 * its loop did not close clean (a leaked handle), frees everything. */
void fu_stop(fu_t *fu);
/* Forgets the script queue, the recorded requests and the connection
 * counters. Connections already open stay open and finish what they do. */
void fu_reset(fu_t *fu);

/* ---- scripts --------------------------------------------------------------- */

/* Appends a response to the queue (the fake owns r from now). Requests are
 * answered in queue order; when the queue runs out the last response
 * repeats. With an empty queue the fake answers 500 with an error text. */
void fu_push(fu_t *fu, fu_resp_t *r);

/* A response with a status and no headers or body yet. */
fu_resp_t *fu_resp_new(int status);
void fu_resp_free(fu_resp_t *r);
/* Adds a header (copied). Content-Length / Transfer-Encoding are added by
 * the fake unless set here. */
void fu_resp_header(fu_resp_t *r, const char *name, const char *value);
/* Adds a body part sent delay_ms after the previous one (or the head). */
void fu_resp_part(fu_resp_t *r, int delay_ms, const void *data, size_t len);
void fu_resp_part_str(fu_resp_t *r, int delay_ms, const char *s);
/* Adds a part of n bytes, all equal to c (oversized bodies). */
void fu_resp_part_fill(fu_resp_t *r, int delay_ms, size_t n, char c);
/* Transfer-Encoding: chunked instead of Content-Length (one chunk per part). */
void fu_resp_chunked(fu_resp_t *r);
/* Waits ms before sending the status line. */
void fu_resp_slow_head(fu_resp_t *r, int ms);
/* After the head and the parts: go silent, keep the connection open (it is
 * closed when the client closes it, or by fu_stop). */
void fu_resp_stall(fu_resp_t *r);
/* After the head and the parts: close the connection although the body is
 * not complete (Content-Length promises 100 more bytes; chunked: no final
 * chunk). */
void fu_resp_drop(fu_resp_t *r);
/* After the parts: send part again every every_ms until the client goes
 * away (chunked). */
void fu_resp_endless(fu_resp_t *r, int every_ms, const char *part);
/* Sends "Connection: close" and closes after the response. */
void fu_resp_close(fu_resp_t *r);

/* ---- realistic provider bodies --------------------------------------------- */

typedef struct fu_tool_call {
    const char *id;        /* "call_..." / "toolu_..."; NULL: generated */
    const char *name;
    const char *arguments; /* JSON object text, e.g. "{\"city\":\"Paris\"}" */
} fu_tool_call_t;

/* What the fake model answers. Zero values pick defaults. */
typedef struct fu_llm_opts {
    const char *id;       /* NULL: "chatcmpl-fake1" / "msg_fake1" */
    const char *model;    /* NULL: "gpt-4o-mini" / "claude-sonnet-4-20250514" */
    const char *text;     /* assistant text; NULL: no text block */
    const fu_tool_call_t *tools;
    size_t ntools;
    int input_tokens;     /* 0: 12 */
    int output_tokens;    /* 0: 7 */
    const char *stop_reason; /* NULL: "stop"/"tool_calls" (OpenAI),
                                "end_turn"/"tool_use" (Anthropic) */
    /* Streaming only: */
    int nparts;           /* text (and each tool's arguments) split into this
                             many deltas; 0: 1 */
    int delay_ms;         /* delay before each event after the first */
    bool usage_chunk;     /* OpenAI: stream_options.include_usage (final
                             chunk with empty choices and usage) */
} fu_llm_opts_t;

/* OpenAI chat.completion JSON (200, application/json). */
fu_resp_t *fu_openai_chat(const fu_llm_opts_t *o);
/* OpenAI chat.completion.chunk SSE: role chunk, content deltas, tool call
 * deltas, finish chunk, optional usage chunk, "data: [DONE]". Chunked. */
fu_resp_t *fu_openai_chat_stream(const fu_llm_opts_t *o);
/* Anthropic message JSON (200). */
fu_resp_t *fu_anthropic_message(const fu_llm_opts_t *o);
/* Anthropic SSE: message_start, ping, content_block_start/delta/stop per
 * block, message_delta (stop_reason, usage), message_stop. Chunked. */
fu_resp_t *fu_anthropic_stream(const fu_llm_opts_t *o);

/* OpenAI error body {"error":{"message","type","param","code"}}; code may
 * be NULL (null). retry_after_s > 0 adds Retry-After. */
fu_resp_t *fu_openai_error(int status, const char *type, const char *code,
                           const char *message, int retry_after_s);
/* Anthropic error body {"type":"error","error":{"type","message"},
 * "request_id"}. retry_after_s > 0 adds retry-after. */
fu_resp_t *fu_anthropic_error(int status, const char *type,
                              const char *message, int retry_after_s);
/* Shorthands with the providers' usual texts. */
fu_resp_t *fu_openai_rate_limited(int retry_after_s);  /* 429 */
fu_resp_t *fu_openai_server_error(void);               /* 500 */
fu_resp_t *fu_anthropic_rate_limited(int retry_after_s); /* 429 */
fu_resp_t *fu_anthropic_server_error(void);            /* 500 api_error */
fu_resp_t *fu_anthropic_overloaded(void);              /* 529 */
/* 200, application/json, a body that is not JSON. */
fu_resp_t *fu_malformed_json(void);
/* 200 whose body is an OpenAI error object. */
fu_resp_t *fu_openai_200_error(void);
/* 200 whose body is an Anthropic error object (api_error, "Internal
 * server error"). */
fu_resp_t *fu_anthropic_200_error(void);

/* ---- what the fake received ------------------------------------------------ */

typedef struct fu_header {
    char *name;
    char *value;
} fu_header_t;

/* One request, deep-copied. */
typedef struct fu_request {
    char *method;
    char *path;            /* request target as sent ("/v1/chat/completions") */
    fu_header_t *headers;
    size_t nheaders;
    char *body;            /* NUL-terminated after body_len bytes */
    size_t body_len;
    unsigned conn_id;      /* 1-based number of the connection it came on */
} fu_request_t;

size_t fu_requests_count(fu_t *fu);
/* A copy of request i (0-based), or NULL. Free with fu_request_free. */
fu_request_t *fu_request(fu_t *fu, size_t i);
void fu_request_free(fu_request_t *rq);
/* Value of the first header called name (case-insensitive) or NULL;
 * points into rq. */
const char *fu_request_header(const fu_request_t *rq, const char *name);

/* Connections accepted / closed (either side) since start or reset. */
unsigned fu_conns_opened(fu_t *fu);
unsigned fu_conns_closed(fu_t *fu);

/* Wait up to timeout_ms until at least n requests were received / n
 * connections are closed. True if that happened. */
bool fu_wait_requests(fu_t *fu, size_t n, int timeout_ms);
bool fu_wait_closed(fu_t *fu, unsigned n, int timeout_ms);

#endif
