/* gzip of tg/s3.h: the stream fed in pieces of any size writes the very
 * bytes of one deflate over the whole (level 6, gzip header: what the
 * backups always were), they inflate back to the input, tg_gzip_file gives
 * the same from a file, and a file that cannot be written is an error. */
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

/* The reference: one deflate call over everything, zlib directly. */
static void one_shot(const tg_buf_t *data, tg_buf_t *out) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&zs, (uLong)data->len);
    unsigned char *buf = malloc(cap);
    zs.next_in = (unsigned char *)data->data;
    zs.avail_in = (uInt)data->len;
    zs.next_out = buf;
    zs.avail_out = (uInt)cap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    CHECK(tg_buf_append(out, buf, zs.total_out) == TG_OK);
    deflateEnd(&zs);
    free(buf);
}

static void file_bytes(FILE *f, tg_buf_t *out) {
    char piece[65536];
    size_t n;
    rewind(f);
    while ((n = fread(piece, 1, sizeof(piece), f)) > 0) {
        CHECK(tg_buf_append(out, piece, n) == TG_OK);
    }
}

/* Compresses data in pieces of step bytes (the last may be shorter). */
static int gzip_pieces(const tg_buf_t *data, size_t step, tg_buf_t *out) {
    FILE *f = tmpfile();
    tg_gzip_t *z = f ? tg_gzip_new(f) : NULL;
    if (!z) {
        return TG_ERR_NOMEM;
    }
    int rc = TG_OK;
    for (size_t off = 0; off < data->len && !rc; off += step) {
        size_t n = data->len - off < step ? data->len - off : step;
        rc = tg_gzip_write(z, data->data + off, n);
    }
    rc = rc ? (tg_gzip_free(z), rc) : tg_gzip_finish(z);
    file_bytes(f, out);
    fclose(f);
    return rc;
}

static int inflates_to(const tg_buf_t *gz, const tg_buf_t *want) {
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
        return 0;
    }
    char *out = malloc(want->len + 1);
    zs.next_in = (unsigned char *)gz->data;
    zs.avail_in = (uInt)gz->len;
    zs.next_out = (unsigned char *)out;
    zs.avail_out = (uInt)want->len + 1;
    int ok = out && inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == want->len &&
             (want->len == 0 || memcmp(out, want->data, want->len) == 0);
    inflateEnd(&zs);
    free(out);
    return ok;
}

int main(void) {
    tg_buf_t data, whole;
    tg_buf_init(&data);
    tg_buf_init(&whole);
    sample(&data);
    one_shot(&data, &whole);
    CHECK(whole.len > 0 && whole.len < data.len / 3);

    const size_t steps[] = {1, 1000, 64 * 1024, 1 << 20};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        tg_buf_t gz;
        tg_buf_init(&gz);
        CHECK(gzip_pieces(&data, steps[i], &gz) == TG_OK);
        CHECK(gz.len == whole.len && memcmp(gz.data, whole.data, gz.len) == 0);
        CHECK(inflates_to(&gz, &data));
        tg_buf_free(&gz);
    }

    /* A file in, a file out: the same bytes. */
    FILE *in = tmpfile(), *out = tmpfile();
    CHECK(in && out && fwrite(data.data, 1, data.len, in) == data.len);
    char err[200];
    CHECK(tg_gzip_file(in, out, err, sizeof(err)) == TG_OK);
    tg_buf_t gz;
    tg_buf_init(&gz);
    file_bytes(out, &gz);
    CHECK(gz.len == whole.len && memcmp(gz.data, whole.data, gz.len) == 0);
    tg_buf_free(&gz);
    fclose(out);

    /* An output that cannot be written: an error, not a short backup. */
    FILE *ro = fopen("/dev/null", "r");
    CHECK(ro && tg_gzip_file(in, ro, err, sizeof(err)) == TG_ERR_IO);
    CHECK(strstr(err, "cannot write") != NULL);
    fclose(ro);
    fclose(in);

    /* Nothing written: still a valid, empty gzip member. */
    tg_buf_t empty;
    tg_buf_init(&empty);
    tg_buf_init(&gz);
    CHECK(gzip_pieces(&empty, 1, &gz) == TG_OK);
    CHECK(gz.len > 0 && inflates_to(&gz, &empty));
    tg_buf_free(&gz);
    tg_gzip_free(NULL);

    tg_buf_free(&whole);
    tg_buf_free(&data);
    TG_TEST_END();
}
