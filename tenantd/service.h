/* service.h -- tenantd's main job: recompile when the policy changes, publish the result.
 *
 * One database session LISTENs on aegis_policy_changed; a burst of notifications compiles
 * once, debounce_ms after the first. Only the instance holding the leader advisory lock
 * compiles and serves; the others retry the lock every two seconds, so killing the leader
 * hands over within seconds. A lost connection is re-established with backoff and followed
 * by a compile, since notifications sent meanwhile are lost. A failed compile keeps the
 * previous snapshot in service. Runs on the caller's libevent loop.
 */
#ifndef AEGIS_SERVICE_H
#define AEGIS_SERVICE_H

struct event_base;
struct distribute;
struct service;

struct service_config {
	const char *dsn;
	const char *snapshot_dir;
	const char *instance;        /* recorded as compiled_by */
	unsigned debounce_ms;
	struct distribute *distribute;
};

struct service *service_start(struct event_base *base, const struct service_config *cfg);
void service_stop(struct service *s);

#endif
