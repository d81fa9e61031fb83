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

#endif
