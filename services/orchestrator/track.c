/* Tracking: every pipeline event, whoever produced it, moves its run along
 * the specification's rules; failed and timed-out steps are retried through
 * the delay topics or given up (dead letter, alert, and for worker 2 a
 * "failed" completion so the graph is still built). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "orchestrator.h"
#include "retry.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/topics.h"
#include "tg/trigger.h"
#include "track.h"

static int is_active(const orch_run_t *run) {
    return !strcmp(run->status, "queued") || !strcmp(run->status, "running");
}

/* The run of env, inserted as running when this is the first we hear of it. */
static int run_ensure(orch_loop_t *o, const tg_envelope_t *env, const char *trigger,
                      orch_run_t *run, char *err, size_t errlen) {
    int rc = runs_get(o->pg, env->run_id, run, err, errlen);
    if (rc || run->exists) {
        return rc;
    }
    const char *only = tg_json_str(env->payload, "only");
    if (!orch_worker_find(o->conf, only)) {
        only = NULL;
    }
    rc = runs_track(o->pg, env, trigger, tg_json_bool(env->payload, "force", 0), only, err, errlen);
    return rc ? rc : runs_get(o->pg, env->run_id, run, err, errlen);
}

static void run_end(orch_loop_t *o, const char *run_id, const char *status, const char *message,
                    int64_t dataset_version, const char *graph_version) {
    char err[512], labels[64];
    int changed = 0;
    if (runs_finish(o->pg, run_id, status, message, dataset_version, graph_version, &changed, err,
                    sizeof err) != TG_OK) {
        tg_error("%s", err);
        return;
    }
    if (!changed) {
        return;
    }
    snprintf(labels, sizeof labels, "status=\"%s\"", status);
    tg_metric_add(ORCH_M_RUNS, labels, 1);
    if (!strcmp(status, "succeeded")) {
        tg_metric_set("tg_last_success_timestamp_seconds", "When the last run succeeded", "",
                      (double)tg_now_ms() / 1000.0);
        tg_info("Pipeline run succeeded: %s", message);
    } else {
        tg_warn("Pipeline run %s: %s", status, message);
    }
}

void orch_metrics_init(const orch_conf_t *conf) {
    static const char *const run_statuses[] = {"succeeded", "failed", "cancelled", "timed_out"};
    char labels[64];
    tg_metric_add(ORCH_M_DEAD_LETTERS, "", 0);
    tg_metric_add(ORCH_M_SCHEDULE_TICKS, "", 0);
    for (int i = 0; i < ORCH_NWORKERS; i++) {
        snprintf(labels, sizeof labels, "worker=\"%s\"", conf->workers[i].id);
        tg_metric_add(ORCH_M_RETRIES, labels, 0);
    }
    for (size_t i = 0; i < sizeof run_statuses / sizeof run_statuses[0]; i++) {
        snprintf(labels, sizeof labels, "status=\"%s\"", run_statuses[i]);
        tg_metric_add(ORCH_M_RUNS, labels, 0);
    }
}

/* ---- events ------------------------------------------------------------ */

/* A trigger: the run is running and worker 1 has its input. */
static int on_trigger(orch_loop_t *o, const tg_envelope_t *env, const char *json) {
    char err[512];
    orch_run_t run;
    const char *trigger = tg_json_str(env->payload, "trigger");
    if (!orch_trigger_valid(trigger)) {
        trigger = "kafka";
    }
    int rc = runs_track(o->pg, env, trigger, tg_json_bool(env->payload, "force", 0),
                        orch_worker_find(o->conf, tg_json_str(env->payload, "only"))
                            ? tg_json_str(env->payload, "only")
                            : NULL,
                        err, sizeof err);
    if (!rc) {
        rc = runs_get(o->pg, env->run_id, &run, err, sizeof err);
    }
    if (!rc && is_active(&run) &&
        (!run.only_worker[0] || !strcmp(run.only_worker, TG_WORKER_ODATA))) {
        tg_info("Pipeline run started (%s): %s attempt %d", trigger, TG_WORKER_ODATA, env->attempt);
        rc = runs_step_start(o->pg, env->run_id, TG_WORKER_ODATA, env->attempt, json, err,
                             sizeof err);
    }
    if (rc) {
        tg_error("%s", err);
    }
    return rc;
}

/* A retried or replayed input (it carries x-attempt): its worker is on it. */
static int on_input(orch_loop_t *o, const orch_worker_t *w, const tg_envelope_t *env, int attempt,
                    const char *json) {
    char err[512];
    orch_run_t run;
    int rc = run_ensure(o, env, "kafka", &run, err, sizeof err);
    if (!rc && is_active(&run)) {
        tg_info("%s attempt %d started", w->id, attempt);
        rc = runs_step_start(o->pg, env->run_id, w->id, attempt, json, err, sizeof err);
    }
    if (rc) {
        tg_error("%s", err);
    }
    return rc;
}

static int step_record(orch_loop_t *o, const orch_worker_t *w, const tg_envelope_t *env,
                       const char *status) {
    char err[512], labels[96];
    const cJSON *p = env->payload;
    int64_t ms = (int64_t)tg_json_num(p, "executionTimeMs", 0);
    char *data = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(p, "dataProcessed"));
    int rc = runs_step_done(o->pg, env->run_id, w->id,
                            !strcmp(status, "skipped") ? "skipped" : "succeeded", env->attempt, ms,
                            tg_json_str(p, "message"), data, err, sizeof err);
    free(data);
    if (rc) {
        tg_error("%s", err);
        return rc;
    }
    snprintf(labels, sizeof labels, "worker=\"%s\"", w->id);
    tg_metric_observe("tg_step_duration_seconds", "Duration of a pipeline step", labels,
                      (double)ms / 1000.0);
    tg_info("%s %s: %s", w->id, status, tg_json_str(p, "message") ? tg_json_str(p, "message") : "");
    return TG_OK;
}

/* What comes after worker `from` completed within run. */
static int advance(orch_loop_t *o, const orch_run_t *run, const orch_worker_t *from,
                   const tg_envelope_t *env, const char *status, const char *json) {
    char err[512], message[1200];
    const orch_worker_t *next = orch_worker_next(o->conf, from);
    const char *msg = tg_json_str(env->payload, "message");
    if (from->position == 1 && !strcmp(status, "no_changes") &&
        !tg_json_str(env->payload, "refresh")) {
        /* Nothing is owed downstream: workers 2 and 3 do nothing for this
         * event, so the run ends here. */
        snprintf(message, sizeof message, "%s", msg ? msg : "No changes: the data is unchanged");
        run_end(o, env->run_id, "succeeded", message, env->dataset_version, NULL);
    } else if (!next || !strcmp(run->only_worker, from->id)) {
        snprintf(message, sizeof message, "%s", msg ? msg : "completed");
        run_end(o, env->run_id, "succeeded", message, env->dataset_version,
                tg_json_str(env->payload, "graphVersion"));
    } else if (runs_step_start(o->pg, env->run_id, next->id, 1, json, err, sizeof err) != TG_OK) {
        tg_error("%s", err);
        return TG_ERR_DB;
    }
    return TG_OK;
}

/* The tracking reads several topics, so a completion can be read after a
 * later worker's, which already ended the run: the step it reports is
 * still open and is recorded, nothing else moves. Any other completion of
 * an ended run (a replay, a duplicate) changes nothing. */
static int late_completion(orch_loop_t *o, const orch_worker_t *from, const tg_envelope_t *env,
                           const orch_run_t *run) {
    char err[512];
    orch_step_t step = {0};
    const char *status = tg_json_str(env->payload, "status");
    int open = !strcmp(run->status, "succeeded") &&
               runs_step_get(o->pg, env->run_id, from->id, &step, err, sizeof err) == TG_OK &&
               step.exists && (!strcmp(step.status, "running") || !strcmp(step.status, "queued"));
    free(step.last_input);
    if (!open) {
        tg_info("%s completion ignored: the run is %s", from->id, run->status);
        return TG_OK;
    }
    tg_info("%s completion read after the run ended: its step is recorded", from->id);
    return step_record(o, from, env, status ? status : "success");
}

static int on_completed(orch_loop_t *o, const orch_worker_t *from, const tg_envelope_t *env,
                        const char *json) {
    char err[512];
    orch_run_t run;
    int rc = run_ensure(o, env, "kafka", &run, err, sizeof err);
    if (rc) {
        tg_error("%s", err);
        return rc;
    }
    if (!is_active(&run)) {
        return late_completion(o, from, env, &run);
    }
    if (run.only_worker[0] && strcmp(run.only_worker, from->id) != 0) {
        /* A single-worker run tracks only the chosen worker's step. */
        return TG_OK;
    }
    const char *status = tg_json_str(env->payload, "status");
    status = status ? status : "success";
    if ((rc = step_record(o, from, env, status)) != TG_OK) {
        return rc;
    }
    if (env->dataset_version > 0 &&
        runs_set_dataset(o->pg, env->run_id, env->dataset_version, err, sizeof err) != TG_OK) {
        tg_warn("%s", err);
    }
    return advance(o, &run, from, env, status, json);
}

/* ---- failures ---------------------------------------------------------- */

/* The step's failure in PostgreSQL, after its retry or dead letter was
 * sent: a failure here leaves the step running, and the timeout sweep or a
 * redelivered event brings it back. */
static void step_failed_record(orch_loop_t *o, const orch_failure_t *f, const char *status,
                               int64_t execution_ms) {
    char err[512];
    int rc = runs_step_failed(o->pg, f->run_id, f->worker->id, status, f->attempt, execution_ms,
                              f->error, f->first_failed_ms, err, sizeof err);
    if (rc != TG_OK && rc != TG_ERR_NOTFOUND) {
        tg_error("%s", err);
    }
}

/* The next worker goes on after the non-critical f->worker gave up: the
 * orchestrator's hand-over on its input topic. */
static int hand_on(orch_loop_t *o, const orch_failure_t *f, const orch_worker_t *next, char *err,
                   size_t errlen) {
    tg_envelope_t *input = NULL;
    if (!f->input_json) {
        input = tg_envelope_new(f->worker->input_schema, f->run_id, f->source_id);
    } else if (tg_envelope_parse(f->input_json, strlen(f->input_json), &input, err, errlen) !=
               TG_OK) {
        tg_error("Cannot hand the run on to %s: the input of %s is unreadable: %s", next->id,
                 f->worker->id, err);
        return TG_OK; /* the timeout sweep ends the run */
    }
    tg_envelope_t *ev =
        input ? events_step_failed(f->worker, next, input, f->attempt, f->error) : NULL;
    char *json = ev ? tg_envelope_serialize(ev) : NULL;
    int rc = json ? events_send(o->producer, o->conf, next->input_topic, ev->source_id, json,
                                strlen(json), NULL, 0, err, errlen)
                  : tg_fail(TG_ERR_NOMEM, err, errlen, "out of memory");
    free(json);
    tg_envelope_destroy(ev);
    tg_envelope_destroy(input);
    return rc;
}

/* The worker gave up: dead letter and alert. A critical worker's failure
 * ends the run; after a non-critical one the next worker goes on (or the
 * run ends, succeeded, when it was the last). */
static int give_up(orch_loop_t *o, const orch_failure_t *f, const char *step_status,
                   const char *run_status, int64_t execution_ms) {
    char err[512], message[1024];
    const orch_worker_t *next = orch_worker_next(o->conf, f->worker);
    int rc = retry_give_up(o, f, err, sizeof err);
    if (rc == TG_OK && !f->worker->critical && next) {
        rc = hand_on(o, f, next, err, sizeof err);
    }
    if (rc) {
        tg_error("%s", err);
        return rc;
    }
    step_failed_record(o, f, step_status, execution_ms);
    if (f->worker->critical || !next) {
        snprintf(message, sizeof message, "%s failed after %d attempt(s)%s: %s", f->worker->id,
                 f->attempt, f->worker->critical ? "" : " (not critical)", f->error);
        run_end(o, f->run_id, f->worker->critical ? run_status : "succeeded", message, 0, NULL);
    }
    return TG_OK;
}

/* Retries or gives up; step_status is what the step shows meanwhile. */
static int failure_handle(orch_loop_t *o, const orch_failure_t *f, const char *retry_status,
                          const char *final_status, const char *run_status, int64_t ms) {
    char err[512], labels[96];
    orch_retry_plan_t plan;
    orch_retry_plan(o->conf, f->worker, f->attempt, f->retryable, &plan);
    if (!plan.retry) {
        return give_up(o, f, final_status, run_status, ms);
    }
    int rc = retry_schedule(o, f, &plan, err, sizeof err);
    if (rc) {
        tg_error("%s", err);
        return rc;
    }
    snprintf(labels, sizeof labels, "worker=\"%s\"", f->worker->id);
    tg_metric_add(ORCH_M_RETRIES, labels, 1);
    step_failed_record(o, f, retry_status, ms);
    return TG_OK;
}

static int on_failed(orch_loop_t *o, const tg_envelope_t *env) {
    char err[512], topic[ORCH_TOPIC_LEN];
    const cJSON *p = env->payload;
    const orch_worker_t *w = orch_worker_find(o->conf, tg_json_str(p, "workerId"));
    orch_run_t run;
    orch_step_t step;
    if (!w) {
        tg_warn("step.failed from an unknown worker ignored");
        return TG_OK;
    }
    int rc = run_ensure(o, env, "kafka", &run, err, sizeof err);
    if (!rc) {
        rc = runs_step_get(o->pg, env->run_id, w->id, &step, err, sizeof err);
    }
    if (rc) {
        tg_error("%s", err);
        return rc;
    }
    /* The step's own count is the truth: an input may carry the attempt of
     * the step before it. A failure of an earlier attempt is stale. */
    int attempt = step.attempts > 0 ? step.attempts : (env->attempt > 0 ? env->attempt : 1);
    char *input = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(p, "input"));
    const char *error = tg_json_str(p, "error") ? tg_json_str(p, "error") : "unknown error";
    const char *in_topic = tg_json_str(p, "inputTopic");
    orch_failure_t f = {w,
                        env->run_id,
                        env->source_id,
                        input && strcmp(input, "null") ? input : step.last_input,
                        attempt,
                        tg_json_bool(p, "retryable", 0),
                        error,
                        in_topic ? in_topic
                                 : tg_topic(&o->conf->cfg, w->input_topic, topic, sizeof topic),
                        (int)tg_json_num(p, "inputPartition", -1),
                        (int64_t)tg_json_num(p, "inputOffset", -1),
                        step.first_failed_ms};
    /* Only a running (or not yet seen) step can fail; otherwise this is a
     * duplicate or a late report of an attempt already dealt with. */
    if (!is_active(&run) || env->attempt < step.attempts ||
        (step.exists && strcmp(step.status, "running") && strcmp(step.status, "queued"))) {
        tg_info("%s failure (attempt %d) ignored: run %s, step %s", w->id, env->attempt, run.status,
                step.exists ? step.status : "unknown");
    } else if (!f.input_json) {
        tg_error("%s failed and its input is unknown: it cannot be retried", w->id);
        rc = give_up(o, &f, "failed", "failed", (int64_t)tg_json_num(p, "executionTimeMs", 0));
    } else {
        tg_warn("%s attempt %d failed (%s): %s", w->id, attempt,
                f.retryable ? "retryable" : "not retryable", error);
        rc = failure_handle(o, &f, "retrying", "failed", "failed",
                            (int64_t)tg_json_num(p, "executionTimeMs", 0));
    }
    free(input);
    free(step.last_input);
    return rc;
}

/* The orchestrator's own hand-over reached worker `to`'s input: its step
 * starts (a single-worker run, or the run going on after a non-critical
 * worker gave up). */
static int on_handover(orch_loop_t *o, const orch_worker_t *to, const tg_envelope_t *env,
                       const char *json) {
    char err[512];
    orch_run_t run;
    int rc = run_ensure(o, env, "kafka", &run, err, sizeof err);
    if (!rc && is_active(&run)) {
        rc = runs_step_start(o->pg, env->run_id, to->id, 1, json, err, sizeof err);
    }
    if (rc) {
        tg_error("%s", err);
    }
    return rc;
}

/* ---- one message ------------------------------------------------------- */

static const orch_worker_t *completed_by(const orch_conf_t *conf, const char *base) {
    static const char *const done[ORCH_NWORKERS] = {TG_TOPIC_ODATA_DONE, TG_TOPIC_VIRTUAL_DONE,
                                                    TG_TOPIC_GRAPH_DONE};
    for (int i = 0; i < ORCH_NWORKERS; i++) {
        if (!strcmp(base, done[i])) {
            return &conf->workers[i];
        }
    }
    return NULL;
}

static int track_event(orch_loop_t *o, const char *base, const rd_kafka_message_t *msg,
                       const tg_envelope_t *env, const char *json) {
    char attempt[16];
    const orch_worker_t *input_of = orch_worker_by_input(o->conf, base);
    if (!strcmp(base, TG_TOPIC_STEP_FAILED)) {
        return on_failed(o, env);
    }
    if (input_of && tg_message_header(msg, "x-attempt", attempt, sizeof attempt) == TG_OK) {
        return on_input(o, input_of, env, atoi(attempt) > 0 ? atoi(attempt) : 1, json);
    }
    if (!strcmp(base, TG_TOPIC_TRIGGER)) {
        return on_trigger(o, env, json);
    }
    if (input_of && !strcmp(env->schema, TG_SCHEMA_HANDOVER)) {
        return on_handover(o, input_of, env, json);
    }
    const orch_worker_t *from = completed_by(o->conf, base);
    return from ? on_completed(o, from, env, json) : TG_OK;
}

/* The event as tracked: a trigger from another system completed into the
 * full envelope with the run id odata-sync-worker derives too, and kept so
 * (a retry sends the completed one, under the same run). */
static int event_read(const char *base, const rd_kafka_message_t *msg, tg_envelope_t **env,
                      char **json, char *err, size_t errlen) {
    int trigger = !strcmp(base, TG_TOPIC_TRIGGER);
    int rc = trigger ? tg_trigger_read(msg, env, err, errlen)
                     : tg_envelope_parse(msg->payload, msg->len, env, err, errlen);
    if (rc != TG_OK) {
        return rc;
    }
    *json = trigger ? tg_envelope_serialize(*env) : strndup(msg->payload, msg->len);
    return TG_OK;
}

int track_message(orch_loop_t *o, const rd_kafka_message_t *msg) {
    char err[512];
    const char *topic = rd_kafka_topic_name(msg->rkt);
    const char *base = orch_topic_base(o->conf, topic);
    tg_envelope_t *env = NULL;
    char *json = NULL;
    if (event_read(base, msg, &env, &json, err, sizeof err) != TG_OK) {
        tg_warn("Malformed event on %s [%d] @%lld not tracked: %s", topic, (int)msg->partition,
                (long long)msg->offset, err);
        return TG_OK;
    }
    tg_log_set_run_id(env->run_id);
    int rc = json ? track_event(o, base, msg, env, json) : TG_ERR_NOMEM;
    tg_log_set_run_id(NULL);
    free(json);
    tg_envelope_destroy(env);
    return rc;
}

/* ---- timeouts ---------------------------------------------------------- */

typedef struct {
    orch_loop_t *o;
    const orch_worker_t *w;
} sweep_t;

static void on_overdue(void *arg, const char *run_id, const char *source_id, int attempt,
                       const char *input_json, int64_t first_failed_ms) {
    sweep_t *s = arg;
    char error[128], topic[ORCH_TOPIC_LEN];
    snprintf(error, sizeof error, "timed out: still running after %d s", s->w->timeout_s);
    orch_failure_t f = {s->w,
                        run_id,
                        source_id,
                        input_json,
                        attempt < 1 ? 1 : attempt,
                        1,
                        error,
                        tg_topic(&s->o->conf->cfg, s->w->input_topic, topic, sizeof topic),
                        -1,
                        -1,
                        first_failed_ms};
    tg_log_set_run_id(run_id);
    tg_warn("%s attempt %d %s", s->w->id, f.attempt, error);
    if (!input_json) {
        give_up(s->o, &f, "timed_out", "timed_out", (int64_t)s->w->timeout_s * 1000);
    } else {
        failure_handle(s->o, &f, "timed_out", "timed_out", "timed_out",
                       (int64_t)s->w->timeout_s * 1000);
    }
    tg_log_set_run_id(NULL);
}

void track_sweep_timeouts(orch_loop_t *o) {
    char err[512];
    for (int i = 0; i < ORCH_NWORKERS; i++) {
        sweep_t s = {o, &o->conf->workers[i]};
        if (runs_overdue(o->pg, s.w->id, s.w->timeout_s, on_overdue, &s, err, sizeof err)) {
            tg_error("Timeout sweep: %s", err);
            return;
        }
    }
}
