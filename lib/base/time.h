/* time.h: clocks and the duration/size units of the config ("250ms",
 * "10MiB"). Pure functions; any thread. */
#ifndef PG_BASE_TIME_H
#define PG_BASE_TIME_H

#include <stdint.h>

#include "polyglot/polyglot.h"

/* Monotonic nanoseconds (uv_hrtime). */
uint64_t pg_now_ns(void);
/* Wall clock, milliseconds since the Unix epoch. */
int64_t pg_unix_ms(void);
/* Writes an RFC 3339 UTC time with milliseconds ("2026-11-27T12:00:00.123Z")
 * and a NUL; out must hold 25 bytes. */
void pg_format_utc_ms(int64_t unix_ms, char out[25]);

/* "250ms", "30s", "5m", "1h", "1.5s", "0" (no unit only for zero).
 * Returns PG_OK or PG_EPARSE. */
int pg_parse_duration_ms(pg_str_t s, uint64_t *out_ms);
/* "512", "512B", "64KiB", "10MiB", "1GiB", also "KB"/"MB"/"GB" (powers of
 * 1000). Returns PG_OK or PG_EPARSE (junk or overflow). */
int pg_parse_size(pg_str_t s, uint64_t *out_bytes);

#endif
