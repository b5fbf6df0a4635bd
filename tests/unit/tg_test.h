/* A minimal assertion harness for unit tests: each CHECK that fails prints
 * file:line and the expression; TG_TEST_END prints "N passed, N failed". */
#ifndef TG_TEST_H
#define TG_TEST_H

#include <stdio.h>
#include <string.h>

static int tg_test_passed, tg_test_failed;

#define CHECK(expr)                                                                                \
    do {                                                                                           \
        if (expr) {                                                                                \
            tg_test_passed++;                                                                      \
        } else {                                                                                   \
            tg_test_failed++;                                                                      \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ && b_ && strcmp(a_, b_) == 0) {                                                     \
            tg_test_passed++;                                                                      \
        } else {                                                                                   \
            tg_test_failed++;                                                                      \
            fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)",   \
                    b_ ? b_ : "(null)");                                                           \
        }                                                                                          \
    } while (0)

#define TG_TEST_END()                                                                              \
    do {                                                                                           \
        printf("%d passed, %d failed\n", tg_test_passed, tg_test_failed);                          \
        return tg_test_failed ? 1 : 0;                                                             \
    } while (0)

#endif
