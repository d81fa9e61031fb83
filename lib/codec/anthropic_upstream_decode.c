/* anthropic_upstream_decode.c: an Anthropic upstream's answer -> canonical
 * events. The stream decoder is a state machine over the SSE event
 * sequence (message_start, content_block_start/delta/stop, message_delta,
 * message_stop, ping, error); the whole-message decoder replays a Message
 * object through the same handlers so both produce one event sequence.
 * Each event's JSON is parsed into a scratch arena that dies when the
 * event is done, so a long stream does not grow the request arena. Also
 * Anthropic error bodies. Loop thread of the request. */
#include <math.h>
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "canon/response.h"
#include "codec/anthropic_upstream.h"

/* d->open[i] holds a block's state in the low two bits and its canonical
 * part kind (+1) above them, so a delta can be checked against the kind
 * of its block without a second array. */
#define BS_UNUSED 0u
#define BS_OPEN 1u
#define BS_CLOSED 2u
/* A block type with no canonical counterpart (server tool blocks): its
 * events are accepted and dropped. */
#define BS_IGNORED 3u
#define BS_STATE(x) ((unsigned)(x)&3u)
#define BS_KIND(x) ((pg_part_kind_t)(((unsigned)(x) >> 2) - 1u))
#define BS_MAKE(st, kind) ((uint8_t)((st) | (((unsigned)(kind) + 1u) << 2)))

/* Everything a handler needs besides the decoder. */
struct run {
    pg_anthropic_stream_dec_t *d;
    pg_event_sink_fn sink;
    void *ud;
    const char **why;
    bool whole; /* decoding a whole message, not a stream */
};

int pg_anthropic_error_status(pg_str_t type)
{
    static const struct {
        const char *type;
        int status;
    } map[] = {
        {"invalid_request_error", 400}, {"authentication_error", 401},
        {"billing_error", 402},         {"permission_error", 403},
        {"not_found_error", 404},       {"request_too_large", 413},
        {"rate_limit_error", 429},      {"api_error", 500},
        {"timeout_error", 504},         {"overloaded_error", 529},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (pg_str_eqc(type, map[i].type))
            return map[i].status;
    return 502;
}

/* ---- helpers ------------------------------------------------------------- */

static int fail(struct run *r, const char *why)
{
    r->d->state = PG_ANT_DEC_FAILED;
    *r->why = why;
    return PG_EPARSE;
}

/* A failure whose message names a block index; the text lives in the
 * request arena (only failures pay for it). */
static int fail_at(struct run *r, const char *what, uint32_t index)
{
    pg_str_t s = pg_arena_printf(r->d->arena, "%s (block %u)", what, index);
    return fail(r, s.p ? s.p : what);
}

static int emit(struct run *r, const pg_event_t *ev)
{
    int rc = r->sink(r->ud, ev);
    if (rc != 0)
        r->d->state = PG_ANT_DEC_FAILED;
    return rc;
}

/* A token count member, left alone when absent, null or absurd. */
static void get_count(const cJSON *obj, const char *key, int64_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(it) && it->valuedouble >= 0 &&
        it->valuedouble < 1e15)
        *out = (int64_t)it->valuedouble;
}

/* Folds an Anthropic usage object into the canonical totals. Anthropic's
 * input_tokens excludes cached tokens; the canonical input is the whole
 * prompt (input + cache creation + cache read), as OpenAI counts it. */
static void usage_update(pg_usage_t *u, const cJSON *js, bool with_output)
{
    if (!cJSON_IsObject(js))
        return;
    int64_t base = u->input_tokens - u->cache_read_tokens -
                   u->cache_write_tokens;
    get_count(js, "input_tokens", &base);
    get_count(js, "cache_read_input_tokens", &u->cache_read_tokens);
    get_count(js, "cache_creation_input_tokens", &u->cache_write_tokens);
    if (with_output)
        get_count(js, "output_tokens", &u->output_tokens);
    u->input_tokens = base + u->cache_read_tokens + u->cache_write_tokens;
}

/* Unknown or missing reasons end the turn normally: the message did
 * complete, and an unknown name is a newer API, not a failure. */
static pg_stop_reason_t map_stop(pg_str_t name)
{
    pg_stop_reason_t s = name.n ? pg_stop_reason_from(name) : PG_STOP_NONE;
    return s == PG_STOP_NONE ? PG_STOP_END_TURN : s;
}

/* Writes a JSON value from a parsed tree (a tool_use input object of a
 * whole message, which has no text of its own to forward). */
static int json_write(pg_buf_t *b, const cJSON *it)
{
    int rc;
    if (cJSON_IsObject(it) || cJSON_IsArray(it)) {
        bool obj = cJSON_IsObject(it);
        if ((rc = pg_buf_append_char(b, obj ? '{' : '[')))
            return rc;
        for (const cJSON *c = it->child; c != NULL; c = c->next) {
            if (c != it->child && (rc = pg_buf_append_char(b, ',')))
                return rc;
            if (obj && ((rc = pg_json_append_string(b, pg_str_c(c->string))) ||
                        (rc = pg_buf_append_char(b, ':'))))
                return rc;
            if ((rc = json_write(b, c)))
                return rc;
        }
        return pg_buf_append_char(b, obj ? '}' : ']');
    }
    if (cJSON_IsString(it))
        return pg_json_append_string(b, pg_json_str(it));
    if (cJSON_IsNumber(it))
        return pg_json_append_double(b, it->valuedouble);
    if (cJSON_IsTrue(it))
        return pg_buf_append_cstr(b, "true");
    if (cJSON_IsFalse(it))
        return pg_buf_append_cstr(b, "false");
    return pg_buf_append_cstr(b, "null");
}

/* The "index" member: a block number within PG_CANON_MAX_BLOCKS. */
static int get_index(struct run *r, const cJSON *data, uint32_t *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(data, "index");
    if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
        it->valuedouble >= PG_CANON_MAX_BLOCKS ||
        it->valuedouble != floor(it->valuedouble))
        return fail(r, "content block event without a valid index");
    *out = (uint32_t)it->valuedouble;
    return PG_OK;
}

/* Makes d->open cover index i (zero = never started). */
static int slot_reserve(struct run *r, uint32_t i)
{
    pg_anthropic_stream_dec_t *d = r->d;
    if (i < d->nopen)
        return PG_OK;
    size_t n = d->nopen ? d->nopen * 2 : 8;
    if (n <= i)
        n = (size_t)i + 1;
    uint8_t *v = pg_arena_calloc(d->arena, n, 1);
    if (v == NULL) {
        d->state = PG_ANT_DEC_FAILED;
        *r->why = "out of memory";
        return PG_ENOMEM;
    }
    if (d->nopen)
        memcpy(v, d->open, d->nopen);
    d->open = v;
    d->nopen = n;
    return PG_OK;
}

/* The canonical index of upstream block i: dropped blocks leave no gap,
 * since clients (the Anthropic SDKs among them) index their content arrays
 * by the block index. Upstream blocks arrive in index order, so the count
 * of dropped blocks below i does not change while block i lives. */
static uint32_t canon_index(const pg_anthropic_stream_dec_t *d, uint32_t i)
{
    uint32_t dropped = 0;
    for (uint32_t k = 0; k < i && k < d->nopen; k++)
        dropped += BS_STATE(d->open[k]) == BS_IGNORED;
    return i - dropped;
}

/* ---- handlers, shared by the stream and the whole message --------------- */

static int on_message_start(struct run *r, const cJSON *msg)
{
    pg_anthropic_stream_dec_t *d = r->d;
    if (!cJSON_IsObject(msg))
        return fail(r, "message_start without a message object");
    usage_update(&d->usage, cJSON_GetObjectItemCaseSensitive(msg, "usage"),
                 false);
    pg_event_t ev = {.kind = PG_EV_MESSAGE_START};
    ev.id = pg_json_get_str(msg, "id");
    ev.model = pg_json_get_str(msg, "model");
    ev.usage = d->usage;
    d->state = PG_ANT_DEC_MESSAGE;
    int rc = emit(r, &ev);
    if (rc)
        return rc;
    pg_event_t u = {.kind = PG_EV_USAGE, .usage = d->usage};
    return emit(r, &u);
}

static int emit_delta(struct run *r, pg_event_kind_t kind, uint32_t index,
                      pg_str_t text)
{
    if (text.n == 0)
        return PG_OK;
    pg_event_t ev = {.kind = kind, .index = index, .text = text};
    return emit(r, &ev);
}

/* A tool_use block's input as arguments JSON. In a stream the input comes
 * as input_json_delta fragments after an empty {} placeholder, so only a
 * non-empty object is forwarded there; a whole message forwards it all. */
static int emit_tool_input(struct run *r, uint32_t index, const cJSON *input)
{
    if (input == NULL || (!r->whole && cJSON_IsObject(input) &&
                          input->child == NULL))
        return PG_OK;
    pg_buf_t b;
    pg_buf_init(&b, (size_t)1 << 26);
    int rc = json_write(&b, input);
    if (rc == PG_OK)
        rc = emit_delta(r, PG_EV_TOOL_ARGS_DELTA, index, pg_buf_str(&b));
    else
        r->d->state = PG_ANT_DEC_FAILED;
    pg_buf_free(&b);
    return rc;
}

/* The block kind of a content block type, or false for types with no
 * canonical counterpart. */
static bool block_kind(pg_str_t type, pg_part_kind_t *k)
{
    if (pg_str_eqc(type, "text"))
        *k = PG_PART_TEXT;
    else if (pg_str_eqc(type, "tool_use"))
        *k = PG_PART_TOOL_CALL;
    else if (pg_str_eqc(type, "thinking"))
        *k = PG_PART_THINKING;
    else if (pg_str_eqc(type, "redacted_thinking"))
        *k = PG_PART_REDACTED_THINKING;
    else
        return false;
    return true;
}

static int on_block_start(struct run *r, uint32_t index, const cJSON *cb)
{
    pg_anthropic_stream_dec_t *d = r->d;
    pg_part_kind_t kind;
    int rc;
    if (!cJSON_IsObject(cb))
        return fail_at(r, "content block is not an object", index);
    pg_str_t type = pg_json_get_str(cb, "type");
    if (type.p == NULL)
        return fail_at(r, "content block without a type", index);
    if ((rc = slot_reserve(r, index)))
        return rc;
    if (d->open[index] != BS_UNUSED)
        return fail_at(r, "content block started twice", index);
    /* Blocks come in index order; canon_index relies on it. */
    for (size_t k = (size_t)index + 1; k < d->nopen; k++)
        if (d->open[k] != BS_UNUSED)
            return fail_at(r, "content block started out of order", index);
    if (!block_kind(type, &kind)) {
        d->open[index] = BS_IGNORED;
        return PG_OK;
    }
    d->open[index] = BS_MAKE(BS_OPEN, kind);
    /* Errors name the upstream index (what the bytes say); events carry
     * the canonical one. */
    uint32_t ci = canon_index(d, index);
    pg_event_t ev = {.kind = PG_EV_BLOCK_START, .index = ci, .block = kind};
    if (kind == PG_PART_TOOL_CALL) {
        ev.id = pg_json_get_str(cb, "id");
        ev.name = pg_json_get_str(cb, "name");
        if (ev.id.n == 0 || ev.name.n == 0)
            return fail_at(r, "tool_use block without id or name", index);
    } else if (kind == PG_PART_REDACTED_THINKING) {
        /* The opaque data comes whole with the start, never as deltas. */
        ev.text = pg_json_get_str(cb, "data");
    }
    if ((rc = emit(r, &ev)))
        return rc;
    switch (kind) {
    case PG_PART_TEXT:
        return emit_delta(r, PG_EV_TEXT_DELTA, ci,
                          pg_json_get_str(cb, "text"));
    case PG_PART_TOOL_CALL:
        return emit_tool_input(r, ci,
                               cJSON_GetObjectItemCaseSensitive(cb, "input"));
    case PG_PART_THINKING:
        if ((rc = emit_delta(r, PG_EV_THINKING_DELTA, ci,
                             pg_json_get_str(cb, "thinking"))))
            return rc;
        return emit_delta(r, PG_EV_SIGNATURE, ci,
                          pg_json_get_str(cb, "signature"));
    default:
        return PG_OK;
    }
}

/* The open block at index, or a protocol failure. *ignored is set for a
 * block whose events are dropped. */
static int open_block(struct run *r, uint32_t index, const char *event,
                      pg_part_kind_t *kind, bool *ignored)
{
    pg_anthropic_stream_dec_t *d = r->d;
    uint8_t st = index < d->nopen ? d->open[index] : BS_UNUSED;
    *ignored = BS_STATE(st) == BS_IGNORED;
    if (*ignored)
        return PG_OK;
    if (BS_STATE(st) == BS_UNUSED) {
        pg_str_t s = pg_arena_printf(d->arena, "%s for a block never started",
                                     event);
        return fail_at(r, s.p ? s.p : event, index);
    }
    if (BS_STATE(st) == BS_CLOSED) {
        pg_str_t s = pg_arena_printf(d->arena, "%s after the block's stop",
                                     event);
        return fail_at(r, s.p ? s.p : event, index);
    }
    *kind = BS_KIND(st);
    return PG_OK;
}

/* One content_block_delta: the delta type must fit its block's kind. */
static int on_block_delta(struct run *r, uint32_t index, const cJSON *delta)
{
    static const struct {
        const char *type;
        const char *field;
        pg_part_kind_t block;
        pg_event_kind_t ev;
    } map[] = {
        {"text_delta", "text", PG_PART_TEXT, PG_EV_TEXT_DELTA},
        {"input_json_delta", "partial_json", PG_PART_TOOL_CALL,
         PG_EV_TOOL_ARGS_DELTA},
        {"thinking_delta", "thinking", PG_PART_THINKING, PG_EV_THINKING_DELTA},
        {"signature_delta", "signature", PG_PART_THINKING, PG_EV_SIGNATURE},
    };
    pg_part_kind_t kind = PG_PART_TEXT;
    bool ignored;
    int rc = open_block(r, index, "content_block_delta", &kind, &ignored);
    if (rc || ignored)
        return rc;
    pg_str_t type = pg_json_get_str(delta, "type");
    if (type.p == NULL)
        return fail_at(r, "content_block_delta without a delta type", index);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!pg_str_eqc(type, map[i].type))
            continue;
        if (kind != map[i].block)
            return fail_at(r, "delta type does not fit its block", index);
        pg_str_t text = pg_json_get_str(delta, map[i].field);
        if (text.p == NULL)
            return fail_at(r, "delta without its text field", index);
        return emit_delta(r, map[i].ev, canon_index(r->d, index), text);
    }
    /* citations_delta and newer delta types carry nothing canonical. */
    return PG_OK;
}

static int on_block_stop(struct run *r, uint32_t index)
{
    pg_part_kind_t kind;
    bool ignored;
    int rc = open_block(r, index, "content_block_stop", &kind, &ignored);
    if (rc || ignored)
        return rc;
    r->d->open[index] = BS_MAKE(BS_CLOSED, kind);
    pg_event_t ev = {.kind = PG_EV_BLOCK_STOP,
                     .index = canon_index(r->d, index)};
    return emit(r, &ev);
}

/* message_delta (or the tail of a whole message): stop reason, stop
 * sequence and the usage totals, output included. */
static int on_message_delta(struct run *r, const cJSON *delta,
                            const cJSON *usage)
{
    pg_anthropic_stream_dec_t *d = r->d;
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(delta, "stop_reason");
    if (cJSON_IsString(sr))
        d->stop = map_stop(pg_json_str(sr));
    pg_str_t seq = pg_json_get_str(delta, "stop_sequence");
    if (seq.n > 0) {
        d->stop_sequence = pg_arena_strdup(d->arena, seq);
        if (d->stop_sequence.p == NULL) {
            d->state = PG_ANT_DEC_FAILED;
            *r->why = "out of memory";
            return PG_ENOMEM;
        }
    }
    /* A whole message always ends with the totals, as a stream would. */
    if (usage == NULL && !r->whole)
        return PG_OK;
    usage_update(&d->usage, usage, true);
    pg_event_t ev = {.kind = PG_EV_USAGE, .usage = d->usage};
    return emit(r, &ev);
}

static int on_message_stop(struct run *r)
{
    pg_anthropic_stream_dec_t *d = r->d;
    for (size_t i = 0; i < d->nopen; i++)
        if (BS_STATE(d->open[i]) == BS_OPEN)
            return fail_at(r, "message_stop while a block is still open",
                           (uint32_t)i);
    d->state = PG_ANT_DEC_DONE;
    pg_event_t ev = {.kind = PG_EV_MESSAGE_STOP};
    ev.stop_reason = d->stop == PG_STOP_NONE ? PG_STOP_END_TURN : d->stop;
    ev.stop_sequence = d->stop_sequence;
    return emit(r, &ev);
}

/* An error event: {"type":"error","error":{"type","message"}}. */
static int on_error(struct run *r, const cJSON *data)
{
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(data, "error");
    pg_event_t ev = {.kind = PG_EV_ERROR};
    ev.error_type = pg_json_get_str(err, "type");
    ev.text = pg_json_get_str(err, "message");
    if (ev.error_type.n == 0)
        ev.error_type = PG_STR("api_error");
    if (ev.text.n == 0)
        ev.text = PG_STR("the upstream reported an error");
    ev.status = pg_anthropic_error_status(ev.error_type);
    r->d->state = PG_ANT_DEC_FAILED;
    r->d->errored = true;
    return r->sink(r->ud, &ev);
}

/* ---- the stream decoder --------------------------------------------------- */

void pg_anthropic_stream_dec_init(pg_anthropic_stream_dec_t *d, pg_arena_t *a)
{
    memset(d, 0, sizeof(*d));
    d->arena = a;
}

/* Dispatches one parsed event by type. A switch over the protocol's
 * states, kept in one place so the transitions read as a table. */
static int dispatch(struct run *r, pg_str_t type, const cJSON *data)
{
    pg_anthropic_stream_dec_t *d = r->d;
    uint32_t index;
    int rc;
    if (pg_str_eqc(type, "ping"))
        return PG_OK;
    if (d->state == PG_ANT_DEC_DONE) {
        pg_str_t s = pg_arena_printf(d->arena, "%.*s after message_stop",
                                     (int)(type.n > 64 ? 64 : type.n), type.p);
        return fail(r, s.p ? s.p : "an event after message_stop");
    }
    if (pg_str_eqc(type, "error"))
        return on_error(r, data);
    if (pg_str_eqc(type, "message_start")) {
        if (d->state != PG_ANT_DEC_START)
            return fail(r, "a second message_start");
        return on_message_start(
            r, cJSON_GetObjectItemCaseSensitive(data, "message"));
    }
    bool known = pg_str_eqc(type, "content_block_start") ||
                 pg_str_eqc(type, "content_block_delta") ||
                 pg_str_eqc(type, "content_block_stop") ||
                 pg_str_eqc(type, "message_delta") ||
                 pg_str_eqc(type, "message_stop");
    /* Anthropic may add event types; the API asks clients to skip them. */
    if (!known)
        return PG_OK;
    if (d->state == PG_ANT_DEC_START) {
        pg_str_t s = pg_arena_printf(d->arena, "%.*s before message_start",
                                     (int)(type.n > 64 ? 64 : type.n), type.p);
        return fail(r, s.p ? s.p : "content before message_start");
    }
    if (pg_str_eqc(type, "message_delta"))
        return on_message_delta(
            r, cJSON_GetObjectItemCaseSensitive(data, "delta"),
            cJSON_GetObjectItemCaseSensitive(data, "usage"));
    if (pg_str_eqc(type, "message_stop"))
        return on_message_stop(r);
    if ((rc = get_index(r, data, &index)))
        return rc;
    if (pg_str_eqc(type, "content_block_start"))
        return on_block_start(
            r, index, cJSON_GetObjectItemCaseSensitive(data, "content_block"));
    if (pg_str_eqc(type, "content_block_delta"))
        return on_block_delta(
            r, index, cJSON_GetObjectItemCaseSensitive(data, "delta"));
    return on_block_stop(r, index);
}

int pg_anthropic_stream_dec_feed(pg_anthropic_stream_dec_t *d, pg_str_t event,
                                 pg_str_t data, pg_event_sink_fn sink,
                                 void *ud, const char **why)
{
    const char *dummy = NULL;
    struct run r = {.d = d, .sink = sink, .ud = ud, .why = why ? why : &dummy};
    if (d->state == PG_ANT_DEC_FAILED)
        return fail(&r, "the stream already failed");
    pg_arena_t scratch;
    pg_arena_init(&scratch, 0);
    int rc;
    /* The arena parser reads OOM as bad input: claim the first chunk now
     * so that the common case (an event smaller than a chunk) reports
     * PG_ENOMEM for what it is. */
    if (pg_arena_alloc(&scratch, 1) == NULL) {
        d->state = PG_ANT_DEC_FAILED;
        *r.why = "out of memory";
        rc = PG_ENOMEM;
        goto out;
    }
    cJSON *root = pg_json_parse_arena(&scratch, data, NULL);
    if (!cJSON_IsObject(root)) {
        rc = fail(&r, "an event whose data is not a JSON object");
        goto out;
    }
    pg_str_t type = pg_json_get_str(root, "type");
    if (event.n > 0 && type.p != NULL && !pg_str_eq(event, type)) {
        rc = fail(&r, "the event name does not match its data type");
        goto out;
    }
    /* Some proxies drop the "event:" lines; the data names it too. */
    if (event.n == 0)
        event = type;
    if (event.n == 0) {
        rc = fail(&r, "an event without a type");
        goto out;
    }
    rc = dispatch(&r, event, root);
out:
    pg_arena_destroy(&scratch);
    return rc;
}

int pg_anthropic_stream_dec_finish(pg_anthropic_stream_dec_t *d,
                                   const char **why)
{
    const char *dummy = NULL;
    if (why == NULL)
        why = &dummy;
    switch (d->state) {
    case PG_ANT_DEC_DONE:
        return PG_OK;
    case PG_ANT_DEC_FAILED:
        if (d->errored) {
            *why = "the upstream ended the stream with an error event";
            return PG_EUPSTREAM;
        }
        *why = "the stream had already failed";
        return PG_EPARSE;
    case PG_ANT_DEC_START:
        *why = "the stream ended before message_start";
        break;
    default:
        *why = "the stream ended before message_stop";
        break;
    }
    d->state = PG_ANT_DEC_FAILED;
    return PG_EPARSE;
}

/* ---- a whole message ------------------------------------------------------ */

static int replay_message(struct run *r, const cJSON *root)
{
    int rc;
    pg_str_t type = pg_json_get_str(root, "type");
    if (pg_str_eqc(type, "error"))
        return fail(r, "an error body, not a message");
    if (!pg_str_eqc(type, "message"))
        return fail(r, "not a Messages response (type is not \"message\")");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!cJSON_IsArray(content))
        return fail(r, "message without a content array");
    if ((rc = on_message_start(r, root)))
        return rc;
    uint32_t i = 0;
    for (const cJSON *cb = content->child; cb != NULL; cb = cb->next, i++) {
        if (i >= PG_CANON_MAX_BLOCKS)
            return fail(r, "too many content blocks");
        if ((rc = on_block_start(r, i, cb)) ||
            (BS_STATE(r->d->open[i]) == BS_OPEN && (rc = on_block_stop(r, i))))
            return rc;
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if ((rc = on_message_delta(r, root, usage)))
        return rc;
    return on_message_stop(r);
}

int pg_anthropic_decode_response(pg_arena_t *a, pg_str_t body,
                                 pg_event_sink_fn sink, void *ud,
                                 const char **why)
{
    const char *dummy = NULL;
    pg_anthropic_stream_dec_t d;
    pg_anthropic_stream_dec_init(&d, a);
    struct run r = {.d = &d, .sink = sink, .ud = ud,
                    .why = why ? why : &dummy, .whole = true};
    pg_arena_t scratch;
    /* A chunk as big as the body: the tree fits in it, so an OOM shows up
     * here as PG_ENOMEM rather than as a parse failure. */
    pg_arena_init(&scratch, body.n * 2 + 4096);
    int rc;
    cJSON *root = NULL;
    if (pg_arena_alloc(&scratch, 1) == NULL) {
        *r.why = "out of memory";
        rc = PG_ENOMEM;
        goto out;
    }
    root = pg_json_parse_arena(&scratch, body, NULL);
    if (!cJSON_IsObject(root))
        rc = fail(&r, "the response body is not a JSON object");
    else
        rc = replay_message(&r, root);
out:
    pg_arena_destroy(&scratch);
    return rc;
}

/* ---- error bodies ---------------------------------------------------------- */

int pg_anthropic_parse_error(pg_arena_t *a, pg_str_t body, pg_str_t *type,
                             pg_str_t *message)
{
    cJSON *root = pg_json_parse_arena(a, body, NULL);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
    pg_str_t outer = pg_json_get_str(root, "type");
    if (!cJSON_IsObject(err) || (outer.p != NULL && !pg_str_eqc(outer, "error")))
        return PG_EPARSE;
    pg_str_t t = pg_json_get_str(err, "type");
    if (t.n == 0)
        return PG_EPARSE;
    /* The tree lives in a, so its strings already do. */
    *type = t;
    *message = pg_json_get_str(err, "message");
    if (message->p == NULL)
        *message = PG_STR("");
    return PG_OK;
}
