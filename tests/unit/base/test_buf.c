/* test_buf.c: lib/base/buf.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"

static void test_append_and_cap(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 10);
    assert_int_equal(pg_buf_append(&b, "hello", 5), PG_OK);
    assert_int_equal(pg_buf_append_cstr(&b, "world"), PG_OK);
    assert_int_equal(b.n, 10);
    assert_string_equal(b.p, "helloworld");
    assert_int_equal(pg_buf_append_char(&b, '!'), PG_ETOOBIG);
    assert_int_equal(b.n, 10); /* unchanged on failure */
    pg_buf_free(&b);
}

static void test_printf_grows(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(pg_buf_printf(&b, "%d,", i), PG_OK);
    assert_true(b.n > 2000);
    assert_memory_equal(b.p, "0,1,2,", 6);
    assert_int_equal(b.p[b.n], '\0');
    pg_buf_free(&b);
}

static void test_printf_over_cap(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 8);
    assert_int_equal(pg_buf_printf(&b, "%s", "abc"), PG_OK);
    assert_int_equal(pg_buf_printf(&b, "%s", "0123456789"), PG_ETOOBIG);
    assert_int_equal(b.n, 3);
    assert_string_equal(b.p, "abc");
    pg_buf_free(&b);
}

static void test_consume(void **state)
{
    pg_buf_t b;
    pg_buf_init(&b, 0);
    assert_int_equal(pg_buf_append_cstr(&b, "abcdef"), PG_OK);
    pg_buf_consume(&b, 2);
    assert_string_equal(b.p, "cdef");
    pg_buf_consume(&b, 100);
    assert_int_equal(b.n, 0);
    pg_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_cap),
        cmocka_unit_test(test_printf_grows),
        cmocka_unit_test(test_printf_over_cap),
        cmocka_unit_test(test_consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
