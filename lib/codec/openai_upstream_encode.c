/* openai_upstream_encode.c: canonical request -> the Chat Completions
 * request body an OpenAI-type provider receives, written straight into a
 * pg_buf_t with the base/json.h writer. What the dialect cannot carry is
 * dropped by design (thinking, top_k), said in the text (a tool result's
 * is_error), or refused with PG_EUNSUPPORTED and a reason. Loop thread of
 * the request. */
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/openai_upstream.h"

struct enc {
    pg_buf_t *b;
    const char **why;
    bool first_msg; /* no comma before the next message */
};

static int unsupported(struct enc *e, const char *why)
{
    *e->why = why;
    return PG_EUNSUPPORTED;
}

/* Appends raw JSON text after checking it is one JSON object, so a bad
 * schema from another dialect's decoder never yields a broken body. */
static int append_raw_object(struct enc *e, pg_str_t json, const char *why)
{
    cJSON *tree = pg_json_parse(json, NULL);
    bool ok = cJSON_IsObject(tree);
    cJSON_Delete(tree);
    if (!ok)
        return unsupported(e, why);
    return pg_buf_append_str(e->b, json);
}

/* ---- messages ------------------------------------------------------------------ */

/* {"role":"<role>"[,"name":...] and the comma before the next key. */
static int msg_head(struct enc *e, const char *role, pg_str_t name)
{
    pg_buf_t *b = e->b;
    int rc;
    if ((!e->first_msg && (rc = pg_buf_append_char(b, ','))) ||
        (rc = pg_buf_append_cstr(b, "{\"role\":\"")) ||
        (rc = pg_buf_append_cstr(b, role)) ||
        (rc = pg_buf_append_char(b, '"')))
        return rc;
    e->first_msg = false;
    if (name.n > 0 && ((rc = pg_json_append_key(b, true, "name")) ||
                       (rc = pg_json_append_string(b, name))))
        return rc;
    return PG_OK;
}

static int text_part(struct enc *e, pg_str_t text, bool comma)
{
    int rc;
    if ((comma && (rc = pg_buf_append_char(e->b, ','))) ||
        (rc = pg_buf_append_cstr(e->b, "{\"type\":\"text\",\"text\":")) ||
        (rc = pg_json_append_string(e->b, text)))
        return rc;
    return pg_buf_append_char(e->b, '}');
}

/* True when every byte of s is in the allowed set, so it can be written
 * between JSON quotes as it is. */
static bool plain(pg_str_t s, const char *extra)
{
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (c != 0 && strchr(extra, c))))
            return false;
    }
    return true;
}

static int image_part(struct enc *e, const pg_part_t *p, bool comma)
{
    pg_buf_t *b = e->b;
    int rc;
    if ((comma && (rc = pg_buf_append_char(b, ','))) ||
        (rc = pg_buf_append_cstr(b, "{\"type\":\"image_url\","
                                    "\"image_url\":{\"url\":")))
        return rc;
    if (p->image.data.n > 0) {
        /* A data URL, written between quotes directly: base64 and a media
         * type never need escaping once their alphabets are checked, and
         * that spares copying a large image through the escaper. */
        pg_str_t mt = p->image.media_type.n ? p->image.media_type
                                            : PG_STR("application/"
                                                     "octet-stream");
        if (!plain(mt, "/.+-_") || !plain(p->image.data, "+/=-_"))
            return unsupported(e, "an image whose media type or base64 "
                                  "data has characters a data URL cannot "
                                  "hold");
        if ((rc = pg_buf_append_cstr(b, "\"data:")) ||
            (rc = pg_buf_append_str(b, mt)) ||
            (rc = pg_buf_append_cstr(b, ";base64,")) ||
            (rc = pg_buf_append_str(b, p->image.data)))
            return rc;
        return pg_buf_append_cstr(b, "\"}}");
    }
    if (p->image.url.n == 0)
        return unsupported(e, "an image part with neither a URL nor data");
    if ((rc = pg_json_append_string(b, p->image.url)))
        return rc;
    return pg_buf_append_cstr(b, "}}");
}

/* The content of a run of user (or system) parts: a plain string for one
 * text part, else an array of text / image_url parts. */
static int user_content(struct enc *e, const pg_part_t *parts, size_t n)
{
    int rc;
    if ((rc = pg_json_append_key(e->b, true, "content")))
        return rc;
    size_t kept = 0, texts = 0;
    const pg_part_t *only = NULL;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == PG_PART_THINKING ||
            parts[i].kind == PG_PART_REDACTED_THINKING)
            continue;
        kept++;
        only = &parts[i];
        texts += parts[i].kind == PG_PART_TEXT ||
                 parts[i].kind == PG_PART_REFUSAL;
    }
    if (kept == 0)
        return pg_buf_append_cstr(e->b, "\"\"");
    if (kept == 1 && texts == 1)
        return pg_json_append_string(e->b, only->text);
    if ((rc = pg_buf_append_char(e->b, '[')))
        return rc;
    bool comma = false;
    for (size_t i = 0; i < n; i++) {
        const pg_part_t *p = &parts[i];
        switch (p->kind) {
        case PG_PART_TEXT:
        case PG_PART_REFUSAL:
            rc = text_part(e, p->text, comma);
            break;
        case PG_PART_IMAGE:
            rc = image_part(e, p, comma);
            break;
        case PG_PART_THINKING:
        case PG_PART_REDACTED_THINKING:
            continue;
        default:
            rc = unsupported(e, "a tool call inside a user message");
            break;
        }
        if (rc)
            return rc;
        comma = true;
    }
    return pg_buf_append_char(e->b, ']');
}

/* What a failed tool call's output starts with. */
#define TOOL_ERROR "Error:"

/* "Error: <text>" as one JSON string. */
static int error_text(pg_buf_t *b, pg_str_t text)
{
    pg_buf_t tmp;
    pg_buf_init(&tmp, b->max);
    int rc = pg_buf_append_cstr(&tmp, TOOL_ERROR " ");
    if (rc == PG_OK)
        rc = pg_buf_append_str(&tmp, text);
    if (rc == PG_OK)
        rc = pg_json_append_string(b, pg_buf_str(&tmp));
    pg_buf_free(&tmp);
    return rc;
}

/* One "role": "tool" message per tool result. */
static int tool_message(struct enc *e, const pg_part_t *p)
{
    pg_buf_t *b = e->b;
    int rc;
    if ((rc = msg_head(e, "tool", PG_STR_NULL)) ||
        (rc = pg_json_append_key(b, true, "tool_call_id")) ||
        (rc = pg_json_append_string(b, p->tool_result.call_id)) ||
        (rc = pg_json_append_key(b, true, "content")))
        return rc;
    const pg_part_t *c = p->tool_result.content;
    size_t n = p->tool_result.ncontent, texts = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].kind == PG_PART_IMAGE)
            return unsupported(e, "an image inside a tool result: Chat "
                                  "Completions tool messages carry text "
                                  "only");
        texts += c[i].kind == PG_PART_TEXT;
    }
    /* Chat Completions has no is_error flag: the text has to say it, or
     * the model reads a failed call's output as a result. */
    bool err = p->tool_result.is_error;
    if (texts == 0) {
        rc = pg_buf_append_cstr(b, err ? "\"" TOOL_ERROR "\"" : "\"\"");
    } else if (texts == 1) {
        for (size_t i = 0; i < n; i++) {
            if (c[i].kind == PG_PART_TEXT)
                rc = err ? error_text(b, c[i].text)
                         : pg_json_append_string(b, c[i].text);
        }
    } else {
        bool comma = err;
        rc = pg_buf_append_char(b, '[');
        if (rc == PG_OK && err)
            rc = text_part(e, PG_STR(TOOL_ERROR), false);
        for (size_t i = 0; i < n && rc == PG_OK; i++) {
            if (c[i].kind != PG_PART_TEXT)
                continue;
            rc = text_part(e, c[i].text, comma);
            comma = true;
        }
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, ']');
    }
    if (rc)
        return rc;
    return pg_buf_append_char(b, '}');
}

/* A user turn: tool results become tool messages, in order, and the parts
 * between them user messages. */
static int user_message(struct enc *e, const pg_message_t *m)
{
    size_t run = 0;
    int rc;
    for (size_t i = 0; i <= m->nparts; i++) {
        bool end = i == m->nparts;
        if (!end && m->parts[i].kind != PG_PART_TOOL_RESULT)
            continue;
        /* Flush the parts since the last tool result; an empty turn
         * still becomes a message so the conversation keeps its shape. */
        bool has = i > run;
        if (has || (end && run == 0)) {
            if ((rc = msg_head(e, "user", m->name)) ||
                (rc = user_content(e, m->parts + run, i - run)) ||
                (rc = pg_buf_append_char(e->b, '}')))
                return rc;
        }
        if (!end && (rc = tool_message(e, &m->parts[i])))
            return rc;
        run = i + 1;
    }
    return PG_OK;
}

static int tool_calls(struct enc *e, const pg_message_t *m)
{
    pg_buf_t *b = e->b;
    bool comma = false;
    int rc;
    if ((rc = pg_buf_append_cstr(b, ",\"tool_calls\":[")))
        return rc;
    for (size_t i = 0; i < m->nparts; i++) {
        const pg_part_t *p = &m->parts[i];
        if (p->kind != PG_PART_TOOL_CALL)
            continue;
        pg_str_t args = p->tool_call.arguments.n ? p->tool_call.arguments
                                                 : PG_STR("{}");
        if ((comma && (rc = pg_buf_append_char(b, ','))) ||
            (rc = pg_buf_append_cstr(b, "{\"id\":")) ||
            (rc = pg_json_append_string(b, p->tool_call.id)) ||
            (rc = pg_buf_append_cstr(b, ",\"type\":\"function\","
                                        "\"function\":{\"name\":")) ||
            (rc = pg_json_append_string(b, p->tool_call.name)) ||
            (rc = pg_buf_append_cstr(b, ",\"arguments\":")) ||
            (rc = pg_json_append_string(b, args)) ||
            (rc = pg_buf_append_cstr(b, "}}")))
            return rc;
        comma = true;
    }
    return pg_buf_append_char(b, ']');
}

/* An assistant turn: text (refusals included, as text) in content, tool
 * calls in tool_calls; thinking has no field and is dropped. */
static int assistant_message(struct enc *e, const pg_message_t *m)
{
    pg_buf_t *b = e->b;
    size_t texts = 0, calls = 0;
    const pg_part_t *only = NULL;
    int rc;
    for (size_t i = 0; i < m->nparts; i++) {
        switch (m->parts[i].kind) {
        case PG_PART_TEXT:
        case PG_PART_REFUSAL:
            texts++;
            only = &m->parts[i];
            break;
        case PG_PART_TOOL_CALL:
            calls++;
            break;
        case PG_PART_THINKING:
        case PG_PART_REDACTED_THINKING:
            break;
        case PG_PART_IMAGE:
            return unsupported(e, "an image in an assistant message: Chat "
                                  "Completions assistant turns carry text "
                                  "and tool calls only");
        default:
            return unsupported(e, "a tool result in an assistant message");
        }
    }
    if ((rc = msg_head(e, "assistant", m->name)) ||
        (rc = pg_json_append_key(b, true, "content")))
        return rc;
    if (texts == 0) {
        /* null is what OpenAI itself sends beside tool calls. */
        rc = pg_buf_append_cstr(b, calls ? "null" : "\"\"");
    } else if (texts == 1) {
        rc = pg_json_append_string(b, only->text);
    } else {
        bool comma = false;
        rc = pg_buf_append_char(b, '[');
        for (size_t i = 0; i < m->nparts && rc == PG_OK; i++) {
            const pg_part_t *p = &m->parts[i];
            if (p->kind != PG_PART_TEXT && p->kind != PG_PART_REFUSAL)
                continue;
            rc = text_part(e, p->text, comma);
            comma = true;
        }
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, ']');
    }
    if (rc || (calls && (rc = tool_calls(e, m))))
        return rc;
    return pg_buf_append_char(b, '}');
}

static int system_message(struct enc *e, const pg_part_t *parts, size_t n,
                          pg_str_t name)
{
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == PG_PART_THINKING ||
            parts[i].kind == PG_PART_REDACTED_THINKING)
            continue;
        if (parts[i].kind != PG_PART_TEXT)
            return unsupported(e, "a system part that is not text");
        /* One message per part keeps the order and the part boundaries,
         * and plain-string content is what every compatible server
         * accepts for system. */
        if ((rc = msg_head(e, "system", name)) ||
            (rc = pg_json_append_key(e->b, true, "content")) ||
            (rc = pg_json_append_string(e->b, parts[i].text)) ||
            (rc = pg_buf_append_char(e->b, '}')))
            return rc;
    }
    return PG_OK;
}

static int tool_role_message(struct enc *e, const pg_message_t *m)
{
    int rc;
    for (size_t i = 0; i < m->nparts; i++) {
        if (m->parts[i].kind != PG_PART_TOOL_RESULT)
            return unsupported(e, "a tool message part that is not a tool "
                                  "result");
        if ((rc = tool_message(e, &m->parts[i])))
            return rc;
    }
    return PG_OK;
}

static int messages(struct enc *e, const pg_request_t *q)
{
    int rc;
    if ((rc = pg_buf_append_cstr(e->b, ",\"messages\":[")) ||
        (rc = system_message(e, q->system, q->nsystem, PG_STR_NULL)))
        return rc;
    for (size_t i = 0; i < q->nmessages; i++) {
        const pg_message_t *m = &q->messages[i];
        switch (m->role) {
        case PG_ROLE_SYSTEM:
            rc = system_message(e, m->parts, m->nparts, m->name);
            break;
        case PG_ROLE_USER:
            rc = user_message(e, m);
            break;
        case PG_ROLE_ASSISTANT:
            rc = assistant_message(e, m);
            break;
        case PG_ROLE_TOOL:
            rc = tool_role_message(e, m);
            break;
        default:
            rc = unsupported(e, "a message with an unknown role");
            break;
        }
        if (rc)
            return rc;
    }
    return pg_buf_append_char(e->b, ']');
}

/* ---- tools and options ------------------------------------------------------------ */

static int tools(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    int rc;
    if (q->ntools == 0)
        return PG_OK;
    if ((rc = pg_buf_append_cstr(b, ",\"tools\":[")))
        return rc;
    for (size_t i = 0; i < q->ntools; i++) {
        const pg_tool_t *t = &q->tools[i];
        if ((i > 0 && (rc = pg_buf_append_char(b, ','))) ||
            (rc = pg_buf_append_cstr(b, "{\"type\":\"function\","
                                        "\"function\":{\"name\":")) ||
            (rc = pg_json_append_string(b, t->name)))
            return rc;
        if (t->description.n > 0 &&
            ((rc = pg_json_append_key(b, true, "description")) ||
             (rc = pg_json_append_string(b, t->description))))
            return rc;
        if ((rc = pg_json_append_key(b, true, "parameters")))
            return rc;
        if (t->parameters.n == 0)
            rc = pg_buf_append_cstr(b, "{\"type\":\"object\","
                                       "\"properties\":{}}");
        else
            rc = append_raw_object(e, t->parameters,
                                   "a tool's parameters are not a JSON "
                                   "object");
        if (rc || (rc = pg_buf_append_cstr(b, "}}")))
            return rc;
    }
    return pg_buf_append_char(b, ']');
}

static int tool_choice(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    int rc;
    switch (q->tool_choice) {
    case PG_TOOL_CHOICE_AUTO:
        return pg_buf_append_cstr(b, ",\"tool_choice\":\"auto\"");
    case PG_TOOL_CHOICE_NONE:
        return pg_buf_append_cstr(b, ",\"tool_choice\":\"none\"");
    case PG_TOOL_CHOICE_REQUIRED:
        return pg_buf_append_cstr(b, ",\"tool_choice\":\"required\"");
    case PG_TOOL_CHOICE_NAMED:
        if ((rc = pg_buf_append_cstr(b, ",\"tool_choice\":{\"type\":"
                                        "\"function\",\"function\":"
                                        "{\"name\":")) ||
            (rc = pg_json_append_string(b, q->tool_choice_name)))
            return rc;
        return pg_buf_append_cstr(b, "}}");
    default:
        return PG_OK;
    }
}

static int number(pg_buf_t *b, const pg_request_t *q, uint32_t bit,
                  const char *key, double v)
{
    int rc;
    if (!(q->set & bit))
        return PG_OK;
    if ((rc = pg_json_append_key(b, true, key)))
        return rc;
    return pg_json_append_double(b, v);
}

static int integer(pg_buf_t *b, const pg_request_t *q, uint32_t bit,
                   const char *key, int64_t v)
{
    int rc;
    if (!(q->set & bit))
        return PG_OK;
    if ((rc = pg_json_append_key(b, true, key)))
        return rc;
    return pg_json_append_i64(b, v);
}

static int string_opt(pg_buf_t *b, const char *key, pg_str_t v)
{
    int rc;
    if (v.n == 0)
        return PG_OK;
    if ((rc = pg_json_append_key(b, true, key)))
        return rc;
    return pg_json_append_string(b, v);
}

static int options(struct enc *e, const pg_request_t *q,
                   const pg_openai_req_opts_t *o)
{
    pg_buf_t *b = e->b;
    int rc;
    /* top_k has no Chat Completions field and is left out. */
    if ((rc = number(b, q, PG_SET_TEMPERATURE, "temperature",
                     q->temperature)) ||
        (rc = number(b, q, PG_SET_TOP_P, "top_p", q->top_p)) ||
        (rc = number(b, q, PG_SET_PRESENCE_PENALTY, "presence_penalty",
                     q->presence_penalty)) ||
        (rc = number(b, q, PG_SET_FREQUENCY_PENALTY, "frequency_penalty",
                     q->frequency_penalty)) ||
        (rc = integer(b, q, PG_SET_SEED, "seed", q->seed)) ||
        (rc = integer(b, q, PG_SET_N, "n", q->n)) ||
        (rc = integer(b, q, PG_SET_MAX_TOKENS,
                      o->max_completion_tokens ? "max_completion_tokens"
                                               : "max_tokens",
                      q->max_tokens)))
        return rc;
    if ((q->set & PG_SET_PARALLEL_TOOL_CALLS) &&
        (rc = pg_buf_append_cstr(b, q->parallel_tool_calls
                                        ? ",\"parallel_tool_calls\":true"
                                        : ",\"parallel_tool_calls\":false")))
        return rc;
    if (q->nstop > 0) {
        if ((rc = pg_buf_append_cstr(b, ",\"stop\":[")))
            return rc;
        for (size_t i = 0; i < q->nstop; i++) {
            if ((i > 0 && (rc = pg_buf_append_char(b, ','))) ||
                (rc = pg_json_append_string(b, q->stop[i])))
                return rc;
        }
        if ((rc = pg_buf_append_char(b, ']')))
            return rc;
    }
    switch (q->response_format) {
    case PG_FORMAT_TEXT:
        rc = pg_buf_append_cstr(b, ",\"response_format\":{\"type\":"
                                   "\"text\"}");
        break;
    case PG_FORMAT_JSON_OBJECT:
        rc = pg_buf_append_cstr(b, ",\"response_format\":{\"type\":"
                                   "\"json_object\"}");
        break;
    case PG_FORMAT_JSON_SCHEMA:
        if ((rc = pg_buf_append_cstr(b, ",\"response_format\":{\"type\":"
                                        "\"json_schema\",\"json_schema\":"))
            || (rc = append_raw_object(e, q->response_schema,
                                       "response_format.json_schema is not "
                                       "a JSON object")))
            return rc;
        rc = pg_buf_append_char(b, '}');
        break;
    default:
        rc = PG_OK;
        break;
    }
    if (rc || (rc = string_opt(b, "reasoning_effort", q->reasoning_effort)) ||
        (rc = string_opt(b, "user", q->user)))
        return rc;
    if (o->stream) {
        if ((rc = pg_buf_append_cstr(b, ",\"stream\":true")))
            return rc;
        if (o->include_usage &&
            (rc = pg_buf_append_cstr(b, ",\"stream_options\":"
                                        "{\"include_usage\":true}")))
            return rc;
    }
    return PG_OK;
}

int pg_openai_chat_encode_request(pg_buf_t *b, const pg_request_t *q,
                                  const pg_openai_req_opts_t *o,
                                  const char **why)
{
    static const pg_openai_req_opts_t defaults = {0};
    const char *ignored;
    struct enc e = {b, why ? why : &ignored, true};
    int rc;
    if (o == NULL)
        o = &defaults;
    *e.why = NULL;
    if ((rc = pg_buf_append_cstr(b, "{\"model\":")) ||
        (rc = pg_json_append_string(b, q->model)) ||
        (rc = messages(&e, q)) || (rc = tools(&e, q)) ||
        (rc = tool_choice(&e, q)) || (rc = options(&e, q, o)))
        return rc;
    return pg_buf_append_char(b, '}');
}
