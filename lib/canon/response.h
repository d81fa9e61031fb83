/* response.h: a whole model response built from its stream of pg_event_t
 * (every non-stream frontdoor answer accumulates one), plus the small arena
 * helpers the codecs use to build canonical requests.
 *
 * Everything lives in the arena given at init (the request's); nothing is
 * freed separately. One thread at a time (the request's loop). */
#ifndef PG_CANON_RESPONSE_H
#define PG_CANON_RESPONSE_H

#include <stdbool.h>

#include "base/arena.h"
#include "polyglot/provider.h"

/* Highest content block index accepted from a stream (a guard against a
 * runaway upstream, not a model limit). */
#define PG_CANON_MAX_BLOCKS 4096

struct pg_canon_block; /* response.c */

typedef struct pg_canon_response {
    pg_arena_t *arena;          /* borrowed: the request's */
    pg_str_t id;                /* MESSAGE_START id (arena copy) */
    pg_str_t model;             /* MESSAGE_START model (arena copy) */
    pg_usage_t usage;           /* the latest totals seen */
    pg_stop_reason_t stop_reason;
    pg_str_t stop_sequence;
    bool started;               /* MESSAGE_START seen */
    bool stopped;               /* MESSAGE_STOP seen: complete */
    bool failed;                /* an ERROR event arrived */
    int error_status;           /* ERROR: its HTTP status */
    pg_str_t error_type;        /* ERROR: its type */
    pg_str_t error_message;     /* ERROR: its text */

    /* Filled by pg_canon_response_finish: the started blocks in index
     * order, texts concatenated. */
    const pg_part_t *parts;
    size_t nparts;

    struct pg_canon_block *blocks; /* by index; grows in the arena */
    size_t nblocks;                /* slots in use (max index + 1) */
    size_t capblocks;
} pg_canon_response_t;

/* Starts an empty response whose memory comes from arena. */
void pg_canon_response_init(pg_canon_response_t *r, pg_arena_t *arena);

/* Adds one event. PG_OK; PG_EPARSE when the event breaks the stream order
 * (anything before MESSAGE_START, a second MESSAGE_START, a delta or stop
 * for a block never started or already stopped, a delta of the wrong kind
 * for its block, a block started twice, anything after MESSAGE_STOP or
 * ERROR); PG_ENOMEM. */
int pg_canon_response_add(pg_canon_response_t *r, const pg_event_t *ev);

/* Builds r->parts from the blocks. PG_OK, PG_EPARSE when MESSAGE_STOP has
 * not arrived, or PG_ENOMEM. */
int pg_canon_response_finish(pg_canon_response_t *r);

/* ---- arena helpers for building canonical values ------------------------ */

/* Makes room for one more element of size elem in the arena-backed array
 * *items (n used, *cap allocated), doubling it by copying. PG_OK or
 * PG_ENOMEM. */
int pg_canon_grow(pg_arena_t *a, void **items, size_t n, size_t *cap,
                  size_t elem);

#endif
