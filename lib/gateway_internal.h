/* gateway_internal.h: the pg_gateway struct, shared by gateway.c (options,
 * start, shutdown) and worker.c (one event loop each). Private to lib/. */
#ifndef PG_GATEWAY_INTERNAL_H
#define PG_GATEWAY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include <uv.h>

#include "base/log.h"
#include "config/config.h"
#include "polyglot/gateway.h"
#include "polyglot/ports.h"
#include "provider/registry.h"

#define PG_GATEWAY_MAGIC 0x50474757u /* "PGGW" */
#define PG_WORKERS_MAX 256

struct pg_worker;

typedef enum gw_state {
    GW_NEW = 0,
    GW_RUNNING,
    GW_STOPPING,
    GW_STOPPED
} gw_state_t;

struct pg_gateway {
    uint32_t magic;
    char errmsg[PG_ERRMSG_SIZE];
    gw_state_t state;

    /* Options, set before start. */
    pg_config_port_t config_port; /* owned; vt NULL: ./config.yaml */
    char *listen_host;            /* owned; NULL: the config's */
    int listen_port;              /* -1: the config's */
    int workers_override;         /* 0: the config's */
    uv_loop_t *host_loop;         /* borrowed: the embedder's loop */
    bool log_level_set;
    pg_log_level_t log_level;
    pg_log_cb log_sink;
    void *log_sink_ud;
    pg_provider_registry_t registry;

    /* Running state. */
    pg_logger_t logger;           /* immutable while running */
    pg_config_t *config;          /* the current snapshot (one ref) */
    int port;
    struct pg_worker *workers;    /* owned array */
    int nworkers;
};

/* Records the first failure of the current public call into gw->errmsg. */
void pg__failf(pg_gateway_t *gw, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
