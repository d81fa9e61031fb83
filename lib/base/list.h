/* list.h: an intrusive doubly linked list (libuv's queue, h2o's
 * linklist). A node lives inside its owner; adding never allocates. */
#ifndef PG_BASE_LIST_H
#define PG_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

#define pg_container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

typedef struct pg_list {
    struct pg_list *prev, *next;
} pg_list_t;

static inline void pg_list_init(pg_list_t *l) { l->prev = l->next = l; }
static inline bool pg_list_empty(const pg_list_t *l) { return l->next == l; }
static inline bool pg_list_linked(const pg_list_t *n)
{
    return n->next != NULL && n->next != n;
}
static inline void pg_list_push_back(pg_list_t *l, pg_list_t *n)
{
    n->prev = l->prev;
    n->next = l;
    l->prev->next = n;
    l->prev = n;
}
static inline void pg_list_remove(pg_list_t *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define pg_list_foreach_safe(node, tmp, head)                              \
    for ((node) = (head)->next, (tmp) = (node)->next; (node) != (head);   \
         (node) = (tmp), (tmp) = (node)->next)

#endif
