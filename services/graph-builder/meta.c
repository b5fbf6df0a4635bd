/* The graphs table: one row per build attempt (building → active → retired,
 * or failed), with its counts, timing, Redis memory and validation report,
 * and keys_pending while unpublished keys may lie in Redis. */
#include "graph.h"
#include "tg/envelope.h"
#include "tg/pg.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gb_meta_row_clear(gb_meta_row_t *row) {
    cJSON_Delete(row->validation);
    memset(row, 0, sizeof(*row));
}

int gb_meta_get(PGconn *pg, const char *version, gb_meta_row_t *row, char *errstr, size_t errlen) {
    const char *params[] = {version};
    PGresult *res;
    memset(row, 0, sizeof(*row));
    int rc = tg_pg_exec(pg,
                        "SELECT g.dataset_version, g.status, g.node_count, g.edge_count, "
                        "g.keys_pending, g.validation::text, g.virtual_generation IS DISTINCT "
                        "FROM d.virtual_generation FROM graphs g LEFT JOIN datasets d "
                        "ON d.version = g.dataset_version WHERE g.version = $1",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "graphs: no row for %s", version);
    }
    snprintf(row->version, sizeof(row->version), "%s", version);
    row->dataset = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(row->status, sizeof(row->status), "%s", PQgetvalue(res, 0, 1));
    row->nodes = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    row->edges = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    row->keys_pending = PQgetvalue(res, 0, 4)[0] == 't';
    row->validation = cJSON_Parse(PQgetvalue(res, 0, 5));
    row->virtual_stale = PQgetvalue(res, 0, 6)[0] == 't';
    PQclear(res);
    return TG_OK;
}

/* The version ids of the specification, graph-v<epoch-ms>: a build in the
 * same millisecond as another takes the next free one. */
int gb_meta_insert(PGconn *pg, char *version, int64_t dataset, const char *status, size_t nodes,
                   size_t edges, const cJSON *validation, const char *run_id, const char *error,
                   int keys_pending, char *errstr, size_t errlen) {
    char ds[24], nn[24], ne[24];
    snprintf(ds, sizeof(ds), "%lld", (long long)dataset);
    snprintf(nn, sizeof(nn), "%zu", nodes);
    snprintf(ne, sizeof(ne), "%zu", edges);
    char *report = validation ? cJSON_PrintUnformatted(validation) : NULL;
    int64_t ms = tg_now_ms();
    int rc = TG_OK;
    for (int inserted = 0; !inserted && rc == TG_OK; ms++) {
        snprintf(version, 64, "graph-v%lld", (long long)ms);
        const char *params[] = {version,
                                ds,
                                status,
                                nn,
                                ne,
                                report ? report : "{}",
                                run_id && *run_id ? run_id : NULL,
                                error,
                                keys_pending ? "true" : "false"};
        PGresult *res;
        rc = tg_pg_exec(pg,
                        "INSERT INTO graphs (version, dataset_version, status, node_count, "
                        "edge_count, validation, run_id, error, keys_pending, "
                        "virtual_generation) "
                        "SELECT $1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, "
                        "coalesce((SELECT virtual_generation FROM datasets WHERE version = $2), 0) "
                        "ON CONFLICT (version) DO NOTHING RETURNING version",
                        9, params, &res, errstr, errlen);
        if (rc == TG_OK) {
            inserted = PQntuples(res) == 1;
            PQclear(res);
        }
    }
    free(report);
    return rc;
}

int gb_meta_pending(PGconn *pg, char ***versions, size_t *n, char *errstr, size_t errlen) {
    PGresult *res;
    *versions = NULL;
    *n = 0;
    int rc = tg_pg_exec(pg, "SELECT version FROM graphs WHERE keys_pending ORDER BY created_at", 0,
                        NULL, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    int rows = PQntuples(res);
    *versions = calloc((size_t)rows + 1, sizeof(char *));
    for (int i = 0; *versions && i < rows; i++) {
        if (((*versions)[*n] = strdup(PQgetvalue(res, i, 0))) != NULL) {
            (*n)++;
        }
    }
    PQclear(res);
    return *versions ? TG_OK : tg_fail(TG_ERR_NOMEM, errstr, errlen, "graphs: out of memory");
}

int gb_meta_fail(PGconn *pg, const char *version, const char *error, int keys_pending, char *errstr,
                 size_t errlen) {
    const char *params[] = {version, error, keys_pending ? "true" : "false"};
    return tg_pg_exec(pg,
                      "UPDATE graphs SET status = CASE WHEN status = 'building' THEN 'failed' "
                      "ELSE status END, error = COALESCE(error, $2), keys_pending = $3 "
                      "WHERE version = $1",
                      3, params, NULL, errstr, errlen);
}

int gb_meta_activate_begin(PGconn *pg, const char *version, long long build_ms,
                           long long redis_bytes, char *errstr, size_t errlen) {
    char ms[24], bytes[24];
    snprintf(ms, sizeof(ms), "%lld", build_ms);
    snprintf(bytes, sizeof(bytes), "%lld", redis_bytes);
    const char *params[] = {version, build_ms >= 0 ? ms : NULL, redis_bytes >= 0 ? bytes : NULL};
    int rc = tg_pg_begin(pg, errstr, errlen);
    if (rc == TG_OK) {
        rc = tg_pg_exec(pg,
                        "UPDATE graphs SET status = 'retired' WHERE status = 'active' "
                        "AND version <> $1",
                        1, params, NULL, errstr, errlen);
    }
    if (rc == TG_OK) {
        rc = tg_pg_exec(pg,
                        "UPDATE graphs SET status = 'active', activated_at = now(), "
                        "keys_pending = false, error = NULL, "
                        "build_ms = COALESCE($2::integer, build_ms), "
                        "redis_bytes = COALESCE($3::bigint, redis_bytes) WHERE version = $1",
                        3, params, NULL, errstr, errlen);
    }
    if (rc) {
        tg_pg_rollback(pg);
    }
    return rc;
}
