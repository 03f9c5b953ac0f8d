/* snaphold.c -- publish/acquire of immutable policy snapshots. */
#include "snaphold.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

struct snapref {
	struct snapshot *snap;
	atomic_uint refs;
};

struct snaphold {
	pthread_mutex_t lock;          /* guards current and the reference counts' 0 -> 1 */
	struct snapref *current;
	_Atomic uint64_t generation;   /* bumped on every publish; readers compare, not lock */
	_Atomic uint64_t loaded_at;
};

static void ref_put(struct snapref *r)
{
	if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
		snapshot_close(r->snap);
		free(r);
	}
}

struct snaphold *snaphold_new(void)
{
	struct snaphold *h = calloc(1, sizeof *h);
	if (h)
		pthread_mutex_init(&h->lock, NULL);
	return h;
}

void snaphold_free(struct snaphold *h)
{
	if (!h)
		return;
	ref_put(h->current);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void snaphold_publish(struct snaphold *h, struct snapshot *s)
{
	struct snapref *r = malloc(sizeof *r);
	if (!r) {
		log_err("snapshot_publish_failed", "error=\"out of memory\"");
		snapshot_close(s);
		return;
	}
	r->snap = s;
	atomic_init(&r->refs, 1); /* the holder's own reference */

	pthread_mutex_lock(&h->lock);
	struct snapref *old = h->current;
	h->current = r;
	atomic_fetch_add_explicit(&h->generation, 1, memory_order_release);
	pthread_mutex_unlock(&h->lock);
	atomic_store(&h->loaded_at, (uint64_t)time(NULL));
	ref_put(old);
}

int snaphold_load_file(struct snaphold *h, const char *path)
{
	char err[256], quoted[300];
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	if (!s) {
		int e = errno ? errno : EINVAL;
		uint64_t serial, created, loaded_at;
		snaphold_info(h, &serial, &created, &loaded_at);
		log_err("snapshot_refused", "path=%s error=%s keeping_serial=%llu", path,
			log_quote(quoted, sizeof quoted, err), (unsigned long long)serial);
		return -e;
	}
	uint64_t old_serial = 0;
	pthread_mutex_lock(&h->lock);
	if (h->current)
		old_serial = snapshot_serial(h->current->snap);
	pthread_mutex_unlock(&h->lock);
	if (old_serial && snapshot_serial(s) < old_serial)
		log_warn("snapshot_serial_backwards", "old=%llu new=%llu",
			 (unsigned long long)old_serial, (unsigned long long)snapshot_serial(s));
	log_info("snapshot_loaded", "path=%s serial=%llu tenants=%u names=%llu", path,
		 (unsigned long long)snapshot_serial(s), snapshot_tenant_count(s),
		 (unsigned long long)snapshot_name_count(s));
	snaphold_publish(h, s);
	return 0;
}

static void refresh(struct snaphold *h, struct snapview *v)
{
	pthread_mutex_lock(&h->lock);
	struct snapref *r = h->current;
	if (r)
		atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	v->generation = atomic_load_explicit(&h->generation, memory_order_relaxed);
	pthread_mutex_unlock(&h->lock);
	ref_put(v->ref);
	v->ref = r;
}

const struct snapshot *snapview_get(struct snaphold *h, struct snapview *v)
{
	if (atomic_load_explicit(&h->generation, memory_order_acquire) != v->generation)
		refresh(h, v);
	return v->ref ? v->ref->snap : NULL;
}

void snapview_release(struct snaphold *h, struct snapview *v)
{
	(void)h;
	ref_put(v->ref);
	v->ref = NULL;
	v->generation = 0;
}

void snaphold_info(struct snaphold *h, uint64_t *serial, uint64_t *created, uint64_t *loaded_at)
{
	pthread_mutex_lock(&h->lock);
	*serial = h->current ? snapshot_serial(h->current->snap) : 0;
	*created = h->current ? snapshot_created(h->current->snap) : 0;
	pthread_mutex_unlock(&h->lock);
	*loaded_at = atomic_load(&h->loaded_at);
}
