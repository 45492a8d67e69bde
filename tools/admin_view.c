/* admin_view.c - pifs-admin: what the cluster says. CLUSTER_STAT from the
 * metadata leader, NODE_STAT from every node in parallel, WORK_START to one. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_i.h"
#include "rpc.h"

const char *node_state(const struct node_view *n)
{
	if (!n->in_map)
		return "unregistered";
	return (n->flags & PIFS_NODE_UP) ? "up" : "down";
}

const char *node_placement(const struct node_view *n)
{
	if (n->flags & PIFS_NODE_NEW)
		return "new";
	if (n->flags & PIFS_NODE_DRAIN)
		return "drain";
	return (n->flags & PIFS_NODE_IN) ? "in" : "out";
}

bool node_up(const struct node_view *n)
{
	return n->in_map && (n->flags & PIFS_NODE_UP);
}

/* A node refuses new chunks once storing one would leave less than the
 * reserve free (storaged/store.h): it is full when not even one more chunk of
 * @chunk_size fits. */
bool node_full(const struct admin *a, const struct node_view *n, uint32_t chunk_size)
{
	return n->capacity && n->free_bytes < a->conf.reserve_bytes + chunk_size;
}

/* Why NODE_STAT gave nothing, in a few words for a table cell. */
const char *stat_problem(const struct node_view *n, char *buf, size_t cap)
{
	if (n->stat_rc == -EXDEV)
		snprintf(buf, cap, "answers as node %" PRIu32, n->stat_id);
	else if (n->stat_rc == -ETIMEDOUT || n->stat_rc == -EHOSTUNREACH)
		snprintf(buf, cap, "unreachable");
	else if (n->stat_rc == -EBADMSG || n->stat_rc == -EPROTO)
		snprintf(buf, cap, "bad reply: another version?");
	else
		snprintf(buf, cap, "error: %s", strerror(-n->stat_rc));
	return buf;
}

/* ---- talking to the cluster ---- */

const char *meta_name(const struct admin *a)
{
	return pifs_metacall_name(a->mc);
}

uint32_t meta_leader_id(const struct admin *a)
{
	uint32_t id = pifs_metacall_leader(a->mc);

	return id ? id : pifs_conf_meta(&a->conf)->id;
}

const char *meta_leader_addr(const struct admin *a)
{
	const struct pifs_conf_node *c = pifs_conf_node(&a->conf, meta_leader_id(a));

	/* A leader the configuration file does not know (added after it was
	 * written) is known to the metacall by its name only. */
	return c ? c->addr : meta_name(a);
}

void unreachable_meta(const struct admin *a, int rc)
{
	char keys[1024];
	const char *voters = pifs_metacall_voters(a->mc);
	const char *why = strerror(-rc);

	if (rc == -ETIMEDOUT)
		why = "no answer";
	else if (rc == -EHOSTUNREACH)
		why = "no connection";

	if (!strchr(voters, ','))
		fprintf(stderr,
			PROG ": cannot reach the metadata service at %s: is pifs-storaged running "
			     "there? (see pifs-local status / journalctl) [%s after %d ms]\n",
			meta_name(a), why, a->timeout_ms);
	else
		fprintf(stderr,
			PROG ": cannot reach the metadata service: no leader answered among %s; "
			     "is pifs-storaged running on a majority of them? (see '" PROG " meta "
			     "status', pifs-local status / journalctl) [%s after %d ms]\n",
			voters, why, a->timeout_ms);
	/* A refused handshake looks like silence: say so when it is that. */
	if (pifs_auth_explain(a->auth, a->zctx, &a->conf,
			      a->timeout_ms < 2000 ? a->timeout_ms : 2000, keys, sizeof(keys)))
		fprintf(stderr, PROG ": %s\n", keys);
}

static int cmp_node(const void *x, const void *y)
{
	const struct node_view *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Copy the node records of @rep (borrowed) into @v, then add the nodes that
 * the configuration file names but the map does not know yet: a daemon that
 * never started must show as missing, not be left out. */
static int take_nodes(const struct admin *a, const struct pifs_msg_R_CLUSTER *rep,
		      struct cluster_view *v)
{
	struct pifs_cursor cur;
	struct pifs_nodestat ns;
	size_t cap = rep->nodes.count + a->conf.n_nodes;
	int rc;

	v->nodes = calloc(cap ? cap : 1, sizeof(*v->nodes));
	if (!v->nodes)
		return -ENOMEM;
	pifs_cursor_init(&cur, &rep->nodes);
	while ((rc = pifs_nodestat_next(&cur, &ns)) == 1) {
		struct node_view *n;

		if (v->n_nodes == cap)
			return -EBADMSG;
		n = &v->nodes[v->n_nodes++];
		n->id = ns.id;
		n->weight = ns.weight;
		n->flags = ns.flags;
		n->last_seen = ns.last_seen;
		n->capacity = ns.capacity;
		n->free_bytes = ns.free;
		n->used = ns.used;
		n->chunks = ns.chunks;
		n->work = ns.work;
		n->in_map = true;
		n->stat_rc = -ENODATA;
		if (pifs_str_copy(ns.addr, n->addr, sizeof(n->addr)) < 0)
			return -EBADMSG;
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < a->conf.n_nodes; i++) {
		const struct pifs_conf_node *c = &a->conf.nodes[i];
		struct node_view *n;
		bool known = false;

		for (size_t k = 0; k < v->n_nodes && !known; k++)
			known = v->nodes[k].id == c->id;
		if (known)
			continue;
		n = &v->nodes[v->n_nodes++];
		n->id = c->id;
		n->weight = c->weight;
		n->flags = c->meta ? PIFS_NODE_META : 0;
		n->stat_rc = -ENODATA;
		snprintf(n->addr, sizeof(n->addr), "%s", c->addr);
	}
	qsort(v->nodes, v->n_nodes, sizeof(*v->nodes), cmp_node);
	return 0;
}

/* Ask the metadata leader for the cluster figures. Prints what went wrong
 * for the operator; returns 0 or -errno. */
int fetch_cluster(struct admin *a, struct cluster_view *v)
{
	struct pifs_msg req, rep;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_CLUSTER_STAT);
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_metacall(a->mc, &req, &rep);
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ECONNREFUSED) {
		unreachable_meta(a, rc);
		return rc;
	}
	if ((rc == -EBADMSG || rc == -EPROTO) && rep.type != PIFS_MSG_R_STATUS) {
		fprintf(stderr,
			PROG ": the metadata service at %s sent a reply to CLUSTER_STAT that does "
			     "not decode (%s): are pifs-admin and pifs-storaged built from the "
			     "same version?\n",
			meta_name(a), strerror(-rc));
		return rc;
	}
	if (rc < 0) {
		bool detail = rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.detail.len > 0;

		fprintf(stderr,
			PROG ": the metadata service at %s refused CLUSTER_STAT: %s%s%.*s; see "
			     "that node's log\n",
			meta_name(a), strerror(-rc), detail ? ": " : "",
			detail ? rep.u.R_STATUS.detail.len : 0,
			detail ? rep.u.R_STATUS.detail.p : "");
		return rc;
	}
	if (rep.type != PIFS_MSG_R_CLUSTER) {
		fprintf(stderr,
			PROG ": the metadata service at %s answered CLUSTER_STAT with %s: are "
			     "pifs-admin and pifs-storaged the same version?\n",
			meta_name(a), pifs_proto_name(rep.type));
		return -EPROTO;
	}
	v->epoch = rep.u.R_CLUSTER.epoch;
	v->replicas = rep.u.R_CLUSTER.replicas;
	v->chunk_size = rep.u.R_CLUSTER.chunk_size;
	v->log_index = rep.u.R_CLUSTER.log_index;
	v->inodes = rep.u.R_CLUSTER.inodes;
	v->logical = rep.u.R_CLUSTER.logical;
	v->chunks = rep.u.R_CLUSTER.chunks;
	v->chunk_raw = rep.u.R_CLUSTER.chunk_raw;
	v->chunk_stored = rep.u.R_CLUSTER.chunk_stored;
	v->chunk_refs = rep.u.R_CLUSTER.chunk_refs;
	rc = take_nodes(a, &rep.u.R_CLUSTER, v);
	if (rc < 0)
		fprintf(stderr,
			PROG ": the metadata service at %s sent a node list that does not decode "
			     "(%s): are pifs-admin and pifs-storaged the same version?\n",
			meta_name(a), strerror(-rc));
	return rc;
}

struct probe {
	struct admin *a;
	struct node_view *n;
	pthread_t thread;
	bool started;
};

/* Ask one node for NODE_STAT; the outcome goes to n->stat_rc. */
static void *probe_node(void *arg)
{
	struct probe *p = arg;
	struct node_view *n = p->n;
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	char ep[300];
	int rc;

	rc = pifs_conf_endpoint(n->addr, ep, sizeof(ep));
	if (rc < 0)
		goto out;
	rc = pifs_rpc_new(p->a->zctx, p->a->auth, n->id, ep, &r);
	if (rc < 0)
		goto out;
	pifs_msg_init(&req, PIFS_MSG_NODE_STAT);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, p->a->timeout_ms);
	if (rc < 0)
		goto out;
	if (rep.type != PIFS_MSG_R_NODE) {
		rc = -EPROTO;
		goto out;
	}
	n->stat_id = rep.u.R_NODE.id;
	if (n->stat_id != n->id) {
		/* Another daemon listens at this address: its figures are not this node's. */
		rc = -EXDEV;
		goto out;
	}
	n->capacity = rep.u.R_NODE.capacity;
	n->free_bytes = rep.u.R_NODE.free;
	n->used = rep.u.R_NODE.used;
	n->chunks = rep.u.R_NODE.chunks;
	n->corrupt = rep.u.R_NODE.corrupt;
	n->work = rep.u.R_NODE.work;
	n->keys_gen = rep.u.R_NODE.keys;
	n->refused = rep.u.R_NODE.refused;
out:
	pifs_rpc_free(r);
	n->stat_rc = rc;
	return NULL;
}

/* NODE_STAT every node at once (only those the map says are up when
 * @only_up), so that one dead node costs one timeout in all, not one each. */
int probe_nodes(struct admin *a, struct cluster_view *v, bool only_up)
{
	struct probe *p = calloc(v->n_nodes ? v->n_nodes : 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < v->n_nodes; i++) {
		if (only_up && !node_up(&v->nodes[i]))
			continue;
		p[i].a = a;
		p[i].n = &v->nodes[i];
		p[i].started = pthread_create(&p[i].thread, NULL, probe_node, &p[i]) == 0;
		if (!p[i].started)
			probe_node(&p[i]);
	}
	for (size_t i = 0; i < v->n_nodes; i++)
		if (p[i].started)
			pthread_join(p[i].thread, NULL);
	free(p);
	return 0;
}

/* Send WORK_START @flags to node @n. Returns 0 or -errno. */
int work_start(struct admin *a, const struct node_view *n, uint32_t flags)
{
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	char ep[300];
	int rc;

	rc = pifs_conf_endpoint(n->addr, ep, sizeof(ep));
	if (rc < 0)
		return rc;
	rc = pifs_rpc_new(a->zctx, a->auth, n->id, ep, &r);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_WORK_START);
	req.u.WORK_START.flags = flags;
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, a->timeout_ms);
	if (rc == 0 && rep.type != PIFS_MSG_R_STATUS)
		rc = -EPROTO;
	pifs_rpc_free(r);
	return rc;
}

int call_at(struct admin *a, uint32_t id, const char *addr, struct pifs_msg *req,
	    struct pifs_rpc **r, struct pifs_msg *rep, char *why, size_t cap)
{
	char ep[300];
	int rc;

	*r = NULL;
	if (why && cap)
		why[0] = '\0';
	rc = pifs_conf_endpoint(addr, ep, sizeof(ep));
	if (rc < 0)
		return rc;
	rc = pifs_rpc_new(a->zctx, a->auth, id, ep, r);
	if (rc < 0)
		return rc;
	pifs_msg_init(rep, PIFS_MSG_NONE);
	rc = pifs_rpc_call(*r, req, NULL, 0, rep, NULL, NULL, a->timeout_ms);
	if (rc < 0 && rep->type == PIFS_MSG_R_STATUS && why && rep->u.R_STATUS.detail.len)
		snprintf(why, cap, "%.*s", (int)rep->u.R_STATUS.detail.len,
			 rep->u.R_STATUS.detail.p);
	return rc;
}

int meta_mutate(struct admin *a, struct pifs_msg *req, char *why, size_t cap)
{
	struct pifs_msg rep;
	int rc;

	why[0] = '\0';
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_metacall(a->mc, req, &rep);
	if (rc < 0 && rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.detail.len)
		snprintf(why, cap, "%.*s", (int)rep.u.R_STATUS.detail.len, rep.u.R_STATUS.detail.p);
	if (rc == 0 && rep.type != PIFS_MSG_R_STATUS)
		rc = -EPROTO;
	return rc;
}

int work_set(struct admin *a, const struct node_view *n, uint64_t heal_rate)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_WORK_SET);
	req.u.WORK_SET.heal_rate = heal_rate;
	rc = call_at(a, n->id, n->addr, &req, &r, &rep, NULL, 0);
	if (rc == 0 && rep.type != PIFS_MSG_R_STATUS)
		rc = -EPROTO;
	pifs_rpc_free(r);
	return rc;
}

/* Add @bytes and @chunks to the move @from -> @to of @p. */
static int plan_add(struct plan *p, uint32_t from, uint32_t to, uint64_t chunks, uint64_t bytes)
{
	struct plan_move *m;

	for (size_t i = 0; i < p->n; i++) {
		if (p->moves[i].from == from && p->moves[i].to == to) {
			p->moves[i].chunks += chunks;
			p->moves[i].bytes += bytes;
			return 0;
		}
	}
	m = realloc(p->moves, (p->n + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	p->moves = m;
	p->moves[p->n++] = (struct plan_move){from, to, chunks, bytes};
	return 0;
}

int node_plan(struct admin *a, const struct node_view *n, uint32_t flags, struct plan *p,
	      uint64_t *epoch, char *why, size_t cap)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_move mv;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_PLAN);
	req.u.PLAN.flags = flags;
	/* A plan walks every chunk of the node: it takes longer than a reply. */
	rc = call_at(a, n->id, n->addr, &req, &r, &rep, why, cap);
	if (rc == 0 && rep.type != PIFS_MSG_R_PLAN)
		rc = -EPROTO;
	if (rc < 0)
		goto out_free;
	*epoch = rep.epoch;
	p->chunks += rep.u.R_PLAN.chunks;
	p->bytes += rep.u.R_PLAN.bytes;
	pifs_cursor_init(&cur, &rep.u.R_PLAN.moves);
	while ((rc = pifs_move_next(&cur, &mv)) == 1) {
		rc = plan_add(p, mv.from, mv.to, mv.chunks, mv.bytes);
		if (rc < 0)
			goto out_free;
	}
out_free:
	pifs_rpc_free(r);
	return rc;
}

int view_cluster(struct admin *a, struct cluster_view *v, bool only_up)
{
	int rc = fetch_cluster(a, v);

	if (rc == 0) {
		rc = probe_nodes(a, v, only_up);
		if (rc < 0)
			fprintf(stderr, PROG ": out of memory while asking the nodes\n");
	}
	if (rc < 0) {
		free(v->nodes);
		v->nodes = NULL;
		v->n_nodes = 0;
	}
	return rc;
}

void json_node_space(struct json *j, const struct node_view *n)
{
	char why[256];

	json_bool(j, "reachable", n->stat_rc == 0);
	if (n->stat_rc == 0) {
		json_u64(j, "used", n->used);
		json_u64(j, "free", n->free_bytes);
		json_u64(j, "capacity", n->capacity);
		json_u64(j, "chunks", n->chunks);
		return;
	}
	json_null(j, "used");
	json_null(j, "free");
	json_null(j, "capacity");
	json_null(j, "chunks");
	json_str(j, "error", stat_problem(n, why, sizeof(why)));
}
