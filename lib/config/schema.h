/* schema.h: the table-driven key parser of the config. Each section is one
 * table of pg_cfg_field_t mapping a key onto a field of a C struct
 * (offsetof) with a typed parser: string, int with range, bool, duration,
 * size, enum, list of strings, string map, nested section, list of
 * sections, provider reference, or a custom function. pg__cfg_apply walks a
 * YAML mapping against a table: unknown keys, wrong types, out-of-range
 * values and missing required keys are reported with their path, and the
 * walk goes on so that every problem is found. Used by the config builder,
 * off the event loop. */
#ifndef PG_CONFIG_SCHEMA_H
#define PG_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "config/diag.h"
#include "config/yaml_tree.h"

/* A provider name that must resolve to an index, once providers[] is
 * known. */
typedef struct pg_cfg_ref {
    pg_str_t name;
    const char *path; /* for the error when it does not resolve */
    int *dst;         /* receives the index */
    struct pg_cfg_ref *next;
} pg_cfg_ref_t;

typedef struct pg_cfg_ctx {
    pg_arena_t *out;    /* the snapshot's arena: strings and arrays kept */
    pg_arena_t *tmp;    /* build-scoped: tree, raw items, refs */
    pg_cfg_diag_t *diag;
    pg_cfg_path_t path; /* of the node being parsed */
    pg_cfg_ref_t *refs; /* every provider reference, newest first */
    bool oom;
} pg_cfg_ctx_t;

/* Field types that collect several values carry their count and whether
 * the key was present at all. */
typedef struct pg_cfg_kvs {
    const pg_kv_t *kv; /* in out */
    size_t n;
    bool present;
} pg_cfg_kvs_t;

typedef struct pg_cfg_strs {
    const pg_str_t *s; /* in out */
    size_t n;
    bool present;
} pg_cfg_strs_t;

typedef struct pg_cfg_list {
    void *items; /* in tmp: n items of the table's item_size */
    bool *ok;    /* in tmp: ok[i] false when item i was not a mapping */
    size_t n;
    bool present;
} pg_cfg_list_t;

typedef struct pg_cfg_enum {
    const char *name;
    int value;
} pg_cfg_enum_t;

typedef enum pg_cfg_kind {
    PG_CFG_STR = 0,   /* pg_str_t, copied into out */
    PG_CFG_CSTR,      /* const char *, copied into out */
    PG_CFG_INT,       /* int in [min, max] */
    PG_CFG_U64,       /* uint64_t in [min, max] */
    PG_CFG_BOOL,      /* bool: true | false */
    PG_CFG_DURATION,  /* uint64_t milliseconds: "250ms", "30s", "5m" */
    PG_CFG_SIZE,      /* uint64_t bytes: "64KiB", "10MiB" */
    PG_CFG_ENUM,      /* int, from enums */
    PG_CFG_STRS,      /* pg_cfg_strs_t: list of strings */
    PG_CFG_KVS,       /* pg_cfg_kvs_t: mapping of scalars, as strings */
    PG_CFG_SECTION,   /* nested mapping parsed with sub into base + off */
    PG_CFG_LIST,      /* pg_cfg_list_t: list of mappings parsed with sub */
    PG_CFG_REF,       /* int: a provider name, resolved later (-1: none) */
    PG_CFG_CUSTOM,    /* parse(ctx, node, base + off) */
    PG_CFG_UNSUPPORTED/* known key, not built: msg (or "<key> is not
                         implemented in this version"); "false" is
                         accepted as "off" when off_ok (null, like for
                         every key, reads as absent) */
} pg_cfg_kind_t;

typedef struct pg_cfg_table pg_cfg_table_t;

typedef struct pg_cfg_field {
    const char *key;
    pg_cfg_kind_t kind;
    size_t off;
    bool required;
    int64_t min, max;             /* INT, U64; DURATION, SIZE: max if > 0 */
    const pg_cfg_enum_t *enums;   /* ENUM: ends with {NULL, 0} */
    const pg_cfg_table_t *sub;    /* SECTION, LIST */
    int (*parse)(pg_cfg_ctx_t *c, const pg_ynode_t *n, void *dst);
    const char *msg;              /* UNSUPPORTED */
    bool off_ok;                  /* UNSUPPORTED */
} pg_cfg_field_t;

struct pg_cfg_table {
    const pg_cfg_field_t *fields;
    size_t nfields;
    size_t item_size;             /* LIST: bytes per item */
    void (*init)(void *item);     /* LIST, SECTION: defaults; may be NULL */
};

#define PG_CFG_TABLE(fields, type, init)                                     \
    {(fields), sizeof(fields) / sizeof((fields)[0]), sizeof(type), (init)}

/* Parses the mapping n into base with t. A non-mapping is reported. Returns
 * PG_OK (problems, if any, were reported) or PG_ENOMEM. */
int pg__cfg_apply(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                  const pg_cfg_table_t *t, void *base);

/* Parses one value with field f into base + f->off. */
int pg__cfg_field(pg_cfg_ctx_t *c, const pg_cfg_field_t *f,
                  const pg_ynode_t *n, void *base);

/* Helpers for custom parsers. Each reports at c->path and returns false
 * when the node does not have the shape. */
bool pg__cfg_want_map(pg_cfg_ctx_t *c, const pg_ynode_t *n);
bool pg__cfg_want_seq(pg_cfg_ctx_t *c, const pg_ynode_t *n);
bool pg__cfg_want_scalar(pg_cfg_ctx_t *c, const pg_ynode_t *n,
                         const char *what);
/* Records a provider reference at c->path. PG_OK or PG_ENOMEM. */
int pg__cfg_add_ref(pg_cfg_ctx_t *c, pg_str_t name, int *dst);
/* Reports "unknown key" with a suggestion among the table's keys. */
void pg__cfg_unknown_key(pg_cfg_ctx_t *c, pg_str_t key,
                         const pg_cfg_table_t *t);
/* True when n is absent, null, or the scalar "false": an "off" value. */
bool pg__cfg_is_off(const pg_ynode_t *n);

/* Marks an allocation failure; returns PG_ENOMEM. */
static inline int pg__cfg_oom(pg_cfg_ctx_t *c)
{
    c->oom = true;
    return PG_ENOMEM;
}

#endif
