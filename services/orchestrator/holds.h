/* Paused partitions (holds.c): a message that must wait (a retry not yet
 * due, or an event PostgreSQL could not take) is rewound and its partition
 * paused until a wall-clock time; a revoked partition loses its hold. */
#ifndef ORCH_HOLDS_H
#define ORCH_HOLDS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

#define ORCH_TOPIC_LEN 256 /* a topic name with its TOPIC_PREFIX */
#define HOLDS_MAX 64

typedef struct {
    char topic[ORCH_TOPIC_LEN];
    int32_t partition;
    int64_t offset;   /* where to resume reading */
    int64_t until_ms; /* wall clock */
} hold_t;

typedef struct {
    hold_t items[HOLDS_MAX];
    int n;
} holds_t;

/* Records a hold (replacing one of the same partition). Returns -1 when full. */
int holds_put(holds_t *h, const char *topic, int32_t partition, int64_t offset, int64_t until);
/* The hold of this partition, or NULL. */
const hold_t *holds_find(const holds_t *h, const char *topic, int32_t partition);
/* Removes and copies into out the first hold due at now; 0 when none. */
int holds_take_due(holds_t *h, int64_t now_ms, hold_t *out);
void holds_clear(holds_t *h);
/* Removes the hold of this partition, if any. */
void holds_forget(holds_t *h, const char *topic, int32_t partition);
/* The consumers' rebalance hook (tg_rebalance_fn, arg is the holds_t):
 * revoked and newly assigned partitions have no hold. */
void holds_rebalance(void *arg, rd_kafka_t *rk, int assigned,
                     const rd_kafka_topic_partition_list_t *parts);

/* Pauses msg's partition and rewinds it to msg, to be read again at until. */
int holds_pause(holds_t *h, rd_kafka_t *rk, const rd_kafka_message_t *msg, int64_t until);
/* Resumes every partition whose time has come. */
void holds_resume_due(holds_t *h, rd_kafka_t *rk, int64_t now_ms);

#endif
