/* event.h: where decoded canonical events go. A stream decoder (upstream
 * bytes -> pg_event_t) hands each event to a sink; the provider's sink
 * forwards it with pg_provider_call_emit. Loop thread of the request. */
#ifndef PG_CANON_EVENT_H
#define PG_CANON_EVENT_H

#include "polyglot/provider.h"

/* Receives one event (slices borrowed for the call). Returns PG_OK, or a
 * non-zero value that stops the decoder and is returned by its feed. */
typedef int (*pg_event_sink_fn)(void *ud, const pg_event_t *ev);

/* The stop reason by name, both dialects ("stop", "end_turn", "length",
 * "max_tokens", "tool_calls", "tool_use", "stop_sequence",
 * "content_filter"...); PG_STOP_NONE when unknown. */
pg_stop_reason_t pg_stop_reason_from(pg_str_t name);

#endif
