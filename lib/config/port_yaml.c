/* port_yaml.c: the "yaml" config port: serves a private copy of YAML text
 * given at construction. No I/O (blocking = false). One thread at a time
 * per port. */
#include "config/ports.h"

#include <string.h>

#include "base/alloc.h"

typedef struct yaml_port {
    char *yaml; /* owned, NUL-terminated */
    size_t len;
} yaml_port_t;

static int yaml_init(void *self) { return PG_OK; }

static void yaml_destroy(void *self)
{
    yaml_port_t *yp = self;
    pg__free(yp->yaml);
    pg__free(yp);
}

static int yaml_load(void *self, pg_config_source_t *out, char *err,
                     size_t errlen)
{
    const yaml_port_t *yp = self;
    out->yaml = yp->yaml;
    out->len = yp->len;
    out->origin = "<memory>";
    return PG_OK;
}

static const struct pg_config_vtable yaml_vtable = {
    .abi = PG_PORT_ABI_1,
    .name = "yaml",
    .blocking = false,
    .init = yaml_init,
    .destroy = yaml_destroy,
    .load = yaml_load,
    .watch = NULL, /* the text never changes */
};

int pg_config_port_yaml_new(const char *yaml, size_t len,
                            pg_config_port_t *out)
{
    if ((yaml == NULL && len > 0) || out == NULL)
        return PG_EINVAL;
    yaml_port_t *yp = pg__calloc(1, sizeof(*yp));
    if (yp == NULL)
        return PG_ENOMEM;
    yp->yaml = pg__strndup(yaml ? yaml : "", len);
    if (yp->yaml == NULL) {
        pg__free(yp);
        return PG_ENOMEM;
    }
    yp->len = len;
    out->vt = &yaml_vtable;
    out->self = yp;
    return PG_OK;
}
