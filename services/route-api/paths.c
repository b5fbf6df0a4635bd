/* Fastest paths: Dijkstra with a binary heap, and Yen's k shortest loopless
 * paths on top of it. Each search is an A* guided by the minutes from stops
 * to the destination (one backward Dijkstra per request, see backward()):
 * banning edges and nodes only lengthens paths, so the bound stays
 * admissible and consistent, and Yen's many spur searches visit a few stops
 * instead of the whole graph. Several sources and targets (all stops of two cities)
 * become one virtual source S and one virtual target T joined to them by
 * zero-minute edges, so Yen's algorithm runs unchanged between S and T. */
#include "route_api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
    struct heap_item {
        double d;
        uint32_t v;
    } * heap;
    size_t heap_n, heap_cap;
} search_t;

/* A path between S and T as edge ids of the search (virtual ones included). */
typedef struct {
    uint32_t *e;
    size_t n;
    double cost;
} apath_t;

static uint32_t edge_from(const search_t *s, uint32_t e) {
    size_t E = s->g->nedges;
    if (e < E)
        return s->g->edges[e].from;
    return e < E + s->nsrc ? s->S : s->targets[e - E - s->nsrc];
}

static uint32_t edge_to(const search_t *s, uint32_t e) {
    size_t E = s->g->nedges;
    if (e < E)
        return s->g->edges[e].to;
    return e < E + s->nsrc ? s->sources[e - E] : s->T;
}

static double edge_cost(const search_t *s, uint32_t e) {
    return e < s->g->nedges ? s->g->edges[e].minutes : 0;
}

/* ---- binary heap of (distance, node); stale entries are skipped ---- */

static int heap_push(search_t *s, double d, uint32_t v) {
    if (s->heap_n == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        void *p = realloc(s->heap, cap * sizeof *s->heap);
        if (!p)
            return TG_ERR_NOMEM;
        s->heap = p;
        s->heap_cap = cap;
    }
    size_t i = s->heap_n++;
    while (i > 0 && s->heap[(i - 1) / 2].d > d) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i].d = d;
    s->heap[i].v = v;
    return TG_OK;
}

static struct heap_item heap_pop(search_t *s) {
    struct heap_item top = s->heap[0], last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && s->heap[c + 1].d < s->heap[c].d)
            c++;
        if (s->heap[c].d >= last.d)
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n)
        s->heap[i] = last;
    return top;
}

/* ---- Dijkstra from one node to T, avoiding banned nodes and edges ---- */

static int relax(search_t *s, uint32_t u, uint32_t e) {
    if (s->banned_edge[e])
        return TG_OK;
    uint32_t v = edge_to(s, e);
    if (s->banned_node[v] || s->done[v] || (u != s->S && v < s->S && s->is_source[v]))
        return TG_OK;
    double d = s->dist[u] + edge_cost(s, e);
    if (d < s->dist[v] && isfinite(s->to_target[v])) { /* no way on to T: never worth it */
        s->dist[v] = d;
        s->prev_edge[v] = e;
        return heap_push(s, d + s->to_target[v], v);
    }
    return TG_OK;
}

static int relax_all(search_t *s, uint32_t u) {
    size_t E = s->g->nedges;
    int rc = TG_OK;
    if (u == s->S) {
        for (size_t i = 0; i < s->nsrc && rc == TG_OK; i++)
            rc = relax(s, u, (uint32_t)(E + i));
        return rc;
    }
    /* Reaching any stop of the destination is arriving, and leaving from
     * one stop of the origin never passes another: a route between two
     * cities neither ends with a walk inside the destination nor starts
     * with one inside the origin. */
    if (s->target_of[u] >= 0)
        return relax(s, u, (uint32_t)(E + s->nsrc + (size_t)s->target_of[u]));
    for (uint32_t e = s->g->first[u]; e < s->g->first[u + 1] && rc == TG_OK; e++)
        rc = relax(s, u, e);
    return rc;
}

/* The fastest path from `from` to T into *out (out->n = 0: none). */
static int dijkstra(search_t *s, uint32_t from, apath_t *out) {
    size_t nn = s->g->nnodes + 2;
    for (size_t i = 0; i < nn; i++)
        s->dist[i] = INFINITY;
    memset(s->done, 0, nn);
    s->heap_n = 0;
    s->dist[from] = 0;
    s->prev_edge[from] = RG_NONE;
    out->n = 0;
    if (!isfinite(s->to_target[from]))
        return TG_OK;
    int rc = heap_push(s, s->to_target[from], from);
    while (rc == TG_OK && s->heap_n) {
        struct heap_item it = heap_pop(s);
        if (s->done[it.v] || it.d > s->dist[it.v] + s->to_target[it.v])
            continue;
        s->done[it.v] = 1;
        if (it.v == s->T)
            break;
        rc = relax_all(s, it.v);
    }
    if (rc != TG_OK || !s->done[s->T])
        return rc;
    size_t n = 0;
    for (uint32_t v = s->T; v != from; v = edge_from(s, s->prev_edge[v]))
        n++;
    out->e = malloc((n ? n : 1) * sizeof *out->e);
    if (!out->e)
        return TG_ERR_NOMEM;
    out->n = n;
    out->cost = s->dist[s->T];
    for (uint32_t v = s->T; v != from; v = edge_from(s, s->prev_edge[v]))
        out->e[--n] = s->prev_edge[v];
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
    for (size_t i = 0; i < n + 2; i++)
        s->to_target[i] = INFINITY;
    memset(s->done, 0, n + 2);
    s->heap_n = 0;
    int rc = TG_OK;
    for (size_t j = 0; j < s->ntgt && rc == TG_OK; j++) {
        s->to_target[s->targets[j]] = 0;
        rc = heap_push(s, 0, s->targets[j]);
    }
    while (rc == TG_OK && s->heap_n && left) {
        struct heap_item it = heap_pop(s);
        if (s->done[it.v] || it.d > s->to_target[it.v])
            continue;
        s->done[it.v] = 1;
        left -= s->is_source[it.v];
        for (uint32_t k = g->rfirst[it.v]; k < g->rfirst[it.v + 1] && rc == TG_OK; k++) {
            const rg_edge_t *e = &g->edges[g->redges[k]];
            double d = it.d + e->minutes;
            if (d < s->to_target[e->from] && s->target_of[e->from] < 0) {
                s->to_target[e->from] = d;
                rc = heap_push(s, d, e->from);
            }
        }
    }
    /* the smallest key still queued is the radius; an empty queue means the
     * unsettled stops cannot reach a target at all */
    double radius = INFINITY;
    for (size_t i = 0; i < s->heap_n; i++)
        if (!s->done[s->heap[i].v] && s->heap[i].d < radius)
            radius = s->heap[i].d;
    for (size_t i = 0; i < n; i++)
        if (!s->done[i])
            s->to_target[i] = radius;
    s->to_target[s->T] = 0;
    s->to_target[s->S] = INFINITY;
    for (size_t i = 0; i < s->nsrc; i++)
        if (s->to_target[s->sources[i]] < s->to_target[s->S])
            s->to_target[s->S] = s->to_target[s->sources[i]];
    return rc;
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
    for (size_t i = 0; i < set->n; i++)
        if (same_path(&set->p[i], p))
            return 1;
    return 0;
}

static int pathset_add(pathset_t *set, apath_t p) {
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 8;
        void *q = realloc(set->p, cap * sizeof *set->p);
        if (!q)
            return TG_ERR_NOMEM;
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
        if (a->cost < b->cost || (a->cost == b->cost && a->n < b->n))
            best = i;
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
        for (size_t a = 0; a < accepted->n; a++)
            if (same_prefix(&accepted->p[a], last, i))
                s->banned_edge[accepted->p[a].e[i]] = 1;
        for (size_t r = 0; r < i; r++)
            s->banned_node[edge_from(s, last->e[r])] = 1;
        apath_t sp = {0};
        rc = dijkstra(s, spur, &sp);
        if (rc == TG_OK && sp.n) {
            apath_t full = {malloc((i + sp.n) * sizeof *full.e), i + sp.n, root_cost + sp.cost};
            if (!full.e) {
                rc = TG_ERR_NOMEM;
            } else {
                memcpy(full.e, last->e, i * sizeof *full.e);
                memcpy(full.e + i, sp.e, sp.n * sizeof *full.e);
                if (pathset_has(cand, &full) || pathset_has(accepted, &full))
                    free(full.e);
                else if ((rc = pathset_add(cand, full)) != TG_OK)
                    free(full.e);
            }
        }
        free(sp.e);
        for (size_t a = 0; a < accepted->n; a++)
            if (same_prefix(&accepted->p[a], last, i))
                s->banned_edge[accepted->p[a].e[i]] = 0;
        for (size_t r = 0; r < i; r++)
            s->banned_node[edge_from(s, last->e[r])] = 0;
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
        if (e->route != route)
            segments++;
        route = e->route;
    }
    return segments > 1 ? segments - 1 : 0;
}

/* The path without S and T, with its totals. The caller frees r.edges. */
static int to_route(const search_t *s, const apath_t *p, rg_path_t *r) {
    memset(r, 0, sizeof *r);
    r->edges = malloc((p->n ? p->n : 1) * sizeof *r->edges);
    if (!r->edges)
        return TG_ERR_NOMEM;
    for (size_t i = 0; i < p->n; i++)
        if (p->e[i] < s->g->nedges)
            r->edges[r->nedges++] = p->e[i];
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
    s->is_source = calloc(nn, 1);
    s->banned_node = calloc(nn, 1);
    s->banned_edge = calloc(ne, 1);
    if (!s->target_of || !s->dist || !s->to_target || !s->prev_edge || !s->done || !s->is_source ||
        !s->banned_node || !s->banned_edge)
        return TG_ERR_NOMEM;
    memset(s->target_of, 0xff, nn * sizeof *s->target_of);
    for (size_t j = 0; j < ntgt; j++)
        s->target_of[targets[j]] = (int32_t)j;
    for (size_t i = 0; i < nsrc; i++)
        s->is_source[sources[i]] = 1;
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
    free(s->heap);
}

static void pathset_free(pathset_t *set) {
    for (size_t i = 0; i < set->n; i++)
        free(set->p[i].e);
    free(set->p);
}

/* Paths over the transfer limit are skipped; Yen's order is kept, and at most
 * this many paths are looked at so a tight limit cannot run forever. */
#define RG_MAX_EXAMINED 64

int rg_routes(const rg_graph_t *g, const uint32_t *sources, size_t nsources,
              const uint32_t *targets, size_t ntargets, int k, int max_transfers, rg_path_t **out,
              char *errstr, size_t errlen) {
    *out = NULL;
    if (k < 1 || !nsources || !ntargets)
        return 0;
    search_t s;
    memset(&s, 0, sizeof s);
    pathset_t accepted = {0}, cand = {0};
    rg_path_t *res = calloc((size_t)k, sizeof *res);
    int nres = 0;
    int rc = res ? search_init(&s, g, sources, nsources, targets, ntargets) : TG_ERR_NOMEM;
    apath_t next = {0};
    if (rc == TG_OK)
        rc = backward(&s);
    if (rc == TG_OK)
        rc = dijkstra(&s, s.S, &next);
    while (rc == TG_OK && next.n) {
        if ((rc = pathset_add(&accepted, next)) != TG_OK) {
            free(next.e);
            break;
        }
        rg_path_t r;
        if ((rc = to_route(&s, &next, &r)) != TG_OK)
            break;
        if (max_transfers < 0 || r.transfers <= max_transfers)
            res[nres++] = r;
        else
            free(r.edges);
        if (nres == k || accepted.n >= RG_MAX_EXAMINED)
            break;
        rc = spur_candidates(&s, &accepted, &accepted.p[accepted.n - 1], &cand);
        next.n = 0;
        if (rc == TG_OK && cand.n)
            next = pathset_pop_min(&cand);
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
    if (!paths)
        return;
    for (int i = 0; i < n; i++)
        free(paths[i].edges);
    free(paths);
}
