/* Read models of the API: PostgreSQL builds each JSON document (one query
 * per request, so reads stay within a few milliseconds) and the C side only
 * parses it and wraps it in the specification's envelope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator.h"
#include "tg/pg.h"
#include "views.h"

#define ISO(col) "to_char((" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MS_BETWEEN(a, b) "(extract(epoch FROM (" b ") - (" a ")) * 1000)::bigint"

/* The specification's worker metadata, from the workers table and the
 * newest step each worker ran. */
#define WORKER_JSON                                                                                \
    "json_build_object('workerId', w.worker_id, 'workerName', w.worker_name, "                     \
    "'version', w.version, 'lastRun', " ISO(                                                       \
        "l.started_at") ", "                                                                       \
                        "'lastStatus', CASE l.status WHEN 'succeeded' THEN 'success' ELSE "        \
                        "l.status END, "                                                           \
                        "'lastDuration', l.execution_ms, 'runCount', (SELECT count(*) FROM "       \
                        "run_steps c "                                                             \
                        "WHERE c.worker_id = w.worker_id AND c.started_at IS NOT NULL), "          \
                        "'timeoutMs', w.timeout_s * 1000, 'maxAttempts', w.max_attempts, "         \
                        "'critical', w.critical)"

#define WORKERS_FROM                                                                               \
    " FROM workers w LEFT JOIN LATERAL (SELECT started_at, status, execution_ms "                  \
    "FROM run_steps s WHERE s.worker_id = w.worker_id AND s.started_at IS NOT NULL "               \
    "ORDER BY s.started_at DESC LIMIT 1) l ON true "

#define STEPS_JSON                                                                                 \
    "(SELECT COALESCE(json_agg(json_build_object('workerId', s.worker_id, "                        \
    "'status', s.status, 'attempts', s.attempts, 'startedAt', " ISO(                               \
        "s.started_at") ", "                                                                       \
                        "'finishedAt', " ISO(                                                      \
                            "s.finished_at") ", 'executionTimeMs', s.execution_ms, "               \
                                             "'message', s.message, 'error', s.error, "            \
                                             "'dataProcessed', s.data_processed) "                 \
                                             "ORDER BY w.position), '[]') FROM run_steps s JOIN "  \
                                             "workers w USING (worker_id) "                        \
                                             "WHERE s.run_id = r.run_id)"

#define RUN_FIELDS                                                                                 \
    "'runId', r.run_id, 'sourceId', r.source_id, 'trigger', r.trigger, "                           \
    "'status', r.status, 'force', r.force, 'onlyWorker', r.only_worker, "                          \
    "'message', r.message, 'datasetVersion', r.dataset_version, "                                  \
    "'graphVersion', r.graph_version, 'createdAt', " ISO(                                          \
        "r.created_at") ", "                                                                       \
                        "'startedAt', " ISO("r.started_at") ", 'finishedAt', " ISO(                \
                            "r.finished_at") ", "                                                  \
                                             "'durationMs', " MS_BETWEEN(                          \
                                                 "COALESCE(r.started_at, r.created_at)",           \
                                                 "COALESCE(r.finished_at, now())")

/* Runs sql and parses column 0 of each row as JSON into an array (or, with
 * single, returns row 0's document; NULL with *empty when there is none). */
static cJSON *json_rows(PGconn *pg, const char *sql, int n, const char *const *params, int single,
                        int *empty, char *errstr, size_t errlen) {
    PGresult *res;
    if (tg_pg_exec(pg, sql, n, params, &res, errstr, errlen) != TG_OK) {
        return NULL;
    }
    cJSON *out = single ? NULL : cJSON_CreateArray();
    int rows = PQntuples(res);
    for (int i = 0; i < rows; i++) {
        cJSON *doc =
            tg_json_parse(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), TG_JSON_MAX_DEPTH);
        if (single) {
            out = doc;
            break;
        }
        cJSON_AddItemToArray(out, doc ? doc : cJSON_CreateNull());
    }
    if (empty) {
        *empty = rows == 0;
    }
    if (single && rows > 0 && !out) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    PQclear(res);
    return out;
}

cJSON *views_workers(PGconn *pg, char *errstr, size_t errlen) {
    cJSON *list = json_rows(pg, "SELECT " WORKER_JSON WORKERS_FROM "ORDER BY w.position", 0, NULL,
                            0, NULL, errstr, errlen);
    if (!list) {
        return NULL;
    }
    cJSON *out = cJSON_CreateObject(), *workers = cJSON_CreateObject(), *w;
    cJSON_AddTrueToObject(out, "success");
    int count = cJSON_GetArraySize(list);
    while ((w = cJSON_DetachItemFromArray(list, 0)) != NULL) {
        cJSON_AddItemToObject(workers, tg_json_str(w, "workerId"), w);
    }
    cJSON_Delete(list);
    cJSON_AddItemToObject(out, "workers", workers);
    cJSON_AddNumberToObject(out, "count", count);
    return out;
}

cJSON *views_worker(PGconn *pg, const char *worker_id, char *errstr, size_t errlen) {
    const char *params[] = {worker_id};
    int empty = 0;
    cJSON *w = json_rows(pg, "SELECT " WORKER_JSON WORKERS_FROM "WHERE w.worker_id = $1", 1, params,
                         1, &empty, errstr, errlen);
    if (!w) {
        if (empty) {
            tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "unknown worker %s", worker_id);
        }
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddTrueToObject(out, "success");
    cJSON_AddItemToObject(out, "worker", w);
    return out;
}

cJSON *views_pipeline(PGconn *pg, const char *source_id, char *errstr, size_t errlen) {
    const char *params[] = {source_id};
    int empty = 0;
    /* The active run with its steps; a step that timed out or waits for a
     * retry shows here, so a stuck run is visible. */
    cJSON *run = json_rows(pg,
                           "SELECT json_build_object(" RUN_FIELDS ", 'steps', " STEPS_JSON ") "
                           "FROM runs r WHERE r.source_id = $1 AND r.status IN "
                           "('queued', 'running') ORDER BY r.created_at LIMIT 1",
                           1, params, 1, &empty, errstr, errlen);
    if (!run && !empty) {
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddTrueToObject(out, "success");
    cJSON *p = cJSON_AddObjectToObject(out, "pipeline");
    cJSON_AddBoolToObject(p, "isRunning", run != NULL);
    const char *ids[] = {"odata-sync-worker", "virtual-entities-generator", "graph-builder"};
    cJSON_AddItemToObject(p, "workers", cJSON_CreateStringArray(ids, 3));
    if (run) {
        cJSON_AddStringToObject(p, "activeRunId", tg_json_str(run, "runId"));
        cJSON_AddItemToObject(p, "activeRun", run);
    } else {
        cJSON_AddNullToObject(p, "activeRunId");
    }
    /* The schedule and the virtual horizon, for an operator asking "what
     * comes next" (docs/operations.md). */
    cJSON *next =
        json_rows(pg,
                  "SELECT json_build_object('lastScheduledRun', to_char(s.last_tick_at "
                  "AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                  "'nextScheduledRun', to_char((s.last_tick_at + make_interval(secs => "
                  "s.interval_s)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                  "'scheduleIntervalS', s.interval_s, 'virtualFlightsThrough', "
                  "(SELECT virtual_through FROM datasets WHERE source_id = $1 "
                  "ORDER BY version DESC LIMIT 1)) FROM schedule s WHERE s.source_id = $1",
                  1, params, 1, &empty, errstr, errlen);
    if (next) {
        for (cJSON *item = next->child; item; item = item->next) {
            cJSON_AddItemToObject(p, item->string, cJSON_Duplicate(item, 1));
        }
        cJSON_Delete(next);
    } else {
        cJSON_AddNullToObject(p, "nextScheduledRun");
    }
    return out;
}

cJSON *views_runs(PGconn *pg, long limit, long offset, const char *status, const char *trigger,
                  char *errstr, size_t errlen) {
    char lim[24], off[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(off, sizeof off, "%ld", offset);
    const char *params[] = {status, trigger, lim, off};
    PGresult *res;
    if (tg_pg_exec(pg,
                   "SELECT json_build_object(" RUN_FIELDS ", 'steps', " STEPS_JSON "), "
                   "count(*) OVER () FROM runs r "
                   "WHERE ($1::text IS NULL OR r.status = $1) "
                   "AND ($2::text IS NULL OR r.trigger = $2) "
                   "ORDER BY r.created_at DESC, r.run_id LIMIT $3::int OFFSET $4::int",
                   4, params, &res, errstr, errlen) != TG_OK) {
        return NULL;
    }
    cJSON *out = cJSON_CreateObject(), *runs = cJSON_CreateArray();
    cJSON_AddTrueToObject(out, "success");
    for (int i = 0; i < PQntuples(res); i++) {
        cJSON *run =
            tg_json_parse(PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0), TG_JSON_MAX_DEPTH);
        cJSON_AddItemToArray(runs, run ? run : cJSON_CreateNull());
    }
    cJSON_AddItemToObject(out, "runs", runs);
    cJSON_AddNumberToObject(out, "count", PQntuples(res));
    cJSON_AddNumberToObject(out, "total", PQntuples(res) ? atof(PQgetvalue(res, 0, 1)) : 0);
    cJSON_AddNumberToObject(out, "limit", (double)limit);
    cJSON_AddNumberToObject(out, "offset", (double)offset);
    PQclear(res);
    return out;
}

static cJSON *run_doc(PGconn *pg, const char *run_id, int *notfound, char *errstr, size_t errlen) {
    const char *params[] = {run_id};
    cJSON *run = json_rows(pg,
                           "SELECT json_build_object(" RUN_FIELDS ", 'steps', " STEPS_JSON ") "
                           "FROM runs r WHERE r.run_id = $1",
                           1, params, 1, notfound, errstr, errlen);
    if (!run && *notfound) {
        tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "unknown run %s", run_id);
    }
    return run;
}

cJSON *views_run(PGconn *pg, const char *run_id, int *notfound, char *errstr, size_t errlen) {
    cJSON *run = run_doc(pg, run_id, notfound, errstr, errlen);
    if (!run) {
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddTrueToObject(out, "success");
    cJSON_AddItemToObject(out, "run", run);
    return out;
}

/* ---- the specification's execute bodies -------------------------------- */

/* {success, workerId, executionTimeMs, message, dataProcessed} of a step. */
static cJSON *worker_result(const cJSON *step) {
    const char *status = tg_json_str(step, "status");
    const char *message = tg_json_str(step, "message");
    int ok = status && (!strcmp(status, "succeeded") || !strcmp(status, "skipped"));
    cJSON *r = cJSON_CreateObject();
    cJSON_AddBoolToObject(r, "success", ok);
    cJSON_AddStringToObject(r, "workerId", tg_json_str(step, "workerId"));
    cJSON_AddNumberToObject(r, "executionTimeMs", tg_json_num(step, "executionTimeMs", 0));
    cJSON_AddStringToObject(r, "message",
                            ok && message                ? message
                            : tg_json_str(step, "error") ? tg_json_str(step, "error")
                                                         : (status ? status : ""));
    cJSON_AddStringToObject(r, "status", status ? status : "");
    cJSON_AddNumberToObject(r, "attempts", tg_json_num(step, "attempts", 0));
    cJSON *data = cJSON_GetObjectItemCaseSensitive(step, "dataProcessed");
    cJSON_AddItemToObject(r, "dataProcessed",
                          data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
    return r;
}

static cJSON *single_result(const cJSON *run, const cJSON *steps, int ok) {
    const char *only = tg_json_str(run, "onlyWorker");
    cJSON *out = cJSON_CreateObject(), *step = NULL, *s;
    char message[1200];
    cJSON_ArrayForEach(s, steps) {
        if (only && !strcmp(only, tg_json_str(s, "workerId") ? tg_json_str(s, "workerId") : "")) {
            step = s;
        }
    }
    snprintf(message, sizeof message,
             ok ? "Worker %s executed successfully" : "Worker %s failed: %s", only,
             tg_json_str(run, "message") ? tg_json_str(run, "message") : "no result");
    cJSON_AddBoolToObject(out, "success", ok);
    cJSON_AddStringToObject(out, "message", message);
    if (step) {
        cJSON_AddItemToObject(out, "result", worker_result(step));
    }
    return out;
}

static cJSON *pipeline_result(const cJSON *run, const cJSON *steps, int ok) {
    cJSON *out = cJSON_CreateObject(), *results = cJSON_CreateArray(), *s;
    const char *msg = tg_json_str(run, "message");
    char message[1200];
    int executed = 0;
    cJSON_ArrayForEach(s, steps) {
        const char *st = tg_json_str(s, "status");
        if (st && strcmp(st, "queued") && strcmp(st, "cancelled")) {
            executed++;
            cJSON_AddItemToArray(results, worker_result(s));
        }
    }
    if (ok) {
        snprintf(message, sizeof message, "Pipeline executed successfully%s%s",
                 msg && !strncmp(msg, "No changes", 10) ? ": " : "",
                 msg && !strncmp(msg, "No changes", 10) ? msg : "");
    } else {
        snprintf(message, sizeof message, "Pipeline %s: %s", tg_json_str(run, "status"),
                 msg ? msg : "no result");
    }
    cJSON_AddBoolToObject(out, "success", ok);
    cJSON_AddStringToObject(out, "message", message);
    cJSON_AddNumberToObject(out, "totalExecutionTimeMs", tg_json_num(run, "durationMs", 0));
    cJSON_AddNumberToObject(out, "workersExecuted", executed);
    cJSON_AddItemToObject(out, "workerResults", results);
    return out;
}

cJSON *views_execute_result(PGconn *pg, const char *run_id, int *succeeded, char *errstr,
                            size_t errlen) {
    int notfound = 0;
    cJSON *run = run_doc(pg, run_id, &notfound, errstr, errlen);
    if (!run) {
        return NULL;
    }
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(run, "steps");
    *succeeded = !strcmp(tg_json_str(run, "status") ? tg_json_str(run, "status") : "", "succeeded");
    cJSON *out = tg_json_str(run, "onlyWorker") ? single_result(run, steps, *succeeded)
                                                : pipeline_result(run, steps, *succeeded);
    cJSON_AddStringToObject(out, "runId", run_id);
    cJSON_AddStringToObject(out, "status", tg_json_str(run, "status"));
    cJSON_Delete(run);
    return out;
}
