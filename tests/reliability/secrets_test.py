"""Runs last (file order): no secret of the stack or of the API appears in
any service log written during this session, faults and errors included
(connection refused, restarted servers, 401s, dead letters)."""
import glob
import os

import faults
from api_hostile_test import TOKEN
from conftest import BUILD_DIR, STACK


def test_no_secret_in_service_logs():
    password = STACK["DATABASE_URL"].split("//", 1)[1].split("@", 1)[0]  # user:password
    secrets = [STACK["S3_SECRET_KEY"], f"{password}@", TOKEN]
    logs = [p for p in glob.glob(os.path.join(BUILD_DIR, "test-logs", "*.log"))
            if os.path.getmtime(p) >= faults.SESSION_START]
    assert logs, "no service log written in this session"
    found = []
    for path in logs:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        found += [f"{os.path.basename(path)}: {s[:4]}…" for s in secrets if s in text]
    assert not found, found
