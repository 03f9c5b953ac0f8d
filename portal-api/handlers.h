/* handlers.h -- every route's handler, grouped by resource file (res_*.c).
 *
 * A handler reads the request, answers through the api.h helpers and returns 0 or -1; the
 * HTTP layer sends whatever it set. Scoping and roles are each handler's first business.
 */
#ifndef AEGIS_PORTAL_HANDLERS_H
#define AEGIS_PORTAL_HANDLERS_H

struct req;

/* res_misc.c */
int h_health(struct req *r);
int h_metrics(struct req *r);
int h_openapi(struct req *r);

/* res_auth.c */
int h_login(struct req *r);
int h_logout(struct req *r);
int h_me(struct req *r);
int h_sessions_list(struct req *r);
int h_session_revoke(struct req *r);
int h_totp_enrol(struct req *r);
int h_totp_confirm(struct req *r);
int h_api_keys_list(struct req *r);
int h_api_keys_create(struct req *r);
int h_api_key_revoke(struct req *r);

/* res_users.c */
int h_users_list(struct req *r);
int h_users_create(struct req *r);
int h_user_get(struct req *r);
int h_user_patch(struct req *r);

/* res_tenants.c */
int h_tenants_list(struct req *r);
int h_tenants_create(struct req *r);
int h_tenant_get(struct req *r);
int h_tenant_patch(struct req *r);
int h_tenant_delete(struct req *r);
int h_networks_list(struct req *r);
int h_networks_create(struct req *r);
int h_network_get(struct req *r);
int h_network_patch(struct req *r);
int h_network_delete(struct req *r);

/* res_policy.c */
int h_policy_get(struct req *r);
int h_policy_patch(struct req *r);
int h_categories_list(struct req *r);

/* res_preview.c */
int h_policy_preview(struct req *r);

/* res_lists.c */
int h_tenant_lists_list(struct req *r);
int h_tenant_lists_create(struct req *r);
int h_national_lists_list(struct req *r);
int h_national_lists_create(struct req *r);
int h_list_get(struct req *r);
int h_list_patch(struct req *r);
int h_list_delete(struct req *r);
int h_entries_list(struct req *r);
int h_entries_add(struct req *r);
int h_entries_import(struct req *r);
int h_entries_export(struct req *r);
int h_entry_delete(struct req *r);

/* res_querylog.c */
int h_querylog_search(struct req *r);

/* res_reports.c */
int h_report_timeseries(struct req *r);
int h_report_top_blocked(struct req *r);
int h_report_top_clients(struct req *r);

/* res_audit.c */
int h_audit_search(struct req *r);
int h_audit_verify(struct req *r);
int h_feeds_list(struct req *r);
int h_feeds_create(struct req *r);
int h_feed_patch(struct req *r);
int h_nodes_list(struct req *r);

#endif
