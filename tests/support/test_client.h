/* test_client.h: the client side of the integration tests. Blocking
 * libcurl requests with the whole response captured (status, headers,
 * body), a splitter for OpenAI-style SSE bodies, raw TCP helpers for tests
 * where the exact bytes matter (pipelining, malformed HTTP, timeouts), a
 * parser for raw HTTP/1.1 responses, and a thread-safe log sink that keeps
 * every line a gateway logs. Test-thread code: nothing here runs on a
 * gateway loop, and everything may block. Test code aborts (via
 * tc_xmalloc) on out of memory, which the library itself never does. */
#ifndef PG_TEST_CLIENT_H
#define PG_TEST_CLIENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

#include "polyglot/polyglot.h"

/* ---- memory --------------------------------------------------------------- */

/* malloc/realloc/strdup that abort the test on failure. */
void *tc_xmalloc(size_t n);
void *tc_xrealloc(void *p, size_t n);
char *tc_xstrdup(const char *s);
/* printf into a fresh heap string (free with free()). */
char *tc_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The whole file dir/name (a fixture), NUL-terminated, its length in *len
 * (free with free()); NULL when it cannot be opened. */
char *tc_read_file(const char *dir, const char *name, size_t *len);

/* A growable NUL-terminated byte string. */
typedef struct tc_bytes {
    char *p;
    size_t n;
    size_t cap;
} tc_bytes_t;

void tc_bytes_append(tc_bytes_t *b, const void *data, size_t n);
void tc_bytes_free(tc_bytes_t *b);

/* ---- libcurl requests ----------------------------------------------------- */

/* One response as libcurl delivered it. headers holds the raw header block
 * of the final response (status line included), body the decoded body. */
typedef struct tc_response {
    long status;
    tc_bytes_t headers;
    tc_bytes_t body;
    CURLcode curl_rc;
    char curl_err[CURL_ERROR_SIZE];
    long num_connects; /* CURLINFO_NUM_CONNECTS of this transfer */
} tc_response_t;

void tc_response_free(tc_response_t *r);

/* Returns the value of the first header named name (case-insensitive) as
 * a fresh heap string with surrounding whitespace trimmed, or NULL. */
char *tc_response_header(const tc_response_t *r, const char *name);

/* Sets up h (curl_easy_reset first) for a request to url. body may be
 * NULL (GET unless method says otherwise); extra_headers is a NULL-ended
 * list of "Name: value" strings or NULL. The response is written into
 * out, which the caller zeroes first. Use with curl_easy_perform or a
 * multi handle; the returned slist must be freed after the transfer. */
struct curl_slist *tc_prepare(CURL *h, const char *method, const char *url,
                              const char *body, const char *const *extra_headers,
                              tc_response_t *out);

/* Performs one request on h (which keeps its connection cache, so two
 * calls may reuse a connection). Returns the CURLcode; out is filled. */
CURLcode tc_request_on(CURL *h, const char *method, const char *url,
                       const char *body, const char *const *extra_headers,
                       tc_response_t *out);

/* The same on a fresh easy handle. */
CURLcode tc_request(const char *method, const char *url, const char *body,
                    const char *const *extra_headers, tc_response_t *out);

/* "http://127.0.0.1:<port><path>" in a fresh heap string. */
char *tc_url(int port, const char *path);

/* ---- SSE ------------------------------------------------------------------ */

/* The data payloads of an SSE body, in order (one per event; multi-line
 * data joined with "\n"). Comment lines and other fields are skipped. */
typedef struct tc_sse {
    char **data;
    size_t n;
    bool trailing_garbage; /* bytes after the last blank line */
} tc_sse_t;

void tc_sse_parse(const char *body, size_t len, tc_sse_t *out);
void tc_sse_free(tc_sse_t *s);

/* ---- raw TCP --------------------------------------------------------------- */

/* Connects to 127.0.0.1:port (blocking). Returns the fd or -1. */
int tc_raw_connect(int port);
/* Writes all n bytes; 0 or -1. */
int tc_raw_send(int fd, const void *data, size_t n);
/* A POST of a JSON body to path as raw bytes (heap): Host, Content-Type,
 * Content-Length, then extra (whole header lines, each ending in "\r\n",
 * or NULL) before the blank line. */
char *tc_raw_post_text(const char *path, const char *body, const char *extra);
/* Connects to 127.0.0.1:port and sends that POST. Returns the fd, or -1. */
int tc_raw_post(int port, const char *path, const char *body,
                const char *extra);
/* Reads until the peer closes, timeout_ms passes without data, or the
 * buffer holds max bytes. Sets *closed when the peer closed (EOF or
 * ECONNRESET). Appends to out. Returns the number of bytes read. */
size_t tc_raw_recv(int fd, int timeout_ms, size_t max, tc_bytes_t *out,
                   bool *closed);
/* Reads until out holds n complete HTTP responses (tc_http_parse), the
 * peer closes, or timeout_ms passes in total. Returns true when n
 * responses arrived. */
bool tc_raw_recv_responses(int fd, size_t n, int timeout_ms, tc_bytes_t *out,
                           bool *closed);

/* One HTTP/1.1 response parsed from raw bytes. Slices point into the
 * buffer given to tc_http_parse (body decoded into an owned copy when
 * chunked). */
typedef struct tc_http_msg {
    int status;
    const char *head; /* the header block, status line included */
    size_t head_len;
    char *body;       /* owned, NUL-terminated */
    size_t body_len;
    bool keep_alive;  /* no "Connection: close" */
} tc_http_msg_t;

/* Parses as many complete responses as buf holds, up to max, into msgs.
 * Returns how many; *used is the bytes they took. Knows Content-Length
 * and chunked transfer encoding. */
size_t tc_http_parse(const char *buf, size_t len, tc_http_msg_t *msgs,
                     size_t max, size_t *used);
void tc_http_msg_free(tc_http_msg_t *m);
/* A header of a parsed message as a fresh heap string, or NULL. */
char *tc_http_msg_header(const tc_http_msg_t *m, const char *name);

/* ---- log capture ----------------------------------------------------------- */

/* Collects every line a gateway logs (pg_gateway_set_log_sink). */
typedef struct tc_log {
    pthread_mutex_t mu;
    char **lines;
    size_t n;
    size_t cap;
} tc_log_t;

void tc_log_init(tc_log_t *l);
void tc_log_destroy(tc_log_t *l);
/* The sink: pass tc_log_sink and the tc_log_t as ud. Thread-safe. */
void tc_log_sink(void *ud, pg_log_level_t level, const char *line, size_t len);
/* A copy of the first line containing every one of the NULL-ended needles,
 * or NULL. Thread-safe. */
char *tc_log_find(tc_log_t *l, const char *const *needles);
/* true when any line contains needle. */
bool tc_log_contains(tc_log_t *l, const char *needle);

#endif
