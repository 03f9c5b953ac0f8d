"""aegis-resolver when its neighbours misbehave: the upstream stops (stale answers, SERVFAIL
with EDE), one client floods (rate limiting), a forwarder sends PROXY v2 headers, and the
policy is swapped while queries flow."""
import socket
import struct
import threading
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from conftest import env
from resolverlib import Resolver, addresses, base_policy, compile_policy, ede_of


class Relay:
    """A UDP relay to the real authoritative server that the test can switch off."""

    def __init__(self, target):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.up = True
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            if not self.up:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
                out.settimeout(1)
                out.sendto(data, self.target)
                try:
                    self.sock.sendto(out.recv(65535), peer)
                except socket.timeout:
                    pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


@pytest.fixture
def relay():
    r = Relay(env("AEGIS_DNS_UPSTREAM"))
    yield r
    r.close()


def start(tmp_path, **kw):
    r = Resolver(tmp_path, **kw)
    compile_policy(base_policy(), r.snapshot)
    return r.start()


def test_upstream_down_serves_stale_then_servfail_with_ede(tmp_path, relay):
    node = start(tmp_path, upstream=relay.address)
    try:
        fresh = node.ask("short-ttl.test")
        assert addresses(fresh) == ["192.0.2.30"]
        relay.up = False
        time.sleep(2.5)  # the record's TTL is 2 s
        stale = node.ask("short-ttl.test")
        assert addresses(stale) == ["192.0.2.30"]
        assert ede_of(stale)[0] == 3, "EDE 3 Stale Answer"
        assert stale.answer[0].ttl == 30, "RFC 8767 suggests 30 s for stale answers"
        never = node.ask("www.hospital.test")
        assert never.rcode() == dns.rcode.SERVFAIL
        assert ede_of(never)[0] == 22, "EDE 22 No Reachable Authority"
        blocked = node.ask("x.malware.test")
        assert blocked.rcode() == dns.rcode.NXDOMAIN, "policy still answers without upstream"
        relay.up = True
        time.sleep(0.1)
        deadline = time.monotonic() + 10
        while node.ask("www.hospital.test").rcode() != dns.rcode.NOERROR:
            assert time.monotonic() < deadline, "upstream not used again after recovery"
            time.sleep(0.5)
        assert 'aegis_stale_answers_total 1' in node.metrics()
    finally:
        assert node.stop() == 0


def test_flooding_client_is_limited_without_starving_its_neighbour(tmp_path):
    node = Resolver(tmp_path, extra='ratelimit: { qps = 20; slip = 2; };')
    node.conf.write_text(node.conf.read_text().replace(
        'ratelimit: { exempt = ["127.0.0.0/8=0", "::1/128=0"]; };', ""))
    compile_policy(base_policy(), node.snapshot)
    node.start()
    try:
        node.ask("www.school.test", source="127.1.0.9")  # warm the cache
        answered = truncated = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.1.0.9", 0))
            s.settimeout(0.05)
            q = dns.message.make_query("www.school.test", "A")
            for _ in range(200):
                s.sendto(q.to_wire(), ("127.0.0.1", node.port))
            while True:
                try:
                    m = dns.message.from_wire(s.recv(65535))
                except socket.timeout:
                    break
                answered += 1
                truncated += bool(m.flags & dns.flags.TC)
        assert 15 <= answered - truncated <= 60, (answered, truncated)  # qps 20, burst 20
        assert truncated > 0, "some limited queries slip through as TC=1"
        assert answered < 200
        other = node.ask("www.school.test", source="127.1.0.10")
        assert addresses(other) == ["192.0.2.10"], "another client is not limited"
        tcp = node.ask("www.school.test", source="127.1.0.9", tcp=True)
        assert addresses(tcp) == ["192.0.2.10"], "TCP is not rate limited"
    finally:
        assert node.stop() == 0


def proxy_v2_udp(src, sport, dst, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x12]) + struct.pack("!H", len(addrs)) + addrs


def test_proxy_v2_from_an_allowed_forwarder_names_the_real_client(tmp_path):
    node = start(tmp_path, extra="")
    node.stop()
    node.conf.write_text(node.conf.read_text().replace(
        "tcp_idle_timeout_ms = 2000;",
        'tcp_idle_timeout_ms = 2000; proxy_protocol_from = ["127.5.0.1/32"];'))
    node.start()
    try:
        q = dns.message.make_query("www.adult.test", "A").to_wire()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.5.0.1", 0))
            s.settimeout(2)
            s.sendto(proxy_v2_udp("127.1.0.5", 4444, "127.0.0.1", node.port) + q,
                     ("127.0.0.1", node.port))
            a = dns.message.from_wire(s.recv(65535))
            assert a.rcode() == dns.rcode.NXDOMAIN, "judged as the school behind the proxy"
            s.sendto(proxy_v2_udp("127.2.0.9", 4444, "127.0.0.1", node.port) + q,
                     ("127.0.0.1", node.port))
            assert addresses(dns.message.from_wire(s.recv(65535))), "as the hospital"
            s.sendto(q, ("127.0.0.1", node.port))
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(65535)  # an allowed forwarder must send the header
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.6.0.1", 0))
            s.settimeout(0.5)
            s.sendto(proxy_v2_udp("127.1.0.5", 4444, "127.0.0.1", node.port) + q,
                     ("127.0.0.1", node.port))
            try:
                reply = dns.message.from_wire(s.recv(65535))
                assert reply.rcode() != dns.rcode.NOERROR, "a header from others is not trusted"
            except socket.timeout:
                pass
        assert "aegis_proxy_refused_total 1" in node.metrics()
    finally:
        assert node.stop() == 0


def test_policy_swaps_under_load_lose_no_query(tmp_path):
    node = start(tmp_path)
    failures = []
    answered = [0]
    stop = threading.Event()

    def load(source):
        while not stop.is_set():
            try:
                a = node.ask("www.school.test", source=source, timeout=2)
                if a.rcode() != dns.rcode.NOERROR:
                    failures.append(a.rcode())
                answered[0] += 1
            except Exception as e:  # a timeout is a lost query
                failures.append(repr(e))

    threads = [threading.Thread(target=load, args=(f"127.1.0.{i}",)) for i in (21, 22, 23)]
    for t in threads:
        t.start()
    try:
        for serial in range(2, 8):
            staged = tmp_path / f"next-{serial}.snap"
            compile_policy(base_policy(), staged, serial=serial)
            staged.replace(node.snapshot)
            node.reload()
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert answered[0] > 50
    assert node.log().count("event=snapshot_loaded") >= 7
    assert node.stop() == 0
