/* fuzz_portal_listio.c -- libFuzzer target for the portal's list import parsers
 * (portal-api/listio.c) and prefix checker (portal-api/valid.c).
 *
 * First byte picks the format (even: plain, odd: CSV); the rest is the uploaded file. Every
 * entry handed out must be a normalised name that normalises to itself, with a comment free
 * of control characters; a refusal must name a line within the input. The same bytes also go
 * through the CIDR checker, which must either accept or give a reason.
 *
 *   make fuzz   (or: build/fuzz/fuzz_portal_listio -max_total_time=60)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "listio.h"
#include "snapshot.h"
#include "valid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_entry(void *arg, const char *domain, const char *comment)
{
	char again[SNAPSHOT_NAME_TEXT_MAX];
	(void)arg;
	if (snapshot_name_text(domain, strlen(domain), again) != 0 || strcmp(again, domain) != 0)
		abort();   /* what the parser hands out is already in stored form */
	for (const char *c = comment; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct listio_error err;
	if (size == 0)
		return 0;
	enum listio_format fmt = data[0] & 1 ? LISTIO_CSV : LISTIO_PLAIN;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	int rc = listio_parse(fmt, text, len, check_entry, NULL, &err);
	if (rc == -EINVAL) {
		size_t lines = 1;
		for (size_t i = 0; i < len; i++)
			lines += text[i] == '\n';
		if (err.line < 1 || err.line > lines || !err.reason[0])
			abort();
	} else if (rc != 0) {
		abort();
	}

	char cidr[80];
	const char *why = NULL;
	size_t n = len < sizeof cidr - 1 ? len : sizeof cidr - 1;
	memcpy(cidr, text, n);
	cidr[n] = '\0';
	if (valid_cidr_text(cidr, &why) != 0 && (!why || !*why))
		abort();
	return 0;
}
