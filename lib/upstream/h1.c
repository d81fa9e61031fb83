/* h1.c: the native HTTP/1.1 client for http:// upstreams (see h1.h). What
 * libcurl spends per transfer (easy handle setup, header lists, liveness
 * polls, multi_socket bookkeeping) costs more CPU than the rest of a
 * proxied request; this path does one uv_write of the request (head built
 * in one buffer, body borrowed) and parses the response with llhttp
 * straight from a per-worker read buffer.
 *
 * Objects: a host (host:port: resolved addresses, idle connections), a
 * connection (uv_tcp_t + llhttp parser; in the pool while idle), and a
 * transfer (the caller's pg_upstream_xfer_t). A host lives while
 * connections or waiting transfers hold it; memory holding a uv handle is
 * freed in that handle's close callback; the pg_h1_t is freed when its
 * last handle, request and host are gone (h->pending reaches 0).
 *
 * Names: a host resolves with uv_getaddrinfo on libuv's threadpool, at
 * most one lookup at a time; transfers that need the answer meanwhile
 * wait on the host for it. An answer serves H1_DNS_TTL_MS; then the next
 * transfer waits for a refresh, and if that fails the old answer serves
 * H1_DNS_STALE_MS more.
 * A name that never resolved fails its transfers at once, with the
 * lookup's error, for H1_DNS_NEG_MS after the failed lookup. Hosts nobody
 * uses are forgotten beyond H1_HOSTS_MAX, answers and failures with them.
 *
 * Re-entrancy: user callbacks run inside llhttp's callbacks. A transfer
 * canceled from inside its own callback (in_user) or while its parser runs
 * (in_parse) is only marked; the frame that called out frees it when the
 * callback returns. Nothing calls back from inside start/cancel/resume:
 * failures found there go through the transfer's timer at 0 ms.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <llhttp.h>

#include "base/alloc.h"
#include "base/list.h"
#include "upstream/h1_req.h"
#include "upstream/head.h"

#define H1_POOL_MAX_IDLE 256
#define H1_POOL_IDLE_MS (60 * 1000)
#define H1_DNS_TTL_MS (60 * 1000)
#define H1_DNS_STALE_MS (5 * 1000) /* after a failed refresh, till the next */
/* How long a name that failed to resolve fails its transfers at once,
 * without a new lookup. Each lookup takes one of libuv's threadpool
 * threads (4 by default, shared with file and other work) for as long as
 * the resolver takes, up to its own timeouts of several seconds; without
 * this a misconfigured or failing name under load queues a lookup per
 * request and starves the pool. 5 s keeps that to one lookup per name
 * every 5 s, yet is short next to an operator's fix or a resolver's
 * recovery, and matches how long a failed refresh keeps serving an old
 * answer (H1_DNS_STALE_MS). */
#define H1_DNS_NEG_MS (5 * 1000)
#define H1_HOSTS_MAX 64    /* unreferenced hosts kept for their DNS answer */
#define H1_ADDRS_MAX 4     /* addresses tried per host */
#define H1_READ_BUF (64 * 1024)
/* Status line, CRLFs and the like on top of the header bytes head.h caps. */
#define H1_HEAD_RAW_MAX (PG_UPHEAD_MAX_BYTES + 8192)

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

static void conn_close(h1_conn_t *c);
static void xfer_connect(h1_xfer_t *x, bool may_reuse);
static void xfer_end(h1_xfer_t *x, pg_upstream_result_t r, const char *msg);
static void xfer_arm(h1_xfer_t *x);
static void host_unref(h1_host_t *ho);
static void conn_read_start(h1_conn_t *c);
static void xfer_conn_lost(h1_xfer_t *x, const char *what, int err);

/* ---- lifetime of the client ------------------------------------------- */

static void maybe_finish(pg_h1_t *h)
{
    if (!h->closing || h->pending > 0)
        return;
    void (*cb)(void *) = h->done_cb;
    void *ud = h->done_ud;
    pg__free(h);
    if (cb)
        cb(ud);
}

static void pending_done(pg_h1_t *h)
{
    h->pending--;
    maybe_finish(h);
}

/* ---- hosts and names ------------------------------------------------------ */

static void host_free(h1_host_t *ho)
{
    pg_h1_t *h = ho->h;

    pg_list_remove(&ho->node);
    h->nhosts--;
    pg__free(ho->key);
    pg__free(ho);
    pending_done(h);
}

static void host_unref(h1_host_t *ho)
{
    if (--ho->refs == 0 && !ho->resolving && ho->h->closing)
        host_free(ho);
}

/* Keeps the table bounded: forgets hosts nothing uses any more. */
static void hosts_trim(pg_h1_t *h)
{
    pg_list_t *n, *t;
    pg_list_foreach_safe(n, t, &h->hosts)
    {
        h1_host_t *ho = pg_container_of(n, h1_host_t, node);
        if (h->nhosts < H1_HOSTS_MAX)
            return;
        if (ho->refs == 0 && !ho->resolving)
            host_free(ho);
    }
}

static bool numeric_addr(h1_host_t *ho, unsigned port)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ho->addr[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ho->addr[0];

    if (uv_ip4_addr(ho->name, (int)port, a4) == 0 ||
        uv_ip6_addr(ho->name, (int)port, a6) == 0) {
        ho->naddr = 1;
        ho->numeric = true;
        return true;
    }
    return false;
}

static h1_host_t *host_get(pg_h1_t *h, const pg_h1_url_t *u)
{
    char key[300];
    int kn;
    pg_list_t *n;

    for (n = h->hosts.next; n != &h->hosts; n = n->next) {
        h1_host_t *ho = pg_container_of(n, h1_host_t, node);
        if (ho->portn == u->port && ho->namen == u->name.n &&
            memcmp(ho->name, u->name.p, u->name.n) == 0)
            return ho;
    }
    kn = snprintf(key, sizeof key, "%.*s:%u", (int)u->name.n, u->name.p,
                  u->port);
    if (kn < 0 || (size_t)kn >= sizeof key)
        return NULL;
    hosts_trim(h);
    h1_host_t *ho = pg__calloc(1, sizeof *ho);
    char *blk = pg__malloc((size_t)kn + 1 + u->name.n + 1);
    if (ho == NULL || blk == NULL) {
        pg__free(ho);
        pg__free(blk);
        return NULL;
    }
    memcpy(blk, key, (size_t)kn + 1);
    ho->key = blk;
    ho->keyn = (size_t)kn;
    ho->name = blk + kn + 1;
    memcpy(ho->name, u->name.p, u->name.n);
    ho->name[u->name.n] = '\0';
    ho->namen = u->name.n;
    snprintf(ho->port, sizeof ho->port, "%u", u->port);
    ho->portn = u->port;
    ho->h = h;
    pg_list_init(&ho->waiters);
    pg_list_init(&ho->idle);
    numeric_addr(ho, u->port);
    pg_list_push_back(&h->hosts, &ho->node);
    h->nhosts++;
    h->pending++;
    return ho;
}

static bool host_fresh(const h1_host_t *ho, uint64_t now)
{
    return ho->numeric ||
           (ho->naddr > 0 && (now - ho->resolved_at < H1_DNS_TTL_MS ||
                              now < ho->stale_until));
}

static void xfer_fail(h1_xfer_t *x, pg_upstream_result_t r, const char *fmt,
                      ...) __attribute__((format(printf, 3, 4)));

/* The one failure of a name that did not resolve: from the lookup, from
 * starting it, or from the negative cache, so a transfer failed by the
 * cache reads exactly like the one the lookup failed. */
static void xfer_fail_resolve(h1_xfer_t *x, const h1_host_t *ho, int status)
{
    xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED, "could not resolve host %s: %s",
              ho->name, status == 0 ? "no address" : uv_strerror(status));
}

/* Inside the negative window of a failed lookup (see H1_DNS_NEG_MS). */
static bool host_failing(const h1_host_t *ho, uint64_t now)
{
    return ho->failed && now - ho->failed_at < ho->h->neg_ms;
}

static void on_gai(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    h1_host_t *ho = pg_container_of(req, h1_host_t, gai);
    pg_h1_t *h = ho->h;
    unsigned n = 0;

    ho->resolving = false;
    h->pending--; /* the request; the host itself still counts */
    for (struct addrinfo *ai = res; ai && n < H1_ADDRS_MAX; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof ho->addr[0])
            memcpy(&ho->addr[n++], ai->ai_addr, ai->ai_addrlen);
    }
    uv_freeaddrinfo(res);
    if (status == 0 && n > 0) {
        ho->naddr = n;
        ho->pref = 0;
        ho->resolved_at = uv_now(h->loop);
    }
    /* A failed refresh keeps serving the last answer for a while; only a
     * name never resolved fails its waiters. */
    bool usable = ho->naddr > 0;
    if (usable && (status != 0 || n == 0))
        ho->stale_until = uv_now(h->loop) + H1_DNS_STALE_MS;
    /* A name never resolved is remembered as failing for neg_ms (see
     * H1_DNS_NEG_MS), whatever the reason: an answer about the name
     * (EAI_NONAME), the resolver failing (EAI_AGAIN, EAI_FAIL) or a local
     * shortage, as a new lookup at once would add load to each. A lookup
     * canceled by pg__h1_close says nothing. */
    ho->failed = !usable && status != UV_ECANCELED;
    if (ho->failed) {
        ho->failed_at = uv_now(h->loop);
        ho->fail_status = status;
    }
    /* One waiter at a time: a callback may cancel others or close h. The
     * extra reference keeps ho alive meanwhile. */
    ho->refs++;
    while (!pg_list_empty(&ho->waiters) && !h->closing) {
        h1_xfer_t *x = pg_container_of(ho->waiters.next, h1_xfer_t, wnode);
        pg_list_remove(&x->wnode);
        if (usable) {
            xfer_connect(x, false); /* takes x's reference to ho */
            continue;
        }
        x->host = NULL;
        ho->refs--;
        xfer_fail_resolve(x, ho, status);
    }
    if (--ho->refs == 0 && h->closing)
        host_free(ho);
    else
        maybe_finish(h);
}

/* Starts a lookup unless one runs. PG_OK or a libuv error. */
static int host_resolve(h1_host_t *ho)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    int rc;

    if (ho->resolving)
        return 0;
    rc = uv_getaddrinfo(ho->h->loop, &ho->gai, on_gai, ho->name, ho->port,
                        &hints);
    if (rc == 0) {
        ho->resolving = true;
        ho->h->pending++;
        ho->h->lookups++;
    }
    return rc;
}

/* ---- the pool -------------------------------------------------------------- */

static void on_pool_timer(uv_timer_t *t);

static void pool_arm(pg_h1_t *h)
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

static void pool_remove(h1_conn_t *c)
{
    pg_list_remove(&c->hnode);
    pg_list_remove(&c->lnode);
    c->h->nidle--;
}

static void on_pool_timer(uv_timer_t *t)
{
    pg_h1_t *h = pg_container_of(t, pg_h1_t, pool_timer);
    uint64_t now = uv_now(h->loop);

    while (!pg_list_empty(&h->lru)) {
        h1_conn_t *c = pg_container_of(h->lru.next, h1_conn_t, lnode);
        if (c->idle_since + h->idle_ms > now)
            break;
        conn_close(c);
    }
    pool_arm(h);
}

/* A connection whose response ended cleanly waits here for the next
 * transfer to its host; its read stays started, so an EOF or stray bytes
 * from the upstream close it at once. */
static void pool_put(h1_conn_t *c)
{
    pg_h1_t *h = c->h;
    bool was_empty = pg_list_empty(&h->lru);

    c->idle_since = uv_now(h->loop);
    conn_read_start(c);
    pg_list_push_back(&c->host->idle, &c->hnode);
    pg_list_push_back(&h->lru, &c->lnode);
    h->nidle++;
    while (h->nidle > h->max_idle)
        conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    if (was_empty)
        pool_arm(h);
}

static h1_conn_t *pool_take(h1_host_t *ho)
{
    if (pg_list_empty(&ho->idle))
        return NULL;
    h1_conn_t *c = pg_container_of(ho->idle.prev, h1_conn_t, hnode);
    pool_remove(c);
    return c;
}

/* ---- connections ----------------------------------------------------------- */

static void on_conn_close(uv_handle_t *hd)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)hd, h1_conn_t, tcp);
    pg_h1_t *h = c->h;

    pg__free(c);
    pending_done(h);
}

/* Closes at once (the upstream sees the FIN now); the memory goes in the
 * close callback. */
static void conn_close(h1_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->x == NULL && pg_list_linked(&c->lnode))
        pool_remove(c);
    if (c->x != NULL) {
        c->x->conn = NULL;
        c->x = NULL;
    }
    pg__free(c->pend);
    c->pend = NULL;
    c->pendn = 0;
    h1_host_t *ho = c->host;
    c->host = NULL;
    uv_close((uv_handle_t *)&c->tcp, on_conn_close);
    if (ho != NULL)
        host_unref(ho);
}

static void on_alloc(uv_handle_t *hd, size_t want, uv_buf_t *buf)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)hd, h1_conn_t, tcp);

    (void)want;
    *buf = uv_buf_init(c->h->rbuf, sizeof c->h->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void conn_read_start(h1_conn_t *c)
{
    if (!c->reading && !c->closing &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void conn_read_stop(h1_conn_t *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

static void attach(h1_xfer_t *x, h1_conn_t *c);
static void on_connect(uv_connect_t *req, int status);

/* Opens a new connection for x to its host's address x->addr_i. */
static void conn_open(h1_xfer_t *x, h1_host_t *ho)
{
    pg_h1_t *h = x->h;
    h1_conn_t *c = pg__calloc(1, sizeof *c);
    int rc;

    if (c == NULL) {
        xfer_fail(x, PG_UPSTREAM_ERROR, "out of memory");
        return;
    }
    c->h = h;
    pg_list_init(&c->hnode);
    pg_list_init(&c->lnode);
    if ((rc = uv_tcp_init(h->loop, &c->tcp)) != 0) {
        pg__free(c);
        xfer_fail(x, PG_UPSTREAM_ERROR, "socket: %s", uv_strerror(rc));
        return;
    }
    h->pending++;
    c->host = ho;
    ho->refs++;
    attach(x, c);
    uv_tcp_nodelay(&c->tcp, 1);
    h->stats->connections_opened++;
    rc = uv_tcp_connect(&c->creq, &c->tcp,
                        (const struct sockaddr *)&ho->addr[x->addr_i],
                        on_connect);
    if (rc != 0) {
        conn_close(c);
        xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED, "connect to %s failed: %s",
                  ho->key, uv_strerror(rc));
    }
}

/* ---- transfers: connecting and sending --------------------------------------- */

static const llhttp_settings_t parser_settings;

static void attach(h1_xfer_t *x, h1_conn_t *c)
{
    x->conn = c;
    c->x = x;
    llhttp_init(&c->parser, HTTP_RESPONSE, &parser_settings);
}

static void xfer_set_phase(h1_xfer_t *x, h1_phase_t p)
{
    x->phase = p;
    x->phase_at = x->last_read = uv_now(x->h->loop);
    xfer_arm(x);
}

static void on_write(uv_write_t *req, int status);

static void xfer_send(h1_xfer_t *x)
{
    h1_conn_t *c = x->conn;
    uv_buf_t b[2] = {uv_buf_init(x->req, (unsigned)x->reqn),
                     uv_buf_init((char *)x->body.p, (unsigned)x->body.n)};
    unsigned nb = x->body.n > 0 ? 2 : 1;
    int rc;

    xfer_set_phase(x, PH_HEAD);
    conn_read_start(c);
    /* One writev, usually complete: then no write request at all (libuv
     * 1.44 re-arms the socket in epoll after every uv_write, a syscall
     * per request). What the socket did not take goes with uv_write. */
    rc = uv_try_write((uv_stream_t *)&c->tcp, b, nb);
    if (rc == UV_EAGAIN)
        rc = 0;
    if (rc >= 0) {
        size_t done = (size_t)rc;
        if (done >= x->reqn + x->body.n)
            return;
        if (done >= b[0].len) {
            done -= b[0].len;
            b[0] = uv_buf_init((char *)x->body.p + done,
                               (unsigned)(x->body.n - done));
            nb = 1;
        } else {
            b[0].base += done;
            b[0].len -= (unsigned)done;
        }
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, b, nb, on_write);
        if (rc == 0) {
            c->writing = true;
            return;
        }
    }
    xfer_conn_lost(x, "send failed", rc);
}

/* The connection failed before the response began. A reused pooled
 * connection the upstream had closed meanwhile gets one more try on a
 * fresh one, as curl does; anything else ends the transfer. */
static void xfer_conn_lost(h1_xfer_t *x, const char *what, int err)
{
    bool retry = x->reused && !x->got_byte && !x->retried;
    h1_host_t *ho = x->conn != NULL ? x->conn->host : NULL;

    if (retry && ho != NULL) {
        x->retried = true;
        x->host = ho; /* xfer_connect takes this reference */
        ho->refs++;
        conn_close(x->conn);
        xfer_set_phase(x, PH_CONNECT);
        xfer_connect(x, false);
        return;
    }
    if (x->conn != NULL)
        conn_close(x->conn);
    if (x->got_byte || err != UV_EOF)
        xfer_fail(x, PG_UPSTREAM_BROKEN, "%s: %s", what, uv_strerror(err));
    else
        xfer_fail(x, PG_UPSTREAM_BROKEN, "empty reply from server");
}

static void on_connect(uv_connect_t *req, int status)
{
    h1_conn_t *c = pg_container_of(req, h1_conn_t, creq);
    h1_xfer_t *x = c->x;

    if (status == UV_ECANCELED || c->closing || x == NULL)
        return;
    if (status == 0) {
        c->host->pref = x->addr_i;
        xfer_send(x);
        return;
    }
    h1_host_t *ho = c->host;
    ho->refs++; /* conn_close drops the connection's reference */
    conn_close(c);
    if (++x->tries < ho->naddr) {
        x->addr_i = (x->addr_i + 1) % ho->naddr;
        conn_open(x, ho);
    } else {
        xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED, "connect to %s failed: %s",
                  ho->key, uv_strerror(status));
    }
    host_unref(ho);
}

static void on_write(uv_write_t *req, int status)
{
    h1_conn_t *c = pg_container_of(req, h1_conn_t, wreq);

    c->writing = false;
    if (status == UV_ECANCELED || c->closing)
        return;
    /* Once the response began, the read side tells how it ends (an
     * upstream may answer early and stop reading the request). */
    if (status < 0 && c->x != NULL && !c->x->got_byte)
        xfer_conn_lost(c->x, "send failed", status);
}

/* Finds a connection for x: a pooled one if allowed, else a new one once
 * the host's address is known. */
static void xfer_connect(h1_xfer_t *x, bool may_reuse)
{
    h1_host_t *ho = x->host;
    h1_conn_t *c;
    uint64_t now;
    int rc;

    x->host = NULL; /* the reference passes to the connection or waiter */
    x->got_byte = false;
    x->head_raw = 0;
    if (may_reuse && (c = pool_take(ho)) != NULL) {
        host_unref(ho);
        x->reused = true;
        attach(x, c);
        xfer_send(x);
        return;
    }
    x->reused = false;
    now = uv_now(x->h->loop);
    if (!host_fresh(ho, now)) {
        /* A lookup in flight answers this transfer too (one lookup per
         * host, however many wait); without one, a recent failure does. */
        if (!ho->resolving && host_failing(ho, now)) {
            xfer_fail_resolve(x, ho, ho->fail_status);
            host_unref(ho);
            return;
        }
        if ((rc = host_resolve(ho)) != 0) {
            xfer_fail_resolve(x, ho, rc);
            host_unref(ho);
            return;
        }
        x->host = ho;
        pg_list_push_back(&ho->waiters, &x->wnode);
        return;
    }
    x->tries = 0;
    x->addr_i = ho->pref < ho->naddr ? ho->pref : 0;
    conn_open(x, ho);
    host_unref(ho);
}

/* ---- deadlines -------------------------------------------------------------- */

static void on_xfer_timer(uv_timer_t *t);

static uint64_t phase_deadline(const h1_xfer_t *x)
{
    switch (x->phase) {
    case PH_CONNECT:
        return x->connect_ms ? x->phase_at + x->connect_ms : 0;
    case PH_HEAD:
        return x->first_byte_ms ? x->phase_at + x->first_byte_ms : 0;
    case PH_BODY:
        return x->idle_ms ? x->last_read + x->idle_ms : 0;
    case PH_PAUSED:
        return 0;
    }
    return 0;
}

static void xfer_timer_start(h1_xfer_t *x, uint64_t now, uint64_t ms)
{
    x->timer_armed = true;
    x->timer_at = now + ms;
    uv_timer_start(&x->timer, on_xfer_timer, ms, 0);
}

/* Makes sure the timer fires by the nearest deadline. Lazily: a later
 * deadline than the one it is armed for (the first byte's after the
 * connect's, the idle one after both) or none at all leaves it alone, as
 * each uv_timer_start or uv_timer_stop is a remove and an insert in
 * libuv's timer heap; xfer_timeout finds what is really due when it
 * fires, and re-arms for the rest of a deadline that is not. Body reads
 * only move last_read, the same way. */
static void xfer_arm(h1_xfer_t *x)
{
    uint64_t d = phase_deadline(x), now = uv_now(x->h->loop);
    uint64_t tot = x->total_ms ? x->t0 + x->total_ms : 0;

    if (x->fail_due || x->resume_due) {
        /* In libuv 1.44 a 0 ms timer re-armed inside its own callback runs
         * again in the same phase: 1 ms there cannot spin. */
        xfer_timer_start(x, now, x->in_timer ? 1 : 0);
        return;
    }
    if (tot && (d == 0 || tot < d))
        d = tot;
    if (d != 0 && (!x->timer_armed || d < x->timer_at))
        xfer_timer_start(x, now, d > now ? d - now : 0);
}

static void do_resume(h1_xfer_t *x);

static void xfer_timeout(h1_xfer_t *x, uint64_t now)
{
    if (x->total_ms && now >= x->t0 + x->total_ms) {
        if (x->phase == PH_CONNECT)
            xfer_fail(x, PG_UPSTREAM_CONNECT_TIMEOUT,
                      "connect timeout after %" PRIu64 " ms", x->total_ms);
        else
            xfer_fail(x, PG_UPSTREAM_TOTAL_TIMEOUT,
                      "operation timed out after %" PRIu64 " ms",
                      x->total_ms);
        return;
    }
    uint64_t d = phase_deadline(x);
    if (d == 0 || now < d) {
        xfer_arm(x);
        return;
    }
    switch (x->phase) {
    case PH_CONNECT:
        xfer_fail(x, PG_UPSTREAM_CONNECT_TIMEOUT,
                  "connect timeout after %" PRIu64 " ms", x->connect_ms);
        break;
    case PH_HEAD:
        xfer_fail(x, PG_UPSTREAM_FIRST_BYTE_TIMEOUT,
                  "no response head after %" PRIu64 " ms", x->first_byte_ms);
        break;
    case PH_BODY:
        xfer_fail(x, PG_UPSTREAM_IDLE_TIMEOUT,
                  "no body bytes for %" PRIu64 " ms", x->idle_ms);
        break;
    case PH_PAUSED:
        break;
    }
}

static void on_xfer_timer(uv_timer_t *t)
{
    h1_xfer_t *x = pg_container_of(t, h1_xfer_t, timer);

    x->timer_armed = false;
    if (x->canceled || x->done)
        return;
    x->in_timer = true;
    if (x->fail_due) {
        x->fail_due = false;
        xfer_end(x, x->forced, x->errbuf);
        return; /* x is gone */
    }
    if (x->resume_due && x->paused) {
        x->resume_due = false;
        do_resume(x);
    } else {
        x->resume_due = false;
        xfer_timeout(x, uv_now(x->h->loop));
    }
    /* Ended or canceled: freed in the timer's close callback, later. */
    if (!x->done && !x->canceled)
        x->in_timer = false;
}

/* ---- ending ------------------------------------------------------------------ */

static void on_xfer_timer_close(uv_handle_t *hd)
{
    h1_xfer_t *x = pg_container_of((uv_timer_t *)hd, h1_xfer_t, timer);
    pg_h1_t *h = x->h;

    pg__free(x);
    pending_done(h);
}

/* Out of every list, its connection pooled (reuse) or closed. */
static void xfer_detach(h1_xfer_t *x, bool reuse)
{
    h1_conn_t *c = x->conn;

    if (c != NULL) {
        x->conn = NULL;
        c->x = NULL;
        if (reuse && !c->writing && c->pendn == 0 && !x->h->closing &&
            x->h->max_idle > 0)
            pool_put(c);
        else
            conn_close(c);
    }
    if (x->host != NULL) {
        pg_list_remove(&x->wnode);
        h1_host_t *ho = x->host;
        x->host = NULL;
        host_unref(ho);
    }
    if (pg_list_linked(&x->node)) {
        pg_list_remove(&x->node);
        x->h->stats->transfers_active--;
    }
}

static void xfer_destroy(h1_xfer_t *x)
{
    pg__free(x->req);
    x->req = NULL;
    pg__uphead_free(&x->head);
    x->magic = 0;
    uv_close((uv_handle_t *)&x->timer, on_xfer_timer_close);
}

/* on_done once, then free. Outside llhttp and x's own callbacks only. */
static void xfer_end(h1_xfer_t *x, pg_upstream_result_t r, const char *msg)
{
    xfer_detach(x, r == PG_UPSTREAM_OK && x->keep_alive && !x->rest);
    x->done = true;
    x->in_user = true;
    x->cbs.on_done(x->ud, r, msg);
    x->in_user = false;
    xfer_destroy(x);
}

/* Records why x ends and ends it, or, inside pg_upstream_start, leaves
 * that to the timer so no callback runs from inside the call. */
static void xfer_fail(h1_xfer_t *x, pg_upstream_result_t r, const char *fmt,
                      ...)
{
    va_list ap;

    x->forced = r;
    va_start(ap, fmt);
    vsnprintf(x->errbuf, sizeof x->errbuf, fmt, ap);
    va_end(ap);
    if (x->in_start) {
        x->fail_due = true;
        xfer_arm(x);
        return;
    }
    xfer_end(x, r, x->errbuf);
}

static void xfer_cancel_now(h1_xfer_t *x)
{
    xfer_detach(x, false);
    xfer_destroy(x);
}

/* ---- the response ------------------------------------------------------------- */

static h1_xfer_t *parser_xfer(llhttp_t *p)
{
    return pg_container_of(p, h1_conn_t, parser)->x;
}

/* A head piece that did not fit: TOO_BIG or out of memory; stops llhttp. */
static int head_refused(h1_xfer_t *x, int rc)
{
    if (rc == PG_ETOOBIG) {
        x->forced = PG_UPSTREAM_TOO_BIG;
        snprintf(x->errbuf, sizeof x->errbuf,
                 "response head larger than %d bytes or %d lines",
                 PG_UPHEAD_MAX_BYTES, PG_UPHEAD_MAX_LINES);
    } else {
        x->forced = PG_UPSTREAM_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
    }
    return -1;
}

static int on_hfield(llhttp_t *p, const char *at, size_t n)
{
    h1_xfer_t *x = parser_xfer(p);
    int rc = pg__uphead_name(&x->head, at, n);
    return rc == PG_OK ? 0 : head_refused(x, rc);
}

static int on_hvalue(llhttp_t *p, const char *at, size_t n)
{
    h1_xfer_t *x = parser_xfer(p);
    int rc = pg__uphead_value(&x->head, at, n);
    return rc == PG_OK ? 0 : head_refused(x, rc);
}

static int on_hvalue_done(llhttp_t *p)
{
    pg__uphead_value_done(&parser_xfer(p)->head);
    return 0;
}

/* The native client offers no compression; a body encoded anyway cannot
 * reach on_data as the plain bytes the contract promises. */
static bool encoded_body(const h1_xfer_t *x, pg_str_t *enc)
{
    const pg_uphead_t *hd = &x->head;
    for (size_t i = 0; i < hd->n; i++) {
        const struct pg_uphead_off *o = &hd->off[i];
        if (o->kn == 16 &&
            strncasecmp(hd->buf.p + o->ko, "Content-Encoding", 16) == 0 &&
            !(o->vn == 8 && strncasecmp(hd->buf.p + o->vo, "identity", 8) == 0) &&
            o->vn > 0) {
            *enc = (pg_str_t){hd->buf.p + o->vo, o->vn};
            return true;
        }
    }
    return false;
}

/* After on_head or on_data: true when the transfer must stop, because
 * the callback canceled it or refused (ABORTED). */
static bool user_stopped(h1_xfer_t *x, int rc, const char *who)
{
    if (x->canceled)
        return true;
    if (rc >= 0)
        return false;
    x->forced = PG_UPSTREAM_ABORTED;
    snprintf(x->errbuf, sizeof x->errbuf, "%s refused: %s", who,
             pg_err_name(rc));
    return true;
}

static int on_headers_done(llhttp_t *p)
{
    h1_xfer_t *x = parser_xfer(p);
    pg_kv_t stack[PG_UPHEAD_KV_STACK], *kv;
    pg_str_t enc;
    int rc;

    if (p->status_code < 200) /* 1xx: forgotten, the real head follows */
        return 0;
    x->head.status = p->status_code;
    x->head_delivered = true;
    xfer_set_phase(x, PH_BODY);
    if (encoded_body(x, &enc)) {
        x->forced = PG_UPSTREAM_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf,
                 "unsupported Content-Encoding %.*s (not requested)",
                 (int)(enc.n > 40 ? 40 : enc.n), enc.p);
        return -1;
    }
    if (pg__uphead_kv(&x->head, stack, PG_UPHEAD_KV_STACK, &kv) != PG_OK)
        return head_refused(x, PG_ENOMEM);
    x->in_user = true;
    rc = x->cbs.on_head ? x->cbs.on_head(x->ud, x->head.status, kv, x->head.n)
                        : PG_OK;
    x->in_user = false;
    pg__uphead_kv_free(kv, stack);
    if (user_stopped(x, rc, "on_head"))
        return -1;
    return x->is_head ? 1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    h1_xfer_t *x = parser_xfer(p);
    int rc;

    /* llhttp reports an open body span even when a resume parses nothing
     * new; an empty piece is no data (and must not pause again). */
    if (n == 0)
        return 0;
    if (x->max_bytes > 0 && x->body_bytes + n > x->max_bytes) {
        x->forced = PG_UPSTREAM_TOO_BIG;
        snprintf(x->errbuf, sizeof x->errbuf,
                 "response body larger than %" PRIu64 " bytes", x->max_bytes);
        return -1;
    }
    x->body_bytes += n;
    x->in_user = true;
    rc = x->cbs.on_data ? x->cbs.on_data(x->ud, (pg_str_t){at, n}) : PG_OK;
    x->in_user = false;
    x->flush_due = x->cbs.on_flush != NULL;
    if (user_stopped(x, rc, "on_data"))
        return -1;
    if (rc == PG_PENDING && !x->resume_early) {
        /* The bytes were consumed; llhttp stops right after them and the
         * rest of this read waits in conn->pend for pg_upstream_resume. */
        x->paused = true;
        x->phase = PH_PAUSED;
        xfer_arm(x);
        x->resume_early = false;
        return HPE_PAUSED;
    }
    x->resume_early = false;
    return 0;
}

static int on_message_done(llhttp_t *p)
{
    h1_xfer_t *x = parser_xfer(p);

    if (!x->head_delivered) { /* the end of a 1xx */
        pg__uphead_reset(&x->head);
        return 0;
    }
    x->complete = true;
    x->keep_alive = llhttp_should_keep_alive(p);
    return HPE_PAUSED; /* stop here: anything after it is not ours */
}

static const llhttp_settings_t parser_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_header_value_complete = on_hvalue_done,
    .on_headers_complete = on_headers_done,
    .on_body = on_body,
    .on_message_complete = on_message_done,
};

static void flush(h1_xfer_t *x)
{
    if (!x->flush_due || x->canceled)
        return;
    x->flush_due = false;
    x->in_user = true;
    x->cbs.on_flush(x->ud);
    x->in_user = false;
}

/* Keeps [from, end) of the bytes being parsed for after a resume. */
static bool keep_rest(h1_conn_t *c, const char *from, const char *end)
{
    size_t n = (size_t)(end - from);
    char *k = NULL;

    if (n > 0 && (k = pg__malloc(n)) == NULL)
        return false;
    if (n > 0)
        memcpy(k, from, n);
    pg__free(c->pend);
    c->pend = k;
    c->pendn = n;
    return true;
}

/* Parses bytes for x and acts on what the callbacks decided. */
static void parse(h1_conn_t *c, h1_xfer_t *x, const char *p, size_t n)
{
    llhttp_errno_t err;

    x->in_parse = true;
    err = llhttp_execute(&c->parser, p, n);
    x->in_parse = false;
    if (!x->head_delivered)
        x->head_raw += n;
    if (x->canceled) {
        xfer_cancel_now(x);
        return;
    }
    flush(x);
    if (x->canceled) {
        xfer_cancel_now(x);
        return;
    }
    if (x->forced != PG_UPSTREAM_OK) {
        xfer_end(x, x->forced, x->errbuf);
        return;
    }
    if (x->complete) {
        /* Bytes after the response (pipelined garbage) make the
         * connection unfit for another request. */
        x->rest = llhttp_get_error_pos(&c->parser) != p + n;
        xfer_end(x, PG_UPSTREAM_OK, "ok");
        return;
    }
    if (err == HPE_PAUSED && x->paused) {
        if (!keep_rest(c, llhttp_get_error_pos(&c->parser), p + n)) {
            xfer_end(x, PG_UPSTREAM_ERROR, "out of memory");
            return;
        }
        conn_read_stop(c);
        return;
    }
    if (err != HPE_OK) {
        xfer_fail(x, PG_UPSTREAM_BROKEN, "malformed response: %s",
                  llhttp_get_error_reason(&c->parser));
        return;
    }
    if (!x->head_delivered && x->head_raw > H1_HEAD_RAW_MAX)
        xfer_fail(x, PG_UPSTREAM_TOO_BIG, "response head larger than %d bytes",
                  H1_HEAD_RAW_MAX);
}

/* The upstream closed (or reset) the connection while x was on it. */
static void conn_eof(h1_conn_t *c, h1_xfer_t *x, int err)
{
    if (!x->got_byte || err != UV_EOF) {
        xfer_conn_lost(x, "receive failed", err);
        return;
    }
    /* A body delimited by the close ends here (llhttp calls
     * on_message_done); anything else was cut short. */
    x->in_parse = true;
    llhttp_finish(&c->parser);
    x->in_parse = false;
    x->keep_alive = false;
    if (x->complete)
        xfer_end(x, PG_UPSTREAM_OK, "ok");
    else
        xfer_fail(x, PG_UPSTREAM_BROKEN,
                  "connection closed before the response ended");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)s, h1_conn_t, tcp);
    h1_xfer_t *x = c->x;

    if (nread == 0 || c->closing)
        return;
    if (x == NULL) { /* idle in the pool: a close, an error or stray bytes */
        conn_close(c);
        return;
    }
    if (nread < 0) {
        conn_eof(c, x, (int)nread);
        return;
    }
    x->got_byte = true;
    x->last_read = uv_now(c->h->loop);
    parse(c, x, buf->base, (size_t)nread);
}

static void do_resume(h1_xfer_t *x)
{
    h1_conn_t *c = x->conn;

    if (c == NULL)
        return;
    char *p = c->pend;
    size_t n = c->pendn;
    x->paused = false;
    xfer_set_phase(x, PH_BODY);
    llhttp_resume(&c->parser);
    /* Parsed even when empty: llhttp may still owe on_message_complete
     * for a body whose last bytes came with the pause. */
    c->pend = NULL;
    c->pendn = 0;
    parse(c, x, p ? p : "", n);
    pg__free(p);
    if (!x->done && !x->canceled && !x->paused && x->conn == c)
        conn_read_start(c);
}

/* ---- public ------------------------------------------------------------------- */

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
    pending_done(pg_container_of((uv_timer_t *)hd, pg_h1_t, pool_timer));
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
        xfer_detach(x, false);
        /* One on the stack is freed by that frame when it returns. */
        if (!x->in_user && !x->in_parse)
            xfer_destroy(x);
    }
    while (!pg_list_empty(&h->lru))
        conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    pg_list_foreach_safe(n, t, &h->hosts)
    {
        h1_host_t *ho = pg_container_of(n, h1_host_t, node);
        if (ho->resolving)
            uv_cancel((uv_req_t *)&ho->gai);
        else if (ho->refs == 0)
            host_free(ho);
    }
    uv_timer_stop(&h->pool_timer);
    uv_close((uv_handle_t *)&h->pool_timer, on_pool_timer_close);
    pending_done(h);
}

void pg__h1_set_pool(pg_h1_t *h, unsigned max_idle, uint64_t idle_ms)
{
    h->max_idle = max_idle;
    h->idle_ms = idle_ms;
    while (h->nidle > h->max_idle)
        conn_close(pg_container_of(h->lru.next, h1_conn_t, lnode));
    pool_arm(h);
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
        (ho = host_get(h, &u)) == NULL) {
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
    xfer_set_phase(x, PH_CONNECT);
    xfer_connect(x, true);
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
    xfer_cancel_now(x);
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
        xfer_arm(x);
    }
}
