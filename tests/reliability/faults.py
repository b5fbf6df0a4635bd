"""Fault injection against the second, private stack (deploy/stack.sh with
STACK_DIR=<repo>/.stack-faults and STACK_PORT_OFFSET=1000), a Redis reader
that follows graph:version, the pipeline's invariants and the summary.

Servers are stopped the way deploy/stack.sh stops them (its pid files, its
pg_ctl) and started again with `stack.sh up`, which is idempotent: it only
starts what is down. Nothing here touches the team's main stack.
"""
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

SOURCE_DIR = os.environ.get(
    "TG_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
STACK_DIR = os.environ.setdefault("STACK_DIR", os.path.join(SOURCE_DIR, ".stack-faults"))
PORT_OFFSET = int(os.environ.setdefault("STACK_PORT_OFFSET", "1000"))
assert PORT_OFFSET != 0, "the fault suite must never restart the shared stack (offset 0)"
STACK_SH = os.path.join(SOURCE_DIR, "deploy", "stack.sh")
RUN = os.path.join(STACK_DIR, "run")
PG_BIN = "/usr/lib/postgresql/15/bin"
ROUNDS = int(os.environ.get("RELIABILITY_ROUNDS", "4"))
SESSION_START = time.time()

# What the suite did; printed at the end and written next to the build.
SUMMARY = {
    "faults_injected": 0,
    "kills_mid_step": 0,
    "kills_mid_load": 0,
    "runs_completed": 0,
    "records_lost": 0,
    "duplicates": 0,
    "partial_graphs_seen": 0,
    "reader_checks": 0,
    "bad_inputs_tried": 0,
    "bad_inputs_rejected": 0,
    "hostile_inputs_stored_verbatim": 0,
    "api_requests": 0,
    "api_5xx": 0,
}
_summary_lock = threading.Lock()


def count(key, n=1):
    with _summary_lock:
        SUMMARY[key] += n


def stack_cmd(*args, timeout=600):
    env = dict(os.environ)
    env.setdefault("BUILD_DIR", os.environ.get("TG_BUILD_DIR", os.path.join(SOURCE_DIR, "build")))
    out = subprocess.run(["bash", STACK_SH, *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0 or args[0] == "status", \
        f"stack.sh {' '.join(args)} failed: {out.stderr[-3000:]}"
    return out


def _pid(path):
    try:
        with open(path) as f:
            pid = int(f.readline().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def _wait_gone(pid, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return
        with open(f"/proc/{pid}/status") as f:
            if "\nState:\tZ" in f.read():
                return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


class FaultStack:
    """Stops and starts the servers of the private stack."""

    PIDFILES = {"redis": "redis.pid", "kafka": "kafka.pid", "s3": "s3.pid"}

    def up(self):
        stack_cmd("up")

    def stop(self, server, sig=signal.SIGTERM):
        """Stops one server (SIGKILL with sig=signal.SIGKILL: a crash)."""
        count("faults_injected")
        if server == "postgres":
            # "immediate" is a crash as far as the data goes (no checkpoint,
            # recovery at the next start) without orphaned backends, which a
            # SIGKILLed postmaster leaves behind and which block a restart.
            mode = "immediate" if sig == signal.SIGKILL else "fast"
            cmd = [f"{PG_BIN}/pg_ctl", "-D", os.path.join(STACK_DIR, "pg"), "-m", mode, "-w",
                   "stop"]
            if os.geteuid() == 0:
                cmd = ["runuser", "-u", "postgres", "--"] + cmd
            subprocess.run(cmd, capture_output=True, timeout=90)
            return
        pid = _pid(os.path.join(RUN, self.PIDFILES[server]))
        if pid:
            os.kill(pid, sig)
            _wait_gone(pid)

    def start(self):
        """Starts whatever is down again (stack.sh up is idempotent)."""
        self.up()


# ---- a minimal Redis client (RESP2): no third-party package needed ----------

class Redis:
    def __init__(self, url, db):
        hostport = url.split("//", 1)[1].split("/")[0]
        self.host, port = hostport.split(":")
        self.port, self.db = int(port), db
        self.sock = None

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=5)
        self.buf = b""
        self.call("SELECT", str(self.db))

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad RESP reply {line!r}")

    def _send(self, commands):
        out = bytearray()
        for args in commands:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a.encode() if isinstance(a, str) else a
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(bytes(out))

    def call(self, *args):
        self._send([args])
        return self._reply()

    def pipeline(self, commands):
        self._send(commands)
        return [self._reply() for _ in commands]


class GraphReader(threading.Thread):
    """Follows graph:version like the API would: reads the active version,
    then that version's node set, and for a sample of its stops the node and
    neighbours keys. A missing key while graph:version still names that
    version is a partial graph; a version named by graph:version whose node
    set does not exist is a version that does not exist."""

    def __init__(self, redis_url, db, sample=50):
        super().__init__(daemon=True)
        self.redis = Redis(redis_url, db)
        self.sample = sample
        self.halt = threading.Event()
        self.partial = []      # (version, what) evidence
        self.versions = set()
        self.checks = 0
        self.errors = 0        # connection errors (Redis stopped on purpose)

    def run(self):
        while not self.halt.is_set():
            try:
                if not self.redis.sock:
                    self.redis.connect()
                self.check_once()
            except (OSError, ConnectionError, RuntimeError):
                self.errors += 1
                self.redis.close()
                time.sleep(0.2)
            time.sleep(0.02)
        self.redis.close()

    def check_once(self):
        version = self.redis.call("GET", "graph:version")
        if not version:
            return
        self.versions.add(version)
        members = self.redis.call("SRANDMEMBER", f"graph:{version}:nodes", str(self.sample))
        problems = []
        if not members:
            problems.append("nodes set missing or empty")
        else:
            cmds = [("EXISTS", f"graph:{version}:node:{m}") for m in members]
            cmds += [("GET", f"graph:{version}:neighbors:{m}") for m in members]
            replies = self.redis.pipeline(cmds)
            n = len(members)
            for m, ok in zip(members, replies[:n]):
                if not ok:
                    problems.append(f"node {m} missing")
            for m, raw in zip(members, replies[n:]):
                if raw is None:
                    problems.append(f"neighbors of {m} missing")
                    continue
                try:
                    for edge in json.loads(raw):
                        to = edge.get("toStopId")
                        if not self.redis.call("SISMEMBER", f"graph:{version}:nodes", to):
                            problems.append(f"edge {m}->{to} to a node not in the version")
                except ValueError:
                    problems.append(f"neighbors of {m} not JSON")
        self.checks += 1
        count("reader_checks")
        # Only a problem while the version is still the active one counts: a
        # reader that lost a race against two newer activations is not one.
        if problems and self.redis.call("GET", "graph:version") == version:
            self.partial.append((version, problems[:5]))
            count("partial_graphs_seen")

    def stop(self):
        self.halt.set()
        self.join(10)


# ---- invariants ---------------------------------------------------------------

SNAPSHOT_TABLES = ("stops", "routes", "flights", "virtual_stops", "virtual_routes")


def duplicates(stack, forced=0):
    """Rows that exist twice within one dataset version, over every table,
    plus dataset versions that repeat a hash beyond the `forced` runs the
    test made (the pipeline itself never forces)."""
    dup = 0
    for table in SNAPSHOT_TABLES:
        dup += int(stack.scalar(
            f"SELECT coalesce(sum(n - d), 0) FROM (SELECT dataset_version, count(*) n, "
            f"count(DISTINCT id) d FROM {table} GROUP BY dataset_version) x"))
    dup += int(stack.scalar("SELECT count(*) - count(DISTINCT data_hash) FROM datasets")) - forced
    return dup


def version_counts(stack, version):
    out = {}
    for table in SNAPSHOT_TABLES:
        out[table] = stack.count(table, f"dataset_version = {version}")
    return out


def active_graphs(stack):
    return stack.sql("SELECT version, dataset_version FROM graphs WHERE status = 'active'")


def jitter(low, high):
    return random.uniform(low, high)


def consume_raw(stack, base_topic):
    """Every message of a topic, tolerating payloads that are not UTF-8
    (the integration fixture decodes strictly). Headers as a dict."""
    out = subprocess.run(
        ["kcat", "-C", "-b", stack.env["KAFKA_BROKERS"], "-t", stack.topic(base_topic),
         "-o", "beginning", "-e", "-J", "-q"], capture_output=True, timeout=60).stdout
    msgs = []
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        if line.strip():
            m = json.loads(line)
            hdrs = m.get("headers") or []
            m["hdrs"] = dict(zip(hdrs[0::2], hdrs[1::2]))
            msgs.append(m)
    return msgs


def call(svc, method, path, body=None, headers=None, raw=None, timeout=60):
    """(status, parsed JSON or None, headers) of one request to a service."""
    import urllib.error
    import urllib.request
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(svc.url(path), data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            payload, status, hdrs = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        payload, status, hdrs = e.read(), e.code, e.headers
    try:
        return status, json.loads(payload), hdrs
    except ValueError:
        return status, None, hdrs


WORKERS = ("odata-sync-worker", "virtual-entities-generator", "graph-builder")
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


class Pipeline:
    """The four real services on one test's slice of the private stack;
    a killed service is started again with the same settings."""

    def __init__(self, stack, srv, **orchestrator_env):
        self.stack = stack
        fast_rebalance = {"KAFKA_CONF_SESSION_TIMEOUT_MS": "6000"}
        self.env = {
            "odata-sync-worker": dict(fast_rebalance, ODATA_URL=srv.url(),
                                      ODATA_MAX_RETRY_WAIT_S="2"),
            "virtual-entities-generator": dict(fast_rebalance),
            "graph-builder": dict(fast_rebalance),
            "orchestrator": dict(fast_rebalance, RETRY_DELAYS_S="1,2", SCHEDULE_INTERVAL_S="0",
                                 TIMEOUT_SWEEP_S="1", WORKER_TIMEOUT_S_1="90",
                                 WORKER_TIMEOUT_S_2="90", WORKER_TIMEOUT_S_3="90"),
        }
        self.env["orchestrator"].update(orchestrator_env)
        self.svc = {}
        for name in WORKERS + ("orchestrator",):
            self.svc[name] = stack.start(name, self.env[name])

    def restart(self, name):
        self.svc[name] = self.stack.start(name, self.env[name])
        return self.svc[name]

    def kill(self, name):
        count("faults_injected")
        self.svc[name].kill()

    def execute(self, **query):
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        status, body, _ = call(self.svc["orchestrator"], "POST",
                               "/api/v1/workers/execute" + (f"?{qs}" if qs else ""),
                               headers={"Prefer": "respond-async"})
        assert status in (200, 202), (status, body)
        return body["runId"]

    def run(self, run_id):
        rows = self.stack.sql(f"SELECT status, dataset_version, graph_version, message FROM runs "
                              f"WHERE run_id = '{run_id}'")
        return rows[0] if rows else None

    def wait_run(self, run_id, timeout=180):
        deadline = time.time() + timeout
        while time.time() < deadline:
            row = self.run(run_id)
            if row and row[0] in TERMINAL:
                return row
            time.sleep(0.3)
        steps = self.stack.sql(f"SELECT worker_id, status, attempts, error FROM run_steps "
                               f"WHERE run_id = '{run_id}'")
        raise AssertionError(f"run {run_id} did not end in {timeout}s: {self.run(run_id)} {steps}")

    def wait_started(self, name, run_id, timeout=60):
        """Waits for the worker's "Worker started" line of this run."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.svc[name].log_lines():
                if line.get("runId") == run_id and "Worker started" in line.get("message", ""):
                    return True
            row = self.run(run_id)
            if row and row[0] in TERMINAL:
                return False
            time.sleep(0.02)
        return False

    def step_ms(self, name, run_id):
        """How long the worker's step of run_id took, from its log."""
        start = end = None
        for line in self.svc[name].log_lines():
            if line.get("runId") != run_id:
                continue
            if "Worker started" in line.get("message", ""):
                start = line["time"]
            if "Worker finished" in line.get("message", "") or "Worker failed" in line.get("message", ""):
                end = line["time"]
        if not (start and end):
            return 500
        to_ms = lambda t: int(t[11:13]) * 3600000 + int(t[14:16]) * 60000 + float(t[17:23]) * 1000
        return max(50, to_ms(end) - to_ms(start))
