-- fill.sql -- a realistically shaped query_log for EXPLAIN (ANALYZE) of the SOC's questions:
-- :rows rows over the last 3 UTC days, 200 tenants of uneven size, each with its clients in
-- its own 10.x.y.0/24 networks, 100,000 names under 20,000 registered domains, about 2% of
-- queries blocked or monitored. Run with psql -v rows=3000000 -f fill.sql on a migrated db.
\set ON_ERROR_STOP 1
SELECT query_log_ensure_partitions(((now() AT TIME ZONE 'UTC')::date) - 3, 5);
INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, client_port, transport, qname,
                       qtype, rcode, action, category, mode, matched_name, rule_kind, cache_hit,
                       snapshot_version)
SELECT date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '2 days'
           + (random() * interval '2 days 23 hours'),
       gen_random_uuid(),
       'res' || (g % 4),
       ('00000000-0000-4000-8000-' || lpad(t::text, 12, '0'))::uuid,
       ('10.' || (t % 250) || '.' || (c / 250) || '.' || (c % 250))::inet,
       1024 + (g % 60000),
       'udp',
       CASE WHEN hit THEN 'x' || (g % 50) || '.bad' || (g % 300) || '.evil.example'
            ELSE 'h' || (n % 5) || '.d' || (n / 5) || '.example' END,
       CASE WHEN g % 3 = 0 THEN 28 ELSE 1 END,
       CASE WHEN hit THEN 3 ELSE 0 END,
       CASE WHEN hit AND g % 4 = 0 THEN 'monitor' WHEN hit THEN 'block' ELSE 'allow' END,
       CASE WHEN hit THEN 'malware' END,
       CASE WHEN hit AND g % 4 = 0 THEN 'monitor' WHEN hit THEN 'block' END,
       CASE WHEN hit THEN 'bad' || (g % 300) || '.evil.example' END,
       CASE WHEN hit THEN 'category' END,
       g % 2 = 0,
       42
  FROM (SELECT g,
               -- tenant sizes follow a power law: a few ministries, many small schools
               (floor(200 * power(random(), 3)))::int AS t,
               (floor(random() * 2000))::int AS c,
               (floor(100000 * power(random(), 2)))::int AS n,
               random() < 0.02 AS hit
          FROM generate_series(1, :rows) g) s;
ANALYZE query_log;
