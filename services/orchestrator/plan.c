/* The pipeline's rules without any I/O: the workers and their order, the
 * retry schedule, names of states, and the small parsing helpers of the
 * API. Everything here is unit-tested. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orchestrator.h"
#include "tg/backoff.h"
#include "tg/topics.h"

void orch_workers_defaults(orch_worker_t workers[ORCH_NWORKERS]) {
    static const struct {
        const char *id, *topic, *schema;
    } spec[ORCH_NWORKERS] = {
        {TG_WORKER_ODATA, TG_TOPIC_TRIGGER, TG_SCHEMA_TRIGGER},
        {TG_WORKER_VIRTUAL, TG_TOPIC_ODATA_DONE, TG_SCHEMA_ODATA_DONE},
        {TG_WORKER_GRAPH, TG_TOPIC_VIRTUAL_DONE, TG_SCHEMA_VIRTUAL_DONE},
    };
    for (int i = 0; i < ORCH_NWORKERS; i++) {
        orch_worker_t *w = &workers[i];
        memset(w, 0, sizeof *w);
        w->id = spec[i].id;
        w->position = i + 1;
        w->input_topic = spec[i].topic;
        w->input_schema = spec[i].schema;
    }
}

int orch_worker_policy_set(orch_conf_t *conf, const orch_worker_policy_t *row, char *errstr,
                           size_t errlen) {
    orch_worker_t *w = (orch_worker_t *)orch_worker_find(conf, row->id);
    if (!w) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "workers table: \"%s\" is not a worker of this pipeline (%s, %s, %s)",
                       row->id, conf->workers[0].id, conf->workers[1].id, conf->workers[2].id);
    }
    if (row->position != w->position) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "workers table: %s at position %d, but its input (%s) makes it worker %d",
                       w->id, row->position, w->input_topic, w->position);
    }
    if (row->max_attempts < 1 || row->timeout_s < 1) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "workers table: %s needs max_attempts and timeout_s of at least 1", w->id);
    }
    snprintf(w->name, sizeof w->name, "%s", row->name);
    snprintf(w->version, sizeof w->version, "%s", row->version);
    w->critical = row->critical;
    w->max_attempts = row->max_attempts;
    w->timeout_s = row->timeout_s;
    return TG_OK;
}

int orch_workers_complete(const orch_conf_t *conf, char *errstr, size_t errlen) {
    for (int i = 0; i < ORCH_NWORKERS; i++) {
        if (conf->workers[i].max_attempts < 1) {
            return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                           "workers table: no row for %s (run pipeline-admin migrate)",
                           conf->workers[i].id);
        }
    }
    return TG_OK;
}

int orch_conf_load_env(orch_conf_t *conf, char *errstr, size_t errlen) {
    const char *delays = tg_env_str("RETRY_DELAYS_S", "60,300");
    conf->ndelays = tg_delay_schedule_parse(delays, conf->delays_ms, ORCH_MAX_DELAYS);
    if (conf->ndelays < 1) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen,
                       "RETRY_DELAYS_S: \"%s\" is not one or two delays in seconds (e.g. 60,300)",
                       delays);
    }
    int rc = tg_env_long("SCHEDULE_INTERVAL_S", 21600, 0, 365L * 86400, &conf->schedule_interval_s,
                         errstr, errlen);
    if (!rc) {
        rc = tg_env_long("SCHEDULE_CHECK_MS", 1000, 10, 60000, &conf->schedule_check_ms, errstr,
                         errlen);
    }
    if (!rc) {
        rc = tg_env_long("TIMEOUT_SWEEP_S", 5, 1, 3600, &conf->sweep_interval_s, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("API_CACHE_MS", 500, 0, 60000, &conf->api_cache_ms, errstr, errlen);
    }
    if (!rc) {
        rc = tg_env_long("EXECUTE_WAIT_S", 60, 0, ORCH_WAIT_MAX_S, &conf->execute_wait_s, errstr,
                         errlen);
    }
    for (int i = 0; i < ORCH_NWORKERS && !rc; i++) {
        char name[32];
        long v;
        snprintf(name, sizeof name, "WORKER_TIMEOUT_S_%d", i + 1);
        rc = tg_env_long(name, conf->workers[i].timeout_s, 1, 86400, &v, errstr, errlen);
        conf->workers[i].timeout_s = (int)v;
    }
    if (!rc) {
        rc = retention_conf_load(&conf->retention, errstr, errlen);
    }
    conf->alert_webhook = tg_env_str("ALERT_WEBHOOK_URL", NULL);
    /* Optional: the orchestrator runs without Redis; only the graph
     * endpoints need it (tg_config_load reads it only where required). */
    conf->redis_url = tg_env_str("REDIS_URL", NULL);
    snprintf(conf->group, sizeof conf->group, "%sorchestrator",
             conf->cfg.topic_prefix ? conf->cfg.topic_prefix : "");
    return rc;
}

const orch_worker_t *orch_worker_find(const orch_conf_t *conf, const char *id) {
    for (int i = 0; id && i < ORCH_NWORKERS; i++) {
        if (!strcmp(conf->workers[i].id, id)) {
            return &conf->workers[i];
        }
    }
    return NULL;
}

const orch_worker_t *orch_worker_by_input(const orch_conf_t *conf, const char *base_topic) {
    for (int i = 0; base_topic && i < ORCH_NWORKERS; i++) {
        if (!strcmp(conf->workers[i].input_topic, base_topic)) {
            return &conf->workers[i];
        }
    }
    return NULL;
}

const orch_worker_t *orch_worker_next(const orch_conf_t *conf, const orch_worker_t *w) {
    return w->position < ORCH_NWORKERS ? &conf->workers[w->position] : NULL;
}

/* Attempt n+1 waits for the n-th delay (the last one repeats when a worker
 * allows more attempts than there are delay topics). */
void orch_retry_plan(const orch_conf_t *conf, const orch_worker_t *w, int attempt, int retryable,
                     orch_retry_plan_t *plan) {
    memset(plan, 0, sizeof *plan);
    if (!retryable || attempt < 1 || attempt >= w->max_attempts || conf->ndelays < 1) {
        return;
    }
    int idx = attempt - 1 < conf->ndelays ? attempt - 1 : conf->ndelays - 1;
    plan->retry = 1;
    plan->next_attempt = attempt + 1;
    plan->delay_index = idx;
    plan->delay_ms = conf->delays_ms[idx];
}

const char *orch_delay_topic(int delay_index) {
    return delay_index == 0 ? TG_TOPIC_RETRY_1 : TG_TOPIC_RETRY_2;
}

const char *orch_topic_base(const orch_conf_t *conf, const char *topic) {
    const char *prefix = conf->cfg.topic_prefix ? conf->cfg.topic_prefix : "";
    size_t n = strlen(prefix);
    return strncmp(topic, prefix, n) == 0 ? topic + n : topic;
}

static int in_list(const char *s, const char *const *list) {
    for (; s && *list; list++) {
        if (!strcmp(s, *list)) {
            return 1;
        }
    }
    return 0;
}

int orch_run_status_valid(const char *s) {
    static const char *const all[] = {"queued",    "running",   "succeeded", "failed",
                                      "cancelled", "timed_out", NULL};
    return in_list(s, all);
}

int orch_trigger_valid(const char *s) {
    static const char *const all[] = {"schedule", "api", "kafka", "retry", "rollback", NULL};
    return in_list(s, all);
}

const char *orch_status_public(const char *step_status) {
    return step_status && !strcmp(step_status, "succeeded") ? "success" : step_status;
}

int orch_id_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= TG_ID_LEN) {
        return 0;
    }
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

int orch_token_equal(const char *presented, const char *expected) {
    size_t np = strlen(presented), ne = strlen(expected);
    unsigned char diff = (unsigned char)(np != ne);
    /* Always walk the expected token's length: timing depends on it only. */
    for (size_t i = 0; i < ne; i++) {
        unsigned char c = i < np ? (unsigned char)presented[i] : 0;
        diff |= (unsigned char)(c ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

int orch_path_segments(const char *path, const char *prefix, char seg[][64], int max) {
    size_t n = strlen(prefix);
    if (strncmp(path, prefix, n) != 0 || (path[n] && path[n] != '/')) {
        return -1;
    }
    int count = 0;
    for (const char *p = path + n; *p;) {
        while (*p == '/') {
            p++;
        }
        size_t len = strcspn(p, "/");
        if (len == 0) {
            break;
        }
        if (len >= 64 || count >= max) {
            return -1;
        }
        memcpy(seg[count], p, len);
        seg[count++][len] = '\0';
        p += len;
    }
    return count;
}

int orch_wait_choose(const char *wait_param, int prefers_async, long default_wait_s,
                     orch_wait_t *out) {
    out->wait_s = prefers_async ? 0 : default_wait_s;
    out->async_applied = prefers_async && !wait_param;
    if (!wait_param) {
        return 0;
    }
    /* Digits only: strtol would take " 5", "+5" and "5e3" (as 5). */
    size_t n = strspn(wait_param, "0123456789");
    if (n == 0 || n > 6 || wait_param[n] != '\0') {
        return -1;
    }
    long wait_s = strtol(wait_param, NULL, 10);
    if (wait_s > ORCH_WAIT_MAX_S) {
        return -1;
    }
    out->wait_s = wait_s;
    return 0;
}

int orch_waiters_max(long http_threads) {
    return http_threads > 1 ? (int)(http_threads / 2) : 0;
}
