#!/usr/bin/python3
"""seed.py -- a policy for bench/tenantd/run.sh: generated, loaded into a migrated database by
plain SQL and COPY (as tenantdlib.py in the integration tests does, only in bulk), and written
as the equivalent JSON description for `aegis-tenantd compile-json`.

  seed.py DSN OUT_DIR --tenants T --networks N --feed-names F [--deny D] [--allow A]
          [--national-block B] [--national-allow A] [--seed S]

Writes into OUT_DIR:
  feed_entries.tsv     the COPY input of feed_entries (feed_id, name, action)
  feed-<category>.txt  the same names, one file per category, for the JSON description
  policy.json          the equivalent policy for compile-json (passthru names as national allow)
  meta.json            what run.sh and changes.py need: candidate tenants for changes (their
                       deny list, a source address inside their network, the rcode their block
                       action gives), a probe name blocked for them, counts, load timings

What gets generated (all deterministic from --seed):
- one ministry, T/500 regions (at least one) and the rest institutions (schools, hospitals,
  municipalities, offices) under the regions;
- N networks, the /24s 127.1.0.0/24, 127.1.1.0/24, ... spread round-robin over the institutions
  (127.0.0.0/24 is left alone: the servers listen on 127.0.0.1);
- policies: 10% of institutions answer REFUSED, 5% sinkhole, the rest NXDOMAIN; 20% safe search,
  an EDE contact text for everyone; category settings: schools block adult and gambling, one in
  ten institutions monitors social, one in fifty turns newly_registered off;
- lists: every institution a deny list of D names, every other one an allow list of A names;
  a national block list and a national allow list;
- feeds: F distinct names over malware 40%, phishing 25%, c2 10%, botnet 10%,
  newly_registered 10%, adult 5%; 2% of the names also appear in a second feed (deduplicated
  by the compiler), 0.1% of malware's rows are RPZ passthru exceptions. The feeds are marked
  refreshed a moment ago with a 7-day interval so the service's feed thread leaves them alone.
"""
import argparse
import io
import json
import os
import random
import time

import psycopg2

THREATS = ["malware", "phishing", "c2", "botnet", "newly_registered"]
FEEDS = [("malware", 0.40), ("phishing", 0.25), ("c2", 0.10), ("botnet", 0.10),
         ("newly_registered", 0.10), ("adult", 0.05)]
CATEGORY_KINDS = {"malware": "threat", "phishing": "threat", "c2": "threat", "botnet": "threat",
                  "newly_registered": "threat", "adult": "content", "gambling": "content",
                  "ads": "content", "social": "content"}
WORDS = ("secure login update account verify pay bank cloud cdn mail portal office online "
         "service support track parcel delivery invoice wallet crypto free prize win gift "
         "stream video photo share drive docs auth sso id my app web api static img media "
         "news shop store deal cheap best top fast").split()
TLDS = ("com net org info biz xyz top ru cn io co online site club shop live pw cc tk ml ga "
        "de fr uk nl eu").split()
B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def b36(n):
    s = ""
    while True:
        n, r = divmod(n, 36)
        s = B36[r] + s
        if n == 0:
            return s


def make_name(rnd, i, tag):
    """A distinct, plausible-looking name: the index in base 36 sits in a fixed position of
    each of the three shapes (2, 3 and 4 labels), so no two indexes ever give the same name."""
    w1, w2 = rnd.choice(WORDS), rnd.choice(WORDS)
    tld = rnd.choice(TLDS)
    shape = rnd.random()
    if shape < 0.6:
        return "%s%s-%s%s.%s" % (w1, w2, tag, b36(i), tld)
    if shape < 0.9:
        return "%s%s-%s.%s.%s" % (tag, b36(i), w1, w2, tld)
    return "cdn%d.%s-%s%s.%s.%s" % (rnd.randrange(10), w1, tag, b36(i), w2, tld)


def tenant_id(n):
    return "%08x-0000-4000-8000-%012x" % (n, n)


def list_id(kind, n):
    return "%08x-%04x-4000-9000-%012x" % (n, {"deny": 1, "allow": 2, "nblock": 3, "nallow": 4}[kind], n)


def feed_id(n):
    return "%08x-0000-4000-a000-%012x" % (n, n)


def network(n):
    n += 256  # skip 127.0.0.0/24
    return "127.%d.%d.0/24" % (n // 256, n % 256)


def copy(cur, table, columns, rows):
    buf = io.StringIO()
    for r in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in r) + "\n")
    buf.seek(0)
    cur.copy_expert("COPY %s (%s) FROM STDIN" % (table, ", ".join(columns)), buf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dsn")
    ap.add_argument("out_dir")
    ap.add_argument("--tenants", type=int, required=True)
    ap.add_argument("--networks", type=int, required=True)
    ap.add_argument("--feed-names", type=int, required=True)
    ap.add_argument("--deny", type=int, default=10)
    ap.add_argument("--allow", type=int, default=5)
    ap.add_argument("--national-block", type=int, default=500)
    ap.add_argument("--national-allow", type=int, default=100)
    ap.add_argument("--seed", type=int, default=4)
    a = ap.parse_args()
    if a.networks + 256 > 65536:
        ap.error("--networks: at most 65280 (/24s of 127.1.0.0 ... 127.255.255.0)")
    rnd = random.Random(a.seed)
    out = a.out_dir
    os.makedirs(out, exist_ok=True)
    timings = {}

    # --- tenants -------------------------------------------------------------------------
    nregions = max(1, a.tenants // 500)
    ninst = a.tenants - 1 - nregions
    if ninst < 1 or a.networks < ninst:
        ap.error("need tenants >= 3 and networks >= institutions")
    kinds = ["school", "hospital", "municipality", "office"]
    tenants = [{"n": 0, "kind": "ministry", "parent": None, "slug": "ministry"}]
    for r in range(nregions):
        tenants.append({"n": 1 + r, "kind": "region", "parent": 0, "slug": "region-%d" % r})
    for i in range(ninst):
        n = 1 + nregions + i
        kind = kinds[i % len(kinds)]
        tenants.append({"n": n, "kind": kind, "parent": 1 + i % nregions,
                        "slug": "%s-%d" % (kind, i)})
    insts = [t for t in tenants if t["kind"] not in ("ministry", "region")]
    for t in tenants:
        t["id"] = tenant_id(t["n"])
        t["name"] = t["slug"].replace("-", " ").title()
        t["networks"] = []
        t["action"], t["sinkhole"], t["safe"] = "nxdomain", None, False
        t["ede"] = "contact soc@%s.example" % t["slug"]
        t["explicit"] = {}
        t["deny"], t["allow"] = [], []
    for i, t in enumerate(insts):
        x = rnd.random()
        if x < 0.10:
            t["action"] = "refused"
        elif x < 0.15:
            t["action"], t["sinkhole"] = "sinkhole", "192.0.2.%d" % (1 + i % 250)
        t["safe"] = rnd.random() < 0.20
        if t["kind"] == "school":
            t["explicit"]["adult"] = "block"
            t["explicit"]["gambling"] = "block"
        if i % 10 == 3:
            t["explicit"]["social"] = "monitor"
        if i % 50 == 7:
            t["explicit"]["newly_registered"] = "off"
    for n in range(a.networks):
        insts[n % len(insts)]["networks"].append(network(n))

    # --- list names ----------------------------------------------------------------------
    k = 0
    for i, t in enumerate(insts):
        for _ in range(a.deny):
            t["deny"].append(make_name(rnd, k, "d"))
            k += 1
        if i % 2 == 0:
            for _ in range(a.allow):
                t["allow"].append(make_name(rnd, k, "a"))
                k += 1
    national_block = [make_name(rnd, j, "nb") for j in range(a.national_block)]
    national_allow = [make_name(rnd, j, "na") for j in range(a.national_allow)]

    # --- feed names: streamed to the COPY file and the per-category files -----------------
    t0 = time.monotonic()
    feed_rows = 0
    passthru = []
    cats = [c for c, _ in FEEDS]
    bounds, acc = [], 0.0
    for c, share in FEEDS:
        acc += share
        bounds.append(acc)
    files = {c: open(os.path.join(out, "feed-%s.txt" % c), "w") for c in cats}
    per_feed = {c: 0 for c in cats}
    first_name = {}
    with open(os.path.join(out, "feed_entries.tsv"), "w") as tsv:
        for i in range(a.feed_names):
            x = i / a.feed_names
            fi = next(j for j, b in enumerate(bounds) if x < b or j == len(bounds) - 1)
            c = cats[fi]
            name = make_name(rnd, i, "f")
            action = "block"
            if c == "malware" and rnd.random() < 0.001:
                action = "passthru"
                passthru.append(name)
            else:
                files[c].write(name + "\n")
                first_name.setdefault(c, name)
            tsv.write("%s\t%s\t%s\n" % (feed_id(fi), name, action))
            per_feed[c] += 1
            feed_rows += 1
            if action == "block" and rnd.random() < 0.02:
                other = (fi + 1 + rnd.randrange(len(cats) - 1)) % len(cats)
                tsv.write("%s\t%s\tblock\n" % (feed_id(other), name))
                files[cats[other]].write(name + "\n")
                per_feed[cats[other]] += 1
                feed_rows += 1
    for f in files.values():
        f.close()
    timings["generate_s"] = round(time.monotonic() - t0, 3)

    # --- the database --------------------------------------------------------------------
    conn = psycopg2.connect(a.dsn)
    conn.autocommit = False
    cur = conn.cursor()
    t0 = time.monotonic()
    copy(cur, "tenants", ["id", "parent_id", "kind", "name", "slug"],
         ((t["id"], None if t["parent"] is None else tenant_id(t["parent"]),
           t["kind"], t["name"], t["slug"]) for t in tenants))
    cur.execute("CREATE TEMP TABLE seed_policies (tenant_id uuid, block_action text,"
                " sinkhole_v4 inet, ede_contact text, safe_search boolean) ON COMMIT DROP")
    copy(cur, "seed_policies", ["tenant_id", "block_action", "sinkhole_v4", "ede_contact", "safe_search"],
         ((t["id"], t["action"], t["sinkhole"], t["ede"], "t" if t["safe"] else "f") for t in tenants))
    cur.execute("UPDATE policies p SET block_action = s.block_action, sinkhole_v4 = s.sinkhole_v4,"
                " ede_contact = s.ede_contact, safe_search = s.safe_search"
                " FROM seed_policies s WHERE p.tenant_id = s.tenant_id")
    copy(cur, "policy_categories", ["tenant_id", "category", "mode"],
         ((t["id"], c, m) for t in tenants for c, m in sorted(t["explicit"].items())))
    copy(cur, "networks", ["tenant_id", "prefix"],
         ((t["id"], p) for t in tenants for p in t["networks"]))
    lists = []
    for t in insts:
        lists.append((list_id("deny", t["n"]), "tenant", t["id"], "deny", "deny"))
        if t["allow"]:
            lists.append((list_id("allow", t["n"]), "tenant", t["id"], "allow", "allow"))
    lists.append((list_id("nblock", 0), "national", None, "block", "national-block"))
    lists.append((list_id("nallow", 0), "national", None, "allow", "national-allow"))
    copy(cur, "lists", ["id", "scope", "tenant_id", "kind", "name"], lists)
    entries = []
    for t in insts:
        entries += [(list_id("deny", t["n"]), d) for d in t["deny"]]
        entries += [(list_id("allow", t["n"]), d) for d in t["allow"]]
    entries += [(list_id("nblock", 0), d) for d in national_block]
    entries += [(list_id("nallow", 0), d) for d in national_allow]
    copy(cur, "list_entries", ["list_id", "domain"], entries)
    copy(cur, "feeds", ["id", "name", "category", "format", "source", "refresh_interval",
                        "status", "last_attempt_at", "fetched_at", "entry_count"],
         ((feed_id(j), "bench-%s" % c.replace("_", "-"), c, "plain",
           "/nonexistent/aegis-bench/%s.txt" % c, "7 days", "ok", "now", "now", per_feed[c])
          for j, c in enumerate(cats)))
    timings["load_policy_s"] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    with open(os.path.join(out, "feed_entries.tsv")) as f:
        cur.copy_expert("COPY feed_entries (feed_id, name, action) FROM STDIN", f)
    timings["copy_feed_entries_s"] = round(time.monotonic() - t0, 3)
    t0 = time.monotonic()
    conn.commit()
    timings["commit_s"] = round(time.monotonic() - t0, 3)
    # Set hint bits and statistics now, so the first measured compile does not pay for them
    # and autovacuum does not wake up in the middle of the measurements.
    conn.autocommit = True
    t0 = time.monotonic()
    cur.execute("VACUUM (ANALYZE)")
    timings["vacuum_analyze_s"] = round(time.monotonic() - t0, 3)
    cur.execute("SELECT pg_size_pretty(pg_total_relation_size('feed_entries'))")
    feed_table_size = cur.fetchone()[0]
    conn.close()

    # --- the equivalent JSON description ---------------------------------------------------
    def effective(t):
        block = set(THREATS)
        monitor = set()
        for c, m in t["explicit"].items():
            block.discard(c)
            if m == "block":
                block.add(c)
            elif m == "monitor":
                monitor.add(c)
        return sorted(block), sorted(monitor)

    jt = []
    for t in tenants:
        block, monitor = effective(t)
        d = {"id": t["id"], "name": t["name"], "networks": t["networks"],
             "block_action": t["action"], "ede_text": t["ede"], "block": block,
             "monitor": monitor, "safe_search": t["safe"], "deny": t["deny"],
             "allow": t["allow"]}
        if t["sinkhole"]:
            d["sinkhole_v4"] = t["sinkhole"]
        jt.append(d)
    policy = {
        "categories": [{"name": c, "kind": k} for c, k in sorted(CATEGORY_KINDS.items())],
        "tenants": jt,
        "national": {"block": national_block, "allow": national_allow + passthru},
        "feeds": [{"category": c, "file": "feed-%s.txt" % c} for c in cats],
    }
    with open(os.path.join(out, "policy.json"), "w") as f:
        json.dump(policy, f)

    # --- what the change loop and run.sh need ---------------------------------------------
    rcode = {"nxdomain": "NXDOMAIN", "refused": "REFUSED"}
    candidates = []
    for t in insts:
        if t["action"] in rcode:
            net = t["networks"][0].split("/")[0].rsplit(".", 1)[0]
            candidates.append({"tenant": t["id"], "slug": t["slug"],
                               "list_id": list_id("deny", t["n"]),
                               "source": net + ".9", "rcode": rcode[t["action"]]})
    probe = next(c for c in candidates if c["rcode"] == "NXDOMAIN")
    meta = {
        "tenants": len(tenants), "institutions": len(insts), "regions": nregions,
        "networks": a.networks,
        "list_entries": len(entries), "feed_names_distinct": a.feed_names,
        "feed_rows": feed_rows, "passthru": len(passthru), "per_feed": per_feed,
        "feed_table_size": feed_table_size, "timings": timings,
        "candidates": candidates,
        "probe_name": first_name["malware"], "probe_source": probe["source"],
        "probe_rcode": "NXDOMAIN",
    }
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps({k: v for k, v in meta.items() if k != "candidates"}))


if __name__ == "__main__":
    main()
