/* data.c - file data of a mount: write buffers, uploads, reads, commits.
 *
 * Locks, always taken in this order: a file's flush_mu, the file's mu, the
 * table's tmu, then the queue locks (qmu, pmu). Nobody holds a file's mu
 * while it waits for the network or for upload credit. */
#include "data.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "rpc.h"
#include "wbuf.h"

#define NBUCKETS 256
#define NSEEN 4096
#define UPLOADERS 4
#define FETCHERS 2
#define PREFETCH_AHEAD 4
#define PREFETCH_QUEUE 8
/* A chunk this small (a small file's only chunk) is fetched by the thread
 * that needs it: the hand-off to a fetcher costs two thread switches, a
 * good part of a small file's cold read, and its memory does not matter. */
#define INLINE_FETCH_MAX (256u << 10)
#define UPLOAD_BUDGET (16u << 20) /* bytes of buffers queued or in flight */
#define DIRTY_PER_FILE (8u << 20) /* bytes of unsealed buffers per inode */
#define MAX_OFFSET ((uint64_t)INT64_MAX)
/* Garbage collection (docs/design.md) may delete a chunk that no file
 * references once it was last uploaded gc_grace ago (an hour by default).
 * A client therefore commits what it uploaded within COMMIT_INTERVAL_MS of
 * the upload: a file written for a long time, or left open after writing,
 * commits the chunks uploaded so far in steps, COMMIT_STEP_MS after the
 * oldest of them was stored. A chunk older than COMMIT_INTERVAL_MS when it
 * is committed (the metadata service was down meanwhile) is first looked
 * for on the nodes: a reference to a chunk that is gone is never committed. */
#define COMMIT_INTERVAL_MS 30000
#define COMMIT_STEP_MS 10000
#define COMMITTER_TICK_MS 1000

/* A chunk-sized write buffer; once sealed it is also the upload job. */
struct dbuf {
	struct pifs_wbuf w;
	struct pifs_file *f;
	uint64_t index;
	uint64_t gen;
	struct dbuf *next; /* in the upload queue */
};

/* One chunk slot of a file with any state. */
struct slot {
	uint64_t index;
	struct pifs_chunkref com;  /* committed; a zero id is none */
	struct pifs_chunkref pend; /* stored, not committed yet; a zero id is none */
	int64_t pend_ms;	   /* when @pend was stored */
	struct dbuf *buf;	   /* dirty or, when @sealed, being uploaded */
	bool sealed;
	uint64_t touch;
};

/* A chunk stored since the last fsync, and where. */
struct unsynced {
	struct pifs_chunk_id id;
	uint32_t nodes[PIFS_CLUSTER_MAX_CHAIN];
	size_t n;
};

struct pifs_file {
	uint64_t ino;
	int refs, opens;	 /* under the table's tmu */
	struct pifs_file *hnext; /* under tmu */

	pthread_mutex_t flush_mu; /* one flush at a time */
	pthread_mutex_t mu;	  /* everything below */
	pthread_cond_t cond;	  /* an upload of this file ended */
	struct pifs_attr attr;	  /* the server's last word */
	uint64_t size;
	int64_t mtime;
	bool changed; /* written since the last commit */
	uint64_t wgen, gen, tick;
	int err;	   /* sticky error of a failed upload */
	bool warned_short; /* said once that a chunk is short of copies */
	int ndirty, uploads;
	struct slot *slots; /* sorted by index; @nslots of @capslots */
	size_t nslots, capslots;
	struct unsynced *uns;
	size_t nuns, capuns;
	uint64_t read_next, pf_next;
};

/* A chunk to load into its reserved cache entry; the job holds a reference. */
struct fjob {
	struct pifs_centry *e;
	bool prefetch;
	struct fjob *next;
};

struct seen {
	uint64_t ino, version;
};

struct pifs_data {
	struct pifs_cluster *cl;
	struct pifs_ccache *cache;
	uint32_t cs;
	uint64_t cache_bytes;
	int max_dirty;
	uint64_t budget;

	pthread_mutex_t tmu;
	struct pifs_file *table[NBUCKETS];
	struct seen seen[NSEEN];

	pthread_mutex_t qmu;
	pthread_cond_t qcond, bcond;
	struct dbuf *qhead, *qtail;
	uint64_t qbytes;
	bool stop;
	pthread_t up[UPLOADERS];
	int n_up;

	/* Every chunk fetch goes through the few fetcher threads, demand
	 * loads before prefetches: a fetch in flight holds a frame and its
	 * decoded bytes, up to two chunks, so the thread count bounds that
	 * memory. Sockets drop a reply once it is decoded, so an idle thread
	 * pins nothing. Two fetchers keep a Gigabit link busy with 4 MiB
	 * chunks (PREFETCH_AHEAD chunks are queued ahead); four read no
	 * faster on the emulated switch (bench/), and more nodes sending to
	 * one client at once only overflow its switch port (TCP retransmits
	 * went from ~900 to ~1,900 per 256 MiB read). */
	pthread_mutex_t pmu;
	pthread_cond_t pcond;
	struct fjob *fhead, *ftail;
	int n_prefetch;
	bool pstop;
	pthread_t pf[FETCHERS];
	int n_pf;

	/* The committer commits the chunks of files that are being written
	 * for long (COMMIT_STEP_MS). */
	pthread_cond_t ccond; /* under qmu: wakes it for the stop */
	pthread_t committer;
	bool has_committer;
};

static void *committer(void *arg);

static bool id_zero(const struct pifs_chunkref *r)
{
	return pifs_chunk_id_is_zero(&r->id);
}

/* ---- slots ---- */

static size_t slot_pos(const struct pifs_file *f, uint64_t index)
{
	size_t lo = 0, hi = f->nslots;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->slots[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct slot *slot_find(struct pifs_file *f, uint64_t index)
{
	size_t i = slot_pos(f, index);

	return i < f->nslots && f->slots[i].index == index ? &f->slots[i] : NULL;
}

static struct slot *slot_add(struct pifs_file *f, uint64_t index)
{
	size_t i = slot_pos(f, index);

	if (i < f->nslots && f->slots[i].index == index)
		return &f->slots[i];
	if (f->nslots == f->capslots) {
		size_t cap = f->capslots ? f->capslots * 2 : 16;
		struct slot *s = realloc(f->slots, cap * sizeof(*s));

		if (!s)
			return NULL;
		f->slots = s;
		f->capslots = cap;
	}
	memmove(&f->slots[i + 1], &f->slots[i], (f->nslots - i) * sizeof(*f->slots));
	f->nslots++;
	memset(&f->slots[i], 0, sizeof(*f->slots));
	f->slots[i].index = index;
	return &f->slots[i];
}

/* The bytes a read of slot @s sees when it has no buffer. */
static const struct pifs_chunkref *slot_base(const struct slot *s)
{
	if (!s)
		return NULL;
	if (!id_zero(&s->pend))
		return &s->pend;
	if (!id_zero(&s->com))
		return &s->com;
	return NULL;
}

static bool has_local(const struct pifs_file *f)
{
	if (f->changed || f->ndirty || f->uploads)
		return true;
	for (size_t i = 0; i < f->nslots; i++)
		if (!id_zero(&f->slots[i].pend))
			return true;
	return false;
}

static uint32_t min_u32(uint64_t a, uint64_t b)
{
	return (uint32_t)(a < b ? a : b);
}

/* ---- the chunk cache ---- */

/* Queue a load; demand loads go before prefetches. Returns false when the
 * queue is closed. */
static bool fetch_push(struct pifs_data *d, struct fjob *j)
{
	bool ok;

	pthread_mutex_lock(&d->pmu);
	ok = !d->pstop;
	if (ok && j->prefetch) {
		j->next = NULL;
		if (d->ftail)
			d->ftail->next = j;
		else
			d->fhead = j;
		d->ftail = j;
		d->n_prefetch++;
	} else if (ok) {
		j->next = d->fhead;
		d->fhead = j;
		if (!d->ftail)
			d->ftail = j;
	}
	pthread_cond_signal(&d->pcond);
	pthread_mutex_unlock(&d->pmu);
	return ok;
}

static void fetch_run(struct pifs_data *d, struct pifs_centry *e)
{
	uint8_t *raw;
	uint32_t len;
	int rc = pifs_cluster_get(d->cl, &e->id, &raw, &len);

	if (rc < 0)
		pifs_ccache_fail(d->cache, e, rc);
	else
		pifs_ccache_fill(d->cache, e, raw, len);
}

/* A reference to the raw bytes of chunk @ref, from the cache or the nodes. */
static int chunk_acquire(struct pifs_data *d, const struct pifs_chunkref *ref,
			 struct pifs_centry **out)
{
	const struct pifs_chunk_id *id = &ref->id;
	struct pifs_centry *e;
	struct fjob *j;
	bool small;
	int rc;

	rc = pifs_ccache_lookup(d->cache, id, &e);
	if (rc == 0) {
		*out = e;
		return 0;
	}
	if (rc < 0)
		return rc == -ENOMEM ? rc : -EIO;
	/* This thread reserved the entry: a fetcher loads it, or this thread
	 * when the chunk is small. */
	small = ref->len <= INLINE_FETCH_MAX && ref->raw_len <= INLINE_FETCH_MAX;
	j = small ? NULL : calloc(1, sizeof(*j));
	if (j) {
		pifs_ccache_hold(d->cache, e);
		j->e = e;
		if (!fetch_push(d, j)) {
			pifs_ccache_release(d->cache, e);
			free(j);
			j = NULL;
		}
	}
	if (!j)
		fetch_run(d, e);
	rc = pifs_ccache_wait(d->cache, e);
	if (rc < 0) {
		pifs_ccache_release(d->cache, e);
		return rc == -ENOMEM ? rc : -EIO;
	}
	*out = e;
	return 0;
}

/* ---- the file table ---- */

static struct pifs_file *table_find(struct pifs_data *d, uint64_t ino)
{
	struct pifs_file *f = d->table[ino % NBUCKETS];

	while (f && f->ino != ino)
		f = f->hnext;
	return f;
}

static void file_free(struct pifs_file *f)
{
	for (size_t i = 0; i < f->nslots; i++) {
		if (f->slots[i].buf) {
			pifs_wbuf_fini(&f->slots[i].buf->w);
			free(f->slots[i].buf);
		}
	}
	free(f->slots);
	free(f->uns);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->mu);
	pthread_mutex_destroy(&f->flush_mu);
	free(f);
}

static void file_get(struct pifs_data *d, struct pifs_file *f)
{
	pthread_mutex_lock(&d->tmu);
	f->refs++;
	pthread_mutex_unlock(&d->tmu);
}

void pifs_data_put(struct pifs_data *d, struct pifs_file *f)
{
	struct pifs_file **pp;

	if (!f)
		return;
	pthread_mutex_lock(&d->tmu);
	if (--f->refs > 0) {
		pthread_mutex_unlock(&d->tmu);
		return;
	}
	pp = &d->table[f->ino % NBUCKETS];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	pthread_mutex_unlock(&d->tmu);
	file_free(f);
}

struct pifs_file *pifs_data_find(struct pifs_data *d, uint64_t ino)
{
	struct pifs_file *f;

	pthread_mutex_lock(&d->tmu);
	f = table_find(d, ino);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&d->tmu);
	return f;
}

static void seen_set(struct pifs_data *d, uint64_t ino, uint64_t version)
{
	pthread_mutex_lock(&d->tmu);
	d->seen[ino % NSEEN].ino = ino;
	d->seen[ino % NSEEN].version = version;
	pthread_mutex_unlock(&d->tmu);
}

/* ---- uploads ---- */

/* Hand the dirty buffer of @s to the upload pool. Called with f->mu held. */
static void seal(struct pifs_data *d, struct pifs_file *f, struct slot *s)
{
	struct dbuf *b = s->buf;

	s->sealed = true;
	f->ndirty--;
	f->uploads++;
	file_get(d, f);
	b->f = f;
	b->next = NULL;
	pthread_mutex_lock(&d->qmu);
	if (d->qtail)
		d->qtail->next = b;
	else
		d->qhead = b;
	d->qtail = b;
	d->qbytes += b->w.cap;
	pthread_cond_signal(&d->qcond);
	pthread_mutex_unlock(&d->qmu);
}

/* Wait while more than the budget of buffers is queued or in flight, so a
 * fast writer cannot fill the memory. Called without locks. */
static void budget_wait(struct pifs_data *d)
{
	pthread_mutex_lock(&d->qmu);
	while (d->qbytes > d->budget && !d->stop)
		pthread_cond_wait(&d->bcond, &d->qmu);
	pthread_mutex_unlock(&d->qmu);
}

/* Put the old chunk under the written extent of slot @index's buffer.
 * Called with f->mu held; drops it while the chunk is fetched. */
static int merge_slot(struct pifs_data *d, struct pifs_file *f, uint64_t index)
{
	struct slot *s = slot_find(f, index);
	const struct pifs_chunkref *base;
	struct pifs_chunkref ref;
	struct pifs_centry *e;
	uint64_t gen;
	int rc;

	if (!s || !s->buf || s->buf->w.merged)
		return 0;
	base = slot_base(s);
	if (!base)
		return pifs_wbuf_merge(&s->buf->w, NULL, 0);
	ref = *base;
	gen = s->buf->gen;
	pthread_mutex_unlock(&f->mu);
	rc = chunk_acquire(d, &ref, &e);
	pthread_mutex_lock(&f->mu);
	if (rc < 0)
		return rc;
	s = slot_find(f, index);
	if (s && s->buf && s->buf->gen == gen)
		rc = pifs_wbuf_merge(&s->buf->w, e->data, min_u32(min_u32(ref.len, e->len), d->cs));
	pifs_ccache_release(d->cache, e);
	return rc;
}

static int unsynced_add(struct pifs_file *f, const struct pifs_cluster_put *res)
{
	if (f->nuns == f->capuns) {
		size_t cap = f->capuns ? f->capuns * 2 : 16;
		struct unsynced *u = realloc(f->uns, cap * sizeof(*u));

		if (!u)
			return -ENOMEM;
		f->uns = u;
		f->capuns = cap;
	}
	f->uns[f->nuns].id = res->id;
	memcpy(f->uns[f->nuns].nodes, res->nodes, res->n_nodes * sizeof(res->nodes[0]));
	f->uns[f->nuns].n = res->n_nodes;
	f->nuns++;
	return 0;
}

static void upload(struct pifs_data *d, struct dbuf *b)
{
	struct pifs_file *f = b->f;
	struct pifs_cluster_put res;
	uint64_t start = b->index * d->cs;
	struct slot *s;
	uint32_t used;
	int rc = 0;

	memset(&res, 0, sizeof(res));
	pthread_mutex_lock(&f->mu);
	used = f->size > start ? min_u32(d->cs, f->size - start) : 0;
	if (used && !pifs_wbuf_covers(&b->w, 0, used))
		rc = merge_slot(d, f, b->index);
	pthread_mutex_unlock(&f->mu);

	/* The buffer is sealed: writers wait for it and readers only read,
	 * so it is safe to use without the lock. */
	if (rc == 0 && used)
		rc = pifs_cluster_put(d->cl, b->w.data, used, 0, &res);

	pthread_mutex_lock(&f->mu);
	s = slot_find(f, b->index);
	if (rc == 0 && used && s) {
		s->pend.index = b->index;
		s->pend.id = res.id;
		s->pend.len = used;
		s->pend.raw_len = res.raw_len;
		s->pend.stored_len = res.stored_len;
		s->pend_ms = pifs_now_ms();
		rc = unsynced_add(f, &res);
		if (res.n_nodes < res.wanted && !f->warned_short) {
			f->warned_short = true;
			pifs_warn("chunk %" PRIu64 " of inode %" PRIu64 " has %zu of %" PRIu32
				  " copies; heal will add the missing one%s (this is said once per "
				  "file; 'getfattr -n user.pifs.status FILE' shows its health)",
				  b->index, f->ino, res.n_nodes, res.wanted,
				  res.wanted - res.n_nodes > 1 ? "s" : "");
		}
	}
	if (rc < 0) {
		if (!f->err)
			f->err = rc == -ENOSPC || rc == -ENOMEM ? rc : -EIO;
		pifs_err("inode %" PRIu64 ": cannot store chunk %" PRIu64 " of the file: %s; the "
			 "write fails and its data is lost: check 'pifs-admin status' for down or "
			 "full nodes",
			 f->ino, b->index, strerror(-rc));
	}
	if (s && s->buf == b) {
		s->buf = NULL;
		s->sealed = false;
	}
	f->uploads--;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->mu);

	pthread_mutex_lock(&d->qmu);
	d->qbytes -= b->w.cap;
	pthread_cond_broadcast(&d->bcond);
	pthread_mutex_unlock(&d->qmu);
	pifs_wbuf_fini(&b->w);
	free(b);
	pifs_data_put(d, f);
}

static void *uploader(void *arg)
{
	struct pifs_data *d = arg;
	struct dbuf *b;

	for (;;) {
		pthread_mutex_lock(&d->qmu);
		while (!d->qhead && !d->stop)
			pthread_cond_wait(&d->qcond, &d->qmu);
		b = d->qhead;
		if (b) {
			d->qhead = b->next;
			if (!d->qhead)
				d->qtail = NULL;
		}
		pthread_mutex_unlock(&d->qmu);
		if (!b)
			return NULL;
		upload(d, b);
	}
}

/* ---- fetchers ---- */

static void prefetch_queue(struct pifs_data *d, const struct pifs_chunk_id *ids, int n)
{
	for (int i = 0; i < n; i++) {
		struct pifs_centry *e;
		struct fjob *j;
		bool room;

		pthread_mutex_lock(&d->pmu);
		room = d->n_prefetch < PREFETCH_QUEUE;
		pthread_mutex_unlock(&d->pmu);
		/* A chunk cached or being loaded already needs nothing. */
		if (!room || pifs_ccache_reserve(d->cache, &ids[i], &e) != 1)
			continue;
		j = calloc(1, sizeof(*j));
		if (j) {
			j->e = e;
			j->prefetch = true;
			if (fetch_push(d, j))
				continue;
			free(j);
		}
		pifs_ccache_fail(d->cache, e, -ENOMEM);
		pifs_ccache_release(d->cache, e);
	}
}

static void *fetcher(void *arg)
{
	struct pifs_data *d = arg;
	struct fjob *j;

	for (;;) {
		pthread_mutex_lock(&d->pmu);
		while (!d->fhead && !d->pstop)
			pthread_cond_wait(&d->pcond, &d->pmu);
		j = d->fhead;
		if (j) {
			d->fhead = j->next;
			if (!d->fhead)
				d->ftail = NULL;
			if (j->prefetch)
				d->n_prefetch--;
		}
		pthread_mutex_unlock(&d->pmu);
		if (!j)
			return NULL;
		fetch_run(d, j->e);
		pifs_ccache_release(d->cache, j->e);
		free(j);
	}
}

/* ---- life cycle ---- */

static void stop_workers(struct pifs_data *d)
{
	pthread_mutex_lock(&d->qmu);
	d->stop = true;
	pthread_cond_broadcast(&d->qcond);
	pthread_cond_broadcast(&d->bcond);
	pthread_cond_broadcast(&d->ccond);
	pthread_mutex_unlock(&d->qmu);
	pthread_mutex_lock(&d->pmu);
	d->pstop = true;
	pthread_cond_broadcast(&d->pcond);
	pthread_mutex_unlock(&d->pmu);
	for (int i = 0; i < d->n_up; i++)
		pthread_join(d->up[i], NULL);
	for (int i = 0; i < d->n_pf; i++)
		pthread_join(d->pf[i], NULL);
	if (d->has_committer)
		pthread_join(d->committer, NULL);
	d->n_up = d->n_pf = 0;
	d->has_committer = false;
}

int pifs_data_new(struct pifs_cluster *cl, uint64_t cache_bytes, struct pifs_data **out)
{
	struct pifs_data *d;
	int rc = 0;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cl = cl;
	d->cs = pifs_cluster_chunk_size(cl);
	if (d->cs == 0) {
		free(d);
		return -EINVAL;
	}
	d->cache_bytes = cache_bytes;
	d->max_dirty = (int)(DIRTY_PER_FILE / d->cs);
	if (d->max_dirty < 2)
		d->max_dirty = 2;
	d->budget = UPLOAD_BUDGET > 2ull * d->cs ? UPLOAD_BUDGET : 2ull * d->cs;
	d->cache = pifs_ccache_new(cache_bytes);
	if (!d->cache) {
		free(d);
		return -ENOMEM;
	}
	pthread_mutex_init(&d->tmu, NULL);
	pthread_mutex_init(&d->qmu, NULL);
	pthread_cond_init(&d->qcond, NULL);
	pthread_cond_init(&d->bcond, NULL);
	pthread_cond_init(&d->ccond, NULL);
	pthread_mutex_init(&d->pmu, NULL);
	pthread_cond_init(&d->pcond, NULL);
	for (int i = 0; i < UPLOADERS && rc == 0; i++) {
		rc = -pthread_create(&d->up[i], NULL, uploader, d);
		if (rc == 0)
			d->n_up++;
	}
	for (int i = 0; i < FETCHERS && rc == 0; i++) {
		rc = -pthread_create(&d->pf[i], NULL, fetcher, d);
		if (rc == 0)
			d->n_pf++;
	}
	if (rc == 0) {
		rc = -pthread_create(&d->committer, NULL, committer, d);
		d->has_committer = rc == 0;
	}
	if (rc < 0) {
		pifs_data_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void pifs_data_free(struct pifs_data *d)
{
	if (!d)
		return;
	/* The uploaders drain the queue before they see the stop. */
	pthread_mutex_lock(&d->qmu);
	while (d->qhead)
		pthread_cond_wait(&d->bcond, &d->qmu);
	pthread_mutex_unlock(&d->qmu);
	stop_workers(d);
	/* Handles the kernel never released (the session was stopped by a
	 * signal with files open) were flushed by then; free their state. */
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (d->table[b]) {
			struct pifs_file *f = d->table[b];

			d->table[b] = f->hnext;
			file_free(f);
		}
	}
	pifs_ccache_free(d->cache);
	pthread_cond_destroy(&d->pcond);
	pthread_mutex_destroy(&d->pmu);
	pthread_cond_destroy(&d->ccond);
	pthread_cond_destroy(&d->bcond);
	pthread_cond_destroy(&d->qcond);
	pthread_mutex_destroy(&d->qmu);
	pthread_mutex_destroy(&d->tmu);
	free(d);
}

/* ---- open and close ---- */

/* Replace the committed chunk list of @f by @refs. Called with f->mu held
 * on a state without local changes. */
static int load_refs(struct pifs_data *d, struct pifs_file *f, const struct pifs_list *refs)
{
	struct pifs_cursor cur;
	struct pifs_chunkref r;
	int rc;

	f->nslots = 0;
	pifs_cursor_init(&cur, refs);
	while ((rc = pifs_chunkref_next(&cur, &r)) == 1) {
		struct slot *s;

		if (id_zero(&r) || r.len > d->cs)
			continue;
		s = slot_add(f, r.index);
		if (!s)
			return -ENOMEM;
		s->com = r;
	}
	return rc;
}

int pifs_data_open(struct pifs_data *d, const struct pifs_attr *attr, const struct pifs_list *refs,
		   bool *keep_cache, struct pifs_file **out)
{
	struct pifs_file *f;
	bool seen;
	int rc = 0;

	*out = NULL;
	*keep_cache = false;
	pthread_mutex_lock(&d->tmu);
	f = table_find(d, attr->ino);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			pthread_mutex_unlock(&d->tmu);
			return -ENOMEM;
		}
		f->ino = attr->ino;
		f->attr = *attr;
		f->size = attr->size;
		f->mtime = attr->mtime;
		pthread_mutex_init(&f->flush_mu, NULL);
		pthread_mutex_init(&f->mu, NULL);
		pthread_cond_init(&f->cond, NULL);
		f->hnext = d->table[attr->ino % NBUCKETS];
		d->table[attr->ino % NBUCKETS] = f;
	}
	f->refs++;
	f->opens++;
	seen = d->seen[attr->ino % NSEEN].ino == attr->ino &&
	       d->seen[attr->ino % NSEEN].version == attr->version && attr->version != 0;
	pthread_mutex_unlock(&d->tmu);

	pthread_mutex_lock(&f->mu);
	if (!has_local(f)) {
		/* Close-to-open: a state without local changes takes the chunk
		 * list and size as the server has them now. */
		rc = load_refs(d, f, refs);
		f->attr = *attr;
		f->size = attr->size;
		f->mtime = attr->mtime;
		f->read_next = 0;
		f->pf_next = 0;
		*keep_cache = seen && rc == 0;
	}
	pthread_mutex_unlock(&f->mu);
	if (rc < 0) {
		pifs_data_release(d, f);
		return rc;
	}
	seen_set(d, attr->ino, attr->version);
	*out = f;
	return 0;
}

int pifs_data_release(struct pifs_data *d, struct pifs_file *f)
{
	bool local;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	local = has_local(f) || f->err;
	pthread_mutex_unlock(&f->mu);
	if (local) {
		rc = pifs_data_flush(d, f);
		if (rc < 0)
			pifs_err("inode %" PRIu64 ": data written through a handle closed now "
				 "could not be stored: %s",
				 f->ino, strerror(-rc));
	}
	pthread_mutex_lock(&d->tmu);
	f->opens--;
	pthread_mutex_unlock(&d->tmu);
	pifs_data_put(d, f);
	return rc;
}

/* ---- read and write ---- */

ssize_t pifs_data_read(struct pifs_data *d, struct pifs_file *f, void *buf, size_t size,
		       uint64_t off)
{
	struct pifs_chunk_id pf_ids[PREFETCH_AHEAD];
	uint8_t *out = buf;
	size_t done = 0;
	int rc = 0, npf = 0;
	uint64_t last;

	pthread_mutex_lock(&f->mu);
	if (off >= f->size || size == 0) {
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	if (size > f->size - off)
		size = f->size - off;
	while (done < size) {
		uint64_t pos = off + done, index = pos / d->cs;
		uint32_t o = (uint32_t)(pos % d->cs), n = min_u32(d->cs - o, size - done);
		struct slot *s = slot_find(f, index);
		const struct pifs_chunkref *base;
		struct pifs_chunkref ref;
		struct pifs_centry *e;

		if (s && s->buf) {
			if (pifs_wbuf_covers(&s->buf->w, o, n)) {
				pifs_wbuf_read(&s->buf->w, o, out + done, n);
				done += n;
			} else if (s->sealed) {
				/* Its uploader merges the old bytes in: wait for it. */
				pthread_cond_wait(&f->cond, &f->mu);
			} else {
				rc = merge_slot(d, f, index);
				if (rc < 0)
					break;
			}
			continue;
		}
		base = slot_base(s);
		if (!base) {
			memset(out + done, 0, n);
			done += n;
			continue;
		}
		ref = *base;
		pthread_mutex_unlock(&f->mu);
		rc = chunk_acquire(d, &ref, &e);
		if (rc == 0) {
			uint32_t valid = min_u32(ref.len, e->len);
			uint32_t have = o < valid ? min_u32(valid - o, n) : 0;

			memcpy(out + done, e->data + o, have);
			memset(out + done + have, 0, n - have);
			pifs_ccache_release(d->cache, e);
		}
		pthread_mutex_lock(&f->mu);
		if (rc < 0)
			break;
		done += n;
	}
	/* Sequential reads fetch the next chunks ahead, once each. */
	if (rc == 0 && d->cache_bytes >= (PREFETCH_AHEAD + 2ull) * d->cs &&
	    (off == 0 || (off <= f->read_next + d->cs && off + d->cs >= f->read_next))) {
		last = (off + size - 1) / d->cs;
		for (uint64_t i = last + 1; i <= last + PREFETCH_AHEAD; i++) {
			const struct pifs_chunkref *base = slot_base(slot_find(f, i));
			const struct slot *s = slot_find(f, i);

			if (i < f->pf_next || !base || (s && s->buf))
				continue;
			pf_ids[npf++] = base->id;
			f->pf_next = i + 1;
		}
	}
	f->read_next = off + size;
	pthread_mutex_unlock(&f->mu);
	if (npf)
		prefetch_queue(d, pf_ids, npf);
	return rc < 0 ? rc : (ssize_t)done;
}

/* Seal the least recently written dirty buffer of @f other than slot
 * @keep, to bound the dirty memory of one inode. Called with f->mu held. */
static void seal_oldest(struct pifs_data *d, struct pifs_file *f, uint64_t keep)
{
	struct slot *old = NULL;

	for (size_t i = 0; i < f->nslots; i++) {
		struct slot *s = &f->slots[i];

		if (s->buf && !s->sealed && s->index != keep && (!old || s->touch < old->touch))
			old = s;
	}
	if (old)
		seal(d, f, old);
}

ssize_t pifs_data_write(struct pifs_data *d, struct pifs_file *f, const void *buf, size_t size,
			uint64_t off, bool append)
{
	const uint8_t *in = buf;
	size_t done = 0;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (f->err) {
		rc = f->err;
		goto out_unlock;
	}
	if (append)
		off = f->size;
	if (off > MAX_OFFSET || size > MAX_OFFSET - off) {
		rc = -EFBIG;
		goto out_unlock;
	}
	while (done < size) {
		uint64_t pos = off + done, index = pos / d->cs;
		uint32_t o = (uint32_t)(pos % d->cs), n = min_u32(d->cs - o, size - done);
		struct slot *s = slot_add(f, index);

		if (!s) {
			rc = -ENOMEM;
			break;
		}
		if (s->buf && s->sealed) {
			/* The slot's last buffer is still uploading: the new one
			 * must build on what that upload stores. */
			pthread_cond_wait(&f->cond, &f->mu);
			continue;
		}
		if (!s->buf) {
			struct dbuf *b;

			if (f->ndirty >= d->max_dirty)
				seal_oldest(d, f, index);
			b = calloc(1, sizeof(*b));
			if (!b || pifs_wbuf_init(&b->w, d->cs) < 0) {
				free(b);
				rc = -ENOMEM;
				break;
			}
			b->index = index;
			b->gen = ++f->gen;
			s->buf = b;
			s->sealed = false;
			f->ndirty++;
		}
		if (!pifs_wbuf_can_write(&s->buf->w, o, n)) {
			rc = merge_slot(d, f, index);
			if (rc < 0)
				break;
			continue;
		}
		rc = pifs_wbuf_write(&s->buf->w, o, in + done, n);
		if (rc < 0)
			break;
		s->touch = ++f->tick;
		done += n;
		if (pos + n > f->size)
			f->size = pos + n;
		f->changed = true;
		if (s->buf->w.hi == d->cs)
			seal(d, f, s);
	}
	if (done) {
		f->mtime = pifs_now_ns();
		f->wgen++;
	}
out_unlock:
	pthread_mutex_unlock(&f->mu);
	if (done)
		budget_wait(d);
	return done ? (ssize_t)done : rc;
}

/* ---- flush, fsync, truncate ---- */

/* Chunk @index of @f, stored long ago, was found on no node that answered.
 * With every node answering it is gone: the file fails (sticky -EIO).
 * Called with f->mu held. */
static void stale_gone(struct pifs_file *f, uint64_t index, bool silent)
{
	if (silent) {
		pifs_warn("inode %" PRIu64 ": chunk %" PRIu64 " of the file was stored over %d s "
			  "ago and no node that answered holds it; its commit waits for every node "
			  "to answer ('pifs-admin status' shows which is down)",
			  f->ino, index, COMMIT_INTERVAL_MS / 1000);
		return;
	}
	f->err = -EIO;
	pifs_err("inode %" PRIu64 ": chunk %" PRIu64 " of the file was stored over %d s ago and "
		 "is on no node now (garbage collection may have taken it while the metadata "
		 "service could not be reached); the file is not committed and its writes fail: "
		 "write it again",
		 f->ino, index, COMMIT_INTERVAL_MS / 1000);
}

/* Before a commit names chunks stored longer than COMMIT_INTERVAL_MS ago
 * (the metadata service was down meanwhile), make sure a node still holds
 * each: garbage collection may have taken one that stayed unreferenced too
 * long, and a file must never point at a chunk that is gone. Called with
 * f->mu held; drops it while the nodes answer. Returns 0; -EIO when a chunk
 * is gone (the file's sticky error then) or when a node that did not answer
 * may hold the only copy (the next commit asks again); or -ENOMEM. */
static int check_stale(struct pifs_data *d, struct pifs_file *f)
{
	int64_t now = pifs_now_ms();
	struct pifs_cluster_has h;
	struct pifs_chunk_id *ids;
	uint64_t *index;
	size_t n = 0, k = 0;
	int rc = 0;

	for (size_t i = 0; i < f->nslots; i++)
		if (!id_zero(&f->slots[i].pend) && now - f->slots[i].pend_ms > COMMIT_INTERVAL_MS)
			n++;
	if (n == 0)
		return 0;
	ids = malloc(n * sizeof(*ids));
	index = malloc(n * sizeof(*index));
	if (!ids || !index) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (size_t i = 0; i < f->nslots && k < n; i++) {
		if (!id_zero(&f->slots[i].pend) && now - f->slots[i].pend_ms > COMMIT_INTERVAL_MS) {
			index[k] = f->slots[i].index;
			ids[k++] = f->slots[i].pend.id;
		}
	}
	pthread_mutex_unlock(&f->mu);
	rc = pifs_cluster_has(d->cl, ids, n, &h);
	pthread_mutex_lock(&f->mu);
	if (rc < 0)
		goto out_free;
	for (size_t c = 0; c < n && rc == 0; c++) {
		bool held = false, silent = false;

		for (size_t i = 0; i < h.nnodes; i++) {
			held = held || (!h.err[i] && h.have[i * n + c]);
			silent = silent || h.err[i];
		}
		if (held)
			continue;
		rc = -EIO;
		stale_gone(f, index[c], silent);
	}
	pifs_cluster_has_fini(&h);
out_free:
	free(index);
	free(ids);
	return rc;
}

/* The size that the chunks stored so far cover: up to the first slot still
 * buffered, and never less than the server's size, which a commit of part
 * of a write must not cut. Called with f->mu held. */
static uint64_t covered_size(struct pifs_data *d, const struct pifs_file *f)
{
	uint64_t size = f->size, old = f->attr.size < f->size ? f->attr.size : f->size;

	for (size_t i = 0; i < f->nslots; i++) {
		if (f->slots[i].buf) {
			if (f->slots[i].index * d->cs < size)
				size = f->slots[i].index * d->cs;
			break;
		}
	}
	return size > old ? size : old;
}

/* COMMIT the chunks of @f stored and not committed yet. @final: every
 * buffer is uploaded; commit the size and a new mtime, after which the file
 * is clean. Otherwise it is a step of a long write: the size its stored
 * chunks cover and the mtime so far. Called with flush_mu and f->mu held;
 * drops f->mu while the services answer. Returns 0 or -errno. */
static int commit_locked(struct pifs_data *d, struct pifs_file *f, bool final)
{
	struct pifs_msg req, rep;
	struct pifs_buf lb;
	uint32_t count = 0;
	uint64_t wgen, size;
	int64_t mtime;
	int rc;

	rc = check_stale(d, f);
	if (rc < 0)
		return rc;
	pifs_buf_init(&lb);
	for (size_t i = 0; i < f->nslots && rc == 0; i++) {
		if (id_zero(&f->slots[i].pend))
			continue;
		rc = pifs_chunkref_append(&lb, &f->slots[i].pend);
		count++;
	}
	if (rc < 0 || (count == 0 && (!final || !f->changed)))
		goto out_buf;
	wgen = f->wgen;
	size = final ? f->size : covered_size(d, f);
	mtime = final ? pifs_now_ns() : f->mtime;
	pthread_mutex_unlock(&f->mu);

	pifs_msg_init(&req, PIFS_MSG_COMMIT);
	req.u.COMMIT.ino = f->ino;
	req.u.COMMIT.size = size;
	req.u.COMMIT.mtime = mtime;
	req.u.COMMIT.refs = pifs_list_of(&lb, count);
	rc = pifs_cluster_meta_call(d->cl, &req, &rep);
	if (rc == -ENOENT) {
		/* Unlinked while open: nobody can reach the data any more, and
		 * this handle keeps reading what it wrote until it closes. */
		rc = 0;
	}

	pthread_mutex_lock(&f->mu);
	if (rc == 0) {
		struct pifs_cursor cur;
		struct pifs_chunkref r;

		pifs_cursor_init(&cur, &req.u.COMMIT.refs);
		while (pifs_chunkref_next(&cur, &r) == 1) {
			struct slot *s = slot_find(f, r.index);

			if (s && pifs_chunk_id_eq(&s->pend.id, &r.id)) {
				s->com = s->pend;
				memset(&s->pend, 0, sizeof(s->pend));
			}
		}
		if (rep.type == PIFS_MSG_R_ATTR)
			f->attr = rep.u.R_ATTR.attr;
		if (final) {
			if (f->wgen == wgen)
				f->changed = false;
			f->mtime = mtime;
		}
	} else if (final) {
		pifs_err("inode %" PRIu64 ": cannot commit %" PRIu32 " chunk(s) and size %" PRIu64
			 " at the metadata service %s: %s",
			 f->ino, count, size, pifs_cluster_meta_name(d->cl), strerror(-rc));
	} else {
		pifs_warn("inode %" PRIu64 ": cannot commit the %" PRIu32 " chunk(s) written so "
			  "far at the metadata service %s: %s; trying again in %d s and at close",
			  f->ino, count, pifs_cluster_meta_name(d->cl), strerror(-rc),
			  COMMIT_STEP_MS / 1000);
	}
out_buf:
	pifs_buf_fini(&lb);
	if (count)
		seen_set(d, f->ino, 0);
	return rc;
}

int pifs_data_flush(struct pifs_data *d, struct pifs_file *f)
{
	int rc;

	pthread_mutex_lock(&f->flush_mu);
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->nslots; i++)
		if (f->slots[i].buf && !f->slots[i].sealed)
			seal(d, f, &f->slots[i]);
	while (f->uploads > 0)
		pthread_cond_wait(&f->cond, &f->mu);
	rc = f->err ? f->err : commit_locked(d, f, true);
	pthread_mutex_unlock(&f->mu);
	pthread_mutex_unlock(&f->flush_mu);
	return rc;
}

/* Commit the stored chunks of every open file whose oldest uncommitted
 * chunk was stored COMMIT_STEP_MS ago or more. A file being flushed is
 * skipped: its flush commits them. */
static void commit_due(struct pifs_data *d)
{
	struct pifs_file **list = NULL;
	int64_t now = pifs_now_ms();
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&d->tmu);
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (struct pifs_file *f = d->table[b]; f; f = f->hnext) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct pifs_file **l = realloc(list, ncap * sizeof(*l));

				if (!l)
					goto out_unlock;
				list = l;
				cap = ncap;
			}
			f->refs++;
			list[n++] = f;
		}
	}
out_unlock:
	pthread_mutex_unlock(&d->tmu);
	for (size_t i = 0; i < n; i++) {
		struct pifs_file *f = list[i];
		bool due = false;

		if (pthread_mutex_trylock(&f->flush_mu) == 0) {
			pthread_mutex_lock(&f->mu);
			for (size_t k = 0; k < f->nslots && !due; k++)
				due = !id_zero(&f->slots[k].pend) &&
				      now - f->slots[k].pend_ms >= COMMIT_STEP_MS;
			if (due && !f->err)
				commit_locked(d, f, false);
			pthread_mutex_unlock(&f->mu);
			pthread_mutex_unlock(&f->flush_mu);
		}
		pifs_data_put(d, f);
	}
	free(list);
}

static void *committer(void *arg)
{
	struct pifs_data *d = arg;

	pthread_mutex_lock(&d->qmu);
	while (!d->stop) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += COMMITTER_TICK_MS / 1000;
		pthread_cond_timedwait(&d->ccond, &d->qmu, &until);
		if (d->stop)
			break;
		pthread_mutex_unlock(&d->qmu);
		commit_due(d);
		pthread_mutex_lock(&d->qmu);
	}
	pthread_mutex_unlock(&d->qmu);
	return NULL;
}

int pifs_data_fsync(struct pifs_data *d, struct pifs_file *f)
{
	struct pifs_chunk_id *ids = NULL;
	struct unsynced *uns;
	size_t nuns, *idx = NULL;
	bool *synced = NULL;
	int rc, err = 0;

	rc = pifs_data_flush(d, f);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&f->mu);
	uns = f->uns;
	nuns = f->nuns;
	f->uns = NULL;
	f->nuns = f->capuns = 0;
	pthread_mutex_unlock(&f->mu);
	if (nuns == 0)
		goto out_free;
	ids = malloc(nuns * sizeof(*ids));
	idx = malloc(nuns * sizeof(*idx));
	synced = calloc(nuns, sizeof(*synced));
	if (!ids || !idx || !synced) {
		rc = -ENOMEM;
		goto out_requeue;
	}
	/* One CHUNK_SYNC per node, with every chunk it stored. A chunk is
	 * durable when one of its nodes made it so: a node that died since
	 * the chunk was stored fails its part, and heal makes up the copy. */
	for (size_t i = 0; i < nuns; i++) {
		for (size_t j = 0; j < uns[i].n; j++) {
			uint32_t node = uns[i].nodes[j];
			size_t k = 0;
			bool first = true;
			int src;

			for (size_t p = 0; p < i && first; p++)
				for (size_t q = 0; q < uns[p].n; q++)
					if (uns[p].nodes[q] == node)
						first = false;
			if (!first)
				continue;
			for (size_t p = i; p < nuns; p++) {
				for (size_t q = 0; q < uns[p].n; q++) {
					if (uns[p].nodes[q] == node) {
						idx[k] = p;
						ids[k++] = uns[p].id;
					}
				}
			}
			src = pifs_cluster_sync(d->cl, node, ids, k);
			if (src < 0 && err == 0)
				err = src == -ENOSPC ? -ENOSPC : -EIO;
			for (size_t p = 0; p < k && src == 0; p++)
				synced[idx[p]] = true;
		}
	}
out_requeue:
	/* What no node made durable stays for the next fsync to try again. */
	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < nuns; i++) {
		struct pifs_cluster_put res;

		if (synced && synced[i])
			continue;
		if (rc == 0)
			rc = err ? err : -EIO;
		memset(&res, 0, sizeof(res));
		res.id = uns[i].id;
		memcpy(res.nodes, uns[i].nodes, uns[i].n * sizeof(uns[i].nodes[0]));
		res.n_nodes = uns[i].n;
		if (unsynced_add(f, &res) < 0)
			rc = -ENOMEM;
	}
	pthread_mutex_unlock(&f->mu);
	if (rc < 0)
		pifs_err("fsync of inode %" PRIu64 ": some chunks could not be made durable on "
			 "any node: %s; fsync tries them again, check 'pifs-admin status' for "
			 "down or full nodes",
			 f->ino, strerror(-rc));
out_free:
	free(synced);
	free(idx);
	free(ids);
	free(uns);
	/* The chunk list the flush committed, and any committed before, must
	 * outlive a power cut of the metadata node too. */
	return rc < 0 ? rc : pifs_data_sync_meta(d);
}

int pifs_data_sync_meta(struct pifs_data *d)
{
	struct pifs_msg req, rep;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_META_SYNC);
	rc = pifs_cluster_meta_call(d->cl, &req, &rep);
	if (rc < 0)
		pifs_err("fsync: the metadata service could not make its log durable: %s; the "
			 "changes stay acknowledged but may not survive a power cut of the "
			 "metadata node: check 'pifs-admin status'",
			 strerror(-rc));
	return rc;
}

int pifs_data_flush_all(struct pifs_data *d)
{
	struct pifs_file **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&d->tmu);
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (struct pifs_file *f = d->table[b]; f; f = f->hnext) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct pifs_file **l = realloc(list, ncap * sizeof(*l));

				if (!l) {
					rc = -ENOMEM;
					goto out_unlock;
				}
				list = l;
				cap = ncap;
			}
			f->refs++;
			list[n++] = f;
		}
	}
out_unlock:
	pthread_mutex_unlock(&d->tmu);
	for (size_t i = 0; i < n; i++) {
		int frc = pifs_data_flush(d, list[i]);

		if (frc < 0 && rc == 0)
			rc = frc;
		pifs_data_put(d, list[i]);
	}
	free(list);
	return rc;
}

void pifs_data_truncated(struct pifs_data *d, struct pifs_file *f, const struct pifs_attr *attr)
{
	uint64_t size = attr->size;
	size_t keep = 0;

	pthread_mutex_lock(&f->mu);
	for (size_t i = 0; i < f->nslots; i++) {
		struct slot *s = &f->slots[i];
		uint64_t start = s->index * d->cs;

		if (start >= size && !s->buf) {
			continue;
		} else if (start < size) {
			uint32_t room = min_u32(d->cs, size - start);

			if (s->com.len > room)
				s->com.len = room;
		}
		f->slots[keep++] = *s;
	}
	f->nslots = keep;
	f->size = size;
	f->attr = *attr;
	f->mtime = attr->mtime;
	f->pf_next = 0;
	pthread_mutex_unlock(&f->mu);
	seen_set(d, f->ino, 0);
}

bool pifs_data_dirty(struct pifs_data *d, struct pifs_file *f)
{
	bool local;

	(void)d;
	pthread_mutex_lock(&f->mu);
	local = has_local(f) || f->err;
	pthread_mutex_unlock(&f->mu);
	return local;
}

int pifs_data_attr(struct pifs_data *d, uint64_t ino, enum pifs_attr_from from,
		   struct pifs_attr *attr)
{
	struct pifs_file *f = pifs_data_find(d, ino);

	if (!f)
		return from == PIFS_ATTR_SERVER ? 0 : -ENOENT;
	pthread_mutex_lock(&f->mu);
	if (from != PIFS_ATTR_SERVER) {
		*attr = f->attr;
		if (from == PIFS_ATTR_GONE)
			attr->nlink = 0;
		attr->size = f->size;
		attr->mtime = f->mtime;
	} else {
		f->attr = *attr;
		if (has_local(f)) {
			attr->size = f->size;
			attr->mtime = f->mtime;
			if (attr->blocks < (f->size + 511) / 512)
				attr->blocks = (f->size + 511) / 512;
		}
	}
	pthread_mutex_unlock(&f->mu);
	pifs_data_put(d, f);
	return 0;
}
