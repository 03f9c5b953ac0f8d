"""Seeding a migrated database with tenants, networks, policies, lists and feeds by plain
SQL, as tenantd's compiler reads them, and running aegis-tenantd commands."""
import os
import pathlib
import subprocess
import tempfile

import psycopg2

from conftest import BIN, ROOT, write_config


def tenantd_config(tmp, dsn, snapshot_dir, extra=""):
    snapshot_dir.mkdir(parents=True, exist_ok=True)
    return write_config(tmp / "tenantd.conf", f"""
database: {{ dsn = "{dsn}"; }};
migrations: {{ dir = "{ROOT / 'migrations'}"; }};
snapshot: {{ dir = "{snapshot_dir}"; }};
{extra}
""")


def tenantd(conf, *args, timeout=60):
    return subprocess.run([str(BIN / "aegis-tenantd"), "-c", str(conf), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


class Seed:
    """Helpers over one connection in autocommit mode."""

    def __init__(self, dsn):
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.feed_files = []

    def sql(self, query, *params):
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall() if cur.description else None

    def tenant(self, slug, kind, parent=None, networks=(), block_action=None, **policy):
        tid = self.sql("INSERT INTO tenants (parent_id, kind, name, slug) VALUES (%s, %s, %s, %s)"
                       " RETURNING id", parent, kind, slug.title(), slug)[0][0]
        for prefix in networks:
            self.sql("INSERT INTO networks (tenant_id, prefix) VALUES (%s, %s)", tid, prefix)
        if block_action:
            policy["block_action"] = block_action
        for column, value in policy.items():
            assert column in ("block_action", "sinkhole_v4", "sinkhole_v6", "ede_contact",
                              "safe_search")
            self.sql(f"UPDATE policies SET {column} = %s WHERE tenant_id = %s", value, tid)
        return tid

    def category(self, tenant, category, mode):
        self.sql("INSERT INTO policy_categories (tenant_id, category, mode) VALUES (%s, %s, %s)"
                 " ON CONFLICT (tenant_id, category) DO UPDATE SET mode = EXCLUDED.mode",
                 tenant, category, mode)

    def list_entries(self, scope, kind, names, tenant=None, name=None):
        lid = self.sql("SELECT id FROM lists WHERE tenant_id IS NOT DISTINCT FROM %s AND kind = %s",
                       tenant, kind)
        if not lid:
            lid = self.sql("INSERT INTO lists (scope, tenant_id, kind, name) VALUES (%s, %s, %s, %s)"
                           " RETURNING id", scope, tenant, kind, name or f"{scope}-{kind}")
        for domain in names:
            self.sql("INSERT INTO list_entries (list_id, domain) VALUES (%s, %s)"
                     " ON CONFLICT DO NOTHING", lid[0][0], domain)
        return lid[0][0]

    def feed(self, name, category, entries):
        """A feed whose source is a real RPZ file holding the entries, stored as tenantd's
        refresh would store them (so compiles see them before any refresh runs)."""
        fd, path = tempfile.mkstemp(prefix=f"aegis-feed-{name}-", suffix=".rpz")
        lines = ["$TTL 300", "$ORIGIN rpz.local.",
                 "@ SOA ns.rpz.local. h.rpz.local. 1 3600 600 86400 300"]
        for entry in entries:
            domain, action = entry if isinstance(entry, tuple) else (entry, "block")
            lines.append(f"{domain} CNAME {'rpz-passthru.' if action == 'passthru' else '.'}")
        os.write(fd, ("\n".join(lines) + "\n").encode())
        os.close(fd)
        self.feed_files.append(path)
        fid = self.sql("INSERT INTO feeds (name, category, format, source) VALUES"
                       " (%s, %s, 'rpz', %s) RETURNING id", name, category, path)[0][0]
        for entry in entries:
            domain, action = entry if isinstance(entry, tuple) else (entry, "block")
            self.sql("INSERT INTO feed_entries (feed_id, name, action) VALUES (%s, %s, %s)",
                     fid, domain, action)
        return fid

    def close(self):
        self.conn.close()
        for path in self.feed_files:
            pathlib.Path(path).unlink(missing_ok=True)


def seed_institutions(seed):
    """The ministry, a school that blocks adult content, a hospital answering REFUSED."""
    ministry = seed.tenant("ministry", "ministry")
    school = seed.tenant("school-1", "school", parent=ministry, networks=["127.1.0.0/16"],
                         ede_contact="contact it@school.example")
    hospital = seed.tenant("hospital-1", "hospital", parent=ministry,
                           networks=["127.2.0.0/16", "::1/128"], block_action="refused")
    seed.category(school, "adult", "block")
    seed.list_entries("tenant", "deny", ["denied.test"], tenant=school)
    seed.list_entries("national", "block", ["national-block.test"])
    seed.feed("malware-feed", "malware", ["malware.test", ("ok.malware.test", "passthru")])
    seed.feed("adult-feed", "adult", ["adult.test"])
    return ministry, school, hospital
