/* heal.h - the convergence loop: heal and rebalance are one mechanism.
 *
 * A background thread walks this node's chunks, pass after pass, and makes
 * each one's owners hold it: the owners are the first R nodes in HRW order
 * among the nodes that are in the map. It asks the owners that are up which
 * of them hold each chunk (CHUNK_HAS, in batches), sends the chunk to those
 * that lack it (CHUNK_PUT with an empty chain), and deletes a copy this node
 * holds but does not own once every owner has confirmed and made its copy
 * durable. A node that is down but still in stays an owner: nothing is
 * copied for a reboot, and a stand-in copy made while it was down is kept
 * until it is back. Nothing is persisted: every pass recomputes from the
 * chunks on disk and the map.
 *
 * A pass starts every heal_interval and on pifs_heal_kick: WORK_START, and
 * the heartbeat when it installs a map that puts copies at risk or brings an
 * owner back (pifs_heal_urgent). Copies are paced at heal_rate, which
 * WORK_SET changes. pifs_heal_forecast makes the same decisions without
 * acting on them, for PLAN.
 *
 * The decision for one chunk is pure (pifs_heal_prepare, pifs_heal_plan) so
 * that it can be tested without sockets. */
#ifndef PIFS_HEAL_H
#define PIFS_HEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "place.h"
#include "proto.h"
#include "storaged_i.h"

/* The most nodes a chunk's decision asks: the owners and the first R nodes
 * that are up, for R up to 8 (config.c's limit). */
#define PIFS_HEAL_MAX_ASK 16

/* What a node said about holding a chunk. */
enum pifs_heal_has {
	PIFS_HEAL_UNKNOWN = 0, /* no answer (yet) */
	PIFS_HEAL_LACKS = 1,
	PIFS_HEAL_HOLDS = 2,
};

/* A node of the map, as the decision needs it. */
struct pifs_heal_node {
	uint32_t id;
	uint32_t weight;
	uint32_t flags; /* PIFS_NODE_* */
};

/* One chunk that this node holds, and what to do about it. */
struct pifs_heal_chunk {
	/* Set by pifs_heal_prepare. */
	uint32_t replicas;
	uint32_t nowners;		      /* R, or fewer when fewer nodes are in */
	uint32_t self_rank;		      /* this node's place in the HRW order of
					       * the in nodes; UINT32_MAX if not in */
	uint32_t nask;			      /* nodes to ask: up, not this one */
	uint32_t ask[PIFS_HEAL_MAX_ASK];      /* their ids, best first */
	uint32_t ask_rank[PIFS_HEAL_MAX_ASK]; /* their places in the HRW order */
	/* The other up nodes, this one excepted: asked only when the nodes in
	 * @ask hold too few copies, since a copy on its way to new owners may
	 * still sit on a node that is no longer among them. */
	uint32_t nmore;
	uint32_t more[PIFS_HEAL_MAX_ASK];
	/* Set by the caller from the answers: enum pifs_heal_has, per ask. */
	uint8_t has[PIFS_HEAL_MAX_ASK];
	uint8_t more_has[PIFS_HEAL_MAX_ASK]; /* the same, per node of @more */
	/* Set by pifs_heal_plan. */
	uint32_t npush;
	uint32_t push[PIFS_HEAL_MAX_ASK]; /* owners to send the chunk to */
	bool drop;	/* delete this node's copy: every owner confirmed its own */
	bool misplaced; /* away from its owners or short of copies, and this node
			 * is the one to act on it (counts in heal_chunks) */
	bool degraded;	/* fewer than R copies on up nodes (those asked, and
			 * those of @more that answered), counted by this node only */
};

/* Rank the in nodes of @nodes (@n, borrowed) for chunk @id and fill the
 * first part of @c (OUT): the owners (the first min(@replicas, in nodes)),
 * this node's place (@self), and which nodes to ask: the owners that are up
 * and the first @replicas nodes that are up (where a writer puts the copies
 * an owner that is down could not take), this node excepted, which counts as
 * up whatever the map says; and in @c->more the other up nodes (in or not),
 * to ask only when the plan finds the chunk degraded. Clears @c->has and
 * @c->more_has. @n over PIFS_PLACE_MAX_NODES is
 * a bug in the caller and aborts. */
void pifs_heal_prepare(const struct pifs_heal_node *nodes, size_t n, uint32_t replicas,
		       uint32_t self, const struct pifs_chunk_id *id, struct pifs_heal_chunk *c);

/* From @c->has, decide for this node, which holds the chunk: the highest
 * ranked owner that holds it sends it to every asked owner that lacks it; a
 * node that is no owner sends only when no owner holds it and no better
 * ranked stand-in does, and drops its copy once all R owners hold theirs
 * (never while one is down or did not answer). Recomputes the last part of
 * @c: call it again after marking the owners that took the chunk as
 * PIFS_HEAL_HOLDS to learn what is left. */
void pifs_heal_plan(struct pifs_heal_chunk *c);

/* Does the change from the map @old (@nold nodes) to @cur (@ncur), both
 * borrowed, need a pass at once? Yes when copies are at risk: a node that was
 * in is out without being drained, or gone from the map; and when an owner
 * is back: a node that was down or out is up and in, unless it is new or
 * being drained. An operator's changes (admitting a new node, draining one,
 * a weight) wait for WORK_START or heal_interval, so that a plan made after
 * them still shows what will move. Pure. */
bool pifs_heal_urgent(const struct pifs_heal_node *old, size_t nold,
		      const struct pifs_heal_node *cur, size_t ncur);

struct pifs_heal;

/* The convergence loop of the daemon @d (borrowed; it must outlive the
 * loop). *@out is freed with pifs_heal_free. Returns 0 or -errno. */
int pifs_heal_new(struct pifsd *d, struct pifs_heal **out /* OUT */);

/* Start the thread. Returns 0 or -errno. */
int pifs_heal_start(struct pifs_heal *h);

/* Start a pass now, or right after the one under way. NULL-safe. */
void pifs_heal_kick(struct pifs_heal *h);

/* Copy at most @rate bytes/s from now on, the running pass included (until
 * the daemon restarts); 0 changes nothing, UINT64_MAX lifts the limit.
 * Thread-safe, NULL-safe. */
void pifs_heal_set_rate(struct pifs_heal *h, uint64_t rate);

/* What a pass of this node would send now, and where. */
struct pifs_heal_forecast {
	uint64_t chunks, bytes; /* copies to send, and their bytes, in all */
	size_t n;		/* targets in @moves */
	struct {
		uint32_t to;
		uint64_t chunks, bytes;
	} moves[PIFS_PLACE_MAX_NODES];
};

/* Walk this node's chunks and make a pass's decisions (asking the other
 * nodes with CHUNK_HAS, as a pass does) without sending or deleting
 * anything, into @out (OUT). The up nodes whose flags have one of @as_in
 * (PIFS_NODE_NEW, or 0) count as in: a plan for admitting them. Runs in the
 * caller's thread, one at a time. Returns 0, -EBUSY (another plan is being
 * made: retry), -EAGAIN (no map yet), -ECANCELED (the daemon is stopping),
 * -ENOMEM or -errno from walking the store. */
int pifs_heal_forecast(struct pifs_heal *h, uint32_t as_in,
		       struct pifs_heal_forecast *out /* OUT */);

/* Ask the thread to stop soon, without waiting for it. NULL-safe. */
void pifs_heal_stop(struct pifs_heal *h);

/* Stop the thread if it runs, wait for it and free @h. NULL-safe. */
void pifs_heal_free(struct pifs_heal *h);

/* Fill the heal_* and moved_* fields of @w (OUT) with the figures of the
 * last pass (or of the one under way, when it has found more). NULL-safe:
 * no loop reports zeros. */
void pifs_heal_report(struct pifs_heal *h, struct pifs_work *w);

#endif
