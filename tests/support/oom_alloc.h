/* oom_alloc.h: an allocator for pg_set_allocator that fails one chosen
 * allocation and counts the blocks still live, for the out-of-memory
 * sweeps of the tests ("fail the Nth allocation, for every N, until a run
 * succeeds"). Plain globals: the test thread and the library code it
 * drives on that thread only. */
#ifndef PG_TEST_OOM_ALLOC_H
#define PG_TEST_OOM_ALLOC_H

#include <stdbool.h>

/* Routes the library's allocations (cJSON's included) through the hooks
 * below, disarmed; oom_uninstall puts libc's back. */
void oom_install(void);
void oom_uninstall(void);

/* Fails allocation number n (0-based) counted from this call; a negative
 * n disarms, and then allocations are not counted. */
void oom_arm(long n);

/* The allocations made since oom_arm (the failing one included). A sweep
 * is over when a run made fewer than n + 1: nothing was failed. */
long oom_calls(void);

/* Blocks allocated through the hooks and not freed yet: compare before
 * and after a run to find a leak on the failure path. */
long oom_live(void);

#endif
