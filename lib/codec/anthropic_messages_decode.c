/* anthropic_messages_decode.c: a Messages request (the JSON an Anthropic
 * client such as Claude Code sends to {app}/v1/messages) -> pg_request_t.
 * Refusals read like Anthropic's own 400s: the message starts with the
 * dotted path ("messages.2.content.0.type: ...") and err->field keeps the
 * bracket form ("messages[2].content[0].type"). Everything lands in the
 * caller's arena. Loop thread of the request. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/anthropic_messages.h"
#include "codec/decode_util.h"

/* ---- errors -------------------------------------------------------------- */

/* "messages[2].content[0].type" -> "messages.2.content.0.type", the way
 * Anthropic locates a field in its messages. */
static void dotted(char *dst, const char *field)
{
    size_t n = 0;
    for (const char *s = field; *s != '\0' && n < PG_DEC_PATH_MAX - 1; s++) {
        if (*s == '[')
            dst[n++] = '.';
        else if (*s != ']')
            dst[n++] = *s;
    }
    dst[n] = '\0';
}

static int fail_rc(pg_dec_t *d, int rc, const char *field, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

/* Fills *err and returns rc (PG_EPARSE, or PG_EUNSUPPORTED for what the
 * gateway cannot carry), or PG_ENOMEM when the message itself cannot be
 * stored. field NULL: the body as a whole. */
static int fail_rc(pg_dec_t *d, int rc, const char *field, const char *fmt,
                   ...)
{
    char what[384], msg[PG_DEC_PATH_MAX + 400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (field != NULL) {
        char dot[PG_DEC_PATH_MAX];
        dotted(dot, field);
        snprintf(msg, sizeof(msg), "%s: %s", dot, what);
    } else {
        snprintf(msg, sizeof(msg), "%s", what);
    }
    pg_anthropic_decode_err_t *e = d->err;
    e->status = 400;
    e->type = PG_STR("invalid_request_error");
    e->message = pg_arena_strdup(d->a, pg_str_c(msg));
    e->field = field ? pg_arena_strdup(d->a, pg_str_c(field)) : PG_STR_NULL;
    if (e->message.p == NULL || (field && e->field.p == NULL))
        return PG_ENOMEM;
    return rc;
}

#define fail(d, field, ...) fail_rc((d), PG_EPARSE, (field), __VA_ARGS__)

static int fail_missing(pg_dec_t *d, const char *field)
{
    return fail(d, field, "Field required");
}

static int fail_type(pg_dec_t *d, const char *field, const char *what)
{
    return fail(d, field, "Input should be %s", what);
}

/* Anthropic does not say what it got. */
static int wrong_type(pg_dec_t *d, const char *field, const char *what,
                      const cJSON *got)
{
    return fail_type(d, field, what);
}

static int out_of_range(pg_dec_t *d, const char *field, pg_dec_kind_t kind,
                        bool below, double bound, double got)
{
    if (kind == PG_DEC_INTEGER)
        return fail(d, field, "Input should be greater than or equal to %lld",
                    (long long)bound);
    if (below)
        return fail(d, field, "Input should be greater than or equal to %g",
                    bound);
    return fail(d, field, "Input should be less than or equal to %g", bound);
}

/* Anthropic's wording. A null member counts as absent everywhere, and a
 * number must be finite. */
static const pg_dec_dialect_t anthropic_dialect = {
    .expected = {[PG_DEC_STRING] = "a valid string",
                 [PG_DEC_NUMBER] = "a valid number",
                 [PG_DEC_INTEGER] = "a valid integer",
                 [PG_DEC_BOOLEAN] = "a valid boolean",
                 [PG_DEC_OBJECT] = "a valid dictionary",
                 [PG_DEC_ARRAY] = "a valid list"},
    .missing = fail_missing,
    .type = wrong_type,
    .range = out_of_range,
    .int_max_abs = 9e15,
    .finite_numbers = true,
    .null_is_missing = true,
};

/* ---- content blocks ---------------------------------------------------- */

static int decode_image(pg_dec_t *d, const cJSON *blk, const char *path,
                        pg_part_t *p)
{
    char field[PG_DEC_PATH_MAX], src[PG_DEC_PATH_MAX];
    int rc;
    const cJSON *s, *type;
    pg_dec_pathf(src, "%s.source", path);
    pg_dec_pathf(field, "%s.type", src);
    if ((rc = pg_dec_field(d, blk, "source", src, PG_DEC_OBJECT, &s)) ||
        (rc = pg_dec_field(d, s, "type", field, PG_DEC_STRING, &type)))
        return rc;
    p->kind = PG_PART_IMAGE;
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "base64")) {
        if ((rc = pg_dec_req_string(d, s, src, "media_type",
                                    &p->image.media_type)) ||
            (rc = pg_dec_req_string(d, s, src, "data", &p->image.data)))
            return rc;
        return PG_OK;
    }
    if (pg_str_eqc(t, "url"))
        return pg_dec_req_string(d, s, src, "url", &p->image.url);
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

static int decode_blocks(pg_dec_t *d, const cJSON *content,
                         const char *path, int allow, pg_dec_parts_t *ps);

static int decode_tool_result(pg_dec_t *d, const cJSON *blk,
                              const char *path, pg_part_t *p)
{
    char field[PG_DEC_PATH_MAX];
    int rc;
    p->kind = PG_PART_TOOL_RESULT;
    if ((rc = pg_dec_req_string(d, blk, path, "tool_use_id",
                                &p->tool_result.call_id)))
        return rc;
    const cJSON *ie = pg_dec_member(blk, "is_error");
    if (ie != NULL) {
        pg_dec_pathf(field, "%s.is_error", path);
        if ((rc = pg_dec_bool(d, ie, field, &p->tool_result.is_error)))
            return rc;
    }
    const cJSON *c = pg_dec_member(blk, "content");
    if (c == NULL)
        return PG_OK;
    pg_dec_pathf(field, "%s.content", path);
    pg_dec_parts_t inner = {0};
    if ((rc = decode_blocks(d, c, field, ALLOW_TEXT | ALLOW_IMAGE, &inner)))
        return rc;
    p->tool_result.content = inner.v;
    p->tool_result.ncontent = inner.n;
    return PG_OK;
}

static int decode_tool_use(pg_dec_t *d, const cJSON *blk, const char *path,
                           pg_part_t *p)
{
    char field[PG_DEC_PATH_MAX];
    int rc;
    p->kind = PG_PART_TOOL_CALL;
    if ((rc = pg_dec_req_string(d, blk, path, "id", &p->tool_call.id)) ||
        (rc = pg_dec_req_string(d, blk, path, "name", &p->tool_call.name)))
        return rc;
    const cJSON *in;
    pg_dec_pathf(field, "%s.input", path);
    if ((rc = pg_dec_field(d, blk, "input", field, PG_DEC_OBJECT, &in)))
        return rc;
    return pg_dec_print_json(d->a, in, &p->tool_call.arguments);
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
static int decode_block(pg_dec_t *d, const cJSON *blk, const char *path,
                        int allow, pg_part_t *p)
{
    char field[PG_DEC_PATH_MAX];
    int rc;
    if ((rc = pg_dec_expect(d, blk, path, PG_DEC_OBJECT)))
        return rc;
    const cJSON *type;
    pg_dec_pathf(field, "%s.type", path);
    if ((rc = pg_dec_field(d, blk, "type", field, PG_DEC_STRING, &type)))
        return rc;
    pg_str_t t = pg_json_str(type);
    if ((allow & ALLOW_TEXT) && pg_str_eqc(t, "text")) {
        p->kind = PG_PART_TEXT;
        return pg_dec_req_string(d, blk, path, "text", &p->text);
    }
    if ((allow & ALLOW_IMAGE) && pg_str_eqc(t, "image"))
        return decode_image(d, blk, path, p);
    if ((allow & ALLOW_TOOL_RESULT) && pg_str_eqc(t, "tool_result"))
        return decode_tool_result(d, blk, path, p);
    if ((allow & ALLOW_TOOL_USE) && pg_str_eqc(t, "tool_use"))
        return decode_tool_use(d, blk, path, p);
    if ((allow & ALLOW_THINKING) && pg_str_eqc(t, "thinking")) {
        p->kind = PG_PART_THINKING;
        if ((rc = pg_dec_req_string(d, blk, path, "thinking", &p->text)) ||
            (rc = pg_dec_req_string(d, blk, path, "signature",
                                    &p->signature)))
            return rc;
        return PG_OK;
    }
    if ((allow & ALLOW_THINKING) && pg_str_eqc(t, "redacted_thinking")) {
        p->kind = PG_PART_REDACTED_THINKING;
        return pg_dec_req_string(d, blk, path, "data", &p->text);
    }
    /* A document is valid Anthropic input the canonical model cannot
     * carry: say so rather than pretend the body is wrong. */
    if ((allow & ALLOW_IMAGE) && pg_str_eqc(t, "document"))
        return fail_rc(d, PG_EUNSUPPORTED, field,
                       "document blocks are not supported by this gateway");
    return fail(d, field, "Input should be %s", allowed_names(allow));
}

/* content: a string (one text part) or an array of blocks. */
static int decode_blocks(pg_dec_t *d, const cJSON *content,
                         const char *path, int allow, pg_dec_parts_t *ps)
{
    pg_part_t *p;
    int rc;
    if (cJSON_IsString(content)) {
        if ((rc = pg_dec_parts_push(d->a, ps, &p)))
            return rc;
        p->kind = PG_PART_TEXT;
        return pg_dec_copy(d->a, pg_json_str(content), &p->text);
    }
    if (!cJSON_IsArray(content))
        return fail_type(d, path, "a valid string or a valid list");
    size_t j = 0;
    const cJSON *blk;
    cJSON_ArrayForEach(blk, content)
    {
        char bpath[PG_DEC_PATH_MAX];
        pg_dec_pathf(bpath, "%s[%zu]", path, j++);
        if ((rc = pg_dec_parts_push(d->a, ps, &p)) ||
            (rc = decode_block(d, blk, bpath, allow, p)))
            return rc;
    }
    return PG_OK;
}

/* ---- messages and system ------------------------------------------------ */

static int decode_message(pg_dec_t *d, const cJSON *m, size_t i,
                          pg_message_t *out)
{
    char path[PG_DEC_PATH_MAX], field[PG_DEC_PATH_MAX];
    pg_dec_parts_t ps = {0};
    int rc, allow;
    pg_dec_pathf(path, "messages[%zu]", i);
    if ((rc = pg_dec_expect(d, m, path, PG_DEC_OBJECT)))
        return rc;
    const cJSON *role, *content;
    pg_dec_pathf(field, "%s.role", path);
    if ((rc = pg_dec_field(d, m, "role", field, PG_DEC_STRING, &role)))
        return rc;
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
    pg_dec_pathf(field, "%s.content", path);
    if ((content = pg_dec_member(m, "content")) == NULL)
        return fail_missing(d, field);
    if ((rc = decode_blocks(d, content, field, allow, &ps)))
        return rc;
    out->parts = ps.v;
    out->nparts = ps.n;
    return PG_OK;
}

static int decode_messages(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *msgs = pg_dec_member(root, "messages");
    int rc;
    if (msgs == NULL)
        return fail_missing(d, "messages");
    size_t n;
    pg_message_t *out = pg_dec_array(d, msgs, "messages", sizeof(*out), &n,
                                     &rc);
    if (out == NULL)
        return rc;
    size_t i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        if ((rc = decode_message(d, m, i, &out[i])))
            return rc;
        i++;
    }
    q->messages = out;
    q->nmessages = n;
    return PG_OK;
}

static int decode_system(pg_dec_t *d, const cJSON *it, pg_request_t *q)
{
    pg_dec_parts_t ps = {0};
    int rc = decode_blocks(d, it, "system", ALLOW_TEXT, &ps);
    if (rc)
        return rc;
    q->system = ps.v;
    q->nsystem = ps.n;
    return PG_OK;
}

/* ---- tools ------------------------------------------------------------ */

static int decode_tools(pg_dec_t *d, const cJSON *tools, pg_request_t *q)
{
    char path[PG_DEC_PATH_MAX], field[PG_DEC_PATH_MAX];
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
        /* Server tools (web_search_..., bash_..., text_editor_...) run
         * on Anthropic's side; a custom tool has no type or "custom". */
        const cJSON *type = pg_dec_member(t, "type");
        if (type != NULL) {
            pg_dec_pathf(field, "%s.type", path);
            if ((rc = pg_dec_expect(d, type, field, PG_DEC_STRING)))
                return rc;
            if (!pg_str_eqc(pg_json_str(type), "custom"))
                return fail_rc(d, PG_EUNSUPPORTED, field,
                               "server tools are not supported by this "
                               "gateway");
        }
        if ((rc = pg_dec_req_string(d, t, path, "name", &o->name)))
            return rc;
        const cJSON *desc = pg_dec_member(t, "description");
        pg_dec_pathf(field, "%s.description", path);
        if (desc != NULL &&
            (rc = pg_dec_string(d, desc, field, &o->description)))
            return rc;
        const cJSON *schema;
        pg_dec_pathf(field, "%s.input_schema", path);
        if ((rc = pg_dec_field(d, t, "input_schema", field, PG_DEC_OBJECT,
                               &schema)) ||
            (rc = pg_dec_print_json(d->a, schema, &o->parameters)))
            return rc;
    }
    q->tools = out;
    q->ntools = n;
    return PG_OK;
}

static int decode_tool_choice(pg_dec_t *d, const cJSON *tc, pg_request_t *q)
{
    const cJSON *type;
    int rc;
    if ((rc = pg_dec_expect(d, tc, "tool_choice", PG_DEC_OBJECT)))
        return rc;
    if ((rc = pg_dec_field(d, tc, "type", "tool_choice.type", PG_DEC_STRING,
                           &type)))
        return rc;
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "auto")) {
        q->tool_choice = PG_TOOL_CHOICE_AUTO;
    } else if (pg_str_eqc(t, "any")) {
        q->tool_choice = PG_TOOL_CHOICE_REQUIRED;
    } else if (pg_str_eqc(t, "none")) {
        q->tool_choice = PG_TOOL_CHOICE_NONE;
    } else if (pg_str_eqc(t, "tool")) {
        q->tool_choice = PG_TOOL_CHOICE_NAMED;
        if ((rc = pg_dec_req_string(d, tc, "tool_choice", "name",
                                    &q->tool_choice_name)))
            return rc;
    } else {
        return fail(d, "tool_choice.type",
                    "Input should be 'auto', 'any', 'tool' or 'none'");
    }
    const cJSON *dp = pg_dec_member(tc, "disable_parallel_tool_use");
    if (dp != NULL) {
        bool disable;
        if ((rc = pg_dec_bool(d, dp, "tool_choice.disable_parallel_tool_use",
                              &disable)))
            return rc;
        q->set |= PG_SET_PARALLEL_TOOL_CALLS;
        q->parallel_tool_calls = !disable;
    }
    return PG_OK;
}

/* ---- scalars -------------------------------------------------------------- */

static int decode_stop(pg_dec_t *d, const cJSON *it, pg_request_t *q)
{
    int rc;
    size_t n;
    pg_str_t *out = pg_dec_array(d, it, "stop_sequences", sizeof(*out), &n,
                                 &rc);
    if (out == NULL)
        return rc;
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, it)
    {
        char field[PG_DEC_PATH_MAX];
        pg_dec_pathf(field, "stop_sequences[%zu]", i);
        if ((rc = pg_dec_string(d, s, field, &out[i++])))
            return rc;
    }
    q->stop = out;
    q->nstop = n;
    return PG_OK;
}

static int decode_metadata(pg_dec_t *d, const cJSON *it, pg_request_t *q)
{
    int rc = pg_dec_expect(d, it, "metadata", PG_DEC_OBJECT);
    if (rc)
        return rc;
    const cJSON *uid = pg_dec_member(it, "user_id");
    if (uid == NULL)
        return PG_OK;
    return pg_dec_string(d, uid, "metadata.user_id", &q->user);
}

/* Extended thinking. The canonical request knows only an effort level, so
 * the budget is mapped onto one: what a provider of the other dialect can
 * honour. The bands follow Anthropic's own guidance (1024 is the minimum,
 * a few thousand is modest, 16k+ is for hard problems). */
static int decode_thinking(pg_dec_t *d, const cJSON *it, pg_request_t *q)
{
    const cJSON *type;
    int rc;
    if ((rc = pg_dec_expect(d, it, "thinking", PG_DEC_OBJECT)))
        return rc;
    if ((rc = pg_dec_field(d, it, "type", "thinking.type", PG_DEC_STRING,
                           &type)))
        return rc;
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
    const cJSON *bt = pg_dec_member(it, "budget_tokens");
    if (bt == NULL)
        return fail_missing(d, "thinking.budget_tokens");
    int64_t budget;
    if ((rc = pg_dec_int(d, bt, "thinking.budget_tokens", 1024, &budget)))
        return rc;
    const char *effort = budget <= 4096    ? "low"
                         : budget <= 16384 ? "medium"
                                           : "high";
    q->reasoning_effort = pg_str_c(effort);
    return PG_OK;
}

static int decode_sampling(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = pg_dec_member(root, "temperature"))) {
        if ((rc = pg_dec_number(d, it, "temperature", 0, 1,
                                &q->temperature)))
            return rc;
        q->set |= PG_SET_TEMPERATURE;
    }
    if ((it = pg_dec_member(root, "top_p"))) {
        if ((rc = pg_dec_number(d, it, "top_p", 0, 1, &q->top_p)))
            return rc;
        q->set |= PG_SET_TOP_P;
    }
    if ((it = pg_dec_member(root, "top_k"))) {
        if ((rc = pg_dec_int(d, it, "top_k", 0, &q->top_k)))
            return rc;
        q->set |= PG_SET_TOP_K;
    }
    return PG_OK;
}

static int decode_options(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it;
    int rc;
    if ((it = pg_dec_member(root, "system")) && (rc = decode_system(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "tools")) && (rc = decode_tools(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "tool_choice")) &&
        (rc = decode_tool_choice(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "stop_sequences")) &&
        (rc = decode_stop(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "metadata")) &&
        (rc = decode_metadata(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "thinking")) &&
        (rc = decode_thinking(d, it, q)))
        return rc;
    if ((it = pg_dec_member(root, "stream")) &&
        (rc = pg_dec_bool(d, it, "stream", &q->stream)))
        return rc;
    return decode_sampling(d, root, q);
}

/* The top-level keys mapped here; others go to request.unmapped. */
static const char *const known_keys[] = {
    "model",       "max_tokens",     "messages", "system",   "tools",
    "tool_choice", "stop_sequences", "metadata", "thinking", "stream",
    "temperature", "top_p",          "top_k",
};

/* model and max_tokens: both required by the API, checked first in the
 * order Anthropic reports them. */
static int decode_required(pg_dec_t *d, const cJSON *root, pg_request_t *q)
{
    const cJSON *it = pg_dec_member(root, "model");
    int rc;
    if (it == NULL)
        return fail_missing(d, "model");
    if ((rc = pg_dec_string(d, it, "model", &q->model)))
        return rc;
    if ((it = pg_dec_member(root, "max_tokens")) == NULL)
        return fail_missing(d, "max_tokens");
    if ((rc = pg_dec_int(d, it, "max_tokens", 1, &q->max_tokens)))
        return rc;
    q->set |= PG_SET_MAX_TOKENS;
    return PG_OK;
}

int pg_anthropic_messages_decode(pg_arena_t *arena, const cJSON *root,
                                 pg_request_t *out,
                                 pg_anthropic_decode_err_t *err)
{
    pg_dec_t d = {arena, &anthropic_dialect, err};
    int rc;
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    if (!cJSON_IsObject(root))
        return fail(&d, NULL, "Input should be a valid dictionary");
    if ((rc = decode_required(&d, root, out)) ||
        (rc = decode_messages(&d, root, out)) ||
        (rc = decode_options(&d, root, out)) ||
        (rc = pg_dec_unmapped(arena, root, known_keys,
                              sizeof(known_keys) / sizeof(known_keys[0]),
                              &out->unmapped, &out->nunmapped)))
        return rc;
    return PG_OK;
}
