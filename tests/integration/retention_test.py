"""Dataset partitions and retention against the real stack.

A version is loaded into its own tables and attached only when complete: a
worker killed or failing mid-save leaves no table and no row behind, and
readers never wait for a load. The orchestrator's retention keeps exactly
the versions the active graph, the graphs kept for rollback, an active run
and the newest N need, drops the others' partitions and rows, deletes old
finished runs (never an active one) and old S3 backups (in a bucket of the
test's own on the real S3 server).
"""
import os
import subprocess
import time

import pytest

from conftest import SOURCE_DIR, STACK, envelope, psql, wait_for

SAMPLE = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata")
TABLES = ("stops", "routes", "flights", "virtual_stops", "virtual_routes")


def s3(method, bucket, key="", data=None, query=""):
    """A SigV4-signed request through curl, as an operator would; returns (status, body)."""
    url = f"{STACK['S3_ENDPOINT']}/{bucket}" + (f"/{key}" if key else "") + query
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-X", method,
           "--aws-sigv4", f"aws:amz:{STACK['S3_REGION']}:s3",
           "--user", f"{STACK['S3_ACCESS_KEY']}:{STACK['S3_SECRET_KEY']}", url]
    if data is not None:
        cmd += ["--data-binary", "@-", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    out = subprocess.run(cmd, input=data, capture_output=True, timeout=60)
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code or 0), body


def s3_keys(bucket):
    _, body = s3("GET", bucket, query="?list-type=2")
    text = body.decode()
    return sorted(part.split("</Key>")[0] for part in text.split("<Key>")[1:])


@pytest.fixture
def bucket(stack):
    name = f"retention-{stack.tag}"
    code, body = s3("PUT", name)
    assert code == 200, body
    yield name
    for key in s3_keys(name):
        s3("DELETE", name, key)
    s3("DELETE", name)


def partitions(stack):
    """Partition tables of every version, attached or not, as rows (table, version)."""
    rows = stack.sql("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ '_v[0-9]+$'")
    return sorted(r[0] for r in rows)


def add_version(stack, n_stops=3):
    v = int(stack.scalar("INSERT INTO datasets (data_hash) VALUES (repeat('a', 64)) "
                         "RETURNING version"))
    stack.sql(f"INSERT INTO stops (dataset_version, id, name) SELECT {v}, 's' || i, 'S' || i "
              f"FROM generate_series(1, {n_stops}) i")
    stack.sql(f"INSERT INTO virtual_stops (dataset_version, id, name, city_name, latitude, "
              f"longitude) VALUES ({v}, 'virtual-stop-x', 'г. X', 'X', 62, 129)")
    stack.sql(f"INSERT INTO flights (dataset_version, id, route_id, from_stop_id, to_stop_id, "
              f"departure_time, arrival_time, is_virtual) VALUES ({v}, 'f', 'r', 's1', 's2', "
              f"now(), now() + interval '1 hour', true)")
    return v


def add_graph(stack, dataset, ms, status, minutes_ago):
    stack.sql(f"INSERT INTO graphs (version, dataset_version, status, activated_at) VALUES "
              f"('graph-v{ms}', {dataset}, '{status}', now() - interval '{minutes_ago} minutes')")


def add_run(stack, run_id, status, days_ago, dataset=None):
    at = f"now() - interval '{days_ago} days'"
    finished = "NULL" if status == "running" else at
    stack.sql(f"INSERT INTO runs (run_id, trigger, status, dataset_version, created_at, "
              f"finished_at) VALUES ('{run_id}', 'kafka', '{status}', "
              f"{dataset if dataset else 'NULL'}, {at}, {finished})")
    stack.sql(f"INSERT INTO run_steps (run_id, worker_id, status) VALUES "
              f"('{run_id}', 'odata-sync-worker', 'succeeded')")


def test_retention_keeps_exactly_what_is_needed(stack, bucket):
    versions = [add_version(stack) for _ in range(8)]
    assert versions == list(range(1, 9))
    # Graphs: 4 active, 3 and 2 kept for rollback (GRAPH_KEEP_VERSIONS=3),
    # 1 retired beyond them.
    add_graph(stack, 1, 1000, "retired", 40)
    add_graph(stack, 2, 2000, "retired", 30)
    add_graph(stack, 3, 3000, "retired", 20)
    add_graph(stack, 4, 4000, "active", 10)
    # A dataset whose data stays the same gets a graph a day (the horizon):
    # its retired graphs beyond the kept ones go; a fresh failed build stays
    # (its report), an old one goes.
    add_graph(stack, 4, 3500, "retired", 35)
    add_graph(stack, 4, 3600, "failed", 5)
    add_graph(stack, 4, 3700, "failed", 40 * 24 * 60)
    stack.sql("UPDATE graphs SET created_at = activated_at WHERE version = 'graph-v3700'")
    # A run in progress on version 6 (started long ago: never deleted).
    add_run(stack, "old-running", "running", 40, dataset=6)
    add_run(stack, "old-finished", "succeeded", 40)
    add_run(stack, "recent-finished", "failed", 2)
    for v in versions:
        assert s3("PUT", bucket, f"datasets/default/v{v}-{'a' * 8}.json.gz", b"x")[0] == 200
    stack.sql(f"UPDATE datasets SET backup_key = 'datasets/default/v' || version || "
              f"'-aaaaaaaa.json.gz' WHERE version <> 3")  # 3: upload not yet recorded
    for ms in (500, 1000, 2000, 3000, 4000):
        assert s3("PUT", bucket, f"graphs/graph-v{ms}.json.gz", b"x")[0] == 200
    assert s3("PUT", bucket, "graphs/notes.txt", b"x")[0] == 200

    orch = stack.start("orchestrator", env={
        "S3_BUCKET": bucket, "RETENTION_INTERVAL_S": "1", "DATASET_KEEP_VERSIONS": "2",
        "GRAPH_KEEP_VERSIONS": "3", "BACKUP_KEEP": "2", "RUN_RETENTION_DAYS": "30"})
    kept = [2, 3, 4, 6, 7, 8]  # rollback, rollback, active, active run, newest 2
    wait_for(lambda: [int(r[0]) for r in stack.sql("SELECT version FROM datasets ORDER BY 1")]
             == kept, timeout=30, what="versions 1 and 5 deleted")
    wait_for(lambda: "graphs/graph-v500.json.gz" not in s3_keys(bucket), timeout=30,
             what="old graph backups deleted")

    assert partitions(stack) == sorted(f"{t}_v{v}" for t in TABLES for v in kept)
    for t in TABLES:
        parts = stack.sql(f"SELECT inhrelid::regclass::text FROM pg_inherits "
                          f"WHERE inhparent = '{t}'::regclass ORDER BY 1")
        assert sorted(p[0] for p in parts) == sorted(f"{t}_v{v}" for v in kept)
    assert stack.count("stops") == 3 * len(kept)
    assert stack.count("flights", "dataset_version IN (1, 5)") == 0
    wait_for(lambda: stack.count("graphs", "version IN ('graph-v3500', 'graph-v3700')") == 0,
             timeout=30, what="graphs rows beyond the kept ones deleted")
    assert [r[0] for r in stack.sql("SELECT version FROM graphs ORDER BY 1")] == \
        ["graph-v2000", "graph-v3000", "graph-v3600", "graph-v4000"]
    assert [r[0] for r in stack.sql("SELECT run_id FROM runs ORDER BY 1")] == \
        ["old-running", "recent-finished"]
    assert stack.count("run_steps", "run_id = 'old-finished'") == 0
    # Backups: the newest 2 per kind plus those of kept datasets and graphs;
    # a key of an unknown layout stays.
    assert s3_keys(bucket) == sorted(
        [f"datasets/default/v{v}-aaaaaaaa.json.gz" for v in kept] +
        ["graphs/graph-v2000.json.gz", "graphs/graph-v3000.json.gz",
         "graphs/graph-v4000.json.gz", "graphs/notes.txt"])
    assert "Retention: dataset version 1 deleted" in open(orch.log_path, encoding="utf-8").read()


def test_reader_inside_delays_the_drop_without_waiting_behind_it(stack):
    for _ in range(3):
        add_version(stack)
    # A long reader of version 1 holds ACCESS SHARE on stops; retention
    # must neither wait for it nor make others wait behind it.
    reader = subprocess.Popen(["psql", stack.database_url, "-qX", "-c",
                               "BEGIN; SELECT count(*) FROM stops WHERE dataset_version = 1; "
                               "SELECT pg_sleep(4); COMMIT;"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        orch = stack.start("orchestrator", env={"RETENTION_INTERVAL_S": "1",
                                                "DATASET_KEEP_VERSIONS": "1"})
        wait_for(lambda: "kept for now" in open(orch.log_path, encoding="utf-8").read(),
                 timeout=20, what="the drop refused while a reader is inside")
        # Other readers are not queued behind retention.
        started = time.time()
        assert stack.count("stops", "dataset_version = 3") == 3
        assert time.time() - started < 1.0
    finally:
        reader.wait(timeout=30)
    wait_for(lambda: stack.scalar("SELECT string_agg(version::text, ',') FROM datasets") == "3",
             timeout=30, what="versions 1 and 2 deleted once the reader left")


def sync_env(srv):
    return {"ODATA_URL": srv.url(), "ODATA_MAX_RETRY_WAIT_S": "1", "ODATA_MAX_RETRIES": "0",
            "S3_ENDPOINT": ""}


def test_source_failing_on_a_later_page_leaves_nothing(stack, odata_server):
    srv = odata_server(SAMPLE, "--page-size", "20", "--quiet")
    srv.control(mode="fail", status=500, after=1, sets=["Flights"])
    stack.start("odata-sync-worker", env=sync_env(srv))
    stack.produce("pipeline.trigger", envelope("pipeline.trigger", {"trigger": "kafka"}))
    failed = stack.consume("pipeline.step.failed", count=1, timeout=60)
    assert failed, "no step.failed event"
    assert stack.count("datasets") == 0
    assert partitions(stack) == []


def test_worker_killed_mid_save_leaves_nothing(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    # Writers of datasets wait behind this lock: the worker stops after its
    # tables are staged and loaded, just before the row that attaches them.
    holder = subprocess.Popen(["psql", stack.database_url, "-qX", "-c",
                               "BEGIN; LOCK TABLE datasets IN SHARE MODE; SELECT pg_sleep(600);"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=dict(os.environ, PGAPPNAME="retention-lock-holder"))
    try:
        worker = stack.start("odata-sync-worker", env=sync_env(srv))
        stack.produce("pipeline.trigger", envelope("pipeline.trigger", {"trigger": "kafka"}))
        wait_for(lambda: stack.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO datasets%' "
            "AND wait_event_type = 'Lock'") == "1", timeout=60, what="the save waiting")
        # The loaded tables are invisible to everyone else, and readers of the
        # parents do not wait for them.
        assert partitions(stack) == []
        started = time.time()
        assert stack.count("stops") == 0
        assert time.time() - started < 1.0
        worker.kill()
    finally:
        # pg_sleep does not notice its client leaving: end the session itself.
        stack.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE application_name = 'retention-lock-holder'")
        holder.wait(timeout=30)
    wait_for(lambda: stack.scalar("SELECT count(*) FROM pg_stat_activity "
                                  "WHERE query LIKE 'INSERT INTO datasets%'") == "0",
             timeout=30, what="the killed worker's session gone")
    assert stack.count("datasets") == 0
    assert partitions(stack) == []
    # The next worker saves the version whole, with its five partitions.
    stack.start("odata-sync-worker", env=sync_env(srv))
    stack.produce("pipeline.trigger", envelope("pipeline.trigger", {"trigger": "kafka"}))
    wait_for(lambda: stack.count("datasets") == 1, timeout=60, what="a saved version")
    v = stack.scalar("SELECT version FROM datasets")
    assert partitions(stack) == sorted(f"{t}_v{v}" for t in TABLES)
    assert stack.count("stops", f"dataset_version = {v}") > 0
