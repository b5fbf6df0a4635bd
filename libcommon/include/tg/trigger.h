/* Layer 2 (clients).
 * Triggers from other systems on pipeline.trigger. Besides the strict
 * envelope, two forms need no ceremony, and both are completed here into the
 * full envelope (see proto/topics.md, "Triggers from other systems"):
 *   - a minimal trigger: the source id as the key and {} (or an empty value),
 *     {"force":true} or {"only":"graph-builder"} as the value;
 *   - a CloudEvent in the Kafka binding's binary mode: ce_specversion 1.0,
 *     ce_id, ce_source and ce_type headers, the same small object as data.
 * The ids are derived, not drawn: from topic, partition and offset (minimal)
 * or from ce_source and ce_id (CloudEvents), so that a redelivery carries
 * the same event id and every reader (odata-sync-worker, the orchestrator's
 * tracking) agrees on the run id. Events between the services stay strict. */
#ifndef TG_TRIGGER_H
#define TG_TRIGGER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "tg/envelope.h"

/* One message of pipeline.trigger, as tg_trigger_complete reads it. */
typedef struct {
    const char *topic; /* the full topic name, prefix included */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the record's timestamp; <= 0 means now */
    const char *key;      /* the source id; NULL or "" means "default" */
    size_t key_len;
    const char *value;
    size_t len;
    /* CloudEvents binary-mode attributes (headers); NULL when absent. */
    const char *ce_specversion, *ce_id, *ce_source, *ce_type;
} tg_trigger_msg_t;

/* Reads m into a full pipeline.trigger envelope: a value with a "schema"
 * field is the strict envelope (tg_envelope_parse); otherwise a minimal
 * trigger or a CloudEvent is completed. On success *out is the caller's
 * (tg_envelope_destroy). On failure returns TG_ERR_INVALID (or
 * TG_ERR_NOMEM) with errstr saying what is wrong, e.g.
 * "minimal trigger: unknown field \"when\" (allowed: force, only)". */
int tg_trigger_complete(const tg_trigger_msg_t *m, tg_envelope_t **out, char *errstr,
                        size_t errlen) TG_WARN_UNUSED;

/* tg_trigger_complete on a consumed message (its topic, key, headers). */
int tg_trigger_read(const rd_kafka_message_t *msg, tg_envelope_t **out, char *errstr,
                    size_t errlen) TG_WARN_UNUSED;

/* Writes the id derived from kind and the text parts: a UUID (version 8,
 * RFC 9562) made of the SHA-256 of them, 36 chars + NUL. */
void tg_trigger_derived_id(const char *kind, const char *a, const char *b, char out[37]);

#endif
