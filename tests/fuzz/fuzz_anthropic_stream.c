/* fuzz_anthropic_stream.c: libFuzzer target for the Anthropic upstream
 * stream decoder. The input is one SSE event per line, "name<TAB>data"
 * (a line without a tab is data with no event name), fed in order to
 * pg_anthropic_stream_dec_feed; the whole input is also decoded as one
 * Messages response body. Every event either decoder emits must be
 * accepted by the canonical accumulator (a well-formed stream), every
 * PG_EPARSE must say why, and PG_OK from finish must mean a complete
 * message. Any violation aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "canon/response.h"
#include "codec/anthropic_upstream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_sink(void *ud, const pg_event_t *ev)
{
    pg_canon_response_t *r = ud;
    int rc = pg_canon_response_add(r, ev);
    if (rc == PG_EPARSE)
        abort(); /* the decoder let a malformed stream through */
    return rc;
}

static void fuzz_stream(const char *p, size_t n)
{
    pg_arena_t arena;
    pg_arena_init(&arena, 0);
    pg_canon_response_t canon;
    pg_canon_response_init(&canon, &arena);
    pg_anthropic_stream_dec_t d;
    pg_anthropic_stream_dec_init(&d, &arena);
    const char *end = p + n, *why = NULL;
    int rc = PG_OK;
    while (p < end && rc == PG_OK) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        const char *tab = memchr(p, '\t', (size_t)(eol - p));
        pg_str_t name = PG_STR_NULL, body = {p, (size_t)(eol - p)};
        if (tab != NULL) {
            name = (pg_str_t){p, (size_t)(tab - p)};
            body = (pg_str_t){tab + 1, (size_t)(eol - tab - 1)};
        }
        why = NULL;
        rc = pg_anthropic_stream_dec_feed(&d, name, body, check_sink, &canon,
                                          &why);
        if (rc == PG_EPARSE && (why == NULL || why[0] == '\0'))
            abort();
        if (rc != PG_OK && d.state != PG_ANT_DEC_FAILED)
            abort();
        p = eol < end ? eol + 1 : end;
    }
    if (rc == PG_OK) {
        why = NULL;
        rc = pg_anthropic_stream_dec_finish(&d, &why);
        if (rc != PG_OK && why == NULL)
            abort();
        if (rc == PG_OK && (!canon.stopped ||
                            pg_canon_response_finish(&canon) == PG_EPARSE))
            abort(); /* "complete" without a whole message */
        if (rc == PG_EUPSTREAM && !canon.failed)
            abort();
    }
    pg_arena_destroy(&arena);
}

static void fuzz_whole(const char *p, size_t n)
{
    pg_arena_t arena;
    pg_arena_init(&arena, 0);
    pg_canon_response_t canon;
    pg_canon_response_init(&canon, &arena);
    const char *why = NULL;
    int rc = pg_anthropic_decode_response(&arena, (pg_str_t){p, n}, check_sink,
                                          &canon, &why);
    if (rc == PG_EPARSE && why == NULL)
        abort();
    if (rc == PG_OK && (!canon.stopped ||
                        pg_canon_response_finish(&canon) == PG_EPARSE))
        abort();
    pg_str_t type, message;
    (void)pg_anthropic_parse_error(&arena, (pg_str_t){p, n}, &type, &message);
    pg_arena_destroy(&arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy so reads past the input are caught by ASan. */
    char *text = malloc(size ? size : 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    fuzz_stream(text, size);
    fuzz_whole(text, size);
    free(text);
    return 0;
}
