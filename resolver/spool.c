/* spool.c -- segment files of CRC-framed records, a confirmed cursor, a byte bound.
 *
 * Layout of the folder (docs/querylog.md, "The spool"):
 *   <seq>.seg  16 lower-case hex digits; a 16-byte header ("AEGSPOOL", version 1 as u32 LE,
 *              4 zero bytes), then records: length u32 LE, CRC-32 (zlib) u32 LE of the four
 *              length bytes followed by the payload, the payload.
 *   cursor     "<seq> <offset>\n": everything before it is confirmed. Replaced by rename.
 * Each open starts a new segment for appends, so a torn tail left by a crash stays where it
 * is and is found by its CRC when read, like any other corrupt stretch.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"

#define SEG_MAGIC     "AEGSPOOL"
#define SEG_VERSION   1
#define SEG_HDR       16
#define REC_HDR       8
#define SPOOL_MIN     (64u * 1024)
#define SEG_MIN       (16u * 1024)
#define SEG_MAX       (64u * 1024 * 1024)
#define BUF_CAP       (SPOOL_RECORD_MAX + REC_HDR)

struct spool {
	char *dir;
	uint64_t max_bytes, seg_max;
	uint64_t bytes;              /* segment files, buffered bytes included */
	struct spool_pos cursor;     /* confirmed up to here */
	uint64_t first_seg;          /* oldest segment that may exist */
	/* writer: segment wseg, wsize bytes of which wlen are still in wbuf */
	uint64_t wseg, wsize;
	int wfd;
	size_t wlen, wrecs;
	uint8_t *wbuf;
	/* reader: next record at rpos; rbuf holds rbuf_len bytes of segment rbuf_seg from
	 * rbuf_off */
	struct spool_pos rpos;
	int rfd;
	uint64_t rfd_seg, rbuf_seg, rbuf_off;
	uint64_t rsize_seg, rsize;   /* size of a finished segment, read once */
	size_t rbuf_len;
	uint8_t *rbuf;
	struct spool_stats st;
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t record_crc(const uint8_t len_le[4], const void *data, size_t len)
{
	uLong crc = crc32(0L, len_le, 4);
	return (uint32_t)crc32(crc, data, (uInt)len);
}

static void seg_path(const struct spool *s, uint64_t seg, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%016" PRIx64 ".seg", s->dir, seg);
}

static void cursor_path(const struct spool *s, char *out, size_t cap)
{
	snprintf(out, cap, "%s/cursor", s->dir);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A temporary file renamed over the cursor, without the fsyncs of common/atomicfile: this runs
 * on the query log's sink thread once per replayed batch, and an fsync on a busy disk stalled
 * it long enough to overflow the workers' queues. A cursor lost or stale after a power loss
 * only replays confirmed records again (duplicates, never loss); a crash of the process alone
 * leaves the renamed file intact. */
static int save_cursor(struct spool *s)
{
	char path[4096], tmp[4100], text[64];
	int len = snprintf(text, sizeof text, "%" PRIu64 " %" PRIu64 "\n", s->cursor.seg,
			   s->cursor.off);
	cursor_path(s, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int rc = fd < 0 ? -errno : write_all(fd, (const uint8_t *)text, (size_t)len);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		log_err("spool_cursor_write_failed", "path=%s error=\"%s\"", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

/* Missing or unreadable: 0, and replay starts at the oldest segment (duplicates, no loss). */
static int load_cursor(struct spool *s, struct spool_pos *pos)
{
	char path[4096], text[64], extra;
	cursor_path(s, path, sizeof path);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	size_t n = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[n] = '\0';
	if (sscanf(text, "%" SCNu64 " %" SCNu64 "%c", &pos->seg, &pos->off, &extra) != 3 ||
	    extra != '\n' || pos->off < SEG_HDR) {
		log_warn("spool_cursor_invalid", "dir=%s replay=\"from the oldest segment\"", s->dir);
		return 0;
	}
	return 1;
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void remove_segment(struct spool *s, uint64_t seg)
{
	char path[4096];
	seg_path(s, seg, path, sizeof path);
	uint64_t size = file_size(path);
	if (unlink(path) == 0)
		s->bytes -= size < s->bytes ? size : s->bytes;
	else if (errno != ENOENT)
		log_err("spool_unlink_failed", "path=%s error=\"%s\"", path, strerror(errno));
}

static int start_segment(struct spool *s, uint64_t seg)
{
	char path[4096];
	uint8_t hdr[SEG_HDR] = SEG_MAGIC;

	put32(hdr + 8, SEG_VERSION);
	seg_path(s, seg, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	int rc = fd < 0 ? -errno : write_all(fd, hdr, sizeof hdr);
	if (rc < 0) {
		log_err("spool_segment_create_failed", "path=%s error=\"%s\"", path, strerror(-rc));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return rc;
	}
	if (s->wfd >= 0)
		close(s->wfd);
	s->wfd = fd;
	s->wseg = seg;
	s->wsize = SEG_HDR;
	s->bytes += SEG_HDR;
	return 0;
}

int spool_flush(struct spool *s)
{
	if (!s->wlen)
		return 0;
	uint64_t flushed = s->wsize - s->wlen;
	int rc = write_all(s->wfd, s->wbuf, s->wlen);
	if (rc == 0) {
		s->wlen = s->wrecs = 0;
		return 0;
	}
	/* The buffered records are lost; cut any part of them that reached the file so the
	 * segment stays readable to its end. */
	log_err("spool_write_failed", "dir=%s segment=%" PRIu64 " error=\"%s\" lost=%zu", s->dir,
		s->wseg, strerror(-rc), s->wrecs);
	if (ftruncate(s->wfd, (off_t)flushed) < 0 || lseek(s->wfd, 0, SEEK_END) < 0)
		log_err("spool_truncate_failed", "dir=%s error=\"%s\"", s->dir, strerror(errno));
	s->st.write_lost += s->wrecs;
	s->bytes -= s->wlen;
	s->wsize = flushed;
	s->wlen = s->wrecs = 0;
	return rc;
}

bool spool_fits(const struct spool *s, size_t len)
{
	uint64_t need = REC_HDR + len;
	if (s->wsize + need > s->seg_max && s->wsize > SEG_HDR)
		need += SEG_HDR;
	return s->bytes + need <= s->max_bytes;
}

int spool_append(struct spool *s, const void *data, size_t len)
{
	int rc;

	if (!len || len > SPOOL_RECORD_MAX)
		return -EINVAL;
	if (!spool_fits(s, len)) {
		s->st.refused_full++;
		return -ENOSPC;
	}
	if (s->wsize + REC_HDR + len > s->seg_max && s->wsize > SEG_HDR) {
		/* A finished segment's write-back starts now, without waiting for it: an
		 * fdatasync of tens of MiB here would stall the sink thread. */
		if ((rc = spool_flush(s)) < 0)
			return rc;
		sync_file_range(s->wfd, 0, 0, SYNC_FILE_RANGE_WRITE);
		if ((rc = start_segment(s, s->wseg + 1)) < 0)
			return rc;
	}
	if (BUF_CAP - s->wlen < REC_HDR + len && (rc = spool_flush(s)) < 0)
		return rc;
	uint8_t *p = s->wbuf + s->wlen;
	put32(p, (uint32_t)len);
	put32(p + 4, record_crc(p, data, len));
	memcpy(p + REC_HDR, data, len);
	s->wlen += REC_HDR + len;
	s->wrecs++;
	s->wsize += REC_HDR + len;
	s->bytes += REC_HDR + len;
	s->st.appended++;
	return 0;
}

/* Makes rbuf hold [off, off + need) of segment seg, reading as much as fits. Returns the
 * bytes available from off (< need at the end of the file), or a negative errno. */
static ssize_t fill(struct spool *s, uint64_t seg, uint64_t off, size_t need)
{
	if (s->rbuf_seg == seg && off >= s->rbuf_off && off + need <= s->rbuf_off + s->rbuf_len)
		return (ssize_t)need;
	if (s->rfd_seg != seg || s->rfd < 0) {
		char path[4096];
		if (s->rfd >= 0)
			close(s->rfd);
		seg_path(s, seg, path, sizeof path);
		s->rfd = open(path, O_RDONLY | O_CLOEXEC);
		s->rfd_seg = seg;
		if (s->rfd < 0)
			return -errno;
	}
	ssize_t n;
	do
		n = pread(s->rfd, s->rbuf, BUF_CAP, (off_t)off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	s->rbuf_seg = seg;
	s->rbuf_off = off;
	s->rbuf_len = (size_t)n;
	return (size_t)n < need ? n : (ssize_t)need;
}

static void skip_corrupt(struct spool *s, uint64_t seg, uint64_t off, uint64_t size,
			 const char *why)
{
	s->st.corrupt++;
	s->st.corrupt_bytes += size > off ? size - off : 0;
	log_warn("spool_corrupt_skipped", "dir=%s segment=%" PRIu64 " offset=%" PRIu64
		 " bytes=%" PRIu64 " reason=\"%s\"", s->dir, seg, off, size > off ? size - off : 0,
		 why);
}

/* The end of segment seg as the reader may see it: what was flushed for the one being
 * written, the file's size for the others. */
static uint64_t readable_end(struct spool *s, uint64_t seg)
{
	char path[4096];
	if (seg == s->wseg)
		return s->wsize;
	if (s->rsize_seg != seg) {
		seg_path(s, seg, path, sizeof path);
		s->rsize = file_size(path);
		s->rsize_seg = seg;
	}
	return s->rsize;
}

int spool_read(struct spool *s, void *buf, size_t cap, size_t *len, struct spool_pos *end)
{
	int rc;

	if (s->wlen && (rc = spool_flush(s)) < 0)
		return rc;
	for (;;) {
		uint64_t seg = s->rpos.seg, off = s->rpos.off, size = readable_end(s, seg);
		*end = s->rpos;
		if (off >= size) {
			if (seg >= s->wseg)
				return 0;
			s->rpos = (struct spool_pos){ seg + 1, SEG_HDR };
			continue;
		}
		if (off == SEG_HDR) {
			ssize_t n = fill(s, seg, 0, SEG_HDR);  /* so rbuf starts at offset 0 */
			if (n < 0)
				return (int)n;
			if (n != SEG_HDR || memcmp(s->rbuf, SEG_MAGIC, 8) ||
			    get32(s->rbuf + 8) != SEG_VERSION) {
				skip_corrupt(s, seg, 0, size, "bad segment header");
				s->rpos.off = size;
				continue;
			}
		}
		ssize_t n = fill(s, seg, off, REC_HDR);
		if (n < 0)
			return (int)n;
		const uint8_t *h = s->rbuf + (off - s->rbuf_off);
		uint32_t rlen = n == REC_HDR ? get32(h) : 0;
		if (n < REC_HDR || rlen == 0 || rlen > SPOOL_RECORD_MAX ||
		    off + REC_HDR + rlen > size) {
			skip_corrupt(s, seg, off, size, n < REC_HDR ? "torn record header" :
				     rlen == 0 || rlen > SPOOL_RECORD_MAX ? "impossible length" :
				     "record runs past the end of the segment");
			s->rpos.off = size;
			continue;
		}
		uint32_t crc = get32(h + 4);
		n = fill(s, seg, off, REC_HDR + rlen);
		if (n < 0)
			return (int)n;
		h = s->rbuf + (off - s->rbuf_off);
		if ((size_t)n < REC_HDR + rlen || record_crc(h, h + REC_HDR, rlen) != crc) {
			skip_corrupt(s, seg, off, size, "checksum mismatch");
			s->rpos.off = size;
			continue;
		}
		if (rlen > cap)
			return -EMSGSIZE;
		memcpy(buf, h + REC_HDR, rlen);
		*len = rlen;
		s->rpos.off = off + REC_HDR + rlen;
		*end = s->rpos;
		return 1;
	}
}

void spool_rewind(struct spool *s)
{
	s->rpos = s->cursor;
}

bool spool_empty(const struct spool *s)
{
	return s->cursor.seg == s->wseg && s->cursor.off == s->wsize;
}

int spool_commit(struct spool *s, struct spool_pos pos)
{
	int rc;

	s->cursor = pos;
	if (spool_empty(s) && s->wsize > SEG_HDR) {
		/* All confirmed: a fresh segment gives the space back now rather than when the
		 * current one fills. */
		if ((rc = start_segment(s, s->wseg + 1)) < 0)
			return rc;
		s->cursor = s->rpos = (struct spool_pos){ s->wseg, SEG_HDR };
	}
	if ((rc = save_cursor(s)) < 0)
		return rc;
	for (; s->first_seg < s->cursor.seg; s->first_seg++)
		remove_segment(s, s->first_seg);
	return 0;
}

void spool_get_stats(const struct spool *s, struct spool_stats *st)
{
	*st = s->st;
	st->bytes = s->bytes;
}

/* The oldest and newest segment numbers in the folder and the bytes they hold; false if
 * there is none. */
static int scan_segments(struct spool *s, uint64_t *first, uint64_t *last, bool *any)
{
	DIR *d = opendir(s->dir);
	struct dirent *e;

	if (!d)
		return -errno;
	*any = false;
	while ((e = readdir(d))) {
		char *endp, path[4096];
		if (strlen(e->d_name) != 20 || strcmp(e->d_name + 16, ".seg"))
			continue;
		uint64_t seg = strtoull(e->d_name, &endp, 16);
		if (endp != e->d_name + 16)
			continue;
		if (!*any || seg < *first)
			*first = seg;
		if (!*any || seg > *last)
			*last = seg;
		*any = true;
		snprintf(path, sizeof path, "%s/%s", s->dir, e->d_name);
		s->bytes += file_size(path);
	}
	closedir(d);
	return 0;
}

/* Whether the segments from pos up to (not including) upto hold bytes past pos. */
static bool unread_left(struct spool *s, struct spool_pos pos, uint64_t upto)
{
	char path[4096];
	for (uint64_t seg = pos.seg; seg < upto; seg++) {
		seg_path(s, seg, path, sizeof path);
		uint64_t size = file_size(path);
		if (size > (seg == pos.seg ? pos.off : SEG_HDR))
			return true;
	}
	return false;
}

struct spool *spool_open(const char *dir, uint64_t max_bytes)
{
	struct spool *s = calloc(1, sizeof *s);
	uint64_t first = 0, last = 0;
	struct spool_pos cur;
	bool any;
	int rc = -ENOMEM;

	if (!s || !(s->dir = strdup(dir)) || !(s->wbuf = malloc(BUF_CAP)) ||
	    !(s->rbuf = malloc(BUF_CAP)))
		goto fail;
	s->wfd = s->rfd = -1;
	s->rbuf_seg = s->rsize_seg = UINT64_MAX;
	s->max_bytes = max_bytes < SPOOL_MIN ? SPOOL_MIN : max_bytes;
	s->seg_max = s->max_bytes / 8;
	s->seg_max = s->seg_max < SEG_MIN ? SEG_MIN : s->seg_max > SEG_MAX ? SEG_MAX : s->seg_max;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		rc = -errno;
		goto fail;
	}
	if ((rc = scan_segments(s, &first, &last, &any)) < 0)
		goto fail;
	/* 1. The cursor names the first record not confirmed; segments before it are leftovers
	 *    of a run that stopped between saving the cursor and deleting them.
	 * 2. Without a usable cursor, replay starts at the oldest segment.
	 * 3. Appends go to a new segment after the newest. */
	if (!any) {
		first = last = 0;
		cur = (struct spool_pos){ 1, SEG_HDR };
	} else if (!load_cursor(s, &cur) || cur.seg < first) {
		cur = (struct spool_pos){ first, SEG_HDR };
	} else if (cur.seg > last) {
		cur = (struct spool_pos){ last + 1, SEG_HDR };
	}
	s->first_seg = any ? first : cur.seg;
	if ((rc = start_segment(s, any ? last + 1 : cur.seg)) < 0)
		goto fail;
	s->cursor = s->rpos = cur;
	if (!unread_left(s, cur, s->wseg))
		s->cursor = s->rpos = (struct spool_pos){ s->wseg, SEG_HDR };
	if ((rc = spool_commit(s, s->cursor)) < 0)
		goto fail;
	if (!spool_empty(s))
		log_info("spool_opened", "dir=%s bytes=%" PRIu64 " replay_from=%" PRIu64 ":%" PRIu64,
			 dir, s->bytes, s->cursor.seg, s->cursor.off);
	return s;

fail:
	log_err("spool_open_failed", "dir=%s error=\"%s\"", dir, strerror(-rc));
	spool_close(s);
	errno = -rc;
	return NULL;
}

void spool_close(struct spool *s)
{
	if (!s)
		return;
	if (s->wfd >= 0) {
		if (spool_flush(s) == 0 && fdatasync(s->wfd) < 0)
			log_warn("spool_sync_failed", "dir=%s error=\"%s\"", s->dir, strerror(errno));
		close(s->wfd);
	}
	if (s->rfd >= 0)
		close(s->rfd);
	free(s->wbuf);
	free(s->rbuf);
	free(s->dir);
	free(s);
}
