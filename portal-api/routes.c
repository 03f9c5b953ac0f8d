/* routes.c -- the route table and path matching. */
#include "routes.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "valid.h"

const struct route portal_routes[] = {
	{ "GET", "/v1/health", h_health, ROUTE_PUBLIC },
	{ "GET", "/metrics", h_metrics, ROUTE_PUBLIC },
	{ "GET", "/v1/openapi.json", h_openapi, ROUTE_PUBLIC },

	{ "POST", "/v1/auth/login", h_login, ROUTE_PUBLIC | ROUTE_JSON },
	{ "POST", "/v1/auth/logout", h_logout, 0 },
	{ "GET", "/v1/me", h_me, 0 },
	{ "GET", "/v1/me/sessions", h_sessions_list, 0 },
	{ "DELETE", "/v1/me/sessions/{session_id}", h_session_revoke, 0 },
	{ "POST", "/v1/me/totp", h_totp_enrol, 0 },
	{ "POST", "/v1/me/totp/confirm", h_totp_confirm, ROUTE_JSON },
	{ "GET", "/v1/api-keys", h_api_keys_list, 0 },
	{ "POST", "/v1/api-keys", h_api_keys_create, ROUTE_JSON },
	{ "DELETE", "/v1/api-keys/{key_id}", h_api_key_revoke, 0 },
	{ "GET", "/v1/users", h_users_list, 0 },
	{ "POST", "/v1/users", h_users_create, ROUTE_JSON },
	{ "GET", "/v1/users/{user_id}", h_user_get, 0 },
	{ "PATCH", "/v1/users/{user_id}", h_user_patch, ROUTE_JSON },

	{ "GET", "/v1/tenants", h_tenants_list, 0 },
	{ "POST", "/v1/tenants", h_tenants_create, ROUTE_JSON },
	{ "GET", "/v1/tenants/{tenant_id}", h_tenant_get, 0 },
	{ "PATCH", "/v1/tenants/{tenant_id}", h_tenant_patch, ROUTE_JSON },
	{ "DELETE", "/v1/tenants/{tenant_id}", h_tenant_delete, 0 },
	{ "GET", "/v1/tenants/{tenant_id}/networks", h_networks_list, 0 },
	{ "POST", "/v1/tenants/{tenant_id}/networks", h_networks_create, ROUTE_JSON },
	{ "GET", "/v1/networks/{network_id}", h_network_get, 0 },
	{ "PATCH", "/v1/networks/{network_id}", h_network_patch, ROUTE_JSON },
	{ "DELETE", "/v1/networks/{network_id}", h_network_delete, 0 },

	{ "GET", "/v1/tenants/{tenant_id}/policy", h_policy_get, 0 },
	{ "PATCH", "/v1/tenants/{tenant_id}/policy", h_policy_patch, ROUTE_JSON },
	{ "POST", "/v1/tenants/{tenant_id}/policy/preview", h_policy_preview, ROUTE_JSON },
	{ "GET", "/v1/categories", h_categories_list, 0 },

	{ "GET", "/v1/tenants/{tenant_id}/lists", h_tenant_lists_list, 0 },
	{ "POST", "/v1/tenants/{tenant_id}/lists", h_tenant_lists_create, ROUTE_JSON },
	{ "GET", "/v1/national-lists", h_national_lists_list, 0 },
	{ "POST", "/v1/national-lists", h_national_lists_create, ROUTE_JSON },
	{ "GET", "/v1/lists/{list_id}", h_list_get, 0 },
	{ "PATCH", "/v1/lists/{list_id}", h_list_patch, ROUTE_JSON },
	{ "DELETE", "/v1/lists/{list_id}", h_list_delete, 0 },
	{ "GET", "/v1/lists/{list_id}/entries", h_entries_list, 0 },
	{ "POST", "/v1/lists/{list_id}/entries", h_entries_add, ROUTE_JSON },
	{ "PUT", "/v1/lists/{list_id}/entries", h_entries_import, ROUTE_IMPORT },
	{ "GET", "/v1/lists/{list_id}/export", h_entries_export, 0 },
	{ "DELETE", "/v1/lists/{list_id}/entries/{domain}", h_entry_delete, 0 },

	{ "GET", "/v1/querylog", h_querylog_search, 0 },
	{ "GET", "/v1/reports/timeseries", h_report_timeseries, 0 },
	{ "GET", "/v1/reports/top-blocked", h_report_top_blocked, 0 },
	{ "GET", "/v1/reports/top-clients", h_report_top_clients, 0 },

	{ "GET", "/v1/audit", h_audit_search, 0 },
	{ "GET", "/v1/audit/verify", h_audit_verify, 0 },
	{ "GET", "/v1/feeds", h_feeds_list, 0 },
	{ "POST", "/v1/feeds", h_feeds_create, ROUTE_JSON },
	{ "PATCH", "/v1/feeds/{feed_id}", h_feed_patch, ROUTE_JSON },
	{ "GET", "/v1/nodes", h_nodes_list, 0 },
};

const size_t portal_nroutes = sizeof portal_routes / sizeof portal_routes[0];

/* Matches path against pattern segment by segment, copying captures into buf. */
static bool match(const char *pattern, const char *path, const char **params, char *buf,
		  size_t cap)
{
	size_t used = 0;
	unsigned np = 0;
	const char *p = pattern, *u = path;

	while (*p && *u) {
		if (*p != '/' || *u != '/')
			return false;
		p++;
		u++;
		size_t pl = strcspn(p, "/"), ul = strcspn(u, "/");
		if (p[0] == '{') {
			if (ul == 0 || np >= 3 || used + ul + 1 > cap)
				return false;
			memcpy(buf + used, u, ul);
			buf[used + ul] = '\0';
			/* A capture named ..._id must be a UUID; anything else names nothing. */
			bool want_uuid = pl >= 4 && strncmp(p + pl - 3, "id}", 3) == 0;
			if (want_uuid && !valid_is_uuid(buf + used))
				return false;
			params[np++] = buf + used;
			used += ul + 1;
		} else if (pl != ul || strncmp(p, u, pl) != 0) {
			return false;
		}
		p += pl;
		u += ul;
	}
	return *p == '\0' && *u == '\0';
}

const struct route *routes_match(const char *method, const char *path, const char **params,
				 char *capture_buf, size_t capture_cap, unsigned *status,
				 char *allow, size_t allow_cap)
{
	const struct route *found = NULL;
	size_t alen = 0;

	allow[0] = '\0';
	*status = 404;
	for (size_t i = 0; i < portal_nroutes && !found; i++) {
		const struct route *rt = &portal_routes[i];
		if (!match(rt->pattern, path, params, capture_buf, capture_cap))
			continue;
		if (strcmp(rt->method, method) == 0) {
			found = rt;
			break;
		}
		*status = 405;
		int n = snprintf(allow + alen, allow_cap - alen, "%s%s", alen ? ", " : "", rt->method);
		if (n > 0 && (size_t)n < allow_cap - alen)
			alen += (size_t)n;
	}
	if (found)   /* captures of the matching route, not of a route tried before it */
		(void)match(found->pattern, path, params, capture_buf, capture_cap);
	return found;
}
