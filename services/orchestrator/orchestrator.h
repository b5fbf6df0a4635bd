/* The orchestrator's core: configuration and the pure rules of the pipeline
 * (plan.c), its metrics and the main loop's context. Each module has its own
 * header: run state (runs.h), tracking (track.h), the schedule
 * (schedule.h), retries and dead letters (retry.h), paused partitions
 * (holds.h), the events it produces (events.h), retention (retention.h),
 * alerts (alert.h), the REST API (api.h, api_http.h) with its read models
 * (views.h), graph versions (graphs.h), dead letters (deadletters.h) and the
 * dashboard (ui.h). */
#ifndef ORCHESTRATOR_H
#define ORCHESTRATOR_H

#include "holds.h" /* ORCH_TOPIC_LEN */
#include "retention.h"
#include "tg/config.h"
#include "tg/envelope.h"
#include "tg/kafka.h"
#include "tg/redis.h"
#include "tg/service.h"
#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stdint.h>

#define ORCH_VERSION "1.0.0"
#define ORCH_DEFAULT_PORT 3000
#define ORCH_NWORKERS 3
#define ORCH_MAX_DELAYS 2 /* one delay topic per entry of RETRY_DELAYS_S */
#define ORCH_SEND_TIMEOUT_MS 10000
#define ORCH_ERROR_HEADER_MAX 500 /* x-last-error is truncated to this */
#define ORCH_SOURCE_DEFAULT "default"
/* The longest an execute may wait for its run (?wait=, EXECUTE_WAIT_S): a
 * waiting request holds one of the API's HTTP threads. */
#define ORCH_WAIT_MAX_S 600

/* ---- configuration and pipeline rules (plan.c) ------------------------- */

/* A worker of the pipeline. Its identity, place and input are compiled in
 * (they are how the topics connect); its policy comes only from the workers
 * table (orch_worker_policy_set). */
typedef struct {
    const char *id; /* TG_WORKER_* */
    char name[64];
    char version[16];
    int position; /* 1..3 */
    int critical; /* a failure for good stops the run; else the next goes on */
    int max_attempts;
    int timeout_s;
    const char *input_topic; /* base topic of its input */
    const char *input_schema;
} orch_worker_t;

/* One row of the workers table. */
typedef struct {
    const char *id, *name, *version;
    int position, critical, max_attempts, timeout_s;
} orch_worker_policy_t;

typedef struct {
    tg_config_t cfg;
    orch_worker_t workers[ORCH_NWORKERS];
    int64_t delays_ms[ORCH_MAX_DELAYS]; /* RETRY_DELAYS_S */
    int ndelays;
    long schedule_interval_s;   /* 0 = no schedule */
    long schedule_check_ms;     /* how often the leader looks at the schedule */
    long sweep_interval_s;      /* how often timeouts are checked */
    const char *alert_webhook;  /* ALERT_WEBHOOK_URL, may be NULL */
    long api_cache_ms;          /* API_CACHE_MS: read cache lifetime, 0 = off */
    const char *redis_url;      /* REDIS_URL: optional, for graph versions and rollback */
    long execute_wait_s;        /* EXECUTE_WAIT_S: how long an execute waits by default */
    char group[ORCH_TOPIC_LEN]; /* <prefix>orchestrator */
    retention_conf_t retention; /* what retention keeps (retention.h) */
} orch_conf_t;

/* Fills the workers with the pipeline's order and inputs; their policy is
 * left empty until the workers table's rows are applied. */
void orch_workers_defaults(orch_worker_t workers[ORCH_NWORKERS]);

/* Applies one workers-table row: TG_ERR_CONFIG (with the reason) for a
 * worker this pipeline lacks, a position that disagrees with the compiled
 * order, or attempts or timeout below 1. */
int orch_worker_policy_set(orch_conf_t *conf, const orch_worker_policy_t *row, char *errstr,
                           size_t errlen);

/* TG_ERR_CONFIG unless every worker got its row. */
int orch_workers_complete(const orch_conf_t *conf, char *errstr, size_t errlen);

/* Reads RETRY_DELAYS_S, SCHEDULE_INTERVAL_S, SCHEDULE_CHECK_MS, TIMEOUT_SWEEP_S,
 * WORKER_TIMEOUT_S_<1..3>, ALERT_WEBHOOK_URL and the retention settings on
 * top of conf->cfg. */
int orch_conf_load_env(orch_conf_t *conf, char *errstr, size_t errlen);

/* The worker with this id, or NULL. */
const orch_worker_t *orch_worker_find(const orch_conf_t *conf, const char *id);

/* The worker whose input travels on this base topic, or NULL. */
const orch_worker_t *orch_worker_by_input(const orch_conf_t *conf, const char *base_topic);

/* The worker after w in the pipeline, or NULL after the last. */
const orch_worker_t *orch_worker_next(const orch_conf_t *conf, const orch_worker_t *w);

/* What to do after attempt `attempt` of a step failed. */
typedef struct {
    int retry; /* 1: send to a delay topic; 0: give up */
    int next_attempt;
    int delay_index; /* which delay topic */
    int64_t delay_ms;
} orch_retry_plan_t;

void orch_retry_plan(const orch_conf_t *conf, const orch_worker_t *w, int attempt, int retryable,
                     orch_retry_plan_t *plan);

/* Base name of the delay topic for delay_index. */
const char *orch_delay_topic(int delay_index);

/* A topic name without TOPIC_PREFIX (pointer into topic). */
const char *orch_topic_base(const orch_conf_t *conf, const char *topic);

/* Run and step status names; the specification calls a succeeded step "success". */
int orch_run_status_valid(const char *s);
int orch_trigger_valid(const char *s);
const char *orch_status_public(const char *step_status);

/* Ids as the envelope accepts them: 1-63 chars of [A-Za-z0-9._:-]. */
int orch_id_valid(const char *s);

/* Constant-time comparison of a presented token with the expected one. */
int orch_token_equal(const char *presented, const char *expected);

/* Splits path below prefix into at most max segments of up to 63 chars.
 * Returns the count, or -1 when path is not under prefix or a segment is
 * too long. "/api/v1/runs/abc/cancel" below "/api/v1/runs" → {abc, cancel}. */
int orch_path_segments(const char *path, const char *prefix, char seg[][64], int max);

/* How an execute answers: it waits up to wait_s for the run's result;
 * async_applied when the client's Prefer: respond-async was honoured. */
typedef struct {
    long wait_s;
    int async_applied;
} orch_wait_t;

/* The wait of one execute: ?wait= (wait_param, NULL when absent) wins over
 * Prefer: respond-async (prefers_async: no wait), else default_wait_s.
 * Returns 0, or -1 when wait_param is not a whole number of seconds from 0
 * to ORCH_WAIT_MAX_S. */
int orch_wait_choose(const char *wait_param, int prefers_async, long default_wait_s,
                     orch_wait_t *out);

/* How many executes may wait for their runs at once when http_threads
 * threads serve the API: half of them, so the other half stay free for
 * every other request (none with a single thread). */
int orch_waiters_max(long http_threads);

/* ---- metrics: name and help in one place, each a pair of arguments ----- */

#define ORCH_M_DEAD_LETTERS                                                                        \
    "tg_dead_letters_total", "Inputs given up and sent to the dead-letter topic"
#define ORCH_M_RETRIES "tg_retries_total", "Step retries scheduled"
#define ORCH_M_RUNS "tg_runs_total", "Runs ended, by status"
#define ORCH_M_SCHEDULE_TICKS "tg_schedule_ticks_total", "Schedule ticks claimed"

/* Declares every counter at zero, so the first dead letter or retry is an
 * increase that rate() and alerts see, not a series appearing at 1. */
void orch_metrics_init(const orch_conf_t *conf);

/* ---- the main loop's context ------------------------------------------- */

typedef struct orch_delay_s orch_delay_t;
typedef struct orch_alerts_s orch_alerts_t;

typedef struct {
    orch_conf_t *conf;
    tg_service_t *svc;
    PGconn *pg;              /* this loop's own connection */
    tg_producer_t *producer; /* this loop's own producer */
    tg_consumer_t *tracking;
    orch_delay_t *delay;
    orch_alerts_t *alerts; /* ALERT_WEBHOOK_URL's sender, NULL without one */
    int64_t next_schedule_ms, next_sweep_ms, next_deps_ms;
    int schedule_leader;                  /* this orchestrator holds the schedule's lock */
    char schedule_waiting_for[TG_ID_LEN]; /* the active run a due tick waits for, or "" */
    time_t next_retention; /* wall clock of the next retention pass (0: not yet set) */
} orch_loop_t;

#endif
