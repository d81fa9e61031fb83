/* upstream.c: the worker's HTTP client. One curl multi handle per
 * pg_upstream_t, connected to the worker's uv loop with one uv_timer_t (curl's
 * CURLMOPT_TIMERFUNCTION) and one uv_poll_t per socket (CURLMOPT_SOCKETFUNCTION,
 * stored with curl_multi_assign), as in curl's docs/examples/multi-uv.c.
 * It owns the easy handles and their transfer structs; a caller borrows a
 * pg_upstream_xfer_t from pg_upstream_start until on_done returns or it calls
 * pg_upstream_cancel.
 *
 * Re-entrancy: user callbacks (on_head, on_data) run inside curl's header and
 * write callbacks, where curl forbids adding or removing handles. So while we
 * are inside curl (u->in_curl > 0) or inside a user callback of the same
 * transfer, cancel and start only mark the transfer, and after_curl() finishes
 * the work once curl has returned. Memory holding a uv handle is freed only in
 * that handle's close callback.
 *
 * Threads: everything runs on the loop thread of the pg_upstream_t's loop.
 * curl_global_init runs once per process, guarded by pthread_once, in the
 * first pg_upstream_new. */
#include "upstream/upstream.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/list.h"
#include "upstream/h1.h"
#include "upstream/head.h"

#define XFER_MAGIC 0x75707866u /* "upxf" */

#define EASY_SPARE_MAX 64

struct pg_upstream {
    uv_loop_t *loop;           /* borrowed: outlives u */
    CURLM *multi;              /* owned */
    pg_h1_t *h1;               /* owned: the http:// engine; counts as a
                                  handle until its close completes */
    uv_timer_t timer;          /* curl's timer */
    pg_list_t xfers;           /* pg_upstream_xfer.node, not yet done */
    pg_list_t polls;           /* struct poll_ctx.node */
    unsigned handles;          /* uv handles open (timer, polls, xfer timers) */
    int in_curl;               /* depth of curl calls that may call back */
    bool fixups;               /* some transfer waits for add or cancel */
    bool closing;
    bool in_timer;             /* inside on_u_timer */
    bool close_deferred;       /* pg_upstream_close was called inside curl */
    void (*done_cb)(void *ud);
    void *done_ud;
    pg_upstream_stats_t stats;
    /* Easy handles of finished transfers, reset and kept for the next
     * ones: creating one costs more than a whole proxied request. */
    CURL *spare[EASY_SPARE_MAX];
    unsigned nspare;
};

/* One socket curl asked us to watch. */
struct poll_ctx {
    uv_poll_t poll;
    curl_socket_t s;
    pg_upstream_t *u;
    pg_list_t node; /* in u->polls */
};

typedef enum xfer_timer_mode {
    TM_NONE = 0,
    TM_FIRST_BYTE,
    TM_IDLE,
    TM_RESUME /* a deferred pg_upstream_resume */
} xfer_timer_mode_t;

struct pg_upstream_xfer {
    uint32_t magic;
    pg_upstream_t *u;
    pg_list_t node;            /* in u->xfers while not done */
    CURL *easy;                /* owned */
    struct curl_slist *hdrs;   /* owned (curl's allocator) */
    char *url;                 /* owned copy, for messages */
    pg_upstream_cbs_t cbs;
    void *ud;
    uv_timer_t timer;          /* first-byte, idle, deferred resume */
    xfer_timer_mode_t tmode;
    uint64_t first_byte_ms, idle_ms, max_bytes;
    uint64_t body_bytes;
    pg_uphead_t head;          /* the head being collected */
    pg_upstream_result_t forced; /* decided by us (TOO_BIG, ABORTED), or OK */
    char errbuf[CURL_ERROR_SIZE];
    bool added;                /* in the multi */
    bool head_delivered;
    bool paused;
    bool resume_early;         /* resume called inside on_data */
    bool in_user;              /* a user callback of this xfer is running */
    bool flush_due;            /* on_data ran since the last on_flush */
    bool canceled;
    bool done;                 /* on_done is running or ran */
};

static void after_curl(pg_upstream_t *u);
static void close_now(pg_upstream_t *u);

/* ---- process-wide init ------------------------------------------------- */

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc;

static void curl_init_once(void)
{
    g_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- uv handle bookkeeping ---------------------------------------------- */

/* Runs when the last uv handle of a closing client has closed: curl's
 * sockets are no longer polled, so curl may now close them. */
static void upstream_finish(pg_upstream_t *u)
{
    void (*cb)(void *) = u->done_cb;
    void *ud = u->done_ud;

    while (u->nspare > 0)
        curl_easy_cleanup(u->spare[--u->nspare]);
    curl_multi_cleanup(u->multi);
    pg__free(u);
    if (cb)
        cb(ud);
}

static void handle_closed(pg_upstream_t *u)
{
    assert(u->handles > 0);
    if (--u->handles == 0 && u->closing)
        upstream_finish(u);
}

static void on_h1_closed(void *ud)
{
    handle_closed(ud);
}

static void on_u_timer_close(uv_handle_t *h)
{
    handle_closed(pg_container_of((uv_timer_t *)h, pg_upstream_t, timer));
}

static void on_poll_close(uv_handle_t *h)
{
    struct poll_ctx *c = pg_container_of((uv_poll_t *)h, struct poll_ctx, poll);
    pg_upstream_t *u = c->u;

    pg__free(c);
    handle_closed(u);
}

static void poll_ctx_close(struct poll_ctx *c)
{
    uv_poll_stop(&c->poll);
    pg_list_remove(&c->node);
    uv_close((uv_handle_t *)&c->poll, on_poll_close);
}

/* ---- curl -> loop glue ---------------------------------------------------- */

static void socket_action(pg_upstream_t *u, curl_socket_t s, int flags)
{
    int running = 0;

    u->in_curl++;
    curl_multi_socket_action(u->multi, s, flags, &running);
    u->in_curl--;
    after_curl(u);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct poll_ctx *c = pg_container_of(h, struct poll_ctx, poll);
    int flags = 0;

    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    socket_action(c->u, c->s, flags);
}

static void on_u_timer(uv_timer_t *t)
{
    pg_upstream_t *u = pg_container_of(t, pg_upstream_t, timer);

    if (!u->closing) {
        u->in_timer = true;
        socket_action(u, CURL_SOCKET_TIMEOUT, 0);
        u->in_timer = false;
    }
}

/* CURLMOPT_TIMERFUNCTION. curl is never called from here: a 0 ms timeout
 * is a uv timer that fires on the loop's next timer phase. Asked again
 * for 0 ms from inside that very timer's callback, it becomes 1 ms: in
 * libuv 1.44 a timer re-armed with 0 inside its own callback runs again
 * in the same phase, which could spin. (A flat 1 ms, as curl's multi-uv
 * example does, costs every new transfer a millisecond.) */
static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
    pg_upstream_t *u = userp;

    (void)m;
    /* While closing, u->timer is closed or about to be. */
    if (u->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&u->timer);
    else
        uv_timer_start(&u->timer, on_u_timer,
                       timeout_ms == 0 && u->in_timer ? 1 : (uint64_t)timeout_ms,
                       0);
    return 0;
}

/* A failure inside curl's socket callback. Returning -1 there would mark
 * the whole multi handle dead (every transfer of the worker), so instead
 * the one transfer is failed once curl has returned (after_curl). */
static void xfer_fail_from_curl(pg_upstream_t *u, CURL *e, const char *why)
{
    char *priv = NULL;
    pg_upstream_xfer_t *x;

    curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
    x = (pg_upstream_xfer_t *)(void *)priv;
    if (x == NULL || x->magic != XFER_MAGIC || x->done)
        return;
    if (x->forced == PG_UPSTREAM_OK) {
        x->forced = PG_UPSTREAM_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf, "%s", why);
    }
    u->fixups = true;
}

/* CURLMOPT_SOCKETFUNCTION: start, change or stop watching one socket. */
static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp,
                          void *socketp)
{
    pg_upstream_t *u = userp;
    struct poll_ctx *c = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (c != NULL) {
            curl_multi_assign(u->multi, s, NULL);
            poll_ctx_close(c);
        }
        return 0;
    }
    if (u->closing)
        return 0;
    if (c == NULL) {
        c = pg__malloc(sizeof *c);
        if (c == NULL) {
            xfer_fail_from_curl(u, e, "out of memory");
            return 0;
        }
        if (uv_poll_init_socket(u->loop, &c->poll, s) != 0) {
            pg__free(c);
            xfer_fail_from_curl(u, e, "cannot poll the socket");
            return 0;
        }
        c->s = s;
        c->u = u;
        u->handles++;
        pg_list_push_back(&u->polls, &c->node);
        curl_multi_assign(u->multi, s, c);
    }
    if (what != CURL_POLL_IN)
        events |= UV_WRITABLE;
    if (what != CURL_POLL_OUT)
        events |= UV_READABLE;
    uv_poll_start(&c->poll, events, on_poll);
    return 0;
}

/* ---- result mapping -------------------------------------------------------- */

static pg_upstream_result_t map_curl_result(pg_upstream_xfer_t *x, CURLcode rc)
{
    curl_off_t t_pre = 0;

    switch (rc) {
    case CURLE_OK:
        return PG_UPSTREAM_OK;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return PG_UPSTREAM_CONNECT_FAILED;
    case CURLE_OPERATION_TIMEDOUT:
        /* Once the request could be sent (pretransfer: TCP and TLS done,
         * or a reused connection), the connect phase was over: it was
         * the total timeout. */
        curl_easy_getinfo(x->easy, CURLINFO_PRETRANSFER_TIME_T, &t_pre);
        if (x->head_delivered || t_pre > 0)
            return PG_UPSTREAM_TOTAL_TIMEOUT;
        return PG_UPSTREAM_CONNECT_TIMEOUT;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return PG_UPSTREAM_BROKEN;
    default:
        return PG_UPSTREAM_ERROR;
    }
}

/* ---- transfer teardown ----------------------------------------------------- */

static void on_xfer_timer_close(uv_handle_t *h)
{
    pg_upstream_xfer_t *x =
        pg_container_of((uv_timer_t *)h, pg_upstream_xfer_t, timer);
    pg_upstream_t *u = x->u;

    pg__free(x);
    handle_closed(u);
}

/* Takes x out of the multi and the list. Never inside curl callbacks. */
static void xfer_detach(pg_upstream_xfer_t *x)
{
    pg_upstream_t *u = x->u;

    assert(u->in_curl == 0);
    uv_timer_stop(&x->timer);
    x->tmode = TM_NONE;
    if (x->added) {
        curl_multi_remove_handle(u->multi, x->easy);
        x->added = false;
    }
    if (pg_list_linked(&x->node)) {
        pg_list_remove(&x->node);
        u->stats.transfers_active--;
    }
}

/* Frees a detached transfer; the struct itself goes in the timer's close
 * callback. */
static void xfer_destroy(pg_upstream_xfer_t *x)
{
    pg_upstream_t *u = x->u;
    assert(!x->added);
    if (x->easy != NULL && !u->closing && u->nspare < EASY_SPARE_MAX) {
        /* Back to its defaults (connections stay in the multi's cache). */
        curl_easy_reset(x->easy);
        u->spare[u->nspare++] = x->easy;
    } else if (x->easy != NULL) {
        curl_easy_cleanup(x->easy);
    }
    x->easy = NULL;
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    pg__free(x->url);
    x->url = NULL;
    pg__uphead_free(&x->head);
    x->magic = 0;
    uv_close((uv_handle_t *)&x->timer, on_xfer_timer_close);
}

/* Ends x with a result: detach, on_done once, free. Outside curl only. */
static void xfer_end(pg_upstream_xfer_t *x, pg_upstream_result_t r,
                     const char *msg)
{
    xfer_detach(x);
    x->done = true;
    x->in_user = true;
    x->cbs.on_done(x->ud, r, msg);
    x->in_user = false;
    xfer_destroy(x);
}

/* ---- timers per transfer --------------------------------------------------- */

static void on_xfer_timer(uv_timer_t *t);

static void xfer_timer_start(pg_upstream_xfer_t *x, xfer_timer_mode_t m,
                             uint64_t ms)
{
    x->tmode = m;
    uv_timer_start(&x->timer, on_xfer_timer, ms, 0);
}

static void xfer_timer_stop(pg_upstream_xfer_t *x)
{
    uv_timer_stop(&x->timer);
    x->tmode = TM_NONE;
}

/* Arms the idle timer (between two body reads) if one was asked for. */
static void xfer_idle_restart(pg_upstream_xfer_t *x)
{
    if (x->idle_ms > 0)
        xfer_timer_start(x, TM_IDLE, x->idle_ms);
    else
        xfer_timer_stop(x);
}

static void xfer_do_resume(pg_upstream_xfer_t *x)
{
    pg_upstream_t *u = x->u;
    CURLcode rc;

    x->paused = false;
    xfer_idle_restart(x);
    /* curl may hand over data it buffered while paused from inside
     * curl_easy_pause, so this counts as being inside curl. */
    u->in_curl++;
    rc = curl_easy_pause(x->easy, CURLPAUSE_CONT);
    u->in_curl--;
    if (rc != CURLE_OK && !x->canceled && !x->done && !u->closing) {
        pg_upstream_result_t r =
            x->forced != PG_UPSTREAM_OK ? x->forced : PG_UPSTREAM_ERROR;
        if (x->forced == PG_UPSTREAM_OK)
            snprintf(x->errbuf, sizeof x->errbuf, "resume failed: %s",
                     curl_easy_strerror(rc));
        xfer_end(x, r, x->errbuf);
    }
    after_curl(u);
}

static void on_xfer_timer(uv_timer_t *t)
{
    pg_upstream_xfer_t *x = pg_container_of(t, pg_upstream_xfer_t, timer);
    xfer_timer_mode_t m = x->tmode;

    x->tmode = TM_NONE;
    if (x->canceled || x->done || x->u->closing)
        return;
    switch (m) {
    case TM_FIRST_BYTE:
        snprintf(x->errbuf, sizeof x->errbuf,
                 "no response head after %" PRIu64 " ms", x->first_byte_ms);
        xfer_end(x, PG_UPSTREAM_FIRST_BYTE_TIMEOUT, x->errbuf);
        break;
    case TM_IDLE:
        snprintf(x->errbuf, sizeof x->errbuf,
                 "no body bytes for %" PRIu64 " ms", x->idle_ms);
        xfer_end(x, PG_UPSTREAM_IDLE_TIMEOUT, x->errbuf);
        break;
    case TM_RESUME:
        if (x->paused)
            xfer_do_resume(x);
        break;
    case TM_NONE:
        break;
    }
}

/* ---- the response head ----------------------------------------------------- */

/* Calls on_head with the collected head. Returns false when the transfer
 * must stop (canceled, or on_head refused it: forced is then ABORTED). */
static bool head_deliver(pg_upstream_xfer_t *x)
{
    pg_kv_t stack[PG_UPHEAD_KV_STACK], *kv = NULL;
    int rc;

    x->head_delivered = true;
    if (x->head.status == 0) {
        long code = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
        x->head.status = (int)code;
    }
    if (pg__uphead_kv(&x->head, stack, PG_UPHEAD_KV_STACK, &kv) != PG_OK) {
        x->forced = PG_UPSTREAM_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        return false;
    }
    x->in_user = true;
    rc = x->cbs.on_head
             ? x->cbs.on_head(x->ud, x->head.status, kv, x->head.n)
             : PG_OK;
    x->in_user = false;
    pg__uphead_kv_free(kv, stack);
    if (x->canceled)
        return false;
    if (rc < 0) {
        x->forced = PG_UPSTREAM_ABORTED;
        snprintf(x->errbuf, sizeof x->errbuf, "on_head refused: %s",
                 pg_err_name(rc));
        return false;
    }
    return true;
}

static bool is_ws(char c) { return c == ' ' || c == '\t'; }

/* The status code of an "HTTP/1.1 200 OK" or "HTTP/2 200" line. */
static int parse_status(const char *p, size_t n)
{
    size_t i = 0;
    int code = 0;

    while (i < n && p[i] != ' ')
        i++;
    while (i < n && p[i] == ' ')
        i++;
    for (int d = 0; d < 3 && i < n && p[i] >= '0' && p[i] <= '9'; d++, i++)
        code = code * 10 + (p[i] - '0');
    return code;
}

/* A blank line ended a head. Only a final (non-1xx) response head counts;
 * 1xx heads (100 Continue, 103 Early Hints) are forgotten. */
static size_t head_end(pg_upstream_xfer_t *x, size_t len)
{
    if (x->head.status < 200) {
        pg__uphead_reset(&x->head);
        return len;
    }
    /* The head arrived: the first-byte timer's job is done; the idle timer
     * now covers the wait for the body. */
    xfer_idle_restart(x);
    return head_deliver(x) ? len : 0;
}

/* CURLOPT_HEADERFUNCTION: one whole header line, CRLF included. */
static size_t on_curl_header(char *p, size_t size, size_t nitems, void *arg)
{
    pg_upstream_xfer_t *x = arg;
    size_t len = size * nitems, n = len, kn, vs;

    if (x->canceled || x->u->closing || x->forced != PG_UPSTREAM_OK)
        return 0;
    if (x->head_delivered) /* trailers after a chunked body */
        return len;
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    if (n == 0)
        return head_end(x, len);
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        pg__uphead_reset(&x->head);
        x->head.status = parse_status(p, n);
        return len;
    }
    if (is_ws(p[0])) /* obsolete line folding: not kept */
        return len;
    for (kn = 0; kn < n && p[kn] != ':'; kn++)
        ;
    if (kn == n) /* not a header line; curl would have failed already */
        return len;
    vs = kn + 1;
    while (vs < n && is_ws(p[vs]))
        vs++;
    while (n > vs && is_ws(p[n - 1]))
        n--;
    int rc = pg__uphead_add(&x->head, p, kn, p + vs, n - vs);
    if (rc == PG_ETOOBIG) {
        x->forced = PG_UPSTREAM_TOO_BIG;
        snprintf(x->errbuf, sizeof x->errbuf,
                 "response head larger than %d bytes or %d lines",
                 PG_UPHEAD_MAX_BYTES, PG_UPHEAD_MAX_LINES);
        return 0;
    }
    if (rc != PG_OK) {
        x->forced = PG_UPSTREAM_ERROR;
        snprintf(x->errbuf, sizeof x->errbuf, "out of memory");
        return 0;
    }
    return len;
}

/* CURLOPT_WRITEFUNCTION: body bytes, de-chunked and decompressed. */
static size_t on_curl_write(char *p, size_t size, size_t nmemb, void *arg)
{
    pg_upstream_xfer_t *x = arg;
    size_t len = size * nmemb;
    int rc;

    if (x->canceled || x->u->closing || x->forced != PG_UPSTREAM_OK)
        return 0;
    /* Paused by on_data earlier in this same delivery: curl keeps these
     * bytes and hands them over again after CURLPAUSE_CONT. */
    if (x->paused)
        return CURL_WRITEFUNC_PAUSE;
    if (!x->head_delivered) {
        xfer_idle_restart(x);
        if (!head_deliver(x))
            return 0;
    }
    if (x->max_bytes > 0 && x->body_bytes + len > x->max_bytes) {
        x->forced = PG_UPSTREAM_TOO_BIG;
        snprintf(x->errbuf, sizeof x->errbuf,
                 "response body larger than %" PRIu64 " bytes", x->max_bytes);
        return 0;
    }
    x->body_bytes += len;
    xfer_idle_restart(x);
    x->in_user = true;
    rc = x->cbs.on_data ? x->cbs.on_data(x->ud, (pg_str_t){p, len}) : PG_OK;
    x->in_user = false;
    x->flush_due = x->cbs.on_flush != NULL;
    if (x->canceled)
        return 0;
    if (rc < 0) {
        x->forced = PG_UPSTREAM_ABORTED;
        snprintf(x->errbuf, sizeof x->errbuf, "on_data refused: %s",
                 pg_err_name(rc));
        return 0;
    }
    if (rc == PG_PENDING && !x->resume_early) {
        /* The bytes were consumed; stop reading until pg_upstream_resume.
         * curl allows pausing from inside its write callback. */
        x->paused = true;
        xfer_timer_stop(x);
        curl_easy_pause(x->easy, CURLPAUSE_RECV);
    }
    x->resume_early = false;
    return len;
}

/* CURLOPT_SOCKOPTFUNCTION: called once per new connection socket. */
static int on_curl_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
    pg_upstream_t *u = clientp;

    (void)fd;
    if (purpose == CURLSOCKTYPE_IPCXN)
        u->stats.connections_opened++;
    return CURL_SOCKOPT_OK;
}

/* ---- completion ----------------------------------------------------------- */

static void xfer_completed(pg_upstream_xfer_t *x, CURLcode rc)
{
    pg_upstream_result_t r;
    const char *msg;

    if (x->canceled) {
        xfer_detach(x);
        xfer_destroy(x);
        return;
    }
    if (x->forced != PG_UPSTREAM_OK) {
        xfer_end(x, x->forced, x->errbuf);
        return;
    }
    r = map_curl_result(x, rc);
    if (r == PG_UPSTREAM_OK && !x->head_delivered) {
        /* An empty body: the head is reported at the end. */
        bool go_on = head_deliver(x);
        if (x->canceled) {
            xfer_detach(x);
            xfer_destroy(x);
            return;
        }
        if (!go_on)
            r = x->forced;
    }
    if (r == PG_UPSTREAM_OK)
        msg = "ok";
    else if (x->forced != PG_UPSTREAM_OK || x->errbuf[0] != '\0')
        msg = x->errbuf;
    else
        msg = curl_easy_strerror(rc);
    xfer_end(x, r, msg);
}

/* Drains curl's finished transfers; stops early if a callback closed u. */
static void check_multi_info(pg_upstream_t *u)
{
    CURLMsg *m;
    int left;

    while (!u->closing && (m = curl_multi_info_read(u->multi, &left))) {
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        pg_upstream_xfer_t *x;
        char *priv = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        x = (pg_upstream_xfer_t *)(void *)priv;
        if (x == NULL || x->magic != XFER_MAGIC || x->done)
            continue;
        xfer_completed(x, rc);
    }
}

static int xfer_add(pg_upstream_xfer_t *x)
{
    CURLMcode mc = curl_multi_add_handle(x->u->multi, x->easy);

    if (mc != CURLM_OK)
        return mc == CURLM_OUT_OF_MEMORY ? PG_ENOMEM : PG_EUPSTREAM;
    x->added = true;
    return PG_OK;
}

/* Work that had to wait until curl returned: cancels and adds requested
 * from inside callbacks, and a close requested from inside curl. */
/* Tells each transfer that received data during the curl call that just
 * returned: the receiver writes what it gathered once per read, not once
 * per HTTP chunk. */
static void flush_due(pg_upstream_t *u)
{
    pg_list_t *n, *t;
    pg_list_foreach_safe(n, t, &u->xfers)
    {
        pg_upstream_xfer_t *x = pg_container_of(n, pg_upstream_xfer_t, node);
        if (!x->flush_due || x->canceled || x->done)
            continue;
        x->flush_due = false;
        x->in_user = true;
        x->cbs.on_flush(x->ud);
        x->in_user = false;
        if (u->closing)
            return;
    }
}

static void after_curl(pg_upstream_t *u)
{
    pg_list_t *n, *t;

    if (u->in_curl > 0)
        return;
    /* Data before endings: what a read gathered goes out before that
     * transfer's on_done. */
    flush_due(u);
    if (u->closing)
        return;
    check_multi_info(u);
    if (u->close_deferred) {
        u->close_deferred = false;
        close_now(u);
        return;
    }
    if (!u->fixups || u->closing)
        return;
    u->fixups = false;
    pg_list_foreach_safe(n, t, &u->xfers)
    {
        pg_upstream_xfer_t *x = pg_container_of(n, pg_upstream_xfer_t, node);
        if (x->in_user)
            continue;
        if (x->canceled) {
            xfer_detach(x);
            xfer_destroy(x);
        } else if (x->forced != PG_UPSTREAM_OK) {
            xfer_end(x, x->forced, x->errbuf);
            if (u->closing)
                return;
        } else if (!x->added && xfer_add(x) != PG_OK) {
            snprintf(x->errbuf, sizeof x->errbuf, "curl_multi_add_handle failed");
            xfer_end(x, PG_UPSTREAM_ERROR, x->errbuf);
            if (u->closing)
                return;
        }
    }
}

/* ---- public API ------------------------------------------------------------ */

int pg_upstream_new(uv_loop_t *loop, pg_upstream_t **out)
{
    pg_upstream_t *u;

    if (loop == NULL || out == NULL)
        return PG_EINVAL;
    *out = NULL;
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return PG_ESYS;
    u = pg__calloc(1, sizeof *u);
    if (u == NULL)
        return PG_ENOMEM;
    u->multi = curl_multi_init();
    if (u->multi == NULL) {
        pg__free(u);
        return PG_ENOMEM;
    }
    if (pg__h1_new(loop, &u->stats, &u->h1) != PG_OK) {
        curl_multi_cleanup(u->multi);
        pg__free(u);
        return PG_ENOMEM;
    }
    u->loop = loop;
    pg_list_init(&u->xfers);
    pg_list_init(&u->polls);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    /* No per-host cap: a worker holding thousands of slow streams to one
     * provider must not queue new ones behind them (the client limit is
     * server.max_connections). Up to 1024 idle connections stay cached. */
    curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 1024L);
    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    uv_timer_init(loop, &u->timer); /* cannot fail: no allocation */
    u->handles = 2;                 /* the timer and h1 */
    *out = u;
    return PG_OK;
}

/* Cancels everything and closes every uv handle; curl_multi_cleanup and
 * done_cb follow in the last close callback. Outside curl only. */
static void close_now(pg_upstream_t *u)
{
    pg_list_t *n, *t;

    pg_list_foreach_safe(n, t, &u->xfers)
    {
        pg_upstream_xfer_t *x = pg_container_of(n, pg_upstream_xfer_t, node);
        x->canceled = true;
        /* A transfer whose on_head is on the stack is freed by that
         * caller when the callback returns. */
        xfer_detach(x);
        if (!x->in_user)
            xfer_destroy(x);
    }
    uv_timer_stop(&u->timer);
    uv_close((uv_handle_t *)&u->timer, on_u_timer_close);
    pg__h1_close(u->h1, on_h1_closed, u);
    pg_list_foreach_safe(n, t, &u->polls)
    {
        struct poll_ctx *c = pg_container_of(n, struct poll_ctx, node);
        curl_multi_assign(u->multi, c->s, NULL);
        poll_ctx_close(c);
    }
}

void pg_upstream_close(pg_upstream_t *u, void (*done_cb)(void *ud), void *ud)
{
    if (u == NULL || u->closing)
        return;
    u->closing = true;
    u->done_cb = done_cb;
    u->done_ud = ud;
    if (u->in_curl > 0) {
        u->close_deferred = true;
        return;
    }
    close_now(u);
}

static void set_method(CURL *e, const char *method, pg_str_t body)
{
    bool has_body = body.n > 0;

    if (method == NULL)
        method = has_body ? "POST" : "GET";
    if (strcmp(method, "GET") == 0 && !has_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    if (has_body || strcmp(method, "POST") == 0) {
        /* Borrowed: the caller keeps body alive until done or cancel. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body.n);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.p ? body.p : "");
    }
    if (strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
}

/* "Name: value" lines for curl; "Name;" sends a header with an empty
 * value. The empty "Expect:" stops curl from waiting for 100-continue. */
static int build_headers(pg_upstream_xfer_t *x, const pg_upstream_opts_t *o)
{
    for (size_t i = 0; i < o->nheaders; i++) {
        const pg_kv_t *h = &o->headers[i];
        size_t n = h->key.n + h->value.n + 3;
        char *line = pg__malloc(n);
        struct curl_slist *l;

        if (line == NULL)
            return PG_ENOMEM;
        memcpy(line, h->key.p, h->key.n);
        if (h->value.n == 0) {
            line[h->key.n] = ';';
            line[h->key.n + 1] = '\0';
        } else {
            line[h->key.n] = ':';
            line[h->key.n + 1] = ' ';
            memcpy(line + h->key.n + 2, h->value.p, h->value.n);
            line[n - 1] = '\0';
        }
        l = curl_slist_append(x->hdrs, line);
        pg__free(line);
        if (l == NULL)
            return PG_ENOMEM;
        x->hdrs = l;
    }
    struct curl_slist *l = curl_slist_append(x->hdrs, "Expect:");
    if (l == NULL)
        return PG_ENOMEM;
    x->hdrs = l;
    return PG_OK;
}

static void set_easy_options(pg_upstream_xfer_t *x, const pg_upstream_opts_t *o)
{
    CURL *e = x->easy;

    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for ALPN to tell whether a connection in progress
     * can multiplex (h2) before opening another. Not for plain http:
     * there curl cannot know until a response completed, and concurrent
     * HTTP/1.1 transfers would queue behind a long stream. */
    if (strncasecmp(x->url, "https:", 6) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (o->ca_pem.n > 0) {
        /* From memory (read off the loop with the config), and in place of
         * the system store, its directory included. Not copied: the caller
         * keeps it alive, and curl_easy_reset forgets it. */
        struct curl_blob ca = {.data = (void *)o->ca_pem.p,
                               .len = o->ca_pem.n,
                               .flags = CURL_BLOB_NOCOPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    }
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    /* "" offers every encoding curl can decode; on_data gets plain bytes. */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    if (o->connect_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)o->connect_timeout_ms);
    if (o->total_timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->total_timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_curl_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_curl_sockopt);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, x->u);
    set_method(e, o->method, o->body);
}

int pg_upstream_start(pg_upstream_t *u, const pg_upstream_opts_t *opts,
                      const pg_upstream_cbs_t *cbs, void *ud,
                      pg_upstream_xfer_t **out)
{
    pg_upstream_xfer_t *x;
    int rc;

    if (out)
        *out = NULL;
    if (u == NULL || opts == NULL || opts->url == NULL || cbs == NULL ||
        cbs->on_done == NULL || out == NULL || u->closing)
        return PG_EINVAL;
    if (!opts->force_curl &&
        (rc = pg__h1_start(u->h1, opts, cbs, ud, out)) != PG_DECLINED)
        return rc;
    x = pg__calloc(1, sizeof *x);
    if (x == NULL)
        return PG_ENOMEM;
    x->magic = XFER_MAGIC;
    x->u = u;
    x->cbs = *cbs;
    x->ud = ud;
    x->first_byte_ms = opts->first_byte_timeout_ms;
    x->idle_ms = opts->idle_timeout_ms;
    x->max_bytes = opts->max_response_bytes;
    pg__uphead_init(&x->head);
    pg_list_init(&x->node);
    if (uv_timer_init(u->loop, &x->timer) != 0) {
        pg__free(x);
        return PG_ESYS;
    }
    u->handles++;
    rc = PG_ENOMEM;
    x->url = pg__strdup(opts->url);
    x->easy = u->nspare > 0 ? u->spare[--u->nspare] : curl_easy_init();
    if (x->url == NULL || x->easy == NULL)
        goto fail;
    if ((rc = build_headers(x, opts)) != PG_OK)
        goto fail;
    set_easy_options(x, opts);
    /* Inside curl's callbacks curl refuses new handles: after_curl adds it. */
    if (u->in_curl > 0)
        u->fixups = true;
    else if ((rc = xfer_add(x)) != PG_OK)
        goto fail;
    pg_list_push_back(&u->xfers, &x->node);
    u->stats.transfers_started++;
    u->stats.transfers_active++;
    if (x->first_byte_ms > 0)
        xfer_timer_start(x, TM_FIRST_BYTE, x->first_byte_ms);
    *out = x;
    return PG_OK;
fail:
    xfer_destroy(x);
    return rc;
}

void pg_upstream_cancel(pg_upstream_xfer_t *x)
{
    if (x == NULL)
        return;
    if (pg__h1_owns(x)) {
        pg__h1_cancel(x);
        return;
    }
    assert(x->magic == XFER_MAGIC);
    if (x->magic != XFER_MAGIC || x->done || x->canceled)
        return;
    x->canceled = true;
    if (x->u->in_curl > 0 || x->in_user) {
        /* Curl's callbacks (or this transfer's own) are on the stack:
         * callbacks now see canceled and stop; after_curl or the caller
         * of the user callback frees it. */
        x->u->fixups = true;
        return;
    }
    xfer_detach(x);
    xfer_destroy(x);
}

void pg_upstream_resume(pg_upstream_xfer_t *x)
{
    if (x == NULL)
        return;
    if (pg__h1_owns(x)) {
        pg__h1_resume(x);
        return;
    }
    assert(x->magic == XFER_MAGIC);
    if (x->magic != XFER_MAGIC || x->done || x->canceled)
        return;
    if (!x->paused) {
        /* Called from inside on_data before it returned PG_PENDING. */
        if (x->in_user)
            x->resume_early = true;
        return;
    }
    /* curl_easy_pause(CONT) may deliver data at once; a 0 ms timer makes
     * that happen from the loop, never inside the caller. */
    if (x->tmode != TM_RESUME)
        xfer_timer_start(x, TM_RESUME, 0);
}

void pg_upstream_set_pool(pg_upstream_t *u, unsigned max_idle,
                          uint64_t idle_timeout_ms)
{
    if (u != NULL && !u->closing)
        pg__h1_set_pool(u->h1, max_idle, idle_timeout_ms);
}

void pg_upstream_get_stats(const pg_upstream_t *u, pg_upstream_stats_t *out)
{
    if (u && out)
        *out = u->stats;
}

const char *pg_upstream_result_name(pg_upstream_result_t r)
{
    switch (r) {
    case PG_UPSTREAM_OK: return "ok";
    case PG_UPSTREAM_CONNECT_FAILED: return "connect_failed";
    case PG_UPSTREAM_CONNECT_TIMEOUT: return "connect_timeout";
    case PG_UPSTREAM_FIRST_BYTE_TIMEOUT: return "first_byte_timeout";
    case PG_UPSTREAM_IDLE_TIMEOUT: return "idle_timeout";
    case PG_UPSTREAM_TOTAL_TIMEOUT: return "total_timeout";
    case PG_UPSTREAM_BROKEN: return "broken";
    case PG_UPSTREAM_TOO_BIG: return "too_big";
    case PG_UPSTREAM_ABORTED: return "aborted";
    case PG_UPSTREAM_ERROR: return "error";
    }
    return "unknown";
}
