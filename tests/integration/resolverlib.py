"""Running aegis-resolver for black-box tests: policy files, config, process, DNS client."""
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from conftest import BIN, env

SCHOOL = "11111111-1111-4111-8111-111111111111"
HOSPITAL = "22222222-2222-4222-8222-222222222222"
OFFICE = "33333333-3333-4333-8333-333333333333"
LAB = "44444444-4444-4444-8444-444444444444"

CATEGORIES = [
    {"name": "malware", "kind": "threat"}, {"name": "phishing", "kind": "threat"},
    {"name": "c2", "kind": "threat"}, {"name": "botnet", "kind": "threat"},
    {"name": "newly_registered", "kind": "threat"}, {"name": "adult", "kind": "content"},
    {"name": "gambling", "kind": "content"}, {"name": "ads", "kind": "content"},
    {"name": "social", "kind": "content"},
]
THREATS = ["malware", "phishing", "c2", "botnet", "newly_registered"]


def base_policy():
    """Three institutions in 127.x, plus feeds, as a JSON policy description."""
    return {
        "categories": CATEGORIES,
        "tenants": [
            {"id": SCHOOL, "name": "School", "networks": ["127.1.0.0/16"],
             "block": THREATS + ["adult", "gambling"], "safe_search": True,
             "ede_text": "contact it@school.example", "deny": ["denied.test"],
             "allow": ["www.gambling.test"]},
            {"id": HOSPITAL, "name": "Hospital", "networks": ["127.2.0.0/16", "::1/128"],
             "block": THREATS, "block_action": "refused"},
            {"id": OFFICE, "name": "Office", "networks": ["127.3.0.0/16"],
             "block": THREATS, "monitor": ["social"], "block_action": "sinkhole",
             "sinkhole_v4": "192.0.2.99", "sinkhole_v6": "2001:db8::99"},
            {"id": LAB, "name": "Lab in the school", "networks": ["127.1.2.0/28"],
             "block": ["malware"], "block_action": "nodata"},
        ],
        "national": {"block": ["national-block.test"], "allow": ["www.hospital.test"]},
        "feeds": [
            {"category": "malware", "names": ["malware.test", "www.hospital.test"]},
            {"category": "phishing", "names": ["phish.test"]},
            {"category": "adult", "names": ["adult.test", "national-block.test"]},
            {"category": "gambling", "names": ["gambling.test"]},
            {"category": "social", "names": ["social.test"]},
        ],
    }


def compile_policy(policy, path, serial=1, split=False):
    """split: an overlay at path and its feed base beside it, as a node keeps tenantd's."""
    src = Path(str(path) + ".json")
    src.write_text(json.dumps(policy))
    r = subprocess.run([str(BIN / "aegis-tenantd"), "compile-json"] + ["--split"] * split +
                       [str(src), str(path), str(serial)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u.bind(("127.0.0.1", port))
        return port


class Resolver:
    """One aegis-resolver process on loopback with its own config, policy and log files."""

    def __init__(self, tmp, upstream=None, extra="", workers=2):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.metrics_port = free_port()
        self.snapshot = self.tmp / "policy.snap"
        self.querylog = self.tmp / "queries.jsonl"
        self.conf = self.tmp / "resolver.conf"
        self.upstream = upstream or env("AEGIS_DNS_UPSTREAM")
        self.conf.write_text(f"""
node: {{ name = "test-node"; }};
server: {{ listen = ["127.0.0.1:{self.port}", "[::1]:{self.port}"]; workers = {workers};
          tcp_idle_timeout_ms = 2000; }};
upstream: {{ servers = ["{self.upstream}"]; timeout_ms = 300; attempts = 2; }};
policy: {{ snapshot = "{self.snapshot}"; forward_special_zones = ["test."]; }};
querylog: {{ file = "{self.querylog}"; }};
metrics: {{ listen = "127.0.0.1:{self.metrics_port}"; }};
ratelimit: {{ exempt = ["127.0.0.0/8=0", "::1/128=0"]; }};
{extra}
""")
        self.proc = None
        self.stderr = self.tmp / "resolver.log"

    def start(self):
        self.proc = subprocess.Popen([str(BIN / "aegis-resolver"), "-c", str(self.conf)],
                                     stderr=open(self.stderr, "w"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if "event=serving" in self.log():
                return self
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError("resolver did not start: " + self.log())

    def log(self):
        return self.stderr.read_text() if self.stderr.exists() else ""

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def metrics(self):
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        return urllib.request.urlopen(url, timeout=5).read().decode()

    def ask(self, name, rdtype="A", source="127.1.0.5", tcp=False, edns=True, payload=1232,
            want_dnssec=False, timeout=3):
        q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False,
                                   payload=payload, want_dnssec=want_dnssec)
        where = "::1" if ":" in source else "127.0.0.1"
        if tcp:
            return dns.query.tcp(q, where, port=self.port, source=source, timeout=timeout)
        return dns.query.udp(q, where, port=self.port, source=source, timeout=timeout,
                             ignore_trailing=False)


def ede_of(answer):
    """(code, text) of the first Extended DNS Error option, or None."""
    for opt in answer.options:
        if opt.otype == dns.edns.EDE:
            return opt.code, opt.text
    return None


def addresses(answer):
    return sorted(rr.to_text() for rrset in answer.answer for rr in rrset
                  if rrset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA))
