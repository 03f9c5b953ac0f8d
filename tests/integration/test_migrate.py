"""aegis-tenantd migrate against a real PostgreSQL: apply, re-apply, and every refusal."""
import hashlib
import re
import shutil
import subprocess

import psycopg2
import pytest

from conftest import BIN, ROOT, run, write_config

MIGRATIONS = sorted((ROOT / "migrations").glob("*.sql"))


@pytest.fixture
def setup(tmp_path, fresh_db):
    mdir = tmp_path / "migrations"
    shutil.copytree(ROOT / "migrations", mdir)
    conf = write_config(tmp_path / "tenantd.conf",
                        f'database: {{ dsn = "{fresh_db}"; }};\n'
                        f'migrations: {{ dir = "{mdir}"; }};\n')
    return conf, mdir, fresh_db


def migrate(conf):
    return run([BIN / "aegis-tenantd", "-c", conf, "migrate"])


def applied(dsn):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT name, checksum, applied_at FROM schema_migrations ORDER BY version")
        return cur.fetchall()


def table_exists(dsn, name):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
        return cur.fetchone()[0]


def test_there_are_migrations():
    assert len(MIGRATIONS) >= 3


def test_applies_every_file_in_order_with_its_checksum(setup):
    conf, mdir, dsn = setup
    r = migrate(conf)
    assert r.returncode == 0, r.stderr
    rows = applied(dsn)
    assert [row[0] for row in rows] == [p.name for p in MIGRATIONS]
    for (name, checksum, _), path in zip(rows, MIGRATIONS):
        assert checksum == hashlib.sha256(path.read_bytes()).hexdigest(), name
    assert f"applied={len(MIGRATIONS)} already_applied=0" in r.stderr
    for table in ("tenants", "networks", "policies", "audit_log", "query_log", "api_keys"):
        assert table_exists(dsn, table), table


def test_second_run_is_a_no_op(setup):
    conf, _, dsn = setup
    assert migrate(conf).returncode == 0
    before = applied(dsn)
    r = migrate(conf)
    assert r.returncode == 0, r.stderr
    assert f"applied=0 already_applied={len(MIGRATIONS)}" in r.stderr
    assert applied(dsn) == before


def test_edited_applied_migration_is_refused_and_nothing_else_runs(setup):
    conf, mdir, dsn = setup
    assert migrate(conf).returncode == 0
    first = mdir / MIGRATIONS[0].name
    first.write_text(first.read_text() + "\n-- edited afterwards\n")
    (mdir / "9990_later.sql").write_text("CREATE TABLE later_one (id int);\n")
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_changed" in r.stderr and MIGRATIONS[0].name in r.stderr
    assert not table_exists(dsn, "later_one")
    assert len(applied(dsn)) == len(MIGRATIONS)


def test_failing_migration_rolls_back_whole_and_names_the_line(setup):
    conf, mdir, dsn = setup
    broken = mdir / "9000_broken.sql"
    broken.write_text("CREATE TABLE half_done (id int);\n\nSELECT no_such_column FROM half_done;\n")
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_failed file=9000_broken.sql" in r.stderr
    assert "line 3" in r.stderr and "no_such_column" in r.stderr
    assert not table_exists(dsn, "half_done"), "a failed migration must leave nothing behind"
    assert len(applied(dsn)) == len(MIGRATIONS), "the files before it stay applied"
    broken.write_text("CREATE TABLE half_done (id int);\n")
    r = migrate(conf)
    assert r.returncode == 0, r.stderr
    assert table_exists(dsn, "half_done")


def test_new_file_numbered_before_an_applied_one_is_refused(setup):
    conf, mdir, dsn = setup
    (mdir / "9100_b.sql").write_text("CREATE TABLE b (id int);\n")
    assert migrate(conf).returncode == 0
    (mdir / "9050_a.sql").write_text("CREATE TABLE a (id int);\n")
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_out_of_order file=9050_a.sql" in r.stderr
    assert not table_exists(dsn, "a")


def test_applied_migration_missing_from_files_is_refused(setup):
    conf, mdir, dsn = setup
    (mdir / "9100_b.sql").write_text("CREATE TABLE b (id int);\n")
    assert migrate(conf).returncode == 0
    (mdir / "9100_b.sql").unlink()
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_missing applied=9100_b.sql" in r.stderr


@pytest.mark.parametrize("bad", ["12_short.sql", "0001-dash.sql", "0002_Upper.sql"])
def test_badly_named_file_is_refused(setup, bad):
    conf, mdir, dsn = setup
    (mdir / bad).write_text("SELECT 1;\n")
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_badly_named" in r.stderr and bad in r.stderr
    assert not table_exists(dsn, "schema_migrations") or applied(dsn) == []


def test_duplicate_version_is_refused(setup):
    conf, mdir, _ = setup
    (mdir / "9200_one.sql").write_text("SELECT 1;\n")
    (mdir / "9200_two.sql").write_text("SELECT 2;\n")
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=migration_version_duplicated" in r.stderr


def test_concurrent_runners_apply_each_file_once(setup):
    conf, _, dsn = setup
    procs = [subprocess.Popen([str(BIN / "aegis-tenantd"), "-c", str(conf), "migrate"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert [row[0] for row in applied(dsn)] == [p.name for p in MIGRATIONS]
    total = sum(int(re.search(r"event=schema_current applied=(\d+)", o[1]).group(1))
                for o in outs)
    assert total == len(MIGRATIONS)


def test_unreachable_database_fails_clearly(tmp_path):
    conf = write_config(tmp_path / "t.conf", 'database: { dsn = "host=127.0.0.1 port=1"; };\n')
    r = migrate(conf)
    assert r.returncode != 0
    assert "event=db_connect_failed" in r.stderr
