/* openai_errors.c: OpenAI-shaped error answers for the OpenAI frontdoor and
 * for the dispatcher's own errors on OpenAI apps. Loop thread of the
 * request. */
#include "base/buf.h"
#include "base/str.h"
#include "codec/openai_chat.h"
#include "frontdoor/frontdoor.h"

/* An error body is small; this only guards against a runaway message. */
#define OPENAI_ERROR_MAX (64 * 1024)

pg_str_t pg_openai_error_body(pg_arena_t *arena, pg_str_t message,
                              pg_str_t type, pg_str_t param, pg_str_t code)
{
    pg_buf_t b;
    pg_str_t out = PG_STR_NULL;
    pg_buf_init(&b, OPENAI_ERROR_MAX);
    if (pg_openai_error_json(&b, message, type, param, code) == PG_OK)
        out = pg_arena_strdup(arena, pg_buf_str(&b));
    pg_buf_free(&b);
    if (out.p == NULL) {
        /* Out of memory: a fixed body still keeps the client's shape. */
        out = PG_STR("{\"error\":{\"message\":\"out of memory\",\"type\":"
                     "\"server_error\",\"param\":null,\"code\":null}}");
    }
    return out;
}

void pg_openai_respond_error(pg_http_req_t *req, int status, pg_str_t message,
                             pg_str_t type, pg_str_t param, pg_str_t code)
{
    pg_openai_respond_error_h(req, status, message, type, param, code, NULL, 0);
}

void pg_openai_respond_error_h(pg_http_req_t *req, int status,
                               pg_str_t message, pg_str_t type, pg_str_t param,
                               pg_str_t code, const pg_http_header_t *extra,
                               size_t nextra)
{
    pg_str_t body = pg_openai_error_body(&req->arena, message, type, param,
                                         code);
    (void)pg_http_respond(req, status, PG_STR("application/json"), extra,
                          nextra, body);
}
