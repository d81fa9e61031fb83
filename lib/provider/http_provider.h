/* http_provider.h: the built-in HTTP provider types (http_provider.c):
 * "openai", "openai-compatible" and "anthropic". Registered by the
 * provider registry like any host type. */
#ifndef PG_PROVIDER_HTTP_PROVIDER_H
#define PG_PROVIDER_HTTP_PROVIDER_H

#include <stdbool.h>

#include "polyglot/provider.h"
#include "provider/call.h"

extern const struct pg_provider_vtable pg_openai_provider_vtable;
extern const struct pg_provider_vtable pg_openai_compatible_provider_vtable;
extern const struct pg_provider_vtable pg_anthropic_provider_vtable;

/* True when vt is one of the HTTP provider types (they need the worker's
 * upstream client). */
bool pg_http_provider_is(const struct pg_provider_vtable *vt);

/* True when vt can take a body of this kind as it is (passthrough: struct
 * pg_provider_call.raw_body / on_raw): Chat Completions for the openai and
 * openai-compatible types, Messages and count_tokens for the anthropic
 * type. */
bool pg_http_provider_takes_raw(const struct pg_provider_vtable *vt,
                                pg_raw_kind_t kind);

#endif
