/* The event envelope: a round trip keeps every field, and each malformed
 * input is refused with an error that names the offending field. */
#include <stdlib.h>
#include <string.h>

#include "tg/envelope.h"
#include "tg_test.h"

#define GOOD_HEAD "{\"schema\":\"pipeline.trigger\",\"schemaVersion\":1,"
#define GOOD_IDS "\"eventId\":\"e-1\",\"runId\":\"r-1\",\"sourceId\":\"default\","
#define GOOD_TAIL "\"producedAt\":\"2026-01-01T00:00:00.000Z\",\"payload\":{}}"

/* Parses text, expects a failure whose message starts with prefix. */
static void check_rejected(const char *text, size_t len, const char *prefix) {
    char err[256] = "";
    tg_envelope_t *env = (tg_envelope_t *)1;
    int rc = tg_envelope_parse(text, len, &env, err, sizeof err);
    CHECK(rc == TG_ERR_INVALID);
    CHECK(env == NULL);
    if (strncmp(err, prefix, strlen(prefix)) != 0) {
        CHECK_STR(err, prefix);
    }
}

static void rejected(const char *text, const char *prefix) {
    check_rejected(text, strlen(text), prefix);
}

static void test_round_trip(void) {
    tg_envelope_t *env = tg_envelope_new("odata-sync.completed", "run-42", NULL);
    CHECK(env != NULL);
    CHECK_STR(env->source_id, "default");
    CHECK(env->attempt == 1);
    CHECK(strlen(env->event_id) == 36);
    CHECK(strlen(env->produced_at) == 24);
    env->dataset_version = 12;
    env->attempt = 2;
    strcpy(env->correlation_id, "corr-1");
    cJSON_AddStringToObject(env->payload, "message", "Graph built: 2 nodes");
    cJSON_AddTrueToObject(env->payload, "force");

    char *json = tg_envelope_serialize(env);
    CHECK(json != NULL);
    char err[256] = "";
    tg_envelope_t *back = NULL;
    CHECK(tg_envelope_parse(json, strlen(json), &back, err, sizeof err) == TG_OK);
    CHECK_STR(err, "");
    CHECK(back != NULL);
    if (back) {
        CHECK_STR(back->schema, "odata-sync.completed");
        CHECK(back->schema_version == TG_ENVELOPE_VERSION);
        CHECK_STR(back->event_id, env->event_id);
        CHECK_STR(back->run_id, "run-42");
        CHECK_STR(back->source_id, "default");
        CHECK(back->dataset_version == 12);
        CHECK(back->attempt == 2);
        CHECK_STR(back->produced_at, env->produced_at);
        CHECK_STR(back->correlation_id, "corr-1");
        CHECK_STR(tg_json_str(back->payload, "message"), "Graph built: 2 nodes");
        CHECK(tg_json_bool(back->payload, "force", 0) == 1);
        CHECK(tg_json_num(back->payload, "absent", 7.5) == 7.5);

        tg_envelope_t *next = tg_envelope_follow(back, "graph.completed");
        CHECK_STR(next->schema, "graph.completed");
        CHECK_STR(next->run_id, "run-42");
        CHECK(next->dataset_version == 12 && next->attempt == 2);
        CHECK_STR(next->correlation_id, "corr-1");
        CHECK(strcmp(next->event_id, back->event_id) != 0);
        CHECK(cJSON_GetArraySize(next->payload) == 0);
        tg_envelope_destroy(next);
    }
    /* The envelope still owns its payload after serialising. */
    CHECK_STR(tg_json_str(env->payload, "message"), "Graph built: 2 nodes");
    free(json);
    tg_envelope_destroy(back);
    tg_envelope_destroy(env);
}

static void test_optional_fields(void) {
    const char *text = GOOD_HEAD GOOD_IDS GOOD_TAIL;
    tg_envelope_t *env = NULL;
    char err[256];
    CHECK(tg_envelope_parse(text, strlen(text), &env, err, sizeof err) == TG_OK);
    if (env) {
        CHECK(env->attempt == 1);
        CHECK(env->dataset_version == 0);
        CHECK_STR(env->correlation_id, "");
        char *json = tg_envelope_serialize(env);
        CHECK(json && !strstr(json, "datasetVersion") && !strstr(json, "correlationId"));
        free(json);
    }
    tg_envelope_destroy(env);

    /* Surrounding whitespace and unknown fields are accepted. */
    const char *extra = "  " GOOD_HEAD "\"future\":[1,2]," GOOD_IDS GOOD_TAIL "\n";
    env = NULL;
    CHECK(tg_envelope_parse(extra, strlen(extra), &env, err, sizeof err) == TG_OK);
    tg_envelope_destroy(env);

    /* Not NUL-terminated: only len bytes are read. */
    char buf[512];
    size_t n = strlen(text);
    memcpy(buf, text, n);
    memcpy(buf + n, "garbage", 7);
    env = NULL;
    CHECK(tg_envelope_parse(buf, n, &env, err, sizeof err) == TG_OK);
    tg_envelope_destroy(env);
}

static void test_malformed(void) {
    rejected("not json", "envelope: not valid JSON");
    rejected("", "envelope: empty");
    rejected("[1,2,3]", "envelope: not a JSON object");
    rejected("\"text\"", "envelope: not a JSON object");
    rejected(GOOD_HEAD GOOD_IDS GOOD_TAIL " trailing", "envelope: not valid JSON");
    rejected(GOOD_HEAD GOOD_IDS "\"producedAt\":\"x\",\"payload\":{", "envelope: not valid JSON");
    check_rejected(GOOD_HEAD GOOD_IDS "\0" GOOD_TAIL,
                   strlen(GOOD_HEAD GOOD_IDS) + 1 + strlen(GOOD_TAIL), "envelope: contains a NUL");

    rejected("{\"schemaVersion\":1," GOOD_IDS GOOD_TAIL, "schema: missing");
    rejected("{\"schema\":\"\",\"schemaVersion\":1," GOOD_IDS GOOD_TAIL,
             "schema: must not be empty");
    rejected("{\"schema\":7,\"schemaVersion\":1," GOOD_IDS GOOD_TAIL, "schema: must be a string");
    rejected("{\"schema\":\"a\"," GOOD_IDS GOOD_TAIL, "schemaVersion: missing");
    rejected("{\"schema\":\"a\",\"schemaVersion\":\"1\"," GOOD_IDS GOOD_TAIL,
             "schemaVersion: must be an integer");
    rejected("{\"schema\":\"a\",\"schemaVersion\":7," GOOD_IDS GOOD_TAIL,
             "schemaVersion: unsupported version 7 (this build reads 1)");

    rejected(GOOD_HEAD "\"eventId\":\"e\",\"sourceId\":\"default\"," GOOD_TAIL, "runId: missing");
    rejected(GOOD_HEAD "\"eventId\":\"e\",\"runId\":42,\"sourceId\":\"d\"," GOOD_TAIL,
             "runId: must be a string");
    rejected(GOOD_HEAD "\"eventId\":\"e\",\"runId\":\"a b\",\"sourceId\":\"d\"," GOOD_TAIL,
             "runId: invalid character");
    rejected(GOOD_HEAD "\"eventId\":\"e\",\"runId\":\"r\",\"sourceId\":\"d/../x\"," GOOD_TAIL,
             "sourceId: invalid character");
    rejected(GOOD_HEAD "\"runId\":\"r\",\"sourceId\":\"d\"," GOOD_TAIL, "eventId: missing");
    rejected(GOOD_HEAD "\"eventId\":\"e\",\"runId\":\"r\"," GOOD_TAIL, "sourceId: missing");
    rejected(GOOD_HEAD "\"eventId\":\""
                       "0123456789012345678901234567890123456789012345678901234567890123"
                       "\",\"runId\":\"r\",\"sourceId\":\"d\"," GOOD_TAIL,
             "eventId: longer than 63 characters");
    rejected(GOOD_HEAD GOOD_IDS "\"payload\":{}}", "producedAt: missing");
    rejected(GOOD_HEAD GOOD_IDS "\"correlationId\":\"x y\"," GOOD_TAIL,
             "correlationId: invalid character");

    rejected(GOOD_HEAD GOOD_IDS "\"producedAt\":\"t\"}", "payload: missing");
    rejected(GOOD_HEAD GOOD_IDS "\"producedAt\":\"t\",\"payload\":[]}",
             "payload: must be an object");
    rejected(GOOD_HEAD GOOD_IDS "\"producedAt\":\"t\",\"payload\":null}",
             "payload: must be an object");
    rejected(GOOD_HEAD GOOD_IDS "\"datasetVersion\":-1," GOOD_TAIL,
             "datasetVersion: -1 is out of range");
    rejected(GOOD_HEAD GOOD_IDS "\"datasetVersion\":1.5," GOOD_TAIL,
             "datasetVersion: must be an integer");
    rejected(GOOD_HEAD GOOD_IDS "\"datasetVersion\":\"3\"," GOOD_TAIL,
             "datasetVersion: must be an integer");
    rejected(GOOD_HEAD GOOD_IDS "\"attempt\":0," GOOD_TAIL, "attempt: 0 is out of range");
    rejected(GOOD_HEAD GOOD_IDS "\"attempt\":true," GOOD_TAIL, "attempt: must be an integer");
}

static void test_huge(void) {
    size_t len = TG_ENVELOPE_MAX_BYTES + 100;
    char *big = malloc(len + 1);
    size_t head = strlen(GOOD_HEAD GOOD_IDS "\"producedAt\":\"t\",\"payload\":{\"pad\":\"");
    memcpy(big, GOOD_HEAD GOOD_IDS "\"producedAt\":\"t\",\"payload\":{\"pad\":\"", head);
    memset(big + head, 'x', len - head - 3);
    memcpy(big + len - 3, "\"}}", 3);
    big[len] = '\0';
    check_rejected(big, len, "envelope: 1048676 bytes exceeds the limit");
    free(big);
}

static void test_helpers(void) {
    char a[37], b[37], iso[32];
    tg_uuid(a);
    tg_uuid(b);
    CHECK(strlen(a) == 36 && a[8] == '-' && a[14] == '4');
    CHECK(strcmp(a, b) != 0);
    tg_now_iso(iso);
    CHECK(strlen(iso) == 24 && iso[10] == 'T' && iso[23] == 'Z');
    CHECK(tg_now_ms() > 1700000000000LL);
    int64_t t0 = tg_mono_ms();
    CHECK(tg_mono_ms() >= t0);
}

/* Deep nesting is refused before cJSON recurses into it. */
static void test_deep_nesting(void) {
    char buf[8192], err[256];
    size_t n = (size_t)snprintf(buf, sizeof buf,
                                "{\"schema\":\"x\",\"schemaVersion\":1,\"eventId\":\"e\","
                                "\"runId\":\"r\",\"sourceId\":\"s\",\"producedAt\":\"t\","
                                "\"payload\":{\"a\":");
    for (int i = 0; i < 2000; i++) {
        buf[n++] = '[';
    }
    buf[n] = '\0';
    tg_envelope_t *env = NULL;
    CHECK(tg_envelope_parse(buf, n, &env, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "nested deeper than") != NULL);
    CHECK(tg_json_parse(buf, n, TG_JSON_MAX_DEPTH) == NULL);
    cJSON *ok = tg_json_parse("[[[\"[[[[\"]]]", 13, 3); /* brackets in strings don't count */
    CHECK(ok != NULL);
    cJSON_Delete(ok);
}

int main(void) {
    test_round_trip();
    test_optional_fields();
    test_malformed();
    test_deep_nesting();
    test_huge();
    test_helpers();
    TG_TEST_END();
}
