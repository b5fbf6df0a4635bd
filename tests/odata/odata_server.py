#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Local OData test/sample server (Python 3 standard library only).

Serves the transport network of the default data contract from a folder with
stops.json, routes.json and flights.json (JSON arrays of entities), in OData
v4, v3 or v2 shape, with server-driven or client-driven paging, optional gzip,
basic/bearer auth, and a control endpoint to inject faults at run time.

USAGE
    python3 tests/odata/odata_server.py [--host 127.0.0.1] [--port 8089]
        [--data DIR] [--page-size 1000] [--dialect v4|v3|v2]
        [--naming default|1c] [--relative-links] [--no-next-links] [--gzip]
        [--user U --password P] [--token T] [--numbers-as-strings]
        [--date-format auto|iso|ms|local] [--public-url URL]
        [--port-file FILE] [--quiet]

    --port 0 picks a free port; the chosen port is printed on stderr
    ("listening on http://HOST:PORT/odata") and written to --port-file.
    --data defaults to deploy/sample-data/odata of this repository.
    --public-url overrides scheme://host:port used in absolute next links
    (default: http:// + the request's Host header).

URLS (the optional "standard.odata/" segment is accepted, as 1C publishes it:
/odata/standard.odata/Catalog_Остановки)
    GET /healthz                     {"status":"ok"}, never faulted, no auth
    GET /odata/                      service document
    GET /odata/$metadata             CSDL XML for the current dialect/naming
    GET /odata/<Set>                 collection; query options below
    GET /odata/<Set>/$count          plain-text count
    GET /odata/<Set>('<key>')        one entity (1C: <Set>(guid'<uuid>'))
    GET|POST /_control               test control API, no auth

QUERY OPTIONS
    $select=a,b      projection (unknown property -> 400)
    $top, $skip      applied first; server paging then pages inside the result
    $orderby=F [asc|desc],...        (unknown property -> 400)
    $skiptoken=N     offset of the page inside the $skip/$top result
    $count=true / $inlinecount=allpages
                     v4 "@odata.count": N, v3 "odata.count": "N",
                     v2 "__count": "N" (count of the whole set)
    $format=json     accepted; any other $format -> 415
    $filter, $expand, $search -> 501 (not implemented)

SHAPES
    v4: {"@odata.context": ".../$metadata#Stops", "value": [...],
         "@odata.nextLink": "..."}
    v3: {"odata.metadata": ".../$metadata#Stops", "value": [...],
         "odata.nextLink": "..."}
    v2: {"d": {"results": [...], "__next": "..."}}; every v2 entity also has
        "__metadata": {"uri": ..., "type": ...} as real v2 services do.
    Next links are absolute (http://host:port/odata/Stops?$skiptoken=1000)
    unless --relative-links (Stops?$skiptoken=1000); other query options of
    the request are kept in the link. With --no-next-links no next link is
    ever sent and a request without $top returns the whole (skipped) set.
    The last page has no next-link property at all.

DATES AND NUMBERS
    --date-format iso    as stored: 2026-12-01T08:00:00+09:00
                  ms     "\\/Date(1796079600000+0900)\\/" (UTC milliseconds
                         and the original offset as +hhmm; JSON-escaped "/")
                  local  1C style without offset: 2026-12-01T08:00:00
                  auto   (default) ms for --dialect v2 and for --naming 1c,
                         iso otherwise
    --numbers-as-strings sends Edm.Decimal fields (Latitude, Longitude,
                         DistanceKm, Fare; 1C: Широта, Долгота, Расстояние,
                         Стоимость) as JSON strings, e.g. "62.0933".

1C NAMING (--naming 1c, usually with --dialect v3)
    Stops   -> Catalog_Остановки
        Ref_Key (uuid), DataVersion, DeletionMark (false), Code ("000000001"),
        Description (= Name), Город (= CityName), Широта (= Latitude),
        Долгота (= Longitude), ВнешнийКод (= contract Id)
    Routes  -> Catalog_Маршруты
        Ref_Key, DataVersion, DeletionMark, Code, Description (= Name),
        ОстановкаОтправления_Key (= FromStopId as uuid),
        ОстановкаНазначения_Key (= ToStopId as uuid),
        ВидТранспорта (= TransportType, same values AIR/BUS/RAIL/RIVER...),
        ВремяВПути (= DurationMinutes), Расстояние (= DistanceKm),
        Стоимость (= Fare), ВнешнийКод (= contract Id)
    Flights -> Document_Рейсы
        Ref_Key, DataVersion, DeletionMark, Number ("000000001"),
        Date (= DepartureTime), Posted (true), Маршрут_Key (= RouteId as uuid),
        ОстановкаОтправления_Key, ОстановкаНазначения_Key,
        ВремяОтправления (= DepartureTime), ВремяПрибытия (= ArrivalTime),
        СвободныхМест (= AvailableSeats), ВнешнийКод (= contract Id)
    uuid = uuid5(6f1c0de0-5a4a-4c1e-9b7e-1c0000000001, "<Set>:<contract Id>")
    with <Set> = Stops|Routes|Flights, so references stay consistent and the
    same contract Id always gives the same Ref_Key; a missing reference is the
    1C empty reference 00000000-0000-0000-0000-000000000000.

CONTROL API (POST /_control with a JSON object; GET /_control = state)
    {"mode":"normal"}            clear the fault mode and all overrides
    {"mode":"fail","status":503,"times":1,"retry_after":1}
        the next `times` data requests answer `status` (default 503) with
        {"error":{"code":"...","message":"..."}} and Retry-After if given
    {"mode":"slow","delay_ms":3000}          delay each data request
    {"mode":"truncate"}          200 whose body is cut in half (Content-Length
                                 matches the cut body); with "short_read":true
                                 Content-Length announces the full body and the
                                 connection is closed after half of it
    {"mode":"odata_error","status":500}      OData error body in the dialect's
                                 own shape (v4 {"error":{code,message}},
                                 v3 {"odata.error":{code,message:{lang,value}}},
                                 v2 {"error":{code,message:{lang,value}}})
    {"mode":"loop"}              the next link points back to the same page
    {"mode":"empty_next"}        the next link is "" on every page
      Every mode accepts "times": N (default: until changed; when used up the
      mode goes back to normal), "after": N (let N matching requests pass
      first), "sets": ["Flights", ...] (default: all entity sets; "$metadata"
      may be listed too; names in either naming), "code"/"message".
      Faults never apply to /healthz or /_control.
    {"data":"DIR"}               switch the dataset (relative to the server's
                                 working directory); 400 if it cannot be loaded
    {"override":{"Stops":"<raw body>"}}      serve that raw text for the set
                                 (any query) until {"mode":"normal"}/reset; the
                                 value may also be {"body":..., "status":200,
                                 "content_type":"application/json"}; null
                                 removes one override
    {"reset":true}               normal mode, no overrides, the startup data
                                 and settings, counters zeroed
    {"reset_counters":true}      zero the request counters
    {"page_size":N, "dialect":"v3", "naming":"1c", "relative_links":true,
     "no_next_links":false, "gzip":true, "numbers_as_strings":true,
     "date_format":"ms"}         change a startup setting at run time
    Keys can be combined in one request. The reply (and GET) is
    {"mode":..., "fault":{...}, "overrides":[...], "data":DIR,
     "data_version":N, "settings":{...}, "counters":{"Stops":N, "Routes":N,
     "Flights":N, "$metadata":N}, "total":N, "faults_served":N,
     "authorization":{"requests":N, "schemes":[...]}}
    Counters count every request addressed to that set (any page, any
    outcome), keyed by the contract name even in 1C naming. "authorization"
    counts the requests (other than /healthz and /_control) that carried an
    Authorization header, and lists its schemes ("Basic", "Bearer"), so a
    test can tell whether credentials reached this server.

Every request is logged on one line to stderr (suppressed by --quiet).
"""

import argparse
import base64
import datetime as _dt
import gzip as _gzip
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit

CONTRACT_SETS = ("Stops", "Routes", "Flights")
FILES = {"Stops": "stops.json", "Routes": "routes.json", "Flights": "flights.json"}
ONEC_SETS = {"Stops": "Catalog_Остановки", "Routes": "Catalog_Маршруты",
             "Flights": "Document_Рейсы"}
ONEC_NS = uuid.UUID("6f1c0de0-5a4a-4c1e-9b7e-1c0000000001")
EMPTY_REF = "00000000-0000-0000-0000-000000000000"

# property name -> EDM type, per naming and set (order = order in $metadata)
SCHEMA = {
    "default": {
        "Stops": [("Id", "String"), ("Name", "String"), ("CityName", "String"),
                  ("Latitude", "Decimal"), ("Longitude", "Decimal")],
        "Routes": [("Id", "String"), ("Name", "String"), ("FromStopId", "String"),
                   ("ToStopId", "String"), ("TransportType", "String"),
                   ("DurationMinutes", "Int32"), ("DistanceKm", "Decimal"),
                   ("Fare", "Decimal")],
        "Flights": [("Id", "String"), ("RouteId", "String"), ("FromStopId", "String"),
                    ("ToStopId", "String"), ("DepartureTime", "DateTimeOffset"),
                    ("ArrivalTime", "DateTimeOffset"), ("AvailableSeats", "Int32")],
    },
    "1c": {
        "Stops": [("Ref_Key", "Guid"), ("DataVersion", "String"), ("DeletionMark", "Boolean"),
                  ("Code", "String"), ("Description", "String"), ("Город", "String"),
                  ("Широта", "Decimal"), ("Долгота", "Decimal"), ("ВнешнийКод", "String")],
        "Routes": [("Ref_Key", "Guid"), ("DataVersion", "String"), ("DeletionMark", "Boolean"),
                   ("Code", "String"), ("Description", "String"),
                   ("ОстановкаОтправления_Key", "Guid"), ("ОстановкаНазначения_Key", "Guid"),
                   ("ВидТранспорта", "String"), ("ВремяВПути", "Int32"),
                   ("Расстояние", "Decimal"), ("Стоимость", "Decimal"), ("ВнешнийКод", "String")],
        "Flights": [("Ref_Key", "Guid"), ("DataVersion", "String"), ("DeletionMark", "Boolean"),
                    ("Number", "String"), ("Date", "DateTimeOffset"), ("Posted", "Boolean"),
                    ("Маршрут_Key", "Guid"), ("ОстановкаОтправления_Key", "Guid"),
                    ("ОстановкаНазначения_Key", "Guid"), ("ВремяОтправления", "DateTimeOffset"),
                    ("ВремяПрибытия", "DateTimeOffset"), ("СвободныхМест", "Int32"),
                    ("ВнешнийКод", "String")],
    },
}
KEY_FIELD = {"default": "Id", "1c": "Ref_Key"}
TYPE_NAME = {"Stops": "Stop", "Routes": "Route", "Flights": "Flight"}
MODES = ("normal", "fail", "slow", "truncate", "odata_error", "loop", "empty_next")
SETTING_KEYS = ("page_size", "dialect", "naming", "relative_links", "no_next_links",
                "gzip", "numbers_as_strings", "date_format")
QUIET = False


def log(msg):
    if not QUIET:
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


class ODataError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# ---------------------------------------------------------------- data ----

def load_dataset(folder):
    """Read stops/routes/flights JSON arrays; a missing file is an empty set."""
    if not os.path.isdir(folder):
        raise ValueError("data folder not found: %s" % folder)
    data = {}
    for name, fn in FILES.items():
        path = os.path.join(folder, fn)
        if not os.path.exists(path):
            data[name] = []
            continue
        with open(path, "r", encoding="utf-8") as fh:
            try:
                obj = json.load(fh)
            except ValueError as e:
                raise ValueError("%s: invalid JSON: %s" % (path, e))
        if isinstance(obj, dict) and isinstance(obj.get("value"), list):
            obj = obj["value"]
        if not isinstance(obj, list) or not all(isinstance(x, dict) for x in obj):
            raise ValueError("%s: expected a JSON array of objects" % path)
        data[name] = obj
    return data


def onec_ref(set_name, value):
    if value is None or value == "":
        return EMPTY_REF
    return str(uuid.uuid5(ONEC_NS, "%s:%s" % (set_name, value)))


def data_version(entity):
    h = hashlib.sha1(json.dumps(entity, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return base64.b64encode(h.digest()[:8]).decode("ascii")


def to_1c(data):
    """Contract-shaped dataset -> 1C-shaped dataset (same order)."""
    out = {"Stops": [], "Routes": [], "Flights": []}
    for i, s in enumerate(data["Stops"], 1):
        out["Stops"].append({
            "Ref_Key": onec_ref("Stops", s.get("Id")), "DataVersion": data_version(s),
            "DeletionMark": False, "Code": "%09d" % i, "Description": s.get("Name"),
            "Город": s.get("CityName"), "Широта": s.get("Latitude"),
            "Долгота": s.get("Longitude"), "ВнешнийКод": s.get("Id")})
    for i, r in enumerate(data["Routes"], 1):
        out["Routes"].append({
            "Ref_Key": onec_ref("Routes", r.get("Id")), "DataVersion": data_version(r),
            "DeletionMark": False, "Code": "%09d" % i, "Description": r.get("Name"),
            "ОстановкаОтправления_Key": onec_ref("Stops", r.get("FromStopId")),
            "ОстановкаНазначения_Key": onec_ref("Stops", r.get("ToStopId")),
            "ВидТранспорта": r.get("TransportType"), "ВремяВПути": r.get("DurationMinutes"),
            "Расстояние": r.get("DistanceKm"), "Стоимость": r.get("Fare"),
            "ВнешнийКод": r.get("Id")})
    for i, f in enumerate(data["Flights"], 1):
        out["Flights"].append({
            "Ref_Key": onec_ref("Flights", f.get("Id")), "DataVersion": data_version(f),
            "DeletionMark": False, "Number": "%09d" % i, "Date": f.get("DepartureTime"),
            "Posted": True, "Маршрут_Key": onec_ref("Routes", f.get("RouteId")),
            "ОстановкаОтправления_Key": onec_ref("Stops", f.get("FromStopId")),
            "ОстановкаНазначения_Key": onec_ref("Stops", f.get("ToStopId")),
            "ВремяОтправления": f.get("DepartureTime"), "ВремяПрибытия": f.get("ArrivalTime"),
            "СвободныхМест": f.get("AvailableSeats"), "ВнешнийКод": f.get("Id")})
    return out


def fmt_date(value, how):
    if how == "iso" or not isinstance(value, str):
        return value
    try:
        d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if how == "local":
        return d.strftime("%Y-%m-%dT%H:%M:%S")
    # ms: /Date(<utc ms><+hhmm>)/
    if d.tzinfo is None:
        d = d.replace(tzinfo=_dt.timezone.utc)
        off = ""
    else:
        mins = int(d.utcoffset().total_seconds() // 60)
        off = "%s%02d%02d" % ("-" if mins < 0 else "+", abs(mins) // 60, abs(mins) % 60)
    return "/Date(%d%s)/" % (int(round(d.timestamp() * 1000)), off)


def num_str(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return v
    return repr(v) if isinstance(v, float) else str(v)


MSDATE_RE = re.compile(r'"/Date\((-?\d+)([+-]\d{4})?\)/"')


def json_bytes(obj):
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    # OData v2 / WCF style escapes the slashes of /Date(...)/ as \/
    text = MSDATE_RE.sub(lambda m: '"\\/Date(%s%s)\\/"' % (m.group(1), m.group(2) or ""), text)
    return text.encode("utf-8")


# --------------------------------------------------------------- state ----

class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.start_settings = {
            "page_size": args.page_size, "dialect": args.dialect, "naming": args.naming,
            "relative_links": args.relative_links, "no_next_links": args.no_next_links,
            "gzip": args.gzip, "numbers_as_strings": args.numbers_as_strings,
            "date_format": args.date_format}
        self.settings = dict(self.start_settings)
        self.user, self.password, self.token = args.user, args.password, args.token
        self.public_url = args.public_url.rstrip("/") if args.public_url else None
        self.start_data_dir = os.path.abspath(args.data)
        self.data_dir = self.start_data_dir
        self.data = load_dataset(self.data_dir)
        self.data_ver = 1
        self.views = {}       # (data_ver, naming) -> {set: list}
        self.sorted = {}      # (data_ver, naming, set, orderby) -> list
        self.fault = {"mode": "normal"}
        self.overrides = {}   # contract set -> {"body": bytes, "status": int, "content_type": str}
        self.counters = {k: 0 for k in CONTRACT_SETS + ("$metadata",)}
        self.total = 0
        self.faults_served = 0
        self.auth_requests, self.auth_schemes = 0, set()
        self.warm()

    def warm(self):
        """Build the view for the current data and naming before it is asked
        for (the 1C view of a big dataset takes seconds)."""
        with self.lock:
            key = (self.data_ver, self.settings["naming"])
            data = self.data
            if key in self.views:
                return
        v = data if key[1] == "default" else to_1c(data)
        with self.lock:
            if key == (self.data_ver, self.settings["naming"]):
                self.views = {key: v}

    # -- views --
    def view(self, naming):
        key = (self.data_ver, naming)
        v = self.views.get(key)
        if v is None:
            v = self.data if naming == "default" else to_1c(self.data)
            self.views = {key: v}
        return v

    def snapshot(self):
        with self.lock:
            return {"mode": self.fault["mode"], "fault": dict(self.fault),
                    "overrides": sorted(self.overrides), "data": self.data_dir,
                    "data_version": self.data_ver, "settings": dict(self.settings),
                    "counters": dict(self.counters), "total": self.total,
                    "faults_served": self.faults_served,
                    "authorization": {"requests": self.auth_requests,
                                      "schemes": sorted(self.auth_schemes)}}

    def count(self, set_name):
        with self.lock:
            self.total += 1
            if set_name in self.counters:
                self.counters[set_name] += 1

    def note_authorization(self, header):
        with self.lock:
            self.auth_requests += 1
            self.auth_schemes.add(header.split(" ", 1)[0])

    def take_fault(self, set_name):
        """Return a copy of the fault to apply to this request, or None."""
        with self.lock:
            f = self.fault
            if f["mode"] == "normal":
                return None
            sets = f.get("sets")
            if sets is not None and set_name not in sets:
                return None
            if set_name == "$metadata" and sets is None:
                return None
            if f.get("after", 0) > 0:
                f["after"] -= 1
                return None
            taken = dict(f)
            if f.get("times") is not None:
                f["times"] -= 1
                if f["times"] <= 0:
                    self.fault = {"mode": "normal"}
            self.faults_served += 1
            return taken

    def control(self, req):
        if not isinstance(req, dict):
            raise ODataError(400, "BadRequest", "control body must be a JSON object")
        known = {"mode", "status", "times", "retry_after", "delay_ms", "after", "sets",
                 "short_read", "code", "message", "data", "override", "reset",
                 "reset_counters"} | set(SETTING_KEYS)
        unknown = sorted(set(req) - known)
        if unknown:
            raise ODataError(400, "BadRequest", "unknown control keys: %s" % ", ".join(unknown))
        # validate everything before changing anything
        new_data = None
        if "data" in req:
            d = req["data"]
            if not isinstance(d, str) or not d:
                raise ODataError(400, "BadRequest", "data must be a folder path")
            try:
                new_data = (os.path.abspath(d), load_dataset(os.path.abspath(d)))
            except (ValueError, OSError) as e:
                raise ODataError(400, "BadRequest", str(e))
        new_settings = {}
        for k in SETTING_KEYS:
            if k in req:
                new_settings[k] = check_setting(k, req[k])
        new_fault = None
        if "mode" in req:
            new_fault = build_fault(req)
        elif any(k in req for k in ("status", "times", "retry_after", "delay_ms", "after",
                                    "sets", "short_read", "code", "message")):
            raise ODataError(400, "BadRequest", "fault parameters need a \"mode\"")
        new_over = {}
        if "override" in req:
            ov = req["override"]
            if not isinstance(ov, dict):
                raise ODataError(400, "BadRequest", "override must be an object {set: body}")
            for name, val in ov.items():
                cs = contract_set(name)
                if cs is None:
                    raise ODataError(400, "BadRequest", "unknown entity set %r" % name)
                if val is None:
                    new_over[cs] = None
                    continue
                if isinstance(val, str):
                    val = {"body": val}
                if not isinstance(val, dict) or not isinstance(val.get("body", ""), str):
                    raise ODataError(400, "BadRequest", "override value must be a string or "
                                     "{\"body\":str,\"status\":int,\"content_type\":str}")
                st = val.get("status", 200)
                if not isinstance(st, int) or not 100 <= st <= 599:
                    raise ODataError(400, "BadRequest", "bad override status")
                new_over[cs] = {"body": val.get("body", "").encode("utf-8"), "status": st,
                                "content_type": val.get("content_type",
                                                        "application/json;charset=utf-8")}
        with self.lock:
            if req.get("reset"):
                self.fault = {"mode": "normal"}
                self.overrides = {}
                self.settings = dict(self.start_settings)
                if self.data_dir != self.start_data_dir:
                    self.data_dir = self.start_data_dir
                    self.data = load_dataset(self.data_dir)
                    self.data_ver += 1
                self.counters = {k: 0 for k in self.counters}
                self.total = self.faults_served = 0
                self.auth_requests, self.auth_schemes = 0, set()
            if req.get("reset_counters"):
                self.counters = {k: 0 for k in self.counters}
                self.total = self.faults_served = 0
                self.auth_requests, self.auth_schemes = 0, set()
            if new_data is not None:
                self.data_dir, self.data = new_data
                self.data_ver += 1
                self.sorted = {}
            self.settings.update(new_settings)
            if new_fault is not None:
                self.fault = new_fault
                if new_fault["mode"] == "normal":
                    self.overrides = {}
            for cs, val in new_over.items():
                if val is None:
                    self.overrides.pop(cs, None)
                else:
                    self.overrides[cs] = val
        self.warm()


def contract_set(name):
    if name in CONTRACT_SETS or name == "$metadata":
        return name
    for k, v in ONEC_SETS.items():
        if v == name:
            return k
    return None


def check_setting(k, v):
    bad = ODataError(400, "BadRequest", "bad value for %s: %r" % (k, v))
    if k == "page_size":
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise bad
    elif k == "dialect":
        if v not in ("v4", "v3", "v2"):
            raise bad
    elif k == "naming":
        if v not in ("default", "1c"):
            raise bad
    elif k == "date_format":
        if v not in ("auto", "iso", "ms", "local"):
            raise bad
    elif not isinstance(v, bool):
        raise bad
    return v


def build_fault(req):
    mode = req["mode"]
    if mode not in MODES:
        raise ODataError(400, "BadRequest", "mode must be one of %s" % ", ".join(MODES))
    f = {"mode": mode}
    if mode == "normal":
        return f

    def intval(key, lo, hi, default=None):
        v = req.get(key, default)
        if v is None:
            return None
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise ODataError(400, "BadRequest", "bad %s: %r" % (key, v))
        return v
    f["status"] = intval("status", 100, 599, 503 if mode == "fail" else 500)
    f["times"] = intval("times", 0, 10 ** 9)
    f["after"] = intval("after", 0, 10 ** 9, 0)
    f["delay_ms"] = intval("delay_ms", 0, 3600 * 1000, 3000 if mode == "slow" else 0)
    ra = req.get("retry_after")
    if ra is not None and not isinstance(ra, (int, str)):
        raise ODataError(400, "BadRequest", "bad retry_after")
    f["retry_after"] = ra
    f["short_read"] = bool(req.get("short_read", False))
    f["code"] = str(req.get("code", "ServiceUnavailable" if mode == "fail" else "InternalError"))
    f["message"] = str(req.get("message", "injected %s fault" % mode))
    sets = req.get("sets")
    if sets is not None:
        if not isinstance(sets, list):
            raise ODataError(400, "BadRequest", "sets must be a list")
        norm = []
        for s in sets:
            cs = contract_set(s) if isinstance(s, str) else None
            if cs is None:
                raise ODataError(400, "BadRequest", "unknown entity set %r" % (s,))
            norm.append(cs)
        f["sets"] = norm
    if f["times"] == 0:
        return {"mode": "normal"}
    return f


# ------------------------------------------------------------- handler ----

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ODataTestServer/1.0"
    state = None  # set in main()

    def log_message(self, fmt, *args):  # replaced by our one-line log
        pass

    # -- plumbing --
    def _send(self, status, body, ctype, headers=None, fault=None):
        st = self.state
        gz = st.settings["gzip"] and accepts_gzip(self.headers.get("Accept-Encoding", ""))
        enc = "gzip" if gz else ""

        def wire(b):
            return _gzip.compress(b, compresslevel=5) if gz else b
        short_read = False
        if fault and fault["mode"] == "truncate" and status == 200:
            if fault.get("short_read"):
                body = wire(body)
                full_len = len(body)
                body = body[: full_len // 2]
                short_read = True
            else:
                body = wire(body[: len(body) // 2])
        else:
            body = wire(body)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if enc:
            self.send_header("Content-Encoding", enc)
        if st.settings["gzip"]:
            self.send_header("Vary", "Accept-Encoding")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if short_read:
            self.send_header("Content-Length", str(full_len))
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        self._status, self._bytes = status, len(body)

    def _json(self, status, obj, headers=None, fault=None, ctype=None):
        self._send(status, json_bytes(obj), ctype or self._ctype(), headers, fault)

    def _ctype(self):
        d = self.state.settings["dialect"]
        if d == "v4":
            return "application/json;odata.metadata=minimal;charset=utf-8"
        if d == "v3":
            return "application/json;odata=minimalmetadata;charset=utf-8"
        return "application/json;charset=utf-8"

    def _version_headers(self):
        d = self.state.settings["dialect"]
        if d == "v4":
            return {"OData-Version": "4.0"}
        return {"DataServiceVersion": "3.0" if d == "v3" else "2.0"}

    def _error(self, status, code, message, headers=None, dialect_shape=False):
        d = self.state.settings["dialect"]
        if dialect_shape and d == "v3":
            obj = {"odata.error": {"code": code, "message": {"lang": "en-US", "value": message}}}
        elif dialect_shape and d == "v2":
            obj = {"error": {"code": code, "message": {"lang": "en-US", "value": message}}}
        else:
            obj = {"error": {"code": code, "message": message}}
        h = self._version_headers()
        h.update(headers or {})
        self._json(status, obj, h, ctype="application/json;charset=utf-8")

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _handle(self, method):
        t0 = time.monotonic()
        self._status, self._bytes, self._note = 0, 0, ""
        try:
            body = self._read_body() if method == "POST" else b""
            self._route(method, body)
        except ODataError as e:
            self._error(e.status, e.code, e.message, e.headers)
        except Exception as e:  # never die on a request
            log("ERROR %r" % e)
            try:
                self._error(500, "InternalError", "server error: %s" % e)
            except Exception:
                self.close_connection = True
        log('%s %s "%s %s" %d %dB %.1fms%s' % (
            _dt.datetime.now().strftime("%H:%M:%S.%f")[:-3], self.client_address[0],
            method, self.path, self._status, self._bytes,
            (time.monotonic() - t0) * 1000, self._note))

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    # -- routing --
    def _route(self, method, body):
        st = self.state
        parts = urlsplit(self.path)
        path = unquote(parts.path, encoding="utf-8", errors="replace")
        query = parse_qsl(parts.query, keep_blank_values=True)
        if path in ("/healthz", "/healthz/"):
            return self._json(200, {"status": "ok"}, ctype="application/json")
        if path.rstrip("/") == "/_control":
            if method == "POST":
                try:
                    req = json.loads(body.decode("utf-8") or "{}")
                except ValueError as e:
                    raise ODataError(400, "BadRequest", "invalid JSON: %s" % e)
                st.control(req)
                self._note = " control=%s" % json.dumps(req, ensure_ascii=False)[:200]
            return self._json(200, st.snapshot(), ctype="application/json")
        m = re.match(r"^/odata(/standard\.odata)?(/.*)?$", path)
        if not m:
            raise ODataError(404, "NotFound", "no such resource: %s" % path)
        if method != "GET":
            raise ODataError(405, "MethodNotAllowed", "read-only service")
        prefix = "/odata" + (m.group(1) or "")
        rest = (m.group(2) or "/").lstrip("/")
        settings = dict(st.settings)
        naming = settings["naming"]

        target, sm = None, None
        if rest == "$metadata":
            target = "$metadata"
        elif rest:
            sm = re.match(r"^([^/(]+)(\((.*)\))?(/\$count)?/?$", rest)
            if sm:
                target = sm.group(1)
        cs = None
        if target == "$metadata":
            cs = "$metadata"
        elif target is not None:
            cs = contract_set(target)
            if cs is not None and cs != "$metadata":
                public = ONEC_SETS[cs] if naming == "1c" else cs
                if target != public:
                    cs = None
        if cs is not None:
            st.count(cs)
        if self.headers.get("Authorization"):
            st.note_authorization(self.headers["Authorization"])
        self._check_auth()
        for k, v in query:
            if k == "$format" and v.lower() not in ("json", "application/json"):
                raise ODataError(415, "UnsupportedMediaType", "only $format=json is served")
        if not rest:
            return self._service_document(prefix, settings)
        if cs is None:
            raise ODataError(404, "NotFound", "no such entity set: %s" % rest)
        fault = st.take_fault(cs)
        if fault:
            self._note = " fault=%s" % fault["mode"]
            mode = fault["mode"]
            if mode == "fail":
                h = {}
                if fault.get("retry_after") is not None:
                    h["Retry-After"] = str(fault["retry_after"])
                return self._error(fault["status"], fault["code"], fault["message"], h)
            if mode == "odata_error":
                return self._error(fault["status"], fault["code"], fault["message"],
                                   dialect_shape=True)
            if mode == "slow":
                time.sleep(fault["delay_ms"] / 1000.0)
        if cs == "$metadata":
            return self._send(200, metadata_xml(settings).encode("utf-8"),
                              "application/xml;charset=utf-8", self._version_headers(), fault)
        with st.lock:
            ov = st.overrides.get(cs)
        if ov is not None:
            self._note += " override"
            return self._send(ov["status"], ov["body"], ov["content_type"],
                              self._version_headers(), fault)
        if sm.group(4):
            with st.lock:
                n = len(st.view(naming)[cs])
            return self._send(200, str(n).encode(), "text/plain;charset=utf-8",
                              self._version_headers(), fault)
        if sm.group(2):
            return self._entity(prefix, settings, cs, target, sm.group(3), query, fault)
        return self._collection(prefix, settings, cs, target, query, parts.query, fault)

    def _check_auth(self):
        st = self.state
        if st.user is None and st.token is None:
            return
        auth = self.headers.get("Authorization", "")
        if st.user is not None and auth[:6].lower() == "basic ":
            try:
                u, _, p = base64.b64decode(auth[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                u, p = None, None
            if u == st.user and p == (st.password or ""):
                return
        if st.token is not None and auth[:7].lower() == "bearer " and auth[7:].strip() == st.token:
            return
        challenge = []
        if st.user is not None:
            challenge.append('Basic realm="odata"')
        if st.token is not None:
            challenge.append('Bearer realm="odata"')
        self._note = " auth-failed"
        raise ODataError(401, "Unauthorized", "authentication required",
                         {"WWW-Authenticate": ", ".join(challenge)})

    def _base(self, prefix):
        if self.state.public_url:
            return self.state.public_url + prefix
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        return "http://%s%s" % (host, prefix)

    def _service_document(self, prefix, settings):
        naming, d = settings["naming"], settings["dialect"]
        names = [ONEC_SETS[s] if naming == "1c" else s for s in CONTRACT_SETS]
        base = self._base(prefix)
        if d == "v4":
            obj = {"@odata.context": base + "/$metadata",
                   "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names]}
        elif d == "v3":
            obj = {"odata.metadata": base + "/$metadata",
                   "value": [{"name": n, "url": n} for n in names]}
        else:
            obj = {"d": {"EntitySets": names}}
        self._json(200, obj, self._version_headers())

    # -- entity formatting --
    def _formatter(self, settings, cs, select, base, public):
        naming, d = settings["naming"], settings["dialect"]
        how = settings["date_format"]
        if how == "auto":
            how = "ms" if (d == "v2" or naming == "1c") else "iso"
        schema = SCHEMA[naming][cs]
        dates = [n for n, t in schema if t == "DateTimeOffset"]
        decs = [n for n, t in schema if t == "Decimal"] if settings["numbers_as_strings"] else []
        keyf = KEY_FIELD[naming]
        etype = "Transport.%s" % (public if naming == "1c" else TYPE_NAME[cs])

        def fmt(e):
            o = dict(e)
            if how != "iso":
                for n in dates:
                    if n in o:
                        o[n] = fmt_date(o[n], how)
            for n in decs:
                if n in o:
                    o[n] = num_str(o[n])
            if select is not None:
                o = {k: o.get(k) for k in select}
            if d == "v2":
                k = e.get(keyf)
                kq = ("guid'%s'" % k) if naming == "1c" else "'%s'" % str(k).replace("'", "''")
                o = dict([("__metadata", {"uri": "%s/%s(%s)" % (base, quote(public), kq),
                                          "type": etype})] + list(o.items()))
            return o
        return fmt

    def _parse_select(self, settings, cs, query):
        sel = [v for k, v in query if k == "$select"]
        if not sel or sel[-1].strip() in ("", "*"):
            return None
        props = [n for n, _ in SCHEMA[settings["naming"]][cs]]
        out = []
        for p in sel[-1].split(","):
            p = p.strip()
            if p not in props:
                raise ODataError(400, "BadRequest", "unknown property in $select: %s" % p)
            if p not in out:
                out.append(p)
        return out

    def _entity(self, prefix, settings, cs, public, keytext, query, fault):
        st = self.state
        naming = settings["naming"]
        k = keytext.strip()
        km = re.match(r"^(?:guid)?'(.*)'$", k, re.S)
        if km:
            k = km.group(1).replace("''", "'")
        keyf = KEY_FIELD[naming]
        with st.lock:
            items = st.view(naming)[cs]
        ent = next((e for e in items if str(e.get(keyf)) == k), None)
        if ent is None:
            raise ODataError(404, "NotFound", "no %s with key %s" % (public, keytext))
        select = self._parse_select(settings, cs, query)
        base = self._base(prefix)
        o = self._formatter(settings, cs, select, base, public)(ent)
        d = settings["dialect"]
        if d == "v4":
            o = dict([("@odata.context", "%s/$metadata#%s/$entity" % (base, public))] + list(o.items()))
        elif d == "v3":
            o = dict([("odata.metadata", "%s/$metadata#%s/@Element" % (base, public))] + list(o.items()))
        else:
            o = {"d": o}
        self._json(200, o, self._version_headers(), fault)

    def _collection(self, prefix, settings, cs, public, query, raw_query, fault):
        st = self.state
        naming, d = settings["naming"], settings["dialect"]
        q = {}
        for k, v in query:
            q[k] = v
        for unsupported in ("$filter", "$expand", "$search", "$apply"):
            if unsupported in q:
                raise ODataError(501, "NotImplemented", "%s is not supported by this test server"
                                 % unsupported)

        def nonneg(name):
            if name not in q:
                return None
            try:
                v = int(q[name])
            except ValueError:
                v = -1
            if v < 0:
                raise ODataError(400, "BadRequest", "invalid %s: %r" % (name, q[name]))
            return v
        top, skip, token = nonneg("$top"), nonneg("$skip") or 0, nonneg("$skiptoken")
        select = self._parse_select(settings, cs, query)
        want_count = (q.get("$count", "").lower() == "true"
                      or q.get("$inlinecount", "").lower() == "allpages")
        orderby = q.get("$orderby", "").strip()
        props = [n for n, _ in SCHEMA[naming][cs]]
        keys = []
        if orderby:
            for part in orderby.split(","):
                bits = part.split()
                if not bits or bits[0] not in props or len(bits) > 2 or \
                        (len(bits) == 2 and bits[1].lower() not in ("asc", "desc")):
                    raise ODataError(400, "BadRequest", "invalid $orderby: %s" % orderby)
                keys.append((bits[0], len(bits) == 2 and bits[1].lower() == "desc"))
        with st.lock:
            items = st.view(naming)[cs]
            ck = (st.data_ver, naming, cs, orderby)
            if keys:
                cached = st.sorted.get(ck)
                if cached is None:
                    cached = list(items)
                    for name, desc in reversed(keys):
                        cached.sort(key=lambda e, n=name: sort_key(e.get(n)), reverse=desc)
                    if len(st.sorted) > 16:
                        st.sorted = {}
                    st.sorted[ck] = cached
                items = cached
        total = len(items)
        items = items[skip:]
        if top is not None:
            items = items[:top]
        next_link = None
        if settings["no_next_links"]:
            page = items[token or 0:]
        else:
            start = token or 0
            size = settings["page_size"]
            page = items[start:start + size]
            if start + size < len(items):
                next_link = self._link(prefix, settings, public, raw_query, start + size)
        if fault and fault["mode"] == "loop":
            next_link = self._link(prefix, settings, public, raw_query, token, keep=True)
        elif fault and fault["mode"] == "empty_next":
            next_link = ""
        base = self._base(prefix)
        fmt = self._formatter(settings, cs, select, base, public)
        values = [fmt(e) for e in page]
        ctx = "%s/$metadata#%s%s" % (base, public, "(%s)" % ",".join(select) if select else "")
        if d == "v4":
            obj = {"@odata.context": ctx}
            if want_count:
                obj["@odata.count"] = total
            obj["value"] = values
            if next_link is not None:
                obj["@odata.nextLink"] = next_link
        elif d == "v3":
            obj = {"odata.metadata": ctx}
            if want_count:
                obj["odata.count"] = str(total)
            obj["value"] = values
            if next_link is not None:
                obj["odata.nextLink"] = next_link
        else:
            inner = {}
            if want_count:
                inner["__count"] = str(total)
            inner["results"] = values
            if next_link is not None:
                inner["__next"] = next_link
            obj = {"d": inner}
        self._note += " items=%d%s" % (len(values), " next" if next_link else "")
        self._json(200, obj, self._version_headers(), fault)

    def _link(self, prefix, settings, public, raw_query, token, keep=False):
        """Next link: the request's own query options with $skiptoken=token."""
        pairs = [(k, v) for k, v in parse_qsl(raw_query, keep_blank_values=True)
                 if k != "$skiptoken"]
        if token is not None or not keep:
            pairs.append(("$skiptoken", str(token)))
        qs = "&".join("%s=%s" % (quote(k, safe="$"), quote(v, safe="$,'()*:")) for k, v in pairs)
        rel = quote(public) + ("?" + qs if qs else "")
        if settings["relative_links"]:
            return rel
        return self._base(prefix) + "/" + rel


def sort_key(v):
    if v is None:
        return (0, 0, "")
    if isinstance(v, bool):
        return (1, int(v), "")
    if isinstance(v, (int, float)):
        return (1, v, "")
    return (2, 0, str(v))


def accepts_gzip(header):
    for part in header.split(","):
        bits = [b.strip() for b in part.split(";")]
        if bits[0].lower() in ("gzip", "*"):
            q = 1.0
            for b in bits[1:]:
                if b.startswith("q="):
                    try:
                        q = float(b[2:])
                    except ValueError:
                        q = 0.0
            if q > 0:
                return True
    return False


def xml_escape(s):
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def metadata_xml(settings):
    naming, d = settings["naming"], settings["dialect"]
    ns = "Transport"
    types, sets = [], []
    for cs in CONTRACT_SETS:
        public = ONEC_SETS[cs] if naming == "1c" else cs
        tname = public if naming == "1c" else TYPE_NAME[cs]
        props = []
        for n, t in SCHEMA[naming][cs]:
            if t == "DateTimeOffset" and d == "v2":
                t = "DateTime"
            nullable = "false" if n == KEY_FIELD[naming] else "true"
            props.append('        <Property Name="%s" Type="Edm.%s" Nullable="%s"/>'
                         % (xml_escape(n), t, nullable))
        types.append('      <EntityType Name="%s">\n        <Key><PropertyRef Name="%s"/></Key>\n'
                     '%s\n      </EntityType>' % (xml_escape(tname), KEY_FIELD[naming],
                                                  "\n".join(props)))
        sets.append('        <EntitySet Name="%s" EntityType="%s.%s"/>'
                    % (xml_escape(public), ns, xml_escape(tname)))
    if d == "v4":
        head = ('<?xml version="1.0" encoding="utf-8"?>\n'
                '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">\n'
                '  <edmx:DataServices>\n'
                '    <Schema Namespace="%s" xmlns="http://docs.oasis-open.org/odata/ns/edm">\n' % ns)
        container = '      <EntityContainer Name="Container">\n%s\n      </EntityContainer>\n' % "\n".join(sets)
    else:
        dsv = "3.0" if d == "v3" else "2.0"
        head = ('<?xml version="1.0" encoding="utf-8"?>\n'
                '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">\n'
                '  <edmx:DataServices m:DataServiceVersion="%s" '
                'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">\n'
                '    <Schema Namespace="%s" xmlns="http://schemas.microsoft.com/ado/2009/11/edm">\n'
                % (dsv, ns))
        container = ('      <EntityContainer Name="Container" m:IsDefaultEntityContainer="true">\n'
                     '%s\n      </EntityContainer>\n' % "\n".join(sets))
    return head + "\n".join(types) + "\n" + container + "    </Schema>\n  </edmx:DataServices>\n</edmx:Edmx>\n"


# ----------------------------------------------------------------- main ----

def main(argv=None):
    global QUIET
    here = os.path.dirname(os.path.abspath(__file__))
    default_data = os.path.normpath(os.path.join(here, "..", "..", "deploy", "sample-data", "odata"))
    ap = argparse.ArgumentParser(description="Local OData test/sample server (see module docstring).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8089, help="0 = pick a free port")
    ap.add_argument("--port-file", help="write the listening port to this file")
    ap.add_argument("--data", default=default_data, help="folder with stops/routes/flights.json")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--dialect", choices=("v4", "v3", "v2"), default="v4")
    ap.add_argument("--naming", choices=("default", "1c"), default="default")
    ap.add_argument("--relative-links", action="store_true")
    ap.add_argument("--no-next-links", action="store_true",
                    help="client-driven paging: never send next links")
    ap.add_argument("--gzip", action="store_true", help="honour Accept-Encoding: gzip")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--token", help="require Authorization: Bearer TOKEN")
    ap.add_argument("--numbers-as-strings", action="store_true",
                    help="send Edm.Decimal values as JSON strings")
    ap.add_argument("--date-format", choices=("auto", "iso", "ms", "local"), default="auto")
    ap.add_argument("--public-url", help="scheme://host:port for absolute next links")
    ap.add_argument("--quiet", action="store_true", help="do not log requests")
    args = ap.parse_args(argv)
    if args.page_size < 1:
        ap.error("--page-size must be >= 1")
    if args.password is not None and args.user is None:
        ap.error("--password needs --user")
    QUIET = args.quiet
    try:
        state = State(args)
    except (ValueError, OSError) as e:
        sys.stderr.write("odata_server: %s\n" % e)
        return 2
    Handler.state = state
    srv = ThreadingHTTPServer((args.host, args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stderr.write("odata_server: listening on http://%s:%d/odata (dialect %s, naming %s, "
                     "page size %d, data %s: %d stops, %d routes, %d flights)\n" % (
                         args.host, port, args.dialect, args.naming, args.page_size,
                         state.data_dir, len(state.data["Stops"]), len(state.data["Routes"]),
                         len(state.data["Flights"])))
    sys.stderr.flush()

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
