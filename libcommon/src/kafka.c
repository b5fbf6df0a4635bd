/* Kafka on librdkafka: configuration from the environment, an idempotent
 * producer whose sends wait for their own delivery report, and an
 * at-least-once group consumer (offsets stored only by tg_consumer_done). */
#include "tg/kafka.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/time.h"

extern char **environ;

#define ENV_PREFIX "KAFKA_CONF_"
#define TG_LAG_LABELS_LEN 320

/* First member of both handles (their librdkafka opaque): once closing is
 * set, errors of a handle being torn down are not logged, so a program's
 * last stderr line stays its own. */
typedef struct {
    atomic_int closing;
} handle_state_t;

struct tg_producer_s {
    handle_state_t hs;
    rd_kafka_t *rk;
    pthread_mutex_t lock; /* guards every send_state_t of this producer */
};

struct tg_consumer_s {
    handle_state_t hs;
    rd_kafka_t *rk;
    tg_rebalance_fn on_rebalance; /* may be NULL */
    void *arg;
};

/* The state of one send, shared with its delivery report. Heap-allocated:
 * when the sender gives up waiting it sets abandoned and the late report
 * frees it instead. */
typedef struct {
    int done;
    int abandoned;
    rd_kafka_resp_err_t err;
} send_state_t;

/* ---- configuration ----------------------------------------------------- */

static int closing(const rd_kafka_t *rk) {
    const handle_state_t *hs = rd_kafka_opaque(rk);
    return hs && atomic_load(&hs->closing);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
    if (closing(rk)) {
        return;
    }
    tg_warn("kafka %s: %s: %s", rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err),
            reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    /* syslog levels: 0..4 are emergencies to warnings, the rest chatter. */
    if (closing(rk)) {
        return;
    }
    if (level <= 4) {
        tg_warn("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
    } else {
        tg_debug("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *what, const char *name, const char *value,
                    char *errstr, size_t errlen) {
    char rderr[512];
    if (rd_kafka_conf_set(conf, name, value, rderr, sizeof rderr) != RD_KAFKA_CONF_OK) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%s: %s", what, rderr);
    }
    return TG_OK;
}

/* KAFKA_CONF_SECURITY_PROTOCOL=x sets security.protocol=x. */
static int apply_env_var(rd_kafka_conf_t *conf, const char *entry, char *errstr, size_t errlen) {
    const char *eq = strchr(entry, '=');
    size_t namelen = eq ? (size_t)(eq - entry) : 0;
    char var[256], prop[256];
    if (!eq || namelen <= strlen(ENV_PREFIX) || namelen >= sizeof var) {
        return tg_fail(TG_ERR_CONFIG, errstr, errlen, "%.*s: not a property name",
                       (int)(namelen ? namelen : strlen(entry)), entry);
    }
    memcpy(var, entry, namelen);
    var[namelen] = '\0';
    size_t n = 0;
    for (const char *s = var + strlen(ENV_PREFIX); *s; s++) {
        prop[n++] = *s == '_' ? '.' : (char)tolower((unsigned char)*s);
    }
    prop[n] = '\0';
    return conf_set(conf, var, prop, eq + 1, errstr, errlen);
}

int tg_kafka_conf_apply_env(rd_kafka_conf_t *conf, const tg_config_t *cfg, char *errstr,
                            size_t errlen) {
    int rc = conf_set(conf, "KAFKA_BROKERS", "bootstrap.servers",
                      cfg->kafka_brokers ? cfg->kafka_brokers : "", errstr, errlen);
    if (rc == TG_OK && cfg->service && *cfg->service) {
        rc = conf_set(conf, "client.id", "client.id", cfg->service, errstr, errlen);
    }
    for (char **e = environ; rc == TG_OK && e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, strlen(ENV_PREFIX)) == 0) {
            rc = apply_env_var(conf, *e, errstr, errlen);
        }
    }
    return rc;
}

/* A conf with our callbacks, the given defaults, then the environment. */
static rd_kafka_conf_t *conf_new(const tg_config_t *cfg, const char *const *defaults, char *errstr,
                                 size_t errlen) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    int rc = TG_OK;
    for (size_t i = 0; defaults[i] && rc == TG_OK; i += 2) {
        rc = conf_set(conf, defaults[i], defaults[i], defaults[i + 1], errstr, errlen);
    }
    if (rc == TG_OK) {
        rc = tg_kafka_conf_apply_env(conf, cfg, errstr, errlen);
    }
    if (rc != TG_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

/* ---- producer ---------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
    tg_producer_t *p = opaque;
    send_state_t *st = msg->_private;
    if (!st) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    if (st->abandoned) {
        free(st);
    } else {
        st->err = msg->err;
        st->done = 1;
    }
    pthread_mutex_unlock(&p->lock);
}

tg_producer_t *tg_producer_new(const tg_config_t *cfg, char *errstr, size_t errlen) {
    static const char *const defaults[] = {"enable.idempotence", "true", "acks", "all",
                                           "linger.ms",          "5",    NULL};
    tg_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        tg_fail(TG_ERR_NOMEM, errstr, errlen, "kafka: out of memory");
        return NULL;
    }
    rd_kafka_conf_t *conf = conf_new(cfg, defaults, errstr, errlen);
    if (!conf) {
        free(p);
        return NULL;
    }
    atomic_init(&p->hs.closing, 0);
    pthread_mutex_init(&p->lock, NULL);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    char rderr[512];
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof rderr);
    if (!p->rk) {
        rd_kafka_conf_destroy(conf);
        pthread_mutex_destroy(&p->lock);
        free(p);
        tg_fail(TG_ERR_CONFIG, errstr, errlen, "KAFKA_BROKERS: cannot create producer: %s", rderr);
        return NULL;
    }
    return p;
}

void tg_producer_prepare(tg_producer_t *p, const char *const *topics, size_t n, int timeout_ms) {
    rd_kafka_topic_t **handles = calloc(n ? n : 1, sizeof *handles);
    if (!handles) {
        return; /* only an optimisation: the first send would ask instead */
    }
    for (size_t i = 0; i < n; i++) {
        handles[i] = rd_kafka_topic_new(p->rk, topics[i], NULL);
    }
    /* all_topics 0 and no topic: the topics this handle knows, those above */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
    if (err) {
        tg_debug("kafka: no metadata for the producer's topics yet: %s", rd_kafka_err2str(err));
    } else {
        rd_kafka_metadata_destroy(md);
    }
    for (size_t i = 0; i < n; i++) {
        if (handles[i]) {
            rd_kafka_topic_destroy(handles[i]);
        }
    }
    free(handles);
}

rd_kafka_t *tg_producer_handle(tg_producer_t *p) {
    return p->rk;
}

static rd_kafka_headers_t *headers_new(const tg_header_t *headers, size_t nheaders) {
    if (!headers || nheaders == 0) {
        return NULL;
    }
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(nheaders);
    for (size_t i = 0; i < nheaders; i++) {
        const char *v = headers[i].value ? headers[i].value : "";
        rd_kafka_header_add(hdrs, headers[i].name, -1, v, -1);
    }
    return hdrs;
}

/* Enqueues the message, polling while the local queue is full. */
static rd_kafka_resp_err_t enqueue(tg_producer_t *p, const char *topic, const char *key,
                                   const void *value, size_t len, rd_kafka_headers_t *hdrs,
                                   send_state_t *st, int64_t deadline) {
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            p->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0), RD_KAFKA_V_VALUE((void *)value, len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(st), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tg_mono_ms() >= deadline) {
            return err;
        }
        rd_kafka_poll(p->rk, 50);
    }
}

/* Polls until st's delivery report arrived or the deadline passed; on
 * timeout hands st over to the report callback. Returns 1 when done. */
static int await_delivery(tg_producer_t *p, send_state_t *st, int64_t deadline) {
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int done = st->done;
        int64_t left = deadline - tg_mono_ms();
        if (!done && left <= 0) {
            st->abandoned = 1;
        }
        pthread_mutex_unlock(&p->lock);
        if (done || left <= 0) {
            return done;
        }
        rd_kafka_poll(p->rk, left < 50 ? (int)left : 50);
    }
}

int tg_producer_send(tg_producer_t *p, const char *topic, const char *key, const void *value,
                     size_t len, const tg_header_t *headers, size_t nheaders, int timeout_ms,
                     char *errstr, size_t errlen) {
    int64_t deadline = tg_mono_ms() + timeout_ms;
    send_state_t *st = calloc(1, sizeof *st);
    if (!st) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "kafka: out of memory");
    }
    rd_kafka_headers_t *hdrs = headers_new(headers, nheaders);
    rd_kafka_resp_err_t err = enqueue(p, topic, key, value, len, hdrs, st, deadline);
    if (err) {
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs); /* owned by librdkafka only on success */
        }
        free(st);
        return tg_fail(err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? TG_ERR_TIMEOUT : TG_ERR_KAFKA, errstr,
                       errlen, "kafka: cannot produce to %s: %s", topic, rd_kafka_err2str(err));
    }
    if (!await_delivery(p, st, deadline)) {
        return tg_fail(TG_ERR_TIMEOUT, errstr, errlen,
                       "kafka: no delivery report for %s within %d ms", topic, timeout_ms);
    }
    err = st->err;
    free(st);
    if (err) {
        return tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: delivery to %s failed: %s", topic,
                       rd_kafka_err2str(err));
    }
    return TG_OK;
}

void tg_producer_destroy(tg_producer_t *p, int timeout_ms) {
    if (!p) {
        return;
    }
    atomic_store(&p->hs.closing, 1); /* the count below says what matters */
    rd_kafka_flush(p->rk, timeout_ms);
    int left = rd_kafka_outq_len(p->rk);
    if (left > 0) {
        tg_warn("kafka: %d message(s) left undelivered at shutdown", left);
        /* Fail what is left so the reports free their abandoned states. */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
    }
    rd_kafka_destroy(p->rk);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* ---- consumer ---------------------------------------------------------- */

#define STATS_INTERVAL_MS "10000" /* consumer lag refresh; scrapes are rarer */
#define LAG_METRIC "tg_consumer_lag"
#define LAG_HELP "Messages between the committed offset and the end of the partition"

const char *tg_kafka_instance_id(void) {
    const char *pod = tg_env_str("POD_NAME", NULL);
    return pod && *pod ? pod : NULL;
}

static void lag_labels(char *out, size_t len, const char *topic, int32_t partition) {
    snprintf(out, len, "topic=\"%s\",partition=\"%d\"", topic, (int)partition);
}

/* librdkafka's statistics (every statistics.interval.ms, from the poll):
 * the lag of every partition this consumer fetches. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics"), *t, *p;
    char labels[TG_LAG_LABELS_LEN];
    cJSON_ArrayForEach(t, topics) {
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(t, "partitions")) {
            const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "consumer_lag");
            int32_t partition = (int32_t)atoi(p->string);
            if (partition < 0 || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "desired")) ||
                !cJSON_IsNumber(lag) || lag->valuedouble < 0) {
                continue; /* not ours, or nothing committed yet */
            }
            lag_labels(labels, sizeof labels, t->string, partition);
            tg_metric_set(LAG_METRIC, LAG_HELP, labels, lag->valuedouble);
        }
    }
    cJSON_Delete(root);
    return 0; /* librdkafka frees json */
}

static void lag_forget(const rd_kafka_topic_partition_list_t *parts) {
    char labels[TG_LAG_LABELS_LEN];
    for (int i = 0; i < parts->cnt; i++) {
        lag_labels(labels, sizeof labels, parts->elems[i].topic, parts->elems[i].partition);
        tg_metric_remove(LAG_METRIC, labels); /* another member reports it now */
    }
}

static void rebalance_fail(rd_kafka_t *rk, const char *what, const char *why) {
    tg_error("kafka %s: cannot %s partitions: %s", rd_kafka_name(rk), what, why);
}

/* Applies a change of assignment: incrementally under the cooperative
 * protocol, whole otherwise (an eager strategy set by
 * KAFKA_CONF_PARTITION_ASSIGNMENT_STRATEGY). */
static void assignment_apply(rd_kafka_t *rk, int assign, rd_kafka_topic_partition_list_t *parts) {
    const char *what = assign ? "assign" : "unassign";
    if (!strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE")) {
        rd_kafka_error_t *error = assign ? rd_kafka_incremental_assign(rk, parts)
                                         : rd_kafka_incremental_unassign(rk, parts);
        if (error) {
            rebalance_fail(rk, what, rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        return;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk, assign ? parts : NULL);
    if (err) {
        rebalance_fail(rk, what, rd_kafka_err2str(err));
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    tg_consumer_t *c = opaque;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assignment_apply(rk, 1, parts);
        /* librdkafka keeps a partition's pause flag across revoke and
         * re-assign; the caller's table of holds was told of the revoke, so
         * nobody would ever resume it. */
        rd_kafka_resp_err_t rerr = rd_kafka_resume_partitions(rk, parts);
        if (rerr) {
            rebalance_fail(rk, "resume", rd_kafka_err2str(rerr));
        }
        if (parts->cnt > 0) { /* the cooperative protocol also reports empty changes */
            tg_info("kafka %s: %d partition(s) assigned", rd_kafka_name(rk), parts->cnt);
        }
        if (c->on_rebalance) {
            c->on_rebalance(c->arg, rk, 1, parts);
        }
        return;
    }
    if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        tg_warn("kafka %s: rebalance failed: %s", rd_kafka_name(rk), rd_kafka_err2str(err));
    }
    /* The caller forgets the partitions first: after the unassign their
     * messages are another member's. */
    if (c->on_rebalance) {
        c->on_rebalance(c->arg, rk, 0, parts);
    }
    lag_forget(parts);
    if (parts->cnt > 0) {
        tg_info("kafka %s: %d partition(s) %s", rd_kafka_name(rk), parts->cnt,
                rd_kafka_assignment_lost(rk) ? "lost" : "revoked");
    }
    assignment_apply(rk, 0, parts);
}

/* Group settings: static membership from the pod name. The assignment
 * strategy stays librdkafka's eager default: with Debian's librdkafka 2.0
 * the cooperative protocol left consumers hung after a broker restart and at
 * close in the fault tests. KAFKA_CONF_PARTITION_ASSIGNMENT_STRATEGY=
 * cooperative-sticky turns it on; the rebalance callback handles both. */
static rd_kafka_conf_t *consumer_conf(tg_consumer_t *c, const tg_config_t *cfg,
                                      const char *group_id, char *errstr, size_t errlen) {
    const char *instance = tg_kafka_instance_id();
    /* max.poll.interval.ms: a step may run 10 minutes between two polls. */
    const char *const defaults[] = {"group.id",
                                    group_id,
                                    "enable.auto.commit",
                                    "true",
                                    "enable.auto.offset.store",
                                    "false",
                                    "auto.offset.reset",
                                    "earliest",
                                    "session.timeout.ms",
                                    "10000",
                                    "max.poll.interval.ms",
                                    "900000",
                                    "statistics.interval.ms",
                                    STATS_INTERVAL_MS,
                                    instance ? "group.instance.id" : NULL,
                                    instance,
                                    NULL};
    rd_kafka_conf_t *conf = conf_new(cfg, defaults, errstr, errlen);
    if (conf) {
        rd_kafka_conf_set_opaque(conf, c);
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
        rd_kafka_conf_set_stats_cb(conf, on_stats);
    }
    return conf;
}

static int consumer_subscribe(tg_consumer_t *c, const tg_consumer_opts_t *opts, char *errstr,
                              size_t errlen) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)opts->ntopics);
    for (size_t i = 0; i < opts->ntopics; i++) {
        rd_kafka_topic_partition_list_add(list, opts->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t err = rd_kafka_subscribe(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        return tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: cannot subscribe to %s: %s",
                       opts->ntopics ? opts->topics[0] : "(no topic)", rd_kafka_err2str(err));
    }
    return TG_OK;
}

tg_consumer_t *tg_consumer_new(const tg_config_t *cfg, const tg_consumer_opts_t *opts, char *errstr,
                               size_t errlen) {
    tg_consumer_t *c = calloc(1, sizeof *c);
    rd_kafka_conf_t *conf = c ? consumer_conf(c, cfg, opts->group_id, errstr, errlen) : NULL;
    if (!conf) {
        if (!c) {
            tg_fail(TG_ERR_NOMEM, errstr, errlen, "kafka: out of memory");
        }
        free(c);
        return NULL;
    }
    atomic_init(&c->hs.closing, 0);
    c->on_rebalance = opts->on_rebalance;
    c->arg = opts->arg;
    char rderr[512];
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof rderr);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        free(c);
        tg_fail(TG_ERR_CONFIG, errstr, errlen, "KAFKA_BROKERS: cannot create consumer: %s", rderr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    if (consumer_subscribe(c, opts, errstr, errlen) != TG_OK) {
        rd_kafka_destroy(c->rk);
        free(c);
        return NULL;
    }
    return c;
}

rd_kafka_t *tg_consumer_handle(tg_consumer_t *c) {
    return c->rk;
}

rd_kafka_message_t *tg_consumer_poll(tg_consumer_t *c, int timeout_ms) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!msg || !msg->err) {
        return msg;
    }
    if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        tg_warn("kafka: consume from %s [%d]: %s",
                msg->rkt ? rd_kafka_topic_name(msg->rkt) : "(none)", (int)msg->partition,
                rd_kafka_message_errstr(msg));
    }
    rd_kafka_message_destroy(msg);
    return NULL;
}

int tg_consumer_done(tg_consumer_t *c, const rd_kafka_message_t *msg, char *errstr, size_t errlen) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, msg->partition)->offset = msg->offset + 1;
    rd_kafka_resp_err_t err = rd_kafka_offsets_store(c->rk, list);
    if (!err) {
        err = list->elems[0].err;
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        return tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: cannot store offset %s [%d] @%lld: %s",
                       topic, (int)msg->partition, (long long)msg->offset, rd_kafka_err2str(err));
    }
    return TG_OK;
}

void tg_consumer_destroy(tg_consumer_t *c) {
    if (!c) {
        return;
    }
    atomic_store(&c->hs.closing, 1);
    rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
    if (err) {
        tg_warn("kafka: closing the consumer: %s", rd_kafka_err2str(err));
    }
    rd_kafka_destroy(c->rk);
    free(c);
}

/* ---- messages, metadata ------------------------------------------------ */

int tg_message_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t outlen) {
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;
    if (outlen) {
        out[0] = '\0';
    }
    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return TG_ERR_NOTFOUND;
    }
    if (outlen) {
        size_t n = size < outlen - 1 ? size : outlen - 1;
        if (val) {
            memcpy(out, val, n);
        }
        out[n] = '\0';
    }
    return TG_OK;
}

int tg_kafka_ping(rd_kafka_t *rk, int timeout_ms) {
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    int ok = md->broker_cnt > 0;
    rd_kafka_metadata_destroy(md);
    return ok;
}

/* ---- readers of chosen partitions --------------------------------------- */

rd_kafka_t *tg_kafka_reader_new(const tg_config_t *cfg, const char *group, char *errstr,
                                size_t errlen) {
    char rderr[256];
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    int rc = tg_kafka_conf_apply_env(kconf, cfg, errstr, errlen);
    const char *settings[][2] = {
        {"group.id", group}, {"enable.auto.commit", "false"}, {"enable.partition.eof", "true"}};
    for (size_t i = 0; !rc && i < sizeof settings / sizeof settings[0]; i++) {
        if (rd_kafka_conf_set(kconf, settings[i][0], settings[i][1], rderr, sizeof rderr) !=
            RD_KAFKA_CONF_OK) {
            rc = tg_fail(TG_ERR_CONFIG, errstr, errlen, "kafka: %s: %s", settings[i][0], rderr);
        }
    }
    rd_kafka_t *rk = rc ? NULL : rd_kafka_new(RD_KAFKA_CONSUMER, kconf, rderr, sizeof rderr);
    if (!rk) {
        rd_kafka_conf_destroy(kconf);
        if (!rc) {
            tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: %s", rderr);
        }
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

int tg_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count,
                             char *errstr, size_t errlen) {
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rkt ? rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms) : RD_KAFKA_RESP_ERR__FAIL;
    *count = 0;
    if (!err && md->topic_cnt == 1 && !md->topics[0].err) {
        *count = md->topics[0].partition_cnt;
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    return err ? tg_fail(TG_ERR_KAFKA, errstr, errlen, "kafka: metadata of %s: %s", topic,
                         rd_kafka_err2str(err))
               : TG_OK;
}
