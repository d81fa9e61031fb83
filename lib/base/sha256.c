/* sha256.c: thin wrapper over mbedtls' SHA-256. */
#include "base/sha256.h"

#include <mbedtls/version.h>
#include <mbedtls/sha256.h>

#include "polyglot/polyglot.h"

void pg_sha256(const void *data, size_t len, uint8_t out[32])
{
    /* mbedtls 2.28 names it _ret; 3.x dropped the suffix. */
#if defined(MBEDTLS_VERSION_MAJOR) && MBEDTLS_VERSION_MAJOR >= 3
    mbedtls_sha256(data, len, out, 0);
#else
    mbedtls_sha256_ret(data, len, out, 0);
#endif
}

void pg_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t digest[32];
    pg_sha256(data, len, digest);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[64] = '\0';
}

void pg_hash_key(const char *key, size_t len, char out[65])
{
    pg_sha256_hex(key, len, out);
}
