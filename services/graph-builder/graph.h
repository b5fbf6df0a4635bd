/* graph-builder internals: the in-memory transport graph (stops as nodes,
 * routes and transfers as directed edges), its validation report, and the
 * PostgreSQL and Redis steps that load, record and publish it. */
#ifndef GRAPH_BUILDER_GRAPH_H
#define GRAPH_BUILDER_GRAPH_H

#include "tg/buf.h"
#include "tg/error.h"
#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the graph model (graph.c) ----------------------------------------- */

typedef struct {
    const char *id, *name;
    const char *city; /* NULL when unknown */
    double lat, lon;  /* NAN when unknown */
} gb_node_t;

/* A stored edge takes 32 bytes and its route id's bytes: its stops are
 * node indexes, its transport type an index into the graph's interned
 * types, its route id an offset into one buffer; the gb_edge_* functions
 * give them back as strings. */
typedef struct {
    double weight;               /* minutes; may be invalid until validated */
    double distance;             /* km; NAN when unknown */
    uint32_t route;              /* offset in route_ids; GB_NO_ROUTE for transfers */
    int32_t from, to;            /* node indexes; < 0 when that stop does not exist */
    uint16_t transport;          /* index in transports; 0 when unknown */
    uint8_t weight_from_flights; /* weight is the median of the route's flights */
} gb_edge_t;

#define GB_NO_ROUTE UINT32_MAX
#define GB_MAX_TRANSPORTS 256 /* distinct transport types of one dataset */
#define GB_TRANSFER 1         /* the transport index of "TRANSFER", always there */

/* A city whose stops all get transfers: city_stops[start .. end). */
typedef struct {
    uint32_t start, end;
} gb_city_t;

typedef struct gb_arena_s gb_arena_t;

/* Edges are the routes (stored, in load order) followed by the transfers.
 * Transfers are most of the edges and follow from the stops alone, so they
 * are not stored: each stop of a transfer city has one to every other stop
 * of it, city by city in tg_city_key order, each city's stops in node
 * order. gb_for_each_edge walks both. */
typedef struct {
    gb_node_t *nodes;
    size_t n_nodes, cap_nodes;
    gb_edge_t *routes; /* the edges of routes and virtual routes */
    size_t n_routes, cap_routes;
    tg_buf_t route_ids;                        /* every route's id, NUL-terminated, back to back */
    const char *transports[GB_MAX_TRANSPORTS]; /* [0] = NULL: unknown */
    size_t n_transports;
    const char **missing_ids; /* ids of edge ends that are no stop: end -1 - k is [k] */
    size_t n_missing, cap_missing;
    int *slots; /* id -> node index, open addressing, -1 = empty */
    size_t n_slots;
    size_t *out_start;   /* after gb_graph_index: routes of node i are */
    uint32_t *out_edges; /* out_edges[out_start[i] .. out_start[i+1]) */
    double transfer_minutes;
    gb_city_t *cities; /* transfer cities (gb_add_transfers) */
    size_t n_cities;
    uint32_t *city_stops;   /* node indexes, city by city */
    int32_t *city_of;       /* per node: its transfer city, or -1; NULL before transfers */
    size_t duplicate_stops; /* stops whose id was already loaded (dropped) */
    const char *duplicate_stop_samples[5];
    size_t transfer_edges;
    size_t big_cities; /* cities with too many stops for transfers */
    const char *big_city_samples[5];
    size_t isolated_stops; /* stops no edge touched, left out (gb_graph_drop_isolated) */
    const char *isolated_stop_samples[5]; /* "id (name)" */
    gb_arena_t *arena;                    /* every string of the nodes, types and samples */
} gb_graph_t;

/* Creates an empty graph; the caller frees it with gb_graph_free(). */
gb_graph_t *gb_graph_new(void);
void gb_graph_free(gb_graph_t *g);

/* Adds a stop (strings are copied). A second stop with the same id is
 * counted in duplicate_stops and dropped: the first one loaded wins. */
int gb_add_node(gb_graph_t *g, const char *id, const char *name, const char *city, double lat,
                double lon) TG_WARN_UNUSED;

/* Adds the directed edge of a route (strings copied); ends are resolved
 * against the stops added so far, so add every stop first. TG_ERR_NOMEM, or
 * TG_ERR_INVALID for a transport type beyond GB_MAX_TRANSPORTS - 2 others. */
int gb_add_edge(gb_graph_t *g, const char *from_id, const char *to_id, double weight,
                double distance, const char *transport, const char *route_id,
                int weight_from_flights) TG_WARN_UNUSED;

/* Returns the index of stop id, or -1. */
int gb_find_node(const gb_graph_t *g, const char *id);

/* The strings of an edge, owned by the graph: its stop ids (also of a stop
 * that does not exist), its transport type (NULL when unknown) and route id
 * (NULL for transfers). */
const char *gb_edge_from_id(const gb_graph_t *g, const gb_edge_t *e);
const char *gb_edge_to_id(const gb_graph_t *g, const gb_edge_t *e);
const char *gb_edge_transport(const gb_graph_t *g, const gb_edge_t *e);
const char *gb_edge_route_id(const gb_graph_t *g, const gb_edge_t *e);

/* Adds TRANSFER edges both ways between every two stops of the same city
 * (the same tg_city_key; stops without a valid city name get none), weight
 * minutes, distance the great-circle one; cities with more than max_stops
 * stops get none (counted in big_cities). Call once, after the last stop. */
int gb_add_transfers(gb_graph_t *g, double minutes, size_t max_stops) TG_WARN_UNUSED;

/* Every edge: routes and transfers. */
size_t gb_edge_count(const gb_graph_t *g);

/* The transfer city of node i (an index in cities), or -1. */
int32_t gb_stop_city(const gb_graph_t *g, size_t i);

/* The transfer from node a to node b (of the same transfer city). */
gb_edge_t gb_transfer_edge(const gb_graph_t *g, int32_t a, int32_t b);

/* Calls fn for every edge in order (routes as loaded, then the transfers);
 * the first non-zero return ends the walk and is returned. e lives only
 * during the call. */
typedef int (*gb_edge_fn)(const gb_graph_t *g, const gb_edge_t *e, void *arg);
int gb_for_each_edge(const gb_graph_t *g, gb_edge_fn fn, void *arg);

/* Builds the outgoing-route index (out_start/out_edges); call after the
 * last edge was added. */
int gb_graph_index(gb_graph_t *g) TG_WARN_UNUSED;

/* Leaves out the stops that no edge (route, virtual route or transfer)
 * touches: they are counted in isolated_stops, the first five named in
 * isolated_stop_samples, and the graph is indexed again without them, so a
 * published graph never holds a node nobody can reach. Needs gb_graph_index;
 * call after the last edge was added. */
int gb_graph_drop_isolated(gb_graph_t *g) TG_WARN_UNUSED;

/* Appends the node / edge JSON of the Redis format to b. */
int gb_node_json(tg_buf_t *b, const gb_node_t *n) TG_WARN_UNUSED;
int gb_edge_json(tg_buf_t *b, const gb_graph_t *g, const gb_edge_t *e) TG_WARN_UNUSED;
/* Appends the JSON array of node i's outgoing edges, its routes then its
 * transfers. Needs gb_graph_index. */
int gb_neighbors_json(tg_buf_t *b, const gb_graph_t *g, size_t i) TG_WARN_UNUSED;

/* ---- validation (validate.c) ------------------------------------------- */

#define GB_MAX_SAMPLES 5
#define GB_MAX_ISSUES 16

typedef struct {
    const char *severity; /* "error", "warning", "info" */
    const char *code;     /* "invalid_weight", ... */
    const char *what;     /* what count counts: "edges", "stops" */
    size_t count;
    char *samples[GB_MAX_SAMPLES];
    int n_samples;
} gb_issue_t;

typedef struct {
    gb_issue_t issues[GB_MAX_ISSUES];
    int n_issues;
    size_t errors, warnings; /* sums of the counts of error / warning issues */
} gb_report_t;

/* Checks the five rules of the specification (errors) and the data-quality
 * warnings; needs gb_graph_index. Returns TG_OK, or TG_ERR_NOMEM when a rule
 * could not be checked: the report is then incomplete and the graph must not
 * be published. Either way the caller frees r with gb_report_free(). */
int gb_validate(const gb_graph_t *g, gb_report_t *r) TG_WARN_UNUSED;
void gb_report_free(gb_report_t *r);

/* The speed above which an edge of this transport type is implausible, in
 * km/h; 0 = not checked (transfers). */
double gb_speed_limit(const char *transport);

/* {"errors":n,"warnings":n,"issues":[...]}; the caller deletes it. */
cJSON *gb_report_json(const gb_report_t *r);

/* One line naming each error rule with its count and samples. */
void gb_report_errors_text(const gb_report_t *r, char *out, size_t outlen);

/* The issue with this code, or NULL. */
const gb_issue_t *gb_report_find(const gb_report_t *r, const char *code);

/* ---- PostgreSQL: the dataset (load.c) and the graphs rows (meta.c) ---- */

/* Finds the dataset to build: requested when non-zero (it must exist), else
 * the latest of source_id. TG_ERR_NOTFOUND when there is none. */
int gb_dataset_resolve(PGconn *pg, int64_t requested, const char *source_id, int64_t *out,
                       char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Loads stops, virtual stops, routes and virtual routes of the dataset (route
 * weights from the median flight duration when the route has flights) in
 * one REPEATABLE READ read-only transaction. */
int gb_load(PGconn *pg, int64_t dataset, gb_graph_t *g, char *errstr, size_t errlen) TG_WARN_UNUSED;

typedef struct {
    char version[64];
    int64_t dataset;
    char status[16];
    long long nodes, edges;
    int keys_pending;
    int virtual_stale; /* the dataset's virtual data changed since this graph was built */
    cJSON *validation; /* owned; gb_meta_row_clear frees it */
} gb_meta_row_t;

void gb_meta_row_clear(gb_meta_row_t *row);

/* Reads the graphs row of version; TG_ERR_NOTFOUND when there is none. */
int gb_meta_get(PGconn *pg, const char *version, gb_meta_row_t *row, char *errstr,
                size_t errlen) TG_WARN_UNUSED;

/* Inserts a graphs row under a fresh graph-v<epoch-ms> version id (bumped
 * until unique) written into version (64 bytes), committed at once. */
int gb_meta_insert(PGconn *pg, char *version, int64_t dataset, const char *status, size_t nodes,
                   size_t edges, const cJSON *validation, const char *run_id, const char *error,
                   int keys_pending, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* The versions whose keys may still lie in Redis unpublished; the caller
 * frees each string and the array. */
int gb_meta_pending(PGconn *pg, char ***versions, size_t *n, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;

/* Marks a building row failed with the reason (an earlier reason is kept);
 * keys_pending says whether its keys may still be in Redis. */
int gb_meta_fail(PGconn *pg, const char *version, const char *error, int keys_pending, char *errstr,
                 size_t errlen) TG_WARN_UNUSED;

/* Opens the activation transaction: every other active row becomes retired
 * and this one active. The caller commits once graph:version switched, or
 * rolls back. */
int gb_meta_activate_begin(PGconn *pg, const char *version, long long build_ms,
                           long long redis_bytes, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* ---- Redis (publish.c) ------------------------------------------------- */

#define GB_KEY_VERSION "graph:version"
#define GB_KEY_VERSIONS "graph:versions"

/* Writes nodes, node and neighbors keys of version, pipelined. When
 * fail_after_keys > 0 the connection is cut after that many keys (test-only
 * fault injection, GRAPH_FAIL_AFTER_KEYS). */
int gb_redis_publish(redisContext *c, const gb_graph_t *g, const char *version,
                     long fail_after_keys, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Checks that every key of version is there (SCARD and EXISTS). */
int gb_redis_verify(redisContext *c, const gb_graph_t *g, const char *version, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;

/* Atomically points graph:version at version if its nodes key exists and
 * pushes it on graph:versions; the previous version goes into previous. */
int gb_redis_activate(redisContext *c, const char *version, char *previous, size_t prevlen,
                      char *errstr, size_t errlen) TG_WARN_UNUSED;

/* GET graph:version into out ("" when unset). */
int gb_redis_current(redisContext *c, char *out, size_t outlen, char *errstr,
                     size_t errlen) TG_WARN_UNUSED;

/* Non-zero when graph:{version}:nodes exists. */
int gb_redis_has_version(redisContext *c, const char *version);

/* Deletes every key of version (UNLINK in batches), unless it is the active
 * one: then *was_active is set and nothing is deleted. */
int gb_redis_drop_version(redisContext *c, const char *version, int *was_active, char *errstr,
                          size_t errlen) TG_WARN_UNUSED;

/* Deletes the versions of graph:versions beyond the newest keep; writes how
 * many were deleted into *dropped. */
int gb_redis_retain(redisContext *c, long keep, int *dropped, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;

/* The sum of MEMORY USAGE over every key of version: its memory, exact
 * even while other clients use the same Redis. */
int gb_redis_version_bytes(redisContext *c, const gb_graph_t *g, const char *version,
                           long long *bytes, char *errstr, size_t errlen) TG_WARN_UNUSED;

/* INFO memory's used_memory, or -1. */
long long gb_redis_used_memory(redisContext *c);

#endif
