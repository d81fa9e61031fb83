/* h1_deadline.c: a transfer's deadlines in the native client (see
 * h1_deadline.h). The timer is armed lazily: only for a deadline nearer
 * than the one it is set for, and it works out on firing what is really
 * due, as each uv_timer_start or uv_timer_stop costs a remove and an
 * insert in libuv's timer heap. The same timer runs a failure found inside
 * pg__h1_start (fail_due) and a pg__h1_resume (resume_due), so neither
 * calls back from inside the call.
 *
 * Threads: the worker's loop thread. */
#include "upstream/h1_deadline.h"

#include <inttypes.h>

#include "upstream/h1_resp.h"
#include "upstream/h1_xfer.h"

static void on_xfer_timer(uv_timer_t *t);

static uint64_t phase_deadline(const h1_xfer_t *x)
{
    switch (x->phase) {
    case PH_CONNECT:
        return x->connect_ms ? x->phase_at + x->connect_ms : 0;
    case PH_HEAD:
        return x->first_byte_ms ? x->phase_at + x->first_byte_ms : 0;
    case PH_BODY:
        return x->idle_ms ? x->last_read + x->idle_ms : 0;
    case PH_PAUSED:
        return 0;
    }
    return 0;
}

static void xfer_timer_start(h1_xfer_t *x, uint64_t now, uint64_t ms)
{
    x->timer_armed = true;
    x->timer_at = now + ms;
    uv_timer_start(&x->timer, on_xfer_timer, ms, 0);
}

/* Makes sure the timer fires by the nearest deadline. Lazily: a later
 * deadline than the one it is armed for (the first byte's after the
 * connect's, the idle one after both) or none at all leaves it alone, as
 * each uv_timer_start or uv_timer_stop is a remove and an insert in
 * libuv's timer heap; xfer_timeout finds what is really due when it
 * fires, and re-arms for the rest of a deadline that is not. Body reads
 * only move last_read, the same way. */
void pg__h1_xfer_arm(h1_xfer_t *x)
{
    uint64_t d = phase_deadline(x), now = uv_now(x->h->loop);
    uint64_t tot = x->total_ms ? x->t0 + x->total_ms : 0;

    if (x->fail_due || x->resume_due) {
        /* In libuv 1.44 a 0 ms timer re-armed inside its own callback runs
         * again in the same phase: 1 ms there cannot spin. */
        xfer_timer_start(x, now, x->in_timer ? 1 : 0);
        return;
    }
    if (tot && (d == 0 || tot < d))
        d = tot;
    if (d != 0 && (!x->timer_armed || d < x->timer_at))
        xfer_timer_start(x, now, d > now ? d - now : 0);
}

static void xfer_timeout(h1_xfer_t *x, uint64_t now)
{
    if (x->total_ms && now >= x->t0 + x->total_ms) {
        if (x->phase == PH_CONNECT)
            pg__h1_xfer_fail(x, PG_UPSTREAM_CONNECT_TIMEOUT,
                             "connect timeout after %" PRIu64 " ms",
                             x->total_ms);
        else
            pg__h1_xfer_fail(x, PG_UPSTREAM_TOTAL_TIMEOUT,
                             "operation timed out after %" PRIu64 " ms",
                             x->total_ms);
        return;
    }
    uint64_t d = phase_deadline(x);
    if (d == 0 || now < d) {
        pg__h1_xfer_arm(x);
        return;
    }
    switch (x->phase) {
    case PH_CONNECT:
        pg__h1_xfer_fail(x, PG_UPSTREAM_CONNECT_TIMEOUT,
                         "connect timeout after %" PRIu64 " ms",
                         x->connect_ms);
        break;
    case PH_HEAD:
        pg__h1_xfer_fail(x, PG_UPSTREAM_FIRST_BYTE_TIMEOUT,
                         "no response head after %" PRIu64 " ms",
                         x->first_byte_ms);
        break;
    case PH_BODY:
        pg__h1_xfer_fail(x, PG_UPSTREAM_IDLE_TIMEOUT,
                         "no body bytes for %" PRIu64 " ms", x->idle_ms);
        break;
    case PH_PAUSED:
        break;
    }
}

static void on_xfer_timer(uv_timer_t *t)
{
    h1_xfer_t *x = pg_container_of(t, h1_xfer_t, timer);

    x->timer_armed = false;
    if (x->canceled || x->done)
        return;
    x->in_timer = true;
    if (x->fail_due) {
        x->fail_due = false;
        pg__h1_xfer_end(x, x->forced, x->errbuf);
        return; /* x is gone */
    }
    if (x->resume_due && x->paused) {
        x->resume_due = false;
        pg__h1_do_resume(x);
    } else {
        x->resume_due = false;
        xfer_timeout(x, uv_now(x->h->loop));
    }
    /* Ended or canceled: freed in the timer's close callback, later. */
    if (!x->done && !x->canceled)
        x->in_timer = false;
}
