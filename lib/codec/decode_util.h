/* decode_util.h: what the request decoders (openai_chat_decode.c,
 * anthropic_messages_decode.c) and the upstream answer decoders share:
 * field paths ("messages[2].content[0].type"), typed getters for JSON
 * members, arena copies, growing part lists and the list of unmapped
 * top-level keys. The getters check the same things for every dialect;
 * how a refusal is worded (and the few places where the APIs judge a
 * value differently) is the dialect's, given as a pg_dec_dialect_t.
 * Pure functions over the caller's arena; the request's loop thread. */
#ifndef PG_CODEC_DECODE_UTIL_H
#define PG_CODEC_DECODE_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/arena.h"
#include "polyglot/provider.h"

/* Room for one field path, NUL included; a deeper path is cut, which only
 * shortens an error message. */
#define PG_DEC_PATH_MAX 160

/* The JSON kinds a getter can require. */
typedef enum pg_dec_kind {
    PG_DEC_STRING,
    PG_DEC_NUMBER,
    PG_DEC_INTEGER,
    PG_DEC_BOOLEAN,
    PG_DEC_OBJECT,
    PG_DEC_ARRAY,
    PG_DEC_KINDS
} pg_dec_kind_t;

typedef struct pg_dec pg_dec_t;

/* How one API refuses a field. Each hook fills the dialect's error
 * (d->err) and returns PG_EPARSE, or PG_ENOMEM when the message cannot be
 * stored. path is the field's bracket path. */
typedef struct pg_dec_dialect {
    /* What a value of each kind is called ("a string", "a valid
     * string"), passed to type(). */
    const char *expected[PG_DEC_KINDS];
    int (*missing)(pg_dec_t *d, const char *path);
    int (*type)(pg_dec_t *d, const char *path, const char *expected,
                const cJSON *got);
    /* got is below bound (below) or above it; kind is PG_DEC_NUMBER or
     * PG_DEC_INTEGER (then bound and got are whole numbers). */
    int (*range)(pg_dec_t *d, const char *path, pg_dec_kind_t kind,
                 bool below, double bound, double got);
    /* An integer larger than this in magnitude is of the wrong type. */
    double int_max_abs;
    /* An infinite number (1e999) is of the wrong type, not out of range. */
    bool finite_numbers;
    /* A required member sent as null counts as missing; otherwise it is a
     * value of the wrong type ("got null"). */
    bool null_is_missing;
} pg_dec_dialect_t;

/* One decode call: the arena everything lands in, the dialect, and the
 * dialect's error struct the hooks fill. */
struct pg_dec {
    pg_arena_t *a;
    const pg_dec_dialect_t *dialect;
    void *err;
};

/* Formats a field path into dst[PG_DEC_PATH_MAX]. Only %s and %zu are
 * understood: paths are built for every field decoded, error or not, so
 * this stays off vsnprintf. */
void pg_dec_pathf(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The member key of obj when present and not null (SDKs that serialise
 * every attribute send null for "not given"); NULL otherwise. */
const cJSON *pg_dec_member(const cJSON *obj, const char *key);

/* *out = a copy of s in a. PG_OK or PG_ENOMEM. */
int pg_dec_copy(pg_arena_t *a, pg_str_t s, pg_str_t *out);

/* *out = the compact JSON text of it, in a. PG_OK or PG_ENOMEM. */
int pg_dec_print_json(pg_arena_t *a, const cJSON *it, pg_str_t *out);

/* A list of parts that grows in the arena while a message is decoded. */
typedef struct pg_dec_parts {
    pg_part_t *v;
    size_t n, cap;
} pg_dec_parts_t;

/* Appends a zeroed part to ps and points *out at it. PG_OK or PG_ENOMEM. */
int pg_dec_parts_push(pg_arena_t *a, pg_dec_parts_t *ps, pg_part_t **out);

/* The top-level keys of the object root that are not in known[0..nknown),
 * copied into a as *out[0..*n) (NULL and 0 when there are none). */
int pg_dec_unmapped(pg_arena_t *a, const cJSON *root,
                    const char *const *known, size_t nknown,
                    const pg_str_t **out, size_t *n);

/* True when it is a value of kind (an integer is any number here). */
bool pg_dec_is(const cJSON *it, pg_dec_kind_t kind);

/* PG_OK when it (at path) is a value of kind, else the dialect's
 * wrong-type refusal. */
int pg_dec_expect(pg_dec_t *d, const cJSON *it, const char *path,
                  pg_dec_kind_t kind);

/* An array at path, with room for its items: after the kind check, one
 * zeroed element of elem bytes per item (one at least) in d's arena and
 * *n the item count. NULL with *rc the refusal or PG_ENOMEM. */
void *pg_dec_array(pg_dec_t *d, const cJSON *arr, const char *path,
                   size_t elem, size_t *n, int *rc);

/* The required member key of obj, whose path is path, as *out: refused
 * when missing or not of kind. */
int pg_dec_field(pg_dec_t *d, const cJSON *obj, const char *key,
                 const char *path, pg_dec_kind_t kind, const cJSON **out);

/* A string value it, copied into the arena. */
int pg_dec_string(pg_dec_t *d, const cJSON *it, const char *path,
                  pg_str_t *out);

/* The required string member key of obj at parent.key, copied. */
int pg_dec_req_string(pg_dec_t *d, const cJSON *obj, const char *parent,
                      const char *key, pg_str_t *out);

/* A number in [min, max]. */
int pg_dec_number(pg_dec_t *d, const cJSON *it, const char *path,
                  double min, double max, double *out);

/* A whole number >= min. */
int pg_dec_int(pg_dec_t *d, const cJSON *it, const char *path, int64_t min,
               int64_t *out);

int pg_dec_bool(pg_dec_t *d, const cJSON *it, const char *path, bool *out);

#endif
