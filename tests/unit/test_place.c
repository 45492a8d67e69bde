/* test_place.c - weighted rendezvous hashing: stability, weights, movement. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "place.h"

#define N_IDS 20000

/* The i-th test chunk id: spread like real ids, the same in every run. */
static struct pifs_chunk_id nth_id(uint32_t i)
{
	return pifs_chunk_id_of(&i, sizeof(i));
}

static uint32_t first_owner(uint32_t i, const struct pifs_place_node *nodes, size_t n)
{
	struct pifs_chunk_id id = nth_id(i);
	uint32_t order[8];

	cr_assert_leq(n, 8);
	pifs_place_rank(&id, nodes, n, order);
	return order[0];
}

Test(place, gives_the_same_order_every_time)
{
	static const struct pifs_place_node nodes[] = {{1, 100}, {2, 100}, {3, 50}, {4, 200}};
	struct pifs_chunk_id id = nth_id(42);
	uint32_t a[4], b[4];
	int i;

	pifs_place_rank(&id, nodes, 4, a);
	for (i = 0; i < 100; i++) {
		pifs_place_rank(&id, nodes, 4, b);
		cr_assert_arr_eq(a, b, sizeof(a));
	}
}

Test(place, returns_every_node_once)
{
	static const struct pifs_place_node nodes[] = {{7, 1}, {3, 1}, {11, 0}, {5, 2}, {9, 1}};
	uint32_t order[5];
	uint32_t i, j, seen;

	for (i = 0; i < 1000; i++) {
		struct pifs_chunk_id id = nth_id(i);

		pifs_place_rank(&id, nodes, 5, order);
		for (j = 0, seen = 0; j < 5; j++)
			seen |= 1u << order[j];
		cr_assert_eq(seen, 1u << 7 | 1u << 3 | 1u << 11 | 1u << 5 | 1u << 9);
	}
}

Test(place, ignores_the_order_nodes_are_listed_in)
{
	static const struct pifs_place_node fwd[] = {{1, 1}, {2, 3}, {3, 1}, {4, 2}, {5, 0}};
	static const struct pifs_place_node rev[] = {{5, 0}, {4, 2}, {3, 1}, {2, 3}, {1, 1}};
	static const struct pifs_place_node mix[] = {{3, 1}, {5, 0}, {1, 1}, {4, 2}, {2, 3}};
	uint32_t a[5], b[5], c[5];
	uint32_t i;

	for (i = 0; i < 2000; i++) {
		struct pifs_chunk_id id = nth_id(i);

		pifs_place_rank(&id, fwd, 5, a);
		pifs_place_rank(&id, rev, 5, b);
		pifs_place_rank(&id, mix, 5, c);
		cr_assert_arr_eq(a, b, sizeof(a));
		cr_assert_arr_eq(a, c, sizeof(a));
	}
}

Test(place, spreads_first_owners_by_weight)
{
	static const struct pifs_place_node nodes[] = {{1, 1}, {2, 1}, {3, 2}};
	unsigned count[4] = {0};
	uint32_t i;

	for (i = 0; i < N_IDS; i++)
		count[first_owner(i, nodes, 3)]++;
	/* 3 points is about ten standard deviations at this sample size. */
	cr_assert_leq(abs((int)count[1] * 100 / N_IDS - 25), 3, "node 1 got %u", count[1]);
	cr_assert_leq(abs((int)count[2] * 100 / N_IDS - 25), 3, "node 2 got %u", count[2]);
	cr_assert_leq(abs((int)count[3] * 100 / N_IDS - 50), 3, "node 3 got %u", count[3]);
}

Test(place, ranks_weight_zero_last_with_ties_by_lower_id)
{
	static const struct pifs_place_node nodes[] = {{9, 0}, {4, 1}, {3, 0}, {8, 5}};
	uint32_t order[4];
	uint32_t i;

	for (i = 0; i < 1000; i++) {
		struct pifs_chunk_id id = nth_id(i);

		pifs_place_rank(&id, nodes, 4, order);
		cr_assert(order[0] == 4 || order[0] == 8);
		cr_assert(order[1] == 4 || order[1] == 8);
		cr_assert_eq(order[2], 3);
		cr_assert_eq(order[3], 9);
	}
}

Test(place, moves_only_a_quarter_to_a_fourth_equal_node)
{
	static const struct pifs_place_node three[] = {{1, 10}, {2, 10}, {3, 10}};
	static const struct pifs_place_node four[] = {{1, 10}, {2, 10}, {3, 10}, {4, 10}};
	unsigned moved = 0;
	uint32_t i, before, after;

	for (i = 0; i < N_IDS; i++) {
		before = first_owner(i, three, 3);
		after = first_owner(i, four, 4);
		if (before == after)
			continue;
		cr_assert_eq(after, 4, "chunk %u moved from node %u to node %u", i, before, after);
		moved++;
	}
	cr_assert_geq(moved, N_IDS / 5, "only %u of %u moved", moved, N_IDS);
	cr_assert_leq(moved, N_IDS * 3 / 10, "%u of %u moved", moved, N_IDS);
}

Test(place, removing_a_node_moves_only_its_chunks)
{
	static const struct pifs_place_node all[] = {{1, 1}, {2, 2}, {3, 1}, {4, 3}, {5, 1}};
	static const struct pifs_place_node without3[] = {{1, 1}, {2, 2}, {4, 3}, {5, 1}};
	uint32_t a[5], b[4], rest[4];
	size_t j, k;
	uint32_t i;

	for (i = 0; i < N_IDS; i++) {
		struct pifs_chunk_id id = nth_id(i);

		pifs_place_rank(&id, all, 5, a);
		pifs_place_rank(&id, without3, 4, b);
		/* The order without node 3 is the old order with 3 left out, so
		 * every owner set that did not hold 3 is unchanged. */
		for (j = 0, k = 0; j < 5; j++)
			if (a[j] != 3)
				rest[k++] = a[j];
		cr_assert_arr_eq(rest, b, sizeof(b), "chunk %u", i);
	}
}

/* The documented score, written out again independently of place.c. */
static double reference_score(const struct pifs_chunk_id *id, uint32_t node, uint32_t weight)
{
	uint8_t key[20];
	uint64_t h;
	int i;

	for (i = 0; i < 8; i++) {
		key[i] = (uint8_t)(id->hi >> (56 - 8 * i));
		key[8 + i] = (uint8_t)(id->lo >> (56 - 8 * i));
	}
	for (i = 0; i < 4; i++)
		key[16 + i] = (uint8_t)(node >> (24 - 8 * i));
	h = XXH3_64bits(key, sizeof(key));
	return weight ? -(double)weight / log(((double)(h >> 11) + 0.5) / 9007199254740992.0) : 0;
}

Test(place, follows_the_documented_score)
{
	static const struct pifs_place_node nodes[] = {{1, 3}, {20, 1}, {300, 7}, {4000, 2}};
	uint32_t order[4];
	double prev, s;
	uint32_t i, w = 0;
	size_t j, k;

	/* Every machine of a cluster must agree: pin the key's byte order and
	 * the score, so that a change to either shows up here. */
	for (i = 0; i < 2000; i++) {
		struct pifs_chunk_id id = nth_id(i);

		pifs_place_rank(&id, nodes, 4, order);
		prev = HUGE_VAL;
		for (j = 0; j < 4; j++) {
			for (k = 0; k < 4; k++)
				if (nodes[k].id == order[j])
					w = nodes[k].weight;
			s = reference_score(&id, order[j], w);
			cr_assert_leq(s, prev, "chunk %u: node %u ranked %zu", i, order[j], j);
			prev = s;
		}
	}
}

Test(place, takes_no_more_than_the_maximum, .signal = SIGABRT)
{
	static struct pifs_place_node nodes[PIFS_PLACE_MAX_NODES + 1];
	static uint32_t order[PIFS_PLACE_MAX_NODES + 1];
	struct pifs_chunk_id id = nth_id(1);
	size_t i;

	for (i = 0; i <= PIFS_PLACE_MAX_NODES; i++)
		nodes[i] = (struct pifs_place_node){.id = (uint32_t)i + 1, .weight = 1};
	pifs_place_rank(&id, nodes, PIFS_PLACE_MAX_NODES, order);
	pifs_place_rank(&id, nodes, PIFS_PLACE_MAX_NODES + 1, order);
}
