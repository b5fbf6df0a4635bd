#!/usr/bin/env python3
"""graph-builder benchmark: 5,000 stops and 100,000 edges (plus flights).

Creates a throw-away database and topic prefix on the local stack (the
integration tests' Stack), writes a synthetic dataset with COPY, runs the
real graph-builder binary on one virtual-entities.completed event and prints
its phase timings, the Redis memory of the version, and the time
`redis-cli --pipe` needs for the same commands.

    bash deploy/stack.sh up
    TG_BUILD_DIR=build-graph-builder python3 services/graph-builder/bench.py \
        [--stops 5000] [--edges 100000] [--flights 200000]
"""
import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

from conftest import STACK, Stack, envelope, wait_for  # noqa: E402
from graph_builder_test import REDIS_DB, Redis  # noqa: E402


def copy(stack, table, columns, rows):
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    subprocess.run(["psql", stack.database_url, "-v", "ON_ERROR_STOP=1", "-qc",
                    f"\\copy {table} ({columns}) FROM STDIN"],
                   input=buf.getvalue(), text=True, check=True)


def dataset(stack, n_stops, n_edges, n_flights, seed=7):
    rnd = random.Random(seed)
    ds = int(stack.scalar("INSERT INTO datasets (data_hash) VALUES (repeat('b', 64))"
                          " RETURNING version"))
    stops = [(ds, f"stop-{i}", f"Остановка {i}", f"Посёлок {i}", 56 + rnd.random() * 16,
              105 + rnd.random() * 55) for i in range(n_stops)]
    copy(stack, "stops", "dataset_version, id, name, city_name, latitude, longitude", stops)
    routes = []
    for i in range(n_stops):  # a two-way ring keeps the graph strongly connected
        j = (i + 1) % n_stops
        routes.append((ds, f"route-{i}-{j}", f"stop-{i}", f"stop-{j}", "BUS", 60, 50))
        routes.append((ds, f"route-{j}-{i}", f"stop-{j}", f"stop-{i}", "BUS", 60, 50))
    types = [("BUS", 60, 50), ("AIR", 120, 800), ("RIVER", 600, 300), ("RAIL", 180, 200)]
    while len(routes) < n_edges:
        a, b = rnd.randrange(n_stops), rnd.randrange(n_stops)
        kind, minutes, km = rnd.choice(types)
        if a != b:
            routes.append((ds, f"route-x{len(routes)}", f"stop-{a}", f"stop-{b}", kind, minutes,
                           km))
    copy(stack, "routes", "dataset_version, id, from_stop_id, to_stop_id, transport_type,"
         " duration_minutes, distance_km", routes)
    flights = []
    for k in range(n_flights):
        r = routes[k % 2000]
        flights.append((ds, f"flight-{k}", r[1], r[2], r[3], f"2026-12-01 08:00:00+09",
                        f"2026-12-01 {9 + k % 3}:00:00+09"))
    copy(stack, "flights", "dataset_version, id, route_id, from_stop_id, to_stop_id,"
         " departure_time, arrival_time", flights)
    stack.sql("ANALYZE")
    return ds


def resp(*args):
    parts = [a.encode() if isinstance(a, str) else a for a in args]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def redis_cli_pipe(r, version):
    """Times redis-cli --pipe sending the same SET/SADD commands under
    another prefix, then deletes them."""
    nodes = r("SMEMBERS", f"graph:{version}:nodes")
    with tempfile.NamedTemporaryFile(suffix=".resp", delete=False) as f:
        for stop in nodes:
            for kind in ("node", "neighbors"):
                f.write(resp("SET", f"graph:bench-pipe:{kind}:{stop}",
                             r("GET", f"graph:{version}:{kind}:{stop}")))
        for i in range(0, len(nodes), 500):
            f.write(resp("SADD", "graph:bench-pipe:nodes", *nodes[i:i + 500]))
        path = f.name
    host, port = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")
    t = time.monotonic()
    with open(path, "rb") as f:
        subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", str(REDIS_DB), "--pipe"],
                       stdin=f, check=True, capture_output=True)
    ms = (time.monotonic() - t) * 1000
    os.unlink(path)
    for key in r("KEYS", "graph:bench-pipe:*"):
        r("UNLINK", key)
    return ms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stops", type=int, default=5000)
    ap.add_argument("--edges", type=int, default=100000)
    ap.add_argument("--flights", type=int, default=200000)
    args = ap.parse_args()
    stack = Stack()
    base = STACK["REDIS_URL"].rsplit("/", 1)[0]
    stack.env.update(REDIS_URL=f"{base}/{REDIS_DB}", S3_ENDPOINT="", LOG_LEVEL="info")
    r = Redis()
    r("FLUSHDB")
    try:
        ds = dataset(stack, args.stops, args.edges, args.flights)
        svc = stack.start("graph-builder")
        stack.produce("pipeline.virtual-entities.completed",
                      envelope("virtual-entities.completed", {"status": "success"},
                               dataset_version=ds))
        done = wait_for(lambda: stack.consume("pipeline.graph.completed", 1, timeout=1),
                        timeout=120, what="graph.completed")
        p = done[0]["json"]["payload"]
        print(json.dumps({k: p[k] for k in ("status", "graphVersion", "nodes", "edges",
                                             "executionTimeMs", "redisBytes")}))
        for line in svc.log_lines():
            if line["message"].startswith(("Dataset ", "Graph graph-v")):
                print(line["message"])
        print(f"redis-cli --pipe, same commands: {redis_cli_pipe(r, p['graphVersion']):.0f} ms")
    finally:
        r("FLUSHDB")
        r.close()
        stack.close()


if __name__ == "__main__":
    main()
