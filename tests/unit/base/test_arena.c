/* test_arena.c: lib/base/arena.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"

static void test_alloc_aligned_and_distinct(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 256);
    char *prev = NULL;
    for (int i = 0; i < 100; i++) {
        char *p = pg_arena_alloc(&a, (size_t)(i % 37) + 1);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1);
        assert_ptr_not_equal(p, prev);
        prev = p;
    }
    pg_arena_destroy(&a);
}

static void test_large_allocation_gets_own_chunk(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 128);
    char *small = pg_arena_alloc(&a, 16);
    char *big = pg_arena_alloc(&a, 100000);
    char *small2 = pg_arena_alloc(&a, 16);
    assert_non_null(small);
    assert_non_null(big);
    assert_non_null(small2);
    memset(big, 1, 100000);
    /* The small allocations keep using the ordinary chunk. */
    assert_true(small2 - small == 16);
    pg_arena_destroy(&a);
}

static void test_strdup_printf(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_str_t s = pg_arena_strdup(&a, PG_STR("hello"));
    assert_int_equal(s.n, 5);
    assert_string_equal(s.p, "hello");
    pg_str_t f = pg_arena_printf(&a, "%s-%d", "x", 42);
    assert_string_equal(f.p, "x-42");
    char longfmt[600];
    memset(longfmt, 'z', sizeof(longfmt) - 1);
    longfmt[sizeof(longfmt) - 1] = '\0';
    pg_str_t l = pg_arena_printf(&a, "%s", longfmt);
    assert_int_equal(l.n, sizeof(longfmt) - 1);
    assert_string_equal(l.p, longfmt);
    pg_arena_destroy(&a);
}

static int cleanup_order[4];
static int cleanup_n;
static void on_cleanup(void *ud) { cleanup_order[cleanup_n++] = (int)(intptr_t)ud; }

static void test_cleanups_run_in_reverse(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    cleanup_n = 0;
    assert_int_equal(pg_arena_on_free(&a, on_cleanup, (void *)1), PG_OK);
    assert_int_equal(pg_arena_on_free(&a, on_cleanup, (void *)2), PG_OK);
    assert_int_equal(pg_arena_on_free(&a, on_cleanup, (void *)3), PG_OK);
    pg_arena_destroy(&a);
    assert_int_equal(cleanup_n, 3);
    assert_int_equal(cleanup_order[0], 3);
    assert_int_equal(cleanup_order[2], 1);
}

static void test_calloc_overflow(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    assert_null(pg_arena_calloc(&a, SIZE_MAX / 2, 4));
    int *z = pg_arena_calloc(&a, 10, sizeof(int));
    for (int i = 0; i < 10; i++)
        assert_int_equal(z[i], 0);
    pg_arena_destroy(&a);
}

/* With the thread's cache on, a destroyed arena's default chunks serve
 * the next arena (no malloc); other sizes are freed; disable frees the
 * cache. ASan checks that nothing leaks and nothing is read after free. */
static void test_chunk_cache(void **state)
{
    (void)state;
    pg_arena_cache_enable();
    pg_arena_t a;
    pg_arena_init(&a, 0);
    char *first = pg_arena_alloc(&a, 100);
    assert_non_null(first);
    assert_non_null(pg_arena_alloc(&a, 10000)); /* a chunk of its own */
    pg_arena_destroy(&a);
    pg_arena_init(&a, 0);
    char *again = pg_arena_alloc(&a, 100);
    assert_ptr_equal(again, first);
    memset(again, 'x', 100);
    pg_arena_destroy(&a);
    /* More chunks than the cache keeps: the rest are freed. */
    pg_arena_init(&a, 0);
    for (int i = 0; i < 200; i++)
        assert_non_null(pg_arena_alloc(&a, 3000));
    pg_arena_destroy(&a);
    pg_arena_cache_disable();
    /* Off: chunks go back to malloc and nothing is kept. */
    pg_arena_init(&a, 0);
    assert_non_null(pg_arena_alloc(&a, 100));
    pg_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_aligned_and_distinct),
        cmocka_unit_test(test_large_allocation_gets_own_chunk),
        cmocka_unit_test(test_strdup_printf),
        cmocka_unit_test(test_cleanups_run_in_reverse),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_chunk_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
