/* place.h - where a chunk lives: weighted rendezvous hashing (HRW).
 *
 * Every node gets a score for a chunk, -weight / ln(u) with u in (0, 1) drawn
 * from a hash of (chunk id, node id); the owners are the nodes with the best
 * scores. Nothing is stored: any process that knows the nodes and their
 * weights computes the same order, and adding a node moves only the chunks
 * that now rank it first among their owners (about 1/(N+1) of them).
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_PLACE_H
#define PIFS_PLACE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* The most nodes one ranking takes: as many as a configuration can name. */
#define PIFS_PLACE_MAX_NODES 256

struct pifs_place_node {
	uint32_t id;
	uint32_t weight; /* 0 never ranks before a node of any positive weight */
};

/* Rank the @n nodes (borrowed) for chunk @id, best first: @order (OUT, room
 * for @n) receives node ids. Ties (nodes of weight 0, or equal hashes) fall
 * back to the lower node id, so the order is total and the same everywhere.
 * @n over PIFS_PLACE_MAX_NODES is a bug in the caller and aborts. */
void pifs_place_rank(const struct pifs_chunk_id *id, const struct pifs_place_node *nodes, size_t n,
		     uint32_t *order);

#endif
