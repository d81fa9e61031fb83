/* response.c: accumulates a pg_event_t stream into a whole response in the
 * request arena, validating the event order as it goes. Loop thread of the
 * request. */
#include "canon/response.h"

#include <string.h>

/* An arena-backed growing byte string; old copies stay in the arena until
 * it is freed, which costs at most twice the final size. */
struct abuf {
    char *p;
    size_t n;
    size_t cap;
};

enum { BLOCK_UNUSED = 0, BLOCK_OPEN, BLOCK_CLOSED };

struct pg_canon_block {
    int state;
    pg_part_kind_t kind;
    pg_str_t id;   /* tool call id */
    pg_str_t name; /* tool name */
    struct abuf text;
    struct abuf sig;
};

int pg_canon_grow(pg_arena_t *a, void **items, size_t n, size_t *cap,
                  size_t elem)
{
    if (n < *cap)
        return PG_OK;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *p = pg_arena_alloc(a, ncap * elem);
    if (p == NULL)
        return PG_ENOMEM;
    if (n > 0)
        memcpy(p, *items, n * elem);
    *items = p;
    *cap = ncap;
    return PG_OK;
}

static int abuf_append(pg_arena_t *a, struct abuf *b, pg_str_t s)
{
    if (s.n == 0)
        return PG_OK;
    if (b->n + s.n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->n + s.n + 1)
            ncap *= 2;
        char *p = pg_arena_alloc(a, ncap);
        if (p == NULL)
            return PG_ENOMEM;
        if (b->n)
            memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s.p, s.n);
    b->n += s.n;
    b->p[b->n] = '\0';
    return PG_OK;
}

static pg_str_t abuf_str(const struct abuf *b)
{
    return b->p ? (pg_str_t){b->p, b->n} : PG_STR("");
}

void pg_canon_response_init(pg_canon_response_t *r, pg_arena_t *arena)
{
    memset(r, 0, sizeof(*r));
    r->arena = arena;
}

static int copy_str(pg_arena_t *a, pg_str_t in, pg_str_t *out)
{
    *out = pg_arena_strdup(a, in);
    return out->p == NULL ? PG_ENOMEM : PG_OK;
}

/* The block an event names, or NULL when it was never started. */
static struct pg_canon_block *block_at(pg_canon_response_t *r, uint32_t i)
{
    if (i >= r->nblocks || r->blocks[i].state == BLOCK_UNUSED)
        return NULL;
    return &r->blocks[i];
}

static int block_start(pg_canon_response_t *r, const pg_event_t *ev)
{
    if (ev->index >= PG_CANON_MAX_BLOCKS)
        return PG_EPARSE;
    while (r->nblocks <= ev->index) {
        void *items = r->blocks;
        if (pg_canon_grow(r->arena, &items, r->nblocks, &r->capblocks,
                          sizeof(struct pg_canon_block)) != PG_OK)
            return PG_ENOMEM;
        r->blocks = items;
        memset(&r->blocks[r->nblocks], 0, sizeof(struct pg_canon_block));
        r->nblocks++;
    }
    struct pg_canon_block *b = &r->blocks[ev->index];
    if (b->state != BLOCK_UNUSED)
        return PG_EPARSE;
    b->state = BLOCK_OPEN;
    b->kind = ev->block;
    if (ev->block == PG_PART_TOOL_CALL) {
        if (copy_str(r->arena, ev->id, &b->id) ||
            copy_str(r->arena, ev->name, &b->name))
            return PG_ENOMEM;
    }
    /* Redacted thinking has no deltas: its opaque data comes whole. */
    if (ev->block == PG_PART_REDACTED_THINKING)
        return abuf_append(r->arena, &b->text, ev->text);
    return PG_OK;
}

static bool delta_fits(pg_event_kind_t ev, pg_part_kind_t block)
{
    switch (ev) {
    case PG_EV_TEXT_DELTA:
        return block == PG_PART_TEXT || block == PG_PART_REFUSAL;
    case PG_EV_TOOL_ARGS_DELTA:
        return block == PG_PART_TOOL_CALL;
    case PG_EV_THINKING_DELTA:
    case PG_EV_SIGNATURE:
        return block == PG_PART_THINKING;
    default:
        return false;
    }
}

static int block_delta(pg_canon_response_t *r, const pg_event_t *ev)
{
    struct pg_canon_block *b = block_at(r, ev->index);
    if (b == NULL || b->state != BLOCK_OPEN || !delta_fits(ev->kind, b->kind))
        return PG_EPARSE;
    if (ev->kind == PG_EV_SIGNATURE)
        return abuf_append(r->arena, &b->sig, ev->text);
    return abuf_append(r->arena, &b->text, ev->text);
}

static void usage_merge(pg_usage_t *u, const pg_usage_t *in)
{
    /* Events carry totals so far; a zero means "not reported here". */
    if (in->input_tokens)
        u->input_tokens = in->input_tokens;
    if (in->output_tokens)
        u->output_tokens = in->output_tokens;
    if (in->cache_read_tokens)
        u->cache_read_tokens = in->cache_read_tokens;
    if (in->cache_write_tokens)
        u->cache_write_tokens = in->cache_write_tokens;
    if (in->reasoning_tokens)
        u->reasoning_tokens = in->reasoning_tokens;
}

int pg_canon_response_add(pg_canon_response_t *r, const pg_event_t *ev)
{
    if (r->stopped || r->failed)
        return PG_EPARSE;
    if (ev->kind == PG_EV_ERROR) {
        r->failed = true;
        r->error_status = ev->status;
        if (copy_str(r->arena, ev->error_type, &r->error_type) ||
            copy_str(r->arena, ev->text, &r->error_message))
            return PG_ENOMEM;
        return PG_OK;
    }
    if (ev->kind == PG_EV_MESSAGE_START) {
        if (r->started)
            return PG_EPARSE;
        r->started = true;
        usage_merge(&r->usage, &ev->usage);
        if (copy_str(r->arena, ev->id, &r->id) ||
            copy_str(r->arena, ev->model, &r->model))
            return PG_ENOMEM;
        return PG_OK;
    }
    if (!r->started)
        return PG_EPARSE;
    switch (ev->kind) {
    case PG_EV_BLOCK_START:
        return block_start(r, ev);
    case PG_EV_TEXT_DELTA:
    case PG_EV_TOOL_ARGS_DELTA:
    case PG_EV_THINKING_DELTA:
    case PG_EV_SIGNATURE:
        return block_delta(r, ev);
    case PG_EV_BLOCK_STOP: {
        struct pg_canon_block *b = block_at(r, ev->index);
        if (b == NULL || b->state != BLOCK_OPEN)
            return PG_EPARSE;
        b->state = BLOCK_CLOSED;
        return PG_OK;
    }
    case PG_EV_USAGE:
        usage_merge(&r->usage, &ev->usage);
        return PG_OK;
    case PG_EV_MESSAGE_STOP:
        r->stopped = true;
        r->stop_reason = ev->stop_reason;
        return copy_str(r->arena, ev->stop_sequence, &r->stop_sequence);
    default:
        return PG_EPARSE;
    }
}

int pg_canon_response_finish(pg_canon_response_t *r)
{
    if (!r->stopped)
        return PG_EPARSE;
    size_t n = 0;
    for (size_t i = 0; i < r->nblocks; i++)
        n += r->blocks[i].state != BLOCK_UNUSED;
    pg_part_t *parts = pg_arena_calloc(r->arena, n ? n : 1, sizeof(*parts));
    if (parts == NULL)
        return PG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < r->nblocks; i++) {
        const struct pg_canon_block *b = &r->blocks[i];
        if (b->state == BLOCK_UNUSED)
            continue;
        pg_part_t *p = &parts[k++];
        p->kind = b->kind;
        if (b->kind == PG_PART_TOOL_CALL) {
            p->tool_call.id = b->id;
            p->tool_call.name = b->name;
            p->tool_call.arguments = abuf_str(&b->text);
        } else {
            p->text = abuf_str(&b->text);
            p->signature = abuf_str(&b->sig);
        }
    }
    r->parts = parts;
    r->nparts = k;
    return PG_OK;
}
