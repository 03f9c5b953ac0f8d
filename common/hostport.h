/* hostport.h -- "ADDRESS:PORT" settings (IPv6 written "[ADDRESS]:PORT"): the listen and
 * upstream addresses in every daemon's configuration, parsed by one function. Addresses are
 * numeric (no name lookups at start-up); ports are 1..65535. No memory is handed out.
 */
#ifndef AEGIS_HOSTPORT_H
#define AEGIS_HOSTPORT_H

#include <stddef.h>
#include <sys/socket.h>

/* Fills *ss and *len from text. 0, or -EINVAL (ss is then unspecified). */
int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
	__attribute__((warn_unused_result));

/* A configuration check (config_check_fn) for an ADDRESS:PORT setting. */
int hostport_check(const char *value, char *err, size_t errlen);

#endif
