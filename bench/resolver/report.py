#!/usr/bin/python3
"""report.py -- bookkeeping and the summary table of bench/resolver/run.sh (standard library).

  report.py record RESULTS --server S --kind max|lat|swap --round N --dnsperf OUT
                   --cpu0 TICKS --cpu1 TICKS --wall0 EPOCH --wall1 EPOCH
      parses one dnsperf run and appends it, with the server's CPU time, to RESULTS (JSON lines)
  report.py set RESULTS --server S KEY VALUE
      appends one fact (load time, RSS, swap times, ...)
  report.py get RESULTS --server S --kind K --round N FIELD
      prints a field of a recorded dnsperf run (run.sh uses it for rates)
  report.py summary RESULTS
      prints the Markdown tables: per server, ratios, bars
"""
import argparse
import json
import os
import re
import sys

CLK_TCK = os.sysconf("SC_CLK_TCK")
PEERS = ["unbound-local", "unbound-rpz"]
LABELS = {
    "aegis": "aegis-resolver",
    "unbound-local": "Unbound, 1M local-zone",
    "unbound-rpz": "Unbound, 1M-name RPZ",
    "bare": "bare responder (floor)",
}


def parse_dnsperf(text):
    d = {}

    def num(pattern, cast=float):
        m = re.search(pattern, text)
        return cast(m.group(1)) if m else None

    d["sent"] = num(r"Queries sent:\s+(\d+)", int)
    d["completed"] = num(r"Queries completed:\s+(\d+)", int)
    d["lost"] = num(r"Queries lost:\s+(\d+)", int)
    d["interrupted"] = num(r"Queries interrupted:\s+(\d+)", int) or 0
    d["qps"] = num(r"Queries per second:\s+([\d.]+)")
    d["runtime"] = num(r"Run time \(s\):\s+([\d.]+)")
    m = re.search(r"Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)", text)
    if m:
        d["lat_avg"], d["lat_min"], d["lat_max"] = (float(x) for x in m.groups())
    d["lat_sd"] = num(r"Latency StdDev \(s\):\s+([\d.]+)")
    rc = {}
    m = re.search(r"Response codes:\s+(.*)", text)
    if m:
        for name, count in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
            rc[name] = int(count)
    d["rcodes"] = rc
    return d


def load(path):
    recs = []
    if os.path.exists(path):
        with open(path) as f:
            recs = [json.loads(line) for line in f if line.strip()]
    return recs


def append(path, rec):
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def runs(recs, server, kind):
    return [r for r in recs if r.get("type") == "run" and r["server"] == server
            and r["kind"] == kind]


def fact(recs, server, key):
    v = None
    for r in recs:
        if r.get("type") == "fact" and r["server"] == server and r["key"] == key:
            v = r["value"]
    return v


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    return "%.*f" % (digits, v)


def joined(values, digits=2):
    return " / ".join(fmt(v, digits) for v in values) if values else "n/a"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summary(path):
    recs = load(path)
    servers = [s for s in ["aegis", "unbound-local", "unbound-rpz", "bare"]
               if runs(recs, s, "max") or fact(recs, s, "load_s")]
    rounds = sorted({r["round"] for r in recs if r.get("type") == "run" and r["kind"] == "max"})
    peers = [p for p in PEERS if p in servers]
    out = []
    w = out.append

    def run(server, kind, rd):
        for r in runs(recs, server, kind):
            if r["round"] == rd:
                return r
        return None

    def field(server, kind, rd, key):
        r = run(server, kind, rd)
        return r.get(key) if r else None

    def user(server, rd, matched=False):
        """Server CPU µs/query minus the floor's: the saturating floor, or the floor run at
        the server's own rate."""
        mine = field(server, "max", rd, "cpu_us_per_q")
        floor = field("bare", "floor-" + server if matched else "max", rd, "cpu_us_per_q")
        return None if mine is None or floor is None else mine - floor

    meta = {r["key"]: r["value"] for r in recs if r.get("type") == "fact" and r["server"] == "-"}
    if meta:
        w("Setup: " + ", ".join("%s %s" % (k, fmt(v, 0) if isinstance(v, float) else v)
                                for k, v in meta.items()))
        w("")
    w("Values per round are separated by ' / ' (rounds %s, interleaved: every server once per "
      "round)." % ", ".join(str(r) for r in rounds))
    w("")
    w("| server | QPS | server CPU busy | others on its CPU | CPU µs/query "
      "| user-space µs/query (floor saturating) | user-space µs/query (floor at same rate) "
      "| lost |")
    w("|---|---|---|---|---|---|---|---|")
    for s in servers:
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            LABELS.get(s, s),
            joined([field(s, "max", rd, "qps") for rd in rounds], 0),
            joined([(field(s, "max", rd, "cpu_busy") or 0) * 100 for rd in rounds], 0) + " %",
            joined([(field(s, "max", rd, "other_on_server_cpu") or 0) * 100 for rd in rounds], 0)
            + " %",
            joined([field(s, "max", rd, "cpu_us_per_q") for rd in rounds]),
            "(floor)" if s == "bare" else joined([user(s, rd) for rd in rounds]),
            "(floor)" if s == "bare" else joined([user(s, rd, True) for rd in rounds]),
            joined([field(s, "max", rd, "lost") for rd in rounds], 0)))
    w("")
    if "bare" in servers and any(run("bare", "floor-" + s, rd) for s in peers + ["aegis"]
                                 for rd in rounds):
        w("Floor at each server's rate (bare responder, dnsperf -Q that server's QPS): " +
          "; ".join("%s %s µs/query at %s qps" % (
              s, joined([field("bare", "floor-" + s, rd, "cpu_us_per_q") for rd in rounds]),
              joined([field("bare", "floor-" + s, rd, "qps") for rd in rounds], 0))
              for s in ["aegis"] + peers if s in servers))
        w("")

    w("| server | CPU µs/query @fixed rate | latency @fixed rate: avg / max / stddev (ms) "
      "| lost @fixed rate | RSS MiB (peak) | load s |")
    w("|---|---|---|---|---|---|")
    for s in servers:
        lats = []
        for rd in rounds:
            r = run(s, "lat", rd)
            lats.append("%.3f / %.2f / %.3f" % (r["lat_avg"] * 1e3, r["lat_max"] * 1e3,
                                                r["lat_sd"] * 1e3)
                        if r and r.get("lat_avg") is not None else "n/a")
        w("| %s | %s | %s | %s | %s (%s) | %s |" % (
            LABELS.get(s, s),
            joined([field(s, "lat", rd, "cpu_us_per_q") for rd in rounds]),
            " ; ".join(lats),
            joined([field(s, "lat", rd, "lost") for rd in rounds], 0),
            fmt(fact(recs, s, "rss_mib"), 1), fmt(fact(recs, s, "hwm_mib"), 1),
            fmt(fact(recs, s, "load_s"), 3) if s != "bare" else "-"))
    w("")
    aeg = [r for r in recs if r.get("type") == "run" and r["server"] == "aegis"
           and r.get("qlog_written") is not None]
    if aeg:
        w("aegis query log per run (completed queries / records written / dropped because the "
          "queue was full): " + "; ".join(
              "%s r%d %d/%d/%d" % (r["kind"], r["round"], r["completed"], r["qlog_written"],
                                   r["qlog_dropped"]) for r in aeg))
        w("")

    if "aegis" in servers and peers:
        w("| ratio aegis / peer | " + " | ".join(LABELS[p] for p in peers) + " |")
        w("|---|" + "---|" * len(peers))

        def row(label, getter, digits=2):
            cells = [joined([ratio(getter("aegis", rd), getter(p, rd)) for rd in rounds], digits)
                     for p in peers]
            w("| %s | %s |" % (label, " | ".join(cells)))

        row("QPS (higher is better)", lambda s, rd: field(s, "max", rd, "qps"))
        row("CPU µs/query", lambda s, rd: field(s, "max", rd, "cpu_us_per_q"))
        row("user-space µs/query (floor saturating)", user)
        row("user-space µs/query (floor at same rate)", lambda s, rd: user(s, rd, True))
        row("CPU µs/query @fixed rate", lambda s, rd: field(s, "lat", rd, "cpu_us_per_q"))
        row("latency avg @fixed rate", lambda s, rd: field(s, "lat", rd, "lat_avg"))
        row("latency max @fixed rate", lambda s, rd: field(s, "lat", rd, "lat_max"))
        row("RSS", lambda s, rd: fact(recs, s, "rss_mib"))
        row("load time", lambda s, rd: fact(recs, s, "load_s"))
        w("")

    w("| bar (issue 3) | measured | verdict |")
    w("|---|---|---|")
    if "aegis" in servers and peers:
        for matched, label in ((False, "floor saturating"), (True, "floor at same rate")):
            cells, ok = [], True
            for rd in rounds:
                best = min((user(p, rd, matched) for p in peers
                            if user(p, rd, matched) is not None), default=None)
                a = user("aegis", rd, matched)
                if a is None or best is None:
                    cells.append("n/a")
                    ok = False
                    continue
                cells.append("%.2f µs vs best peer %.2f µs (limit %.2f)" % (a, best, best / 2))
                ok = ok and a <= best / 2
            if all(c == "n/a" for c in cells):
                continue  # not measured in this run (BENCH_FLOOR=0)
            w("| user-space cost ≤ half the best peer's (%s) | %s | %s |"
              % (label, " ; ".join(cells), "met" if ok else "NOT met"))
    rss = fact(recs, "aegis", "rss_mib")
    if rss is not None:
        w("| RSS ≤ 128 MiB with the policy loaded | %.1f MiB (peak %s) | %s |"
          % (rss, fmt(fact(recs, "aegis", "hwm_mib"), 1), "met" if rss <= 128 else "NOT met"))
    sw = runs(recs, "aegis", "swap")
    if sw:
        r = sw[-1]
        t_block = fact(recs, "aegis", "swap_block_s")
        t_unblock = fact(recs, "aegis", "swap_unblock_s")
        unexpected = {k: v for k, v in r["rcodes"].items() if k not in ("NOERROR", "NXDOMAIN")}
        bad = r["lost"] + sum(unexpected.values())
        times = [t for t in (t_block, t_unblock) if isinstance(t, (int, float))]
        ok = bad == 0 and len(times) == 2 and max(times) <= 1.0
        w("| 1M-name snapshot swap under load: 0 lost/failed, new policy ≤ 1 s | "
          "%d queries at %.0f qps, %d lost, unexpected rcodes %s, query log dropped %s; new "
          "policy answers %s s (one name blocked) and %s s (unblocked again) after the new "
          "file + SIGHUP | %s |"
          % (r["completed"], r["qps"], r["lost"], unexpected or "none",
             fmt(r.get("qlog_dropped"), 0), fmt(t_block, 3), fmt(t_unblock, 3),
             ("met" if ok else "NOT met") +
             ("; but query-log records were dropped" if r.get("qlog_dropped") else "")))
    fz = fact(recs, "-", "fuzz")
    w("| 10 min libFuzzer over the packet path, no crash/leak/report | %s | see RESULTS.md |"
      % (fz or "run separately (scripts/run-fuzzers.sh 600 build/fuzz/fuzz_packet)"))
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["record", "set", "get", "summary"])
    ap.add_argument("results")
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--server")
    ap.add_argument("--kind")
    ap.add_argument("--round", type=int, default=1)
    ap.add_argument("--dnsperf")
    ap.add_argument("--cpu0", type=int)
    ap.add_argument("--cpu1", type=int)
    ap.add_argument("--wall0", type=float)
    ap.add_argument("--wall1", type=float)
    ap.add_argument("--cpu-server", help="BUSY/TOTAL jiffies of the server's CPU")
    ap.add_argument("--cpu-load", help="BUSY/TOTAL jiffies of dnsperf's CPU")
    ap.add_argument("--sock-drops", type=int)
    ap.add_argument("--qlog-written", type=int)
    ap.add_argument("--qlog-dropped", type=int)
    ap.add_argument("--qlog-lines", type=int)
    a = ap.parse_intermixed_args()
    if a.cmd == "record":
        with open(a.dnsperf) as f:
            d = parse_dnsperf(f.read())
        if d["completed"] is None:
            print("report.py: no statistics in %s" % a.dnsperf, file=sys.stderr)
            return 1
        cpu_s = (a.cpu1 - a.cpu0) / CLK_TCK
        d.update(type="run", server=a.server, kind=a.kind, round=a.round, cpu_s=cpu_s,
                 wall_s=a.wall1 - a.wall0,
                 cpu_busy=cpu_s / (a.wall1 - a.wall0) if a.wall1 > a.wall0 else None,
                 cpu_us_per_q=cpu_s * 1e6 / d["completed"] if d["completed"] else None)
        for key, arg in (("server_cpu", a.cpu_server), ("load_cpu", a.cpu_load)):
            if arg:
                busy, total = (int(x) for x in arg.split("/"))
                d[key + "_busy"] = busy / total if total else None
        if d.get("server_cpu_busy") is not None and d["cpu_busy"] is not None:
            # What ran on the server's CPU besides the server: other workloads, kernel threads.
            d["other_on_server_cpu"] = max(0.0, d["server_cpu_busy"] - d["cpu_busy"])
        d.update(sock_drops=a.sock_drops, qlog_written=a.qlog_written,
                 qlog_dropped=a.qlog_dropped, qlog_lines=a.qlog_lines)
        append(a.results, d)
        extra = ""
        if a.qlog_written is not None:
            extra = ", query log: %d written, %d dropped (queue full), %d lines" % (
                a.qlog_written, a.qlog_dropped, a.qlog_lines)
        print("%-14s %-20s round %d: %8.0f qps, completed %d, lost %d (server socket drops "
              "%s), server CPU %.2f s (%.0f%% busy; others on its CPU %s%%, dnsperf CPU %s%%), "
              "%.2f µs/query, rcodes %s%s" % (
                  a.server, a.kind, a.round, d["qps"] or 0, d["completed"], d["lost"] or 0,
                  a.sock_drops, cpu_s, (d["cpu_busy"] or 0) * 100,
                  fmt(d.get("other_on_server_cpu", 0) * 100, 0),
                  fmt((d.get("load_cpu_busy") or 0) * 100, 0), d["cpu_us_per_q"] or 0,
                  " ".join("%s=%d" % kv for kv in d["rcodes"].items()), extra))
    elif a.cmd == "set":
        key, value = a.rest
        try:
            value = float(value)
        except ValueError:
            pass
        append(a.results, {"type": "fact", "server": a.server, "key": key, "value": value})
    elif a.cmd == "get":
        for r in runs(load(a.results), a.server, a.kind):
            if r["round"] == a.round:
                print(r.get(a.rest[0]))
                return 0
        return 1
    else:
        summary(a.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
