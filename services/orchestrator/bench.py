#!/usr/bin/env python3
"""Benchmark of the orchestrator against the services deploy/demo.sh runs.

1. Read endpoints with wrk (Debian's package): 100 connections, 10 s each.
2. Hand-off through the real broker: N forced pipeline runs; for each, the
   time from a completion event's Kafka timestamp to the next worker's
   "Worker started" log line (.stack/logs/<worker>.log).

    python3 services/orchestrator/bench.py [--runs 10] [--api http://127.0.0.1:3000]
Start the orchestrator with HTTP_THREADS=128 HTTP_KEEP_ALIVE=yes for (1).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LOGS = os.path.join(ROOT, ".stack", "logs")
READS = ["/api/v1/workers", "/api/v1/workers/graph-builder/status",
         "/api/v1/workers/pipeline/status", "/api/v1/runs?limit=20"]


def wrk(api):
    for path in READS:
        out = subprocess.run(["wrk", "-t2", "-c100", "-d10s", "--latency", api + path],
                             capture_output=True, text=True).stdout
        lat = {l.split()[0]: l.split()[1] for l in out.splitlines()
               if l.strip().startswith(("50%", "90%", "99%"))}
        rps = [l.split()[1] for l in out.splitlines() if l.startswith("Requests/sec")]
        print(f"{path:40} p50 {lat.get('50%')}  p90 {lat.get('90%')}  p99 {lat.get('99%')}  "
              f"{rps[0] if rps else '?'} req/s")


def iso_ms(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000


def started_at(worker, run_id):
    with open(os.path.join(LOGS, f"{worker}.log"), encoding="utf-8", errors="replace") as f:
        for line in f:
            if run_id in line and "Worker started" in line:
                return iso_ms(json.loads(line)["time"])
    return None


def topic_ts(brokers, topic, run_id):
    out = subprocess.run(["kcat", "-C", "-b", brokers, "-t", topic, "-o", "-200", "-e", "-J", "-q"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        m = json.loads(line)
        if run_id in (m.get("payload") or ""):
            return m["ts"]
    return None


def handoffs(api, runs, brokers):
    pairs = [("pipeline.odata-sync.completed", "virtual-entities-generator"),
             ("pipeline.virtual-entities.completed", "graph-builder")]
    samples = []
    for _ in range(runs):
        req = urllib.request.Request(api + "/api/v1/workers/execute?wait=120&force=true",
                                     method="POST")
        body = json.loads(urllib.request.urlopen(req, timeout=130).read())
        for topic, worker in pairs:
            ts, start = topic_ts(brokers, topic, body["runId"]), started_at(worker, body["runId"])
            if ts and start:
                samples.append(start - ts)
    if samples:
        print(f"hand-off completion -> next worker start: median {statistics.median(samples):.1f} ms,"
              f" max {max(samples):.1f} ms over {len(samples)} hand-offs")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--api", default="http://127.0.0.1:3000")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--brokers", default=os.environ.get("KAFKA_BROKERS", "127.0.0.1:29092"))
    args = ap.parse_args()
    wrk(args.api)
    handoffs(args.api, args.runs, args.brokers)


if __name__ == "__main__":
    main()
