/* gateway.c: the public pg_gateway_t: option setters, config loading
 * through the config port, binding the listening sockets (one per worker,
 * SO_REUSEPORT), starting the workers, and the graceful shutdown. Called on
 * the host's thread; the workers run on their loops (worker.c). */
#include "gateway_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/str.h"
#include "config/ports.h"
#include "worker.h"

#define DEFAULT_CONFIG_FILE "./config.yaml"

void pg__failf(pg_gateway_t *gw, const char *fmt, ...)
{
    if (gw->errmsg[0] != '\0')
        return; /* keep the first failure of this call */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(gw->errmsg, sizeof(gw->errmsg), fmt, ap);
    va_end(ap);
}

/* Every public entry point starts here: checks the handle, clears the last
 * error, and for setters refuses once started. */
static int gw_enter(pg_gateway_t *gw, bool setter)
{
    if (gw == NULL || gw->magic != PG_GATEWAY_MAGIC)
        return PG_EINVAL;
    gw->errmsg[0] = '\0';
    if (setter && gw->state != GW_NEW) {
        pg__failf(gw, "options cannot change once the gateway has started");
        return PG_EBUSY;
    }
    return PG_OK;
}

pg_gateway_t *pg_gateway_new(void)
{
    pg_gateway_t *gw = pg__calloc(1, sizeof(*gw));
    if (gw == NULL)
        return NULL;
    gw->magic = PG_GATEWAY_MAGIC;
    gw->listen_port = -1;
    gw->port = -1;
    gw->logger = (pg_logger_t){.level = PG_LOG_INFO, .json = true};
    if (pg_provider_registry_init(&gw->registry) != PG_OK) {
        pg__free(gw);
        return NULL;
    }
    return gw;
}

const char *pg_gateway_last_error(const pg_gateway_t *gw)
{
    if (gw == NULL || gw->magic != PG_GATEWAY_MAGIC)
        return "invalid gateway handle";
    return gw->errmsg;
}

static int set_port(pg_gateway_t *gw, pg_config_port_t port)
{
    if (gw->config_port.vt != NULL)
        pg_config_port_free(&gw->config_port);
    gw->config_port = port;
    return PG_OK;
}

int pg_gateway_set_config_file(pg_gateway_t *gw, const char *path)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if (path == NULL || path[0] == '\0') {
        pg__failf(gw, "config file path is empty");
        return PG_EINVAL;
    }
    pg_config_port_t port;
    if ((rc = pg_config_port_file_new(path, &port)) != PG_OK) {
        pg__failf(gw, "config file port: %s", pg_strerror(rc));
        return rc;
    }
    return set_port(gw, port);
}

int pg_gateway_set_config_yaml(pg_gateway_t *gw, const char *yaml, size_t len)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if (yaml == NULL && len > 0) {
        pg__failf(gw, "config yaml is NULL");
        return PG_EINVAL;
    }
    pg_config_port_t port;
    if ((rc = pg_config_port_yaml_new(yaml ? yaml : "", len, &port)) != PG_OK) {
        pg__failf(gw, "config yaml port: %s", pg_strerror(rc));
        return rc;
    }
    return set_port(gw, port);
}

int pg_gateway_set_listen(pg_gateway_t *gw, const char *host, int port)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if (port < -1 || port > 65535) {
        pg__failf(gw, "port %d is out of range (-1..65535)", port);
        return PG_EINVAL;
    }
    if (host != NULL) {
        if (host[0] == '\0' || strlen(host) > 255) {
            pg__failf(gw, "listen host must be 1..255 characters");
            return PG_EINVAL;
        }
        char *copy = pg__strdup(host);
        if (copy == NULL)
            return PG_ENOMEM;
        pg__free(gw->listen_host);
        gw->listen_host = copy;
    }
    gw->listen_port = port;
    return PG_OK;
}

int pg_gateway_set_workers(pg_gateway_t *gw, int workers)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if (workers < 1 || workers > PG_WORKERS_MAX) {
        pg__failf(gw, "workers must be 1..%d", PG_WORKERS_MAX);
        return PG_EINVAL;
    }
    gw->workers_override = workers;
    return PG_OK;
}

int pg_gateway_set_loop(pg_gateway_t *gw, struct uv_loop_s *loop)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if (loop == NULL) {
        pg__failf(gw, "loop is NULL");
        return PG_EINVAL;
    }
    gw->host_loop = loop;
    return PG_OK;
}

int pg_gateway_set_log_level(pg_gateway_t *gw, pg_log_level_t level)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    if ((int)level < PG_LOG_ERROR || level > PG_LOG_DEBUG) {
        pg__failf(gw, "unknown log level %d", (int)level);
        return PG_EINVAL;
    }
    gw->log_level_set = true;
    gw->log_level = level;
    return PG_OK;
}

int pg_gateway_set_log_sink(pg_gateway_t *gw, pg_log_cb cb, void *ud)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    gw->log_sink = cb;
    gw->log_sink_ud = ud;
    gw->logger.sink = cb;
    gw->logger.ud = ud;
    return PG_OK;
}

int pg_gateway_register_provider(pg_gateway_t *gw,
                                 const struct pg_provider_vtable *vt)
{
    int rc = gw_enter(gw, true);
    if (rc != PG_OK)
        return rc;
    rc = pg_provider_registry_add(&gw->registry, vt);
    if (rc != PG_OK)
        pg__failf(gw, "cannot register provider type \"%s\": %s",
                  vt && vt->type ? vt->type : "(null)", pg_strerror(rc));
    return rc;
}

/* ---- config ------------------------------------------------------------- */

typedef struct diag_fanout {
    pg_gateway_t *gw;
    pg_diag_cb cb;
    void *ud;
} diag_fanout_t;

static void on_diag(void *ud, const char *path, const char *message)
{
    diag_fanout_t *f = ud;
    if (f->cb != NULL) {
        f->cb(f->ud, path, message);
        return;
    }
    pg_log_field_t fields[] = {PG_LF_S("path", pg_str_c(path)),
                               PG_LF_S("problem", pg_str_c(message))};
    pg_log_fields(&f->gw->logger, PG_LOG_ERROR, "config error", fields, 2);
}

/* Loads the YAML through the config port and builds a snapshot. */
static int load_config(pg_gateway_t *gw, pg_diag_cb cb, void *ud,
                       pg_config_t **out)
{
    int rc;
    *out = NULL;
    if (gw->config_port.vt == NULL) {
        pg_config_port_t port;
        if ((rc = pg_config_port_file_new(DEFAULT_CONFIG_FILE, &port)) != PG_OK)
            return rc;
        gw->config_port = port;
    }
    pg_config_source_t src = {0};
    char err[PG_ERRMSG_SIZE] = "";
    rc = gw->config_port.vt->load(gw->config_port.self, &src, err, sizeof(err));
    if (rc != PG_OK) {
        pg__failf(gw, "%s", err[0] ? err : pg_strerror(rc));
        if (cb != NULL)
            cb(ud, "", gw->errmsg);
        else
            pg_logf(&gw->logger, PG_LOG_ERROR, "%s", gw->errmsg);
        return rc;
    }
    diag_fanout_t fan = {gw, cb, ud};
    char summary[PG_ERRMSG_SIZE] = "";
    rc = pg_config_build(src.yaml, src.len, src.origin, &gw->registry, on_diag,
                         &fan, summary, out);
    if (rc != PG_OK)
        pg__failf(gw, "%s", summary[0] ? summary : pg_strerror(rc));
    return rc;
}

int pg_gateway_check_config(pg_gateway_t *gw, pg_diag_cb cb, void *ud)
{
    int rc = gw_enter(gw, false);
    if (rc != PG_OK)
        return rc;
    pg_config_t *cfg = NULL;
    rc = load_config(gw, cb, ud, &cfg);
    if (cfg != NULL)
        pg_config_unref(cfg);
    return rc;
}

/* ---- listening sockets --------------------------------------------------- */

static void close_fds(uv_os_sock_t *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
    }
}

/* Binds n sockets to the same address with SO_REUSEPORT so that the
 * kernel spreads connections over the workers. Port 0 binds an ephemeral
 * port with the first socket and the rest join it. Host thread, before any
 * loop runs: getaddrinfo may block, which is fine here. */
static int bind_sockets(pg_gateway_t *gw, const char *host, int port,
                        uv_os_sock_t *fds, int n)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char portstr[16];
    for (int i = 0; i < n; i++)
        fds[i] = -1;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int grc = getaddrinfo(host, portstr, &hints, &ai);
    if (grc != 0 || ai == NULL) {
        pg__failf(gw, "cannot resolve listen host \"%s\": %s", host,
                  gai_strerror(grc));
        return PG_ELISTEN;
    }
    struct sockaddr_storage addr;
    socklen_t addrlen = (socklen_t)ai->ai_addrlen;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    int family = ai->ai_family;
    freeaddrinfo(ai);
    for (int i = 0; i < n; i++) {
        int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
            bind(fd, (struct sockaddr *)&addr, addrlen) != 0) {
            pg__failf(gw, "cannot listen on %s:%d: %s", host, port,
                      strerror(errno));
            if (fd >= 0)
                close(fd);
            close_fds(fds, i);
            return PG_ELISTEN;
        }
        fds[i] = fd;
        if (i == 0) {
            /* Learn the real port (port 0) so the other workers share it. */
            socklen_t len = sizeof(addr);
            getsockname(fd, (struct sockaddr *)&addr, &len);
            addrlen = len;
            gw->port = ntohs(addr.ss_family == AF_INET6
                                 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                 : ((struct sockaddr_in *)&addr)->sin_port);
        }
    }
    return PG_OK;
}

/* ---- start / shutdown ------------------------------------------------------ */

static int stop_workers(pg_gateway_t *gw, int timeout_ms)
{
    int rc = PG_OK;
    for (int i = 0; i < gw->nworkers; i++)
        pg_worker_stop(&gw->workers[i], timeout_ms);
    for (int i = 0; i < gw->nworkers; i++) {
        int jrc = pg_worker_join(&gw->workers[i]);
        if (rc == PG_OK)
            rc = jrc;
    }
    return rc;
}

static void release_running(pg_gateway_t *gw)
{
    pg__free(gw->workers);
    gw->workers = NULL;
    gw->nworkers = 0;
    if (gw->config != NULL)
        pg_config_unref(gw->config);
    gw->config = NULL;
}

int pg_gateway_start(pg_gateway_t *gw)
{
    int rc = gw_enter(gw, false);
    if (rc != PG_OK)
        return rc;
    if (gw->state != GW_NEW) {
        pg__failf(gw, "the gateway was already started");
        return PG_ESTATE;
    }
    if ((rc = load_config(gw, NULL, NULL, &gw->config)) != PG_OK)
        return rc;
    const pg_config_t *cfg = gw->config;
    gw->logger.level = gw->log_level_set ? gw->log_level : cfg->logging.level;
    gw->logger.json = cfg->logging.json;

    const char *host = gw->listen_host ? gw->listen_host : cfg->server.host;
    int port = gw->listen_port >= 0 ? gw->listen_port : cfg->server.port;
    int n = gw->host_loop ? 1
            : gw->workers_override ? gw->workers_override
                                   : cfg->server.workers;
    if (n < 1)
        n = 1;
    uv_os_sock_t fds[PG_WORKERS_MAX];
    if ((rc = bind_sockets(gw, host, port, fds, n)) != PG_OK)
        goto fail;
    gw->workers = pg__calloc((size_t)n, sizeof(*gw->workers));
    if (gw->workers == NULL) {
        close_fds(fds, n);
        rc = PG_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        rc = pg_worker_init(&gw->workers[i], gw, i, gw->host_loop, fds[i]);
        fds[i] = -1;
        if (rc != PG_OK) {
            close_fds(fds + i + 1, n - i - 1);
            if (gw->host_loop != NULL) {
                /* Its handles close when the host runs its loop: the
                 * worker array must outlive that. A startup failure on a
                 * host loop leaks it rather than risk a use after free. */
                gw->workers = NULL;
                gw->nworkers = 0;
            }
            break;
        }
        gw->nworkers = i + 1;
    }
    if (rc == PG_OK && gw->host_loop == NULL) {
        for (int i = 0; i < gw->nworkers && rc == PG_OK; i++)
            rc = pg_worker_run_thread(&gw->workers[i]);
    }
    if (rc != PG_OK) {
        /* Workers whose thread never started still need their loops run
         * to close; pg_worker_join handles a thread that never ran. */
        gw->state = GW_STOPPING;
        stop_workers(gw, 0);
        goto fail;
    }
    gw->state = GW_RUNNING;
    pg_logf(&gw->logger, PG_LOG_INFO,
            "polyglot %s listening on %s:%d with %d worker%s (config %s)",
            PG_VERSION_STRING, host, gw->port, n, n == 1 ? "" : "s",
            cfg->origin ? cfg->origin : "?");
    return PG_OK;
fail:
    release_running(gw);
    gw->port = -1;
    gw->state = GW_NEW;
    return rc;
}

int pg_gateway_port(const pg_gateway_t *gw)
{
    if (gw == NULL || gw->magic != PG_GATEWAY_MAGIC)
        return -1;
    return gw->state == GW_RUNNING || gw->state == GW_STOPPING ? gw->port : -1;
}

int pg_gateway_shutdown(pg_gateway_t *gw, int timeout_ms)
{
    int rc = gw_enter(gw, false);
    if (rc != PG_OK)
        return rc;
    if (gw->state != GW_RUNNING) {
        pg__failf(gw, "the gateway is not running");
        return PG_ESTATE;
    }
    if (timeout_ms < 0)
        timeout_ms = (int)gw->config->server.shutdown_timeout_ms;
    gw->state = GW_STOPPING;
    pg_logf(&gw->logger, PG_LOG_INFO, "shutting down (drain up to %d ms)",
            timeout_ms);
    if (gw->host_loop != NULL) {
        pg_worker_begin_drain(&gw->workers[0], timeout_ms);
        return PG_PENDING;
    }
    rc = stop_workers(gw, timeout_ms);
    release_running(gw);
    gw->state = GW_STOPPED;
    pg_logf(&gw->logger, PG_LOG_INFO, "stopped");
    return rc;
}

void pg_gateway_free(pg_gateway_t *gw)
{
    if (gw == NULL || gw->magic != PG_GATEWAY_MAGIC)
        return;
    if (gw->state == GW_RUNNING && gw->host_loop == NULL)
        pg_gateway_shutdown(gw, -1);
    if (gw->host_loop != NULL && gw->nworkers > 0 &&
        !atomic_load(&gw->workers[0].stopped)) {
        /* The worker's handles still live on the host's loop: freeing
         * their memory now would corrupt it. Leak it and say so. */
        pg_logf(&gw->logger, PG_LOG_ERROR,
                "pg_gateway_free: the host loop still holds the gateway's "
                "handles (shut down and run the loop first); leaking them");
        return;
    }
    release_running(gw);
    if (gw->config_port.vt != NULL)
        pg_config_port_free(&gw->config_port);
    pg__free(gw->listen_host);
    gw->magic = 0;
    pg__free(gw);
}
