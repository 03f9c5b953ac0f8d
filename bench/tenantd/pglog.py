#!/usr/bin/python3
"""pglog.py -- where PostgreSQL's time went, from its log (standard library only).

  pglog.py LOG --db NAME --since EPOCH --until EPOCH [--per N] [--top 8]

bench/tenantd/run.sh sets log_min_duration_statement = 0 on its benchmark databases, so the dev
stack's PostgreSQL logs every statement with its duration ("duration: 12.3 ms  statement: ..."
for simple queries, "... execute <unnamed>: ..." for the extended protocol; parse and bind
steps add to the statement's time, not to its count). This groups the lines of one database within a
time window by statement (its first 110 characters, parameters and numbers blanked) and prints
the top groups as JSON: [{"statement", "count", "total_ms", "per_ms"}], per_ms = total / N.
"""
import argparse
import calendar
import json
import re
import time

LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC \[\d+\] (\S*)@(\S*) LOG:\s+"
                  r"duration: ([\d.]+) ms\s+(statement|execute [^:]*|parse [^:]*|bind [^:]*):\s*(.*)$")


def epoch(ts):
    base, frac = ts.split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + float("0." + frac)


def norm(stmt):
    s = re.sub(r"\$\d+", "$n", stmt)
    s = re.sub(r"'[^']*'", "'…'", s)
    s = re.sub(r"\b\d+\b", "N", s)
    s = " ".join(s.split())
    return s[:110] + ("…" if len(s) > 110 else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--db", required=True)
    ap.add_argument("--since", type=float, required=True)
    ap.add_argument("--until", type=float, required=True)
    ap.add_argument("--per", type=float, default=1)
    ap.add_argument("--top", type=int, default=8)
    a = ap.parse_args()
    groups = {}
    with open(a.log, errors="replace") as f:
        for line in f:
            m = LINE.match(line.rstrip("\n"))
            if not m or m.group(3) != a.db:
                continue
            t = epoch(m.group(1))
            if t < a.since or t > a.until:
                continue
            key = norm(m.group(6))
            g = groups.setdefault(key, [0, 0.0])
            g[0] += m.group(5).startswith(("statement", "execute"))
            g[1] += float(m.group(4))
    top = sorted(groups.items(), key=lambda kv: -kv[1][1])[:a.top]
    print(json.dumps([{"statement": k, "count": c, "total_ms": round(ms, 1),
                       "per_ms": round(ms / a.per, 1)} for k, (c, ms) in top]))


if __name__ == "__main__":
    main()
