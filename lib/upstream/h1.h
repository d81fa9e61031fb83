/* h1.h: the native HTTP/1.1 client behind pg_upstream_start for http://
 * URLs (private to lib/upstream). libuv TCP and llhttp, a per-worker
 * keep-alive pool keyed by host:port, a small per-worker DNS cache (with
 * failures remembered a few seconds, lookups shared per host), and
 * the same callbacks, timeouts and results as the curl path: upstream.c
 * owns one pg_h1_t per pg_upstream_t and dispatches to it.
 *
 * Threads: the worker's loop thread, like the rest of lib/upstream. */
#ifndef PG_UPSTREAM_H1_H
#define PG_UPSTREAM_H1_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "upstream/upstream.h"

typedef struct pg_h1 pg_h1_t;

/* Both engines' transfer structs begin with a uint32_t magic, so the
 * public functions can tell whose a pg_upstream_xfer_t is. */
#define PG_H1_XFER_MAGIC 0x68317866u /* "h1xf" */

static inline bool pg__h1_owns(const pg_upstream_xfer_t *x)
{
    uint32_t m;
    memcpy(&m, (const void *)x, sizeof m);
    return m == PG_H1_XFER_MAGIC;
}

/* Creates the client on loop; transfers update *stats. PG_OK or PG_ENOMEM
 * (nothing to undo then). */
int pg__h1_new(uv_loop_t *loop, pg_upstream_stats_t *stats, pg_h1_t **out);
/* Cancels every transfer (no callbacks), closes every connection, and
 * calls done_cb(ud) from a close callback once everything is freed. */
void pg__h1_close(pg_h1_t *h, void (*done_cb)(void *ud), void *ud);
/* Pool limits: idle connections kept per worker and how long one may sit
 * idle. Defaults 256 and 60 s. */
void pg__h1_set_pool(pg_h1_t *h, unsigned max_idle, uint64_t idle_ms);
/* How long a host name whose lookup failed fails transfers at once
 * instead of being looked up again (the negative DNS cache). Default 5 s;
 * 0 looks a failed name up again for every transfer. Applies to failures
 * already remembered too. */
void pg__h1_set_dns_negative(pg_h1_t *h, uint64_t ms);
/* getaddrinfo calls started so far (the tests count lookups with it). */
uint64_t pg__h1_dns_lookups(const pg_h1_t *h);

/* The pg_upstream_start / cancel / resume contract of upstream.h. Start
 * returns PG_DECLINED (nothing done) for a URL the native client leaves
 * to curl: anything but a plain http:// URL it can parse (user:password@
 * included), or any URL while a proxy variable is set in the environment
 * (curl honours http_proxy / all_proxy; leaving it those transfers keeps
 * that behaviour). */
int pg__h1_start(pg_h1_t *h, const pg_upstream_opts_t *opts,
                 const pg_upstream_cbs_t *cbs, void *ud,
                 pg_upstream_xfer_t **out);
void pg__h1_cancel(pg_upstream_xfer_t *x);
void pg__h1_resume(pg_upstream_xfer_t *x);

#endif
