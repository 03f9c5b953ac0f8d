/* special.h -- names a resolver answers itself and never forwards (RFC 6761, 6303, 7686,
 * 8375, 9462): localhost, invalid, test, local, onion, home.arpa, resolver.arpa and the
 * reverse zones of private and loopback addresses. A zone may be exempted by configuration
 * (a lab forwarding test., say). Pure functions over the lowercased query name.
 */
#ifndef AEGIS_SPECIAL_H
#define AEGIS_SPECIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum special_answer {
	SPECIAL_NONE,      /* not special: resolve normally */
	SPECIAL_LOOPBACK,  /* localhost: 127.0.0.1 / ::1 for address queries, else NODATA */
	SPECIAL_NODATA,    /* the name exists but has no data of interest */
	SPECIAL_NXDOMAIN,  /* the name does not exist */
};

struct special_match {
	enum special_answer answer;
	uint8_t zone_len;  /* the special zone's length as a suffix of the name, for the SOA */
};

/* exempt: wire names (NULL-terminated list, may be NULL) of special zones to forward anyway. */
void special_classify(const uint8_t *qname, uint8_t qname_len, const uint8_t *const *exempt,
		      struct special_match *m);

/* Writes the local answer for q; returns its length (0 if it does not fit in cap). */
size_t special_answer(const struct special_match *m, const struct wire_query *q,
		      const uint8_t *pkt, uint8_t *out, size_t cap);

#endif
