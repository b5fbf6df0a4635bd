/* The REST API on civetweb: one handler per resource, a switch on the
 * method, 405 otherwise. Handlers run on civetweb's threads, so each takes a
 * connection from the API's own pool and sends through the API's own
 * producer; nothing is shared with the main loop. Execution goes through
 * Kafka: a POST waits for the run's result (EXECUTE_WAIT_S, or ?wait=N) and
 * answers with the specification's body, or 202 with the run id when the
 * client prefers not to wait (Prefer: respond-async) or the run outlives
 * the wait. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_http.h"
#include "deadletters.h"
#include "events.h"
#include "graphs.h"
#include "openapi_json.h"
#include "orchestrator.h"
#include "retry.h"
#include "tg/log.h"
#include "tg/topics.h"
#include "tg/trigger.h"
#include "ui.h"
#include "views.h"

#define WAIT_POLL_MS 100

struct orch_api_s {
    orch_conf_t *conf;
    tg_producer_t *producer;
    api_pool_t pool;
    api_cache_t cache;
    int waiters;     /* executes waiting for their run (atomic) */
    int waiters_max; /* a waiting execute holds a civetweb thread: half stay free */
};

/* One request's database connection. */
typedef struct {
    orch_api_t *api;
    PGconn *pg;
    int slot;
} req_db_t;

static int db_open(struct mg_connection *conn, orch_api_t *api, req_db_t *db) {
    char err[512];
    db->api = api;
    db->pg = api_pool_get(&api->pool, &db->slot, err, sizeof err);
    if (!db->pg) {
        api_error(conn, 503, "database_unavailable", err, NULL);
        return 0;
    }
    return 1;
}

static void db_close(req_db_t *db) {
    if (db->pg) {
        api_pool_put(&db->api->pool, db->slot);
        db->pg = NULL;
    }
}

static int reply_db_error(struct mg_connection *conn, const char *err) {
    tg_error("API: %s", err);
    api_error(conn, 503, "database_unavailable", err, NULL);
    return 503;
}

static int reply(struct mg_connection *conn, int status, cJSON *body, const char *headers) {
    tg_http_reply_json(conn, status, body, headers);
    return status;
}

static const char *method(struct mg_connection *conn) {
    return mg_get_request_info(conn)->request_method;
}

static int is(struct mg_connection *conn, const char *m) {
    return !strcmp(method(conn), m);
}

/* ---- waiting for a run ------------------------------------------------- */

/* Polls the run until it ended or wait_s passed. Returns 1 when it ended. */
static int run_wait(orch_api_t *api, const char *run_id, long wait_s) {
    char err[512];
    int64_t deadline = tg_mono_ms() + wait_s * 1000;
    while (!tg_shutdown_requested) {
        orch_run_t run = {0};
        int slot;
        PGconn *pg = api_pool_get(&api->pool, &slot, err, sizeof err);
        if (pg) {
            runs_get(pg, run_id, &run, err, sizeof err);
            api_pool_put(&api->pool, slot);
        }
        if (run.exists && strcmp(run.status, "queued") && strcmp(run.status, "running")) {
            return 1;
        }
        if (tg_mono_ms() >= deadline) {
            return 0;
        }
        struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* Waits when a waiter slot is free; 0 when the bound is reached (the
 * client gets 202 at once, with the run to follow). */
static int wait_slot_take(orch_api_t *api) {
    if (__atomic_add_fetch(&api->waiters, 1, __ATOMIC_SEQ_CST) <= api->waiters_max) {
        return 1;
    }
    __atomic_sub_fetch(&api->waiters, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static void wait_slot_put(orch_api_t *api) {
    __atomic_sub_fetch(&api->waiters, 1, __ATOMIC_SEQ_CST);
}

/* The run's result once it ended within the wait, else 202 (or 200 for a
 * known run asked without waiting) with its id, status and Location. */
static int reply_run(struct mg_connection *conn, orch_api_t *api, const char *run_id, int created,
                     const orch_wait_t *rw, const char *extra) {
    char headers[240], message[240], err[512];
    snprintf(headers, sizeof headers, "Location: /api/v1/runs/%s\r\n%s", run_id,
             rw->async_applied ? "Preference-Applied: respond-async\r\n" : "");
    int waited = rw->wait_s > 0 && wait_slot_take(api);
    int ended = waited && run_wait(api, run_id, rw->wait_s);
    if (waited) {
        wait_slot_put(api);
    }
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    orch_run_t run;
    int ok = 0, rc = runs_get(db.pg, run_id, &run, err, sizeof err);
    cJSON *body = !rc && ended ? views_execute_result(db.pg, run_id, &ok, err, sizeof err) : NULL;
    db_close(&db);
    if (rc || (ended && !body)) {
        return reply_db_error(conn, err);
    }
    if (body) {
        /* The run ended: 200 either way, success tells how it went. */
        return reply(conn, 200, body, headers);
    }
    body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "success");
    cJSON_AddStringToObject(body, "runId", run_id);
    cJSON_AddStringToObject(body, "status", run.status);
    if (extra) {
        cJSON_AddStringToObject(body, "rerunFrom", extra);
    }
    if (rw->wait_s > 0) {
        if (waited) {
            snprintf(message, sizeof message,
                     "The run is still %s after %ld s; follow it at /api/v1/runs/%s", run.status,
                     rw->wait_s, run_id);
        } else {
            snprintf(message, sizeof message,
                     "%d clients are already waiting for runs; follow this one at /api/v1/runs/%s",
                     api->waiters_max, run_id);
        }
        cJSON_AddStringToObject(body, "message", message);
    } else {
        snprintf(message, sizeof message, "The run is %s; follow it at /api/v1/runs/%s", run.status,
                 run_id);
        cJSON_AddStringToObject(body, "message", message);
    }
    return reply(conn, created || rw->wait_s > 0 ? 202 : 200, body, headers);
}

/* ---- execute ----------------------------------------------------------- */

/* Whether the Prefer header (RFC 7240) holds the respond-async token. */
static int prefers_async(struct mg_connection *conn) {
    const char *prefer = mg_get_header(conn, "Prefer");
    for (const char *p = prefer; p && (p = strstr(p, "respond-async")) != NULL; p++) {
        char before = p == prefer ? ',' : p[-1], after = p[sizeof "respond-async" - 1];
        if (strchr(", \t;", before) && (after == '\0' || strchr(", \t;", after))) {
            return 1;
        }
    }
    return 0;
}

/* force from the query string or the JSON body; how long to wait from
 * ?wait, else Prefer: respond-async (no wait), else default_wait_s. */
static int execute_params(struct mg_connection *conn, long default_wait_s, int *force,
                          orch_wait_t *rw) {
    cJSON *body = NULL;
    int status = api_body_json(conn, &body);
    if (status) {
        return status;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, "force");
    int bad = f && !cJSON_IsBool(f);
    *force = cJSON_IsTrue(f);
    cJSON_Delete(body);
    if (bad || api_query_bool(conn, "force", *force, force) < 0) {
        api_error(conn, 400, "bad_request", "force must be true or false", NULL);
        return 400;
    }
    char wait[16], message[80];
    int has_wait = api_query_str(conn, "wait", wait, sizeof wait);
    if (has_wait < 0 ||
        orch_wait_choose(has_wait ? wait : NULL, prefers_async(conn), default_wait_s, rw) < 0) {
        snprintf(message, sizeof message, "wait must be a number of seconds from 0 to %d",
                 ORCH_WAIT_MAX_S);
        api_error(conn, 400, "bad_request", message, NULL);
        return 400;
    }
    return 0;
}

static int idempotency_key(struct mg_connection *conn, const char **key) {
    *key = mg_get_header(conn, "Idempotency-Key");
    size_t n = *key ? strlen(*key) : 0;
    if (*key && (n == 0 || n > 200)) {
        api_error(conn, 400, "bad_request", "Idempotency-Key must have 1 to 200 characters", NULL);
        return 400;
    }
    return 0;
}

/* The specification's answer for a worker that won't start: "cannot run",
 * with the reason. */
static int reply_cannot_run(struct mg_connection *conn, const char *code, const char *reason) {
    char message[600];
    snprintf(message, sizeof message, "cannot run: %.580s", reason);
    api_error(conn, 409, code, message, NULL);
    return 409;
}

static int reply_start_error(struct mg_connection *conn, int rc, const char *err) {
    if (rc == TG_ERR_NOTFOUND) {
        return reply_cannot_run(conn, "no_dataset", err);
    }
    tg_error("API: cannot start a run: %s", err);
    api_error(conn, 503, "unavailable", err, NULL);
    return 503;
}

/* POST /api/v1/workers/execute and /api/v1/workers/:id/execute. */
static int execute(struct mg_connection *conn, orch_api_t *api, const char *only) {
    char err[512], run_id[TG_ID_LEN], message[160];
    int force = 0, status;
    orch_wait_t rw;
    const char *key;
    if (!api_authorized(conn, api->conf->cfg.api_token)) {
        return 401;
    }
    if ((status = execute_params(conn, api->conf->execute_wait_s, &force, &rw)) ||
        (status = idempotency_key(conn, &key))) {
        return status;
    }
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    orch_create_outcome_t outcome = RUN_CONFLICT;
    orch_start_t req = {"api", force, only, key, ORCH_SOURCE_DEFAULT};
    int rc =
        orch_start_run(db.pg, api->producer, api->conf, &req, &outcome, run_id, err, sizeof err);
    db_close(&db);
    if (rc) {
        return reply_start_error(conn, rc, err);
    }
    if (outcome == RUN_CONFLICT) {
        snprintf(message, sizeof message, "the pipeline is already running: run %s", run_id);
        return reply_cannot_run(conn, "pipeline_running", message);
    }
    if (outcome == RUN_CREATED) {
        tg_log_set_run_id(run_id);
        tg_info("Run queued by the API%s%s%s", only ? " for " : "", only ? only : "",
                force ? " (force)" : "");
        tg_log_set_run_id(NULL);
    }
    return reply_run(conn, api, run_id, outcome == RUN_CREATED, &rw, NULL);
}

/* ---- /api/v1/workers ... ----------------------------------------------- */

/* The frame of every read endpoint: answer from the cache when it can,
 * else hand the caller a database connection (view_begin returns 1), and
 * view_end replies with the body and remembers it. */
static int view_begin(struct mg_connection *conn, orch_api_t *api, uint64_t *gen, req_db_t *db,
                      int *status) {
    *gen = runs_generation();
    if (api_cache_reply(&api->cache, conn, *gen)) {
        *status = 200;
        return 0;
    }
    if (!db_open(conn, api, db)) {
        *status = 503;
        return 0;
    }
    return 1;
}

static int view_end(struct mg_connection *conn, orch_api_t *api, uint64_t gen, req_db_t *db,
                    cJSON *body, const char *err) {
    db_close(db);
    return body ? api_cache_store_reply(&api->cache, conn, gen, body) : reply_db_error(conn, err);
}

static int workers_list(struct mg_connection *conn, orch_api_t *api) {
    char err[512];
    uint64_t gen;
    req_db_t db;
    int answered;
    if (!view_begin(conn, api, &gen, &db, &answered)) {
        return answered;
    }
    cJSON *body = views_workers(db.pg, err, sizeof err);
    return view_end(conn, api, gen, &db, body, err);
}

static int worker_status(struct mg_connection *conn, orch_api_t *api, const char *id) {
    char err[512];
    uint64_t gen;
    req_db_t db;
    int answered;
    if (!view_begin(conn, api, &gen, &db, &answered)) {
        return answered;
    }
    cJSON *body = views_worker(db.pg, id, err, sizeof err);
    return view_end(conn, api, gen, &db, body, err);
}

static int unknown(struct mg_connection *conn, const char *what, const char *id) {
    char message[160];
    snprintf(message, sizeof message, "unknown %s %s", what, id);
    api_error(conn, 404, "not_found", message, NULL);
    return 404;
}

/* /api/v1/workers, /api/v1/workers/:id/status, /api/v1/workers/:id/execute */
static int on_workers(struct mg_connection *conn, void *data) {
    orch_api_t *api = data;
    char seg[3][64];
    int n = orch_path_segments(mg_get_request_info(conn)->local_uri, "/api/v1/workers", seg, 3);
    if (n == 0) {
        return is(conn, "GET") ? workers_list(conn, api) : api_method_not_allowed(conn, "GET");
    }
    if (n != 2 || (strcmp(seg[1], "status") && strcmp(seg[1], "execute"))) {
        return unknown(conn, "resource", mg_get_request_info(conn)->local_uri);
    }
    if (!orch_worker_find(api->conf, seg[0])) {
        return unknown(conn, "worker", seg[0]);
    }
    if (!strcmp(seg[1], "status")) {
        return is(conn, "GET") ? worker_status(conn, api, seg[0])
                               : api_method_not_allowed(conn, "GET");
    }
    return is(conn, "POST") ? execute(conn, api, seg[0]) : api_method_not_allowed(conn, "POST");
}

static int exact(struct mg_connection *conn, const char *path) {
    if (strcmp(mg_get_request_info(conn)->local_uri, path) != 0) {
        unknown(conn, "resource", mg_get_request_info(conn)->local_uri);
        return 0;
    }
    return 1;
}

/* POST /api/v1/workers/execute: the full pipeline. */
static int on_execute(struct mg_connection *conn, void *data) {
    if (!exact(conn, "/api/v1/workers/execute")) {
        return 404;
    }
    return is(conn, "POST") ? execute(conn, data, NULL) : api_method_not_allowed(conn, "POST");
}

/* GET /api/v1/workers/pipeline/status (registered before :workerId). */
static int on_pipeline_status(struct mg_connection *conn, void *data) {
    char err[512];
    if (!exact(conn, "/api/v1/workers/pipeline/status")) {
        return 404;
    }
    if (!is(conn, "GET")) {
        return api_method_not_allowed(conn, "GET");
    }
    orch_api_t *api = data;
    uint64_t gen;
    req_db_t db;
    int answered;
    if (!view_begin(conn, api, &gen, &db, &answered)) {
        return answered;
    }
    cJSON *body = views_pipeline(db.pg, ORCH_SOURCE_DEFAULT, err, sizeof err);
    return view_end(conn, api, gen, &db, body, err);
}

/* ---- /api/v1/runs ... -------------------------------------------------- */

static int runs_list(struct mg_connection *conn, orch_api_t *api) {
    char err[512], status[24], trigger[24];
    long limit, offset;
    if (api_query_long(conn, "limit", 20, 1, 100, &limit) < 0 ||
        api_query_long(conn, "offset", 0, 0, 100000000, &offset) < 0) {
        api_error(conn, 400, "bad_request", "limit must be 1-100 and offset 0 or more", NULL);
        return 400;
    }
    int has_status = api_query_str(conn, "status", status, sizeof status);
    int has_trigger = api_query_str(conn, "trigger", trigger, sizeof trigger);
    if (has_status < 0 || (has_status && !orch_run_status_valid(status)) || has_trigger < 0 ||
        (has_trigger && !orch_trigger_valid(trigger))) {
        api_error(conn, 400, "bad_request",
                  "status must be queued, running, succeeded, failed, cancelled or timed_out; "
                  "trigger must be schedule, api, kafka or retry",
                  NULL);
        return 400;
    }
    uint64_t gen;
    req_db_t db;
    int answered;
    if (!view_begin(conn, api, &gen, &db, &answered)) {
        return answered;
    }
    cJSON *body = views_runs(db.pg, limit, offset, has_status ? status : NULL,
                             has_trigger ? trigger : NULL, err, sizeof err);
    return view_end(conn, api, gen, &db, body, err);
}

static int run_get(struct mg_connection *conn, orch_api_t *api, const char *run_id) {
    char err[512];
    int notfound = 0;
    uint64_t gen;
    req_db_t db;
    int answered;
    if (!view_begin(conn, api, &gen, &db, &answered)) {
        return answered;
    }
    cJSON *body = views_run(db.pg, run_id, &notfound, err, sizeof err);
    db_close(&db);
    if (!body) {
        return notfound ? unknown(conn, "run", run_id) : reply_db_error(conn, err);
    }
    return api_cache_store_reply(&api->cache, conn, gen, body);
}

static int run_cancel(struct mg_connection *conn, orch_api_t *api, const char *run_id) {
    char err[512], status[24], message[160];
    int outcome;
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    int rc = runs_cancel(db.pg, run_id, &outcome, status, sizeof status, err, sizeof err);
    db_close(&db);
    if (rc) {
        return reply_db_error(conn, err);
    }
    if (outcome == TG_ERR_NOTFOUND) {
        return unknown(conn, "run", run_id);
    }
    if (outcome == TG_ERR_INVALID) {
        snprintf(message, sizeof message, "run %s already ended: %s", run_id, status);
        api_error(conn, 409, "run_ended", message, NULL);
        return 409;
    }
    tg_log_set_run_id(run_id);
    tg_info("Run cancelled by request");
    tg_log_set_run_id(NULL);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "success");
    cJSON_AddStringToObject(body, "runId", run_id);
    cJSON_AddStringToObject(body, "status", "cancelled");
    return reply(conn, 200, body, NULL);
}

static int reply_reopen_refused(struct mg_connection *conn, PGconn *pg, orch_reopen_t outcome,
                                const char *run_id) {
    char message[200], active[TG_ID_LEN] = "", err[256];
    switch (outcome) {
    case REOPEN_NO_RUN:
        return unknown(conn, "run", run_id);
    case REOPEN_ACTIVE:
        snprintf(message, sizeof message, "run %s is still active", run_id);
        break;
    case REOPEN_NOTHING:
        snprintf(message, sizeof message, "run %s has no failed step to rerun", run_id);
        break;
    default:
        runs_active(pg, ORCH_SOURCE_DEFAULT, active, err, sizeof err);
        snprintf(message, sizeof message, "the pipeline is already running: run %s", active);
        break;
    }
    api_error(conn, 409, outcome == REOPEN_CONFLICT ? "pipeline_running" : "conflict", message,
              NULL);
    return 409;
}

/* Sends input to worker's input topic as attempt 1 of a rerun. */
static int rerun_send(orch_api_t *api, const orch_worker_t *w, const char *input, int force,
                      char *err, size_t errlen) {
    char *value = events_with_attempt(input, 1, force);
    cJSON *root = value ? tg_json_parse(value, strlen(value), TG_JSON_MAX_DEPTH) : NULL;
    const char *source = tg_json_str(root, "sourceId");
    const tg_header_t headers[] = {{"x-attempt", "1"}, {"x-rerun", "api"}};
    int rc = value ? events_send(api->producer, api->conf, w->input_topic,
                                 source ? source : ORCH_SOURCE_DEFAULT, value, strlen(value),
                                 headers, 2, err, errlen)
                   : tg_fail(TG_ERR_INVALID, err, errlen, "the recorded input is not an envelope");
    cJSON_Delete(root);
    free(value);
    return rc;
}

/* POST /api/v1/runs/:id/retry: rerun from the failed step. */
static int run_retry(struct mg_connection *conn, orch_api_t *api, const char *run_id) {
    char err[512], worker[48];
    char *input = NULL;
    int force, status, changed;
    orch_wait_t rw;
    /* A rerun is not in the specification: it answers 202 unless ?wait. */
    if ((status = execute_params(conn, 0, &force, &rw))) {
        return status;
    }
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    orch_reopen_t outcome;
    int rc = runs_reopen(db.pg, run_id, NULL, force, &outcome, worker, &input, err, sizeof err);
    if (rc || outcome != REOPEN_OK) {
        status =
            rc ? reply_db_error(conn, err) : reply_reopen_refused(conn, db.pg, outcome, run_id);
        db_close(&db);
        return status;
    }
    rc = rerun_send(api, orch_worker_find(api->conf, worker), input, force, err, sizeof err);
    if (rc) {
        char e2[256];
        runs_finish(db.pg, run_id, "failed", err, 0, NULL, &changed, e2, sizeof e2);
    }
    db_close(&db);
    free(input);
    if (rc) {
        api_error(conn, 503, "unavailable", err, NULL);
        return 503;
    }
    tg_log_set_run_id(run_id);
    tg_info("Run rerun from %s by request", worker);
    tg_log_set_run_id(NULL);
    return reply_run(conn, api, run_id, 1, &rw, worker);
}

/* /api/v1/runs, /api/v1/runs/:id, /api/v1/runs/:id/cancel, .../retry */
static int on_runs(struct mg_connection *conn, void *data) {
    orch_api_t *api = data;
    char seg[3][64];
    int n = orch_path_segments(mg_get_request_info(conn)->local_uri, "/api/v1/runs", seg, 3);
    if (n == 0) {
        return is(conn, "GET") ? runs_list(conn, api) : api_method_not_allowed(conn, "GET");
    }
    if (n < 0 || n > 2 || (n == 2 && strcmp(seg[1], "cancel") && strcmp(seg[1], "retry"))) {
        return unknown(conn, "resource", mg_get_request_info(conn)->local_uri);
    }
    if (!orch_id_valid(seg[0])) {
        api_error(conn, 400, "bad_request", "a run id has 1-63 characters of A-Z a-z 0-9 . _ : -",
                  NULL);
        return 400;
    }
    if (n == 1) {
        return is(conn, "GET") ? run_get(conn, api, seg[0]) : api_method_not_allowed(conn, "GET");
    }
    if (!is(conn, "POST")) {
        return api_method_not_allowed(conn, "POST");
    }
    if (!api_authorized(conn, api->conf->cfg.api_token)) {
        return 401;
    }
    return !strcmp(seg[1], "cancel") ? run_cancel(conn, api, seg[0]) : run_retry(conn, api, seg[0]);
}

/* ---- dead letters ------------------------------------------------------ */

static int replay_params(struct mg_connection *conn, orch_api_t *api, char *topic, size_t len,
                         long *partition, long *offset) {
    char given[ORCH_TOPIC_LEN];
    const char *prefix = api->conf->cfg.topic_prefix ? api->conf->cfg.topic_prefix : "";
    int has_topic = api_query_str(conn, "topic", given, sizeof given);
    if (has_topic == 0) {
        tg_topic(&api->conf->cfg, TG_TOPIC_DEAD_LETTER, topic, len);
    } else if (has_topic > 0) {
        /* pipeline.trigger means <TOPIC_PREFIX>pipeline.trigger */
        snprintf(topic, len, "%s%s", strncmp(given, prefix, strlen(prefix)) ? prefix : "", given);
    }
    if (has_topic < 0 || !topic[0] ||
        strspn(topic, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            strlen(topic) ||
        api_query_long(conn, "partition", -1, 0, 100000, partition) <= 0 ||
        api_query_long(conn, "offset", -1, 0, INT64_MAX / 2, offset) <= 0) {
        api_error(conn, 400, "bad_request",
                  "give runId, or partition and offset (and optionally topic) of the dead letter",
                  NULL);
        return 400;
    }
    return 0;
}

/* The event to send again: the fetched one (a minimal trigger completed
 * first, so its run id stays the derived one) as attempt 1 under a fresh
 * event id, so that the worker does not take it for one it handled.
 * NULL (errstr set) when it is not a readable event. */
static cJSON *replay_event(const orch_fetched_t *f, const char *topic, int partition,
                           int64_t offset, char *err, size_t errlen) {
    cJSON *root = tg_json_parse(f->value, strlen(f->value), TG_JSON_MAX_DEPTH);
    if (cJSON_IsObject(root) && !cJSON_GetObjectItemCaseSensitive(root, "schema")) {
        tg_trigger_msg_t m = {.topic = topic,
                              .partition = partition,
                              .offset = offset,
                              .key = f->key,
                              .key_len = f->key ? strlen(f->key) : 0,
                              .value = f->value,
                              .len = f->len};
        tg_envelope_t *env = NULL;
        char *json = NULL;
        cJSON_Delete(root);
        root = NULL;
        if (tg_trigger_complete(&m, &env, err, errlen) == TG_OK &&
            (json = tg_envelope_serialize(env)) != NULL) {
            root = cJSON_Parse(json);
        }
        free(json);
        tg_envelope_destroy(env);
    }
    if (!cJSON_IsObject(root)) {
        /* A worker dead-lettered it as unreadable: sending it back would
         * only dead-letter it again. */
        cJSON_Delete(root);
        tg_fail(TG_ERR_INVALID, err, errlen,
                "the message is not a readable event; correct it and produce it again (see "
                "the README's kcat commands)");
        return NULL;
    }
    char event_id[37];
    tg_uuid(event_id);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "eventId");
    cJSON_AddStringToObject(root, "eventId", event_id);
    cJSON_DeleteItemFromObjectCaseSensitive(root, "attempt");
    cJSON_AddNumberToObject(root, "attempt", 1);
    return root;
}

/* Sends a fetched event back to its original topic (a dead letter) or to
 * the topic it was read from, reopening its run first so the tracking
 * follows it; run_id and event_id receive what was sent. */
static int replay_send(orch_api_t *api, PGconn *pg, const orch_fetched_t *f, cJSON *event,
                       char *run_id, char *err, size_t errlen) {
    char *value = cJSON_PrintUnformatted(event);
    const orch_worker_t *w =
        orch_worker_by_input(api->conf, orch_topic_base(api->conf, f->original_topic));
    snprintf(run_id, TG_ID_LEN, "%s",
             tg_json_str(event, "runId") ? tg_json_str(event, "runId") : "");
    if (run_id[0] && w && orch_id_valid(run_id)) {
        orch_reopen_t outcome;
        char worker[48], *input = NULL;
        if (runs_reopen(pg, run_id, w->id, 0, &outcome, worker, &input, err, errlen) == TG_OK &&
            outcome != REOPEN_OK) {
            tg_info("Replayed run %s not reopened (outcome %d)", run_id, (int)outcome);
        }
        free(input);
    }
    const tg_header_t headers[] = {
        {"x-attempt", "1"}, {"x-replayed", "operator"}, {"x-worker", "orchestrator"}};
    int rc = value
                 ? tg_producer_send(api->producer, f->original_topic, f->key, value, strlen(value),
                                    headers, w ? 3 : 2, ORCH_SEND_TIMEOUT_MS, err, errlen)
                 : tg_fail(TG_ERR_NOMEM, err, errlen, "out of memory");
    free(value);
    return rc;
}

static int replay_offset(struct mg_connection *conn, orch_api_t *api) {
    char topic[ORCH_TOPIC_LEN], dead[ORCH_TOPIC_LEN], err[512], run_id[TG_ID_LEN];
    long partition, offset;
    int status = replay_params(conn, api, topic, sizeof topic, &partition, &offset);
    if (status) {
        return status;
    }
    orch_fetched_t f;
    int rc = retry_fetch(api->conf, topic, (int)partition, offset, &f, err, sizeof err);
    if (rc) {
        api_error(conn, rc == TG_ERR_NOTFOUND ? 404 : 503,
                  rc == TG_ERR_NOTFOUND ? "not_found" : "unavailable", err, NULL);
        return rc == TG_ERR_NOTFOUND ? 404 : 503;
    }
    /* A dead letter goes back where it came from; any other event to the
     * topic it was read from. */
    int is_dead =
        !strcmp(topic, tg_topic(&api->conf->cfg, TG_TOPIC_DEAD_LETTER, dead, sizeof dead));
    if (!f.original_topic[0] && !is_dead) {
        snprintf(f.original_topic, sizeof f.original_topic, "%s", topic);
    }
    if (!f.original_topic[0]) {
        retry_fetched_free(&f);
        api_error(conn, 400, "bad_request", "that message has no x-original-topic header", NULL);
        return 400;
    }
    cJSON *event = replay_event(&f, f.original_topic, (int)partition, offset, err, sizeof err);
    req_db_t db;
    if (!event || !db_open(conn, api, &db)) {
        retry_fetched_free(&f);
        if (!event) {
            api_error(conn, 400, "bad_request", err, NULL);
        }
        cJSON_Delete(event);
        return event ? 503 : 400;
    }
    rc = replay_send(api, db.pg, &f, event, run_id, err, sizeof err);
    db_close(&db);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "success");
    cJSON_AddStringToObject(body, "replayedTo", f.original_topic);
    cJSON_AddStringToObject(body, "runId", run_id);
    cJSON_AddStringToObject(body, "eventId", tg_json_str(event, "eventId"));
    cJSON_Delete(event);
    retry_fetched_free(&f);
    if (rc) {
        int code = rc == TG_ERR_INVALID ? 400 : 503;
        cJSON_Delete(body);
        api_error(conn, code, code == 400 ? "bad_request" : "unavailable", err, NULL);
        return code;
    }
    tg_info("Event %s [%ld] @%ld replayed to %s", topic, partition, offset,
            tg_json_str(body, "replayedTo"));
    return reply(conn, 202, body, NULL);
}

/* POST /api/v1/dead-letters/replay?partition=P&offset=O[&topic=T] or ?runId=R */
static int on_replay(struct mg_connection *conn, void *data) {
    orch_api_t *api = data;
    char run_id[TG_ID_LEN + 1];
    if (!exact(conn, "/api/v1/dead-letters/replay")) {
        return 404;
    }
    if (!is(conn, "POST")) {
        return api_method_not_allowed(conn, "POST");
    }
    if (!api_authorized(conn, api->conf->cfg.api_token)) {
        return 401;
    }
    int has_run = api_query_str(conn, "runId", run_id, sizeof run_id);
    if (has_run > 0 && !orch_id_valid(run_id)) {
        api_error(conn, 400, "bad_request", "runId is not a run id", NULL);
        return 400;
    }
    return has_run > 0 ? run_retry(conn, api, run_id) : replay_offset(conn, api);
}

/* GET /api/v1/dead-letters?limit&offset: newest first. */
static int on_dead_letters(struct mg_connection *conn, void *data) {
    orch_api_t *api = data;
    char err[512];
    long limit, offset;
    if (!exact(conn, "/api/v1/dead-letters")) {
        return 404;
    }
    if (!is(conn, "GET")) {
        return api_method_not_allowed(conn, "GET");
    }
    if (api_query_long(conn, "limit", 20, 1, 100, &limit) < 0 ||
        api_query_long(conn, "offset", 0, 0, 900, &offset) < 0) {
        api_error(conn, 400, "bad_request", "limit must be 1-100 and offset 0-900", NULL);
        return 400;
    }
    cJSON *body = deadletters_list(api->conf, limit, offset, err, sizeof err);
    if (!body) {
        tg_error("API: dead letters: %s", err);
        api_error(conn, 503, "unavailable", err, NULL);
        return 503;
    }
    return reply(conn, 200, body, NULL);
}

/* ---- graph versions ---------------------------------------------------- */

static int graphs_get(struct mg_connection *conn, orch_api_t *api) {
    char err[512];
    long limit, offset;
    if (api_query_long(conn, "limit", 20, 1, 100, &limit) < 0 ||
        api_query_long(conn, "offset", 0, 0, 100000000, &offset) < 0) {
        api_error(conn, 400, "bad_request", "limit must be 1-100 and offset 0 or more", NULL);
        return 400;
    }
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    cJSON *body = graphs_list(db.pg, api->conf, limit, offset, err, sizeof err);
    db_close(&db);
    return body ? reply(conn, 200, body, NULL) : reply_db_error(conn, err);
}

static int reply_activate_error(struct mg_connection *conn, int rc, const char *err) {
    switch (rc) {
    case TG_ERR_NOTFOUND:
        api_error(conn, 404, "not_found", err, NULL);
        return 404;
    case TG_ERR_INVALID:
        return reply_cannot_run(conn, "conflict", err);
    case TG_ERR_CONFIG:
        api_error(conn, 503, "redis_not_configured", err, NULL);
        return 503;
    case TG_ERR_UNAVAILABLE:
        api_error(conn, 503, "redis_unavailable", err, NULL);
        return 503;
    case TG_ERR_REDIS:
        /* Keys missing or Redis down: the graph stays as it was. */
        api_error(conn, 409, "graph_not_intact", err, NULL);
        return 409;
    default:
        return reply_db_error(conn, err);
    }
}

/* POST /api/v1/graphs/:version/activate: roll back to a kept version. */
static int graph_activate(struct mg_connection *conn, orch_api_t *api, const char *version) {
    char err[512], message[256];
    if (!api_authorized(conn, api->conf->cfg.api_token)) {
        return 401;
    }
    req_db_t db;
    if (!db_open(conn, api, &db)) {
        return 503;
    }
    graphs_activation_t a;
    int rc = graphs_activate(db.pg, api->conf, version, &a, err, sizeof err);
    db_close(&db);
    if (rc) {
        return reply_activate_error(conn, rc, err);
    }
    tg_log_set_run_id(a.run_id);
    tg_info("graph:version rolled back from %s to %s by request",
            a.previous[0] ? a.previous : "(none)", version);
    tg_log_set_run_id(NULL);
    snprintf(message, sizeof message, "rolled back to %s (from %s)", version,
             a.previous[0] ? a.previous : "none");
    cJSON *body = cJSON_CreateObject();
    cJSON_AddTrueToObject(body, "success");
    cJSON_AddStringToObject(body, "message", message);
    cJSON_AddStringToObject(body, "version", version);
    cJSON_AddStringToObject(body, "previousVersion", a.previous);
    cJSON_AddStringToObject(body, "runId", a.run_id);
    return reply(conn, 200, body, NULL);
}

/* /api/v1/graphs, /api/v1/graphs/:version/activate */
static int on_graphs(struct mg_connection *conn, void *data) {
    orch_api_t *api = data;
    char seg[3][64];
    int n = orch_path_segments(mg_get_request_info(conn)->local_uri, "/api/v1/graphs", seg, 3);
    if (n == 0) {
        return is(conn, "GET") ? graphs_get(conn, api) : api_method_not_allowed(conn, "GET");
    }
    if (n != 2 || strcmp(seg[1], "activate")) {
        return unknown(conn, "resource", mg_get_request_info(conn)->local_uri);
    }
    if (!orch_id_valid(seg[0])) {
        api_error(conn, 400, "bad_request",
                  "a graph version has 1-63 characters of A-Z a-z 0-9 . _ : -", NULL);
        return 400;
    }
    return is(conn, "POST") ? graph_activate(conn, api, seg[0])
                            : api_method_not_allowed(conn, "POST");
}

/* Everything no other handler took: the API's JSON 404, not civetweb's
 * plain text; and "/", which sends the browser to the dashboard. ("/" has
 * no handler of its own: civetweb would also match it as a pattern
 * against every path and take them all from this one.) */
static int on_unknown(struct mg_connection *conn, void *data) {
    const char *uri = mg_get_request_info(conn)->local_uri;
    if (!strcmp(uri, "/")) {
        return ui_on_root(conn, data);
    }
    return unknown(conn, "resource", uri);
}

/* ---- the OpenAPI document ---------------------------------------------- */

static int on_openapi(struct mg_connection *conn, void *data) {
    if (!exact(conn, "/api/v1/openapi.json")) {
        return 404;
    }
    if (!is(conn, "GET")) {
        return api_method_not_allowed(conn, "GET");
    }
    const embedded_file_t *doc = &openapi_files[0];
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
              doc->len);
    mg_write(conn, doc->data, doc->len);
    return 200;
}

/* ---- lifecycle --------------------------------------------------------- */

orch_api_t *api_start(orch_conf_t *conf, tg_service_t *svc, char *errstr, size_t errlen) {
    struct mg_context *http = tg_service_http(svc);
    if (!http) {
        tg_fail(TG_ERR_CONFIG, errstr, errlen, "HTTP_PORT: the API needs an HTTP port");
        return NULL;
    }
    orch_api_t *api = calloc(1, sizeof *api);
    if (!api) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
        return NULL;
    }
    api->conf = conf;
    api->waiters_max = orch_waiters_max(strtol(mg_get_option(http, "num_threads"), NULL, 10));
    api->producer = tg_producer_new(&conf->cfg, errstr, errlen);
    if (!api->producer) {
        free(api);
        return NULL;
    }
    events_prepare(api->producer, conf);
    api_pool_init(&api->pool, conf->cfg.database_url);
    api_cache_init(&api->cache, conf->api_cache_ms);
    /* Exact paths win over prefixes in civetweb, so pipeline/status and
     * execute are never taken for a worker id. */
    static const struct {
        const char *pattern;
        mg_request_handler handler;
    } routes[] = {{"/api/v1/workers/pipeline/status", on_pipeline_status},
                  {"/api/v1/workers/execute", on_execute},
                  {"/api/v1/workers", on_workers},
                  {"/api/v1/runs", on_runs},
                  {"/api/v1/dead-letters/replay", on_replay},
                  {"/api/v1/openapi.json", on_openapi},
                  {"/api/v1/dead-letters", on_dead_letters},
                  {"/api/v1/graphs", on_graphs},
                  /* The dashboard: /ui and /ui/... ("/" itself goes through
                   * on_unknown, see there). */
                  {"/ui", ui_on_files}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (tg_service_route(svc, routes[i].pattern, routes[i].handler, api) != TG_OK) {
            tg_fail(TG_ERR_CONFIG, errstr, errlen, "HTTP: cannot register %s", routes[i].pattern);
            while (i-- > 0) { /* no handler may keep api once it is freed */
                mg_set_request_handler(http, routes[i].pattern, NULL, NULL);
            }
            api_stop(api);
            return NULL;
        }
    }
    /* A pattern, registered last: civetweb tries exact and prefix matches
     * of every handler first, so this only gets what nothing else took. */
    mg_set_request_handler(http, "**", on_unknown, api);
    return api;
}

/* Call after the HTTP server stopped: no handler runs any more. */
void api_stop(orch_api_t *api) {
    if (!api) {
        return;
    }
    tg_producer_destroy(api->producer, 5000);
    api_pool_close(&api->pool);
    api_cache_close(&api->cache);
    free(api);
}
