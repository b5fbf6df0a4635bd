"""The one-shot setup of docker-compose.yml (deploy/docker/setup.sh), run for
real against the local stack (deploy/stack.sh) with the built pipeline-admin
on PATH, as the compose container runs it: the migrations are applied, the
topics exist with their partitions, the bucket exists, and a second run
changes nothing and still succeeds. Isolated by a schema, a topic prefix and
a bucket of its own.
"""
import os
import re
import subprocess
import uuid

import pytest

SOURCE = os.path.abspath(os.environ.get("TG_SOURCE_DIR",
                                        os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("TG_BUILD_DIR", os.path.join(SOURCE, "build"))
SETUP = os.path.join(SOURCE, "deploy", "docker", "setup.sh")
TOPICS = ["pipeline.trigger", "pipeline.odata-sync.completed",
          "pipeline.virtual-entities.completed", "pipeline.graph.completed",
          "pipeline.step.failed", "pipeline.retry.1m", "pipeline.retry.5m",
          "pipeline.dead-letter"]


def stack_env():
    out = subprocess.run(["bash", os.path.join(SOURCE, "deploy", "stack.sh"), "env"],
                         capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^export (\w+)=['\"]?(.*?)['\"]?$", out, re.M))


def s3(env, method, path):
    """HTTP status of a SigV4-signed request to the stack's S3."""
    return subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method,
         "--aws-sigv4", f"aws:amz:{env['S3_REGION']}:s3",
         "--user", f"{env['S3_ACCESS_KEY']}:{env['S3_SECRET_KEY']}",
         f"{env['S3_ENDPOINT']}/{path}"], capture_output=True, text=True).stdout


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def setup_env():
    stack = stack_env()
    tag = uuid.uuid4().hex[:8]
    schema = f"deploy_setup_{tag}"
    psql(stack["DATABASE_URL"], f"CREATE SCHEMA {schema}")
    env = dict(os.environ, **stack)
    env.update({
        "PATH": os.path.join(BUILD, "services", "pipeline-admin") + os.pathsep + env["PATH"],
        "DATABASE_URL": f"{stack['DATABASE_URL']}?options=-csearch_path%3D{schema}",
        "SQL_DIR": os.path.join(SOURCE, "sql"),
        "TOPIC_PREFIX": f"deploy{tag}.",
        "TOPIC_PARTITIONS": "3",
        "S3_BUCKET": f"deploy-setup-{tag}",
        "CONNECT_TIMEOUT_S": "5",
    })
    yield env
    psql(stack["DATABASE_URL"], f"DROP SCHEMA {schema} CASCADE")
    s3(env, "DELETE", env["S3_BUCKET"])


def run_setup(env):
    out = subprocess.run(["/bin/sh", SETUP], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def partitions(env, topic):
    out = subprocess.run(["kcat", "-b", env["KAFKA_BROKERS"], "-L", "-t", topic],
                         capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"topic \"[^\"]+\" with (\d+) partitions", out)
    return int(m.group(1)) if m else 0


def test_setup_migrates_creates_topics_and_bucket_and_can_run_again(setup_env):
    env = setup_env
    assert "S3 bucket" in run_setup(env)
    migrations = sorted(f for f in os.listdir(env["SQL_DIR"]) if f.endswith(".sql"))
    applied = psql(env["DATABASE_URL"], "SELECT version FROM schema_migrations ORDER BY 1")
    assert applied.split("\n") == migrations
    for topic in TOPICS:
        assert partitions(env, env["TOPIC_PREFIX"] + topic) == 3, topic
    assert s3(env, "HEAD", env["S3_BUCKET"]) == "200"

    run_setup(env)  # compose runs it on every `up`
    assert psql(env["DATABASE_URL"], "SELECT count(*) FROM schema_migrations") == \
        str(len(migrations))


def test_setup_names_the_cause_when_s3_refuses(setup_env):
    env = dict(setup_env, S3_SECRET_KEY="wrong-secret")
    out = subprocess.run(["/bin/sh", SETUP], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0
    assert "S3_ENDPOINT: creating bucket" in out.stderr and "HTTP 403" in out.stderr


def config_env():
    """deploy/k8s/base/config.env as a dict (the ConfigMap's data)."""
    pairs = {}
    for line in open(os.path.join(SOURCE, "deploy", "k8s", "base", "config.env"),
                     encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc, port, seconds=30):
    import time
    import urllib.request
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False


@pytest.mark.parametrize("service", ["odata-sync-worker", "virtual-entities-generator",
                                     "graph-builder", "orchestrator"])
def test_service_starts_with_the_configmap_values(setup_env, service, tmp_path):
    """Every value of config.env passes the service's own validation: it
    starts, reports ready, and stops cleanly on SIGTERM. Only the endpoints
    (and the image's paths) are the local stack's."""
    run_setup(setup_env)
    env = dict(setup_env, **config_env())
    port = free_port()
    env.update({k: setup_env[k] for k in ("KAFKA_BROKERS", "S3_ENDPOINT", "S3_BUCKET",
                                          "S3_REGION", "TOPIC_PREFIX")})
    env.update({"HTTP_PORT": str(port), "SQL_DIR": setup_env["SQL_DIR"],
                "CITIES_FILE": os.path.join(SOURCE, "deploy", "sample-data", "cities.csv"),
                "ODATA_URL": "http://127.0.0.1:9/odata"})
    log = open(tmp_path / f"{service}.log", "w+")
    proc = subprocess.Popen([os.path.join(BUILD, "services", service, service)], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = wait_ready(proc, port)
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    log.seek(0)
    output = log.read()
    assert ready, f"{service} did not get ready:\n{output[-3000:]}"
    assert code == 0, f"{service} exited {code} on SIGTERM:\n{output[-3000:]}"
