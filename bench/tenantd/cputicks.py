#!/usr/bin/python3
"""cputicks.py -- CPU time of a set of process trees, in clock ticks (standard library only).

  cputicks.py PID...

Prints the sum of utime + stime + cutime + cstime over the given processes and all their live
descendants. cutime/cstime hold the CPU time of children already reaped, so two samples taken
around a phase give what these trees used in between, including processes that started and
ended within it. run.sh passes itself and the dev stack's daemons (PostgreSQL's postmaster,
Kafka, nsd), so "machine busy minus this" is what the other workloads on the machine used.
"""
import os
import sys


def stat(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    rest = s.rsplit(")", 1)[1].split()
    # fields after the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17)
    return int(rest[1]), sum(int(x) for x in rest[11:15])


def main():
    children = {}
    ticks = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = stat(d)
        if st is None:
            continue
        ppid, t = st
        ticks[int(d)] = t
        children.setdefault(ppid, []).append(int(d))
    seen = set()
    todo = [int(p) for p in sys.argv[1:] if p.isdigit()]
    total = 0
    while todo:
        p = todo.pop()
        if p in seen or p not in ticks:
            continue
        seen.add(p)
        total += ticks[p]
        todo.extend(children.get(p, []))
    print(total)


if __name__ == "__main__":
    main()
