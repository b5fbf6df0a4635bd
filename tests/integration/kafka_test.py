"""Kafka and the worker loop against the real broker of deploy/stack.sh.

kafka_roundtrip (tests/integration/kafka_roundtrip.c) drives tg/kafka.h
directly (produce, consume in a group with or without storing offsets) and
runs tg_worker_main with an echo step, so the loop every pipeline worker
uses is exercised end to end: completion events, step.failed, dead letters,
readiness, metrics and shutdown.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import BUILD_DIR, STACK, envelope, free_port, wait_for

ROUNDTRIP = os.path.join(BUILD_DIR, "tests", "kafka_roundtrip")
WORKER_TOPICS = ["pipeline.trigger", "pipeline.odata-sync.completed", "pipeline.step.failed",
                 "pipeline.dead-letter"]


def base_env(**extra):
    env = dict(os.environ)
    env.update(STACK)
    env.update({"LOG_LEVEL": "info", "CONNECT_TIMEOUT_S": "5"})
    env.update(extra)
    return env


def roundtrip(*args, env=None, timeout=90):
    assert os.path.exists(ROUNDTRIP), f"{ROUNDTRIP} is not built"
    return subprocess.run([ROUNDTRIP, *map(str, args)], env=env or base_env(),
                          capture_output=True, text=True, timeout=timeout)


def create_topic(name, partitions=1):
    r = roundtrip("create-topic", name, partitions)
    assert r.returncode == 0, r.stderr


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def kcat_produce(topic, value, key="default"):
    data = value if isinstance(value, str) else json.dumps(value)
    subprocess.run(["kcat", "-P", "-b", STACK["KAFKA_BROKERS"], "-t", topic, "-k", key],
                   input=data.encode(), check=True, capture_output=True, timeout=30)


def kcat_read(topic, count, timeout=30.0):
    """Reads topic from the beginning until count messages arrived."""
    def read():
        out = subprocess.run(["kcat", "-C", "-b", STACK["KAFKA_BROKERS"], "-t", topic,
                              "-o", "beginning", "-e", "-J", "-q"],
                             capture_output=True, text=True, timeout=60).stdout
        msgs = [json.loads(line) for line in lines(out)]
        return msgs if len(msgs) >= count else None
    msgs = wait_for(read, timeout=timeout, what=f"{count} message(s) on {topic}")
    for m in msgs:
        hdrs = m.get("headers") or []
        m["hdrs"] = dict(zip(hdrs[0::2], hdrs[1::2]))
        try:
            m["json"] = json.loads(m["payload"])
        except (TypeError, ValueError):
            m["json"] = None
    return msgs


@pytest.fixture
def topic():
    name = f"kt-{uuid.uuid4().hex[:10]}"
    return name


# ---- producer and consumer -------------------------------------------------

def test_group_consumer_receives_every_produced_message(topic):
    create_topic(topic, partitions=3)
    produced = roundtrip("produce", topic, 10)
    assert produced.returncode == 0, produced.stderr
    ids = lines(produced.stdout)
    assert len(ids) == 10

    consumed = roundtrip("consume", topic, f"g-{topic}", 10)
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(lines(consumed.stdout)) == sorted(ids)


def test_unstored_offset_is_redelivered_and_stored_one_is_not(topic):
    create_topic(topic)
    first, second = lines(roundtrip("produce", topic, 2).stdout)
    group = f"g-{topic}"

    crashed = roundtrip("consume", topic, group, 1, "--crash-before-store")
    assert crashed.returncode == 9, crashed.stderr
    assert lines(crashed.stdout) == [first]

    again = roundtrip("consume", topic, group, 1)
    assert again.returncode == 0, again.stderr
    assert lines(again.stdout) == [first], "a message whose offset was not stored comes back"

    after = roundtrip("consume", topic, group, 1)
    assert after.returncode == 0, after.stderr
    assert lines(after.stdout) == [second], "a stored (committed) offset is not delivered again"


def test_delivery_to_a_missing_topic_fails_with_the_broker_error(topic):
    env = base_env(KAFKA_CONF_TOPIC_METADATA_PROPAGATION_MAX_MS="1000")
    r = roundtrip("produce", topic, 1, env=env)
    assert r.returncode == 1
    assert f"kafka: delivery to {topic} failed: Broker: Unknown topic or partition" in r.stderr


# ---- the worker loop --------------------------------------------------------

class Worker:
    def __init__(self, prefix, **extra):
        self.port = free_port()
        self.prefix = prefix
        logdir = os.path.join(BUILD_DIR, "test-logs")
        os.makedirs(logdir, exist_ok=True)
        self.log_path = os.path.join(logdir, f"roundtrip-worker-{self.port}.log")
        self.log = open(self.log_path, "wb")
        env = base_env(TOPIC_PREFIX=prefix, HTTP_PORT=str(self.port), **extra)
        self.proc = subprocess.Popen([ROUNDTRIP, "worker"], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def get(self, path, method="GET"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def wait_ready(self):
        def ready():
            assert self.proc.poll() is None, f"worker exited: {self.logs()}"
            try:
                return self.get("/readyz")[0] == 200
            except (urllib.error.URLError, OSError):
                return False
        wait_for(ready, timeout=30, what="worker /readyz")

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_has(self, text):
        return text in self.logs()

    def stop(self):
        """SIGTERM; returns the exit code (the worker must exit on its own)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "hung"
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def worker_topics():
    prefix = f"w{uuid.uuid4().hex[:8]}."
    for base in WORKER_TOPICS:
        create_topic(prefix + base)
    return prefix


@pytest.fixture
def worker(worker_topics):
    started = []

    def start():
        w = Worker(worker_topics)
        started.append(w)
        w.wait_ready()
        return w
    yield start
    for w in started:
        assert w.stop() == 0, w.logs()


def test_worker_emits_completion_with_step_results(worker, worker_topics):
    w = worker()
    trigger = envelope("pipeline.trigger", {"value": "hello", "force": True},
                       source_id="src-1")
    kcat_produce(worker_topics + "pipeline.trigger", trigger, key="src-1")

    [done] = kcat_read(worker_topics + "pipeline.odata-sync.completed", 1)
    env = done["json"]
    assert done["key"] == "src-1"
    assert done["hdrs"]["x-worker"] == "roundtrip-worker"
    assert env["schema"] == "odata-sync.completed"
    assert env["runId"] == trigger["runId"]
    assert env["correlationId"] == trigger["correlationId"]
    assert env["eventId"] != trigger["eventId"]
    assert env["datasetVersion"] == 41
    p = env["payload"]
    assert p["workerId"] == "roundtrip-worker"
    assert p["workerName"] == "Round Trip Test Worker"
    assert p["status"] == "success"
    assert p["message"] == f"echoed {trigger['eventId']}"
    assert p["dataProcessed"] == {"added": 3, "updated": 2, "deleted": 0}
    assert p["force"] is True
    assert p["echo"] == "hello"
    assert isinstance(p["executionTimeMs"], (int, float))

    runs = [json.loads(line) for line in w.logs().splitlines() if line.startswith("{")]
    mine = [r["message"] for r in runs if r.get("runId") == trigger["runId"]]
    assert "Worker started: pipeline.trigger attempt 1" in mine
    assert f"Worker finished: echoed {trigger['eventId']}" in mine


def test_worker_reports_failed_step_with_its_input(worker, worker_topics):
    worker()
    trigger = envelope("pipeline.trigger", {"fail": "invalid"}, attempt=2)
    kcat_produce(worker_topics + "pipeline.trigger", trigger)
    unavailable = envelope("pipeline.trigger", {"fail": "unavailable"})
    kcat_produce(worker_topics + "pipeline.trigger", unavailable)

    failed = kcat_read(worker_topics + "pipeline.step.failed", 2)
    first, second = failed[0]["json"], failed[1]["json"]
    assert first["schema"] == "step.failed"
    assert first["runId"] == trigger["runId"]
    assert first["attempt"] == 2
    p = first["payload"]
    assert p["error"] == "told to fail: invalid"
    assert p["errorCode"] == "invalid"
    assert p["retryable"] is False
    assert p["inputTopic"] == worker_topics + "pipeline.trigger"
    assert p["inputPartition"] == 0
    assert p["inputOffset"] == 0
    assert p["input"] == trigger
    assert p["report"] == "details survive failures"
    assert second["payload"]["errorCode"] == "unavailable"
    assert second["payload"]["retryable"] is True
    assert second["payload"]["inputOffset"] == 1


@pytest.mark.parametrize("raw, reason", [
    ("not json at all", "envelope: not valid JSON"),
    (json.dumps(dict(envelope("pipeline.trigger"), runId="bad id!")), "runId: invalid character"),
    (json.dumps(envelope("graph.completed")), "schema: expected pipeline.trigger or pipeline.handover, got graph.completed"),
    (json.dumps(dict(envelope("pipeline.trigger"), schemaVersion=7)),
     "schemaVersion: unsupported version 7 (this build reads 1)"),
])
def test_malformed_event_goes_to_dead_letter_unchanged(worker, worker_topics, raw, reason):
    w = worker()
    kcat_produce(worker_topics + "pipeline.trigger", raw, key="k-1")
    # A good event behind it is still processed: the bad one does not block.
    kcat_produce(worker_topics + "pipeline.trigger", envelope("pipeline.trigger"))

    [dead] = kcat_read(worker_topics + "pipeline.dead-letter", 1)
    assert dead["payload"] == raw
    assert dead["key"] == "k-1"
    h = dead["hdrs"]
    assert h["x-error"].startswith(reason)
    assert h["x-original-topic"] == worker_topics + "pipeline.trigger"
    assert h["x-original-partition"] == "0"
    assert h["x-original-offset"] == "0"
    assert h["x-worker"] == "roundtrip-worker"
    assert h["x-failed-at"].endswith("Z")
    kcat_read(worker_topics + "pipeline.odata-sync.completed", 1)
    assert w.log_has("Malformed event at")

    status, _, body = w.get("/metrics")
    assert status == 200
    assert 'tg_worker_dead_letters_total{worker="roundtrip-worker"} 1' in body


def test_worker_http_endpoints(worker):
    w = worker()
    status, headers, body = w.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "service": "roundtrip-worker",
                                "version": "0.0.1"}
    status, _, body = w.get("/readyz")
    assert status == 200
    assert json.loads(body)["dependencies"] == {"kafka": "ok"}
    status, headers, body = w.get("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # Before any event: the worker's counters at zero, its build, and the
    # probes just answered counted by route and status.
    text = body.decode() if isinstance(body, bytes) else body
    assert '\ntg_worker_dead_letters_total{worker="roundtrip-worker"} 0\n' in text
    assert '\ntg_worker_steps_total{worker="roundtrip-worker",status="failed"} 0\n' in text
    assert 'tg_build_info{service="roundtrip-worker",version="0.0.1",revision="' in text
    assert 'tg_http_requests_total{route="/readyz",status="200"} ' in text
    status, headers, body = w.get("/healthz", method="POST")
    assert status == 405
    assert headers["Allow"] == "GET"
    assert json.loads(body)["success"] is False


def test_step_abandoned_at_shutdown_is_redone_after_restart(worker, worker_topics):
    w = worker()
    trigger = envelope("pipeline.trigger", {"sleepMs": 3000})
    kcat_produce(worker_topics + "pipeline.trigger", trigger)
    wait_for(lambda: w.log_has("Worker started"), what="the step to start")
    assert w.stop() == 0
    assert "Step abandoned for shutdown" in w.logs()

    again = worker()
    [done] = kcat_read(worker_topics + "pipeline.odata-sync.completed", 1, timeout=60)
    assert done["json"]["runId"] == trigger["runId"]
    assert again.log_has("Worker finished")


def test_emit_is_retried_until_the_broker_takes_it():
    prefix = f"w{uuid.uuid4().hex[:8]}."
    for base in WORKER_TOPICS:
        if base != "pipeline.odata-sync.completed":
            create_topic(prefix + base)
    w = Worker(prefix, KAFKA_CONF_TOPIC_METADATA_PROPAGATION_MAX_MS="500")
    try:
        w.wait_ready()
        trigger = envelope("pipeline.trigger", {"value": "late"})
        kcat_produce(prefix + "pipeline.trigger", trigger)

        def not_ready():
            status, _, body = w.get("/readyz")
            return status == 503 and "Unknown topic or partition" in body
        wait_for(not_ready, what="/readyz to report the failing delivery")
        create_topic(prefix + "pipeline.odata-sync.completed")
        [done] = kcat_read(prefix + "pipeline.odata-sync.completed", 1, timeout=60)
        assert done["json"]["runId"] == trigger["runId"]
        wait_for(lambda: w.get("/readyz")[0] == 200, what="ready again")
    finally:
        assert w.stop() == 0, w.logs()


def test_idle_worker_stops_promptly_on_sigterm(worker):
    w = worker()
    started = time.monotonic()
    assert w.stop() == 0
    assert time.monotonic() - started < 5, "an idle worker exits within 5 s of SIGTERM"
    assert "Shutting down" in w.logs()


# ---- start-up failures ------------------------------------------------------

def run_worker_expecting_failure(**extra):
    env = base_env(HTTP_PORT="0", **extra)
    r = subprocess.run([ROUNDTRIP, "worker"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1, r.stderr
    return lines(r.stderr)[-1]


def test_worker_gives_up_when_no_broker_answers():
    port = free_port()
    last = run_worker_expecting_failure(KAFKA_BROKERS=f"127.0.0.1:{port}", CONNECT_TIMEOUT_S="2")
    assert last == f"roundtrip-worker: KAFKA_BROKERS: no broker answered at 127.0.0.1:{port} within 2 s"


def test_worker_refuses_unknown_kafka_property():
    last = run_worker_expecting_failure(KAFKA_CONF_NO_SUCH_THING="1")
    assert last.startswith("roundtrip-worker: KAFKA_CONF_NO_SUCH_THING: No such configuration property")


def test_worker_refuses_a_taken_http_port(worker):
    w = worker()
    env = base_env(HTTP_PORT=str(w.port))
    r = subprocess.run([ROUNDTRIP, "worker"], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert lines(r.stderr)[-1] == f"roundtrip-worker: HTTP_PORT: cannot listen on {w.port}"
