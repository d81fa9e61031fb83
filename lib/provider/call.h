/* call.h: the gateway side of a pg_provider_call_t: who receives the
 * events and the end of one provider call. A frontdoor fills one in (in the
 * request arena), starts it, and either sees on_done or cancels it.
 * Loop thread only. */
#ifndef PG_PROVIDER_CALL_H
#define PG_PROVIDER_CALL_H

#include <stdbool.h>

#include <uv.h>

#include "base/arena.h"

struct pg_upstream;
#include "config/config.h"
#include "polyglot/provider.h"

/* What a passthrough body is, and so which upstream endpoint takes it. */
typedef enum pg_raw_kind {
    PG_RAW_NONE = 0,
    PG_RAW_OPENAI_CHAT,            /* Chat Completions request */
    PG_RAW_ANTHROPIC_MESSAGES,     /* Messages request */
    PG_RAW_ANTHROPIC_COUNT_TOKENS  /* Messages count_tokens request (never
                                      a stream) */
} pg_raw_kind_t;

struct pg_provider_call {
    const pg_request_t *request;         /* borrowed: request arena */
    uv_loop_t *loop;
    pg_arena_t *arena;                   /* the request's */
    const pg_cfg_provider_t *provider;   /* borrowed: the snapshot; the one
                                            running now */
    void *provider_data;                 /* the provider's slot */
    struct pg_upstream *upstream;        /* borrowed: the worker's HTTP client */

    /* Failover: the providers to try in order, each with the model it
     * is sent (pg_route_chain); the call moves to the next one when a
     * provider ends with a retryable error before emitting anything.
     * NULL: only `provider`. */
    const pg_config_t *cfg;              /* borrowed */
    const pg_cfg_hop_t *chain;
    size_t nchain;
    size_t pos;
    /* The model the provider starting now is sent: chain[pos].model (left
     * as the frontdoor set it without a chain). The request and raw_body
     * must carry it when that provider starts: on_attempt sees to it. */
    pg_str_t model;
    /* Told each time a provider of the chain starts, after `raw` and
     * `model` are set for it (the log names the provider and model; a
     * frontdoor switches between passthrough and translation per
     * provider, and puts the model into what it sends). A negative return
     * skips that provider as if it could not start (a request the
     * frontdoor cannot translate for it). */
    int (*on_attempt)(void *ud, const pg_cfg_provider_t *p);

    /* Passthrough: a same-dialect request goes to a provider that speaks
     * that dialect as the client's bytes. raw_kind says what raw_body is
     * (PG_RAW_NONE: no passthrough body); for each provider of the chain
     * the call sets `raw` when that provider takes raw_kind as it is
     * (pg_http_provider_takes_raw), else the provider gets the canonical
     * `request` (translation). While raw, raw_body is sent as it is and
     * the answer comes back through on_raw instead of as events: each SSE
     * event of a stream (its event name, empty when none, and its data
     * payload: the JSON text of one chunk or event, or "[DONE]"), or the
     * whole body of a non-stream answer (event empty); a payload with
     * data.p == NULL ends a batch (the events of one upstream read): the
     * frontdoor writes what it gathered in one go. on_raw returns PG_OK,
     * PG_PENDING (slow client: pause) or an error (stop). */
    pg_raw_kind_t raw_kind;
    pg_str_t raw_body;
    int (*on_raw)(void *ud, pg_str_t event, pg_str_t data);
    bool raw;                            /* set per provider by the call */

    /* Client request headers a provider may forward: the Anthropic
     * frontdoor's anthropic-version / anthropic-beta, which anthropic-type
     * providers send upstream (a client's anthropic-version replaces the
     * configured one). Borrowed: request arena. NULL/0: none. */
    const pg_kv_t *client_headers;
    size_t nclient_headers;

    /* The HTTP status of the upstream answer behind the last failure
     * (built-in HTTP providers set it; 0 when the failure was not an
     * upstream answer: connect error, timeout, missing key). Lets a
     * frontdoor tell an upstream's 503/529 "overloaded" from the
     * gateway's own 503s. */
    int upstream_status;

    /* Headers a provider asked to relay (pg_provider_call_set_headers). */
    pg_kv_t *relay;                      /* arena */
    size_t nrelay;

    /* Each event in order; return PG_OK, or PG_ECANCELED to make the
     * provider stop (the client is gone). */
    int (*on_event)(void *ud, const pg_event_t *ev);
    /* The end: err NULL on success. Not called after a cancel. */
    void (*on_done)(void *ud, const pg_provider_error_t *err);
    void *ud;

    bool in_start;   /* start() is running: done must not come now */
    bool running;    /* started and neither done nor canceled */
    bool emitted;    /* an event reached the client side */
};

/* Starts the call: PG_PENDING (on_done follows) or a negative pg_err with
 * nothing to follow. */
int pg_call_start(struct pg_provider_call *call);
/* Cancels a running call; no-op otherwise. on_done is not called. */
void pg_call_cancel(struct pg_provider_call *call);
/* The client drained its queue: lets a paused provider produce again. */
void pg_call_resume(struct pg_provider_call *call);

#endif
