/* h1_xfer.h: a transfer's way through the native client (h1_xfer.c):
 * finding it a connection, sending its request, and ending it.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_XFER_H
#define PG_UPSTREAM_H1_XFER_H

#include "upstream/h1_deadline.h"
#include "upstream/h1_int.h"

/* x reads its response from c from now on (a fresh llhttp parser). */
void pg__h1_attach(h1_xfer_t *x, h1_conn_t *c);
/* Enters phase p now, with the deadline that goes with it. Inline: a few
 * times per transfer, and a call cost more than the body. */
static inline void pg__h1_xfer_set_phase(h1_xfer_t *x, h1_phase_t p)
{
    x->phase = p;
    x->phase_at = x->last_read = uv_now(x->h->loop);
    pg__h1_xfer_arm(x);
}
/* x's connection failed before its response began: one more try on a
 * fresh connection if it was a reused one, else x fails. */
void pg__h1_xfer_conn_lost(h1_xfer_t *x, const char *what, int err);
/* uv_tcp_connect's callback for a connection opened by pg__h1_conn_open. */
void pg__h1_on_connect(uv_connect_t *req, int status);
/* Finds a connection for x (x->host's reference passes on): a pooled one
 * if may_reuse, else a new one once the host's address is known. */
void pg__h1_xfer_connect(h1_xfer_t *x, bool may_reuse);
/* Takes x out of every list, its connection pooled (reuse) or closed. */
void pg__h1_xfer_detach(h1_xfer_t *x, bool reuse);
/* Frees x's buffers and closes its timer; the memory goes in the close
 * callback. */
void pg__h1_xfer_destroy(h1_xfer_t *x);
/* on_done once, then free. Outside llhttp and x's own callbacks only. */
void pg__h1_xfer_end(h1_xfer_t *x, pg_upstream_result_t r, const char *msg);
/* Ends x with r and a message, or, inside pg__h1_start, has its timer end
 * it, so no callback runs from inside the call. */
void pg__h1_xfer_fail(h1_xfer_t *x, pg_upstream_result_t r,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends x without a callback (canceled). */
void pg__h1_xfer_cancel_now(h1_xfer_t *x);

#endif
