/* The events the orchestrator produces itself: triggers, the hand-overs that
 * start one worker (a single-worker run, or the next worker after a
 * non-critical one gave up) and re-sent inputs with a new attempt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "orchestrator.h"
#include "tg/log.h"
#include "tg/topics.h"

void events_prepare(tg_producer_t *p, const orch_conf_t *conf) {
    static const char *const bases[] = {TG_TOPICS_ALL};
    enum { N = sizeof bases / sizeof bases[0] };
    char names[N][ORCH_TOPIC_LEN];
    const char *topics[N];
    for (size_t i = 0; i < N; i++) {
        topics[i] = tg_topic(&conf->cfg, bases[i], names[i], sizeof names[i]);
    }
    tg_producer_prepare(p, topics, N, conf->cfg.connect_timeout_s * 1000);
}

int events_send(tg_producer_t *p, const orch_conf_t *conf, const char *base_topic, const char *key,
                const char *value, size_t len, const tg_header_t *extra, size_t nextra,
                char *errstr, size_t errlen) {
    char topic[ORCH_TOPIC_LEN];
    tg_header_t headers[16];
    size_t n = 0;
    int has_worker = 0;
    for (size_t i = 0; i < nextra && n < 15; i++) {
        has_worker = has_worker || !strcmp(extra[i].name, "x-worker");
        headers[n++] = extra[i];
    }
    if (!has_worker) {
        headers[n++] = (tg_header_t){"x-worker", "orchestrator"};
    }
    tg_topic(&conf->cfg, base_topic, topic, sizeof topic);
    return tg_producer_send(p, topic, key, value, len, headers, n, ORCH_SEND_TIMEOUT_MS, errstr,
                            errlen);
}

/* The hand-over's payload (proto/schemas/pipeline.handover.schema.json). */
static void handover_payload(cJSON *p, const char *reason, const orch_worker_t *to,
                             const orch_worker_t *instead, const char *message) {
    cJSON_AddStringToObject(p, "reason", reason);
    cJSON_AddStringToObject(p, "to", to->id);
    if (instead) {
        cJSON_AddStringToObject(p, "instead", instead->id);
    }
    cJSON_AddStringToObject(p, "message", message);
}

tg_envelope_t *events_start(const orch_conf_t *conf, const orch_worker_t *worker,
                            const char *trigger, int force, const char *only_worker,
                            int64_t dataset_version, const char *source_id) {
    /* Worker 1 starts from a trigger; a later worker from a hand-over. */
    tg_envelope_t *env = tg_envelope_new(
        worker->position > 1 ? TG_SCHEMA_HANDOVER : TG_SCHEMA_TRIGGER, NULL, source_id);
    if (!env) {
        return NULL;
    }
    if (worker->position > 1) {
        char message[160];
        snprintf(message, sizeof message, "Single-worker run of %s on dataset v%lld", worker->id,
                 (long long)dataset_version);
        env->dataset_version = dataset_version;
        handover_payload(env->payload, "single-worker", worker,
                         &conf->workers[worker->position - 2], message);
    }
    cJSON_AddStringToObject(env->payload, "trigger", trigger);
    cJSON_AddBoolToObject(env->payload, "force", force);
    if (only_worker) {
        cJSON_AddStringToObject(env->payload, "only", only_worker);
    }
    return env;
}

tg_envelope_t *events_step_failed(const orch_worker_t *failed, const orch_worker_t *next,
                                  const tg_envelope_t *input, int attempts, const char *error) {
    tg_envelope_t *env = tg_envelope_follow(input, TG_SCHEMA_HANDOVER);
    if (!env) {
        return NULL;
    }
    env->attempt = 1;
    char message[512];
    snprintf(message, sizeof message,
             "%s gave up after %d attempt(s); %s goes on with the data as it is", failed->id,
             attempts, next->id);
    handover_payload(env->payload, "step-failed", next, failed, message);
    cJSON_AddStringToObject(env->payload, "error", error ? error : "unknown error");
    if (tg_json_bool(input->payload, "force", 0)) {
        cJSON_AddTrueToObject(env->payload, "force");
    }
    return env;
}

char *events_with_attempt(const char *json, int attempt, int force) {
    cJSON *root = json ? tg_json_parse(json, strlen(json), TG_JSON_MAX_DEPTH) : NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(root, "attempt");
    cJSON_AddNumberToObject(root, "attempt", attempt);
    cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
    if (force && cJSON_IsObject(payload)) {
        cJSON_DeleteItemFromObjectCaseSensitive(payload, "force");
        cJSON_AddTrueToObject(payload, "force");
    }
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return out;
}

/* ---- starting a run ---------------------------------------------------- */

static int start_send(PGconn *pg, tg_producer_t *p, const orch_conf_t *conf,
                      const orch_worker_t *first, const tg_envelope_t *env, const char *json,
                      char *errstr, size_t errlen) {
    int rc = events_send(p, conf, first->input_topic, env->source_id, json, strlen(json), NULL, 0,
                         errstr, errlen);
    if (rc != TG_OK) {
        char err2[256];
        int changed;
        tg_error("Run %s could not start: %s", env->run_id, errstr);
        if (runs_finish(pg, env->run_id, "failed", errstr, 0, NULL, &changed, err2, sizeof err2) !=
            TG_OK) {
            tg_error("%s", err2);
        }
    }
    return rc;
}

int orch_start_run(PGconn *pg, tg_producer_t *p, const orch_conf_t *conf, const orch_start_t *req,
                   orch_create_outcome_t *outcome, char run_id[TG_ID_LEN], char *errstr,
                   size_t errlen) {
    const orch_worker_t *first =
        req->only_worker ? orch_worker_find(conf, req->only_worker) : &conf->workers[0];
    int64_t dataset_version = 0;
    int rc = TG_OK;
    if (first->position > 1 &&
        (rc = runs_latest_dataset(pg, req->source_id, &dataset_version, errstr, errlen)) == TG_OK &&
        dataset_version == 0) {
        rc = tg_fail(TG_ERR_NOTFOUND, errstr, errlen,
                     "no dataset yet: run odata-sync-worker (or the pipeline) first");
    }
    tg_envelope_t *env = rc ? NULL
                            : events_start(conf, first, req->trigger, req->force, req->only_worker,
                                           dataset_version, req->source_id);
    char *json = env ? tg_envelope_serialize(env) : NULL;
    if (!rc && !json) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    if (!rc) {
        orch_new_run_t nr = {env->run_id,      env->source_id,       req->trigger, req->force,
                             req->only_worker, req->idempotency_key, first->id,    json};
        rc = runs_create(pg, &nr, outcome, run_id, errstr, errlen);
    }
    if (!rc && *outcome == RUN_CREATED) {
        snprintf(run_id, TG_ID_LEN, "%s", env->run_id);
        rc = start_send(pg, p, conf, first, env, json, errstr, errlen);
    }
    free(json);
    tg_envelope_destroy(env);
    return rc;
}
