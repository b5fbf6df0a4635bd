"""The whole pipeline with the four real services on the bundled sample data
(deploy/sample-data/odata served by tests/odata/odata_server.py): through
the REST API as the specification shows it, with ?wait and with
Prefer: respond-async, through a trigger produced with kcat, worker
1 failing once and succeeding after its delay, and worker 2 failing for good
with the graph still built."""
import os
import subprocess

from conftest import SOURCE_DIR, STACK, envelope, wait_for
from orchestrator_test import call, messages, run_row, step, wait_run

SAMPLE = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata")


def start_all(stack, srv, **orchestrator_env):
    stack.start("odata-sync-worker", {"ODATA_URL": srv.url()})
    stack.start("virtual-entities-generator")
    stack.start("graph-builder")
    env = {"RETRY_DELAYS_S": "1,2", "SCHEDULE_INTERVAL_S": "0"}
    env.update(orchestrator_env)
    return stack.start("orchestrator", env)


def assert_graph_published(stack, run_id):
    status, dataset_version, graph_version = stack.sql(
        f"SELECT status, dataset_version, graph_version FROM runs WHERE run_id = '{run_id}'")[0]
    assert status == "succeeded" and dataset_version and graph_version
    assert stack.redis_cli("GET", "graph:version") == graph_version
    assert int(stack.redis_cli("SCARD", f"graph:{graph_version}:nodes")) > 0
    assert stack.count("graphs", f"version = '{graph_version}' "
                                 f"AND dataset_version = {dataset_version}") == 1
    return graph_version


def test_pipeline_through_rest_with_wait_then_no_changes(stack, odata_server):
    orch = start_all(stack, odata_server(SAMPLE, "--quiet"))
    status, body, hdrs = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    assert status == 200 and body["success"] is True, body
    assert body["workersExecuted"] == 3 and body["totalExecutionTimeMs"] > 0
    assert [r["workerId"] for r in body["workerResults"]] == [
        "odata-sync-worker", "virtual-entities-generator", "graph-builder"]
    assert all(r["success"] for r in body["workerResults"]), body["workerResults"]
    assert body["workerResults"][0]["dataProcessed"]["added"] > 0
    assert hdrs["Location"] == f"/api/v1/runs/{body['runId']}"
    graph_version = assert_graph_published(stack, body["runId"])

    # As the specification shows it: no parameters, its body once the run ended.
    status, again, _ = call(orch, "POST", "/api/v1/workers/execute")
    assert status == 200 and again["success"] is True, again
    assert "No changes" in again["message"] and again["workersExecuted"] == 1
    assert stack.redis_cli("GET", "graph:version") == graph_version

    status, workers, _ = call(orch, "GET", "/api/v1/workers")
    w = workers["workers"]["odata-sync-worker"]
    assert w["runCount"] == 2 and w["lastStatus"] == "success"


def test_pipeline_through_kcat_trigger_and_202(stack, odata_server):
    orch = start_all(stack, odata_server(SAMPLE, "--quiet"))
    trig = envelope("pipeline.trigger", {"trigger": "kafka"})
    stack.produce("pipeline.trigger", trig)
    wait_run(stack, trig["runId"], "succeeded", timeout=120)
    assert run_row(stack, trig["runId"])[1] == "kafka"
    assert_graph_published(stack, trig["runId"])

    # 202 without waiting, then follow the run at its Location (force: the
    # data is unchanged, so only force makes the workers do the work again).
    status, body, hdrs = call(orch, "POST", "/api/v1/workers/execute?force=true",
                              headers={"Prefer": "respond-async"})
    assert status == 202 and body["status"] in ("queued", "running")

    def ended():
        s, run, _ = call(orch, "GET", hdrs["Location"])
        return run["run"] if run["run"]["status"] not in ("queued", "running") else None
    run = wait_for(ended, 120, interval=0.5, what="the forced run to end")
    assert run["status"] == "succeeded" and run["force"] is True
    assert [s["status"] for s in run["steps"]] == ["succeeded", "succeeded", "succeeded"]


def test_worker1_fails_once_then_succeeds_after_its_delay(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    srv.control(mode="fail", status=500, times=1)
    orch = start_all(stack, srv)
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    assert status == 200 and body["success"] is True, body
    run_id = body["runId"]
    assert step(stack, run_id, "odata-sync-worker")[:2] == ["succeeded", "2"]
    delayed = messages(stack, "pipeline.retry.1m", 1, run_id)[0]
    assert delayed["hdrs"]["x-attempt"] == "2" and "500" in delayed["hdrs"]["x-last-error"]
    forwarded = messages(stack, "pipeline.trigger", 2, run_id)[1]
    assert forwarded["ts"] >= int(delayed["hdrs"]["x-due-at"])
    assert_graph_published(stack, run_id)


def test_worker2_failing_for_good_still_builds_the_graph(stack, odata_server):
    orch = start_all(stack, odata_server(SAMPLE, "--quiet"))
    # Every attempt of worker 2 fails inside its transaction.
    stack.sql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN RAISE EXCEPTION 'virtual stops are read-only today'; END $$")
    stack.sql("CREATE TRIGGER refuse BEFORE INSERT ON virtual_stops "
              "FOR EACH STATEMENT EXECUTE FUNCTION refuse()")
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    run_id = body["runId"]
    s = step(stack, run_id, "virtual-entities-generator")
    assert s[0] == "failed" and "read-only today" in s[2], s
    failed_event = [m for m in messages(stack, "pipeline.virtual-entities.completed", 1, run_id)
                    if m["hdrs"].get("x-worker") == "orchestrator"]
    assert failed_event and failed_event[0]["json"]["schema"] == "pipeline.handover"
    assert failed_event[0]["json"]["payload"]["reason"] == "step-failed"
    # The sample's real stops form a connected network, so graph-builder
    # builds it from the data as it is.
    assert status == 200 and body["success"] is True, body
    assert [r["success"] for r in body["workerResults"]] == [True, False, True]
    assert_graph_published(stack, run_id)
    assert stack.count("virtual_stops") == 0


def kcat_trigger(stack, value, *options):
    """Produces value on pipeline.trigger exactly as proto/topics.md shows it:
    kcat, the source as the key."""
    cmd = (f"echo '{value}' | kcat -P -b {STACK['KAFKA_BROKERS']} "
           f"-t {stack.topic('pipeline.trigger')} -k default {' '.join(options)}")
    subprocess.run(cmd, shell=True, check=True, capture_output=True, timeout=30)


def kafka_runs(stack):
    return [r[0] for r in stack.sql("SELECT run_id FROM runs WHERE trigger = 'kafka' "
                                    "ORDER BY created_at")]


def test_minimal_and_cloudevents_triggers_run_end_to_end(stack, odata_server):
    start_all(stack, odata_server(SAMPLE, "--quiet"))
    # A minimal trigger: the key and {}; the pipeline completes the envelope.
    kcat_trigger(stack, "{}")
    run_id = wait_for(lambda: (kafka_runs(stack) or [None])[0], 30, what="the run of {}")
    wait_run(stack, run_id, "succeeded", timeout=120)
    assert_graph_published(stack, run_id)
    # odata-sync-worker and the orchestrator derived the same run id, and the
    # dataset remembers the derived event id (a redelivery is recognised).
    dataset = stack.sql("SELECT run_id, trigger_event_id FROM datasets")
    assert len(dataset) == 1 and dataset[0][0] == run_id and dataset[0][1], dataset
    assert [s[0] for s in stack.sql(f"SELECT status FROM run_steps WHERE run_id = '{run_id}' "
                                    "ORDER BY started_at")] == ["succeeded"] * 3

    # A CloudEvent in binary mode (ce_* headers, the data in the value).
    kcat_trigger(stack, '{"force":true}', "-H ce_specversion=1.0", "-H ce_id=nightly-1",
                 "-H ce_source=//scheduler.example/nightly", "-H ce_type=pipeline.trigger")
    second = wait_for(lambda: kafka_runs(stack)[1:], 30, what="the CloudEvent's run")[0]
    wait_run(stack, second, "succeeded", timeout=120)
    row = stack.sql(f"SELECT force, trigger FROM runs WHERE run_id = '{second}'")
    assert row == [["t", "kafka"]], row
    assert stack.count("datasets") == 2  # force: worker 1 did the work again

    # Malformed minimal triggers go to the dead-letter topic with the reason.
    kcat_trigger(stack, '{"when":"now"}')
    dead = wait_for(lambda: stack.consume("pipeline.dead-letter", 1, timeout=1), 30,
                    what="the dead letter")
    assert 'unknown field "when"' in dead[0]["hdrs"]["x-error"], dead[0]["hdrs"]
    assert len(kafka_runs(stack)) == 2
