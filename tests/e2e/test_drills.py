"""Failure drills through the real platform: a neighbour goes away while clients keep
asking, and what users would notice is checked, and that no query-log record is lost or
doubled. Each drill brings back what it stopped.

The issue's deadlines (a node serves again within 2 s, ...) are measured loosely here, with
margins for a loaded test machine; the bars themselves live in bench/."""
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import dns.rcode
import pytest

from e2elib import ApiError, ask, ede_of, until

ROOT = Path(__file__).resolve().parents[2]
SCHOOL_NET, SCHOOL_CLIENT = "127.51.0.0/16", "127.51.0.5"
BLOCKED = "blocked-drill.wild.test"


def devstack(action, what):
    r = subprocess.run(["bash", str(ROOT / "scripts" / "devstack.sh"), action, what],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr


class Load:
    """Clients asking unique names of both nodes, about 100 a second, in a thread."""

    def __init__(self, platform, tag):
        self.platform, self.tag = platform, tag
        self.sent, self.answered, self.failed = [], 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        nodes = self.platform.nodes()
        i = 0
        while not self.stop.is_set():
            name = f"q{i}.{self.tag}.wild.test"
            try:
                a = ask(nodes[i % 2], name, SCHOOL_CLIENT, timeout=2)
                self.answered += a.rcode() == dns.rcode.NOERROR
                self.failed += a.rcode() != dns.rcode.NOERROR
            except Exception:
                self.failed += 1
            self.sent.append(name)
            i += 1
            time.sleep(0.01)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def logged_exactly_once(platform, load, timeout):
    """Waits until every name of the load has its one row in query_log; fails on doubles."""
    with platform.db() as conn, conn.cursor() as cur:
        def complete():
            cur.execute("SELECT qname, count(*) FROM query_log WHERE qname LIKE %s GROUP BY qname",
                        (f"%.{load.tag}.wild.test",))
            rows = dict(cur.fetchall())
            doubled = {q: n for q, n in rows.items() if n != 1}
            assert not doubled, f"records stored more than once: {doubled}"
            return len(rows) == len(load.sent)
        until(complete, timeout, interval=0.5, what=f"all {len(load.sent)} records in query_log")


@pytest.fixture(scope="module")
def school(platform, ministry_admin):
    api = ministry_admin
    school = api.post("/v1/tenants", {"kind": "school", "name": "Drill School",
                                      "slug": "school-drills",
                                      "networks": [{"cidr": SCHOOL_NET}]}, expect=201)
    deny = api.post(f"/v1/tenants/{school['id']}/lists", {"kind": "deny", "name": "drill"},
                    expect=201)
    api.post(f"/v1/lists/{deny['id']}/entries", {"domain": BLOCKED}, expect=201)

    def blocked_everywhere():
        return all(ask(n, BLOCKED, SCHOOL_CLIENT).rcode() == dns.rcode.NXDOMAIN
                   for n in platform.nodes())
    until(blocked_everywhere, 10, what="the drill school's policy on both nodes")
    return school


def test_kafka_down_30s_answers_continue_and_every_record_arrives_once(platform, school):
    with Load(platform, "kafka-drill") as load:
        time.sleep(2)
        devstack("stop", "kafka")
        time.sleep(30)
        devstack("start", "kafka")
        time.sleep(2)
    assert load.failed == 0 and load.answered == len(load.sent) > 2000
    logged_exactly_once(platform, load, timeout=120)


def test_postgres_down_nodes_answer_api_503_and_logpipe_loses_nothing(platform, school,
                                                                     ministry_admin):
    with Load(platform, "pg-drill") as load:
        time.sleep(1)
        devstack("stop", "pg")
        try:
            with pytest.raises(ApiError) as e:
                ministry_admin.get("/v1/tenants")
            assert e.value.status == 503 and "error" in e.value.body, e.value.body
            assert all(ask(n, BLOCKED, SCHOOL_CLIENT).rcode() == dns.rcode.NXDOMAIN
                       for n in platform.nodes())
            time.sleep(10)
        finally:
            devstack("start", "pg")
        time.sleep(1)
    assert load.failed == 0 and load.answered == len(load.sent)
    ministry_admin.get("/v1/tenants")
    logged_exactly_once(platform, load, timeout=120)


def test_tenantd_down_nodes_keep_policy_restart_from_disk_and_catch_up(platform, school,
                                                                      ministry_admin):
    platform.control("stop", "tenantd")
    try:
        # A node restarted meanwhile serves its persisted snapshot.
        platform.control("stop", "res1")
        platform.control("start", "res1")
        res1 = platform.nodes()[0]
        assert ask(res1, BLOCKED, SCHOOL_CLIENT).rcode() == dns.rcode.NXDOMAIN
        # A change made while tenantd is away waits for it.
        deny = ministry_admin.get(f"/v1/tenants/{school['id']}/lists")["items"][0]
        ministry_admin.post(f"/v1/lists/{deny['id']}/entries",
                            {"domain": "late-drill.wild.test"}, expect=201)
        time.sleep(1)
        assert ask(res1, "late-drill.wild.test", SCHOOL_CLIENT).rcode() == dns.rcode.NOERROR
    finally:
        platform.control("start", "tenantd")
    until(lambda: all(ask(n, "late-drill.wild.test", SCHOOL_CLIENT).rcode() ==
                      dns.rcode.NXDOMAIN for n in platform.nodes()),
          10, what="the change made while tenantd was down, on both nodes")


def test_upstream_down_cached_names_served_stale_others_servfail_with_ede(platform, school):
    node = platform.nodes()[0]
    assert ask(node, "cached-drill.wild.test", SCHOOL_CLIENT).rcode() == dns.rcode.NOERROR
    devstack("stop", "dns")
    try:
        # The platform caps cache TTLs at 3 s: after 4 s the answer can only be stale.
        time.sleep(4)
        a = ask(node, "cached-drill.wild.test", SCHOOL_CLIENT, timeout=5)
        assert a.rcode() == dns.rcode.NOERROR and a.answer
        assert (ede_of(a) or (None,))[0] == 3, "a stale answer carries EDE 3 (Stale Answer)"
        a = ask(node, "never-asked-drill.wild.test", SCHOOL_CLIENT, timeout=5)
        assert a.rcode() == dns.rcode.SERVFAIL
        assert ede_of(a) is not None, "SERVFAIL without an Extended DNS Error"
        # Blocking needs no upstream.
        assert ask(node, BLOCKED, SCHOOL_CLIENT).rcode() == dns.rcode.NXDOMAIN
    finally:
        devstack("start", "dns")


def test_node_sigkilled_serves_again_from_disk_at_once(platform, school):
    pid = int((platform.dir / "res2.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    platform.control("stop", "res2")   # clears the pidfile of the dead process
    started = time.monotonic()
    platform.control("start", "res2")
    res2 = platform.nodes()[1]
    _, took = until(lambda: ask(res2, BLOCKED, SCHOOL_CLIENT, timeout=0.5).rcode() ==
                    dns.rcode.NXDOMAIN, 10, what="res2 enforcing its policy after SIGKILL")
    assert time.monotonic() - started < 6, "the 2 s bar with room for a loaded machine"
