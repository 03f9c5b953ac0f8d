/* routes.h -- the API's route table: method, path pattern, handler, and what the route needs.
 *
 * Patterns are literal segments and "{name}" captures; a capture whose name ends in "id" must
 * be a UUID (anything else answers 404). The table is static, read-only data; the
 * `routes` command prints it so tests can hold it to the OpenAPI document.
 */
#ifndef AEGIS_PORTAL_ROUTES_H
#define AEGIS_PORTAL_ROUTES_H

#include <stddef.h>

struct req;

enum route_flags {
	ROUTE_PUBLIC = 1u << 0,      /* no authentication (health, metrics, document, login) */
	ROUTE_JSON = 1u << 1,        /* takes a JSON object body */
	ROUTE_IMPORT = 1u << 2,      /* takes text/csv or text/plain, up to max_import_body */
};

struct route {
	const char *method;
	const char *pattern;
	int (*handler)(struct req *r);
	unsigned flags;
};

extern const struct route portal_routes[];
extern const size_t portal_nroutes;

/* Finds the route for method and path, capturing parameters into params. Returns it, or NULL
 * with *status 404 (no such path) or 405 (path known, method not; allow lists the methods). */
const struct route *routes_match(const char *method, const char *path, const char **params,
				 char *capture_buf, size_t capture_cap, unsigned *status,
				 char *allow, size_t allow_cap);

#endif
