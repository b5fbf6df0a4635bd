/* The dashboard's static files (ui/), embedded in the binary at build time
 * and served at /ui/ with their type, a strict Content-Security-Policy and
 * an ETag; / sends the browser there. The page itself only calls the API. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api_http.h"
#include "orchestrator.h"
#include "ui.h"
#include "ui_files.h"

#define UI_PREFIX "/ui/"

/* Scripts and styles from this origin only (no inline code, no eval), the
 * API of this origin only, and no framing. */
#define UI_SECURITY_HEADERS                                                                        \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; "                    \
    "frame-ancestors 'none'\r\n"                                                                   \
    "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"                          \
    "X-Frame-Options: DENY\r\n"

static const char *content_type(const char *path) {
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},
                 {".js", "text/javascript; charset=utf-8"},
                 {".svg", "image/svg+xml"},
                 {".png", "image/png"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++) {
        if (!strcmp(dot, types[i].ext)) {
            return types[i].type;
        }
    }
    return "application/octet-stream";
}

/* A strong validator from the bytes (FNV-1a 64): the same build always
 * answers the same ETag, a new build a new one. */
static void etag_of(const embedded_file_t *f, char *out, size_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < f->len; i++) {
        h = (h ^ f->data[i]) * 1099511628211ULL;
    }
    snprintf(out, len, "\"%016llx\"", (unsigned long long)h);
}

static const embedded_file_t *find_file(const char *name) {
    for (size_t i = 0; i < ui_files_count; i++) {
        if (!strcmp(ui_files[i].path, name)) {
            return &ui_files[i];
        }
    }
    return NULL;
}

static int redirect(struct mg_connection *conn, const char *to) {
    mg_printf(conn,
              "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
              "Cache-Control: no-store\r\n\r\n",
              to);
    return 302;
}

static int not_found(struct mg_connection *conn, const char *uri) {
    char message[160];
    snprintf(message, sizeof message, "unknown resource %.120s", uri);
    api_error(conn, 404, "not_found", message, NULL);
    return 404;
}

/* Every answer is revalidated (no-cache + ETag): after an upgrade the
 * browser never runs an old app.js against a new API, and an unchanged
 * file costs a 304. */
static int send_file(struct mg_connection *conn, const embedded_file_t *f, int head) {
    char etag[24];
    etag_of(f, etag, sizeof etag);
    const char *inm = mg_get_header(conn, "If-None-Match");
    if (inm && strstr(inm, etag)) {
        mg_printf(conn,
                  "HTTP/1.1 304 Not Modified\r\nETag: %s\r\nCache-Control: no-cache\r\n"
                  "Content-Length: 0\r\n\r\n",
                  etag);
        return 304;
    }
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\nETag: %s\r\n"
              "Cache-Control: no-cache\r\n" UI_SECURITY_HEADERS "\r\n",
              content_type(f->path), f->len, etag);
    if (!head) {
        mg_write(conn, f->data, f->len);
    }
    return 200;
}

static int get_or_head(struct mg_connection *conn, int *head) {
    const char *m = mg_get_request_info(conn)->request_method;
    *head = !strcmp(m, "HEAD");
    if (*head || !strcmp(m, "GET")) {
        return 1;
    }
    api_method_not_allowed(conn, "GET, HEAD");
    return 0;
}

int ui_on_root(struct mg_connection *conn, void *data) {
    int head;
    return get_or_head(conn, &head) ? redirect(conn, UI_PREFIX) : 405;
}

/* /ui, /ui/ and /ui/<file>. */
int ui_on_files(struct mg_connection *conn, void *data) {
    const char *uri = mg_get_request_info(conn)->local_uri;
    int head;
    if (!strcmp(uri, "/ui")) {
        return get_or_head(conn, &head) ? redirect(conn, UI_PREFIX) : 405;
    }
    if (strncmp(uri, UI_PREFIX, sizeof UI_PREFIX - 1) != 0) {
        return not_found(conn, uri);
    }
    const char *name = uri + sizeof UI_PREFIX - 1;
    const embedded_file_t *f = find_file(*name ? name : "index.html");
    if (!f) {
        return not_found(conn, uri);
    }
    return get_or_head(conn, &head) ? send_file(conn, f, head) : 405;
}
