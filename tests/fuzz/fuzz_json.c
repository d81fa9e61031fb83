/* fuzz_json.c: differential target for the arena JSON parser
 * (lib/base/json_parse.c) against cJSON: whatever ours accepts, cJSON must
 * accept too and print identically; ours may refuse what cJSON tolerates
 * (leading zeros, control characters in strings...), never the reverse. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_arena_t arena;
    pg_arena_init(&arena, 0);
    size_t off = 0;
    cJSON *ours = pg_json_parse_arena(&arena, (pg_str_t){(const char *)data, size}, &off);
    if (ours == NULL) {
        if (off > size)
            abort();
    } else if (memchr(data, '\0', size) == NULL) {
        /* cJSON stops at a NUL byte; compare only NUL-free inputs. */
        cJSON *theirs = cJSON_ParseWithLength((const char *)data, size);
        if (theirs == NULL)
            abort();
        char *a = cJSON_PrintUnformatted(ours);
        char *b = cJSON_PrintUnformatted(theirs);
        if (a != NULL && b != NULL && strcmp(a, b) != 0)
            abort();
        cJSON_free(a);
        cJSON_free(b);
        cJSON_Delete(theirs);
    }
    pg_arena_destroy(&arena);
    return 0;
}
