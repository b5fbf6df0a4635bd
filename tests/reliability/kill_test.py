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
