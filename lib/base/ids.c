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

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* The next base-62 digit of the fraction r / 2^64: the high half of
 * r * 62, while r keeps the low half. */
static inline unsigned next_digit(uint64_t *r)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 m = (unsigned __int128)*r * 62;
    *r = (uint64_t)m;
    return (unsigned)(m >> 64);
#else
    /* The same two halves from 32-bit pieces (each product < 2^38). */
    uint64_t hi = ((*r >> 32) * 62 + (((*r & 0xFFFFFFFFu) * 62) >> 32)) >> 32;
    *r *= 62;
    return (unsigned)hi;
#endif
}

/* Characters come ten at a time from one 64-bit draw r, as the base-62
 * digits of floor(r * 62^10 / 2^64): one multiply per character, no
 * division and no rejection. The k-th character of a draw is uniform to
 * within 62 / 2^(65-k) (below 2e-15, relative); a group of ten comes from
 * 21 or 22 of the 2^64 draws, which keeps 5.95419 of the ideal 5.95420
 * bits per character. (Taking six bits mod 62, as this once did, made 'A'
 * and 'B' twice as likely as the others: 5.9375 bits.) */
void pg_random_alnum(char *out, size_t n)
{
    size_t i = 0;
    for (; n - i >= 10; i += 10) {
        uint64_t r = pg_random_u64();
#pragma GCC unroll 10
        for (int k = 0; k < 10; k++)
            out[i + k] = alphabet[next_digit(&r)];
    }
    if (i < n) {
        uint64_t r = pg_random_u64();
        while (i < n)
            out[i++] = alphabet[next_digit(&r)];
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
