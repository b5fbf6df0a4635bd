/* The in-memory graph: a builder that interns every string into one arena and
 * turns edges into adjacency arrays, the stop-id index, and stop search on
 * case-folded names (libunistring, so Russian and Latin fold alike). */
#include "route_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <uninorm.h>

typedef struct {
    uint32_t from, to; /* arena offsets of the ids until finish resolves them */
    uint32_t transport, route;
    double minutes, km;
} raw_edge_t;

struct rg_builder_s {
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *intern; /* open addressing: arena offset + 1, 0 = empty */
    size_t intern_cap, intern_n;
    rg_node_t *nodes;
    size_t nnodes, nodes_cap;
    raw_edge_t *edges;
    size_t nedges, edges_cap;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) {
        return TG_OK;
    }
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        n *= 2;
    }
    void *q = realloc(*p, n * size);
    if (!q) {
        return TG_ERR_NOMEM;
    }
    *p = q;
    *cap = n;
    return TG_OK;
}

static int intern_rehash(rg_builder_t *b) {
    size_t cap = b->intern_cap ? b->intern_cap * 2 : 1024;
    uint32_t *t = calloc(cap, sizeof *t);
    if (!t) {
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < b->intern_cap; i++) {
        if (!b->intern[i]) {
            continue;
        }
        size_t j = hash_str(b->arena + b->intern[i] - 1) & (cap - 1);
        while (t[j]) {
            j = (j + 1) & (cap - 1);
        }
        t[j] = b->intern[i];
    }
    free(b->intern);
    b->intern = t;
    b->intern_cap = cap;
    return TG_OK;
}

/* The arena offset of s, added once: ids, cities, route ids and transport
 * types repeat a lot across nodes and edges. */
static int intern(rg_builder_t *b, const char *s, uint32_t *off) {
    if (!s) {
        s = "";
    }
    if ((b->intern_n + 1) * 2 > b->intern_cap && intern_rehash(b) != TG_OK) {
        return TG_ERR_NOMEM;
    }
    size_t j = hash_str(s) & (b->intern_cap - 1);
    while (b->intern[j]) {
        if (strcmp(b->arena + b->intern[j] - 1, s) == 0) {
            *off = b->intern[j] - 1;
            return TG_OK;
        }
        j = (j + 1) & (b->intern_cap - 1);
    }
    size_t len = strlen(s) + 1;
    if (b->arena_len + len > UINT32_MAX - 1 ||
        grow((void **)&b->arena, &b->arena_cap, b->arena_len + len, 1) != TG_OK) {
        return TG_ERR_NOMEM;
    }
    memcpy(b->arena + b->arena_len, s, len);
    *off = (uint32_t)b->arena_len;
    b->intern[j] = *off + 1;
    b->intern_n++;
    b->arena_len += len;
    return TG_OK;
}

rg_builder_t *rg_builder_new(void) {
    rg_builder_t *b = calloc(1, sizeof *b);
    uint32_t empty;
    if (b && intern(b, "", &empty) != TG_OK) {
        free(b);
        return NULL;
    }
    return b;
}

void rg_builder_free(rg_builder_t *b) {
    if (!b) {
        return;
    }
    free(b->arena);
    free(b->intern);
    free(b->nodes);
    free(b->edges);
    free(b);
}

char *rg_fold(const char *s) {
    size_t len = 0;
    /* NFC so that a decomposed "й" in a query matches the composed one */
    uint8_t *f = u8_casefold((const uint8_t *)s, strlen(s), NULL, UNINORM_NFC, NULL, &len);
    if (!f) {
        return NULL;
    }
    char *out = malloc(len + 1);
    if (out) {
        memcpy(out, f, len);
        out[len] = '\0';
    }
    free(f);
    return out;
}

static int intern_folded(rg_builder_t *b, const char *s, uint32_t *off) {
    char *f = rg_fold(s ? s : "");
    int rc = intern(b, f ? f : (s ? s : ""), off);
    free(f);
    return rc;
}

int rg_builder_add_node(rg_builder_t *b, const char *id, const char *name, const char *city,
                        double lat, double lon) {
    if (grow((void **)&b->nodes, &b->nodes_cap, b->nnodes + 1, sizeof *b->nodes) != TG_OK) {
        return TG_ERR_NOMEM;
    }
    rg_node_t *n = &b->nodes[b->nnodes];
    n->lat = lat;
    n->lon = lon;
    if (intern(b, id, &n->id) || intern(b, name, &n->name) || intern(b, city, &n->city) ||
        intern_folded(b, name, &n->name_fold) || intern_folded(b, city, &n->city_fold)) {
        return TG_ERR_NOMEM;
    }
    b->nnodes++;
    return TG_OK;
}

int rg_builder_add_edge(rg_builder_t *b, const char *from, const char *to, double minutes,
                        double km, const char *transport, const char *route) {
    if (grow((void **)&b->edges, &b->edges_cap, b->nedges + 1, sizeof *b->edges) != TG_OK) {
        return TG_ERR_NOMEM;
    }
    raw_edge_t *e = &b->edges[b->nedges];
    e->minutes = minutes;
    e->km = km;
    if (intern(b, from, &e->from) || intern(b, to, &e->to) || intern(b, transport, &e->transport) ||
        intern(b, route, &e->route)) {
        return TG_ERR_NOMEM;
    }
    b->nedges++;
    return TG_OK;
}

/* ---- finishing: the index by id and the adjacency arrays ---- */

static uint32_t index_lookup(const char *arena, const rg_node_t *nodes, const uint32_t *index,
                             size_t cap, const char *id) {
    size_t j = hash_str(id) & (cap - 1);
    while (index[j] != RG_NONE) {
        if (strcmp(arena + nodes[index[j]].id, id) == 0) {
            return index[j];
        }
        j = (j + 1) & (cap - 1);
    }
    return RG_NONE;
}

static int build_index(rg_graph_t *g, char *errstr, size_t errlen) {
    g->index_cap = 16;
    while (g->index_cap < g->nnodes * 2) {
        g->index_cap *= 2;
    }
    g->index = malloc(g->index_cap * sizeof *g->index);
    if (!g->index) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "graph %s: out of memory", g->version);
    }
    memset(g->index, 0xff, g->index_cap * sizeof *g->index);
    for (uint32_t i = 0; i < g->nnodes; i++) {
        const char *id = g->arena + g->nodes[i].id;
        if (index_lookup(g->arena, g->nodes, g->index, g->index_cap, id) != RG_NONE) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen, "graph %s: stop %s twice", g->version,
                           id);
        }
        size_t j = hash_str(id) & (g->index_cap - 1);
        while (g->index[j] != RG_NONE) {
            j = (j + 1) & (g->index_cap - 1);
        }
        g->index[j] = i;
    }
    return TG_OK;
}

/* The in-edges of every node, the same counting sort by the other end. */
static int build_reverse(rg_graph_t *g, char *errstr, size_t errlen) {
    g->rfirst = calloc(g->nnodes + 1, sizeof *g->rfirst);
    g->redges = malloc((g->nedges ? g->nedges : 1) * sizeof *g->redges);
    if (!g->rfirst || !g->redges) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "graph %s: out of memory", g->version);
    }
    for (size_t i = 0; i < g->nedges; i++) {
        g->rfirst[g->edges[i].to + 1]++;
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        g->rfirst[i + 1] += g->rfirst[i];
    }
    for (size_t i = 0; i < g->nedges; i++) {
        g->redges[g->rfirst[g->edges[i].to]++] = (uint32_t)i;
    }
    memmove(g->rfirst + 1, g->rfirst, g->nnodes * sizeof *g->rfirst);
    g->rfirst[0] = 0;
    return TG_OK;
}

/* Counting sort of the edges by their source: node i's out-edges are
 * edges[first[i] .. first[i+1]). */
static int build_adjacency(rg_graph_t *g, const raw_edge_t *raw, char *errstr, size_t errlen) {
    g->first = calloc(g->nnodes + 1, sizeof *g->first);
    g->edges = malloc((g->nedges ? g->nedges : 1) * sizeof *g->edges);
    uint32_t *from = malloc((g->nedges ? g->nedges : 1) * sizeof *from);
    uint32_t *to = malloc((g->nedges ? g->nedges : 1) * sizeof *to);
    int rc = TG_OK;
    if (!g->first || !g->edges || !from || !to) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "graph %s: out of memory", g->version);
    }
    for (size_t i = 0; rc == TG_OK && i < g->nedges; i++) {
        from[i] = rg_find(g, g->arena + raw[i].from);
        to[i] = rg_find(g, g->arena + raw[i].to);
        if (from[i] == RG_NONE || to[i] == RG_NONE) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "graph %s: edge %s -> %s names no stop",
                         g->version, g->arena + raw[i].from, g->arena + raw[i].to);
        } else if (!(raw[i].minutes > 0) || !isfinite(raw[i].minutes)) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "graph %s: edge %s -> %s weight %g",
                         g->version, g->arena + raw[i].from, g->arena + raw[i].to, raw[i].minutes);
        } else {
            g->first[from[i] + 1]++;
        }
    }
    for (size_t i = 0; rc == TG_OK && i < g->nnodes; i++) {
        g->first[i + 1] += g->first[i];
    }
    for (size_t i = 0; rc == TG_OK && i < g->nedges; i++) {
        /* first[from] is used as the fill cursor, shifted back afterwards */
        rg_edge_t *e = &g->edges[g->first[from[i]]++];
        e->from = from[i];
        e->to = to[i];
        e->transport = raw[i].transport;
        e->route = raw[i].route;
        e->minutes = raw[i].minutes;
        e->km = raw[i].km;
    }
    if (rc == TG_OK) {
        memmove(g->first + 1, g->first, g->nnodes * sizeof *g->first);
        g->first[0] = 0;
    }
    free(from);
    free(to);
    return rc == TG_OK ? build_reverse(g, errstr, errlen) : rc;
}

rg_graph_t *rg_builder_finish(rg_builder_t *b, const char *version, char *errstr, size_t errlen) {
    rg_graph_t *g = calloc(1, sizeof *g);
    if (!g) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "graph %s: out of memory", version);
        rg_builder_free(b);
        return NULL;
    }
    snprintf(g->version, sizeof g->version, "%s", version);
    g->refs = 1;
    g->nnodes = b->nnodes;
    g->nedges = b->nedges;
    g->nodes = b->nodes;
    g->arena = b->arena;
    g->arena_len = b->arena_len;
    b->nodes = NULL;
    b->arena = NULL;
    int rc = build_index(g, errstr, errlen);
    if (rc == TG_OK) {
        rc = build_adjacency(g, b->edges, errstr, errlen);
    }
    rg_builder_free(b);
    if (rc != TG_OK) {
        rg_graph_free(g);
        return NULL;
    }
    return g;
}

void rg_graph_free(rg_graph_t *g) {
    if (!g) {
        return;
    }
    free(g->nodes);
    free(g->first);
    free(g->rfirst);
    free(g->redges);
    free(g->edges);
    free(g->arena);
    free(g->index);
    free(g);
}

uint32_t rg_find(const rg_graph_t *g, const char *id) {
    return index_lookup(g->arena, g->nodes, g->index, g->index_cap, id);
}

/* ---- search ---- */

size_t rg_search(const rg_graph_t *g, const char *query_fold, const char *city_fold, uint32_t *out,
                 size_t max) {
    size_t n = 0;
    for (uint32_t i = 0; i < g->nnodes && n < max; i++) {
        const rg_node_t *nd = &g->nodes[i];
        const char *name = g->arena + nd->name_fold, *city = g->arena + nd->city_fold;
        if (city_fold && *city_fold && !strstr(city, city_fold)) {
            continue;
        }
        if (query_fold && *query_fold && !strstr(name, query_fold) && !strstr(city, query_fold)) {
            continue;
        }
        out[n++] = i;
    }
    return n;
}

/* A folded city without its settlement prefix ("г. ", "пос. "), as
 * graph-builder compares cities for transfers, so "Нерюнгри" finds
 * "г. Нерюнгри". */
static const char *city_key(const char *city_fold) {
    const char *dot = strstr(city_fold, ". ");
    return dot && dot - city_fold <= 8 ? dot + 2 : city_fold;
}

size_t rg_city_nodes(const rg_graph_t *g, const char *city_fold, uint32_t *out, size_t max) {
    size_t n = 0;
    const char *want = city_key(city_fold);
    for (uint32_t i = 0; i < g->nnodes && n < max; i++) {
        if (strcmp(city_key(g->arena + g->nodes[i].city_fold), want) == 0) {
            out[n++] = i;
        }
    }
    return n;
}
