/* dircache.c - the attributes of directories this mount just changed.
 *
 * A direct-mapped table: the directories being changed at one moment are
 * few (one per process creating or removing files), and a collision only
 * costs the GETATTR round trip the cache saves. */
#include "dircache.h"

#include <pthread.h>
#include <stdlib.h>

#define SLOTS 64

struct slot {
	struct pifs_attr attr; /* attr.ino 0: empty */
	int64_t put_ns;
};

struct pifs_dircache {
	pthread_mutex_t mu;
	int64_t ttl_ns;
	struct slot slot[SLOTS];
};

struct pifs_dircache *pifs_dircache_new(int64_t ttl_ns)
{
	struct pifs_dircache *dc = calloc(1, sizeof(*dc));

	if (!dc)
		return NULL;
	pthread_mutex_init(&dc->mu, NULL);
	dc->ttl_ns = ttl_ns;
	return dc;
}

void pifs_dircache_free(struct pifs_dircache *dc)
{
	if (!dc)
		return;
	pthread_mutex_destroy(&dc->mu);
	free(dc);
}

static struct slot *slot_of(struct pifs_dircache *dc, uint64_t ino)
{
	return &dc->slot[ino % SLOTS];
}

void pifs_dircache_put(struct pifs_dircache *dc, const struct pifs_attr *a, int64_t now_ns)
{
	struct slot *s;

	if (a->ino == 0)
		return;
	s = slot_of(dc, a->ino);
	pthread_mutex_lock(&dc->mu);
	/* Two threads' replies may come back in either order: the later
	 * state has the later ctime (the service's stamps only go up). */
	if (s->attr.ino != a->ino || a->ctime >= s->attr.ctime) {
		s->attr = *a;
		s->put_ns = now_ns;
	}
	pthread_mutex_unlock(&dc->mu);
}

bool pifs_dircache_take(struct pifs_dircache *dc, uint64_t ino, int64_t now_ns,
			struct pifs_attr *a, int64_t *left_ns)
{
	struct slot *s = slot_of(dc, ino);
	bool hit = false;

	pthread_mutex_lock(&dc->mu);
	if (ino != 0 && s->attr.ino == ino) {
		int64_t age = now_ns - s->put_ns;

		if (age >= 0 && age < dc->ttl_ns) {
			*a = s->attr;
			*left_ns = dc->ttl_ns - age;
			hit = true;
		}
		s->attr.ino = 0;
	}
	pthread_mutex_unlock(&dc->mu);
	return hit;
}

void pifs_dircache_drop(struct pifs_dircache *dc, uint64_t ino)
{
	struct slot *s = slot_of(dc, ino);

	pthread_mutex_lock(&dc->mu);
	if (s->attr.ino == ino)
		s->attr.ino = 0;
	pthread_mutex_unlock(&dc->mu);
}
