/* cfg_fixture.h: shared by the config unit tests: a fake provider type
 * ("fake", plus "fake2" so suggestions have a choice) that counts creates
 * and destroys, and a diag collector that keeps every (path, message).
 * The fake's create allocates through pg__malloc so the OOM sweep covers
 * it, and fails with "<key>: ..." when an option "fail" is set, or with a
 * plain message when "fail_plain" is set. */
#ifndef TEST_CFG_FIXTURE_H
#define TEST_CFG_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/alloc.h"
#include "base/str.h"
#include "config/config.h"
#include "provider/registry.h"

static int fake_creates;
static int fake_destroys;

static inline int fake_create(const pg_provider_config_t *cfg, void **self,
                              char *err, size_t errlen)
{
    if (pg_provider_config_option(cfg, "fail").p != NULL) {
        snprintf(err, errlen, "fail: must not be set");
        return PG_EINVAL;
    }
    if (pg_provider_config_option(cfg, "fail_plain").p != NULL) {
        snprintf(err, errlen, "cannot start this provider");
        return PG_EINVAL;
    }
    int *p = pg__malloc(sizeof(int));
    if (p == NULL)
        return PG_ENOMEM;
    *p = 42;
    *self = p;
    fake_creates++;
    return PG_OK;
}

static inline void fake_destroy(void *self)
{
    assert_int_equal(*(int *)self, 42);
    pg__free(self);
    fake_destroys++;
}

static inline int fake_start(void *self, pg_provider_call_t *call)
{
    return PG_EUNSUPPORTED;
}

static inline void fake_cancel(void *self, pg_provider_call_t *call) {}

static const struct pg_provider_vtable fake_vt = {
    .abi = PG_PROVIDER_ABI_1, .type = "fake", .create = fake_create,
    .destroy = fake_destroy, .start = fake_start, .cancel = fake_cancel};
static const struct pg_provider_vtable fake2_vt = {
    .abi = PG_PROVIDER_ABI_1, .type = "mock", .create = fake_create,
    .destroy = fake_destroy, .start = fake_start, .cancel = fake_cancel};

/* A registry with "fake" and a stand-in "mock" (the fake again), so the
 * tests do not depend on the real mock provider. */
static inline void fixture_registry(pg_provider_registry_t *reg)
{
    reg->n = 0;
    assert_int_equal(pg_provider_registry_add(reg, &fake_vt), PG_OK);
    assert_int_equal(pg_provider_registry_add(reg, &fake2_vt), PG_OK);
}

#define DIAG_MAX 32

typedef struct diags {
    size_t n;
    char path[DIAG_MAX][256];
    char msg[DIAG_MAX][512];
} diags_t;

static inline void on_diag(void *ud, const char *path, const char *message)
{
    diags_t *d = ud;
    if (d->n < DIAG_MAX) {
        snprintf(d->path[d->n], sizeof(d->path[0]), "%s", path);
        snprintf(d->msg[d->n], sizeof(d->msg[0]), "%s", message);
    }
    d->n++;
}

/* The index of the problem reported at path, or -1. */
static inline int diag_find(const diags_t *d, const char *path)
{
    for (size_t i = 0; i < d->n && i < DIAG_MAX; i++) {
        if (strcmp(d->path[i], path) == 0)
            return (int)i;
    }
    return -1;
}

static inline void dump_diags(const diags_t *d)
{
    for (size_t i = 0; i < d->n && i < DIAG_MAX; i++)
        print_message("  diag %zu: [%s] %s\n", i, d->path[i], d->msg[i]);
}

/* Asserts a problem at path whose message contains sub. */
#define assert_diag(d, path, sub)                                             \
    do {                                                                      \
        int i_ = diag_find((d), (path));                                      \
        if (i_ < 0)                                                           \
            dump_diags(d);                                                    \
        assert_true(i_ >= 0);                                                 \
        if (strstr((d)->msg[i_], (sub)) == NULL)                              \
            print_message("  message: %s\n", (d)->msg[i_]);                   \
        assert_non_null(strstr((d)->msg[i_], (sub)));                         \
    } while (0)

typedef struct built {
    int rc;
    pg_config_t *cfg;
    diags_t d;
    char err[PG_ERRMSG_SIZE];
} built_t;

static inline void build_yaml(built_t *b, const char *yaml)
{
    pg_provider_registry_t reg;
    fixture_registry(&reg);
    memset(b, 0, sizeof(*b));
    b->rc = pg_config_build(yaml, strlen(yaml), "test.yaml", &reg, on_diag,
                            &b->d, b->err, &b->cfg);
    if (b->rc == PG_OK)
        assert_int_equal(b->d.n, 0);
    else
        assert_null(b->cfg);
}

/* Builds a config that must fail with exactly n problems. */
static inline void build_bad(built_t *b, const char *yaml, size_t n)
{
    build_yaml(b, yaml);
    if (b->rc != PG_ECONFIG || b->d.n != n)
        dump_diags(&b->d);
    assert_int_equal(b->rc, PG_ECONFIG);
    assert_int_equal(b->d.n, n);
}

static inline void build_ok(built_t *b, const char *yaml)
{
    build_yaml(b, yaml);
    if (b->rc != PG_OK)
        dump_diags(&b->d);
    assert_int_equal(b->rc, PG_OK);
    assert_non_null(b->cfg);
}

static inline bool str_is(pg_str_t s, const char *c)
{
    return pg_str_eqc(s, c);
}

#endif
