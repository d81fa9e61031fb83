/* openai_chat_decode.c: Chat Completions request JSON -> pg_request_t.
 * Every error names the field the way OpenAI does ("messages[2].content[0]
 * .type") so clients see the same 400s they would from OpenAI. All output
 * lives in the caller's arena. Loop thread of the request. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/openai_chat.h"

struct dec {
    pg_arena_t *a;
    pg_openai_decode_err_t *err;
};

/* Dynamic arrays built while decoding; they grow in the arena. */
struct parts {
    pg_part_t *v;
    size_t n, cap;
};

#define PARAM_MAX 160

static int fail(struct dec *d, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Formats a parameter path into a PARAM_MAX buffer; an absurdly deep path
 * is cut, which only shortens an error message. */
static void pathf(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void pathf(char *dst, const char *fmt, ...)
{
    /* Paths are built for every field decoded, error or not, so this is
     * on the hot path: a tiny formatter for the two conversions paths
     * use (%s and %zu) instead of vsnprintf. */
    size_t n = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f != '\0' && n < PARAM_MAX - 1; f++) {
        if (f[0] == '%' && f[1] == 's') {
            const char *s = va_arg(ap, const char *);
            while (*s != '\0' && n < PARAM_MAX - 1)
                dst[n++] = *s++;
            f++;
        } else if (f[0] == '%' && f[1] == 'z' && f[2] == 'u') {
            char digits[24];
            size_t v = va_arg(ap, size_t), k = 0;
            do {
                digits[k++] = (char)('0' + v % 10);
                v /= 10;
            } while (v != 0);
            while (k > 0 && n < PARAM_MAX - 1)
                dst[n++] = digits[--k];
            f += 2;
        } else {
            dst[n++] = *f;
        }
    }
    va_end(ap);
    dst[n] = '\0';
}

static int fail(struct dec *d, const char *code, const char *param,
                const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    d->err->status = 400;
    d->err->message = pg_arena_strdup(d->a, pg_str_c(msg));
    d->err->param = param ? pg_arena_strdup(d->a, pg_str_c(param))
                          : PG_STR_NULL;
    d->err->code = pg_arena_strdup(d->a, pg_str_c(code));
    if (d->err->message.p == NULL || d->err->code.p == NULL ||
        (param && d->err->param.p == NULL))
        return PG_ENOMEM;
    return PG_EPARSE;
}

static const char *json_type_name(const cJSON *it)
{
    if (it == NULL || cJSON_IsNull(it))
        return "null";
    if (cJSON_IsBool(it))
        return "a boolean";
    if (cJSON_IsNumber(it)) {
        double v = it->valuedouble;
        return v == floor(v) && fabs(v) < 9e15 ? "an integer" : "a decimal";
    }
    if (cJSON_IsString(it))
        return "a string";
    if (cJSON_IsArray(it))
        return "an array";
    return "an object";
}

static int fail_type(struct dec *d, const char *param, const char *expected,
                     const cJSON *got)
{
    return fail(d, "invalid_type", param,
                "Invalid type for '%s': expected %s, but got %s instead.",
                param, expected, json_type_name(got));
}

static int fail_missing(struct dec *d, const char *param)
{
    return fail(d, "missing_required_parameter", param,
                "Missing required parameter: '%s'.", param);
}

static int copy(struct dec *d, pg_str_t s, pg_str_t *out)
{
    *out = pg_arena_strdup(d->a, s);
    return out->p ? PG_OK : PG_ENOMEM;
}

/* A present, non-null member (OpenAI treats null as "not given"). */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

static int get_string(struct dec *d, const cJSON *it, const char *param,
                      pg_str_t *out)
{
    if (!cJSON_IsString(it))
        return fail_type(d, param, "a string", it);
    return copy(d, pg_json_str(it), out);
}

static int parts_push(struct dec *d, struct parts *ps, pg_part_t **out)
{
    void *v = ps->v;
    if (pg_canon_grow(d->a, &v, ps->n, &ps->cap, sizeof(pg_part_t)))
        return PG_ENOMEM;
    ps->v = v;
    *out = &ps->v[ps->n++];
    memset(*out, 0, sizeof(**out));
    return PG_OK;
}

/* ---- content parts -------------------------------------------------------- */

static int decode_image(struct dec *d, const cJSON *part, const char *path,
                        pg_part_t *p)
{
    char param[PARAM_MAX];
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const cJSON *url = img;
    pathf(param, "%s.image_url", path);
    if (img == NULL)
        return fail_missing(d, param);
    if (cJSON_IsObject(img)) {
        url = cJSON_GetObjectItemCaseSensitive(img, "url");
        pathf(param, "%s.image_url.url", path);
        if (url == NULL)
            return fail_missing(d, param);
    }
    if (!cJSON_IsString(url))
        return fail_type(d, param, "a string", url);
    pg_str_t u = pg_json_str(url);
    p->kind = PG_PART_IMAGE;
    if (pg_str_starts_with(u, PG_STR("data:"))) {
        /* data:<media type>;base64,<data> */
        const char *comma = memchr(u.p, ',', u.n);
        const char *semi = memchr(u.p, ';', u.n);
        if (comma == NULL || semi == NULL || semi > comma ||
            !pg_str_eq(pg_str(semi, (size_t)(comma - semi)),
                       PG_STR(";base64")) ||
            semi == u.p + 5)
            return fail(d, "invalid_image_url", param,
                        "Invalid image URL: '%s'. Expected a base64 data URL "
                        "(data:<media type>;base64,<data>) or an http(s) URL.",
                        param);
        pg_str_t mt = pg_str(u.p + 5, (size_t)(semi - (u.p + 5)));
        pg_str_t data = pg_str(comma + 1, u.n - (size_t)(comma + 1 - u.p));
        if (copy(d, mt, &p->image.media_type) || copy(d, data, &p->image.data))
            return PG_ENOMEM;
        return PG_OK;
    }
    if (!pg_str_starts_with(u, PG_STR("http://")) &&
        !pg_str_starts_with(u, PG_STR("https://")))
        return fail(d, "invalid_image_url", param,
                    "Invalid image URL: '%s'. Expected a base64 data URL "
                    "(data:<media type>;base64,<data>) or an http(s) URL.",
                    param);
    return copy(d, u, &p->image.url);
}

/* Which part types a role's content array may hold. */
enum { ALLOW_IMAGE = 1, ALLOW_REFUSAL = 2 };

static int decode_content(struct dec *d, const cJSON *content,
                          const char *path, int allow, struct parts *ps)
{
    char param[PARAM_MAX];
    pg_part_t *p;
    int rc;
    if (cJSON_IsString(content)) {
        if ((rc = parts_push(d, ps, &p)))
            return rc;
        p->kind = PG_PART_TEXT;
        return copy(d, pg_json_str(content), &p->text);
    }
    if (!cJSON_IsArray(content))
        return fail_type(d, path, "one of a string or array of objects",
                         content);
    size_t j = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, content)
    {
        char ppath[PARAM_MAX];
        pathf(ppath, "%s[%zu]", path, j++);
        if (!cJSON_IsObject(it))
            return fail_type(d, ppath, "an object", it);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
        pathf(param, "%s.type", ppath);
        if (type == NULL)
            return fail_missing(d, param);
        if (!cJSON_IsString(type))
            return fail_type(d, param, "a string", type);
        pg_str_t t = pg_json_str(type);
        if ((rc = parts_push(d, ps, &p)))
            return rc;
        if (pg_str_eqc(t, "text") ||
            ((allow & ALLOW_REFUSAL) && pg_str_eqc(t, "refusal"))) {
            bool refusal = pg_str_eqc(t, "refusal");
            const char *key = refusal ? "refusal" : "text";
            pathf(param, "%s.%s", ppath, key);
            const cJSON *txt = cJSON_GetObjectItemCaseSensitive(it, key);
            if (txt == NULL)
                return fail_missing(d, param);
            p->kind = refusal ? PG_PART_REFUSAL : PG_PART_TEXT;
            if ((rc = get_string(d, txt, param, &p->text)))
                return rc;
        } else if ((allow & ALLOW_IMAGE) && pg_str_eqc(t, "image_url")) {
            if ((rc = decode_image(d, it, ppath, p)))
                return rc;
        } else {
            return fail(d, "invalid_value", param,
                        "Invalid value: '%.*s'. Supported values are: %s.",
                        (int)t.n, t.p,
                        (allow & ALLOW_IMAGE)     ? "'text' and 'image_url'"
                        : (allow & ALLOW_REFUSAL) ? "'text' and 'refusal'"
                                                  : "'text'");
        }
    }
    return PG_OK;
}

/* ---- messages ---------------------------------------------------------------- */

static int decode_tool_calls(struct dec *d, const cJSON *tcs,
                             const char *path, struct parts *ps)
{
    char param[PARAM_MAX];
    int rc;
    if (!cJSON_IsArray(tcs))
        return fail_type(d, path, "an array", tcs);
    size_t j = 0;
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs)
    {
        char tpath[PARAM_MAX];
        pg_part_t *p;
        pathf(tpath, "%s[%zu]", path, j++);
        if (!cJSON_IsObject(tc))
            return fail_type(d, tpath, "an object", tc);
        if ((rc = parts_push(d, ps, &p)))
            return rc;
        p->kind = PG_PART_TOOL_CALL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tc, "id");
        pathf(param, "%s.id", tpath);
        if (id == NULL)
            return fail_missing(d, param);
        if ((rc = get_string(d, id, param, &p->tool_call.id)))
            return rc;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
        pathf(param, "%s.function", tpath);
        if (fn == NULL)
            return fail_missing(d, param);
        if (!cJSON_IsObject(fn))
            return fail_type(d, param, "an object", fn);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        pathf(param, "%s.function.name", tpath);
        if (name == NULL)
            return fail_missing(d, param);
        if ((rc = get_string(d, name, param, &p->tool_call.name)))
            return rc;
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        pathf(param, "%s.function.arguments", tpath);
        if (args == NULL)
            return fail_missing(d, param);
        if ((rc = get_string(d, args, param, &p->tool_call.arguments)))
            return rc;
    }
    return PG_OK;
}

static int decode_message(struct dec *d, const cJSON *m, size_t i,
                          pg_message_t *out, struct parts *system)
{
    char path[PARAM_MAX], param[PARAM_MAX];
    struct parts ps = {0};
    int rc;
    pathf(path, "messages[%zu]", i);
    if (!cJSON_IsObject(m))
        return fail_type(d, path, "an object", m);
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
    pathf(param, "%s.role", path);
    if (role == NULL)
        return fail_missing(d, param);
    if (!cJSON_IsString(role))
        return fail_type(d, param, "a string", role);
    pg_str_t r = pg_json_str(role);
    const cJSON *content = member(m, "content");
    pathf(param, "%s.content", path);
    const cJSON *name = member(m, "name");
    if (name != NULL) {
        char np[PARAM_MAX];
        pathf(np, "%s.name", path);
        if ((rc = get_string(d, name, np, &out->name)))
            return rc;
    }
    if (pg_str_eqc(r, "system") || pg_str_eqc(r, "developer")) {
        if (content == NULL)
            return fail_missing(d, param);
        /* System text goes to request.system in order; the message itself
         * is not repeated in messages (flagged by nparts == 0 below). */
        out->role = PG_ROLE_SYSTEM;
        return decode_content(d, content, param, 0, system);
    }
    if (pg_str_eqc(r, "user")) {
        out->role = PG_ROLE_USER;
        if (content == NULL)
            return fail_missing(d, param);
        rc = decode_content(d, content, param, ALLOW_IMAGE, &ps);
    } else if (pg_str_eqc(r, "assistant")) {
        out->role = PG_ROLE_ASSISTANT;
        rc = PG_OK;
        if (content != NULL)
            rc = decode_content(d, content, param, ALLOW_REFUSAL, &ps);
        const cJSON *refusal = member(m, "refusal");
        if (rc == PG_OK && refusal != NULL) {
            pg_part_t *p;
            char rp[PARAM_MAX];
            pathf(rp, "%s.refusal", path);
            if ((rc = parts_push(d, &ps, &p)) == PG_OK) {
                p->kind = PG_PART_REFUSAL;
                rc = get_string(d, refusal, rp, &p->text);
            }
        }
        const cJSON *tcs = member(m, "tool_calls");
        if (rc == PG_OK && tcs != NULL) {
            char tp[PARAM_MAX];
            pathf(tp, "%s.tool_calls", path);
            rc = decode_tool_calls(d, tcs, tp, &ps);
        }
    } else if (pg_str_eqc(r, "tool")) {
        out->role = PG_ROLE_TOOL;
        char tp[PARAM_MAX];
        pathf(tp, "%s.tool_call_id", path);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        if (id == NULL)
            return fail_missing(d, tp);
        if (content == NULL)
            return fail_missing(d, param);
        struct parts inner = {0};
        pg_part_t *p;
        if ((rc = parts_push(d, &ps, &p)))
            return rc;
        p->kind = PG_PART_TOOL_RESULT;
        if ((rc = get_string(d, id, tp, &p->tool_result.call_id)) ||
            (rc = decode_content(d, content, param, 0, &inner)))
            return rc;
        p->tool_result.content = inner.v;
        p->tool_result.ncontent = inner.n;
    } else {
        pathf(param, "%s.role", path);
        return fail(d, "invalid_value", param,
                    "Invalid value: '%.*s'. Supported values are: 'system', "
                    "'assistant', 'user', 'tool', and 'developer'.",
                    (int)r.n, r.p);
    }
    if (rc != PG_OK)
        return rc;
    out->parts = ps.v;
    out->nparts = ps.n;
    return PG_OK;
}

static int decode_messages(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (msgs == NULL || cJSON_IsNull(msgs))
        return fail_missing(d, "messages");
    if (!cJSON_IsArray(msgs))
        return fail_type(d, "messages", "an array", msgs);
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    if (n == 0)
        return fail(d, "empty_array", "messages",
                    "Invalid 'messages': empty array. Expected an array with "
                    "minimum length 1, but got an empty array instead.");
    pg_message_t *out = pg_arena_calloc(d->a, n, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    struct parts system = {0};
    size_t i = 0, k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        int rc = decode_message(d, m, i++, &out[k], &system);
        if (rc != PG_OK)
            return rc;
        if (out[k].role != PG_ROLE_SYSTEM)
            k++;
        else
            memset(&out[k], 0, sizeof(out[k]));
    }
    q->messages = out;
    q->nmessages = k;
    q->system = system.v;
    q->nsystem = system.n;
    return PG_OK;
}

/* ---- tools ------------------------------------------------------------------ */

static int decode_tools(struct dec *d, const cJSON *tools, pg_request_t *q)
{
    char path[PARAM_MAX], param[PARAM_MAX];
    int rc;
    if (!cJSON_IsArray(tools))
        return fail_type(d, "tools", "an array", tools);
    size_t n = (size_t)cJSON_GetArraySize(tools);
    pg_tool_t *out = pg_arena_calloc(d->a, n ? n : 1, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        pg_tool_t *o = &out[i];
        pathf(path, "tools[%zu]", i++);
        if (!cJSON_IsObject(t))
            return fail_type(d, path, "an object", t);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(t, "type");
        pathf(param, "%s.type", path);
        if (type == NULL)
            return fail_missing(d, param);
        if (!cJSON_IsString(type))
            return fail_type(d, param, "a string", type);
        if (!pg_str_eqc(pg_json_str(type), "function"))
            return fail(d, "invalid_value", param,
                        "Invalid value: '%s'. Supported values are: "
                        "'function'.", type->valuestring);
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        pathf(param, "%s.function", path);
        if (fn == NULL)
            return fail_missing(d, param);
        if (!cJSON_IsObject(fn))
            return fail_type(d, param, "an object", fn);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        pathf(param, "%s.function.name", path);
        if (name == NULL)
            return fail_missing(d, param);
        if ((rc = get_string(d, name, param, &o->name)))
            return rc;
        const cJSON *desc = member(fn, "description");
        pathf(param, "%s.function.description", path);
        if (desc && (rc = get_string(d, desc, param, &o->description)))
            return rc;
        const cJSON *params = member(fn, "parameters");
        if (params != NULL) {
            pathf(param, "%s.function.parameters", path);
            if (!cJSON_IsObject(params))
                return fail_type(d, param, "an object", params);
            char *txt = cJSON_PrintUnformatted(params);
            if (txt == NULL)
                return PG_ENOMEM;
            rc = copy(d, pg_str_c(txt), &o->parameters);
            cJSON_free(txt);
            if (rc)
                return rc;
        }
    }
    q->tools = out;
    q->ntools = n;
    return PG_OK;
}

static int decode_tool_choice(struct dec *d, const cJSON *tc, pg_request_t *q)
{
    if (cJSON_IsString(tc)) {
        pg_str_t s = pg_json_str(tc);
        if (pg_str_eqc(s, "auto"))
            q->tool_choice = PG_TOOL_CHOICE_AUTO;
        else if (pg_str_eqc(s, "none"))
            q->tool_choice = PG_TOOL_CHOICE_NONE;
        else if (pg_str_eqc(s, "required"))
            q->tool_choice = PG_TOOL_CHOICE_REQUIRED;
        else
            return fail(d, "invalid_value", "tool_choice",
                        "Invalid value: '%s'. Supported values are: 'none', "
                        "'auto', and 'required'.", tc->valuestring);
        return PG_OK;
    }
    if (!cJSON_IsObject(tc))
        return fail_type(d, "tool_choice", "one of a string or object", tc);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(tc, "type");
    if (type == NULL)
        return fail_missing(d, "tool_choice.type");
    if (!cJSON_IsString(type))
        return fail_type(d, "tool_choice.type", "a string", type);
    if (!pg_str_eqc(pg_json_str(type), "function"))
        return fail(d, "invalid_value", "tool_choice.type",
                    "Invalid value: '%s'. Supported values are: 'function'.",
                    type->valuestring);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    if (fn == NULL)
        return fail_missing(d, "tool_choice.function");
    if (!cJSON_IsObject(fn))
        return fail_type(d, "tool_choice.function", "an object", fn);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (name == NULL)
        return fail_missing(d, "tool_choice.function.name");
    q->tool_choice = PG_TOOL_CHOICE_NAMED;
    return get_string(d, name, "tool_choice.function.name",
                      &q->tool_choice_name);
}

/* ---- scalars ---------------------------------------------------------------- */

static int get_number(struct dec *d, const cJSON *it, const char *param,
                      double min, double max, double *out)
{
    if (!cJSON_IsNumber(it))
        return fail_type(d, param, "a decimal", it);
    double v = it->valuedouble;
    if (v < min)
        return fail(d, "decimal_below_min_value", param,
                    "Invalid '%s': decimal below minimum value. Expected a "
                    "value >= %g, but got %g instead.", param, min, v);
    if (v > max)
        return fail(d, "decimal_above_max_value", param,
                    "Invalid '%s': decimal above maximum value. Expected a "
                    "value <= %g, but got %g instead.", param, max, v);
    *out = v;
    return PG_OK;
}

static int get_int(struct dec *d, const cJSON *it, const char *param,
                   int64_t min, int64_t *out)
{
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        fabs(it->valuedouble) > 9.2e18)
        return fail_type(d, param, "an integer", it);
    int64_t v = (int64_t)it->valuedouble;
    if (v < min)
        return fail(d, "integer_below_min_value", param,
                    "Invalid '%s': integer below minimum value. Expected a "
                    "value >= %lld, but got %lld instead.", param,
                    (long long)min, (long long)v);
    *out = v;
    return PG_OK;
}

static int get_bool(struct dec *d, const cJSON *it, const char *param,
                    bool *out)
{
    if (!cJSON_IsBool(it))
        return fail_type(d, param, "a boolean", it);
    *out = cJSON_IsTrue(it);
    return PG_OK;
}

static int decode_stop(struct dec *d, const cJSON *it, pg_request_t *q)
{
    pg_str_t *out = pg_arena_calloc(d->a, PG_OPENAI_MAX_STOP,
                                    sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    if (cJSON_IsString(it)) {
        q->stop = out;
        q->nstop = 1;
        return copy(d, pg_json_str(it), &out[0]);
    }
    if (!cJSON_IsArray(it))
        return fail_type(d, "stop", "one of a string or array of strings",
                         it);
    size_t n = (size_t)cJSON_GetArraySize(it);
    if (n > PG_OPENAI_MAX_STOP)
        return fail(d, "array_above_max_length", "stop",
                    "Invalid 'stop': array too long. Expected an array with "
                    "maximum length %d, but got an array with length %zu "
                    "instead.", PG_OPENAI_MAX_STOP, n);
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, it)
    {
        char param[PARAM_MAX];
        pathf(param, "stop[%zu]", i);
        int rc = get_string(d, s, param, &out[i++]);
        if (rc)
            return rc;
    }
    q->stop = out;
    q->nstop = n;
    return PG_OK;
}

static int decode_response_format(struct dec *d, const cJSON *it,
                                  pg_request_t *q)
{
    if (!cJSON_IsObject(it))
        return fail_type(d, "response_format", "an object", it);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(it, "type");
    if (type == NULL)
        return fail_missing(d, "response_format.type");
    if (!cJSON_IsString(type))
        return fail_type(d, "response_format.type", "a string", type);
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "text")) {
        q->response_format = PG_FORMAT_TEXT;
    } else if (pg_str_eqc(t, "json_object")) {
        q->response_format = PG_FORMAT_JSON_OBJECT;
    } else if (pg_str_eqc(t, "json_schema")) {
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "json_schema");
        if (js == NULL)
            return fail_missing(d, "response_format.json_schema");
        if (!cJSON_IsObject(js))
            return fail_type(d, "response_format.json_schema", "an object",
                             js);
        char *txt = cJSON_PrintUnformatted(js);
        if (txt == NULL)
            return PG_ENOMEM;
        int rc = copy(d, pg_str_c(txt), &q->response_schema);
        cJSON_free(txt);
        if (rc)
            return rc;
        q->response_format = PG_FORMAT_JSON_SCHEMA;
    } else {
        return fail(d, "invalid_value", "response_format.type",
                    "Invalid value: '%s'. Supported values are: 'text', "
                    "'json_object', and 'json_schema'.", type->valuestring);
    }
    return PG_OK;
}

/* The top-level keys the decoder maps; any other one is recorded in
 * request.unmapped. */
static const char *const known_keys[] = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls",
    "temperature", "top_p", "presence_penalty", "frequency_penalty", "seed",
    "n", "max_tokens", "max_completion_tokens", "stop", "stream",
    "stream_options", "response_format", "reasoning_effort", "user",
};

static bool is_known(const char *k)
{
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
        if (strcmp(k, known_keys[i]) == 0)
            return true;
    }
    return false;
}

static int decode_unmapped(struct dec *d, const cJSON *root, pg_request_t *q)
{
    size_t n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) n += !is_known(it->string);
    if (n == 0)
        return PG_OK;
    pg_str_t *out = pg_arena_calloc(d->a, n, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    size_t k = 0;
    cJSON_ArrayForEach(it, root)
    {
        if (!is_known(it->string) &&
            copy(d, pg_str_c(it->string), &out[k++]))
            return PG_ENOMEM;
    }
    q->unmapped = out;
    q->nunmapped = n;
    return PG_OK;
}

/* Sampling and limits: each sets its PG_SET_* bit only when given. */
static int decode_sampling(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = member(root, "temperature"))) {
        if ((rc = get_number(d, it, "temperature", 0, 2, &q->temperature)))
            return rc;
        q->set |= PG_SET_TEMPERATURE;
    }
    if ((it = member(root, "top_p"))) {
        if ((rc = get_number(d, it, "top_p", 0, 1, &q->top_p)))
            return rc;
        q->set |= PG_SET_TOP_P;
    }
    if ((it = member(root, "presence_penalty"))) {
        if ((rc = get_number(d, it, "presence_penalty", -2, 2,
                             &q->presence_penalty)))
            return rc;
        q->set |= PG_SET_PRESENCE_PENALTY;
    }
    if ((it = member(root, "frequency_penalty"))) {
        if ((rc = get_number(d, it, "frequency_penalty", -2, 2,
                             &q->frequency_penalty)))
            return rc;
        q->set |= PG_SET_FREQUENCY_PENALTY;
    }
    if ((it = member(root, "seed"))) {
        if ((rc = get_int(d, it, "seed", INT64_MIN, &q->seed)))
            return rc;
        q->set |= PG_SET_SEED;
    }
    if ((it = member(root, "n"))) {
        if ((rc = get_int(d, it, "n", 1, &q->n)))
            return rc;
        q->set |= PG_SET_N;
    }
    if ((it = member(root, "max_tokens"))) {
        if ((rc = get_int(d, it, "max_tokens", 1, &q->max_tokens)))
            return rc;
        q->set |= PG_SET_MAX_TOKENS;
    }
    /* The newer name wins when a client sends both. */
    if ((it = member(root, "max_completion_tokens"))) {
        if ((rc = get_int(d, it, "max_completion_tokens", 1,
                          &q->max_tokens)))
            return rc;
        q->set |= PG_SET_MAX_TOKENS;
    }
    if ((it = member(root, "parallel_tool_calls"))) {
        if ((rc = get_bool(d, it, "parallel_tool_calls",
                           &q->parallel_tool_calls)))
            return rc;
        q->set |= PG_SET_PARALLEL_TOOL_CALLS;
    }
    return PG_OK;
}

static int decode_options(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = member(root, "model")) &&
        (rc = get_string(d, it, "model", &q->model)))
        return rc;
    if ((it = member(root, "tools")) && (rc = decode_tools(d, it, q)))
        return rc;
    if ((it = member(root, "tool_choice")) &&
        (rc = decode_tool_choice(d, it, q)))
        return rc;
    if ((it = member(root, "stop")) && (rc = decode_stop(d, it, q)))
        return rc;
    if ((it = member(root, "stream")) &&
        (rc = get_bool(d, it, "stream", &q->stream)))
        return rc;
    if ((it = member(root, "stream_options"))) {
        if (!cJSON_IsObject(it))
            return fail_type(d, "stream_options", "an object", it);
        if (!q->stream)
            return fail(d, "invalid_value", "stream_options",
                        "The 'stream_options' parameter is only allowed "
                        "when 'stream' is enabled.");
        const cJSON *iu = member(it, "include_usage");
        if (iu && (rc = get_bool(d, iu, "stream_options.include_usage",
                                 &q->include_usage)))
            return rc;
    }
    if ((it = member(root, "response_format")) &&
        (rc = decode_response_format(d, it, q)))
        return rc;
    if ((it = member(root, "reasoning_effort")) &&
        (rc = get_string(d, it, "reasoning_effort", &q->reasoning_effort)))
        return rc;
    if ((it = member(root, "user")) &&
        (rc = get_string(d, it, "user", &q->user)))
        return rc;
    return PG_OK;
}

int pg_openai_chat_decode(pg_arena_t *arena, const cJSON *root,
                          pg_request_t *out, pg_openai_decode_err_t *err)
{
    struct dec d = {arena, err};
    int rc;
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (!cJSON_IsObject(root))
        return fail(&d, "invalid_type", NULL,
                    "Invalid request body: expected a JSON object, but got "
                    "%s instead.", json_type_name(root));
    if ((rc = decode_messages(&d, root, out)) ||
        (rc = decode_options(&d, root, out)) ||
        (rc = decode_sampling(&d, root, out)) ||
        (rc = decode_unmapped(&d, root, out)))
        return rc;
    return PG_OK;
}
