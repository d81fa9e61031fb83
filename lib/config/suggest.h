/* suggest.h: "did you mean" for unknown keys, provider types and provider
 * names: the closest candidate by edit distance (case-insensitive), when it
 * is close enough to be a likely typo. Pure functions; any thread. */
#ifndef PG_CONFIG_SUGGEST_H
#define PG_CONFIG_SUGGEST_H

#include <stddef.h>

#include "polyglot/polyglot.h"

/* Levenshtein distance, ASCII case folded; SIZE_MAX when either word is
 * longer than 64 bytes (too long to be a typo we can help with). */
size_t pg__cfg_edit_distance(pg_str_t a, pg_str_t b);

/* Incremental search: feed each candidate, read best at the end (p NULL
 * when nothing was close). */
typedef struct pg_cfg_suggest {
    pg_str_t word;
    pg_str_t best;
    size_t dist;
} pg_cfg_suggest_t;

void pg__cfg_suggest_init(pg_cfg_suggest_t *s, pg_str_t word);
void pg__cfg_suggest_add(pg_cfg_suggest_t *s, pg_str_t candidate);

#endif
