/* yaml_tree.h: a YAML document as a small immutable tree (scalars,
 * mappings, sequences), each node with its 1-based line and column, built
 * from libyaml's event parser into an arena. The builder rejects what the
 * config cannot mean: duplicate keys (reported, parsing goes on), aliases
 * (reported, the alias reads as null), non-scalar keys, more than one
 * document and nesting deeper than PG_YTREE_MAX_DEPTH (fatal). Called off
 * the event loop by the config builder; the tree lives in the caller's
 * arena. */
#ifndef PG_CONFIG_YAML_TREE_H
#define PG_CONFIG_YAML_TREE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "config/diag.h"

#define PG_YTREE_MAX_DEPTH 64

typedef enum pg_ynode_kind {
    PG_YNODE_SCALAR = 0,
    PG_YNODE_MAP,
    PG_YNODE_SEQ
} pg_ynode_kind_t;

typedef struct pg_yentry pg_yentry_t;

typedef struct pg_ynode {
    pg_ynode_kind_t kind;
    uint32_t line, col;    /* 1-based, where the node starts */
    /* SCALAR: a plain (unquoted) "", "~" or "null": the key reads as
     * absent. */
    bool null;
    /* SCALAR: its value could not be expanded; the problem is reported
     * (or deferred) already, so later stages skip the node silently. */
    bool bad;
    pg_str_t scalar;       /* SCALAR: the text; env expansion replaces it */
    pg_yentry_t *entries;  /* MAP: in document order, no duplicates */
    struct pg_ynode *items;/* SEQ: linked through next */
    size_t n;              /* MAP: entries, SEQ: items */
    struct pg_ynode *next; /* the following item of the parent SEQ */
} pg_ynode_t;

struct pg_yentry {
    pg_str_t key;
    uint32_t line, col;
    pg_ynode_t *value;
    pg_yentry_t *next;
};

/* Parses yaml[0..len). Returns PG_OK with *root set (NULL for an empty
 * document) even when it reported non-fatal problems (duplicate keys,
 * aliases: count them through d); PG_ECONFIG after reporting a syntax or
 * structure error (path "", message with origin:line:column); PG_ENOMEM. */
int pg__ytree_parse(pg_arena_t *a, const char *yaml, size_t len,
                    const char *origin, pg_cfg_diag_t *d, pg_ynode_t **root);

/* "a mapping", "a list", "a string": for messages. */
const char *pg__ynode_kind_name(const pg_ynode_t *n);

#endif
