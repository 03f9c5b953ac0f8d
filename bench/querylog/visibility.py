"""Time from a DNS answer to its query-log row being visible in PostgreSQL, under load.

Sends one probe query with a unique name every --interval seconds to a resolver node and
notes when the answer arrived; meanwhile polls query_log every --poll seconds for the probes'
rows and notes when each first became visible. Prints one JSON line per probe and a summary
line {"type": "summary", "p50_ms": .., "p99_ms": .., "max_ms": .., "probes": .., "missing": ..}.
The poll interval bounds the error (a row is seen at most --poll late)."""
import argparse
import json
import threading
import time

import dns.message
import dns.query
import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True, help="host:port of a resolver node")
    ap.add_argument("--source", required=True, help="client address (a tenant's network)")
    ap.add_argument("--dsn", required=True)
    ap.add_argument("--tag", required=True, help="unique label for this run's probe names")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--poll", type=float, default=0.02)
    ap.add_argument("--wait", type=float, default=30, help="seconds to wait for stragglers")
    a = ap.parse_args()
    host, port = a.node.rsplit(":", 1)
    answered, seen = {}, {}
    done = threading.Event()

    def poller():
        conn = psycopg2.connect(a.dsn)
        conn.autocommit = True
        cur = conn.cursor()
        pattern = f"%.{a.tag}.wild.test"
        while not done.is_set():
            cur.execute("SELECT qname FROM query_log WHERE qname LIKE %s"
                        " AND ts > now() - interval '1 hour'", (pattern,))
            now = time.time()
            for (qname,) in cur.fetchall():
                seen.setdefault(qname, now)
            time.sleep(a.poll)
        conn.close()

    t = threading.Thread(target=poller, daemon=True)
    t.start()
    for i in range(a.count):
        name = f"p{i}.{a.tag}.wild.test"
        q = dns.message.make_query(name, "A")
        dns.query.udp(q, host, port=int(port), source=a.source, timeout=2)
        answered[name] = time.time()
        time.sleep(a.interval)
    deadline = time.time() + a.wait
    while len(seen.keys() & answered.keys()) < len(answered) and time.time() < deadline:
        time.sleep(0.1)
    done.set()
    t.join()
    lat = []
    for name, at in answered.items():
        ms = (seen[name] - at) * 1000 if name in seen else None
        print(json.dumps({"type": "probe", "qname": name, "ms": ms}))
        if ms is not None:
            lat.append(ms)
    lat.sort()
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 1) if lat else None
    print(json.dumps({"type": "summary", "probes": len(answered), "missing": len(answered) - len(lat),
                      "p50_ms": pick(0.50), "p90_ms": pick(0.90), "p99_ms": pick(0.99),
                      "max_ms": round(lat[-1], 1) if lat else None}))


if __name__ == "__main__":
    main()
