/* test_yaml_tree.c: the YAML event parser -> node tree (yaml_tree.c). */
#include "cfg_fixture.h"
#include "config/yaml_tree.h"

static int parse(pg_arena_t *a, const char *yaml, diags_t *dd,
                 pg_ynode_t **root)
{
    pg_cfg_diag_t d;
    pg__cfg_diag_init(&d, on_diag, dd);
    memset(dd, 0, sizeof(*dd));
    return pg__ytree_parse(a, yaml, strlen(yaml), "t.yaml", &d, root);
}

static void test_shape_and_positions(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    diags_t d;
    pg_ynode_t *root;
    assert_int_equal(parse(&a, "a: 1\nb:\n  - x\n  - ~\n  - ''\nc: {d: e}\n",
                           &d, &root),
                     PG_OK);
    assert_int_equal(d.n, 0);
    assert_int_equal(root->kind, PG_YNODE_MAP);
    assert_int_equal(root->n, 3);
    pg_yentry_t *e = root->entries;
    assert_true(str_is(e->key, "a"));
    assert_true(str_is(e->value->scalar, "1"));
    assert_int_equal(e->value->line, 1);
    assert_int_equal(e->value->col, 4);
    e = e->next;
    assert_int_equal(e->value->kind, PG_YNODE_SEQ);
    assert_int_equal(e->value->n, 3);
    pg_ynode_t *it = e->value->items;
    assert_false(it->null);
    assert_int_equal(it->line, 3);
    assert_true(it->next->null);         /* ~ */
    assert_false(it->next->next->null);  /* '' is an empty string */
    e = e->next;
    assert_int_equal(e->value->kind, PG_YNODE_MAP);
    assert_true(str_is(e->value->entries->value->scalar, "e"));
    pg_arena_destroy(&a);
}

static void test_empty(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    diags_t d;
    pg_ynode_t *root = (pg_ynode_t *)1;
    assert_int_equal(parse(&a, "", &d, &root), PG_OK);
    assert_null(root);
    assert_int_equal(parse(&a, "# only a comment\n", &d, &root), PG_OK);
    assert_null(root);
    pg_arena_destroy(&a);
}

static void test_errors(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    diags_t d;
    pg_ynode_t *root;
    assert_int_equal(parse(&a, "a: [1, 2\n", &d, &root), PG_ECONFIG);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.path[0], "");
    assert_non_null(strstr(d.msg[0], "t.yaml:"));

    assert_int_equal(parse(&a, "? [a]\n: 1\n", &d, &root), PG_ECONFIG);
    assert_non_null(strstr(d.msg[0], "mapping keys must be plain"));

    assert_int_equal(parse(&a, "a:\n  b: 1\n  c:\n    - {b: 1, b: 2}\n", &d,
                           &root),
                     PG_OK);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.path[0], "a.c[0].b");
    /* The first value wins; the duplicate is not linked. */
    assert_int_equal(root->entries->value->entries->next->value->items->n, 1);

    char deep[300] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    assert_int_equal(parse(&a, deep, &d, &root), PG_ECONFIG);
    assert_non_null(strstr(d.msg[0], "nesting is too deep"));

    assert_int_equal(parse(&a, "a: &x 1\nb: [*x]\n", &d, &root), PG_OK);
    assert_int_equal(d.n, 1);
    assert_string_equal(d.path[0], "b[0]");
    pg_arena_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_positions),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
