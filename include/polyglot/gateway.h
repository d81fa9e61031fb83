/* gateway.h: the pg_gateway_t lifecycle and its option setters. A host
 * creates a gateway, sets options, starts it, and later shuts it down and
 * frees it. The polyglot-gw CLI uses nothing but this header (and
 * polyglot.h).
 *
 * Threads: every function here is called from the host's thread that owns
 * the gateway (not from inside gateway callbacks), except where a
 * declaration says otherwise. */
#ifndef POLYGLOT_GATEWAY_H
#define POLYGLOT_GATEWAY_H

#include "polyglot/polyglot.h"

#ifdef __cplusplus
extern "C" {
#endif

struct uv_loop_s;
struct pg_provider_vtable;

/** An opaque gateway. Created by pg_gateway_new, freed by pg_gateway_free. */
typedef struct pg_gateway pg_gateway_t;

/** Size of the buffer behind pg_gateway_last_error, including the NUL. */
#define PG_ERRMSG_SIZE 256

typedef enum pg_log_level {
    PG_LOG_ERROR = 0,
    PG_LOG_WARN,
    PG_LOG_INFO,
    PG_LOG_DEBUG
} pg_log_level_t;

/** Receives each finished log line (no trailing newline). Called from any
 * gateway thread, possibly at once from several: it must be thread-safe. */
typedef void (*pg_log_cb)(void *ud, pg_log_level_t level, const char *line,
                          size_t len);

/** Receives one configuration problem: path is the key ("apps[1].path",
 * empty for the whole file), message says what is wrong. */
typedef void (*pg_diag_cb)(void *ud, const char *path, const char *message);

/** Allocates a gateway with default options; NULL on out of memory. */
PG_EXTERN pg_gateway_t *pg_gateway_new(void);

/** Frees a gateway. A started gateway is shut down first (with its
 * configured shutdown_timeout). NULL is a no-op. */
PG_EXTERN void pg_gateway_free(pg_gateway_t *gw);

/** The message of the last failed call on gw, or "" (never NULL). Valid
 * until the next call on gw. */
PG_EXTERN const char *pg_gateway_last_error(const pg_gateway_t *gw);

/* Option setters: each validates its input, copies what it keeps, and
 * returns PG_OK, PG_EINVAL, PG_ENOMEM, or PG_EBUSY once the gateway has
 * started. The last config setter called wins. */

/** Reads the YAML config from a file at start (and at check). */
PG_EXTERN int pg_gateway_set_config_file(pg_gateway_t *gw, const char *path);
/** Uses YAML text held in memory (copied). */
PG_EXTERN int pg_gateway_set_config_yaml(pg_gateway_t *gw, const char *yaml,
                                         size_t len);
/** Overrides server.host and server.port from the config. host NULL keeps
 * the config's host; port 0 binds an ephemeral port (see pg_gateway_port);
 * port -1 keeps the config's port. */
PG_EXTERN int pg_gateway_set_listen(pg_gateway_t *gw, const char *host,
                                    int port);
/** Overrides server.workers (1..256). */
PG_EXTERN int pg_gateway_set_workers(pg_gateway_t *gw, int workers);
/** Runs the gateway on the host's libuv loop instead of its own threads:
 * one worker, on that loop, which the host runs. pg_gateway_start binds and
 * registers handles on it; the host must call pg_gateway_shutdown from the
 * loop thread. */
PG_EXTERN int pg_gateway_set_loop(pg_gateway_t *gw, struct uv_loop_s *loop);
/** Overrides logging.level. */
PG_EXTERN int pg_gateway_set_log_level(pg_gateway_t *gw, pg_log_level_t level);
/** Sends log lines to cb instead of stderr. */
PG_EXTERN int pg_gateway_set_log_sink(pg_gateway_t *gw, pg_log_cb cb, void *ud);

/** Adds a provider type for providers[].type in the config. The vtable
 * must outlive the gateway. PG_EEXIST if the type is taken, PG_EABI if
 * vt->abi is not one this library knows. */
PG_EXTERN int pg_gateway_register_provider(pg_gateway_t *gw,
                                           const struct pg_provider_vtable *vt);

/** Loads and validates the configuration without starting anything.
 * Reports every problem to cb (may be NULL) and returns PG_OK or
 * PG_ECONFIG (last_error names the first problem and the count). */
PG_EXTERN int pg_gateway_check_config(pg_gateway_t *gw, pg_diag_cb cb, void *ud);

/** Loads the config, binds the port and starts the workers. On return with
 * PG_OK the port accepts connections. A config error logs every problem
 * and returns PG_ECONFIG before binding. */
PG_EXTERN int pg_gateway_start(pg_gateway_t *gw);

/** The bound TCP port once started (useful with port 0); -1 before. */
PG_EXTERN int pg_gateway_port(const pg_gateway_t *gw);

/** Stops accepting, lets in-flight requests finish for up to timeout_ms
 * (negative: the config's server.shutdown_timeout), then closes what is
 * left. With the gateway's own threads it returns when they have exited:
 * PG_OK, or PG_ESTATE if a worker's loop still held a handle (a bug; the
 * last error names the worker). With a host loop it must be called on that loop's thread; it
 * starts the drain and returns PG_PENDING: the host keeps running its loop
 * until the gateway's handles are closed, then may call pg_gateway_free. */
PG_EXTERN int pg_gateway_shutdown(pg_gateway_t *gw, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
