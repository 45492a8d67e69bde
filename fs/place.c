/* place.c - weighted rendezvous hashing.
 *
 * A node's score for a chunk is -weight / ln(u), u uniform in (0, 1) from a
 * hash of (chunk id, node id). Then -ln(u) / weight is exponential with rate
 * weight, so the node with the best score is the first owner with probability
 * weight / total weight; and a node's score never depends on which other
 * nodes exist, which is what keeps movement minimal when nodes come and go. */
#include "place.h"

#include <math.h>
#include <stdlib.h>
#include <xxhash.h>

#include "config.h"

_Static_assert(PIFS_PLACE_MAX_NODES >= PIFS_CONF_MAX_NODES,
	       "placement must rank every node a configuration can name");

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static double score(const struct pifs_chunk_id *id, const struct pifs_place_node *node)
{
	uint8_t key[20];
	uint64_t h;
	double u;

	if (node->weight == 0)
		return 0.0;
	/* A fixed byte order makes every machine draw the same u. */
	put_be(key, id->hi, 8);
	put_be(key + 8, id->lo, 8);
	put_be(key + 16, node->id, 4);
	h = XXH3_64bits(key, sizeof(key));
	/* The top 53 bits are exact in a double; the half keeps u off 0 and 1,
	 * where ln would give infinity or 0. */
	u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;
	return -(double)node->weight / log(u);
}

void pifs_place_rank(const struct pifs_chunk_id *id, const struct pifs_place_node *nodes, size_t n,
		     uint32_t *order)
{
	double scores[PIFS_PLACE_MAX_NODES];
	size_t i, j;
	double s;

	/* The order must be complete or callers would silently place chunks on
	 * a subset of the cluster; there is no error to return instead. */
	if (n > PIFS_PLACE_MAX_NODES)
		abort();
	/* Insertion sort: n is a cluster's node count, and this needs no
	 * allocation on a path taken for every chunk. */
	for (i = 0; i < n; i++) {
		s = score(id, &nodes[i]);
		for (j = i; j > 0; j--) {
			if (scores[j - 1] > s || (scores[j - 1] == s && order[j - 1] < nodes[i].id))
				break;
			scores[j] = scores[j - 1];
			order[j] = order[j - 1];
		}
		scores[j] = s;
		order[j] = nodes[i].id;
	}
}
