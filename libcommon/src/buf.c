/* Growable buffer and COPY text-format field encoding. */
#include "tg/buf.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_buf_init(tg_buf_t *b) {
    memset(b, 0, sizeof(*b));
}

void tg_buf_free(tg_buf_t *b) {
    free(b->data);
    tg_buf_init(b);
}

void tg_buf_reset(tg_buf_t *b) {
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

static int reserve(tg_buf_t *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) {
        return TG_OK;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        return TG_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return TG_OK;
}

int tg_buf_append(tg_buf_t *b, const void *data, size_t len) {
    if (reserve(b, len)) {
        return TG_ERR_NOMEM;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return TG_OK;
}

int tg_buf_appendf(tg_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) {
        return TG_ERR_NOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return TG_OK;
}

static int end_field(tg_buf_t *b, int last) {
    return tg_buf_append(b, last ? "\n" : "\t", 1);
}

int tg_copy_str(tg_buf_t *b, const char *s, int last) {
    if (!s) {
        return tg_buf_append(b, "\\N", 2) || end_field(b, last);
    }
    size_t n = strlen(s);
    if (reserve(b, 2 * n + 1)) {
        return TG_ERR_NOMEM;
    }
    for (; *s; s++) {
        char esc = 0;
        switch (*s) {
        case '\\':
            esc = '\\';
            break;
        case '\t':
            esc = 't';
            break;
        case '\n':
            esc = 'n';
            break;
        case '\r':
            esc = 'r';
            break;
        default:
            break;
        }
        if (esc) {
            b->data[b->len++] = '\\';
            b->data[b->len++] = esc;
        } else {
            b->data[b->len++] = *s;
        }
    }
    b->data[b->len] = '\0';
    return end_field(b, last);
}

int tg_copy_long(tg_buf_t *b, long long v, int last) {
    return tg_buf_appendf(b, "%lld", v) || end_field(b, last);
}

int tg_copy_double(tg_buf_t *b, double v, int last) {
    if (v != v) {
        return tg_buf_append(b, "\\N", 2) || end_field(b, last);
    }
    return tg_buf_appendf(b, "%.17g", v) || end_field(b, last);
}
