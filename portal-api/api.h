/* api.h -- one API request as the handlers see it, and the helpers they answer with.
 *
 * The HTTP layer (http.c) owns struct req: it fills the request side (method, captured path
 * parameters, parsed JSON body, caller), lends a database connection on demand, and after the
 * handler returns turns the response side into an HTTP answer. Handlers set exactly one of
 * r->out (a new json_t reference that the request then owns) or an error with req_error();
 * text bodies (CSV, plain lists, metrics) go in r->text (malloc'd, owned by the request).
 */
#ifndef AEGIS_PORTAL_API_H
#define AEGIS_PORTAL_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct portal;
struct pgpool;

/* A body produced while it is sent (CSV exports of any size). The handler embeds this as the
 * first member of its own state and passes it to req_stream(); from then on the stream owns
 * the request's database connection (pg), which the HTTP layer returns to the pool after
 * fini(). fill() writes up to cap bytes into buf and sets *len; it returns 0 for more, 1 at
 * the end (after writing *len bytes), negative to abort the transfer. */
struct req_stream {
	struct pgpool *pool;
	PGconn *pg;
	int (*fill)(struct req_stream *s, char *buf, size_t cap, size_t *len);
	void (*fini)(struct req_stream *s);
	bool done;
};

enum role_bit {
	ROLE_MINISTRY_ADMIN = 1u << 0,
	ROLE_TENANT_ADMIN = 1u << 1,
	ROLE_SOC_ANALYST = 1u << 2,
	ROLE_AUDITOR = 1u << 3,
};

/* Who is calling: an API key or a user's session. roles holds every role granted (any
 * scope); which tenants each one reaches is answered in SQL by portal_scope(). */
struct principal {
	const char *type;        /* "api_key" or "user", as audit_log.actor_type spells it */
	char id[37];             /* api_keys.id or users.id */
	char name[256];          /* key prefix or e-mail, for the audit trail */
	unsigned roles;          /* enum role_bit */
	bool global[4];          /* per role bit index: granted for all tenants */
	char session_id[37];     /* sessions.id for a user, else "" */
};

#define REQ_MAX_PARAMS 3

struct req {
	struct portal *portal;
	const char *method;
	const char *url;
	void *connection;                  /* struct MHD_Connection *, for query arguments */
	const char *params[REQ_MAX_PARAMS]; /* captured path segments, in pattern order */
	json_t *body;                      /* parsed JSON body (borrowed from the request) */
	const char *raw;                   /* raw body for text imports, NUL-terminated */
	size_t raw_len;
	const char *content_type;
	struct principal who;
	bool authenticated;
	char request_id[40];
	char client_ip[64];
	const char *if_match;              /* If-Match header or NULL */
	PGconn *pg;                        /* lent by req_db(), returned by the HTTP layer */

	/* Response. */
	unsigned status;
	json_t *out;
	char *text;
	size_t text_len;
	const char *text_type;
	char etag[32];
	char location[160];
	unsigned retry_after;
	bool error_set;
	struct req_stream *stream;
};

/* Sets a JSON error {"error":{"code","message","field"}} (field may be NULL) once; later calls
 * are ignored so the first, most precise reason wins. Returns -1 for "return req_error(...)". */
int req_error(struct req *r, unsigned status, const char *code, const char *field,
	      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A database connection from the pool for the rest of the request, or NULL after answering
 * 503 (PostgreSQL unreachable). */
PGconn *req_db(struct req *r);

/* After a failed query: 503 when the connection is gone, else 500. Returns -1. */
int req_db_failed(struct req *r);

/* Sets r->out to a new JSON value parsed from json text (a row rendered by SQL), status. */
int req_reply_json_text(struct req *r, unsigned status, const char *json_text);

/* Answers {"items":[...],"next":...} from column col of res (each a JSON text); when the page
 * is full (limit rows), next is column cursor_col of the last row, else null. */
int req_reply_items(struct req *r, PGresult *res, int col, int cursor_col, unsigned limit);

/* A query-string argument or a request header, or NULL. */
const char *req_arg(const struct req *r, const char *name);
const char *req_header(const struct req *r, const char *name);

/* True if the caller holds any of roles; otherwise answers 403 and returns false. */
bool req_require(struct req *r, unsigned roles);

/* The caller's roles among `roles` as a PostgreSQL text[] literal ("{ministry_admin,...}"),
 * for the portal_scope() parameter of scoped queries. */
const char *req_roles_param(const struct req *r, unsigned roles, char *buf, size_t cap);

/* Name of the first role the caller holds among roles (for the audit trail). */
const char *req_acting_role(const struct req *r, unsigned roles);

/* The three leading parameters of every scoped query: $1 actor type, $2 actor id, $3 roles,
 * for "tenant_id IN (SELECT portal_scope($1, $2, $3))". buf is a char array. */
#define REQ_SCOPE(r, roles, buf) \
	(r)->who.type, (r)->who.id, req_roles_param((r), (roles), (buf), sizeof(buf))

#define ROLES_ADMIN (ROLE_MINISTRY_ADMIN | ROLE_TENANT_ADMIN)
#define ROLES_READ (ROLE_MINISTRY_ADMIN | ROLE_TENANT_ADMIN | ROLE_SOC_ANALYST)
#define ROLES_ANY (ROLES_READ | ROLE_AUDITOR)

/* Answers 200 with a body of content_type that s produces (see struct req_stream). */
int req_stream(struct req *r, struct req_stream *s, const char *content_type);

/* Begins / commits / rolls back a transaction on r->pg; -1 after answering on failure. */
int req_begin(struct req *r);
int req_commit(struct req *r);
void req_rollback(struct req *r);

/* Checks If-Match against a revision: true when absent or equal ("\"<rev>\"" or "*"). */
bool req_if_match(const struct req *r, const char *revision);

void req_set_etag(struct req *r, const char *revision);

#endif
