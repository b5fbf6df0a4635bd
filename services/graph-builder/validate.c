/* Validation of a built graph: the specification's five rules are errors
 * (the graph is not published), data-quality findings are warnings, and a
 * few counts are info. Every issue keeps its count and up to five samples.
 * A rule that cannot run for want of memory fails the whole validation: an
 * unchecked graph is never taken for a valid one. */
#define _GNU_SOURCE /* qsort_r: the duplicate check sorts edge indexes by their edges */
#include "graph.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the report -------------------------------------------------------- */

/* Starts an issue in the next slot; issue_close keeps it only if it counted
 * something. */
static gb_issue_t *issue_open(gb_report_t *r, const char *severity, const char *code,
                              const char *what) {
    gb_issue_t *is = &r->issues[r->n_issues];
    memset(is, 0, sizeof(*is));
    is->severity = severity;
    is->code = code;
    is->what = what;
    return is;
}

static void issue_close(gb_report_t *r, gb_issue_t *is) {
    if (!is->count || r->n_issues >= GB_MAX_ISSUES - 1) {
        return;
    }
    if (!strcmp(is->severity, "error")) {
        r->errors += is->count;
    } else if (!strcmp(is->severity, "warning")) {
        r->warnings += is->count;
    }
    r->n_issues++;
}

static void issue_count(gb_issue_t *is, const char *fmt, ...) TG_PRINTF(2, 3);
static void issue_count(gb_issue_t *is, const char *fmt, ...) {
    is->count++;
    if (is->n_samples >= GB_MAX_SAMPLES) {
        return;
    }
    char sample[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sample, sizeof(sample), fmt, ap);
    va_end(ap);
    is->samples[is->n_samples] = strdup(sample);
    if (is->samples[is->n_samples]) {
        is->n_samples++;
    }
}

void gb_report_free(gb_report_t *r) {
    for (int i = 0; i < r->n_issues; i++) {
        for (int k = 0; k < r->issues[i].n_samples; k++) {
            free(r->issues[i].samples[k]);
        }
    }
    memset(r, 0, sizeof(*r));
}

const gb_issue_t *gb_report_find(const gb_report_t *r, const char *code) {
    for (int i = 0; i < r->n_issues; i++) {
        if (!strcmp(r->issues[i].code, code)) {
            return &r->issues[i];
        }
    }
    return NULL;
}

cJSON *gb_report_json(const gb_report_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "errors", (double)r->errors);
    cJSON_AddNumberToObject(o, "warnings", (double)r->warnings);
    cJSON *issues = cJSON_AddArrayToObject(o, "issues");
    for (int i = 0; i < r->n_issues; i++) {
        const gb_issue_t *is = &r->issues[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "severity", is->severity);
        cJSON_AddStringToObject(j, "code", is->code);
        cJSON_AddNumberToObject(j, "count", (double)is->count);
        cJSON *samples = cJSON_AddArrayToObject(j, "samples");
        for (int k = 0; k < is->n_samples; k++) {
            cJSON_AddItemToArray(samples, cJSON_CreateString(is->samples[k]));
        }
        cJSON_AddItemToArray(issues, j);
    }
    return o;
}

void gb_report_errors_text(const gb_report_t *r, char *out, size_t outlen) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < r->n_issues && o < outlen; i++) {
        const gb_issue_t *is = &r->issues[i];
        if (strcmp(is->severity, "error")) {
            continue;
        }
        int n = snprintf(out + o, outlen - o, "%s%s: %zu %s (", o ? "; " : "", is->code, is->count,
                         is->what);
        for (int k = 0; k < is->n_samples && n > 0 && o + (size_t)n < outlen; k++) {
            n += snprintf(out + o + n, outlen - o - (size_t)n, "%s%s", k ? ", " : "",
                          is->samples[k]);
        }
        if (n > 0 && o + (size_t)n < outlen) {
            n += snprintf(out + o + n, outlen - o - (size_t)n, ")");
        }
        o += n > 0 ? (size_t)n : 0;
    }
}

/* ---- per-edge rules ---------------------------------------------------- */

static const char *edge_name(const gb_graph_t *g, const gb_edge_t *e) {
    const char *route_id = gb_edge_route_id(g, e);
    return route_id ? route_id : "transfer";
}

/* Transfers are valid by construction (a positive weight between two
 * stops), so the per-edge rules read the routes only. */
static void check_edges(const gb_graph_t *g, gb_report_t *r) {
    gb_issue_t *is = issue_open(r, "error", "invalid_weight", "edges");
    for (size_t i = 0; i < g->n_routes; i++) {
        const gb_edge_t *e = &g->routes[i];
        if (isnan(e->weight)) {
            issue_count(is, "%s (%s -> %s): no duration and no flights", edge_name(g, e),
                        gb_edge_from_id(g, e), gb_edge_to_id(g, e));
        } else if (!isfinite(e->weight) || e->weight <= 0) {
            issue_count(is, "%s (%s -> %s): weight %g", edge_name(g, e), gb_edge_from_id(g, e),
                        gb_edge_to_id(g, e), e->weight);
        }
    }
    issue_close(r, is);
    is = issue_open(r, "error", "missing_stop", "edges");
    for (size_t i = 0; i < g->n_routes; i++) {
        const gb_edge_t *e = &g->routes[i];
        if (e->from < 0 || e->to < 0) {
            issue_count(is, "%s: stop %s does not exist", edge_name(g, e),
                        e->from < 0 ? gb_edge_from_id(g, e) : gb_edge_to_id(g, e));
        }
    }
    issue_close(r, is);
}

double gb_speed_limit(const char *transport) {
    static const struct {
        const char *type;
        double kmh;
    } limits[] = {
        {"BUS", 120},    {"CAR", 150},     {"TAXI", 150},   {"TRAIN", 250}, {"RAIL", 250},
        {"RIVER", 80},   {"FERRY", 80},    {"WATER", 80},   {"SHIP", 80},   {"AIR", 1000},
        {"PLANE", 1000}, {"FLIGHT", 1000}, {"TRANSFER", 0},
    };
    for (size_t i = 0; transport && i < sizeof(limits) / sizeof(limits[0]); i++) {
        if (!strcasecmp(transport, limits[i].type)) {
            return limits[i].kmh;
        }
    }
    return 1000; /* an unknown mode is at most as fast as a plane */
}

/* Transfers have no speed limit (gb_speed_limit of TRANSFER is 0). */
static void check_speeds(const gb_graph_t *g, gb_report_t *r) {
    gb_issue_t *is = issue_open(r, "warning", "implausible_speed", "edges");
    for (size_t i = 0; i < g->n_routes; i++) {
        const gb_edge_t *e = &g->routes[i];
        const char *transport = gb_edge_transport(g, e);
        double limit = gb_speed_limit(transport);
        if (limit <= 0 || !(e->weight > 0) || !isfinite(e->weight) || !(e->distance > 0)) {
            continue;
        }
        double kmh = e->distance / (e->weight / 60.0);
        if (kmh > limit) {
            issue_count(is, "%s: %s %.0f km/h (%.10g km in %.10g min, limit %.0f)", edge_name(g, e),
                        transport ? transport : "unknown", kmh, e->distance, e->weight, limit);
        }
    }
    issue_close(r, is);
}

/* ---- duplicate edges: same stops, mode and weight under two route ids --- */

/* The edges are sorted as 4-byte indexes, not copies of their keys: at 1.6
 * million edges that is 6 MB instead of 38. The transport types compare by
 * their rank in strcmp order, computed once. */
typedef struct {
    const gb_graph_t *g;
    uint16_t rank[GB_MAX_TRANSPORTS];
} dup_order_t;

static int cmp_edge_index(const void *a, const void *b, void *arg) {
    const dup_order_t *o = arg;
    uint32_t i = *(const uint32_t *)a, j = *(const uint32_t *)b;
    const gb_edge_t *x = &o->g->routes[i], *y = &o->g->routes[j];
    if (x->from != y->from) {
        return x->from < y->from ? -1 : 1;
    }
    if (x->to != y->to) {
        return x->to < y->to ? -1 : 1;
    }
    if (x->transport != y->transport) {
        return o->rank[x->transport] < o->rank[y->transport] ? -1 : 1;
    }
    if (x->weight != y->weight) {
        return x->weight < y->weight ? -1 : 1;
    }
    return (i > j) - (i < j);
}

/* rank[t] = the place of type t among all types in strcmp order; unknown
 * ("") comes first. */
static void rank_transports(const gb_graph_t *g, uint16_t *rank) {
    for (size_t t = 0; t < g->n_transports; t++) {
        const char *a = t ? g->transports[t] : "";
        rank[t] = 0;
        for (size_t u = 0; u < g->n_transports; u++) {
            const char *b = u ? g->transports[u] : "";
            rank[t] += strcmp(b, a) < 0;
        }
    }
}

static int same_key(const gb_edge_t *x, const gb_edge_t *y) {
    return x->from == y->from && x->to == y->to && x->weight == y->weight &&
           x->transport == y->transport;
}

/* A route that is a transfer already there: its type TRANSFER, its weight
 * the transfer's, between two stops of one transfer city. */
static int repeats_transfer(const gb_graph_t *g, const gb_edge_t *e) {
    int32_t city = gb_stop_city(g, (size_t)e->from);
    return e->transport == GB_TRANSFER && e->weight == g->transfer_minutes && e->from != e->to &&
           city >= 0 && city == gb_stop_city(g, (size_t)e->to);
}

/* Every edge sorted by (from, to, type, weight, edge) and each one equal to
 * the one before in all but the edge named. Transfers come after every
 * route and never repeat each other, so the routes are sorted alone and a
 * transfer is named after the last route of its key. */
static int check_duplicates(const gb_graph_t *g, gb_report_t *r) {
    uint32_t *k = malloc((g->n_routes ? g->n_routes : 1) * sizeof(*k));
    dup_order_t *order = malloc(sizeof(*order));
    if (!k || !order) {
        free(k);
        free(order);
        return TG_ERR_NOMEM;
    }
    order->g = g;
    rank_transports(g, order->rank);
    size_t n = 0;
    for (size_t i = 0; i < g->n_routes; i++) {
        const gb_edge_t *e = &g->routes[i];
        if (e->from >= 0 && e->to >= 0 && isfinite(e->weight)) {
            k[n++] = (uint32_t)i;
        }
    }
    qsort_r(k, n, sizeof(*k), cmp_edge_index, order);
    gb_issue_t *is = issue_open(r, "warning", "duplicate_edge", "edges");
    for (size_t i = 0; i < n; i++) {
        const gb_edge_t *a = i ? &g->routes[k[i - 1]] : NULL, *b = &g->routes[k[i]];
        if (a && same_key(a, b)) {
            issue_count(is, "%s repeats %s (%s -> %s, %.10g min)", edge_name(g, b), edge_name(g, a),
                        gb_edge_from_id(g, b), gb_edge_to_id(g, b), b->weight);
        }
        int last = i + 1 == n || !same_key(b, &g->routes[k[i + 1]]);
        if (last && repeats_transfer(g, b)) {
            gb_edge_t t = gb_transfer_edge(g, b->from, b->to);
            issue_count(is, "%s repeats %s (%s -> %s, %.10g min)", edge_name(g, &t),
                        edge_name(g, b), gb_edge_from_id(g, &t), gb_edge_to_id(g, &t), t.weight);
        }
    }
    issue_close(r, is);
    free(k);
    free(order);
    return TG_OK;
}

/* ---- connectivity ------------------------------------------------------ */

/* Marks in seen every stop reachable from s along the route index (start,
 * list) and the transfers; reverse follows routes backwards (transfers go
 * both ways). A transfer city is entered once: all its stops at a time.
 * Iterative: graphs have 80k stops. */
static void reach(const gb_graph_t *g, const size_t *start, const uint32_t *list, int reverse,
                  size_t s, unsigned char *seen, unsigned char *city_seen, size_t *queue) {
    size_t head = 0, tail = 0;
    seen[s] = 1;
    queue[tail++] = s;
    memset(city_seen, 0, g->n_cities ? g->n_cities : 1);
    while (head < tail) {
        size_t v = queue[head++];
        for (size_t k = start[v]; k < start[v + 1]; k++) {
            const gb_edge_t *e = &g->routes[list[k]];
            int w = reverse ? e->from : e->to;
            if (w >= 0 && !seen[w]) {
                seen[w] = 1;
                queue[tail++] = (size_t)w;
            }
        }
        int32_t c = gb_stop_city(g, v);
        if (c < 0 || city_seen[c]) {
            continue;
        }
        city_seen[c] = 1;
        for (uint32_t k = g->cities[c].start; k < g->cities[c].end; k++) {
            uint32_t w = g->city_stops[k];
            if (!seen[w]) {
                seen[w] = 1;
                queue[tail++] = w;
            }
        }
    }
}

/* The incoming-edge index, as gb_graph_index builds the outgoing one. */
static int index_incoming(const gb_graph_t *g, size_t **start, uint32_t **list) {
    *start = calloc(g->n_nodes + 2, sizeof(size_t));
    *list = malloc((g->n_routes ? g->n_routes : 1) * sizeof(uint32_t));
    if (!*start || !*list) {
        return TG_ERR_NOMEM;
    }
    for (size_t e = 0; e < g->n_routes; e++) {
        if (g->routes[e].from >= 0 && g->routes[e].to >= 0) {
            (*start)[g->routes[e].to + 2]++;
        }
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        (*start)[i + 2] += (*start)[i + 1];
    }
    for (size_t e = 0; e < g->n_routes; e++) {
        if (g->routes[e].from >= 0 && g->routes[e].to >= 0) {
            (*list)[(*start)[g->routes[e].to + 1]++] = (uint32_t)e;
        }
    }
    return TG_OK;
}

/* Rule 5 as written: every stop reaches every other along directed edges.
 * Stops without any edge were left out before (gb_graph_drop_isolated, listed
 * as isolated_stop); one that is still here fails the rule like any other.
 * The graph is strongly connected exactly when the best-connected stop
 * reaches every other stop and every other stop reaches it. */
static int check_connected(const gb_graph_t *g, const size_t *in_start, const uint32_t *in_list,
                           gb_report_t *r) {
    size_t n = g->n_nodes, hub = n, best = 0;
    unsigned char *fwd = calloc(n ? n : 1, 1), *bwd = calloc(n ? n : 1, 1);
    size_t *queue = malloc((n ? n : 1) * sizeof(size_t));
    unsigned char *city_seen = malloc(g->n_cities ? g->n_cities : 1);
    if (!fwd || !bwd || !queue || !city_seen) {
        free(fwd);
        free(bwd);
        free(queue);
        free(city_seen);
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t c = gb_stop_city(g, i);
        size_t deg = (g->out_start[i + 1] - g->out_start[i]) + (in_start[i + 1] - in_start[i]) +
                     (c >= 0 ? 2 * (size_t)(g->cities[c].end - g->cities[c].start - 1) : 0);
        if (deg > best) {
            best = deg, hub = i;
        }
    }
    if (hub < n) {
        reach(g, g->out_start, g->out_edges, 0, hub, fwd, city_seen, queue);
        reach(g, in_start, in_list, 1, hub, bwd, city_seen, queue);
        gb_issue_t *is = issue_open(r, "error", "not_strongly_connected", "stops");
        const char *h = g->nodes[hub].id;
        for (size_t i = 0; i < n; i++) {
            if (fwd[i] && bwd[i]) {
                continue;
            }
            issue_count(is, "%s: %s %s", g->nodes[i].id,
                        !fwd[i] && !bwd[i] ? "no path to or from"
                        : !fwd[i]          ? "unreachable from"
                                           : "cannot reach",
                        h);
        }
        issue_close(r, is);
    }
    free(fwd);
    free(bwd);
    free(queue);
    free(city_seen);
    return TG_OK;
}

/* ---- the whole check --------------------------------------------------- */

static void check_counts(const gb_graph_t *g, gb_report_t *r) {
    gb_issue_t *is = issue_open(r, "error", "no_nodes", "stops");
    if (g->n_nodes == 0 && g->isolated_stops) {
        issue_count(is, "every stop of the dataset is isolated (%zu left out)", g->isolated_stops);
    } else if (g->n_nodes == 0) {
        issue_count(is, "the dataset has no stops and no virtual stops");
    }
    issue_close(r, is);
    /* Transfers alone do not make a network: at least one route must. */
    is = issue_open(r, "error", "no_edges", "edges");
    if (g->n_routes == 0) {
        issue_count(is, "the dataset has no routes and no virtual routes");
    }
    issue_close(r, is);
}

/* A warning counted while building, with the first GB_MAX_SAMPLES named. */
static void note_sampled(gb_report_t *r, const char *code, const char *entity, size_t count,
                         const char *const samples[GB_MAX_SAMPLES], const char *why) {
    gb_issue_t *is = issue_open(r, "warning", code, entity);
    for (size_t i = 0; i < count; i++) {
        issue_count(is, "%s: %s", i < GB_MAX_SAMPLES ? samples[i] : "", why);
    }
    issue_close(r, is);
}

static void note_info(const gb_graph_t *g, gb_report_t *r) {
    note_sampled(r, "isolated_stop", "stops", g->isolated_stops, g->isolated_stop_samples,
                 "no route starts or ends here; left out of the graph");
    note_sampled(r, "duplicate_stop", "stops", g->duplicate_stops, g->duplicate_stop_samples,
                 "loaded twice, the first (real) stop kept");
    note_sampled(r, "transfers_skipped", "cities", g->big_cities, g->big_city_samples,
                 "too many stops for transfer edges");
    gb_issue_t *is = issue_open(r, "info", "weight_from_flights", "edges");
    for (size_t i = 0; i < g->n_routes; i++) {
        if (g->routes[i].weight_from_flights) {
            issue_count(is, "%s: median flight %.10g min", edge_name(g, &g->routes[i]),
                        g->routes[i].weight);
        }
    }
    issue_close(r, is);
    is = issue_open(r, "info", "transfer_edges", "edges");
    is->count = g->transfer_edges;
    issue_close(r, is);
}

int gb_validate(const gb_graph_t *g, gb_report_t *r) {
    memset(r, 0, sizeof(*r));
    check_counts(g, r);
    check_edges(g, r);
    size_t *in_start = NULL;
    uint32_t *in_list = NULL;
    int rc = index_incoming(g, &in_start, &in_list);
    if (rc == TG_OK) {
        rc = check_connected(g, in_start, in_list, r);
    }
    free(in_start);
    free(in_list);
    check_speeds(g, r);
    if (rc == TG_OK) {
        rc = check_duplicates(g, r);
    }
    note_info(g, r);
    return rc;
}
