/* safesearch.h -- safe-search enforcement for the tenants that enable it.
 *
 * The major search engines and video sites publish a name that serves only their filtered
 * results (forcesafesearch.google.com, restrict.youtube.com, strict.bing.com,
 * safe.duckduckgo.com). For a tenant with safe search on, a query for the engine's name is
 * answered with a CNAME to that name followed by the target's own records, resolved and
 * cached under the target's name like any other query. Nothing here allocates on the match
 * path; building the answer uses ldns (the rewrite is rare next to plain queries).
 */
#ifndef AEGIS_SAFESEARCH_H
#define AEGIS_SAFESEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

/* If qname (lowercase wire) is an engine's name, returns its safe name in wire format and
 * sets *len; else NULL. */
const uint8_t *safesearch_target(const uint8_t *qname, uint8_t qname_len, uint8_t *len);

/* Builds the answer to q (the client's query in pkt) from the upstream or cached answer
 * `target_msg` for the safe name: CNAME qname -> target, then the target's answer records,
 * the target's rcode and authority. Returns the length written to out, 0 on failure. The
 * result still needs wire_dress_answer() for the client's ID, flags and OPT. */
size_t safesearch_answer(const struct wire_query *q, const uint8_t *pkt, const uint8_t *target,
			 uint8_t target_len, const uint8_t *target_msg, size_t target_msg_len,
			 uint32_t cname_ttl, uint8_t *out, size_t cap);

#endif
