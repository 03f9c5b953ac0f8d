/* valid.c -- field-by-field checks of JSON bodies and query arguments. */
#include "valid.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "snapshot.h"

const char *valid_path(char *out, size_t cap, const char *path, const char *key)
{
	if (path && *path)
		snprintf(out, cap, "%s.%s", path, key);
	else
		snprintf(out, cap, "%s", key);
	return out;
}

static int bad(struct req *r, const char *path, const char *key, const char *msg)
{
	char f[160];
	return req_error(r, 422, "invalid_field", valid_path(f, sizeof f, path, key), "%s", msg);
}

static int missing(struct req *r, const char *path, const char *key)
{
	char f[160];
	return req_error(r, 422, "missing_field", valid_path(f, sizeof f, path, key),
			 "this field is required");
}

/* Absent (0), present (1), or answered (-1) for a required member. */
static int member(struct req *r, json_t *obj, const char *key, const char *path, bool required,
		  json_t **v)
{
	*v = json_object_get(obj, key);
	if (*v)
		return 1;
	return required ? missing(r, path, key) : 0;
}

int valid_only(struct req *r, json_t *obj, const char *path, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = strcmp(*a, key) == 0;
		if (!ok) {
			char f[160];
			return req_error(r, 422, "unknown_field", valid_path(f, sizeof f, path, key),
					 "this field is not part of the resource");
		}
	}
	return 0;
}

static size_t utf8_chars(const char *s)
{
	size_t c = 0;
	for (; *s; s++)
		c += ((unsigned char)*s & 0xc0) != 0x80;
	return c;
}

int valid_string(struct req *r, json_t *obj, const char *key, const char *path, bool required,
		 size_t min, size_t max, const char **out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	if (!json_is_string(v))
		return bad(r, path, key, "must be a string");
	const char *s = json_string_value(v);
	if (strlen(s) != json_string_length(v))
		return bad(r, path, key, "must not contain NUL");
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return bad(r, path, key, "must not contain control characters");
	size_t n = utf8_chars(s);
	if (n < min || n > max) {
		char f[160];
		return req_error(r, 422, "invalid_field", valid_path(f, sizeof f, path, key),
				 "must be %zu to %zu characters long", min, max);
	}
	*out = s;
	return 1;
}

int valid_enum(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       const char *const *values, const char **out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	char list[256] = "";
	for (const char *const *e = values; *e; e++) {
		if (json_is_string(v) && strcmp(json_string_value(v), *e) == 0) {
			*out = *e;
			return 1;
		}
		snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
			 e == values ? "" : ", ", *e);
	}
	char msg[300];
	snprintf(msg, sizeof msg, "must be one of: %s", list);
	return bad(r, path, key, msg);
}

int valid_bool(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       bool *out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	if (!json_is_boolean(v))
		return bad(r, path, key, "must be true or false");
	*out = json_is_true(v);
	return 1;
}

int valid_int(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	      long long min, long long max, long long *out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		char f[160];
		return req_error(r, 422, "invalid_field", valid_path(f, sizeof f, path, key),
				 "must be an integer from %lld to %lld", min, max);
	}
	*out = json_integer_value(v);
	return 1;
}

bool valid_is_uuid(const char *s)
{
	if (!s || strlen(s) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return true;
}

int valid_uuid(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       bool nullable, const char **out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	if (nullable && json_is_null(v)) {
		*out = NULL;
		return 1;
	}
	if (!json_is_string(v) || !valid_is_uuid(json_string_value(v)))
		return bad(r, path, key, nullable ? "must be a UUID or null" : "must be a UUID");
	*out = json_string_value(v);
	return 1;
}

int valid_domain(struct req *r, json_t *obj, const char *key, const char *path, bool required,
		 char *out)
{
	json_t *v;
	int m = member(r, obj, key, path, required, &v);
	if (m <= 0)
		return m;
	if (!json_is_string(v) ||
	    snapshot_name_text(json_string_value(v), json_string_length(v), out) < 0)
		return bad(r, path, key,
			   "must be a domain name (LDH labels of 1 to 63 characters, A-labels for "
			   "IDN, at most 253 characters, last label not all digits)");
	return 1;
}

int valid_arg_limit(struct req *r, unsigned def, unsigned max, unsigned *out)
{
	const char *s = req_arg(r, "limit");
	char *end;
	if (!s) {
		*out = def;
		return 0;
	}
	unsigned long n = strtoul(s, &end, 10);
	if (!*s || *end || n < 1 || n > max || s[0] == '-' || s[0] == '+')
		return req_error(r, 400, "invalid_parameter", "limit",
				 "limit must be an integer from 1 to %u", max);
	*out = (unsigned)n;
	return 0;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), with real dates, so
 * PostgreSQL's cast never fails on what passes here. */
static bool rfc3339(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, se, n = 0;
	if (strlen(s) > 40 || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return false;
	if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
	    sscanf(s + 11, "%2d:%2d:%2d%n", &h, &mi, &se, &n) != 3 || n != 8)
		return false;
	for (int i = 0; i < 19; i++)
		if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
			return false;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) || h > 23 ||
	    mi > 59 || se > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		size_t f = strspn(p + 1, "0123456789");
		if (f < 1 || f > 9)
			return false;
		p += 1 + f;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	return (*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	       strspn(p + 1, "0123456789") == 2 && strspn(p + 4, "0123456789") == 2 &&
	       atoi(p + 1) <= 23 && atoi(p + 4) <= 59;
}

int valid_arg_time(struct req *r, const char *name, const char **out)
{
	const char *s = req_arg(r, name);
	*out = s;
	if (s && !rfc3339(s))
		return req_error(r, 400, "invalid_parameter", name,
				 "%s must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z",
				 name);
	return 0;
}

int valid_cidr_text(const char *text, const char **reason)
{
	char addr[64];
	unsigned char bin[16];
	const char *slash = strchr(text, '/');
	*reason = "must be a network prefix such as 192.0.2.0/24 or 2001:db8::/48";
	if (!slash || slash == text || (size_t)(slash - text) >= sizeof addr)
		return -EINVAL;
	memcpy(addr, text, (size_t)(slash - text));
	addr[slash - text] = '\0';
	bool v6 = strchr(addr, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
		return -EINVAL;
	const char *len_text = slash + 1;
	size_t digits = strspn(len_text, "0123456789");
	if (digits == 0 || digits > 3 || len_text[digits] || (digits > 1 && len_text[0] == '0'))
		return -EINVAL;
	unsigned bits = (unsigned)atoi(len_text), max = v6 ? 128 : 32, bytes = v6 ? 16 : 4;
	if (bits > max)
		return -EINVAL;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * i : 0;
		unsigned char mask = (unsigned char)(keep ? 0xff << (8 - keep) : 0);
		if (bin[i] & ~mask) {
			*reason = "has bits set to the right of the prefix length";
			return -EINVAL;
		}
	}
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	if (v6 && bits >= 96 && memcmp(bin, mapped, 12) == 0) {
		*reason = "write IPv4 networks as IPv4, not as v4-mapped IPv6";
		return -EINVAL;
	}
	if (bits < (v6 ? 16u : 8u)) {
		*reason = v6 ? "is wider than /16" : "is wider than /8";
		return -EINVAL;
	}
	return 0;
}

int valid_cidr(struct req *r, json_t *obj, const char *key, const char *path, bool required,
	       const char **out)
{
	const char *s, *why;
	int m = valid_string(r, obj, key, path, required, 1, 64, &s);
	if (m <= 0)
		return m;
	if (valid_cidr_text(s, &why) < 0)
		return bad(r, path, key, why);
	*out = s;
	return 1;
}

int valid_address(struct req *r, json_t *obj, const char *key, const char *path, int family,
		  const char **out)
{
	json_t *v = json_object_get(obj, key);
	unsigned char bin[16];
	if (!v)
		return 0;
	if (json_is_null(v)) {
		*out = NULL;
		return 1;
	}
	if (!json_is_string(v) ||
	    inet_pton(family == 6 ? AF_INET6 : AF_INET, json_string_value(v), bin) != 1)
		return bad(r, path, key, family == 6 ? "must be an IPv6 address or null"
						      : "must be an IPv4 address or null");
	*out = json_string_value(v);
	return 1;
}
