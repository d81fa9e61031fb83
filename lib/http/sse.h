/* sse.h: Server-Sent Events framing for client streams. Appends whole
 * events to a pg_buf_t; the caller hands the buffer to the HTTP writer.
 * Pure functions; any thread. */
#ifndef PG_HTTP_SSE_H
#define PG_HTTP_SSE_H

#include "base/buf.h"

/* Appends "event: <event>\n" (skipped when event is empty), one
 * "data: <line>\n" per line of data (CR, LF and CRLF all split lines), and
 * the blank line that ends the event. */
PG_WUR int pg_sse_append_event(pg_buf_t *b, pg_str_t event, pg_str_t data);
/* Appends ": <text>\n\n", a comment (keepalive ping). */
PG_WUR int pg_sse_append_comment(pg_buf_t *b, pg_str_t text);

/* ---- parser (upstream streams) ---------------------------------------- */

/* Receives one complete event: event is the "event:" field (empty when
 * absent), data the "data:" lines joined with "\n". Both borrowed for the
 * call. Return PG_OK or a non-zero value that stops the parser and is
 * returned by feed. */
typedef int (*pg_sse_event_cb)(void *ud, pg_str_t event, pg_str_t data);

/* An SSE parser per the WHATWG event-stream rules: lines end with LF, CR
 * or CRLF (a CRLF may be split across two feeds); ":" lines are comments;
 * "field: value" drops one leading space; unknown fields (id, retry) are
 * ignored; a blank line dispatches the event when it has data. Bytes may
 * arrive in any split. An event bigger than max_event_bytes is an error. */
typedef struct pg_sse_parser {
    pg_buf_t line;      /* owned: the line being assembled */
    pg_buf_t event;     /* owned: the current event name */
    pg_buf_t data;      /* owned: the current data lines */
    bool has_data;      /* a data field was seen (even an empty one) */
    bool after_cr;      /* the previous byte was CR: skip a following LF */
    size_t max_event_bytes;
} pg_sse_parser_t;

void pg_sse_parser_init(pg_sse_parser_t *p, size_t max_event_bytes);
void pg_sse_parser_destroy(pg_sse_parser_t *p);
/* PG_OK, PG_ETOOBIG, PG_ENOMEM, or the callback's non-zero return. */
int pg_sse_parser_feed(pg_sse_parser_t *p, pg_str_t bytes, pg_sse_event_cb cb,
                       void *ud);
/* The stream ended. As in WHATWG, an event without its closing blank line
 * is not dispatched: PG_EPARSE if bytes of an unfinished line or event
 * remain (a truncated stream), else PG_OK. */
int pg_sse_parser_finish(pg_sse_parser_t *p, pg_sse_event_cb cb, void *ud);

#endif
