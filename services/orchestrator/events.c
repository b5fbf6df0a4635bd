/* The events the orchestrator produces itself: triggers, the input of a
 * single worker, the "failed" virtual-entities.completed that lets the graph
 * be built after worker 2 failed, and re-sent inputs with a new attempt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator.h"
#include "tg/log.h"
#include "tg/topics.h"

int events_send(tg_producer_t *p, const orch_conf_t *conf, const char *base_topic,
                const char *key, const char *value, size_t len, const tg_header_t *extra,
                size_t nextra, char *errstr, size_t errlen) {
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

/* The payload fields of a completion event (proto/topics.md). */
static void completion_payload(cJSON *p, const orch_worker_t *from, const char *status,
                               const char *message) {
    cJSON_AddStringToObject(p, "workerId", from->id);
    cJSON_AddStringToObject(p, "workerName", from->name);
    cJSON_AddStringToObject(p, "status", status);
    cJSON_AddStringToObject(p, "message", message);
    cJSON_AddNumberToObject(p, "executionTimeMs", 0);
    cJSON *data = cJSON_AddObjectToObject(p, "dataProcessed");
    cJSON_AddNumberToObject(data, "added", 0);
    cJSON_AddNumberToObject(data, "updated", 0);
    cJSON_AddNumberToObject(data, "deleted", 0);
}

tg_envelope_t *events_start(const orch_conf_t *conf, const orch_worker_t *worker,
                            const char *trigger, int force, const char *only_worker,
                            int64_t dataset_version, const char *source_id) {
    /* Worker n's input is what worker n-1 emits; worker 1's is a trigger. */
    tg_envelope_t *env = tg_envelope_new(worker->input_schema, NULL, source_id);
    if (!env) {
        return NULL;
    }
    if (worker->position > 1) {
        char message[160];
        snprintf(message, sizeof message, "Single-worker run of %s on dataset v%lld", worker->id,
                 (long long)dataset_version);
        env->dataset_version = dataset_version;
        completion_payload(env->payload, &conf->workers[worker->position - 2], "success",
                           message);
    }
    cJSON_AddStringToObject(env->payload, "trigger", trigger);
    cJSON_AddBoolToObject(env->payload, "force", force);
    if (only_worker) {
        cJSON_AddStringToObject(env->payload, "only", only_worker);
    }
    return env;
}

tg_envelope_t *events_virtual_failed(const orch_conf_t *conf, const tg_envelope_t *input,
                                     const char *error) {
    tg_envelope_t *env = tg_envelope_follow(input, TG_SCHEMA_VIRTUAL_DONE);
    if (!env) {
        return NULL;
    }
    env->attempt = 1;
    char message[1024];
    snprintf(message, sizeof message,
             "Virtual entities generation failed (%s); the graph is built from the data as it is",
             error ? error : "unknown error");
    completion_payload(env->payload, &conf->workers[1], "failed", message);
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
        if (runs_finish(pg, env->run_id, "failed", errstr, 0, NULL, &changed, err2,
                        sizeof err2) != TG_OK) {
            tg_error("%s", err2);
        }
    }
    return rc;
}

int orch_start_run(PGconn *pg, tg_producer_t *p, const orch_conf_t *conf,
                   const orch_start_t *req, orch_create_outcome_t *outcome,
                   char run_id[TG_ID_LEN], char *errstr, size_t errlen) {
    const orch_worker_t *first = req->only_worker ? orch_worker_find(conf, req->only_worker)
                                                  : &conf->workers[0];
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
        orch_new_run_t nr = {env->run_id, env->source_id, req->trigger, req->force,
                             req->only_worker, req->idempotency_key, first->id, json};
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
