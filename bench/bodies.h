/* bodies.h: the fixed chat.completion the bench's fake upstreams answer
 * with (bench/fast_upstream.c, bench/trivial_server.c), also parsed by
 * bench/json_parse_bench.c: one copy, so the lanes measure the same bytes. */
#ifndef PG_BENCH_BODIES_H
#define PG_BENCH_BODIES_H

#define BENCH_CHAT_COMPLETION                                                  \
    "{\"id\":\"chatcmpl-fast\",\"object\":\"chat.completion\","                \
    "\"created\":1700000000,\"model\":\"fast-upstream\",\"choices\":"         \
    "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"          \
    "\"Hello benchmark, this is the fast upstream.\"},\"logprobs\":null,"     \
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":19,"           \
    "\"completion_tokens\":9,\"total_tokens\":28}}"

#endif
