/* raft.c - Raft for the metadata log: election, replication, snapshots,
 * one-voter membership changes. See raft.h for what it promises.
 *
 * The log in memory holds the entries after @base (the last entry dropped
 * from memory, whose term and configuration are kept); the host's latest
 * snapshot is at @snap_index >= @base, so a voter that needs an entry at or
 * below @base gets the snapshot instead. */
#include "raft.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A peer's ack stamp must be this recent (in tenths of the election
 * timeout) for the read lease: the margin covers clocks that run at
 * slightly different rates on two Pis. */
#define LEASE_TENTHS 8

struct ent {
	uint64_t term;
	uint8_t type;
	uint32_t len;
	uint8_t *data; /* owned; NULL when len is 0 */
};

struct peer {
	uint32_t id;
	uint64_t next, match, synced;
	int64_t contact_ms;  /* when it last answered, 0 never */
	int64_t stamp;	     /* the newest of our stamps it echoed */
	int64_t match_stamp; /* the stamp of the append that moved match last */
	bool granted;	     /* its vote in the current election */
	bool probe;	     /* one append at a time until it matches */
	/* A snapshot on its way: the index sent, the next offset it wants,
	 * and its size once the last piece was read (0 before). */
	bool snap;
	uint64_t snap_index, snap_off, snap_total;
};

struct pifs_raft {
	struct pifs_raft_opts o;
	struct pifs_raft_io io;
	uint64_t rng;

	uint64_t term;
	uint32_t vote;
	enum pifs_raft_role role;
	uint32_t leader;

	/* The log in memory: entries base+1 .. base+nlog. */
	struct ent *log;
	size_t nlog, caplog;
	uint64_t base, base_term;
	struct pifs_raft_conf base_conf; /* in force at @base */
	struct pifs_raft_conf conf;	 /* the latest, from the log or base_conf */

	uint64_t snap_index, snap_term;
	struct pifs_raft_conf snap_conf;

	uint64_t commit, applied;
	uint64_t written; /* the last index io.log_write covered */
	uint64_t synced;  /* the last index known durable here */
	bool unwritten;	  /* appended since the last io.log_write */
	uint64_t noop;	  /* leader: the index of its term's first entry */
	uint64_t durable; /* committed and synced on a majority, as last heard */

	int64_t now;
	bool started;
	int64_t election_at; /* non-leaders: when to campaign */
	int64_t heartbeat_at, quorum_at;
	int64_t heard_ms; /* when a leader was last heard (or the start) */

	struct peer peer[PIFS_RAFT_MAX_VOTERS];
	size_t npeer;

	/* Receiving a snapshot: its index and the next offset expected. */
	uint64_t rcv_index, rcv_off;
	bool rcv_active;

	struct pifs_buf out;  /* a message's entries list */
	uint8_t *piece;	      /* a snapshot piece being sent; snap_piece bytes */
	int err;	      /* the first io error: the instance is unusable */
};

static uint64_t rnd(struct pifs_raft *r)
{
	uint64_t z = (r->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t last_index(const struct pifs_raft *r)
{
	return r->base + r->nlog;
}

static const struct ent *entry(const struct pifs_raft *r, uint64_t index)
{
	if (index <= r->base || index > last_index(r))
		return NULL;
	return &r->log[index - r->base - 1];
}

uint64_t pifs_raft_term_at(const struct pifs_raft *r, uint64_t index)
{
	const struct ent *e = entry(r, index);

	if (e)
		return e->term;
	if (index == r->base)
		return r->base_term;
	if (index == r->snap_index)
		return r->snap_term;
	return 0;
}

static uint64_t last_term(const struct pifs_raft *r)
{
	return pifs_raft_term_at(r, last_index(r));
}

bool pifs_raft_is_voter(const struct pifs_raft *r, uint32_t id)
{
	for (uint32_t i = 0; i < r->conf.n; i++)
		if (r->conf.id[i] == id)
			return true;
	return false;
}

static size_t quorum(const struct pifs_raft *r)
{
	return r->conf.n / 2 + 1;
}

int pifs_raft_conf_encode(const struct pifs_raft_conf *conf, struct pifs_buf *out)
{
	uint8_t b[4 * PIFS_RAFT_MAX_VOTERS];

	for (uint32_t i = 0; i < conf->n; i++) {
		b[4 * i] = (uint8_t)(conf->id[i] >> 24);
		b[4 * i + 1] = (uint8_t)(conf->id[i] >> 16);
		b[4 * i + 2] = (uint8_t)(conf->id[i] >> 8);
		b[4 * i + 3] = (uint8_t)conf->id[i];
	}
	return pifs_buf_append(out, b, 4 * conf->n);
}

int pifs_raft_conf_decode(const void *p, size_t len, struct pifs_raft_conf *conf)
{
	const uint8_t *b = p;

	if (len == 0 || len % 4 || len / 4 > PIFS_RAFT_MAX_VOTERS)
		return -EBADMSG;
	conf->n = (uint32_t)(len / 4);
	for (uint32_t i = 0; i < conf->n; i++) {
		conf->id[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
			      (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
		if (conf->id[i] == 0 || (i > 0 && conf->id[i] <= conf->id[i - 1]))
			return -EBADMSG;
	}
	return 0;
}

static bool conf_valid(const struct pifs_raft_conf *c)
{
	if (c->n == 0 || c->n > PIFS_RAFT_MAX_VOTERS)
		return false;
	for (uint32_t i = 0; i < c->n; i++)
		if (c->id[i] == 0 || (i > 0 && c->id[i] <= c->id[i - 1]))
			return false;
	return true;
}

void pifs_raft_conf_at(const struct pifs_raft *r, uint64_t index, struct pifs_raft_conf *out)
{
	*out = r->base_conf;
	for (uint64_t i = r->base + 1; i <= index && i <= last_index(r); i++) {
		const struct ent *e = entry(r, i);

		if (e->type == PIFS_RAFT_CONF)
			pifs_raft_conf_decode(e->data, e->len, out);
	}
}

/* The peers follow the configuration; a voter that stays keeps its state. */
static void sync_peers(struct pifs_raft *r)
{
	struct peer old[PIFS_RAFT_MAX_VOTERS];
	size_t nold = r->npeer, i, j;

	memcpy(old, r->peer, sizeof(old));
	r->npeer = 0;
	for (i = 0; i < r->conf.n; i++) {
		struct peer *p = &r->peer[r->npeer++];

		for (j = 0; j < nold; j++)
			if (old[j].id == r->conf.id[i])
				break;
		if (j < nold) {
			*p = old[j];
			continue;
		}
		memset(p, 0, sizeof(*p));
		p->id = r->conf.id[i];
		p->next = last_index(r) + 1;
		p->probe = true;
		/* A voter that just joined has the grace of a new term. */
		p->contact_ms = r->now;
	}
}

static void refresh_conf(struct pifs_raft *r)
{
	pifs_raft_conf_at(r, last_index(r), &r->conf);
	sync_peers(r);
}

static struct peer *find_peer(struct pifs_raft *r, uint32_t id)
{
	for (size_t i = 0; i < r->npeer; i++)
		if (r->peer[i].id == id)
			return &r->peer[i];
	return NULL;
}

static int fail(struct pifs_raft *r, int rc)
{
	if (rc < 0 && !r->err)
		r->err = rc;
	return rc;
}

static int set_hard(struct pifs_raft *r, uint64_t term, uint32_t vote)
{
	int rc;

	if (term == r->term && vote == r->vote)
		return 0;
	rc = r->io.set_hard(r->io.ctx, term, vote);
	if (rc < 0)
		return fail(r, rc);
	r->term = term;
	r->vote = vote;
	return 0;
}

static int64_t election_timeout(struct pifs_raft *r)
{
	return (int64_t)r->o.election_ms + (int64_t)(rnd(r) % r->o.election_ms);
}

static void reset_election(struct pifs_raft *r)
{
	r->election_at = r->now + election_timeout(r);
}

static int become_follower(struct pifs_raft *r, uint64_t term, uint32_t leader)
{
	int rc = 0;

	if (term > r->term)
		rc = set_hard(r, term, 0);
	r->role = PIFS_RAFT_FOLLOWER;
	r->leader = leader;
	reset_election(r);
	return rc;
}

/* Append one entry to the memory log and queue it with the host. */
static int append_entry(struct pifs_raft *r, uint64_t term, uint8_t type, const void *data,
			uint32_t len)
{
	struct pifs_raft_entry pe = {term, type, data, len};
	struct ent *e;
	int rc;

	if (r->nlog == r->caplog) {
		size_t cap = r->caplog ? r->caplog * 2 : 64;
		struct ent *nl = realloc(r->log, cap * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		r->log = nl;
		r->caplog = cap;
	}
	e = &r->log[r->nlog];
	e->term = term;
	e->type = type;
	e->len = len;
	e->data = NULL;
	if (len) {
		e->data = malloc(len);
		if (!e->data)
			return -ENOMEM;
		memcpy(e->data, data, len);
	}
	rc = r->io.log_append(r->io.ctx, last_index(r) + 1, &pe);
	if (rc < 0) {
		free(e->data);
		return fail(r, rc);
	}
	r->nlog++;
	r->unwritten = true;
	if (type == PIFS_RAFT_CONF)
		refresh_conf(r);
	return 0;
}

/* Drop entries @from and after, here and at the host. */
static int truncate_from(struct pifs_raft *r, uint64_t from)
{
	int rc = r->io.log_truncate(r->io.ctx, from);

	if (rc < 0)
		return fail(r, rc);
	while (last_index(r) >= from && r->nlog > 0) {
		free(r->log[r->nlog - 1].data);
		r->nlog--;
	}
	if (r->written >= from)
		r->written = from - 1;
	if (r->synced >= from)
		r->synced = from - 1;
	refresh_conf(r);
	return 0;
}

static int write_log(struct pifs_raft *r)
{
	int rc;

	if (!r->unwritten)
		return 0;
	rc = r->io.log_write(r->io.ctx);
	if (rc < 0)
		return fail(r, rc);
	r->unwritten = false;
	r->written = last_index(r);
	return 0;
}

static int sync_log(struct pifs_raft *r)
{
	int rc;

	if (r->synced >= r->written)
		return 0;
	rc = r->io.log_sync(r->io.ctx);
	if (rc < 0)
		return fail(r, rc);
	r->synced = r->written;
	return 0;
}

static int send(struct pifs_raft *r, uint32_t to, struct pifs_msg *m)
{
	r->io.send(r->io.ctx, to, m);
	return 0;
}

/* Apply what is committed and not applied yet. */
static int apply_committed(struct pifs_raft *r)
{
	while (r->applied < r->commit) {
		const struct ent *e = entry(r, r->applied + 1);
		struct pifs_raft_entry pe;
		int rc;

		if (!e)
			break; /* cannot happen: compaction keeps unapplied entries */
		pe = (struct pifs_raft_entry){e->term, e->type, e->data, e->len};
		rc = r->io.apply(r->io.ctx, r->applied + 1, &pe);
		if (rc < 0)
			return fail(r, rc);
		r->applied++;
	}
	return 0;
}

static int send_vote(struct pifs_raft *r, uint32_t to, bool pre)
{
	struct pifs_msg m;

	pifs_msg_init(&m, PIFS_MSG_RAFT_VOTE);
	m.u.RAFT_VOTE.from = r->o.id;
	m.u.RAFT_VOTE.to = to;
	m.u.RAFT_VOTE.term = pre ? r->term + 1 : r->term;
	m.u.RAFT_VOTE.last_index = last_index(r);
	m.u.RAFT_VOTE.last_term = last_term(r);
	m.u.RAFT_VOTE.pre = pre;
	return send(r, to, &m);
}

static size_t count_granted(const struct pifs_raft *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->npeer; i++)
		if (r->peer[i].granted)
			n++;
	return n;
}

static int become_leader(struct pifs_raft *r);

/* A voter whose removal is in its log but not committed is still a voter
 * of the configuration in force, and may be the only one holding the
 * removal: if it stayed silent, the others (whose logs are behind its own)
 * could never elect anyone. So it campaigns, counting the votes of the new
 * configuration, a majority of which overlaps any majority of the old. */
static bool may_campaign(const struct pifs_raft *r)
{
	struct pifs_raft_conf c;

	if (r->o.wait_for_leader && r->term == 0 && last_index(r) == 0)
		return false;
	if (pifs_raft_is_voter(r, r->o.id))
		return true;
	pifs_raft_conf_at(r, r->commit, &c);
	for (uint32_t i = 0; i < c.n; i++)
		if (c.id[i] == r->o.id)
			return true;
	return false;
}

/* Ask for votes: a pre-vote first (@pre), which changes no term. */
static int campaign(struct pifs_raft *r, bool pre)
{
	struct peer *self;
	int rc;

	if (!may_campaign(r))
		return 0;
	r->leader = 0;
	if (pre) {
		r->role = PIFS_RAFT_PRECANDIDATE;
	} else {
		rc = set_hard(r, r->term + 1, r->o.id);
		if (rc < 0)
			return rc;
		r->role = PIFS_RAFT_CANDIDATE;
	}
	reset_election(r);
	for (size_t i = 0; i < r->npeer; i++)
		r->peer[i].granted = false;
	/* A voter that is leaving counts only the votes of the others. */
	self = find_peer(r, r->o.id);
	if (self)
		self->granted = true;
	if (count_granted(r) >= quorum(r))
		return pre ? campaign(r, false) : become_leader(r);
	for (size_t i = 0; i < r->npeer; i++)
		if (r->peer[i].id != r->o.id)
			send_vote(r, r->peer[i].id, pre);
	return 0;
}

static int send_snap(struct pifs_raft *r, struct peer *p);

/* Send @p what it lacks from next on (or nothing, as a heartbeat); a voter
 * whose next entry is compacted away gets the next piece of the snapshot. */
static int send_append(struct pifs_raft *r, struct peer *p, bool sync)
{
	struct pifs_msg m;
	uint64_t prev = p->next - 1, i, n = 0;
	size_t bytes = 0;
	int rc;

	if (p->next <= r->base) {
		/* Its next entry went from memory: it needs the snapshot. */
		if (!p->snap || p->snap_index != r->snap_index) {
			p->snap = true;
			p->snap_index = r->snap_index;
			p->snap_off = 0;
			p->snap_total = 0;
		}
		return send_snap(r, p);
	}
	pifs_buf_reset(&r->out);
	for (i = p->next; i <= last_index(r) && i <= r->written; i++) {
		const struct ent *e = entry(r, i);
		struct pifs_raftent re = {e->term, e->type, {e->data, e->len}};

		if (n > 0 && bytes + e->len > r->o.max_append_bytes)
			break;
		rc = pifs_raftent_append(&r->out, &re);
		if (rc < 0)
			return fail(r, rc);
		bytes += e->len;
		n++;
	}
	pifs_msg_init(&m, PIFS_MSG_RAFT_APPEND);
	m.u.RAFT_APPEND.from = r->o.id;
	m.u.RAFT_APPEND.to = p->id;
	m.u.RAFT_APPEND.term = r->term;
	m.u.RAFT_APPEND.prev_index = prev;
	m.u.RAFT_APPEND.prev_term = pifs_raft_term_at(r, prev);
	m.u.RAFT_APPEND.commit = r->commit;
	m.u.RAFT_APPEND.flags = sync ? PIFS_RAFT_SYNC : 0;
	m.u.RAFT_APPEND.stamp = r->now;
	m.u.RAFT_APPEND.entries = pifs_list_of(&r->out, (uint32_t)n);
	m.u.RAFT_APPEND.durable = pifs_raft_durable(r);
	send(r, p->id, &m);
	/* Optimistically past what was sent: a loss shows as a refusal. */
	if (!p->probe)
		p->next = prev + n + 1;
	return 0;
}

static int send_snap(struct pifs_raft *r, struct peer *p)
{
	struct pifs_msg m;
	struct pifs_buf ids;
	ssize_t got;

	if (p->snap_index != r->snap_index) {
		p->snap_index = r->snap_index;
		p->snap_off = 0;
		p->snap_total = 0;
	}
	if (!r->piece) {
		r->piece = malloc(r->o.snap_piece);
		if (!r->piece)
			return fail(r, -ENOMEM);
	}
	got = r->io.snap_read(r->io.ctx, p->snap_off, r->piece, r->o.snap_piece);
	if (got < 0)
		return 0; /* the host could not read it now; try at the next beat */
	if ((size_t)got < r->o.snap_piece)
		p->snap_total = p->snap_off + (uint64_t)got;
	pifs_buf_init(&ids);
	for (uint32_t i = 0; i < r->snap_conf.n; i++) {
		struct pifs_nodeid nid = {r->snap_conf.id[i]};

		if (pifs_nodeid_append(&ids, &nid) < 0) {
			pifs_buf_fini(&ids);
			return fail(r, -ENOMEM);
		}
	}
	pifs_msg_init(&m, PIFS_MSG_RAFT_SNAP);
	m.u.RAFT_SNAP.from = r->o.id;
	m.u.RAFT_SNAP.to = p->id;
	m.u.RAFT_SNAP.term = r->term;
	m.u.RAFT_SNAP.index = r->snap_index;
	m.u.RAFT_SNAP.snap_term = r->snap_term;
	m.u.RAFT_SNAP.voters = pifs_list_of(&ids, r->snap_conf.n);
	m.u.RAFT_SNAP.offset = p->snap_off;
	m.u.RAFT_SNAP.total = p->snap_total;
	m.u.RAFT_SNAP.data = (struct pifs_blob){r->piece, (uint32_t)got};
	send(r, p->id, &m);
	pifs_buf_fini(&ids);
	return 0;
}

/* Send every other voter what it lacks; @all: a heartbeat to everyone. */
static int broadcast(struct pifs_raft *r, bool all, bool sync)
{
	for (size_t i = 0; i < r->npeer; i++) {
		struct peer *p = &r->peer[i];
		int rc;

		if (p->id == r->o.id)
			continue;
		if (p->snap || p->next <= r->base) {
			/* One piece in flight; a lost one goes again at a beat. */
			if (all && (rc = send_append(r, p, false)) < 0)
				return rc;
			continue;
		}
		if (!all && !sync && (p->probe || p->next > r->written))
			continue;
		rc = send_append(r, p, sync);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

/* The highest value that a majority of the configuration has reached,
 * given each voter's value (this voter's is @self). */
static uint64_t quorum_value(const struct pifs_raft *r, uint64_t self, bool synced)
{
	uint64_t v[PIFS_RAFT_MAX_VOTERS];
	size_t n = 0;

	for (size_t i = 0; i < r->npeer; i++) {
		const struct peer *p = &r->peer[i];

		v[n++] = p->id == r->o.id ? self : synced ? p->synced : p->match;
	}
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(v[0]), cmp_desc);
	return v[quorum(r) - 1];
}

static int maybe_commit(struct pifs_raft *r)
{
	uint64_t n = quorum_value(r, r->written, false);
	int rc;

	if (n <= r->commit || pifs_raft_term_at(r, n) != r->term)
		return 0;
	r->commit = n;
	rc = apply_committed(r);
	if (rc < 0)
		return rc;
	/* A leader that committed its own removal hands over: it stays a
	 * follower without a vote, so the others elect one of themselves. */
	if (!pifs_raft_is_voter(r, r->o.id)) {
		bool pending = false;

		for (uint64_t i = r->commit + 1; i <= last_index(r); i++)
			if (entry(r, i)->type == PIFS_RAFT_CONF)
				pending = true;
		if (!pending)
			return become_follower(r, r->term, 0);
	}
	return 0;
}

static int become_leader(struct pifs_raft *r)
{
	int rc;

	r->role = PIFS_RAFT_LEADER;
	r->leader = r->o.id;
	for (size_t i = 0; i < r->npeer; i++) {
		struct peer *p = &r->peer[i];

		p->next = last_index(r) + 1;
		p->match = p->id == r->o.id ? r->written : 0;
		p->synced = 0;
		p->contact_ms = r->now;
		p->stamp = 0;
		p->match_stamp = 0;
		p->probe = true;
		p->snap = false;
	}
	r->heartbeat_at = r->now;
	r->quorum_at = r->now + r->o.election_ms;
	rc = append_entry(r, r->term, PIFS_RAFT_NOOP, NULL, 0);
	if (rc < 0)
		return fail(r, rc);
	r->noop = last_index(r);
	rc = write_log(r);
	if (rc < 0)
		return rc;
	rc = broadcast(r, true, false);
	if (rc < 0)
		return rc;
	r->heartbeat_at = r->now + r->o.heartbeat_ms;
	return maybe_commit(r);
}

int pifs_raft_new(const struct pifs_raft_opts *o, const struct pifs_raft_state *st,
		  const struct pifs_raft_io *io, struct pifs_raft **out)
{
	struct pifs_raft *r;

	*out = NULL;
	if (o->id == 0 || o->election_ms == 0 || o->heartbeat_ms == 0 || o->snap_piece == 0 ||
	    o->max_append_bytes == 0 || !conf_valid(&st->conf) || st->applied < st->snap_index)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o = *o;
	r->io = *io;
	r->rng = o->seed ^ ((uint64_t)o->id << 32);
	r->term = st->term;
	r->vote = st->vote;
	r->base = r->snap_index = st->snap_index;
	r->base_term = r->snap_term = st->snap_term;
	r->base_conf = r->snap_conf = r->conf = st->conf;
	r->commit = r->applied = st->applied;
	r->durable = st->snap_index;
	r->written = r->synced = st->applied;
	pifs_buf_init(&r->out);
	sync_peers(r);
	*out = r;
	return 0;
}

void pifs_raft_free(struct pifs_raft *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nlog; i++)
		free(r->log[i].data);
	free(r->log);
	free(r->piece);
	pifs_buf_fini(&r->out);
	free(r);
}

static int noop_append(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	(void)ctx;
	(void)index;
	(void)e;
	return 0;
}

int pifs_raft_load(struct pifs_raft *r, uint64_t index, const struct pifs_raft_entry *e)
{
	int (*host_append)(void *, uint64_t, const struct pifs_raft_entry *) = r->io.log_append;
	int rc;

	if (index != last_index(r) + 1)
		return -EINVAL;
	/* The entry is on the disk already: do not queue it again. */
	r->io.log_append = noop_append;
	rc = append_entry(r, e->term, e->type, e->data, e->len);
	r->io.log_append = host_append;
	r->unwritten = false;
	if (rc < 0)
		return rc;
	r->written = last_index(r);
	if (index <= r->applied)
		r->synced = index;
	return 0;
}

/* Is it too soon after hearing a leader (or starting) to vote for anyone? */
static bool sticky(const struct pifs_raft *r)
{
	if (r->role == PIFS_RAFT_LEADER)
		return true;
	return r->now - r->heard_ms < (int64_t)r->o.election_ms;
}

static bool up_to_date(const struct pifs_raft *r, uint64_t li, uint64_t lt)
{
	uint64_t mt = last_term(r);

	return lt > mt || (lt == mt && li >= last_index(r));
}

static int on_vote(struct pifs_raft *r, const struct pifs_msg_RAFT_VOTE *v)
{
	struct pifs_msg rep;
	bool granted = false;
	int rc;

	/* A candidate outside our configuration is still answered: a voter
	 * just added campaigns before we have the entry that adds it, and may
	 * be the one that can win. Pre-vote and stickiness keep a removed one
	 * from disturbing a healthy cluster. */
	if (v->term > r->term && sticky(r))
		return 0;
	pifs_msg_init(&rep, PIFS_MSG_RAFT_VOTE_R);
	rep.u.RAFT_VOTE_R.from = r->o.id;
	rep.u.RAFT_VOTE_R.to = v->from;
	rep.u.RAFT_VOTE_R.pre = v->pre;
	if (v->pre) {
		granted = v->term > r->term && up_to_date(r, v->last_index, v->last_term);
		rep.u.RAFT_VOTE_R.term = granted ? v->term : r->term;
	} else {
		if (v->term > r->term) {
			rc = become_follower(r, v->term, 0);
			if (rc < 0)
				return rc;
		}
		if (v->term == r->term && (r->vote == 0 || r->vote == v->from) &&
		    up_to_date(r, v->last_index, v->last_term)) {
			rc = set_hard(r, r->term, v->from);
			if (rc < 0)
				return rc;
			granted = true;
			reset_election(r);
		}
		rep.u.RAFT_VOTE_R.term = r->term;
	}
	rep.u.RAFT_VOTE_R.granted = granted;
	return send(r, v->from, &rep);
}

static int on_vote_r(struct pifs_raft *r, const struct pifs_msg_RAFT_VOTE_R *v)
{
	struct peer *p = find_peer(r, v->from);

	if (!p)
		return 0;
	if (v->pre) {
		if (r->role != PIFS_RAFT_PRECANDIDATE)
			return 0;
		if (!v->granted && v->term > r->term)
			return become_follower(r, v->term, 0);
		if (!v->granted || v->term != r->term + 1)
			return 0;
		p->granted = true;
		if (count_granted(r) >= quorum(r))
			return campaign(r, false);
		return 0;
	}
	if (v->term > r->term)
		return become_follower(r, v->term, 0);
	if (r->role != PIFS_RAFT_CANDIDATE || v->term != r->term || !v->granted)
		return 0;
	p->granted = true;
	if (count_granted(r) >= quorum(r))
		return become_leader(r);
	return 0;
}

/* The first index of the term of entry @index, but past the commit index. */
static uint64_t term_start(const struct pifs_raft *r, uint64_t index)
{
	uint64_t t = pifs_raft_term_at(r, index);

	while (index > r->commit + 1 && index - 1 > r->base && pifs_raft_term_at(r, index - 1) == t)
		index--;
	return index;
}

static int answer_append(struct pifs_raft *r, uint32_t to, bool ok, uint64_t match,
			 uint64_t hint, int64_t stamp)
{
	struct pifs_msg rep;

	pifs_msg_init(&rep, PIFS_MSG_RAFT_APPEND_R);
	rep.u.RAFT_APPEND_R.from = r->o.id;
	rep.u.RAFT_APPEND_R.to = to;
	rep.u.RAFT_APPEND_R.term = r->term;
	rep.u.RAFT_APPEND_R.ok = ok;
	rep.u.RAFT_APPEND_R.match = match;
	rep.u.RAFT_APPEND_R.synced = ok ? (r->synced < match ? r->synced : match) : 0;
	rep.u.RAFT_APPEND_R.hint = hint;
	rep.u.RAFT_APPEND_R.stamp = stamp;
	return send(r, to, &rep);
}

/* The leader says entries up to @durable are durable; ours are the leader's
 * only up to @match (past it they may be stale ones of an older term, which
 * the leader's log is about to override). */
static void note_durable(struct pifs_raft *r, uint64_t durable, uint64_t match)
{
	if (durable > match)
		durable = match;
	if (durable > r->durable)
		r->durable = durable;
}

/* A leader's message of our term: follow it. */
static void heard_leader(struct pifs_raft *r, uint32_t leader)
{
	r->role = PIFS_RAFT_FOLLOWER;
	r->leader = leader;
	r->heard_ms = r->now;
	reset_election(r);
}

/* Does the leader's log, as @a shows it, disagree with an entry we hold at
 * or below our commit index? Raft alone never lets it; a power cut can: a
 * committed entry that was written but not synced is gone from a voter's
 * disk, and a majority without it elects a leader. Our state machine then
 * holds an entry that the cluster's history does not. */
static bool commit_overridden(const struct pifs_raft *r, const struct pifs_msg_RAFT_APPEND *a)
{
	struct pifs_cursor c;
	struct pifs_raftent re;
	uint64_t index = a->prev_index;

	if (index > r->base && index <= r->commit && index <= last_index(r) &&
	    pifs_raft_term_at(r, index) != a->prev_term)
		return true;
	pifs_cursor_init(&c, &a->entries);
	while (++index <= r->commit && pifs_raftent_next(&c, &re) == 1)
		if (index > r->base && index <= last_index(r) &&
		    pifs_raft_term_at(r, index) != re.term)
			return true;
	return false;
}

static int on_append(struct pifs_raft *r, const struct pifs_msg_RAFT_APPEND *a)
{
	struct pifs_cursor c;
	struct pifs_raftent re;
	uint64_t index, match, commit;
	int rc;

	if (a->term < r->term)
		return answer_append(r, a->from, false, 0, 0, a->stamp);
	if (a->term > r->term) {
		rc = become_follower(r, a->term, a->from);
		if (rc < 0)
			return rc;
	}
	heard_leader(r, a->from);
	if (commit_overridden(r, a)) {
		/* We cannot take back what we applied: the host restarts
		 * from its disk (its snapshot is durable, so the leader has
		 * it) and then follows the leader's log. */
		return -ESTALE;
	}
	if (a->prev_index < r->commit) {
		/* What it sends up to our commit index we have: say so. */
		note_durable(r, a->durable, r->commit);
		return answer_append(r, a->from, true, r->commit, 0, a->stamp);
	}
	if (a->prev_index > last_index(r))
		return answer_append(r, a->from, false, 0, last_index(r) + 1, a->stamp);
	if (pifs_raft_term_at(r, a->prev_index) != a->prev_term)
		return answer_append(r, a->from, false, 0, term_start(r, a->prev_index), a->stamp);
	index = a->prev_index;
	pifs_cursor_init(&c, &a->entries);
	while ((rc = pifs_raftent_next(&c, &re)) == 1) {
		index++;
		if (index <= last_index(r)) {
			if (pifs_raft_term_at(r, index) == re.term)
				continue;
			rc = truncate_from(r, index);
			if (rc < 0)
				return rc;
		}
		rc = append_entry(r, re.term, re.type, re.data.p, re.data.len);
		if (rc < 0)
			return fail(r, rc);
	}
	if (rc < 0)
		return 0; /* malformed: ignore the rest; the leader sends again */
	match = index;
	rc = write_log(r);
	if (rc == 0 && (a->flags & PIFS_RAFT_SYNC))
		rc = sync_log(r);
	if (rc < 0)
		return rc;
	note_durable(r, a->durable, match);
	commit = a->commit < match ? a->commit : match;
	if (commit > r->commit) {
		r->commit = commit;
		rc = apply_committed(r);
		if (rc < 0)
			return rc;
	}
	return answer_append(r, a->from, true, match, 0, a->stamp);
}

static int on_append_r(struct pifs_raft *r, const struct pifs_msg_RAFT_APPEND_R *a)
{
	struct peer *p;

	if (a->term > r->term)
		return become_follower(r, a->term, 0);
	if (a->term < r->term || r->role != PIFS_RAFT_LEADER)
		return 0;
	p = find_peer(r, a->from);
	if (!p || p->id == r->o.id)
		return 0;
	p->contact_ms = r->now;
	if (a->stamp > p->stamp)
		p->stamp = a->stamp;
	/* The network repeats and reorders answers. One that moves nothing
	 * forward is a late copy: answering each with entries again made every
	 * copy breed another, a storm that never ended. So a refusal counts
	 * only if it sends next back (a hint is at most the refused append's
	 * prev_index, so one at or past next answers an older append), never
	 * to or below what the voter acknowledged (the hint, the start of a
	 * term, may be lower), and an acknowledgement only if it moves match. */
	if (!a->ok) {
		uint64_t next;

		if (a->hint && a->hint <= p->match && a->stamp > p->match_stamp) {
			/* A refusal of an append sent after the one that moved
			 * match: the voter lost entries it acknowledged (a power
			 * cut took what it had not synced). It has those before
			 * the hint. */
			p->match = a->hint - 1;
			if (p->synced > p->match)
				p->synced = p->match;
		}
		next = a->hint > p->match ? a->hint : p->match + 1;

		if (next >= p->next)
			return 0;
		p->next = next;
		p->probe = true;
		return send_append(r, p, false);
	}
	if (a->match > last_index(r))
		return 0; /* an answer to a log we no longer have */
	if (a->synced > p->synced)
		p->synced = a->synced;
	if (a->match <= p->match)
		return 0;
	p->match = a->match;
	if (a->stamp > p->match_stamp)
		p->match_stamp = a->stamp;
	if (p->next < p->match + 1)
		p->next = p->match + 1;
	p->probe = false;
	p->snap = false;
	if (p->next <= r->written) {
		int rc = send_append(r, p, false);

		if (rc < 0)
			return rc;
	}
	return maybe_commit(r);
}

static int on_snap(struct pifs_raft *r, const struct pifs_msg_RAFT_SNAP *s)
{
	struct pifs_raft_conf conf = {0};
	struct pifs_cursor c;
	struct pifs_nodeid nid;
	struct pifs_msg rep;
	uint64_t next;
	int rc;

	if (s->term < r->term)
		return answer_append(r, s->from, false, 0, 0, 0);
	if (s->term > r->term) {
		rc = become_follower(r, s->term, s->from);
		if (rc < 0)
			return rc;
	}
	heard_leader(r, s->from);
	pifs_msg_init(&rep, PIFS_MSG_RAFT_SNAP_R);
	rep.u.RAFT_SNAP_R.from = r->o.id;
	rep.u.RAFT_SNAP_R.to = s->from;
	rep.u.RAFT_SNAP_R.term = r->term;
	rep.u.RAFT_SNAP_R.index = s->index;
	if (s->index <= r->commit) {
		/* We have all it holds: the leader goes on with entries. */
		rep.u.RAFT_SNAP_R.next = UINT64_MAX;
		r->rcv_active = false;
		return send(r, s->from, &rep);
	}
	if (pifs_raft_term_at(r, s->index) == s->snap_term) {
		/* A late snapshot of a log we hold past it: installing it would
		 * drop entries after it that we acknowledged and the leader may
		 * have counted committed. Its index is committed: apply up to it
		 * from our own log and keep the rest. */
		r->commit = s->index;
		r->rcv_active = false;
		rc = apply_committed(r);
		if (rc < 0)
			return rc;
		rep.u.RAFT_SNAP_R.next = UINT64_MAX;
		return send(r, s->from, &rep);
	}
	if (s->offset == 0) {
		r->rcv_active = true;
		r->rcv_index = s->index;
		r->rcv_off = 0;
	}
	if (r->rcv_active && r->rcv_index == s->index && s->offset == r->rcv_off) {
		rc = r->io.snap_write(r->io.ctx, s->offset, s->data.p, s->data.len);
		if (rc < 0) {
			r->rcv_active = false;
			r->rcv_off = 0;
		} else {
			r->rcv_off += s->data.len;
		}
	}
	next = r->rcv_active && r->rcv_index == s->index ? r->rcv_off : 0;
	if (r->rcv_active && s->total && next == s->total) {
		pifs_cursor_init(&c, &s->voters);
		while (pifs_nodeid_next(&c, &nid) == 1 && conf.n < PIFS_RAFT_MAX_VOTERS)
			conf.id[conf.n++] = nid.id;
		r->rcv_active = false;
		if (!conf_valid(&conf)) {
			next = 0;
		} else {
			rc = r->io.snap_install(r->io.ctx, s->index, s->snap_term, &conf, s->total);
			if (rc < 0) {
				next = 0; /* refused: the old state and log stay */
			} else {
				/* The snapshot replaces the whole log. */
				rc = truncate_from(r, r->base + 1);
				if (rc < 0)
					return rc;
				r->base = r->snap_index = s->index;
				r->base_term = r->snap_term = s->snap_term;
				r->base_conf = r->snap_conf = conf;
				r->commit = r->applied = s->index;
				/* A leader snapshots only what is durable. */
				if (s->index > r->durable)
					r->durable = s->index;
				r->written = r->synced = s->index;
				refresh_conf(r);
				next = UINT64_MAX;
			}
		}
	}
	rep.u.RAFT_SNAP_R.next = next;
	return send(r, s->from, &rep);
}

static int on_snap_r(struct pifs_raft *r, const struct pifs_msg_RAFT_SNAP_R *s)
{
	struct peer *p;

	if (s->term > r->term)
		return become_follower(r, s->term, 0);
	if (s->term < r->term || r->role != PIFS_RAFT_LEADER)
		return 0;
	p = find_peer(r, s->from);
	if (!p || p->id == r->o.id || !p->snap || s->index != p->snap_index)
		return 0;
	p->contact_ms = r->now;
	if (s->next == UINT64_MAX) {
		/* Installed (or not needed): entries from the snapshot on. */
		p->snap = false;
		if (s->index > p->match) {
			p->match = s->index;
			p->match_stamp = r->now;
		}
		p->next = p->match + 1;
		p->probe = true;
		return send_append(r, p, false);
	}
	p->snap_off = s->next;
	if (p->snap_total && s->next >= p->snap_total)
		p->snap_off = 0; /* it refused the whole: start again */
	return send_snap(r, p);
}

int pifs_raft_step(struct pifs_raft *r, const struct pifs_msg *m)
{
	uint32_t to;
	int rc;

	if (r->err)
		return r->err;
	switch (m->type) {
	case PIFS_MSG_RAFT_VOTE:
		to = m->u.RAFT_VOTE.to;
		break;
	case PIFS_MSG_RAFT_VOTE_R:
		to = m->u.RAFT_VOTE_R.to;
		break;
	case PIFS_MSG_RAFT_APPEND:
		to = m->u.RAFT_APPEND.to;
		break;
	case PIFS_MSG_RAFT_APPEND_R:
		to = m->u.RAFT_APPEND_R.to;
		break;
	case PIFS_MSG_RAFT_SNAP:
		to = m->u.RAFT_SNAP.to;
		break;
	case PIFS_MSG_RAFT_SNAP_R:
		to = m->u.RAFT_SNAP_R.to;
		break;
	default:
		return 0;
	}
	if (to != r->o.id)
		return 0;
	switch (m->type) {
	case PIFS_MSG_RAFT_VOTE:
		rc = on_vote(r, &m->u.RAFT_VOTE);
		break;
	case PIFS_MSG_RAFT_VOTE_R:
		rc = on_vote_r(r, &m->u.RAFT_VOTE_R);
		break;
	case PIFS_MSG_RAFT_APPEND:
		rc = on_append(r, &m->u.RAFT_APPEND);
		break;
	case PIFS_MSG_RAFT_APPEND_R:
		rc = on_append_r(r, &m->u.RAFT_APPEND_R);
		break;
	case PIFS_MSG_RAFT_SNAP:
		rc = on_snap(r, &m->u.RAFT_SNAP);
		break;
	default:
		rc = on_snap_r(r, &m->u.RAFT_SNAP_R);
		break;
	}
	return rc < 0 ? fail(r, rc) : 0;
}

int pifs_raft_tick(struct pifs_raft *r, int64_t now_ms)
{
	int rc = 0;

	if (r->err)
		return r->err;
	if (now_ms > r->now)
		r->now = now_ms;
	if (!r->started) {
		r->started = true;
		r->heard_ms = r->now;
		reset_election(r);
		/* A lone voter need not wait for anyone. */
		if (r->conf.n == 1 && r->conf.id[0] == r->o.id)
			return campaign(r, true);
	}
	if (r->role == PIFS_RAFT_LEADER) {
		if (r->now >= r->quorum_at) {
			size_t heard = 0;

			for (size_t i = 0; i < r->npeer; i++)
				if (r->peer[i].id == r->o.id ||
				    r->now - r->peer[i].contact_ms <= (int64_t)r->o.election_ms)
					heard++;
			r->quorum_at = r->now + r->o.election_ms;
			if (heard < quorum(r))
				return become_follower(r, r->term, 0);
		}
		if (r->now >= r->heartbeat_at) {
			r->heartbeat_at = r->now + r->o.heartbeat_ms;
			rc = broadcast(r, true, false);
		}
		return rc;
	}
	if (r->now >= r->election_at)
		rc = campaign(r, true);
	return rc;
}

int pifs_raft_propose(struct pifs_raft *r, const void *data, size_t len, uint64_t *index)
{
	int rc;

	if (r->err)
		return r->err;
	if (r->role != PIFS_RAFT_LEADER)
		return -EAGAIN;
	if (len > r->o.max_append_bytes)
		return -E2BIG;
	rc = append_entry(r, r->term, PIFS_RAFT_DATA, data, (uint32_t)len);
	if (rc < 0)
		return fail(r, rc);
	*index = last_index(r);
	return 0;
}

int pifs_raft_propose_conf(struct pifs_raft *r, const struct pifs_raft_conf *conf,
			   uint64_t *index)
{
	struct pifs_buf b;
	uint32_t i = 0, j = 0, diff = 0;
	int rc;

	if (r->err)
		return r->err;
	if (r->role != PIFS_RAFT_LEADER)
		return -EAGAIN;
	if (!conf_valid(conf))
		return -EINVAL;
	for (uint64_t k = r->commit + 1; k <= last_index(r); k++)
		if (entry(r, k)->type == PIFS_RAFT_CONF)
			return -EBUSY;
	/* Both lists are sorted: count the ids in one and not the other. */
	while (i < conf->n || j < r->conf.n) {
		if (j == r->conf.n || (i < conf->n && conf->id[i] < r->conf.id[j])) {
			diff++;
			i++;
		} else if (i == conf->n || r->conf.id[j] < conf->id[i]) {
			diff++;
			j++;
		} else {
			i++;
			j++;
		}
	}
	if (diff != 1)
		return -EINVAL;
	pifs_buf_init(&b);
	rc = pifs_raft_conf_encode(conf, &b);
	if (rc == 0)
		rc = append_entry(r, r->term, PIFS_RAFT_CONF, b.p, (uint32_t)b.len);
	pifs_buf_fini(&b);
	if (rc < 0)
		return fail(r, rc);
	*index = last_index(r);
	return 0;
}

int pifs_raft_flush(struct pifs_raft *r, bool sync)
{
	int rc;

	if (r->err)
		return r->err;
	rc = write_log(r);
	if (rc == 0 && sync)
		rc = sync_log(r);
	if (rc < 0)
		return rc;
	if (r->role != PIFS_RAFT_LEADER)
		return 0;
	rc = broadcast(r, false, sync);
	if (rc < 0)
		return rc;
	return maybe_commit(r);
}

int pifs_raft_synced(struct pifs_raft *r, uint64_t index)
{
	if (r->err)
		return r->err;
	if (index > r->written)
		index = r->written;
	if (index > r->synced)
		r->synced = index;
	return 0;
}

void pifs_raft_compact(struct pifs_raft *r, uint64_t index, uint64_t keep)
{
	uint64_t nb, drop;

	if (index <= r->snap_index || index > r->applied)
		return;
	r->snap_term = pifs_raft_term_at(r, index);
	pifs_raft_conf_at(r, index, &r->snap_conf);
	r->snap_index = index;
	nb = index > keep ? index - keep : 0;
	if (nb <= r->base)
		return;
	r->base_term = pifs_raft_term_at(r, nb);
	pifs_raft_conf_at(r, nb, &r->base_conf);
	drop = nb - r->base;
	for (uint64_t i = 0; i < drop; i++)
		free(r->log[i].data);
	memmove(r->log, r->log + drop, (r->nlog - drop) * sizeof(*r->log));
	r->nlog -= drop;
	r->base = nb;
}

enum pifs_raft_role pifs_raft_role(const struct pifs_raft *r)
{
	return r->role;
}

uint32_t pifs_raft_leader(const struct pifs_raft *r)
{
	return r->leader;
}

uint64_t pifs_raft_term(const struct pifs_raft *r)
{
	return r->term;
}

uint64_t pifs_raft_commit(const struct pifs_raft *r)
{
	return r->commit;
}

uint64_t pifs_raft_applied(const struct pifs_raft *r)
{
	return r->applied;
}

uint64_t pifs_raft_last_index(const struct pifs_raft *r)
{
	return last_index(r);
}

uint64_t pifs_raft_snap_index(const struct pifs_raft *r)
{
	return r->snap_index;
}

const struct pifs_raft_conf *pifs_raft_conf(const struct pifs_raft *r)
{
	return &r->conf;
}

bool pifs_raft_leader_ready(const struct pifs_raft *r)
{
	return r->role == PIFS_RAFT_LEADER && r->applied >= r->noop;
}

bool pifs_raft_lease(const struct pifs_raft *r, int64_t now_ms)
{
	int64_t v[PIFS_RAFT_MAX_VOTERS], t;
	size_t n = 0;

	if (r->role != PIFS_RAFT_LEADER || !pifs_raft_is_voter(r, r->o.id))
		return false;
	for (size_t i = 0; i < r->npeer; i++)
		v[n++] = r->peer[i].id == r->o.id ? now_ms : r->peer[i].stamp;
	/* The quorum-th newest stamp: sort descending. */
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && v[j] > v[j - 1]; j--) {
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	t = v[quorum(r) - 1];
	return t > 0 && now_ms < t + (int64_t)r->o.election_ms * LEASE_TENTHS / 10;
}

uint64_t pifs_raft_durable(const struct pifs_raft *r)
{
	uint64_t q;

	if (r->role != PIFS_RAFT_LEADER)
		return r->durable;
	/* An entry on a majority's disks but not committed may still be
	 * overwritten by a later leader (the thesis's figure 3.7): only
	 * committed ones count. */
	q = quorum_value(r, r->synced, true);
	if (q > r->commit)
		q = r->commit;
	return q > r->durable ? q : r->durable;
}

uint64_t pifs_raft_synced_quorum(const struct pifs_raft *r)
{
	if (r->role != PIFS_RAFT_LEADER)
		return 0;
	return quorum_value(r, r->synced, true);
}

size_t pifs_raft_peers(const struct pifs_raft *r, struct pifs_raft_peer *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; i < r->npeer && n < cap; i++) {
		const struct peer *p = &r->peer[i];
		bool self = p->id == r->o.id;

		out[n].id = p->id;
		out[n].match = self ? r->written : p->match;
		out[n].synced = self ? r->synced : p->synced;
		out[n].contact_ms = self ? r->now : p->contact_ms;
		n++;
	}
	return n;
}

const char *pifs_raft_role_name(enum pifs_raft_role role)
{
	switch (role) {
	case PIFS_RAFT_FOLLOWER:
		return "follower";
	case PIFS_RAFT_PRECANDIDATE:
		return "pre-candidate";
	case PIFS_RAFT_CANDIDATE:
		return "candidate";
	case PIFS_RAFT_LEADER:
		return "leader";
	}
	return "?";
}
