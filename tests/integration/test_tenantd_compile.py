"""aegis-tenantd compile: the policy in PostgreSQL becomes a snapshot a resolver enforces."""
import os
import shutil

import dns.rcode
import pytest

from resolverlib import Resolver, addresses, ede_of
from tenantdlib import Seed, seed_institutions, tenantd, tenantd_config


def resolver_at(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return Resolver(folder)


@pytest.fixture
def db(tmp_path, fresh_db):
    conf = tenantd_config(tmp_path, fresh_db, tmp_path / "snapshots")
    r = tenantd(conf, "migrate")
    assert r.returncode == 0, r.stderr
    seed = Seed(fresh_db)
    yield conf, seed
    seed.close()


def test_compiled_policy_is_enforced_by_a_resolver(tmp_path, db):
    conf, seed = db
    ministry, school, hospital = seed_institutions(seed)
    r = tenantd(conf, "compile")
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    assert os.path.exists(path)
    row = seed.sql("SELECT version, status, tenant_count, network_count, feed_name_count,"
                   " encode(sha256, 'hex') FROM snapshots ORDER BY version DESC LIMIT 1")[0]
    assert row[1] == "ok"
    assert row[2] == 3 and row[3] == 3 and row[4] == 3
    assert len(row[5]) == 64

    node = resolver_at(tmp_path / "node")
    shutil.copy(path, node.snapshot)
    node.start()
    try:
        a = node.ask("www.adult.test", source="127.1.0.5")
        assert a.rcode() == dns.rcode.NXDOMAIN and ede_of(a) == (
            17, "adult: contact it@school.example")
        assert addresses(node.ask("www.adult.test", source="127.2.0.9")), "hospital: no"
        assert node.ask("x.malware.test", source="127.2.0.9").rcode() == dns.rcode.REFUSED
        assert addresses(node.ask("ok.malware.test", source="127.2.0.9")), \
            "an RPZ passthru in a feed is an exception to the category"
        assert node.ask("sub.denied.test", source="127.1.0.5").rcode() == dns.rcode.NXDOMAIN
        assert ede_of(node.ask("national-block.test", source="127.2.0.9"))[0] == 15
        assert node.ask("www.school.test", source="127.9.9.9").rcode() == dns.rcode.REFUSED
    finally:
        assert node.stop() == 0


def test_threat_categories_are_on_by_default_and_can_be_turned_off(tmp_path, db):
    conf, seed = db
    ministry, school, hospital = seed_institutions(seed)
    seed.category(hospital, "malware", "off")
    seed.category(school, "malware", "monitor")
    path = tenantd(conf, "compile").stdout.strip()
    node = resolver_at(tmp_path / "node")
    shutil.copy(path, node.snapshot)
    node.start()
    try:
        assert addresses(node.ask("x.malware.test", source="127.2.0.9")), "turned off"
        assert addresses(node.ask("x.malware.test", source="127.1.0.5")), "monitored"
    finally:
        assert node.stop() == 0


def test_failed_compile_is_recorded_and_reported(tmp_path, db):
    conf, seed = db
    seed_institutions(seed)
    (tmp_path / "snapshots").chmod(0o500)
    try:
        if os.geteuid() == 0:
            conf.write_text(conf.read_text().replace(str(tmp_path / "snapshots"),
                                                     "/proc/no-such-dir"))
        r = tenantd(conf, "compile")
    finally:
        (tmp_path / "snapshots").chmod(0o700)
    assert r.returncode != 0
    assert "compile failed" in r.stderr
    status, error = seed.sql("SELECT status, error FROM snapshots ORDER BY version DESC LIMIT 1")[0]
    assert status == "failed" and error
