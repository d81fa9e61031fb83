/* ids.c: xoshiro256** per thread, seeded with uv_random (getrandom). */
#include "base/ids.h"

#include <string.h>
#include <time.h>

#include <uv.h>

static _Thread_local uint64_t rng_state[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static void rng_seed(void)
{
    if (uv_random(NULL, NULL, rng_state, sizeof(rng_state), 0, NULL) != 0) {
        /* No entropy source: fall back to time and address mixing. Ids
         * stay unique enough for logs; they are never secrets. */
        uint64_t t = uv_hrtime() ^ (uint64_t)(uintptr_t)&rng_state;
        for (int i = 0; i < 4; i++) {
            t += 0x9E3779B97F4A7C15ull;
            uint64_t z = t;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            rng_state[i] = z ^ (z >> 31);
        }
    }
    rng_seeded = 1;
}

uint64_t pg_random_u64(void)
{
    if (!rng_seeded)
        rng_seed();
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void pg_random_alnum(char *out, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t r = 0;
    int left = 0;
    for (size_t i = 0; i < n; i++) {
        if (left == 0) {
            r = pg_random_u64();
            left = 10; /* 6 bits each; 62 symbols, slight bias is fine */
        }
        out[i] = alphabet[(r & 63) % 62];
        r >>= 6;
        left--;
    }
    out[n] = '\0';
}

void pg_request_id_new(char out[PG_REQUEST_ID_LEN + 1])
{
    memcpy(out, "req_", 4);
    pg_random_alnum(out + 4, PG_REQUEST_ID_LEN - 4);
}

int pg_request_id_valid(const char *p, size_t n)
{
    if (n == 0 || n > PG_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
                 c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}
