/* arena.h: the per-request arena. Bump allocation from chunks, freed in one
 * go by pg_arena_destroy, with cleanup hooks for what is not memory (ngx
 * pool cleanups). Used by one thread at a time (the request's loop). */
#ifndef PG_BASE_ARENA_H
#define PG_BASE_ARENA_H

#include <stddef.h>

#include "polyglot/polyglot.h"

typedef struct pg_arena_chunk pg_arena_chunk_t;
typedef struct pg_arena_cleanup pg_arena_cleanup_t;

typedef struct pg_arena {
    unsigned char *cur, *end;     /* the free bytes of head (inline path) */
    pg_arena_chunk_t *head;       /* owned: the chunk being filled */
    pg_arena_cleanup_t *cleanups; /* run in reverse order of registration */
    size_t chunk_size;            /* size of the next ordinary chunk */
    size_t used;                  /* bytes handed out, for stats */
} pg_arena_t;

/* Initialises an arena whose ordinary chunks are chunk_size bytes (0: 4 KiB).
 * Allocates nothing until first use. */
void pg_arena_init(pg_arena_t *a, size_t chunk_size);
/* Runs the cleanups, then frees every chunk; the arena can be reused after
 * pg_arena_init. */
void pg_arena_destroy(pg_arena_t *a);

/* What an allocation of size takes: size rounded up to 16 (0 takes 16);
 * 0 when the rounding overflows. */
static inline size_t pg__arena_need(size_t size)
{
    size_t need = size ? (size + 15u) & ~(size_t)15u : 16u;
    return need >= size ? need : 0;
}

/* The head chunk has no room for need bytes: a new chunk. */
void *pg__arena_alloc_slow(pg_arena_t *a, size_t need);

/* size bytes aligned to 16; NULL on OOM. The common case (room left in
 * the current chunk) is inline: a request makes hundreds of these. */
static inline void *pg_arena_alloc(pg_arena_t *a, size_t size)
{
    size_t need = pg__arena_need(size);
    if (need == 0)
        return NULL; /* overflow */
    if ((size_t)(a->end - a->cur) >= need) {
        void *p = a->cur;
        a->cur += need;
        a->used += need;
        return p;
    }
    return pg__arena_alloc_slow(a, need);
}
void *pg_arena_calloc(pg_arena_t *a, size_t count, size_t size);
/* A NUL-terminated copy; the slice's n excludes the NUL. p NULL on OOM. */
pg_str_t pg_arena_strdup(pg_arena_t *a, pg_str_t s);
char *pg_arena_cstr(pg_arena_t *a, pg_str_t s);
/* printf into the arena; p NULL on OOM. */
pg_str_t pg_arena_printf(pg_arena_t *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The calling thread keeps up to 64 freed default-size chunks for its
 * next arenas (worker threads turn this on for request arenas); disable
 * frees what it kept and must run before such a thread exits. */
void pg_arena_cache_enable(void);
void pg_arena_cache_disable(void);

typedef void (*pg_arena_cleanup_fn)(void *ud);
/* Registers fn(ud) to run at destroy. PG_OK or PG_ENOMEM. */
int pg_arena_on_free(pg_arena_t *a, pg_arena_cleanup_fn fn, void *ud);

#endif
