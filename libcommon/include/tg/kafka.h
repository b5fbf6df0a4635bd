/* Layer 2 (clients).
 * Kafka on librdkafka: an idempotent producer (acks=all) whose sends wait for
 * their delivery report, and a group consumer with at-least-once semantics
 * (offsets are stored only by tg_consumer_done, after the work and its
 * outgoing event succeeded).
 *
 * Extra librdkafka properties come from the environment: KAFKA_CONF_<NAME>,
 * with NAME upper-cased and dots written as underscores, e.g.
 * KAFKA_CONF_SECURITY_PROTOCOL=SASL_SSL sets security.protocol. */
#ifndef TG_KAFKA_H
#define TG_KAFKA_H

#include "tg/config.h"
#include "tg/error.h"
#include <librdkafka/rdkafka.h>

typedef struct tg_producer_s tg_producer_t;
typedef struct tg_consumer_s tg_consumer_t;

/* One message header (value is a NUL-terminated string). */
typedef struct {
    const char *name;
    const char *value;
} tg_header_t;

/* Creates a producer for cfg->kafka_brokers. Returns NULL with errstr set. */
tg_producer_t *tg_producer_new(const tg_config_t *cfg, char *errstr, size_t errlen);

/* Asks the brokers for the metadata of the topics this producer will send
 * to (up to timeout_ms), so that its first message to each goes out at
 * once: without it librdkafka 2.0 holds a first message to a topic it has
 * not seen for about a second while it learns the topic's leader. Best
 * effort: a failure only leaves that wait to the first send. */
void tg_producer_prepare(tg_producer_t *p, const char *const *topics, size_t n, int timeout_ms);

/* Sends one message and waits (up to timeout_ms) for its delivery report.
 * Returns TG_OK only when the broker acknowledged it. headers may be NULL.
 * Nothing passed in is retained. After TG_ERR_TIMEOUT the message may still
 * be delivered later, so a resend can duplicate it (same bytes, same id). */
int tg_producer_send(tg_producer_t *p, const char *topic, const char *key, const void *value,
                     size_t len, const tg_header_t *headers, size_t nheaders, int timeout_ms,
                     char *errstr, size_t errlen) TG_WARN_UNUSED;

/* Flushes outstanding messages (up to timeout_ms) and destroys the producer.
 * Logs a warning naming how many messages were left undelivered. */
void tg_producer_destroy(tg_producer_t *p, int timeout_ms);

/* Called from tg_consumer_poll when the group gives this consumer partitions
 * (assigned = 1) or takes them away (assigned = 0: revoked, or lost after a
 * session timeout). With cooperative-sticky assignment parts holds only the
 * partitions that changed; the others stay assigned, with their pause state
 * and position. parts belongs to the consumer and is valid during the call
 * only. A partition assigned anew is never paused, whatever happened to it
 * before it was revoked, so a caller's table of paused partitions must forget
 * revoked ones here. */
typedef void (*tg_rebalance_fn)(void *arg, rd_kafka_t *rk, int assigned,
                                const rd_kafka_topic_partition_list_t *parts);

typedef struct {
    const char *group_id;
    const char *const *topics;
    size_t ntopics;
    tg_rebalance_fn on_rebalance; /* may be NULL */
    void *arg;                    /* passed to on_rebalance */
} tg_consumer_opts_t;

/* Creates a consumer in opts->group_id subscribed to opts->topics, with
 * auto.offset.reset=earliest, enable.auto.offset.store=false, cooperative-
 * sticky assignment (a member joining or leaving moves only the partitions
 * that must move) and, when POD_NAME or else HOSTNAME is set, static
 * membership (group.instance.id = that name): a restarted pod that comes
 * back within session.timeout.ms gets its partitions again without a
 * rebalance. Consumer lag per partition is published as the gauge
 * tg_consumer_lag{topic,partition} from librdkafka's statistics.
 * Nothing in opts is retained but arg. */
tg_consumer_t *tg_consumer_new(const tg_config_t *cfg, const tg_consumer_opts_t *opts, char *errstr,
                               size_t errlen);

/* The group.instance.id a consumer gets from the environment: POD_NAME, else
 * HOSTNAME, else NULL (dynamic membership). */
const char *tg_kafka_instance_id(void);

/* Polls for one message. Returns NULL on timeout; partition EOFs and
 * transient errors are logged and give NULL. The caller destroys the
 * returned message with rd_kafka_message_destroy(). */
rd_kafka_message_t *tg_consumer_poll(tg_consumer_t *c, int timeout_ms);

/* Marks msg as processed: stores its offset for the next auto-commit. */
int tg_consumer_done(tg_consumer_t *c, const rd_kafka_message_t *msg, char *errstr,
                     size_t errlen) TG_WARN_UNUSED;

/* The underlying handle, for pause, resume and seek. */
rd_kafka_t *tg_consumer_handle(tg_consumer_t *c);

/* Commits stored offsets, leaves the group and destroys the consumer. */
void tg_consumer_destroy(tg_consumer_t *c);

/* Copies header name's value (as text) into out; returns 0 or TG_ERR_NOTFOUND. */
int tg_message_header(const rd_kafka_message_t *msg, const char *name, char *out, size_t outlen);

/* Checks a broker answers metadata within timeout_ms (for /readyz).
 * Returns 1 when one did, 0 otherwise (like tg_pg_ping, tg_redis_ping). */
int tg_kafka_ping(rd_kafka_t *rk, int timeout_ms);
rd_kafka_t *tg_producer_handle(tg_producer_t *p);

/* Applies bootstrap servers, client.id (the service id) and every
 * KAFKA_CONF_* variable to conf; a property librdkafka rejects gives
 * TG_ERR_CONFIG, e.g. "KAFKA_CONF_FOO: No such configuration property...". */
int tg_kafka_conf_apply_env(rd_kafka_conf_t *conf, const tg_config_t *cfg, char *errstr,
                            size_t errlen) TG_WARN_UNUSED;

/* A consumer that reads partitions it assigns itself (rd_kafka_assign) from
 * offsets it chooses, such as a message read back or the dead letters
 * listed: it never commits and reports the end of each partition. group
 * only names it to the brokers. The caller closes it with
 * rd_kafka_consumer_close() then rd_kafka_destroy(). NULL with errstr set
 * on failure. */
rd_kafka_t *tg_kafka_reader_new(const tg_config_t *cfg, const char *group, char *errstr,
                                size_t errlen);

/* The partition count of topic into *count: 0 when the topic does not
 * exist; TG_ERR_KAFKA when no broker answered within timeout_ms. */
int tg_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, int *count,
                             char *errstr, size_t errlen) TG_WARN_UNUSED;

#endif
