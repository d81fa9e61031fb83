/* test_build.c: pg_config_build end to end: values, defaults, units, env
 * expansion, every validation path, all-problems reporting, refcounts. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cfg_fixture.h"

static const char *full_yaml =
    "server:\n"
    "  host: 127.0.0.1\n"
    "  port: 9090\n"
    "  workers: 3\n"
    "  max_body_bytes: 2MiB\n"
    "  max_header_bytes: 16KiB\n"
    "  header_timeout: 1500ms\n"
    "  idle_timeout: 2m\n"
    "  shutdown_timeout: 1h\n"
    "  sse_keepalive: 1.5s\n"
    "  busy_poll: 2ms\n"
    "  max_connections: 500\n"
    "providers:\n"
    "  - name: main\n"
    "    type: fake\n"
    "    api_key: sk-123\n"
    "    base_url: https://example.test/v1\n"
    "    headers: {X-Org: org-1, X-Num: 7}\n"
    "    timeouts: {connect: 1s, first_byte: 2s, idle: 3s, total: 4m}\n"
    "    max_retries: 5\n"
    "    supports_responses: true\n"
    "    models: [m-1, m-2]\n"
    "    options: {region: eu, depth: 3}\n"
    "  - name: mock.local_1\n"
    "    type: mock\n"
    "    mock: {reply: echo, chunks: 4, chunk_delay: 5ms}\n"
    "routing:\n"
    "  rules:\n"
    "    - {model_exact: gpt-4o, provider: main}\n"
    "    - {model_prefix: mock, provider: mock.local_1, model: mock-x}\n"
    "  default_provider: main\n"
    "  failover:\n"
    "    main: [mock.local_1]\n"
    "apps:\n"
    "  - name: api\n"
    "    frontdoor: openai\n"
    "    path: /v1api\n"
    "    provider: mock.local_1\n"
    "    default_model: gpt-4o-mini\n"
    "    models:\n"
    "      - {id: a, owned_by: acme}\n"
    "      - {id: b}\n"
    "  - name: root\n"
    "    path: /\n"
    "logging: {level: debug, format: text}\n"
    "admin: {enabled: false}\n"
    "storage: {type: none}\n"
    "events: {type: direct}\n"
    "policy: {type: none}\n"
    "tenants: []\n";

static void test_full_config(void **state)
{
    built_t b;
    fake_creates = fake_destroys = 0;
    build_ok(&b, full_yaml);
    const pg_config_t *c = b.cfg;
    assert_string_equal(c->origin, "test.yaml");
    assert_string_equal(c->server.host, "127.0.0.1");
    assert_int_equal(c->server.port, 9090);
    assert_int_equal(c->server.workers, 3);
    assert_int_equal(c->server.max_body_bytes, 2 * 1024 * 1024);
    assert_int_equal(c->server.max_header_bytes, 16 * 1024);
    assert_int_equal(c->server.header_timeout_ms, 1500);
    assert_int_equal(c->server.idle_timeout_ms, 120000);
    assert_int_equal(c->server.shutdown_timeout_ms, 3600000);
    assert_int_equal(c->server.sse_keepalive_ms, 1500);
    assert_int_equal(c->server.busy_poll_ms, 2);
    assert_int_equal(c->server.max_connections, 500);

    assert_int_equal(c->nproviders, 2);
    const pg_cfg_provider_t *p = &c->providers[0];
    assert_true(str_is(p->pub.name, "main"));
    assert_true(str_is(p->pub.type, "fake"));
    assert_true(str_is(p->pub.api_key, "sk-123"));
    assert_true(str_is(p->pub.base_url, "https://example.test/v1"));
    assert_int_equal(p->pub.nheaders, 2);
    assert_true(str_is(p->pub.headers[0].key, "X-Org"));
    assert_true(str_is(p->pub.headers[0].value, "org-1"));
    assert_true(str_is(p->pub.headers[1].value, "7"));
    assert_int_equal(p->pub.connect_timeout_ms, 1000);
    assert_int_equal(p->pub.first_byte_timeout_ms, 2000);
    assert_int_equal(p->pub.idle_timeout_ms, 3000);
    assert_int_equal(p->pub.total_timeout_ms, 240000);
    assert_int_equal(p->pub.max_retries, 5);
    assert_true(p->supports_responses);
    assert_int_equal(p->nmodels, 2);
    assert_true(str_is(p->models[1], "m-2"));
    assert_int_equal(p->pub.noptions, 2);
    assert_true(str_is(pg_provider_config_option(&p->pub, "region"), "eu"));
    assert_true(str_is(pg_provider_config_option(&p->pub, "depth"), "3"));
    assert_ptr_equal(p->vt, &fake_vt);
    assert_non_null(p->instance);

    p = &c->providers[1];
    assert_true(str_is(p->pub.name, "mock.local_1"));
    assert_false(p->supports_responses);
    assert_int_equal(p->pub.noptions, 3);
    assert_true(str_is(pg_provider_config_option(&p->pub, "chunk_delay"),
                       "5ms"));
    assert_int_equal(p->pub.max_retries, 2);
    assert_int_equal(p->pub.total_timeout_ms, 15 * 60 * 1000);
    assert_int_equal(fake_creates, 2);

    assert_int_equal(c->routing.nrules, 2);
    assert_int_equal(c->routing.rules[0].kind, PG_RULE_MODEL_EXACT);
    assert_true(str_is(c->routing.rules[0].match, "gpt-4o"));
    assert_int_equal(c->routing.rules[0].provider, 0);
    assert_true(str_is(c->routing.rules[0].model, ""));
    assert_int_equal(c->routing.rules[1].kind, PG_RULE_MODEL_PREFIX);
    assert_int_equal(c->routing.rules[1].provider, 1);
    assert_true(str_is(c->routing.rules[1].model, "mock-x"));
    assert_int_equal(c->routing.default_provider, 0);
    assert_int_equal(c->routing.nfailover, 1);
    assert_int_equal(c->routing.failover[0].provider, 0);
    assert_int_equal(c->routing.failover[0].nnext, 1);
    assert_int_equal(c->routing.failover[0].next[0].provider, 1);
    assert_true(str_is(c->routing.failover[0].next[0].model, ""));

    assert_int_equal(c->napps, 2);
    assert_true(str_is(c->apps[0].name, "api"));
    assert_int_equal(c->apps[0].frontdoor, PG_FRONTDOOR_OPENAI);
    assert_true(str_is(c->apps[0].path, "/v1api"));
    assert_int_equal(c->apps[0].provider, 1);
    assert_true(str_is(c->apps[0].default_model, "gpt-4o-mini"));
    assert_int_equal(c->apps[0].nmodels, 2);
    assert_true(str_is(c->apps[0].models[0].owned_by, "acme"));
    assert_true(str_is(c->apps[0].models[1].id, "b"));
    assert_true(str_is(c->apps[0].models[1].owned_by, "polyglot"));
    assert_true(str_is(c->apps[1].path, ""));
    assert_int_equal(c->apps[1].provider, -1);
    assert_null(c->apps[1].models);

    assert_int_equal(c->logging.level, PG_LOG_DEBUG);
    assert_false(c->logging.json);
    assert_int_equal(pg_config_provider_index(c, PG_STR("mock.local_1")), 1);
    assert_int_equal(pg_config_provider_index(c, PG_STR("nope")), -1);
    pg_config_unref(b.cfg);
    assert_int_equal(fake_destroys, 2);
}

static void test_defaults(void **state)
{
    built_t b;
    build_ok(&b, "");
    const pg_config_t *c = b.cfg;
    assert_string_equal(c->server.host, "0.0.0.0");
    assert_int_equal(c->server.port, 8080);
    assert_true(c->server.workers >= 1); /* 0 -> CPU count */
    assert_int_equal(c->server.max_body_bytes, 10 * 1024 * 1024);
    assert_int_equal(c->server.max_header_bytes, 64 * 1024);
    assert_int_equal(c->server.header_timeout_ms, 10000);
    assert_int_equal(c->server.idle_timeout_ms, 75000);
    assert_int_equal(c->server.shutdown_timeout_ms, 30000);
    assert_int_equal(c->server.sse_keepalive_ms, 15000);
    assert_int_equal(c->server.busy_poll_ms, 0);
    assert_int_equal(c->server.max_connections, 10000);
    assert_int_equal(c->nproviders, 0);
    assert_int_equal(c->routing.nrules, 0);
    assert_int_equal(c->routing.default_provider, -1);
    /* No apps key: OpenAI at /openai and Anthropic at /anthropic. */
    assert_int_equal(c->napps, 2);
    assert_true(str_is(c->apps[0].name, "openai"));
    assert_int_equal(c->apps[0].frontdoor, PG_FRONTDOOR_OPENAI);
    assert_true(str_is(c->apps[0].path, "/openai"));
    assert_int_equal(c->apps[0].provider, -1);
    assert_true(str_is(c->apps[1].name, "anthropic"));
    assert_int_equal(c->apps[1].frontdoor, PG_FRONTDOOR_ANTHROPIC);
    assert_true(str_is(c->apps[1].path, "/anthropic"));
    assert_int_equal(c->apps[1].provider, -1);
    assert_int_equal(c->logging.level, PG_LOG_INFO);
    assert_true(c->logging.json);
    pg_config_unref(b.cfg);

    /* Null sections read as absent. */
    build_ok(&b, "server:\nproviders: ~\napps:\nrouting: null\n");
    assert_int_equal(b.cfg->napps, 2);
    pg_config_unref(b.cfg);

    /* An explicit empty apps list means no apps. */
    build_ok(&b, "apps: []\n");
    assert_int_equal(b.cfg->napps, 0);
    pg_config_unref(b.cfg);
}

static void test_units(void **state)
{
    built_t b;
    build_ok(&b, "server: {max_body_bytes: 512, max_header_bytes: 1GiB, "
                 "idle_timeout: 0, header_timeout: 1d, sse_keepalive: 250ms}\n");
    assert_int_equal(b.cfg->server.max_body_bytes, 512);
    assert_int_equal(b.cfg->server.max_header_bytes, 1024ull * 1024 * 1024);
    assert_int_equal(b.cfg->server.idle_timeout_ms, 0);
    assert_int_equal(b.cfg->server.header_timeout_ms, 86400000);
    assert_int_equal(b.cfg->server.sse_keepalive_ms, 250);
    pg_config_unref(b.cfg);

    build_bad(&b, "server: {idle_timeout: 30, max_body_bytes: 10 parsecs}\n",
              2);
    assert_diag(&b.d, "server.idle_timeout", "expected a duration");
    assert_diag(&b.d, "server.max_body_bytes", "expected a size");

    /* A duration with a ceiling: busy_poll spins a CPU, at most 1s. */
    build_ok(&b, "server: {busy_poll: 1s}\n");
    assert_int_equal(b.cfg->server.busy_poll_ms, 1000);
    pg_config_unref(b.cfg);
    build_bad(&b, "server: {busy_poll: 1001ms}\n", 1);
    assert_diag(&b.d, "server.busy_poll",
                "expected a duration of at most 1000ms, got \"1001ms\"");
}

static void test_env_expansion(void **state)
{
    built_t b;
    setenv("PGT_HOST", "10.0.0.1", 1);
    setenv("PGT_PORT", "7070", 1);
    setenv("PGT_EMPTY", "", 1);
    unsetenv("PGT_UNSET");
    build_ok(&b, "server:\n"
                 "  host: ${PGT_HOST}\n"
                 "  port: ${PGT_PORT:-1}\n"
                 "providers:\n"
                 "  - name: p\n"
                 "    type: fake\n"
                 "    api_key: \"k-${PGT_UNSET:-dflt}-$${PGT_HOST}-$x\"\n"
                 "    base_url: ${PGT_EMPTY:-http://fallback}\n"
                 "    headers: {A: \"${PGT_EMPTY}\"}\n");
    assert_string_equal(b.cfg->server.host, "10.0.0.1");
    assert_int_equal(b.cfg->server.port, 7070);
    const pg_provider_config_t *pub = &b.cfg->providers[0].pub;
    assert_true(str_is(pub->api_key, "k-dflt-${PGT_HOST}-$x"));
    assert_true(str_is(pub->base_url, "http://fallback"));
    assert_true(str_is(pub->headers[0].value, ""));
    pg_config_unref(b.cfg);
}

static void test_env_errors(void **state)
{
    built_t b;
    unsetenv("PGT_UNSET");
    build_bad(&b, "server:\n"
                  "  host: ${PGT_UNSET}\n"
                  "  port: \"${1BAD}\"\n"
                  "logging: {level: \"${PGT_UNSET:-info\"}\n",
              3);
    assert_diag(&b.d, "server.host", "PGT_UNSET is not set");
    assert_diag(&b.d, "server.port", "bad variable reference");
    assert_diag(&b.d, "logging.level", "bad variable reference");
}

static const char *unused_provider_yaml =
    "providers:\n"
    "  - name: used\n"
    "    type: fake\n"
    "  - name: spare\n"
    "    type: fake\n"
    "    api_key: ${PGT_UNSET}\n"
    "  - name: last\n"
    "    type: fake\n"
    "routing:\n"
    "  rules: [{model_prefix: x, provider: last}]\n"
    "  default_provider: used\n";

static void test_env_unset_in_unused_provider(void **state)
{
    built_t b;
    unsetenv("PGT_UNSET");
    fake_creates = fake_destroys = 0;
    build_ok(&b, unused_provider_yaml);
    /* The unused provider that cannot work is left out. */
    assert_int_equal(b.cfg->nproviders, 2);
    assert_true(str_is(b.cfg->providers[1].pub.name, "last"));
    assert_int_equal(b.cfg->routing.rules[0].provider, 1);
    assert_int_equal(fake_creates, 2);
    pg_config_unref(b.cfg);
    assert_int_equal(fake_destroys, 2);

    /* Referenced from anywhere (here an app) it is an error. */
    const char *referenced = "providers:\n"
                             "  - name: spare\n"
                             "    type: fake\n"
                             "    api_key: ${PGT_UNSET}\n"
                             "apps: [{name: a, path: /a, provider: spare}]\n";
    build_bad(&b, referenced, 1);
    assert_diag(&b.d, "providers[0].api_key", "PGT_UNSET is not set");

    const char *failover = "providers:\n"
                           "  - {name: a, type: fake}\n"
                           "  - {name: b, type: fake, base_url: \"${PGT_UNSET}\"}\n"
                           "routing: {failover: {a: [b]}}\n";
    build_bad(&b, failover, 1);
    assert_diag(&b.d, "providers[1].base_url", "PGT_UNSET");
}

static void test_unknown_key_suggestion(void **state)
{
    built_t b;
    build_bad(&b, "fronddoor: x\n"
                  "apps:\n"
                  "  - {name: a, path: /a}\n"
                  "  - {name: b, path: /b, fronddoor: openai}\n"
                  "server: {prot: 1, zzzzzz: 2}\n",
              4);
    assert_diag(&b.d, "apps[1].fronddoor",
                "unknown key \"fronddoor\"; did you mean \"frontdoor\"?");
    assert_diag(&b.d, "fronddoor", "unknown key \"fronddoor\"");
    assert_diag(&b.d, "server.prot", "did you mean \"port\"?");
    assert_diag(&b.d, "server.zzzzzz", "unknown key \"zzzzzz\"");
    assert_null(strstr(b.d.msg[diag_find(&b.d, "server.zzzzzz")], "mean"));
}

static void test_yaml_syntax_error(void **state)
{
    built_t b;
    build_bad(&b, "server:\n  port: 1\n  host: [a\nlogging: x\n", 1);
    assert_string_equal(b.d.path[0], "");
    assert_non_null(strstr(b.d.msg[0], "test.yaml:"));
    assert_non_null(strstr(b.err, "test.yaml:"));
    assert_null(strstr(b.err, "more"));

    build_bad(&b, "a: 1\n---\nb: 2\n", 1);
    assert_diag(&b.d, "", "only one YAML document");
}

static void test_duplicate_key(void **state)
{
    built_t b;
    build_bad(&b, "server:\n  port: 1\n  port: 2\n", 1);
    assert_diag(&b.d, "server.port", "duplicate key (line 3; first defined "
                                     "at line 2)");
    build_bad(&b, "apps:\n  - {name: a, path: /a, name: b}\n", 1);
    assert_diag(&b.d, "apps[0].name", "duplicate key");
}

static void test_all_problems_reported(void **state)
{
    built_t b;
    build_bad(&b, "server:\n"
                  "  port: 70000\n"
                  "  workers: many\n"
                  "logging: {level: loud}\n",
              3);
    assert_diag(&b.d, "server.port", "expected an integer from 0 to 65535");
    assert_diag(&b.d, "server.workers", "got \"many\"");
    assert_diag(&b.d, "logging.level",
                "expected one of error, warn, info, debug");
    assert_string_equal(b.d.path[0], "server.port");
    assert_non_null(strstr(b.err, "server.port: expected an integer"));
    assert_non_null(strstr(b.err, "(and 2 more problems)"));
}

static void test_shapes(void **state)
{
    built_t b;
    build_bad(&b, "server: [1]\nproviders: {a: 1}\napps: [x]\n"
                  "logging: {format: [json]}\n",
              4);
    assert_diag(&b.d, "server", "expected a mapping, got a list");
    assert_diag(&b.d, "providers", "expected a list, got a mapping");
    assert_diag(&b.d, "apps[0]", "expected a mapping, got a string");
    assert_diag(&b.d, "logging.format", "got a list");

    build_bad(&b, "- a\n- b\n", 1);
    assert_diag(&b.d, "", "must be a mapping");

    build_bad(&b, "x: &a {b: 1}\ny: *a\n", 3);
    assert_diag(&b.d, "y", "aliases");

    build_bad(&b, "providers:\n  - {name: p, type: fake, supports_responses: "
                  "maybe, headers: {A: {b: c}}, models: [a, [b]]}\n",
              3);
    assert_diag(&b.d, "providers[0].supports_responses", "true or false");
    assert_diag(&b.d, "providers[0].headers.A", "expected a string");
    assert_diag(&b.d, "providers[0].models[1]", "expected a string");
}

static void test_server_limits(void **state)
{
    built_t b;
    build_bad(&b, "server: {port: -1, workers: 257, max_connections: 0, "
                  "tls: {cert: a, key: b}}\n",
              4);
    assert_diag(&b.d, "server.port", "from 0 to 65535");
    assert_diag(&b.d, "server.workers", "from 0 to 256");
    assert_diag(&b.d, "server.max_connections", "got \"0\"");
    assert_diag(&b.d, "server.tls",
                "TLS serving is not implemented in this version");
}

static void test_provider_errors(void **state)
{
    built_t b;
    build_bad(&b, "providers:\n"
                  "  - {type: fake}\n"                           /* 0 */
                  "  - {name: \"bad name\", type: fake}\n"       /* 1 */
                  "  - {name: dup, type: fake}\n"                /* 2 */
                  "  - {name: dup, type: fake}\n"                /* 3 */
                  "  - {name: t, type: mokc}\n"                  /* 4 */
                  "  - {name: u, type: fake, base_url: ftp://x}\n" /* 5 */
                  "  - {name: v, type: fake, mock: {reply: x}}\n"  /* 6 */
                  "  - {name: w, type: mock, options: {a: b}}\n"   /* 7 */
                  "  - {name: x, type: fake, max_retries: 11}\n"   /* 8 */
                  "  - {name: y, type: fake, timeouts: {connect: 1s, "
                  "conect: 2s}}\n"                                 /* 9 */
                  "  - {name: z}\n",                               /* 10 */
              10);
    assert_diag(&b.d, "providers[0].name", "is required");
    assert_diag(&b.d, "providers[1].name", "not a valid name");
    assert_diag(&b.d, "providers[3].name",
                "duplicate provider name (also providers[2])");
    assert_diag(&b.d, "providers[4].type",
                "unknown provider type \"mokc\"; did you mean \"mock\"? "
                "(known types: fake, mock)");
    assert_diag(&b.d, "providers[5].base_url", "http:// or https://");
    assert_diag(&b.d, "providers[6].mock", "only valid with type: mock");
    assert_diag(&b.d, "providers[7].options", "under mock");
    assert_diag(&b.d, "providers[8].max_retries", "from 0 to 10");
    assert_diag(&b.d, "providers[9].timeouts.conect",
                "did you mean \"connect\"?");
    assert_diag(&b.d, "providers[10].type", "is required");
}

static void test_provider_create_errors(void **state)
{
    built_t b;
    fake_creates = fake_destroys = 0;
    build_bad(&b, "providers:\n"
                  "  - {name: ok, type: fake}\n"
                  "  - {name: m, type: mock, mock: {fail: 1}}\n"
                  "  - {name: o, type: fake, options: {fail: 1}}\n"
                  "  - {name: p, type: fake, options: {fail_plain: 1}}\n",
              3);
    assert_diag(&b.d, "providers[1].mock", "fail: must not be set");
    assert_diag(&b.d, "providers[2].options", "fail: must not be set");
    assert_diag(&b.d, "providers[3]", "cannot start this provider");
    /* The one instance that was created is destroyed with the failed
     * snapshot. */
    assert_int_equal(fake_creates, 1);
    assert_int_equal(fake_destroys, 1);
}

static void test_routing_errors(void **state)
{
    built_t b;
    build_bad(&b, "providers: [{name: openai, type: fake}]\n"
                  "routing:\n"
                  "  rules:\n"
                  "    - {model_exact: a, model_prefix: b, provider: openai}\n"
                  "    - {provider: openai}\n"
                  "    - {model_exact: c, provider: opena}\n"
                  "    - {model_exact: d}\n"
                  "  default_provider: nobody\n"
                  "  failover: {openai: [zzz], ghost: [openai]}\n",
              7);
    assert_diag(&b.d, "routing.rules[0]", "exactly one of model_exact");
    assert_diag(&b.d, "routing.rules[1]", "exactly one of model_exact");
    assert_diag(&b.d, "routing.rules[2].provider",
                "no provider is named \"opena\"; did you mean \"openai\"?");
    assert_diag(&b.d, "routing.rules[3].provider", "is required");
    assert_diag(&b.d, "routing.default_provider",
                "no provider is named \"nobody\"");
    assert_diag(&b.d, "routing.failover.openai[0]", "\"zzz\"");
    assert_diag(&b.d, "routing.failover.ghost", "\"ghost\"");
}

static void test_routing_failover_key(void **state)
{
    built_t b;
    build_bad(&b, "providers: [{name: a, type: fake}]\n"
                  "routing: {failover: {ghost: [a], a: b}}\n",
              2);
    assert_diag(&b.d, "routing.failover.ghost", "no provider is named");
    assert_diag(&b.d, "routing.failover.a", "expected a list");
}

/* Failover entries: a provider name (the client's model goes with it) or
 * {provider, model}, mixed in one list. */
static void test_routing_failover_models(void **state)
{
    built_t b;
    build_ok(&b, "providers: [{name: a, type: fake}, {name: b, type: fake},\n"
                 "            {name: c, type: fake}]\n"
                 "routing:\n"
                 "  failover:\n"
                 "    a: [{provider: b, model: small-1}, c,\n"
                 "        {provider: a, model: \"a-mini\"}]\n"
                 "    b: [{provider: c}]\n");
    const pg_cfg_routing_t *r = &b.cfg->routing;
    assert_int_equal(r->nfailover, 2);
    assert_int_equal(r->failover[0].provider, 0);
    assert_int_equal(r->failover[0].nnext, 3);
    assert_int_equal(r->failover[0].next[0].provider, 1);
    assert_true(str_is(r->failover[0].next[0].model, "small-1"));
    assert_int_equal(r->failover[0].next[1].provider, 2);
    assert_int_equal(r->failover[0].next[1].model.n, 0);
    assert_int_equal(r->failover[0].next[2].provider, 0);
    assert_true(str_is(r->failover[0].next[2].model, "a-mini"));
    assert_int_equal(r->failover[1].next[0].provider, 2);
    assert_int_equal(r->failover[1].next[0].model.n, 0);
    pg_config_unref(b.cfg);
}

static void test_routing_failover_entry_errors(void **state)
{
    built_t b;
    setenv("PG_TEST_EMPTY_MODEL", "", 1);
    build_bad(&b, "providers: [{name: openai, type: fake},\n"
                  "            {name: anthropic, type: fake}]\n"
                  "routing:\n"
                  "  failover:\n"
                  "    openai:\n"
                  "      - {provider: antropic, model: claude-haiku-4-5}\n"
                  "      - {provider: anthropic, modle: claude-haiku-4-5}\n"
                  "      - {provider: anthropic, model: \"\"}\n"
                  "      - {model: claude-haiku-4-5}\n"
                  "      - [anthropic]\n"
                  "      - {provider: anthropic, model: \"${PG_TEST_EMPTY_MODEL}\"}\n"
                  "      - {provider: anthropic, model: [x]}\n",
              7);
    unsetenv("PG_TEST_EMPTY_MODEL");
    assert_diag(&b.d, "routing.failover.openai[0].provider",
                "no provider is named \"antropic\"; did you mean "
                "\"anthropic\"?");
    assert_diag(&b.d, "routing.failover.openai[1].modle",
                "unknown key \"modle\"; did you mean \"model\"?");
    assert_diag(&b.d, "routing.failover.openai[2].model", "must not be empty");
    assert_diag(&b.d, "routing.failover.openai[3].provider", "is required");
    assert_diag(&b.d, "routing.failover.openai[4]",
                "expected a provider name or a mapping");
    assert_diag(&b.d, "routing.failover.openai[5].model", "must not be empty");
    assert_diag(&b.d, "routing.failover.openai[6].model", "expected a string");
}

static void test_app_errors(void **state)
{
    built_t b;
    build_bad(&b, "apps:\n"
                  "  - {name: a, path: /a}\n"                         /* 0 */
                  "  - {name: b, path: b}\n"                         /* 1 */
                  "  - {name: c, path: /c/}\n"                       /* 2 */
                  "  - {name: d, path: /d, provider: nope}\n"        /* 3 */
                  "  - {name: e, path: /d}\n"                        /* 4 */
                  "  - {name: a, path: /f}\n"                        /* 5 */
                  "  - {name: g, path: /g, enable_responses: true}\n" /* 6 */
                  "  - {name: h, path: /h, model_routing: {}}\n"     /* 7 */
                  "  - {name: i, path: /i, shadow: {enabled: true}}\n" /* 8 */
                  "  - {name: j, path: /j, frontdoor: grpc}\n"       /* 9 */
                  "  - {path: /k, models: [{owned_by: x}]}\n",       /* 10 */
              11);
    assert_diag(&b.d, "apps[1].path", "must start with");
    assert_diag(&b.d, "apps[2].path", "must not end with");
    assert_diag(&b.d, "apps[3].provider", "no provider is named \"nope\"");
    assert_diag(&b.d, "apps[4].path", "apps[3]");
    assert_diag(&b.d, "apps[5].name", "duplicate app name (also apps[0])");
    assert_diag(&b.d, "apps[6].enable_responses",
                "enable_responses is not implemented in this version");
    assert_diag(&b.d, "apps[7].model_routing", "not implemented");
    assert_diag(&b.d, "apps[8].shadow.enabled",
                "shadow is not implemented in this version");
    assert_diag(&b.d, "apps[9].frontdoor", "one of openai, anthropic");
    assert_diag(&b.d, "apps[10].name", "is required");
    assert_diag(&b.d, "apps[10].models[0].id", "is required");
}

static void test_anthropic_app(void **state)
{
    built_t b;
    build_ok(&b, "apps:\n"
                 "  - {name: a, frontdoor: anthropic, path: /a, "
                 "default_model: claude-x}\n");
    assert_int_equal(b.cfg->napps, 1);
    assert_int_equal(b.cfg->apps[0].frontdoor, PG_FRONTDOOR_ANTHROPIC);
    assert_true(str_is(b.cfg->apps[0].path, "/a"));
    assert_true(str_is(b.cfg->apps[0].default_model, "claude-x"));
    pg_config_unref(b.cfg);
}

static void test_app_off_forms(void **state)
{
    built_t b;
    build_ok(&b, "apps:\n"
                 "  - {name: a, path: /a, enable_responses: false, "
                 "force_store: false, shadow: {enabled: false}}\n");
    assert_int_equal(b.cfg->napps, 1);
    pg_config_unref(b.cfg);
}

static void test_not_built_sections(void **state)
{
    built_t b;
    build_ok(&b, "admin: {enabled: false}\nstorage: {type: none}\n"
                 "events: {type: none}\npolicy: {type: none}\ntenants:\n");
    pg_config_unref(b.cfg);
    build_bad(&b, "admin: {enabled: true, path: /admin}\n"
                  "storage: {type: sqlite}\n"
                  "events: {type: kafka}\n"
                  "policy: {type: basic}\n"
                  "tenants: [{id: acme}]\n",
              6);
    assert_diag(&b.d, "admin.enabled", "admin is not implemented");
    assert_diag(&b.d, "admin.path", "admin.path is not implemented");
    assert_diag(&b.d, "storage.type", "storage is not implemented");
    assert_diag(&b.d, "events.type", "events is not implemented");
    assert_diag(&b.d, "policy.type", "policy is not implemented");
    assert_diag(&b.d, "tenants", "tenants is not implemented in this version");
}

static void test_secret_never_echoed(void **state)
{
    built_t b;
    build_bad(&b, "providers:\n"
                  "  - name: p\n"
                  "    type: fake\n"
                  "    api_key: \"${sk-SECRETVALUE}\"\n"
                  "    headers: {Authorization: \"Bearer ${SECRETVALUE\"}\n"
                  "  - {name: q, type: fake, api_key: [SECRETVALUE]}\n",
              3);
    for (size_t i = 0; i < b.d.n; i++)
        assert_null(strstr(b.d.msg[i], "SECRETVALUE"));
    assert_null(strstr(b.err, "SECRETVALUE"));
    assert_diag(&b.d, "providers[0].api_key", "bad variable reference");
    assert_diag(&b.d, "providers[1].api_key", "expected a string");
}

static void test_anthropic_version_option(void **state)
{
    built_t b;
    build_ok(&b, "providers:\n"
                 "  - {name: a, type: fake, anthropic_version: 2023-06-01, "
                 "options: {x: y}}\n"
                 "  - {name: b, type: fake, anthropic_version: v}\n");
    const pg_provider_config_t *pub = &b.cfg->providers[0].pub;
    assert_int_equal(pub->noptions, 2);
    assert_true(str_is(pg_provider_config_option(pub, "x"), "y"));
    assert_true(str_is(pg_provider_config_option(pub, "anthropic_version"),
                       "2023-06-01"));
    pub = &b.cfg->providers[1].pub;
    assert_int_equal(pub->noptions, 1);
    assert_true(str_is(pg_provider_config_option(pub, "anthropic_version"),
                       "v"));
    pg_config_unref(b.cfg);
}

/* providers[].tls.ca_file is read while the snapshot is built (the
 * provider gets its contents), and max_response_bytes is a size with a
 * floor. A missing file, a file without a certificate and a tiny limit
 * are errors at their own paths, without quoting the path. */
/* providers[].http1_client picks the client for http:// base URLs: native
 * (the default) or curl; anything else is an error at its path. */
static void test_http1_client(void **state)
{
    built_t b;
    build_ok(&b, "providers:\n"
                 "  - {name: a, type: fake, http1_client: curl}\n"
                 "  - {name: b, type: fake, http1_client: native}\n"
                 "  - {name: c, type: fake}\n");
    assert_true(b.cfg->providers[0].pub.http1_curl);
    assert_false(b.cfg->providers[1].pub.http1_curl);
    assert_false(b.cfg->providers[2].pub.http1_curl);
    pg_config_unref(b.cfg);
    build_bad(&b, "providers:\n  - {name: a, type: fake, http1_client: h2}\n",
              1);
    assert_diag(&b.d, "providers[0].http1_client", "one of native, curl");
    (void)state;
}

static void test_tls_ca_file_and_max_response_bytes(void **state)
{
    char dir[] = "/tmp/pg-cfg-ca-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char pem[256], junk[256];
    snprintf(pem, sizeof(pem), "%s/ca.pem", dir);
    snprintf(junk, sizeof(junk), "%s/junk.txt", dir);
    static const char ca[] = "-----BEGIN CERTIFICATE-----\nMIIB\n"
                             "-----END CERTIFICATE-----\n";
    FILE *f = fopen(pem, "w");
    assert_non_null(f);
    fputs(ca, f);
    fclose(f);
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("not a certificate\n", f);
    fclose(f);

    built_t b;
    char *yaml = NULL;
    assert_true(asprintf(&yaml,
                         "providers:\n"
                         "  - {name: a, type: fake, tls: {ca_file: %s}, "
                         "max_response_bytes: 256KiB}\n"
                         "  - {name: b, type: fake}\n",
                         pem) > 0);
    build_ok(&b, yaml);
    free(yaml);
    const pg_provider_config_t *pub = &b.cfg->providers[0].pub;
    assert_true(str_is(pub->tls_ca_file, pem));
    assert_true(str_is(pub->tls_ca_pem, ca));
    assert_int_equal(pub->max_response_bytes, 256 * 1024);
    pub = &b.cfg->providers[1].pub;
    assert_int_equal(pub->tls_ca_file.n, 0);
    assert_int_equal(pub->tls_ca_pem.n, 0);
    assert_int_equal(pub->max_response_bytes, 64 * 1024 * 1024);
    pg_config_unref(b.cfg);

    assert_true(asprintf(&yaml,
                         "providers:\n"
                         "  - {name: a, type: fake, tls: {ca_file: %s/nope.pem}}\n"
                         "  - {name: b, type: fake, tls: {ca_file: %s}}\n"
                         "  - {name: c, type: fake, max_response_bytes: 100}\n"
                         "  - {name: d, type: fake, tls: {ca_fiel: x}}\n"
                         "  - {name: e, type: fake, tls: {ca_file: \"\"}}\n",
                         dir, junk) > 0);
    build_bad(&b, yaml, 5);
    free(yaml);
    assert_diag(&b.d, "providers[0].tls.ca_file",
                "the file: cannot open: No such file or directory");
    assert_diag(&b.d, "providers[1].tls.ca_file",
                "the file holds no PEM certificate");
    assert_diag(&b.d, "providers[2].max_response_bytes",
                "must be at least 1KiB");
    assert_diag(&b.d, "providers[3].tls.ca_fiel",
                "did you mean \"ca_file\"?");
    assert_diag(&b.d, "providers[4].tls.ca_file",
                "must be the path of a PEM file");
    for (size_t i = 0; i < b.d.n; i++)
        assert_null(strstr(b.d.msg[i], dir));
    unlink(pem);
    unlink(junk);
    rmdir(dir);
}

static void test_null_reads_as_absent(void **state)
{
    built_t b;
    build_ok(&b, "server: {tls: , port: ~}\nadmin: {}\nstorage:\n"
                 "apps:\n  - {name: a, path: /a, model_routing: ~, "
                 "shadow: {}, provider: }\n");
    assert_int_equal(b.cfg->server.port, 8080);
    assert_int_equal(b.cfg->apps[0].provider, -1);
    pg_config_unref(b.cfg);
}

static void test_refcount(void **state)
{
    built_t b;
    fake_creates = fake_destroys = 0;
    build_ok(&b, "providers: [{name: a, type: fake}, {name: b, type: fake}]\n");
    assert_int_equal(fake_creates, 2);
    assert_ptr_equal(pg_config_ref(b.cfg), b.cfg);
    pg_config_ref(b.cfg);
    pg_config_unref(b.cfg);
    pg_config_unref(b.cfg);
    assert_int_equal(fake_destroys, 0);
    pg_config_unref(b.cfg); /* the last reference */
    assert_int_equal(fake_destroys, 2);
    pg_config_unref(NULL);
    assert_null(pg_config_ref(NULL));
}

static void test_errbuf_counts(void **state)
{
    built_t b;
    build_bad(&b, "server: {port: x, workers: y}\n", 2);
    assert_string_equal(b.err,
                        "server.port: expected an integer from 0 to 65535, "
                        "got \"x\" (and 1 more problem)");
    build_bad(&b, "server: {port: x}\n", 1);
    assert_string_equal(b.err, "server.port: expected an integer from 0 to "
                               "65535, got \"x\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_env_unset_in_unused_provider),
        cmocka_unit_test(test_unknown_key_suggestion),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_duplicate_key),
        cmocka_unit_test(test_all_problems_reported),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_server_limits),
        cmocka_unit_test(test_provider_errors),
        cmocka_unit_test(test_provider_create_errors),
        cmocka_unit_test(test_routing_errors),
        cmocka_unit_test(test_routing_failover_key),
        cmocka_unit_test(test_routing_failover_models),
        cmocka_unit_test(test_routing_failover_entry_errors),
        cmocka_unit_test(test_app_errors),
        cmocka_unit_test(test_app_off_forms),
        cmocka_unit_test(test_not_built_sections),
        cmocka_unit_test(test_secret_never_echoed),
        cmocka_unit_test(test_anthropic_version_option),
        cmocka_unit_test(test_tls_ca_file_and_max_response_bytes),
        cmocka_unit_test(test_http1_client),
        cmocka_unit_test(test_anthropic_app),
        cmocka_unit_test(test_null_reads_as_absent),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_errbuf_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
