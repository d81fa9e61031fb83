/* diag.h: how the config builder reports problems. A pg_cfg_diag_t counts
 * every (path, message) pair, forwards each to the caller's pg_diag_cb and
 * keeps the first for the one-line summary; a pg_cfg_path_t is the key path
 * ("providers[2].timeouts.connect") that the walkers push and pop as they
 * descend. Nothing here allocates. Used by one thread: the one building a
 * snapshot (off the event loop). */
#ifndef PG_CONFIG_DIAG_H
#define PG_CONFIG_DIAG_H

#include <stddef.h>

#include "polyglot/gateway.h"

#define PG_CFG_PATH_MAX 256
#define PG_CFG_MSG_MAX 512

typedef struct pg_cfg_diag {
    pg_diag_cb cb; /* may be NULL */
    void *ud;
    size_t count;                  /* problems reported so far */
    char first_path[PG_CFG_PATH_MAX];
    char first_msg[PG_CFG_MSG_MAX];
} pg_cfg_diag_t;

typedef struct pg_cfg_path {
    char s[PG_CFG_PATH_MAX]; /* always NUL-terminated */
    size_t n;
} pg_cfg_path_t;

void pg__cfg_diag_init(pg_cfg_diag_t *d, pg_diag_cb cb, void *ud);

/* Reports one problem at path ("" for the whole file). */
void pg__cfg_report(pg_cfg_diag_t *d, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "<path>: <message> (and N more problems)" into errbuf
 * (PG_ERRMSG_SIZE bytes); errbuf may be NULL. Nothing when count is 0. */
void pg__cfg_summary(const pg_cfg_diag_t *d, char *errbuf);

static inline void pg__cfg_path_init(pg_cfg_path_t *p)
{
    p->s[0] = '\0';
    p->n = 0;
}

/* Append ".key" (just "key" at the root) or "[i]"; each returns a mark for
 * pg__cfg_path_restore. A path that would not fit is cut, never overrun. */
size_t pg__cfg_path_key(pg_cfg_path_t *p, pg_str_t key);
size_t pg__cfg_path_index(pg_cfg_path_t *p, size_t i);
void pg__cfg_path_restore(pg_cfg_path_t *p, size_t mark);

#endif
