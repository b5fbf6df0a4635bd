"""The servers under the pipeline fail during a run: Redis stopped while
graph-builder works, PostgreSQL restarted while the generator saves, the S3
store down, the Kafka broker restarted, the orchestrator killed while a
retry waits in a delay topic, the OData source slow, failing with 5xx or
cutting its answer short. Every run must still succeed (after the
orchestrator's retries) with whole snapshots, no duplicate, one active
graph, and no partial graph seen by the reader."""
import time

import pytest

import faults
from conftest import SAMPLE, STACK
from kill_test import check_round, serve_round


@pytest.fixture
def pipe(stack, odata_server):
    """The pipeline after one clean run (its counts are the baseline), with
    a graph reader following graph:version."""
    srv = odata_server(SAMPLE, "--quiet")
    p = faults.Pipeline(stack, srv, RETRY_DELAYS_S="4,8")
    p.srv = srv
    serve_round(srv, "warm-up")
    row = p.wait_run(p.execute(wait=120))
    assert row[0] == "succeeded", row
    faults.count("runs_completed")
    p.baseline = faults.version_counts(stack, row[1])
    p.reader = faults.GraphReader(STACK["REDIS_URL"], int(stack.redis_url.rsplit("/", 1)[1]))
    p.reader.start()
    p.problems = []
    yield p
    p.reader.stop()
    assert not p.reader.partial, f"partial graphs seen: {p.reader.partial[:5]}"


def finish(pipe, run_id):
    check_round(pipe.stack, run_id, pipe.wait_run(run_id, timeout=240), pipe.baseline,
                pipe.problems)
    assert not pipe.problems, "\n".join(pipe.problems)


def test_redis_stopped_during_graph_build(pipe, fault_stack):
    serve_round(pipe.srv, "redis")
    run_id = pipe.execute()
    assert pipe.wait_started("graph-builder", run_id)
    fault_stack.stop("redis")
    time.sleep(1)
    fault_stack.start()
    finish(pipe, run_id)


def test_postgres_restarted_during_generator_save(pipe, fault_stack):
    serve_round(pipe.srv, "postgres")
    run_id = pipe.execute()
    assert pipe.wait_started("virtual-entities-generator", run_id)
    time.sleep(0.2)
    fault_stack.stop("postgres")
    time.sleep(1)
    fault_stack.start()
    finish(pipe, run_id)


def test_postgres_crash_during_odata_save(pipe, fault_stack):
    serve_round(pipe.srv, "postgres-crash")
    run_id = pipe.execute()
    assert pipe.wait_started("odata-sync-worker", run_id)
    time.sleep(0.05)
    fault_stack.stop("postgres", sig=faults.signal.SIGKILL)
    time.sleep(1)
    fault_stack.start()
    finish(pipe, run_id)


def test_s3_down_backups_skipped(pipe, fault_stack):
    fault_stack.stop("s3")
    serve_round(pipe.srv, "s3")
    run_id = pipe.execute()
    row = pipe.wait_run(run_id)
    finish(pipe, run_id)
    assert pipe.stack.count("datasets", f"version = {row[1]} AND backup_key IS NULL") == 1


def test_kafka_broker_restarted_during_run(pipe, fault_stack):
    serve_round(pipe.srv, "kafka")
    run_id = pipe.execute()
    assert pipe.wait_started("odata-sync-worker", run_id)
    fault_stack.stop("kafka")
    time.sleep(2)
    fault_stack.start()
    finish(pipe, run_id)


def test_orchestrator_killed_while_retry_waits(pipe):
    serve_round(pipe.srv, "delay")
    pipe.srv.control(mode="fail", status=500, times=1)
    run_id = pipe.execute()

    def retrying():
        rows = pipe.stack.sql(f"SELECT status FROM run_steps WHERE run_id = '{run_id}' "
                              f"AND worker_id = 'odata-sync-worker'")
        return rows and rows[0][0] == "retrying"
    faults_wait(retrying, "the step to wait in pipeline.retry.1m")
    pipe.kill("orchestrator")
    time.sleep(1)
    pipe.restart("orchestrator")
    finish(pipe, run_id)
    attempts = pipe.stack.scalar(f"SELECT attempts FROM run_steps WHERE run_id = '{run_id}' "
                                 f"AND worker_id = 'odata-sync-worker'")
    assert attempts == "2", attempts


@pytest.mark.parametrize("fault", [
    {"mode": "slow", "delay_ms": 1500},
    {"mode": "fail", "status": 503, "times": 4},
    {"mode": "odata_error", "status": 500, "times": 1},
    {"mode": "truncate", "times": 1},
    {"mode": "truncate", "short_read": True, "times": 1},
], ids=["slow", "503", "500", "truncated", "short-read"])
def test_odata_source_misbehaves(pipe, fault):
    serve_round(pipe.srv, f"odata-{fault['mode']}")
    pipe.srv.control(**fault)
    faults.count("faults_injected")
    finish(pipe, pipe.execute())


def faults_wait(pred, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
