/* admin_space.c - pifs-admin df and gc: where the space goes, and getting back
 * what no file uses. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_i.h"
#include "rpc.h"

/* Figures df derives from the cluster view. */
struct df_sums {
	uint64_t stored; /* used bytes of the nodes that answered */
	uint64_t capacity;
	uint64_t free_bytes;
	uint64_t extra_refs; /* references beyond the first to each chunk */
	uint64_t dedup_saving;
	uint64_t reclaimable; /* what the last gc sweeps found and left on disk */
	uint64_t reclaimable_chunks;
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
		s->reclaimable += n->work.gc_bytes;
		s->reclaimable_chunks += n->work.gc_chunks;
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
	json_u64(&j, "reclaimable", s->reclaimable);
	json_u64(&j, "reclaimable_chunks", s->reclaimable_chunks);
	json_ratio(&j, "compression_ratio", v->chunk_stored, v->chunk_raw);
	json_ratio(&j, "replication", s->stored, v->chunk_stored);
	json_u64(&j, "nodes_unreachable", s->unreachable);
	json_open(&j, "nodes", '[');
	for (size_t i = 0; i < v->n_nodes; i++) {
		const struct node_view *n = &v->nodes[i];

		json_open(&j, NULL, '{');
		json_u64(&j, "id", n->id);
		json_str(&j, "address", n->addr);
		json_node_space(&j, n);
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
	printf("%-13s %10s  chunk copies no file uses, as the last gc sweeps found (%" PRIu64
	       " copies): '" PROG " gc' deletes them\n",
	       "reclaimable", human(s->reclaimable, b1, sizeof(b1)), s->reclaimable_chunks);
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

int cmd_df(struct admin *a)
{
	struct cluster_view v = {0};
	struct df_sums s;

	if (view_cluster(a, &v, false) < 0)
		return EXIT_FAIL;
	df_sum(&v, &s);
	if (a->json)
		df_json(a, &v, &s);
	else
		df_text(&v, &s);
	free(v.nodes);
	return EXIT_OK;
}

const char df_help[] =
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
    "  reclaimable   chunk copies no file references, older than gc_grace, that the last\n"
    "                garbage-collection sweep of each node left (all of them after\n"
    "                'gc --dry-run'): '" PROG " gc' deletes them\n"
    "  free          free space over capacity, summed over the nodes that answered\n"
    "Then one line per node: USED, FREE, CAPACITY, USE% and CHUNKS, or why it did not\n"
    "answer. Sizes use binary units (1 KiB = 1024 bytes).\n"
    "\n"
    "JSON keys (sizes in bytes): epoch, replicas, chunk_size, log_index, meta_node,\n"
    "meta_address, inodes, logical, chunks, chunk_raw, chunk_stored, chunk_refs,\n"
    "dedup_extra_refs, dedup_saving, stored, stored_complete (false when a node did not\n"
    "answer), capacity, free, reclaimable, reclaimable_chunks, compression_ratio,\n"
    "replication (null without data),\n"
    "nodes_unreachable, and nodes: [{id, address, reachable, used, free, capacity,\n"
    "chunks, error}].\n"
    "\n"
    "Exit status: 0 the figures were printed (even with nodes unreachable); 1 the\n"
    "metadata service could not be reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " df\n"
    "  " PROG " df --json | jq '{stored, replication}'\n";

/* A node that gc works with: its figures when the sweep was asked for, and now. */
struct gc_node {
	struct node_view n;
	bool started, done, lost;
	int rc;
	struct pifs_work start, now;
};

static int gc_report(struct admin *a, struct gc_node *g, size_t n, bool waited, int64_t ms)
{
	uint64_t rc_chunks = 0, rc_bytes = 0, del_chunks = 0, del_bytes = 0;
	size_t bad = 0;
	char b1[32], b2[32];

	for (size_t i = 0; i < n; i++) {
		if (!g[i].started || g[i].lost || !g[i].done) {
			bad++;
			continue;
		}
		rc_chunks += g[i].now.gc_chunks;
		rc_bytes += g[i].now.gc_bytes;
		del_chunks += delta(g[i].now.gc_deleted_chunks, g[i].start.gc_deleted_chunks);
		del_bytes += delta(g[i].now.gc_deleted_bytes, g[i].start.gc_deleted_bytes);
	}
	if (a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_bool(&j, "dry_run", a->dry_run);
		json_bool(&j, "wait", waited);
		json_bool(&j, "complete", waited && bad == 0);
		json_i64(&j, "elapsed_ms", ms);
		json_u64(&j, "reclaimable_chunks", rc_chunks);
		json_u64(&j, "reclaimable_bytes", rc_bytes);
		json_u64(&j, "deleted_chunks", del_chunks);
		json_u64(&j, "deleted_bytes", del_bytes);
		json_open(&j, "nodes", '[');
		for (size_t i = 0; i < n; i++) {
			json_open(&j, NULL, '{');
			json_u64(&j, "id", g[i].n.id);
			json_bool(&j, "started", g[i].started);
			json_bool(&j, "done", g[i].done && !g[i].lost);
			if (g[i].done && !g[i].lost) {
				json_u64(&j, "reclaimable_chunks", g[i].now.gc_chunks);
				json_u64(&j, "reclaimable_bytes", g[i].now.gc_bytes);
				json_u64(&j, "deleted_chunks",
					 delta(g[i].now.gc_deleted_chunks,
					       g[i].start.gc_deleted_chunks));
				json_u64(
				    &j, "deleted_bytes",
				    delta(g[i].now.gc_deleted_bytes, g[i].start.gc_deleted_bytes));
			} else if (g[i].rc < 0) {
				json_str(&j, "error", strerror(-g[i].rc));
			}
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
		fflush(stdout);
	} else if (!waited) {
		size_t ok = 0;

		for (size_t i = 0; i < n; i++)
			ok += g[i].started;
		printf("gc: a %ssweep is starting on %zu node(s); '" PROG " df' shows what is "
		       "reclaimable after it, '" PROG " gc --wait' waits for it\n",
		       a->dry_run ? "dry-run " : "", ok);
	} else {
		printf("gc: %s in %.1fs: %" PRIu64 " chunk copies (%s) %s; %" PRIu64
		       " chunk copies (%s) deleted\n",
		       a->dry_run ? "dry run" : "sweep", (double)ms / 1000.0, rc_chunks,
		       human(rc_bytes, b1, sizeof(b1)),
		       a->dry_run ? "would be deleted" : "reclaimable but not deleted", del_chunks,
		       human(del_bytes, b2, sizeof(b2)));
		printf("%-5s %12s %12s %12s %12s\n", "NODE", "RECLAIMABLE", "BYTES", "DELETED",
		       "BYTES");
		for (size_t i = 0; i < n; i++) {
			if (!g[i].started || g[i].lost || !g[i].done) {
				printf("%-5" PRIu32 " %s\n", g[i].n.id,
				       !g[i].started ? "did not accept WORK_START"
				       : g[i].lost   ? "went down or restarted during the sweep"
						     : "its sweep has not ended");
				continue;
			}
			printf("%-5" PRIu32 " %12" PRIu64 " %12s %12" PRIu64 " %12s\n", g[i].n.id,
			       g[i].now.gc_chunks, human(g[i].now.gc_bytes, b1, sizeof(b1)),
			       delta(g[i].now.gc_deleted_chunks, g[i].start.gc_deleted_chunks),
			       human(delta(g[i].now.gc_deleted_bytes, g[i].start.gc_deleted_bytes),
				     b2, sizeof(b2)));
		}
	}
	for (size_t i = 0; i < n; i++)
		if (!g[i].started)
			fprintf(stderr,
				PROG ": node %" PRIu32 " at %s could not start a gc sweep: %s; see "
				     "that node's log\n",
				g[i].n.id, g[i].n.addr, strerror(-g[i].rc));
	if (waited && bad)
		fprintf(stderr,
			PROG ": %zu node(s) did not end a sweep (down, restarted, or --timeout): "
			     "run '" PROG
			     " gc --wait' again; a daemon deletes nothing in its first "
			     "gc_grace after it starts\n",
			bad);
	return bad ? EXIT_FAIL : EXIT_OK;
}

int cmd_gc(struct admin *a)
{
	struct cluster_view v = {0};
	struct gc_node *g = NULL;
	uint32_t flags = PIFS_WORK_GC | (a->dry_run ? PIFS_WORK_DRYRUN : 0);
	int64_t t0 = pifs_now_ms();
	size_t n = 0, left;
	int rc;

	if (fetch_cluster(a, &v) < 0 || probe_nodes(a, &v, true) < 0) {
		rc = EXIT_FAIL;
		goto out_free;
	}
	g = calloc(v.n_nodes ? v.n_nodes : 1, sizeof(*g));
	if (!g) {
		fprintf(stderr, PROG ": out of memory\n");
		rc = EXIT_FAIL;
		goto out_free;
	}
	for (size_t i = 0; i < v.n_nodes; i++) {
		if (!node_up(&v.nodes[i]))
			continue;
		g[n].n = v.nodes[i];
		g[n].start = g[n].now = v.nodes[i].work;
		g[n].rc = v.nodes[i].stat_rc;
		if (g[n].rc == 0)
			g[n].rc = work_start(a, &v.nodes[i], flags);
		g[n].started = g[n].rc == 0;
		n++;
	}
	if (n == 0) {
		fprintf(stderr,
			PROG ": no node is up: nothing to collect; start the nodes first\n");
		rc = EXIT_FAIL;
		goto out_free;
	}
	if (!a->wait) {
		rc = gc_report(a, g, n, false, 0);
		goto out_free;
	}
	for (;;) {
		left = 0;
		for (size_t i = 0; i < n; i++)
			left += g[i].started && !g[i].done && !g[i].lost;
		if (left == 0 || (a->wait_ms && pifs_now_ms() - t0 >= a->wait_ms))
			break;
		nanosleep(&(struct timespec){.tv_nsec = POLL_MS * 1000000L}, NULL);
		/* The swept nodes, asked again all at once. */
		for (size_t i = 0; i < n; i++) {
			v.nodes[i] = g[i].n;
			v.nodes[i].stat_rc = -ENODATA;
		}
		v.n_nodes = n;
		probe_nodes(a, &v, false);
		for (size_t i = 0; i < n; i++) {
			struct gc_node *x = &g[i];

			if (!x->started || x->done || x->lost || v.nodes[i].stat_rc < 0)
				continue;
			x->now = v.nodes[i].work;
			if (x->now.gc_passes < x->start.gc_passes)
				x->lost = true;
			else if (x->now.gc_passes > x->start.gc_passes)
				x->done = true;
		}
	}
	rc = gc_report(a, g, n, true, pifs_now_ms() - t0);
out_free:
	free(g);
	free(v.nodes);
	return rc;
}

const char gc_help[] =
    "Usage: " PROG " [-c FILE] [--json] gc [--dry-run] [--wait] [--timeout DUR]\n"
    "\n"
    "Ask every node that is up for a garbage-collection sweep now: it deletes the chunk\n"
    "copies that no file references (the metadata service is asked) and that were\n"
    "written or re-written longer than gc_grace ago, so that a client uploading the\n"
    "same content at that moment never loses it. Nodes also sweep every gc_interval.\n"
    "A daemon deletes nothing in the first gc_grace after it starts.\n"
    "\n"
    "  -d, --dry-run      count what would be deleted, delete nothing ('" PROG " df'\n"
    "                     then shows it as reclaimable)\n"
    "  -w, --wait         wait until every node has ended its sweep, then print, per\n"
    "                     node and in all, the chunk copies reclaimable and deleted\n"
    "  -t, --timeout DUR  after the command: with --wait, give up after DUR\n"
    "\n"
    "JSON: dry_run, wait, complete, elapsed_ms, reclaimable_chunks, reclaimable_bytes,\n"
    "deleted_chunks, deleted_bytes, and nodes: [{id, started, done, reclaimable_chunks,\n"
    "reclaimable_bytes, deleted_chunks, deleted_bytes, error}].\n"
    "\n"
    "Exit status: 0 the sweeps were started (with --wait: ended on every node); 1 a\n"
    "node could not start or end its sweep, or the metadata service could not be\n"
    "reached; 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " gc --dry-run --wait\n"
    "  " PROG " gc --wait\n";
