/* passthrough.c: the same-dialect path shared by the OpenAI and Anthropic
 * frontdoors (passthrough.h): routing a candidate, splicing the model
 * into the client's bytes, and relaying the upstream's answer as it came.
 * Loop thread of the request. */
#include "frontdoor/passthrough.h"

#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/str.h"
#include "http/sse.h"
#include "provider/http_provider.h"

/* Largest body we forward: the server's body limit is far below it. */
#define RAW_MAX_BODY (64u * 1024u * 1024u)

bool pg_fd_raw_route(pg_fd_ctx_t *ctx, const cJSON *root, pg_raw_kind_t kind,
                     pg_str_t *model, pg_route_t *rt)
{
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (jm != NULL && !cJSON_IsString(jm))
        return false;
    *model = jm != NULL ? pg_json_str(jm) : PG_STR_NULL;
    if (model->n == 0 && ctx->app != NULL)
        *model = ctx->app->default_model;
    if (model->n == 0 ||
        pg_route_resolve(ctx->cfg, ctx->app, *model, rt) != PG_OK)
        return false;
    return pg_http_provider_takes_raw(ctx->cfg->providers[rt->provider].vt,
                                      kind);
}

/* Adds member and a comma after the opening brace of the body in b. */
static int insert_member(pg_buf_t *b, size_t brace, pg_str_t member)
{
    if (pg_buf_reserve(b, member.n + 1) != PG_OK)
        return PG_ENOMEM;
    memmove(b->p + brace + 1 + member.n + 1, b->p + brace + 1,
            b->n - brace - 1);
    memcpy(b->p + brace + 1, member.p, member.n);
    b->p[brace + 1 + member.n] = ',';
    b->n += member.n + 1;
    b->p[b->n] = '\0';
    return PG_OK;
}

/* The client's bytes with the model's value replaced (span PG_OK) or the
 * whole body (span PG_ENOENT: the member is added by the caller). */
static int splice_model(pg_buf_t *b, pg_str_t in, int span, size_t a,
                        size_t z, pg_str_t quoted)
{
    if (span != PG_OK)
        return pg_buf_append_str(b, in);
    int rc = pg_buf_append(b, in.p, a);
    if (rc == PG_OK)
        rc = pg_buf_append_str(b, quoted);
    if (rc == PG_OK)
        rc = pg_buf_append(b, in.p + z, in.n - z);
    return rc;
}

int pg_fd_raw_body(pg_fd_ctx_t *ctx, const cJSON *root, pg_str_t model,
                   pg_str_t extra, pg_str_t *out)
{
    pg_str_t in = ctx->req->body;
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
    size_t a = 0, z = 0;
    int span = pg_json_member_span(in, "model", &a, &z);
    if (span == PG_EPARSE)
        return PG_EPARSE;
    /* The client's own spelling stays when routing kept its model. */
    bool same = span == PG_OK && cJSON_IsString(jm) &&
                pg_str_eq(pg_json_str(jm), model);
    bool adds = span == PG_ENOENT || extra.n > 0;
    if (adds && cJSON_GetArraySize(root) == 0)
        return PG_EPARSE; /* "{x,}": no fields at all, let the decoder say */
    if (same && extra.n == 0) {
        *out = in;
        return PG_OK;
    }
    pg_buf_t b, q;
    pg_buf_init(&b, RAW_MAX_BODY);
    pg_buf_init(&q, RAW_MAX_BODY);
    int rc = pg_json_append_string(&q, model);
    if (rc == PG_OK)
        rc = splice_model(&b, in, same ? PG_ENOENT : span, a, z,
                          pg_buf_str(&q));
    size_t brace = 0;
    while (brace < b.n && b.p[brace] != '{')
        brace++;
    if (rc == PG_OK && span == PG_ENOENT) {
        pg_buf_t m;
        pg_buf_init(&m, RAW_MAX_BODY);
        rc = pg_buf_append_cstr(&m, "\"model\":");
        if (rc == PG_OK)
            rc = pg_buf_append_str(&m, pg_buf_str(&q));
        if (rc == PG_OK)
            rc = insert_member(&b, brace, pg_buf_str(&m));
        pg_buf_free(&m);
    }
    if (rc == PG_OK && extra.n > 0)
        rc = insert_member(&b, brace, extra);
    *out = rc == PG_OK ? pg_arena_strdup(&ctx->req->arena, pg_buf_str(&b))
                       : PG_STR_NULL;
    pg_buf_free(&b);
    pg_buf_free(&q);
    if (rc != PG_OK)
        return rc;
    return out->p != NULL ? PG_OK : PG_ENOMEM;
}

int pg_fd_raw_stream_event(pg_fd_stream_t *s, pg_str_t event, pg_str_t data)
{
    int rc;
    if (data.p == NULL)
        return s->started ? pg_fd_stream_flush(s) : PG_OK; /* batch end */
    if (!s->started && (rc = pg_fd_stream_begin(s)) != PG_OK)
        return rc;
    pg_fd_stream_rearm(s);
    /* Gathered until the batch ends: the events of one upstream read go
     * out in one write. A client still behind on what it was sent pauses
     * the upstream (on_drain resumes it). */
    if ((rc = pg_sse_append_event(&s->sse, event, data)) != PG_OK)
        return rc;
    return pg_http_queue_full(s->ctx->req) ? PG_PENDING : PG_OK;
}

cJSON *pg_fd_raw_whole(pg_fd_stream_t *s, pg_str_t data, pg_str_t *body)
{
    pg_arena_t *a = &s->ctx->req->arena;
    pg_fd_note_upstream_wait(s->ctx, &s->waiting);
    *body = pg_arena_strdup(a, data);
    if (body->p == NULL)
        return NULL;
    return pg_json_parse_arena(a, *body, NULL);
}

pg_str_t pg_fd_raw_lie_message(pg_fd_stream_t *s, const cJSON *j)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    pg_str_t m = pg_json_get_str(e, "message");
    pg_str_t msg = pg_arena_printf(&s->ctx->req->arena,
                                   "The provider sent a malformed response%s"
                                   "%.*s",
                                   m.n ? ": " : ".", (int)m.n, m.p);
    return msg.p ? msg : PG_STR("The provider sent a malformed response.");
}

int pg_fd_raw_respond(pg_fd_stream_t *s, pg_str_t body)
{
    pg_http_header_t extra[16];
    size_t n = pg_fd_relay_headers(s->call->relay, s->call->nrelay, extra,
                                   16);
    return pg_http_respond(s->ctx->req, 200, PG_STR("application/json"),
                           extra, n, body);
}
