/* Tests of the client's placement decisions (client/plan.c): which nodes a
 * chunk is written to, what is tried after a failure, when the writer gives
 * up and with which errno, the order of reads, and the health line. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "plan.h"
#include "proto.h"

#define UPIN (PIFS_NODE_UP | PIFS_NODE_IN)

static const struct pifs_chunk_id cid = {0x0123456789abcdefull, 0xfedcba9876543210ull};

static struct pifs_plan_node nodes[8];
static size_t nn;

/* @n nodes with ids 1..n, weight 100, up and in. */
static void cluster(size_t n)
{
	memset(nodes, 0, sizeof(nodes));
	for (size_t i = 0; i < n; i++) {
		nodes[i].id = (uint32_t)i + 1;
		nodes[i].weight = 100;
		nodes[i].flags = UPIN;
	}
	nn = n;
}

static struct pifs_plan_node *node(uint32_t id)
{
	return &nodes[id - 1];
}

/* The HRW order of every node for cid, as the contract of place.h gives it. */
static void hrw(uint32_t *order)
{
	struct pifs_place_node pn[8];

	for (size_t i = 0; i < nn; i++) {
		pn[i].id = nodes[i].id;
		pn[i].weight = nodes[i].weight;
	}
	pifs_place_rank(&cid, pn, nn, order);
}

static struct pifs_wplan plan;

Test(client_place, the_chain_is_the_first_r_owners_in_hrw_order)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(5);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 3);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 3);
	cr_assert_arr_eq(chain, o, 3 * sizeof(uint32_t));
}

Test(client_place, a_down_owner_is_replaced_by_the_next_node_in_hrw_order)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(4);
	hrw(o);
	node(o[0])->flags &= ~(uint32_t)PIFS_NODE_UP;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_eq(chain[0], o[1]);
	cr_assert_eq(chain[1], o[2]);
}

Test(client_place, an_avoided_node_gets_no_new_copy)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	node(o[1])->avoid = true;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_eq(chain[0], o[0]);
	cr_assert_eq(chain[1], o[2]);
}

Test(client_place, a_node_that_is_out_is_never_written_to)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	node(o[0])->flags = PIFS_NODE_UP;
	pifs_wplan_init(&plan, &cid, nodes, nn, 3);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_neq(chain[0], o[0]);
	cr_assert_neq(chain[1], o[0]);
}

Test(client_place, a_full_chain_ends_the_plan)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_stored(&plan, chain, 2, chain, 2);
	cr_assert_eq(pifs_wplan_copies(&plan), 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), 0);
}

Test(client_place, a_short_r_put_sends_the_missing_copy_to_the_next_untried_node)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN], got[PIFS_PLAN_MAX_CHAIN];

	cluster(4);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	/* The second node of the chain did not store it. */
	pifs_wplan_stored(&plan, chain, 2, &o[0], 1);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	cr_assert_eq(chain[0], o[2]);
	pifs_wplan_stored(&plan, chain, 1, chain, 1);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_nodes(&plan, got, PIFS_PLAN_MAX_CHAIN), 2);
	cr_assert_eq(got[0], o[0]);
	cr_assert_eq(got[1], o[2]);
}

Test(client_place, a_head_that_timed_out_leaves_the_rest_of_its_chain_to_try_again)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_failed(&plan, chain[0], -ETIMEDOUT);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_eq(chain[0], o[1]);
	cr_assert_eq(chain[1], o[2]);
}

Test(client_place, fewer_live_nodes_than_r_still_acknowledge_the_copies_stored)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	node(o[1])->flags &= ~(uint32_t)PIFS_NODE_UP;
	node(o[2])->flags &= ~(uint32_t)PIFS_NODE_UP;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	cr_assert_eq(chain[0], o[0]);
	pifs_wplan_stored(&plan, chain, 1, chain, 1);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), 0);
	cr_assert_eq(pifs_wplan_copies(&plan), 1);
}

Test(client_place, every_node_full_gives_enospc)
{
	uint32_t chain[PIFS_PLAN_MAX_CHAIN];
	size_t k;

	cluster(3);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	for (int round = 0; round < 4 && (k = pifs_wplan_next(&plan, chain)) > 0; round++)
		pifs_wplan_failed(&plan, chain[0], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -ENOSPC);
}

Test(client_place, full_nodes_and_a_dead_one_give_enospc)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_failed(&plan, o[0], -EHOSTUNREACH);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_failed(&plan, o[1], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	pifs_wplan_failed(&plan, o[2], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -ENOSPC);
}

Test(client_place, a_node_avoided_for_being_full_is_asked_last)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	node(o[0])->avoid = true;
	node(o[0])->avoid_err = -ENOSPC;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_eq(chain[0], o[1]);
	cr_assert_eq(chain[1], o[2]);
	pifs_wplan_stored(&plan, chain, 2, &o[1], 1);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	cr_assert_eq(chain[0], o[0]);
	pifs_wplan_failed(&plan, o[0], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), 0);
	cr_assert_eq(pifs_wplan_copies(&plan), 1);
}

Test(client_place, nodes_avoided_for_being_full_are_asked_before_the_writer_gives_up)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	for (uint32_t id = 1; id <= 3; id++) {
		node(id)->avoid = true;
		node(id)->avoid_err = -ENOSPC;
	}
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	cr_assert_eq(chain[0], o[0]);
	cr_assert_eq(chain[1], o[1]);
	pifs_wplan_failed(&plan, o[0], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_failed(&plan, o[1], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	pifs_wplan_failed(&plan, o[2], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -ENOSPC);
}

Test(client_place, a_node_avoided_for_a_timeout_is_no_answer)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	hrw(o);
	node(o[0])->avoid = true;
	node(o[0])->avoid_err = -ETIMEDOUT;
	node(o[1])->avoid = true;
	node(o[1])->avoid_err = -EIO;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	cr_assert_eq(chain[0], o[2]);
	pifs_wplan_failed(&plan, o[2], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -ENOSPC);
}

Test(client_place, a_disk_error_among_full_nodes_gives_eio)
{
	uint32_t o[8], chain[PIFS_PLAN_MAX_CHAIN];

	cluster(2);
	hrw(o);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 2);
	pifs_wplan_failed(&plan, o[0], -ENOSPC);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	pifs_wplan_failed(&plan, o[1], -EIO);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -EIO);
}

Test(client_place, no_live_node_gives_eio_without_trying_any)
{
	uint32_t chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	for (size_t i = 0; i < nn; i++)
		nodes[i].flags = PIFS_NODE_IN;
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 0);
	cr_assert_eq(pifs_wplan_result(&plan), -EIO);
}

Test(client_place, only_timeouts_give_eio)
{
	uint32_t chain[PIFS_PLAN_MAX_CHAIN];
	size_t k;

	cluster(3);
	pifs_wplan_init(&plan, &cid, nodes, nn, 2);
	for (int round = 0; round < 4 && (k = pifs_wplan_next(&plan, chain)) > 0; round++)
		pifs_wplan_failed(&plan, chain[0], -ETIMEDOUT);
	cr_assert_eq(pifs_wplan_result(&plan), -EIO);
}

Test(client_place, replicas_are_capped_at_the_longest_chain)
{
	uint32_t chain[PIFS_PLAN_MAX_CHAIN];

	cluster(3);
	pifs_wplan_init(&plan, &cid, nodes, nn, 0);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 1);
	pifs_wplan_init(&plan, &cid, nodes, nn, 1000);
	cr_assert_eq(plan.replicas, PIFS_PLAN_MAX_CHAIN);
	cr_assert_eq(pifs_wplan_next(&plan, chain), 3);
}

Test(client_place, reads_follow_hrw_order_when_no_node_is_local)
{
	uint32_t o[8], order[8];
	size_t nlive;

	cluster(4);
	hrw(o);
	cr_assert_eq(pifs_plan_read(&cid, nodes, nn, 2, order, &nlive), 4);
	cr_assert_eq(nlive, 4);
	cr_assert_arr_eq(order, o, 4 * sizeof(uint32_t));
}

Test(client_place, reads_ask_a_local_owner_first)
{
	uint32_t o[8], order[8];
	size_t nlive;

	cluster(4);
	hrw(o);
	node(o[1])->local = true;
	pifs_plan_read(&cid, nodes, nn, 2, order, &nlive);
	cr_assert_eq(order[0], o[1]);
	cr_assert_eq(order[1], o[0]);
	cr_assert_eq(order[2], o[2]);
}

Test(client_place, a_local_node_that_is_no_owner_keeps_its_place)
{
	uint32_t o[8], order[8];
	size_t nlive;

	cluster(4);
	hrw(o);
	node(o[3])->local = true;
	pifs_plan_read(&cid, nodes, nn, 2, order, &nlive);
	cr_assert_arr_eq(order, o, 4 * sizeof(uint32_t));
}

Test(client_place, reads_ask_down_and_avoided_nodes_last)
{
	uint32_t o[8], order[8];
	size_t nlive;

	cluster(4);
	hrw(o);
	node(o[0])->flags &= ~(uint32_t)PIFS_NODE_UP;
	node(o[2])->avoid = true;
	cr_assert_eq(pifs_plan_read(&cid, nodes, nn, 2, order, &nlive), 4);
	cr_assert_eq(nlive, 2);
	cr_assert_eq(order[0], o[1]);
	cr_assert_eq(order[1], o[3]);
	cr_assert_eq(order[2], o[0]);
	cr_assert_eq(order[3], o[2]);
}

Test(client_place, reads_ask_nodes_that_are_out_after_those_that_are_in)
{
	uint32_t o[8], order[8];
	size_t nlive;

	cluster(3);
	hrw(o);
	node(o[0])->flags = PIFS_NODE_UP;
	cr_assert_eq(pifs_plan_read(&cid, nodes, nn, 2, order, &nlive), 3);
	cr_assert_eq(order[0], o[1]);
	cr_assert_eq(order[1], o[2]);
	cr_assert_eq(order[2], o[0]);
}

static char line[512];

Test(client_place, health_of_a_file_with_every_copy)
{
	struct pifs_plan_copies c[3] = {{0, 2, {1, 2}}, {1, 2, {2, 3}}, {2, 2, {1, 3}}};

	pifs_plan_health(c, 3, 2, NULL, 0, line, sizeof(line));
	cr_assert_str_eq(line, "healthy: 3 chunks, 2 copies each");
	c[1].copies = 3;
	pifs_plan_health(c, 3, 2, NULL, 0, line, sizeof(line));
	cr_assert_str_eq(line, "healthy: 3 chunks, at least 2 copies each");
}

Test(client_place, health_of_a_file_short_of_copies)
{
	struct pifs_plan_copies c[3] = {{0, 2, {1, 2}}, {4, 1, {2}}, {9, 1, {3}}};

	pifs_plan_health(c, 3, 2, NULL, 0, line, sizeof(line));
	cr_assert_str_eq(line, "degraded: 2 of 3 chunks have fewer than 2 copies "
			       "(chunk 4: 1 copy on node 2)");
}

Test(client_place, health_of_a_file_with_a_chunk_nowhere)
{
	struct pifs_plan_copies c[2] = {{0, 1, {1}}, {7, 0, {0}}};
	uint32_t silent = 3;

	pifs_plan_health(c, 2, 2, NULL, 0, line, sizeof(line));
	cr_assert_str_eq(line, "unreadable: chunk 7 has no copy on a live node");
	pifs_plan_health(c, 2, 2, &silent, 1, line, sizeof(line));
	cr_assert_str_eq(line, "unknown: 1 of 2 chunks found on no live node that answered "
			       "(chunk 7 first); node 3 did not answer");
}

Test(client_place, health_never_overflows_its_buffer)
{
	struct pifs_plan_copies c[1] = {{123456789, 1, {2}}};
	char small[16];
	int w;

	memset(small, 'x', sizeof(small));
	w = pifs_plan_health(c, 1, 3, NULL, 0, small, sizeof(small));
	cr_assert_gt(w, (int)sizeof(small));
	cr_assert_eq(small[sizeof(small) - 1], '\0');
}
