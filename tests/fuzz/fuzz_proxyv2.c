/* fuzz_proxyv2.c -- libFuzzer target for proxyv2_parse(): no crash or out-of-bounds read on
 * any input, and the answers agree with each other.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Icommon -Iresolver tests/fuzz/fuzz_proxyv2.c \
 *         resolver/proxyv2.c resolver/netaddr.c -o fuzz_proxyv2
 *   ./fuzz_proxyv2 -max_total_time=60
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxyv2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage src, dst;
	/* A copy of exactly size bytes, so ASan sees any read past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	int n = proxyv2_parse(buf, size, &src, &dst);
	if (n != 0 && n != -EINVAL && (n < 16 || n > PROXYV2_MAX_HEADER || (size_t)n > size))
		abort();
	if (n > 0) {
		if (src.ss_family != dst.ss_family ||
		    (src.ss_family != AF_INET && src.ss_family != AF_INET6 &&
		     src.ss_family != AF_UNSPEC))
			abort();
		/* A complete header is complete at its own length, and every shorter cut of it is
		 * an incomplete one: what a TCP reader relies on. */
		if (proxyv2_parse(buf, (size_t)n, NULL, NULL) != n)
			abort();
		for (size_t cut = 0; cut < (size_t)n; cut++)
			if (proxyv2_parse(buf, cut, NULL, NULL) != 0)
				abort();
	}
	free(buf);
	return 0;
}
