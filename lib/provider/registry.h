/* registry.h: provider types by name. The gateway owns one registry; the
 * built-in types (mock, ...) are added at pg_gateway_new through the same
 * call a host's pg_gateway_register_provider uses. Read by the config
 * builder (off the loop) and never changed after pg_gateway_start. */
#ifndef PG_PROVIDER_REGISTRY_H
#define PG_PROVIDER_REGISTRY_H

#include "polyglot/provider.h"

#define PG_PROVIDER_TYPES_MAX 32

typedef struct pg_provider_registry {
    const struct pg_provider_vtable *types[PG_PROVIDER_TYPES_MAX];
    size_t n;
} pg_provider_registry_t;

/* Empties reg and adds the built-in types. PG_OK or a negative pg_err. */
int pg_provider_registry_init(pg_provider_registry_t *reg);
/* Adds a type: PG_OK, PG_EINVAL (NULL or missing slots), PG_EABI,
 * PG_EEXIST (name taken), PG_ETOOBIG (table full). */
int pg_provider_registry_add(pg_provider_registry_t *reg,
                             const struct pg_provider_vtable *vt);
/* The vtable for type, or NULL. */
const struct pg_provider_vtable *
pg_provider_registry_find(const pg_provider_registry_t *reg, pg_str_t type);

/* The built-in mock provider's vtable (provider/mock.c). */
extern const struct pg_provider_vtable pg_mock_provider_vtable;

#endif
