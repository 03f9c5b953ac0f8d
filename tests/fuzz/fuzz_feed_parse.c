/* fuzz_feed_parse.c -- libFuzzer target for the threat-feed parsers (tenantd/feed_parse.c).
 *
 * The first byte's low three bits pick the parser: RPZ without and with a zone name, hosts,
 * plain, MISP manifest, MISP event (6 and 7 run all the text parsers on the same bytes). Its
 * high bits, when nonzero, make the callback stop the parse after that many names. The rest
 * is the document, copied to exactly its size so ASan sees any read past the end. Every
 * name handed out must be one the dns_name domain accepts, and the counters and samples must
 * agree with what was seen; anything else aborts.
 *
 *   make build/fuzz/fuzz_feed_parse
 *   build/fuzz/fuzz_feed_parse -max_total_time=60 tests/fuzz/corpus/fuzz_feed_parse
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "feed_parse.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	uint64_t names, passthru;
	unsigned stop_after;
};

/* What the dns_name domain of the schema accepts, checked independently of the parser. */
static bool name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;
	bool digits = true;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63)
				return false;
			if (c == '\0')
				break;
			label = 0;
			digits = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
		digits = digits && c >= '0' && c <= '9';
		label++;
	}
	uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
	size_t wire_len;
	return !digits && snapshot_parse_name(name, wire, &wire_len) == 0;
}

static int on_entry(void *arg, const char *name, enum feed_action action)
{
	struct seen *s = arg;
	if (!name_ok(name) || (action != FEED_ACTION_BLOCK && action != FEED_ACTION_PASSTHRU))
		abort();
	s->names++;
	s->passthru += action == FEED_ACTION_PASSTHRU;
	return s->stop_after && s->names == s->stop_after ? -ECANCELED : 0;
}

static void check_stats(const struct feed_parse_stats *st, const struct seen *s)
{
	if (st->entries != s->names || st->passthru != s->passthru ||
	    st->local_data_mapped > st->entries || st->wildcards > st->entries)
		abort();
	uint64_t want = st->invalid < FEED_SAMPLES ? st->invalid : FEED_SAMPLES;
	if (st->n_samples != want)
		abort();
	for (unsigned i = 0; i < st->n_samples; i++) {
		const char *x = st->invalid_samples[i];
		size_t len = strnlen(x, FEED_SAMPLE_LEN);
		if (len == FEED_SAMPLE_LEN)
			abort();
		for (size_t j = 0; j < len; j++)
			if (x[j] < 0x20 || x[j] > 0x7e || x[j] == '"' ||
			    (x[j] == '\\' && x[j + 1] != 'x'))
				abort();
	}
}

static void run_text(enum feed_format fmt, const char *doc, size_t len, const char *origin,
		     unsigned stop_after)
{
	struct feed_parse_stats st = { 0 };
	struct seen s = { .stop_after = stop_after };
	int rc = feed_parse(fmt, doc, len, origin, on_entry, &s, &st);
	if (rc != 0 && rc != -ECANCELED)
		abort();
	check_stats(&st, &s);
	size_t newlines = 0;
	for (size_t i = 0; i < len; i++)
		newlines += doc[i] == '\n';
	if (st.lines > newlines + 1)
		abort();
}

static void run_manifest(const char *doc, size_t len)
{
	char (*uuids)[FEED_UUID_LEN + 1];
	size_t n;
	struct feed_parse_stats st = { 0 };
	char err[128];
	if (feed_misp_manifest(doc, len, &uuids, &n, &st, err, sizeof err) < 0)
		return;
	if (n + st.invalid != st.lines || (n == 0) != (uuids == NULL))
		abort();
	for (size_t i = 0; i < n; i++)
		if (strlen(uuids[i]) != FEED_UUID_LEN || (i && strcmp(uuids[i - 1], uuids[i]) >= 0))
			abort();
	free(uuids);
}

static void run_event(const char *doc, size_t len, unsigned stop_after)
{
	struct feed_parse_stats st = { 0 };
	struct seen s = { .stop_after = stop_after };
	char err[128];
	int rc = feed_misp_event(doc, len, on_entry, &s, &st, err, sizeof err);
	if (rc == -EINVAL && st.lines == 0)
		return;  /* not JSON, not an event */
	if (rc != 0 && rc != -ECANCELED)
		abort();
	check_stats(&st, &s);
	if (rc == 0 && st.lines != st.entries + st.invalid + st.skipped + st.not_to_ids)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned which = data[0] & 7, stop_after = data[0] >> 3;
	char *doc = malloc(size - 1 ? size - 1 : 1);
	if (!doc)
		return 0;
	memcpy(doc, data + 1, size - 1);
	size_t len = size - 1;

	switch (which) {
	case 0:
		run_text(FEED_FORMAT_RPZ, doc, len, NULL, stop_after);
		break;
	case 1:
		run_text(FEED_FORMAT_RPZ, doc, len, "rpz.example", stop_after);
		break;
	case 2:
		run_text(FEED_FORMAT_HOSTS, doc, len, NULL, stop_after);
		break;
	case 3:
		run_text(FEED_FORMAT_PLAIN, doc, len, NULL, stop_after);
		break;
	case 4:
		run_manifest(doc, len);
		break;
	case 5:
		run_event(doc, len, stop_after);
		break;
	default:
		run_text(FEED_FORMAT_RPZ, doc, len, NULL, 0);
		run_text(FEED_FORMAT_HOSTS, doc, len, NULL, 0);
		run_text(FEED_FORMAT_PLAIN, doc, len, NULL, 0);
		break;
	}
	free(doc);
	return 0;
}
