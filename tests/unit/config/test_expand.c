/* test_expand.c: ${VAR} expansion on single strings (expand.c). */
#include <stdlib.h>

#include "cfg_fixture.h"
#include "config/expand.h"

static int expand(pg_arena_t *a, const char *in, pg_str_t *out,
                  pg_cfg_expand_err_t *why, char *var)
{
    return pg__cfg_expand_str(a, pg_str_c(in), out, why, var);
}

static void expect(const char *in, const char *want)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_str_t out;
    pg_cfg_expand_err_t why = 0;
    char var[PG_CFG_VAR_MAX];
    int rc = expand(&a, in, &out, &why, var);
    if (rc != PG_OK)
        print_message("input: %s\n", in);
    assert_int_equal(rc, PG_OK);
    if (!pg_str_eqc(out, want))
        print_message("input: %s got: %.*s want: %s\n", in, (int)out.n,
                      out.p, want);
    assert_true(pg_str_eqc(out, want));
    pg_arena_destroy(&a);
}

static void expect_err(const char *in, pg_cfg_expand_err_t want_why,
                       const char *want_var)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    pg_str_t out;
    pg_cfg_expand_err_t why = 0;
    char var[PG_CFG_VAR_MAX] = "";
    assert_int_equal(expand(&a, in, &out, &why, var), PG_ECONFIG);
    assert_int_equal(why, want_why);
    if (want_var != NULL)
        assert_string_equal(var, want_var);
    pg_arena_destroy(&a);
}

static void test_plain(void **state)
{
    expect("", "");
    expect("no dollars", "no dollars");
    expect("$", "$");
    expect("a$b", "a$b");
    expect("cost: 5$", "cost: 5$");
    expect("$$", "$");
    expect("$${X}", "${X}");
    expect("$$$$", "$$");
}

static void test_vars(void **state)
{
    setenv("PGX_A", "alpha", 1);
    setenv("PGX_EMPTY", "", 1);
    unsetenv("PGX_NONE");
    expect("${PGX_A}", "alpha");
    expect("<${PGX_A}|${PGX_A}>", "<alpha|alpha>");
    expect("${PGX_EMPTY}", "");
    expect("${PGX_NONE:-dflt}", "dflt");
    expect("${PGX_NONE:-}", "");
    expect("${PGX_EMPTY:-used}", "used"); /* as sh: empty takes default */
    expect("${PGX_A:-unused}", "alpha");
    expect("${PGX_NONE:-a b:c-d}", "a b:c-d");
    expect("$${PGX_A}${PGX_A}", "${PGX_A}alpha");
}

static void test_errors(void **state)
{
    unsetenv("PGX_NONE");
    expect_err("${PGX_NONE}", PG_CFG_EXPAND_UNSET, "PGX_NONE");
    expect_err("x ${PGX_NONE} y", PG_CFG_EXPAND_UNSET, "PGX_NONE");
    expect_err("${", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${PGX_A", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${}", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${1A}", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${A-B}", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${A:-unterminated", PG_CFG_EXPAND_SYNTAX, NULL);
    expect_err("${A B}", PG_CFG_EXPAND_SYNTAX, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_vars),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
