/* snaphold.c -- publish/acquire of immutable policy snapshots. */
#include "snaphold.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

struct snapref {
	struct snapshot *snap;
	atomic_uint refs;
};

struct snaphold {
	pthread_mutex_t lock;          /* guards current, base and the reference counts' 0 -> 1 */
	struct snapref *current;
	struct snapshot *base;         /* the newest feed base this node has; a reference */
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
	snapshot_close(h->base);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void snaphold_publish(struct snaphold *h, struct snapshot *s)
{
	struct snapref *r = snapshot_is_complete(s) ? malloc(sizeof *r) : NULL;
	if (!r) {
		/* An overlay without its base would let every feed name through. */
		log_err("snapshot_publish_failed", "error=\"%s\"",
			snapshot_is_complete(s) ? "out of memory" : "its feed base is not attached");
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

void snaphold_keep_base(struct snaphold *h, struct snapshot *base)
{
	pthread_mutex_lock(&h->lock);
	struct snapshot *old = h->base;
	h->base = base;
	pthread_mutex_unlock(&h->lock);
	snapshot_close(old);
}

int snaphold_join_base(struct snaphold *h, struct snapshot *s, char *err, size_t errlen)
{
	const uint8_t *want = snapshot_base_checksum(s);
	if (!want)
		return 0;
	pthread_mutex_lock(&h->lock);
	int rc = h->base && memcmp(snapshot_checksum(h->base), want, 32) == 0
			 ? snapshot_attach_base(s, h->base, err, errlen)
			 : 1;
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* The base an overlay file names: the one held, else the file beside it. */
static int join_base_file(struct snaphold *h, struct snapshot *s, const char *path, char *err,
			  size_t errlen)
{
	int rc = snaphold_join_base(h, s, err, errlen);
	if (rc != 1)
		return rc;
	char base_path[4200];
	snapshot_base_path(path, snapshot_base_checksum(s), base_path, sizeof base_path);
	struct snapshot *base = snapshot_open(base_path, err, errlen);
	if (!base)
		return -(errno ? errno : EINVAL);
	if ((rc = snapshot_attach_base(s, base, err, errlen)) < 0) {
		snapshot_close(base);
		return rc;
	}
	log_info("snapshot_base_loaded", "path=%s serial=%llu names=%llu", base_path,
		 (unsigned long long)snapshot_serial(base),
		 (unsigned long long)snapshot_name_count(base));
	snaphold_keep_base(h, base);
	return 0;
}

int snaphold_load_file(struct snaphold *h, const char *path)
{
	char err[256], quoted[300];
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	if (s && join_base_file(h, s, path, err, sizeof err) < 0) {
		size_t n = strlen(err);
		snprintf(err + n, sizeof err - n, " (its feed base)");
		snapshot_close(s);
		s = NULL;
	}
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
