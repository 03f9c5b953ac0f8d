/* distribute.c -- long-poll snapshot distribution on libmicrohttpd. */
#include "distribute.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "atomicfile.h"
#include "hostport.h"
#include "log.h"
#include "pg.h"
#include "snapshot.h"

#define TOKEN_CACHE 64
#define TOKEN_CACHE_S 10

/* zstd's first fast level (--fast=1): on the 57 MiB national snapshot, mostly random hash
 * keys, it takes about 0.13 s of CPU for 61% of the size, against 0.22 s at level 1 for 60%
 * and seconds for gzip; the node decompresses it in about 0.1 s. */
#define ZSTD_LEVEL (-1)

/* One published version, shared by the responses sending it. The zstd body is made before
 * the version is served; the gzip body only when a client that cannot take zstd asks. */
struct blob {
	atomic_uint refs;
	uint64_t version;
	char etag[80];
	bool is_base;              /* a feed base, named by its content: never changes */
	uint8_t sha256[32];        /* of a base */
	uint8_t *raw, *zst, *gz;
	size_t raw_len, zst_len, gz_len;
	pthread_mutex_t gz_lock;   /* gz, gz_len */
};

struct cached_token {
	uint8_t hash[32];
	char node_id[37];
	time_t checked;
};

struct distribute {
	struct distribute_config cfg;
	char *dsn;
	struct MHD_Daemon *mhd;
	pthread_mutex_t lock;          /* current, and the wait condition */
	pthread_cond_t changed;
	struct blob *current;
	struct blob *base;             /* the feed base current names, or NULL */
	bool stopping;
	char compile_error[512];       /* the last compile's failure, "" after a success */
	pthread_mutex_t db_lock;       /* db, tokens */
	PGconn *db;
	struct cached_token tokens[TOKEN_CACHE];
};

static void blob_put(struct blob *b)
{
	if (b && atomic_fetch_sub(&b->refs, 1) == 1) {
		free(b->raw);
		free(b->zst);
		free(b->gz);
		pthread_mutex_destroy(&b->gz_lock);
		free(b);
	}
}

static struct blob *current_get(struct distribute *d)
{
	pthread_mutex_lock(&d->lock);
	struct blob *b = d->current;
	if (b)
		atomic_fetch_add(&b->refs, 1);
	pthread_mutex_unlock(&d->lock);
	return b;
}

static int gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream z = { 0 };
	/* Fastest level: at national scale level 6 took 1.6 s of a change's path to the nodes. */
	if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	size_t cap = deflateBound(&z, len);
	*out = malloc(cap);
	if (!*out) {
		deflateEnd(&z);
		return -ENOMEM;
	}
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)len;
	z.next_out = *out;
	z.avail_out = (uInt)cap;
	int rc = deflate(&z, Z_FINISH);
	*out_len = z.total_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -EIO;
}

static int zstd(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	size_t cap = ZSTD_compressBound(len);
	*out = malloc(cap);
	if (!*out)
		return -ENOMEM;
	/* One-shot: the frame records the content size, so the node allocates once. */
	size_t n = ZSTD_compress(*out, cap, in, len, ZSTD_LEVEL);
	if (ZSTD_isError(n))
		return -EIO;
	*out_len = n;
	return 0;
}

/* gzip for a client that takes it and not zstd, made once per version on first demand. */
static const uint8_t *blob_gzip(struct blob *b, size_t *len)
{
	pthread_mutex_lock(&b->gz_lock);
	if (!b->gz && gzip(b->raw, b->raw_len, &b->gz, &b->gz_len) < 0) {
		free(b->gz);
		b->gz = NULL;
		log_err("snapshot_gzip_failed", "version=%llu", (unsigned long long)b->version);
	}
	*len = b->gz_len;
	pthread_mutex_unlock(&b->gz_lock);
	return b->gz;
}

static struct blob *blob_load(const char *path, uint64_t version)
{
	struct blob *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	pthread_mutex_init(&b->gz_lock, NULL);
	b->version = version;
	snprintf(b->etag, sizeof b->etag, "\"%llu\"", (unsigned long long)version);
	if (!(b->raw = atomicfile_read(path, &b->raw_len)) ||
	    zstd(b->raw, b->raw_len, &b->zst, &b->zst_len) < 0) {
		blob_put(b);
		return NULL;
	}
	return b;
}

int distribute_publish(struct distribute *d, uint64_t version, const char *path,
		       uint64_t base_version, const char *base_path, const uint8_t *base_sha256)
{
	struct blob *base = NULL;
	pthread_mutex_lock(&d->lock);
	if (base_sha256 && d->base && memcmp(d->base->sha256, base_sha256, 32) == 0) {
		base = d->base;
		atomic_fetch_add(&base->refs, 1);
	}
	pthread_mutex_unlock(&d->lock);
	/* A base is read and compressed once, when the feeds changed; a policy change only
	 * loads its overlay. */
	if (base_sha256 && !base) {
		char hex[65];
		snapshot_checksum_hex(base_sha256, hex);
		if (!(base = blob_load(base_path, base_version)))
			return -EIO;
		base->is_base = true;
		memcpy(base->sha256, base_sha256, 32);
		snprintf(base->etag, sizeof base->etag, "\"base-%s\"", hex);
		log_info("snapshot_base_serving", "sha256=%s bytes=%zu zstd_bytes=%zu", hex,
			 base->raw_len, base->zst_len);
	}
	struct blob *b = blob_load(path, version);
	if (!b) {
		blob_put(base);
		return -EIO;
	}
	pthread_mutex_lock(&d->lock);
	struct blob *old = d->current, *old_base = d->base;
	d->current = b;
	d->base = base;
	pthread_cond_broadcast(&d->changed);
	pthread_mutex_unlock(&d->lock);
	blob_put(old);
	blob_put(old_base);
	log_info("snapshot_serving", "version=%llu bytes=%zu zstd_bytes=%zu",
		 (unsigned long long)version, b->raw_len, b->zst_len);
	return 0;
}

bool distribute_base_checksum(struct distribute *d, uint8_t out[32])
{
	pthread_mutex_lock(&d->lock);
	bool has = d->base != NULL;
	if (has)
		memcpy(out, d->base->sha256, 32);
	pthread_mutex_unlock(&d->lock);
	return has;
}

void distribute_set_compile_error(struct distribute *d, const char *error)
{
	pthread_mutex_lock(&d->lock);
	snprintf(d->compile_error, sizeof d->compile_error, "%s", error ? error : "");
	pthread_mutex_unlock(&d->lock);
}

uint64_t distribute_version(struct distribute *d)
{
	pthread_mutex_lock(&d->lock);
	uint64_t v = d->current ? d->current->version : 0;
	pthread_mutex_unlock(&d->lock);
	return v;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
								 MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static void hash_token(const char *token, uint8_t out[32])
{
	unsigned int len = 0;
	EVP_Digest(token, strlen(token), out, &len, EVP_sha256(), NULL);
}

static bool db_ready(struct distribute *d)
{
	if (d->db && PQstatus(d->db) == CONNECTION_OK)
		return true;
	if (d->db)
		PQfinish(d->db);
	d->db = pg_connect(d->dsn);
	return d->db != NULL;
}

/* The node a token belongs to, from a short-lived cache or the database: a revoked token
 * stops working within TOKEN_CACHE_S seconds. Returns 1 found, 0 unknown, -1 database down. */
static int authenticate(struct distribute *d, const char *token, char node_id[37])
{
	uint8_t hash[32];
	char hex[65];
	time_t now = time(NULL);
	int found = -1;

	hash_token(token, hash);
	pthread_mutex_lock(&d->db_lock);
	for (int i = 0; i < TOKEN_CACHE; i++) {
		struct cached_token *t = &d->tokens[i];
		if (t->checked && now - t->checked < TOKEN_CACHE_S && !memcmp(t->hash, hash, 32)) {
			memcpy(node_id, t->node_id, 37);
			found = 1;
			goto out;
		}
	}
	if (!db_ready(d))
		goto out;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", hash[i]);
	PGresult *res = pg_query(d->db, "SELECT id FROM resolver_nodes WHERE token_hash = "
					"decode($1, 'hex') AND revoked_at IS NULL", hex);
	if (!res)
		goto out;
	found = PQntuples(res) == 1;
	if (found) {
		snprintf(node_id, 37, "%s", PQgetvalue(res, 0, 0));
		struct cached_token *slot = &d->tokens[hash[0] % TOKEN_CACHE];
		memcpy(slot->hash, hash, 32);
		memcpy(slot->node_id, node_id, 37);
		slot->checked = now;
	}
	PQclear(res);
out:
	pthread_mutex_unlock(&d->db_lock);
	return found;
}

static void record_contact(struct distribute *d, const char *node_id, const char *ip,
			   const char *running, const char *error)
{
	pthread_mutex_lock(&d->db_lock);
	if (db_ready(d) &&
	    pg_command(d->db,
		       "UPDATE resolver_nodes SET last_seen_at = now(), last_seen_ip = $2::inet,"
		       " snapshot_version = COALESCE(NULLIF($3, '')::bigint, snapshot_version),"
		       " snapshot_loaded_at = CASE WHEN NULLIF($3, '')::bigint IS DISTINCT FROM"
		       "   snapshot_version THEN now() ELSE snapshot_loaded_at END,"
		       " last_error = COALESCE(NULLIF($4, ''), last_error),"
		       " last_error_at = CASE WHEN NULLIF($4, '') IS NULL THEN last_error_at"
		       "   ELSE now() END WHERE id = $1",
		       node_id, ip, running, error) < 0)
		log_warn("node_report_not_recorded", "node=%s", node_id);
	pthread_mutex_unlock(&d->db_lock);
}

/* A version a node reports: decimal, positive (0 means it runs none). */
static bool valid_running(const char *v)
{
	if (!v || !*v || *v == '0' || strlen(v) > 18)
		return false;
	for (; *v; v++)
		if (*v < '0' || *v > '9')
			return false;
	return true;
}

static void peer_ip(struct MHD_Connection *c, char *out, size_t cap)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c,
								      MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(out, cap, "0.0.0.0");
	if (!ci || !ci->client_addr)
		return;
	if (ci->client_addr->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out,
			  (socklen_t)cap);
	else if (ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
			  (socklen_t)cap);
}

/* Holds the request until a version other than etag is published or the wait ends. */
static struct blob *wait_for_change(struct distribute *d, const char *etag, unsigned wait_s)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_s;
	pthread_mutex_lock(&d->lock);
	while (!d->stopping && d->current && strcmp(d->current->etag, etag) == 0 &&
	       pthread_cond_timedwait(&d->changed, &d->lock, &until) != ETIMEDOUT)
		;
	struct blob *b = d->current;
	if (b)
		atomic_fetch_add(&b->refs, 1);
	pthread_mutex_unlock(&d->lock);
	return b;
}

struct body {
	struct blob *b;
	const uint8_t *data;
	size_t len;
};

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *body = cls;
	if (pos >= body->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = body->len - pos < max ? body->len - pos : max;
	memcpy(buf, body->data + pos, n);
	return (ssize_t)n;
}

static void free_body(void *cls)
{
	struct body *body = cls;
	blob_put(body->b);
	free(body);
}

enum coding { CODING_IDENTITY, CODING_ZSTD, CODING_GZIP };

/* Whether Accept-Encoding lists coding with a non-zero q (RFC 9110 12.5.3). */
static bool accepts(const char *ae, const char *coding)
{
	size_t n = strlen(coding);
	for (const char *p = ae; p && *p;) {
		p += strspn(p, " \t,");
		size_t tok = strcspn(p, " \t,;");
		bool match = tok == n && strncasecmp(p, coding, n) == 0;
		const char *end = p + strcspn(p, ",");
		const char *q = memchr(p, ';', (size_t)(end - p));
		if (match) {
			if (!q)
				return true;
			q += 1 + strspn(q + 1, " \t");
			return !(strncasecmp(q, "q=", 2) == 0 && strtod(q + 2, NULL) == 0.0);
		}
		p = end;
	}
	return false;
}

static enum MHD_Result send_snapshot(struct MHD_Connection *c, struct blob *b, const char *ae)
{
	enum coding coding = CODING_IDENTITY;
	struct body *body = malloc(sizeof *body);
	if (!body) {
		blob_put(b);
		return MHD_NO;
	}
	body->b = b;
	body->data = b->raw;
	body->len = b->raw_len;
	if (ae && accepts(ae, "zstd")) {
		coding = CODING_ZSTD;
		body->data = b->zst;
		body->len = b->zst_len;
	} else if (ae && accepts(ae, "gzip")) {
		size_t len;
		const uint8_t *gz = blob_gzip(b, &len);
		if (gz) {
			coding = CODING_GZIP;
			body->data = gz;
			body->len = len;
		}
	}
	struct MHD_Response *r = MHD_create_response_from_callback(body->len, 256 * 1024, read_body,
								   body, free_body);
	if (!r) {
		free_body(body);
		return MHD_NO;
	}
	char version[24];
	snprintf(version, sizeof version, "%llu", (unsigned long long)b->version);
	MHD_add_response_header(r, "Content-Type", "application/vnd.aegis.snapshot");
	MHD_add_response_header(r, "ETag", b->etag);
	MHD_add_response_header(r, "X-Aegis-Snapshot-Version", version);
	if (b->is_base)
		MHD_add_response_header(r, "Cache-Control", "max-age=31536000, immutable");
	MHD_add_response_header(r, "Vary", "Accept-Encoding");
	if (coding != CODING_IDENTITY)
		MHD_add_response_header(r, "Content-Encoding",
					coding == CODING_ZSTD ? "zstd" : "gzip");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* 1 when the request carries a valid node token, else 0 with the refusal queued in *ret. */
static int require_node(struct distribute *d, struct MHD_Connection *c, char node_id[37],
			enum MHD_Result *ret)
{
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	int who = -2;
	if (auth && strncmp(auth, "Bearer ", 7) == 0 && strlen(auth + 7) >= 32)
		who = authenticate(d, auth + 7, node_id);
	if (who == 1)
		return 1;
	*ret = who == -2 ? reply_text(c, MHD_HTTP_UNAUTHORIZED, "{\"error\":\"a node token is "
							    "required (Authorization: Bearer)\"}")
	       : who < 0 ? reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				      "{\"error\":\"node registry unavailable\"}")
			 : reply_text(c, MHD_HTTP_FORBIDDEN,
				      "{\"error\":\"unknown or revoked node token\"}");
	return 0;
}

/* GET /v1/snapshot/base/<sha256 hex>: the feed base the current policy names. An older one
 * is gone (404): the node asks for the current policy again and then for its base. */
static enum MHD_Result handle_base(struct distribute *d, struct MHD_Connection *c,
				   const char *hex)
{
	char node_id[37], want[80];
	enum MHD_Result ret;
	if (!require_node(d, c, node_id, &ret))
		return ret;
	snprintf(want, sizeof want, "\"base-%s\"", hex);
	pthread_mutex_lock(&d->lock);
	struct blob *b = d->base && strcmp(d->base->etag, want) == 0 ? d->base : NULL;
	if (b)
		atomic_fetch_add(&b->refs, 1);
	pthread_mutex_unlock(&d->lock);
	if (!b)
		return reply_text(c, MHD_HTTP_NOT_FOUND,
				  "{\"error\":\"not the base of the current snapshot\"}");
	return send_snapshot(c, b, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
								 "Accept-Encoding"));
}

static enum MHD_Result handle_snapshot(struct distribute *d, struct MHD_Connection *c)
{
	char node_id[37], ip[INET6_ADDRSTRLEN];
	enum MHD_Result ret;
	if (!require_node(d, c, node_id, &ret))
		return ret;

	const char *running = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Aegis-Running");
	const char *error = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Aegis-Error");
	char error_text[512] = "";
	if (error)
		snprintf(error_text, sizeof error_text, "%s", error);
	peer_ip(c, ip, sizeof ip);
	record_contact(d, node_id, ip, valid_running(running) ? running : "", error_text);

	const char *wait_arg = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
	unsigned wait_s = wait_arg ? (unsigned)strtoul(wait_arg, NULL, 10) : 0;
	if (wait_s > d->cfg.max_wait_s)
		wait_s = d->cfg.max_wait_s;
	const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
	struct blob *b = inm && wait_s ? wait_for_change(d, inm, wait_s) : current_get(d);
	if (!b)
		return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
				  "{\"error\":\"no snapshot compiled yet\"}");
	if (inm && strcmp(inm, b->etag) == 0) {
		blob_put(b);
		struct MHD_Response *r = MHD_create_response_from_buffer(0, NULL,
									 MHD_RESPMEM_PERSISTENT);
		MHD_add_response_header(r, "ETag", inm);
		ret = MHD_queue_response(c, MHD_HTTP_NOT_MODIFIED, r);
		MHD_destroy_response(r);
		return ret;
	}
	const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
	return send_snapshot(c, b, ae);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **state)
{
	struct distribute *d = cls;
	static int seen;
	(void)version;
	(void)upload_data;
	/* libmicrohttpd calls twice; answering on the first call would drop keep-alive. */
	if (!*state) {
		*state = &seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "{\"error\":\"only GET\"}");
	if (strcmp(url, "/v1/snapshot") == 0)
		return handle_snapshot(d, c);
	if (strncmp(url, "/v1/snapshot/base/", 18) == 0 && strlen(url + 18) == 64 &&
	    strspn(url + 18, "0123456789abcdef") == 64)
		return handle_base(d, c, url + 18);
	if (strcmp(url, "/healthz") == 0) {
		pthread_mutex_lock(&d->lock);
		uint64_t v = d->current ? d->current->version : 0;
		json_t *j = json_pack("{s:I, s:I, s:s?}", "snapshot_version", (json_int_t)v,
				      "base_version", (json_int_t)(d->base ? d->base->version : 0),
				      "last_compile_error",
				      d->compile_error[0] ? d->compile_error : NULL);
		pthread_mutex_unlock(&d->lock);
		char *body = j ? json_dumps(j, JSON_COMPACT) : NULL; /* j: new, body: new */
		json_decref(j);
		enum MHD_Result ret = reply_text(c, v ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
						 body ? body : "{}");
		free(body);
		return ret;
	}
	return reply_text(c, MHD_HTTP_NOT_FOUND, "{\"error\":\"no such resource\"}");
}

struct distribute *distribute_start(const struct distribute_config *cfg)
{
	struct distribute *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->cfg = *cfg;
	d->dsn = strdup(cfg->dsn);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->changed, NULL);
	pthread_mutex_init(&d->db_lock, NULL);

	struct sockaddr_storage ss;
	socklen_t len;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_ERROR_LOG;
	if (hostport_parse(cfg->listen, &ss, &len) < 0) {
		log_err("http_listen_invalid", "listen=%s", cfg->listen);
		distribute_stop(d);
		return NULL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	d->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, d,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->max_wait_s + 30),
				  MHD_OPTION_END);
	if (!d->mhd || !d->dsn) {
		log_err("http_listen_failed", "listen=%s", cfg->listen);
		distribute_stop(d);
		return NULL;
	}
	log_info("distributing", "listen=%s", cfg->listen);
	return d;
}

void distribute_stop(struct distribute *d)
{
	if (!d)
		return;
	if (d->mhd) {
		/* Wake long-polls so their threads finish before the daemon is torn down. */
		pthread_mutex_lock(&d->lock);
		d->stopping = true;
		pthread_cond_broadcast(&d->changed);
		pthread_mutex_unlock(&d->lock);
		MHD_stop_daemon(d->mhd);
	}
	blob_put(d->current);
	blob_put(d->base);
	if (d->db)
		PQfinish(d->db);
	free(d->dsn);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->changed);
	pthread_mutex_destroy(&d->db_lock);
	free(d);
}
