/* test_heal.c - the decisions of the convergence loop, without sockets:
 * who asks whom about a chunk, who sends it where, when a copy may go, which
 * map changes need a pass at once; the pace and meter that keep heal and
 * scrub at their rates; the sockets to other nodes that heal and scrub keep
 * (suite "peers"); what heal, scrub and gc report before they have run; and
 * when a plan (PLAN) cannot be made (suite "forecast"). */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "gc.h"
#include "heal.h"
#include "pace.h"
#include "peers.h"
#include "place.h"
#include "scrub.h"

#define UP_IN (PIFS_NODE_UP | PIFS_NODE_IN)

static struct pifs_heal_node nodes[5];
static const struct pifs_chunk_id chunk = {0x0123456789abcdefull, 0xfedcba9876543210ull};
/* The ids of the nodes in HRW order for the chunk: rank[0] is its first owner. */
static uint32_t rank[5];

/* @n nodes 1..@n of weight 1, all up and in; fills rank[]. */
static void cluster(size_t n)
{
	struct pifs_place_node pn[5];
	size_t i;

	for (i = 0; i < n; i++) {
		nodes[i].id = (uint32_t)i + 1;
		nodes[i].weight = 1;
		nodes[i].flags = UP_IN;
		pn[i].id = nodes[i].id;
		pn[i].weight = 1;
	}
	pifs_place_rank(&chunk, pn, n, rank);
}

static struct pifs_heal_node *node(uint32_t id)
{
	return &nodes[id - 1];
}

static void prepare(size_t n, uint32_t replicas, uint32_t self, struct pifs_heal_chunk *c)
{
	pifs_heal_prepare(nodes, n, replicas, self, &chunk, c);
}

/* Set the answer of node @id; it must be among those asked. */
static void answer(struct pifs_heal_chunk *c, uint32_t id, enum pifs_heal_has has)
{
	uint32_t i;

	for (i = 0; i < c->nask; i++) {
		if (c->ask[i] == id) {
			c->has[i] = (uint8_t)has;
			return;
		}
	}
	cr_assert_fail("node %u was not asked", id);
}

static bool asked(const struct pifs_heal_chunk *c, uint32_t id)
{
	uint32_t i;

	for (i = 0; i < c->nask; i++)
		if (c->ask[i] == id)
			return true;
	return false;
}

Test(heal, an_owner_asks_the_other_owners_and_nobody_else)
{
	struct pifs_heal_chunk c;

	cluster(4);
	prepare(4, 2, rank[0], &c);
	cr_assert_eq(c.nowners, 2);
	cr_assert_eq(c.self_rank, 0);
	cr_assert_eq(c.nask, 1);
	cr_assert_eq(c.ask[0], rank[1]);
	cr_assert_eq(c.ask_rank[0], 1);
}

Test(heal, an_owner_that_is_down_is_not_asked_and_the_next_up_node_is)
{
	struct pifs_heal_chunk c;

	cluster(4);
	node(rank[1])->flags = PIFS_NODE_IN;
	prepare(4, 2, rank[3], &c);
	cr_assert_eq(c.nowners, 2, "a node down but in is still an owner");
	cr_assert_eq(c.self_rank, 3);
	cr_assert_eq(c.nask, 2);
	cr_assert_eq(c.ask[0], rank[0]);
	cr_assert_eq(c.ask[1], rank[2], "where a writer put the copy the down owner missed");
	cr_assert_not(asked(&c, rank[1]));
}

Test(heal, a_node_that_is_out_is_no_owner_and_not_ranked)
{
	struct pifs_heal_chunk c;

	cluster(3);
	node(rank[0])->flags = PIFS_NODE_UP;
	prepare(3, 2, rank[0], &c);
	cr_assert_eq(c.self_rank, UINT32_MAX);
	cr_assert_eq(c.nowners, 2);
	cr_assert_eq(c.nask, 2);
	cr_assert_eq(c.ask[0], rank[1]);
	cr_assert_eq(c.ask[1], rank[2]);
}

Test(heal, the_best_owner_that_holds_a_chunk_sends_it_to_the_owner_that_lacks_it)
{
	struct pifs_heal_chunk c;

	cluster(3);
	prepare(3, 2, rank[0], &c);
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 1);
	cr_assert_eq(c.push[0], rank[1]);
	cr_assert_not(c.drop, "an owner never drops its copy");
	cr_assert(c.misplaced);
	cr_assert(c.degraded, "one copy of two");
	/* Once the other owner took it, nothing is left to do. */
	answer(&c, rank[1], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0);
	cr_assert_not(c.misplaced);
	cr_assert_not(c.degraded);
}

Test(heal, an_owner_leaves_the_copy_to_a_better_owner_that_holds_it)
{
	struct pifs_heal_chunk c;

	cluster(4);
	prepare(4, 3, rank[2], &c);
	answer(&c, rank[0], PIFS_HEAL_HOLDS);
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0);
	cr_assert_not(c.drop);
	cr_assert_not(c.misplaced, "the sender counts it, not every holder");
	cr_assert_not(c.degraded);
}

Test(heal, an_owner_that_did_not_answer_gets_no_copy_but_the_chunk_counts)
{
	struct pifs_heal_chunk c;

	cluster(3);
	prepare(3, 2, rank[0], &c);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0);
	cr_assert(c.misplaced);
}

Test(heal, a_stand_in_sends_a_chunk_home_and_drops_it_once_every_owner_holds_it)
{
	struct pifs_heal_chunk c;

	cluster(4);
	prepare(4, 2, rank[2], &c);
	answer(&c, rank[0], PIFS_HEAL_LACKS);
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 2);
	cr_assert_eq(c.push[0], rank[0]);
	cr_assert_eq(c.push[1], rank[1]);
	cr_assert_not(c.drop, "the only copy stays");
	cr_assert(c.misplaced);
	cr_assert(c.degraded);
	answer(&c, rank[0], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_not(c.drop, "one owner of two is not enough");
	answer(&c, rank[1], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert(c.drop);
	cr_assert_eq(c.npush, 0);
}

Test(heal, a_stand_in_keeps_its_copy_while_an_owner_is_down)
{
	struct pifs_heal_chunk c;

	cluster(4);
	node(rank[1])->flags = PIFS_NODE_IN;
	prepare(4, 2, rank[2], &c);
	answer(&c, rank[0], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0, "the owner that holds it is the sender");
	cr_assert_not(c.drop, "it is the second copy while the owner is down");
	cr_assert(c.misplaced, "it must go home later");
	cr_assert_not(c.degraded, "two live copies");
	/* The owner that holds it sees both copies: nothing to count twice. */
	prepare(4, 2, rank[0], &c);
	answer(&c, rank[2], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0, "no copy is sent to a node that is down");
	cr_assert_not(c.misplaced);
	cr_assert_not(c.degraded);
}

/* Set the answer of node @id among the other up nodes of @c. */
static void answer_more(struct pifs_heal_chunk *c, uint32_t id, enum pifs_heal_has has)
{
	uint32_t i;

	for (i = 0; i < c->nmore; i++) {
		if (c->more[i] == id) {
			c->more_has[i] = (uint8_t)has;
			return;
		}
	}
	cr_assert_fail("node %u is not among the other up nodes", id);
}

Test(heal, a_chunk_moving_to_an_admitted_node_is_not_degraded_while_its_old_copy_lives)
{
	struct pifs_heal_chunk c;

	/* rank[1] was just admitted and is now an owner; the old second copy
	 * is on rank[2], which is no longer asked first. */
	cluster(4);
	prepare(4, 2, rank[0], &c);
	cr_assert_eq(c.nask, 1);
	cr_assert_not(asked(&c, rank[2]));
	cr_assert_eq(c.nmore, 2, "the other up nodes are kept to ask if needed");
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert(c.degraded, "the owners asked hold one copy: ask the others");
	answer_more(&c, rank[2], PIFS_HEAL_HOLDS);
	answer_more(&c, rank[3], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_not(c.degraded, "two up nodes hold it");
	cr_assert(c.misplaced, "it still has to reach its new owner");
	cr_assert_eq(c.npush, 1, "the copies sent do not depend on the other nodes");
	cr_assert_eq(c.push[0], rank[1]);
	cr_assert_not(c.drop);
}

Test(heal, a_chunk_whose_only_other_copy_is_on_a_down_node_stays_degraded)
{
	struct pifs_heal_chunk c;

	cluster(4);
	node(rank[2])->flags = PIFS_NODE_IN;
	prepare(4, 2, rank[0], &c);
	cr_assert_eq(c.nmore, 1, "a down node is not asked");
	cr_assert_eq(c.more[0], rank[3]);
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	answer_more(&c, rank[3], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert(c.degraded);
	cr_assert_eq(c.npush, 1);
}

Test(heal, a_reboot_copies_nothing_and_counts_the_chunk_degraded)
{
	struct pifs_heal_chunk c;

	cluster(3);
	node(rank[0])->flags = PIFS_NODE_IN;
	prepare(3, 2, rank[1], &c);
	answer(&c, rank[2], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0, "no copy storm while the owner is only down");
	cr_assert(c.degraded);
	cr_assert(c.misplaced);
}

Test(heal, a_copy_is_never_dropped_while_an_owner_did_not_answer)
{
	struct pifs_heal_chunk c;

	cluster(3);
	prepare(3, 2, rank[2], &c);
	answer(&c, rank[0], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_not(c.drop);
	cr_assert_eq(c.npush, 0);
}

Test(heal, a_node_that_is_out_sends_only_when_no_node_asked_holds_the_chunk)
{
	struct pifs_heal_chunk c;

	cluster(3);
	node(rank[0])->flags = PIFS_NODE_UP;
	prepare(3, 2, rank[0], &c);
	answer(&c, rank[1], PIFS_HEAL_HOLDS);
	answer(&c, rank[2], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0, "the owner that holds it sends it");
	cr_assert_not(c.drop);
	cr_assert(c.misplaced);
	answer(&c, rank[1], PIFS_HEAL_LACKS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 2);
	answer(&c, rank[1], PIFS_HEAL_HOLDS);
	answer(&c, rank[2], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert(c.drop, "a drained node empties once the owners hold its chunks");
}

Test(heal, a_stand_in_ranked_behind_another_holder_does_not_send)
{
	struct pifs_heal_chunk c;

	/* Both owners down: the first two up nodes hold the writer's copies. */
	cluster(5);
	node(rank[0])->flags = PIFS_NODE_IN;
	node(rank[1])->flags = PIFS_NODE_IN;
	prepare(5, 2, rank[3], &c);
	cr_assert_eq(c.nask, 1);
	answer(&c, rank[2], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_eq(c.npush, 0);
	cr_assert_not(c.drop);
	cr_assert_not(c.degraded, "two live copies");
}

Test(heal, with_fewer_nodes_in_than_replicas_nothing_is_dropped)
{
	struct pifs_heal_chunk c;

	cluster(2);
	node(rank[0])->flags = PIFS_NODE_UP;
	prepare(2, 2, rank[0], &c);
	cr_assert_eq(c.nowners, 1);
	answer(&c, rank[1], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert_not(c.drop, "this copy is one of the two the cluster wants");
}

Test(heal, with_one_replica_a_surplus_copy_goes_once_the_owner_holds_it)
{
	struct pifs_heal_chunk c;

	cluster(3);
	prepare(3, 1, rank[1], &c);
	cr_assert_eq(c.nask, 1);
	answer(&c, rank[0], PIFS_HEAL_HOLDS);
	pifs_heal_plan(&c);
	cr_assert(c.drop);
	cr_assert_not(c.degraded);
}

Test(heal, a_map_without_nodes_in_keeps_every_copy)
{
	struct pifs_heal_chunk c;

	cluster(2);
	node(1)->flags = PIFS_NODE_UP;
	node(2)->flags = PIFS_NODE_UP;
	prepare(2, 2, 1, &c);
	cr_assert_eq(c.nowners, 0);
	cr_assert_eq(c.nask, 0);
	pifs_heal_plan(&c);
	cr_assert_not(c.drop);
	cr_assert_eq(c.npush, 0);
	cr_assert(c.misplaced);
}

/* The map before and after a change, for pifs_heal_urgent: nodes 1..3,
 * with the flags given. */
static bool urgent(uint32_t f1, uint32_t f2, uint32_t f3, uint32_t g1, uint32_t g2, uint32_t g3)
{
	struct pifs_heal_node old[3] = {{1, 1, f1}, {2, 1, f2}, {3, 1, f3}};
	struct pifs_heal_node cur[3] = {{1, 1, g1}, {2, 1, g2}, {3, 1, g3}};
	size_t nold = f3 == UINT32_MAX ? 2 : 3, ncur = g3 == UINT32_MAX ? 2 : 3;

	return pifs_heal_urgent(old, nold, cur, ncur);
}

#define GONE UINT32_MAX

Test(heal, a_node_out_by_failure_or_removed_while_in_needs_a_pass_at_once)
{
	cr_assert(urgent(UP_IN, UP_IN, UP_IN, UP_IN, UP_IN, 0));
	cr_assert(urgent(UP_IN, UP_IN, PIFS_NODE_IN, UP_IN, UP_IN, 0));
	cr_assert(urgent(UP_IN, UP_IN, UP_IN, UP_IN, UP_IN, GONE));
}

Test(heal, an_owner_back_from_down_or_out_needs_a_pass_to_bring_its_copies_home)
{
	cr_assert(urgent(UP_IN, UP_IN, PIFS_NODE_IN, UP_IN, UP_IN, UP_IN));
	cr_assert(urgent(UP_IN, UP_IN, 0, UP_IN, UP_IN, UP_IN));
}

Test(heal, an_operators_change_or_a_node_going_down_waits_for_the_next_pass)
{
	const uint32_t up_new = PIFS_NODE_UP | PIFS_NODE_NEW;
	const uint32_t up_drain = PIFS_NODE_UP | PIFS_NODE_DRAIN;

	cr_assert_not(urgent(UP_IN, UP_IN, UP_IN, UP_IN, UP_IN, UP_IN), "nothing changed");
	cr_assert_not(urgent(UP_IN, UP_IN, UP_IN, UP_IN, UP_IN, PIFS_NODE_IN), "down, still in");
	cr_assert_not(urgent(UP_IN, UP_IN, GONE, UP_IN, UP_IN, up_new), "a new node joins");
	cr_assert_not(urgent(UP_IN, UP_IN, up_new, UP_IN, UP_IN, UP_IN), "a new node admitted");
	cr_assert_not(urgent(UP_IN, UP_IN, UP_IN, UP_IN, UP_IN, up_drain), "a drain");
	cr_assert_not(urgent(UP_IN, UP_IN, up_drain, UP_IN, UP_IN, GONE), "a drained node removed");
	cr_assert_not(urgent(UP_IN, UP_IN, up_drain, UP_IN, UP_IN, UP_IN), "a drain undone");
	cr_assert_not(urgent(UP_IN, UP_IN, PIFS_NODE_DRAIN, UP_IN, UP_IN, up_drain),
		      "a draining node back up stays out");
}

Test(pace, without_a_rate_never_waits)
{
	struct pifs_pace p;

	pifs_pace_init(&p, 0, 0);
	cr_assert_eq(pifs_pace_spend(&p, 1ull << 40, 0), 0);
}

Test(pace, waits_as_long_as_the_bytes_take_at_the_rate)
{
	struct pifs_pace p;

	pifs_pace_init(&p, 1 << 20, 1000);
	cr_assert_eq(pifs_pace_spend(&p, 512 << 10, 1000), 500);
	cr_assert_eq(pifs_pace_spend(&p, 512 << 10, 1500), 500);
	cr_assert_eq(pifs_pace_spend(&p, 0, 2000), 0);
}

Test(pace, an_idle_spell_lends_no_burst)
{
	struct pifs_pace p;

	pifs_pace_init(&p, 1 << 20, 0);
	cr_assert_eq(pifs_pace_spend(&p, 1 << 20, 0), 1000);
	/* A minute later: a new window, and the next megabyte takes its second. */
	cr_assert_eq(pifs_pace_spend(&p, 1 << 20, 61000), 1000);
}

Test(pace, the_meter_reads_the_rate_of_its_window_and_zero_when_idle)
{
	struct pifs_meter m;

	pifs_meter_init(&m, 0);
	cr_assert_eq(pifs_meter_rate(&m, 0), 0);
	pifs_meter_add(&m, 1000, 0);
	pifs_meter_add(&m, 1000, 500);
	cr_assert_eq(pifs_meter_rate(&m, 1000), 2000);
	pifs_meter_add(&m, 4000, 2000); /* closes the first window: 2000 bytes in 2 s */
	cr_assert_eq(pifs_meter_rate(&m, 2500), 1000);
	cr_assert_eq(pifs_meter_rate(&m, 4000), 2000, "4000 bytes over the 2 s so far");
	cr_assert_eq(pifs_meter_rate(&m, 12000), 0, "nothing for ten seconds");
}

/* A node map of two nodes from a config, and a third only in the map. */
static struct pifs_conf_node conf_nodes[2] = {
    {.id = 1, .addr = "127.0.0.1:17101", .data = "/srv/pifs", .meta = true},
    {.id = 2, .addr = "127.0.0.1:17102", .data = "/srv/pifs"},
};

static void install(struct pifs_nodemap *nm, struct pifs_buf *b, const char *addr3)
{
	struct pifs_msg_R_MAP m;
	struct pifs_node n = {.id = 3, .weight = 1, .flags = PIFS_NODE_IN, .addr = {0, 0}};

	n.addr = pifs_str_of(addr3);
	cr_assert_eq(pifs_node_append(b, &n), 0);
	memset(&m, 0, sizeof(m));
	m.epoch = 4;
	m.replicas = 3;
	m.nodes = pifs_list_of(b, 1);
	cr_assert_eq(pifs_nodemap_install(nm, &m), 1);
}

Test(peers, gives_one_socket_per_node_and_a_new_one_when_the_node_moves)
{
	struct pifs_rpc *a, *b, *again;
	struct pifs_nodemap nm;
	struct pifs_peers p;
	struct pifs_conf conf;
	struct pifs_buf lb;
	void *zctx = zmq_ctx_new();

	pifs_conf_init(&conf);
	conf.n_nodes = 2;
	conf.nodes = conf_nodes;
	pifs_buf_init(&lb);
	pifs_nodemap_init(&nm, &conf);
	pifs_peers_init(&p, zctx, NULL, &nm);
	cr_assert_eq(pifs_peers_get(&p, 1, &a), 0);
	cr_assert_eq(pifs_peers_get(&p, 2, &b), 0);
	cr_assert_neq(a, b);
	cr_assert_eq(pifs_peers_get(&p, 1, &again), 0);
	cr_assert_eq(again, a);
	cr_assert_str_eq(pifs_rpc_endpoint(a), "tcp://127.0.0.1:17101");
	cr_assert_eq(pifs_peers_get(&p, 3, &a), -ENOENT, "a node nobody knows");
	install(&nm, &lb, "127.0.0.1:17103");
	cr_assert_eq(pifs_peers_get(&p, 3, &a), 0);
	cr_assert_str_eq(pifs_rpc_endpoint(a), "tcp://127.0.0.1:17103");
	pifs_peers_fini(&p);
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&lb);
	zmq_ctx_term(zctx);
}

Test(peers, a_node_whose_address_has_no_port_is_einval)
{
	struct pifs_nodemap nm;
	struct pifs_peers p;
	struct pifs_conf conf;
	struct pifs_rpc *r;
	struct pifs_buf lb;
	void *zctx = zmq_ctx_new();

	pifs_conf_init(&conf);
	pifs_buf_init(&lb);
	pifs_nodemap_init(&nm, &conf);
	install(&nm, &lb, "127.0.0.1");
	pifs_peers_init(&p, zctx, NULL, &nm);
	cr_assert_eq(pifs_peers_get(&p, 3, &r), -EINVAL);
	pifs_peers_fini(&p);
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&lb);
	zmq_ctx_term(zctx);
}

Test(peers, the_node_map_copies_and_says_which_nodes_are_down)
{
	struct pifs_nodemap_entry *copy;
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	struct pifs_buf lb;
	uint32_t replicas, flags;
	uint64_t epoch;
	size_t n;

	pifs_conf_init(&conf);
	conf.n_nodes = 2;
	conf.nodes = conf_nodes;
	pifs_buf_init(&lb);
	pifs_nodemap_init(&nm, &conf);
	cr_assert_eq(pifs_nodemap_copy(&nm, &copy, &n, &replicas, &epoch), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(epoch, 0);
	cr_assert_eq(replicas, conf.replicas, "the config's until a map comes");
	free(copy);
	cr_assert_not(pifs_nodemap_is_down(&nm, 3), "no map: nobody is known to be down");
	install(&nm, &lb, "127.0.0.1:17103");
	cr_assert(pifs_nodemap_is_down(&nm, 3));
	cr_assert_not(pifs_nodemap_is_down(&nm, 1), "a node the map does not list");
	cr_assert_eq(pifs_nodemap_flags(&nm, 3, &flags), 0);
	cr_assert_eq(flags, PIFS_NODE_IN);
	cr_assert_eq(pifs_nodemap_flags(&nm, 1, &flags), -ENOENT);
	cr_assert_eq(pifs_nodemap_copy(&nm, &copy, &n, &replicas, &epoch), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(copy[0].id, 3);
	cr_assert_str_eq(copy[0].addr, "127.0.0.1:17103");
	cr_assert_eq(replicas, 3);
	cr_assert_eq(epoch, 4);
	free(copy);
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&lb);
}

Test(peers, heal_scrub_and_gc_report_zeros_before_they_run_and_when_absent)
{
	struct pifs_conf conf;
	struct pifs_conf_node self = {.id = 1, .addr = "127.0.0.1:17101", .data = "/tmp"};
	struct pifsd d;
	struct pifs_heal *h;
	struct pifs_scrub *s;
	struct pifs_gc *g;
	struct pifs_work w;

	memset(&d, 0, sizeof(d));
	pifs_conf_init(&conf);
	d.conf = &conf;
	d.self = &self;
	d.data = "/tmp";
	memset(&w, 0xff, sizeof(w));
	pifs_heal_report(NULL, &w);
	pifs_scrub_report(NULL, &w);
	pifs_gc_report(NULL, &w);
	cr_assert_eq(w.heal_passes + w.heal_chunks + w.degraded + w.moved_bytes, 0);
	cr_assert_eq(w.heal_running, 0);
	cr_assert_eq(w.scrub_passes + w.scrub_running + w.scrub_corrupt + w.scrub_unrepairable, 0);
	cr_assert_eq(w.gc_passes + w.gc_chunks + w.gc_bytes + w.gc_deleted_chunks, 0);
	cr_assert_eq(w.gc_deleted_bytes, 0);
	cr_assert_eq(pifs_heal_new(&d, &h), 0);
	cr_assert_eq(pifs_scrub_new(&d, &s), 0);
	cr_assert_eq(pifs_gc_new(&d, &g), 0);
	memset(&w, 0xff, sizeof(w));
	pifs_heal_report(h, &w);
	pifs_scrub_report(s, &w);
	pifs_gc_report(g, &w);
	cr_assert_eq(w.heal_passes + w.heal_chunks + w.heal_bytes + w.heal_rate, 0);
	cr_assert_eq(w.heal_running, 0);
	cr_assert_eq(w.scrub_passes + w.scrub_done + w.scrub_total + w.scrub_repaired, 0);
	cr_assert_eq(w.gc_passes + w.gc_chunks + w.gc_bytes + w.gc_deleted_chunks, 0);
	/* A corrupt chunk is counted and queued even before the thread runs. */
	pifs_scrub_corrupt(s, &chunk);
	pifs_scrub_corrupt(NULL, &chunk);
	pifs_scrub_report(s, &w);
	cr_assert_eq(w.scrub_corrupt, 1);
	pifs_heal_kick(h);
	pifs_scrub_kick(s);
	pifs_gc_kick(g, true);
	pifs_gc_kick(NULL, false);
	pifs_heal_set_rate(NULL, 1);
	pifs_scrub_set_rate(NULL, 1);
	pifs_heal_free(h);
	pifs_scrub_free(s);
	pifs_gc_free(g);
	pifs_heal_free(NULL);
	pifs_scrub_free(NULL);
	pifs_gc_free(NULL);
}

Test(peers, a_scrub_of_a_data_directory_too_long_to_name_its_stamp_is_enametoolong)
{
	static char data[1200];
	struct pifs_conf conf;
	struct pifs_conf_node self = {.id = 1};
	struct pifsd d;
	struct pifs_scrub *s;

	memset(data, 'a', sizeof(data) - 1);
	data[0] = '/';
	memset(&d, 0, sizeof(d));
	pifs_conf_init(&conf);
	d.conf = &conf;
	d.self = &self;
	d.data = data;
	cr_assert_eq(pifs_scrub_new(&d, &s), -ENAMETOOLONG);
}

/* A daemon's parts for a plan: a store in a temporary directory holding one
 * chunk, and a heal loop that is never started. */
static struct {
	char dir[64];
	struct pifs_conf conf;
	struct pifs_conf_node self;
	struct pifsd d;
	struct pifs_buf lb;
	void *router; /* node 2: takes requests and never answers */
} fx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void forecast_setup(void)
{
	struct pifs_frame f;
	struct pifs_buf scratch;
	uint8_t raw[3000];

	memset(&fx, 0, sizeof(fx));
	mkdir("/tmp/pifs-storaged", 0755);
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/pifs-storaged/heal-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	pifs_conf_init(&fx.conf);
	fx.conf.timeout_ms = 600;
	fx.self.id = 1;
	snprintf(fx.self.addr, sizeof(fx.self.addr), "127.0.0.1:17101");
	fx.d.conf = &fx.conf;
	fx.d.self = &fx.self;
	fx.d.data = fx.dir;
	fx.d.zctx = zmq_ctx_new();
	pifs_nodemap_init(&fx.d.map, &fx.conf);
	pifs_buf_init(&fx.lb);
	cr_assert_eq(pifs_store_open(fx.dir, 0, &fx.d.store), 0);
	memset(raw, 7, sizeof(raw));
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	pifs_buf_init(&scratch);
	cr_assert_eq(pifs_store_put(fx.d.store, f.data, f.len, 0, &scratch), 0);
	pifs_buf_fini(&scratch);
	pifs_frame_release(&f);
	cr_assert_eq(pifs_heal_new(&fx.d, &fx.d.heal), 0);
}

static void forecast_teardown(void)
{
	int zero = 0;

	pifs_heal_free(fx.d.heal);
	if (fx.router) {
		zmq_setsockopt(fx.router, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(fx.router);
	}
	zmq_ctx_term(fx.d.zctx);
	pifs_store_close(fx.d.store);
	pifs_nodemap_fini(&fx.d.map);
	pifs_buf_fini(&fx.lb);
	nftw(fx.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(forecast, .init = forecast_setup, .fini = forecast_teardown, .timeout = 20);

/* Install a map of this node and node 2 (both up and in), node 2 being a
 * socket on @port that never answers. */
static void map_with_a_silent_node(int port)
{
	char ep[64], addr[32];

	struct pifs_node n1 = {.id = 1, .weight = 1, .flags = UP_IN, .addr = {0, 0}};
	struct pifs_node n2 = {.id = 2, .weight = 1, .flags = UP_IN, .addr = {0, 0}};
	struct pifs_msg_R_MAP m;

	fx.router = zmq_socket(fx.d.zctx, ZMQ_ROUTER);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(ep, sizeof(ep), "tcp://%s", addr);
	cr_assert_eq(zmq_bind(fx.router, ep), 0);
	n1.addr = pifs_str_of("127.0.0.1:17101");
	n2.addr = pifs_str_of(addr);
	cr_assert_eq(pifs_node_append(&fx.lb, &n1), 0);
	cr_assert_eq(pifs_node_append(&fx.lb, &n2), 0);
	memset(&m, 0, sizeof(m));
	m.epoch = 3;
	m.replicas = 2;
	m.nodes = pifs_list_of(&fx.lb, 2);
	cr_assert_eq(pifs_nodemap_install(&fx.d.map, &m), 1);
}

struct plan_call {
	int rc;
	struct pifs_heal_forecast out;
};

static void *plan_thread(void *arg)
{
	struct plan_call *pc = arg;

	pc->rc = pifs_heal_forecast(fx.d.heal, 0, &pc->out);
	return NULL;
}

Test(forecast, without_a_map_is_eagain)
{
	struct pifs_heal_forecast out;

	cr_assert_eq(pifs_heal_forecast(fx.d.heal, 0, &out), -EAGAIN);
}

Test(forecast, a_second_plan_while_one_is_made_is_ebusy)
{
	struct pifs_heal_forecast out;
	struct plan_call pc;
	pthread_t t;

	map_with_a_silent_node(17124);
	cr_assert_eq(pthread_create(&t, NULL, plan_thread, &pc), 0);
	usleep(200000); /* the first plan waits for node 2 for 600 ms */
	cr_assert_eq(pifs_heal_forecast(fx.d.heal, 0, &out), -EBUSY);
	pthread_join(t, NULL);
	cr_assert_eq(pc.rc, 0, "a node that does not answer leaves the plan without its moves");
	cr_assert_eq(pc.out.chunks, 0);
}

Test(forecast, a_plan_while_the_daemon_stops_is_ecanceled)
{
	struct pifs_heal_forecast out;

	map_with_a_silent_node(17134);
	pifs_heal_stop(fx.d.heal);
	cr_assert_eq(pifs_heal_forecast(fx.d.heal, 0, &out), -ECANCELED);
}

Test(forecast, a_store_that_cannot_be_walked_says_why)
{
	struct pifs_heal_forecast out;
	char chunks[128];

	map_with_a_silent_node(17144);
	snprintf(chunks, sizeof(chunks), "%s/chunks", fx.dir);
	nftw(chunks, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	cr_assert_eq(pifs_heal_forecast(fx.d.heal, 0, &out), -ENOENT);
}
