/* json_parse_bench.c: pg_json_parse_arena on the request path's typical
 * bodies, N times, for instruction counts per parse under callgrind:
 *
 *   valgrind --tool=callgrind --toggle-collect=pg_json_parse_arena \
 *       build/bench/json_parse_bench upstream 1000
 *
 * gives N times the instructions of one parse of that body (callgrind's
 * total Ir). Bodies: "client" (bench/chat.lua's request), "upstream"
 * (fast_upstream's chat.completion answer), "tools" (a larger chat
 * request with tools, a tool call and escapes). Each parse gets a fresh
 * arena from the per-thread chunk cache, already holding a chunk, as a
 * request's arena does when the body is parsed. Asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"

#include "bodies.h"

static const char client_body[] =
    "{\"model\":\"mock-echo\",\"messages\":[{\"role\":\"system\",\"content\":"
    "\"You are terse.\"},{\"role\":\"user\",\"content\":\"Say hello to the "
    "benchmark in a few words please\"}]}";

/* The bytes bench/fast_upstream.c answers with. */
static const char upstream_body[] = BENCH_CHAT_COMPLETION;

static const char tools_body[] =
    "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"max_tokens\":1024,"
    "\"stream\":false,\"messages\":[{\"role\":\"system\",\"content\":"
    "\"You are a helpful travel assistant.\\nAnswer briefly and use the "
    "tools when the user asks about the weather or flights.\\nToday is "
    "2024-05-17.\"},{\"role\":\"user\",\"content\":\"What's the weather in "
    "Z\\u00fcrich tomorrow, and is there a flight from Geneva to Lisbon on "
    "Friday morning?\"},{\"role\":\"assistant\",\"content\":null,"
    "\"tool_calls\":[{\"id\":\"call_8sKJ2mQ1\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
    "\\\"Z\\u00fcrich\\\",\\\"date\\\":\\\"2024-05-18\\\",\\\"unit\\\":"
    "\\\"celsius\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
    "\"call_8sKJ2mQ1\",\"content\":\"{\\\"temp_max\\\":21.5,\\\"temp_min\\\":"
    "11.0,\\\"sky\\\":\\\"partly cloudy\\\",\\\"rain_mm\\\":0.4}\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"description\":\"Weather forecast for a city and a date.\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\",\"description\":\"City name, e.g. Paris\"},\"date\":{\"type\":"
    "\"string\",\"description\":\"ISO date, YYYY-MM-DD\"},\"unit\":{\"type\":"
    "\"string\",\"enum\":[\"celsius\",\"fahrenheit\"]}},\"required\":[\"city\","
    "\"date\"],\"additionalProperties\":false}}},{\"type\":\"function\","
    "\"function\":{\"name\":\"search_flights\",\"description\":\"Flights "
    "between two airports on a date, cheapest first.\",\"parameters\":{"
    "\"type\":\"object\",\"properties\":{\"from\":{\"type\":\"string\","
    "\"description\":\"IATA code of the departure airport\"},\"to\":{\"type\":"
    "\"string\",\"description\":\"IATA code of the arrival airport\"},"
    "\"date\":{\"type\":\"string\"},\"max_results\":{\"type\":\"integer\","
    "\"minimum\":1,\"maximum\":20,\"default\":5}},\"required\":[\"from\","
    "\"to\",\"date\"]}}}],\"tool_choice\":\"auto\",\"user\":\"u-4821\"}";

int main(int argc, char **argv)
{
    const char *which = argc > 1 ? argv[1] : "upstream";
    long n = argc > 2 ? atol(argv[2]) : 1000;
    const char *body = strcmp(which, "client") == 0  ? client_body
                       : strcmp(which, "tools") == 0 ? tools_body
                                                     : upstream_body;
    pg_str_t text = {body, strlen(body)};
    size_t nodes = 0;
    pg_arena_cache_enable();
    for (long i = 0; i < n; i++) {
        pg_arena_t a;
        pg_arena_init(&a, 0);
        if (pg_arena_alloc(&a, 1) == NULL)
            return 1;
        cJSON *root = pg_json_parse_arena(&a, text, NULL);
        if (root == NULL) {
            fprintf(stderr, "json_parse_bench: %s refused\n", which);
            return 1;
        }
        nodes += root->child != NULL;
        pg_arena_destroy(&a);
    }
    pg_arena_cache_disable();
    printf("%s: %zu bytes, %ld parses (%zu)\n", which, text.n, n, nodes);
    return 0;
}
