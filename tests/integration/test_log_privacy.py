"""Per-tenant privacy of the query log: a school logging keyed daily pseudonyms, a hospital
logging truncated prefixes, an office logging whole addresses, all in one snapshot."""
import hashlib
import hmac
import json
import time
from datetime import datetime, timezone

import pytest

from resolverlib import HOSPITAL, OFFICE, SCHOOL, Resolver, base_policy, compile_policy

SECRET = b"a node secret shared by every resolver of the country, 32+ bytes"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("privacy")
    secret = tmp / "pseudonym.secret"
    secret.write_bytes(SECRET)
    r = Resolver(tmp)
    r.conf.write_text(r.conf.read_text().replace(
        "querylog: { file = ", f'querylog: {{ pseudonym_secret_file = "{secret}"; file = '))
    policy = base_policy()
    tenants = {t["id"]: t for t in policy["tenants"]}
    tenants[SCHOOL]["privacy"] = "pseudonym"
    tenants[HOSPITAL].update(privacy="truncated", trunc_v4=24, trunc_v6=48)
    compile_policy(policy, r.snapshot, serial=1)
    r.start()
    yield r
    assert r.stop() == 0, r.log()


def records_for(node, qname, count):
    deadline = time.monotonic() + 5
    while True:
        lines = [json.loads(line) for line in node.querylog.read_text().splitlines() if line]
        hits = [rec for rec in lines if rec["qname"] == qname]
        if len(hits) >= count or time.monotonic() > deadline:
            assert len(hits) == count, hits
            return hits
        time.sleep(0.1)


def expected_pseudonym(address_bytes, ts):
    """docs/querylog.md: HMAC-SHA256(day key, address), first 16 bytes, with
    day key = HMAC-SHA256(SHA-256(secret), "aegis client pseudonym v1 YYYY-MM-DD")."""
    day = datetime.strptime(ts[:10], "%Y-%m-%d").replace(tzinfo=timezone.utc)
    label = b"aegis client pseudonym v1 " + day.strftime("%Y-%m-%d").encode()
    day_key = hmac.new(hashlib.sha256(SECRET).digest(), label, hashlib.sha256).digest()
    return hmac.new(day_key, address_bytes, hashlib.sha256).digest()[:16].hex()


def test_pseudonymous_tenant_logs_no_address(node):
    node.ask("a.priv-school.test", source="127.1.0.5")
    node.ask("a.priv-school.test", source="127.1.0.5")
    node.ask("a.priv-school.test", source="127.1.0.6")
    # Two workers write the file, so the records need not come in the order asked.
    records = records_for(node, "a.priv-school.test", 3)
    for rec in records:
        assert rec["client_ip"] is None
        assert rec["tenant_id"] == SCHOOL
        assert len(rec["client_pseudonym"]) == 32
    five = {expected_pseudonym(bytes([127, 1, 0, 5]), rec["ts"]) for rec in records}
    six = {expected_pseudonym(bytes([127, 1, 0, 6]), rec["ts"]) for rec in records}
    pseudonyms = [rec["client_pseudonym"] for rec in records]
    # The same client twice under one pseudonym, the other client under another: the
    # documented HMAC of each address for the day of its record.
    assert sum(p in five for p in pseudonyms) == 2, (pseudonyms, five)
    assert sum(p in six for p in pseudonyms) == 1, (pseudonyms, six)
    assert not five & six


def test_truncating_tenant_logs_a_prefix(node):
    node.ask("b.priv-hospital.test", source="127.2.0.9")
    node.ask("b.priv-hospital.test", source="::1")
    v4, v6 = sorted(records_for(node, "b.priv-hospital.test", 2), key=lambda r: ":" in r["client_ip"])
    assert v4["client_ip"] == "127.2.0.0/24" and v4["client_pseudonym"] is None
    assert v6["client_ip"] == "::/48"
    assert v4["tenant_id"] == v6["tenant_id"] == HOSPITAL


def test_full_tenant_logs_the_whole_address(node):
    node.ask("c.priv-office.test", source="127.3.0.7")
    (rec,) = records_for(node, "c.priv-office.test", 1)
    assert rec["client_ip"] == "127.3.0.7" and rec["tenant_id"] == OFFICE
