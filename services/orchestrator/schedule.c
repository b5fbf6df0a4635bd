/* The schedule: one run every SCHEDULE_INTERVAL_S, kept in PostgreSQL so it
 * survives restarts, and claimed by one orchestrator only.
 *
 * Leadership is a session-level advisory lock on the loop's connection: the
 * orchestrator holding it checks the schedule, the others wait (a rollout
 * runs two for a while). The tick itself is claimed by one UPDATE whose
 * WHERE clause says "due", so even two leaders (a lock lost with its
 * connection) cannot start two runs for one tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "orchestrator.h"
#include "schedule.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/pg.h"

/* pg_try_advisory_lock(int4, int4) key: "tg" and the schedule. */
#define LOCK_CLASS "29799"
#define LOCK_OBJECT "1"

static void ms_text(char *out, size_t len, int64_t v) {
    snprintf(out, len, "%lld", (long long)v);
}

/* Holds the lock already, or takes it now; *leader tells which. Asking
 * pg_locks first keeps the lock's count at one however often this runs. */
static int leader_ensure(PGconn *pg, int *leader, char *errstr, size_t errlen) {
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = "
                        "'advisory' AND pid = pg_backend_pid() AND classid = " LOCK_CLASS
                        " AND objid = " LOCK_OBJECT " AND objsubid = 2 AND granted) THEN true "
                        "ELSE pg_try_advisory_lock(" LOCK_CLASS ", " LOCK_OBJECT ") END",
                        0, NULL, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    *leader = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return TG_OK;
}

/* The first start of a source's schedule counts as its first tick: the
 * first scheduled run comes one interval later. */
static int schedule_row_ensure(PGconn *pg, const char *source_id, long interval_s, int64_t now_ms,
                               char *errstr, size_t errlen) {
    char interval[24], now[24];
    snprintf(interval, sizeof interval, "%ld", interval_s);
    ms_text(now, sizeof now, now_ms);
    const char *params[] = {source_id, interval, now};
    return tg_pg_exec(pg,
                      "INSERT INTO schedule (source_id, interval_s, last_tick_at) "
                      "VALUES ($1, $2::int, to_timestamp($3::bigint / 1000.0)) "
                      "ON CONFLICT (source_id) DO NOTHING",
                      3, params, NULL, errstr, errlen);
}

/* Claims the tick when it is due at now_ms. The next tick stays on the grid
 * (last + interval) unless the schedule fell behind by more than one
 * interval (the orchestrator was down): then one run now, never a burst. */
static int tick_claim(PGconn *pg, const char *source_id, long interval_s, int64_t now_ms,
                      int *claimed, char *errstr, size_t errlen) {
    char interval[24], now[24];
    PGresult *res;
    snprintf(interval, sizeof interval, "%ld", interval_s);
    ms_text(now, sizeof now, now_ms);
    const char *params[] = {source_id, interval, now};
    int rc = tg_pg_exec(
        pg,
        "WITH now AS (SELECT to_timestamp($3::bigint / 1000.0) AS t) "
        "UPDATE schedule SET interval_s = $2::int, updated_at = now.t, last_tick_at = CASE "
        "WHEN last_tick_at + 2 * make_interval(secs => $2::int) > now.t "
        "THEN last_tick_at + make_interval(secs => $2::int) ELSE now.t END "
        "FROM now WHERE source_id = $1 AND last_tick_at + make_interval(secs => $2::int) <= now.t "
        "RETURNING last_tick_at",
        3, params, &res, errstr, errlen);
    if (rc) {
        return rc;
    }
    *claimed = PQntuples(res) == 1;
    PQclear(res);
    return TG_OK;
}

static int tick_record_run(PGconn *pg, const char *source_id, const char *run_id, char *errstr,
                           size_t errlen) {
    const char *params[] = {source_id, run_id};
    return tg_pg_exec(pg, "UPDATE schedule SET last_run_id = $2 WHERE source_id = $1", 2, params,
                      NULL, errstr, errlen);
}

/* Claims the tick and starts its run in one transaction: a crash between
 * the two leaves the tick unclaimed for the next orchestrator. */
static int tick_run(orch_loop_t *o, int64_t now_ms, char *err, size_t errlen) {
    const char *source = ORCH_SOURCE_DEFAULT;
    char run_id[TG_ID_LEN] = "";
    int claimed = 0;
    orch_create_outcome_t outcome = RUN_CREATED;
    orch_start_t req = {"schedule", 0, NULL, NULL, source};
    int rc = tg_pg_begin(o->pg, err, errlen);
    if (!rc) {
        rc = tick_claim(o->pg, source, o->conf->schedule_interval_s, now_ms, &claimed, err, errlen);
    }
    if (!rc && claimed) {
        rc = orch_start_run(o->pg, o->producer, o->conf, &req, &outcome, run_id, err, errlen);
    }
    if (!rc && claimed && outcome == RUN_CREATED) {
        rc = tick_record_run(o->pg, source, run_id, err, errlen);
    }
    if (!rc && claimed && outcome == RUN_CONFLICT) {
        /* The tick waits for the active run (or for its events to be
         * tracked, after a failover): claimed again at the next check, so a
         * run that overruns delays the scheduled one instead of losing it. */
        if (strcmp(o->schedule_waiting_for, run_id) != 0) {
            tg_info("Scheduled run waits: run %s is still active", run_id);
            snprintf(o->schedule_waiting_for, sizeof o->schedule_waiting_for, "%s", run_id);
        }
        tg_pg_rollback(o->pg);
        return TG_OK;
    }
    if (!rc) {
        rc = tg_pg_commit(o->pg, err, errlen);
    }
    if (rc) {
        tg_pg_rollback(o->pg);
        return rc;
    }
    if (!claimed) {
        return TG_OK;
    }
    o->schedule_waiting_for[0] = '\0';
    tg_metric_add(ORCH_M_SCHEDULE_TICKS, "", 1);
    tg_log_set_run_id(run_id);
    tg_info("Scheduled pipeline run queued");
    tg_log_set_run_id(NULL);
    return TG_OK;
}

void schedule_check(orch_loop_t *o) {
    char err[512];
    int leader = 0, was_leader = o->schedule_leader;
    int64_t now_ms = tg_now_ms();
    int rc = leader_ensure(o->pg, &leader, err, sizeof err);
    o->schedule_leader = !rc && leader;
    if (o->schedule_leader != was_leader) {
        tg_info("Schedule: %s", o->schedule_leader
                                    ? "this orchestrator is the leader"
                                    : "another orchestrator is the leader; standing by");
        tg_metric_set("tg_schedule_leader", "1 when this orchestrator runs the schedule", "",
                      o->schedule_leader);
    }
    if (!rc && leader && !was_leader) {
        rc = schedule_row_ensure(o->pg, ORCH_SOURCE_DEFAULT, o->conf->schedule_interval_s, now_ms,
                                 err, sizeof err);
    }
    if (!rc && leader) {
        rc = tick_run(o, now_ms, err, sizeof err);
    }
    if (rc) {
        tg_error("Schedule: %s", err);
    }
}
