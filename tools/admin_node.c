/* admin_node.c - pifs-admin nodes, and the node commands: add, drain, remove,
 * set-weight. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_i.h"
#include "rpc.h"

int cmd_nodes(struct admin *a)
{
	struct cluster_view v = {0};
	char b1[32], b2[32], b3[64];
	int aw = (int)strlen("ADDRESS");

	if (view_cluster(a, &v, false) < 0)
		return EXIT_FAIL;
	if (a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_cluster_head(&j, a, &v);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < v.n_nodes; i++) {
			const struct node_view *n = &v.nodes[i];
			bool ok = n->stat_rc == 0;

			json_open(&j, NULL, '{');
			json_u64(&j, "id", n->id);
			json_str(&j, "address", n->addr);
			json_str(&j, "state", node_state(n));
			json_bool(&j, "up", node_up(n));
			json_bool(&j, "in", n->flags & PIFS_NODE_IN);
			json_bool(&j, "meta", n->flags & PIFS_NODE_META);
			json_bool(&j, "drain", n->flags & PIFS_NODE_DRAIN);
			json_bool(&j, "new", n->flags & PIFS_NODE_NEW);
			json_bool(&j, "registered", n->in_map);
			json_u64(&j, "weight", n->weight);
			json_i64(&j, "last_seen_ns", n->last_seen);
			json_node_space(&j, n);
			if (ok)
				json_u64(&j, "corrupt", n->corrupt);
			else
				json_null(&j, "corrupt");
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
		free(v.nodes);
		return EXIT_OK;
	}
	for (size_t i = 0; i < v.n_nodes; i++)
		if ((int)strlen(v.nodes[i].addr) > aw)
			aw = (int)strlen(v.nodes[i].addr);
	printf("%-5s %-*s %-12s %-5s %-4s %6s  %-27s %8s  %s\n", "ID", aw, "ADDRESS", "STATE",
	       "PLACE", "META", "WEIGHT", "USED/CAPACITY", "CHUNKS", "LAST SEEN");
	for (size_t i = 0; i < v.n_nodes; i++) {
		const struct node_view *n = &v.nodes[i];
		char use[400], chunks[24];

		if (n->stat_rc == 0) {
			snprintf(use, sizeof(use), "%s/%s (%.0f%%)", human(n->used, b1, sizeof(b1)),
				 human(n->capacity, b2, sizeof(b2)),
				 n->capacity ? 100.0 * (double)n->used / (double)n->capacity : 0.0);
			snprintf(chunks, sizeof(chunks), "%" PRIu64, n->chunks);
		} else {
			snprintf(use, sizeof(use), "%s", stat_problem(n, b3, sizeof(b3)));
			snprintf(chunks, sizeof(chunks), "-");
		}
		printf("%-5" PRIu32 " %-*s %-12s %-5s %-4s %6" PRIu32 "  %-27s %8s  %s\n", n->id,
		       aw, n->addr, node_state(n), node_placement(n),
		       (n->flags & PIFS_NODE_META) ? "yes" : "no", n->weight, use, chunks,
		       ago(n->last_seen, b1, sizeof(b1)));
		if (n->flags & PIFS_NODE_NEW)
			printf("      node %" PRIu32
			       " is new (not admitted: pifs-admin node add %s); "
			       "it stores nothing until then\n",
			       n->id, n->addr);
		if (n->stat_rc == 0 && n->corrupt)
			printf("      node %" PRIu32 " keeps %" PRIu64 " corrupt chunk files in "
			       "quarantine (DATA/quarantine/); pifs-admin status says whether "
			       "any of them could not be repaired\n",
			       n->id, n->corrupt);
	}
	free(v.nodes);
	return EXIT_OK;
}

const char nodes_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] nodes\n"
    "\n"
    "Show one line per node, from the cluster map and from the node itself:\n"
    "  ID             the node id ([node N] in the configuration file)\n"
    "  ADDRESS        where its pifs-storaged listens (host:port)\n"
    "  STATE          up or down (heartbeats, as the metadata service sees them), or\n"
    "                 unregistered (in the configuration file, never started)\n"
    "  PLACE          in (chunks are placed on it), out (its data has moved away),\n"
    "                 new (joined by itself, not admitted: 'node add ADDRESS' admits it) or\n"
    "                 drain (being emptied)\n"
    "  META           yes for a metadata voter\n"
    "  WEIGHT         its share in placement (by default its disk size in GiB)\n"
    "  USED/CAPACITY  bytes of chunk files on its data disk, the disk's size and the\n"
    "                 percentage; 'unreachable' when the node did not answer in time\n"
    "                 (its figures are unknown, not zero)\n"
    "  CHUNKS         chunk files it holds\n"
    "  LAST SEEN      when the metadata service last heard its heartbeat\n"
    "\n"
    "JSON keys: epoch, replicas, chunk_size, log_index, meta_node, meta_address, and\n"
    "nodes: [{id, address, state, up, in, meta, drain, new, registered, weight, last_seen_ns,\n"
    "reachable, capacity, free, used, chunks, corrupt}]; the last five are null and\n"
    "error says why when the node did not answer.\n"
    "\n"
    "Exit status: 0 the table was printed (even with nodes down); 1 the metadata service\n"
    "could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " nodes\n"
    "  " PROG " nodes --json | jq '.nodes[] | {id, used, capacity}'\n";

struct node_view *node_named(struct cluster_view *v, const char *word)
{
	char *end;
	unsigned long id = strtoul(word, &end, 10);

	for (size_t i = 0; i < v->n_nodes; i++) {
		struct node_view *n = &v->nodes[i];

		if (!n->in_map)
			continue;
		if ((*word && !*end && n->id == id) || strcmp(n->addr, word) == 0)
			return n;
	}
	fprintf(stderr,
		PROG ": no node '%s' in the cluster map: name a node by its id or address, as "
		     "'" PROG " nodes' shows them\n",
		word);
	return NULL;
}

static int node_set(struct admin *a, const struct node_view *n, uint32_t set, uint32_t clear,
		    uint32_t weight, const char *what)
{
	struct pifs_msg req;
	char why[256];
	int rc;

	pifs_msg_init(&req, PIFS_MSG_NODE_SET);
	req.u.NODE_SET.id = n->id;
	req.u.NODE_SET.set = set;
	req.u.NODE_SET.clear = clear;
	req.u.NODE_SET.weight = weight;
	rc = meta_mutate(a, &req, why, sizeof(why));
	if (rc < 0)
		fprintf(stderr,
			PROG ": the metadata service at %s did not %s node %" PRIu32 ": %s%s%s; "
			     "see its log\n",
			meta_name(a), what, n->id, strerror(-rc), why[0] ? ": " : "", why);
	return rc;
}

static void node_done_json(const struct node_view *n, const char *action, uint32_t weight)
{
	struct json j = {.f = stdout};

	json_open(&j, NULL, '{');
	json_str(&j, "action", action);
	json_u64(&j, "id", n->id);
	json_str(&j, "address", n->addr);
	json_u64(&j, "weight", weight);
	json_close(&j, '}');
	fputc('\n', stdout);
}

static size_t nodes_in(const struct cluster_view *v)
{
	size_t in = 0;

	for (size_t i = 0; i < v->n_nodes; i++)
		in += v->nodes[i].in_map && (v->nodes[i].flags & PIFS_NODE_IN);
	return in;
}

/* node add ADDRESS: admit the new node there, or put a node that the map
 * does not know in with the next free id. */
static int node_add(struct admin *a, struct cluster_view *v, const char *addr)
{
	struct node_view *n = NULL, added = {0};
	struct pifs_msg req;
	char ep[300], why[256];
	uint32_t id = 0;
	int rc;

	if (pifs_conf_endpoint(addr, ep, sizeof(ep)) < 0) {
		fprintf(stderr, PROG ": '%s' is not an address: write it as host:port\n", addr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].in_map && strcmp(v->nodes[i].addr, addr) == 0)
			n = &v->nodes[i];
	if (n && (n->flags & PIFS_NODE_IN) && !(n->flags & (PIFS_NODE_NEW | PIFS_NODE_DRAIN))) {
		if (a->weight && a->weight != n->weight &&
		    node_set(a, n, 0, 0, a->weight, "change the weight of") < 0)
			return EXIT_FAIL;
		if (a->json)
			node_done_json(n, "member", a->weight ? a->weight : n->weight);
		else
			printf("node %" PRIu32 " at %s is already a member (in, weight %" PRIu32
			       ")\n",
			       n->id, addr, a->weight ? a->weight : n->weight);
		return EXIT_OK;
	}
	if (n) {
		if (node_set(a, n, PIFS_NODE_IN, PIFS_NODE_NEW | PIFS_NODE_DRAIN, a->weight,
			     "admit") < 0)
			return EXIT_FAIL;
		added = *n;
	} else {
		for (size_t i = 0; i < v->n_nodes; i++)
			if (v->nodes[i].id > id)
				id = v->nodes[i].id;
		for (size_t i = 0; i < a->conf.n_nodes; i++)
			if (a->conf.nodes[i].id > id)
				id = a->conf.nodes[i].id;
		id++;
		pifs_msg_init(&req, PIFS_MSG_NODE_ADD);
		req.u.NODE_ADD.id = id;
		req.u.NODE_ADD.weight = a->weight;
		req.u.NODE_ADD.flags = PIFS_NODE_IN;
		req.u.NODE_ADD.addr = pifs_str_of(addr);
		rc = meta_mutate(a, &req, why, sizeof(why));
		if (rc < 0) {
			fprintf(stderr,
				PROG
				": the metadata service at %s did not add a node at %s: %s%s%s; "
				"see its log\n",
				meta_name(a), addr, strerror(-rc), why[0] ? ": " : "", why);
			return EXIT_FAIL;
		}
		added.id = id;
		snprintf(added.addr, sizeof(added.addr), "%s", addr);
	}
	if (a->weight)
		added.weight = a->weight;
	if (a->json) {
		node_done_json(&added, "admitted", added.weight);
		return EXIT_OK;
	}
	printf("%" PRIu32 "\n", added.id);
	if (n)
		printf("node %" PRIu32 " at %s is admitted (in, weight %" PRIu32 ")\n", added.id,
		       addr, added.weight);
	else
		printf("node %" PRIu32 " at %s is in the cluster map (in, weight %s): start "
		       "'pifs-storaged -c CONF --node %" PRIu32 " --listen %s --data DIR' there; "
		       "until it answers, writes leave its copies to other nodes\n",
		       added.id, addr, a->weight ? "as given" : "auto: its disk in GiB", added.id,
		       addr);
	printf("nothing moves yet: see the plan with '" PROG " rebalance --dry-run', then move the "
	       "data with '" PROG " rebalance --wait'\n");
	return EXIT_OK;
}

static int node_drain(struct admin *a, struct cluster_view *v, struct node_view *n)
{
	size_t in = nodes_in(v) - ((n->flags & PIFS_NODE_IN) != 0);

	if (n->flags & PIFS_NODE_META) {
		fprintf(stderr,
			PROG ": node %" PRIu32 " is a metadata voter: it cannot leave the cluster "
			     "while it votes; take it out of the voters first ('" PROG " meta "
			     "remove %" PRIu32 "', after adding another if it is the last)\n",
			n->id, n->id);
		return EXIT_FAIL;
	}
	if (in < v->replicas) {
		fprintf(stderr,
			PROG ": draining node %" PRIu32 " would leave %zu node(s) in, fewer than "
			     "the %" PRIu32
			     " replicas: it would keep every chunk; add a node first "
			     "(" PROG " node add ADDRESS)\n",
			n->id, in, v->replicas);
		return EXIT_FAIL;
	}
	if (node_set(a, n, PIFS_NODE_DRAIN, PIFS_NODE_IN | PIFS_NODE_NEW, 0, "drain") < 0)
		return EXIT_FAIL;
	if (a->json) {
		node_done_json(n, "drain", n->weight);
		return EXIT_OK;
	}
	printf("node %" PRIu32 " at %s is draining: it takes no new chunks; move its chunks to "
	       "the other nodes with '" PROG " rebalance --wait' (see the plan first with "
	       "'" PROG " rebalance --dry-run'), then '" PROG " node remove %" PRIu32 "'\n",
	       n->id, n->addr, n->id);
	return EXIT_OK;
}

static int node_remove(struct admin *a, struct cluster_view *v, struct node_view *n)
{
	struct work_sums s;
	struct pifs_msg req;
	char b1[32], why[256];
	bool holds, unknown, risky;
	int rc;

	if (n->flags & PIFS_NODE_META) {
		fprintf(stderr,
			PROG ": node %" PRIu32 " is a metadata voter: it cannot be removed while it "
			     "votes; take it out of the voters first ('" PROG " meta remove %" PRIu32
			     "', after adding another if it is the last)\n",
			n->id, n->id);
		return EXIT_FAIL;
	}
	work_sum(v, &s);
	/* A node that answered tells what it holds; one that did not may hold
	 * the only copy of whatever is short of copies, or all of its chunks
	 * while it is still in (its chunks were never copied away); one never
	 * heard of (added by address, its daemon never started) holds nothing. */
	unknown = n->stat_rc < 0;
	holds = !unknown && n->chunks > 0;
	risky = unknown && n->last_seen != 0 &&
		((n->flags & PIFS_NODE_IN) || s.degraded || s.heal_chunks);
	if ((holds || risky) && !a->force) {
		if (holds)
			fprintf(stderr,
				PROG ": node %" PRIu32 " still holds %" PRIu64 " chunks (%s): "
				     "removing it now could lose the only copy of some; first run "
				     "'" PROG " node drain %" PRIu32 "' and '" PROG " rebalance "
				     "--wait', then remove it (--force removes it anyway)\n",
				n->id, n->chunks, human(n->used, b1, sizeof(b1)), n->id);
		else
			fprintf(stderr,
				PROG
				": node %" PRIu32 " does not answer, and %s: it may hold the "
				"only copy of some chunks; bring it back and run '" PROG " node "
				"drain %" PRIu32 "' and '" PROG " rebalance --wait', or wait "
				"until it is out and '" PROG " heal --wait' ends clean (--force "
				"removes it anyway)\n",
				n->id,
				(n->flags & PIFS_NODE_IN) ? "it is still in (its chunks were not "
							    "copied away)"
							  : "chunks are short of copies or away "
							    "from their owners",
				n->id);
		return EXIT_FAIL;
	}
	if (holds || risky)
		fprintf(stderr,
			PROG ": --force: removing node %" PRIu32 " with %s%" PRIu64 " chunks (%s) "
			     "on it%s; %" PRIu64 " chunks in the cluster have fewer than %" PRIu32
			     " copies: any of them whose last copy is there is lost, and files "
			     "using them fail with EIO\n",
			n->id, unknown ? "perhaps " : "", n->chunks, human(n->used, b1, sizeof(b1)),
			unknown ? " as its last heartbeat said" : "", s.degraded, v->replicas);
	pifs_msg_init(&req, PIFS_MSG_NODE_DEL);
	req.u.NODE_DEL.id = n->id;
	rc = meta_mutate(a, &req, why, sizeof(why));
	if (rc < 0) {
		fprintf(stderr,
			PROG ": the metadata service at %s did not remove node %" PRIu32
			     ": %s%s%s; "
			     "see its log\n",
			meta_name(a), n->id, strerror(-rc), why[0] ? ": " : "", why);
		return EXIT_FAIL;
	}
	if (a->json) {
		node_done_json(n, "removed", n->weight);
		return EXIT_OK;
	}
	printf("node %" PRIu32 " at %s is removed from the cluster map; its daemon stops its "
	       "heartbeat: stop it, and take its section out of the configuration file\n",
	       n->id, n->addr);
	return EXIT_OK;
}

static int node_weight(struct admin *a, struct node_view *n, const char *word)
{
	char *end;
	unsigned long w;

	errno = 0;
	w = strtoul(word, &end, 10);
	if (errno || !*word || *end || *word == '-' || w == 0 || w > UINT32_MAX) {
		fprintf(stderr, PROG ": weight '%s' is not a whole number above 0\n", word);
		return EXIT_USAGE;
	}
	if (node_set(a, n, 0, 0, (uint32_t)w, "change the weight of") < 0)
		return EXIT_FAIL;
	if (a->json) {
		node_done_json(n, "set-weight", (uint32_t)w);
		return EXIT_OK;
	}
	printf("node %" PRIu32 " now has weight %lu (was %" PRIu32 "); nothing moves until "
	       "'" PROG " rebalance' (see the plan with --dry-run)\n",
	       n->id, w, n->weight);
	return EXIT_OK;
}

int cmd_node(struct admin *a)
{
	struct cluster_view v = {0};
	const char *verb = a->argv[0];
	struct node_view *n;
	int rc;

	if (strcmp(verb, "add") && strcmp(verb, "drain") && strcmp(verb, "remove") &&
	    strcmp(verb, "set-weight")) {
		fprintf(stderr,
			PROG ": node %s: unknown; say node add, drain, remove or set-weight "
			     "(see '" PROG " node --help')\n",
			verb);
		return EXIT_USAGE;
	}
	if ((strcmp(verb, "set-weight") == 0) != (a->argc == 3)) {
		fprintf(stderr, PROG ": node %s takes %s\n", verb,
			strcmp(verb, "set-weight") == 0 ? "NODE and WEIGHT"
			: strcmp(verb, "add") == 0	? "one ADDRESS"
							: "one NODE");
		return EXIT_USAGE;
	}
	if ((a->weight && strcmp(verb, "add")) || (a->force && strcmp(verb, "remove"))) {
		fprintf(stderr, PROG ": %s belongs to node %s, not to node %s\n",
			a->weight ? "--weight" : "--force", a->weight ? "add" : "remove", verb);
		return EXIT_USAGE;
	}
	if (fetch_cluster(a, &v) < 0) {
		free(v.nodes);
		return EXIT_FAIL;
	}
	if (strcmp(verb, "remove") == 0 && probe_nodes(a, &v, false) < 0) {
		fprintf(stderr, PROG ": out of memory while asking the nodes\n");
		free(v.nodes);
		return EXIT_FAIL;
	}
	if (strcmp(verb, "add") == 0) {
		rc = node_add(a, &v, a->argv[1]);
		goto out_free;
	}
	n = node_named(&v, a->argv[1]);
	if (!n)
		rc = EXIT_FAIL;
	else if (strcmp(verb, "drain") == 0)
		rc = node_drain(a, &v, n);
	else if (strcmp(verb, "remove") == 0)
		rc = node_remove(a, &v, n);
	else
		rc = node_weight(a, n, a->argv[2]);
out_free:
	free(v.nodes);
	return rc;
}

const char node_help[] =
    "Usage: " PROG " [-c FILE] [--json] node add ADDRESS [--weight W]\n"
    "       " PROG " [-c FILE] [--json] node drain NODE\n"
    "       " PROG " [-c FILE] [--json] node remove NODE [--force]\n"
    "       " PROG " [-c FILE] [--json] node set-weight NODE W\n"
    "\n"
    "Change who is a member of the cluster. NODE is a node id or address, as\n"
    "'" PROG " nodes' shows them. None of these moves data by itself: see what would\n"
    "move with '" PROG " rebalance --dry-run', and move it with '" PROG " rebalance'.\n"
    "\n"
    "  add ADDRESS   admit the node at ADDRESS (host:port). A pifs-storaged started with\n"
    "                a node id the cluster does not know joins by itself as new (shown\n"
    "                so by 'nodes') and stores nothing until admitted here. An address\n"
    "                the map does not know is added with the next free id, in; start\n"
    "                its daemon with that id. Prints the node id.\n"
    "      --weight W  its share in placement (default 0: its disk size in GiB)\n"
    "  drain NODE    stop placing chunks on NODE; 'rebalance' then moves its chunks to\n"
    "                the other nodes (at least replicas nodes must stay in)\n"
    "  remove NODE   take NODE out of the cluster map. Refused, with the reason, while\n"
    "                it holds chunks, or, when it does not answer but did once, while\n"
    "                it is still in or chunks are short of copies (it might hold the\n"
    "                only copy): drain it and run 'rebalance --wait' first. A node that\n"
    "                never answered holds nothing. A metadata voter cannot be drained or\n"
    "                removed: 'meta remove NODE' first.\n"
    "      --force   remove it anyway, saying what may be lost\n"
    "  set-weight NODE W  change NODE's weight (a whole number above 0)\n"
    "\n"
    "JSON: action (member, admitted, drain, removed, set-weight), id, address, weight.\n"
    "\n"
    "Exit status: 0 done; 1 refused (the reason is printed) or the metadata service\n"
    "could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " node add 192.168.1.24:7100\n"
    "  " PROG " node drain 3 && " PROG " rebalance --wait && " PROG " node remove 3\n"
    "  " PROG " node set-weight 2 200\n";
