/* anthropic_messages_decode.c: a Messages request (the JSON an Anthropic
 * client such as Claude Code sends to {app}/v1/messages) -> pg_request_t.
 * Refusals read like Anthropic's own 400s: the message starts with the
 * dotted path ("messages.2.content.0.type: ...") and err->field keeps the
 * bracket form ("messages[2].content[0].type"). Everything lands in the
 * caller's arena. Loop thread of the request. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/anthropic_messages.h"

#define PATH_MAX_LEN 160

struct dec {
    pg_arena_t *a;
    pg_anthropic_decode_err_t *err;
};

struct parts {
    pg_part_t *v;
    size_t n, cap;
};

/* ---- errors -------------------------------------------------------------- */

static void pathf(char *dst, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Paths are cut at PATH_MAX_LEN: an absurdly deep path only shortens the
 * message. */
static void pathf(char *dst, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, PATH_MAX_LEN, fmt, ap);
    va_end(ap);
    if (n < 0)
        dst[0] = '\0';
}

/* "messages[2].content[0].type" -> "messages.2.content.0.type", the way
 * Anthropic locates a field in its messages. */
static void dotted(char *dst, const char *field)
{
    size_t n = 0;
    for (const char *s = field; *s != '\0' && n < PATH_MAX_LEN - 1; s++) {
        if (*s == '[')
            dst[n++] = '.';
        else if (*s != ']')
            dst[n++] = *s;
    }
    dst[n] = '\0';
}

static int fail_rc(struct dec *d, int rc, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* Fills *err and returns rc (PG_EPARSE, or PG_EUNSUPPORTED for what the
 * gateway cannot carry), or PG_ENOMEM when the message itself cannot be
 * stored. field NULL: the body as a whole. */
static int fail_rc(struct dec *d, int rc, const char *field, const char *fmt,
                   ...)
{
    char what[384], msg[PATH_MAX_LEN + 400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (field != NULL) {
        char dot[PATH_MAX_LEN];
        dotted(dot, field);
        snprintf(msg, sizeof(msg), "%s: %s", dot, what);
    } else {
        snprintf(msg, sizeof(msg), "%s", what);
    }
    d->err->status = 400;
    d->err->type = PG_STR("invalid_request_error");
    d->err->message = pg_arena_strdup(d->a, pg_str_c(msg));
    d->err->field = field ? pg_arena_strdup(d->a, pg_str_c(field))
                          : PG_STR_NULL;
    if (d->err->message.p == NULL || (field && d->err->field.p == NULL))
        return PG_ENOMEM;
    return rc;
}

#define fail(d, field, ...) fail_rc((d), PG_EPARSE, (field), __VA_ARGS__)

static int fail_missing(struct dec *d, const char *field)
{
    return fail(d, field, "Field required");
}

static int fail_type(struct dec *d, const char *field, const char *what)
{
    return fail(d, field, "Input should be %s", what);
}

/* A member that is present and not null: optional fields may be sent as
 * null by SDKs that serialise every attribute. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(it) ? NULL : it;
}

static int copy(struct dec *d, pg_str_t s, pg_str_t *out)
{
    *out = pg_arena_strdup(d->a, s);
    return out->p ? PG_OK : PG_ENOMEM;
}

static int get_string(struct dec *d, const cJSON *it, const char *field,
                      pg_str_t *out)
{
    if (!cJSON_IsString(it))
        return fail_type(d, field, "a valid string");
    return copy(d, pg_json_str(it), out);
}

/* A required string member of obj at path.key. */
static int req_string(struct dec *d, const cJSON *obj, const char *path,
                      const char *key, pg_str_t *out)
{
    char field[PATH_MAX_LEN];
    pathf(field, "%s.%s", path, key);
    const cJSON *it = member(obj, key);
    if (it == NULL)
        return fail_missing(d, field);
    return get_string(d, it, field, out);
}

/* The JSON text of a value, printed compactly into the arena. */
static int print_json(struct dec *d, const cJSON *it, pg_str_t *out)
{
    char *txt = cJSON_PrintUnformatted(it);
    if (txt == NULL)
        return PG_ENOMEM;
    int rc = copy(d, pg_str_c(txt), out);
    cJSON_free(txt);
    return rc;
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

/* ---- content blocks ---------------------------------------------------- */

static int decode_image(struct dec *d, const cJSON *blk, const char *path,
                        pg_part_t *p)
{
    char field[PATH_MAX_LEN], src[PATH_MAX_LEN];
    int rc;
    pathf(src, "%s.source", path);
    const cJSON *s = member(blk, "source");
    if (s == NULL)
        return fail_missing(d, src);
    if (!cJSON_IsObject(s))
        return fail_type(d, src, "a valid dictionary");
    pathf(field, "%s.type", src);
    const cJSON *type = member(s, "type");
    if (type == NULL)
        return fail_missing(d, field);
    if (!cJSON_IsString(type))
        return fail_type(d, field, "a valid string");
    p->kind = PG_PART_IMAGE;
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "base64")) {
        if ((rc = req_string(d, s, src, "media_type", &p->image.media_type)) ||
            (rc = req_string(d, s, src, "data", &p->image.data)))
            return rc;
        return PG_OK;
    }
    if (pg_str_eqc(t, "url"))
        return req_string(d, s, src, "url", &p->image.url);
    return fail(d, field, "Input should be 'base64' or 'url'");
}

/* Which block types a place may hold. */
enum {
    ALLOW_TEXT = 1,
    ALLOW_IMAGE = 2,
    ALLOW_TOOL_RESULT = 4,
    ALLOW_TOOL_USE = 8,
    ALLOW_THINKING = 16
};

#define ALLOW_USER (ALLOW_TEXT | ALLOW_IMAGE | ALLOW_TOOL_RESULT)
#define ALLOW_ASSISTANT (ALLOW_TEXT | ALLOW_TOOL_USE | ALLOW_THINKING)

static int decode_blocks(struct dec *d, const cJSON *content,
                         const char *path, int allow, struct parts *ps);

static int decode_tool_result(struct dec *d, const cJSON *blk,
                              const char *path, pg_part_t *p)
{
    char field[PATH_MAX_LEN];
    int rc;
    p->kind = PG_PART_TOOL_RESULT;
    if ((rc = req_string(d, blk, path, "tool_use_id",
                         &p->tool_result.call_id)))
        return rc;
    const cJSON *ie = member(blk, "is_error");
    if (ie != NULL) {
        pathf(field, "%s.is_error", path);
        if (!cJSON_IsBool(ie))
            return fail_type(d, field, "a valid boolean");
        p->tool_result.is_error = cJSON_IsTrue(ie);
    }
    const cJSON *c = member(blk, "content");
    if (c == NULL)
        return PG_OK;
    pathf(field, "%s.content", path);
    struct parts inner = {0};
    if ((rc = decode_blocks(d, c, field, ALLOW_TEXT | ALLOW_IMAGE, &inner)))
        return rc;
    p->tool_result.content = inner.v;
    p->tool_result.ncontent = inner.n;
    return PG_OK;
}

static int decode_tool_use(struct dec *d, const cJSON *blk, const char *path,
                           pg_part_t *p)
{
    char field[PATH_MAX_LEN];
    int rc;
    p->kind = PG_PART_TOOL_CALL;
    if ((rc = req_string(d, blk, path, "id", &p->tool_call.id)) ||
        (rc = req_string(d, blk, path, "name", &p->tool_call.name)))
        return rc;
    pathf(field, "%s.input", path);
    const cJSON *in = member(blk, "input");
    if (in == NULL)
        return fail_missing(d, field);
    if (!cJSON_IsObject(in))
        return fail_type(d, field, "a valid dictionary");
    return print_json(d, in, &p->tool_call.arguments);
}

static const char *allowed_names(int allow)
{
    if (allow == ALLOW_USER)
        return "'text', 'image', 'document' or 'tool_result'";
    if (allow == ALLOW_ASSISTANT)
        return "'text', 'tool_use', 'thinking' or 'redacted_thinking'";
    if (allow == (ALLOW_TEXT | ALLOW_IMAGE))
        return "'text' or 'image'";
    return "'text'";
}

/* One content block at path into *p. */
static int decode_block(struct dec *d, const cJSON *blk, const char *path,
                        int allow, pg_part_t *p)
{
    char field[PATH_MAX_LEN];
    int rc;
    if (!cJSON_IsObject(blk))
        return fail_type(d, path, "a valid dictionary");
    pathf(field, "%s.type", path);
    const cJSON *type = member(blk, "type");
    if (type == NULL)
        return fail_missing(d, field);
    if (!cJSON_IsString(type))
        return fail_type(d, field, "a valid string");
    pg_str_t t = pg_json_str(type);
    if ((allow & ALLOW_TEXT) && pg_str_eqc(t, "text")) {
        p->kind = PG_PART_TEXT;
        return req_string(d, blk, path, "text", &p->text);
    }
    if ((allow & ALLOW_IMAGE) && pg_str_eqc(t, "image"))
        return decode_image(d, blk, path, p);
    if ((allow & ALLOW_TOOL_RESULT) && pg_str_eqc(t, "tool_result"))
        return decode_tool_result(d, blk, path, p);
    if ((allow & ALLOW_TOOL_USE) && pg_str_eqc(t, "tool_use"))
        return decode_tool_use(d, blk, path, p);
    if ((allow & ALLOW_THINKING) && pg_str_eqc(t, "thinking")) {
        p->kind = PG_PART_THINKING;
        if ((rc = req_string(d, blk, path, "thinking", &p->text)) ||
            (rc = req_string(d, blk, path, "signature", &p->signature)))
            return rc;
        return PG_OK;
    }
    if ((allow & ALLOW_THINKING) && pg_str_eqc(t, "redacted_thinking")) {
        p->kind = PG_PART_REDACTED_THINKING;
        return req_string(d, blk, path, "data", &p->text);
    }
    /* A document is valid Anthropic input the canonical model cannot
     * carry: say so rather than pretend the body is wrong. */
    if ((allow & ALLOW_IMAGE) && pg_str_eqc(t, "document"))
        return fail_rc(d, PG_EUNSUPPORTED, field,
                       "document blocks are not supported by this gateway");
    return fail(d, field, "Input should be %s", allowed_names(allow));
}

/* content: a string (one text part) or an array of blocks. */
static int decode_blocks(struct dec *d, const cJSON *content,
                         const char *path, int allow, struct parts *ps)
{
    pg_part_t *p;
    int rc;
    if (cJSON_IsString(content)) {
        if ((rc = parts_push(d, ps, &p)))
            return rc;
        p->kind = PG_PART_TEXT;
        return copy(d, pg_json_str(content), &p->text);
    }
    if (!cJSON_IsArray(content))
        return fail_type(d, path, "a valid string or a valid list");
    size_t j = 0;
    const cJSON *blk;
    cJSON_ArrayForEach(blk, content)
    {
        char bpath[PATH_MAX_LEN];
        pathf(bpath, "%s[%zu]", path, j++);
        if ((rc = parts_push(d, ps, &p)) ||
            (rc = decode_block(d, blk, bpath, allow, p)))
            return rc;
    }
    return PG_OK;
}

/* ---- messages and system ------------------------------------------------ */

static int decode_message(struct dec *d, const cJSON *m, size_t i,
                          pg_message_t *out)
{
    char path[PATH_MAX_LEN], field[PATH_MAX_LEN];
    struct parts ps = {0};
    int rc, allow;
    pathf(path, "messages[%zu]", i);
    if (!cJSON_IsObject(m))
        return fail_type(d, path, "a valid dictionary");
    pathf(field, "%s.role", path);
    const cJSON *role = member(m, "role");
    if (role == NULL)
        return fail_missing(d, field);
    if (!cJSON_IsString(role))
        return fail_type(d, field, "a valid string");
    pg_str_t r = pg_json_str(role);
    if (pg_str_eqc(r, "user")) {
        out->role = PG_ROLE_USER;
        allow = ALLOW_USER;
    } else if (pg_str_eqc(r, "assistant")) {
        out->role = PG_ROLE_ASSISTANT;
        allow = ALLOW_ASSISTANT;
    } else {
        /* The Messages API takes system text in the top-level "system"
         * field only; a "system" role here is a client bug. */
        return fail(d, field, "Input should be 'user' or 'assistant'");
    }
    pathf(field, "%s.content", path);
    const cJSON *content = member(m, "content");
    if (content == NULL)
        return fail_missing(d, field);
    if ((rc = decode_blocks(d, content, field, allow, &ps)))
        return rc;
    out->parts = ps.v;
    out->nparts = ps.n;
    return PG_OK;
}

static int decode_messages(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *msgs = member(root, "messages");
    if (msgs == NULL)
        return fail_missing(d, "messages");
    if (!cJSON_IsArray(msgs))
        return fail_type(d, "messages", "a valid list");
    size_t n = (size_t)cJSON_GetArraySize(msgs);
    pg_message_t *out = pg_arena_calloc(d->a, n ? n : 1, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    size_t i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        int rc = decode_message(d, m, i, &out[i]);
        if (rc)
            return rc;
        i++;
    }
    q->messages = out;
    q->nmessages = n;
    return PG_OK;
}

static int decode_system(struct dec *d, const cJSON *it, pg_request_t *q)
{
    struct parts ps = {0};
    int rc = decode_blocks(d, it, "system", ALLOW_TEXT, &ps);
    if (rc)
        return rc;
    q->system = ps.v;
    q->nsystem = ps.n;
    return PG_OK;
}

/* ---- tools ------------------------------------------------------------ */

static int decode_tools(struct dec *d, const cJSON *tools, pg_request_t *q)
{
    char path[PATH_MAX_LEN], field[PATH_MAX_LEN];
    int rc;
    if (!cJSON_IsArray(tools))
        return fail_type(d, "tools", "a valid list");
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
            return fail_type(d, path, "a valid dictionary");
        /* Server tools (web_search_..., bash_..., text_editor_...) run
         * on Anthropic's side; a custom tool has no type or "custom". */
        const cJSON *type = member(t, "type");
        if (type != NULL) {
            pathf(field, "%s.type", path);
            if (!cJSON_IsString(type))
                return fail_type(d, field, "a valid string");
            if (!pg_str_eqc(pg_json_str(type), "custom"))
                return fail_rc(d, PG_EUNSUPPORTED, field,
                               "server tools are not supported by this "
                               "gateway");
        }
        if ((rc = req_string(d, t, path, "name", &o->name)))
            return rc;
        const cJSON *desc = member(t, "description");
        pathf(field, "%s.description", path);
        if (desc != NULL && (rc = get_string(d, desc, field, &o->description)))
            return rc;
        const cJSON *schema = member(t, "input_schema");
        pathf(field, "%s.input_schema", path);
        if (schema == NULL)
            return fail_missing(d, field);
        if (!cJSON_IsObject(schema))
            return fail_type(d, field, "a valid dictionary");
        if ((rc = print_json(d, schema, &o->parameters)))
            return rc;
    }
    q->tools = out;
    q->ntools = n;
    return PG_OK;
}

static int decode_tool_choice(struct dec *d, const cJSON *tc, pg_request_t *q)
{
    if (!cJSON_IsObject(tc))
        return fail_type(d, "tool_choice", "a valid dictionary");
    const cJSON *type = member(tc, "type");
    if (type == NULL)
        return fail_missing(d, "tool_choice.type");
    if (!cJSON_IsString(type))
        return fail_type(d, "tool_choice.type", "a valid string");
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "auto")) {
        q->tool_choice = PG_TOOL_CHOICE_AUTO;
    } else if (pg_str_eqc(t, "any")) {
        q->tool_choice = PG_TOOL_CHOICE_REQUIRED;
    } else if (pg_str_eqc(t, "none")) {
        q->tool_choice = PG_TOOL_CHOICE_NONE;
    } else if (pg_str_eqc(t, "tool")) {
        q->tool_choice = PG_TOOL_CHOICE_NAMED;
        int rc = req_string(d, tc, "tool_choice", "name",
                            &q->tool_choice_name);
        if (rc)
            return rc;
    } else {
        return fail(d, "tool_choice.type",
                    "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    const cJSON *dp = member(tc, "disable_parallel_tool_use");
    if (dp != NULL) {
        if (!cJSON_IsBool(dp))
            return fail_type(d, "tool_choice.disable_parallel_tool_use",
                             "a valid boolean");
        q->set |= PG_SET_PARALLEL_TOOL_CALLS;
        q->parallel_tool_calls = !cJSON_IsTrue(dp);
    }
    return PG_OK;
}

/* ---- scalars -------------------------------------------------------------- */

static int get_number(struct dec *d, const cJSON *it, const char *field,
                      double min, double max, double *out)
{
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble))
        return fail_type(d, field, "a valid number");
    double v = it->valuedouble;
    if (v < min)
        return fail(d, field, "Input should be greater than or equal to %g",
                    min);
    if (v > max)
        return fail(d, field, "Input should be less than or equal to %g",
                    max);
    *out = v;
    return PG_OK;
}

static int get_int(struct dec *d, const cJSON *it, const char *field,
                   int64_t min, int64_t *out)
{
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        fabs(it->valuedouble) > 9e15)
        return fail_type(d, field, "a valid integer");
    int64_t v = (int64_t)it->valuedouble;
    if (v < min)
        return fail(d, field, "Input should be greater than or equal to %lld",
                    (long long)min);
    *out = v;
    return PG_OK;
}

static int decode_stop(struct dec *d, const cJSON *it, pg_request_t *q)
{
    if (!cJSON_IsArray(it))
        return fail_type(d, "stop_sequences", "a valid list");
    size_t n = (size_t)cJSON_GetArraySize(it);
    pg_str_t *out = pg_arena_calloc(d->a, n ? n : 1, sizeof(*out));
    if (out == NULL)
        return PG_ENOMEM;
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, it)
    {
        char field[PATH_MAX_LEN];
        pathf(field, "stop_sequences[%zu]", i);
        int rc = get_string(d, s, field, &out[i++]);
        if (rc)
            return rc;
    }
    q->stop = out;
    q->nstop = n;
    return PG_OK;
}

static int decode_metadata(struct dec *d, const cJSON *it, pg_request_t *q)
{
    if (!cJSON_IsObject(it))
        return fail_type(d, "metadata", "a valid dictionary");
    const cJSON *uid = member(it, "user_id");
    if (uid == NULL)
        return PG_OK;
    return get_string(d, uid, "metadata.user_id", &q->user);
}

/* Extended thinking. The canonical request knows only an effort level, so
 * the budget is mapped onto one: what a provider of the other dialect can
 * honour. The bands follow Anthropic's own guidance (1024 is the minimum,
 * a few thousand is modest, 16k+ is for hard problems). */
static int decode_thinking(struct dec *d, const cJSON *it, pg_request_t *q)
{
    if (!cJSON_IsObject(it))
        return fail_type(d, "thinking", "a valid dictionary");
    const cJSON *type = member(it, "type");
    if (type == NULL)
        return fail_missing(d, "thinking.type");
    if (!cJSON_IsString(type))
        return fail_type(d, "thinking.type", "a valid string");
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "disabled"))
        return PG_OK;
    /* Adaptive thinking (newer models): the model decides how much to
     * think; the middle level is the closest fixed setting. */
    if (pg_str_eqc(t, "adaptive")) {
        q->reasoning_effort = PG_STR("medium");
        return PG_OK;
    }
    if (!pg_str_eqc(t, "enabled"))
        return fail(d, "thinking.type",
                    "Input should be 'enabled', 'adaptive' or 'disabled'");
    /* budget_tokens < max_tokens is not checked here: with interleaved
     * thinking the API lets the budget exceed max_tokens, and the
     * upstream judges that itself. */
    const cJSON *bt = member(it, "budget_tokens");
    if (bt == NULL)
        return fail_missing(d, "thinking.budget_tokens");
    int64_t budget;
    int rc = get_int(d, bt, "thinking.budget_tokens", 1024, &budget);
    if (rc)
        return rc;
    const char *effort = budget <= 4096    ? "low"
                         : budget <= 16384 ? "medium"
                                           : "high";
    q->reasoning_effort = pg_str_c(effort);
    return PG_OK;
}

static int decode_sampling(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = member(root, "temperature"))) {
        if ((rc = get_number(d, it, "temperature", 0, 1, &q->temperature)))
            return rc;
        q->set |= PG_SET_TEMPERATURE;
    }
    if ((it = member(root, "top_p"))) {
        if ((rc = get_number(d, it, "top_p", 0, 1, &q->top_p)))
            return rc;
        q->set |= PG_SET_TOP_P;
    }
    if ((it = member(root, "top_k"))) {
        if ((rc = get_int(d, it, "top_k", 0, &q->top_k)))
            return rc;
        q->set |= PG_SET_TOP_K;
    }
    return PG_OK;
}

static int decode_options(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = member(root, "system")) && (rc = decode_system(d, it, q)))
        return rc;
    if ((it = member(root, "tools")) && (rc = decode_tools(d, it, q)))
        return rc;
    if ((it = member(root, "tool_choice")) &&
        (rc = decode_tool_choice(d, it, q)))
        return rc;
    if ((it = member(root, "stop_sequences")) && (rc = decode_stop(d, it, q)))
        return rc;
    if ((it = member(root, "metadata")) && (rc = decode_metadata(d, it, q)))
        return rc;
    if ((it = member(root, "thinking")) && (rc = decode_thinking(d, it, q)))
        return rc;
    if ((it = member(root, "stream"))) {
        if (!cJSON_IsBool(it))
            return fail_type(d, "stream", "a valid boolean");
        q->stream = cJSON_IsTrue(it);
    }
    return decode_sampling(d, root, q);
}

/* The top-level keys mapped here; others go to request.unmapped. */
static const char *const known_keys[] = {
    "model",       "max_tokens",     "messages", "system",   "tools",
    "tool_choice", "stop_sequences", "metadata", "thinking", "stream",
    "temperature", "top_p",          "top_k",
};

static bool is_known(const char *k)
{
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
        if (strcmp(k, known_keys[i]) == 0)
            return true;
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

/* model and max_tokens: both required by the API, checked first in the
 * order Anthropic reports them. */
static int decode_required(struct dec *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it = member(root, "model");
    int rc;
    if (it == NULL)
        return fail_missing(d, "model");
    if ((rc = get_string(d, it, "model", &q->model)))
        return rc;
    if ((it = member(root, "max_tokens")) == NULL)
        return fail_missing(d, "max_tokens");
    if ((rc = get_int(d, it, "max_tokens", 1, &q->max_tokens)))
        return rc;
    q->set |= PG_SET_MAX_TOKENS;
    return PG_OK;
}

int pg_anthropic_messages_decode(pg_arena_t *arena, const cJSON *root,
                                 pg_request_t *out,
                                 pg_anthropic_decode_err_t *err)
{
    struct dec d = {arena, err};
    int rc;
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (!cJSON_IsObject(root))
        return fail(&d, NULL, "Input should be a valid dictionary");
    if ((rc = decode_required(&d, root, out)) ||
        (rc = decode_messages(&d, root, out)) ||
        (rc = decode_options(&d, root, out)) ||
        (rc = decode_unmapped(&d, root, out)))
        return rc;
    return PG_OK;
}
