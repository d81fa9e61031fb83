/* log.c: builds each line in a fixed buffer and hands it to the sink.
 *
 * A line is a run of pieces (its start, then one per field), and each is
 * written one of two ways. While a piece's worst case (every value byte
 * escaped as \u00XX, the longest number) fits the room left, it goes
 * straight into the buffer with no further checks: the usual case, and
 * the cheap one. From the first piece that may not fit, the careful
 * writers (put, put_run) decide where the line is cut. A piece whose
 * worst case fits is never cut, so both ways write the same bytes; the
 * fast one only saves work. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/str.h"
#include "base/time.h"

/* The pieces may fill the buffer but for its last 8 bytes, which stay
 * free for the tail (put_tail). */
#define LINE_ROOM (PG_LOG_LINE_MAX - 8)
/* The longest escape of one byte (\u00XX). */
#define ESC_MAX 6
/* The longest number a field writes: 20 characters for an int64, 16
 * digits and ".xyz" for milliseconds; pg_i64_to_chars wants 24. */
#define NUM_MAX 24
/* The length of a timestamp ("2026-11-27T12:00:00.123Z"). */
#define TS_LEN 24

typedef struct line {
    char buf[PG_LOG_LINE_MAX];
    size_t n;
    bool cut;
} line_t;

/* Copies n bytes to o and returns the end. Keys and level names are a
 * few bytes long: two overlapping loads cost less than a memcpy call. */
static inline char *copy_short(char *o, const char *p, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    } else if (n > 0 && n < 4) {
        o[0] = p[0];
        o[n / 2] = p[n / 2];
        o[n - 1] = p[n - 1];
    } else {
        memcpy(o, p, n);
    }
    return o + n;
}

static void put(line_t *l, const char *p, size_t n)
{
    /* All or nothing, and nothing once cut: a cut line never ends inside
     * an escape sequence. 8 bytes stay free for the tail (put_tail). */
    if (l->cut || n > LINE_ROOM - l->n) {
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
    size_t room = l->cut ? 0 : LINE_ROOM - l->n;
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

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* Writes the JSON escape of c (a byte needs_escape accepts) at o and
 * returns its end: \" and \\, \u00XX for control characters. Out of
 * line: escapes are rare, and the scanning loops stay small. */
__attribute__((noinline)) static char *write_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    o[0] = '\\';
    if (c == '"' || c == '\\') {
        o[1] = (char)c;
        return o + 2;
    }
    o[1] = 'u';
    o[2] = '0';
    o[3] = '0';
    o[4] = hex[c >> 4];
    o[5] = hex[c & 15];
    return o + 6;
}

/* pg_json_special_bytes' lowest bit is the first such byte only on a
 * little-endian load; elsewhere the fast writer goes byte by byte. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_SCAN 1
#else
#define WORD_SCAN 0
#endif

#if WORD_SCAN
/* The r (1..7) bytes at p as the low bytes of a word, the rest zero:
 * two overlapping loads instead of a loop. */
static inline uint64_t load_tail(const char *p, size_t r)
{
    if (r >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + r - 4, 4);
        return a | (uint64_t)b << (8 * (r - 4));
    }
    return (uint64_t)(unsigned char)p[0] |
           (uint64_t)(unsigned char)p[r / 2] << (8 * (r / 2)) |
           (uint64_t)(unsigned char)p[r - 1] << (8 * (r - 1));
}
#endif

/* Writes s JSON-escaped (no quotes) at o and returns the end; o must
 * have room for ESC_MAX * s.n bytes. Eight bytes are stored before they
 * are looked at, and kept up to the first one that needs an escape; the
 * last 1..7 go the same way as one zero-padded word. Output never runs
 * ahead of ESC_MAX bytes per input byte consumed, so a word stored with
 * 8 or more bytes left stays inside the room, and the last word's store
 * ends at most 2 bytes past it: inside the 8 bytes past LINE_ROOM, which
 * only put_tail fills, after the line is written. Inlined in its three
 * callers: for the short values of a log line, a call and reloading the
 * masks cost about as much as the scan. */
__attribute__((always_inline)) static inline char *
write_json_escaped(char *o, pg_str_t s)
{
    const char *p = s.p, *end = s.p + s.n;
#if WORD_SCAN
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        memcpy(o, &w, 8);
        uint64_t hit = pg_json_special_bytes(w);
        if (hit == 0) {
            p += 8;
            o += 8;
            continue;
        }
        size_t k = (size_t)__builtin_ctzll(hit) >> 3;
        o = write_escape(o + k, (unsigned char)p[k]);
        p += k + 1;
    }
    if (p == end)
        return o;
    size_t r = (size_t)(end - p);
    uint64_t w = load_tail(p, r);
    memcpy(o, &w, 8);
    /* The zero padding reads as control characters: look at r bytes. */
    uint64_t hit =
        pg_json_special_bytes(w) & (0x8080808080808080ull >> (64 - 8 * r));
    if (hit == 0)
        return o + r;
    size_t k = (size_t)__builtin_ctzll(hit) >> 3;
    o += k;
    p += k;
#endif
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (needs_escape(c))
            o = write_escape(o, c);
        else
            *o++ = (char)c;
    }
    return o;
}

/* A JSON string body (no quotes), the careful way: plain runs may be cut,
 * escapes are all or nothing. */
static void put_json_escaped(line_t *l, pg_str_t s)
{
    const char *p = s.p, *end = s.p + s.n;
    while (p < end) {
        const char *q = pg_json_find_special(p, end);
        if (q > p)
            put_run(l, p, (size_t)(q - p));
        if (q == end)
            break;
        char esc[ESC_MAX];
        put(l, esc, (size_t)(write_escape(esc, (unsigned char)*q) - esc));
        p = q + 1;
    }
}

/* Text format: values with spaces, quotes or '=' (and empty ones) are
 * quoted and escaped like JSON strings. */
static bool text_needs_quotes(pg_str_t s)
{
    if (s.n == 0)
        return true;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == ' ' || c == '"' || c == '=' || c < 0x20)
            return true;
    }
    return false;
}

/* The fast text value: room for 2 + ESC_MAX * s.n bytes at o. */
static char *write_text_value(char *o, pg_str_t s)
{
    if (!text_needs_quotes(s)) {
        memcpy(o, s.p, s.n);
        return o + s.n;
    }
    *o++ = '"';
    o = write_json_escaped(o, s);
    *o++ = '"';
    return o;
}

static void put_text_value(line_t *l, pg_str_t s)
{
    if (!text_needs_quotes(s)) {
        /* Byte by byte: an unquoted value is cut at the last byte that
         * fits. */
        for (size_t i = 0; i < s.n; i++)
            putc_(l, s.p[i]);
        return;
    }
    putc_(l, '"');
    put_json_escaped(l, s);
    putc_(l, '"');
}

/* Writes a number field's value at o (room for NUM_MAX bytes); returns
 * the end. */
static inline char *write_number(char *o, const pg_log_field_t *f)
{
    if (f->type != PG_LF_MS)
        return o + pg_i64_to_chars(f->i, o);
    int64_t us = f->i < 0 ? 0 : f->i;
    int frac = (int)(us % 1000);
    o += pg_i64_to_chars(us / 1000, o);
    o[0] = '.';
    o[1] = (char)('0' + frac / 100);
    o[2] = (char)('0' + frac / 10 % 10);
    o[3] = (char)('0' + frac % 10);
    return o + 4;
}

static void put_number(line_t *l, const pg_log_field_t *f)
{
    char num[NUM_MAX];
    put(l, num, (size_t)(write_number(num, f) - num));
}

/* Formatting the timestamp (gmtime + strftime) costs more than the rest
 * of a line; each thread keeps the text of the current second. Returns
 * TS_LEN characters (not NUL-terminated). */
static const char *timestamp_text(void)
{
    static _Thread_local int64_t cached_sec = -1;
    static _Thread_local char cached[TS_LEN + 1];
    int64_t ms = pg_unix_ms();
    if (ms / 1000 != cached_sec) {
        pg_format_utc_ms(ms, cached);
        cached_sec = ms / 1000;
    }
    int frac = (int)(ms % 1000);
    cached[20] = (char)('0' + frac / 100);
    cached[21] = (char)('0' + frac / 10 % 10);
    cached[22] = (char)('0' + frac % 10);
    return cached;
}

static pg_str_t level_str(pg_log_level_t lvl)
{
    switch (lvl) {
    case PG_LOG_ERROR: return PG_STR("error");
    case PG_LOG_WARN: return PG_STR("warn");
    case PG_LOG_INFO: return PG_STR("info");
    case PG_LOG_DEBUG: return PG_STR("debug");
    }
    return PG_STR("info");
}

/* True when a piece of at most fixed + ESC_MAX * scaled bytes fits
 * between o and the end of the room. fixed is a few literals plus a key
 * (PG_LF_KEY: a literal) or a message, so it cannot overflow; scaled is
 * checked before it is multiplied. */
static inline bool fits(const line_t *l, const char *o, size_t fixed,
                        size_t scaled)
{
    size_t room = (size_t)(l->buf + LINE_ROOM - o);
    return scaled <= LINE_ROOM / ESC_MAX && fixed + ESC_MAX * scaled <= room;
}

/* A field's worst case: ,"key": or  key= with the value's quotes, the
 * longest number, and every byte of s escaped. It counts both kinds of
 * value at once, which only overstates it (a number's s is empty), and
 * saves a branch per field. */
static inline bool field_fits(const line_t *l, const char *o,
                              const pg_log_field_t *f)
{
    return fits(l, o, f->key.n + 6 + NUM_MAX, f->s.n);
}

/* The fast writers: each writes its piece at o, which has room for the
 * piece's worst case, and returns the end. */

/* {"ts":"<ts>","level":"<level>","msg":"<msg>" */
static char *write_json_start(char *o, pg_log_level_t lvl, pg_str_t msg)
{
    pg_str_t level = level_str(lvl);
    memcpy(o, "{\"ts\":\"", 7);
    memcpy(o + 7, timestamp_text(), TS_LEN);
    o += 7 + TS_LEN;
    memcpy(o, "\",\"level\":\"", 11);
    o = copy_short(o + 11, level.p, level.n);
    memcpy(o, "\",\"msg\":\"", 9);
    o = write_json_escaped(o + 9, msg);
    *o++ = '"';
    return o;
}

/* ,"key":"value" or ,"key":number */
static inline char *write_json_field(char *o, const pg_log_field_t *f)
{
    *o++ = ',';
    *o++ = '"';
    o = copy_short(o, f->key.p, f->key.n);
    *o++ = '"';
    *o++ = ':';
    if (f->type != PG_LF_STR)
        return write_number(o, f);
    *o++ = '"';
    o = write_json_escaped(o, f->s);
    *o++ = '"';
    return o;
}

/* <ts> <level> <msg> (the message is not escaped) */
static char *write_text_start(char *o, pg_log_level_t lvl, pg_str_t msg)
{
    pg_str_t level = level_str(lvl);
    memcpy(o, timestamp_text(), TS_LEN);
    o += TS_LEN;
    *o++ = ' ';
    o = copy_short(o, level.p, level.n);
    *o++ = ' ';
    memcpy(o, msg.p, msg.n);
    return o + msg.n;
}

/*  key=value */
static inline char *write_text_field(char *o, const pg_log_field_t *f)
{
    *o++ = ' ';
    o = copy_short(o, f->key.p, f->key.n);
    *o++ = '=';
    if (f->type != PG_LF_STR)
        return write_number(o, f);
    return write_text_value(o, f->s);
}

/* The careful writers: the same pieces, each put whole or not at all (a
 * value is cut where put_run and put_text_value say). */

static void put_json_start(line_t *l, pg_log_level_t lvl, pg_str_t msg)
{
    pg_str_t level = level_str(lvl);
    put(l, "{\"ts\":\"", 7);
    put(l, timestamp_text(), TS_LEN);
    put(l, "\",\"level\":\"", 11);
    put(l, level.p, level.n);
    put(l, "\",\"msg\":\"", 9);
    put_json_escaped(l, msg);
    putc_(l, '"');
}

static void put_json_field(line_t *l, const pg_log_field_t *f)
{
    put(l, ",\"", 2);
    put(l, f->key.p, f->key.n);
    put(l, "\":", 2);
    if (f->type == PG_LF_STR) {
        putc_(l, '"');
        put_json_escaped(l, f->s);
        putc_(l, '"');
    } else {
        put_number(l, f);
    }
}

static void put_text_start(line_t *l, pg_log_level_t lvl, pg_str_t msg)
{
    pg_str_t level = level_str(lvl);
    put(l, timestamp_text(), TS_LEN);
    putc_(l, ' ');
    put(l, level.p, level.n);
    putc_(l, ' ');
    put(l, msg.p, msg.n);
}

static void put_text_field(line_t *l, const pg_log_field_t *f)
{
    putc_(l, ' ');
    put(l, f->key.p, f->key.n);
    putc_(l, '=');
    if (f->type == PG_LF_STR)
        put_text_value(l, f->s);
    else
        put_number(l, f);
}

/* Whether the start of a line (time, level, message) fits at worst. */
static bool start_fits(const line_t *l, bool json, pg_str_t msg)
{
    /* {"ts":"<ts>","level":"debug","msg":"<msg escaped>" */
    if (json)
        return fits(l, l->buf, 7 + TS_LEN + 11 + 5 + 9 + 1, msg.n);
    /* <ts> debug <msg> */
    return msg.n <= LINE_ROOM && fits(l, l->buf, TS_LEN + 1 + 5 + 1 + msg.n, 0);
}

/* Pieces go the fast way while their worst case fits, the careful way
 * from the first one that may not. Inlined with json a constant, so each
 * format gets its own loop with no test per field. */
__attribute__((always_inline)) static inline void write_line(line_t *l, bool json, pg_log_level_t lvl,
                       pg_str_t msg, const pg_log_field_t *f, size_t nfields)
{
    size_t i = 0;
    if (start_fits(l, json, msg)) {
        char *o = json ? write_json_start(l->buf, lvl, msg)
                       : write_text_start(l->buf, lvl, msg);
        for (; i < nfields && field_fits(l, o, &f[i]); i++)
            o = json ? write_json_field(o, &f[i]) : write_text_field(o, &f[i]);
        l->n = (size_t)(o - l->buf);
    } else if (json) {
        put_json_start(l, lvl, msg);
    } else {
        put_text_start(l, lvl, msg);
    }
    for (; i < nfields; i++) {
        if (json)
            put_json_field(l, &f[i]);
        else
            put_text_field(l, &f[i]);
    }
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
static void put_tail(line_t *l, pg_str_t s)
{
    memcpy(l->buf + l->n, s.p, s.n);
    l->n += s.n;
}

static void emit(const pg_logger_t *lg, pg_log_level_t lvl, line_t *l)
{
    if (l->cut)
        put_tail(l, lg->json ? PG_STR("...\"}") : PG_STR("..."));
    else if (lg->json)
        put_tail(l, PG_STR("}"));
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
    /* Not an initializer: that would zero the whole buffer. */
    line_t l;
    l.n = 0;
    l.cut = false;
    if (lg->json)
        write_line(&l, true, lvl, pg_str_c(msg), fields, nfields);
    else
        write_line(&l, false, lvl, pg_str_c(msg), fields, nfields);
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

const char *pg_log_level_name(pg_log_level_t lvl) { return level_str(lvl).p; }

int pg_log_level_parse(pg_str_t s, pg_log_level_t *out)
{
    static const pg_log_level_t all[] = {PG_LOG_ERROR, PG_LOG_WARN,
                                         PG_LOG_INFO, PG_LOG_DEBUG};
    for (size_t i = 0; i < 4; i++) {
        if (pg_str_eq(s, level_str(all[i]))) {
            *out = all[i];
            return PG_OK;
        }
    }
    return PG_EPARSE;
}
