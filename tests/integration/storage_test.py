"""libcommon's storage helpers against the real PostgreSQL and Redis: a
failed transaction leaves no rows, COPY escapes survive, a failed COPY
reports its real error and leaves no result unread, a streamed query hands
over every row in order and ends cleanly however it stops, pipelined Redis writes
read back, an error reply in a pipeline is reported, and REDIS_URL's ACL
user and percent-encoded password reach Redis as written. And the dataset
tables' rule: a version's rows live and die with its datasets row, held by
its partitions, with no check per row."""
import os
import subprocess

import pytest
from urllib.parse import quote

from conftest import BUILD_DIR, STACK


def probe(stack, *args, env=None):
    return subprocess.run([os.path.join(BUILD_DIR, "tests", "storage_probe"), *args],
                          env=dict(stack.env, **(env or {})), capture_output=True, text=True,
                          timeout=60)


def test_failed_transaction_leaves_no_rows(stack):
    out = probe(stack, "pg-rollback")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "duplicate key" in out.stdout
    assert stack.count("probe") == 0


def test_copy_commits_rows_with_escapes_intact(stack):
    out = probe(stack, "pg-commit")
    assert out.returncode == 0, out.stderr
    assert stack.count("probe") == 1000
    # The tab and the backslash arrive as written, not as COPY escapes.
    assert stack.scalar(
        "SELECT name = E'a\\tname with\\\\escapes' FROM probe WHERE id = 'probe-999'") == "t"


def test_copy_with_a_bad_row_reports_it_and_leaves_the_connection_usable(stack):
    out = probe(stack, "copy-bad-row")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "copy: invalid: postgres: COPY probe_copy (id, name) FROM STDIN: ERROR:  extra data " \
        "after last expected column" in out.stdout, out.stdout
    assert "unread results: 0" in out.stdout
    assert "next statement: 0" in out.stdout  # nothing of the failed COPY was kept


def test_copy_cut_off_by_the_server_reports_why_and_reads_every_result(stack):
    """The backend dies while the client is still sending: tg_pg_copy ends
    the COPY once, reports the server's own reason and leaves nothing
    unread (before, it ended it twice and left a result behind)."""
    out = probe(stack, "copy-killed")
    assert "unread results: 0" in out.stdout, out.stderr + out.stdout
    assert "copy: unavailable: postgres: COPY probe_killer (id, name) FROM STDIN: FATAL:  " \
        "terminating connection due to administrator command" in out.stdout, out.stdout
    assert out.returncode == 0, out.stderr + out.stdout


def test_streamed_query_hands_over_every_row_and_ends_cleanly(stack):
    out = probe(stack, "stream-rows")
    assert out.returncode == 0, out.stderr + out.stdout
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert lines["all"] == "ok rows=100000 in_order=100000 ok; next statement: ok"
    # The reader's error is the result; the rest of the rows are dropped.
    assert lines["reader-stops"] == "nomem rows=10 in_order=10 reader stopped at row 10;" \
        " next statement: ok", out.stdout
    # The rows before the server's error were handed over, then its reason.
    status, rest = lines["server-error"].split(" ", 1)
    assert status == "invalid" and "division by zero" in rest and rest.endswith(
        "next statement: ok"), out.stdout
    assert int(rest.split("rows=")[1].split(" ")[0]) <= 49999, out.stdout


def test_redis_pipelined_writes_read_back(stack):
    out = probe(stack, "redis-pipe", "5000")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "read back 5000 keys, 0 wrong" in out.stdout
    assert stack.redis_cli("DBSIZE") == "5000"


def test_redis_error_reply_in_pipeline_is_reported(stack):
    out = probe(stack, "redis-error")
    assert out.returncode == 0, out.stderr + out.stdout
    assert "WRONGTYPE" in out.stdout


def test_redis_url_acl_user_and_percent_encoded_password(stack):
    """An ACL user whose password holds '@', '%' and ':' (written %40, %25,
    %3A in REDIS_URL) connects as that user; a wrong password is refused
    with a message that holds no password."""
    user, password = f"probe-{stack.tag}", "p@ss%w:rd/9"
    hostport = STACK["REDIS_URL"].split("//", 1)[1].split("/")[0]
    stack.redis_cli("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    try:
        url = f"redis://{user}:{quote(password, safe='')}@{hostport}/{stack.redis_db}"
        out = probe(stack, "redis-whoami", env={"REDIS_URL": url})
        assert out.returncode == 0, out.stderr + out.stdout
        assert f"whoami: {user}" in out.stdout, out.stdout
        wrong = f"redis://{user}:{quote('not-' + password, safe='')}@{hostport}/0"
        out = probe(stack, "redis-whoami", env={"REDIS_URL": wrong})
        assert out.returncode == 1 and "WRONGPASS" in out.stderr, out.stderr + out.stdout
        assert password not in out.stderr and quote(password, safe="") not in out.stderr
    finally:
        stack.redis_cli("ACL", "DELUSER", user)


def test_dataset_rows_live_and_die_with_their_version(stack):
    """Rows land only in the partitions that the datasets row attached
    (another version's row is refused), deleting the datasets row takes them
    away, and no foreign-key trigger checks the rows one by one (it cost as
    much as the load: sql/070)."""
    stack.sql("INSERT INTO datasets (version, source_id, data_hash) VALUES (7, 'default', "
              "repeat('a', 64))")
    stack.sql("INSERT INTO stops (dataset_version, id, name) VALUES (7, 's1', 'A')")
    with pytest.raises(subprocess.CalledProcessError) as refused:
        psql_err(stack, "INSERT INTO stops (dataset_version, id, name) VALUES (8, 's1', 'A')")
    assert "no partition" in refused.value.stderr
    checks = stack.scalar(
        "SELECT count(*) FROM pg_trigger t JOIN pg_inherits i ON i.inhrelid = t.tgrelid "
        "WHERE t.tgfoid::regproc::text LIKE 'RI_FKey_check%' AND i.inhparent = ANY (ARRAY["
        "'stops', 'routes', 'flights', 'virtual_stops', 'virtual_routes']::regclass[])")
    assert checks == "0", f"{checks} foreign-key triggers check rows one by one"
    stack.sql("DELETE FROM datasets WHERE version = 7")
    assert stack.count("stops") == 0
    assert stack.scalar("SELECT to_regclass('stops_v7') IS NULL") == "t"


def psql_err(stack, sql):
    return subprocess.run(["psql", stack.database_url, "-v", "ON_ERROR_STOP=1", "-AtXc", sql],
                          check=True, capture_output=True, text=True)
