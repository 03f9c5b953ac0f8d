/* fetch.c -- the snapshot long-poll client, on libevent's HTTP client. */
#include "fetch.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "log.h"
#include "snapshot.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define MAX_SNAPSHOT (512u << 20)

struct fetch {
	struct event_base *base;
	char *url, *token;
	unsigned wait_s;
	struct evhttp_uri *uri;
	struct evhttp_connection *conn;
	struct event *timer;
	fetch_version_fn version;
	fetch_apply_fn apply;
	fetch_apply_fn apply_base;
	void *arg;
	/* A snapshot that waits for its feed base: the next request asks for the base. */
	uint8_t *pending;
	size_t pending_len;
	char base_hex[65];
	unsigned backoff_ms;
	char last_error[256];     /* reported to tenantd with the next request */
	char last_logged[256];    /* so a lasting failure is logged once */
};

static void schedule(struct fetch *f, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	evtimer_add(f->timer, &tv);
}

static void failed(struct fetch *f, const char *why)
{
	if (strcmp(why, f->last_logged) != 0) {
		char quoted[300];
		log_warn("policy_fetch_failed", "url=%s error=%s", f->url,
			 log_quote(quoted, sizeof quoted, why));
		snprintf(f->last_logged, sizeof f->last_logged, "%s", why);
	}
	f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (f->backoff_ms > BACKOFF_MAX_MS)
		f->backoff_ms = BACKOFF_MAX_MS;
	schedule(f, f->backoff_ms);
}

static int gunzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	z_stream z = { 0 };
	size_t cap = len * 4 + 4096;
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return -ENOMEM;
	*out = malloc(cap);
	z.next_in = (uint8_t *)in;
	z.avail_in = (uInt)len;
	int rc = Z_OK;
	while (*out && rc == Z_OK) {
		if (z.total_out == cap) {
			if (cap >= MAX_SNAPSHOT)
				break;
			uint8_t *bigger = realloc(*out, cap * 2);
			if (!bigger)
				break;
			*out = bigger;
			cap *= 2;
		}
		z.next_out = *out + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		rc = inflate(&z, Z_NO_FLUSH);
	}
	*out_len = z.total_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(*out);
		*out = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* tenantd's frames carry their content size: one allocation, one pass. */
static int unzstd(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
	unsigned long long size = ZSTD_getFrameContentSize(in, len);
	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
	    size > MAX_SNAPSHOT)
		return -EBADMSG;
	*out = malloc(size ? size : 1);
	if (!*out)
		return -ENOMEM;
	size_t n = ZSTD_decompress(*out, size, in, len);
	if (ZSTD_isError(n) || n != size) {
		free(*out);
		*out = NULL;
		return -EBADMSG;
	}
	*out_len = n;
	return 0;
}

static void drop_pending(struct fetch *f)
{
	free(f->pending);
	f->pending = NULL;
	f->pending_len = 0;
	f->base_hex[0] = '\0';
}

static void succeeded(struct fetch *f)
{
	f->last_error[0] = '\0';
	f->last_logged[0] = '\0';
	f->backoff_ms = 0;
	schedule(f, 0);
}

static void refused(struct fetch *f, const char *what, const char *err)
{
	/* tenantd hears of it with the next request; the node keeps its snapshot. */
	snprintf(f->last_error, sizeof f->last_error, "%s refused: %s", what, err);
	failed(f, f->last_error);
}

/* A snapshot (or, with base_hex set, the base the pending one waits for) arrived decoded. */
static void take(struct fetch *f, uint8_t *plain, const uint8_t *data, size_t len)
{
	char err[200] = "";
	uint8_t need[32];
	const bool with_base = f->base_hex[0] != '\0';
	if (with_base) {
		int rc = f->apply_base(f->arg, data, len, NULL, err, sizeof err);
		free(plain);
		if (rc < 0) {
			drop_pending(f);
			refused(f, "snapshot base", err);
			return;
		}
		plain = f->pending;
		data = plain;
		len = f->pending_len;
		f->pending = NULL;
		f->base_hex[0] = '\0';
	}
	int rc = f->apply(f->arg, data, len, need, err, sizeof err);
	if (rc == 1 && with_base) {
		free(plain);
		refused(f, "snapshot", "the base received is not the one it names");
		return;
	}
	if (rc == 1) {
		/* Keep the snapshot, fetch its base next. */
		if (!plain && (plain = malloc(len ? len : 1)) != NULL)
			memcpy(plain, data, len);
		if (!plain) {
			failed(f, "out of memory");
			return;
		}
		f->pending = plain;
		f->pending_len = len;
		snapshot_checksum_hex(need, f->base_hex);
		schedule(f, 0);
		return;
	}
	free(plain);
	if (rc < 0) {
		refused(f, "snapshot", err);
		return;
	}
	succeeded(f);
}

static void on_response(struct evhttp_request *req, void *arg)
{
	struct fetch *f = arg;
	if (!req) {
		drop_pending(f);
		failed(f, "no answer from tenantd");
		return;
	}
	int code = evhttp_request_get_response_code(req);
	if (code == 404 && f->base_hex[0]) {
		/* tenantd moved on to another base meanwhile: ask for its current snapshot. */
		drop_pending(f);
		schedule(f, 0);
		return;
	}
	if (code != 200)
		drop_pending(f);
	if (code == 304) {
		f->backoff_ms = 0;
		f->last_logged[0] = '\0';
		schedule(f, 0);
		return;
	}
	if (code == 503) {
		/* tenantd is up but has no snapshot yet (first compile running): ask again soon
		 * rather than backing off, so a node started first gets its policy at once. */
		schedule(f, BACKOFF_MIN_MS);
		return;
	}
	if (code != 200) {
		char why[64];
		snprintf(why, sizeof why, "HTTP status %d", code);
		failed(f, why);
		return;
	}
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(body);
	const uint8_t *data = evbuffer_pullup(body, -1);
	const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req),
					     "Content-Encoding");
	uint8_t *plain = NULL;
	bool zst = enc && strcmp(enc, "zstd") == 0, gz = enc && strcmp(enc, "gzip") == 0;
	if (zst || gz) {
		if ((zst ? unzstd : gunzip)(data, len, &plain, &len) < 0) {
			drop_pending(f);
			snprintf(f->last_error, sizeof f->last_error, "snapshot: bad %s body",
				 zst ? "zstd" : "gzip");
			failed(f, f->last_error);
			return;
		}
		data = plain;
	}
	take(f, plain, data, len);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fetch *f = arg;
	char target[512], etag[32], running[24], auth[600], host[300];
	(void)fd;
	(void)what;

	struct evhttp_request *req = evhttp_request_new(on_response, f);
	if (!req) {
		failed(f, "out of memory");
		return;
	}
	uint64_t v = f->version(f->arg);
	const char *path = evhttp_uri_get_path(f->uri);
	path = path && strcmp(path, "/") != 0 ? path : "";
	if (f->base_hex[0])
		snprintf(target, sizeof target, "%s/v1/snapshot/base/%s", path, f->base_hex);
	else
		snprintf(target, sizeof target, "%s/v1/snapshot?wait=%u", path, f->wait_s);
	snprintf(etag, sizeof etag, "\"%llu\"", (unsigned long long)v);
	snprintf(running, sizeof running, "%llu", (unsigned long long)v);
	snprintf(auth, sizeof auth, "Bearer %s", f->token);
	snprintf(host, sizeof host, "%s", evhttp_uri_get_host(f->uri));
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Authorization", auth);
	/* zstd from tenantd; gzip still understood from one that predates it. */
	evhttp_add_header(h, "Accept-Encoding", "zstd, gzip");
	if (v) {
		evhttp_add_header(h, "If-None-Match", etag);
		evhttp_add_header(h, "X-Aegis-Running", running);
	}
	if (f->last_error[0])
		evhttp_add_header(h, "X-Aegis-Error", f->last_error);
	if (evhttp_make_request(f->conn, req, EVHTTP_REQ_GET, target) < 0)
		failed(f, "cannot send the request");
}

struct fetch *fetch_start(struct event_base *base, const struct fetch_config *cfg,
			  fetch_version_fn version, fetch_apply_fn apply, fetch_apply_fn apply_base,
			  void *arg)
{
	struct fetch *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->base = base;
	f->url = strdup(cfg->url);
	f->token = strdup(cfg->token);
	f->wait_s = cfg->wait_s;
	f->version = version;
	f->apply = apply;
	f->apply_base = apply_base;
	f->arg = arg;
	f->uri = f->url ? evhttp_uri_parse(f->url) : NULL;
	const char *scheme = f->uri ? evhttp_uri_get_scheme(f->uri) : NULL;
	if (!f->token || !f->uri || !scheme || strcmp(scheme, "http") != 0 ||
	    !evhttp_uri_get_host(f->uri)) {
		log_err("policy_url_invalid", "url=%s expected=http://HOST:PORT", cfg->url);
		fetch_stop(f);
		return NULL;
	}
	int port = evhttp_uri_get_port(f->uri);
	f->conn = evhttp_connection_base_new(base, NULL, evhttp_uri_get_host(f->uri),
					     (uint16_t)(port > 0 ? port : 80));
	f->timer = evtimer_new(base, on_timer, f);
	if (!f->conn || !f->timer) {
		fetch_stop(f);
		return NULL;
	}
	evhttp_connection_set_timeout(f->conn, (int)f->wait_s + 15);
	evhttp_connection_set_max_body_size(f->conn, MAX_SNAPSHOT);
	schedule(f, 0);
	return f;
}

void fetch_stop(struct fetch *f)
{
	if (!f)
		return;
	if (f->timer)
		event_free(f->timer);
	if (f->conn)
		evhttp_connection_free(f->conn);
	if (f->uri)
		evhttp_uri_free(f->uri);
	free(f->pending);
	free(f->url);
	free(f->token);
	free(f);
}
