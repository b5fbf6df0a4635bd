#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Deterministic benchmark dataset generator (Python 3 standard library only).

    python3 tests/odata/gen_dataset.py --scale K --out DIR [--seed S]
        [--cities deploy/sample-data/cities.csv] [--stops N] [--routes N]
        [--flights N] [--virtual-cities N] [--edges N] [--transfer-max-stops N]
        [--start 2026-12-01] [--days 14] [--no-name-variants]

Writes, in the default data contract (the format odata_server.py --data reads):
    DIR/stops.json     5,000 x K real stops (Id stop-000001 ...)
    DIR/routes.json    as many routes as make the graph reach --edges (below;
                       about 46,000 at K=1), in pairs: every route has its
                       reverse with the next Id
    DIR/flights.json   one flight per route plus 20,000 x K more, between
                       --start and --start + --days
    DIR/cities.csv     name,district,latitude,longitude,population: every city
                       that has stops (all cities of --cities, Якутск included,
                       plus generated settlements) and 250 x K extra generated
                       cities with NO stop (=> 250 x K virtual stops and
                       500 x K hub routes when the hub is Якутск)
    DIR/manifest.json  the counts and parameters, and the graph they make
                       (expected nodes, transfer edges and edges)

How many routes: the specification's largest graph is about 5,000 nodes and
100,000 edges, and scale K aims at 100,000 x K edges (--edges) under the graph
model of services/graph-builder/README.md: one directed edge per route and per
virtual route, plus a TRANSFER edge each way between every two stops of one
city, for cities of at most --transfer-max-stops stops (graph-builder's
GRAPH_TRANSFER_MAX_STOPS, default 30; 0 = transfers off).  The generator places
the stops first, counts the transfer edges they make (k stops of a city make
k(k-1)), and fills the rest with routes:
    routes = edges - 2 x virtual cities - transfer edges
At K=1 that is 100,000 - 500 - 53,420 = 46,080 routes.  Transfers grow a
little faster than the stops (bigger cities at larger K), so routes per scale
unit fall slowly with K while nodes and edges stay linear.  An explicit
--routes (as before: 12,000 x K was the old default) or --flights wins.

A graph of S stops in which every route has its reverse is connected only
with at least 2 x (S - 1) routes (a spanning tree, 9,998 for 5,000 stops).
The generator builds such a spanning tree (stops of a city joined by local
BUS routes, cities joined to a nearby city by BUS/RIVER/RAIL/AIR) and adds
random extra pairs (to neighbours, to Якутск by air, inside a city) up to the
route count.  Fewer than 2 x (S - 1) routes is refused.

Stops are spread over the cities of --cities (Якутск gets the most) and over
generated settlement-like names with coordinates near real Yakutia settlements,
clipped to lat 56-73, lon 105-163.  About 3% of stops write their CityName
with a "г. " prefix (towns) or with е instead of ё, to exercise name
normalisation; --no-name-variants turns that off.  Same arguments, same bytes.
"""

import argparse
import csv
import datetime as dt
import json
import math
import os
import random
import sys

LAT_MIN, LAT_MAX, LON_MIN, LON_MAX = 56.0, 73.0, 105.0, 163.0
HUB = "Якутск"
TZ = dt.timezone(dt.timedelta(hours=9))
RAIL_CITIES = ("Нижний Бестях", "Томмот", "Алдан", "Нерюнгри", "Беркакит")  # in line order
# the 13 towns (города) of the republic: only these get a "г. " CityName variant
TOWNS = ("Якутск", "Нерюнгри", "Мирный", "Ленск", "Алдан", "Удачный", "Нюрба", "Покровск",
         "Вилюйск", "Олёкминск", "Томмот", "Среднеколымск", "Верхоянск")
# type: (distance factor, speed km/h, overhead min, fare base, fare per km)
PAR = {"AIR": (1.0, 480, 25, 2500, 15.0), "BUS": (1.3, 60, 10, 100, 5.0),
       "RAIL": (1.25, 55, 15, 350, 2.6), "RIVER": (1.2, 38, 20, 300, 5.5)}
TNAME = {"AIR": "авиа", "BUS": "автобус", "RAIL": "поезд", "RIVER": "теплоход"}
SEATS = {"AIR": (12, 60), "BUS": (8, 45), "RAIL": (40, 320), "RIVER": (20, 110)}
# flights per route weight by kind (local routes get fewer)
FLIGHT_WEIGHT = {"local": 1.0, "BUS": 3.0, "RIVER": 1.5, "RAIL": 2.0, "AIR": 3.0}

NAME_A = ["Арга", "Бес", "Бютей", "Кыыл", "Сыл", "Тала", "Тумул", "Хатын", "Чэчир",
          "Ымыы", "Алаас", "Сасыл", "Кэнг", "Мэйиик", "Уолба", "Чай", "Тойон", "Бэрдь",
          "Кюнг", "Сиэн", "Хомус", "Кулун", "Мурун", "Туой", "Хайа", "Эбэ", "Юрюнг",
          "Улахан", "Кыра", "Хара", "Суор", "Таас", "Болугур", "Сыырдаах", "Дьёккён",
          "Оттох", "Хатас", "Кёр", "Тыайа", "Сулгачы", "Бёрё", "Чуор", "Элгээ", "Мугур",
          "Быйан", "Арыылаах", "Кэбээйи", "Сэбэнг", "Лёгёй", "Мэндиги"]
NAME_B = ["Кюёль", "Хая", "Тала", "Юрях", "Сала", "Арыы", "Алаас", "Бас", "Сыр",
          "Тумул", "Эбэ", "Ытар", "Хаты", "Сяне", "Мэнэ", "Тит", "Урэх", "Кэлэ", "Дьёгё",
          "Ыал", "Кюндэ", "Бют", "Элэх", "Тёбё", "Бэлир", "Орто", "Тамах", "Олох",
          "Хонну", "Сысы"]
NAME_SUFFIX = ["лах", "нах", "тах", "дах", "чан"]
NAME_RU = ["Михайловка", "Покровка", "Октябрьский", "Солнечный", "Таёжный", "Лесной",
           "Кировский", "Комсомольский", "Заречный", "Рассвет", "Первомайский",
           "Весёлый", "Северный", "Снежный", "Кедровый", "Рудный", "Звёздный",
           "Надежда", "Берёзовка", "Родники", "Полярный", "Озёрный"]
STOP_BASE = ["Центр", "Школа", "Больница", "Почта", "Администрация", "Магазин",
             "Рынок", "Стадион", "Детский сад", "Дом культуры", "Библиотека", "Поворот",
             "Мост", "Нефтебаза", "АЗС", "Котельная", "Пристань", "Аэропорт",
             "Гараж", "Баня", "Ферма", "Лесхоз", "Совхоз", "Переправа", "Вокзал"]
STREETS = ["Ленина", "Октябрьская", "Советская", "Молодёжная", "Лесная", "Набережная",
           "Строителей", "Мира", "Комсомольская", "Пушкина", "Новая", "Полярная",
           "Северная", "Школьная", "Геологов", "Кирова", "Речная", "Аммосова",
           "Ойунского", "Кулаковского", "Чернышевского", "Горького", "Гагарина",
           "Победы", "Якутская"]


def norm(name):
    """What a normaliser is expected to do: case, ё/е, "г. " prefix, and
    spaces/hyphens as one word break."""
    n = name.strip().lower().replace("ё", "е")
    for p in ("г. ", "г.", "пгт ", "с. ", "п. "):
        if n.startswith(p):
            n = n[len(p):].strip()
    return " ".join(n.replace("-", " ").split())


TRANSLIT = ["a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
            "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"]


def slug(name):
    """ASCII slug of a normalised name (virtual ids are built from it): two
    generated cities never share one."""
    out = []
    for word in norm(name).split():
        w = "".join(TRANSLIT[ord(ch) - 0x430] if 0x430 <= ord(ch) <= 0x44F else
                    (ch if ch.isascii() and ch.isalnum() else " ") for ch in word)
        out += w.split()
    return "-".join(out)


def hav(a, b):
    la1, lo1, la2, lo2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((la2 - la1) / 2) ** 2 + \
        math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def clip(lat, lon):
    return (round(min(LAT_MAX - 0.05, max(LAT_MIN + 0.05, lat)), 5),
            round(min(LON_MAX - 0.05, max(LON_MIN + 0.05, lon)), 5))


def read_cities(path):
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            pop = row.get("population", "").strip()
            out.append({"name": row["name"].strip(), "district": row["district"].strip(),
                        "lat": float(row["latitude"]), "lon": float(row["longitude"]),
                        "population": int(pop) if pop else None, "real": True})
    if not any(c["name"] == HUB for c in out):
        raise SystemExit("gen_dataset: %s must list %s (the hub)" % (path, HUB))
    return out


class NameGen:
    def __init__(self, rnd, taken):
        self.rnd = rnd
        self.taken = set()
        for t in taken:
            self.taken.add(norm(t))
            self.taken.add("slug:" + slug(t))
        pool = ["%s-%s" % (a, b) for a in NAME_A for b in NAME_B if a != b]
        pool += [a + s for a in NAME_A for s in NAME_SUFFIX if not a.endswith(s[-2:])]
        pool += ["Усть-" + b for b in NAME_B]
        pool += NAME_RU
        rnd.shuffle(pool)
        self.pool = pool
        self.i = 0
        self.round = 0

    def next(self):
        while True:
            if self.i >= len(self.pool):
                self.i = 0
                self.round += 1
            base = self.pool[self.i]
            self.i += 1
            name = base if self.round == 0 else "%d-й %s" % (self.round, base)
            if norm(name) not in self.taken and "slug:" + slug(name) not in self.taken:
                self.taken.add(norm(name))
                self.taken.add("slug:" + slug(name))
                return name


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every count (default 1)")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cities", default=os.path.normpath(
        os.path.join(here, "..", "..", "deploy", "sample-data", "cities.csv")))
    ap.add_argument("--stops", type=int, help="default 5000 x scale")
    ap.add_argument("--routes", type=int,
                    help="default: what reaches --edges (even, >= 2 x (stops-1))")
    ap.add_argument("--flights", type=int, help="default routes + 20000 x scale")
    ap.add_argument("--edges", type=int, help="graph edges to aim at, default 100000 x scale")
    ap.add_argument("--transfer-max-stops", type=int, default=30,
                    help="graph-builder's GRAPH_TRANSFER_MAX_STOPS (0 = no transfer edges)")
    ap.add_argument("--virtual-cities", type=int, help="cities with no stop, default 250 x scale")
    ap.add_argument("--start", default="2026-12-01", help="first flight day (Yakutsk time)")
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--no-name-variants", action="store_true")
    a = ap.parse_args(argv)
    K = a.scale
    n_stops = a.stops if a.stops is not None else int(round(5000 * K))
    n_virtual = a.virtual_cities if a.virtual_cities is not None else int(round(250 * K))
    n_edges = a.edges if a.edges is not None else int(round(100000 * K))
    if n_stops < 2:
        ap.error("need at least 2 stops")
    start = dt.datetime.strptime(a.start, "%Y-%m-%d").replace(tzinfo=TZ)
    rnd = random.Random(a.seed)

    real = read_cities(a.cities)
    names = NameGen(rnd, [c["name"] for c in real])
    # generated cities that get stops: about one per 12.5 stops overall
    n_gen = max(0, int(round(n_stops / 12.5)) - len(real))
    n_gen = min(n_gen, n_stops - len(real)) if n_stops > len(real) else 0

    def gen_city():
        anchor = rnd.choice(real)
        lat, lon = clip(anchor["lat"] + rnd.gauss(0, 0.8), anchor["lon"] + rnd.gauss(0, 1.6))
        pop = rnd.choice([None, rnd.randint(40, 900), rnd.randint(200, 3500)])
        return {"name": names.next(), "district": anchor["district"], "lat": lat, "lon": lon,
                "population": pop, "real": False}
    gen = [gen_city() for _ in range(n_gen)]
    virtual = [gen_city() for _ in range(n_virtual)]
    cities = list(real) + gen      # cities that get stops (if n_stops >= their count)
    if n_stops < len(cities):
        cities = [c for c in cities if c["name"] == HUB] + \
            [c for c in cities if c["name"] != HUB][:n_stops - 1]

    # --- stops: at least one per city, the rest by weight ---
    def weight(c):
        if c["real"]:
            return max(2.0, (c["population"] or 1500) / 1000.0) ** 0.7
        return rnd.uniform(0.5, 3.0)
    w = [weight(c) for c in cities]
    per = [1] * len(cities)
    for i in rnd.choices(range(len(cities)), weights=w, k=n_stops - len(cities)):
        per[i] += 1
    stops, city_stops = [], []
    width = max(6, len(str(n_stops)))
    for ci, c in enumerate(cities):
        sig = 0.03 if c["name"] == HUB else (0.012 if c["real"] else 0.006)
        used, idx = set(), []
        for k in range(per[ci]):
            if k == 0:
                sname = "Автостанция %s" % c["name"]
                lat, lon = c["lat"], c["lon"]
            else:
                lat, lon = clip(c["lat"] + rnd.gauss(0, sig), c["lon"] + rnd.gauss(0, sig * 2))
                sname = None
                for _ in range(4):
                    b = rnd.choice(STOP_BASE)
                    if b not in used:
                        sname = b
                        break
                if sname is None:
                    sname = "ул. %s, %d" % (rnd.choice(STREETS), rnd.randint(1, 120))
                    while sname in used:
                        sname = "ул. %s, %d" % (rnd.choice(STREETS), rnd.randint(1, 300))
            used.add(sname)
            city_name = c["name"]
            if not a.no_name_variants and rnd.random() < 0.03:
                if "ё" in city_name:
                    city_name = city_name.replace("ё", "е")
                elif c["real"] and c["name"] in TOWNS:
                    city_name = "г. " + city_name
            idx.append(len(stops))
            stops.append({"Id": "stop-%0*d" % (width, len(stops) + 1), "Name": sname,
                          "CityName": city_name, "Latitude": lat, "Longitude": lon})
        city_stops.append(idx)
    # --- how many routes and flights: the edges the stops leave to routes ---
    n_transfer = sum(len(idx) * (len(idx) - 1) for idx in city_stops
                     if len(idx) <= a.transfer_max_stops)
    min_routes = 2 * (n_stops - 1)
    if a.routes is not None:
        n_routes = a.routes
    else:
        n_routes = max(min_routes, n_edges - 2 * n_virtual - n_transfer)
    n_routes += n_routes % 2
    n_flights = a.flights if a.flights is not None else n_routes + int(round(20000 * K))
    if n_routes < min_routes:
        ap.error("--routes %d cannot connect %d stops with reverse routes (need >= %d)"
                 % (n_routes, n_stops, min_routes))
    if n_flights < n_routes:
        ap.error("--flights must be >= routes (every route gets a flight)")
    pos = [(s["Latitude"], s["Longitude"]) for s in stops]
    city_of = {}
    for ci, idx in enumerate(city_stops):
        for i in idx:
            city_of[i] = ci

    # --- routes ---
    routes, pairs = [], set()

    def add_pair(i, j, t):
        key = (min(i, j), max(i, j))
        if i == j or key in pairs:
            return False
        pairs.add(key)
        local = city_of[i] == city_of[j]
        for f, to in ((i, j), (j, i)):
            fac, spd, over, base, perkm = PAR[t]
            d = hav(pos[f], pos[to]) * fac
            if local:
                d = max(d, 0.8)
                dur, fare = int(5 + d * 2.5), 45.0
                name = "%s: %s — %s" % (cities[city_of[f]]["name"], stops[f]["Name"], stops[to]["Name"])
            else:
                dur = max(10, int(round((over + d / spd * 60) / 5.0) * 5))
                fare = max(100.0, round((base + perkm * d) / 50.0) * 50.0)
                name = "%s — %s (%s)" % (cities[city_of[f]]["name"], cities[city_of[to]]["name"], TNAME[t])
            routes.append({"Id": "route-%0*d" % (max(6, len(str(n_routes))), len(routes) + 1),
                           "Name": name, "FromStopId": stops[f]["Id"], "ToStopId": stops[to]["Id"],
                           "TransportType": t, "DurationMinutes": dur,
                           "DistanceKm": round(d, 1), "Fare": fare, "_local": local})
        return True

    def intercity_type(ca, cb, d):
        if ca["name"] in RAIL_CITIES and cb["name"] in RAIL_CITIES:
            return "RAIL"
        if d > 400:
            return "AIR"
        r = rnd.random()
        if d > 200:
            return "AIR" if r < 0.5 else ("BUS" if r < 0.8 else "RIVER")
        return "BUS" if r < 0.8 else "RIVER"

    # spanning tree inside each city
    for idx in city_stops:
        for k in range(1, len(idx)):
            cand = rnd.sample(idx[:k], min(k, 6))
            j = min(cand, key=lambda x: hav(pos[idx[k]], pos[x]))
            add_pair(idx[k], j, "BUS")
    # spanning tree over cities: the hub first, each next city to a near earlier one
    hub_ci = next(i for i, c in enumerate(cities) if c["name"] == HUB)
    rest = [i for i in range(len(cities)) if i != hub_ci]
    rnd.shuffle(rest)
    order = [hub_ci] + rest
    cpos = [(c["lat"], c["lon"]) for c in cities]
    for k in range(1, len(order)):
        ci = order[k]
        cand = order[:k] if k <= 64 else rnd.sample(order[:k], 64)
        cj = min(cand, key=lambda x: hav(cpos[ci], cpos[x]))
        d = hav(cpos[ci], cpos[cj])
        add_pair(city_stops[ci][0], city_stops[cj][0], intercity_type(cities[ci], cities[cj], d))
    # the Amur-Yakutsk railway between the rail cities that have stops
    rail = [next(i for i, c in enumerate(cities) if c["name"] == n) for n in RAIL_CITIES
            if any(c["name"] == n for c in cities)]
    for ci, cj in zip(rail, rail[1:]):
        if len(routes) + 2 <= n_routes:
            add_pair(city_stops[ci][0], city_stops[cj][0], "RAIL")
    # extras up to n_routes
    hub_stop = city_stops[hub_ci][0]
    multi = [i for i, idx in enumerate(city_stops) if len(idx) >= 3]
    guard = 0
    while len(routes) < n_routes and guard < 50 * n_routes:
        guard += 1
        r = rnd.random()
        if r < 0.5:
            ci = rnd.randrange(len(cities))
            cand = rnd.sample(range(len(cities)), min(len(cities), 24))
            cand = sorted((x for x in cand if x != ci), key=lambda x: hav(cpos[ci], cpos[x]))[:3]
            if not cand:
                continue
            cj = rnd.choice(cand)
            d = hav(cpos[ci], cpos[cj])
            add_pair(rnd.choice(city_stops[ci]), rnd.choice(city_stops[cj]),
                     intercity_type(cities[ci], cities[cj], d))
        elif r < 0.75:
            ci = rnd.randrange(len(cities))
            if ci != hub_ci:
                add_pair(city_stops[ci][0], hub_stop, "AIR")
        elif multi:
            idx = city_stops[rnd.choice(multi)]
            i, j = rnd.sample(idx, 2)
            add_pair(i, j, "BUS")
    if len(routes) < n_routes:
        raise SystemExit("gen_dataset: could not place %d routes (placed %d); use fewer"
                         % (n_routes, len(routes)))

    # --- flights: one per route, the rest weighted ---
    def fw(rt):
        return FLIGHT_WEIGHT["local" if rt["_local"] else rt["TransportType"]]
    per_route = [1] * len(routes)
    for i in rnd.choices(range(len(routes)), weights=[fw(rt) for rt in routes],
                         k=n_flights - len(routes)):
        per_route[i] += 1
    flights = []
    fwidth = max(7, len(str(n_flights)))
    for ri, rt in enumerate(routes):
        for _ in range(per_route[ri]):
            dep = start + dt.timedelta(days=rnd.randrange(a.days), hours=rnd.randint(6, 22),
                                       minutes=5 * rnd.randrange(12))
            arr = dep + dt.timedelta(minutes=rt["DurationMinutes"] + 5 * rnd.randint(0, 3))
            lo, hi = SEATS[rt["TransportType"]]
            flights.append({"Id": "flight-%0*d" % (fwidth, len(flights) + 1), "RouteId": rt["Id"],
                            "FromStopId": rt["FromStopId"], "ToStopId": rt["ToStopId"],
                            "DepartureTime": dep.isoformat(), "ArrivalTime": arr.isoformat(),
                            "AvailableSeats": rnd.randint(lo, hi)})
    for rt in routes:
        del rt["_local"]

    # --- write ---
    os.makedirs(a.out, exist_ok=True)

    def dump(name, items):
        tmp = os.path.join(a.out, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("[\n")
            fh.write(",\n".join(json.dumps(x, ensure_ascii=False) for x in items))
            fh.write("\n]\n")
        os.replace(tmp, os.path.join(a.out, name))
    dump("stops.json", stops)
    dump("routes.json", routes)
    dump("flights.json", flights)
    all_cities = list(real) + gen + virtual
    with open(os.path.join(a.out, "cities.csv"), "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh, lineterminator="\n")
        wr.writerow(["name", "district", "latitude", "longitude", "population"])
        for c in all_cities:
            wr.writerow([c["name"], c["district"], "%.4f" % c["lat"], "%.4f" % c["lon"],
                         "" if c["population"] is None else c["population"]])
    with_stops = len(cities)
    no_stop = len(all_cities) - with_stops
    manifest = {"seed": a.seed, "scale": K, "start": a.start, "days": a.days,
                "stops": len(stops), "routes": len(routes), "flights": len(flights),
                "cities": len(all_cities), "cities_with_stops": with_stops,
                "cities_without_stops": no_stop, "hub": HUB,
                "expected_virtual_stops": no_stop, "expected_hub_routes": 2 * no_stop,
                "transfer_max_stops": a.transfer_max_stops,
                "expected_nodes": len(stops) + no_stop,
                "expected_transfer_edges": n_transfer,
                "expected_edges": len(routes) + 2 * no_stop + n_transfer,
                "name_variants": not a.no_name_variants}
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, ensure_ascii=False, indent=1)
        fh.write("\n")
    print("stops=%d routes=%d flights=%d cities=%d cities_with_stops=%d cities_without_stops=%d "
          "(virtual stops=%d, hub routes=%d; graph nodes=%d edges=%d of which transfers=%d) "
          "out=%s" % (len(stops), len(routes), len(flights), len(all_cities), with_stops,
                      no_stop, no_stop, 2 * no_stop, manifest["expected_nodes"],
                      manifest["expected_edges"], n_transfer, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
