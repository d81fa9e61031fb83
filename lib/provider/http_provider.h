/* http_provider.h: the built-in HTTP provider types (http_provider.c):
 * "openai", "openai-compatible" and "anthropic". Registered by the
 * provider registry like any host type. */
#ifndef PG_PROVIDER_HTTP_PROVIDER_H
#define PG_PROVIDER_HTTP_PROVIDER_H

#include <stdbool.h>

#include "polyglot/provider.h"

extern const struct pg_provider_vtable pg_openai_provider_vtable;
extern const struct pg_provider_vtable pg_openai_compatible_provider_vtable;
extern const struct pg_provider_vtable pg_anthropic_provider_vtable;

/* True when vt is one of the HTTP provider types (they need the worker's
 * upstream client). */
bool pg_http_provider_is(const struct pg_provider_vtable *vt);

/* True when vt can take an OpenAI Chat Completions body as it is
 * (passthrough: struct pg_provider_call.raw_body / on_raw): the openai and
 * openai-compatible types. */
bool pg_http_provider_passthrough(const struct pg_provider_vtable *vt);

#endif
