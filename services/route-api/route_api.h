/* route-api's model: one graph version held in memory in a compact form
 * (adjacency arrays, strings interned), the shortest-path search over it, and
 * the snapshot that HTTP threads share while a newer version loads beside it. */
#ifndef ROUTE_API_H
#define ROUTE_API_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "tg/error.h"

#define RG_NONE UINT32_MAX

/* A directed edge of the graph; strings are offsets into the graph's arena. */
typedef struct {
    uint32_t from, to;  /* node indexes */
    uint32_t transport; /* arena offset of transportType ("" when absent) */
    uint32_t route;     /* arena offset of routeId ("" for transfers) */
    double minutes, km;
} rg_edge_t;

typedef struct {
    uint32_t id, name, city;       /* arena offsets */
    uint32_t name_fold, city_fold; /* case-folded name and city, for search */
    double lat, lon;               /* NAN when absent */
} rg_node_t;

/* One loaded version. Immutable once built; shared by reference count. */
typedef struct rg_graph_s {
    char version[64];
    int64_t loaded_at_ms; /* wall clock, when it finished loading */
    double load_ms;       /* how long loading took */
    size_t nnodes, nedges;
    rg_node_t *nodes;
    uint32_t *first;  /* nnodes + 1 offsets into edges: node i's out-edges */
    rg_edge_t *edges; /* sorted by from */
    uint32_t *rfirst; /* nnodes + 1 offsets into redges: node i's in-edges */
    uint32_t *redges; /* edge indexes sorted by to, for searches towards a stop */
    char *arena;      /* every string, NUL-terminated */
    size_t arena_len;
    uint32_t *index; /* open-addressing table of node indexes, by id */
    size_t index_cap;
    int refs; /* guarded by the holder's lock */
} rg_graph_t;

static inline const char *rg_str(const rg_graph_t *g, uint32_t off) {
    return g->arena + off;
}

/* ---- building (graph.c) ---- */

typedef struct rg_builder_s rg_builder_t;

rg_builder_t *rg_builder_new(void);
/* Strings are copied. lat/lon may be NAN; name/city may be NULL. */
int rg_builder_add_node(rg_builder_t *b, const char *id, const char *name, const char *city,
                        double lat, double lon) TG_WARN_UNUSED;
int rg_builder_add_edge(rg_builder_t *b, const char *from, const char *to, double minutes,
                        double km, const char *transport, const char *route) TG_WARN_UNUSED;
/* Turns the builder into a graph and frees the builder (also on failure).
 * Fails when an edge names a stop that is not a node or a weight is not
 * positive. The caller frees the graph with rg_graph_free(). */
/* Frees a builder that will not be finished (NULL is fine). */
void rg_builder_free(rg_builder_t *b);
rg_graph_t *rg_builder_finish(rg_builder_t *b, const char *version, char *errstr, size_t errlen);
void rg_graph_free(rg_graph_t *g);

/* The node index of a stop id, or RG_NONE. */
uint32_t rg_find(const rg_graph_t *g, const char *id);

/* Case-folded copy of s (Unicode, Russian and Latin alike) for substring
 * search. The caller frees it with free(); NULL when out of memory or s is
 * not UTF-8. */
char *rg_fold(const char *s);

/* Up to max node indexes whose folded name or city contains query_fold (and
 * whose folded city contains city_fold when given). Returns how many. */
size_t rg_search(const rg_graph_t *g, const char *query_fold, const char *city_fold, uint32_t *out,
                 size_t max);
/* Every node of a city, compared folded and whole (not a substring), without
 * a settlement prefix such as "г. ". */
size_t rg_city_nodes(const rg_graph_t *g, const char *city_fold, uint32_t *out, size_t max);

/* ---- paths (paths.c) ---- */

typedef struct {
    uint32_t *edges; /* edge indexes, in order */
    size_t nedges;
    double minutes, km;
    int transfers;
} rg_path_t;

/* Up to k fastest loopless paths (Yen's algorithm over Dijkstra with a binary
 * heap) from any of the sources to any of the targets, in order of total
 * minutes, each with at most max_transfers transfers (-1: no limit). A path
 * ends at the first target it reaches and passes no source but its first
 * stop: between two cities, arriving at any stop of the destination is
 * arriving. sources and targets must not share a stop.
 * Returns how many were found (0: no path, *out NULL) or a negative
 * tg_err_t. The caller frees the paths with rg_paths_free(). */
int rg_routes(const rg_graph_t *g, const uint32_t *sources, size_t nsources,
              const uint32_t *targets, size_t ntargets, int k, int max_transfers, rg_path_t **out,
              char *errstr, size_t errlen);
void rg_paths_free(rg_path_t *paths, int n);

/* Transfers of a path: changes of vehicle, i.e. ride segments (runs of
 * non-TRANSFER legs with one routeId) minus one. */
int rg_path_transfers(const rg_graph_t *g, const uint32_t *edges, size_t n);

/* ---- Redis (load.c) ---- */

/* Reads graph:version; out is "" when unset. */
int rg_redis_active(redisContext *c, char *out, size_t outlen, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;
/* Loads a version in the specification's key format. The caller frees the
 * graph with rg_graph_free(). A missing key (the version was deleted while
 * loading) gives TG_ERR_NOTFOUND. */
rg_graph_t *rg_redis_load(redisContext *c, const char *version, int *rc, char *errstr,
                          size_t errlen);

/* ---- the served snapshot (load.c) ---- */

/* Takes a reference to the version being served (NULL before the first load).
 * Release it with rg_release(). Thread-safe. */
rg_graph_t *rg_acquire(void);
void rg_release(rg_graph_t *g);
/* Serves g from now on; the previous version is freed when its last reader
 * releases it. Takes ownership of g. */
void rg_swap(rg_graph_t *g);

#endif
