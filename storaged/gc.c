/* gc.c - garbage collection: deleting the chunks that no file references.
 *
 * The safety argument is in docs/design.md ("Garbage collection"): a chunk
 * goes only when the metadata service, asked after the time K, says no file
 * references it, and its file was last written or touched before
 * K - gc_grace. Both times are this node's wall clock, which a Pi without a
 * real-time clock may step forward (NTP after boot) under files it wrote:
 * their times then look older than they are. So the sweep watches how far the
 * wall clock has run ahead of the monotonic clock since the daemon started
 * and moves the cut-off back by that much, and deletes nothing in the first
 * gc_grace of the daemon's life, whose files' times it cannot vouch for. */
#include "gc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "metacall.h"
#include "rpc.h"
#include "worker.h"

/* Chunk ids per CHUNK_REFS: 16 KiB of ids, a quick lookup for the service. */
#define BATCH 1024
/* Tries of one CHUNK_REFS before the sweep gives up, a second apart. */
#define TRIES 3
#define RETRY_MS 1000
/* The longest single wait of an idle thread, so that the clock is sampled
 * this often (see the top of this file). */
#define WAIT_MAX_MS 1000
/* How long the test gate (gc.h) holds a sweep at most. */
#define GATE_MS 30000
#define GATE_ENV "PIFS_TEST_GC_GATE"

/* What one sweep found. */
struct tally {
	uint64_t unreferenced;		 /* chunks no file references */
	uint64_t found, found_bytes;	 /* of those, past the grace */
	uint64_t deleted, deleted_bytes; /* of those, deleted */
	uint64_t failed;		 /* could not be looked at or deleted */
	int last_err;
};

struct pifs_gc {
	struct pifsd *d;
	struct pifs_worker wk;	  /* not paced: deletions are cheap */
	bool want_real, want_dry; /* kicks, under @wk.lock */
	/* Figures, under @wk.lock. */
	uint64_t passes, left, left_bytes, deleted, deleted_bytes;
	/* The thread's own. */
	uint64_t interval;	  /* gc_interval in ms; 0: no schedule */
	int64_t next_sweep;	  /* pifs_now_ms() of the next scheduled sweep */
	int64_t start_ms;	  /* pifs_now_ms() when the thread started */
	int64_t offset_min;	  /* the lowest wall - monotonic offset seen, ns */
	int64_t offset;		  /* the last one */
	bool dry;		  /* the sweep under way only counts */
	struct tally t;		  /* of the sweep under way */
	int meta_err;		  /* why the metadata service could not be asked */
	struct pifs_metacall *mc; /* to the metadata leader; made on first use */
	struct pifs_chunk_id ids[BATCH];
	uint8_t have[BATCH];
	size_t n;
	struct pifs_buf req; /* the chunkid records of a CHUNK_REFS */
	const char *gate;    /* PIFS_TEST_GC_GATE, or NULL */
};

static uint32_t self_id(const struct pifs_gc *g)
{
	return g->d->self->id;
}

static bool stopping(struct pifs_gc *g)
{
	return pifs_worker_stopping(&g->wk);
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Note how far the wall clock is ahead of the monotonic clock now. */
static void sample_clock(struct pifs_gc *g)
{
	g->offset = pifs_now_ns() - mono_ns();
	if (g->offset < g->offset_min)
		g->offset_min = g->offset;
}

/* Ask the metadata service which of the batch's chunks some file
 * references, into g->have. Returns 0 or -errno after TRIES tries. */
static int ask_refs(struct pifs_gc *g)
{
	struct pifs_metacall_opts o = {.book = g->d->book};
	struct pifs_chunkid rec;
	struct pifs_msg req, rep;
	int rc = 0, tries;
	size_t i;

	if (!g->mc && (rc = pifs_metacall_new(g->d->zctx, g->d->auth, g->d->conf, &o, &g->mc)) < 0)
		return rc;
	pifs_buf_reset(&g->req);
	for (i = 0; i < g->n; i++) {
		rec.id = g->ids[i];
		if (pifs_chunkid_append(&g->req, &rec) < 0)
			return -ENOMEM;
	}
	for (tries = 0; tries < TRIES && !stopping(g); tries++) {
		if (tries)
			pifs_worker_nap(&g->wk, RETRY_MS);
		pifs_msg_init(&req, PIFS_MSG_CHUNK_REFS);
		req.u.CHUNK_REFS.ids = pifs_list_of(&g->req, (uint32_t)g->n);
		pifs_metacall_set_epoch(g->mc, pifs_nodemap_epoch(&g->d->map));
		rc = pifs_metacall(g->mc, &req, &rep);
		if (rc == 0 && (rep.type != PIFS_MSG_R_HAS || rep.u.R_HAS.have.len != g->n))
			rc = -EPROTO;
		if (rc == 0) {
			memcpy(g->have, rep.u.R_HAS.have.p, g->n);
			return 0;
		}
	}
	return stopping(g) ? -ECANCELED : rc;
}

/* The test gate of gc.h. */
static void hold_at_gate(struct pifs_gc *g)
{
	int64_t until = pifs_now_ms() + GATE_MS;
	char asked[PATH_MAX];
	int fd;

	snprintf(asked, sizeof(asked), "%s.asked", g->gate);
	fd = open(asked, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
	while (!stopping(g) && access(g->gate, F_OK) < 0 && pifs_now_ms() < until)
		pifs_worker_nap(&g->wk, 10);
	unlink(g->gate);
	unlink(asked);
}

/* Ask about the batch and delete what may go. Returns 0, or -errno when the
 * metadata service could not be asked (the sweep stops). */
static int run_batch(struct pifs_gc *g)
{
	uint64_t grace = g->d->conf->gc_grace_ms;
	int64_t cutoff, k;
	uint64_t size;
	size_t i;
	bool any = false;
	int rc;

	if (!g->n)
		return 0;
	sample_clock(g);
	/* K is taken before asking: a commit the answer does not show came
	 * after K, and so did the upload it commits, or within its grace. */
	k = pifs_now_ns();
	rc = ask_refs(g);
	if (rc < 0) {
		g->meta_err = rc;
		return rc;
	}
	/* A grace past a century keeps everything. */
	if (grace > (uint64_t)INT64_MAX / 4000000 || pifs_now_ms() - g->start_ms < (int64_t)grace)
		cutoff = INT64_MIN;
	else
		cutoff = k - (int64_t)grace * 1000000 - (g->offset - g->offset_min);
	for (i = 0; i < g->n; i++)
		any = any || !g->have[i];
	if (any && g->gate)
		hold_at_gate(g);
	for (i = 0; i < g->n && !stopping(g); i++) {
		if (g->have[i])
			continue;
		g->t.unreferenced++;
		size = 0;
		rc = pifs_store_del_older(g->d->store, &g->ids[i], cutoff, g->dry, &size);
		if (rc == 1) {
			g->t.found++;
			g->t.found_bytes += size;
		}
		if (rc == 1 && !g->dry) {
			g->t.deleted++;
			g->t.deleted_bytes += size;
			pthread_mutex_lock(&g->wk.lock);
			g->deleted++;
			g->deleted_bytes += size;
			pthread_mutex_unlock(&g->wk.lock);
		}
		if (rc < 0 && rc != -ENOENT) {
			/* Counted as left: it may well be garbage still. */
			g->t.found++;
			g->t.found_bytes += size;
			g->t.failed++;
			g->t.last_err = rc;
		}
	}
	return 0;
}

static int collect(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	struct pifs_gc *g = arg;
	int rc;

	(void)size;
	if (stopping(g))
		return 1;
	g->ids[g->n++] = *id;
	if (g->n < BATCH)
		return 0;
	rc = run_batch(g);
	g->n = 0;
	return rc;
}

static void sweep(struct pifs_gc *g, bool dry)
{
	uint64_t n = 0;
	int rc;

	g->dry = dry;
	g->n = 0;
	g->meta_err = 0;
	memset(&g->t, 0, sizeof(g->t));
	rc = pifs_store_each(g->d->store, collect, g);
	if (rc == 0 && !stopping(g))
		rc = run_batch(g);
	pthread_mutex_lock(&g->wk.lock);
	if (rc == 0 && !stopping(g)) {
		n = ++g->passes;
		g->left = g->t.found - g->t.deleted;
		g->left_bytes = g->t.found_bytes - g->t.deleted_bytes;
	}
	pthread_mutex_unlock(&g->wk.lock);
	if (stopping(g))
		return;
	if (g->meta_err)
		pifs_warn("node %u: garbage collection stopped: the metadata service (voters: %s) "
			  "could not say which chunks files reference: %s; nothing more is "
			  "deleted until it answers: check that pifs-storaged runs on the voters "
			  "and that most of them are up; the next sweep tries again",
			  self_id(g), g->mc ? pifs_metacall_voters(g->mc) : "?",
			  strerror(-g->meta_err));
	else if (rc < 0)
		pifs_err("node %u: garbage collection could not walk the chunks in %s: %s; "
			 "check the data disk; the next sweep tries again",
			 self_id(g), g->d->data, strerror(-rc));
	if (g->t.failed)
		pifs_warn("node %u: garbage collection could not delete %" PRIu64 " unreferenced "
			  "chunks in %s: %s; check the data disk",
			  self_id(g), g->t.failed, g->d->data, strerror(-g->t.last_err));
	if (!n || !g->t.unreferenced)
		return;
	pifs_info("node %u: garbage collection sweep %" PRIu64 "%s: %" PRIu64 " chunks are "
		  "referenced by no file; %" PRIu64 " of them (%" PRIu64 " bytes) %s, the others "
		  "were written within gc_grace (%" PRIu64 " ms) and are kept",
		  self_id(g), n, dry ? " (dry run)" : "", g->t.unreferenced,
		  dry ? g->t.found : g->t.deleted, dry ? g->t.found_bytes : g->t.deleted_bytes,
		  dry ? "could be deleted" : "were deleted", g->d->conf->gc_grace_ms);
}

/* Wait for the next sweep: gc_interval after the last one began, or a kick.
 * Returns false when the thread must stop. */
static bool wait_turn(struct pifs_gc *g, bool *dry)
{
	int64_t left;
	bool go = false;

	pthread_mutex_lock(&g->wk.lock);
	while (!stopping(g)) {
		sample_clock(g);
		left = g->interval ? g->next_sweep - pifs_now_ms() : WAIT_MAX_MS;
		if (g->want_real || g->want_dry || left <= 0) {
			*dry = !g->want_real && g->want_dry;
			if (*dry)
				g->want_dry = false;
			else
				g->want_real = false;
			go = true;
			break;
		}
		pifs_worker_wait(&g->wk, left, WAIT_MAX_MS);
	}
	pthread_mutex_unlock(&g->wk.lock);
	return go;
}

static void *run(void *arg)
{
	struct pifs_gc *g = arg;
	bool dry;

	g->interval = g->d->conf->gc_interval_ms;
	/* An interval past a century is no schedule. */
	if (g->interval > (uint64_t)INT64_MAX / 4)
		g->interval = 0;
	g->start_ms = pifs_now_ms();
	sample_clock(g);
	g->offset_min = g->offset;
	g->next_sweep = g->start_ms + (int64_t)g->interval;
	while (wait_turn(g, &dry)) {
		if (g->interval)
			g->next_sweep = pifs_now_ms() + (int64_t)g->interval;
		sweep(g, dry);
	}
	pifs_metacall_free(g->mc);
	g->mc = NULL;
	return NULL;
}

int pifs_gc_new(struct pifsd *d, struct pifs_gc **out)
{
	struct pifs_gc *g;
	const char *gate;
	int rc;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->d = d;
	rc = pifs_worker_init(&g->wk, d, 0, NULL, g);
	if (rc < 0) {
		free(g);
		return rc;
	}
	pifs_buf_init(&g->req);
	gate = getenv(GATE_ENV);
	g->gate = gate && gate[0] ? gate : NULL;
	*out = g;
	return 0;
}

int pifs_gc_start(struct pifs_gc *g)
{
	return pifs_worker_start(&g->wk, run);
}

void pifs_gc_kick(struct pifs_gc *g, bool dry)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->wk.lock);
	if (dry)
		g->want_dry = true;
	else
		g->want_real = true;
	pifs_worker_signal(&g->wk);
	pthread_mutex_unlock(&g->wk.lock);
}

void pifs_gc_stop(struct pifs_gc *g)
{
	if (g)
		pifs_worker_stop(&g->wk);
}

void pifs_gc_free(struct pifs_gc *g)
{
	if (!g)
		return;
	pifs_worker_fini(&g->wk);
	pifs_buf_fini(&g->req);
	free(g);
}

void pifs_gc_report(struct pifs_gc *g, struct pifs_work *w)
{
	if (!g) {
		w->gc_passes = w->gc_chunks = w->gc_bytes = 0;
		w->gc_deleted_chunks = w->gc_deleted_bytes = 0;
		return;
	}
	pthread_mutex_lock(&g->wk.lock);
	w->gc_passes = g->passes;
	w->gc_chunks = g->left;
	w->gc_bytes = g->left_bytes;
	w->gc_deleted_chunks = g->deleted;
	w->gc_deleted_bytes = g->deleted_bytes;
	pthread_mutex_unlock(&g->wk.lock);
}
