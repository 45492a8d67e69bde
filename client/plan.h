/* plan.h - the client's placement decisions, apart from any I/O: which
 * nodes a chunk is written to, which to ask next when some failed, when to
 * give up and with which errno, in which order to read a chunk, and how to
 * tell a user the health of a file.
 *
 * Writes: the owners of a chunk are the nodes that are in, in HRW order
 * (place.h). The chain is the first R of them that are up, not avoided and
 * have not failed this chunk, so a node that is down or full is replaced by
 * the next one in HRW order (a stand-in; the convergence loop moves the copy
 * home later). After each answer the plan names the next untried nodes for
 * the copies still missing, until R are stored or no candidate is left.
 *
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_CLIENT_PLAN_H
#define PIFS_CLIENT_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "place.h"

/* The longest chain one CHUNK_PUT names: the most copies a chunk gets. */
#define PIFS_PLAN_MAX_CHAIN 16

/* A node of the cluster map as a client sees it now. */
struct pifs_plan_node {
	uint32_t id;
	uint32_t weight;
	uint32_t flags; /* PIFS_NODE_* from the map */
	bool avoid;	/* it failed a request lately: no writes, asked last for reads */
	int avoid_err;	/* why: -ENOSPC makes it a writer's last resort, not no candidate */
	bool local;	/* it runs on this machine: reads ask it first when it is an owner */
};

enum pifs_plan_state { PIFS_PLAN_UNTRIED, PIFS_PLAN_STORED, PIFS_PLAN_FAILED };

/* The copies of one chunk while it is being written. Caller storage. */
struct pifs_wplan {
	uint32_t replicas;
	size_t n;			     /* candidates: the nodes that are in */
	uint32_t node[PIFS_PLACE_MAX_NODES]; /* HRW order */
	bool usable[PIFS_PLACE_MAX_NODES];   /* up and not avoided */
	bool full[PIFS_PLACE_MAX_NODES];     /* up, avoided for ENOSPC a moment ago */
	uint8_t state[PIFS_PLACE_MAX_NODES]; /* enum pifs_plan_state */
	int err[PIFS_PLACE_MAX_NODES];	     /* why it failed */
	size_t stored;
};

/* Plan the copies of chunk @id over the @n map nodes @nodes (borrowed; at
 * most PIFS_PLACE_MAX_NODES) with @replicas copies wanted (0 counts as 1,
 * more than PIFS_PLAN_MAX_CHAIN as that). */
void pifs_wplan_init(struct pifs_wplan *p, const struct pifs_chunk_id *id,
		     const struct pifs_plan_node *nodes, size_t n, uint32_t replicas);

/* The next chain to send the chunk to: the first untried usable candidates,
 * as many as copies are missing, into @chain (OUT, room for
 * PIFS_PLAN_MAX_CHAIN). The nodes avoided for being full come after them,
 * as a last resort: space may have been freed since, and a copy should not
 * go missing without asking. Returns their count; 0 when the chunk has its
 * copies or no candidate is left, and then pifs_wplan_result says how it
 * went. */
size_t pifs_wplan_next(const struct pifs_wplan *p, uint32_t *chain /* OUT */);

/* The first node of @chain (@nchain nodes, borrowed) answered R_PUT with the
 * @nstored nodes @stored (borrowed): those hold a copy, and the nodes of the
 * chain it does not list failed (-EIO: the chain does not say why). */
void pifs_wplan_stored(struct pifs_wplan *p, const uint32_t *chain, size_t nchain,
		       const uint32_t *stored, size_t nstored);

/* The request to @node, the head of a chain, failed with @err: its R_STATUS
 * (then no node of the chain stored the chunk), -ETIMEDOUT or -EHOSTUNREACH
 * (then nobody knows: the rest of the chain stays untried, and sending the
 * same chunk twice to a node is harmless). */
void pifs_wplan_failed(struct pifs_wplan *p, uint32_t node, int err);

/* How many copies are stored. */
size_t pifs_wplan_copies(const struct pifs_wplan *p);

/* The nodes that hold a copy, HRW order, into @out (OUT, room for @cap).
 * Returns how many it wrote. */
size_t pifs_wplan_nodes(const struct pifs_wplan *p, uint32_t *out /* OUT */, size_t cap);

/* The outcome once pifs_wplan_next gives 0: 0 when at least one copy is
 * stored (the copies wanted, or as many as could be); -ENOSPC when none is
 * and every node that answered said ENOSPC (nodes that timed out, were
 * unreachable, down or avoided are not counted against it); else -EIO. */
int pifs_wplan_result(const struct pifs_wplan *p);

/* The order in which to ask the @n map nodes @nodes (borrowed) for chunk
 * @id, with @replicas copies, into @order (OUT, room for @n): first a local
 * node that is an owner, then the owners in HRW order, then every other
 * node that is in (the stand-ins come next in HRW order), then the nodes
 * that are out; in each group the nodes that are up and not avoided come
 * before the others, which are asked last of all. Returns the count;
 * *@nlive (OUT) is how many come before the nodes that are down or avoided. */
size_t pifs_plan_read(const struct pifs_chunk_id *id, const struct pifs_plan_node *nodes, size_t n,
		      uint32_t replicas, uint32_t *order /* OUT */, size_t *nlive /* OUT */);

/* What a client found of one chunk of a file. */
struct pifs_plan_copies {
	uint64_t index;			    /* the chunk's slot in the file */
	uint32_t copies;		    /* live nodes that hold it */
	uint32_t node[PIFS_PLAN_MAX_CHAIN]; /* the first of them */
};

/* Write the health of a file whose @n chunks are @c (borrowed) with
 * @replicas copies wanted into @out (@cap bytes, NUL-terminated), one line
 * without a newline: "healthy: 16 chunks, 2 copies each", "degraded: 3 of
 * 16 chunks have fewer than 2 copies (chunk 4: 1 copy on node 2)",
 * "unreadable: chunk 7 has no copy on a live node". The @nsilent nodes
 * @silent (borrowed) are live nodes that did not say what they hold: they
 * are named at the end, and a chunk found nowhere else makes the health
 * "unknown" rather than "unreadable". Returns the length it wanted, as
 * snprintf. */
int pifs_plan_health(const struct pifs_plan_copies *c, size_t n, uint32_t replicas,
		     const uint32_t *silent, size_t nsilent, char *out, size_t cap);

#endif
