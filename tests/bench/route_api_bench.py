"""route-api's benchmark (issue 15): on generated graphs of the
specification's largest size (5,250 stops, ~100,000 edges) times a scale,
written to Redis in graph-builder's format:
  - the path search inside the process (tests/bench/route_bench.c): load time,
    memory of the loaded graph, fastest path and 3 alternatives, median/p99;
  - the service: load time it reports, resident memory, and
    GET /api/v1/routes under wrk (100 connections, random pairs).

  STACK_DIR=... TG_BUILD_DIR=build python3 tests/bench/route_api_bench.py \\
      [--scales 1,2,4,8] [--db 13] [--seconds 5]

Uses Redis database --db of the stack (flushed before and after)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import route_api_test as rt  # noqa: E402  (graph generation and writing)
from conftest import BUILD_DIR, STACK, free_port  # noqa: E402

WRK_LUA = """
math.randomseed(7)
request = function()
  local a = math.random(0, %d)
  local b = math.random(0, %d)
  if a == b then b = (b + 1) %% %d end
  return wrk.format("GET", "/api/v1/routes?from=s" .. a .. "&to=s" .. b .. "&limit=%d")
end
"""


class Db:
    def __init__(self, n):
        self.redis_db = n


def redis(db, *args):
    subprocess.run(["redis-cli", "-h", rt.REDIS_HOST, "-p", rt.REDIS_PORT, "-n", str(db), *args],
                   check=True, capture_output=True)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def wrk(port, nodes, limit, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_LUA % (nodes - 1, nodes - 1, nodes, limit))
    out = subprocess.run(["wrk", "-t2", "-c100", f"-d{seconds}s", "--latency", "-s", f.name,
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True).stdout
    os.unlink(f.name)

    def ms(label):
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return None
        return float(m.group(1)) * {"us": 1e-3, "ms": 1, "s": 1e3}[m.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"p50": ms("50%"), "p99": ms("99%"), "rps": float(rps.group(1)) if rps else None,
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "socketErrors": errors.group(1) if errors else "-"}


def one_scale(scale, db, seconds):
    n = 5250 * scale
    nodes, edges = rt.generate(seed=scale, n=n, extra_edges=100000 * scale - 2 * n,
                               city_count=500 * scale)
    version = f"graph-v{int(time.time() * 1000)}"
    redis(db, "FLUSHDB")
    rt.write_version(Db(db), version, nodes, edges)
    url = f"{STACK['REDIS_URL'].rsplit('/', 1)[0]}/{db}"
    env = dict(os.environ, REDIS_URL=url)
    inside = json.loads(subprocess.run([os.path.join(BUILD_DIR, "tests", "route_bench"), "1000"],
                                       env=env, check=True, capture_output=True,
                                       text=True).stdout)
    port = free_port()
    proc = subprocess.Popen([os.path.join(BUILD_DIR, "services", "route-api", "route-api")],
                            env=dict(env, HTTP_PORT=str(port), HTTP_THREADS="128",
                                     HTTP_KEEP_ALIVE="yes", LOG_LEVEL="warn"))
    graph = None
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/graph") as r:
                    graph = json.load(r)
                break
            except OSError as e:
                why = e
                time.sleep(0.1)
        assert graph, f"route-api did not load the graph: {why}"
        rss = rss_kb(proc.pid)
        http = {k: wrk(port, n, k, seconds) for k in (1, 3)}
    finally:
        proc.terminate()
        proc.wait(10)
    redis(db, "FLUSHDB")
    return {"scale": scale, "nodes": inside["nodes"], "edges": inside["edges"],
            "inside": inside, "serviceLoadMs": graph["loadMs"], "serviceRssKb": rss,
            "http": http}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,2,4,8")
    ap.add_argument("--db", type=int, default=13)
    ap.add_argument("--seconds", type=int, default=5)
    args = ap.parse_args()
    rows = [one_scale(int(s), args.db, args.seconds) for s in args.scales.split(",")]
    print("| scale | stops | edges | load (service) | graph memory | service RSS | "
          "search k=1 median / p99 | search k=3 median / p99 | "
          "HTTP k=1 p50 / p99 (req/s) | HTTP k=3 p50 / p99 (req/s) | non-2xx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        i, h1, h3 = r["inside"], r["http"][1], r["http"][3]
        print(f"| {r['scale']} | {r['nodes']} | {r['edges']} | {r['serviceLoadMs']:.0f} ms | "
              f"{i['graphKb'] / 1024:.1f} MB | {r['serviceRssKb'] / 1024:.1f} MB | "
              f"{i['k1']['median']:.2f} / {i['k1']['p99']:.2f} ms | "
              f"{i['k3']['median']:.2f} / {i['k3']['p99']:.2f} ms | "
              f"{h1['p50']} / {h1['p99']} ms ({h1['rps']:.0f}) | "
              f"{h3['p50']} / {h3['p99']} ms ({h3['rps']:.0f}) | "
              f"{h1['non2xx'] + h3['non2xx']} |")
    print(json.dumps(rows), file=sys.stderr)


if __name__ == "__main__":
    main()
