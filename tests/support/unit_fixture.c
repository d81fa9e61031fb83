/* unit_fixture.c: the per-test arena of unit_fixture.h. */
#include "unit_fixture.h"

pg_arena_t unit_arena;

int unit_arena_setup(void **state)
{
    (void)state;
    pg_arena_init(&unit_arena, 0);
    return 0;
}

int unit_arena_teardown(void **state)
{
    (void)state;
    pg_arena_destroy(&unit_arena);
    return 0;
}
