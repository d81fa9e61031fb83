/* test_mock.c: the mock provider driven through call.c on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "base/arena.h"
#include "base/list.h"
#include "base/str.h"
#include "provider/call.h"
#include "provider/registry.h"

#define MAX_EVENTS 256

struct rec {
    pg_event_kind_t kind[MAX_EVENTS];
    char text[MAX_EVENTS][256];
    pg_event_t ev[MAX_EVENTS]; /* scalars only: slices are not kept */
    size_t n;
    int done;
    bool done_err;
    uint64_t first_ms, last_ms;
    size_t cancel_after; /* cancel the call after this many events */
    size_t pending_at;   /* 1-based: answer PG_PENDING to that event */
    struct pg_provider_call *call;
    uv_timer_t cancel_timer;
};

struct fixture {
    uv_loop_t loop;
    pg_arena_t arena;
    pg_cfg_provider_t prov;
    struct pg_provider_call call;
    struct rec rec;
};

static int on_event(void *ud, const pg_event_t *ev)
{
    struct rec *r = ud;
    assert_true(r->n < MAX_EVENTS);
    r->kind[r->n] = ev->kind;
    snprintf(r->text[r->n], sizeof(r->text[0]), "%.*s", (int)ev->text.n,
             ev->text.p ? ev->text.p : "");
    r->ev[r->n] = *ev;
    if (ev->kind == PG_EV_BLOCK_START && ev->block == PG_PART_TOOL_CALL)
        snprintf(r->text[r->n], sizeof(r->text[0]), "%.*s %.*s",
                 (int)ev->id.n, ev->id.p, (int)ev->name.n, ev->name.p);
    if (ev->kind == PG_EV_MESSAGE_START)
        snprintf(r->text[r->n], sizeof(r->text[0]), "%.*s|%.*s",
                 (int)ev->id.n, ev->id.p, (int)ev->model.n, ev->model.p);
    r->n++;
    return r->pending_at == r->n ? PG_PENDING : PG_OK;
}

static void on_done(void *ud, const pg_provider_error_t *err)
{
    struct rec *r = ud;
    r->done++;
    r->done_err = err != NULL;
}

static int setup_with(struct fixture *f, const pg_kv_t *opts, size_t nopts)
{
    char err[256] = "";
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    pg_arena_init(&f->arena, 0);
    f->prov.pub.name = PG_STR("mock");
    f->prov.pub.type = PG_STR("mock");
    f->prov.pub.options = opts;
    f->prov.pub.noptions = nopts;
    f->prov.vt = &pg_mock_provider_vtable;
    int rc = pg_mock_provider_vtable.create(&f->prov.pub, &f->prov.instance,
                                            err, sizeof(err));
    assert_int_equal(rc, PG_OK);
    return 0;
}

static void teardown_fx(struct fixture *f)
{
    pg_mock_provider_vtable.destroy(f->prov.instance);
    pg_arena_destroy(&f->arena);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int run_call(struct fixture *f, const pg_request_t *req)
{
    f->call = (struct pg_provider_call){
        .request = req,
        .loop = &f->loop,
        .arena = &f->arena,
        .provider = &f->prov,
        .on_event = on_event,
        .on_done = on_done,
        .ud = &f->rec,
    };
    int rc = pg_call_start(&f->call);
    if (rc != PG_PENDING)
        return rc;
    /* No event may come from inside start(). */
    assert_int_equal(f->rec.n, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return rc;
}

static pg_part_t text_part(const char *s)
{
    return (pg_part_t){.kind = PG_PART_TEXT, .text = pg_str_c(s)};
}

/* Concatenated TEXT_DELTA (or TOOL_ARGS_DELTA) texts. */
static void joined(const struct rec *r, pg_event_kind_t kind, char *out,
                   size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < r->n; i++) {
        if (r->kind[i] == kind)
            strncat(out, r->text[i], cap - strlen(out) - 1);
    }
}

static size_t count_kind(const struct rec *r, pg_event_kind_t kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->kind[i] == kind;
    return n;
}

static void test_echo(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, NULL, 0);
    pg_part_t sys = text_part("be brief");
    pg_part_t u1 = text_part("first question");
    pg_part_t a1 = text_part("an answer");
    pg_part_t u2 = text_part("hello there mock world");
    pg_message_t msgs[] = {
        {.role = PG_ROLE_USER, .parts = &u1, .nparts = 1},
        {.role = PG_ROLE_ASSISTANT, .parts = &a1, .nparts = 1},
        {.role = PG_ROLE_USER, .parts = &u2, .nparts = 1},
    };
    pg_request_t req = {.model = PG_STR("mock-1"), .system = &sys,
                        .nsystem = 1, .messages = msgs, .nmessages = 3};
    assert_int_equal(run_call(&f, &req), PG_PENDING);
    struct rec *r = &f.rec;
    assert_int_equal(r->done, 1);
    assert_false(r->done_err);
    assert_int_equal(r->kind[0], PG_EV_MESSAGE_START);
    assert_true(strncmp(r->text[0], "mock-", 5) == 0);
    assert_non_null(strstr(r->text[0], "|mock-1"));
    assert_int_equal(r->ev[0].usage.input_tokens, 10);
    assert_int_equal(r->kind[1], PG_EV_BLOCK_START);
    assert_int_equal(r->ev[1].block, PG_PART_TEXT);
    char all[512];
    joined(r, PG_EV_TEXT_DELTA, all, sizeof(all));
    assert_string_equal(all, "hello there mock world");
    assert_int_equal(count_kind(r, PG_EV_TEXT_DELTA), 8);
    assert_int_equal(r->kind[r->n - 3], PG_EV_BLOCK_STOP);
    assert_int_equal(r->kind[r->n - 2], PG_EV_USAGE);
    assert_int_equal(r->ev[r->n - 2].usage.input_tokens, 10);
    assert_int_equal(r->ev[r->n - 2].usage.output_tokens, 4);
    assert_int_equal(r->kind[r->n - 1], PG_EV_MESSAGE_STOP);
    assert_int_equal(r->ev[r->n - 1].stop_reason, PG_STOP_END_TURN);
    teardown_fx(&f);
}

static void test_pause_on_pending_and_resume(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, NULL, 0);
    pg_part_t u = text_part("one two three four five six seven eight");
    pg_message_t msg = {.role = PG_ROLE_USER, .parts = &u, .nparts = 1};
    pg_request_t req = {.model = PG_STR("mock-1"), .messages = &msg,
                        .nmessages = 1};
    /* A slow client: the 4th event is taken but the gateway says wait. */
    f.rec.pending_at = 4;
    assert_int_equal(run_call(&f, &req), PG_PENDING);
    assert_int_equal(f.rec.n, 4);
    assert_int_equal(f.rec.done, 0);
    /* The client drained: the rest comes, then done. */
    pg_call_resume(&f.call);
    assert_int_equal(f.rec.n, 4); /* never from inside resume() */
    uv_run(&f.loop, UV_RUN_DEFAULT);
    assert_int_equal(f.rec.done, 1);
    char all[512];
    joined(&f.rec, PG_EV_TEXT_DELTA, all, sizeof(all));
    assert_string_equal(all, "one two three four five six seven eight");
    assert_int_equal(f.rec.kind[f.rec.n - 1], PG_EV_MESSAGE_STOP);
    teardown_fx(&f);
}

static void test_fixed_chunks3_utf8(void **state)
{
    (void)state;
    struct fixture f;
    /* 7 bytes: "h", "é" (2), "llo" + "€" (3)... boundaries must move past
     * continuation bytes. */
    pg_kv_t opts[] = {{PG_STR("reply"), PG_STR("h\xC3\xA9llo \xE2\x82\xAC!")},
                      {PG_STR("chunks"), PG_STR("3")}};
    setup_with(&f, opts, 2);
    pg_part_t u = text_part("ignored");
    pg_message_t m = {.role = PG_ROLE_USER, .parts = &u, .nparts = 1};
    pg_request_t req = {.model = PG_STR("m"), .messages = &m, .nmessages = 1};
    run_call(&f, &req);
    struct rec *r = &f.rec;
    assert_int_equal(count_kind(r, PG_EV_TEXT_DELTA), 3);
    char all[512];
    joined(r, PG_EV_TEXT_DELTA, all, sizeof(all));
    assert_string_equal(all, "h\xC3\xA9llo \xE2\x82\xAC!");
    for (size_t i = 0; i < r->n; i++) {
        if (r->kind[i] != PG_EV_TEXT_DELTA)
            continue;
        /* No piece starts with a continuation byte. */
        assert_true(((unsigned char)r->text[i][0] & 0xC0) != 0x80);
    }
    assert_int_equal(r->ev[r->n - 2].usage.output_tokens, 2);
    teardown_fx(&f);
}

static void test_short_text_fewer_chunks(void **state)
{
    (void)state;
    struct fixture f;
    pg_kv_t opts[] = {{PG_STR("reply"), PG_STR("ab")}};
    setup_with(&f, opts, 1);
    pg_request_t req = {.model = PG_STR("m")};
    run_call(&f, &req);
    assert_int_equal(count_kind(&f.rec, PG_EV_TEXT_DELTA), 2);
    assert_int_equal(f.rec.done, 1);
    teardown_fx(&f);
}

static void test_chunk_delay(void **state)
{
    (void)state;
    struct fixture f;
    pg_kv_t opts[] = {{PG_STR("reply"), PG_STR("one two three four")},
                      {PG_STR("chunks"), PG_STR("4")},
                      {PG_STR("chunk_delay"), PG_STR("20ms")}};
    setup_with(&f, opts, 3);
    pg_request_t req = {.model = PG_STR("m")};
    uv_update_time(&f.loop);
    uint64_t t0 = uv_now(&f.loop);
    run_call(&f, &req);
    uv_update_time(&f.loop);
    /* Three waits between four pieces. */
    assert_true(uv_now(&f.loop) - t0 >= 60);
    assert_int_equal(count_kind(&f.rec, PG_EV_TEXT_DELTA), 4);
    assert_int_equal(f.rec.done, 1);
    teardown_fx(&f);
}

static void test_max_tokens_cut(void **state)
{
    (void)state;
    struct fixture f;
    pg_kv_t opts[] = {{PG_STR("reply"), PG_STR("alpha beta gamma delta")}};
    setup_with(&f, opts, 1);
    pg_request_t req = {.model = PG_STR("m"), .set = PG_SET_MAX_TOKENS,
                        .max_tokens = 2};
    run_call(&f, &req);
    char all[512];
    joined(&f.rec, PG_EV_TEXT_DELTA, all, sizeof(all));
    assert_string_equal(all, "alpha beta");
    assert_int_equal(f.rec.ev[f.rec.n - 1].stop_reason, PG_STOP_MAX_TOKENS);
    assert_int_equal(f.rec.ev[f.rec.n - 2].usage.output_tokens, 2);
    teardown_fx(&f);
}

static void test_tool_trigger(void **state)
{
    (void)state;
    struct fixture f;
    setup_with(&f, NULL, 0);
    pg_tool_t tools[] = {
        {.name = PG_STR("lookup"), .parameters = PG_STR("{}")},
        {.name = PG_STR("get_weather"),
         .parameters = PG_STR(
             "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
             "\"string\"},\"days\":{\"type\":\"integer\"},\"metric\":{"
             "\"type\":\"boolean\"},\"tags\":{\"type\":\"array\"},\"opt\":{"
             "\"type\":\"string\"}},\"required\":[\"city\",\"days\","
             "\"metric\",\"tags\"]}")},
    };
    pg_part_t u = text_part("please call get_weather for Paris");
    pg_message_t m = {.role = PG_ROLE_USER, .parts = &u, .nparts = 1};
    pg_request_t req = {.model = PG_STR("m"), .messages = &m, .nmessages = 1,
                        .tools = tools, .ntools = 2};
    run_call(&f, &req);
    struct rec *r = &f.rec;
    assert_int_equal(r->kind[1], PG_EV_BLOCK_START);
    assert_int_equal(r->ev[1].block, PG_PART_TOOL_CALL);
    assert_true(strncmp(r->text[1], "call_", 5) == 0);
    assert_non_null(strstr(r->text[1], " get_weather"));
    assert_true(count_kind(r, PG_EV_TOOL_ARGS_DELTA) >= 2);
    assert_int_equal(count_kind(r, PG_EV_TEXT_DELTA), 0);
    char all[512];
    joined(r, PG_EV_TOOL_ARGS_DELTA, all, sizeof(all));
    assert_string_equal(all, "{\"city\":\"mock\",\"days\":1,\"metric\":true,"
                             "\"tags\":[]}");
    assert_int_equal(r->ev[r->n - 1].stop_reason, PG_STOP_TOOL_USE);
    teardown_fx(&f);

    /* tool_choice none wins over the name in the text. */
    setup_with(&f, NULL, 0);
    req.tool_choice = PG_TOOL_CHOICE_NONE;
    run_call(&f, &req);
    assert_int_equal(f.rec.ev[1].block, PG_PART_TEXT);
    assert_int_equal(f.rec.ev[f.rec.n - 1].stop_reason, PG_STOP_END_TURN);
    teardown_fx(&f);

    /* required: the first tool, even without a mention. */
    setup_with(&f, NULL, 0);
    pg_part_t u2 = text_part("hi");
    m.parts = &u2;
    req.tool_choice = PG_TOOL_CHOICE_REQUIRED;
    run_call(&f, &req);
    assert_non_null(strstr(f.rec.text[1], " lookup"));
    joined(&f.rec, PG_EV_TOOL_ARGS_DELTA, all, sizeof(all));
    assert_string_equal(all, "{}");
    assert_int_equal(count_kind(&f.rec, PG_EV_TOOL_ARGS_DELTA), 2);
    teardown_fx(&f);

    /* named */
    setup_with(&f, NULL, 0);
    req.tool_choice = PG_TOOL_CHOICE_NAMED;
    req.tool_choice_name = PG_STR("get_weather");
    run_call(&f, &req);
    assert_non_null(strstr(f.rec.text[1], " get_weather"));
    teardown_fx(&f);
}

static void on_cancel_timer(uv_timer_t *t)
{
    struct rec *r = pg_container_of(t, struct rec, cancel_timer);
    pg_call_cancel(r->call);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_cancel_mid_stream(void **state)
{
    (void)state;
    struct fixture f;
    pg_kv_t opts[] = {{PG_STR("reply"), PG_STR("a b c d e f g h")},
                      {PG_STR("chunk_delay"), PG_STR("30ms")}};
    setup_with(&f, opts, 2);
    pg_request_t req = {.model = PG_STR("m")};
    f.rec.call = &f.call;
    uv_timer_init(&f.loop, &f.rec.cancel_timer);
    uv_timer_start(&f.rec.cancel_timer, on_cancel_timer, 45, 0);
    run_call(&f, &req);
    /* Start, block start and two pieces at most; never done. */
    assert_int_equal(f.rec.done, 0);
    assert_true(count_kind(&f.rec, PG_EV_TEXT_DELTA) >= 1);
    assert_true(count_kind(&f.rec, PG_EV_TEXT_DELTA) < 8);
    assert_int_equal(count_kind(&f.rec, PG_EV_MESSAGE_STOP), 0);
    /* A second cancel is a no-op. */
    pg_call_cancel(&f.call);
    teardown_fx(&f);
}

static void expect_create_error(const char *key, const char *value,
                                const char *prefix)
{
    pg_kv_t opt = {pg_str_c(key), pg_str_c(value)};
    pg_provider_config_t cfg = {.options = &opt, .noptions = 1};
    char err[256] = "";
    void *self = NULL;
    assert_true(pg_mock_provider_vtable.create(&cfg, &self, err,
                                               sizeof(err)) < 0);
    assert_null(self);
    assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
}

static void test_create_errors(void **state)
{
    (void)state;
    expect_create_error("chunks", "0", "chunks:");
    expect_create_error("chunks", "4097", "chunks:");
    expect_create_error("chunks", "abc", "chunks:");
    expect_create_error("chunk_delay", "soon", "chunk_delay:");
    expect_create_error("chunk_delay", "5", "chunk_delay:");
    expect_create_error("replies", "x", "replies: unknown mock option");
    pg_kv_t opt = {PG_STR("chunks"), PG_STR("4096")};
    pg_provider_config_t cfg = {.options = &opt, .noptions = 1};
    char err[256];
    void *self = NULL;
    assert_int_equal(pg_mock_provider_vtable.create(&cfg, &self, err,
                                                    sizeof(err)), PG_OK);
    pg_mock_provider_vtable.destroy(self);
}

static void test_config_option(void **state)
{
    (void)state;
    pg_kv_t opts[] = {{PG_STR("a"), PG_STR("1")}, {PG_STR("b"), PG_STR("")}};
    pg_provider_config_t cfg = {.options = opts, .noptions = 2};
    assert_true(pg_str_eqc(pg_provider_config_option(&cfg, "a"), "1"));
    pg_str_t b = pg_provider_config_option(&cfg, "b");
    assert_non_null(b.p);
    assert_int_equal(b.n, 0);
    assert_null(pg_provider_config_option(&cfg, "c").p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_fixed_chunks3_utf8),
        cmocka_unit_test(test_pause_on_pending_and_resume),
        cmocka_unit_test(test_short_text_fewer_chunks),
        cmocka_unit_test(test_chunk_delay),
        cmocka_unit_test(test_max_tokens_cut),
        cmocka_unit_test(test_tool_trigger),
        cmocka_unit_test(test_cancel_mid_stream),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_config_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
