/* A test-only client of tg/kafka.h and tg/worker.h, driven by kafka_test.py:
 *   kafka_roundtrip create-topic NAME PARTITIONS
 *   kafka_roundtrip produce TOPIC N            (prints each event id)
 *   kafka_roundtrip consume TOPIC GROUP N [--crash-before-store]
 *   kafka_roundtrip worker                     (tg_worker_main with an echo step)
 * Configuration comes from the environment like a service's (KAFKA_BROKERS...). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg/backoff.h"
#include "tg/envelope.h"
#include "tg/kafka.h"
#include "tg/log.h"
#include "tg/topics.h"
#include "tg/worker.h"

static int config(tg_config_t *cfg) {
    char err[512];
    tg_log_init("kafka-roundtrip", TG_LOG_WARN);
    if (tg_config_load(cfg, "kafka-roundtrip", TG_NEED_KAFKA, 0, err, sizeof err) != TG_OK) {
        fprintf(stderr, "kafka_roundtrip: %s\n", err);
        return -1;
    }
    return 0;
}

static int create_topic(const char *name, int partitions) {
    tg_config_t cfg;
    char err[512];
    if (config(&cfg) != 0) {
        return 2;
    }
    tg_producer_t *p = tg_producer_new(&cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "kafka_roundtrip: %s\n", err);
        return 2;
    }
    rd_kafka_t *rk = tg_producer_handle(p);
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(name, partitions, 1, err, sizeof err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &topic, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    int rc = 1;
    if (!ev) {
        fprintf(stderr, "kafka_roundtrip: create-topic %s: no answer\n", name);
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "kafka_roundtrip: create-topic %s: %s\n", name,
                rd_kafka_event_error_string(ev));
    } else {
        size_t n = 0;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t terr = n ? rd_kafka_topic_result_error(res[0]) : 0;
        rc = terr && terr != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS;
        if (rc) {
            fprintf(stderr, "kafka_roundtrip: create-topic %s: %s\n", name, rd_kafka_err2str(terr));
        }
    }
    if (ev) {
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(topic);
    tg_producer_destroy(p, 1000);
    return rc;
}

static int produce(const char *topic, int n) {
    tg_config_t cfg;
    char err[512];
    if (config(&cfg) != 0) {
        return 2;
    }
    tg_producer_t *p = tg_producer_new(&cfg, err, sizeof err);
    if (!p) {
        fprintf(stderr, "kafka_roundtrip: %s\n", err);
        return 2;
    }
    int rc = 0;
    const tg_header_t headers[] = {{"x-test", "kafka_roundtrip"}};
    for (int i = 0; i < n && rc == 0; i++) {
        tg_envelope_t *env = tg_envelope_new(TG_SCHEMA_TRIGGER, NULL, NULL);
        cJSON_AddNumberToObject(env->payload, "seq", i);
        char *json = tg_envelope_serialize(env);
        if (tg_producer_send(p, topic, env->source_id, json, strlen(json), headers, 1, 15000, err,
                             sizeof err) != TG_OK) {
            fprintf(stderr, "kafka_roundtrip: %s\n", err);
            rc = 1;
        } else {
            printf("%s\n", env->event_id);
            fflush(stdout);
        }
        free(json);
        tg_envelope_destroy(env);
    }
    tg_producer_destroy(p, 5000);
    return rc;
}

static int consume(const char *topic, const char *group, int n, int crash_before_store) {
    tg_config_t cfg;
    char err[512];
    if (config(&cfg) != 0) {
        return 2;
    }
    const char *topics[] = {topic};
    const tg_consumer_opts_t opts = {.group_id = group, .topics = topics, .ntopics = 1};
    tg_consumer_t *c = tg_consumer_new(&cfg, &opts, err, sizeof err);
    if (!c) {
        fprintf(stderr, "kafka_roundtrip: %s\n", err);
        return 2;
    }
    int got = 0, rc = 0;
    int64_t deadline = tg_mono_ms() + 60000;
    while (got < n && tg_mono_ms() < deadline) {
        rd_kafka_message_t *msg = tg_consumer_poll(c, 100);
        if (!msg) {
            continue;
        }
        tg_envelope_t *env = NULL;
        char value[64];
        if (tg_envelope_parse(msg->payload, msg->len, &env, err, sizeof err) != TG_OK ||
            tg_message_header(msg, "x-test", value, sizeof value) != TG_OK) {
            fprintf(stderr, "kafka_roundtrip: bad message: %s\n", err);
            rc = 1;
        } else {
            printf("%s\n", env->event_id);
            fflush(stdout);
        }
        tg_envelope_destroy(env);
        if (crash_before_store) {
            _exit(9); /* as if killed: nothing stored, nothing committed */
        }
        if (tg_consumer_done(c, msg, err, sizeof err) != TG_OK) {
            fprintf(stderr, "kafka_roundtrip: %s\n", err);
            rc = 1;
        }
        rd_kafka_message_destroy(msg);
        got++;
    }
    tg_consumer_destroy(c);
    if (got < n) {
        fprintf(stderr, "kafka_roundtrip: got %d of %d messages\n", got, n);
        return 3;
    }
    return rc;
}

/* The echo step: payload {"fail":"invalid"|"unavailable"} fails,
 * {"sleepMs":N} sleeps (abandoning on shutdown), anything else succeeds. */
static void echo_step(tg_worker_ctx_t *ctx, const tg_envelope_t *in, tg_step_result_t *res) {
    const char *fail = tg_json_str(in->payload, "fail");
    double sleep_ms = tg_json_num(in->payload, "sleepMs", 0);
    if (sleep_ms > 0) {
        tg_sleep_ms((int64_t)sleep_ms, &ctx->stop);
        if (ctx->stop) {
            tg_step_fail(res, TG_ERR_SHUTDOWN, "interrupted by shutdown");
            return;
        }
    }
    if (fail) {
        tg_step_fail(res, strcmp(fail, "invalid") == 0 ? TG_ERR_INVALID : TG_ERR_UNAVAILABLE,
                     "told to fail: %s", fail);
        res->details = cJSON_CreateObject();
        cJSON_AddStringToObject(res->details, "report", "details survive failures");
        return;
    }
    snprintf(res->message, sizeof res->message, "echoed %s", in->event_id);
    res->added = 3;
    res->updated = 2;
    res->dataset_version = 41;
    res->details = cJSON_CreateObject();
    cJSON_AddStringToObject(res->details, "echo", tg_json_str(in->payload, "value"));
    cJSON_AddStringToObject(res->details, "workerId", "must not override");
}

static int worker(void) {
    static const tg_worker_def_t def = {
        .worker_id = "roundtrip-worker",
        .worker_name = "Round Trip Test Worker",
        .version = "0.0.1",
        .input_topic = TG_TOPIC_TRIGGER,
        .input_schema = TG_SCHEMA_TRIGGER,
        .output_topic = TG_TOPIC_ODATA_DONE,
        .output_schema = TG_SCHEMA_ODATA_DONE,
        .default_port = 0,
        .needs = 0,
        .step = echo_step,
    };
    return tg_worker_main(&def);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "create-topic") == 0 && argc == 4) {
        return create_topic(argv[2], atoi(argv[3]));
    }
    if (strcmp(mode, "produce") == 0 && argc == 4) {
        return produce(argv[2], atoi(argv[3]));
    }
    if (strcmp(mode, "consume") == 0 && (argc == 5 || argc == 6)) {
        int crash = argc == 6 && strcmp(argv[5], "--crash-before-store") == 0;
        return consume(argv[2], argv[3], atoi(argv[4]), crash);
    }
    if (strcmp(mode, "worker") == 0) {
        return worker();
    }
    fprintf(stderr, "usage: kafka_roundtrip create-topic NAME PARTITIONS | produce TOPIC N |\n"
                    "       consume TOPIC GROUP N [--crash-before-store] | worker\n");
    return 2;
}
