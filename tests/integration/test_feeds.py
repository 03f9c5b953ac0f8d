"""Threat feeds through aegis-tenantd: fetched from files and over HTTP, parsed, stored with
refresh counts, kept when a refresh fails, and enforced on a node."""
import functools
import http.server
import json
import threading

import pytest

from tenantdlib import Seed, tenantd, tenantd_config

GOOD = [f"bad{i}.example.test" for i in range(90)]
GARBAGE = ["tab\there.test", "a..b.test", "x" * 70 + ".test", "näive.test", "under score",
           "bad label!.test", "%%%.test", "$$$.test", "*", "..."]


@pytest.fixture
def db(tmp_path, fresh_db):
    conf = tenantd_config(tmp_path, fresh_db, tmp_path / "snapshots")
    assert tenantd(conf, "migrate").returncode == 0
    seed = Seed(fresh_db)
    yield conf, seed
    seed.close()


def add_feed(seed, name, fmt, source, category="malware"):
    return seed.sql("INSERT INTO feeds (name, category, format, source) VALUES (%s, %s, %s, %s)"
                    " RETURNING id", name, category, fmt, source)[0][0]


def refreshes(seed, fid):
    return seed.sql("SELECT outcome, entries_total, entries_added, entries_removed,"
                    " lines_invalid, error FROM feed_refreshes WHERE feed_id = %s ORDER BY id",
                    fid)


def names(seed, fid):
    return {n for (n,) in seed.sql("SELECT name FROM feed_entries WHERE feed_id = %s", fid)}


def test_plain_feed_with_garbage_loads_the_good_ninety_percent(tmp_path, db):
    conf, seed = db
    path = tmp_path / "list.txt"
    lines = ["# a feed", *GOOD[:45], *GARBAGE, *GOOD[45:]]
    path.write_text("\n".join(lines) + "\n")
    fid = add_feed(seed, "plain-feed", "plain", str(path))
    r = tenantd(conf, "feed-refresh", "plain-feed")
    assert r.returncode == 0, r.stderr
    assert names(seed, fid) == set(GOOD)
    assert refreshes(seed, fid) == [("updated", 90, 90, 0, 10, "")]
    assert "event=feed_line_invalid" in r.stderr
    status, reason, count = seed.sql("SELECT status, status_reason, entry_count FROM feeds")[0]
    assert (status, reason, count) == ("ok", "", 90)

    assert tenantd(conf, "feed-refresh", "plain-feed").returncode == 0
    assert refreshes(seed, fid)[-1][0] == "unchanged"

    path.write_text("\n".join(GOOD[10:] + ["new1.test", "new2.test"]) + "\n")
    assert tenantd(conf, "feed-refresh", "plain-feed").returncode == 0
    assert refreshes(seed, fid)[-1][:5] == ("updated", 82, 2, 10, 0)

    path.unlink()
    r = tenantd(conf, "feed-refresh", "plain-feed")
    assert r.returncode != 0
    assert len(names(seed, fid)) == 82, "a failed refresh keeps the last good entries"
    status, reason = seed.sql("SELECT status, status_reason FROM feeds")[0]
    assert status == "stale" and "No such file" in reason
    assert refreshes(seed, fid)[-1][0] == "failed"


def test_a_document_of_only_garbage_is_refused_not_emptied(tmp_path, db):
    conf, seed = db
    path = tmp_path / "list.txt"
    path.write_text("\n".join(GOOD) + "\n")
    fid = add_feed(seed, "fragile", "plain", str(path))
    assert tenantd(conf, "feed-refresh", "fragile").returncode == 0
    path.write_text("<html><body>503 Service Unavailable</body></html>\n")
    assert tenantd(conf, "feed-refresh", "fragile").returncode != 0
    assert names(seed, fid) == set(GOOD)


def test_hosts_and_rpz_feeds_map_their_actions(tmp_path, db):
    conf, seed = db
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n0.0.0.0 ads.example.test tracker.example.test\n"
                     "0.0.0.0 0.0.0.0\n# comment\n")
    rpz = tmp_path / "feed.rpz"
    rpz.write_text("$TTL 300\n$ORIGIN rpz.example.\n"
                   "@ SOA ns.rpz.example. h.rpz.example. 1 3600 600 86400 300\n@ NS ns\n"
                   "evil.test CNAME .\n*.evil.test CNAME .\nok.evil.test CNAME rpz-passthru.\n"
                   "32.1.2.0.192.rpz-ip CNAME .\n")
    h = add_feed(seed, "hosts-feed", "hosts", str(hosts), category="ads")
    p = add_feed(seed, "rpz-feed", "rpz", str(rpz))
    assert tenantd(conf, "feed-refresh", "hosts-feed").returncode == 0
    assert tenantd(conf, "feed-refresh", "rpz-feed").returncode == 0
    assert names(seed, h) == {"ads.example.test", "tracker.example.test"}
    actions = dict(seed.sql("SELECT name, action FROM feed_entries WHERE feed_id = %s", p))
    assert actions == {"evil.test": "block", "ok.evil.test": "passthru"}


class FeedServer:
    """Serves a folder over HTTP on loopback (with Last-Modified and 304s)."""

    def __init__(self, folder):
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=folder)
        handler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_http_feed_and_conditional_refresh(tmp_path, db):
    conf, seed = db
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "list.txt").write_text("\n".join(GOOD) + "\n")
    server = FeedServer(tmp_path / "www")
    try:
        fid = add_feed(seed, "http-feed", "plain", server.url + "/list.txt")
        assert tenantd(conf, "feed-refresh", "http-feed").returncode == 0
        assert len(names(seed, fid)) == 90
        assert tenantd(conf, "feed-refresh", "http-feed").returncode == 0
        assert refreshes(seed, fid)[-1][0] == "unchanged"
        fid2 = add_feed(seed, "missing-feed", "plain", server.url + "/nope.txt")
        assert tenantd(conf, "feed-refresh", "missing-feed").returncode != 0
        assert "HTTP status 404" in refreshes(seed, fid2)[-1][5]
        status = seed.sql("SELECT status FROM feeds WHERE id = %s", fid2)[0][0]
        assert status == "error", "never loaded: error, not stale"
    finally:
        server.close()


def test_misp_feed_takes_domains_marked_for_detection(tmp_path, db):
    conf, seed = db
    www = tmp_path / "misp"
    www.mkdir()
    e1, e2 = "5f0c6e5e-1111-4a7b-9c1e-000000000001", "5f0c6e5e-2222-4a7b-9c1e-000000000002"
    (www / "manifest.json").write_text(json.dumps({e1: {"info": "one"}, e2: {"info": "two"}}))
    (www / f"{e1}.json").write_text(json.dumps({"Event": {"uuid": e1, "Attribute": [
        {"type": "domain", "value": "c2.misp.test", "to_ids": True},
        {"type": "domain", "value": "context.misp.test", "to_ids": False},
        {"type": "ip-dst", "value": "192.0.2.7", "to_ids": True}]}}))
    (www / f"{e2}.json").write_text(json.dumps({"Event": {"uuid": e2, "Attribute": [],
        "Object": [{"Attribute": [{"type": "hostname", "value": "drop.misp.test",
                                   "to_ids": True}]}]}}))
    server = FeedServer(www)
    try:
        fid = add_feed(seed, "misp-feed", "misp", server.url)
        r = tenantd(conf, "feed-refresh", "misp-feed")
        assert r.returncode == 0, r.stderr
        assert names(seed, fid) == {"c2.misp.test", "drop.misp.test"}
    finally:
        server.close()
