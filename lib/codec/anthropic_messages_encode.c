/* anthropic_messages_encode.c: canonical answers -> what an Anthropic
 * client reads: the whole Message object, the SSE event sequence of a
 * streamed Message (an explicit state machine over canonical events) and
 * error bodies. The event shapes are the ones anthropic_upstream_decode.c
 * reads, so a stream survives a round trip through both. Loop thread of
 * the request. */
#include <string.h>

#include "base/json.h"
#include "base/str.h"
#include "codec/anthropic_messages.h"

/* Negative marks in pg_anthropic_stream_enc_t.map. */
#define MAP_UNUSED (-1)
#define MAP_STOPPED (-2)
#define MAP_CLOSED_EARLY (-3)
#define MAP_DROPPED (-4)

static int key_str(pg_buf_t *b, bool comma, const char *key, pg_str_t v)
{
    int rc = pg_json_append_key(b, comma, key);
    return rc ? rc : pg_json_append_string(b, v);
}

static int key_i64(pg_buf_t *b, bool comma, const char *key, int64_t v)
{
    int rc = pg_json_append_key(b, comma, key);
    return rc ? rc : pg_json_append_i64(b, v);
}

const char *pg_anthropic_stop_reason(pg_stop_reason_t r)
{
    switch (r) {
    case PG_STOP_END_TURN:
        return "end_turn";
    case PG_STOP_MAX_TOKENS:
        return "max_tokens";
    case PG_STOP_STOP_SEQUENCE:
        return "stop_sequence";
    case PG_STOP_TOOL_USE:
        return "tool_use";
    case PG_STOP_CONTENT_FILTER:
        return "refusal";
    case PG_STOP_NONE:
    case PG_STOP_ERROR:
        break;
    }
    /* A finished message always has a reason; a turn that ended without
     * one ended normally. */
    return "end_turn";
}

/* "stop_reason":..,"stop_sequence":.. (the sequence null unless set). */
static int append_stop(pg_buf_t *b, bool comma, pg_stop_reason_t r,
                       pg_str_t seq)
{
    int rc;
    if ((rc = key_str(b, comma, "stop_reason",
                      pg_str_c(pg_anthropic_stop_reason(r)))) ||
        (rc = pg_json_append_key(b, true, "stop_sequence")))
        return rc;
    if (seq.n == 0)
        return pg_buf_append_cstr(b, "null");
    return pg_json_append_string(b, seq);
}

/* The usage object. Anthropic counts input_tokens without the cached
 * parts; the canonical input is the whole prompt. */
static int append_usage(pg_buf_t *b, const pg_usage_t *u, bool with_input)
{
    int rc;
    if ((rc = pg_buf_append_char(b, '{')))
        return rc;
    if (with_input) {
        int64_t in = u->input_tokens - u->cache_read_tokens -
                     u->cache_write_tokens;
        if (in < 0)
            in = 0;
        if ((rc = key_i64(b, false, "input_tokens", in)) ||
            (rc = key_i64(b, true, "cache_creation_input_tokens",
                          u->cache_write_tokens)) ||
            (rc = key_i64(b, true, "cache_read_input_tokens",
                          u->cache_read_tokens)) ||
            (rc = pg_buf_append_char(b, ',')))
            return rc;
    }
    if ((rc = key_i64(b, false, "output_tokens", u->output_tokens)))
        return rc;
    return pg_buf_append_char(b, '}');
}

/* ---- the whole message ------------------------------------------------------ */

/* tool_use input: the arguments JSON, which must be an object. Models cut
 * off by max_tokens can leave it incomplete; the caller is then told the
 * arguments could not be read rather than the client handed broken JSON.
 * The arena parser reports running out of memory as bad input, so the
 * scratch arena's first chunk is claimed up front, sized for the tree of
 * a typical argument text (a much larger text may still read an OOM
 * during the parse as PG_EPARSE; the caller answers 502 either way). */
static int append_input(pg_buf_t *b, pg_str_t args)
{
    if (args.n == 0)
        return pg_buf_append_cstr(b, "{}");
    size_t chunk = args.n < ((size_t)1 << 16) ? args.n * 16 + 4096
                                              : (size_t)1 << 20;
    pg_arena_t scratch;
    pg_arena_init(&scratch, chunk);
    if (pg_arena_alloc(&scratch, 1) == NULL) {
        pg_arena_destroy(&scratch);
        return PG_ENOMEM;
    }
    const cJSON *root = pg_json_parse_arena(&scratch, args, NULL);
    bool ok = cJSON_IsObject(root);
    pg_arena_destroy(&scratch);
    if (!ok)
        return PG_EPARSE;
    return pg_buf_append_str(b, args);
}

/* One content block; *wrote false for parts with no response form. */
static int append_block(pg_buf_t *b, const pg_part_t *p, bool comma,
                        bool *wrote)
{
    int rc;
    *wrote = false;
    switch (p->kind) {
    case PG_PART_TEXT:
    case PG_PART_REFUSAL: /* Anthropic refuses in plain text. */
        if ((rc = pg_buf_append_cstr(b, comma ? ",{" : "{")) ||
            (rc = key_str(b, false, "type", PG_STR("text"))) ||
            (rc = key_str(b, true, "text", p->text)))
            return rc;
        break;
    case PG_PART_TOOL_CALL:
        if ((rc = pg_buf_append_cstr(b, comma ? ",{" : "{")) ||
            (rc = key_str(b, false, "type", PG_STR("tool_use"))) ||
            (rc = key_str(b, true, "id", p->tool_call.id)) ||
            (rc = key_str(b, true, "name", p->tool_call.name)) ||
            (rc = pg_json_append_key(b, true, "input")) ||
            (rc = append_input(b, p->tool_call.arguments)))
            return rc;
        break;
    case PG_PART_THINKING:
        if ((rc = pg_buf_append_cstr(b, comma ? ",{" : "{")) ||
            (rc = key_str(b, false, "type", PG_STR("thinking"))) ||
            (rc = key_str(b, true, "thinking", p->text)) ||
            (rc = key_str(b, true, "signature", p->signature)))
            return rc;
        break;
    case PG_PART_REDACTED_THINKING:
        if ((rc = pg_buf_append_cstr(b, comma ? ",{" : "{")) ||
            (rc = key_str(b, false, "type", PG_STR("redacted_thinking"))) ||
            (rc = key_str(b, true, "data", p->text)))
            return rc;
        break;
    case PG_PART_IMAGE:
    case PG_PART_TOOL_RESULT:
        /* Not something a model answers with. */
        return PG_OK;
    }
    *wrote = true;
    return pg_buf_append_char(b, '}');
}

int pg_anthropic_messages_encode(pg_buf_t *b, const pg_canon_response_t *r,
                                 pg_str_t id, pg_str_t model)
{
    size_t mark = b->n;
    bool any = false;
    int rc;
    if ((rc = pg_buf_append_char(b, '{')) ||
        (rc = key_str(b, false, "id", id)) ||
        (rc = key_str(b, true, "type", PG_STR("message"))) ||
        (rc = key_str(b, true, "role", PG_STR("assistant"))) ||
        (rc = key_str(b, true, "model", model)) ||
        (rc = pg_json_append_key(b, true, "content")) ||
        (rc = pg_buf_append_char(b, '[')))
        goto out;
    for (size_t i = 0; i < r->nparts; i++) {
        bool wrote;
        if ((rc = append_block(b, &r->parts[i], any, &wrote)))
            goto out;
        any = any || wrote;
    }
    if ((rc = pg_buf_append_char(b, ']')) ||
        (rc = append_stop(b, true, r->stop_reason, r->stop_sequence)) ||
        (rc = pg_json_append_key(b, true, "usage")) ||
        (rc = append_usage(b, &r->usage, true)))
        goto out;
    rc = pg_buf_append_char(b, '}');
out:
    if (rc != PG_OK) {
        /* Leave no half-written body behind. */
        b->n = mark;
        if (b->p)
            b->p[b->n] = '\0';
    }
    return rc;
}

pg_str_t pg_anthropic_error_type(int status)
{
    switch (status) {
    case 400: return PG_STR("invalid_request_error");
    case 401: return PG_STR("authentication_error");
    case 403: return PG_STR("permission_error");
    case 404: return PG_STR("not_found_error");
    case 413: return PG_STR("request_too_large");
    case 429: return PG_STR("rate_limit_error");
    case 504: return PG_STR("timeout_error");
    case 529: return PG_STR("overloaded_error");
    default:
        return status >= 500 ? PG_STR("api_error")
                             : PG_STR("invalid_request_error");
    }
}

pg_str_t pg_anthropic_client_error_type(int status, pg_str_t type)
{
    static const char *const known[] = {
        "invalid_request_error", "authentication_error", "permission_error",
        "not_found_error", "request_too_large", "rate_limit_error",
        "api_error", "overloaded_error", "timeout_error", "billing_error",
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (pg_str_eqc(type, known[i]))
            return type;
    }
    return pg_anthropic_error_type(status ? status : 502);
}

int pg_anthropic_error_json(pg_buf_t *b, pg_str_t type, pg_str_t message)
{
    int rc;
    if ((rc = pg_buf_append_cstr(b, "{\"type\":\"error\",\"error\":{")) ||
        (rc = key_str(b, false, "type", type)) ||
        (rc = key_str(b, true, "message", message)))
        return rc;
    return pg_buf_append_cstr(b, "}}");
}

/* ---- the stream encoder --------------------------------------------------- */

void pg_anthropic_stream_enc_init(pg_anthropic_stream_enc_t *e,
                                  pg_arena_t *arena, pg_str_t id,
                                  pg_str_t model, size_t max_event)
{
    memset(e, 0, sizeof(*e));
    e->state = PG_ANT_ENC_WAIT_START;
    e->arena = arena;
    e->id = id;
    e->model = model;
    e->open = -1;
    e->open_canon = -1;
    pg_buf_init(&e->scratch, max_event);
}

void pg_anthropic_stream_enc_destroy(pg_anthropic_stream_enc_t *e)
{
    pg_buf_free(&e->scratch);
}

struct out {
    pg_anthropic_stream_enc_t *e;
    pg_anthropic_sse_cb cb;
    void *ud;
};

/* Hands the JSON built in scratch to the callback as one event. A failure
 * of the callback or of the encoder ends the stream for good. */
static int send(struct out *o, const char *event, int rc)
{
    pg_anthropic_stream_enc_t *e = o->e;
    if (rc == PG_OK)
        rc = o->cb(o->ud, pg_str_c(event), pg_buf_str(&e->scratch));
    if (rc != PG_OK)
        e->state = PG_ANT_ENC_FAILED;
    return rc;
}

static int broken(pg_anthropic_stream_enc_t *e)
{
    e->state = PG_ANT_ENC_FAILED;
    return PG_EPARSE;
}

static int on_message_start(struct out *o, const pg_event_t *ev)
{
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    int rc;
    e->usage = ev->usage;
    pg_buf_reset(b);
    if ((rc = pg_buf_append_cstr(b, "{\"type\":\"message_start\","
                                    "\"message\":{")) ||
        (rc = key_str(b, false, "id", e->id.n ? e->id : ev->id)) ||
        (rc = pg_buf_append_cstr(b, ",\"type\":\"message\","
                                    "\"role\":\"assistant\"")) ||
        (rc = key_str(b, true, "model", e->model.n ? e->model : ev->model)) ||
        (rc = pg_buf_append_cstr(b, ",\"content\":[],\"stop_reason\":null,"
                                    "\"stop_sequence\":null")) ||
        (rc = pg_json_append_key(b, true, "usage")) ||
        (rc = append_usage(b, &e->usage, true)))
        return send(o, "message_start", rc);
    rc = pg_buf_append_cstr(b, "}}");
    if ((rc = send(o, "message_start", rc)))
        return rc;
    e->state = PG_ANT_ENC_MESSAGE;
    pg_buf_reset(b);
    return send(o, "ping", pg_buf_append_cstr(b, "{\"type\":\"ping\"}"));
}

static int block_stop(struct out *o)
{
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    pg_buf_reset(b);
    /* Appends, not printf: this runs for every block of every stream. */
    int rc = pg_buf_append_cstr(b, "{\"type\":\"content_block_stop\","
                                   "\"index\":");
    if (rc == PG_OK)
        rc = pg_json_append_i64(b, e->open);
    if (rc == PG_OK)
        rc = pg_buf_append_char(b, '}');
    e->open = -1;
    e->open_canon = -1;
    return send(o, "content_block_stop", rc);
}

/* Makes map cover canonical index i. */
static int map_reserve(pg_anthropic_stream_enc_t *e, uint32_t i)
{
    if (i < e->nmap)
        return PG_OK;
    if (i >= PG_CANON_MAX_BLOCKS)
        return broken(e);
    size_t n = e->nmap ? e->nmap : 8;
    while (n <= i)
        n *= 2;
    int32_t *m = pg_arena_alloc(e->arena, n * sizeof(*m));
    if (m == NULL) {
        e->state = PG_ANT_ENC_FAILED;
        return PG_ENOMEM;
    }
    if (e->nmap)
        memcpy(m, e->map, e->nmap * sizeof(*m));
    for (size_t k = e->nmap; k < n; k++)
        m[k] = MAP_UNUSED;
    e->map = m;
    e->nmap = n;
    return PG_OK;
}

/* The content_block of a content_block_start; false for kinds with no
 * Messages block. */
static bool block_json(pg_buf_t *b, const pg_event_t *ev, int *rc)
{
    switch (ev->block) {
    case PG_PART_TEXT:
    case PG_PART_REFUSAL:
        *rc = pg_buf_append_cstr(b, "{\"type\":\"text\",\"text\":\"\"}");
        return true;
    case PG_PART_TOOL_CALL:
        /* The input arrives as input_json_delta fragments after an empty
         * placeholder, as the API streams it. */
        if (!(*rc = pg_buf_append_cstr(b, "{\"type\":\"tool_use\"")) &&
            !(*rc = key_str(b, true, "id", ev->id)) &&
            !(*rc = key_str(b, true, "name", ev->name)))
            *rc = pg_buf_append_cstr(b, ",\"input\":{}}");
        return true;
    case PG_PART_THINKING:
        *rc = pg_buf_append_cstr(b, "{\"type\":\"thinking\",\"thinking\":\"\","
                                    "\"signature\":\"\"}");
        return true;
    case PG_PART_REDACTED_THINKING:
        if (!(*rc = pg_buf_append_cstr(b, "{\"type\":\"redacted_thinking\"")) &&
            !(*rc = key_str(b, true, "data", ev->text)))
            *rc = pg_buf_append_char(b, '}');
        return true;
    case PG_PART_IMAGE:
    case PG_PART_TOOL_RESULT:
        break;
    }
    return false;
}

static int on_block_start(struct out *o, const pg_event_t *ev)
{
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    int rc;
    if ((rc = map_reserve(e, ev->index)))
        return rc;
    if (e->map[ev->index] != MAP_UNUSED)
        return broken(e);
    /* A Messages stream has one block open at a time: a block started
     * while another is open ends that one. */
    if (e->open >= 0) {
        e->map[e->open_canon] = MAP_CLOSED_EARLY;
        if ((rc = block_stop(o)))
            return rc;
    }
    pg_buf_reset(b);
    rc = pg_buf_append_cstr(b, "{\"type\":\"content_block_start\",\"index\":");
    if (rc == PG_OK)
        rc = pg_json_append_i64(b, e->next_index);
    if (rc == PG_OK)
        rc = pg_buf_append_cstr(b, ",\"content_block\":");
    if (ev->block == PG_PART_TOOL_CALL && (ev->id.n == 0 || ev->name.n == 0))
        return broken(e);
    if (rc == PG_OK && !block_json(b, ev, &rc)) {
        e->map[ev->index] = MAP_DROPPED;
        return PG_OK;
    }
    if (rc == PG_OK)
        rc = pg_buf_append_char(b, '}');
    e->map[ev->index] = (int32_t)e->next_index;
    e->open = (int32_t)e->next_index++;
    e->open_canon = (int32_t)ev->index;
    e->open_kind = ev->block == PG_PART_REFUSAL ? PG_PART_TEXT : ev->block;
    return send(o, "content_block_start", rc);
}

static int on_delta(struct out *o, const pg_event_t *ev)
{
    static const struct {
        pg_event_kind_t ev;
        pg_part_kind_t block;
        const char *type;
        const char *field;
    } map[] = {
        {PG_EV_TEXT_DELTA, PG_PART_TEXT, "text_delta", "text"},
        {PG_EV_TOOL_ARGS_DELTA, PG_PART_TOOL_CALL, "input_json_delta",
         "partial_json"},
        {PG_EV_THINKING_DELTA, PG_PART_THINKING, "thinking_delta",
         "thinking"},
        {PG_EV_SIGNATURE, PG_PART_THINKING, "signature_delta", "signature"},
    };
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    if (ev->index < e->nmap && e->map[ev->index] == MAP_DROPPED)
        return PG_OK;
    if (e->open < 0 || (uint32_t)e->open_canon != ev->index)
        return broken(e);
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (map[i].ev != ev->kind)
            continue;
        if (map[i].block != e->open_kind)
            return broken(e);
        if (ev->text.n == 0)
            return PG_OK;
        pg_buf_reset(b);
        /* Appends, not printf: this runs for every delta. */
        int rc = pg_buf_append_cstr(b, "{\"type\":\"content_block_delta\","
                                       "\"index\":");
        if (rc == PG_OK)
            rc = pg_json_append_i64(b, e->open);
        if (rc == PG_OK)
            rc = pg_buf_append_cstr(b, ",\"delta\":{\"type\":\"");
        if (rc == PG_OK)
            rc = pg_buf_append_cstr(b, map[i].type);
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, '"');
        if (rc == PG_OK)
            rc = key_str(b, true, map[i].field, ev->text);
        if (rc == PG_OK)
            rc = pg_buf_append_cstr(b, "}}");
        return send(o, "content_block_delta", rc);
    }
    return broken(e);
}

static int on_block_stop(struct out *o, const pg_event_t *ev)
{
    pg_anthropic_stream_enc_t *e = o->e;
    int32_t m = ev->index < e->nmap ? e->map[ev->index] : MAP_UNUSED;
    if (m == MAP_DROPPED)
        return PG_OK;
    if (m == MAP_CLOSED_EARLY) {
        e->map[ev->index] = MAP_STOPPED;
        return PG_OK;
    }
    if (m < 0 || e->open_canon != (int32_t)ev->index)
        return broken(e);
    e->map[ev->index] = MAP_STOPPED;
    return block_stop(o);
}

static int on_message_stop(struct out *o, const pg_event_t *ev)
{
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    int rc;
    if (e->open >= 0) {
        e->map[e->open_canon] = MAP_STOPPED;
        if ((rc = block_stop(o)))
            return rc;
    }
    pg_buf_reset(b);
    if (!(rc = pg_buf_append_cstr(b, "{\"type\":\"message_delta\","
                                     "\"delta\":{")) &&
        !(rc = append_stop(b, false, ev->stop_reason, ev->stop_sequence)) &&
        !(rc = pg_buf_append_cstr(b, "},\"usage\":")) &&
        !(rc = append_usage(b, &e->usage, true)))
        rc = pg_buf_append_char(b, '}');
    if ((rc = send(o, "message_delta", rc)))
        return rc;
    e->state = PG_ANT_ENC_DONE;
    pg_buf_reset(b);
    rc = pg_buf_append_cstr(b, "{\"type\":\"message_stop\"}");
    return send(o, "message_stop", rc);
}

static int on_error(struct out *o, const pg_event_t *ev)
{
    pg_anthropic_stream_enc_t *e = o->e;
    pg_buf_t *b = &e->scratch;
    pg_buf_reset(b);
    /* An OpenAI-type upstream's mid-stream error says "server_error"; an
     * Anthropic client is told a type its SDK knows. */
    int rc = pg_anthropic_error_json(
        b, pg_anthropic_client_error_type(ev->status, ev->error_type),
        ev->text.n ? ev->text : PG_STR("the provider reported an error"));
    rc = send(o, "error", rc);
    e->state = PG_ANT_ENC_FAILED;
    return rc;
}

int pg_anthropic_stream_enc_feed(pg_anthropic_stream_enc_t *e,
                                 const pg_event_t *ev, pg_anthropic_sse_cb cb,
                                 void *ud)
{
    struct out o = {e, cb, ud};
    if (e->state == PG_ANT_ENC_DONE || e->state == PG_ANT_ENC_FAILED)
        return PG_EPARSE;
    /* An error may come before anything else: the client then reads one
     * error event (a stream already answered 200 cannot change status). */
    if (ev->kind == PG_EV_ERROR)
        return on_error(&o, ev);
    if (e->state == PG_ANT_ENC_WAIT_START) {
        if (ev->kind != PG_EV_MESSAGE_START)
            return broken(e);
        return on_message_start(&o, ev);
    }
    switch (ev->kind) {
    case PG_EV_MESSAGE_START:
        return broken(e);
    case PG_EV_BLOCK_START:
        return on_block_start(&o, ev);
    case PG_EV_TEXT_DELTA:
    case PG_EV_TOOL_ARGS_DELTA:
    case PG_EV_THINKING_DELTA:
    case PG_EV_SIGNATURE:
        return on_delta(&o, ev);
    case PG_EV_BLOCK_STOP:
        return on_block_stop(&o, ev);
    case PG_EV_USAGE:
        e->usage = ev->usage;
        return PG_OK;
    case PG_EV_MESSAGE_STOP:
        return on_message_stop(&o, ev);
    case PG_EV_ERROR:
        break;
    }
    return on_error(&o, ev);
}
