/* The event envelope: strict parsing (every field checked, errors name the
 * field), serialisation, and the id and JSON helpers around it. */
#include "tg/envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- ids ------------------------------------------------------- */

static void random_bytes(unsigned char *out, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom(out + got, len - got, 0);
        if (n > 0) {
            got += (size_t)n;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    if (got == len) {
        return;
    }
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < len) {
        ssize_t n = read(fd, out + got, len - got);
        if (n <= 0 && errno != EINTR) {
            break;
        }
        if (n > 0) {
            got += (size_t)n;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    /* Last resort, never expected on Linux: ids stay unique enough for logs. */
    for (; got < len; got++) {
        out[got] = (unsigned char)(rand() ^ (int)tg_mono_ms());
    }
}

void tg_uuid(char out[37]) {
    unsigned char b[16];
    random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ---- JSON accessors ---------------------------------------------------- */

const char *tg_json_str(const cJSON *obj, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

double tg_json_num(const cJSON *obj, const char *key, double def) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? item->valuedouble : def;
}

int tg_json_bool(const cJSON *obj, const char *key, int def) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsBool(item) ? cJSON_IsTrue(item) : def;
}

/* ---- construction ------------------------------------------------------ */

static tg_envelope_t *envelope_alloc(const char *schema) {
    tg_envelope_t *env = calloc(1, sizeof *env);
    if (!env) {
        return NULL;
    }
    env->payload = cJSON_CreateObject();
    if (!env->payload) {
        free(env);
        return NULL;
    }
    snprintf(env->schema, sizeof env->schema, "%s", schema ? schema : "");
    env->schema_version = TG_ENVELOPE_VERSION;
    tg_uuid(env->event_id);
    env->attempt = 1;
    tg_now_iso(env->produced_at);
    return env;
}

tg_envelope_t *tg_envelope_new(const char *schema, const char *run_id, const char *source_id) {
    tg_envelope_t *env = envelope_alloc(schema);
    if (!env) {
        return NULL;
    }
    if (run_id && *run_id) {
        snprintf(env->run_id, sizeof env->run_id, "%s", run_id);
    } else {
        tg_uuid(env->run_id);
    }
    snprintf(env->source_id, sizeof env->source_id, "%s",
             source_id && *source_id ? source_id : "default");
    return env;
}

tg_envelope_t *tg_envelope_follow(const tg_envelope_t *in, const char *schema) {
    tg_envelope_t *env = envelope_alloc(schema);
    if (!env) {
        return NULL;
    }
    memcpy(env->run_id, in->run_id, sizeof env->run_id);
    memcpy(env->source_id, in->source_id, sizeof env->source_id);
    memcpy(env->correlation_id, in->correlation_id, sizeof env->correlation_id);
    env->dataset_version = in->dataset_version;
    env->attempt = in->attempt;
    return env;
}

void tg_envelope_destroy(tg_envelope_t *env) {
    if (env) {
        cJSON_Delete(env->payload);
        free(env);
    }
}

/* ---- serialisation ----------------------------------------------------- */

char *tg_envelope_serialize(const tg_envelope_t *env) {
    cJSON *root = cJSON_CreateObject();
    if (!root) {
        return NULL;
    }
    cJSON_AddStringToObject(root, "schema", env->schema);
    cJSON_AddNumberToObject(root, "schemaVersion", env->schema_version);
    cJSON_AddStringToObject(root, "eventId", env->event_id);
    cJSON_AddStringToObject(root, "runId", env->run_id);
    cJSON_AddStringToObject(root, "sourceId", env->source_id);
    if (env->dataset_version > 0) {
        cJSON_AddNumberToObject(root, "datasetVersion", (double)env->dataset_version);
    }
    cJSON_AddNumberToObject(root, "attempt", env->attempt);
    cJSON_AddStringToObject(root, "producedAt", env->produced_at);
    if (env->correlation_id[0]) {
        cJSON_AddStringToObject(root, "correlationId", env->correlation_id);
    }
    /* A reference: the payload stays owned by the envelope. */
    cJSON *payload =
        env->payload ? cJSON_CreateObjectReference(env->payload->child) : cJSON_CreateObject();
    char *out = NULL;
    if (payload && cJSON_AddItemToObject(root, "payload", payload)) {
        out = cJSON_PrintUnformatted(root);
    } else {
        cJSON_Delete(payload);
    }
    cJSON_Delete(root);
    return out;
}

/* ---- parsing ----------------------------------------------------------- */

/* Copies a required (or, with optional, an absent-or-null allowed) string
 * field of at most TG_ID_LEN-1 chars; ids additionally allow only
 * [A-Za-z0-9._:-] so they are safe in keys, logs and group names. */
static int field_str(const cJSON *root, const char *key, int optional, int id_chars, char *out,
                     size_t outlen, char *errstr, size_t errlen) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    out[0] = '\0';
    if (!item || cJSON_IsNull(item)) {
        return optional ? TG_OK : tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: missing", key);
    }
    if (!cJSON_IsString(item)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: must be a string", key);
    }
    const char *s = item->valuestring;
    size_t n = strlen(s);
    if (n == 0) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: must not be empty", key);
    }
    if (n >= outlen) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: longer than %zu characters", key,
                       outlen - 1);
    }
    for (size_t i = 0; id_chars && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return tg_fail(TG_ERR_INVALID, errstr, errlen,
                           "%s: invalid character at position %zu (allowed: A-Z a-z 0-9 . _ : -)",
                           key, i);
        }
    }
    memcpy(out, s, n + 1);
    return TG_OK;
}

/* Reads an optional integer field in [min, max]; absent or null gives def. */
static int field_int(const cJSON *root, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, char *errstr, size_t errlen) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    *out = def;
    if (!item || cJSON_IsNull(item)) {
        return TG_OK;
    }
    double v = cJSON_IsNumber(item) ? item->valuedouble : NAN;
    if (!isfinite(v) || v != floor(v)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: must be an integer", key);
    }
    if (v < (double)min || v > (double)max) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "%s: %.0f is out of range (%lld to %lld)",
                       key, v, (long long)min, (long long)max);
    }
    *out = (int64_t)v;
    return TG_OK;
}

static int parse_version(const cJSON *root, char *errstr, size_t errlen) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
    if (!item) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "schemaVersion: missing");
    }
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "schemaVersion: must be an integer");
    }
    if (item->valuedouble != TG_ENVELOPE_VERSION) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "schemaVersion: unsupported version %.0f (this build reads %d)",
                       item->valuedouble, TG_ENVELOPE_VERSION);
    }
    return TG_OK;
}

static int parse_fields(const cJSON *root, tg_envelope_t *env, char *errstr, size_t errlen) {
    int64_t v;
    int rc;
    if ((rc = field_str(root, "schema", 0, 0, env->schema, sizeof env->schema, errstr, errlen)) !=
            TG_OK ||
        (rc = parse_version(root, errstr, errlen)) != TG_OK ||
        (rc = field_str(root, "eventId", 0, 1, env->event_id, sizeof env->event_id, errstr,
                        errlen)) != TG_OK ||
        (rc = field_str(root, "runId", 0, 1, env->run_id, sizeof env->run_id, errstr, errlen)) !=
            TG_OK ||
        (rc = field_str(root, "sourceId", 0, 1, env->source_id, sizeof env->source_id, errstr,
                        errlen)) != TG_OK ||
        (rc = field_str(root, "producedAt", 0, 0, env->produced_at, sizeof env->produced_at, errstr,
                        errlen)) != TG_OK ||
        (rc = field_str(root, "correlationId", 1, 1, env->correlation_id,
                        sizeof env->correlation_id, errstr, errlen)) != TG_OK) {
        return rc;
    }
    env->schema_version = TG_ENVELOPE_VERSION;
    /* Integers travel as JSON numbers (doubles): stay within 2^53. */
    if ((rc = field_int(root, "datasetVersion", 0, 0, 9007199254740991LL, &v, errstr, errlen)) !=
        TG_OK) {
        return rc;
    }
    env->dataset_version = v;
    if ((rc = field_int(root, "attempt", 1, 1, 1000000, &v, errstr, errlen)) != TG_OK) {
        return rc;
    }
    env->attempt = (int)v;
    return TG_OK;
}

/* Whether the JSON text nests arrays/objects deeper than max (strings are
 * skipped; malformed text is left for the parser to reject). */
static int json_depth_exceeds(const char *s, size_t len, int max) {
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (c == '"') {
            in_string = 1;
        } else if ((c == '[' || c == '{') && ++depth > max) {
            return 1;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return 0;
}

cJSON *tg_json_parse(const char *buf, size_t len, int max_depth) {
    if (!buf || json_depth_exceeds(buf, len, max_depth)) {
        return NULL;
    }
    return cJSON_ParseWithLength(buf, len);
}

int tg_envelope_parse(const char *buf, size_t len, tg_envelope_t **out, char *errstr,
                      size_t errlen) {
    *out = NULL;
    if (len > TG_ENVELOPE_MAX_BYTES) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen,
                       "envelope: %zu bytes exceeds the limit of %d bytes", len,
                       TG_ENVELOPE_MAX_BYTES);
    }
    if (len == 0 || !buf) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "envelope: empty message");
    }
    if (memchr(buf, '\0', len)) {
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "envelope: contains a NUL byte");
    }
    /* cJSON wants a terminated string to detect trailing garbage. */
    char *text = malloc(len + 1);
    if (!text) {
        return tg_fail(TG_ERR_NOMEM, errstr, errlen, "envelope: out of memory");
    }
    memcpy(text, buf, len);
    text[len] = '\0';
    if (json_depth_exceeds(text, len, TG_JSON_MAX_DEPTH)) {
        free(text);
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "envelope: nested deeper than %d levels",
                       TG_JSON_MAX_DEPTH);
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        free(text);
        return tg_fail(TG_ERR_INVALID, errstr, errlen, "envelope: not valid JSON (at byte %zu)",
                       at);
    }
    free(text);
    int rc = TG_ERR_NOMEM;
    tg_envelope_t *env = NULL;
    cJSON *payload = cJSON_GetObjectItemCaseSensitive(root, "payload");
    if (!cJSON_IsObject(root)) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "envelope: not a JSON object");
    } else if ((env = calloc(1, sizeof *env)) == NULL) {
        rc = tg_fail(TG_ERR_NOMEM, errstr, errlen, "envelope: out of memory");
    } else if ((rc = parse_fields(root, env, errstr, errlen)) != TG_OK) {
        /* errstr names the field */
    } else if (!payload) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "payload: missing");
    } else if (!cJSON_IsObject(payload)) {
        rc = tg_fail(TG_ERR_INVALID, errstr, errlen, "payload: must be an object");
    } else {
        env->payload = cJSON_DetachItemViaPointer(root, payload);
        *out = env;
        env = NULL;
        rc = TG_OK;
    }
    free(env);
    cJSON_Delete(root);
    return rc;
}
