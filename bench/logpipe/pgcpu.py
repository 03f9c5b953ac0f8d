#!/usr/bin/python3
"""pgcpu.py [BEFORE.json] -- CPU seconds of every PostgreSQL process (from /proc), as JSON.
With the file of an earlier call, prints instead the largest increase since then: the
backend that did the work (the benchmark's COPY or logpipe's connection)."""
import json
import os
import sys

tick = os.sysconf("SC_CLK_TCK")
now = {}
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if not f.read().startswith(b"postgres: "):
                continue
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        now[pid] = (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        pass
if len(sys.argv) > 1:
    before = json.load(open(sys.argv[1]))
    print(round(max((v - before.get(k, 0) for k, v in now.items()), default=0), 2))
else:
    print(json.dumps(now))
