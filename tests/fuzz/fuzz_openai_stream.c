/* fuzz_openai_stream.c: libFuzzer target for the upstream side of the
 * OpenAI dialect: SSE bytes through the event-stream parser into the
 * chat.completion.chunk stream decoder. Whatever the bytes, the decoder
 * must emit a stream the canonical accumulator accepts (so no frontdoor
 * encoder ever sees a malformed one), explain every PG_EPARSE, and never
 * crash or leak. The first byte picks the split size, so the same stream
 * is also tried in pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "canon/response.h"
#include "codec/openai_upstream.h"
#include "http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct ctx {
    pg_openai_stream_dec_t dec;
    pg_canon_response_t resp;
    const char *why;
};

static int on_event(void *ud, const pg_event_t *ev)
{
    struct ctx *c = ud;
    int rc = pg_canon_response_add(&c->resp, ev);
    if (rc == PG_EPARSE)
        abort(); /* the decoder produced an ill-formed event stream */
    return rc;
}

static int on_sse(void *ud, pg_str_t event, pg_str_t payload)
{
    struct ctx *c = ud;
    (void)event;
    c->why = NULL;
    int rc = pg_openai_stream_dec_feed(&c->dec, payload, on_event, c,
                                       &c->why);
    if (rc == PG_EPARSE && c->why == NULL)
        abort(); /* every refusal must explain itself */
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t step = data[0] ? data[0] : size;
    data++;
    size--;
    pg_arena_t arena;
    pg_arena_init(&arena, 0);
    struct ctx c;
    memset(&c, 0, sizeof(c));
    pg_openai_stream_dec_init(&c.dec, &arena);
    pg_canon_response_init(&c.resp, &arena);
    pg_sse_parser_t sse;
    pg_sse_parser_init(&sse, 64 * 1024);
    int rc = PG_OK;
    for (size_t i = 0; i < size && rc == PG_OK; i += step) {
        size_t k = size - i < step ? size - i : step;
        rc = pg_sse_parser_feed(&sse, (pg_str_t){(const char *)data + i, k},
                                on_sse, &c);
    }
    if (rc == PG_OK && pg_sse_parser_finish(&sse, on_sse, &c) == PG_OK) {
        c.why = NULL;
        rc = pg_openai_stream_dec_finish(&c.dec, on_event, &c, &c.why);
        if (rc == PG_EPARSE && c.why == NULL)
            abort();
        /* A decoder that reports success has ended the message (or
         * reported the upstream's error). */
        if (rc == PG_OK && !c.resp.stopped && !c.resp.failed &&
            c.dec.state != PG_OAI_DEC_FAILED)
            abort();
        if (rc == PG_OK && c.resp.stopped &&
            pg_canon_response_finish(&c.resp) != PG_OK)
            abort();
    }
    pg_sse_parser_destroy(&sse);
    pg_arena_destroy(&arena);
    return 0;
}
