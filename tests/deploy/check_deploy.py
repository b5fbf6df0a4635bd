#!/usr/bin/env python3
"""Checks the deployment files against the code and against each other:
rendered Kubernetes manifests, the docker-compose configuration, the
Dockerfile and the topic table of docs/deploy.md. Every check returns a list
of findings (one sentence each); an empty list means the files agree.

    check_deploy.py --source . --manifests rendered.yaml --compose compose.yaml \
        [--build-dir build]
"""
import argparse
import functools
import glob
import os
import re
import subprocess
import sys

import yaml

# The long-running services: HTTP port, and the step timeout of the
# specification that terminationGracePeriodSeconds must cover.
SERVICES = {
    "odata-sync-worker": {"port": 8081, "step_timeout_s": 600, "worker": True},
    "virtual-entities-generator": {"port": 8082, "step_timeout_s": 300, "worker": True},
    "graph-builder": {"port": 8083, "step_timeout_s": 600, "worker": True},
    "orchestrator": {"port": 3000, "step_timeout_s": 30, "worker": False},
    "route-api": {"port": 8084, "step_timeout_s": 10, "worker": False, "autoscaled": True},
}
# The probes' own listener in every service (PROBE_PORT, config.env): the
# kubelet's probes, compose's healthchecks and Prometheus go there.
PROBE_PORT = 9090
ADMIN = "pipeline-admin"
IMAGE = "transit-graph"
# Read from the Secret, never from a ConfigMap or a literal in a manifest.
SECRET_RE = re.compile(r"PASSWORD|SECRET|TOKEN|ACCESS_KEY|^DATABASE_URL$|^REDIS_URL$")
# KAFKA_CONF_<PROPERTY> is a passthrough to librdkafka: optional by design.
PASSTHROUGH_PREFIXES = ("KAFKA_CONF_",)
# Set by the container runtime itself (Docker and Kubernetes alike), or a
# standard POSIX variable with a default in the code (TMPDIR: where temporary
# files go, /tmp when unset).
PLATFORM_VARS = {"HOSTNAME", "TMPDIR"}
# Fault injection for the integration tests: never part of a deployment.
TEST_HOOK_RE = re.compile(r"FAIL_AFTER|FAULT|^TEST_")
# pipeline-admin never listens, so its HTTP_PORT default (0) is right.
# STEP_TIMEOUT_S is read by the worker loop (libcommon/src/worker.c), which
# only the three workers run.
# POD_NAME names a consumer's group membership: pipeline-admin never joins a group.
NOT_NEEDED = {ADMIN: {"HTTP_PORT", "STEP_TIMEOUT_S", "POD_NAME"}, "orchestrator": {"STEP_TIMEOUT_S"},
              "route-api": {"STEP_TIMEOUT_S", "POD_NAME"}}
# Names built as "PREFIX%d" are per worker, numbered 1..3 as in the spec.
NUMBERED_RANGE = range(1, 4)


# ---- facts from the code ----------------------------------------------------

ENV_CALL_RE = re.compile(
    r"\b(?:tg_env_(?:str|long|double|bool)|getenv|secure_getenv|require)\(\s*"
    r"(?:\"([A-Z][A-Z0-9_]*)\"|([A-Z_][A-Z0-9_]*)\s*[,)])")
DEFINE_STR_RE = re.compile(r"#\s*define\s+([A-Z_][A-Z0-9_]*)\s+\"([A-Z][A-Z0-9_]*)\"")
NUMBERED_RE = re.compile(r"\"([A-Z][A-Z0-9_]*)%d\"")


def _sources(folder):
    files = []
    for ext in ("c", "h"):
        files += glob.glob(os.path.join(folder, "**", "*." + ext), recursive=True)
    return sorted(files)


def env_vars_read(folder):
    """Environment variables read in folder's C sources: {name: first file}."""
    found, defines, indirect = {}, {}, []
    for path in _sources(folder):
        text = open(path, encoding="utf-8", errors="replace").read()
        defines.update(dict(DEFINE_STR_RE.findall(text)))
        computed = False
        for literal, ident in ENV_CALL_RE.findall(text):
            if literal:
                found.setdefault(literal, path)
            else:
                indirect.append((ident, path))
        # A name built at run time, e.g. snprintf(name, .., "WORKER_TIMEOUT_S_%d", i + 1).
        if re.search(r"\btg_env_\w+\(\s*[a-z_]\w*\s*,", text):
            for prefix in NUMBERED_RE.findall(text):
                for n in NUMBERED_RANGE:
                    found.setdefault(f"{prefix}{n}", path)
    for ident, path in indirect:
        if ident in defines:
            found.setdefault(defines[ident], path)
    return {k: v for k, v in found.items()
            if not k.startswith(PASSTHROUGH_PREFIXES) and k not in PLATFORM_VARS}


DEFAULT_PORT_RES = [
    re.compile(r"\.default_port\s*=\s*(\d+)"),
    re.compile(r"tg_config_load\([^;]*?,\s*(\d{2,5})\s*,\s*errstr", re.S),
    re.compile(r"#\s*define\s+\w*_PORT\s+(\d{2,5})\b"),  # DEFAULT_PORT, not ..._TRANSPORTS
]


def default_ports(folder):
    """The default HTTP ports a service's code names (normally one)."""
    ports = set()
    for path in _sources(folder):
        text = open(path, encoding="utf-8", errors="replace").read()
        for rx in DEFAULT_PORT_RES:
            ports.update(int(p) for p in rx.findall(text))
    return ports


def project_version(source):
    text = open(os.path.join(source, "CMakeLists.txt")).read()
    m = re.search(r"project\([^)]*VERSION\s+([0-9.]+)", text)
    return m.group(1) if m else None


def topic_table(source):
    """proto/topics.md: {topic: (partitions, retention text)}."""
    topics = {}
    for line in open(os.path.join(source, "proto", "topics.md"), encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.fullmatch(r"`pipeline\.[a-z0-9.\-]+`", cells[0]):
            topics[cells[0].strip("`")] = (cells[-2], cells[-1])
    return topics


class CodeFacts:
    """What the deployment must agree with, read from the source tree."""

    def __init__(self, source):
        self.source = source
        self.version = project_version(source)
        self.common_env = env_vars_read(os.path.join(source, "libcommon"))
        self.service_env, self.ports = {}, {}
        for name in list(SERVICES) + [ADMIN]:
            folder = os.path.join(source, "services", name)
            self.service_env[name] = env_vars_read(folder) if os.path.isdir(folder) else None
            self.ports[name] = default_ports(folder) if os.path.isdir(folder) else set()
        self.topics = topic_table(source)

    def env_for(self, program):
        """Variables a container running program must be given: {name: where
        read}. Test hooks and variables the program does not need are left out."""
        env = dict(self.common_env)
        env.update(self.service_env.get(program) or {})
        return {k: v for k, v in env.items()
                if not TEST_HOOK_RE.search(k) and k not in NOT_NEEDED.get(program, ())}

    def all_env(self):
        env = dict(self.common_env)
        for per in self.service_env.values():
            env.update(per or {})
        return env


def check_code(facts):
    """The code has the four services, each with the port this deployment uses."""
    findings = []
    for name, spec in SERVICES.items():
        if facts.service_env[name] is None:
            findings.append(f"services/{name}: the service is missing from the code")
        elif not facts.ports[name]:
            findings.append(f"services/{name}: no default HTTP port found in the code")
        elif facts.ports[name] and facts.ports[name] != {spec['port']}:
            findings.append(f"services/{name}: the code's default HTTP port "
                            f"{sorted(facts.ports[name])} is not {spec['port']}")
    if not facts.version:
        findings.append("CMakeLists.txt: no project VERSION")
    return findings


# ---- Kubernetes manifests ---------------------------------------------------

def load_manifests(text):
    return [d for d in yaml.safe_load_all(text) if d]


def _by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def _name(doc):
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _data_keys(docs, kind, name):
    for d in _by_kind(docs, kind):
        if d["metadata"]["name"] == name:
            return set((d.get("data") or {}).keys()) | set((d.get("stringData") or {}).keys())
    return None


def _container_env(docs, where, c, findings):
    """{var: 'ConfigMap'|'Secret'|'literal'} for one container."""
    env = {}
    for e in c.get("env") or []:
        vf = e.get("valueFrom") or {}
        env[e["name"]] = "Secret" if "secretKeyRef" in vf else (
            "ConfigMap" if "configMapKeyRef" in vf else "literal")
    for ref in c.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key in ref:
                keys = _data_keys(docs, kind, ref[key]["name"])
                if keys is None:
                    findings.append(f"{where}: envFrom names {kind} {ref[key]['name']}, "
                                    "which the manifests do not define")
                for k in keys or ():
                    env.setdefault(k, kind)
    return env


def _program(c):
    cmd = c.get("command") or c.get("args") or []
    return os.path.basename(cmd[0]) if cmd else c.get("name")


def _check_security(where, pod, c):
    findings = []
    psc, sc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True):
        findings.append(f"{where}: runAsNonRoot is not true")
    uid = sc.get("runAsUser", psc.get("runAsUser"))
    if uid == 0:
        findings.append(f"{where}: runAsUser is 0 (root)")
    if sc.get("readOnlyRootFilesystem") is not True:
        findings.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        findings.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged") is True:
        findings.append(f"{where}: privileged")
    if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
        findings.append(f"{where}: capabilities are not dropped (drop: [ALL])")
    return findings


def _check_resources(where, c):
    findings = []
    res = c.get("resources") or {}
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in (res.get(kind) or {}):
                findings.append(f"{where}: no {what} in resources.{kind}")
    return findings


def _check_image(where, c, facts):
    image = c.get("image", "")
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    if repo.split("/")[-1] != IMAGE:
        return [f"{where}: image {image!r} is not the pipeline image {IMAGE}"]
    if tag != facts.version:
        return [f"{where}: image tag {tag!r} is not the project version {facts.version}"]
    return []


def _check_env(where, env, program, facts):
    findings = []
    for var, read_in in sorted(facts.env_for(program).items()):
        if var not in env:
            findings.append(f"{where}: {var} is not defined in its ConfigMap, Secret or env "
                            f"(read in {os.path.relpath(read_in, facts.source)})")
    for var, origin in sorted(env.items()):
        if SECRET_RE.search(var) and origin != "Secret":
            findings.append(f"{where}: {var} comes from a {origin}, not from a Secret")
        if TEST_HOOK_RE.search(var):
            findings.append(f"{where}: {var} is a test-only fault injection")
    return findings


def _port_of(c, ref):
    if isinstance(ref, int):
        return ref
    for p in c.get("ports") or []:
        if p.get("name") == ref:
            return p.get("containerPort")
    return None


def _check_probes(where, c, port):
    findings = []
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet")
        if not get:
            findings.append(f"{where}: no {probe} (HTTP GET {path})")
            continue
        if get.get("path") != path:
            findings.append(f"{where}: {probe} asks {get.get('path')}, not {path}")
        if _port_of(c, get.get("port")) != port:
            findings.append(f"{where}: {probe} port {get.get('port')} is not {port}")
    return findings


def _check_ports(where, c, env_literals, spec, facts, name):
    findings = []
    port = spec["port"]
    for want in (port, PROBE_PORT):
        if want not in [p.get("containerPort") for p in c.get("ports") or []]:
            findings.append(f"{where}: containerPort {want} is not declared")
    http_port = env_literals.get("HTTP_PORT")
    if http_port is not None and str(http_port) != str(port):
        findings.append(f"{where}: HTTP_PORT={http_port} but the service's port is {port}")
    if facts.ports.get(name) and port not in facts.ports[name]:
        findings.append(f"{where}: port {port} is not the code's default {sorted(facts.ports[name])}")
    return findings


def _partitions(docs):
    for cm in _by_kind(docs, "ConfigMap"):
        value = (cm.get("data") or {}).get("TOPIC_PARTITIONS")
        if value:
            return int(value)
    return 3


def _selects(selector, labels):
    match = (selector or {}).get("matchLabels") or selector or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def _check_deployment(docs, dep, facts):
    name = dep["metadata"]["name"]
    spec = SERVICES[name]
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    annotations = dep["spec"]["template"]["metadata"].get("annotations") or {}
    findings = []
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if grace < spec["step_timeout_s"]:
        findings.append(f"{_name(dep)}: terminationGracePeriodSeconds {grace} is shorter "
                        f"than the step timeout {spec['step_timeout_s']} s")
    want = {"prometheus.io/scrape": "true", "prometheus.io/port": str(PROBE_PORT),
            "prometheus.io/path": "/metrics"}
    for key, value in want.items():
        if str(annotations.get(key)) != value:
            findings.append(f"{_name(dep)}: pod annotation {key} is not {value!r}")
    partitions = _partitions(docs)
    replicas = dep["spec"].get("replicas")
    if (replicas or 1) > partitions:
        findings.append(f"{_name(dep)}: {replicas} replicas but only "
                        f"{partitions} partitions")
    budgets = [p for p in _by_kind(docs, "PodDisruptionBudget")
               if _selects(p["spec"].get("selector"), labels)]
    if not budgets:
        findings.append(f"{_name(dep)}: no PodDisruptionBudget selects its pods")
    hpa = _hpa_of(docs, dep)
    if spec["worker"]:
        findings += _check_worker_scale(dep, replicas, hpa, budgets)
    elif spec.get("autoscaled") and not hpa:
        findings.append(f"{_name(dep)}: no HorizontalPodAutoscaler (every replica takes requests)")
    return findings


def _hpa_of(docs, dep):
    for hpa in _by_kind(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref.get("kind") == "Deployment" and ref.get("name") == dep["metadata"]["name"]:
            return hpa
    return None


def _check_worker_scale(dep, replicas, hpa, budgets):
    """Every event of a source carries its id as key: one source's work sits
    on one partition, so a worker runs one replica working and one standing
    by, a fixed count, with a budget that keeps one of them through a drain."""
    findings = []
    if hpa:
        findings.append(f"{_name(hpa)}: autoscales a worker, but one source's events sit on "
                        "one partition: the replicas it adds get nothing to do")
    if (replicas or 1) < 2:
        findings.append(f"{_name(dep)}: {replicas or 1} replica: none standing by to take "
                        "its partitions over")
    for pdb in budgets:
        spec = pdb["spec"]
        if isinstance(spec.get("minAvailable"), int):
            keep = spec["minAvailable"]
        elif isinstance(spec.get("maxUnavailable"), int):
            keep = (replicas or 1) - spec["maxUnavailable"]
        else:
            continue
        if not 1 <= keep < (replicas or 1):
            findings.append(f"{_name(pdb)}: keeps {keep} of {replicas or 1} replicas through a "
                            "drain (one must stay, one must be free to go)")
    return findings


def _workloads(docs):
    """(doc, pod spec) of every Deployment and Job."""
    for d in docs:
        if d.get("kind") in ("Deployment", "Job"):
            yield d, d["spec"]["template"]["spec"]


def _check_container(docs, doc, pod, c, facts):
    where = f"{_name(doc)} container {c['name']}"
    program = _program(c)
    findings = _check_security(where, pod, c) + _check_resources(where, c)
    findings += _check_image(where, c, facts)
    env = _container_env(docs, where, c, findings)
    findings += _check_env(where, env, program, facts)
    if doc["kind"] == "Deployment" and program in SERVICES:
        literals = {e["name"]: e.get("value") for e in c.get("env") or [] if "value" in e}
        spec = SERVICES[program]
        findings += _check_probes(where, c, PROBE_PORT)
        findings += _check_ports(where, c, literals, spec, facts, program)
        probe_port = literals.get("PROBE_PORT", _configmap_value(docs, "PROBE_PORT"))
        if str(probe_port) != str(PROBE_PORT):
            findings.append(f"{where}: PROBE_PORT={probe_port} but the probes ask {PROBE_PORT}")
    return findings


def _configmap_value(docs, var):
    for cm in _by_kind(docs, "ConfigMap"):
        if var in (cm.get("data") or {}):
            return cm["data"][var]
    return None


def check_manifests(docs, facts):
    """Every rule of issue 7 for one rendered kustomization."""
    findings = []
    deployments = {d["metadata"]["name"]: d for d in _by_kind(docs, "Deployment")}
    for name in SERVICES:
        if name not in deployments:
            findings.append(f"Deployment/{name}: missing")
    for doc, pod in _workloads(docs):
        for c in (pod.get("initContainers") or []) + pod["containers"]:
            findings += _check_container(docs, doc, pod, c, facts)
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] in SERVICES:
            findings += _check_deployment(docs, doc, facts)
    findings += _check_jobs(docs)
    findings += _check_orchestrator_service(docs, deployments.get("orchestrator"))
    return findings


def _check_jobs(docs):
    commands = [c.get("command") for j in _by_kind(docs, "Job")
                for c in j["spec"]["template"]["spec"]["containers"]]
    return [f"Job running `{ADMIN} {sub}`: missing" for sub in ("migrate", "create-topics")
            if not any(cmd and os.path.basename(cmd[0]) == ADMIN and sub in cmd
                       for cmd in commands)]


def _check_orchestrator_service(docs, dep):
    if not dep:
        return []
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    c = dep["spec"]["template"]["spec"]["containers"][0]
    for svc in _by_kind(docs, "Service"):
        if _selects(svc["spec"].get("selector"), labels):
            ports = [_port_of(c, p.get("targetPort", p.get("port"))) for p in svc["spec"]["ports"]]
            if SERVICES["orchestrator"]["port"] not in ports:
                return [f"{_name(svc)}: does not reach the orchestrator's port 3000"]
            return []
    return ["Service for the orchestrator: missing"]


# ---- docker-compose ---------------------------------------------------------

def _compose_env(svc):
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return env


def _host_of(url):
    m = re.match(r"^(?:[a-z]+://)?(?:[^@/]*@)?([^:/?]+)", url or "")
    return m.group(1) if m else None


def _check_compose_service(name, svc, facts, services):
    where = f"compose service {name}"
    findings = []
    image = f"{IMAGE}:{facts.version}"
    if svc.get("image") != image:
        findings.append(f"{where}: image {svc.get('image')!r} is not {image!r}")
    cmd = svc.get("command") or []
    cmd = cmd.split() if isinstance(cmd, str) else cmd
    program = name if name in SERVICES else ADMIN
    env = _compose_env(svc)
    for var, read_in in sorted(facts.env_for(program).items()):
        if var not in env:
            findings.append(f"{where}: {var} is not set "
                            f"(read in {os.path.relpath(read_in, facts.source)})")
    for var in sorted(env):
        if TEST_HOOK_RE.search(var):
            findings.append(f"{where}: {var} is a test-only fault injection")
    for var in ("KAFKA_BROKERS", "DATABASE_URL", "REDIS_URL", "ODATA_URL", "S3_ENDPOINT"):
        host = _host_of(env.get(var))
        if env.get(var) and host not in services:
            findings.append(f"{where}: {var} names host {host!r}, which is no compose service")
    if str(svc.get("user", "0")).split(":")[0] in ("0", "root"):
        findings.append(f"{where}: runs as root (user:)")
    if name in SERVICES:
        findings += _check_compose_pipeline(where, name, svc, cmd, env, facts)
    return findings


def _check_compose_pipeline(where, name, svc, cmd, env, facts):
    findings = []
    port = SERVICES[name]["port"]
    if not cmd or os.path.basename(cmd[0]) != name:
        findings.append(f"{where}: command {cmd} does not run {name}")
    if str(env.get("HTTP_PORT", port)) != str(port):
        findings.append(f"{where}: HTTP_PORT={env.get('HTTP_PORT')} but the port is {port}")
    test = " ".join(map(str, (svc.get("healthcheck") or {}).get("test") or []))
    if f":{PROBE_PORT}/readyz" not in test and f":{PROBE_PORT}/healthz" not in test:
        findings.append(f"{where}: no healthcheck on :{PROBE_PORT}/readyz (PROBE_PORT)")
    if str(env.get("PROBE_PORT")) != str(PROBE_PORT):
        findings.append(f"{where}: PROBE_PORT={env.get('PROBE_PORT')} but the healthcheck asks "
                        f"{PROBE_PORT}")
    deps = svc.get("depends_on") or {}
    if not isinstance(deps, dict) or (deps.get("setup") or {}).get(
            "condition") != "service_completed_successfully":
        findings.append(f"{where}: does not wait for the setup step to complete")
    if name == "orchestrator":
        published = [str(p.get("target") if isinstance(p, dict) else p).split(":")[-1]
                     for p in svc.get("ports") or []]
        if str(port) not in published:
            findings.append(f"{where}: the API port {port} is not published")
    return findings


# Ports a laptop often has taken already (its own databases, and
# deploy/stack.sh's local stack): compose publishes beside them.
TAKEN_PORTS = {5432: "PostgreSQL", 6379: "Redis", 9092: "Kafka", 3306: "MySQL",
               27017: "MongoDB", 9000: "MinIO", 25432: "deploy/stack.sh's PostgreSQL",
               26379: "deploy/stack.sh's Redis", 29092: "deploy/stack.sh's Kafka",
               28333: "deploy/stack.sh's S3"}
# Containers that run once and exit: no health check.
ONE_SHOTS = ("setup", IMAGE)


def _published(svc):
    ports = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            ports.append(p.get("published"))
        else:  # "HOST:CONTAINER[/proto]" or "CONTAINER"
            parts = str(p).split("/")[0].split(":")
            ports.append(parts[-2] if len(parts) > 1 else None)
    return [int(p) for p in ports if p not in (None, "")]


def _check_compose_image(services, facts):
    """One service, transit-graph, builds the image from deploy/Dockerfile."""
    svc = services.get(IMAGE)
    if not svc:
        return [f"compose service {IMAGE}: missing (it builds the pipeline image)"]
    build = svc.get("build") or {}
    build = {"context": build} if isinstance(build, str) else build
    if os.path.normpath(str(build.get("dockerfile", ""))) != os.path.join("deploy", "Dockerfile"):
        return [f"compose service {IMAGE}: does not build deploy/Dockerfile"]
    if svc.get("image") != f"{IMAGE}:{facts.version}":
        return [f"compose service {IMAGE}: image {svc.get('image')!r} is not "
                f"'{IMAGE}:{facts.version}'"]
    return []


def check_compose(compose, facts):
    services = compose.get("services") or {}
    findings = _check_compose_image(services, facts)
    for name, svc in services.items():
        for port in _published(svc):
            if port in TAKEN_PORTS:
                findings.append(f"compose service {name}: publishes host port {port}, "
                                f"which {TAKEN_PORTS[port]} usually holds")
    for infra in ("kafka", "postgres", "redis", "minio", "odata", "setup"):
        if infra not in services:
            findings.append(f"compose service {infra}: missing")
    kafka = services.get("kafka") or {}
    if not str(kafka.get("image", "")).startswith("apache/kafka:"):
        findings.append("compose service kafka: not the official apache/kafka image")
    if "controller" not in str(_compose_env(kafka).get("KAFKA_PROCESS_ROLES", "")):
        findings.append("compose service kafka: not in KRaft mode (KAFKA_PROCESS_ROLES)")
    for name in list(SERVICES) + ["setup"]:
        if name in services:
            findings += _check_compose_service(name, services[name], facts, services)
        elif name != "setup":
            findings.append(f"compose service {name}: missing")
    for name, svc in services.items():
        if "healthcheck" not in svc and name not in ONE_SHOTS:
            findings.append(f"compose service {name}: no healthcheck")
    return findings


# ---- Dockerfile -------------------------------------------------------------

def dockerfile_stages(text):
    """[(base image, [instructions])], continuation lines joined."""
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append((rest.split()[0], []))
        elif stages:
            stages[-1][1].append((word.upper(), rest.strip()))
    return stages


def _apt_packages(instructions):
    pkgs = set()
    for word, rest in instructions:
        if word == "RUN":
            for m in re.finditer(r"apt-get install ([^&;|]*)", rest):
                pkgs.update(t for t in m.group(1).split() if not t.startswith("-"))
    return pkgs


@functools.lru_cache(maxsize=None)
def needed_packages(binary):
    """Debian packages that hold the shared libraries binary links directly."""
    out = subprocess.run(["objdump", "-p", binary], capture_output=True, text=True,
                         check=True).stdout
    pkgs = {}
    for soname in re.findall(r"NEEDED\s+(\S+)", out):
        for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
                  "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu"):
            r = subprocess.run(["dpkg", "-S", os.path.join(d, soname)],
                               capture_output=True, text=True)
            if r.returncode == 0:
                pkgs[r.stdout.split(":")[0]] = soname
                break
        else:
            pkgs["?" + soname] = soname
    return pkgs


# Not shared libraries: TLS roots for https endpoints, curl for health checks.
RUNTIME_EXTRAS = {"ca-certificates", "curl"}


def check_dockerfile(text, facts, binaries):
    """Bookworm stages, a non-root runtime, and runtime packages that are
    exactly the shared libraries of the built binaries (libc6 is in the base)."""
    stages = dockerfile_stages(text)
    if not stages:
        return ["deploy/Dockerfile: no FROM"]
    findings = [f"deploy/Dockerfile: stage FROM {base} is not Debian bookworm"
                for base, _ in stages if not re.match(r"debian:bookworm", base)]
    runtime = stages[-1][1]
    users = [rest for word, rest in runtime if word == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        findings.append("deploy/Dockerfile: the runtime stage does not switch to a non-root USER")
    build_text = " ".join(rest for _, ins in stages[:-1] for _, rest in ins)
    for program in list(SERVICES) + [ADMIN]:
        if program not in build_text:
            findings.append(f"deploy/Dockerfile: {program} is not built")
    exposed = " ".join(rest for word, rest in runtime if word == "EXPOSE").split()
    for name, spec in SERVICES.items():
        if str(spec["port"]) not in exposed:
            findings.append(f"deploy/Dockerfile: port {spec['port']} ({name}) is not EXPOSEd")
    if str(PROBE_PORT) not in exposed:
        findings.append(f"deploy/Dockerfile: port {PROBE_PORT} (PROBE_PORT) is not EXPOSEd")
    findings += _check_runtime_packages(_apt_packages(runtime), binaries)
    return findings


def _check_runtime_packages(installed, binaries):
    findings, needed = [], {}
    for b in binaries:
        for pkg, soname in needed_packages(b).items():
            needed.setdefault(pkg, (soname, os.path.basename(b)))
    needed.pop("libc6", None)
    for pkg, (soname, prog) in sorted(needed.items()):
        if pkg not in installed:
            findings.append(f"deploy/Dockerfile: {prog} needs {soname} ({pkg}), "
                            "which the runtime stage does not install")
    complete = {os.path.basename(b) for b in binaries} >= set(SERVICES) | {ADMIN}
    for pkg in sorted(installed - set(needed) - RUNTIME_EXTRAS):
        if complete:
            findings.append(f"deploy/Dockerfile: runtime package {pkg} is linked by no program")
    return findings


# ---- docs -------------------------------------------------------------------

def check_docs_topics(doc_text, facts):
    """docs/deploy.md lists every topic with the partitions and retention of
    proto/topics.md."""
    findings = []
    rows = {}
    for line in doc_text.splitlines():
        m = re.match(r"\|\s*`(pipeline\.[a-z0-9.\-]+)`\s*\|(.*)", line)
        if m:
            rows[m.group(1)] = m.group(2)
    for topic, (partitions, retention) in facts.topics.items():
        row = rows.get(topic)
        if row is None:
            findings.append(f"docs/deploy.md: topic {topic} is not in the topic table")
        elif partitions not in row or retention not in row:
            findings.append(f"docs/deploy.md: topic {topic} should say {partitions} partitions, "
                            f"{retention}")
    return findings


# ---- command line -----------------------------------------------------------

def binaries_in(build_dir):
    found = []
    for program in list(SERVICES) + [ADMIN]:
        path = os.path.join(build_dir, "services", program, program)
        if os.access(path, os.X_OK):
            found.append(path)
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--manifests", action="append", default=[])
    ap.add_argument("--compose")
    ap.add_argument("--build-dir")
    args = ap.parse_args()
    facts = CodeFacts(os.path.abspath(args.source))
    findings = check_code(facts)
    for path in args.manifests:
        findings += [f"{path}: {f}" for f in check_manifests(load_manifests(open(path).read()),
                                                             facts)]
    if args.compose:
        findings += check_compose(yaml.safe_load(open(args.compose)), facts)
    if args.build_dir:
        text = open(os.path.join(facts.source, "deploy", "Dockerfile")).read()
        findings += check_dockerfile(text, facts, binaries_in(args.build_dir))
    docs = os.path.join(facts.source, "docs", "deploy.md")
    if os.path.exists(docs):
        findings += check_docs_topics(open(docs, encoding="utf-8").read(), facts)
    for f in findings:
        print(f)
    print(f"{len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
