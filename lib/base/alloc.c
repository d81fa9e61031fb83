/* alloc.c: the replaceable allocator and the error-code table. */
#include "base/alloc.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static pg_malloc_fn alloc_malloc = malloc;
static pg_realloc_fn alloc_realloc = realloc;
static pg_calloc_fn alloc_calloc = calloc;
static pg_free_fn alloc_free = free;

int pg_set_allocator(pg_malloc_fn m, pg_realloc_fn r, pg_calloc_fn c,
                     pg_free_fn f)
{
    if (m == NULL || r == NULL || c == NULL || f == NULL)
        return PG_EINVAL;
    alloc_malloc = m;
    alloc_realloc = r;
    alloc_calloc = c;
    alloc_free = f;
    /* cJSON keeps its own hooks; point them at ours so its parse trees
     * obey the same allocator (and the same OOM tests). */
    cJSON_Hooks hooks = {.malloc_fn = m, .free_fn = f};
    cJSON_InitHooks(&hooks);
    return PG_OK;
}

void *pg__malloc(size_t size) { return alloc_malloc(size ? size : 1); }
void *pg__realloc(void *ptr, size_t size)
{
    return alloc_realloc(ptr, size ? size : 1);
}
void *pg__calloc(size_t count, size_t size)
{
    return alloc_calloc(count ? count : 1, size ? size : 1);
}
void pg__free(void *ptr)
{
    if (ptr != NULL)
        alloc_free(ptr);
}

char *pg__strndup(const char *p, size_t n)
{
    char *s = pg__malloc(n + 1);
    if (s == NULL)
        return NULL;
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *pg__strdup(const char *s) { return pg__strndup(s, strlen(s)); }

const char *pg_version(void) { return PG_VERSION_STRING; }

const char *pg_strerror(int err)
{
    switch (err) {
    case PG_OK: return "success";
    case PG_DECLINED: return "declined";
    case PG_PENDING: return "pending";
#define PG__ERR_TEXT(name, code, text) case PG_##name: return text;
    PG_ERR_MAP(PG__ERR_TEXT)
#undef PG__ERR_TEXT
    default: return "unknown error";
    }
}

const char *pg_err_name(int err)
{
    switch (err) {
    case PG_OK: return "PG_OK";
    case PG_DECLINED: return "PG_DECLINED";
    case PG_PENDING: return "PG_PENDING";
#define PG__ERR_NAME(name, code, text) case PG_##name: return "PG_" #name;
    PG_ERR_MAP(PG__ERR_NAME)
#undef PG__ERR_NAME
    default: return "PG_EUNKNOWN";
    }
}
