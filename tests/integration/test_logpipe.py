"""aegis-logpipe against the real broker and the real database: records produced with kcat
(JSON built by hand from docs/querylog.md) must arrive in query_log field by field, be counted
in the rollups once, survive re-delivery, a SIGKILL mid-stream, a PostgreSQL outage and a
second consumer in the group, and poison records must go to the dead-letter topic while the
pipe goes on. Every test has its own topic, group and database."""
import datetime
import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request
import uuid

import psycopg2
import pytest

from conftest import BIN, ROOT, env, write_config
from resolverlib import free_port
from tenantdlib import tenantd, tenantd_config

TENANT_A = "3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10"
TENANT_B = "9b1d2c3e-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
FEED = "7d0c4b2a-1e3f-4a5b-8c6d-9e0f1a2b3c4d"
LIST = "0c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"


# --- records ------------------------------------------------------------------------------

def uuid7(ms):
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62) \
        | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def ts_text(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(dt=None, **fields):
    """A valid v1 record (docs/querylog.md); fields override the defaults."""
    dt = dt or datetime.datetime.now(datetime.timezone.utc)
    rec = {
        "v": 1, "event_id": uuid7(int(dt.timestamp() * 1000)), "ts": ts_text(dt),
        "node": "res1.lon", "tenant_id": TENANT_A, "client_ip": "192.0.2.44",
        "client_pseudonym": None, "client_port": 53211, "transport": "udp",
        "qname": "www.example.com", "qtype": 1, "qtype_name": "A", "rcode": 0,
        "rcode_name": "NOERROR", "action": "allow", "rule": None, "ede": None,
        "cache_hit": False, "upstream": "192.0.2.53:53", "upstream_latency_us": 1200,
        "snapshot": 4211,
    }
    rec.update(fields)
    return rec


def category_rule(category="malware", mode="block", matched="evil.example"):
    return {"kind": "category", "category": category, "mode": mode, "matched": matched,
            "list_id": None, "feed_id": FEED}


def varied_records(now):
    """One record of each shape the schema allows, a second apart."""
    at = [now - datetime.timedelta(seconds=60 - i) for i in range(16)]
    return [
        record(at[0]),
        record(at[1], qname="cdn.Malware.EVIL.example", qtype=28, qtype_name="AAAA", rcode=3,
               rcode_name="NXDOMAIN", action="block", rule=category_rule(), ede=15,
               upstream=None, upstream_latency_us=None),
        record(at[2], qname="ads.tracker.example", action="monitor",
               rule=category_rule("tracking", "monitor", "tracker.example")),
        record(at[3], qname="blocked.gov.example", action="block", rcode=0, ede=15,
               rule={"kind": "national_block", "category": None, "mode": None,
                     "matched": "blocked.gov.example", "list_id": LIST, "feed_id": None},
               upstream=None, upstream_latency_us=None),
        record(at[4], qname="games.example", action="block", rcode=3, rcode_name="NXDOMAIN",
               ede=17, rule={"kind": "tenant_deny", "category": None, "mode": None,
                             "matched": "games.example", "list_id": LIST, "feed_id": None},
               upstream=None, upstream_latency_us=None),
        record(at[5], qname="ok.evil.example", action="allow",
               rule={"kind": "tenant_allow", "category": None, "mode": None,
                     "matched": "ok.evil.example", "list_id": LIST, "feed_id": None}),
        record(at[6], client_ip=None, client_pseudonym="a3f1" * 8, tenant_id=TENANT_B,
               qname="c2.evil.example", action="block", rule=category_rule(), ede=15,
               upstream=None, upstream_latency_us=None),
        record(at[7], client_ip="10.1.2.0/24", tenant_id=TENANT_B),
        record(at[8], client_ip="2001:db8::1", transport="tcp",
               upstream="[2001:db8::53]:53", cache_hit=False),
        record(at[9], tenant_id=None, action="refused", rcode=5, rcode_name="REFUSED",
               upstream=None, upstream_latency_us=None),
        record(at[10], action="ratelimited", rcode=None, rcode_name=None, upstream=None,
               upstream_latency_us=None),
        record(at[11], qname="localhost", action="local", upstream=None,
               upstream_latency_us=None),
        record(at[12], action="error", rcode=2, rcode_name="SERVFAIL", ede=22),
        record(at[13], qname=r"a\.b.Ex\255ample.com", cache_hit=True, upstream=None,
               upstream_latency_us=None),
        record(at[14], qname="", qtype=0, qtype_name="TYPE0", rcode=1, rcode_name="FORMERR",
               upstream=None, upstream_latency_us=None),
        record(at[15], qname=".", qtype=2, qtype_name="NS"),
    ]


def expected_row(rec):
    """The query_log row a record becomes (docs/querylog.md "Into PostgreSQL")."""
    rule = rec["rule"] or {}
    return {
        "ts": datetime.datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        .replace(tzinfo=datetime.timezone.utc),
        "event_id": rec["event_id"], "node": rec["node"], "tenant_id": rec["tenant_id"],
        "client_ip": rec["client_ip"], "client_pseudonym": rec["client_pseudonym"],
        "client_port": rec["client_port"], "transport": rec["transport"],
        "qname": re.sub("[A-Z]", lambda m: m.group(0).lower(), rec["qname"]),
        "qtype": rec["qtype"], "rcode": rec["rcode"], "action": rec["action"],
        "matched_list_id": rule.get("list_id"), "matched_feed_id": rule.get("feed_id"),
        "matched_name": rule.get("matched"), "category": rule.get("category"),
        "mode": rule.get("mode"), "ede": rec["ede"], "cache_hit": rec["cache_hit"],
        "upstream": rec["upstream"], "upstream_latency_us": rec["upstream_latency_us"],
        "snapshot_version": rec["snapshot"], "rule_kind": rule.get("kind"),
    }


def bulk_records(n, tenants=(TENANT_A, TENANT_B)):
    """n distinct records over the last hour, every 50th a category block."""
    now = datetime.datetime.now(datetime.timezone.utc)
    out = []
    for i in range(n):
        dt = now - datetime.timedelta(microseconds=i * 997)
        hit = i % 50 == 0
        out.append(record(dt, tenant_id=tenants[i % len(tenants)],
                          client_ip=f"10.{i % 7}.{i % 250}.{i % 199}",
                          qname=f"h{i}.example" if not hit else f"x{i}.evil.example",
                          action="block" if hit else "allow",
                          rule=category_rule() if hit else None))
    return out


# --- Kafka and the daemon -----------------------------------------------------------------

def produce(topic, lines, partition=None):
    """Sends lines (str or dict) to topic with kcat; the key spreads them over partitions."""
    text = "".join((json.dumps(x, separators=(",", ":")) if isinstance(x, dict) else x)
                   .replace("\t", " ") + "\n" for x in lines)
    keyed = "".join(f"{i % 64}\t{line}\n" for i, line in enumerate(text.splitlines()))
    args = ["kcat", "-b", env("AEGIS_KAFKA_BROKERS"), "-P", "-t", topic, "-K", "\t",
            "-X", "acks=all", "-X", "enable.idempotence=true"]
    if partition is not None:
        args += ["-p", str(partition)]
    r = subprocess.run(args, input=keyed, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def consume_all(topic, expect, timeout=30):
    """The records of topic (value and headers), once at least expect have arrived."""
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        r = subprocess.run(["kcat", "-b", env("AEGIS_KAFKA_BROKERS"), "-C", "-t", topic, "-e",
                            "-q", "-f", "%h\x1f%s\x1e"], capture_output=True, text=True,
                           timeout=60)
        got = [m.split("\x1f", 1) for m in r.stdout.split("\x1e") if "\x1f" in m]
        if len(got) >= expect:
            return [(dict(h.split("=", 1) for h in hs.split(",") if "=" in h), v)
                    for hs, v in got]
        time.sleep(1)
    pytest.fail(f"{topic}: {len(got)} of {expect} records")


class Logpipe:
    def __init__(self, tmp_path, dsn, topic, group, batch_records=5000, batch_ms=200,
                 name="lp"):
        self.port = free_port()
        self.log = tmp_path / f"{name}.log"
        self.conf = write_config(tmp_path / f"{name}.conf", f"""
log: {{ level = "info"; }};
database: {{ dsn = "{dsn}"; }};
kafka: {{ brokers = "{env('AEGIS_KAFKA_BROKERS')}"; topic = "{topic}"; group_id = "{group}";
          dead_letter_topic = "{topic}.dead"; session_timeout_ms = 6000; }};
batch: {{ records = {batch_records}; ms = {batch_ms}; }};
metrics: {{ listen = "127.0.0.1:{self.port}"; }};
""")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([str(BIN / "aegis-logpipe"), "-c", str(self.conf)],
                                     stderr=open(self.log, "a"), stdout=subprocess.DEVNULL)
        return self

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {m.group(1): float(m.group(2))
                for m in re.finditer(r"^(\S+) (\S+)$", text, re.M)}

    def metric(self, name, default=0.0):
        try:
            return self.metrics().get(name, default)
        except OSError:
            return default

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                assert self.proc.wait(timeout=30) == 0
            finally:
                if self.proc.poll() is None:
                    self.proc.kill()
                    self.proc.wait()


@pytest.fixture
def db(tmp_path, fresh_db):
    conf = tenantd_config(tmp_path, fresh_db, tmp_path / "snapshots")
    r = tenantd(conf, "migrate")
    assert r.returncode == 0, r.stderr
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    yield fresh_db, conn
    conn.close()


def admin(query):
    admin_db(None, query)


def admin_db(dbname, query):
    """Runs query as the superuser, in dbname (default: the admin DSN's database)."""
    dsn = env("AEGIS_PG_ADMIN_DSN")
    if dbname:
        dsn = " ".join(p for p in dsn.split() if not p.startswith("dbname=")) \
            + f" dbname={dbname}"
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(query)
    conn.close()


@pytest.fixture
def restartable_db(tmp_path):
    """Like db, for a test that restarts PostgreSQL: no connection is held across it."""
    name = "aegis_t_" + secrets.token_hex(6)
    admin(f'CREATE DATABASE "{name}" OWNER aegis')
    dsn = " ".join(p for p in env("AEGIS_PG_DSN").split() if not p.startswith("dbname=")) \
        + f" dbname={name}"
    r = tenantd(tenantd_config(tmp_path, dsn, tmp_path / "snapshots"), "migrate")
    assert r.returncode == 0, r.stderr
    yield dsn
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def topic():
    return "lp-" + secrets.token_hex(5)


@pytest.fixture
def pipes():
    started = []
    yield started
    for p in started:
        if p.proc and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def sql(conn, query, *args):
    with conn.cursor() as cur:
        cur.execute(query, args)
        return cur.fetchall()


def wait_rows(conn, n, timeout=60):
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        count = sql(conn, "SELECT count(*) FROM query_log")[0][0]
        if count >= n:
            return count
        time.sleep(0.3)
    pytest.fail(f"{count} of {n} rows in query_log")


def wait_until(cond, what, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


ROLLUPS = {
    "query_rollup_hourly": "SELECT tenant_id::text, hour, category, action, count "
                           "FROM query_rollup_hourly ORDER BY 1, 2, 3, 4",
    "rollup_blocked_names": "SELECT tenant_id::text, hour, qname, action, category, count "
                            "FROM rollup_blocked_names ORDER BY 1, 2, 3, 4, 5",
    "rollup_threat_clients": "SELECT tenant_id::text, hour, host(client_ip), "
                             "client_pseudonym, category, count FROM rollup_threat_clients "
                             "ORDER BY 1, 2, 3, 4, 5",
}


def rollups(conn):
    return {name: sql(conn, q) for name, q in ROLLUPS.items()}


def exactly_once(conn, event_ids):
    rows = sql(conn, "SELECT event_id::text, count(*) FROM query_log GROUP BY 1")
    counts = dict(rows)
    assert set(counts) == set(event_ids), "rows missing or foreign"
    assert max(counts.values()) == 1, "a row stored twice"
    total = sql(conn, "SELECT coalesce(sum(count), 0) FROM query_rollup_hourly")[0][0]
    tenanted = sql(conn, "SELECT count(*) FROM query_log WHERE tenant_id IS NOT NULL")[0][0]
    assert total == tenanted, "the hourly rollup counts a row twice or misses one"


# --- tests --------------------------------------------------------------------------------

def test_records_arrive_field_by_field_and_redelivery_changes_nothing(tmp_path, db, topic,
                                                                      pipes):
    dsn, conn = db
    now = datetime.datetime.now(datetime.timezone.utc).replace(minute=30)
    records = varied_records(now)
    produce(topic, records)
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g").start()
    pipes.append(lp)
    wait_rows(conn, len(records))

    cols = list(expected_row(records[0]))
    with conn.cursor() as cur:
        select = ", ".join(c + "::text" if c.endswith("_id") or c == "client_ip" else c
                           for c in cols)
        cur.execute(f"SELECT {select} FROM query_log")
        got = {r[1]: dict(zip(cols, r)) for r in cur.fetchall()}
    assert len(got) == len(records)
    for rec in records:
        want = expected_row(rec)
        row = got[rec["event_id"]]
        for col in cols:
            if col == "client_ip" and want[col] and "/" not in want[col]:
                row[col] = row[col].split("/")[0]
            assert row[col] == want[col], f"{col} of {rec['qname']!r}"

    hour = now.replace(minute=0, second=0, microsecond=0)
    counts = dict(((t, c, a), n) for t, h, c, a, n in rollups(conn)["query_rollup_hourly"]
                  if h == hour)
    assert counts[(TENANT_A, "malware", "block")] == 1
    assert counts[(TENANT_A, "tracking", "monitor")] == 1
    assert counts[(TENANT_A, "", "block")] == 2          # national block, tenant deny
    assert counts[(TENANT_B, "malware", "block")] == 1
    assert counts[(TENANT_A, "", "local")] == 1
    assert counts[(TENANT_A, "", "error")] == 1
    assert sum(n for (t, _, _), n in counts.items() if t == TENANT_A) == 13
    assert sum(n for (t, _, _), n in counts.items() if t == TENANT_B) == 2
    names = rollups(conn)["rollup_blocked_names"]
    assert (TENANT_A, hour, "cdn.malware.evil.example", "block", "malware", 1) in names
    assert (TENANT_A, hour, "blocked.gov.example", "block", "", 1) in names
    clients = rollups(conn)["rollup_threat_clients"]
    assert (TENANT_A, hour, "192.0.2.44", None, "malware", 1) in clients
    assert (TENANT_B, hour, None, "a3f1" * 8, "malware", 1) in clients
    assert sql(conn, "SELECT rule_kind, count(*) FROM query_log WHERE rule_kind IS NOT NULL "
                     "GROUP BY 1 ORDER BY 1") == [
        ("category", 3), ("national_block", 1), ("tenant_allow", 1), ("tenant_deny", 1)]

    # The same records again: nothing new, nothing counted twice.
    before = rollups(conn)
    produce(topic, records)
    wait_until(lambda: lp.metric("aegis_logpipe_duplicates_skipped_total") >= len(records),
               "the re-delivered records to be skipped")
    assert sql(conn, "SELECT count(*) FROM query_log")[0][0] == len(records)
    assert rollups(conn) == before
    assert lp.metric("aegis_logpipe_rows_inserted_total") == len(records)
    lp.stop()


def test_poison_records_go_to_the_dead_letter_topic_and_the_pipe_goes_on(tmp_path, db, topic,
                                                                         pipes):
    dsn, conn = db
    good = bulk_records(30)
    bad_field = record(qtype=70000)
    bad_text = record(node="res\u00ff1")               # byte 0xff: no UTF-8 text
    bad_db = record(action="block", rule=category_rule(category="Not-A-Category"))
    poison = ["this is not json", json.dumps(bad_field), json.dumps(bad_text),
              json.dumps(bad_db)]
    # All on one partition, between good records, so offsets after them must be committed.
    produce(topic, good[:10] + poison[:2] + good[10:20] + poison[2:] + good[20:], partition=0)
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g", batch_records=7).start()
    pipes.append(lp)
    wait_rows(conn, 30)

    dead = consume_all(topic + ".dead", 4)
    assert len(dead) == 4
    by_value = {v: h for h, v in dead}
    assert by_value["this is not json"]["aegis-reason"].startswith("decode: ")
    assert "qtype" in by_value[json.dumps(bad_field)]["aegis-reason"]
    assert by_value[json.dumps(bad_text)]["aegis-reason"].startswith("text: node")
    assert by_value[json.dumps(bad_db)]["aegis-reason"].startswith("database: 23514")
    for headers, value in dead:
        assert headers["aegis-source-topic"] == topic
        assert headers["aegis-source-partition"] == "0"
        assert int(headers["aegis-source-offset"]) in (10, 11, 22, 23)
    exactly_once(conn, [r["event_id"] for r in good])
    assert lp.metric('aegis_logpipe_dead_lettered_total{reason="decode"}') == 2
    assert lp.metric('aegis_logpipe_dead_lettered_total{reason="text"}') == 1
    assert lp.metric('aegis_logpipe_dead_lettered_total{reason="database"}') == 1

    # Later records still arrive, and after a restart nothing comes again.
    later = bulk_records(5)
    produce(topic, later, partition=0)
    wait_rows(conn, 35)
    lp.stop()
    lp2 = Logpipe(tmp_path, dsn, topic, topic + "-g", name="lp2").start()
    pipes.append(lp2)
    wait_until(lambda: lp2.metric("aegis_logpipe_assigned_partitions") > 0, "an assignment")
    time.sleep(3)
    assert lp2.metric("aegis_logpipe_records_consumed_total") == 0, \
        "committed offsets must cover stored and dead-lettered records"
    lp2.stop()


def test_sigkill_mid_stream_then_restart_stores_every_record_once(tmp_path, db, topic, pipes):
    dsn, conn = db
    records = bulk_records(120000)
    produce(topic, records)
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g", batch_records=2000).start()
    pipes.append(lp)
    # Kill while batches are in flight: some stored, most not.
    wait_rows(conn, 10000)
    lp.kill()
    stored = sql(conn, "SELECT count(*) FROM query_log")[0][0]
    assert stored < len(records), "the kill came too late to prove anything"
    lp2 = Logpipe(tmp_path, dsn, topic, topic + "-g", batch_records=2000, name="lp2").start()
    pipes.append(lp2)
    wait_rows(conn, len(records), timeout=180)
    wait_until(lambda: lp2.metric("aegis_logpipe_consumer_lag") == 0, "lag 0")
    exactly_once(conn, [r["event_id"] for r in records])
    assert sql(conn, "SELECT count(*) FROM rollup_blocked_names")[0][0] == len(records) // 50
    lp2.stop()


def devstack(action, what):
    r = subprocess.run([str(ROOT / "scripts" / "devstack.sh"), action, what],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr


def stop_postgres():
    devstack("stop", "pg")


def start_postgres():
    devstack("start", "pg")


def test_postgres_outage_pauses_and_loses_nothing(tmp_path, restartable_db, topic, pipes):
    dsn = restartable_db
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g", batch_records=500).start()
    pipes.append(lp)
    first = bulk_records(3000)
    produce(topic, first)
    wait_rows(conn, len(first))
    conn.close()

    stop_postgres()
    try:
        during = bulk_records(5000)
        produce(topic, during)
        wait_until(lambda: lp.metric("aegis_logpipe_db_up", 1) == 0, "db_up 0")
        wait_until(lambda: lp.metric("aegis_logpipe_paused") == 1, "paused")
        time.sleep(2)
    finally:
        start_postgres()
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    after = bulk_records(2000)
    produce(topic, after)
    all_records = first + during + after
    wait_rows(conn, len(all_records), timeout=120)
    wait_until(lambda: lp.metric("aegis_logpipe_db_up") == 1, "db_up 1")
    assert lp.metric("aegis_logpipe_paused") == 0
    exactly_once(conn, [r["event_id"] for r in all_records])
    assert "event=ingest_paused" in lp.log.read_text()
    assert "event=ingest_resumed" in lp.log.read_text()
    lp.stop()
    conn.close()


def test_two_processes_share_the_partitions_without_duplicates(tmp_path, db, topic, pipes):
    """The second process joins while the first has batches in flight: the rebalance revokes
    every partition from the first, which must finish or drop its batches first."""
    dsn, conn = db
    group = topic + "-g"
    records = bulk_records(60000)
    produce(topic, records)    # creates the topic with the broker's 3 partitions
    one = Logpipe(tmp_path, dsn, topic, group, batch_records=1000, name="one").start()
    pipes.append(one)
    wait_rows(conn, 5000)
    assert sql(conn, "SELECT count(*) FROM query_log")[0][0] < len(records), \
        "the first process finished before the second joined"
    two = Logpipe(tmp_path, dsn, topic, group, batch_records=1000, name="two").start()
    pipes.append(two)
    wait_until(lambda: one.metric("aegis_logpipe_assigned_partitions") > 0
               and two.metric("aegis_logpipe_assigned_partitions") > 0, "both assigned")
    more = bulk_records(20000)
    produce(topic, more)
    wait_rows(conn, len(records) + len(more), timeout=120)
    assert two.metric("aegis_logpipe_rows_inserted_total") > 0
    assert one.metric("aegis_logpipe_rows_inserted_total") \
        + two.metric("aegis_logpipe_rows_inserted_total") == len(records) + len(more)
    exactly_once(conn, [r["event_id"] for r in records + more])
    one.stop()
    two.stop()


def test_kafka_outage_waits_and_resumes_without_loss(tmp_path, db, topic, pipes):
    dsn, conn = db
    first = bulk_records(2000)
    produce(topic, first)
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g", batch_records=500).start()
    pipes.append(lp)
    wait_rows(conn, len(first))
    devstack("stop", "kafka")
    try:
        wait_until(lambda: lp.metric("aegis_logpipe_kafka_up", 1) == 0, "kafka_up 0")
        assert lp.proc.poll() is None, "logpipe must wait for Kafka, not exit"
    finally:
        devstack("start", "kafka")
    after = bulk_records(3000)
    produce(topic, after)
    wait_rows(conn, len(first) + len(after), timeout=120)
    wait_until(lambda: lp.metric("aegis_logpipe_kafka_up") == 1, "kafka_up 1")
    exactly_once(conn, [r["event_id"] for r in first + after])
    lp.stop()


def test_a_record_for_a_day_without_partition_gets_one(tmp_path, db, topic, pipes):
    dsn, conn = db
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    day = old.strftime("%Y%m%d")
    assert not sql(conn, "SELECT 1 FROM pg_class WHERE relname = %s", f"query_log_{day}")
    records = [record(old), record()]
    produce(topic, records)
    lp = Logpipe(tmp_path, dsn, topic, topic + "-g").start()
    pipes.append(lp)
    wait_rows(conn, 2)
    assert sql(conn, "SELECT 1 FROM pg_class WHERE relname = %s", f"query_log_{day}")
    exactly_once(conn, [r["event_id"] for r in records])
    # The partition goes (as retention would drop it) and a late record of that day comes.
    sql(conn, "SELECT query_log_drop_partitions_before(%s::date + 1)", old.date())
    late = record(old + datetime.timedelta(seconds=1))
    produce(topic, [late])
    wait_rows(conn, 2)   # the first old row went with its partition
    wait_until(lambda: sql(conn, "SELECT count(*) FROM query_log WHERE event_id = %s",
                           late["event_id"])[0][0] == 1, "the late record")
    assert lp.metric("aegis_logpipe_dead_lettered_total{reason=\"database\"}") == 0
    lp.stop()


def test_logpipe_runs_with_the_documented_least_privilege_role(tmp_path, db, topic, pipes):
    """The GRANTs of docs/logpipe.md "Database role" are enough: store, roll up, skip a
    re-delivery, create a partition, apply retention."""
    dsn, conn = db
    role = "lp_" + secrets.token_hex(4)
    name = dict(p.split("=", 1) for p in dsn.split())["dbname"]
    admin(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    try:
        grants = (ROOT / "docs" / "logpipe.md").read_text()
        block = grants.split("## Database role", 1)[1].split("```sql", 1)[1].split("```", 1)[0]
        statements = [s.strip() for s in re.sub(r"--[^\n]*", "", block).split(";") if s.strip()]
        assert statements[0].startswith("CREATE ROLE aegis_logpipe")
        for stmt in statements[1:]:
            admin_db(name, stmt.replace("aegis_logpipe", role).replace(" aegis ", f" {name} "))
        role_dsn = " ".join(p for p in dsn.split() if not p.startswith(("user=", "password="))) \
            + f" user={role} password=pw"
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=20)
        records = bulk_records(300) + [record(old, action="block", rule=category_rule())]
        produce(topic, records)
        lp = Logpipe(tmp_path, role_dsn, topic, topic + "-g", name="role")
        lp.conf.write_text(lp.conf.read_text()
                           + "maintenance: { retention_hour = 0; };\n")
        lp.start()
        pipes.append(lp)
        wait_rows(conn, len(records))
        wait_until(lambda: lp.metric("aegis_logpipe_retention_runs_total") == 1, "retention")
        produce(topic, records[:50])
        wait_until(lambda: lp.metric("aegis_logpipe_duplicates_skipped_total") == 50,
                   "the re-delivery skipped")
        exactly_once(conn, [r["event_id"] for r in records])
        assert lp.metric("aegis_logpipe_db_failures_total") == 0
        lp.stop()
    finally:
        admin_db(name, f"DROP OWNED BY {role}")
        admin(f"DROP ROLE {role}")
