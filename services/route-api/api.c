/* The REST API: one handler per resource, each answering from one snapshot
 * of the graph taken at its start, so a hot swap never mixes two versions
 * in one answer. Every answer names its version (field and header). */
#include "api.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openapi_json.h"
#include "route_api.h"
#include "tg/envelope.h"
#include "tg/metrics.h"
#include "tg/service.h"
#include "tg/time.h"

#define STOPS_DEFAULT 20
#define STOPS_MAX 100
#define ROUTES_DEFAULT 3
#define ROUTES_MAX 10

/* ---- replies ---- */

static int reply(struct mg_connection *conn, const rg_graph_t *g, int status, cJSON *body) {
    char headers[128] = "";
    if (g) {
        snprintf(headers, sizeof headers, "X-Graph-Version: %s\r\n", g->version);
        cJSON_AddStringToObject(body, "graphVersion", g->version);
    }
    tg_http_reply_json(conn, status, body, headers);
    return status;
}

/* The orchestrator's error form, plus the version the answer was made on. */
static int reply_error(struct mg_connection *conn, const rg_graph_t *g, int status,
                       const char *code, const char *fmt, ...) TG_PRINTF(5, 6);
static int reply_error(struct mg_connection *conn, const rg_graph_t *g, int status,
                       const char *code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return reply(conn, g, status, tg_http_error_body(code, msg));
}

static cJSON *ok_body(void) {
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "success");
    return body;
}

/* ---- parameters ---- */

/* A query parameter into buf: 1 when present, 0 when absent, -1 when too long. */
static int param(const struct mg_request_info *ri, const char *name, char *buf, size_t len) {
    if (!ri->query_string) {
        return 0;
    }
    int n = mg_get_var(ri->query_string, strlen(ri->query_string), name, buf, len);
    return n >= 0 ? 1 : n == -1 ? 0 : -1;
}

/* An integer parameter within [min, max], def when absent; -1 when bad. */
static int int_param(const struct mg_request_info *ri, const char *name, long def, long min,
                     long max, long *out) {
    char buf[32];
    int p = param(ri, name, buf, sizeof buf);
    *out = def;
    if (p == 0) {
        return 0;
    }
    char *end;
    long v = p > 0 && buf[0] ? strtol(buf, &end, 10) : 0;
    if (p < 0 || !buf[0] || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

/* ---- JSON of the model ---- */

static cJSON *stop_json(const rg_graph_t *g, uint32_t i) {
    const rg_node_t *n = &g->nodes[i];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "stopId", rg_str(g, n->id));
    cJSON_AddStringToObject(o, "stopName", rg_str(g, n->name));
    cJSON_AddStringToObject(o, "cityName", rg_str(g, n->city));
    if (!isnan(n->lat) && !isnan(n->lon)) {
        cJSON_AddNumberToObject(o, "latitude", n->lat);
        cJSON_AddNumberToObject(o, "longitude", n->lon);
    }
    return o;
}

static cJSON *leg_json(const rg_graph_t *g, uint32_t e_idx) {
    const rg_edge_t *e = &g->edges[e_idx];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "from", rg_str(g, g->nodes[e->from].id));
    cJSON_AddStringToObject(o, "to", rg_str(g, g->nodes[e->to].id));
    cJSON_AddStringToObject(o, "fromName", rg_str(g, g->nodes[e->from].name));
    cJSON_AddStringToObject(o, "toName", rg_str(g, g->nodes[e->to].name));
    cJSON_AddNumberToObject(o, "minutes", e->minutes);
    cJSON_AddNumberToObject(o, "km", e->km);
    cJSON_AddStringToObject(o, "transportType", rg_str(g, e->transport));
    if (g->arena[e->route]) {
        cJSON_AddStringToObject(o, "routeId", rg_str(g, e->route));
    } else {
        cJSON_AddNullToObject(o, "routeId");
    }
    return o;
}

/* ---- handlers ---- */

typedef int (*resource_fn)(struct mg_connection *conn, const struct mg_request_info *ri,
                           const rg_graph_t *g);

static int graph_get(struct mg_connection *conn, const struct mg_request_info *ri,
                     const rg_graph_t *g) {
    if (strcmp(ri->local_uri, "/api/v1/graph") != 0) {
        return reply_error(conn, g, 404, "not_found", "no such resource: %s", ri->local_uri);
    }
    char at[32];
    tg_time_iso(g->loaded_at_ms, at);
    cJSON *body = ok_body();
    cJSON_AddStringToObject(body, "version", g->version);
    cJSON_AddNumberToObject(body, "nodes", (double)g->nnodes);
    cJSON_AddNumberToObject(body, "edges", (double)g->nedges);
    cJSON_AddStringToObject(body, "loadedAt", at);
    cJSON_AddNumberToObject(body, "loadMs", g->load_ms);
    return reply(conn, g, 200, body);
}

static int stops_search(struct mg_connection *conn, const struct mg_request_info *ri,
                        const rg_graph_t *g) {
    char query[256] = "", city[256] = "";
    long limit;
    if (param(ri, "query", query, sizeof query) < 0 || param(ri, "city", city, sizeof city) < 0) {
        return reply_error(conn, g, 400, "bad_request", "query and city: at most 255 bytes");
    }
    if (int_param(ri, "limit", STOPS_DEFAULT, 1, STOPS_MAX, &limit) < 0) {
        return reply_error(conn, g, 400, "bad_request", "limit: an integer from 1 to %d",
                           STOPS_MAX);
    }
    char *qf = rg_fold(query), *cf = rg_fold(city);
    uint32_t found[STOPS_MAX];
    size_t n = qf && cf ? rg_search(g, qf, cf, found, (size_t)limit) : 0;
    int bad = !qf || !cf;
    free(qf);
    free(cf);
    if (bad) {
        return reply_error(conn, g, 400, "bad_request", "query and city must be UTF-8");
    }
    cJSON *body = ok_body();
    cJSON_AddNumberToObject(body, "count", (double)n);
    cJSON *stops = cJSON_AddArrayToObject(body, "stops");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(stops, stop_json(g, found[i]));
    }
    return reply(conn, g, 200, body);
}

static int stop_get(struct mg_connection *conn, const rg_graph_t *g, const char *id) {
    uint32_t i = rg_find(g, id);
    if (i == RG_NONE) {
        return reply_error(conn, g, 404, "not_found", "stop %s: not in graph %s", id, g->version);
    }
    cJSON *body = ok_body();
    cJSON_AddItemToObject(body, "stop", stop_json(g, i));
    cJSON *nb = cJSON_AddArrayToObject(body, "neighbors");
    for (uint32_t e = g->first[i]; e < g->first[i + 1]; e++) {
        cJSON_AddItemToArray(nb, leg_json(g, e));
    }
    return reply(conn, g, 200, body);
}

static int stops_get(struct mg_connection *conn, const struct mg_request_info *ri,
                     const rg_graph_t *g) {
    static const char prefix[] = "/api/v1/stops";
    const char *rest = ri->local_uri + sizeof prefix - 1;
    if (!*rest) {
        return stops_search(conn, ri, g);
    }
    if (*rest != '/' || !rest[1] || strchr(rest + 1, '/')) {
        return reply_error(conn, g, 404, "not_found", "no such resource: %s", ri->local_uri);
    }
    return stop_get(conn, g, rest + 1);
}

/* The stops one end of a route stands for: a stop id (`from`) or every stop
 * of a city (`fromCity`). Returns how many, or -status after replying. */
static long route_end(struct mg_connection *conn, const struct mg_request_info *ri,
                      const rg_graph_t *g, const char *stop_name, const char *city_name,
                      uint32_t *out) {
    char stop[256], city[256];
    int ps = param(ri, stop_name, stop, sizeof stop), pc = param(ri, city_name, city, sizeof city);
    if (ps < 0 || pc < 0 || (ps > 0) == (pc > 0) || (ps > 0 && !stop[0]) || (pc > 0 && !city[0])) {
        return -reply_error(conn, g, 400, "bad_request", "give exactly one of %s and %s", stop_name,
                            city_name);
    }
    if (ps > 0) {
        out[0] = rg_find(g, stop);
        if (out[0] == RG_NONE) {
            return -reply_error(conn, g, 404, "not_found", "stop %s: not in graph %s", stop,
                                g->version);
        }
        return 1;
    }
    char *cf = rg_fold(city);
    size_t n = cf ? rg_city_nodes(g, cf, out, g->nnodes) : 0;
    free(cf);
    if (!n) {
        return -reply_error(conn, g, 404, "not_found", "city %s: no stops in graph %s", city,
                            g->version);
    }
    return (long)n;
}

static cJSON *route_json(const rg_graph_t *g, const rg_path_t *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON *legs = cJSON_AddArrayToObject(o, "legs");
    for (size_t i = 0; i < p->nedges; i++) {
        cJSON_AddItemToArray(legs, leg_json(g, p->edges[i]));
    }
    cJSON_AddNumberToObject(o, "totalMinutes", p->minutes);
    cJSON_AddNumberToObject(o, "totalKm", p->km);
    cJSON_AddNumberToObject(o, "transfers", p->transfers);
    return o;
}

static int routes_answer(struct mg_connection *conn, const struct mg_request_info *ri,
                         const rg_graph_t *g, const uint32_t *src, long nsrc, const uint32_t *dst,
                         long ndst) {
    long limit, max_transfers;
    if (int_param(ri, "limit", ROUTES_DEFAULT, 1, ROUTES_MAX, &limit) < 0) {
        return reply_error(conn, g, 400, "bad_request", "limit: an integer from 1 to %d",
                           ROUTES_MAX);
    }
    if (int_param(ri, "maxTransfers", -1, 0, 100, &max_transfers) < 0) {
        return reply_error(conn, g, 400, "bad_request", "maxTransfers: an integer from 0 to 100");
    }
    for (long i = 0; i < nsrc; i++) {
        for (long j = 0; j < ndst; j++) {
            if (src[i] == dst[j]) {
                return reply_error(conn, g, 400, "bad_request",
                                   "from and to share stop %s: nothing to route",
                                   rg_str(g, g->nodes[src[i]].id));
            }
        }
    }
    rg_path_t *paths;
    char err[256];
    int n = rg_routes(g, src, (size_t)nsrc, dst, (size_t)ndst, (int)limit, (int)max_transfers,
                      &paths, err, sizeof err);
    if (n < 0) {
        return reply_error(conn, g, 500, "internal", "%s", err);
    }
    if (n == 0) {
        return reply_error(conn, g, 404, "no_path", "no path in graph %s%s", g->version,
                           max_transfers >= 0 ? " within maxTransfers" : "");
    }
    cJSON *body = ok_body();
    cJSON *routes = cJSON_AddArrayToObject(body, "routes");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(routes, route_json(g, &paths[i]));
    }
    rg_paths_free(paths, n);
    return reply(conn, g, 200, body);
}

static int routes_get(struct mg_connection *conn, const struct mg_request_info *ri,
                      const rg_graph_t *g) {
    if (strcmp(ri->local_uri, "/api/v1/routes") != 0) {
        return reply_error(conn, g, 404, "not_found", "no such resource: %s", ri->local_uri);
    }
    uint32_t *src = malloc(g->nnodes * sizeof *src), *dst = malloc(g->nnodes * sizeof *dst);
    int status;
    long nsrc = 0, ndst = 0;
    if (!src || !dst) {
        status = reply_error(conn, g, 500, "internal", "out of memory");
    } else if ((nsrc = route_end(conn, ri, g, "from", "fromCity", src)) < 0) {
        status = (int)-nsrc;
    } else if ((ndst = route_end(conn, ri, g, "to", "toCity", dst)) < 0) {
        status = (int)-ndst;
    } else {
        status = routes_answer(conn, ri, g, src, nsrc, dst, ndst);
    }
    free(src);
    free(dst);
    return status;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* GET only; a snapshot for the whole answer; requests counted and timed. */
static int serve(struct mg_connection *conn, resource_fn fn, const char *route) {
    int64_t t0 = mono_us();
    const struct mg_request_info *ri = mg_get_request_info(conn);
    rg_graph_t *g = rg_acquire();
    int status;
    if (strcmp(ri->request_method, "GET") != 0) {
        tg_http_reply_json(conn, 405,
                           tg_http_error_body("method_not_allowed", "only GET is allowed here"),
                           "Allow: GET\r\n");
        status = 405;
    } else if (!g) {
        status = reply_error(conn, NULL, 503, "unavailable", "no graph loaded yet");
    } else {
        status = fn(conn, ri, g);
    }
    rg_release(g);
    char labels[96];
    snprintf(labels, sizeof labels, "route=\"%s\",status=\"%d\"", route, status);
    tg_metric_add("route_api_requests_total", "HTTP requests by route and status", labels, 1);
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    tg_metric_observe("route_api_request_seconds", "Time to answer a request", labels,
                      (double)(mono_us() - t0) / 1e6);
    return status;
}

static int on_graph(struct mg_connection *conn, void *data) {
    return serve(conn, graph_get, "/api/v1/graph");
}

static int on_stops(struct mg_connection *conn, void *data) {
    const char *uri = mg_get_request_info(conn)->local_uri;
    return serve(conn, stops_get, strlen(uri) > 14 ? "/api/v1/stops/{id}" : "/api/v1/stops");
}

static int on_routes(struct mg_connection *conn, void *data) {
    return serve(conn, routes_get, "/api/v1/routes");
}

static int on_openapi(struct mg_connection *conn, void *data) {
    size_t len = sizeof openapi_json - 1;
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
              "Cache-Control: no-store\r\n\r\n",
              len);
    mg_write(conn, openapi_json, len);
    return 200;
}

void api_register(struct mg_context *http) {
    mg_set_request_handler(http, "/api/v1/graph", on_graph, NULL);
    mg_set_request_handler(http, "/api/v1/stops", on_stops, NULL);
    mg_set_request_handler(http, "/api/v1/routes", on_routes, NULL);
    mg_set_request_handler(http, "/api/v1/openapi.json", on_openapi, NULL);
}
