/* openai_upstream.c: an OpenAI-type provider's answers -> canonical events.
 * A whole chat.completion body, the chat.completion.chunk payloads of a
 * stream (an explicit state machine, see openai_upstream.h) and error
 * bodies. Every body goes through the arena JSON parser. The request
 * encoder is in openai_upstream_encode.c. Loop thread of the request. */
#include <math.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "canon/response.h"
#include "codec/decode_util.h"
#include "codec/openai_upstream.h"

/* ---- shared readers --------------------------------------------------------- */

/* OpenAI writes absent fields as null in many places: members are read
 * with pg_dec_member, which treats null as absent. */

/* A token count: a non-negative integral number, else 0. */
static int64_t count_of(const cJSON *obj, const char *key)
{
    const cJSON *it = pg_dec_member(obj, key);
    if (!cJSON_IsNumber(it))
        return 0;
    double v = it->valuedouble;
    if (!(v >= 0) || v > 9e15)
        return 0;
    return (int64_t)v;
}

/* usage -> canonical usage. OpenAI counts cached tokens inside
 * prompt_tokens and reasoning tokens inside completion_tokens, which is
 * the canonical convention too: no arithmetic. */
static bool read_usage(const cJSON *usage, pg_usage_t *u)
{
    if (!cJSON_IsObject(usage))
        return false;
    memset(u, 0, sizeof(*u));
    u->input_tokens = count_of(usage, "prompt_tokens");
    u->output_tokens = count_of(usage, "completion_tokens");
    u->cache_read_tokens = count_of(
        pg_dec_member(usage, "prompt_tokens_details"), "cached_tokens");
    u->reasoning_tokens =
        count_of(pg_dec_member(usage, "completion_tokens_details"),
                 "reasoning_tokens");
    return true;
}

/* The choice with index 0 (n > 1 answers carry others: ignored). A choice
 * without an index counts as 0 only when it is the first. */
static const cJSON *choice0(const cJSON *choices)
{
    const cJSON *c;
    bool first = true;
    cJSON_ArrayForEach(c, choices)
    {
        const cJSON *idx = pg_dec_member(c, "index");
        if (cJSON_IsObject(c) &&
            ((idx == NULL && first) ||
             (cJSON_IsNumber(idx) && idx->valuedouble == 0)))
            return c;
        first = false;
    }
    return NULL;
}

static pg_stop_reason_t stop_of(const cJSON *finish)
{
    pg_stop_reason_t r = pg_stop_reason_from(pg_json_str(finish));
    /* A compatible server's own name ("eos", "abort"...) still ends the
     * turn; the canonical stream needs a reason. */
    return r == PG_STOP_NONE ? PG_STOP_END_TURN : r;
}

/* The HTTP status an error type stands for, for a mid-stream error that
 * carries no status of its own. */
static int status_of_error(pg_str_t type, pg_str_t code)
{
    static const struct {
        const char *name;
        int status;
    } map[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401},
        {"invalid_api_key", 401},       {"permission_error", 403},
        {"not_found_error", 404},       {"model_not_found", 404},
        {"rate_limit_error", 429},      {"rate_limit_exceeded", 429},
        {"insufficient_quota", 429},    {"tokens", 429},
        {"server_error", 500},          {"api_error", 500},
        {"service_unavailable", 503},   {"overloaded_error", 529},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (pg_str_eqc(code, map[i].name) || pg_str_eqc(type, map[i].name))
            return map[i].status;
    }
    return 502;
}

/* Reads root.error (an object, or the bare string some compatible servers
 * send) into slices that live as long as root's arena. */
static int read_error(pg_arena_t *a, const cJSON *root, pg_str_t *type,
                      pg_str_t *message, pg_str_t *param, pg_str_t *code)
{
    const cJSON *err = pg_dec_member(root, "error");
    *type = *message = *param = *code = PG_STR_NULL;
    if (cJSON_IsString(err)) {
        *message = pg_json_str(err);
        return PG_OK;
    }
    if (!cJSON_IsObject(err))
        return PG_EPARSE;
    *message = pg_json_get_str(err, "message");
    *type = pg_json_get_str(err, "type");
    *param = pg_json_get_str(err, "param");
    const cJSON *c = pg_dec_member(err, "code");
    if (cJSON_IsString(c)) {
        *code = pg_json_str(c);
    } else if (cJSON_IsNumber(c) && fabs(c->valuedouble) < 9e15) {
        /* Some servers put the HTTP status here as a number. */
        char tmp[24];
        size_t n = pg_i64_to_chars((int64_t)c->valuedouble, tmp);
        *code = pg_arena_strdup(a, pg_str(tmp, n));
        if (code->p == NULL)
            return PG_ENOMEM;
    }
    return PG_OK;
}

int pg_openai_parse_error(pg_arena_t *a, pg_str_t body, pg_str_t *type,
                          pg_str_t *message, pg_str_t *param, pg_str_t *code)
{
    cJSON *root = pg_json_parse_arena(a, body, NULL);
    if (!cJSON_IsObject(root)) {
        *type = *message = *param = *code = PG_STR_NULL;
        return PG_EPARSE;
    }
    /* The tree lives in a, so its strings already outlive the call. */
    return read_error(a, root, type, message, param, code);
}

static int emit(pg_event_sink_fn sink, void *ud, pg_event_t ev)
{
    return sink(ud, &ev);
}

/* ---- whole response ----------------------------------------------------------- */

struct whole {
    pg_event_sink_fn sink;
    void *ud;
    uint32_t next;
};

/* One complete block: start, one delta when text is non-empty, stop. */
static int whole_block(struct whole *w, pg_part_kind_t kind, pg_str_t id,
                       pg_str_t name, pg_str_t text)
{
    uint32_t index = w->next++;
    int rc;
    pg_event_t start = {.kind = PG_EV_BLOCK_START, .index = index,
                        .block = kind, .id = id, .name = name};
    if ((rc = emit(w->sink, w->ud, start)))
        return rc;
    if (text.n > 0) {
        pg_event_t d = {.kind = kind == PG_PART_TOOL_CALL
                                    ? PG_EV_TOOL_ARGS_DELTA
                                    : PG_EV_TEXT_DELTA,
                        .index = index, .text = text};
        if ((rc = emit(w->sink, w->ud, d)))
            return rc;
    }
    return emit(w->sink, w->ud,
                (pg_event_t){.kind = PG_EV_BLOCK_STOP, .index = index});
}

static int whole_tool_calls(struct whole *w, const cJSON *tcs,
                            const char **why)
{
    const cJSON *tc;
    int rc;
    cJSON_ArrayForEach(tc, tcs)
    {
        const cJSON *fn = pg_dec_member(tc, "function");
        pg_str_t id = pg_json_get_str(tc, "id");
        pg_str_t name = pg_json_get_str(fn, "name");
        if (!cJSON_IsObject(tc) || id.n == 0 || name.n == 0) {
            *why = "a tool call without an id or a function name";
            return PG_EPARSE;
        }
        if (w->next >= PG_CANON_MAX_BLOCKS) {
            *why = "too many content blocks";
            return PG_EPARSE;
        }
        if ((rc = whole_block(w, PG_PART_TOOL_CALL, id, name,
                              pg_json_get_str(fn, "arguments"))))
            return rc;
    }
    return PG_OK;
}

int pg_openai_chat_decode_response(pg_arena_t *a, pg_str_t body,
                                   pg_event_sink_fn sink, void *ud,
                                   const char **why)
{
    struct whole w = {sink, ud, 0};
    int rc;
    cJSON *root = pg_json_parse_arena(a, body, NULL);
    if (!cJSON_IsObject(root)) {
        *why = "the upstream body is not a JSON object";
        return PG_EPARSE;
    }
    if (pg_dec_member(root, "error") != NULL) {
        *why = "the upstream answered with an error object";
        return PG_EPARSE;
    }
    const cJSON *choices = pg_dec_member(root, "choices");
    const cJSON *c = cJSON_IsArray(choices) ? choice0(choices) : NULL;
    const cJSON *msg = pg_dec_member(c, "message");
    if (!cJSON_IsObject(msg)) {
        *why = "a chat.completion without choices[0].message";
        return PG_EPARSE;
    }
    pg_usage_t usage;
    bool have_usage = read_usage(pg_dec_member(root, "usage"), &usage);
    pg_event_t start = {.kind = PG_EV_MESSAGE_START,
                        .id = pg_json_get_str(root, "id"),
                        .model = pg_json_get_str(root, "model")};
    if (have_usage)
        start.usage.input_tokens = usage.input_tokens;
    if ((rc = emit(sink, ud, start)))
        return rc;
    pg_str_t text = pg_json_get_str(msg, "content");
    pg_str_t refusal = pg_json_get_str(msg, "refusal");
    const cJSON *tcs = pg_dec_member(msg, "tool_calls");
    if (text.n > 0 &&
        (rc = whole_block(&w, PG_PART_TEXT, PG_STR_NULL, PG_STR_NULL, text)))
        return rc;
    if (refusal.n > 0 && (rc = whole_block(&w, PG_PART_REFUSAL, PG_STR_NULL,
                                           PG_STR_NULL, refusal)))
        return rc;
    if (cJSON_IsArray(tcs) && (rc = whole_tool_calls(&w, tcs, why)))
        return rc;
    if (have_usage &&
        (rc = emit(sink, ud, (pg_event_t){.kind = PG_EV_USAGE,
                                          .usage = usage})))
        return rc;
    return emit(sink, ud,
                (pg_event_t){.kind = PG_EV_MESSAGE_STOP,
                             .stop_reason =
                                 stop_of(pg_dec_member(c, "finish_reason"))});
}

/* ---- stream decoder ------------------------------------------------------------ */

static void on_scratch_free(void *ud)
{
    pg_arena_destroy(ud);
}

void pg_openai_stream_dec_init(pg_openai_stream_dec_t *d, pg_arena_t *a)
{
    memset(d, 0, sizeof(*d));
    d->state = PG_OAI_DEC_START;
    d->arena = a;
    d->open_block = -1;
    pg_arena_init(&d->scratch, 0);
}

static int dec_fail(pg_openai_stream_dec_t *d, const char **why,
                    const char *text)
{
    d->state = PG_OAI_DEC_FAILED;
    *why = text;
    return PG_EPARSE;
}

/* Ends the open block, if any. */
static int close_open(pg_openai_stream_dec_t *d, pg_event_sink_fn sink,
                      void *ud)
{
    if (d->open_block < 0)
        return PG_OK;
    uint32_t index = (uint32_t)d->open_block;
    d->open_block = -1;
    d->open_is_text = false;
    return emit(sink, ud,
                (pg_event_t){.kind = PG_EV_BLOCK_STOP, .index = index});
}

/* Opens a new block of kind (closing the open one first). */
static int open_new(pg_openai_stream_dec_t *d, pg_part_kind_t kind,
                    pg_str_t id, pg_str_t name, pg_event_sink_fn sink,
                    void *ud, const char **why)
{
    int rc;
    if ((rc = close_open(d, sink, ud)))
        return rc;
    if (d->next_index >= PG_CANON_MAX_BLOCKS)
        return dec_fail(d, why, "too many content blocks in the stream");
    uint32_t index = d->next_index++;
    d->open_block = (int32_t)index;
    d->open_kind = kind;
    d->open_is_text = kind == PG_PART_TEXT;
    return emit(sink, ud,
                (pg_event_t){.kind = PG_EV_BLOCK_START, .index = index,
                             .block = kind, .id = id, .name = name});
}

/* A content or refusal fragment: continues the open block of that kind or
 * starts one. */
static int text_delta(pg_openai_stream_dec_t *d, pg_part_kind_t kind,
                      pg_str_t text, pg_event_sink_fn sink, void *ud,
                      const char **why)
{
    int rc;
    if (text.n == 0)
        return PG_OK;
    if ((d->open_block < 0 || d->open_kind != kind) &&
        (rc = open_new(d, kind, PG_STR_NULL, PG_STR_NULL, sink, ud, why)))
        return rc;
    return emit(sink, ud,
                (pg_event_t){.kind = PG_EV_TEXT_DELTA,
                             .index = (uint32_t)d->open_block,
                             .text = text});
}

/* The canonical block of OpenAI tool index oi (-1: none yet), growing the
 * map so that oi has a slot. */
static int tool_slot(pg_openai_stream_dec_t *d, size_t oi, int32_t **slot)
{
    if (oi >= d->ntool_blocks) {
        size_t n = d->ntool_blocks ? d->ntool_blocks * 2 : 4;
        while (n <= oi)
            n *= 2;
        int32_t *m = pg_arena_alloc(d->arena, n * sizeof(*m));
        if (m == NULL)
            return PG_ENOMEM;
        if (d->ntool_blocks)
            memcpy(m, d->tool_blocks, d->ntool_blocks * sizeof(*m));
        for (size_t i = d->ntool_blocks; i < n; i++)
            m[i] = -1;
        d->tool_blocks = m;
        d->ntool_blocks = n;
    }
    *slot = &d->tool_blocks[oi];
    return PG_OK;
}

static int tool_delta(pg_openai_stream_dec_t *d, const cJSON *tc,
                      size_t position, pg_event_sink_fn sink, void *ud,
                      const char **why)
{
    const cJSON *idx = pg_dec_member(tc, "index");
    const cJSON *fn = pg_dec_member(tc, "function");
    int32_t *slot;
    int rc;
    if (!cJSON_IsObject(tc))
        return dec_fail(d, why, "a tool_calls entry that is not an object");
    /* Some compatible servers leave index out: the array position is the
     * only other identity a call has. */
    double oi = idx ? idx->valuedouble : (double)position;
    if ((idx && !cJSON_IsNumber(idx)) || !(oi >= 0) ||
        oi >= PG_CANON_MAX_BLOCKS || oi != floor(oi))
        return dec_fail(d, why, "a tool_calls entry with a bad index");
    if ((rc = tool_slot(d, (size_t)oi, &slot)))
        return rc;
    pg_str_t args = pg_json_get_str(fn, "arguments");
    if (*slot < 0) {
        pg_str_t id = pg_json_get_str(tc, "id");
        pg_str_t name = pg_json_get_str(fn, "name");
        if (id.n == 0 || name.n == 0)
            return dec_fail(d, why,
                            "the first delta of a tool call has no id or "
                            "no function name");
        if ((rc = open_new(d, PG_PART_TOOL_CALL, id, name, sink, ud, why)))
            return rc;
        *slot = d->open_block;
    } else if (*slot != d->open_block) {
        /* Canonical blocks cannot reopen; OpenAI streams one call at a
         * time, so this is a broken or interleaving upstream. */
        if (args.n == 0)
            return PG_OK;
        return dec_fail(d, why,
                        "arguments for a tool call whose block had already "
                        "ended");
    }
    if (args.n == 0)
        return PG_OK;
    return emit(sink, ud,
                (pg_event_t){.kind = PG_EV_TOOL_ARGS_DELTA,
                             .index = (uint32_t)*slot, .text = args});
}

/* True when a delta object carries something to emit. */
static bool delta_has_content(const cJSON *delta)
{
    const cJSON *tcs = pg_dec_member(delta, "tool_calls");
    return pg_json_get_str(delta, "content").n > 0 ||
           pg_json_get_str(delta, "refusal").n > 0 ||
           (cJSON_IsArray(tcs) && cJSON_GetArraySize(tcs) > 0);
}

static int apply_delta(pg_openai_stream_dec_t *d, const cJSON *delta,
                       pg_event_sink_fn sink, void *ud, const char **why)
{
    int rc;
    if (delta == NULL)
        return PG_OK;
    if (!cJSON_IsObject(delta))
        return dec_fail(d, why, "choices[0].delta is not an object");
    /* Text before tool calls within one chunk: the order a model writes
     * them in when a server batches both into one delta. */
    if ((rc = text_delta(d, PG_PART_TEXT, pg_json_get_str(delta, "content"),
                         sink, ud, why)) ||
        (rc = text_delta(d, PG_PART_REFUSAL,
                         pg_json_get_str(delta, "refusal"), sink, ud, why)))
        return rc;
    const cJSON *tcs = pg_dec_member(delta, "tool_calls");
    if (tcs == NULL)
        return PG_OK;
    if (!cJSON_IsArray(tcs))
        return dec_fail(d, why, "delta.tool_calls is not an array");
    size_t pos = 0;
    const cJSON *tc;
    cJSON_ArrayForEach(tc, tcs)
    {
        if ((rc = tool_delta(d, tc, pos++, sink, ud, why)))
            return rc;
    }
    return PG_OK;
}

static int finish_message(pg_openai_stream_dec_t *d, pg_event_sink_fn sink,
                          void *ud)
{
    d->state = PG_OAI_DEC_DONE;
    return emit(sink, ud, (pg_event_t){.kind = PG_EV_MESSAGE_STOP,
                                       .stop_reason = d->stop});
}

static int on_error_payload(pg_openai_stream_dec_t *d, const cJSON *root,
                            pg_event_sink_fn sink, void *ud)
{
    pg_str_t type, message, param, code;
    int rc = read_error(&d->scratch, root, &type, &message, &param, &code);
    if (rc == PG_ENOMEM)
        return rc;
    d->state = PG_OAI_DEC_FAILED;
    pg_event_t ev = {.kind = PG_EV_ERROR,
                     .status = status_of_error(type, code),
                     .error_type = type.n ? type : PG_STR("server_error"),
                     .text = message.n ? message
                                       : PG_STR("The upstream provider "
                                                "reported an error.")};
    return emit(sink, ud, ev);
}

/* One parsed chunk; the state machine proper. Longer than most functions
 * because each state's rule reads best next to the others. */
static int on_chunk(pg_openai_stream_dec_t *d, const cJSON *root,
                    pg_event_sink_fn sink, void *ud, const char **why)
{
    int rc;
    if (pg_dec_member(root, "error") != NULL) {
        if (d->state == PG_OAI_DEC_DONE)
            return dec_fail(d, why, "an error after the message had ended");
        return on_error_payload(d, root, sink, ud);
    }
    const cJSON *choices = pg_dec_member(root, "choices");
    if (choices != NULL && !cJSON_IsArray(choices))
        return dec_fail(d, why, "choices is not an array");
    const cJSON *c = choices ? choice0(choices) : NULL;
    const cJSON *delta = pg_dec_member(c, "delta");
    const cJSON *finish = pg_dec_member(c, "finish_reason");
    pg_usage_t usage;
    bool has_usage = read_usage(pg_dec_member(root, "usage"), &usage);

    if (d->state == PG_OAI_DEC_FINISHED || d->state == PG_OAI_DEC_DONE) {
        /* A repeated finish_reason on an empty trailer is harmless;
         * content after the finish is not. */
        if (delta_has_content(delta))
            return dec_fail(d, why, "a delta after finish_reason");
        if (!has_usage || d->state == PG_OAI_DEC_DONE)
            return PG_OK; /* an empty trailer, or usage repeated */
        d->usage = usage;
        d->have_usage = true;
        if ((rc = emit(sink, ud, (pg_event_t){.kind = PG_EV_USAGE,
                                              .usage = usage})))
            return rc;
        return finish_message(d, sink, ud);
    }
    if (d->state == PG_OAI_DEC_START) {
        pg_event_t start = {.kind = PG_EV_MESSAGE_START,
                            .id = pg_json_get_str(root, "id"),
                            .model = pg_json_get_str(root, "model")};
        if (has_usage)
            start.usage.input_tokens = usage.input_tokens;
        d->state = PG_OAI_DEC_BODY;
        if ((rc = emit(sink, ud, start)))
            return rc;
    }
    if ((rc = apply_delta(d, delta, sink, ud, why)))
        return rc;
    if (finish != NULL) {
        if (!cJSON_IsString(finish))
            return dec_fail(d, why, "finish_reason is not a string");
        d->stop = stop_of(finish);
        d->state = PG_OAI_DEC_FINISHED;
        if ((rc = close_open(d, sink, ud)))
            return rc;
    }
    if (has_usage) {
        /* Servers that report usage on every chunk give running totals;
         * the one on the finishing chunk (or after it) is the last. */
        d->usage = usage;
        d->have_usage = true;
        if ((rc = emit(sink, ud, (pg_event_t){.kind = PG_EV_USAGE,
                                              .usage = usage})))
            return rc;
        if (d->state == PG_OAI_DEC_FINISHED)
            return finish_message(d, sink, ud);
    }
    return PG_OK;
}

int pg_openai_stream_dec_feed(pg_openai_stream_dec_t *d, pg_str_t payload,
                              pg_event_sink_fn sink, void *ud,
                              const char **why)
{
    if (d->state == PG_OAI_DEC_FAILED) {
        *why = "data after the stream had failed";
        return PG_EPARSE;
    }
    if (pg_str_eq(pg_str_trim(payload), PG_STR("[DONE]"))) {
        if (d->state == PG_OAI_DEC_FINISHED)
            return finish_message(d, sink, ud);
        if (d->state == PG_OAI_DEC_DONE)
            return PG_OK;
        return dec_fail(d, why, "[DONE] before any finish_reason");
    }
    if (!d->scratch_hooked) {
        if (pg_arena_on_free(d->arena, on_scratch_free, &d->scratch))
            return PG_ENOMEM;
        d->scratch_hooked = true;
    }
    /* The previous payload's tree is no longer referenced: every event
     * slice was borrowed for its emit call only. */
    pg_arena_destroy(&d->scratch);
    pg_arena_init(&d->scratch, 0);
    size_t off = 0;
    cJSON *root = pg_json_parse_arena(&d->scratch, payload, &off);
    if (root == NULL)
        return dec_fail(d, why, "a data line that is not valid JSON");
    if (!cJSON_IsObject(root))
        return dec_fail(d, why, "a data line that is not a JSON object");
    return on_chunk(d, root, sink, ud, why);
}

int pg_openai_stream_dec_finish(pg_openai_stream_dec_t *d,
                                pg_event_sink_fn sink, void *ud,
                                const char **why)
{
    switch (d->state) {
    case PG_OAI_DEC_FINISHED:
        return finish_message(d, sink, ud);
    case PG_OAI_DEC_DONE:
    case PG_OAI_DEC_FAILED:
        return PG_OK;
    default:
        d->state = PG_OAI_DEC_FAILED;
        *why = "the upstream stream ended before finish_reason";
        return PG_EPARSE;
    }
}
