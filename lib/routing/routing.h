/* routing.h: which provider answers a model, and which models an app can
 * reach (for /v1/models). Pure functions over a config snapshot; any
 * thread (the snapshot is immutable). */
#ifndef PG_ROUTING_ROUTING_H
#define PG_ROUTING_ROUTING_H

#include "base/arena.h"
#include "config/config.h"

typedef struct pg_route {
    int provider;   /* index into cfg->providers */
    pg_str_t model; /* the model to send: borrowed from the request or cfg */
} pg_route_t;

/* Resolves model for app (app may be NULL: global routing only). The app's
 * forced provider wins (model unchanged); else the first routing rule that
 * matches (model_exact equal, model_prefix a prefix), with its model
 * rewrite if set; else routing.default_provider. PG_OK, or PG_ENOENT when
 * nothing routes the model. */
int pg_route_resolve(const pg_config_t *cfg, const pg_cfg_app_t *app,
                     pg_str_t model, pg_route_t *out);

/* The failover chain of a routed request: first the primary (rt) with the
 * routed model (a rule's model rewrite is for its provider only), then the
 * entries routing.failover lists for rt->provider, each sent its own
 * model, or requested (the model the client asked for) when it names
 * none. An entry that repeats a provider and model already in the chain
 * is left out. Allocated in arena. PG_OK or PG_ENOMEM. */
int pg_route_chain(const pg_config_t *cfg, const pg_route_t *rt,
                   pg_str_t requested, pg_arena_t *arena,
                   const pg_cfg_hop_t **out, size_t *n);

/* The models app can reach, for GET /v1/models: the app's static models
 * list when it has one; else, deduplicated and in config order, the
 * model_exact ids of the routing rules followed by the models lists of the
 * providers routing can reach (rule providers and the default provider, or
 * only the app's forced provider). owned_by of a derived entry is the
 * provider's name. The array is allocated in arena (*out may be NULL when
 * *n is 0). PG_OK or PG_ENOMEM. */
int pg_route_models(const pg_config_t *cfg, const pg_cfg_app_t *app,
                    pg_arena_t *arena, const pg_cfg_model_t **out,
                    size_t *n);

#endif
