/* registry.c: provider types by name; built-ins register like host types. */
#include "provider/registry.h"

#include <string.h>

#include "base/str.h"
#include "provider/http_provider.h"

int pg_provider_registry_init(pg_provider_registry_t *reg)
{
    static const struct pg_provider_vtable *const builtin[] = {
        &pg_openai_provider_vtable,
        &pg_openai_compatible_provider_vtable,
        &pg_anthropic_provider_vtable,
        &pg_mock_provider_vtable,
    };
    reg->n = 0;
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        int rc = pg_provider_registry_add(reg, builtin[i]);
        if (rc != PG_OK)
            return rc;
    }
    return PG_OK;
}

int pg_provider_registry_add(pg_provider_registry_t *reg,
                             const struct pg_provider_vtable *vt)
{
    if (vt == NULL || vt->type == NULL || vt->type[0] == '\0' ||
        vt->create == NULL || vt->destroy == NULL || vt->start == NULL ||
        vt->cancel == NULL)
        return PG_EINVAL;
    if (vt->abi != PG_PROVIDER_ABI_1)
        return PG_EABI;
    if (pg_provider_registry_find(reg, pg_str_c(vt->type)) != NULL)
        return PG_EEXIST;
    if (reg->n >= PG_PROVIDER_TYPES_MAX)
        return PG_ETOOBIG;
    reg->types[reg->n++] = vt;
    return PG_OK;
}

const struct pg_provider_vtable *
pg_provider_registry_find(const pg_provider_registry_t *reg, pg_str_t type)
{
    for (size_t i = 0; i < reg->n; i++) {
        if (pg_str_eqc(type, reg->types[i]->type))
            return reg->types[i];
    }
    return NULL;
}
