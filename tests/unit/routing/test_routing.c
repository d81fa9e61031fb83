/* test_routing.c: model resolution and the reachable-model list, over
 * hand-built config snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/arena.h"
#include "base/str.h"
#include "routing/routing.h"

static const pg_str_t openai_models[] = {PG_STR("gpt-4o"),
                                         PG_STR("gpt-4o-mini")};
static const pg_str_t anth_models[] = {PG_STR("claude-x"),
                                       PG_STR("gpt-4o")};
static const pg_str_t local_models[] = {PG_STR("llama3")};

static pg_cfg_provider_t providers[3];
static pg_config_t cfg;
static pg_arena_t arena;

static const pg_cfg_rule_t rules[] = {
    {PG_RULE_MODEL_EXACT, PG_STR("claude-fast"), 1, PG_STR("claude-haiku")},
    {PG_RULE_MODEL_PREFIX, PG_STR("claude"), 1, PG_STR_NULL},
    {PG_RULE_MODEL_EXACT, PG_STR("claude-special"), 0, PG_STR_NULL},
    {PG_RULE_MODEL_PREFIX, PG_STR("gpt"), 0, PG_STR_NULL},
};

static int setup(void **state)
{
    (void)state;
    memset(providers, 0, sizeof(providers));
    providers[0].pub.name = PG_STR("openai");
    providers[0].models = openai_models;
    providers[0].nmodels = 2;
    providers[1].pub.name = PG_STR("anthropic");
    providers[1].models = anth_models;
    providers[1].nmodels = 2;
    providers[2].pub.name = PG_STR("local");
    providers[2].models = local_models;
    providers[2].nmodels = 1;
    memset(&cfg, 0, sizeof(cfg));
    cfg.providers = providers;
    cfg.nproviders = 3;
    cfg.routing.rules = rules;
    cfg.routing.nrules = 4;
    cfg.routing.default_provider = -1;
    pg_arena_init(&arena, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pg_arena_destroy(&arena);
    return 0;
}

static void expect_route(const pg_cfg_app_t *app, const char *model,
                         int provider, const char *sent)
{
    pg_route_t rt = {.provider = -7};
    assert_int_equal(pg_route_resolve(&cfg, app, pg_str_c(model), &rt), PG_OK);
    assert_int_equal(rt.provider, provider);
    if (!pg_str_eqc(rt.model, sent))
        fail_msg("%s routed as '%.*s', want '%s'", model, (int)rt.model.n,
                 rt.model.p, sent);
}

static void test_rules(void **state)
{
    (void)state;
    expect_route(NULL, "claude-fast", 1, "claude-haiku"); /* rewrite */
    expect_route(NULL, "claude-opus", 1, "claude-opus");  /* prefix */
    /* First match wins: the prefix rule shadows the later exact one. */
    expect_route(NULL, "claude-special", 1, "claude-special");
    expect_route(NULL, "gpt-4o", 0, "gpt-4o");
    pg_route_t rt;
    assert_int_equal(pg_route_resolve(&cfg, NULL, PG_STR("llama3"), &rt),
                     PG_ENOENT);
    assert_int_equal(pg_route_resolve(&cfg, NULL, PG_STR("clau"), &rt),
                     PG_ENOENT);
}

static void test_default_and_forced(void **state)
{
    (void)state;
    cfg.routing.default_provider = 2;
    expect_route(NULL, "llama3", 2, "llama3");
    expect_route(NULL, "gpt-4o", 0, "gpt-4o");
    pg_cfg_app_t app = {.provider = 2};
    /* A forced provider skips the rules and keeps the model. */
    expect_route(&app, "claude-fast", 2, "claude-fast");
    app.provider = -1;
    expect_route(&app, "claude-fast", 1, "claude-haiku");
}

static void expect_models(const pg_cfg_app_t *app, const char *const *ids,
                          const char *const *owners, size_t n)
{
    const pg_cfg_model_t *m = NULL;
    size_t got = 99;
    assert_int_equal(pg_route_models(&cfg, app, &arena, &m, &got), PG_OK);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        if (!pg_str_eqc(m[i].id, ids[i]))
            fail_msg("model %zu is '%.*s', want '%s'", i, (int)m[i].id.n,
                     m[i].id.p, ids[i]);
        assert_true(pg_str_eqc(m[i].owned_by, owners[i]));
    }
}

static void test_models(void **state)
{
    (void)state;
    /* Rule exact ids first, then reachable providers in config order,
     * deduplicated; "local" is not reachable without a default. */
    const char *ids[] = {"claude-fast", "claude-special", "gpt-4o",
                         "gpt-4o-mini", "claude-x"};
    const char *own[] = {"anthropic", "openai", "openai", "openai",
                         "anthropic"};
    expect_models(NULL, ids, own, 5);

    cfg.routing.default_provider = 2;
    const char *ids2[] = {"claude-fast", "claude-special", "gpt-4o",
                          "gpt-4o-mini", "claude-x", "llama3"};
    const char *own2[] = {"anthropic", "openai", "openai", "openai",
                          "anthropic", "local"};
    expect_models(NULL, ids2, own2, 6);

    pg_cfg_app_t app = {.provider = 1};
    const char *ids3[] = {"claude-x", "gpt-4o"};
    const char *own3[] = {"anthropic", "anthropic"};
    expect_models(&app, ids3, own3, 2);

    static const pg_cfg_model_t fixed[] = {{PG_STR("only"), PG_STR("me")}};
    app.models = fixed;
    app.nmodels = 1;
    const char *ids4[] = {"only"};
    const char *own4[] = {"me"};
    expect_models(&app, ids4, own4, 1);

    cfg.routing.nrules = 0;
    cfg.routing.default_provider = -1;
    const pg_cfg_model_t *m;
    size_t n = 5;
    assert_int_equal(pg_route_models(&cfg, NULL, &arena, &m, &n), PG_OK);
    assert_int_equal(n, 0);
}

/* Asserts the chain is exactly the (provider, model) pairs of want. */
static void expect_chain(const pg_cfg_hop_t *chain, size_t n,
                         const pg_cfg_hop_t *want, size_t nwant)
{
    for (size_t i = 0; i < n && i < nwant; i++) {
        if (chain[i].provider != want[i].provider ||
            !pg_str_eq(chain[i].model, want[i].model))
            fail_msg("hop %zu: provider %d model '%.*s', want %d '%.*s'", i,
                     chain[i].provider, (int)chain[i].model.n,
                     chain[i].model.p, want[i].provider,
                     (int)want[i].model.n, want[i].model.p);
    }
    assert_int_equal(n, nwant);
}

/* The chain of a request for model (routed by the rules), checked against
 * want. */
static void expect_chain_for(const char *model, const pg_cfg_hop_t *want,
                             size_t nwant)
{
    const pg_cfg_hop_t *chain = NULL;
    size_t n = 0;
    pg_route_t rt;
    assert_int_equal(pg_route_resolve(&cfg, NULL, pg_str_c(model), &rt),
                     PG_OK);
    assert_int_equal(pg_route_chain(&cfg, &rt, pg_str_c(model), &arena,
                                    &chain, &n),
                     PG_OK);
    expect_chain(chain, n, want, nwant);
}

static void test_chain_models(void **state)
{
    (void)state;
    /* anthropic (1) fails over to openai (0) with its own model, then to
     * local (2) with the client's, then to itself with a smaller model;
     * repeats of a provider and model already in the chain are left out. */
    static const pg_cfg_hop_t next[] = {
        {0, PG_STR("gpt-4o-mini")},
        {2, PG_STR_NULL},
        {1, PG_STR("claude-haiku")},  /* the primary's model: a repeat */
        {1, PG_STR("claude-small")},
        {0, PG_STR("gpt-4o-mini")},   /* a repeat */
        {0, PG_STR_NULL},             /* openai with the client's model */
    };
    static const pg_cfg_failover_t fo[] = {{1, next, 6}};
    cfg.routing.failover = fo;
    cfg.routing.nfailover = 1;

    /* A rule's rewrite (claude-fast -> claude-haiku) is the primary's
     * only: entries without a model get the client's. */
    const pg_cfg_hop_t want[] = {
        {1, PG_STR("claude-haiku")}, {0, PG_STR("gpt-4o-mini")},
        {2, PG_STR("claude-fast")},  {1, PG_STR("claude-small")},
        {0, PG_STR("claude-fast")},
    };
    expect_chain_for("claude-fast", want, 5);

    /* Without a rewrite the client's model is the primary's, so the
     * self-entry with that same model is a repeat too. */
    static const pg_cfg_hop_t self_next[] = {{1, PG_STR("claude-opus")},
                                             {1, PG_STR_NULL}};
    static const pg_cfg_failover_t self_fo[] = {{1, self_next, 2}};
    cfg.routing.failover = self_fo;
    const pg_cfg_hop_t want_self[] = {{1, PG_STR("claude-opus")}};
    expect_chain_for("claude-opus", want_self, 1);

    /* A provider with no failover entry: the primary alone. */
    const pg_cfg_hop_t want_one[] = {{0, PG_STR("gpt-4o")}};
    expect_chain_for("gpt-4o", want_one, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_and_forced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_models, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_models, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
