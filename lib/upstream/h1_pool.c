/* h1_pool.c: the native client's pool of idle keep-alive connections
 * (see h1_pool.h). Each idle connection sits in its host's list (reused
 * most recent first) and in the client's LRU (oldest first), which one
 * uv_timer per client walks to close connections idle longer than
 * h->idle_ms. The timer is closed by pg__h1_close.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1_pool.h"

#include "upstream/h1_conn.h"

static void on_pool_timer(uv_timer_t *t);

void pg__h1_pool_arm(pg_h1_t *h)
{
    if (pg_list_empty(&h->lru) || h->closing) {
        uv_timer_stop(&h->pool_timer);
        return;
    }
    h1_conn_t *c = pg_container_of(h->lru.next, h1_conn_t, lnode);
    uint64_t due = c->idle_since + h->idle_ms, now = uv_now(h->loop);
    uv_timer_start(&h->pool_timer, on_pool_timer, due > now ? due - now : 0,
                   0);
}

static void on_pool_timer(uv_timer_t *t)
{
    pg_h1_t *h = pg_container_of(t, pg_h1_t, pool_timer);
    uint64_t now = uv_now(h->loop);

    while (!pg_list_empty(&h->lru)) {
        h1_conn_t *c = pg_container_of(h->lru.next, h1_conn_t, lnode);
        if (c->idle_since + h->idle_ms > now)
            break;
        pg__h1_conn_close(c);
    }
    pg__h1_pool_arm(h);
}

/* A connection whose response ended cleanly waits here for the next
 * transfer to its host; its read stays started, so an EOF or stray bytes
 * from the upstream close it at once. */
void pg__h1_pool_put(h1_conn_t *c)
{
    pg_h1_t *h = c->h;
    bool was_empty = pg_list_empty(&h->lru);

    c->idle_since = uv_now(h->loop);
    pg__h1_conn_read_start(c);
    pg_list_push_back(&c->host->idle, &c->hnode);
    pg_list_push_back(&h->lru, &c->lnode);
    h->nidle++;
    while (h->nidle > h->max_idle)
        pg__h1_conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    if (was_empty)
        pg__h1_pool_arm(h);
}
