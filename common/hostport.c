/* hostport.c -- ADDRESS:PORT and [ADDRESS]:PORT into socket addresses. */
#include "hostport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN];
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text)
		return -EINVAL;
	size_t hl = (size_t)(colon - text);
	const char *h = text;
	bool bracketed = text[0] == '[' && hl >= 2 && text[hl - 1] == ']';
	if (bracketed) {
		h++;
		hl -= 2;
	}
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof host || !colon[1] || *end || errno || port == 0 ||
	    port > 65535 || colon[1] == '-' || colon[1] == '+' || colon[1] == ' ')
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';

	memset(ss, 0, sizeof *ss);
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (!bracketed && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof *a4;
		return 0;
	}
	if (bracketed && inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof *a6;
		return 0;
	}
	return -EINVAL;
}

int hostport_check(const char *value, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	if (hostport_parse(value, &ss, &len) == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not ADDRESS:PORT (IPv6 as [ADDRESS]:PORT, port 1-65535)",
		 value);
	return -1;
}
