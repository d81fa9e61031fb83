/* ports.h: the two built-in config port adapters (struct pg_config_vtable,
 * include/polyglot/ports.h): "file" reads a YAML file on each load
 * (blocking I/O, so the gateway calls it off the loop), "yaml" hands out
 * its own copy of YAML text given once. Constructors and pg_config_port_free
 * are called from the host's or gateway's control thread. */
#ifndef PG_CONFIG_PORTS_H
#define PG_CONFIG_PORTS_H

#include <stddef.h>

#include "polyglot/ports.h"

/* Files bigger than this are refused (PG_ETOOBIG): a config is small, and
 * a huge file is more likely a wrong path than a config. */
#define PG_CONFIG_FILE_MAX (16u * 1024 * 1024)

/** A port that reads path (copied) at every load. PG_OK, PG_EINVAL or
 * PG_ENOMEM; the file is not opened until load. */
int pg_config_port_file_new(const char *path, pg_config_port_t *out);

/** A port that serves a copy of yaml[0..len). PG_OK, PG_EINVAL, PG_ENOMEM. */
int pg_config_port_yaml_new(const char *yaml, size_t len,
                            pg_config_port_t *out);

/* Reads the whole file at path into a fresh NUL-terminated buffer (*out,
 * pg__free it) of *outlen bytes; files of max bytes or more are refused
 * (PG_ETOOBIG). On failure err gets "<label>: <reason>" and the return is
 * PG_ENOENT, PG_EIO, PG_ETOOBIG or PG_ENOMEM. Blocking: off the loop. */
int pg__cfg_read_file(const char *path, const char *label, size_t max,
                      char **out, size_t *outlen, char *err, size_t errlen);

/** Destroys a port made by either constructor (or any port: calls its
 * destroy slot) and clears *port. NULL vt is a no-op. */
void pg_config_port_free(pg_config_port_t *port);

#endif
