/* expand.h: ${VAR} and ${VAR:-default} in config string values. "$$" is a
 * literal "$"; a "$" not followed by "{" or "$" stays as it is. VAR is
 * [A-Za-z_][A-Za-z0-9_]*; ${VAR:-default} uses default when VAR is unset or
 * empty (as sh does). Reads the process environment (getenv): called off
 * the event loop while a snapshot is built, never concurrently with
 * setenv. */
#ifndef PG_CONFIG_EXPAND_H
#define PG_CONFIG_EXPAND_H

#include "base/arena.h"
#include "config/diag.h"
#include "config/yaml_tree.h"

#define PG_CFG_VAR_MAX 128

/* Why an expansion failed. */
typedef enum pg_cfg_expand_err {
    PG_CFG_EXPAND_SYNTAX = 1, /* unterminated "${" or a bad name */
    PG_CFG_EXPAND_UNSET       /* ${VAR} with VAR unset and no default */
} pg_cfg_expand_err_t;

/* Expands in into *out: in itself when it holds no "$", else a copy in a.
 * Returns PG_OK, PG_ENOMEM, or PG_ECONFIG with *why set and, for
 * PG_CFG_EXPAND_UNSET, the variable's name in var (NUL-terminated). Never
 * copies the value into var or the message: values may be secrets. */
int pg__cfg_expand_str(pg_arena_t *a, pg_str_t in, pg_str_t *out,
                       pg_cfg_expand_err_t *why, char var[PG_CFG_VAR_MAX]);

/* A problem held back: an unset variable inside providers[provider], which
 * is an error only if something references that provider. */
typedef struct pg_cfg_deferred {
    size_t provider;
    const char *path; /* in the tree's arena */
    char var[PG_CFG_VAR_MAX];
    struct pg_cfg_deferred *next;
} pg_cfg_deferred_t;

/* Expands every scalar value of the tree in place (keys are left alone).
 * Reports syntax errors and unset variables through d, except unset
 * variables under providers[i], which go on *deferred. PG_OK or
 * PG_ENOMEM. */
int pg__cfg_expand_tree(pg_arena_t *a, pg_ynode_t *root, pg_cfg_diag_t *d,
                        pg_cfg_deferred_t **deferred);

/* Reports a deferred problem as an error. */
void pg__cfg_report_unset(pg_cfg_diag_t *d, const char *path,
                          const char *var);

#endif
