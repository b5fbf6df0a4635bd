/* Fastest paths: Dijkstra with a binary heap, and Yen's k shortest loopless
 * paths on top of it. The fastest path comes from a bidirectional Dijkstra;
 * the alternatives' searches are an A* guided by the minutes from stops to
 * the destination (one backward Dijkstra per request, see backward()):
 * banning edges and nodes only lengthens paths, so the bound stays
 * admissible and consistent, and Yen's many spur searches visit a few stops
 * instead of the whole graph. Several sources and targets (all stops of two
 * cities) become one virtual source S and one virtual target T joined to them
 * by zero-minute edges, so Yen's algorithm runs unchanged between S and T. */
#include "route_api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double d;
    uint32_t v;
} heap_item_t;

typedef struct {
    heap_item_t *a;
    size_t n, cap;
} heap_t;

/* A search over the graph plus S and T. Node ids: 0..n-1 the stops, n = S,
 * n+1 = T. Edge ids: 0..E-1 the graph's, E+i = S -> sources[i],
 * E+nsrc+j = targets[j] -> T. */
typedef struct {
    const rg_graph_t *g;
    const uint32_t *sources, *targets;
    size_t nsrc, ntgt;
    uint32_t S, T;
    int32_t *target_of; /* per stop: its index in targets, or -1 */
    uint8_t *is_source;
    double *dist;
    double *to_target;   /* exact minutes to T without bans: the A* bound */
    uint32_t *prev_edge; /* the edge by which dist was reached */
    uint8_t *done, *banned_node, *banned_edge;
    uint8_t *done_b;     /* settled by the backward search of bidirectional() */
    uint32_t *next_edge; /* bidirectional(): the edge on from a stop towards T */
    heap_t heap, heap_b;
} search_t;

/* A path between S and T as edge ids of the search (virtual ones included). */
typedef struct {
    uint32_t *e;
    size_t n;
    double cost;
} apath_t;

static uint32_t edge_from(const search_t *s, uint32_t e) {
    size_t E = s->g->nedges;
    if (e < E) {
        return s->g->edges[e].from;
    }
    return e < E + s->nsrc ? s->S : s->targets[e - E - s->nsrc];
}

static uint32_t edge_to(const search_t *s, uint32_t e) {
    size_t E = s->g->nedges;
    if (e < E) {
        return s->g->edges[e].to;
    }
    return e < E + s->nsrc ? s->sources[e - E] : s->T;
}

static double edge_cost(const search_t *s, uint32_t e) {
    return e < s->g->nedges ? s->g->edges[e].minutes : 0;
}

/* ---- binary heap of (distance, node); stale entries are skipped ---- */

static int heap_push(heap_t *h, double d, uint32_t v) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        void *p = realloc(h->a, cap * sizeof *h->a);
        if (!p) {
            return TG_ERR_NOMEM;
        }
        h->a = p;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2].d > d) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i].d = d;
    h->a[i].v = v;
    return TG_OK;
}

static heap_item_t heap_pop(heap_t *h) {
    heap_item_t top = h->a[0], last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) {
            break;
        }
        if (c + 1 < h->n && h->a[c + 1].d < h->a[c].d) {
            c++;
        }
        if (h->a[c].d >= last.d) {
            break;
        }
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) {
        h->a[i] = last;
    }
    return top;
}

/* ---- Dijkstra from one node to T, avoiding banned nodes and edges ---- */

static int relax(search_t *s, uint32_t u, uint32_t e) {
    if (s->banned_edge[e]) {
        return TG_OK;
    }
    uint32_t v = edge_to(s, e);
    if (s->banned_node[v] || s->done[v] || (u != s->S && v < s->S && s->is_source[v])) {
        return TG_OK;
    }
    double d = s->dist[u] + edge_cost(s, e);
    if (d < s->dist[v] && isfinite(s->to_target[v])) { /* no way on to T: never worth it */
        s->dist[v] = d;
        s->prev_edge[v] = e;
        return heap_push(&s->heap, d + s->to_target[v], v);
    }
    return TG_OK;
}

static int relax_all(search_t *s, uint32_t u) {
    size_t E = s->g->nedges;
    int rc = TG_OK;
    if (u == s->S) {
        for (size_t i = 0; i < s->nsrc && rc == TG_OK; i++) {
            rc = relax(s, u, (uint32_t)(E + i));
        }
        return rc;
    }
    /* Reaching any stop of the destination is arriving, and leaving from
     * one stop of the origin never passes another: a route between two
     * cities neither ends with a walk inside the destination nor starts
     * with one inside the origin. */
    if (s->target_of[u] >= 0) {
        return relax(s, u, (uint32_t)(E + s->nsrc + (size_t)s->target_of[u]));
    }
    for (uint32_t e = s->g->first[u]; e < s->g->first[u + 1] && rc == TG_OK; e++) {
        rc = relax(s, u, e);
    }
    return rc;
}

/* The fastest path from `from` to T into *out (out->n = 0: none). */
static int dijkstra(search_t *s, uint32_t from, apath_t *out) {
    size_t nn = s->g->nnodes + 2;
    for (size_t i = 0; i < nn; i++) {
        s->dist[i] = INFINITY;
    }
    memset(s->done, 0, nn);
    s->heap.n = 0;
    s->dist[from] = 0;
    s->prev_edge[from] = RG_NONE;
    out->n = 0;
    if (!isfinite(s->to_target[from])) {
        return TG_OK;
    }
    int rc = heap_push(&s->heap, s->to_target[from], from);
    while (rc == TG_OK && s->heap.n) {
        heap_item_t it = heap_pop(&s->heap);
        if (s->done[it.v] || it.d > s->dist[it.v] + s->to_target[it.v]) {
            continue;
        }
        s->done[it.v] = 1;
        if (it.v == s->T) {
            break;
        }
        rc = relax_all(s, it.v);
    }
    if (rc != TG_OK || !s->done[s->T]) {
        return rc;
    }
    size_t n = 0;
    for (uint32_t v = s->T; v != from; v = edge_from(s, s->prev_edge[v])) {
        n++;
    }
    out->e = malloc((n ? n : 1) * sizeof *out->e);
    if (!out->e) {
        return TG_ERR_NOMEM;
    }
    out->n = n;
    out->cost = s->dist[s->T];
    for (uint32_t v = s->T; v != from; v = edge_from(s, s->prev_edge[v])) {
        out->e[--n] = s->prev_edge[v];
    }
    return TG_OK;
}

/* The A* bound: minutes from stops to the nearest target, by a Dijkstra
 * over the in-edges from every target that stops once every origin is
 * settled (a ball of the route's radius, not the graph). Settled stops get
 * their exact minutes, the others the radius reached, a lower bound of
 * theirs; together still consistent, so A* stays exact. It ignores the rule
 * that a route passes no second origin stop, which only lowers it. */
static int backward(search_t *s) {
    const rg_graph_t *g = s->g;
    size_t n = g->nnodes, left = s->nsrc;
    for (size_t i = 0; i < n + 2; i++) {
        s->to_target[i] = INFINITY;
    }
    memset(s->done, 0, n + 2);
    s->heap.n = 0;
    int rc = TG_OK;
    for (size_t j = 0; j < s->ntgt && rc == TG_OK; j++) {
        s->to_target[s->targets[j]] = 0;
        rc = heap_push(&s->heap, 0, s->targets[j]);
    }
    while (rc == TG_OK && s->heap.n && left) {
        heap_item_t it = heap_pop(&s->heap);
        if (s->done[it.v] || it.d > s->to_target[it.v]) {
            continue;
        }
        s->done[it.v] = 1;
        left -= s->is_source[it.v];
        for (uint32_t k = g->rfirst[it.v]; k < g->rfirst[it.v + 1] && rc == TG_OK; k++) {
            const rg_edge_t *e = &g->edges[g->redges[k]];
            double d = it.d + e->minutes;
            if (d < s->to_target[e->from] && s->target_of[e->from] < 0) {
                s->to_target[e->from] = d;
                rc = heap_push(&s->heap, d, e->from);
            }
        }
    }
    /* the smallest key still queued is the radius; an empty queue means the
     * unsettled stops cannot reach a target at all */
    double radius = INFINITY;
    for (size_t i = 0; i < s->heap.n; i++) {
        if (!s->done[s->heap.a[i].v] && s->heap.a[i].d < radius) {
            radius = s->heap.a[i].d;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (!s->done[i]) {
            s->to_target[i] = radius;
        }
    }
    s->to_target[s->T] = 0;
    s->to_target[s->S] = INFINITY;
    for (size_t i = 0; i < s->nsrc; i++) {
        if (s->to_target[s->sources[i]] < s->to_target[s->S]) {
            s->to_target[s->S] = s->to_target[s->sources[i]];
        }
    }
    return rc;
}

/* ---- the fastest path alone: bidirectional Dijkstra ---- */

static void meet(search_t *s, uint32_t v, double *best, uint32_t *at) {
    double d = s->dist[v] + s->to_target[v];
    if (d < *best) {
        *best = d;
        *at = v;
    }
}

/* One step forwards from the origins: a destination stop is arrived at, never
 * passed; an origin stop is never entered again. */
static int step_forward(search_t *s, double *best, uint32_t *at) {
    heap_item_t it = heap_pop(&s->heap);
    if (s->done[it.v] || it.d > s->dist[it.v]) {
        return TG_OK;
    }
    s->done[it.v] = 1;
    if (s->target_of[it.v] >= 0) {
        return TG_OK;
    }
    int rc = TG_OK;
    for (uint32_t e = s->g->first[it.v]; e < s->g->first[it.v + 1] && rc == TG_OK; e++) {
        uint32_t w = s->g->edges[e].to;
        double d = it.d + s->g->edges[e].minutes;
        if (s->is_source[w] || d >= s->dist[w]) {
            continue;
        }
        s->dist[w] = d;
        s->prev_edge[w] = e;
        rc = heap_push(&s->heap, d, w);
        meet(s, w, best, at);
    }
    return rc;
}

/* One step backwards from the destinations, the same rules mirrored. */
static int step_backward(search_t *s, double *best, uint32_t *at) {
    const rg_graph_t *g = s->g;
    heap_item_t it = heap_pop(&s->heap_b);
    if (s->done_b[it.v] || it.d > s->to_target[it.v]) {
        return TG_OK;
    }
    s->done_b[it.v] = 1;
    if (s->is_source[it.v]) {
        return TG_OK;
    }
    int rc = TG_OK;
    for (uint32_t k = g->rfirst[it.v]; k < g->rfirst[it.v + 1] && rc == TG_OK; k++) {
        uint32_t e = g->redges[k], u = g->edges[e].from;
        double d = it.d + g->edges[e].minutes;
        if (s->target_of[u] >= 0 || d >= s->to_target[u]) {
            continue;
        }
        s->to_target[u] = d;
        s->next_edge[u] = e;
        rc = heap_push(&s->heap_b, d, u);
        meet(s, u, best, at);
    }
    return rc;
}

/* The fastest path from S to T, searching from both ends until the two
 * queues' smallest keys add up to the best meeting found: about two balls of
 * half the route's radius instead of one of its whole radius. */
static int bidirectional(search_t *s, apath_t *out) {
    size_t nn = s->g->nnodes + 2, E = s->g->nedges;
    for (size_t i = 0; i < nn; i++) {
        s->dist[i] = s->to_target[i] = INFINITY;
    }
    memset(s->done, 0, nn);
    memset(s->done_b, 0, nn);
    s->heap.n = s->heap_b.n = 0;
    out->n = 0;
    double best = INFINITY;
    uint32_t at = RG_NONE;
    int rc = TG_OK;
    for (size_t i = 0; i < s->nsrc && rc == TG_OK; i++) {
        s->dist[s->sources[i]] = 0;
        s->prev_edge[s->sources[i]] = (uint32_t)(E + i);
        rc = heap_push(&s->heap, 0, s->sources[i]);
    }
    for (size_t j = 0; j < s->ntgt && rc == TG_OK; j++) {
        s->to_target[s->targets[j]] = 0;
        s->next_edge[s->targets[j]] = (uint32_t)(E + s->nsrc + j);
        rc = heap_push(&s->heap_b, 0, s->targets[j]);
    }
    while (rc == TG_OK && s->heap.n && s->heap_b.n && s->heap.a[0].d + s->heap_b.a[0].d < best) {
        rc = s->heap.a[0].d <= s->heap_b.a[0].d ? step_forward(s, &best, &at)
                                                : step_backward(s, &best, &at);
    }
    if (rc != TG_OK || at == RG_NONE) {
        return rc;
    }
    /* S -> ... -> at by prev_edge, then at -> ... -> T by next_edge */
    size_t nf = 1, nb = 1;
    for (uint32_t v = at; s->prev_edge[v] < E; v = s->g->edges[s->prev_edge[v]].from) {
        nf++;
    }
    for (uint32_t v = at; s->next_edge[v] < E; v = s->g->edges[s->next_edge[v]].to) {
        nb++;
    }
    out->e = malloc((nf + nb) * sizeof *out->e);
    if (!out->e) {
        return TG_ERR_NOMEM;
    }
    out->n = nf + nb;
    out->cost = best;
    size_t i = nf;
    for (uint32_t v = at;; v = s->g->edges[s->prev_edge[v]].from) {
        out->e[--i] = s->prev_edge[v];
        if (s->prev_edge[v] >= E) {
            break;
        }
    }
    i = nf;
    for (uint32_t v = at;; v = s->g->edges[s->next_edge[v]].to) {
        out->e[i++] = s->next_edge[v];
        if (s->next_edge[v] >= E) {
            break;
        }
    }
    return TG_OK;
}

/* ---- Yen's algorithm ---- */

static int same_prefix(const apath_t *a, const apath_t *b, size_t len) {
    return a->n > len && b->n > len && memcmp(a->e, b->e, len * sizeof *a->e) == 0;
}

static int same_path(const apath_t *a, const apath_t *b) {
    return a->n == b->n && memcmp(a->e, b->e, a->n * sizeof *a->e) == 0;
}

typedef struct {
    apath_t *p;
    size_t n, cap;
} pathset_t;

static int pathset_has(const pathset_t *set, const apath_t *p) {
    for (size_t i = 0; i < set->n; i++) {
        if (same_path(&set->p[i], p)) {
            return 1;
        }
    }
    return 0;
}

static int pathset_add(pathset_t *set, apath_t p) {
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        void *q = realloc(set->p, cap * sizeof *set->p);
        if (!q) {
            return TG_ERR_NOMEM;
        }
        set->p = q;
        set->cap = cap;
    }
    set->p[set->n++] = p;
    return TG_OK;
}

/* Removes and returns the cheapest candidate; ties go to the fewer edges,
 * then to the first found, so the order is stable. */
static apath_t pathset_pop_min(pathset_t *set) {
    size_t best = 0;
    for (size_t i = 1; i < set->n; i++) {
        const apath_t *a = &set->p[i], *b = &set->p[best];
        if (a->cost < b->cost || (a->cost == b->cost && a->n < b->n)) {
            best = i;
        }
    }
    apath_t p = set->p[best];
    memmove(&set->p[best], &set->p[best + 1], (set->n - best - 1) * sizeof *set->p);
    set->n--;
    return p;
}

/* Every deviation from `last` (the newest accepted path) at each of its
 * nodes: the root up to the spur node stays, the edges that accepted paths
 * with the same root take next are banned, and so are the root's nodes. */
static int spur_candidates(search_t *s, const pathset_t *accepted, const apath_t *last,
                           pathset_t *cand) {
    int rc = TG_OK;
    double root_cost = 0;
    for (size_t i = 0; i < last->n && rc == TG_OK; i++) {
        uint32_t spur = edge_from(s, last->e[i]);
        for (size_t a = 0; a < accepted->n; a++) {
            if (same_prefix(&accepted->p[a], last, i)) {
                s->banned_edge[accepted->p[a].e[i]] = 1;
            }
        }
        for (size_t r = 0; r < i; r++) {
            s->banned_node[edge_from(s, last->e[r])] = 1;
        }
        apath_t sp = {0};
        rc = dijkstra(s, spur, &sp);
        if (rc == TG_OK && sp.n) {
            apath_t full = {malloc((i + sp.n) * sizeof *full.e), i + sp.n, root_cost + sp.cost};
            if (!full.e) {
                rc = TG_ERR_NOMEM;
            } else {
                memcpy(full.e, last->e, i * sizeof *full.e);
                memcpy(full.e + i, sp.e, sp.n * sizeof *full.e);
                if (pathset_has(cand, &full) || pathset_has(accepted, &full)) {
                    free(full.e);
                } else if ((rc = pathset_add(cand, full)) != TG_OK) {
                    free(full.e);
                }
            }
        }
        free(sp.e);
        for (size_t a = 0; a < accepted->n; a++) {
            if (same_prefix(&accepted->p[a], last, i)) {
                s->banned_edge[accepted->p[a].e[i]] = 0;
            }
        }
        for (size_t r = 0; r < i; r++) {
            s->banned_node[edge_from(s, last->e[r])] = 0;
        }
        root_cost += edge_cost(s, last->e[i]);
    }
    return rc;
}

int rg_path_transfers(const rg_graph_t *g, const uint32_t *edges, size_t n) {
    int segments = 0;
    uint32_t route = RG_NONE;
    for (size_t i = 0; i < n; i++) {
        const rg_edge_t *e = &g->edges[edges[i]];
        if (strcmp(g->arena + e->transport, "TRANSFER") == 0 || !g->arena[e->route]) {
            route = RG_NONE; /* walking between stops: the next ride is a new one */
            continue;
        }
        if (e->route != route) {
            segments++;
        }
        route = e->route;
    }
    return segments > 1 ? segments - 1 : 0;
}

/* The path without S and T, with its totals. The caller frees r.edges. */
static int to_route(const search_t *s, const apath_t *p, rg_path_t *r) {
    memset(r, 0, sizeof *r);
    r->edges = malloc((p->n ? p->n : 1) * sizeof *r->edges);
    if (!r->edges) {
        return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (p->e[i] < s->g->nedges) {
            r->edges[r->nedges++] = p->e[i];
        }
    }
    for (size_t i = 0; i < r->nedges; i++) {
        r->minutes += s->g->edges[r->edges[i]].minutes;
        r->km += s->g->edges[r->edges[i]].km;
    }
    r->transfers = rg_path_transfers(s->g, r->edges, r->nedges);
    return TG_OK;
}

static int search_init(search_t *s, const rg_graph_t *g, const uint32_t *sources, size_t nsrc,
                       const uint32_t *targets, size_t ntgt) {
    memset(s, 0, sizeof *s);
    s->g = g;
    s->sources = sources;
    s->targets = targets;
    s->nsrc = nsrc;
    s->ntgt = ntgt;
    s->S = (uint32_t)g->nnodes;
    s->T = (uint32_t)g->nnodes + 1;
    size_t nn = g->nnodes + 2, ne = g->nedges + nsrc + ntgt;
    s->target_of = malloc(nn * sizeof *s->target_of);
    s->dist = malloc(nn * sizeof *s->dist);
    s->to_target = malloc(nn * sizeof *s->to_target);
    s->prev_edge = malloc(nn * sizeof *s->prev_edge);
    s->done = malloc(nn);
    s->done_b = malloc(nn);
    s->next_edge = malloc(nn * sizeof *s->next_edge);
    s->is_source = calloc(nn, 1);
    s->banned_node = calloc(nn, 1);
    s->banned_edge = calloc(ne, 1);
    if (!s->target_of || !s->dist || !s->to_target || !s->prev_edge || !s->done || !s->done_b ||
        !s->next_edge || !s->is_source || !s->banned_node || !s->banned_edge) {
        return TG_ERR_NOMEM;
    }
    memset(s->target_of, 0xff, nn * sizeof *s->target_of);
    for (size_t j = 0; j < ntgt; j++) {
        s->target_of[targets[j]] = (int32_t)j;
    }
    for (size_t i = 0; i < nsrc; i++) {
        s->is_source[sources[i]] = 1;
    }
    return TG_OK;
}

static void search_free(search_t *s) {
    free(s->target_of);
    free(s->dist);
    free(s->to_target);
    free(s->prev_edge);
    free(s->done);
    free(s->is_source);
    free(s->banned_node);
    free(s->banned_edge);
    free(s->heap.a);
    free(s->heap_b.a);
    free(s->done_b);
    free(s->next_edge);
}

static void pathset_free(pathset_t *set) {
    for (size_t i = 0; i < set->n; i++) {
        free(set->p[i].e);
    }
    free(set->p);
}

/* Paths over the transfer limit are skipped; Yen's order is kept, and at most
 * this many paths are looked at so a tight limit cannot run forever. */
#define RG_MAX_EXAMINED 64

int rg_routes(const rg_graph_t *g, const uint32_t *sources, size_t nsources,
              const uint32_t *targets, size_t ntargets, int k, int max_transfers, rg_path_t **out,
              char *errstr, size_t errlen) {
    *out = NULL;
    if (k < 1 || !nsources || !ntargets) {
        return 0;
    }
    search_t s;
    memset(&s, 0, sizeof s);
    pathset_t accepted = {0}, cand = {0};
    rg_path_t *res = calloc((size_t)k, sizeof *res);
    int nres = 0;
    int rc = res ? search_init(&s, g, sources, nsources, targets, ntargets) : TG_ERR_NOMEM;
    apath_t next = {0};
    int bound = 0; /* backward() ran: spur searches need its bound */
    if (rc == TG_OK) {
        rc = bidirectional(&s, &next);
    }
    while (rc == TG_OK && next.n) {
        if ((rc = pathset_add(&accepted, next)) != TG_OK) {
            free(next.e);
            break;
        }
        rg_path_t r;
        if ((rc = to_route(&s, &next, &r)) != TG_OK) {
            break;
        }
        if (max_transfers < 0 || r.transfers <= max_transfers) {
            res[nres++] = r;
        } else {
            free(r.edges);
        }
        if (nres == k || accepted.n >= RG_MAX_EXAMINED) {
            break;
        }
        if (!bound && (rc = backward(&s)) != TG_OK) {
            break;
        }
        bound = 1;
        rc = spur_candidates(&s, &accepted, &accepted.p[accepted.n - 1], &cand);
        next.n = 0;
        if (rc == TG_OK && cand.n) {
            next = pathset_pop_min(&cand);
        }
    }
    pathset_free(&accepted);
    pathset_free(&cand);
    search_free(&s);
    if (rc != TG_OK) {
        rg_paths_free(res, nres);
        return tg_fail(rc, errstr, errlen, "routes: out of memory");
    }
    if (nres == 0) {
        free(res); /* no path: nothing for the caller to free */
        res = NULL;
    }
    *out = res;
    return nres;
}

void rg_paths_free(rg_path_t *paths, int n) {
    if (!paths) {
        return;
    }
    for (int i = 0; i < n; i++) {
        free(paths[i].edges);
    }
    free(paths);
}
