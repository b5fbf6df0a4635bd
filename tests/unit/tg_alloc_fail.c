/* The wrappers behind tg_alloc_fail.h (linked with -Wl,--wrap=...). */
#include "tg_alloc_fail.h"
#include <stddef.h>

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);

static int armed;    /* count allocations only while armed */
static long fail_at; /* the allocation (1-based) to refuse */
static long seen;    /* allocations counted so far */
static int refused;  /* fail_at was reached and refused */

void tg_alloc_fail_arm(long at) {
    fail_at = at;
    seen = 0;
    refused = 0;
    armed = 1;
}

int tg_alloc_fail_disarm(void) {
    armed = 0;
    return refused;
}

static int refuse(void) {
    if (!armed || ++seen != fail_at) {
        return 0;
    }
    refused = 1;
    return 1;
}

void *__wrap_malloc(size_t size) {
    return refuse() ? NULL : __real_malloc(size);
}
void *__wrap_calloc(size_t n, size_t size) {
    return refuse() ? NULL : __real_calloc(n, size);
}
void *__wrap_realloc(void *p, size_t size) {
    return refuse() ? NULL : __real_realloc(p, size);
}
char *__wrap_strdup(const char *s) {
    return refuse() ? NULL : __real_strdup(s);
}
