/* Layer 0 (base).
 * A growable byte buffer (after curl's dynbuf): append functions fail with
 * TG_ERR_NOMEM and leave the buffer as it was. */
#ifndef TG_BUF_H
#define TG_BUF_H

#include "tg/error.h"
#include <stddef.h>

typedef struct {
    char *data; /* always NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
} tg_buf_t;

void tg_buf_init(tg_buf_t *b);
void tg_buf_free(tg_buf_t *b);
void tg_buf_reset(tg_buf_t *b);
int tg_buf_append(tg_buf_t *b, const void *data, size_t len) TG_WARN_UNUSED;
int tg_buf_appendf(tg_buf_t *b, const char *fmt, ...) TG_PRINTF(2, 3) TG_WARN_UNUSED;

/* COPY text-format helpers: a field escaped for COPY ... FROM STDIN, then a
 * tab (or, for the last field, a newline). NULL str writes \N. */
int tg_copy_str(tg_buf_t *b, const char *str, int last) TG_WARN_UNUSED;
int tg_copy_long(tg_buf_t *b, long long v, int last) TG_WARN_UNUSED;
int tg_copy_double(tg_buf_t *b, double v, int last) TG_WARN_UNUSED;

#endif
