/* unit_fixture.h: what the cmocka unit tests share. assert_str compares
 * a pg_str_t with a C string and prints both sides when they differ;
 * unit_arena is an arena made fresh for each test by unit_arena_setup and
 * freed by unit_arena_teardown (cmocka setup/teardown hooks). Include
 * after <cmocka.h>. Test thread only. */
#ifndef PG_TEST_UNIT_FIXTURE_H
#define PG_TEST_UNIT_FIXTURE_H

#include "base/arena.h"
#include "base/str.h"

#define assert_str(s, lit)                                                   \
    do {                                                                     \
        pg_str_t s_ = (s);                                                   \
        if (!pg_str_eqc(s_, (lit)))                                          \
            fail_msg("got \"%.*s\", want \"%s\"", (int)s_.n,                 \
                     s_.p ? s_.p : "", (lit));                               \
    } while (0)

extern pg_arena_t unit_arena;

int unit_arena_setup(void **state);
int unit_arena_teardown(void **state);

#endif
