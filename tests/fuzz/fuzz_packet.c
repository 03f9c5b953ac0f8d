/* fuzz_packet.c -- libFuzzer target over the resolver's packet path.
 *
 * Every input goes through query_handle() as a UDP and as a TCP query from a known tenant
 * (parse, rate limit, tenant, special names, policy, cache, answer; no upstream is
 * configured, so misses end in SERVFAIL synchronously), and through wire_scan_response()
 * and wire_dress_answer() as if it were an upstream's answer. Any answer written must stay
 * within the buffer and the client's size limit.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "log.h"
#include "query.h"
#include "ratelimit.h"
#include "server.h"
#include "snapshot.h"
#include "tenantstats.h"
#include "upstream.h"
#include "wire.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct resolver node;
static struct worker worker;

static struct snapshot *make_policy(void)
{
	char path[] = "/tmp/fuzz-packet-XXXXXX", err[256];
	int fd = mkstemp(path);
	if (fd < 0)
		abort();
	close(fd);
	struct snapshot_builder *b = snapshot_builder_new(1);
	int malware = snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT);
	int adult = snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT);
	struct snapshot_tenant_spec t = { .name = "school", .ede_text = "contact it",
					  .block_mask = 1u << malware | 1u << adult };
	int school = snapshot_builder_add_tenant(b, &t);
	if (malware < 0 || adult < 0 || school < 0 ||
	    snapshot_builder_add_network(b, (uint32_t)school, "127.1.0.0/16") < 0 ||
	    snapshot_builder_add_name(b, "malware.test", SNAPSHOT_FEED, (uint32_t)malware) < 0 ||
	    snapshot_builder_add_name(b, "adult.test", SNAPSHOT_FEED, (uint32_t)adult) < 0 ||
	    snapshot_builder_add_name(b, "deny.test", SNAPSHOT_TENANT_DENY, (uint32_t)school) < 0 ||
	    snapshot_builder_add_name(b, "nat.test", SNAPSHOT_NATIONAL_BLOCK, 0) < 0 ||
	    snapshot_builder_write(b, path, err, sizeof err) < 0)
		abort();
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	unlink(path);
	if (!s)
		abort();
	return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_set_level(LOG_LEVEL_ERROR);
	struct cache_config cc;
	cache_default_config(&cc);
	cc.max_bytes = 16 << 20;
	struct ratelimit_config rc = { 0 };
	struct upstream_set_config uc = { .timeout_ms = 100, .attempts = 1, .down_after = 3,
					  .down_ms = 1000 };
	snprintf(node.opt.node, sizeof node.opt.node, "fuzz");
	node.opt.workers = 1;
	node.opt.tcp_max_inflight = 8;
	node.opt.block_ttl = 60;
	node.opt.unknown_client_rcode = WIRE_RCODE_REFUSED;
	node.policy = snaphold_new();
	node.cache = cache_new(&cc);
	node.ratelimit = ratelimit_new(&rc);
	node.upstreams = upstream_set_new(NULL, 0, &uc);
	if (!node.policy || !node.cache || !node.ratelimit || !node.upstreams)
		abort();
	snaphold_publish(node.policy, make_policy());
	worker.r = &node;
	worker.base = event_base_new();
	worker.upstream = upstream_client_new(worker.base, node.upstreams, &worker.stats);
	worker.tenants = tenantstats_new();
	if (!worker.base || !worker.upstream || !worker.tenants)
		abort();
	return 0;
}

static void as_query(const uint8_t *data, size_t size, enum transport transport)
{
	static uint8_t out[65535];
	struct reply_path rp = { .transport = transport, .udp_fd = -1 };
	struct sockaddr_any client = { .len = sizeof(struct sockaddr_in) };
	struct sockaddr_in *sin = (struct sockaddr_in *)&client.ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5353);
	inet_pton(AF_INET, size && (data[0] & 1) ? "127.1.0.5" : "127.9.9.9", &sin->sin_addr);
	size_t n = query_handle(&worker, &rp, &client, data, size, out, sizeof out);
	if (transport == TRANSPORT_UDP && n > WIRE_EDNS_SIZE)
		abort(); /* a UDP answer never exceeds what we advertise */
	if (n > sizeof out)
		abort();
}

static void as_upstream_answer(const uint8_t *data, size_t size)
{
	static const uint8_t query[] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
					 3, 'w', 'w', 'w', 4, 't', 'e', 's', 't', 0, 0, 1, 0, 1,
					 0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 0 };
	static uint8_t msg[65535 + 64];
	struct wire_query q;
	struct wire_response r;
	if (wire_parse_query(query, sizeof query, &q) != WIRE_OK || size > 65535)
		abort();
	memcpy(msg, data, size);
	size_t n = wire_scan_response(msg, size, &q, &r);
	if (!n)
		return;
	for (unsigned i = 0; i < r.n_ttl; i++)
		if (r.ttl_offsets[i] + 4u > n)
			abort();
	wire_dress_answer(msg, n, sizeof msg, &q, query, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_query(data, size, TRANSPORT_UDP);
	as_query(data, size, TRANSPORT_TCP);
	if (size <= 65535)
		as_upstream_answer(data, size);
	return 0;
}
