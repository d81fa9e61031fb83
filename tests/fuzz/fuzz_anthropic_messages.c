/* fuzz_anthropic_messages.c: libFuzzer target for the client-side
 * Anthropic Messages request decoder (JSON text -> canonical request).
 * Any input must give PG_OK, or a 400 whose message and field say what is
 * wrong (PG_EPARSE / PG_EUNSUPPORTED), never a crash or a leak. An
 * accepted request must also hold together: every message has a user or
 * assistant role and max_tokens is set. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"
#include "codec/anthropic_messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The server always hands the decoder a NUL-terminated body. */
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    pg_arena_t arena;
    pg_arena_init(&arena, 0);
    cJSON *root = pg_json_parse_arena(&arena, (pg_str_t){text, size}, NULL);
    if (root != NULL) {
        pg_request_t req;
        pg_anthropic_decode_err_t err;
        int rc = pg_anthropic_messages_decode(&arena, root, &req, &err);
        if ((rc == PG_EPARSE || rc == PG_EUNSUPPORTED) &&
            (err.status != 400 || err.message.n == 0 || err.type.n == 0))
            abort(); /* every refusal must explain itself */
        if (rc == PG_OK) {
            if (!(req.set & PG_SET_MAX_TOKENS) || req.max_tokens < 1)
                abort();
            for (size_t i = 0; i < req.nmessages; i++)
                if (req.messages[i].role != PG_ROLE_USER &&
                    req.messages[i].role != PG_ROLE_ASSISTANT)
                    abort();
        }
    }
    pg_arena_destroy(&arena);
    free(text);
    return 0;
}
