"""A worker step that hangs past its timeout is stopped by the worker itself
(not only marked timed out by the orchestrator), its partition is freed, and
the orchestrator's retry completes the run. The four real services run on
the bundled sample data with the timeouts shortened by configuration
(the orchestrator's WORKER_TIMEOUT_S_<n>, which the worker reads too, or
the worker's own STEP_TIMEOUT_S):

- worker 1 waits on an OData page that answers only after 10 minutes (the
  test server's "slow" fault, first request only): the fetch is cut at the
  deadline and the retry fetches normally;
- worker 2 waits on PostgreSQL: the test holds an exclusive lock on
  virtual_stops through psql, statement_timeout cancels the blocked
  statement, the test then releases the lock and the retry saves;
- the orchestrator times worker 1 out before the worker does: the worker's
  late failure of attempt 1 is ignored as stale (no second retry) and the
  retry, which waited behind the stopped step, completes the run.

Without the deadline in the worker both runs end without the workers'
"timed out" failures: worker 1 stays on the hung page until curl's own 60 s
limit while its retries wait behind it, worker 2 until the lock goes away.
"""
import os
import subprocess

from conftest import SOURCE_DIR, wait_for
from orchestrator_test import call, execute, messages, step, wait_run, wait_step
from pipeline_test import assert_graph_published

SAMPLE = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata")
HANG_MS = 600000  # far beyond every timeout of this test
TIMEOUT_S = "4"


def start_all(stack, srv, worker_env, orchestrator_env, later=()):
    """Starts the services but those named in later (the test starts them)."""
    def env(worker_id):
        return worker_env.get(worker_id, {})
    stack.start("odata-sync-worker", dict(env("odata-sync-worker"), ODATA_URL=srv.url()))
    for worker in ("virtual-entities-generator", "graph-builder"):
        if worker not in later:
            stack.start(worker, env(worker))
    orchestrator = {"RETRY_DELAYS_S": "1,2", "SCHEDULE_INTERVAL_S": "0", "TIMEOUT_SWEEP_S": "1"}
    orchestrator.update(orchestrator_env)
    return stack.start("orchestrator", orchestrator)


def worker_failures(stack, run_id, worker, count=1, timeout=30):
    """The step.failed events the worker itself sent for run_id."""
    def got():
        msgs = [m for m in stack.consume("pipeline.step.failed", 0, timeout=1)
                if (m["json"] or {}).get("runId") == run_id
                and m["hdrs"].get("x-worker") == worker]
        return msgs if len(msgs) >= count else None
    return wait_for(got, timeout, interval=0.3, what=f"a step.failed from {worker}")


def assert_timed_out(event, worker, where):
    p = event["json"]["payload"]
    assert p["workerId"] == worker
    assert p["errorCode"] == "timeout" and p["retryable"] is True, p
    assert p["error"].startswith(f"timed out after {TIMEOUT_S} s: "), p["error"]
    assert where in p["error"], p["error"]
    # Stopped at the deadline, not by a later limit (curl's 60 s, the lock).
    assert p["executionTimeMs"] < 30000, p


def test_hanging_odata_page_is_stopped_and_the_retry_succeeds(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    srv.control(mode="slow", delay_ms=HANG_MS, times=1)  # the first data request hangs
    # One setting for both, as the Kubernetes ConfigMap gives it to every
    # service: the worker reads the orchestrator's WORKER_TIMEOUT_S_1.
    shared = {"WORKER_TIMEOUT_S_1": TIMEOUT_S}
    orch = start_all(stack, srv, {"odata-sync-worker": shared}, shared)

    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=60")
    assert status == 200 and body["success"] is True, body
    run_id = body["runId"]
    assert step(stack, run_id, "odata-sync-worker")[:2] == ["succeeded", "2"]
    failed = worker_failures(stack, run_id, "odata-sync-worker")
    assert len(failed) == 1, [m["json"]["payload"]["error"] for m in failed]
    assert_timed_out(failed[0], "odata-sync-worker", "Stops page 1: the fetch took longer")
    # The retry went through the delay topic and came back with a deadline.
    retried = messages(stack, "pipeline.trigger", 2, run_id)[1]
    assert retried["hdrs"]["x-attempt"] == "2" and int(retried["hdrs"]["x-deadline"]) > 0
    assert_graph_published(stack, run_id)
    assert stack.count("datasets") == 1  # the stopped attempt saved nothing


def test_late_failure_of_a_timed_out_step_is_not_retried_twice(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    srv.control(mode="slow", delay_ms=HANG_MS, times=1)
    # The orchestrator gives up after 3 s and forwards the retry 3 s later;
    # the worker stops attempt 1 at 6 s, while the step is already timed out
    # or its retry is running.
    orch = start_all(stack, srv, {"odata-sync-worker": {"STEP_TIMEOUT_S": "6"}},
                     {"WORKER_TIMEOUT_S_1": "3", "RETRY_DELAYS_S": "3,3"})
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=60")
    assert status == 200 and body["success"] is True, body
    run_id = body["runId"]
    assert step(stack, run_id, "odata-sync-worker")[:2] == ["succeeded", "2"]
    late = worker_failures(stack, run_id, "odata-sync-worker")[0]["json"]
    assert late["attempt"] == 1 and late["payload"]["error"].startswith("timed out after 6 s: ")
    wait_for(lambda: any("odata-sync-worker failure (attempt 1) ignored" in line.get("message", "")
                         for line in orch.log_lines()), 10, what="the late failure ignored")
    retries = [m for m in stack.consume("pipeline.retry.1m", 0, timeout=1)
               + stack.consume("pipeline.retry.5m", 0, timeout=1)
               if (m["json"] or {}).get("runId") == run_id]
    assert len(retries) == 1 and retries[0]["hdrs"]["x-last-error"].startswith("timed out: ")
    assert len(messages(stack, "pipeline.trigger", 2, run_id)) == 2
    assert_graph_published(stack, run_id)


def test_query_blocked_by_a_lock_is_cancelled_and_the_retry_succeeds(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    # Worker 2's retry comes 3 s after its timeout: time to release the lock.
    worker2 = {"STEP_TIMEOUT_S": TIMEOUT_S}
    orch = start_all(stack, srv, {}, {"WORKER_TIMEOUT_S_2": TIMEOUT_S, "RETRY_DELAYS_S": "3,3"},
                     later=("virtual-entities-generator",))
    # Worker 1 saves first (attaching the new version's partitions needs
    # the parent tables), then the lock, then worker 2 meets it.
    run_id = execute(orch)
    wait_step(stack, run_id, "odata-sync-worker", "succeeded", timeout=60)
    holder = subprocess.Popen(["psql", stack.database_url, "-qX", "-v", "ON_ERROR_STOP=1"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        holder.stdin.write(b"BEGIN; LOCK TABLE virtual_stops IN ACCESS EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        wait_for(lambda: stack.count("pg_locks", "relation = 'virtual_stops'::regclass "
                                                 "AND mode = 'AccessExclusiveLock' AND granted"),
                 10, what="the lock on virtual_stops")
        stack.start("virtual-entities-generator", worker2)
        failed = worker_failures(stack, run_id, "virtual-entities-generator")
        assert_timed_out(failed[0], "virtual-entities-generator", "statement timeout")
    finally:
        holder.terminate()
        holder.wait(10)
    wait_run(stack, run_id, "succeeded", timeout=60)
    assert step(stack, run_id, "virtual-entities-generator")[:2] == ["succeeded", "2"]
    assert stack.count("virtual_stops") > 0
    graph_version = assert_graph_published(stack, run_id)
    assert int(stack.redis_cli("SCARD", f"graph:{graph_version}:nodes")) > 0
