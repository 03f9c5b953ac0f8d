#!/usr/bin/python3
"""measure.py CONF METRICS_PORT N -- runs aegis-logpipe with CONF until its metrics show N
rows inserted, and prints one JSON line: records/s from the first record consumed to the
last row committed, with the CPU seconds logpipe and PostgreSQL (pgcpu.py) spent.

The clock starts at the first consumed record, not at process start, so the consumer-group
join (a second or two) is not counted; the metrics are polled every 20 ms."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgcpu  # noqa: E402

conf, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
binary = os.environ.get("LOGPIPE", "build/bin/aegis-logpipe")
tick = os.sysconf("SC_CLK_TCK")


def metrics():
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+) (\S+)$", text, re.M)}


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


pg_before = pgcpu.total()
proc = subprocess.Popen([binary, "-c", conf], stderr=open(conf + ".log", "w"))
start = first = None
try:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        m = metrics()
        now = time.monotonic()
        if first is None and m.get("aegis_logpipe_records_consumed_total", 0) > 0:
            first = now
        if m.get("aegis_logpipe_rows_inserted_total", 0) >= n:
            start = first
            break
        if proc.poll() is not None:
            sys.exit("aegis-logpipe exited")
        time.sleep(0.02)
    else:
        sys.exit("timed out")
    end = time.monotonic()
    lp_cpu = cpu(proc.pid)
    pg_cpu = pgcpu.total() - pg_before
    print(json.dumps({"records": n, "seconds": round(end - start, 3),
                      "rate": round(n / (end - start)), "logpipe_cpu_s": round(lp_cpu, 2),
                      "postgres_cpu_s": round(pg_cpu, 2),
                      "duplicates": m.get("aegis_logpipe_duplicates_skipped_total"),
                      "batches": m.get("aegis_logpipe_batches_total")}))
finally:
    proc.terminate()
    proc.wait(timeout=30)
