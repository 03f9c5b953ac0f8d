/* main.c -- aegis-resolver: the tenant-aware, policy-enforcing caching DNS resolver node. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomicfile.h"
#include "cache.h"
#include "cleanup.h"
#include "daemon.h"
#include "fetch.h"
#include "hostport.h"
#include "log.h"
#include "metrics.h"
#include "proxyv2.h"
#include "privacy.h"
#include "querylog.h"
#include "querylog_kafka.h"
#include "ratelimit.h"
#include "server.h"
#include "snapshot.h"
#include "upstream.h"

struct resolver_settings {
	struct daemon_log_settings log;
	char *node;
	struct config_strings listen;
	long long workers;
	long long tcp_idle_ms, tcp_max_connections, tcp_max_inflight;
	char *unknown_clients;
	struct config_strings proxy_from;
	struct config_strings upstreams;
	long long upstream_timeout_ms, upstream_attempts;
	char *snapshot;
	char *policy_url;
	char *policy_token_file;
	long long policy_longpoll_s;
	long long block_ttl;
	struct config_strings forward_special;
	long long cache_mb, cache_max_ttl, cache_max_negative_ttl, cache_max_stale;
	long long rl_qps, rl_burst, rl_slip, rl_v6_prefix;
	struct config_strings rl_exempt;
	char *querylog_file;
	long long querylog_queue;
	char *pseudonym_secret_file;
	char *kafka_brokers, *kafka_topic, *kafka_spool_dir;
	long long kafka_spool_max_mb;
	struct config_strings kafka_properties;
	char *metrics_listen;
};

/* "192.0.2.1:53" or "[2001:db8::1]:53" into a socket address. */
static int parse_hostport(const char *text, struct sockaddr_any *out)
{
	return hostport_parse(text, &out->ss, &out->len);
}

static int check_cidr(const char *value, char *err, size_t errlen)
{
	struct proxyv2_allow *a = proxyv2_allow_new();
	int rc = a ? proxyv2_allow_add(a, value) : -ENOMEM;
	proxyv2_allow_free(a);
	if (rc == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not an address prefix such as 192.0.2.0/24", value);
	return -1;
}

/* "PREFIX=QPS": an exemption from the per-client limit (QPS 0 = unlimited). */
static int split_exemption(const char *value, char *prefix, size_t cap, unsigned long *qps)
{
	const char *eq = strchr(value, '=');
	char *end;
	if (!eq || (size_t)(eq - value) >= cap)
		return -EINVAL;
	memcpy(prefix, value, (size_t)(eq - value));
	prefix[eq - value] = '\0';
	*qps = strtoul(eq + 1, &end, 10);
	return eq[1] && !*end && *qps <= 10000000 ? 0 : -EINVAL;
}

static int check_exemption(const char *value, char *err, size_t errlen)
{
	char prefix[64];
	unsigned long qps;
	if (split_exemption(value, prefix, sizeof prefix, &qps) == 0 &&
	    check_cidr(prefix, err, errlen) == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not PREFIX=QPS, e.g. 192.0.2.0/24=0", value);
	return -1;
}

static int check_unknown_clients(const char *value, char *err, size_t errlen)
{
	if (!strcmp(value, "refused") || !strcmp(value, "drop"))
		return 0;
	snprintf(err, errlen, "'%s' is not refused or drop", value);
	return -1;
}

/* A zone as text ("test.") to wire format, for the special-use exemptions. */
static int zone_to_wire(const char *text, uint8_t *wire, size_t *len)
{
	return snapshot_parse_name(text, wire, len);
}

static int check_zone(const char *value, char *err, size_t errlen)
{
	uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
	size_t len;
	if (zone_to_wire(value, wire, &len) == 0)
		return 0;
	snprintf(err, errlen, "'%s' is not a domain name", value);
	return -1;
}

static int check_brokers(const char *value, char *err, size_t errlen)
{
	if (*value && !strpbrk(value, " \t"))
		return 0;
	snprintf(err, errlen, "'%s' is not host:port[,host:port...]", value);
	return -1;
}

/* Kafka's own rule for topic names. */
static int check_topic(const char *value, char *err, size_t errlen)
{
	size_t len = strlen(value);
	if (len && len <= 249 && strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789._-") == len && strcmp(value, ".") &&
	    strcmp(value, ".."))
		return 0;
	snprintf(err, errlen, "'%s' is not a Kafka topic name (1-249 of [a-zA-Z0-9._-])", value);
	return -1;
}

#define S(member) offsetof(struct resolver_settings, member)
static const struct config_field resolver_fields[] = {
	DAEMON_LOG_FIELDS(struct resolver_settings, log),
	{ .path = "node.name", .type = CONFIG_STRING, .required = true, .offset = S(node) },
	{ .path = "server.listen", .type = CONFIG_STRING_LIST, .required = true,
	  .offset = S(listen), .check = hostport_check },
	{ .path = "server.workers", .type = CONFIG_INT, .offset = S(workers), .min = 0, .max = 64 },
	{ .path = "server.tcp_idle_timeout_ms", .type = CONFIG_INT, .offset = S(tcp_idle_ms),
	  .default_int = 10000, .min = 100, .max = 600000 },
	{ .path = "server.tcp_max_connections", .type = CONFIG_INT,
	  .offset = S(tcp_max_connections), .default_int = 4096, .min = 1, .max = 1000000 },
	{ .path = "server.tcp_max_inflight", .type = CONFIG_INT, .offset = S(tcp_max_inflight),
	  .default_int = 64, .min = 1, .max = 65535 },
	{ .path = "server.unknown_clients", .type = CONFIG_STRING, .offset = S(unknown_clients),
	  .default_string = "refused", .check = check_unknown_clients },
	{ .path = "server.proxy_protocol_from", .type = CONFIG_STRING_LIST,
	  .offset = S(proxy_from), .check = check_cidr },
	{ .path = "upstream.servers", .type = CONFIG_STRING_LIST, .required = true,
	  .offset = S(upstreams), .check = hostport_check },
	{ .path = "upstream.timeout_ms", .type = CONFIG_INT, .offset = S(upstream_timeout_ms),
	  .default_int = 1000, .min = 10, .max = 30000 },
	{ .path = "upstream.attempts", .type = CONFIG_INT, .offset = S(upstream_attempts),
	  .default_int = 3, .min = 1, .max = 10 },
	{ .path = "policy.snapshot", .type = CONFIG_STRING, .required = true,
	  .offset = S(snapshot) },
	{ .path = "policy.url", .type = CONFIG_STRING, .offset = S(policy_url) },
	{ .path = "policy.token_file", .type = CONFIG_STRING, .offset = S(policy_token_file) },
	{ .path = "policy.longpoll_seconds", .type = CONFIG_INT, .offset = S(policy_longpoll_s),
	  .default_int = 30, .min = 1, .max = 300 },
	{ .path = "policy.block_ttl", .type = CONFIG_INT, .offset = S(block_ttl),
	  .default_int = 60, .min = 0, .max = 86400 },
	{ .path = "policy.forward_special_zones", .type = CONFIG_STRING_LIST,
	  .offset = S(forward_special), .check = check_zone },
	{ .path = "cache.max_mb", .type = CONFIG_INT, .offset = S(cache_mb), .default_int = 64,
	  .min = 1, .max = 65536 },
	{ .path = "cache.max_ttl", .type = CONFIG_INT, .offset = S(cache_max_ttl),
	  .default_int = 86400, .min = 0, .max = 604800 },
	{ .path = "cache.max_negative_ttl", .type = CONFIG_INT,
	  .offset = S(cache_max_negative_ttl), .default_int = 3600, .min = 0, .max = 86400 },
	{ .path = "cache.max_stale", .type = CONFIG_INT, .offset = S(cache_max_stale),
	  .default_int = 86400, .min = 0, .max = 604800 },
	{ .path = "ratelimit.qps", .type = CONFIG_INT, .offset = S(rl_qps), .default_int = 1000,
	  .min = 0, .max = 10000000 },
	{ .path = "ratelimit.burst", .type = CONFIG_INT, .offset = S(rl_burst), .default_int = 0,
	  .min = 0, .max = 10000000 },
	{ .path = "ratelimit.slip", .type = CONFIG_INT, .offset = S(rl_slip), .default_int = 2,
	  .min = 0, .max = 100 },
	{ .path = "ratelimit.ipv6_prefix", .type = CONFIG_INT, .offset = S(rl_v6_prefix),
	  .default_int = 56, .min = 1, .max = 128 },
	{ .path = "ratelimit.exempt", .type = CONFIG_STRING_LIST, .offset = S(rl_exempt),
	  .check = check_exemption },
	{ .path = "querylog.file", .type = CONFIG_STRING, .offset = S(querylog_file) },
	{ .path = "querylog.queue", .type = CONFIG_INT, .offset = S(querylog_queue),
	  .default_int = 4096, .min = 64, .max = 1048576 },
	{ .path = "querylog.pseudonym_secret_file", .type = CONFIG_STRING,
	  .offset = S(pseudonym_secret_file) },
	{ .path = "querylog.kafka.brokers", .type = CONFIG_STRING, .offset = S(kafka_brokers),
	  .check = check_brokers },
	{ .path = "querylog.kafka.topic", .type = CONFIG_STRING, .offset = S(kafka_topic),
	  .default_string = "aegis.querylog", .check = check_topic },
	{ .path = "querylog.kafka.spool_dir", .type = CONFIG_STRING, .offset = S(kafka_spool_dir),
	  .default_string = "/var/lib/aegis/querylog-spool" },
	{ .path = "querylog.kafka.spool_max_mb", .type = CONFIG_INT,
	  .offset = S(kafka_spool_max_mb), .default_int = 1024, .min = 1, .max = 1048576 },
	{ .path = "querylog.kafka.properties", .type = CONFIG_STRING_LIST,
	  .offset = S(kafka_properties), .check = querylog_kafka_check_property },
	{ .path = "metrics.listen", .type = CONFIG_STRING, .offset = S(metrics_listen),
	  .check = hostport_check },
};
#undef S

static struct resolver node;
static struct metrics *metrics;
static void *kafka_sink;   /* owned by node.querylog; for the metrics page */

/* The snapshot file is watched, not only reloaded on SIGHUP: whoever replaces it (tenantd's
 * fetcher, an operator's rename) sees it enforced within a poll interval. A file that fails
 * to load is not retried until it changes again. */
#define SNAPSHOT_POLL_MS 250

static struct snapshot_watch {
	char path[4096];
	struct stat seen;
	struct event *timer;
} watch;

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void load_snapshot(void)
{
	struct stat st;
	if (stat(watch.path, &st) < 0)
		memset(&st, 0, sizeof st);
	watch.seen = st;
	if (snaphold_load_file(node.policy, watch.path) < 0)
		log_warn("policy_kept", "path=%s", watch.path);
}

/* Feed bases beside the policy file other than the one in use: left by earlier policies. */
static void remove_other_bases(const struct snapshot *s)
{
	char keep[4200] = "", dir[4200];
	const char *slash = strrchr(watch.path, '/');
	const char *name = slash ? slash + 1 : watch.path;
	const size_t prefix = strlen(name) + strlen(".base-");
	const uint8_t *sum = snapshot_base_checksum(s);
	if (sum)
		snapshot_base_path(name, sum, keep, sizeof keep);
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - watch.path) : 1,
		 slash ? watch.path : ".");
	DIR *d = opendir(dir[0] ? dir : "/");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char path[8400];
		if (strlen(e->d_name) != prefix + 64 || strncmp(e->d_name, name, strlen(name)) != 0 ||
		    strncmp(e->d_name + strlen(name), ".base-", 6) != 0 ||
		    strcmp(e->d_name, keep) == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
}

/* A snapshot from tenantd: validated, joined to its feed base (1 when the node lacks that
 * base: the fetcher gets it first), written beside the watched file and renamed over it (the
 * last good policy survives a restart without tenantd), then published. */
static int apply_fetched(void *arg, const uint8_t *data, size_t len, uint8_t *need_base,
			 char *err, size_t errlen)
{
	(void)arg;
	struct snapshot *s = snapshot_open_buffer(data, len, err, errlen);
	if (!s)
		return -EINVAL;
	int rc = snaphold_join_base(node.policy, s, err, errlen);
	if (rc == 1)
		memcpy(need_base, snapshot_base_checksum(s), 32);
	if (rc == 0 && atomicfile_write(watch.path, data, len, err, errlen) < 0)
		rc = -EIO;
	if (rc != 0) {
		snapshot_close(s);
		return rc;
	}
	stat(watch.path, &watch.seen);
	log_info("snapshot_fetched", "serial=%llu bytes=%zu base=%llu",
		 (unsigned long long)snapshot_serial(s), len,
		 (unsigned long long)(snapshot_base(s) ? snapshot_serial(snapshot_base(s)) : 0));
	remove_other_bases(s);
	snaphold_publish(node.policy, s);
	return 0;
}

/* A feed base from tenantd, before the snapshot that names it: validated and kept on disk
 * under its checksum, so the node restarts with it. */
static int apply_base(void *arg, const uint8_t *data, size_t len, uint8_t *need_base, char *err,
		      size_t errlen)
{
	char path[4200];
	(void)arg;
	(void)need_base;
	struct snapshot *b = snapshot_open_buffer(data, len, err, errlen);
	if (!b)
		return -EINVAL;
	snapshot_base_path(watch.path, snapshot_checksum(b), path, sizeof path);
	if (atomicfile_write(path, data, len, err, errlen) < 0) {
		snapshot_close(b);
		return -EIO;
	}
	log_info("snapshot_base_fetched", "serial=%llu bytes=%zu names=%llu",
		 (unsigned long long)snapshot_serial(b), len,
		 (unsigned long long)snapshot_name_count(b));
	snaphold_keep_base(node.policy, b);
	return 0;
}

static uint64_t running_serial(void *arg)
{
	uint64_t serial, created, loaded_at;
	(void)arg;
	snaphold_info(node.policy, &serial, &created, &loaded_at);
	return serial;
}

/* The node token is kept in its own file (mode 0600) so configs can be shared freely. */
static int read_token(const char *path, char *out, size_t cap)
{
	auto_fclose FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)cap, f)) {
		log_err("policy_token_unreadable", "path=%s", path);
		return -1;
	}
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

static void on_snapshot_poll(evutil_socket_t fd, short what, void *arg)
{
	struct stat st;
	(void)fd;
	(void)what;
	(void)arg;
	if (stat(watch.path, &st) == 0 && !same_file(&st, &watch.seen))
		load_snapshot();
}

static int reload(struct daemon *d, const void *old_settings, const void *new_settings)
{
	const struct resolver_settings *s = new_settings;
	(void)d;
	(void)old_settings;
	/* Listen addresses, workers and the rest need a restart; the policy does not. */
	if (strcmp(s->snapshot, watch.path) != 0)
		log_warn("restart_needed", "setting=policy.snapshot");
	load_snapshot();
	if (node.querylog)
		querylog_reopen(node.querylog);
	return 0;
}

static const struct daemon_spec resolver_spec = {
	.name = "aegis-resolver",
	.default_config = "/etc/aegis/resolver.conf",
	.fields = resolver_fields,
	.nfields = sizeof resolver_fields / sizeof resolver_fields[0],
	.settings_size = sizeof(struct resolver_settings),
	.log_offset = offsetof(struct resolver_settings, log),
	.reload = reload,
};

static const uint8_t **special_exemptions(const struct config_strings *zones)
{
	const uint8_t **list = calloc(zones->count + 1, sizeof *list);
	for (size_t i = 0; list && i < zones->count; i++) {
		uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
		size_t len;
		uint8_t *copy;
		if (zone_to_wire(zones->items[i], wire, &len) < 0 || !(copy = malloc(len)))
			return list; /* validated already; only memory can fail here */
		memcpy(copy, wire, len);
		list[i] = copy;
	}
	return list;
}

static int build(struct resolver *r, const struct resolver_settings *s)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct resolver_options *o = &r->opt;

	snprintf(o->node, sizeof o->node, "%s", s->node);
	if (s->listen.count == 0 || s->listen.count > SERVER_MAX_LISTEN) {
		log_err("config_invalid", "setting=server.listen error=\"1 to %d addresses\"",
			SERVER_MAX_LISTEN);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->listen.count; i++)
		if (parse_hostport(s->listen.items[i], &o->listen[o->nlisten++]) < 0)
			return -EINVAL;
	o->workers = s->workers ? (unsigned)s->workers : (unsigned)(cpus > 0 ? cpus : 1);
	o->tcp_idle_ms = (unsigned)s->tcp_idle_ms;
	o->tcp_max_connections = (unsigned)s->tcp_max_connections;
	o->tcp_max_inflight = (unsigned)s->tcp_max_inflight;
	o->unknown_client_rcode = strcmp(s->unknown_clients, "drop") == 0 ? -1 : WIRE_RCODE_REFUSED;
	o->block_ttl = (uint32_t)s->block_ttl;
	o->special_forward = special_exemptions(&s->forward_special);
	if (!o->special_forward)
		return -ENOMEM;

	r->policy = snaphold_new();
	if (!r->policy)
		return -ENOMEM;
	snprintf(watch.path, sizeof watch.path, "%s", s->snapshot);
	load_snapshot();
	uint64_t serial, created, loaded_at;
	snaphold_info(r->policy, &serial, &created, &loaded_at);
	if (!serial)
		log_warn("starting_without_policy", "path=%s answer=\"SERVFAIL, EDE 14 Not Ready\"",
			 s->snapshot);

	struct cache_config cc;
	cache_default_config(&cc);
	cc.max_bytes = (size_t)s->cache_mb << 20;
	cc.max_ttl = (uint32_t)s->cache_max_ttl;
	cc.max_negative_ttl = (uint32_t)s->cache_max_negative_ttl;
	cc.max_stale = (uint32_t)s->cache_max_stale;
	if (!(r->cache = cache_new(&cc)))
		return -ENOMEM;

	struct ratelimit_config rc = { .qps = (uint32_t)s->rl_qps,
				       .burst = (uint32_t)(s->rl_burst ? s->rl_burst : s->rl_qps),
				       .table_bits = 20, .v4_prefix = 32,
				       .v6_prefix = (uint8_t)s->rl_v6_prefix,
				       .slip = (unsigned)s->rl_slip };
	if (!(r->ratelimit = ratelimit_new(&rc)))
		return -ENOMEM;
	for (size_t i = 0; i < s->rl_exempt.count; i++) {
		char prefix[64];
		unsigned long qps;
		if (split_exemption(s->rl_exempt.items[i], prefix, sizeof prefix, &qps) < 0 ||
		    ratelimit_add_exemption(r->ratelimit, prefix, (uint32_t)qps) < 0)
			return -EINVAL;
	}
	if (s->proxy_from.count) {
		if (!(r->proxy_allow = proxyv2_allow_new()))
			return -ENOMEM;
		for (size_t i = 0; i < s->proxy_from.count; i++)
			if (proxyv2_allow_add(r->proxy_allow, s->proxy_from.items[i]) < 0)
				return -EINVAL;
	}

	struct sockaddr_any ups[16];
	if (s->upstreams.count == 0 || s->upstreams.count > 16) {
		log_err("config_invalid", "setting=upstream.servers error=\"1 to 16 servers\"");
		return -EINVAL;
	}
	for (size_t i = 0; i < s->upstreams.count; i++)
		if (parse_hostport(s->upstreams.items[i], &ups[i]) < 0)
			return -EINVAL;
	struct upstream_set_config uc = { .timeout_ms = (unsigned)s->upstream_timeout_ms,
					  .attempts = (unsigned)s->upstream_attempts,
					  .down_after = 3, .down_ms = 5000 };
	if (!(r->upstreams = upstream_set_new(ups, (unsigned)s->upstreams.count, &uc)))
		return -ENOMEM;

	/* Nodes that share the secret give a client the same pseudonym on a given day. */
	if (s->pseudonym_secret_file) {
		if (privacy_secret_load(s->pseudonym_secret_file, &r->privacy_secret) < 0)
			return -EINVAL;
	} else if (privacy_secret_random(&r->privacy_secret) < 0) {
		return -EIO;
	}

	/* The file and the Kafka sink are alternatives: one destination per node keeps one
	 * account of what was logged. */
	struct querylog_sink_ops ops;
	void *ctx = NULL;
	if (s->querylog_file && s->kafka_brokers) {
		log_err("config_invalid", "setting=querylog.kafka.brokers "
			"error=\"querylog.file and querylog.kafka are alternatives: set one\"");
		return -EINVAL;
	}
	if (s->querylog_file && querylog_file_sink_open(s->querylog_file, &ops, &ctx) < 0)
		return -EIO;
	if (s->kafka_brokers) {
		struct querylog_kafka_config kc = {
			.brokers = s->kafka_brokers, .topic = s->kafka_topic,
			.spool_dir = s->kafka_spool_dir,
			.spool_max_bytes = (uint64_t)s->kafka_spool_max_mb << 20,
			.properties = s->kafka_properties.items,
			.nproperties = s->kafka_properties.count,
		};
		if (querylog_kafka_sink_open(&kc, &ops, &ctx) < 0)
			return -EIO;
		kafka_sink = ctx;
	}
	if (ctx && !(r->querylog = querylog_new(o->workers, (unsigned)s->querylog_queue, &ops,
						 ctx)))
		return -ENOMEM;
	return 0;
}

static void teardown(struct resolver *r)
{
	if (r->workers)
		workers_stop(r);
	if (r->querylog) {
		querylog_stop(r->querylog);
		querylog_free(r->querylog);
	}
	metrics_free(metrics);
	upstream_set_free(r->upstreams);
	proxyv2_allow_free(r->proxy_allow);
	ratelimit_free(r->ratelimit);
	cache_free(r->cache);
	snaphold_free(r->policy);
	if (r->opt.special_forward) {
		for (const uint8_t *const *z = (const uint8_t *const *)r->opt.special_forward; *z; z++)
			free((void *)*z);
		free((void *)r->opt.special_forward);
	}
}

int main(int argc, char **argv)
{
	struct daemon d;
	struct fetch *fetcher = NULL;
	int status;

	if (evthread_use_pthreads() < 0) {
		fprintf(stderr, "aegis-resolver: libevent without thread support\n");
		return EXIT_FAILURE;
	}
	if (!daemon_init(&d, &resolver_spec, argc, argv, &status))
		return status;
	if (d.command) {
		fprintf(stderr, "aegis-resolver: unknown command '%s' (try --help)\n", d.command);
		daemon_fini(&d);
		return 2;
	}
	const struct resolver_settings *s = d.settings;
	status = EXIT_FAILURE;
	if (build(&node, s) < 0 || workers_create(&node) < 0)
		goto out;
	if (node.querylog && querylog_start(node.querylog) < 0)
		goto out;
	if (s->metrics_listen) {
		struct sockaddr_any ma;
		if (parse_hostport(s->metrics_listen, &ma) < 0 ||
		    !(metrics = metrics_new(d.base, &node, &ma)))
			goto out;
		if (kafka_sink)
			metrics_add_querylog_kafka(metrics, kafka_sink);
	}
	if (s->policy_url) {
		char token[256];
		if (!s->policy_token_file) {
			log_err("config_invalid", "setting=policy.token_file "
				"error=\"required with policy.url\"");
			goto out;
		}
		if (read_token(s->policy_token_file, token, sizeof token) < 0)
			goto out;
		struct fetch_config fc = { .url = s->policy_url, .token = token,
					   .wait_s = (unsigned)s->policy_longpoll_s };
		if (!(fetcher = fetch_start(d.base, &fc, running_serial, apply_fetched, apply_base,
					       NULL)))
			goto out;
	}
	struct timeval poll = { 0, SNAPSHOT_POLL_MS * 1000 };
	watch.timer = event_new(d.base, -1, EV_PERSIST, on_snapshot_poll, NULL);
	if (!watch.timer || event_add(watch.timer, &poll) < 0)
		goto out;
	if (workers_start(&node) < 0)
		goto out;
	log_info("serving", "node=%s workers=%u listen=%s upstreams=%zu", node.opt.node,
		 node.opt.workers, s->listen.items[0], s->upstreams.count);
	status = daemon_run(&d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
out:
	fetch_stop(fetcher);
	if (watch.timer)
		event_free(watch.timer);
	teardown(&node);
	daemon_fini(&d);
	return status;
}
