#!/usr/bin/python3
"""changes.py -- change committed in PostgreSQL -> enforced on a resolver node, N times.

  changes.py --dsn DSN --meta META.json --port DNS_PORT --metrics-port P --count N
             --prefix chg-m --out changes.jsonl [--interval 0.003] [--timeout 60]
             [--budget SECONDS] [--tenantd-log F --resolver-log F]

For each change k: a tenant from META's candidates (spread over all of them), a name
PREFIXkkk.wild.test that the dev stack's nsd answers (checked first: NOERROR with an address
from the tenant's source address, so the name was not blocked before), then one plain
INSERT INTO list_entries on the tenant's deny list in autocommit. t0 is taken just after the
INSERT (and so the COMMIT) returns. From then on a raw UDP query for the name goes out from
the tenant's 127.x source every --interval seconds without waiting for the previous answer;
the latency is when the first answer with the tenant's block rcode (NXDOMAIN or REFUSED)
arrives, minus t0. The query that got it was sent at most one interval earlier, so the
figure is an upper bound, at most one interval (plus one loopback round trip) late.
Between changes a random pause of 20-200 ms, so changes do not fall into step with anything.
With --budget, no new change starts once that many seconds have passed (the summary says so).

With --tenantd-log and --resolver-log, each change is matched (through the serial the
resolver reports after it) with the log lines of that version: tenantd's snapshot_published
(with the compile's ms) and snapshot_serving, the resolver's snapshot_fetched, which splits
the latency into phases. Log times are wall-clock milliseconds of the same machine.

Prints one JSON object with the summary; every change is a line of --out.
"""
import argparse
import calendar
import json
import math
import random
import re
import sys
import time

import psycopg2

sys.path.insert(0, __import__("os").path.dirname(__file__))
from dnsprobe import Prober, metric  # noqa: E402


def pct(values, p):
    """Nearest-rank percentile: the smallest value with at least p% of the values <= it."""
    v = sorted(values)
    if not v:
        return None
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


LINE = re.compile(r"^ts=(\S+)Z .* event=(\S+)(.*)$")


def log_events(path, wanted):
    """{event: {version: (epoch, fields)}} for the wanted events of a log file."""
    out = {e: {} for e in wanted}
    if not path:
        return out
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line.strip())
            if not m or m.group(2) not in wanted:
                continue
            ts, frac = m.group(1).split(".")
            epoch = calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000
            fields = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
            v = fields.get("version") or fields.get("serial")
            if v is not None:
                out[m.group(2)].setdefault(int(v), (epoch, fields))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--interval", type=float, default=0.003)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--budget", type=float, default=0,
                    help="start no new change after this many seconds (0: no limit)")
    ap.add_argument("--tenantd-log")
    ap.add_argument("--resolver-log")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    meta = json.load(open(a.meta))
    cands = meta["candidates"]
    conn = psycopg2.connect(a.dsn)
    conn.autocommit = True
    cur = conn.cursor()
    offset = time.time() - time.monotonic()
    results = []
    started = time.monotonic()
    stopped_by_budget = False
    with open(a.out, "w") as out:
        for k in range(a.count):
            if a.budget and time.monotonic() - started > a.budget:
                stopped_by_budget = True
                break
            c = cands[(k * 37) % len(cands)]
            name = "%s%03d.wild.test" % (a.prefix, k)
            p = Prober(a.port, c["source"])
            before = p.ask(name)
            if not before or before[0] != "NOERROR" or before[1] < 1:
                print("change %d: %s from %s answered %r before the change, expected NOERROR "
                      "with an address" % (k, name, c["source"], before), file=sys.stderr)
                return 1
            serial_before = metric(a.metrics_port, "aegis_policy_snapshot_serial")
            c0 = time.monotonic()
            cur.execute("INSERT INTO list_entries (list_id, domain) VALUES (%s, %s)",
                        (c["list_id"], name))
            t0 = time.monotonic()
            at, sent_at, n, seen = p.poll_until(name, c["rcode"], a.interval, a.timeout)
            p.close()
            serial = metric(a.metrics_port, "aegis_policy_snapshot_serial")
            r = {"k": k, "name": name, "tenant": c["slug"], "source": c["source"],
                 "rcode": c["rcode"], "commit_wall": t0 + offset,
                 "insert_s": round(t0 - c0, 6), "queries": n, "other_rcodes": seen,
                 "serial_before": serial_before, "serial": serial}
            if at is None:
                r["latency_s"] = None
                print("change %d: %s not enforced within %.0f s" % (k, name, a.timeout),
                      file=sys.stderr)
            else:
                r["latency_s"] = round(at - t0, 6)
                r["sent_s"] = round(sent_at - t0, 6)
                r["enforced_wall"] = at + offset
            out.write(json.dumps(r) + "\n")
            out.flush()
            results.append(r)
            time.sleep(rnd.uniform(0.02, 0.2))
    conn.close()

    lat = [r["latency_s"] for r in results if r["latency_s"] is not None]
    summary = {"changes": len(results), "requested": a.count,
               "stopped_by_budget": stopped_by_budget, "enforced": len(lat),
               "not_enforced": len(results) - len(lat), "interval_ms": a.interval * 1000}
    for p in (50, 90, 99):
        summary["p%d_s" % p] = pct(lat, p)
    summary["max_s"] = max(lat) if lat else None
    summary["min_s"] = min(lat) if lat else None
    summary["mean_s"] = round(sum(lat) / len(lat), 6) if lat else None
    summary["insert_p50_s"] = pct([r["insert_s"] for r in results], 50)

    # Where the time goes, from the logs.
    if a.tenantd_log and a.resolver_log:
        ev = log_events(a.tenantd_log, ["snapshot_published", "snapshot_serving"])
        ev.update(log_events(a.resolver_log, ["snapshot_fetched"]))
        phases = {"commit_to_published": [], "compile_ms": [], "published_to_serving": [],
                  "serving_to_fetched": [], "fetched_to_answer": [], "versions_per_change": []}
        unmatched = 0
        for r in results:
            v = r.get("serial")
            if r["latency_s"] is None or v is None:
                unmatched += 1
                continue
            v = int(v)
            pub = ev["snapshot_published"].get(v)
            srv = ev["snapshot_serving"].get(v)
            fet = ev["snapshot_fetched"].get(v)
            if not (pub and srv and fet) or pub[0] < r["commit_wall"] - 0.002:
                unmatched += 1
                continue
            phases["commit_to_published"].append(pub[0] - r["commit_wall"])
            phases["compile_ms"].append(int(pub[1].get("ms", 0)) / 1000)
            phases["published_to_serving"].append(srv[0] - pub[0])
            phases["serving_to_fetched"].append(fet[0] - srv[0])
            phases["fetched_to_answer"].append(r["enforced_wall"] - fet[0])
            sb = r.get("serial_before")
            phases["versions_per_change"].append(v - int(sb) if sb is not None else 0)
        summary["phases"] = {
            k: {"p50": pct(v, 50), "p90": pct(v, 90), "max": max(v) if v else None}
            for k, v in phases.items()}
        summary["phases_matched"] = len(results) - unmatched
    print(json.dumps(summary))
    return 0 if summary["not_enforced"] == 0 else 2


if __name__ == "__main__":
    sys.exit(main())
