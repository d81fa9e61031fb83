/* suggest.c: edit-distance suggestions for config typos (suggest.h). */
#include "config/suggest.h"

#include <stdint.h>

#include "base/str.h"

#define SUGGEST_MAX_LEN 64

static char fold(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

size_t pg__cfg_edit_distance(pg_str_t a, pg_str_t b)
{
    size_t row[SUGGEST_MAX_LEN + 1];
    if (a.n > SUGGEST_MAX_LEN || b.n > SUGGEST_MAX_LEN)
        return SIZE_MAX;
    for (size_t j = 0; j <= b.n; j++)
        row[j] = j;
    for (size_t i = 1; i <= a.n; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.n; j++) {
            size_t up = row[j];
            size_t cost = fold(a.p[i - 1]) == fold(b.p[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[b.n];
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
