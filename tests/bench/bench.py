#!/usr/bin/env python3
"""The pipeline benchmark (issues 8 and 16): for each scale, one generated
dataset whose OData pages are rendered once and served by tests/bench/
odata_pages.c (or, with --source python, by tests/odata/odata_server.py),
the four real services on an isolated slice of the stack (database, topic
prefix, Redis db), the whole pipeline run --repeat times through the
orchestrator's REST API with force=true, and the floors measured right after
on the same data. Run it through run.sh, which builds Release into
build-bench/ and brings the stack up first:

    bash tests/bench/run.sh [--scales 1,2,4,8,16] [--repeat 3]

Results: a table on stdout, build-bench/bench-results.json, and (unless
--no-docs, and by default only for at least two scales and two repeats)
docs/benchmarks.md between its generated markers and docs/benchmarks-scale.png.
"""
import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
os.environ.setdefault("TG_BUILD_DIR", os.path.join(SOURCE, "build-bench"))
sys.path.insert(0, os.path.join(SOURCE, "tests", "integration"))

import conftest  # noqa: E402  (the integration tests' isolated stack slices)
import floors  # noqa: E402
import odata_pages  # noqa: E402
import probes  # noqa: E402
import report  # noqa: E402

SERVICES = ("odata-sync-worker", "virtual-entities-generator", "graph-builder", "orchestrator")
TOPICS = {"trigger": "pipeline.trigger", "odata": "pipeline.odata-sync.completed",
          "virtual": "pipeline.virtual-entities.completed", "graph": "pipeline.graph.completed"}
REDIS_DB_BASE = 10          # scale i uses Redis db 10 + i: the tests use db 1
RUN_TIMEOUT_S = 900
API_TUNED = {"HTTP_THREADS": "128", "HTTP_KEEP_ALIVE": "yes"}


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ---- data ---------------------------------------------------------------

def dataset(scale, seed, root):
    """Generates the dataset of a scale once; kept while the generator and
    its arguments are the same (a stamp of both sits beside the data)."""
    gen = os.path.join(SOURCE, "tests", "odata", "gen_dataset.py")
    with open(gen, "rb") as f:
        stamp = hashlib.sha256(f.read() + b"|%r|%d" % (scale, seed)).hexdigest()
    out = os.path.join(root, "scale-%s" % scale)
    stamp_path = os.path.join(out, "stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        log("dataset scale %s: reusing %s" % (scale, out))
    else:
        log("dataset scale %s: generating into %s" % (scale, out))
        t0 = time.time()
        subprocess.run([sys.executable, gen, "--scale", str(scale), "--out", out, "--seed",
                        str(seed)], check=True, stdout=subprocess.DEVNULL)
        with open(stamp_path, "w") as f:
            f.write(stamp)
        log("dataset scale %s: generated in %.1f s" % (scale, time.time() - t0))
    with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
        return out, json.load(f), stamp


def pages(scale, data_dir, data_stamp):
    """Renders the OData pages of a dataset once (kept while the dataset, the
    renderer, the Python server it copies and the worker's mapping are the
    same). The first time at scale <= 1, every page is compared byte for
    byte with the Python server's answer: the worker must see the same data
    (and compute the same data hash) from either source."""
    out = os.path.join(data_dir, "pages")
    digest = hashlib.sha256(data_stamp.encode())
    for path in (odata_pages.__file__, odata_pages.odata_server.__file__, odata_pages.MAPPING):
        with open(path, "rb") as f:
            digest.update(f.read())
    stamp = digest.hexdigest()
    stamp_path = os.path.join(data_dir, "pages.stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        log("pages scale %s: reusing %s" % (scale, out))
        return out, None
    t0 = time.time()
    subprocess.run([sys.executable, odata_pages.__file__, "render", "--data", data_dir,
                    "--out", out], check=True, stdout=subprocess.DEVNULL)
    log("pages scale %s: rendered in %.1f s" % (scale, time.time() - t0))
    check = None
    if scale <= 1:
        py, fast = ODataServer(data_dir, "python", out), ODataServer(data_dir, "pages", out)
        try:
            check = odata_pages.compare(py.url(), fast.url(), out)
        finally:
            py.stop()
            fast.stop()
        if check["different"]:
            raise RuntimeError("pages scale %s: %d of %d pages differ from odata_server.py's "
                               "answers, first %s" % (scale, len(check["different"]),
                                                      check["pages"], check["different"][0]))
        log("pages scale %s: all %d pages are odata_server.py's answers byte for byte"
            % (scale, check["pages"]))
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return out, check


class ODataServer(conftest.ODataServer):
    """The OData source of a scale: the pre-rendered pages on odata_pages.c
    (source "pages") or the integration tests' Python server ("python"),
    with time to load a large dataset before /healthz."""

    def __init__(self, data_dir, source, pages_dir):
        self.port = conftest.free_port()
        logdir = os.path.join(conftest.BUILD_DIR, "bench-logs")
        os.makedirs(logdir, exist_ok=True)
        self.log = open(os.path.join(logdir, "odata-%d.log" % self.port), "wb")
        if source == "pages":
            cmd = [os.path.join(conftest.BUILD_DIR, "tests", "odata_pages"), "--pages", pages_dir,
                   "--port", str(self.port)]
        else:
            cmd = [sys.executable, os.path.join(SOURCE, "tests", "odata", "odata_server.py"),
                   "--port", str(self.port), "--data", data_dir, "--quiet"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("OData server exited %s" % self.proc.returncode)
            try:
                urllib.request.urlopen(self.url("/healthz"), timeout=1)
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError("OData server did not start")


# ---- the REST API -------------------------------------------------------

def http(svc, method, path, timeout=30):
    # A POST starts a run without waiting for it (timed here, not there).
    req = urllib.request.Request(svc.url(path), data=b"" if method == "POST" else None,
                                 method=method,
                                 headers={"Prefer": "respond-async"} if method == "POST" else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def run_status(orch, run_id):
    status, body = http(orch, "GET", "/api/v1/runs/%s" % run_id)
    if status != 200 or not isinstance(body, dict):
        return None
    return (body.get("run") or {}).get("status")


# ---- one pipeline run ---------------------------------------------------

def one_run(orch, redis):
    """Triggers a forced run and times it to the switch of graph:version
    (polled every millisecond) and to the run's end in the orchestrator."""
    before = redis.get_str("graph:version")
    mem0, keys0 = redis.used_memory(), redis.call("DBSIZE")
    t0 = time.time()
    status, body = http(orch, "POST", "/api/v1/workers/execute?force=true")
    if status != 202:
        raise RuntimeError("execute answered %s: %s" % (status, body))
    run_id = body["runId"]
    next_check = time.time() + 0.25
    while True:
        version = redis.get_str("graph:version")
        if version != before:
            t_switch = time.time()
            break
        if time.time() >= next_check:
            st = run_status(orch, run_id)
            if st in ("failed", "cancelled", "timed_out"):
                raise RuntimeError("run %s ended %s before a graph was switched" % (run_id, st))
            if time.time() - t0 > RUN_TIMEOUT_S:
                raise RuntimeError("run %s: no graph after %d s" % (run_id, RUN_TIMEOUT_S))
            next_check = time.time() + 0.25
        time.sleep(0.001)
    while True:
        st = run_status(orch, run_id)
        if st == "succeeded":
            t_done = time.time()
            break
        if st in ("failed", "cancelled", "timed_out") or time.time() - t0 > RUN_TIMEOUT_S:
            raise RuntimeError("run %s ended %s after the switch" % (run_id, st))
        time.sleep(0.02)
    mem1, keys1 = redis.used_memory(), redis.call("DBSIZE")
    return {"run_id": run_id, "t0_ms": t0 * 1000, "graph_version": version,
            "switch_ms": (t_switch - t0) * 1000, "done_ms": (t_done - t0) * 1000,
            "used_memory_delta": mem1 - mem0, "keys_delta": keys1 - keys0}


def attach_events(st, runs):
    """Adds each run's stage times and hand-offs from its events: a worker's
    completion is produced right after its step, so the step started at
    producedAt - executionTimeMs."""
    brokers = conftest.STACK["KAFKA_BROKERS"]
    by_topic = {k: {} for k in TOPICS}
    for k, topic in TOPICS.items():
        for ts, env in probes.topic_events(brokers, st.topic(topic)):
            by_topic[k].setdefault(env.get("runId"), env)
    for run in runs:
        ev = {k: by_topic[k].get(run["run_id"]) for k in TOPICS}
        if not all(ev.values()):
            raise RuntimeError("run %s: missing events %s"
                               % (run["run_id"], [k for k, v in ev.items() if not v]))
        end = {k: probes.iso_ms(ev[k]["producedAt"]) for k in ev}
        exe = {k: float(ev[k]["payload"]["executionTimeMs"]) for k in ("odata", "virtual", "graph")}
        start = {k: end[k] - exe[k] for k in exe}
        run["stage_ms"] = exe
        run["handoff_ms"] = {"trigger>odata": start["odata"] - end["trigger"],
                             "odata>virtual": start["virtual"] - end["odata"],
                             "virtual>graph": start["graph"] - end["virtual"]}
        run["api_to_trigger_ms"] = end["trigger"] - run["t0_ms"]
        run["graph_event_ms"] = end["graph"] - run["t0_ms"]
        gp = ev["graph"]["payload"]
        run["graph"] = {"nodes": gp.get("nodes"), "edges": gp.get("edges"),
                        "transfer_edges": gp.get("transferEdges"),
                        "redis_bytes": gp.get("redisBytes"), "version": gp.get("graphVersion")}
        run["dataset_version"] = ev["odata"].get("datasetVersion")
        run["data_hash"] = ev["odata"]["payload"].get("dataHash")


def attach_phases(services, runs):
    for run in runs:
        rid = run["run_id"]
        run["phases"] = {
            "odata": probes.odata_phases(probes.log_lines(services["odata-sync-worker"].log_path, rid)),
            "virtual": probes.virtual_phases(
                probes.log_lines(services["virtual-entities-generator"].log_path, rid)),
            "graph": probes.graph_phases(probes.log_lines(services["graph-builder"].log_path, rid))}


def version_memory(redis, version):
    """Keys of one graph version and the sum of MEMORY USAGE over them."""
    ids = redis.call("SMEMBERS", "graph:%s:nodes" % version)
    keys = ["graph:%s:nodes" % version]
    for sid in ids:
        s = sid.decode()
        keys += ["graph:%s:node:%s" % (version, s), "graph:%s:neighbors:%s" % (version, s)]
    total = 0
    for i in range(0, len(keys), 1000):
        total += sum(x or 0 for x in redis.pipeline(
            [("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys[i:i + 1000]]))
    return {"keys": len(keys), "memory_usage_bytes": total}


# ---- one scale ----------------------------------------------------------

def service_env(name, data_dir, odata_url, repeat):
    env = {"LOG_LEVEL": "info"}
    env.update({
        "odata-sync-worker": {"ODATA_URL": odata_url},
        "virtual-entities-generator": {"CITIES_FILE": os.path.join(data_dir, "cities.csv")},
        # keep every version of the scale, so used_memory grows by one graph a run
        "graph-builder": {"GRAPH_KEEP_VERSIONS": str(repeat + 2)},
        "orchestrator": {"SCHEDULE_INTERVAL_S": "0"},
    }[name])
    return env


def wait_assigned(services, timeout=60):
    """Ready is not yet consuming: a worker joins its consumer group after
    start-up, and a run triggered before the group has assigned the
    partition waits for it (up to a second, measured as a slow first
    hand-off). Every worker's first assignment is waited for, as a running
    system would have it."""
    deadline = time.time() + timeout
    for name in SERVICES[:3]:
        while not any("partition(s) assigned" in l.get("message", "")
                      for l in services[name].log_lines()):
            if time.time() > deadline:
                raise RuntimeError("%s: no partition assigned after %d s" % (name, timeout))
            time.sleep(0.05)


def run_scale(index, scale, repeat, data_dir, pages_dir, manifest, opts, shared):
    conftest.REDIS_TEST_DB = REDIS_DB_BASE + index
    srv = ODataServer(data_dir, opts.source, pages_dir)
    st = conftest.Stack()
    res = {"scale": scale, "manifest": manifest, "runs": [], "redis_db": conftest.REDIS_TEST_DB,
           "source": opts.source, "loadavg_before": os.getloadavg()}
    try:
        services = {name: st.start(name, service_env(name, data_dir, srv.url(), repeat),
                                   wait_ready=False) for name in SERVICES}
        for svc in services.values():
            svc.wait_ready(timeout=120)
        wait_assigned(services)
        redis = probes.Redis(st.redis_url)
        orch = services["orchestrator"]
        for i in range(repeat):
            run = one_run(orch, redis)
            res["runs"].append(run)
            log("scale %s run %d/%d: trigger -> graph:version switched %.0f ms (run ended %.0f ms)"
                % (scale, i + 1, repeat, run["switch_ms"], run["done_ms"]))
        attach_events(st, res["runs"])
        attach_phases(services, res["runs"])
        hashes = sorted({r["data_hash"] for r in res["runs"]})
        if len(hashes) != 1:
            raise RuntimeError("scale %s: the same data gave data hashes %s" % (scale, hashes))
        res["data_hash"] = hashes[0]
        res["data_hash_other"] = check_data_hash(data_dir, opts.source, hashes[0])
        log("scale %s: data hash %s (source %s)" % (scale, hashes[0], opts.source))
        res["peak_rss_kb"] = {n: probes.vm_hwm_kb(s.proc.pid) for n, s in services.items()}
        last = res["runs"][-1]
        res["rows"] = probes.row_counts(st.database_url, last["dataset_version"])
        res["graph_keys"] = version_memory(redis, last["graph_version"])
        res["loadavg_after"] = os.getloadavg()
        log("scale %s: floors" % scale)
        res["floors"] = measure_floors(st, last, opts, shared, orch, index)
        res["floors"]["fetch"] = fetch_floor(srv, pages_dir)
        redis.close()
    finally:
        try:
            st.close()
        except AssertionError as e:
            res["shutdown_error"] = str(e)
        srv.stop()
    return res


def check_data_hash(data_dir, source, data_hash):
    """Keeps the data hash each source gave for this dataset beside it and
    stops when the other source gave another one: both must hand the worker
    the same data. Returns the other source's hash, if known."""
    path = os.path.join(data_dir, "data-hash.json")
    with open(os.path.join(data_dir, "stamp")) as f:
        stamp = f.read()
    known = {}
    if os.path.exists(path):
        with open(path) as f:
            known = json.load(f)
        if known.get("stamp") != stamp:
            known = {}
    if known.get(source) not in (None, data_hash):
        log("note: data hash %s differs from %s, measured earlier from the same source on the "
            "same dataset (the worker's hash rule changed?)" % (data_hash, known[source]))
    other = {k: v for k, v in known.items() if k not in ("stamp", source)}
    for name, h in other.items():
        if h != data_hash:
            raise RuntimeError("data hash %s from source %s, but %s from source %s on the same "
                               "dataset: the sources differ, or the worker's hash rule changed "
                               "since (%s)" % (data_hash, source, h, name, path))
    known.update({"stamp": stamp, source: data_hash})
    with open(path, "w") as f:
        json.dump(known, f, indent=1)
    return next(iter(other.values()), None)


def measure_floors(st, last, opts, shared, orch, index):
    work = os.path.join(conftest.BUILD_DIR, "bench-work")
    os.makedirs(work, exist_ok=True)
    dv = int(last["dataset_version"])
    out = {
        "odata_copy": floors.copy_floor(st.database_url, dv, [
            ("stops", None), ("routes", None), ("flights", "NOT is_virtual")], work),
        "virtual_copy": floors.copy_floor(st.database_url, dv, [
            ("virtual_stops", None), ("virtual_routes", None), ("flights", "is_virtual")], work),
        "redis_pipe": floors.redis_pipe_floor(st.redis_url, last["graph_version"], work),
    }
    if "kafka" not in shared:
        st.admin("create-topics", env={"TOPIC_PREFIX": st.topic_prefix + "rt."})
        shared["kafka"] = floors.kafka_round_trip(
            conftest.STACK["KAFKA_BROKERS"], st.topic_prefix + "rt.pipeline.dead-letter",
            opts.rt_samples)
        log("kafka round trip: median %.1f ms" % shared["kafka"]["median_ms"])
    if index == 0 and opts.wrk_seconds > 0:
        out["wrk"] = api_floor(orch, last["run_id"], opts.wrk_seconds, "defaults")
        # the orchestrator's README: HTTP threads >= the concurrent clients
        tuned = st.start("orchestrator", dict(service_env("orchestrator", "", "", 0),
                                              **API_TUNED))
        out["wrk"] += api_floor(tuned, last["run_id"], opts.wrk_seconds,
                                " ".join("%s=%s" % kv for kv in API_TUNED.items()))
    return out


def fetch_floor(srv, pages_dir, times=3):
    """The same pages read by a plain HTTP client (one keep-alive connection,
    next links followed in the worker's order) from the source the worker
    used; the median of `times` reads, every one kept."""
    reads = [odata_pages.fetch_floor(srv.url(), pages_dir) for _ in range(times)]
    out = dict(sorted(reads, key=lambda r: r["ms"])[len(reads) // 2])
    out["all_ms"] = [r["ms"] for r in reads]
    log("fetch floor: %d pages, %.1f MB in %.0f ms (median of %d)"
        % (out["pages"], out["bytes"] / 1048576.0, out["ms"], times))
    return out


def api_floor(orch, run_id, seconds, config):
    """wrk with 100 connections on each read endpoint and on /healthz (the
    same server without a database), with 1 and with 2 wrk threads: on 2
    cores a 2-thread wrk takes the cores the server needs, so both are kept."""
    paths = ["/api/v1/workers", "/api/v1/workers/pipeline/status",
             "/api/v1/workers/odata-sync-worker/status", "/api/v1/runs",
             "/api/v1/runs/%s" % run_id, "/healthz"]
    results = []
    for p in paths:
        for threads in (1, 2):
            r = floors.wrk(orch.url(p), connections=100, seconds=seconds, threads=threads)
            r["path"] = p if not p.startswith("/api/v1/runs/") else "/api/v1/runs/:runId"
            r["threads"] = threads
            r["config"] = config
            results.append(r)
            log("wrk -t%d %s (%s): p99 %s ms, %s req/s"
                % (threads, r["path"], config, r["p99_ms"], r["rps"]))
    return results


def wait_quiet(limit, timeout_s=900):
    if limit <= 0:
        return
    t0 = time.time()
    while os.getloadavg()[0] >= limit and time.time() - t0 < timeout_s:
        time.sleep(5)
    log("load average %.2f after waiting %.0f s for < %.2f"
        % (os.getloadavg()[0], time.time() - t0, limit))


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1048576, 1),
            "kernel": platform.release(),
            "postgres": _version(["psql", "--version"]),
            "redis": _version(["redis-cli", "--version"]),
            "kcat": "kcat " + _first_line(_version(["kcat", "-V"]), r"(?<=Version )[^ ]+"),
            "wrk": _first_line(_version(["wrk", "-v"]), r"wrk [^ ]+")}


def _first_line(text, pattern):
    m = re.search(pattern, text)
    return m.group(0) if m else text.split("\n")[0]


def _version(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout or p.stderr).strip()
    except OSError:
        return ""


def main(argv=None):
    ap = argparse.ArgumentParser(description="pipeline benchmark")
    ap.add_argument("--scales", default="1,2,4,8,16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wrk-seconds", type=int, default=5)
    ap.add_argument("--source", choices=("pages", "python"), default="pages",
                    help="OData source: the pre-rendered pages on tests/bench/odata_pages.c "
                         "(default) or tests/odata/odata_server.py")
    ap.add_argument("--rt-samples", type=int, default=30)
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="LOAD",
                    help="before each scale, wait (up to 15 minutes) for the 1-minute load "
                         "average to fall below LOAD: other work on a 2-core machine skews "
                         "every figure (default 0: do not wait)")
    docs = ap.add_mutually_exclusive_group()
    docs.add_argument("--docs", dest="docs", action="store_true", default=None,
                      help="write docs/benchmarks.md and the plot (default: with >= 2 scales "
                           "and >= 2 repeats)")
    docs.add_argument("--no-docs", dest="docs", action="store_false")
    ap.add_argument("--command", default=None, help="the command line to print in the docs")
    ap.add_argument("--from-results", metavar="JSON",
                    help="no run: print the table (and with --docs rewrite the docs) from a "
                         "bench-results.json written before")
    opts = ap.parse_args(argv)
    if opts.from_results:
        with open(opts.from_results) as f:
            results = json.load(f)
        return finish(results, bool(opts.docs))
    scales = [float(s) if "." in s else int(s) for s in opts.scales.split(",") if s]
    if opts.docs is None:
        opts.docs = len(scales) >= 2 and opts.repeat >= 2
    data_root = os.path.join(conftest.BUILD_DIR, "bench-data")
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
               "command": opts.command or " ".join(["python3", "tests/bench/bench.py"] + (argv or sys.argv[1:])),
               "repeat": opts.repeat, "scales": [], "shared": {}}
    t_start = time.time()
    for index, scale in enumerate(scales):
        data_dir, manifest, data_stamp = dataset(scale, opts.seed, data_root)
        pages_dir, check = pages(scale, data_dir, data_stamp)
        if check:
            results["shared"]["source_check"] = dict(check, scale=scale)
        wait_quiet(opts.wait_quiet)
        log("scale %s: %d stops, %d routes, %d flights; graph %d nodes, %d edges"
            % (scale, manifest["stops"], manifest["routes"], manifest["flights"],
               manifest["expected_nodes"], manifest["expected_edges"]))
        results["scales"].append(run_scale(index, scale, opts.repeat, data_dir, pages_dir,
                                           manifest, opts, results["shared"]))
    results["total_s"] = time.time() - t_start
    path = os.path.join(conftest.BUILD_DIR, "bench-results.json")
    kept = os.path.join(conftest.BUILD_DIR, "bench-results-%s.json" % time.strftime("%Y%m%d-%H%M%S"))
    for p in (path, kept):  # the latest, and one per run that a later run does not overwrite
        with open(p, "w") as f:
            json.dump(results, f, indent=1)
    log("results: %s (%.0f s in all)" % (path, results["total_s"]))
    return finish(results, opts.docs)


def finish(results, docs):
    summary = report.summarise(results)
    print(report.table(summary))
    if docs:
        report.write_docs(summary, os.path.join(SOURCE, "docs", "benchmarks.md"),
                          os.path.join(SOURCE, "docs", "benchmarks-scale.png"),
                          conftest.BUILD_DIR)
        log("wrote docs/benchmarks.md and docs/benchmarks-scale.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
