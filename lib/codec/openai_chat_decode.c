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
#include "codec/decode_util.h"
#include "codec/openai_chat.h"

static int fail(pg_dec_t *d, const char *code, const char *param,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int fail(pg_dec_t *d, const char *code, const char *param,
                const char *fmt, ...)
{
    pg_openai_decode_err_t *e = d->err;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->status = 400;
    e->message = pg_arena_strdup(d->a, pg_str_c(msg));
    e->param = param ? pg_arena_strdup(d->a, pg_str_c(param)) : PG_STR_NULL;
    e->code = pg_arena_strdup(d->a, pg_str_c(code));
    if (e->message.p == NULL || e->code.p == NULL ||
        (param && e->param.p == NULL))
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

static int fail_type(pg_dec_t *d, const char *param, const char *expected,
                     const cJSON *got)
{
    return fail(d, "invalid_type", param,
                "Invalid type for '%s': expected %s, but got %s instead.",
                param, expected, json_type_name(got));
}

static int fail_missing(pg_dec_t *d, const char *param)
{
    return fail(d, "missing_required_parameter", param,
                "Missing required parameter: '%s'.", param);
}

static int fail_range(pg_dec_t *d, const char *param, pg_dec_kind_t kind,
                      bool below, double bound, double got)
{
    if (kind == PG_DEC_INTEGER)
        return fail(d, "integer_below_min_value", param,
                    "Invalid '%s': integer below minimum value. Expected a "
                    "value >= %lld, but got %lld instead.", param,
                    (long long)bound, (long long)got);
    if (below)
        return fail(d, "decimal_below_min_value", param,
                    "Invalid '%s': decimal below minimum value. Expected a "
                    "value >= %g, but got %g instead.", param, bound, got);
    return fail(d, "decimal_above_max_value", param,
                "Invalid '%s': decimal above maximum value. Expected a "
                "value <= %g, but got %g instead.", param, bound, got);
}

/* OpenAI's wording. A required member sent as null is "got null", and a
 * number too large for its field (1e999) is out of range. */
static const pg_dec_dialect_t openai_dialect = {
    .expected = {[PG_DEC_STRING] = "a string",
                 [PG_DEC_NUMBER] = "a decimal",
                 [PG_DEC_INTEGER] = "an integer",
                 [PG_DEC_BOOLEAN] = "a boolean",
                 [PG_DEC_OBJECT] = "an object",
                 [PG_DEC_ARRAY] = "an array"},
    .missing = fail_missing,
    .type = fail_type,
    .range = fail_range,
    .int_max_abs = 9.2e18,
    .finite_numbers = false,
    .null_is_missing = false,
};

/* ---- content parts -------------------------------------------------------- */

static int decode_image(pg_dec_t *d, const cJSON *part, const char *path,
                        pg_part_t *p)
{
    char param[PG_DEC_PATH_MAX];
    int rc;
    const cJSON *img = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const cJSON *url = img;
    pg_dec_pathf(param, "%s.image_url", path);
    if (img == NULL)
        return fail_missing(d, param);
    if (cJSON_IsObject(img)) {
        url = cJSON_GetObjectItemCaseSensitive(img, "url");
        pg_dec_pathf(param, "%s.image_url.url", path);
        if (url == NULL)
            return fail_missing(d, param);
    }
    if ((rc = pg_dec_expect(d, url, param, PG_DEC_STRING)))
        return rc;
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
        if (pg_dec_copy(d->a, mt, &p->image.media_type) ||
            pg_dec_copy(d->a, data, &p->image.data))
            return PG_ENOMEM;
        return PG_OK;
    }
    if (!pg_str_starts_with(u, PG_STR("http://")) &&
        !pg_str_starts_with(u, PG_STR("https://")))
        return fail(d, "invalid_image_url", param,
                    "Invalid image URL: '%s'. Expected a base64 data URL "
                    "(data:<media type>;base64,<data>) or an http(s) URL.",
                    param);
    return pg_dec_copy(d->a, u, &p->image.url);
}

/* Which part types a role's content array may hold. */
enum { ALLOW_IMAGE = 1, ALLOW_REFUSAL = 2 };

static int decode_content(pg_dec_t *d, const cJSON *content,
                          const char *path, int allow, pg_dec_parts_t *ps)
{
    char param[PG_DEC_PATH_MAX];
    pg_part_t *p;
    int rc;
    if (cJSON_IsString(content)) {
        if ((rc = pg_dec_parts_push(d->a, ps, &p)))
            return rc;
        p->kind = PG_PART_TEXT;
        return pg_dec_copy(d->a, pg_json_str(content), &p->text);
    }
    if (!cJSON_IsArray(content))
        return fail_type(d, path, "one of a string or array of objects",
                         content);
    size_t j = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, content)
    {
        char ppath[PG_DEC_PATH_MAX];
        pg_dec_pathf(ppath, "%s[%zu]", path, j++);
        if ((rc = pg_dec_expect(d, it, ppath, PG_DEC_OBJECT)))
            return rc;
        const cJSON *type;
        pg_dec_pathf(param, "%s.type", ppath);
        if ((rc = pg_dec_field(d, it, "type", param, PG_DEC_STRING, &type)))
            return rc;
        pg_str_t t = pg_json_str(type);
        if ((rc = pg_dec_parts_push(d->a, ps, &p)))
            return rc;
        if (pg_str_eqc(t, "text") ||
            ((allow & ALLOW_REFUSAL) && pg_str_eqc(t, "refusal"))) {
            bool refusal = pg_str_eqc(t, "refusal");
            p->kind = refusal ? PG_PART_REFUSAL : PG_PART_TEXT;
            if ((rc = pg_dec_req_string(d, it, ppath,
                                        refusal ? "refusal" : "text",
                                        &p->text)))
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

static int decode_tool_calls(pg_dec_t *d, const cJSON *tcs,
                             const char *path, pg_dec_parts_t *ps)
{
    char param[PG_DEC_PATH_MAX];
    int rc;
    if ((rc = pg_dec_expect(d, tcs, path, PG_DEC_ARRAY)))
        return rc;
    size_t j = 0;
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs)
    {
        char tpath[PG_DEC_PATH_MAX];
        pg_part_t *p;
        pg_dec_pathf(tpath, "%s[%zu]", path, j++);
        if ((rc = pg_dec_expect(d, tc, tpath, PG_DEC_OBJECT)))
            return rc;
        if ((rc = pg_dec_parts_push(d->a, ps, &p)))
            return rc;
        p->kind = PG_PART_TOOL_CALL;
        const cJSON *fn;
        pg_dec_pathf(param, "%s.function", tpath);
        if ((rc = pg_dec_req_string(d, tc, tpath, "id", &p->tool_call.id)) ||
            (rc = pg_dec_field(d, tc, "function", param, PG_DEC_OBJECT,
                               &fn)) ||
            (rc = pg_dec_req_string(d, fn, param, "name",
                                    &p->tool_call.name)) ||
            (rc = pg_dec_req_string(d, fn, param, "arguments",
                                    &p->tool_call.arguments)))
            return rc;
    }
    return PG_OK;
}

static int decode_message(pg_dec_t *d, const cJSON *m, size_t i,
                          pg_message_t *out, pg_dec_parts_t *system)
{
    char path[PG_DEC_PATH_MAX], param[PG_DEC_PATH_MAX];
    pg_dec_parts_t ps = {0};
    int rc;
    pg_dec_pathf(path, "messages[%zu]", i);
    if ((rc = pg_dec_expect(d, m, path, PG_DEC_OBJECT)))
        return rc;
    const cJSON *role;
    pg_dec_pathf(param, "%s.role", path);
    if ((rc = pg_dec_field(d, m, "role", param, PG_DEC_STRING, &role)))
        return rc;
    pg_str_t r = pg_json_str(role);
    const cJSON *content = pg_dec_member(m, "content");
    pg_dec_pathf(param, "%s.content", path);
    const cJSON *name = pg_dec_member(m, "name");
    if (name != NULL) {
        char np[PG_DEC_PATH_MAX];
        pg_dec_pathf(np, "%s.name", path);
        if ((rc = pg_dec_string(d, name, np, &out->name)))
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
        const cJSON *refusal = pg_dec_member(m, "refusal");
        if (rc == PG_OK && refusal != NULL) {
            pg_part_t *p;
            char rp[PG_DEC_PATH_MAX];
            pg_dec_pathf(rp, "%s.refusal", path);
            if ((rc = pg_dec_parts_push(d->a, &ps, &p)) == PG_OK) {
                p->kind = PG_PART_REFUSAL;
                rc = pg_dec_string(d, refusal, rp, &p->text);
            }
        }
        const cJSON *tcs = pg_dec_member(m, "tool_calls");
        if (rc == PG_OK && tcs != NULL) {
            char tp[PG_DEC_PATH_MAX];
            pg_dec_pathf(tp, "%s.tool_calls", path);
            rc = decode_tool_calls(d, tcs, tp, &ps);
        }
    } else if (pg_str_eqc(r, "tool")) {
        out->role = PG_ROLE_TOOL;
        char tp[PG_DEC_PATH_MAX];
        pg_dec_pathf(tp, "%s.tool_call_id", path);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "tool_call_id");
        if (id == NULL)
            return fail_missing(d, tp);
        if (content == NULL)
            return fail_missing(d, param);
        pg_dec_parts_t inner = {0};
        pg_part_t *p;
        if ((rc = pg_dec_parts_push(d->a, &ps, &p)))
            return rc;
        p->kind = PG_PART_TOOL_RESULT;
        if ((rc = pg_dec_string(d, id, tp, &p->tool_result.call_id)) ||
            (rc = decode_content(d, content, param, 0, &inner)))
            return rc;
        p->tool_result.content = inner.v;
        p->tool_result.ncontent = inner.n;
    } else {
        pg_dec_pathf(param, "%s.role", path);
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

static int decode_messages(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    int rc;
    if (msgs == NULL || cJSON_IsNull(msgs))
        return fail_missing(d, "messages");
    if ((rc = pg_dec_expect(d, msgs, "messages", PG_DEC_ARRAY)))
        return rc;
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    if (n == 0)
        return fail(d, "empty_array", "messages",
                    "Invalid 'messages': empty array. Expected an array with "
                    "minimum length 1, but got an empty array instead.");
    pg_message_t *out = pg_arena_calloc(d->a, n, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    pg_dec_parts_t system = {0};
    size_t i = 0, k = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        if ((rc = decode_message(d, m, i++, &out[k], &system)))
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

static int decode_tools(pg_dec_t *d, const cJSON *tools, pg_request_t *q)
{
    char path[PG_DEC_PATH_MAX], param[PG_DEC_PATH_MAX];
    int rc;
    size_t n;
    pg_tool_t *out = pg_dec_array(d, tools, "tools", sizeof(*out), &n, &rc);
    if (out == NULL)
        return rc;
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        pg_tool_t *o = &out[i];
        pg_dec_pathf(path, "tools[%zu]", i++);
        if ((rc = pg_dec_expect(d, t, path, PG_DEC_OBJECT)))
            return rc;
        const cJSON *type, *fn;
        pg_dec_pathf(param, "%s.type", path);
        if ((rc = pg_dec_field(d, t, "type", param, PG_DEC_STRING, &type)))
            return rc;
        if (!pg_str_eqc(pg_json_str(type), "function"))
            return fail(d, "invalid_value", param,
                        "Invalid value: '%s'. Supported values are: "
                        "'function'.", type->valuestring);
        pg_dec_pathf(param, "%s.function", path);
        if ((rc = pg_dec_field(d, t, "function", param, PG_DEC_OBJECT,
                               &fn)) ||
            (rc = pg_dec_req_string(d, fn, param, "name", &o->name)))
            return rc;
        const cJSON *desc = pg_dec_member(fn, "description");
        pg_dec_pathf(param, "%s.function.description", path);
        if (desc && (rc = pg_dec_string(d, desc, param, &o->description)))
            return rc;
        const cJSON *params = pg_dec_member(fn, "parameters");
        if (params != NULL) {
            pg_dec_pathf(param, "%s.function.parameters", path);
            if ((rc = pg_dec_expect(d, params, param, PG_DEC_OBJECT)))
                return rc;
            if ((rc = pg_dec_print_json(d->a, params, &o->parameters)))
                return rc;
        }
    }
    q->tools = out;
    q->ntools = n;
    return PG_OK;
}

static int decode_tool_choice(pg_dec_t *d, const cJSON *tc, pg_request_t *q)
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
    const cJSON *type, *fn;
    int rc = pg_dec_field(d, tc, "type", "tool_choice.type", PG_DEC_STRING,
                          &type);
    if (rc)
        return rc;
    if (!pg_str_eqc(pg_json_str(type), "function"))
        return fail(d, "invalid_value", "tool_choice.type",
                    "Invalid value: '%s'. Supported values are: 'function'.",
                    type->valuestring);
    if ((rc = pg_dec_field(d, tc, "function", "tool_choice.function",
                           PG_DEC_OBJECT, &fn)))
        return rc;
    q->tool_choice = PG_TOOL_CHOICE_NAMED;
    return pg_dec_req_string(d, fn, "tool_choice.function", "name",
                             &q->tool_choice_name);
}

/* ---- scalars ---------------------------------------------------------------- */

static int decode_stop(pg_dec_t *d, const cJSON *it, pg_request_t *q)
{
    pg_str_t *out = pg_arena_calloc(d->a, PG_OPENAI_MAX_STOP,
                                    sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    if (cJSON_IsString(it)) {
        q->stop = out;
        q->nstop = 1;
        return pg_dec_copy(d->a, pg_json_str(it), &out[0]);
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
        char param[PG_DEC_PATH_MAX];
        pg_dec_pathf(param, "stop[%zu]", i);
        int rc = pg_dec_string(d, s, param, &out[i++]);
        if (rc)
            return rc;
    }
    q->stop = out;
    q->nstop = n;
    return PG_OK;
}

static int decode_response_format(pg_dec_t *d, const cJSON *it,
                                  pg_request_t *q)
{
    const cJSON *type;
    int rc;
    if ((rc = pg_dec_expect(d, it, "response_format", PG_DEC_OBJECT)) ||
        (rc = pg_dec_field(d, it, "type", "response_format.type",
                           PG_DEC_STRING, &type)))
        return rc;
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "text")) {
        q->response_format = PG_FORMAT_TEXT;
    } else if (pg_str_eqc(t, "json_object")) {
        q->response_format = PG_FORMAT_JSON_OBJECT;
    } else if (pg_str_eqc(t, "json_schema")) {
        const cJSON *js;
        if ((rc = pg_dec_field(d, it, "json_schema",
                               "response_format.json_schema", PG_DEC_OBJECT,
                               &js)) ||
            (rc = pg_dec_print_json(d->a, js, &q->response_schema)))
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

/* Sampling and limits: each sets its PG_SET_* bit only when given. */
static int decode_sampling(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = pg_dec_member(root, "temperature"))) {
        if ((rc = pg_dec_number(d, it, "temperature", 0, 2,
                                &q->temperature)))
            return rc;
        q->set |= PG_SET_TEMPERATURE;
    }
    if ((it = pg_dec_member(root, "top_p"))) {
        if ((rc = pg_dec_number(d, it, "top_p", 0, 1, &q->top_p)))
            return rc;
        q->set |= PG_SET_TOP_P;
    }
    if ((it = pg_dec_member(root, "presence_penalty"))) {
        if ((rc = pg_dec_number(d, it, "presence_penalty", -2, 2,
                                &q->presence_penalty)))
            return rc;
        q->set |= PG_SET_PRESENCE_PENALTY;
    }
    if ((it = pg_dec_member(root, "frequency_penalty"))) {
        if ((rc = pg_dec_number(d, it, "frequency_penalty", -2, 2,
                                &q->frequency_penalty)))
            return rc;
        q->set |= PG_SET_FREQUENCY_PENALTY;
    }
    if ((it = pg_dec_member(root, "seed"))) {
        if ((rc = pg_dec_int(d, it, "seed", INT64_MIN, &q->seed)))
            return rc;
        q->set |= PG_SET_SEED;
    }
    if ((it = pg_dec_member(root, "n"))) {
        if ((rc = pg_dec_int(d, it, "n", 1, &q->n)))
            return rc;
        q->set |= PG_SET_N;
    }
    if ((it = pg_dec_member(root, "max_tokens"))) {
        if ((rc = pg_dec_int(d, it, "max_tokens", 1, &q->max_tokens)))
            return rc;
        q->set |= PG_SET_MAX_TOKENS;
    }
    /* The newer name wins when a client sends both. */
    if ((it = pg_dec_member(root, "max_completion_tokens"))) {
        if ((rc = pg_dec_int(d, it, "max_completion_tokens", 1,
                             &q->max_tokens)))
            return rc;
        q->set |= PG_SET_MAX_TOKENS;
    }
    if ((it = pg_dec_member(root, "parallel_tool_calls"))) {
        if ((rc = pg_dec_bool(d, it, "parallel_tool_calls",
                              &q->parallel_tool_calls)))
            return rc;
        q->set |= PG_SET_PARALLEL_TOOL_CALLS;
    }
    return PG_OK;
}

static int decode_options(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = pg_dec_member(root, "model")) &&
        (rc = pg_dec_string(d, it, "model", &q->model)))
        return rc;
    if ((it = pg_dec_member(root, "tools")) && (rc = decode_tools(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "tool_choice")) &&
        (rc = decode_tool_choice(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "stop")) && (rc = decode_stop(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "stream")) &&
        (rc = pg_dec_bool(d, it, "stream", &q->stream)))
        return rc;
    if ((it = pg_dec_member(root, "stream_options"))) {
        if ((rc = pg_dec_expect(d, it, "stream_options", PG_DEC_OBJECT)))
            return rc;
        if (!q->stream)
            return fail(d, "invalid_value", "stream_options",
                        "The 'stream_options' parameter is only allowed "
                        "when 'stream' is enabled.");
        const cJSON *iu = pg_dec_member(it, "include_usage");
        if (iu && (rc = pg_dec_bool(d, iu, "stream_options.include_usage",
                                    &q->include_usage)))
            return rc;
    }
    if ((it = pg_dec_member(root, "response_format")) &&
        (rc = decode_response_format(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "reasoning_effort")) &&
        (rc = pg_dec_string(d, it, "reasoning_effort",
                            &q->reasoning_effort)))
        return rc;
    if ((it = pg_dec_member(root, "user")) &&
        (rc = pg_dec_string(d, it, "user", &q->user)))
        return rc;
    return PG_OK;
}

int pg_openai_chat_decode(pg_arena_t *arena, const cJSON *root,
                          pg_request_t *out, pg_openai_decode_err_t *err)
{
    pg_dec_t d = {arena, &openai_dialect, err};
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
        (rc = pg_dec_unmapped(arena, root, known_keys,
                              sizeof(known_keys) / sizeof(known_keys[0]),
                              &out->unmapped, &out->nunmapped)))
        return rc;
    return PG_OK;
}
