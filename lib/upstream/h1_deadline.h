/* h1_deadline.h: a transfer's deadlines in the native client
 * (h1_deadline.c): connect, first byte, idle and total, on the transfer's
 * one uv_timer, which also runs deferred failures and resumes.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_DEADLINE_H
#define PG_UPSTREAM_H1_DEADLINE_H

#include "upstream/h1_int.h"

/* Makes sure x's timer fires by its nearest deadline, or at once for a
 * failure or resume that is due. */
void pg__h1_xfer_arm(h1_xfer_t *x);

#endif
