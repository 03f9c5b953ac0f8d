#!/usr/bin/python3
"""gen.py -- the inputs of the resolver benchmark (bench/resolver/run.sh), standard library only.

Writes into OUT_DIR:
  blocked.txt            the malware feed: one name per line, b0000001.blocked.wild.test ...
  policy.json            10,000 tenants with 50,000 networks carved from 127.0.0.0/8, the feed
                         above as category malware (a threat category, blocked by default)
  policy2.json           the same plus one extra blocked name that the query file asks for
                         (SWAP_NAME), for the snapshot-swap measurement
  queries.txt            dnsperf input: 90% cached allowed names, 10% random blocked names
  warm.txt               every allowed name once, to fill each server's cache first
  unbound-local.conf     the blocked names as Unbound local-zones (always_nxdomain)
  rpz.zone               the blocked names as an RPZ zone (CNAME . = NXDOMAIN)
  meta.txt               shell variables describing what was written (sourced by run.sh)

Names live under wild.test, which the dev stack's nsd answers with a wildcard: a blocked
name that slipped through the policy would come back NOERROR, not NXDOMAIN, so a leak shows
up in dnsperf's response codes.
"""
import argparse
import json
import os
import random

CATEGORIES = [
    {"name": "malware", "kind": "threat"}, {"name": "phishing", "kind": "threat"},
    {"name": "c2", "kind": "threat"}, {"name": "botnet", "kind": "threat"},
    {"name": "newly_registered", "kind": "threat"}, {"name": "adult", "kind": "content"},
    {"name": "gambling", "kind": "content"}, {"name": "ads", "kind": "content"},
    {"name": "social", "kind": "content"},
]


def blocked_name(i):
    return "b%07d.blocked.wild.test" % i


def allowed_name(i):
    return "a%04d.wild.test" % i


def network(n):
    """The n-th /24 of 127.0.0.0/8: 127.0.0.0/24, 127.0.1.0/24, ..."""
    return "127.%d.%d.0/24" % (n // 256, n % 256)


def write_atomic(path, text_or_lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        if isinstance(text_or_lines, str):
            f.write(text_or_lines)
        else:
            f.writelines(text_or_lines)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--blocked", type=int, default=1_000_000)
    ap.add_argument("--tenants", type=int, default=10_000)
    ap.add_argument("--networks", type=int, default=50_000)
    ap.add_argument("--allowed", type=int, default=1_000)
    ap.add_argument("--queries", type=int, default=200_000)
    ap.add_argument("--blocked-share", type=float, default=0.10)
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args()
    if a.networks > 65536 or a.networks < a.tenants:
        ap.error("--networks must be in [tenants, 65536] (/24s of 127.0.0.0/8)")
    if a.allowed > 10_000 or a.allowed < 10:
        ap.error("--allowed must be in 10..10000")
    rnd = random.Random(a.seed)
    out = a.out_dir
    os.makedirs(out, exist_ok=True)

    # The feed, the Unbound local-zones and the RPZ zone: same names, same order.
    write_atomic(os.path.join(out, "blocked.txt"),
                 (blocked_name(i) + "\n" for i in range(1, a.blocked + 1)))
    write_atomic(os.path.join(out, "unbound-local.conf"),
                 ('local-zone: "%s." always_nxdomain\n' % blocked_name(i)
                  for i in range(1, a.blocked + 1)))
    rpz_head = ("$TTL 60\n@ IN SOA localhost. hostmaster.localhost. 1 3600 600 86400 60\n"
                "@ IN NS localhost.\n")
    write_atomic(os.path.join(out, "rpz.zone"),
                 [rpz_head] + ["%s CNAME .\n" % blocked_name(i) for i in range(1, a.blocked + 1)])

    # Tenants: network n belongs to tenant n % tenants, so each tenant's networks are spread
    # over the /8 (tenant 0 holds 127.0.0.0/24, where the load source 127.0.0.1 sits).
    nets = [[] for _ in range(a.tenants)]
    for n in range(a.networks):
        nets[n % a.tenants].append(network(n))
    tenants = []
    for t in range(a.tenants):
        tenants.append({
            "id": "%08x-0000-4000-8000-%012x" % (t, t),
            "name": "Institution %d" % t,
            "networks": nets[t],
            "ede_text": "contact soc@institution-%d.example" % t,
        })
    swap_name = allowed_name(7 % a.allowed)
    policy = {
        "categories": CATEGORIES,
        "tenants": tenants,
        "national": {"block": ["national-block.test"], "allow": ["www.hospital.test"]},
        "feeds": [{"category": "malware", "file": "blocked.txt"}],
    }
    write_atomic(os.path.join(out, "policy.json"), json.dumps(policy))
    policy["feeds"] = [{"category": "malware", "file": "blocked.txt", "names": [swap_name]}]
    write_atomic(os.path.join(out, "policy2.json"), json.dumps(policy))

    # Queries: the allowed names are all asked, in random order; the blocked ones are drawn
    # from the whole million.
    lines = []
    nblocked = 0
    for _ in range(a.queries):
        if rnd.random() < a.blocked_share:
            lines.append(blocked_name(rnd.randint(1, a.blocked)) + " A\n")
            nblocked += 1
        else:
            lines.append(allowed_name(rnd.randrange(a.allowed)) + " A\n")
    write_atomic(os.path.join(out, "queries.txt"), lines)
    nswap = sum(1 for ln in lines if ln.startswith(swap_name + " "))
    write_atomic(os.path.join(out, "warm.txt"),
                 (allowed_name(i) + " A\n" for i in range(a.allowed)))

    meta = {
        "GEN_BLOCKED": a.blocked, "GEN_TENANTS": a.tenants, "GEN_NETWORKS": a.networks,
        "GEN_ALLOWED": a.allowed, "GEN_QUERIES": a.queries, "GEN_QUERIES_BLOCKED": nblocked,
        "GEN_SWAP_NAME": swap_name, "GEN_SWAP_NAME_QUERIES": nswap,
        "GEN_PROBE_BLOCKED": blocked_name(a.blocked), "GEN_SEED": a.seed,
    }
    write_atomic(os.path.join(out, "meta.txt"),
                 "".join("%s=%s\n" % (k, v) for k, v in meta.items()))


if __name__ == "__main__":
    main()
