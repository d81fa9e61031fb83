/* mock.c: the built-in "mock" provider. No network, deterministic; it
 * implements struct pg_provider_vtable exactly as a host's provider would,
 * so it exercises the whole gateway path in tests and demos.
 *
 * Options (providers[].mock):
 *   reply        "echo" (default): the text of the last user message;
 *                anything else: that fixed text.
 *   chunks       1..4096 (default 8): the reply is sent as that many
 *                TEXT_DELTA pieces of near-equal byte size, never splitting
 *                a UTF-8 sequence (fewer when the text is shorter).
 *   chunk_delay  a duration (default 0ms) waited between pieces.
 *
 * Events: MESSAGE_START (id "mock-<random>", the request's model, input
 * usage), one text block, USAGE, MESSAGE_STOP(END_TURN). Input tokens are
 * the whitespace-separated words of all text in system and messages;
 * output tokens the words of the reply. When max_tokens is set and smaller
 * than the reply's word count, the reply is cut to that many words and the
 * stop reason is MAX_TOKENS.
 *
 * Tool calls: when the request offers tools, tool_choice is not "none",
 * and either tool_choice is "required" (first tool) / names a tool (that
 * tool), or the last user message's text contains the name of an offered
 * tool (the first such tool in the tools list), the mock answers with one
 * TOOL_CALL block instead of text: id "call_<random>", the tool's name, and
 * arguments that fill every property in the schema's "required" array by
 * its declared type (string "mock", number/integer 1, boolean true, array
 * [], object {}, anything else null), sent as 2 or more TOOL_ARGS_DELTA
 * fragments; the stop reason is TOOL_USE.
 *
 * Threads: create/destroy off the loop; start/cancel and the timer on the
 * call's loop. The instance is immutable after create; all per-call state
 * is in struct mock_call, whose memory holds the uv timer and is freed only
 * in the timer's close callback. */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/list.h"
#include "base/str.h"
#include "base/time.h"
#include "provider/registry.h"

#define MOCK_CHUNKS_DEFAULT 8
#define MOCK_CHUNKS_MAX 4096
/* The biggest arguments object the mock builds for a tool call. */
#define MOCK_ARGS_MAX (64 * 1024)

struct mock {
    bool echo;
    pg_str_t reply;    /* borrowed: the config snapshot outlives us */
    int chunks;
    uint64_t delay_ms;
};

struct mock_call {
    uv_timer_t timer;           /* owned; the struct is freed on its close */
    pg_provider_call_t *call;   /* borrowed until done or cancel */
    pg_event_t *events;         /* the whole answer, in the call's arena */
    bool *pause_after;          /* wait chunk_delay after events[i] */
    size_t nevents;
    size_t next;
    uint64_t delay_ms;
    bool stopped;               /* emit said the client is gone */
    bool paused;                /* emit said the client is slow: resume() */
};

/* ---- create / destroy --------------------------------------------------- */

static int mock_create(const pg_provider_config_t *cfg, void **self,
                       char *err, size_t errlen)
{
    struct mock m = {.echo = true, .chunks = MOCK_CHUNKS_DEFAULT};
    for (size_t i = 0; i < cfg->noptions; i++) {
        pg_str_t k = cfg->options[i].key;
        pg_str_t v = cfg->options[i].value;
        if (v.p == NULL)
            v = PG_STR("");
        if (pg_str_eqc(k, "reply")) {
            m.echo = pg_str_eqc(v, "echo");
            m.reply = v;
        } else if (pg_str_eqc(k, "chunks")) {
            int64_t n;
            if (pg_str_to_i64(pg_str_trim(v), &n) != PG_OK || n < 1 ||
                n > MOCK_CHUNKS_MAX) {
                snprintf(err, errlen,
                         "chunks: must be an integer between 1 and %d, "
                         "got \"%.*s\"", MOCK_CHUNKS_MAX, (int)v.n, v.p);
                return PG_ECONFIG;
            }
            m.chunks = (int)n;
        } else if (pg_str_eqc(k, "chunk_delay")) {
            if (pg_parse_duration_ms(pg_str_trim(v), &m.delay_ms) != PG_OK) {
                snprintf(err, errlen,
                         "chunk_delay: invalid duration \"%.*s\" (use e.g. "
                         "\"0ms\", \"50ms\", \"1s\")", (int)v.n, v.p);
                return PG_ECONFIG;
            }
        } else {
            snprintf(err, errlen, "%.*s: unknown mock option", (int)k.n,
                     k.p);
            return PG_ECONFIG;
        }
    }
    struct mock *p = pg__malloc(sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return PG_ENOMEM;
    }
    *p = m;
    *self = p;
    return PG_OK;
}

static void mock_destroy(void *self)
{
    pg__free(self);
}

/* ---- reading the request ------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

static int64_t count_words(pg_str_t s)
{
    int64_t n = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.n; i++) {
        bool sp = is_space(s.p[i]);
        if (!sp && !in_word)
            n++;
        in_word = !sp;
    }
    return n;
}

static int64_t count_parts_words(const pg_part_t *parts, size_t n)
{
    int64_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].kind == PG_PART_TEXT)
            w += count_words(parts[i].text);
        else if (parts[i].kind == PG_PART_TOOL_RESULT)
            w += count_parts_words(parts[i].tool_result.content,
                                   parts[i].tool_result.ncontent);
    }
    return w;
}

static int64_t count_input_words(const pg_request_t *r)
{
    int64_t w = count_parts_words(r->system, r->nsystem);
    for (size_t i = 0; i < r->nmessages; i++)
        w += count_parts_words(r->messages[i].parts, r->messages[i].nparts);
    return w;
}

/* The text parts of the last user message, joined with newlines, in the
 * call's arena. */
static int last_user_text(pg_provider_call_t *call, const pg_request_t *r,
                          pg_str_t *out)
{
    *out = PG_STR("");
    const pg_message_t *m = NULL;
    for (size_t i = r->nmessages; i > 0; i--) {
        if (r->messages[i - 1].role == PG_ROLE_USER) {
            m = &r->messages[i - 1];
            break;
        }
    }
    if (m == NULL)
        return PG_OK;
    size_t len = 0;
    for (size_t i = 0; i < m->nparts; i++) {
        if (m->parts[i].kind == PG_PART_TEXT)
            len += m->parts[i].text.n + 1;
    }
    char *p = pg_provider_call_alloc(call, len + 1);
    if (p == NULL)
        return PG_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < m->nparts; i++) {
        if (m->parts[i].kind != PG_PART_TEXT)
            continue;
        if (n > 0)
            p[n++] = '\n';
        if (m->parts[i].text.n > 0)
            memcpy(p + n, m->parts[i].text.p, m->parts[i].text.n);
        n += m->parts[i].text.n;
    }
    p[n] = '\0';
    *out = (pg_str_t){p, n};
    return PG_OK;
}

static bool str_contains(pg_str_t hay, pg_str_t needle)
{
    if (needle.n == 0 || needle.n > hay.n)
        return false;
    for (size_t i = 0; i + needle.n <= hay.n; i++) {
        if (memcmp(hay.p + i, needle.p, needle.n) == 0)
            return true;
    }
    return false;
}

/* The tool the mock calls, or NULL for a text answer (see the file
 * comment for the trigger). */
static const pg_tool_t *pick_tool(const pg_request_t *r, pg_str_t user_text)
{
    if (r->ntools == 0 || r->tool_choice == PG_TOOL_CHOICE_NONE)
        return NULL;
    if (r->tool_choice == PG_TOOL_CHOICE_REQUIRED)
        return &r->tools[0];
    if (r->tool_choice == PG_TOOL_CHOICE_NAMED) {
        for (size_t i = 0; i < r->ntools; i++) {
            if (pg_str_eq(r->tools[i].name, r->tool_choice_name))
                return &r->tools[i];
        }
        return NULL;
    }
    for (size_t i = 0; i < r->ntools; i++) {
        if (str_contains(user_text, r->tools[i].name))
            return &r->tools[i];
    }
    return NULL;
}

static const char *placeholder_for(const cJSON *prop)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(prop, "type");
    /* "type": ["string", "null"] declares several; the first one wins. */
    if (cJSON_IsArray(type))
        type = cJSON_GetArrayItem(type, 0);
    pg_str_t t = pg_json_str(type);
    if (pg_str_eqc(t, "string"))
        return "\"mock\"";
    if (pg_str_eqc(t, "number") || pg_str_eqc(t, "integer"))
        return "1";
    if (pg_str_eqc(t, "boolean"))
        return "true";
    if (pg_str_eqc(t, "array"))
        return "[]";
    if (pg_str_eqc(t, "object"))
        return "{}";
    return "null";
}

/* Builds the arguments JSON for tool into the call's arena. */
static int build_args(pg_provider_call_t *call, const pg_tool_t *tool,
                      pg_str_t *out)
{
    pg_buf_t b;
    int rc = PG_OK;
    cJSON *schema = NULL;
    pg_buf_init(&b, MOCK_ARGS_MAX);
    if ((rc = pg_buf_append_char(&b, '{')))
        goto out;
    if (tool->parameters.n > 0)
        schema = pg_json_parse(tool->parameters, NULL);
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(schema, "required");
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema,
                                                          "properties");
    const cJSON *it;
    bool comma = false;
    cJSON_ArrayForEach(it, req)
    {
        pg_str_t name = pg_json_str(it);
        if (name.p == NULL)
            continue;
        if (comma && (rc = pg_buf_append_char(&b, ',')))
            goto out;
        comma = true;
        const cJSON *prop =
            cJSON_GetObjectItemCaseSensitive(props, name.p);
        if ((rc = pg_json_append_string(&b, name)) ||
            (rc = pg_buf_append_char(&b, ':')) ||
            (rc = pg_buf_append_cstr(&b, placeholder_for(prop))))
            goto out;
    }
    if ((rc = pg_buf_append_char(&b, '}')))
        goto out;
    *out = pg_str(pg_provider_call_alloc(call, b.n), b.n);
    if (out->p == NULL) {
        rc = PG_ENOMEM;
        goto out;
    }
    memcpy((char *)out->p, b.p, b.n);
out:
    cJSON_Delete(schema);
    pg_buf_free(&b);
    return rc;
}

/* The reply cut right after its max-th word (leading spaces kept). */
static pg_str_t cut_words(pg_str_t s, int64_t max)
{
    int64_t n = 0;
    size_t end = 0;
    bool in_word = false;
    for (size_t i = 0; i < s.n; i++) {
        bool sp = is_space(s.p[i]);
        if (!sp && !in_word) {
            if (n == max)
                break;
            n++;
        }
        if (!sp)
            end = i + 1;
        in_word = !sp;
    }
    return pg_str(s.p, end);
}

/* ---- building the event list --------------------------------------------- */

/* Number of pieces s splits into for n requested pieces; writes the piece
 * boundaries (end offsets) into ends when not NULL. A boundary never falls
 * inside a UTF-8 sequence; empty pieces are dropped. */
static size_t split_pieces(pg_str_t s, size_t n, size_t *ends)
{
    if (n > s.n)
        n = s.n;
    size_t count = 0, prev = 0;
    for (size_t i = 1; i <= n; i++) {
        size_t end = i == n ? s.n : (size_t)((uint64_t)s.n * i / n);
        while (end < s.n && ((unsigned char)s.p[end] & 0xC0) == 0x80)
            end++;
        if (end <= prev)
            continue;
        if (ends)
            ends[count] = end;
        count++;
        prev = end;
    }
    return count;
}

struct ev_builder {
    pg_event_t *ev;
    bool *pause;
    size_t n;
};

static pg_event_t *push(struct ev_builder *b, pg_event_kind_t kind)
{
    pg_event_t *e = &b->ev[b->n];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    b->pause[b->n] = false;
    b->n++;
    return e;
}

/* Appends the deltas of one block, pausing between pieces. */
static void push_pieces(struct ev_builder *b, pg_event_kind_t kind,
                        pg_str_t s, const size_t *ends, size_t npieces)
{
    size_t start = 0;
    for (size_t i = 0; i < npieces; i++) {
        pg_event_t *e = push(b, kind);
        e->text = pg_str(s.p + start, ends[i] - start);
        b->pause[b->n - 1] = i + 1 < npieces;
        start = ends[i];
    }
}

static int build_events(const struct mock *m, pg_provider_call_t *call,
                        struct mock_call *mc)
{
    const pg_request_t *r = pg_provider_call_request(call);
    pg_str_t user_text, text, args = PG_STR_NULL;
    int rc = last_user_text(call, r, &user_text);
    if (rc != PG_OK)
        return rc;
    const pg_tool_t *tool = pick_tool(r, user_text);
    pg_stop_reason_t stop = PG_STOP_END_TURN;
    size_t nreq;
    if (tool != NULL) {
        if ((rc = build_args(call, tool, &args)) != PG_OK)
            return rc;
        text = args;
        /* At least two fragments, so clients see a true delta stream. */
        nreq = m->chunks < 2 ? 2 : (size_t)m->chunks;
        stop = PG_STOP_TOOL_USE;
    } else {
        text = m->echo ? user_text : m->reply;
        if ((r->set & PG_SET_MAX_TOKENS) && r->max_tokens >= 0 &&
            r->max_tokens < count_words(text)) {
            text = cut_words(text, r->max_tokens);
            stop = PG_STOP_MAX_TOKENS;
        }
        nreq = (size_t)m->chunks;
    }
    size_t npieces = split_pieces(text, nreq, NULL);
    size_t *ends = pg_provider_call_alloc(call, (npieces + 1) * sizeof(*ends));
    size_t max = npieces + 5;
    struct ev_builder b = {
        .ev = pg_provider_call_alloc(call, max * sizeof(pg_event_t)),
        .pause = pg_provider_call_alloc(call, max * sizeof(bool)),
    };
    char *id = pg_provider_call_alloc(call, 32);
    if (ends == NULL || b.ev == NULL || b.pause == NULL || id == NULL)
        return PG_ENOMEM;
    split_pieces(text, nreq, ends);

    pg_usage_t usage = {.input_tokens = count_input_words(r),
                        .output_tokens = count_words(text)};
    pg_event_t *e = push(&b, PG_EV_MESSAGE_START);
    memcpy(id, "mock-", 5);
    pg_random_alnum(id + 5, 24);
    e->id = pg_str(id, 29);
    e->model = r->model;
    e->usage.input_tokens = usage.input_tokens;

    e = push(&b, PG_EV_BLOCK_START);
    if (tool != NULL) {
        char *cid = pg_provider_call_alloc(call, 32);
        if (cid == NULL)
            return PG_ENOMEM;
        memcpy(cid, "call_", 5);
        pg_random_alnum(cid + 5, 24);
        e->block = PG_PART_TOOL_CALL;
        e->id = pg_str(cid, 29);
        e->name = tool->name;
        push_pieces(&b, PG_EV_TOOL_ARGS_DELTA, text, ends, npieces);
    } else {
        e->block = PG_PART_TEXT;
        push_pieces(&b, PG_EV_TEXT_DELTA, text, ends, npieces);
    }
    push(&b, PG_EV_BLOCK_STOP);
    e = push(&b, PG_EV_USAGE);
    e->usage = usage;
    e = push(&b, PG_EV_MESSAGE_STOP);
    e->stop_reason = stop;

    mc->events = b.ev;
    mc->pause_after = b.pause;
    mc->nevents = b.n;
    return PG_OK;
}

/* ---- running ------------------------------------------------------------ */

static void on_timer_close(uv_handle_t *h)
{
    struct mock_call *mc = pg_container_of((uv_timer_t *)h, struct mock_call,
                                           timer);
    pg__free(mc);
}

static void on_tick(uv_timer_t *t)
{
    struct mock_call *mc = pg_container_of(t, struct mock_call, timer);
    while (mc->next < mc->nevents) {
        size_t i = mc->next++;
        int rc = pg_provider_call_emit(mc->call, &mc->events[i]);
        if (rc == PG_PENDING) {
            /* The client's queue is full: wait for resume(). */
            mc->paused = true;
            return;
        }
        if (rc != PG_OK) {
            /* The client is gone: stop here; cancel() follows and closes
             * the timer. */
            mc->stopped = true;
            return;
        }
        if (mc->pause_after[i] && mc->delay_ms > 0 &&
            mc->next < mc->nevents) {
            uv_timer_start(&mc->timer, on_tick, mc->delay_ms, 0);
            return;
        }
    }
    /* Done hands the call back: after it, call is not ours to touch. */
    pg_provider_call_t *call = mc->call;
    mc->call = NULL;
    uv_close((uv_handle_t *)&mc->timer, on_timer_close);
    pg_provider_call_done(call, NULL);
}

static int mock_start(void *self, pg_provider_call_t *call)
{
    const struct mock *m = self;
    struct mock_call *mc = pg__malloc(sizeof(*mc));
    if (mc == NULL)
        return PG_ENOMEM;
    memset(mc, 0, sizeof(*mc));
    mc->call = call;
    mc->delay_ms = m->delay_ms;
    int rc = build_events(m, call, mc);
    if (rc != PG_OK) {
        pg__free(mc);
        return rc;
    }
    uv_timer_init(pg_provider_call_loop(call), &mc->timer);
    /* The first event comes from the loop, never from inside start(). */
    uv_timer_start(&mc->timer, on_tick, 0, 0);
    pg_provider_call_set_data(call, mc);
    return PG_PENDING;
}

static void mock_cancel(void *self, pg_provider_call_t *call)
{
    struct mock_call *mc = pg_provider_call_get_data(call);
    if (mc == NULL || mc->call == NULL)
        return;
    mc->call = NULL;
    uv_timer_stop(&mc->timer);
    uv_close((uv_handle_t *)&mc->timer, on_timer_close);
}

static void mock_resume(void *self, pg_provider_call_t *call)
{
    (void)self;
    struct mock_call *mc = pg_provider_call_get_data(call);
    if (mc == NULL || mc->call == NULL || !mc->paused || mc->stopped)
        return;
    mc->paused = false;
    /* From the loop, never inside the caller. */
    uv_timer_start(&mc->timer, on_tick, 0, 0);
}

const struct pg_provider_vtable pg_mock_provider_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "mock",
    .create = mock_create,
    .destroy = mock_destroy,
    .start = mock_start,
    .cancel = mock_cancel,
    .resume = mock_resume,
};
