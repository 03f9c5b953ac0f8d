/* policy_json.c -- JSON policy description to snapshot file, through snapshot_builder. */
#include "policy_json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "log.h"
#include "snapshot.h"

#define SAMPLES 3

struct ctx {
	struct snapshot_builder *b;
	struct snapshot *base;      /* the feed base of a split compile, open */
	char *dir;                  /* folder of the JSON file, for relative feed files */
	size_t invalid;
	char samples[SAMPLES][300]; /* the first invalid names, for the warning */
	char *err;
	size_t errlen;
};

static int bad(struct ctx *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int bad(struct ctx *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return -code;
}

/* A typo in a key must not silently become a default. obj is borrowed. */
static int check_keys(struct ctx *c, json_t *obj, const char *where, const char *const *known)
{
	const char *key;
	json_t *v;
	if (!json_is_object(obj))
		return bad(c, EINVAL, "%s: expected an object", where);
	json_object_foreach(obj, key, v) {
		const char *const *k = known;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k)
			return bad(c, EINVAL, "%s: unknown key '%s'", where, key);
	}
	return 0;
}

/* Borrowed string member, or NULL when absent; a present non-string is an error. */
static int get_string(struct ctx *c, json_t *obj, const char *key, bool required, const char *where,
		      const char **out)
{
	json_t *v = json_object_get(obj, key);
	*out = NULL;
	if (!v)
		return required ? bad(c, EINVAL, "%s: '%s' is required", where, key) : 0;
	if (!json_is_string(v))
		return bad(c, EINVAL, "%s: '%s' must be a string", where, key);
	*out = json_string_value(v);
	return 0;
}

/* Borrowed array member, or NULL when absent. */
static int get_array(struct ctx *c, json_t *obj, const char *key, const char *where, json_t **out)
{
	*out = json_object_get(obj, key);
	if (*out && !json_is_array(*out))
		return bad(c, EINVAL, "%s: '%s' must be an array", where, key);
	return 0;
}

static int parse_enum(struct ctx *c, const char *value, const char *const *names, const char *key,
		      const char *where)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], value) == 0)
			return i;
	return bad(c, EINVAL, "%s: %s: unknown value '%s'", where, key, value);
}

/* 8-4-4-4-12 hex digits. Small enough not to pull in libuuid for it. */
static bool parse_uuid(const char *s, uint8_t out[16])
{
	if (strlen(s) != 36)
		return false;
	for (int i = 0, o = 0; i < 36; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i++] != '-')
				return false;
			continue;
		}
		if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
			return false;
		char hex[3] = { s[i], s[i + 1], 0 };
		out[o++] = (uint8_t)strtoul(hex, NULL, 16);
		i += 2;
	}
	return true;
}

static void note_invalid(struct ctx *c, const char *where, const char *name)
{
	if (c->invalid < SAMPLES)
		snprintf(c->samples[c->invalid], sizeof c->samples[0], "%.180s '%.100s'", where,
			 name);
	c->invalid++;
}

/* Adds one name; an invalid name is counted, not an error. */
static int add_name(struct ctx *c, const char *name, enum snapshot_list list, uint32_t arg,
		    const char *where)
{
	int rc = snapshot_builder_add_name(c->b, name, list, arg);
	if (rc == -EINVAL) {
		note_invalid(c, where, name);
		return 0;
	}
	if (rc < 0)
		return bad(c, -rc, "%s: cannot add '%s': %s", where, name, strerror(-rc));
	return 0;
}

/* names is borrowed. */
static int add_names(struct ctx *c, json_t *names, enum snapshot_list list, uint32_t arg,
		     const char *where)
{
	size_t i;
	json_t *v;
	json_array_foreach(names, i, v) {
		if (!json_is_string(v))
			return bad(c, EINVAL, "%s[%zu]: must be a string", where, i);
		int rc = add_name(c, json_string_value(v), list, arg, where);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Category names to a mask; names is borrowed. */
static int category_mask(struct ctx *c, json_t *names, const char *const *cats, int ncats,
			 const char *where, const char *key, uint32_t *mask)
{
	size_t i;
	json_t *v;
	*mask = 0;
	json_array_foreach(names, i, v) {
		if (!json_is_string(v))
			return bad(c, EINVAL, "%s: %s[%zu] must be a string", where, key, i);
		int k = 0;
		while (k < ncats && strcmp(cats[k], json_string_value(v)) != 0)
			k++;
		if (k == ncats)
			return bad(c, EINVAL, "%s: %s: unknown category '%s'", where, key,
				   json_string_value(v));
		*mask |= 1u << k;
	}
	return 0;
}

static int load_categories(struct ctx *c, json_t *root, const char **names, bool *threat,
			   int *ncats)
{
	static const char *const keys[] = { "name", "kind", NULL };
	static const char *const kinds[] = { "threat", "content", NULL };
	json_t *arr;
	int rc = get_array(c, root, "categories", "policy", &arr);
	*ncats = 0;
	if (rc < 0 || !arr)
		return rc;
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		char where[48];
		snprintf(where, sizeof where, "categories[%zu]", i);
		const char *name, *kind;
		if ((rc = check_keys(c, v, where, keys)) < 0 ||
		    (rc = get_string(c, v, "name", true, where, &name)) < 0 ||
		    (rc = get_string(c, v, "kind", true, where, &kind)) < 0)
			return rc;
		int k = parse_enum(c, kind, kinds, "kind", where);
		if (k < 0)
			return k;
		rc = snapshot_builder_add_category(c->b, name, (enum snapshot_category_kind)k);
		if (rc == -EEXIST)
			return bad(c, EINVAL, "%s: category '%s' is listed twice", where, name);
		if (rc == -ENOSPC)
			return bad(c, EINVAL, "%s: more than %d categories", where,
				   SNAPSHOT_MAX_CATEGORIES);
		if (rc < 0)
			return bad(c, EINVAL, "%s: invalid category '%s'", where, name);
		names[rc] = name;
		threat[rc] = k == SNAPSHOT_CATEGORY_THREAT;
		*ncats = rc + 1;
	}
	return 0;
}

static int load_tenant(struct ctx *c, json_t *t, size_t index, const char *const *cats,
		       const bool *threat, int ncats)
{
	static const char *const keys[] = {
		"id", "name", "networks", "block_action", "sinkhole_v4", "sinkhole_v6",
		"ede_text", "block", "monitor", "safe_search", "privacy", "trunc_v4", "trunc_v6",
		"allow", "deny", NULL,
	};
	static const char *const actions[] = { "nxdomain", "nodata", "refused", "sinkhole", NULL };
	static const char *const privacies[] = { "full", "pseudonym", "truncated", NULL };
	char where[160];
	const char *id, *name, *action, *s4, *s6, *ede, *privacy;
	json_t *networks, *block, *monitor, *allow, *deny;
	int rc;

	snprintf(where, sizeof where, "tenants[%zu]", index);
	if ((rc = check_keys(c, t, where, keys)) < 0 ||
	    (rc = get_string(c, t, "name", true, where, &name)) < 0)
		return rc;
	snprintf(where, sizeof where, "tenants[%zu] ('%.100s')", index, name);
	if ((rc = get_string(c, t, "id", true, where, &id)) < 0 ||
	    (rc = get_string(c, t, "block_action", false, where, &action)) < 0 ||
	    (rc = get_string(c, t, "sinkhole_v4", false, where, &s4)) < 0 ||
	    (rc = get_string(c, t, "sinkhole_v6", false, where, &s6)) < 0 ||
	    (rc = get_string(c, t, "ede_text", false, where, &ede)) < 0 ||
	    (rc = get_string(c, t, "privacy", false, where, &privacy)) < 0 ||
	    (rc = get_array(c, t, "networks", where, &networks)) < 0 ||
	    (rc = get_array(c, t, "block", where, &block)) < 0 ||
	    (rc = get_array(c, t, "monitor", where, &monitor)) < 0 ||
	    (rc = get_array(c, t, "allow", where, &allow)) < 0 ||
	    (rc = get_array(c, t, "deny", where, &deny)) < 0)
		return rc;

	struct snapshot_tenant_spec spec = {
		.name = name, .ede_text = ede, .trunc_v4 = 24, .trunc_v6 = 48,
	};
	if (!parse_uuid(id, spec.id))
		return bad(c, EINVAL, "%s: id: '%s' is not a UUID", where, id);
	if (action && (rc = parse_enum(c, action, actions, "block_action", where)) < 0)
		return rc;
	spec.block_action = action ? (enum snapshot_block_action)rc : SNAPSHOT_ACTION_NXDOMAIN;
	if (privacy && (rc = parse_enum(c, privacy, privacies, "privacy", where)) < 0)
		return rc;
	spec.privacy = privacy ? (enum snapshot_privacy)rc : SNAPSHOT_PRIVACY_FULL;
	if (s4 && !(spec.has_sinkhole_v4 = inet_pton(AF_INET, s4, spec.sinkhole_v4) == 1))
		return bad(c, EINVAL, "%s: sinkhole_v4: '%s' is not an IPv4 address", where, s4);
	if (s6 && !(spec.has_sinkhole_v6 = inet_pton(AF_INET6, s6, spec.sinkhole_v6) == 1))
		return bad(c, EINVAL, "%s: sinkhole_v6: '%s' is not an IPv6 address", where, s6);
	if (spec.block_action == SNAPSHOT_ACTION_SINKHOLE && !s4 && !s6)
		return bad(c, EINVAL, "%s: block_action sinkhole needs sinkhole_v4 or sinkhole_v6",
			   where);

	json_t *v = json_object_get(t, "safe_search");
	if (v && !json_is_boolean(v))
		return bad(c, EINVAL, "%s: safe_search must be true or false", where);
	spec.safe_search = v && json_is_true(v);
	static const struct { const char *key; int max; } truncs[] = {
		{ "trunc_v4", 32 }, { "trunc_v6", 128 },
	};
	for (int i = 0; i < 2; i++) {
		v = json_object_get(t, truncs[i].key);
		if (!v)
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > truncs[i].max)
			return bad(c, EINVAL, "%s: %s must be an integer 0..%d", where,
				   truncs[i].key, truncs[i].max);
		*(i ? &spec.trunc_v6 : &spec.trunc_v4) = (uint8_t)json_integer_value(v);
	}

	/* Threat categories are on unless the tenant says otherwise (the product default);
	 * "block": [] turns them all off. */
	if (monitor && (rc = category_mask(c, monitor, cats, ncats, where, "monitor",
					   &spec.monitor_mask)) < 0)
		return rc;
	if (block) {
		rc = category_mask(c, block, cats, ncats, where, "block", &spec.block_mask);
		if (rc < 0)
			return rc;
	} else {
		for (int k = 0; k < ncats; k++)
			if (threat[k])
				spec.block_mask |= 1u << k;
		spec.block_mask &= ~spec.monitor_mask;
	}
	if (spec.block_mask & spec.monitor_mask)
		return bad(c, EINVAL, "%s: a category is in both block and monitor", where);

	int ti = snapshot_builder_add_tenant(c->b, &spec);
	if (ti < 0)
		return bad(c, -ti, "%s: refused by the snapshot builder (%s)", where,
			   ti == -EINVAL ? "a value is out of range or a text too long"
					 : strerror(-ti));

	size_t i;
	json_array_foreach(networks, i, v) {
		if (!json_is_string(v))
			return bad(c, EINVAL, "%s: networks[%zu] must be a string", where, i);
		rc = snapshot_builder_add_network(c->b, (uint32_t)ti, json_string_value(v));
		if (rc < 0)
			return bad(c, -rc, "%s: networks[%zu]: '%s' is not a valid CIDR prefix "
				   "(malformed, or host bits set)", where, i, json_string_value(v));
	}
	char list_where[200];
	snprintf(list_where, sizeof list_where, "%s allow", where);
	if ((rc = add_names(c, allow, SNAPSHOT_TENANT_ALLOW, (uint32_t)ti, list_where)) < 0)
		return rc;
	snprintf(list_where, sizeof list_where, "%s deny", where);
	return add_names(c, deny, SNAPSHOT_TENANT_DENY, (uint32_t)ti, list_where);
}

static int load_national(struct ctx *c, json_t *root)
{
	static const char *const keys[] = { "block", "allow", NULL };
	json_t *national = json_object_get(root, "national");
	json_t *block, *allow;
	int rc;
	if (!national)
		return 0;
	if ((rc = check_keys(c, national, "national", keys)) < 0 ||
	    (rc = get_array(c, national, "block", "national", &block)) < 0 ||
	    (rc = get_array(c, national, "allow", "national", &allow)) < 0 ||
	    (rc = add_names(c, block, SNAPSHOT_NATIONAL_BLOCK, 0, "national.block")) < 0)
		return rc;
	return add_names(c, allow, SNAPSHOT_NATIONAL_ALLOW, 0, "national.allow");
}

/* One name per line, '#' starts a comment, blank lines skipped. Streamed: a national feed
 * has millions of lines. */
static int load_feed_file(struct ctx *c, const char *file, uint32_t category, const char *where)
{
	auto_free char *path = NULL;
	if (file[0] == '/')
		path = strdup(file);
	else if (asprintf(&path, "%s/%s", c->dir, file) < 0)
		path = NULL;
	if (!path)
		return bad(c, ENOMEM, "out of memory");
	auto_fclose FILE *f = fopen(path, "r");
	if (!f)
		return bad(c, errno, "%s: file: cannot open %s: %s", where, path, strerror(errno));

	auto_free char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	size_t lineno = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		char *p = line, *hash = memchr(line, '#', (size_t)n);
		char *end = hash ? hash : line + n;
		while (p < end && isspace((unsigned char)*p))
			p++;
		while (end > p && isspace((unsigned char)end[-1]))
			end--;
		if (p == end)
			continue;
		*end = '\0';
		int rc = snapshot_builder_add_name(c->b, p, SNAPSHOT_FEED, category);
		if (rc == -EINVAL) {
			char at[120];
			snprintf(at, sizeof at, "%.90s:%zu", file, lineno);
			note_invalid(c, at, p);
		} else if (rc < 0) {
			return bad(c, -rc, "%s: %s:%zu: %s", where, path, lineno, strerror(-rc));
		}
	}
	if (ferror(f))
		return bad(c, EIO, "%s: file: error reading %s", where, path);
	return 0;
}

static int load_feeds(struct ctx *c, json_t *root, const char *const *cats, int ncats)
{
	static const char *const keys[] = { "category", "names", "file", NULL };
	json_t *feeds;
	int rc = get_array(c, root, "feeds", "policy", &feeds);
	if (rc < 0 || !feeds)
		return rc;
	size_t i;
	json_t *v;
	json_array_foreach(feeds, i, v) {
		char where[48];
		const char *category, *file;
		json_t *names;
		snprintf(where, sizeof where, "feeds[%zu]", i);
		if ((rc = check_keys(c, v, where, keys)) < 0 ||
		    (rc = get_string(c, v, "category", true, where, &category)) < 0 ||
		    (rc = get_string(c, v, "file", false, where, &file)) < 0 ||
		    (rc = get_array(c, v, "names", where, &names)) < 0)
			return rc;
		int k = 0;
		while (k < ncats && strcmp(cats[k], category) != 0)
			k++;
		if (k == ncats)
			return bad(c, EINVAL, "%s: unknown category '%s'", where, category);
		char names_where[64];
		snprintf(names_where, sizeof names_where, "%s.names", where);
		if ((rc = add_names(c, names, SNAPSHOT_FEED, (uint32_t)k, names_where)) < 0)
			return rc;
		if (file && (rc = load_feed_file(c, file, (uint32_t)k, where)) < 0)
			return rc;
	}
	return 0;
}

/* The feed names alone, as the base of the policy: written to a temporary name, then renamed
 * to the name its checksum gives (snapshot_base_path) and left open in *base. */
static int compile_base(struct ctx *c, json_t *root, const char *out_path, uint64_t serial,
			struct snapshot **base)
{
	const char *cats[SNAPSHOT_MAX_CATEGORIES];
	bool threat[SNAPSHOT_MAX_CATEGORIES];
	int ncats, rc;
	char tmp[4200], path[4300];
	if (!(c->b = snapshot_builder_new(serial)))
		return bad(c, ENOMEM, "out of memory");
	snprintf(tmp, sizeof tmp, "%s.base.tmp", out_path);
	if ((rc = load_categories(c, root, cats, threat, &ncats)) < 0 ||
	    (rc = load_feeds(c, root, cats, ncats)) < 0 ||
	    (rc = snapshot_builder_write(c->b, tmp, c->err, c->errlen)) < 0)
		goto out;
	if (!(*base = snapshot_open(tmp, c->err, c->errlen))) {
		rc = -(errno ? errno : EINVAL);
		goto out;
	}
	snapshot_base_path(out_path, snapshot_checksum(*base), path, sizeof path);
	if (rename(tmp, path) < 0)
		rc = bad(c, errno, "cannot rename %s: %s", tmp, strerror(errno));
out:
	snapshot_builder_free(c->b);
	c->b = NULL;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

static int compile(struct ctx *c, const char *json_path, const char *out_path, uint64_t serial,
		   bool split)
{
	static const char *const keys[] = { "categories", "tenants", "national", "feeds", NULL };
	json_error_t jerr;
	/* New reference, released on return. */
	json_auto_t *root = json_load_file(json_path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return bad(c, EINVAL, "%s:%d:%d: %s", json_path, jerr.line, jerr.column, jerr.text);
	int rc = check_keys(c, root, "policy", keys);
	if (rc < 0)
		return rc;
	if (split && (rc = compile_base(c, root, out_path, serial, &c->base)) < 0)
		return rc;
	if (!(c->b = snapshot_builder_new(serial)))
		return bad(c, ENOMEM, "out of memory");
	if (c->base && (rc = snapshot_builder_set_base(c->b, c->base)) < 0)
		return bad(c, -rc, "cannot build on the feed base");

	/* Borrowed from root, which outlives every use. */
	const char *cats[SNAPSHOT_MAX_CATEGORIES];
	bool threat[SNAPSHOT_MAX_CATEGORIES];
	int ncats;
	if ((rc = load_categories(c, root, cats, threat, &ncats)) < 0)
		return rc;

	json_t *tenants;
	if ((rc = get_array(c, root, "tenants", "policy", &tenants)) < 0)
		return rc;
	size_t i;
	json_t *t;
	json_array_foreach(tenants, i, t) {
		if ((rc = load_tenant(c, t, i, cats, threat, ncats)) < 0)
			return rc;
	}
	if ((rc = load_national(c, root)) < 0 ||
	    (!split && (rc = load_feeds(c, root, cats, ncats)) < 0))
		return rc;
	return snapshot_builder_write(c->b, out_path, c->err, c->errlen);
}

static int compile_json(const char *json_path, const char *out_path, uint64_t serial, bool split,
			char *err, size_t errlen)
{
	struct ctx c = { .err = err, .errlen = errlen };
	const char *slash = strrchr(json_path, '/');
	c.dir = slash ? strndup(json_path, (size_t)(slash - json_path + (slash == json_path)))
		      : strdup(".");
	int rc;
	if (!c.dir)
		rc = bad(&c, ENOMEM, "out of memory");
	else
		rc = compile(&c, json_path, out_path, serial, split);
	snapshot_builder_free(c.b);
	snapshot_close(c.base);
	free(c.dir);
	if (rc < 0)
		return rc;
	if (c.invalid) {
		char q[SAMPLES][320], file[200];
		for (size_t i = 0; i < SAMPLES; i++)
			log_quote(q[i], sizeof q[i], i < c.invalid ? c.samples[i] : "");
		log_warn("policy_json_invalid_names",
			 "file=%s skipped=%zu sample1=%s sample2=%s sample3=%s",
			 log_quote(file, sizeof file, json_path), c.invalid, q[0], q[1], q[2]);
	}
	return c.invalid > INT32_MAX ? INT32_MAX : (int)c.invalid;
}

int policy_json_compile(const char *json_path, const char *out_path, uint64_t serial, char *err,
			size_t errlen)
{
	return compile_json(json_path, out_path, serial, false, err, errlen);
}

int policy_json_compile_split(const char *json_path, const char *out_path, uint64_t serial,
			      char *err, size_t errlen)
{
	return compile_json(json_path, out_path, serial, true, err, errlen);
}
