"""What the benchmark reads from the running system: Redis through a small
RESP client (polled every millisecond, so no redis-cli process per poll), the
pipeline's events through kcat, the services' phase times from their JSON log
lines, peak memory from /proc, row counts through psql."""
import datetime as dt
import json
import re
import socket
import subprocess


class Redis:
    """A blocking RESP2 client, enough for GET/INFO/SCAN/MGET pipelines."""

    def __init__(self, url):
        rest = url.split("//", 1)[1]
        hostport, _, db = rest.partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        if db:
            self.call("SELECT", db)

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def read(self):
        line = self.file.readline()
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError("redis: " + rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("redis: unexpected reply %r" % line)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.read()

    def pipeline(self, commands):
        """Sends all commands, then reads all replies, in order."""
        self.sock.sendall(b"".join(self.encode(*c) for c in commands))
        return [self.read() for _ in commands]

    def get_str(self, key):
        v = self.call("GET", key)
        return v.decode() if v is not None else None

    def info(self, section):
        text = self.call("INFO", section).decode()
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    def used_memory(self):
        return int(self.info("memory")["used_memory"])

    def scan_keys(self, pattern):
        keys, cursor = [], b"0"
        while True:
            cursor, batch = self.call("SCAN", cursor, "MATCH", pattern, "COUNT", 2000)
            keys += batch
            if cursor == b"0":
                return keys

    def close(self):
        self.sock.close()


def iso_ms(text):
    """Epoch milliseconds of an ISO 8601 UTC time such as 2026-12-01T08:00:00.123Z."""
    t = dt.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return t.replace(tzinfo=dt.timezone.utc).timestamp() * 1000.0


def topic_events(brokers, topic):
    """Every message of a topic as (kafka timestamp ms, envelope dict)."""
    out = subprocess.run(["kcat", "-C", "-b", brokers, "-t", topic, "-o", "beginning", "-e",
                          "-J", "-q"], capture_output=True, text=True, timeout=120).stdout
    events = []
    for line in out.splitlines():
        try:
            msg = json.loads(line)
            events.append((msg.get("ts"), json.loads(msg["payload"])))
        except (ValueError, TypeError, KeyError):
            continue
    return events


def vm_hwm_kb(pid):
    """Peak resident set size (VmHWM) of a live process, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def log_lines(path, run_id=None):
    """The JSON log lines of a service, as (epoch ms, message), for one run."""
    lines = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            try:
                j = json.loads(raw)
            except ValueError:
                continue
            if run_id and j.get("runId") != run_id:
                continue
            lines.append((iso_ms(j["time"]), j.get("message", "")))
    return lines


def _between(lines, start, end):
    t0 = next((t for t, m in lines if m.startswith(start)), None)
    t1 = next((t for t, m in lines if t0 is not None and t >= t0 and m.startswith(end)), None)
    return None if t0 is None or t1 is None else t1 - t0


def odata_phases(lines):
    """Phases of odata-sync-worker from its "Step N" log lines (ms); the
    fetch runs from "Step 1" to "Step 2"."""
    return {"fetch": _between(lines, "Step 1:", "Step 2:"),
            "hash": _between(lines, "Step 2:", "Data hash:"),
            "validate": _between(lines, "Step 3:", "Step 4:"),
            "db_write": _between(lines, "Step 4:", "Dataset version created"),
            "backup": _between(lines, "Step 5:", "Backed up")}


def virtual_phases(lines):
    """virtual-entities-generator logs its COPY times (without the commit)."""
    for _, m in lines:
        g = re.match(r"COPY took (\d+) ms for stops and routes, (\d+) ms for flights", m)
        if g:
            return {"db_write": float(g.group(1)) + float(g.group(2))}
    return {"db_write": None}


def graph_phases(lines):
    """graph-builder logs load/build and the Redis write and verify times."""
    out = {"load": None, "build_validate": None, "publish": None, "verify": None}
    for _, m in lines:
        g = re.search(r"load (\d+) ms, build and validate (\d+) ms", m)
        if g:
            out["load"], out["build_validate"] = float(g.group(1)), float(g.group(2))
        g = re.search(r"written in (\d+) ms, verified in (\d+) ms", m)
        if g:
            out["publish"], out["verify"] = float(g.group(1)), float(g.group(2))
    return out


def psql_scalar(database_url, sql):
    out = subprocess.run(["psql", database_url, "-v", "ON_ERROR_STOP=1", "-AtXc", sql],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out.splitlines()[0] if out else None


def row_counts(database_url, version):
    """Rows of one dataset version, per table (real and virtual)."""
    q = {"stops": "stops", "routes": "routes", "flights": "flights WHERE NOT is_virtual",
         "virtual_stops": "virtual_stops", "virtual_routes": "virtual_routes",
         "virtual_flights": "flights WHERE is_virtual"}
    counts = {}
    for name, frm in q.items():
        cond = " AND " if " WHERE " in frm else " WHERE "
        counts[name] = int(psql_scalar(database_url, "SELECT count(*) FROM %s%sdataset_version = %d"
                                       % (frm, cond, version)))
    return counts
