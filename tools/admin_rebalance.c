/* admin_rebalance.c - pifs-admin rebalance: make every chunk sit on its owners
 * under the current map. The plan is PLAN summed over the nodes that are up;
 * the run is a heal pass on every node (heal and rebalance are one
 * mechanism), throttled with WORK_SET and followed with NODE_STAT. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_i.h"
#include "rpc.h"

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int cmp_move(const void *x, const void *y)
{
	const struct plan_move *a = x, *b = y;

	if (a->from != b->from)
		return a->from < b->from ? -1 : 1;
	return a->to < b->to ? -1 : a->to > b->to;
}

/* How many times a plan is asked again while a node has not yet the map that
 * the metadata service has (its heartbeat brings it within a beat or two). */
#define PLAN_TRIES 20

/* PLAN on every node that is up, summed into @p, every node planning under
 * the map of @v: right after 'node add' or 'node drain' a node may not have it
 * yet, and its plan would be the old map's. Says which node failed. */
static int take_plan(struct admin *a, struct cluster_view *v, struct plan *p)
{
	char why[256];
	uint64_t epoch;
	bool stale = true;
	int rc;

	for (int tries = 0; stale && tries < PLAN_TRIES; tries++) {
		if (tries)
			nanosleep(&(struct timespec){.tv_nsec = 250 * 1000000L}, NULL);
		free(p->moves);
		*p = (struct plan){0};
		stale = false;
		for (size_t i = 0; i < v->n_nodes; i++) {
			const struct node_view *n = &v->nodes[i];

			if (!node_up(n))
				continue;
			rc = node_plan(a, n, 0, p, &epoch, why, sizeof(why));
			if (rc < 0) {
				fprintf(stderr,
					PROG ": node %" PRIu32
					     " at %s could not make a plan: %s%s%s; "
					     "retry, or see that node's log\n",
					n->id, n->addr, strerror(-rc), why[0] ? ": " : "", why);
				return rc;
			}
			stale |= epoch < v->epoch;
		}
	}
	if (stale)
		fprintf(stderr,
			PROG
			": warning: some nodes still plan under a map older than epoch %" PRIu64
			": the plan may be short; run it again in a few seconds\n",
			v->epoch);
	if (p->n)
		qsort(p->moves, p->n, sizeof(*p->moves), cmp_move);
	return 0;
}

/* The time to move @p when each sender copies at @rate bytes/s: the senders
 * work in parallel, so the busiest one sets it. */
static uint64_t plan_secs(const struct plan *p, uint64_t rate)
{
	uint64_t most = 0;

	for (size_t i = 0; i < p->n; i++) {
		uint64_t sent = 0;

		for (size_t k = 0; k < p->n; k++)
			if (p->moves[k].from == p->moves[i].from)
				sent += p->moves[k].bytes;
		if (sent > most)
			most = sent;
	}
	return rate ? (most + rate - 1) / rate : 0;
}

/* The fastest copy rate a node reports now: heal_rate is measured over about
 * a second and falls to zero after ten idle seconds. 0: unknown. */
static uint64_t link_rate(const struct cluster_view *v)
{
	uint64_t most = 0;

	for (size_t i = 0; i < v->n_nodes; i++)
		if (node_up(&v->nodes[i]) && v->nodes[i].work.heal_rate > most)
			most = v->nodes[i].work.heal_rate;
	return most;
}

static void plan_print(const struct admin *a, const struct cluster_view *v, const struct plan *p)
{
	uint64_t throttle = a->limit ? a->limit : a->conf.heal_rate, link = link_rate(v);
	char b1[32], b2[32];
	size_t fresh = 0;

	for (size_t i = 0; i < v->n_nodes; i++)
		fresh += node_up(&v->nodes[i]) && (v->nodes[i].flags & PIFS_NODE_NEW);
	if (a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_cluster_head(&j, a, v);
		json_bool(&j, "dry_run", true);
		json_u64(&j, "chunks", p->chunks);
		json_u64(&j, "bytes", p->bytes);
		json_u64(&j, "throttle", throttle);
		if (throttle)
			json_u64(&j, "throttle_eta_s", plan_secs(p, throttle));
		else
			json_null(&j, "throttle_eta_s");
		json_u64(&j, "link_rate", link);
		if (link)
			json_u64(&j, "link_eta_s", plan_secs(p, link));
		else
			json_null(&j, "link_eta_s");
		json_u64(&j, "new_nodes", fresh);
		json_open(&j, "moves", '[');
		for (size_t i = 0; i < p->n; i++) {
			json_open(&j, NULL, '{');
			json_u64(&j, "from", p->moves[i].from);
			json_u64(&j, "to", p->moves[i].to);
			json_u64(&j, "chunks", p->moves[i].chunks);
			json_u64(&j, "bytes", p->moves[i].bytes);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
		return;
	}
	if (p->n == 0) {
		printf("rebalance plan: nothing to move: every chunk sits on its owners\n");
	} else {
		printf("rebalance plan (map epoch %" PRIu64 "):\n", v->epoch);
		printf("  %-6s %-6s %10s %12s\n", "FROM", "TO", "CHUNKS", "BYTES");
		for (size_t i = 0; i < p->n; i++)
			printf("  %-6" PRIu32 " %-6" PRIu32 " %10" PRIu64 " %12s\n",
			       p->moves[i].from, p->moves[i].to, p->moves[i].chunks,
			       human(p->moves[i].bytes, b1, sizeof(b1)));
		printf("  %-13s %10" PRIu64 " %12s\n", "total", p->chunks,
		       human(p->bytes, b1, sizeof(b1)));
		if (throttle)
			printf("time at the throttle (%s/s per node%s): about %s\n",
			       human(throttle, b1, sizeof(b1)),
			       a->limit ? ", --limit" : ", heal_rate",
			       human_secs(plan_secs(p, throttle), b2, sizeof(b2)));
		else
			printf("time at the throttle: no throttle (heal_rate = 0)\n");
		if (link)
			printf("time at the measured link speed (%s/s, the fastest copy rate now): "
			       "about %s\n",
			       human(link, b1, sizeof(b1)),
			       human_secs(plan_secs(p, link), b2, sizeof(b2)));
		else
			printf(
			    "time at the measured link speed: unknown (no node is copying now)\n");
	}
	if (fresh)
		printf("%zu new node(s) are not admitted and take no data: '" PROG " node add "
		       "ADDRESS' first (see '" PROG " nodes')\n",
		       fresh);
	printf("nothing was moved; run '" PROG " rebalance --wait' to move it\n");
}

static int report(struct follow *f, bool over, const struct plan *p)
{
	uint64_t chunks, bytes, rate;
	double secs = (double)(pifs_now_ms() - f->t0) / 1000.0;
	char b1[32], b2[32];

	follow_moved(f, &chunks, &bytes, &rate);
	if (f->a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_bool(&j, "complete", over);
		json_bool(&j, "interrupted", interrupted != 0);
		json_u64(&j, "plan_chunks", p->chunks);
		json_u64(&j, "plan_bytes", p->bytes);
		json_u64(&j, "moved_chunks", chunks);
		json_u64(&j, "moved_bytes", bytes);
		json_i64(&j, "elapsed_ms", pifs_now_ms() - f->t0);
		json_close(&j, '}');
		fputc('\n', stdout);
		fflush(stdout);
	}
	if (interrupted) {
		fprintf(stderr,
			PROG ": interrupted after %s moved: the nodes go on in the background; "
			     "'" PROG " status' shows how far they are, and '" PROG " rebalance "
			     "--wait' follows (or resumes) it\n",
			human(bytes, b1, sizeof(b1)));
		return EXIT_FAIL;
	}
	if (over) {
		if (!f->a->json)
			printf("rebalance: done in %.1fs: %" PRIu64 " chunks (%s) moved, the plan "
			       "said %" PRIu64 " (%s); every chunk sits on its owners\n",
			       secs, chunks, human(bytes, b1, sizeof(b1)), p->chunks,
			       human(p->bytes, b2, sizeof(b2)));
		return EXIT_OK;
	}
	return heal_report(f, false);
}

int cmd_rebalance(struct admin *a)
{
	struct cluster_view v = {0};
	struct plan p = {0};
	struct follow f;
	struct sigaction sa = {.sa_handler = on_sigint};
	bool over = false, warned = false;
	int rc;

	rc = view_cluster(a, &v, true);
	if (rc < 0)
		goto out_free;
	rc = take_plan(a, &v, &p);
	if (rc < 0)
		goto out_free;
	if (a->dry_run) {
		plan_print(a, &v, &p);
		goto out_free;
	}
	follow_init(&f, a, PIFS_WORK_HEAL);
	f.rebalance = true;
	f.limit = a->limit;
	f.plan_chunks = p.chunks;
	f.plan_bytes = p.bytes;
	rc = follow_look(&f, true);
	if (rc < 0) {
		free(f.t);
		goto out_free;
	}
	if (!a->wait) {
		char b[32];

		report_refusals(&f);
		if (!a->json)
			printf("rebalance: started on %zu node(s): %" PRIu64
			       " chunks (%s) to move; "
			       "'" PROG " status' shows progress, '" PROG " rebalance --wait' "
			       "follows it\n",
			       f.n, p.chunks, human(p.bytes, b, sizeof(b)));
		else
			report(&f, false, &p);
		free(f.t);
		rc = 0;
		goto out_free;
	}
	sigaction(SIGINT, &sa, NULL);
	while (!interrupted) {
		over = heal_over(&f);
		if (over)
			break;
		if (a->wait_ms && pifs_now_ms() - f.t0 >= a->wait_ms)
			break;
		show_progress(&f, false);
		nanosleep(&(struct timespec){.tv_nsec = POLL_MS * 1000000L}, NULL);
		/* A node, even the metadata voter, may restart under us: keep
		 * asking; a restarted node gets its pass started again. */
		if (follow_look(&f, false) < 0 && !warned) {
			progress_break(&f);
			fprintf(stderr,
				PROG ": still trying: the rebalance goes on in the nodes\n");
			warned = true;
		}
	}
	show_progress(&f, true);
	rc = report(&f, over, &p);
	free(f.t);
	free(p.moves);
	free(v.nodes);
	return rc;
out_free:
	free(p.moves);
	free(v.nodes);
	return rc < 0 ? EXIT_FAIL : EXIT_OK;
}

const char rebalance_help[] =
    "Usage: " PROG " [-c FILE] [--json] rebalance [--dry-run] [--limit MB/s] [--wait]\n"
    "                                            [--timeout DUR]\n"
    "\n"
    "Make every chunk sit on its owners under the current cluster map: after 'node add',\n"
    "'node drain' or 'node set-weight', which move nothing by themselves. Only chunks\n"
    "that must move do; each is copied by one node, and the copy away from its owners is\n"
    "deleted once all of them hold it. Reads and writes go on meanwhile.\n"
    "\n"
    "  -d, --dry-run       print the plan and move nothing: chunks and bytes each node\n"
    "                      would send to each other node, the total, and the time it\n"
    "                      takes at the throttle (heal_rate, or --limit) and at the\n"
    "                      copy rate measured now ('unknown' when nothing is copying)\n"
    "      --limit MB/s    each node copies at most this fast (until it restarts)\n"
    "  -w, --wait          follow it with a progress bar on stderr (bytes moved of the\n"
    "                      plan, rate, time left) until every chunk is on its owners.\n"
    "                      Ctrl-C stops following; the nodes go on, and the same command\n"
    "                      shows the progress again. A node that restarts meanwhile\n"
    "                      resumes by itself.\n"
    "  -t, --timeout DUR   after the command: with --wait, give up after DUR\n"
    "Without --wait it starts and returns; '" PROG " status' shows the progress.\n"
    "\n"
    "JSON: --dry-run: epoch, ..., dry_run, chunks, bytes, throttle, throttle_eta_s,\n"
    "link_rate, link_eta_s (null: unknown), new_nodes, moves: [{from, to, chunks, bytes}].\n"
    "Otherwise: complete, interrupted, plan_chunks, plan_bytes, moved_chunks, moved_bytes,\n"
    "elapsed_ms.\n"
    "\n"
    "Exit status: 0 done (or started, or planned); 1 a node could not plan, --wait timed\n"
    "out or was interrupted, or the metadata service could not be reached; 2 bad\n"
    "command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " rebalance --dry-run\n"
    "  " PROG " rebalance --wait --limit 20\n"
    "  " PROG " rebalance --dry-run --json | jq .bytes\n";
