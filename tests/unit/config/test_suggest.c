/* test_suggest.c: edit distance and "did you mean" (suggest.c). */
#include "cfg_fixture.h"
#include "config/suggest.h"

static size_t dist(const char *a, const char *b)
{
    return pg__cfg_edit_distance(pg_str_c(a), pg_str_c(b));
}

static void test_distance(void **state)
{
    assert_int_equal(dist("", ""), 0);
    assert_int_equal(dist("abc", ""), 3);
    assert_int_equal(dist("frontdoor", "fronddoor"), 1);
    assert_int_equal(dist("port", "prot"), 1); /* a swap is one edit */
    assert_int_equal(dist("Port", "port"), 0);
    assert_int_equal(dist("kitten", "sitting"), 3);
    char longw[80];
    memset(longw, 'a', sizeof(longw) - 1);
    longw[sizeof(longw) - 1] = '\0';
    assert_int_equal(dist(longw, "a"), SIZE_MAX);
}

static const char *best(const char *word, const char *const *cands)
{
    static char out[64];
    pg_cfg_suggest_t s;
    pg__cfg_suggest_init(&s, pg_str_c(word));
    for (; *cands != NULL; cands++)
        pg__cfg_suggest_add(&s, pg_str_c(*cands));
    if (s.best.p == NULL)
        return NULL;
    snprintf(out, sizeof(out), "%.*s", (int)s.best.n, s.best.p);
    return out;
}

static void test_suggest(void **state)
{
    static const char *const keys[] = {"name", "frontdoor", "path",
                                       "provider", "default_model", NULL};
    assert_string_equal(best("fronddoor", keys), "frontdoor");
    assert_string_equal(best("pth", keys), "path");
    assert_string_equal(best("providr", keys), "provider");
    assert_string_equal(best("default-model", keys), "default_model");
    assert_null(best("zzz", keys));
    assert_null(best("tls", keys));
    assert_null(best("x", keys));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),
        cmocka_unit_test(test_suggest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
