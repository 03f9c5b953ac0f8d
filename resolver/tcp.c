/* tcp.c -- the TCP side of a worker, on libevent bufferevents. */
#include "tcp.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "proxyv2.h"
#include "query.h"
#include "wire.h"

#define TCP_OUTPUT_HIGH (256 * 1024) /* stop reading a client that does not read its answers */

struct tcp_listener {
	struct worker *w;
	struct evconnlistener *l;
};

struct tcp_conn {
	struct worker *w;
	struct bufferevent *bev;
	struct sockaddr_any peer;
	struct sockaddr_any client;
	unsigned refs;            /* 1 while open, +1 per query waiting for an upstream */
	bool open;
	bool need_proxy;          /* from a PROXY peer: the header must come first */
	bool paused;              /* reading stopped for back-pressure */
	uint64_t frame_started_ms;/* when the first byte of an unfinished frame arrived, or 0 */
};

static void on_read(struct bufferevent *bev, void *arg);

void tcp_conn_hold(struct tcp_conn *c)
{
	c->refs++;
}

/* Reading stopped for back-pressure starts again once the client has room: frames that
 * arrived meanwhile sit in the input buffer, so they are processed now, not on new data. */
static void maybe_resume(struct tcp_conn *c)
{
	if (c->open && c->paused && c->refs - 1 < c->w->r->opt.tcp_max_inflight &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) < TCP_OUTPUT_HIGH) {
		c->paused = false;
		bufferevent_enable(c->bev, EV_READ);
		on_read(c->bev, c);
	}
}

void tcp_conn_release(struct tcp_conn *c)
{
	if (--c->refs == 0)
		free(c);
	else
		maybe_resume(c);
}

static void conn_close(struct tcp_conn *c)
{
	if (!c->open)
		return;
	c->open = false;
	bufferevent_free(c->bev);
	c->bev = NULL;
	c->w->tcp_connections--;
	tcp_conn_release(c);
}

void tcp_conn_send(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	uint8_t prefix[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	if (!c->open || len > 65535)
		return;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	evbuffer_add(out, prefix, 2);
	evbuffer_add(out, msg, len);
}

static bool read_proxy_header(struct tcp_conn *c, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in);
	size_t n = avail < PROXYV2_MAX_HEADER ? avail : PROXYV2_MAX_HEADER;
	struct sockaddr_storage src, dst;
	int h = proxyv2_parse(evbuffer_pullup(in, (ssize_t)n), n, &src, &dst);
	if (h == 0)
		return false; /* wait for the rest */
	if (h < 0) {
		stat_inc(&c->w->stats.proxy_refused);
		conn_close(c);
		return false;
	}
	evbuffer_drain(in, (size_t)h);
	if (src.ss_family != AF_UNSPEC) {
		c->client.ss = src;
		c->client.len = src.ss_family == AF_INET ? sizeof(struct sockaddr_in)
							 : sizeof(struct sockaddr_in6);
	}
	c->need_proxy = false;
	return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct reply_path rp = { .transport = TRANSPORT_TCP, .udp_fd = -1, .peer = c->peer,
				 .conn = c };
	uint8_t out[65535];

	if (c->need_proxy && !read_proxy_header(c, in))
		return;
	tcp_conn_hold(c); /* the connection may close while we work */
	while (c->open && !c->paused) {
		size_t avail = evbuffer_get_length(in);
		if (avail < 2)
			break;
		uint8_t prefix[2];
		evbuffer_copyout(in, prefix, 2);
		size_t len = (size_t)(prefix[0] << 8 | prefix[1]);
		if (len < WIRE_HEADER_LEN) {
			/* Not even a header: nothing sensible to answer on this stream. */
			stat_inc(&c->w->stats.tcp_closed_bad);
			conn_close(c);
			break;
		}
		if (avail < len + 2) {
			uint64_t now = server_now_ms();
			if (!c->frame_started_ms)
				c->frame_started_ms = now;
			else if (now - c->frame_started_ms > c->w->r->opt.tcp_idle_ms) {
				stat_inc(&c->w->stats.tcp_closed_idle);
				conn_close(c);
			}
			break;
		}
		c->frame_started_ms = 0;
		const uint8_t *pkt = evbuffer_pullup(in, (ssize_t)(len + 2)) + 2;
		size_t n = query_handle(c->w, &rp, &c->client, pkt, len, out, sizeof out);
		evbuffer_drain(in, len + 2);
		if (n)
			tcp_conn_send(c, out, n);
		if (c->open && (c->refs - 2 >= c->w->r->opt.tcp_max_inflight ||
				evbuffer_get_length(bufferevent_get_output(bev)) >= TCP_OUTPUT_HIGH)) {
			c->paused = true;
			bufferevent_disable(bev, EV_READ);
		}
	}
	tcp_conn_release(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	maybe_resume(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		/* Idle means no query in progress (RFC 7766 6.2.3); a slow upstream is not idle. */
		if (c->refs > 1) {
			bufferevent_enable(c->bev, EV_READ);
			return;
		}
		stat_inc(&c->w->stats.tcp_closed_idle);
	}
	conn_close(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct tcp_listener *tl = arg;
	struct worker *w = tl->w;
	(void)l;

	if (w->tcp_connections >= w->r->opt.tcp_max_connections) {
		stat_inc(&w->stats.tcp_refused);
		close(fd);
		return;
	}
	struct tcp_conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		return;
	}
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	c->w = w;
	c->refs = 1;
	c->open = true;
	memcpy(&c->peer.ss, sa, (size_t)salen);
	c->peer.len = (socklen_t)salen;
	c->client = c->peer;
	c->need_proxy = w->r->proxy_allow && proxyv2_allowed(w->r->proxy_allow, sa);
	w->tcp_connections++;
	stat_inc(&w->stats.tcp_accepted);

	struct timeval idle = { .tv_sec = w->r->opt.tcp_idle_ms / 1000,
				.tv_usec = (w->r->opt.tcp_idle_ms % 1000) * 1000 };
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, &idle, &idle);
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

struct tcp_listener *tcp_listener_new(struct worker *w, int fd)
{
	struct tcp_listener *tl = calloc(1, sizeof *tl);
	if (!tl)
		return NULL;
	tl->w = w;
	tl->l = evconnlistener_new(w->base, on_accept, tl, LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (!tl->l) {
		free(tl);
		return NULL;
	}
	return tl;
}

void tcp_listener_free(struct tcp_listener *tl)
{
	if (!tl)
		return;
	evconnlistener_free(tl->l);
	free(tl);
}
