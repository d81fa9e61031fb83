/* suggest.c: edit-distance suggestions for config typos (suggest.h). */
#include "config/suggest.h"

#include <stdint.h>
#include <string.h>

#include "base/str.h"

#define SUGGEST_MAX_LEN 64

static char fold(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Optimal string alignment distance: insertions, deletions,
 * substitutions and swaps of two neighbours ("prot" -> "port") each cost
 * one. */
size_t pg__cfg_edit_distance(pg_str_t a, pg_str_t b)
{
    size_t prev2[SUGGEST_MAX_LEN + 1], prev[SUGGEST_MAX_LEN + 1],
        cur[SUGGEST_MAX_LEN + 1];
    if (a.n > SUGGEST_MAX_LEN || b.n > SUGGEST_MAX_LEN)
        return SIZE_MAX;
    for (size_t j = 0; j <= b.n; j++)
        prev[j] = j;
    for (size_t i = 1; i <= a.n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= b.n; j++) {
            size_t cost = fold(a.p[i - 1]) == fold(b.p[j - 1]) ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && fold(a.p[i - 1]) == fold(b.p[j - 2]) &&
                fold(a.p[i - 2]) == fold(b.p[j - 1]) &&
                prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        memcpy(prev2, prev, sizeof(prev));
        memcpy(prev, cur, sizeof(cur));
    }
    return prev[b.n];
}

void pg__cfg_suggest_init(pg_cfg_suggest_t *s, pg_str_t word)
{
    s->word = word;
    s->best = PG_STR_NULL;
    s->dist = SIZE_MAX;
}

void pg__cfg_suggest_add(pg_cfg_suggest_t *s, pg_str_t candidate)
{
    size_t d = pg__cfg_edit_distance(s->word, candidate);
    /* Close enough to be a typo: one edit for short words, up to a third
     * of the word (at most 3) for longer ones. */
    size_t len = s->word.n > candidate.n ? s->word.n : candidate.n;
    size_t limit = len / 3;
    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    if (d <= limit && d < s->dist) {
        s->dist = d;
        s->best = candidate;
    }
}
