/* h1_int.h: the structs the native HTTP/1.1 client's files share
 * (private to lib/upstream/h1*.c; not installed). The client (pg_h1_t,
 * one per pg_upstream_t), a host (host:port: resolved addresses, idle
 * connections), a connection (uv_tcp_t + llhttp parser; in the pool while
 * idle) and a transfer (the caller's pg_upstream_xfer_t); and the count
 * that frees the client. Each h1_*.c declares its own functions in its
 * own header beside it.
 *
 * Lifetime: a host lives while connections or waiting transfers hold it;
 * memory holding a uv handle is freed in that handle's close callback;
 * the pg_h1_t is freed when its last handle, request and host are gone
 * (h->pending reaches 0, pg__h1_pending_done).
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_INT_H
#define PG_UPSTREAM_H1_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <llhttp.h>

#include "base/alloc.h"
#include "base/list.h"
#include "upstream/h1.h"
#include "upstream/h1_req.h"
#include "upstream/head.h"

#define H1_ADDRS_MAX 4     /* addresses tried per host */
#define H1_READ_BUF (64 * 1024)

typedef struct h1_host h1_host_t;
typedef struct h1_conn h1_conn_t;
typedef struct h1_xfer h1_xfer_t;

struct pg_h1 {
    uv_loop_t *loop;            /* borrowed */
    pg_upstream_stats_t *stats; /* borrowed: the pg_upstream_t's */
    uv_timer_t pool_timer;      /* closes connections idle too long */
    pg_list_t xfers;            /* h1_xfer.node, not yet ended */
    pg_list_t hosts;            /* h1_host.node */
    pg_list_t lru;              /* h1_conn.lnode: idle, oldest first */
    size_t nhosts, nidle;
    unsigned max_idle;
    uint64_t idle_ms;
    uint64_t neg_ms;            /* negative DNS window, H1_DNS_NEG_MS */
    uint64_t lookups;           /* getaddrinfo calls started */
    unsigned pending;           /* open handles, DNS requests and hosts */
    bool closing;
    bool proxy_env;             /* a proxy variable is set: curl serves */
    pg_h1_url_cache_t urls;     /* transfers' URLs, taken apart */
    void (*done_cb)(void *ud);
    void *done_ud;
    char rbuf[H1_READ_BUF];     /* every read lands here, parsed at once */
};

struct h1_host {
    pg_h1_t *h;
    pg_list_t node;             /* in h->hosts */
    char *key;                  /* "host:port" (owned, one block with name) */
    size_t keyn;
    char *name;                 /* host without brackets, NUL-terminated */
    size_t namen;
    char port[8];
    unsigned portn;
    struct sockaddr_storage addr[H1_ADDRS_MAX];
    unsigned naddr, pref;       /* pref: the address that last worked */
    bool numeric;               /* an IP literal: never resolved */
    uint64_t resolved_at;       /* loop ms of the answer in addr */
    uint64_t stale_until;       /* a refresh failed: addr serves till then */
    uint64_t failed_at;         /* loop ms of the failed lookup, if failed */
    int fail_status;            /* its libuv status (0: no usable address) */
    uv_getaddrinfo_t gai;
    bool resolving;
    bool failed;                /* never resolved; the last lookup failed */
    pg_list_t waiters;          /* h1_xfer.wnode, waiting for the answer */
    pg_list_t idle;             /* h1_conn.hnode, most recent last */
    unsigned refs;              /* connections + waiting transfers */
};

struct h1_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    pg_h1_t *h;
    h1_host_t *host;            /* a reference while not closing */
    h1_xfer_t *x;               /* NULL: idle in the pool */
    pg_list_t hnode, lnode;     /* in host->idle and h->lru while idle */
    uint64_t idle_since;
    llhttp_t parser;
    char *pend;                 /* unparsed bytes kept while paused (owned) */
    size_t pendn;
    bool writing, reading, closing;
};

typedef enum h1_phase {
    PH_CONNECT = 0,  /* resolving and connecting */
    PH_HEAD,         /* request written, waiting for the head */
    PH_BODY,         /* reading the body */
    PH_PAUSED        /* on_data asked for a pause */
} h1_phase_t;

struct h1_xfer {
    uint32_t magic;             /* PG_H1_XFER_MAGIC: first, see h1.h */
    pg_h1_t *h;
    pg_list_t node;             /* in h->xfers until ended */
    pg_list_t wnode;            /* in host->waiters while resolving */
    h1_host_t *host;            /* a reference while waiting */
    h1_conn_t *conn;
    pg_upstream_cbs_t cbs;
    void *ud;
    uv_timer_t timer;           /* deadlines, deferred failure and resume */
    uint64_t timer_at;          /* when it fires, if timer_armed */
    h1_phase_t phase;
    uint64_t t0, phase_at, last_read;
    uint64_t connect_ms, first_byte_ms, idle_ms, total_ms, max_bytes;
    uint64_t body_bytes, head_raw;
    char *req;                  /* request line and headers (owned) */
    size_t reqn;
    pg_str_t body;              /* borrowed */
    unsigned addr_i, tries;     /* address being connected, attempts */
    pg_uphead_t head;
    pg_upstream_result_t forced;
    char errbuf[200];
    bool is_head;               /* HEAD request: the response has no body */
    bool reused, retried, got_byte, keep_alive, complete, rest;
    bool head_delivered, paused, resume_early, resume_due, fail_due;
    bool in_start, in_user, in_parse, in_timer, flush_due, canceled, done;
    bool timer_armed;
};

/* Frees h once pg__h1_close began and nothing is pending any more, then
 * calls its done_cb. */
static inline void pg__h1_maybe_finish(pg_h1_t *h)
{
    if (!h->closing || h->pending > 0)
        return;
    void (*cb)(void *) = h->done_cb;
    void *ud = h->done_ud;
    pg__free(h);
    if (cb)
        cb(ud);
}

/* One pending handle, request or host is gone. */
static inline void pg__h1_pending_done(pg_h1_t *h)
{
    h->pending--;
    pg__h1_maybe_finish(h);
}

#endif
