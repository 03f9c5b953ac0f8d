/* row.h -- one decoded query-log record as one line of PostgreSQL COPY text for query_log.
 *
 * The mapping of record fields to columns is docs/querylog.md "Into PostgreSQL": qname
 * lowercased, rule.kind into rule_kind, NULL (\N) for absent values. The caller owns the
 * buffer; nothing here allocates.
 */
#ifndef AEGIS_LOGPIPE_ROW_H
#define AEGIS_LOGPIPE_ROW_H

#include <stddef.h>
#include <stdint.h>

struct qlog_record;

/* The columns, in the order row_format() writes them. */
#define ROW_COLUMNS                                                                        \
	"ts, event_id, node, tenant_id, client_ip, client_pseudonym, client_port, transport, " \
	"qname, qtype, rcode, action, matched_list_id, matched_feed_id, matched_name, "        \
	"category, mode, ede, cache_hit, upstream, upstream_latency_us, snapshot_version, "     \
	"rule_kind"

/* No row is longer (two names of 255 wire bytes, each byte possibly \DDD and COPY-escaped). */
#define ROW_MAX 8192

/* Writes the row with its newline into buf. Returns its length, -ENOSPC when cap is too
 * small, or -EINVAL with *why set to a static reason when the record holds a value no
 * PostgreSQL text column can (a text field that is not UTF-8 or contains NUL). */
int row_format(const struct qlog_record *r, char *buf, size_t cap, const char **why)
	__attribute__((warn_unused_result));

/* The UTC day of a record time, as days since 1970-01-01 (the partition it lands in). */
int32_t row_day(int64_t ts_us);

#endif
