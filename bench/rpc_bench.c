/* rpc_bench.c - pifs-bench-rpc: ZeroMQ request round trips through fs/rpc.h.
 *
 *   pifs-bench-rpc [SECONDS]
 *
 * A server thread binds a ROUTER on a kernel-chosen loopback port and answers
 * every request with R_STATUS 0, as a storage daemon answers a cheap request.
 * The client measures, for SECONDS (default 1) each: one small request at a
 * time (the latency of a synchronous round trip), 8 small requests in flight
 * (what pipelining buys), and 1 MiB CHUNK_PUT payloads with 4 in flight (the
 * copy and framing cost of bulk data); each case twice, on plain TCP and
 * with CURVE (keys made for the run in a temporary directory, the server
 * checking them with its ZAP handler as a node does: the "_curve" cases).
 * Prints CSV: case,in_flight,payload_bytes,requests_per_s,us_per_request,
 * mb_per_s. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "keys.h"
#include "proto.h"
#include "rpc.h"

#define TIMEOUT_MS 5000
#define MAX_REQUESTS 10000000L

struct server {
	void *zctx;
	struct pifs_auth *auth; /* NULL: plain */
	char endpoint[256];
	atomic_int stop;
	int ready; /* 1 bound, -1 failed; under @lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void server_ready(struct server *s, int state)
{
	pthread_mutex_lock(&s->lock);
	s->ready = state;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Read one request (routing frame, message frame, optional payload) and
 * answer R_STATUS 0. */
static void serve_one(void *sock)
{
	zmq_msg_t ident, body, pay;
	struct pifs_msg req;
	int more;
	size_t sz = sizeof(more);

	zmq_msg_init(&ident);
	zmq_msg_init(&body);
	zmq_msg_init(&pay);
	if (zmq_msg_recv(&ident, sock, 0) < 0 || zmq_msg_recv(&body, sock, 0) < 0)
		goto out;
	if (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more &&
	    zmq_msg_recv(&pay, sock, 0) < 0)
		goto out;
	if (pifs_proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req) == 0)
		pifs_rpc_status(sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &req, 0, NULL);
out:
	zmq_msg_close(&pay);
	zmq_msg_close(&body);
	zmq_msg_close(&ident);
}

static void *server_main(void *arg)
{
	struct server *s = arg;
	size_t len = sizeof(s->endpoint);
	void *sock = zmq_socket(s->zctx, ZMQ_ROUTER);
	zmq_pollitem_t it;

	if (!sock || pifs_rpc_sockopts(sock) < 0 || pifs_auth_server(s->auth, sock) < 0 ||
	    zmq_bind(sock, "tcp://127.0.0.1:*") < 0 ||
	    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, s->endpoint, &len) < 0) {
		fprintf(stderr, "pifs-bench-rpc: cannot bind a loopback ROUTER socket: %s\n",
			zmq_strerror(zmq_errno()));
		if (sock)
			zmq_close(sock);
		server_ready(s, -1);
		return NULL;
	}
	server_ready(s, 1);
	it = (zmq_pollitem_t){ .socket = sock, .events = ZMQ_POLLIN };
	while (!atomic_load(&s->stop)) {
		if (zmq_poll(&it, 1, 100) > 0)
			serve_one(sock);
	}
	zmq_close(sock);
	return NULL;
}

static double now_s(void)
{
	return (double)pifs_now_ns() / 1e9;
}

/* Keep @window requests of @plen payload bytes in flight for @secs. */
static int run_case(struct pifs_rpc *r, const char *name, int window, size_t plen, double secs)
{
	void *payload = NULL;
	struct pifs_msg req, rep;
	long sent = 0, done = 0;
	double t0, dt;
	int rc = 0;

	if (plen) {
		payload = calloc(1, plen);
		if (!payload) {
			fprintf(stderr, "pifs-bench-rpc: out of memory for a %zu-byte payload\n", plen);
			return 1;
		}
	}
	t0 = now_s();
	for (;;) {
		dt = now_s() - t0;
		while (sent - done < window && dt < secs && sent < MAX_REQUESTS) {
			pifs_msg_init(&req, plen ? PIFS_MSG_CHUNK_PUT : PIFS_MSG_CHUNK_GET);
			rc = pifs_rpc_send(r, &req, payload, plen, TIMEOUT_MS);
			if (rc < 0)
				goto out_err;
			sent++;
		}
		if (done == sent)
			break;
		rc = pifs_rpc_recv(r, 0, &rep, NULL, NULL, TIMEOUT_MS);
		if (rc < 0)
			goto out_err;
		done++;
	}
	dt = now_s() - t0;
	printf("%s,%d,%zu,%.0f,%.2f,%.1f\n", name, window, plen, (double)done / dt,
	       dt * 1e6 / (double)done, (double)done * (double)plen / dt / 1e6);
	free(payload);
	return 0;
out_err:
	fprintf(stderr, "pifs-bench-rpc: %s: request %ld failed: %s\n", name, sent, strerror(-rc));
	free(payload);
	return 1;
}

/* A key directory in @dir for node 1 and an admin: 0 or -errno. */
static int make_keys(const char *dir)
{
	const char *names[] = {"node-1", "admin"};
	const enum pifs_role roles[] = {PIFS_ROLE_NODE, PIFS_ROLE_ADMIN};
	struct pifs_allow l;
	char path[PATH_MAX];
	int rc = 0;

	pifs_allow_init(&l);
	l.generation = 1;
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct pifs_keypair kp;

		rc = pifs_keypair_make(&kp, names[i], roles[i]);
		if (rc == 0)
			rc = pifs_keypair_path(dir, names[i], path, sizeof(path));
		if (rc == 0)
			rc = pifs_keypair_save(&kp, path);
		if (rc == 0)
			rc = pifs_allow_add_pair(&l, &kp);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, PIFS_KEYS_ALLOWED);
	if (rc == 0)
		rc = pifs_allow_save(&l, path);
	pifs_allow_fini(&l);
	return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The three cases against a server with the keys of @server (NULL: plain),
 * asked with those of @client; the case names end in @suffix. */
static int run_all(struct server *s, struct pifs_auth *server, struct pifs_auth *client,
		   const char *suffix, double secs)
{
	struct pifs_rpc *r = NULL;
	char name[64];
	pthread_t th;
	int rc = 1, err;

	s->auth = server;
	s->ready = 0;
	atomic_store(&s->stop, 0);
	if (pthread_create(&th, NULL, server_main, s)) {
		fprintf(stderr, "pifs-bench-rpc: cannot start the server thread\n");
		return 1;
	}
	pthread_mutex_lock(&s->lock);
	while (!s->ready)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	if (s->ready < 0)
		goto out_join;
	err = pifs_rpc_new(s->zctx, client, 1, s->endpoint, &r);
	if (err < 0) {
		fprintf(stderr, "pifs-bench-rpc: cannot connect to %s: %s\n", s->endpoint,
			strerror(-err));
		goto out_join;
	}
	snprintf(name, sizeof(name), "small_sync%s", suffix);
	if (run_case(r, name, 1, 0, secs))
		goto out_rpc;
	snprintf(name, sizeof(name), "small_pipelined%s", suffix);
	if (run_case(r, name, 8, 0, secs))
		goto out_rpc;
	snprintf(name, sizeof(name), "put_1mib%s", suffix);
	if (run_case(r, name, 4, 1u << 20, secs))
		goto out_rpc;
	rc = 0;
out_rpc:
	pifs_rpc_free(r);
out_join:
	atomic_store(&s->stop, 1);
	pthread_join(th, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	struct server s = {.stop = 0};
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct pifs_auth *node = NULL, *admin = NULL;
	struct pifs_conf conf;
	char dir[] = "/tmp/pifs-bench-rpc-XXXXXX", err[1024];
	int rc = 1;

	if (argc > 2 || secs <= 0 || secs > 60) {
		fprintf(stderr, "usage: pifs-bench-rpc [SECONDS (<= 60)]\n");
		return 2;
	}
	pifs_conf_init(&conf);
	if (!mkdtemp(dir) || make_keys(dir) < 0) {
		fprintf(stderr, "pifs-bench-rpc: cannot make keys in %s\n", dir);
		return 1;
	}
	snprintf(conf.keys_dir, sizeof(conf.keys_dir), "%s", dir);
	if (pifs_auth_open(&conf, "node-1", &node, err, sizeof(err)) < 0 ||
	    pifs_auth_open(&conf, "admin", &admin, err, sizeof(err)) < 0) {
		fprintf(stderr, "pifs-bench-rpc: %s\n", err);
		goto out_keys;
	}
	s.zctx = zmq_ctx_new();
	if (!s.zctx) {
		fprintf(stderr, "pifs-bench-rpc: cannot make a ZeroMQ context: %s\n",
			zmq_strerror(zmq_errno()));
		goto out_keys;
	}
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cond, NULL);
	printf("case,in_flight,payload_bytes,requests_per_s,us_per_request,mb_per_s\n");
	if (pifs_auth_zap_start(node, s.zctx) == 0 && run_all(&s, NULL, NULL, "", secs) == 0 &&
	    run_all(&s, node, admin, "_curve", secs) == 0)
		rc = 0;
	pifs_auth_free(node);
	node = NULL;
	zmq_ctx_term(s.zctx);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.lock);
out_keys:
	pifs_auth_free(node);
	pifs_auth_free(admin);
	pifs_conf_fini(&conf);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return rc;
}
