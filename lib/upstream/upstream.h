/* upstream.h: the HTTP client a worker uses to reach providers, with two
 * engines behind one contract. https:// (and http:// through a proxy, or
 * when opts.force_curl asks) goes through one libcurl multi handle per
 * worker loop, driven by one uv_timer_t and one uv_poll_t per socket
 * (curl's multi-uv pattern). Plain http:// goes through a lean native
 * HTTP/1.1 client (h1*.c: libuv TCP + llhttp, a per-worker keep-alive pool
 * in h1_pool.c and DNS caches in h1_host.c), which costs a fraction of curl's CPU per transfer. No
 * thread is spent per request. Connections are reused per worker (HTTP/1.1
 * keep-alive, HTTP/2 where the upstream offers it over TLS), TCP_NODELAY
 * is on.
 *
 * A transfer reports the response head once, then body bytes as they
 * arrive (never buffered whole), then its end, exactly once, unless it was
 * canceled. Each callback runs from the loop, never from inside
 * pg_upstream_start or pg_upstream_cancel/resume.
 *
 * Threads: everything here runs on the worker's loop thread. */
#ifndef PG_UPSTREAM_UPSTREAM_H
#define PG_UPSTREAM_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "polyglot/polyglot.h"

typedef struct pg_upstream pg_upstream_t;         /* one per worker */
typedef struct pg_upstream_xfer pg_upstream_xfer_t; /* one transfer */

typedef struct pg_upstream_opts {
    const char *method;        /* "POST", "GET" */
    const char *url;           /* NUL-terminated; borrowed until done */
    const pg_kv_t *headers;    /* request headers (name, value); borrowed */
    size_t nheaders;
    pg_str_t body;             /* borrowed until done or cancel */
    uint64_t connect_timeout_ms;    /* 0: none */
    uint64_t first_byte_timeout_ms; /* request sent -> response head */
    uint64_t idle_timeout_ms;       /* between two reads of the body */
    uint64_t total_timeout_ms;      /* whole transfer */
    uint64_t max_response_bytes;    /* body bytes beyond this: PG_ETOOBIG */
    /* https: a PEM bundle of the only CAs that may sign the upstream's
     * certificate (empty: the system's CA store). Borrowed until done or
     * cancel. The certificate is always verified. */
    pg_str_t ca_pem;
    /* http:// URLs take the native HTTP/1.1 client unless this is set
     * (providers[].http1_client: curl) or a proxy variable is set in the
     * environment (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY): then
     * libcurl serves them as it does https://. The native client offers no
     * compression (Accept-Encoding: identity). */
    bool force_curl;
} pg_upstream_opts_t;

/* Why a transfer ended. */
typedef enum pg_upstream_result {
    PG_UPSTREAM_OK = 0,          /* the whole body arrived */
    PG_UPSTREAM_CONNECT_FAILED,  /* DNS, refused, TLS handshake: nothing sent */
    PG_UPSTREAM_CONNECT_TIMEOUT,
    PG_UPSTREAM_FIRST_BYTE_TIMEOUT,
    PG_UPSTREAM_IDLE_TIMEOUT,
    PG_UPSTREAM_TOTAL_TIMEOUT,
    PG_UPSTREAM_BROKEN,          /* connection reset / truncated mid-response */
    PG_UPSTREAM_TOO_BIG,         /* max_response_bytes exceeded */
    PG_UPSTREAM_ABORTED,         /* on_data returned an error */
    PG_UPSTREAM_ERROR            /* anything else (OOM, curl internal) */
} pg_upstream_result_t;

typedef struct pg_upstream_cbs {
    /* The status line and headers (names as sent, values trimmed). Called
     * once, before any on_data. Return PG_OK, or a negative error to abort
     * the transfer (on_done follows with PG_UPSTREAM_ABORTED). */
    int (*on_head)(void *ud, int status, const pg_kv_t *headers,
                   size_t nheaders);
    /* A piece of the body (de-chunked, decompressed if the upstream
     * compressed it). Return PG_OK; PG_PENDING to pause the transfer
     * (curl_easy_pause) until pg_upstream_resume — the bytes given were
     * consumed; or a negative error to abort. */
    int (*on_data)(void *ud, pg_str_t bytes);
    /* The end. msg is a short human text for logs ("connect timeout after
     * 10000 ms", "Connection refused"), never containing request headers. */
    void (*on_done)(void *ud, pg_upstream_result_t result, const char *msg);
    /* Optional (may be NULL): after one read of the upstream socket that
     * produced on_data calls (curl hands over each HTTP chunk separately,
     * so one read can make many), so the receiver can write what it
     * gathered in one go. Called outside curl; may cancel the transfer. */
    void (*on_flush)(void *ud);
} pg_upstream_cbs_t;

/* Creates the worker's client on loop. PG_OK or PG_ENOMEM/PG_ESYS. */
int pg_upstream_new(uv_loop_t *loop, pg_upstream_t **out);
/* Cancels every transfer (no callbacks), closes the handles, and calls
 * done_cb(ud) once everything is freed. */
void pg_upstream_close(pg_upstream_t *u, void (*done_cb)(void *ud), void *ud);

/* Starts a transfer. PG_OK with *out set (callbacks follow), or a negative
 * error with no callback. opts' strings are copied where curl needs them
 * to outlive the call, except body, which the caller keeps alive. */
int pg_upstream_start(pg_upstream_t *u, const pg_upstream_opts_t *opts,
                      const pg_upstream_cbs_t *cbs, void *ud,
                      pg_upstream_xfer_t **out);
/* Stops a transfer at once and frees it: no callback after this. Its
 * connection is closed (not reused), which the upstream sees promptly. */
void pg_upstream_cancel(pg_upstream_xfer_t *x);
/* Resumes a transfer paused by on_data returning PG_PENDING. */
void pg_upstream_resume(pg_upstream_xfer_t *x);

/* Limits of the native HTTP/1.1 client's keep-alive pool: idle
 * connections kept per worker (the oldest is closed past it; 0 keeps
 * none) and how long one may stay idle. Defaults: 256 and 60 s. */
void pg_upstream_set_pool(pg_upstream_t *u, unsigned max_idle,
                          uint64_t idle_timeout_ms);

/* Counters for tests and /metrics (both engines). */
typedef struct pg_upstream_stats {
    uint64_t transfers_started;
    uint64_t transfers_active;
    uint64_t connections_opened; /* new TCP connections (connect attempts) */
} pg_upstream_stats_t;
void pg_upstream_get_stats(const pg_upstream_t *u, pg_upstream_stats_t *out);

const char *pg_upstream_result_name(pg_upstream_result_t r);

#endif
