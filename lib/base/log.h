/* log.h: structured log lines, JSON (default) or text, written whole to a
 * sink (stderr or the host's pg_log_cb). Formatting uses a stack buffer:
 * logging never allocates. Any thread; the logger itself is immutable once
 * the gateway starts. */
#ifndef PG_BASE_LOG_H
#define PG_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "polyglot/gateway.h"

/* The longest line written; longer values are cut (and marked "...").*/
#define PG_LOG_LINE_MAX 4096

typedef struct pg_logger {
    pg_log_level_t level;
    bool json;
    pg_log_cb sink; /* NULL: stderr */
    void *ud;
} pg_logger_t;

typedef enum pg_log_field_type {
    PG_LF_STR = 0,
    PG_LF_I64,
    PG_LF_MS /* i64 microseconds shown as milliseconds with 3 decimals */
} pg_log_field_type_t;

/* A field's key is one of our own ASCII literals, written unescaped; the
 * macros take its length from the literal (PG_LF_KEY refuses anything but
 * a literal), so a line never measures its keys. */
typedef struct pg_log_field {
    pg_str_t key;
    pg_log_field_type_t type;
    pg_str_t s;
    int64_t i;
} pg_log_field_t;

#define PG_LF_KEY(k) PG_STR("" k)
#define PG_LF_S(k, v) \
    ((pg_log_field_t){.key = PG_LF_KEY(k), .type = PG_LF_STR, .s = (v)})
#define PG_LF_I(k, v) \
    ((pg_log_field_t){.key = PG_LF_KEY(k), .type = PG_LF_I64, .i = (v)})
#define PG_LF_US_AS_MS(k, v) \
    ((pg_log_field_t){.key = PG_LF_KEY(k), .type = PG_LF_MS, .i = (v)})

static inline bool pg_log_enabled(const pg_logger_t *lg, pg_log_level_t lvl)
{
    return lg != NULL && lvl <= lg->level;
}

/* One line: msg plus fields. */
void pg_log_fields(const pg_logger_t *lg, pg_log_level_t lvl, const char *msg,
                   const pg_log_field_t *fields, size_t nfields);
/* One line whose msg is printf-formatted. */
void pg_logf(const pg_logger_t *lg, pg_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Batching for a worker thread: while enabled, lines this thread writes
 * to stderr (the default sink) collect in a per-thread buffer instead of
 * costing one write(2) each; the worker calls pg_log_batch_flush once per
 * loop iteration, before the loop blocks. Warnings and errors flush at
 * once. A host's sink is always called line by line. */
void pg_log_batch_enable(void);
void pg_log_batch_flush(void);
void pg_log_batch_disable(void);

const char *pg_log_level_name(pg_log_level_t lvl);
/* "error" | "warn" | "info" | "debug" -> level; PG_EPARSE otherwise. */
int pg_log_level_parse(pg_str_t s, pg_log_level_t *out);

#endif
