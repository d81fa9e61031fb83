/* openai_chat_encode.c: canonical response / events -> Chat Completions
 * JSON, written straight into pg_buf_t with the base/json.h writer (no
 * cJSON tree on the output path). Loop thread of the request. */
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "base/str.h"
#include "codec/openai_chat.h"

const char *pg_openai_finish_reason(pg_stop_reason_t r)
{
    switch (r) {
    case PG_STOP_MAX_TOKENS:
        return "length";
    case PG_STOP_TOOL_USE:
        return "tool_calls";
    case PG_STOP_CONTENT_FILTER:
        return "content_filter";
    default:
        return "stop";
    }
}

static int append_str_or_null(pg_buf_t *b, pg_str_t s)
{
    if (s.n == 0)
        return pg_buf_append_cstr(b, "null");
    return pg_json_append_string(b, s);
}

int pg_openai_error_json(pg_buf_t *b, pg_str_t message, pg_str_t type,
                         pg_str_t param, pg_str_t code)
{
    int rc;
    if ((rc = pg_buf_append_cstr(b, "{\"error\":{")) ||
        (rc = pg_json_append_key(b, false, "message")) ||
        (rc = pg_json_append_string(b, message)) ||
        (rc = pg_json_append_key(b, true, "type")) ||
        (rc = pg_json_append_string(b, type)) ||
        (rc = pg_json_append_key(b, true, "param")) ||
        (rc = append_str_or_null(b, param)) ||
        (rc = pg_json_append_key(b, true, "code")) ||
        (rc = append_str_or_null(b, code)))
        return rc;
    return pg_buf_append_cstr(b, "}}");
}

/* OpenAI counts cached prompt tokens inside prompt_tokens; the canonical
 * input_tokens follows that convention (providers that report cache reads
 * separately add them in), so no sum is needed here. */
static int append_usage(pg_buf_t *b, const pg_usage_t *u)
{
    int rc;
    if ((rc = pg_buf_append_char(b, '{')) ||
        (rc = pg_json_append_key(b, false, "prompt_tokens")) ||
        (rc = pg_json_append_i64(b, u->input_tokens)) ||
        (rc = pg_json_append_key(b, true, "completion_tokens")) ||
        (rc = pg_json_append_i64(b, u->output_tokens)) ||
        (rc = pg_json_append_key(b, true, "total_tokens")) ||
        (rc = pg_json_append_i64(b, u->input_tokens + u->output_tokens)) ||
        (rc = pg_json_append_key(b, true, "prompt_tokens_details")) ||
        (rc = pg_buf_append_char(b, '{')) ||
        (rc = pg_json_append_key(b, false, "cached_tokens")) ||
        (rc = pg_json_append_i64(b, u->cache_read_tokens)) ||
        (rc = pg_buf_append_char(b, '}')) ||
        (rc = pg_json_append_key(b, true, "completion_tokens_details")) ||
        (rc = pg_buf_append_char(b, '{')) ||
        (rc = pg_json_append_key(b, false, "reasoning_tokens")) ||
        (rc = pg_json_append_i64(b, u->reasoning_tokens)) ||
        (rc = pg_buf_append_char(b, '}')))
        return rc;
    return pg_buf_append_char(b, '}');
}

/* Appends the concatenation of every part of kind as one JSON string, or
 * null when there is none. */
static int append_joined(pg_buf_t *b, const pg_canon_response_t *r,
                         pg_part_kind_t kind, bool empty_string)
{
    size_t total = 0, count = 0;
    for (size_t i = 0; i < r->nparts; i++) {
        if (r->parts[i].kind == kind) {
            total += r->parts[i].text.n;
            count++;
        }
    }
    if (count == 0)
        return empty_string ? pg_buf_append_cstr(b, "\"\"")
                            : pg_buf_append_cstr(b, "null");
    if (count == 1) {
        for (size_t i = 0; i < r->nparts; i++) {
            if (r->parts[i].kind == kind)
                return pg_json_append_string(b, r->parts[i].text);
        }
    }
    /* Several blocks: join them first so the escaper sees whole UTF-8
     * sequences across block boundaries. */
    char *tmp = pg__malloc(total + 1);
    if (tmp == NULL)
        return PG_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < r->nparts; i++) {
        if (r->parts[i].kind == kind && r->parts[i].text.n) {
            memcpy(tmp + n, r->parts[i].text.p, r->parts[i].text.n);
            n += r->parts[i].text.n;
        }
    }
    int rc = pg_json_append_string(b, pg_str(tmp, n));
    pg__free(tmp);
    return rc;
}

static int append_tool_calls(pg_buf_t *b, const pg_canon_response_t *r)
{
    int rc;
    bool first = true;
    if ((rc = pg_json_append_key(b, true, "tool_calls")) ||
        (rc = pg_buf_append_char(b, '[')))
        return rc;
    for (size_t i = 0; i < r->nparts; i++) {
        const pg_part_t *p = &r->parts[i];
        if (p->kind != PG_PART_TOOL_CALL)
            continue;
        pg_str_t args = p->tool_call.arguments.n ? p->tool_call.arguments
                                                 : PG_STR("{}");
        if ((!first && (rc = pg_buf_append_char(b, ','))) ||
            (rc = pg_buf_append_char(b, '{')) ||
            (rc = pg_json_append_key(b, false, "id")) ||
            (rc = pg_json_append_string(b, p->tool_call.id)) ||
            (rc = pg_buf_append_cstr(b, ",\"type\":\"function\"")) ||
            (rc = pg_json_append_key(b, true, "function")) ||
            (rc = pg_buf_append_char(b, '{')) ||
            (rc = pg_json_append_key(b, false, "name")) ||
            (rc = pg_json_append_string(b, p->tool_call.name)) ||
            (rc = pg_json_append_key(b, true, "arguments")) ||
            (rc = pg_json_append_string(b, args)) ||
            (rc = pg_buf_append_cstr(b, "}}")))
            return rc;
        first = false;
    }
    return pg_buf_append_char(b, ']');
}

int pg_openai_chat_encode(pg_buf_t *b, const pg_canon_response_t *r,
                          pg_str_t id, int64_t created, pg_str_t model)
{
    int rc;
    bool has_tools = false, has_text = false;
    for (size_t i = 0; i < r->nparts; i++) {
        has_tools |= r->parts[i].kind == PG_PART_TOOL_CALL;
        has_text |= r->parts[i].kind == PG_PART_TEXT;
    }
    bool has_refusal = false;
    for (size_t i = 0; i < r->nparts; i++)
        has_refusal |= r->parts[i].kind == PG_PART_REFUSAL;
    if ((rc = pg_buf_append_char(b, '{')) ||
        (rc = pg_json_append_key(b, false, "id")) ||
        (rc = pg_json_append_string(b, id)) ||
        (rc = pg_buf_append_cstr(b, ",\"object\":\"chat.completion\"")) ||
        (rc = pg_json_append_key(b, true, "created")) ||
        (rc = pg_json_append_i64(b, created)) ||
        (rc = pg_json_append_key(b, true, "model")) ||
        (rc = pg_json_append_string(b, model)) ||
        (rc = pg_buf_append_cstr(b, ",\"choices\":[{\"index\":0,"
                                    "\"message\":{\"role\":\"assistant\"")) ||
        (rc = pg_json_append_key(b, true, "content")) ||
        /* content is null only when the answer is tool calls or a
         * refusal without text; an empty answer is "". */
        (rc = append_joined(b, r, PG_PART_TEXT,
                            !has_tools && !has_refusal && !has_text)) ||
        (rc = pg_json_append_key(b, true, "refusal")) ||
        (rc = append_joined(b, r, PG_PART_REFUSAL, false)) ||
        (has_tools && (rc = append_tool_calls(b, r))) ||
        (rc = pg_buf_append_cstr(b, ",\"annotations\":[]},"
                                    "\"logprobs\":null")) ||
        (rc = pg_json_append_key(b, true, "finish_reason")) ||
        (rc = pg_json_append_string(
             b, pg_str_c(pg_openai_finish_reason(r->stop_reason)))) ||
        (rc = pg_buf_append_cstr(b, "}]")) ||
        (rc = pg_json_append_key(b, true, "usage")) ||
        (rc = append_usage(b, &r->usage)))
        return rc;
    return pg_buf_append_cstr(b, ",\"system_fingerprint\":null}");
}

/* ---- stream encoder --------------------------------------------------------- */

void pg_openai_stream_enc_init(pg_openai_stream_enc_t *e, pg_arena_t *arena,
                               pg_str_t id, int64_t created, pg_str_t model,
                               bool include_usage, size_t max_chunk)
{
    memset(e, 0, sizeof(*e));
    e->arena = arena;
    e->id = id;
    e->created = created;
    e->model = model;
    e->include_usage = include_usage;
    pg_buf_init(&e->scratch, max_chunk);
}

void pg_openai_stream_enc_destroy(pg_openai_stream_enc_t *e)
{
    pg_buf_free(&e->scratch);
}

/* Everything before the delta object of a choice chunk. */
static int chunk_head(pg_openai_stream_enc_t *e, bool with_choice)
{
    pg_buf_t *b = &e->scratch;
    int rc;
    pg_buf_reset(b);
    if ((rc = pg_buf_append_char(b, '{')) ||
        (rc = pg_json_append_key(b, false, "id")) ||
        (rc = pg_json_append_string(b, e->id)) ||
        (rc = pg_buf_append_cstr(b, ",\"object\":\"chat.completion.chunk\""))
        || (rc = pg_json_append_key(b, true, "created")) ||
        (rc = pg_json_append_i64(b, e->created)) ||
        (rc = pg_json_append_key(b, true, "model")) ||
        (rc = pg_json_append_string(b, e->model)) ||
        (rc = pg_buf_append_cstr(b, ",\"system_fingerprint\":null")))
        return rc;
    if (!with_choice)
        return pg_buf_append_cstr(b, ",\"choices\":[]");
    return pg_buf_append_cstr(b, ",\"choices\":[{\"index\":0,\"delta\":");
}

/* Closes a choice chunk (after its delta) and hands it to cb. */
static int chunk_tail(pg_openai_stream_enc_t *e, const char *finish,
                      pg_openai_chunk_cb cb, void *ud)
{
    pg_buf_t *b = &e->scratch;
    int rc;
    if ((rc = pg_buf_append_cstr(b, ",\"logprobs\":null,\"finish_reason\":"))
        || (rc = finish ? pg_json_append_string(b, pg_str_c(finish))
                        : pg_buf_append_cstr(b, "null")) ||
        (rc = pg_buf_append_cstr(b, "}]")) ||
        (e->include_usage && (rc = pg_buf_append_cstr(b, ",\"usage\":null")))
        || (rc = pg_buf_append_char(b, '}')))
        return rc;
    return cb(ud, pg_buf_str(b));
}

static int emit_text(pg_openai_stream_enc_t *e, const char *key,
                     pg_str_t text, pg_openai_chunk_cb cb, void *ud)
{
    int rc;
    if ((rc = chunk_head(e, true)) ||
        (rc = pg_buf_append_char(&e->scratch, '{')) ||
        (rc = pg_json_append_key(&e->scratch, false, key)) ||
        (rc = pg_json_append_string(&e->scratch, text)) ||
        (rc = pg_buf_append_char(&e->scratch, '}')))
        return rc;
    return chunk_tail(e, NULL, cb, ud);
}

/* A tool_calls delta; id and name only in the first one of a call. */
static int emit_tool(pg_openai_stream_enc_t *e, int32_t index,
                     const pg_event_t *ev, bool first, pg_openai_chunk_cb cb,
                     void *ud)
{
    pg_buf_t *b = &e->scratch;
    int rc;
    if ((rc = chunk_head(e, true)) ||
        (rc = pg_buf_append_cstr(b, "{\"tool_calls\":[{\"index\":")) ||
        (rc = pg_json_append_i64(b, index)))
        return rc;
    if (first) {
        if ((rc = pg_json_append_key(b, true, "id")) ||
            (rc = pg_json_append_string(b, ev->id)) ||
            (rc = pg_buf_append_cstr(b, ",\"type\":\"function\"")) ||
            (rc = pg_buf_append_cstr(b, ",\"function\":{\"name\":")) ||
            (rc = pg_json_append_string(b, ev->name)) ||
            (rc = pg_buf_append_cstr(b, ",\"arguments\":\"\"}")))
            return rc;
    } else {
        if ((rc = pg_buf_append_cstr(b, ",\"function\":{\"arguments\":")) ||
            (rc = pg_json_append_string(b, ev->text)) ||
            (rc = pg_buf_append_char(b, '}')))
            return rc;
    }
    if ((rc = pg_buf_append_cstr(b, "}]}")))
        return rc;
    return chunk_tail(e, NULL, cb, ud);
}

static int emit_finish(pg_openai_stream_enc_t *e, pg_stop_reason_t stop,
                       pg_openai_chunk_cb cb, void *ud)
{
    int rc;
    if ((rc = chunk_head(e, true)) ||
        (rc = pg_buf_append_cstr(&e->scratch, "{}")) ||
        (rc = chunk_tail(e, pg_openai_finish_reason(stop), cb, ud)))
        return rc;
    if (!e->include_usage)
        return PG_OK;
    if ((rc = chunk_head(e, false)) ||
        (rc = pg_json_append_key(&e->scratch, true, "usage")) ||
        (rc = append_usage(&e->scratch, &e->usage)) ||
        (rc = pg_buf_append_char(&e->scratch, '}')))
        return rc;
    return cb(ud, pg_buf_str(&e->scratch));
}

static int emit_error(pg_openai_stream_enc_t *e, const pg_event_t *ev,
                      pg_openai_chunk_cb cb, void *ud)
{
    pg_str_t type = ev->error_type.n ? ev->error_type : PG_STR("server_error");
    pg_str_t msg = ev->text.n ? ev->text
                              : PG_STR("The upstream provider failed.");
    pg_buf_reset(&e->scratch);
    int rc = pg_openai_error_json(&e->scratch, msg, type, PG_STR_NULL,
                                  PG_STR_NULL);
    if (rc)
        return rc;
    return cb(ud, pg_buf_str(&e->scratch));
}

/* Ends a block. A tool call that never got an arguments fragment (a call
 * without parameters) gets "{}" first: clients parse the concatenated
 * arguments as JSON, and "" is not JSON (the whole-body encoder writes
 * "{}" for the same call). */
static int close_block(pg_openai_stream_enc_t *e, struct pg_oai_block *b,
                       pg_openai_chunk_cb cb, void *ud)
{
    b->open = false;
    if (b->tool_index < 0 || b->args)
        return PG_OK;
    b->args = true;
    pg_event_t ev = {.kind = PG_EV_TOOL_ARGS_DELTA, .text = PG_STR("{}")};
    return emit_tool(e, b->tool_index, &ev, false, cb, ud);
}

static struct pg_oai_block *enc_block(pg_openai_stream_enc_t *e, uint32_t i)
{
    if (i >= e->nblocks || !e->blocks[i].open)
        return NULL;
    return &e->blocks[i];
}

static int block_start(pg_openai_stream_enc_t *e, const pg_event_t *ev,
                       pg_openai_chunk_cb cb, void *ud)
{
    if (ev->index >= PG_CANON_MAX_BLOCKS)
        return PG_EPARSE;
    while (e->nblocks <= ev->index) {
        void *v = e->blocks;
        if (pg_canon_grow(e->arena, &v, e->nblocks, &e->capblocks,
                          sizeof(*e->blocks)))
            return PG_ENOMEM;
        e->blocks = v;
        e->blocks[e->nblocks++] = (struct pg_oai_block){.tool_index = -1};
    }
    struct pg_oai_block *b = &e->blocks[ev->index];
    if (b->used)
        return PG_EPARSE;
    b->used = true;
    b->open = true;
    b->kind = ev->block;
    if (ev->block != PG_PART_TOOL_CALL)
        return PG_OK;
    b->tool_index = (int32_t)e->ntools++;
    return emit_tool(e, b->tool_index, ev, true, cb, ud);
}

/* The state machine: one switch over the event kind, gated by state. */
int pg_openai_stream_enc_feed(pg_openai_stream_enc_t *e, const pg_event_t *ev,
                              pg_openai_chunk_cb cb, void *ud)
{
    struct pg_oai_block *b;
    if (e->state == PG_OAI_STREAM_DONE || e->state == PG_OAI_STREAM_FAILED)
        return PG_EPARSE;
    if (ev->kind == PG_EV_ERROR) {
        e->state = PG_OAI_STREAM_FAILED;
        return emit_error(e, ev, cb, ud);
    }
    if (e->state == PG_OAI_STREAM_WAIT_START) {
        if (ev->kind != PG_EV_MESSAGE_START)
            return PG_EPARSE;
        e->state = PG_OAI_STREAM_BODY;
        if (ev->usage.input_tokens)
            e->usage.input_tokens = ev->usage.input_tokens;
        int rc;
        if ((rc = chunk_head(e, true)) ||
            (rc = pg_buf_append_cstr(&e->scratch,
                                     "{\"role\":\"assistant\",\"content\":"
                                     "\"\"}")))
            return rc;
        return chunk_tail(e, NULL, cb, ud);
    }
    switch (ev->kind) {
    case PG_EV_MESSAGE_START:
        return PG_EPARSE;
    case PG_EV_BLOCK_START:
        return block_start(e, ev, cb, ud);
    case PG_EV_TEXT_DELTA:
        if ((b = enc_block(e, ev->index)) == NULL ||
            (b->kind != PG_PART_TEXT && b->kind != PG_PART_REFUSAL))
            return PG_EPARSE;
        if (ev->text.n == 0)
            return PG_OK;
        return emit_text(e, b->kind == PG_PART_TEXT ? "content" : "refusal",
                         ev->text, cb, ud);
    case PG_EV_TOOL_ARGS_DELTA:
        if ((b = enc_block(e, ev->index)) == NULL || b->tool_index < 0)
            return PG_EPARSE;
        if (ev->text.n == 0)
            return PG_OK;
        b->args = true;
        return emit_tool(e, b->tool_index, ev, false, cb, ud);
    case PG_EV_THINKING_DELTA:
    case PG_EV_SIGNATURE:
        /* Chat Completions has no field for thinking: dropped. */
        return enc_block(e, ev->index) ? PG_OK : PG_EPARSE;
    case PG_EV_BLOCK_STOP:
        if ((b = enc_block(e, ev->index)) == NULL)
            return PG_EPARSE;
        return close_block(e, b, cb, ud);
    case PG_EV_USAGE:
        if (ev->usage.input_tokens)
            e->usage.input_tokens = ev->usage.input_tokens;
        if (ev->usage.output_tokens)
            e->usage.output_tokens = ev->usage.output_tokens;
        if (ev->usage.cache_read_tokens)
            e->usage.cache_read_tokens = ev->usage.cache_read_tokens;
        if (ev->usage.cache_write_tokens)
            e->usage.cache_write_tokens = ev->usage.cache_write_tokens;
        if (ev->usage.reasoning_tokens)
            e->usage.reasoning_tokens = ev->usage.reasoning_tokens;
        return PG_OK;
    case PG_EV_MESSAGE_STOP:
        for (size_t i = 0; i < e->nblocks; i++) {
            int rc;
            if (e->blocks[i].open &&
                (rc = close_block(e, &e->blocks[i], cb, ud)))
                return rc;
        }
        e->state = PG_OAI_STREAM_DONE;
        return emit_finish(e, ev->stop_reason, cb, ud);
    default:
        return PG_EPARSE;
    }
}
