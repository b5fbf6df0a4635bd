/* Whole-file reads and anonymous temporary files. */
#include "tg/files.h"

#include "tg/buf.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tg_file_read(const char *path, size_t max, char **out, size_t *len, char *errstr,
                 size_t errlen) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return tg_fail(TG_ERR_IO, errstr, errlen, "%s: %s", path, strerror(errno));
    }
    tg_buf_t b;
    tg_buf_init(&b);
    char chunk[65536];
    size_t n;
    int rc = TG_OK;
    while (rc == TG_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (max && b.len + n > max) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: larger than %zu bytes", path, max);
        } else if (tg_buf_append(&b, chunk, n)) {
            rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", path);
        }
    }
    if (rc == TG_OK && ferror(f)) {
        rc = tg_fail(TG_ERR_IO, errstr, errlen, "%s: cannot read", path);
    }
    fclose(f);
    char *text = rc == TG_OK ? (b.data ? b.data : strdup("")) : NULL;
    if (rc == TG_OK && !text) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", path);
    }
    if (rc != TG_OK) {
        tg_buf_free(&b);
        return rc;
    }
    if (len) {
        *len = b.len;
    }
    *out = text; /* tg_buf keeps its data NUL-terminated */
    return TG_OK;
}

FILE *tg_tmpfile(char *errstr, size_t errlen) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !*dir) {
        dir = "/tmp";
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/tg-XXXXXX", dir) >= sizeof(path)) {
        tg_fail(TG_ERR_IO, errstr, errlen, "%s: path too long", dir);
        return NULL;
    }
    int fd = mkstemp(path);
    if (fd < 0) {
        tg_fail(TG_ERR_IO, errstr, errlen, "%s: cannot create a temporary file: %s", dir,
                strerror(errno));
        return NULL;
    }
    unlink(path); /* the open descriptor keeps it until fclose */
    FILE *f = fdopen(fd, "w+b");
    if (!f) {
        tg_fail(TG_ERR_IO, errstr, errlen, "%s: %s", dir, strerror(errno));
        close(fd);
    }
    return f;
}
