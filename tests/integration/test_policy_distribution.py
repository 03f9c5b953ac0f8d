"""A change committed in PostgreSQL reaches a running resolver through tenantd: LISTEN/NOTIFY,
compile, long-poll. And what happens when tenantd is away."""
import json
import signal
import subprocess
import time
import urllib.request

import dns.rcode
import pytest

from conftest import BIN
from resolverlib import Resolver, addresses, free_port
from tenantdlib import Seed, seed_institutions, tenantd, tenantd_config


class Tenantd:
    def __init__(self, tmp, dsn):
        self.port = free_port()
        self.conf = tenantd_config(tmp, dsn, tmp / "snapshots", extra=f"""
http: {{ listen = "127.0.0.1:{self.port}"; longpoll_max_seconds = 30; }};
compile: {{ debounce_ms = 50; }};
feeds: {{ check_interval_seconds = 1; }};
""")
        self.log = tmp / "tenantd.log"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(BIN / "aegis-tenantd"), "-c", str(self.conf)],
                                     stderr=open(self.log, "a"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                health = json.load(urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/healthz", timeout=2))
                if health["snapshot_version"]:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(self.log.read_text())

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture
def platform(tmp_path, fresh_db):
    conf = tenantd_config(tmp_path, fresh_db, tmp_path / "snapshots")
    assert tenantd(conf, "migrate").returncode == 0
    seed = Seed(fresh_db)
    ids = seed_institutions(seed)
    token = tenantd(conf, "node-add", "node-1").stdout.strip()
    td = Tenantd(tmp_path, fresh_db).start()
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "token").write_text(token + "\n")
    node = Resolver(tmp_path / "node", extra=f"""
policy: {{ snapshot = "{tmp_path / 'node' / 'policy.snap'}";
          url = "http://127.0.0.1:{td.port}"; token_file = "{tmp_path / 'node' / 'token'}";
          forward_special_zones = ["test."]; }};
""")
    node.conf.write_text(node.conf.read_text().replace(
        f'policy: {{ snapshot = "{node.snapshot}"; forward_special_zones = ["test."]; }};', ""))
    node.start()
    yield seed, ids, td, node
    node.stop()
    if td.proc.poll() is None:
        td.stop()
    seed.close()


def wait_until(check, seconds):
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            return None
        time.sleep(0.01)
    return time.monotonic() - start


def test_a_deny_list_change_reaches_the_node_at_once(platform):
    # Latency percentiles are measured in bench/tenantd; a busy machine gets a looser bound.
    seed, (ministry, school, hospital), td, node = platform
    assert wait_until(lambda: addresses(node.ask("www.school.test", source="127.2.0.9")), 5)
    seed.list_entries("tenant", "deny", ["www.school.test"], tenant=hospital)
    took = wait_until(lambda: node.ask("www.school.test", source="127.2.0.9").rcode()
                      == dns.rcode.REFUSED, 5.0)
    assert took is not None, "not enforced within 5 s"
    assert addresses(node.ask("www.school.test", source="127.1.0.5")), "only that tenant"


def test_a_burst_of_changes_compiles_once(platform, tmp_path):
    seed, (ministry, school, hospital), td, node = platform
    before = seed.sql("SELECT count(*) FROM snapshots")[0][0]
    with seed.conn.cursor() as cur:  # 20 changes committed back to back
        for i in range(20):
            cur.execute("SELECT id FROM lists WHERE tenant_id = %s AND kind = 'deny'", (school,))
            lid = cur.fetchone()[0]
            cur.execute("INSERT INTO list_entries (list_id, domain) VALUES (%s, %s)",
                        (lid, f"burst{i}.test"))
    assert wait_until(lambda: node.ask("burst19.test", source="127.1.0.5").rcode()
                      == dns.rcode.NXDOMAIN, 2)
    time.sleep(0.5)
    after = seed.sql("SELECT count(*) FROM snapshots")[0][0]
    assert after - before <= 3, f"{after - before} compiles for one burst"
    for i in range(8):  # more versions than tenantd keeps on disk
        seed.list_entries("national", "block", [f"version{i}.test"])
        assert wait_until(lambda: node.ask(f"version{i}.test", source="127.1.0.5").rcode()
                          == dns.rcode.NXDOMAIN, 5)
    files = sorted((tmp_path / "snapshots").glob("policy-*.snap"))
    assert 1 <= len(files) <= 5, [f.name for f in files]


def test_node_reports_the_version_it_runs(platform):
    seed, ids, td, node = platform
    seed.list_entries("national", "block", ["reported.test"])
    latest = lambda: seed.sql("SELECT max(version) FROM snapshots WHERE status = 'ok'")[0][0]
    assert wait_until(lambda: seed.sql("SELECT snapshot_version FROM resolver_nodes")[0][0]
                      == latest(), 35)
    name, ip, seen = seed.sql("SELECT name, host(last_seen_ip), last_seen_at FROM resolver_nodes")[0]
    assert name == "node-1" and ip == "127.0.0.1" and seen is not None


def test_tenantd_down_node_keeps_policy_restarts_from_disk_and_catches_up(platform):
    seed, (ministry, school, hospital), td, node = platform
    seed.list_entries("national", "block", ["before-outage.test"])
    assert wait_until(lambda: node.ask("before-outage.test", source="127.2.0.9").rcode()
                      == dns.rcode.REFUSED, 2)
    td.stop()
    assert node.ask("before-outage.test", source="127.2.0.9").rcode() == dns.rcode.REFUSED
    node.stop()
    node.start()  # from the persisted snapshot, tenantd still down
    assert node.ask("before-outage.test", source="127.2.0.9").rcode() == dns.rcode.REFUSED
    seed.list_entries("national", "block", ["during-outage.test"])
    time.sleep(0.3)
    assert node.ask("during-outage.test", source="127.2.0.9").rcode() != dns.rcode.REFUSED
    td.start()
    assert wait_until(lambda: node.ask("during-outage.test", source="127.2.0.9").rcode()
                      == dns.rcode.REFUSED, 35), "caught up after tenantd returned"


def test_revoked_node_token_is_refused(platform, tmp_path):
    seed, ids, td, node = platform
    token = (tmp_path / "node" / "token").read_text().strip()
    url = f"http://127.0.0.1:{td.port}/v1/snapshot"
    ok = urllib.request.urlopen(urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"}), timeout=5)
    assert ok.status == 200 and ok.headers["ETag"]
    assert tenantd(td.conf, "node-revoke", "node-1").returncode == 0
    audit = seed.sql("SELECT action FROM audit_log ORDER BY id")
    assert [a for (a,) in audit] == ["node.create", "node.revoke"]
    deadline = time.monotonic() + 35
    while True:
        try:
            urllib.request.urlopen(urllib.request.Request(
                url, headers={"Authorization": f"Bearer {token}"}), timeout=5)
        except urllib.error.HTTPError as e:
            assert e.code == 403
            break
        assert time.monotonic() < deadline, "revoked token still accepted"
        time.sleep(1)


def health(port):
    try:
        return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2))
    except urllib.error.HTTPError as e:
        return json.load(e)
    except OSError:
        return None


def test_leader_failover_within_seconds(platform, tmp_path, fresh_db):
    seed, ids, leader, node = platform
    (tmp_path / "second").mkdir()
    second = Tenantd(tmp_path / "second", fresh_db)
    second.proc = subprocess.Popen([str(BIN / "aegis-tenantd"), "-c", str(second.conf)],
                                   stderr=open(second.log, "a"))
    try:
        served = lambda: (health(second.port) or {}).get("snapshot_version") or 0
        first = health(leader.port)["snapshot_version"]
        assert wait_until(lambda: served() >= first, 5), \
            "a follower serves the version the leader published"
        seed.list_entries("national", "block", ["while-following.test"])
        assert wait_until(lambda: served() > first, 5), "and follows new ones"
        base = health(leader.port)["base_version"]
        assert base and health(second.port)["base_version"] == base, "with the same feed base"
        assert "event=leading" not in second.log.read_text()
        leader.stop(signal.SIGKILL)
        before = served()
        seed.list_entries("national", "block", ["after-failover.test"])
        took = wait_until(lambda: served() > before, 10)
        assert took is not None, second.log.read_text()
        assert "event=leading" in second.log.read_text()
    finally:
        second.stop()


def test_a_feed_refresh_adds_names_that_are_then_blocked(platform, tmp_path):
    seed, ids, td, node = platform
    feed = tmp_path / "fresh-feed.txt"
    feed.write_text("fresh-threat.test\n")
    seed.sql("INSERT INTO feeds (name, category, format, source) VALUES"
             " ('fresh', 'phishing', 'plain', %s)", str(feed))
    took = wait_until(lambda: node.ask("www.fresh-threat.test", source="127.2.0.9").rcode()
                      == dns.rcode.REFUSED, 10)
    assert took is not None, td.log.read_text()[-2000:]
    outcome = seed.sql("SELECT outcome, entries_added FROM feed_refreshes r JOIN feeds f"
                       " ON f.id = r.feed_id WHERE f.name = 'fresh'")
    assert outcome == [("updated", 1)]


def compiled_feeds(td):
    """How each snapshot_published of this tenantd got its feed names: 'cached' or 'read'."""
    return [line.split(" feeds=")[1].split()[0] for line in td.log.read_text().splitlines()
            if "event=snapshot_published" in line]


def bases_fetched(node):
    return node.log().count("event=snapshot_base_fetched")


def test_feed_names_kept_between_compiles_follow_every_feed_change(platform, tmp_path):
    # The service keeps the feed names between compiles as a feed base: a list change must not
    # re-read them nor send them to the node again, and a refresh, a feed disabled or moved to
    # another category must reach the node. Names under wild.test resolve upstream, so
    # NXDOMAIN for the school is its block.
    seed, (ministry, school, hospital), td, node = platform
    node_bases = lambda: sorted(p.name for p in (tmp_path / "node").glob("policy.snap.base-*"))
    school_ip, hospital_ip = "127.1.0.5", "127.2.0.9"
    blocked = lambda name, src, rcode: node.ask(name, source=src).rcode() == rcode
    # The feed thread's first refresh of the seeded feeds moves the revision: let it settle.
    assert wait_until(lambda: seed.sql("SELECT count(*) FROM feeds WHERE status = 'ok'")[0][0]
                      == 2, 10)
    latest = lambda: seed.sql("SELECT max(version) FROM snapshots WHERE status = 'ok'")[0][0]
    assert wait_until(lambda: health(td.port)["snapshot_version"] == latest(), 5)
    fetched = bases_fetched(node)
    seed.list_entries("national", "block", ["list-change.wild.test"])
    assert wait_until(lambda: blocked("list-change.wild.test", school_ip, dns.rcode.NXDOMAIN), 5)
    assert compiled_feeds(td)[-1] == "cached", td.log.read_text()[-2000:]
    assert bases_fetched(node) == fetched, "a list change sends the overlay alone"
    assert len(node_bases()) == 1, node_bases()
    assert blocked("malware.test", hospital_ip, dns.rcode.REFUSED), "cached names are compiled"
    assert not blocked("ok.malware.test", hospital_ip, dns.rcode.REFUSED), "and passthru too"

    # A refresh of the malware feed: one name in, one out (feed-refresh from the command line,
    # as an operator would; the running service only sees the committed rows).
    source = seed.sql("SELECT source FROM feeds WHERE name = 'malware-feed'")[0][0]
    with open(source, "a") as f:
        f.write("refreshed-in.wild.test CNAME .\n")
    text = open(source).read().replace("\nmalware.test CNAME .\n", "\n")
    open(source, "w").write(text)
    assert tenantd(td.conf, "feed-refresh", "malware-feed").returncode == 0
    assert wait_until(lambda: blocked("refreshed-in.wild.test", hospital_ip,
                                      dns.rcode.REFUSED), 5), td.log.read_text()[-2000:]
    assert wait_until(lambda: not blocked("malware.test", hospital_ip, dns.rcode.REFUSED), 5)
    assert compiled_feeds(td)[-1] == "read"
    assert bases_fetched(node) == fetched + 1, node.log()[-2000:]
    old_base = node_bases()
    assert len(old_base) == 1, "the node keeps the base in use only"

    # Then list changes again use the refreshed names from memory.
    seed.list_entries("national", "block", ["second-list-change.wild.test"])
    assert wait_until(lambda: blocked("second-list-change.wild.test", school_ip,
                                      dns.rcode.NXDOMAIN), 5)
    assert compiled_feeds(td)[-1] == "cached"
    assert bases_fetched(node) == fetched + 1 and node_bases() == old_base
    assert blocked("refreshed-in.wild.test", hospital_ip, dns.rcode.REFUSED)
    assert not blocked("malware.test", hospital_ip, dns.rcode.REFUSED)

    # A feed disabled, and one moved to a category the school does not block.
    seed.sql("UPDATE feeds SET enabled = false WHERE name = 'malware-feed'")
    assert wait_until(lambda: not blocked("refreshed-in.wild.test", hospital_ip,
                                          dns.rcode.REFUSED), 5)
    assert blocked("adult.test", school_ip, dns.rcode.NXDOMAIN)
    seed.sql("UPDATE feeds SET category = 'gambling' WHERE name = 'adult-feed'")
    assert wait_until(lambda: not blocked("adult.test", school_ip, dns.rcode.NXDOMAIN), 5)
    # A row written straight into feed_entries (no refresh at all) is seen as well.
    fid = seed.sql("SELECT id FROM feeds WHERE name = 'adult-feed'")[0][0]
    seed.sql("UPDATE feeds SET category = 'adult' WHERE id = %s", fid)
    seed.sql("INSERT INTO feed_entries (feed_id, name) VALUES (%s, 'direct-row.wild.test')", fid)
    assert wait_until(lambda: blocked("direct-row.wild.test", school_ip, dns.rcode.NXDOMAIN), 5)
    assert blocked("adult.test", school_ip, dns.rcode.NXDOMAIN)


def test_feed_base_is_served_by_its_checksum_to_nodes_only(platform, tmp_path):
    import hashlib
    seed, ids, td, node = platform
    token = (tmp_path / "node" / "token").read_text().strip()
    # The feed thread's first refresh of the seeded feeds makes a new base: let it settle.
    assert wait_until(lambda: seed.sql("SELECT count(*) FROM feeds WHERE status = 'ok'")[0][0]
                      == 2, 10)
    latest = lambda: seed.sql("SELECT max(version) FROM snapshots WHERE status = 'ok'")[0][0]
    assert wait_until(lambda: health(td.port)["snapshot_version"] == latest(), 5)
    version = health(td.port)["snapshot_version"]
    overlay = (tmp_path / "snapshots" / f"policy-{version}.snap").read_bytes()
    base_sha = overlay[208:240].hex()  # the base reference in the header (docs/snapshot.md)
    assert base_sha != "00" * 32
    node_base = tmp_path / "node" / f"policy.snap.base-{base_sha}"
    assert wait_until(node_base.exists, 5), node.log()[-2000:]
    url = f"http://127.0.0.1:{td.port}/v1/snapshot/base/"

    def get(hexsum, auth=True):
        headers = {"Authorization": f"Bearer {token}"} if auth else {}
        try:
            r = urllib.request.urlopen(urllib.request.Request(url + hexsum, headers=headers),
                                       timeout=10)
            return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    status, headers, body = get(base_sha)
    assert status == 200 and headers["ETag"] == f'"base-{base_sha}"'
    # The checksum covers every byte but its own 32 (docs/snapshot.md).
    assert hashlib.sha256(body[:48] + body[80:]).hexdigest() == base_sha
    assert body[48:80].hex() == base_sha
    assert node_base.read_bytes() == body
    assert get("0" * 64)[0] == 404
    assert get(base_sha[:-1])[0] == 404
    assert get(base_sha, auth=False)[0] == 401


def test_snapshot_is_served_zstd_gzip_or_identity_as_asked(platform, tmp_path):
    import gzip
    seed, ids, td, node = platform
    token = (tmp_path / "node" / "token").read_text().strip()
    version = health(td.port)["snapshot_version"]
    on_disk = (tmp_path / "snapshots" / f"policy-{version}.snap").read_bytes()

    def get(accept):
        headers = {"Authorization": f"Bearer {token}"}
        if accept is not None:
            headers["Accept-Encoding"] = accept
        r = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{td.port}/v1/snapshot", headers=headers), timeout=10)
        assert r.headers["ETag"] == f'"{version}"'
        return r.headers.get("Content-Encoding"), r.read()

    enc, body = get("gzip, deflate, zstd")
    assert enc == "zstd" and len(body) < len(on_disk)
    plain = subprocess.run(["zstd", "-d", "-c"], input=body, capture_output=True, check=True)
    assert plain.stdout == on_disk
    enc, body = get("gzip")
    assert enc == "gzip" and gzip.decompress(body) == on_disk
    enc, body = get("zstd;q=0, gzip")
    assert enc == "gzip" and gzip.decompress(body) == on_disk
    for accept in (None, "identity", "br"):
        enc, body = get(accept)
        assert enc is None and body == on_disk, accept
