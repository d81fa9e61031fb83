/* custom_provider.c: a host adds its own provider type. The type
 * "shout" answers every request with the last user message in capital
 * letters, one word per event, from a libuv timer on the call's worker
 * loop: the same pg_provider_vtable the built-in providers implement.
 * The program registers the type, starts a gateway whose config routes
 * "shout-*" models to it, asks itself for a streamed completion with
 * libcurl, checks the answer and shuts down (exit 0 only when it was
 * right).
 *
 * Build: cc custom_provider.c $(pkg-config --cflags --libs polyglot libuv libcurl)
 * The provider's slots run on the gateway's worker loop thread. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include <polyglot/polyglot.h>

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- the provider ----------------------------------------------------- */

/* One instance per providers[] entry; this one has an option: the delay
 * between words ("delay_ms", default 1). */
struct shout {
    unsigned delay_ms;
};

/* One call: the text to send and where we are in it. Heap-allocated
 * because the timer must outlive the call until its close callback. */
struct shout_call {
    uv_timer_t timer;
    pg_provider_call_t *call; /* NULL once done or canceled */
    char *text;
    size_t pos, len;
    int stage; /* 0 start, 1 words, 2 end */
};

static int shout_create(const pg_provider_config_t *cfg, void **self,
                        char *err, size_t errlen)
{
    struct shout *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return PG_ENOMEM;
    }
    s->delay_ms = 1;
    pg_str_t d = pg_provider_config_option(cfg, "delay_ms");
    if (d.p != NULL) {
        char buf[16];
        if (d.n == 0 || d.n >= sizeof(buf)) {
            free(s);
            snprintf(err, errlen, "delay_ms: must be a number of milliseconds");
            return PG_ECONFIG;
        }
        memcpy(buf, d.p, d.n);
        buf[d.n] = '\0';
        s->delay_ms = (unsigned)strtoul(buf, NULL, 10);
    }
    *self = s;
    return PG_OK;
}

static void shout_destroy(void *self) { free(self); }

static void on_closed(uv_handle_t *h)
{
    struct shout_call *sc = container_of((uv_timer_t *)h, struct shout_call,
                                         timer);
    free(sc->text);
    free(sc);
}

static void finish(struct shout_call *sc)
{
    sc->call = NULL;
    uv_timer_stop(&sc->timer);
    uv_close((uv_handle_t *)&sc->timer, on_closed);
}

static void on_tick(uv_timer_t *t)
{
    struct shout_call *sc = container_of(t, struct shout_call, timer);
    pg_provider_call_t *call = sc->call;
    pg_event_t ev;
    memset(&ev, 0, sizeof(ev));
    if (sc->stage == 0) {
        ev.kind = PG_EV_MESSAGE_START;
        ev.id = (pg_str_t){"shout-1", 7};
        ev.model = pg_provider_call_request(call)->model;
        pg_provider_call_emit(call, &ev);
        ev.kind = PG_EV_BLOCK_START;
        ev.block = PG_PART_TEXT;
        pg_provider_call_emit(call, &ev);
        sc->stage = 1;
        return;
    }
    if (sc->stage == 1 && sc->pos < sc->len) {
        /* One word (and the space after it) per event. */
        size_t end = sc->pos;
        while (end < sc->len && sc->text[end] != ' ')
            end++;
        while (end < sc->len && sc->text[end] == ' ')
            end++;
        ev.kind = PG_EV_TEXT_DELTA;
        ev.text = (pg_str_t){sc->text + sc->pos, end - sc->pos};
        sc->pos = end;
        if (pg_provider_call_emit(call, &ev) == PG_ECANCELED)
            return; /* the client left: cancel() follows */
        return;
    }
    ev.kind = PG_EV_BLOCK_STOP;
    pg_provider_call_emit(call, &ev);
    ev.kind = PG_EV_MESSAGE_STOP;
    ev.stop_reason = PG_STOP_END_TURN;
    pg_provider_call_emit(call, &ev);
    finish(sc);
    pg_provider_call_done(call, NULL);
}

/* The last user message's text parts, upper-cased. */
static char *last_user_text(const pg_request_t *q)
{
    for (size_t i = q->nmessages; i-- > 0;) {
        const pg_message_t *m = &q->messages[i];
        if (m->role != PG_ROLE_USER)
            continue;
        size_t n = 0;
        for (size_t j = 0; j < m->nparts; j++)
            if (m->parts[j].kind == PG_PART_TEXT)
                n += m->parts[j].text.n;
        char *out = malloc(n + 1), *o = out;
        if (out == NULL)
            return NULL;
        for (size_t j = 0; j < m->nparts; j++) {
            if (m->parts[j].kind != PG_PART_TEXT)
                continue;
            for (size_t k = 0; k < m->parts[j].text.n; k++)
                *o++ = (char)toupper((unsigned char)m->parts[j].text.p[k]);
        }
        *o = '\0';
        return out;
    }
    return strdup("");
}

static int shout_start(void *self, pg_provider_call_t *call)
{
    struct shout *s = self;
    struct shout_call *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return PG_ENOMEM;
    sc->text = last_user_text(pg_provider_call_request(call));
    if (sc->text == NULL) {
        free(sc);
        return PG_ENOMEM;
    }
    sc->len = strlen(sc->text);
    sc->call = call;
    uv_timer_init(pg_provider_call_loop(call), &sc->timer);
    /* Events start from the loop, never inside start(). */
    uv_timer_start(&sc->timer, on_tick, s->delay_ms, s->delay_ms);
    pg_provider_call_set_data(call, sc);
    return PG_PENDING;
}

static void shout_cancel(void *self, pg_provider_call_t *call)
{
    (void)self;
    struct shout_call *sc = pg_provider_call_get_data(call);
    if (sc != NULL && sc->call != NULL)
        finish(sc);
}

static const struct pg_provider_vtable shout_vtable = {
    .abi = PG_PROVIDER_ABI_1,
    .type = "shout",
    .create = shout_create,
    .destroy = shout_destroy,
    .start = shout_start,
    .cancel = shout_cancel,
};

/* ---- the host ---------------------------------------------------------- */

static const char config_yaml[] =
    "server: {host: 127.0.0.1, port: 0, workers: 1}\n"
    "providers:\n"
    "  - {name: loud, type: shout, options: {delay_ms: '2'}}\n"
    "routing:\n"
    "  rules: [{model_prefix: shout, provider: loud}]\n"
    "apps:\n"
    "  - {name: api, frontdoor: openai, path: /v1proxy}\n"
    "logging: {level: warn, format: text}\n";

struct body {
    char text[65536];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    if (b->len + n >= sizeof(b->text))
        return 0;
    memcpy(b->text + b->len, data, n);
    b->len += n;
    b->text[b->len] = '\0';
    return n;
}

/* The streamed deltas' contents, concatenated (a real client would use an
 * SSE parser and a JSON library). */
static void collect_content(const char *sse, char *out, size_t max)
{
    size_t n = 0;
    const char *key = "\"content\":\"";
    for (const char *p = strstr(sse, key); p != NULL; p = strstr(p, key)) {
        p += strlen(key);
        while (*p != '\0' && *p != '"' && n + 1 < max)
            out[n++] = *p++;
    }
    out[n] = '\0';
}

int main(void)
{
    int ok = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pg_gateway_t *gw = pg_gateway_new();
    if (gw == NULL)
        return 1;
    if (pg_gateway_register_provider(gw, &shout_vtable) != PG_OK ||
        pg_gateway_set_config_yaml(gw, config_yaml, strlen(config_yaml)) !=
            PG_OK ||
        pg_gateway_start(gw) != PG_OK) {
        fprintf(stderr, "custom_provider: %s\n", pg_gateway_last_error(gw));
        goto out;
    }
    char url[128];
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/v1proxy/v1/chat/completions",
             pg_gateway_port(gw));
    static const char req[] =
        "{\"model\":\"shout-1\",\"stream\":true,\"messages\":"
        "[{\"role\":\"user\",\"content\":\"hello from a host provider\"}]}";
    static struct body b;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);

    char content[1024];
    collect_content(b.text, content, sizeof(content));
    printf("HTTP %ld, streamed content: \"%s\"\n", status, content);
    ok = status == 200 && strcmp(content, "HELLO FROM A HOST PROVIDER") == 0 &&
         strstr(b.text, "data: [DONE]") != NULL;
    if (!ok)
        fprintf(stderr, "custom_provider: unexpected answer:\n%s\n", b.text);
    if (pg_gateway_shutdown(gw, 5000) != PG_OK)
        ok = 0;
out:
    pg_gateway_free(gw);
    curl_global_cleanup();
    return ok ? 0 : 1;
}
