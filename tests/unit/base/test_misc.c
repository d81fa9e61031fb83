/* test_misc.c: lib/base/sha256.c, alloc.c (error table) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/sha256.h"
#include "polyglot/polyglot.h"

static void test_sha256(void **state)
{
    char hex[65];
    pg_hash_key("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    pg_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_error_table(void **state)
{
    assert_string_equal(pg_err_name(PG_ENOMEM), "PG_ENOMEM");
    assert_string_equal(pg_strerror(PG_ENOMEM), "out of memory");
    assert_string_equal(pg_err_name(-999), "PG_EUNKNOWN");
    assert_string_equal(pg_version(), PG_VERSION_STRING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
