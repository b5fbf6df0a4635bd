"""Months of unattended operation in minutes: the four real services, on a
simulated clock (conftest.py: libfaketime, a private PostgreSQL on the same
clock, the shared Kafka and Redis), go through SOAK_DAYS (default 90) days of
6-hourly scheduled runs.

The controller moves the clock forward by one schedule interval (6 h, the
orchestrator's SCHEDULE_INTERVAL_S stays 21600), waits for the run that the
schedule starts for that tick and for its end, then moves on. Each run
stands for 6 simulated hours.

Scenario (days are counted from 0; the figures scale with SOAK_DAYS):
  - the OData data alternates between deploy/sample-data/odata and
    odata-changed on every day d with d % 7 == 3 (first tick of the day),
    and stays the same on the other days;
  - on the change day nearest a quarter of the soak, worker 2 fails for good:
    a PostgreSQL trigger refuses every insert into virtual_routes until that
    tick's run has ended;
  - at a third of the soak the orchestrator is restarted between runs, and
    at two thirds while a run is active (a trigger holds worker 2's insert of
    virtual_routes for 3 s on that change day, and the orchestrator is
    restarted while worker 2 waits).

Invariants, checked after every simulated day (4 ticks), printed at the end:
  schedule     exactly one scheduled run in every tick (between two clock
               moves), across both restarts: no gap, no double run
  horizon      every virtual route of the active dataset has flights on each
               of the next 365 local dates (Asia/Yakutsk), today included
  bounds       row counts of every table and the key count of the Redis
               database stay under the fixed bounds of BOUNDS (retention)
  graph        graph:version names a graphs row, active, built from the
               newest dataset
  virtual      the active graph holds virtual stops (not checked on the day
               worker 2 fails; from the day after it, it must again)
  no_stuck     no run active beyond its steps' timeouts; every tick's run ends
A failing invariant fails the test with the simulated day it failed on.

When the schedule does not fire (an orchestrator whose schedule follows the
monotonic clock never sees simulated time pass), the tick's run is started
through the REST API instead so the other invariants are still exercised;
the schedule invariant fails for those ticks.

Settings: SOAK_DAYS (90), SOAK_REDIS_DB (15), SOAK_FAIL_FAST (stop at the
first failed invariant), SOAK_RUN_WAIT_S (120: real seconds a tick's run may
take before it counts as stuck). docs/soak.md has figures.
"""
import json
import os
import time
import urllib.error
import urllib.request

import pytest

from conftest import BUILD_DIR, SOURCE_DIR, ODataServer, SoakWorld, wait_for

DAYS = int(os.environ.get("SOAK_DAYS", "90"))
TICKS_PER_DAY = 4
TICK_S = 21600
HORIZON_DAYS = 365
LOCAL_TZ = "Asia/Yakutsk"
REDIS_DB = int(os.environ.get("SOAK_REDIS_DB", "15"))
FAIL_FAST = os.environ.get("SOAK_FAIL_FAST", "") not in ("", "0")
RUN_WAIT_S = float(os.environ.get("SOAK_RUN_WAIT_S", "120"))
# Real seconds to wait for a tick's scheduled run before starting it through
# the API: long until the schedule has fired once, short once it is known
# not to follow the clock (three ticks without), generous once it has.
SCHEDULE_FIRST_WAIT_S, SCHEDULE_WAIT_S, SCHEDULE_BROKEN_WAIT_S = 10.0, 30.0, 0.3

DATA = {name: os.path.join(SOURCE_DIR, "deploy", "sample-data", name)
        for name in ("odata", "odata-changed")}

# Retention settings the soak runs with, and the bounds they imply.
DATASET_KEEP_VERSIONS = 3
GRAPH_KEEP_VERSIONS = 3
RUN_RETENTION_DAYS = 30
MAX_DATASETS = DATASET_KEEP_VERSIONS + GRAPH_KEEP_VERSIONS
MAX_RUNS = (RUN_RETENTION_DAYS + 1) * TICKS_PER_DAY  # a day of slack for the deleting job
# Per table: a bound, or "per_version" (MAX_DATASETS times the most rows one
# dataset version held), or "fixed" (the count after the first run never
# grows). Tables not listed (added later) get GENERIC_BOUND.
BOUNDS = {
    "datasets": MAX_DATASETS,
    "stops": "per_version", "routes": "per_version", "flights": "per_version",
    "virtual_stops": "per_version", "virtual_routes": "per_version",
    # one graph per dataset kept, plus at most one rebuild a day (horizon,
    # self-healing) kept as long as the runs that made it
    "graphs": MAX_DATASETS + GRAPH_KEEP_VERSIONS + RUN_RETENTION_DAYS + 1,
    "runs": MAX_RUNS,
    "run_steps": 3 * MAX_RUNS,
    "cities": "fixed", "workers": "fixed", "schedule": "fixed",
    # stops, routes, flights, virtual_stops, virtual_routes: one partition
    # per dataset version kept (sql/050_dataset_partitions.sql)
    "partitions": 5 * MAX_DATASETS,
}
GENERIC_BOUND = 1000

ENV = {
    "odata-sync-worker": {},
    "virtual-entities-generator": {},
    "graph-builder": {"GRAPH_KEEP_VERSIONS": str(GRAPH_KEEP_VERSIONS)},
    "orchestrator": {
        "SCHEDULE_INTERVAL_S": str(TICK_S),
        # how often (real ms) the orchestrator looks whether a tick is due:
        # the default second would be most of each simulated tick's wall time
        "SCHEDULE_CHECK_MS": "50",
        "RETRY_DELAYS_S": "1,2",
        "DATASET_KEEP_VERSIONS": str(DATASET_KEEP_VERSIONS),
        "GRAPH_KEEP_VERSIONS": str(GRAPH_KEEP_VERSIONS),
        "RUN_RETENTION_DAYS": str(RUN_RETENTION_DAYS),
    },
}
INVARIANTS = ("schedule", "horizon", "bounds", "graph", "virtual", "no_stuck")


def scenario(days):
    change_days = [d for d in range(days) if d % 7 == 3]
    near = lambda target: min(change_days, key=lambda d: abs(d - target)) if change_days else None
    fail_day = near(days // 4)
    restart_active_day = near(2 * days // 3)
    if restart_active_day == fail_day:
        restart_active_day = None
    return {"change_days": set(change_days), "fail_day": fail_day,
            "restart_idle_day": days // 3, "restart_active_day": restart_active_day}


class Failures(Exception):
    pass


class Soak:
    """The controller: moves the clock tick by tick and checks every day."""

    def __init__(self, world, odata):
        self.w = world
        self.odata = odata
        self.data = "odata"
        self.sc = scenario(DAYS)
        self.orch = None
        self.orch_logs = []
        self.pending = None
        self.boundaries = []          # simulated epoch at which tick k began
        self.tick_runs = []           # (tick, run_id, how started, final status)
        self.timing = {"start": [], "run": [], "check": []}  # real seconds
        self.schedule_seen = False
        self.schedule_misses = 0
        self.results = {name: {"checked": 0, "failed_days": [], "first": None}
                        for name in INVARIANTS}
        self.days = []                # one row of figures per day
        self.bounds = {}
        self.notes = []
        self.checked_windows = 0

    # ---- services --------------------------------------------------------
    def start_services(self):
        self.w.start("odata-sync-worker",
                     dict(ENV["odata-sync-worker"], ODATA_URL=self.odata.url()))
        self.w.start("virtual-entities-generator", ENV["virtual-entities-generator"])
        self.w.start("graph-builder", ENV["graph-builder"])
        self.orch = self.w.start("orchestrator", ENV["orchestrator"])
        self.wait_schedule_started()

    def wait_schedule_started(self):
        """The orchestrator's first look at the schedule counts as its first
        tick (the first run comes one interval later): the clock must not move
        before it. Readiness comes earlier, so wait for the schedule row; an
        orchestrator without a schedule table gets a second."""
        if self.w.scalar("SELECT to_regclass('schedule') IS NOT NULL") != "t":
            time.sleep(1.0)
            return
        wait_for(lambda: self.w.scalar("SELECT count(*) FROM schedule") != "0", 30, 0.02,
                 "the orchestrator to start its schedule")

    def restart_orchestrator(self, day, why):
        self.orch_logs.append(self.orch.log_path)
        code = self.orch.stop(20)
        if code != 0:
            self.fail(day, "no_stuck", f"orchestrator exited {code} on SIGTERM ({why}); "
                                       f"log {self.orch.log_path}")
        self.orch = self.w.start("orchestrator", ENV["orchestrator"])
        self.notes.append(f"day {day}: orchestrator restarted {why}")

    # ---- results -----------------------------------------------------------
    def fail(self, day, name, message, redis=False):
        """Records a failed invariant. Failures read from Redis wait in
        self.pending until the day's checks are over and Redis proved to be
        untouched by others all along (see check_day)."""
        if redis and self.pending is not None:
            self.pending.append(lambda: self.fail(day, name, message))
            return
        r = self.results[name]
        if day not in r["failed_days"]:
            r["failed_days"].append(day)
        if r["first"] is None:
            r["first"] = f"day {day}: {message}"
        r["count"] = r.get("count", 0) + 1
        if r["count"] <= 3:
            print(f"  FAIL day {day} {name}: {message}", flush=True)
        elif r["count"] == 4:
            print(f"  (further {name} failures are only counted; see the summary)", flush=True)
        if FAIL_FAST:
            raise Failures(f"{name} failed on simulated day {day}: {message}")

    def checked(self, name, redis=False):
        if redis and self.pending is not None:
            self.pending.append(lambda: self.checked(name))
            return
        self.results[name]["checked"] += 1

    # ---- PostgreSQL helpers ------------------------------------------------
    def tick_run(self, boundary):
        rows = self.w.sql("SELECT run_id, trigger, status FROM runs WHERE trigger = 'schedule' "
                          f"AND created_at >= to_timestamp({boundary:.6f}) ORDER BY created_at")
        return rows[0] if rows else None

    def run_status(self, run_id):
        return self.w.scalar(f"SELECT status FROM runs WHERE run_id = '{run_id}'")

    def steps(self, run_id):
        return {r[0]: r[1:] for r in self.w.sql(
            "SELECT worker_id, status, attempts, coalesce(error, '') FROM run_steps "
            f"WHERE run_id = '{run_id}'")}

    # ---- one tick ----------------------------------------------------------
    def advance(self):
        self.boundaries.append(time.time() + self.w.clock.offset_s + TICK_S)
        self.w.clock.advance(TICK_S)
        return self.boundaries[-1]

    def wait_scheduled(self, day, tick, boundary):
        """The run the schedule started for this tick, else one through the API."""
        wait = (SCHEDULE_WAIT_S if self.schedule_seen else
                SCHEDULE_BROKEN_WAIT_S if self.schedule_misses >= 3 else SCHEDULE_FIRST_WAIT_S)
        deadline = time.time() + wait
        while True:
            row = self.tick_run(boundary)
            if row:
                self.schedule_seen = True
                return row[0], "schedule"
            if time.time() >= deadline:
                break
            time.sleep(0.02)
        self.schedule_misses += 1
        self.fail(day, "schedule", f"tick {tick}: no scheduled run within {wait:.1f} s real after "
                                   "the clock moved 6 h; run started through the API")
        return self.start_through_api(day), "api"

    def start_through_api(self, day):
        req = urllib.request.Request(self.orch.url("/api/v1/workers/execute"), data=b"",
                                     method="POST", headers={"Prefer": "respond-async"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["runId"]
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            active = self.w.scalar("SELECT run_id FROM runs WHERE status IN ('queued', 'running') "
                                   "ORDER BY created_at DESC LIMIT 1")
            if e.code == 409 and active:  # a late scheduled run got there first
                return active
            raise Failures(f"day {day}: POST /api/v1/workers/execute answered {e.code}: {body}")

    def wait_end(self, day, tick, run_id):
        deadline = time.time() + RUN_WAIT_S
        status = None
        while time.time() < deadline:
            status = self.run_status(run_id)
            if status not in ("queued", "running", None):
                break
            time.sleep(0.02)
        else:
            self.fail(day, "no_stuck", f"tick {tick}: run {run_id} still {status} after "
                                       f"{RUN_WAIT_S:.0f} s real; steps {self.steps(run_id)}")
            raise Failures(f"run {run_id} is stuck on simulated day {day}; the soak cannot go on")
        return status

    def tick(self, tick):
        day, in_day = divmod(tick, TICKS_PER_DAY)
        first = in_day == 0
        hold = None
        if first and day in self.sc["change_days"]:
            self.data = "odata-changed" if self.data == "odata" else "odata"
            self.odata.control(data=DATA[self.data])
        if first and day == self.sc["fail_day"]:
            hold = self.refuse_virtual_routes(day)
        if first and day == self.sc["restart_active_day"]:
            hold = self.hold_virtual_routes(3)
        if in_day == 2 and day == self.sc["restart_idle_day"]:
            self.restart_orchestrator(day, "between runs")
        boundary = self.advance()
        t0 = time.time()
        run_id, how = self.wait_scheduled(day, tick, boundary)
        t1 = time.time()
        if first and day == self.sc["restart_active_day"]:
            self.restart_while_active(day, run_id)
        status = self.wait_end(day, tick, run_id)
        self.timing["start"].append(t1 - t0)
        self.timing["run"].append(time.time() - t1)
        if hold:
            self.w.sql(f"DROP TRIGGER {hold} ON virtual_routes")
        if first and day == self.sc["fail_day"]:
            self.check_worker2_failed(day, run_id)
        self.tick_runs.append((tick, run_id, how, status))

    # ---- the scenario's faults -----------------------------------------------
    def refuse_virtual_routes(self, day):
        self.w.sql("CREATE OR REPLACE FUNCTION soak_refuse() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN RAISE EXCEPTION 'soak: virtual routes refused on day {day}'; END $$")
        self.w.sql("CREATE TRIGGER soak_refuse BEFORE INSERT ON virtual_routes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION soak_refuse()")
        return "soak_refuse"

    def hold_virtual_routes(self, seconds):
        self.w.sql("CREATE OR REPLACE FUNCTION soak_hold() RETURNS trigger LANGUAGE plpgsql AS "
                   f"$$ BEGIN PERFORM pg_sleep({seconds}); RETURN NULL; END $$")
        self.w.sql("CREATE TRIGGER soak_hold BEFORE INSERT ON virtual_routes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION soak_hold()")
        return "soak_hold"

    def restart_while_active(self, day, run_id):
        def worker2_running():
            s = self.steps(run_id).get("virtual-entities-generator")
            return s and s[0] == "running"
        try:
            wait_for(worker2_running, 60, 0.02, "worker 2 to be running")
        except AssertionError:
            self.notes.append(f"day {day}: run {run_id} ended ({self.run_status(run_id)}) before "
                              "worker 2 ran; the restart was not during an active run")
        status = self.run_status(run_id)
        self.restart_orchestrator(day, f"while run {run_id} was {status}")

    def check_worker2_failed(self, day, run_id):
        s = self.steps(run_id).get("virtual-entities-generator")
        if s and s[0] == "failed":
            self.notes.append(f"day {day}: worker 2 failed for good after {s[1]} attempts: "
                              f"{s[2][:100]}")
        else:
            self.notes.append(f"day {day}: worker 2 was meant to fail in run {run_id}, step is {s}")

    # ---- checks after each simulated day ---------------------------------------
    def check_day(self, day):
        row = {"day": day, "date": self.w.scalar(
            f"SELECT to_char(now() AT TIME ZONE '{LOCAL_TZ}', 'YYYY-MM-DD HH24:MI')")}
        self.check_schedule(day, closed=len(self.boundaries) - 1)
        # The integration tests FLUSHDB a Redis database of the shared stack
        # picked at random; when that hit the soak's before or during these
        # checks, what they read from Redis is void for the day (the product
        # publishes the graph again on its next run).
        emptied = self.w.redis_emptied()
        self.pending = []
        graph, dataset = (None, None) if emptied else self.check_graph(day, row)
        self.check_horizon(day, dataset, row)
        self.check_virtual(day, graph, row)
        self.check_bounds(day, row, graph)
        pending, self.pending = self.pending, None
        if emptied or self.w.redis_emptied():
            self.notes.append(f"day {day}: Redis db {REDIS_DB} was emptied from outside the soak "
                              "(another test's FLUSHDB); graph, virtual and Redis keys not "
                              "checked that day")
        else:
            for commit in pending:
                commit()
        self.check_stuck(day)
        self.days.append(row)
        print(f"day {day:3d} {row['date']} ds {row.get('datasets')} v{dataset} "
              f"graph {graph} horizon {row.get('horizon')} "
              f"virtual-nodes {row.get('virtual_nodes')} "
              f"rows {row.get('rows')} keys {row.get('keys')}", flush=True)

    def check_schedule(self, day, closed):
        """Windows [boundary k, boundary k+1) closed since the last check."""
        self.checked("schedule")
        for k in range(self.checked_windows, closed):
            n = int(self.w.scalar(
                "SELECT count(*) FROM runs WHERE trigger = 'schedule' AND created_at >= "
                f"to_timestamp({self.boundaries[k]:.6f}) AND created_at < "
                f"to_timestamp({self.boundaries[k + 1]:.6f})"))
            if n > 1:
                self.fail(k // TICKS_PER_DAY, "schedule", f"tick {k}: {n} scheduled runs")
            # n == 0 was reported when the tick's run was started through the API
        self.checked_windows = closed

    def check_graph(self, day, row):
        self.checked("graph", redis=True)
        version = self.w.redis_cli("GET", "graph:version")
        if not version:
            self.fail(day, "graph", f"graph:version is not set in Redis db {REDIS_DB}", redis=True)
            return None, None
        rows = self.w.sql(f"SELECT dataset_version, status FROM graphs WHERE version = '{version}'")
        newest = self.w.scalar("SELECT max(version) FROM datasets")
        if not rows:
            self.fail(day, "graph", f"graph:version {version} has no graphs row", redis=True)
            return version, None
        dataset, status = rows[0]
        if status != "active" or dataset != newest:
            self.fail(day, "graph", f"active graph {version} is {status}, built from dataset "
                                    f"{dataset}; newest dataset is {newest}", redis=True)
        return version, dataset

    def check_horizon(self, day, dataset, row):
        """For the active graph's dataset, or the newest when Redis was void."""
        if dataset is None:
            dataset = self.w.scalar("SELECT max(version) FROM datasets")
            if dataset is None:
                return
        routes, short, through, today = self.w.sql(f"""
            WITH d AS (SELECT (now() AT TIME ZONE '{LOCAL_TZ}')::date AS today),
            f AS (SELECT route_id,
                         count(DISTINCT (departure_time AT TIME ZONE '{LOCAL_TZ}')::date) AS n,
                         max((departure_time AT TIME ZONE '{LOCAL_TZ}')::date) AS last
                    FROM flights, d
                   WHERE dataset_version = {dataset} AND is_virtual
                     AND (departure_time AT TIME ZONE '{LOCAL_TZ}')::date
                         BETWEEN d.today AND d.today + {HORIZON_DAYS - 1}
                   GROUP BY route_id)
            SELECT count(*), count(*) FILTER (WHERE coalesce(f.n, 0) < {HORIZON_DAYS}),
                   coalesce(min(f.last)::text, '-'), (SELECT today FROM d)
              FROM virtual_routes r LEFT JOIN f ON f.route_id = r.id
             WHERE r.dataset_version = {dataset}""")[0]
        row["horizon"] = f"{through}"
        if int(routes) == 0:
            row["horizon"] = "no virtual routes"  # the virtual invariant says why
            return
        self.checked("horizon")
        if int(short):
            self.fail(day, "horizon", f"{short} of {routes} virtual routes of dataset {dataset} "
                                      f"lack flights on some of the {HORIZON_DAYS} local dates "
                                      f"from "
                                      f"{today}; covered through {through}")

    def check_virtual(self, day, graph, row):
        if not graph:
            return
        out = self.w.redis_cli("SSCAN", f"graph:{graph}:nodes", "0", "MATCH", "virtual-stop-*",
                               "COUNT", "100000")
        n = len([x for x in out.splitlines()[1:] if x])
        row["virtual_nodes"] = n
        if day == self.sc["fail_day"]:
            return
        self.checked("virtual", redis=True)
        if n == 0:
            since = (f" (worker 2 failed on day {self.sc['fail_day']})"
                     if self.sc["fail_day"] is not None and day > self.sc["fail_day"] else "")
            self.fail(day, "virtual", f"active graph {graph} has no virtual stops{since}",
                      redis=True)

    def table_counts(self):
        """Rows of every table (a partitioned one with all its partitions),
        and the number of partitions."""
        tables = [r[0] for r in self.w.sql(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY 1")]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in tables)
        counts = {t: int(n) for t, n in self.w.sql(sql)}
        counts["partitions"] = int(self.w.scalar(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
            "AND relispartition AND relkind = 'r'"))
        return counts

    def learn_bounds(self, counts):
        per_version = {}
        for t in ("stops", "routes", "flights", "virtual_stops", "virtual_routes"):
            per_version[t] = int(self.w.scalar(
                f"SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM {t} "
                "GROUP BY dataset_version) x"))
        for t, n in counts.items():
            spec = BOUNDS.get(t, GENERIC_BOUND)
            if spec == "per_version":
                # the two sample data sets differ by a few rows: 10 % headroom
                self.bounds[t] = max(1, int(per_version[t] * 1.1)) * MAX_DATASETS
            elif spec == "fixed":
                self.bounds[t] = n
            else:
                self.bounds[t] = spec

    def learn_redis_bound(self, graph):
        """The kept graph versions and one being built, each of the size of the
        active one (+20 %: the data sets differ), and a few global keys; set
        once the day's Redis reads are known to be valid."""
        cursor, keys = "0", 0
        while True:
            out = self.w.redis_cli("SCAN", cursor, "MATCH", f"graph:{graph}:*", "COUNT", "1000")
            lines = out.splitlines()
            cursor, keys = lines[0], keys + len([x for x in lines[1:] if x])
            if cursor == "0":
                break
        if keys:
            bound = (GRAPH_KEEP_VERSIONS + 1) * int(keys * 1.2) + 10
            self.pending.append(lambda: self.bounds.setdefault("redis keys", bound))

    def check_bounds(self, day, row, graph):
        counts = self.table_counts()
        counts["redis keys"] = int(self.w.redis_cli("DBSIZE"))
        if not self.bounds:
            self.learn_bounds(counts)
        if "redis keys" not in self.bounds and graph:
            self.learn_redis_bound(graph)
        self.checked("bounds")
        for t, n in counts.items():
            bound = self.bounds.setdefault(t, GENERIC_BOUND) if t != "redis keys" else \
                self.bounds.get(t)
            if bound is not None and n > bound:
                self.fail(day, "bounds", f"{t} holds {n} {'keys' if t == 'redis keys' else 'rows'}"
                                         f", bound {bound}", redis=t == "redis keys")
        row["datasets"] = counts.get("datasets")
        row["rows"] = sum(n for t, n in counts.items() if t not in ("redis keys", "partitions"))
        row["keys"] = counts["redis keys"]
        row["counts"] = counts

    def check_stuck(self, day):
        self.checked("no_stuck")
        stuck = self.w.sql(
            "SELECT r.run_id, r.status, now() - r.created_at FROM runs r "
            "WHERE r.status IN ('queued', 'running') AND r.created_at < now() - "
            "make_interval(secs => (SELECT sum(timeout_s * max_attempts) FROM workers))")
        for run_id, status, age in stuck:
            self.fail(day, "no_stuck", f"run {run_id} {status} for {age}")

    # ---- the whole soak --------------------------------------------------------
    def run(self):
        ticks = DAYS * TICKS_PER_DAY
        for tick in range(ticks):
            self.tick(tick)
            if tick % TICKS_PER_DAY == TICKS_PER_DAY - 1:
                t0 = time.time()
                self.check_day(tick // TICKS_PER_DAY)
                self.timing["check"].append(time.time() - t0)
        # The last window closes after a second of real time without a move.
        time.sleep(1.0)
        self.boundaries.append(time.time() + self.w.clock.offset_s)
        self.check_schedule(DAYS - 1, closed=len(self.boundaries) - 1)
        early = int(self.w.scalar("SELECT count(*) FROM runs WHERE trigger = 'schedule' AND "
                                  f"created_at < to_timestamp({self.boundaries[0]:.6f})"))
        if early:
            self.notes.append(f"{early} scheduled run(s) at start-up, before the first clock move")
        self.orch_logs.append(self.orch.log_path)
        ignored = sum(open(p, errors="replace").read().count("completion ignored")
                      for p in self.orch_logs)
        self.notes.append(f"{ignored} worker completions arrived after their run had ended "
                          "('completion ignored' in the orchestrator's logs): work done "
                          "outside any run")
        total = int(self.w.scalar("SELECT count(*) FROM runs WHERE trigger = 'schedule'"))
        if total != ticks and self.schedule_seen:
            self.notes.append(f"{total} scheduled runs in {ticks} ticks (runs kept: retention "
                              "may have deleted old ones)")


def summary(soak, wall_s, setup_s):
    lines = ["", f"soak summary: {DAYS} simulated days, {len(soak.tick_runs)} ticks of 6 h, "
                 f"wall {wall_s:.1f} s ({wall_s / max(1, len(soak.tick_runs)):.2f} s per run), "
                 f"setup {setup_s:.1f} s",
             f"  {'invariant':10} {'checked':>7} {'failed':>6}  first failure"]
    for name in INVARIANTS:
        r = soak.results[name]
        days = r["failed_days"]
        lines.append(f"  {name:10} {r['checked']:7d} {len(days):6d}  {r['first'] or '-'}")
        if days:
            lines.append(f"  {'':10} failed on days {compact(days)}")
    for what, xs in soak.timing.items():
        if xs:
            xs = sorted(xs)
            lines.append(f"  real s per {what:5}: median {xs[len(xs) // 2]:.3f}, "
                         f"max {xs[-1]:.3f}, total {sum(xs):.1f} ({len(xs)})")
    by = {}
    for _, _, how, status in soak.tick_runs:
        by[(how, status)] = by.get((how, status), 0) + 1
    lines.append("  runs: " + ", ".join(f"{how} {status} {n}"
                                        for (how, status), n in sorted(by.items())))
    if soak.days:
        last = soak.days[-1]
        lines.append("  rows at the end (bound): " + ", ".join(
            f"{t} {n} ({soak.bounds.get(t)})" for t, n in sorted(last["counts"].items())))
        peak = {}
        for d in soak.days:
            for t, n in d["counts"].items():
                peak[t] = max(peak.get(t, 0), n)
        lines.append("  peak rows: " + ", ".join(f"{t} {n}" for t, n in sorted(peak.items())))
    for note in soak.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def compact(days):
    out, start, prev = [], None, None
    for d in days + [None]:
        if start is None:
            start = prev = d
        elif d == prev + 1:
            prev = d
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = d
    return ", ".join(out)


def test_soak():
    t0 = time.time()
    world = SoakWorld(REDIS_DB)
    odata = None
    soak = None
    errors = []
    try:
        odata = ODataServer(DATA["odata"], "--quiet")
        soak = Soak(world, odata)
        soak.start_services()
        sc = soak.sc
        print(f"\nsoak: {DAYS} days; clock file {world.clock.path}; PostgreSQL :{world.pg.port}; "
              f"topics {world.topic_prefix}* (LogAppendTime); Redis db {REDIS_DB}; data changes "
              f"on days {compact(sorted(sc['change_days']))}; worker 2 fails on day "
              f"{sc['fail_day']}; orchestrator restarts on days {sc['restart_idle_day']} (idle) "
              f"and {sc['restart_active_day']} (run active)", flush=True)
        setup_s = time.time() - t0
        t1 = time.time()
        try:
            soak.run()
        except Failures as e:
            errors.append(str(e))
        wall_s = time.time() - t1
        text = summary(soak, wall_s, setup_s)
        print(text, flush=True)
        with open(os.path.join(BUILD_DIR, "soak-summary.json"), "w") as f:
            json.dump({"days": DAYS, "wall_s": wall_s, "setup_s": setup_s, "timing": soak.timing,
                       "results": soak.results, "notes": soak.notes, "bounds": soak.bounds,
                       "per_day": soak.days}, f, indent=1, default=str)
    finally:
        if odata:
            odata.stop()
        errors += world.close()
    failed = [f"{name} ({r['first']}; {len(r['failed_days'])} days)"
              for name, r in soak.results.items() if r["failed_days"]]
    if failed or errors:
        pytest.fail("invariants failed: " + "; ".join(failed + errors))
