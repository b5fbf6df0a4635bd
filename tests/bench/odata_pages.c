/* The benchmark's OData source: the pages tests/bench/odata_pages.py rendered
 * once per dataset, mapped from disk and answered with one lookup each.
 *   odata_pages --pages DIR [--port N] [--threads N]
 * A page is sent as rendered, with the request's Host header written where
 * the Python server writes it (index.tsv gives the offsets); GET /healthz
 * answers {"status":"ok"}; any other target is 404 with an OData error. */
#include <civetweb.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOST_TOKEN "@HOST@"
#define MAX_HOLES 4

typedef struct {
    char *target; /* path?query as the client sends it */
    const char *body;
    size_t len;
    int nholes;
    size_t holes[MAX_HOLES]; /* offsets of HOST_TOKEN in body, ascending */
} page_t;

typedef struct {
    page_t *pages;
    size_t n;
    int port;
} catalog_t;

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static int by_target(const void *a, const void *b) {
    return strcmp(((const page_t *)a)->target, ((const page_t *)b)->target);
}

/* Maps one page file read-only (its bytes stay in the page cache, shared
 * with no copy); 0 or -1 with errstr filled. */
static int map_page(const char *dir, const char *file, page_t *p, char *errstr, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    p->len = (size_t)st.st_size;
    void *m = p->len ? mmap(NULL, p->len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : "";
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(errstr, errlen, "%s: mmap: %s", path, strerror(errno));
        return -1;
    }
    p->body = m;
    for (int i = 0; i < p->nholes; i++) {
        size_t at = p->holes[i];
        if (at + strlen(HOST_TOKEN) > p->len ||
            memcmp(p->body + at, HOST_TOKEN, strlen(HOST_TOKEN)) || (i && at <= p->holes[i - 1])) {
            snprintf(errstr, errlen, "%s: no %s at offset %zu", path, HOST_TOKEN, at);
            return -1;
        }
    }
    return 0;
}

/* One index.tsv line: target TAB file TAB offset[,offset...]. */
static int parse_line(const char *dir, char *line, page_t *p, char *errstr, size_t errlen) {
    char *file = strchr(line, '\t'), *offsets = file ? strchr(file + 1, '\t') : NULL;
    if (!offsets) {
        snprintf(errstr, errlen, "index.tsv: bad line \"%.200s\"", line);
        return -1;
    }
    *file++ = '\0';
    *offsets++ = '\0';
    memset(p, 0, sizeof(*p));
    for (char *s = offsets, *end; *s && *s != '\n'; s = *end == ',' ? end + 1 : end) {
        if (p->nholes == MAX_HOLES) {
            snprintf(errstr, errlen, "index.tsv: %s: too many offsets", line);
            return -1;
        }
        p->holes[p->nholes++] = strtoul(s, &end, 10);
        if (end == s) {
            snprintf(errstr, errlen, "index.tsv: %s: bad offsets \"%s\"", line, offsets);
            return -1;
        }
    }
    if (!(p->target = strdup(line))) {
        snprintf(errstr, errlen, "out of memory");
        return -1;
    }
    return map_page(dir, file, p, errstr, errlen);
}

static int load_catalog(const char *dir, catalog_t *cat, char *errstr, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/index.tsv", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) > 0) {
        if (cat->n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            page_t *grown = realloc(cat->pages, alloc * sizeof(*grown));
            if (!grown) {
                snprintf(errstr, errlen, "out of memory after %zu pages", cat->n);
                rc = -1;
                break;
            }
            cat->pages = grown;
        }
        rc = parse_line(dir, line, &cat->pages[cat->n], errstr, errlen);
        cat->n += rc == 0;
    }
    free(line);
    fclose(f);
    if (!rc && !cat->n) {
        snprintf(errstr, errlen, "%s: no pages", path);
        rc = -1;
    }
    qsort(cat->pages, cat->n, sizeof(*cat->pages), by_target);
    return rc;
}

static int send_json(struct mg_connection *conn, int status, const char *body) {
    char len[32];
    snprintf(len, sizeof(len), "%zu", strlen(body));
    mg_response_header_start(conn, status);
    mg_response_header_add(conn, "Content-Type", "application/json;charset=utf-8", -1);
    mg_response_header_add(conn, "OData-Version", "4.0", -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_send(conn);
    mg_write(conn, body, strlen(body));
    return status;
}

static int send_page(struct mg_connection *conn, const page_t *p, const char *host) {
    size_t hl = strlen(host), tl = strlen(HOST_TOKEN);
    char len[32];
    snprintf(len, sizeof(len), "%zu", p->len - p->nholes * tl + p->nholes * hl);
    mg_response_header_start(conn, 200);
    mg_response_header_add(conn, "Content-Type",
                           "application/json;odata.metadata=minimal;charset=utf-8", -1);
    mg_response_header_add(conn, "OData-Version", "4.0", -1);
    mg_response_header_add(conn, "Content-Length", len, -1);
    mg_response_header_send(conn);
    size_t at = 0;
    for (int i = 0; i < p->nholes; i++) {
        if (mg_write(conn, p->body + at, p->holes[i] - at) < 0 || mg_write(conn, host, hl) < 0) {
            return 200; /* the client went away */
        }
        at = p->holes[i] + tl;
    }
    mg_write(conn, p->body + at, p->len - at);
    return 200;
}

static int on_request(struct mg_connection *conn, void *ud) {
    const catalog_t *cat = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "GET")) {
        return send_json(conn, 405,
                         "{\"error\":{\"code\":\"MethodNotAllowed\",\"message\":\"read-only\"}}");
    }
    if (!strcmp(ri->local_uri, "/healthz")) {
        return send_json(conn, 200, "{\"status\":\"ok\"}");
    }
    char target[2048];
    snprintf(target, sizeof(target), "%s%s%s", ri->local_uri, ri->query_string ? "?" : "",
             ri->query_string ? ri->query_string : "");
    page_t key = {.target = target};
    const page_t *p = bsearch(&key, cat->pages, cat->n, sizeof(*cat->pages), by_target);
    if (!p) {
        char body[2400];
        for (char *c = target; *c; c++) {
            *c = *c == '"' || *c == '\\' || (unsigned char)*c < 0x20 ? '?' : *c; /* JSON-safe */
        }
        snprintf(body, sizeof(body),
                 "{\"error\":{\"code\":\"NotFound\",\"message\":\"no pre-rendered page for "
                 "%.2000s\"}}",
                 target);
        return send_json(conn, 404, body);
    }
    char fallback[64];
    const char *host = mg_get_header(conn, "Host");
    if (!host) {
        snprintf(fallback, sizeof(fallback), "127.0.0.1:%d", cat->port);
        host = fallback;
    }
    return send_page(conn, p, host);
}

int main(int argc, char **argv) {
    const char *dir = NULL, *port = "8089", *threads = "4";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pages")) {
            dir = argv[i + 1];
        } else if (!strcmp(argv[i], "--port")) {
            port = argv[i + 1];
        } else if (!strcmp(argv[i], "--threads")) {
            threads = argv[i + 1];
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: odata_pages --pages DIR [--port N] [--threads N]\n");
        return 2;
    }
    catalog_t cat = {NULL, 0, atoi(port)};
    char err[4200];
    if (load_catalog(dir, &cat, err, sizeof(err))) {
        fprintf(stderr, "odata_pages: %s\n", err);
        return 1;
    }
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%s", port);
    /* tcp_nodelay: a page goes out in several writes (headers, the pieces
     * around the Host); without it each waits for the client's ACK */
    const char *options[] = {"listening_ports",    listen,  "num_threads", threads,
                             "enable_keep_alive",  "yes",   "tcp_nodelay", "1",
                             "request_timeout_ms", "60000", NULL};
    struct mg_callbacks callbacks = {0};
    struct mg_context *ctx = mg_start(&callbacks, NULL, options);
    if (!ctx) {
        fprintf(stderr, "odata_pages: cannot listen on %s\n", listen);
        return 1;
    }
    mg_set_request_handler(ctx, "/", on_request, &cat);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    fprintf(stderr, "odata_pages: %zu pages from %s on http://%s/odata\n", cat.n, dir, listen);
    while (!stop_requested) {
        usleep(100 * 1000);
    }
    mg_stop(ctx);
    for (size_t i = 0; i < cat.n; i++) {
        if (cat.pages[i].len) {
            munmap((void *)cat.pages[i].body, cat.pages[i].len);
        }
        free(cat.pages[i].target);
    }
    free(cat.pages);
    return 0;
}
