/* query.c -- the per-query pipeline of aegis-resolver. */
#include "query.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "policy.h"
#include "privacy.h"
#include "qlog.h"
#include "querylog.h"
#include "ratelimit.h"
#include "safesearch.h"
#include "special.h"
#include "tcp.h"
#include "tenantstats.h"
#include "upstream.h"
#include "wire.h"

#define EDE_OTHER          0
#define EDE_STALE_ANSWER   3
#define EDE_NOT_READY      14
#define EDE_PROHIBITED     18
#define EDE_NO_REACHABLE   22

/* What one query carries from its start to its log event. */
struct query_state {
	struct worker *w;
	struct reply_path rp;
	struct sockaddr_any client;
	const uint8_t *pkt;            /* the query as the client sent it */
	struct wire_query q;
	struct wire_query lookup;      /* what is looked up: q, or its safe-search rewrite */
	const uint8_t *safe_target;    /* the safe-search name q was rewritten to, or NULL */
	uint8_t safe_target_len;
	const struct snapshot *snap;   /* NULL once the query outlives the read callback */
	uint64_t snap_serial;
	int tenant;
	uint8_t tenant_id[16];
	uint8_t privacy, trunc_v4, trunc_v6;   /* the tenant's log privacy, kept past the snapshot */
	struct policy_decision decision;
	char category[64];             /* the decision's category name, kept past the snapshot */
	enum stat_action action;
	uint16_t rcode;
	uint16_t ede;
	bool cache_hit;
	int upstream;
	uint64_t upstream_latency_us;
	uint64_t start_us;
};

/* A query waiting for an upstream: its state plus the client's packet, for the answer's
 * question spelling. */
struct pending {
	struct query_state st;
	uint8_t pkt[];
};

static uint8_t cache_flags(const struct wire_query *q)
{
	return (uint8_t)((q->do_bit ? CACHE_FLAG_DO : 0) |
			 ((q->flags & WIRE_FLAG_CD) ? CACHE_FLAG_CD : 0));
}

#define SAFESEARCH_CNAME_TTL 300

/* Turns a stored or upstream answer to st->lookup, already in out (len bytes), into the
 * client's answer: the safe-search CNAME in front if the name was rewritten, then the
 * client's ID, flags, spelling and OPT. Returns the length, 0 on failure. */
static size_t dress(struct query_state *st, const uint8_t *pkt, uint8_t *out, size_t cap,
		    size_t len, const struct wire_ede *ede)
{
	if (st->safe_target) {
		uint8_t *target_msg = malloc(len);
		if (!target_msg)
			return 0;
		memcpy(target_msg, out, len);
		len = safesearch_answer(&st->q, pkt, st->safe_target, st->safe_target_len,
					target_msg, len, SAFESEARCH_CNAME_TTL, out, cap);
		free(target_msg);
		if (!len)
			return 0;
	}
	return wire_dress_answer(out, len, cap, &st->q, pkt, ede);
}

static void cache_key_of(const struct wire_query *q, struct cache_key *k)
{
	k->name = q->qname;
	k->name_len = q->qname_len;
	k->qtype = q->qtype;
	k->qclass = q->qclass;
	k->flags = cache_flags(q);
}

/* An answer too large for the client's UDP buffer becomes an empty TC=1 answer, so the
 * client retries over TCP (RFC 7766); never a partial record set. */
static size_t fit_transport(struct query_state *st, const uint8_t *pkt, uint8_t *out,
			    size_t cap, size_t len)
{
	if (st->rp.transport != TRANSPORT_UDP || len <= wire_udp_limit(&st->q))
		return len;
	stat_inc(&st->w->stats.truncated);
	return wire_answer_minimal(out, cap, &st->q, pkt, st->rcode, true, NULL);
}

static const uint8_t qlog_actions[STAT_ACTIONS] = {
	[STAT_ALLOW] = QLOG_ACTION_ALLOW,     [STAT_BLOCK] = QLOG_ACTION_BLOCK,
	[STAT_MONITOR] = QLOG_ACTION_MONITOR, [STAT_REFUSED] = QLOG_ACTION_REFUSED,
	[STAT_RATELIMITED] = QLOG_ACTION_RATELIMITED, [STAT_LOCAL] = QLOG_ACTION_LOCAL,
	[STAT_ERROR] = QLOG_ACTION_ERROR,
};

static const uint8_t qlog_rules[] = {
	[POLICY_RULE_NONE] = QLOG_RULE_NONE,
	[POLICY_RULE_NATIONAL_BLOCK] = QLOG_RULE_NATIONAL_BLOCK,
	[POLICY_RULE_TENANT_ALLOW] = QLOG_RULE_TENANT_ALLOW,
	[POLICY_RULE_TENANT_DENY] = QLOG_RULE_TENANT_DENY,
	[POLICY_RULE_NATIONAL_ALLOW] = QLOG_RULE_NATIONAL_ALLOW,
	[POLICY_RULE_CATEGORY] = QLOG_RULE_CATEGORY,
};

/* The query-log event: filled here on the worker, straight into its queue's slot (a copy of
 * a whole record per query cost more than filling it), encoded on the log thread. */
static void log_event(const struct query_state *st, bool answered)
{
	const struct resolver *r = st->w->r;
	struct qlog_record *rec = querylog_claim(st->w->log_queue);

	if (!rec)
		return;
	rec->ts_us = (int64_t)st->start_us;
	rec->snapshot = st->snap_serial;
	qlog_new_event_id(rec->event_id, st->start_us / 1000);
	/* opt.node is NUL-padded: a plain copy, no printf on the hot path. */
	static_assert(sizeof rec->node > sizeof r->opt.node, "node names fit a record");
	memcpy(rec->node, r->opt.node, sizeof r->opt.node);
	if (qlog_addr_from_sockaddr(&rec->client, &rec->client_port,
				    (const struct sockaddr *)&st->client.ss) < 0)
		return;
	rec->transport = st->rp.transport == TRANSPORT_TCP ? QLOG_TRANSPORT_TCP
							    : QLOG_TRANSPORT_UDP;
	rec->action = qlog_actions[st->action];
	rec->cache_hit = st->cache_hit;
	if (st->tenant >= 0) {
		rec->has_tenant = true;
		memcpy(rec->tenant_id, st->tenant_id, sizeof rec->tenant_id);
		privacy_apply(st->w->privacy, st->privacy, st->trunc_v4, st->trunc_v6, rec);
	}
	if (st->q.has_question) {
		rec->qname_len = st->q.qname_len;
		memcpy(rec->qname, st->pkt + WIRE_HEADER_LEN, st->q.qname_len);
		rec->qtype = st->q.qtype;
	}
	if (answered) {
		rec->has_rcode = true;
		rec->rcode = st->rcode;
	}
	if (st->ede) {
		rec->has_ede = true;
		rec->ede = st->ede;
	}
	if (st->upstream >= 0) {
		const struct sockaddr_any *u = upstream_set_addr(r->upstreams, (unsigned)st->upstream);
		if (qlog_addr_from_sockaddr(&rec->upstream, &rec->upstream_port,
					    (const struct sockaddr *)&u->ss) == 0 &&
		    st->upstream_latency_us <= INT32_MAX) {
			rec->has_latency = true;
			rec->upstream_latency_us = (uint32_t)st->upstream_latency_us;
		}
	}
	const struct policy_decision *d = &st->decision;
	if (d->rule != POLICY_RULE_NONE && d->matched_at < st->q.qname_len) {
		struct qlog_rule *rule = &rec->rule;
		memset(rule, 0, offsetof(struct qlog_rule, matched));
		rule->kind = qlog_rules[d->rule];
		rule->matched_len = (uint8_t)(st->q.qname_len - d->matched_at);
		memcpy(rule->matched, st->q.qname + d->matched_at, rule->matched_len);
		if (d->rule == POLICY_RULE_CATEGORY) {
			rule->mode = d->action == POLICY_MONITOR ? QLOG_MODE_MONITOR
								 : QLOG_MODE_BLOCK;
			static_assert(sizeof rule->category == sizeof st->category,
				      "a category name fits a record");
			memcpy(rule->category, st->category, sizeof rule->category);
		}
	}
	querylog_publish(st->w->log_queue);
}

static void finish_answered(struct query_state *st, bool answered)
{
	struct worker_stats *s = &st->w->stats;
	stat_inc(&s->actions[st->action]);
	if (answered)
		stat_inc(&s->rcodes[st->rcode < STAT_RCODES ? st->rcode : STAT_RCODES]);
	if (st->tenant >= 0)
		tenantstats_count(st->w->tenants, st->tenant_id, st->action == STAT_BLOCK,
				  st->action == STAT_MONITOR);
	if (st->w->log_queue)
		log_event(st, answered);
}

static void finish(struct query_state *st)
{
	finish_answered(st, true);
}

static size_t answer_minimal(struct query_state *st, const uint8_t *pkt, uint8_t *out,
			     size_t cap, uint16_t rcode, uint16_t ede, const char *text,
			     enum stat_action action)
{
	struct wire_ede e = { ede, text };
	st->rcode = rcode;
	st->ede = text ? ede : 0;
	st->action = action;
	size_t n = wire_answer_minimal(out, cap, &st->q, pkt, rcode, false, text ? &e : NULL);
	finish(st);
	return n;
}

/* Appends len bytes of s to the NUL-terminated string of at bytes in buf, as far as cap
 * allows; returns the new length. snprintf costs a microsecond on the hot path. */
static size_t append(char *buf, size_t cap, size_t at, const char *s, size_t len)
{
	if (len > cap - 1 - at)
		len = cap - 1 - at;
	memcpy(buf + at, s, len);
	buf[at + len] = '\0';
	return at + len;
}

/* "malware: contact it@school.example" -- what was matched, then the tenant's words. */
static void block_text(const struct query_state *st, const struct snapshot_tenant *t,
		       char *buf, size_t cap)
{
	const char *what;
	switch (st->decision.rule) {
	case POLICY_RULE_NATIONAL_BLOCK:
		what = "national block list";
		break;
	case POLICY_RULE_TENANT_DENY:
		what = "institution deny list";
		break;
	default:
		what = st->category[0] ? st->category : "blocked";
		break;
	}
	size_t contact_len;
	const char *contact = snapshot_tenant_ede_text(st->snap, t, &contact_len);
	size_t n = append(buf, cap, 0, what, strlen(what));
	if (contact_len)
		append(buf, cap, append(buf, cap, n, ": ", 2), contact, contact_len);
}

/* The tenant's block answer (NXDOMAIN by default, with an SOA so stubs cache the block per
 * RFC 2308; NODATA; REFUSED; or the sinkhole address), always with its EDE. */
static size_t answer_block(struct query_state *st, const struct snapshot_tenant *t,
			   const uint8_t *pkt, uint8_t *out, size_t cap)
{
	char text[300];
	struct wire_writer w = { .buf = out, .cap = cap };
	uint8_t zone_len = (uint8_t)(st->q.qname_len - st->decision.matched_at);
	uint32_t ttl = st->w->r->opt.block_ttl;
	uint16_t rcode = WIRE_RCODE_NOERROR;

	block_text(st, t, text, sizeof text);
	switch (t->block_action) {
	case SNAPSHOT_ACTION_REFUSED:
		rcode = WIRE_RCODE_REFUSED;
		wire_answer_begin(&w, &st->q, pkt, (uint8_t)rcode);
		break;
	case SNAPSHOT_ACTION_SINKHOLE:
		wire_answer_begin(&w, &st->q, pkt, WIRE_RCODE_NOERROR);
		if (st->q.qtype == WIRE_TYPE_A && (t->flags & SNAPSHOT_TENANT_SINKHOLE_V4))
			wire_answer_add_rr(&w, WIRE_ANCOUNT, WIRE_TYPE_A, ttl, t->sinkhole_v4, 4);
		else if (st->q.qtype == WIRE_TYPE_AAAA && (t->flags & SNAPSHOT_TENANT_SINKHOLE_V6))
			wire_answer_add_rr(&w, WIRE_ANCOUNT, WIRE_TYPE_AAAA, ttl, t->sinkhole_v6,
					   16);
		else
			wire_answer_add_block_soa(&w, &st->q, zone_len, ttl);
		break;
	case SNAPSHOT_ACTION_NODATA:
		wire_answer_begin(&w, &st->q, pkt, WIRE_RCODE_NOERROR);
		wire_answer_add_block_soa(&w, &st->q, zone_len, ttl);
		break;
	default:
		rcode = WIRE_RCODE_NXDOMAIN;
		wire_answer_begin(&w, &st->q, pkt, (uint8_t)rcode);
		wire_answer_add_block_soa(&w, &st->q, zone_len, ttl);
		break;
	}
	struct wire_ede ede = { st->decision.ede, text };
	wire_answer_end(&w, &st->q, rcode, &ede);
	st->rcode = rcode;
	st->ede = st->decision.ede;
	st->action = STAT_BLOCK;
	size_t n = w.overflow ? 0 : fit_transport(st, pkt, out, cap, w.len);
	finish(st);
	return n;
}

/* Answers from the cache; fresh only, unless every upstream has failed. */
static size_t answer_from_cache(struct query_state *st, const uint8_t *pkt, uint8_t *out,
				size_t cap, enum cache_want want)
{
	struct cache_key key;
	bool stale = false;
	cache_key_of(&st->lookup, &key);
	uint16_t n = cache_lookup(st->w->r->cache, &key, server_now_ms(), want, out,
				  (uint16_t)(cap > 65535 ? 65535 : cap), &stale);
	if (!n)
		return 0;
	struct wire_ede ede = { EDE_STALE_ANSWER, NULL };
	size_t len = dress(st, pkt, out, cap, n, stale ? &ede : NULL);
	if (!len)
		return 0;
	st->cache_hit = true;
	st->rcode = out[3] & 0xF;
	st->ede = stale ? EDE_STALE_ANSWER : 0;
	if (stale)
		stat_inc(&st->w->stats.stale_served);
	if (st->action != STAT_MONITOR)
		st->action = STAT_ALLOW;
	return fit_transport(st, pkt, out, cap, len);
}

static void on_upstream(void *arg, struct upstream_result *res)
{
	struct pending *p = arg;
	struct query_state *st = &p->st;
	uint8_t buf[65535 + 64];
	size_t len = 0;

	if (res->status == UPSTREAM_CANCELLED)
		goto out;
	st->upstream = res->server;
	st->upstream_latency_us = res->latency_us;
	if (res->status == UPSTREAM_OK)
		stat_latency(&st->w->stats, res->latency_us);

	bool usable = res->status == UPSTREAM_OK && (res->info.rcode == WIRE_RCODE_NOERROR ||
						     res->info.rcode == WIRE_RCODE_NXDOMAIN);
	if (usable) {
		struct cache_key key;
		cache_key_of(&st->lookup, &key);
		if (res->len <= 65535)
			(void)cache_insert(st->w->r->cache, &key, res->msg, (uint16_t)res->len,
					   res->info.ttl_offsets, res->info.n_ttl, res->info.ttl,
					   res->info.negative, server_now_ms());
		memcpy(buf, res->msg, res->len);
		len = dress(st, p->pkt, buf, sizeof buf, res->len, NULL);
		st->rcode = res->info.rcode;
		if (st->action != STAT_MONITOR)
			st->action = STAT_ALLOW;
		len = len ? fit_transport(st, p->pkt, buf, sizeof buf, len) : 0;
	}
	if (!len) {
		/* RFC 8767: the policy already allowed this name, so a stale answer may serve. */
		len = answer_from_cache(st, p->pkt, buf, sizeof buf, CACHE_STALE_OK);
		if (!len) {
			st->rcode = WIRE_RCODE_SERVFAIL;
			st->ede = EDE_NO_REACHABLE;
			st->action = STAT_ERROR;
			stat_inc(&st->w->stats.servfail_sent);
			struct wire_ede ede = { EDE_NO_REACHABLE,
						res->status == UPSTREAM_OK ? "upstream could not resolve"
									   : "no upstream answered" };
			len = wire_answer_minimal(buf, sizeof buf, &st->q, p->pkt,
						  WIRE_RCODE_SERVFAIL, false, &ede);
		}
	}
	if (len)
		reply_send(st->w, &st->rp, buf, len);
	finish(st);
out:
	if (st->rp.conn)
		tcp_conn_release(st->rp.conn);
	free(p);
}

static size_t forward(struct query_state *st, const uint8_t *pkt, size_t len, uint8_t *out,
		      size_t cap)
{
	stat_inc(&st->w->stats.cache_misses);
	struct pending *p = malloc(sizeof *p + len);
	if (!p)
		return answer_minimal(st, pkt, out, cap, WIRE_RCODE_SERVFAIL, EDE_OTHER,
				      "out of memory", STAT_ERROR);
	p->st = *st;
	p->st.snap = NULL; /* the snapshot may be swapped before the answer comes */
	memcpy(p->pkt, pkt, len);
	p->st.pkt = p->pkt;
	if (p->st.rp.conn)
		tcp_conn_hold(p->st.rp.conn);
	if (upstream_resolve(st->w->upstream, &st->lookup, on_upstream, p) < 0) {
		if (p->st.rp.conn)
			tcp_conn_release(p->st.rp.conn);
		free(p);
		return answer_minimal(st, pkt, out, cap, WIRE_RCODE_SERVFAIL, EDE_NO_REACHABLE,
				      "no upstream configured", STAT_ERROR);
	}
	return 0;
}

static int client_tenant(const struct snapshot *s, const struct sockaddr_any *client)
{
	if (client->ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&client->ss;
		return snapshot_tenant_for_address(s, AF_INET, &a->sin_addr);
	}
	const struct sockaddr_in6 *a6 = (const void *)&client->ss;
	if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return snapshot_tenant_for_address(s, AF_INET, &a6->sin6_addr.s6_addr[12]);
	return snapshot_tenant_for_address(s, AF_INET6, &a6->sin6_addr);
}

void query_clock_read(struct query_clock *c)
{
	c->wall_us = server_wall_us();
	c->now_us = server_now_us();
}

size_t query_handle(struct worker *w, const struct reply_path *rp,
		    const struct sockaddr_any *client, const uint8_t *pkt, size_t len,
		    uint8_t *out, size_t cap)
{
	struct query_clock clock;
	query_clock_read(&clock);
	return query_handle_at(w, rp, client, pkt, len, out, cap, &clock);
}

size_t query_handle_at(struct worker *w, const struct reply_path *rp,
		       const struct sockaddr_any *client, const uint8_t *pkt, size_t len,
		       uint8_t *out, size_t cap, const struct query_clock *clock)
{
	struct resolver *r = w->r;
	struct query_state st = {
		.w = w, .rp = *rp, .client = *client, .pkt = pkt, .tenant = -1, .upstream = -1,
		.action = STAT_ALLOW, .start_us = clock->wall_us,
	};

	stat_inc(&w->stats.queries[rp->transport]);
	enum wire_verdict verdict = wire_parse_query(pkt, len, &st.q);
	if (verdict == WIRE_DROP) {
		stat_inc(&w->stats.dropped);
		return 0;
	}
	/* Before anything is answered, even an error or a REFUSED to an unknown network: over
	 * UDP any answer can be reflected at a spoofed victim. TCP proves the address. */
	if (rp->transport == TRANSPORT_UDP) {
		switch (ratelimit_check(r->ratelimit, (const struct sockaddr *)&client->ss,
					clock->now_us)) {
		case RATELIMIT_PASS:
			break;
		case RATELIMIT_SLIP:
			stat_inc(&w->stats.ratelimit_slipped);
			st.action = STAT_RATELIMITED;
			finish(&st);
			return wire_answer_minimal(out, cap, &st.q, pkt, 0, true, NULL);
		case RATELIMIT_DROP:
			stat_inc(&w->stats.dropped);
			st.action = STAT_RATELIMITED;
			finish_answered(&st, false);
			return 0;
		}
	}
	switch (verdict) {
	case WIRE_DROP:
		return 0;
	case WIRE_FORMERR:
		stat_inc(&w->stats.malformed);
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_FORMERR, 0, NULL, STAT_ERROR);
	case WIRE_NOTIMP:
		stat_inc(&w->stats.malformed);
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_NOTIMP, 0, NULL, STAT_ERROR);
	case WIRE_BADVERS:
		stat_inc(&w->stats.malformed);
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_BADVERS, 0, NULL, STAT_ERROR);
	case WIRE_OK:
		break;
	}

	st.snap = snapview_get(r->policy, &w->view);
	if (!st.snap)
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_SERVFAIL, EDE_NOT_READY,
				      "no policy loaded yet", STAT_ERROR);
	st.snap_serial = snapshot_serial(st.snap);

	st.tenant = client_tenant(st.snap, client);
	if (st.tenant < 0) {
		stat_inc(&w->stats.unknown_client);
		if (r->opt.unknown_client_rcode < 0) {
			st.action = STAT_REFUSED;
			finish_answered(&st, false);
			return 0;
		}
		return answer_minimal(&st, pkt, out, cap, (uint16_t)r->opt.unknown_client_rcode,
				      EDE_PROHIBITED, "network not registered with this service",
				      STAT_REFUSED);
	}
	const struct snapshot_tenant *t = snapshot_tenant(st.snap, (uint32_t)st.tenant);
	memcpy(st.tenant_id, t->id, sizeof st.tenant_id);
	st.privacy = t->privacy;
	st.trunc_v4 = t->trunc_v4;
	st.trunc_v6 = t->trunc_v6;

	if (st.q.qclass != WIRE_CLASS_IN)
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_NOTIMP, 0, NULL, STAT_REFUSED);
	if (st.q.qtype == WIRE_TYPE_AXFR || st.q.qtype == WIRE_TYPE_IXFR)
		return answer_minimal(&st, pkt, out, cap, WIRE_RCODE_REFUSED, EDE_PROHIBITED,
				      "zone transfers are not served", STAT_REFUSED);

	struct special_match sm;
	special_classify(st.q.qname, st.q.qname_len, r->opt.special_forward, &sm);
	if (sm.answer != SPECIAL_NONE) {
		st.action = STAT_LOCAL;
		st.rcode = sm.answer == SPECIAL_NXDOMAIN ? WIRE_RCODE_NXDOMAIN : 0;
		size_t n = special_answer(&sm, &st.q, pkt, out, cap);
		finish(&st);
		return fit_transport(&st, pkt, out, cap, n);
	}

	/* The bucket of a random name is a cache miss, and the policy's lookups take long
	 * enough to hide it: most queries end in the cache. */
	struct cache_key key;
	cache_key_of(&st.q, &key);
	cache_prefetch(r->cache, &key);
	policy_decide(st.snap, (uint32_t)st.tenant, t, st.q.qname, st.q.qname_len, &st.decision);
	if (st.decision.category >= 0) {
		const char *name = snapshot_category_name(st.snap, (uint32_t)st.decision.category);
		if (name)
			append(st.category, sizeof st.category, 0, name, strlen(name));
	}
	if (st.decision.action == POLICY_BLOCK)
		return answer_block(&st, t, pkt, out, cap);
	if (st.decision.action == POLICY_MONITOR)
		st.action = STAT_MONITOR;
	st.lookup = st.q;
	if (t->safe_search) {
		st.safe_target = safesearch_target(st.q.qname, st.q.qname_len, &st.safe_target_len);
		if (st.safe_target) {
			memcpy(st.lookup.qname, st.safe_target, st.safe_target_len);
			st.lookup.qname_len = st.safe_target_len;
		}
	}

	size_t n = answer_from_cache(&st, pkt, out, cap, CACHE_FRESH);
	if (n) {
		stat_inc(&w->stats.cache_hits);
		finish(&st);
		return n;
	}
	return forward(&st, pkt, len, out, cap);
}
