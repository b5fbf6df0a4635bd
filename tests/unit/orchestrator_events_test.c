/* The events the orchestrator produces: triggers, hand-overs (a single-worker
 * run, the next worker after a non-critical one gave up) in their own schema,
 * re-sent inputs with a new attempt, and the embedded OpenAPI document naming
 * every endpoint. */
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "openapi_json.h"
#include "orchestrator.h"
#include "tg/topics.h"
#include "tg_test.h"

static orch_conf_t conf;

static void test_start_events(void) {
    tg_envelope_t *t = events_start(&conf, &conf.workers[0], "api", 1, NULL, 0, NULL);
    CHECK_STR(t->schema, TG_SCHEMA_TRIGGER);
    CHECK_STR(t->source_id, "default");
    CHECK_STR(tg_json_str(t->payload, "trigger"), "api");
    CHECK(tg_json_bool(t->payload, "force", 0) == 1);
    CHECK(tg_json_str(t->payload, "only") == NULL);
    tg_envelope_destroy(t);

    tg_envelope_t *g = events_start(&conf, &conf.workers[2], "api", 0, TG_WORKER_GRAPH, 12, NULL);
    /* Its own schema: no one takes it for virtual-entities-generator's. */
    CHECK_STR(g->schema, TG_SCHEMA_HANDOVER);
    CHECK(g->dataset_version == 12);
    CHECK_STR(tg_json_str(g->payload, "reason"), "single-worker");
    CHECK_STR(tg_json_str(g->payload, "to"), TG_WORKER_GRAPH);
    CHECK_STR(tg_json_str(g->payload, "instead"), TG_WORKER_VIRTUAL);
    CHECK_STR(tg_json_str(g->payload, "only"), TG_WORKER_GRAPH);
    CHECK(tg_json_str(g->payload, "status") == NULL);
    tg_envelope_destroy(g);
}

static void test_step_failed(void) {
    tg_envelope_t *in = tg_envelope_new(TG_SCHEMA_ODATA_DONE, "run-1", NULL);
    in->dataset_version = 7;
    in->attempt = 2;
    cJSON_AddTrueToObject(in->payload, "force");
    tg_envelope_t *ev =
        events_step_failed(&conf.workers[1], &conf.workers[2], in, 2, "cities table empty");
    CHECK_STR(ev->schema, TG_SCHEMA_HANDOVER);
    CHECK_STR(ev->run_id, "run-1");
    CHECK(ev->dataset_version == 7 && ev->attempt == 1);
    CHECK_STR(tg_json_str(ev->payload, "reason"), "step-failed");
    CHECK_STR(tg_json_str(ev->payload, "to"), TG_WORKER_GRAPH);
    CHECK_STR(tg_json_str(ev->payload, "instead"), TG_WORKER_VIRTUAL);
    CHECK_STR(tg_json_str(ev->payload, "error"), "cities table empty");
    CHECK(strstr(tg_json_str(ev->payload, "message"), "after 2 attempt(s)") != NULL);
    CHECK(tg_json_bool(ev->payload, "force", 0) == 1);
    /* It must pass the strict envelope parser the workers use. */
    char *json = tg_envelope_serialize(ev), err[256];
    tg_envelope_t *back = NULL;
    CHECK(tg_envelope_parse(json, strlen(json), &back, err, sizeof err) == TG_OK);
    tg_envelope_destroy(back);
    free(json);
    tg_envelope_destroy(ev);
    tg_envelope_destroy(in);
}

static void test_with_attempt(void) {
    const char *in = "{\"schema\":\"pipeline.trigger\",\"runId\":\"r\",\"attempt\":1,"
                     "\"extra\":\"kept\",\"payload\":{\"trigger\":\"api\"}}";
    char *out = events_with_attempt(in, 3, 1);
    cJSON *root = cJSON_Parse(out);
    CHECK(tg_json_num(root, "attempt", 0) == 3);
    CHECK_STR(tg_json_str(root, "extra"), "kept");
    CHECK(tg_json_bool(cJSON_GetObjectItem(root, "payload"), "force", 0) == 1);
    cJSON_Delete(root);
    free(out);
    CHECK(events_with_attempt("not json", 2, 0) == NULL);
    CHECK(events_with_attempt(NULL, 2, 0) == NULL);
}

static void test_openapi(void) {
    cJSON *doc = cJSON_Parse((const char *)openapi_files[0].data);
    cJSON *paths = cJSON_GetObjectItem(doc, "paths");
    static const char *const expected[] = {"/api/v1/workers",
                                           "/api/v1/workers/execute",
                                           "/api/v1/workers/{workerId}/execute",
                                           "/api/v1/workers/{workerId}/status",
                                           "/api/v1/workers/pipeline/status",
                                           "/api/v1/runs",
                                           "/api/v1/runs/{runId}",
                                           "/api/v1/runs/{runId}/cancel",
                                           "/api/v1/runs/{runId}/retry",
                                           "/api/v1/dead-letters/replay",
                                           "/api/v1/openapi.json",
                                           NULL};
    CHECK(doc != NULL);
    for (int i = 0; expected[i]; i++) {
        CHECK(cJSON_HasObjectItem(paths, expected[i]));
    }
    cJSON_Delete(doc);
}

int main(void) {
    orch_workers_defaults(conf.workers);
    test_start_events();
    test_step_failed();
    test_with_attempt();
    test_openapi();
    TG_TEST_END();
}
