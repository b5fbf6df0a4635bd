"""The orchestrator's OpenAPI document against its live answers: one run of
the four real services on the bundled sample data, then every operation of
the document called (answers that succeed and the errors a client meets),
each JSON body validated with jsonschema against the document's schema for
that status made strict: no field the document does not name
(additionalProperties false unless it says otherwise), none of its required
ones missing. The document itself must give every operation an operationId
and a tag, every object in a response a required list, and every response
an example that passes the same strict check."""
import copy
import json
import os

import jsonschema
import pytest

from conftest import SOURCE_DIR
from orchestrator_test import call
from pipeline_test import SAMPLE, start_all

TOKEN = "openapi-token"
DOC_PATH = os.path.join(SOURCE_DIR, "services", "orchestrator", "openapi.json")
METHODS = ("get", "post", "put", "patch", "delete")


def strict(schema, components):
    """The OpenAPI 3.0 schema as a strict JSON Schema: references inlined,
    nullable as a null type, objects closed unless they say otherwise."""
    if isinstance(schema, list):
        return [strict(s, components) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return strict(components[schema["$ref"].rsplit("/", 1)[1]], components)
    out = {k: strict(v, components) if k in ("items", "additionalProperties") else v
           for k, v in schema.items() if k not in ("nullable", "example", "properties")}
    if "properties" in schema:
        out["properties"] = {k: strict(v, components) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    if schema.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = out["enum"] + [None]
    return out


def objects_without_required(schema, components, where, seen=None):
    """Where an object schema with properties in a response has no required list."""
    seen = set() if seen is None else seen
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        seen.add(name)
        return objects_without_required(components[name], components, name, seen)
    found = [where] if "properties" in schema and "required" not in schema else []
    for key, sub in (schema.get("properties") or {}).items():
        found += objects_without_required(sub, components, f"{where}.{key}", seen)
    for key in ("items", "additionalProperties"):
        found += objects_without_required(schema.get(key), components, f"{where}[]", seen)
    return found


@pytest.fixture(scope="module")
def doc():
    with open(DOC_PATH) as f:
        return json.load(f)


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def response_schema(doc, path, method, status):
    responses = doc["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path}: status {status} undocumented"
    content = responses[str(status)].get("content", {})
    media = content.get("application/json")
    return media and strict(media["schema"], doc["components"]["schemas"])


def test_document_is_complete(doc):
    components = doc["components"]["schemas"]
    problems = []
    for path, method, op in operations(doc):
        name = f"{method.upper()} {path}"
        if not op.get("operationId") or not op.get("tags"):
            problems.append(f"{name}: operationId and tags")
        for status, resp in op["responses"].items():
            media = resp.get("content", {}).get("application/json")
            if not media:
                continue
            where = f"{name} {status}"
            problems += [f"{w}: no required" for w in
                         objects_without_required(media["schema"], components, where)]
            if "example" not in media:
                problems.append(f"{where}: no example")
                continue
            schema = strict(media["schema"], components)
            for e in jsonschema.Draft7Validator(schema).iter_errors(media["example"]):
                problems.append(f"{where} example at /{'/'.join(map(str, e.path))}: {e.message}")
    assert not problems, "\n".join(problems)


def test_live_answers_match_the_document_strictly(stack, odata_server, doc):
    orch = start_all(stack, odata_server(SAMPLE, "--quiet"), API_TOKEN=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    seen, problems = set(), []

    def check(method, template, path, headers=None, expect=None):
        status, body, hdrs = call(orch, method, path, headers=headers)
        if expect is not None:
            assert status == expect, (method, path, status, body)
        seen.add((template, method.lower()))
        if os.environ.get("OPENAPI_CAPTURE"):  # to refresh the document's examples
            with open(os.environ["OPENAPI_CAPTURE"], "a") as f:
                f.write(json.dumps([template, method.lower(), status, body]) + "\n")
        schema = response_schema(doc, template, method.lower(), status)
        if schema is None:
            return status, body
        assert hdrs["Content-Type"].startswith("application/json"), (path, hdrs)
        for e in jsonschema.Draft7Validator(schema).iter_errors(body):
            problems.append(f"{method} {path} {status} at /{'/'.join(map(str, e.path))}: "
                            f"{e.message}")
        return status, body

    _, run = check("POST", "/api/v1/workers/execute", "/api/v1/workers/execute", auth, 200)
    run_id = run["runId"]
    check("POST", "/api/v1/workers/execute", "/api/v1/workers/execute", None, 401)
    check("POST", "/api/v1/workers/execute", "/api/v1/workers/execute?wait=x", auth, 400)
    _, one = check("POST", "/api/v1/workers/{workerId}/execute",
                   "/api/v1/workers/graph-builder/execute?force=true", auth, 200)
    check("POST", "/api/v1/workers/{workerId}/execute", "/api/v1/workers/nope/execute", auth, 404)
    check("POST", "/api/v1/workers/execute", "/api/v1/workers/execute?force=true",
          dict(auth, Prefer="respond-async"), 202)
    check("POST", "/api/v1/workers/execute", "/api/v1/workers/execute", auth, 409)
    check("GET", "/api/v1/workers", "/api/v1/workers", None, 200)
    check("GET", "/api/v1/workers/{workerId}/status", "/api/v1/workers/odata-sync-worker/status",
          None, 200)
    check("GET", "/api/v1/workers/{workerId}/status", "/api/v1/workers/nope/status", None, 404)
    check("GET", "/api/v1/workers/pipeline/status", "/api/v1/workers/pipeline/status", None, 200)
    check("GET", "/api/v1/runs", "/api/v1/runs", None, 200)
    check("GET", "/api/v1/runs", "/api/v1/runs?limit=0", None, 400)
    check("GET", "/api/v1/runs/{runId}", f"/api/v1/runs/{run_id}", None, 200)
    check("GET", "/api/v1/runs/{runId}", "/api/v1/runs/no-such-run", None, 404)
    check("POST", "/api/v1/runs/{runId}/cancel", f"/api/v1/runs/{run_id}/cancel", auth, 409)
    check("POST", "/api/v1/runs/{runId}/cancel", "/api/v1/runs/no-such-run/cancel", auth, 404)
    check("POST", "/api/v1/runs/{runId}/retry", "/api/v1/runs/no-such-run/retry", auth, 404)
    check("GET", "/api/v1/graphs", "/api/v1/graphs", None, 200)
    _, graphs = check("GET", "/api/v1/graphs", "/api/v1/graphs?limit=1", None, 200)
    check("POST", "/api/v1/graphs/{version}/activate", "/api/v1/graphs/graph-v1/activate", auth,
          404)
    check("GET", "/api/v1/dead-letters", "/api/v1/dead-letters", None, 200)
    check("GET", "/api/v1/dead-letters", "/api/v1/dead-letters?limit=0", None, 400)
    check("POST", "/api/v1/dead-letters/replay", "/api/v1/dead-letters/replay?partition=0&offset=5",
          auth, 404)
    check("POST", "/api/v1/dead-letters/replay", "/api/v1/dead-letters/replay?partition=x", auth,
          400)
    check("POST", "/api/v1/dead-letters/replay",
          "/api/v1/dead-letters/replay?topic=pipeline.trigger&partition=0&offset=0", auth, 202)
    check("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, 200)
    check("GET", "/healthz", "/healthz", None, 200)
    check("GET", "/readyz", "/readyz", None, 200)
    check("GET", "/metrics", "/metrics", None, 200)
    # The last: the replayed and forced runs may still run; a retry of the
    # first run answers 409 or starts it again.
    check("POST", "/api/v1/runs/{runId}/retry", f"/api/v1/runs/{run_id}/retry", auth)
    check("POST", "/api/v1/graphs/{version}/activate",
          f"/api/v1/graphs/{graphs['graphs'][0]['version']}/activate", auth)
    missing = {(p, m) for p, m, _ in operations(doc)} - seen
    assert not missing, f"operations not exercised: {sorted(missing)}"
    assert not problems, "\n".join(problems)
