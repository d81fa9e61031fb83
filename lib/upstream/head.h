/* head.h: collects one upstream response head (status and header lines)
 * for both engines of lib/upstream: curl hands over whole lines, the native
 * HTTP/1.1 client gets names and values from llhttp in pieces that may
 * straddle socket reads. Names and values are copied back to back into one
 * bounded buffer; on_head then sees them as pg_kv_t slices.
 *
 * Threads: the loop thread of the transfer that owns it. */
#ifndef PG_UPSTREAM_HEAD_H
#define PG_UPSTREAM_HEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"

/* Heads larger than this are refused (curl's own cap is 100 KiB), and so
 * are heads with more header lines than PG_UPHEAD_MAX_LINES. */
#define PG_UPHEAD_MAX_BYTES (64 * 1024)
#define PG_UPHEAD_MAX_LINES 512

/* One header line as offsets into buf (which may move while it grows). */
struct pg_uphead_off {
    uint32_t ko, kn, vo, vn;
};

typedef struct pg_uphead {
    int status;
    pg_buf_t buf;
    struct pg_uphead_off *off; /* owned */
    size_t n, cap;
    bool in_value;             /* the last piece added was a value */
} pg_uphead_t;

void pg__uphead_init(pg_uphead_t *h);
void pg__uphead_free(pg_uphead_t *h);
/* Forgets the lines and the status (a 1xx head, a retry). */
void pg__uphead_reset(pg_uphead_t *h);

/* A piece of a header name: starts a new line after a value, else extends
 * the current name. PG_OK, PG_ETOOBIG (a limit above) or PG_ENOMEM. */
int pg__uphead_name(pg_uphead_t *h, const char *p, size_t n);
/* A piece of the current line's value. Same results. */
int pg__uphead_value(pg_uphead_t *h, const char *p, size_t n);
/* The current value is complete: trims its trailing blanks. */
void pg__uphead_value_done(pg_uphead_t *h);
/* One whole line at once (name, value already trimmed). */
int pg__uphead_add(pg_uphead_t *h, const char *k, size_t kn, const char *v,
                   size_t vn);

/* The lines as slices into h, in *out: buf when they fit in its cap
 * entries (the usual head), else pg__malloc'd; release with
 * pg__uphead_kv_free. PG_OK or PG_ENOMEM. */
int pg__uphead_kv(const pg_uphead_t *h, pg_kv_t *buf, size_t cap,
                  pg_kv_t **out);
void pg__uphead_kv_free(pg_kv_t *kv, const pg_kv_t *buf);
#define PG_UPHEAD_KV_STACK 32

#endif
