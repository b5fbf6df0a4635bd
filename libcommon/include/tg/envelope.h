/* Layer 1 (process support).
 * The event envelope every topic carries (see proto/topics.md):
 *   {"schema":"odata-sync.completed","schemaVersion":1,"eventId":"...",
 *    "runId":"...","sourceId":"default","datasetVersion":12,"attempt":1,
 *    "producedAt":"2026-01-01T00:00:00.000Z","correlationId":"...",
 *    "payload":{...}}
 * The source id is also the Kafka message key. */
#ifndef TG_ENVELOPE_H
#define TG_ENVELOPE_H

#include "tg/error.h"
#include "tg/time.h" /* producedAt; the clocks lived here once */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define TG_ENVELOPE_VERSION 1
#define TG_ENVELOPE_MAX_BYTES (1024 * 1024)
#define TG_ID_LEN 64

typedef struct tg_envelope_s {
    char schema[TG_ID_LEN];
    int schema_version;
    char event_id[TG_ID_LEN];
    char run_id[TG_ID_LEN];
    char source_id[TG_ID_LEN];
    int64_t dataset_version; /* 0 when the event carries none */
    int attempt;             /* 1 for the first try of a step */
    char produced_at[32];
    char correlation_id[TG_ID_LEN];
    cJSON *payload; /* owned by the envelope; always an object */
} tg_envelope_t;

/* Creates an envelope with a fresh event id, attempt 1, produced_at now and
 * an empty payload object. run_id NULL makes a new run id; source_id NULL
 * means "default". The caller frees it with tg_envelope_destroy(). */
tg_envelope_t *tg_envelope_new(const char *schema, const char *run_id, const char *source_id);

/* Creates the next event of a run: same run, source, dataset version, attempt
 * and correlation id as in, new event id and schema, empty payload. */
tg_envelope_t *tg_envelope_follow(const tg_envelope_t *in, const char *schema);

/* Parses and validates buf (not NUL-terminated, len bytes). On success *out
 * is owned by the caller. On failure returns TG_ERR_INVALID with errstr
 * naming the field, e.g. "runId: missing". */
int tg_envelope_parse(const char *buf, size_t len, tg_envelope_t **out, char *errstr,
                      size_t errlen) TG_WARN_UNUSED;

/* Serialises to compact JSON. The caller frees the string with free(). */
char *tg_envelope_serialize(const tg_envelope_t *env);

void tg_envelope_destroy(tg_envelope_t *env);

/* Writes a random (v4) UUID, 36 chars + NUL. */
void tg_uuid(char out[37]);

/* Parses len bytes of JSON, refusing (NULL) text nested deeper than
 * max_depth before cJSON sees it: cJSON recurses once per level, and the
 * small stacks of HTTP threads overflow long before its own limit of 1000.
 * The caller frees the result with cJSON_Delete(). */
#define TG_JSON_MAX_DEPTH 64
cJSON *tg_json_parse(const char *buf, size_t len, int max_depth);

/* Payload accessors: NULL/def when absent or of another type. */
const char *tg_json_str(const cJSON *obj, const char *key);
double tg_json_num(const cJSON *obj, const char *key, double def);
int tg_json_bool(const cJSON *obj, const char *key, int def);

#endif
