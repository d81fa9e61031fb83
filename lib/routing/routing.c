/* routing.c: model -> provider resolution and the reachable-model list.
 * Reads the immutable config snapshot only; any thread. */
#include "routing/routing.h"

#include <stdbool.h>
#include <string.h>

#include "base/str.h"

static bool valid_provider(const pg_config_t *cfg, int i)
{
    return i >= 0 && (size_t)i < cfg->nproviders;
}

static bool rule_matches(const pg_cfg_rule_t *r, pg_str_t model)
{
    if (r->kind == PG_RULE_MODEL_EXACT)
        return pg_str_eq(model, r->match);
    return pg_str_starts_with(model, r->match);
}

int pg_route_resolve(const pg_config_t *cfg, const pg_cfg_app_t *app,
                     pg_str_t model, pg_route_t *out)
{
    if (app != NULL && valid_provider(cfg, app->provider)) {
        out->provider = app->provider;
        out->model = model;
        return PG_OK;
    }
    const pg_cfg_routing_t *rt = &cfg->routing;
    for (size_t i = 0; i < rt->nrules; i++) {
        const pg_cfg_rule_t *r = &rt->rules[i];
        if (!rule_matches(r, model) || !valid_provider(cfg, r->provider))
            continue;
        out->provider = r->provider;
        out->model = r->model.n > 0 ? r->model : model;
        return PG_OK;
    }
    if (valid_provider(cfg, rt->default_provider)) {
        out->provider = rt->default_provider;
        out->model = model;
        return PG_OK;
    }
    return PG_ENOENT;
}

struct model_list {
    pg_cfg_model_t *items;
    size_t n;
    size_t cap;
};

static int list_add(pg_arena_t *a, struct model_list *l, pg_str_t id,
                    pg_str_t owned_by)
{
    if (id.n == 0)
        return PG_OK;
    for (size_t i = 0; i < l->n; i++) {
        if (pg_str_eq(l->items[i].id, id))
            return PG_OK;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        pg_cfg_model_t *p = pg_arena_alloc(a, ncap * sizeof(*p));
        if (p == NULL)
            return PG_ENOMEM;
        if (l->n)
            memcpy(p, l->items, l->n * sizeof(*p));
        l->items = p;
        l->cap = ncap;
    }
    l->items[l->n++] = (pg_cfg_model_t){id, owned_by};
    return PG_OK;
}

int pg_route_models(const pg_config_t *cfg, const pg_cfg_app_t *app,
                    pg_arena_t *arena, const pg_cfg_model_t **out,
                    size_t *n)
{
    if (app != NULL && app->nmodels > 0) {
        *out = app->models;
        *n = app->nmodels;
        return PG_OK;
    }
    struct model_list l = {0};
    int rc = PG_OK;
    bool *reach = pg_arena_calloc(arena, cfg->nproviders + 1, sizeof(bool));
    if (reach == NULL)
        return PG_ENOMEM;
    const pg_cfg_routing_t *rt = &cfg->routing;
    if (app != NULL && valid_provider(cfg, app->provider)) {
        reach[app->provider] = true;
    } else {
        for (size_t i = 0; i < rt->nrules && rc == PG_OK; i++) {
            const pg_cfg_rule_t *r = &rt->rules[i];
            if (!valid_provider(cfg, r->provider))
                continue;
            reach[r->provider] = true;
            if (r->kind == PG_RULE_MODEL_EXACT)
                rc = list_add(arena, &l, r->match,
                              cfg->providers[r->provider].pub.name);
        }
        if (valid_provider(cfg, rt->default_provider))
            reach[rt->default_provider] = true;
    }
    for (size_t p = 0; p < cfg->nproviders && rc == PG_OK; p++) {
        if (!reach[p])
            continue;
        const pg_cfg_provider_t *pv = &cfg->providers[p];
        for (size_t m = 0; m < pv->nmodels && rc == PG_OK; m++)
            rc = list_add(arena, &l, pv->models[m], pv->pub.name);
    }
    if (rc != PG_OK)
        return rc;
    *out = l.items;
    *n = l.n;
    return PG_OK;
}

static bool hop_seen(const pg_cfg_hop_t *chain, size_t n, int provider,
                     pg_str_t model)
{
    for (size_t j = 0; j < n; j++) {
        if (chain[j].provider == provider && pg_str_eq(chain[j].model, model))
            return true;
    }
    return false;
}

int pg_route_chain(const pg_config_t *cfg, const pg_route_t *rt,
                   pg_str_t requested, pg_arena_t *arena,
                   const pg_cfg_hop_t **out, size_t *n)
{
    const pg_cfg_failover_t *fo = NULL;
    for (size_t i = 0; i < cfg->routing.nfailover; i++) {
        if (cfg->routing.failover[i].provider == rt->provider) {
            fo = &cfg->routing.failover[i];
            break;
        }
    }
    size_t cap = 1 + (fo ? fo->nnext : 0);
    pg_cfg_hop_t *chain = pg_arena_alloc(arena, cap * sizeof(*chain));
    if (chain == NULL)
        return PG_ENOMEM;
    size_t k = 0;
    chain[k++] = (pg_cfg_hop_t){rt->provider, rt->model};
    for (size_t i = 0; fo != NULL && i < fo->nnext; i++) {
        const pg_cfg_hop_t *h = &fo->next[i];
        pg_str_t model = h->model.n > 0 ? h->model : requested;
        if (valid_provider(cfg, h->provider) &&
            !hop_seen(chain, k, h->provider, model))
            chain[k++] = (pg_cfg_hop_t){h->provider, model};
    }
    *out = chain;
    *n = k;
    return PG_OK;
}
