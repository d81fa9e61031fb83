/* test_ids.c: lib/base/ids.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/ids.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

static void test_request_ids(void **state)
{
    char a[PG_REQUEST_ID_LEN + 1], b[PG_REQUEST_ID_LEN + 1];
    pg_request_id_new(a);
    pg_request_id_new(b);
    assert_int_equal(strlen(a), PG_REQUEST_ID_LEN);
    assert_memory_equal(a, "req_", 4);
    assert_string_not_equal(a, b);
    assert_int_equal(strspn(a + 4, alphabet), PG_REQUEST_ID_LEN - 4);
    assert_true(pg_request_id_valid(a, strlen(a)));
    assert_true(pg_request_id_valid("abc-123_x.y:z", 13));
    assert_false(pg_request_id_valid("", 0));
    assert_false(pg_request_id_valid("bad id", 6));
    assert_false(pg_request_id_valid("x\r\nInjected: 1", 15));
    char longid[200];
    memset(longid, 'a', sizeof(longid));
    assert_false(pg_request_id_valid(longid, sizeof(longid)));
}

/* Every length writes exactly n characters of the alphabet and a NUL,
 * and nothing past them. */
static void test_alnum_length_and_alphabet(void **state)
{
    for (size_t n = 0; n <= 41; n++) {
        char out[64];
        memset(out, '#', sizeof(out));
        pg_random_alnum(out, n);
        assert_int_equal(strspn(out, alphabet), n);
        assert_int_equal(out[n], '\0');
        for (size_t i = n + 1; i < sizeof(out); i++)
            assert_int_equal(out[i], '#');
    }
}

/* Each of the 62 characters turns up about as often as the others at
 * each of the ten positions that one 64-bit draw yields. 2,000 expected
 * per character per position; the bounds are ten standard
 * deviations out, and a character twice as likely as the rest (the old
 * six-bits-mod-62 mapping's 'A' and 'B') lands far outside them. */
static void test_alnum_distribution(void **state)
{
    enum { POS = 10, PER = 2000, DRAWS = 62 * PER };
    static unsigned counts[POS][128];
    memset(counts, 0, sizeof(counts));
    for (int d = 0; d < DRAWS; d++) {
        char out[POS + 1];
        pg_random_alnum(out, POS);
        for (int i = 0; i < POS; i++)
            counts[i][(unsigned char)out[i]]++;
    }
    for (int i = 0; i < POS; i++) {
        for (size_t c = 0; c < 62; c++) {
            unsigned k = counts[i][(unsigned char)alphabet[c]];
            assert_in_range(k, PER - 440, PER + 440);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_alnum_length_and_alphabet),
        cmocka_unit_test(test_alnum_distribution),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
