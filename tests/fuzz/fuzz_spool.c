/* fuzz_spool.c -- libFuzzer target for the spool's segment reader (resolver/spool.c).
 *
 * The input is a segment file as a crash or a bad disk could leave it. The spool opens a
 * folder holding it and reads every record: whatever it returns must be a whole record of a
 * valid length, the reader must reach the end, and confirming that end must leave the spool
 * empty. Works in a folder of /dev/shm (tmpfs: the cursor's fsync costs nothing).
 *
 *   make fuzz   (or build/fuzz/fuzz_spool -max_total_time=60 tests/fuzz/corpus/fuzz_spool)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], seg[96], next_seg[96], cursor[96];
static uint8_t buf[SPOOL_RECORD_MAX];

static void cleanup(void)
{
	unlink(seg);
	unlink(next_seg);
	unlink(cursor);
	rmdir(dir);
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "%s/aegis-fuzz-spool-XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		abort();
	snprintf(seg, sizeof seg, "%s/0000000000000001.seg", dir);
	snprintf(next_seg, sizeof next_seg, "%s/0000000000000002.seg", dir);
	snprintf(cursor, sizeof cursor, "%s/cursor", dir);
	/* corrupt stretches are logged at warn level: keep the fuzzer's output quiet */
	log_set_level(LOG_LEVEL_ERROR);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!dir[0])
		setup();
	unlink(cursor);
	unlink(next_seg);
	FILE *f = fopen(seg, "w");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();

	struct spool *s = spool_open(dir, 1 << 20);
	if (!s)
		abort();
	struct spool_pos end = { 0 };
	size_t len, total = 0;
	int rc;
	while ((rc = spool_read(s, buf, sizeof buf, &len, &end)) == 1) {
		if (len == 0 || len > SPOOL_RECORD_MAX)
			abort();
		total += len + 8;
		if (total > size)
			abort();  /* returned more than the file holds */
	}
	if (rc != 0 || spool_commit(s, end) != 0 || !spool_empty(s))
		abort();
	spool_close(s);
	/* the commit deleted the input's segment; the spool's fresh one goes next round */
	unlink(seg);
	unlink(next_seg);
	return 0;
}
