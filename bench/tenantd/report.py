#!/usr/bin/python3
"""report.py -- bookkeeping and the summary of bench/tenantd/run.sh (standard library only).

  report.py set RESULTS KEY VALUE          RESULTS[KEY] = VALUE (JSON if it parses, else text);
                                           KEY may be dotted (a.b.c); a KEY ending in [] appends
  report.py file RESULTS KEY FILE          the same with the JSON object printed in FILE (its
                                           last line)
  report.py timev RESULTS KEY FILE WALL    appends {wall, user, sys, maxrss_mib} from the output
                                           of /usr/bin/time -v in FILE and the wall seconds the
                                           caller measured
  report.py get RESULTS KEY                prints a value
  report.py summary RESULTS                the Markdown summary: setup, table with bars, details
"""
import json
import os
import re
import statistics
import sys

MIB = 1024 * 1024


def load(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save(path, d):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f, indent=1)
    os.replace(tmp, path)


def put(d, key, value):
    append = key.endswith("[]")
    parts = key[:-2].split(".") if append else key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    if append:
        d.setdefault(parts[-1], []).append(value)
    else:
        d[parts[-1]] = value


def get(d, key, default=None):
    for p in key.split("."):
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def parse_value(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_timev(text):
    def num(label):
        m = re.search(re.escape(label) + r":\s+([\d.]+)", text)
        return float(m.group(1)) if m else None
    rss = num("Maximum resident set size (kbytes)")
    return {"user": num("User time (seconds)"), "sys": num("System time (seconds)"),
            "maxrss_mib": round(rss / 1024, 1) if rss is not None else None,
            "exit": int(num("Exit status") or 0)}


# --- formatting -------------------------------------------------------------------------------

def s(v, digits=2):
    return "-" if v is None else ("%.*f" % (digits, v))


def ms(v):
    return "-" if v is None else "%.0f ms" % (v * 1000)


def mib(b):
    return "-" if b is None else "%.1f MiB" % (b / MIB)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def runs(values, fmt=s):
    values = [v for v in values if v is not None]
    return " / ".join(fmt(v) for v in values) if values else "-"


def verdict(ok):
    return "-" if ok is None else ("**met**" if ok else "**NOT met**")


def summary(r):
    out = []
    w = out.append
    m = r.get("meta", {})
    w("# tenantd benchmark (issue 4, item 7), %s" % m.get("date", "?"))
    w("")
    w("Machine: %s" % m.get("machine", "?"))
    w("Command: `%s`" % m.get("command", "?"))
    w("Built: %s" % m.get("version", "?"))
    w("Wall time of the whole run: %s s" % s(m.get("run_seconds"), 0))
    w("")

    md, nat, fd = r.get("medium", {}), r.get("national", {}), r.get("feed", {})
    mc, nc = md.get("changes", {}), nat.get("changes", {})
    comp = nat.get("compile", [])
    comp_wall = [c.get("wall") for c in comp]
    comp_rss = [c.get("maxrss_mib") for c in comp]
    snap_size = nat.get("snapshot_bytes")
    loads = nat.get("resolver_load_warm", []) + nat.get("resolver_load_cold", [])
    sighup = nat.get("resolver_sighup", [])
    fr = fd.get("refresh_row", {})

    def lt(v, bar):
        return None if v is None else v < bar

    # --- the table ---------------------------------------------------------------------------
    w("## Summary")
    w("")
    w("| measurement | measured | bar (issue 4) | verdict |")
    w("|---|---|---|---|")
    for label, c, size in (("medium", mc, md.get("short")), ("national", nc, nat.get("short"))):
        if not c:
            continue
        w("| change → enforced, %s policy (%s): p50 / p90 / p99 / max over %d changes | %s / %s / %s / %s | p99 < 1 s | %s |" % (
            label, size or "?", c.get("changes", 0), ms(c.get("p50_s")), ms(c.get("p90_s")),
            ms(c.get("p99_s")), ms(c.get("max_s")),
            verdict(None if c.get("p99_s") is None or c.get("not_enforced") else c["p99_s"] < 1.0)))
    if comp:
        w("| `aegis-tenantd compile`, %s: wall, %d runs | %s s (median %s s) | < 5 s | %s |" % (
            nat.get("short", "?"), len(comp), runs(comp_wall), s(med(comp_wall)),
            verdict(lt(max(v for v in comp_wall if v is not None), 5.0))))
        w("| same: peak RSS (`/usr/bin/time -v`) | %s MiB | < 512 MiB | %s |" % (
            runs(comp_rss, lambda v: "%.0f" % v), verdict(lt(max(v for v in comp_rss if v), 512))))
    if snap_size:
        w("| snapshot file size | %s (%s bytes) | < 64 MiB | %s |" % (
            mib(snap_size), format(snap_size, ","), verdict(snap_size < 64 * MIB)))
    if loads:
        wl, cl = nat.get("resolver_load_warm", []), nat.get("resolver_load_cold", [])
        w("| resolver load of that snapshot: start → a blocked name answers NXDOMAIN | file in the page cache: %s; evicted first: %s | < 1 s | %s |" % (
            runs(wl, ms), runs(cl, ms), verdict(lt(max(loads), 1.0))))
    if sighup:
        w("| resolver reload: rename + SIGHUP → new serial in /metrics | %s | < 1 s | %s |" % (
            runs(sighup, ms), verdict(lt(max(sighup), 1.0))))
    if fr:
        exp_valid, exp_invalid = fd.get("expected_valid"), fd.get("expected_invalid")
        ok = (fr.get("outcome") == "updated" and fr.get("entries_total") == exp_valid
              and fd.get("entries_in_db") == exp_valid and fr.get("lines_invalid") == exp_invalid)
        w("| feed of %s lines, %s invalid: `feed-refresh` | %s valid names loaded (%s in feed_entries), lines_invalid = %s, outcome %s, in %s s | the other 90%% load, the count is reported | %s |" % (
            format(fd.get("lines", 0), ","), format(exp_invalid or 0, ","),
            format(fr.get("entries_total") or 0, ","), format(fd.get("entries_in_db") or 0, ","),
            format(fr.get("lines_invalid") or 0, ","), fr.get("outcome"), s(get(fd, "refresh.wall")),
            verdict(ok)))
    w("")

    # --- details -----------------------------------------------------------------------------
    def change_details(label, c, d):
        if not c:
            return
        w("### Change → enforced, %s policy" % label)
        w("")
        sizes = "overlay %s on a feed base of %s, as the service publishes them" % (
            mib(d.get("overlay_bytes")), mib(d.get("base_bytes")))
        if d.get("snapshot_bytes"):
            sizes += "; %s self-contained (`aegis-tenantd compile`)" % mib(d.get("snapshot_bytes"))
        w("Setup: %s. Seeding took %s. Snapshot: %s." % (
            d.get("setup", "?"), d.get("seed_timings", "?"), sizes))
        w("")
        w("%d changes (%s requested%s), %d enforced, %d not; latency min %s, mean %s, p50 %s, p90 %s, p99 %s, max %s; "
          "one INSERT + COMMIT took %s (p50). Poll interval %s ms." % (
              c.get("changes", 0), c.get("requested", "?"),
              ", stopped by the time budget" if c.get("stopped_by_budget") else "",
              c.get("enforced", 0), c.get("not_enforced", 0), ms(c.get("min_s")),
              ms(c.get("mean_s")), ms(c.get("p50_s")), ms(c.get("p90_s")), ms(c.get("p99_s")),
              ms(c.get("max_s")), ms(c.get("insert_p50_s")), s(c.get("interval_ms"), 0)))
        ph = c.get("phases")
        if ph:
            w("")
            w("Where the time goes (log timestamps, ms resolution; %d of %d changes matched to their version):" % (
                c.get("phases_matched", 0), c.get("changes", 0)))
            w("")
            w("| phase | p50 | p90 | max |")
            w("|---|---|---|---|")
            names = {
                "commit_to_published": "COMMIT → tenantd logs `snapshot_published` (debounce 50 ms + compile of the overlay on the kept feed base + read-back + recording the version in `snapshots`)",
                "compile_ms": "… of which the compile itself (`ms=` of `snapshot_published`)",
                "published_to_serving": "`snapshot_published` → `snapshot_serving` (read the overlay back, zstd it)",
                "serving_to_fetched": "`snapshot_serving` → resolver logs `snapshot_fetched` (long-poll wakes, transfer, unzstd, verify, join to the base the node holds, write + fsync; the image is stored in `snapshots` meanwhile)",
                "fetched_to_answer": "`snapshot_fetched` → the probe gets the block answer (swap, ≤ 1 poll interval)",
                "versions_per_change": "snapshot versions per change",
            }
            for k, label2 in names.items():
                v = ph.get(k, {})
                f = (lambda x: "-" if x is None else "%d" % x) if k == "versions_per_change" else ms
                w("| %s | %s | %s | %s |" % (label2, f(v.get("p50")), f(v.get("p90")), f(v.get("max"))))
        extra = d.get("rss")
        if extra:
            w("")
            w("Memory after the changes: %s." % extra)
        w("")

    pg = r.get("pg", {})

    def pg_table(key, unit):
        rows = pg.get(key)
        if not rows:
            return
        w("PostgreSQL's own statement time (`log_min_duration_statement = 0`, `bench/tenantd/pglog.py`), top statements, per %s:" % unit)
        w("")
        w("| statement | count | total | per %s |" % unit)
        w("|---|---|---|---|")
        for x in rows:
            w("| `%s` | %d | %.0f ms | %.1f ms |" % (x["statement"].replace("|", "\\|"), x["count"],
                                                  x["total_ms"], x["per_ms"]))
        w("")

    w("## Details")
    w("")
    change_details("medium", mc, md)
    pg_table("medium_changes", "change")
    change_details("national", nc, nat)
    pg_table("national_changes", "change")

    if comp:
        w("### Compile at national scale")
        w("")
        w("Setup: %s. Seeding took %s." % (nat.get("setup", "?"), nat.get("seed_timings", "?")))
        w("")
        w("| what | wall s per run | CPU user+sys s | peak RSS MiB |")
        w("|---|---|---|---|")
        w("| `aegis-tenantd -c CONF compile` (PostgreSQL → snapshot, read back, recorded with its image in `snapshots`) | %s | %s | %s |" % (
            runs(comp_wall), runs([(c.get("user") or 0) + (c.get("sys") or 0) for c in comp]),
            runs(comp_rss, lambda v: "%.0f" % v)))
        w("| … of which `compile_snapshot()` (read in one transaction + build + write; `ms=` in its log line) | %s | | |" % (
            runs([c.get("compile_ms") / 1000 if c.get("compile_ms") is not None else None for c in comp])))
        js = nat.get("compile_json", [])
        if js:
            w("| peer: `aegis-tenantd compile-json` on the equivalent JSON + name files (no database) | %s | %s | %s |" % (
                runs([c.get("wall") for c in js]),
                runs([(c.get("user") or 0) + (c.get("sys") or 0) for c in js]),
                runs([c.get("maxrss_mib") for c in js], lambda v: "%.0f" % v)))
        st = nat.get("pg_stream", [])
        if st:
            w("| peer: PostgreSQL alone streams the compiler's feed query, `psql -c \"\\copy (SELECT f.category, e.name, e.action FROM feed_entries e JOIN feeds f ON f.id = e.feed_id WHERE f.enabled) TO /dev/null\"` | %s | | |" % runs(st))
        w("")
        pg_table("compile", "compile run")
        if nat.get("json_snapshot_bytes"):
            w("Snapshot sizes: from the database %s bytes, from the JSON %s bytes (the name table's layout depends on a random per-compile hash seed, so sizes differ by a slot or two)." % (
                format(snap_size or 0, ","), format(nat["json_snapshot_bytes"], ",")))
            w("")
        pieces = nat.get("pieces")
        if pieces:
            w("The distribution path's pieces, each done alone on the %s snapshot with standard tools: "
              "`zstd --fast=1` (what tenantd uses) %s → %s; `zstd -d` %s; `gzip -1` (for gzip-only clients) %s → %s; "
              "`gzip -d` %s; `sha256sum` %s; write + fsync (`dd conv=fsync`) in the bench folder %s." % (
                  mib(snap_size), ms(pieces.get("zstd_s")), mib(pieces.get("zstd_bytes")),
                  ms(pieces.get("unzstd_s")), ms(pieces.get("gzip_s")), mib(pieces.get("gzip_bytes")),
                  ms(pieces.get("gunzip_s")), ms(pieces.get("sha256_s")), ms(pieces.get("fsync_write_s"))))
            w("")
        rr = nat.get("resolver_rss")
        if rr:
            w("aegis-resolver with the national snapshot: %s." % rr)
            w("")
        left = nat.get("snapshot_dir_after")
        if left:
            w("Left in tenantd's `snapshot.dir` after the national runs: %s." % left)
            w("")

    if fd:
        w("### Feed with %.0f%% garbage" % (100.0 * (fd.get("expected_invalid") or 0) / max(1, fd.get("lines") or 1)))
        w("")
        w("`%s` lines in a plain-format file (%s bytes): %s valid names (distinct after normalisation), %s invalid lines of 8 kinds "
          "(two words, a bad character, an empty label, an IPv4 address, a 64-byte label, a name over 253 bytes, a U-label, a URL whose port is not a number)." % (
              format(fd.get("lines", 0), ","), format(fd.get("file_bytes", 0), ","),
              format(fd.get("expected_valid", 0), ","), format(fd.get("expected_invalid", 0), ",")))
        w("")
        rf = fd.get("refresh", {})
        w("`aegis-tenantd -c CONF feed-refresh bench-garbage`: %s s wall, CPU %s s user + %s s sys, peak RSS %s MiB, exit %s." % (
            s(rf.get("wall")), s(rf.get("user")), s(rf.get("sys")), s(rf.get("maxrss_mib"), 0), rf.get("exit")))
        w("")
        w("`feed_refreshes` row: %s." % json.dumps(fr))
        w("")
        w("feed_entries rows for the feed: %s; feeds.status: %s." % (
            format(fd.get("entries_in_db") or 0, ","), fd.get("status")))
        if fd.get("copy_peer_s") is not None:
            w("")
            w("Peer: PostgreSQL alone COPYing the %s valid names into a table `(name dns_name PRIMARY KEY)`: %s s." % (
                format(fd.get("expected_valid", 0), ","), s(fd.get("copy_peer_s"))))
        w("")
        pg_table("feed_refresh", "refresh")
        if fd.get("parse_note"):
            w("")
            w(fd["parse_note"])
        w("")

    noise = m.get("noise", [])
    if noise:
        w("### Load on the machine while this ran")
        w("")
        w("| phase | load average at start | machine CPU busy during the phase (2 CPUs = 200%) |")
        w("|---|---|---|")
        for n in noise:
            w("| %s | %s | %s |" % (n.get("phase"), n.get("loadavg"), n.get("busy")))
        w("")
    for t in m.get("top", []):
        w("Busiest processes, %s (`top -b -n 2 -d 1`, second frame, top 8):" % t.get("label"))
        w("")
        w("```")
        w(t.get("text", "").rstrip())
        w("```")
        w("")
    return "\n".join(out)


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    r = load(path)
    if cmd == "set":
        put(r, sys.argv[3], parse_value(sys.argv[4]))
        save(path, r)
    elif cmd == "file":
        with open(sys.argv[4]) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        put(r, sys.argv[3], json.loads(lines[-1]))
        save(path, r)
    elif cmd == "timev":
        with open(sys.argv[4]) as f:
            d = parse_timev(f.read())
        d["wall"] = round(float(sys.argv[5]), 3)
        if len(sys.argv) > 6:
            d.update(json.loads(sys.argv[6]))
        put(r, sys.argv[3], d)
        save(path, r)
    elif cmd == "meta":
        # report.py meta RESULTS PREFIX META.json: the setup line and seed timings of a policy
        with open(sys.argv[4]) as f:
            mt = json.load(f)
        pf = ", ".join("%s %s" % (k, format(v, ",")) for k, v in mt["per_feed"].items())
        put(r, sys.argv[3] + ".setup",
            "%s tenants (1 ministry, %d region%s, %s institutions), %s networks, %s list entries, "
            "%s feed rows = %s distinct names in 6 feeds (%s; %s passthru), feed_entries %s on disk" % (
                format(mt["tenants"], ","), mt["regions"], "" if mt["regions"] == 1 else "s",
                format(mt["institutions"], ","),
                format(mt["networks"], ","), format(mt["list_entries"], ","),
                format(mt["feed_rows"], ","), format(mt["feed_names_distinct"], ","), pf,
                mt["passthru"], mt["feed_table_size"]))
        put(r, sys.argv[3] + ".short", "%s tenants, %s networks, %s feed names" % (
            format(mt["tenants"], ","), format(mt["networks"], ","),
            format(mt["feed_names_distinct"], ",")))
        t = mt["timings"]
        put(r, sys.argv[3] + ".seed_timings",
            "generate %.1f s, tenants/networks/lists %.1f s, COPY feed_entries %.1f s, "
            "VACUUM ANALYZE %.1f s" % (t["generate_s"], t["load_policy_s"],
                                      t["copy_feed_entries_s"], t["vacuum_analyze_s"]))
        save(path, r)
    elif cmd == "get":
        v = get(r, sys.argv[3])
        print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))
    elif cmd == "summary":
        print(summary(r))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
