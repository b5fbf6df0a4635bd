"""The orchestrator against the real stack, with the workers played by kcat:
the test produces their completion and failure events exactly as the worker
loop does and checks what the orchestrator records (PostgreSQL, the REST API)
and produces (triggers, retries in the delay topics with their headers, dead
letters, the hand-over to graph-builder after worker 2 gave up)."""
import concurrent.futures
import http.server
import json
import threading
import time
import urllib.error
import urllib.request

from conftest import envelope, wait_for

FAST = {"RETRY_DELAYS_S": "1,2", "SCHEDULE_INTERVAL_S": "0", "TIMEOUT_SWEEP_S": "1"}


def call(svc, method, path, body=None, headers=None, raw=None):
    """Returns (status, parsed JSON body or None, response headers)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(svc.url(path), data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            payload, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        payload, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, json.loads(payload), hdrs
    except ValueError:
        return status, None, hdrs


def start(stack, **env):
    return stack.start("orchestrator", dict(FAST, **env))


def run_row(stack, run_id):
    rows = stack.sql(f"SELECT status, trigger, message, dataset_version, graph_version "
                     f"FROM runs WHERE run_id = '{run_id}'")
    return rows[0] if rows else None


def step(stack, run_id, worker):
    rows = stack.sql(f"SELECT status, attempts, error FROM run_steps "
                     f"WHERE run_id = '{run_id}' AND worker_id = '{worker}'")
    return rows[0] if rows else None


def wait_run(stack, run_id, status, timeout=20):
    wait_for(lambda: (run_row(stack, run_id) or [None])[0] == status, timeout,
             what=f"run {run_id} {status}: {run_row(stack, run_id)}")


def wait_step(stack, run_id, worker, status, attempts=None, timeout=20):
    def ok():
        s = step(stack, run_id, worker)
        return s and s[0] == status and (attempts is None or int(s[1]) == attempts)
    wait_for(ok, timeout, what=f"{worker} {status}/{attempts}: {step(stack, run_id, worker)}")


ASYNC = {"Prefer": "respond-async"}


def execute(svc, path="/api/v1/workers/execute", headers=None, **kw):
    """Starts a run without waiting for it (the workers are played by the test)."""
    status, body, hdrs = call(svc, "POST", path, headers=dict(ASYNC, **(headers or {})), **kw)
    assert status == 202, body
    assert hdrs["Location"] == f"/api/v1/runs/{body['runId']}"
    assert hdrs["Preference-Applied"] == "respond-async"
    return body["runId"]


def completed(stack, schema, run_id, worker, status="success", dataset_version=1,
              source_id="default", **payload):
    topic = {"odata-sync.completed": "pipeline.odata-sync.completed",
             "virtual-entities.completed": "pipeline.virtual-entities.completed",
             "graph.completed": "pipeline.graph.completed"}[schema]
    body = {"workerId": worker, "status": status, "message": f"{worker} {status}",
            "executionTimeMs": 1500, "dataProcessed": {"added": 3, "updated": 1, "deleted": 0}}
    # The fields each schema requires, as the real worker sends them.
    if schema == "odata-sync.completed":
        body.update(datasetVersion=dataset_version, dataHash="ab" * 32)
    elif schema == "graph.completed":
        body.update(graphVersion=f"graph-v{dataset_version}", nodes=2, edges=1)
    body.update(payload)
    env = envelope(schema, body, run_id=run_id, dataset_version=dataset_version,
                   source_id=source_id)
    stack.produce(topic, env, key=source_id, headers={"x-worker": worker})
    return env


def failed(stack, run_id, worker, input_env, attempt, retryable=True, error="OData unavailable"):
    topic = {"odata-sync-worker": "pipeline.trigger",
             "virtual-entities-generator": "pipeline.odata-sync.completed",
             "graph-builder": "pipeline.virtual-entities.completed"}[worker]
    payload = {"workerId": worker, "error": error, "errorCode": "unavailable",
               "retryable": retryable, "executionTimeMs": 20, "inputTopic": stack.topic(topic),
               "inputPartition": 0, "inputOffset": 0, "input": input_env}
    stack.produce("pipeline.step.failed", envelope("step.failed", payload, run_id=run_id,
                                                   attempt=attempt))


def messages(stack, topic, count, run_id=None, timeout=20):
    def got():
        msgs = [m for m in stack.consume(topic, 0, timeout=1)
                if run_id is None or (m["json"] or {}).get("runId") == run_id]
        return msgs if len(msgs) >= count else None
    return wait_for(got, timeout, interval=0.3, what=f"{count} message(s) on {topic}")


def metric(svc, line_start):
    with urllib.request.urlopen(svc.url("/metrics"), timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_full_run_tracked_and_waited(stack):
    svc = start(stack)
    results = {}

    def post_and_wait():
        results["r"] = call(svc, "POST", "/api/v1/workers/execute?wait=30")

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(post_and_wait)
        trig = messages(stack, "pipeline.trigger", 1)[0]
        run_id = trig["json"]["runId"]
        assert trig["json"]["payload"] == {"trigger": "api", "force": False}
        assert trig["key"] == "default"
        wait_step(stack, run_id, "odata-sync-worker", "running", 1)
        completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", dataset_version=4)
        wait_step(stack, run_id, "virtual-entities-generator", "running", 1)
        completed(stack, "virtual-entities.completed", run_id, "virtual-entities-generator",
                  dataset_version=4)
        wait_step(stack, run_id, "graph-builder", "running", 1)
        completed(stack, "graph.completed", run_id, "graph-builder", dataset_version=4,
                  graphVersion="graph-v123", message="Graph built successfully: 2 nodes, 1 edges")
        fut.result(timeout=40)

    status, body, _ = results["r"]
    assert status == 200, body
    assert body["success"] is True and body["runId"] == run_id
    assert body["message"] == "Pipeline executed successfully"
    assert body["workersExecuted"] == 3
    assert [r["workerId"] for r in body["workerResults"]] == [
        "odata-sync-worker", "virtual-entities-generator", "graph-builder"]
    assert body["workerResults"][2]["message"] == "Graph built successfully: 2 nodes, 1 edges"
    assert body["workerResults"][0]["executionTimeMs"] == 1500
    assert body["workerResults"][0]["dataProcessed"] == {"added": 3, "updated": 1, "deleted": 0}
    assert run_row(stack, run_id) == ["succeeded", "api", "Graph built successfully: 2 nodes, 1 edges",
                                      "4", "graph-v123"]

    status, workers, _ = call(svc, "GET", "/api/v1/workers")
    assert status == 200 and workers["count"] == 3
    w = workers["workers"]["graph-builder"]
    assert (w["workerName"], w["version"], w["lastStatus"], w["lastDuration"], w["runCount"]) == (
        "Graph Builder Worker", "1.0.0", "success", 1500, 1)
    assert w["lastRun"].endswith("Z")
    status, one, _ = call(svc, "GET", "/api/v1/workers/odata-sync-worker/status")
    assert status == 200 and one["worker"]["workerId"] == "odata-sync-worker"
    status, run, _ = call(svc, "GET", f"/api/v1/runs/{run_id}")
    assert [s["status"] for s in run["run"]["steps"]] == ["succeeded"] * 3
    status, pipe, _ = call(svc, "GET", "/api/v1/workers/pipeline/status")
    assert pipe["pipeline"]["isRunning"] is False and pipe["pipeline"]["activeRunId"] is None
    assert metric(svc, 'tg_runs_total{status="succeeded"}') == 1
    assert metric(svc, "tg_last_success_timestamp_seconds") > time.time() - 60


def test_kafka_trigger_tracked_and_no_changes(stack):
    svc = start(stack)
    trig = envelope("pipeline.trigger", {"force": False})
    stack.produce("pipeline.trigger", trig)
    run_id = trig["runId"]
    wait_step(stack, run_id, "odata-sync-worker", "running", 1)
    assert run_row(stack, run_id)[:2] == ["running", "kafka"]
    status, pipe, _ = call(svc, "GET", "/api/v1/workers/pipeline/status")
    assert pipe["pipeline"]["isRunning"] is True and pipe["pipeline"]["activeRunId"] == run_id
    completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", status="no_changes",
              message="No changes: dataset v3 is current", dataset_version=3)
    wait_run(stack, run_id, "succeeded")
    assert run_row(stack, run_id)[2].startswith("No changes")
    assert step(stack, run_id, "virtual-entities-generator") is None
    status, runs, _ = call(svc, "GET", "/api/v1/runs?trigger=kafka&status=succeeded&limit=5")
    assert status == 200 and [r["runId"] for r in runs["runs"]] == [run_id]


def test_retry_through_delay_topics_then_dead_letter_and_replay(stack):
    svc = start(stack)
    run_id = execute(svc)
    trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
    wait_step(stack, run_id, "odata-sync-worker", "running", 1)

    failed(stack, run_id, "odata-sync-worker", trig, attempt=1)
    delayed = messages(stack, "pipeline.retry.1m", 1, run_id)[0]
    h = delayed["hdrs"]
    assert h["x-original-topic"] == stack.topic("pipeline.trigger")
    assert (h["x-original-partition"], h["x-original-offset"], h["x-attempt"]) == ("0", "0", "2")
    assert h["x-last-error"] == "OData unavailable"
    assert h["x-first-failure-at"].endswith("Z")
    assert abs(int(h["x-due-at"]) - (delayed["ts"] + 1000)) < 500
    assert delayed["key"] == "default" and delayed["json"]["attempt"] == 2
    assert step(stack, run_id, "odata-sync-worker")[0] == "retrying"

    second = messages(stack, "pipeline.trigger", 2, run_id)[1]
    assert second["json"]["attempt"] == 2 and second["hdrs"]["x-attempt"] == "2"
    assert second["ts"] >= int(h["x-due-at"]), "forwarded before it was due"
    wait_step(stack, run_id, "odata-sync-worker", "running", 2)

    failed(stack, run_id, "odata-sync-worker", second["json"], attempt=2, error="still down")
    d2 = messages(stack, "pipeline.retry.5m", 1, run_id)[0]
    assert d2["hdrs"]["x-attempt"] == "3" and d2["hdrs"]["x-last-error"] == "still down"
    assert d2["hdrs"]["x-first-failure-at"] == h["x-first-failure-at"]
    assert abs(int(d2["hdrs"]["x-due-at"]) - (d2["ts"] + 2000)) < 500
    third = messages(stack, "pipeline.trigger", 3, run_id)[2]
    assert third["ts"] >= int(d2["hdrs"]["x-due-at"])
    wait_step(stack, run_id, "odata-sync-worker", "running", 3)

    failed(stack, run_id, "odata-sync-worker", third["json"], attempt=3, error="x" * 900)
    dead = messages(stack, "pipeline.dead-letter", 1)[0]
    assert dead["json"]["runId"] == run_id and dead["json"]["attempt"] == 3
    assert dead["hdrs"]["x-worker"] == "odata-sync-worker"
    assert dead["hdrs"]["x-original-topic"] == stack.topic("pipeline.trigger")
    assert len(dead["hdrs"]["x-error"]) == 500 and dead["hdrs"]["x-failed-at"]
    wait_run(stack, run_id, "failed")
    assert step(stack, run_id, "odata-sync-worker")[:2] == ["failed", "3"]
    assert "odata-sync-worker failed after 3 attempt(s)" in run_row(stack, run_id)[2]
    assert metric(svc, "tg_dead_letters_total") == 1
    assert metric(svc, 'tg_retries_total{worker="odata-sync-worker"}') == 2
    assert metric(svc, "tg_delay_lateness_seconds_count") == 2
    assert any(l.get("level") == "error" and l["message"].startswith("ALERT:")
               for l in svc.log_lines())

    # Replay the dead letter: the run is reopened and its input sent again.
    status, body, _ = call(svc, "POST", "/api/v1/dead-letters/replay?partition=0&offset=0")
    assert status == 202 and body["replayedTo"] == stack.topic("pipeline.trigger"), body
    fourth = messages(stack, "pipeline.trigger", 4, run_id)[3]
    assert fourth["json"]["attempt"] == 1 and fourth["hdrs"]["x-attempt"] == "1"
    # A fresh event id: the worker must not take it for the event it handled.
    assert fourth["json"]["eventId"] == body["eventId"] != dead["json"]["eventId"]
    wait_step(stack, run_id, "odata-sync-worker", "running", 1)
    assert run_row(stack, run_id)[:2] == ["running", "retry"]
    status, body, _ = call(svc, "POST", "/api/v1/dead-letters/replay?partition=0&offset=99")
    assert status == 404, body


def test_not_retryable_goes_straight_to_dead_letter(stack):
    svc = start(stack)
    run_id = execute(svc)
    trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
    wait_step(stack, run_id, "odata-sync-worker", "running", 1)
    failed(stack, run_id, "odata-sync-worker", trig, attempt=1, retryable=False,
           error='Routes[17] FromStopId "x": unknown stop')
    dead = messages(stack, "pipeline.dead-letter", 1)[0]
    assert dead["hdrs"]["x-error"] == 'Routes[17] FromStopId "x": unknown stop'
    wait_run(stack, run_id, "failed")
    assert stack.consume("pipeline.retry.1m", 0, timeout=1) == []


def test_worker2_failure_still_builds_graph(stack):
    svc = start(stack)
    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    done = completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", dataset_version=9)
    wait_step(stack, run_id, "virtual-entities-generator", "running", 1)
    failed(stack, run_id, "virtual-entities-generator", done, attempt=1, retryable=False,
           error="cities directory is empty")
    ev = messages(stack, "pipeline.virtual-entities.completed", 1, run_id)[0]
    # The orchestrator's hand-over, in its own schema: no one takes it for
    # a completion of virtual-entities-generator.
    assert ev["hdrs"]["x-worker"] == "orchestrator"
    assert ev["json"]["schema"] == "pipeline.handover"
    assert ev["json"]["datasetVersion"] == 9
    p = ev["json"]["payload"]
    assert (p["reason"], p["to"], p["instead"]) == (
        "step-failed", "graph-builder", "virtual-entities-generator")
    assert p["error"] == "cities directory is empty"
    wait_step(stack, run_id, "graph-builder", "running", 1)
    assert step(stack, run_id, "virtual-entities-generator")[0] == "failed"
    assert run_row(stack, run_id)[0] == "running"
    completed(stack, "graph.completed", run_id, "graph-builder", dataset_version=9,
              graphVersion="graph-v9")
    wait_run(stack, run_id, "succeeded")
    status, body, _ = call(svc, "POST", f"/api/v1/runs/{run_id}/retry")
    assert status == 202 and body["rerunFrom"] == "virtual-entities-generator", body


def test_failure_seen_before_the_completion_that_started_the_step(stack):
    """The tracking reads several topics, so a worker's failure can arrive
    before the completion that handed it the work (seen when both come in
    one fetch). The failed attempt stays failed: the completion does not
    start attempt 1 over it, and the retry goes out as attempt 2."""
    svc = start(stack, RETRY_DELAYS_S="3,3")
    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    done = envelope("odata-sync.completed", {
        "workerId": "odata-sync-worker", "status": "success", "message": "ok",
        "executionTimeMs": 10, "dataProcessed": {"added": 1, "updated": 0, "deleted": 0},
        "datasetVersion": 4, "dataHash": "ab" * 32}, run_id=run_id, dataset_version=4)
    failed(stack, run_id, "virtual-entities-generator", done, attempt=1)
    wait_step(stack, run_id, "virtual-entities-generator", "retrying", 1)
    stack.produce("pipeline.odata-sync.completed", done, headers={"x-worker": "odata-sync-worker"})
    wait_step(stack, run_id, "odata-sync-worker", "succeeded")
    assert step(stack, run_id, "virtual-entities-generator")[:2] == ["retrying", "1"]
    retried = messages(stack, "pipeline.odata-sync.completed", 2, run_id)[1]
    assert retried["hdrs"]["x-attempt"] == "2", retried["hdrs"]
    wait_step(stack, run_id, "virtual-entities-generator", "running", 2)


def test_completion_read_after_the_run_ended_is_recorded(stack):
    """graph-builder's completion read before virtual-entities-generator's
    (both in one fetch: the tracking reads several topics) ends the run;
    the later one still records its step instead of leaving it running."""
    svc = start(stack)
    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", dataset_version=9)
    wait_step(stack, run_id, "virtual-entities-generator", "running", 1)
    completed(stack, "graph.completed", run_id, "graph-builder", dataset_version=9)
    wait_run(stack, run_id, "succeeded")
    completed(stack, "virtual-entities.completed", run_id, "virtual-entities-generator",
              dataset_version=9)
    wait_step(stack, run_id, "virtual-entities-generator", "succeeded")
    for worker in ("odata-sync-worker", "virtual-entities-generator", "graph-builder"):
        assert step(stack, run_id, worker)[0] == "succeeded", worker
    assert run_row(stack, run_id)[0] == "succeeded"


def test_criticality_follows_the_workers_table(stack):
    """The workers table is the one source of criticality: a non-critical
    last worker that gives up ends the run without a hand-over, a critical
    worker 2 that gives up fails the run."""
    stack.sql("UPDATE workers SET critical = (worker_id <> 'graph-builder')")
    svc = start(stack)
    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", dataset_version=5)
    done = completed(stack, "virtual-entities.completed", run_id, "virtual-entities-generator",
                     dataset_version=5)
    wait_step(stack, run_id, "graph-builder", "running", 1)
    failed(stack, run_id, "graph-builder", done, attempt=1, retryable=False,
           error="Redis refused the graph")
    wait_run(stack, run_id, "succeeded")
    assert "graph-builder failed after 1 attempt(s) (not critical)" in run_row(stack, run_id)[2]
    assert step(stack, run_id, "graph-builder")[0] == "failed"
    # Nothing was handed on in virtual-entities-generator's name.
    assert [m["json"]["schema"] for m in stack.consume("pipeline.virtual-entities.completed", 0,
                                                       timeout=1)] == [
        "virtual-entities.completed"]

    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    done = completed(stack, "odata-sync.completed", run_id, "odata-sync-worker", dataset_version=6)
    wait_step(stack, run_id, "virtual-entities-generator", "running", 1)
    failed(stack, run_id, "virtual-entities-generator", done, attempt=1, retryable=False,
           error="cities directory is empty")
    wait_run(stack, run_id, "failed")
    assert "cities directory is empty" in run_row(stack, run_id)[2]
    assert step(stack, run_id, "graph-builder") is None


def test_workers_table_that_disagrees_with_the_pipeline_stops_start_up(stack):
    stack.sql("UPDATE workers SET position = 4 - position")
    svc = stack.start("orchestrator", FAST, wait_ready=False)
    assert svc.proc.wait(30) != 0
    svc.expect_nonzero = True
    assert "workers table: graph-builder at position 1, but its input" in svc.logs()


class SlowWebhook(http.server.ThreadingHTTPServer):
    """An alert webhook that takes `delay` seconds to answer each POST."""

    def __init__(self, delay):
        self.delay, self.bodies = delay, []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(hook.delay)
                hook.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/alert"


def test_slow_alert_webhook_does_not_delay_tracking(stack):
    hook = SlowWebhook(delay=4)
    try:
        svc = start(stack, ALERT_WEBHOOK_URL=hook.url())
        run_id = execute(svc)
        trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
        wait_step(stack, run_id, "odata-sync-worker", "running", 1)
        t0 = time.time()
        failed(stack, run_id, "odata-sync-worker", trig, attempt=1, retryable=False,
               error="OData answered 401")
        # The run ends while the webhook is still answering the alert.
        wait_run(stack, run_id, "failed", timeout=10)
        assert time.time() - t0 < 3, "tracking waited for the webhook"
        assert not hook.bodies
        wait_for(lambda: hook.bodies, 15, what="the alert")
        assert hook.bodies[0]["runId"] == run_id
        assert hook.bodies[0]["workerId"] == "odata-sync-worker"
        assert "OData answered 401" in hook.bodies[0]["text"]
    finally:
        hook.shutdown()


def test_long_queries_never_share_a_cached_answer(stack):
    svc = start(stack, API_CACHE_MS="60000")
    for _ in range(2):
        run_id = execute(svc)
        trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
        failed(stack, run_id, "odata-sync-worker", trig, attempt=1, retryable=False)
        wait_run(stack, run_id, "failed")
    pad = "x" * 600  # past the cache's key size: only the end differs
    _, one, _ = call(svc, "GET", f"/api/v1/runs?pad={pad}&limit=1")
    _, two, _ = call(svc, "GET", f"/api/v1/runs?pad={pad}&limit=2")
    assert (len(one["runs"]), len(two["runs"])) == (1, 2)


def test_ten_concurrent_posts_give_one_run_and_idempotency(stack):
    svc = start(stack)
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(
            lambda _: call(svc, "POST", "/api/v1/workers/execute", headers=ASYNC), range(10)))
    ok = [b for s, b, _ in answers if s == 202]
    refused = [b for s, b, _ in answers if s == 409]
    assert len(ok) == 1 and len(refused) == 9, [s for s, _, _ in answers]
    run_id = ok[0]["runId"]
    assert all(run_id in b["error"]["message"] and b["error"]["code"] == "pipeline_running"
               and b["error"]["message"].startswith("cannot run: ") for b in refused)
    assert stack.count("runs") == 1
    status, body, _ = call(svc, "POST", f"/api/v1/runs/{run_id}/cancel")
    assert status == 200 and body["status"] == "cancelled"

    key = {"Idempotency-Key": "nightly-2026-01-01"}
    first = execute(svc, headers=key)
    status, again, _ = call(svc, "POST", "/api/v1/workers/execute", headers=dict(ASYNC, **key))
    assert status == 200 and again["runId"] == first
    assert stack.count("runs") == 2


def test_cancel_then_retry_from_failed_step(stack):
    svc = start(stack)
    run_id = execute(svc)
    trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
    failed(stack, run_id, "odata-sync-worker", trig, attempt=1)
    wait_step(stack, run_id, "odata-sync-worker", "retrying", 1)
    status, body, _ = call(svc, "POST", f"/api/v1/runs/{run_id}/cancel")
    assert status == 200
    assert step(stack, run_id, "odata-sync-worker")[0] == "cancelled"
    status, body, _ = call(svc, "POST", f"/api/v1/runs/{run_id}/cancel")
    assert status == 409 and "cancelled" in body["error"]["message"]
    time.sleep(2.5)  # the pending retry is due now, and must be dropped
    assert len([m for m in stack.consume("pipeline.trigger", 0, timeout=1)
                if m["json"]["runId"] == run_id]) == 1

    # A run whose graph-builder failed for good is rerun from that step.
    run2 = execute(svc)
    messages(stack, "pipeline.trigger", 1, run2)
    completed(stack, "odata-sync.completed", run2, "odata-sync-worker", dataset_version=2)
    vdone = completed(stack, "virtual-entities.completed", run2, "virtual-entities-generator",
                      dataset_version=2)
    wait_step(stack, run2, "graph-builder", "running", 1)
    failed(stack, run2, "graph-builder", vdone, attempt=1, retryable=False, error="graph invalid")
    wait_run(stack, run2, "failed")
    status, body, hdrs = call(svc, "POST", f"/api/v1/runs/{run2}/retry")
    assert status == 202 and body["rerunFrom"] == "graph-builder", body
    again = messages(stack, "pipeline.virtual-entities.completed", 2, run2)[1]
    assert again["json"]["eventId"] == vdone["eventId"] and again["hdrs"]["x-attempt"] == "1"
    wait_step(stack, run2, "graph-builder", "running", 1)
    assert run_row(stack, run2)[:2] == ["running", "retry"]
    assert step(stack, run2, "odata-sync-worker")[0] == "succeeded"
    completed(stack, "graph.completed", run2, "graph-builder", dataset_version=2)
    wait_run(stack, run2, "succeeded")
    status, body, _ = call(svc, "POST", f"/api/v1/runs/{run2}/retry")
    assert status == 409 and body["error"]["code"] == "conflict"


def test_single_worker_run(stack):
    svc = start(stack)
    status, body, _ = call(svc, "POST", "/api/v1/workers/graph-builder/execute")
    assert status == 409 and body["error"]["code"] == "no_dataset"
    stack.sql("INSERT INTO datasets (data_hash) VALUES (repeat('a', 64)) RETURNING version")
    results = {}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: results.setdefault(
            "r", call(svc, "POST", "/api/v1/workers/graph-builder/execute?wait=30&force=true")))
        start_ev = messages(stack, "pipeline.virtual-entities.completed", 1)[0]["json"]
        run_id = start_ev["runId"]
        assert start_ev["payload"]["only"] == "graph-builder" and start_ev["payload"]["force"]
        wait_step(stack, run_id, "graph-builder", "running", 1)
        completed(stack, "graph.completed", run_id, "graph-builder",
                  message="Graph built successfully: 2000 nodes, 15000 edges")
        fut.result(timeout=40)
    status, body, _ = results["r"]
    assert status == 200 and body["success"] is True, body
    assert body["message"] == "Worker graph-builder executed successfully"
    assert body["result"]["workerId"] == "graph-builder"
    assert body["result"]["message"] == "Graph built successfully: 2000 nodes, 15000 edges"
    assert stack.count("run_steps", f"run_id = '{run_id}'") == 1


def test_execute_as_the_specification_shows(stack):
    """A client written from the specification's examples: both execute
    endpoints without query parameters answer with its body once the run ended."""
    svc = start(stack)
    results = {}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: results.setdefault(
            "full", call(svc, "POST", "/api/v1/workers/execute")))
        run_id = messages(stack, "pipeline.trigger", 1)[0]["json"]["runId"]
        wait_step(stack, run_id, "odata-sync-worker", "running", 1)
        completed(stack, "odata-sync.completed", run_id, "odata-sync-worker")
        wait_step(stack, run_id, "virtual-entities-generator", "running", 1)
        completed(stack, "virtual-entities.completed", run_id, "virtual-entities-generator")
        wait_step(stack, run_id, "graph-builder", "running", 1)
        completed(stack, "graph.completed", run_id, "graph-builder",
                  message="Graph built successfully: 2 nodes, 1 edges")
        fut.result(timeout=50)
    status, body, _ = results["full"]
    assert status == 200, body
    assert {"success", "message", "totalExecutionTimeMs", "workersExecuted",
            "workerResults"} <= set(body), body
    assert body["success"] is True and body["message"] == "Pipeline executed successfully"
    assert body["workersExecuted"] == 3 and isinstance(body["totalExecutionTimeMs"], int)
    for r in body["workerResults"]:
        assert {"success", "workerId", "executionTimeMs", "message"} <= set(r), r

    # A single-worker run starts from the newest dataset.
    stack.sql("INSERT INTO datasets (data_hash) VALUES (repeat('a', 64)) RETURNING version")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(lambda: results.setdefault(
            "one", call(svc, "POST", "/api/v1/workers/graph-builder/execute")))
        start_ev = messages(stack, "pipeline.virtual-entities.completed", 2)[-1]["json"]
        one_id = start_ev["runId"]
        assert one_id != run_id and start_ev["payload"]["only"] == "graph-builder"
        wait_step(stack, one_id, "graph-builder", "running", 1)
        completed(stack, "graph.completed", one_id, "graph-builder",
                  message="Graph built successfully: 2000 nodes, 15000 edges")
        fut.result(timeout=50)
    status, body, _ = results["one"]
    assert status == 200, body
    assert body["success"] is True
    assert body["message"] == "Worker graph-builder executed successfully"
    assert body["result"]["success"] is True and body["result"]["workerId"] == "graph-builder"
    assert body["result"]["message"] == "Graph built successfully: 2000 nodes, 15000 edges"
    assert {"executionTimeMs", "dataProcessed"} <= set(body["result"])


def test_execute_async_and_outliving_the_wait(stack):
    svc = start(stack, EXECUTE_WAIT_S="1")
    t0 = time.monotonic()
    status, body, hdrs = call(svc, "POST", "/api/v1/workers/execute",
                              headers={"Prefer": "respond-async, wait=100"})
    assert status == 202 and time.monotonic() - t0 < 1, body
    assert hdrs["Preference-Applied"] == "respond-async"
    assert hdrs["Location"] == f"/api/v1/runs/{body['runId']}"
    call(svc, "POST", f"/api/v1/runs/{body['runId']}/cancel")
    # Nobody plays the workers: the run outlives EXECUTE_WAIT_S.
    status, body, hdrs = call(svc, "POST", "/api/v1/workers/execute")
    assert status == 202 and "still" in body["message"] and body["runId"] in body["message"]
    assert "Preference-Applied" not in hdrs
    # A worker that won't start says "cannot run" with the reason.
    stack.sql("INSERT INTO datasets (data_hash) VALUES (repeat('a', 64)) RETURNING version")
    status, refused, _ = call(svc, "POST", "/api/v1/workers/graph-builder/execute")
    assert status == 409 and refused["success"] is False
    assert refused["error"]["message"] == \
        f"cannot run: the pipeline is already running: run {body['runId']}"


def test_error_statuses(stack):
    svc = start(stack, API_TOKEN="s3cret-token")
    auth = {"Authorization": "Bearer s3cret-token"}

    def err(expected, method, path, **kw):
        status, body, hdrs = call(svc, method, path, **kw)
        assert status == expected, (method, path, status, body)
        if body is not None:
            assert body["success"] is False and body["error"]["code"] and body["error"]["message"]
        return body, hdrs

    err(401, "POST", "/api/v1/workers/execute")
    err(401, "POST", "/api/v1/workers/execute", headers={"Authorization": "Bearer wrong"})
    err(401, "POST", "/api/v1/runs/abc/cancel")
    assert call(svc, "GET", "/api/v1/workers")[0] == 200  # reads need no token
    body, _ = err(404, "GET", "/api/v1/workers/nope/status")
    assert "nope" in body["error"]["message"]
    err(404, "POST", "/api/v1/workers/nope/execute", headers=auth)
    err(404, "GET", "/api/v1/runs/no-such-run")
    err(404, "POST", "/api/v1/runs/no-such-run/cancel", headers=auth)
    err(404, "POST", "/api/v1/runs/no-such-run/retry", headers=auth)
    _, hdrs = err(405, "DELETE", "/api/v1/workers")
    assert hdrs["Allow"] == "GET"
    err(405, "GET", "/api/v1/workers/execute")
    err(405, "POST", "/api/v1/workers/pipeline/status", headers=auth)
    err(405, "PUT", "/api/v1/runs/abc")
    err(400, "POST", "/api/v1/workers/execute", headers=auth, raw=b"{not json")
    err(400, "POST", "/api/v1/workers/execute", headers=auth, raw=b"[1,2]")
    err(400, "POST", "/api/v1/workers/execute?wait=soon", headers=auth)
    err(400, "POST", "/api/v1/workers/execute?force=maybe", headers=auth)
    err(400, "GET", "/api/v1/runs?limit=0")
    err(400, "GET", "/api/v1/runs?status=done")
    err(400, "GET", "/api/v1/runs/bad%20id")
    err(400, "POST", "/api/v1/dead-letters/replay?partition=x", headers=auth)
    err(413, "POST", "/api/v1/workers/execute", headers=auth, raw=b" " * (70 * 1024))
    assert stack.count("runs") == 0

    run_id = execute(svc, headers=auth, body={"force": True})
    assert stack.scalar(f"SELECT force FROM runs WHERE run_id = '{run_id}'") == "t"
    body, _ = err(409, "POST", "/api/v1/workers/execute", headers=auth)
    assert run_id in body["error"]["message"]
    status, pipe, _ = call(svc, "GET", "/api/v1/workers/pipeline/status")
    assert status == 200 and pipe["pipeline"]["activeRunId"] == run_id
    status, doc, _ = call(svc, "GET", "/api/v1/openapi.json")
    assert status == 200 and "/api/v1/runs/{runId}/retry" in doc["paths"]
    assert "s3cret-token" not in svc.logs()


def test_timed_out_step_is_retried_then_run_times_out(stack):
    svc = start(stack, WORKER_TIMEOUT_S_1="1")
    run_id = execute(svc)
    messages(stack, "pipeline.trigger", 1, run_id)
    wait_step(stack, run_id, "odata-sync-worker", "running", 1)
    d = messages(stack, "pipeline.retry.1m", 1, run_id, timeout=10)[0]
    assert d["hdrs"]["x-last-error"] == "timed out: still running after 1 s"
    assert d["hdrs"]["x-original-offset"] == "-1"
    wait_step(stack, run_id, "odata-sync-worker", "running", 2, timeout=10)
    wait_run(stack, run_id, "timed_out", timeout=30)
    assert step(stack, run_id, "odata-sync-worker")[:2] == ["timed_out", "3"]
    assert messages(stack, "pipeline.dead-letter", 1)[0]["json"]["runId"] == run_id


def test_schedule_starts_runs(stack):
    start(stack, SCHEDULE_INTERVAL_S="1")
    wait_for(lambda: stack.count("runs", "trigger = 'schedule'") >= 1, 10, what="scheduled run")
    time.sleep(2.5)  # later ticks are skipped while that run is active
    assert stack.count("runs") == 1


def test_retry_survives_restart(stack):
    svc = start(stack, RETRY_DELAYS_S="4,4")
    run_id = execute(svc)
    trig = messages(stack, "pipeline.trigger", 1, run_id)[0]["json"]
    failed(stack, run_id, "odata-sync-worker", trig, attempt=1)
    due = int(messages(stack, "pipeline.retry.1m", 1, run_id)[0]["hdrs"]["x-due-at"])
    assert svc.stop() == 0
    assert time.time() * 1000 < due, "the test is too slow to restart before the retry is due"
    start(stack, RETRY_DELAYS_S="4,4")
    second = messages(stack, "pipeline.trigger", 2, run_id, timeout=20)[1]
    assert second["ts"] >= due and second["json"]["attempt"] == 2
    wait_step(stack, run_id, "odata-sync-worker", "running", 2)


# A run whose row PostgreSQL refuses while its id is in test_fault: the
# tracking consumer holds (pauses) the event's partition until it can.
FAULT_SQL = """
CREATE TABLE test_fault (run_id text PRIMARY KEY);
CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM test_fault WHERE run_id = NEW.run_id) THEN
    RAISE EXCEPTION 'test fault for run %', NEW.run_id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER test_fault BEFORE INSERT OR UPDATE ON runs
  FOR EACH ROW EXECUTE FUNCTION test_fault();
"""


def test_held_events_survive_rebalances():
    """Two events held after a PostgreSQL error, one on each partition of the
    trigger topic; a second orchestrator joins the group and leaves again, so
    partitions move away and come back while their events are held; events
    behind them are tracked meanwhile. Once PostgreSQL takes them, every one
    is tracked: a revoked partition's hold must not outlive the revoke."""
    from conftest import Stack
    stack = Stack(partitions=2)
    try:
        stack.sql(FAULT_SQL)
        held = [f"held-{stack.tag}-{p}" for p in (0, 1)]
        after = [f"after-{stack.tag}-{p}" for p in (0, 1)]
        stack.sql("INSERT INTO test_fault VALUES " + ",".join(f"('{r}')" for r in held))
        first = start(stack)
        for p, run_id in enumerate(held):
            stack.produce("pipeline.trigger", envelope("pipeline.trigger", {"force": False},
                                                       run_id=run_id, source_id=f"s{p}"),
                          key=f"s{p}", partition=p)
        for run_id in held:
            wait_for(lambda: f"test fault for run {run_id}" in first.logs(), 20,
                     what=f"{run_id} refused by PostgreSQL")
        second = start(stack)
        # The join moves partitions in the background (the first member
        # learns of it at its next heartbeat): give the group time to settle.
        time.sleep(8)
        for p, run_id in enumerate(after):
            stack.produce("pipeline.trigger", envelope("pipeline.trigger", {"force": False},
                                                       run_id=run_id, source_id=f"a{p}"),
                          key=f"a{p}", partition=p)
        time.sleep(3)
        second.stop()
        time.sleep(12)  # a static member's partitions return after session.timeout.ms
        stack.sql("DELETE FROM test_fault")
        for run_id in held + after:
            wait_step(stack, run_id, "odata-sync-worker", "running", 1, timeout=30)
    finally:
        stack.close()


def test_restarted_member_does_not_rebalance_the_group(stack):
    """A rolling restart: the second of two orchestrators stops and comes
    back under the same pod name. Static membership gives it its partitions
    again without a rebalance, so the first never stops consuming (with
    dynamic membership and eager assignment, its leave and its join each
    revoke every partition of the group)."""
    stack.static_members = True
    debug = {"KAFKA_CONF_DEBUG": "cgrp"}
    first = start(stack, **debug)
    second = start(stack, **debug)
    time.sleep(8)  # both members' first rebalance settles
    seen = len(first.logs())
    second.stop()
    second = stack.start("orchestrator", dict(FAST, POD_NAME="orchestrator-1", **debug))
    trig = envelope("pipeline.trigger", {"force": False})
    stack.produce("pipeline.trigger", trig)
    wait_step(stack, trig["runId"], "odata-sync-worker", "running", 1)
    time.sleep(5)
    assert "is rebalancing" not in first.logs()[seen:]


def metrics_text(svc):
    with urllib.request.urlopen(svc.url("/metrics"), timeout=5) as r:
        return r.read().decode()


def test_metrics_from_start_up_and_per_request_and_partition(stack):
    svc = start(stack, KAFKA_CONF_STATISTICS_INTERVAL_MS="500")
    text = metrics_text(svc)
    # Counters exist at zero before anything happened: the first dead
    # letter or retry is an increase that rate() and alerts can see.
    assert "\ntg_dead_letters_total 0\n" in text
    for worker in ("odata-sync-worker", "virtual-entities-generator", "graph-builder"):
        assert f'\ntg_retries_total{{worker="{worker}"}} 0\n' in text
    assert '\ntg_runs_total{status="failed"} 0\n' in text
    info = [l for l in text.splitlines() if l.startswith("tg_build_info{")]
    assert len(info) == 1 and 'service="orchestrator"' in info[0] and 'version="1.0.0"' in info[0]
    assert info[0].endswith(" 1") and 'revision="' in info[0]

    # Requests by route (the handler's pattern, never the path) and status.
    status, _, _ = call(svc, "GET", "/api/v1/runs/no-such-run")
    assert status == 404
    call(svc, "GET", "/healthz")
    call(svc, "GET", "/no/such/path")
    text = metrics_text(svc)
    assert '\ntg_http_requests_total{route="/api/v1/runs",status="404"} 1\n' in text
    assert 'tg_http_requests_total{route="/healthz",status="200"}' in text
    assert 'tg_http_requests_total{route="other",status="404"} 1\n' in text
    assert 'no-such-run' not in text
    assert 'tg_http_request_duration_seconds_count{route="/api/v1/runs"} 1\n' in text
    assert 'tg_http_request_duration_seconds_bucket{route="/healthz",le="+Inf"}' in text

    # Consumer lag of each partition the tracking consumer reads, once an
    # offset of it was committed.
    trig = envelope("pipeline.trigger", {"force": False})
    stack.produce("pipeline.trigger", trig)
    wait_step(stack, trig["runId"], "odata-sync-worker", "running", 1)
    lag = f'tg_consumer_lag{{topic="{stack.topic("pipeline.trigger")}",partition="0"}} 0\n'
    wait_for(lambda: lag in metrics_text(svc), 20, what=lag)
