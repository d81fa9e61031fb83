/* anthropic_errors.c: Anthropic-shaped error answers for the Anthropic
 * frontdoor and for the dispatcher's own errors on Anthropic apps (the
 * status -> error type map is the codec's, pg_anthropic_error_type). Loop
 * thread of the request. */
#include "base/buf.h"
#include "base/str.h"
#include "codec/anthropic_messages.h"
#include "frontdoor/frontdoor.h"

/* An error body is small; this only guards against a runaway message. */
#define ANTHROPIC_ERROR_MAX (64 * 1024)

pg_str_t pg_anthropic_error_body(pg_arena_t *arena, pg_str_t type,
                                 pg_str_t message)
{
    pg_buf_t b;
    pg_str_t out = PG_STR_NULL;
    pg_buf_init(&b, ANTHROPIC_ERROR_MAX);
    if (pg_anthropic_error_json(&b, type, message) == PG_OK)
        out = pg_arena_strdup(arena, pg_buf_str(&b));
    pg_buf_free(&b);
    if (out.p == NULL) {
        /* Out of memory: a fixed body still keeps the client's shape. */
        out = PG_STR("{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                     "\"message\":\"out of memory\"}}");
    }
    return out;
}

void pg_anthropic_respond_error(pg_http_req_t *req, int status, pg_str_t type,
                                pg_str_t message,
                                const pg_http_header_t *extra, size_t nextra)
{
    if (type.n == 0)
        type = pg_anthropic_error_type(status);
    pg_str_t body = pg_anthropic_error_body(&req->arena, type, message);
    (void)pg_http_respond(req, status, PG_STR("application/json"), extra,
                          nextra, body);
}
