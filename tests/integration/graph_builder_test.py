"""graph-builder against real Kafka, PostgreSQL and Redis.

Datasets are written with psql, the worker is triggered with a
virtual-entities.completed event through kcat, and Redis is read the way the
API reads it (graph:version, then that version's keys). The tests use their
own Redis database (GRAPH_TEST_REDIS_DB, default 9) so that other tests
flushing the shared test database cannot remove a graph mid-test.
"""
import gzip
import json
import math
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import STACK, envelope, wait_for

REDIS_DB = int(os.environ.get("GRAPH_TEST_REDIS_DB", "9"))
IN_TOPIC = "pipeline.virtual-entities.completed"
DONE_TOPIC = "pipeline.graph.completed"
FAILED_TOPIC = "pipeline.step.failed"
VERSION_RE = re.compile(r"^graph-v[0-9]+$")


class Redis:
    """A minimal RESP client: fast enough for a reader thread in a loop."""

    def __init__(self, db=REDIS_DB):
        host, port = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        self.file = self.sock.makefile("rb")
        self("SELECT", str(db))

    def __call__(self, *args):
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        msg = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        self.sock.sendall(msg)
        return self._read()

    def _read(self):
        line = self.file.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.file.read(n + 2)[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")

    def keys_of(self, version):
        return self("KEYS", f"graph:{version}:*")

    def close(self):
        self.sock.close()


@pytest.fixture
def gstack(stack):
    """The shared stack with graph-builder's own Redis database."""
    base = STACK["REDIS_URL"].rsplit("/", 1)[0]
    stack.env["REDIS_URL"] = f"{base}/{REDIS_DB}"
    stack.env["S3_ENDPOINT"] = ""  # backups have their own test
    stack.redis = Redis()
    stack.redis("FLUSHDB")
    yield stack
    stack.redis("FLUSHDB")
    stack.redis.close()


# ---- datasets ---------------------------------------------------------------

def q(value):
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def network(cities=("Якутск", "Мирный", "Ленск"), per_city=2):
    """Stops in cities (hub stop k=0 plus local stops), a two-way BUS ring
    between the hubs, and three flights on the first route (durations 100,
    110, 200 minutes: the median 110 becomes its weight)."""
    stops, routes, flights = [], [], []
    for c, city in enumerate(cities):
        for k in range(per_city):
            # The second stop spells the city as OData does ("г. Якутск").
            name = city if k == 0 else f"г. {city}"
            stops.append(dict(id=f"s{c}-{k}", name=f"Остановка {c}-{k} \"{city}\"",
                              city=name, lat=62.0 + c + k / 100, lon=129.0 + c))
    n = len(cities)
    for c in range(n):
        d = (c + 1) % n
        for a, b in ((c, d), (d, c)):
            routes.append(dict(id=f"r{a}-{b}", frm=f"s{a}-0", to=f"s{b}-0", type="BUS",
                               minutes=90.0, km=60.0))
    for i, minutes in enumerate((100, 110, 200)):
        flights.append(dict(id=f"f{i}", route="r0-1", frm="s0-0", to="s1-0", minutes=minutes))
    return dict(stops=stops, routes=routes, flights=flights, vstops=[], vroutes=[])


def insert_dataset(stack, data):
    version = int(stack.scalar(
        "INSERT INTO datasets (data_hash) VALUES (repeat('a', 64)) RETURNING version"))
    stmts = []
    for s in data["stops"]:
        stmts.append("INSERT INTO stops (dataset_version, id, name, city_name, latitude, longitude)"
                     f" VALUES ({version}, {q(s['id'])}, {q(s['name'])}, {q(s.get('city'))},"
                     f" {q(s.get('lat'))}, {q(s.get('lon'))})")
    for s in data["vstops"]:
        stmts.append("INSERT INTO virtual_stops (dataset_version, id, name, city_name, latitude,"
                     f" longitude) VALUES ({version}, {q(s['id'])}, {q(s['name'])},"
                     f" {q(s['city'])}, {q(s['lat'])}, {q(s['lon'])})")
    for r in data["routes"]:
        stmts.append("INSERT INTO routes (dataset_version, id, name, from_stop_id, to_stop_id,"
                     " transport_type, duration_minutes, distance_km) VALUES"
                     f" ({version}, {q(r['id'])}, {q(r['id'])}, {q(r['frm'])}, {q(r['to'])},"
                     f" {q(r['type'])}, {q(r['minutes'])}, {q(r['km'])})")
    for r in data["vroutes"]:
        stmts.append("INSERT INTO virtual_routes (dataset_version, id, name, from_stop_id,"
                     " to_stop_id, transport_type, duration_minutes, distance_km, fare) VALUES"
                     f" ({version}, {q(r['id'])}, {q(r['id'])}, {q(r['frm'])}, {q(r['to'])},"
                     f" {q(r['type'])}, {q(r['minutes'])}, {q(r['km'])}, 1000)")
    for f in data["flights"]:
        stmts.append("INSERT INTO flights (dataset_version, id, route_id, from_stop_id, to_stop_id,"
                     " departure_time, arrival_time, is_virtual) VALUES"
                     f" ({version}, {q(f['id'])}, {q(f['route'])}, {q(f['frm'])}, {q(f['to'])},"
                     " '2026-12-01T08:00:00+09:00',"
                     f" '2026-12-01T08:00:00+09:00'::timestamptz + interval '{f['minutes']} minutes',"
                     " false)")
    if stmts:  # through stdin: thousands of flights exceed an argument list
        subprocess.run(["psql", stack.database_url, "-v", "ON_ERROR_STOP=1", "-qX", "-1"],
                       input=";\n".join(stmts) + ";\n", text=True, check=True,
                       capture_output=True)
    return version


def trigger(stack, dataset=None, **payload):
    payload.setdefault("status", "success")
    stack.produce(IN_TOPIC, envelope("virtual-entities.completed", payload,
                                     dataset_version=dataset))


def results(stack, done, failed=0, timeout=60):
    """Waits until done completions and failed failures were emitted."""
    def ready():
        d = stack.consume(DONE_TOPIC, done, timeout=1) if done else []
        f = stack.consume(FAILED_TOPIC, failed, timeout=1) if failed else []
        return (d, f) if len(d) >= done and len(f) >= failed else None
    d, f = wait_for(ready, timeout=timeout, what=f"{done} completions, {failed} failures")
    return [m["json"] for m in d], [m["json"] for m in f]


def graphs_rows(stack):
    return stack.sql("SELECT version, dataset_version, status, node_count, edge_count,"
                     " keys_pending FROM graphs ORDER BY created_at")


# ---- tests ------------------------------------------------------------------

def test_graph_published_in_specification_format(gstack):
    data = network()
    ds = insert_dataset(gstack, data)
    gstack.start("graph-builder")
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    p = done[0]["payload"]
    assert p["status"] == "success", p
    assert done[0]["datasetVersion"] == ds
    version = p["graphVersion"]
    assert VERSION_RE.match(version)
    # 6 routes, and transfers both ways inside each city of two stops
    # ("Якутск" and "г. Якутск" are one city).
    assert (p["nodes"], p["edges"]) == (6, 6 + 3 * 2)
    assert p["validation"]["errors"] == 0
    assert p["dataProcessed"]["added"] == 6 + 12
    assert p["redisBytes"] > 0

    r = gstack.redis
    assert r("GET", "graph:version") == version
    assert r("LRANGE", "graph:versions", 0, -1) == [version]
    assert sorted(r("SMEMBERS", f"graph:{version}:nodes")) == sorted(s["id"] for s in data["stops"])
    node = json.loads(r("GET", f"graph:{version}:node:s0-1"))
    assert node == {"stopId": "s0-1", "stopName": "Остановка 0-1 \"Якутск\"",
                    "latitude": 62.01, "longitude": 129.0, "cityName": "г. Якутск"}
    edges = json.loads(r("GET", f"graph:{version}:neighbors:s0-0"))
    by_target = {(e["toStopId"], e["transportType"]): e for e in edges}
    assert by_target[("s1-0", "BUS")] == {"fromStopId": "s0-0", "toStopId": "s1-0",
                                          "weight": 110, "distance": 60,
                                          "transportType": "BUS", "routeId": "r0-1"}
    assert by_target[("s2-0", "BUS")]["weight"] == 90  # no flights: duration_minutes
    transfer = by_target[("s0-1", "TRANSFER")]
    assert transfer["weight"] == 15 and "routeId" not in transfer
    assert len(edges) == 3
    assert json.loads(r("GET", f"graph:{version}:neighbors:s1-1")) == [
        {"fromStopId": "s1-1", "toStopId": "s1-0", "weight": 15, "distance": 1.11,
         "transportType": "TRANSFER"}]

    row = gstack.sql("SELECT status, dataset_version, node_count, edge_count, build_ms >= 0,"
                     " redis_bytes > 0, validation->>'errors', activated_at IS NOT NULL,"
                     " keys_pending FROM graphs")
    assert row == [["active", str(ds), "6", "12", "t", "t", "0", "t", "f"]]
    info = [i["code"] for i in json.loads(gstack.scalar("SELECT validation FROM graphs"))["issues"]]
    assert "weight_from_flights" in info and "transfer_edges" in info


def test_isolated_stop_is_left_out_and_reported(gstack):
    """Rule 5 as written: a stop no route, virtual route or transfer touches
    is not published (no node, no neighbors key), the report lists it, the
    completion event and the run's message count it."""
    data = network()
    data["stops"].append(dict(id="s-lonely", name="Остановка без рейсов", city="Оймякон",
                              lat=63.46, lon=142.78))
    ds = insert_dataset(gstack, data)
    gstack.start("graph-builder")
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    p = done[0]["payload"]
    assert p["status"] == "success", p
    assert (p["nodes"], p["isolatedStops"]) == (6, 1), p
    assert "1 isolated stop left out" in p["message"], p["message"]
    issue = {i["code"]: i for i in p["validation"]["issues"]}["isolated_stop"]
    assert issue["count"] == 1 and issue["severity"] == "warning"
    assert issue["samples"][0].startswith("s-lonely (Остановка без рейсов)")
    version = p["graphVersion"]
    r = gstack.redis
    members = r("SMEMBERS", f"graph:{version}:nodes")
    assert "s-lonely" not in members and len(members) == 6
    assert r("EXISTS", f"graph:{version}:node:s-lonely") == 0
    assert r("EXISTS", f"graph:{version}:neighbors:s-lonely") == 0
    # No published node is isolated: each has an edge out (the sample is
    # strongly connected) and is some edge's target.
    targets = set()
    for stop in members:
        out = json.loads(r("GET", f"graph:{version}:neighbors:{stop}"))
        assert out, stop
        targets |= {e["toStopId"] for e in out}
    assert targets == set(members)
    assert gstack.sql("SELECT node_count, validation->>'warnings' FROM graphs") == [["6", "1"]]


def test_redelivery_is_skipped_and_latest_dataset_is_the_default(gstack):
    ds1 = insert_dataset(gstack, network())
    gstack.start("graph-builder")
    trigger(gstack, ds1)
    done, _ = results(gstack, 1)
    v1 = done[0]["payload"]["graphVersion"]

    trigger(gstack, ds1)  # the same dataset again: nothing to do
    done, _ = results(gstack, 2)
    p = done[1]["payload"]
    assert p["status"] == "skipped" and p["graphVersion"] == v1 and p["nodes"] == 6, p
    assert len(graphs_rows(gstack)) == 1

    ds2 = insert_dataset(gstack, network(cities=("Якутск", "Мирный", "Ленск", "Алдан")))
    trigger(gstack)  # no datasetVersion: the latest dataset
    done, _ = results(gstack, 3)
    p = done[2]["payload"]
    assert p["status"] == "success" and p["nodes"] == 8 and done[2]["datasetVersion"] == ds2
    assert gstack.redis("GET", "graph:version") == p["graphVersion"] != v1
    assert [r[2] for r in graphs_rows(gstack)] == ["retired", "active"]

    trigger(gstack, ds1)  # an older dataset must not replace a newer graph
    done, _ = results(gstack, 4)
    assert done[3]["payload"]["status"] == "skipped"
    assert gstack.redis("GET", "graph:version") == p["graphVersion"]


def broken(rule):
    """A dataset breaking exactly one validation rule, and the sample text the
    failure must name."""
    data = network()
    if rule == "no_nodes":
        data = dict(stops=[], routes=[], flights=[], vstops=[], vroutes=[])
        return data, "no stops"
    if rule == "no_edges":
        data.update(routes=[], flights=[])
        return data, "no routes"
    if rule == "invalid_weight":
        data["routes"][2]["minutes"] = 0
        return data, "r1-2 (s1-0 -> s2-0): weight 0"
    if rule == "missing_stop":
        data["vroutes"].append(dict(id="virtual-route-x", frm="s0-0", to="virtual-stop-ghost",
                                    type="BUS", minutes=30, km=10))
        return data, "virtual-route-x: stop virtual-stop-ghost does not exist"
    if rule == "not_strongly_connected":
        data["vstops"].append(dict(id="virtual-stop-tiksi", name="г. Тикси", city="Тикси",
                                   lat=71.6, lon=128.9))
        data["vroutes"].append(dict(id="virtual-route-one-way", frm="s0-0",
                                    to="virtual-stop-tiksi", type="BUS", minutes=600, km=500))
        return data, "virtual-stop-tiksi: cannot reach"
    raise AssertionError(rule)


RULES = ["no_nodes", "no_edges", "invalid_weight", "missing_stop", "not_strongly_connected"]


def test_each_broken_rule_fails_and_keeps_the_old_graph(gstack):
    gstack.start("graph-builder")
    ds = insert_dataset(gstack, network())
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    good = done[0]["payload"]["graphVersion"]
    good_keys = len(gstack.redis.keys_of(good))

    for i, rule in enumerate(RULES, start=1):
        data, sample = broken(rule)
        ds = insert_dataset(gstack, data)
        trigger(gstack, ds)
        _, failed = results(gstack, 1, i)
        p = failed[i - 1]["payload"]
        assert p["errorCode"] == "invalid" and p["retryable"] is False, p
        assert rule in p["error"] and sample in p["error"], p["error"]
        codes = {x["code"]: x for x in p["validation"]["issues"] if x["severity"] == "error"}
        # An empty dataset has no routes either; stops without routes are
        # not connected either.
        also = {"no_nodes": {"no_edges"}, "no_edges": {"not_strongly_connected"}}
        assert set(codes) == {rule} | also.get(rule, set()), codes
        assert any(sample in s for s in codes[rule]["samples"])
        # The previous graph is still the one served, complete.
        assert gstack.redis("GET", "graph:version") == good
        assert len(gstack.redis.keys_of(good)) == good_keys
        row = gstack.sql(f"SELECT version, status, validation->'issues'->0->>'code', error"
                         f" FROM graphs WHERE dataset_version = {ds}")
        assert len(row) == 1 and row[0][1] == "failed" and row[0][2] == rule, row
        assert sample in row[0][3]
        assert gstack.redis.keys_of(row[0][0]) == []
    assert gstack.scalar("SELECT string_agg(status, ',') FROM graphs WHERE status <> 'failed'") \
        == "active"


def test_retention_keeps_the_last_versions(gstack):
    ds = insert_dataset(gstack, network())
    gstack.start("graph-builder", env={"GRAPH_KEEP_VERSIONS": "2"})
    versions = []
    for i in range(4):
        trigger(gstack, ds, force=True)
        done, _ = results(gstack, i + 1)
        versions.append(done[i]["payload"]["graphVersion"])
    assert len(set(versions)) == 4
    r = gstack.redis
    assert r("GET", "graph:version") == versions[3]
    assert r("LRANGE", "graph:versions", 0, -1) == [versions[3], versions[2]]
    for old in versions[:2]:
        assert r.keys_of(old) == [], old
    for kept in versions[2:]:
        assert r("SCARD", f"graph:{kept}:nodes") == 6
        assert len(r.keys_of(kept)) == 1 + 2 * 6
    assert [row[2] for row in graphs_rows(gstack)] == ["retired"] * 3 + ["active"]


def test_reader_following_graph_version_never_sees_a_partial_graph(gstack):
    cities = [f"Город {i}" for i in range(60)]
    ds = insert_dataset(gstack, network(cities=cities, per_city=3))
    gstack.start("graph-builder")
    trigger(gstack, ds)
    results(gstack, 1)

    stop = threading.Event()
    seen, problems, reads = set(), [], [0]

    def reader():
        r = Redis()
        while not stop.is_set():
            version = r("GET", "graph:version")
            stop_id = r("SRANDMEMBER", f"graph:{version}:nodes")
            node = r("GET", f"graph:{version}:node:{stop_id}")
            neighbors = r("GET", f"graph:{version}:neighbors:{stop_id}")
            if stop_id is None or node is None or neighbors is None:
                problems.append((version, stop_id, node is None, neighbors is None))
            else:
                for e in json.loads(neighbors):
                    if r("EXISTS", f"graph:{version}:node:{e['toStopId']}") != 1:
                        problems.append((version, e["toStopId"]))
            seen.add(version)
            reads[0] += 1
        r.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(20):
            trigger(gstack, ds, force=True)
        done, _ = results(gstack, 21, timeout=120)
    finally:
        stop.set()
        thread.join(10)
    assert all(d["payload"]["status"] == "success" for d in done)
    assert problems == []
    assert len(seen) >= 5 and reads[0] > 100, (len(seen), reads[0])


def test_redis_failure_mid_publish_keeps_old_graph_and_retry_cleans_up(gstack):
    ds = insert_dataset(gstack, network())
    first = gstack.start("graph-builder")
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    good = done[0]["payload"]["graphVersion"]
    first.stop()

    # The restarted worker loses its Redis connection after 5 keys.
    gstack.start("graph-builder", env={"GRAPH_FAIL_AFTER_KEYS": "5"})
    trigger(gstack, ds, force=True)
    _, failed = results(gstack, 1, 1)
    p = failed[0]["payload"]
    assert p["errorCode"] == "redis" and p["retryable"] is True, p
    broken_version = gstack.scalar("SELECT version FROM graphs WHERE status = 'failed'")
    assert broken_version and broken_version in p["error"]
    r = gstack.redis
    assert r("GET", "graph:version") == good
    assert len(r.keys_of(good)) == 13
    assert 0 < len(r.keys_of(broken_version)) < 13  # left behind by the cut connection
    assert gstack.scalar(f"SELECT keys_pending FROM graphs WHERE version = '{broken_version}'") \
        == "t"

    trigger(gstack, ds, force=True)  # the orchestrator's retry
    done, _ = results(gstack, 2)
    p = done[1]["payload"]
    assert p["status"] == "success", p
    assert r("GET", "graph:version") == p["graphVersion"] not in (good, broken_version)
    assert r.keys_of(broken_version) == []
    assert gstack.scalar(f"SELECT status || ',' || keys_pending FROM graphs"
                         f" WHERE version = '{broken_version}'") == "failed,false"


def test_interrupted_builds_are_cleaned_or_adopted(gstack):
    ds = insert_dataset(gstack, network())
    r = gstack.redis
    # A crash while writing: keys of graph-v1 and its 'building' row.
    gstack.sql(f"INSERT INTO graphs (version, dataset_version, status, keys_pending)"
               f" VALUES ('graph-v1', {ds}, 'building', true),"
               f" ('graph-v2', {ds}, 'building', true)")
    r("SET", "graph:graph-v1:node:s0-0", "{}")
    r("SADD", "graph:graph-v1:nodes", "s0-0")
    # A crash after the switch, before the commit: graph-v2 is live.
    r("SADD", "graph:graph-v2:nodes", "s0-0")
    r("SET", "graph:version", "graph-v2")
    gstack.start("graph-builder")
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    p = done[0]["payload"]
    # graph-v2 was recorded as active, so the dataset's graph already exists.
    assert p["status"] == "skipped" and p["graphVersion"] == "graph-v2", p
    assert r.keys_of("graph-v1") == []
    rows = {row[0]: row[2] for row in graphs_rows(gstack)}
    assert rows == {"graph-v1": "failed", "graph-v2": "active"}


def s3_get(key):
    """GETs an object with a SigV4-signed curl; None when it is not there."""
    out = subprocess.run(
        ["curl", "-s", "-f", "--max-time", "10", "--aws-sigv4",
         f"aws:amz:{STACK['S3_REGION']}:s3", "--user",
         f"{STACK['S3_ACCESS_KEY']}:{STACK['S3_SECRET_KEY']}",
         f"{STACK['S3_ENDPOINT']}/{STACK['S3_BUCKET']}/{key}"], capture_output=True)
    return out.stdout if out.returncode == 0 else None


def test_graph_is_backed_up_to_s3(gstack):
    probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                            "5", STACK["S3_ENDPOINT"] + "/"], capture_output=True, text=True)
    if probe.stdout in ("", "000"):
        pytest.skip("the S3 server of the stack is not reachable")
    ds = insert_dataset(gstack, network())
    gstack.start("graph-builder", env={"S3_ENDPOINT": STACK["S3_ENDPOINT"]})
    trigger(gstack, ds)
    done, _ = results(gstack, 1, timeout=90)
    p = done[0]["payload"]
    assert p["backupKey"] == f"graphs/{p['graphVersion']}.json.gz", p
    backup = json.loads(gzip.decompress(s3_get(p["backupKey"])))
    assert backup["graphVersion"] == p["graphVersion"] and backup["datasetVersion"] == ds
    assert len(backup["nodes"]) == 6 and len(backup["edges"]) == 12


# ---- the published bytes, computed independently ----------------------------

def json_str(s):
    """tg_json_append_str: a quote and a backslash get a backslash, control
    characters become backslash-u00xx (lower-case hex), the rest is copied."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def json_num(v):
    """Whole numbers as integers, the rest with ten significant digits."""
    if v == math.floor(v) and abs(v) < 1e15:
        return str(int(v))
    return "%.10g" % v


def city_key(name):
    """The city rule of libcommon/include/tg/text.h, for the names used here."""
    if not name:
        return None
    folded = "".join("е" if c in "Ёё" else c.lower() for c in name)
    key = " ".join(re.split(r"[\s\-\u00a0\u2010\u2011\u2013\u2014]+", folded)).strip()
    for t in ("г.", "г ", "пос.", "пгт.", "пгт ", "с.", "п."):
        if key.startswith(t):
            key = key[len(t) + (key[len(t):len(t) + 1] == " "):]
            break
    return key or None


def haversine_km(a, b):
    if None in (a["lat"], a["lon"], b["lat"], b["lon"]):
        return None
    rad = math.pi / 180
    dlat, dlon = (b["lat"] - a["lat"]) * rad, (b["lon"] - a["lon"]) * rad
    h = math.sin(dlat / 2) ** 2 + \
        math.cos(a["lat"] * rad) * math.cos(b["lat"] * rad) * math.sin(dlon / 2) ** 2
    km = 2 * 6371.0 * math.asin(math.sqrt(min(h, 1)))
    return math.floor(km * 100 + 0.5) / 100  # C round(): half away from zero


def median(values):
    values = sorted(values)
    mid = (len(values) - 1) / 2
    lo, hi = values[math.floor(mid)], values[math.ceil(mid)]
    return lo + (hi - lo) * (mid - math.floor(mid))  # percentile_cont(0.5)


def expected_graph(data, transfer_minutes=15, transfer_max_stops=30):
    """The graph of the README's model: nodes in load order (real stops by id,
    then virtual ones, a repeated id dropped), edges in load order (routes and
    virtual routes by id, then each city's transfers), isolated stops left out."""
    nodes, seen = [], set()
    for s in sorted(data["stops"], key=lambda s: s["id"]) + \
            sorted(data["vstops"], key=lambda s: s["id"]):
        if s["id"] not in seen:
            seen.add(s["id"])
            nodes.append(dict(s, name=s.get("name") or s["id"]))
    flights = {}
    for f in data["flights"]:
        flights.setdefault(f["route"], []).append(f["minutes"])
    edges = []
    for r in sorted(data["routes"] + data["vroutes"], key=lambda r: r["id"]):
        weight = median(flights[r["id"]]) if r["id"] in flights else r["minutes"]
        edges.append(dict(frm=r["frm"], to=r["to"], weight=weight, km=r["km"],
                          type=r["type"] or None, route=r["id"]))
    cities = {}
    for n in nodes:
        if city_key(n.get("city")):
            cities.setdefault(city_key(n["city"]).encode(), []).append(n)
    for key in sorted(cities):
        group = cities[key]
        if len(group) > transfer_max_stops:
            continue
        for a in group:
            for b in group:
                if a is not b:
                    edges.append(dict(frm=a["id"], to=b["id"], weight=transfer_minutes,
                                      km=haversine_km(a, b), type="TRANSFER", route=None))
    touched = {e["frm"] for e in edges} | {e["to"] for e in edges}
    return [n for n in nodes if n["id"] in touched], edges


def node_json(n):
    out = '{"stopId":' + json_str(n["id"]) + ',"stopName":' + json_str(n["name"])
    if n.get("lat") is not None and n.get("lon") is not None:
        out += ',"latitude":' + json_num(n["lat"]) + ',"longitude":' + json_num(n["lon"])
    if n.get("city"):
        out += ',"cityName":' + json_str(n["city"])
    return out + "}"


def edge_json(e):
    out = '{"fromStopId":' + json_str(e["frm"]) + ',"toStopId":' + json_str(e["to"]) + \
        ',"weight":' + json_num(e["weight"])
    if e["km"] is not None:
        out += ',"distance":' + json_num(e["km"])
    if e["type"]:
        out += ',"transportType":' + json_str(e["type"])
    if e["route"]:
        out += ',"routeId":' + json_str(e["route"])
    return out + "}"


def edge_cases():
    """A dataset touching every branch of the published format: names with
    quotes, backslashes, control characters and 4-byte UTF-8; missing city,
    latitude or longitude; tiny, negative and whole coordinates; one city
    spelled four ways; a city too big for transfers; a virtual stop repeating
    a real id; fractional durations and medians; routes without a distance or
    a transport type, and one repeating a transfer; an isolated stop."""
    def stop(i, name, city, lat, lon):
        return dict(id=i, name=name, city=city, lat=lat, lon=lon)
    stops = [
        stop("s01", 'Центр "Главный" \\ вход', "Якутск", 62.02791234567, 129.7325),
        stop("s02", "Таб\tи\nперевод\x01", "г. Якутск", 62.03, 129.74),
        stop("s03", "Аэропорт ✈ 𝔸", "ЯКУТСК", 62.0933, 129.7708),
        stop("s04", "Усть-Мая", "Усть-Мая", 60.4167, 134.5333),
        stop("s05", "Пристань", "усть  мая", 60.42, 1e-07),
        stop("s06", "Мирный", "Мирный", 62.5353, 113.9611),
        stop("s07", "Мирный 2", "г.Мирный", 62.54, 114),
        stop("s08", "Мирный 3", "мирный", -0.5, 114.01),
        stop("s09", "Мирный 4", "Мирный", 62.55, 114.02),
        stop("s10", "Без города", None, None, None),
        stop("s11", "Ленск без широты", "Ленск", None, 114.9),
        stop("s12", "Ленск", "Ленск", 60.7253, 114.9167),
        stop("s13", "Оймякон", "Оймякон", 63.46, 142.78),
    ]
    vstops = [stop("s04", "г. Усть-Мая (дубль)", "Усть-Мая", 60.0, 134.0),
              stop("v01", "г. Якутск", "Якутск", 62.0, 129.0),
              stop("v02", "г. Мирный", "Мирный", 62.5, 114.0)]
    routes, vroutes, n = [], [], [0]

    def route(frm, to, type_="BUS", minutes=60.0, km=50.0, table=routes, prefix="r"):
        n[0] += 1
        table.append(dict(id=f"{prefix}{n[0]:02d}", frm=frm, to=to, type=type_, minutes=minutes,
                          km=km))
    hubs = ["s01", "s04", "s06", "s10", "s12"]
    for a, b in zip(hubs, hubs[1:] + hubs[:1]):
        route(a, b, "AIR", 95.25, 812.4)
        route(b, a, None, 47.0, None)
    for s in ("s07", "s08", "s09"):
        route("s06", s, "", 12.5, 3.0)
        route(s, "s06", "bus", 12.0, 3.25)
    route("s01", "s04", "AIR", 60.0, 5000.0)   # implausible speed
    route("s01", "s04", "AIR", 60.0, 5000.0)   # the same edge under another id
    route("s10", "s12", "RIVER", 600.0, 0.001)
    route("v02", "s06", "BUS", 20.0, 5.0, table=vroutes, prefix="vr")
    route("s06", "v02", "BUS", 20.0, 5.0, table=vroutes, prefix="vr")
    route("s02", "s03", "TRANSFER", 15.0, 1.0)  # a route repeating a transfer
    flights = [dict(id="f1", route="r01", frm="s01", to="s04", minutes=100),
               dict(id="f2", route="r01", frm="s01", to="s04", minutes=111),
               dict(id="f3", route="r02", frm="s04", to="s01", minutes=61),
               dict(id="f4", route="r02", frm="s04", to="s01", minutes=62.5),
               dict(id="f5", route="r02", frm="s04", to="s01", minutes=65.75),
               dict(id="f6", route="vr20", frm="v02", to="s06", minutes=33.3)]
    return dict(stops=stops, routes=routes, flights=flights, vstops=vstops, vroutes=vroutes)


def test_published_bytes_match_the_graph_model(gstack):
    """Every key graph-builder writes and every byte of every value, and the
    backup, against the graph computed here from the README's model."""
    data = edge_cases()
    nodes, edges = expected_graph(data, transfer_max_stops=4)
    ds = insert_dataset(gstack, data)
    gstack.start("graph-builder", env={"GRAPH_TRANSFER_MAX_STOPS": "4",
                                       "S3_ENDPOINT": STACK["S3_ENDPOINT"]})
    trigger(gstack, ds)
    done, _ = results(gstack, 1, timeout=90)
    p = done[0]["payload"]
    assert p["status"] == "success", p
    assert (p["nodes"], p["edges"], p["isolatedStops"]) == (len(nodes), len(edges), 1), p
    issues = {i["code"]: i for i in p["validation"]["issues"]}
    assert {c: issues[c]["count"] for c in issues} == {
        "isolated_stop": 1, "duplicate_stop": 1, "transfers_skipped": 1,
        "implausible_speed": 2, "duplicate_edge": 2, "weight_from_flights": 3,
        "transfer_edges": 12 + 2 + 2}, issues
    assert issues["duplicate_edge"]["samples"] == ["r18 repeats r17 (s01 -> s04, 60 min)",
                                                   "transfer repeats r22 (s02 -> s03, 15 min)"]

    version = p["graphVersion"]
    r = gstack.redis
    want = {f"graph:{version}:node:{n['id']}": node_json(n) for n in nodes}
    for n in nodes:
        want[f"graph:{version}:neighbors:{n['id']}"] = \
            "[" + ",".join(edge_json(e) for e in edges if e["frm"] == n["id"]) + "]"
    keys = set(r.keys_of(version))
    assert keys == set(want) | {f"graph:{version}:nodes"}
    for key, value in want.items():
        assert r("GET", key) == value, key
    assert sorted(r("SMEMBERS", f"graph:{version}:nodes")) == sorted(n["id"] for n in nodes)
    assert r("GET", "graph:version") == version

    backup = gzip.decompress(s3_get(p["backupKey"])).decode()
    assert backup == '{"graphVersion":"%s","datasetVersion":%d,"nodes":[%s],"edges":[%s]}' % (
        version, ds, ",".join(node_json(n) for n in nodes), ",".join(edge_json(e) for e in edges))


def sample_data():
    """deploy/sample-data/odata as a dataset (what odata-sync-worker stores)."""
    from datetime import datetime
    root = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "sample-data", "odata")
    load = lambda name: json.load(open(os.path.join(root, name), encoding="utf-8"))  # noqa: E731
    stops = [dict(id=s["Id"], name=s["Name"], city=s.get("CityName"), lat=s.get("Latitude"),
                  lon=s.get("Longitude")) for s in load("stops.json")]
    routes = [dict(id=r["Id"], frm=r["FromStopId"], to=r["ToStopId"], type=r["TransportType"],
                   minutes=r.get("DurationMinutes"), km=r.get("DistanceKm"))
              for r in load("routes.json")]
    flights = []
    for f in load("flights.json"):
        dep = datetime.fromisoformat(f["DepartureTime"])
        arr = datetime.fromisoformat(f["ArrivalTime"])
        flights.append(dict(id=f["Id"], route=f["RouteId"], frm=f["FromStopId"],
                            to=f["ToStopId"], minutes=int((arr - dep).total_seconds() // 60)))
    return dict(stops=stops, routes=routes, flights=flights, vstops=[], vroutes=[])


def test_sample_data_builds_a_valid_graph(gstack):
    data = sample_data()
    ds = insert_dataset(gstack, data)
    gstack.start("graph-builder")
    trigger(gstack, ds)
    done, _ = results(gstack, 1)
    p = done[0]["payload"]
    assert p["status"] == "success" and p["validation"]["errors"] == 0, p
    assert p["nodes"] == len(data["stops"]) and p["edges"] > len(data["routes"])
    version = gstack.redis("GET", "graph:version")
    assert version == p["graphVersion"]
    assert gstack.redis("SCARD", f"graph:{version}:nodes") == len(data["stops"])
    # The Yakutsk airport stop reaches Mirny by air, weighted by its flights.
    edges = json.loads(gstack.redis("GET", f"graph:{version}:neighbors:stop-yak-airport"))
    air = [e for e in edges if e["toStopId"] == "stop-mir-airport"]
    assert air and air[0]["transportType"] == "AIR" and air[0]["routeId"] \
        == "route-yak-airport-mir-airport" and air[0]["weight"] > 0


def test_pipeline_on_sample_data_publishes_the_graph(gstack, odata_server):
    """Workers 1 and 2 on the bundled sample data, then this worker: the
    graph of real and virtual stops passes validation and goes live."""
    srv = odata_server(os.path.join(os.path.dirname(__file__), "..", "..", "deploy",
                                    "sample-data", "odata"), "--quiet")
    gstack.start("odata-sync-worker", {"ODATA_URL": srv.url()})
    gstack.start("virtual-entities-generator")
    gstack.start("graph-builder")
    gstack.produce("pipeline.trigger", envelope("pipeline.trigger", {"trigger": "kafka"}))
    done, _ = results(gstack, 1, timeout=120)
    p = done[0]["payload"]
    assert p["status"] == "success" and p["validation"]["errors"] == 0, p
    virtual = gstack.count("virtual_stops")
    assert virtual > 0 and p["nodes"] == gstack.count("stops") + virtual
    version = gstack.redis("GET", "graph:version")
    assert version == p["graphVersion"]
    stop = gstack.scalar("SELECT id FROM virtual_stops LIMIT 1")
    assert json.loads(gstack.redis("GET", f"graph:{version}:node:{stop}"))["stopId"] == stop
    assert json.loads(gstack.redis("GET", f"graph:{version}:neighbors:{stop}"))
    assert gstack.scalar(f"SELECT status FROM graphs WHERE version = '{version}'") == "active"
