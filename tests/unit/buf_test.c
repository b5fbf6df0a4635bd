/* Growable buffer and COPY text-format escaping. */
#include "tg/buf.h"
#include "tg_test.h"

int main(void) {
    tg_buf_t b;
    tg_buf_init(&b);
    CHECK(tg_copy_str(&b, "plain", 0) == TG_OK);
    CHECK(tg_copy_str(&b, "tab\there\\ and\nnewline", 0) == TG_OK);
    CHECK(tg_copy_str(&b, NULL, 0) == TG_OK);
    CHECK(tg_copy_long(&b, -42, 0) == TG_OK);
    CHECK(tg_copy_double(&b, 62.0278, 1) == TG_OK);
    CHECK_STR(b.data, "plain\ttab\\there\\\\ and\\nnewline\t\\N\t-42\t62.027799999999999\n");

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
