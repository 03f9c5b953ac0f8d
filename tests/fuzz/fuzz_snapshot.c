/* fuzz_snapshot.c -- libFuzzer target for the snapshot reader (common/snapshot.c).
 *
 * The input is a snapshot image. Its checksum is recomputed before opening, or nearly every
 * input would stop at the SHA-256 check and the structural validation would never be
 * exercised. Whatever opens must then answer lookups without reading out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whatever opens is also tried as the feed base of a small overlay built on it: when the
 * attach takes it, lookups walk both tables. */
static void match_as_base(struct snapshot *base, const uint8_t *name, size_t len)
{
	/* tmpfs: the builder fsyncs what it writes. */
	char path[] = "/dev/shm/aegis-fuzz-overlay-XXXXXX", err[256];
	struct snapshot_builder *b = snapshot_builder_new(1);
	int fd = mkstemp(path);
	if (fd >= 0)
		close(fd);
	if (!b || fd < 0 || snapshot_builder_set_base(b, base) < 0)
		goto out;
	for (uint32_t c = 0; c < snapshot_category_count(base); c++)
		if (snapshot_builder_add_category(b, snapshot_category_name(base, c),
						  snapshot_category_kind(base, c)) < 0)
			goto out;
	struct snapshot_tenant_spec t = { .name = "t", .trunc_v4 = 24, .trunc_v6 = 48 };
	if (snapshot_builder_add_tenant(b, &t) < 0 ||
	    snapshot_builder_add_name(b, "www.example.com", SNAPSHOT_TENANT_DENY, 0) < 0 ||
	    snapshot_builder_write(b, path, err, sizeof err) < 0)
		goto out;
	struct snapshot *overlay = snapshot_open(path, err, sizeof err);
	if (overlay && snapshot_attach_base(overlay, base, err, sizeof err) == 0) {
		struct snapshot_match m;
		snapshot_match_name(overlay, 0, name, len, &m);
	}
	snapshot_close(overlay);
out:
	snapshot_builder_free(b);
	if (fd >= 0)
		unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	snapshot_seal_buffer(copy, size);

	char err[256];
	struct snapshot *s = snapshot_open_buffer(copy, size, err, sizeof err);
	free(copy);
	if (!s)
		return 0;

	static const uint8_t names[][32] = {
		"\3www\7example\3com",
		"\1a\1b\1c\1d\1e\1f\1g\1h",
		"\3BAD\7ExAmPlE",
	};
	struct snapshot_match m;
	uint32_t tenants = snapshot_tenant_count(s);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		snapshot_match_name(s, UINT32_MAX, names[i], sizeof names[i], &m);
		for (uint32_t t = 0; t < tenants && t < 4; t++)
			snapshot_match_name(s, t, names[i], sizeof names[i], &m);
	}
	/* The input's own tail as a name: arbitrary label bytes. */
	snapshot_match_name(s, 0, data + size / 2, size - size / 2, &m);

	static const uint8_t v4[][4] = { { 0, 0, 0, 0 }, { 10, 0, 5, 1 }, { 255, 255, 255, 255 } };
	static const uint8_t v6[][16] = { { 0 }, { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
					  { [0 ... 15] = 0xff } };
	for (size_t i = 0; i < 3; i++) {
		int t = snapshot_tenant_for_address(s, AF_INET, v4[i]);
		if (t >= 0) {
			const struct snapshot_tenant *rec = snapshot_tenant(s, (uint32_t)t);
			snapshot_tenant_name(s, rec, NULL);
			snapshot_tenant_ede_text(s, rec, NULL);
		}
		snapshot_tenant_for_address(s, AF_INET6, v6[i]);
	}
	for (uint32_t c = 0; c < snapshot_category_count(s); c++)
		snapshot_category_find(s, snapshot_category_name(s, c));
	match_as_base(s, names[0], sizeof names[0]);
	snapshot_close(s);
	return 0;
}
