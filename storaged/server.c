/* server.c - the broker of pifs-storaged. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl.h"
#include "gc.h"
#include "guard.h"
#include "heal.h"
#include "log.h"
#include "rpc.h"
#include "scrub.h"

/* The broker's queue to each chunk worker (the worker adds its own). */
#define CHUNK_HWM 2
/* Pieces queued to one worker: a few puts' worth, so that the pieces of
 * several clients interleave without stalling the ROUTER. */
#define PIECE_HWM 32
/* The metadata service takes its requests in batches of up to 257. */
#define META_HWM 1024
/* Requests queued per client connection before ZeroMQ stops reading its TCP
 * socket: with 4 MiB chunks this bounds what one eager client parks in our
 * RAM to 64 MiB, and only pushes back (nothing is dropped on receive). */
#define ROUTER_RCVHWM 16
/* Requests and replies moved per wake-up, so that neither side starves. */
#define BURST 64
/* While the inproc queues are full or a stop is under way, look again this
 * often even if nothing wakes the broker. */
#define RECHECK_MS 100

struct pifs_server {
	struct pifsd *d;
	void *ctl;    /* PUB for PIFS_CTL_* */
	void *router; /* the node's address */
	struct pifs_guard *guard; /* of the router's connections */
	void *chunk;  /* DEALER bound on PIFS_CHUNK_ENDPOINT */
	void *meta;   /* DEALER bound on PIFS_META_ENDPOINT */
	void *piece[PIFS_WORKERS]; /* DEALER to worker i, for puts sent in pieces */
	char endpoint[300];
	uint64_t inflight; /* requests handed on and not yet answered */
};

static uint32_t self_id(const struct pifs_server *s)
{
	return s->d->self->id;
}

static int open_backend(struct pifs_server *s, const char *endpoint, int hwm, void **out)
{
	void *sock = zmq_socket(s->d->zctx, ZMQ_DEALER);
	int rc;

	if (!sock)
		return -errno;
	rc = pifs_rpc_sockopts(sock);
	if (rc == 0 && (zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_bind(sock, endpoint) < 0))
		rc = -errno;
	if (rc < 0) {
		zmq_close(sock);
		return rc;
	}
	*out = sock;
	return 0;
}

int pifs_server_open(struct pifsd *d, const char *endpoint, struct pifs_server **out)
{
	struct pifs_server *s;
	int hwm = ROUTER_RCVHWM, rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->d = d;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s", endpoint);
	rc = pifs_ctl_bind(d->zctx, &s->ctl);
	if (rc == 0)
		rc = open_backend(s, PIFS_CHUNK_ENDPOINT, CHUNK_HWM, &s->chunk);
	for (unsigned i = 0; rc == 0 && i < PIFS_WORKERS; i++) {
		char ep[64];

		snprintf(ep, sizeof(ep), PIFS_PIECE_ENDPOINT, i);
		rc = open_backend(s, ep, PIECE_HWM, &s->piece[i]);
	}
	if (rc == 0)
		rc = open_backend(s, PIFS_META_ENDPOINT, META_HWM, &s->meta);
	if (rc < 0)
		goto out_close;
	s->router = zmq_socket(d->zctx, ZMQ_ROUTER);
	if (!s->router) {
		rc = -errno;
		goto out_close;
	}
	rc = pifs_rpc_sockopts(s->router);
	if (rc == 0)
		rc = pifs_auth_server(d->auth, s->router);
	if (rc == 0)
		rc = pifs_guard_open(d->zctx, s->router, d->auth, &s->guard);
	if (rc == 0 && (zmq_setsockopt(s->router, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
			zmq_bind(s->router, endpoint) < 0))
		rc = -errno;
	if (rc < 0)
		goto out_close;
	*out = s;
	return 0;
out_close:
	pifs_server_close(s);
	return rc;
}

void pifs_server_close(struct pifs_server *s)
{
	if (!s)
		return;
	pifs_guard_close(s->guard);
	if (s->router)
		zmq_close(s->router);
	if (s->chunk)
		zmq_close(s->chunk);
	if (s->meta)
		zmq_close(s->meta);
	for (unsigned i = 0; i < PIFS_WORKERS; i++)
		if (s->piece[i])
			zmq_close(s->piece[i]);
	if (s->ctl)
		zmq_close(s->ctl);
	free(s);
}

int pifs_server_publish(struct pifs_server *s, const char *topic)
{
	return pifs_ctl_publish(s->ctl, topic);
}

static void reply_status(struct pifs_server *s, zmq_msg_t *ident, uint64_t reqid, int rc,
			 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Answer a request the broker refuses itself. */
static void reply_status(struct pifs_server *s, zmq_msg_t *ident, uint64_t reqid, int rc,
			 const char *fmt, ...)
{
	struct pifs_msg rep;
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	pifs_msg_init(&rep, PIFS_MSG_R_STATUS);
	rep.reqid = reqid;
	rep.epoch = pifs_nodemap_epoch(&s->d->map);
	rep.u.R_STATUS.status = rc;
	rep.u.R_STATUS.detail = pifs_str_of(detail);
	pifs_rpc_sendto(s->router, zmq_msg_data(ident), zmq_msg_size(ident), &rep, NULL, 0, 0);
}

static bool writable(void *sock)
{
	int ev = 0;
	size_t sz = sizeof(ev);

	return zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLOUT);
}

/* Can every inproc queue take a request? */
static bool has_room(struct pifs_server *s)
{
	int ev = 0;
	size_t sz = sizeof(ev);

	if (!writable(s->chunk))
		return false;
	for (unsigned i = 0; i < PIFS_WORKERS; i++)
		if (!writable(s->piece[i]))
			return false;
	sz = sizeof(ev);
	return zmq_getsockopt(s->meta, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLOUT);
}

/* Hand the request on to @to, moving its frames. */
static void hand_on(struct pifs_server *s, void *to, zmq_msg_t *ident, zmq_msg_t *body,
		    zmq_msg_t *pay, uint64_t reqid)
{
	if (zmq_msg_send(ident, to, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		reply_status(s, ident, reqid, -EAGAIN, "node %u is overloaded; retry shortly",
			     self_id(s));
		return;
	}
	/* ZeroMQ takes the rest of a message whose first part it took. */
	zmq_msg_send(body, to, pay ? ZMQ_SNDMORE : 0);
	if (pay)
		zmq_msg_send(pay, to, 0);
	s->inflight++;
}

/* Hand a Raft message to the metadata service, or drop it when its queue
 * is full (Raft sends again). It is no request in flight: nothing answers
 * it. */
static void hand_raft(struct pifs_server *s, zmq_msg_t *ident, zmq_msg_t *body)
{
	if (zmq_msg_send(ident, s->meta, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return;
	zmq_msg_send(body, s->meta, 0);
}

/* Hand a piece of a put to the worker that has its other pieces: the one a
 * hash of the sender and the request id names. Only the first piece counts
 * as a request in flight, for the put is answered once. */
static void hand_piece(struct pifs_server *s, zmq_msg_t *ident, zmq_msg_t *body, zmq_msg_t *pay,
		       const struct pifs_msg *m)
{
	const uint8_t *p = zmq_msg_data(ident);
	uint64_t h = 1469598103934665603ull ^ m->reqid;
	size_t i, n = zmq_msg_size(ident);
	void *to;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	to = s->piece[(h ^ (h >> 32)) % PIFS_WORKERS];
	if (zmq_msg_send(ident, to, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
		reply_status(s, ident, m->reqid, -EAGAIN, "node %u is overloaded; retry shortly",
			     self_id(s));
		return;
	}
	zmq_msg_send(body, to, ZMQ_SNDMORE);
	zmq_msg_send(pay, to, 0);
	if (m->u.CHUNK_PUT.offset == 0)
		s->inflight++;
}

/* The request id of a frame that does not decode, if its envelope can be
 * trusted that far: 0 when the reply could reach no one. */
static uint64_t salvage_reqid(const uint8_t *p, size_t len)
{
	uint64_t v = 0;
	int i;

	if (len < PIFS_PROTO_HDR || ((p[0] << 8) | p[1]) != PIFS_PROTO_MAGIC)
		return 0;
	for (i = 8; i < 16; i++)
		v = (v << 8) | p[i];
	return v;
}

/* The node a heartbeat or a Raft message speaks for; 0 for any other. */
static uint32_t speaks_for(const struct pifs_msg *m)
{
	switch (m->type) {
	case PIFS_MSG_NODE_HELLO:
		return m->u.NODE_HELLO.id;
	case PIFS_MSG_RAFT_VOTE:
		return m->u.RAFT_VOTE.from;
	case PIFS_MSG_RAFT_VOTE_R:
		return m->u.RAFT_VOTE_R.from;
	case PIFS_MSG_RAFT_APPEND:
		return m->u.RAFT_APPEND.from;
	case PIFS_MSG_RAFT_APPEND_R:
		return m->u.RAFT_APPEND_R.from;
	case PIFS_MSG_RAFT_SNAP:
		return m->u.RAFT_SNAP.from;
	case PIFS_MSG_RAFT_SNAP_R:
		return m->u.RAFT_SNAP_R.from;
	default:
		return 0;
	}
}

/* May the sender of @m ask it? A refusal is counted, logged once per peer,
 * and answered (but Raft's, which nothing answers). */
static bool permitted(struct pifs_server *s, zmq_msg_t *ident, zmq_msg_t *body,
		      const struct pifs_msg *m)
{
	char name[PIFS_KEY_NAME_MAX + 1], key[PIFS_KEY_NAME_MAX + 16];
	enum pifs_role r = pifs_auth_peer(s->d->auth, body, name, sizeof(name));
	uint32_t as = speaks_for(m);
	const char *addr;

	/* A node key speaks for its own node only: a stolen one cannot pose
	 * as another voter or heartbeat for another node. */
	if (pifs_auth_may(r, m->type) && !(r == PIFS_ROLE_NODE && as && as != pifs_key_node(name)))
		return true;
	snprintf(key, sizeof(key), name[0] ? "'%s'" : "(no longer listed)", name);
	addr = zmq_msg_gets(body, "Peer-Address");
	pifs_auth_refused(s->d->auth, addr ? addr : "?", key, pifs_proto_name(m->type));
	if (pifs_proto_kind(m->type) == PIFS_KIND_RFT)
		return false;
	if (r == PIFS_ROLE_NONE)
		reply_status(s, ident, m->reqid, -EACCES,
			     "node %u refused %s: the key %s is revoked or no longer in its "
			     "allow-list; this machine needs a new key (pifs-admin keys add-...)",
			     self_id(s), pifs_proto_name(m->type), key);
	else if (as)
		reply_status(s, ident, m->reqid, -EACCES,
			     "node %u refused a heartbeat for node %u signed with the key %s: each "
			     "node uses its own node-ID.key",
			     self_id(s), as, key);
	else
		reply_status(s, ident, m->reqid, -EACCES,
			     "node %u refused %s: the key %s has the role %s, which may not ask "
			     "it; an admin key may (pifs-admin uses admin.key unless --key says "
			     "otherwise)",
			     self_id(s), pifs_proto_name(m->type), key, pifs_role_name(r));
	return false;
}

/* KEYS_SET: take a newer allow-list. */
static void keys_set(struct pifs_server *s, zmq_msg_t *ident, const struct pifs_msg *m)
{
	char err[512] = "";
	int rc;

	rc = pifs_auth_install(s->d->auth, (const char *)m->u.KEYS_SET.allowed.p,
			       m->u.KEYS_SET.allowed.len, err, sizeof(err));
	if (rc < 0)
		reply_status(s, ident, m->reqid, rc, "node %u kept its allow-list: %s", self_id(s),
			     err);
	else
		reply_status(s, ident, m->reqid, 0,
			     rc ? "node %u took allow-list generation %llu"
				: "node %u already has allow-list generation %llu",
			     self_id(s), (unsigned long long)pifs_auth_generation(s->d->auth));
}

static void route(struct pifs_server *s, zmq_msg_t *ident, zmq_msg_t *body, zmq_msg_t *pay,
		  int parts, bool draining)
{
	struct pifs_msg m;
	uint64_t reqid;
	int rc, kind;

	rc = pifs_proto_decode(zmq_msg_data(body), zmq_msg_size(body), &m);
	reqid = rc < 0 ? salvage_reqid(zmq_msg_data(body), zmq_msg_size(body)) : m.reqid;
	if (rc < 0) {
		if (reqid)
			reply_status(s, ident, reqid, rc,
				     "node %u could not decode a request of %zu bytes (%s); check "
				     "that the sender runs the same pifs version",
				     self_id(s), zmq_msg_size(body), strerror(-rc));
		else
			pifs_debug("node %u: dropped a frame of %zu bytes that is no pifs request",
				   self_id(s), zmq_msg_size(body));
		return;
	}
	if (!permitted(s, ident, body, &m))
		return;
	kind = pifs_proto_kind(m.type);
	/* Raft's messages go one way and are never answered on their
	 * connection; a voter that is stopping takes no more part. */
	if (kind == PIFS_KIND_RFT) {
		if (!draining && parts == 2)
			hand_raft(s, ident, body);
		return;
	}
	if (draining) {
		reply_status(s, ident, reqid, -ESHUTDOWN,
			     "node %u is shutting down; use another node or retry once it is back",
			     self_id(s));
		return;
	}
	if (parts > 3) {
		reply_status(s, ident, reqid, -EBADMSG,
			     "a %s to node %u came in %d parts; a request has a message and at "
			     "most one payload",
			     pifs_proto_name(m.type), self_id(s), parts - 1);
		return;
	}
	if ((m.type == PIFS_MSG_CHUNK_PUT) != (pay != NULL)) {
		reply_status(s, ident, reqid, -EBADMSG,
			     pay ? "%s to node %u carries a payload it does not take"
				 : "%s to node %u carries no chunk frame",
			     pifs_proto_name(m.type), self_id(s));
		return;
	}
	if (m.type == PIFS_MSG_KEYS_SET) {
		keys_set(s, ident, &m);
		return;
	}
	switch (kind) {
	case PIFS_KIND_CHK:
		if (m.type == PIFS_MSG_CHUNK_PUT && m.u.CHUNK_PUT.total)
			hand_piece(s, ident, body, pay, &m);
		else
			hand_on(s, s->chunk, ident, body, pay, reqid);
		break;
	case PIFS_KIND_MUT:
	case PIFS_KIND_QRY:
	case PIFS_KIND_ADM:
		hand_on(s, s->meta, ident, body, pay, reqid);
		break;
	default:
		reply_status(s, ident, reqid, -EOPNOTSUPP,
			     "%s is a reply, not a request; node %u answers requests only",
			     pifs_proto_name(m.type), self_id(s));
		break;
	}
}

/* Take requests off the ROUTER while the inproc queues have room. */
static void take_requests(struct pifs_server *s, bool draining)
{
	int n;

	for (n = 0; n < BURST && (draining || has_room(s)); n++) {
		zmq_msg_t part[3];
		int parts = 1, i;
		bool more;

		zmq_msg_init(&part[0]);
		if (zmq_msg_recv(&part[0], s->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part[0]);
			return;
		}
		/* Parts past the third are counted (to refuse the request) and
		 * dropped. */
		for (more = zmq_msg_more(&part[0]); more; parts++) {
			zmq_msg_t junk, *m = parts < 3 ? &part[parts] : &junk;

			zmq_msg_init(m);
			if (zmq_msg_recv(m, s->router, 0) < 0) {
				zmq_msg_close(m);
				break;
			}
			more = zmq_msg_more(m);
			if (m == &junk)
				zmq_msg_close(&junk);
		}
		/* An identity alone is no request: nothing to answer. */
		if (parts >= 2)
			route(s, &part[0], &part[1], parts >= 3 ? &part[2] : NULL, parts, draining);
		for (i = 0; i < parts && i < 3; i++)
			zmq_msg_close(&part[i]);
	}
}

/* Move the replies waiting on @from to the ROUTER, identity first. */
static void relay_replies(struct pifs_server *s, void *from)
{
	int n;

	for (n = 0; n < BURST; n++) {
		zmq_msg_t part;
		int more;

		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, from, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part);
			return;
		}
		for (;;) {
			more = zmq_msg_more(&part);
			/* A ROUTER drops what it cannot route (a client that
			 * left) instead of failing or blocking. */
			zmq_msg_send(&part, s->router, more ? ZMQ_SNDMORE : 0);
			zmq_msg_close(&part);
			if (!more)
				break;
			zmq_msg_init(&part);
			if (zmq_msg_recv(&part, from, 0) < 0) {
				zmq_msg_close(&part);
				break;
			}
		}
		if (s->inflight)
			s->inflight--;
	}
}

static const char *signame(uint32_t signo)
{
	const char *name = sigabbrev_np((int)signo);

	return name ? name : "?";
}

int pifs_server_run(struct pifs_server *s, int sigfd)
{
	struct pifsd *d = s->d;
	struct signalfd_siginfo si;
	bool draining = false;
	int64_t deadline = 0;
	int rc, n;

	for (;;) {
		bool open;
		zmq_pollitem_t items[5 + PIFS_WORKERS];
		long timeout;
		unsigned i;

		if (draining && ((s->inflight == 0 && !atomic_load(&d->heartbeat_running)) ||
				 pifs_now_ms() >= deadline))
			break;
		open = draining || has_room(s);
		items[0] = (zmq_pollitem_t){NULL, sigfd, ZMQ_POLLIN, 0};
		items[1] = (zmq_pollitem_t){s->router, 0, open ? ZMQ_POLLIN : 0, 0};
		items[2] = (zmq_pollitem_t){s->chunk, 0, ZMQ_POLLIN, 0};
		items[3] = (zmq_pollitem_t){s->meta, 0, ZMQ_POLLIN, 0};
		items[4] = (zmq_pollitem_t){pifs_guard_socket(s->guard), 0, ZMQ_POLLIN, 0};
		n = 5;
		for (i = 0; i < PIFS_WORKERS; i++)
			items[n + (int)i] = (zmq_pollitem_t){s->piece[i], 0, ZMQ_POLLIN, 0};
		timeout = draining || !open ? RECHECK_MS : -1;
		rc = zmq_poll(items, n + PIFS_WORKERS, timeout);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return -errno;
		if (items[0].revents & ZMQ_POLLIN) {
			if (read(sigfd, &si, sizeof(si)) != sizeof(si))
				si.ssi_signo = 0;
			if (si.ssi_signo == SIGHUP) {
				pifs_info("node %u: SIGHUP: reading the allow-list again",
					  self_id(s));
				pifs_auth_reload(d->auth);
				continue;
			}
			if (draining) {
				pifs_warn("node %u: SIG%s again: stopping now, %" PRIu64
					  " requests "
					  "unanswered",
					  self_id(s), signame(si.ssi_signo), s->inflight);
				break;
			}
			pifs_info("node %u: SIG%s: finishing %" PRIu64 " requests in flight, then "
				  "stopping",
				  self_id(s), signame(si.ssi_signo), s->inflight);
			draining = true;
			deadline = pifs_now_ms() + d->conf->timeout_ms + 1000;
			atomic_store(&d->heartbeat_stop, true);
			pifs_server_publish(s, PIFS_CTL_HEARTBEAT);
			/* Their calls to other nodes end while requests drain. */
			pifs_heal_stop(d->heal);
			pifs_scrub_stop(d->scrub);
			pifs_gc_stop(d->gc);
		}
		if (items[4].revents & ZMQ_POLLIN)
			pifs_guard_take(s->guard);
		if (items[2].revents & ZMQ_POLLIN)
			relay_replies(s, s->chunk);
		if (items[3].revents & ZMQ_POLLIN)
			relay_replies(s, s->meta);
		for (i = 0; i < PIFS_WORKERS; i++)
			if (items[n + (int)i].revents & ZMQ_POLLIN)
				relay_replies(s, s->piece[i]);
		if (items[1].revents & ZMQ_POLLIN)
			take_requests(s, draining);
	}
	if (s->inflight)
		pifs_warn("node %u: stopping with %" PRIu64 " requests unanswered; their senders "
			  "will time out and retry elsewhere",
			  self_id(s), s->inflight);
	return 0;
}
