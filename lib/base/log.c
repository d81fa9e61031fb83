/* log.c: builds each line in a fixed buffer and hands it to the sink. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

static void putc_(line_t *l, char c) { put(l, &c, 1); }
static void puts_(line_t *l, const char *s) { put(l, s, strlen(s)); }

/* A JSON string body (no quotes); control characters escaped. */
static void put_json_escaped(line_t *l, pg_str_t s)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"' || c == '\\') {
            putc_(l, '\\');
            putc_(l, (char)c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(l, esc);
        } else {
            putc_(l, (char)c);
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
    if (f->type == PG_LF_MS) {
        int64_t us = f->i < 0 ? 0 : f->i;
        snprintf(num, sizeof(num), "%lld.%03lld", (long long)(us / 1000),
                 (long long)(us % 1000));
    } else {
        snprintf(num, sizeof(num), "%lld", (long long)f->i);
    }
    puts_(l, num);
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
    /* One write(2) per line so lines from several workers never interleave. */
    ssize_t w = write(STDERR_FILENO, l->buf, l->n);
    (void)w;
}

void pg_log_fields(const pg_logger_t *lg, pg_log_level_t lvl, const char *msg,
                   const pg_log_field_t *fields, size_t nfields)
{
    if (!pg_log_enabled(lg, lvl))
        return;
    line_t l = {.n = 0, .cut = false};
    char ts[25];
    pg_format_utc_ms(pg_unix_ms(), ts);
    if (lg->json) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, ts);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, pg_log_level_name(lvl));
        puts_(&l, "\",\"msg\":\"");
        put_json_escaped(&l, pg_str_c(msg));
        putc_(&l, '"');
    } else {
        puts_(&l, ts);
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
