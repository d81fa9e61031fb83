/* test_decode_util.c: the helpers the decoders share (codec/decode_util).
 * A test dialect records which hook a getter called and with what, so the
 * checks (kinds, null handling, limits) are tested apart from any API's
 * wording; the wording itself is covered by each decoder's own tests. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/json.h"
#include "base/str.h"
#include "codec/decode_util.h"

/* What the last hook call was. */
struct seen {
    const char *hook; /* "missing", "type", "range" */
    char path[PG_DEC_PATH_MAX];
    const char *expected;
    const cJSON *got;
    pg_dec_kind_t kind;
    bool below;
    double bound, value;
};

static int on_missing(pg_dec_t *d, const char *path)
{
    struct seen *s = d->err;
    s->hook = "missing";
    strcpy(s->path, path);
    return PG_EPARSE;
}

static int on_type(pg_dec_t *d, const char *path, const char *expected,
                   const cJSON *got)
{
    struct seen *s = d->err;
    s->hook = "type";
    strcpy(s->path, path);
    s->expected = expected;
    s->got = got;
    return PG_EPARSE;
}

static int on_range(pg_dec_t *d, const char *path, pg_dec_kind_t kind,
                    bool below, double bound, double got)
{
    struct seen *s = d->err;
    s->hook = "range";
    strcpy(s->path, path);
    s->kind = kind;
    s->below = below;
    s->bound = bound;
    s->value = got;
    return PG_EPARSE;
}

static const pg_dec_dialect_t strict = {
    .expected = {"S", "N", "I", "B", "O", "A"},
    .missing = on_missing,
    .type = on_type,
    .range = on_range,
    .int_max_abs = 1000,
    .finite_numbers = true,
    .null_is_missing = true,
};

/* The other choices for the dialect flags. */
static const pg_dec_dialect_t lax = {
    .expected = {"S", "N", "I", "B", "O", "A"},
    .missing = on_missing,
    .type = on_type,
    .range = on_range,
    .int_max_abs = 9.2e18,
    .finite_numbers = false,
    .null_is_missing = false,
};

struct fx {
    pg_arena_t a;
    struct seen seen;
    pg_dec_t d;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    pg_arena_init(&f->a, 0);
    f->d = (pg_dec_t){&f->a, &strict, &f->seen};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    pg_arena_destroy(&f->a);
    free(f);
    return 0;
}

static cJSON *parse(struct fx *f, const char *text)
{
    cJSON *root = pg_json_parse_arena(&f->a, pg_str_c(text), NULL);
    assert_non_null(root);
    return root;
}

static void test_pathf(void **state)
{
    char p[PG_DEC_PATH_MAX];
    pg_dec_pathf(p, "%s[%zu].%s", "messages", (size_t)12, "content");
    assert_string_equal(p, "messages[12].content");
    pg_dec_pathf(p, "x[%zu]", (size_t)0);
    assert_string_equal(p, "x[0]");
    pg_dec_pathf(p, "n=%zu", (size_t)SIZE_MAX);
    assert_string_equal(p, "n=18446744073709551615");
    /* A path longer than the buffer is cut, never overrun. */
    char big[400];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    pg_dec_pathf(p, "%s.%s", big, "type");
    assert_int_equal(strlen(p), PG_DEC_PATH_MAX - 1);
    assert_int_equal(p[0], 'a');
}

static void test_member_copy_print(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"a\":null,\"b\":1,\"c\":{\"x\":[1, \"y\"]}}");
    assert_null(pg_dec_member(o, "a"));
    assert_null(pg_dec_member(o, "missing"));
    assert_non_null(pg_dec_member(o, "b"));
    pg_str_t s;
    assert_int_equal(pg_dec_print_json(&f->a, pg_dec_member(o, "c"), &s),
                     PG_OK);
    assert_true(pg_str_eqc(s, "{\"x\":[1,\"y\"]}"));
    char src[] = "abc";
    assert_int_equal(pg_dec_copy(&f->a, pg_str_c(src), &s), PG_OK);
    src[0] = 'z'; /* a copy, not a view */
    assert_true(pg_str_eqc(s, "abc"));
}

static void test_parts_push(void **state)
{
    struct fx *f = *state;
    pg_dec_parts_t ps = {0};
    for (int i = 0; i < 100; i++) {
        pg_part_t *p;
        assert_int_equal(pg_dec_parts_push(&f->a, &ps, &p), PG_OK);
        assert_int_equal(p->kind, 0);
        assert_int_equal(p->text.n, 0);
        p->kind = PG_PART_TEXT;
        p->text = pg_str_c(i % 2 ? "odd" : "even");
    }
    assert_int_equal(ps.n, 100);
    assert_true(ps.cap >= 100);
    /* Growing kept what was there. */
    assert_true(pg_str_eqc(ps.v[0].text, "even"));
    assert_true(pg_str_eqc(ps.v[99].text, "odd"));
}

static void test_unmapped(void **state)
{
    struct fx *f = *state;
    static const char *const known[] = {"model", "messages"};
    const pg_str_t *out = NULL;
    size_t n = 0;
    cJSON *all = parse(f, "{\"model\":1,\"messages\":[]}");
    assert_int_equal(pg_dec_unmapped(&f->a, all, known, 2, &out, &n), PG_OK);
    assert_null(out);
    assert_int_equal(n, 0);
    cJSON *more = parse(f, "{\"model\":1,\"logprobs\":true,\"messages\":[],"
                           "\"x_custom\":null}");
    assert_int_equal(pg_dec_unmapped(&f->a, more, known, 2, &out, &n), PG_OK);
    assert_int_equal(n, 2);
    assert_true(pg_str_eqc(out[0], "logprobs"));
    assert_true(pg_str_eqc(out[1], "x_custom"));
}

static void test_field_and_null(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"s\":\"v\",\"n\":null,\"o\":{}}");
    const cJSON *it = NULL;
    assert_int_equal(pg_dec_field(&f->d, o, "s", "p.s", PG_DEC_STRING, &it),
                     PG_OK);
    assert_true(pg_str_eqc(pg_json_str(it), "v"));
    assert_int_equal(pg_dec_field(&f->d, o, "o", "p.o", PG_DEC_STRING, &it),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    assert_string_equal(f->seen.path, "p.o");
    assert_string_equal(f->seen.expected, "S");
    assert_true(cJSON_IsObject(f->seen.got));
    assert_int_equal(pg_dec_field(&f->d, o, "zz", "p.zz", PG_DEC_OBJECT, &it),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "missing");
    assert_string_equal(f->seen.path, "p.zz");
    /* null: missing for one dialect, a wrong type for the other. */
    assert_int_equal(pg_dec_field(&f->d, o, "n", "p.n", PG_DEC_STRING, &it),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "missing");
    f->d.dialect = &lax;
    assert_int_equal(pg_dec_field(&f->d, o, "n", "p.n", PG_DEC_STRING, &it),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    assert_true(cJSON_IsNull(f->seen.got));
}

static void test_expect(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"a\":[],\"o\":{},\"n\":1.5}");
    assert_int_equal(pg_dec_expect(&f->d, pg_dec_member(o, "a"), "a",
                                   PG_DEC_ARRAY),
                     PG_OK);
    assert_int_equal(pg_dec_expect(&f->d, pg_dec_member(o, "n"), "n",
                                   PG_DEC_NUMBER),
                     PG_OK);
    f->seen.hook = NULL;
    assert_int_equal(pg_dec_expect(&f->d, pg_dec_member(o, "o"), "x.o",
                                   PG_DEC_ARRAY),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    assert_string_equal(f->seen.path, "x.o");
    assert_string_equal(f->seen.expected, "A");
    assert_true(cJSON_IsObject(f->seen.got));
}

static void test_req_string(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"id\":\"call_1\",\"n\":3}");
    pg_str_t s = PG_STR_NULL;
    assert_int_equal(pg_dec_req_string(&f->d, o, "tools[2]", "id", &s), PG_OK);
    assert_true(pg_str_eqc(s, "call_1"));
    assert_int_equal(pg_dec_req_string(&f->d, o, "tools[2]", "n", &s),
                     PG_EPARSE);
    assert_string_equal(f->seen.path, "tools[2].n");
    assert_string_equal(f->seen.hook, "type");
    assert_int_equal(pg_dec_req_string(&f->d, o, "tools[2]", "name", &s),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "missing");
    assert_string_equal(f->seen.path, "tools[2].name");
}

static void test_number(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"ok\":0.5,\"lo\":-1,\"hi\":3,\"inf\":1e999,"
                        "\"s\":\"1\"}");
    double v = -7;
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "ok"), "ok", 0, 2,
                                   &v),
                     PG_OK);
    assert_true(v == 0.5);
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "lo"), "lo", 0, 2,
                                   &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "range");
    assert_true(f->seen.below);
    assert_true(f->seen.bound == 0 && f->seen.value == -1);
    assert_int_equal(f->seen.kind, PG_DEC_NUMBER);
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "hi"), "hi", 0, 2,
                                   &v),
                     PG_EPARSE);
    assert_false(f->seen.below);
    assert_true(f->seen.bound == 2 && f->seen.value == 3);
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "s"), "s", 0, 2,
                                   &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    assert_string_equal(f->seen.expected, "N");
    /* An infinite number: a wrong type, or out of range, per dialect. */
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "inf"), "inf", 0,
                                   2, &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    f->d.dialect = &lax;
    assert_int_equal(pg_dec_number(&f->d, pg_dec_member(o, "inf"), "inf", 0,
                                   2, &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "range");
    assert_false(f->seen.below);
    assert_true(isinf(f->seen.value));
    assert_true(v == 0.5); /* never written on a refusal */
}

static void test_int_and_bool(void **state)
{
    struct fx *f = *state;
    cJSON *o = parse(f, "{\"ok\":7,\"frac\":1.5,\"big\":5000,\"neg\":-2,"
                        "\"t\":true,\"f\":false,\"one\":1}");
    int64_t v = 0;
    assert_int_equal(pg_dec_int(&f->d, pg_dec_member(o, "ok"), "ok", 1, &v),
                     PG_OK);
    assert_int_equal(v, 7);
    assert_int_equal(pg_dec_int(&f->d, pg_dec_member(o, "frac"), "frac", 1,
                                &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    assert_string_equal(f->seen.expected, "I");
    /* Past the dialect's magnitude limit: a wrong type; within it: fine. */
    assert_int_equal(pg_dec_int(&f->d, pg_dec_member(o, "big"), "big", 1, &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "type");
    f->d.dialect = &lax;
    assert_int_equal(pg_dec_int(&f->d, pg_dec_member(o, "big"), "big", 1, &v),
                     PG_OK);
    assert_int_equal(v, 5000);
    assert_int_equal(pg_dec_int(&f->d, pg_dec_member(o, "neg"), "neg", 0, &v),
                     PG_EPARSE);
    assert_string_equal(f->seen.hook, "range");
    assert_int_equal(f->seen.kind, PG_DEC_INTEGER);
    assert_true(f->seen.below && f->seen.bound == 0 && f->seen.value == -2);
    assert_int_equal(v, 5000);

    bool b = false;
    assert_int_equal(pg_dec_bool(&f->d, pg_dec_member(o, "t"), "t", &b),
                     PG_OK);
    assert_true(b);
    assert_int_equal(pg_dec_bool(&f->d, pg_dec_member(o, "f"), "f", &b),
                     PG_OK);
    assert_false(b);
    assert_int_equal(pg_dec_bool(&f->d, pg_dec_member(o, "one"), "one", &b),
                     PG_EPARSE);
    assert_string_equal(f->seen.expected, "B");
    assert_int_equal(pg_dec_string(&f->d, pg_dec_member(o, "one"), "one",
                                   &(pg_str_t){0}),
                     PG_EPARSE);
    assert_string_equal(f->seen.expected, "S");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pathf),
        cmocka_unit_test_setup_teardown(test_member_copy_print, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parts_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unmapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_field_and_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_req_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_int_and_bool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
