/* scrub.c - re-reading every chunk, and repairing the corrupt ones. */
#include "scrub.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "place.h"
#include "rpc.h"
#include "worker.h"

/* Repairs waiting for the thread. A burst of corrupt reads past this many
 * is rare (a dying disk), and heal brings back what the node owns anyway. */
#define QUEUE 256
/* How often an idle scrub looks at its stop flag. */
#define WAKE_MS 1000
#define STAMP "scrub.last"

struct pifs_scrub {
	struct pifsd *d;
	struct pifs_worker wk;		   /* paced at scrub_rate */
	bool kicked;			   /* under @wk.lock */
	struct pifs_chunk_id queue[QUEUE]; /* under @wk.lock */
	size_t nqueue;
	/* Figures, under @wk.lock. */
	uint64_t passes, done, total, corrupt, repaired, unrepairable;
	bool running;
	/* The thread's own. */
	int64_t due; /* pifs_now_ms() of the next scheduled pass; INT64_MAX: none */
	char stamp[1100];
	struct pifs_buf scratch;
};

static uint32_t self_id(const struct pifs_scrub *s)
{
	return s->d->self->id;
}

static bool stopping(struct pifs_scrub *s)
{
	return pifs_worker_stopping(&s->wk);
}

/* A nap of the pace ends early for a repair: a client waits for it. */
static bool queued(void *arg)
{
	const struct pifs_scrub *s = arg;

	return s->nqueue != 0;
}

/* The nodes to fetch chunk @id from, best first, into @order (room for
 * PIFS_PLACE_MAX_NODES): the nodes that are in, in HRW order (the owners
 * first), then the others that are up (a node being drained may still have
 * it). Without a map, the nodes of the config. Returns how many. */
static size_t sources(struct pifs_scrub *s, const struct pifs_chunk_id *id, uint32_t *order)
{
	struct pifs_place_node pn[PIFS_PLACE_MAX_NODES];
	struct pifs_nodemap_entry *nodes;
	const struct pifs_conf *conf = s->d->conf;
	uint32_t replicas;
	uint64_t epoch;
	size_t n, i, k = 0, m = 0;
	int pass;

	if (pifs_nodemap_copy(&s->d->map, &nodes, &n, &replicas, &epoch) < 0)
		return 0;
	if (!epoch) {
		for (i = 0; i < conf->n_nodes && k < PIFS_PLACE_MAX_NODES; i++) {
			pn[k].id = conf->nodes[i].id;
			pn[k].weight = conf->nodes[i].weight ? conf->nodes[i].weight : 1;
			k++;
		}
		if (k)
			pifs_place_rank(id, pn, k, order);
		m = k;
	}
	for (pass = 0; epoch && pass < 2; pass++) {
		k = 0;
		for (i = 0; i < n && m + k < PIFS_PLACE_MAX_NODES; i++) {
			bool in = nodes[i].flags & PIFS_NODE_IN;

			if ((pass == 0) != in || !(nodes[i].flags & PIFS_NODE_UP))
				continue;
			pn[k].id = nodes[i].id;
			pn[k].weight = nodes[i].weight;
			k++;
		}
		if (k)
			pifs_place_rank(id, pn, k, order + m);
		m += k;
	}
	free(nodes);
	for (i = 0, k = 0; i < m; i++)
		if (order[i] != self_id(s))
			order[k++] = order[i];
	return k;
}

/* Fetch chunk @id from node @node, check it and store it. Returns 0 or
 * -errno (-EBADMSG: that node's copy is corrupt too). */
static int fetch(struct pifs_scrub *s, uint32_t node, const struct pifs_chunk_id *id)
{
	struct pifs_frame_hdr h;
	struct pifs_msg req, rep;
	struct pifs_rpc *rpc;
	const void *p;
	size_t len;
	int rc;

	rc = pifs_peers_get(&s->wk.peers, node, &rpc);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_GET);
	req.u.CHUNK_GET.id = *id;
	rc = pifs_rpc_call(rpc, &req, NULL, 0, &rep, &p, &len, (int)s->d->conf->timeout_ms);
	if (rc < 0)
		return rc;
	if (rep.type != PIFS_MSG_R_CHUNK || !p)
		return -EPROTO;
	rc = pifs_frame_parse(p, len, &h);
	if (rc < 0)
		return -EBADMSG;
	if (!pifs_chunk_id_eq(&h.id, id))
		return -EBADMSG;
	pifs_buf_reset(&s->scratch);
	if (pifs_buf_reserve(&s->scratch, h.raw_len ? h.raw_len : 1) < 0)
		return -ENOMEM;
	rc = pifs_frame_verify(p, len, s->scratch.p, s->scratch.cap);
	if (rc < 0)
		return -EBADMSG;
	return pifs_store_put(s->d->store, p, len, PIFS_STORE_SYNC, &s->scratch);
}

/* Repair chunk @id from another node. @again: a chunk that an earlier
 * repair (maybe before a restart) could not bring back, which the store
 * still counts as lost; its outcome was counted then and is not again, and
 * it is only logged when it succeeds. */
static void repair(struct pifs_scrub *s, const struct pifs_chunk_id *id, bool again)
{
	uint32_t order[PIFS_PLACE_MAX_NODES];
	size_t n, i;
	char hex[33];
	int rc = -ENOENT;

	pifs_chunk_id_hex(id, hex);
	n = sources(s, id, order);
	for (i = 0; i < n && !stopping(s); i++) {
		rc = fetch(s, order[i], id);
		if (rc == 0) {
			pthread_mutex_lock(&s->wk.lock);
			s->repaired += !again;
			pthread_mutex_unlock(&s->wk.lock);
			pifs_info("node %u: chunk %s was %s here and is repaired from node %u",
				  self_id(s), hex, again ? "lost" : "corrupt", order[i]);
			return;
		}
		if (rc == -ENOSPC)
			break;
	}
	if (stopping(s))
		return;
	if (again) {
		pifs_debug("node %u: lost chunk %s has still no good copy on the %zu other nodes "
			   "that are up (%s); the next scrub tries again",
			   self_id(s), hex, n, strerror(-rc));
		return;
	}
	if (rc == -ENOSPC) {
		/* A good copy exists: the chunk is not lost, only not here. */
		pifs_err("node %u: chunk %s is corrupt here and a good copy was found, but %s "
			 "is full: free space there; heal brings the chunk back if this node "
			 "owns it",
			 self_id(s), hex, s->d->data);
		return;
	}
	pthread_mutex_lock(&s->wk.lock);
	s->unrepairable++;
	pthread_mutex_unlock(&s->wk.lock);
	pifs_err("node %u: chunk %s is corrupt here and none of the %zu other nodes that are up "
		 "has a good copy; files that use it read as errors (EIO): bring back nodes "
		 "that are down, or restore those files from a backup; the damaged copy is kept "
		 "in %s/quarantine/%s",
		 self_id(s), hex, n, s->d->data, hex);
}

/* Repair every chunk queued so far. */
static void drain(struct pifs_scrub *s)
{
	struct pifs_chunk_id id;

	for (;;) {
		pthread_mutex_lock(&s->wk.lock);
		if (!s->nqueue || stopping(s)) {
			pthread_mutex_unlock(&s->wk.lock);
			return;
		}
		id = s->queue[0];
		memmove(&s->queue[0], &s->queue[1], (s->nqueue - 1) * sizeof(s->queue[0]));
		s->nqueue--;
		pthread_mutex_unlock(&s->wk.lock);
		repair(s, &id, false);
	}
}

/* Try again to repair the chunks the store counts as lost: a node that
 * was down when they were found may be back, with a good copy. */
static void retry_lost(struct pifs_scrub *s)
{
	struct pifs_chunk_id ids[QUEUE];
	size_t n, i;

	n = pifs_store_lost(s->d->store, ids, QUEUE);
	for (i = 0; i < n && i < QUEUE && !stopping(s); i++) {
		drain(s);
		repair(s, &ids[i], true);
	}
}

static int check_one(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	struct pifs_scrub *s = arg;
	char hex[33];
	int rc;

	if (stopping(s))
		return 1;
	drain(s);
	rc = pifs_store_verify(s->d->store, id, &s->scratch);
	if (rc == -EBADMSG) {
		pifs_scrub_corrupt(s, id);
		drain(s);
	} else if (rc < 0 && rc != -ENOENT) {
		pifs_chunk_id_hex(id, hex);
		pifs_warn("node %u: scrub could not read chunk %s in %s: %s; check the data disk",
			  self_id(s), hex, s->d->data, strerror(-rc));
	}
	pthread_mutex_lock(&s->wk.lock);
	s->done++;
	if (s->done > s->total)
		s->total = s->done;
	pthread_mutex_unlock(&s->wk.lock);
	pifs_worker_nap(&s->wk, pifs_worker_spend(&s->wk, size));
	return 0;
}

/* The next scheduled pass: scrub_interval after the last complete one. */
static void schedule(struct pifs_scrub *s)
{
	uint64_t interval = s->d->conf->scrub_interval_ms;
	int64_t last_ms, now_ms;
	struct stat sb;

	s->due = INT64_MAX;
	if (!interval)
		return;
	now_ms = pifs_now_ns() / 1000000;
	if (stat(s->stamp, &sb) == 0)
		last_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
	else
		last_ms = now_ms;
	/* A stamp from the future (a clock set back) counts as now. */
	if (last_ms > now_ms)
		last_ms = now_ms;
	if (interval > (uint64_t)(INT64_MAX / 2))
		return;
	s->due = pifs_now_ms() + (last_ms + (int64_t)interval - now_ms);
}

static void write_stamp(struct pifs_scrub *s)
{
	int fd = open(s->stamp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0 || futimens(fd, NULL) < 0)
		pifs_warn("node %u: could not note the end of the scrub in %s: %s; the next "
			  "scrub is counted from this start of the daemon",
			  self_id(s), s->stamp, strerror(errno));
	if (fd >= 0)
		close(fd);
}

static void pass(struct pifs_scrub *s)
{
	struct pifs_store_stat st;
	uint64_t corrupt0, repaired0, unrep0, done, n = 0;
	int rc;

	memset(&st, 0, sizeof(st));
	pifs_store_stat(s->d->store, &st);
	pthread_mutex_lock(&s->wk.lock);
	s->running = true;
	s->done = 0;
	s->total = st.chunks;
	corrupt0 = s->corrupt;
	repaired0 = s->repaired;
	unrep0 = s->unrepairable;
	pthread_mutex_unlock(&s->wk.lock);
	pifs_worker_pace_begin(&s->wk);
	retry_lost(s);
	rc = pifs_store_each(s->d->store, check_one, s);
	drain(s);
	pthread_mutex_lock(&s->wk.lock);
	s->running = false;
	done = s->done;
	if (rc == 0 && !stopping(s))
		n = ++s->passes;
	corrupt0 = s->corrupt - corrupt0;
	repaired0 = s->repaired - repaired0;
	unrep0 = s->unrepairable - unrep0;
	pthread_mutex_unlock(&s->wk.lock);
	if (rc < 0)
		pifs_err("node %u: scrub could not walk the chunks in %s: %s; check the data "
			 "disk; it tries again at the next scrub",
			 self_id(s), s->d->data, strerror(-rc));
	if (!n)
		return;
	write_stamp(s);
	pifs_info("node %u: scrub pass %" PRIu64 " checked %" PRIu64 " chunks: %" PRIu64
		  " corrupt, %" PRIu64 " repaired, %" PRIu64 " unrepairable",
		  self_id(s), n, done, corrupt0, repaired0, unrep0);
}

/* Wait for a repair or a pass. Returns 1 for a pass, 0 for repairs only, or
 * -1 when the thread must stop. */
static int wait_turn(struct pifs_scrub *s)
{
	int what = -1;

	pthread_mutex_lock(&s->wk.lock);
	while (!stopping(s)) {
		if (s->kicked || pifs_now_ms() >= s->due) {
			s->kicked = false;
			what = 1;
			break;
		}
		if (s->nqueue) {
			what = 0;
			break;
		}
		pifs_worker_wait(&s->wk, WAKE_MS, WAKE_MS);
	}
	pthread_mutex_unlock(&s->wk.lock);
	return what;
}

static void *run(void *arg)
{
	struct pifs_scrub *s = arg;
	int what;

	schedule(s);
	while ((what = wait_turn(s)) >= 0) {
		drain(s);
		if (what == 1) {
			pass(s);
			schedule(s);
		}
	}
	return NULL;
}

int pifs_scrub_new(struct pifsd *d, struct pifs_scrub **out)
{
	struct pifs_scrub *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->d = d;
	if (snprintf(s->stamp, sizeof(s->stamp), "%s/" STAMP, d->data) >= (int)sizeof(s->stamp)) {
		free(s);
		return -ENAMETOOLONG;
	}
	rc = pifs_worker_init(&s->wk, d, d->conf->scrub_rate, queued, s);
	if (rc < 0) {
		free(s);
		return rc;
	}
	pifs_buf_init(&s->scratch);
	s->due = INT64_MAX;
	*out = s;
	return 0;
}

int pifs_scrub_start(struct pifs_scrub *s)
{
	return pifs_worker_start(&s->wk, run);
}

void pifs_scrub_kick(struct pifs_scrub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->wk.lock);
	s->kicked = true;
	pifs_worker_signal(&s->wk);
	pthread_mutex_unlock(&s->wk.lock);
}

void pifs_scrub_set_rate(struct pifs_scrub *s, uint64_t rate)
{
	if (s)
		pifs_worker_set_rate(&s->wk, rate);
}

void pifs_scrub_corrupt(struct pifs_scrub *s, const struct pifs_chunk_id *id)
{
	char hex[33];
	size_t i;
	bool queued = false, full = false;

	if (!s)
		return;
	pthread_mutex_lock(&s->wk.lock);
	s->corrupt++;
	for (i = 0; i < s->nqueue && !queued; i++)
		queued = pifs_chunk_id_eq(&s->queue[i], id);
	if (!queued && s->nqueue < QUEUE)
		s->queue[s->nqueue++] = *id;
	else if (!queued)
		full = true;
	pifs_worker_signal(&s->wk);
	pthread_mutex_unlock(&s->wk.lock);
	if (full) {
		pifs_chunk_id_hex(id, hex);
		pifs_warn("node %u: %d repairs are waiting already; chunk %s is not repaired now "
			  "(heal brings it back if this node owns it); a disk with this many bad "
			  "chunks should be replaced",
			  self_id(s), QUEUE, hex);
	}
}

void pifs_scrub_stop(struct pifs_scrub *s)
{
	if (s)
		pifs_worker_stop(&s->wk);
}

void pifs_scrub_free(struct pifs_scrub *s)
{
	if (!s)
		return;
	pifs_worker_fini(&s->wk);
	pifs_buf_fini(&s->scratch);
	free(s);
}

void pifs_scrub_report(struct pifs_scrub *s, struct pifs_work *w)
{
	if (!s) {
		w->scrub_passes = w->scrub_done = w->scrub_total = 0;
		w->scrub_running = 0;
		w->scrub_corrupt = w->scrub_repaired = w->scrub_unrepairable = 0;
		return;
	}
	pthread_mutex_lock(&s->wk.lock);
	w->scrub_passes = s->passes;
	w->scrub_running = s->running;
	w->scrub_done = s->done;
	w->scrub_total = s->total;
	w->scrub_corrupt = s->corrupt;
	w->scrub_repaired = s->repaired;
	w->scrub_unrepairable = s->unrepairable;
	pthread_mutex_unlock(&s->wk.lock);
}
