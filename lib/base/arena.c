/* arena.c: chunked bump allocator with cleanup hooks. */
#include "base/arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#define ARENA_ALIGN 16u
#define ARENA_DEFAULT_CHUNK 4096u

struct pg_arena_chunk {
    pg_arena_chunk_t *next;
    size_t size; /* usable bytes in data */
    size_t off;
    _Alignas(16) unsigned char data[];
};

struct pg_arena_cleanup {
    pg_arena_cleanup_t *next;
    pg_arena_cleanup_fn fn;
    void *ud;
};

void pg_arena_init(pg_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->cleanups = NULL;
    a->chunk_size = chunk_size ? chunk_size : ARENA_DEFAULT_CHUNK;
    a->used = 0;
}

void pg_arena_destroy(pg_arena_t *a)
{
    /* Cleanups first: they may read memory from the arena. */
    while (a->cleanups != NULL) {
        pg_arena_cleanup_t *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->ud);
    }
    pg_arena_chunk_t *ch = a->head;
    while (ch != NULL) {
        pg_arena_chunk_t *next = ch->next;
        pg__free(ch);
        ch = next;
    }
    a->head = NULL;
    a->used = 0;
}

static size_t align_up(size_t n)
{
    return (n + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
}

void *pg_arena_alloc(pg_arena_t *a, size_t size)
{
    size_t need = align_up(size ? size : 1);
    if (need < size)
        return NULL; /* overflow */
    pg_arena_chunk_t *ch = a->head;
    if (ch == NULL || ch->size - ch->off < need) {
        /* A large request gets a chunk of its own, linked behind the
         * current head, so the head's free space is not wasted. */
        size_t cap = need > a->chunk_size / 2 ? need : a->chunk_size;
        if (cap > SIZE_MAX - sizeof(*ch))
            return NULL;
        pg_arena_chunk_t *fresh = pg__malloc(sizeof(*fresh) + cap);
        if (fresh == NULL)
            return NULL;
        fresh->size = cap;
        fresh->off = 0;
        if (cap != a->chunk_size && ch != NULL) {
            fresh->next = ch->next;
            ch->next = fresh;
        } else {
            fresh->next = ch;
            a->head = fresh;
        }
        ch = fresh;
    }
    void *p = ch->data + ch->off;
    ch->off += need;
    a->used += need;
    return p;
}

void *pg_arena_calloc(pg_arena_t *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = pg_arena_alloc(a, count * size);
    if (p != NULL)
        memset(p, 0, count * size);
    return p;
}

pg_str_t pg_arena_strdup(pg_arena_t *a, pg_str_t s)
{
    char *p = pg_arena_alloc(a, s.n + 1);
    if (p == NULL)
        return PG_STR_NULL;
    if (s.n > 0)
        memcpy(p, s.p, s.n);
    p[s.n] = '\0';
    return (pg_str_t){p, s.n};
}

char *pg_arena_cstr(pg_arena_t *a, pg_str_t s)
{
    return (char *)pg_arena_strdup(a, s).p;
}

pg_str_t pg_arena_printf(pg_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return PG_STR_NULL;
    char *p = pg_arena_alloc(a, (size_t)n + 1);
    if (p == NULL)
        return PG_STR_NULL;
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return (pg_str_t){p, (size_t)n};
}

int pg_arena_on_free(pg_arena_t *a, pg_arena_cleanup_fn fn, void *ud)
{
    pg_arena_cleanup_t *c = pg_arena_alloc(a, sizeof(*c));
    if (c == NULL)
        return PG_ENOMEM;
    c->fn = fn;
    c->ud = ud;
    c->next = a->cleanups;
    a->cleanups = c;
    return PG_OK;
}
