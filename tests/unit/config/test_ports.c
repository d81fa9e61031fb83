/* test_ports.c: the "file" and "yaml" config port adapters. */
#include <stdlib.h>
#include <unistd.h>

#include "cfg_fixture.h"
#include "config/ports.h"

static void test_file_port(void **state)
{
    char path[] = "/tmp/pg_cfg_port_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    /* Longer than the reader's first 4 KiB buffer, to make it grow. */
    char yaml[9000];
    int n = snprintf(yaml, sizeof(yaml), "server:\n  port: 9191\n");
    while ((size_t)n < sizeof(yaml) - 40)
        n += snprintf(yaml + n, sizeof(yaml) - (size_t)n, "# padding\n");
    assert_int_equal(write(fd, yaml, (size_t)n), n);
    close(fd);

    pg_config_port_t port;
    assert_int_equal(pg_config_port_file_new(path, &port), PG_OK);
    assert_string_equal(port.vt->name, "file");
    assert_true(port.vt->blocking);
    assert_int_equal(port.vt->abi, PG_PORT_ABI_1);
    assert_int_equal(port.vt->init(port.self), PG_OK);
    pg_config_source_t src;
    char err[PG_ERRMSG_SIZE] = "";
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)), PG_OK);
    assert_int_equal(src.len, (size_t)n);
    assert_memory_equal(src.yaml, yaml, (size_t)n);
    assert_string_equal(src.origin, path);
    /* A second load replaces the first. */
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)), PG_OK);

    built_t b;
    pg_provider_registry_t reg;
    fixture_registry(&reg);
    memset(&b, 0, sizeof(b));
    assert_int_equal(pg_config_build(src.yaml, src.len, src.origin, &reg,
                                     on_diag, &b.d, b.err, &b.cfg),
                     PG_OK);
    assert_int_equal(b.cfg->server.port, 9191);
    assert_string_equal(b.cfg->origin, path);
    pg_config_unref(b.cfg);

    unlink(path);
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)),
                     PG_ENOENT);
    assert_non_null(strstr(err, path));
    pg_config_port_free(&port);
    assert_null(port.vt);
    pg_config_port_free(&port); /* no-op */
}

static void test_file_port_missing(void **state)
{
    pg_config_port_t port;
    assert_int_equal(pg_config_port_file_new("/nonexistent/dir/gw.yaml",
                                             &port),
                     PG_OK);
    pg_config_source_t src;
    char err[PG_ERRMSG_SIZE] = "";
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)),
                     PG_ENOENT);
    assert_non_null(strstr(err, "/nonexistent/dir/gw.yaml"));
    pg_config_port_free(&port);

    assert_int_equal(pg_config_port_file_new("", &port), PG_EINVAL);
    assert_int_equal(pg_config_port_file_new(NULL, &port), PG_EINVAL);
}

static void test_file_port_directory(void **state)
{
    pg_config_port_t port;
    assert_int_equal(pg_config_port_file_new("/tmp", &port), PG_OK);
    pg_config_source_t src;
    char err[PG_ERRMSG_SIZE] = "";
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)),
                     PG_EIO);
    assert_non_null(strstr(err, "/tmp"));
    pg_config_port_free(&port);
}

static void test_yaml_port(void **state)
{
    char text[] = "logging: {level: warn}\n";
    pg_config_port_t port;
    assert_int_equal(pg_config_port_yaml_new(text, strlen(text), &port),
                     PG_OK);
    assert_string_equal(port.vt->name, "yaml");
    assert_false(port.vt->blocking);
    memset(text, 'x', strlen(text)); /* the port keeps its own copy */
    pg_config_source_t src;
    char err[PG_ERRMSG_SIZE];
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)), PG_OK);
    assert_string_equal(src.origin, "<memory>");
    assert_int_equal(src.len, strlen("logging: {level: warn}\n"));
    assert_memory_equal(src.yaml, "logging: {level: warn}\n", src.len);
    pg_config_port_free(&port);

    assert_int_equal(pg_config_port_yaml_new(NULL, 3, &port), PG_EINVAL);
    assert_int_equal(pg_config_port_yaml_new(NULL, 0, &port), PG_OK);
    assert_int_equal(port.vt->load(port.self, &src, err, sizeof(err)), PG_OK);
    assert_int_equal(src.len, 0);
    pg_config_port_free(&port);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_port),
        cmocka_unit_test(test_file_port_missing),
        cmocka_unit_test(test_file_port_directory),
        cmocka_unit_test(test_yaml_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
