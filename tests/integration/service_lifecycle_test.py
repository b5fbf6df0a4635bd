"""Every service starts, reports ready, shuts down cleanly on SIGTERM, and
refuses bad connection settings with one clear line and a non-zero exit."""
import json
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import STACK, binary, free_port

SERVICES = ["odata-sync-worker", "virtual-entities-generator", "graph-builder", "orchestrator"]


def service_env(stack, name):
    env = {}
    if name == "odata-sync-worker":
        env["ODATA_URL"] = "http://127.0.0.1:9/odata/"  # not contacted until a trigger arrives
    return env


@pytest.mark.parametrize("name", SERVICES)
def test_ready_then_clean_exit_on_sigterm(stack, name):
    svc = stack.start(name, env=service_env(stack, name))
    with urllib.request.urlopen(svc.url("/readyz"), timeout=2) as r:
        body = json.loads(r.read())
    assert r.status == 200
    assert body["status"] == "ready"
    with urllib.request.urlopen(svc.url("/healthz"), timeout=2) as r:
        assert r.status == 200
    with urllib.request.urlopen(svc.url("/metrics"), timeout=2) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
    started = time.monotonic()
    svc.proc.send_signal(signal.SIGTERM)
    code = svc.proc.wait(10)
    elapsed = time.monotonic() - started
    assert code == 0, svc.logs()[-2000:]
    assert elapsed < 5.0, f"{name} took {elapsed:.1f}s to exit"


BAD_SETTINGS = [
    ("KAFKA_BROKERS", "127.0.0.1:1", "KAFKA_BROKERS"),
    ("DATABASE_URL", "postgresql://transit:transit@127.0.0.1:1/transit", "DATABASE_URL"),
    ("DATABASE_URL", STACK["DATABASE_URL"].replace("transit:transit@", "transit:wrong@"),
     "DATABASE_URL"),
    ("REDIS_URL", "redis://127.0.0.1:1/0", "REDIS_URL"),
    ("REDIS_URL", "not-a-url", "REDIS_URL"),
    ("HTTP_PORT", "http", "HTTP_PORT"),
]


ORCHESTRATOR_BAD_SETTINGS = [
    ("SCHEDULE_CHECK_MS", "0", "SCHEDULE_CHECK_MS"),
    ("DATASET_KEEP_VERSIONS", "none", "DATASET_KEEP_VERSIONS"),
    ("RUN_RETENTION_DAYS", "-1", "RUN_RETENTION_DAYS"),
]


@pytest.mark.parametrize("var,value,named", ORCHESTRATOR_BAD_SETTINGS)
def test_bad_orchestrator_setting_stops_start_up(stack, var, value, named):
    env = dict(stack.env, **service_env(stack, "orchestrator"))
    env.update({var: value, "HTTP_PORT": str(free_port())})
    proc = subprocess.run([binary("orchestrator")], env=env, capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"orchestrator: {named}:"), proc.stderr[-2000:]


@pytest.mark.parametrize("name", SERVICES)
@pytest.mark.parametrize("var,value,named", BAD_SETTINGS)
def test_bad_setting_gives_one_clear_line(stack, name, var, value, named):
    if var == "REDIS_URL" and name != "graph-builder":
        pytest.skip("only graph-builder uses Redis")
    env = dict(stack.env, **service_env(stack, name))
    env.update({var: value, "CONNECT_TIMEOUT_S": "3", "HTTP_PORT": str(free_port())})
    if var == "HTTP_PORT":
        env["HTTP_PORT"] = value
    started = time.monotonic()
    proc = subprocess.run([binary(name)], env=env, capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode not in (0, -signal.SIGSEGV, -signal.SIGABRT), proc.stderr
    assert proc.returncode > 0
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1]
    assert last.startswith(f"{name}: {named}:"), proc.stderr[-2000:]
    assert elapsed < 3 + 10, f"took {elapsed:.1f}s"
