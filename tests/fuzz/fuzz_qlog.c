/* fuzz_qlog.c -- libFuzzer target for the query-log record codec (common/qlog.c).
 *
 * First byte even: the rest is JSON for qlog_decode_json(). Whatever decodes must encode, and
 * decode again to the same struct. First byte odd: the rest fills a struct qlog_record byte for
 * byte. Whatever encodes must decode, and re-encode to the same text; then the JSON is
 * corrupted at the positions the tail of the input names and decoded again, which takes the
 * decoder deep into almost-valid records without a seed corpus.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icommon \
 *         tests/fuzz/fuzz_qlog.c common/qlog.c common/log.c \
 *         -ljansson -lldns -lcrypto -lsystemd -o fuzz_qlog
 *   ./fuzz_qlog -max_total_time=60
 */
#include <stdlib.h>
#include <string.h>

#include "qlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes json; if it decodes, checks decode(encode(r)) == r. */
static void check_decoded(const char *json, size_t len)
{
	static char text[QLOG_JSON_MAX];
	struct qlog_record r, again;
	char err[256];

	if (qlog_decode_json(json, len, &r, err, sizeof err) < 0)
		return;
	int n = qlog_encode_json(&r, text, sizeof text);
	if (n < 0)
		abort();  /* a decoded record must encode */
	if (qlog_decode_json(text, (size_t)n, &again, err, sizeof err) < 0)
		abort();
	if (memcmp(&r, &again, sizeof r) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[QLOG_JSON_MAX], again[QLOG_JSON_MAX];

	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		/* A copy of exactly size - 1 bytes, so ASan sees any read past the end. */
		char *json = malloc(size);
		if (!json)
			return 0;
		memcpy(json, data + 1, size - 1);
		check_decoded(json, size - 1);
		free(json);
		return 0;
	}

	struct qlog_record r, back;
	size_t used = size - 1 < sizeof r ? size - 1 : sizeof r;
	memset(&r, 0, sizeof r);
	memcpy(&r, data + 1, used);
	/* Random bytes are not valid bools; a real record never holds anything but 0 or 1. */
#define FIX_BOOL(field) do { unsigned char b_; memcpy(&b_, &(field), 1); b_ &= 1; \
			     memcpy(&(field), &b_, 1); } while (0)
	FIX_BOOL(r.has_tenant);
	FIX_BOOL(r.has_rcode);
	FIX_BOOL(r.has_ede);
	FIX_BOOL(r.has_latency);
	FIX_BOOL(r.cache_hit);
	FIX_BOOL(r.rule.has_list_id);
	FIX_BOOL(r.rule.has_feed_id);
#undef FIX_BOOL
	int n = qlog_encode_json(&r, text, sizeof text);
	if (n < 0)
		return 0;
	if (qlog_decode_json(text, (size_t)n, &back, NULL, 0) < 0)
		abort();  /* an encoded record must decode */
	if (qlog_encode_json(&back, again, sizeof again) != n || memcmp(text, again, (size_t)n))
		abort();

	/* The tail, as (position, byte) pairs, corrupts the JSON. */
	const uint8_t *tail = data + 1 + used;
	size_t left = size - 1 - used;
	for (; left >= 3; tail += 3, left -= 3)
		text[((size_t)tail[0] << 8 | tail[1]) % (size_t)n] = (char)tail[2];
	check_decoded(text, (size_t)n);
	return 0;
}
