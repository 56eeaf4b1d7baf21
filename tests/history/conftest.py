"""A real PostgreSQL for the history store (scripts/postgres-up.sh: Debian's
server, our own cluster on 127.0.0.1; .ci/run starts it, the fixture starts it
when it is not running) and one fresh database per test."""
import os
import subprocess
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def pg_server():
    res = subprocess.run([os.path.join(ROOT, "scripts", "postgres-up.sh")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


@pytest.fixture
def pg_dsn(pg_server):
    """postgresql:// DSN of an empty database, dropped after the test."""
    import psycopg
    name = "bt_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("CREATE DATABASE %s" % name)
    yield pg_server.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("DROP DATABASE %s WITH (FORCE)" % name)
