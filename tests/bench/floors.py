"""The floors each stage is held against, measured on the same machine, in
the same run, on the same data: `psql \\copy` of the rows a worker wrote,
`redis-cli --pipe` of the commands graph-builder sends, the Kafka round trip
through kcat, and wrk against the orchestrator's read endpoints."""
import os
import re
import select
import statistics
import subprocess
import time

from probes import Redis


# ---- PostgreSQL: \copy of the same rows into an empty clone -------------

def copy_floor(database_url, version, tables, workdir):
    """Exports the rows of dataset `version` of each (table, condition) with
    COPY TO, then loads them with \\copy FROM, in one transaction, into empty
    clones (LIKE ... INCLUDING ALL: same columns, primary key, indexes and
    CHECKs; no foreign key). Returns {"copy_ms": sum of the \\copy times,
    "commit_ms": the COMMIT, "rows": rows loaded, "per_table": {...}} from
    psql's \\timing, so psql's start-up and connection are not counted."""
    script = ["\\timing on", "BEGIN;"]
    setup, teardown = [], []
    for table, cond in tables:
        path = os.path.join(workdir, "%s.copy" % table)
        where = "dataset_version = %d%s" % (version, " AND " + cond if cond else "")
        subprocess.run(["psql", database_url, "-qX", "-v", "ON_ERROR_STOP=1", "-c",
                        "\\copy (SELECT * FROM %s WHERE %s) TO '%s'" % (table, where, path)],
                       check=True, capture_output=True)
        clone = "bench_floor_" + table
        setup.append("DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE %s INCLUDING ALL);"
                      % (clone, clone, table))
        teardown.append("DROP TABLE IF EXISTS %s;" % clone)
        script.append("\\copy %s FROM '%s'" % (clone, path))
    script.append("COMMIT;")
    _psql(database_url, "\n".join(setup))
    out = _psql(database_url, "\n".join(script) + "\n")
    _psql(database_url, "\n".join(teardown))
    for table, _ in tables:
        os.remove(os.path.join(workdir, "%s.copy" % table))
    times = [float(x) for x in re.findall(r"^Time: ([0-9.]+) ms", out, re.M)]
    rows = [int(x) for x in re.findall(r"^COPY (\d+)", out, re.M)]
    # times: BEGIN, one per \copy, COMMIT
    per = {t[0]: {"ms": ms, "rows": n} for t, ms, n in zip(tables, times[1:-1], rows)}
    return {"copy_ms": sum(times[1:-1]), "commit_ms": times[-1], "rows": sum(rows),
            "per_table": per}


def _psql(database_url, text):
    return subprocess.run(["psql", database_url, "-X", "-v", "ON_ERROR_STOP=1"], input=text,
                          check=True, capture_output=True, text=True).stdout


# ---- Redis: redis-cli --pipe of the same commands ------------------------

def redis_pipe_floor(redis_url, version, workdir):
    """Reads every key of graph `version`, writes the commands graph-builder
    sends for it (SET node, SET neighbors per stop, SADD of the stop ids in
    batches of 500) under a fresh version name of the same length, and times
    `redis-cli --pipe` sending them. The keys are removed afterwards."""
    r = Redis(redis_url)
    try:
        ids = sorted(r.call("SMEMBERS", "graph:%s:nodes" % version))
        fresh = "graph-b" + version[len("graph-v"):]
        path = os.path.join(workdir, "graph.resp")
        commands = 0
        with open(path, "wb") as f:
            for i in range(0, len(ids), 1000):
                batch = ids[i:i + 1000]
                keys = []
                for sid in batch:
                    s = sid.decode()
                    keys += ["graph:%s:node:%s" % (version, s), "graph:%s:neighbors:%s" % (version, s)]
                values = r.call("MGET", *keys)
                for key, val in zip(keys, values):
                    f.write(Redis.encode("SET", key.replace(version, fresh, 1), val or b""))
                    commands += 1
            for i in range(0, len(ids), 500):
                f.write(Redis.encode("SADD", "graph:%s:nodes" % fresh, *ids[i:i + 500]))
                commands += 1
        size = os.path.getsize(path)
        mem0 = r.used_memory()
        host, port, db = _redis_parts(redis_url)
        with open(path, "rb") as f:
            t0 = time.perf_counter()
            out = subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", db, "--pipe"],
                                 stdin=f, capture_output=True, text=True, check=True).stdout
            secs = time.perf_counter() - t0
        mem1 = r.used_memory()
        m = re.search(r"errors: (\d+), replies: (\d+)", out)
        if not m or m.group(1) != "0" or int(m.group(2)) != commands:
            raise RuntimeError("redis-cli --pipe: unexpected result: %s" % out.strip())
        keys = r.scan_keys("graph:%s:*" % fresh)
        for i in range(0, len(keys), 1000):
            r.call("UNLINK", *keys[i:i + 1000])
        os.remove(path)
        return {"ms": secs * 1000.0, "commands": commands, "bytes": size,
                "used_memory_delta": mem1 - mem0}
    finally:
        r.close()


def _redis_parts(url):
    hostport, _, db = url.split("//", 1)[1].partition("/")
    host, _, port = hostport.rpartition(":")
    return host, port, db or "0"


# ---- Kafka: one message produced with kcat until a consumer sees it ------

def kafka_round_trip(brokers, topic, samples=30):
    """Median, min and max milliseconds from a message's produce call (its
    CreateTime, set by librdkafka in kcat -P with the services' producer
    settings: acks=all, idempotence, linger.ms=5) to a kcat consumer at the
    end of the topic printing it. kcat -P sends stdin only at its end, so
    each message is its own kcat; its start-up is not counted."""
    cons = subprocess.Popen(["kcat", "-C", "-b", brokers, "-t", topic, "-o", "end", "-u", "-q",
                             "-f", "%T %s\n"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = _Lines(cons.stdout)

    def produce(text):
        subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-X", "linger.ms=5",
                        "-X", "acks=all", "-X", "enable.idempotence=true"],
                       input=text.encode(), check=True, capture_output=True, timeout=30)

    def seen(text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = lines.within(max(0.0, deadline - time.time()))
            if line is None:
                return None
            created, _, body = line.partition(" ")
            if body == text:
                return time.time() * 1000.0 - float(created)
        return None

    try:
        # warm up until the consumer is assigned and sees what is produced
        deadline = time.time() + 60
        while time.time() < deadline:
            produce("warm")
            if seen("warm", 2.0) is not None:
                break
        else:
            raise RuntimeError("kcat round trip: the consumer saw nothing on %s" % topic)
        lines.drain()
        times = []
        for i in range(samples):
            produce("rt-%d" % i)
            ms = seen("rt-%d" % i, 10.0)
            if ms is None:
                raise RuntimeError("kcat round trip: message %d never arrived" % i)
            times.append(ms)
        return {"median_ms": statistics.median(times), "min_ms": min(times),
                "max_ms": max(times), "samples": samples}
    finally:
        cons.kill()
        cons.wait(10)


class _Lines:
    """Lines of a pipe read with select() and os.read(), so that no line
    waits unseen in a Python buffer while select() says nothing is ready."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""

    def within(self, timeout):
        deadline = time.perf_counter() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.perf_counter()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.decode()

    def drain(self):
        while self.within(0.2) is not None:
            pass


# ---- HTTP: wrk against the orchestrator's read endpoints -----------------

UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url, connections=100, seconds=5, threads=2):
    """p50/p99 latency (ms), requests/s and non-2xx count from wrk --latency."""
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds,
                          "--latency", url], capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    lat = {p: float(v) * UNIT[u] for p, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)}
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"url": url, "p50_ms": lat.get("50"), "p99_ms": lat.get("99"),
            "rps": float(rps.group(1)) if rps else None,
            "requests": int(total.group(1)) if total else None,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1).strip() if errors else "",
            "connections": connections, "seconds": seconds, "threads": threads}
