/* time.c: clocks and unit parsing. */
#include "base/time.h"

#include <string.h>
#include <time.h>

#include <uv.h>

#include "base/str.h"

uint64_t pg_now_ns(void) { return uv_hrtime(); }

int64_t pg_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pg_format_utc_ms(int64_t unix_ms, char out[25])
{
    time_t secs = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, 21, "%Y-%m-%dT%H:%M:%S", &tm);
    int ms = (int)(unix_ms % 1000);
    out[n] = '.';
    out[n + 1] = (char)('0' + ms / 100);
    out[n + 2] = (char)('0' + ms / 10 % 10);
    out[n + 3] = (char)('0' + ms % 10);
    out[n + 4] = 'Z';
    out[n + 5] = '\0';
}

/* Splits "12.5ms" into a non-negative decimal number (as a fraction
 * numerator/denominator, so no floating point rounding) and a unit. */
static int split_number(pg_str_t s, uint64_t *whole, uint64_t *frac,
                        uint64_t *frac_div, pg_str_t *unit)
{
    size_t i = 0;
    *whole = 0;
    *frac = 0;
    *frac_div = 1;
    s = pg_str_trim(s);
    if (s.n == 0 || s.p[0] < '0' || s.p[0] > '9')
        return PG_EPARSE;
    for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        if (*whole > (UINT64_MAX - 9) / 10)
            return PG_EPARSE;
        *whole = *whole * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (i < s.n && s.p[i] == '.') {
        i++;
        size_t digits = 0;
        for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
            if (digits < 9) {
                *frac = *frac * 10 + (uint64_t)(s.p[i] - '0');
                *frac_div *= 10;
            }
            digits++;
        }
        if (digits == 0)
            return PG_EPARSE;
    }
    *unit = pg_str_trim((pg_str_t){s.p + i, s.n - i});
    return PG_OK;
}

static int scale(uint64_t whole, uint64_t frac, uint64_t frac_div,
                 uint64_t mult, uint64_t *out)
{
    if (mult != 0 && whole > UINT64_MAX / mult)
        return PG_EPARSE;
    uint64_t v = whole * mult;
    uint64_t f = frac * mult / frac_div; /* frac < frac_div <= 1e9 */
    if (v > UINT64_MAX - f)
        return PG_EPARSE;
    *out = v + f;
    return PG_OK;
}

int pg_parse_duration_ms(pg_str_t s, uint64_t *out_ms)
{
    uint64_t whole, frac, div;
    pg_str_t unit;
    if (split_number(s, &whole, &frac, &div, &unit) != PG_OK)
        return PG_EPARSE;
    static const struct {
        const char *name;
        uint64_t ms;
    } units[] = {{"ms", 1},          {"s", 1000},      {"m", 60000},
                 {"h", 3600000},     {"d", 86400000}};
    if (unit.n == 0)
        return whole == 0 && frac == 0 ? (*out_ms = 0, PG_OK) : PG_EPARSE;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (pg_str_eqc(unit, units[i].name))
            return scale(whole, frac, div, units[i].ms, out_ms);
    }
    return PG_EPARSE;
}

int pg_parse_size(pg_str_t s, uint64_t *out_bytes)
{
    uint64_t whole, frac, div;
    pg_str_t unit;
    if (split_number(s, &whole, &frac, &div, &unit) != PG_OK)
        return PG_EPARSE;
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1024ull},
                 {"MiB", 1024ull * 1024},
                 {"GiB", 1024ull * 1024 * 1024},
                 {"KB", 1000ull},
                 {"MB", 1000ull * 1000},
                 {"GB", 1000ull * 1000 * 1000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (pg_str_eqc(unit, units[i].name)) {
            if (units[i].mult == 1 && frac != 0)
                return PG_EPARSE; /* "1.5" bytes */
            return scale(whole, frac, div, units[i].mult, out_bytes);
        }
    }
    return PG_EPARSE;
}
