/* config.h -- typed, validated configuration files (libconfig syntax) for every daemon.
 *
 * A daemon describes its settings as a table of fields, each naming a path ("database.dsn"),
 * a type, and where it lands in the daemon's settings struct. config_load() parses the file
 * with libconfig, refuses unknown settings (a typo must not silently become a default),
 * checks types, ranges and the optional per-field check, and fills the struct. Strings and
 * lists it stores are malloc'd and belong to the struct: release them with config_free().
 */
#ifndef AEGIS_CONFIG_H
#define AEGIS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_BOOL, CONFIG_STRING_LIST };

struct config_strings {
	char **items;
	size_t count;
};

/* Returns 0 if value is acceptable, else writes why into err (without the field name). */
typedef int (*config_check_fn)(const char *value, char *err, size_t errlen);

struct config_field {
	const char *path;
	enum config_type type;
	size_t offset;              /* of a char *, long long, bool or struct config_strings */
	bool required;
	const char *default_string; /* CONFIG_STRING when absent; NULL leaves it NULL */
	long long default_int;      /* CONFIG_INT and CONFIG_BOOL when absent */
	long long min, max;         /* CONFIG_INT range, inclusive */
	config_check_fn check;      /* CONFIG_STRING and each CONFIG_STRING_LIST item */
};

/* Fills settings (zeroed by the caller) from path. Returns 0, or -1 with a message such as
 * "tenantd.conf:7: database.dsn: expected a string" in err. On failure nothing is leaked. */
int config_load(const char *path, const struct config_field *fields, size_t nfields,
		void *settings, char *err, size_t errlen) __attribute__((warn_unused_result));

void config_free(const struct config_field *fields, size_t nfields, void *settings);

#endif
