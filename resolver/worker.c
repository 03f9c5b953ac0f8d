/* worker.c -- worker threads: one libevent loop each, with its own SO_REUSEPORT sockets. */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxyv2.h"
#include "query.h"
#include "querylog.h"
#include "server.h"
#include "tcp.h"
#include "tenantstats.h"
#include "upstream.h"

#define UDP_BATCH 32
#define UDP_BUF   4096   /* larger datagrams are not DNS queries we answer */

const uint32_t stats_latency_bounds[STAT_LATENCY_BUCKETS] = {
	250, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 250000, 500000, 1000000,
};

/* Buffers for one recvmmsg/sendmmsg round, per worker (too big for a thread's stack). */
struct udp_batch {
	struct mmsghdr in[UDP_BATCH], out[UDP_BATCH];
	struct iovec in_iov[UDP_BATCH], out_iov[UDP_BATCH];
	struct sockaddr_storage peers[UDP_BATCH];
	uint8_t in_buf[UDP_BATCH][UDP_BUF];
	uint8_t out_buf[UDP_BATCH][UDP_BUF];
};

struct udp_socket {
	struct worker *w;
	int fd;
	struct udp_batch *batch;
};

uint64_t server_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t server_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t server_wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void reply_send(struct worker *w, const struct reply_path *rp, const uint8_t *msg, size_t len)
{
	if (rp->transport == TRANSPORT_TCP) {
		tcp_conn_send(rp->conn, msg, len);
		return;
	}
	if (sendto(rp->udp_fd, msg, len, 0, (const struct sockaddr *)&rp->peer.ss, rp->peer.len) <
	    0)
		stat_inc(&w->stats.dropped);
}

/* A datagram from a PROXY peer must start with the header; the address inside replaces the
 * peer's as the client. Returns the header length, or -1 to drop the datagram. */
static int strip_proxy(struct worker *w, const struct sockaddr_any *peer, const uint8_t *buf,
		       size_t len, struct sockaddr_any *client)
{
	*client = *peer;
	if (!w->r->proxy_allow || !proxyv2_allowed(w->r->proxy_allow, (const void *)&peer->ss))
		return 0;
	struct sockaddr_storage src, dst;
	int h = proxyv2_parse(buf, len, &src, &dst);
	if (h <= 0) {
		stat_inc(&w->stats.proxy_refused);
		return -1;
	}
	if (src.ss_family != AF_UNSPEC) {
		client->ss = src;
		client->len = src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
						       : sizeof(struct sockaddr_in6);
	}
	return h;
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct udp_socket *u = arg;
	struct worker *w = u->w;
	struct udp_batch *b = u->batch;
	(void)what;

	for (int i = 0; i < UDP_BATCH; i++) {
		b->in_iov[i] = (struct iovec){ b->in_buf[i], UDP_BUF };
		b->in[i].msg_hdr = (struct msghdr){ .msg_name = &b->peers[i],
						    .msg_namelen = sizeof b->peers[i],
						    .msg_iov = &b->in_iov[i], .msg_iovlen = 1 };
	}
	int n = recvmmsg(fd, b->in, UDP_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;

	/* Two clock reads per datagram were 1.5% of a worker's time at 300k queries/s; the
	 * datagrams of one batch were all waiting in the socket by now anyway. */
	struct query_clock clock;
	query_clock_read(&clock);
	unsigned nout = 0;
	for (int i = 0; i < n; i++) {
		struct reply_path rp = { .transport = TRANSPORT_UDP, .udp_fd = fd };
		struct sockaddr_any client;
		memcpy(&rp.peer.ss, &b->peers[i], b->in[i].msg_hdr.msg_namelen);
		rp.peer.len = b->in[i].msg_hdr.msg_namelen;
		size_t len = b->in[i].msg_len;
		int h = strip_proxy(w, &rp.peer, b->in_buf[i], len, &client);
		if (h < 0)
			continue;
		size_t alen = query_handle_at(w, &rp, &client, b->in_buf[i] + h, len - (size_t)h,
					      b->out_buf[nout], UDP_BUF, &clock);
		if (!alen)
			continue;
		b->out_iov[nout] = (struct iovec){ b->out_buf[nout], alen };
		b->out[nout].msg_hdr = (struct msghdr){ .msg_name = &b->peers[i],
							.msg_namelen = rp.peer.len,
							.msg_iov = &b->out_iov[nout],
							.msg_iovlen = 1 };
		nout++;
	}
	for (unsigned sent = 0; sent < nout;) {
		int k = sendmmsg(fd, b->out + sent, nout - sent, MSG_DONTWAIT);
		if (k <= 0) {
			stat_add(&w->stats.dropped, nout - sent);
			break;
		}
		sent += (unsigned)k;
	}
}

/* An idle worker would hold an old snapshot forever; this lets it go within a second. */
static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	snapview_get(w->r->policy, &w->view);
}

static int bind_socket(const struct sockaddr_any *a, int type)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
	    (a->ss.ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
	    bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void worker_free(struct worker *w)
{
	if (!w)
		return;
	upstream_client_free(w->upstream);
	for (unsigned i = 0; i < w->r->opt.nlisten; i++) {
		if (w->udp_events[i]) {
			struct udp_socket *u = event_get_callback_arg(w->udp_events[i]);
			event_free(w->udp_events[i]);
			free(u->batch);
			free(u);
		}
		if (w->udp_fds[i] >= 0)
			close(w->udp_fds[i]);
		tcp_listener_free(w->tcp[i]);
	}
	if (w->housekeeping)
		event_free(w->housekeeping);
	tenantstats_free(w->tenants);
	privacy_day_free(w->privacy);
	snapview_release(w->r->policy, &w->view);
	if (w->base)
		event_base_free(w->base);
	free(w);
}

static struct worker *worker_new(struct resolver *r, unsigned index)
{
	struct worker *w = calloc(1, sizeof *w);
	if (!w)
		return NULL;
	w->index = index;
	w->r = r;
	for (unsigned i = 0; i < SERVER_MAX_LISTEN; i++)
		w->udp_fds[i] = -1;
	w->base = event_base_new();
	if (!w->base)
		goto fail;
	w->upstream = upstream_client_new(w->base, r->upstreams, &w->stats);
	w->tenants = tenantstats_new();
	w->privacy = privacy_day_new(&r->privacy_secret);
	if (!w->upstream || !w->tenants || !w->privacy)
		goto fail;
	if (r->querylog)
		w->log_queue = querylog_queue(r->querylog, index);
	for (unsigned i = 0; i < r->opt.nlisten; i++) {
		const struct sockaddr_any *a = &r->opt.listen[i];
		int fd = bind_socket(a, SOCK_DGRAM);
		if (fd < 0) {
			log_err("listen_failed", "proto=udp error=\"%s\"", strerror(-fd));
			goto fail;
		}
		w->udp_fds[i] = fd;
		struct udp_socket *u = calloc(1, sizeof *u);
		if (!u || !(u->batch = malloc(sizeof *u->batch))) {
			free(u);
			goto fail;
		}
		u->w = w;
		u->fd = fd;
		w->udp_events[i] = event_new(w->base, fd, EV_READ | EV_PERSIST, on_udp, u);
		if (!w->udp_events[i] || event_add(w->udp_events[i], NULL) < 0) {
			free(u->batch);
			free(u);
			goto fail;
		}
		int tfd = bind_socket(a, SOCK_STREAM);
		if (tfd < 0) {
			log_err("listen_failed", "proto=tcp error=\"%s\"", strerror(-tfd));
			goto fail;
		}
		w->tcp[i] = tcp_listener_new(w, tfd);
		if (!w->tcp[i]) {
			close(tfd);
			goto fail;
		}
	}
	struct timeval second = { 1, 0 };
	w->housekeeping = event_new(w->base, -1, EV_PERSIST, on_housekeeping, w);
	if (!w->housekeeping || event_add(w->housekeeping, &second) < 0)
		goto fail;
	return w;
fail:
	worker_free(w);
	return NULL;
}

int workers_create(struct resolver *r)
{
	r->workers = calloc(r->opt.workers, sizeof *r->workers);
	if (!r->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < r->opt.workers; i++) {
		r->workers[i] = worker_new(r, i);
		if (!r->workers[i]) {
			workers_stop(r);
			return -EADDRINUSE;
		}
		r->nworkers++;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	event_base_dispatch(w->base);
	return NULL;
}

int workers_start(struct resolver *r)
{
	for (unsigned i = 0; i < r->nworkers; i++) {
		int e = pthread_create(&r->workers[i]->thread, NULL, worker_main, r->workers[i]);
		if (e) {
			log_err("worker_start_failed", "error=\"%s\"", strerror(e));
			return -e;
		}
		r->workers[i]->started = true;
	}
	return 0;
}

void workers_stop(struct resolver *r)
{
	for (unsigned i = 0; i < r->nworkers; i++)
		if (r->workers[i]->started)
			event_base_loopbreak(r->workers[i]->base);
	for (unsigned i = 0; i < r->nworkers; i++) {
		if (r->workers[i]->started)
			pthread_join(r->workers[i]->thread, NULL);
		worker_free(r->workers[i]);
	}
	free(r->workers);
	r->workers = NULL;
	r->nworkers = 0;
}
