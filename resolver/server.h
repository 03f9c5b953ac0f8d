/* server.h -- the running node: what all workers share, and each worker's own state.
 *
 * struct resolver is built once at start-up by main.c and shared read-only by the worker
 * threads, except for the parts that carry their own synchronisation (the snapshot holder,
 * the cache, the rate limiter, upstream health, the query-log rings). struct worker is
 * touched only by its own thread, except for its stats, which metrics read.
 */
#ifndef AEGIS_SERVER_H
#define AEGIS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "privacy.h"
#include "snaphold.h"
#include "stats.h"

struct event_base;
struct event;
struct cache;
struct ratelimit;
struct proxyv2_allow;
struct querylog;
struct querylog_queue;
struct upstream_set;
struct upstream_client;
struct tcp_listener;
struct tenantstats;
struct worker;

#define SERVER_MAX_LISTEN 16

struct sockaddr_any {
	struct sockaddr_storage ss;
	socklen_t len;
};

enum transport { TRANSPORT_UDP = STAT_UDP, TRANSPORT_TCP = STAT_TCP };

struct tcp_conn;

/* Where an answer goes: a UDP socket and peer, or a TCP connection (held while a query on
 * it is in progress, so a connection closed meanwhile is never written to after free). */
struct reply_path {
	enum transport transport;
	int udp_fd;
	struct sockaddr_any peer;   /* the socket peer: the client, or its PROXY forwarder */
	struct tcp_conn *conn;
};

/* Sends an answer computed after the read callback returned (upstream answers). */
void reply_send(struct worker *w, const struct reply_path *rp, const uint8_t *msg, size_t len);

struct resolver_options {
	char node[64];
	struct sockaddr_any listen[SERVER_MAX_LISTEN];
	unsigned nlisten;
	unsigned workers;
	unsigned tcp_idle_ms;
	unsigned tcp_max_connections;   /* per worker */
	unsigned tcp_max_inflight;      /* queries in progress per connection */
	int unknown_client_rcode;       /* REFUSED by default; -1 drops (not advised, RFC 8906) */
	uint32_t block_ttl;             /* TTL of block answers and their SOA */
	const uint8_t *const *special_forward; /* special zones forwarded anyway (wire, NULL-ended) */
};

struct resolver {
	struct resolver_options opt;
	struct snaphold *policy;
	struct cache *cache;
	struct ratelimit *ratelimit;
	struct proxyv2_allow *proxy_allow;  /* NULL: nobody may send PROXY headers */
	struct querylog *querylog;          /* NULL: no query log */
	struct privacy_secret privacy_secret;  /* keys the client pseudonyms of the query log */
	struct upstream_set *upstreams;
	struct worker **workers;
	unsigned nworkers;
};

struct worker {
	unsigned index;
	struct resolver *r;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct snapview view;
	int udp_fds[SERVER_MAX_LISTEN];
	struct event *udp_events[SERVER_MAX_LISTEN];
	struct tcp_listener *tcp[SERVER_MAX_LISTEN];
	unsigned tcp_connections;
	struct event *housekeeping;
	struct upstream_client *upstream;
	struct querylog_queue *log_queue;
	struct privacy_day *privacy;
	struct tenantstats *tenants;
	struct worker_stats stats;
};

/* Binds every listen address for every worker (SO_REUSEPORT), so a bind failure stops
 * start-up before any thread runs. */
int workers_create(struct resolver *r) __attribute__((warn_unused_result));
int workers_start(struct resolver *r) __attribute__((warn_unused_result));
/* Asks every worker loop to stop, joins them and frees them. */
void workers_stop(struct resolver *r);

/* Milliseconds and microseconds of CLOCK_MONOTONIC, and wall-clock microseconds (UTC). */
uint64_t server_now_ms(void);
uint64_t server_now_us(void);
uint64_t server_wall_us(void);

#endif
