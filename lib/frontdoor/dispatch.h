/* dispatch.h: the HTTP handler of a worker. Maps a request path to GET
 * /health, or to an app and one of its dialect's endpoints; attaches a
 * pg_fd_ctx_t holding a config snapshot reference; renders the server's own
 * errors in the dialect of the app the path names; writes one access log
 * line per request. Loop thread only. */
#ifndef PG_FRONTDOOR_DISPATCH_H
#define PG_FRONTDOOR_DISPATCH_H

#include <uv.h>

#include "base/log.h"
#include "config/config.h"
#include "http/server.h"

struct pg_upstream;

typedef struct pg_dispatch {
    uv_loop_t *loop;
    const pg_logger_t *log;  /* borrowed: the gateway's */
    pg_config_t *cfg;        /* this worker's reference to the current snapshot */
    struct pg_upstream *upstream; /* borrowed: the worker's HTTP client */
} pg_dispatch_t;

/* Takes a new reference on cfg. */
void pg_dispatch_init(pg_dispatch_t *d, uv_loop_t *loop, const pg_logger_t *log,
                      pg_config_t *cfg);
/* Drops the snapshot reference. */
void pg_dispatch_destroy(pg_dispatch_t *d);
/* The handler table for pg_http_server_new; ud is d. */
pg_http_handler_t pg_dispatch_handler(pg_dispatch_t *d);

/* The app whose path prefixes path (longest wins), or NULL. *rest gets the
 * part below the app's path ("/v1/models"). */
const pg_cfg_app_t *pg_dispatch_find_app(const pg_config_t *cfg, pg_str_t path,
                                         pg_str_t *rest);

#endif
