"""Clients for the end-to-end tests: the portal API over HTTP, the resolver nodes over DNS from
chosen loopback sources, the query log in PostgreSQL, and the platform's processes."""
import json
import shlex
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import dns.edns
import dns.message
import dns.query
import dns.rcode
import psycopg2


def read_env(path):
    """The KEY='value' lines of an env file that the scripts write."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            out[key] = shlex.split(value)[0] if value else ""
    return out


class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class Api:
    """One caller of the portal API with one bearer token."""

    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, expect=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        parsed = json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw
        if expect is not None and status != expect:
            raise ApiError(status, parsed)
        if expect is None and status >= 400:
            raise ApiError(status, parsed)
        return parsed

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body, **kw):
        return self.call("PATCH", path, body, **kw)


class Platform:
    """The running platform: env of the stack and of the platform, drills on its processes."""

    def __init__(self, script, env):
        self.script = script
        self.proc_env = env
        self.dir = Path(env["AEGIS_PLATFORM_DIR"])
        self.stack_env = read_env(Path(env["AEGIS_STACK_DIR"]) / "env")
        self.bin = Path(env.get("AEGIS_BIN") or Path(script).resolve().parents[1] / "build/bin")

    @property
    def env(self):
        return read_env(self.dir / "env")

    def admin_key(self):
        return (self.dir / "admin.key").read_text().strip()

    def logs(self):
        out = []
        for log in sorted(self.dir.glob("*.log")):
            out.append(f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-30:]))
        return "\n".join(out)

    def control(self, action, daemon):
        r = subprocess.run(["bash", str(self.script), action, daemon], env=self.proc_env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr

    def tenantd(self, *args):
        """An aegis-tenantd command against the platform's database, as an operator runs it."""
        r = subprocess.run([str(self.bin / "aegis-tenantd"), "-c", str(self.dir / "tenantd.conf"),
                            *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def nodes(self):
        e = self.env
        return [e["AEGIS_RES1"], e["AEGIS_RES2"]]

    def db(self):
        conn = psycopg2.connect(self.env["AEGIS_PLATFORM_DSN"])
        conn.autocommit = True
        return conn


def ask(node, name, source, rdtype="A", timeout=2.0):
    host, port = node.rsplit(":", 1)
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    return dns.query.udp(q, host, port=int(port), source=source, timeout=timeout)


def ede_of(answer):
    for opt in answer.options:
        if opt.otype == dns.edns.EDE:
            return opt.code, opt.text
    return None


def until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate until it returns a true value; returns (value, seconds taken)."""
    start = time.monotonic()
    while True:
        value = predicate()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(interval)
