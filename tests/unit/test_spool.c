/* test_spool.c -- the on-disk spool: order, the bound, the cursor across a restart, corrupt
 * and truncated segments found by their checksums and skipped. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

static char dir[64];
static uint8_t buf[SPOOL_RECORD_MAX];

static void make_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/aegis-test-spool-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

TestSuite(spool, .init = make_dir, .fini = remove_dir);

/* Record i: "rec <i>" padded with a pattern to a length that varies with i. */
static size_t make_rec(unsigned i, char *out)
{
	size_t len = 8 + (i * 37) % 700;
	int n = snprintf(out, len, "rec %u ", i);
	for (size_t k = (size_t)n; k < len; k++)
		out[k] = (char)('a' + (i + k) % 26);
	return len;
}

static void append_n(struct spool *s, unsigned from, unsigned to)
{
	char rec[1024];
	for (unsigned i = from; i < to; i++) {
		size_t len = make_rec(i, rec);
		cr_assert_eq(spool_append(s, rec, len), 0, "record %u", i);
	}
}

/* Reads the next record and checks it is record i; returns where it ends. */
static struct spool_pos expect_rec(struct spool *s, unsigned i)
{
	char want[1024];
	size_t wlen = make_rec(i, want), len = 0;
	struct spool_pos end;
	int rc = spool_read(s, buf, sizeof buf, &len, &end);
	cr_assert_eq(rc, 1, "record %u: read returned %d", i, rc);
	cr_assert_eq(len, wlen, "record %u: length %zu, want %zu", i, len, wlen);
	cr_assert(memcmp(buf, want, len) == 0, "record %u differs", i);
	return end;
}

static void expect_end(struct spool *s, struct spool_pos *end)
{
	size_t len;
	struct spool_pos e;
	cr_assert_eq(spool_read(s, buf, sizeof buf, &len, &e), 0);
	if (end)
		*end = e;
}

static unsigned count_segments(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned n = 0;
	while ((e = readdir(d)))
		n += strstr(e->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

/* The segment files, oldest first (names sort by number). */
static void segment_path(unsigned index, char *out, size_t cap)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort), k = 0;
	cr_assert_geq(n, 0);
	for (int i = 0; i < n; i++) {
		if (strstr(list[i]->d_name, ".seg") && k++ == (int)index)
			snprintf(out, cap, "%s/%s", dir, list[i]->d_name);
		free(list[i]);
	}
	free(list);
}

Test(spool, replays_in_order_and_empties_on_commit)
{
	struct spool *s = spool_open(dir, 64 << 20);
	struct spool_pos end, last;
	cr_assert_not_null(s);
	cr_assert(spool_empty(s));
	append_n(s, 0, 3000);
	cr_assert_not(spool_empty(s));
	for (unsigned i = 0; i < 3000; i++)
		last = expect_rec(s, i);
	expect_end(s, &end);
	cr_assert_eq(spool_commit(s, last), 0);
	cr_assert(spool_empty(s));
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_eq(st.appended, 3000);
	cr_assert_eq(st.corrupt, 0);
	cr_assert_leq(st.bytes, 16, "space given back once everything is confirmed");
	spool_close(s);
}

Test(spool, rewind_reads_unconfirmed_records_again)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 10);
	struct spool_pos p = { 0 };
	for (unsigned i = 0; i < 4; i++)
		p = expect_rec(s, i);
	cr_assert_eq(spool_commit(s, p), 0);
	for (unsigned i = 4; i < 8; i++)
		expect_rec(s, i);
	spool_rewind(s);
	for (unsigned i = 4; i < 10; i++)
		expect_rec(s, i);
	expect_end(s, NULL);
	spool_close(s);
}

Test(spool, bound_refuses_and_counts)
{
	struct spool *s = spool_open(dir, 64 * 1024);
	char rec[1024];
	unsigned ok = 0, refused = 0;
	for (unsigned i = 0; i < 400; i++) {
		size_t len = make_rec(i, rec);
		int rc = spool_append(s, rec, len);
		cr_assert(rc == 0 || rc == -ENOSPC, "append %u: %d", i, rc);
		if (rc == 0)
			ok++;
		else
			refused++;
	}
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_gt(ok, 0);
	cr_assert_gt(refused, 0);
	cr_assert_eq(st.refused_full, refused);
	cr_assert_leq(st.bytes, 64 * 1024);
	/* what was accepted comes back; confirming it makes room again */
	struct spool_pos last = { 0 };
	unsigned i = 0, read = 0;
	for (; read < ok; i++) {
		char want[1024];
		size_t wlen = make_rec(i, want), len;
		struct spool_pos end;
		int rc = spool_read(s, buf, sizeof buf, &len, &end);
		cr_assert_eq(rc, 1);
		/* refused records are missing from the sequence: match by content */
		while (len != wlen || memcmp(buf, want, len) != 0)
			wlen = make_rec(++i, want);
		last = end;
		read++;
	}
	expect_end(s, NULL);
	cr_assert_eq(spool_commit(s, last), 0);
	cr_assert_eq(spool_append(s, "again", 5), 0);
	spool_close(s);
}

Test(spool, restart_resumes_at_the_cursor)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 100);
	struct spool_pos p = { 0 };
	for (unsigned i = 0; i < 40; i++)
		p = expect_rec(s, i);
	cr_assert_eq(spool_commit(s, p), 0);
	for (unsigned i = 40; i < 60; i++)
		expect_rec(s, i);       /* read, never confirmed */
	spool_close(s);

	s = spool_open(dir, 64 << 20);
	cr_assert_not_null(s);
	cr_assert_not(spool_empty(s));
	append_n(s, 100, 120);  /* after a restart, behind what was left */
	for (unsigned i = 40; i < 120; i++)
		p = expect_rec(s, i);
	expect_end(s, NULL);
	cr_assert_eq(spool_commit(s, p), 0);
	spool_close(s);

	s = spool_open(dir, 64 << 20);
	cr_assert(spool_empty(s));
	expect_end(s, NULL);
	cr_assert_eq(count_segments(), 1, "confirmed segments deleted");
	spool_close(s);
}

Test(spool, rotates_segments_and_deletes_confirmed_ones)
{
	struct spool *s = spool_open(dir, 1 << 20);  /* 128 KiB segments */
	append_n(s, 0, 2000);                        /* ~700 KiB */
	cr_assert_eq(spool_flush(s), 0);
	unsigned before = count_segments();
	cr_assert_gt(before, 3);
	struct spool_pos p = { 0 };
	for (unsigned i = 0; i < 1000; i++)
		p = expect_rec(s, i);
	cr_assert_eq(spool_commit(s, p), 0);
	cr_assert_lt(count_segments(), before);
	for (unsigned i = 1000; i < 2000; i++)
		expect_rec(s, i);
	spool_close(s);
}

static void corrupt_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t b;
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &b, 1, at), 1);
	b ^= 0x5a;
	cr_assert_eq(pwrite(fd, &b, 1, at), 1);
	close(fd);
}

/* Offset in the segment of record k (0-based) of those appended from 0 on. */
static off_t offset_of(unsigned k)
{
	char rec[1024];
	off_t off = 16;
	for (unsigned i = 0; i < k; i++)
		off += 8 + (off_t)make_rec(i, rec);
	return off;
}

Test(spool, corrupt_record_skips_the_rest_of_its_segment_and_counts)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 50);
	spool_close(s);
	char path[512];
	segment_path(0, path, sizeof path);
	corrupt_byte(path, offset_of(45) + 8 + 3);  /* inside record 45's payload */

	s = spool_open(dir, 64 << 20);
	append_n(s, 50, 55);  /* a new segment: unaffected */
	for (unsigned i = 0; i < 45; i++)
		expect_rec(s, i);
	for (unsigned i = 50; i < 55; i++)
		expect_rec(s, i);
	struct spool_pos end;
	expect_end(s, &end);
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_eq(st.corrupt, 1);
	cr_assert_gt(st.corrupt_bytes, 0);
	cr_assert_eq(spool_commit(s, end), 0);
	cr_assert(spool_empty(s));
	spool_close(s);
}

Test(spool, corrupt_length_is_caught)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 20);
	spool_close(s);
	char path[512];
	segment_path(0, path, sizeof path);
	corrupt_byte(path, offset_of(10) + 2);  /* record 10's length: now far too long */

	s = spool_open(dir, 64 << 20);
	for (unsigned i = 0; i < 10; i++)
		expect_rec(s, i);
	expect_end(s, NULL);
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_eq(st.corrupt, 1);
	spool_close(s);
}

Test(spool, truncated_segment_keeps_its_whole_records)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 30);
	spool_close(s);
	char path[512];
	segment_path(0, path, sizeof path);
	/* a crash in the middle of writing record 25: half its payload made it */
	cr_assert_eq(truncate(path, offset_of(25) + 8 + 4), 0);

	s = spool_open(dir, 64 << 20);
	for (unsigned i = 0; i < 25; i++)
		expect_rec(s, i);
	expect_end(s, NULL);
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_eq(st.corrupt, 1);
	spool_close(s);

	/* cut inside a record header too */
	s = spool_open(dir, 64 << 20);
	spool_close(s);
	cr_assert_eq(truncate(path, offset_of(20) + 3), 0);
	s = spool_open(dir, 64 << 20);
	for (unsigned i = 0; i < 20; i++)
		expect_rec(s, i);
	expect_end(s, NULL);
	spool_get_stats(s, &st);
	cr_assert_eq(st.corrupt, 1);
	spool_close(s);
}

Test(spool, foreign_segment_header_is_skipped)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 5);
	spool_close(s);
	char path[512];
	segment_path(0, path, sizeof path);
	corrupt_byte(path, 0);

	s = spool_open(dir, 64 << 20);
	append_n(s, 5, 7);
	expect_rec(s, 5);
	expect_rec(s, 6);
	expect_end(s, NULL);
	struct spool_stats st;
	spool_get_stats(s, &st);
	cr_assert_eq(st.corrupt, 1);
	spool_close(s);
}

Test(spool, unreadable_cursor_replays_from_the_oldest_segment)
{
	struct spool *s = spool_open(dir, 64 << 20);
	append_n(s, 0, 10);
	struct spool_pos p = { 0 };
	for (unsigned i = 0; i < 5; i++)
		p = expect_rec(s, i);
	cr_assert_eq(spool_commit(s, p), 0);
	spool_close(s);
	char path[512];
	snprintf(path, sizeof path, "%s/cursor", dir);
	FILE *f = fopen(path, "w");
	fputs("garbage", f);
	fclose(f);

	s = spool_open(dir, 64 << 20);
	for (unsigned i = 0; i < 10; i++)   /* duplicates rather than loss */
		expect_rec(s, i);
	spool_close(s);
}

Test(spool, refuses_bad_lengths)
{
	struct spool *s = spool_open(dir, 64 << 20);
	cr_assert_eq(spool_append(s, "", 0), -EINVAL);
	cr_assert_eq(spool_append(s, buf, SPOOL_RECORD_MAX + 1), -EINVAL);
	cr_assert_eq(spool_append(s, buf, SPOOL_RECORD_MAX), 0);
	size_t len;
	struct spool_pos end;
	cr_assert_eq(spool_read(s, buf, sizeof buf, &len, &end), 1);
	cr_assert_eq(len, SPOOL_RECORD_MAX);
	spool_close(s);
}

Test(spool, open_fails_cleanly_on_an_unusable_folder)
{
	errno = 0;
	cr_assert_null(spool_open("/proc/aegis-no-such/spool", 1 << 20));
	cr_assert_neq(errno, 0);
}
