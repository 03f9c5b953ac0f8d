"""Fixtures shared by the black-box integration tests.

The tests run against the dev stack that scripts/test.sh starts (scripts/devstack.sh); its
addresses arrive in AEGIS_* environment variables. Nothing here mocks a component."""
import os
import secrets
import subprocess
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AEGIS_BIN", ROOT / "build" / "bin"))


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests through scripts/test.sh")
    return value


@pytest.fixture
def admin_conn():
    conn = psycopg2.connect(env("AEGIS_PG_ADMIN_DSN"))
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture
def fresh_db(admin_conn):
    """A new, empty database owned by the aegis role; returns its libpq DSN."""
    name = "aegis_t_" + secrets.token_hex(6)
    with admin_conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" OWNER aegis')
    base = env("AEGIS_PG_DSN")
    dsn = " ".join(p for p in base.split() if not p.startswith("dbname=")) + f" dbname={name}"
    yield dsn
    with admin_conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(path, text):
    path.write_text(text)
    return path


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)
