/* alloc.h: the library's allocator hook (pg_set_allocator). Every
 * allocation in libpolyglot goes through these so a host can swap the
 * allocator and tests can fail the Nth allocation. Any thread. */
#ifndef PG_BASE_ALLOC_H
#define PG_BASE_ALLOC_H

#include <stddef.h>

#include "polyglot/polyglot.h"

void *pg__malloc(size_t size);
void *pg__realloc(void *ptr, size_t size);
void *pg__calloc(size_t count, size_t size);
void pg__free(void *ptr);
/* A NUL-terminated copy of p[0..n); NULL on OOM. */
char *pg__strndup(const char *p, size_t n);
char *pg__strdup(const char *s);

#endif
