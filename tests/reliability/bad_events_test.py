"""Malformed Kafka events on each worker's input topic: every one goes to
the dead-letter topic as it came, with x-error and the x-original-*
headers; nothing is written; the worker keeps running and still handles a
good event afterwards."""
import json

import faults
from conftest import SAMPLE, envelope, wait_for


def good(schema, **payload):
    return envelope(schema, payload)


def variant(base_schema, drop=None, **changes):
    ev = good(base_schema)
    if drop:
        ev.pop(drop)
    ev.update(changes)
    return json.dumps(ev)


def corpus(schema, wrong_schema):
    """(name, raw bytes) — each must be refused by the worker loop. On
    pipeline.trigger `{}` is a minimal trigger (proto/topics.md), so it is
    left out there."""
    cases = [
        ("not JSON", b"this is not json"),
        ("half an object", b'{"schema": '),
        ("JSON array", b"[]"),
        ("JSON number", b"42"),
        ("JSON string", b'"pipeline.trigger"'),
        ("JSON null", b"null"),
        ("empty object", b"{}"),
        ("trailing garbage", (json.dumps(good(schema)) + " trailing").encode()),
        ("NUL byte", json.dumps(good(schema)).encode()[:-1] + b"\x00}"),
        ("invalid UTF-8", b'{"schema": "\xff\xfe"}'),
        ("nesting bomb", b"[" * 20000 + b"]" * 20000),
        ("schema missing", variant(schema, drop="schema").encode()),
        ("wrong schema", variant(schema, schema=wrong_schema).encode()),
        ("unknown schema version", variant(schema, schemaVersion=2).encode()),
        ("schema version as text", variant(schema, schemaVersion="1").encode()),
        ("schema version missing", variant(schema, drop="schemaVersion").encode()),
        ("run id missing", variant(schema, drop="runId").encode()),
        ("run id empty", variant(schema, runId="").encode()),
        ("run id path traversal", variant(schema, runId="../../etc/passwd").encode()),
        ("run id 900 KB", variant(schema, runId="r" * 900_000).encode()),
        ("event id missing", variant(schema, drop="eventId").encode()),
        ("source id with newline", variant(schema, sourceId="default\nx").encode()),
        ("source id with Redis glob", variant(schema, sourceId="*").encode()),
        ("producedAt missing", variant(schema, drop="producedAt").encode()),
        ("payload missing", variant(schema, drop="payload").encode()),
        ("payload array", variant(schema, payload=[]).encode()),
        ("payload string", variant(schema, payload="{}").encode()),
        ("attempt zero", variant(schema, attempt=0).encode()),
        ("attempt fractional", variant(schema, attempt=1.5).encode()),
        ("dataset version negative", variant(schema, datasetVersion=-1).encode()),
        ("dataset version text", variant(schema, datasetVersion="1").encode()),
        ("dataset version 1e300", variant(schema, datasetVersion=1e300).encode()),
    ]
    if schema == "pipeline.trigger":
        cases = [c for c in cases if c[0] != "empty object"]
    return cases


def written(stack):
    counts = tuple(stack.count(t) for t in ("datasets", "stops", "virtual_stops", "graphs"))
    return counts, stack.redis_cli("DBSIZE")


def check_worker(stack, worker, input_topic, schema, wrong_schema, good_event, out_topic,
                 out_status):
    before = written(stack)
    cases = corpus(schema, wrong_schema)
    for _, raw in cases:
        stack.produce(input_topic, raw)
    faults.count("bad_inputs_tried", len(cases))
    stack.produce(input_topic, good_event)

    def done():
        for m in stack.consume(out_topic, 0, timeout=1):
            if (m["json"] or {}).get("runId") == good_event["runId"]:
                return m["json"]
        return None

    def finished():  # a step that hands nothing on (TG_STEP_NOTHING)
        return [line for line in worker.log_lines() if line.get("runId") == good_event["runId"]
                and line.get("message", "").startswith("Worker finished")]
    if out_topic:
        out = wait_for(done, 90, interval=0.5, what=f"{worker.name} to handle the good event")
        assert out["payload"]["status"] == out_status, out
    else:
        wait_for(finished, 90, interval=0.5, what=f"{worker.name} to handle the good event")

    def dead_letters():
        got = [m for m in faults.consume_raw(stack, "pipeline.dead-letter")
               if m["hdrs"].get("x-worker") == worker.name]
        return got if len(got) >= len(cases) else None
    letters = wait_for(dead_letters, 30, interval=0.5, what="the dead letters")
    problems = []
    if len(letters) != len(cases):
        problems.append(f"{len(letters)} dead letters for {len(cases)} malformed events")
    for (name, raw), m in zip(cases, letters):
        h = m["hdrs"]
        if not h.get("x-error") or h.get("x-original-topic") != stack.topic(input_topic) \
                or "x-original-offset" not in h or "x-failed-at" not in h:
            problems.append(f"{name}: headers {h}")
        elif (m.get("payload") or "").encode("utf-8", "surrogateescape")[:64] != raw[:64] \
                and b"\xff" not in raw and b"\x00" not in raw:
            problems.append(f"{name}: payload changed: {m.get('payload', '')[:80]!r}")
        else:
            faults.count("bad_inputs_rejected")
    if stack.consume("pipeline.step.failed", 1, timeout=1):
        problems.append("a malformed event reached the step (step.failed emitted)")
    assert written(stack)[0] == before[0] or out_status == "success", written(stack)
    assert worker.proc.poll() is None, worker.logs()[-3000:]
    assert not problems, "\n".join(problems)
    return [(name, m["hdrs"].get("x-error")) for (name, _), m in zip(cases, letters)]


def test_odata_sync_worker_dead_letters(stack, odata_server):
    srv = odata_server(SAMPLE, "--quiet")
    worker = stack.start("odata-sync-worker", env={"ODATA_URL": srv.url()})
    check_worker(stack, worker, "pipeline.trigger", "pipeline.trigger", "graph.completed",
                 good("pipeline.trigger", trigger="kafka"), "pipeline.odata-sync.completed",
                 "success")
    assert stack.count("datasets") == 1  # only the good trigger saved anything


def test_virtual_entities_generator_dead_letters(stack):
    worker = stack.start("virtual-entities-generator")
    ev = good("odata-sync.completed", status="success")  # no dataset: skipped
    check_worker(stack, worker, "pipeline.odata-sync.completed", "odata-sync.completed",
                 "pipeline.trigger", ev, "pipeline.virtual-entities.completed", "skipped")
    assert stack.count("virtual_stops") == 0


def test_graph_builder_dead_letters(stack):
    worker = stack.start("graph-builder")
    # Another worker's single-worker run: done without work or event.
    ev = good("virtual-entities.completed", status="success", only="odata-sync-worker")
    check_worker(stack, worker, "pipeline.virtual-entities.completed",
                 "virtual-entities.completed", "odata-sync.completed", ev, None, None)
    assert stack.redis_cli("EXISTS", "graph:version") == "0"
