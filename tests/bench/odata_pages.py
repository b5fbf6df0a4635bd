#!/usr/bin/env python3
"""The benchmark's OData source, prepared once per dataset: every page that
odata-sync-worker asks of tests/odata/odata_server.py (OData v4, the default
data contract, pages of 1,000, absolute next links), rendered to a file with
the server's own serialisation, for tests/bench/odata_pages.c to serve with
one lookup per request. Also the fetch floor: the same pages read by a plain
HTTP client, one keep-alive connection, following the next links.

    odata_pages.py render --data DIR --out DIR [--mapping FILE] [--page-size 1000]
    odata_pages.py compare --pages DIR --url URL_A --url URL_B
    odata_pages.py fetch --pages DIR --url URL

The pages hold the placeholder HOST_TOKEN where the Python server writes the
request's Host header; index.tsv lists one page a line: the request target
(path?query, as the worker sends it), the file, and the byte offsets of the
placeholder in it. starts.tsv lists the first target of each entity set.
"""
import argparse
import http.client
import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SOURCE, "tests", "odata"))

import odata_server  # noqa: E402  (its loader and its JSON serialisation)

HOST_TOKEN = "@HOST@"
PREFIX = "/odata"
MAPPING = os.path.join(SOURCE, "services", "odata-sync-worker", "mappings", "default.json")
KINDS = (("stops", "Stops"), ("routes", "Routes"), ("flights", "Flights"))


def selects(mapping_path):
    """The $select of each entity set, as the worker builds it from its
    mapping: the contract properties in the mapping's order."""
    with open(mapping_path, encoding="utf-8") as f:
        m = json.load(f)
    if not m.get("select", True) or m.get("paging", {}).get("mode", "server") != "server":
        raise SystemExit("odata_pages: %s: only server paging with $select is pre-rendered"
                         % mapping_path)
    out = {}
    for kind, contract in KINDS:
        ent = m["entities"][kind]
        if ent["entitySet"] != contract or ent.get("exclude"):
            raise SystemExit("odata_pages: %s: %s must be the contract's %s without exclude"
                             % (mapping_path, kind, contract))
        out[contract] = list(ent["fields"].values())
    return out


def query_string(pairs):
    """What odata_server.py writes into a next link (Handler._link)."""
    return "&".join("%s=%s" % (urllib.parse.quote(k, safe="$"),
                               urllib.parse.quote(v, safe="$,'()*:")) for k, v in pairs)


def render_set(out_dir, contract, select, items, page_size, index):
    """Writes the pages of one entity set as odata_server.py answers them
    (Handler._collection: v4, default naming, no $count, iso dates)."""
    base = "http://%s%s" % (HOST_TOKEN, PREFIX)
    public = urllib.parse.quote(contract)
    first = [("$select", ",".join(select))]
    ctx = "%s/$metadata#%s(%s)" % (base, contract, ",".join(select))
    start = 0
    while True:
        page = items[start:start + page_size]
        obj = {"@odata.context": ctx, "value": [{k: e.get(k) for k in select} for e in page]}
        if start + page_size < len(items):
            obj["@odata.nextLink"] = "%s/%s?%s" % (
                base, public, query_string(first + [("$skiptoken", str(start + page_size))]))
        body = odata_server.json_bytes(obj)
        token = HOST_TOKEN.encode()
        offsets, at = [], body.find(token)
        while at >= 0:
            offsets.append(at)
            at = body.find(token, at + len(token))
        if len(offsets) != (2 if "@odata.nextLink" in obj else 1):
            raise SystemExit("odata_pages: %s page at %d: %s occurs in the data"
                             % (contract, start, HOST_TOKEN))
        name = "%s-%09d.json" % (contract, start)
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(body)
        pairs = first + ([("$skiptoken", str(start))] if start else [])
        index.append((PREFIX + "/" + public + "?" + query_string(pairs), name,
                      ",".join(str(o) for o in offsets)))
        start += page_size
        if start >= len(items):
            return


def render(args):
    t0 = time.time()
    sel = selects(args.mapping)
    tmp = args.out.rstrip("/") + ".tmp"
    if os.path.exists(tmp):
        for name in os.listdir(tmp):
            os.remove(os.path.join(tmp, name))
    os.makedirs(tmp, exist_ok=True)
    index, starts = [], []
    for _, contract in KINDS:  # one set in memory at a time
        path = os.path.join(args.data, odata_server.FILES[contract])
        with open(path, encoding="utf-8") as f:
            items = json.load(f)
        if isinstance(items, dict):
            items = items.get("value", [])
        n0 = len(index)
        render_set(tmp, contract, sel[contract], items, args.page_size, index)
        starts.append((contract, index[n0][0], len(items)))
        del items
    with open(os.path.join(tmp, "index.tsv"), "w", encoding="utf-8") as f:
        f.writelines("%s\t%s\t%s\n" % row for row in index)
    with open(os.path.join(tmp, "starts.tsv"), "w", encoding="utf-8") as f:
        f.writelines("%s\t%s\t%d\n" % row for row in starts)
    if os.path.exists(args.out):
        for name in os.listdir(args.out):
            os.remove(os.path.join(args.out, name))
        os.rmdir(args.out)
    os.replace(tmp, args.out)
    print("odata_pages: %d pages in %s (%.1f s)" % (len(index), args.out, time.time() - t0))
    return 0


# ---- a plain HTTP client: one keep-alive connection, next links followed --

def starts_of(pages_dir):
    with open(os.path.join(pages_dir, "starts.tsv"), encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def next_link(body):
    """The page's @odata.nextLink: the last property the server writes."""
    key = b'"@odata.nextLink":"'
    at = body.rfind(key, max(0, len(body) - 4096))
    if at < 0:
        return None
    end = body.index(b'"', at + len(key))
    return body[at + len(key):end].decode()


def walk(url, pages_dir, on_page):
    """GETs every page of every entity set from the server at url (its
    origin), in the worker's order, on one connection; on_page(target, body)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=60)
    headers = {"Accept": "application/json"}
    pages = size = 0
    try:
        for _, target, _ in starts_of(pages_dir):
            while target:
                conn.request("GET", target, headers=headers)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise RuntimeError("GET %s: HTTP %d: %s" % (target, r.status, body[:200]))
                on_page(target, body)
                pages += 1
                size += len(body)
                link = next_link(body)
                target = None
                if link:
                    nx = urllib.parse.urlsplit(link)
                    target = nx.path + ("?" + nx.query if nx.query else "")
    finally:
        conn.close()
    return pages, size


def fetch_floor(url, pages_dir):
    """Milliseconds to read every page with a plain HTTP client."""
    t0 = time.perf_counter()
    pages, size = walk(url, pages_dir, lambda target, body: None)
    return {"ms": (time.perf_counter() - t0) * 1000.0, "pages": pages, "bytes": size}


def compare(url_a, url_b, pages_dir):
    """Walks both servers and compares every page byte for byte, with the
    other server's Host written where the first one wrote its own."""
    got = {}
    host_a = urllib.parse.urlsplit(url_a).netloc
    host_b = urllib.parse.urlsplit(url_b).netloc
    walk(url_a, pages_dir, lambda t, body: got.__setitem__(t, body.replace(
        host_a.encode(), HOST_TOKEN.encode())))
    diffs = []

    def check(t, body):
        if got.pop(t, None) != body.replace(host_b.encode(), HOST_TOKEN.encode()):
            diffs.append(t)
    pages, _ = walk(url_b, pages_dir, check)
    diffs += sorted(got)
    return {"pages": pages, "different": diffs}


def main(argv=None):
    ap = argparse.ArgumentParser(description="pre-rendered OData pages for the benchmark")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render")
    r.add_argument("--data", required=True, help="folder of gen_dataset.py")
    r.add_argument("--out", required=True)
    r.add_argument("--mapping", default=MAPPING)
    r.add_argument("--page-size", type=int, default=1000)
    c = sub.add_parser("compare")
    c.add_argument("--pages", required=True)
    c.add_argument("--url", action="append", required=True, help="two servers' origins")
    f = sub.add_parser("fetch")
    f.add_argument("--pages", required=True)
    f.add_argument("--url", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "render":
        return render(args)
    if args.cmd == "compare":
        res = compare(args.url[0], args.url[1], args.pages)
        print(json.dumps(res))
        return 1 if res["different"] else 0
    print(json.dumps(fetch_floor(args.url, args.pages)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
