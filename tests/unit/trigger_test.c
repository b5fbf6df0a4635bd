/* Triggers from other systems: a minimal trigger and a CloudEvent completed
 * into the full envelope with derived ids, the strict envelope left as it
 * is, and what is refused. */
#include "tg/trigger.h"
#include "tg_test.h"
#include <stdlib.h>
#include <string.h>

static tg_trigger_msg_t minimal(const char *key, const char *value, int64_t offset) {
    tg_trigger_msg_t m = {.topic = "t1.pipeline.trigger",
                          .partition = 2,
                          .offset = offset,
                          .timestamp_ms = 1764325800123LL,
                          .key = key,
                          .key_len = key ? strlen(key) : 0,
                          .value = value,
                          .len = value ? strlen(value) : 0};
    return m;
}

static void test_minimal(void) {
    char err[256];
    tg_envelope_t *a = NULL, *b = NULL, *c = NULL;
    tg_trigger_msg_t m = minimal("default", "{}", 7);
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_OK);
    CHECK_STR(a->schema, "pipeline.trigger");
    CHECK_STR(a->source_id, "default");
    CHECK_STR(a->produced_at, "2025-11-28T10:30:00.123Z");
    CHECK_STR(tg_json_str(a->payload, "trigger"), "kafka");
    CHECK(strlen(a->event_id) == 36 && a->event_id[14] == '8' && strcmp(a->event_id, a->run_id));
    CHECK_STR(a->correlation_id, a->run_id);
    /* A redelivery of the same message: the same ids. Another offset: others. */
    CHECK(tg_trigger_complete(&m, &b, err, sizeof err) == TG_OK);
    CHECK_STR(b->event_id, a->event_id);
    CHECK_STR(b->run_id, a->run_id);
    m.offset = 8;
    CHECK(tg_trigger_complete(&m, &c, err, sizeof err) == TG_OK);
    CHECK(strcmp(c->event_id, a->event_id) && strcmp(c->run_id, a->run_id));
    tg_envelope_destroy(a);
    tg_envelope_destroy(b);
    tg_envelope_destroy(c);

    m = minimal("south", "{\"force\":true,\"only\":\"graph-builder\"}", 1);
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_OK);
    CHECK_STR(a->source_id, "south");
    CHECK(tg_json_bool(a->payload, "force", 0) == 1);
    CHECK_STR(tg_json_str(a->payload, "only"), "graph-builder");
    /* What the pipeline passes on is the strict envelope. */
    char *json = tg_envelope_serialize(a);
    tg_envelope_destroy(a);
    CHECK(tg_envelope_parse(json, strlen(json), &a, err, sizeof err) == TG_OK);
    CHECK_STR(tg_json_str(a->payload, "only"), "graph-builder");
    free(json);
    tg_envelope_destroy(a);

    m = minimal(NULL, "", 1); /* no key, no value: the default source, {} */
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_OK);
    CHECK_STR(a->source_id, "default");
    tg_envelope_destroy(a);
}

static void test_refused(void) {
    char err[256];
    tg_envelope_t *e = NULL;
    tg_trigger_msg_t m = minimal("default", "{\"when\":\"now\"}", 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID && !e);
    CHECK(strstr(err, "minimal trigger: unknown field \"when\"") != NULL);
    m = minimal("default", "{\"force\":\"yes\"}", 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "force must be true or false") != NULL);
    m = minimal("default", "[1]", 1); /* not an object: the envelope's own error */
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID);
    CHECK_STR(err, "envelope: not a JSON object");
    m = minimal("default", "not json", 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "envelope: not valid JSON") == err);
    m = minimal("bad key", "{}", 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "the key (the source id)") != NULL);
    /* A value with "schema" is the strict envelope, checked as such. */
    m = minimal("default", "{\"schema\":\"pipeline.trigger\"}", 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "schemaVersion: missing") != NULL);
}

static void test_strict_envelope_unchanged(void) {
    char err[256];
    tg_envelope_t *e = NULL;
    const char *full = "{\"schema\":\"pipeline.trigger\",\"schemaVersion\":1,\"eventId\":\"e-1\","
                       "\"runId\":\"r-1\",\"sourceId\":\"default\",\"producedAt\":"
                       "\"2026-11-28T10:30:00.000Z\",\"payload\":{\"trigger\":\"api\"}}";
    tg_trigger_msg_t m = minimal("default", full, 1);
    CHECK(tg_trigger_complete(&m, &e, err, sizeof err) == TG_OK);
    CHECK_STR(e->event_id, "e-1");
    CHECK_STR(e->run_id, "r-1");
    CHECK_STR(tg_json_str(e->payload, "trigger"), "api");
    tg_envelope_destroy(e);
}

static void test_cloudevent(void) {
    char err[256];
    tg_envelope_t *a = NULL, *b = NULL;
    tg_trigger_msg_t m = minimal("default", "{\"force\":true}", 3);
    m.ce_specversion = "1.0";
    m.ce_id = "evt-42";
    m.ce_source = "//scheduler.example/nightly";
    m.ce_type = "pipeline.trigger";
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_OK);
    CHECK(tg_json_bool(a->payload, "force", 0) == 1);
    /* Its id is the event: the same ce_source and ce_id elsewhere is a redelivery. */
    m.offset = 99;
    CHECK(tg_trigger_complete(&m, &b, err, sizeof err) == TG_OK);
    CHECK_STR(b->event_id, a->event_id);
    CHECK_STR(b->run_id, a->run_id);
    tg_envelope_destroy(a);
    tg_envelope_destroy(b);
    m.ce_specversion = "0.3";
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_ERR_INVALID);
    CHECK(strstr(err, "not 1.0") != NULL);
    m.ce_specversion = "1.0";
    m.ce_source = "";
    CHECK(tg_trigger_complete(&m, &a, err, sizeof err) == TG_ERR_INVALID);
    CHECK_STR(err, "cloudevent: ce_source header missing");
}

int main(void) {
    test_minimal();
    test_refused();
    test_strict_envelope_unchanged();
    test_cloudevent();
    TG_TEST_END();
}
