/* nodes.h -- resolver node registration: each node authenticates to tenantd with its own
 * token. Only the token's SHA-256 is stored; the token is printed once, at creation. Both
 * actions are written to the audit trail as done by the operator's system account (the
 * command line runs on the tenantd host). Nothing returned needs freeing.
 */
#ifndef AEGIS_NODES_H
#define AEGIS_NODES_H

/* Registers node name, prints its token on stdout. 0, or -1 after a message on stderr. */
int nodes_add(const char *dsn, const char *name);
/* Revokes name's token; tenantd refuses it within ten seconds (its token cache). */
int nodes_revoke(const char *dsn, const char *name);

#endif
