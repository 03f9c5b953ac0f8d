/* http.c -- the API's HTTP side: libmicrohttpd's thread pool, request life, JSON answers.
 *
 * A request goes through on_request() three ways: the first call routes it and refuses
 * early what needs no body read (unknown path, wrong method, declared body too large, wrong
 * media type); upload calls collect the body up to the route's limit; the last call
 * authenticates, parses the JSON body, runs the handler and queues the answer. Responses are
 * queued only on that last call, so keep-alive survives (see DESIGN.md).
 */
#include "portal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api.h"
#include "auth.h"
#include "cleanup.h"
#include "hostport.h"
#include "log.h"
#include "pg.h"
#include "pgpool.h"
#include "routes.h"
#include "throttle.h"
#include "token.h"

struct call {
	struct req r;
	const struct route *route;
	char captures[512];
	char allow[64];
	char *body;
	size_t body_len, body_cap, limit;
	bool too_large;
};

/* ---- helpers for handlers (api.h) ---- */

int req_error(struct req *r, unsigned status, const char *code, const char *field,
	      const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->error_set)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_t *err = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (err && field)
		json_object_set_new(err, "field", json_string(field));
	json_decref(r->out);
	r->out = err ? json_pack("{s:o}", "error", err) : NULL;
	free(r->text);
	r->text = NULL;
	r->status = status;
	r->error_set = true;
	return -1;
}

PGconn *req_db(struct req *r)
{
	if (r->pg)
		return r->pg;
	r->pg = pgpool_get(r->portal->pool);
	if (!r->pg)
		req_error(r, 503, "database_unavailable", NULL,
			  "the database cannot be reached; try again later");
	return r->pg;
}

int req_db_failed(struct req *r)
{
	if (r->pg && PQstatus(r->pg) == CONNECTION_BAD)
		return req_error(r, 503, "database_unavailable", NULL,
				 "the database connection was lost; try again later");
	return req_error(r, 500, "internal", NULL, "internal error (request %s)", r->request_id);
}

int req_reply_json_text(struct req *r, unsigned status, const char *json_text)
{
	json_error_t e;
	json_t *v = json_loads(json_text, JSON_DECODE_ANY, &e);
	if (!v) {
		log_err("json_from_db_invalid", "error=\"%s\"", e.text);
		return req_error(r, 500, "internal", NULL, "internal error (request %s)",
				 r->request_id);
	}
	json_decref(r->out);
	r->out = v;
	r->status = status;
	return 0;
}

int req_reply_items(struct req *r, PGresult *res, int col, int cursor_col, unsigned limit)
{
	json_t *items = json_array();
	json_t *out = json_pack("{s:o, s:n}", "items", items, "next");
	if (!out)
		return req_error(r, 500, "internal", NULL, "out of memory");
	int n = PQntuples(res);
	for (int i = 0; i < n; i++) {
		json_t *v = json_loads(PQgetvalue(res, i, col), JSON_DECODE_ANY, NULL);
		if (!v) {
			json_decref(out);
			return req_error(r, 500, "internal", NULL, "internal error (request %s)",
					 r->request_id);
		}
		json_array_append_new(items, v);
	}
	if (cursor_col >= 0 && n > 0 && (unsigned)n == limit)
		json_object_set_new(out, "next", json_string(PQgetvalue(res, n - 1, cursor_col)));
	json_decref(r->out);
	r->out = out;
	r->status = 200;
	return 0;
}

const char *req_arg(const struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->connection, MHD_GET_ARGUMENT_KIND, name);
}

const char *req_header(const struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->connection, MHD_HEADER_KIND, name);
}

static const char *const role_names[] = { "ministry_admin", "tenant_admin", "soc_analyst",
					  "auditor" };

bool req_require(struct req *r, unsigned roles)
{
	if (r->who.roles & roles)
		return true;
	req_error(r, 403, "forbidden", NULL, "your role may not do this");
	return false;
}

const char *req_roles_param(const struct req *r, unsigned roles, char *buf, size_t cap)
{
	size_t o = 0;
	buf[o++] = '{';
	for (unsigned i = 0; i < 4; i++) {
		if (!(r->who.roles & roles & (1u << i)))
			continue;
		int n = snprintf(buf + o, cap - o, "%s%s", o > 1 ? "," : "", role_names[i]);
		if (n < 0 || (size_t)n >= cap - o)
			break;
		o += (size_t)n;
	}
	snprintf(buf + o, cap - o, "}");
	return buf;
}

const char *req_acting_role(const struct req *r, unsigned roles)
{
	for (unsigned i = 0; i < 4; i++)
		if (r->who.roles & roles & (1u << i))
			return role_names[i];
	return NULL;
}

int req_begin(struct req *r)
{
	if (!req_db(r))
		return -1;
	if (pg_command(r->pg, "BEGIN") < 0)
		return req_db_failed(r);
	return 0;
}

int req_commit(struct req *r)
{
	if (pg_command(r->pg, "COMMIT") < 0)
		return req_db_failed(r);
	return 0;
}

void req_rollback(struct req *r)
{
	if (r->pg && PQtransactionStatus(r->pg) != PQTRANS_IDLE)
		(void)!pg_command(r->pg, "ROLLBACK");
}

bool req_if_match(const struct req *r, const char *revision)
{
	char want[32];
	if (!r->if_match || strcmp(r->if_match, "*") == 0)
		return true;
	snprintf(want, sizeof want, "\"%s\"", revision);
	return strcmp(r->if_match, want) == 0 || strcmp(r->if_match, revision) == 0;
}

int req_stream(struct req *r, struct req_stream *s, const char *content_type)
{
	s->pool = r->portal->pool;
	s->pg = r->pg;
	r->pg = NULL;
	r->stream = s;
	r->text_type = content_type;
	r->status = 200;
	return 0;
}

void req_set_etag(struct req *r, const char *revision)
{
	snprintf(r->etag, sizeof r->etag, "\"%s\"", revision);
}

/* ---- request life ---- */

static void set_client_ip(struct portal *p, struct call *call, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct req *r = &call->r;
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(r->client_ip, sizeof r->client_ip, "0.0.0.0");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client_ip,
			  sizeof r->client_ip);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client_ip,
			  sizeof r->client_ip);
	if (!p->cfg->trust_forwarded_for)
		return;
	/* Behind the reverse proxy: its $proxy_add_x_forwarded_for ends with the address it saw. */
	const char *xff = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Forwarded-For");
	if (!xff)
		return;
	const char *last = strrchr(xff, ',');
	last = last ? last + 1 : xff;
	while (*last == ' ')
		last++;
	char buf[64];
	unsigned char bin[16];
	size_t n = strcspn(last, " ");
	if (n == 0 || n >= sizeof buf)
		return;
	memcpy(buf, last, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1)
		snprintf(r->client_ip, sizeof r->client_ip, "%s", buf);
}

static void set_request_id(struct req *r, struct MHD_Connection *c)
{
	const char *given = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
	unsigned char rnd[12];
	if (given && strlen(given) >= 8 && strlen(given) < sizeof r->request_id &&
	    strspn(given, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") ==
		    strlen(given)) {
		snprintf(r->request_id, sizeof r->request_id, "%s", given);
		return;
	}
	if (token_random(rnd, sizeof rnd) < 0)
		memset(rnd, 0, sizeof rnd);
	for (unsigned i = 0; i < sizeof rnd; i++)
		snprintf(r->request_id + 2 * i, 3, "%02x", rnd[i]);
}

static bool media_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);
	return ct && strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

static bool has_body(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	       strcmp(method, "PATCH") == 0;
}

/* First call: route, and refuse what can be refused before reading a byte of body. */
static void start_call(struct portal *p, struct call *call, struct MHD_Connection *c,
		       const char *url, const char *method)
{
	struct req *r = &call->r;
	unsigned status = 0;

	r->portal = p;
	r->method = method;
	r->url = url;
	r->connection = c;
	r->status = 200;
	set_request_id(r, c);
	set_client_ip(p, call, c);
	r->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	r->if_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-Match");

	call->route = routes_match(method, url, r->params, call->captures, sizeof call->captures,
				   &status, call->allow, sizeof call->allow);
	if (!call->route) {
		if (status == 405)
			req_error(r, 405, "method_not_allowed", NULL, "%s is not allowed here",
				  method);
		else
			req_error(r, 404, "not_found", NULL, "no such resource");
		return;
	}
	unsigned fl = call->route->flags;
	call->limit = fl & ROUTE_IMPORT ? p->cfg->max_import_body : p->cfg->max_body;
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno || *end || n > call->limit) {
			req_error(r, 413, "body_too_large", NULL, "the body may hold at most %zu bytes",
				  call->limit);
			return;
		}
	}
	if (!has_body(method))
		return;
	if ((fl & ROUTE_JSON) && !media_type_is(r->content_type, "application/json"))
		req_error(r, 415, "unsupported_media_type", "Content-Type",
			  "send the body as application/json");
	else if ((fl & ROUTE_IMPORT) && !media_type_is(r->content_type, "text/csv") &&
		 !media_type_is(r->content_type, "text/plain"))
		req_error(r, 415, "unsupported_media_type", "Content-Type",
			  "send the list as text/csv or text/plain");
}

static void take_upload(struct call *call, const char *data, size_t len)
{
	if (call->r.error_set || call->too_large)
		return;
	if (call->body_len + len > call->limit) {
		call->too_large = true;
		free(call->body);
		call->body = NULL;
		req_error(&call->r, 413, "body_too_large", NULL, "the body may hold at most %zu bytes",
			  call->limit);
		return;
	}
	if (call->body_len + len + 1 > call->body_cap) {
		size_t cap = call->body_cap ? call->body_cap : 4096;
		while (cap < call->body_len + len + 1)
			cap *= 2;
		char *b = realloc(call->body, cap);
		if (!b) {
			req_error(&call->r, 500, "internal", NULL, "out of memory");
			return;
		}
		call->body = b;
		call->body_cap = cap;
	}
	memcpy(call->body + call->body_len, data, len);
	call->body_len += len;
	call->body[call->body_len] = '\0';
}

static int parse_body(struct call *call)
{
	struct req *r = &call->r;
	unsigned fl = call->route->flags;
	if (!has_body(r->method) || !(fl & (ROUTE_JSON | ROUTE_IMPORT)))
		return 0;
	if (fl & ROUTE_IMPORT) {
		r->raw = call->body ? call->body : "";
		r->raw_len = call->body_len;
		return 0;
	}
	if (call->body_len == 0)
		return req_error(r, 400, "invalid_json", NULL, "a JSON object body is required");
	json_error_t e;
	r->body = json_loadb(call->body, call->body_len, JSON_REJECT_DUPLICATES, &e);
	if (!r->body)
		return req_error(r, 400, "invalid_json", NULL, "line %d column %d: %s", e.line,
				 e.column, e.text);
	if (!json_is_object(r->body))
		return req_error(r, 400, "invalid_json", NULL, "the body must be a JSON object");
	return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req_stream *s = cls;
	size_t len = 0;
	(void)pos;
	if (s->done)
		return MHD_CONTENT_READER_END_OF_STREAM;
	int rc = s->fill(s, buf, max, &len);
	if (rc < 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (rc > 0)
		s->done = true;
	if (len == 0)
		return s->done ? MHD_CONTENT_READER_END_OF_STREAM : 0;
	return (ssize_t)len;
}

static void stream_free(void *cls)
{
	struct req_stream *s = cls;
	struct pgpool *pool = s->pool;
	PGconn *pg = s->pg;
	s->fini(s);
	if (pg)
		pgpool_put(pool, pg);
}

static void count(struct portal *p, unsigned status)
{
	struct portal_metrics *m = &p->metrics;
	unsigned slot = status / 100;
	atomic_fetch_add(&m->requests[slot < PORTAL_STATUS_SLOTS ? slot : 0], 1);
	if (status == 401)
		atomic_fetch_add(&m->status_401, 1);
	else if (status == 403)
		atomic_fetch_add(&m->status_403, 1);
	else if (status == 404)
		atomic_fetch_add(&m->status_404, 1);
	else if (status == 429)
		atomic_fetch_add(&m->status_429, 1);
	else if (status == 503)
		atomic_fetch_add(&m->status_503, 1);
}

static enum MHD_Result respond(struct portal *p, struct call *call, struct MHD_Connection *c)
{
	struct req *r = &call->r;
	struct MHD_Response *resp;
	const char *type = "application/json";

	if (r->stream && !r->error_set) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read,
							 r->stream, stream_free);
		if (!resp)
			stream_free(r->stream);
		r->stream = NULL;
		type = r->text_type;
	} else if (r->text) {
		resp = MHD_create_response_from_buffer(r->text_len, r->text, MHD_RESPMEM_MUST_FREE);
		r->text = NULL;
		type = r->text_type ? r->text_type : "text/plain; charset=utf-8";
	} else if (r->out) {
		char *s = json_dumps(r->out, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s)
			return MHD_NO;
		size_t n = strlen(s);
		s[n] = '\n';   /* json_dumps leaves the NUL: overwrite it, the length is known */
		resp = MHD_create_response_from_buffer(n + 1, s, MHD_RESPMEM_MUST_FREE);
	} else {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		type = NULL;
	}
	if (!resp)
		return MHD_NO;
	if (type && r->status != 204)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(resp, "X-Request-Id", r->request_id);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->etag[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->etag);
	if (r->location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->status == 401)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"aegis\"");
	if (r->status == 405 && call->allow[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, call->allow);
	if (r->retry_after) {
		char ra[16];
		snprintf(ra, sizeof ra, "%u", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	count(p, r->status);
	enum MHD_Result ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static uint64_t monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Rate limits: per client address before anything costs a query, per principal after
 * authentication (a key shared by many machines is one principal). */
static int throttled(struct req *r, struct throttle *t, const char *key)
{
	unsigned retry = 0;
	if (throttle_allow(t, key, monotonic_us(), &retry))
		return 0;
	atomic_fetch_add(&r->portal->metrics.rate_limited, 1);
	r->retry_after = retry;
	return req_error(r, 429, "rate_limited", NULL, "too many requests; retry after %u s",
			 retry);
}

static void finish_call(struct call *call, struct MHD_Connection *c)
{
	struct req *r = &call->r;
	struct portal *p = r->portal;
	if (r->error_set || throttled(r, p->by_address, r->client_ip) < 0)
		return;
	if (!(call->route->flags & ROUTE_PUBLIC)) {
		const char *authz =
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
		if (auth_authenticate(r, authz) < 0 || throttled(r, p->by_principal, r->who.id) < 0)
			return;
	}
	if (parse_body(call) < 0)
		return;
	call->route->handler(r);
	if (!r->error_set && !r->out && !r->text && !r->stream && r->status != 204)
		req_error(r, 500, "internal", NULL, "internal error (request %s)", r->request_id);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct portal *p = cls;
	struct call *call = *con_cls;
	(void)version;

	if (!call) {
		call = calloc(1, sizeof *call);
		if (!call)
			return MHD_NO;
		*con_cls = call;
		start_call(p, call, c, url, method);
		return MHD_YES;
	}
	if (*upload_size) {
		take_upload(call, upload_data, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	finish_call(call, c);
	req_rollback(&call->r);
	if (call->r.pg) {
		pgpool_put(p->pool, call->r.pg);
		call->r.pg = NULL;
	}
	return respond(p, call, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct portal *p = cls;
	struct call *call = *con_cls;
	(void)c;
	(void)toe;
	if (!call)
		return;
	if (call->r.pg)
		pgpool_put(p->pool, call->r.pg);
	if (call->r.stream)
		stream_free(call->r.stream);
	json_decref(call->r.body);
	json_decref(call->r.out);
	free(call->r.text);
	free(call->body);
	free(call);
	*con_cls = NULL;
}

/* ---- listener ---- */

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

/* Checks the listen address and TLS files without binding: 0, or -1 with the reason in err. */
static int check_listen(const struct portal_config *cfg, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	bool tls = cfg->tls_cert_file && cfg->tls_key_file;

	if (hostport_parse(cfg->listen, &ss, &len) < 0) {
		snprintf(err, errlen, "http.listen '%s' is not ADDRESS:PORT", cfg->listen);
		return -1;
	}
	if (!!cfg->tls_cert_file != !!cfg->tls_key_file) {
		snprintf(err, errlen, "tls.cert_file and tls.key_file go together");
		return -1;
	}
	if (tls && !MHD_is_feature_supported(MHD_FEATURE_TLS)) {
		snprintf(err, errlen, "this libmicrohttpd has no TLS; terminate TLS at the proxy");
		return -1;
	}
	if (!tls && !is_loopback(&ss) && !cfg->allow_plain_non_loopback) {
		snprintf(err, errlen,
			 "plain HTTP on %s, which is not loopback: configure tls.cert_file and "
			 "tls.key_file, or put the reverse proxy in front and set "
			 "http.allow_plain_non_loopback = true",
			 cfg->listen);
		return -1;
	}
	return 0;
}

static char *slurp(const char *path)
{
	auto_fclose FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	if (!buf)
		return NULL;
	size_t n = fread(buf, 1, 65535, f);
	if (n == 0 || n == 65535) {
		free(buf);
		return NULL;
	}
	return buf;
}

int portal_start(struct portal *p, const struct portal_config *cfg)
{
	char err[256];
	struct sockaddr_storage ss;
	socklen_t len;

	p->cfg = cfg;
	if (check_listen(cfg, err, sizeof err) < 0) {
		log_err("listen_refused", "reason=\"%s\"", err);
		return -EINVAL;
	}
	(void)!hostport_parse(cfg->listen, &ss, &len);
	/* jansson seeds its hash function on first use; do it here, before the worker threads
	 * race for it (jansson's advice for threaded programs). */
	json_object_seed(0);
	p->pool = pgpool_new(cfg->dsn, cfg->pool_size, 5000);
	p->by_address = throttle_new(cfg->rate_per_address, cfg->burst_per_address);
	p->by_principal = throttle_new(cfg->rate_per_principal, cfg->burst_per_principal);
	if (!p->pool || (cfg->rate_per_address && !p->by_address) ||
	    (cfg->rate_per_principal && !p->by_principal))
		return -ENOMEM;

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	char *cert = NULL, *key = NULL;
	if (cfg->tls_cert_file) {
		cert = p->tls_mem[0] = slurp(cfg->tls_cert_file);
		key = p->tls_mem[1] = slurp(cfg->tls_key_file);
		if (!cert || !key) {
			log_err("tls_files_unreadable", "cert=%s key=%s", cfg->tls_cert_file,
				cfg->tls_key_file);
			return -EINVAL;
		}
		flags |= MHD_USE_TLS;
	}
	p->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, p,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->threads,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, p,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned int)1024,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)128,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
		cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
		MHD_OPTION_HTTPS_MEM_KEY, key,
		MHD_OPTION_END);
	if (!p->mhd) {
		log_err("listen_failed", "listen=%s", cfg->listen);
		return -EADDRINUSE;
	}
	log_info("listening", "listen=%s tls=%s threads=%u pool=%u", cfg->listen,
		 cert ? "yes" : "no", cfg->threads, cfg->pool_size);
	return 0;
}

void portal_stop(struct portal *p)
{
	if (p->mhd)
		MHD_stop_daemon(p->mhd);
	p->mhd = NULL;
	pgpool_free(p->pool);
	p->pool = NULL;
	throttle_free(p->by_address);
	throttle_free(p->by_principal);
	p->by_address = p->by_principal = NULL;
	for (int i = 0; i < 2; i++) {
		free(p->tls_mem[i]);
		p->tls_mem[i] = NULL;
	}
}
