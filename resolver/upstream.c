/* upstream.c -- UDP/TCP forwarding with RFC 5452 checks, retries and server health. */
#include "upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "log.h"

#define UDP_ANSWER_MAX 4096
#define TCP_ANSWER_MAX 65535

struct upstream_server {
	struct sockaddr_any addr;
	char name[64];
	atomic_uint failures;       /* consecutive */
	_Atomic uint64_t down_until_ms;
};

struct upstream_set {
	struct upstream_set_config cfg;
	unsigned n;
	atomic_uint next;           /* round-robin start */
	struct upstream_server servers[];
};

struct upstream_req {
	LIST_ENTRY(upstream_req) link;
	struct upstream_client *client;
	struct wire_query q;
	upstream_done_fn done;
	void *arg;
	unsigned attempt;
	int server;
	int fd;
	bool tcp;
	bool event_live;
	struct event ev;
	uint16_t id;
	uint64_t attempt_start_us;
	size_t got;                 /* TCP: bytes of the answer (with its length prefix) read */
	size_t cap;
	uint8_t *buf;
};

struct upstream_client {
	struct event_base *base;
	struct upstream_set *set;
	struct worker_stats *stats;
	LIST_HEAD(, upstream_req) pending;
};

struct upstream_set *upstream_set_new(const struct sockaddr_any *servers, unsigned n,
				      const struct upstream_set_config *cfg)
{
	struct upstream_set *set = calloc(1, sizeof *set + n * sizeof set->servers[0]);
	if (!set)
		return NULL;
	set->cfg = *cfg;
	set->n = n;
	for (unsigned i = 0; i < n; i++) {
		struct upstream_server *s = &set->servers[i];
		char host[INET6_ADDRSTRLEN] = "?";
		s->addr = servers[i];
		if (s->addr.ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)&s->addr.ss;
			inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
			snprintf(s->name, sizeof s->name, "%s:%u", host, ntohs(a->sin_port));
		} else {
			const struct sockaddr_in6 *a = (const void *)&s->addr.ss;
			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
			snprintf(s->name, sizeof s->name, "[%s]:%u", host, ntohs(a->sin6_port));
		}
	}
	return set;
}

void upstream_set_free(struct upstream_set *set)
{
	free(set);
}

unsigned upstream_set_count(const struct upstream_set *set)
{
	return set->n;
}

const char *upstream_set_name(const struct upstream_set *set, unsigned i)
{
	return set->servers[i].name;
}

const struct sockaddr_any *upstream_set_addr(const struct upstream_set *set, unsigned i)
{
	return &set->servers[i].addr;
}

int upstream_set_healthy(const struct upstream_set *set, unsigned i)
{
	return atomic_load(&((struct upstream_set *)set)->servers[i].down_until_ms) <=
	       server_now_ms();
}

/* The next server to try: round-robin over those not marked down; if all are down, the one
 * whose down period ends first gets the query (a probe), so recovery is noticed. */
static int pick_server(struct upstream_set *set, int previous)
{
	uint64_t now = server_now_ms(), soonest = UINT64_MAX;
	unsigned start = previous < 0 ? atomic_fetch_add(&set->next, 1) : (unsigned)previous + 1;
	int fallback = 0;
	for (unsigned k = 0; k < set->n; k++) {
		unsigned i = (start + k) % set->n;
		uint64_t until = atomic_load(&set->servers[i].down_until_ms);
		if (until <= now)
			return (int)i;
		if (until < soonest) {
			soonest = until;
			fallback = (int)i;
		}
	}
	return fallback;
}

static void note_success(struct upstream_set *set, int i)
{
	struct upstream_server *s = &set->servers[i];
	atomic_store(&s->failures, 0);
	atomic_store(&s->down_until_ms, 0);
}

static void note_failure(struct upstream_set *set, int i)
{
	struct upstream_server *s = &set->servers[i];
	unsigned f = atomic_fetch_add(&s->failures, 1) + 1;
	if (f >= set->cfg.down_after) {
		if (atomic_exchange(&s->down_until_ms, server_now_ms() + set->cfg.down_ms) == 0)
			log_warn("upstream_down", "server=%s failures=%u", s->name, f);
	}
}

static void close_attempt(struct upstream_req *r)
{
	if (r->event_live) {
		event_del(&r->ev);
		r->event_live = false;
	}
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
}

static void finish(struct upstream_req *r, enum upstream_status status, size_t len)
{
	struct upstream_result res = {
		.status = status,
		.msg = r->tcp ? r->buf + 2 : r->buf,
		.len = len,
		.cap = r->tcp ? r->cap - 2 : r->cap,
		.server = r->server,
		.latency_us = server_now_us() - r->attempt_start_us,
	};
	close_attempt(r);
	LIST_REMOVE(r, link);
	r->done(r->arg, &res);
	free(r->buf);
	free(r);
}

static void start_attempt(struct upstream_req *r, bool tcp);

static void attempt_failed(struct upstream_req *r, bool timeout)
{
	struct worker_stats *st = r->client->stats;
	stat_inc(timeout ? &st->upstream_timeouts : &st->upstream_errors);
	note_failure(r->client->set, r->server);
	close_attempt(r);
	if (++r->attempt >= r->client->set->cfg.attempts) {
		finish(r, UPSTREAM_FAILED, 0);
		return;
	}
	r->server = pick_server(r->client->set, r->server);
	start_attempt(r, false);
}

/* An answer is accepted only if it is for our ID and question; a mismatch is ignored (it
 * may be a spoofing attempt) and the attempt keeps waiting for the real one. */
static bool accept_answer(struct upstream_req *r, uint8_t *msg, size_t len,
			  struct upstream_result *res)
{
	if (len < WIRE_HEADER_LEN || (uint16_t)(msg[0] << 8 | msg[1]) != r->id)
		return false;
	size_t n = wire_scan_response(msg, len, &r->q, &res->info);
	if (!n)
		return false;
	res->len = n;
	return true;
}

static void deliver(struct upstream_req *r, struct upstream_result *res)
{
	note_success(r->client->set, r->server);
	res->status = UPSTREAM_OK;
	res->server = r->server;
	res->latency_us = server_now_us() - r->attempt_start_us;
	close_attempt(r);
	LIST_REMOVE(r, link);
	r->done(r->arg, res);
	free(r->buf);
	free(r);
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *r = arg;
	if (what & EV_TIMEOUT) {
		attempt_failed(r, true);
		return;
	}
	for (;;) {
		ssize_t n = recv(fd, r->buf, r->cap, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			attempt_failed(r, false); /* e.g. ECONNREFUSED: nothing listens there */
			return;
		}
		struct upstream_result res = { .msg = r->buf, .cap = r->cap };
		if (!accept_answer(r, r->buf, (size_t)n, &res)) {
			stat_inc(&r->client->stats->upstream_mismatched);
			continue;
		}
		if (res.info.flags & WIRE_FLAG_TC) {
			stat_inc(&r->client->stats->upstream_tcp_retries);
			close_attempt(r);
			start_attempt(r, true);
			return;
		}
		deliver(r, &res);
		return;
	}
}

static void on_tcp(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *r = arg;
	if (what & EV_TIMEOUT) {
		attempt_failed(r, true);
		return;
	}
	ssize_t n = recv(fd, r->buf + r->got, r->cap - r->got, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		attempt_failed(r, false);
		return;
	}
	r->got += (size_t)n;
	if (r->got < 2)
		return;
	size_t need = (size_t)(r->buf[0] << 8 | r->buf[1]) + 2;
	if (r->got < need)
		return;
	struct upstream_result res = { .msg = r->buf + 2, .cap = r->cap - 2 };
	if (!accept_answer(r, r->buf + 2, need - 2, &res)) {
		stat_inc(&r->client->stats->upstream_mismatched);
		attempt_failed(r, false);
		return;
	}
	deliver(r, &res);
}

static void on_tcp_connected(evutil_socket_t fd, short what, void *arg)
{
	struct upstream_req *r = arg;
	int err = 0;
	socklen_t elen = sizeof err;
	uint8_t query[WIRE_HEADER_LEN + WIRE_MAX_NAME + 4 + 11 + 2];

	r->event_live = false;
	if (what & EV_TIMEOUT) {
		attempt_failed(r, true);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err) {
		attempt_failed(r, false);
		return;
	}
	size_t n = wire_build_upstream_query(query + 2, sizeof query - 2, &r->q, r->id);
	query[0] = (uint8_t)(n >> 8);
	query[1] = (uint8_t)n;
	/* A fresh socket's send buffer always takes a query this small in one go. */
	if (send(fd, query, n + 2, MSG_NOSIGNAL) != (ssize_t)(n + 2)) {
		attempt_failed(r, false);
		return;
	}
	struct timeval tv = { .tv_sec = r->client->set->cfg.timeout_ms / 1000,
			      .tv_usec = (r->client->set->cfg.timeout_ms % 1000) * 1000 };
	event_assign(&r->ev, r->client->base, fd, EV_READ | EV_PERSIST, on_tcp, r);
	event_add(&r->ev, &tv);
	r->event_live = true;
}

static void start_attempt(struct upstream_req *r, bool tcp)
{
	const struct sockaddr_any *to = &r->client->set->servers[r->server].addr;
	struct timeval tv = { .tv_sec = r->client->set->cfg.timeout_ms / 1000,
			      .tv_usec = (r->client->set->cfg.timeout_ms % 1000) * 1000 };
	uint8_t query[WIRE_HEADER_LEN + WIRE_MAX_NAME + 4 + 11];

	r->tcp = tcp;
	r->got = 0;
	r->id = (uint16_t)arc4random();
	r->attempt_start_us = server_now_us();
	stat_inc(&r->client->stats->upstream_queries);
	if (tcp && r->cap < TCP_ANSWER_MAX + 2) {
		uint8_t *bigger = realloc(r->buf, TCP_ANSWER_MAX + 2);
		if (!bigger) {
			attempt_failed(r, false);
			return;
		}
		r->buf = bigger;
		r->cap = TCP_ANSWER_MAX + 2;
	}
	r->fd = socket(to->ss.ss_family, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
						 SOCK_CLOEXEC, 0);
	if (r->fd < 0) {
		log_err("upstream_socket_failed", "error=\"%s\"", strerror(errno));
		attempt_failed(r, false);
		return;
	}
	/* connect() on UDP makes the kernel pick a random ephemeral port and drop datagrams
	 * from any other source, which is half of RFC 5452 for free. */
	if (connect(r->fd, (const struct sockaddr *)&to->ss, to->len) < 0 && errno != EINPROGRESS) {
		attempt_failed(r, false);
		return;
	}
	if (tcp) {
		event_assign(&r->ev, r->client->base, r->fd, EV_WRITE, on_tcp_connected, r);
	} else {
		size_t n = wire_build_upstream_query(query, sizeof query, &r->q, r->id);
		if (!n || send(r->fd, query, n, 0) != (ssize_t)n) {
			attempt_failed(r, false);
			return;
		}
		event_assign(&r->ev, r->client->base, r->fd, EV_READ | EV_PERSIST, on_udp, r);
	}
	event_add(&r->ev, &tv);
	r->event_live = true;
}

struct upstream_client *upstream_client_new(struct event_base *base, struct upstream_set *set,
					    struct worker_stats *stats)
{
	struct upstream_client *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->base = base;
	c->set = set;
	c->stats = stats;
	LIST_INIT(&c->pending);
	return c;
}

void upstream_client_free(struct upstream_client *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->pending))
		finish(LIST_FIRST(&c->pending), UPSTREAM_CANCELLED, 0);
	free(c);
}

int upstream_resolve(struct upstream_client *c, const struct wire_query *q,
		     upstream_done_fn done, void *arg)
{
	if (c->set->n == 0)
		return -ENOENT;
	struct upstream_req *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->buf = malloc(UDP_ANSWER_MAX);
	if (!r->buf) {
		free(r);
		return -ENOMEM;
	}
	r->cap = UDP_ANSWER_MAX;
	r->client = c;
	r->q = *q;
	r->done = done;
	r->arg = arg;
	r->fd = -1;
	r->server = pick_server(c->set, -1);
	LIST_INSERT_HEAD(&c->pending, r, link);
	start_attempt(r, false);
	return 0;
}
