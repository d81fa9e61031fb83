/* decode_util.c: the helpers every decoder shares (see decode_util.h):
 * field paths, typed getters that leave the wording of a refusal to the
 * dialect, arena copies, part lists, unmapped keys. Loop thread of the
 * request. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "canon/response.h"
#include "codec/decode_util.h"

void pg_dec_pathf(char *dst, const char *fmt, ...)
{
    size_t n = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0' && n < PG_DEC_PATH_MAX - 1; f++) {
        if (f[0] == '%' && f[1] == 's') {
            const char *s = va_arg(ap, const char *);
            while (*s != '\0' && n < PG_DEC_PATH_MAX - 1)
                dst[n++] = *s++;
            f++;
        } else if (f[0] == '%' && f[1] == 'z' && f[2] == 'u') {
            char digits[24];
            size_t v = va_arg(ap, size_t), k = 0;
            do {
                digits[k++] = (char)('0' + v % 10);
                v /= 10;
            } while (v != 0);
            while (k > 0 && n < PG_DEC_PATH_MAX - 1)
                dst[n++] = digits[--k];
            f += 2;
        } else {
            dst[n++] = *f;
        }
    }
    va_end(ap);
    dst[n] = '\0';
}

const cJSON *pg_dec_member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

int pg_dec_copy(pg_arena_t *a, pg_str_t s, pg_str_t *out)
{
    *out = pg_arena_strdup(a, s);
    return out->p ? PG_OK : PG_ENOMEM;
}

int pg_dec_print_json(pg_arena_t *a, const cJSON *it, pg_str_t *out)
{
    char *txt = cJSON_PrintUnformatted(it);
    if (txt == NULL)
        return PG_ENOMEM;
    int rc = pg_dec_copy(a, pg_str_c(txt), out);
    cJSON_free(txt);
    return rc;
}

int pg_dec_parts_push(pg_arena_t *a, pg_dec_parts_t *ps, pg_part_t **out)
{
    void *v = ps->v;
    if (pg_canon_grow(a, &v, ps->n, &ps->cap, sizeof(pg_part_t)))
        return PG_ENOMEM;
    ps->v = v;
    *out = &ps->v[ps->n++];
    memset(*out, 0, sizeof(**out));
    return PG_OK;
}

static bool is_known(const char *k, const char *const *known, size_t nknown)
{
    for (size_t i = 0; i < nknown; i++) {
        if (strcmp(k, known[i]) == 0)
            return true;
    }
    return false;
}

int pg_dec_unmapped(pg_arena_t *a, const cJSON *root,
                    const char *const *known, size_t nknown,
                    const pg_str_t **out, size_t *n)
{
    size_t count = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) count += !is_known(it->string, known, nknown);
    if (count == 0)
        return PG_OK;
    pg_str_t *v = pg_arena_calloc(a, count, sizeof(*v));
    if (v == NULL)
        return PG_ENOMEM;
    size_t k = 0;
    cJSON_ArrayForEach(it, root)
    {
        if (!is_known(it->string, known, nknown) &&
            pg_dec_copy(a, pg_str_c(it->string), &v[k++]))
            return PG_ENOMEM;
    }
    *out = v;
    *n = count;
    return PG_OK;
}

bool pg_dec_is(const cJSON *it, pg_dec_kind_t kind)
{
    switch (kind) {
    case PG_DEC_STRING:
        return cJSON_IsString(it);
    case PG_DEC_NUMBER:
    case PG_DEC_INTEGER:
        return cJSON_IsNumber(it);
    case PG_DEC_BOOLEAN:
        return cJSON_IsBool(it);
    case PG_DEC_OBJECT:
        return cJSON_IsObject(it);
    case PG_DEC_ARRAY:
        return cJSON_IsArray(it);
    case PG_DEC_KINDS:
        break;
    }
    return false;
}

static int wrong_type(pg_dec_t *d, const char *path, pg_dec_kind_t kind,
                      const cJSON *got)
{
    return d->dialect->type(d, path, d->dialect->expected[kind], got);
}

int pg_dec_expect(pg_dec_t *d, const cJSON *it, const char *path,
                  pg_dec_kind_t kind)
{
    return pg_dec_is(it, kind) ? PG_OK : wrong_type(d, path, kind, it);
}

void *pg_dec_array(pg_dec_t *d, const cJSON *arr, const char *path,
                   size_t elem, size_t *n, int *rc)
{
    if ((*rc = pg_dec_expect(d, arr, path, PG_DEC_ARRAY)) != PG_OK)
        return NULL;
    *n = (size_t)cJSON_GetArraySize(arr);
    void *out = pg_arena_calloc(d->a, *n ? *n : 1, elem);
    if (out == NULL)
        *rc = PG_ENOMEM;
    return out;
}

int pg_dec_field(pg_dec_t *d, const cJSON *obj, const char *key,
                 const char *path, pg_dec_kind_t kind, const cJSON **out)
{
    const cJSON *it = d->dialect->null_is_missing
                          ? pg_dec_member(obj, key)
                          : cJSON_GetObjectItemCaseSensitive(obj, key);
    if (it == NULL)
        return d->dialect->missing(d, path);
    if (!pg_dec_is(it, kind))
        return wrong_type(d, path, kind, it);
    *out = it;
    return PG_OK;
}

int pg_dec_string(pg_dec_t *d, const cJSON *it, const char *path,
                  pg_str_t *out)
{
    if (!cJSON_IsString(it))
        return wrong_type(d, path, PG_DEC_STRING, it);
    return pg_dec_copy(d->a, pg_json_str(it), out);
}

int pg_dec_req_string(pg_dec_t *d, const cJSON *obj, const char *parent,
                      const char *key, pg_str_t *out)
{
    char path[PG_DEC_PATH_MAX];
    const cJSON *it;
    pg_dec_pathf(path, "%s.%s", parent, key);
    int rc = pg_dec_field(d, obj, key, path, PG_DEC_STRING, &it);
    return rc ? rc : pg_dec_copy(d->a, pg_json_str(it), out);
}

int pg_dec_number(pg_dec_t *d, const cJSON *it, const char *path,
                  double min, double max, double *out)
{
    if (!cJSON_IsNumber(it) ||
        (d->dialect->finite_numbers && !isfinite(it->valuedouble)))
        return wrong_type(d, path, PG_DEC_NUMBER, it);
    double v = it->valuedouble;
    if (v < min)
        return d->dialect->range(d, path, PG_DEC_NUMBER, true, min, v);
    if (v > max)
        return d->dialect->range(d, path, PG_DEC_NUMBER, false, max, v);
    *out = v;
    return PG_OK;
}

int pg_dec_int(pg_dec_t *d, const cJSON *it, const char *path, int64_t min,
               int64_t *out)
{
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        fabs(it->valuedouble) > d->dialect->int_max_abs)
        return wrong_type(d, path, PG_DEC_INTEGER, it);
    int64_t v = (int64_t)it->valuedouble;
    if (v < min)
        return d->dialect->range(d, path, PG_DEC_INTEGER, true, (double)min,
                                 (double)v);
    *out = v;
    return PG_OK;
}

int pg_dec_bool(pg_dec_t *d, const cJSON *it, const char *path, bool *out)
{
    if (!cJSON_IsBool(it))
        return wrong_type(d, path, PG_DEC_BOOLEAN, it);
    *out = cJSON_IsTrue(it);
    return PG_OK;
}
