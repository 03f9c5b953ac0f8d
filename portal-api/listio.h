/* listio.h -- custom allow/deny lists as text: import parsers and export writers.
 *
 * Two formats: "plain" (one name per line; blank lines and lines starting with '#' are
 * skipped) and "csv" (RFC 4180: fields separated by commas, optionally double-quoted with ""
 * for a quote; an optional header row "domain,comment"; columns domain and an optional
 * comment). Every name is normalised as the policy tables store it (dns_name). The parsers
 * read a caller-owned buffer and hand each entry to a callback; they allocate nothing that
 * outlives the call.
 */
#ifndef AEGIS_PORTAL_LISTIO_H
#define AEGIS_PORTAL_LISTIO_H

#include <stddef.h>

#define LISTIO_COMMENT_MAX 500       /* list_entries.comment, in characters */

enum listio_format { LISTIO_PLAIN, LISTIO_CSV };

struct listio_error {
	unsigned line;               /* 1-based line of the problem */
	char reason[160];
};

/* Called for each entry with a normalised name and a comment ("" when none); a nonzero
 * return stops the parse and is returned. */
typedef int (*listio_entry_fn)(void *arg, const char *domain, const char *comment);

/* Parses text[0..len). 0 when every line was good; -EINVAL with *err filled at the first bad
 * line (nothing after it is delivered); or the callback's nonzero return. */
int listio_parse(enum listio_format fmt, const char *text, size_t len, listio_entry_fn fn,
		 void *arg, struct listio_error *err) __attribute__((warn_unused_result));

/* Appends one CSV field to buf (quoted when needed; a comment that a spreadsheet would take
 * for a formula gets a leading apostrophe). Returns the bytes needed, as snprintf does. */
size_t listio_csv_field(char *buf, size_t cap, const char *value, int is_comment);

#endif
