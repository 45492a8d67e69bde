/* admin_work.c - pifs-admin status, scrub and heal: the background work of the
 * nodes, started with WORK_START and followed with NODE_STAT. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin_i.h"
#include "rpc.h"

void work_sum(const struct cluster_view *v, struct work_sums *s /* OUT */)
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

/* The metadata voters as the map flags them (PIFS_NODE_META), how many are
 * up, and the view of the node that answered CLUSTER_STAT (its term). */
struct meta_sums {
	size_t voters, up;
	struct voter_view lead; /* lead.rc 0: it answered META_STAT */
};

static void meta_sum(struct admin *a, const struct cluster_view *v, struct meta_sums *m)
{
	memset(m, 0, sizeof(*m));
	for (size_t i = 0; i < v->n_nodes; i++) {
		if (!(v->nodes[i].flags & PIFS_NODE_META))
			continue;
		m->voters++;
		m->up += node_up(&v->nodes[i]);
	}
	/* Its term and role; daemons of before replicated metadata refuse the
	 * question, and the line then goes without them. */
	m->lead.id = meta_leader_id(a);
	snprintf(m->lead.addr, sizeof(m->lead.addr), "%s", meta_leader_addr(a));
	if (meta_stat(a, &m->lead) == 0 && m->lead.role != PIFS_RAFT_LEADER)
		m->lead.rc = -EAGAIN;
}

/* ok, degraded (a node or a metadata voter down, or chunks short of copies)
 * or damaged (chunks that no good copy could repair). */
static const char *health_word(const struct cluster_view *v, const struct work_sums *s,
			       const struct meta_sums *m)
{
	if (s->scrub_unrepairable)
		return "damaged";
	if (s->up != v->n_nodes || s->degraded || m->up != m->voters)
		return "degraded";
	return "ok";
}

/* What the nodes that answered say of the keys: the newest allow-list, the
 * nodes behind it, and the refusals summed. */
struct key_sums {
	uint64_t newest, refused;
	size_t answered, behind;
};

static void key_sum(const struct cluster_view *v, struct key_sums *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		if (n->stat_rc != 0 || !node_up(n))
			continue;
		k->answered++;
		k->refused += n->refused;
		if (n->keys_gen > k->newest)
			k->newest = n->keys_gen;
	}
	for (size_t i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].stat_rc == 0 && node_up(&v->nodes[i]) &&
		    v->nodes[i].keys_gen < k->newest)
			k->behind++;
}

static void security_json(struct json *j, const struct admin *a, const struct cluster_view *v)
{
	struct key_sums k;

	key_sum(v, &k);
	json_open(j, "security", '{');
	json_str(j, "mode", pifs_auth_insecure(a->auth) ? "none" : "curve");
	json_u64(j, "allowlist_generation", k.newest);
	json_u64(j, "refused", k.refused);
	json_open(j, "nodes_behind", '[');
	for (size_t i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].stat_rc == 0 && node_up(&v->nodes[i]) &&
		    v->nodes[i].keys_gen < k.newest)
			json_u64(j, NULL, v->nodes[i].id);
	json_close(j, ']');
	json_close(j, '}');
}

static void security_text(const struct admin *a, const struct cluster_view *v)
{
	const char *sep = "";
	struct key_sums k;

	if (pifs_auth_insecure(a->auth)) {
		printf("security:  NONE ('security = none' in %s): no keys and no encryption; "
		       "anyone on the network can read, change and destroy every file\n",
		       a->conf_path);
		return;
	}
	key_sum(v, &k);
	printf("security:  CURVE, allow-list generation %" PRIu64, k.newest);
	if (k.behind) {
		printf(" (behind it:");
		for (size_t i = 0; i < v->n_nodes; i++) {
			const struct node_view *n = &v->nodes[i];

			if (n->stat_rc == 0 && node_up(n) && n->keys_gen < k.newest) {
				printf("%s node %" PRIu32 " at %" PRIu64, sep, n->id, n->keys_gen);
				sep = ",";
			}
		}
		printf(": pifs-admin keys push)");
	}
	if (k.refused)
		printf("; %" PRIu64 " requests or connections refused for their key since the "
		       "nodes started (their logs name the peers)",
		       k.refused);
	putchar('\n');
}

static void status_json(const struct admin *a, const struct cluster_view *v,
			const struct work_sums *s, const struct meta_sums *m)
{
	struct json j = {.f = stdout};
	uint64_t eta;

	json_open(&j, NULL, '{');
	json_cluster_head(&j, a, v);
	json_u64(&j, "inodes", v->inodes);
	json_u64(&j, "nodes_up", s->up);
	json_u64(&j, "nodes_total", v->n_nodes);
	json_bool(&j, "healthy", s->up == v->n_nodes);
	json_str(&j, "health", health_word(v, s, m));
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
	security_json(&j, a, v);
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
		json_bool(&j, "new", n->flags & PIFS_NODE_NEW);
		json_bool(&j, "registered", n->in_map);
		json_bool(&j, "full", node_up(n) && node_full(a, n, v->chunk_size));
		json_u64(&j, "free", n->free_bytes);
		json_i64(&j, "last_seen_ns", n->last_seen);
		json_work(&j, &n->work);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	/* Last, and voters keyed "node" rather than "id": scripts take the
	 * first figure of a key, and a node's object by its "id". */
	json_open(&j, "meta", '{');
	if (m->lead.rc == 0) {
		json_u64(&j, "leader", m->lead.id);
		json_str(&j, "leader_address", m->lead.addr);
		json_u64(&j, "term", m->lead.term);
	} else {
		json_null(&j, "leader");
		json_null(&j, "leader_address");
		json_null(&j, "term");
	}
	json_u64(&j, "voters_total", m->voters);
	json_u64(&j, "voters_up", m->up);
	json_u64(&j, "majority", meta_majority(m->voters));
	json_open(&j, "voters", '[');
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		if (!(n->flags & PIFS_NODE_META))
			continue;
		json_open(&j, NULL, '{');
		json_u64(&j, "node", n->id);
		json_bool(&j, "up", node_up(n));
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_close(&j, '}');
	json_close(&j, '}');
	fputc('\n', stdout);
}

/* "1 2 3 (all up)", "1 2 3 (node 3 down: losing one more stops metadata)". */
static void voters_text(const struct cluster_view *v, const struct meta_sums *m)
{
	size_t maj = meta_majority(m->voters);
	const char *sep = "";

	for (size_t i = 0; i < v->n_nodes; i++)
		if (v->nodes[i].flags & PIFS_NODE_META)
			printf(" %" PRIu32, v->nodes[i].id);
	if (m->up == m->voters) {
		printf(" (all up)");
		return;
	}
	printf(" (%s", m->voters - m->up > 1 ? "nodes " : "node ");
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		if ((n->flags & PIFS_NODE_META) && !node_up(n)) {
			printf("%s%" PRIu32, sep, n->id);
			sep = " ";
		}
	}
	if (m->up < maj)
		printf(" down: no majority; see " PROG " meta status)");
	else if (m->up == maj)
		printf(" down: losing one more voter stops metadata)");
	else
		printf(" down: metadata survives the loss of %zu more)", m->up - maj);
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
	printf("  node %" PRIu32 " at %s is down (%s%s, last seen %s): ", n->id, n->addr,
	       node_placement(n), (n->flags & PIFS_NODE_META) ? ", metadata voter" : "",
	       ago(n->last_seen, b1, sizeof(b1)));
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
			const struct work_sums *s, const struct meta_sums *m)
{
	char b1[32], b2[32], b3[32];
	uint64_t eta;
	const char *health = health_word(v, s, m);

	printf("cluster:   map epoch %" PRIu64 ", %" PRIu32 " replicas, chunk size %s\n", v->epoch,
	       v->replicas, human(v->chunk_size, b1, sizeof(b1)));
	if (m->lead.rc == 0)
		printf("metadata:  leader node %" PRIu32 " at %s, term %" PRIu64 ", log index %" PRIu64
		       ", voters",
		       m->lead.id, m->lead.addr, m->lead.term, v->log_index);
	else
		printf("metadata:  node %" PRIu32 " at %s, log index %" PRIu64 ", voters",
		       meta_leader_id(a), meta_leader_addr(a), v->log_index);
	voters_text(v, m);
	printf(", %" PRIu64 " inodes\n", v->inodes);
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

	security_text(a, v);
	printf("health:    %s", health);
	if (strcmp(health, "ok") != 0) {
		const char *sep = ": ";

		if (s->up != v->n_nodes) {
			printf("%s%zu node(s) down", sep, v->n_nodes - s->up);
			sep = ", ";
		}
		if (m->up != m->voters) {
			printf("%s%zu of %zu metadata voters down", sep, m->voters - m->up,
			       m->voters);
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

int cmd_status(struct admin *a)
{
	struct cluster_view v = {0};
	struct work_sums s;
	struct meta_sums m;
	int rc;

	/* The heartbeats' figures are a second old: a scrub that has just
	 * ended would still show as running. Ask the nodes that are up; one
	 * that does not answer keeps its heartbeat's figures. */
	if (view_cluster(a, &v, true) < 0)
		return EXIT_FAIL;
	work_sum(&v, &s);
	meta_sum(a, &v, &m);
	if (a->json)
		status_json(a, &v, &s, &m);
	else
		status_text(a, &v, &s, &m);
	rc = strcmp(health_word(&v, &s, &m), "ok") == 0 ? EXIT_OK : EXIT_DEGRADED;
	free(v.nodes);
	return rc;
}

/* ---- scrub and heal: start passes, and follow them ---- */

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
	/* rebalance --limit: a node that restarted has forgotten it. */
	if (f->limit) {
		int rc = work_set(f->a, n, f->limit);

		if (rc < 0) {
			progress_break(f);
			fprintf(stderr,
				PROG ": node %" PRIu32
				     " at %s did not take --limit: %s; it copies at "
				     "its own heal_rate\n",
				n->id, n->addr, strerror(-rc));
		}
	}
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

bool pass_done(const struct follow *f, const struct tracked *t)
{
	return t->started && !t->lost && passes_of(f, &t->now) >= t->target;
}

bool heal_clean(const struct tracked *t)
{
	return t->now.heal_chunks == 0 && t->now.degraded == 0;
}

/* Did a counter of @now go back from @before: the daemon restarted? */
static bool restarted(const struct pifs_work *before, const struct pifs_work *now)
{
	return now->heal_passes < before->heal_passes || now->scrub_passes < before->scrub_passes ||
	       now->gc_passes < before->gc_passes || now->moved_chunks < before->moved_chunks ||
	       now->scrub_corrupt < before->scrub_corrupt ||
	       now->gc_deleted_chunks < before->gc_deleted_chunks;
}

/* Look at the cluster once: the map, then each node that is up. Starts
 * passes on nodes met for the first time (every up node for heal; for scrub
 * only at the first look, @first), kicks heal again where it is due, and
 * notes nodes that went down or restarted. Returns 0 or -errno (the metadata
 * service did not answer: fetch_cluster said why). */
int follow_look(struct follow *f, bool first)
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
		/* A heal node that did not answer may be restarting: its pass
		 * for this command is started again once it answers. */
		if (n->stat_rc < 0) {
			if (t->started && f->flags == PIFS_WORK_HEAL)
				t->lost = true;
			continue;
		}
		/* Counters that went back: the daemon restarted and forgot its
		 * passes; the pass begun for this command is gone with them. A
		 * restart can bring the pass count back to where it was, so
		 * every counter is compared. */
		if (t->started && restarted(&t->now, &n->work))
			t->lost = true;
		if (t->lost && f->flags == PIFS_WORK_HEAL) {
			t->carried_chunks += delta(t->now.moved_chunks, t->start.moved_chunks);
			t->carried_bytes += delta(t->now.moved_bytes, t->start.moved_bytes);
			t->started = t->lost = false;
		}
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
bool heal_over(const struct follow *f)
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

/* The progress line on stderr: redrawn in place on a terminal, else one
 * line every LOG_EVERY_MS (and the last one, @final). */
void follow_moved(const struct follow *f, uint64_t *chunks, uint64_t *bytes, uint64_t *rate)
{
	*chunks = *bytes = *rate = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct tracked *t = &f->t[i];

		*chunks += t->carried_chunks;
		*bytes += t->carried_bytes;
		if (!t->started)
			continue;
		*chunks += delta(t->now.moved_chunks, t->start.moved_chunks);
		*bytes += delta(t->now.moved_bytes, t->start.moved_bytes);
		if (t->seen)
			*rate += t->now.heal_rate;
	}
}

/* The rebalance line: bytes moved of the plan taken at the start. */
static void rebalance_line(struct follow *f, char *line, size_t cap)
{
	char b[64], b1[32], b2[32], b3[32], b4[32];
	uint64_t chunks, bytes, rate, left = 0, eta, total = f->plan_bytes;
	size_t ended = 0, nodes = 0;
	int len;

	follow_moved(f, &chunks, &bytes, &rate);
	for (size_t i = 0; i < f->n; i++) {
		if (!f->t[i].seen)
			continue;
		nodes++;
		ended += pass_done(f, &f->t[i]) && heal_clean(&f->t[i]);
		left += f->t[i].now.heal_bytes;
	}
	/* Moves beyond the plan (a write, a node that went down meanwhile) grow
	 * the total rather than push the bar past its end. */
	if (bytes + left > total)
		total = bytes + left;
	bar(b, sizeof(b), bytes, total, 24);
	len = snprintf(
	    line, cap, "rebalance: %s %3.0f%%  %s of %s moved (%" PRIu64 " chunks), %s/s", b,
	    total ? 100.0 * (double)bytes / (double)total : 100.0, human(bytes, b1, sizeof(b1)),
	    human(total, b2, sizeof(b2)), chunks, human(rate, b3, sizeof(b3)));
	if (total > bytes && eta_secs(total - bytes, rate, &eta))
		len += snprintf(line + len, cap - (size_t)len, ", ETA %s",
				human_secs(eta, b4, sizeof(b4)));
	snprintf(line + len, cap - (size_t)len, "  (%zu of %zu nodes done, %.0fs)", ended, nodes,
		 (double)(pifs_now_ms() - f->t0) / 1000.0);
}

void show_progress(struct follow *f, bool final)
{
	char line[400], b[64], b1[32], b2[32], b3[32];
	int64_t now = pifs_now_ms();
	double secs = (double)(now - f->t0) / 1000.0;
	size_t ended = 0, nodes = 0;
	int len;

	if (!f->tty && !final && now - f->last_log < LOG_EVERY_MS)
		return;
	f->last_log = now;
	if (f->rebalance) {
		rebalance_line(f, line, sizeof(line));
	} else if (f->flags == PIFS_WORK_SCRUB) {
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
void progress_break(struct follow *f)
{
	if (f->drawn) {
		fputc('\n', stderr);
		f->drawn = false;
	}
}

void follow_init(struct follow *f, struct admin *a, uint32_t flags)
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
size_t report_refusals(struct follow *f)
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

uint64_t delta(uint64_t now, uint64_t start)
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

int heal_report(struct follow *f, bool over)
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

int cmd_scrub(struct admin *a)
{
	return run_work(a, PIFS_WORK_SCRUB);
}

int cmd_heal(struct admin *a)
{
	return run_work(a, PIFS_WORK_HEAL);
}

const char status_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] status\n"
    "\n"
    "Show the cluster in a few lines, from the metadata service and from each node that\n"
    "is up (one that does not answer within --timeout is shown with the figures of its\n"
    "last heartbeat):\n"
    "  cluster    the map epoch (it grows with every change of the cluster map), the\n"
    "             number of copies of each chunk (replicas) and the chunk size\n"
    "  metadata   the leader that answered and its term, its last applied log index, the\n"
    "             metadata voters (which are down, and what losing one more would do:\n"
    "             '" PROG " meta status' tells more), the inode count\n"
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
    "  security   CURVE and the newest allow-list generation the nodes have (nodes with\n"
    "             an older one are named: push it with '" PROG " keys push'), and how\n"
    "             many requests or connections the nodes refused for their key; or NONE\n"
    "             when the configuration says 'security = none'\n"
    "  health     ok; degraded (a node or a metadata voter down, or chunks short of\n"
    "             copies); or damaged\n"
    "             (chunk copies that no good copy could repair: files fail with EIO)\n"
    "Heal and scrub figures are summed over the nodes that are up.\n"
    "\n"
    "JSON keys: epoch, replicas, chunk_size, log_index, meta_node, meta_address, inodes,\n"
    "nodes_up, nodes_total, healthy (every node up), health (ok, degraded, damaged),\n"
    "degraded, heal_chunks, heal_bytes, heal_rate (bytes/s), heal_eta_s (null: no copy\n"
    "under way), moved_chunks, moved_bytes, scrub_running (nodes), scrub_done,\n"
    "scrub_total, scrub_corrupt, scrub_repaired, scrub_unrepairable, security: {mode\n"
    "(curve, none), allowlist_generation, refused, nodes_behind: [ids]}, nodes: [{id,\n"
    "address, state (up, down, unregistered), up, in, meta, drain, new, registered, full,\n"
    "free, last_seen_ns (0: never), work: {heal_passes, heal_chunks, heal_bytes, degraded,\n"
    "heal_rate, moved_chunks, moved_bytes, scrub_passes, scrub_running, scrub_done,\n"
    "scrub_total, scrub_corrupt, scrub_repaired, scrub_unrepairable}}], and meta:\n"
    "{leader, leader_address, term (null when the node asked does not say), voters_total,\n"
    "voters_up, majority, voters: [{node, up}]}.\n"
    "\n"
    "Exit status: 0 health ok; 3 degraded or damaged; 1 the metadata service could not\n"
    "be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " status --json | jq '.nodes[] | select(.up | not) | .id'\n"
    "  " PROG " status --json | jq '{degraded, heal_bytes, heal_eta_s}'\n"
    "  until " PROG " --timeout 1s status >/dev/null; do sleep 1; done\n";

const char scrub_help[] =
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

const char heal_help[] =
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
