/* split_lookup.c -- snapshot_match_name() on one self-contained snapshot against the same
 * policy as a feed base plus an overlay (what tenantd sends nodes), in the same process.
 *
 * Policy: 1,000,000 feed names in the base; 10,000 tenants, 50,000 networks and 42,000 list
 * names in the overlay. Query mix as in bench/resolver: 90% names from a set of 1,000 that no
 * list holds, 10% random feed names. Prints the best of 15 rounds per form, in ns per query.
 * Run through bench/snapshot/run.sh. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"

enum { FEED_NAMES = 1000000, TENANTS = 10000, NETWORKS = 50000, LIST_NAMES = 42000 };
enum { QUERIES = 200000, ROUNDS = 15, PASSES = 10 };
enum form { ONE_FILE, BASE, OVERLAY };

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t to_wire(const char *text, uint8_t *out)
{
	size_t o = 0;
	for (const char *p = text; *p;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		out[o++] = (uint8_t)n;
		memcpy(out + o, p, n);
		o += n;
		p += n + (p[n] == '.');
	}
	out[o++] = 0;
	return o;
}

static void check(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "split_lookup: %s failed: %d\n", what, rc);
		exit(1);
	}
}

static struct snapshot *build(enum form form, const struct snapshot *base, const char *path)
{
	char err[256], name[64];
	struct snapshot_builder *b = snapshot_builder_new(1);
	if (!b)
		exit(1);
	if (base)
		check(snapshot_builder_set_base(b, base), "set_base");
	check(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), "category");
	if (form != OVERLAY)
		for (int i = 1; i <= FEED_NAMES; i++) {
			snprintf(name, sizeof name, "b%07d.blocked.wild.test", i);
			check(snapshot_builder_add_name(b, name, SNAPSHOT_FEED, 0), "feed name");
		}
	if (form != BASE) {
		struct snapshot_tenant_spec t = { .name = "t", .block_mask = 1, .trunc_v4 = 24,
						  .trunc_v6 = 48 };
		for (int i = 0; i < TENANTS; i++) {
			t.id[0] = (uint8_t)i;
			t.id[1] = (uint8_t)(i >> 8);
			check(snapshot_builder_add_tenant(b, &t), "tenant");
		}
		for (int i = 0; i < NETWORKS; i++) {
			snprintf(name, sizeof name, "10.%d.%d.0/24", i / 256, i % 256);
			check(snapshot_builder_add_network(b, (uint32_t)(i % TENANTS), name), "network");
		}
		for (int i = 0; i < LIST_NAMES; i++) {
			snprintf(name, sizeof name, "l%05d.list.test", i);
			check(snapshot_builder_add_name(b, name, i % 2 ? SNAPSHOT_TENANT_DENY
								: SNAPSHOT_NATIONAL_BLOCK,
							(uint32_t)(i % TENANTS)), "list name");
		}
	}
	if (snapshot_builder_write(b, path, err, sizeof err) < 0) {
		fprintf(stderr, "split_lookup: %s\n", err);
		exit(1);
	}
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	if (!s) {
		fprintf(stderr, "split_lookup: %s\n", err);
		exit(1);
	}
	return s;
}

int main(int argc, char **argv)
{
	static uint8_t wire[QUERIES][64];
	static size_t wire_len[QUERIES];
	char err[256], name[64], p1[4096], p2[4096], p3[4096];
	const char *dir = argc > 1 ? argv[1] : "/tmp";
	snprintf(p1, sizeof p1, "%s/one.snap", dir);
	snprintf(p2, sizeof p2, "%s/base.snap", dir);
	snprintf(p3, sizeof p3, "%s/overlay.snap", dir);

	struct snapshot *one = build(ONE_FILE, NULL, p1);
	struct snapshot *base = build(BASE, NULL, p2);
	struct snapshot *overlay = build(OVERLAY, base, p3);
	if (snapshot_attach_base(overlay, base, err, sizeof err) < 0) {
		fprintf(stderr, "split_lookup: %s\n", err);
		return 1;
	}
	srand(1);
	for (int i = 0; i < QUERIES; i++) {
		if (i % 10 == 9)
			snprintf(name, sizeof name, "b%07d.blocked.wild.test", 1 + rand() % FEED_NAMES);
		else
			snprintf(name, sizeof name, "a%04d.wild.test", rand() % 1000);
		wire_len[i] = to_wire(name, wire[i]);
	}

	const struct snapshot *forms[2] = { one, overlay };
	double best[2] = { 1e9, 1e9 };
	uint64_t blocked[2] = { 0, 0 };
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 2; k++) {
			struct snapshot_match m;
			double t0 = now();
			for (int pass = 0; pass < PASSES; pass++)
				for (int i = 0; i < QUERIES; i++) {
					snapshot_match_name(forms[k], 0, wire[i], wire_len[i], &m);
					blocked[k] += m.categories != 0;
				}
			double ns = (now() - t0) / ((double)PASSES * QUERIES) * 1e9;
			if (ns < best[k])
				best[k] = ns;
		}
	/* Both forms must have judged every query alike. */
	if (blocked[0] != blocked[1]) {
		fprintf(stderr, "split_lookup: %llu vs %llu feed matches\n",
			(unsigned long long)blocked[0], (unsigned long long)blocked[1]);
		return 1;
	}
	printf("one file %.1f ns/query, base + overlay %.1f ns/query, difference %+.1f ns "
	       "(best of %d rounds, %llu feed matches each)\n", best[0], best[1], best[1] - best[0],
	       ROUNDS, (unsigned long long)blocked[0]);
	snapshot_close(overlay);
	snapshot_close(base);
	snapshot_close(one);
	unlink(p1);
	unlink(p2);
	unlink(p3);
	return 0;
}
