/* Refused allocations for unit tests: a test linked with
 * TG_ALLOC_FAIL_WRAP (tests/CMakeLists.txt: tg_alloc_fail_test) sends
 * malloc, calloc, realloc and strdup through wrappers that refuse the
 * chosen call while armed, so a test can walk every allocation of a
 * function and check that each failure is reported, never ignored. */
#ifndef TG_ALLOC_FAIL_H
#define TG_ALLOC_FAIL_H

/* Counts allocations from now on and refuses the fail_at-th (1-based). */
void tg_alloc_fail_arm(long fail_at);

/* Stops counting; returns 1 when the chosen allocation was reached and
 * refused (so a higher fail_at is worth trying), 0 otherwise. */
int tg_alloc_fail_disarm(void);

#endif
