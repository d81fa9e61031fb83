/* h1.c: the native HTTP/1.1 client for http:// upstreams (see h1.h). What
 * libcurl spends per transfer (easy handle setup, header lists, liveness
 * polls, multi_socket bookkeeping) costs more CPU than the rest of a
 * proxied request; this path does one uv_write of the request (head built
 * in one buffer, body borrowed) and parses the response with llhttp
 * straight from a per-worker read buffer.
 *
 * This file is the client's lifetime and the entry points of h1.h; the
 * work is in h1_host.c (hosts, names, DNS caches), h1_pool.c (idle
 * connections), h1_conn.c (connections), h1_xfer.c (a transfer from
 * connecting to its end), h1_deadline.c (its timeouts) and h1_resp.c (the
 * response), sharing the structs in h1_int.h.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1.h"

#include <stdlib.h>

#include "upstream/h1_conn.h"
#include "upstream/h1_deadline.h"
#include "upstream/h1_host.h"
#include "upstream/h1_int.h"
#include "upstream/h1_pool.h"
#include "upstream/h1_xfer.h"

static bool env_set(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0';
}

int pg__h1_new(uv_loop_t *loop, pg_upstream_stats_t *stats, pg_h1_t **out)
{
    pg_h1_t *h = pg__malloc(sizeof *h);

    *out = NULL;
    if (h == NULL)
        return PG_ENOMEM;
    memset(h, 0, offsetof(pg_h1_t, rbuf));
    h->loop = loop;
    h->stats = stats;
    h->max_idle = H1_POOL_MAX_IDLE;
    h->idle_ms = H1_POOL_IDLE_MS;
    h->neg_ms = H1_DNS_NEG_MS;
    pg_list_init(&h->xfers);
    pg_list_init(&h->hosts);
    pg_list_init(&h->lru);
    /* Read once per worker: curl reads them per transfer, and a gateway
     * does not change its environment while it runs. */
    h->proxy_env = env_set("http_proxy") || env_set("HTTP_PROXY") ||
                   env_set("all_proxy") || env_set("ALL_PROXY");
    uv_timer_init(loop, &h->pool_timer);
    h->pending = 1;
    *out = h;
    return PG_OK;
}

static void on_pool_timer_close(uv_handle_t *hd)
{
    pg__h1_pending_done(pg_container_of((uv_timer_t *)hd, pg_h1_t, pool_timer));
}

void pg__h1_close(pg_h1_t *h, void (*done_cb)(void *ud), void *ud)
{
    pg_list_t *n, *t;

    if (h == NULL || h->closing)
        return;
    h->closing = true;
    h->done_cb = done_cb;
    h->done_ud = ud;
    h->pending++; /* until the end of this function */
    pg_list_foreach_safe(n, t, &h->xfers)
    {
        h1_xfer_t *x = pg_container_of(n, h1_xfer_t, node);
        x->canceled = true;
        pg__h1_xfer_detach(x, false);
        /* One on the stack is freed by that frame when it returns. */
        if (!x->in_user && !x->in_parse)
            pg__h1_xfer_destroy(x);
    }
    while (!pg_list_empty(&h->lru))
        pg__h1_conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    pg_list_foreach_safe(n, t, &h->hosts)
    {
        h1_host_t *ho = pg_container_of(n, h1_host_t, node);
        if (ho->resolving)
            uv_cancel((uv_req_t *)&ho->gai);
        else if (ho->refs == 0)
            pg__h1_host_free(ho);
    }
    uv_timer_stop(&h->pool_timer);
    uv_close((uv_handle_t *)&h->pool_timer, on_pool_timer_close);
    pg__h1_pending_done(h);
}

void pg__h1_set_pool(pg_h1_t *h, unsigned max_idle, uint64_t idle_ms)
{
    h->max_idle = max_idle;
    h->idle_ms = idle_ms;
    while (h->nidle > h->max_idle)
        pg__h1_conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    pg__h1_pool_arm(h);
}

void pg__h1_set_dns_negative(pg_h1_t *h, uint64_t ms) { h->neg_ms = ms; }

uint64_t pg__h1_dns_lookups(const pg_h1_t *h) { return h->lookups; }

int pg__h1_start(pg_h1_t *h, const pg_upstream_opts_t *o,
                 const pg_upstream_cbs_t *cbs, void *ud,
                 pg_upstream_xfer_t **out)
{
    pg_h1_url_t u;
    h1_xfer_t *x;
    h1_host_t *ho;

    *out = NULL;
    if (h->proxy_env || !pg__h1_parse_url_cached(&h->urls, o->url, &u))
        return PG_DECLINED;
    if (h->closing)
        return PG_EINVAL;
    x = pg__calloc(1, sizeof *x);
    if (x == NULL)
        return PG_ENOMEM;
    if (pg__h1_build_request(&u, o, &x->req, &x->reqn, &x->is_head) != PG_OK ||
        (ho = pg__h1_host_get(h, &u)) == NULL) {
        pg__free(x->req);
        pg__free(x);
        return PG_ENOMEM;
    }
    x->magic = PG_H1_XFER_MAGIC;
    x->h = h;
    x->cbs = *cbs;
    x->ud = ud;
    x->body = o->body;
    x->connect_ms = o->connect_timeout_ms;
    x->first_byte_ms = o->first_byte_timeout_ms;
    x->idle_ms = o->idle_timeout_ms;
    x->total_ms = o->total_timeout_ms;
    x->max_bytes = o->max_response_bytes;
    x->t0 = uv_now(h->loop);
    pg__uphead_init(&x->head);
    pg_list_init(&x->wnode);
    uv_timer_init(h->loop, &x->timer);
    h->pending++;
    pg_list_push_back(&h->xfers, &x->node);
    h->stats->transfers_started++;
    h->stats->transfers_active++;
    x->in_start = true;
    x->host = ho;
    ho->refs++;
    pg__h1_xfer_set_phase(x, PH_CONNECT);
    pg__h1_xfer_connect(x, true);
    x->in_start = false;
    *out = (pg_upstream_xfer_t *)(void *)x;
    return PG_OK;
}

void pg__h1_cancel(pg_upstream_xfer_t *px)
{
    h1_xfer_t *x = (h1_xfer_t *)(void *)px;

    if (x->done || x->canceled)
        return;
    x->canceled = true;
    if (x->in_user || x->in_parse)
        return; /* the frame that called out frees it */
    pg__h1_xfer_cancel_now(x);
}

void pg__h1_resume(pg_upstream_xfer_t *px)
{
    h1_xfer_t *x = (h1_xfer_t *)(void *)px;

    if (x->done || x->canceled)
        return;
    if (!x->paused) {
        if (x->in_user) /* inside on_data, before it returns PG_PENDING */
            x->resume_early = true;
        return;
    }
    if (!x->resume_due) {
        x->resume_due = true;
        pg__h1_xfer_arm(x);
    }
}
