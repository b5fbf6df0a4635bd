"""What an operator reaches for, against the four real services on the
bundled sample data: graph versions and a rollback (REST and pipelinectl),
dead letters, runs, JSON errors for unknown paths, and pipelinectl's exit
codes."""
import json
import os
import subprocess
import time

import pytest

from conftest import BUILD_DIR, wait_for
from orchestrator_test import call
from pipeline_test import SAMPLE, start_all

CTL = os.path.join(BUILD_DIR, "services", "pipelinectl", "pipelinectl")
TOKEN = "operator-token"


@pytest.fixture
def orch(stack, odata_server):
    return start_all(stack, odata_server(SAMPLE, "--quiet"), API_TOKEN=TOKEN)


def ctl(orch, *args, token=TOKEN, stack=None):
    env = dict(stack.env if stack else os.environ, ORCHESTRATOR_URL=orch.url(""), API_TOKEN=token)
    p = subprocess.run([CTL, *args], env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def ctl_json(orch, *args):
    rc, out, err = ctl(orch, "--json", *args)
    assert rc == 0, (args, rc, out, err)
    return json.loads(out)


def auth():
    return {"Authorization": f"Bearer {TOKEN}"}


def two_graphs(stack, orch):
    """Two published versions, the newer active; returns (older, newer)."""
    for query in ("", "?force=true"):
        status, body, _ = call(orch, "POST", "/api/v1/workers/execute" + query, headers=auth())
        assert status == 200 and body["success"] is True, body
    status, body, _ = call(orch, "GET", "/api/v1/graphs")
    assert status == 200, body
    versions = [g["version"] for g in body["graphs"]]
    assert len(versions) == 2 and body["total"] == 2, body
    return versions[1], versions[0]


def test_graphs_list_and_rollback_through_rest(stack, orch):
    older, newer = two_graphs(stack, orch)
    status, body, _ = call(orch, "GET", "/api/v1/graphs")
    assert body["activeVersion"] == newer == stack.redis_cli("GET", "graph:version")
    latest = body["graphs"][0]
    assert latest["active"] is True and latest["keysPresent"] is True
    assert latest["status"] == "active" and latest["nodeCount"] > 0 and latest["edgeCount"] > 0
    assert latest["datasetVersion"] >= 1 and "validation" in latest
    assert body["graphs"][1]["status"] == "retired" and body["graphs"][1]["active"] is False

    status, body, _ = call(orch, "POST", f"/api/v1/graphs/{older}/activate")
    assert status == 401, body
    status, body, _ = call(orch, "POST", "/api/v1/graphs/graph-v1/activate", headers=auth())
    assert status == 404 and body["error"]["code"] == "not_found", body
    status, body, _ = call(orch, "POST", f"/api/v1/graphs/{older}/activate", headers=auth())
    assert status == 200 and body["success"] is True, body
    assert body["previousVersion"] == newer and body["message"].startswith(f"rolled back to {older}")
    assert stack.redis_cli("GET", "graph:version") == older
    assert stack.sql(f"SELECT status FROM graphs WHERE version IN ('{older}', '{newer}') "
                     "ORDER BY version") == [["active"], ["retired"]]
    run = stack.sql(f"SELECT trigger, status, only_worker, graph_version, message FROM runs "
                    f"WHERE run_id = '{body['runId']}'")[0]
    assert run[:4] == ["rollback", "succeeded", "graph-builder", older], run
    assert run[4].startswith(f"rolled back to {older}")
    status, runs, _ = call(orch, "GET", "/api/v1/runs?trigger=rollback")
    assert status == 200 and runs["runs"][0]["runId"] == body["runId"], runs

    # A version whose keys are gone is refused, and graph:version stays.
    stack.redis_cli("DEL", f"graph:{newer}:nodes")
    status, body, _ = call(orch, "POST", f"/api/v1/graphs/{newer}/activate", headers=auth())
    assert status == 409 and body["error"]["code"] == "graph_not_intact", body
    assert stack.redis_cli("GET", "graph:version") == older


def test_graphs_without_redis_url(stack):
    orch = stack.start("orchestrator", {"REDIS_URL": "", "SCHEDULE_INTERVAL_S": "0"})
    status, body, _ = call(orch, "GET", "/api/v1/graphs")
    assert status == 200 and body["graphs"] == [] and body["activeVersion"] is None, body
    assert "REDIS_URL" in body["redisError"]
    status, body, _ = call(orch, "POST", "/api/v1/graphs/graph-v1/activate")
    assert status in (404, 503), body
    stack.sql("INSERT INTO datasets (data_hash) VALUES (repeat('a', 64))")
    stack.sql("INSERT INTO graphs (version, dataset_version, status) "
              "SELECT 'graph-v1', max(version), 'retired' FROM datasets")
    status, body, _ = call(orch, "POST", "/api/v1/graphs/graph-v1/activate")
    assert status == 503 and body["error"]["code"] == "redis_not_configured", body
    assert "REDIS_URL" in body["error"]["message"]


def test_dead_letters_and_unknown_paths(stack):
    orch = stack.start("orchestrator", {"SCHEDULE_INTERVAL_S": "0"})
    status, body, _ = call(orch, "GET", "/api/v1/dead-letters")
    assert status == 200 and body["deadLetters"] == [] and body["total"] == 0, body
    for i in range(3):
        stack.produce("pipeline.dead-letter", {"n": i},
                      headers={"x-original-topic": stack.topic("pipeline.trigger"),
                               "x-error": f"envelope: broken {i}", "x-worker": "test"})
    status, body, _ = call(orch, "GET", "/api/v1/dead-letters?limit=2")
    assert status == 200 and body["total"] == 3 and body["count"] == 2, body
    first = body["deadLetters"][0]
    assert first["error"].startswith("envelope: broken") and first["key"] == "default"
    assert first["headers"]["x-worker"] == "test"
    assert first["originalTopic"] == stack.topic("pipeline.trigger")
    assert {"partition", "offset", "timestamp", "value"} <= set(first)
    status, page2, _ = call(orch, "GET", "/api/v1/dead-letters?limit=2&offset=2")
    assert page2["count"] == 1
    seen = {d["offset"] for d in body["deadLetters"] + page2["deadLetters"]}
    assert seen == {0, 1, 2}
    status, body, _ = call(orch, "GET", "/api/v1/dead-letters?limit=0")
    assert status == 400 and body["success"] is False

    for path in ("/nope", "/api/v1/nope", "/api/v1/graphs/x/y/z"):
        status, body, hdrs = call(orch, "GET", path)
        assert status == 404 and hdrs["Content-Type"].startswith("application/json"), path
        assert body["success"] is False and body["error"]["code"] == "not_found", body
    status, doc, _ = call(orch, "GET", "/api/v1/openapi.json")
    for path, method in (("/api/v1/graphs", "get"), ("/api/v1/graphs/{version}/activate", "post"),
                         ("/api/v1/dead-letters", "get")):
        op = doc["paths"][path][method]
        assert op["operationId"] and op["tags"], (path, op)


def test_pipelinectl_against_the_stack(stack, orch):
    rc, out, err = ctl(orch)
    assert rc == 2 and "usage" in err
    assert ctl(orch, "graph", "rollback")[0] == 2
    assert ctl(orch, "trigger", "--bogus")[0] == 2

    # trigger --wait: the specification's result, exit 0 when it succeeded.
    rc, out, err = ctl(orch, "trigger", "--wait")
    assert rc == 0, (out, err)
    assert "Pipeline executed successfully" in out and "graph-builder" in out
    first = ctl_json(orch, "runs", "--limit", "1")["runs"][0]
    assert first["status"] == "succeeded" and first["trigger"] == "api"

    # trigger without --wait: 202 at once, the run id printed; --only, --force.
    started = ctl_json(orch, "trigger", "--only", "graph-builder", "--force")
    assert started["status"] in ("queued", "running") and started["runId"]
    # A second trigger while it runs is refused: exit 1 and the reason.
    rc, out, err = ctl(orch, "trigger")
    if rc == 1:
        assert "cannot run" in err
    # run ID: waits for the forced single-worker run to end, then exits 0.
    deadline = time.time() + 120
    while time.time() < deadline:
        run = ctl_json(orch, "run", started["runId"])["run"]
        if run["status"] not in ("queued", "running"):
            break
        time.sleep(0.5)
    assert run["status"] == "succeeded" and run["onlyWorker"] == "graph-builder", run
    rc, out, err = ctl(orch, "run", started["runId"])
    assert rc == 0 and "graph-builder" in out and started["runId"] in out
    assert ctl(orch, "run", "no-such-run")[0] == 1

    rc, out, err = ctl(orch, "runs")
    assert rc == 0 and out.startswith("RUN") and started["runId"] in out

    # graphs: two versions, the newer active (*); rollback to the older.
    graphs = ctl_json(orch, "graphs")["graphs"]
    assert len(graphs) == 2, graphs
    newer, older = graphs[0]["version"], graphs[1]["version"]
    rc, out, err = ctl(orch, "graphs")
    assert rc == 0 and f"* {newer}" in out and older in out
    rc, out, err = ctl(orch, "graph", "rollback", older)
    assert rc == 0 and f"rolled back to {older}" in out, (out, err)
    assert stack.redis_cli("GET", "graph:version") == older
    # A reader following graph:version finds that version's keys.
    assert int(stack.redis_cli("SCARD", f"graph:{older}:nodes")) == graphs[1]["nodeCount"]
    node = stack.redis_cli("SRANDMEMBER", f"graph:{older}:nodes")
    assert stack.redis_cli("EXISTS", f"graph:{older}:node:{node}") == "1"
    rc, out, err = ctl(orch, "graph", "rollback", "graph-v1")
    assert rc == 1 and "404" in err
    rc, out, err = ctl(orch, "graph", "rollback", older, token="wrong")
    assert rc == 1 and "401" in err

    # dead-letters: what the topic holds, with the error.
    stack.produce("pipeline.dead-letter", {"broken": True},
                  headers={"x-original-topic": stack.topic("pipeline.trigger"),
                           "x-error": "envelope: schema: missing", "x-worker": "odata-sync-worker"})
    rc, out, err = ctl(orch, "dead-letters")
    assert rc == 0 and "envelope: schema: missing" in out and "odata-sync-worker" in out
    body = ctl_json(orch, "dead-letters", "--limit", "5")
    assert body["total"] == 1 and body["deadLetters"][0]["headers"]["x-worker"] == \
        "odata-sync-worker"


def test_pipelinectl_trigger_on_kafka_and_replay(stack, orch):
    # trigger --kafka: a complete envelope straight on pipeline.trigger.
    rc, out, err = ctl(orch, "trigger", "--kafka", "--wait", stack=stack)
    assert rc == 0, (out, err)
    run_id = stack.scalar("SELECT run_id FROM runs")
    assert run_id in out and "graph-builder" in out
    assert stack.sql(f"SELECT trigger, status FROM runs WHERE run_id = '{run_id}'") == \
        [["kafka", "succeeded"]]
    sent = stack.consume("pipeline.trigger", 1)[0]
    assert sent["key"] == "default" and sent["json"]["runId"] == run_id
    assert {"schema", "schemaVersion", "eventId", "producedAt", "sourceId"} <= set(sent["json"])

    # replay any event by topic/partition/offset: sent again under a fresh
    # event id, so worker 1 runs again (the data is unchanged: no changes).
    rc, out, err = ctl(orch, "--json", "replay", "--topic", "pipeline.trigger",
                       str(sent["partition"]), str(sent["offset"]))
    assert rc == 0, (out, err)
    body = json.loads(out)
    assert body["replayedTo"] == stack.topic("pipeline.trigger") and body["runId"] == run_id
    again = stack.consume("pipeline.trigger", 2)[1]
    assert again["json"]["eventId"] == body["eventId"] != sent["json"]["eventId"]
    assert again["json"]["runId"] == run_id and again["key"] == "default"

    def rerun_ended():
        row = stack.sql(f"SELECT status, message FROM runs WHERE run_id = '{run_id}'")[0]
        return row if row[0] == "succeeded" and "No changes" in row[1] else None
    wait_for(rerun_ended, 60, what="the replayed run to end again")
    rc, out, err = ctl(orch, "replay", "--topic", "pipeline.trigger", "0", "0")
    assert rc == 0 and out.startswith(f"replayed to {stack.topic('pipeline.trigger')} as event")

    # Exit codes: usage 2; nothing there or unreadable 1, with the reason.
    assert ctl(orch, "replay", "0")[0] == 2
    assert ctl(orch, "replay", "--topic", "a b", "0", "0")[0] == 2
    rc, out, err = ctl(orch, "replay", "0", "99")
    assert rc == 1 and "404" in err
    stack.produce("pipeline.dead-letter", "not json",
                  headers={"x-original-topic": stack.topic("pipeline.trigger"),
                           "x-error": "envelope: not valid JSON", "x-worker": "test"})
    rc, out, err = ctl(orch, "replay", "0", "0")
    assert rc == 1 and "400" in err and "not a readable event" in err, err
