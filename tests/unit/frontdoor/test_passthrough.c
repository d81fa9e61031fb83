/* test_passthrough.c: pg_fd_raw_members finds what
 * cJSON_GetObjectItemCaseSensitive finds, in one walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/json.h"
#include "base/str.h"
#include "frontdoor/passthrough.h"

/* Each key of keys as cJSON's own lookup finds it in text. */
static void check_as_cjson(const char *text, const char *const *keys,
                           size_t n)
{
    cJSON *root = pg_json_parse(pg_str_c(text), NULL);
    const cJSON *out[8];
    assert_true(n <= 8);
    pg_fd_raw_members(root, keys, n, out);
    for (size_t i = 0; i < n; i++)
        assert_ptr_equal(out[i],
                         cJSON_GetObjectItemCaseSensitive(root, keys[i]));
    cJSON_Delete(root);
}

static void test_members_like_cjson(void **state)
{
    (void)state;
    static const char *const answer[] = {"choices", "usage", "id"};
    static const char *const request[] = {"messages", "stream",
                                          "stream_options"};
    static const char *const ant[] = {"messages", "max_tokens", "stream",
                                      "type", "model"};
    check_as_cjson("{\"id\":\"a\",\"object\":\"chat.completion\","
                   "\"created\":1,\"model\":\"m\",\"choices\":[],"
                   "\"usage\":{\"prompt_tokens\":3}}",
                   answer, 3);
    /* The first of a repeated name; names that share a first byte. */
    check_as_cjson("{\"usage\":null,\"id\":1,\"usage\":{},\"created\":2,"
                   "\"choice\":0,\"choicesx\":0,\"choices\":[1]}",
                   answer, 3);
    check_as_cjson("{\"model\":\"m\",\"messages\":[],\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":false}}",
                   request, 3);
    check_as_cjson("{\"model\":\"m\",\"messages\":[]}", request, 3);
    check_as_cjson("{\"max_tokens\":5,\"messages\":[],\"metadata\":{},"
                   "\"stream\":false}",
                   ant, 5);
    /* Not objects, and an empty one: nothing is found. */
    check_as_cjson("{}", answer, 3);
    check_as_cjson("[{\"id\":1},2]", answer, 3);
    check_as_cjson("\"id\"", answer, 3);
    check_as_cjson("7", answer, 3);
}

static void test_members_null(void **state)
{
    (void)state;
    static const char *const keys[] = {"id", "usage"};
    const cJSON *out[2] = {(const cJSON *)keys, (const cJSON *)keys};
    pg_fd_raw_members(NULL, keys, 2, out);
    assert_null(out[0]);
    assert_null(out[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members_like_cjson),
        cmocka_unit_test(test_members_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
