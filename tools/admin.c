/* admin.c - pifs-admin: what an operator asks of a running cluster.
 *
 * Every subcommand reads the cluster's configuration file, asks the metadata
 * voter for CLUSTER_STAT (the map and the namespace figures) and, where it
 * shows per-node use, asks every storage node for NODE_STAT in parallel. The
 * tool only reads: it never changes the cluster. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "config.h"
#include "proto.h"
#include "rpc.h"

#define PROG "pifs-admin"
#define DEFAULT_CONF "/etc/pifs/pifs.conf"

/* Exit codes, as the help text documents them. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_DEGRADED 3

/* A node as the tool shows it: what the metadata service says of it, and
 * what the node itself answered. */
struct node_view {
	uint32_t id;
	char addr[256];
	uint32_t weight;
	uint32_t flags;	   /* PIFS_NODE_*, from the cluster map */
	int64_t last_seen; /* ns since the epoch; 0: never heard of */
	bool in_map;	   /* false: named in the configuration file only */
	int stat_rc;	   /* NODE_STAT: 0 answered, else -errno */
	uint32_t stat_id;  /* the id the answering daemon gave */
	uint64_t capacity, free_bytes, used, chunks, corrupt;
};

struct cluster_view {
	uint64_t epoch;
	uint32_t replicas;
	uint32_t chunk_size;
	uint64_t log_index;
	uint64_t inodes;
	uint64_t logical;
	uint64_t chunks;
	uint64_t chunk_raw;
	uint64_t chunk_stored;
	uint64_t chunk_refs;
	size_t n_nodes;
	struct node_view *nodes; /* owned; @n_nodes, ordered by id */
};

struct admin {
	const char *conf_path;
	bool json;
	int timeout_ms; /* 0: the configuration's [client] timeout */
	struct pifs_conf conf;
	const struct pifs_conf_node *meta; /* borrowed from @conf */
	void *zctx;
};

struct command {
	const char *name;
	const char *help;
	int (*run)(struct admin *a);
};

/* ---- a tiny JSON writer: objects, arrays, integers, strings, booleans ---- */

#define JSON_MAX_DEPTH 8

struct json {
	FILE *f;
	int depth;
	bool comma[JSON_MAX_DEPTH];
};

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Write the separator and, inside an object, the key of the next value. */
static void json_key(struct json *j, const char *key)
{
	if (j->comma[j->depth])
		fputc(',', j->f);
	j->comma[j->depth] = true;
	if (key) {
		json_string(j->f, key);
		fputc(':', j->f);
	}
}

static void json_open(struct json *j, const char *key, char brace)
{
	json_key(j, key);
	fputc(brace, j->f);
	/* The writers below nest three levels at most; a deeper call is a bug here. */
	if (j->depth + 1 >= JSON_MAX_DEPTH)
		abort();
	j->comma[++j->depth] = false;
}

static void json_close(struct json *j, char brace)
{
	fputc(brace, j->f);
	j->depth--;
}

static void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

static void json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRId64, v);
}

static void json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

static void json_str(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_string(j->f, s);
}

static void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

/* @num / @den with four decimals, or null when there is nothing to divide. */
static void json_ratio(struct json *j, const char *key, uint64_t num, uint64_t den)
{
	json_key(j, key);
	if (den == 0)
		fputs("null", j->f);
	else
		fprintf(j->f, "%.4f", (double)num / (double)den);
}

/* ---- text helpers ---- */

/* 1536 -> "1.5 KiB"; below 1 KiB, plain bytes. Returns @buf. */
static const char *human(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

/* How long ago @ns (since the epoch) was: "never", "just now", "12s ago", ... */
static const char *ago(int64_t ns, char *buf, size_t cap)
{
	int64_t s;

	if (ns == 0) {
		snprintf(buf, cap, "never");
		return buf;
	}
	s = (pifs_now_ns() - ns) / 1000000000;
	if (s < 1)
		snprintf(buf, cap, "just now");
	else if (s < 120)
		snprintf(buf, cap, "%" PRId64 "s ago", s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%" PRId64 "m ago", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%" PRId64 "h ago", s / 3600);
	else
		snprintf(buf, cap, "%" PRId64 "d ago", s / 86400);
	return buf;
}

static const char *node_state(const struct node_view *n)
{
	if (!n->in_map)
		return "unregistered";
	return (n->flags & PIFS_NODE_UP) ? "up" : "down";
}

static const char *node_placement(const struct node_view *n)
{
	if (n->flags & PIFS_NODE_DRAIN)
		return "drain";
	return (n->flags & PIFS_NODE_IN) ? "in" : "out";
}

static bool node_up(const struct node_view *n)
{
	return n->in_map && (n->flags & PIFS_NODE_UP);
}

/* Why NODE_STAT gave nothing, in a few words for a table cell. */
static const char *stat_problem(const struct node_view *n, char *buf, size_t cap)
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

static void unreachable_meta(const struct admin *a, int rc)
{
	const char *why = strerror(-rc);

	if (rc == -ETIMEDOUT)
		why = "no answer";
	else if (rc == -EHOSTUNREACH)
		why = "no connection";

	fprintf(stderr, PROG ": cannot reach the metadata service at %s (node %" PRIu32 "): ",
		a->meta->addr, a->meta->id);
	fprintf(stderr,
		"is pifs-storaged running there? (see pifs-local status / journalctl) "
		"[%s after %d ms]\n",
		why, a->timeout_ms);
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

/* Ask the metadata voter for the cluster figures. Prints what went wrong for
 * the operator; returns 0 or -errno. */
static int fetch_cluster(struct admin *a, struct cluster_view *v)
{
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	char ep[300];
	int rc;

	rc = pifs_conf_endpoint(a->meta->addr, ep, sizeof(ep));
	if (rc < 0) {
		fprintf(stderr,
			PROG ": %s: node %" PRIu32 " has the address '%s', which has no port: "
			     "write it as host:port\n",
			a->conf_path, a->meta->id, a->meta->addr);
		return rc;
	}
	rc = pifs_rpc_new(a->zctx, ep, &r);
	if (rc < 0) {
		unreachable_meta(a, rc);
		return rc;
	}
	pifs_msg_init(&req, PIFS_MSG_CLUSTER_STAT);
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, a->timeout_ms);
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ECONNREFUSED) {
		unreachable_meta(a, rc);
		goto out_free;
	}
	if ((rc == -EBADMSG || rc == -EPROTO) && rep.type != PIFS_MSG_R_STATUS) {
		fprintf(stderr,
			PROG ": the metadata service at %s (node %" PRIu32 ") sent a reply to "
			     "CLUSTER_STAT that does not decode (%s): are pifs-admin and "
			     "pifs-storaged built from the same version?\n",
			a->meta->addr, a->meta->id, strerror(-rc));
		goto out_free;
	}
	if (rc < 0) {
		bool detail = rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.detail.len > 0;

		fprintf(stderr,
			PROG ": the metadata service at %s (node %" PRIu32 ") refused "
			     "CLUSTER_STAT: %s%s%.*s; see that node's log\n",
			a->meta->addr, a->meta->id, strerror(-rc), detail ? ": " : "",
			detail ? rep.u.R_STATUS.detail.len : 0,
			detail ? rep.u.R_STATUS.detail.p : "");
		goto out_free;
	}
	if (rep.type != PIFS_MSG_R_CLUSTER) {
		fprintf(
		    stderr,
		    PROG
		    ": the metadata service at %s (node %" PRIu32 ") answered "
		    "CLUSTER_STAT with %s: are pifs-admin and pifs-storaged the same version?\n",
		    a->meta->addr, a->meta->id, pifs_proto_name(rep.type));
		rc = -EPROTO;
		goto out_free;
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
			PROG
			": the metadata service at %s (node %" PRIu32 ") sent a "
			"node list that does not decode (%s): are pifs-admin and pifs-storaged the "
			"same version?\n",
			a->meta->addr, a->meta->id, strerror(-rc));
out_free:
	pifs_rpc_free(r);
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
	rc = pifs_rpc_new(p->a->zctx, ep, &r);
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
out:
	pifs_rpc_free(r);
	n->stat_rc = rc;
	return NULL;
}

/* NODE_STAT every node at once, so that one dead node costs one timeout in
 * all, not one each. */
static int probe_nodes(struct admin *a, struct cluster_view *v)
{
	struct probe *p = calloc(v->n_nodes ? v->n_nodes : 1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < v->n_nodes; i++) {
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

/* ---- the subcommands ---- */

static void json_cluster_head(struct json *j, const struct admin *a, const struct cluster_view *v)
{
	json_u64(j, "epoch", v->epoch);
	json_u64(j, "replicas", v->replicas);
	json_u64(j, "chunk_size", v->chunk_size);
	json_u64(j, "log_index", v->log_index);
	json_u64(j, "meta_node", a->meta->id);
	json_str(j, "meta_address", a->meta->addr);
}

static int count_up(const struct cluster_view *v)
{
	int up = 0;

	for (size_t i = 0; i < v->n_nodes; i++)
		up += node_up(&v->nodes[i]);
	return up;
}

static int cmd_status(struct admin *a)
{
	struct cluster_view v = {0};
	char b1[32], b2[32];
	int rc, up;

	rc = fetch_cluster(a, &v);
	if (rc < 0) {
		free(v.nodes);
		return EXIT_FAIL;
	}
	up = count_up(&v);
	if (a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_cluster_head(&j, a, &v);
		json_u64(&j, "inodes", v.inodes);
		json_u64(&j, "nodes_up", (uint64_t)up);
		json_u64(&j, "nodes_total", v.n_nodes);
		json_bool(&j, "healthy", (size_t)up == v.n_nodes);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < v.n_nodes; i++) {
			const struct node_view *n = &v.nodes[i];

			json_open(&j, NULL, '{');
			json_u64(&j, "id", n->id);
			json_str(&j, "address", n->addr);
			json_str(&j, "state", node_state(n));
			json_bool(&j, "up", node_up(n));
			json_bool(&j, "in", n->flags & PIFS_NODE_IN);
			json_bool(&j, "meta", n->flags & PIFS_NODE_META);
			json_bool(&j, "drain", n->flags & PIFS_NODE_DRAIN);
			json_bool(&j, "registered", n->in_map);
			json_i64(&j, "last_seen_ns", n->last_seen);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		printf("cluster:   map epoch %" PRIu64 ", %" PRIu32 " replicas, chunk size %s\n",
		       v.epoch, v.replicas, human(v.chunk_size, b1, sizeof(b1)));
		printf("metadata:  node %" PRIu32 " at %s, log index %" PRIu64 ", %" PRIu64
		       " inodes\n",
		       a->meta->id, a->meta->addr, v.log_index, v.inodes);
		printf("nodes:     %d up of %zu\n", up, v.n_nodes);
		for (size_t i = 0; i < v.n_nodes; i++) {
			const struct node_view *n = &v.nodes[i];

			if (node_up(n))
				continue;
			if (!n->in_map)
				printf("  node %" PRIu32 " at %s has never registered: start "
				       "pifs-storaged --node %" PRIu32 " there\n",
				       n->id, n->addr, n->id);
			else
				printf("  node %" PRIu32 " at %s is down (%s, last seen %s)\n",
				       n->id, n->addr, node_placement(n),
				       ago(n->last_seen, b2, sizeof(b2)));
		}
		printf("health:    %s\n", (size_t)up == v.n_nodes ? "ok" : "degraded");
	}
	free(v.nodes);
	return (size_t)up == v.n_nodes ? EXIT_OK : EXIT_DEGRADED;
}

static int cmd_nodes(struct admin *a)
{
	struct cluster_view v = {0};
	char b1[32], b2[32], b3[64];
	int rc, aw = (int)strlen("ADDRESS");

	rc = fetch_cluster(a, &v);
	if (rc < 0) {
		free(v.nodes);
		return EXIT_FAIL;
	}
	rc = probe_nodes(a, &v);
	if (rc < 0) {
		fprintf(stderr, PROG ": out of memory while asking the nodes\n");
		free(v.nodes);
		return EXIT_FAIL;
	}
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
			json_bool(&j, "registered", n->in_map);
			json_u64(&j, "weight", n->weight);
			json_i64(&j, "last_seen_ns", n->last_seen);
			json_bool(&j, "reachable", ok);
			if (ok) {
				json_u64(&j, "capacity", n->capacity);
				json_u64(&j, "free", n->free_bytes);
				json_u64(&j, "used", n->used);
				json_u64(&j, "chunks", n->chunks);
				json_u64(&j, "corrupt", n->corrupt);
			} else {
				json_null(&j, "capacity");
				json_null(&j, "free");
				json_null(&j, "used");
				json_null(&j, "chunks");
				json_null(&j, "corrupt");
				json_str(&j, "error", stat_problem(n, b3, sizeof(b3)));
			}
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
		if (n->stat_rc == 0 && n->corrupt)
			printf("      node %" PRIu32 " holds %" PRIu64 " corrupt chunk files in "
			       "quarantine: they are repaired from replicas\n",
			       n->id, n->corrupt);
	}
	free(v.nodes);
	return EXIT_OK;
}

/* Figures df derives from the cluster view. */
struct df_sums {
	uint64_t stored; /* used bytes of the nodes that answered */
	uint64_t capacity;
	uint64_t free_bytes;
	uint64_t extra_refs; /* references beyond the first to each chunk */
	uint64_t dedup_saving;
	size_t unreachable;
};

static void df_sum(const struct cluster_view *v, struct df_sums *s /* OUT */)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		if (n->stat_rc < 0) {
			s->unreachable++;
			continue;
		}
		s->stored += n->used;
		s->capacity += n->capacity;
		s->free_bytes += n->free_bytes;
	}
	/* The metadata service counts references, not the bytes behind each one,
	 * so the saving is the extra references at the mean chunk size. */
	s->extra_refs = v->chunk_refs > v->chunks ? v->chunk_refs - v->chunks : 0;
	if (v->chunks)
		s->dedup_saving =
		    (uint64_t)((double)s->extra_refs * (double)v->chunk_raw / (double)v->chunks);
}

static void df_json(const struct admin *a, const struct cluster_view *v, const struct df_sums *s)
{
	struct json j = {.f = stdout};
	char b[64];

	json_open(&j, NULL, '{');
	json_cluster_head(&j, a, v);
	json_u64(&j, "inodes", v->inodes);
	json_u64(&j, "logical", v->logical);
	json_u64(&j, "chunks", v->chunks);
	json_u64(&j, "chunk_raw", v->chunk_raw);
	json_u64(&j, "chunk_stored", v->chunk_stored);
	json_u64(&j, "chunk_refs", v->chunk_refs);
	json_u64(&j, "dedup_extra_refs", s->extra_refs);
	json_u64(&j, "dedup_saving", s->dedup_saving);
	json_u64(&j, "stored", s->stored);
	json_bool(&j, "stored_complete", s->unreachable == 0);
	json_u64(&j, "capacity", s->capacity);
	json_u64(&j, "free", s->free_bytes);
	json_ratio(&j, "compression_ratio", v->chunk_stored, v->chunk_raw);
	json_ratio(&j, "replication", s->stored, v->chunk_stored);
	json_u64(&j, "nodes_unreachable", s->unreachable);
	json_open(&j, "nodes", '[');
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		json_open(&j, NULL, '{');
		json_u64(&j, "id", n->id);
		json_str(&j, "address", n->addr);
		json_bool(&j, "reachable", n->stat_rc == 0);
		if (n->stat_rc == 0) {
			json_u64(&j, "used", n->used);
			json_u64(&j, "free", n->free_bytes);
			json_u64(&j, "capacity", n->capacity);
			json_u64(&j, "chunks", n->chunks);
		} else {
			json_null(&j, "used");
			json_null(&j, "free");
			json_null(&j, "capacity");
			json_null(&j, "chunks");
			json_str(&j, "error", stat_problem(n, b, sizeof(b)));
		}
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_close(&j, '}');
	fputc('\n', stdout);
}

static void df_text(const struct cluster_view *v, const struct df_sums *s)
{
	char b1[32], b2[32], b3[32], b4[64];
	int aw = (int)strlen("ADDRESS");

	printf("%-13s %10s  sum of the sizes of the files (%" PRIu64 " inodes)\n", "logical",
	       human(v->logical, b1, sizeof(b1)), v->inodes);
	printf("%-13s %10s  distinct chunks, uncompressed, one copy (%" PRIu64 " chunks)\n", "data",
	       human(v->chunk_raw, b1, sizeof(b1)), v->chunks);
	if (v->chunk_raw)
		printf("%-13s %10s  those chunks as stored, one copy (compression ratio %.2f)\n",
		       "compressed", human(v->chunk_stored, b1, sizeof(b1)),
		       (double)v->chunk_stored / (double)v->chunk_raw);
	else
		printf("%-13s %10s  those chunks as stored, one copy (no data yet)\n", "compressed",
		       human(v->chunk_stored, b1, sizeof(b1)));
	printf("%-13s %10s  chunks shared by files (%" PRIu64 " extra references, at the mean "
	       "chunk size)\n",
	       "dedup saving", human(s->dedup_saving, b1, sizeof(b1)), s->extra_refs);
	if (v->chunk_stored)
		printf("%-13s %10s  on the nodes' disks, every copy (replication %.2fx of %" PRIu32
		       ")\n",
		       "stored", human(s->stored, b1, sizeof(b1)),
		       (double)s->stored / (double)v->chunk_stored, v->replicas);
	else
		printf("%-13s %10s  on the nodes' disks, every copy (%" PRIu32 " replicas)\n",
		       "stored", human(s->stored, b1, sizeof(b1)), v->replicas);
	printf("%-13s %10s  free of %s on the nodes that answered\n", "free",
	       human(s->free_bytes, b1, sizeof(b1)), human(s->capacity, b2, sizeof(b2)));
	if (s->unreachable)
		printf("warning: %zu node(s) did not answer: stored, free and capacity leave "
		       "them out (see pifs-admin nodes)\n",
		       s->unreachable);
	putchar('\n');
	for (size_t i = 0; i < v->n_nodes; i++)
		if ((int)strlen(v->nodes[i].addr) > aw)
			aw = (int)strlen(v->nodes[i].addr);
	printf("%-5s %-*s %10s %10s %10s %5s %8s\n", "NODE", aw, "ADDRESS", "USED", "FREE",
	       "CAPACITY", "USE%", "CHUNKS");
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		if (n->stat_rc < 0) {
			printf("%-5" PRIu32 " %-*s %s\n", n->id, aw, n->addr,
			       stat_problem(n, b4, sizeof(b4)));
			continue;
		}
		printf("%-5" PRIu32 " %-*s %10s %10s %10s %4.0f%% %8" PRIu64 "\n", n->id, aw,
		       n->addr, human(n->used, b1, sizeof(b1)),
		       human(n->free_bytes, b2, sizeof(b2)), human(n->capacity, b3, sizeof(b3)),
		       n->capacity ? 100.0 * (double)n->used / (double)n->capacity : 0.0,
		       n->chunks);
	}
}

static int cmd_df(struct admin *a)
{
	struct cluster_view v = {0};
	struct df_sums s;
	int rc;

	rc = fetch_cluster(a, &v);
	if (rc < 0) {
		free(v.nodes);
		return EXIT_FAIL;
	}
	rc = probe_nodes(a, &v);
	if (rc < 0) {
		fprintf(stderr, PROG ": out of memory while asking the nodes\n");
		free(v.nodes);
		return EXIT_FAIL;
	}
	df_sum(&v, &s);
	if (a->json)
		df_json(a, &v, &s);
	else
		df_text(&v, &s);
	free(v.nodes);
	return EXIT_OK;
}

/* ---- help ---- */

static const char global_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] COMMAND\n"
    "       " PROG " COMMAND --help\n"
    "\n"
    "Show the state of a pifs cluster. " PROG " reads the cluster's configuration file,\n"
    "asks the metadata service (the first node with \"meta = yes\") for the cluster map\n"
    "and its figures, and asks each storage node for its own. It changes nothing.\n"
    "\n"
    "Commands:\n"
    "  status   the cluster in a few lines: map epoch, replicas, chunk size, metadata\n"
    "           log index, how many nodes are up, and one line for each node that is not\n"
    "  nodes    one line per node: address, up/down, in/out, metadata voter, weight,\n"
    "           used/capacity, chunks, when the metadata service last heard from it\n"
    "  df       space: logical bytes, data, compression, dedup saving, stored bytes,\n"
    "           replication, and use and free space per node\n"
    "\n"
    "Options (before or after the command):\n"
    "  -c, --config FILE   the cluster's configuration file (default: $PIFS_CONF, else\n"
    "                      " DEFAULT_CONF ")\n"
    "  -j, --json          print one JSON object with every figure: sizes as integers in\n"
    "                      bytes, times in nanoseconds since the epoch, stable key names\n"
    "  -t, --timeout DUR   how long to wait for each node, as 500ms, 2s, 1m (default: the\n"
    "                      [client] timeout of the configuration file)\n"
    "  -h, --help          show this help; after a command, that command's help\n"
    "\n"
    "Exit status:\n"
    "  0  success; for status, every node is up\n"
    "  1  the metadata service could not be reached, or answered with an error\n"
    "  2  bad command line, or a configuration file that cannot be read\n"
    "  3  status only: the cluster answered, but a node is down or has never registered\n"
    "\n"
    "Environment:\n"
    "  PIFS_CONF  the configuration file when -c is not given\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " -c ~/cluster/pifs.conf nodes\n"
    "  " PROG " df --json | jq .stored\n"
    "  " PROG " --timeout 2s status --json\n";

static const char status_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] status\n"
    "\n"
    "Show the cluster in a few lines, from the metadata service alone:\n"
    "  cluster    the map epoch (it grows with every change of the cluster map), the\n"
    "             number of copies of each chunk (replicas) and the chunk size\n"
    "  metadata   the metadata voter asked, its last applied log index, the inode count\n"
    "  nodes      how many nodes are up, of all the nodes in the map and the\n"
    "             configuration file; then one line per node that is down (with its\n"
    "             placement, in or out, and when it was last heard from) or that has\n"
    "             never registered (named in the configuration file, never started)\n"
    "  health     ok when every node is up, else degraded\n"
    "\n"
    "JSON keys: epoch, replicas, chunk_size, log_index, meta_node, meta_address, inodes,\n"
    "nodes_up, nodes_total, healthy, and nodes: [{id, address, state (up, down,\n"
    "unregistered), up, in, meta, drain, registered, last_seen_ns (0: never)}].\n"
    "\n"
    "Exit status: 0 every node is up; 3 a node is down or unregistered; 1 the metadata\n"
    "service could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " status --json | jq '.nodes[] | select(.up | not) | .id'\n"
    "  until " PROG " --timeout 1s status >/dev/null; do sleep 1; done\n";

static const char nodes_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] nodes\n"
    "\n"
    "Show one line per node, from the cluster map and from the node itself:\n"
    "  ID             the node id ([node N] in the configuration file)\n"
    "  ADDRESS        where its pifs-storaged listens (host:port)\n"
    "  STATE          up or down (heartbeats, as the metadata service sees them), or\n"
    "                 unregistered (in the configuration file, never started)\n"
    "  PLACE          in (chunks are placed on it), out (its data has moved away) or\n"
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
    "nodes: [{id, address, state, up, in, meta, drain, registered, weight, last_seen_ns,\n"
    "reachable, capacity, free, used, chunks, corrupt}]; the last five are null and\n"
    "error says why when the node did not answer.\n"
    "\n"
    "Exit status: 0 the table was printed (even with nodes down); 1 the metadata service\n"
    "could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " nodes\n"
    "  " PROG " nodes --json | jq '.nodes[] | {id, used, capacity}'\n";

static const char df_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] df\n"
    "\n"
    "Show where the space goes, from the file sizes down to the bytes on the disks:\n"
    "  logical       the sum of the sizes of all regular files (holes included)\n"
    "  data          the distinct chunks the files reference, uncompressed, counted\n"
    "                once however many files share them\n"
    "  compressed    those chunks as stored (LZ4 where it pays, framed), counted once;\n"
    "                compression ratio = compressed / data (0.30: 70% saved)\n"
    "  dedup saving  bytes that deduplication saves: chunk references beyond the first\n"
    "                to each chunk, at the mean chunk size (an estimate)\n"
    "  stored        the bytes of chunk files on the nodes' disks, every copy, summed over\n"
    "                the nodes that answered; replication = stored / compressed, which\n"
    "                is about the replicas setting once heal has caught up\n"
    "  free          free space over capacity, summed over the nodes that answered\n"
    "Then one line per node: USED, FREE, CAPACITY, USE% and CHUNKS, or why it did not\n"
    "answer. Sizes use binary units (1 KiB = 1024 bytes).\n"
    "\n"
    "JSON keys (sizes in bytes): epoch, replicas, chunk_size, log_index, meta_node,\n"
    "meta_address, inodes, logical, chunks, chunk_raw, chunk_stored, chunk_refs,\n"
    "dedup_extra_refs, dedup_saving, stored, stored_complete (false when a node did not\n"
    "answer), capacity, free, compression_ratio, replication (null without data),\n"
    "nodes_unreachable, and nodes: [{id, address, reachable, used, free, capacity,\n"
    "chunks, error}].\n"
    "\n"
    "Exit status: 0 the figures were printed (even with nodes unreachable); 1 the\n"
    "metadata service could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " df\n"
    "  " PROG " df --json | jq '{stored, replication}'\n";

static const struct command commands[] = {
    {"status", status_help, cmd_status},
    {"nodes", nodes_help, cmd_nodes},
    {"df", df_help, cmd_df},
};

static void usage_hint(void)
{
	fprintf(stderr, "Try '" PROG " --help'.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Load the configuration and pick the metadata voter; prints why not.
 * Returns 0 or -errno. */
static int load_conf(struct admin *a)
{
	char err[512] = "";
	int rc;

	rc = pifs_conf_load(&a->conf, a->conf_path, err, sizeof(err));
	if (rc < 0) {
		if (err[0])
			fprintf(stderr, PROG ": %s\n", err);
		else
			fprintf(stderr,
				PROG ": cannot read the configuration file %s: %s; give "
				     "another with -c FILE\n",
				a->conf_path, strerror(-rc));
		return rc;
	}
	a->meta = pifs_conf_meta(&a->conf);
	if (!a->meta) {
		fprintf(stderr,
			PROG ": %s names no metadata voter: add \"meta = yes\" to one "
			     "[node N] section\n",
			a->conf_path);
		return -EINVAL;
	}
	if (a->timeout_ms == 0)
		a->timeout_ms = a->conf.timeout_ms ? (int)a->conf.timeout_ms : 10000;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct admin a = {.conf_path = getenv("PIFS_CONF")};
	const struct command *cmd;
	bool help = false;
	uint64_t ms;
	int c, rc;

	if (!a.conf_path || !*a.conf_path)
		a.conf_path = DEFAULT_CONF;
	/* Our own messages: getopt's would name the program by its path. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a.conf_path = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		case 't':
			if (pifs_conf_parse_duration(optarg, &ms) < 0 || ms == 0 || ms > INT_MAX) {
				fprintf(stderr,
					PROG ": --timeout '%s' is not a duration: write it as "
					     "500ms, 2s or 1m\n",
					optarg);
				usage_hint();
				return EXIT_USAGE;
			}
			a.timeout_ms = (int)ms;
			break;
		case 'h':
			help = true;
			break;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
			usage_hint();
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, PROG ": unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
			usage_hint();
			return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		if (help) {
			fputs(global_help, stdout);
			return EXIT_OK;
		}
		fprintf(stderr, PROG ": no command given: say status, nodes or df\n");
		usage_hint();
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr,
			PROG ": unknown command '%s': the commands are status, nodes "
			     "and df\n",
			argv[optind]);
		usage_hint();
		return EXIT_USAGE;
	}
	if (help) {
		fputs(cmd->help, stdout);
		return EXIT_OK;
	}
	if (optind + 1 < argc) {
		fprintf(stderr, PROG ": %s takes no argument, but got '%s'\n", cmd->name,
			argv[optind + 1]);
		usage_hint();
		return EXIT_USAGE;
	}
	pifs_conf_init(&a.conf);
	if (load_conf(&a) < 0) {
		pifs_conf_fini(&a.conf);
		return EXIT_USAGE;
	}
	a.zctx = zmq_ctx_new();
	if (!a.zctx) {
		fprintf(stderr, PROG ": cannot start ZeroMQ: %s\n", strerror(errno));
		pifs_conf_fini(&a.conf);
		return EXIT_FAIL;
	}
	rc = cmd->run(&a);
	zmq_ctx_term(a.zctx);
	pifs_conf_fini(&a.conf);
	return rc;
}
