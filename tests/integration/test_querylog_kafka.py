"""The resolver's Kafka query-log sink against the dev stack's real broker and nsd.

A resolver answers queries and produces one record per query to a topic of its own; kcat reads
the topic back. The broker is stopped and started with scripts/devstack.sh (stop|start kafka),
so these tests need a stack of their own (scripts/test.sh starts one)."""
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode

from conftest import ROOT, env
from resolverlib import HOSPITAL, OFFICE, SCHOOL, Resolver, base_policy, compile_policy, free_port

TENANT_OF = {"127.1.0.5": SCHOOL, "127.2.0.7": HOSPITAL, "127.3.0.9": OFFICE, "127.9.0.1": None}


class KafkaResolver(Resolver):
    """A resolver whose query log goes to Kafka (topic, spool folder and bound given)."""

    def __init__(self, tmp, topic, brokers=None, spool_max_mb=64, spool=None,
                 properties=("linger.ms=5",)):
        super().__init__(tmp)
        self.topic = topic
        self.spool = Path(spool or self.tmp / "spool")
        brokers = brokers or env("AEGIS_KAFKA_BROKERS")
        text = self.conf.read_text()
        text, n = re.subn(r'querylog: \{ file = "[^"]*"; \};', f"""querylog: {{ kafka: {{
    brokers = "{brokers}"; topic = "{topic}"; spool_dir = "{self.spool}";
    spool_max_mb = {spool_max_mb}; properties = {json.dumps(list(properties))}; }}; }};""", text)
        assert n == 1
        self.conf.write_text(text)

    def metric(self, name):
        m = re.search(r"^" + re.escape(name) + r" (\S+)$", self.metrics(), re.M)
        assert m, name
        return float(m.group(1))


def new_topic(tag):
    return f"aegis.test.qlog.{tag}.{uuid.uuid4().hex[:12]}"


def ask(resolver, name, rdtype="A", source="127.1.0.5", timeout=3):
    """One UDP query from source; returns (answer, source port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        port = s.getsockname()[1]
        q = dns.message.make_query(name, rdtype)
        a = dns.query.udp(q, "127.0.0.1", port=resolver.port, sock=s, timeout=timeout)
        return a, port


def consume(topic, want, deadline_s=60):
    """(key, record) pairs of the topic, read until at least want records came or the
    deadline passed."""
    brokers = env("AEGIS_KAFKA_BROKERS")
    deadline = time.monotonic() + deadline_s
    out = []
    while True:
        r = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q",
                            "-f", "%k\t%s\n"], capture_output=True, text=True, timeout=60)
        out = []
        for line in r.stdout.splitlines():
            if line:
                key, _, value = line.partition("\t")
                out.append((key, json.loads(value)))
        if len(out) >= want or time.monotonic() > deadline:
            return out
        time.sleep(1)


def devstack(*args):
    r = subprocess.run([str(ROOT / "scripts" / "devstack.sh"), *args], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, "\n".join(l for l in r.stderr.splitlines()
                                        if l.startswith("[devstack.sh]") or "ERROR" in l)


def test_round_trip_field_by_field(tmp_path):
    compile_policy(base_policy(), tmp_path / "policy.snap")
    topic = new_topic("roundtrip")
    r = KafkaResolver(tmp_path, topic).start()
    asked = {}
    try:
        cases = [("www.school.test", "A", "127.1.0.5", "allow"),
                 ("www.hospital.test", "AAAA", "127.2.0.7", "allow"),
                 ("malware.test", "A", "127.1.0.5", "block"),
                 ("phish.test", "A", "127.3.0.9", "block"),
                 ("social.test", "A", "127.3.0.9", "monitor"),
                 ("www.school.test", "A", "127.9.0.1", "refused")]
        for i in range(10):
            for name, rdtype, source, action in cases:
                a, port = ask(r, name, rdtype, source)
                asked[(source, port)] = (name, rdtype, source, action, a.rcode())
        got = consume(topic, len(asked))
    finally:
        r.stop()
    assert len(got) == len(asked)
    assert len({rec["event_id"] for _, rec in got}) == len(got)
    for key, rec in got:
        name, rdtype, source, action, rcode = asked.pop((rec["client_ip"], rec["client_port"]))
        assert rec["v"] == 1
        assert rec["qname"] == name
        assert rec["qtype_name"] == rdtype
        assert rec["transport"] == "udp"
        assert rec["action"] == action
        assert rec["rcode"] == rcode
        assert rec["node"] == "test-node"
        assert rec["tenant_id"] == TENANT_OF[source]
        # the message key is the tenant id as text; no key without a tenant
        assert key == (TENANT_OF[source] or "")
        if action in ("block", "monitor"):
            assert rec["rule"]["kind"] == "category"
    assert not asked


def wait_for(cond, seconds, what):
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_broker_outage_spools_and_replays_without_loss(tmp_path):
    compile_policy(base_policy(), tmp_path / "policy.snap")
    topic = new_topic("outage")
    r = KafkaResolver(tmp_path, topic).start()
    sent, unanswered, stop = [], [], threading.Event()

    def traffic():
        i = 0
        while not stop.is_set():
            name = f"q{i}.outage.test"
            try:
                ask(r, name, timeout=2)
            except dns.exception.Timeout:
                unanswered.append(name)
            sent.append(name)
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=traffic)
    t.start()
    stopped = False
    try:
        time.sleep(3)
        devstack("stop", "kafka")
        stopped = True
        time.sleep(30)
        spooled_during_outage = r.metric("aegis_querylog_spooled_total")
        devstack("start", "kafka")
        stopped = False
        time.sleep(5)
        stop.set()
        t.join()
        wait_for(lambda: r.metric("aegis_querylog_spool_bytes") <= 16 and
                 r.metric("aegis_querylog_kafka_queued") == 0, 120, "spool never drained")
        got = consume(topic, len(sent), 60)
        metrics = r.metrics()
    finally:
        stop.set()
        t.join()
        if stopped:
            devstack("start", "kafka")
        r.stop()
    assert not unanswered, f"{len(unanswered)} of {len(sent)} queries unanswered"
    names = [rec["qname"] for _, rec in got]
    missing = set(sent) - set(names)
    duplicates = len(names) - len(set(names))
    print(f"outage: sent={len(sent)} received={len(names)} duplicates={duplicates} "
          f"spooled_during_outage={spooled_during_outage:.0f}")
    assert not missing, f"{len(missing)} records lost, e.g. {sorted(missing)[:5]}"
    assert spooled_during_outage > 0
    assert 'aegis_querylog_dropped_total{reason="spool_full"} 0' in metrics
    assert 'aegis_querylog_dropped_total{reason="sink_error"} 0' in metrics
    assert 'aegis_querylog_dropped_total{reason="queue_full"} 0' in metrics
    assert re.search(r"^aegis_querylog_replayed_total [1-9]", metrics, re.M)


def test_full_producer_queue_spools_then_replays_everything_once(tmp_path):
    """A slow broker as the sink sees it: librdkafka's queue is full."""
    compile_policy(base_policy(), tmp_path / "policy.snap")
    topic = new_topic("queuefull")
    r = KafkaResolver(tmp_path, topic, properties=("queue.buffering.max.messages=500",
                                                   "linger.ms=1000")).start()
    names = [f"s{i}.slow.test" for i in range(3000)]
    try:
        for name in names:
            ask(r, name)
        got = consume(topic, len(names), 90)
        spooled = r.metric("aegis_querylog_spooled_total")
    finally:
        r.stop()
    received = [rec["qname"] for _, rec in got]
    assert spooled > 0, "the queue never filled: the test proves nothing"
    assert set(received) == set(names)
    assert len(received) == len(names), "duplicates with a healthy broker"
    assert "reason=\"Local: Queue full\"" in r.log()


def dead_broker():
    """An address where no broker listens."""
    return f"127.0.0.1:{free_port()}"


def test_spool_full_drops_are_counted_and_logged(tmp_path):
    compile_policy(base_policy(), tmp_path / "policy.snap")
    r = KafkaResolver(tmp_path, new_topic("full"), brokers=dead_broker(), spool_max_mb=1).start()
    answered = 0
    try:
        # ~500-byte records: 1 MiB holds about 2,000 of them
        for i in range(4000):
            a, _ = ask(r, f"n{i}.full.test")
            answered += a.rcode() == dns.rcode.NXDOMAIN
        # each record is spooled, dropped or (produced before the broker was known down)
        # still held by librdkafka; the replay probe is held and spooled at once
        wait_for(lambda: r.metric("aegis_querylog_spooled_total") +
                 r.metric('aegis_querylog_dropped_total{reason="spool_full"}') +
                 r.metric("aegis_querylog_kafka_queued") >= 4000,
                 30, "records neither spooled nor counted")
        full = r.metric('aegis_querylog_dropped_total{reason="spool_full"}')
        spool_bytes = r.metric("aegis_querylog_spool_bytes")
    finally:
        r.stop()
    assert answered == 4000
    assert full > 0
    assert spool_bytes <= 1 << 20
    assert "event=querylog_spool_full" in r.log()
    # what the log says adds up to the counter
    last = re.findall(r"event=querylog_spool_full .*total_dropped=(\d+)", r.log())[-1]
    assert int(last) >= full


def test_restart_replays_a_spool_left_behind(tmp_path):
    compile_policy(base_policy(), tmp_path / "policy.snap")
    topic = new_topic("restart")
    spool = tmp_path / "spool"
    r = KafkaResolver(tmp_path, topic, brokers=dead_broker(), spool=spool).start()
    names = [f"r{i}.restart.test" for i in range(200)]
    try:
        for name in names:
            ask(r, name)
    finally:
        r.stop()
    assert "event=querylog_kafka_closed" in r.log()
    assert any(p.suffix == ".seg" and p.stat().st_size > 16 for p in spool.iterdir())

    (tmp_path / "again").mkdir()
    r2 = KafkaResolver(tmp_path / "again", topic, spool=spool)
    compile_policy(base_policy(), r2.snapshot)
    r2.start()
    try:
        got = consume(topic, len(names), 60)
        wait_for(lambda: r2.metric("aegis_querylog_replayed_total") >= len(names), 30,
                 "spool not replayed")
    finally:
        r2.stop()
    received = [rec["qname"] for _, rec in got]
    assert set(received) == set(names)
    assert len(received) == len(names), "duplicates after a clean stop"
    assert "spool left by the last run" in r2.log()
