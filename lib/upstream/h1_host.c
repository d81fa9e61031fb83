/* h1_host.c: hosts and names for the native HTTP/1.1 client (see
 * h1_host.h). A host resolves with uv_getaddrinfo on libuv's threadpool,
 * at most one lookup at a time; transfers that need the answer meanwhile
 * wait on the host for it. An answer serves H1_DNS_TTL_MS; then the next
 * transfer waits for a refresh, and if that fails the old answer serves
 * H1_DNS_STALE_MS more.
 * A name that never resolved fails its transfers at once, with the
 * lookup's error, for H1_DNS_NEG_MS after the failed lookup. Hosts nobody
 * uses are forgotten beyond H1_HOSTS_MAX, answers and failures with them.
 *
 * Threads: the worker's loop thread; only getaddrinfo itself runs on the
 * threadpool. */
#include "upstream/h1_host.h"

#include <stdio.h>

#include "upstream/h1_xfer.h"

#define H1_DNS_TTL_MS (60 * 1000)
#define H1_DNS_STALE_MS (5 * 1000) /* after a failed refresh, till the next */
#define H1_HOSTS_MAX 64    /* unreferenced hosts kept for their DNS answer */

void pg__h1_host_free(h1_host_t *ho)
{
    pg_h1_t *h = ho->h;

    pg_list_remove(&ho->node);
    h->nhosts--;
    pg__free(ho->key);
    pg__free(ho);
    pg__h1_pending_done(h);
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
            pg__h1_host_free(ho);
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

h1_host_t *pg__h1_host_get(pg_h1_t *h, const pg_h1_url_t *u)
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

bool pg__h1_host_fresh(const h1_host_t *ho, uint64_t now)
{
    return ho->numeric ||
           (ho->naddr > 0 && (now - ho->resolved_at < H1_DNS_TTL_MS ||
                              now < ho->stale_until));
}

/* The one failure of a name that did not resolve: from the lookup, from
 * starting it, or from the negative cache, so a transfer failed by the
 * cache reads exactly like the one the lookup failed. */
void pg__h1_xfer_fail_resolve(h1_xfer_t *x, const h1_host_t *ho, int status)
{
    pg__h1_xfer_fail(x, PG_UPSTREAM_CONNECT_FAILED,
                     "could not resolve host %s: %s", ho->name,
                     status == 0 ? "no address" : uv_strerror(status));
}

/* Inside the negative window of a failed lookup (see H1_DNS_NEG_MS). */
bool pg__h1_host_failing(const h1_host_t *ho, uint64_t now)
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
            pg__h1_xfer_connect(x, false); /* takes x's reference to ho */
            continue;
        }
        x->host = NULL;
        ho->refs--;
        pg__h1_xfer_fail_resolve(x, ho, status);
    }
    if (--ho->refs == 0 && h->closing)
        pg__h1_host_free(ho);
    else
        pg__h1_maybe_finish(h);
}

/* Starts a lookup unless one runs. PG_OK or a libuv error. */
int pg__h1_host_resolve(h1_host_t *ho)
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
