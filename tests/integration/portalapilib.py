"""Running aegis-portal-api for black-box tests: a migrated database, the daemon on a free
loopback port, and an HTTP client (urllib) that records every answer so the OpenAPI test can
hold each one to the document."""
import base64
import hashlib
import hmac
import json
import re
import secrets
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request

import psycopg2

from conftest import BIN, ROOT, env, write_config

OPENAPI = ROOT / "portal-api" / "openapi.json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_database():
    """A fresh database owned by aegis, migrated by aegis-tenantd; returns (name, dsn)."""
    name = "aegis_p_" + secrets.token_hex(6)
    admin = psycopg2.connect(env("AEGIS_PG_ADMIN_DSN"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" OWNER aegis')
    admin.close()
    base = env("AEGIS_PG_DSN")
    dsn = " ".join(p for p in base.split() if not p.startswith("dbname=")) + f" dbname={name}"
    return name, dsn


def drop_database(name):
    admin = psycopg2.connect(env("AEGIS_PG_ADMIN_DSN"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def superuser_conn(dbname):
    """A superuser connection to one test database (to tamper with what the API guards)."""
    dsn = " ".join(p for p in env("AEGIS_PG_ADMIN_DSN").split() if not p.startswith("dbname="))
    conn = psycopg2.connect(dsn + f" dbname={dbname}")
    conn.autocommit = True
    return conn


def migrate(tmp, dsn):
    conf = write_config(tmp / "tenantd.conf", f"""
database: {{ dsn = "{dsn}"; }};
migrations: {{ dir = "{ROOT / 'migrations'}"; }};
snapshot: {{ dir = "{tmp / 'snapshots'}"; }};
""")
    r = subprocess.run([str(BIN / "aegis-tenantd"), "-c", str(conf), "migrate"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def portal_config(tmp, dsn, port, totp_key_file=None, rates=(100000, 100000)):
    totp = f'totp_key_file = "{totp_key_file}";' if totp_key_file else ""
    return write_config(tmp / f"portal-{port}.conf", f"""
database: {{ dsn = "{dsn}"; pool_size = 4; }};
http: {{ listen = "127.0.0.1:{port}"; threads = 2; max_body_bytes = 65536;
        max_import_bytes = 1048576;
        rate_per_address = {rates[0]}; burst_per_address = {rates[0]};
        rate_per_principal = {rates[1]}; burst_per_principal = {rates[1]}; }};
auth: {{ scrypt_ln = 12; lockout_failures = 3; lockout_seconds = 600; {totp} }};
""")


def portal_cmd(conf, *args, stdin=None):
    return subprocess.run([str(BIN / "aegis-portal-api"), "-c", str(conf), *map(str, args)],
                          capture_output=True, text=True, timeout=60, input=stdin)


def hash_password(password):
    r = subprocess.run([str(BIN / "aegis-portal-api"), "hash-password", "12"],
                       capture_output=True, text=True, timeout=60, input=password + "\n")
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


class Portal:
    """The daemon as a process on a free loopback port."""

    def __init__(self, conf, port):
        self.conf, self.port = conf, port
        self.proc = None
        self.log = None

    def start(self):
        self.log = open(str(self.conf) + ".log", "w")
        self.proc = subprocess.Popen([str(BIN / "aegis-portal-api"), "-c", str(self.conf)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, open(str(self.conf) + ".log").read()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("aegis-portal-api did not listen")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(timeout=20)
            finally:
                self.log.close()
        return self.proc.returncode if self.proc else 0


class Answer:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        ctype = headers.get("Content-Type", "")
        self.json = json.loads(raw) if raw and ctype.startswith("application/json") else None

    @property
    def error(self):
        return (self.json or {}).get("error", {})

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


class Client:
    """Plain urllib over HTTP/1.1; every answer is kept in `seen` with its route pattern."""

    seen = []

    def __init__(self, port, token=None, source=None):
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(self, method, path, body=None, ctype=None, headers=None, raw=None):
        h = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if ctype:
            h["Content-Type"] = ctype
        if self.token:
            h.setdefault("Authorization", f"Bearer {self.token}")
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                ans = Answer(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            ans = Answer(e.code, e.headers, e.read())
        Client.seen.append((method, path.split("?")[0], ans))
        return ans

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body=body, **kw)

    def put(self, path, **kw):
        return self.call("PUT", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def totp(secret_b32, at=None, step=30):
    """RFC 6238 code for a base32 secret, as an authenticator app computes it."""
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    counter = int((time.time() if at is None else at) // step)
    mac = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    off = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF) % 1000000)


def route_of(doc_paths, path):
    """The documented path template that a concrete path matches, or None."""
    for template in doc_paths:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    return None
