/* fuzz_openai_chat.c: libFuzzer target for the OpenAI Chat Completions
 * request decoder (JSON text -> canonical request). Any input must give
 * PG_OK or a clean 400 with a message, never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"
#include "codec/openai_chat.h"

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
    /* The same parser the frontdoor uses: the tree lives in the arena. */
    cJSON *root = pg_json_parse_arena(&arena, (pg_str_t){text, size}, NULL);
    if (root != NULL) {
        pg_request_t req;
        pg_openai_decode_err_t err;
        memset(&err, 0, sizeof(err));
        int rc = pg_openai_chat_decode(&arena, root, &req, &err);
        if (rc == PG_EPARSE && (err.status != 400 || err.message.n == 0))
            abort(); /* every refusal must explain itself */
    }
    pg_arena_destroy(&arena);
    free(text);
    return 0;
}
