/* test_atomicfile.c -- a file replaced whole reads back whole; what cannot be read says so. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomicfile.h"

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/aegis-test-atomicfile-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/file", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(atomicfile, .init = setup, .fini = teardown);

Test(atomicfile, written_then_read_back_whole)
{
	char err[256] = "";
	static uint8_t data[300000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7);
	cr_assert_eq(atomicfile_write(path, data, sizeof data, err, sizeof err), 0, "%s", err);
	size_t len = 0;
	uint8_t *back = atomicfile_read(path, &len);
	cr_assert_not_null(back);
	cr_assert_eq(len, sizeof data);
	cr_assert_eq(memcmp(back, data, len), 0);
	free(back);

	/* Replaced by a shorter one: the reader sees the new file only. */
	cr_assert_eq(atomicfile_write(path, "new", 3, err, sizeof err), 0, "%s", err);
	back = atomicfile_read(path, &len);
	cr_assert(back && len == 3 && memcmp(back, "new", 3) == 0);
	free(back);

	cr_assert_eq(atomicfile_write(path, "", 0, err, sizeof err), 0, "%s", err);
	back = atomicfile_read(path, &len);
	cr_assert_not_null(back, "an empty file is not an error");
	cr_assert_eq(len, 0);
	free(back);
}

Test(atomicfile, unreadable_is_null_with_errno)
{
	size_t len = 99;
	errno = 0;
	cr_assert_null(atomicfile_read(path, &len));
	cr_assert_eq(errno, ENOENT);
	errno = 0;
	cr_assert_null(atomicfile_read(dir, &len), "a folder is not a file");
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(len, 99, "len untouched on failure");
}
