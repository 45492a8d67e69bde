/* test_raft.c - fs/raft.c among simulated voters.
 *
 * A struct sim is a small world run by one seed: up to MAXV voters, each
 * with a disk (term and vote, a snapshot, a log whose tail may be queued,
 * written or synced), a model state machine, and a network that delays,
 * loses, repeats and reorders messages, every one of them encoded and
 * decoded by the real codec. Time is virtual and moves in STEP ms.
 *
 * The focused tests drive a quiet world by hand. The seeded runs let faults
 * loose (loss, duplication, delays, partitions, crashes, power cuts,
 * compaction with snapshots sent in pieces, voters added and removed) while
 * clients propose to whoever leads, then heal everything, run until quiet
 * and check what Raft promises. A violation prints the seed and the end of
 * the run's trace: replay it with PIFS_RAFT_SEED=N. PIFS_RAFT_SEEDS=N runs
 * N seeds from PIFS_RAFT_SEED_BASE; PIFS_RAFT_VOTERS=N fixes the voters (no
 * changes); PIFS_RAFT_POWER=0 turns power cuts off (the seeds keep their
 * other faults); PIFS_RAFT_STATS=1 prints how long the voters took to
 * replace a crashed leader (bench/raft_sim.sh).
 *
 * The host here is metad's: a voter acknowledges entries once written
 * (io.log_write, the page cache), a syncer makes them durable 5 to 50 ms
 * later and says so (pifs_raft_synced), a sync flush (and PIFS_RAFT_SYNC)
 * syncs at once (io.log_sync), and a snapshot is taken only at an applied
 * index <= pifs_raft_durable (a leader that wants one flushes with sync
 * until durable catches up). A crash (kill -9) loses only what was not
 * written; a power cut (a third of the seeds: 40% of their crashes, and
 * now and then every voter at the same instant, those down included) loses
 * what was not synced.
 *
 * What must hold, power cuts or not:
 * - at most one leader per term (every leadership is recorded);
 * - no voter truncates its log at or below its commit index, nor at or
 *   below its durable index;
 * - durable entries are forever: every entry a voter reports durable
 *   (pifs_raft_durable; on a follower only up to its commit index, past
 *   which its log may hold stale entries) is recorded, and no voter ever
 *   holds another durable entry at that index, nor applies another one
 *   there, and every one is in the final state. This covers entries that
 *   a sync flush acknowledged: committed and synced on a majority is what
 *   durable means;
 * - the voters of the final configuration share their state byte for
 *   byte, and it is exactly what the final leader's log applies (the
 *   entries on its disk past its snapshot, the durable ones before);
 * - every acknowledged entry (applied by the leader that proposed it) is in
 *   the final state, and no two voters apply different entries at an
 *   index, unless a power cut took the entry from some voter's disk before
 *   it was durable;
 * - progress while every voter is up and connected.
 *
 * Why "some voter", not "a majority": an entry is committed once written
 * on a majority W, and a later leader lacks it only if the majority Q that
 * elected it lacks it; Q meets W, so at least one voter of W lost it, and
 * only a power cut loses a written entry. One is enough: with voters a, b,
 * c, an entry written on a and b is committed and acknowledged; a loses
 * power before its syncer ran, c never got the entry, and a and c elect a
 * leader without it. Once durable (synced on a majority S), Q meets S in a
 * voter that still has it, and the usual argument of the thesis (3.6.3)
 * holds: that is why snapshots wait for durable. */
#include <criterion/criterion.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#define MAXV 5	      /* voter ids are 1..MAXV */
#define STEP 5	      /* ms of virtual time per step */
#define SNAP_BYTES 40 /* the model as a snapshot */
#define TRACE 48      /* lines of trace kept for a violation */
#define MAXQ 1000     /* messages in flight at most */
#define HEARTBEAT_MS 100
#define ELECTION_MS 1000

/* splitmix64: the only source of randomness, so that a seed is a replay. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

static void grow(void *pp, size_t *cap, size_t need, size_t size)
{
	void **p = pp;
	size_t n = *cap ? *cap : 64;

	if (need <= *cap)
		return;
	while (n < need)
		n *= 2;
	*p = realloc(*p, n * size);
	cr_assert_not_null(*p);
	memset((uint8_t *)*p + *cap * size, 0, (n - *cap) * size);
	*cap = n;
}

/* One log entry on a simulated disk. */
struct dent {
	uint64_t term;
	uint8_t type;
	uint8_t len;
	uint8_t data[4 * PIFS_RAFT_MAX_VOTERS];
};

/* What survives a crash. The log holds entries lo..hi: those up to
 * @written survive a crash, those up to @synced a power cut. */
struct disk {
	uint64_t term;
	uint32_t vote;
	uint8_t snap[SNAP_BYTES];
	uint64_t snap_index, snap_term;
	struct pifs_raft_conf conf; /* the snapshot's, or the voters it began with */
	struct dent *ent;	    /* ent[i] is entry i */
	size_t cap;
	uint64_t lo, hi, written, synced;
	bool installing; /* snap_install happened; its log_truncate follows */
};

/* The state machine: how many entries, and a hash chain over all of them. */
struct model {
	uint64_t index, count, hash;
};

struct voter {
	struct sim *s;
	uint32_t id;
	bool exists;	     /* has a disk: it was started once */
	struct pifs_raft *r; /* NULL while down */
	uint32_t life;	     /* incarnation, counted from 1 */
	int64_t up_at;	     /* down: when it comes back */
	int group;	     /* a partition delivers only within a group */
	struct disk d;
	struct model m;
	uint8_t rcv[SNAP_BYTES]; /* a snapshot coming in */
	size_t rcv_len;
	int64_t sync_at; /* its syncer runs then; 0: nothing to sync */
	bool want_snap;	 /* leader: flush with sync until durable catches up */
	uint64_t dseen;	 /* durable entries of its log recorded up to here */
};

struct packet {
	int64_t at;
	uint64_t seq;
	uint32_t from, to;
	struct pifs_buf bytes;
};

/* An entry a client proposed: its payload is its number in sim.prop. */
struct proposal {
	uint64_t index, digest;
	uint32_t leader, life;
	bool acked;
};

/* Entries that power cuts took from voters' disks: lost[i][v] is the
 * digest of the last entry that voter v lost at index i. */
struct lostent {
	uint64_t d[MAXV + 1];
};

struct faults {
	unsigned loss, dup; /* per mille of messages */
	int64_t delay;	    /* a message takes 1..delay ms */
	bool crashes, power_cuts, partitions, conf_changes, sync;
	uint64_t compact_every; /* applied entries between snapshots; 0 never */
	uint64_t keep;		/* entries kept in memory behind a snapshot */
	uint32_t snap_piece, max_append;
};

struct sim {
	uint64_t seed, rng;
	int64_t now;
	struct faults f;
	bool clients;	/* propose at random, and expect answers */
	bool no_syncer; /* focused tests: logs are synced only when they say */
	struct voter v[MAXV + 1];

	struct packet *q; /* in flight, ordered by (at, seq) */
	size_t nq, capq;
	uint64_t seq;

	uint32_t *leader_of; /* term -> the voter that led it */
	size_t cap_leader;
	uint64_t *hist; /* index -> digest of the entry applied there; 0 none */
	size_t cap_hist;
	uint64_t *dur; /* index -> digest of the entry that became durable; 0 none */
	size_t cap_dur;
	uint64_t dur_max; /* the highest index known durable */
	struct lostent *lost;
	size_t cap_lost;
	uint64_t power_cuts, losses; /* power cuts, and entries applied then undone */
	struct proposal *prop;	     /* prop[0] is never proposed */
	size_t nprop, cap_prop;
	uint64_t acks;

	int64_t heal_at;     /* a partition ends then; 0 none */
	int64_t healthy_for; /* ms every voter has been up and connected */
	uint64_t acks_at_healthy;

	int64_t crash_at; /* a leader crashed then, and no leader is ready since */
	uint64_t crash_term;

	char trace[TRACE][112];
	unsigned ntrace;
};

/* Election times across runs, for PIFS_RAFT_STATS. */
static int64_t *elections;
static size_t nelections, cap_elections;
/* Power cuts across runs, and what they undid, for PIFS_RAFT_STATS. */
static uint64_t all_power_cuts, all_losses, all_lost_acks;

static uint64_t pick(struct sim *s, uint64_t n)
{
	return rnd(&s->rng) % n;
}

static bool chance(struct sim *s, unsigned per_mille)
{
	return pick(s, 1000) < per_mille;
}

static void trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void trace(struct sim *s, const char *fmt, ...)
{
	char *line = s->trace[s->ntrace++ % TRACE];
	int n = snprintf(line, sizeof(s->trace[0]), "%7" PRId64 " ", s->now);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(s->trace[0]) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void violation(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void violation(struct sim *s, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "raft sim, seed %" PRIu64 ": %s\n", s->seed, what);
	for (unsigned i = s->ntrace > TRACE ? s->ntrace - TRACE : 0; i < s->ntrace; i++)
		fprintf(stderr, "  %s\n", s->trace[i % TRACE]);
	for (uint32_t id = 1; id <= MAXV; id++) {
		const struct voter *v = &s->v[id];
		const struct pifs_raft_conf *c;

		if (!v->r)
			continue;
		c = pifs_raft_conf(v->r);
		fprintf(stderr,
			"  voter %u: %s term %" PRIu64 " leader %u commit %" PRIu64
			" applied %" PRIu64 " last %" PRIu64 ", %u voters from %u\n",
			id, pifs_raft_role_name(pifs_raft_role(v->r)), pifs_raft_term(v->r),
			pifs_raft_leader(v->r), pifs_raft_commit(v->r), pifs_raft_applied(v->r),
			pifs_raft_last_index(v->r), c->n, c->id[0]);
		if (pifs_raft_role(v->r) == PIFS_RAFT_LEADER) {
			struct pifs_raft_peer pr[PIFS_RAFT_MAX_VOTERS];
			size_t np = pifs_raft_peers(v->r, pr, PIFS_RAFT_MAX_VOTERS);

			for (size_t i = 0; i < np; i++)
				fprintf(stderr,
					"    peer %u: match %" PRIu64 " synced %" PRIu64 "\n",
					pr[i].id, pr[i].match, pr[i].synced);
		}
		fprintf(stderr,
			"    disk: snap %" PRIu64 " log %" PRIu64 "..%" PRIu64 " written %" PRIu64
			" synced %" PRIu64 ", durable %" PRIu64 "\n",
			v->d.snap_index, v->d.lo, v->d.hi, v->d.written, v->d.synced,
			pifs_raft_durable(v->r));
	}
	fprintf(stderr, "replay: PIFS_RAFT_SEED=%" PRIu64 "\n", s->seed);
	cr_assert_fail("seed %" PRIu64 ": %s", s->seed, what);
}

static uint64_t digest(const struct pifs_raft_entry *e)
{
	uint64_t h = fnv(FNV_BASIS, &e->term, sizeof(e->term));

	h = fnv(h, &e->type, 1);
	return fnv(h, e->data, e->len) | 1; /* never 0, which means none */
}

static uint64_t disk_digest(const struct disk *d, uint64_t index)
{
	const struct dent *de = &d->ent[index];
	struct pifs_raft_entry e = {de->term, de->type, de->data, de->len};

	return digest(&e);
}

/* Did a power cut take the entry @d at @index from some voter's disk? */
static bool lost_to_power(const struct sim *s, uint64_t index, uint64_t d)
{
	if (index >= s->cap_lost)
		return false;
	for (uint32_t id = 1; id <= MAXV; id++)
		if (s->lost[index].d[id] == d)
			return true;
	return false;
}

/* Entry @index, digest @d, is durable (committed and synced on a majority,
 * as some voter's pifs_raft_durable says): it may never be replaced. */
static void note_durable(struct sim *s, uint32_t who, uint64_t index, uint64_t d)
{
	grow(&s->dur, &s->cap_dur, index + 1, sizeof(*s->dur));
	if (s->dur[index] && s->dur[index] != d)
		violation(s, "voter %u holds another durable entry at %" PRIu64, who, index);
	s->dur[index] = d;
	if (index > s->dur_max)
		s->dur_max = index;
}

static void model_put(const struct model *m, uint8_t *out)
{
	uint64_t f[3] = {m->index, m->count, m->hash};

	memset(out, 0, SNAP_BYTES);
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			out[8 * i + b] = (uint8_t)(f[i] >> (56 - 8 * b));
	memcpy(out + 24, "pifs-raft-model", 15);
}

static int model_get(struct model *m, const uint8_t *in)
{
	uint64_t f[3] = {0};

	if (memcmp(in + 24, "pifs-raft-model", 15) != 0)
		return -EBADMSG;
	for (int i = 0; i < 3; i++)
		for (int b = 0; b < 8; b++)
			f[i] = f[i] << 8 | in[8 * i + b];
	*m = (struct model){f[0], f[1], f[2]};
	return 0;
}

static void model_apply(struct model *m, uint64_t index, uint64_t d, bool data)
{
	m->index = index;
	m->count += data;
	m->hash = fnv(fnv(m->hash, &index, sizeof(index)), &d, sizeof(d));
}

/* The io of one voter. */

static int io_append(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct voter *v = ctx;
	struct dent *de;

	if (index != v->d.hi + 1)
		violation(v->s, "voter %u: log_append of %" PRIu64 " after %" PRIu64, v->id, index,
			  v->d.hi);
	cr_assert_leq(e->len, sizeof(de->data));
	grow(&v->d.ent, &v->d.cap, index + 1, sizeof(*v->d.ent));
	de = &v->d.ent[index];
	de->term = e->term;
	de->type = e->type;
	de->len = (uint8_t)e->len;
	if (e->len)
		memcpy(de->data, e->data, e->len);
	v->d.hi = index;
	return 0;
}

static int io_write(void *ctx)
{
	struct voter *v = ctx;

	v->d.written = v->d.hi;
	return 0;
}

static int io_sync(void *ctx)
{
	struct voter *v = ctx;

	v->d.synced = v->d.written;
	return 0;
}

static int io_truncate(void *ctx, uint64_t from)
{
	struct voter *v = ctx;
	uint64_t keep = from - 1;

	if (v->d.installing) {
		/* The log before the snapshot goes; the snapshot covers it. */
		v->d.installing = false;
		if (keep < v->d.lo - 1)
			keep = v->d.lo - 1;
	} else if (from < v->d.lo || (v->r && from <= pifs_raft_commit(v->r))) {
		violation(v->s, "voter %u: log_truncate from %" PRIu64 ", committed", v->id, from);
	} else if (v->r && from <= pifs_raft_durable(v->r)) {
		violation(v->s, "voter %u: log_truncate from %" PRIu64 ", durable to %" PRIu64,
			  v->id, from, pifs_raft_durable(v->r));
	}
	if (v->d.hi > keep)
		v->d.hi = keep;
	if (v->d.written > keep)
		v->d.written = keep;
	if (v->d.synced > keep)
		v->d.synced = keep;
	return 0;
}

static int io_hard(void *ctx, uint64_t term, uint32_t vote)
{
	struct voter *v = ctx;

	if (term < v->d.term)
		violation(v->s, "voter %u: term back from %" PRIu64 " to %" PRIu64, v->id,
			  v->d.term, term);
	v->d.term = term;
	v->d.vote = vote;
	return 0;
}

static void push(struct sim *s, uint32_t from, uint32_t to, const struct pifs_msg *m)
{
	struct packet *p;
	size_t i;

	grow(&s->q, &s->capq, s->nq + 1, sizeof(*s->q));
	p = &s->q[s->nq];
	p->at = s->now + 1 + (int64_t)pick(s, (uint64_t)s->f.delay);
	p->seq = s->seq++;
	p->from = from;
	p->to = to;
	pifs_buf_init(&p->bytes);
	cr_assert_eq(pifs_proto_encode(m, &p->bytes), 0);
	/* Keep the queue ordered: a later delivery time may go before. */
	for (i = s->nq++; i > 0 && s->q[i - 1].at > s->q[i].at; i--) {
		struct packet t = s->q[i - 1];

		s->q[i - 1] = s->q[i];
		s->q[i] = t;
	}
}

static int io_send(void *ctx, uint32_t to, const struct pifs_msg *m)
{
	struct voter *v = ctx;
	struct sim *s = v->s;

	if (to == 0 || to > MAXV || chance(s, s->f.loss))
		return 0;
	push(s, v->id, to, m);
	if (chance(s, s->f.dup))
		push(s, v->id, to, m);
	return 0;
}

static int io_apply(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct voter *v = ctx;
	struct sim *s = v->s;
	uint64_t d = digest(e);

	if (index != v->m.index + 1)
		violation(s, "voter %u applied %" PRIu64 " after %" PRIu64, v->id, index,
			  v->m.index);
	grow(&s->hist, &s->cap_hist, index + 1, sizeof(*s->hist));
	if (index < s->cap_dur && s->dur[index] && s->dur[index] != d)
		violation(
		    s, "voter %u applied another entry at %" PRIu64 ", durable (term %" PRIu64 ")",
		    v->id, index, e->term);
	if (s->hist[index] && s->hist[index] != d) {
		/* Only a power cut can undo an applied entry (see run_seed). */
		if (!lost_to_power(s, index, s->hist[index]) && !lost_to_power(s, index, d))
			violation(
			    s, "voter %u applied another entry at %" PRIu64 " (term %" PRIu64 ")",
			    v->id, index, e->term);
		trace(s, "%u applies another entry at %" PRIu64 ": a power cut undid one", v->id,
		      index);
		s->losses++;
	}
	s->hist[index] = d;
	model_apply(&v->m, index, d, e->type == PIFS_RAFT_DATA);
	if (e->type == PIFS_RAFT_DATA) {
		uint64_t k;
		struct proposal *p;

		cr_assert_eq(e->len, sizeof(k));
		memcpy(&k, e->data, sizeof(k));
		cr_assert_lt(k, s->nprop);
		p = &s->prop[k];
		if (p->index != index)
			violation(s,
				  "entry %" PRIu64 " proposed at %" PRIu64 " applied at %" PRIu64,
				  k, p->index, index);
		if (p->leader == v->id && p->life == v->life && !p->acked) {
			p->acked = true;
			p->digest = d;
			s->acks++;
		}
	}
	return 0;
}

static ssize_t io_snap_read(void *ctx, uint64_t off, void *buf, size_t cap)
{
	struct voter *v = ctx;
	size_t n;

	if (off >= SNAP_BYTES)
		return 0;
	n = SNAP_BYTES - off < cap ? SNAP_BYTES - off : cap;
	memcpy(buf, v->d.snap + off, n);
	return (ssize_t)n;
}

static int io_snap_write(void *ctx, uint64_t off, const void *p, size_t len)
{
	struct voter *v = ctx;

	if (off == 0)
		v->rcv_len = 0;
	if (off != v->rcv_len)
		violation(v->s, "voter %u: snapshot piece at %" PRIu64 " after %zu", v->id, off,
			  v->rcv_len);
	if (v->rcv_len + len > SNAP_BYTES)
		return -EFBIG;
	memcpy(v->rcv + v->rcv_len, p, len);
	v->rcv_len += len;
	return 0;
}

static int io_snap_install(void *ctx, uint64_t index, uint64_t term,
			   const struct pifs_raft_conf *conf, uint64_t total)
{
	struct voter *v = ctx;
	struct model m;

	if (total != SNAP_BYTES || v->rcv_len != total || model_get(&m, v->rcv) < 0)
		return -EBADMSG;
	if (m.index != index)
		violation(v->s, "voter %u: snapshot of %" PRIu64 " sent as %" PRIu64, v->id,
			  m.index, index);
	trace(v->s, "%u installs a snapshot at %" PRIu64 " (applied %" PRIu64 ")", v->id, index,
	      v->m.index);
	v->m = m;
	memcpy(v->d.snap, v->rcv, SNAP_BYTES);
	v->d.snap_index = index;
	v->d.snap_term = term;
	v->d.conf = *conf;
	v->d.lo = index + 1;
	v->d.hi = v->d.written = v->d.synced = index;
	v->d.installing = true;
	return 0;
}

/* Voters come and go. */

static void observe(struct sim *s, struct voter *v);

static void voter_up(struct sim *s, struct voter *v)
{
	struct pifs_raft_opts o = {.id = v->id,
				   .seed = s->seed * 31 + v->id * 7 + v->life,
				   .heartbeat_ms = HEARTBEAT_MS,
				   .election_ms = ELECTION_MS,
				   .max_append_bytes = s->f.max_append,
				   .snap_piece = s->f.snap_piece};
	struct pifs_raft_io io = {.ctx = v,
				  .log_append = io_append,
				  .log_write = io_write,
				  .log_sync = io_sync,
				  .log_truncate = io_truncate,
				  .set_hard = io_hard,
				  .send = io_send,
				  .apply = io_apply,
				  .snap_read = io_snap_read,
				  .snap_write = io_snap_write,
				  .snap_install = io_snap_install};
	struct pifs_raft_state st = {.term = v->d.term,
				     .vote = v->d.vote,
				     .snap_index = v->d.snap_index,
				     .snap_term = v->d.snap_term,
				     .conf = v->d.conf,
				     .applied = v->d.snap_index};

	v->exists = true;
	v->life++;
	v->m = (struct model){0, 0, 0};
	v->sync_at = 0;
	v->want_snap = false;
	v->dseen = 0;
	if (v->d.snap_index)
		cr_assert_eq(model_get(&v->m, v->d.snap), 0);
	/* A power cut may leave the log behind the (durable) snapshot. */
	if (v->d.hi < v->d.snap_index)
		v->d.hi = v->d.written = v->d.synced = v->d.snap_index;
	cr_assert_eq(pifs_raft_new(&o, &st, &io, &v->r), 0);
	for (uint64_t i = v->d.snap_index + 1; i <= v->d.hi; i++) {
		const struct dent *de = &v->d.ent[i];
		struct pifs_raft_entry e = {de->term, de->type, de->data, de->len};

		cr_assert_eq(pifs_raft_load(v->r, i, &e), 0);
	}
	cr_assert_eq(pifs_raft_tick(v->r, s->now), 0);
	trace(s, "%u up (life %u, term %" PRIu64 ", log %" PRIu64 "..%" PRIu64 ")", v->id, v->life,
	      v->d.term, v->d.snap_index, v->d.hi);
	observe(s, v);
}

/* The disk of @v loses what was not synced: a power cut. */
static void lose_power(struct sim *s, struct voter *v)
{
	struct disk *d = &v->d;

	grow(&s->lost, &s->cap_lost, d->written + 1, sizeof(*s->lost));
	for (uint64_t i = d->synced + 1; i <= d->written; i++)
		s->lost[i].d[v->id] = disk_digest(d, i);
	d->hi = d->written = d->synced;
	s->power_cuts++;
}

/* The process dies: what was queued is lost; on a @power_cut, what was
 * not synced too. Term and vote always survive. */
static void voter_down(struct sim *s, struct voter *v, bool power_cut)
{
	if (s->crash_at == 0 && s->heal_at == 0 && pifs_raft_role(v->r) == PIFS_RAFT_LEADER) {
		s->crash_at = s->now;
		s->crash_term = pifs_raft_term(v->r);
	}
	pifs_raft_free(v->r);
	v->r = NULL;
	v->d.hi = v->d.written;
	if (power_cut)
		lose_power(s, v);
	v->rcv_len = 0;
	v->d.installing = false;
	v->sync_at = 0;
	trace(s, "%u %s (log to %" PRIu64 ")", v->id, power_cut ? "loses power" : "crashes",
	      v->d.hi);
}

/* The syncer of @v: it fdatasyncs the log 5 to 50 ms after a write, and
 * tells Raft (as metad's note_synced does). */
static void syncer(struct sim *s, struct voter *v)
{
	if (v->sync_at == 0) {
		if (v->d.written > v->d.synced)
			v->sync_at = s->now + 5 + (int64_t)pick(s, 46);
		return;
	}
	if (s->now < v->sync_at)
		return;
	v->sync_at = 0;
	v->d.synced = v->d.written;
	cr_assert_eq(pifs_raft_synced(v->r, v->d.synced), 0);
}

/* Record the entries that @v says are durable: on a leader, up to
 * pifs_raft_durable; elsewhere only up to its commit index too, since
 * entries past it may be stale ones of an older term. */
static void record_durable(struct sim *s, struct voter *v)
{
	uint64_t upto = pifs_raft_durable(v->r), i;

	if (pifs_raft_role(v->r) != PIFS_RAFT_LEADER && upto > pifs_raft_commit(v->r))
		upto = pifs_raft_commit(v->r);
	if (upto > v->d.written)
		violation(s, "voter %u: durable %" PRIu64 " past its written log %" PRIu64, v->id,
			  upto, v->d.written);
	for (i = v->dseen > v->d.lo - 1 ? v->dseen + 1 : v->d.lo; i <= upto; i++)
		note_durable(s, v->id, i, disk_digest(&v->d, i));
	if (upto > v->dseen)
		v->dseen = upto;
}

/* Record leaderships, and when a crashed leader was replaced. */
static void observe(struct sim *s, struct voter *v)
{
	uint64_t term;

	if (!v->r)
		return;
	record_durable(s, v);
	if (pifs_raft_role(v->r) != PIFS_RAFT_LEADER)
		return;
	term = pifs_raft_term(v->r);
	grow(&s->leader_of, &s->cap_leader, term + 1, sizeof(*s->leader_of));
	if (s->leader_of[term] == 0) {
		s->leader_of[term] = v->id;
		trace(s, "%u leads term %" PRIu64, v->id, term);
	} else if (s->leader_of[term] != v->id) {
		violation(s, "voters %u and %u both lead term %" PRIu64, s->leader_of[term], v->id,
			  term);
	}
	if (s->crash_at && term > s->crash_term && pifs_raft_leader_ready(v->r)) {
		grow(&elections, &cap_elections, nelections + 1, sizeof(*elections));
		elections[nelections++] = s->now - s->crash_at;
		s->crash_at = 0;
	}
}

static void step_voter(struct sim *s, struct voter *v, const struct pifs_msg *m)
{
	int rc = pifs_raft_step(v->r, m);

	if (rc == -ESTALE && s->power_cuts) {
		/* A power cut undid an entry it applied: it restarts. */
		trace(s, "%u finds an applied entry undone", v->id);
		voter_down(s, v, false);
		v->up_at = s->now + 200;
		return;
	}
	if (rc < 0)
		violation(s, "voter %u: step: %s", v->id, strerror(-rc));
	observe(s, v);
}

static void deliver(struct sim *s)
{
	size_t done = 0;

	while (done < s->nq && s->q[done].at <= s->now) {
		/* A copy: what the step sends may move the queue. */
		struct packet p = s->q[done++];
		struct voter *to = &s->v[p.to];
		struct pifs_msg m;

		if (to->r && to->group == s->v[p.from].group) {
			cr_assert_eq(pifs_proto_decode(p.bytes.p, p.bytes.len, &m), 0);
			step_voter(s, to, &m);
		}
		pifs_buf_fini(&p.bytes);
	}
	if (done == 0)
		return;
	memmove(s->q, s->q + done, (s->nq - done) * sizeof(*s->q));
	s->nq -= done;
	/* A few voters beating ten times a second keep a few dozen messages
	 * in flight: thousands are a storm of answers feeding themselves. */
	if (s->nq > MAXQ) {
		struct pifs_msg m;

		cr_assert_eq(pifs_proto_decode(s->q[0].bytes.p, s->q[0].bytes.len, &m), 0);
		violation(s, "a storm: %zu messages in flight, the first a %s", s->nq,
			  pifs_proto_name(m.type));
	}
}

/* A random up voter that leads, or NULL. */
static struct voter *any_leader(struct sim *s)
{
	uint32_t first = (uint32_t)pick(s, MAXV);

	for (uint32_t i = 0; i < MAXV; i++) {
		struct voter *v = &s->v[1 + (first + i) % MAXV];

		if (v->r && pifs_raft_role(v->r) == PIFS_RAFT_LEADER)
			return v;
	}
	return NULL;
}

/* A client asks @v to append an entry; returns its index, 0 if refused. */
static uint64_t propose(struct sim *s, struct voter *v)
{
	uint64_t k = s->nprop, index;

	if (pifs_raft_propose(v->r, &k, sizeof(k), &index) < 0)
		return 0;
	grow(&s->prop, &s->cap_prop, s->nprop + 1, sizeof(*s->prop));
	s->prop[s->nprop++] = (struct proposal){index, 0, v->id, v->life, false};
	return index;
}

static void flush(struct sim *s, struct voter *v)
{
	cr_assert_eq(pifs_raft_flush(v->r, s->f.sync || v->want_snap), 0);
	v->want_snap = false;
	observe(s, v);
}

static void clients(struct sim *s)
{
	struct voter *v = &s->v[1 + pick(s, MAXV)];
	uint64_t n = 1 + pick(s, 3);

	if (!chance(s, 100) || !v->r || pifs_raft_role(v->r) != PIFS_RAFT_LEADER)
		return;
	while (n-- > 0)
		propose(s, v);
	flush(s, v);
}

/* Add or remove one voter at random, through the leader. */
static void change_voters(struct sim *s)
{
	struct voter *l = any_leader(s), *v;
	struct pifs_raft_conf c;
	uint32_t id = 1 + (uint32_t)pick(s, MAXV), i, j = 0;
	uint64_t index;
	bool in;

	if (!l)
		return;
	c = *pifs_raft_conf(l->r);
	in = pifs_raft_is_voter(l->r, id);
	if (in && c.n == 1)
		return;
	if (in) {
		for (i = 0; i < c.n; i++)
			if (c.id[i] != id)
				c.id[j++] = c.id[i];
		c.n = j;
	} else {
		for (i = c.n; i > 0 && c.id[i - 1] > id; i--)
			c.id[i] = c.id[i - 1];
		c.id[i] = id;
		c.n++;
	}
	if (pifs_raft_propose_conf(l->r, &c, &index) < 0)
		return;
	trace(s, "%u proposes %s %u at %" PRIu64, l->id, in ? "removing" : "adding", id, index);
	v = &s->v[id];
	if (!in && !v->exists) {
		/* A new voter starts knowing the configuration it joins. */
		v->d.conf = c;
		voter_up(s, v);
	}
	flush(s, l);
}

/* Snapshot the model and let Raft drop the entries it covers, as metad's
 * maybe_snapshot does: only a state that is durable on a majority
 * (pifs_raft_durable); until then a leader flushes with sync, and the
 * others wait for the leader to say durable caught up. */
static void compact(struct sim *s, struct voter *v)
{
	uint64_t at = v->m.index;

	v->want_snap = false;
	if (!s->f.compact_every || at < v->d.snap_index + s->f.compact_every)
		return;
	if (at > pifs_raft_durable(v->r)) {
		v->want_snap = pifs_raft_role(v->r) == PIFS_RAFT_LEADER;
		return;
	}
	if (at != pifs_raft_applied(v->r))
		violation(s, "voter %u: model at %" PRIu64 ", raft applied %" PRIu64, v->id, at,
			  pifs_raft_applied(v->r));
	model_put(&v->m, v->d.snap);
	v->d.snap_index = at;
	v->d.snap_term = pifs_raft_term_at(v->r, at);
	pifs_raft_conf_at(v->r, at, &v->d.conf);
	cr_assert_neq(v->d.snap_term, 0);
	pifs_raft_compact(v->r, at, s->f.keep);
}

static bool connected(const struct sim *s)
{
	for (uint32_t id = 1; id <= MAXV; id++)
		if (s->v[id].exists && (!s->v[id].r || s->v[id].group != 0))
			return false;
	return s->heal_at == 0;
}

static void faults(struct sim *s)
{
	struct voter *v = &s->v[1 + pick(s, MAXV)];

	if (s->f.crashes && v->r && chance(s, 2)) {
		voter_down(s, v, s->f.power_cuts && chance(s, 400));
		v->up_at = s->now + 200 + (int64_t)pick(s, 6000);
	}
	if (s->f.power_cuts && pick(s, 3000) == 0) {
		/* Every voter loses power at the same instant: those down lose
		 * what their kernel had not written back either. */
		trace(s, "every voter loses power");
		for (uint32_t id = 1; id <= MAXV; id++) {
			v = &s->v[id];
			if (v->r) {
				voter_down(s, v, true);
				v->up_at = s->now + 200 + (int64_t)pick(s, 3000);
			} else if (v->exists) {
				lose_power(s, v);
			}
		}
	}
	for (uint32_t id = 1; id <= MAXV; id++) {
		v = &s->v[id];
		if (v->exists && !v->r && s->now >= v->up_at)
			voter_up(s, v);
	}
	if (s->heal_at && s->now >= s->heal_at) {
		for (uint32_t id = 1; id <= MAXV; id++)
			s->v[id].group = 0;
		s->heal_at = 0;
		trace(s, "the partition heals");
	} else if (s->f.partitions && !s->heal_at && chance(s, 1)) {
		char groups[MAXV + 1] = {0};

		for (uint32_t id = 1; id <= MAXV; id++) {
			s->v[id].group = (int)pick(s, 2);
			groups[id - 1] = (char)('a' + s->v[id].group);
		}
		s->heal_at = s->now + 300 + (int64_t)pick(s, 6000);
		s->crash_at = 0; /* an election across a partition is no measure */
		trace(s, "partition: voters 1.. in groups %s", groups);
	}
	if (s->f.conf_changes && chance(s, 1))
		change_voters(s);
}

/* One step of virtual time. */
static void step(struct sim *s, bool chaos)
{
	s->now += STEP;
	deliver(s);
	for (uint32_t id = 1; id <= MAXV; id++) {
		struct voter *v = &s->v[id];

		if (!v->r)
			continue;
		if (!s->no_syncer)
			syncer(s, v);
		cr_assert_eq(pifs_raft_tick(v->r, s->now), 0);
		observe(s, v);
		compact(s, v);
		/* metad flushes at every turn; a leader that wants a snapshot
		 * makes that flush sync. */
		if (v->want_snap)
			flush(s, v);
	}
	if (chaos)
		faults(s);
	if (!s->clients)
		return;
	clients(s);
	/* While everyone is up and connected, clients must get answers. */
	if (!connected(s) || s->f.loss > 50) {
		s->healthy_for = 0;
	} else if (s->healthy_for == 0 || s->acks > s->acks_at_healthy) {
		s->healthy_for = STEP;
		s->acks_at_healthy = s->acks;
	} else if ((s->healthy_for += STEP) > 8 * ELECTION_MS) {
		violation(s, "no entry acknowledged in %" PRId64 " ms with every voter connected",
			  s->healthy_for);
	}
}

static void sim_init(struct sim *s, uint64_t seed, uint32_t n, const struct faults *f)
{
	memset(s, 0, sizeof(*s));
	s->seed = s->rng = seed;
	s->now = 1000;
	s->f = *f;
	for (uint32_t id = 1; id <= MAXV; id++) {
		s->v[id].s = s;
		s->v[id].id = id;
		s->v[id].d.lo = 1;
	}
	grow(&s->prop, &s->cap_prop, 1, sizeof(*s->prop));
	s->nprop = 1;
	for (uint32_t id = 1; id <= n; id++) {
		s->v[id].d.conf.n = n;
		for (uint32_t j = 1; j <= n; j++)
			s->v[id].d.conf.id[j - 1] = j;
	}
	for (uint32_t id = 1; id <= n; id++)
		voter_up(s, &s->v[id]);
}

static void sim_fini(struct sim *s)
{
	for (uint32_t id = 1; id <= MAXV; id++) {
		pifs_raft_free(s->v[id].r);
		free(s->v[id].d.ent);
	}
	for (size_t i = 0; i < s->nq; i++)
		pifs_buf_fini(&s->q[i].bytes);
	free(s->q);
	free(s->leader_of);
	free(s->hist);
	free(s->dur);
	free(s->lost);
	free(s->prop);
}

static void sim_run(struct sim *s, int64_t ms)
{
	for (int64_t t = 0; t < ms; t += STEP)
		step(s, false);
}

/* The one leader among the voters in group 0, or 0. */
static uint32_t sim_leader(struct sim *s)
{
	uint32_t who = 0;

	for (uint32_t id = 1; id <= MAXV; id++) {
		struct voter *v = &s->v[id];

		if (!v->r || v->group != 0 || pifs_raft_role(v->r) != PIFS_RAFT_LEADER)
			continue;
		cr_assert_eq(who, 0, "two leaders among the connected voters");
		who = id;
	}
	return who;
}

/* Is the cluster at rest: a ready leader, every voter of its configuration
 * applied to its last index, which is committed, and an entry acknowledged
 * since @acks? Returns that leader, or NULL. */
static struct voter *quiet(struct sim *s, uint64_t acks)
{
	struct voter *l = any_leader(s);
	const struct pifs_raft_conf *c;
	uint64_t last;

	if (!l || !pifs_raft_leader_ready(l->r) || s->acks <= acks)
		return NULL;
	last = pifs_raft_last_index(l->r);
	if (pifs_raft_commit(l->r) != last)
		return NULL;
	c = pifs_raft_conf(l->r);
	for (uint32_t i = 0; i < c->n; i++) {
		struct voter *v = &s->v[c->id[i]];

		if (!v->r || v->m.index != last)
			return NULL;
	}
	return l;
}

/* After the faults: everything heals and restarts; then the final checks. */
static void settle_and_check(struct sim *s)
{
	uint64_t acks = s->acks, hash = 0, lost_acks = 0, *fin;
	const struct pifs_raft_conf *c;
	struct voter *l = NULL;
	uint8_t want[SNAP_BYTES], got[SNAP_BYTES];

	for (uint32_t id = 1; id <= MAXV; id++)
		s->v[id].group = 0;
	s->heal_at = 0;
	s->f.loss = s->f.dup = 0;
	trace(s, "everything heals");
	for (uint32_t id = 1; id <= MAXV; id++)
		if (s->v[id].exists && !s->v[id].r)
			voter_up(s, &s->v[id]);
	for (int64_t t = 0; !(l = quiet(s, acks)); t += STEP) {
		if (t > 30 * ELECTION_MS)
			violation(s, "not quiet 30 election timeouts after healing");
		step(s, false);
	}
	c = pifs_raft_conf(l->r);
	model_put(&l->m, want);
	for (uint32_t i = 0; i < c->n; i++) {
		struct voter *v = &s->v[c->id[i]];

		model_put(&v->m, got);
		if (memcmp(want, got, SNAP_BYTES) != 0)
			violation(s, "voters %u and %u differ at %" PRIu64 "/%" PRIu64, l->id,
				  v->id, l->m.index, v->m.index);
	}
	/* The final state is exactly what the final leader's log applies: the
	 * entries of its disk past its snapshot, and before it the durable
	 * ones (a snapshot is never taken past what is durable)... */
	fin = calloc(l->m.index + 1, sizeof(*fin));
	cr_assert_not_null(fin);
	for (uint64_t i = 1; i <= l->m.index; i++) {
		uint64_t h = i < s->cap_hist ? s->hist[i] : 0;

		if (i > l->d.snap_index && i >= l->d.lo && i <= l->d.written)
			fin[i] = disk_digest(&l->d, i);
		else if (i < s->cap_dur && s->dur[i])
			fin[i] = s->dur[i];
		else
			violation(s, "entry %" PRIu64 " of leader %u's snapshot was not durable", i,
				  l->id);
		if (h != fin[i] && !lost_to_power(s, i, h))
			violation(s, "entry %" PRIu64 " in the final state was never applied", i);
		hash = fnv(fnv(hash, &i, sizeof(i)), &fin[i], sizeof(fin[i]));
	}
	if (hash != l->m.hash)
		violation(s, "the final state is not what the leader's log applies");
	/* ...every durable entry is in it... */
	for (uint64_t i = 1; i <= s->dur_max; i++)
		if (s->dur[i] && (i > l->m.index || fin[i] != s->dur[i]))
			violation(s, "durable entry %" PRIu64 " is lost", i);
	/* ...and so is every acknowledged entry, unless a power cut took it
	 * from a voter's disk before it was durable. */
	for (uint64_t k = 1; k < s->nprop; k++) {
		const struct proposal *p = &s->prop[k];

		if (!p->acked || (p->index <= l->m.index && fin[p->index] == p->digest))
			continue;
		if (!lost_to_power(s, p->index, p->digest))
			violation(s, "acknowledged entry %" PRIu64 " at %" PRIu64 " is lost", k,
				  p->index);
		lost_acks++;
	}
	free(fin);
	all_power_cuts += s->power_cuts;
	all_losses += s->losses;
	all_lost_acks += lost_acks;
	if (lost_acks || s->losses)
		trace(s,
		      "power cuts undid %" PRIu64 " acknowledged entries, %" PRIu64 " applications",
		      lost_acks, s->losses);
}

static uint64_t env(const char *name, uint64_t dflt)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/* One seeded run: its faults, voters and timings all come from @seed. */
static void run_seed(uint64_t seed)
{
	static const unsigned loss[] = {0, 0, 10, 50, 150}, dup[] = {0, 20, 100};
	static const int64_t delay[] = {2, 20, 60};
	static const uint32_t voters[] = {1, 2, 3, 3, 3, 4, 5, 5};
	static const uint64_t every[] = {0, 3, 10, 40};
	static const uint32_t piece[] = {7, 8, 16, 64}, append[] = {64, 256, 1 << 20};
	uint64_t fixed = env("PIFS_RAFT_VOTERS", 0), r = seed;
	struct sim *s = calloc(1, sizeof(*s));
	struct faults f;

	cr_assert_not_null(s);
#define ONE_OF(a) (a)[rnd(&r) % (sizeof(a) / sizeof((a)[0]))]
	f = (struct faults){.loss = ONE_OF(loss),
			    .dup = ONE_OF(dup),
			    .delay = ONE_OF(delay),
			    .crashes = rnd(&r) % 4 != 0,
			    .power_cuts = rnd(&r) % 3 == 0 && env("PIFS_RAFT_POWER", 1),
			    .partitions = rnd(&r) % 4 != 0,
			    .conf_changes = !fixed && rnd(&r) % 2,
			    .sync = rnd(&r) % 2,
			    .compact_every = ONE_OF(every),
			    .keep = rnd(&r) % 4,
			    .snap_piece = ONE_OF(piece),
			    .max_append = ONE_OF(append)};
	sim_init(s, seed, fixed ? (uint32_t)fixed : ONE_OF(voters), &f);
#undef ONE_OF
	s->clients = true;
	trace(s, "loss %u dup %u delay %" PRId64 " crashes %d power %d partitions %d conf %d",
	      f.loss, f.dup, f.delay, f.crashes, f.power_cuts, f.partitions, f.conf_changes);
	for (int64_t t = 0; t < 60000; t += STEP)
		step(s, true);
	settle_and_check(s);
	sim_fini(s);
	free(s);
}

static int cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

Test(raft_sim, seeded_runs_keep_every_promise, .timeout = 600)
{
	uint64_t one = env("PIFS_RAFT_SEED", 0);
	uint64_t base = one ? one : env("PIFS_RAFT_SEED_BASE", 1);
	uint64_t n = one ? 1 : env("PIFS_RAFT_SEEDS", 2000);

	for (uint64_t seed = base; seed < base + n; seed++)
		run_seed(seed);
	if (env("PIFS_RAFT_STATS", 0) && nelections) {
		qsort(elections, nelections, sizeof(*elections), cmp_ms);
		printf("election after a leader crash, %zu of them: median %" PRId64
		       " ms, p99 %" PRId64 " ms, max %" PRId64 " ms\n",
		       nelections, elections[nelections / 2], elections[nelections * 99 / 100],
		       elections[nelections - 1]);
		printf("power cuts: %" PRIu64 "; they undid %" PRIu64
		       " applied entries and %" PRIu64 " acknowledged ones\n",
		       all_power_cuts, all_losses, all_lost_acks);
	}
	free(elections);
}

/* The focused scenarios: a quiet network, driven by hand. */

static const struct faults quiet_net = {.delay = 2, .max_append = 1 << 20, .snap_piece = 1 << 20};

static bool applied_everywhere(struct sim *s, uint32_t n, uint64_t index, uint64_t k)
{
	for (uint32_t id = 1; id <= n; id++)
		if (s->v[id].m.index < index)
			return false;
	return s->prop[k].index == index && s->hist[index] != 0;
}

Test(raft, three_voters_elect_one_leader_and_replicate)
{
	struct sim s;
	uint32_t l;
	uint64_t index, k;

	sim_init(&s, 7, 3, &quiet_net);
	sim_run(&s, 3000);
	l = sim_leader(&s);
	cr_assert_neq(l, 0, "a leader within 3 s");
	cr_assert(pifs_raft_lease(s.v[l].r, s.now));
	k = s.nprop;
	index = propose(&s, &s.v[l]);
	flush(&s, &s.v[l]);
	sim_run(&s, 500);
	cr_assert(s.prop[k].acked);
	cr_assert(applied_everywhere(&s, 3, index, k), "every voter applied the entry");
	sim_fini(&s);
}

Test(raft, a_cut_off_leader_is_replaced_and_nothing_committed_is_lost)
{
	struct sim s;
	uint32_t old, l;
	uint64_t first, second, k1, k2;

	sim_init(&s, 7, 3, &quiet_net);
	sim_run(&s, 3000);
	old = sim_leader(&s);
	cr_assert_neq(old, 0);
	k1 = s.nprop;
	first = propose(&s, &s.v[old]);
	flush(&s, &s.v[old]);
	sim_run(&s, 500);
	cr_assert(s.prop[k1].acked);
	s.v[old].group = 1;
	/* Its lease (0.8 election timeouts) ends before another can be
	 * elected (one timeout after the followers last heard it). */
	sim_run(&s, 900);
	cr_assert_not(pifs_raft_lease(s.v[old].r, s.now), "the cut-off leader lost its lease");
	sim_run(&s, 3100);
	l = sim_leader(&s);
	cr_assert_neq(l, 0, "a new leader within 4 s of the cut");
	cr_assert_neq(l, old);
	cr_assert_neq(pifs_raft_role(s.v[old].r), PIFS_RAFT_LEADER,
		      "check-quorum made the old leader step down");
	k2 = s.nprop;
	second = propose(&s, &s.v[l]);
	flush(&s, &s.v[l]);
	sim_run(&s, 500);
	s.v[old].group = 0;
	sim_run(&s, 2000);
	cr_assert_eq(sim_leader(&s), l, "the old leader's return deposes nobody (pre-vote)");
	cr_assert(applied_everywhere(&s, 3, first, k1));
	cr_assert(applied_everywhere(&s, 3, second, k2), "every voter caught up");
	sim_fini(&s);
}

Test(raft, a_single_voter_commits_alone)
{
	struct sim s;
	uint64_t index, k;

	sim_init(&s, 7, 1, &quiet_net);
	sim_run(&s, 3000);
	cr_assert_eq(sim_leader(&s), 1);
	k = s.nprop;
	index = propose(&s, &s.v[1]);
	flush(&s, &s.v[1]);
	sim_run(&s, 20);
	cr_assert(s.prop[k].acked);
	cr_assert(applied_everywhere(&s, 1, index, k));
	sim_fini(&s);
}

/* One power cut can undo a committed entry that a voter has applied: a and
 * b write it (committed), c never gets it, a loses power before its syncer
 * runs, and a and c elect a leader without it. b applied it and keeps it:
 * it must end up with the others' state all the same. */
Test(raft, a_voter_that_applied_what_a_power_cut_undid_catches_up)
{
	struct sim s;
	uint32_t a, b, c;
	uint64_t x, k;

	sim_init(&s, 7, 3, &quiet_net);
	sim_run(&s, 3000);
	a = sim_leader(&s);
	cr_assert_neq(a, 0);
	b = a % 3 + 1;
	c = b % 3 + 1;
	s.no_syncer = true;
	s.v[c].group = 1;
	k = s.nprop;
	x = propose(&s, &s.v[a]);
	flush(&s, &s.v[a]);
	sim_run(&s, 20);
	propose(&s, &s.v[a]);
	flush(&s, &s.v[a]);
	sim_run(&s, 20);
	cr_assert(s.prop[k].acked);
	cr_assert_geq(s.v[b].m.index, x, "b applied the entry");
	voter_down(&s, &s.v[a], true);
	s.v[b].group = 1;
	s.v[c].group = 0;
	s.no_syncer = false;
	voter_up(&s, &s.v[a]);
	sim_run(&s, 5000);
	cr_assert_neq(sim_leader(&s), 0, "a and c elect a leader");
	cr_assert_neq(sim_leader(&s), b);
	s.v[b].group = 0;
	sim_run(&s, 1000);
	cr_assert_null(s.v[b].r, "b found its applied entry undone, and stopped");
	voter_up(&s, &s.v[b]);
	sim_run(&s, 5000);
	for (uint32_t id = 1; id <= 3; id++)
		trace(&s, "voter %u at %" PRIu64 " hash %016" PRIx64, id, s.v[id].m.index,
		      s.v[id].m.hash);
	if (s.v[b].m.hash != s.v[a].m.hash || s.v[c].m.hash != s.v[a].m.hash)
		violation(&s, "the voters diverged after a power cut undid an applied entry");
	sim_fini(&s);
}
