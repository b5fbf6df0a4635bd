"""odata-sync-worker against the real stack and the OData test server.

Each test starts the worker with its own database and topic prefix, points
it at tests/odata/odata_server.py, produces triggers with kcat and checks
what a user would see: rows in PostgreSQL, the datasets row, the completion
or step.failed event, the backup object in S3 and the log.
"""
import gzip
import hashlib
import json
import os
import subprocess
import urllib.request

import pytest

from conftest import SOURCE_DIR, STACK, envelope, free_port, wait_for

SAMPLE = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata")
CHANGED = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata-changed")
ONEC_MAPPING = os.path.join(SOURCE_DIR, "services", "odata-sync-worker", "mappings",
                            "1c-standard-odata.json")
DONE = "pipeline.odata-sync.completed"
FAILED = "pipeline.step.failed"


def sample_counts(folder=SAMPLE):
    return tuple(len(json.load(open(os.path.join(folder, f"{n}.json"), encoding="utf-8")))
                 for n in ("stops", "routes", "flights"))


def start_worker(stack, srv, **env):
    base = {"ODATA_URL": srv.url(), "ODATA_MAX_RETRY_WAIT_S": "2"}
    base.update(env)
    return stack.start("odata-sync-worker", env=base)


def trigger(stack, force=False, event=None, **payload):
    ev = event or envelope("pipeline.trigger", dict({"trigger": "kafka", "force": force}, **payload))
    stack.produce("pipeline.trigger", ev)
    return ev


def events(stack, topic, count, timeout=60):
    msgs = stack.consume(topic, count=count, timeout=timeout)
    assert len(msgs) >= count, f"expected {count} events on {topic}, got {len(msgs)}"
    return [m["json"] for m in msgs]


def table_counts(stack, version):
    return tuple(stack.count(t, f"dataset_version = {version}" + (" AND NOT is_virtual" if t == "flights" else ""))
                 for t in ("stops", "routes", "flights"))


def s3_get(key):
    """The object's bytes, through curl's SigV4 as an operator would."""
    url = f"{STACK['S3_ENDPOINT']}/{STACK['S3_BUCKET']}/{key}"
    out = subprocess.run(["curl", "-sf", "--aws-sigv4", f"aws:amz:{STACK['S3_REGION']}:s3",
                          "--user", f"{STACK['S3_ACCESS_KEY']}:{STACK['S3_SECRET_KEY']}", url],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, f"GET {url}: curl exit {out.returncode}"
    return out.stdout


def records_saved(worker):
    with urllib.request.urlopen(worker.url("/metrics"), timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("tg_odata_records_saved_total "):
                return float(line.split()[1])
    return None


def test_first_sync_no_change_changed_and_force(stack, odata_server):
    """Relative next links over several pages; then the same data (no
    changes), changed data (a new version) and force (a new version)."""
    srv = odata_server(SAMPLE, "--relative-links", "--page-size", "20", "--quiet")
    worker = start_worker(stack, srv)
    assert records_saved(worker) == 0  # the counter exists from start-up

    first = trigger(stack)
    done = events(stack, DONE, 1)[0]
    p = done["payload"]
    assert p["status"] == "success", p
    assert done["datasetVersion"] == 1 and p["datasetVersion"] == 1
    assert done["runId"] == first["runId"]
    stops, routes, flights = sample_counts()
    assert p["counts"] == {"stops": stops, "routes": routes, "flights": flights}
    assert p["dataProcessed"] == {"added": stops + routes + flights, "updated": 0, "deleted": 0}
    assert table_counts(stack, 1) == (stops, routes, flights)
    assert stack.count("datasets") == 1
    assert stack.scalar("SELECT data_hash FROM datasets") == p["dataHash"]
    assert records_saved(worker) == stops + routes + flights
    # Server paging really happened: two pages of stops, many of flights.
    counters = srv.control()["counters"]
    assert counters["Stops"] == 2 and counters["Flights"] == (flights + 19) // 20
    # Values arrive typed and normalised.
    row = stack.sql("SELECT departure_time AT TIME ZONE 'UTC', available_seats FROM flights "
                    "WHERE id = 'flight-yak-airport-mir-airport-20261201-0820'")
    assert row == [["2026-11-30 23:20:00", "21"]]
    assert p["backupKey"] == f"datasets/default/v1-{p['dataHash']}.json.gz"
    assert stack.scalar("SELECT backup_key FROM datasets") == p["backupKey"]
    # The backup is the gzipped canonical JSON that was hashed.
    canonical = gzip.decompress(s3_get(p["backupKey"]))
    assert hashlib.sha256(canonical).hexdigest() == p["dataHash"]
    assert len(json.loads(canonical)["flights"]) == flights

    trigger(stack)
    again = events(stack, DONE, 2)[1]["payload"]
    assert again["status"] == "no_changes", again
    assert again["datasetVersion"] == 1 and again["dataHash"] == p["dataHash"]
    assert stack.count("datasets") == 1

    srv.control(data=CHANGED)
    trigger(stack)
    changed = events(stack, DONE, 3)[2]
    assert changed["payload"]["status"] == "success", changed
    assert changed["datasetVersion"] == 2
    dp = changed["payload"]["dataProcessed"]
    assert dp["added"] + dp["updated"] + dp["deleted"] > 0
    assert dp["added"] + dp["updated"] + dp["deleted"] < stops + routes + flights
    assert table_counts(stack, 2) == sample_counts(CHANGED)
    assert table_counts(stack, 1) == (stops, routes, flights)  # the old snapshot stays whole

    trigger(stack, force=True)
    forced = events(stack, DONE, 4)[3]
    assert forced["payload"]["status"] == "success" and forced["datasetVersion"] == 3
    assert forced["payload"]["dataProcessed"] == {"added": 0, "updated": 0, "deleted": 0}
    assert forced["payload"].get("force") is True
    logs = worker.logs()
    for line in ("Step 1: Fetching OData API response...", "Fetched: 32 stops, 78 routes",
                 "Data hash: ", "Changes detected - proceeding with update", "No changes"):
        assert line in logs, line


def test_redelivered_trigger_gives_one_version(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    start_worker(stack, srv)
    ev = trigger(stack)
    trigger(stack, event=ev)  # a kcat replay of the very same event
    first, second = events(stack, DONE, 2)
    assert first["payload"]["status"] == "success"
    assert second["payload"]["status"] == "success"
    assert first["datasetVersion"] == second["datasetVersion"] == 1
    assert stack.count("datasets") == 1
    assert stack.scalar("SELECT trigger_event_id FROM datasets") == ev["eventId"]
    # The replay was answered from the datasets row, without fetching again.
    assert srv.control()["counters"]["Stops"] == 1
    # A single-worker run of another worker is acknowledged, nothing fetched.
    trigger(stack, only="graph-builder")
    skipped = events(stack, DONE, 3)[2]
    assert skipped["payload"]["status"] == "skipped", skipped
    assert skipped["payload"]["only"] == "graph-builder"
    assert skipped["datasetVersion"] == 1 and skipped["payload"]["dataHash"] == first["payload"]["dataHash"]
    assert srv.control()["counters"]["Stops"] == 1


def test_dialects_v4_v3_v2_give_the_same_data(stack, odata_server):
    """The same records as v4, v3 (numbers as strings) and v2 (/Date(ms)/
    dates, __metadata annotations, d.results) hash the same."""
    srv = odata_server(SAMPLE, "--quiet")
    start_worker(stack, srv)
    trigger(stack)
    v4 = events(stack, DONE, 1)[0]["payload"]
    assert v4["status"] == "success"
    srv.control(dialect="v3", numbers_as_strings=True)
    trigger(stack)
    srv.control(dialect="v2", numbers_as_strings=False)
    trigger(stack)
    v3, v2 = [e["payload"] for e in events(stack, DONE, 3)[1:]]
    assert (v3["status"], v3["dataHash"]) == ("no_changes", v4["dataHash"]), v3
    assert (v2["status"], v2["dataHash"]) == ("no_changes", v4["dataHash"]), v2
    assert stack.count("datasets") == 1


def test_1c_mapping_with_client_paging(stack, odata_server):
    """A 1C:Enterprise standard.odata source (v3, Cyrillic names, Ref_Key,
    /Date(ms+0900)/, no next links) through the 1C mapping file."""
    srv = odata_server(SAMPLE, "--naming", "1c", "--dialect", "v3", "--no-next-links",
                       "--quiet")
    start_worker(stack, srv, ODATA_URL=srv.url("/odata/standard.odata/"),
                 ODATA_MAPPING=ONEC_MAPPING, ODATA_PAGE_SIZE="500")
    trigger(stack)
    p = events(stack, DONE, 1)[0]["payload"]
    assert p["status"] == "success", p
    assert table_counts(stack, 1) == sample_counts()
    assert srv.control()["counters"]["Flights"] == 4  # $top=500 windows: 500+500+500+370
    # References use the 1C keys consistently.
    assert stack.count("routes r", "NOT EXISTS (SELECT 1 FROM stops s WHERE s.id = r.from_stop_id)") == 0


def test_basic_auth_and_gzip(stack, odata_server):
    srv = odata_server(SAMPLE, "--user", "sync", "--password", "s3cret", "--gzip", "--quiet")
    start_worker(stack, srv, ODATA_USER="sync", ODATA_PASSWORD="s3cret")
    trigger(stack)
    p = events(stack, DONE, 1)[0]["payload"]
    assert p["status"] == "success", p
    assert table_counts(stack, 1) == sample_counts()


def test_wrong_token_fails_without_retry(stack, odata_server):
    srv = odata_server(SAMPLE, "--token", "right", "--quiet")
    worker = start_worker(stack, srv, ODATA_BEARER_TOKEN="wrong")
    trigger(stack)
    failed = events(stack, FAILED, 1)[0]["payload"]
    assert "HTTP 401" in failed["error"] and "ODATA_BEARER_TOKEN" in failed["error"], failed
    assert failed["retryable"] is False
    assert stack.count("datasets") == 0
    assert "wrong" not in worker.logs()  # the token is never logged


@pytest.mark.parametrize("credentials", [
    {"ODATA_USER": "sync", "ODATA_PASSWORD": "pw-9f3e@secret"},
    {"ODATA_BEARER_TOKEN": "tok-9f3e-secret"},
], ids=["basic", "bearer"])
def test_next_link_to_another_origin_gets_no_credentials(stack, odata_server, credentials):
    """The credentials are for ODATA_URL's origin alone: a next link to another
    origin is not followed, so that server sees no request and no credentials,
    and the step fails, not retryable, naming both origins and no secret."""
    other = odata_server(SAMPLE, "--quiet")
    auth = (["--user", "sync", "--password", credentials["ODATA_PASSWORD"]]
            if "ODATA_USER" in credentials else ["--token", credentials["ODATA_BEARER_TOKEN"]])
    srv = odata_server(SAMPLE, *auth, "--page-size", "2", "--quiet",
                       "--public-url", f"http://127.0.0.1:{other.port}")
    worker = start_worker(stack, srv, **credentials)
    trigger(stack)
    failed = stack.consume(FAILED, count=1, timeout=30)
    seen = other.control()
    assert seen["authorization"] == {"requests": 0, "schemes": []}, seen
    assert seen["total"] == 0, seen
    assert srv.control()["authorization"]["requests"] >= 1  # ODATA_URL's origin has them
    assert len(failed) == 1, "no step.failed event"
    p = failed[0]["json"]["payload"]
    assert f"http://127.0.0.1:{other.port}" in p["error"], p
    assert f"http://127.0.0.1:{srv.port}" in p["error"], p
    assert "another origin than ODATA_URL" in p["error"], p
    assert p["retryable"] is False, p
    for secret in credentials.values():
        if secret != "sync":
            assert secret not in p["error"] and secret not in worker.logs()
    assert stack.count("datasets") == 0


def test_503_then_success(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    worker = start_worker(stack, srv)
    srv.control(mode="fail", status=503, times=2, retry_after=1)
    trigger(stack)
    p = events(stack, DONE, 1)[0]["payload"]
    assert p["status"] == "success", p
    assert srv.control()["faults_served"] == 2
    assert "HTTP 503, retrying in 1 s" in worker.logs()
    assert stack.count("datasets") == 1


def test_s3_down_sync_succeeds_with_warning(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    worker = start_worker(stack, srv, S3_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    trigger(stack)
    p = events(stack, DONE, 1)[0]["payload"]
    assert p["status"] == "success", p
    assert p["backupKey"] is None
    assert stack.count("datasets", "backup_key IS NULL") == 1
    warnings = [l["message"] for l in worker.log_lines() if l.get("level") == "warn"]
    assert any("Backup failed" in m for m in warnings), warnings


def good(set_name):
    return json.dumps({"value": json.load(open(os.path.join(SAMPLE, set_name), encoding="utf-8"))})


ROUTE = {"Id": "r1", "Name": "R", "FromStopId": "stop-yak-bus", "ToStopId": "stop-nbe-bus",
         "TransportType": "BUS", "DurationMinutes": 60, "DistanceKm": 10, "Fare": 100}
FLIGHT = {"Id": "f1", "RouteId": "r1", "FromStopId": "stop-yak-bus", "ToStopId": "stop-nbe-bus",
          "DepartureTime": "2026-12-01T08:00:00+09:00", "ArrivalTime": "2026-12-01T09:00:00+09:00",
          "AvailableSeats": 20}


def routes_body(**changes):
    return json.dumps({"value": [dict(ROUTE, **changes)]})


def flights_body(**changes):
    return json.dumps({"value": [dict(FLIGHT, **changes)]})


STOP = {"Id": "s1", "Name": "S", "CityName": "Якутск", "Latitude": 62.0, "Longitude": 129.7}

# (name, control request, words the failure message must contain, retryable)
BAD_INPUT = [
    ("malformed JSON", {"override": {"Stops": '{"value": [1, 2,, ]}'}}, ["Stops page 1", "malformed JSON"], False),
    ("not a collection", {"override": {"Stops": '{"items": []}'}}, ["not an OData collection"], False),
    ("unknown stop", {"override": {"Routes": routes_body(FromStopId="nope"), "Flights": flights_body()}},
     ['Routes[0] FromStopId "nope": unknown stop'], False),
    ("unknown route", {"override": {"Routes": routes_body(), "Flights": flights_body(RouteId="r9")}},
     ['Flights[0] RouteId "r9": unknown route'], False),
    ("duplicate ids", {"override": {"Routes": json.dumps({"value": [ROUTE, ROUTE]}), "Flights": flights_body()}},
     ["duplicate_id 1", 'Routes[1] Id "r1": duplicate'], False),
    ("missing field", {"override": {"Routes": routes_body(ToStopId=None), "Flights": flights_body()}},
     ["Routes[0] ToStopId: missing"], False),
    ("wrong type", {"override": {"Routes": routes_body(DurationMinutes="long"), "Flights": flights_body()}},
     ['Routes[0] DurationMinutes "long": expected a number'], False),
    ("coordinates", {"override": {"Stops": json.dumps({"value": [dict(STOP, Latitude=123.4)]}),
                                  "Routes": '{"value": []}', "Flights": '{"value": []}'}},
     ["Stops[0] Latitude 123.4: above 90", "Routes: no routes"], False),
    ("non-positive duration", {"override": {"Routes": routes_body(DurationMinutes=0), "Flights": flights_body()}},
     ["Routes[0] DurationMinutes 0: must be above 0"], False),
    ("arrival before departure", {"override": {"Routes": routes_body(), "Flights": flights_body(
        ArrivalTime="2026-12-01T07:00:00+09:00")}}, ["Flights[0] ArrivalTime", "not after DepartureTime"], False),
    ("bad date", {"override": {"Routes": routes_body(), "Flights": flights_body(DepartureTime="soon")}},
     ['Flights[0] DepartureTime "soon": expected an ISO 8601'], False),
    ("empty next link", {"mode": "empty_next"}, ["Stops", "empty next link"], False),
    ("next link loop", {"mode": "loop"}, ["next link loop"], False),
    ("OData error body", {"mode": "odata_error", "status": 500, "code": "Boom",
                          "message": "database on fire"}, ["HTTP 500", "database on fire"], True),
    ("cut short", {"mode": "truncate"}, ["cut short"], True),
    ("not found", {"override": {"Stops": {"body": "", "status": 404}}}, ["HTTP 404", "check ODATA_URL"], False),
    ("slow answer", {"mode": "slow", "delay_ms": 2500}, ["Stops", "Timeout was reached"], True),
    ("page cap", {"page_size": 10}, ["Flights: more than 50 pages"], False),
]


def test_malformed_and_invalid_input_fail_clearly_and_save_nothing(stack, odata_server):
    srv = odata_server(SAMPLE, "--page-size", "1000", "--quiet")
    worker = start_worker(stack, srv, ODATA_MAX_RETRIES="0", ODATA_TIMEOUT_MS="1500",
                          ODATA_MAX_PAGES="50")
    for i, (name, control, words, retryable) in enumerate(BAD_INPUT):
        srv.control(reset=True)
        srv.control(**control)
        trigger(stack)
        failed = events(stack, FAILED, i + 1)[i]["payload"]
        assert failed["workerId"] == "odata-sync-worker"
        for word in words:
            assert word in failed["error"], f"{name}: {word!r} not in {failed['error']!r}"
        assert failed["retryable"] is retryable, f"{name}: {failed}"
        assert failed["input"]["schema"] == "pipeline.trigger"
        for table in ("datasets", "stops", "routes", "flights"):
            assert stack.count(table) == 0, f"{name}: rows in {table}"
    validation = events(stack, FAILED, 3)[2]["payload"]["validation"]
    assert validation["problems"]["unknown_stop"] == 1
    assert stack.consume(DONE, count=1, timeout=1) == []
    assert worker.proc.poll() is None  # still running


def test_no_room_for_temporary_files_fails_clearly(stack, odata_server, tmp_path):
    """The fetched records are sorted and the backup is written in TMPDIR:
    when nothing can be written there the step fails saying where, and
    nothing is saved."""
    srv = odata_server(SAMPLE, "--quiet")
    missing = tmp_path / "no-such-dir"
    start_worker(stack, srv, TMPDIR=str(missing))
    trigger(stack)
    failed = events(stack, FAILED, 1)[0]["payload"]
    assert str(missing) in failed["error"] and "temporary file" in failed["error"], failed
    assert stack.count("datasets") == 0
