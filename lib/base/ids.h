/* ids.h: random identifiers (request ids, completion ids). A per-thread
 * generator seeded from the OS; no locks. Any thread. */
#ifndef PG_BASE_IDS_H
#define PG_BASE_IDS_H

#include <stddef.h>
#include <stdint.h>

/* Length of a generated request id, without the NUL. */
#define PG_REQUEST_ID_LEN 24
/* The longest client-supplied X-Request-ID we keep. */
#define PG_REQUEST_ID_MAX 128

/* 64 random bits. */
uint64_t pg_random_u64(void);
/* Writes n random characters from [A-Za-z0-9] and a NUL into out[n+1]. */
void pg_random_alnum(char *out, size_t n);
/* A fresh request id ("req_" + 20 alnum) and a NUL into out. */
void pg_request_id_new(char out[PG_REQUEST_ID_LEN + 1]);
/* True when a client-supplied request id is sane to keep and echo: 1..128
 * characters of [A-Za-z0-9._:-]. */
int pg_request_id_valid(const char *p, size_t n);

#endif
