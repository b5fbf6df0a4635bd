/* Paused partitions: a message that must wait (a retry not yet due, or an
 * event PostgreSQL could not take) is rewound and its partition paused
 * until a wall-clock time, so the poll loop keeps polling and never sleeps.
 * A partition revoked from this consumer leaves the table (holds_rebalance). */
#include <stdio.h>
#include <string.h>

#include "holds.h"
#include "tg/log.h"

int holds_put(holds_t *h, const char *topic, int32_t partition, int64_t offset, int64_t until) {
    hold_t *slot = (hold_t *)holds_find(h, topic, partition);
    if (!slot) {
        if (h->n >= HOLDS_MAX) {
            return -1;
        }
        slot = &h->items[h->n++];
    }
    snprintf(slot->topic, sizeof slot->topic, "%s", topic);
    slot->partition = partition;
    slot->offset = offset;
    slot->until_ms = until;
    return 0;
}

const hold_t *holds_find(const holds_t *h, const char *topic, int32_t partition) {
    for (int i = 0; i < h->n; i++) {
        if (h->items[i].partition == partition && !strcmp(h->items[i].topic, topic)) {
            return &h->items[i];
        }
    }
    return NULL;
}

int holds_take_due(holds_t *h, int64_t now_ms, hold_t *out) {
    for (int i = 0; i < h->n; i++) {
        if (h->items[i].until_ms <= now_ms) {
            *out = h->items[i];
            h->items[i] = h->items[--h->n];
            return 1;
        }
    }
    return 0;
}

void holds_clear(holds_t *h) {
    h->n = 0;
}

void holds_forget(holds_t *h, const char *topic, int32_t partition) {
    hold_t *slot = (hold_t *)holds_find(h, topic, partition);
    if (slot) {
        *slot = h->items[--h->n];
    }
}

/* A revoked partition's hold is stale: when the partition comes back it is
 * read again from its committed offset, unpaused, and a hold left behind
 * would make the loop skip its messages as "fetched before the pause". An
 * assigned partition starts without a hold for the same reason. */
void holds_rebalance(void *arg, rd_kafka_t *rk, int assigned,
                     const rd_kafka_topic_partition_list_t *parts) {
    holds_t *h = arg;
    for (int i = 0; i < parts->cnt; i++) {
        holds_forget(h, parts->elems[i].topic, parts->elems[i].partition);
    }
}

static rd_kafka_topic_partition_list_t *one_partition(const char *topic, int32_t partition,
                                                      int64_t offset) {
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
    return list;
}

int holds_pause(holds_t *h, rd_kafka_t *rk, const rd_kafka_message_t *msg, int64_t until) {
    const char *topic = rd_kafka_topic_name(msg->rkt);
    if (holds_put(h, topic, msg->partition, msg->offset, until) != 0) {
        tg_error("Too many paused partitions; %s [%d] is not paused", topic, (int)msg->partition);
        return TG_ERR_NOMEM;
    }
    rd_kafka_topic_partition_list_t *list = one_partition(topic, msg->partition, msg->offset);
    rd_kafka_resp_err_t err = rd_kafka_pause_partitions(rk, list);
    /* The seek also drops what was prefetched after msg: it is read again
     * from msg on once the partition resumes. Asynchronous (timeout 0), so
     * a slow broker never holds the loop: the seek bumps the partition's
     * fetch version at once, and librdkafka discards messages fetched under
     * the old one. */
    rd_kafka_error_t *serr = err ? NULL : rd_kafka_seek_partitions(rk, list, 0);
    rd_kafka_topic_partition_list_destroy(list);
    if (err || serr) {
        tg_error("kafka: cannot pause %s [%d] at @%lld: %s", topic, (int)msg->partition,
                 (long long)msg->offset, err ? rd_kafka_err2str(err) : rd_kafka_error_string(serr));
        if (serr) {
            rd_kafka_error_destroy(serr);
        }
        return TG_ERR_KAFKA;
    }
    return TG_OK;
}

void holds_resume_due(holds_t *h, rd_kafka_t *rk, int64_t now_ms) {
    hold_t due;
    while (holds_take_due(h, now_ms, &due)) {
        rd_kafka_topic_partition_list_t *list = one_partition(due.topic, due.partition, due.offset);
        rd_kafka_resp_err_t err = rd_kafka_resume_partitions(rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (err) {
            tg_warn("kafka: cannot resume %s [%d]: %s", due.topic, (int)due.partition,
                    rd_kafka_err2str(err));
        } else {
            tg_debug("Resumed %s [%d] at @%lld", due.topic, (int)due.partition,
                     (long long)due.offset);
        }
    }
}
