/* test_json_parse.c: lib/base/json_parse.c, checked against cJSON's own
 * parser: same trees for valid input, a refusal (with an offset) for
 * invalid input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/json.h"
#include "base/str.h"

static void assert_same_as_cjson(const char *text)
{
    pg_arena_t a;
    pg_arena_init(&a, 256);
    size_t off = 0;
    cJSON *ours = pg_json_parse_arena(&a, pg_str_c(text), &off);
    cJSON *theirs = cJSON_Parse(text);
    if (ours == NULL)
        fail_msg("refused valid JSON at %zu: %s", off, text);
    assert_non_null(theirs);
    char *p1 = cJSON_PrintUnformatted(ours);
    char *p2 = cJSON_PrintUnformatted(theirs);
    assert_string_equal(p1, p2);
    cJSON_free(p1);
    cJSON_free(p2);
    cJSON_Delete(theirs);
    pg_arena_destroy(&a);
}

/* text must be refused; returns where the parser said it stopped. */
static size_t refused_at(const char *text)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    size_t off = 999999;
    if (pg_json_parse_arena(&a, pg_str_c(text), &off) != NULL)
        fail_msg("accepted invalid JSON: %s", text);
    pg_arena_destroy(&a);
    return off;
}

static void test_valid_documents(void **state)
{
    const char *docs[] = {
        "{}", "[]", "0", "-0", "1.5e3", "-12.25E-2", "true", "false", "null",
        "\"\"", "\" spaced \\\" quote \\\\ slash \\/ \\b\\f\\n\\r\\t\"",
        "\"\\u00e9\\u4e2d\\ud83d\\ude00\"",
        " { \"a\" : [ 1 , 2 , { \"b\" : null } ] , \"c\" : \"d\" } ",
        ("{\"model\":\"gpt\",\"messages\":[{\"role\":\"user\",\"content\":"
         "[{\"type\":\"text\",\"text\":\"hi\"}]}],\"temperature\":0}"),
        "[[[[[[[[[[1]]]]]]]]]]",
        "{\"dup\":1,\"dup\":2}",
        "12345678901234567890",
        "\"caf\xc3\xa9\"",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        assert_same_as_cjson(docs[i]);
}

/* The word-at-a-time string scan (from a string's first byte) and the
 * integer fast path: a quote, a backslash or a control character at every
 * offset up to 40, so at each position in a word, and integers around the
 * 15-digit limit. */
static void test_fast_paths_at_every_offset(void **state)
{
    char doc[256], bad[128];
    for (int pad = 0; pad < 41; pad++) {
        char run[64];
        memset(run, 'a', (size_t)pad);
        run[pad] = '\0';
        snprintf(doc, sizeof doc, "[\"%s\",\"%s\\\"x\",\"%s\\\\y\"]", run,
                 run, run);
        assert_same_as_cjson(doc);
        snprintf(bad, sizeof bad, "\"%s\x01zzzzzzzzzz\"", run);
        assert_int_equal(refused_at(bad), 1 + (size_t)pad);
    }
    /* Bytes >= 0x80 next to the bytes that matter, in one word; an escape
     * as a word's last byte; a backslash that is the buffer's last byte. */
    const char *mixed[] = {
        "\"\xc3\xa9\xc3\xa9\xc3\xa9\\\"\xe4\xb8\xad\"",
        "\"\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\xe4\xb8\xad\"",
        "\"abcdefg\\nhijklmn\\\"\"",
        "[\"\xff\xfe\x80\x7f\"]",
    };
    for (size_t i = 0; i < sizeof(mixed) / sizeof(mixed[0]); i++)
        assert_same_as_cjson(mixed[i]);
    const char *unterminated[] = {"\"abcdefgh\\", "\"abc\\", "\"abcdefghijklmnop"};
    for (size_t i = 0; i < 3; i++)
        (void)refused_at(unterminated[i]);
    const char *nums[] = {
        "999999999999999", "-999999999999999", "1000000000000000",
        "-1000000000000000", "2147483647", "2147483648", "-2147483648",
        "-2147483649", "-0", "0", "[7,-7,123456789012345]",
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        assert_same_as_cjson(nums[i]);
    pg_arena_t a;
    pg_arena_init(&a, 0);
    cJSON *n = pg_json_parse_arena(&a, PG_STR("-0"), NULL);
    assert_non_null(n);
    assert_true(n->valuedouble == 0.0 && 1.0 / n->valuedouble < 0);
    n = pg_json_parse_arena(&a, PG_STR("-2147483649"), NULL);
    assert_int_equal(n->valueint, -2147483647 - 1);
    assert_true(n->valuedouble == -2147483649.0);
    pg_arena_destroy(&a);
}

static void test_lookup_and_types(void **state)
{
    pg_arena_t a;
    pg_arena_init(&a, 0);
    const char text[] = "{\"s\":\"x\",\"n\":3000000000,\"arr\":[1,2,3],\"o\":{}}";
    cJSON *root = pg_json_parse_arena(&a, pg_str(text, sizeof(text) - 1), NULL);
    assert_non_null(root);
    assert_true(cJSON_IsObject(root));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(root, "s")->valuestring, "x");
    cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "n");
    assert_true(cJSON_IsNumber(n));
    assert_int_equal(n->valueint, 2147483647); /* saturated like cJSON */
    assert_true(n->valuedouble == 3000000000.0);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "arr")), 3);
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(root, "o")));
    pg_arena_destroy(&a);
}

static void test_invalid_documents(void **state)
{
    const char *bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01",
        "1.", ".5", "+1", "1e", "-", "NaN", "Infinity", "tru", "nul",
        "\"unterminated", "\"bad \\x escape\"", "\"\\u12G4\"",
        "\"\\ud800\"", "\"\\udc00\"", "\"ctl \x01 char\"", "1 2", "[1] x",
        "{\"a\":1}}", "// comment\n1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_true(refused_at(bad[i]) <= strlen(bad[i]));
}

static void test_depth_limit(void **state)
{
    char deep[2000];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    pg_arena_t a;
    pg_arena_init(&a, 0);
    assert_null(pg_json_parse_arena(&a, pg_str(deep, sizeof(deep)), NULL));
    pg_arena_destroy(&a);
}

static void test_not_terminated_buffer(void **state)
{
    /* The parser must not read past text.n: the number runs to the end. */
    char *buf = malloc(3);
    memcpy(buf, "123", 3);
    pg_arena_t a;
    pg_arena_init(&a, 0);
    cJSON *r = pg_json_parse_arena(&a, pg_str(buf, 3), NULL);
    assert_non_null(r);
    assert_int_equal(r->valueint, 123);
    pg_arena_destroy(&a);
    free(buf);
}

/* ---- randomized differential against cJSON_Parse ----------------------- */

/* A seeded generator of strictly valid documents (the shapes the request
 * path sees, plus escapes, surrogate pairs, UTF-8, numbers at the fast
 * path's edges and whitespace anywhere), and mutations of them. */
typedef struct gen {
    uint64_t s;
    char *buf;
    size_t n, cap;
} gen_t;

static unsigned gen_rand(gen_t *g, unsigned below)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return (unsigned)(g->s % below);
}

static void gen_put(gen_t *g, const char *s)
{
    size_t n = strlen(s);
    if (g->n + n < g->cap) {
        memcpy(g->buf + g->n, s, n);
        g->n += n;
    }
}

static void gen_ws(gen_t *g)
{
    static const char *ws[] = {"", "", "", "", "", " ", "\n  ", "\t", "\r\n"};
    gen_put(g, ws[gen_rand(g, 9)]);
}

static void gen_string(gen_t *g)
{
    static const char *pieces[] = {
        "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9",
        "\\u4E2D", "\\ud83d\\ude00", "\\u0041", "\xc3\xa9", "\xe4\xb8\xad",
        "\xf0\x9f\x98\x80", " ", "tool_calls", "0123456789abcdef",
    };
    char one[2] = {0, 0};
    gen_put(g, "\"");
    for (unsigned i = 0, len = gen_rand(g, 4) ? gen_rand(g, 14) : gen_rand(g, 90);
         i < len; i++) {
        if (gen_rand(g, 5) == 0) {
            gen_put(g, pieces[gen_rand(g, sizeof(pieces) / sizeof(pieces[0]))]);
        } else {
            one[0] = (char)('a' + gen_rand(g, 26));
            gen_put(g, one);
        }
    }
    gen_put(g, "\"");
}

static void gen_number(gen_t *g)
{
    static const char *edge[] = {
        "0", "-0", "7", "-7", "999999999999999", "-999999999999999",
        "1000000000000000", "2147483647", "2147483648", "-2147483648",
        "-2147483649", "12345678901234567890", "0.5", "-0.0", "1e3",
        "1E+2", "2.5e-3", "-12.25E-2", "1e400", "4.9e-324", "1700000000",
    };
    char t[32];
    if (gen_rand(g, 2) == 0) {
        gen_put(g, edge[gen_rand(g, sizeof(edge) / sizeof(edge[0]))]);
        return;
    }
    snprintf(t, sizeof t, "%s%u", gen_rand(g, 3) ? "" : "-",
             gen_rand(g, 100000) >> gen_rand(g, 16));
    gen_put(g, t);
    if (gen_rand(g, 4) == 0) {
        snprintf(t, sizeof t, ".%u", gen_rand(g, 1000));
        gen_put(g, t);
    }
}

static void gen_value(gen_t *g, int depth)
{
    static const char *lits[] = {"true", "false", "null"};
    gen_ws(g);
    unsigned k = depth == 0 ? 5 + gen_rand(g, 2) : gen_rand(g, depth > 5 ? 5 : 7);
    if (k == 0) {
        gen_put(g, lits[gen_rand(g, 3)]);
    } else if (k <= 2) {
        gen_string(g);
    } else if (k <= 4) {
        gen_number(g);
    } else {
        bool object = k == 5;
        gen_put(g, object ? "{" : "[");
        for (unsigned i = 0, n = gen_rand(g, 7); i < n; i++) {
            if (i > 0)
                gen_put(g, ",");
            if (object) {
                gen_ws(g);
                gen_string(g);
                gen_ws(g);
                gen_put(g, ":");
            }
            gen_value(g, depth + 1);
        }
        gen_ws(g);
        gen_put(g, object ? "}" : "]");
    }
    gen_ws(g);
}

/* A few byte edits: structure, escapes, number bytes, control characters
 * (never NUL: cJSON stops there). */
static void gen_mutate(gen_t *g)
{
    static const char bytes[] = "{}[],:\"\\u0-+.eE tfn\x01\x1f\xc3";
    for (unsigned i = 0, edits = 1 + gen_rand(g, 3); i < edits && g->n > 0; i++) {
        size_t at = gen_rand(g, (unsigned)g->n);
        char c = bytes[gen_rand(g, sizeof(bytes) - 1)];
        switch (gen_rand(g, 4)) {
        case 0: /* delete */
            memmove(g->buf + at, g->buf + at + 1, g->n - at - 1);
            g->n--;
            break;
        case 1: /* insert */
            if (g->n + 1 < g->cap) {
                memmove(g->buf + at + 1, g->buf + at, g->n - at);
                g->buf[at] = c;
                g->n++;
            }
            break;
        case 2: /* truncate */
            g->n = at;
            break;
        default: /* replace */
            g->buf[at] = c;
            break;
        }
    }
}

static int sibling_index(const cJSON *first, const cJSON *x)
{
    int i = 0;
    for (const cJSON *c = first; c != NULL; c = c->next, i++)
        if (c == x)
            return i;
    return -1;
}

static bool same_cstr(const char *a, const char *b)
{
    return (a == NULL && b == NULL) ||
           (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Every field a cJSON reader looks at, links included (the first child's
 * prev is the last child; every other prev the previous sibling). One
 * known difference: cJSON sets valueint 1 on true, ours leaves it 0
 * (cJSON_IsTrue and the printer go by type; nothing reads it). */
static bool same_tree(const cJSON *x, const cJSON *y)
{
    if (x->type != y->type || !same_cstr(x->string, y->string) ||
        !same_cstr(x->valuestring, y->valuestring) ||
        (x->type != cJSON_True && x->valueint != y->valueint) ||
        memcmp(&x->valuedouble, &y->valuedouble, sizeof(double)) != 0)
        return false;
    const cJSON *a = x->child, *b = y->child;
    for (; a != NULL && b != NULL; a = a->next, b = b->next) {
        if (sibling_index(x->child, a->prev) != sibling_index(y->child, b->prev) ||
            !same_tree(a, b))
            return false;
    }
    return a == NULL && b == NULL;
}

/* Ours accepts a document only if cJSON does, with the same tree; it may
 * refuse more (cJSON takes leading zeros, control characters...). A
 * strictly valid document is accepted by both. */
static void check_against_cjson(const char *doc, size_t n, bool valid)
{
    char *copy = malloc(n + 1); /* exact size for ours: ASan sees over-reads */
    memcpy(copy, doc, n);
    pg_arena_t a;
    pg_arena_init(&a, 0);
    size_t off = SIZE_MAX;
    cJSON *ours = pg_json_parse_arena(&a, pg_str(copy, n), &off);
    copy[n] = '\0';
    cJSON *theirs = cJSON_ParseWithLength(copy, n);
    if (valid && ours == NULL)
        fail_msg("refused valid JSON at %zu: %.*s", off, (int)n, doc);
    if (ours == NULL) {
        assert_true(off <= n);
    } else {
        if (theirs == NULL)
            fail_msg("cJSON refuses what we accept: %.*s", (int)n, doc);
        if (ours->next != NULL || ours->prev != NULL || !same_tree(ours, theirs))
            fail_msg("trees differ: %.*s", (int)n, doc);
    }
    cJSON_Delete(theirs);
    pg_arena_destroy(&a);
    free(copy);
}

static void test_random_against_cjson(void **state)
{
    char buf[1 << 16];
    gen_t g = {.s = 0x9E3779B97F4A7C15ull, .buf = buf, .cap = sizeof buf};
    for (int i = 0; i < 20000; i++) {
        g.n = 0;
        gen_value(&g, 0);
        check_against_cjson(buf, g.n, true);
        gen_mutate(&g);
        check_against_cjson(buf, g.n, false);
    }
}

static void span_is(const char *text, const char *key, const char *want)
{
    size_t a = 0, b = 0;
    int rc = pg_json_member_span(pg_str_c(text), key, &a, &b);
    if (want == NULL) {
        assert_int_equal(rc, PG_ENOENT);
        return;
    }
    assert_int_equal(rc, PG_OK);
    assert_int_equal(b - a, strlen(want));
    assert_memory_equal(text + a, want, b - a);
}

static void test_member_span(void **state)
{
    const char doc[] =
        " {\"messages\":[{\"role\":\"user\",\"content\":\"the \\\"model\\\": x\"}],"
        "\n \"nested\": {\"model\": \"inner\"}, \"model\" : \"gpt-4o\","
        " \"n\":-1.5e3, \"t\":true, \"o\":{\"a\":[1,{\"b\":\"}\"}]}}";
    span_is(doc, "model", "\"gpt-4o\"");
    span_is(doc, "n", "-1.5e3");
    span_is(doc, "t", "true");
    span_is(doc, "o", "{\"a\":[1,{\"b\":\"}\"}]}");
    span_is(doc, "absent", NULL);
    size_t a, b;
    assert_int_equal(pg_json_member_span(PG_STR("[1]"), "x", &a, &b), PG_EPARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_documents),
        cmocka_unit_test(test_fast_paths_at_every_offset),
        cmocka_unit_test(test_lookup_and_types),
        cmocka_unit_test(test_invalid_documents),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_not_terminated_buffer),
        cmocka_unit_test(test_member_span),
        cmocka_unit_test(test_random_against_cjson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
