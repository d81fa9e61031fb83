/* json.h: small JSON helpers. Writing goes straight into a pg_buf_t (no
 * tree, no allocation beyond the buffer); reading uses cJSON trees.
 * Pure functions; any thread. */
#ifndef PG_BASE_JSON_H
#define PG_BASE_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/buf.h"

/* Appends s as a JSON string literal, quotes included, escaping what JSON
 * requires. Bytes that are not valid UTF-8 become U+FFFD. */
PG_WUR int pg_json_append_string(pg_buf_t *b, pg_str_t s);
/* Appends "key": (with the comma before it when comma is true). key is
 * one of our own ASCII literals: it is not escaped. */
PG_WUR int pg_json_append_key(pg_buf_t *b, bool comma, const char *key);
PG_WUR int pg_json_append_i64(pg_buf_t *b, int64_t v);
/* Writes v in decimal into out (no NUL); returns the length (<= 20). */
size_t pg_i64_to_chars(int64_t v, char out[24]);
/* Appends a double the way JSON needs it (no inf/nan: those become null). */
PG_WUR int pg_json_append_double(pg_buf_t *b, double v);

/* The string member key of obj, or PG_STR_NULL if absent or not a string. */
pg_str_t pg_json_get_str(const cJSON *obj, const char *key);
/* The slice of a cJSON string item (borrowed from the tree). */
pg_str_t pg_json_str(const cJSON *item);

/* Parses text[0..len) with cJSON (which needs no NUL terminator here).
 * On failure returns NULL and stores the byte offset of the error. */
cJSON *pg_json_parse(pg_str_t text, size_t *err_offset);

/* Parses text into a cJSON-shaped tree whose nodes and strings live in
 * arena (json_parse.c): no malloc per node. The tree is read-only and dies
 * with the arena: never cJSON_Delete it. NULL on malformed JSON (or OOM),
 * with the byte offset where parsing stopped in *err_offset. */
#include "base/arena.h"
cJSON *pg_json_parse_arena(pg_arena_t *a, pg_str_t text, size_t *err_offset);

/* The bytes of w (eight, as loaded from memory) that a JSON string cannot
 * hold as they are: '"', '\\' and control characters, as their high bits.
 * The usual word-at-a-time tests: flipping bit 1 turns '"' into 0x20 and
 * keeps control characters below it, so one "byte below 0x21" test finds
 * both, and a zero byte after xor with '\\' finds the other. Each test's
 * lowest set high bit is exact (false positives only sit above a true
 * hit), so on a little-endian load the lowest bit of the union is the
 * first such byte. */
static inline uint64_t pg_json_special_bytes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t low = w ^ (ones * 0x02);
    uint64_t slash = w ^ (ones * '\\');
    return (((low - ones * 0x21) & ~low) | ((slash - ones) & ~slash)) & highs;
}

/* The first byte in [p, end) that a JSON string cannot hold as it is:
 * '"', '\\' or a control character; end when there is none. Sixteen bytes
 * at a time with SSE2, which x86-64 always has (the same flip of bit 1 as
 * pg_json_special_bytes, then an unsigned min that leaves only bytes up to
 * 0x20 unchanged, and a compare with '\\'; movemask's lowest bit is the
 * first hit); then, and without SSE2, eight at a time
 * (pg_json_special_bytes). The parser's string scan and the log's escaper
 * both run on it. */
static inline const char *pg_json_find_special(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i flip = _mm_set1_epi8(0x02);
    const __m128i low = _mm_set1_epi8(0x20);
    const __m128i slash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i x = _mm_xor_si128(v, flip);
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(x, low), x),
                                   _mm_cmpeq_epi8(v, slash));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t hit = pg_json_special_bytes(w);
        if (hit != 0) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return p + (__builtin_ctzll(hit) >> 3);
#else
            break; /* the exact byte is found one at a time below */
#endif
        }
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
        p++;
    return p;
}

/* Finds the value of the top-level member key in the JSON object text
 * (already known to be valid JSON) without building a tree: [*start,
 * *end) is the value's bytes, quotes included for a string. A key written
 * with escapes is not matched. PG_OK, PG_ENOENT, or PG_EPARSE. For
 * passthrough, which rewrites one member and forwards every other byte. */
int pg_json_member_span(pg_str_t text, const char *key, size_t *start,
                        size_t *end);

#endif
