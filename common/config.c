/* config.c -- schema-checked loading on top of libconfig. */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int fail(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
	int n = line > 0 ? snprintf(err, errlen, "%s:%d: ", file, line)
			 : snprintf(err, errlen, "%s: ", file);
	if (n < 0 || (size_t)n >= errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static bool is_known_group(const char *path, const struct config_field *fields, size_t n)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < n; i++)
		if (strncmp(fields[i].path, path, len) == 0 && fields[i].path[len] == '.')
			return true;
	return false;
}

static const struct config_field *find_field(const char *path, const struct config_field *fields,
					     size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fields[i].path, path) == 0)
			return &fields[i];
	return NULL;
}

/* Every setting in the file must be one the daemon knows: walk the tree and look each up. */
static int check_unknown(config_setting_t *group, const char *prefix, const char *file,
			 const struct config_field *fields, size_t n, char *err, size_t errlen)
{
	int count = config_setting_length(group);
	for (int i = 0; i < count; i++) {
		config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		char path[256];
		snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", name ? name : "");
		if (config_setting_is_group(s)) {
			if (find_field(path, fields, n) || !is_known_group(path, fields, n))
				return fail(err, errlen, file, config_setting_source_line(s),
					    "unknown setting group '%s'", path);
			if (check_unknown(s, path, file, fields, n, err, errlen) < 0)
				return -1;
		} else if (!find_field(path, fields, n)) {
			return fail(err, errlen, file, config_setting_source_line(s),
				    "unknown setting '%s'", path);
		}
	}
	return 0;
}

static int run_check(const struct config_field *f, const char *value, const char *file, int line,
		     char *err, size_t errlen)
{
	char why[200];
	if (!f->check || f->check(value, why, sizeof why) == 0)
		return 0;
	return fail(err, errlen, file, line, "%s: %s", f->path, why);
}

static int load_field(const config_t *cfg, const struct config_field *f, void *settings,
		      const char *file, char *err, size_t errlen)
{
	char *slot = (char *)settings + f->offset;
	config_setting_t *s = config_lookup(cfg, f->path);
	int line = s ? config_setting_source_line(s) : 0;

	if (!s) {
		if (f->required)
			return fail(err, errlen, file, 0, "required setting '%s' is missing", f->path);
		switch (f->type) {
		case CONFIG_STRING:
			if (f->default_string && !(*(char **)slot = strdup(f->default_string)))
				return fail(err, errlen, file, 0, "out of memory");
			return 0;
		case CONFIG_INT:
			*(long long *)slot = f->default_int;
			return 0;
		case CONFIG_BOOL:
			*(bool *)slot = f->default_int != 0;
			return 0;
		case CONFIG_STRING_LIST:
			return 0;
		}
	}

	switch (f->type) {
	case CONFIG_STRING: {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return fail(err, errlen, file, line, "%s: expected a string", f->path);
		const char *v = config_setting_get_string(s);
		if (run_check(f, v, file, line, err, errlen) < 0)
			return -1;
		if (!(*(char **)slot = strdup(v)))
			return fail(err, errlen, file, line, "out of memory");
		return 0;
	}
	case CONFIG_INT: {
		int t = config_setting_type(s);
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
			return fail(err, errlen, file, line, "%s: expected an integer", f->path);
		long long v = config_setting_get_int64(s);
		if (v < f->min || v > f->max)
			return fail(err, errlen, file, line, "%s: %lld is outside %lld..%lld",
				    f->path, v, f->min, f->max);
		*(long long *)slot = v;
		return 0;
	}
	case CONFIG_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return fail(err, errlen, file, line, "%s: expected true or false", f->path);
		*(bool *)slot = config_setting_get_bool(s);
		return 0;
	case CONFIG_STRING_LIST: {
		if (!config_setting_is_aggregate(s) || config_setting_is_group(s))
			return fail(err, errlen, file, line, "%s: expected a list of strings",
				    f->path);
		struct config_strings *list = (struct config_strings *)slot;
		int count = config_setting_length(s);
		list->items = calloc((size_t)count + 1, sizeof *list->items);
		if (!list->items)
			return fail(err, errlen, file, line, "out of memory");
		for (int i = 0; i < count; i++) {
			config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				return fail(err, errlen, file, line,
					    "%s: item %d is not a string", f->path, i + 1);
			const char *v = config_setting_get_string(e);
			if (run_check(f, v, file, line, err, errlen) < 0)
				return -1;
			if (!(list->items[i] = strdup(v)))
				return fail(err, errlen, file, line, "out of memory");
			list->count++;
		}
		return 0;
	}
	}
	return fail(err, errlen, file, line, "%s: unsupported type", f->path);
}

int config_load(const char *path, const struct config_field *fields, size_t nfields,
		void *settings, char *err, size_t errlen)
{
	config_t cfg;
	int rc = 0;

	config_init(&cfg);
	if (config_read_file(&cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
			rc = fail(err, errlen, path, 0, "cannot read: %s", strerror(errno));
		else
			rc = fail(err, errlen, path, config_error_line(&cfg), "%s",
				  config_error_text(&cfg));
		config_destroy(&cfg);
		return rc;
	}
	rc = check_unknown(config_root_setting(&cfg), "", path, fields, nfields, err, errlen);
	for (size_t i = 0; rc == 0 && i < nfields; i++)
		rc = load_field(&cfg, &fields[i], settings, path, err, errlen);
	config_destroy(&cfg);
	if (rc < 0)
		config_free(fields, nfields, settings);
	return rc;
}

void config_free(const struct config_field *fields, size_t nfields, void *settings)
{
	for (size_t i = 0; i < nfields; i++) {
		char *slot = (char *)settings + fields[i].offset;
		if (fields[i].type == CONFIG_STRING) {
			free(*(char **)slot);
			*(char **)slot = NULL;
		} else if (fields[i].type == CONFIG_STRING_LIST) {
			struct config_strings *list = (struct config_strings *)slot;
			for (size_t j = 0; j < list->count; j++)
				free(list->items[j]);
			free(list->items);
			list->items = NULL;
			list->count = 0;
		}
	}
}
