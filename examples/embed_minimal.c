/* embed_minimal.c: the smallest host program. It embeds polyglot with
 * nothing but the public API: a gateway from a YAML string (the built-in
 * mock provider, so no API key and no network), on an ephemeral port, with
 * the gateway's own worker thread. It then asks itself for one chat
 * completion with libcurl, prints the answer, shuts the gateway down and
 * exits 0 only when the answer is the expected echo.
 *
 * Build: cc embed_minimal.c $(pkg-config --cflags --libs polyglot libcurl)
 * Everything runs on main's thread; the gateway serves from its worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <polyglot/polyglot.h>

static const char config_yaml[] =
    "server: {host: 127.0.0.1, port: 0, workers: 1}\n"
    "providers:\n"
    "  - name: mock\n"
    "    type: mock\n"
    "    mock: {reply: echo, chunks: 4, chunk_delay: 0ms}\n"
    "routing: {default_provider: mock}\n"
    "apps:\n"
    "  - {name: openai-api, frontdoor: openai, path: /openai,"
    " default_model: mock-echo}\n"
    "logging: {level: warn, format: text}\n";

#define QUESTION "Hello from the host program"
#define ANSWER_MAX 65536

struct answer {
    char text[ANSWER_MAX];
    size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct answer *a = ud;
    size_t n = size * nmemb;
    if (a->len + n >= sizeof(a->text))
        return 0; /* too big for this example: make curl fail */
    memcpy(a->text + a->len, data, n);
    a->len += n;
    a->text[a->len] = '\0';
    return n;
}

/* POSTs one chat completion to the gateway on port; fills a. Returns the
 * HTTP status, or -1 when the transfer failed. */
static long ask(int port, struct answer *a)
{
    char url[128];
    snprintf(url, sizeof(url),
             "http://127.0.0.1:%d/openai/v1/chat/completions", port);
    static const char body[] =
        "{\"model\":\"mock-echo\",\"messages\":"
        "[{\"role\":\"user\",\"content\":\"" QUESTION "\"}]}";
    CURL *h = curl_easy_init();
    if (h == NULL)
        return -1;
    struct curl_slist *hdrs =
        curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    long status = -1;
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "embed_minimal: request failed: %s\n",
                curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return status;
}

int main(void)
{
    int ok = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pg_gateway_t *gw = pg_gateway_new();
    if (gw == NULL) {
        fprintf(stderr, "embed_minimal: out of memory\n");
        return 1;
    }
    if (pg_gateway_set_config_yaml(gw, config_yaml, strlen(config_yaml)) !=
            PG_OK ||
        pg_gateway_set_listen(gw, "127.0.0.1", 0) != PG_OK ||
        pg_gateway_start(gw) != PG_OK) {
        fprintf(stderr, "embed_minimal: %s\n", pg_gateway_last_error(gw));
        goto out;
    }
    int port = pg_gateway_port(gw);
    printf("gateway %s listening on 127.0.0.1:%d\n", pg_version(), port);

    static struct answer a;
    long status = ask(port, &a);
    printf("HTTP %ld: %s\n", status, a.text);
    /* A real host would parse the JSON; the echo's exact content string is
     * enough to know the round trip worked. */
    ok = status == 200 &&
         strstr(a.text, "\"content\":\"" QUESTION "\"") != NULL &&
         strstr(a.text, "\"chat.completion\"") != NULL;
    if (!ok)
        fprintf(stderr, "embed_minimal: unexpected answer\n");

    if (pg_gateway_shutdown(gw, 5000) != PG_OK) {
        fprintf(stderr, "embed_minimal: shutdown: %s\n",
                pg_gateway_last_error(gw));
        ok = 0;
    }
out:
    pg_gateway_free(gw);
    curl_global_cleanup();
    return ok ? 0 : 1;
}
