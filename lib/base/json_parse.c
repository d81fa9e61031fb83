/* json_parse.c: a JSON parser that builds cJSON-shaped trees in a request
 * arena. The request path parses every body; cJSON's own parser makes one
 * malloc per node and string and one free each at cJSON_Delete, which was
 * the largest single cost of a request. The nodes here are ordinary cJSON
 * structs, so every cJSON read function (GetObjectItem, IsString, Print...)
 * works on them; they are freed with the arena and must never be passed to
 * cJSON_Delete or modified with cJSON's write functions.
 *
 * Strict RFC 8259: no comments, no trailing commas, no leading zeros, no
 * NaN; nesting is bounded. Pure function; any thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

#define JSON_MAX_DEPTH 256

typedef struct parser {
    pg_arena_t *a;
    const char *p;
    const char *end;
    const char *err; /* where parsing stopped */
    int depth;
} parser_t;

static cJSON *parse_value(parser_t *ps);

static void skip_ws(parser_t *ps)
{
    /* Compact JSON has no whitespace: one test for the usual case. */
    if (ps->p < ps->end && (unsigned char)*ps->p > ' ')
        return;
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static cJSON *fail(parser_t *ps)
{
    if (ps->err == NULL)
        ps->err = ps->p;
    return NULL;
}

static cJSON *new_item(parser_t *ps, int type)
{
    cJSON *it = pg_arena_alloc(ps->a, sizeof(*it));
    if (it == NULL)
        return fail(ps);
    memset(it, 0, sizeof(*it));
    it->type = type;
    return it;
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

/* Parses a string at ps->p (on the opening quote) into a NUL-terminated
 * arena copy with escapes resolved. */
static char *parse_string(parser_t *ps)
{
    const char *s = ps->p + 1;
    const char *q = s;
    bool escaped = false;
    /* First pass: find the end and whether anything needs decoding, so
     * the common case is one memcpy. */
    for (;;) {
        q = pg_json_find_special(q, ps->end);
        if (q >= ps->end || *q == '"')
            break;
        if (*q != '\\') { /* a control character */
            ps->p = q;
            fail(ps);
            return NULL;
        }
        escaped = true;
        q += 2; /* the escaped byte is checked when decoding */
    }
    if (q >= ps->end) {
        ps->p = ps->end;
        fail(ps);
        return NULL;
    }
    size_t n = (size_t)(q - s);
    /* Decoding never makes a string longer than its escaped form. */
    char *out = pg_arena_alloc(ps->a, n + 1);
    if (out == NULL) {
        fail(ps);
        return NULL;
    }
    if (!escaped) {
        memcpy(out, s, n);
        out[n] = '\0';
        ps->p = q + 1;
        return out;
    }
    char *o = out;
    for (const char *r = s; r < q;) {
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
        ps->p = r;
        fail(ps);
        return NULL;
    }
    *o = '\0';
    ps->p = q + 1;
    return out;
}

static cJSON *parse_number(parser_t *ps)
{
    const char *s = ps->p, *q = s;
    if (q < ps->end && *q == '-')
        q++;
    if (q >= ps->end)
        goto bad;
    if (*q == '0') {
        q++;
    } else if (*q >= '1' && *q <= '9') {
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    } else {
        goto bad;
    }
    if (q < ps->end && *q == '.') {
        q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            goto bad;
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < ps->end && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < ps->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= ps->end || *q < '0' || *q > '9')
            goto bad;
        while (q < ps->end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t n = (size_t)(q - s);
    bool neg = *s == '-';
    size_t digits = n - (neg ? 1 : 0);
    if (digits <= 15 && memchr(s, '.', n) == NULL &&
        memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL) {
        /* An integer below 10^15 is exact as a double: no strtod. */
        int64_t v = 0;
        for (const char *d = s + (neg ? 1 : 0); d < q; d++)
            v = v * 10 + (*d - '0');
        cJSON *it = new_item(ps, cJSON_Number);
        if (it == NULL)
            return NULL;
        /* Negated as a double so that -0 stays -0, as strtod gives it. */
        it->valuedouble = neg ? -(double)v : (double)v;
        if (neg)
            v = -v;
        it->valueint = v >= 2147483647 ? 2147483647
                       : v <= -2147483648LL ? (-2147483647 - 1)
                                            : (int)v;
        ps->p = q;
        return it;
    }
    /* strtod needs a terminated copy: the span may end at the buffer. */
    char tmp[64];
    char *heap = NULL;
    char *num = tmp;
    if (n >= sizeof(tmp)) {
        num = heap = pg_arena_alloc(ps->a, n + 1);
        if (heap == NULL)
            return fail(ps);
    }
    memcpy(num, s, n);
    num[n] = '\0';
    cJSON *it = new_item(ps, cJSON_Number);
    if (it == NULL)
        return NULL;
    double v = strtod(num, NULL);
    it->valuedouble = v;
    /* cJSON saturates valueint the same way. */
    if (v >= 2147483647.0)
        it->valueint = 2147483647;
    else if (v <= -2147483648.0)
        it->valueint = (-2147483647 - 1);
    else
        it->valueint = (int)v;
    ps->p = q;
    return it;
bad:
    ps->p = q;
    return fail(ps);
}

static bool literal(parser_t *ps, const char *word, size_t n)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return false;
    ps->p += n;
    return true;
}

/* Links child after *last under parent (cJSON's layout: the first child's
 * prev points at the last child). */
static void link_child(cJSON *parent, cJSON **last, cJSON *child)
{
    if (*last == NULL) {
        parent->child = child;
    } else {
        (*last)->next = child;
        child->prev = *last;
    }
    *last = child;
    parent->child->prev = child;
}

static cJSON *parse_container(parser_t *ps, bool object)
{
    if (++ps->depth > JSON_MAX_DEPTH)
        return fail(ps);
    cJSON *it = new_item(ps, object ? cJSON_Object : cJSON_Array);
    cJSON *last = NULL;
    char close = object ? '}' : ']';
    if (it == NULL)
        return NULL;
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return it;
    }
    for (;;) {
        char *key = NULL;
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps);
            if ((key = parse_string(ps)) == NULL)
                return NULL;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':')
                return fail(ps);
            ps->p++;
        }
        cJSON *child = parse_value(ps);
        if (child == NULL)
            return NULL;
        child->string = key;
        link_child(it, &last, child);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            ps->depth--;
            return it;
        }
        return fail(ps);
    }
}

static cJSON *parse_value(parser_t *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return fail(ps);
    switch (*ps->p) {
    case '{':
        return parse_container(ps, true);
    case '[':
        return parse_container(ps, false);
    case '"': {
        char *s = parse_string(ps);
        if (s == NULL)
            return NULL;
        cJSON *it = new_item(ps, cJSON_String);
        if (it != NULL)
            it->valuestring = s;
        return it;
    }
    case 't':
        if (literal(ps, "true", 4))
            return new_item(ps, cJSON_True);
        return fail(ps);
    case 'f':
        if (literal(ps, "false", 5))
            return new_item(ps, cJSON_False);
        return fail(ps);
    case 'n':
        if (literal(ps, "null", 4))
            return new_item(ps, cJSON_NULL);
        return fail(ps);
    default:
        return parse_number(ps);
    }
}

cJSON *pg_json_parse_arena(pg_arena_t *a, pg_str_t text, size_t *err_offset)
{
    parser_t ps = {.a = a, .p = text.p, .end = text.p + text.n};
    if (text.p == NULL) {
        if (err_offset != NULL)
            *err_offset = 0;
        return NULL;
    }
    cJSON *root = parse_value(&ps);
    if (root != NULL) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            fail(&ps); /* trailing garbage */
            root = NULL;
        }
    }
    if (root == NULL && err_offset != NULL)
        *err_offset = (size_t)((ps.err ? ps.err : ps.p) - text.p);
    return root;
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
