"""Deployment checks without Docker or a cluster (issue 7): the compose file
validates and agrees with the code; the kustomize base and example overlay
render, match the Kubernetes schemas and keep every rule (probes, resources,
non-root, configuration, ports, scaling); the image installs exactly the
libraries the binaries link; docs/deploy.md lists the topics of
proto/topics.md. Each checker is also shown to fail on a broken copy.

Run through tests/deploy/tools.sh (it provides kustomize, docker-compose and
kubernetes-validate): bash tests/deploy/tools.sh pytest tests/deploy/deploy_test.py
"""
import copy
import os
import subprocess
import sys

import pytest
import yaml

sys.path.insert(0, os.path.dirname(__file__))
import check_deploy as cd  # noqa: E402

SOURCE = os.path.abspath(os.environ.get("TG_SOURCE_DIR",
                                        os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("TG_BUILD_DIR", os.path.join(SOURCE, "build"))
KUSTOMIZE = os.environ.get("KUSTOMIZE", "kustomize")
DOCKER_COMPOSE = os.environ.get("DOCKER_COMPOSE", "docker-compose")
VALIDATE = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
KUSTOMIZATIONS = {"base": "deploy/k8s/base", "overlay": "deploy/k8s/overlays/example"}
# The oldest Kubernetes still served by the major clouds, and the newest.
K8S_VERSIONS = ("1.30.0", "1.37.0")


def run(*cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=SOURCE, **kw)


@pytest.fixture(scope="module")
def facts():
    return cd.CodeFacts(SOURCE)


@pytest.fixture(scope="module", params=sorted(KUSTOMIZATIONS))
def rendered(request):
    out = run(KUSTOMIZE, "build", KUSTOMIZATIONS[request.param])
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def compose():
    out = run(DOCKER_COMPOSE, "-f", "docker-compose.yml", "config")
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def expect(findings, fragment):
    """The checker reported fragment (and said why, for the log)."""
    assert any(fragment in f for f in findings), \
        f"expected a finding with {fragment!r}, got: {findings}"


# ---- code facts -------------------------------------------------------------

def test_code_has_the_services_on_their_ports(facts):
    assert cd.check_code(facts) == []


def test_code_scanner_finds_each_way_a_variable_is_read(tmp_path):
    (tmp_path / "a.c").write_text(
        '#define HUB_ENV "HUB_NAME"\n'
        'x = tg_env_str("PLAIN_VAR", NULL);\n'
        'rc = tg_env_long(HUB_ENV, 1, 0, 9, &n, e, l);\n'
        'snprintf(name, sizeof name, "STEP_TIMEOUT_%d", i + 1);\n'
        'rc = tg_env_long(name, 1, 0, 9, &n, e, l);\n'
        'p = getenv("KAFKA_CONF_ACKS");\n')
    found = cd.env_vars_read(str(tmp_path))
    assert {"PLAIN_VAR", "HUB_NAME", "STEP_TIMEOUT_1", "STEP_TIMEOUT_3"} <= set(found)
    assert "KAFKA_CONF_ACKS" not in found  # a passthrough, optional by design


def test_code_scanner_sees_the_shared_configuration(facts):
    for var in ("KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "S3_ENDPOINT", "HTTP_PORT"):
        assert var in facts.common_env
    assert "SQL_DIR" in facts.service_env[cd.ADMIN]


# ---- docker-compose ---------------------------------------------------------

def test_compose_file_validates():
    out = run(DOCKER_COMPOSE, "-f", "docker-compose.yml", "config", "-q")
    assert out.returncode == 0, out.stderr


def test_compose_validator_rejects_an_unknown_option(tmp_path):
    text = open(os.path.join(SOURCE, "docker-compose.yml")).read()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("    healthcheck:", "    healthchek:", 1))
    out = run(DOCKER_COMPOSE, "-f", str(broken), "--project-directory", SOURCE, "config", "-q")
    assert out.returncode != 0 and "healthchek" in out.stderr


def test_compose_agrees_with_code(compose, facts):
    assert cd.check_compose(compose, facts) == []


COMPOSE_MUTATIONS = {
    "healthcheck removed": (lambda c: c["services"]["graph-builder"].pop("healthcheck"),
                            "compose service graph-builder: no healthcheck"),
    "env var removed": (lambda c: c["services"]["virtual-entities-generator"]["environment"]
                        .pop("CITIES_FILE"), "virtual-entities-generator: CITIES_FILE is not set"),
    "image tag differs": (lambda c: c["services"]["orchestrator"].update(
        image="transit-graph:0.9"), "orchestrator: image 'transit-graph:0.9'"),
    "port differs": (lambda c: c["services"]["odata-sync-worker"]["environment"].update(
        HTTP_PORT="9999"), "HTTP_PORT=9999 but the port is 8081"),
    "healthcheck on the API port": (
        lambda c: c["services"]["orchestrator"]["healthcheck"].update(
            test=["CMD", "curl", "-fsS", "http://127.0.0.1:3000/readyz"]),
        "orchestrator: no healthcheck on :9090/readyz"),
    "runs as root": (lambda c: c["services"]["orchestrator"].pop("user"),
                     "orchestrator: runs as root"),
    "database port of a laptop": (lambda c: c["services"]["postgres"].update(
        ports=[{"published": 5432, "target": 5432}]),
        "postgres: publishes host port 5432, which PostgreSQL usually holds"),
    "image built elsewhere": (lambda c: c["services"]["transit-graph"]["build"].update(
        dockerfile="Dockerfile.dev"), "transit-graph: does not build deploy/Dockerfile"),
    "broker host unknown": (lambda c: c["services"]["graph-builder"]["environment"].update(
        KAFKA_BROKERS="broker:9092"), "KAFKA_BROKERS names host 'broker'"),
}


@pytest.mark.parametrize("mutation", sorted(COMPOSE_MUTATIONS))
def test_compose_checker_reports(mutation, compose, facts):
    mutate, fragment = COMPOSE_MUTATIONS[mutation]
    broken = copy.deepcopy(compose)
    mutate(broken)
    expect(cd.check_compose(broken, facts), fragment)


# ---- Kubernetes manifests ---------------------------------------------------

def test_manifests_render(rendered):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in cd.load_manifests(rendered)}
    for name in cd.SERVICES:
        assert ("Deployment", name) in kinds
    assert ("Service", "orchestrator") in kinds


@pytest.mark.parametrize("k8s", K8S_VERSIONS)
def test_manifests_match_kubernetes_schemas(rendered, k8s, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(rendered)
    out = run(VALIDATE, "--strict", "--quiet", "-k", k8s, str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def test_manifests_schema_validation_rejects_a_misspelt_field(rendered, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(rendered.replace("readinessProbe:", "readinesProbe:", 1))
    out = run(VALIDATE, "--strict", "--quiet", "-k", K8S_VERSIONS[0], str(path))
    assert out.returncode != 0 and "readinesProbe" in out.stdout + out.stderr


def test_manifests_agree_with_code(rendered, facts):
    assert cd.check_manifests(cd.load_manifests(rendered), facts) == []


def _find(docs, kind, name=None):
    for d in docs:
        if d["kind"] == kind and (name is None or d["metadata"]["name"].startswith(name)):
            return d
    raise KeyError(f"{kind}/{name}")


def _container(docs, deployment):
    return _find(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def _autoscaler_of(docs, deployment):
    """route-api's autoscaler, pointed at another Deployment."""
    hpa = copy.deepcopy(_find(docs, "HorizontalPodAutoscaler", "route-api"))
    hpa["metadata"]["name"] = deployment
    hpa["spec"]["scaleTargetRef"]["name"] = deployment
    return hpa


def _move_to_configmap(docs, var):
    secret, cm = _find(docs, "Secret"), _find(docs, "ConfigMap")
    secret["data"].pop(var)
    cm["data"][var] = "plain"


MANIFEST_MUTATIONS = {
    "readiness probe removed": (
        lambda d: _container(d, "graph-builder").pop("readinessProbe"),
        "Deployment/graph-builder container graph-builder: no readinessProbe"),
    "liveness probe removed": (
        lambda d: _container(d, "orchestrator").pop("livenessProbe"),
        "Deployment/orchestrator container orchestrator: no livenessProbe"),
    "probe on the wrong path": (
        lambda d: _container(d, "odata-sync-worker")["livenessProbe"]["httpGet"].update(
            path="/readyz"), "livenessProbe asks /readyz, not /healthz"),
    "probe on the API port": (
        lambda d: _container(d, "orchestrator")["livenessProbe"]["httpGet"].update(port="http"),
        "orchestrator: livenessProbe port http is not 9090"),
    "PROBE_PORT differs": (
        lambda d: _find(d, "ConfigMap")["data"].update(PROBE_PORT="9191"),
        "route-api: PROBE_PORT=9191 but the probes ask 9090"),
    "memory limit removed": (
        lambda d: _container(d, "odata-sync-worker")["resources"]["limits"].pop("memory"),
        "odata-sync-worker: no memory in resources.limits"),
    "cpu request removed": (
        lambda d: _find(d, "Job", "transit-graph-migrate")["spec"]["template"]["spec"]
        ["containers"][0]["resources"]["requests"].pop("cpu"),
        "Job/transit-graph-migrate container migrate: no cpu in resources.requests"),
    "ConfigMap variable removed": (
        lambda d: _find(d, "ConfigMap")["data"].pop("CITIES_FILE"),
        "virtual-entities-generator: CITIES_FILE is not defined"),
    "Secret variable removed": (
        lambda d: _find(d, "Secret")["data"].pop("DATABASE_URL"),
        "container migrate: DATABASE_URL is not defined"),
    "pipeline-admin variable removed": (
        lambda d: _find(d, "ConfigMap")["data"].pop("SQL_DIR"),
        "container migrate: SQL_DIR is not defined"),
    "secret in a ConfigMap": (
        lambda d: _move_to_configmap(d, "API_TOKEN"),
        "API_TOKEN comes from a ConfigMap, not from a Secret"),
    "test hook configured": (
        lambda d: _find(d, "ConfigMap")["data"].update(GRAPH_FAIL_AFTER_KEYS="10"),
        "GRAPH_FAIL_AFTER_KEYS is a test-only fault injection"),
    "writable root filesystem": (
        lambda d: _container(d, "graph-builder")["securityContext"].update(
            readOnlyRootFilesystem=False), "graph-builder: readOnlyRootFilesystem is not true"),
    "root allowed": (
        lambda d: [x.get("securityContext", {}).pop("runAsNonRoot", None) for x in (
            _container(d, "orchestrator"),
            _find(d, "Deployment", "orchestrator")["spec"]["template"]["spec"])],
        "orchestrator: runAsNonRoot is not true"),
    "capabilities kept": (
        lambda d: _container(d, "orchestrator")["securityContext"].pop("capabilities"),
        "orchestrator: capabilities are not dropped"),
    "port differs from the code": (
        lambda d: _container(d, "orchestrator")["ports"][0].update(containerPort=8080),
        "containerPort 3000 is not declared"),
    "HTTP_PORT differs": (
        lambda d: _container(d, "graph-builder")["env"][0].update(value="9000"),
        "HTTP_PORT=9000 but the service's port is 8083"),
    "image from elsewhere": (
        lambda d: _container(d, "graph-builder").update(image="nginx:1.27"),
        "image 'nginx:1.27' is not the pipeline image"),
    "grace period too short": (
        lambda d: _find(d, "Deployment", "graph-builder")["spec"]["template"]["spec"].update(
            terminationGracePeriodSeconds=30),
        "terminationGracePeriodSeconds 30 is shorter than the step timeout 600"),
    "more replicas than partitions": (
        lambda d: _find(d, "Deployment", "odata-sync-worker")["spec"].update(replicas=6),
        "6 replicas but only 3 partitions"),
    "autoscaler removed": (
        lambda d: d.remove(_find(d, "HorizontalPodAutoscaler", "route-api")),
        "Deployment/route-api: no HorizontalPodAutoscaler"),
    "autoscaler on a worker": (
        lambda d: d.append(_autoscaler_of(d, "graph-builder")),
        "autoscales a worker, but one source's events sit on one partition"),
    "worker without a standby": (
        lambda d: _find(d, "Deployment", "graph-builder")["spec"].update(replicas=1),
        "Deployment/graph-builder: 1 replica: none standing by"),
    "budget blocks every drain": (
        lambda d: _find(d, "PodDisruptionBudget", "virtual-entities-generator")["spec"].update(
            minAvailable=2), "keeps 2 of 2 replicas through a drain"),
    "disruption budget removed": (
        lambda d: d.remove(_find(d, "PodDisruptionBudget", "virtual-entities-generator")),
        "virtual-entities-generator: no PodDisruptionBudget"),
    "scrape annotation removed": (
        lambda d: _find(d, "Deployment", "graph-builder")["spec"]["template"]["metadata"]
        ["annotations"].pop("prometheus.io/scrape"), "pod annotation prometheus.io/scrape"),
    "migration Job removed": (
        lambda d: d.remove(_find(d, "Job", "transit-graph-migrate")),
        "`pipeline-admin migrate`: missing"),
    "orchestrator Service removed": (
        lambda d: d.remove(_find(d, "Service", "orchestrator")),
        "Service for the orchestrator: missing"),
    "Deployment removed": (
        lambda d: d.remove(_find(d, "Deployment", "virtual-entities-generator")),
        "Deployment/virtual-entities-generator: missing"),
}


@pytest.mark.parametrize("mutation", sorted(MANIFEST_MUTATIONS))
def test_manifests_checker_reports(mutation, rendered, facts):
    mutate, fragment = MANIFEST_MUTATIONS[mutation]
    docs = cd.load_manifests(rendered)
    mutate(docs)
    expect(cd.check_manifests(docs, facts), fragment)


# ---- container image --------------------------------------------------------

@pytest.fixture(scope="module")
def dockerfile():
    return open(os.path.join(SOURCE, "deploy", "Dockerfile")).read()


@pytest.fixture(scope="module")
def binaries():
    found = cd.binaries_in(BUILD)
    assert found, f"no programs under {BUILD}/services: build the project first"
    return found


def test_image_installs_the_libraries_the_binaries_link(dockerfile, facts, binaries):
    assert cd.check_dockerfile(dockerfile, facts, binaries) == []


IMAGE_MUTATIONS = {
    "runtime library missing": (lambda t: t.replace(" libpq5 ", " ", 1),
                                "needs libpq.so.5 (libpq5)"),
    "runs as root": (lambda t: t.replace("USER 10001:10001", "USER root"),
                     "does not switch to a non-root USER"),
    "not bookworm": (lambda t: t.replace("FROM debian:bookworm-slim AS runtime",
                                         "FROM ubuntu:24.04 AS runtime"),
                     "FROM ubuntu:24.04 is not Debian bookworm"),
    "port not exposed": (lambda t: t.replace("EXPOSE 3000 ", "EXPOSE "),
                         "port 3000 (orchestrator) is not EXPOSEd"),
    "probe port not exposed": (lambda t: t.replace(" 9090\n", "\n"),
                               "port 9090 (PROBE_PORT) is not EXPOSEd"),
}


@pytest.mark.parametrize("mutation", sorted(IMAGE_MUTATIONS))
def test_image_checker_reports(mutation, dockerfile, facts, binaries):
    mutate, fragment = IMAGE_MUTATIONS[mutation]
    broken = mutate(dockerfile)
    assert broken != dockerfile
    expect(cd.check_dockerfile(broken, facts, binaries), fragment)


def test_image_checker_reports_an_unneeded_library(dockerfile, facts, binaries):
    if len(binaries) < len(cd.SERVICES) + 1:
        pytest.skip("only with every program built")
    broken = dockerfile.replace(" zlib1g ", " zlib1g libsqlite3-0 ", 1)
    expect(cd.check_dockerfile(broken, facts, binaries), "libsqlite3-0 is linked by no program")


# ---- docs -------------------------------------------------------------------

@pytest.fixture(scope="module")
def deploy_doc():
    return open(os.path.join(SOURCE, "docs", "deploy.md"), encoding="utf-8").read()


def test_docs_list_the_topics(deploy_doc, facts):
    assert len(facts.topics) == 8
    assert cd.check_docs_topics(deploy_doc, facts) == []


def test_docs_checker_reports_a_wrong_retention(deploy_doc, facts):
    row = next(line for line in deploy_doc.splitlines() if line.startswith("| `pipeline.dead-letter`"))
    broken = deploy_doc.replace(row, row.replace("30 days", "7 days"))
    expect(cd.check_docs_topics(broken, facts), "pipeline.dead-letter should say 3 partitions")
