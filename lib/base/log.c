/* log.c: builds each line in a fixed buffer and hands it to the sink. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/str.h"
#include "base/time.h"

typedef struct line {
    char buf[PG_LOG_LINE_MAX];
    size_t n;
    bool cut;
} line_t;

static void put(line_t *l, const char *p, size_t n)
{
    /* All or nothing, and nothing once cut: a cut line never ends inside
     * an escape sequence. 8 bytes stay free for the tail (put_tail). */
    if (l->cut || n > sizeof(l->buf) - 8 - l->n) {
        l->cut = true;
        return;
    }
    memcpy(l->buf + l->n, p, n);
    l->n += n;
}

/* Like put, but a run too long for the line is cut (at a UTF-8 character
 * boundary) rather than dropped, so a huge value still shows its start. */
static void put_run(line_t *l, const char *p, size_t n)
{
    size_t room = l->cut ? 0 : sizeof(l->buf) - 8 - l->n;
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--;
        memcpy(l->buf + l->n, p, n);
        l->n += n;
        l->cut = true;
        return;
    }
    put(l, p, n);
}

static void putc_(line_t *l, char c) { put(l, &c, 1); }
static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

/* A JSON string body (no quotes); control characters escaped. Runs that
 * need no escaping are copied in one go. */
static void put_json_escaped(line_t *l, pg_str_t s)
{
    size_t i = 0;
    while (i < s.n) {
        size_t start = i;
        while (i < s.n && (unsigned char)s.p[i] >= 0x20 && s.p[i] != '"' &&
               s.p[i] != '\\')
            i++;
        if (i > start)
            put_run(l, s.p + start, i - start);
        if (i >= s.n)
            break;
        unsigned char c = (unsigned char)s.p[i++];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(l, esc, 2);
        } else {
            static const char hex[] = "0123456789abcdef";
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(l, esc, 6);
        }
    }
}

/* Text format: values with spaces or quotes are quoted. */
static void put_text_value(line_t *l, pg_str_t s)
{
    bool quote = s.n == 0;
    for (size_t i = 0; i < s.n && !quote; i++)
        quote = s.p[i] == ' ' || s.p[i] == '"' || s.p[i] == '=' ||
                (unsigned char)s.p[i] < 0x20;
    if (!quote) {
        for (size_t i = 0; i < s.n; i++)
            putc_(l, s.p[i]);
        return;
    }
    putc_(l, '"');
    put_json_escaped(l, s);
    putc_(l, '"');
}

static void put_number(line_t *l, const pg_log_field_t *f)
{
    char num[48];
    size_t n;
    if (f->type == PG_LF_MS) {
        int64_t us = f->i < 0 ? 0 : f->i;
        int64_t frac = us % 1000;
        n = pg_i64_to_chars(us / 1000, num);
        num[n++] = '.';
        num[n++] = (char)('0' + frac / 100);
        num[n++] = (char)('0' + frac / 10 % 10);
        num[n++] = (char)('0' + frac % 10);
    } else {
        n = pg_i64_to_chars(f->i, num);
    }
    put(l, num, n);
}

/* Formatting the timestamp (gmtime + strftime) costs more than the rest
 * of a line; each thread keeps the text of the current second. */
static void put_timestamp(line_t *l)
{
    static _Thread_local int64_t cached_sec = -1;
    static _Thread_local char cached[25];
    int64_t ms = pg_unix_ms();
    if (ms / 1000 != cached_sec) {
        pg_format_utc_ms(ms, cached);
        cached_sec = ms / 1000;
    }
    int frac = (int)(ms % 1000);
    cached[20] = (char)('0' + frac / 100);
    cached[21] = (char)('0' + frac / 10 % 10);
    cached[22] = (char)('0' + frac % 10);
    put(l, cached, 24);
}

/* Per-thread batching of stderr lines (see pg_log_batch_enable). */
static _Thread_local bool batch_on;
static _Thread_local size_t batch_n;
static _Thread_local char batch_buf[32 * 1024];

/* Whole lines in one write(2) each, so lines from several workers never
 * interleave (writes to a pipe or file up to PIPE_BUF are atomic, and
 * our lines are at most PG_LOG_LINE_MAX). */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* stderr is gone: nothing sensible to do */
        p += w;
        n -= (size_t)w;
    }
}

void pg_log_batch_enable(void) { batch_on = true; }

void pg_log_batch_flush(void)
{
    /* Write whole lines only, each batch in one write: a batch is at most
     * 32 KiB, so a line never straddles two writes. */
    if (batch_n > 0)
        write_all(batch_buf, batch_n);
    batch_n = 0;
}

void pg_log_batch_disable(void)
{
    pg_log_batch_flush();
    batch_on = false;
}

/* The tail goes into the 8 bytes put() keeps free, so a cut line still
 * ends with "..." and, in JSON, its closing brace (and the NUL or LF). */
static void put_tail(line_t *l, const char *s)
{
    size_t n = strlen(s);
    memcpy(l->buf + l->n, s, n);
    l->n += n;
}

static void emit(const pg_logger_t *lg, pg_log_level_t lvl, line_t *l)
{
    if (l->cut)
        put_tail(l, lg->json ? "...\"}" : "...");
    else if (lg->json)
        put_tail(l, "}");
    if (lg->sink != NULL) {
        l->buf[l->n] = '\0';
        lg->sink(lg->ud, lvl, l->buf, l->n);
        return;
    }
    l->buf[l->n++] = '\n';
    if (batch_on) {
        if (batch_n + l->n > sizeof(batch_buf))
            pg_log_batch_flush();
        memcpy(batch_buf + batch_n, l->buf, l->n);
        batch_n += l->n;
        if (lvl <= PG_LOG_WARN)
            pg_log_batch_flush(); /* problems are never held back */
        return;
    }
    write_all(l->buf, l->n);
}

void pg_log_fields(const pg_logger_t *lg, pg_log_level_t lvl, const char *msg,
                   const pg_log_field_t *fields, size_t nfields)
{
    if (!pg_log_enabled(lg, lvl))
        return;
    line_t l = {.n = 0, .cut = false};
    if (lg->json) {
        puts_(&l, "{\"ts\":\"");
        put_timestamp(&l);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, pg_log_level_name(lvl));
        puts_(&l, "\",\"msg\":\"");
        put_json_escaped(&l, pg_str_c(msg));
        putc_(&l, '"');
    } else {
        put_timestamp(&l);
        putc_(&l, ' ');
        puts_(&l, pg_log_level_name(lvl));
        putc_(&l, ' ');
        puts_(&l, msg);
    }
    for (size_t i = 0; i < nfields; i++) {
        const pg_log_field_t *f = &fields[i];
        if (lg->json) {
            puts_(&l, ",\"");
            puts_(&l, f->key);
            puts_(&l, "\":");
            if (f->type == PG_LF_STR) {
                putc_(&l, '"');
                put_json_escaped(&l, f->s);
                putc_(&l, '"');
            } else {
                put_number(&l, f);
            }
        } else {
            putc_(&l, ' ');
            puts_(&l, f->key);
            putc_(&l, '=');
            if (f->type == PG_LF_STR)
                put_text_value(&l, f->s);
            else
                put_number(&l, f);
        }
    }
    emit(lg, lvl, &l);
}

void pg_logf(const pg_logger_t *lg, pg_log_level_t lvl, const char *fmt, ...)
{
    if (!pg_log_enabled(lg, lvl))
        return;
    char msg[PG_LOG_LINE_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    pg_log_fields(lg, lvl, msg, NULL, 0);
}

const char *pg_log_level_name(pg_log_level_t lvl)
{
    switch (lvl) {
    case PG_LOG_ERROR: return "error";
    case PG_LOG_WARN: return "warn";
    case PG_LOG_INFO: return "info";
    case PG_LOG_DEBUG: return "debug";
    }
    return "info";
}

int pg_log_level_parse(pg_str_t s, pg_log_level_t *out)
{
    static const pg_log_level_t all[] = {PG_LOG_ERROR, PG_LOG_WARN,
                                         PG_LOG_INFO, PG_LOG_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        if (pg_str_eqc(s, pg_log_level_name(all[i]))) {
            *out = all[i];
            return PG_OK;
        }
    }
    return PG_EPARSE;
}
