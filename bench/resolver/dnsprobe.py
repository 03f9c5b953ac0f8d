#!/usr/bin/python3
"""dnsprobe.py -- small DNS probes for bench/resolver/run.sh, standard library only.

  dnsprobe.py ask  --port P [--source S] NAME
      one A query (EDNS 1232); prints "RCODE ancount" or "TIMEOUT"; exit 0 if answered.
  dnsprobe.py wait --port P [--source S] --rcode NXDOMAIN --t0 EPOCH [--timeout 120] NAME
      polls every 10 ms until NAME gets RCODE; prints the seconds since --t0 (the epoch time
      the caller noted just before starting the server). Used for load times. With --pid,
      gives up as soon as that process has ended.
  dnsprobe.py swap --port P --source S --pid PID --new FILE --live FILE --rcode R NAME
      notes t0, renames FILE over the live snapshot, sends SIGHUP to PID (not with
      --no-signal), then polls every 10 ms until NAME gets RCODE; prints "SECONDS POLLS":
      the new policy's first answer.
"""
import argparse
import os
import random
import signal
import socket
import struct
import sys
import time

RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def make_query(name, qid):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 1)  # RD, one question, one OPT
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\x00" + struct.pack("!HH", 1, 1)  # A IN
    q += b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)  # OPT, EDNS 0, no options
    return q


def ask(port, source, name, timeout):
    """(rcode name, ancount) or None on timeout / refused port."""
    qid = random.randrange(65536)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        s.settimeout(timeout)
        try:
            s.connect(("127.0.0.1", port))
            s.send(make_query(name, qid))
            deadline = time.monotonic() + timeout
            while True:
                data = s.recv(4096)
                if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                    flags, _, an = struct.unpack("!HHH", data[2:8])
                    return RCODES.get(flags & 0xF, str(flags & 0xF)), an
                s.settimeout(max(0.001, deadline - time.monotonic()))
        except (socket.timeout, ConnectionRefusedError, OSError):
            return None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    # A zombie is dead too.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def poll(port, source, name, rcode, timeout, interval=0.010, pid=None):
    """Polls every interval until NAME answers RCODE; returns (monotonic time, polls).
    Gives up early if pid is given and that process has ended."""
    deadline = time.monotonic() + timeout
    polls = 0
    nxt = time.monotonic()
    while time.monotonic() < deadline:
        if pid and polls % 10 == 0 and not alive(pid):
            break
        polls += 1
        r = ask(port, source, name, 0.05)
        if r and r[0] == rcode:
            return time.monotonic(), polls
        nxt += interval
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()
    return None, polls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["ask", "wait", "swap"])
    ap.add_argument("name")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--rcode", default="NXDOMAIN")
    ap.add_argument("--t0", type=float)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--new")
    ap.add_argument("--live")
    ap.add_argument("--no-signal", action="store_true",
                    help="swap: only rename the file (the resolver's file watcher finds it)")
    a = ap.parse_args()

    if a.cmd == "ask":
        r = ask(a.port, a.source, a.name, 2)
        print("TIMEOUT" if r is None else "%s %d" % r)
        return 0 if r else 1
    if a.cmd == "wait":
        # time.time() for the start (the caller's clock), monotonic for the wait itself.
        offset = time.time() - time.monotonic()
        t, _ = poll(a.port, a.source, a.name, a.rcode, a.timeout, pid=a.pid)
        if t is None:
            print("TIMEOUT")
            return 1
        print("%.3f" % (t + offset - a.t0))
        return 0
    # swap
    t0 = time.monotonic()
    os.replace(a.new, a.live)
    if not a.no_signal:
        os.kill(a.pid, signal.SIGHUP)
    t, polls = poll(a.port, a.source, a.name, a.rcode, a.timeout)
    if t is None:
        print("TIMEOUT %d" % polls)
        return 1
    print("%.3f %d" % (t - t0, polls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
