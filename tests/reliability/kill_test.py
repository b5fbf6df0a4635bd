"""Each worker SIGKILLed at a random moment of its step, round after round,
on the bundled sample data (each round serves a slightly changed stop name,
so every round is a new dataset): the worker is started again, the run must
still succeed, with exactly one dataset version per data hash, whole
snapshots (no row lost, none twice), one active graph, and a reader
following graph:version that never sees a partial graph.

RELIABILITY_ROUNDS (default 4) rounds per worker."""
import json
import os
import random
import subprocess
import sys
import time

import faults
from conftest import SAMPLE, STACK

STOPS = json.load(open(os.path.join(SAMPLE, "stops.json"), encoding="utf-8"))


def serve_round(srv, tag):
    """The sample with one stop renamed: a new hash, the same shape."""
    stops = [dict(s) for s in STOPS]
    stops[0]["Name"] = f"{STOPS[0]['Name']} ({tag})"
    srv.control(override={"Stops": json.dumps({"value": stops}, ensure_ascii=False)})


def check_round(stack, run_id, row, baseline, problems):
    status, dataset, graph_version, message = row
    if status != "succeeded":
        steps = stack.sql(f"SELECT worker_id, status, attempts, error FROM run_steps "
                          f"WHERE run_id = '{run_id}'")
        problems.append(f"run {run_id}: {status} {message} {steps}")
        return
    faults.count("runs_completed")
    counts = faults.version_counts(stack, dataset)
    lost = sum(max(0, baseline[t] - counts[t]) for t in baseline)
    if counts != baseline:
        problems.append(f"dataset {dataset}: {counts}, expected {baseline}")
    faults.count("records_lost", lost)
    dup = faults.duplicates(stack)
    if dup:
        faults.count("duplicates", dup)
        problems.append(f"after run {run_id}: {dup} duplicate rows/versions")
    active = faults.active_graphs(stack)
    live = stack.redis_cli("GET", "graph:version")
    if len(active) != 1 or active[0][0] != live or active[0][0] != graph_version \
            or active[0][1] != dataset:
        problems.append(f"run {run_id}: active graphs {active}, graph:version {live}, "
                        f"run's graph {graph_version} of dataset {dataset}")


def test_sigkill_each_worker_at_random_moments(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    pipe = faults.Pipeline(stack, srv)
    reader = faults.GraphReader(STACK["REDIS_URL"], int(stack.redis_url.rsplit("/", 1)[1]))
    reader.start()
    problems = []
    try:
        serve_round(srv, "warm-up")
        run_id = pipe.execute(wait=120)
        row = pipe.wait_run(run_id)
        assert row[0] == "succeeded", row
        baseline = faults.version_counts(stack, row[1])
        assert all(baseline.values()), baseline
        window = {w: pipe.step_ms(w, run_id) for w in faults.WORKERS}
        faults.count("runs_completed")
        for r in range(faults.ROUNDS * len(faults.WORKERS)):
            target = faults.WORKERS[r % len(faults.WORKERS)]
            serve_round(srv, f"round {r}")
            run_id = pipe.execute()
            if pipe.wait_started(target, run_id):
                # From the first instruction of the step to a little after
                # its end (killed between emit and offset commit).
                faults.time.sleep(random.uniform(0, window[target] * 1.3) / 1000)
            killed = pipe.svc[target]
            pipe.kill(target)
            if not any(l.get("runId") == run_id and "Worker finished" in l.get("message", "")
                       for l in killed.log_lines()):
                faults.count("kills_mid_step")
            pipe.restart(target)
            check_round(stack, run_id, pipe.wait_run(run_id), baseline, problems)
    finally:
        reader.stop()
    assert reader.checks > 0
    assert not reader.partial, f"partial graphs seen: {reader.partial[:5]}"
    assert not problems, "\n".join(problems)


# Tables of a version being loaded that are not (yet) partitions: what a
# load cut short would leave behind if it were not one transaction.
STAGED = ("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = current_schema() AND c.relkind = 'r' AND NOT c.relispartition "
          "AND c.relname ~ '^(stops|routes|flights|virtual_stops|virtual_routes)_v[0-9]+$'")


def wait_for_copy(stack, table_pattern, timeout=60):
    """Waits until a COPY into a table matching table_pattern runs in this
    test's database, or has run in the transaction still open (seen in
    pg_stat_activity: a load in several COPYs is idle between them)."""
    deadline = time.time() + timeout
    sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
           "AND state IN ('active', 'idle in transaction') "
           f"AND query ~ '^COPY {table_pattern} '")
    while time.time() < deadline:
        if int(stack.scalar(sql)):
            return True
        time.sleep(0.005)
    return False


def test_writers_killed_mid_load(stack, odata_server, tmp_path):
    """odata-sync-worker SIGKILLed while its COPY into the new version's
    staged tables runs, and virtual-entities-generator while its COPY of
    virtual flights runs, on generated data large enough for the load to
    take a while: nothing is left behind (no staged table, no dataset
    version, no row), and the run then succeeds with every record once."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, os.path.join(faults.SOURCE_DIR, "tests", "odata",
                                                 "gen_dataset.py"),
                    "--scale", "0.3", "--out", str(data), "--seed", "3"],
                   check=True, stdout=subprocess.DEVNULL)
    manifest = json.load(open(data / "manifest.json"))
    srv = odata_server(str(data), "--quiet")
    pipe = faults.Pipeline(stack, srv)
    # The generated data's own cities directory (its cities without stops).
    pipe.env["virtual-entities-generator"]["CITIES_FILE"] = str(data / "cities.csv")
    pipe.svc["virtual-entities-generator"].stop()
    pipe.restart("virtual-entities-generator")

    # odata-sync-worker: killed while it COPYs flights into the new
    # version's staged table.
    run_id = pipe.execute()
    odata = pipe.svc["odata-sync-worker"]
    assert wait_for_copy(stack, "flights_v[0-9]+"), "the save never started"
    pipe.kill("odata-sync-worker")
    if not any(l.get("runId") == run_id and "Dataset version created" in l.get("message", "")
               for l in odata.log_lines()):
        faults.count("kills_mid_step")
        faults.count("kills_mid_load")
    deadline = time.time() + 30  # the server notices the lost client and rolls back
    while time.time() < deadline and (int(stack.scalar(STAGED)) or stack.count("datasets")):
        time.sleep(0.2)
    assert int(stack.scalar(STAGED)) == 0, "staged tables left behind"
    assert stack.count("datasets") == 0, "a dataset version from a load cut short"
    assert stack.count("stops") == 0
    pipe.restart("odata-sync-worker")
    row = pipe.wait_run(run_id, timeout=300)
    assert row[0] == "succeeded", row
    faults.count("runs_completed")
    counts = faults.version_counts(stack, row[1])
    assert counts["stops"] == manifest["stops"] and counts["flights"] >= manifest["flights"], (
        counts, manifest)

    # virtual-entities-generator: killed while it COPYs virtual flights.
    run_id = pipe.execute(force="true")
    gen = pipe.svc["virtual-entities-generator"]
    assert wait_for_copy(stack, "flights"), "the virtual flights were never saved"
    pipe.kill("virtual-entities-generator")
    if not any(l.get("runId") == run_id and "COPY took" in l.get("message", "")
               for l in gen.log_lines()):
        faults.count("kills_mid_step")
        faults.count("kills_mid_load")
    pipe.restart("virtual-entities-generator")
    row = pipe.wait_run(run_id, timeout=300)
    assert row[0] == "succeeded", row
    faults.count("runs_completed")
    assert int(stack.scalar(STAGED)) == 0
    dup = faults.duplicates(stack, forced=1)
    faults.count("duplicates", dup)
    assert dup == 0
    again = faults.version_counts(stack, row[1])
    lost = sum(max(0, counts[t] - again[t]) for t in counts)
    faults.count("records_lost", lost)
    assert again == counts, (again, counts)
