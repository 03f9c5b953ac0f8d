#!/usr/bin/python3
"""gen.py N [TENANTS] -- N distinct query-log records (schema v1, docs/querylog.md), one JSON
object per line prefixed by a Kafka key and a tab (kcat -K '\\t'), for the logpipe benchmark.

The mix is a protective resolver's: 200 tenants of uneven size, clients in 10.x.y.z, mostly
allowed cache hits and misses, about 2% category blocks or monitor hits with a feed id, the
times spread over the last hour. Written with string templates: json.dumps would make the
generator, not logpipe, the slow part."""
import os
import sys
import time

n = int(sys.argv[1])
tenants = int(sys.argv[2]) if len(sys.argv) > 2 else 200
now = time.time()
ids = [f"00000000-0000-4000-8000-{t:012d}" for t in range(tenants)]
rand = os.urandom(8 * n)
out = sys.stdout
buf = []
for i in range(n):
    ts = now - 3600 + 3600 * i / n
    secs = int(ts)
    us = int((ts - secs) * 1e6)
    ms = secs * 1000 + us // 1000
    r = int.from_bytes(rand[8 * i:8 * i + 8], "big")
    eid = f"{ms:012x}"
    eid = (f"{eid[:8]}-{eid[8:12]}-7{r & 0xfff:03x}-{0x8000 | (r >> 12) & 0x3fff:04x}-"
           f"{(r >> 26) & 0xffffffffffff:012x}")
    t = ids[int(tenants * ((r >> 40 & 0xffff) / 65536.0) ** 3)]
    client = f"10.{i % 250}.{(i >> 8) % 250}.{(r >> 5) % 250}"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{us:06d}Z"
    if r % 50 == 0:
        mode = "monitor" if r % 200 == 0 else "block"
        action, rcode, rname, ede = mode, (0 if mode == "monitor" else 3), \
            ("NOERROR" if mode == "monitor" else "NXDOMAIN"), ("null" if mode == "monitor" else "15")
        qname = f"x{r % 97}.bad{r % 500}.evil.example"
        rule = (f'{{"kind":"category","category":"malware","mode":"{mode}",'
                f'"matched":"bad{r % 500}.evil.example","list_id":null,'
                f'"feed_id":"7d0c4b2a-1e3f-4a5b-8c6d-9e0f1a2b3c4d"}}')
        up, lat, hit = "null", "null", "false"
    else:
        action, rcode, rname, ede, rule = "allow", 0, "NOERROR", "null", "null"
        qname = f"www{r % 3}.site{(r >> 20) % 100000}.example"
        hit = "true" if r & 1 else "false"
        up, lat = ("null", "null") if r & 1 else ('"192.0.2.53:53"', str(200 + r % 20000))
    buf.append(f'{i % 997}\t{{"v":1,"event_id":"{eid}","ts":"{stamp}","node":"res{i % 4}",'
               f'"tenant_id":"{t}","client_ip":"{client}","client_pseudonym":null,'
               f'"client_port":{1024 + r % 60000},"transport":"udp","qname":"{qname}",'
               f'"qtype":1,"qtype_name":"A","rcode":{rcode},"rcode_name":"{rname}",'
               f'"action":"{action}","rule":{rule},"ede":{ede},"cache_hit":{hit},'
               f'"upstream":{up},"upstream_latency_us":{lat},"snapshot":4211}}\n')
    if len(buf) == 10000:
        out.write("".join(buf))
        buf.clear()
out.write("".join(buf))
