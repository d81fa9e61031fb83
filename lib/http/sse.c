/* sse.c: Server-Sent Events framing for client streams and the
 * event-stream parser for upstream streams (see sse.h). The writer is pure;
 * a parser belongs to one upstream transfer and is used by one thread at a
 * time (that transfer's loop). */
#include "http/sse.h"

#include <string.h>

/* Where the line starting at s ends: the first CR or LF, or n. memchr
 * scans a word at a time, which is what makes long JSON lines cheap. */
static size_t line_end(const char *s, size_t n)
{
    const char *lf = memchr(s, '\n', n);
    size_t lim = lf ? (size_t)(lf - s) : n;
    const char *cr = memchr(s, '\r', lim);
    return cr ? (size_t)(cr - s) : lim;
}

int pg_sse_append_event(pg_buf_t *b, pg_str_t event, pg_str_t data)
{
    size_t first = line_end(data.p ? data.p : "", data.n);
    if (first == data.n) {
        /* One line (every JSON payload): one reservation, three copies. */
        size_t need = (event.n ? 8 + event.n : 0) + 8 + data.n;
        int rc = pg_buf_reserve(b, need);
        if (rc != PG_OK)
            return rc;
        char *w = b->p + b->n;
        if (event.n > 0) {
            memcpy(w, "event: ", 7);
            memcpy(w + 7, event.p, event.n);
            w[7 + event.n] = '\n';
            w += 8 + event.n;
        }
        memcpy(w, "data: ", 6);
        if (data.n > 0)
            memcpy(w + 6, data.p, data.n);
        memcpy(w + 6 + data.n, "\n\n", 2);
        b->n += need;
        b->p[b->n] = '\0'; /* the buffer's promise */
        return PG_OK;
    }
    int rc = PG_OK;
    if (event.n > 0) {
        rc = pg_buf_append(b, "event: ", 7);
        if (rc == PG_OK)
            rc = pg_buf_append_str(b, event);
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, '\n');
    }
    /* Each line of data becomes its own "data:" field; CR, LF and CRLF
     * all end a line, as the SSE spec's parser reads them. */
    size_t i = 0;
    while (rc == PG_OK) {
        size_t j = i + line_end(data.p + i, data.n - i);
        rc = pg_buf_append(b, "data: ", 6);
        if (rc == PG_OK)
            rc = pg_buf_append(b, data.p + i, j - i);
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, '\n');
        if (j >= data.n)
            break;
        if (data.p[j] == '\r' && j + 1 < data.n && data.p[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    if (rc == PG_OK)
        rc = pg_buf_append_char(b, '\n');
    return rc;
}

int pg_sse_append_comment(pg_buf_t *b, pg_str_t text)
{
    int rc = pg_buf_append(b, ": ", 2);
    if (rc == PG_OK)
        rc = pg_buf_append_str(b, text);
    if (rc == PG_OK)
        rc = pg_buf_append(b, "\n\n", 2);
    return rc;
}

/* ---- parser ------------------------------------------------------------- */

/* Room on a line for "event: " or "data: " besides the value. */
#define SSE_LINE_SLACK 16

void pg_sse_parser_init(pg_sse_parser_t *p, size_t max_event_bytes)
{
    memset(p, 0, sizeof(*p));
    if (max_event_bytes == 0)
        max_event_bytes = (size_t)-1 / 4 - SSE_LINE_SLACK;
    p->max_event_bytes = max_event_bytes;
    /* Each buffer alone is capped at the event limit (a line also holds
     * its field name); the sum is checked where data and event grow. */
    pg_buf_init(&p->line, max_event_bytes + SSE_LINE_SLACK);
    pg_buf_init(&p->event, max_event_bytes);
    pg_buf_init(&p->data, max_event_bytes);
}

void pg_sse_parser_destroy(pg_sse_parser_t *p)
{
    pg_buf_free(&p->line);
    pg_buf_free(&p->event);
    pg_buf_free(&p->data);
    p->has_data = false;
    p->after_cr = false;
}

static pg_str_t buf_or_empty(const pg_buf_t *b)
{
    return b->n ? pg_buf_str(b) : (pg_str_t){"", 0};
}

static int sse_dispatch(pg_sse_parser_t *p, pg_sse_event_cb cb, void *ud)
{
    int rc = PG_OK;
    /* WHATWG: a blank line with no data field only resets the event
     * name; an event with a data field, even an empty one, is fired. */
    if (p->has_data)
        rc = cb(ud, buf_or_empty(&p->event), buf_or_empty(&p->data));
    pg_buf_reset(&p->event);
    pg_buf_reset(&p->data);
    p->has_data = false;
    return rc;
}

static bool field_is(const char *f, size_t n, const char *name, size_t len)
{
    return n == len && memcmp(f, name, len) == 0;
}

/* One complete line, without its terminator. */
static int sse_line(pg_sse_parser_t *p, const char *s, size_t n,
                    pg_sse_event_cb cb, void *ud)
{
    if (n == 0)
        return sse_dispatch(p, cb, ud);
    if (s[0] == ':')
        return PG_OK; /* comment: keepalives and the like */
    const char *colon = memchr(s, ':', n);
    size_t fn = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vn = (size_t)(s + n - v);
    if (vn > 0 && v[0] == ' ') {
        v++;
        vn--;
    }
    if (field_is(s, fn, "data", 4)) {
        size_t add = vn + (p->has_data ? 1 : 0);
        if (p->data.n + p->event.n + add > p->max_event_bytes)
            return PG_ETOOBIG;
        int rc = PG_OK;
        if (p->has_data)
            rc = pg_buf_append_char(&p->data, '\n');
        if (rc == PG_OK)
            rc = pg_buf_append(&p->data, v, vn);
        p->has_data = true;
        return rc;
    }
    if (field_is(s, fn, "event", 5)) {
        if (p->data.n + vn > p->max_event_bytes)
            return PG_ETOOBIG;
        pg_buf_reset(&p->event);
        return pg_buf_append(&p->event, v, vn);
    }
    /* id, retry and unknown fields mean nothing to a proxy that never
     * reconnects: ignored, as the spec ignores unknown fields. */
    return PG_OK;
}

int pg_sse_parser_feed(pg_sse_parser_t *p, pg_str_t bytes, pg_sse_event_cb cb,
                       void *ud)
{
    const char *s = bytes.p;
    size_t n = bytes.n, i = 0;
    while (i < n) {
        if (p->after_cr) {
            /* The LF of a CRLF whose CR ended the previous line (possibly
             * in the previous feed). */
            p->after_cr = false;
            if (s[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i + line_end(s + i, n - i);
        if (j == n) {
            /* An unfinished line: keep it for the next feed. The line
             * buffer's cap is the event limit. */
            return pg_buf_append(&p->line, s + i, n - i);
        }
        const char *ls = s + i;
        size_t ln = j - i;
        int rc;
        if (p->line.n > 0) {
            if ((rc = pg_buf_append(&p->line, ls, ln)))
                return rc;
            ls = p->line.p;
            ln = p->line.n;
        } else if (ln > p->max_event_bytes + SSE_LINE_SLACK) {
            return PG_ETOOBIG;
        }
        p->after_cr = s[j] == '\r';
        i = j + 1;
        rc = sse_line(p, ls, ln, cb, ud);
        pg_buf_reset(&p->line);
        if (rc != PG_OK)
            return rc;
    }
    return PG_OK;
}

int pg_sse_parser_finish(pg_sse_parser_t *p, pg_sse_event_cb cb, void *ud)
{
    (void)cb;
    (void)ud;
    /* WHATWG drops an event that lacks its closing blank line; for an
     * upstream that means the stream was cut, which the caller must know. */
    bool pending = p->line.n > 0 || p->has_data || p->event.n > 0;
    pg_buf_reset(&p->line);
    pg_buf_reset(&p->event);
    pg_buf_reset(&p->data);
    p->has_data = false;
    p->after_cr = false;
    return pending ? PG_EPARSE : PG_OK;
}
