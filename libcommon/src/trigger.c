/* Minimal and CloudEvents triggers on pipeline.trigger, completed into the
 * strict envelope with ids derived from where the message lies (see
 * tg/trigger.h). */
#include "tg/trigger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/kafka.h"
#include "tg/sha256.h"
#include "tg/time.h"
#include "tg/topics.h"

void tg_trigger_derived_id(const char *kind, const char *a, const char *b, char out[37]) {
    char hex[65];
    tg_sha256_t *h = tg_sha256_new();
    if (!h) {
        tg_uuid(out); /* out of memory: a fresh id still starts the run */
        return;
    }
    /* NUL-separated so that ("a:b", "c") and ("a", "b:c") differ. */
    tg_sha256_update(h, kind, strlen(kind) + 1);
    tg_sha256_update(h, a, strlen(a) + 1);
    tg_sha256_update(h, b, strlen(b) + 1);
    tg_sha256_final(h, hex);
    int nibble = hex[16] <= '9' ? hex[16] - '0' : hex[16] - 'a' + 10;
    hex[12] = '8';                /* version 8: custom */
    hex[16] = "89ab"[nibble & 3]; /* variant 10 */
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}

static int id_chars(const char *s, size_t n) {
    if (n == 0 || n >= TG_ID_LEN) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The record's timestamp as ISO-8601, or now when it has none. */
static void iso_of_ms(int64_t ms, char out[32]) {
    if (ms <= 0) {
        tg_now_iso(out);
    } else {
        tg_time_iso(ms, out);
    }
}

/* The small object of a minimal trigger or a CloudEvent's data: {},
 * {"force":bool}, {"only":"worker-id"}; an empty value is {}. */
static int small_payload(const tg_trigger_msg_t *m, const char *form, cJSON *payload, char *errstr,
                         size_t errlen) {
    size_t len = m->value ? m->len : 0;
    while (len > 0 && (m->value[len - 1] == '\n' || m->value[len - 1] == ' ')) {
        len--;
    }
    if (len == 0) {
        return TG_OK;
    }
    cJSON *root = tg_json_parse(m->value, len, 4);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "%s: the value must be a JSON object such as {} or {\"force\":true}", form);
    }
    int rc = TG_OK;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        if (!strcmp(item->string, "force") && cJSON_IsBool(item)) {
            cJSON_AddBoolToObject(payload, "force", cJSON_IsTrue(item));
        } else if (!strcmp(item->string, "only") && cJSON_IsString(item) &&
                   id_chars(item->valuestring, strlen(item->valuestring))) {
            cJSON_AddStringToObject(payload, "only", item->valuestring);
        } else if (!strcmp(item->string, "force") || !strcmp(item->string, "only")) {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: %s must be %s", form, item->string,
                         !strcmp(item->string, "force") ? "true or false" : "a worker id");
            break;
        } else {
            rc = tg_fail(TG_ERR_INVALID, errstr, errlen,
                         "%s: unknown field \"%.40s\" (allowed: force, only; a full envelope "
                         "has \"schema\")",
                         form, item->string);
            break;
        }
    }
    cJSON_Delete(root);
    return rc;
}

/* Whether the value is for tg_envelope_parse: an object with a "schema"
 * field, or not an object at all (its error then names what is wrong, as
 * for any other topic). An empty value or another object is a minimal one. */
static int is_envelope(const tg_trigger_msg_t *m) {
    size_t len = m->value ? m->len : 0;
    while (len > 0 && (m->value[len - 1] == '\n' || m->value[len - 1] == ' ')) {
        len--;
    }
    if (len == 0) {
        return 0;
    }
    cJSON *root = tg_json_parse(m->value, m->len, TG_JSON_MAX_DEPTH);
    int envelope = !cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "schema");
    cJSON_Delete(root);
    return envelope;
}

static int cloudevent_check(const tg_trigger_msg_t *m, char *errstr, size_t errlen) {
    if (strcmp(m->ce_specversion, "1.0") != 0) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "cloudevent: ce_specversion \"%.20s\" is not 1.0", m->ce_specversion);
    }
    const char *missing = !m->ce_id || !*m->ce_id           ? "ce_id"
                          : !m->ce_source || !*m->ce_source ? "ce_source"
                          : !m->ce_type || !*m->ce_type     ? "ce_type"
                                                            : NULL;
    return missing
               ? tg_fail(TG_ERR_INVALID, errstr, errlen, "cloudevent: %s header missing", missing)
               : TG_OK;
}

int tg_trigger_complete(const tg_trigger_msg_t *m, tg_envelope_t **out, char *errstr,
                        size_t errlen) {
    *out = NULL;
    int cloudevent = m->ce_specversion != NULL;
    if (!cloudevent && is_envelope(m)) {
        return tg_envelope_parse(m->value, m->len, out, errstr, errlen);
    }
    const char *form = cloudevent ? "cloudevent" : "minimal trigger";
    int rc = cloudevent ? cloudevent_check(m, errstr, errlen) : TG_OK;
    if (rc) {
        return rc;
    }
    char source[TG_ID_LEN] = "default", where[96], event_id[37], run_id[37];
    if (m->key && m->key_len > 0) {
        if (!id_chars(m->key, m->key_len)) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen,
                           "%s: the key (the source id) must be 1-63 characters of A-Z a-z 0-9 "
                           ". _ : -",
                           form);
        }
        snprintf(source, sizeof source, "%.*s", (int)m->key_len, m->key);
    }
    /* Minimal: the message's place; CloudEvents: source and id, which the
     * specification makes unique per event. */
    snprintf(where, sizeof where, "%d/%lld", (int)m->partition, (long long)m->offset);
    const char *a = cloudevent ? m->ce_source : m->topic ? m->topic : "";
    const char *b = cloudevent ? m->ce_id : where;
    tg_envelope_t *env = tg_envelope_new(TG_SCHEMA_TRIGGER, NULL, source);
    if (!env) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "%s: out of memory", form);
    }
    if ((rc = small_payload(m, form, env->payload, errstr, errlen)) != TG_OK) {
        tg_envelope_destroy(env);
        return rc;
    }
    tg_trigger_derived_id(cloudevent ? "ce-event" : "event", a, b, event_id);
    tg_trigger_derived_id(cloudevent ? "ce-run" : "run", a, b, run_id);
    snprintf(env->event_id, sizeof env->event_id, "%s", event_id);
    snprintf(env->run_id, sizeof env->run_id, "%s", run_id);
    snprintf(env->correlation_id, sizeof env->correlation_id, "%s", run_id);
    iso_of_ms(m->timestamp_ms, env->produced_at);
    cJSON_AddStringToObject(env->payload, "trigger", "kafka");
    *out = env;
    return TG_OK;
}

int tg_trigger_read(const rd_kafka_message_t *msg, tg_envelope_t **out, char *errstr,
                    size_t errlen) {
    char spec[16], id[256], source[256], type[256];
    int is_ce = tg_message_header(msg, "ce_specversion", spec, sizeof spec) == TG_OK;
    if (is_ce && tg_message_header(msg, "ce_id", id, sizeof id) != TG_OK) {
        id[0] = '\0';
    }
    if (is_ce && tg_message_header(msg, "ce_source", source, sizeof source) != TG_OK) {
        source[0] = '\0';
    }
    if (is_ce && tg_message_header(msg, "ce_type", type, sizeof type) != TG_OK) {
        type[0] = '\0';
    }
    tg_trigger_msg_t m = {
        .topic = rd_kafka_topic_name(msg->rkt),
        .partition = msg->partition,
        .offset = msg->offset,
        .timestamp_ms = rd_kafka_message_timestamp(msg, NULL),
        .key = msg->key,
        .key_len = msg->key_len,
        .value = msg->payload,
        .len = msg->len,
        .ce_specversion = is_ce ? spec : NULL,
        .ce_id = is_ce ? id : NULL,
        .ce_source = is_ce ? source : NULL,
        .ce_type = is_ce ? type : NULL,
    };
    return tg_trigger_complete(&m, out, errstr, errlen);
}
