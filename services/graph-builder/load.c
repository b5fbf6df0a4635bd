/* Loading one dataset version from PostgreSQL: stops and virtual stops
 * become nodes, routes and virtual routes edges, each row added to the graph
 * as it arrives (tg_pg_stream), so no result set is ever held whole. Flights
 * are only read aggregated per route (their median duration). */
#include "graph.h"
#include "tg/log.h"
#include "tg/pg.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gb_dataset_resolve(PGconn *pg, int64_t requested, const char *source_id, int64_t *out,
                       char *errstr, size_t errlen) {
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)requested);
    const char *by_version[] = {v};
    const char *by_source[] = {source_id && *source_id ? source_id : "default"};
    PGresult *res;
    int rc = requested > 0 ? tg_pg_exec(pg, "SELECT version FROM datasets WHERE version = $1", 1,
                                        by_version, &res, errstr, errlen)
                           : tg_pg_exec(pg,
                                        "SELECT max(version) FROM datasets WHERE source_id = $1 "
                                        "HAVING max(version) IS NOT NULL",
                                        1, by_source, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (requested > 0) {
            return tg_fail(TG_ERR_NOTFOUND, errstr, errlen,
                           "No data: dataset version %lld does not exist", (long long)requested);
        }
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "No data: source %s has no dataset",
                       by_source[0]);
    }
    *out = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return TG_OK;
}

static double num_or_nan(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NAN : strtod(PQgetvalue(res, row, col), NULL);
}

static const char *str_or_null(const PGresult *res, int row, int col) {
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Real stops first: when a virtual stop repeats a real id, the real one wins. */
static const char *const stops_sql[] = {
    "SELECT id, name, city_name, latitude, longitude FROM stops WHERE dataset_version = $1 "
    "ORDER BY id",
    "SELECT id, name, city_name, latitude, longitude FROM virtual_stops "
    "WHERE dataset_version = $1 ORDER BY id",
};

/* A route's weight is the median duration of its flights when it has any
 * (the timetable is what a traveller gets), else its duration_minutes. */
static const char *const routes_sql =
    "WITH fl AS (SELECT route_id, percentile_cont(0.5) WITHIN GROUP "
    "  (ORDER BY EXTRACT(EPOCH FROM arrival_time - departure_time) / 60.0) AS minutes "
    "  FROM flights WHERE dataset_version = $1 GROUP BY route_id) "
    "SELECT r.id, r.from_stop_id, r.to_stop_id, r.transport_type, "
    "  COALESCE(fl.minutes, r.duration_minutes), r.distance_km, fl.minutes IS NOT NULL "
    "FROM routes r LEFT JOIN fl ON fl.route_id = r.id WHERE r.dataset_version = $1 "
    "UNION ALL "
    "SELECT v.id, v.from_stop_id, v.to_stop_id, v.transport_type, "
    "  COALESCE(fl.minutes, v.duration_minutes), v.distance_km, fl.minutes IS NOT NULL "
    "FROM virtual_routes v LEFT JOIN fl ON fl.route_id = v.id WHERE v.dataset_version = $1 "
    "ORDER BY 1";

static int add_stop(const PGresult *row, void *graph, char *errstr, size_t errlen) {
    int rc = gb_add_node(graph, PQgetvalue(row, 0, 0), PQgetvalue(row, 0, 1),
                         str_or_null(row, 0, 2), num_or_nan(row, 0, 3), num_or_nan(row, 0, 4));
    return rc ? tg_fail(rc, errstr, errlen, "graph: out of memory loading stops") : TG_OK;
}

static int add_route(const PGresult *row, void *graph, char *errstr, size_t errlen) {
    int rc = gb_add_edge(graph, PQgetvalue(row, 0, 1), PQgetvalue(row, 0, 2), num_or_nan(row, 0, 4),
                         num_or_nan(row, 0, 5), str_or_null(row, 0, 3), PQgetvalue(row, 0, 0),
                         PQgetvalue(row, 0, 6)[0] == 't');
    if (rc == TG_ERR_INVALID) {
        return tg_fail(
            rc, errstr, errlen,
            "graph: more than %d transport types besides TRANSFER (route %s: %s); not built",
            GB_MAX_TRANSPORTS - 2, PQgetvalue(row, 0, 0), PQgetvalue(row, 0, 3));
    }
    return rc ? tg_fail(rc, errstr, errlen, "graph: out of memory loading routes") : TG_OK;
}

int gb_load(PGconn *pg, int64_t dataset, gb_graph_t *g, char *errstr, size_t errlen) {
    char v[24];
    snprintf(v, sizeof(v), "%lld", (long long)dataset);
    const char *params[] = {v};
    /* One snapshot: stops and routes of the same moment, even if a pruning
     * job deletes rows meanwhile. */
    int rc = tg_pg_exec(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL,
                        errstr, errlen);
    /* Every query here reads a whole dataset version. Statistics gathered
     * before that version was written say it has one row, and the planner
     * then joins routes to the flight aggregate with a nested loop: 80 s
     * instead of 0.5 s at 100,000 edges. Hash joins are always right here. */
    if (rc == TG_OK) {
        rc = tg_pg_exec(pg, "SET LOCAL enable_nestloop = off", 0, NULL, NULL, errstr, errlen);
    }
    for (size_t i = 0; i < 2 && rc == TG_OK; i++) {
        rc = tg_pg_stream(pg, stops_sql[i], 1, params, add_stop, g, errstr, errlen);
    }
    if (rc == TG_OK) {
        rc = tg_pg_stream(pg, routes_sql, 1, params, add_route, g, errstr, errlen);
    }
    if (rc == TG_OK) {
        rc = tg_pg_commit(pg, errstr, errlen);
    }
    if (rc) {
        tg_pg_rollback(pg);
    } else {
        tg_debug("Loaded dataset %s: %zu stops, %zu routes", v, g->n_nodes, g->n_routes);
    }
    return rc;
}
