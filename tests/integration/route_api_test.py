"""route-api against real Redis: a route from a real stop to a virtual city
after the whole pipeline ran on the sample data (and the switch announced by
graph-builder's PUBLISH followed at once), paths compared with networkx on
random pairs of a generated graph, hot swaps of 20+ versions under 50
clients, and a Redis that goes away while the loaded graph keeps answering.
Generated graphs are written in graph-builder's key format."""
import json
import random
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import networkx as nx
import pytest

from conftest import STACK, wait_for
from orchestrator_test import call
from pipeline_test import SAMPLE, start_all

REDIS_HOST, REDIS_PORT = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")


# ---- graphs in graph-builder's format ----------------------------------------

def resp(*args):
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def redis_pipe(stack, commands):
    """Sends commands with redis-cli --pipe (errors fail the test)."""
    out = subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", REDIS_PORT, "-n",
                          str(stack.redis_db), "--pipe"], input=b"".join(commands),
                         capture_output=True, check=True).stdout.decode()
    assert "errors: 0" in out, out


def generate(seed, n, extra_edges, city_count=20):
    """A strongly connected graph: a ring both ways plus random edges.
    Returns (nodes {id: (name, city)}, edges [(from, to, minutes, km, type, route)])."""
    rnd = random.Random(seed)
    nodes = {f"s{i}": (f"Stop {i}", f"City {i % city_count}") for i in range(n)}
    ids = list(nodes)
    edges = []
    for i in range(n):
        a, b = ids[i], ids[(i + 1) % n]
        w = rnd.randint(5, 300)
        edges.append((a, b, w, w * 0.8, "BUS", f"ring-{i}"))
        edges.append((b, a, w, w * 0.8, "BUS", f"ring-{i}"))
    have = {(a, b) for a, b, *_ in edges}
    for j in range(extra_edges):
        a, b = rnd.sample(ids, 2)
        if (a, b) in have:  # no parallel edges: networkx's DiGraph would merge them
            continue
        have.add((a, b))
        w = rnd.randint(5, 600)
        edges.append((a, b, w, w * 1.2, rnd.choice(["BUS", "AIR", "TRAIN"]), f"r-{seed}-{j}"))
    return nodes, edges


def write_version(stack, version, nodes, edges, switch=True):
    """The keys of one version, then graph-builder's switch and announcement."""
    out = {n: [] for n in nodes}
    for a, b, w, km, t, r in edges:
        out[a].append({"fromStopId": a, "toStopId": b, "weight": w, "distance": km,
                       "transportType": t, "routeId": r})
    cmds = []
    for n, (name, city) in nodes.items():
        cmds.append(resp("SET", f"graph:{version}:node:{n}",
                         json.dumps({"stopId": n, "stopName": name, "cityName": city},
                                    ensure_ascii=False).encode()))
        cmds.append(resp("SET", f"graph:{version}:neighbors:{n}", json.dumps(out[n]).encode()))
    cmds.append(resp("SADD", f"graph:{version}:nodes", *nodes))
    if switch:
        cmds.append(resp("SET", "graph:version", version))
        cmds.append(resp("PUBLISH", "graph:switched", version))
    redis_pipe(stack, cmds)


def delete_version(stack, version, nodes):
    keys = [f"graph:{version}:nodes"]
    for n in nodes:
        keys += [f"graph:{version}:node:{n}", f"graph:{version}:neighbors:{n}"]
    redis_pipe(stack, [resp("UNLINK", *keys[i:i + 500]) for i in range(0, len(keys), 500)])


def routes(svc, **params):
    return call(svc, "GET", "/api/v1/routes?" + urllib.parse.urlencode(params))


def serving(svc, version, timeout=10):
    def check():
        s, body, _ = call(svc, "GET", "/api/v1/graph")
        return s == 200 and body["graphVersion"] == version
    wait_for(check, timeout, interval=0.05, what=f"route-api to serve {version}")


# ---- the pipeline ------------------------------------------------------------

def test_route_from_a_real_stop_to_a_virtual_city(stack, odata_server):
    orch = start_all(stack, odata_server(SAMPLE, "--quiet"))
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    assert status == 200 and body["success"] is True, body
    version = stack.redis_cli("GET", "graph:version")
    # polling every 10 minutes: only graph-builder's PUBLISH can make it follow
    api = stack.start("route-api", {"ROUTE_API_REFRESH_MS": "600000"})
    serving(api, version)

    dsv = stack.scalar("SELECT max(dataset_version) FROM virtual_stops")
    virtual_cities = [r[0] for r in stack.sql(
        f"SELECT DISTINCT v.city_name FROM virtual_stops v JOIN virtual_routes r "
        f"ON r.dataset_version = v.dataset_version AND r.to_stop_id = v.id "
        f"WHERE v.dataset_version = {dsv} ORDER BY 1")]
    real_stops = [r[0] for r in stack.sql(
        f"SELECT DISTINCT from_stop_id FROM routes WHERE dataset_version = {dsv} ORDER BY 1")]
    assert virtual_cities and real_stops
    city, origin = virtual_cities[0], real_stops[0]
    status, body, hdrs = routes(api, **{"from": origin, "toCity": city, "limit": 3})
    assert status == 200, body
    assert body["graphVersion"] == version == hdrs["X-Graph-Version"]
    for route in body["routes"]:
        legs = route["legs"]
        assert legs[0]["from"] == origin
        assert all(a["to"] == b["from"] for a, b in zip(legs, legs[1:]))
        assert route["totalMinutes"] == pytest.approx(sum(l["minutes"] for l in legs))
        s, stop, _ = call(api, "GET", "/api/v1/stops/" + urllib.parse.quote(legs[-1]["to"]))
        assert s == 200 and stop["stop"]["cityName"] == city
    minutes = [r["totalMinutes"] for r in body["routes"]]
    assert minutes == sorted(minutes)

    status, body, _ = routes(api, **{"from": "no-such-stop", "toCity": city})
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = routes(api, **{"from": origin, "toCity": city, "limit": "x"})
    assert status == 400 and body["success"] is False

    # a forced rebuild: a new version, announced and followed at once
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120&force=true")
    assert status == 200 and body["success"] is True, body
    newer = stack.redis_cli("GET", "graph:version")
    assert newer != version
    serving(api, newer, timeout=5)


# ---- correctness against networkx ---------------------------------------------

@pytest.fixture
def redis_only(stack):
    """The stack fixture's Redis database; no pipeline."""
    return stack


def test_paths_match_networkx(redis_only):
    stack = redis_only
    nodes, edges = generate(seed=7, n=1500, extra_edges=12000)
    nodes["sink"] = ("Sink", "Nowhere")  # reachable, no way out: no path from it
    edges.append(("s0", "sink", 5, 1, "BUS", "to-sink"))
    version = "graph-v1000000000001"
    write_version(stack, version, nodes, edges)
    api = stack.start("route-api", {"HTTP_THREADS": "4"})
    serving(api, version)

    g = nx.DiGraph()
    g.add_weighted_edges_from((a, b, w) for a, b, w, *_ in edges)
    rnd = random.Random(11)
    ids = [n for n in nodes if n != "sink"]
    pairs = [tuple(rnd.sample(ids, 2)) for _ in range(1000)]
    for a, b in pairs:
        status, body, _ = routes(api, **{"from": a, "to": b, "limit": 1})
        assert status == 200, body
        assert body["routes"][0]["totalMinutes"] == nx.bidirectional_dijkstra(g, a, b)[0], (a, b)

    # alternatives: loopless, distinct, in order, and the same minutes as
    # networkx's k shortest simple paths
    for a, b in pairs[:40]:
        status, body, _ = routes(api, **{"from": a, "to": b, "limit": 4})
        assert status == 200
        got = body["routes"]
        stops = [[r["legs"][0]["from"]] + [l["to"] for l in r["legs"]] for r in got]
        assert all(len(s) == len(set(s)) for s in stops)
        assert len({tuple(s) for s in stops}) == len(stops)
        minutes = [r["totalMinutes"] for r in got]
        assert minutes == sorted(minutes)
        want = []
        for path in nx.shortest_simple_paths(g, a, b, weight="weight"):
            want.append(nx.path_weight(g, path, "weight"))
            if len(want) == 4:
                break
        assert minutes == want, (a, b)

    status, body, _ = routes(api, **{"from": "sink", "to": "s1"})
    assert status == 404 and body["error"]["code"] == "no_path"
    status, body, _ = routes(api, **{"from": "s1"})
    assert status == 400
    status, body, _ = call(api, "GET", "/api/v1/stops?query=STOP%2012&limit=5")
    assert status == 200 and 0 < body["count"] <= 5
    assert all("stop 12" in s["stopName"].lower() for s in body["stops"])


# ---- hot swap under load --------------------------------------------------------

def test_hot_swap_under_load(redis_only):
    stack = redis_only
    versions = {}  # version -> {(from, to, routeId): minutes}

    def publish(i):
        nodes, edges = generate(seed=100 + i, n=300, extra_edges=1200)
        v = f"graph-v{2000000000000 + i}"
        write_version(stack, v, nodes, edges)
        versions[v] = ({(a, b, r): w for a, b, w, km, t, r in edges}, nodes)
        return v

    first = publish(0)
    api = stack.start("route-api", {"HTTP_THREADS": "16", "ROUTE_API_REFRESH_MS": "1000"})
    serving(api, first)

    stop = threading.Event()
    answers, errors = [], []

    def client(k):
        rnd = random.Random(k)
        while not stop.is_set():
            a, b = rnd.sample(range(300), 2)
            status, body, hdrs = routes(api, **{"from": f"s{a}", "to": f"s{b}", "limit": 2})
            if status != 200 or body["graphVersion"] != hdrs["X-Graph-Version"]:
                errors.append((status, body))
            else:
                answers.append(body)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(50)]
    for t in threads:
        t.start()
    published = [first]
    try:
        for i in range(1, 23):
            time.sleep(0.15)
            published.append(publish(i))
            if len(published) > 2:  # keep the active and the previous one, like graph-builder
                old = published[-3]
                delete_version(stack, old, versions[old][1])
        serving(api, published[-1], timeout=5)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)

    assert not errors, errors[:3]
    assert len(answers) > 200
    inconsistent = []
    seen = set()
    for body in answers:
        edges = versions[body["graphVersion"]][0]
        seen.add(body["graphVersion"])
        for r in body["routes"]:
            for leg in r["legs"]:
                if edges.get((leg["from"], leg["to"], leg["routeId"])) != leg["minutes"]:
                    inconsistent.append((body["graphVersion"], leg))
    assert not inconsistent, inconsistent[:3]
    assert len(seen) >= 10, sorted(seen)  # answers came from versions all along the swaps


# ---- Redis goes away ------------------------------------------------------------

class Proxy:
    """A TCP proxy to Redis that the test can cut."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns = []
        self.open = True
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while self.open:
            try:
                c, _ = self.server.accept()
            except OSError:
                return
            if not self.open:
                c.close()
                return
            r = socket.create_connection((REDIS_HOST, int(REDIS_PORT)))
            self.conns += [c, r]
            for a, b in ((c, r), (r, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.open = False
        self.server.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_redis_gone_keeps_answering(redis_only):
    stack = redis_only
    nodes, edges = generate(seed=3, n=50, extra_edges=100)
    version = "graph-v3000000000000"
    write_version(stack, version, nodes, edges)
    proxy = Proxy()
    api = stack.start("route-api", {
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{stack.redis_db}",
        "ROUTE_API_REFRESH_MS": "200"})
    serving(api, version)
    proxy.cut()

    def redis_down():
        s, body, _ = call(api, "GET", "/readyz")
        assert body, (s, body)
        return s == 200 and body["dependencies"]["redis"] != "ok" and body
    ready = wait_for(redis_down, 10, interval=0.1, what="/readyz to report Redis down")
    assert version in ready["dependencies"]["redis"]
    status, body, _ = routes(api, **{"from": "s1", "to": "s20"})
    assert status == 200 and body["graphVersion"] == version
    # A request is counted once its answer is written: a scrape right after
    # the answer may come a moment before the count.
    counted = 'route_api_requests_total{route="/api/v1/routes",status="200"}'

    def scrape():
        with urllib.request.urlopen(api.url("/metrics"), timeout=5) as r:
            text = r.read().decode()
        return counted in text and text
    metrics = wait_for(scrape, 5, interval=0.05, what="the request to be counted")
    assert "route_api_redis_up 0" in metrics
