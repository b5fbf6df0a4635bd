"""The pipeline image run the way Kubernetes runs it (issue 17): the image
built from the working tree by deploy/image.sh (the image.build test), every
program started from it as user 10001:10001 with a read-only root
filesystem (only /tmp writable, as the manifests' emptyDir), no
capabilities, no privilege escalation and the host's network to the local
stack. pipeline-admin migrates a fresh database and creates topics under a
fresh prefix from the image; the four services and route-api run from it;
the pipeline runs through the REST API on the bundled sample data (served by
tests/odata/odata_server.py on the host) and succeeds; pipelinectl reads the
run back; every service answers /healthz, /readyz and /metrics; and SIGTERM
(`podman stop`) ends each within the shortest grace period of the manifests
with exit code 0."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import conftest as cf  # noqa: E402
from conftest import STACK, SOURCE_DIR, BUILD_DIR, ODataServer, free_port, wait_for  # noqa: E402
from orchestrator_test import call  # noqa: E402
from pipeline_test import SAMPLE, assert_graph_published  # noqa: E402


def image_env():
    out = subprocess.run(["bash", os.path.join(SOURCE_DIR, "deploy", "image.sh"), "env"],
                         check=True, capture_output=True, text=True,
                         env=dict(os.environ, BUILD_DIR=BUILD_DIR)).stdout
    return dict(pair.split("=", 1) for pair in out.split()[1:])


IMAGE_ENV = image_env()
IMAGE = IMAGE_ENV["IMAGE"]
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=IMAGE_ENV["CONTAINERS_CONF"])
# As the manifests' securityContext (runAsUser/runAsGroup 10001,
# readOnlyRootFilesystem, drop ALL, allowPrivilegeEscalation false) and their
# emptyDir on /tmp; the host network stands in for the pod's.
K8S = ["--user", "10001:10001", "--read-only", "--read-only-tmpfs=false", "--tmpfs", "/tmp",
       "--cap-drop=ALL", "--security-opt", "no-new-privileges", "--network=host"]
# The shortest terminationGracePeriodSeconds of the manifests (route-api):
# an idle service must be gone well within it.
GRACE_S = 30
# What a container is given: the stack's settings and this test's slice of it.
PIPELINE_VARS = list(STACK) + ["DATABASE_URL", "REDIS_URL", "TOPIC_PREFIX", "TOPIC_PARTITIONS",
                               "LOG_LEVEL", "CONNECT_TIMEOUT_S"]


# Containers of this build dir's runs carry this label: a run killed midway
# leaves them behind, and the next run removes them.
LEFTOVER = f"transit-graph.test-build-dir={os.path.abspath(BUILD_DIR)}"


def podman(*args, check=True, timeout=120):
    out = subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True,
                         timeout=timeout)
    if check:
        assert out.returncode == 0, f"podman {' '.join(args[:3])}...: {out.stderr[-2000:]}"
    return out


def env_args(env):
    return [arg for k, v in sorted(env.items()) for arg in ("--env", f"{k}={v}")]


class ImageStack(cf.Stack):
    """conftest's Stack (own database, topic prefix and Redis database), with
    pipeline-admin and every service run from the image."""

    def container_env(self, extra=None):
        env = {k: self.env[k] for k in PIPELINE_VARS}
        env.update(extra or {})
        return env

    def run(self, *args, env=None, check=True):
        return podman("run", "--rm", *K8S, *env_args(self.container_env(env)), IMAGE, *args,
                      check=check)

    def admin(self, *args, env=None):
        for attempt in range(3):  # a busy broker gets two more tries, as in conftest
            out = self.run("pipeline-admin", *args, env=env, check=False)
            if out.returncode == 0:
                return out
            time.sleep(1 + attempt)
        raise AssertionError(f"pipeline-admin {' '.join(args)} in the image failed: "
                             f"{out.stderr[-2000:]}")

    def start(self, name, env=None, port=None, wait_ready=True):
        svc = Container(name, self.container_env(env), port or free_port(), self.tag)
        self.services.append(svc)
        if wait_ready:
            svc.wait_ready()
        return svc

    def close(self):
        for svc in self.services:
            svc.stop()
            svc.remove()
        self.redis_cli("FLUSHDB")
        self.run("pipeline-admin", "delete-topics", check=False)
        subprocess.run(["psql", STACK["DATABASE_URL"], "-qc",
                        f"DROP DATABASE IF EXISTS {self.db_name} WITH (FORCE)"],
                       capture_output=True)


class Container(cf.Service):
    """One service in its container, attached: the podman process ends with
    the container and returns its exit code; the log is its stdout."""

    def __init__(self, name, env, port, tag):
        self.name, self.port = name, port
        self.container = f"tg-image-{tag}-{name}"
        self.expect_nonzero = False
        logdir = os.path.join(BUILD_DIR, "test-logs")
        os.makedirs(logdir, exist_ok=True)
        self.log_path = os.path.join(logdir, f"image-{name}-{port}.log")
        self.log = open(self.log_path, "wb")
        env = dict(env, HTTP_PORT=str(port))
        self.proc = subprocess.Popen(
            ["podman", "run", "--name", self.container, "--label", LEFTOVER, *K8S,
             *env_args(env), IMAGE, name],
            env=PODMAN_ENV, stdout=self.log, stderr=subprocess.STDOUT)
        self.stopped_in = None

    def stop(self, timeout=GRACE_S):
        """SIGTERM through `podman stop -t GRACE` (SIGKILL after it, as the
        kubelet does); returns the container's exit code."""
        if self.proc.poll() is None:
            started = time.monotonic()
            podman("stop", "-t", str(timeout), self.container, check=False, timeout=timeout + 30)
            self.proc.wait(30)
            self.stopped_in = time.monotonic() - started
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def remove(self):
        podman("rm", "-f", "--ignore", self.container, check=False)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def stack():
    leftovers = podman("ps", "-aq", "--filter", f"label={LEFTOVER}").stdout.split()
    if leftovers:
        podman("rm", "-f", *leftovers, check=False)
    s = ImageStack()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture(scope="module")
def odata():
    srv = ODataServer(SAMPLE, "--quiet")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def services(stack, odata):
    return {
        "odata-sync-worker": stack.start("odata-sync-worker", {"ODATA_URL": odata.url()}),
        "virtual-entities-generator": stack.start("virtual-entities-generator"),
        "graph-builder": stack.start("graph-builder"),
        "orchestrator": stack.start("orchestrator", {"RETRY_DELAYS_S": "1,2",
                                                     "SCHEDULE_INTERVAL_S": "0"}),
    }


def test_image_runs_as_user_10001_on_a_read_only_root():
    info = json.loads(podman("image", "inspect", IMAGE).stdout)[0]
    assert info["Config"]["User"] == "10001:10001"
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == IMAGE.rsplit(":", 1)[1]
    head = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "unknown"
    assert labels["org.opencontainers.image.revision"] in (head, f"{head}-dirty"), labels
    # As Kubernetes runs it: writing anywhere but /tmp fails; the programs
    # and their data are there and readable by that user.
    out = podman("run", "--rm", *K8S, IMAGE, "sh", "-c",
                 "id -u; id -g; touch /tmp/ok && echo tmp-writable; "
                 "touch /usr/local/bin/x 2>/dev/null || echo root-read-only; "
                 "cat \"$SQL_DIR\"/*.sql \"$CITIES_FILE\" /usr/share/transit-graph/mappings/* "
                 ">/dev/null && echo data-readable; grep CapEff /proc/self/status").stdout.split("\n")
    assert out[:5] == ["10001", "10001", "tmp-writable", "root-read-only", "data-readable"], out
    assert out[5].split() == ["CapEff:", "0000000000000000"], out


def test_every_program_finds_its_libraries():
    out = podman("run", "--rm", *K8S, IMAGE, "sh", "-c",
                 "for p in /usr/local/bin/*; do ldd $p | sed \"s|^|$p: |\"; done").stdout
    assert "not found" not in out, out
    programs = set(re.findall(r"^/usr/local/bin/([\w-]+):", out, re.M))
    assert programs == {"odata-sync-worker", "virtual-entities-generator", "graph-builder",
                        "orchestrator", "route-api", "pipeline-admin", "pipelinectl"}


def test_release_programs_carry_no_test_fault_hooks():
    """The image is built without TG_FAULT_HOOKS: a deployment that sets a
    test-only setting by mistake finds nothing in the programs that reads it."""
    out = podman("run", "--rm", *K8S, IMAGE, "sh", "-c",
                 "grep -l -a -e FAIL_AFTER /usr/local/bin/* || true").stdout
    assert out.strip() == "", out


def test_admin_migrated_and_created_topics_from_the_image(stack):
    # ImageStack ran `pipeline-admin migrate` and `create-topics` in the image.
    assert stack.count("information_schema.tables",
                       "table_name IN ('runs', 'run_steps', 'datasets', 'graphs')") == 4
    listing = subprocess.run(["kcat", "-L", "-b", STACK["KAFKA_BROKERS"]], capture_output=True,
                             text=True, check=True, timeout=60).stdout
    topics = set(re.findall(rf'topic "{re.escape(stack.topic_prefix)}([^"]+)"', listing))
    assert {"pipeline.trigger", "pipeline.graph.completed", "pipeline.dead-letter"} <= topics


def test_services_answer_health_readiness_and_metrics(services):
    for name, svc in services.items():
        assert get(svc.url("/healthz"))[0] == 200, name
        assert get(svc.url("/readyz"))[0] == 200, name
        status, text = get(svc.url("/metrics"))
        assert status == 200 and f'tg_build_info{{service="{name}"' in text, (name, text[:500])


def test_pipeline_runs_through_the_rest_api(stack, services):
    orch = services["orchestrator"]
    status, body, _ = call(orch, "POST", "/api/v1/workers/execute?wait=120")
    assert status == 200 and body["success"] is True, body
    assert [r["workerId"] for r in body["workerResults"]] == [
        "odata-sync-worker", "virtual-entities-generator", "graph-builder"]
    assert body["workerResults"][0]["dataProcessed"]["added"] > 0
    assert_graph_published(stack, body["runId"])
    assert stack.count("virtual_stops") > 0
    # The backup reached S3 from the container (S3 step of worker 1).
    assert stack.count("datasets", "backup_key IS NOT NULL") > 0

    # pipelinectl, from the image, reads the run back.
    out = stack.run("pipelinectl", "--json", "run", body["runId"],
                    env={"ORCHESTRATOR_URL": f"http://127.0.0.1:{orch.port}"})
    assert json.loads(out.stdout)["run"]["status"] == "succeeded", out.stdout


def test_route_api_serves_the_published_graph(stack, services):
    version = stack.redis_cli("GET", "graph:version")
    assert version, "the pipeline test publishes a graph first"
    api = stack.start("route-api")  # ready once it holds a graph
    services["route-api"] = api
    status, text = get(api.url("/api/v1/graph"))
    assert status == 200 and json.loads(text)["version"] == version, text
    assert int(json.loads(text)["nodes"]) > 0
    assert get(api.url("/healthz"))[0] == 200
    status, text = get(api.url("/metrics"))
    assert status == 200 and 'tg_build_info{service="route-api"' in text


def test_sigterm_stops_each_within_its_grace_period(services):
    for name, svc in services.items():
        code = svc.stop()
        assert svc.stopped_in is not None, f"{name} exited {code} before SIGTERM"
        assert code == 0, f"{name} exited {code} after SIGTERM: {svc.logs()[-2000:]}"
        assert svc.stopped_in < GRACE_S, f"{name} took {svc.stopped_in:.1f}s"
        state = json.loads(podman("inspect", svc.container).stdout)[0]["State"]
        assert state["ExitCode"] == 0 and not state.get("OOMKilled"), state
