/* The orchestrator's pure rules: the retry schedule of the specification
 * (attempt 2 after the first delay, attempt 3 after the second, then give
 * up), worker order, configuration from the environment, the pause table,
 * path splitting, id and token checks. */
#include <stdlib.h>
#include <string.h>

#include "orchestrator.h"
#include "tg/topics.h"
#include "tg_test.h"

/* The rows that pipeline-admin's migrations put in the workers table. */
static const orch_worker_policy_t rows[] = {
    {TG_WORKER_ODATA, "OData Synchronization Worker", "1.0.0", 1, 1, 3, 600},
    {TG_WORKER_VIRTUAL, "Virtual Entities Generator Worker", "1.0.0", 2, 0, 2, 300},
    {TG_WORKER_GRAPH, "Graph Builder Worker", "1.0.0", 3, 1, 2, 600},
};

static void conf_with_rows(orch_conf_t *conf) {
    char err[256];
    memset(conf, 0, sizeof *conf);
    orch_workers_defaults(conf->workers);
    for (int i = 0; i < 3; i++) {
        CHECK(orch_worker_policy_set(conf, &rows[i], err, sizeof err) == TG_OK);
    }
    CHECK(orch_workers_complete(conf, err, sizeof err) == TG_OK);
}

static void conf_with_delays(orch_conf_t *conf, const char *delays) {
    char err[256];
    conf_with_rows(conf);
    setenv("RETRY_DELAYS_S", delays, 1);
    CHECK(orch_conf_load_env(conf, err, sizeof err) == TG_OK);
}

static void test_retry_schedule(void) {
    orch_conf_t conf;
    orch_retry_plan_t plan;
    conf_with_delays(&conf, "60,300");
    const orch_worker_t *odata = orch_worker_find(&conf, TG_WORKER_ODATA);
    const orch_worker_t *graph = orch_worker_find(&conf, TG_WORKER_GRAPH);

    orch_retry_plan(&conf, odata, 1, 1, &plan); /* attempt 1 failed */
    CHECK(plan.retry && plan.next_attempt == 2 && plan.delay_ms == 60000);
    CHECK_STR(orch_delay_topic(plan.delay_index), TG_TOPIC_RETRY_1);
    orch_retry_plan(&conf, odata, 2, 1, &plan);
    CHECK(plan.retry && plan.next_attempt == 3 && plan.delay_ms == 300000);
    CHECK_STR(orch_delay_topic(plan.delay_index), TG_TOPIC_RETRY_2);
    orch_retry_plan(&conf, odata, 3, 1, &plan); /* the final retry failed */
    CHECK(!plan.retry);
    orch_retry_plan(&conf, odata, 1, 0, &plan); /* not retryable: no delays */
    CHECK(!plan.retry);
    orch_retry_plan(&conf, graph, 1, 1, &plan); /* graph-builder: 2 attempts */
    CHECK(plan.retry && plan.next_attempt == 2);
    orch_retry_plan(&conf, graph, 2, 1, &plan);
    CHECK(!plan.retry);

    conf_with_delays(&conf, "1.5"); /* one delay serves every retry */
    orch_retry_plan(&conf, odata, 2, 1, &plan);
    CHECK(plan.retry && plan.delay_ms == 1500 && plan.delay_index == 0);
}

static void test_config(void) {
    orch_conf_t conf;
    char err[256];
    conf_with_rows(&conf);
    CHECK(conf.workers[0].timeout_s == 600 && conf.workers[1].timeout_s == 300);
    CHECK(conf.workers[0].critical && !conf.workers[1].critical && conf.workers[2].critical);
    setenv("RETRY_DELAYS_S", "soon", 1);
    CHECK(orch_conf_load_env(&conf, err, sizeof err) == TG_ERR_CONFIG);
    CHECK(strstr(err, "RETRY_DELAYS_S") != NULL);
    setenv("RETRY_DELAYS_S", "1,2", 1);
    setenv("WORKER_TIMEOUT_S_2", "7", 1);
    setenv("SCHEDULE_INTERVAL_S", "0", 1);
    CHECK(orch_conf_load_env(&conf, err, sizeof err) == TG_OK);
    CHECK(conf.workers[1].timeout_s == 7 && conf.schedule_interval_s == 0);
    setenv("WORKER_TIMEOUT_S_2", "-1", 1);
    CHECK(orch_conf_load_env(&conf, err, sizeof err) == TG_ERR_CONFIG);
    unsetenv("WORKER_TIMEOUT_S_2");
}

/* The workers table is the only source of policy, and it must agree with
 * the compiled order of the topics. */
static void test_workers_table(void) {
    orch_conf_t conf;
    char err[256];
    memset(&conf, 0, sizeof conf);
    orch_workers_defaults(conf.workers);
    CHECK(orch_workers_complete(&conf, err, sizeof err) == TG_ERR_CONFIG);
    CHECK(strstr(err, "no row for odata-sync-worker") != NULL);
    orch_worker_policy_t moved = rows[2];
    moved.position = 2;
    CHECK(orch_worker_policy_set(&conf, &moved, err, sizeof err) == TG_ERR_CONFIG);
    CHECK(strstr(err, "graph-builder at position 2") != NULL);
    orch_worker_policy_t stranger = rows[0];
    stranger.id = "route-api";
    CHECK(orch_worker_policy_set(&conf, &stranger, err, sizeof err) == TG_ERR_CONFIG);
    orch_worker_policy_t critical = rows[1];
    critical.critical = 1;
    critical.max_attempts = 5;
    CHECK(orch_worker_policy_set(&conf, &critical, err, sizeof err) == TG_OK);
    CHECK(conf.workers[1].critical && conf.workers[1].max_attempts == 5);
    orch_worker_policy_t zero = rows[0];
    zero.max_attempts = 0;
    CHECK(orch_worker_policy_set(&conf, &zero, err, sizeof err) == TG_ERR_CONFIG);
}

static void test_workers(void) {
    orch_conf_t conf;
    conf_with_delays(&conf, "60,300");
    const orch_worker_t *w = orch_worker_by_input(&conf, TG_TOPIC_ODATA_DONE);
    CHECK(w && !strcmp(w->id, TG_WORKER_VIRTUAL));
    CHECK(orch_worker_next(&conf, w) == orch_worker_find(&conf, TG_WORKER_GRAPH));
    CHECK(orch_worker_next(&conf, orch_worker_find(&conf, TG_WORKER_GRAPH)) == NULL);
    CHECK(orch_worker_find(&conf, "pipeline") == NULL);
    CHECK(orch_worker_by_input(&conf, TG_TOPIC_GRAPH_DONE) == NULL);
    conf.cfg.topic_prefix = "t1.";
    CHECK_STR(orch_topic_base(&conf, "t1.pipeline.trigger"), "pipeline.trigger");
    CHECK_STR(orch_status_public("succeeded"), "success");
    CHECK(orch_run_status_valid("timed_out") && !orch_run_status_valid("success"));
    CHECK(orch_trigger_valid("schedule") && !orch_trigger_valid("cron"));
}

static void test_holds(void) {
    holds_t h = {0};
    hold_t due;
    CHECK(holds_put(&h, "t.retry.1m", 0, 5, 1000) == 0);
    CHECK(holds_put(&h, "t.retry.1m", 1, 9, 3000) == 0);
    CHECK(holds_put(&h, "t.retry.1m", 0, 6, 2000) == 0); /* same partition: replaced */
    CHECK(h.n == 2);
    CHECK(holds_find(&h, "t.retry.1m", 0)->offset == 6);
    CHECK(!holds_take_due(&h, 1999, &due)); /* never early */
    CHECK(holds_take_due(&h, 2000, &due) && due.partition == 0 && due.offset == 6);
    CHECK(holds_find(&h, "t.retry.1m", 0) == NULL && h.n == 1);
    holds_clear(&h);
    CHECK(h.n == 0 && holds_find(&h, "t.retry.1m", 1) == NULL);
    for (int i = 0; i < HOLDS_MAX; i++) {
        CHECK(holds_put(&h, "t", i, 0, 0) == 0);
    }
    CHECK(holds_put(&h, "t", HOLDS_MAX, 0, 0) == -1);
}

static void test_api_helpers(void) {
    char seg[3][64];
    CHECK(orch_path_segments("/api/v1/workers", "/api/v1/workers", seg, 3) == 0);
    CHECK(orch_path_segments("/api/v1/workers/", "/api/v1/workers", seg, 3) == 0);
    CHECK(orch_path_segments("/api/v1/workers/graph-builder/status", "/api/v1/workers", seg, 3) ==
          2);
    CHECK_STR(seg[0], "graph-builder");
    CHECK_STR(seg[1], "status");
    CHECK(orch_path_segments("/api/v1/workersx", "/api/v1/workers", seg, 3) == -1);
    CHECK(orch_path_segments("/api/v1/runs/a/b/c/d", "/api/v1/runs", seg, 3) == -1);
    CHECK(orch_id_valid("9dc0f804-9d68-4a40-9f75-1f56488b8831"));
    CHECK(!orch_id_valid("") && !orch_id_valid("a b") && !orch_id_valid("x'; drop"));
    CHECK(orch_token_equal("s3cret", "s3cret"));
    CHECK(!orch_token_equal("s3cre", "s3cret") && !orch_token_equal("s3cretx", "s3cret"));
    CHECK(!orch_token_equal("", "s3cret") && !orch_token_equal("S3cret", "s3cret"));
}

/* How long an execute waits: ?wait= within 0..ORCH_WAIT_MAX_S wins over
 * Prefer: respond-async, which wins over EXECUTE_WAIT_S. */
static void test_execute_wait(void) {
    orch_wait_t w;
    CHECK(orch_wait_choose(NULL, 0, 60, &w) == 0 && w.wait_s == 60 && !w.async_applied);
    CHECK(orch_wait_choose(NULL, 1, 60, &w) == 0 && w.wait_s == 0 && w.async_applied);
    CHECK(orch_wait_choose("30", 1, 60, &w) == 0 && w.wait_s == 30 && !w.async_applied);
    CHECK(orch_wait_choose("0", 0, 60, &w) == 0 && w.wait_s == 0);
    CHECK(orch_wait_choose("600", 0, 60, &w) == 0 && w.wait_s == ORCH_WAIT_MAX_S);
    CHECK(orch_wait_choose("601", 0, 60, &w) == -1);
    CHECK(orch_wait_choose("3600", 0, 60, &w) == -1); /* the old bound: an hour */
    CHECK(orch_wait_choose("99999999999999999999", 0, 60, &w) == -1);
    const char *malformed[] = {"", "-1", "+5", " 5", "5 ", "5s", "soon", "1e2", "0x10"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        CHECK(orch_wait_choose(malformed[i], 0, 60, &w) == -1);
    }
    /* EXECUTE_WAIT_S has the same bound. */
    orch_conf_t conf;
    char err[256];
    memset(&conf, 0, sizeof conf);
    orch_workers_defaults(conf.workers);
    setenv("EXECUTE_WAIT_S", "601", 1);
    CHECK(orch_conf_load_env(&conf, err, sizeof err) == TG_ERR_CONFIG);
    CHECK(strstr(err, "EXECUTE_WAIT_S") != NULL);
    setenv("EXECUTE_WAIT_S", "600", 1);
    CHECK(orch_conf_load_env(&conf, err, sizeof err) == TG_OK && conf.execute_wait_s == 600);
    unsetenv("EXECUTE_WAIT_S");
}

/* Half of the API's threads may wait for runs; the rest stay free. */
static void test_waiters_bound(void) {
    CHECK(orch_waiters_max(8) == 4);
    CHECK(orch_waiters_max(16) == 8);
    CHECK(orch_waiters_max(3) == 1);
    CHECK(orch_waiters_max(2) == 1);
    CHECK(orch_waiters_max(1) == 0); /* a single thread never waits */
}

int main(void) {
    test_retry_schedule();
    test_config();
    test_workers_table();
    test_workers();
    test_holds();
    test_api_helpers();
    test_execute_wait();
    test_waiters_bound();
    TG_TEST_END();
}
