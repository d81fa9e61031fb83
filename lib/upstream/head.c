/* head.c: one upstream response head, collected piece by piece (see
 * head.h). Loop thread of the owning transfer. */
#include "upstream/head.h"

#include "base/alloc.h"

void pg__uphead_init(pg_uphead_t *h)
{
    *h = (pg_uphead_t){0};
    pg_buf_init(&h->buf, PG_UPHEAD_MAX_BYTES);
}

void pg__uphead_free(pg_uphead_t *h)
{
    pg_buf_free(&h->buf);
    pg__free(h->off);
    h->off = NULL;
    h->n = h->cap = 0;
}

void pg__uphead_reset(pg_uphead_t *h)
{
    pg_buf_reset(&h->buf);
    h->n = 0;
    h->status = 0;
    h->in_value = false;
}

static int new_line(pg_uphead_t *h)
{
    if (h->n == PG_UPHEAD_MAX_LINES)
        return PG_ETOOBIG;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct pg_uphead_off *o = pg__realloc(h->off, cap * sizeof *o);
        if (o == NULL)
            return PG_ENOMEM;
        h->off = o;
        h->cap = cap;
    }
    uint32_t at = (uint32_t)h->buf.n;
    h->off[h->n++] = (struct pg_uphead_off){at, 0, at, 0};
    h->in_value = false;
    return PG_OK;
}

int pg__uphead_name(pg_uphead_t *h, const char *p, size_t n)
{
    int rc;

    if ((h->n == 0 || h->in_value) && (rc = new_line(h)) != PG_OK)
        return rc;
    if ((rc = pg_buf_append(&h->buf, p, n)) != PG_OK)
        return rc;
    struct pg_uphead_off *o = &h->off[h->n - 1];
    o->kn += (uint32_t)n;
    o->vo = o->ko + o->kn;
    return PG_OK;
}

int pg__uphead_value(pg_uphead_t *h, const char *p, size_t n)
{
    int rc;

    if (h->n == 0 && (rc = new_line(h)) != PG_OK) /* a value without name */
        return rc;
    if ((rc = pg_buf_append(&h->buf, p, n)) != PG_OK)
        return rc;
    h->off[h->n - 1].vn += (uint32_t)n;
    h->in_value = true;
    return PG_OK;
}

void pg__uphead_value_done(pg_uphead_t *h)
{
    if (h->n == 0)
        return;
    struct pg_uphead_off *o = &h->off[h->n - 1];
    while (o->vn > 0 && (h->buf.p[o->vo + o->vn - 1] == ' ' ||
                         h->buf.p[o->vo + o->vn - 1] == '\t'))
        o->vn--;
    h->in_value = true;
}

int pg__uphead_add(pg_uphead_t *h, const char *k, size_t kn, const char *v,
                   size_t vn)
{
    int rc = new_line(h);

    if (rc == PG_OK)
        rc = pg__uphead_name(h, k, kn);
    if (rc == PG_OK)
        rc = pg__uphead_value(h, v, vn);
    return rc;
}

int pg__uphead_kv(const pg_uphead_t *h, pg_kv_t *buf, size_t cap,
                  pg_kv_t **out)
{
    pg_kv_t *kv = buf;

    *out = buf;
    if (h->n > cap && (kv = pg__malloc(h->n * sizeof *kv)) == NULL)
        return PG_ENOMEM;
    const char *b = h->buf.p ? h->buf.p : ""; /* only empty lines so far */
    for (size_t i = 0; i < h->n; i++) {
        const struct pg_uphead_off *o = &h->off[i];
        kv[i].key = (pg_str_t){b + o->ko, o->kn};
        kv[i].value = (pg_str_t){b + o->vo, o->vn};
    }
    *out = kv;
    return PG_OK;
}

void pg__uphead_kv_free(pg_kv_t *kv, const pg_kv_t *buf)
{
    if (kv != buf)
        pg__free(kv);
}
