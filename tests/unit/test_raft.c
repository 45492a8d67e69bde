/* test_raft.c - fs/raft.c in a small deterministic cluster: election,
 * replication to every voter, a new leader after the old one is cut off
 * with nothing committed lost, and a single voter committing alone.
 *
 * Every voter keeps its log and applied entries in memory; messages go
 * through the codec (encoded when sent, decoded when delivered, a tick
 * later) so that nothing borrowed outlives its callback. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#define N 3
#define TICK 10
#define MAXQ 4096

struct voter {
	uint32_t id;
	struct pifs_raft *r;
	bool cut; /* sends and receives nothing */
	char applied[256][16];
	uint64_t napplied;
};

struct packet {
	uint32_t to;
	struct pifs_buf bytes;
};

static struct voter v[N];
static struct packet q[MAXQ];
static size_t nq;
static int64_t now_ms;

static int io_ok(void *ctx)
{
	(void)ctx;
	return 0;
}

static int io_append(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	(void)ctx, (void)index, (void)e;
	return 0;
}

static int io_truncate(void *ctx, uint64_t from)
{
	(void)ctx, (void)from;
	return 0;
}

static int io_hard(void *ctx, uint64_t term, uint32_t vote)
{
	(void)ctx, (void)term, (void)vote;
	return 0;
}

static int io_send(void *ctx, uint32_t to, const struct pifs_msg *m)
{
	struct voter *self = ctx;

	if (self->cut || nq == MAXQ)
		return 0;
	q[nq].to = to;
	pifs_buf_init(&q[nq].bytes);
	cr_assert_eq(pifs_proto_encode(m, &q[nq].bytes), 0);
	nq++;
	return 0;
}

static int io_apply(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct voter *self = ctx;

	cr_assert_eq(index, self->napplied + 1, "voter %u applies in order", self->id);
	self->napplied = index;
	if (e->type == PIFS_RAFT_DATA) {
		cr_assert_lt(e->len, 16);
		memcpy(self->applied[index % 256], e->data, e->len);
		self->applied[index % 256][e->len] = '\0';
	} else {
		strcpy(self->applied[index % 256], "-");
	}
	return 0;
}

static ssize_t io_snap_read(void *ctx, uint64_t off, void *buf, size_t cap)
{
	(void)ctx, (void)off, (void)buf, (void)cap;
	return -ENOENT;
}

static int io_snap_write(void *ctx, uint64_t off, const void *p, size_t len)
{
	(void)ctx, (void)off, (void)p, (void)len;
	return -EIO;
}

static int io_snap_install(void *ctx, uint64_t index, uint64_t term,
			   const struct pifs_raft_conf *conf, uint64_t total)
{
	(void)ctx, (void)index, (void)term, (void)conf, (void)total;
	return -EIO;
}

static void start(uint32_t n)
{
	struct pifs_raft_state st = {0};

	memset(v, 0, sizeof(v));
	nq = 0;
	now_ms = 1000;
	st.conf.n = n;
	for (uint32_t i = 0; i < n; i++)
		st.conf.id[i] = i + 1;
	for (uint32_t i = 0; i < n; i++) {
		struct pifs_raft_opts o = {.id = i + 1, .seed = 7 + i, .heartbeat_ms = 100,
					   .election_ms = 800, .max_append_bytes = 1 << 20,
					   .snap_piece = 1 << 20};
		struct pifs_raft_io io = {.ctx = &v[i], .log_append = io_append, .log_write = io_ok,
					  .log_sync = io_ok, .log_truncate = io_truncate,
					  .set_hard = io_hard, .send = io_send, .apply = io_apply,
					  .snap_read = io_snap_read, .snap_write = io_snap_write,
					  .snap_install = io_snap_install};

		v[i].id = i + 1;
		cr_assert_eq(pifs_raft_new(&o, &st, &io, &v[i].r), 0);
	}
}

static void stop(uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		pifs_raft_free(v[i].r);
	for (size_t i = 0; i < nq; i++)
		pifs_buf_fini(&q[i].bytes);
}

/* Deliver what was sent, then tick everyone: @ms of time in TICK steps. */
static void run(uint32_t n, int64_t ms)
{
	for (int64_t t = 0; t < ms; t += TICK) {
		static struct packet batch[MAXQ];
		size_t nb = nq;

		memcpy(batch, q, nq * sizeof(*q));
		nq = 0;
		for (size_t i = 0; i < nb; i++) {
			struct voter *to = &v[batch[i].to - 1];
			struct pifs_msg m;

			if (!to->cut) {
				cr_assert_eq(pifs_proto_decode(batch[i].bytes.p, batch[i].bytes.len, &m), 0);
				cr_assert_eq(pifs_raft_step(to->r, &m), 0);
			}
			pifs_buf_fini(&batch[i].bytes);
		}
		now_ms += TICK;
		for (uint32_t i = 0; i < n; i++)
			cr_assert_eq(pifs_raft_tick(v[i].r, now_ms), 0);
	}
}

/* The one leader among the voters not cut off (0: none), checking that no
 * two of them lead in one term. */
static uint32_t leader(uint32_t n)
{
	uint32_t who = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (v[i].cut || pifs_raft_role(v[i].r) != PIFS_RAFT_LEADER)
			continue;
		for (uint32_t j = 0; j < n; j++)
			if (j != i && pifs_raft_role(v[j].r) == PIFS_RAFT_LEADER)
				cr_assert_neq(pifs_raft_term(v[j].r), pifs_raft_term(v[i].r),
					      "two leaders in term %llu",
					      (unsigned long long)pifs_raft_term(v[i].r));
		cr_assert_eq(who, 0, "two leaders among the connected voters");
		who = v[i].id;
	}
	return who;
}

static uint64_t propose(uint32_t id, const char *s)
{
	uint64_t index = 0;

	cr_assert_eq(pifs_raft_propose(v[id - 1].r, s, strlen(s), &index), 0);
	cr_assert_eq(pifs_raft_flush(v[id - 1].r, false), 0);
	return index;
}

Test(raft, three_voters_elect_one_leader_and_replicate)
{
	uint32_t l;
	uint64_t index;

	start(N);
	run(N, 3000);
	l = leader(N);
	cr_assert_neq(l, 0, "a leader within 3 s");
	cr_assert(pifs_raft_lease(v[l - 1].r, now_ms));
	index = propose(l, "photo-1");
	run(N, 500);
	for (uint32_t i = 0; i < N; i++) {
		cr_assert_geq(v[i].napplied, index, "voter %u applied the entry", v[i].id);
		cr_assert_str_eq(v[i].applied[index % 256], "photo-1");
	}
	stop(N);
}

Test(raft, a_cut_off_leader_is_replaced_and_nothing_committed_is_lost)
{
	uint32_t old, l;
	uint64_t first, second;

	start(N);
	run(N, 3000);
	old = leader(N);
	cr_assert_neq(old, 0);
	first = propose(old, "before");
	run(N, 500);
	v[old - 1].cut = true;
	/* Its lease ends before another can be elected. */
	run(N, 700);
	cr_assert_not(pifs_raft_lease(v[old - 1].r, now_ms), "the cut-off leader lost its lease");
	run(N, 3000);
	l = leader(N);
	cr_assert_neq(l, 0, "a new leader within 4 s of the cut");
	cr_assert_neq(l, old);
	cr_assert_neq(pifs_raft_role(v[old - 1].r), PIFS_RAFT_LEADER,
		      "check-quorum made the old leader step down");
	second = propose(l, "after");
	run(N, 500);
	v[old - 1].cut = false;
	run(N, 2000);
	cr_assert_eq(leader(N), l, "the old leader's return deposes nobody (pre-vote)");
	for (uint32_t i = 0; i < N; i++) {
		cr_assert_geq(v[i].napplied, second, "voter %u caught up", v[i].id);
		cr_assert_str_eq(v[i].applied[first % 256], "before");
		cr_assert_str_eq(v[i].applied[second % 256], "after");
	}
	stop(N);
}

Test(raft, a_single_voter_commits_alone)
{
	uint64_t index;

	start(1);
	run(1, 3000);
	cr_assert_eq(leader(1), 1);
	index = propose(1, "alone");
	run(1, 20);
	cr_assert_eq(v[0].napplied, index);
	cr_assert_str_eq(v[0].applied[index % 256], "alone");
	stop(1);
}
