/* sha256.h: SHA-256 (mbedtls) for API-key hashes. Any thread. */
#ifndef PG_BASE_SHA256_H
#define PG_BASE_SHA256_H

#include <stddef.h>
#include <stdint.h>

void pg_sha256(const void *data, size_t len, uint8_t out[32]);
/* Lowercase hex of the SHA-256 and a NUL. */
void pg_sha256_hex(const void *data, size_t len, char out[65]);

#endif
