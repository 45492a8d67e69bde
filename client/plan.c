/* plan.c - the client's placement decisions. */
#include "plan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proto.h"

/* Rank the nodes of @nodes whose IN flag is @in for chunk @id, best first,
 * into @order (room for @n). Returns how many there are. */
static size_t rank(const struct pifs_chunk_id *id, const struct pifs_plan_node *nodes, size_t n,
		   bool in, uint32_t *order)
{
	struct pifs_place_node pn[PIFS_PLACE_MAX_NODES];
	size_t k = 0;

	for (size_t i = 0; i < n && k < PIFS_PLACE_MAX_NODES; i++) {
		if (!!(nodes[i].flags & PIFS_NODE_IN) != in)
			continue;
		pn[k].id = nodes[i].id;
		pn[k].weight = nodes[i].weight;
		k++;
	}
	if (k)
		pifs_place_rank(id, pn, k, order);
	return k;
}

static const struct pifs_plan_node *find(const struct pifs_plan_node *nodes, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].id == id)
			return &nodes[i];
	return NULL;
}

static bool live(const struct pifs_plan_node *m)
{
	return (m->flags & PIFS_NODE_UP) && !m->avoid;
}

static uint32_t clamp_replicas(uint32_t r)
{
	if (r == 0)
		return 1;
	return r > PIFS_PLAN_MAX_CHAIN ? PIFS_PLAN_MAX_CHAIN : r;
}

void pifs_wplan_init(struct pifs_wplan *p, const struct pifs_chunk_id *id,
		     const struct pifs_plan_node *nodes, size_t n, uint32_t replicas)
{
	if (n > PIFS_PLACE_MAX_NODES)
		n = PIFS_PLACE_MAX_NODES;
	p->replicas = clamp_replicas(replicas);
	p->stored = 0;
	p->n = rank(id, nodes, n, true, p->node);
	for (size_t i = 0; i < p->n; i++) {
		const struct pifs_plan_node *m = find(nodes, n, p->node[i]);

		p->usable[i] = live(m);
		p->full[i] = (m->flags & PIFS_NODE_UP) && m->avoid && m->avoid_err == -ENOSPC;
		p->state[i] = PIFS_PLAN_UNTRIED;
		p->err[i] = 0;
	}
}

size_t pifs_wplan_next(const struct pifs_wplan *p, uint32_t *chain)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n && p->stored + k < p->replicas; i++)
		if (p->usable[i] && p->state[i] == PIFS_PLAN_UNTRIED)
			chain[k++] = p->node[i];
	for (size_t i = 0; i < p->n && p->stored + k < p->replicas; i++)
		if (p->full[i] && p->state[i] == PIFS_PLAN_UNTRIED)
			chain[k++] = p->node[i];
	return k;
}

static ssize_t pos(const struct pifs_wplan *p, uint32_t node)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->node[i] == node)
			return (ssize_t)i;
	return -1;
}

void pifs_wplan_stored(struct pifs_wplan *p, const uint32_t *chain, size_t nchain,
		       const uint32_t *stored, size_t nstored)
{
	for (size_t i = 0; i < nstored; i++) {
		ssize_t k = pos(p, stored[i]);

		if (k >= 0 && p->state[k] != PIFS_PLAN_STORED) {
			p->state[k] = PIFS_PLAN_STORED;
			p->err[k] = 0;
			p->stored++;
		}
	}
	for (size_t i = 0; i < nchain; i++) {
		ssize_t k = pos(p, chain[i]);

		if (k >= 0 && p->state[k] == PIFS_PLAN_UNTRIED) {
			p->state[k] = PIFS_PLAN_FAILED;
			p->err[k] = -EIO;
		}
	}
}

void pifs_wplan_failed(struct pifs_wplan *p, uint32_t node, int err)
{
	ssize_t k = pos(p, node);

	if (k >= 0 && p->state[k] == PIFS_PLAN_UNTRIED) {
		p->state[k] = PIFS_PLAN_FAILED;
		p->err[k] = err < 0 ? err : -EIO;
	}
}

size_t pifs_wplan_copies(const struct pifs_wplan *p)
{
	return p->stored;
}

size_t pifs_wplan_nodes(const struct pifs_wplan *p, uint32_t *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; i < p->n && k < cap; i++)
		if (p->state[i] == PIFS_PLAN_STORED)
			out[k++] = p->node[i];
	return k;
}

int pifs_wplan_result(const struct pifs_wplan *p)
{
	bool nospc = false, other = false;

	if (p->stored > 0)
		return 0;
	for (size_t i = 0; i < p->n; i++) {
		if (p->state[i] != PIFS_PLAN_FAILED || p->err[i] == -ETIMEDOUT ||
		    p->err[i] == -EHOSTUNREACH)
			continue;
		if (p->err[i] == -ENOSPC)
			nospc = true;
		else
			other = true;
	}
	return nospc && !other ? -ENOSPC : -EIO;
}

/* Append the nodes of @from (@k of them) that are in the group @group and
 * not taken yet to @order. Groups: 0 local owners, 1 owners, 2 the others. */
static void take(const struct pifs_plan_node *nodes, size_t n, const uint32_t *from, size_t k,
		 bool want_live, bool local_only, uint32_t *order, size_t *count, bool *taken)
{
	for (size_t i = 0; i < k; i++) {
		const struct pifs_plan_node *m = find(nodes, n, from[i]);
		size_t at = (size_t)(m - nodes);

		if (taken[at] || live(m) != want_live || (local_only && !m->local))
			continue;
		taken[at] = true;
		order[(*count)++] = m->id;
	}
}

size_t pifs_plan_read(const struct pifs_chunk_id *id, const struct pifs_plan_node *nodes, size_t n,
		      uint32_t replicas, uint32_t *order, size_t *nlive)
{
	uint32_t in[PIFS_PLACE_MAX_NODES], out[PIFS_PLACE_MAX_NODES];
	bool taken[PIFS_PLACE_MAX_NODES] = {false};
	size_t kin, kout, owners, count = 0;

	if (n > PIFS_PLACE_MAX_NODES)
		n = PIFS_PLACE_MAX_NODES;
	kin = rank(id, nodes, n, true, in);
	kout = rank(id, nodes, n, false, out);
	owners = clamp_replicas(replicas);
	if (owners > kin)
		owners = kin;
	take(nodes, n, in, owners, true, true, order, &count, taken);
	take(nodes, n, in, owners, true, false, order, &count, taken);
	take(nodes, n, in, kin, true, false, order, &count, taken);
	take(nodes, n, out, kout, true, false, order, &count, taken);
	*nlive = count;
	take(nodes, n, in, owners, false, false, order, &count, taken);
	take(nodes, n, in, kin, false, false, order, &count, taken);
	take(nodes, n, out, kout, false, false, order, &count, taken);
	return count;
}

/* "node 2", "nodes 1 and 3", "nodes 1, 3 and 4" into @out. */
static void node_list(const uint32_t *ids, size_t n, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && len < cap; i++) {
		const char *sep =
		    i == 0 ? (n == 1 ? "node " : "nodes ") : (i + 1 == n ? " and " : ", ");
		int w = snprintf(out + len, cap - len, "%s%" PRIu32, sep, ids[i]);

		if (w < 0)
			return;
		len += (size_t)w;
	}
}

int pifs_plan_health(const struct pifs_plan_copies *c, size_t n, uint32_t replicas,
		     const uint32_t *silent, size_t nsilent, char *out, size_t cap)
{
	const struct pifs_plan_copies *lost = NULL, *weak = NULL;
	size_t nlost = 0, nweak = 0;
	bool more = false;
	char nodes[256], tail[300] = "";
	int w;

	if (replicas == 0)
		replicas = 1;
	for (size_t i = 0; i < n; i++) {
		if (c[i].copies == 0) {
			nlost++;
			if (!lost)
				lost = &c[i];
		} else if (c[i].copies < replicas) {
			nweak++;
			if (!weak)
				weak = &c[i];
		} else if (c[i].copies > replicas) {
			more = true;
		}
	}
	if (nsilent) {
		node_list(silent, nsilent, nodes, sizeof(nodes));
		snprintf(tail, sizeof(tail), "; %s did not answer", nodes);
	}
	if (nlost && nsilent) {
		w = snprintf(out, cap,
			     "unknown: %zu of %zu chunk%s found on no live node that "
			     "answered (chunk %" PRIu64 " first)%s",
			     nlost, n, n == 1 ? "" : "s", lost->index, tail);
	} else if (nlost == 1) {
		w = snprintf(out, cap, "unreadable: chunk %" PRIu64 " has no copy on a live node%s",
			     lost->index, tail);
	} else if (nlost > 1) {
		w = snprintf(out, cap,
			     "unreadable: %zu of %zu chunks have no copy on a live node "
			     "(chunk %" PRIu64 " first)%s",
			     nlost, n, lost->index, tail);
	} else if (nweak) {
		size_t shown =
		    weak->copies < PIFS_PLAN_MAX_CHAIN ? weak->copies : PIFS_PLAN_MAX_CHAIN;

		node_list(weak->node, shown, nodes, sizeof(nodes));
		w = snprintf(out, cap,
			     "degraded: %zu of %zu chunks %s fewer than %" PRIu32
			     " copies (chunk %" PRIu64 ": %" PRIu32 " cop%s on %s)%s",
			     nweak, n, nweak == 1 ? "has" : "have", replicas, weak->index,
			     weak->copies, weak->copies == 1 ? "y" : "ies", nodes, tail);
	} else {
		w = snprintf(out, cap, "healthy: %zu chunk%s, %s%" PRIu32 " cop%s each%s", n,
			     n == 1 ? "" : "s", more ? "at least " : "", replicas,
			     replicas == 1 ? "y" : "ies", tail);
	}
	return w;
}
