"""Months without anyone watching, checked over seconds with the four real
services on the bundled sample data: the schedule survives restarts of the
orchestrator and two orchestrators never start two runs for one tick; the
virtual flights follow the calendar (workers run under libfaketime a day or
two ahead); a run after worker 2 gave up fills the gap; and a run with
nothing to do ends after worker 1 with workers 2 and 3 idle."""
import os
import time
from datetime import date, datetime, timedelta, timezone

from orchestrator_test import call, messages, step
from pipeline_test import SAMPLE, assert_graph_published

from conftest import BUILD_DIR

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
CND_SHIM = os.path.join(BUILD_DIR, "tests", "faketime_cnd.so")
YAKUTSK = timezone(timedelta(hours=9))


def faketime(days):
    """Environment that runs a service `days` ahead of the real clock. Only
    the wall clock moves: librdkafka's timers stay on the real one."""
    assert os.path.exists(FAKETIME_LIB), "libfaketime missing: bash deploy/stack.sh up installs it"
    return {"LD_PRELOAD": f"{CND_SHIM} {FAKETIME_LIB}", "FAKETIME": f"+{days}d",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def workers(stack, srv, days=0, graph=True):
    """Workers 1 and 2 (on a clock `days` ahead) and, unless graph is False,
    worker 3."""
    clock = faketime(days) if days else {}
    started = [stack.start("odata-sync-worker", dict(clock, ODATA_URL=srv.url())),
               stack.start("virtual-entities-generator", clock)]
    return started + ([stack.start("graph-builder")] if graph else [])


def orchestrator(stack, **env):
    base = {"RETRY_DELAYS_S": "1,1", "SCHEDULE_INTERVAL_S": "0", "SCHEDULE_CHECK_MS": "100"}
    return stack.start("orchestrator", dict(base, **env))


def execute(orch):
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    assert status == 200, body
    return body


def local_today(days=0):
    return datetime.now(YAKUTSK).date() + timedelta(days=days)


def horizon(stack, version):
    """(first, last) local departure dates of the dataset's virtual flights,
    the per-route count, and the dataset's recorded horizon."""
    first, last, per_route, v_from, v_through = stack.sql(
        "SELECT min((departure_time AT TIME ZONE 'Asia/Yakutsk')::date), "
        "max((departure_time AT TIME ZONE 'Asia/Yakutsk')::date), "
        "count(*) / count(DISTINCT route_id), "
        f"(SELECT virtual_from FROM datasets WHERE version = {version}), "
        f"(SELECT virtual_through FROM datasets WHERE version = {version}) "
        f"FROM flights WHERE dataset_version = {version} AND is_virtual")[0]
    return (date.fromisoformat(first), date.fromisoformat(last), int(per_route),
            date.fromisoformat(v_from), date.fromisoformat(v_through))


def test_virtual_flights_follow_the_calendar_while_the_data_stays_the_same(stack_clock_ahead,
                                                                            odata_server):
    stack = stack_clock_ahead
    srv = odata_server(SAMPLE, "--quiet")
    running = workers(stack, srv)
    orch = orchestrator(stack)
    first = execute(orch)
    assert first["success"] is True and first["workersExecuted"] == 3, first
    version = int(stack.scalar(f"SELECT dataset_version FROM runs WHERE run_id = '{first['runId']}'"))
    graph_before = assert_graph_published(stack, first["runId"])
    today = local_today()
    assert horizon(stack, version) == (today, today + timedelta(364), 730, today,
                                       today + timedelta(364))

    # Two days later (the workers' clock), same data: the horizon moves on.
    for svc in running[:2]:
        assert svc.stop() == 0
    workers(stack, srv, days=2, graph=False)
    later = execute(orch)
    assert later["success"] is True and later["workersExecuted"] == 3, later
    results = {r["workerId"]: r for r in later["workerResults"]}
    assert "refresh due: virtual-horizon" in results["odata-sync-worker"]["message"]
    moved = results["virtual-entities-generator"]["message"]
    assert f"cover through {today + timedelta(366)}" in moved, moved
    assert stack.count("datasets") == 1
    assert horizon(stack, version) == (today + timedelta(2), today + timedelta(366), 730,
                                       today + timedelta(2), today + timedelta(366))
    graph_after = assert_graph_published(stack, later["runId"])
    assert graph_after != graph_before

    # Again the same day: nothing is owed, workers 2 and 3 stay idle.
    idle = execute(orch)
    assert idle["success"] is True and idle["workersExecuted"] == 1, idle
    assert "No changes" in idle["message"] and "refresh" not in idle["message"]
    assert step(stack, idle["runId"], "virtual-entities-generator") is None
    assert stack.redis_cli("GET", "graph:version") == graph_after
    time.sleep(2)  # what workers 2 and 3 would have sent by now
    for topic in ("pipeline.virtual-entities.completed", "pipeline.graph.completed"):
        assert [m for m in stack.consume(topic, 0, timeout=2)
                if (m["json"] or {}).get("runId") == idle["runId"]] == [], topic


def test_the_run_after_worker2_gave_up_fills_the_gap(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    workers(stack, srv)
    orch = orchestrator(stack)
    stack.sql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
              "$$ BEGIN RAISE EXCEPTION 'virtual stops are read-only today'; END $$")
    stack.sql("CREATE TRIGGER refuse BEFORE INSERT ON virtual_stops "
              "FOR EACH STATEMENT EXECUTE FUNCTION refuse()")
    broken = execute(orch)
    assert [r["success"] for r in broken["workerResults"]] == [True, False, True], broken
    graph_without = assert_graph_published(stack, broken["runId"])
    assert int(stack.redis_cli("EXISTS", f"graph:{graph_without}:node:virtual-stop-amga")) == 0

    stack.sql("DROP TRIGGER refuse ON virtual_stops")
    healed = execute(orch)
    assert healed["success"] is True and healed["workersExecuted"] == 3, healed
    results = {r["workerId"]: r for r in healed["workerResults"]}
    assert "refresh due: virtual-missing" in results["odata-sync-worker"]["message"]
    assert results["virtual-entities-generator"]["message"].startswith("Generated ")
    graph_with = assert_graph_published(stack, healed["runId"])
    assert graph_with != graph_without
    assert int(stack.redis_cli("EXISTS", f"graph:{graph_with}:node:virtual-stop-amga")) == 1
    assert stack.count("datasets") == 1


# ---- the schedule ----------------------------------------------------------

INTERVAL = 5
SESSION_TIMEOUT_S = 10  # librdkafka session.timeout.ms of the consumers (libcommon/src/kafka.c)


def scheduled_runs(stack):
    """Creation times (epoch seconds) of the scheduled runs, oldest first."""
    return [float(t) for (t,) in stack.sql(
        "SELECT extract(epoch FROM created_at) FROM runs WHERE trigger = 'schedule' "
        "ORDER BY created_at")]


def wait_scheduled(stack, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = scheduled_runs(stack)
        if len(runs) >= n:
            return runs
        time.sleep(0.2)
    raise AssertionError(f"{n} scheduled runs expected within {timeout}s, saw "
                         f"{scheduled_runs(stack)}")


def assert_on_grid(runs, what):
    gaps = [round(b - a, 2) for a, b in zip(runs, runs[1:])]
    assert all(INTERVAL - 0.5 <= g <= INTERVAL + 1.5 for g in gaps), f"{what}: gaps {gaps}"


def test_schedule_survives_restarts_and_an_outage_gives_one_run(stack, odata_server):
    workers(stack, odata_server(SAMPLE, "--quiet"))
    env = {"SCHEDULE_INTERVAL_S": str(INTERVAL)}
    first = orchestrator(stack, **env)
    wait_scheduled(stack, 2, 4 * INTERVAL)
    _, status, _ = call(first, "GET", "/api/v1/workers/pipeline/status")
    last = datetime.fromisoformat(status["pipeline"]["lastScheduledRun"].replace("Z", "+00:00"))
    nxt = datetime.fromisoformat(status["pipeline"]["nextScheduledRun"].replace("Z", "+00:00"))
    assert (nxt - last).total_seconds() == INTERVAL, status
    assert status["pipeline"]["scheduleIntervalS"] == INTERVAL
    # Restarted between two ticks: the next one still comes when it was due
    # (or as soon as the new orchestrator is up, should its start take
    # longer), and the grid of ticks holds.
    assert first.stop() == 0
    time.sleep(1)
    orchestrator(stack, **env)
    up = time.time()
    runs = wait_scheduled(stack, 4, 4 * INTERVAL)
    due = runs[1] + INTERVAL
    assert due - 0.5 <= runs[2] <= max(due, up) + 1.5, f"tick due at {due}, run at {runs[2]}"
    assert runs[1] + 2 * INTERVAL - 0.5 <= runs[3] <= runs[1] + 2 * INTERVAL + 1.5, \
        f"the grid moved: {[round(r - runs[1], 2) for r in runs[1:]]}"
    assert stack.scalar("SELECT count(*) FROM runs WHERE trigger = 'schedule' "
                        "AND status <> 'succeeded'") == "0"

    # Down for more than two intervals: one run at start-up, not a burst.
    for svc in stack.services:
        if svc.name == "orchestrator" and svc.proc.poll() is None:
            assert svc.stop() == 0
    time.sleep(2.5 * INTERVAL)
    started = time.time()
    orchestrator(stack, **env)
    runs = wait_scheduled(stack, 5, INTERVAL)
    assert runs[4] - started < 3, "the overdue run waits for a whole interval"
    time.sleep(INTERVAL - 1.5)
    assert len(scheduled_runs(stack)) == 5, "more than one run for the missed ticks"
    runs = wait_scheduled(stack, 6, 2 * INTERVAL)
    assert_on_grid(runs[4:], "after the outage")


def test_two_orchestrators_start_one_run_per_tick(stack, odata_server):
    workers(stack, odata_server(SAMPLE, "--quiet"))
    env = {"SCHEDULE_INTERVAL_S": str(INTERVAL)}
    a = orchestrator(stack, **env)
    b = orchestrator(stack, **env)
    runs = wait_scheduled(stack, 3, 5 * INTERVAL)
    assert_on_grid(runs, "two orchestrators")
    ticks = int(stack.scalar("SELECT count(*) FROM runs WHERE trigger = 'schedule'"))
    leaders = [svc for svc in (a, b) if "this orchestrator is the leader" in svc.logs()]
    assert len(leaders) == 1, "exactly one orchestrator leads the schedule"
    standby = b if leaders[0] is a else a
    assert ticks == len(runs)

    # The leader goes away: the other one takes over. A tick due while the
    # dead member still holds the tracking partition (until Kafka's
    # session.timeout.ms, 10 s) waits for the run in flight instead of being
    # lost; every tick has exactly one run, at most that long after it.
    leaders[0].kill()
    runs = wait_scheduled(stack, 6, 6 * INTERVAL)
    assert "this orchestrator is the leader" in standby.logs()
    for k, run in enumerate(runs):
        due = runs[0] + k * INTERVAL
        late = SESSION_TIMEOUT_S + 3 if k >= 3 else 0
        assert due - 0.5 <= run <= due + 1.5 + late, \
            f"tick {k}: {[round(r - runs[0], 2) for r in runs]}"
