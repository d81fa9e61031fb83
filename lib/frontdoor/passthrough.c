/* passthrough.c: the same-dialect path shared by the OpenAI and Anthropic
 * frontdoors (passthrough.h): routing a candidate, splicing the model
 * into the client's bytes, and relaying the upstream's answer as it came.
 * Loop thread of the request. */
#include "frontdoor/passthrough.h"

#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/str.h"
#include "http/sse.h"
#include "provider/http_provider.h"

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

void pg_fd_raw_members(const cJSON *obj, const char *const *keys, size_t n,
                       const cJSON **out)
{
    /* A filter on the names' first bytes (bits may collide: it only
     * spares most children the string compares). */
    uint32_t first = 0;
    size_t left = n;
    for (size_t i = 0; i < n; i++) {
        out[i] = NULL;
        first |= 1u << ((unsigned char)keys[i][0] & 31);
    }
    /* cJSON's lookup stops at the first child without a name (an array's
     * items): so does this walk. */
    for (const cJSON *c = obj != NULL ? obj->child : NULL;
         c != NULL && c->string != NULL && left > 0; c = c->next) {
        if (!(first >> ((unsigned char)c->string[0] & 31) & 1))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (out[i] == NULL && c->string[0] == keys[i][0] &&
                strcmp(c->string, keys[i]) == 0) {
                out[i] = c;
                left--;
                break;
            }
        }
    }
}

int pg_fd_raw_member_edit(pg_fd_ctx_t *ctx, size_t a, size_t z,
                          const cJSON *obj, const char *key, pg_str_t value,
                          pg_fd_edit_t *out)
{
    pg_str_t in = pg_str(ctx->req->body.p + a, z - a);
    size_t vs = 0, ve = 0;
    int rc = pg_json_member_span(in, key, &vs, &ve);
    if (rc == PG_OK) {
        *out = (pg_fd_edit_t){a + vs, a + ve, value};
        return PG_OK;
    }
    if (rc != PG_ENOENT)
        return rc;
    /* pg_json_member_span saw the '{' after optional whitespace. */
    size_t brace = 0;
    while (brace < in.n && in.p[brace] != '{')
        brace++;
    bool first = cJSON_GetArraySize(obj) == 0;
    pg_str_t text = pg_arena_printf(&ctx->req->arena, "\"%s\":%.*s%s", key,
                                    (int)value.n, value.p, first ? "" : ",");
    if (text.p == NULL)
        return PG_ENOMEM;
    *out = (pg_fd_edit_t){a + brace + 1, a + brace + 1, text};
    return PG_OK;
}

/* in with the edits (ascending, disjoint) applied, in arena. */
static int apply_edits(pg_arena_t *arena, pg_str_t in, const pg_fd_edit_t *e,
                       size_t n, pg_str_t *out)
{
    size_t total = in.n, pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].at < pos || e[i].end < e[i].at || e[i].end > in.n)
            return PG_EINVAL;
        total += e[i].text.n - (e[i].end - e[i].at);
        pos = e[i].end;
    }
    char *p = pg_arena_alloc(arena, total + 1);
    if (p == NULL)
        return PG_ENOMEM;
    size_t w = 0;
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(p + w, in.p + pos, e[i].at - pos);
        w += e[i].at - pos;
        memcpy(p + w, e[i].text.p, e[i].text.n);
        w += e[i].text.n;
        pos = e[i].end;
    }
    memcpy(p + w, in.p + pos, in.n - pos);
    p[total] = '\0';
    *out = pg_str(p, total);
    return PG_OK;
}

/* The model's edit, when routing changed the client's model: its value
 * JSON-quoted. *need false when the client's spelling stays. */
static int model_edit(pg_fd_ctx_t *ctx, const cJSON *root, pg_str_t model,
                      pg_fd_edit_t *out, bool *need)
{
    pg_str_t in = ctx->req->body;
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
    size_t a = 0, z = 0;
    int span = pg_json_member_span(in, "model", &a, &z);
    if (span == PG_EPARSE)
        return PG_EPARSE;
    /* The client's own spelling stays when routing kept its model. */
    *need = !(span == PG_OK && cJSON_IsString(jm) &&
              pg_str_eq(pg_json_str(jm), model));
    if (!*need)
        return PG_OK;
    pg_buf_t q;
    pg_buf_init(&q, in.n + model.n * 6 + 16);
    int rc = pg_json_append_string(&q, model);
    pg_str_t quoted = rc == PG_OK ? pg_arena_strdup(&ctx->req->arena,
                                                    pg_buf_str(&q))
                                  : PG_STR_NULL;
    pg_buf_free(&q);
    if (rc != PG_OK || quoted.p == NULL)
        return rc != PG_OK ? rc : PG_ENOMEM;
    return pg_fd_raw_member_edit(ctx, 0, in.n, root, "model", quoted, out);
}

int pg_fd_raw_body(pg_fd_ctx_t *ctx, pg_fd_raw_t *raw, pg_str_t model,
                   pg_str_t *out)
{
    pg_fd_edit_t all[PG_FD_RAW_MAX_EDITS + 1];
    pg_fd_edit_t me = {0};
    bool need = false;
    if (raw->nedits > PG_FD_RAW_MAX_EDITS)
        return PG_EINVAL;
    if (cJSON_GetArraySize(raw->root) == 0)
        return PG_EPARSE; /* "{}": nothing to forward, let the decoder say */
    int rc = model_edit(ctx, raw->root, model, &me, &need);
    if (rc != PG_OK)
        return rc;
    /* The model's edit goes among the others in byte order. */
    size_t n = 0;
    for (size_t i = 0; i < raw->nedits; i++) {
        if (need && me.at <= raw->edits[i].at) {
            all[n++] = me;
            need = false;
        }
        all[n++] = raw->edits[i];
    }
    if (need)
        all[n++] = me;
    if (n == 0)
        *out = ctx->req->body; /* the client's bytes as they are */
    else if ((rc = apply_edits(&ctx->req->arena, ctx->req->body, all, n,
                               out)) != PG_OK)
        return rc;
    raw->model = model;
    return PG_OK;
}

int pg_fd_attempt(pg_fd_ctx_t *ctx, pg_fd_raw_t *raw,
                  struct pg_provider_call *call, const pg_cfg_provider_t *p,
                  int (*decode)(void *ud), void *ud, pg_request_t *req)
{
    int rc = PG_OK;
    if (call->raw) {
        if (!pg_str_eq(raw->model, call->model))
            rc = pg_fd_raw_body(ctx, raw, call->model, &call->raw_body);
    } else if (raw->root != NULL && !raw->decoded) {
        /* Passthrough so far: the translation path's decode, late. */
        rc = decode != NULL ? decode(ud) : PG_EUNSUPPORTED;
        raw->decoded = rc == PG_OK;
    }
    if (rc != PG_OK)
        return rc; /* skipped: the log keeps naming the one before */
    if (!call->raw) {
        req->model = call->model;
        pg_fd_log_unmapped(ctx, req, p->pub.name);
    }
    ctx->provider = p->pub.name;
    ctx->served_model = call->model;
    return PG_OK;
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
     * out in one write, except the stream's first, which goes at once (the
     * client's time to first token does not wait for the rest of a
     * burst). A client still behind on what it was sent pauses the
     * upstream (on_drain resumes it). */
    if ((rc = pg_sse_append_event(&s->sse, event, data)) != PG_OK)
        return rc;
    if (!s->sent_first) {
        s->sent_first = true;
        return pg_fd_stream_flush(s);
    }
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
