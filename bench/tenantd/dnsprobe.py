#!/usr/bin/python3
"""dnsprobe.py -- raw UDP DNS probes for bench/tenantd/run.sh (standard library only), and the
functions changes.py shares.

  dnsprobe.py ask  --port P [--source S] NAME
      one A query; prints "RCODE ancount" or "TIMEOUT"; exit 0 if answered.
  dnsprobe.py wait --port P [--source S] --rcode R --t0 EPOCH [--timeout T] [--pid PID] NAME
      polls every 5 ms until NAME gets RCODE; prints the seconds since --t0 (an epoch time the
      caller noted just before what it is timing); gives up when PID has ended.
  dnsprobe.py serial --metrics-port P [--differs-from N] [--t0 EPOCH] [--timeout T]
      prints aegis_policy_snapshot_serial from the resolver's /metrics; with --differs-from,
      polls every 5 ms until it differs and prints "SERIAL SECONDS-SINCE-T0".
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time
import urllib.request

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def make_query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)  # RD, one question, one OPT
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", 1, 1)  # A IN
    q += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)  # OPT, EDNS 0, no options
    return q


def parse_reply(data):
    """(qid, rcode name, ancount) of a reply, or None."""
    if len(data) < 12:
        return None
    qid, flags, _, an = struct.unpack("!HHHH", data[:8])
    return qid, RCODES.get(flags & 0xF, str(flags & 0xF)), an


class Prober:
    """One UDP socket bound to a tenant's source address, connected to the resolver."""

    def __init__(self, port, source):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((source, 0))
        self.s.connect(("127.0.0.1", port))
        self.s.setblocking(False)

    def close(self):
        self.s.close()

    def drain(self):
        while True:
            try:
                self.s.recv(4096)
            except (BlockingIOError, ConnectionRefusedError):
                return

    def ask(self, name, timeout=2.0):
        """(rcode, ancount) or None."""
        self.drain()
        qid = random.randrange(65536)
        try:
            self.s.send(make_query(name, qid))
        except ConnectionRefusedError:
            return None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.s], [], [], left)
            if not r:
                continue
            try:
                rep = parse_reply(self.s.recv(4096))
            except ConnectionRefusedError:
                return None
            if rep and rep[0] == qid:
                return rep[1], rep[2]

    def poll_until(self, name, want, interval, timeout, stop=None):
        """Sends a query every `interval` s without waiting for answers in between, until an
        answer with rcode `want` arrives. Returns (arrival monotonic, send monotonic of that
        query, queries sent, other rcodes seen) or (None, None, sent, seen) on timeout."""
        self.drain()
        sent = {}
        seen = {}
        n = 0
        start = time.monotonic()
        next_send = start
        while True:
            now = time.monotonic()
            if now - start > timeout or (stop and n % 50 == 0 and stop()):
                return None, None, n, seen
            if now >= next_send:
                qid = (n * 7919 + 1) & 0xFFFF
                try:
                    self.s.send(make_query(name, qid))
                except ConnectionRefusedError:
                    pass
                sent[qid] = now
                n += 1
                next_send += interval
                if next_send < now:
                    next_send = now + interval
            wait = max(0.0, next_send - time.monotonic())
            r, _, _ = select.select([self.s], [], [], wait)
            if not r:
                continue
            while True:
                try:
                    data = self.s.recv(4096)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                at = time.monotonic()
                rep = parse_reply(data)
                if not rep or rep[0] not in sent:
                    continue
                if rep[1] == want:
                    return at, sent[rep[0]], n, seen
                seen[rep[1]] = seen.get(rep[1], 0) + 1


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def metric(port, name):
    try:
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=2).read()
    except OSError:
        return None
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["ask", "wait", "serial"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("--port", type=int)
    ap.add_argument("--metrics-port", type=int)
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--rcode", default="NXDOMAIN")
    ap.add_argument("--t0", type=float)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--differs-from", type=float)
    a = ap.parse_intermixed_args()
    offset = time.time() - time.monotonic()

    if a.cmd == "ask":
        p = Prober(a.port, a.source)
        r = p.ask(a.name)
        print("TIMEOUT" if r is None else "%s %d" % r)
        return 0 if r else 1
    if a.cmd == "wait":
        p = Prober(a.port, a.source)
        at, _, _, _ = p.poll_until(a.name, a.rcode, 0.005, a.timeout,
                                   stop=(lambda: not alive(a.pid)) if a.pid else None)
        if at is None:
            print("TIMEOUT")
            return 1
        print("%.3f" % (at + offset - a.t0))
        return 0
    # serial
    deadline = time.monotonic() + a.timeout
    while True:
        v = metric(a.metrics_port, "aegis_policy_snapshot_serial")
        if a.differs_from is None:
            print("%d" % v if v is not None else "NONE")
            return 0 if v is not None else 1
        if v is not None and v != a.differs_from:
            print("%d %.3f" % (v, time.monotonic() + offset - a.t0))
            return 0
        if time.monotonic() > deadline:
            print("TIMEOUT")
            return 1
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
