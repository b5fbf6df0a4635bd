"""The soak test's world: one simulated clock shared by every faked process,
a private PostgreSQL that runs on that clock, and the four services under it.

The clock is Debian's libfaketime (package faketime), preloaded into the
services and into PostgreSQL; nothing in the services knows about it. All of
them read one FAKETIME_TIMESTAMP_FILE holding a relative offset ("+21600s")
on every call (FAKETIME_NO_CACHE=1), so a new offset written by the test is
seen by every process at once, and clock moves are only ever forward.
FAKETIME_DONT_FAKE_MONOTONIC=1 keeps CLOCK_MONOTONIC real: librdkafka's
timers, the services' poll loops and their 100 ms timeouts run at real speed.

PostgreSQL is the soak's own (initdb in a temporary directory, a free port)
because runs, steps and datasets are stamped with its now(): it must live on
the simulated clock. Kafka and Redis are the shared stack's (own topic
prefix, own Redis database); the broker keeps real time, so the soak's topics
are created with LogAppendTime (see TOPIC_CONFIG). S3 is left
out (S3_ENDPOINT empty): SigV4 signatures carry the signer's clock and the
server refuses a request more than 15 minutes off its own.
"""
import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
import uuid

_spec = importlib.util.spec_from_file_location(
    "tg_integration_conftest",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "conftest.py"))
ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ic)

STACK = ic.STACK
SOURCE_DIR = ic.SOURCE_DIR
BUILD_DIR = ic.BUILD_DIR
free_port = ic.free_port
binary = ic.binary
psql = ic.psql
Service = ic.Service
ODataServer = ic.ODataServer
wait_for = ic.wait_for

PG_BIN = "/usr/lib/postgresql/15/bin"
# The stack's Kafka is run from jars Maven copied into deploy/kafka (see
# deploy/stack.sh, KAFKA_DEPS); STACK_DIR points at the stack that runs.
STACK_ROOT = os.path.dirname(os.path.abspath(
    os.environ.get("STACK_DIR", os.path.join(SOURCE_DIR, ".stack"))))
KAFKA_DEPS = os.path.join(STACK_ROOT, "deploy", "kafka", "target", "dependency")


def faketime_preload():
    """LD_PRELOAD of a faked process: the C11 wait shim of the tests
    (tests/support/faketime_cnd.c says why: without it librdkafka's polls
    wait for simulated deadlines on the real clock), then libfaketimeMT (the
    services are threaded) from Debian's libfaketime."""
    found = glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")
    assert found, "libfaketime is not installed: apt-get install faketime (deploy/stack.sh up does)"
    shim = os.path.join(BUILD_DIR, "tests", "faketime_cnd.so")
    assert os.path.exists(shim), f"{shim} is not built"
    return f"{shim}:{found[0]}"


class SimClock:
    """The simulated clock: real time plus an offset that only grows."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "faketime.rc")
        self.offset_s = 0
        self._write()
        self.env = {
            "LD_PRELOAD": faketime_preload(),
            "FAKETIME_TIMESTAMP_FILE": self.path,
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            # Debian's build turns its "monotonic fix" on for this glibc, and
            # with it a timed wait on a CLOCK_MONOTONIC condition variable
            # (librdkafka's queues) returns at once: every poll loop spins.
            "FAKETIME_FORCE_MONOTONIC_FIX": "0",
        }

    def _write(self):
        # Written beside and renamed over: a reader never sees an empty file
        # (which libfaketime would take as "+0", a jump back in time).
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"+{self.offset_s}s\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.path)

    def advance(self, seconds):
        assert seconds > 0, "the simulated clock only moves forward"
        self.offset_s += int(seconds)
        self._write()

    def now(self):
        return time.time() + self.offset_s

    def faked(self, env):
        """env with the clock preloaded; FAKETIME itself would override the file."""
        out = dict(env)
        out.pop("FAKETIME", None)
        out.update(self.env)
        return out


def _as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


class SoakPostgres:
    """A throwaway PostgreSQL 15 on the simulated clock (as deploy/stack.sh
    initialises the stack's, but trust auth on loopback, no password)."""

    def __init__(self, directory, clock):
        self.dir = os.path.join(directory, "pg")
        self.log = os.path.join(directory, "postgres.log")
        self.port = free_port()
        os.makedirs(self.dir, mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            open(self.log, "a").close()
            shutil.chown(self.log, "postgres", "postgres")
        subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", self.dir, "-U", "postgres",
                                     "-E", "UTF8", "--locale=C.UTF-8", "--auth=trust"]),
                       check=True, capture_output=True)
        with open(os.path.join(self.dir, "postgresql.conf"), "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n")
        env = clock.faked(os.environ)
        # runuser keeps the environment, so the server and every backend it
        # forks run with libfaketime preloaded.
        out = subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.dir, "-l", self.log,
                                           "-w", "-t", "60", "start"]),
                             env=env, capture_output=True, text=True)
        assert out.returncode == 0, f"soak PostgreSQL did not start: {out.stderr}{self.tail()}"
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        psql(admin, "CREATE ROLE transit LOGIN SUPERUSER")
        psql(admin, "CREATE DATABASE transit OWNER transit")
        self.url = f"postgresql://transit@127.0.0.1:{self.port}/transit"
        self.session = None

    def tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", self.dir, "-m", "immediate",
                                     "-w", "-t", "60", "stop"]), capture_output=True)


# Producers under the simulated clock stamp records up to a year ahead of the
# broker's real clock; Kafka 4 refuses a CreateTime more than
# message.timestamp.after.max.ms (default 1 h) in the future. The soak's
# topics are created (pipeline-admin create-topics, TOPIC_CONFIG) with
# LogAppendTime: the broker stamps each record itself on append, and the
# producer's timestamp is neither checked nor kept. Nothing in the pipeline
# reads record timestamps (retry due times travel in x-due-at headers), and
# the topics' time-based retention follows the broker's real clock.
TOPIC_CONFIG = "message.timestamp.type=LogAppendTime"


def kafka_topic_config(topic):
    """The topic's settings as the broker reports them (kafka-configs.sh
    --describe, i.e. kafka.admin.ConfigCommand run from the stack's jars)."""
    assert os.path.isdir(KAFKA_DEPS), f"Kafka jars not found in {KAFKA_DEPS} (deploy/stack.sh up)"
    log4j = os.path.join(STACK_ROOT, "deploy", "kafka", "log4j2.xml")
    out = subprocess.run(
        ["java", "-Xmx128m", "-XX:TieredStopAtLevel=1", f"-Dlog4j2.configurationFile={log4j}",
         "-Dkafka.logs.dir=" + os.path.join(BUILD_DIR, "test-logs"),
         "-cp", os.path.join(KAFKA_DEPS, "*"), "kafka.admin.ConfigCommand",
         "--bootstrap-server", STACK["KAFKA_BROKERS"], "--entity-type", "topics",
         "--entity-name", topic, "--describe"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kafka-configs --describe {topic}: {out.stderr[-1500:]}"
    return out.stdout


class PsqlSession:
    """One psql kept open: the controller polls PostgreSQL every 20 ms, and a
    new psql per query would cost more than the runs it waits for."""
    END = "__soak_end__"

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", url, "-X", "-q", "-At", "-F", "\t"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)

    def query(self, sql):
        """Rows as lists of strings; an error raises with psql's message."""
        self.proc.stdin.write(sql.strip().rstrip(";") + ";\n\\echo " + self.END + "\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"psql ended: {''.join(lines)[-2000:]}")
            line = line.rstrip("\n")
            if line == self.END:
                break
            lines.append(line)
        errors = [x for x in lines if x.startswith(("ERROR:", "psql:", "FATAL:"))]
        assert not errors, f"{sql.strip()[:300]}: {' '.join(lines)[-2000:]}"
        return [x.split("\t") for x in lines if x]

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class SoakWorld:
    """The soak's slice of everything, torn down whatever happened."""

    def __init__(self, redis_db):
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix="tg-soak-")
        os.chmod(self.tmp, 0o755)  # user postgres reads the clock file and owns pg/
        self.clock = SimClock(self.tmp)
        self.pg = SoakPostgres(self.tmp, self.clock)
        self.topic_prefix = f"soak{self.tag}."
        self.redis_db = redis_db
        self.redis_url = STACK["REDIS_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
        self.env = dict(os.environ)
        self.env.update(STACK)
        self.env.update({
            "DATABASE_URL": self.pg.url,
            "REDIS_URL": self.redis_url,
            "TOPIC_PREFIX": self.topic_prefix,
            "TOPIC_PARTITIONS": "1",
            "TOPIC_CONFIG": TOPIC_CONFIG,
            "S3_ENDPOINT": "",
            "LOG_LEVEL": "info",
            "CONNECT_TIMEOUT_S": "10",
        })
        self.services = {}
        keys = int(self.redis_cli("DBSIZE"))
        assert keys == 0, (f"Redis db {redis_db} holds {keys} keys: pick a free one with "
                           "SOAK_REDIS_DB")
        # Marks the database as the soak's: the integration tests pick their
        # Redis database of the shared stack at random and FLUSHDB it, so a
        # test run beside the soak can empty this one; redis_emptied() tells.
        self.redis_cli("SET", "soak:owner", self.tag)
        self.admin("migrate")
        self.admin("create-topics")
        trigger = self.topic_prefix + "pipeline.trigger"
        assert TOPIC_CONFIG in kafka_topic_config(trigger), f"{trigger} lacks {TOPIC_CONFIG}"

    def admin(self, *args):
        out = subprocess.run([binary("pipeline-admin"), *args], env=self.clock.faked(self.env),
                             capture_output=True, text=True)
        assert out.returncode == 0, f"pipeline-admin {' '.join(args)}: {out.stderr[-2000:]}"

    # PostgreSQL (the soak's own), Redis (the soak's database)
    def sql(self, query):
        if self.pg.session is None:
            self.pg.session = PsqlSession(self.pg.url)
        return self.pg.session.query(query)

    def scalar(self, query):
        rows = self.sql(query)
        return rows[0][0] if rows else None

    def redis_cli(self, *args):
        host, port = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0].split(":")
        return subprocess.run(["redis-cli", "-h", host, "-p", port, "-n", str(self.redis_db),
                               *args], check=True, capture_output=True,
                              text=True).stdout.rstrip("\n")

    def redis_emptied(self):
        """True (once) when the soak's Redis database was flushed from outside."""
        if self.redis_cli("GET", "soak:owner") == self.tag:
            return False
        self.redis_cli("SET", "soak:owner", self.tag)
        return True

    # Services, on the simulated clock
    def start(self, name, env=None):
        svc = Service(name, self.clock.faked(dict(self.env, **(env or {}))), free_port())
        self.services[name] = svc
        svc.wait_ready(60)
        return svc

    def close(self):
        errors = []
        for svc in self.services.values():
            code = svc.stop(20)
            if code not in (0, None):
                errors.append(f"{svc.name} exited {code}; log: {svc.log_path}")
        if self.pg.session:
            self.pg.session.close()
        self.pg.stop()
        self.redis_cli("FLUSHDB")
        subprocess.run([binary("pipeline-admin"), "delete-topics"], env=self.env,
                       capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return errors
