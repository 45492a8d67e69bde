/* test_rpc.c - requests meet their replies, and only theirs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "rpc.h"

/* A ROUTER that answers like a tiny storage node: GETATTR -> R_ATTR with the
 * ino echoed, CHUNK_GET -> R_CHUNK with a payload, LOOKUP -> -ENOENT,
 * READLINK -> no answer at all (a node that hangs), STATFS -> first a reply
 * with a wrong request id (a late reply), then the right one. */
struct server {
	void *zctx;
	void *sock;
	pthread_t thread;
	char endpoint[64];
};

static void *serve(void *arg)
{
	struct server *s = arg;

	for (;;) {
		zmq_msg_t ident, body;
		struct pifs_msg req, rep;
		int more;
		size_t sz = sizeof(more);

		zmq_msg_init(&ident);
		if (zmq_msg_recv(&ident, s->sock, 0) < 0) {
			zmq_msg_close(&ident);
			return NULL;	/* the context is being torn down */
		}
		zmq_msg_init(&body);
		zmq_msg_recv(&body, s->sock, 0);
		zmq_getsockopt(s->sock, ZMQ_RCVMORE, &more, &sz);
		if (more) {
			zmq_msg_t pay;

			zmq_msg_init(&pay);
			zmq_msg_recv(&pay, s->sock, 0);
			zmq_msg_close(&pay);
		}
		if (pifs_proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req) < 0) {
			zmq_msg_close(&body);
			zmq_msg_close(&ident);
			continue;
		}
		pifs_msg_init(&rep, PIFS_MSG_R_ATTR);
		rep.reqid = req.reqid;
		rep.epoch = 77;
		switch (req.type) {
		case PIFS_MSG_GETATTR:
			rep.u.R_ATTR.attr.ino = req.u.GETATTR.ino;
			pifs_rpc_sendto(s->sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &rep,
					NULL, 0, 0);
			break;
		case PIFS_MSG_CHUNK_GET: {
			char *data = strdup("frame bytes");

			pifs_msg_init(&rep, PIFS_MSG_R_CHUNK);
			rep.reqid = req.reqid;
			pifs_rpc_sendto(s->sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &rep,
					data, strlen(data) + 1, 1);
			break;
		}
		case PIFS_MSG_LOOKUP:
			pifs_rpc_status(s->sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &req,
					-ENOENT, "no such entry");
			break;
		case PIFS_MSG_STATFS:
			rep.reqid = req.reqid + 1000;
			pifs_rpc_sendto(s->sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &rep,
					NULL, 0, 0);
			rep.reqid = req.reqid;
			rep.u.R_ATTR.attr.ino = 5;
			pifs_rpc_sendto(s->sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &rep,
					NULL, 0, 0);
			break;
		default:
			break;
		}
		zmq_msg_close(&body);
		zmq_msg_close(&ident);
	}
}

static struct server srv;

static void start_server(void)
{
	srv.zctx = zmq_ctx_new();
	srv.sock = zmq_socket(srv.zctx, ZMQ_ROUTER);
	cr_assert_eq(pifs_rpc_sockopts(srv.sock), 0);
	strcpy(srv.endpoint, "inproc://rpc-test");
	cr_assert_eq(zmq_bind(srv.sock, srv.endpoint), 0);
	pthread_create(&srv.thread, NULL, serve, &srv);
}

static void stop_server(void)
{
	zmq_ctx_shutdown(srv.zctx);
	pthread_join(srv.thread, NULL);
	zmq_close(srv.sock);
	zmq_ctx_term(srv.zctx);
}

TestSuite(rpc, .init = start_server, .fini = stop_server, .timeout = 20);

Test(rpc, a_call_gets_its_reply)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	for (uint64_t i = 1; i <= 50; i++) {
		pifs_msg_init(&req, PIFS_MSG_GETATTR);
		req.u.GETATTR.ino = i;
		cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 2000), 0);
		cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
		cr_assert_eq(rep.u.R_ATTR.attr.ino, i);
		cr_assert_eq(rep.epoch, 77);
	}
	pifs_rpc_free(r);
}

Test(rpc, many_requests_in_flight)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;
	uint64_t seen = 0;

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	for (uint64_t i = 1; i <= 16; i++) {
		pifs_msg_init(&req, PIFS_MSG_GETATTR);
		req.u.GETATTR.ino = i;
		cr_assert_eq(pifs_rpc_send(r, &req, NULL, 0, 2000), 0);
	}
	for (int i = 0; i < 16; i++) {
		cr_assert_eq(pifs_rpc_recv(r, 0, &rep, NULL, NULL, 2000), 0);
		seen |= 1ull << rep.u.R_ATTR.attr.ino;
	}
	cr_assert_eq(seen, 0x1fffeull);
	pifs_rpc_free(r);
}

Test(rpc, payloads_travel_both_ways)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;
	const void *pay;
	size_t plen;

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	pifs_msg_init(&req, PIFS_MSG_CHUNK_GET);
	cr_assert_eq(pifs_rpc_send_owned(r, &req, strdup("ignored"), 8, 2000), 0);
	cr_assert_eq(pifs_rpc_recv(r, req.reqid, &rep, &pay, &plen, 2000), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_CHUNK);
	cr_assert_eq(plen, strlen("frame bytes") + 1);
	cr_assert_str_eq(pay, "frame bytes");
	pifs_rpc_free(r);
}

Test(rpc, an_error_reply_is_its_errno)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	pifs_msg_init(&req, PIFS_MSG_LOOKUP);
	req.u.LOOKUP.name = pifs_str_of("missing");
	cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 2000), -ENOENT);
	cr_assert(pifs_str_eq(rep.u.R_STATUS.detail, "no such entry"));
	pifs_rpc_free(r);
}

Test(rpc, a_late_reply_is_not_taken_for_another)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	pifs_msg_init(&req, PIFS_MSG_STATFS);
	cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 2000), 0);
	cr_assert_eq(rep.reqid, req.reqid);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 5);
	pifs_rpc_free(r);
}

Test(rpc, a_silent_peer_times_out_and_the_rpc_recovers)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;
	int64_t t0 = pifs_now_ms();

	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, srv.endpoint, &r), 0);
	pifs_msg_init(&req, PIFS_MSG_READLINK);
	cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 200), -ETIMEDOUT);
	cr_assert_geq(pifs_now_ms() - t0, 190);
	pifs_msg_init(&req, PIFS_MSG_GETATTR);
	req.u.GETATTR.ino = 9;
	cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 2000), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 9);
	pifs_rpc_free(r);
}

Test(rpc, nobody_listening_is_unreachable)
{
	struct pifs_rpc *r;
	struct pifs_msg req, rep;

	int rc;

	/* A TCP port in the lead's test range that nothing binds. */
	cr_assert_eq(pifs_rpc_new(srv.zctx, NULL, 1, "tcp://127.0.0.1:17499", &r), 0);
	pifs_msg_init(&req, PIFS_MSG_GETATTR);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 100);
	pifs_rpc_free(r);
	cr_assert_eq(rc, -EHOSTUNREACH);
}
