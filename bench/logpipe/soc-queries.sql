-- soc-queries.sql -- the SOC's three questions (issue item 6) with EXPLAIN (ANALYZE, BUFFERS),
-- run by bench/logpipe/explain.sh on a table filled by fill.sql.
\set ON_ERROR_STOP 1
\pset pager off
SELECT count(*) AS rows, count(DISTINCT tenant_id) AS tenants,
       count(*) FILTER (WHERE action IN ('block', 'monitor')) AS threat_hits
  FROM query_log;
-- 1. Every query of a client IP in a time range.
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT ts, qname, qtype, action, rcode
  FROM query_log
 WHERE client_ip = '10.7.3.100'
   AND ts >= now() - interval '24 hours' AND ts < now()
 ORDER BY ts;
-- 1b. The same for a whole network.
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT ts, client_ip, qname, qtype, action
  FROM query_log
 WHERE client_ip <<= '10.7.3.0/24'
   AND ts >= now() - interval '24 hours' AND ts < now()
 ORDER BY ts;
-- 2. Every client of a tenant that asked for a name or any name below it in a time range.
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT client_ip, client_pseudonym, count(*) AS queries, min(ts) AS first, max(ts) AS last
  FROM query_log
 WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
   AND dns_name_in_subtree(qname, 'evil.example')
   AND ts >= now() - interval '48 hours' AND ts < now()
 GROUP BY client_ip, client_pseudonym
 ORDER BY queries DESC;
-- 3. All threat hits of a tenant in a time range.
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT ts, client_ip, client_pseudonym, qname, action, category, matched_name
  FROM query_log
 WHERE tenant_id = '00000000-0000-4000-8000-000000000001'
   AND action IN ('block', 'monitor')
   AND ts >= now() - interval '24 hours' AND ts < now()
 ORDER BY ts;
