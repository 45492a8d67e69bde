/* heal.c - the convergence loop.
 *
 * A pass walks the store and handles its chunks in batches of BATCH: one
 * CHUNK_HAS per node asked for the whole batch, then the copies chunk by
 * chunk, paced, then one CHUNK_SYNC per owner for the copies this node may
 * drop, then the drops. Each batch takes the map as it is then, so a pass
 * follows a map that changes under it; a pass ends early only to stop. */
#include "heal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "place.h"
#include "rpc.h"
#include "scrub.h"
#include "worker.h"

/* Chunks decided together: one CHUNK_HAS of BATCH ids (8 KiB) per node. */
#define BATCH 512
/* The longest single wait of an idle loop: one whose pass is due but that
 * has no map yet looks again this often. */
#define WAIT_MAX_MS 1000
/* heal_rate reads 0 once nothing has been copied for this long, past the
 * pace's own wait: status must not show a rate (and an ETA) for a loop that
 * copies nothing. */
#define IDLE_MS 3000

void pifs_heal_prepare(const struct pifs_heal_node *nodes, size_t n, uint32_t replicas,
		       uint32_t self, const struct pifs_chunk_id *id, struct pifs_heal_chunk *c)
{
	struct pifs_place_node in[PIFS_PLACE_MAX_NODES];
	uint32_t flags[PIFS_PLACE_MAX_NODES], order[PIFS_PLACE_MAX_NODES];
	uint32_t ups = 0;
	size_t k = 0, i, j;

	/* As pifs_place_rank: a partial order would misplace chunks. */
	if (n > PIFS_PLACE_MAX_NODES)
		abort();
	memset(c, 0, sizeof(*c));
	c->replicas = replicas;
	c->self_rank = UINT32_MAX;
	for (i = 0; i < n; i++) {
		if (!(nodes[i].flags & PIFS_NODE_IN))
			continue;
		in[k].id = nodes[i].id;
		in[k].weight = nodes[i].weight;
		flags[k] = nodes[i].flags;
		k++;
	}
	if (k)
		pifs_place_rank(id, in, k, order);
	c->nowners = replicas < k ? replicas : (uint32_t)k;
	for (i = 0; i < k; i++) {
		bool up = order[i] == self, wanted = i < c->nowners || ups < replicas;

		if (order[i] == self)
			c->self_rank = (uint32_t)i;
		if (!wanted)
			continue;
		for (j = 0; j < k && !up; j++)
			if (in[j].id == order[i])
				up = flags[j] & PIFS_NODE_UP;
		if (up && order[i] != self && c->nask < PIFS_HEAL_MAX_ASK) {
			c->ask[c->nask] = order[i];
			c->ask_rank[c->nask] = (uint32_t)i;
			c->nask++;
		}
		if (up)
			ups++;
	}
	for (i = 0; i < n && c->nmore < PIFS_HEAL_MAX_ASK; i++) {
		if (!(nodes[i].flags & PIFS_NODE_UP) || nodes[i].id == self)
			continue;
		for (j = 0; j < c->nask && c->ask[j] != nodes[i].id; j++)
			;
		if (j == c->nask)
			c->more[c->nmore++] = nodes[i].id;
	}
}

void pifs_heal_plan(struct pifs_heal_chunk *c)
{
	bool self_owner = c->self_rank < c->nowners, pusher;
	uint32_t best_owner = self_owner ? c->self_rank : UINT32_MAX, best_other = UINT32_MAX;
	uint32_t owners_holding = self_owner, live = 1, lacking = 0, i;

	for (i = 0; i < c->nask; i++) {
		bool owner = c->ask_rank[i] < c->nowners;

		if (c->has[i] == PIFS_HEAL_HOLDS) {
			live++;
			if (owner) {
				owners_holding++;
				if (c->ask_rank[i] < best_owner)
					best_owner = c->ask_rank[i];
			} else if (c->ask_rank[i] < best_other) {
				best_other = c->ask_rank[i];
			}
		} else if (owner) {
			lacking++;
		}
	}
	/* The other holders count as copies only: they neither send nor take
	 * one, so that the copies made (and a plan's figures) do not depend on
	 * whether they were asked. */
	for (i = 0; i < c->nmore; i++)
		if (c->more_has[i] == PIFS_HEAL_HOLDS)
			live++;
	/* One sender per chunk where the nodes can tell: the best owner that
	 * holds it, else the best stand-in that does. A holder that nobody
	 * asks about (a node that is out) sends only when nobody else can. */
	if (best_owner != UINT32_MAX)
		pusher = self_owner && best_owner == c->self_rank;
	else
		pusher = best_other == UINT32_MAX || c->self_rank < best_other;
	c->npush = 0;
	for (i = 0; pusher && i < c->nask; i++)
		if (c->ask_rank[i] < c->nowners && c->has[i] == PIFS_HEAL_LACKS)
			c->push[c->npush++] = c->ask[i];
	c->degraded = pusher && live < c->replicas;
	c->misplaced = !self_owner || (pusher && (lacking > 0 || live < c->replicas));
	c->drop = !self_owner && c->nowners == c->replicas && owners_holding == c->nowners;
}

bool pifs_heal_urgent(const struct pifs_heal_node *old, size_t nold,
		      const struct pifs_heal_node *cur, size_t ncur)
{
	const uint32_t held = PIFS_NODE_NEW | PIFS_NODE_DRAIN;
	const struct pifs_heal_node *o, *c;
	size_t i, j;

	for (i = 0; i < nold; i++) {
		o = &old[i];
		if (!(o->flags & PIFS_NODE_IN))
			continue;
		for (c = NULL, j = 0; j < ncur && !c; j++)
			if (cur[j].id == o->id)
				c = &cur[j];
		/* Out by failure, or removed while in: its copies are lost. */
		if (!c || !(c->flags & (PIFS_NODE_IN | PIFS_NODE_DRAIN)))
			return true;
	}
	for (j = 0; j < ncur; j++) {
		c = &cur[j];
		if ((c->flags & held) ||
		    (c->flags & (PIFS_NODE_UP | PIFS_NODE_IN)) != (PIFS_NODE_UP | PIFS_NODE_IN))
			continue;
		for (o = NULL, i = 0; i < nold && !o; i++)
			if (old[i].id == c->id)
				o = &old[i];
		/* Back from down or out: the stand-in copies go home. */
		if (o && !(o->flags & held) &&
		    (o->flags & (PIFS_NODE_UP | PIFS_NODE_IN)) != (PIFS_NODE_UP | PIFS_NODE_IN))
			return true;
	}
	return false;
}

/* A chunk of the batch. */
struct item {
	struct pifs_chunk_id id;
	uint64_t size;
	bool found;  /* misplaced when the pass first looked */
	bool deg;    /* degraded then */
	bool synced; /* every owner made its copy durable (drop round) */
};

/* The requests of a batch to one node: which chunks, and for each, its
 * place in the chunk's ask list. */
struct group {
	uint32_t node;
	uint32_t n;
	uint32_t chunk[BATCH];
	uint8_t slot[BATCH];
	struct pifs_buf ids; /* the chunkid records */
	struct pifs_rpc *rpc;
	uint64_t reqid;
	bool sent, ok;
};

/* One walk over this node's chunks in batches, deciding for each: a pass of
 * the loop, or a plan made for PLAN by a chunk worker. Owned by one thread. */
struct walk {
	struct pifsd *d;
	atomic_bool *stop; /* borrowed: the loop's */
	uint32_t as_in;	   /* PIFS_NODE_* flags of up nodes that count as in (a plan's what-if) */
	struct pifs_peers *peers; /* the loop's (borrowed), or @own */
	struct pifs_peers own;
	struct item batch[BATCH];
	struct pifs_heal_chunk plan[BATCH];
	size_t nbatch;
	struct group *groups; /* owned; @ngroups used of @group_cap */
	size_t ngroups, group_cap;
	struct pifs_heal_node *hn; /* the map of the batch; owned, @nhn of @hn_cap */
	size_t nhn, hn_cap;
	uint32_t replicas;
	uint64_t epoch;
	bool agree; /* every node asked in the batch has our map epoch */
	/* Nodes that did not answer a CHUNK_HAS in this walk: not asked again,
	 * so that a dead node costs one timeout per walk, not one per batch. */
	uint32_t mute[PIFS_PLACE_MAX_NODES];
	size_t nmute;
};

/* What the pass under way has seen, and what the last one left. */
struct tally {
	uint64_t found, found_bytes, resolved, resolved_bytes, deg_found, deg_resolved;
};

struct pifs_heal {
	struct pifsd *d;
	struct pifs_worker wk;	   /* paced at heal_rate */
	bool kicked;		   /* under @wk.lock */
	pthread_mutex_t plan_lock; /* held while a chunk worker makes a plan */
	/* Figures, under @wk.lock. */
	bool running;
	struct tally cur;
	uint64_t passes, left, left_bytes, left_deg, moved_chunks, moved_bytes;
	struct pifs_meter meter;
	int64_t busy_until; /* pifs_now_ms() when the last copy's pace ends */
	/* The thread's own. */
	struct walk w;
	int64_t next_pass;
	uint64_t sent, dropped, failed;
	int last_err; /* of the first failure of the pass */
	uint32_t last_node;
	struct pifs_buf scratch;
};

static uint32_t self_id(const struct pifs_heal *h)
{
	return h->d->self->id;
}

static bool stopping(struct pifs_heal *h)
{
	return pifs_worker_stopping(&h->wk);
}

/* A walk that talks to the other nodes with @peers (borrowed), or with
 * sockets of its own when NULL: a plan runs in a chunk worker's thread. */
static void walk_init(struct walk *w, struct pifsd *d, atomic_bool *stop, uint32_t as_in,
		      struct pifs_peers *peers)
{
	w->d = d;
	w->stop = stop;
	w->as_in = as_in;
	w->peers = peers;
	if (!peers) {
		pifs_peers_init(&w->own, d->zctx, d->auth, &d->map);
		w->peers = &w->own;
	}
}

static void walk_fini(struct walk *w)
{
	size_t i;

	if (w->peers == &w->own)
		pifs_peers_fini(&w->own);
	for (i = 0; i < w->group_cap; i++)
		pifs_buf_fini(&w->groups[i].ids);
	free(w->groups);
	free(w->hn);
}

/* Take the map for a batch. Returns false when there is none yet. */
static bool load_map(struct walk *w)
{
	struct pifs_nodemap_entry *nodes;
	size_t n, i;

	if (pifs_nodemap_copy(&w->d->map, &nodes, &n, &w->replicas, &w->epoch) < 0)
		return false;
	if (n > w->hn_cap) {
		struct pifs_heal_node *nh = realloc(w->hn, n * sizeof(*nh));

		if (!nh) {
			free(nodes);
			return false;
		}
		w->hn = nh;
		w->hn_cap = n;
	}
	for (i = 0; i < n; i++) {
		w->hn[i].id = nodes[i].id;
		w->hn[i].weight = nodes[i].weight;
		w->hn[i].flags = nodes[i].flags;
		if ((w->hn[i].flags & w->as_in) && (w->hn[i].flags & PIFS_NODE_UP))
			w->hn[i].flags = (w->hn[i].flags & ~w->as_in) | PIFS_NODE_IN;
	}
	w->nhn = n;
	free(nodes);
	return w->epoch != 0 && n <= PIFS_PLACE_MAX_NODES;
}

static struct group *group_of(struct walk *w, uint32_t node)
{
	struct group *g;
	size_t i;

	for (i = 0; i < w->ngroups; i++)
		if (w->groups[i].node == node)
			return &w->groups[i];
	if (w->ngroups == w->group_cap) {
		size_t cap = w->group_cap ? 2 * w->group_cap : 4;

		g = realloc(w->groups, cap * sizeof(*g));
		if (!g)
			return NULL;
		w->groups = g;
		for (i = w->group_cap; i < cap; i++)
			pifs_buf_init(&w->groups[i].ids);
		w->group_cap = cap;
	}
	g = &w->groups[w->ngroups++];
	g->node = node;
	g->n = 0;
	g->sent = g->ok = false;
	g->rpc = NULL;
	pifs_buf_reset(&g->ids);
	return g;
}

/* Add chunk @ci (its ask slot @slot) to the request for @node. */
static int group_add(struct walk *w, uint32_t node, uint32_t ci, uint8_t slot)
{
	struct group *g = group_of(w, node);
	struct pifs_chunkid rec;

	if (!g)
		return -ENOMEM;
	rec.id = w->batch[ci].id;
	if (pifs_chunkid_append(&g->ids, &rec) < 0)
		return -ENOMEM;
	g->chunk[g->n] = ci;
	g->slot[g->n] = slot;
	g->n++;
	return 0;
}

static bool muted(const struct walk *w, uint32_t node)
{
	size_t i;

	for (i = 0; i < w->nmute; i++)
		if (w->mute[i] == node)
			return true;
	return false;
}

/* Send the request of every group (CHUNK_HAS or CHUNK_SYNC) at once, so
 * that the nodes answer in parallel. */
static void send_groups(struct walk *w, enum pifs_msg_type type)
{
	int timeout = (int)w->d->conf->timeout_ms;
	struct pifs_msg req;
	size_t i;

	for (i = 0; i < w->ngroups && !atomic_load(w->stop); i++) {
		struct group *g = &w->groups[i];
		struct pifs_list ids = pifs_list_of(&g->ids, g->n);

		if (type == PIFS_MSG_CHUNK_HAS && muted(w, g->node))
			continue;
		if (pifs_peers_get(w->peers, g->node, &g->rpc) < 0)
			continue;
		pifs_msg_init(&req, type);
		if (type == PIFS_MSG_CHUNK_HAS)
			req.u.CHUNK_HAS.ids = ids;
		else
			req.u.CHUNK_SYNC.ids = ids;
		if (pifs_rpc_send(g->rpc, &req, NULL, 0, timeout) == 0) {
			g->sent = true;
			g->reqid = req.reqid;
		}
	}
}

/* Ask every node of the batch which chunks it holds, and note the answers
 * in the plans: the nodes of each chunk's ask list, or with @more those of
 * its @more list, for the chunks that the plans found degraded. */
static int ask_batch(struct walk *w, bool more)
{
	int64_t deadline = pifs_now_ms() + w->d->conf->timeout_ms;
	struct pifs_msg rep;
	uint32_t i, j;
	int rc;

	w->ngroups = 0;
	for (i = 0; i < w->nbatch; i++) {
		const struct pifs_heal_chunk *c = &w->plan[i];

		if (more && !c->degraded)
			continue;
		for (j = 0; j < (more ? c->nmore : c->nask); j++)
			if ((rc = group_add(w, more ? c->more[j] : c->ask[j], i, (uint8_t)j)) < 0)
				return rc;
	}
	if (!w->ngroups)
		return 0;
	send_groups(w, PIFS_MSG_CHUNK_HAS);
	for (i = 0; i < w->ngroups; i++) {
		struct group *g = &w->groups[i];
		int64_t left = deadline - pifs_now_ms();

		if (!g->sent) {
			w->agree = false;
			continue;
		}
		rc = pifs_rpc_recv(g->rpc, g->reqid, &rep, NULL, NULL, left > 0 ? (int)left : 0);
		if (rc == 0 && (rep.type != PIFS_MSG_R_HAS || rep.u.R_HAS.have.len != g->n))
			rc = -EPROTO;
		if (rc < 0) {
			pifs_debug("node %u: node %u did not say which of %u chunks it holds: %s; "
				   "it is not asked again in this pass, which leaves them for the "
				   "next one",
				   w->d->self->id, g->node, g->n, strerror(-rc));
			if (w->nmute < PIFS_PLACE_MAX_NODES)
				w->mute[w->nmute++] = g->node;
			w->agree = false;
			continue;
		}
		if (rep.epoch != w->epoch)
			w->agree = false;
		for (j = 0; j < g->n; j++) {
			struct pifs_heal_chunk *c = &w->plan[g->chunk[j]];
			uint8_t *has = more ? c->more_has : c->has;

			has[g->slot[j]] = rep.u.R_HAS.have.p[j] ? PIFS_HEAL_HOLDS : PIFS_HEAL_LACKS;
		}
	}
	return 0;
}

/* Take the map and decide for every chunk of the batch from the answers.
 * Returns 0, -EAGAIN without a map, or -ENOMEM. */
static int decide_batch(struct walk *w)
{
	uint32_t i;
	int rc;

	if (!load_map(w))
		return -EAGAIN;
	for (i = 0; i < w->nbatch; i++)
		pifs_heal_prepare(w->hn, w->nhn, w->replicas, w->d->self->id, &w->batch[i].id,
				  &w->plan[i]);
	w->agree = true;
	rc = ask_batch(w, false);
	if (rc < 0)
		return rc;
	for (i = 0; i < w->nbatch; i++)
		pifs_heal_plan(&w->plan[i]);
	/* A chunk that looks degraded may have its second copy on a node that
	 * is no longer among its owners (a rebalance under way): ask the other
	 * up nodes about those chunks alone before calling them degraded. */
	rc = ask_batch(w, true);
	if (rc < 0)
		return rc;
	for (i = 0; i < w->nbatch; i++)
		if (w->plan[i].degraded)
			pifs_heal_plan(&w->plan[i]);
	return 0;
}

static void note_failure(struct pifs_heal *h, uint32_t node, int rc, const struct pifs_chunk_id *id)
{
	char hex[33];

	if (h->failed++ == 0) {
		pifs_chunk_id_hex(id, hex);
		pifs_warn("node %u: heal could not copy chunk %s to node %u: %s; it tries again "
			  "in its next pass%s",
			  self_id(h), hex, node, strerror(-rc),
			  rc == -ENOSPC ? " (that node is full: free space there or add a node)"
					: "");
	}
	h->last_err = rc;
	h->last_node = node;
}

/* Send chunk @id, the frame @frame of @len bytes, to @node alone, to be
 * made durable there. Returns 0 once the node holds it, or -errno. */
static int push(struct pifs_heal *h, uint32_t node, const struct pifs_chunk_id *id,
		const void *frame, size_t len)
{
	struct pifs_buf none = {NULL, 0, 0};
	struct pifs_msg req, rep;
	struct pifs_rpc *rpc;
	int rc;

	rc = pifs_peers_get(h->w.peers, node, &rpc);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.u.CHUNK_PUT.id = *id;
	req.u.CHUNK_PUT.flags = PIFS_PUT_SYNC;
	req.u.CHUNK_PUT.chain = pifs_list_of(&none, 0);
	rc = pifs_rpc_call(rpc, &req, frame, len, &rep, NULL, NULL, (int)h->d->conf->timeout_ms);
	if (rc == 0 && rep.type != PIFS_MSG_R_PUT)
		rc = -EPROTO;
	return rc;
}

static int slot_of(const struct pifs_heal_chunk *c, uint32_t node)
{
	uint32_t i;

	for (i = 0; i < c->nask; i++)
		if (c->ask[i] == node)
			return (int)i;
	return -1;
}

/* Node @node did not take a copy in time: it is dead or cut off, whatever
 * the map says yet. Send it nothing more in this batch (from chunk @ci on),
 * so that one dead node costs one timeout, not one per chunk. */
static void give_up_on(struct pifs_heal *h, uint32_t node, uint32_t ci)
{
	struct walk *w = &h->w;
	uint32_t i, j;

	for (i = ci; i < w->nbatch; i++)
		for (j = 0; j < w->plan[i].nask; j++)
			if (w->plan[i].ask[j] == node && w->plan[i].has[j] == PIFS_HEAL_LACKS)
				w->plan[i].has[j] = PIFS_HEAL_UNKNOWN;
}

/* Copy chunk @ci to the owners that lack it, as its plan says. */
static void copy_out(struct pifs_heal *h, uint32_t ci)
{
	struct pifs_heal_chunk *c = &h->w.plan[ci];
	struct item *it = &h->w.batch[ci];
	void *frame;
	size_t len;
	uint32_t i;
	int64_t now, wait;
	int rc, slot;

	rc = pifs_store_get(h->d->store, &it->id, &h->scratch, &frame, &len);
	if (rc == -EBADMSG)
		pifs_scrub_corrupt(h->d->scrub, &it->id);
	if (rc < 0)
		return; /* gone meanwhile, or corrupt and now being repaired */
	for (i = 0; i < c->npush && !stopping(h); i++) {
		rc = push(h, c->push[i], &it->id, frame, len);
		if (rc < 0) {
			note_failure(h, c->push[i], rc, &it->id);
			if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH)
				give_up_on(h, c->push[i], ci);
			continue;
		}
		slot = slot_of(c, c->push[i]);
		if (slot >= 0)
			c->has[slot] = PIFS_HEAL_HOLDS;
		h->sent++;
		now = pifs_now_ms();
		wait = pifs_worker_spend(&h->wk, len);
		pthread_mutex_lock(&h->wk.lock);
		h->moved_chunks++;
		h->moved_bytes += len;
		pifs_meter_add(&h->meter, len, now);
		h->busy_until = now + wait;
		pthread_mutex_unlock(&h->wk.lock);
		pifs_worker_nap(&h->wk, wait);
	}
	free(frame);
	pifs_heal_plan(c);
}

/* Count what the batch's decisions found, before acting on any of it, so
 * that status shows the work ahead and then each chunk coming off it. */
static void note_found(struct pifs_heal *h)
{
	struct walk *w = &h->w;
	uint32_t i;

	pthread_mutex_lock(&h->wk.lock);
	for (i = 0; i < w->nbatch; i++) {
		w->batch[i].found = w->plan[i].misplaced;
		w->batch[i].deg = w->plan[i].degraded;
		if (w->batch[i].found) {
			h->cur.found++;
			h->cur.found_bytes += w->batch[i].size;
		}
		if (w->batch[i].deg)
			h->cur.deg_found++;
	}
	pthread_mutex_unlock(&h->wk.lock);
}

/* Count chunk @ci as the pass leaves it. */
static void settle(struct pifs_heal *h, uint32_t ci, bool dropped)
{
	const struct pifs_heal_chunk *c = &h->w.plan[ci];
	const struct item *it = &h->w.batch[ci];

	pthread_mutex_lock(&h->wk.lock);
	if (it->found && (dropped || !c->misplaced)) {
		h->cur.resolved++;
		h->cur.resolved_bytes += it->size;
	}
	if (it->deg && !c->degraded)
		h->cur.deg_resolved++;
	pthread_mutex_unlock(&h->wk.lock);
}

/* Drop the copies that the plans allow, once every owner has made its own
 * durable: an owner's copy may still be only in its page cache, and this one
 * may be the only copy on a disk. */
static void drop_round(struct pifs_heal *h)
{
	int64_t deadline = pifs_now_ms() + h->d->conf->timeout_ms;
	struct walk *w = &h->w;
	struct pifs_msg rep;
	uint32_t i, j;
	bool any = false;
	char hex[33];
	int rc;

	w->ngroups = 0;
	for (i = 0; i < w->nbatch; i++) {
		struct pifs_heal_chunk *c = &w->plan[i];

		w->batch[i].synced = c->drop && w->agree;
		if (!w->batch[i].synced)
			continue;
		any = true;
		for (j = 0; j < c->nask; j++)
			if (c->ask_rank[j] < c->nowners &&
			    group_add(w, c->ask[j], i, (uint8_t)j) < 0)
				w->batch[i].synced = false;
	}
	if (!any)
		return;
	send_groups(w, PIFS_MSG_CHUNK_SYNC);
	for (i = 0; i < w->ngroups; i++) {
		struct group *g = &w->groups[i];
		int64_t left = deadline - pifs_now_ms();

		rc = -EHOSTUNREACH;
		if (g->sent)
			rc = pifs_rpc_recv(g->rpc, g->reqid, &rep, NULL, NULL,
					   left > 0 ? (int)left : 0);
		for (j = 0; rc < 0 && j < g->n; j++)
			w->batch[g->chunk[j]].synced = false;
	}
	for (i = 0; i < w->nbatch && !stopping(h); i++) {
		if (!w->batch[i].synced)
			continue;
		rc = pifs_store_del(h->d->store, &w->batch[i].id);
		if (rc < 0 && rc != -ENOENT) {
			pifs_chunk_id_hex(&w->batch[i].id, hex);
			pifs_warn(
			    "node %u: heal could not delete its surplus copy of chunk %s: %s; "
			    "check the data disk",
			    self_id(h), hex, strerror(-rc));
			w->batch[i].synced = false;
			continue;
		}
		h->dropped++;
	}
}

/* Will the drop round of the batch decide chunk @ci's fate? */
static bool awaits_drop(const struct walk *w, uint32_t ci)
{
	return w->plan[ci].drop && w->agree;
}

/* Decide and act for the chunks of the batch. Each chunk is counted as soon
 * as it is handled, so that status follows the copies one by one; only those
 * whose surplus copy may go wait for the batch's drop round. */
static void run_batch(struct pifs_heal *h)
{
	struct walk *w = &h->w;
	uint32_t i;

	if (!w->nbatch || decide_batch(w) < 0)
		return;
	note_found(h);
	for (i = 0; i < w->nbatch && !stopping(h); i++) {
		if (w->plan[i].npush)
			copy_out(h, i);
		if (!awaits_drop(w, i))
			settle(h, i, false);
	}
	if (stopping(h))
		return;
	drop_round(h);
	for (i = 0; i < w->nbatch; i++)
		if (awaits_drop(w, i))
			settle(h, i, w->batch[i].synced);
}

static int collect(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	struct pifs_heal *h = arg;
	struct walk *w = &h->w;

	if (stopping(h))
		return 1;
	w->batch[w->nbatch].id = *id;
	w->batch[w->nbatch].size = size;
	w->nbatch++;
	if (w->nbatch == BATCH) {
		run_batch(h);
		w->nbatch = 0;
	}
	return 0;
}

static void pass(struct pifs_heal *h)
{
	struct tally t;
	uint64_t n = 0;
	int rc;

	pthread_mutex_lock(&h->wk.lock);
	memset(&h->cur, 0, sizeof(h->cur));
	h->running = true;
	pthread_mutex_unlock(&h->wk.lock);
	h->sent = h->dropped = h->failed = 0;
	h->w.nbatch = 0;
	h->w.nmute = 0;
	pifs_worker_pace_begin(&h->wk);
	rc = pifs_store_each(h->d->store, collect, h);
	if (rc == 0) {
		run_batch(h);
		h->w.nbatch = 0;
	}
	pthread_mutex_lock(&h->wk.lock);
	h->running = false;
	t = h->cur;
	if (rc == 0 && !stopping(h)) {
		n = ++h->passes;
		h->left = t.found - t.resolved;
		h->left_bytes = t.found_bytes - t.resolved_bytes;
		h->left_deg = t.deg_found - t.deg_resolved;
	}
	pthread_mutex_unlock(&h->wk.lock);
	if (rc < 0)
		pifs_err("node %u: heal could not walk the chunks in %s: %s; check the data "
			 "disk; it tries again in its next pass",
			 self_id(h), h->d->data, strerror(-rc));
	if (!n)
		return;
	if (t.found || h->sent || h->dropped)
		pifs_info("node %u: heal pass %" PRIu64 ": %" PRIu64 " chunks were away from "
			  "their owners or short of copies (%" PRIu64 " degraded); %" PRIu64
			  " copies sent, %" PRIu64 " surplus copies deleted, %" PRIu64 " left",
			  self_id(h), n, t.found, t.deg_found, h->sent, h->dropped,
			  t.found - t.resolved);
	if (h->failed > 1)
		pifs_warn("node %u: heal failed to copy %" PRIu64 " chunks in this pass, the last "
			  "to node %u: %s; they are tried again in the next pass",
			  self_id(h), h->failed, h->last_node, strerror(-h->last_err));
}

/* Wait for the next pass: heal_interval after the last one began, or a
 * kick (WORK_START, or the heartbeat installing a map that needs one).
 * Returns false when the loop must stop. */
static bool wait_turn(struct pifs_heal *h)
{
	int64_t left;
	bool go = false;

	pthread_mutex_lock(&h->wk.lock);
	while (!stopping(h)) {
		left = h->next_pass - pifs_now_ms();
		/* No map, no placement: the heartbeat kicks when the first comes. */
		if (pifs_nodemap_epoch(&h->d->map) && (h->kicked || left <= 0)) {
			h->kicked = false;
			go = true;
			break;
		}
		pifs_worker_wait(&h->wk, left, WAIT_MAX_MS);
	}
	pthread_mutex_unlock(&h->wk.lock);
	return go;
}

static void *run(void *arg)
{
	struct pifs_heal *h = arg;

	walk_init(&h->w, h->d, &h->wk.stop, 0, &h->wk.peers);
	while (wait_turn(h)) {
		h->next_pass = pifs_now_ms() + h->d->conf->heal_interval_ms;
		pass(h);
	}
	walk_fini(&h->w);
	return NULL;
}

int pifs_heal_new(struct pifsd *d, struct pifs_heal **out)
{
	struct pifs_heal *h;
	int rc;

	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->d = d;
	rc = pifs_worker_init(&h->wk, d, d->conf->heal_rate, NULL, h);
	if (rc < 0) {
		free(h);
		return rc;
	}
	pifs_buf_init(&h->scratch);
	pifs_meter_init(&h->meter, pifs_now_ms());
	h->busy_until = pifs_now_ms() - IDLE_MS;
	pthread_mutex_init(&h->plan_lock, NULL);
	*out = h;
	return 0;
}

int pifs_heal_start(struct pifs_heal *h)
{
	return pifs_worker_start(&h->wk, run);
}

void pifs_heal_kick(struct pifs_heal *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->wk.lock);
	h->kicked = true;
	pifs_worker_signal(&h->wk);
	pthread_mutex_unlock(&h->wk.lock);
}

void pifs_heal_set_rate(struct pifs_heal *h, uint64_t rate)
{
	if (h)
		pifs_worker_set_rate(&h->wk, rate);
}

void pifs_heal_stop(struct pifs_heal *h)
{
	if (h)
		pifs_worker_stop(&h->wk);
}

void pifs_heal_free(struct pifs_heal *h)
{
	if (!h)
		return;
	pifs_worker_fini(&h->wk);
	pifs_buf_fini(&h->scratch);
	pthread_mutex_destroy(&h->plan_lock);
	free(h);
}

/* A plan under way: its walk and what it found so far. */
struct forecast {
	struct walk *w;
	struct pifs_heal_forecast *out;
	int err;
};

/* Count what the batch's decisions would send, and where. */
static int forecast_batch(struct forecast *f)
{
	struct pifs_heal_forecast *out = f->out;
	struct walk *w = f->w;
	uint32_t i, j;
	size_t k;
	int rc;

	if (!w->nbatch)
		return 0;
	rc = decide_batch(w);
	if (rc < 0)
		return rc;
	for (i = 0; i < w->nbatch; i++) {
		for (j = 0; j < w->plan[i].npush; j++) {
			for (k = 0; k < out->n && out->moves[k].to != w->plan[i].push[j]; k++)
				;
			if (k == out->n) {
				if (out->n == PIFS_PLACE_MAX_NODES)
					return -EOVERFLOW;
				out->moves[out->n].to = w->plan[i].push[j];
				out->moves[out->n].chunks = out->moves[out->n].bytes = 0;
				out->n++;
			}
			out->moves[k].chunks++;
			out->moves[k].bytes += w->batch[i].size;
			out->chunks++;
			out->bytes += w->batch[i].size;
		}
	}
	w->nbatch = 0;
	return 0;
}

static int forecast_collect(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	struct forecast *f = arg;
	struct walk *w = f->w;

	if (atomic_load(w->stop))
		return -ECANCELED;
	w->batch[w->nbatch].id = *id;
	w->batch[w->nbatch].size = size;
	w->nbatch++;
	return w->nbatch == BATCH ? forecast_batch(f) : 0;
}

int pifs_heal_forecast(struct pifs_heal *h, uint32_t as_in, struct pifs_heal_forecast *out)
{
	struct forecast f;
	int rc;

	memset(out, 0, sizeof(*out));
	if (pthread_mutex_trylock(&h->plan_lock) != 0)
		return -EBUSY;
	f.out = out;
	f.w = calloc(1, sizeof(*f.w));
	if (!f.w) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	walk_init(f.w, h->d, &h->wk.stop, as_in, NULL);
	rc = pifs_store_each(h->d->store, forecast_collect, &f);
	if (rc == 0)
		rc = forecast_batch(&f);
	walk_fini(f.w);
	free(f.w);
out_unlock:
	pthread_mutex_unlock(&h->plan_lock);
	return rc;
}

/* While a pass runs, what it has found so far may exceed what the last one
 * left; what it resolved comes off whichever is larger. */
static uint64_t estimate(bool running, uint64_t left, uint64_t found, uint64_t resolved)
{
	if (!running)
		return left;
	return (found > left ? found : left) - resolved;
}

void pifs_heal_report(struct pifs_heal *h, struct pifs_work *w)
{
	int64_t now = pifs_now_ms();

	if (!h) {
		w->heal_passes = w->heal_chunks = w->heal_bytes = w->degraded = 0;
		w->heal_rate = w->moved_chunks = w->moved_bytes = 0;
		w->heal_running = 0;
		return;
	}
	pthread_mutex_lock(&h->wk.lock);
	w->heal_passes = h->passes;
	w->heal_running = h->running;
	w->heal_chunks = estimate(h->running, h->left, h->cur.found, h->cur.resolved);
	w->heal_bytes =
	    estimate(h->running, h->left_bytes, h->cur.found_bytes, h->cur.resolved_bytes);
	w->degraded = estimate(h->running, h->left_deg, h->cur.deg_found, h->cur.deg_resolved);
	w->heal_rate = now - h->busy_until < IDLE_MS ? pifs_meter_rate(&h->meter, now) : 0;
	w->moved_chunks = h->moved_chunks;
	w->moved_bytes = h->moved_bytes;
	pthread_mutex_unlock(&h->wk.lock);
}
