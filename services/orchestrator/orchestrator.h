/* The orchestrator's internal interfaces: configuration and the pure rules of
 * the pipeline (plan.c), read models (views.c), the events it produces
 * (events.c), tracking (track.c), delayed retries and dead letters (retry.c,
 * holds.c) and the REST API (api.c). Run state (runs.h), paused partitions
 * (holds.h), retention (retention.h), alerts (alert.h) and HTTP (api_http.h). */
#ifndef ORCHESTRATOR_H
#define ORCHESTRATOR_H

#include "holds.h"
#include "retention.h"
#include "runs.h"
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

/* ---- read models for the API (views.c) --------------------------------- */

/* Each returns a new cJSON (caller deletes) or NULL with errstr set. */
cJSON *views_workers(PGconn *pg, char *errstr, size_t errlen);
cJSON *views_worker(PGconn *pg, const char *worker_id, char *errstr, size_t errlen);
cJSON *views_pipeline(PGconn *pg, const char *source_id, char *errstr, size_t errlen);
/* status/trigger may be NULL (no filter). */
cJSON *views_runs(PGconn *pg, long limit, long offset, const char *status, const char *trigger,
                  char *errstr, size_t errlen);
/* NULL with *notfound = 1 when there is no such run. */
cJSON *views_run(PGconn *pg, const char *run_id, int *notfound, char *errstr, size_t errlen);

/* The specification's execute body for an ended run: {success, message,
 * totalExecutionTimeMs, workersExecuted, workerResults}, or for a
 * single-worker run {success, message, result}. *succeeded tells whether
 * the run succeeded. */
cJSON *views_execute_result(PGconn *pg, const char *run_id, int *succeeded, char *errstr,
                            size_t errlen);

/* ---- graph versions (graphs.c) ----------------------------------------- */

/* A connection to REDIS_URL, or NULL with errstr (also when it is unset).
 * The caller frees it with redisFree(). */
redisContext *graphs_redis(const orch_conf_t *conf, char *errstr, size_t errlen);

/* GET /api/v1/graphs: graphs rows newest first, each with active and
 * keysPresent from Redis (null without it). Caller deletes; NULL with errstr
 * when PostgreSQL failed. */
cJSON *graphs_list(PGconn *pg, const orch_conf_t *conf, long limit, long offset, char *errstr,
                   size_t errlen);

typedef struct {
    char run_id[TG_ID_LEN];     /* the run that records the rollback */
    char previous[128];         /* what graph:version named before */
    char active_run[TG_ID_LEN]; /* set when refused because a run is active */
} graphs_activation_t;

/* Switches graph:version to a kept version after checking its keys in the
 * same Lua script, recording it in graphs and as a run. TG_ERR_NOTFOUND: no
 * such version; TG_ERR_INVALID: not published, or a run is active;
 * TG_ERR_CONFIG: REDIS_URL unset; TG_ERR_UNAVAILABLE: Redis unreachable;
 * TG_ERR_REDIS: the script refused (keys missing). */
int graphs_activate(PGconn *pg, const orch_conf_t *conf, const char *version,
                    graphs_activation_t *out, char *errstr, size_t errlen);

/* ---- dead letters (deadletters.c) -------------------------------------- */

/* GET /api/v1/dead-letters: the dead-letter topic's messages, newest first,
 * each with partition, offset, timestamp, key, headers, error and value.
 * Reads at most offset + limit messages per partition. Caller deletes. */
cJSON *deadletters_list(const orch_conf_t *conf, long limit, long offset, char *errstr,
                        size_t errlen);

/* ---- events the orchestrator produces (events.c) ----------------------- */

/* Sends one message to base_topic (prefixed here) keyed by key, with an
 * x-worker: orchestrator header plus extra headers. */
int events_send(tg_producer_t *p, const orch_conf_t *conf, const char *base_topic, const char *key,
                const char *value, size_t len, const tg_header_t *extra, size_t nextra,
                char *errstr, size_t errlen);

/* Builds the input event that starts `worker` for a new run: a trigger for
 * worker 1, a pipeline.handover (reason single-worker) of dataset_version for
 * a later worker. Caller destroys. */
tg_envelope_t *events_start(const orch_conf_t *conf, const orch_worker_t *worker,
                            const char *trigger, int force, const char *only_worker,
                            int64_t dataset_version, const char *source_id);

/* The pipeline.handover (reason step-failed) that starts `next` after the
 * non-critical worker `failed` gave up on `input` after `attempts` attempts
 * with `error`. Caller destroys. */
tg_envelope_t *events_step_failed(const orch_worker_t *failed, const orch_worker_t *next,
                                  const tg_envelope_t *input, int attempts, const char *error);

/* Parses an envelope JSON and sets its attempt (and payload.force when force
 * is 1). Returns the serialised result (caller frees) or NULL. */
char *events_with_attempt(const char *json, int attempt, int force);

/* Starts a run: inserts it as queued (runs_create) and produces the input
 * of its first worker (worker 1, or only_worker for a single-worker run).
 * When the produce fails the run is marked failed and the error returned. */
typedef struct {
    const char *trigger;
    int force;
    const char *only_worker;     /* NULL: the full pipeline */
    const char *idempotency_key; /* NULL: none */
    const char *source_id;
} orch_start_t;

int orch_start_run(PGconn *pg, tg_producer_t *p, const orch_conf_t *conf, const orch_start_t *req,
                   orch_create_outcome_t *outcome, char run_id[TG_ID_LEN], char *errstr,
                   size_t errlen);

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

/* ---- tracking (track.c) ------------------------------------------------ */

/* Handles one message of the tracking group. Returns TG_OK when it may be
 * marked done; a retryable error asks the caller to see it again later. */
int track_message(orch_loop_t *o, const rd_kafka_message_t *msg);

/* Marks timed-out steps and retries them like retryable failures. */
void track_sweep_timeouts(orch_loop_t *o);

/* ---- the schedule (schedule.c) ----------------------------------------- */

/* Takes or keeps the schedule's leadership and, when this orchestrator
 * leads and the tick is due by the wall clock, claims it and starts its run
 * (unless a run is active). */
void schedule_check(orch_loop_t *o);

/* ---- retries, dead letters, alerts (retry.c) --------------------------- */

typedef struct {
    const orch_worker_t *worker;
    const char *run_id;
    const char *source_id;
    const char *input_json; /* the failed step's input */
    int attempt;            /* the attempt that failed */
    int retryable;
    const char *error;
    const char *orig_topic; /* full name of the input's topic */
    int orig_partition;     /* -1 when unknown */
    int64_t orig_offset;    /* -1 when unknown */
    int64_t first_failed_ms;
} orch_failure_t;

/* Sends the input to the delay topic for plan (headers of proto/topics.md). */
int retry_schedule(orch_loop_t *o, const orch_failure_t *f, const orch_retry_plan_t *plan,
                   char *errstr, size_t errlen);

/* Sends the input to the dead-letter topic and alerts the admin. */
int retry_give_up(orch_loop_t *o, const orch_failure_t *f, char *errstr, size_t errlen);

orch_delay_t *delay_new(orch_conf_t *conf, char *errstr, size_t errlen);
/* Resumes partitions that became due and handles at most one message. */
void delay_poll(orch_loop_t *o, int timeout_ms);
void delay_destroy(orch_delay_t *d);

/* A message read back from a topic (the dead-letter topic, for replay). */
typedef struct {
    char *key; /* may be NULL */
    char *value;
    size_t len;
    char original_topic[ORCH_TOPIC_LEN]; /* its x-original-topic header, or "" */
} orch_fetched_t;

/* Reads the message at topic/partition/offset. TG_ERR_NOTFOUND when there is
 * none. The caller frees it with retry_fetched_free(). */
int retry_fetch(const orch_conf_t *conf, const char *topic, int partition, int64_t offset,
                orch_fetched_t *out, char *errstr, size_t errlen);
void retry_fetched_free(orch_fetched_t *f);

/* ---- the REST API (api.c) ---------------------------------------------- */

typedef struct orch_api_s orch_api_t;

/* Registers the handlers on the service's HTTP server. The API has its own
 * PostgreSQL pool and producer: civetweb runs handlers on many threads. */
orch_api_t *api_start(orch_conf_t *conf, tg_service_t *svc, char *errstr, size_t errlen);
void api_stop(orch_api_t *api);

/* ---- the dashboard's files (ui.c) -------------------------------------- */

/* civetweb handlers: ui_on_root answers "/" (the caller checked the path)
 * with a redirect to /ui/; ui_on_files serves /ui/ and the embedded ui/
 * files. GET and HEAD; otherwise the API's JSON 405, or 404 for no file. */
int ui_on_root(struct mg_connection *conn, void *data);
int ui_on_files(struct mg_connection *conn, void *data);

#endif
