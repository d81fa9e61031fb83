/* call.c: the gateway side of one provider call. It implements the public
 * pg_provider_call_* accessors a provider uses, and pg_call_start /
 * pg_call_cancel for the frontdoor, and it enforces the call contract:
 * done exactly once, never from inside start(), and nothing delivered after
 * done or cancel. Loop thread only (the loop that runs the call). */
#include "provider/call.h"

#include <assert.h>

#include "base/arena.h"
#include "base/str.h"
#include "provider/http_provider.h"

pg_str_t pg_provider_config_option(const pg_provider_config_t *cfg,
                                   const char *key)
{
    if (cfg == NULL || key == NULL)
        return PG_STR_NULL;
    for (size_t i = 0; i < cfg->noptions; i++) {
        if (pg_str_eqc(cfg->options[i].key, key)) {
            pg_str_t v = cfg->options[i].value;
            /* An empty value is present, not absent: keep p non-NULL. */
            if (v.p == NULL)
                v.p = "";
            return v;
        }
    }
    return PG_STR_NULL;
}

const pg_request_t *pg_provider_call_request(pg_provider_call_t *call)
{
    return call->request;
}

struct uv_loop_s *pg_provider_call_loop(pg_provider_call_t *call)
{
    return call->loop;
}

void *pg_provider_call_alloc(pg_provider_call_t *call, size_t size)
{
    return pg_arena_alloc(call->arena, size);
}

void pg_provider_call_set_data(pg_provider_call_t *call, void *data)
{
    call->provider_data = data;
}

void *pg_provider_call_get_data(pg_provider_call_t *call)
{
    return call->provider_data;
}

int pg_provider_call_emit(pg_provider_call_t *call, const pg_event_t *ev)
{
    /* After done or cancel the client side is gone or finished: tell the
     * provider to stop rather than delivering into freed state. */
    if (!call->running)
        return PG_ECANCELED;
    call->emitted = true;
    int rc = call->on_event(call->ud, ev);
    if (rc == PG_OK || rc == PG_PENDING)
        return rc;
    return PG_ECANCELED;
}

int pg_provider_call_set_headers(pg_provider_call_t *call,
                                 const pg_kv_t *headers, size_t n)
{
    if (!call->running || call->emitted || call->nrelay > 0 || n == 0)
        return PG_OK;
    pg_kv_t *copy = pg_arena_calloc(call->arena, n, sizeof(*copy));
    if (copy == NULL)
        return PG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        copy[i].key = pg_arena_strdup(call->arena, headers[i].key);
        copy[i].value = pg_arena_strdup(call->arena, headers[i].value);
        if (copy[i].key.p == NULL || copy[i].value.p == NULL)
            return PG_ENOMEM;
    }
    call->relay = copy;
    call->nrelay = n;
    return PG_OK;
}

/* Starts the provider at chain position pos (or the fixed provider). */
static int start_current(struct pg_provider_call *call)
{
    const pg_cfg_provider_t *p = call->provider;
    call->provider_data = NULL;
    /* Passthrough per provider: a failover chain may mix dialects, and
     * only the providers that speak the client's take its bytes. */
    call->raw = call->raw_kind != PG_RAW_NONE && call->on_raw != NULL &&
                pg_http_provider_takes_raw(p->vt, call->raw_kind);
    if (call->on_attempt != NULL) {
        int rc = call->on_attempt(call->ud, p);
        if (rc != PG_OK)
            return rc < 0 ? rc : PG_ESTATE;
    }
    call->running = true;
    call->in_start = true;
    int rc = p->vt->start(p->instance, call);
    call->in_start = false;
    if (rc == PG_PENDING) {
        /* This provider's failure, if any, speaks from now on (one that
         * could not even start leaves the previous one's). */
        call->upstream_status = 0;
        return PG_PENDING;
    }
    call->running = false;
    /* A provider that returns PG_OK or PG_DECLINED broke the contract (only
     * PENDING or an error are allowed): report it as a state error. */
    return rc < 0 ? rc : PG_ESTATE;
}

/* Moves to the next provider of the failover chain. PG_PENDING when one
 * started, else the last start error (or PG_ENOENT: no next). */
static int start_next(struct pg_provider_call *call)
{
    int rc = PG_ENOENT;
    while (call->chain != NULL && call->pos + 1 < call->nchain) {
        call->pos++;
        call->provider = &call->cfg->providers[call->chain[call->pos].provider];
        call->model = call->chain[call->pos].model;
        if ((rc = start_current(call)) == PG_PENDING)
            return rc;
    }
    return rc;
}

void pg_provider_call_done(pg_provider_call_t *call,
                           const pg_provider_error_t *err)
{
    /* done() from inside start() would re-enter the frontdoor while it is
     * still setting up; the contract forbids it. */
    assert(!call->in_start && "pg_provider_call_done inside start()");
    if (call->in_start || !call->running)
        return;
    call->running = false;
    /* Nothing reached the client yet and the provider says another one
     * may do better: fail over (DESIGN: "on connect error / timeout / 429
     * / 5xx before any byte was sent"). */
    if (err != NULL && err->retryable && !call->emitted &&
        start_next(call) == PG_PENDING)
        return;
    /* on_done may answer the client and free the arena that holds call:
     * nothing touches call after it. */
    call->on_done(call->ud, err);
}

int pg_call_start(struct pg_provider_call *call)
{
    const pg_cfg_provider_t *p = call->provider;
    if (p == NULL || p->vt == NULL || call->on_event == NULL ||
        call->on_done == NULL || (call->chain != NULL && call->cfg == NULL))
        return PG_EINVAL;
    call->pos = 0;
    if (call->chain != NULL)
        call->model = call->chain[0].model;
    int rc = start_current(call);
    if (rc != PG_PENDING && call->chain != NULL) {
        /* A provider that cannot even start (no API key...) is skipped
         * like one that failed before answering. */
        int next = start_next(call);
        if (next == PG_PENDING)
            return next;
    }
    return rc;
}

void pg_call_cancel(struct pg_provider_call *call)
{
    if (call == NULL || !call->running)
        return;
    call->running = false;
    const pg_cfg_provider_t *p = call->provider;
    p->vt->cancel(p->instance, call);
}

void pg_call_resume(struct pg_provider_call *call)
{
    if (call == NULL || !call->running)
        return;
    const pg_cfg_provider_t *p = call->provider;
    if (p->vt->resume != NULL)
        p->vt->resume(p->instance, call);
}
