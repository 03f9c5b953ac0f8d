"""aegis-portal-api over HTTP against a real PostgreSQL: authentication, role scoping, field
errors, network overlap rules, the audit chain, NOTIFY to tenantd, lists, and the OpenAPI
document as the contract every answer is held to."""
import json
import os
import random
import select
import signal
import subprocess
import time
import urllib.parse
import uuid

import jsonschema
import psycopg2
import pytest

from conftest import BIN
from portalapilib import (OPENAPI, Client, Portal, free_port, hash_password, migrate,
                          new_database, drop_database, portal_cmd, portal_config, route_of,
                          superuser_conn, totp)


class World:
    pass


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """One database and one daemon for the module, with a ministry, a school and a hospital
    below it, and a key for each role."""
    tmp = tmp_path_factory.mktemp("portal")
    name, dsn = new_database()
    x = World()
    x.tmp, x.dbname, x.dsn = tmp, name, dsn
    try:
        migrate(tmp, dsn)
        x.port = free_port()
        (tmp / "totp.key").write_text("ab" * 32 + "\n")
        x.conf = portal_config(tmp, dsn, x.port, totp_key_file=tmp / "totp.key")
        r = portal_cmd(x.conf, "bootstrap-key", "first admin")
        assert r.returncode == 0, r.stderr
        x.ministry_key = r.stdout.strip()
        again = portal_cmd(x.conf, "bootstrap-key", "second")
        assert again.returncode != 0 and "live" in again.stderr
        x.portal = Portal(x.conf, x.port).start()
        x.admin = Client(x.port, x.ministry_key)
        x.anon = Client(x.port)
        x.db = psycopg2.connect(dsn)
        x.db.autocommit = True

        def tenant(body):
            a = x.admin.post("/v1/tenants", body)
            assert a.status == 201, a
            return a.json["id"]
        x.ministry = tenant({"kind": "ministry", "name": "Ministry of Health", "slug": "ministry",
                             "networks": [{"cidr": "10.0.0.0/8", "description": "national"}]})
        x.school = tenant({"kind": "school", "name": "School One", "slug": "school-1",
                           "parent_id": x.ministry,
                           "contacts": [{"name": "IT desk", "email": "it@school.example"}],
                           "networks": [{"cidr": "10.1.0.0/16"}]})
        x.hospital = tenant({"kind": "hospital", "name": "Hospital One", "slug": "hospital-1",
                             "parent_id": x.ministry, "networks": [{"cidr": "10.2.0.0/16"},
                                                                   {"cidr": "2001:db8:2::/48"}]})
        x.annex = tenant({"kind": "school", "name": "School Annex", "slug": "school-1-annex",
                          "parent_id": x.school})

        def key(role, tenant=None):
            a = x.admin.post("/v1/api-keys", {"name": f"{role} key", "role": role,
                                              "tenant_id": tenant, "expires_in_days": 7})
            assert a.status == 201, a
            assert a.json["key"].startswith("ak." + a.json["prefix"] + ".")
            return Client(x.port, a.json["key"]), a.json["id"]
        x.school_admin, _ = key("tenant_admin", x.school)
        x.hospital_admin, _ = key("tenant_admin", x.hospital)
        x.school_soc, _ = key("soc_analyst", x.school)
        x.auditor, _ = key("auditor")
        x.school_auditor, _ = key("auditor", x.school)
        yield x
    finally:
        if getattr(x, "portal", None):
            assert x.portal.stop() == 0
        if getattr(x, "db", None):
            x.db.close()
        drop_database(name)


def sql(w, query, *params):
    with w.db.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


# ---- service routes and HTTP-level refusals ----

def test_health_metrics_and_document_need_no_token(w):
    assert w.anon.get("/v1/health").json["status"] == "ok"
    m = w.anon.get("/metrics")
    assert m.status == 200 and b"aegis_portal_requests_total" in m.raw
    doc = w.anon.get("/v1/openapi.json")
    assert doc.status == 200 and doc.json == json.loads(OPENAPI.read_text()), \
        "the served document is the repository's (rebuild after editing openapi.json)"


def test_http_refusals_are_json_errors(w):
    a = w.admin.get("/v1/nothing-here")
    assert a.status == 404 and a.error["code"] == "not_found"
    a = w.admin.call("PUT", "/v1/tenants")
    assert a.status == 405 and "GET" in a.headers["Allow"] and "POST" in a.headers["Allow"]
    a = w.admin.get("/v1/tenants/not-a-uuid")
    assert a.status == 404
    a = w.admin.post("/v1/tenants", raw=b"{}", ctype="text/plain")
    assert a.status == 415 and a.error["field"] == "Content-Type"
    a = w.admin.post("/v1/tenants", raw=b'{"kind": ', ctype="application/json")
    assert a.status == 400 and a.error["code"] == "invalid_json"
    a = w.admin.post("/v1/tenants", raw=b'[1, 2]', ctype="application/json")
    assert a.status == 400 and a.error["code"] == "invalid_json"
    a = w.admin.post("/v1/tenants", raw=b'{"name": "a", "name": "b"}', ctype="application/json")
    assert a.status == 400, "duplicate keys are refused, not silently merged"
    big = b'{"notes": "' + b"x" * 70000 + b'"}'
    a = w.admin.post("/v1/tenants", raw=big, ctype="application/json")
    assert a.status == 413 and a.error["code"] == "body_too_large"
    a = w.admin.get("/v1/tenants?limit=0")
    assert a.status == 400 and a.error["field"] == "limit"


def test_sighup_keeps_serving(w):
    w.portal.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload_partial" not in open(str(w.conf) + ".log").read():
        assert time.monotonic() < deadline, "no reload logged"
        time.sleep(0.05)
    assert w.admin.get("/v1/me").status == 200


def test_database_unreachable_answers_503_json(w, tmp_path):
    port = free_port()
    conf = portal_config(tmp_path, "host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2",
                         port)
    p = Portal(conf, port).start()
    try:
        a = Client(port).get("/v1/health")
        assert a.status == 503 and a.error["code"] == "database_unavailable"
        a = Client(port, w.ministry_key).get("/v1/tenants")
        assert a.status == 503 and a.error["code"] == "database_unavailable"
    finally:
        assert p.stop() == 0


def test_lost_database_connections_answer_503_then_recover(w):
    assert w.anon.get("/v1/health").status == 200
    su = superuser_conn(w.dbname)
    try:
        with su.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = %s AND application_name = 'aegis-portal-api'",
                        (w.dbname,))
            assert cur.fetchone()[0] >= 1
    finally:
        su.close()
    statuses = []
    for _ in range(12):
        a = w.admin.get("/v1/tenants?limit=1")
        statuses.append(a.status)
        if a.status == 503:
            assert a.error["code"] == "database_unavailable"
    assert statuses[0] == 503, "the first request meets a dead connection and says so"
    assert set(statuses) <= {200, 503} and statuses[-1] == 200, statuses
    assert statuses.count(503) <= 4, "each dead pooled connection fails once, then is replaced"


def test_plain_http_off_loopback_needs_explicit_permission(w, tmp_path):
    port = free_port()
    conf = portal_config(tmp_path, w.dsn, port).read_text().replace(
        f'"127.0.0.1:{port}"', f'"0.0.0.0:{port}"')
    path = tmp_path / "wild.conf"
    path.write_text(conf)
    r = subprocess.run([str(BIN / "aegis-portal-api"), "-c", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "allow_plain_non_loopback" in r.stderr
    path.write_text(conf.replace("threads = 2;", "threads = 2; allow_plain_non_loopback = true;"))
    p = Portal(path, port).start()
    try:
        assert Client(port).get("/v1/health").status == 200
    finally:
        assert p.stop() == 0


def test_rate_limits_per_address_and_per_key(w, tmp_path):
    port = free_port()
    p = Portal(portal_config(tmp_path, w.dsn, port, rates=(12, 4)), port).start()
    try:
        key = Client(port, w.ministry_key)
        got = [key.get("/v1/me").status for _ in range(6)]
        assert got[:4] == [200] * 4 and got[4] == 429, got
        a = key.get("/v1/me")
        assert a.error["code"] == "rate_limited" and int(a.headers["Retry-After"]) >= 1
        other = Client(port, w.auditor.token)
        assert other.get("/v1/me").status == 200, "another key has its own bucket"
        anon = Client(port)
        statuses = [anon.get("/v1/health").status for _ in range(12)]
        assert 429 in statuses, "the address is limited too, before any token is checked"
    finally:
        assert p.stop() == 0


def test_tls_served_directly(w, tmp_path):
    import ssl
    import urllib.request
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    port = free_port()
    conf = portal_config(tmp_path, w.dsn, port)
    conf.write_text(conf.read_text().replace(f'"127.0.0.1:{port}"', f'"0.0.0.0:{port}"') +
        f'tls: {{ cert_file = "{cert}"; key_file = "{key}"; }};\n')
    p = Portal(conf, port).start()
    try:
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/v1/health", context=ctx,
                                    timeout=10) as resp:
            assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=5).read()
    finally:
        assert p.stop() == 0


# ---- authentication ----

def unauthenticated(a):
    return (a.status == 401 and a.error["code"] == "unauthenticated"
            and a.headers["WWW-Authenticate"].startswith("Bearer"))


def test_authentication_failures_all_look_alike(w):
    assert unauthenticated(w.anon.get("/v1/tenants"))
    assert unauthenticated(w.anon.get("/v1/tenants", headers={"Authorization": "Basic eDp5"}))
    assert unauthenticated(Client(w.port, "ak.nonsense").get("/v1/tenants"))
    forged = w.ministry_key[:-4] + ("AAAA" if not w.ministry_key.endswith("AAAA") else "BBBB")
    assert unauthenticated(Client(w.port, forged).get("/v1/tenants")), "right prefix, bad secret"

    created = w.admin.post("/v1/api-keys", {"name": "short-lived", "role": "auditor"})
    key = Client(w.port, created.json["key"])
    assert key.get("/v1/audit").status == 200
    sql(w, "UPDATE api_keys SET created_at = now() - interval '2 days',"
           " expires_at = now() - interval '1 day' WHERE id = %s", created.json["id"])
    assert unauthenticated(key.get("/v1/audit")), "expired"

    created = w.admin.post("/v1/api-keys", {"name": "to revoke", "role": "auditor"})
    key = Client(w.port, created.json["key"])
    assert key.get("/v1/audit").status == 200
    assert w.admin.delete(f"/v1/api-keys/{created.json['id']}").status == 204
    assert unauthenticated(key.get("/v1/audit")), "revoked"
    listed = {k["id"]: k for k in w.admin.get("/v1/api-keys").json["items"]}
    assert listed[created.json["id"]]["revoked_at"] is not None
    assert all("key" not in k for k in listed.values()), "the secret is never listed"
    hashes = sql(w, "SELECT count(*) FROM api_keys WHERE encode(key_hash, 'hex') = %s",
                 created.json["key"])
    assert hashes[0][0] == 0


def make_user(w, email, password, role, tenant=None):
    uid = sql(w, "INSERT INTO users (email, password_hash) VALUES (%s, %s) RETURNING id",
              email, hash_password(password))[0][0]
    sql(w, "INSERT INTO role_grants (user_id, role, tenant_id) VALUES (%s, %s, %s)",
        uid, role, tenant)
    return uid


def test_login_session_lockout_and_logout(w):
    uid = make_user(w, "admin@school.example", "correct horse battery", "tenant_admin", w.school)
    bad = {"email": "admin@school.example", "password": "wrong password!"}
    for _ in range(3):
        a = w.anon.post("/v1/auth/login", bad)
        assert a.status == 401 and a.error["code"] == "invalid_credentials"
    a = w.anon.post("/v1/auth/login", {"email": "Admin@School.example",
                                       "password": "correct horse battery"})
    assert a.status == 429 and a.error["code"] == "locked_out" and int(a.headers["Retry-After"]) > 0
    assert sql(w, "SELECT failed_logins, locked_until > now() FROM users WHERE id = %s",
               uid)[0] == (3, True)
    sql(w, "UPDATE users SET locked_until = now() - interval '1 second' WHERE id = %s", uid)
    a = w.anon.post("/v1/auth/login", {"email": "Admin@School.example",
                                       "password": "correct horse battery"})
    assert a.status == 200, a
    assert a.json["token"].startswith("as.")
    assert sql(w, "SELECT failed_logins FROM users WHERE id = %s", uid)[0][0] == 0
    me = Client(w.port, a.json["token"])
    who = me.get("/v1/me").json
    assert who["type"] == "user" and who["roles"] == ["tenant_admin"]
    assert who["grants"] == [{"role": "tenant_admin", "tenant_id": w.school}]
    assert me.get(f"/v1/tenants/{w.hospital}").status == 404
    assert me.get(f"/v1/tenants/{w.annex}").status == 200
    unknown = w.anon.post("/v1/auth/login", {"email": "nobody@x.example", "password": "whatever!"})
    assert unknown.status == 401 and unknown.error["code"] == "invalid_credentials"
    assert me.post("/v1/auth/logout").status == 204
    assert unauthenticated(me.get("/v1/me"))
    actions = [r[0] for r in sql(w, "SELECT action FROM audit_log WHERE details->>'email' ="
                                    " 'admin@school.example' OR actor_id = %s ORDER BY id", uid)]
    assert actions.count("auth.login_failed") >= 4 and "auth.login" in actions
    assert "auth.logout" in actions


def test_expired_session_is_refused(w):
    make_user(w, "soc@ministry.example", "a long soc password", "soc_analyst")
    a = w.anon.post("/v1/auth/login", {"email": "soc@ministry.example",
                                       "password": "a long soc password"})
    assert a.status == 200
    s = Client(w.port, a.json["token"])
    assert s.get("/v1/me").status == 200
    sql(w, "UPDATE sessions SET created_at = now() - interval '2 hours',"
           " expires_at = now() - interval '1 hour' WHERE id = %s", a.json["session_id"])
    assert unauthenticated(s.get("/v1/me"))


def test_totp_enrolment_and_second_factor(w):
    make_user(w, "auditor@ministry.example", "an auditor's password", "auditor")
    login = {"email": "auditor@ministry.example", "password": "an auditor's password"}
    s = Client(w.port, w.anon.post("/v1/auth/login", login).json["token"])
    e = s.post("/v1/me/totp")
    assert e.status == 200 and e.json["otpauth_uri"].startswith("otpauth://totp/")
    secret = e.json["secret"]
    sealed = sql(w, "SELECT octet_length(totp_secret_enc), position(%s::bytea in totp_secret_enc)"
                    " FROM users WHERE email = 'auditor@ministry.example'", secret)[0]
    assert sealed[0] > 20 and sealed[1] == 0, "the secret is stored sealed"
    assert s.post("/v1/me/totp/confirm", {"code": "000000" if totp(secret) != "000000"
                                          else "111111"}).status == 422
    assert s.post("/v1/me/totp/confirm", {"code": totp(secret)}).status == 204

    a = w.anon.post("/v1/auth/login", login)
    assert a.status == 401 and a.error["code"] == "totp_required"
    # A code of the next step is also accepted (clock drift), and not replayable afterwards.
    code = totp(secret, at=time.time() + 30)
    a = w.anon.post("/v1/auth/login", dict(login, totp_code=code))
    assert a.status == 200, a
    a = w.anon.post("/v1/auth/login", dict(login, totp_code=code))
    assert a.status == 401 and a.error["field"] == "totp_code", "a code is used once"
    assert w.anon.post("/v1/auth/login", dict(login, totp_code="12345x")).status == 422

    # A lost second factor: an administrator resets it, the password alone works again.
    uid = s.get("/v1/me").json["id"]
    assert w.admin.patch(f"/v1/users/{uid}", {"reset_totp": True}).json["totp_enabled"] is False
    assert w.anon.post("/v1/auth/login", login).status == 200


def test_users_see_and_end_their_own_sessions(w):
    make_user(w, "nurse@hospital.example", "the nurse's password", "soc_analyst", w.hospital)
    login = {"email": "nurse@hospital.example", "password": "the nurse's password"}
    one = Client(w.port, w.anon.post("/v1/auth/login", login).json["token"])
    two = w.anon.post("/v1/auth/login", login).json
    listed = one.get("/v1/me/sessions").json["items"]
    assert len(listed) == 2 and sum(x["current"] for x in listed) == 1
    assert all(x["client_ip"] == "127.0.0.1" for x in listed)
    assert w.school_soc.get("/v1/me/sessions").status == 409, "an API key has no sessions"
    other_user = make_user(w, "other@hospital.example", "another long password", "auditor")
    assert other_user
    assert one.delete(f"/v1/me/sessions/{two['session_id']}").status == 204
    assert unauthenticated(Client(w.port, two["token"]).get("/v1/me"))
    assert one.delete(f"/v1/me/sessions/{two['session_id']}").status == 404
    assert len(one.get("/v1/me/sessions").json["items"]) == 1


def test_api_key_issuing_cannot_escalate(w):
    a = w.school_admin.post("/v1/api-keys", {"name": "x", "role": "ministry_admin"})
    assert a.status == 403
    a = w.school_admin.post("/v1/api-keys", {"name": "x", "role": "auditor"})
    assert a.status == 403, "a tenant admin issues no global key"
    a = w.school_admin.post("/v1/api-keys", {"name": "x", "role": "soc_analyst",
                                             "tenant_id": w.hospital})
    assert a.status == 422 and a.error["field"] == "tenant_id"
    a = w.school_admin.post("/v1/api-keys", {"name": "annex soc", "role": "soc_analyst",
                                             "tenant_id": w.annex})
    assert a.status == 201
    assert a.json["id"] in {k["id"] for k in w.school_admin.get("/v1/api-keys").json["items"]}
    assert a.json["id"] not in {k["id"] for k in w.hospital_admin.get("/v1/api-keys").json["items"]}
    assert w.hospital_admin.delete(f"/v1/api-keys/{a.json['id']}").status == 404


def test_user_management_stays_within_reach(w):
    a = w.school_admin.post("/v1/users", {"email": "Teacher@School.example",
                                          "password": "a teacher's password",
                                          "grants": [{"role": "soc_analyst", "tenant_id": w.annex}]})
    assert a.status == 201, a
    uid = a.json["id"]
    assert a.json["email"] == "teacher@school.example" and "password_hash" not in a.raw.decode()
    assert a.json["grants"] == [{"role": "soc_analyst", "tenant_id": w.annex}]
    login = w.anon.post("/v1/auth/login", {"email": "teacher@school.example",
                                           "password": "a teacher's password"})
    assert login.status == 200
    s = Client(w.port, login.json["token"])
    assert s.get(f"/v1/tenants/{w.annex}").status == 200

    for body, status, field in (
            ({"email": "x@y.example", "grants": [{"role": "ministry_admin"}]}, 403, "grants[0].role"),
            ({"email": "x@y.example", "grants": [{"role": "auditor"}]}, 403, "grants[0].role"),
            ({"email": "x@y.example", "grants": [{"role": "auditor", "tenant_id": w.hospital}]},
             422, "grants[0].tenant_id"),
            ({"email": "x@y.example", "grants": [{"role": "tenant_admin"}]}, 422,
             "grants[0].tenant_id"),
            ({"email": "x@y.example", "grants": [{"role": "ministry_admin",
                                                  "tenant_id": w.school}]}, 422,
             "grants[0].tenant_id"),
            ({"email": "x@y.example", "password": "short", "grants": []}, 422, "password"),
            ({"email": "not-an-address", "grants": []}, 422, "email"),
            ({"email": "teacher@school.example",
              "grants": [{"role": "auditor", "tenant_id": w.school}]}, 409, "email")):
        a = w.school_admin.post("/v1/users", body)
        assert (a.status, a.error.get("field")) == (status, field), (body, a)

    emails = {u["email"] for u in w.school_admin.get("/v1/users").json["items"]}
    assert "teacher@school.example" in emails and "soc@ministry.example" not in emails
    assert w.hospital_admin.get(f"/v1/users/{uid}").status == 404
    assert w.school_soc.get("/v1/users").status == 403

    got = w.school_admin.get(f"/v1/users/{uid}")
    a = w.school_admin.patch(f"/v1/users/{uid}", {"grants": [{"role": "auditor",
                                                              "tenant_id": w.school}]},
                             headers={"If-Match": got.headers["ETag"]})
    assert a.status == 200 and a.json["grants"] == [{"role": "auditor", "tenant_id": w.school}]
    assert a.headers["ETag"] != got.headers["ETag"]
    assert s.get(f"/v1/tenants/{w.annex}").status == 200, "an auditor of the school sees the annex"
    assert s.get(f"/v1/tenants/{w.annex}/policy").status == 403
    a = w.school_admin.patch(f"/v1/users/{uid}", {"disabled": True})
    assert a.status == 200 and a.json["disabled"] is True
    assert unauthenticated(s.get("/v1/me")), "disabling ends the sessions"
    a = w.admin.patch(f"/v1/users/{uid}", {"disabled": False, "password": "a brand new password"})
    assert a.status == 200
    assert w.anon.post("/v1/auth/login", {"email": "teacher@school.example",
                                          "password": "a brand new password"}).status == 200
    row = w.auditor.get(f"/v1/audit?action=user.update&target_id={uid}").json["items"][0]
    assert row["details"] == {"password_changed": True}
    assert "$scrypt$" not in json.dumps(row) and "brand new" not in json.dumps(row)


# ---- authorisation matrix: every role x endpoint x own / child / other tenant ----

# (method, path template, body) and the expected status per caller for each target tenant.
# {t} is the target tenant; callers: ministry (global), school admin, school SOC analyst,
# global auditor, school auditor. Targets: own = school, child = annex, other = hospital.
OK_READ = {"ministry": 200, "admin": 200, "soc": 200, "auditor": 403, "school_auditor": 403}
MATRIX = [
    ("GET", "/v1/tenants/{t}", None,
     {"own": {"ministry": 200, "admin": 200, "soc": 200, "auditor": 200, "school_auditor": 200},
      "child": {"ministry": 200, "admin": 200, "soc": 200, "auditor": 200, "school_auditor": 200},
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 200, "school_auditor": 404}}),
    ("GET", "/v1/tenants/{t}/policy", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("GET", "/v1/tenants/{t}/networks", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("GET", "/v1/tenants/{t}/lists", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("PATCH", "/v1/tenants/{t}/policy", {"ede_contact": "call the helpdesk"},
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("PATCH", "/v1/tenants/{t}", {"notes": "checked"},
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("POST", "/v1/tenants/{t}/lists", "list",
     {k: {"ministry": 201, "admin": 404 if k == "other" else 201, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("GET", "/v1/querylog?tenant_id={t}", None,
     {k: {"ministry": 200, "admin": 403, "soc": 404 if k == "other" else 200, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("GET", "/v1/reports/timeseries?tenant_id={t}", None,
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200,
          "soc": 404 if k == "other" else 200, "auditor": 403, "school_auditor": 403}
      for k in ("own", "child", "other")}),
    ("GET", "/v1/reports/top-clients?tenant_id={t}", None,
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200,
          "soc": 404 if k == "other" else 200, "auditor": 403, "school_auditor": 403}
      for k in ("own", "child", "other")}),
    ("GET", "/v1/audit?tenant_id={t}", None,
     {k: {"ministry": 200, "admin": 403, "soc": 403, "auditor": 200, "school_auditor": 200}
      for k in ("own", "child", "other")}),
    ("POST", "/v1/tenants/{t}/policy/preview", {"days": 1},
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("GET", "/v1/networks/{n}", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("PATCH", "/v1/networks/{n}", {"description": "matrix"},
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("GET", "/v1/lists/{l}", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("GET", "/v1/lists/{l}/entries", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("GET", "/v1/lists/{l}/export", None,
     {"own": OK_READ, "child": OK_READ,
      "other": {"ministry": 200, "admin": 404, "soc": 404, "auditor": 403, "school_auditor": 403}}),
    ("POST", "/v1/lists/{l}/entries", "entry",
     {k: {"ministry": 201, "admin": 404 if k == "other" else 201, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("PATCH", "/v1/lists/{l}", {"description": "matrix"},
     {k: {"ministry": 200, "admin": 404 if k == "other" else 200, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("DELETE", "/v1/networks/{fresh_n}", None,
     {k: {"ministry": 204, "admin": 404 if k == "other" else 204, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("DELETE", "/v1/lists/{fresh_l}", None,
     {k: {"ministry": 204, "admin": 404 if k == "other" else 204, "soc": 403, "auditor": 403,
          "school_auditor": 403} for k in ("own", "child", "other")}),
    ("DELETE", "/v1/tenants/{t}", None,
     {k: {"ministry": None, "admin": 403, "soc": 403, "auditor": 403, "school_auditor": 403}
      for k in ("own", "child", "other")}),
]
GLOBAL = [
    ("GET", "/v1/tenants", {"ministry": 200, "admin": 200, "soc": 200, "auditor": 200,
                            "school_auditor": 200}),
    ("GET", "/v1/audit", {"ministry": 200, "admin": 403, "soc": 403, "auditor": 200,
                          "school_auditor": 200}),
    ("GET", "/v1/audit/verify", {"ministry": 200, "admin": 403, "soc": 403, "auditor": 200,
                                 "school_auditor": 403}),
    ("GET", "/v1/feeds", {"ministry": 200, "admin": 403, "soc": 403, "auditor": 403,
                          "school_auditor": 403}),
    ("GET", "/v1/nodes", {"ministry": 200, "admin": 403, "soc": 403, "auditor": 403,
                          "school_auditor": 403}),
    ("GET", "/v1/national-lists", {"ministry": 200, "admin": 200, "soc": 200, "auditor": 403,
                                   "school_auditor": 403}),
    ("GET", "/v1/categories", {"ministry": 200, "admin": 200, "soc": 200, "auditor": 200,
                               "school_auditor": 200}),
    ("GET", "/v1/api-keys", {"ministry": 200, "admin": 200, "soc": 403, "auditor": 403,
                             "school_auditor": 403}),
    ("POST", "/v1/tenants", {"ministry": None, "admin": 403, "soc": 403, "auditor": 403,
                             "school_auditor": 403}),
]


def test_authorisation_matrix(w):
    callers = {"ministry": w.admin, "admin": w.school_admin, "soc": w.school_soc,
               "auditor": w.auditor, "school_auditor": w.school_auditor}
    targets = {"own": w.school, "child": w.annex, "other": w.hospital}
    prefixes = {"own": "10.1.200.0/24", "child": "10.1.201.0/24", "other": "10.2.200.0/24"}
    nets, lists = {}, {}
    for where, tenant in targets.items():
        nets[where] = w.admin.post(f"/v1/tenants/{tenant}/networks",
                                   {"cidr": prefixes[where]}).json["id"]
        lists[where] = w.admin.post(f"/v1/tenants/{tenant}/lists",
                                    {"kind": "deny", "name": "matrix objects"}).json["id"]
    failures = []
    n = 0
    for method, template, body, expect in MATRIX:
        for where, tenant in targets.items():
            for who, want in expect[where].items():
                if want is None:
                    continue
                b = body
                if body == "list":
                    b = {"kind": "deny", "name": f"matrix {who} {where}"}
                elif body == "entry":
                    b = {"domain": f"{who}.{where}.matrix.example"}
                fresh_n = fresh_l = None
                if "{fresh_n}" in template:   # a destructive call gets its own object
                    third = {"own": "1.21", "child": "1.22", "other": "2.21"}[where]
                    fresh_n = w.admin.post(f"/v1/tenants/{tenant}/networks", {
                        "cidr": f"10.{third}{list(callers).index(who)}.0/24"}).json["id"]
                if "{fresh_l}" in template:
                    fresh_l = w.admin.post(f"/v1/tenants/{tenant}/lists", {
                        "kind": "allow", "name": f"fresh {who} {where}"}).json["id"]
                path = template.format(t=tenant, n=nets[where], l=lists[where],
                                       fresh_n=fresh_n, fresh_l=fresh_l)
                a = callers[who].call(method, path, body=b)
                n += 1
                if a.status != want:
                    failures.append(f"{who} {method} {template} on {where}: {a.status} != {want}")
                if a.status == 404:
                    assert a.error["code"] == "not_found" and "Hospital" not in a.raw.decode()
    for method, path, expect in GLOBAL:
        for who, want in expect.items():
            if want is None:
                continue
            a = callers[who].call(method, path, body={} if method == "POST" else None)
            n += 1
            if a.status != want:
                failures.append(f"{who} {method} {path}: {a.status} != {want}")
    assert not failures, "\n".join(failures)
    assert n > 250
    # What a scoped caller lists is its subtree, not more.
    slugs = {t["slug"] for t in w.school_admin.get("/v1/tenants").json["items"]}
    assert slugs == {"school-1", "school-1-annex"}
    rows = w.school_auditor.get("/v1/audit?limit=1000").json["items"]
    assert rows and {r["tenant_id"] for r in rows} <= {w.school, w.annex}


# ---- bad input: every field named ----

BAD_BODIES = [
    ("/v1/tenants", {"kind": "castle", "name": "x", "slug": "x"}, 422, "kind"),
    ("/v1/tenants", {"kind": "school", "name": "", "slug": "x"}, 422, "name"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "Bad Slug"}, 422, "slug"),
    ("/v1/tenants", {"kind": "school", "name": "x"}, 422, "slug"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x", "parent_id": "nope"}, 422,
     "parent_id"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x", "colour": "red"}, 422, "colour"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "contacts": [{"name": "a"}, {"name": "b", "email": "not-an-address"}]},
     422, "contacts[1].email"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "contacts": [{"name": "a\u0007"}]}, 422, "contacts[0].name"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "networks": [{"cidr": "10.9.0.0/16"}, {"cidr": "10.9.0.1/16"}]},
     422, "networks[1].cidr"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "networks": [{"cidr": "::ffff:10.9.0.0/112"}]}, 422, "networks[0].cidr"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "networks": [{"cidr": "10.0.0.0/4"}]}, 422, "networks[0].cidr"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "x",
                     "networks": [{"cidr": "10.9.0.0/16", "mask": 1}]}, 422, "networks[0].mask"),
    ("/v1/tenants", {"kind": "school", "name": "x", "slug": "ministry"}, 409, "slug"),
    ("/v1/tenants/{school}/policy", {"block_action": "explode"}, 422, "block_action"),
    ("/v1/tenants/{school}/policy", {"block_action": "sinkhole"}, 422, "block_action"),
    ("/v1/tenants/{school}/policy", {"sinkhole_v4": "2001:db8::1"}, 422, "sinkhole_v4"),
    ("/v1/tenants/{school}/policy", {"retention_days": 0}, 422, "retention_days"),
    ("/v1/tenants/{school}/policy", {"log_truncate_v6": 129}, 422, "log_truncate_v6"),
    ("/v1/tenants/{school}/policy", {"safe_search": "yes"}, 422, "safe_search"),
    ("/v1/tenants/{school}/policy", {"ede_contact": "x" * 201}, 422, "ede_contact"),
    ("/v1/tenants/{school}/policy", {"categories": {"adult": "maybe"}}, 422, "categories.adult"),
    ("/v1/tenants/{school}/policy", {"categories": {"knitting": "block"}}, 422,
     "categories.knitting"),
    ("/v1/tenants/{school}/networks", {"cidr": "10.1.2.3"}, 422, "cidr"),
    ("/v1/tenants/{school}/networks", {"cidr": 17}, 422, "cidr"),
    ("/v1/tenants/{school}/lists", {"kind": "block", "name": "x"}, 422, "kind"),
    ("/v1/national-lists", {"kind": "deny", "name": "x"}, 422, "kind"),
    ("/v1/api-keys", {"name": "x", "role": "root"}, 422, "role"),
    ("/v1/api-keys", {"name": "x", "role": "auditor", "expires_in_days": 0}, 422,
     "expires_in_days"),
    ("/v1/auth/login", {"email": "a@b.c"}, 422, "password"),
]


def test_every_bad_field_is_named(w):
    failures = []
    for path, body, status, field in BAD_BODIES:
        path = path.format(school=w.school)
        method = "PATCH" if path.endswith("/policy") else "POST"
        a = w.admin.call(method, path, body=body)
        if a.status != status or a.error.get("field") != field:
            failures.append(f"{method} {path} {body}: {a.status} {a.error}")
    assert not failures, "\n".join(failures)
    assert sql(w, "SELECT count(*) FROM tenants WHERE slug = 'x'")[0][0] == 0, \
        "a refused body changes nothing"


# ---- networks ----

def test_network_overlap_rules(w):
    school_nets = f"/v1/tenants/{w.school}/networks"
    a = w.school_admin.post(school_nets, {"cidr": "10.2.0.0/16"})
    assert a.status == 409 and a.error["code"] == "conflict", "exact duplicate of the hospital's"
    a = w.school_admin.post(school_nets, {"cidr": "10.2.0.0/15"})
    assert a.status == 409 and a.error["code"] == "network_overlap", "covers the hospital's"
    a = w.school_admin.post(school_nets, {"cidr": "10.2.5.0/24"})
    assert a.status == 403 and a.error["code"] == "overlap_needs_ministry_admin"
    assert "10.2.0.0" not in a.raw.decode(), "another tenant's prefix is not disclosed"
    a = w.admin.post(school_nets, {"cidr": "10.2.5.0/24", "description": "school wing"})
    assert a.status == 201 and a.json["cidr"] == "10.2.5.0/24"
    a = w.school_admin.post(school_nets, {"cidr": "10.1.7.0/24"})
    assert a.status == 201, "inside the tenant's own network is fine"
    a = w.school_admin.post(f"/v1/tenants/{w.annex}/networks", {"cidr": "10.1.8.0/24"})
    assert a.status == 403, "the annex is another tenant, even if a child"
    a = w.school_admin.post(f"/v1/tenants/{w.annex}/networks", {"cidr": "2001:db8:99::/48"})
    assert a.status == 201 and a.json["tenant_id"] == w.annex
    nid = a.json["id"]
    assert w.hospital_admin.get(f"/v1/networks/{nid}").status == 404
    assert w.hospital_admin.delete(f"/v1/networks/{nid}").status == 404
    got = w.school_admin.get(f"/v1/networks/{nid}")
    stale = w.school_admin.patch(f"/v1/networks/{nid}", {"description": "v6"},
                                 headers={"If-Match": '"999"'})
    assert stale.status == 412
    ok = w.school_admin.patch(f"/v1/networks/{nid}", {"description": "v6"},
                              headers={"If-Match": got.headers["ETag"]})
    assert ok.status == 200 and ok.headers["ETag"] != got.headers["ETag"]
    assert w.school_admin.delete(f"/v1/networks/{nid}").status == 204
    assert w.school_admin.get(f"/v1/networks/{nid}").status == 404


# ---- policy: tenantd would see the change ----

def test_policy_change_notifies_tenantd_and_bumps_revision(w):
    listener = psycopg2.connect(w.dsn)
    listener.autocommit = True
    try:
        with listener.cursor() as cur:
            cur.execute("LISTEN aegis_policy_changed")
        path = f"/v1/tenants/{w.school}/policy"
        before = w.school_admin.get(path)
        rev = before.json["revision"]
        assert before.json["categories"]["malware"] == {"mode": "block", "kind": "threat",
                                                        "explicit": False}
        a = w.school_admin.patch(path, {"categories": {"adult": "block", "social": "monitor",
                                                       "malware": "default"},
                                        "safe_search": True, "block_action": "sinkhole",
                                        "sinkhole_v4": "192.0.2.10"},
                                 headers={"If-Match": before.headers["ETag"]})
        assert a.status == 200, a
        assert a.json["revision"] > rev and a.json["safe_search"] is True
        assert a.json["categories"]["adult"]["mode"] == "block"
        assert a.json["categories"]["social"] == {"mode": "monitor", "kind": "content",
                                                  "explicit": True}
        assert a.json["sinkhole_v4"] == "192.0.2.10"
        got = set()
        for _ in range(20):
            if select.select([listener], [], [], 0.5)[0]:
                listener.poll()
                got |= {n.payload for n in listener.notifies}
                listener.notifies.clear()
            if {"policies", "policy_categories"} <= got:
                break
        assert {"policies", "policy_categories"} <= got
        stale = w.school_admin.patch(path, {"safe_search": False},
                                     headers={"If-Match": before.headers["ETag"]})
        assert stale.status == 412 and stale.error["code"] == "precondition_failed"
        row = sql(w, "SELECT mode FROM policy_categories_effective WHERE tenant_id = %s"
                     " AND category = 'adult'", w.school)
        assert row == [("block",)], "what tenantd's compiler reads"
        only_cat = w.school_admin.patch(path, {"categories": {"gambling": "block"}})
        assert only_cat.json["revision"] > a.json["revision"], "categories move the ETag too"
    finally:
        listener.close()


def test_policy_preview_counts_what_a_change_would_have_done(w):
    sql(w, "SELECT query_log_ensure_partitions(current_date - 11, 13)")
    rows = [("10.1.4.1", "ads.preview.example", "allow", None, None, None),
            ("10.1.4.2", "x.ads.preview.example", "allow", None, None, None),
            ("10.1.4.2", "x.ads.preview.example", "monitor", "social", None, None),
            ("10.1.4.3", "fun.preview.example", "block", None, "tenant_deny", None),
            ("10.1.4.3", "court.preview.example", "block", None, "national_block", None),
            ("10.1.4.4", "social.preview.example", "monitor", "social", "category", None)]
    for ip, qname, action, category, rule, _ in rows:
        sql(w, "INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, transport, qname,"
               " qtype, rcode, action, category, rule_kind) VALUES (now() - interval '1 hour',"
               " gen_random_uuid(), 'node-1', %s, %s, 'udp', %s, 1, 0, %s, %s, %s)",
            w.school, ip, qname, action, category, rule)
    sql(w, "INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, transport, qname,"
           " qtype, rcode, action) VALUES (now() - interval '10 days', gen_random_uuid(),"
           " 'node-1', %s, '10.1.4.9', 'udp', 'old.ads.preview.example', 1, 0, 'allow')", w.school)
    w.admin.patch(f"/v1/tenants/{w.school}/policy", {"categories": {"social": "monitor"}})
    path = f"/v1/tenants/{w.school}/policy/preview"
    a = w.school_admin.post(path, {"days": 7, "deny": ["ads.preview.example"],
                                   "allow": ["fun.preview.example", "court.preview.example"],
                                   "categories": {"social": "block", "ads": "block"}})
    assert a.status == 200, a
    assert a.json["deny"] == [{"domain": "ads.preview.example", "queries": 3, "clients": 2}]
    assert a.json["allow"] == [{"domain": "fun.preview.example", "queries": 1, "clients": 1},
                               {"domain": "court.preview.example", "queries": 0, "clients": 0}], \
        "a national block stays whatever the tenant allows"
    cats = {c["category"]: c for c in a.json["categories"]}
    assert cats["social"] == {"category": "social", "from": "monitor", "to": "block",
                              "known": True, "queries": 2, "clients": 2}
    assert cats["ads"]["known"] is False, "ads is off: the log holds no trace of it"
    days30 = w.school_admin.post(path, {"days": 30, "deny": ["ads.preview.example"]})
    assert days30.json["deny"][0]["queries"] == 4
    assert w.hospital_admin.post(path, {"deny": ["x.example"]}).status == 404
    assert w.school_soc.post(path, {"deny": ["x.example"]}).status == 403
    bad = w.school_admin.post(path, {"deny": ["ok.example", "not a name"]})
    assert bad.status == 422 and bad.error["field"] == "deny[1]"
    assert w.school_admin.post(path, {"days": 90}).error["field"] == "days"
    assert sql(w, "SELECT count(*) FROM list_entries WHERE domain = 'ads.preview.example'") == [(0,)]


# ---- lists ----

def test_lists_entries_import_and_export(w):
    a = w.school_admin.post(f"/v1/tenants/{w.school}/lists", {"kind": "deny", "name": "Blocked"})
    assert a.status == 201
    lid = a.json["id"]
    assert w.school_admin.post(f"/v1/tenants/{w.school}/lists",
                               {"kind": "allow", "name": "Blocked"}).status == 409
    e = w.school_admin.post(f"/v1/lists/{lid}/entries", {"domain": "Bad.Example.", "comment": "x"})
    assert e.status == 201 and e.json["domain"] == "bad.example"
    assert w.school_admin.post(f"/v1/lists/{lid}/entries", {"domain": "bad.example"}).status == 409
    bad = w.school_admin.post(f"/v1/lists/{lid}/entries", {"domain": "10.0.0.1"})
    assert bad.status == 422 and bad.error["field"] == "domain"
    assert w.hospital_admin.get(f"/v1/lists/{lid}").status == 404
    assert w.hospital_admin.post(f"/v1/lists/{lid}/entries", {"domain": "x.example"}).status == 404

    csv = ('domain,comment\r\n'
           'evil.example,"phishing, reported by ""CERT"""\r\n'
           '*.ads.example,"=HYPERLINK(""x"")"\r\n'
           'evil.example,later comment wins\r\n').encode()
    r = w.school_admin.put(f"/v1/lists/{lid}/entries", raw=csv, ctype="text/csv")
    assert r.status == 200, r
    assert r.json["added"] == 2 and r.json["removed"] == 1 and r.json["total"] == 2
    names = [x["domain"] for x in w.school_admin.get(f"/v1/lists/{lid}/entries").json["items"]]
    assert names == ["ads.example", "evil.example"]
    out = w.school_soc.get(f"/v1/lists/{lid}/export?format=csv")
    assert out.status == 200 and out.headers["Content-Type"].startswith("text/csv")
    text = out.raw.decode()
    assert text.splitlines()[0] == "domain,comment"
    assert "ads.example,\"'=HYPERLINK(\"\"x\"\")\"" in text, "no formula reaches a spreadsheet"
    assert "evil.example,later comment wins" in text
    again = w.school_admin.put(f"/v1/lists/{lid}/entries", raw=out.raw, ctype="text/csv")
    assert again.status == 200 and again.json["total"] == 2 and again.json["added"] == 0

    plain = b"# from the helpdesk\nnew.example\n\nads.example\n"
    r = w.school_admin.put(f"/v1/lists/{lid}/entries?mode=merge", raw=plain, ctype="text/plain")
    assert r.status == 200 and r.json["added"] == 1 and r.json["total"] == 3
    r = w.school_admin.put(f"/v1/lists/{lid}/entries", raw=b"ok.example\nnot a name\n",
                           ctype="text/plain")
    assert r.status == 422 and r.error["field"] == "line 2"
    assert w.school_admin.get(f"/v1/lists/{lid}").json["entry_count"] == 3, "nothing half-done"
    r = w.school_admin.put(f"/v1/lists/{lid}/entries", raw=b'a.example,"open', ctype="text/csv")
    assert r.status == 422 and r.error["field"] == "line 1"
    plain_out = w.school_admin.get(f"/v1/lists/{lid}/export?format=plain")
    assert plain_out.raw.decode().split() == ["ads.example", "evil.example", "new.example"]
    before = w.school_admin.get(f"/v1/lists/{lid}").headers["ETag"]
    assert w.school_admin.delete(f"/v1/lists/{lid}/entries/NEW.example",
                                 headers={"If-Match": before}).status == 204
    assert w.school_admin.post(f"/v1/lists/{lid}/entries", {"domain": "late.example"},
                               headers={"If-Match": before}).status == 412, \
        "an entry change moves the list's revision"
    assert w.school_admin.get(f"/v1/lists/{lid}").headers["ETag"] != before
    assert w.school_admin.delete(f"/v1/lists/{lid}/entries/new.example").status == 404
    assert sql(w, "SELECT count(*) FROM list_entries WHERE list_id = %s", lid)[0][0] == 2


def test_national_lists_are_for_the_ministry(w):
    a = w.school_admin.post("/v1/national-lists", {"kind": "block", "name": "x"})
    assert a.status == 403
    a = w.admin.post("/v1/national-lists", {"kind": "block", "name": "Court orders"})
    assert a.status == 201 and a.json["scope"] == "national" and a.json["tenant_id"] is None
    lid = a.json["id"]
    assert w.school_admin.get(f"/v1/lists/{lid}").status == 200
    assert w.school_admin.post(f"/v1/lists/{lid}/entries", {"domain": "x.example"}).status == 404
    assert w.admin.post(f"/v1/lists/{lid}/entries", {"domain": "court.example"}).status == 201
    assert w.school_soc.get(f"/v1/lists/{lid}/export?format=plain").raw == b"court.example\n"


# ---- audit trail ----

def test_every_change_is_audited_and_the_chain_holds(w):
    a = w.school_admin.patch(f"/v1/tenants/{w.annex}", {"name": "Annex of School One"},
                             headers={"X-Request-Id": "req-audit-test-1"})
    assert a.status == 200
    rows = w.auditor.get("/v1/audit?action=tenant.update&target_id=" + w.annex).json["items"]
    row = rows[0]
    assert row["actor_type"] == "api_key" and row["actor_role"] == "tenant_admin"
    assert row["actor_ip"] == "127.0.0.1" and row["request_id"] == "req-audit-test-1"
    assert row["before"]["name"] == "School Annex" and row["after"]["name"] == "Annex of School One"
    assert row["tenant_id"] == w.annex
    prefixed = w.auditor.get("/v1/audit?action=network.&limit=1000").json["items"]
    assert prefixed and all(r["action"].startswith("network.") for r in prefixed)
    page = w.auditor.get("/v1/audit?limit=2")
    nxt = page.json["next"]
    assert nxt and all(r["id"] < int(nxt) for r in w.auditor.get(
        f"/v1/audit?limit=2&before={nxt}").json["items"])
    assert w.auditor.get("/v1/audit?since=yesterday").status == 400

    # Every mutating call so far left a row: compare counts by action with the objects.
    n_tenants = sql(w, "SELECT count(*) FROM tenants")[0][0]
    assert sql(w, "SELECT count(*) FROM audit_log WHERE action = 'tenant.create'")[0][0] == n_tenants
    n_keys = sql(w, "SELECT count(*) FROM api_keys")[0][0]
    assert sql(w, "SELECT count(*) FROM audit_log WHERE action = 'api_key.create'")[0][0] == n_keys

    v = w.auditor.get("/v1/audit/verify")
    assert v.status == 200 and v.json["intact"] is True and v.json["problems"] == []
    assert sql(w, "SELECT count(*) FROM audit_log_verify()")[0][0] == 0

    with pytest.raises(psycopg2.Error):
        sql(w, "UPDATE audit_log SET actor_name = 'someone else' WHERE id = 2")

    su = superuser_conn(w.dbname)
    try:
        with su.cursor() as cur:
            cur.execute("SET session_replication_role = replica")   # triggers off: tampering
            cur.execute("UPDATE audit_log SET actor_name = 'someone else' WHERE id = 2")
        v = w.auditor.get("/v1/audit/verify")
        assert v.json["intact"] is False
        assert {"id": 2, "problem": "row_hash does not match the row content"} in v.json["problems"]
    finally:
        su.close()


# ---- query-log search ----

def seed_query_log(w):
    sql(w, "SELECT query_log_ensure_partitions(current_date - 2, 4)")
    rows = []
    for i in range(30):
        rows.append((w.school, "10.1.0.5", "www.evil.example" if i % 3 == 0 else "school.example",
                     28 if i % 2 else 1, "block" if i % 3 == 0 else "allow",
                     "malware" if i % 3 == 0 else None, i))
    rows.append((w.school, "10.1.0.6", "evil.example", 1, "block", "malware", 40))
    rows.append((w.school, "10.1.0.6", "notevil.example", 1, "allow", None, 41))
    rows.append((w.school, "10.1.0.7", '=cmd|"/c calc"!a.example', 16, "allow", None, 42))
    rows.append((w.hospital, "10.2.0.9", "www.evil.example", 1, "block", "malware", 43))
    for tenant, ip, qname, qtype, action, category, minutes in rows:
        sql(w, "INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, transport, qname,"
               " qtype, rcode, action, category) VALUES (now() - %s * interval '1 minute',"
               " gen_random_uuid(), 'node-1', %s, %s, 'udp', %s, %s, 0, %s, %s)",
            minutes, tenant, ip, qname, qtype, action, category)


def test_querylog_search_is_scoped_filtered_paged_and_audited(w):
    seed_query_log(w)
    soc = w.school_soc
    a = soc.get("/v1/querylog?client=10.1.0.5&limit=1000")
    assert a.status == 200 and len(a.json["items"]) == 30
    assert all(x["client_ip"] == "10.1.0.5" for x in a.json["items"])
    times = [x["ts"] for x in a.json["items"]]
    assert times == sorted(times, reverse=True), "newest first"
    assert soc.get("/v1/querylog?client=10.2.0.9").json["items"] == [], "the hospital's client"
    assert soc.get(f"/v1/querylog?tenant_id={w.hospital}").status == 404
    assert len(w.admin.get("/v1/querylog?client=10.2.0.9").json["items"]) == 1

    names = {x["qname"] for x in soc.get("/v1/querylog?name=evil.example").json["items"]}
    assert names == {"evil.example", "www.evil.example"}, "with subdomains, not notevil"
    exact = soc.get("/v1/querylog?name=evil.example&subdomains=false").json["items"]
    assert [x["qname"] for x in exact] == ["evil.example"]
    aaaa = soc.get("/v1/querylog?client=10.1.0.0/24&qtype=AAAA&limit=1000").json["items"]
    assert len(aaaa) == 15 and {x["qtype"] for x in aaaa} == {28}
    blocks = soc.get("/v1/querylog?client=10.1.0.0/24&action=block&category=malware"
                     "&limit=1000").json["items"]
    assert len(blocks) == 11 and all(x["tenant_id"] == w.school for x in blocks)
    assert soc.get("/v1/querylog?since=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z"
                   ).json["items"] == []

    seen, cursor, pages = [], None, 0
    while True:
        a = soc.get("/v1/querylog?client=10.1.0.5&limit=7" + (f"&after={cursor}" if cursor else ""))
        seen += [x["event_id"] for x in a.json["items"]]
        pages += 1
        cursor = a.json["next"]
        if not cursor:
            break
    assert len(seen) == 30 and len(set(seen)) == 30 and pages == 5

    csv = soc.get("/v1/querylog?client=10.1.0.0/24&format=csv")
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.raw.decode().split("\r\n")
    assert lines[0].startswith("ts,tenant_id,node,client,") and lines[-1] == ""
    assert len(lines) == 1 + 33 + 1
    assert any(",\"'=cmd|\"\"/c calc\"\"!a.example\"," in x for x in lines), \
        "a query name shaped like a formula is defused"

    for who, q in ((w.school_admin, ""), (w.auditor, ""), (soc, "?client=nonsense"),
                   (soc, "?since=2026-02-30T00:00:00Z"), (soc, "?qtype=BOGUS"),
                   (soc, "?name=-bad-.."), (soc, "?after=123_nope"), (soc, "?limit=5000"),
                   (soc, "?format=xml")):
        a = who.get("/v1/querylog" + q)
        assert a.status == (403 if not q else 400), (q, a)
        if q:
            assert a.error["field"] == q[1:].split("=")[0]

    audit = w.auditor.get("/v1/audit?action=querylog.search&limit=1000").json["items"]
    assert any(r["details"].get("client") == "10.1.0.5/32" and r["actor_role"] == "soc_analyst"
               for r in audit), "who looked at which client is on record"
    assert any(r["details"].get("format") == "csv" for r in audit)


def test_querylog_csv_streams_large_results(w):
    sql(w, "INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, transport, qname,"
           " qtype, rcode, action) SELECT now() - (g * interval '1 millisecond'),"
           " gen_random_uuid(), 'node-2', %s, '10.1.9.9', 'udp', 'bulk' || g || '.example',"
           " 1, 0, 'allow' FROM generate_series(1, 20000) g", w.school)
    csv = w.school_soc.get("/v1/querylog?client=10.1.9.9&format=csv")
    assert csv.status == 200
    lines = csv.raw.decode().split("\r\n")
    assert len(lines) == 20000 + 2 and lines[1].count(",") == 13
    assert len(set(lines[1:-1])) == 20000
    assert w.school_soc.get("/v1/health").status == 200, "the connection went back to the pool"


# ---- reports ----

def test_reports_from_rollups(w):
    hour = "date_trunc('hour', now()) - interval '2 hours'"
    for tenant, cat, action, n in ((w.school, "malware", "block", 5), (w.school, "", "allow", 100),
                                   (w.annex, "phishing", "block", 7),
                                   (w.hospital, "malware", "block", 1000)):
        sql(w, f"INSERT INTO query_rollup_hourly (tenant_id, hour, category, action, count)"
               f" VALUES (%s, {hour}, %s, %s, %s)", tenant, cat, action, n)
    for tenant, name, n in ((w.school, "evil.example", 4), (w.school, "=bad.example", 1),
                            (w.annex, "phish.example", 7), (w.hospital, "evil.example", 900)):
        sql(w, f"INSERT INTO rollup_blocked_names (tenant_id, hour, qname, action, category, count)"
               f" VALUES (%s, {hour}, %s, 'block', 'malware', %s)", tenant, name, n)
    for tenant, ip, cat, n in ((w.school, "10.1.0.5", "malware", 4), (w.school, "10.1.0.5", "c2", 2),
                               (w.annex, "10.1.3.3", "phishing", 7),
                               (w.hospital, "10.2.0.9", "malware", 900)):
        sql(w, f"INSERT INTO rollup_threat_clients (tenant_id, hour, client_ip, category, count)"
               f" VALUES (%s, {hour}, %s, %s, %s)", tenant, ip, cat, n)

    soc = w.school_soc
    own = soc.get(f"/v1/reports/timeseries?tenant_id={w.school}").json["items"]
    assert {(x["category"], x["action"], x["count"]) for x in own} == {
        ("malware", "block", 5), (None, "allow", 100)}
    tree = soc.get(f"/v1/reports/timeseries?tenant_id={w.school}&subtree=true&bucket=day")
    assert sum(x["count"] for x in tree.json["items"]) == 112
    every = soc.get("/v1/reports/timeseries").json["items"]
    assert sum(x["count"] for x in every) == 112, "across tenants = those the caller reaches"
    assert sum(x["count"] for x in w.admin.get("/v1/reports/timeseries").json["items"]) == 1112
    assert soc.get(f"/v1/reports/timeseries?tenant_id={w.hospital}").status == 404

    top = soc.get("/v1/reports/top-blocked?limit=2").json["items"]
    assert [(x["qname"], x["count"]) for x in top] == [("phish.example", 7), ("evil.example", 4)]
    csv = soc.get("/v1/reports/top-blocked?format=csv").raw.decode()
    assert csv.startswith("qname,action,category,count\r\n") and "\"'=bad.example\"" in csv

    clients = soc.get("/v1/reports/top-clients").json["items"]
    assert clients[0] == {"tenant_id": w.annex, "client": "10.1.3.3", "categories": ["phishing"],
                          "count": 7}
    assert clients[1]["categories"] == ["c2", "malware"] and clients[1]["count"] == 6
    assert all(c["client"] != "10.2.0.9" for c in clients)
    assert w.auditor.get("/v1/reports/top-clients").status == 403
    assert soc.get("/v1/reports/timeseries?since=2020-01-01T00:00:00Z").status == 400
    assert soc.get("/v1/reports/timeseries?bucket=week").error["field"] == "bucket"
    audit = w.auditor.get("/v1/audit?action=report.top_clients").json["items"]
    assert audit and audit[0]["actor_role"] == "soc_analyst"


# ---- read-only infrastructure ----

def test_feeds_and_nodes_views(w):
    fid = sql(w, "INSERT INTO feeds (name, category, format, source, status, fetched_at,"
                 " entry_count, refresh_interval) VALUES ('urlhaus', 'malware', 'rpz',"
                 " '/tmp/x.rpz', 'ok', now() - interval '3 hours', 42, '1 hour') RETURNING id")[0][0]
    sql(w, "INSERT INTO feed_refreshes (feed_id, started_at, finished_at, outcome,"
           " entries_total, entries_added) VALUES (%s, now() - interval '3 hours',"
           " now() - interval '3 hours', 'updated', 42, 42)", fid)
    feeds = w.admin.get("/v1/feeds").json["items"]
    f = [x for x in feeds if x["name"] == "urlhaus"][0]
    assert f["stale"] is True and f["entry_count"] == 42 and f["age_seconds"] >= 3 * 3600 - 60
    assert f["last_refresh"]["entries_total"] == 42 and "source" not in f
    sql(w, "INSERT INTO resolver_nodes (name, token_hash, software_version, snapshot_version)"
           " VALUES ('node-1', sha256('t'), '0.1.0', 7)")
    nodes = w.admin.get("/v1/nodes").json
    assert nodes["items"][0]["name"] == "node-1" and nodes["items"][0]["snapshot_version"] == 7
    assert nodes["items"][0]["current"] is False


def test_feeds_are_registered_and_changed_by_the_ministry_only(w):
    body = {"name": "cert-malware", "category": "malware", "format": "rpz",
            "source": "https://feeds.cert.example/rpz?token=secret", "refresh_interval_seconds": 900}
    for client in (w.school_admin, w.school_soc, w.auditor):
        assert client.post("/v1/feeds", body).status == 403
    a = w.admin.post("/v1/feeds", body)
    assert a.status == 201, a
    feed = a.json
    assert feed["name"] == "cert-malware" and feed["refresh_interval_seconds"] == 900
    assert feed["status"] == "pending" and feed["stale"] is True and "source" not in feed
    assert a.headers["Location"] == f"/v1/feeds/{feed['id']}"
    assert w.admin.post("/v1/feeds", body).status == 409

    for bad, field in ((dict(body, name="Bad Name"), "name"), (dict(body, name="-x"), "name"),
                       (dict(body, category="knitting"), "category"),
                       (dict(body, format="csv"), "format"),
                       (dict(body, source="relative/path.rpz"), "source"),
                       (dict(body, source="/tmp/a b.rpz"), "source"),
                       (dict(body, refresh_interval_seconds=10), "refresh_interval_seconds"),
                       (dict(body, colour="red"), "colour")):
        bad["name"] = bad["name"] if field == "name" else "another-feed"
        a = w.admin.post("/v1/feeds", bad)
        assert a.status in (400, 422) and a.error["field"] == field, (field, a)

    # A new source is due at once: tenantd fetches feeds whose last attempt is NULL.
    sql(w, "UPDATE feeds SET last_attempt_at = now() WHERE id = %s", feed["id"])
    assert w.school_admin.patch(f"/v1/feeds/{feed['id']}", {"enabled": False}).status == 403
    a = w.admin.patch(f"/v1/feeds/{feed['id']}", {"source": "/srv/feeds/cert.rpz",
                                                   "enabled": False})
    assert a.status == 200 and a.json["enabled"] is False, a
    assert sql(w, "SELECT source, last_attempt_at FROM feeds WHERE id = %s",
               feed["id"]) == [("/srv/feeds/cert.rpz", None)]
    stale = w.admin.patch(f"/v1/feeds/{feed['id']}", {"enabled": True},
                          headers={"If-Match": "1"})
    assert stale.status == 412
    assert w.admin.patch("/v1/feeds/00000000-0000-4000-8000-000000000000",
                         {"enabled": True}).status == 404

    audit = w.admin.get(f"/v1/audit?target_id={feed['id']}").json["items"]
    assert {e["action"] for e in audit} == {"feed.create", "feed.update"}
    assert all("secret" not in json.dumps(e) for e in audit), "a feed URL's token reached the audit trail"


# ---- the contract: OpenAPI ----

def test_routes_and_document_agree(w):
    doc = json.loads(OPENAPI.read_text())
    r = subprocess.run([str(BIN / "aegis-portal-api"), "routes"], capture_output=True, text=True,
                       timeout=30)
    served = {tuple(line.split(" ", 1)) for line in r.stdout.splitlines()}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert served == documented
    for method, path in documented:
        concrete = path.replace("{domain}", "x.example")
        for name in ("tenant_id", "network_id", "list_id", "key_id", "user_id", "session_id"):
            concrete = concrete.replace("{" + name + "}", "00000000-0000-4000-8000-000000000000")
        a = w.admin.call(method, concrete, body={} if method in ("POST", "PATCH") else None,
                         raw=b"x" if method == "PUT" else None,
                         ctype="text/plain" if method == "PUT" else None)
        assert a.status not in (405, 500), (method, path, a)


def value_for(schema, doc, rnd, depth=0):
    """A value for a JSON schema of the document: mostly valid, often subtly not."""
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].split("/")[-1]]
    pick = rnd.random()
    if pick < 0.08:   # any other type
        return rnd.choice([None, True, 0, -1, 2**63, 1.5, "", "x" * 300, [], {}, "\u0000",
                           "\u202e\ud7ff", "' OR 1=1 --", "../../etc/passwd", "10.0.0.0/8"])
    if "enum" in schema:
        return rnd.choice(schema["enum"] + ["NOT-" + str(schema["enum"][0])])
    if "const" in schema:
        return schema["const"]
    if "oneOf" in schema:
        return value_for(rnd.choice(schema["oneOf"]), doc, rnd, depth)
    t = schema.get("type", "object")
    if isinstance(t, list):
        t = rnd.choice(t)
    if t == "null":
        return None
    if t == "boolean":
        return rnd.random() < 0.5
    if t == "integer":
        lo, hi = schema.get("minimum", -5), schema.get("maximum", 100000)
        return rnd.choice([lo, hi, lo - 1, hi + 1, rnd.randint(lo, hi)])
    if t == "string":
        if schema.get("format") == "uuid":
            return rnd.choice([str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000", "x"])
        if schema.get("format") == "date-time":
            return rnd.choice(["2026-01-31T12:00:00Z", "2026-02-30T00:00:00Z", "yesterday"])
        return rnd.choice(["a.example", "School " + str(rnd.randint(0, 9999)), "10.9.%d.0/24"
                           % rnd.randint(0, 255), "", " padded ", "x" * rnd.randint(1, 400),
                           "ünïcode", "fuzz-%d" % rnd.randint(0, 99999), "tab\there"])
    if t == "array":
        if depth > 3:
            return []
        return [value_for(schema.get("items", {}), doc, rnd, depth + 1)
                for _ in range(rnd.choice([0, 1, 2, 3]))]
    out = {}
    props = schema.get("properties", {})
    for k, sub in props.items():
        if k in schema.get("required", []) or rnd.random() < 0.5:
            if depth < 4:
                out[k] = value_for(sub, doc, rnd, depth + 1)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and rnd.random() < 0.5:
        out[rnd.choice(["adult", "malware", "knitting"])] = value_for(extra, doc, rnd, depth + 1)
    if rnd.random() < 0.05:
        out["unexpected"] = 1
    if props and rnd.random() < 0.05 and out:
        out.pop(rnd.choice(list(out)))
    return out


def test_schema_driven_fuzzing_finds_no_server_error(w):
    """Requests generated from the OpenAPI document (bodies, parameters, ids): whatever comes
    in, the answer is never a 5xx, and the final test holds each answer to the document."""
    doc = json.loads(OPENAPI.read_text())
    rnd = random.Random(int(os.environ.get("AEGIS_FUZZ_SEED", "6")))
    ids = {"tenant_id": [w.school, w.annex, w.hospital], "key_id": [], "user_id": [],
           "network_id": [x["id"] for x in w.admin.get(f"/v1/tenants/{w.school}/networks")
                          .json["items"]],
           "list_id": [x["id"] for x in w.admin.get(f"/v1/tenants/{w.school}/lists")
                       .json["items"]]}
    callers = [w.admin, w.school_admin, w.school_soc, w.auditor]
    ops = [(p, m, o) for p, ms in doc["paths"].items() for m, o in ms.items()]
    errors = []
    for i in range(1200):
        path, method, op = rnd.choice(ops)
        if method == "delete" and path == "/v1/tenants/{tenant_id}":
            continue   # soft deletion of the fixtures would only narrow what follows
        concrete = path
        query = {}
        for prm in op.get("parameters", []):
            name = prm["name"]
            if prm["in"] == "path":
                pool = ids.get(name) or []
                val = (rnd.choice(pool) if pool and rnd.random() < 0.8
                       else value_for(prm["schema"], doc, rnd))
                concrete = concrete.replace("{" + name + "}",
                                            urllib.parse.quote(str(val), safe="") or "x")
            elif prm["in"] == "query" and rnd.random() < 0.4:
                v = value_for(prm["schema"], doc, rnd)
                query[name] = json.dumps(v) if not isinstance(v, str) else v
        if query:
            concrete += "?" + urllib.parse.urlencode(query)
        body = raw = ctype = None
        rb = op.get("requestBody")
        if rb:
            if "application/json" in rb["content"]:
                body = value_for(rb["content"]["application/json"]["schema"], doc, rnd)
                if rnd.random() < 0.05:
                    raw, body, ctype = b'{"broken": ', None, "application/json"
            else:
                ctype = rnd.choice(["text/plain", "text/csv"])
                raw = rnd.choice([b"a.example\nb.example\n", b'd,"c""q"\r\n', b"\xff\xfe\x00",
                                  b"x" * 5000, b""])
        caller = rnd.choice(callers)
        a = caller.call(method.upper(), concrete, body=body, raw=raw, ctype=ctype)
        if a.status >= 500:
            errors.append(f"{method.upper()} {concrete} {body!r:.200} -> {a}")
        if a.status in (200, 201) and path == "/v1/api-keys" and method == "post":
            ids["key_id"].append(a.json["id"])
        if a.status in (200, 201) and path == "/v1/users" and method == "post":
            ids["user_id"].append(a.json["id"])
    assert not errors, "\n".join(errors[:20])


def test_every_answer_matches_the_document(w):
    """Runs last: every answer the tests above received, held to its documented schema."""
    doc = json.loads(OPENAPI.read_text())
    resolver = jsonschema.RefResolver.from_schema(doc)
    checked = 0
    problems = []
    for method, path, ans in Client.seen:
        template = route_of(doc["paths"], path)
        if template is None or method.lower() not in doc["paths"][template]:
            assert ans.status in (404, 405), (method, path, ans)
            continue
        op = doc["paths"][template][method.lower()]
        resp = op["responses"].get(str(ans.status))
        if resp is None:
            problems.append(f"{method} {template}: status {ans.status} not documented")
            continue
        content = resp.get("content", {})
        ctype = ans.headers.get("Content-Type", "").split(";")[0]
        if not content:
            if ans.raw:
                problems.append(f"{method} {template} {ans.status}: undocumented body")
            continue
        if ctype not in content:
            problems.append(f"{method} {template} {ans.status}: {ctype} not documented")
            continue
        if ctype != "application/json":
            continue
        try:
            jsonschema.Draft202012Validator(content[ctype]["schema"], resolver=resolver).validate(
                ans.json)
            checked += 1
        except jsonschema.ValidationError as e:
            problems.append(f"{method} {template} {ans.status}: {e.message} at "
                            f"{list(e.absolute_path)}")
    assert not problems, "\n".join(sorted(set(problems))[:40])
    assert checked > 200
