/* h1_resp.c: the response side of the native HTTP/1.1 client (see
 * h1_resp.h). Every read lands in the client's one buffer and is parsed
 * at once with llhttp: head pieces go to head.c, the head to on_head, body
 * bytes to on_data straight from the buffer. An on_data that answers
 * PG_PENDING pauses llhttp; the rest of that read waits in conn->pend and
 * reading stops until pg__h1_resume. User callbacks run inside llhttp's,
 * so a failure there only records why (x->forced) and parse() ends the
 * transfer once llhttp returns.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1_resp.h"

#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "upstream/h1_conn.h"
#include "upstream/h1_deadline.h"
#include "upstream/h1_xfer.h"

/* Status line, CRLFs and the like on top of the header bytes head.h caps. */
#define H1_HEAD_RAW_MAX (PG_UPHEAD_MAX_BYTES + 8192)

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
    pg__h1_xfer_set_phase(x, PH_BODY);
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
        pg__h1_xfer_arm(x);
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

const llhttp_settings_t pg__h1_parser_settings = {
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
        pg__h1_xfer_cancel_now(x);
        return;
    }
    flush(x);
    if (x->canceled) {
        pg__h1_xfer_cancel_now(x);
        return;
    }
    if (x->forced != PG_UPSTREAM_OK) {
        pg__h1_xfer_end(x, x->forced, x->errbuf);
        return;
    }
    if (x->complete) {
        /* Bytes after the response (pipelined garbage) make the
         * connection unfit for another request. */
        x->rest = llhttp_get_error_pos(&c->parser) != p + n;
        pg__h1_xfer_end(x, PG_UPSTREAM_OK, "ok");
        return;
    }
    if (err == HPE_PAUSED && x->paused) {
        if (!keep_rest(c, llhttp_get_error_pos(&c->parser), p + n)) {
            pg__h1_xfer_end(x, PG_UPSTREAM_ERROR, "out of memory");
            return;
        }
        pg__h1_conn_read_stop(c);
        return;
    }
    if (err != HPE_OK) {
        pg__h1_xfer_fail(x, PG_UPSTREAM_BROKEN, "malformed response: %s",
                         llhttp_get_error_reason(&c->parser));
        return;
    }
    if (!x->head_delivered && x->head_raw > H1_HEAD_RAW_MAX)
        pg__h1_xfer_fail(x, PG_UPSTREAM_TOO_BIG,
                         "response head larger than %d bytes", H1_HEAD_RAW_MAX);
}

/* The upstream closed (or reset) the connection while x was on it. */
static void conn_eof(h1_conn_t *c, h1_xfer_t *x, int err)
{
    if (!x->got_byte || err != UV_EOF) {
        pg__h1_xfer_conn_lost(x, "receive failed", err);
        return;
    }
    /* A body delimited by the close ends here (llhttp calls
     * on_message_done); anything else was cut short. */
    x->in_parse = true;
    llhttp_finish(&c->parser);
    x->in_parse = false;
    x->keep_alive = false;
    if (x->complete)
        pg__h1_xfer_end(x, PG_UPSTREAM_OK, "ok");
    else
        pg__h1_xfer_fail(x, PG_UPSTREAM_BROKEN,
                         "connection closed before the response ended");
}

void pg__h1_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    h1_conn_t *c = pg_container_of((uv_tcp_t *)s, h1_conn_t, tcp);
    h1_xfer_t *x = c->x;

    if (nread == 0 || c->closing)
        return;
    if (x == NULL) { /* idle in the pool: a close, an error or stray bytes */
        pg__h1_conn_close(c);
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

void pg__h1_do_resume(h1_xfer_t *x)
{
    h1_conn_t *c = x->conn;

    if (c == NULL)
        return;
    char *p = c->pend;
    size_t n = c->pendn;
    x->paused = false;
    pg__h1_xfer_set_phase(x, PH_BODY);
    llhttp_resume(&c->parser);
    /* Parsed even when empty: llhttp may still owe on_message_complete
     * for a body whose last bytes came with the pause. */
    c->pend = NULL;
    c->pendn = 0;
    parse(c, x, p ? p : "", n);
    pg__free(p);
    if (!x->done && !x->canceled && !x->paused && x->conn == c)
        pg__h1_conn_read_start(c);
}
