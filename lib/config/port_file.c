/* port_file.c: the "file" config port: reads the YAML file at each load.
 * load does blocking file I/O (vtable blocking = true): the gateway calls
 * it off the event loop. One thread at a time per port. */
#include "config/ports.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"

typedef struct file_port {
    char *path;   /* owned */
    char *data;   /* owned: the last load, until the next load or destroy */
    size_t len;
} file_port_t;

static int file_init(void *self) { return PG_OK; }

static void file_destroy(void *self)
{
    file_port_t *fp = self;
    pg__free(fp->data);
    pg__free(fp->path);
    pg__free(fp);
}

int pg__cfg_read_file(const char *path, const char *label, size_t max,
                      char **out, size_t *outlen, char *err, size_t errlen)
{
    int rc = PG_OK;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "%s: cannot open: %s", label, strerror(errno));
        return errno == ENOENT ? PG_ENOENT : PG_EIO;
    }
    size_t cap = 4096, n = 0;
    buf = pg__malloc(cap);
    if (buf == NULL) {
        rc = PG_ENOMEM;
        goto out;
    }
    for (;;) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0 || n + 1 < cap) {
            if (ferror(f)) {
                snprintf(err, errlen, "%s: read failed: %s", label,
                         strerror(errno));
                rc = PG_EIO;
                goto out;
            }
            if (feof(f))
                break;
            continue;
        }
        if (cap >= max) {
            snprintf(err, errlen, "%s: larger than %zu bytes", label, max);
            rc = PG_ETOOBIG;
            goto out;
        }
        char *bigger = pg__realloc(buf, cap * 2);
        if (bigger == NULL) {
            rc = PG_ENOMEM;
            goto out;
        }
        buf = bigger;
        cap *= 2;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    buf = NULL;
out:
    if (rc == PG_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", label);
    pg__free(buf);
    fclose(f);
    return rc;
}

static int file_load(void *self, pg_config_source_t *out, char *err,
                     size_t errlen)
{
    file_port_t *fp = self;
    char *data = NULL;
    size_t len = 0;
    int rc = pg__cfg_read_file(fp->path, fp->path, PG_CONFIG_FILE_MAX, &data,
                               &len, err, errlen);
    if (rc != PG_OK)
        return rc;
    pg__free(fp->data);
    fp->data = data;
    fp->len = len;
    out->yaml = data;
    out->len = len;
    out->origin = fp->path;
    return PG_OK;
}

static const struct pg_config_vtable file_vtable = {
    .abi = PG_PORT_ABI_1,
    .name = "file",
    .blocking = true,
    .init = file_init,
    .destroy = file_destroy,
    .load = file_load,
    .watch = NULL, /* reload on change comes with hot reload */
};

int pg_config_port_file_new(const char *path, pg_config_port_t *out)
{
    if (path == NULL || path[0] == '\0' || out == NULL)
        return PG_EINVAL;
    file_port_t *fp = pg__calloc(1, sizeof(*fp));
    if (fp == NULL)
        return PG_ENOMEM;
    fp->path = pg__strdup(path);
    if (fp->path == NULL) {
        pg__free(fp);
        return PG_ENOMEM;
    }
    out->vt = &file_vtable;
    out->self = fp;
    return PG_OK;
}

void pg_config_port_free(pg_config_port_t *port)
{
    if (port == NULL || port->vt == NULL)
        return;
    port->vt->destroy(port->self);
    port->vt = NULL;
    port->self = NULL;
}
