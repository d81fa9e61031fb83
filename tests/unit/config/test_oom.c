/* test_oom.c: fails the Nth allocation of a full config build for every N
 * until the build succeeds; each failure must come back as PG_ENOMEM (or
 * PG_ECONFIG when the failure hit a provider's create, which reports it as
 * a problem) with every allocation freed. libyaml allocates with its own
 * malloc and is outside the sweep. */
#include <stdlib.h>

#include "cfg_fixture.h"
#include "config/ports.h"
#include "oom_alloc.h"

static const char *yaml =
    "server: {host: \"${PGO_HOST:-127.0.0.1}\", port: 1234}\n"
    "providers:\n"
    "  - name: a\n"
    "    type: fake\n"
    "    api_key: ${PGO_KEY:-k}-$$\n"
    "    headers: {X-A: b, X-B: c}\n"
    "    models: [m1, m2]\n"
    "    options: {x: y}\n"
    "  - {name: b, type: mock, mock: {reply: echo}}\n"
    "  - {name: spare, type: fake, api_key: \"${PGO_UNSET}\"}\n"
    "routing:\n"
    "  rules: [{model_prefix: m, provider: a, model: z}]\n"
    "  default_provider: b\n"
    "  failover: {a: [b, {provider: b, model: m-small}]}\n"
    "logging: {level: warn}\n"
    "apps:\n"
    "  - {name: x, path: /x, models: [{id: m}], provider: a}\n"
    "  - {name: y, path: /}\n";

/* The base config plus many apps, so that the arenas take new chunks at
 * many points of the build and the sweep fails each of them. */
static char *big_yaml(void)
{
    size_t cap = strlen(yaml) + 200 * 160;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t n = (size_t)snprintf(out, cap, "%s", yaml);
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(out + n, cap - n,
                              "  - {name: app-with-a-long-name-%03d, path: "
                              "/p%03d, default_model: model-%03d, models: "
                              "[{id: m%03d}]}\n",
                              i, i, i, i);
    return out;
}

static void test_oom_sweep(void **state)
{
    char *text = big_yaml();
    pg_provider_registry_t reg;
    fixture_registry(&reg);
    unsetenv("PGO_UNSET");
    oom_install();
    long n = 0;
    int rc;
    fake_creates = fake_destroys = 0;
    {
        /* The config is valid: with no failure it builds. */
        diags_t d0;
        memset(&d0, 0, sizeof(d0));
        pg_config_t *cfg = NULL;
        rc = pg_config_build(text, strlen(text), "oom.yaml", &reg, on_diag,
                             &d0, NULL, &cfg);
        if (rc != PG_OK)
            dump_diags(&d0);
        assert_int_equal(rc, PG_OK);
        pg_config_unref(cfg);
    }
    do {
        diags_t d;
        char err[PG_ERRMSG_SIZE];
        pg_config_t *cfg = NULL;
        memset(&d, 0, sizeof(d));
        long live = oom_live();
        oom_arm(n);
        rc = pg_config_build(text, strlen(text), "oom.yaml", &reg, on_diag,
                             &d, err, &cfg);
        /* When the Nth allocation was never reached the build must have
         * succeeded; this also ends the sweep. */
        bool failed_one = oom_calls() > n;
        oom_arm(-1);
        if (!failed_one)
            assert_int_equal(rc, PG_OK);
        if (rc != PG_OK) {
            if (rc != PG_ENOMEM && rc != PG_ECONFIG)
                print_message("N=%ld rc=%d\n", n, rc);
            assert_true(rc == PG_ENOMEM || rc == PG_ECONFIG);
            assert_null(cfg);
            assert_true(err[0] != '\0');
        } else {
            assert_int_equal(cfg->nproviders, 2);
            assert_int_equal(cfg->napps, 202);
            pg_config_unref(cfg);
        }
        live = oom_live() - live;
        if (live != 0)
            print_message("N=%ld leaked %ld allocations\n", n, live);
        assert_int_equal(live, 0);
        assert_int_equal(fake_creates, fake_destroys);
        n++;
    } while (rc != PG_OK);
    print_message("  config build succeeded after %ld failing runs\n", n - 1);
    assert_true(n > 20);
    free(text);
}

static void test_oom_ports(void **state)
{
    oom_install();
    for (long n = 0; n < 3; n++) {
        pg_config_port_t port = {0};
        long live = oom_live();
        oom_arm(n);
        int rc = pg_config_port_yaml_new("a: 1", 4, &port);
        oom_arm(-1);
        if (rc == PG_OK)
            pg_config_port_free(&port);
        else
            assert_int_equal(rc, PG_ENOMEM);
        assert_int_equal(oom_live(), live);
        oom_arm(n);
        rc = pg_config_port_file_new("/tmp/x.yaml", &port);
        oom_arm(-1);
        if (rc == PG_OK)
            pg_config_port_free(&port);
        else
            assert_int_equal(rc, PG_ENOMEM);
        assert_int_equal(oom_live(), live);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oom_sweep),
        cmocka_unit_test(test_oom_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
