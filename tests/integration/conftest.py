"""Shared fixtures for integration tests against the real local stack.

Each test gets an isolated slice of the stack: its own PostgreSQL database
(migrated), its own topic prefix (topics created), and a flushed Redis
database. Services are the real binaries from TG_BUILD_DIR, started as
subprocesses and stopped with SIGTERM (a non-zero exit fails the test).
Kafka is driven with kcat, PostgreSQL with psql, Redis with redis-cli and S3
with curl, exactly as an operator would.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

SOURCE_DIR = os.environ.get(
    "TG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD_DIR = os.environ.get("TG_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
# Redis database of a test: TG_REDIS_TEST_DB, or one of 1..14 picked per
# test so that tests run side by side rarely share one.
REDIS_TEST_DB = os.environ.get("TG_REDIS_TEST_DB")
SCHEMAS_DIR = os.path.join(SOURCE_DIR, "proto", "schemas")
# The topics whose messages are events of their own (retry topics carry a
# failed input unchanged, the dead-letter topic raw rejected bytes).
EVENT_TOPICS = ("pipeline.trigger", "pipeline.odata-sync.completed",
                "pipeline.virtual-entities.completed", "pipeline.graph.completed",
                "pipeline.step.failed")


def stack_env():
    out = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "stack.sh"), "env"],
                         check=True, capture_output=True, text=True).stdout
    env = {}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip("'\"")
    return env


STACK = stack_env()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name):
    path = os.path.join(BUILD_DIR, "services", name, name)
    assert os.path.exists(path), f"{path} is not built"
    return path


def psql(database_url, sql, *args):
    """Runs sql and returns rows as lists of strings (psql -At)."""
    cmd = ["psql", database_url, "-v", "ON_ERROR_STOP=1", "-AtX", "-F", "\t", "-c", sql]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def scalar(database_url, sql):
    rows = psql(database_url, sql)
    return rows[0][0] if rows else None


class Stack:
    """One test's isolated view of the stack."""

    def __init__(self, topic_config=None, partitions=1):
        tag = uuid.uuid4().hex[:8]
        self.tag = tag
        self.db_name = f"t_{tag}"
        admin_url = STACK["DATABASE_URL"]
        psql(admin_url, f"CREATE DATABASE {self.db_name}")
        base, _, _ = admin_url.rpartition("/")
        self.database_url = f"{base}/{self.db_name}"
        self.topic_prefix = f"t{tag}."
        redis_base = STACK["REDIS_URL"].rsplit("/", 1)[0]
        self.redis_db = int(REDIS_TEST_DB) if REDIS_TEST_DB else random.randint(1, 14)
        self.redis_url = f"{redis_base}/{self.redis_db}"
        self.env = dict(os.environ)
        self.env.update(STACK)
        self.env.update({
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "TOPIC_PREFIX": self.topic_prefix,
            "TOPIC_PARTITIONS": str(partitions),
            "LOG_LEVEL": "debug",
            "CONNECT_TIMEOUT_S": "5",
        })
        self.redis_cli("FLUSHDB")
        self.admin("migrate")
        self.admin("create-topics", env={"TOPIC_CONFIG": topic_config} if topic_config else None)
        self.services = []
        self.static_members = False
        self.test_messages = set()  # what the test itself produced: not checked

    def admin(self, *args, env=None):
        """Runs pipeline-admin; a busy broker gets two more tries."""
        e = dict(self.env, **(env or {}))
        for attempt in range(3):
            out = subprocess.run([binary("pipeline-admin"), *args], env=e,
                                 capture_output=True, text=True)
            if out.returncode == 0:
                return
            time.sleep(1 + attempt)
        raise AssertionError(f"pipeline-admin {' '.join(args)} failed: {out.stderr[-2000:]}")

    def topic(self, base):
        return self.topic_prefix + base

    # PostgreSQL
    def sql(self, query):
        return psql(self.database_url, query)

    def scalar(self, query):
        return scalar(self.database_url, query)

    def count(self, table, where="true"):
        return int(self.scalar(f"SELECT count(*) FROM {table} WHERE {where}"))

    # Redis
    def redis_cli(self, *args):
        host, port = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")
        out = subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", str(self.redis_db), *args],
                             check=True, capture_output=True, text=True).stdout
        return out.rstrip("\n")

    # Kafka, through kcat
    def produce(self, base_topic, value, key="default", headers=None, partition=None):
        cmd = ["kcat", "-P", "-b", STACK["KAFKA_BROKERS"], "-t", self.topic(base_topic),
               "-k", key]
        if partition is not None:
            cmd += ["-p", str(partition)]
        for name, val in (headers or {}).items():
            cmd += ["-H", f"{name}={val}"]
        data = value if isinstance(value, (bytes, str)) else json.dumps(value)
        self.test_messages.add(data.decode("utf-8", "replace") if isinstance(data, bytes) else data)
        subprocess.run(cmd, input=data if isinstance(data, bytes) else data.encode(),
                       check=True, capture_output=True, timeout=30)

    def consume(self, base_topic, count=1, timeout=30.0):
        """Reads a topic from the beginning until count messages arrived."""
        deadline = time.time() + timeout
        msgs = []
        while time.time() < deadline:
            out = subprocess.run(
                ["kcat", "-C", "-b", STACK["KAFKA_BROKERS"], "-t", self.topic(base_topic),
                 "-o", "beginning", "-e", "-J", "-q"],
                capture_output=True, text=True, timeout=60).stdout
            msgs = [json.loads(line) for line in out.splitlines() if line.strip()]
            if len(msgs) >= count:
                break
            time.sleep(0.3)
        for m in msgs:
            m["json"] = None
            try:
                m["json"] = json.loads(m["payload"]) if m.get("payload") else None
            except ValueError:
                pass
            hdrs = m.get("headers") or []
            m["hdrs"] = dict(zip(hdrs[0::2], hdrs[1::2]))
        return msgs

    # Services
    def start(self, name, env=None, port=None, wait_ready=True):
        # POD_NAME is the consumer's static group membership (a test that
        # wants it sets static_members): a service started again is the same
        # member (as a restarted pod), two running side by side are two.
        running = sum(1 for s in self.services if s.name == name and s.proc.poll() is None)
        env = dict(env or {})
        if self.static_members:
            env = dict({"POD_NAME": f"{name}-{running}"}, **env)
        svc = Service(name, dict(self.env, **env), port or free_port())
        self.services.append(svc)
        if wait_ready:
            svc.wait_ready()
        return svc

    def produced_events(self):
        """Every message a service produced on the event topics (services
        mark theirs with x-worker; the test's own messages are left out)."""
        procs = [subprocess.Popen(
            ["kcat", "-C", "-b", STACK["KAFKA_BROKERS"], "-t", self.topic(base), "-o",
             "beginning", "-e", "-J", "-q"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            for base in EVENT_TOPICS]
        events = []
        for base, proc in zip(EVENT_TOPICS, procs):
            out, _ = proc.communicate(timeout=60)
            # A test's hostile bytes are not UTF-8; kcat passes them through.
            for line in out.decode("utf-8", "surrogateescape").splitlines():
                m = json.loads(line) if line.strip() else {}
                hdrs = m.get("headers") or []
                if "x-worker" in hdrs[0::2] and m.get("payload") not in self.test_messages:
                    events.append((base, dict(zip(hdrs[0::2], hdrs[1::2]))["x-worker"],
                                   m.get("payload")))
        return events

    def schema_errors(self):
        """Each produced event checked against proto/schemas by its "schema"
        field, with a JSON Schema (2020-12) validator: the problems found."""
        import jsonschema
        validators, errors = {}, []
        for base, producer, payload in self.produced_events():
            try:
                event = json.loads(payload)
                name = event["schema"]
            except (TypeError, ValueError, KeyError):
                errors.append(f"{producer} on {base}: not an event: {str(payload)[:200]}")
                continue
            if name not in validators:
                path = os.path.join(SCHEMAS_DIR, f"{name}.schema.json")
                if not os.path.exists(path):
                    errors.append(f"{producer} on {base}: no schema {name}")
                    continue
                with open(path) as f:
                    schema = json.load(f)
                cls = jsonschema.Draft202012Validator
                validators[name] = cls(schema, format_checker=cls.FORMAT_CHECKER)
            for e in validators[name].iter_errors(event):
                where = "/".join(str(x) for x in e.absolute_path)
                status = (event.get("payload") or {}).get("status")
                errors.append(f"{producer} on {base} ({name}, status {status}) at /{where}: "
                              f"{e.message}")
        return errors

    def close(self):
        errors = []
        for svc in self.services:
            code = svc.stop()
            if code not in (0, None) and not svc.expect_nonzero:
                errors.append(f"{svc.name} exited {code}; log: {svc.log_path}")
        if self.services:
            try:
                errors += self.schema_errors()[:10]
            except (OSError, subprocess.SubprocessError) as e:
                errors.append(f"produced events could not be read: {e}")
        self.redis_cli("FLUSHDB")
        subprocess.run([binary("pipeline-admin"), "delete-topics"], env=self.env,
                       capture_output=True)
        subprocess.run(["psql", STACK["DATABASE_URL"], "-qc",
                        f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)"],
                       capture_output=True)
        assert not errors, "; ".join(errors)


class Service:
    def __init__(self, name, env, port):
        self.name = name
        self.port = port
        self.expect_nonzero = False
        env = dict(env, HTTP_PORT=str(port))
        logdir = os.path.join(BUILD_DIR, "test-logs")
        os.makedirs(logdir, exist_ok=True)
        self.log_path = os.path.join(logdir, f"{name}-{port}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([binary(name)], env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.logs()}")
            try:
                with urllib.request.urlopen(self.url("/readyz"), timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready after {timeout}s: {self.logs()[-2000:]}")

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def log_lines(self):
        lines = []
        for line in self.logs().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pass
        return lines

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.expect_nonzero = True

    def stop(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return "hung"
        self.log.close()
        return self.proc.returncode


@pytest.fixture
def stack():
    s = Stack()
    try:
        yield s
    finally:
        s.close()


# A service whose clock runs ahead (libfaketime) stamps its records in the
# future; Kafka 4 refuses records more than message.timestamp.after.max.ms
# (1 h by default) ahead of the broker, so these topics accept any.
FUTURE_TIMESTAMPS = "message.timestamp.after.max.ms=9223372036854775807"


@pytest.fixture
def stack_clock_ahead():
    s = Stack(topic_config=FUTURE_TIMESTAMPS)
    try:
        yield s
    finally:
        s.close()


class ODataServer:
    def __init__(self, data_dir, *args):
        self.port = free_port()
        logdir = os.path.join(BUILD_DIR, "test-logs")
        os.makedirs(logdir, exist_ok=True)
        self.log = open(os.path.join(logdir, f"odata-{self.port}.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(SOURCE_DIR, "tests", "odata", "odata_server.py"),
             "--port", str(self.port), "--data", data_dir, *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=1)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        raise AssertionError("OData test server did not start")

    def url(self, path="/odata/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def control(self, **body):
        req = urllib.request.Request(self.url("/_control"), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"{}")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.fixture
def odata_server():
    servers = []

    def start(data_dir=os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata"), *args):
        srv = ODataServer(data_dir, *args)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


def envelope(schema, payload=None, run_id=None, source_id="default", dataset_version=None,
             attempt=1):
    env = {
        "schema": schema,
        "schemaVersion": 1,
        "eventId": str(uuid.uuid4()),
        "runId": run_id or str(uuid.uuid4()),
        "sourceId": source_id,
        "attempt": attempt,
        "producedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "correlationId": str(uuid.uuid4()),
        "payload": payload or {},
    }
    if dataset_version is not None:
        env["datasetVersion"] = dataset_version
    return env


def wait_for(predicate, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
