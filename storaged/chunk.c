/* chunk.c - the chunk workers.
 *
 * A CHUNK_PUT whose frame comes whole is checked (header, id, hash) before
 * anything else, so that a frame damaged on the way is neither stored nor
 * passed on. It is then sent to the next node of its chain before the local
 * write, so that the next node receives while this one writes; the forward
 * shares the received frame (zmq_msg_copy counts a reference, it copies
 * nothing). The reply waits for the downstream node's R_PUT, or its deadline,
 * in a pending entry while the worker goes on serving other requests.
 *
 * A CHUNK_PUT sent in pieces (total > 0; the broker brings every piece of one
 * put to the same worker) is passed on piece by piece as each arrives, so
 * that a 4 MiB frame does not leave a node as one burst after it came in
 * whole: each hop is one paced stream. Each piece is also written to a
 * temporary file as it arrives, so that the disk write (about 9 ms for
 * 4 MiB on the test VMs' ext4) is spread over the transfer instead of
 * holding the worker at the end. The pieces are assembled, and the whole
 * frame is checked with its last piece; only then does the file become the
 * chunk and the put get acknowledged. Each node down the chain checks the
 * frame by itself. An assembly
 * whose pieces stop coming is freed after the request timeout. */
#include "chunk.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ctl.h"
#include "gc.h"
#include "heal.h"
#include "log.h"
#include "rpc.h"
#include "scrub.h"

/* Forwards in flight per worker. Each holds a reference to one frame until
 * it is on the wire, so this bounds what a slow downstream node can pin. */
#define MAX_PENDING 16
/* Messages queued for one downstream node; a stuck node pins only these. */
#define PEER_HWM 4
/* Pieces of one forward waiting for the downstream node to take them: a
 * frame of PIFS_FRAME_MAX_RAW in pieces of PIFS_PUT_PIECE, and a few over. */
#define FWD_QUEUE 64
/* Puts arriving in pieces that one worker assembles at once; each holds a
 * buffer of its frame's size until its last piece or its timeout. */
#define MAX_ASSEMBLY 16
/* The broker's queue to each worker stays short, so that a request does not
 * wait behind a busy worker while another one idles. */
#define WORK_HWM 2
/* Requests taken from the broker per wake-up, so that replies from
 * downstream nodes are read between them. */
#define SERVE_BURST 8
/* How long a worker with nothing to do sleeps before it looks at its stop
 * flag again. */
#define IDLE_MS 1000
/* A dead node fails every forward to it: one warning per node this often,
 * with the count of the others, is enough. */
#define WARN_EVERY_MS 10000

struct peer {
	uint32_t id;
	char endpoint[300];
	void *sock;	   /* DEALER connected to the node's ROUTER, or NULL */
	int64_t warned_at; /* pifs_now_ms() of the last warning about it */
	unsigned quiet;	   /* failures not logged since */
};

struct assembly;

struct pending {
	bool used;
	uint32_t peer;	    /* the node forwarded to */
	uint64_t fwd_reqid; /* the forward's request id on that node's socket */
	uint64_t reqid;	    /* the request we answer */
	struct pifs_chunk_id id;
	int local_rc;	  /* of our own copy */
	int64_t deadline; /* pifs_now_ms() */
	int timeout_ms;
	uint8_t ident[PIFS_IDENT_MAX];
	size_t ilen;
	struct assembly *as; /* the put still arriving in pieces, or NULL */
	/* Forwarded messages waiting until the peer can take them: @qn pairs
	 * from @qh on, in a ring. */
	unsigned qh, qn;
	zmq_msg_t msg[FWD_QUEUE], pay[FWD_QUEUE];
};

/* A put whose frame arrives in pieces. */
struct assembly {
	bool used;
	bool failed; /* answered already: drop its pieces until the last */
	uint8_t ident[PIFS_IDENT_MAX];
	size_t ilen;
	uint64_t reqid;
	uint64_t epoch;
	struct pifs_chunk_id id;
	uint32_t flags;
	uint32_t total, got;
	uint8_t *frame;		 /* owned; @total bytes, @got of them received */
	/* owned; our copy on disk so far, or NULL (not admitted, or the disk
	 * failed: the whole frame is stored at the end, which says why) */
	struct pifs_store_tmp *tmp;
	struct pending *p;	 /* the forward down the chain, or NULL */
	struct pifs_buf rest;	 /* the chain after the next node */
	uint32_t nrest;
	int64_t last;		 /* pifs_now_ms() of the last piece */
};

/* Where a reply goes: the requester's routing identity and request id. */
struct req {
	const void *ident;
	size_t ilen;
	uint64_t reqid;
};

struct pifs_chunk_worker {
	struct pifsd *d;
	unsigned index;
	pthread_t thread;
	void *sock;	    /* DEALER to the broker */
	void *ctl;	    /* SUB to PIFS_CTL_WORKERS */
	struct peer *peers; /* owned; @npeers of @peer_cap */
	size_t npeers, peer_cap;
	zmq_pollitem_t *items; /* owned; 2 + @peer_cap */
	size_t *item_peer;     /* owned; the peer of items[2 + i] */
	void *psock;	    /* DEALER to the broker's PIFS_PIECE_ENDPOINT for us */
	struct pending pend[MAX_PENDING];
	size_t npend;
	struct assembly as[MAX_ASSEMBLY];
	uint64_t next_reqid;
	uint32_t rest;		 /* nodes in @list after next_hop */
	struct pifs_buf scratch; /* raw bytes of a chunk being verified */
	struct pifs_buf enc;	 /* an encoded forward */
	struct pifs_buf list;	 /* a chain, or the nodes of an R_PUT */
};

static uint32_t self_id(const struct pifs_chunk_worker *w)
{
	return w->d->self->id;
}

static void reply(struct pifs_chunk_worker *w, const struct req *r, struct pifs_msg *rep,
		  void *payload, size_t plen)
{
	int rc;

	rep->reqid = r->reqid;
	rep->epoch = pifs_nodemap_epoch(&w->d->map);
	rc = pifs_rpc_sendto(w->sock, r->ident, r->ilen, rep, payload, plen, payload != NULL);
	if (rc < 0)
		pifs_err("node %u: chunk worker %u could not hand a %s reply to the broker: %s; "
			 "the requester will time out and retry",
			 self_id(w), w->index, pifs_proto_name(rep->type), strerror(-rc));
}

static void status(struct pifs_chunk_worker *w, const struct req *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reply R_STATUS @rc with a sentence for an operator (none when @fmt is NULL). */
static void status(struct pifs_chunk_worker *w, const struct req *r, int rc, const char *fmt, ...)
{
	struct pifs_msg rep;
	char detail[512];
	va_list ap;

	pifs_msg_init(&rep, PIFS_MSG_R_STATUS);
	rep.u.R_STATUS.status = rc;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(detail, sizeof(detail), fmt, ap);
		va_end(ap);
		rep.u.R_STATUS.detail = pifs_str_of(detail);
	}
	reply(w, r, &rep, NULL, 0);
}

/* Answer a CHUNK_PUT: R_PUT with this node (if @local_rc is 0) and the nodes
 * of the downstream reply @down (may be NULL), or R_STATUS @local_rc when no
 * node has the chunk. */
static void finish_put(struct pifs_chunk_worker *w, const struct req *r, int local_rc,
		       const struct pifs_chunk_id *id, const struct pifs_list *down)
{
	struct pifs_nodeid n, seen;
	struct pifs_cursor c, s;
	struct pifs_msg rep;
	uint32_t count = 0;
	bool dup;
	char hex[33];

	pifs_buf_reset(&w->list);
	if (local_rc == 0) {
		n.id = self_id(w);
		if (pifs_nodeid_append(&w->list, &n) == 0)
			count++;
	}
	if (down) {
		pifs_cursor_init(&c, down);
		while (pifs_nodeid_next(&c, &n) == 1) {
			struct pifs_list sofar = pifs_list_of(&w->list, count);

			dup = false;
			pifs_cursor_init(&s, &sofar);
			while (!dup && pifs_nodeid_next(&s, &seen) == 1)
				dup = seen.id == n.id;
			if (!dup && pifs_nodeid_append(&w->list, &n) == 0)
				count++;
		}
	}
	if (count == 0) {
		pifs_chunk_id_hex(id, hex);
		status(w, r, local_rc < 0 ? local_rc : -EIO,
		       "node %u could not store chunk %s (%s) and no node down its chain did",
		       self_id(w), hex, strerror(local_rc < 0 ? -local_rc : EIO));
		return;
	}
	pifs_msg_init(&rep, PIFS_MSG_R_PUT);
	rep.u.R_PUT.nodes = pifs_list_of(&w->list, count);
	reply(w, r, &rep, NULL, 0);
}

static void drop_pending(struct pifs_chunk_worker *w, struct pending *p)
{
	for (; p->qn; p->qn--, p->qh = (p->qh + 1) % FWD_QUEUE) {
		zmq_msg_close(&p->msg[p->qh]);
		zmq_msg_close(&p->pay[p->qh]);
	}
	if (p->as)
		p->as->p = NULL;
	p->as = NULL;
	p->used = false;
	w->npend--;
}

/* The downstream part of a forward is over: answer the request and free the
 * entry. @down_rc < 0 says why no downstream node list came (@detail is the
 * downstream node's sentence, if any). */
static struct peer *find_peer(struct pifs_chunk_worker *w, uint32_t id)
{
	size_t i;

	for (i = 0; i < w->npeers; i++)
		if (w->peers[i].id == id)
			return &w->peers[i];
	return NULL;
}

/* Say that node p->peer did not take a chunk, at most once per WARN_EVERY_MS
 * for each node. */
static void warn_downstream(struct pifs_chunk_worker *w, const struct pending *p, int rc,
			    const struct pifs_str *detail)
{
	struct peer *peer = find_peer(w, p->peer);
	int64_t now = pifs_now_ms();
	char hex[33], more[64] = "";

	if (peer && peer->warned_at && now - peer->warned_at < WARN_EVERY_MS) {
		peer->quiet++;
		return;
	}
	if (peer && peer->quiet)
		snprintf(more, sizeof(more), " (and %u more chunks since the last warning)",
			 peer->quiet);
	if (peer) {
		peer->warned_at = now;
		peer->quiet = 0;
	}
	pifs_chunk_id_hex(&p->id, hex);
	if (rc == -EHOSTUNREACH && peer)
		pifs_warn("node %u: could not reach node %u at %s to forward chunk %s within %d "
			  "ms%s; those chunks have fewer copies until heal adds them",
			  self_id(w), p->peer, peer->endpoint, hex, p->timeout_ms, more);
	else if (rc == -ETIMEDOUT)
		pifs_warn("node %u: node %u did not acknowledge chunk %s within %d ms%s; those "
			  "chunks have fewer copies until heal adds them",
			  self_id(w), p->peer, hex, p->timeout_ms, more);
	else
		pifs_warn("node %u: node %u did not store chunk %s: %s%s%.*s%s; those chunks have "
			  "fewer copies until heal adds them",
			  self_id(w), p->peer, hex, strerror(-rc),
			  detail && detail->len ? ": " : "", detail ? (int)detail->len : 0,
			  detail && detail->p ? detail->p : "", more);
}

/* The downstream part of a forward is over: answer the request and free the
 * entry. @down_rc < 0 says why no downstream node list came (@detail is the
 * downstream node's sentence, if any). */
static void settle(struct pifs_chunk_worker *w, struct pending *p, const struct pifs_list *down,
		   int down_rc, const struct pifs_str *detail)
{
	struct req r = {p->ident, p->ilen, p->reqid};

	/* Before our own copy is whole, the downstream node can only have
	 * failed: the put goes on without it, and answers when it is whole. */
	if (p->as && down_rc == 0)
		down_rc = -EPROTO;
	if (down_rc < 0)
		warn_downstream(w, p, down_rc, detail);
	if (!p->as)
		finish_put(w, &r, p->local_rc, &p->id, down);
	drop_pending(w, p);
}

static void close_peer(struct peer *peer)
{
	if (peer->sock)
		zmq_close(peer->sock);
	peer->sock = NULL;
}

/* Settle every forward to @peer with @rc, for a socket about to be closed. */
static void abandon_peer(struct pifs_chunk_worker *w, struct peer *peer, int rc)
{
	size_t i;

	for (i = 0; i < MAX_PENDING; i++)
		if (w->pend[i].used && w->pend[i].peer == peer->id)
			settle(w, &w->pend[i], NULL, rc, NULL);
	close_peer(peer);
}

static int open_peer(struct pifs_chunk_worker *w, struct peer *peer)
{
	int one = 1, hwm = PEER_HWM, rc;
	void *s = zmq_socket(w->d->zctx, ZMQ_DEALER);

	if (!s)
		return -errno;
	rc = pifs_rpc_sockopts(s);
	if (rc == 0 && (zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0))
		rc = -errno;
	if (rc == 0)
		rc = pifs_auth_client(w->d->auth, s, peer->id);
	if (rc == 0 && zmq_connect(s, peer->endpoint) < 0)
		rc = -errno;
	if (rc < 0) {
		zmq_close(s);
		return rc;
	}
	peer->sock = s;
	return 0;
}

/* The connected socket for node @id at @endpoint, made on first use. */
static int get_peer(struct pifs_chunk_worker *w, uint32_t id, const char *endpoint,
		    struct peer **out)
{
	struct peer *peer = NULL;
	size_t i;
	int rc;

	for (i = 0; i < w->npeers && !peer; i++)
		if (w->peers[i].id == id)
			peer = &w->peers[i];
	if (!peer) {
		if (w->npeers == w->peer_cap) {
			size_t cap = w->peer_cap ? w->peer_cap * 2 : 8;
			struct peer *np = realloc(w->peers, cap * sizeof(*np));
			zmq_pollitem_t *ni;
			size_t *nx;

			if (!np)
				return -ENOMEM;
			w->peers = np;
			ni = realloc(w->items, (cap + 3) * sizeof(*ni));
			if (!ni)
				return -ENOMEM;
			w->items = ni;
			nx = realloc(w->item_peer, cap * sizeof(*nx));
			if (!nx)
				return -ENOMEM;
			w->item_peer = nx;
			w->peer_cap = cap;
		}
		peer = &w->peers[w->npeers++];
		memset(peer, 0, sizeof(*peer));
		peer->id = id;
	}
	if (strcmp(peer->endpoint, endpoint) != 0) {
		/* The map moved the node: what is in flight to the old
		 * address will not be answered from the new one. */
		abandon_peer(w, peer, -EHOSTUNREACH);
		snprintf(peer->endpoint, sizeof(peer->endpoint), "%s", endpoint);
	}
	if (!peer->sock && (rc = open_peer(w, peer)) < 0)
		return rc;
	*out = peer;
	return 0;
}

/* Put what @p has queued on the wire. Returns 0 (sent, or some still
 * waiting for the peer to connect or drain) or -errno (the forward failed). */
static int send_forward(struct peer *peer, struct pending *p)
{
	while (p->qn) {
		unsigned i = p->qh;

		if (zmq_msg_send(&p->msg[i], peer->sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
			return errno == EAGAIN ? 0 : -errno;
		zmq_msg_close(&p->msg[i]);
		p->qh = (p->qh + 1) % FWD_QUEUE;
		p->qn--;
		/* ZeroMQ takes the rest of a message whose first part it took. */
		if (zmq_msg_send(&p->pay[i], peer->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&p->pay[i]);
			return -errno;
		}
		zmq_msg_close(&p->pay[i]);
	}
	return 0;
}

/* Queue the forward of one message to @p's node: the CHUNK_PUT @f and a
 * share of @pay (zmq_msg_copy counts a reference, it copies nothing). */
static int enqueue(struct pifs_chunk_worker *w, struct pending *p, struct pifs_msg *f,
		   zmq_msg_t *pay)
{
	unsigned i = (p->qh + p->qn) % FWD_QUEUE;
	int rc;

	if (p->qn == FWD_QUEUE)
		return -ENOBUFS;
	pifs_buf_reset(&w->enc);
	rc = pifs_proto_encode(f, &w->enc);
	if (rc < 0)
		return rc;
	if (zmq_msg_init_size(&p->msg[i], w->enc.len) < 0)
		return -errno;
	memcpy(zmq_msg_data(&p->msg[i]), w->enc.p, w->enc.len);
	zmq_msg_init(&p->pay[i]);
	if (zmq_msg_copy(&p->pay[i], pay) < 0) {
		rc = -errno;
		zmq_msg_close(&p->msg[i]);
		zmq_msg_close(&p->pay[i]);
		return rc;
	}
	p->qn++;
	return 0;
}

/* Find the next node of @chain (skipping this one, which has the chunk by
 * now) and put the nodes after it in w->list. A node that our map says is
 * down is skipped too, so that a write never waits for a dead node, unless
 * the writer's map (@epoch) is newer than ours: then the writer knows
 * better. Returns 1 with *@next set, 0 when the chain ends here, or -errno. */
static int next_hop(struct pifs_chunk_worker *w, const struct pifs_list *chain, uint64_t epoch,
		    uint32_t *next)
{
	struct pifsd *d = w->d;
	bool trust = pifs_nodemap_epoch(&d->map) && pifs_nodemap_epoch(&d->map) >= epoch;
	struct pifs_nodeid n;
	struct pifs_cursor c;
	bool found = false;
	int rc;

	pifs_buf_reset(&w->list);
	w->rest = 0;
	pifs_cursor_init(&c, chain);
	while ((rc = pifs_nodeid_next(&c, &n)) == 1) {
		if (!found) {
			if (n.id == self_id(w))
				continue;
			if (trust && pifs_nodemap_is_down(&d->map, n.id)) {
				pifs_debug("node %u: not forwarding to node %u, which the map says "
					   "is down",
					   self_id(w), n.id);
				continue;
			}
			*next = n.id;
			found = true;
		} else if (pifs_nodeid_append(&w->list, &n) == 0) {
			w->rest++;
		} else {
			return -ENOMEM;
		}
	}
	return rc < 0 ? -EBADMSG : found;
}

/* Send the frame in @pay on to node @next with the rest of the chain (in
 * w->list). Returns the pending entry that will hear the answer, or NULL when
 * the forward failed at once (logged). */
static struct pending *forward(struct pifs_chunk_worker *w, const struct req *r,
			       const struct pifs_msg_CHUNK_PUT *q, uint32_t next, zmq_msg_t *pay,
			       const char *hex)
{
	struct pifsd *d = w->d;
	struct pending *p = NULL;
	struct peer *peer;
	struct pifs_msg f;
	char ep[300];
	int rc, k;
	size_t i;

	rc = pifs_nodemap_endpoint(&d->map, next, ep, sizeof(ep));
	if (rc < 0) {
		pifs_warn("node %u: chunk %s not forwarded to node %u: that node is neither in the "
			  "cluster map nor in the config (%s); the writer should refresh its map",
			  self_id(w), hex, next, strerror(-rc));
		return NULL;
	}
	rc = get_peer(w, next, ep, &peer);
	if (rc < 0)
		goto fail;
	for (i = 0; i < MAX_PENDING && !p; i++)
		if (!w->pend[i].used)
			p = &w->pend[i];
	if (!p) {
		rc = -EBUSY;
		goto fail;
	}
	pifs_msg_init(&f, PIFS_MSG_CHUNK_PUT);
	f.reqid = ++w->next_reqid;
	f.epoch = pifs_nodemap_epoch(&d->map);
	f.u.CHUNK_PUT.id = q->id;
	f.u.CHUNK_PUT.flags = q->flags;
	f.u.CHUNK_PUT.chain = pifs_list_of(&w->list, w->rest);
	f.u.CHUNK_PUT.offset = q->offset;
	f.u.CHUNK_PUT.total = q->total;
	p->qh = p->qn = 0;
	p->as = NULL;
	rc = enqueue(w, p, &f, pay);
	if (rc < 0)
		goto fail;
	p->used = true;
	p->peer = next;
	p->fwd_reqid = f.reqid;
	p->reqid = r->reqid;
	p->id = q->id;
	p->local_rc = 0;
	memcpy(p->ident, r->ident, r->ilen);
	p->ilen = r->ilen;
	/* Each node down the chain gives the next one a share of its own
	 * time, so that an answer from the middle of a broken chain still
	 * reaches the writer before the writer gives up: with k nodes after
	 * us, we wait k/(k+1) of the client timeout. */
	k = (int)w->rest + 1;
	p->timeout_ms = (int)((int64_t)d->conf->timeout_ms * k / (k + 1));
	p->deadline = pifs_now_ms() + p->timeout_ms;
	w->npend++;
	rc = send_forward(peer, p);
	if (rc < 0) {
		drop_pending(w, p);
		goto fail;
	}
	return p;
fail:
	pifs_warn("node %u: chunk %s not forwarded to node %u at %s: %s; the chunk has fewer "
		  "copies until heal adds them",
		  self_id(w), hex, next, ep, strerror(-rc));
	return NULL;
}

/* Verify @len bytes of frame at @data, whose header is @h, into w->scratch. */
static int verify(struct pifs_chunk_worker *w, const void *data, size_t len,
		  const struct pifs_frame_hdr *h)
{
	pifs_buf_reset(&w->scratch);
	if (pifs_buf_reserve(&w->scratch, h->raw_len ? h->raw_len : 1) < 0)
		return -ENOMEM;
	return pifs_frame_verify(data, len, w->scratch.p, w->scratch.cap);
}

/* Is this node new, waiting to be admitted? Not if the writer's map (of
 * @epoch) is newer than ours: it may know that it was admitted since. */
static bool not_admitted(struct pifs_chunk_worker *w, uint64_t epoch)
{
	uint64_t mine = pifs_nodemap_epoch(&w->d->map);
	uint32_t flags;

	return mine && mine >= epoch && pifs_nodemap_flags(&w->d->map, self_id(w), &flags) == 0 &&
	       (flags & PIFS_NODE_NEW);
}

/* Check that the frame @data of @len bytes parses, is chunk @id and matches
 * its hash. Returns 0, or -errno once the requester has been told why. */
static int check_frame(struct pifs_chunk_worker *w, const struct req *r,
		       const struct pifs_chunk_id *id, const void *data, size_t len,
		       const char *hex)
{
	struct pifs_frame_hdr h;
	char got[33];
	int rc;

	rc = pifs_frame_parse(data, len, &h);
	if (rc < 0) {
		status(w, r, rc,
		       "the frame of chunk %s sent to node %u does not parse (%s); the writer "
		       "must re-encode it",
		       hex, self_id(w), strerror(-rc));
		return rc;
	}
	if (!pifs_chunk_id_eq(&h.id, id)) {
		pifs_chunk_id_hex(&h.id, got);
		status(w, r, -EBADMSG,
		       "CHUNK_PUT to node %u names chunk %s but its frame holds chunk %s; the "
		       "writer must send the frame the request names",
		       self_id(w), hex, got);
		return -EBADMSG;
	}
	rc = verify(w, data, len, &h);
	if (rc < 0) {
		rc = rc == -ERANGE ? -EBADMSG : rc;
		status(w, r, rc,
		       "chunk %s sent to node %u does not match its id (%s): it was damaged on "
		       "the way; the writer should send it again",
		       hex, self_id(w), strerror(-rc));
		return rc;
	}
	return 0;
}

/* Store our copy of a verified frame, placing *@tmp (which then is NULL) if
 * the frame was written there as it came. Returns 0 or -errno (logged). */
static int store_local(struct pifs_chunk_worker *w, uint32_t flags, uint64_t epoch,
		       const void *data, size_t len, const char *hex,
		       struct pifs_store_tmp **tmp)
{
	struct pifsd *d = w->d;
	unsigned sflags = (flags & PIFS_PUT_SYNC) ? PIFS_STORE_SYNC : 0;
	int rc;

	if (not_admitted(w, epoch)) {
		pifs_warn("node %u: refused chunk %s: this node joined by itself and takes no "
			  "chunks until an operator admits it (pifs-admin node add %s)",
			  self_id(w), hex, d->self->addr);
		return -EPERM;
	}
	if (tmp && *tmp) {
		rc = pifs_store_finish(d->store, *tmp, data, len, sflags, &w->scratch);
		*tmp = NULL;
	} else {
		rc = pifs_store_put(d->store, data, len, sflags, &w->scratch);
	}
	if (rc < 0)
		pifs_warn("node %u: could not store chunk %s in %s: %s; %s", self_id(w), hex,
			  d->data, strerror(-rc),
			  rc == -ENOSPC ? "free some space or add a node" : "check the data disk");
	return rc;
}

static void put(struct pifs_chunk_worker *w, const struct req *r,
		const struct pifs_msg_CHUNK_PUT *q, uint64_t epoch, zmq_msg_t *pay)
{
	struct pending *p = NULL;
	char hex[33];
	const void *data;
	uint32_t next;
	size_t len;
	int rc;

	pifs_chunk_id_hex(&q->id, hex);
	if (!pay) {
		status(w, r, -EBADMSG,
		       "CHUNK_PUT of chunk %s to node %u carries no frame; send the frame as the "
		       "message's second part",
		       hex, self_id(w));
		return;
	}
	data = zmq_msg_data(pay);
	len = zmq_msg_size(pay);
	if (check_frame(w, r, &q->id, data, len, hex) < 0)
		return;
	rc = next_hop(w, &q->chain, epoch, &next);
	if (rc < 0) {
		status(w, r, rc, "the chain of CHUNK_PUT %s to node %u is malformed", hex,
		       self_id(w));
		return;
	}
	if (rc == 1)
		p = forward(w, r, q, next, pay, hex);
	rc = store_local(w, q->flags, epoch, data, len, hex, NULL);
	if (p) {
		p->local_rc = rc;
		return;
	}
	finish_put(w, r, rc, &q->id, NULL);
}

static void free_assembly(struct pifs_chunk_worker *w, struct assembly *a)
{
	if (a->p)
		drop_pending(w, a->p);
	pifs_store_abort(w->d->store, a->tmp);
	a->tmp = NULL;
	free(a->frame);
	a->frame = NULL;
	pifs_buf_fini(&a->rest);
	a->used = false;
}

static struct assembly *find_assembly(struct pifs_chunk_worker *w, const struct req *r)
{
	size_t i;

	for (i = 0; i < MAX_ASSEMBLY; i++) {
		struct assembly *a = &w->as[i];

		if (a->used && a->reqid == r->reqid && a->ilen == r->ilen &&
		    memcmp(a->ident, r->ident, r->ilen) == 0)
			return a;
	}
	return NULL;
}

/* Start assembling the put whose first piece is @q. Returns the entry, or
 * NULL once the requester has been told why not. */
static struct assembly *start_assembly(struct pifs_chunk_worker *w, const struct req *r,
				       const struct pifs_msg_CHUNK_PUT *q, uint64_t epoch,
				       const char *hex)
{
	struct assembly *a = NULL;
	size_t i;

	if (q->total > PIFS_FRAME_HDR + PIFS_FRAME_MAX_RAW) {
		status(w, r, -EMSGSIZE,
		       "CHUNK_PUT of chunk %s to node %u announces a frame of %u bytes, more than "
		       "any chunk frame; the writer must send a valid frame",
		       hex, self_id(w), q->total);
		return NULL;
	}
	for (i = 0; i < MAX_ASSEMBLY && !a; i++)
		if (!w->as[i].used)
			a = &w->as[i];
	if (!a) {
		status(w, r, -EBUSY,
		       "node %u is assembling %d chunks on this worker already; retry shortly",
		       self_id(w), MAX_ASSEMBLY);
		return NULL;
	}
	a->frame = malloc(q->total);
	if (!a->frame) {
		status(w, r, -ENOMEM, "node %u is out of memory for chunk %s", self_id(w), hex);
		return NULL;
	}
	a->used = true;
	a->failed = false;
	memcpy(a->ident, r->ident, r->ilen);
	a->ilen = r->ilen;
	a->reqid = r->reqid;
	a->epoch = epoch;
	a->id = q->id;
	a->flags = q->flags;
	a->total = q->total;
	a->got = 0;
	a->p = NULL;
	a->nrest = 0;
	pifs_buf_init(&a->rest);
	/* Without a file to write to, the frame is stored whole at the end,
	 * which reports the reason (not admitted, disk full). */
	a->tmp = NULL;
	if (!not_admitted(w, epoch) && pifs_store_begin(w->d->store, &q->id, q->total, &a->tmp) < 0)
		a->tmp = NULL;
	return a;
}

/* Our copy of a put sent in pieces is whole: check it, store it, and answer
 * now or when the downstream node does. */
static void complete(struct pifs_chunk_worker *w, struct assembly *a, const char *hex)
{
	struct req r = {a->ident, a->ilen, a->reqid};
	struct pending *p = a->p;
	int rc;

	a->failed = true;
	if (check_frame(w, &r, &a->id, a->frame, a->total, hex) < 0)
		return;
	rc = store_local(w, a->flags, a->epoch, a->frame, a->total, hex, &a->tmp);
	if (p) {
		p->local_rc = rc;
		p->as = NULL;
		a->p = NULL;
		return;
	}
	finish_put(w, &r, rc, &a->id, NULL);
}

/* One piece of a put sent in pieces: pass it on down the chain at once, add
 * it to the frame, and finish the put with its last piece. */
static void put_piece(struct pifs_chunk_worker *w, const struct req *r,
		      const struct pifs_msg_CHUNK_PUT *q, uint64_t epoch, zmq_msg_t *pay)
{
	struct assembly *a = find_assembly(w, r);
	size_t len = pay ? zmq_msg_size(pay) : 0;
	struct peer *peer;
	struct pifs_msg f;
	char hex[33];
	uint32_t next;
	int rc;

	pifs_chunk_id_hex(&q->id, hex);
	if (!a && q->offset != 0) {
		pifs_debug("node %u: dropped a piece of chunk %s at %u for a put it is not "
			   "assembling (it failed or timed out)",
			   self_id(w), hex, q->offset);
		return;
	}
	if (!a) {
		a = start_assembly(w, r, q, epoch, hex);
		if (!a)
			return;
		rc = next_hop(w, &q->chain, epoch, &next);
		if (rc < 0) {
			status(w, r, rc, "the chain of CHUNK_PUT %s to node %u is malformed", hex,
			       self_id(w));
			a->failed = true;
		} else if (rc == 1 && pifs_buf_append(&a->rest, w->list.p, w->list.len) == 0) {
			a->nrest = w->rest;
			a->p = forward(w, r, q, next, pay, hex);
			if (a->p)
				a->p->as = a;
		}
		a->last = pifs_now_ms();
		if (a->failed)
			goto out_drop;
	} else if (!a->failed) {
		a->last = pifs_now_ms();
		if (a->p) {
			pifs_msg_init(&f, PIFS_MSG_CHUNK_PUT);
			f.reqid = a->p->fwd_reqid;
			f.epoch = pifs_nodemap_epoch(&w->d->map);
			f.u.CHUNK_PUT.id = q->id;
			f.u.CHUNK_PUT.flags = q->flags;
			f.u.CHUNK_PUT.chain = pifs_list_of(&a->rest, a->nrest);
			f.u.CHUNK_PUT.offset = q->offset;
			f.u.CHUNK_PUT.total = q->total;
			peer = find_peer(w, a->p->peer);
			rc = peer && peer->sock ? enqueue(w, a->p, &f, pay) : -EHOSTUNREACH;
			if (rc == 0)
				rc = send_forward(peer, a->p);
			if (rc < 0)
				settle(w, a->p, NULL, rc, NULL);
		}
	}
	if (a->failed)
		goto out_drop;
	if (q->total != a->total || q->offset != a->got || !pay || len == 0 ||
	    len > a->total - a->got || !pifs_chunk_id_eq(&q->id, &a->id)) {
		status(w, r, -EPROTO,
		       "a piece of chunk %s sent to node %u is %zu bytes at %u of a frame of %u "
		       "bytes, where %u of %u bytes came so far; the writer must send the "
		       "pieces in order",
		       hex, self_id(w), len, q->offset, q->total, a->got, a->total);
		a->failed = true;
		goto out_drop;
	}
	memcpy(a->frame + a->got, zmq_msg_data(pay), len);
	a->got += (uint32_t)len;
	if (a->tmp && pifs_store_append(a->tmp, zmq_msg_data(pay), len) < 0) {
		pifs_store_abort(w->d->store, a->tmp);
		a->tmp = NULL;
	}
	if (a->got < a->total)
		return;
	complete(w, a, hex);
	free_assembly(w, a);
	return;
out_drop:
	/* A failed put is forgotten with its last piece, or at its timeout. */
	if (q->total && (uint64_t)q->offset + len >= q->total)
		free_assembly(w, a);
}

static void get(struct pifs_chunk_worker *w, const struct req *r,
		const struct pifs_msg_CHUNK_GET *q)
{
	struct pifs_msg rep;
	void *frame;
	size_t len;
	char hex[33];
	int rc;

	rc = pifs_store_get(w->d->store, &q->id, &w->scratch, &frame, &len);
	if (rc == 0) {
		pifs_msg_init(&rep, PIFS_MSG_R_CHUNK);
		rep.u.R_CHUNK.id = q->id;
		reply(w, r, &rep, frame, len);
		return;
	}
	pifs_chunk_id_hex(&q->id, hex);
	if (rc == -EBADMSG)
		pifs_scrub_corrupt(w->d->scrub, &q->id);
	if (rc == -ENOENT)
		status(w, r, rc, "node %u has no chunk %s", self_id(w), hex);
	else if (rc == -EBADMSG)
		status(w, r, rc,
		       "chunk %s on node %u is corrupt: it was quarantined and is being repaired; "
		       "read it from another replica",
		       hex, self_id(w));
	else
		status(w, r, rc, "node %u could not read chunk %s: %s; check its data disk",
		       self_id(w), hex, strerror(-rc));
}

static void sync_chunks(struct pifs_chunk_worker *w, const struct req *r,
			const struct pifs_msg_CHUNK_SYNC *q)
{
	struct pifs_chunk_id *ids;
	struct pifs_chunkid c;
	struct pifs_cursor cur;
	uint32_t n = 0;
	int rc;

	ids = malloc((q->ids.count ? q->ids.count : 1) * sizeof(*ids));
	if (!ids) {
		status(w, r, -ENOMEM, "node %u is out of memory", self_id(w));
		return;
	}
	pifs_cursor_init(&cur, &q->ids);
	while (n < q->ids.count && pifs_chunkid_next(&cur, &c) == 1)
		ids[n++] = c.id;
	rc = pifs_store_sync(w->d->store, ids, n);
	free(ids);
	if (rc == -ENOENT)
		status(w, r, rc, "node %u does not have every chunk it was asked to sync",
		       self_id(w));
	else if (rc < 0)
		status(w, r, rc, "node %u could not sync chunks to its disk: %s; check the disk",
		       self_id(w), strerror(-rc));
	else
		status(w, r, 0, NULL);
}

static void del(struct pifs_chunk_worker *w, const struct req *r,
		const struct pifs_msg_CHUNK_DEL *q)
{
	char hex[33];
	int rc = pifs_store_del(w->d->store, &q->id);

	pifs_chunk_id_hex(&q->id, hex);
	if (rc == -ENOENT)
		status(w, r, rc, "node %u has no chunk %s", self_id(w), hex);
	else if (rc < 0)
		status(w, r, rc, "node %u could not delete chunk %s: %s", self_id(w), hex,
		       strerror(-rc));
	else
		status(w, r, 0, NULL);
}

/* Say which of the chunks asked about are here. */
static void has(struct pifs_chunk_worker *w, const struct req *r,
		const struct pifs_msg_CHUNK_HAS *q)
{
	struct pifs_chunkid c;
	struct pifs_cursor cur;
	struct pifs_msg rep;
	uint32_t n = 0;
	int rc = 0;

	pifs_buf_reset(&w->list);
	if (pifs_buf_reserve(&w->list, q->ids.count ? q->ids.count : 1) < 0) {
		status(w, r, -ENOMEM, "node %u is out of memory", self_id(w));
		return;
	}
	pifs_cursor_init(&cur, &q->ids);
	while (n < q->ids.count && pifs_chunkid_next(&cur, &c) == 1) {
		rc = pifs_store_has(w->d->store, &c.id);
		if (rc < 0)
			break;
		w->list.p[n++] = (uint8_t)rc;
	}
	if (rc < 0) {
		/* A wrong "no" could make a node drop what we hold: say nothing. */
		status(w, r, rc, "node %u could not look up its chunks in %s: %s; check the disk",
		       self_id(w), w->d->data, strerror(-rc));
		return;
	}
	w->list.len = n;
	pifs_msg_init(&rep, PIFS_MSG_R_HAS);
	rep.u.R_HAS.have.p = w->list.p;
	rep.u.R_HAS.have.len = n;
	reply(w, r, &rep, NULL, 0);
}

static void work_start(struct pifs_chunk_worker *w, const struct req *r,
		       const struct pifs_msg_WORK_START *q)
{
	switch (q->flags) {
	case PIFS_WORK_HEAL:
		pifs_heal_kick(w->d->heal);
		break;
	case PIFS_WORK_SCRUB:
		pifs_scrub_kick(w->d->scrub);
		break;
	case PIFS_WORK_GC:
	case PIFS_WORK_GC | PIFS_WORK_DRYRUN:
		pifs_gc_kick(w->d->gc, q->flags & PIFS_WORK_DRYRUN);
		break;
	default:
		status(w, r, -EINVAL,
		       "WORK_START to node %u has flags %#x; it takes 0 (scrub), %#x (heal), %#x "
		       "(garbage collection) or %#x (its dry run)",
		       self_id(w), q->flags, PIFS_WORK_HEAL, PIFS_WORK_GC,
		       PIFS_WORK_GC | PIFS_WORK_DRYRUN);
		return;
	}
	status(w, r, 0, NULL);
}

/* Change the throttles of heal and scrub until the daemon restarts. */
static void work_set(struct pifs_chunk_worker *w, const struct req *r,
		     const struct pifs_msg_WORK_SET *q)
{
	pifs_heal_set_rate(w->d->heal, q->heal_rate);
	pifs_scrub_set_rate(w->d->scrub, q->scrub_rate);
	if (q->heal_rate)
		pifs_info("node %u: heal and rebalance now copy at most %" PRIu64 " bytes/s (until "
			  "the node restarts)",
			  self_id(w), q->heal_rate);
	if (q->scrub_rate)
		pifs_info("node %u: scrub now reads at most %" PRIu64 " bytes/s (until the node "
			  "restarts)",
			  self_id(w), q->scrub_rate);
	status(w, r, 0, NULL);
}

/* What this node's convergence pass would send now: R_PLAN. */
static void plan(struct pifs_chunk_worker *w, const struct req *r, const struct pifs_msg_PLAN *q)
{
	struct pifs_heal_forecast *fc;
	struct pifs_msg rep;
	struct pifs_move mv;
	size_t i;
	int rc;

	if (q->flags & ~(uint32_t)PIFS_NODE_NEW) {
		status(w, r, -EINVAL,
		       "PLAN to node %u has flags %#x; it takes 0 (under the current map) or %#x "
		       "(as if the new nodes were admitted)",
		       self_id(w), q->flags, PIFS_NODE_NEW);
		return;
	}
	fc = malloc(sizeof(*fc));
	if (!fc) {
		status(w, r, -ENOMEM, "node %u is out of memory", self_id(w));
		return;
	}
	rc = pifs_heal_forecast(w->d->heal, q->flags, fc);
	if (rc == -EBUSY)
		status(w, r, rc, "node %u is making another plan; retry in a moment", self_id(w));
	else if (rc == -EAGAIN)
		status(w, r, rc,
		       "node %u has no cluster map yet; retry once its heartbeat reaches the "
		       "metadata service (the node's log says why it has not)",
		       self_id(w));
	else if (rc < 0)
		status(w, r, rc, "node %u could not make a plan: %s%s", self_id(w), strerror(-rc),
		       rc == -ECANCELED ? " (it is stopping)" : "; check its data disk");
	if (rc < 0)
		goto out_free;
	pifs_buf_reset(&w->list);
	for (i = 0; i < fc->n; i++) {
		mv.from = self_id(w);
		mv.to = fc->moves[i].to;
		mv.chunks = fc->moves[i].chunks;
		mv.bytes = fc->moves[i].bytes;
		if (pifs_move_append(&w->list, &mv) < 0) {
			status(w, r, -ENOMEM, "node %u is out of memory", self_id(w));
			goto out_free;
		}
	}
	pifs_msg_init(&rep, PIFS_MSG_R_PLAN);
	rep.u.R_PLAN.chunks = fc->chunks;
	rep.u.R_PLAN.bytes = fc->bytes;
	rep.u.R_PLAN.moves = pifs_list_of(&w->list, (uint32_t)fc->n);
	reply(w, r, &rep, NULL, 0);
out_free:
	free(fc);
}

static void node_stat(struct pifs_chunk_worker *w, const struct req *r)
{
	struct pifs_store_stat st;
	struct pifs_msg rep;
	int rc = pifs_store_stat(w->d->store, &st);

	if (rc < 0) {
		status(w, r, rc, "node %u could not read the space of %s: %s", self_id(w),
		       w->d->data, strerror(-rc));
		return;
	}
	pifs_msg_init(&rep, PIFS_MSG_R_NODE);
	rep.u.R_NODE.id = self_id(w);
	rep.u.R_NODE.capacity = st.capacity;
	rep.u.R_NODE.free = st.free;
	rep.u.R_NODE.used = st.bytes;
	rep.u.R_NODE.chunks = st.chunks;
	rep.u.R_NODE.corrupt = st.corrupt;
	pifs_heal_report(w->d->heal, &rep.u.R_NODE.work);
	pifs_scrub_report(w->d->scrub, &rep.u.R_NODE.work);
	pifs_gc_report(w->d->gc, &rep.u.R_NODE.work);
	rep.u.R_NODE.work.lost = st.lost;
	rep.u.R_NODE.keys = pifs_auth_generation(w->d->auth);
	rep.u.R_NODE.refused = pifs_auth_refusals(w->d->auth);
	reply(w, r, &rep, NULL, 0);
}

static void handle(struct pifs_chunk_worker *w, zmq_msg_t *ident, zmq_msg_t *body, zmq_msg_t *pay)
{
	struct req r = {zmq_msg_data(ident), zmq_msg_size(ident), 0};
	struct pifs_msg m;
	int rc;

	/* ZeroMQ caps routing identities at 255 bytes; a longer one is no
	 * identity the ROUTER made, and could not be kept in a pending entry. */
	if (r.ilen > PIFS_IDENT_MAX) {
		pifs_err("node %u: chunk worker %u got a routing identity of %zu bytes; dropped",
			 self_id(w), w->index, r.ilen);
		return;
	}
	rc = pifs_proto_decode(zmq_msg_data(body), zmq_msg_size(body), &m);
	r.reqid = m.reqid;
	if (rc < 0) {
		status(w, &r, rc, "node %u could not decode a chunk request", self_id(w));
		return;
	}
	switch (m.type) {
	case PIFS_MSG_CHUNK_PUT:
		if (m.u.CHUNK_PUT.total)
			put_piece(w, &r, &m.u.CHUNK_PUT, m.epoch, pay);
		else
			put(w, &r, &m.u.CHUNK_PUT, m.epoch, pay);
		break;
	case PIFS_MSG_CHUNK_GET:
		get(w, &r, &m.u.CHUNK_GET);
		break;
	case PIFS_MSG_CHUNK_SYNC:
		sync_chunks(w, &r, &m.u.CHUNK_SYNC);
		break;
	case PIFS_MSG_CHUNK_DEL:
		del(w, &r, &m.u.CHUNK_DEL);
		break;
	case PIFS_MSG_NODE_STAT:
		node_stat(w, &r);
		break;
	case PIFS_MSG_CHUNK_HAS:
		has(w, &r, &m.u.CHUNK_HAS);
		break;
	case PIFS_MSG_WORK_START:
		work_start(w, &r, &m.u.WORK_START);
		break;
	case PIFS_MSG_WORK_SET:
		work_set(w, &r, &m.u.WORK_SET);
		break;
	case PIFS_MSG_PLAN:
		plan(w, &r, &m.u.PLAN);
		break;
	default:
		status(w, &r, -EOPNOTSUPP, "%s is not a chunk request", pifs_proto_name(m.type));
		break;
	}
}

static bool has_more(void *sock)
{
	int more = 0;
	size_t sz = sizeof(more);

	return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more;
}

/* Take one request off the broker's socket and answer or forward it.
 * Returns 0, or -EAGAIN when there was none. */
static int serve_one(struct pifs_chunk_worker *w, void *sock)
{
	zmq_msg_t part[3], junk;
	bool extra = false;
	int n, rc, i;

	zmq_msg_init(&part[0]);
	if (zmq_msg_recv(&part[0], sock, ZMQ_DONTWAIT) < 0) {
		rc = -errno;
		zmq_msg_close(&part[0]);
		return rc;
	}
	for (n = 1; has_more(sock);) {
		zmq_msg_t *m = n < 3 ? &part[n] : &junk;

		zmq_msg_init(m);
		rc = zmq_msg_recv(m, sock, 0);
		if (n < 3 && rc >= 0) {
			n++;
			continue;
		}
		extra = true;
		zmq_msg_close(m);
		if (rc < 0)
			break;
	}
	/* The broker hands on [identity][message][payload?] and nothing else. */
	if (n >= 2 && !extra)
		handle(w, &part[0], &part[1], n == 3 ? &part[2] : NULL);
	else
		pifs_err("node %u: chunk worker %u got a malformed request from the broker; "
			 "dropped",
			 self_id(w), w->index);
	for (i = 0; i < n; i++)
		zmq_msg_close(&part[i]);
	return 0;
}

/* Read every reply that node @peer has sent back. */
static void drain_peer(struct pifs_chunk_worker *w, struct peer *peer)
{
	for (;;) {
		struct pending *p = NULL;
		struct pifs_msg rep;
		zmq_msg_t msg, junk;
		size_t i;

		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, peer->sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&msg);
			return;
		}
		while (has_more(peer->sock)) {
			zmq_msg_init(&junk);
			zmq_msg_recv(&junk, peer->sock, 0);
			zmq_msg_close(&junk);
		}
		if (pifs_proto_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &rep) == 0) {
			for (i = 0; i < MAX_PENDING && !p; i++)
				if (w->pend[i].used &&
				    w->pend[i].peer == peer->id &&
				    w->pend[i].fwd_reqid == rep.reqid)
					p = &w->pend[i];
		}
		/* No entry: a late answer to a forward we gave up on. */
		if (p && rep.type == PIFS_MSG_R_PUT)
			settle(w, p, &rep.u.R_PUT.nodes, 0, NULL);
		else if (p && rep.type == PIFS_MSG_R_STATUS)
			settle(w, p, NULL,
			       rep.u.R_STATUS.status < 0 ? rep.u.R_STATUS.status : -EPROTO,
			       &rep.u.R_STATUS.detail);
		else if (p)
			settle(w, p, NULL, -EPROTO, NULL);
		zmq_msg_close(&msg);
	}
}

/* Send the forwards that waited for @peer to connect. */
static void flush_peer(struct pifs_chunk_worker *w, struct peer *peer)
{
	size_t i;
	int rc;

	for (i = 0; i < MAX_PENDING && peer->sock; i++) {
		struct pending *p = &w->pend[i];

		if (!p->used || !p->qn || p->peer != peer->id)
			continue;
		rc = send_forward(peer, p);
		if (rc < 0)
			settle(w, p, NULL, rc, NULL);
		else if (p->qn)
			return; /* full again */
	}
}

/* Give up on forwards past their deadline. The node's socket is rebuilt, so
 * that what is queued for a stuck node is dropped instead of pinning frames
 * and arriving much later; the other forwards to it go with it. */
static void expire(struct pifs_chunk_worker *w)
{
	int64_t now = pifs_now_ms();
	size_t i;

	for (i = 0; i < MAX_PENDING; i++) {
		struct pending *p = &w->pend[i];
		struct peer *peer;

		if (!p->used || now < p->deadline)
			continue;
		peer = find_peer(w, p->peer);
		/* Never sent: the node was not even connected. */
		settle(w, p, NULL, p->qn ? -EHOSTUNREACH : -ETIMEDOUT, NULL);
		if (peer)
			abandon_peer(w, peer, -ETIMEDOUT);
	}
	for (i = 0; i < MAX_ASSEMBLY; i++) {
		struct assembly *a = &w->as[i];
		struct req r = {a->ident, a->ilen, a->reqid};
		char hex[33];

		if (!a->used || now - a->last < w->d->conf->timeout_ms)
			continue;
		pifs_chunk_id_hex(&a->id, hex);
		if (!a->failed) {
			pifs_warn("node %u: chunk %s stopped arriving after %u of %u bytes for %d "
				  "ms; dropped it (the writer is gone or will send it again)",
				  self_id(w), hex, a->got, a->total, w->d->conf->timeout_ms);
			status(w, &r, -ETIMEDOUT,
			       "node %u got %u of %u bytes of chunk %s and no more for %d ms",
			       self_id(w), a->got, a->total, hex, w->d->conf->timeout_ms);
		}
		free_assembly(w, a);
	}
}

static long poll_timeout(const struct pifs_chunk_worker *w)
{
	int64_t now = pifs_now_ms(), best = IDLE_MS;
	size_t i;

	for (i = 0; i < MAX_PENDING; i++)
		if (w->pend[i].used && w->pend[i].deadline - now < best)
			best = w->pend[i].deadline - now;
	for (i = 0; i < MAX_ASSEMBLY; i++)
		if (w->as[i].used && w->as[i].last + w->d->conf->timeout_ms - now < best)
			best = w->as[i].last + w->d->conf->timeout_ms - now;
	return best < 0 ? 0 : (long)best;
}

static size_t build_items(struct pifs_chunk_worker *w)
{
	size_t n = 3, i, j;

	w->items[0] = (zmq_pollitem_t){w->ctl, 0, ZMQ_POLLIN, 0};
	/* A worker with no room for another forward leaves requests to the
	 * others until a downstream node answers. */
	w->items[1] = (zmq_pollitem_t){w->sock, 0, w->npend < MAX_PENDING ? ZMQ_POLLIN : 0, 0};
	/* Pieces are always taken: the puts they finish free what is held. */
	w->items[2] = (zmq_pollitem_t){w->psock, 0, ZMQ_POLLIN, 0};
	for (i = 0; i < w->npeers; i++) {
		short ev = ZMQ_POLLIN;

		if (!w->peers[i].sock)
			continue;
		for (j = 0; j < MAX_PENDING; j++)
			if (w->pend[j].used && w->pend[j].qn &&
			    w->pend[j].peer == w->peers[i].id)
				ev |= ZMQ_POLLOUT;
		w->item_peer[n - 3] = i;
		w->items[n++] = (zmq_pollitem_t){w->peers[i].sock, 0, ev, 0};
	}
	return n;
}

static void *run(void *arg)
{
	struct pifs_chunk_worker *w = arg;
	size_t n, i;
	int rc, burst;

	while (!atomic_load(&w->d->workers_stop)) {
		n = build_items(w);
		rc = zmq_poll(w->items, (int)n, poll_timeout(w));
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			pifs_err("node %u: chunk worker %u stops: %s", self_id(w), w->index,
				 zmq_strerror(errno));
			break;
		}
		if (w->items[0].revents & ZMQ_POLLIN)
			break;
		/* Peers first: serving may add peers and move the array. */
		for (i = 3; i < n; i++) {
			struct peer *peer = &w->peers[w->item_peer[i - 3]];

			if ((w->items[i].revents & ZMQ_POLLIN) && peer->sock)
				drain_peer(w, peer);
			if ((w->items[i].revents & ZMQ_POLLOUT) && peer->sock)
				flush_peer(w, peer);
		}
		if (w->items[1].revents & ZMQ_POLLIN)
			for (burst = 0; burst < SERVE_BURST && w->npend < MAX_PENDING; burst++)
				if (serve_one(w, w->sock) < 0)
					break;
		if (w->items[2].revents & ZMQ_POLLIN)
			for (burst = 0; burst < SERVE_BURST; burst++)
				if (serve_one(w, w->psock) < 0)
					break;
		expire(w);
		/* A chunk larger than the cluster's chunk size (one that heal
		 * moves from an older cluster) does not keep its scratch. */
		if (w->scratch.cap > w->d->conf->chunk_size)
			pifs_buf_fini(&w->scratch);
	}
	return NULL;
}

static void worker_free(struct pifs_chunk_worker *w)
{
	size_t i;

	for (i = 0; i < MAX_ASSEMBLY; i++)
		if (w->as[i].used)
			free_assembly(w, &w->as[i]);
	for (i = 0; i < MAX_PENDING; i++)
		if (w->pend[i].used)
			drop_pending(w, &w->pend[i]);
	for (i = 0; i < w->npeers; i++)
		close_peer(&w->peers[i]);
	if (w->sock)
		zmq_close(w->sock);
	if (w->psock)
		zmq_close(w->psock);
	if (w->ctl)
		zmq_close(w->ctl);
	free(w->peers);
	free(w->items);
	free(w->item_peer);
	pifs_buf_fini(&w->scratch);
	pifs_buf_fini(&w->enc);
	pifs_buf_fini(&w->list);
	free(w);
}

int pifs_chunk_worker_start(struct pifsd *d, unsigned index, struct pifs_chunk_worker **out)
{
	struct pifs_chunk_worker *w;
	int hwm = WORK_HWM, rc;
	char ep[64];

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->d = d;
	w->index = index;
	pifs_buf_init(&w->scratch);
	pifs_buf_init(&w->enc);
	pifs_buf_init(&w->list);
	w->items = calloc(3, sizeof(*w->items));
	if (!w->items) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = pifs_ctl_subscribe(d->zctx, PIFS_CTL_WORKERS, &w->ctl);
	if (rc < 0)
		goto out_free;
	w->sock = zmq_socket(d->zctx, ZMQ_DEALER);
	if (!w->sock) {
		rc = -errno;
		goto out_free;
	}
	rc = pifs_rpc_sockopts(w->sock);
	if (rc == 0 && (zmq_setsockopt(w->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_connect(w->sock, PIFS_CHUNK_ENDPOINT) < 0))
		rc = -errno;
	if (rc < 0)
		goto out_free;
	w->psock = zmq_socket(d->zctx, ZMQ_DEALER);
	if (!w->psock) {
		rc = -errno;
		goto out_free;
	}
	snprintf(ep, sizeof(ep), PIFS_PIECE_ENDPOINT, index);
	rc = pifs_rpc_sockopts(w->psock);
	if (rc == 0 && zmq_connect(w->psock, ep) < 0)
		rc = -errno;
	if (rc < 0)
		goto out_free;
	rc = -pthread_create(&w->thread, NULL, run, w);
	if (rc < 0)
		goto out_free;
	*out = w;
	return 0;
out_free:
	worker_free(w);
	return rc;
}

void pifs_chunk_worker_join(struct pifs_chunk_worker *w)
{
	if (!w)
		return;
	pthread_join(w->thread, NULL);
	worker_free(w);
}
