/* h1_req.c: what the native HTTP/1.1 client sends (see h1_req.h): the
 * http:// URL taken apart (and a few remembered), and the request line
 * and headers built in one buffer. The loop thread of the transfer calls
 * them. */
#include "upstream/h1_req.h"

#include <string.h>
#include <strings.h>

#include "base/alloc.h"

bool pg__h1_parse_url(const char *url, pg_h1_url_t *u)
{
    const char *p, *a, *e;

    if (strncasecmp(url, "http://", 7) != 0)
        return false;
    a = url + 7;
    for (e = a; *e && *e != '/' && *e != '?' && *e != '#'; e++)
        if (*e == '@') /* credentials: curl turns them into Basic auth */
            return false;
    u->port = 80;
    if (*a == '[') {
        for (p = a; p < e && *p != ']'; p++)
            ;
        if (p == e)
            return false;
        u->name = (pg_str_t){a + 1, (size_t)(p - a - 1)};
        p++;
    } else {
        for (p = a; p < e && *p != ':'; p++)
            ;
        u->name = (pg_str_t){a, (size_t)(p - a)};
    }
    u->host = (pg_str_t){a, (size_t)(p - a)};
    if (p < e) {
        unsigned port = 0;
        if (*p != ':' || p + 1 == e || e - p > 6)
            return false;
        for (p++; p < e; p++) {
            if (*p < '0' || *p > '9')
                return false;
            port = port * 10 + (unsigned)(*p - '0');
        }
        if (port == 0 || port > 65535)
            return false;
        u->port = port;
    }
    if (u->name.n == 0 || u->name.n > 253) /* DNS names are shorter */
        return false;
    for (p = e; *p && *p != '#'; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false; /* curl refuses these too */
    for (p = a; p < e; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    for (p = e; *p && *p != '#'; p++)
        ;
    u->target = (pg_str_t){e, (size_t)(p - e)};
    return true;
}

bool pg__h1_parse_url_cached(pg_h1_url_cache_t *cache, const char *url,
                             pg_h1_url_t *u)
{
    size_t n = strlen(url);
    struct pg_h1_url_cached *e;

    if (n == 0 || n >= PG_H1_URL_CACHE_LEN)
        return pg__h1_parse_url(url, u);
    for (unsigned i = 0; i < PG_H1_URL_CACHE_N; i++) {
        e = &cache->e[i];
        if (e->n == n && memcmp(e->url, url, n) == 0) {
            *u = e->u;
            return e->ok;
        }
    }
    /* Parsed from the copy, so the cached slices point into the cache. */
    e = &cache->e[cache->next];
    cache->next = (cache->next + 1) % PG_H1_URL_CACHE_N;
    memcpy(e->url, url, n + 1);
    e->n = n;
    e->ok = pg__h1_parse_url(e->url, &e->u);
    *u = e->u;
    return e->ok;
}

/* Decimal digits of v into p (room for 20); returns their count. */
static size_t put_u64(char *p, uint64_t v)
{
    char t[20];
    size_t n = 0;

    do
        t[n++] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    for (size_t i = 0; i < n; i++)
        p[i] = t[n - 1 - i];
    return n;
}

static bool has_header(const pg_upstream_opts_t *o, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < o->nheaders; i++)
        if (o->headers[i].key.n == n &&
            strncasecmp(o->headers[i].key.p, name, n) == 0)
            return true;
    return false;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

/* The request line and headers in one buffer. What curl sends is matched
 * (Host with the port unless 80, Accept: * / * unless given, Content-Length
 * for POST or a body, curl's default form Content-Type for a body without
 * one; no Expect: 100-continue) except that no compression is offered:
 * Accept-Encoding: identity, and the caller's own value wins. */
int pg__h1_build_request(const pg_h1_url_t *u, const pg_upstream_opts_t *o,
                         char **out, size_t *outn, bool *is_head)
{
    const char *m = o->method ? o->method : (o->body.n ? "POST" : "GET");
    bool post = strcmp(m, "POST") == 0;
    bool cl = o->body.n > 0 || post;
    bool ctype = cl && !has_header(o, "Content-Type");
    bool accept = !has_header(o, "Accept");
    bool aenc = !has_header(o, "Accept-Encoding");
    bool host = !has_header(o, "Host");
    char num[24];
    size_t numn = put_u64(num, o->body.n);
    size_t n = strlen(m) + 1 + u->target.n + 1 + 11;

    if (host)
        n += 6 + u->host.n + 6 + 2;
    n += accept ? 13 : 0;
    n += aenc ? 27 : 0;
    for (size_t i = 0; i < o->nheaders; i++)
        n += o->headers[i].key.n + 2 + o->headers[i].value.n + 2;
    n += cl ? 16 + numn + 2 : 0;
    n += ctype ? 49 : 0;
    n += 2;
    char *b = pg__malloc(n), *p = b;
    if (b == NULL)
        return PG_ENOMEM;
    p = put(p, m, strlen(m));
    *p++ = ' ';
    if (u->target.n == 0 || u->target.p[0] != '/')
        *p++ = '/';
    p = put(p, u->target.p, u->target.n);
    p = PUTS(p, " HTTP/1.1\r\n");
    if (host) {
        p = PUTS(p, "Host: ");
        p = put(p, u->host.p, u->host.n);
        if (u->port != 80) {
            *p++ = ':';
            p += put_u64(p, u->port);
        }
        p = PUTS(p, "\r\n");
    }
    if (accept)
        p = PUTS(p, "Accept: */*\r\n");
    if (aenc)
        p = PUTS(p, "Accept-Encoding: identity\r\n");
    for (size_t i = 0; i < o->nheaders; i++) {
        const pg_kv_t *hd = &o->headers[i];
        p = put(p, hd->key.p, hd->key.n);
        /* An empty value goes out as "Name:", as curl's "Name;" does. */
        p = hd->value.n ? PUTS(p, ": ") : PUTS(p, ":");
        p = put(p, hd->value.p, hd->value.n);
        p = PUTS(p, "\r\n");
    }
    if (cl) {
        p = PUTS(p, "Content-Length: ");
        p = put(p, num, numn);
        p = PUTS(p, "\r\n");
    }
    if (ctype)
        p = PUTS(p, "Content-Type: application/x-www-form-urlencoded\r\n");
    p = PUTS(p, "\r\n");
    *out = b;
    *outn = (size_t)(p - b);
    *is_head = strcmp(m, "HEAD") == 0;
    return PG_OK;
}
