/* policy_json.h -- compiles a policy described in one JSON file into a snapshot file.
 *
 * The same snapshot tenantd compiles from the database, for tests, benchmarks and nodes that
 * run without tenantd; the JSON format is in docs/snapshot.md. Nothing returned needs freeing.
 */
#ifndef AEGIS_POLICY_JSON_H
#define AEGIS_POLICY_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Reads json_path (feed "file"s relative to its folder) and writes the snapshot to out_path
 * atomically. Invalid domain names are skipped, counted, sampled in a warning, and their
 * count returned (>= 0). Anything else wrong -- an unknown category, a bad CIDR, UUID, address
 * or enum, a missing or mistyped field, an unknown key -- writes nothing and returns a
 * negative errno with err naming the field and tenant. */
int policy_json_compile(const char *json_path, const char *out_path, uint64_t serial, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/* The same as a feed base and an overlay, laid out as a node keeps what tenantd sends: the
 * overlay at out_path, the base beside it under snapshot_base_path(). */
int policy_json_compile_split(const char *json_path, const char *out_path, uint64_t serial,
			      char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
