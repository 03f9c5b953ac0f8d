/* valid.h -- checking request bodies and query arguments field by field.
 *
 * Every checker takes the request (to answer with an error naming the field), the object,
 * the member's key and the path of the object inside the body ("" at the top,
 * "networks[0]" deeper), so the error names the exact field ("networks[0].cidr"). A checker
 * returns 1 when the member is present and valid, 0 when absent and not required, and -1
 * after answering 422 (or 400 for query arguments). Out-pointers borrow from the JSON value.
 */
#ifndef AEGIS_PORTAL_VALID_H
#define AEGIS_PORTAL_VALID_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct req;

/* Writes "path.key" (or "key" at the top) into out. */
const char *valid_path(char *out, size_t cap, const char *path, const char *key);

/* Refuses members not in allowed (NULL-terminated). 0 or -1. */
int valid_only(struct req *r, json_t *obj, const char *path, const char *const *allowed);

/* A string of min..max characters without control characters. */
int valid_string(struct req *r, json_t *obj, const char *key, const char *path, bool required,
		 size_t min, size_t max, const char **out);

/* One of values (NULL-terminated). */
int valid_enum(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       const char *const *values, const char **out);

int valid_bool(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       bool *out);

int valid_int(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	      long long min, long long max, long long *out);

/* A UUID string, or JSON null when nullable (then *out is NULL and 1 is returned). */
int valid_uuid(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       bool nullable, const char **out);

/* A DNS name, normalised into out (SNAPSHOT_NAME_TEXT_MAX bytes). */
int valid_domain(struct req *r, json_t *obj, const char *key, const char *path, bool required,
		 char *out);

bool valid_is_uuid(const char *s);

/* A network prefix "a.b.c.d/n" or "x:y::/n": no host bits set, IPv4 not written as
 * v4-mapped IPv6, no wider than /8 (IPv4) or /16 (IPv6). 0 or -EINVAL with the reason. */
int valid_cidr_text(const char *text, const char **reason);

int valid_cidr(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       const char **out);

/* A single address (no prefix length) of the given family (4 or 6). */
int valid_address(struct req *r, json_t *obj, const char *key, const char *path, int family,
		  const char **out);

/* Query arguments: ?limit= within 1..max (default def), and an opaque numeric cursor. */
int valid_arg_limit(struct req *r, unsigned def, unsigned max, unsigned *out);

/* An RFC 3339 timestamp argument (UTC offset required). */
int valid_arg_time(struct req *r, const char *name, const char **out);

#endif
