/* cache.c - the chunk cache: a hash table, an LRU list, single-flight loads. */
#include "cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024

enum { LOADING, READY, FAILED };

struct pifs_ccache {
	pthread_mutex_t mu;
	pthread_cond_t loaded;
	uint64_t cap, bytes;
	struct pifs_centry *buckets[NBUCKETS];
	struct pifs_centry lru; /* sentinel: lnext is the most recently used */
};

struct pifs_ccache *pifs_ccache_new(uint64_t cap)
{
	struct pifs_ccache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->loaded, NULL);
	c->cap = cap;
	c->lru.lnext = c->lru.lprev = &c->lru;
	return c;
}

static void entry_free(struct pifs_centry *e)
{
	free(e->data);
	free(e);
}

void pifs_ccache_free(struct pifs_ccache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct pifs_centry *e = c->buckets[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			entry_free(e);
		}
	}
	pthread_cond_destroy(&c->loaded);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

static size_t bucket_of(const struct pifs_chunk_id *id)
{
	return (size_t)(id->lo ^ (id->hi >> 17)) & (NBUCKETS - 1);
}

static struct pifs_centry *find(struct pifs_ccache *c, const struct pifs_chunk_id *id)
{
	struct pifs_centry *e = c->buckets[bucket_of(id)];

	while (e && !pifs_chunk_id_eq(&e->id, id))
		e = e->hnext;
	return e;
}

static void lru_unlink(struct pifs_centry *e)
{
	if (!e->lnext)
		return;
	e->lprev->lnext = e->lnext;
	e->lnext->lprev = e->lprev;
	e->lprev = e->lnext = NULL;
}

static void lru_push_front(struct pifs_ccache *c, struct pifs_centry *e)
{
	lru_unlink(e);
	e->lnext = c->lru.lnext;
	e->lprev = &c->lru;
	c->lru.lnext->lprev = e;
	c->lru.lnext = e;
}

/* Take @e out of the table and the LRU list; it is freed by its last
 * release, or now when nobody holds it. */
static void detach(struct pifs_ccache *c, struct pifs_centry *e)
{
	struct pifs_centry **pp = &c->buckets[bucket_of(&e->id)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	e->hnext = NULL;
	e->in_table = false;
	lru_unlink(e);
	if (e->state == READY)
		c->bytes -= e->len;
	if (e->refs == 0)
		entry_free(e);
}

static void evict(struct pifs_ccache *c)
{
	while (c->bytes > c->cap && c->lru.lprev != &c->lru)
		detach(c, c->lru.lprev);
}

static struct pifs_centry *reserve_locked(struct pifs_ccache *c, const struct pifs_chunk_id *id)
{
	struct pifs_centry *e = calloc(1, sizeof(*e));
	size_t b = bucket_of(id);

	if (!e)
		return NULL;
	e->id = *id;
	e->refs = 1;
	e->state = LOADING;
	e->in_table = true;
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	return e;
}

int pifs_ccache_lookup(struct pifs_ccache *c, const struct pifs_chunk_id *id,
		       struct pifs_centry **out)
{
	struct pifs_centry *e;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	e = find(c, id);
	if (!e) {
		e = reserve_locked(c, id);
		rc = e ? 1 : -ENOMEM;
		*out = e;
		goto out_unlock;
	}
	e->refs++;
	while (e->state == LOADING)
		pthread_cond_wait(&c->loaded, &c->mu);
	if (e->state == FAILED) {
		rc = e->err;
		if (--e->refs == 0 && !e->in_table)
			entry_free(e);
		goto out_unlock;
	}
	if (e->in_table)
		lru_push_front(c, e);
	*out = e;
out_unlock:
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int pifs_ccache_reserve(struct pifs_ccache *c, const struct pifs_chunk_id *id,
			struct pifs_centry **out)
{
	struct pifs_centry *e;
	int rc = 0;

	*out = NULL;
	pthread_mutex_lock(&c->mu);
	if (!find(c, id)) {
		e = reserve_locked(c, id);
		rc = e ? 1 : -ENOMEM;
		*out = e;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void pifs_ccache_fill(struct pifs_ccache *c, struct pifs_centry *e, uint8_t *data, uint32_t len)
{
	pthread_mutex_lock(&c->mu);
	e->data = data;
	e->len = len;
	e->state = READY;
	if (e->in_table) {
		c->bytes += len;
		lru_push_front(c, e);
		evict(c);
	}
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->mu);
}

void pifs_ccache_fail(struct pifs_ccache *c, struct pifs_centry *e, int err)
{
	pthread_mutex_lock(&c->mu);
	e->err = err < 0 ? err : -EIO;
	if (e->in_table)
		detach(c, e);
	e->state = FAILED;
	pthread_cond_broadcast(&c->loaded);
	pthread_mutex_unlock(&c->mu);
}

void pifs_ccache_hold(struct pifs_ccache *c, struct pifs_centry *e)
{
	pthread_mutex_lock(&c->mu);
	e->refs++;
	pthread_mutex_unlock(&c->mu);
}

int pifs_ccache_wait(struct pifs_ccache *c, struct pifs_centry *e)
{
	int rc;

	pthread_mutex_lock(&c->mu);
	while (e->state == LOADING)
		pthread_cond_wait(&c->loaded, &c->mu);
	rc = e->state == READY ? 0 : e->err;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void pifs_ccache_release(struct pifs_ccache *c, struct pifs_centry *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&c->mu);
	if (--e->refs == 0 && !e->in_table)
		entry_free(e);
	pthread_mutex_unlock(&c->mu);
}

uint64_t pifs_ccache_bytes(struct pifs_ccache *c)
{
	uint64_t n;

	pthread_mutex_lock(&c->mu);
	n = c->bytes;
	pthread_mutex_unlock(&c->mu);
	return n;
}

bool pifs_ccache_contains(struct pifs_ccache *c, const struct pifs_chunk_id *id)
{
	struct pifs_centry *e;
	bool yes;

	pthread_mutex_lock(&c->mu);
	e = find(c, id);
	yes = e && e->state == READY;
	pthread_mutex_unlock(&c->mu);
	return yes;
}
