/* oom_alloc.c: the failing, counting allocator of oom_alloc.h. Test
 * thread only. */
#include <stdlib.h>

#include "oom_alloc.h"
#include "polyglot/polyglot.h"

static long fail_at = -1; /* the allocation that fails; -1: none */
static long calls;
static long live;

static bool fail_now(void)
{
    return fail_at >= 0 && calls++ == fail_at;
}

static void *oom_malloc(size_t n)
{
    if (fail_now())
        return NULL;
    void *p = malloc(n);
    live += p != NULL;
    return p;
}

static void *oom_calloc(size_t c, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = calloc(c, n);
    live += p != NULL;
    return p;
}

static void *oom_realloc(void *old, size_t n)
{
    if (fail_now())
        return NULL;
    void *p = realloc(old, n);
    live += old == NULL && p != NULL;
    return p;
}

static void oom_free(void *p)
{
    live -= p != NULL;
    free(p);
}

void oom_install(void)
{
    fail_at = -1;
    if (pg_set_allocator(oom_malloc, oom_realloc, oom_calloc, oom_free) !=
        PG_OK)
        abort();
}

void oom_uninstall(void)
{
    fail_at = -1;
    if (pg_set_allocator(malloc, realloc, calloc, free) != PG_OK)
        abort();
}

void oom_arm(long n)
{
    calls = 0;
    fail_at = n;
}

long oom_calls(void)
{
    return calls;
}

long oom_live(void)
{
    return live;
}
