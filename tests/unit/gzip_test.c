/* gzip of tg/s3.h: the stream fed in pieces gives the very bytes of the
 * one-shot tg_gzip (so a backup written piece by piece is the backup it
 * always was), and they inflate back to the input. */
#include "tg/buf.h"
#include "tg/s3.h"
#include "tg_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* JSON-like text, repetitive and not, a few megabytes. */
static void sample(tg_buf_t *b) {
    unsigned x = 7;
    for (int i = 0; i < 40000; i++) {
        x = x * 1103515245u + 12345u;
        CHECK(tg_buf_appendf(b, "{\"fromStopId\":\"stop-%u\",\"weight\":%u,\"routeId\":\"r-%d\"},",
                             x % 5000, x % 600, i) == TG_OK);
    }
}

/* Compresses data in pieces of step bytes (the last may be shorter). */
static int gzip_pieces(const tg_buf_t *data, size_t step, void **out, size_t *outlen) {
    tg_gzip_t *z = tg_gzip_new();
    if (!z) {
        return TG_ERR_NOMEM;
    }
    for (size_t off = 0; off < data->len; off += step) {
        size_t n = data->len - off < step ? data->len - off : step;
        if (tg_gzip_write(z, data->data + off, n) != TG_OK) {
            tg_gzip_free(z);
            return TG_ERR_NOMEM;
        }
    }
    return tg_gzip_finish(z, out, outlen);
}

static int inflates_to(const void *gz, size_t gzlen, const tg_buf_t *want) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        return 0;
    }
    char *out = malloc(want->len + 1);
    zs.next_in = (unsigned char *)gz;
    zs.avail_in = (uInt)gzlen;
    zs.next_out = (unsigned char *)out;
    zs.avail_out = (uInt)want->len + 1;
    int ok = out && inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == want->len &&
             (want->len == 0 || memcmp(out, want->data, want->len) == 0);
    inflateEnd(&zs);
    free(out);
    return ok;
}

int main(void) {
    tg_buf_t data;
    tg_buf_init(&data);
    sample(&data);
    void *whole = NULL;
    size_t whole_len = 0;
    CHECK(tg_gzip(data.data, data.len, &whole, &whole_len) == TG_OK);
    CHECK(whole_len > 0 && whole_len < data.len / 3);
    CHECK(inflates_to(whole, whole_len, &data));

    const size_t steps[] = {1, 1000, 64 * 1024, 1 << 20};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        void *gz = NULL;
        size_t gzlen = 0;
        CHECK(gzip_pieces(&data, steps[i], &gz, &gzlen) == TG_OK);
        CHECK(gzlen == whole_len && gz && memcmp(gz, whole, gzlen) == 0);
        free(gz);
    }

    /* Nothing written: still a valid, empty gzip member. */
    tg_buf_t empty;
    tg_buf_init(&empty);
    void *gz = NULL;
    size_t gzlen = 0;
    CHECK(gzip_pieces(&empty, 1, &gz, &gzlen) == TG_OK);
    CHECK(gzlen > 0 && inflates_to(gz, gzlen, &empty));
    free(gz);
    tg_gzip_free(NULL);

    free(whole);
    tg_buf_free(&data);
    TG_TEST_END();
}
