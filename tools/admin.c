/* admin.c - pifs-admin: what an operator asks of a running cluster.
 *
 * Every subcommand reads the cluster's configuration file, asks the metadata
 * voter for CLUSTER_STAT (the map, the namespace figures and each node's
 * background work as its last heartbeat told) and, where it shows per-node
 * use, asks every storage node for NODE_STAT in parallel. status, nodes and
 * df only read; scrub and heal ask the nodes to start a pass now (WORK_START)
 * and, with --wait, follow the passes with NODE_STAT until they are done. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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
	/* Background work: from the last heartbeat (CLUSTER_STAT), replaced by
	 * the node's own answer when it was asked (NODE_STAT). */
	struct pifs_work work;
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
	int timeout_ms;	 /* 0: the configuration's [client] timeout */
	bool wait;	 /* scrub, heal: follow the passes until done */
	int64_t wait_ms; /* heal --wait: give up after this long; 0: never */
	struct pifs_conf conf;
	const struct pifs_conf_node *meta; /* borrowed from @conf */
	void *zctx;
};

struct command {
	const char *name;
	const char *help;
	int (*run)(struct admin *a);
	const char *opts; /* its own options: w (--wait), T (--timeout is the wait's) */
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

/* A node refuses new chunks once storing one would leave less than the
 * reserve free (storaged/store.h): it is full when not even one more chunk of
 * @chunk_size fits. */
static bool node_full(const struct admin *a, const struct node_view *n, uint32_t chunk_size)
{
	return n->capacity && n->free_bytes < a->conf.reserve_bytes + chunk_size;
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
	n->work = rep.u.R_NODE.work;
out:
	pifs_rpc_free(r);
	n->stat_rc = rc;
	return NULL;
}

/* NODE_STAT every node at once (only those the map says are up when
 * @only_up), so that one dead node costs one timeout in all, not one each. */
static int probe_nodes(struct admin *a, struct cluster_view *v, bool only_up)
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

/* 75 -> "75s", 200 -> "3m20s", 7300 -> "2h01m": a duration for people.
 * Returns @buf. */
static const char *human_secs(uint64_t s, char *buf, size_t cap)
{
	if (s < 120)
		snprintf(buf, cap, "%" PRIu64 "s", s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
	return buf;
}

/* The background work of the nodes that are up, summed. A node that is down
 * is left out: its figures are those of its last heartbeat, and it does no
 * work now. */
struct work_sums {
	uint64_t degraded, heal_chunks, heal_bytes, heal_rate, moved_chunks, moved_bytes;
	uint64_t scrub_running, scrub_done, scrub_total;
	uint64_t scrub_corrupt, scrub_repaired, scrub_unrepairable;
	size_t up, never_healed;
};

static void work_sum(const struct cluster_view *v, struct work_sums *s /* OUT */)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct pifs_work *w = &v->nodes[i].work;

		if (!node_up(&v->nodes[i]))
			continue;
		s->up++;
		s->degraded += w->degraded;
		s->heal_chunks += w->heal_chunks;
		s->heal_bytes += w->heal_bytes;
		s->heal_rate += w->heal_rate;
		s->moved_chunks += w->moved_chunks;
		s->moved_bytes += w->moved_bytes;
		if (w->scrub_running) {
			s->scrub_running++;
			s->scrub_done += w->scrub_done;
			s->scrub_total += w->scrub_total;
		}
		s->scrub_corrupt += w->scrub_corrupt;
		s->scrub_repaired += w->scrub_repaired;
		s->scrub_unrepairable += w->scrub_unrepairable;
		s->never_healed += w->heal_passes == 0;
	}
}

/* Seconds until @bytes are copied at @rate bytes/s. Returns false when
 * nothing is being copied, so that no time can be told. */
static bool eta_secs(uint64_t bytes, uint64_t rate, uint64_t *secs /* OUT */)
{
	*secs = 0;
	if (bytes == 0)
		return true;
	if (rate == 0)
		return false;
	*secs = (bytes + rate - 1) / rate;
	return true;
}

/* ok, degraded (a node down, or chunks short of copies) or damaged (chunks
 * that no good copy could repair). */
static const char *health_word(const struct cluster_view *v, const struct work_sums *s)
{
	if (s->scrub_unrepairable)
		return "damaged";
	if (s->up != v->n_nodes || s->degraded)
		return "degraded";
	return "ok";
}

static void json_work(struct json *j, const struct pifs_work *w)
{
	json_open(j, "work", '{');
	json_u64(j, "heal_passes", w->heal_passes);
	json_u64(j, "heal_chunks", w->heal_chunks);
	json_u64(j, "heal_bytes", w->heal_bytes);
	json_u64(j, "degraded", w->degraded);
	json_u64(j, "heal_rate", w->heal_rate);
	json_u64(j, "moved_chunks", w->moved_chunks);
	json_u64(j, "moved_bytes", w->moved_bytes);
	json_u64(j, "scrub_passes", w->scrub_passes);
	json_bool(j, "scrub_running", w->scrub_running);
	json_u64(j, "scrub_done", w->scrub_done);
	json_u64(j, "scrub_total", w->scrub_total);
	json_u64(j, "scrub_corrupt", w->scrub_corrupt);
	json_u64(j, "scrub_repaired", w->scrub_repaired);
	json_u64(j, "scrub_unrepairable", w->scrub_unrepairable);
	json_close(j, '}');
}

static void status_json(const struct admin *a, const struct cluster_view *v,
			const struct work_sums *s)
{
	struct json j = {.f = stdout};
	uint64_t eta;

	json_open(&j, NULL, '{');
	json_cluster_head(&j, a, v);
	json_u64(&j, "inodes", v->inodes);
	json_u64(&j, "nodes_up", s->up);
	json_u64(&j, "nodes_total", v->n_nodes);
	json_bool(&j, "healthy", s->up == v->n_nodes);
	json_str(&j, "health", health_word(v, s));
	json_u64(&j, "degraded", s->degraded);
	json_u64(&j, "heal_chunks", s->heal_chunks);
	json_u64(&j, "heal_bytes", s->heal_bytes);
	json_u64(&j, "heal_rate", s->heal_rate);
	if (eta_secs(s->heal_bytes, s->heal_rate, &eta))
		json_u64(&j, "heal_eta_s", eta);
	else
		json_null(&j, "heal_eta_s");
	json_u64(&j, "moved_chunks", s->moved_chunks);
	json_u64(&j, "moved_bytes", s->moved_bytes);
	json_u64(&j, "scrub_running", s->scrub_running);
	json_u64(&j, "scrub_done", s->scrub_done);
	json_u64(&j, "scrub_total", s->scrub_total);
	json_u64(&j, "scrub_corrupt", s->scrub_corrupt);
	json_u64(&j, "scrub_repaired", s->scrub_repaired);
	json_u64(&j, "scrub_unrepairable", s->scrub_unrepairable);
	json_open(&j, "nodes", '[');
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		json_open(&j, NULL, '{');
		json_u64(&j, "id", n->id);
		json_str(&j, "address", n->addr);
		json_str(&j, "state", node_state(n));
		json_bool(&j, "up", node_up(n));
		json_bool(&j, "in", n->flags & PIFS_NODE_IN);
		json_bool(&j, "meta", n->flags & PIFS_NODE_META);
		json_bool(&j, "drain", n->flags & PIFS_NODE_DRAIN);
		json_bool(&j, "registered", n->in_map);
		json_bool(&j, "full", node_up(n) && node_full(a, n, v->chunk_size));
		json_u64(&j, "free", n->free_bytes);
		json_i64(&j, "last_seen_ns", n->last_seen);
		json_work(&j, &n->work);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_close(&j, '}');
	fputc('\n', stdout);
}

/* One line for node @n in status. */
static void status_node(const struct admin *a, const struct cluster_view *v,
			const struct node_view *n)
{
	char b1[32], b2[32];
	int64_t silent_ms, left_ms;

	if (!n->in_map) {
		printf("  node %" PRIu32 " at %s has never registered: start pifs-storaged --node "
		       "%" PRIu32 " there\n",
		       n->id, n->addr, n->id);
		return;
	}
	if (node_up(n)) {
		printf("  node %" PRIu32 " at %s is up (%s%s)", n->id, n->addr, node_placement(n),
		       (n->flags & PIFS_NODE_META) ? ", metadata voter" : "");
		if (node_full(a, n, v->chunk_size))
			printf(": full, %s free with a reserve of %s: new chunks go to other "
			       "nodes; free space there or add a disk",
			       human(n->free_bytes, b1, sizeof(b1)),
			       human(a->conf.reserve_bytes, b2, sizeof(b2)));
		putchar('\n');
		return;
	}
	printf("  node %" PRIu32 " at %s is down (%s, last seen %s): ", n->id, n->addr,
	       node_placement(n), ago(n->last_seen, b1, sizeof(b1)));
	if (!(n->flags & PIFS_NODE_IN)) {
		printf("its chunks are copied to the other nodes; it comes back in once it "
		       "answers\n");
		return;
	}
	silent_ms = n->last_seen ? (pifs_now_ns() - n->last_seen) / 1000000 : 0;
	left_ms = (int64_t)a->conf.out_after_ms - silent_ms;
	printf("its chunks are read from their other copies; ");
	if (n->last_seen && left_ms > 0)
		printf("it goes out (its chunks copied elsewhere) in about %s unless it answers\n",
		       human_secs((uint64_t)(left_ms + 999) / 1000, b2, sizeof(b2)));
	else
		printf("it goes out (its chunks copied elsewhere) when it has been silent for "
		       "out_after (%s)\n",
		       human_secs(a->conf.out_after_ms / 1000, b2, sizeof(b2)));
}

static void status_text(const struct admin *a, const struct cluster_view *v,
			const struct work_sums *s)
{
	char b1[32], b2[32], b3[32];
	uint64_t eta;
	const char *health = health_word(v, s);

	printf("cluster:   map epoch %" PRIu64 ", %" PRIu32 " replicas, chunk size %s\n", v->epoch,
	       v->replicas, human(v->chunk_size, b1, sizeof(b1)));
	printf("metadata:  node %" PRIu32 " at %s, log index %" PRIu64 ", %" PRIu64 " inodes\n",
	       a->meta->id, a->meta->addr, v->log_index, v->inodes);
	printf("nodes:     %zu up of %zu\n", s->up, v->n_nodes);
	for (size_t i = 0; i < v->n_nodes; i++)
		status_node(a, v, &v->nodes[i]);

	if (s->degraded)
		printf("copies:    %" PRIu64 " chunks have fewer than %" PRIu32 " copies\n",
		       s->degraded, v->replicas);
	else if (s->never_healed)
		printf("copies:    not known yet: %zu node(s) have not finished a heal pass since "
		       "they started\n",
		       s->never_healed);
	else
		printf("copies:    every chunk the nodes hold has %" PRIu32
		       " copies, as their last "
		       "heal passes found\n",
		       v->replicas);

	if (s->heal_chunks == 0)
		printf("heal:      nothing to copy or move");
	else if (eta_secs(s->heal_bytes, s->heal_rate, &eta))
		printf("heal:      %" PRIu64 " chunks (%s) left to copy or move, at %s/s, ETA %s",
		       s->heal_chunks, human(s->heal_bytes, b1, sizeof(b1)),
		       human(s->heal_rate, b2, sizeof(b2)), human_secs(eta, b3, sizeof(b3)));
	else
		printf("heal:      %" PRIu64 " chunks (%s) left to copy or move, none under way: "
		       "they wait for the next pass (heal_interval, or pifs-admin heal) or for "
		       "their owners to come back",
		       s->heal_chunks, human(s->heal_bytes, b1, sizeof(b1)));
	if (s->moved_chunks)
		printf(" (%" PRIu64 " chunks, %s copied since the nodes started)", s->moved_chunks,
		       human(s->moved_bytes, b1, sizeof(b1)));
	putchar('\n');

	if (s->scrub_running)
		printf("scrub:     running on %" PRIu64 " node(s): %" PRIu64 " of %" PRIu64
		       " chunks checked",
		       s->scrub_running, s->scrub_done, s->scrub_total);
	else
		printf("scrub:     idle");
	printf("; since the nodes started: %" PRIu64 " corrupt, %" PRIu64 " repaired, %" PRIu64
	       " unrepairable\n",
	       s->scrub_corrupt, s->scrub_repaired, s->scrub_unrepairable);
	if (s->scrub_unrepairable) {
		const char *sep = "";

		printf("  %" PRIu64
		       " corrupt chunk copies had no good copy to be repaired from, on "
		       "node ",
		       s->scrub_unrepairable);
		for (size_t i = 0; i < v->n_nodes; i++) {
			if (node_up(&v->nodes[i]) && v->nodes[i].work.scrub_unrepairable) {
				printf("%s%" PRIu32, sep, v->nodes[i].id);
				sep = ", ";
			}
		}
		printf(": files that use them fail with EIO; those nodes' logs name the chunks; "
		       "bring back any node that is down, or restore those files from a backup\n");
	}

	printf("health:    %s", health);
	if (strcmp(health, "ok") != 0) {
		const char *sep = ": ";

		if (s->up != v->n_nodes) {
			printf("%s%zu node(s) down", sep, v->n_nodes - s->up);
			sep = ", ";
		}
		if (s->degraded) {
			printf("%s%" PRIu64 " chunks short of copies", sep, s->degraded);
			sep = ", ";
		}
		if (s->scrub_unrepairable)
			printf("%s%" PRIu64 " chunk copies unrepairable", sep,
			       s->scrub_unrepairable);
	}
	putchar('\n');
}

static int cmd_status(struct admin *a)
{
	struct cluster_view v = {0};
	struct work_sums s;
	int rc;

	rc = fetch_cluster(a, &v);
	if (rc < 0) {
		free(v.nodes);
		return EXIT_FAIL;
	}
	/* The heartbeats' figures are a second old: a scrub that has just
	 * ended would still show as running. Ask the nodes that are up; one
	 * that does not answer keeps its heartbeat's figures. */
	if (probe_nodes(a, &v, true) < 0) {
		fprintf(stderr, PROG ": out of memory while asking the nodes\n");
		free(v.nodes);
		return EXIT_FAIL;
	}
	work_sum(&v, &s);
	if (a->json)
		status_json(a, &v, &s);
	else
		status_text(a, &v, &s);
	rc = strcmp(health_word(&v, &s), "ok") == 0 ? EXIT_OK : EXIT_DEGRADED;
	free(v.nodes);
	return rc;
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
	rc = probe_nodes(a, &v, false);
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
			printf("      node %" PRIu32 " keeps %" PRIu64 " corrupt chunk files in "
			       "quarantine (DATA/quarantine/); pifs-admin status says whether "
			       "any of them could not be repaired\n",
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
	rc = probe_nodes(a, &v, false);
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

/* ---- scrub and heal: start passes, and follow them ---- */

/* How often --wait asks the nodes how far they are. */
#define POLL_MS 500
/* Without a terminal, a progress line this often. */
#define LOG_EVERY_MS 5000

/* A node that scrub or heal works with. */
struct tracked {
	uint32_t id;
	bool started;	 /* WORK_START accepted, @start taken just before it */
	bool seen;	 /* up in the map at the last look */
	bool lost;	 /* went down, or restarted, after its pass was started */
	int rc;		 /* the last NODE_STAT or WORK_START: 0 or -errno */
	uint64_t target; /* the pass count that means a pass begun after the command ended */
	uint64_t rekick; /* heal: kick again once passes reach this (0: no) */
	struct pifs_work start, now;
};

struct follow {
	struct admin *a;
	uint32_t flags;	  /* PIFS_WORK_* */
	const char *what; /* "scrub" or "heal" */
	size_t n;
	struct tracked *t; /* owned; @n, grows as nodes come up */
	int64_t t0, last_log;
	uint64_t most_left; /* heal: the most bytes left seen, for the bar */
	uint32_t replicas;
	bool tty;
	bool drawn; /* a progress line is on the terminal */
};

static struct tracked *tracked_of(struct follow *f, uint32_t id)
{
	struct tracked *t;

	for (size_t i = 0; i < f->n; i++)
		if (f->t[i].id == id)
			return &f->t[i];
	t = realloc(f->t, (f->n + 1) * sizeof(*t));
	if (!t)
		return NULL;
	f->t = t;
	t = &f->t[f->n++];
	memset(t, 0, sizeof(*t));
	t->id = id;
	return t;
}

/* Send WORK_START @flags to node @n. Returns 0 or -errno. */
static int work_start(struct admin *a, const struct node_view *n, uint32_t flags)
{
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	char ep[300];
	int rc;

	rc = pifs_conf_endpoint(n->addr, ep, sizeof(ep));
	if (rc < 0)
		return rc;
	rc = pifs_rpc_new(a->zctx, ep, &r);
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

static uint64_t passes_of(const struct follow *f, const struct pifs_work *w)
{
	return f->flags == PIFS_WORK_HEAL ? w->heal_passes : w->scrub_passes;
}

/* Take node @n's figures as the starting point and start a pass on it.
 *
 * A pass that is under way when WORK_START arrives began before the command,
 * and the node starts another right after it. A scrub says whether one runs,
 * so its first complete pass from now on is the next one, or the one after.
 * Heal does not say: its target is two passes on, with a second kick once the
 * first ends, so that the second begins at once and surely after the command. */
static void start_on(struct follow *f, struct tracked *t, const struct node_view *n)
{
	t->start = n->work;
	t->now = n->work;
	t->rc = work_start(f->a, n, f->flags);
	if (t->rc < 0)
		return;
	t->started = true;
	if (f->flags == PIFS_WORK_HEAL) {
		t->target = t->start.heal_passes + 2;
		t->rekick = t->start.heal_passes + 1;
	} else {
		t->target = t->start.scrub_passes + (t->start.scrub_running ? 2 : 1);
	}
}

static bool pass_done(const struct follow *f, const struct tracked *t)
{
	return t->started && !t->lost && passes_of(f, &t->now) >= t->target;
}

static bool heal_clean(const struct tracked *t)
{
	return t->now.heal_chunks == 0 && t->now.degraded == 0;
}

/* Look at the cluster once: the map, then each node that is up. Starts
 * passes on nodes met for the first time (every up node for heal; for scrub
 * only at the first look, @first), kicks heal again where it is due, and
 * notes nodes that went down or restarted. Returns 0 or -errno (the metadata
 * service did not answer: fetch_cluster said why). */
static int follow_look(struct follow *f, bool first)
{
	struct cluster_view v = {0};
	int rc;

	rc = fetch_cluster(f->a, &v);
	if (rc < 0)
		goto out_free;
	f->replicas = v.replicas;
	rc = probe_nodes(f->a, &v, true);
	if (rc < 0) {
		fprintf(stderr, PROG ": out of memory while asking the nodes\n");
		goto out_free;
	}
	for (size_t i = 0; i < f->n; i++)
		f->t[i].seen = false;
	for (size_t i = 0; i < v.n_nodes; i++) {
		const struct node_view *n = &v.nodes[i];
		struct tracked *t;

		if (!node_up(n))
			continue;
		if (!first && f->flags != PIFS_WORK_HEAL) {
			bool known = false;

			for (size_t k = 0; k < f->n && !known; k++)
				known = f->t[k].id == n->id;
			if (!known)
				continue;
		}
		t = tracked_of(f, n->id);
		if (!t) {
			rc = -ENOMEM;
			fprintf(stderr, PROG ": out of memory while following the nodes\n");
			goto out_free;
		}
		t->seen = true;
		t->rc = n->stat_rc;
		if (n->stat_rc < 0)
			continue;
		/* Counters that went back: the daemon restarted and forgot its
		 * passes; the pass begun for this command is gone with them. */
		if (t->started && passes_of(f, &n->work) < passes_of(f, &t->now))
			t->lost = true;
		if (t->lost && f->flags == PIFS_WORK_HEAL)
			t->started = t->lost = false;
		if (!t->started && !t->lost) {
			start_on(f, t, n);
			continue;
		}
		t->now = n->work;
		if (f->flags != PIFS_WORK_HEAL || t->lost)
			continue;
		if (t->rekick && t->now.heal_passes >= t->rekick) {
			t->rekick = 0;
			t->rc = work_start(f->a, n, f->flags);
		} else if (pass_done(f, t) && !heal_clean(t)) {
			/* Work left after a pass: one more now rather than at
			 * heal_interval. */
			t->rc = work_start(f->a, n, f->flags);
			if (t->rc == 0)
				t->target = t->now.heal_passes + 1;
		}
	}
	/* A node followed for scrub that is no longer up never ends its pass. */
	for (size_t i = 0; i < f->n; i++)
		if (!f->t[i].seen && f->t[i].started && f->flags != PIFS_WORK_HEAL)
			f->t[i].lost = true;
	rc = 0;
out_free:
	free(v.nodes);
	return rc;
}

/* Heal is over when every node that is up has ended a pass begun after the
 * command, and none of them has anything left to copy or short of copies. */
static bool heal_over(const struct follow *f)
{
	size_t up = 0;

	for (size_t i = 0; i < f->n; i++) {
		const struct tracked *t = &f->t[i];

		if (!t->seen)
			continue;
		up++;
		if (!pass_done(f, t) || !heal_clean(t) || t->rc < 0)
			return false;
	}
	return up > 0;
}

/* Scrub is over when every node it started on has ended its pass, or is lost. */
static bool scrub_over(const struct follow *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->t[i].started && !f->t[i].lost && !pass_done(f, &f->t[i]))
			return false;
	return true;
}

/* How far node @t is in the scrub pass awaited: *@done of *@total chunks. */
static void scrub_progress(const struct follow *f, const struct tracked *t, uint64_t *done,
			   uint64_t *total)
{
	const struct pifs_work *w = &t->now;

	if (!t->started || t->lost) {
		*done = *total = 0;
	} else if (pass_done(f, t)) {
		*done = *total = w->scrub_done;
	} else if (w->scrub_running && w->scrub_passes + 1 == t->target) {
		*done = w->scrub_done;
		*total = w->scrub_total > w->scrub_done ? w->scrub_total : w->scrub_done;
	} else {
		*done = 0;
		*total = w->scrub_total ? w->scrub_total : t->start.scrub_total;
	}
}

/* "[#######-------------]": @num of @den, @width characters inside. */
static void bar(char *buf, size_t cap, uint64_t num, uint64_t den, int width)
{
	int full = den ? (int)((double)num / (double)den * width) : 0;

	if ((size_t)width + 3 > cap)
		width = (int)cap - 3;
	if (full > width)
		full = width;
	buf[0] = '[';
	for (int i = 0; i < width; i++)
		buf[1 + i] = i < full ? '#' : '-';
	buf[1 + width] = ']';
	buf[2 + width] = '\0';
}

/* The progress line on stderr: redrawn in place on a terminal, else one
 * line every LOG_EVERY_MS (and the last one, @final). */
static void show_progress(struct follow *f, bool final)
{
	char line[400], b[64], b1[32], b2[32], b3[32];
	int64_t now = pifs_now_ms();
	double secs = (double)(now - f->t0) / 1000.0;
	size_t ended = 0, nodes = 0;
	int len;

	if (!f->tty && !final && now - f->last_log < LOG_EVERY_MS)
		return;
	f->last_log = now;
	if (f->flags == PIFS_WORK_SCRUB) {
		uint64_t done = 0, total = 0, d, t, eta;
		double rate;

		for (size_t i = 0; i < f->n; i++) {
			if (!f->t[i].started)
				continue;
			nodes++;
			ended += pass_done(f, &f->t[i]);
			scrub_progress(f, &f->t[i], &d, &t);
			done += d;
			total += t;
		}
		rate = secs > 0 ? (double)done / secs : 0;
		bar(b, sizeof(b), done, total, 24);
		len =
		    snprintf(line, sizeof(line),
			     "scrub: %s %3.0f%%  %" PRIu64 "/%" PRIu64 " chunks  %.0f chunks/s", b,
			     total ? 100.0 * (double)done / (double)total : 0.0, done, total, rate);
		if (total > done && rate > 0) {
			eta = (uint64_t)((double)(total - done) / rate) + 1;
			len += snprintf(line + len, sizeof(line) - (size_t)len, "  ETA %s",
					human_secs(eta, b1, sizeof(b1)));
		}
		snprintf(line + len, sizeof(line) - (size_t)len, "  (%zu of %zu nodes done)", ended,
			 nodes);
	} else {
		uint64_t chunks = 0, bytes = 0, deg = 0, rate = 0, eta;

		for (size_t i = 0; i < f->n; i++) {
			const struct tracked *t = &f->t[i];

			if (!t->seen)
				continue;
			nodes++;
			ended += pass_done(f, t) && heal_clean(t);
			chunks += t->now.heal_chunks;
			bytes += t->now.heal_bytes;
			deg += t->now.degraded;
			rate += t->now.heal_rate;
		}
		if (bytes > f->most_left)
			f->most_left = bytes;
		if (f->most_left)
			bar(b, sizeof(b), f->most_left - bytes, f->most_left, 24);
		else
			bar(b, sizeof(b), ended, nodes, 24);
		len = snprintf(line, sizeof(line),
			       "heal: %s  %" PRIu64 " chunks (%s) left, %" PRIu64 " short of copies"
			       ", %s/s",
			       b, chunks, human(bytes, b1, sizeof(b1)), deg,
			       human(rate, b2, sizeof(b2)));
		if (bytes && eta_secs(bytes, rate, &eta))
			len += snprintf(line + len, sizeof(line) - (size_t)len, ", ETA %s",
					human_secs(eta, b3, sizeof(b3)));
		snprintf(line + len, sizeof(line) - (size_t)len, "  (%zu of %zu nodes done, %.0fs)",
			 ended, nodes, secs);
	}
	if (f->tty) {
		fprintf(stderr, "\r\033[K%s", line);
		f->drawn = true;
		if (final) {
			fputc('\n', stderr);
			f->drawn = false;
		}
	} else {
		fprintf(stderr, "%s\n", line);
	}
	fflush(stderr);
}

/* End the progress line before another message goes to the terminal. */
static void progress_break(struct follow *f)
{
	if (f->drawn) {
		fputc('\n', stderr);
		f->drawn = false;
	}
}

static void follow_init(struct follow *f, struct admin *a, uint32_t flags)
{
	memset(f, 0, sizeof(*f));
	f->a = a;
	f->flags = flags;
	f->what = flags == PIFS_WORK_HEAL ? "heal" : "scrub";
	f->t0 = pifs_now_ms();
	f->last_log = f->t0;
	f->tty = isatty(STDERR_FILENO);
}

/* The nodes whose WORK_START failed, for the operator. Returns how many. */
static size_t report_refusals(struct follow *f)
{
	char b[64];
	size_t bad = 0;

	for (size_t i = 0; i < f->n; i++) {
		struct tracked *t = &f->t[i];
		struct node_view nv = {.stat_rc = t->rc, .id = t->id};

		if (t->started || !t->seen)
			continue;
		bad++;
		progress_break(f);
		fprintf(stderr,
			PROG ": could not start a %s pass on node %" PRIu32 ": %s; see that node's "
			     "log, and pifs-admin nodes\n",
			f->what, t->id, stat_problem(&nv, b, sizeof(b)));
	}
	return bad;
}

/* Without --wait: the passes are started, and that is all. */
static int started_only(struct follow *f)
{
	size_t bad = report_refusals(f), ok = 0;

	for (size_t i = 0; i < f->n; i++)
		ok += f->t[i].started;
	if (f->a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_str(&j, "work", f->what);
		json_bool(&j, "wait", false);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < f->n; i++) {
			json_open(&j, NULL, '{');
			json_u64(&j, "id", f->t[i].id);
			json_bool(&j, "started", f->t[i].started);
			if (!f->t[i].started)
				json_str(&j, "error", strerror(-f->t[i].rc));
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		printf("%s: a pass is starting on %zu node(s):", f->what, ok);
		for (size_t i = 0; i < f->n; i++)
			if (f->t[i].started)
				printf(" %" PRIu32, f->t[i].id);
		printf("\nfollow it with 'pifs-admin status', or wait for it with 'pifs-admin %s "
		       "--wait'\n",
		       f->what);
	}
	if (ok == 0 && bad == 0)
		fprintf(stderr, PROG ": no node is up: nothing to %s; start the nodes first\n",
			f->what);
	return bad || ok == 0 ? EXIT_FAIL : EXIT_OK;
}

static uint64_t delta(uint64_t now, uint64_t start)
{
	return now >= start ? now - start : now;
}

static int scrub_report(struct follow *f)
{
	uint64_t checked = 0, corrupt = 0, repaired = 0, unrep = 0, unrep_total = 0;
	size_t lost = 0, nodes = 0;
	int64_t ms = pifs_now_ms() - f->t0;

	for (size_t i = 0; i < f->n; i++) {
		const struct tracked *t = &f->t[i];

		if (!t->started)
			continue;
		nodes++;
		if (t->lost) {
			lost++;
			continue;
		}
		checked += t->now.scrub_done;
		corrupt += delta(t->now.scrub_corrupt, t->start.scrub_corrupt);
		repaired += delta(t->now.scrub_repaired, t->start.scrub_repaired);
		unrep += delta(t->now.scrub_unrepairable, t->start.scrub_unrepairable);
		unrep_total += t->now.scrub_unrepairable;
	}
	if (f->a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_str(&j, "work", "scrub");
		json_bool(&j, "wait", true);
		json_bool(&j, "complete", lost == 0 && nodes > 0);
		json_i64(&j, "elapsed_ms", ms);
		json_u64(&j, "checked", checked);
		json_u64(&j, "corrupt", corrupt);
		json_u64(&j, "repaired", repaired);
		json_u64(&j, "unrepairable", unrep);
		json_u64(&j, "unrepairable_since_start", unrep_total);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < f->n; i++) {
			const struct tracked *t = &f->t[i];

			json_open(&j, NULL, '{');
			json_u64(&j, "id", t->id);
			json_bool(&j, "scrubbed", t->started && !t->lost);
			if (t->started && !t->lost) {
				json_u64(&j, "checked", t->now.scrub_done);
				json_u64(&j, "corrupt",
					 delta(t->now.scrub_corrupt, t->start.scrub_corrupt));
				json_u64(&j, "repaired",
					 delta(t->now.scrub_repaired, t->start.scrub_repaired));
				json_u64(
				    &j, "unrepairable",
				    delta(t->now.scrub_unrepairable, t->start.scrub_unrepairable));
				json_u64(&j, "unrepairable_since_start", t->now.scrub_unrepairable);
			} else {
				json_str(&j, "error",
					 t->started ? "went down or restarted "
						      "during the scrub"
						    : strerror(-t->rc));
			}
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		printf("scrub: %zu node(s) checked %" PRIu64 " chunks in %.1fs: %" PRIu64
		       " corrupt, %" PRIu64 " repaired, %" PRIu64 " unrepairable\n",
		       nodes - lost, checked, (double)ms / 1000.0, corrupt, repaired, unrep);
		printf("%-5s %10s %10s %10s %13s\n", "NODE", "CHECKED", "CORRUPT", "REPAIRED",
		       "UNREPAIRABLE");
		for (size_t i = 0; i < f->n; i++) {
			const struct tracked *t = &f->t[i];

			if (!t->started || t->lost) {
				printf("%-5" PRIu32 " %s\n", t->id,
				       t->started ? "went down or restarted during the scrub"
						  : "not scrubbed: it did not accept WORK_START");
				continue;
			}
			printf("%-5" PRIu32 " %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %13" PRIu64
			       "\n",
			       t->id, t->now.scrub_done,
			       delta(t->now.scrub_corrupt, t->start.scrub_corrupt),
			       delta(t->now.scrub_repaired, t->start.scrub_repaired),
			       delta(t->now.scrub_unrepairable, t->start.scrub_unrepairable));
		}
	}
	/* The figures first, then what is wrong with them, also when both go
	 * to one file. */
	fflush(stdout);
	if (lost)
		fprintf(stderr,
			PROG ": %zu node(s) went down or restarted before their scrub pass ended: "
			     "run pifs-admin scrub --wait again once they are up\n",
			lost);
	if (unrep_total)
		fprintf(stderr,
			PROG ": %" PRIu64 " chunk copies could not be repaired since the nodes "
			     "started (%" PRIu64 " in this scrub): no good copy was found; files "
			     "that use them fail with EIO; the nodes' logs name the chunks; bring "
			     "back any node that is down, or restore those files from a backup\n",
			unrep_total, unrep);
	return lost || unrep_total || nodes == 0 ? EXIT_FAIL : EXIT_OK;
}

static int heal_report(struct follow *f, bool over)
{
	uint64_t chunks = 0, bytes = 0, deg = 0, moved = 0, moved_bytes = 0;
	int64_t ms = pifs_now_ms() - f->t0;
	char b1[32], b2[32];
	size_t nodes = 0;

	for (size_t i = 0; i < f->n; i++) {
		const struct tracked *t = &f->t[i];

		if (!t->seen)
			continue;
		nodes++;
		chunks += t->now.heal_chunks;
		bytes += t->now.heal_bytes;
		deg += t->now.degraded;
		moved += delta(t->now.moved_chunks, t->start.moved_chunks);
		moved_bytes += delta(t->now.moved_bytes, t->start.moved_bytes);
	}
	if (f->a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_str(&j, "work", "heal");
		json_bool(&j, "wait", true);
		json_bool(&j, "complete", over);
		json_i64(&j, "elapsed_ms", ms);
		json_u64(&j, "heal_chunks", chunks);
		json_u64(&j, "heal_bytes", bytes);
		json_u64(&j, "degraded", deg);
		json_u64(&j, "moved_chunks", moved);
		json_u64(&j, "moved_bytes", moved_bytes);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < f->n; i++) {
			const struct tracked *t = &f->t[i];

			json_open(&j, NULL, '{');
			json_u64(&j, "id", t->id);
			json_bool(&j, "up", t->seen);
			json_bool(&j, "pass_done", pass_done(f, t));
			json_u64(&j, "heal_chunks", t->now.heal_chunks);
			json_u64(&j, "heal_bytes", t->now.heal_bytes);
			json_u64(&j, "degraded", t->now.degraded);
			if (t->rc < 0)
				json_str(&j, "error", strerror(-t->rc));
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	}
	fflush(stdout);
	if (over) {
		if (!f->a->json)
			printf("heal: done in %.1fs: every chunk has %" PRIu32 " copies on its "
			       "owners, as %zu node(s) up found (%" PRIu64 " chunks, %s copied "
			       "meanwhile)\n",
			       (double)ms / 1000.0, f->replicas, nodes, moved,
			       human(moved_bytes, b1, sizeof(b1)));
		return EXIT_OK;
	}
	fprintf(stderr,
		PROG ": heal did not finish within %s: %" PRIu64 " chunks (%s) left to copy or "
		     "move, %" PRIu64 " with fewer than %" PRIu32 " copies\n",
		human_secs((uint64_t)f->a->wait_ms / 1000, b2, sizeof(b2)), chunks,
		human(bytes, b1, sizeof(b1)), deg, f->replicas);
	for (size_t i = 0; i < f->n; i++) {
		const struct tracked *t = &f->t[i];
		char b[64];
		struct node_view nv = {.stat_rc = t->rc, .id = t->id};

		if (!t->seen)
			continue;
		if (t->rc < 0)
			fprintf(stderr, "  node %" PRIu32 ": %s\n", t->id,
				stat_problem(&nv, b, sizeof(b)));
		else if (!pass_done(f, t))
			fprintf(stderr, "  node %" PRIu32 ": its heal pass has not ended yet\n",
				t->id);
		else if (!heal_clean(t))
			fprintf(stderr,
				"  node %" PRIu32 ": %" PRIu64 " chunks (%s) left, %" PRIu64
				" short of copies\n",
				t->id, t->now.heal_chunks, human(t->now.heal_bytes, b1, sizeof(b1)),
				t->now.degraded);
	}
	fprintf(stderr, "see pifs-admin status (a node down but still in keeps its chunks "
			"short of copies until it is back or out) and the nodes' logs\n");
	return EXIT_FAIL;
}

/* scrub and heal: start a pass on the nodes that are up and, with --wait,
 * follow the passes until they end (and, for heal, nothing is left). */
static int run_work(struct admin *a, uint32_t flags)
{
	struct follow f;
	bool over = false;
	int rc;

	follow_init(&f, a, flags);
	rc = follow_look(&f, true);
	if (rc < 0)
		goto out_free;
	if (!a->wait) {
		rc = started_only(&f);
		goto out_free;
	}
	if (report_refusals(&f) && flags == PIFS_WORK_SCRUB) {
		rc = EXIT_FAIL;
		goto out_free;
	}
	for (;;) {
		over = flags == PIFS_WORK_HEAL ? heal_over(&f) : scrub_over(&f);
		if (over)
			break;
		if (a->wait_ms && pifs_now_ms() - f.t0 >= a->wait_ms)
			break;
		show_progress(&f, false);
		nanosleep(&(struct timespec){.tv_nsec = POLL_MS * 1000000L}, NULL);
		rc = follow_look(&f, false);
		if (rc < 0) {
			progress_break(&f);
			goto out_free;
		}
	}
	show_progress(&f, true);
	rc = flags == PIFS_WORK_HEAL ? heal_report(&f, over) : scrub_report(&f);
	free(f.t);
	return rc;
out_free:
	free(f.t);
	return rc < 0 ? EXIT_FAIL : rc;
}

static int cmd_scrub(struct admin *a)
{
	return run_work(a, PIFS_WORK_SCRUB);
}

static int cmd_heal(struct admin *a)
{
	return run_work(a, PIFS_WORK_HEAL);
}

/* ---- help ---- */

static const char global_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] COMMAND [OPTIONS]\n"
    "       " PROG " COMMAND --help\n"
    "\n"
    "Show the state of a pifs cluster, and start its background work. " PROG " reads the\n"
    "cluster's configuration file, asks the metadata service (the first node with\n"
    "\"meta = yes\") for the cluster map and its figures, and asks each storage node for\n"
    "its own. status, nodes and df change nothing; scrub and heal start a pass now.\n"
    "\n"
    "Commands:\n"
    "  status   the cluster in a few lines: map epoch, replicas, chunk size, each node's\n"
    "           state, chunks short of copies, heal progress, scrub figures, health\n"
    "  nodes    one line per node: address, up/down, in/out, metadata voter, weight,\n"
    "           used/capacity, chunks, when the metadata service last heard from it\n"
    "  df       space: logical bytes, data, compression, dedup saving, stored bytes,\n"
    "           replication, and use and free space per node\n"
    "  scrub    re-read and verify every chunk on every node now, repairing bad copies\n"
    "           (--wait: follow it and print what it found)\n"
    "  heal     make every chunk's owners hold it now (--wait: until every chunk has\n"
    "           its copies where they belong)\n"
    "\n"
    "Options (before or after the command):\n"
    "  -c, --config FILE   the cluster's configuration file (default: $PIFS_CONF, else\n"
    "                      " DEFAULT_CONF ")\n"
    "  -j, --json          print one JSON object with every figure: sizes as integers in\n"
    "                      bytes, times in nanoseconds since the epoch, stable key names\n"
    "  -t, --timeout DUR   how long to wait for each node, as 500ms, 2s, 1m (default: the\n"
    "                      [client] timeout of the configuration file); after heal, how\n"
    "                      long --wait waits in all (see heal --help)\n"
    "  -h, --help          show this help; after a command, that command's help\n"
    "\n"
    "Exit status:\n"
    "  0  success; for status, every node is up and every chunk has its copies\n"
    "  1  the metadata service could not be reached, or answered with an error; for\n"
    "     scrub and heal, see their help\n"
    "  2  bad command line, or a configuration file that cannot be read\n"
    "  3  status only: the cluster answered, but a node is down or has never registered,\n"
    "     chunks are short of copies, or some could not be repaired\n"
    "\n"
    "Environment:\n"
    "  PIFS_CONF  the configuration file when -c is not given\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " -c ~/cluster/pifs.conf nodes\n"
    "  " PROG " df --json | jq .stored\n"
    "  " PROG " --timeout 2s status --json\n"
    "  " PROG " scrub --wait\n"
    "  " PROG " heal --wait --timeout 10m\n";

static const char status_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] status\n"
    "\n"
    "Show the cluster in a few lines, from the metadata service and from each node that\n"
    "is up (one that does not answer within --timeout is shown with the figures of its\n"
    "last heartbeat):\n"
    "  cluster    the map epoch (it grows with every change of the cluster map), the\n"
    "             number of copies of each chunk (replicas) and the chunk size\n"
    "  metadata   the metadata voter asked, its last applied log index, the inode count\n"
    "  nodes      how many nodes are up, then one line per node: up or down (heartbeats),\n"
    "             in, out or drain (placement), full (less room than the reserve and one\n"
    "             chunk: it refuses new chunks), and for a node that is down when it was\n"
    "             last heard from and when it goes out (out_after); a node named in the\n"
    "             configuration file that never started shows as never registered\n"
    "  copies     how many chunks have fewer copies than replicas on live nodes, as the\n"
    "             last heal passes of the nodes that are up counted them\n"
    "  heal       chunks and bytes left to copy or move to their owners, the copy rate\n"
    "             and the time left (ETA), and what heal copied since the nodes started\n"
    "  scrub      whether a scrub runs (chunks checked of the total), and the corrupt\n"
    "             copies found (by scrub or by reads), repaired and unrepairable since\n"
    "             the nodes started\n"
    "  health     ok; degraded (a node down, or chunks short of copies); or damaged\n"
    "             (chunk copies that no good copy could repair: files fail with EIO)\n"
    "Heal and scrub figures are summed over the nodes that are up.\n"
    "\n"
    "JSON keys: epoch, replicas, chunk_size, log_index, meta_node, meta_address, inodes,\n"
    "nodes_up, nodes_total, healthy (every node up), health (ok, degraded, damaged),\n"
    "degraded, heal_chunks, heal_bytes, heal_rate (bytes/s), heal_eta_s (null: no copy\n"
    "under way), moved_chunks, moved_bytes, scrub_running (nodes), scrub_done,\n"
    "scrub_total, scrub_corrupt, scrub_repaired, scrub_unrepairable, and nodes: [{id,\n"
    "address, state (up, down, unregistered), up, in, meta, drain, registered, full,\n"
    "free, last_seen_ns (0: never), work: {heal_passes, heal_chunks, heal_bytes, degraded,\n"
    "heal_rate, moved_chunks, moved_bytes, scrub_passes, scrub_running, scrub_done,\n"
    "scrub_total, scrub_corrupt, scrub_repaired, scrub_unrepairable}}].\n"
    "\n"
    "Exit status: 0 health ok; 3 degraded or damaged; 1 the metadata service could not\n"
    "be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " status --json | jq '.nodes[] | select(.up | not) | .id'\n"
    "  " PROG " status --json | jq '{degraded, heal_bytes, heal_eta_s}'\n"
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

static const char scrub_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] scrub [--wait]\n"
    "\n"
    "Ask every node that is up to start a scrub pass now: it re-reads every chunk it\n"
    "holds from the disk (past the page cache), verifies its checksum, moves a corrupt\n"
    "copy to quarantine and repairs it from a good copy on another node. Nodes also\n"
    "scrub by themselves every scrub_interval, at scrub_rate bytes/s; a pass started\n"
    "here is paced the same way. A node that is scrubbing already starts a new pass\n"
    "right after the current one.\n"
    "\n"
    "  -w, --wait   follow the passes: a progress bar on stderr (chunks checked of the\n"
    "               total, chunks/s, time left), redrawn on a terminal and one line\n"
    "               every 5 seconds otherwise, until every node has ended a pass begun\n"
    "               after this command; then, per node and in all, the chunks checked\n"
    "               and the copies found corrupt, repaired and unrepairable meanwhile\n"
    "               (a read that met a corrupt copy counts too)\n"
    "\n"
    "JSON (with --wait): work, wait, complete, elapsed_ms, checked, corrupt, repaired,\n"
    "unrepairable, unrepairable_since_start, and nodes: [{id, scrubbed, checked,\n"
    "corrupt, repaired, unrepairable, unrepairable_since_start, error}]. Without\n"
    "--wait: work, wait, and nodes: [{id, started, error}].\n"
    "\n"
    "Exit status: 0 the passes were started (and, with --wait, ended with every copy\n"
    "good or repaired); 1 a node could not start or end its pass (it is down, or went\n"
    "down), the metadata service could not be reached, or, with --wait, a chunk copy\n"
    "is unrepairable: found corrupt since the nodes started with no good copy anywhere\n"
    "(files that use it fail with EIO); 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " scrub\n"
    "  " PROG " scrub --wait\n"
    "  " PROG " scrub --wait --json 2>/dev/null | jq '{corrupt, repaired, unrepairable}'\n";

static const char heal_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] heal [--wait] [--timeout DUR]\n"
    "\n"
    "Ask every node that is up to start a heal pass now. Heal (the convergence loop)\n"
    "walks the chunks a node holds and makes each chunk's owners (the first R nodes in\n"
    "placement order among the nodes that are in) hold a copy: it copies chunks to\n"
    "owners that lack them, at heal_rate bytes/s, and deletes a stand-in copy once\n"
    "every owner has its own. Nodes also start a pass every heal_interval, and when\n"
    "the cluster map changes. A node that is down but still in keeps its place as an\n"
    "owner: its chunks stay short of a copy until it comes back or goes out\n"
    "(out_after).\n"
    "\n"
    "  -w, --wait          wait until every node that is up has ended a heal pass begun\n"
    "                      after this command and none has anything left to copy or\n"
    "                      short of copies, starting more passes as needed; progress on\n"
    "                      stderr (chunks and bytes left, copies short, rate, time left)\n"
    "  -t, --timeout DUR   after the command: with --wait, give up after DUR (500ms,\n"
    "                      30s, 10m; default: wait as long as it takes) and print what is\n"
    "                      left; before the command it is, as for every command, how\n"
    "                      long each node may take to answer\n"
    "\n"
    "JSON (with --wait): work, wait, complete, elapsed_ms, heal_chunks, heal_bytes,\n"
    "degraded, moved_chunks, moved_bytes (during the wait), and nodes: [{id, up,\n"
    "pass_done, heal_chunks, heal_bytes, degraded, error}]. Without --wait: work, wait,\n"
    "and nodes: [{id, started, error}].\n"
    "\n"
    "Exit status: 0 the passes were started (with --wait: every chunk has its copies on\n"
    "its owners); 1 no node could start a pass, the metadata service could not be\n"
    "reached, or --wait timed out (what is left is printed); 2 bad command line or\n"
    "configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " heal\n"
    "  " PROG " heal --wait --timeout 10m\n"
    "  " PROG " --timeout 2s heal --wait --timeout 1m --json 2>/dev/null | jq .complete\n";

static const struct command commands[] = {
    {"status", status_help, cmd_status, ""},
    {"nodes", nodes_help, cmd_nodes, ""},
    {"df", df_help, cmd_df, ""},
    {"scrub", scrub_help, cmd_scrub, "w"},
    {"heal", heal_help, cmd_heal, "wT"},
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

/* Parse the options of argv[0..argc) with getopt_long from its current
 * optind. Before the command (@cmd NULL) it stops at the first word that is
 * not an option; after it, @cmd's own options count too, and --timeout is
 * the wait's when @cmd says so. Returns -1 to go on, or an exit code. */
static int parse_opts(int argc, char **argv, const struct command *cmd, struct admin *a,
		      bool *help /* OUT */)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"wait", no_argument, NULL, 'w'},	       {NULL, 0, NULL, 0},
	};
	bool own_wait = cmd && strchr(cmd->opts, 'w');
	bool own_timeout = cmd && strchr(cmd->opts, 'T');
	uint64_t ms;
	int c;

	while ((c = getopt_long(argc, argv, cmd ? ":c:jt:hw" : "+:c:jt:hw", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->conf_path = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 't':
			if (own_timeout) {
				if (pifs_conf_parse_duration(optarg, &ms) < 0 ||
				    ms > (uint64_t)INT64_MAX) {
					fprintf(stderr,
						PROG ": %s --timeout '%s' is not a duration: write "
						     "it as 30s, 10m or 1h (0: no limit)\n",
						cmd->name, optarg);
					usage_hint();
					return EXIT_USAGE;
				}
				a->wait_ms = (int64_t)ms;
				break;
			}
			if (pifs_conf_parse_duration(optarg, &ms) < 0 || ms == 0 || ms > INT_MAX) {
				fprintf(stderr,
					PROG ": --timeout '%s' is not a duration: write it as "
					     "500ms, 2s or 1m\n",
					optarg);
				usage_hint();
				return EXIT_USAGE;
			}
			a->timeout_ms = (int)ms;
			break;
		case 'h':
			*help = true;
			break;
		case 'w':
			if (!own_wait) {
				fprintf(stderr, PROG ": --wait belongs to scrub and heal%s%s\n",
					cmd ? ", not to " : "", cmd ? cmd->name : "");
				usage_hint();
				return EXIT_USAGE;
			}
			a->wait = true;
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
	return -1;
}

int main(int argc, char **argv)
{
	struct admin a = {.conf_path = getenv("PIFS_CONF")};
	const struct command *cmd;
	bool help = false;
	int rc, first;

	if (!a.conf_path || !*a.conf_path)
		a.conf_path = DEFAULT_CONF;
	/* Our own messages: getopt's would name the program by its path. */
	opterr = 0;
	rc = parse_opts(argc, argv, NULL, &a, &help);
	if (rc >= 0)
		return rc;
	if (optind == argc) {
		if (help) {
			fputs(global_help, stdout);
			return EXIT_OK;
		}
		fprintf(stderr, PROG ": no command given: say status, nodes, df, scrub or heal\n");
		usage_hint();
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr,
			PROG ": unknown command '%s': the commands are status, nodes, df, scrub "
			     "and heal\n",
			argv[optind]);
		usage_hint();
		return EXIT_USAGE;
	}
	/* The words after the command, the command standing in for argv[0]:
	 * optind 0 makes getopt start afresh on them. */
	first = optind;
	optind = 0;
	rc = parse_opts(argc - first, argv + first, cmd, &a, &help);
	if (rc >= 0)
		return rc;
	if (help) {
		fputs(cmd->help, stdout);
		return EXIT_OK;
	}
	if (optind < argc - first) {
		fprintf(stderr, PROG ": %s takes no argument, but got '%s'\n", cmd->name,
			argv[first + optind]);
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
