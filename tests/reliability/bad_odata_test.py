"""A corpus of malformed and hostile OData answers served by the OData test
server (POST /_control overrides and fault modes) to the real
odata-sync-worker. Malformed or invalid answers must fail the step with a
message naming the entity set, write nothing and leave the worker running;
hostile but valid values (injection strings, Cyrillic and emoji, COPY
escape characters) must be stored byte for byte. A good sync follows."""
import json

import faults
from conftest import SAMPLE, envelope, wait_for

DONE = "pipeline.odata-sync.completed"
FAILED = "pipeline.step.failed"

S1 = {"Id": "s1", "Name": "Stop one", "CityName": "Якутск", "Latitude": 62.03, "Longitude": 129.73}
S2 = {"Id": "s2", "Name": "Stop two", "CityName": "Мирный", "Latitude": 62.53, "Longitude": 113.96}
R1 = {"Id": "r1", "Name": "R", "FromStopId": "s1", "ToStopId": "s2", "TransportType": "BUS",
      "DurationMinutes": 60, "DistanceKm": 10, "Fare": 100}
F1 = {"Id": "f1", "RouteId": "r1", "FromStopId": "s1", "ToStopId": "s2",
      "DepartureTime": "2026-12-01T08:00:00+09:00", "ArrivalTime": "2026-12-01T09:00:00+09:00",
      "AvailableSeats": 20}


def coll(items):
    return json.dumps({"value": items}, ensure_ascii=False)


def data(stops=None, routes=None, flights=None, **raw):
    """An override of all three sets: the small valid dataset with changes."""
    body = {"Stops": coll(stops if stops is not None else [S1, S2]),
            "Routes": coll(routes if routes is not None else [R1]),
            "Flights": coll(flights if flights is not None else [F1])}
    body.update(raw)
    return {"override": body}


def s1(**kw):
    return [dict(S1, **kw), S2]


def r1(**kw):
    return [dict(R1, **kw)]


def f1(**kw):
    return [dict(F1, **kw)]


def without(d, key):
    return {k: v for k, v in d.items() if k != key}


TEN_MB = "x" * (10 * 1024 * 1024)
DEEP = '{"value": [' + "[" * 50000 + "]" * 50000 + "]}"

# (name, control request, the entity set or word the error must name)
REJECT = [
    ("truncated JSON", data(Stops='{"value": [{"Id": "s1"'), "Stops"),
    ("double comma", data(Stops='{"value": [1, 2,, ]}'), "Stops"),
    ("trailing garbage", data(Routes='{"value": []} trailing'), "Routes"),
    ("HTML error page with 200", data(Flights="<html><body>502 Bad Gateway</body></html>"), "Flights"),
    ("empty body", data(Stops=""), "Stops"),
    ("JSON null", data(Stops="null"), "Stops"),
    ("top-level array", data(Stops="[]"), "Stops"),
    ("value is an object", data(Routes='{"value": {}}'), "Routes"),
    ("entities are numbers", data(Stops='{"value": [1, 2]}'), "Stops"),
    ("entity is null", data(Stops='{"value": [null]}'), "Stops"),
    ("nesting bomb", data(Stops=DEEP), "Stops"),
    ("NaN literal", data(Stops='{"value": [{"Id": "s1", "Name": "a", "Latitude": NaN}]}'), "Stops"),
    ("Infinity literal", data(Routes=coll(r1()).replace("60", "Infinity")), "Routes"),
    ("stop id missing", data(stops=[without(S1, "Id"), S2]), "Stops"),
    ("stop id null", data(stops=s1(Id=None)), "Stops"),
    ("extra stop with empty id", data(stops=[S1, S2, {"Id": "", "Name": ""}]), "Stops"),
    ("stop id object", data(stops=s1(Id={"a": 1})), "Stops"),
    ("stop id array", data(stops=s1(Id=["s1"])), "Stops"),
    ("stop name missing", data(stops=[without(S1, "Name"), S2]), "Stops"),
    ("stop name boolean", data(stops=s1(Name=True)), "Stops"),
    ("latitude 'NaN' string", data(stops=s1(Latitude="NaN")), "Stops"),
    ("latitude 1e400", data(Stops=coll(s1()).replace("62.03", "1e400")), "Stops"),
    ("longitude -181", data(stops=s1(Longitude=-181)), "Stops"),
    ("latitude decimal comma", data(stops=s1(Latitude="62,03")), "Stops"),
    ("latitude boolean", data(stops=s1(Latitude=True)), "Stops"),
    ("duration 1e400", data(Routes=coll(r1()).replace('"DurationMinutes": 60', '"DurationMinutes": 1e400')), "Routes"),
    ("duration 'nan' string", data(routes=r1(DurationMinutes="nan")), "Routes"),
    ("duration hex string", data(routes=r1(DurationMinutes="0x3c")), "Routes"),
    ("duration negative", data(routes=r1(DurationMinutes=-5)), "Routes"),
    ("distance negative", data(routes=r1(DistanceKm=-1)), "Routes"),
    ("fare not a number", data(routes=r1(Fare="abc")), "Routes"),
    ("route from unknown stop", data(routes=r1(FromStopId="ghost")), "Routes"),
    ("route to unknown stop", data(routes=r1(ToStopId="ghost")), "Routes"),
    ("flight of unknown route", data(flights=f1(RouteId="r404")), "Flights"),
    ("flight from unknown stop", data(flights=f1(FromStopId="ghost")), "Flights"),
    ("duplicate stop ids", data(stops=[S1, dict(S2, Id="s1")]), "Stops"),
    ("duplicate flight ids", data(flights=[F1, F1]), "Flights"),
    ("impossible date", data(flights=f1(DepartureTime="2026-13-45T99:99:99Z")), "Flights"),
    ("arrival equals departure", data(flights=f1(ArrivalTime=F1["DepartureTime"])), "Flights"),
    ("seats negative", data(flights=f1(AvailableSeats=-1)), "Flights"),
    ("seats fractional", data(flights=f1(AvailableSeats=2.5)), "Flights"),
    ("seats 1e20", data(flights=f1(AvailableSeats=1e20)), "Flights"),
    ("10 MB name", data(stops=s1(Name=TEN_MB)), "Stops"),
    ("lone low surrogate", data(Stops=coll(s1(Name="AAA")).replace("AAA", "\\udcff")), "Stops"),
    ("lone surrogate", data(Stops=coll(s1(Name="AAA")).replace("AAA", "\\ud800")), "Stops"),
    ("NUL inside a name", data(Stops=coll(s1(Name="AAA")).replace("AAA", "a\\u0000b")), "Stops"),
    ("no stops", data(stops=[]), "Stops"),
    ("no routes", data(routes=[], flights=[]), "Routes"),
    ("next link loop", {"mode": "loop"}, "loop"),
    ("empty next link", {"mode": "empty_next"}, "next link"),
    ("next link not a string", data(Stops='{"value": [], "@odata.nextLink": 12345}'), "Stops"),
    ("answer cut short", {"mode": "truncate"}, "cut short"),
    ("HTTP 500 with OData error", {"mode": "odata_error", "status": 500, "message": "db on fire"}, "500"),
    ("HTTP 502 plain", {"mode": "fail", "status": 502}, "502"),
    ("HTTP 404", data(Stops={"body": "", "status": 404}), "404"),
]

# Valid data with hostile values: stored exactly as sent.
HOSTILE_NAMES = [
    ("SQL injection", "Robert'); DROP TABLE stops;--"),
    ("JSON injection", '", "Id": "evil", "x": {"$ne": null}, "'),
    ("Cyrillic and emoji", "Ытык-Кюёль 🚌✈️ Якутск — «центр»"),
    ("COPY escapes", "tab\there\nnewline\\N\\.\r\\\\"),
    ("control characters", "\u0001\u0002\u001f\u007f bell\u0007"),
    ("60 KB name", "я" * 30000),
]


def trigger(stack):
    ev = envelope("pipeline.trigger", {"trigger": "kafka"})
    stack.produce("pipeline.trigger", ev)
    return ev


def event_of(stack, topic, run_id, timeout=60):
    def got():
        for m in stack.consume(topic, 0, timeout=1):
            if (m["json"] or {}).get("runId") == run_id:
                return m["json"]
        return None
    return wait_for(got, timeout, interval=0.3, what=f"{topic} of run {run_id}")


def either_event(stack, run_id, timeout=60):
    def got():
        for topic in (FAILED, DONE):
            for m in stack.consume(topic, 0, timeout=1):
                if (m["json"] or {}).get("runId") == run_id:
                    return topic, m["json"]
        return None
    return wait_for(got, timeout, interval=0.3, what=f"an outcome of run {run_id}")


def rows(stack):
    return tuple(stack.count(t) for t in ("datasets", "stops", "routes", "flights"))


def test_bad_odata_answers_rejected_cleanly(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    worker = stack.start("odata-sync-worker", env={
        "ODATA_URL": srv.url(), "ODATA_MAX_RETRIES": "0", "ODATA_TIMEOUT_MS": "5000",
        "ODATA_MAX_PAGES": "20"})
    problems = []
    for name, control, word in REJECT:
        srv.control(reset=True)
        srv.control(**control)
        before = rows(stack)
        faults.count("bad_inputs_tried")
        topic, ev = either_event(stack, trigger(stack)["runId"])
        after = rows(stack)
        err = ev["payload"].get("error", "") if topic == FAILED else ""
        if topic != FAILED:
            problems.append(f"{name}: accepted ({ev['payload'].get('message')})")
        elif word not in err:
            problems.append(f"{name}: error does not name {word!r}: {err!r}")
        elif after != before:
            problems.append(f"{name}: rows changed {before} -> {after}")
        else:
            faults.count("bad_inputs_rejected")
        assert worker.proc.poll() is None, f"{name}: worker died: {worker.logs()[-3000:]}"
    assert not problems, "\n".join(problems)


def test_hostile_values_stored_verbatim(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    worker = stack.start("odata-sync-worker", env={"ODATA_URL": srv.url()})
    problems = []
    for name, value in HOSTILE_NAMES:
        srv.control(reset=True)
        srv.control(**data(stops=s1(Name=value, CityName=value)))
        faults.count("bad_inputs_tried")
        topic, ev = either_event(stack, trigger(stack)["runId"])
        if topic != DONE or ev["payload"]["status"] != "success":
            problems.append(f"{name}: not saved: {ev['payload']}")
            continue
        version = ev["datasetVersion"]
        stored = stack.scalar(
            f"SELECT encode(convert_to(name, 'UTF8'), 'hex') || ':' || "
            f"encode(convert_to(city_name, 'UTF8'), 'hex') FROM stops "
            f"WHERE dataset_version = {version} AND id = 's1'")
        want = value.encode().hex()
        if stored != f"{want}:{want}":
            problems.append(f"{name}: stored {stored!r}, sent {want!r}")
        elif stack.count("stops", f"dataset_version = {version}") != 2:
            problems.append(f"{name}: the COPY split a row")
        else:
            faults.count("hostile_inputs_stored_verbatim")
    assert stack.count("stops", "id = 'evil'") == 0
    assert worker.proc.poll() is None
    # The real sample afterwards: still a healthy worker.
    srv.control(reset=True)
    ev = event_of(stack, DONE, trigger(stack)["runId"])
    assert ev["payload"]["status"] == "success", ev
    assert not problems, "\n".join(problems)
