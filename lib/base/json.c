/* json.c: JSON string escaping and cJSON glue. */
#include "base/json.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Reject overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int pg_json_append_string(pg_buf_t *b, pg_str_t s)
{
    int rc = pg_buf_reserve(b, s.n + 2);
    if (rc != PG_OK)
        return rc;
    b->p[b->n++] = '"';
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0;
    while (i < s.n) {
        /* Copy the longest run that needs no escaping in one go. */
        size_t start = i;
        while (i < s.n && p[i] >= 0x20 && p[i] < 0x80 && p[i] != '"' &&
               p[i] != '\\')
            i++;
        if (i > start && (rc = pg_buf_append(b, p + start, i - start)))
            return rc;
        if (i >= s.n)
            break;
        unsigned char c = p[i];
        char esc[8];
        size_t elen = 2;
        esc[0] = '\\';
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
        } else if (c == '\n') {
            esc[1] = 'n';
        } else if (c == '\r') {
            esc[1] = 'r';
        } else if (c == '\t') {
            esc[1] = 't';
        } else if (c == '\b') {
            esc[1] = 'b';
        } else if (c == '\f') {
            esc[1] = 'f';
        } else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex_digits[c >> 4];
            esc[5] = hex_digits[c & 15];
            elen = 6;
        } else {
            size_t len = utf8_seq_len(p + i, s.n - i);
            if (len == 0) {
                if ((rc = pg_buf_append(b, "\xEF\xBF\xBD", 3)))
                    return rc;
                i++;
            } else {
                if ((rc = pg_buf_append(b, p + i, len)))
                    return rc;
                i += len;
            }
            continue;
        }
        if ((rc = pg_buf_append(b, esc, elen)))
            return rc;
        i++;
    }
    return pg_buf_append_char(b, '"');
}

int pg_json_append_key(pg_buf_t *b, bool comma, const char *key)
{
    /* Keys are our own ASCII literals: no escaping needed, one append. */
    size_t n = strlen(key);
    int rc = pg_buf_reserve(b, n + 4);
    if (rc != PG_OK)
        return rc;
    char *p = b->p + b->n;
    if (comma)
        *p++ = ',';
    *p++ = '"';
    memcpy(p, key, n);
    p += n;
    *p++ = '"';
    *p++ = ':';
    b->n = (size_t)(p - b->p);
    b->p[b->n] = '\0';
    return PG_OK;
}

int pg_json_append_i64(pg_buf_t *b, int64_t v)
{
    char tmp[24];
    size_t n = pg_i64_to_chars(v, tmp);
    return pg_buf_append(b, tmp, n);
}

size_t pg_i64_to_chars(int64_t v, char out[24])
{
    /* The length first, then the digits straight into place from the
     * last, two per division: cheaper than printf by an order of
     * magnitude, and than digits reversed through a scratch buffer. */
    static const char pairs[] = "00010203040506070809"
                                "10111213141516171819"
                                "20212223242526272829"
                                "30313233343536373839"
                                "40414243444546474849"
                                "50515253545556575859"
                                "60616263646566676869"
                                "70717273747576777879"
                                "80818283848586878889"
                                "90919293949596979899";
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = v < 0 ? 1 : 0;
    out[0] = '-';
    if (u < 10) { /* flags, counts, small ids: the most common case */
        out[n] = (char)('0' + u);
        return n + 1;
    }
    size_t digits = 1;
    for (uint64_t t = u; t >= 10; t /= 10)
        digits++;
    n += digits;
    char *o = out + n;
    while (u >= 100) {
        o -= 2;
        memcpy(o, pairs + 2 * (u % 100), 2);
        u /= 100;
    }
    if (u >= 10) {
        o -= 2;
        memcpy(o, pairs + 2 * u, 2);
    } else {
        *--o = (char)('0' + u);
    }
    return n;
}

int pg_json_append_double(pg_buf_t *b, double v)
{
    if (!isfinite(v))
        return pg_buf_append(b, "null", 4);
    char tmp[32];
    /* %.17g round-trips; try shorter forms first so 0.7 stays "0.7". */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return pg_buf_append_cstr(b, tmp);
}

pg_str_t pg_json_str(const cJSON *item)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return PG_STR_NULL;
    return (pg_str_t){item->valuestring, strlen(item->valuestring)};
}

pg_str_t pg_json_get_str(const cJSON *obj, const char *key)
{
    return pg_json_str(cJSON_GetObjectItemCaseSensitive(obj, key));
}

cJSON *pg_json_parse(pg_str_t text, size_t *err_offset)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text.p, text.n, &end, false);
    if (root == NULL && err_offset != NULL)
        *err_offset = end && end >= text.p ? (size_t)(end - text.p) : 0;
    return root;
}
