/* Retries through delay topics: a failed step's input waits in the topic of
 * its delay (one topic per delay, so due times are in order within a
 * partition) and the delay consumer forwards it to its original topic when
 * due, never early and never sleeping: a partition whose head is not due is
 * paused until it is. Also dead letters, the admin alert, and reading a
 * message back for replay. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert.h"
#include "events.h"
#include "orchestrator.h"
#include "retry.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/text.h"
#include "tg/time.h"
#include "tg/topics.h"

#define RETRY_LATER_MS 1000 /* a forward that failed is tried again after this */

struct orch_delay_s {
    tg_consumer_t *consumer;
    rd_kafka_t *rk; /* the consumer's handle, for pause and resume */
    holds_t holds;
    orch_conf_t *conf;
};

/* ---- scheduling a retry ------------------------------------------------ */

int retry_schedule(orch_loop_t *o, const orch_failure_t *f, const orch_retry_plan_t *plan,
                   char *errstr, size_t errlen) {
    char part[16], off[32], attempt[16], first[32], due[32], error[ORCH_ERROR_HEADER_MAX + 1];
    char *value = events_with_attempt(f->input_json, plan->next_attempt, 0);
    if (!value) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s input is not a JSON envelope",
                       f->worker->id);
    }
    int64_t due_ms = tg_now_ms() + plan->delay_ms;
    snprintf(part, sizeof part, "%d", f->orig_partition);
    snprintf(off, sizeof off, "%lld", (long long)f->orig_offset);
    snprintf(attempt, sizeof attempt, "%d", plan->next_attempt);
    tg_time_iso(f->first_failed_ms, first);
    snprintf(due, sizeof due, "%lld", (long long)due_ms);
    snprintf(error, sizeof error, "%s", f->error);
    tg_utf8_truncate(error, ORCH_ERROR_HEADER_MAX);
    const tg_header_t headers[] = {
        {"x-original-topic", f->orig_topic},
        {"x-original-partition", part},
        {"x-original-offset", off},
        {"x-attempt", attempt},
        {"x-first-failure-at", first},
        {"x-due-at", due},
        {"x-last-error", error},
        {"x-run-id", f->run_id},
    };
    const char *topic = orch_delay_topic(plan->delay_index);
    int rc = events_send(o->producer, o->conf, topic, f->source_id, value, strlen(value), headers,
                         sizeof headers / sizeof headers[0], errstr, errlen);
    free(value);
    if (rc == TG_OK) {
        tg_info("%s attempt %d scheduled in %.1f s through %s", f->worker->id, plan->next_attempt,
                (double)plan->delay_ms / 1000.0, topic);
    }
    return rc;
}

/* ---- giving up --------------------------------------------------------- */

/* The alert's JSON body for ALERT_WEBHOOK_URL (caller frees), or NULL. */
static char *alert_body(const orch_failure_t *f) {
    cJSON *body = cJSON_CreateObject();
    char text[1200];
    snprintf(text, sizeof text, "Pipeline step %s gave up after %d attempt(s): %s", f->worker->id,
             f->attempt, f->error);
    cJSON_AddStringToObject(body, "text", text);
    cJSON_AddStringToObject(body, "runId", f->run_id);
    cJSON_AddStringToObject(body, "workerId", f->worker->id);
    cJSON_AddNumberToObject(body, "attempts", f->attempt);
    cJSON_AddStringToObject(body, "error", f->error);
    char *json = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    return json;
}

int retry_give_up(orch_loop_t *o, const orch_failure_t *f, char *errstr, size_t errlen) {
    char part[16], off[32], attempt[16], failed_at[32], error[ORCH_ERROR_HEADER_MAX + 1];
    snprintf(part, sizeof part, "%d", f->orig_partition);
    snprintf(off, sizeof off, "%lld", (long long)f->orig_offset);
    snprintf(attempt, sizeof attempt, "%d", f->attempt);
    tg_now_iso(failed_at);
    snprintf(error, sizeof error, "%s", f->error);
    tg_utf8_truncate(error, ORCH_ERROR_HEADER_MAX);
    const tg_header_t headers[] = {
        {"x-error", error},
        {"x-original-topic", f->orig_topic},
        {"x-original-partition", part},
        {"x-original-offset", off},
        {"x-worker", f->worker->id},
        {"x-failed-at", failed_at},
        {"x-attempt", attempt},
        {"x-run-id", f->run_id},
    };
    const char *value = f->input_json ? f->input_json : "";
    int rc =
        events_send(o->producer, o->conf, TG_TOPIC_DEAD_LETTER, f->source_id, value, strlen(value),
                    headers, sizeof headers / sizeof headers[0], errstr, errlen);
    if (rc != TG_OK) {
        return rc;
    }
    tg_metric_add(ORCH_M_DEAD_LETTERS, "", 1);
    /* "Give up, alert admin": this line, the metric above and the webhook. */
    tg_error("ALERT: %s gave up after %d attempt(s), input sent to the dead-letter topic: %s",
             f->worker->id, f->attempt, f->error);
    char *body = o->alerts ? alert_body(f) : NULL;
    if (body) {
        orch_alerts_post(o->alerts, body); /* sent by the alert thread */
        free(body);
    }
    return TG_OK;
}

/* ---- the delay consumer ------------------------------------------------ */

orch_delay_t *delay_new(orch_conf_t *conf, char *errstr, size_t errlen) {
    orch_delay_t *d = calloc(1, sizeof *d);
    char group[ORCH_TOPIC_LEN + 16], t1[ORCH_TOPIC_LEN], t2[ORCH_TOPIC_LEN];
    if (!d) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
        return NULL;
    }
    d->conf = conf;
    snprintf(group, sizeof group, "%s-delay", conf->group);
    const char *topics[] = {tg_topic(&conf->cfg, TG_TOPIC_RETRY_1, t1, sizeof t1),
                            tg_topic(&conf->cfg, TG_TOPIC_RETRY_2, t2, sizeof t2)};
    const tg_consumer_opts_t opts = {.group_id = group,
                                     .topics = topics,
                                     .ntopics = 2,
                                     .on_rebalance = holds_rebalance,
                                     .arg = &d->holds};
    d->consumer = tg_consumer_new(&conf->cfg, &opts, errstr, errlen);
    if (!d->consumer) {
        free(d);
        return NULL;
    }
    d->rk = tg_consumer_handle(d->consumer);
    return d;
}

void delay_destroy(orch_delay_t *d) {
    if (!d) {
        return;
    }
    tg_consumer_destroy(d->consumer);
    free(d);
}

static void offset_store(orch_delay_t *d, const rd_kafka_message_t *msg) {
    char err[512];
    if (tg_consumer_done(d->consumer, msg, err, sizeof err) != TG_OK) {
        tg_warn("%s (the retry may be forwarded again)", err);
    }
}

/* Whether the step still waits for this retry: a step that succeeded, was
 * cancelled or rerun meanwhile, or a run that ended, makes it obsolete. */
static int still_wanted(orch_loop_t *o, const rd_kafka_message_t *msg, const char *orig_topic,
                        int attempt, int *wanted) {
    char err[512];
    cJSON *root = tg_json_parse(msg->payload, msg->len, TG_JSON_MAX_DEPTH);
    const char *run_id = tg_json_str(root, "runId");
    const orch_worker_t *w = orch_worker_by_input(o->conf, orch_topic_base(o->conf, orig_topic));
    orch_run_t run;
    orch_step_t step = {0};
    int rc = TG_OK;
    *wanted = 1;
    if (run_id && w && (rc = runs_get(o->pg, run_id, &run, err, sizeof err)) == TG_OK &&
        run.exists && (rc = runs_step_get(o->pg, run_id, w->id, &step, err, sizeof err)) == TG_OK) {
        int waiting = !strcmp(step.status, "retrying") || !strcmp(step.status, "timed_out");
        *wanted = strcmp(run.status, "running") == 0 && (!step.exists || waiting) &&
                  attempt > step.attempts;
        if (!*wanted) {
            tg_log_set_run_id(run_id);
            tg_info("Retry attempt %d of %s dropped: run %s, step %s (attempt %d)", attempt, w->id,
                    run.status, step.exists ? step.status : "unknown", step.attempts);
            tg_log_set_run_id(NULL);
        }
    }
    if (rc) {
        tg_error("%s", err);
    }
    free(step.last_input);
    cJSON_Delete(root);
    return rc;
}

/* Forwards a due message to its original topic with the same key. Its
 * x-deadline (epoch ms) is the step's timeout from now: the worker stops the
 * attempt when this orchestrator gives up on it. */
static int forward(orch_loop_t *o, const rd_kafka_message_t *msg, const char *orig_topic,
                   const char *attempt, char *errstr, size_t errlen) {
    char *key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
    char deadline[24];
    const orch_worker_t *w = orch_worker_by_input(o->conf, orch_topic_base(o->conf, orig_topic));
    snprintf(deadline, sizeof deadline, "%lld",
             (long long)(tg_now_ms() + (int64_t)(w ? w->timeout_s : 0) * 1000));
    const tg_header_t headers[] = {{"x-attempt", attempt},
                                   {"x-retry-from", rd_kafka_topic_name(msg->rkt)},
                                   {"x-deadline", deadline}};
    int rc = tg_producer_send(o->producer, orig_topic, key, msg->payload, msg->len, headers,
                              w ? 3 : 2, ORCH_SEND_TIMEOUT_MS, errstr, errlen);
    free(key);
    return rc;
}

static void delay_message(orch_loop_t *o, const rd_kafka_message_t *msg) {
    orch_delay_t *d = o->delay;
    char orig[ORCH_TOPIC_LEN], due[32], attempt[16] = "", err[512];
    int64_t now = tg_now_ms(), due_ms;
    int wanted;
    if (tg_message_header(msg, "x-original-topic", orig, sizeof orig) != TG_OK || !orig[0] ||
        tg_message_header(msg, "x-due-at", due, sizeof due) != TG_OK ||
        (due_ms = atoll(due)) <= 0) {
        tg_error("Delay message %s [%d] @%lld lacks x-original-topic or x-due-at: skipped",
                 rd_kafka_topic_name(msg->rkt), (int)msg->partition, (long long)msg->offset);
        offset_store(d, msg);
        return;
    }
    if (now < due_ms) {
        holds_pause(&d->holds, d->rk, msg, due_ms); /* never early */
        return;
    }
    tg_message_header(msg, "x-attempt", attempt, sizeof attempt);
    if (still_wanted(o, msg, orig, atoi(attempt), &wanted) != TG_OK) {
        holds_pause(&d->holds, d->rk, msg, now + RETRY_LATER_MS);
    } else if (wanted && forward(o, msg, orig, attempt, err, sizeof err) != TG_OK) {
        tg_error("Retry not forwarded yet: %s", err);
        holds_pause(&d->holds, d->rk, msg, now + RETRY_LATER_MS);
    } else {
        if (wanted) {
            double late = (double)(tg_now_ms() - due_ms) / 1000.0;
            tg_metric_observe("tg_delay_lateness_seconds",
                              "How late delayed retries were forwarded", "", late);
            tg_info("Retry attempt %s forwarded to %s (%.3f s after due)", attempt, orig, late);
        }
        offset_store(d, msg); /* only after the forward was acknowledged */
    }
}

void delay_poll(orch_loop_t *o, int timeout_ms) {
    orch_delay_t *d = o->delay;
    holds_resume_due(&d->holds, d->rk, tg_now_ms());
    rd_kafka_message_t *msg = tg_consumer_poll(d->consumer, timeout_ms);
    if (!msg) {
        return;
    }
    if (!holds_find(&d->holds, rd_kafka_topic_name(msg->rkt), msg->partition)) {
        delay_message(o, msg);
    } /* else: fetched before the pause; it is read again on resume */
    rd_kafka_message_destroy(msg);
}

/* ---- reading a message back (replay) ----------------------------------- */

void retry_fetched_free(orch_fetched_t *f) {
    free(f->key);
    free(f->value);
    memset(f, 0, sizeof *f);
}

static int fetch_copy(const rd_kafka_message_t *msg, orch_fetched_t *out, char *errstr,
                      size_t errlen) {
    out->key = msg->key ? strndup(msg->key, msg->key_len) : NULL;
    out->value = malloc(msg->len + 1);
    if (!out->value) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "out of memory");
    }
    memcpy(out->value, msg->payload, msg->len);
    out->value[msg->len] = '\0';
    out->len = msg->len;
    tg_message_header(msg, "x-original-topic", out->original_topic, sizeof out->original_topic);
    return TG_OK;
}

/* Polls rk until the message at offset (or the partition's end) shows up. */
static int fetch_poll(rd_kafka_t *rk, int64_t offset, orch_fetched_t *out, char *errstr,
                      size_t errlen) {
    int64_t deadline = tg_mono_ms() + 10000;
    while (tg_mono_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);
        if (!msg) {
            continue;
        }
        int rc = 1;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF || (!msg->err && msg->offset > offset)) {
            rc = tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "no message at offset %lld",
                         (long long)offset);
        } else if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rc = tg_fail(msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION ||
                                 msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
                             ? TG_ERR_NOTFOUND
                             : TG_ERR_KAFKA,
                         errstr, errlen, "kafka: %s", rd_kafka_message_errstr(msg));
        } else if (msg->offset == offset) {
            rc = fetch_copy(msg, out, errstr, errlen);
        }
        rd_kafka_message_destroy(msg);
        if (rc != 1) {
            return rc;
        }
    }
    return tg_fail(TG_ERR_TIMEOUT, errstr, errlen, "kafka: no answer within 10 s");
}

int retry_fetch(const orch_conf_t *conf, const char *topic, int partition, int64_t offset,
                orch_fetched_t *out, char *errstr, size_t errlen) {
    memset(out, 0, sizeof *out);
    char group[ORCH_TOPIC_LEN + 16];
    snprintf(group, sizeof group, "%s-replay", conf->group);
    rd_kafka_t *rk = tg_kafka_reader_new(&conf->cfg, group, errstr, errlen);
    if (!rk) {
        return TG_ERR_KAFKA;
    }
    /* A partition the topic does not have is not found (librdkafka would
     * wait for it to appear until fetch_poll gives up). */
    int count = 0;
    if (tg_kafka_partition_count(rk, topic, 5000, &count, NULL, 0) != TG_OK) {
        count = 0; /* unknown: let the fetch try */
    }
    if (count > 0 && partition >= count) {
        rd_kafka_destroy(rk);
        return tg_fail(TG_ERR_NOTFOUND, errstr, errlen, "%s has %d partition(s), not %d", topic,
                       count, partition + 1);
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    int rc = err ? tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", rd_kafka_err2str(err))
                 : fetch_poll(rk, offset, out, errstr, errlen);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (rc) {
        retry_fetched_free(out);
    }
    return rc;
}
