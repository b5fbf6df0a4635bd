"""virtual-entities-generator against the real stack: a dataset with real
stops is written with psql, an odata-sync.completed event is produced with
kcat, and the test reads what the worker wrote to PostgreSQL and emitted on
pipeline.virtual-entities.completed (or pipeline.step.failed)."""
import os
from datetime import datetime, timedelta, timezone

from conftest import SOURCE_DIR, envelope

SERVICE = "virtual-entities-generator"
ODATA_DONE = "pipeline.odata-sync.completed"
VIRTUAL_DONE = "pipeline.virtual-entities.completed"
STEP_FAILED = "pipeline.step.failed"

# A small directory: the hub, a city with real stops under another spelling,
# names with ё, a hyphen and the "г." prefix, and three cities without stops.
CITIES = """name,district,latitude,longitude,population
Якутск,городской округ Якутск,62.0272,129.7319,355400
Олёкминск,Олёкминский район,60.3744,120.4264,9200
Усть-Мая,Усть-Майский улус,60.4167,134.5333,
Ытык-Кюёль,Таттинский улус,62.3600,133.5500,6500
Амга,Амгинский улус,60.8950,131.9700,6700
"""
REAL_STOPS = [  # id, city_name as the OData source spells it
    ("stop-yak-b", "г. Якутск", 62.03, 129.717),
    ("stop-yak-a", "ЯКУТСК", 62.0933, 129.7706),
    ("stop-olk", "Олекминск", 60.3744, 120.4264),
]


def cities_file(tmp_path, text=CITIES):
    path = tmp_path / "cities.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def sql_str(s):
    return "'" + s.replace("'", "''") + "'"


def add_dataset(stack, stops, created_at="2026-03-01 07:30:00+09"):
    """Inserts a dataset version and its real stops; returns the version."""
    version = int(stack.scalar(
        "INSERT INTO datasets (data_hash, created_at) VALUES "
        f"(repeat('a', 64), '{created_at}') RETURNING version"))
    if stops:
        rows = ", ".join(f"({version}, {sql_str(i)}, {sql_str('Остановка ' + i)}, "
                         f"{sql_str(city)}, {lat}, {lon})" for i, city, lat, lon in stops)
        stack.sql("INSERT INTO stops (dataset_version, id, name, city_name, latitude, longitude) "
                  f"VALUES {rows}")
    return version


def odata_done(stack, version, status="success", **payload):
    env = envelope("odata-sync.completed", dict({
        "workerId": "odata-sync-worker", "status": status, "message": "sync",
        "executionTimeMs": 1, "dataProcessed": {"added": 3, "updated": 0, "deleted": 0},
        "datasetVersion": version, "dataHash": "a" * 64}, **payload), dataset_version=version)
    stack.produce(ODATA_DONE, env)
    return env


def completions(stack, count, topic=VIRTUAL_DONE, timeout=60):
    msgs = stack.consume(topic, count=count, timeout=timeout)
    assert len(msgs) >= count, f"expected {count} events on {topic}, got {len(msgs)}"
    return [m["json"] for m in msgs]


def start(stack, tmp_path, **env):
    env.setdefault("CITIES_FILE", cities_file(tmp_path))
    return stack.start(SERVICE, env=env)


def virtual_counts(stack, version):
    return (stack.count("virtual_stops", f"dataset_version = {version}"),
            stack.count("virtual_routes", f"dataset_version = {version}"),
            stack.count("flights", f"dataset_version = {version} AND is_virtual"))


def test_hub_mode_generates_stops_routes_and_730_flights_per_route(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path)
    assert stack.count("cities") == 5
    odata_done(stack, version)
    [event] = completions(stack, 1)

    p = event["payload"]
    assert event["datasetVersion"] == version
    assert p["status"] == "success", p
    assert (p["virtualStops"], p["virtualRoutes"], p["virtualFlights"]) == (3, 6, 6 * 730)
    assert p["mode"] == "hub" and p["citiesWithoutStops"] == 3
    assert p["dataProcessed"] == {"added": 3 + 6 + 6 * 730, "updated": 0, "deleted": 0}

    # Якутск and Олёкминск are matched despite "г.", case and ё; the others get
    # a virtual stop named after the directory with a transliterated id.
    assert stack.sql(f"SELECT id, name, stop_type FROM virtual_stops WHERE dataset_version = "
                     f"{version} ORDER BY id") == [
        ["virtual-stop-amga", "г. Амга", "virtual"],
        ["virtual-stop-ust-maya", "г. Усть-Мая", "virtual"],
        ["virtual-stop-ytyk-kyuel", "г. Ытык-Кюёль", "virtual"]]
    # Hub endpoint: Якутск's real stop with the lowest id, both directions.
    rows = stack.sql(f"SELECT id, name, transport_type, fare, duration_minutes, distance_km "
                     f"FROM virtual_routes WHERE dataset_version = {version} ORDER BY id")
    assert [r[0] for r in rows] == [
        "virtual-route-stop-yak-a-virtual-stop-amga",
        "virtual-route-stop-yak-a-virtual-stop-ust-maya",
        "virtual-route-stop-yak-a-virtual-stop-ytyk-kyuel",
        "virtual-route-virtual-stop-amga-stop-yak-a",
        "virtual-route-virtual-stop-ust-maya-stop-yak-a",
        "virtual-route-virtual-stop-ytyk-kyuel-stop-yak-a"]
    amga = rows[0]
    assert amga[1] == "Якутск → Амга" and amga[2] == "BUS" and amga[3] == "1000.00"
    # great circle 177.12 km at 60 km/h = 177.12 min, rounded up to 178
    assert float(amga[5]) == 177.12 and amga[4] == "178"

    # Every route: 730 flights, 365 days from today's local date (the
    # rolling horizon, not the dataset's date), at 08:00 and 16:00 +09, 50
    # seats, arrival = departure + duration.
    today = datetime.now(timezone(timedelta(hours=9))).date()
    last = today + timedelta(days=364)
    per_route = stack.sql(
        "SELECT r.id, count(f.id), count(DISTINCT (f.departure_time AT TIME ZONE "
        "'Asia/Yakutsk')::date), min(f.departure_time AT TIME ZONE 'Asia/Yakutsk')::date, "
        "max(f.departure_time AT TIME ZONE 'Asia/Yakutsk')::date, "
        "bool_and(to_char(f.departure_time AT TIME ZONE 'Asia/Yakutsk', 'HH24:MI') "
        "IN ('08:00', '16:00')), bool_and(f.available_seats = 50), "
        "bool_and(f.arrival_time = f.departure_time + r.duration_minutes * interval '1 minute') "
        "FROM virtual_routes r LEFT JOIN flights f ON f.dataset_version = r.dataset_version "
        "AND f.route_id = r.id AND f.is_virtual "
        f"WHERE r.dataset_version = {version} GROUP BY r.id")
    assert len(per_route) == 6
    for row in per_route:
        assert row[1:] == ["730", "365", str(today), str(last), "t", "t", "t"], row
    assert stack.scalar(
        "SELECT id FROM flights WHERE route_id = 'virtual-route-virtual-stop-amga-stop-yak-a' "
        "ORDER BY departure_time LIMIT 1") == \
        f"virtual-flight-virtual-route-virtual-stop-amga-stop-yak-a-{today:%Y%m%d}-0800"

    stats = stack.scalar(f"SELECT stats::text FROM datasets WHERE version = {version}")
    assert '"virtualStops": 3' in stats and '"virtualFlights": 4380' in stats


def test_replayed_event_changes_nothing_unless_forced(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path)
    env = odata_done(stack, version)
    completions(stack, 1)
    before = stack.sql(f"SELECT min(xmin::text), count(*) FROM flights WHERE dataset_version = "
                       f"{version}")

    stack.produce(ODATA_DONE, env)  # the same event again, as kcat would replay it
    second = completions(stack, 2)[1]["payload"]
    assert second["status"] == "success"
    assert (second["virtualStops"], second["virtualRoutes"], second["virtualFlights"]) == \
        (3, 6, 4380)
    assert second["dataProcessed"]["added"] == 0
    assert "already exist" in second["message"]
    assert stack.sql(f"SELECT min(xmin::text), count(*) FROM flights WHERE dataset_version = "
                     f"{version}") == before

    odata_done(stack, version, force=True)  # force regenerates in place
    third = completions(stack, 3)[2]["payload"]
    assert third["status"] == "success" and third["force"] is True
    assert third["dataProcessed"]["added"] == 3 + 6 + 4380
    assert third["dataProcessed"]["deleted"] == 3 + 6 + 4380
    assert virtual_counts(stack, version) == (3, 6, 4380)


def test_direct_mode_connects_every_pair_and_the_nearest_real_stop(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path, VIRTUAL_MODE="direct")
    odata_done(stack, version)
    p = completions(stack, 1)[0]["payload"]
    # 3 cities: 3*2 pairs, plus each ↔ its nearest real stop
    assert p["mode"] == "direct" and p["virtualRoutes"] == 6 + 6, p
    assert virtual_counts(stack, version) == (3, 12, 12 * 730)
    ids = {r[0] for r in stack.sql("SELECT id FROM virtual_routes")}
    assert "virtual-route-virtual-stop-amga-virtual-stop-ust-maya" in ids
    assert "virtual-route-virtual-stop-ust-maya-virtual-stop-amga" in ids
    # Амга's nearest real stop is Якутск's bus station (stop-yak-b, 62.03 N)
    assert "virtual-route-virtual-stop-amga-stop-yak-b" in ids
    assert "virtual-route-stop-yak-b-virtual-stop-amga" in ids


def test_missing_hub_falls_back_to_direct(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    svc = start(stack, tmp_path, VIRTUAL_HUB_CITY="Москва")
    odata_done(stack, version)
    p = completions(stack, 1)[0]["payload"]
    assert p["status"] == "success" and p["mode"] == "direct" and p["virtualRoutes"] == 12
    assert any("Москва is not in the cities directory" in (line.get("message") or "")
               for line in svc.log_lines())


def test_later_dataset_with_real_stops_retires_the_virtual_stop(stack, tmp_path):
    first = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path)
    odata_done(stack, first)
    completions(stack, 1)
    second = add_dataset(stack, REAL_STOPS + [("stop-amga", "пос. Амга", 60.9, 131.97),
                                              ("stop-amga-2", "Амга", 60.9, 131.98)])
    odata_done(stack, second)
    p = completions(stack, 2)[1]["payload"]
    # "пос. Амга" does not match (only "г." is dropped) but "Амга" does.
    assert (p["virtualStops"], p["virtualRoutes"], p["citiesWithoutStops"]) == (2, 4, 2)
    assert stack.count("virtual_stops", f"dataset_version = {second} AND id = "
                                        "'virtual-stop-amga'") == 0
    # the older snapshot keeps its own virtual entities
    assert virtual_counts(stack, first) == (3, 6, 4380)
    assert virtual_counts(stack, second) == (2, 4, 2920)


def test_failure_after_the_routes_leaves_nothing_and_reports_step_failed(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    # From outside: PostgreSQL refuses the first virtual flight, after the
    # stops and routes of the generation are written.
    stack.sql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN RAISE EXCEPTION 'no virtual flights today'; END $$")
    stack.sql("CREATE TRIGGER refuse BEFORE INSERT ON flights FOR EACH ROW "
              "WHEN (NEW.is_virtual) EXECUTE FUNCTION refuse()")
    start(stack, tmp_path)
    odata_done(stack, version)
    [failed] = completions(stack, 1, topic=STEP_FAILED)
    p = failed["payload"]
    assert p["workerId"] == SERVICE and p["retryable"] is True
    assert "no virtual flights today" in p["error"]
    assert p["input"]["datasetVersion"] == version
    assert virtual_counts(stack, version) == (0, 0, 0)
    assert stack.scalar(f"SELECT stats ? 'virtualStops' FROM datasets WHERE version = "
                        f"{version}") == "f"
    assert stack.consume(VIRTUAL_DONE, count=1, timeout=1) == []


def test_a_stop_id_too_long_for_a_route_id_is_refused_not_cut(stack, tmp_path):
    """odata-sync-worker refuses ids over 255 bytes; a dataset loaded another
    way is refused here too, with the reason, and nothing is written."""
    long_id = "stop-" + "x" * 600  # its route ids would not fit 560 bytes
    version = add_dataset(stack, REAL_STOPS + [(long_id, "Олекминск", 60.37, 120.43)])
    start(stack, tmp_path)
    odata_done(stack, version)
    [failed] = completions(stack, 1, topic=STEP_FAILED)
    p = failed["payload"]
    assert p["retryable"] is False
    assert "is 605 bytes, more than 255" in p["error"], p["error"]
    assert virtual_counts(stack, version) == (0, 0, 0)


def test_no_changes_and_missing_dataset_are_skipped_and_passed_on(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path)
    # Unchanged data with nothing owed: no work and no event at all.
    odata_done(stack, version, status="no_changes")
    odata_done(stack, version, status="no_changes", refresh="graph")
    odata_done(stack, 999999)
    # A single-worker run of another worker: no work and no event either.
    odata_done(stack, version, only="graph-builder")
    events = completions(stack, 2)
    assert [e["payload"]["status"] for e in events] == ["skipped"] * 2
    assert "graph is refreshed" in events[0]["payload"]["message"]
    assert "999999 does not exist" in events[1]["payload"]["message"]
    assert stack.consume(VIRTUAL_DONE, count=3, timeout=2)[2:] == []
    assert virtual_counts(stack, version) == (0, 0, 0)


def test_unchanged_data_with_missing_virtual_entities_gets_them(stack, tmp_path):
    version = add_dataset(stack, REAL_STOPS)
    start(stack, tmp_path)
    odata_done(stack, version, status="no_changes", refresh="virtual-missing")
    p = completions(stack, 1)[0]["payload"]
    assert p["status"] == "success" and p["virtualStops"] == 3, p
    assert virtual_counts(stack, version) == (3, 6, 6 * 730)


def test_malformed_cities_file_fails_start_up_naming_the_row(stack, tmp_path):
    bad = cities_file(tmp_path, CITIES + "Чурапча,Чурапчинский улус,north,132.43,\n")
    svc = stack.start(SERVICE, env={"CITIES_FILE": bad}, wait_ready=False)
    assert svc.proc.wait(30) == 1
    svc.expect_nonzero = True
    assert f"{bad}: line 7: latitude \"north\"" in svc.logs()


def test_real_directory_hub_mode(stack):
    """The shipped directory of Yakutia with the sample data's stops."""
    directory = os.path.join(SOURCE_DIR, "deploy", "sample-data", "cities.csv")
    with open(directory, encoding="utf-8") as f:
        n_cities = sum(1 for line in f if line.strip()) - 1
    version = add_dataset(stack, REAL_STOPS)
    stack.start(SERVICE)  # CITIES_FILE unset: the default is the shipped file
    assert stack.count("cities") == n_cities
    odata_done(stack, version)
    p = completions(stack, 1)[0]["payload"]
    missing = n_cities - 2  # Якутск and Олёкминск have real stops
    assert p["status"] == "success" and p["mode"] == "hub"
    assert (p["virtualStops"], p["virtualRoutes"], p["virtualFlights"]) == \
        (missing, 2 * missing, 2 * missing * 730)
    assert virtual_counts(stack, version) == (missing, 2 * missing, 2 * missing * 730)
    assert stack.count("virtual_routes", "from_stop_id = 'stop-yak-a'") == missing
