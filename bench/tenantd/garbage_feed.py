#!/usr/bin/python3
"""garbage_feed.py -- a plain-format feed file with a known share of invalid lines, for the
feed-refresh measurement of bench/tenantd/run.sh (standard library only).

  garbage_feed.py OUT.txt --lines 1000000 --invalid-share 0.10 [--valid-out VALID.txt]

Exactly round(lines * share) lines are invalid, at random positions; the rest are distinct
valid names (after normalisation), mostly bare names with some of the other forms a plain list
allows (upper case, trailing dot, "*.name", "||name^", a trailing comment). Each invalid line
is one of the kinds docs/feeds.md calls invalid for plain lists, in turn:

  two words ("0.0.0.0 name", a hosts line in a plain list), a character outside [a-z0-9_-],
  an empty label, a last label of digits only (an IPv4 address), a label over 63 bytes,
  a name over 253 bytes, a U-label (non-ASCII), a URL whose port is not a number.

--valid-out writes the normalised valid names, one per line, for the COPY peer.
Prints "lines valid invalid" as JSON.
"""
import argparse
import json
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--invalid-share", type=float, default=0.10)
    ap.add_argument("--valid-out")
    ap.add_argument("--seed", type=int, default=10)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    ninvalid = round(a.lines * a.invalid_share)
    bad_at = set(rnd.sample(range(a.lines), ninvalid))
    kinds = [
        lambda i: "0.0.0.0 hostline-%d.example" % i,
        lambda i: "bad!char-%d.example" % i,
        lambda i: "empty..label-%d.example" % i,
        lambda i: "10.%d.%d.%d" % (i % 256, (i // 256) % 256, 1 + i % 200),
        lambda i: "%s-%d.example" % ("x" * 64, i),
        lambda i: ".".join(["l%d" % i] + ["abcdefghij" * 6] * 4) + ".example",
        lambda i: "\u00fcmlaut-%d.example" % i,
        lambda i: "http://badport-%d.example:80%s/" % (i, "abcdefgh"[i % 8]),
    ]
    valid = invalid = 0
    vout = open(a.valid_out, "w") if a.valid_out else None
    with open(a.out, "w", encoding="utf-8") as f:
        for i in range(a.lines):
            if i in bad_at:
                f.write(kinds[invalid % len(kinds)](i) + "\n")
                invalid += 1
                continue
            name = "host%d.%s-%x.example" % (i % 97, rnd.choice(["mal", "phish", "c2", "spam"]), i)
            form = rnd.random()
            if form < 0.85:
                line = name
            elif form < 0.90:
                line = name.upper() + "."
            elif form < 0.94:
                line = "*." + name
            elif form < 0.98:
                line = "||%s^" % name
            else:
                line = "%s # seen in campaign %d" % (name, i % 13)
            f.write(line + "\n")
            if vout:
                vout.write(name + "\n")
            valid += 1
    if vout:
        vout.close()
    print(json.dumps({"lines": a.lines, "valid": valid, "invalid": invalid}))


if __name__ == "__main__":
    main()
