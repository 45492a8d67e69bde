/* raft.h - consensus on the metadata log among the voters: Raft.
 *
 * One struct pifs_raft is one voter's view of the replicated log. It moves
 * opaque entries and snapshots and knows nothing of inodes: what an entry
 * means is the host's business (storaged/metad.c applies each to the state
 * machine of fs/meta.h; tests/unit/test_raft.c applies them to a model).
 *
 * What it implements (Ongaro's thesis, chapters 3, 4 and 9):
 * - leader election with randomised timeouts, pre-vote (a voter that was
 *   cut off and comes back asks first whether it could win, and so never
 *   raises the term of a healthy cluster), and leader stickiness (a voter
 *   that heard from a leader within the election timeout ignores votes);
 * - log replication with a consistency check, fast back-off of next_index
 *   (hint), and a commit index that moves only over entries of the leader's
 *   own term, counted over a majority of the configuration;
 * - check-quorum: a leader that has not heard from a majority for an
 *   election timeout steps down; and a read lease (pifs_raft_lease) so that
 *   a leader answers queries from its state only while no other leader can
 *   have been elected;
 * - snapshots: the host compacts the log (pifs_raft_compact), and a voter
 *   whose next entry is compacted away gets the snapshot, in pieces read
 *   from the host (io.snap_read) and written by the receiving host
 *   (io.snap_write, io.snap_install);
 * - membership changes one voter at a time (a CONF entry takes effect as
 *   soon as it is in the log, and the leader allows one uncommitted change
 *   at a time), so that two majorities can never exist at once.
 *
 * Durability comes from the host: every call of io.log_append/log_write
 * returns once the entries are written (the process may die after that
 * and they survive), io.set_hard once term and vote are durable. A voter
 * acknowledges entries only after io.log_write returned. With PIFS_RAFT_SYNC
 * (pifs_raft_sync_wanted) it also calls io.log_sync first, and reports in
 * every answer how far its log is durable, so that the leader can tell when
 * a majority has fsynced an entry (pifs_raft_synced_quorum).
 *
 * Time is whatever the host passes to pifs_raft_tick (milliseconds, any
 * origin, never decreasing), and randomness comes from the seed: the same
 * seed, inputs and times give the same outputs, which is what the
 * simulation in tests/unit/test_raft.c relies on.
 *
 * Pure: no I/O of its own (all through @io), no locks, no globals, no
 * clock. One thread at a time. Every io callback returns 0 or -errno; an
 * error from log_append, log_write, log_truncate, log_sync or set_hard is
 * returned by the call that caused it and leaves the instance unusable
 * (the host must stop: its log may be behind what it promised).
 *
 * So does -ESTALE from pifs_raft_step: the leader's log disagrees with an
 * entry this voter committed and applied. Raft alone never lets that
 * happen; a power cut can (an entry acknowledged once written, lost from
 * the disks of voters that had not synced it). The host must restart from
 * its disk: its snapshot is durable (pifs_raft_durable), so the leader
 * holds it, and the entries past it follow the leader's log. */
#ifndef PIFS_RAFT_H
#define PIFS_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"

#define PIFS_RAFT_MAX_VOTERS 7

enum pifs_raft_role {
	PIFS_RAFT_FOLLOWER = 0,
	PIFS_RAFT_PRECANDIDATE = 1,
	PIFS_RAFT_CANDIDATE = 2,
	PIFS_RAFT_LEADER = 3,
};

enum pifs_raft_type {
	PIFS_RAFT_DATA = 0, /* the host's bytes */
	PIFS_RAFT_NOOP = 1, /* a new leader's first entry; empty */
	PIFS_RAFT_CONF = 2, /* the voters: u32 ids, big-endian */
};

/* A set of voters, ids in increasing order, no repeats. */
struct pifs_raft_conf {
	uint32_t n;
	uint32_t id[PIFS_RAFT_MAX_VOTERS];
};

/* One log entry; @data is borrowed for the duration of a callback. */
struct pifs_raft_entry {
	uint64_t term;
	uint8_t type;
	const uint8_t *data;
	uint32_t len;
};

struct pifs_raft_io {
	void *ctx;
	/* Queue entry @index (borrowed). Entries come in increasing index
	 * order, each one past the last, after any log_truncate. */
	int (*log_append)(void *ctx, uint64_t index, const struct pifs_raft_entry *e);
	/* Write every queued entry: once this returns they survive the death
	 * of the process. */
	int (*log_write)(void *ctx);
	/* Make what was written durable (fdatasync). */
	int (*log_sync)(void *ctx);
	/* Drop entries @from and after, queued or written (a leader's log
	 * overrides them). @from is past the commit index, except right after
	 * snap_install. */
	int (*log_truncate)(void *ctx, uint64_t from);
	/* Make term and vote (0: none) durable before returning. */
	int (*set_hard)(void *ctx, uint64_t term, uint32_t vote);
	/* Send @m (a RAFT_* message, borrowed for the call) to voter @to. May
	 * drop it (no connection): Raft sends again. Errors are ignored. */
	int (*send)(void *ctx, uint32_t to, const struct pifs_msg *m);
	/* Apply the committed entry @index (borrowed): called once per index,
	 * in order, never for an index covered by an installed snapshot. */
	int (*apply)(void *ctx, uint64_t index, const struct pifs_raft_entry *e);
	/* Copy up to @cap bytes of the host's latest snapshot (the one of the
	 * last pifs_raft_compact) from @off into @buf. Returns the count (0 at
	 * the end) or -errno. */
	ssize_t (*snap_read)(void *ctx, uint64_t off, void *buf, size_t cap);
	/* Store @len bytes of an incoming snapshot at @off; @off 0 starts a new
	 * one, and pieces come in order. */
	int (*snap_write)(void *ctx, uint64_t off, const void *p, size_t len);
	/* The incoming snapshot of @total bytes is whole: replace the state
	 * machine with it, as of @index (applied) and @term, and drop the
	 * whole log (log_truncate of every entry follows, even committed
	 * ones). Returns 0, or -errno to refuse it (a malformed snapshot: the
	 * old state and log stay, and the leader sends it again). */
	int (*snap_install)(void *ctx, uint64_t index, uint64_t term,
			    const struct pifs_raft_conf *conf, uint64_t total);
};

struct pifs_raft_opts {
	uint32_t id;		   /* this voter, not 0 */
	uint64_t seed;		   /* randomises election timeouts */
	uint32_t heartbeat_ms;	   /* a leader sends at least this often: 100 */
	uint32_t election_ms;	   /* timeouts are random in [this, 2 x this): 1000 */
	uint32_t max_append_bytes; /* entries per RAFT_APPEND, at most: 1 MiB */
	uint32_t snap_piece;	   /* bytes per RAFT_SNAP: 1 MiB */
	/* Ask for no votes while the log is empty and no leader was ever
	 * heard (term 0): for the voters of a new cluster other than the one
	 * that starts it, so that voters started with empty disks beside one
	 * that holds a cluster cannot elect each other and found another. */
	bool wait_for_leader;
};

/* What a restarted voter found on its disk. */
struct pifs_raft_state {
	uint64_t term;
	uint32_t vote;
	uint64_t snap_index, snap_term; /* 0, 0: no snapshot */
	struct pifs_raft_conf conf;	/* of the snapshot, or the initial voters */
	uint64_t applied;		/* the host's state machine is at this index */
};

struct pifs_raft;

/* A voter with the options @o, the durable state @st (its conf is the
 * voters of the snapshot, or of a new cluster when there is none), and
 * @io (copied; its ctx borrowed). The log entries after the snapshot are
 * then handed in with pifs_raft_load, oldest first. Returns 0, -EINVAL
 * (id 0, an empty or oversized conf, a zero timeout) or -ENOMEM; *@out is
 * freed with pifs_raft_free. */
int pifs_raft_new(const struct pifs_raft_opts *o, const struct pifs_raft_state *st,
		  const struct pifs_raft_io *io, struct pifs_raft **out);

void pifs_raft_free(struct pifs_raft *r);

/* Hand in entry @index (borrowed; copied), the next one of the log read
 * from the disk. Entries up to st.applied are not applied again. Returns
 * 0, -EINVAL (out of order) or -ENOMEM. */
int pifs_raft_load(struct pifs_raft *r, uint64_t index, const struct pifs_raft_entry *e);

/* Time passes: @now_ms. Elections and heartbeats happen here. Returns 0 or
 * the -errno of an io callback. */
int pifs_raft_tick(struct pifs_raft *r, int64_t now_ms);

/* A RAFT_* message from another voter (borrowed). Stale, foreign or
 * malformed ones are ignored. Returns 0 or the -errno of an io callback. */
int pifs_raft_step(struct pifs_raft *r, const struct pifs_msg *m);

/* As leader, append a DATA entry of @len bytes at @data (borrowed; copied),
 * queued through io.log_append; *@index (OUT) is its index. Nothing is
 * written or sent until pifs_raft_flush, so that a batch costs one write
 * and one message per voter. Returns 0, -EAGAIN (not the leader: see
 * pifs_raft_leader), -E2BIG (over max_append_bytes) or an io -errno. */
int pifs_raft_propose(struct pifs_raft *r, const void *data, size_t len, uint64_t *index);

/* As leader, start making @conf the voters (it differs from the current
 * configuration by exactly one voter). Returns 0 with *@index (OUT) the
 * CONF entry's index, -EAGAIN (not the leader), -EBUSY (a change is not
 * committed yet), -EINVAL (not a one-voter change, or it would leave no
 * voter) or an io -errno. */
int pifs_raft_propose_conf(struct pifs_raft *r, const struct pifs_raft_conf *conf,
			   uint64_t *index);

/* Write what was proposed (io.log_write), send it to the voters, and
 * commit and apply what a majority has. @sync: the entries must also be
 * made durable on a majority (the leader syncs its own log; followers are
 * asked to, with PIFS_RAFT_SYNC). Returns 0 or an io -errno. */
int pifs_raft_flush(struct pifs_raft *r, bool sync);

/* The host made its log durable up to @index (its syncer ran): reported
 * to the leader in the next answer, or counted at once on the leader. */
int pifs_raft_synced(struct pifs_raft *r, uint64_t index);

/* The host wrote a snapshot of its state machine at @index (applied,
 * committed): entries up to @index - @keep may go from memory, and voters
 * that need them get the snapshot. @term is the term of entry @index. */
void pifs_raft_compact(struct pifs_raft *r, uint64_t index, uint64_t keep);

/* Figures. */
enum pifs_raft_role pifs_raft_role(const struct pifs_raft *r);
uint32_t pifs_raft_leader(const struct pifs_raft *r); /* 0: none known */
uint64_t pifs_raft_term(const struct pifs_raft *r);
uint64_t pifs_raft_commit(const struct pifs_raft *r);
uint64_t pifs_raft_applied(const struct pifs_raft *r);
uint64_t pifs_raft_last_index(const struct pifs_raft *r);
uint64_t pifs_raft_snap_index(const struct pifs_raft *r);
/* The term of entry @index, 0 when it is not in memory (compacted, or past
 * the end) unless it is the snapshot's. */
uint64_t pifs_raft_term_at(const struct pifs_raft *r, uint64_t index);
/* The configuration in force at entry @index (in memory, or the base's). */
void pifs_raft_conf_at(const struct pifs_raft *r, uint64_t index, struct pifs_raft_conf *out);
/* The latest configuration (committed or not); borrowed. */
const struct pifs_raft_conf *pifs_raft_conf(const struct pifs_raft *r);
/* Is @id a voter of the latest configuration? */
bool pifs_raft_is_voter(const struct pifs_raft *r, uint32_t id);

/* Leader only: has the leader's own first entry of its term been applied,
 * so that its state machine holds every entry ever committed? Until then
 * it must not answer from its state. */
bool pifs_raft_leader_ready(const struct pifs_raft *r);

/* Leader only: may it answer queries from its state at @now_ms? True while
 * a majority acknowledged a message it sent less than 0.8 election
 * timeouts ago: no other leader can have been elected since (votes are
 * ignored for an election timeout after a leader was heard). */
bool pifs_raft_lease(const struct pifs_raft *r, int64_t now_ms);

/* The last committed index that a majority has synced: on the leader from
 * the followers' answers, elsewhere as the leader last said. A host writes
 * no snapshot of a state past it: if every voter lost power at once, a
 * voter's snapshot of entries that only its own disk kept would disagree
 * with the log of the next leader, which need not have them. */
uint64_t pifs_raft_durable(const struct pifs_raft *r);

/* The highest index that a majority of the configuration made durable
 * (pifs_raft_synced and the followers' answers); leader only, else 0. */
uint64_t pifs_raft_synced_quorum(const struct pifs_raft *r);

/* A voter as the leader tracks it, for META_STAT. */
struct pifs_raft_peer {
	uint32_t id;
	uint64_t match, synced;
	int64_t contact_ms; /* the time (as ticked) it last answered; 0 never */
};

/* Fill @out (@cap of them) with the voters of the configuration as this
 * voter tracks them (meaningful on the leader). Returns the count. */
size_t pifs_raft_peers(const struct pifs_raft *r, struct pifs_raft_peer *out, size_t cap);

/* Encode @conf as a CONF entry's bytes into @out (4 per voter). */
int pifs_raft_conf_encode(const struct pifs_raft_conf *conf, struct pifs_buf *out);
/* Decode a CONF entry's bytes. Returns 0 or -EBADMSG. */
int pifs_raft_conf_decode(const void *p, size_t len, struct pifs_raft_conf *conf /* OUT */);

/* "follower", "pre-candidate", "candidate", "leader". */
const char *pifs_raft_role_name(enum pifs_raft_role role);

#endif
