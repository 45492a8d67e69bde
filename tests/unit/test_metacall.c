/* test_metacall.c - a call finds the metadata leader: it follows redirects,
 * passes over silent voters, waits out elections, and resends a mutation
 * under the same session. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "metacall.h"
#include "rpc.h"

#define MAX_VOTERS 4

/* How a fake voter answers. */
enum act {
	LEAD,	  /* answers: R_ATTR with the ino of a GETATTR, or LOOKUP -> -ENOENT */
	REDIRECT, /* R_LEADER naming voter @to */
	SILENT,	  /* never answers */
	ELECTING, /* R_LEADER leader 0 for the first @elections requests to
		   * any voter, then as REDIRECT */
};

struct fake {
	uint32_t id;
	void *sock; /* ROUTER on 127.0.0.1, an ephemeral port */
	char addr[64];
	bool in_conf;
	enum act act;
	int to;		      /* index of the voter a redirect names */
	uint32_t as;	      /* the node id a redirect names; 0: that voter's own */
	int requests;	      /* requests received */
	struct pifs_msg last; /* the last request's envelope, fields not kept */
};

static struct {
	void *zctx;
	pthread_t thread;
	pthread_mutex_t mu;
	struct fake v[MAX_VOTERS];
	int n;
	int elections; /* ELECTING: leader-0 answers still to give, all voters */
	char dir[64], path[96];
	struct pifs_conf conf;
	/* Freed by the teardown, so that a failed assertion does not leave
	 * the context waiting for their sockets. */
	struct pifs_metacall *mc[2];
	int nmc;
	int blocker; /* a TCP socket bound to a port but not listening */
} fx;

static void answer(struct fake *f, const zmq_msg_t *ident, const struct pifs_msg *req)
{
	struct pifs_msg rep;
	const void *id = zmq_msg_data((zmq_msg_t *)ident);
	size_t ilen = zmq_msg_size((zmq_msg_t *)ident);
	enum act act;

	pthread_mutex_lock(&fx.mu);
	f->requests++;
	f->last = *req;
	act = f->act;
	if (act == ELECTING && fx.elections > 0)
		fx.elections--;
	else if (act == ELECTING)
		act = REDIRECT;
	pthread_mutex_unlock(&fx.mu);
	switch (act) {
	case LEAD:
		if (req->type == PIFS_MSG_LOOKUP) {
			pifs_rpc_status(f->sock, id, ilen, req, -ENOENT, "no such entry");
			return;
		}
		pifs_msg_init(&rep, PIFS_MSG_R_ATTR);
		rep.u.R_ATTR.attr.ino = req->type == PIFS_MSG_GETATTR ? req->u.GETATTR.ino : f->id;
		break;
	case REDIRECT:
		pifs_msg_init(&rep, PIFS_MSG_R_LEADER);
		rep.u.R_LEADER.leader = f->as ? f->as : fx.v[f->to].id;
		rep.u.R_LEADER.addr = pifs_str_of(fx.v[f->to].addr);
		rep.u.R_LEADER.term = 3;
		break;
	case ELECTING:
		pifs_msg_init(&rep, PIFS_MSG_R_LEADER);
		rep.u.R_LEADER.term = 2;
		break;
	default:
		return;
	}
	rep.reqid = req->reqid;
	rep.epoch = 9;
	pifs_rpc_sendto(f->sock, id, ilen, &rep, NULL, 0, 0);
}

/* Serve every fake voter until the context is shut down. */
static void *serve(void *arg)
{
	zmq_pollitem_t items[MAX_VOTERS];

	(void)arg;
	for (int i = 0; i < fx.n; i++)
		items[i] = (zmq_pollitem_t){fx.v[i].sock, 0, ZMQ_POLLIN, 0};
	for (;;) {
		if (zmq_poll(items, fx.n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL; /* ETERM: the test is over */
		}
		for (int i = 0; i < fx.n; i++) {
			zmq_msg_t ident, body;
			struct pifs_msg req;

			if (!(items[i].revents & ZMQ_POLLIN))
				continue;
			zmq_msg_init(&ident);
			zmq_msg_init(&body);
			if (zmq_msg_recv(&ident, fx.v[i].sock, 0) >= 0 &&
			    zmq_msg_recv(&body, fx.v[i].sock, 0) >= 0 &&
			    pifs_proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req) == 0)
				answer(&fx.v[i], &ident, &req);
			zmq_msg_close(&body);
			zmq_msg_close(&ident);
		}
	}
}

static void setup(void)
{
	memset(&fx, 0, sizeof(fx));
	pthread_mutex_init(&fx.mu, NULL);
	fx.zctx = zmq_ctx_new();
	cr_assert_not_null(fx.zctx);
	strcpy(fx.dir, "/tmp/pifs-test-metacall-XXXXXX");
	cr_assert_not_null(mkdtemp(fx.dir));
	snprintf(fx.path, sizeof(fx.path), "%s/pifs.conf", fx.dir);
	pifs_conf_init(&fx.conf);
}

static void teardown(void)
{
	for (int i = 0; i < fx.nmc; i++)
		pifs_metacall_free(fx.mc[i]);
	if (fx.blocker > 0)
		close(fx.blocker);
	if (fx.thread) {
		zmq_ctx_shutdown(fx.zctx);
		pthread_join(fx.thread, NULL);
	}
	for (int i = 0; i < fx.n; i++)
		zmq_close(fx.v[i].sock);
	zmq_ctx_term(fx.zctx);
	pifs_conf_fini(&fx.conf);
	unlink(fx.path);
	rmdir(fx.dir);
}

TestSuite(metacall, .init = setup, .fini = teardown, .timeout = 30);

/* A fake voter with node id @id acting as @act; @in_conf says whether the
 * config names it. Returns its index. */
static int voter(uint32_t id, enum act act, int to, bool in_conf)
{
	struct fake *f = &fx.v[fx.n];
	char ep[64];
	size_t len = sizeof(ep);

	f->id = id;
	f->act = act;
	f->to = to;
	f->in_conf = in_conf;
	f->sock = zmq_socket(fx.zctx, ZMQ_ROUTER);
	cr_assert_not_null(f->sock);
	cr_assert_eq(pifs_rpc_sockopts(f->sock), 0);
	cr_assert_eq(zmq_bind(f->sock, "tcp://127.0.0.1:*"), 0);
	cr_assert_eq(zmq_getsockopt(f->sock, ZMQ_LAST_ENDPOINT, ep, &len), 0);
	cr_assert_eq(strncmp(ep, "tcp://", 6), 0);
	snprintf(f->addr, sizeof(f->addr), "%s", ep + 6);
	return fx.n++;
}

/* Write the config naming the fake voters (and @extra, a node "host:port"
 * that no voter serves, when not NULL), start serving, and load it. */
static void start(const char *extra)
{
	char err[512];
	FILE *c = fopen(fx.path, "w");

	cr_assert_not_null(c);
	fprintf(c, "[cluster]\nreplicas = 1\n");
	if (extra)
		fprintf(c, "[node 9]\naddress = %s\ndata = %s\nmeta = yes\n", extra, fx.dir);
	for (int i = 0; i < fx.n; i++)
		if (fx.v[i].in_conf)
			fprintf(c, "[node %u]\naddress = %s\ndata = %s\nmeta = yes\n", fx.v[i].id,
				fx.v[i].addr, fx.dir);
	cr_assert_eq(fclose(c), 0);
	cr_assert_eq(pifs_conf_load(&fx.conf, fx.path, err, sizeof(err)), 0, "%s", err);
	if (fx.n)
		cr_assert_eq(pthread_create(&fx.thread, NULL, serve, NULL), 0);
}

static struct pifs_metacall *metacall(int timeout_ms, int try_ms)
{
	struct pifs_metacall_opts o = {.timeout_ms = timeout_ms, .try_ms = try_ms};
	struct pifs_metacall *mc;

	cr_assert_lt(fx.nmc, 2);
	cr_assert_eq(pifs_metacall_new(fx.zctx, NULL, &fx.conf, &o, &mc), 0);
	fx.mc[fx.nmc++] = mc;
	return mc;
}

static int requests(int i)
{
	int n;

	pthread_mutex_lock(&fx.mu);
	n = fx.v[i].requests;
	pthread_mutex_unlock(&fx.mu);
	return n;
}

static struct pifs_msg last(int i)
{
	struct pifs_msg m;

	pthread_mutex_lock(&fx.mu);
	m = fx.v[i].last;
	pthread_mutex_unlock(&fx.mu);
	return m;
}

static int getattr(struct pifs_metacall *mc, uint64_t ino, struct pifs_msg *rep)
{
	struct pifs_msg req;

	pifs_msg_init(&req, PIFS_MSG_GETATTR);
	req.u.GETATTR.ino = ino;
	return pifs_metacall(mc, &req, rep);
}

static int mknod(struct pifs_metacall *mc, struct pifs_msg *rep)
{
	struct pifs_msg req;

	pifs_msg_init(&req, PIFS_MSG_MKNOD);
	req.u.MKNOD.parent = 1;
	req.u.MKNOD.name = pifs_str_of("f");
	return pifs_metacall(mc, &req, rep);
}

Test(metacall, the_leader_answers_directly)
{
	int a = voter(1, LEAD, 0, true), b = voter(2, SILENT, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep;

	start(NULL);
	mc = metacall(2000, 500);
	cr_assert_eq(pifs_metacall_leader(mc), 0);
	cr_assert_eq(getattr(mc, 42, &rep), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 42);
	cr_assert_eq(pifs_metacall_leader(mc), 1);
	cr_assert_eq(requests(a), 1);
	cr_assert_eq(requests(b), 0);
}

Test(metacall, a_follower_sends_it_to_the_leader)
{
	/* Node 1, written first, is asked first; it names node 2. */
	int a = voter(1, REDIRECT, 1, true), b = voter(2, LEAD, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	char want[96];

	start(NULL);
	mc = metacall(2000, 500);
	cr_assert_eq(getattr(mc, 7, &rep), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 7);
	cr_assert_eq(pifs_metacall_leader(mc), 2);
	snprintf(want, sizeof(want), "%s (node 2)", fx.v[b].addr);
	cr_assert_str_eq(pifs_metacall_name(mc), want);
	cr_assert_eq(requests(a), 1);
	/* The leader is asked first from now on. */
	cr_assert_eq(getattr(mc, 8, &rep), 0);
	cr_assert_eq(requests(a), 1);
	cr_assert_eq(requests(b), 2);
}

Test(metacall, a_voter_that_moved_is_asked_at_its_new_address)
{
	/* Node 1 is at A in the config; the map has moved it to B, and what
	 * answers at A (stale) says so. */
	int a = voter(1, REDIRECT, 1, true), b = voter(5, LEAD, 0, false);
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	char want[96];

	fx.v[a].as = 1;
	start(NULL);
	mc = metacall(2000, 500);
	cr_assert_eq(getattr(mc, 3, &rep), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 3);
	snprintf(want, sizeof(want), "%s (node 1)", fx.v[b].addr);
	cr_assert_str_eq(pifs_metacall_name(mc), want);
	cr_assert_null(strstr(pifs_metacall_voters(mc), fx.v[a].addr), "%s",
		       pifs_metacall_voters(mc));
	cr_assert_eq(requests(a), 1);
}

Test(metacall, a_silent_leader_is_passed_over)
{
	int a = voter(1, SILENT, 0, true), b = voter(2, LEAD, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	int64_t t0;

	start(NULL);
	mc = metacall(5000, 300);
	t0 = pifs_now_ms();
	cr_assert_eq(getattr(mc, 5, &rep), 0);
	cr_assert_lt(pifs_now_ms() - t0, 2000);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 5);
	cr_assert_eq(requests(a), 1);
	cr_assert_eq(requests(b), 1);
	cr_assert_eq(pifs_metacall_leader(mc), 2);
}

Test(metacall, an_election_is_waited_out_and_a_new_voter_learnt)
{
	int c = voter(3, LEAD, 0, false);
	int a = voter(1, ELECTING, c, true), b = voter(2, ELECTING, c, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	int64_t t0;

	fx.elections = 3;
	start(NULL);
	mc = metacall(5000, 500);
	t0 = pifs_now_ms();
	cr_assert_eq(getattr(mc, 11, &rep), 0);
	/* Three answers of "no leader", each followed by a pause of 50 ms. */
	cr_assert_geq(pifs_now_ms() - t0, 150);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 11);
	cr_assert_eq(pifs_metacall_leader(mc), 3);
	cr_assert_eq(requests(a) + requests(b), 4);
	cr_assert_eq(requests(c), 1);
	/* Node 3 is not in the config (added later with pifs-admin meta
	 * add): it was learnt from the redirect, and messages name it. */
	cr_assert_not_null(strstr(pifs_metacall_voters(mc), fx.v[c].addr), "%s",
			   pifs_metacall_voters(mc));
}

Test(metacall, all_silent_times_out_in_time)
{
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	int64_t t0, took;

	voter(1, SILENT, 0, true);
	voter(2, SILENT, 0, true);
	start(NULL);
	mc = metacall(1000, 300);
	t0 = pifs_now_ms();
	cr_assert_eq(getattr(mc, 1, &rep), -ETIMEDOUT);
	took = pifs_now_ms() - t0;
	cr_assert_geq(took, 950);
	cr_assert_lt(took, 1500);
	cr_assert_eq(rep.type, PIFS_MSG_NONE);
	cr_assert_eq(pifs_metacall_leader(mc), 0);
}

Test(metacall, no_voter_reachable_is_unreachable)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t slen = sizeof(sin);
	struct pifs_metacall *mc;
	struct pifs_msg rep;
	char addr[64];
	int64_t t0;

	/* A port held by a socket that does not listen: connections to it are
	 * refused, and no other test can take it meanwhile. */
	fx.blocker = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fx.blocker, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fx.blocker, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fx.blocker, (struct sockaddr *)&sin, &slen), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	start(addr);
	mc = metacall(600, 200);
	t0 = pifs_now_ms();
	cr_assert_eq(getattr(mc, 1, &rep), -EHOSTUNREACH);
	cr_assert_lt(pifs_now_ms() - t0, 1100);
	cr_assert_not_null(strstr(pifs_metacall_name(mc), "(node 9)"));
}

Test(metacall, a_redirect_loop_is_paced_and_times_out)
{
	int a = voter(1, REDIRECT, 1, true), b = voter(2, REDIRECT, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep;

	start(NULL);
	mc = metacall(600, 300);
	cr_assert_eq(getattr(mc, 1, &rep), -ETIMEDOUT);
	cr_assert_neq(rep.type, PIFS_MSG_R_LEADER);
	/* Paced at 50 ms once the redirects go round: not thousands. */
	cr_assert_lt(requests(a) + requests(b), 40, "%d requests", requests(a) + requests(b));
}

Test(metacall, an_error_status_is_returned_with_its_detail)
{
	struct pifs_metacall *mc;
	struct pifs_msg req, rep;

	voter(1, LEAD, 0, true);
	start(NULL);
	mc = metacall(2000, 500);
	pifs_msg_init(&req, PIFS_MSG_LOOKUP);
	req.u.LOOKUP.name = pifs_str_of("missing");
	cr_assert_eq(pifs_metacall(mc, &req, &rep), -ENOENT);
	cr_assert_eq(rep.type, PIFS_MSG_R_STATUS);
	cr_assert(pifs_str_eq(rep.u.R_STATUS.detail, "no such entry"));
}

Test(metacall, a_resent_mutation_keeps_its_session)
{
	int a = voter(1, SILENT, 0, true), b = voter(2, LEAD, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg rep, sa, sb;

	start(NULL);
	mc = metacall(5000, 300);
	cr_assert_eq(mknod(mc, &rep), 0);
	sa = last(a);
	sb = last(b);
	cr_assert(sa.flags & PIFS_MSG_ONCE);
	cr_assert(sb.flags & PIFS_MSG_ONCE);
	cr_assert_neq(sb.once.client, 0);
	cr_assert_eq(sa.once.client, sb.once.client);
	cr_assert_eq(sa.once.seq, sb.once.seq);
	cr_assert_eq(sb.once.seq, 1);
	cr_assert_eq(sb.once.acked, sb.once.seq);
	cr_assert_neq(sa.reqid, 0);

	cr_assert_eq(mknod(mc, &rep), 0);
	sb = last(b);
	cr_assert_eq(sb.once.client, sa.once.client);
	cr_assert_eq(sb.once.seq, 2);
	cr_assert_eq(sb.once.acked, 2);
	cr_assert_eq(requests(a), 1);
}

Test(metacall, a_query_carries_no_session)
{
	int a = voter(1, LEAD, 0, true);
	struct pifs_metacall *mc;
	struct pifs_msg req, rep, got;

	start(NULL);
	mc = metacall(2000, 500);
	cr_assert_eq(mknod(mc, &rep), 0);
	pifs_msg_init(&req, PIFS_MSG_GETATTR);
	/* Even a request struct reused from a mutation's. */
	req.flags = PIFS_MSG_ONCE;
	req.once.client = 5;
	cr_assert_eq(pifs_metacall(mc, &req, &rep), 0);
	got = last(a);
	cr_assert_eq(got.type, PIFS_MSG_GETATTR);
	cr_assert_eq(got.flags & PIFS_MSG_ONCE, 0);
	cr_assert_eq(got.once.client, 0);
}

Test(metacall, two_metacalls_have_two_clients)
{
	int a = voter(1, LEAD, 0, true);
	struct pifs_metacall *m1, *m2;
	struct pifs_msg rep;
	uint64_t c1;

	start(NULL);
	m1 = metacall(2000, 500);
	m2 = metacall(2000, 500);
	cr_assert_eq(mknod(m1, &rep), 0);
	c1 = last(a).once.client;
	cr_assert_eq(mknod(m2, &rep), 0);
	cr_assert_neq(last(a).once.client, c1);
	cr_assert_eq(last(a).once.seq, 1);
}

Test(metacall, a_config_without_a_voter_is_refused)
{
	struct pifs_conf_node node = {.id = 1, .addr = "127.0.0.1:7070", .meta = false};
	struct pifs_conf c;
	struct pifs_metacall *mc = (void *)1;

	pifs_conf_init(&c);
	c.nodes = &node;
	c.n_nodes = 1;
	cr_assert_eq(pifs_metacall_new(fx.zctx, NULL, &c, NULL, &mc), -EINVAL);
	cr_assert_null(mc);
	pifs_metacall_free(NULL);
}
