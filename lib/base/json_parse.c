/* json_parse.c: a JSON parser that builds cJSON-shaped trees in a request
 * arena. The request path parses every body; cJSON's own parser makes one
 * malloc per node and string and one free each at cJSON_Delete, which was
 * the largest single cost of a request. The nodes here are ordinary cJSON
 * structs, so every cJSON read function (GetObjectItem, IsString, Print...)
 * works on them; they are freed with the arena and must never be passed to
 * cJSON_Delete or modified with cJSON's write functions.
 *
 * One loop with an explicit stack of open containers (no call per value):
 * a node is one arena allocation, with every field set (no memset), that
 * also holds its key and, for a string, its bytes; strings are scanned
 * (pg_json_find_special) and copied 16 bytes at a time, integers below
 * 10^15 are converted while scanned. Strict RFC 8259: no comments, no trailing commas, no leading
 * zeros, no NaN; nesting is bounded. Pure function; any thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#define JSON_MAX_DEPTH 256

static inline const char *skip_ws(const char *p, const char *end)
{
    /* Compact JSON has no whitespace: one test for the usual case. */
    if (p < end && (unsigned char)*p > ' ')
        return p;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The rest of a string scan once pg_json_find_special stopped at q on
 * something other than the closing quote: steps over escapes (the escaped
 * byte is checked when decoding). The closing quote, or NULL with *err at
 * a control character (or at end: unterminated). */
static const char *string_end_slow(const char *q, const char *end,
                                   bool *escaped, const char **err)
{
    for (;;) {
        if (q >= end) {
            *err = end;
            return NULL;
        }
        if (*q == '"')
            return q;
        if (*q != '\\') { /* a control character */
            *err = q;
            return NULL;
        }
        if (end - q <= 2) { /* nothing after the escape */
            *err = end;
            return NULL;
        }
        *escaped = true;
        q = pg_json_find_special(q + 2, end);
    }
}

/* The closing quote of the string whose first byte is s; NULL with *err
 * where it is malformed. *escaped: it holds a backslash. */
static inline const char *string_end(const char *s, const char *end,
                                     bool *escaped, const char **err)
{
    const char *q = pg_json_find_special(s, end);
    if (q < end && *q == '"')
        return q;
    return string_end_slow(q, end, escaped, err);
}

/* Bytes reserved for a string of n bytes: n and its NUL rounded up to
 * 16, so that str_copy may move 16 bytes at a time and node sizes stay
 * multiples of the arena's alignment. */
static inline size_t str_room(size_t n) { return (n + 16) & ~(size_t)15; }

/* Copies the unescaped string s[0..n) (s[n] is its closing quote) into o,
 * which has str_room(n) bytes, and terminates it. 16 bytes at a time when
 * the text has str_room(n) bytes from s: the last block may carry bytes
 * past the quote into o's spare room. */
static inline void str_copy(char *o, const char *s, size_t n,
                            const char *end)
{
    if ((size_t)(end - s) >= str_room(n)) {
        size_t i = 0;
        do {
            memcpy(o + i, s + i, 16);
            i += 16;
        } while (i < n);
    } else {
        memcpy(o, s, n);
    }
    o[n] = '\0';
}

/* Copies the run r..b (no escape in it) of a string that ends at q to o,
 * which trails r: 16 bytes at a time while 16 bytes from r stay before q,
 * so that a block never passes the output's end either (its bytes past b
 * are overwritten by what follows). Returns the output's new end. */
static inline char *run_copy(char *o, const char *r, const char *b,
                             const char *q)
{
    while (q - r >= 16) {
        memcpy(o, r, 16);
        if (b - r <= 16)
            return o + (b - r);
        o += 16;
        r += 16;
    }
    memcpy(o, r, (size_t)(b - r));
    return o + (b - r);
}

/* Decodes the escaped string s..q (q on its closing quote) into o, which
 * has room for q - s + 1 bytes: decoding never makes a string longer.
 * The runs between escapes are found and copied in blocks. false with
 * *err on a bad escape. */
static bool str_decode(char *o, const char *s, const char *q,
                       const char **err)
{
    for (const char *r = s; r < q;) {
        /* The scan refused control characters and stopped at no quote
         * before q: the run ends at a backslash or at q. */
        const char *b = pg_json_find_special(r, q);
        o = run_copy(o, r, b, q);
        r = b;
        if (r >= q)
            break;
        if (*r != '\\') {
            *o++ = *r++;
            continue;
        }
        r++;
        switch (*r) {
        case '"': *o++ = '"'; r++; break;
        case '\\': *o++ = '\\'; r++; break;
        case '/': *o++ = '/'; r++; break;
        case 'b': *o++ = '\b'; r++; break;
        case 'f': *o++ = '\f'; r++; break;
        case 'n': *o++ = '\n'; r++; break;
        case 'r': *o++ = '\r'; r++; break;
        case 't': *o++ = '\t'; r++; break;
        case 'u': {
            unsigned cp, lo;
            if (q - r < 5 || hex4(r + 1, &cp) != 0)
                goto bad;
            r += 5;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must pair with a low one. */
                if (q - r < 6 || r[0] != '\\' || r[1] != 'u' ||
                    hex4(r + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
                    goto bad;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                r += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                goto bad;
            }
            o += utf8_put(o, cp);
            break;
        }
        default:
            goto bad;
        }
        continue;
    bad:
        *err = r;
        return false;
    }
    *o = '\0';
    return true;
}

/* cJSON's valueint: the value saturated to int. */
static inline int int_saturated(double v)
{
    if (v >= 2147483647.0)
        return 2147483647;
    if (v <= -2147483648.0)
        return -2147483647 - 1;
    return (int)v;
}

/* A number with a fraction, an exponent or more than 15 digits: s..q is
 * checked up to q (its integer part), the rest here, then strtod gives the
 * value. Its end, or NULL with *err where the grammar breaks (at s on
 * OOM). */
static const char *number_slow(pg_arena_t *a, const char *s, const char *q,
                               const char *end, cJSON *it, const char **err)
{
    if (q < end && *q == '.') {
        q++;
        if (q >= end || *q < '0' || *q > '9')
            goto bad;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q >= end || *q < '0' || *q > '9')
            goto bad;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    /* strtod needs a terminated copy: the span may end at the buffer. */
    size_t n = (size_t)(q - s);
    char tmp[64];
    char *num = tmp;
    if (n >= sizeof(tmp)) {
        num = pg_arena_alloc(a, n + 1);
        if (num == NULL) {
            q = s;
            goto bad;
        }
    }
    memcpy(num, s, n);
    num[n] = '\0';
    it->valuedouble = strtod(num, NULL);
    it->valueint = int_saturated(it->valuedouble);
    return q;
bad:
    *err = q;
    return NULL;
}

/* Parses the number at p (p < end) into it: its end, or NULL with *err
 * where the grammar breaks. */
static inline const char *number_parse(pg_arena_t *a, const char *p,
                                       const char *end, cJSON *it,
                                       const char **err)
{
    const char *s = p;
    bool neg = *p == '-';
    uint64_t v = 0;
    p += neg;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        for (; p < end; p++) {
            unsigned d = (unsigned char)*p - (unsigned)'0';
            if (d > 9)
                break;
            v = v * 10 + d;
        }
    } else {
        *err = p;
        return NULL;
    }
    if ((p < end && (*p == '.' || *p == 'e' || *p == 'E')) ||
        p - s - neg > 15)
        return number_slow(a, s, p, end, it, err);
    /* An integer below 10^15 is exact as a double: no strtod. Negated as
     * a double so that -0 stays -0, as strtod gives it. */
    it->valuedouble = neg ? -(double)v : (double)v;
    it->valueint = int_saturated(it->valuedouble);
    return p;
}

/* A key as the parse loop carries it to the value's node: kn bytes at ks
 * still to be copied, or, with kn KEY_READY, the node's string as it is
 * (NULL in an array, or a key decoded from escapes). */
#define KEY_READY SIZE_MAX

/* A node of the given type with extra bytes right after it (a string
 * value's) and its key after those; NULL on OOM. Every field is set here:
 * arena memory is not zeroed. */
static inline cJSON *node_new(pg_arena_t *a, int type, const char *ks,
                              size_t kn, size_t extra, const char *end)
{
    size_t kroom = kn != KEY_READY ? str_room(kn) : 0;
    cJSON *it = pg_arena_alloc(a, sizeof(*it) + extra + kroom);
    if (it == NULL)
        return NULL;
    *it = (cJSON){.type = type, .string = (char *)ks};
    if (kn != KEY_READY) {
        it->string = (char *)(it + 1) + extra;
        str_copy(it->string, ks, kn, end);
    }
    return it;
}

/* Links it after last (NULL: none yet) under parent; returns it, the new
 * last child. The first child's prev is set when parent closes. */
static inline cJSON *link_last(cJSON *parent, cJSON *last, cJSON *it)
{
    it->prev = last;
    if (last != NULL)
        last->next = it;
    else
        parent->child = it;
    return it;
}

/* The parse loop is one function so that the position and the cursor
 * stay in registers; the labels are its states: value (one value
 * expected), member (a key expected), after (a value done: ',' or the
 * container's close) and closed. open[depth] is the container being
 * filled (open[0] a dummy that holds the root), last its last child so
 * far. cJSON's layout: siblings link both ways through next/prev and the
 * first child's prev points at the last one, which is set when the
 * container closes. */
cJSON *pg_json_parse_arena(pg_arena_t *a, pg_str_t text, size_t *err_offset)
{
    if (text.p == NULL) {
        if (err_offset != NULL)
            *err_offset = 0;
        return NULL;
    }
    const char *p = text.p, *end = text.p + text.n, *err = NULL;
    cJSON top = {.type = cJSON_Array};
    cJSON *open[JSON_MAX_DEPTH + 1];
    int depth = 0;
    cJSON *last = NULL, *it;
    char close = 0;        /* the byte that closes open[depth] */
    const char *ks = NULL; /* the key of the value being parsed */
    size_t kn = KEY_READY;

    open[0] = &top;
value:
    if (p >= end)
        goto fail;
    switch (*p) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        p = skip_ws(p, end);
        goto value;
    case '"': {
        bool escaped = false;
        const char *s = p + 1, *q = string_end(s, end, &escaped, &err);
        if (q == NULL)
            goto fail_at;
        size_t n = (size_t)(q - s);
        it = node_new(a, cJSON_String, ks, kn, str_room(n), end);
        if (it == NULL)
            goto fail;
        it->valuestring = (char *)(it + 1);
        if (!escaped)
            str_copy(it->valuestring, s, n, end);
        else if (!str_decode(it->valuestring, s, q, &err))
            goto fail_at;
        p = q + 1;
        break;
    }
    case '{':
    case '[':
        if (depth == JSON_MAX_DEPTH)
            goto fail;
        it = node_new(a, *p == '{' ? cJSON_Object : cJSON_Array, ks, kn, 0,
                      end);
        if (it == NULL)
            goto fail;
        last = link_last(open[depth], last, it);
        open[++depth] = it;
        last = NULL;
        close = (char)(*p + 2); /* '}' and ']' */
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) {
            p++;
            goto closed;
        }
        if (close == '}')
            goto member;
        ks = NULL;
        kn = KEY_READY;
        goto value;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0)
            goto fail;
        p += 4;
        it = node_new(a, cJSON_True, ks, kn, 0, end);
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0)
            goto fail;
        p += 5;
        it = node_new(a, cJSON_False, ks, kn, 0, end);
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0)
            goto fail;
        p += 4;
        it = node_new(a, cJSON_NULL, ks, kn, 0, end);
        break;
    default: {
        it = node_new(a, cJSON_Number, ks, kn, 0, end);
        if (it == NULL)
            goto fail;
        const char *q = number_parse(a, p, end, it, &err);
        if (q == NULL)
            goto fail_at;
        p = q;
        break;
    }
    }
    if (it == NULL)
        goto fail;
    last = link_last(open[depth], last, it);

after:
    if (depth == 0)
        goto done;
    if (p >= end)
        goto fail;
    if (*p == ',') {
        p++;
        if (close == '}')
            goto member;
        goto value; /* ks is NULL and kn KEY_READY in an array */
    }
    if (*p != close) {
        const char *q = skip_ws(p, end);
        if (q == p)
            goto fail;
        p = q;
        goto after;
    }
    p++;

closed:
    /* open[depth] is complete; it becomes its parent's last child. */
    it = open[depth--];
    if (last != NULL)
        it->child->prev = last;
    last = it;
    close = open[depth]->type == cJSON_Object ? '}' : ']';
    ks = NULL;
    kn = KEY_READY;
    goto after;

member:
    if (p >= end || *p != '"') {
        const char *q = skip_ws(p, end);
        if (q == p)
            goto fail;
        p = q;
        goto member;
    }
    {
        bool escaped = false;
        const char *q = string_end(p + 1, end, &escaped, &err);
        if (q == NULL)
            goto fail_at;
        ks = p + 1;
        kn = (size_t)(q - ks);
        if (escaped) {
            /* Decoded now, so that a bad escape is reported before what
             * follows the key; its bytes then live apart from the node. */
            char *k = pg_arena_alloc(a, kn + 1);
            if (k == NULL)
                goto fail;
            if (!str_decode(k, ks, q, &err))
                goto fail_at;
            ks = k;
            kn = KEY_READY;
        }
        p = q + 1;
    }
    if (p < end && *p == ':') {
        p++;
        goto value;
    }
    p = skip_ws(p, end);
    if (p >= end || *p != ':')
        goto fail;
    p++;
    goto value;

done:
    p = skip_ws(p, end);
    if (p == end)
        return top.child;
fail: /* at p: trailing garbage, an unexpected byte, OOM */
    err = p;
fail_at:
    if (err_offset != NULL)
        *err_offset = (size_t)(err - text.p);
    return NULL;
}

/* ---- spans in the original text (passthrough rewrites) ------------------ */

/* Skips one JSON value starting at p (after whitespace); returns the end,
 * or NULL when malformed. Strings honour escapes; containers nest. */
static const char *skip_value(const char *p, const char *end)
{
    int depth = 0;
    do {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        if (p >= end)
            return NULL;
        if (*p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\')
                    p++;
            }
            if (p >= end)
                return NULL;
            p++;
        } else if (*p == '{' || *p == '[') {
            depth++;
            p++;
            continue;
        } else if (*p == '}' || *p == ']') {
            if (--depth < 0)
                return NULL;
            p++;
        } else if (*p == ',' || *p == ':') {
            if (depth == 0)
                return NULL;
            p++;
            continue;
        } else {
            while (p < end && *p != ',' && *p != '}' && *p != ']' &&
                   *p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
                p++;
        }
    } while (depth > 0);
    return p;
}

int pg_json_member_span(pg_str_t text, const char *key, size_t *start,
                        size_t *end_out)
{
    const char *p = text.p, *end = text.p + text.n;
    size_t klen = strlen(key);
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    if (p >= end || *p != '{')
        return PG_EPARSE;
    p++;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' ||
                           *p == ','))
            p++;
        if (p >= end)
            return PG_EPARSE;
        if (*p == '}')
            return PG_ENOENT;
        if (*p != '"')
            return PG_EPARSE;
        const char *k = p + 1;
        const char *kend = skip_value(p, end);
        if (kend == NULL)
            return PG_EPARSE;
        bool match = (size_t)(kend - 1 - k) == klen &&
                     memcmp(k, key, klen) == 0;
        p = kend;
        while (p < end && *p != ':')
            p++;
        if (p >= end)
            return PG_EPARSE;
        p++;
        while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            p++;
        const char *v = p;
        const char *vend = skip_value(p, end);
        if (vend == NULL)
            return PG_EPARSE;
        if (match) {
            *start = (size_t)(v - text.p);
            *end_out = (size_t)(vend - text.p);
            return PG_OK;
        }
        p = vend;
    }
}
