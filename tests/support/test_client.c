/* test_client.c: libcurl requests, SSE splitting, raw sockets, raw HTTP
 * response parsing and log capture for the integration tests (see
 * test_client.h). Called from test threads only. */
#include "test_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- memory ------------------------------------------------------------- */

void *tc_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "test_client: out of memory\n");
        abort();
    }
    return p;
}

void *tc_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "test_client: out of memory\n");
        abort();
    }
    return q;
}

char *tc_xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = tc_xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *tc_xasprintf(const char *fmt, ...)
{
    va_list ap;
    char small[256];
    /* Measure with a real buffer: some gcc builds warn on a NULL one. */
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = tc_xmalloc((size_t)n + 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
        return p;
    }
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

char *tc_read_file(const char *dir, const char *name, size_t *len)
{
    char *path = tc_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    free(path);
    if (f == NULL)
        return NULL;
    tc_bytes_t b = {0};
    char chunk[16384];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        tc_bytes_append(&b, chunk, got);
    if (ferror(f)) {
        fprintf(stderr, "test_client: cannot read %s/%s\n", dir, name);
        abort();
    }
    fclose(f);
    if (b.p == NULL)
        tc_bytes_append(&b, "", 0);
    *len = b.n;
    return b.p;
}

void tc_bytes_append(tc_bytes_t *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        b->p = tc_xrealloc(b->p, cap);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void tc_bytes_free(tc_bytes_t *b)
{
    free(b->p);
    *b = (tc_bytes_t){0};
}

/* ---- libcurl -------------------------------------------------------------- */

void tc_response_free(tc_response_t *r)
{
    tc_bytes_free(&r->headers);
    tc_bytes_free(&r->body);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    tc_response_t *r = ud;
    tc_bytes_append(&r->body, data, size * nmemb);
    return size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    tc_response_t *r = ud;
    size_t n = size * nmemb;
    /* A new status line starts a new header block (after 100-continue or
     * a redirect): keep only the last one. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        r->headers.n = 0;
    tc_bytes_append(&r->headers, data, n);
    return n;
}

static char *find_header(const char *block, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = block;
    const char *end = block + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && isspace((unsigned char)ve[-1]))
                ve--;
            char *out = tc_xmalloc((size_t)(ve - v) + 1);
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
            return out;
        }
        p = eol + 1;
    }
    return NULL;
}

char *tc_response_header(const tc_response_t *r, const char *name)
{
    if (r->headers.p == NULL)
        return NULL;
    return find_header(r->headers.p, r->headers.n, name);
}

struct curl_slist *tc_prepare(CURL *h, const char *method, const char *url,
                              const char *body, const char *const *extra_headers,
                              tc_response_t *out)
{
    struct curl_slist *hdrs = NULL;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, out->curl_err);
    if (body != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (method != NULL && strcmp(method, "GET") != 0 &&
        strcmp(method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    /* Large bodies must go out at once, not after a 100-continue wait. */
    hdrs = curl_slist_append(hdrs, "Expect:");
    for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++)
        hdrs = curl_slist_append(hdrs, extra_headers[i]);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    return hdrs;
}

CURLcode tc_request_on(CURL *h, const char *method, const char *url,
                       const char *body, const char *const *extra_headers,
                       tc_response_t *out)
{
    struct curl_slist *hdrs = tc_prepare(h, method, url, body, extra_headers,
                                         out);
    out->curl_rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &out->num_connects);
    curl_slist_free_all(hdrs);
    return out->curl_rc;
}

CURLcode tc_request(const char *method, const char *url, const char *body,
                    const char *const *extra_headers, tc_response_t *out)
{
    CURL *h = curl_easy_init();
    if (h == NULL)
        abort();
    CURLcode rc = tc_request_on(h, method, url, body, extra_headers, out);
    curl_easy_cleanup(h);
    return rc;
}

char *tc_url(int port, const char *path)
{
    return tc_xasprintf("http://127.0.0.1:%d%s", port, path);
}

/* ---- SSE ------------------------------------------------------------------ */

void tc_sse_parse(const char *body, size_t len, tc_sse_t *out)
{
    *out = (tc_sse_t){0};
    tc_bytes_t data = {0};
    bool have_data = false;
    const char *p = body;
    const char *end = body + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            out->trailing_garbage = true;
            break;
        }
        size_t n = (size_t)(eol - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0) {
            /* A blank line dispatches the event. */
            if (have_data) {
                out->data = tc_xrealloc(out->data,
                                        (out->n + 1) * sizeof(char *));
                out->data[out->n++] = tc_xstrdup(data.p ? data.p : "");
            }
            data.n = 0;
            if (data.p)
                data.p[0] = '\0';
            have_data = false;
        } else if (n >= 5 && memcmp(p, "data:", 5) == 0) {
            const char *v = p + 5;
            size_t vn = n - 5;
            if (vn > 0 && *v == ' ') {
                v++;
                vn--;
            }
            if (have_data)
                tc_bytes_append(&data, "\n", 1);
            tc_bytes_append(&data, v, vn);
            have_data = true;
        }
        p = eol + 1;
    }
    if (have_data)
        out->trailing_garbage = true;
    tc_bytes_free(&data);
}

void tc_sse_free(tc_sse_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->data);
    *s = (tc_sse_t){0};
}

/* ---- raw TCP ---------------------------------------------------------------- */

int tc_raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int tc_raw_send(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

char *tc_raw_post_text(const char *path, const char *body, const char *extra)
{
    return tc_xasprintf("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n%s\r\n%s",
                        path, strlen(body), extra ? extra : "", body);
}

int tc_raw_post(int port, const char *path, const char *body,
                const char *extra)
{
    int fd = tc_raw_connect(port);
    if (fd < 0)
        return -1;
    char *req = tc_raw_post_text(path, body, extra);
    int rc = tc_raw_send(fd, req, strlen(req));
    free(req);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t tc_raw_recv(int fd, int timeout_ms, size_t max, tc_bytes_t *out,
                   bool *closed)
{
    size_t got = 0;
    char buf[16384];
    *closed = false;
    while (got < max) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        size_t want = max - got < sizeof(buf) ? max - got : sizeof(buf);
        ssize_t r = recv(fd, buf, want, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            *closed = true;
            break;
        }
        tc_bytes_append(out, buf, (size_t)r);
        got += (size_t)r;
    }
    return got;
}

bool tc_raw_recv_responses(int fd, size_t n, int timeout_ms, tc_bytes_t *out,
                           bool *closed)
{
    long long deadline = now_ms() + timeout_ms;
    *closed = false;
    for (;;) {
        tc_http_msg_t msgs[16];
        size_t used = 0;
        size_t max = n < 16 ? n : 16;
        size_t got = out->p ? tc_http_parse(out->p, out->n, msgs, max, &used)
                            : 0;
        for (size_t i = 0; i < got; i++)
            tc_http_msg_free(&msgs[i]);
        if (got >= n)
            return true;
        long long left = deadline - now_ms();
        if (left <= 0 || *closed)
            return false;
        char buf[16384];
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            return false;
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            *closed = true;
        else
            tc_bytes_append(out, buf, (size_t)r);
    }
}

/* ---- raw HTTP parsing --------------------------------------------------------- */

static const char *find_crlfcrlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
            p[i + 3] == '\n')
            return p + i;
    }
    return NULL;
}

/* Decodes a chunked body starting at p; returns bytes consumed or 0 when
 * incomplete. */
static size_t parse_chunked(const char *p, size_t n, tc_bytes_t *body)
{
    size_t off = 0;
    for (;;) {
        const char *eol = NULL;
        for (size_t i = off; i + 1 < n; i++) {
            if (p[i] == '\r' && p[i + 1] == '\n') {
                eol = p + i;
                break;
            }
        }
        if (eol == NULL)
            return 0;
        char *endp = NULL;
        unsigned long sz = strtoul(p + off, &endp, 16);
        if (endp == p + off)
            return 0;
        off = (size_t)(eol - p) + 2;
        if (sz == 0) {
            /* Trailers end with an empty line. */
            for (;;) {
                if (off + 2 > n)
                    return 0;
                if (p[off] == '\r' && p[off + 1] == '\n')
                    return off + 2;
                const char *t = NULL;
                for (size_t i = off; i + 1 < n; i++) {
                    if (p[i] == '\r' && p[i + 1] == '\n') {
                        t = p + i;
                        break;
                    }
                }
                if (t == NULL)
                    return 0;
                off = (size_t)(t - p) + 2;
            }
        }
        if (off + sz + 2 > n)
            return 0;
        tc_bytes_append(body, p + off, sz);
        off += sz + 2;
    }
}

size_t tc_http_parse(const char *buf, size_t len, tc_http_msg_t *msgs,
                     size_t max, size_t *used)
{
    size_t count = 0;
    size_t off = 0;
    *used = 0;
    while (count < max && off < len) {
        const char *p = buf + off;
        size_t n = len - off;
        const char *hend = find_crlfcrlf(p, n);
        if (hend == NULL || n < 12 || memcmp(p, "HTTP/1.", 7) != 0)
            break;
        tc_http_msg_t m = {0};
        m.status = atoi(p + 9);
        m.head = p;
        m.head_len = (size_t)(hend - p) + 2;
        size_t body_off = (size_t)(hend - p) + 4;
        char *cl = find_header(p, m.head_len, "Content-Length");
        char *te = find_header(p, m.head_len, "Transfer-Encoding");
        char *conn = find_header(p, m.head_len, "Connection");
        m.keep_alive = !(conn && strcasecmp(conn, "close") == 0);
        tc_bytes_t body = {0};
        size_t total;
        bool ok = true;
        if (te != NULL && strcasecmp(te, "chunked") == 0) {
            size_t c = parse_chunked(p + body_off, n - body_off, &body);
            ok = c > 0;
            total = body_off + c;
        } else {
            size_t bl = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
            ok = body_off + bl <= n;
            if (ok)
                tc_bytes_append(&body, p + body_off, bl);
            total = body_off + bl;
        }
        free(cl);
        free(te);
        free(conn);
        if (!ok) {
            tc_bytes_free(&body);
            break;
        }
        if (body.p == NULL)
            tc_bytes_append(&body, "", 0);
        m.body = body.p;
        m.body_len = body.n;
        msgs[count++] = m;
        off += total;
        *used = off;
    }
    return count;
}

void tc_http_msg_free(tc_http_msg_t *m)
{
    free(m->body);
    m->body = NULL;
}

char *tc_http_msg_header(const tc_http_msg_t *m, const char *name)
{
    return find_header(m->head, m->head_len, name);
}

/* ---- log capture -------------------------------------------------------------- */

void tc_log_init(tc_log_t *l)
{
    *l = (tc_log_t){0};
    pthread_mutex_init(&l->mu, NULL);
}

void tc_log_destroy(tc_log_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->lines[i]);
    free(l->lines);
    pthread_mutex_destroy(&l->mu);
}

void tc_log_sink(void *ud, pg_log_level_t level, const char *line, size_t len)
{
    tc_log_t *l = ud;
    (void)level;
    char *copy = tc_xmalloc(len + 1);
    memcpy(copy, line, len);
    copy[len] = '\0';
    if (getenv("TC_LOG_ECHO") != NULL)
        fprintf(stderr, "[gw] %s\n", copy);
    pthread_mutex_lock(&l->mu);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->lines = tc_xrealloc(l->lines, l->cap * sizeof(char *));
    }
    l->lines[l->n++] = copy;
    pthread_mutex_unlock(&l->mu);
}

char *tc_log_find(tc_log_t *l, const char *const *needles)
{
    char *found = NULL;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && found == NULL; i++) {
        bool all = true;
        for (size_t k = 0; needles[k] != NULL && all; k++)
            all = strstr(l->lines[i], needles[k]) != NULL;
        if (all)
            found = tc_xstrdup(l->lines[i]);
    }
    pthread_mutex_unlock(&l->mu);
    return found;
}

bool tc_log_contains(tc_log_t *l, const char *needle)
{
    const char *const needles[] = {needle, NULL};
    char *line = tc_log_find(l, needles);
    free(line);
    return line != NULL;
}
