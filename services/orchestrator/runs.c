/* Run and step state in PostgreSQL. Every transition is one statement whose
 * WHERE clause says from which states it may happen, so events that arrive
 * late, twice or out of order cannot move a run backwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runs.h"
#include "tg/pg.h"

#define ACTIVE "('queued', 'running')"

static void num(char *out, size_t len, long long v) {
    snprintf(out, len, "%lld", v);
}

static uint64_t generation;

uint64_t runs_generation(void) {
    return __atomic_load_n(&generation, __ATOMIC_ACQUIRE);
}

/* Called after each write (successful or not: a stale cache costs more than
 * a needless refill). */
static int bumped(int rc) {
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    return rc;
}

int runs_get(PGconn *pg, const char *run_id, orch_run_t *out, char *errstr, size_t errlen) {
    const char *params[] = {run_id};
    PGresult *res;
    memset(out, 0, sizeof *out);
    int rc = tg_pg_exec(pg,
                        "SELECT status, COALESCE(only_worker, ''), source_id FROM runs "
                        "WHERE run_id = $1",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 1) {
        out->exists = 1;
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 0));
        snprintf(out->only_worker, sizeof out->only_worker, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->source_id, sizeof out->source_id, "%s", PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return TG_OK;
}

/* One text value of the first row, into out ("" when no row). */
static int query_value(PGconn *pg, const char *sql, int n, const char *const *params, char *out,
                       size_t outlen, char *errstr, size_t errlen) {
    PGresult *res;
    int rc = tg_pg_exec(pg, sql, n, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    snprintf(out, outlen, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return TG_OK;
}

int runs_active(PGconn *pg, const char *source_id, char out[TG_ID_LEN], char *errstr,
                size_t errlen) {
    const char *params[] = {source_id};
    return query_value(pg,
                       "SELECT run_id FROM runs WHERE source_id = $1 AND status IN " ACTIVE
                       " ORDER BY created_at LIMIT 1",
                       1, params, out, TG_ID_LEN, errstr, errlen);
}

int runs_latest_dataset(PGconn *pg, const char *source_id, int64_t *version, char *errstr,
                        size_t errlen) {
    const char *params[] = {source_id};
    char v[32];
    int rc = query_value(pg, "SELECT COALESCE(max(version), 0) FROM datasets WHERE source_id = $1",
                         1, params, v, sizeof v, errstr, errlen);
    *version = rc ? 0 : atoll(v);
    return rc;
}

int runs_step_get(PGconn *pg, const char *run_id, const char *worker, orch_step_t *out,
                  char *errstr, size_t errlen) {
    const char *params[] = {run_id, worker};
    PGresult *res;
    memset(out, 0, sizeof *out);
    int rc = tg_pg_exec(pg,
                        "SELECT status, attempts, (extract(epoch FROM COALESCE(first_failed_at, "
                        "now())) * 1000)::bigint, last_input::text FROM run_steps "
                        "WHERE run_id = $1 AND worker_id = $2",
                        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    if (PQntuples(res) == 1) {
        out->exists = 1;
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 0));
        out->attempts = atoi(PQgetvalue(res, 0, 1));
        out->first_failed_ms = atoll(PQgetvalue(res, 0, 2));
        out->last_input = PQgetisnull(res, 0, 3) ? NULL : strdup(PQgetvalue(res, 0, 3));
    } else {
        out->first_failed_ms = tg_now_ms();
    }
    PQclear(res);
    return TG_OK;
}

/* ---- creating runs ----------------------------------------------------- */

static int run_by_key(PGconn *pg, const char *key, char out[TG_ID_LEN], char *errstr,
                      size_t errlen) {
    const char *params[] = {key};
    return query_value(pg, "SELECT run_id FROM runs WHERE idempotency_key = $1", 1, params, out,
                       TG_ID_LEN, errstr, errlen);
}

/* The insert itself: the run and its first step in one statement, only
 * while no run of the source is active (the partial unique index settles
 * races between concurrent requests: its violation is in *diag). */
static int insert_run(PGconn *pg, const orch_new_run_t *nr, PGresult **res, tg_pg_diag_t *diag,
                      char *errstr, size_t errlen) {
    const char *params[] = {
        nr->run_id,      nr->source_id,       nr->trigger,      nr->force ? "true" : "false",
        nr->only_worker, nr->idempotency_key, nr->first_worker, nr->input_json};
    return tg_pg_exec_diag(
        pg,
        "WITH run AS (INSERT INTO runs (run_id, source_id, trigger, status, force, only_worker, "
        "idempotency_key) SELECT $1, $2, $3, 'queued', $4::boolean, $5, $6 "
        "WHERE NOT EXISTS (SELECT 1 FROM runs WHERE source_id = $2 AND status IN " ACTIVE ") "
        "RETURNING run_id) "
        "INSERT INTO run_steps (run_id, worker_id, status, last_input) "
        "SELECT run_id, $7, 'queued', $8::jsonb FROM run RETURNING run_id",
        8, params, res, diag, errstr, errlen);
}

int runs_create(PGconn *pg, const orch_new_run_t *nr, orch_create_outcome_t *outcome,
                char other_run_id[TG_ID_LEN], char *errstr, size_t errlen) {
    other_run_id[0] = '\0';
    int rc;
    if (nr->idempotency_key &&
        (rc = run_by_key(pg, nr->idempotency_key, other_run_id, errstr, errlen)) != TG_OK) {
        return bumped(rc);
    }
    if (other_run_id[0]) {
        *outcome = RUN_EXISTING;
        return bumped(TG_OK);
    }
    PGresult *res;
    tg_pg_diag_t diag;
    rc = insert_run(pg, nr, &res, &diag, errstr, errlen);
    int unique = rc != TG_OK && !strcmp(diag.sqlstate, TG_PG_UNIQUE_VIOLATION);
    if (rc != TG_OK && !unique) {
        return bumped(rc);
    }
    if (rc == TG_OK && PQntuples(res) == 1) {
        *outcome = RUN_CREATED;
    } else if (unique && nr->idempotency_key && strstr(diag.constraint, "idempotency")) {
        *outcome = RUN_EXISTING; /* a concurrent request with the same key won */
        return bumped(run_by_key(pg, nr->idempotency_key, other_run_id, errstr, errlen));
    } else {
        *outcome = RUN_CONFLICT;
    }
    PQclear(res);
    return bumped(*outcome == RUN_CONFLICT
                      ? runs_active(pg, nr->source_id, other_run_id, errstr, errlen)
                      : TG_OK);
}

/* ---- tracking ---------------------------------------------------------- */

static int track_insert(PGconn *pg, const tg_envelope_t *env, const char *trigger, int force,
                        const char *only_worker, tg_pg_diag_t *diag, char *errstr, size_t errlen) {
    const char *params[] = {env->run_id, env->source_id, trigger, force ? "true" : "false",
                            only_worker};
    return tg_pg_exec_diag(pg,
                           "INSERT INTO runs (run_id, source_id, trigger, status, force, "
                           "only_worker, started_at) "
                           "VALUES ($1, $2, $3, 'running', $4::boolean, $5, now()) "
                           "ON CONFLICT (run_id) DO UPDATE SET "
                           "status = CASE WHEN runs.status = 'queued' THEN 'running' "
                           "ELSE runs.status END, started_at = COALESCE(runs.started_at, now())",
                           5, params, NULL, diag, errstr, errlen);
}

int runs_track(PGconn *pg, const tg_envelope_t *env, const char *trigger, int force,
               const char *only_worker, char *errstr, size_t errlen) {
    tg_pg_diag_t diag;
    int rc = track_insert(pg, env, trigger, force, only_worker, &diag, errstr, errlen);
    if (rc != TG_OK && !strcmp(diag.sqlstate, TG_PG_UNIQUE_VIOLATION)) {
        /* Another active run holds the slot of orchestrator-started runs:
         * this trigger came from elsewhere, so it is tracked as "kafka". */
        rc = track_insert(pg, env, "kafka", force, only_worker, NULL, errstr, errlen);
    }
    return bumped(rc);
}

int runs_step_start(PGconn *pg, const char *run_id, const char *worker, int attempt,
                    const char *input_json, char *errstr, size_t errlen) {
    char a[16];
    num(a, sizeof a, attempt);
    const char *params[] = {run_id, worker, a, input_json};
    return bumped(tg_pg_exec(
        pg,
        "INSERT INTO run_steps (run_id, worker_id, status, attempts, started_at, last_input) "
        "VALUES ($1, $2, 'running', $3::int, now(), $4::jsonb) "
        "ON CONFLICT (run_id, worker_id) DO UPDATE SET status = 'running', "
        "attempts = EXCLUDED.attempts, started_at = now(), finished_at = NULL, "
        "last_input = COALESCE(EXCLUDED.last_input, run_steps.last_input) "
        "WHERE run_steps.status IN ('queued', 'timed_out') "
        "OR (run_steps.status IN ('running', 'retrying') "
        "    AND run_steps.attempts < EXCLUDED.attempts)",
        4, params, NULL, errstr, errlen));
}

int runs_step_done(PGconn *pg, const char *run_id, const char *worker, const char *status,
                   int attempt, int64_t execution_ms, const char *message,
                   const char *data_processed_json, char *errstr, size_t errlen) {
    char a[16], ms[32];
    num(a, sizeof a, attempt < 1 ? 1 : attempt);
    num(ms, sizeof ms, execution_ms);
    const char *params[] = {run_id, worker, status, a, ms, message, data_processed_json};
    return bumped(tg_pg_exec(
        pg,
        "INSERT INTO run_steps (run_id, worker_id, status, attempts, started_at, finished_at, "
        "execution_ms, message, data_processed) VALUES ($1, $2, $3, $4::int, "
        "now() - $5::bigint * interval '1 millisecond', now(), $5::bigint, $6, "
        "COALESCE($7::jsonb, '{\"added\":0,\"updated\":0,\"deleted\":0}'::jsonb)) "
        "ON CONFLICT (run_id, worker_id) DO UPDATE SET status = EXCLUDED.status, "
        "attempts = GREATEST(run_steps.attempts, 1), "
        "started_at = COALESCE(run_steps.started_at, EXCLUDED.started_at), finished_at = now(), "
        "execution_ms = EXCLUDED.execution_ms, message = EXCLUDED.message, error = NULL, "
        "data_processed = EXCLUDED.data_processed",
        7, params, NULL, errstr, errlen));
}

int runs_step_failed(PGconn *pg, const char *run_id, const char *worker, const char *status,
                     int attempt, int64_t execution_ms, const char *error, int64_t first_failed_ms,
                     char *errstr, size_t errlen) {
    char a[16], ms[32], first[32];
    num(a, sizeof a, attempt < 1 ? 1 : attempt);
    num(ms, sizeof ms, execution_ms);
    num(first, sizeof first, first_failed_ms);
    const char *params[] = {run_id, worker, status, a, ms, error, first};
    PGresult *res;
    int rc = tg_pg_exec(
        pg,
        "INSERT INTO run_steps (run_id, worker_id, status, attempts, started_at, finished_at, "
        "execution_ms, error, first_failed_at) VALUES ($1, $2, $3, $4::int, now(), now(), "
        "$5::bigint, $6, to_timestamp($7::bigint / 1000.0)) "
        "ON CONFLICT (run_id, worker_id) DO UPDATE SET status = EXCLUDED.status, "
        "attempts = EXCLUDED.attempts, finished_at = now(), "
        "execution_ms = EXCLUDED.execution_ms, error = EXCLUDED.error, "
        "first_failed_at = COALESCE(run_steps.first_failed_at, EXCLUDED.first_failed_at) "
        "WHERE run_steps.attempts <= EXCLUDED.attempts "
        "AND run_steps.status IN ('queued', 'running', 'retrying', 'timed_out')",
        7, params, &res, errstr, errlen);
    if (rc) {
        return bumped(rc);
    }
    rc = atoi(PQcmdTuples(res)) > 0 ? TG_OK : TG_ERR_NOTFOUND;
    PQclear(res);
    return bumped(rc);
}

int runs_finish(PGconn *pg, const char *run_id, const char *status, const char *message,
                int64_t dataset_version, const char *graph_version, int *changed, char *errstr,
                size_t errlen) {
    char dv[32];
    num(dv, sizeof dv, dataset_version);
    const char *params[] = {run_id, status, message, dataset_version > 0 ? dv : NULL,
                            graph_version};
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "UPDATE runs SET status = $2, message = $3, finished_at = now(), "
                        "started_at = COALESCE(started_at, created_at), "
                        "dataset_version = COALESCE($4::bigint, dataset_version), "
                        "graph_version = COALESCE($5, graph_version) "
                        "WHERE run_id = $1 AND status IN " ACTIVE,
                        5, params, &res, errstr, errlen);
    if (rc) {
        return bumped(rc);
    }
    *changed = atoi(PQcmdTuples(res)) > 0;
    PQclear(res);
    return bumped(TG_OK);
}

int runs_set_dataset(PGconn *pg, const char *run_id, int64_t dataset_version, char *errstr,
                     size_t errlen) {
    char dv[32];
    num(dv, sizeof dv, dataset_version);
    const char *params[] = {run_id, dv};
    return bumped(tg_pg_exec(pg, "UPDATE runs SET dataset_version = $2::bigint WHERE run_id = $1",
                             2, params, NULL, errstr, errlen));
}

/* ---- operator actions -------------------------------------------------- */

int runs_cancel(PGconn *pg, const char *run_id, int *outcome, char *status_out, size_t statuslen,
                char *errstr, size_t errlen) {
    const char *params[] = {run_id};
    PGresult *res;
    /* The final SELECT sees the run as it was before this statement. */
    int rc = tg_pg_exec(pg,
                        "WITH run AS (UPDATE runs SET status = 'cancelled', finished_at = now(), "
                        "message = 'Cancelled by request' WHERE run_id = $1 AND status IN " ACTIVE
                        " RETURNING run_id), "
                        "steps AS (UPDATE run_steps SET status = 'cancelled', finished_at = now() "
                        "WHERE run_id IN (SELECT run_id FROM run) "
                        "AND status IN ('queued', 'running', 'retrying', 'timed_out') RETURNING 1) "
                        "SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM steps), "
                        "(SELECT status FROM runs WHERE run_id = $1)",
                        1, params, &res, errstr, errlen);
    if (rc) {
        return bumped(rc);
    }
    int cancelled = atoi(PQgetvalue(res, 0, 0)) > 0;
    int exists = !PQgetisnull(res, 0, 2);
    snprintf(status_out, statuslen, "%s", cancelled ? "cancelled" : PQgetvalue(res, 0, 2));
    *outcome = cancelled ? TG_OK : exists ? TG_ERR_INVALID : TG_ERR_NOTFOUND;
    PQclear(res);
    return bumped(TG_OK);
}

/* The step to rerun: the earliest failed one with a recorded input. */
static int rerun_step(PGconn *pg, const char *run_id, const char *worker_hint, char worker[48],
                      int *position, char **input_json, char *errstr, size_t errlen) {
    const char *params[] = {run_id, worker_hint};
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "SELECT s.worker_id, w.position, s.last_input::text FROM run_steps s "
                        "JOIN workers w USING (worker_id) WHERE s.run_id = $1 "
                        "AND s.last_input IS NOT NULL AND ($2::text IS NULL OR s.worker_id = $2) "
                        "AND ($2::text IS NOT NULL OR s.status IN ('failed', 'timed_out', "
                        "'cancelled', 'retrying')) ORDER BY w.position LIMIT 1",
                        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    worker[0] = '\0';
    if (PQntuples(res) == 1) {
        snprintf(worker, 48, "%s", PQgetvalue(res, 0, 0));
        *position = atoi(PQgetvalue(res, 0, 1));
        *input_json = strdup(PQgetvalue(res, 0, 2));
    }
    PQclear(res);
    return TG_OK;
}

static int reopen_exec(PGconn *pg, const char *run_id, const char *worker, int position, int force,
                       PGresult **res, tg_pg_diag_t *diag, char *errstr, size_t errlen) {
    char pos[16];
    num(pos, sizeof pos, position);
    const char *params[] = {run_id, worker, pos, force ? "true" : "false"};
    return tg_pg_exec_diag(
        pg,
        "WITH run AS (UPDATE runs SET status = 'running', trigger = 'retry', message = NULL, "
        "finished_at = NULL, force = force OR $4::boolean WHERE run_id = $1 "
        "AND status NOT IN " ACTIVE " RETURNING run_id), "
        "step AS (UPDATE run_steps SET status = 'queued', attempts = 0, error = NULL, "
        "finished_at = NULL, first_failed_at = NULL WHERE run_id IN (SELECT run_id FROM run) "
        "AND worker_id = $2 RETURNING 1), "
        "later AS (DELETE FROM run_steps WHERE run_id IN (SELECT run_id FROM run) "
        "AND worker_id IN (SELECT worker_id FROM workers WHERE position > $3::int) RETURNING 1) "
        "SELECT count(*) FROM run",
        4, params, res, diag, errstr, errlen);
}

int runs_reopen(PGconn *pg, const char *run_id, const char *worker_hint, int force,
                orch_reopen_t *outcome, char worker_out[48], char **input_json, char *errstr,
                size_t errlen) {
    orch_run_t run;
    int position = 0, rc = runs_get(pg, run_id, &run, errstr, errlen);
    *input_json = NULL;
    if (rc || !run.exists || !strcmp(run.status, "queued") || !strcmp(run.status, "running")) {
        *outcome = !run.exists ? REOPEN_NO_RUN : REOPEN_ACTIVE;
        return bumped(rc);
    }
    if ((rc = rerun_step(pg, run_id, worker_hint, worker_out, &position, input_json, errstr,
                         errlen)) != TG_OK ||
        !worker_out[0]) {
        *outcome = REOPEN_NOTHING;
        return bumped(rc);
    }
    PGresult *res;
    tg_pg_diag_t diag;
    rc = reopen_exec(pg, run_id, worker_out, position, force, &res, &diag, errstr, errlen);
    if (rc == TG_OK) {
        *outcome = atoi(PQgetvalue(res, 0, 0)) > 0 ? REOPEN_OK : REOPEN_ACTIVE;
        PQclear(res);
    } else if (!strcmp(diag.sqlstate, TG_PG_UNIQUE_VIOLATION)) {
        *outcome = REOPEN_CONFLICT; /* another run of the source became active */
        rc = TG_OK;
    }
    if (rc || *outcome != REOPEN_OK) {
        free(*input_json);
        *input_json = NULL;
    }
    return bumped(rc);
}

int runs_overdue(PGconn *pg, const char *worker, int timeout_s, runs_timeout_fn fn, void *arg,
                 char *errstr, size_t errlen) {
    char t[16];
    num(t, sizeof t, timeout_s);
    const char *params[] = {worker, t};
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "SELECT s.run_id, r.source_id, s.attempts, s.last_input::text, "
                        "(extract(epoch FROM COALESCE(s.first_failed_at, now())) * 1000)::bigint "
                        "FROM run_steps s JOIN runs r USING (run_id) WHERE r.status = 'running' "
                        "AND s.worker_id = $1 AND s.status = 'running' "
                        "AND s.started_at < now() - make_interval(secs => $2::int) LIMIT 100",
                        2, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        fn(arg, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), atoi(PQgetvalue(res, i, 2)),
           PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3), atoll(PQgetvalue(res, i, 4)));
    }
    PQclear(res);
    return TG_OK;
}

int runs_record_rollback(PGconn *pg, const char *version, int64_t dataset_version,
                         char run_id[TG_ID_LEN], char *errstr, size_t errlen) {
    char dv[32], message[160];
    tg_uuid(run_id);
    num(dv, sizeof dv, dataset_version);
    const char *params[] = {version, run_id, dv, message};
    int rc = tg_pg_begin(pg, errstr, errlen);
    PGresult *res = NULL;
    /* The message names the version it replaced: read before retiring it. */
    if (!rc) {
        rc = tg_pg_exec(pg,
                        "SELECT COALESCE(string_agg(version, ', '), 'none') FROM graphs "
                        "WHERE status = 'active' AND version <> $1",
                        1, params, &res, errstr, errlen);
    }
    if (!rc) {
        snprintf(message, sizeof message, "rolled back to %s (from %s)", version,
                 PQgetvalue(res, 0, 0));
        PQclear(res);
        rc = tg_pg_exec(pg,
                        "UPDATE graphs SET status = 'retired' WHERE status = 'active' "
                        "AND version <> $1",
                        1, params, NULL, errstr, errlen);
    }
    if (!rc) {
        rc = tg_pg_exec(pg,
                        "UPDATE graphs SET status = 'active', activated_at = now() "
                        "WHERE version = $1",
                        1, params, NULL, errstr, errlen);
    }
    if (!rc) {
        rc = tg_pg_exec(pg,
                        "INSERT INTO runs (run_id, trigger, status, only_worker, message, "
                        "dataset_version, graph_version, started_at, finished_at) "
                        "VALUES ($2, 'rollback', 'succeeded', 'graph-builder', $4, $3::bigint, "
                        "$1, now(), now())",
                        4, params, NULL, errstr, errlen);
    }
    if (rc) {
        tg_pg_rollback(pg);
    }
    return bumped(rc);
}
