"""The history store on a real PostgreSQL server: the same three scheduled runs
as on SQLite, exact; the CLI answers from it; its schema is the same."""
import io
import json

import psycopg
import pytest

from bindreport.cli import run as cli_run
from bindreport.history import SCHEMA_VERSION, open_store

from history_cases import check_three_runs


def test_three_runs_postgres(pg_dsn):
    check_three_runs(pg_dsn)
    out, err = io.StringIO(), io.StringIO()
    assert cli_run(["history", "--history", pg_dsn, "--port", "6379", "-o", "json"], out=out, err=err) == 0
    rows = json.loads(out.getvalue())
    assert [(r["host"], r["proto"], r["port"], r["comm"], r["first_seen"], r["last_seen"], r["runs"],
             r["verdict"]) for r in rows] == [
        ("db1", "TCP", 6379, "redis-server", "2026-11-11T03:00:00Z", "2026-11-11T03:00:00Z", 1, "unexpected")]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT version FROM bindtrace_schema").fetchall() == [(SCHEMA_VERSION,)]
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone() == (3,)


def test_postgres_errors_name_the_cause(pg_server):
    bad = pg_server.rsplit(":", 1)[0] + ":1/bindtrace"   # nothing listens on port 1
    from bindreport.model import BindReportError
    with pytest.raises(BindReportError, match=r"cannot connect to history store postgresql://bindtrace@127\.0\.0\.1:1/"
                                              r"bindtrace \(.*\): check the DSN, that the server runs"):
        open_store(bad)


def test_reopen_is_idempotent(pg_dsn):
    for _ in range(2):
        with open_store(pg_dsn) as store:
            assert store.version() == SCHEMA_VERSION
