/* orchestrator: turns the three workers into a pipeline that finishes,
 * retries what failed and says where every run stands.
 *
 * One loop, polling with short timeouts and never sleeping:
 *   tracking consumer (every pipeline topic) → run and step state, retries
 *   delay consumer (the retry topics)        → forwards retries when due
 *   every TIMEOUT_SWEEP_S                    → steps past their timeout retried
 *   every SCHEDULE_CHECK_MS                  → the schedule (schedule.c)
 *   every RETENTION_INTERVAL_S (wall clock)  → old versions, runs, backups deleted
 * The REST API (api.c) runs on civetweb's threads beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "api.h"
#include "events.h"
#include "orchestrator.h"
#include "retention.h"
#include "retry.h"
#include "schedule.h"
#include "tg/http.h"
#include "tg/log.h"
#include "tg/pg.h"
#include "tg/topics.h"
#include "track.h"

#define POLL_MS 100
#define DEPS_CHECK_MS 5000
#define HOLD_ON_ERROR_MS 1000
#define ALERT_GRACE_MS                                                                             \
    2000 /* alerts still queued at shutdown get this long */ /* an event PostgreSQL could not take \
                                                                is seen again after this */

static orch_conf_t conf;
static holds_t tracking_holds;

/* ---- start-up ---------------------------------------------------------- */

/* The workers table is the one source of each worker's policy (name,
 * criticality, attempts, timeout); the environment's WORKER_TIMEOUT_S_<n>
 * (applied after) wins over its timeout. */
static int workers_load(PGconn *pg, char *err, size_t errlen) {
    PGresult *res;
    int rc = tg_pg_exec(pg,
                        "SELECT worker_id, worker_name, version, position, critical, "
                        "max_attempts, timeout_s FROM workers ORDER BY position",
                        0, NULL, &res, err, errlen);
    if (rc) {
        return rc;
    }
    for (int i = 0; !rc && i < PQntuples(res); i++) {
        const orch_worker_policy_t row = {
            PQgetvalue(res, i, 0),           PQgetvalue(res, i, 1),
            PQgetvalue(res, i, 2),           atoi(PQgetvalue(res, i, 3)),
            PQgetvalue(res, i, 4)[0] == 't', atoi(PQgetvalue(res, i, 5)),
            atoi(PQgetvalue(res, i, 6))};
        rc = orch_worker_policy_set(&conf, &row, err, errlen);
    }
    PQclear(res);
    return rc ? rc : orch_workers_complete(&conf, err, errlen);
}

static int kafka_start(orch_loop_t *o, char *err, size_t errlen) {
    static const char *const bases[] = {TG_TOPIC_TRIGGER, TG_TOPIC_ODATA_DONE,
                                        TG_TOPIC_VIRTUAL_DONE, TG_TOPIC_GRAPH_DONE,
                                        TG_TOPIC_STEP_FAILED};
    char names[5][ORCH_TOPIC_LEN];
    const char *topics[5];
    for (int i = 0; i < 5; i++) {
        topics[i] = tg_topic(&conf.cfg, bases[i], names[i], sizeof names[i]);
    }
    o->producer = tg_producer_new(&conf.cfg, err, errlen);
    if (!o->producer) {
        return TG_ERR_CONFIG;
    }
    if (!tg_kafka_ping(tg_producer_handle(o->producer), conf.cfg.connect_timeout_s * 1000)) {
        return tg_fail(TG_ERR_UNAVAILABLE, err, errlen, "KAFKA_BROKERS: no broker answered at %s",
                       conf.cfg.kafka_brokers);
    }
    events_prepare(o->producer, &conf);
    const tg_consumer_opts_t opts = {.group_id = conf.group,
                                     .topics = topics,
                                     .ntopics = 5,
                                     .on_rebalance = holds_rebalance,
                                     .arg = &tracking_holds};
    o->tracking = tg_consumer_new(&conf.cfg, &opts, err, errlen);
    o->delay = o->tracking ? delay_new(&conf, err, errlen) : NULL;
    return o->delay ? TG_OK : TG_ERR_KAFKA;
}

static int orchestrator_start(orch_loop_t *o, orch_api_t **api, char *err, size_t errlen) {
    int rc = tg_config_load(&conf.cfg, "orchestrator", TG_NEED_KAFKA | TG_NEED_PG,
                            ORCH_DEFAULT_PORT, err, errlen);
    if (rc) {
        return rc;
    }
    tg_log_init("orchestrator", conf.cfg.log_level);
    orch_workers_defaults(conf.workers);
    orch_metrics_init(&conf);
    o->conf = &conf;
    o->svc = tg_service_start(&conf.cfg, ORCH_VERSION, err, errlen);
    if (!o->svc) {
        return TG_ERR_CONFIG;
    }
    tg_service_set_dep(o->svc, "postgres", 0, "connecting");
    tg_service_set_dep(o->svc, "kafka", 0, "connecting");
    o->pg = tg_pg_connect(conf.cfg.database_url, conf.cfg.connect_timeout_s, err, errlen);
    if (!o->pg || (rc = workers_load(o->pg, err, errlen)) ||
        (rc = orch_conf_load_env(&conf, err, errlen))) {
        return o->pg ? rc : TG_ERR_UNAVAILABLE;
    }
    tg_service_set_dep(o->svc, "postgres", 1, "ok");
    if ((rc = kafka_start(o, err, errlen))) {
        return rc;
    }
    tg_service_set_dep(o->svc, "kafka", 1, "ok");
    if (conf.alert_webhook && !(o->alerts = orch_alerts_start(conf.alert_webhook, err, errlen))) {
        return TG_ERR_NOMEM;
    }
    if (conf.schedule_interval_s) {
        schedule_check(o); /* the schedule is in place before /readyz says so */
    }
    *api = api_start(&conf, o->svc, err, errlen);
    return *api ? TG_OK : TG_ERR_CONFIG;
}

/* ---- the loop ---------------------------------------------------------- */

static void deps_refresh(orch_loop_t *o) {
    char detail[512];
    int ok = tg_pg_ping(o->pg);
    snprintf(detail, sizeof detail, "DATABASE_URL: %s", PQerrorMessage(o->pg));
    detail[strcspn(detail, "\n")] = '\0';
    tg_service_set_dep(o->svc, "postgres", ok, ok ? "ok" : detail);
    ok = tg_kafka_ping(tg_consumer_handle(o->tracking), 1000);
    tg_service_set_dep(o->svc, "kafka", ok, ok ? "ok" : "KAFKA_BROKERS: no broker answered");
}

/* One tracking event: stored when handled, else paused and seen again. */
static void tracking_poll(orch_loop_t *o) {
    char err[512];
    rd_kafka_t *rk = tg_consumer_handle(o->tracking);
    holds_resume_due(&tracking_holds, rk, tg_now_ms());
    rd_kafka_message_t *msg = tg_consumer_poll(o->tracking, POLL_MS);
    if (!msg) {
        return;
    }
    if (holds_find(&tracking_holds, rd_kafka_topic_name(msg->rkt), msg->partition)) {
        /* fetched before its partition was paused: read again on resume */
    } else if (track_message(o, msg) == TG_OK) {
        if (tg_consumer_done(o->tracking, msg, err, sizeof err) != TG_OK) {
            tg_warn("%s", err);
        }
    } else {
        holds_pause(&tracking_holds, rk, msg, tg_now_ms() + HOLD_ON_ERROR_MS);
    }
    rd_kafka_message_destroy(msg);
}

static void orchestrator_run(orch_loop_t *o) {
    int64_t now = tg_mono_ms();
    o->next_schedule_ms = conf.schedule_interval_s ? now + conf.schedule_check_ms : 0;
    o->next_sweep_ms = now + conf.sweep_interval_s * 1000;
    o->next_deps_ms = now + DEPS_CHECK_MS;
    while (!tg_shutdown_requested) {
        tracking_poll(o);
        delay_poll(o, 0);
        now = tg_mono_ms();
        if (now >= o->next_sweep_ms) {
            track_sweep_timeouts(o);
            o->next_sweep_ms = now + conf.sweep_interval_s * 1000;
        }
        if (o->next_schedule_ms && now >= o->next_schedule_ms) {
            schedule_check(o);
            o->next_schedule_ms = now + conf.schedule_check_ms;
        }
        retention_tick(o->pg, &conf.cfg, &conf.retention, &o->next_retention);
        if (now >= o->next_deps_ms) {
            deps_refresh(o);
            o->next_deps_ms = now + DEPS_CHECK_MS;
        }
    }
}

static void orchestrator_stop(orch_loop_t *o, orch_api_t *api) {
    tg_service_stop(o->svc); /* no handler runs after this */
    api_stop(api);
    delay_destroy(o->delay);
    orch_alerts_stop(o->alerts, ALERT_GRACE_MS);
    if (o->tracking) {
        tg_consumer_destroy(o->tracking);
    }
    tg_producer_destroy(o->producer, 5000);
    if (o->pg) {
        PQfinish(o->pg);
    }
}

int main(void) {
    static orch_loop_t o;
    orch_api_t *api = NULL;
    char err[1024];
    tg_signals_install();
    tg_http_global_init();
    int level = tg_log_level_parse(tg_env_str("LOG_LEVEL", "info"));
    tg_log_init("orchestrator", level < 0 ? TG_LOG_INFO : level);
    if (orchestrator_start(&o, &api, err, sizeof err) != TG_OK) {
        fprintf(stderr, "orchestrator: %s\n", err);
        orchestrator_stop(&o, api);
        return 1;
    }
    tg_info("Orchestrator ready on port %d: tracking group %s, retry delays %.0f/%.0f s, "
            "schedule every %ld s",
            conf.cfg.http_port, conf.group, (double)conf.delays_ms[0] / 1000.0,
            (double)conf.delays_ms[conf.ndelays - 1] / 1000.0, conf.schedule_interval_s);
    orchestrator_run(&o);
    tg_info("Shutting down");
    orchestrator_stop(&o, api);
    return 0;
}
