/* Retries through the delay topics, dead letters and the admin alert. */
#ifndef ORCH_RETRY_H
#define ORCH_RETRY_H

#include "orchestrator.h"

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

#endif
