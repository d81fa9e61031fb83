/* anthropic_upstream_encode.c: canonical request -> Anthropic Messages
 * request JSON, written straight into the caller's pg_buf_t with the
 * base/json.h writer. JSON texts carried by the request (tool arguments,
 * tool parameter schemas) are checked with the arena parser in a scratch
 * arena and then copied verbatim, so what the client sent reaches the
 * upstream byte for byte. Loop thread of the request. */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/anthropic_upstream.h"

/* Anthropic rejects requests without max_tokens. */
#define DEFAULT_MAX_TOKENS 4096

/* Room for a why message that names a client-supplied id; the id is cut
 * rather than the message dropped. */
#define WHY_MAX 192

/* Why-messages that name an id cannot be literals and the call has no
 * arena; one buffer per thread (each loop is one thread) keeps them valid
 * until the next encode on the same thread. */
static _Thread_local char why_buf[WHY_MAX];

struct enc {
    pg_buf_t *b;
    pg_arena_t scratch; /* owned: parse trees of the JSON texts checked */
    const char **why;
};

static int unsupported(struct enc *e, const char *why)
{
    *e->why = why;
    return PG_EUNSUPPORTED;
}

static int unsupported_id(struct enc *e, const char *what, pg_str_t id)
{
    int n = (int)(id.n > 80 ? 80 : id.n);
    snprintf(why_buf, sizeof(why_buf), "%s%.*s", what, n, id.p ? id.p : "");
    *e->why = why_buf;
    return PG_EUNSUPPORTED;
}

/* Parses text in the scratch arena: PG_OK when it is one JSON object,
 * else PG_EPARSE. (The arena parser does not tell OOM from bad input; an
 * OOM here reads as bad input, which still fails the request cleanly.) */
static int check_object(struct enc *e, pg_str_t text)
{
    cJSON *root = pg_json_parse_arena(&e->scratch, text, NULL);
    return root != NULL && cJSON_IsObject(root) ? PG_OK : PG_EPARSE;
}

static int key_str(pg_buf_t *b, bool comma, const char *key, pg_str_t v)
{
    int rc = pg_json_append_key(b, comma, key);
    return rc ? rc : pg_json_append_string(b, v);
}

/* ---- system ----------------------------------------------------------- */

static int encode_system(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    int rc;
    for (size_t i = 0; i < q->nsystem; i++)
        if (q->system[i].kind != PG_PART_TEXT)
            return unsupported(e, "system: only text parts");
    /* One plain text part is the common case and the API's short form. */
    if (q->nsystem == 1)
        return key_str(b, true, "system", q->system[0].text);
    if ((rc = pg_json_append_key(b, true, "system")) ||
        (rc = pg_buf_append_char(b, '[')))
        return rc;
    for (size_t i = 0; i < q->nsystem; i++) {
        if ((rc = pg_buf_append_cstr(b, i ? ",{" : "{")) ||
            (rc = key_str(b, false, "type", PG_STR("text"))) ||
            (rc = key_str(b, true, "text", q->system[i].text)) ||
            (rc = pg_buf_append_char(b, '}')))
            return rc;
    }
    return pg_buf_append_char(b, ']');
}

/* ---- content blocks ----------------------------------------------------- */

static int encode_image(struct enc *e, const pg_part_t *p)
{
    pg_buf_t *b = e->b;
    int rc;
    if ((rc = key_str(b, false, "type", PG_STR("image"))) ||
        (rc = pg_json_append_key(b, true, "source")) ||
        (rc = pg_buf_append_char(b, '{')))
        return rc;
    if (p->image.data.n > 0) {
        if (p->image.media_type.n == 0)
            return unsupported(e, "image: base64 data without media_type");
        if ((rc = key_str(b, false, "type", PG_STR("base64"))) ||
            (rc = key_str(b, true, "media_type", p->image.media_type)) ||
            (rc = key_str(b, true, "data", p->image.data)))
            return rc;
    } else if (p->image.url.n > 0) {
        if ((rc = key_str(b, false, "type", PG_STR("url"))) ||
            (rc = key_str(b, true, "url", p->image.url)))
            return rc;
    } else {
        return unsupported(e, "image: neither data nor url");
    }
    return pg_buf_append_char(b, '}');
}

static int encode_text(pg_buf_t *b, pg_str_t text)
{
    int rc;
    if ((rc = key_str(b, false, "type", PG_STR("text"))))
        return rc;
    return key_str(b, true, "text", text);
}

/* Tool arguments become the input object. OpenAI models sometimes send ""
 * for a call without parameters; that is the empty object, not an error. */
static int encode_tool_use(struct enc *e, const pg_part_t *p)
{
    pg_buf_t *b = e->b;
    pg_str_t args = pg_str_trim(p->tool_call.arguments);
    int rc;
    if (args.n == 0) {
        args = PG_STR("{}");
    } else if (check_object(e, args) != PG_OK) {
        return unsupported_id(e,
                              "tool_call arguments are not a JSON object: "
                              "call id ",
                              p->tool_call.id);
    }
    if ((rc = key_str(b, false, "type", PG_STR("tool_use"))) ||
        (rc = key_str(b, true, "id", p->tool_call.id)) ||
        (rc = key_str(b, true, "name", p->tool_call.name)) ||
        (rc = pg_json_append_key(b, true, "input")))
        return rc;
    return pg_buf_append_str(b, args);
}

/* A tool result's content: the short string form for one text part,
 * blocks otherwise, nothing when empty. */
static int encode_tool_result(struct enc *e, const pg_part_t *p)
{
    pg_buf_t *b = e->b;
    const pg_part_t *c = p->tool_result.content;
    size_t n = p->tool_result.ncontent;
    int rc;
    if ((rc = key_str(b, false, "type", PG_STR("tool_result"))) ||
        (rc = key_str(b, true, "tool_use_id", p->tool_result.call_id)))
        return rc;
    if (n == 1 && c[0].kind == PG_PART_TEXT) {
        if ((rc = key_str(b, true, "content", c[0].text)))
            return rc;
    } else if (n > 0) {
        if ((rc = pg_json_append_key(b, true, "content")) ||
            (rc = pg_buf_append_char(b, '[')))
            return rc;
        for (size_t i = 0; i < n; i++) {
            if ((rc = pg_buf_append_cstr(b, i ? ",{" : "{")))
                return rc;
            if (c[i].kind == PG_PART_TEXT)
                rc = encode_text(b, c[i].text);
            else if (c[i].kind == PG_PART_IMAGE)
                rc = encode_image(e, &c[i]);
            else
                return unsupported_id(e,
                                      "tool_result content: only text and "
                                      "images: call id ",
                                      p->tool_result.call_id);
            if (rc || (rc = pg_buf_append_char(b, '}')))
                return rc;
        }
        if ((rc = pg_buf_append_char(b, ']')))
            return rc;
    }
    if (p->tool_result.is_error &&
        (rc = pg_buf_append_cstr(b, ",\"is_error\":true")))
        return rc;
    return PG_OK;
}

static int encode_thinking(pg_buf_t *b, const pg_part_t *p)
{
    int rc;
    if ((rc = key_str(b, false, "type", PG_STR("thinking"))) ||
        (rc = key_str(b, true, "thinking", p->text)))
        return rc;
    /* The signature goes back exactly as the provider wrote it, or the
     * upstream rejects the thinking block. */
    return key_str(b, true, "signature", p->signature);
}

/* Which part kinds a turn may carry, by canonical role. */
static bool part_allowed(pg_role_t role, pg_part_kind_t k)
{
    switch (role) {
    case PG_ROLE_USER:
        return k == PG_PART_TEXT || k == PG_PART_IMAGE ||
               k == PG_PART_TOOL_RESULT;
    case PG_ROLE_ASSISTANT:
        return k == PG_PART_TEXT || k == PG_PART_REFUSAL ||
               k == PG_PART_TOOL_CALL || k == PG_PART_THINKING ||
               k == PG_PART_REDACTED_THINKING;
    case PG_ROLE_TOOL:
        return k == PG_PART_TOOL_RESULT || k == PG_PART_TEXT;
    default:
        return false;
    }
}

/* Appends one part as a content block (with the comma before it when
 * first is false). Empty text is skipped: the API rejects empty text
 * blocks. *wrote says whether a block was written. */
static int encode_part(struct enc *e, pg_role_t role, const pg_part_t *p,
                       bool first, bool *wrote)
{
    pg_buf_t *b = e->b;
    int rc;
    *wrote = false;
    if (!part_allowed(role, p->kind))
        return unsupported(e, role == PG_ROLE_ASSISTANT
                                  ? "messages: part kind not allowed in an "
                                    "assistant turn"
                                  : "messages: part kind not allowed in a "
                                    "user or tool turn");
    if ((p->kind == PG_PART_TEXT || p->kind == PG_PART_REFUSAL) &&
        p->text.n == 0)
        return PG_OK;
    if ((rc = pg_buf_append_cstr(b, first ? "{" : ",{")))
        return rc;
    switch (p->kind) {
    case PG_PART_TEXT:
    case PG_PART_REFUSAL: /* Anthropic has no refusal part: its text. */
        rc = encode_text(b, p->text);
        break;
    case PG_PART_IMAGE:
        rc = encode_image(e, p);
        break;
    case PG_PART_TOOL_CALL:
        rc = encode_tool_use(e, p);
        break;
    case PG_PART_TOOL_RESULT:
        rc = encode_tool_result(e, p);
        break;
    case PG_PART_THINKING:
        rc = encode_thinking(b, p);
        break;
    case PG_PART_REDACTED_THINKING:
        if (!(rc = key_str(b, false, "type", PG_STR("redacted_thinking"))))
            rc = key_str(b, true, "data", p->text);
        break;
    }
    if (rc || (rc = pg_buf_append_char(b, '}')))
        return rc;
    *wrote = true;
    return PG_OK;
}

/* ---- messages ---------------------------------------------------------- */

/* The Anthropic role of a canonical message: tool results travel in user
 * turns. */
static const char *turn_role(pg_role_t r)
{
    return r == PG_ROLE_ASSISTANT ? "assistant" : "user";
}

/* Writes messages[i..j) (consecutive messages of one Anthropic role) as
 * one turn; a turn left with no blocks (only empty text) is not written. */
static int encode_turn(struct enc *e, const pg_request_t *q, size_t i,
                       size_t j, bool *first_turn)
{
    pg_buf_t *b = e->b;
    size_t mark = b->n;
    bool any = false;
    int rc;
    if ((rc = pg_buf_append_cstr(b, *first_turn ? "{" : ",{")) ||
        (rc = key_str(b, false, "role",
                      pg_str_c(turn_role(q->messages[i].role)))) ||
        (rc = pg_json_append_key(b, true, "content")) ||
        (rc = pg_buf_append_char(b, '[')))
        return rc;
    for (size_t m = i; m < j; m++) {
        const pg_message_t *msg = &q->messages[m];
        for (size_t k = 0; k < msg->nparts; k++) {
            bool wrote;
            rc = encode_part(e, msg->role, &msg->parts[k], !any, &wrote);
            if (rc)
                return rc;
            any = any || wrote;
        }
    }
    if (!any) {
        /* Drop the turn header written above. */
        b->n = mark;
        if (b->p)
            b->p[b->n] = '\0';
        return PG_OK;
    }
    *first_turn = false;
    return pg_buf_append_cstr(b, "]}");
}

static int encode_messages(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    bool first = true;
    int rc;
    if ((rc = pg_json_append_key(b, true, "messages")) ||
        (rc = pg_buf_append_char(b, '[')))
        return rc;
    size_t i = 0;
    while (i < q->nmessages) {
        if (q->messages[i].role == PG_ROLE_SYSTEM)
            return unsupported(e, "messages: a system message inside the "
                                  "conversation");
        const char *role = turn_role(q->messages[i].role);
        size_t j = i + 1;
        /* The API wants user and assistant turns to alternate: merge
         * neighbours that map to the same role. */
        while (j < q->nmessages && q->messages[j].role != PG_ROLE_SYSTEM &&
               strcmp(turn_role(q->messages[j].role), role) == 0)
            j++;
        if ((rc = encode_turn(e, q, i, j, &first)))
            return rc;
        i = j;
    }
    return pg_buf_append_char(b, ']');
}

/* ---- tools ------------------------------------------------------------- */

static int encode_tools(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    int rc;
    if ((rc = pg_json_append_key(b, true, "tools")) ||
        (rc = pg_buf_append_char(b, '[')))
        return rc;
    for (size_t i = 0; i < q->ntools; i++) {
        const pg_tool_t *t = &q->tools[i];
        pg_str_t schema = pg_str_trim(t->parameters);
        if (schema.n == 0) {
            /* input_schema is required and must be an object schema. */
            schema = PG_STR("{\"type\":\"object\",\"properties\":{}}");
        } else if (check_object(e, schema) != PG_OK) {
            return unsupported_id(e,
                                  "tools: parameters are not a JSON object: "
                                  "tool ",
                                  t->name);
        }
        if ((rc = pg_buf_append_cstr(b, i ? ",{" : "{")) ||
            (rc = key_str(b, false, "name", t->name)))
            return rc;
        if (t->description.n > 0 &&
            (rc = key_str(b, true, "description", t->description)))
            return rc;
        if ((rc = pg_json_append_key(b, true, "input_schema")) ||
            (rc = pg_buf_append_str(b, schema)) ||
            (rc = pg_buf_append_char(b, '}')))
            return rc;
    }
    return pg_buf_append_char(b, ']');
}

/* tool_choice, with disable_parallel_tool_use when the client turned
 * parallel calls off (the API keeps that flag inside tool_choice; "none"
 * has no such flag since no tool is called). */
static int encode_tool_choice(struct enc *e, const pg_request_t *q)
{
    pg_buf_t *b = e->b;
    bool no_parallel = (q->set & PG_SET_PARALLEL_TOOL_CALLS) &&
                       !q->parallel_tool_calls;
    const char *type;
    int rc;
    switch (q->tool_choice) {
    case PG_TOOL_CHOICE_AUTO:
        type = "auto";
        break;
    case PG_TOOL_CHOICE_REQUIRED:
        type = "any";
        break;
    case PG_TOOL_CHOICE_NAMED:
        type = "tool";
        break;
    case PG_TOOL_CHOICE_NONE:
        type = "none";
        no_parallel = false;
        break;
    default:
        if (!no_parallel)
            return PG_OK;
        type = "auto";
        break;
    }
    if ((rc = pg_json_append_key(b, true, "tool_choice")) ||
        (rc = pg_buf_append_char(b, '{')) ||
        (rc = key_str(b, false, "type", pg_str_c(type))))
        return rc;
    if (q->tool_choice == PG_TOOL_CHOICE_NAMED) {
        if (q->tool_choice_name.n == 0)
            return unsupported(e, "tool_choice: a named choice without name");
        if ((rc = key_str(b, true, "name", q->tool_choice_name)))
            return rc;
    }
    if (no_parallel &&
        (rc = pg_buf_append_cstr(b, ",\"disable_parallel_tool_use\":true")))
        return rc;
    return pg_buf_append_char(b, '}');
}

/* ---- the request --------------------------------------------------------- */

/* What the dialect cannot carry, refused before anything is written. */
static int check_request(struct enc *e, const pg_request_t *q)
{
    if (q->response_format == PG_FORMAT_JSON_SCHEMA)
        return unsupported(e, "response_format");
    if ((q->set & PG_SET_N) && q->n > 1)
        return unsupported(e, "n");
    /* json_object needs no field here: OpenAI makes clients ask for JSON
     * in the prompt, which travels as it is. Seed and the penalties have
     * no Anthropic counterpart and are sampling hints only. */
    return PG_OK;
}

static int encode_sampling(pg_buf_t *b, const pg_request_t *q,
                           const pg_anthropic_req_opts_t *o)
{
    int rc;
    if (q->nstop > 0) {
        if ((rc = pg_json_append_key(b, true, "stop_sequences")) ||
            (rc = pg_buf_append_char(b, '[')))
            return rc;
        for (size_t i = 0; i < q->nstop; i++) {
            if ((i && (rc = pg_buf_append_char(b, ','))) ||
                (rc = pg_json_append_string(b, q->stop[i])))
                return rc;
        }
        if ((rc = pg_buf_append_char(b, ']')))
            return rc;
    }
    if ((q->set & PG_SET_TEMPERATURE) &&
        ((rc = pg_json_append_key(b, true, "temperature")) ||
         (rc = pg_json_append_double(b, q->temperature))))
        return rc;
    if ((q->set & PG_SET_TOP_P) &&
        ((rc = pg_json_append_key(b, true, "top_p")) ||
         (rc = pg_json_append_double(b, q->top_p))))
        return rc;
    if ((q->set & PG_SET_TOP_K) &&
        ((rc = pg_json_append_key(b, true, "top_k")) ||
         (rc = pg_json_append_i64(b, q->top_k))))
        return rc;
    if (q->user.n > 0 &&
        ((rc = pg_json_append_key(b, true, "metadata")) ||
         (rc = pg_buf_append_char(b, '{')) ||
         (rc = key_str(b, false, "user_id", q->user)) ||
         (rc = pg_buf_append_char(b, '}'))))
        return rc;
    if (o->stream && (rc = pg_buf_append_cstr(b, ",\"stream\":true")))
        return rc;
    return PG_OK;
}

/* Extended thinking for a reasoning effort: the budget of each level sits
 * in the band the Anthropic decoder maps back to that level (low up to
 * 4096, medium up to 16384, high above), so the level survives a round
 * trip. 0: no thinking (no effort, "minimal"/"none", an unknown level, or
 * a request thinking cannot go with: the API refuses thinking together
 * with temperature, top_k, top_p below 0.95, a forced tool, or a tool
 * call in the history without its thinking block; what the client set
 * explicitly wins). *max_tokens includes the budget: it
 * grows by it when the client set no limit, else the budget is cut to
 * half the client's limit (none below the API's 1024 minimum). */
/* True when an assistant turn calls a tool without the thinking block
 * that, with thinking on, the API requires before it (an OpenAI client
 * has no way to send thinking back). */
static bool tool_turn_without_thinking(const pg_request_t *q)
{
    for (size_t i = 0; i < q->nmessages; i++) {
        const pg_message_t *m = &q->messages[i];
        bool calls = false, thinks = false;
        for (size_t k = 0; m->role == PG_ROLE_ASSISTANT && k < m->nparts;
             k++) {
            calls |= m->parts[k].kind == PG_PART_TOOL_CALL;
            thinks |= m->parts[k].kind == PG_PART_THINKING ||
                      m->parts[k].kind == PG_PART_REDACTED_THINKING;
        }
        if (calls && !thinks)
            return true;
    }
    return false;
}

static int64_t thinking_budget(const pg_request_t *q, int64_t *max_tokens)
{
    static const struct {
        const char *effort;
        int64_t budget;
    } levels[] = {{"low", 2048}, {"medium", 8192}, {"high", 24576}};
    int64_t budget = 0;
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
        if (pg_str_eqc(q->reasoning_effort, levels[i].effort))
            budget = levels[i].budget;
    if (budget == 0 || (q->set & (PG_SET_TEMPERATURE | PG_SET_TOP_K)) ||
        ((q->set & PG_SET_TOP_P) && q->top_p < 0.95) ||
        q->tool_choice == PG_TOOL_CHOICE_REQUIRED ||
        q->tool_choice == PG_TOOL_CHOICE_NAMED ||
        tool_turn_without_thinking(q))
        return 0;
    if (!(q->set & PG_SET_MAX_TOKENS)) {
        *max_tokens += budget;
        return budget;
    }
    if (budget >= *max_tokens)
        budget = *max_tokens / 2;
    return budget >= 1024 ? budget : 0;
}

static int encode_request(struct enc *e, const pg_request_t *q,
                          const pg_anthropic_req_opts_t *o)
{
    pg_buf_t *b = e->b;
    int64_t max_tokens = o->default_max_tokens > 0 ? o->default_max_tokens
                                                   : DEFAULT_MAX_TOKENS;
    int rc;
    if (q->set & PG_SET_MAX_TOKENS)
        max_tokens = q->max_tokens;
    int64_t budget = thinking_budget(q, &max_tokens);
    if ((rc = pg_buf_append_char(b, '{')) ||
        (rc = key_str(b, false, "model", q->model)) ||
        (rc = pg_json_append_key(b, true, "max_tokens")) ||
        (rc = pg_json_append_i64(b, max_tokens)))
        return rc;
    if (budget > 0 &&
        ((rc = pg_buf_append_cstr(b, ",\"thinking\":{\"type\":\"enabled\","
                                     "\"budget_tokens\":")) ||
         (rc = pg_json_append_i64(b, budget)) ||
         (rc = pg_buf_append_char(b, '}'))))
        return rc;
    if (q->nsystem > 0 && (rc = encode_system(e, q)))
        return rc;
    if ((rc = encode_messages(e, q)))
        return rc;
    if (q->ntools > 0 &&
        ((rc = encode_tools(e, q)) || (rc = encode_tool_choice(e, q))))
        return rc;
    if ((rc = encode_sampling(b, q, o)))
        return rc;
    return pg_buf_append_char(b, '}');
}

int pg_anthropic_encode_request(pg_buf_t *b, const pg_request_t *q,
                                const pg_anthropic_req_opts_t *o,
                                const char **why)
{
    const char *dummy = NULL;
    struct enc e = {.b = b, .why = why ? why : &dummy};
    *e.why = NULL;
    int rc = check_request(&e, q);
    if (rc != PG_OK)
        return rc;
    size_t mark = b->n;
    pg_arena_init(&e.scratch, 0);
    /* The arena parser reads OOM as bad input: claim the first chunk now
     * so that JSON texts that fit in it cannot fail for want of memory. */
    if (pg_arena_alloc(&e.scratch, 1) == NULL)
        rc = PG_ENOMEM;
    else
        rc = encode_request(&e, q, o);
    pg_arena_destroy(&e.scratch);
    if (rc != PG_OK) {
        /* Leave no half-written body behind. */
        b->n = mark;
        if (b->p)
            b->p[b->n] = '\0';
        if (rc == PG_ENOMEM)
            *e.why = "out of memory";
        else if (rc == PG_ETOOBIG)
            *e.why = "request body too big";
    }
    return rc;
}
