/* arena.c: chunked bump allocator with cleanup hooks, and a per-thread
 * cache of freed ordinary chunks. Any thread; an arena belongs to one
 * thread at a time. */
#include "base/arena.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(__SANITIZE_ADDRESS__)
#define __SANITIZE_ADDRESS__ 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define CHUNK_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define CHUNK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define CHUNK_POISON(p, n) ((void)(p), (void)(n))
#define CHUNK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_DEFAULT_CHUNK 4096u
/* Freed default-size chunks a thread keeps for its next arenas: a
 * request's arena then costs no malloc/free pair per chunk. Bounded, so
 * a burst does not pin memory: 64 x 4 KiB per thread at most. */
#define ARENA_CACHE_MAX 64u

struct pg_arena_chunk {
    pg_arena_chunk_t *next;
    size_t size; /* usable bytes in data */
    _Alignas(16) unsigned char data[];
};

struct pg_arena_cleanup {
    pg_arena_cleanup_t *next;
    pg_arena_cleanup_fn fn;
    void *ud;
};

/* Only on threads that asked (pg_arena_cache_enable): a thread that never
 * gives its cache back would otherwise leak it at exit. */
static _Thread_local struct {
    pg_arena_chunk_t *head;
    unsigned n;
    bool on;
} cache;

void pg_arena_cache_enable(void) { cache.on = true; }

void pg_arena_cache_disable(void)
{
    cache.on = false;
    while (cache.head != NULL) {
        pg_arena_chunk_t *ch = cache.head;
        CHUNK_UNPOISON(ch, sizeof(*ch));
        cache.head = ch->next;
        pg__free(ch);
    }
    cache.n = 0;
}

static pg_arena_chunk_t *chunk_new(size_t cap)
{
    if (cap == ARENA_DEFAULT_CHUNK && cache.head != NULL) {
        pg_arena_chunk_t *ch = cache.head;
        CHUNK_UNPOISON(ch, sizeof(*ch) + cap);
        cache.head = ch->next;
        cache.n--;
        return ch;
    }
    return pg__malloc(sizeof(pg_arena_chunk_t) + cap);
}

static void chunk_free(pg_arena_chunk_t *ch)
{
    if (cache.on && ch->size == ARENA_DEFAULT_CHUNK &&
        cache.n < ARENA_CACHE_MAX) {
        ch->next = cache.head;
        cache.head = ch;
        cache.n++;
        /* Under ASan a stale pointer into a cached chunk still faults;
         * only the link stays readable. */
        CHUNK_POISON(ch->data, ch->size);
        return;
    }
    pg__free(ch);
}

void pg_arena_init(pg_arena_t *a, size_t chunk_size)
{
    a->cur = a->end = NULL;
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
        chunk_free(ch);
        ch = next;
    }
    a->head = NULL;
    a->cur = a->end = NULL;
    a->used = 0;
}

/* The head chunk (its free bytes are a->cur..a->end) has no room for need
 * (pg__arena_need, never 0), or there is none. A chunk behind the head is
 * full by construction. */
void *pg__arena_alloc_slow(pg_arena_t *a, size_t need)
{
    /* A large request gets a chunk of its own, linked behind the current
     * head, so the head's free space is not wasted. */
    size_t cap = need > a->chunk_size / 2 ? need : a->chunk_size;
    if (cap > SIZE_MAX - sizeof(pg_arena_chunk_t))
        return NULL;
    pg_arena_chunk_t *fresh = chunk_new(cap);
    if (fresh == NULL)
        return NULL;
    fresh->size = cap;
    a->used += need;
    if (cap != a->chunk_size && a->head != NULL) {
        fresh->next = a->head->next;
        a->head->next = fresh;
        return fresh->data;
    }
    fresh->next = a->head;
    a->head = fresh;
    a->cur = fresh->data + need;
    a->end = fresh->data + cap;
    return fresh->data;
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
