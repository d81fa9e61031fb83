/* fuzz_config.c: libFuzzer target for the config loader (YAML -> validated
 * snapshot): any input gives a snapshot or a list of problems with paths,
 * never a crash or a leak. */
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"
#include "provider/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count_problem(void *ud, const char *path, const char *message)
{
    (void)path;
    if (message == NULL || message[0] == '\0')
        abort(); /* every problem must say what is wrong */
    ++*(int *)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pg_provider_registry_t reg;
    static int ready;
    if (!ready) {
        pg_provider_registry_init(&reg);
        ready = 1;
    }
    pg_config_t *cfg = NULL;
    int problems = 0;
    char summary[256];
    int rc = pg_config_build((const char *)data, size, "<fuzz>", &reg,
                             count_problem, &problems, summary, &cfg);
    if (rc == PG_OK) {
        if (cfg == NULL || problems != 0)
            abort();
        pg_config_unref(cfg);
    } else if (cfg != NULL || (rc == PG_ECONFIG && problems == 0)) {
        abort();
    }
    return 0;
}
