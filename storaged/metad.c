/* metad.c - the metadata service: a Raft voter (or a node that may become
 * one) hosting the state machine.
 *
 * One thread owns the state machine (fs/meta.h), the voter's log on disk
 * (fs/raftlog.h) and the consensus (fs/raft.h); nothing in them is locked.
 * It takes what the broker hands it in batches: requests from clients and
 * daemons, and the RAFT_* messages of the other voters, which come in on the
 * same ROUTER port and are never answered on their connection (each voter
 * sends its own messages to the others' ports through DEALERs of its own).
 *
 * The leader stamps each mutation, proposes it (its log entry is the
 * encoded mutation, session included, so every voter answers a resend the
 * same way), and answers it once it is committed and applied: a majority
 * has written it to its log, so the kill -9 of any one voter loses nothing
 * acknowledged. A syncer thread fdatasyncs the log within SYNC_MS of a
 * write on every voter; what must survive a power cut (META_SYNC for a
 * client's fsync, CHUNK_REFS for garbage collection, changes of the cluster
 * map) is answered only once a majority has synced it (pifs_raft_flush with
 * sync, PIFS_RAFT_SYNC on the wire). Queries are answered by the leader
 * alone, from its state, and only while it holds its read lease (no other
 * leader can have been elected meanwhile) and has applied its own term's
 * first entry; a request that comes earlier waits in the service (held).
 * Any other node answers R_LEADER, naming the leader when it knows one,
 * and metacall (fs/metacall.h) follows it.
 *
 * The leader also keeps what each node's last heartbeat said and logs
 * liveness in the map (a node silent for down_after is down, for out_after
 * out), counting from the moment it became leader for nodes it has not
 * heard yet, so that a change of leader marks nobody down. */
#include "metad.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl.h"
#include "log.h"
#include "meta.h"
#include "raft.h"
#include "raftlog.h"
#include "rpc.h"

/* The first message of a batch and up to 256 more taken without waiting. */
#define BATCH 257
/* Past this much log since the last snapshot, write a new one. Tests lower
 * it with PIFS_TEST_SNAPSHOT_AT (bytes) to make voters catch up from one. */
#define SNAPSHOT_AT (64ull << 20)
/* Entries kept in memory below a snapshot, so that a voter a little behind
 * gets entries rather than the whole snapshot. */
#define SNAPSHOT_KEEP 4096
/* A reply buffer that grew past this (a big directory listing) is freed
 * after sending instead of being kept. */
#define KEEP_REPLY (64u << 10)
#define META_HWM 1024
/* Raft's clock: how often the thread looks at the time when idle. */
#define TICK_MS 20
#define HEARTBEAT_MS 100
#define ELECTION_MS 1000
/* How often a voter tries again to connect to another that is down. */
#define PEER_RECONNECT_MS 100
/* The longest an acknowledged change waits for its sync. */
#define SYNC_MS 50
/* Entries per RAFT_APPEND, and the largest mutation: well under
 * PIFS_PROTO_MAX_MSG with the message around it. */
#define MAX_APPEND (4u << 20)

/* What the last heartbeat of a node said. */
struct live {
	uint32_t id;
	int64_t seen_ms; /* pifs_now_ms(), for down_after */
	int64_t seen_ns; /* pifs_now_ns(), for operators */
	uint64_t capacity, free, used, chunks;
	struct pifs_work work;
};

/* A change of a node's flags that the liveness check logs. */
struct change {
	uint32_t id, weight, flags;
	char addr[256];
	double silent_s;
	bool out;
};

/* A request being answered: its reply is sent once @answered and, when
 * @durable is not 0, once a majority has synced the log up to @durable. A
 * mutation's reply is made when entry @index (of @term) is applied, unless
 * it was @fixed when proposed (a heartbeat, a change of voters). */
struct waiter {
	uint8_t ident[PIFS_IDENT_MAX];
	size_t ilen;
	uint64_t reqid;
	uint64_t index, term;
	uint64_t durable;
	bool answered, fixed;
	struct pifs_buf out;
};

/* A query that waits for this leader to be able to answer (its first entry
 * applied, its lease held): the request as it came. */
struct held {
	uint8_t ident[PIFS_IDENT_MAX];
	size_t ilen;
	uint8_t *body;
	size_t len;
	int64_t until_ms; /* its sender has given up by then */
};

/* Another voter, as this one sends to it. */
struct peer {
	uint32_t id;
	void *sock; /* DEALER to its ROUTER, made at the first send */
	char endpoint[300];
};

struct pifs_metad {
	struct pifsd *d;
	struct pifs_meta *meta;
	struct pifs_raftlog *log;
	struct pifs_raft *raft;
	char dir[PATH_MAX];
	uint64_t snapshot_at;
	bool started;
	pthread_t thread;
	void *sock; /* DEALER to the broker */
	void *ctl;  /* SUB to PIFS_CTL_WORKERS */
	int64_t last_now; /* the last "now" stamped, so that stamps increase */
	/* Leadership as last seen, for logging and for the liveness grace. */
	bool leading;
	uint32_t leader_seen;
	int64_t lead_ms; /* when this node last became leader */
	int64_t next_check;
	/* This leader proposed the new cluster's first entries, the last at
	 * @boot_index: until it is applied nothing is answered from the state,
	 * where a heartbeat would find its node missing and add it as new. */
	bool bootstrapped;
	uint64_t boot_index;
	bool sync_now;	   /* the next flush must reach a majority's disks */
	/* The syncer: woken by a write to the log, it syncs SYNC_MS later and
	 * notes up to where, for the thread to tell Raft at its next turn. */
	pthread_t syncer;
	bool syncer_started;
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	bool sync_wanted, syncer_stop;	  /* under @sync_mu */
	uint64_t written, gen;		  /* under @sync_mu: the last write, the truncations */
	uint64_t synced, synced_gen;	  /* under @sync_mu: what the syncer made durable */
	struct live *live;		  /* owned; @nlive of @live_cap */
	size_t nlive, live_cap;
	struct waiter *wait; /* owned; @nwait of @wait_cap */
	size_t nwait, wait_cap;
	struct held *held; /* owned; @nheld of @held_cap */
	size_t nheld, held_cap;
	struct peer peer[PIFS_RAFT_MAX_VOTERS];
	size_t npeer;
	struct pifs_buf entry;	 /* an encoded log entry */
	struct pifs_buf msg;	 /* an encoded Raft message */
	struct pifs_buf scratch; /* what apply's and query's replies borrow */
	struct pifs_buf aux;	 /* node and voter lists of replies */
	char detail[512];	 /* the sentence of the reply being built */
};

static uint32_t self_id(const struct pifs_metad *md)
{
	return md->d->self->id;
}

static uint64_t map_epoch(const struct pifs_metad *md)
{
	struct pifs_meta_stats st;

	pifs_meta_stats(md->meta, &st);
	return st.epoch;
}

static void fatal(struct pifs_metad *md, const char *what, int rc)
{
	pifs_err("node %u: the metadata log in %s could not be %s: %s; stopping, as this voter "
		 "can no longer keep its promises: fix the disk, then restart the node (recovery "
		 "keeps every entry that reached the disk, and the other voters carry on)",
		 self_id(md), md->dir, what, strerror(-rc));
	_exit(EXIT_FAILURE);
}

static void set_status(struct pifs_metad *md, struct pifs_msg *rep, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Make @rep an R_STATUS whose sentence lives in md->detail until the next one. */
static void set_status(struct pifs_metad *md, struct pifs_msg *rep, int rc, const char *fmt, ...)
{
	va_list ap;

	pifs_msg_init(rep, PIFS_MSG_R_STATUS);
	rep->u.R_STATUS.status = rc;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(md->detail, sizeof(md->detail), fmt, ap);
		va_end(ap);
		rep->u.R_STATUS.detail = pifs_str_of(md->detail);
	}
}

/* The address of node @id: the map's, else the config's. Returns 0 or
 * -ENOENT. Uses md->scratch. */
static int node_addr(struct pifs_metad *md, uint32_t id, char *out, size_t cap)
{
	const struct pifs_conf_node *cn = pifs_conf_node(md->d->conf, id);
	struct pifs_msg q, map;
	struct pifs_cursor c;
	struct pifs_node n;

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	pifs_meta_query(md->meta, &q, &map, &md->scratch);
	if (map.type == PIFS_MSG_R_MAP) {
		pifs_cursor_init(&c, &map.u.R_MAP.nodes);
		while (pifs_node_next(&c, &n) == 1)
			if (n.id == id)
				return pifs_str_copy(n.addr, out, cap);
	}
	if (!cn)
		return -ENOENT;
	snprintf(out, cap, "%s", cn->addr);
	return 0;
}

/* Encode @rep for the request @reqid into @out. */
static void encode_reply(struct pifs_metad *md, struct pifs_msg *rep, uint64_t reqid,
			 struct pifs_buf *out)
{
	int rc;

	rep->reqid = reqid;
	rep->epoch = map_epoch(md);
	pifs_buf_reset(out);
	rc = pifs_proto_encode(rep, out);
	if (rc < 0) {
		set_status(md, rep, rc, "metadata node %u could not encode its reply: %s",
			   self_id(md), strerror(-rc));
		rep->reqid = reqid;
		pifs_buf_reset(out);
		pifs_proto_encode(rep, out);
	}
}

static void send_raw(struct pifs_metad *md, const uint8_t *ident, size_t ilen,
		     const struct pifs_buf *out)
{
	if (zmq_send(md->sock, ident, ilen, ZMQ_SNDMORE) < 0 ||
	    zmq_send(md->sock, out->p, out->len, 0) < 0)
		pifs_err("node %u: the metadata service could not hand a reply to the broker: %s; "
			 "the requester will time out and retry",
			 self_id(md), zmq_strerror(errno));
}

/* A new waiter for the request @reqid from @ident, or NULL (no memory: the
 * requester times out and retries). */
static struct waiter *waiter_new(struct pifs_metad *md, const uint8_t *ident, size_t ilen,
				 uint64_t reqid)
{
	struct waiter *w;

	if (pifs_grow(&md->wait, &md->wait_cap, md->nwait, sizeof(*md->wait), 64) < 0)
		return NULL;
	w = &md->wait[md->nwait++];
	memset(w, 0, sizeof(*w));
	pifs_buf_init(&w->out);
	w->ilen = ilen < sizeof(w->ident) ? ilen : sizeof(w->ident);
	memcpy(w->ident, ident, w->ilen);
	w->reqid = reqid;
	return w;
}

/* Answer @ident's request now (through a waiter, so replies keep their
 * order with those that wait). */
static void answer(struct pifs_metad *md, const uint8_t *ident, size_t ilen, struct pifs_msg *rep,
		   uint64_t reqid)
{
	struct waiter *w = waiter_new(md, ident, ilen, reqid);

	if (!w)
		return;
	encode_reply(md, rep, reqid, &w->out);
	w->answered = true;
}

/* R_LEADER: ask the leader, or (0) wait for one. A node that is no voter
 * hears nothing from the leader, but its heartbeat found it: it sends
 * callers there. */
static void leader_reply(struct pifs_metad *md, struct pifs_msg *rep)
{
	uint32_t leader = pifs_raft_leader(md->raft);

	if (leader == 0 && !pifs_raft_is_voter(md->raft, self_id(md))) {
		leader = pifs_metacall_book_leader(md->d->book);
		if (leader == self_id(md))
			leader = 0;
	}

	pifs_msg_init(rep, PIFS_MSG_R_LEADER);
	rep->u.R_LEADER.leader = leader;
	rep->u.R_LEADER.term = pifs_raft_term(md->raft);
	md->detail[0] = '\0';
	if (leader && node_addr(md, leader, md->detail, sizeof(md->detail)) < 0)
		md->detail[0] = '\0';
	rep->u.R_LEADER.addr = pifs_str_of(md->detail);
}

/* Raft's io: the log on disk. */

static int io_log_append(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct pifs_metad *md = ctx;

	return pifs_raftlog_append(md->log, index, e);
}

static int io_log_write(void *ctx)
{
	struct pifs_metad *md = ctx;
	int rc = pifs_raftlog_write(md->log);

	if (rc < 0)
		return rc;
	pthread_mutex_lock(&md->sync_mu);
	md->written = pifs_raftlog_last_index(md->log);
	if (!md->sync_wanted) {
		md->sync_wanted = true;
		pthread_cond_signal(&md->sync_cv);
	}
	pthread_mutex_unlock(&md->sync_mu);
	return 0;
}

static int io_log_sync(void *ctx)
{
	struct pifs_metad *md = ctx;

	return pifs_raftlog_sync(md->log);
}

static int io_log_truncate(void *ctx, uint64_t from)
{
	struct pifs_metad *md = ctx;

	/* A sync that read its index before the cut must not vouch for the
	 * entries written after it. */
	pthread_mutex_lock(&md->sync_mu);
	md->gen++;
	pthread_mutex_unlock(&md->sync_mu);
	return pifs_raftlog_truncate(md->log, from);
}

static int io_set_hard(void *ctx, uint64_t term, uint32_t vote)
{
	struct pifs_metad *md = ctx;

	return pifs_raftlog_set_hard(md->log, term, vote);
}

static struct peer *peer_of(struct pifs_metad *md, uint32_t id)
{
	int reconnect = PEER_RECONNECT_MS;
	char addr[256];
	struct peer *p;
	size_t i;

	for (i = 0; i < md->npeer; i++)
		if (md->peer[i].id == id)
			return &md->peer[i];
	if (md->npeer == PIFS_RAFT_MAX_VOTERS) {
		/* A voter that left: reuse its socket's slot. */
		for (i = 0; i < md->npeer; i++)
			if (!pifs_raft_is_voter(md->raft, md->peer[i].id))
				break;
		if (i == md->npeer)
			return NULL;
		if (md->peer[i].sock)
			zmq_close(md->peer[i].sock);
		md->peer[i] = md->peer[--md->npeer];
	}
	if (node_addr(md, id, addr, sizeof(addr)) < 0)
		return NULL;
	p = &md->peer[md->npeer];
	memset(p, 0, sizeof(*p));
	if (pifs_conf_endpoint(addr, p->endpoint, sizeof(p->endpoint)) < 0)
		return NULL;
	p->sock = zmq_socket(md->d->zctx, ZMQ_DEALER);
	if (!p->sock)
		return NULL;
	/* A voter that restarts is reached again within PEER_RECONNECT_MS, not
	 * after ZeroMQ's backoff: a leader whose new configuration needs it
	 * would otherwise step down for want of a majority. */
	if (pifs_rpc_sockopts(p->sock) < 0 ||
	    zmq_setsockopt(p->sock, ZMQ_RECONNECT_IVL_MAX, &reconnect, sizeof(reconnect)) < 0 ||
	    pifs_auth_client(md->d->auth, p->sock, id) < 0 ||
	    zmq_connect(p->sock, p->endpoint) < 0) {
		zmq_close(p->sock);
		return NULL;
	}
	p->id = id;
	md->npeer++;
	return p;
}

/* Raft's io: a message to another voter, dropped when it cannot go at once
 * (Raft sends again). */
static int io_send(void *ctx, uint32_t to, const struct pifs_msg *m)
{
	struct pifs_metad *md = ctx;
	struct peer *p;

	p = peer_of(md, to);
	if (!p)
		return -EHOSTUNREACH;
	pifs_buf_reset(&md->msg);
	if (pifs_proto_encode(m, &md->msg) < 0)
		return -ENOMEM;
	if (zmq_send(p->sock, md->msg.p, md->msg.len, ZMQ_DONTWAIT) < 0)
		return -errno;
	return 0;
}

/* The mutation a Raft entry applies as. @m borrows the entry or md->aux. */
static int entry_msg(struct pifs_metad *md, const struct pifs_raft_entry *e, struct pifs_msg *m)
{
	struct pifs_raft_conf conf;
	int rc;

	switch (e->type) {
	case PIFS_RAFT_DATA:
		rc = pifs_proto_decode(e->data, e->len, m);
		if (rc == 0 && pifs_proto_kind(m->type) != PIFS_KIND_MUT)
			rc = -EBADMSG;
		return rc;
	case PIFS_RAFT_NOOP:
		pifs_msg_init(m, PIFS_MSG_NOOP);
		return 0;
	case PIFS_RAFT_CONF:
		rc = pifs_raft_conf_decode(e->data, e->len, &conf);
		if (rc < 0)
			return rc;
		pifs_buf_reset(&md->aux);
		for (uint32_t i = 0; i < conf.n; i++) {
			struct pifs_nodeid v = {conf.id[i]};

			if (pifs_nodeid_append(&md->aux, &v) < 0)
				return -ENOMEM;
		}
		pifs_msg_init(m, PIFS_MSG_VOTERS);
		m->u.VOTERS.ids = pifs_list_of(&md->aux, conf.n);
		return 0;
	default:
		return -EBADMSG;
	}
}

static struct waiter *waiter_at(struct pifs_metad *md, uint64_t index)
{
	for (size_t i = 0; i < md->nwait; i++)
		if (md->wait[i].index == index && !md->wait[i].answered)
			return &md->wait[i];
	return NULL;
}

static void log_voters(struct pifs_metad *md, const struct pifs_raft_entry *e, uint64_t index)
{
	struct pifs_raft_conf conf;
	char list[PIFS_RAFT_MAX_VOTERS * 12] = "";
	size_t n = 0;

	if (pifs_raft_conf_decode(e->data, e->len, &conf) < 0)
		return;
	for (uint32_t i = 0; i < conf.n && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%u", i ? " " : "", conf.id[i]);
	pifs_info("node %u: the metadata voters are now %s (log index %" PRIu64 ")%s", self_id(md),
		  list, index,
		  pifs_raft_is_voter(md->raft, self_id(md)) ? "" : "; this node is not one of them");
}

/* Raft's io: apply committed entry @index to the state machine, and make the
 * reply of the request that waits for it. */
static int io_apply(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct pifs_metad *md = ctx;
	struct pifs_msg m, rep;
	struct waiter *w;
	int rc;

	rc = entry_msg(md, e, &m);
	/* A later leader stamps after every entry it applied. */
	if (rc == 0 && pifs_proto_now(&m) > md->last_now)
		md->last_now = pifs_proto_now(&m);
	if (rc == 0)
		rc = pifs_meta_apply(md->meta, index, &m, &rep, &md->scratch);
	if (rc < 0) {
		pifs_err("node %u: applying metadata entry %" PRIu64 " failed: %s; stopping, as "
			 "the state in RAM is no longer usable: restart the node to recover from "
			 "its log and the other voters",
			 self_id(md), index, strerror(-rc));
		_exit(EXIT_FAILURE);
	}
	if (e->type == PIFS_RAFT_CONF)
		log_voters(md, e, index);
	w = waiter_at(md, index);
	if (!w)
		return 0;
	if (w->term != e->term) {
		/* Another leader's entry took its place: the requester asks again. */
		leader_reply(md, &rep);
		encode_reply(md, &rep, w->reqid, &w->out);
	} else if (!w->fixed) {
		encode_reply(md, &rep, w->reqid, &w->out);
	}
	w->answered = true;
	return 0;
}

/* Raft's io: snapshots. */

static ssize_t io_snap_read(void *ctx, uint64_t off, void *buf, size_t cap)
{
	struct pifs_metad *md = ctx;

	return pifs_raftlog_snap_read(md->log, off, buf, cap);
}

static int io_snap_write(void *ctx, uint64_t off, const void *p, size_t len)
{
	struct pifs_metad *md = ctx;

	return pifs_raftlog_snap_write(md->log, off, p, len);
}

static int io_snap_install(void *ctx, uint64_t index, uint64_t term,
			   const struct pifs_raft_conf *conf, uint64_t total)
{
	struct pifs_metad *md = ctx;
	struct pifs_meta *m = NULL;
	int rc;

	rc = pifs_raftlog_snap_install(md->log, index, term, conf, total, &m);
	if (rc < 0) {
		pifs_warn("node %u: refused a metadata snapshot at index %" PRIu64 " from the "
			  "leader: %s; the leader sends it again",
			  self_id(md), index, strerror(-rc));
		return rc;
	}
	pifs_meta_free(md->meta);
	md->meta = m;
	pthread_mutex_lock(&md->sync_mu);
	md->gen++;
	md->written = index;
	pthread_mutex_unlock(&md->sync_mu);
	pifs_info("node %u: caught up from the leader's metadata snapshot at log index %" PRIu64,
		  self_id(md), index);
	return 0;
}

/* Stamp the mutation @m and propose it; *@index (OUT) is its entry. Returns
 * 0, -EAGAIN (not the leader) or -E2BIG. Other errors stop the process. */
static int propose(struct pifs_metad *md, struct pifs_msg *m, uint64_t *index)
{
	int64_t now = pifs_now_ns();
	uint64_t reqid = m->reqid, epoch = m->epoch;
	int rc;

	/* Stamps only go up, even when the clock steps back or this leader's
	 * clock is behind its predecessor's (last_now also follows what was
	 * applied, and a new leader proposes only once it applied the log it
	 * inherited), so that times in the log keep their order. */
	if (now <= md->last_now)
		now = md->last_now + 1;
	md->last_now = now;
	pifs_proto_stamp(m, now);
	/* The envelope of a caller means nothing in the log; its session does. */
	m->reqid = 0;
	m->epoch = 0;
	pifs_buf_reset(&md->entry);
	rc = pifs_proto_encode(m, &md->entry);
	m->reqid = reqid;
	m->epoch = epoch;
	if (rc < 0)
		return rc;
	rc = pifs_raft_propose(md->raft, md->entry.p, md->entry.len, index);
	if (rc == -EAGAIN || rc == -E2BIG)
		return rc;
	if (rc < 0)
		fatal(md, "written", rc);
	return 0;
}

static struct live *find_live(struct pifs_metad *md, uint32_t id)
{
	for (size_t i = 0; i < md->nlive; i++)
		if (md->live[i].id == id)
			return &md->live[i];
	return NULL;
}

static void log_node_add(struct pifs_metad *md, const struct pifs_msg_NODE_ADD *a, bool joined,
			 bool weighed, bool came_up)
{
	if (joined)
		pifs_info("node %u: node %u at %.*s joins the cluster map as a new node with "
			  "weight %u; it takes no data until an operator admits it: pifs-admin "
			  "node add %.*s",
			  self_id(md), a->id, (int)a->addr.len, a->addr.p, a->weight,
			  (int)a->addr.len, a->addr.p);
	else if (weighed)
		pifs_info("node %u: node %u gets weight %u, the size of its disk in GiB",
			  self_id(md), a->id, a->weight);
	if (came_up && !joined)
		pifs_info("node %u: node %u is up%s", self_id(md), a->id,
			  (a->flags & PIFS_NODE_IN)    ? ""
			  : (a->flags & PIFS_NODE_NEW) ? " (new: it stays out until admitted)"
						       : " (draining: it stays out)");
}

/* Is @addr (borrowed) host:port, an address other nodes can use? */
static bool addr_ok(struct pifs_str addr)
{
	char a[256], ep[300];

	return pifs_str_copy(addr, a, sizeof(a)) == 0 && pifs_conf_endpoint(a, ep, sizeof(ep)) == 0;
}

/* A heartbeat: note the node's figures, and propose its map entry when it
 * is new to the map, its weight is "auto", or the map says it is down: a
 * node that answers is up, and in again unless it is new or being drained.
 * A node the map does not list joins it as new (PIFS_NODE_NEW, not in),
 * whether the config names it or not: only an operator makes a node a
 * member. *@index (OUT) is the entry proposed, 0 for none. */
static int hello(struct pifs_metad *md, const struct pifs_msg_NODE_HELLO *h, struct pifs_msg *rep,
		 uint64_t *index)
{
	const struct pifs_conf_node *cn = pifs_conf_node(md->d->conf, h->id);
	uint32_t flags = 0, weight = 0, nflags, nweight;
	struct pifs_msg add;
	struct live *l;
	bool known, came_up;
	char addr[256];
	int rc;

	*index = 0;
	known = pifs_meta_node(md->meta, h->id, &flags, &weight) == 0;
	if (!known && !cn && !addr_ok(h->addr)) {
		set_status(md, rep, -EINVAL,
			   "node %u is not in the cluster map and its address '%.*s' is not "
			   "host:port; start it with --listen HOST:PORT, the address the other "
			   "nodes reach it at",
			   h->id, (int)h->addr.len, h->addr.p);
		return 0;
	}
	/* A node that joined by itself is known by its address: another daemon
	 * given the same id must not pass for it. */
	if (known && !cn && node_addr(md, h->id, addr, sizeof(addr)) == 0 &&
	    (strlen(addr) != h->addr.len || memcmp(addr, h->addr.p, h->addr.len) != 0)) {
		set_status(md, rep, -EEXIST,
			   "node id %u belongs to the node at %s in the cluster map, not to "
			   "'%.*s'; start this daemon with another --node id, or, if node %u "
			   "moved, change its address in the map first",
			   h->id, addr, (int)h->addr.len, h->addr.p, h->id);
		return 0;
	}
	l = find_live(md, h->id);
	if (!l) {
		if (pifs_grow(&md->live, &md->live_cap, md->nlive, sizeof(*md->live), 16) < 0)
			return -ENOMEM;
		l = &md->live[md->nlive++];
		memset(l, 0, sizeof(*l));
		l->id = h->id;
	}
	l->seen_ms = pifs_now_ms();
	l->seen_ns = pifs_now_ns();
	l->capacity = h->capacity;
	l->free = h->free;
	l->used = h->used;
	l->chunks = h->chunks;
	l->work = h->work;
	nflags = known ? flags : PIFS_NODE_NEW;
	came_up = !(nflags & PIFS_NODE_UP);
	nflags |= PIFS_NODE_UP;
	if (came_up && !(nflags & (PIFS_NODE_DRAIN | PIFS_NODE_NEW)))
		nflags |= PIFS_NODE_IN;
	/* Weight "auto" is the disk's size in GiB, which only the node can
	 * tell: it is filled in at the first heartbeat that reports one. */
	nweight = known ? weight : cn ? cn->weight : 0;
	if (nweight == 0 && h->capacity > 0)
		nweight = h->capacity >> 30 ? (uint32_t)(h->capacity >> 30) : 1;
	if (!known || nweight != weight || nflags != flags) {
		pifs_msg_init(&add, PIFS_MSG_NODE_ADD);
		add.u.NODE_ADD.id = h->id;
		add.u.NODE_ADD.weight = nweight;
		add.u.NODE_ADD.flags = nflags;
		add.u.NODE_ADD.addr = cn ? pifs_str_of(cn->addr) : h->addr;
		rc = propose(md, &add, index);
		if (rc < 0)
			return rc;
		md->sync_now = true;
		log_node_add(md, &add.u.NODE_ADD, !known, known && nweight != weight, came_up);
	}
	set_status(md, rep, 0, NULL);
	return 0;
}

static int cluster_stat(struct pifs_metad *md, struct pifs_msg *rep)
{
	struct pifs_meta_stats st;
	struct pifs_msg q, map;
	struct pifs_nodestat ns;
	struct pifs_cursor c;
	struct pifs_node n;
	uint32_t count = 0;
	int rc;

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	pifs_meta_query(md->meta, &q, &map, &md->scratch);
	if (map.type != PIFS_MSG_R_MAP) {
		*rep = map; /* the state's own refusal, such as "not initialised" */
		return 0;
	}
	pifs_buf_reset(&md->aux);
	pifs_cursor_init(&c, &map.u.R_MAP.nodes);
	while ((rc = pifs_node_next(&c, &n)) == 1) {
		const struct live *l = find_live(md, n.id);

		memset(&ns, 0, sizeof(ns));
		ns.id = n.id;
		ns.weight = n.weight;
		ns.flags = n.flags;
		ns.addr = n.addr;
		if (l) {
			ns.last_seen = l->seen_ns;
			ns.capacity = l->capacity;
			ns.free = l->free;
			ns.used = l->used;
			ns.chunks = l->chunks;
			ns.work = l->work;
		}
		if (pifs_nodestat_append(&md->aux, &ns) < 0)
			return -ENOMEM;
		count++;
	}
	if (rc < 0)
		return rc;
	pifs_meta_stats(md->meta, &st);
	pifs_msg_init(rep, PIFS_MSG_R_CLUSTER);
	rep->u.R_CLUSTER.epoch = st.epoch;
	rep->u.R_CLUSTER.replicas = st.replicas;
	rep->u.R_CLUSTER.chunk_size = st.chunk_size;
	rep->u.R_CLUSTER.log_index = st.index;
	rep->u.R_CLUSTER.inodes = st.inodes;
	rep->u.R_CLUSTER.logical = st.logical;
	rep->u.R_CLUSTER.chunks = st.chunks;
	rep->u.R_CLUSTER.chunk_raw = st.chunk_raw;
	rep->u.R_CLUSTER.chunk_stored = st.chunk_stored;
	rep->u.R_CLUSTER.chunk_refs = st.chunk_refs;
	rep->u.R_CLUSTER.nodes = pifs_list_of(&md->aux, count);
	return 0;
}

/* df: the space of every node that reported to this leader, as last
 * reported. */
static void statfs_space(struct pifs_metad *md, struct pifs_msg *rep)
{
	if (rep->type != PIFS_MSG_R_STATFS)
		return;
	for (size_t i = 0; i < md->nlive; i++) {
		rep->u.R_STATFS.capacity += md->live[i].capacity;
		rep->u.R_STATFS.free += md->live[i].free;
	}
}

/* META_STAT: this node's view of the replicated log. */
static int meta_stat(struct pifs_metad *md, struct pifs_msg *rep)
{
	struct pifs_raft_peer peers[PIFS_RAFT_MAX_VOTERS];
	struct pifs_raft *r = md->raft;
	int64_t now = pifs_now_ms();
	char addrs[PIFS_RAFT_MAX_VOTERS][256];
	size_t n, i;

	n = pifs_raft_peers(r, peers, PIFS_RAFT_MAX_VOTERS);
	/* The addresses first: node_addr reuses the scratch. */
	for (i = 0; i < n; i++)
		if (node_addr(md, peers[i].id, addrs[i], sizeof(addrs[i])) < 0)
			addrs[i][0] = '\0';
	pifs_buf_reset(&md->aux);
	for (i = 0; i < n; i++) {
		struct pifs_voter v = {0};
		uint32_t flags = 0, weight;

		v.id = peers[i].id;
		v.addr = pifs_str_of(addrs[i]);
		if (pifs_raft_role(r) == PIFS_RAFT_LEADER) {
			v.match = peers[i].match;
			v.synced = peers[i].synced;
			/* How long ago it answered: 0 for the leader itself, -1
			 * for a voter not heard in this term. */
			if (peers[i].id == self_id(md))
				v.contact_ms = 0;
			else if (peers[i].contact_ms == 0)
				v.contact_ms = -1;
			else
				v.contact_ms = now - peers[i].contact_ms;
		} else {
			v.contact_ms = -1;
		}
		if (pifs_meta_node(md->meta, v.id, &flags, &weight) == 0)
			v.flags = flags;
		if (pifs_voter_append(&md->aux, &v) < 0)
			return -ENOMEM;
	}
	pifs_msg_init(rep, PIFS_MSG_R_META);
	rep->u.R_META.id = self_id(md);
	rep->u.R_META.role = pifs_raft_role(r);
	rep->u.R_META.leader = pifs_raft_leader(r);
	rep->u.R_META.term = pifs_raft_term(r);
	rep->u.R_META.commit = pifs_raft_commit(r);
	rep->u.R_META.applied = pifs_raft_applied(r);
	rep->u.R_META.last_index = pifs_raft_last_index(r);
	rep->u.R_META.snap_index = pifs_raft_snap_index(r);
	rep->u.R_META.log_bytes = pifs_raftlog_size(md->log);
	rep->u.R_META.voters = pifs_list_of(&md->aux, (uint32_t)n);
	return 0;
}

/* META_VOTER: propose the voters with node @id added or removed. */
static int meta_voter(struct pifs_metad *md, const struct pifs_msg_META_VOTER *v,
		      struct pifs_msg *rep, uint64_t *index)
{
	struct pifs_raft_conf conf = *pifs_raft_conf(md->raft);
	uint32_t flags, weight, i;
	bool is = pifs_raft_is_voter(md->raft, v->id);
	int rc;

	*index = 0;
	if (v->add && pifs_meta_node(md->meta, v->id, &flags, &weight) < 0) {
		set_status(md, rep, -ENOENT,
			   "node %u is not in the cluster map; start its daemon (and admit it "
			   "with pifs-admin node add) before making it a metadata voter",
			   v->id);
		return 0;
	}
	if (v->add == is) {
		set_status(md, rep, v->add ? -EEXIST : -ENOENT, "node %u is %s a metadata voter",
			   v->id, is ? "already" : "not");
		return 0;
	}
	if (v->add) {
		if (conf.n == PIFS_RAFT_MAX_VOTERS) {
			set_status(md, rep, -ENOSPC, "there are %u metadata voters already, the most "
				   "pifs supports", conf.n);
			return 0;
		}
		for (i = conf.n; i > 0 && conf.id[i - 1] > v->id; i--)
			conf.id[i] = conf.id[i - 1];
		conf.id[i] = v->id;
		conf.n++;
	} else {
		if (conf.n == 1) {
			set_status(md, rep, -EINVAL, "node %u is the last metadata voter; add "
				   "another before removing it", v->id);
			return 0;
		}
		for (i = 0; conf.id[i] != v->id; i++)
			;
		memmove(&conf.id[i], &conf.id[i + 1], (conf.n - i - 1) * sizeof(conf.id[0]));
		conf.n--;
	}
	rc = pifs_raft_propose_conf(md->raft, &conf, index);
	if (rc == -EBUSY) {
		set_status(md, rep, rc, "another change of the metadata voters is not committed "
			   "yet; wait for it (pifs-admin meta status) and try again");
		return 0;
	}
	if (rc == -EAGAIN || rc == -EINVAL) {
		set_status(md, rep, rc, "node %u could not change the metadata voters: %s",
			   self_id(md), strerror(-rc));
		return 0;
	}
	if (rc < 0)
		fatal(md, "written", rc);
	md->sync_now = true;
	pifs_info("node %u: %s node %u %s the metadata voters (log index %" PRIu64 ")",
		  self_id(md), v->add ? "adding" : "removing", v->id, v->add ? "to" : "from",
		  *index);
	set_status(md, rep, 0, NULL);
	return 0;
}

static bool is_map_change(enum pifs_msg_type t)
{
	return t == PIFS_MSG_INIT || t == PIFS_MSG_NODE_ADD || t == PIFS_MSG_NODE_SET ||
	       t == PIFS_MSG_NODE_DEL;
}

/* A mutation from a caller: proposed, answered when applied. */
static void serve_mutation(struct pifs_metad *md, const uint8_t *ident, size_t ilen,
			   struct pifs_msg *m)
{
	struct pifs_msg rep;
	struct waiter *w;
	uint64_t index;
	int rc;

	if (m->type == PIFS_MSG_NOOP || m->type == PIFS_MSG_VOTERS) {
		set_status(md, &rep, -EPERM, "%s is made by the metadata service, not sent to it",
			   pifs_proto_name(m->type));
		answer(md, ident, ilen, &rep, m->reqid);
		return;
	}
	rc = propose(md, m, &index);
	if (rc < 0) {
		set_status(md, &rep, rc, "metadata node %u could not log %s: %s", self_id(md),
			   pifs_proto_name(m->type), strerror(-rc));
		answer(md, ident, ilen, &rep, m->reqid);
		return;
	}
	w = waiter_new(md, ident, ilen, m->reqid);
	if (!w)
		return;
	w->index = index;
	w->term = pifs_raft_term(md->raft);
	/* The cluster map is the operator's: on a majority's disks before
	 * the command returns. */
	if (is_map_change(m->type)) {
		w->durable = index;
		md->sync_now = true;
	}
}

/* A query or an administration request at the leader, which can answer
 * from its state. */
static void serve_query(struct pifs_metad *md, const uint8_t *ident, size_t ilen,
			struct pifs_msg *m)
{
	struct pifs_msg rep;
	struct waiter *w;
	uint64_t index = 0;
	int rc = 0;

	pifs_msg_init(&rep, PIFS_MSG_R_STATUS);
	switch (m->type) {
	case PIFS_MSG_META_SYNC:
		/* Everything acknowledged so far, on a majority's disks. */
		set_status(md, &rep, 0, NULL);
		index = pifs_raft_last_index(md->raft);
		break;
	case PIFS_MSG_CHUNK_REFS:
		/* Garbage collection must not delete a chunk on the word of a
		 * change that a power cut could undo: the answer waits until
		 * the state it comes from is on a majority's disks. */
		rc = pifs_meta_query(md->meta, m, &rep, &md->scratch);
		index = pifs_raft_applied(md->raft);
		break;
	case PIFS_MSG_NODE_HELLO:
		rc = hello(md, &m->u.NODE_HELLO, &rep, &index);
		break;
	case PIFS_MSG_CLUSTER_STAT:
		rc = cluster_stat(md, &rep);
		break;
	case PIFS_MSG_META_VOTER:
		rc = meta_voter(md, &m->u.META_VOTER, &rep, &index);
		break;
	default:
		rc = pifs_meta_query(md->meta, m, &rep, &md->scratch);
		if (m->type == PIFS_MSG_STATFS)
			statfs_space(md, &rep);
		break;
	}
	if (rc < 0) {
		set_status(md, &rep, rc, "metadata node %u could not serve %s: %s", self_id(md),
			   pifs_proto_name(m->type), strerror(-rc));
		index = 0;
	}
	w = waiter_new(md, ident, ilen, m->reqid);
	if (!w)
		return;
	encode_reply(md, &rep, m->reqid, &w->out);
	if (m->type == PIFS_MSG_META_SYNC || m->type == PIFS_MSG_CHUNK_REFS) {
		w->answered = true;
		w->durable = index;
		md->sync_now = true;
	} else if (index) {
		/* A heartbeat or a change of voters: answered once applied. */
		w->index = index;
		w->term = pifs_raft_term(md->raft);
		w->fixed = true;
	} else {
		w->answered = true;
	}
}

/* Keep the request for when this leader can answer it. */
static void hold(struct pifs_metad *md, const uint8_t *ident, size_t ilen, const void *body,
		 size_t len)
{
	struct held *h;

	if (pifs_grow(&md->held, &md->held_cap, md->nheld, sizeof(*md->held), 16) < 0)
		return;
	h = &md->held[md->nheld];
	h->body = malloc(len ? len : 1);
	if (!h->body)
		return;
	memcpy(h->body, body, len);
	h->len = len;
	h->ilen = ilen < sizeof(h->ident) ? ilen : sizeof(h->ident);
	memcpy(h->ident, ident, h->ilen);
	h->until_ms = pifs_now_ms() + (int64_t)md->d->conf->timeout_ms;
	md->nheld++;
}

/* Can this leader answer from its state? */
static bool can_answer(struct pifs_metad *md)
{
	return pifs_raft_leader_ready(md->raft) && pifs_raft_applied(md->raft) >= md->boot_index &&
	       pifs_raft_lease(md->raft, pifs_now_ms());
}

/* Serve the message in @body (borrowed) from @ident. Returns false when it
 * must wait for this leader to be able to answer (the caller holds it). */
static bool serve(struct pifs_metad *md, const uint8_t *ident, size_t ilen, const void *body,
		  size_t len)
{
	struct pifs_msg m, rep;
	int rc, kind;

	rc = pifs_proto_decode(body, len, &m);
	if (rc < 0) {
		set_status(md, &rep, rc, "metadata node %u could not decode a request",
			   self_id(md));
		answer(md, ident, ilen, &rep, m.reqid);
		return true;
	}
	kind = pifs_proto_kind(m.type);
	if (kind == PIFS_KIND_RFT) {
		rc = pifs_raft_step(md->raft, &m);
		if (rc == -ESTALE) {
			pifs_err("node %u: the metadata leader's log lacks entries that this voter "
				 "applied (a power cut took them from the other voters' disks "
				 "before they were synced); stopping: restart the daemon "
				 "(systemd's Restart=on-failure does) and it rejoins from its last "
				 "snapshot, which the leader has",
				 self_id(md));
			_exit(EXIT_FAILURE);
		}
		if (rc < 0)
			fatal(md, "written", rc);
		return true;
	}
	if (m.type == PIFS_MSG_META_STAT) {
		rc = meta_stat(md, &rep);
		if (rc < 0)
			set_status(md, &rep, rc, "metadata node %u could not report: %s",
				   self_id(md), strerror(-rc));
		answer(md, ident, ilen, &rep, m.reqid);
		return true;
	}
	if (kind != PIFS_KIND_MUT && kind != PIFS_KIND_QRY && kind != PIFS_KIND_ADM) {
		set_status(md, &rep, -EOPNOTSUPP, "%s is not a metadata request",
			   pifs_proto_name(m.type));
		answer(md, ident, ilen, &rep, m.reqid);
		return true;
	}
	if (pifs_raft_role(md->raft) != PIFS_RAFT_LEADER) {
		leader_reply(md, &rep);
		answer(md, ident, ilen, &rep, m.reqid);
		return true;
	}
	if (!can_answer(md))
		return false;
	if (kind == PIFS_KIND_MUT) {
		serve_mutation(md, ident, ilen, &m);
		return true;
	}
	serve_query(md, ident, ilen, &m);
	return true;
}

/* Take one message (waiting for it if @flags is 0) and serve it. Returns
 * 0, or -EAGAIN when there was none. */
static int take(struct pifs_metad *md, int flags)
{
	zmq_msg_t ident, body, junk;
	int more = 0, rc;
	size_t sz = sizeof(more), ilen;

	zmq_msg_init(&ident);
	if (zmq_msg_recv(&ident, md->sock, flags) < 0) {
		rc = -errno;
		zmq_msg_close(&ident);
		return rc;
	}
	/* A failed receive leaves @body empty, which decodes as -EBADMSG. */
	zmq_msg_init(&body);
	zmq_msg_recv(&body, md->sock, 0);
	/* The broker sends no payload to the metadata service; drop any. */
	while (zmq_getsockopt(md->sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
		zmq_msg_init(&junk);
		zmq_msg_recv(&junk, md->sock, 0);
		zmq_msg_close(&junk);
	}
	ilen = zmq_msg_size(&ident);
	if (!serve(md, zmq_msg_data(&ident), ilen, zmq_msg_data(&body), zmq_msg_size(&body)))
		hold(md, zmq_msg_data(&ident), ilen, zmq_msg_data(&body), zmq_msg_size(&body));
	zmq_msg_close(&body);
	zmq_msg_close(&ident);
	return 0;
}

/* Serve the held queries this leader can now answer; drop those whose
 * senders gave up. */
static void serve_held(struct pifs_metad *md)
{
	int64_t now = pifs_now_ms();
	size_t i, n = 0;

	for (i = 0; i < md->nheld; i++) {
		struct held *h = &md->held[i];

		if (now < h->until_ms && !serve(md, h->ident, h->ilen, h->body, h->len)) {
			md->held[n++] = *h;
			continue;
		}
		free(h->body);
	}
	md->nheld = n;
}

/* Send the replies that are due, in order of arrival. */
static void send_replies(struct pifs_metad *md)
{
	uint64_t synced = pifs_raft_synced_quorum(md->raft);
	size_t i, n = 0;

	for (i = 0; i < md->nwait; i++) {
		struct waiter *w = &md->wait[i];

		if (!w->answered || (w->durable && synced < w->durable)) {
			md->wait[n++] = *w;
			continue;
		}
		send_raw(md, w->ident, w->ilen, &w->out);
		pifs_buf_fini(&w->out);
	}
	md->nwait = n;
}

/* This node stopped leading: whatever waits for it is sent to the next
 * leader, where a resent mutation is applied once (its session). */
static void drop_leadership(struct pifs_metad *md)
{
	struct pifs_msg rep;
	size_t i;

	for (i = 0; i < md->nwait; i++) {
		struct waiter *w = &md->wait[i];

		/* A reply that waited for nothing more goes as it is (a
		 * leader's own removal from the voters, committed). */
		if (!w->answered || w->durable) {
			leader_reply(md, &rep);
			encode_reply(md, &rep, w->reqid, &w->out);
		}
		send_raw(md, w->ident, w->ilen, &w->out);
		pifs_buf_fini(&w->out);
	}
	md->nwait = 0;
	for (i = 0; i < md->nheld; i++) {
		struct held *h = &md->held[i];
		struct pifs_msg m;
		struct pifs_buf out;

		pifs_buf_init(&out);
		if (pifs_proto_decode(h->body, h->len, &m) == 0) {
			leader_reply(md, &rep);
			encode_reply(md, &rep, m.reqid, &out);
			send_raw(md, h->ident, h->ilen, &out);
		}
		pifs_buf_fini(&out);
		free(h->body);
	}
	md->nheld = 0;
}

/* Log changes of leadership, and start or end this node's term as leader. */
static void follow_role(struct pifs_metad *md)
{
	bool leading = pifs_raft_role(md->raft) == PIFS_RAFT_LEADER;
	uint32_t leader = pifs_raft_leader(md->raft);

	if (leading && !md->leading) {
		pifs_info("node %u: metadata leader for term %" PRIu64 " (log index %" PRIu64 ")",
			  self_id(md), pifs_raft_term(md->raft), pifs_raft_last_index(md->raft));
		/* Heartbeats heard under an earlier term are stale: every node
		 * gets down_after from now. */
		md->nlive = 0;
		md->lead_ms = pifs_now_ms();
		md->next_check = md->lead_ms;
		md->bootstrapped = false;
		md->boot_index = 0;
	} else if (!leading && md->leading) {
		pifs_info("node %u: no longer the metadata leader (term %" PRIu64 "); requests "
			  "go to %s",
			  self_id(md), pifs_raft_term(md->raft),
			  leader ? "the new leader" : "whichever voter is elected");
		drop_leadership(md);
	} else if (!leading && leader && leader != md->leader_seen) {
		pifs_info("node %u: the metadata leader is node %u (term %" PRIu64 ")",
			  self_id(md), leader, pifs_raft_term(md->raft));
	}
	md->leading = leading;
	md->leader_seen = leader;
}

static void log_change(struct pifs_metad *md, const struct change *ch)
{
	const struct pifs_conf *conf = md->d->conf;

	if (ch->out)
		pifs_info("node %u: node %u is out: its chunks are being copied to other nodes "
			  "(no heartbeat for %.1f s); it comes back in by itself once it answers",
			  self_id(md), ch->id, ch->silent_s);
	else if (!(ch->flags & PIFS_NODE_IN))
		pifs_info("node %u: node %u is down (no heartbeat for %.1f s); it is %s, so no "
			  "chunk is placed on it: nothing to do for it until it answers",
			  self_id(md), ch->id, ch->silent_s,
			  (ch->flags & PIFS_NODE_NEW)	  ? "new and not admitted"
			  : (ch->flags & PIFS_NODE_DRAIN) ? "being drained"
							  : "out");
	else
		pifs_info("node %u: node %u is down (no heartbeat for %.1f s); its chunks are read "
			  "from the other owners; check that node: its chunks are copied elsewhere "
			  "after %.1f s without a heartbeat",
			  self_id(md), ch->id, ch->silent_s, (double)conf->out_after_ms / 1000);
}

/* Mark down the nodes silent for down_after, and out those silent for
 * out_after, counting from this leader's start for nodes not heard since. */
static void check_liveness(struct pifs_metad *md)
{
	const struct pifs_conf *conf = md->d->conf;
	int64_t now = pifs_now_ms(), silent;
	struct pifs_msg q, map, add;
	struct change *ch;
	struct pifs_cursor c;
	struct pifs_node n;
	uint64_t index;
	size_t nch = 0, i;

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	pifs_meta_query(md->meta, &q, &map, &md->scratch);
	if (map.type != PIFS_MSG_R_MAP)
		return;
	ch = calloc(map.u.R_MAP.nodes.count ? map.u.R_MAP.nodes.count : 1, sizeof(*ch));
	if (!ch)
		return;
	/* Collected first: proposing reuses the scratch the node list borrows. */
	pifs_cursor_init(&c, &map.u.R_MAP.nodes);
	while (nch < map.u.R_MAP.nodes.count && pifs_node_next(&c, &n) == 1) {
		const struct live *l = find_live(md, n.id);
		struct change *x = &ch[nch];

		silent = now - (l ? l->seen_ms : md->lead_ms);
		if ((n.flags & PIFS_NODE_UP) && silent > (int64_t)conf->down_after_ms)
			x->flags = n.flags & ~(uint32_t)PIFS_NODE_UP;
		else if (!(n.flags & PIFS_NODE_UP) && (n.flags & PIFS_NODE_IN) &&
			 silent > (int64_t)conf->out_after_ms)
			x->flags = n.flags & ~(uint32_t)PIFS_NODE_IN;
		else
			continue;
		if (pifs_str_copy(n.addr, x->addr, sizeof(x->addr)) < 0)
			continue;
		x->id = n.id;
		x->weight = n.weight;
		x->out = (n.flags & PIFS_NODE_IN) && !(x->flags & PIFS_NODE_IN);
		x->silent_s = (double)silent / 1000;
		nch++;
	}
	for (i = 0; i < nch; i++) {
		pifs_msg_init(&add, PIFS_MSG_NODE_ADD);
		add.u.NODE_ADD.id = ch[i].id;
		add.u.NODE_ADD.weight = ch[i].weight;
		add.u.NODE_ADD.flags = ch[i].flags;
		add.u.NODE_ADD.addr = pifs_str_of(ch[i].addr);
		if (propose(md, &add, &index) < 0)
			break;
		md->sync_now = true;
		log_change(md, &ch[i]);
	}
	free(ch);
}

/* How often the liveness of the nodes is checked: often enough that a node
 * is marked down within a quarter of down_after of its deadline. */
static int64_t check_period(const struct pifs_metad *md)
{
	int64_t p = md->d->conf->down_after_ms / 4;

	return p < 50 ? 50 : p > 1000 ? 1000 : p;
}

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint64_t)pifs_now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}

/* The first leader of a new cluster proposes its first entries: the cluster
 * of the config. A leader that dies before they commit leaves them to the
 * next one; should both copies commit, the second INIT is refused and the
 * NODE_ADDs are the same upserts. */
static void bootstrap(struct pifs_metad *md)
{
	const struct pifs_conf *conf = md->d->conf;
	uint64_t cluster_id = random_u64(), index;
	struct pifs_meta_stats st;
	struct pifs_msg m;
	size_t i;

	pifs_meta_stats(md->meta, &st);
	if (md->bootstrapped || st.chunk_size != 0)
		return;
	md->bootstrapped = true;
	pifs_msg_init(&m, PIFS_MSG_INIT);
	m.u.INIT.replicas = conf->replicas;
	m.u.INIT.chunk_size = conf->chunk_size;
	m.u.INIT.cluster_id = cluster_id;
	if (propose(md, &m, &index) < 0)
		return;
	for (i = 0; i < conf->n_nodes; i++) {
		pifs_msg_init(&m, PIFS_MSG_NODE_ADD);
		m.u.NODE_ADD.id = conf->nodes[i].id;
		m.u.NODE_ADD.weight = conf->nodes[i].weight;
		m.u.NODE_ADD.flags = PIFS_NODE_IN | (conf->nodes[i].meta ? PIFS_NODE_META : 0);
		m.u.NODE_ADD.addr = pifs_str_of(conf->nodes[i].addr);
		if (propose(md, &m, &index) < 0)
			return;
	}
	md->boot_index = index;
	md->sync_now = true;
	pifs_info("node %u: new cluster %016" PRIx64 ": %u replicas, %u KiB chunks, %zu nodes",
		  self_id(md), cluster_id, conf->replicas, conf->chunk_size >> 10, conf->n_nodes);
}

/* Write a snapshot when the log has grown past snapshot_at (@force: at any
 * size), of a state that is durable on a majority (pifs_raft_durable): one
 * taken past that could hold entries that a power cut of every voter takes
 * from the others' logs. A leader that wants one makes its next flushes
 * sync, so that the durable index catches up with what it applied. */
static void maybe_snapshot(struct pifs_metad *md, bool force)
{
	struct pifs_raft_conf conf;
	uint64_t index = pifs_raft_applied(md->raft);
	int rc;

	if (index == pifs_raft_snap_index(md->raft) ||
	    (!force && pifs_raftlog_size(md->log) <= md->snapshot_at))
		return;
	if (index > pifs_raft_durable(md->raft)) {
		md->sync_now = pifs_raft_role(md->raft) == PIFS_RAFT_LEADER;
		return;
	}
	pifs_raft_conf_at(md->raft, index, &conf);
	rc = pifs_raftlog_snapshot(md->log, md->meta, index, pifs_raft_term_at(md->raft, index),
				   &conf);
	if (rc < 0) {
		pifs_warn("node %u: could not write a metadata snapshot in %s: %s; the log keeps "
			  "growing and restarts take longer until the disk is fixed",
			  self_id(md), md->dir, strerror(-rc));
		return;
	}
	pifs_raft_compact(md->raft, index, SNAPSHOT_KEEP);
}

/* Tell Raft what the syncer made durable. */
static void note_synced(struct pifs_metad *md)
{
	uint64_t synced = 0;

	pthread_mutex_lock(&md->sync_mu);
	if (md->synced_gen == md->gen)
		synced = md->synced;
	pthread_mutex_unlock(&md->sync_mu);
	if (synced && pifs_raft_synced(md->raft, synced) < 0)
		fatal(md, "synced", -EIO);
}

/* What follows a batch: time passes, proposals go out, replies come back. */
static void turn(struct pifs_metad *md)
{
	int64_t now = pifs_now_ms();
	bool sync;
	int rc;

	note_synced(md);
	rc = pifs_raft_tick(md->raft, now);
	if (rc < 0)
		fatal(md, "written", rc);
	follow_role(md);
	if (pifs_raft_leader_ready(md->raft)) {
		bootstrap(md);
		if (now >= md->next_check) {
			check_liveness(md);
			md->next_check = now + check_period(md);
		}
	}
	if (md->nheld && can_answer(md))
		serve_held(md);
	sync = md->sync_now;
	md->sync_now = false;
	rc = pifs_raft_flush(md->raft, sync);
	if (rc < 0)
		fatal(md, sync ? "synced" : "written", rc);
	follow_role(md);
	send_replies(md);
	maybe_snapshot(md, false);
}

static void *syncer(void *arg)
{
	struct pifs_metad *md = arg;
	struct timespec until;
	uint64_t index, gen;
	bool stop;
	int rc;

	pthread_mutex_lock(&md->sync_mu);
	for (;;) {
		while (!md->sync_wanted && !md->syncer_stop)
			pthread_cond_wait(&md->sync_cv, &md->sync_mu);
		/* Let SYNC_MS of changes gather into one sync. */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += SYNC_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!md->syncer_stop &&
		       pthread_cond_timedwait(&md->sync_cv, &md->sync_mu, &until) == 0)
			;
		md->sync_wanted = false;
		stop = md->syncer_stop;
		index = md->written;
		gen = md->gen;
		pthread_mutex_unlock(&md->sync_mu);
		rc = pifs_raftlog_sync(md->log);
		if (rc < 0)
			fatal(md, "synced", rc);
		pthread_mutex_lock(&md->sync_mu);
		md->synced = index;
		md->synced_gen = gen;
		if (stop)
			break;
	}
	pthread_mutex_unlock(&md->sync_mu);
	return NULL;
}

static void *run(void *arg)
{
	struct pifs_metad *md = arg;
	int rc, n;

	while (!atomic_load(&md->d->workers_stop)) {
		zmq_pollitem_t items[2] = {{md->ctl, 0, ZMQ_POLLIN, 0},
					   {md->sock, 0, ZMQ_POLLIN, 0}};

		rc = zmq_poll(items, 2, TICK_MS);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			pifs_err("node %u: the metadata service stops: %s", self_id(md),
				 zmq_strerror(errno));
			break;
		}
		if (items[0].revents & ZMQ_POLLIN)
			break;
		if (items[1].revents & ZMQ_POLLIN)
			for (n = 0; n < BATCH; n++)
				if (take(md, ZMQ_DONTWAIT) < 0)
					break;
		turn(md);
	}
	return NULL;
}

static int load_entry(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct pifs_raft *r = ctx;

	return pifs_raft_load(r, index, e);
}

/* The voters of a new cluster: the config's, in increasing order. */
static void initial_voters(const struct pifs_conf *conf, struct pifs_raft_conf *out,
			   uint32_t *seed)
{
	out->n = 0;
	*seed = 0;
	for (size_t i = 0; i < conf->n_nodes && out->n < PIFS_RAFT_MAX_VOTERS; i++) {
		uint32_t id = conf->nodes[i].id, j;

		if (!conf->nodes[i].meta)
			continue;
		if (*seed == 0)
			*seed = id;
		for (j = out->n; j > 0 && out->id[j - 1] > id; j--)
			out->id[j] = out->id[j - 1];
		out->id[j] = id;
		out->n++;
	}
}

int pifs_metad_open(struct pifsd *d, struct pifs_metad **out)
{
	const struct pifs_raft_io io = {
	    .log_append = io_log_append,
	    .log_write = io_log_write,
	    .log_sync = io_log_sync,
	    .log_truncate = io_log_truncate,
	    .set_hard = io_set_hard,
	    .send = io_send,
	    .apply = io_apply,
	    .snap_read = io_snap_read,
	    .snap_write = io_snap_write,
	    .snap_install = io_snap_install,
	};
	struct pifs_raft_opts o = {
	    .id = d->self->id,
	    .seed = random_u64(),
	    .heartbeat_ms = HEARTBEAT_MS,
	    .election_ms = ELECTION_MS,
	    .max_append_bytes = MAX_APPEND,
	    .snap_piece = 1u << 20,
	};
	struct pifs_raft_conf initial;
	struct pifs_raft_state st;
	uint32_t seed;
	struct pifs_raft_io myio = io;
	struct pifs_meta_stats ms;
	struct pifs_metad *md;
	const char *env;
	int rc;

	md = calloc(1, sizeof(*md));
	if (!md)
		return -ENOMEM;
	md->d = d;
	md->snapshot_at = SNAPSHOT_AT;
	env = getenv("PIFS_TEST_SNAPSHOT_AT");
	if (env && *env)
		md->snapshot_at = strtoull(env, NULL, 10);
	pthread_mutex_init(&md->sync_mu, NULL);
	pthread_cond_init(&md->sync_cv, NULL);
	pifs_buf_init(&md->entry);
	pifs_buf_init(&md->msg);
	pifs_buf_init(&md->scratch);
	pifs_buf_init(&md->aux);
	md->meta = pifs_meta_new();
	if (!md->meta) {
		rc = -ENOMEM;
		goto out_free;
	}
	if (snprintf(md->dir, sizeof(md->dir), "%s/meta", d->data) >= (int)sizeof(md->dir)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	/* The config's first voter starts a new cluster; the others wait to
	 * hear from it (or from whoever leads). */
	initial_voters(d->conf, &initial, &seed);
	o.wait_for_leader = seed != d->self->id;
	rc = pifs_raftlog_open(md->dir, &initial, md->meta, &md->log, &st);
	if (rc < 0) {
		pifs_err("node %u: could not open the metadata log in %s: %s%s", d->self->id,
			 md->dir, strerror(-rc),
			 rc == -EBADMSG ? "; its term file or snapshot is damaged: move DATA/meta "
					  "aside and restart, and this voter catches up from the "
					  "others"
					: "");
		goto out_free;
	}
	if (pifs_raftlog_migrated(md->log))
		pifs_info("node %u: converted the single-voter metadata log in %s to a Raft log "
			  "(the old files are kept as snap.old and wal.old)",
			  d->self->id, md->dir);
	myio.ctx = md;
	rc = pifs_raft_new(&o, &st, &myio, &md->raft);
	if (rc == 0)
		rc = pifs_raftlog_entries(md->log, load_entry, md->raft);
	if (rc < 0) {
		pifs_err("node %u: could not load the metadata log in %s: %s", d->self->id, md->dir,
			 strerror(-rc));
		goto out_free;
	}
	md->synced = md->written = pifs_raftlog_last_index(md->log);
	pifs_meta_stats(md->meta, &ms);
	if (ms.chunk_size)
		pifs_info("node %u: metadata of cluster %016" PRIx64 " loaded from %s at index "
			  "%" PRIu64 " (log to %" PRIu64 ", term %" PRIu64 ")",
			  d->self->id, ms.cluster_id, md->dir, ms.index,
			  pifs_raftlog_last_index(md->log), st.term);
	*out = md;
	return 0;
out_free:
	pifs_metad_free(md);
	return rc;
}

int pifs_metad_start(struct pifs_metad *md)
{
	int hwm = META_HWM, rc;

	rc = pifs_ctl_subscribe(md->d->zctx, PIFS_CTL_WORKERS, &md->ctl);
	if (rc < 0)
		return rc;
	md->sock = zmq_socket(md->d->zctx, ZMQ_DEALER);
	if (!md->sock)
		return -errno;
	rc = pifs_rpc_sockopts(md->sock);
	if (rc == 0 && (zmq_setsockopt(md->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_setsockopt(md->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_connect(md->sock, PIFS_META_ENDPOINT) < 0))
		rc = -errno;
	if (rc < 0)
		return rc;
	rc = -pthread_create(&md->syncer, NULL, syncer, md);
	if (rc < 0)
		return rc;
	md->syncer_started = true;
	rc = -pthread_create(&md->thread, NULL, run, md);
	if (rc < 0)
		return rc;
	md->started = true;
	return 0;
}

void pifs_metad_free(struct pifs_metad *md)
{
	size_t i;

	if (!md)
		return;
	if (md->started)
		pthread_join(md->thread, NULL);
	if (md->syncer_started) {
		pthread_mutex_lock(&md->sync_mu);
		md->syncer_stop = true;
		pthread_cond_signal(&md->sync_cv);
		pthread_mutex_unlock(&md->sync_mu);
		pthread_join(md->syncer, NULL);
	}
	if (md->raft && md->log) {
		note_synced(md);
		maybe_snapshot(md, true);
	}
	pifs_raft_free(md->raft);
	pifs_raftlog_close(md->log);
	pifs_meta_free(md->meta);
	for (i = 0; i < md->npeer; i++)
		zmq_close(md->peer[i].sock);
	if (md->sock)
		zmq_close(md->sock);
	if (md->ctl)
		zmq_close(md->ctl);
	for (i = 0; i < md->nwait; i++)
		pifs_buf_fini(&md->wait[i].out);
	free(md->wait);
	for (i = 0; i < md->nheld; i++)
		free(md->held[i].body);
	free(md->held);
	free(md->live);
	pthread_cond_destroy(&md->sync_cv);
	pthread_mutex_destroy(&md->sync_mu);
	pifs_buf_fini(&md->entry);
	pifs_buf_fini(&md->msg);
	pifs_buf_fini(&md->scratch);
	pifs_buf_fini(&md->aux);
	free(md);
}
