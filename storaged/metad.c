/* metad.c - the metadata service of a voter node.
 *
 * Single-threaded by design: the state machine has no locks, and one thread
 * that batches requests turns many small writes and syncs into one per batch.
 *
 * A change is written to the log before it is acknowledged, so that the death
 * of this process loses none; a syncer thread syncs the log (fdatasync)
 * within SYNC_MS of its first unsynced change, so that no request waits for
 * the disk (2 to 20 ms a sync on an SD card, more while chunks are written
 * out, as ext4 makes a sync of the log wait for them); and this thread syncs
 * at once before answering what needs it on the disk: META_SYNC (a client's fsync or fsyncdir), CHUNK_REFS (garbage
 * collection must not delete a chunk on the word of a change a power cut
 * could undo) and changes of the cluster map. So a namespace change (create,
 * rename, unlink, ...) costs no sync of its own, as on a local file system,
 * and a power cut of this node loses at most the last SYNC_MS of them, never
 * one that an fsync covered. */
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
#include "rpc.h"
#include "wal.h"

/* The first request of a batch and up to 256 more taken without waiting. */
#define BATCH 257
/* Past this much log since the last snapshot, write a new one: recovery then
 * replays at most this much. */
#define SNAPSHOT_AT (64ull << 20)
/* A reply buffer that grew past this (a big directory listing) is freed after
 * sending instead of being kept for the next batch. */
#define KEEP_REPLY (64u << 10)
/* The broker may queue this many requests for us: a whole batch and more. */
#define META_HWM 1024
#define IDLE_MS 1000
/* The longest an acknowledged change waits for its sync. */
#define SYNC_MS 50

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

/* One request of a batch: where its reply goes, and the encoded reply. */
struct slot {
	uint8_t ident[PIFS_IDENT_MAX];
	size_t ilen;
	struct pifs_buf out;
};

struct pifs_metad {
	struct pifsd *d;
	struct pifs_meta *meta;
	struct pifs_wal *wal;
	char dir[PATH_MAX];
	bool started;
	pthread_t thread;
	void *sock;	    /* DEALER to the broker */
	void *ctl;	    /* SUB to PIFS_CTL_WORKERS */
	int64_t last_now;   /* the last "now" stamped, so that stamps increase */
	int64_t start_ms;   /* pifs_now_ms() at open: the grace of nodes not heard yet */
	int64_t next_check; /* pifs_now_ms() of the next liveness check */
	bool dirty;	    /* changes queued for the log, not written yet */
	bool sync_now;	    /* a request of this batch needs them on the disk first */
	/* The syncer: woken by a write to the log, it syncs SYNC_MS later. */
	pthread_t syncer;
	bool syncer_started;
	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	bool sync_wanted, syncer_stop; /* under @sync_mu */
	struct live *live;  /* owned; @nlive of @live_cap */
	size_t nlive, live_cap;
	struct slot *slots;	 /* owned; BATCH */
	struct pifs_buf entry;	 /* an encoded log entry */
	struct pifs_buf scratch; /* what apply's and query's replies borrow */
	struct pifs_buf aux;	 /* the node list of CLUSTER_STAT */
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

/* Stamp the mutation @m, queue it in the log and apply it; @rep (OUT) is
 * apply's reply and borrows md->scratch. Returns 0, or -errno when the entry
 * could not be queued (nothing happened). A failed apply leaves the state
 * unusable: the process stops. */
static int mutate(struct pifs_metad *md, struct pifs_msg *m, struct pifs_msg *rep)
{
	int64_t now = pifs_now_ns();
	uint64_t index = pifs_meta_index(md->meta) + 1;
	uint64_t reqid = m->reqid, epoch = m->epoch;
	int rc;

	/* Stamps only go up, even when the clock steps back, so that times in
	 * the log keep their order. */
	if (now <= md->last_now)
		now = md->last_now + 1;
	md->last_now = now;
	pifs_proto_stamp(m, now);
	/* The envelope of a caller means nothing in the log. */
	m->reqid = 0;
	m->epoch = 0;
	pifs_buf_reset(&md->entry);
	rc = pifs_proto_encode(m, &md->entry);
	m->reqid = reqid;
	m->epoch = epoch;
	if (rc < 0)
		return rc;
	rc = pifs_wal_append(md->wal, index, md->entry.p, md->entry.len);
	if (rc < 0)
		return rc;
	md->dirty = true;
	rc = pifs_meta_apply(md->meta, index, m, rep, &md->scratch);
	if (rc < 0) {
		pifs_err("node %u: applying metadata entry %" PRIu64 " (%s) failed: %s; stopping, "
			 "as the state in RAM is no longer usable: restart the node to recover "
			 "from the log",
			 self_id(md), index, pifs_proto_name(m->type), strerror(-rc));
		_exit(EXIT_FAILURE);
	}
	return 0;
}

static void log_failed(struct pifs_metad *md, const char *what, int rc)
{
	pifs_err("node %u: the metadata log in %s could not be %s: %s; stopping, as the state "
		 "in RAM is ahead of the disk: fix the disk, then restart the node (recovery "
		 "keeps every entry that reached the disk)",
		 self_id(md), md->dir, what, strerror(-rc));
	_exit(EXIT_FAILURE);
}

/* Write the changes queued so far to the log, or stop the process: no reply
 * may promise what the log does not have. */
static void write_log(struct pifs_metad *md)
{
	int rc;

	if (!md->dirty)
		return;
	rc = pifs_wal_write(md->wal);
	if (rc < 0)
		log_failed(md, "written", rc);
	md->dirty = false;
	pthread_mutex_lock(&md->sync_mu);
	if (!md->sync_wanted) {
		md->sync_wanted = true;
		pthread_cond_signal(&md->sync_cv);
	}
	pthread_mutex_unlock(&md->sync_mu);
}

/* Make every change written so far durable, or stop the process. */
static void sync_log(struct pifs_metad *md)
{
	int rc;

	md->sync_now = false;
	rc = pifs_wal_sync(md->wal);
	if (rc < 0)
		log_failed(md, "synced", rc);
}

static void *syncer(void *arg)
{
	struct pifs_metad *md = arg;
	struct timespec until;
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
		pthread_mutex_unlock(&md->sync_mu);
		rc = pifs_wal_sync(md->wal);
		if (rc < 0)
			log_failed(md, "synced", rc);
		if (stop)
			return NULL;
		pthread_mutex_lock(&md->sync_mu);
	}
}

static void commit(struct pifs_metad *md)
{
	write_log(md);
	sync_log(md);
}

static struct live *find_live(struct pifs_metad *md, uint32_t id)
{
	size_t i;

	for (i = 0; i < md->nlive; i++)
		if (md->live[i].id == id)
			return &md->live[i];
	return NULL;
}

static void log_node_add(struct pifs_metad *md, const struct pifs_msg_NODE_ADD *a,
			 const struct pifs_msg *rep, bool joined, bool weighed, bool came_up)
{
	if (rep->type == PIFS_MSG_R_STATUS && rep->u.R_STATUS.status < 0) {
		pifs_warn("node %u: could not record node %u in the cluster map: %s", self_id(md),
			  a->id, strerror(-rep->u.R_STATUS.status));
		return;
	}
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

/* The address of node @id in the map into @out (@cap bytes). Returns 0,
 * -ENOENT or -ENAMETOOLONG. Uses md->scratch. */
static int map_addr(struct pifs_metad *md, uint32_t id, char *out, size_t cap)
{
	struct pifs_msg q, map;
	struct pifs_cursor c;
	struct pifs_node n;

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	pifs_meta_query(md->meta, &q, &map, &md->scratch);
	if (map.type != PIFS_MSG_R_MAP)
		return -ENOENT;
	pifs_cursor_init(&c, &map.u.R_MAP.nodes);
	while (pifs_node_next(&c, &n) == 1)
		if (n.id == id)
			return pifs_str_copy(n.addr, out, cap);
	return -ENOENT;
}

/* Is @addr (borrowed) host:port, an address other nodes can use? */
static bool addr_ok(struct pifs_str addr)
{
	char a[256], ep[300];

	return pifs_str_copy(addr, a, sizeof(a)) == 0 && pifs_conf_endpoint(a, ep, sizeof(ep)) == 0;
}

/* A heartbeat: note the node's figures, and log its map entry when it is
 * new to the map, its weight is "auto", or the map says it is down: a node
 * that answers is up, and in again unless it is new or being drained. A node
 * the map does not list joins it as new (PIFS_NODE_NEW, not in), whether the
 * config names it or not: only an operator makes a node a member. */
static int hello(struct pifs_metad *md, const struct pifs_msg_NODE_HELLO *h, struct pifs_msg *rep)
{
	const struct pifs_conf_node *cn = pifs_conf_node(md->d->conf, h->id);
	uint32_t flags = 0, weight = 0, nflags, nweight;
	struct pifs_msg add, added;
	struct live *l;
	bool known, came_up;
	char addr[256];
	int rc;

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
	if (known && !cn && map_addr(md, h->id, addr, sizeof(addr)) == 0 &&
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
		if (md->nlive == md->live_cap) {
			size_t cap = md->live_cap ? md->live_cap * 2 : 16;
			struct live *nl = realloc(md->live, cap * sizeof(*nl));

			if (!nl)
				return -ENOMEM;
			md->live = nl;
			md->live_cap = cap;
		}
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
		rc = mutate(md, &add, &added);
		if (rc < 0)
			return rc;
		log_node_add(md, &add.u.NODE_ADD, &added, !known, known && nweight != weight,
			     came_up);
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

/* df: the space of every node that ever reported, as last reported; a node
 * that reboots keeps its place in the total. */
static void statfs_space(struct pifs_metad *md, struct pifs_msg *rep)
{
	size_t i;

	if (rep->type != PIFS_MSG_R_STATFS)
		return;
	for (i = 0; i < md->nlive; i++) {
		rep->u.R_STATFS.capacity += md->live[i].capacity;
		rep->u.R_STATFS.free += md->live[i].free;
	}
}

/* Answer the request in @body (borrowed) into @rep, logging it if it is a
 * mutation. Returns 0 or -errno for a failure to report as R_STATUS. */
static int process(struct pifs_metad *md, const void *body, size_t len, struct pifs_msg *rep)
{
	struct pifs_msg m;
	int rc;

	rc = pifs_proto_decode(body, len, &m);
	rep->reqid = m.reqid;
	if (rc < 0) {
		set_status(md, rep, rc, "metadata voter node %u could not decode a request",
			   self_id(md));
		return 0;
	}
	switch (pifs_proto_kind(m.type)) {
	case PIFS_KIND_MUT:
		/* The cluster map is the operator's: on the disk before the
		 * command returns. */
		if (m.type == PIFS_MSG_INIT || m.type == PIFS_MSG_NODE_ADD ||
		    m.type == PIFS_MSG_NODE_SET || m.type == PIFS_MSG_NODE_DEL)
			md->sync_now = true;
		rc = mutate(md, &m, rep);
		break;
	case PIFS_KIND_QRY:
		if (m.type == PIFS_MSG_META_SYNC || m.type == PIFS_MSG_CHUNK_REFS)
			md->sync_now = true;
		if (m.type == PIFS_MSG_META_SYNC) {
			set_status(md, rep, 0, NULL);
			break;
		}
		rc = pifs_meta_query(md->meta, &m, rep, &md->scratch);
		if (m.type == PIFS_MSG_STATFS)
			statfs_space(md, rep);
		break;
	case PIFS_KIND_ADM:
		if (m.type == PIFS_MSG_NODE_HELLO)
			rc = hello(md, &m.u.NODE_HELLO, rep);
		else if (m.type == PIFS_MSG_MAP_GET)
			rc = pifs_meta_query(md->meta, &m, rep, &md->scratch);
		else
			rc = cluster_stat(md, rep);
		break;
	default:
		set_status(md, rep, -EOPNOTSUPP, "%s is not a metadata request",
			   pifs_proto_name(m.type));
		rc = 0;
		break;
	}
	if (rc < 0)
		set_status(md, rep, rc, "metadata voter node %u could not serve %s: %s",
			   self_id(md), pifs_proto_name(m.type), strerror(-rc));
	rep->reqid = m.reqid;
	return 0;
}

/* Take one request (waiting for it if @flags is 0), serve it and keep its
 * encoded reply in @s. Returns 0, or -EAGAIN when there was none. */
static int take(struct pifs_metad *md, struct slot *s, int flags)
{
	zmq_msg_t ident, body, junk;
	struct pifs_msg rep;
	int more = 0, rc;
	size_t sz = sizeof(more);

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
	s->ilen = zmq_msg_size(&ident) < sizeof(s->ident) ? zmq_msg_size(&ident) : sizeof(s->ident);
	memcpy(s->ident, zmq_msg_data(&ident), s->ilen);
	pifs_msg_init(&rep, PIFS_MSG_R_STATUS);
	process(md, zmq_msg_data(&body), zmq_msg_size(&body), &rep);
	rep.epoch = map_epoch(md);
	/* Encoded now: the next request reuses the scratch the reply borrows. */
	pifs_buf_reset(&s->out);
	rc = pifs_proto_encode(&rep, &s->out);
	if (rc < 0) {
		set_status(md, &rep, rc, "metadata voter node %u could not encode its reply: %s",
			   self_id(md), strerror(-rc));
		pifs_proto_encode(&rep, &s->out);
	}
	zmq_msg_close(&body);
	zmq_msg_close(&ident);
	return 0;
}

static void send_replies(struct pifs_metad *md, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct slot *s = &md->slots[i];

		if (zmq_send(md->sock, s->ident, s->ilen, ZMQ_SNDMORE) < 0 ||
		    zmq_send(md->sock, s->out.p, s->out.len, 0) < 0)
			pifs_err("node %u: the metadata service could not hand a reply to the "
				 "broker: %s; the requester will time out and retry",
				 self_id(md), zmq_strerror(errno));
		if (s->out.cap > KEEP_REPLY)
			pifs_buf_fini(&s->out);
	}
}

/* How often the liveness of the nodes is checked: often enough that a node
 * is marked down within a quarter of down_after of its deadline. */
static int64_t check_period(const struct pifs_metad *md)
{
	int64_t p = md->d->conf->down_after_ms / 4;

	return p < 50 ? 50 : p > IDLE_MS ? IDLE_MS : p;
}

/* Is a liveness check due? Not while requests wait: after this thread was
 * busy (a snapshot, a slow disk), the heartbeats queued meanwhile are read
 * first, so that the wait is not taken for silence; unless the check is
 * late by down_after already. */
static bool check_due(struct pifs_metad *md)
{
	int64_t now = pifs_now_ms();
	int ev = 0;
	size_t sz = sizeof(ev);

	if (now < md->next_check)
		return false;
	if (now >= md->next_check + (int64_t)md->d->conf->down_after_ms)
		return true;
	return zmq_getsockopt(md->sock, ZMQ_EVENTS, &ev, &sz) < 0 || !(ev & ZMQ_POLLIN);
}

static void log_change(struct pifs_metad *md, const struct change *ch, const struct pifs_msg *rep)
{
	const struct pifs_conf *conf = md->d->conf;

	if (rep->type == PIFS_MSG_R_STATUS && rep->u.R_STATUS.status < 0)
		pifs_warn("node %u: could not mark node %u %s in the cluster map: %s", self_id(md),
			  ch->id, ch->out ? "out" : "down", strerror(-rep->u.R_STATUS.status));
	else if (ch->out)
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
 * out_after. A node not heard since this service started counts from the
 * start: a restart of the voter marks nobody down at once. */
static void check_liveness(struct pifs_metad *md)
{
	const struct pifs_conf *conf = md->d->conf;
	int64_t now = pifs_now_ms(), silent;
	struct pifs_msg q, map, add, rep;
	struct change *ch;
	struct pifs_cursor c;
	struct pifs_node n;
	size_t nch = 0, i;

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	pifs_meta_query(md->meta, &q, &map, &md->scratch);
	if (map.type != PIFS_MSG_R_MAP)
		return;
	ch = calloc(map.u.R_MAP.nodes.count ? map.u.R_MAP.nodes.count : 1, sizeof(*ch));
	if (!ch)
		return;
	/* Collected first: logging reuses the scratch the node list borrows. */
	pifs_cursor_init(&c, &map.u.R_MAP.nodes);
	while (nch < map.u.R_MAP.nodes.count && pifs_node_next(&c, &n) == 1) {
		const struct live *l = find_live(md, n.id);
		struct change *x = &ch[nch];

		silent = now - (l ? l->seen_ms : md->start_ms);
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
		if (mutate(md, &add, &rep) < 0)
			break;
		log_change(md, &ch[i], &rep);
	}
	free(ch);
	commit(md);
}

static void maybe_snapshot(struct pifs_metad *md)
{
	int rc;

	if (pifs_wal_size(md->wal) <= SNAPSHOT_AT)
		return;
	rc = pifs_wal_snapshot(md->wal, md->meta);
	if (rc < 0)
		pifs_warn("node %u: could not write a metadata snapshot in %s: %s; the log keeps "
			  "growing and restarts take longer until the disk is fixed",
			  self_id(md), md->dir, strerror(-rc));
}

static void *run(void *arg)
{
	struct pifs_metad *md = arg;
	size_t n;
	int rc;

	while (!atomic_load(&md->d->workers_stop)) {
		zmq_pollitem_t items[2] = {{md->ctl, 0, ZMQ_POLLIN, 0},
					   {md->sock, 0, ZMQ_POLLIN, 0}};

		if (check_due(md)) {
			check_liveness(md);
			md->next_check = pifs_now_ms() + check_period(md);
		}
		rc = zmq_poll(items, 2, check_period(md));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			pifs_err("node %u: the metadata service stops: %s", self_id(md),
				 zmq_strerror(errno));
			break;
		}
		if (items[0].revents & ZMQ_POLLIN)
			break;
		if (!(items[1].revents & ZMQ_POLLIN))
			continue;
		for (n = 0; n < BATCH; n++)
			if (take(md, &md->slots[n], n == 0 ? 0 : ZMQ_DONTWAIT) < 0)
				break;
		write_log(md);
		if (md->sync_now)
			sync_log(md);
		send_replies(md, n);
		maybe_snapshot(md);
	}
	sync_log(md);
	return NULL;
}

static uint64_t random_id(void)
{
	uint64_t v = 0;

	while (v == 0)
		if (getrandom(&v, sizeof(v), 0) != sizeof(v))
			v = (uint64_t)pifs_now_ns() ^ ((uint64_t)getpid() << 32);
	return v;
}

/* A new log: the cluster of the config. */
static int bootstrap(struct pifs_metad *md)
{
	const struct pifs_conf *conf = md->d->conf;
	uint64_t cluster_id = random_id();
	struct pifs_msg m, rep;
	size_t i;
	int rc;

	pifs_msg_init(&m, PIFS_MSG_INIT);
	m.u.INIT.replicas = conf->replicas;
	m.u.INIT.chunk_size = conf->chunk_size;
	m.u.INIT.cluster_id = cluster_id;
	rc = mutate(md, &m, &rep);
	for (i = 0; rc == 0 && i < conf->n_nodes; i++) {
		if (rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.status < 0)
			break;
		pifs_msg_init(&m, PIFS_MSG_NODE_ADD);
		m.u.NODE_ADD.id = conf->nodes[i].id;
		m.u.NODE_ADD.weight = conf->nodes[i].weight;
		m.u.NODE_ADD.flags = PIFS_NODE_IN | (conf->nodes[i].meta ? PIFS_NODE_META : 0);
		m.u.NODE_ADD.addr = pifs_str_of(conf->nodes[i].addr);
		rc = mutate(md, &m, &rep);
	}
	if (rc == 0 && rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.status < 0)
		rc = rep.u.R_STATUS.status;
	if (rc < 0) {
		pifs_err("node %u: could not initialise the cluster in %s: %s", self_id(md),
			 md->dir, strerror(-rc));
		return rc;
	}
	commit(md);
	pifs_info("node %u: new cluster %016" PRIx64 " in %s: %u replicas, %u KiB chunks, %zu "
		  "nodes",
		  self_id(md), cluster_id, md->dir, conf->replicas, conf->chunk_size >> 10,
		  conf->n_nodes);
	return 0;
}

int pifs_metad_open(struct pifsd *d, struct pifs_metad **out)
{
	struct pifs_meta_stats st;
	struct pifs_metad *md;
	size_t i;
	int rc;

	md = calloc(1, sizeof(*md));
	if (!md)
		return -ENOMEM;
	md->d = d;
	md->start_ms = pifs_now_ms();
	pthread_mutex_init(&md->sync_mu, NULL);
	pthread_cond_init(&md->sync_cv, NULL);
	pifs_buf_init(&md->entry);
	pifs_buf_init(&md->scratch);
	pifs_buf_init(&md->aux);
	md->slots = calloc(BATCH, sizeof(*md->slots));
	md->meta = pifs_meta_new();
	if (!md->slots || !md->meta) {
		rc = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < BATCH; i++)
		pifs_buf_init(&md->slots[i].out);
	if (snprintf(md->dir, sizeof(md->dir), "%s/meta", d->data) >= (int)sizeof(md->dir)) {
		rc = -ENAMETOOLONG;
		goto out_free;
	}
	rc = pifs_wal_open(md->dir, md->meta, &md->wal);
	if (rc < 0) {
		pifs_err("node %u: could not open the metadata log in %s: %s%s", d->self->id,
			 md->dir, strerror(-rc),
			 rc == -EBADMSG ? "; the snapshot is damaged: restore DATA/meta from a "
					  "backup or another voter"
					: "");
		goto out_free;
	}
	if (pifs_meta_index(md->meta) == 0) {
		rc = bootstrap(md);
		if (rc < 0)
			goto out_free;
	} else {
		pifs_meta_stats(md->meta, &st);
		pifs_info("node %u: metadata of cluster %016" PRIx64 " recovered from %s at log "
			  "index %" PRIu64 ", map epoch %" PRIu64,
			  d->self->id, st.cluster_id, md->dir, st.index, st.epoch);
	}
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
	int rc;

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
	if (md->wal && pifs_wal_size(md->wal) > 0) {
		rc = pifs_wal_snapshot(md->wal, md->meta);
		if (rc < 0)
			pifs_err("node %u: could not write the metadata snapshot in %s: %s; the "
				 "log is kept and replays at the next start",
				 self_id(md), md->dir, strerror(-rc));
		else
			pifs_info("node %u: metadata snapshot written at log index %" PRIu64,
				  self_id(md), pifs_meta_index(md->meta));
	}
	pifs_wal_close(md->wal);
	pifs_meta_free(md->meta);
	if (md->sock)
		zmq_close(md->sock);
	if (md->ctl)
		zmq_close(md->ctl);
	if (md->slots)
		for (i = 0; i < BATCH; i++)
			pifs_buf_fini(&md->slots[i].out);
	free(md->slots);
	free(md->live);
	pthread_cond_destroy(&md->sync_cv);
	pthread_mutex_destroy(&md->sync_mu);
	pifs_buf_fini(&md->entry);
	pifs_buf_fini(&md->scratch);
	pifs_buf_fini(&md->aux);
	free(md);
}
