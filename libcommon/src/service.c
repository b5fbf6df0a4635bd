/* The process around a service: the civetweb server answering GET /healthz,
 * /readyz and /metrics for Kubernetes and Prometheus, counting every request
 * by route and status. */
#include "tg/service.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/buf.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/time.h"

#define MAX_DEPS 8
#define MAX_ROUTES 32
#define REQUEST_TIMEOUT_MS 5000       /* default of HTTP_REQUEST_TIMEOUT_MS */
#define PROBE_THREADS 3               /* liveness, readiness and a scrape at once */
#define PROBE_REQUEST_TIMEOUT_MS 2000 /* a kubelet sends its request at once */
#define ROUTE_OTHER "other"           /* no handler: the path itself could be anything */
#define M_REQUESTS "tg_http_requests_total", "HTTP requests answered, by route and status"
#define M_REQUEST_SECONDS "tg_http_request_duration_seconds", "HTTP request duration, by route"

#ifndef TG_REVISION
#define TG_REVISION "unknown"
#endif

typedef struct {
    char name[32];
    int ok;
    int soft; /* listed, but not ok does not mean not ready */
    char detail[512];
} dep_t;

/* A handler registered through tg_service_route: its pattern names the
 * route in the request metrics (a path may hold ids: unbounded labels). */
typedef struct {
    char pattern[128];
    mg_request_handler handler;
    void *data;
} route_t;

struct tg_service_s {
    struct mg_context *http;  /* HTTP_PORT: the probes and the service's own routes */
    struct mg_context *probe; /* PROBE_PORT: the probes alone (NULL: not configured) */
    char service[64];
    char version[32];
    pthread_mutex_t lock; /* guards deps: set by the loop, read by HTTP threads */
    dep_t deps[MAX_DEPS];
    int ndeps;
    route_t routes[MAX_ROUTES];
    int nroutes;
};

/* civetweb serves a request on one thread from begin_request to
 * end_request, so the request's start and route live in that thread. */
static __thread int64_t request_started_ms;
static __thread const char *request_route;

/* ---- replies ----------------------------------------------------------- */

static void reply_raw(struct mg_connection *conn, int status, const char *content_type,
                      const char *body, size_t len, const char *extra_headers) {
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\n%s\r\n",
              status, mg_get_response_code_text(conn, status), content_type, len,
              extra_headers ? extra_headers : "");
    if (len) {
        mg_write(conn, body, len);
    }
}

void tg_http_reply_json(struct mg_connection *conn, int status, cJSON *obj,
                        const char *extra_headers) {
    char *body = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!body) {
        static const char oom[] =
            "{\"success\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
        reply_raw(conn, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    reply_raw(conn, status, "application/json", body, strlen(body), extra_headers);
    free(body);
}

cJSON *tg_http_error_body(const char *code, const char *message) {
    cJSON *obj = cJSON_CreateObject();
    cJSON *err = NULL;
    if (!obj || !cJSON_AddFalseToObject(obj, "success") ||
        !(err = cJSON_AddObjectToObject(obj, "error")) ||
        !cJSON_AddStringToObject(err, "code", code) ||
        !cJSON_AddStringToObject(err, "message", message)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

void tg_http_reply_error(struct mg_connection *conn, int status, const char *code,
                         const char *message) {
    tg_http_reply_json(conn, status, tg_http_error_body(code, message), NULL);
}

/* ---- handlers ---------------------------------------------------------- */

/* Only GET on exactly this path (civetweb also routes "/path/..." here).
 * Returns 0, or the status of the error reply it sent. */
static int reject_request(struct mg_connection *conn, const char *path) {
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->local_uri, path) != 0) {
        tg_http_reply_error(conn, 404, "not_found", "no such resource");
        return 404;
    }
    if (strcmp(ri->request_method, "GET") != 0) {
        tg_http_reply_json(conn, 405,
                           tg_http_error_body("method_not_allowed", "only GET is allowed here"),
                           "Allow: GET\r\n");
        return 405;
    }
    return 0;
}

static int on_healthz(struct mg_connection *conn, void *data) {
    tg_service_t *svc = data;
    int rejected = reject_request(conn, "/healthz");
    if (rejected) {
        return rejected;
    }
    cJSON *obj = cJSON_CreateObject();
    cJSON_AddStringToObject(obj, "status", "ok");
    cJSON_AddStringToObject(obj, "service", svc->service);
    cJSON_AddStringToObject(obj, "version", svc->version);
    tg_http_reply_json(conn, 200, obj, NULL);
    return 200;
}

static int on_readyz(struct mg_connection *conn, void *data) {
    tg_service_t *svc = data;
    int rejected = reject_request(conn, "/readyz");
    if (rejected) {
        return rejected;
    }
    cJSON *obj = cJSON_CreateObject();
    cJSON *deps = cJSON_CreateObject();
    int ready = 1;
    pthread_mutex_lock(&svc->lock);
    for (int i = 0; i < svc->ndeps; i++) {
        const dep_t *d = &svc->deps[i];
        ready = ready && (d->ok || d->soft);
        cJSON_AddStringToObject(deps, d->name, d->ok ? "ok" : d->detail);
    }
    pthread_mutex_unlock(&svc->lock);
    cJSON_AddStringToObject(obj, "status", ready ? "ready" : "not_ready");
    cJSON_AddStringToObject(obj, "service", svc->service);
    cJSON_AddItemToObject(obj, "dependencies", deps);
    tg_http_reply_json(conn, ready ? 200 : 503, obj, NULL);
    return ready ? 200 : 503;
}

static int on_metrics(struct mg_connection *conn, void *data) {
    int rejected = reject_request(conn, "/metrics");
    if (rejected) {
        return rejected;
    }
    tg_buf_t b;
    tg_buf_init(&b);
    if (tg_metrics_render(&b) != TG_OK) {
        tg_buf_free(&b);
        tg_http_reply_error(conn, 500, "internal", "out of memory");
        return 500;
    }
    reply_raw(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.data ? b.data : "", b.len,
              NULL);
    tg_buf_free(&b);
    return 200;
}

/* ---- request metrics --------------------------------------------------- */

static int on_begin_request(struct mg_connection *conn) {
    request_started_ms = tg_mono_ms();
    request_route = NULL;
    return 0; /* civetweb goes on to the handler */
}

static void on_end_request(const struct mg_connection *conn, int status) {
    char labels[192];
    const char *route = request_route ? request_route : ROUTE_OTHER;
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, status);
    tg_metric_add(M_REQUESTS, labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    tg_metric_observe(M_REQUEST_SECONDS, labels,
                      (double)(tg_mono_ms() - request_started_ms) / 1000.0);
    request_route = NULL;
}

static int route_call(struct mg_connection *conn, void *data) {
    const route_t *r = data;
    request_route = r->pattern;
    return r->handler(conn, r->data);
}

int tg_service_route(tg_service_t *svc, const char *pattern, mg_request_handler handler,
                     void *data) {
    if (!svc || !svc->http || svc->nroutes == MAX_ROUTES ||
        strlen(pattern) >= sizeof svc->routes[0].pattern) {
        return TG_ERR_INVALID;
    }
    route_t *r = &svc->routes[svc->nroutes++];
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
    r->handler = handler;
    r->data = data;
    mg_set_request_handler(svc->http, pattern, route_call, r);
    return TG_OK;
}

/* civetweb's own messages (e.g. bind failures) go to our log at debug: the
 * caller reports the failure in one line. */
static int on_civetweb_log(const struct mg_connection *conn, const char *message) {
    tg_debug("civetweb: %s", message);
    return 1;
}

/* ---- lifecycle --------------------------------------------------------- */

static pthread_once_t civetweb_once = PTHREAD_ONCE_INIT;
static void civetweb_init(void) {
    mg_init_library(0);
}

/* The knobs of one civetweb server. */
typedef struct {
    const char *setting; /* the variable naming the port, for errors */
    int port;
    long threads;
    long request_timeout_ms;
    int keep_alive;
} listener_t;

static struct mg_context *listener_start(const listener_t *l, char *errstr, size_t errlen) {
    char port[16], threads[16], timeout[24];
    snprintf(port, sizeof port, "%d", l->port); /* all interfaces: probes come from outside */
    snprintf(threads, sizeof threads, "%ld", l->threads);
    snprintf(timeout, sizeof timeout, "%ld", l->request_timeout_ms);
    /* civetweb 1.15 gives a request request_timeout_ms from its first byte
     * to the end of its headers, however slowly they trickle in, and each
     * wait for the body or for the client to take the reply as long. */
    const char *options[] = {"listening_ports", port, "num_threads", threads, "request_timeout_ms",
                             timeout, "enable_keep_alive", l->keep_alive ? "yes" : "no",
                             /* headers and body are two writes: without this,
                              * Nagle and delayed ACKs add 40 ms on keep-alive */
                             "tcp_nodelay", "1", NULL};
    struct mg_callbacks callbacks;
    memset(&callbacks, 0, sizeof callbacks);
    callbacks.log_message = on_civetweb_log;
    callbacks.begin_request = on_begin_request;
    callbacks.end_request = on_end_request;
    pthread_once(&civetweb_once, civetweb_init);
    struct mg_context *ctx = mg_start(&callbacks, NULL, options);
    if (!ctx) {
        tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: cannot listen on %d", l->setting, l->port);
    }
    return ctx;
}

/* The API's server on HTTP_PORT. HTTP_THREADS / HTTP_KEEP_ALIVE: a civetweb
 * thread serves one connection at a time, so an API under many concurrent
 * keep-alive clients needs about as many threads. */
static int http_start(tg_service_t *svc, int port, char *errstr, size_t errlen) {
    long n = strtol(tg_env_str("HTTP_THREADS", "8"), NULL, 10);
    const char *keep_alive = tg_env_str("HTTP_KEEP_ALIVE", "no");
    listener_t l = {"HTTP_PORT", port,
                    n < 1      ? 8
                    : n > 1024 ? 1024
                               : n,
                    0, !strcmp(keep_alive, "yes") || !strcmp(keep_alive, "true")};
    int rc = tg_env_long("HTTP_REQUEST_TIMEOUT_MS", REQUEST_TIMEOUT_MS, 100, 600000,
                         &l.request_timeout_ms, errstr, errlen);
    if (rc != TG_OK || !(svc->http = listener_start(&l, errstr, errlen))) {
        return rc != TG_OK ? rc : TG_ERR_CONFIG;
    }
    for (int i = 0; i < svc->nroutes; i++) {
        mg_set_request_handler(svc->http, svc->routes[i].pattern, route_call, &svc->routes[i]);
    }
    return TG_OK;
}

/* The probes' server on PROBE_PORT: a few threads of its own that no API
 * client can hold, so a busy or attacked API never fails a liveness probe.
 * Only the kubelet and Prometheus call it; a tight timeout frees a thread
 * from anything slower. */
static int probe_start(tg_service_t *svc, int port, char *errstr, size_t errlen) {
    listener_t l = {"PROBE_PORT", port, PROBE_THREADS, PROBE_REQUEST_TIMEOUT_MS, 0};
    if (!(svc->probe = listener_start(&l, errstr, errlen))) {
        return TG_ERR_CONFIG;
    }
    for (int i = 0; i < svc->nroutes; i++) { /* only the probes are registered yet */
        mg_set_request_handler(svc->probe, svc->routes[i].pattern, route_call, &svc->routes[i]);
    }
    return TG_OK;
}

/* The probes' routes, served on both ports: HTTP_PORT keeps answering
 * them for whoever calls them there. */
static void probe_routes(tg_service_t *svc) {
    static const struct {
        const char *pattern;
        mg_request_handler handler;
    } probes[] = {{"/healthz", on_healthz}, {"/readyz", on_readyz}, {"/metrics", on_metrics}};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        route_t *r = &svc->routes[svc->nroutes++];
        snprintf(r->pattern, sizeof r->pattern, "%s", probes[i].pattern);
        r->handler = probes[i].handler;
        r->data = svc;
    }
}

static void service_free(tg_service_t *svc) {
    if (svc->probe) {
        mg_stop(svc->probe);
    }
    if (svc->http) {
        mg_stop(svc->http);
    }
    pthread_mutex_destroy(&svc->lock);
    free(svc);
}

tg_service_t *tg_service_start(const tg_config_t *cfg, const char *version, char *errstr,
                               size_t errlen) {
    tg_service_t *svc = calloc(1, sizeof *svc);
    if (!svc) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "service: out of memory");
        return NULL;
    }
    pthread_mutex_init(&svc->lock, NULL);
    snprintf(svc->service, sizeof svc->service, "%s", cfg->service ? cfg->service : "");
    snprintf(svc->version, sizeof svc->version, "%s", version ? version : "");
    char labels[192];
    snprintf(labels, sizeof labels, "service=\"%s\",version=\"%s\",revision=\"%s\"", svc->service,
             svc->version, TG_REVISION);
    tg_metric_set("tg_build_info", "The running build: its version and source revision", labels, 1);
    probe_routes(svc);
    if ((cfg->probe_port > 0 && probe_start(svc, cfg->probe_port, errstr, errlen) != TG_OK) ||
        (cfg->http_port > 0 && http_start(svc, cfg->http_port, errstr, errlen) != TG_OK)) {
        service_free(svc);
        return NULL;
    }
    return svc;
}

static void set_dep(tg_service_t *svc, const char *name, int ok, int soft, const char *detail) {
    if (!svc) {
        return;
    }
    pthread_mutex_lock(&svc->lock);
    dep_t *d = NULL;
    for (int i = 0; i < svc->ndeps && !d; i++) {
        if (strcmp(svc->deps[i].name, name) == 0) {
            d = &svc->deps[i];
        }
    }
    if (!d && svc->ndeps < MAX_DEPS) {
        d = &svc->deps[svc->ndeps++];
        snprintf(d->name, sizeof d->name, "%s", name);
    }
    if (d) {
        d->ok = ok;
        d->soft = soft;
        snprintf(d->detail, sizeof d->detail, "%s", detail ? detail : (ok ? "ok" : "down"));
    }
    pthread_mutex_unlock(&svc->lock);
}

void tg_service_set_dep(tg_service_t *svc, const char *name, int ok, const char *detail) {
    set_dep(svc, name, ok, 0, detail);
}

void tg_service_set_dep_soft(tg_service_t *svc, const char *name, int ok, const char *detail) {
    set_dep(svc, name, ok, 1, detail);
}

struct mg_context *tg_service_http(tg_service_t *svc) {
    return svc ? svc->http : NULL;
}

void tg_service_stop(tg_service_t *svc) {
    if (svc) {
        service_free(svc);
    }
}
