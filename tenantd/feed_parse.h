/* feed_parse.h -- threat-feed parsers: RPZ zone files, hosts files, plain domain lists, MISP.
 *
 * Each parser reads a caller-owned buffer and hands every accepted name, normalised, to a
 * callback; the name lives only during the call. feed_misp_manifest() returns an array the
 * caller frees. Nothing here logs: counts and sanitised samples of invalid lines go back in
 * struct feed_parse_stats to the caller, who knows the feed's name. Rules: docs/feeds.md.
 */
#ifndef AEGIS_FEED_PARSE_H
#define AEGIS_FEED_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define FEED_MAX_LINE       4096  /* longer text lines are invalid, never truncated */
#define FEED_SAMPLES        5
#define FEED_SAMPLE_LEN     160
#define FEED_UUID_LEN       36

enum feed_format { FEED_FORMAT_RPZ, FEED_FORMAT_HOSTS, FEED_FORMAT_PLAIN, FEED_FORMAT_MISP };

/* feed_entries.action: block puts the name in the feed's category, passthru is an exception
 * inside the feed (RPZ "CNAME rpz-passthru.", Adblock "@@||name^"). */
enum feed_action { FEED_ACTION_BLOCK, FEED_ACTION_PASSTHRU };

/* name: lowercase A-labels, no trailing dot, no wildcard, valid for the dns_name domain. The
 * same name may come more than once (the caller deduplicates). Return 0 to go on; anything
 * else stops the parse, which returns that value (use a negative errno). */
typedef int (*feed_entry_fn)(void *arg, const char *name, enum feed_action action);

/* The parsers add to these counters, so one struct can sum a MISP manifest and its events:
 * zero it before the first call. Comments, blank lines and directives count only in lines. */
struct feed_parse_stats {
	uint64_t lines;             /* text lines; for MISP, manifest keys and event attributes */
	uint64_t entries;           /* callbacks made, either action */
	uint64_t invalid;           /* lines, names or attributes rejected (samples below) */
	uint64_t skipped;           /* understood and left out on purpose: apex SOA/NS, localhost,
				     * MISP types other than domain/hostname, deleted attributes */
	uint64_t unsupported;       /* valid in the format but not a name we can block: rpz-ip and
				     * other triggers, rpz-tcp-only, $INCLUDE, URLs with a path,
				     * Adblock rules with modifiers */
	uint64_t passthru;          /* of entries: FEED_ACTION_PASSTHRU */
	uint64_t not_to_ids;        /* MISP attributes with to_ids false, skipped */
	uint64_t local_data_mapped; /* of entries: RPZ local data, hosts lines with a real address */
	uint64_t wildcards;         /* of entries: written "*.name", listed as name */
	/* "line 12: bad name: <text>", printable ASCII only (others, '"' and '\' as \xHH). */
	char invalid_samples[FEED_SAMPLES][FEED_SAMPLE_LEN];
	unsigned n_samples;
};

/* "rpz", "hosts", "plain", "misp" (as in feeds.format); 0 or -EINVAL. */
int feed_format_parse(const char *text, enum feed_format *out) __attribute__((warn_unused_result));
/* The same names; "?" for a value out of range. */
const char *feed_format_name(enum feed_format fmt);

/* Parses an RPZ, hosts or plain document of len bytes (no NUL terminator needed). rpz_origin
 * is the policy zone's name ("rpz.example.", trailing dot optional); NULL takes it from the
 * first $ORIGIN or SOA, else names are read as written. Bad lines are counted and skipped.
 * Returns 0, the callback's nonzero value, -EINVAL for bad arguments (FEED_FORMAT_MISP, an
 * invalid rpz_origin) or -ENOMEM. */
int feed_parse(enum feed_format fmt, const char *data, size_t len, const char *rpz_origin,
	       feed_entry_fn fn, void *arg, struct feed_parse_stats *st)
	__attribute__((warn_unused_result));

/* Lists the event UUIDs of a MISP feed's manifest.json (an object keyed by event UUID),
 * sorted, in a new array of *n entries the caller frees (NULL when none). A key that is not
 * a UUID is counted invalid in st and left out, so it can never name a file to fetch.
 * -EINVAL with the reason in err when the document is not a JSON object, -ENOMEM. */
int feed_misp_manifest(const char *json, size_t len, char (**uuids)[FEED_UUID_LEN + 1], size_t *n,
		       struct feed_parse_stats *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Parses one MISP event document ({"Event": {...}}): domain, hostname, domain|ip and
 * hostname|port attributes, also inside Objects; to_ids true blocks, false is counted in
 * not_to_ids and skipped. Returns 0, the callback's nonzero value, or -EINVAL with the reason
 * in err when the JSON does not parse or is not a MISP event. */
int feed_misp_event(const char *json, size_t len, feed_entry_fn fn, void *arg,
		    struct feed_parse_stats *st, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
