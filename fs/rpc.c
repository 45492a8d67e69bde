/* rpc.c - requests and replies over ZeroMQ DEALER/ROUTER sockets. */
#include "rpc.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "auth.h"

/* Queues stay short: a full one pushes back on the sender instead of holding
 * gigabytes of chunks for a slow peer (PERFORMANCE.md, "HWM counts messages"). */
#define HWM 64
/* A connection whose handshake has not finished by then is dropped, so that
 * a peer that connects and says nothing holds a descriptor no longer. */
#define HANDSHAKE_MS 5000

struct pifs_rpc {
	void *zctx;
	struct pifs_auth *auth; /* borrowed; NULL: plain TCP */
	uint32_t node;		/* whose key the other end must prove */
	void *sock;
	char endpoint[256];
	uint64_t next_id;
	uint64_t epoch;
	struct pifs_buf enc;	/* the encoded request, reused */
	zmq_msg_t rmsg;		/* the last reply, which @rep borrows */
	zmq_msg_t rpay;		/* and its payload */
	bool have_rmsg, have_rpay;
};

int64_t pifs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pifs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int pifs_rpc_sockopts(void *sock)
{
	int64_t max = PIFS_RPC_MAX_MSG;
	int zero = 0, hwm = HWM, ivl = 100, ivl_max = 1000, handshake = HANDSHAKE_MS;

	if (zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_HANDSHAKE_IVL, &handshake, sizeof(handshake)) < 0)
		return -errno;
	return 0;
}

static void release_reply(struct pifs_rpc *r)
{
	if (r->have_rmsg)
		zmq_msg_close(&r->rmsg);
	if (r->have_rpay)
		zmq_msg_close(&r->rpay);
	r->have_rmsg = r->have_rpay = false;
}

void pifs_rpc_release(struct pifs_rpc *r)
{
	release_reply(r);
}

static int open_socket(struct pifs_rpc *r)
{
	int one = 1, rc;

	r->sock = zmq_socket(r->zctx, ZMQ_DEALER);
	if (!r->sock)
		return -errno;
	rc = pifs_rpc_sockopts(r->sock);
	if (rc == 0 && zmq_setsockopt(r->sock, ZMQ_IMMEDIATE, &one, sizeof(one)) < 0)
		rc = -errno;
	if (rc == 0)
		rc = pifs_auth_client(r->auth, r->sock, r->node);
	if (rc == 0 && zmq_connect(r->sock, r->endpoint) < 0)
		rc = -errno;
	if (rc < 0) {
		zmq_close(r->sock);
		r->sock = NULL;
	}
	return rc;
}

/* Forget everything queued on the socket: a request that timed out must not
 * reach a peer that comes back later, nor its reply be taken for another. */
static int reopen_socket(struct pifs_rpc *r)
{
	release_reply(r);
	if (r->sock)
		zmq_close(r->sock);
	r->sock = NULL;
	return open_socket(r);
}

int pifs_rpc_new(void *zctx, struct pifs_auth *auth, uint32_t node, const char *endpoint,
		 struct pifs_rpc **out)
{
	struct pifs_rpc *r;
	int rc;

	if (strlen(endpoint) >= sizeof(r->endpoint))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->zctx = zctx;
	r->auth = auth;
	r->node = node;
	strcpy(r->endpoint, endpoint);
	r->next_id = 1;
	pifs_buf_init(&r->enc);
	rc = open_socket(r);
	if (rc < 0) {
		pifs_buf_fini(&r->enc);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void pifs_rpc_free(struct pifs_rpc *r)
{
	if (!r)
		return;
	release_reply(r);
	if (r->sock)
		zmq_close(r->sock);
	pifs_buf_fini(&r->enc);
	free(r);
}

const char *pifs_rpc_endpoint(const struct pifs_rpc *r)
{
	return r->endpoint;
}

void pifs_rpc_set_epoch(struct pifs_rpc *r, uint64_t epoch)
{
	r->epoch = epoch;
}

static void free_owned(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* Wait until @sock can take a message, for at most @timeout_ms. */
static int wait_writable(void *sock, int timeout_ms)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLOUT, 0};
	int64_t deadline = pifs_now_ms() + timeout_ms;

	for (;;) {
		int64_t left = deadline - pifs_now_ms();
		int n = zmq_poll(&item, 1, left > 0 ? (long)left : 0);

		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (left <= 0)
			return -EHOSTUNREACH;
	}
}

/* Send the encoded message in @enc and, if @pay is not NULL, the payload
 * message (which this function closes in all cases). */
static int send_frames(void *sock, const void *ident, size_t ilen, const struct pifs_buf *enc,
		       zmq_msg_t *pay, int flags)
{
	int more = pay ? ZMQ_SNDMORE : 0;
	int rc = 0;

	if (ident && zmq_send(sock, ident, ilen, ZMQ_SNDMORE | flags) < 0)
		rc = -errno;
	if (rc == 0 && zmq_send(sock, enc->p, enc->len, more | flags) < 0)
		rc = -errno;
	if (rc == 0 && pay && zmq_msg_send(pay, sock, flags) < 0)
		rc = -errno;
	else if (pay && rc == 0)
		return 0;	/* zmq took the payload */
	if (pay)
		zmq_msg_close(pay);
	return rc;
}

static int rpc_send(struct pifs_rpc *r, struct pifs_msg *req, zmq_msg_t *pay, int timeout_ms)
{
	int rc;

	if (!r->sock && (rc = open_socket(r)) < 0)
		goto out_close;
	req->reqid = r->next_id++;
	req->epoch = r->epoch;
	pifs_buf_reset(&r->enc);
	rc = pifs_proto_encode(req, &r->enc);
	if (rc < 0)
		goto out_close;
	rc = wait_writable(r->sock, timeout_ms);
	if (rc < 0)
		goto out_close;
	return send_frames(r->sock, NULL, 0, &r->enc, pay, ZMQ_DONTWAIT);
out_close:
	if (pay)
		zmq_msg_close(pay);
	return rc;
}

int pifs_rpc_send(struct pifs_rpc *r, struct pifs_msg *req, const void *payload, size_t plen,
		  int timeout_ms)
{
	zmq_msg_t pay;

	if (!payload)
		return rpc_send(r, req, NULL, timeout_ms);
	if (zmq_msg_init_size(&pay, plen) < 0)
		return -errno;
	memcpy(zmq_msg_data(&pay), payload, plen);
	return rpc_send(r, req, &pay, timeout_ms);
}

int pifs_rpc_send_owned(struct pifs_rpc *r, struct pifs_msg *req, void *data, size_t len,
			int timeout_ms)
{
	zmq_msg_t pay;

	if (zmq_msg_init_data(&pay, data, len, free_owned, NULL) < 0) {
		free(data);
		return -errno;
	}
	return rpc_send(r, req, &pay, timeout_ms);
}

/* A frame shared by the pieces in flight; freed with the last of them. */
struct shared {
	void *data;
	atomic_uint refs;
};

static void free_shared(void *data, void *hint)
{
	struct shared *sh = hint;

	(void)data;
	if (atomic_fetch_sub(&sh->refs, 1) == 1) {
		free(sh->data);
		free(sh);
	}
}

int pifs_rpc_send_pieces(struct pifs_rpc *r, struct pifs_msg *req, void *data, size_t len,
			 size_t piece, int timeout_ms)
{
	struct shared *sh;
	zmq_msg_t pay;
	size_t off, n;
	int rc = 0;

	if (len <= piece || len > UINT32_MAX || !piece) {
		req->u.CHUNK_PUT.offset = 0;
		req->u.CHUNK_PUT.total = 0;
		return pifs_rpc_send_owned(r, req, data, len, timeout_ms);
	}
	sh = malloc(sizeof(*sh));
	if (!sh) {
		free(data);
		return -ENOMEM;
	}
	sh->data = data;
	/* Our own reference, dropped at the end, keeps @data alive while the
	 * pieces are handed over. */
	atomic_init(&sh->refs, 1);
	if (!r->sock && (rc = open_socket(r)) < 0)
		goto out_put;
	req->reqid = r->next_id++;
	req->epoch = r->epoch;
	req->u.CHUNK_PUT.total = (uint32_t)len;
	for (off = 0; off < len && rc == 0; off += n) {
		n = len - off < piece ? len - off : piece;
		req->u.CHUNK_PUT.offset = (uint32_t)off;
		pifs_buf_reset(&r->enc);
		rc = pifs_proto_encode(req, &r->enc);
		if (rc == 0)
			rc = wait_writable(r->sock, timeout_ms);
		if (rc < 0)
			break;
		atomic_fetch_add(&sh->refs, 1);
		if (zmq_msg_init_data(&pay, (uint8_t *)data + off, n, free_shared, sh) < 0) {
			rc = -errno;
			atomic_fetch_sub(&sh->refs, 1);
			break;
		}
		rc = send_frames(r->sock, NULL, 0, &r->enc, &pay, ZMQ_DONTWAIT);
	}
out_put:
	free_shared(NULL, sh);
	return rc;
}

/* Read the rest of a multipart message that has more frames than we use. */
static void drain_more(void *sock)
{
	int more;
	size_t sz = sizeof(more);
	zmq_msg_t junk;

	for (;;) {
		if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) < 0 || !more)
			return;
		zmq_msg_init(&junk);
		if (zmq_msg_recv(&junk, sock, 0) < 0) {
			zmq_msg_close(&junk);
			return;
		}
		zmq_msg_close(&junk);
	}
}

/* Receive one whole reply (message and optional payload) into @r. */
static int recv_one(struct pifs_rpc *r)
{
	int more = 0;
	size_t sz = sizeof(more);

	release_reply(r);
	zmq_msg_init(&r->rmsg);
	r->have_rmsg = true;
	if (zmq_msg_recv(&r->rmsg, r->sock, ZMQ_DONTWAIT) < 0)
		return -errno;
	if (zmq_getsockopt(r->sock, ZMQ_RCVMORE, &more, &sz) < 0)
		return -errno;
	if (!more)
		return 0;
	zmq_msg_init(&r->rpay);
	r->have_rpay = true;
	if (zmq_msg_recv(&r->rpay, r->sock, 0) < 0)
		return -errno;
	if (zmq_getsockopt(r->sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
		drain_more(r->sock);
		return -EBADMSG;
	}
	return 0;
}

int pifs_rpc_recv(struct pifs_rpc *r, uint64_t reqid, struct pifs_msg *rep, const void **payload,
		  size_t *plen, int timeout_ms)
{
	int64_t deadline = pifs_now_ms() + timeout_ms;
	int rc;

	if (payload)
		*payload = NULL;
	if (plen)
		*plen = 0;
	if (!r->sock)
		return -ENOTCONN;
	for (;;) {
		zmq_pollitem_t item = {r->sock, 0, ZMQ_POLLIN, 0};
		int64_t left = deadline - pifs_now_ms();
		int n = zmq_poll(&item, 1, left > 0 ? (long)left : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0) {
			if (left > 0)
				continue;
			reopen_socket(r);
			return -ETIMEDOUT;
		}
		rc = recv_one(r);
		if (rc == -EAGAIN)
			continue;
		if (rc == -EBADMSG)
			continue;	/* a reply of a shape no request asked for */
		if (rc < 0)
			return rc;
		rc = pifs_proto_decode(zmq_msg_data(&r->rmsg), zmq_msg_size(&r->rmsg), rep);
		if (rc < 0)
			return rc;
		if (reqid && rep->reqid != reqid)
			continue;	/* late reply to a request we gave up on */
		if (payload && r->have_rpay)
			*payload = zmq_msg_data(&r->rpay);
		if (plen && r->have_rpay)
			*plen = zmq_msg_size(&r->rpay);
		if (rep->type == PIFS_MSG_R_STATUS && rep->u.R_STATUS.status < 0)
			return rep->u.R_STATUS.status;
		return 0;
	}
}

int pifs_rpc_call(struct pifs_rpc *r, struct pifs_msg *req, const void *payload, size_t plen,
		  struct pifs_msg *rep, const void **rpayload, size_t *rplen, int timeout_ms)
{
	int64_t start = pifs_now_ms();
	int rc = pifs_rpc_send(r, req, payload, plen, timeout_ms);
	int64_t left;

	if (rc < 0)
		return rc;
	left = timeout_ms - (pifs_now_ms() - start);
	return pifs_rpc_recv(r, req->reqid, rep, rpayload, rplen, left > 0 ? (int)left : 0);
}

int pifs_rpc_sendto(void *sock, const void *ident, size_t ilen, const struct pifs_msg *m,
		    void *payload, size_t plen, int owned)
{
	struct pifs_buf enc;
	zmq_msg_t pay;
	int rc;

	pifs_buf_init(&enc);
	if (payload) {
		if (owned)
			rc = zmq_msg_init_data(&pay, payload, plen, free_owned, NULL);
		else if ((rc = zmq_msg_init_size(&pay, plen)) == 0)
			memcpy(zmq_msg_data(&pay), payload, plen);
		if (rc < 0) {
			if (owned)
				free(payload);
			return -errno;
		}
	}
	rc = pifs_proto_encode(m, &enc);
	if (rc < 0) {
		if (payload)
			zmq_msg_close(&pay);
		goto out;
	}
	/* Blocking: a ROUTER never blocks (it drops for a peer that is gone),
	 * and an inproc DEALER that is full should hold its sender back. */
	rc = send_frames(sock, ident, ilen, &enc, payload ? &pay : NULL, 0);
out:
	pifs_buf_fini(&enc);
	return rc;
}

int pifs_rpc_status(void *sock, const void *ident, size_t ilen, const struct pifs_msg *req,
		    int status, const char *detail)
{
	struct pifs_msg rep;

	pifs_msg_init(&rep, PIFS_MSG_R_STATUS);
	rep.reqid = req->reqid;
	rep.epoch = req->epoch;
	rep.u.R_STATUS.status = status;
	if (detail)
		rep.u.R_STATUS.detail = pifs_str_of(detail);
	return pifs_rpc_sendto(sock, ident, ilen, &rep, NULL, 0, 0);
}
