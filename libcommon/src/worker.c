/* The loop every pipeline worker runs: consume → parse (malformed → dead
 * letter) → step under its deadline → emit completion or step.failed →
 * store the offset. */
#include "tg/worker.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/backoff.h"
#include "tg/http.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/pg.h"
#include "tg/redis.h"
#include "tg/service.h"
#include "tg/topics.h"
#include "tg/trigger.h"

#define SEND_TIMEOUT_MS 10000 /* one delivery attempt; emit retries after it */
#define DEP_CHECK_MS 5000     /* readiness refresh while idle */
#define PING_TIMEOUT_MS 1000
#define TOPIC_LEN 256
/* A retryable failure this close to the deadline is the deadline's doing:
 * curl's and PostgreSQL's timers fire a little before or after it. */
#define DEADLINE_SLACK_MS 100
#define TIMED_OUT "timed out after "
/* Metric names and help, each a pair of arguments: one home for the update
 * and for the zero every series starts at. */
#define M_DEAD_LETTERS                                                                             \
    "tg_worker_dead_letters_total", "Malformed events sent to the dead-letter topic"
#define M_STEPS "tg_worker_steps_total", "Steps run, by outcome"

typedef struct {
    const tg_worker_def_t *def;
    tg_config_t cfg;
    tg_worker_ctx_t ctx;
    tg_service_t *svc;
    tg_producer_t *producer;
    tg_consumer_t *consumer;
    char input_topic[TOPIC_LEN];
    char labels[128]; /* worker="..." */
    unsigned seed;
    int64_t next_dep_check;
    long step_timeout_s; /* STEP_TIMEOUT_S */
} worker_t;

int tg_step_fail(tg_step_result_t *res, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
    res->err = err;
    return err;
}

/* ---- deadlines --------------------------------------------------------- */

int64_t tg_deadline_pick(int64_t now_ms, long timeout_s, int64_t event_deadline_ms) {
    int64_t own = now_ms + (int64_t)timeout_s * 1000;
    return event_deadline_ms > 0 && event_deadline_ms < own ? event_deadline_ms : own;
}

int64_t tg_deadline_remaining_ms(int64_t deadline_ms, int64_t now_ms) {
    return deadline_ms > now_ms ? deadline_ms - now_ms : 0;
}

int tg_deadline_parse(const char *text, int64_t *out) {
    int64_t v = 0;
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n > 18) { /* 18 digits cannot overflow int64_t */
        return TG_ERR_INVALID;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)text[i])) {
            return TG_ERR_INVALID;
        }
        v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return TG_OK;
}

long tg_deadline_budget_s(int64_t started_ms, int64_t deadline_ms) {
    int64_t ms = deadline_ms > started_ms ? deadline_ms - started_ms : 0;
    return (long)((ms + 999) / 1000);
}

int64_t tg_worker_remaining_ms(const tg_worker_ctx_t *ctx) {
    if (ctx->deadline_ms <= 0) {
        return INT64_MAX;
    }
    return tg_deadline_remaining_ms(ctx->deadline_ms, tg_now_ms());
}

int tg_worker_deadline_passed(const tg_worker_ctx_t *ctx) {
    return ctx->deadline_ms > 0 && tg_worker_remaining_ms(ctx) == 0;
}

int tg_worker_deadline_check(const tg_worker_ctx_t *ctx, tg_step_result_t *res, const char *where) {
    if (!tg_worker_deadline_passed(ctx)) {
        return TG_OK;
    }
    return tg_step_fail(res, TG_ERR_TIMEOUT, TIMED_OUT "%ld s: %s",
                        tg_deadline_budget_s(ctx->started_ms, ctx->deadline_ms), where);
}

/* STEP_TIMEOUT_S; unset, the orchestrator's WORKER_TIMEOUT_S_<n> of this
 * worker (one ConfigMap sets both, so they cannot drift apart); unset too,
 * the def's step_timeout_s, or the specification's value for its id. */
static int step_timeout_load(worker_t *w, char *err, size_t errlen) {
    static const struct {
        const char *id;
        long timeout_s;
    } spec[] = {{TG_WORKER_ODATA, TG_TIMEOUT_S_ODATA},
                {TG_WORKER_VIRTUAL, TG_TIMEOUT_S_VIRTUAL},
                {TG_WORKER_GRAPH, TG_TIMEOUT_S_GRAPH}};
    long timeout_s = w->def->step_timeout_s > 0 ? w->def->step_timeout_s : TG_TIMEOUT_S_ODATA;
    int rc = TG_OK;
    for (size_t i = 0; i < sizeof spec / sizeof spec[0]; i++) {
        if (!strcmp(spec[i].id, w->def->worker_id)) {
            char name[32];
            snprintf(name, sizeof name, "WORKER_TIMEOUT_S_%zu", i + 1);
            timeout_s = w->def->step_timeout_s > 0 ? w->def->step_timeout_s : spec[i].timeout_s;
            rc = tg_env_long(name, timeout_s, 1, 86400, &timeout_s, err, errlen);
        }
    }
    if (rc == TG_OK) {
        rc = tg_env_long("STEP_TIMEOUT_S", timeout_s, 1, 86400, &w->step_timeout_s, err, errlen);
    }
    return rc;
}

/* ---- signals: a step sees shutdown through ctx->stop while it runs ------ */

/* tg_signals_install sets the process flag; steps poll ctx->stop (and
 * pass it to tg_sleep_ms), so the handler sets that too. */
static void signals_install(worker_t *w) {
    tg_signals_install();
    tg_shutdown_mirror(&w->ctx.stop);
}

/* ---- start-up ---------------------------------------------------------- */

/* Waits until a broker answers metadata, up to CONNECT_TIMEOUT_S. */
static int kafka_wait(worker_t *w, char *err, size_t errlen) {
    rd_kafka_t *rk = tg_producer_handle(w->producer);
    int64_t deadline = tg_mono_ms() + (int64_t)w->cfg.connect_timeout_s * 1000;
    for (;;) {
        int64_t left = deadline - tg_mono_ms();
        if (tg_kafka_ping(rk, left < 1 ? 1 : left > 1000 ? 1000 : (int)left)) {
            return TG_OK;
        }
        if (tg_mono_ms() >= deadline || tg_shutdown_requested) {
            return tg_fail(TG_ERR_UNAVAILABLE, err, errlen,
                           "KAFKA_BROKERS: no broker answered at %s within %d s",
                           w->cfg.kafka_brokers, w->cfg.connect_timeout_s);
        }
        tg_sleep_ms(100, &w->ctx.stop);
    }
}

static int kafka_start(worker_t *w, char *err, size_t errlen) {
    const tg_worker_def_t *def = w->def;
    w->producer = tg_producer_new(&w->cfg, err, errlen);
    if (!w->producer) {
        return TG_ERR_CONFIG;
    }
    int rc = kafka_wait(w, err, errlen);
    if (rc != TG_OK) {
        return rc;
    }
    tg_service_set_dep(w->svc, "kafka", 1, "ok");
    char group[TOPIC_LEN];
    snprintf(group, sizeof group, "%s%s", w->cfg.topic_prefix ? w->cfg.topic_prefix : "",
             def->worker_id);
    tg_topic(&w->cfg, def->input_topic, w->input_topic, sizeof w->input_topic);
    char out_topic[256], failed_topic[256];
    const char *outputs[] = {
        tg_topic(&w->cfg, def->output_topic, out_topic, sizeof out_topic),
        tg_topic(&w->cfg, TG_TOPIC_STEP_FAILED, failed_topic, sizeof failed_topic)};
    tg_producer_prepare(w->producer, outputs, 2, w->cfg.connect_timeout_s * 1000);
    const char *topics[] = {w->input_topic};
    const tg_consumer_opts_t opts = {.group_id = group, .topics = topics, .ntopics = 1};
    w->consumer = tg_consumer_new(&w->cfg, &opts, err, errlen);
    if (!w->consumer) {
        return TG_ERR_KAFKA;
    }
    tg_info("Worker ready: consuming %s in group %s, steps stopped after %ld s", w->input_topic,
            group, w->step_timeout_s);
    return TG_OK;
}

static int databases_connect(worker_t *w, char *err, size_t errlen) {
    if (w->def->needs & TG_NEED_PG) {
        w->ctx.pg = tg_pg_connect(w->cfg.database_url, w->cfg.connect_timeout_s, err, errlen);
        if (!w->ctx.pg) {
            return TG_ERR_UNAVAILABLE;
        }
        tg_service_set_dep(w->svc, "postgres", 1, "ok");
    }
    if (w->def->needs & TG_NEED_REDIS) {
        w->ctx.redis = tg_redis_connect(w->cfg.redis_url, w->cfg.connect_timeout_s, err, errlen);
        if (!w->ctx.redis) {
            return TG_ERR_UNAVAILABLE;
        }
        tg_service_set_dep(w->svc, "redis", 1, "ok");
    }
    return TG_OK;
}

/* Every counter exists at zero from start-up: a first failure is an
 * increase that rate() and alerts see. */
static void metrics_init(worker_t *w) {
    static const char *const outcomes[] = {"success",       "no_changes", "skipped",
                                           TG_STEP_NOTHING, "failed",     "abandoned"};
    char labels[256];
    tg_metric_add(M_DEAD_LETTERS, w->labels, 0);
    for (size_t i = 0; i < sizeof outcomes / sizeof outcomes[0]; i++) {
        snprintf(labels, sizeof labels, "%s,status=\"%s\"", w->labels, outcomes[i]);
        tg_metric_add(M_STEPS, labels, 0);
    }
}

static int worker_start(worker_t *w, char *err, size_t errlen) {
    const tg_worker_def_t *def = w->def;
    int rc = tg_config_load(&w->cfg, def->worker_id, TG_NEED_KAFKA | def->needs, def->default_port,
                            err, errlen);
    if (rc != TG_OK) {
        return rc;
    }
    if ((rc = step_timeout_load(w, err, errlen)) != TG_OK) {
        return rc;
    }
    w->ctx.cfg = &w->cfg;
    w->seed = (unsigned)tg_now_ms();
    snprintf(w->labels, sizeof w->labels, "worker=\"%s\"", def->worker_id);
    metrics_init(w);
    w->svc = tg_service_start(&w->cfg, def->version, err, errlen);
    if (!w->svc) {
        return TG_ERR_CONFIG;
    }
    /* Not ready until each dependency answered. */
    tg_service_set_dep(w->svc, "kafka", 0, "connecting");
    if (def->needs & TG_NEED_PG) {
        tg_service_set_dep(w->svc, "postgres", 0, "connecting");
    }
    if (def->needs & TG_NEED_REDIS) {
        tg_service_set_dep(w->svc, "redis", 0, "connecting");
    }
    if ((rc = databases_connect(w, err, errlen)) != TG_OK ||
        (rc = kafka_start(w, err, errlen)) != TG_OK) {
        return rc;
    }
    if ((rc = tg_worker_state_init(def, &w->ctx, err, errlen)) != TG_OK) {
        return rc;
    }
    w->next_dep_check = tg_mono_ms() + DEP_CHECK_MS;
    return TG_OK;
}

int tg_worker_state_init(const tg_worker_def_t *def, tg_worker_ctx_t *ctx, char *errstr,
                         size_t errlen) {
    int rc = def->init ? def->init(ctx, errstr, errlen) : TG_OK;
    if (rc != TG_OK) {
        tg_worker_state_free(def, ctx);
    }
    return rc;
}

void tg_worker_state_free(const tg_worker_def_t *def, tg_worker_ctx_t *ctx) {
    if (ctx->state && def->fini) {
        def->fini(ctx);
    }
    ctx->state = NULL;
}

static void worker_cleanup(worker_t *w) {
    tg_consumer_destroy(w->consumer);
    tg_producer_destroy(w->producer, 5000);
    tg_worker_state_free(w->def, &w->ctx);
    if (w->ctx.pg) {
        PQfinish(w->ctx.pg);
    }
    if (w->ctx.redis) {
        redisFree(w->ctx.redis);
    }
    tg_service_stop(w->svc);
    tg_shutdown_mirror(NULL);
}

/* ---- connections ------------------------------------------------------- */

/* Refreshes /readyz while idle; reconnects Redis when its context died
 * (tg_pg_ping resets a broken PostgreSQL connection itself). */
static void deps_refresh(worker_t *w) {
    char detail[512];
    int ok = tg_kafka_ping(tg_consumer_handle(w->consumer), PING_TIMEOUT_MS);
    snprintf(detail, sizeof detail, "KAFKA_BROKERS: no broker answered at %s",
             w->cfg.kafka_brokers);
    tg_service_set_dep(w->svc, "kafka", ok, ok ? "ok" : detail);
    if (w->def->needs & TG_NEED_PG) {
        ok = tg_pg_ping(w->ctx.pg);
        snprintf(detail, sizeof detail, "DATABASE_URL: %s", PQerrorMessage(w->ctx.pg));
        detail[strcspn(detail, "\n")] = '\0';
        tg_service_set_dep(w->svc, "postgres", ok, ok ? "ok" : detail);
    }
    if (w->def->needs & TG_NEED_REDIS) {
        if (!tg_redis_ping(w->ctx.redis)) {
            if (w->ctx.redis) {
                redisFree(w->ctx.redis);
            }
            w->ctx.redis = tg_redis_connect(w->cfg.redis_url, 1, detail, sizeof detail);
        }
        tg_service_set_dep(w->svc, "redis", w->ctx.redis != NULL, w->ctx.redis ? "ok" : detail);
    }
    w->next_dep_check = tg_mono_ms() + DEP_CHECK_MS;
}

/* Before a step: the step may rely on live ctx->pg and ctx->redis. */
static int connections_ensure(worker_t *w, char *err, size_t errlen) {
    if ((w->def->needs & TG_NEED_PG) && PQstatus(w->ctx.pg) != CONNECTION_OK) {
        PQreset(w->ctx.pg);
        if (PQstatus(w->ctx.pg) != CONNECTION_OK) {
            int rc = tg_fail(TG_ERR_UNAVAILABLE, err, errlen, "DATABASE_URL: %s",
                             PQerrorMessage(w->ctx.pg));
            err[strcspn(err, "\n")] = '\0';
            return rc;
        }
    }
    if ((w->def->needs & TG_NEED_REDIS) && (!w->ctx.redis || w->ctx.redis->err)) {
        if (w->ctx.redis) {
            redisFree(w->ctx.redis);
        }
        w->ctx.redis = tg_redis_connect(w->cfg.redis_url, 2, err, errlen);
        if (!w->ctx.redis) {
            return TG_ERR_UNAVAILABLE;
        }
    }
    return TG_OK;
}

/* ---- producing --------------------------------------------------------- */

/* Sends until the broker acknowledged, backing off between tries. Returns
 * TG_ERR_SHUTDOWN when the service stops first. */
static int send_reliably(worker_t *w, const char *topic, const char *key, const void *value,
                         size_t len, const tg_header_t *headers, size_t nheaders) {
    char err[512];
    for (int attempt = 1;; attempt++) {
        if (tg_producer_send(w->producer, topic, key, value, len, headers, nheaders,
                             SEND_TIMEOUT_MS, err, sizeof err) == TG_OK) {
            if (attempt > 1) {
                tg_service_set_dep(w->svc, "kafka", 1, "ok");
            }
            return TG_OK;
        }
        tg_service_set_dep(w->svc, "kafka", 0, err); /* stuck: not ready */
        int64_t delay = tg_backoff_ms(attempt, 500, 30000, 20, &w->seed);
        tg_error("%s (attempt %d, next try in %lld ms)", err, attempt, (long long)delay);
        tg_sleep_ms(delay, &w->ctx.stop);
        if (tg_shutdown_requested) {
            return TG_ERR_SHUTDOWN;
        }
    }
}

/* Marks msg processed; a failure only means it may be processed again. */
static void offset_store(worker_t *w, const rd_kafka_message_t *msg) {
    char err[512];
    if (tg_consumer_done(w->consumer, msg, err, sizeof err) != TG_OK) {
        tg_warn("%s (the event may be delivered again)", err);
    }
}

static int emit_event(worker_t *w, const char *topic_base, const tg_envelope_t *env) {
    char topic[TOPIC_LEN];
    tg_topic(&w->cfg, topic_base, topic, sizeof topic);
    char *json = tg_envelope_serialize(env);
    if (!json) {
        tg_error("Cannot serialise the %s event: out of memory", env->schema);
        return TG_ERR_NOMEM;
    }
    const tg_header_t headers[] = {{"x-worker", w->def->worker_id}};
    int rc = send_reliably(w, topic, env->source_id, json, strlen(json), headers, 1);
    free(json);
    return rc;
}

/* Forwards an unreadable event as it came, with the reason in headers. */
static void dead_letter(worker_t *w, const rd_kafka_message_t *msg, const char *reason) {
    char topic[TOPIC_LEN], partition[16], offset[24], failed_at[32];
    const char *original = rd_kafka_topic_name(msg->rkt);
    snprintf(partition, sizeof partition, "%d", (int)msg->partition);
    snprintf(offset, sizeof offset, "%lld", (long long)msg->offset);
    tg_now_iso(failed_at);
    tg_topic(&w->cfg, TG_TOPIC_DEAD_LETTER, topic, sizeof topic);
    tg_error("Malformed event at %s [%s] @%s goes to %s: %s", original, partition, offset, topic,
             reason);
    const tg_header_t headers[] = {
        {"x-error", reason},
        {"x-original-topic", original},
        {"x-original-partition", partition},
        {"x-original-offset", offset},
        {"x-worker", w->def->worker_id},
        {"x-failed-at", failed_at},
    };
    char *key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
    if (send_reliably(w, topic, key, msg->payload, msg->len, headers,
                      sizeof headers / sizeof headers[0]) == TG_OK) {
        tg_metric_add(M_DEAD_LETTERS, w->labels, 1);
        offset_store(w, msg);
    }
    free(key);
}

/* ---- the outgoing event ------------------------------------------------ */

/* Moves the step's extra fields into payload; the loop's own fields win. */
static void details_move(cJSON *payload, tg_step_result_t *res) {
    cJSON *details = res->details, *item;
    res->details = NULL;
    while (cJSON_IsObject(details) && (item = details->child) != NULL) {
        cJSON_DetachItemViaPointer(details, item);
        if (!item->string || cJSON_HasObjectItem(payload, item->string)) {
            tg_warn("Step detail \"%s\" dropped: the worker loop sets that field",
                    item->string ? item->string : "");
            cJSON_Delete(item);
        } else if (!cJSON_AddItemToObject(payload, item->string, item)) {
            cJSON_Delete(item);
        }
    }
    cJSON_Delete(details);
}

static tg_envelope_t *completed_event(worker_t *w, const tg_envelope_t *in, tg_step_result_t *res,
                                      int64_t ms) {
    tg_envelope_t *env = tg_envelope_follow(in, w->def->output_schema);
    if (!env) {
        return NULL;
    }
    env->attempt = 1; /* the next worker's first try, whatever this one took */
    if (res->dataset_version) {
        env->dataset_version = res->dataset_version;
    }
    cJSON *p = env->payload;
    cJSON_AddStringToObject(p, "workerId", w->def->worker_id);
    cJSON_AddStringToObject(p, "workerName", w->def->worker_name);
    cJSON_AddStringToObject(p, "status", res->status);
    cJSON_AddStringToObject(p, "message", res->message);
    cJSON_AddNumberToObject(p, "executionTimeMs", (double)ms);
    cJSON *data = cJSON_AddObjectToObject(p, "dataProcessed");
    cJSON_AddNumberToObject(data, "added", (double)res->added);
    cJSON_AddNumberToObject(data, "updated", (double)res->updated);
    cJSON_AddNumberToObject(data, "deleted", (double)res->deleted);
    if (tg_json_bool(in->payload, "force", 0)) {
        cJSON_AddTrueToObject(p, "force");
    }
    details_move(p, res);
    return env;
}

static tg_envelope_t *failed_event(worker_t *w, const tg_envelope_t *in,
                                   const rd_kafka_message_t *msg, tg_step_result_t *res,
                                   int64_t ms) {
    tg_envelope_t *env = tg_envelope_follow(in, TG_SCHEMA_STEP_FAILED);
    if (!env) {
        return NULL;
    }
    if (res->dataset_version) {
        env->dataset_version = res->dataset_version;
    }
    cJSON *p = env->payload;
    cJSON_AddStringToObject(p, "workerId", w->def->worker_id);
    cJSON_AddStringToObject(p, "workerName", w->def->worker_name);
    cJSON_AddStringToObject(p, "error", res->message);
    cJSON_AddStringToObject(p, "errorCode", tg_err_name(res->err));
    cJSON_AddBoolToObject(p, "retryable", tg_err_retryable(res->err));
    cJSON_AddNumberToObject(p, "executionTimeMs", (double)ms);
    cJSON_AddStringToObject(p, "inputTopic", rd_kafka_topic_name(msg->rkt));
    cJSON_AddNumberToObject(p, "inputPartition", msg->partition);
    cJSON_AddNumberToObject(p, "inputOffset", (double)msg->offset);
    /* The input exactly as consumed, so the orchestrator can retry it; a
     * trigger completed from a minimal or CloudEvents one as completed, so
     * that the retry keeps its run id. */
    cJSON *input = cJSON_ParseWithLength(msg->payload, msg->len);
    if (!cJSON_GetObjectItemCaseSensitive(input, "schema")) {
        char *full = tg_envelope_serialize(in);
        cJSON_Delete(input);
        input = full ? cJSON_Parse(full) : NULL;
        free(full);
    }
    cJSON_AddItemToObject(p, "input", input ? input : cJSON_CreateNull());
    details_move(p, res);
    return env;
}

/* ---- one message ------------------------------------------------------- */

/* The input event; on pipeline.trigger a minimal or CloudEvents trigger is
 * completed into the full envelope (tg/trigger.h). */
static int envelope_read(worker_t *w, const rd_kafka_message_t *msg, tg_envelope_t **in, char *err,
                         size_t errlen) {
    int rc = !strcmp(w->def->input_topic, TG_TOPIC_TRIGGER)
                 ? tg_trigger_read(msg, in, err, errlen)
                 : tg_envelope_parse(msg->payload, msg->len, in, err, errlen);
    if (rc == TG_OK && strcmp((*in)->schema, w->def->input_schema) != 0 &&
        strcmp((*in)->schema, TG_SCHEMA_HANDOVER) != 0) {
        rc = tg_fail(TG_ERR_INVALID, err, errlen, "schema: expected %s or %s, got %s",
                     w->def->input_schema, TG_SCHEMA_HANDOVER, (*in)->schema);
        tg_envelope_destroy(*in);
        *in = NULL;
    }
    return rc;
}

static void step_record(worker_t *w, const tg_step_result_t *res, int64_t ms) {
    const char *outcome = res->err == TG_OK             ? res->status
                          : res->err == TG_ERR_SHUTDOWN ? "abandoned"
                                                        : "failed";
    char labels[256];
    snprintf(labels, sizeof labels, "%s,status=\"%s\"", w->labels, outcome);
    tg_metric_add(M_STEPS, labels, 1);
    tg_metric_observe("tg_worker_step_duration_seconds", "Duration of a step", w->labels,
                      (double)ms / 1000.0);
    if (res->err == TG_OK) {
        tg_info("Worker finished: %s", res->message);
    } else {
        tg_error("Worker failed: %s", res->message);
    }
}

/* The step's deadline: its own timeout from now, or the event's x-deadline
 * when that comes first (an unreadable one is ignored with a warning). */
static void deadline_start(worker_t *w, const rd_kafka_message_t *msg) {
    char text[32];
    int64_t event_deadline = 0;
    if (tg_message_header(msg, "x-deadline", text, sizeof text) == TG_OK &&
        tg_deadline_parse(text, &event_deadline) != TG_OK) {
        tg_warn("x-deadline \"%s\" is not epoch milliseconds: ignored", text);
        event_deadline = 0;
    }
    w->ctx.started_ms = tg_now_ms();
    w->ctx.deadline_ms = tg_deadline_pick(w->ctx.started_ms, w->step_timeout_s, event_deadline);
}

/* statement_timeout for the step's session: a query still running at the
 * deadline is cancelled and its transaction rolled back (0 would mean none,
 * hence at least 1 ms). */
static int pg_deadline_set(worker_t *w, char *err, size_t errlen) {
    char ms[24];
    int64_t left = tg_worker_remaining_ms(&w->ctx);
    snprintf(ms, sizeof ms, "%lld", (long long)(left > 0 ? left : 1));
    const char *params[] = {ms};
    return tg_pg_exec(w->ctx.pg, "SELECT set_config('statement_timeout', $1, false)", 1, params,
                      NULL, err, errlen);
}

static void pg_deadline_clear(worker_t *w) {
    char err[512];
    if (PQstatus(w->ctx.pg) != CONNECTION_OK) {
        return; /* the reconnect before the next step starts a fresh session */
    }
    if (PQtransactionStatus(w->ctx.pg) != PQTRANS_IDLE) {
        tg_warn("The step left a transaction open: rolled back");
        tg_pg_rollback(w->ctx.pg);
    }
    if (tg_pg_exec(w->ctx.pg, "RESET statement_timeout", 0, NULL, NULL, err, sizeof err) != TG_OK) {
        tg_warn("%s", err);
    }
}

/* A retryable failure at the deadline is the timeout: the step's error says
 * where it was stopped. */
static void deadline_attribute(worker_t *w, tg_step_result_t *res) {
    if (res->err == TG_OK || res->err == TG_ERR_SHUTDOWN || !tg_err_retryable(res->err) ||
        tg_worker_remaining_ms(&w->ctx) > DEADLINE_SLACK_MS) {
        return;
    }
    if (strncmp(res->message, TIMED_OUT, strlen(TIMED_OUT)) != 0) {
        char where[sizeof res->message];
        snprintf(where, sizeof where, "%s", res->message);
        tg_step_fail(res, TG_ERR_TIMEOUT, TIMED_OUT "%ld s: %s",
                     tg_deadline_budget_s(w->ctx.started_ms, w->ctx.deadline_ms), where);
    }
    res->err = TG_ERR_TIMEOUT;
}

static void step_call(worker_t *w, const tg_envelope_t *in, tg_step_result_t *res) {
    char err[512];
    int pg = (w->def->needs & TG_NEED_PG) != 0;
    if (connections_ensure(w, err, sizeof err) != TG_OK) {
        tg_step_fail(res, TG_ERR_UNAVAILABLE, "%s", err);
        return;
    }
    if (tg_worker_deadline_check(&w->ctx, res,
                                 "the event's deadline (x-deadline) passed before the step "
                                 "started") != TG_OK) {
        return;
    }
    if (pg && pg_deadline_set(w, err, sizeof err) != TG_OK) {
        tg_step_fail(res, TG_ERR_UNAVAILABLE, "%s", err);
        return;
    }
    w->def->step(&w->ctx, in, res);
    if (pg) {
        pg_deadline_clear(w);
    }
    deadline_attribute(w, res);
}

/* Runs the step on in; returns its execution time in milliseconds. */
static int64_t step_run(worker_t *w, const rd_kafka_message_t *msg, const tg_envelope_t *in,
                        tg_step_result_t *res) {
    memset(res, 0, sizeof *res);
    res->status = "success";
    w->ctx.stop = tg_shutdown_requested;
    deadline_start(w, msg);
    tg_info("Worker started: %s attempt %d", in->schema, in->attempt);
    tg_debug("Step deadline in %lld ms", (long long)tg_worker_remaining_ms(&w->ctx));
    int64_t t0 = tg_mono_ms();
    step_call(w, in, res);
    w->ctx.deadline_ms = w->ctx.started_ms = 0;
    int64_t ms = tg_mono_ms() - t0;
    if (!res->status) {
        res->status = "success";
    }
    if (!res->message[0]) {
        snprintf(res->message, sizeof res->message, "%s",
                 res->err == TG_OK ? "completed" : tg_err_name(res->err));
    }
    step_record(w, res, ms);
    return ms;
}

static void message_handle(worker_t *w, const rd_kafka_message_t *msg) {
    char err[512];
    tg_envelope_t *in = NULL;
    if (envelope_read(w, msg, &in, err, sizeof err) != TG_OK) {
        dead_letter(w, msg, err);
        return;
    }
    tg_log_set_run_id(in->run_id);
    tg_step_result_t res;
    int64_t ms = step_run(w, msg, in, &res);
    if (res.err == TG_ERR_SHUTDOWN) {
        tg_warn("Step abandoned for shutdown: the event will be delivered again");
    } else if (res.err == TG_OK && !strcmp(res.status, TG_STEP_NOTHING)) {
        offset_store(w, msg); /* nothing done, nothing to hand on */
    } else {
        int ok = res.err == TG_OK;
        tg_envelope_t *out =
            ok ? completed_event(w, in, &res, ms) : failed_event(w, in, msg, &res, ms);
        if (out && emit_event(w, ok ? w->def->output_topic : TG_TOPIC_STEP_FAILED, out) == TG_OK) {
            offset_store(w, msg);
        }
        tg_envelope_destroy(out);
    }
    cJSON_Delete(res.details);
    tg_envelope_destroy(in);
    tg_log_set_run_id(NULL);
}

/* ---- main -------------------------------------------------------------- */

static void worker_run(worker_t *w) {
    while (!tg_shutdown_requested) {
        rd_kafka_message_t *msg = tg_consumer_poll(w->consumer, 100);
        if (msg) {
            message_handle(w, msg);
            rd_kafka_message_destroy(msg);
        } else if (tg_mono_ms() >= w->next_dep_check) {
            deps_refresh(w);
        }
    }
}

int tg_worker_main(const tg_worker_def_t *def) {
    static worker_t w; /* static: the signal handler points into it */
    char err[1024];
    memset(&w, 0, sizeof w);
    w.def = def;
    int level = tg_log_level_parse(tg_env_str("LOG_LEVEL", "info"));
    tg_log_init(def->worker_id, level < 0 ? TG_LOG_INFO : level);
    signals_install(&w);
    tg_http_global_init();
    if (worker_start(&w, err, sizeof err) != TG_OK) {
        worker_cleanup(&w);
        fprintf(stderr, "%s: %s\n", def->worker_id, err); /* last, after librdkafka's noise */
        return 1;
    }
    worker_run(&w);
    tg_info("Shutting down");
    worker_cleanup(&w);
    return 0;
}
