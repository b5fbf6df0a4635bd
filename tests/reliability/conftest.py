"""Fixtures of the reliability suite: the integration fixtures (stack,
odata_server, envelope), pointed at a private second stack that the suite
starts itself and restarts servers of; a session lock so two runs of the
suite never break each other's faults; and the summary at the end.

The second stack stays up between runs (`stack.sh up` is idempotent):
    STACK_DIR=<repo>/.stack-faults STACK_PORT_OFFSET=1000 bash deploy/stack.sh down
stops it.
"""
import fcntl
import importlib.util
import json
import os

import pytest

import faults  # sets STACK_DIR / STACK_PORT_OFFSET before the stack is read

faults.stack_cmd("up")
_spec = importlib.util.spec_from_file_location(
    "tg_integration_conftest",
    os.path.join(faults.SOURCE_DIR, "tests", "integration", "conftest.py"))
ic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ic)
assert ic.STACK["KAFKA_BROKERS"].endswith(str(29092 + faults.PORT_OFFSET)), ic.STACK

STACK = ic.STACK
SOURCE_DIR = ic.SOURCE_DIR
BUILD_DIR = ic.BUILD_DIR
SAMPLE = os.path.join(SOURCE_DIR, "deploy", "sample-data", "odata")
envelope = ic.envelope
wait_for = ic.wait_for
free_port = ic.free_port
stack = ic.stack
odata_server = ic.odata_server


@pytest.fixture(scope="session", autouse=True)
def fault_stack_lock():
    """One run of the suite at a time against the private stack."""
    if os.environ.get("RELIABILITY_LOCK_HELD"):  # tests/reliability/sanitize.sh holds it
        yield
        return
    os.makedirs(faults.RUN, exist_ok=True)
    with open(os.path.join(faults.RUN, "reliability.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def fault_stack():
    """Servers stopped by a test are started again, whatever happened."""
    fs = faults.FaultStack()
    try:
        yield fs
    finally:
        fs.start()


def pytest_terminal_summary(terminalreporter):
    s = faults.SUMMARY
    lines = [
        "reliability summary",
        f"  faults injected        {s['faults_injected']} "
        f"(worker kills before the step finished: {s['kills_mid_step']}, "
        f"of them during a load into PostgreSQL: {s['kills_mid_load']})",
        f"  runs completed         {s['runs_completed']}",
        f"  records lost           {s['records_lost']}",
        f"  duplicates             {s['duplicates']}",
        f"  partial graphs seen    {s['partial_graphs_seen']} (reader checks {s['reader_checks']})",
        f"  bad inputs tried       {s['bad_inputs_tried']}, rejected {s['bad_inputs_rejected']}"
        f", hostile-but-valid stored verbatim {s['hostile_inputs_stored_verbatim']}",
        f"  API requests           {s['api_requests']}, 5xx {s['api_5xx']}",
    ]
    for line in lines:
        terminalreporter.write_line(line)
    path = os.path.join(BUILD_DIR, "reliability-summary.json")
    try:
        with open(path, "w") as f:
            json.dump(s, f, indent=1)
        terminalreporter.write_line(f"  (written to {path})")
    except OSError:
        pass
