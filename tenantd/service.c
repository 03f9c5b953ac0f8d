/* service.c -- LISTEN/NOTIFY driven compiles under a leader lock. */
#include "service.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "distribute.h"
#include "log.h"
#include "pg.h"
#include "publish.h"

/* Session advisory lock held by the one tenantd that compiles (and later ingests feeds). */
#define LEADER_LOCK_KEY "7243598814260002"
#define FOLLOWER_RETRY_MS 2000
#define RECONNECT_MAX_MS 10000

struct service {
	struct service_config cfg;
	struct event_base *base;
	PGconn *conn;
	struct event *readable;
	struct event *compile_timer;
	struct event *retry_timer;
	unsigned backoff_ms;
	bool leader;
	bool compile_pending;
	struct feed_base *feeds;    /* the compiled feed names between compiles */
};

static void schedule_retry(struct service *s, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	event_add(s->retry_timer, &tv);
}

static void disconnect(struct service *s)
{
	if (s->readable) {
		event_free(s->readable);
		s->readable = NULL;
	}
	if (s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
	if (s->leader)
		log_warn("leadership_lost");
	s->leader = false;
}

static void want_compile(struct service *s);

static int serve(struct service *s, const struct published *p)
{
	return distribute_publish(s->cfg.distribute, p->version, p->path, p->base_version,
				  p->has_base ? p->base_path : NULL,
				  p->has_base ? p->base_sha256 : NULL);
}

static void compile_now(struct service *s)
{
	char err[512] = "";
	struct published p;
	struct compile_stats stats;

	s->compile_pending = false;
	if (publish_compile(s->conn, s->cfg.snapshot_dir, s->cfg.instance, s->feeds, &p, &stats,
			    err, sizeof err) < 0) {
		distribute_set_compile_error(s->cfg.distribute, err);
		if (PQstatus(s->conn) != CONNECTION_OK) {
			disconnect(s);
			schedule_retry(s, s->backoff_ms);
		}
		return;
	}
	distribute_set_compile_error(s->cfg.distribute, NULL);
	if (serve(s, &p) < 0)
		log_err("snapshot_not_served", "version=%llu path=%s",
			(unsigned long long)p.version, p.path);
	/* Nodes first, the other instances after: they may serve this version a few hundred
	 * milliseconds later (the time to store the image), never a change's path to a node. */
	if (publish_store(s->conn, &p) < 0 && PQstatus(s->conn) != CONNECTION_OK) {
		disconnect(s);
		schedule_retry(s, s->backoff_ms);
		return;
	}
	/* Changes committed while compiling were read off the socket by libpq meanwhile: the
	 * socket will not wake us for them, so look now. */
	PGnotify *n;
	bool more = false;
	while ((n = PQnotifies(s->conn)) != NULL) {
		more |= strcmp(n->relname, "aegis_policy_changed") == 0;
		PQfreemem(n);
	}
	if (more)
		want_compile(s);
}

static void on_compile_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct service *s = arg;
	if (s->conn && s->leader)
		compile_now(s);
}

/* The first notification of a burst starts the timer; later ones ride along with it. */
static void want_compile(struct service *s)
{
	if (s->compile_pending)
		return;
	s->compile_pending = true;
	struct timeval tv = { s->cfg.debounce_ms / 1000, (s->cfg.debounce_ms % 1000) * 1000 };
	event_add(s->compile_timer, &tv);
}

/* A follower serves what the leader published, so nodes may ask any instance. */
static void follow(struct service *s)
{
	struct published p;
	uint8_t have[32];
	bool has = distribute_base_checksum(s->cfg.distribute, have);
	if (publish_fetch_latest(s->conn, s->cfg.snapshot_dir, distribute_version(s->cfg.distribute),
				 has ? have : NULL, &p) == 1 &&
	    serve(s, &p) < 0)
		log_err("snapshot_not_served", "version=%llu", (unsigned long long)p.version);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	(void)fd;
	(void)what;
	if (!PQconsumeInput(s->conn)) {
		log_warn("database_connection_lost");
		disconnect(s);
		schedule_retry(s, 100);
		return;
	}
	PGnotify *n;
	bool changed = false, published = false;
	while ((n = PQnotifies(s->conn)) != NULL) {
		if (strcmp(n->relname, "aegis_policy_changed") == 0) {
			log_debug("policy_changed", "table=%s", n->extra);
			changed = true;
		} else {
			published = true;
		}
		PQfreemem(n);
	}
	if (changed && s->leader)
		want_compile(s);
	if (published && !s->leader)
		follow(s);
}

static bool try_lead(struct service *s)
{
	auto_pqclear PGresult *res = pg_query(s->conn, "SELECT pg_try_advisory_lock("
						       LEADER_LOCK_KEY ")");
	return res && PQgetvalue(res, 0, 0)[0] == 't';
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct service *s = arg;
	(void)fd;
	(void)what;
	if (!s->conn) {
		s->conn = pg_connect(s->cfg.dsn);
		if (!s->conn || pg_command(s->conn, "LISTEN aegis_policy_changed") < 0 ||
		    pg_command(s->conn, "LISTEN aegis_snapshot_published") < 0) {
			disconnect(s);
			s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : 500;
			if (s->backoff_ms > RECONNECT_MAX_MS)
				s->backoff_ms = RECONNECT_MAX_MS;
			schedule_retry(s, s->backoff_ms);
			return;
		}
		s->backoff_ms = 0;
		s->readable = event_new(s->base, PQsocket(s->conn), EV_READ | EV_PERSIST,
					on_readable, s);
		event_add(s->readable, NULL);
	}
	if (!try_lead(s)) {
		if (PQstatus(s->conn) != CONNECTION_OK)
			disconnect(s);
		else
			follow(s);
		schedule_retry(s, FOLLOWER_RETRY_MS);
		return;
	}
	s->leader = true;
	log_info("leading", "instance=%s", s->cfg.instance);
	compile_now(s);
}

struct service *service_start(struct event_base *base, const struct service_config *cfg)
{
	struct service *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->base = base;
	s->compile_timer = evtimer_new(base, on_compile_timer, s);
	s->retry_timer = evtimer_new(base, on_retry, s);
	s->feeds = feed_base_new();
	if (!s->compile_timer || !s->retry_timer || !s->feeds) {
		service_stop(s);
		return NULL;
	}
	schedule_retry(s, 0);
	return s;
}

void service_stop(struct service *s)
{
	if (!s)
		return;
	disconnect(s);
	if (s->compile_timer)
		event_free(s->compile_timer);
	if (s->retry_timer)
		event_free(s->retry_timer);
	feed_base_free(s->feeds);
	free(s);
}
