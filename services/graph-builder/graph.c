/* The in-memory graph: stops in an array with an id hash index, route edges
 * in a compact array (node indexes, interned transport types, route ids in
 * one buffer) with a per-stop outgoing index (CSR), transfers derived from
 * the cities' stops, and the JSON of the Redis format written into a tg_buf. */
#include "graph.h"
#include "tg/geo.h"
#include "tg/text.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings: one arena per graph, freed at once ------------------------ */

#define ARENA_CHUNK (64 * 1024)

struct gb_arena_s {
    struct gb_arena_s *next;
    size_t used, cap;
    char data[];
};

static const char *arena_strdup(gb_graph_t *g, const char *s) {
    size_t len = strlen(s) + 1;
    gb_arena_t *a = g->arena;
    if (!a || a->cap - a->used < len) {
        size_t cap = len > ARENA_CHUNK ? len : ARENA_CHUNK;
        gb_arena_t *n = malloc(sizeof(*n) + cap);
        if (!n) {
            return NULL;
        }
        n->next = a;
        n->used = 0;
        n->cap = cap;
        g->arena = a = n;
    }
    char *out = a->data + a->used;
    memcpy(out, s, len);
    a->used += len;
    return out;
}

gb_graph_t *gb_graph_new(void) {
    gb_graph_t *g = calloc(1, sizeof(gb_graph_t));
    if (g) {
        tg_buf_init(&g->route_ids);
        g->transports[GB_TRANSFER] = "TRANSFER";
        g->n_transports = 2; /* [0]: unknown */
    }
    return g;
}

void gb_graph_free(gb_graph_t *g) {
    if (!g) {
        return;
    }
    while (g->arena) {
        gb_arena_t *next = g->arena->next;
        free(g->arena);
        g->arena = next;
    }
    free(g->nodes);
    free(g->routes);
    tg_buf_free(&g->route_ids);
    free(g->missing_ids);
    free(g->cities);
    free(g->city_stops);
    free(g->city_of);
    free(g->slots);
    free(g->out_start);
    free(g->out_edges);
    free(g);
}

/* ---- stop id index: open addressing, FNV-1a ---------------------------- */

static size_t hash_str(const char *s) {
    size_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

static size_t slot_of(const gb_graph_t *g, const char *id) {
    size_t mask = g->n_slots - 1, i = hash_str(id) & mask;
    while (g->slots[i] >= 0 && strcmp(g->nodes[g->slots[i]].id, id) != 0) {
        i = (i + 1) & mask;
    }
    return i;
}

/* Keeps the table at most half full so probes stay short. */
static int slots_grow(gb_graph_t *g) {
    if (g->n_slots && (g->n_nodes + 1) * 2 <= g->n_slots) {
        return TG_OK;
    }
    size_t n = g->n_slots ? g->n_slots * 2 : 1024;
    int *slots = malloc(n * sizeof(*slots));
    if (!slots) {
        return TG_ERR_NOMEM;
    }
    memset(slots, 0xff, n * sizeof(*slots));
    free(g->slots);
    g->slots = slots;
    g->n_slots = n;
    for (size_t i = 0; i < g->n_nodes; i++) {
        g->slots[slot_of(g, g->nodes[i].id)] = (int)i;
    }
    return TG_OK;
}

int gb_find_node(const gb_graph_t *g, const char *id) {
    if (!g->n_slots || !id) {
        return -1;
    }
    return g->slots[slot_of(g, id)];
}

static int grow(void **arr, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) {
        return TG_OK;
    }
    size_t n = *cap ? *cap * 2 : 256;
    while (n < need) {
        n *= 2;
    }
    void *p = realloc(*arr, n * size);
    if (!p) {
        return TG_ERR_NOMEM;
    }
    *arr = p;
    *cap = n;
    return TG_OK;
}

int gb_add_node(gb_graph_t *g, const char *id, const char *name, const char *city, double lat,
                double lon) {
    if (gb_find_node(g, id) >= 0) {
        if (g->duplicate_stops < GB_MAX_SAMPLES) {
            g->duplicate_stop_samples[g->duplicate_stops] = arena_strdup(g, id);
        }
        g->duplicate_stops++;
        return TG_OK;
    }
    if (slots_grow(g) ||
        grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(gb_node_t))) {
        return TG_ERR_NOMEM;
    }
    gb_node_t *n = &g->nodes[g->n_nodes];
    n->id = arena_strdup(g, id);
    n->name = arena_strdup(g, name ? name : id);
    n->city = city && *city ? arena_strdup(g, city) : NULL;
    n->lat = lat;
    n->lon = lon;
    if (!n->id || !n->name || (city && *city && !n->city)) {
        return TG_ERR_NOMEM;
    }
    g->slots[slot_of(g, id)] = (int)g->n_nodes++;
    return TG_OK;
}

/* An edge end: the node's index, or -1 - k for the k-th id that is no stop
 * (kept for validation to name). */
static int end_of(gb_graph_t *g, const char *id, int32_t *end) {
    int i = gb_find_node(g, id);
    if (i >= 0) {
        *end = i;
        return TG_OK;
    }
    if (g->n_missing >= INT32_MAX ||
        grow((void **)&g->missing_ids, &g->cap_missing, g->n_missing + 1, sizeof(char *))) {
        return TG_ERR_NOMEM;
    }
    if (!(g->missing_ids[g->n_missing] = arena_strdup(g, id))) {
        return TG_ERR_NOMEM;
    }
    *end = -1 - (int32_t)g->n_missing++;
    return TG_OK;
}

/* The index of transport type t, added on first sight; 0 for none. A
 * dataset has a handful of types, so a scan is quicker than a hash. */
static int transport_of(gb_graph_t *g, const char *t, uint16_t *out) {
    *out = 0;
    if (!t || !*t) {
        return TG_OK;
    }
    for (size_t i = 1; i < g->n_transports; i++) {
        if (!strcmp(g->transports[i], t)) {
            *out = (uint16_t)i;
            return TG_OK;
        }
    }
    if (g->n_transports >= GB_MAX_TRANSPORTS) {
        return TG_ERR_INVALID;
    }
    if (!(g->transports[g->n_transports] = arena_strdup(g, t))) {
        return TG_ERR_NOMEM;
    }
    *out = (uint16_t)g->n_transports++;
    return TG_OK;
}

/* Appends a route id to route_ids; *out is its offset. */
static int route_of(gb_graph_t *g, const char *route_id, uint32_t *out) {
    *out = GB_NO_ROUTE;
    if (!route_id) {
        return TG_OK;
    }
    size_t at = g->route_ids.len, len = strlen(route_id) + 1;
    if (at + len >= GB_NO_ROUTE || tg_buf_append(&g->route_ids, route_id, len)) {
        return TG_ERR_NOMEM;
    }
    *out = (uint32_t)at;
    return TG_OK;
}

int gb_add_edge(gb_graph_t *g, const char *from_id, const char *to_id, double weight,
                double distance, const char *transport, const char *route_id,
                int weight_from_flights) {
    if (g->n_routes >= UINT32_MAX ||
        grow((void **)&g->routes, &g->cap_routes, g->n_routes + 1, sizeof(gb_edge_t))) {
        return TG_ERR_NOMEM;
    }
    gb_edge_t *e = &g->routes[g->n_routes];
    memset(e, 0, sizeof(*e));
    e->weight = weight;
    e->distance = distance;
    e->weight_from_flights = weight_from_flights != 0;
    int rc = end_of(g, from_id, &e->from);
    if (rc == TG_OK) {
        rc = end_of(g, to_id, &e->to);
    }
    if (rc == TG_OK) {
        rc = transport_of(g, transport, &e->transport);
    }
    if (rc == TG_OK) {
        rc = route_of(g, route_id, &e->route);
    }
    if (rc == TG_OK) {
        g->n_routes++;
    }
    return rc;
}

const char *gb_edge_from_id(const gb_graph_t *g, const gb_edge_t *e) {
    return e->from >= 0 ? g->nodes[e->from].id : g->missing_ids[-1 - e->from];
}

const char *gb_edge_to_id(const gb_graph_t *g, const gb_edge_t *e) {
    return e->to >= 0 ? g->nodes[e->to].id : g->missing_ids[-1 - e->to];
}

const char *gb_edge_transport(const gb_graph_t *g, const gb_edge_t *e) {
    return g->transports[e->transport];
}

const char *gb_edge_route_id(const gb_graph_t *g, const gb_edge_t *e) {
    return e->route == GB_NO_ROUTE ? NULL : g->route_ids.data + e->route;
}

/* ---- transfers between the stops of one city --------------------------- */

/* The city rule is tg_city_key (tg/text.h), shared with
 * virtual-entities-generator so that both agree on what one city is. */

typedef struct {
    const char *key; /* the city's key in the keys block: never cut short */
    size_t node;
} city_stop_t;

static int cmp_city_stop(const void *a, const void *b) {
    const city_stop_t *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->node > y->node) - (x->node < y->node);
}

/* Records the stops cs[from .. to) as one transfer city. */
static void transfer_city(gb_graph_t *g, const city_stop_t *cs, size_t from, size_t to,
                          size_t *n_stops) {
    gb_city_t *c = &g->cities[g->n_cities];
    c->start = (uint32_t)*n_stops;
    for (size_t i = from; i < to; i++) {
        g->city_stops[(*n_stops)++] = (uint32_t)cs[i].node;
        g->city_of[cs[i].node] = (int32_t)g->n_cities;
    }
    c->end = (uint32_t)*n_stops;
    g->n_cities++;
    g->transfer_edges += (to - from) * (to - from - 1);
}

int gb_add_transfers(gb_graph_t *g, double minutes, size_t max_stops) {
    if (minutes <= 0 || g->n_nodes < 2 || g->city_of) { /* off, nothing to join, or done */
        return TG_OK;
    }
    /* A key is never longer than its name (+3 keeps room for "" of NULL). */
    size_t total = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        total += (g->nodes[i].city ? strlen(g->nodes[i].city) : 0) + 3;
    }
    city_stop_t *cs = malloc(g->n_nodes * sizeof(*cs));
    char *keys = malloc(total);
    /* At most every stop in a city, at most n / 2 cities of two or more. */
    g->city_stops = malloc(g->n_nodes * sizeof(uint32_t));
    g->cities = malloc((g->n_nodes / 2 + 1) * sizeof(gb_city_t));
    g->city_of = malloc(g->n_nodes * sizeof(int32_t));
    if (!cs || !keys || !g->city_stops || !g->cities || !g->city_of) {
        free(cs);
        free(keys);
        free(g->city_stops);
        free(g->cities);
        free(g->city_of);
        g->city_stops = NULL, g->cities = NULL, g->city_of = NULL;
        return TG_ERR_NOMEM;
    }
    memset(g->city_of, 0xff, g->n_nodes * sizeof(int32_t));
    g->transfer_minutes = minutes;
    size_t n = 0;
    char *at = keys;
    for (size_t i = 0; i < g->n_nodes; i++) {
        size_t room = (g->nodes[i].city ? strlen(g->nodes[i].city) : 0) + 3;
        if (tg_city_key(g->nodes[i].city, at, room) == TG_OK) {
            cs[n].key = at;
            cs[n++].node = i;
        }
        at += room;
    }
    qsort(cs, n, sizeof(*cs), cmp_city_stop);
    size_t n_stops = 0;
    for (size_t start = 0, end; start < n; start = end) {
        for (end = start + 1; end < n && !strcmp(cs[end].key, cs[start].key); end++)
            ;
        if (end - start > max_stops) {
            if (g->big_cities < GB_MAX_SAMPLES) {
                g->big_city_samples[g->big_cities] = g->nodes[cs[start].node].city;
            }
            g->big_cities++;
        } else if (end - start > 1) {
            transfer_city(g, cs, start, end, &n_stops);
        }
    }
    free(cs);
    free(keys);
    return TG_OK;
}

int32_t gb_stop_city(const gb_graph_t *g, size_t i) {
    return g->city_of ? g->city_of[i] : -1;
}

size_t gb_edge_count(const gb_graph_t *g) {
    return g->n_routes + g->transfer_edges;
}

gb_edge_t gb_transfer_edge(const gb_graph_t *g, int32_t a, int32_t b) {
    const gb_node_t *x = &g->nodes[a], *y = &g->nodes[b];
    double km = tg_geo_distance_km(x->lat, x->lon, y->lat, y->lon);
    gb_edge_t e = {
        .weight = g->transfer_minutes,
        .distance = isnan(km) ? NAN : round(km * 100) / 100,
        .route = GB_NO_ROUTE,
        .from = a,
        .to = b,
        .transport = GB_TRANSFER,
    };
    return e;
}

int gb_for_each_edge(const gb_graph_t *g, gb_edge_fn fn, void *arg) {
    int rc = TG_OK;
    for (size_t i = 0; i < g->n_routes && rc == TG_OK; i++) {
        rc = fn(g, &g->routes[i], arg);
    }
    for (size_t c = 0; c < g->n_cities && rc == TG_OK; c++) {
        const uint32_t *stops = g->city_stops;
        for (uint32_t i = g->cities[c].start; i < g->cities[c].end && rc == TG_OK; i++) {
            for (uint32_t j = g->cities[c].start; j < g->cities[c].end && rc == TG_OK; j++) {
                if (i != j) {
                    gb_edge_t e = gb_transfer_edge(g, (int32_t)stops[i], (int32_t)stops[j]);
                    rc = fn(g, &e, arg);
                }
            }
        }
    }
    return rc;
}

/* ---- outgoing-edge index ----------------------------------------------- */

int gb_graph_index(gb_graph_t *g) {
    free(g->out_start);
    free(g->out_edges);
    g->out_start = calloc(g->n_nodes + 1, sizeof(size_t));
    g->out_edges = malloc((g->n_routes ? g->n_routes : 1) * sizeof(uint32_t));
    size_t *fill = calloc(g->n_nodes + 1, sizeof(size_t));
    if (!g->out_start || !g->out_edges || !fill) {
        free(fill);
        return TG_ERR_NOMEM;
    }
    /* Counting sort by source stop; edges with a missing source are left out. */
    for (size_t e = 0; e < g->n_routes; e++) {
        if (g->routes[e].from >= 0) {
            g->out_start[g->routes[e].from + 1]++;
        }
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        g->out_start[i + 1] += g->out_start[i];
    }
    for (size_t e = 0; e < g->n_routes; e++) {
        int f = g->routes[e].from;
        if (f >= 0) {
            g->out_edges[g->out_start[f] + fill[f]++] = (uint32_t)e;
        }
    }
    free(fill);
    return TG_OK;
}

/* ---- stops without any connection -------------------------------------- */

/* Marks in touched every stop at either end of an edge: of a route, or of a
 * transfer (every stop of a transfer city). */
static unsigned char *stops_touched(const gb_graph_t *g) {
    unsigned char *touched = calloc(g->n_nodes ? g->n_nodes : 1, 1);
    for (size_t e = 0; touched && e < g->n_routes; e++) {
        if (g->routes[e].from >= 0) {
            touched[g->routes[e].from] = 1;
        }
        if (g->routes[e].to >= 0) {
            touched[g->routes[e].to] = 1;
        }
    }
    for (size_t i = 0; touched && i < g->n_nodes; i++) {
        touched[i] |= gb_stop_city(g, i) >= 0;
    }
    return touched;
}

static void isolated_note(gb_graph_t *g, const gb_node_t *n) {
    if (g->isolated_stops < GB_MAX_SAMPLES) {
        char sample[600];
        snprintf(sample, sizeof(sample), "%s (%s)", n->id, n->name);
        g->isolated_stop_samples[g->isolated_stops] = arena_strdup(g, sample);
    }
    g->isolated_stops++;
}

int gb_graph_drop_isolated(gb_graph_t *g) {
    unsigned char *touched = stops_touched(g);
    int *moved = malloc((g->n_nodes ? g->n_nodes : 1) * sizeof(int));
    if (!touched || !moved) {
        free(touched);
        free(moved);
        return TG_ERR_NOMEM;
    }
    size_t kept = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        moved[i] = touched[i] ? (int)kept : -1;
        if (touched[i]) {
            if (g->city_of) {
                g->city_of[kept] = g->city_of[i];
            }
            g->nodes[kept++] = g->nodes[i];
        } else {
            isolated_note(g, &g->nodes[i]);
        }
    }
    free(touched);
    if (kept == g->n_nodes) {
        free(moved);
        return TG_OK;
    }
    for (size_t e = 0; e < g->n_routes; e++) {
        gb_edge_t *ed = &g->routes[e];
        ed->from = ed->from >= 0 ? moved[ed->from] : ed->from;
        ed->to = ed->to >= 0 ? moved[ed->to] : ed->to;
    }
    size_t city_stops = g->n_cities ? g->cities[g->n_cities - 1].end : 0;
    for (size_t k = 0; k < city_stops; k++) {
        g->city_stops[k] = (uint32_t)moved[g->city_stops[k]]; /* never isolated */
    }
    free(moved);
    g->n_nodes = kept;
    memset(g->slots, 0xff, g->n_slots * sizeof(*g->slots));
    for (size_t i = 0; i < g->n_nodes; i++) {
        g->slots[slot_of(g, g->nodes[i].id)] = (int)i;
    }
    return gb_graph_index(g);
}

/* ---- JSON of the Redis format ------------------------------------------ */

/* ,"name": then the string; names are literals, so no escaping. */
static int json_field_str(tg_buf_t *b, const char *name, const char *value) {
    int rc = tg_buf_append(b, ",\"", 2);
    if (!rc) {
        rc = tg_buf_append(b, name, strlen(name));
    }
    if (!rc) {
        rc = tg_buf_append(b, "\":", 2);
    }
    return rc ? rc : tg_json_append_str(b, value);
}

/* ,"name":number; whole numbers (most weights) skip printf, which is most
 * of the cost of 100k edges. */
static int json_field_num(tg_buf_t *b, const char *name, double v) {
    char num[32];
    int n;
    if (v == floor(v) && fabs(v) < 1e15) {
        n = snprintf(num, sizeof(num), "%lld", (long long)v);
    } else {
        n = snprintf(num, sizeof(num), "%.10g", v);
    }
    int rc = tg_buf_append(b, ",\"", 2);
    if (!rc) {
        rc = tg_buf_append(b, name, strlen(name));
    }
    if (!rc) {
        rc = tg_buf_append(b, "\":", 2);
    }
    return rc ? rc : tg_buf_append(b, num, (size_t)n);
}

int gb_node_json(tg_buf_t *b, const gb_node_t *n) {
    int rc = tg_buf_append(b, "{\"stopId\":", 10);
    if (!rc) {
        rc = tg_json_append_str(b, n->id);
    }
    if (!rc) {
        rc = json_field_str(b, "stopName", n->name);
    }
    if (!rc && !isnan(n->lat) && !isnan(n->lon) && !(rc = json_field_num(b, "latitude", n->lat))) {
        rc = json_field_num(b, "longitude", n->lon);
    }
    if (!rc && n->city) {
        rc = json_field_str(b, "cityName", n->city);
    }
    return rc ? rc : tg_buf_append(b, "}", 1);
}

int gb_edge_json(tg_buf_t *b, const gb_graph_t *g, const gb_edge_t *e) {
    const char *transport = gb_edge_transport(g, e), *route_id = gb_edge_route_id(g, e);
    int rc = tg_buf_append(b, "{\"fromStopId\":", 14);
    if (!rc) {
        rc = tg_json_append_str(b, gb_edge_from_id(g, e));
    }
    if (!rc) {
        rc = json_field_str(b, "toStopId", gb_edge_to_id(g, e));
    }
    if (!rc) {
        rc = json_field_num(b, "weight", e->weight);
    }
    if (!rc && !isnan(e->distance)) {
        rc = json_field_num(b, "distance", e->distance);
    }
    if (!rc && transport) {
        rc = json_field_str(b, "transportType", transport);
    }
    if (!rc && route_id) {
        rc = json_field_str(b, "routeId", route_id);
    }
    return rc ? rc : tg_buf_append(b, "}", 1);
}

int gb_neighbors_json(tg_buf_t *b, const gb_graph_t *g, size_t i) {
    int rc = tg_buf_append(b, "[", 1);
    for (size_t k = g->out_start[i]; k < g->out_start[i + 1] && rc == TG_OK; k++) {
        if (k > g->out_start[i]) {
            rc = tg_buf_append(b, ",", 1);
        }
        if (!rc) {
            rc = gb_edge_json(b, g, &g->routes[g->out_edges[k]]);
        }
    }
    int32_t c = gb_stop_city(g, i);
    int first = g->out_start[i] == g->out_start[i + 1];
    for (uint32_t k = c >= 0 ? g->cities[c].start : 0; c >= 0 && k < g->cities[c].end && !rc; k++) {
        if (g->city_stops[k] == i) {
            continue;
        }
        gb_edge_t e = gb_transfer_edge(g, (int32_t)i, (int32_t)g->city_stops[k]);
        if (!(rc = first ? TG_OK : tg_buf_append(b, ",", 1))) {
            rc = gb_edge_json(b, g, &e);
        }
        first = 0;
    }
    return rc ? rc : tg_buf_append(b, "]", 1);
}
