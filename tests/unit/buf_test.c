/* Growable buffer and COPY text-format escaping. */
#include "tg/buf.h"
#include "tg_test.h"
#include <math.h>
#include <stdlib.h>

/* The number PostgreSQL reads from one COPY field written by tg_copy_double. */
static double copied_back(double v) {
    tg_buf_t b;
    tg_buf_init(&b);
    double back = -12345;
    if (tg_copy_double(&b, v, 1) == TG_OK && b.data) {
        back = strcmp(b.data, "\\N\n") == 0 ? NAN : strtod(b.data, NULL);
    }
    tg_buf_free(&b);
    return back;
}

int main(void) {
    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(tg_copy_str(&b, "plain", 0) == TG_OK);
    CHECK(tg_copy_str(&b, "tab\there\\ and\nnewline", 0) == TG_OK);
    CHECK(tg_copy_str(&b, NULL, 0) == TG_OK);
    CHECK(tg_copy_long(&b, -42, 0) == TG_OK);
    CHECK_STR(b.data, "plain\ttab\\there\\\\ and\\nnewline\t\\N\t-42\t");

    /* Coordinates and distances reach PostgreSQL as the very same double
     * (whatever digits that takes), and a missing one as NULL. */
    CHECK(copied_back(62.0278) == 62.0278);
    CHECK(copied_back(129.7319) == 129.7319);
    CHECK(copied_back(0.1 + 0.2) == 0.1 + 0.2);
    CHECK(copied_back(-1e-300) == -1e-300);
    CHECK(isnan(copied_back(NAN)));

    tg_buf_reset(&b);
    for (int i = 0; i < 10000; i++) {
        CHECK(tg_buf_appendf(&b, "%d,", i) == TG_OK);
    }
    CHECK(b.len == 48890);
    CHECK(strncmp(b.data + b.len - 5, "9999,", 5) == 0);
    tg_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0);
    TG_TEST_END();
}
