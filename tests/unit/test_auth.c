/* test_auth.c - who may connect and what each key may ask: CURVE, the ZAP
 * handler, the allow-list as it changes, and the role table. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "keyring.h"
#include "rpc.h"

/* A ROUTER proving node-1's key that answers every request with R_ATTR:
 * attr.ino the role the allow-list gives its sender now, attr.uid 1 when
 * the role may send that request. */
static struct {
	char dir[64], keys[96];
	struct pifs_auth *node;
	void *zctx, *sock;
	pthread_t thread;
	char ep[64];
} s;

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		zmq_msg_t ident, body;
		struct pifs_msg req, rep;
		enum pifs_role r;
		char name[64];

		zmq_msg_init(&ident);
		if (zmq_msg_recv(&ident, s.sock, 0) < 0) {
			zmq_msg_close(&ident);
			return NULL;
		}
		zmq_msg_init(&body);
		zmq_msg_recv(&body, s.sock, 0);
		if (pifs_proto_decode(zmq_msg_data(&body), zmq_msg_size(&body), &req) == 0) {
			r = pifs_auth_peer(s.node, &body, name, sizeof(name));
			pifs_msg_init(&rep, PIFS_MSG_R_ATTR);
			rep.reqid = req.reqid;
			rep.u.R_ATTR.attr.ino = (uint64_t)r;
			rep.u.R_ATTR.attr.uid = pifs_auth_may(r, req.type);
			pifs_rpc_sendto(s.sock, zmq_msg_data(&ident), zmq_msg_size(&ident), &rep, NULL,
					0, 0);
		}
		zmq_msg_close(&body);
		zmq_msg_close(&ident);
	}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	size_t len;

	memset(&s, 0, sizeof(s));
	strcpy(s.dir, "/tmp/pifs-test-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(s.dir));
	snprintf(s.keys, sizeof(s.keys), "%s/keys", s.dir);
	keyring_make(s.keys, 3);
	s.node = keyring_auth(s.keys, "node-1");
	s.zctx = zmq_ctx_new();
	cr_assert_eq(pifs_auth_zap_start(s.node, s.zctx), 0);
	s.sock = zmq_socket(s.zctx, ZMQ_ROUTER);
	cr_assert_eq(pifs_rpc_sockopts(s.sock), 0);
	cr_assert_eq(pifs_auth_server(s.node, s.sock), 0);
	/* A port of the kernel's choosing: the tests of this file run two at a
	 * time. */
	cr_assert_eq(zmq_bind(s.sock, "tcp://127.0.0.1:*"), 0, "%s", zmq_strerror(errno));
	len = sizeof(s.ep);
	cr_assert_eq(zmq_getsockopt(s.sock, ZMQ_LAST_ENDPOINT, s.ep, &len), 0);
	cr_assert_eq(pthread_create(&s.thread, NULL, serve, NULL), 0);
}

static void teardown(void)
{
	zmq_ctx_shutdown(s.zctx);
	pthread_join(s.thread, NULL);
	zmq_close(s.sock);
	zmq_ctx_term(s.zctx);
	pifs_auth_free(s.node);
	nftw(s.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Ask the server @type as key @name; the reply's role and may in *@role
 * and *@may. Returns what the call returned. */
static int ask_as(struct pifs_auth *a, uint16_t type, uint64_t *role, uint64_t *may)
{
	struct pifs_msg req, rep;
	struct pifs_rpc *r;
	int rc;

	cr_assert_eq(pifs_rpc_new(s.zctx, a, 1, s.ep, &r), 0);
	pifs_msg_init(&req, type);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 1000);
	if (rc == 0) {
		cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
		*role = rep.u.R_ATTR.attr.ino;
		*may = rep.u.R_ATTR.attr.uid;
	}
	pifs_rpc_free(r);
	return rc;
}

/* The node's allow-list into @l (empty), with key @name marked revoked and
 * generation @gen; @path gets the file's path. */
static void revoking(struct pifs_allow *l, const char *name, uint64_t gen, char *path, size_t cap)
{
	char err[512];

	snprintf(path, cap, "%s/allowed", s.keys);
	cr_assert_eq(pifs_allow_load(l, path, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->keys[i].name, name) == 0)
			l->keys[i].revoked = true;
	l->generation = gen;
}

/* The same as text, as a push carries it. */
static char *list_revoking(const char *name, uint64_t gen)
{
	struct pifs_allow l;
	char path[128], *text;
	size_t len;

	pifs_allow_init(&l);
	revoking(&l, name, gen, path, sizeof(path));
	cr_assert_eq(pifs_allow_format(&l, &text, &len), 0);
	pifs_allow_fini(&l);
	return text;
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 30);

Test(auth, each_listed_key_connects_with_its_role)
{
	const char *names[] = {"client", "admin", "node-2"};
	const enum pifs_role roles[] = {PIFS_ROLE_CLIENT, PIFS_ROLE_ADMIN, PIFS_ROLE_NODE};
	uint64_t role, may;

	for (int i = 0; i < 3; i++) {
		struct pifs_auth *a = keyring_auth(s.keys, names[i]);

		cr_assert_eq(ask_as(a, PIFS_MSG_GETATTR, &role, &may), 0, "%s", names[i]);
		cr_assert_eq(role, roles[i], "%s", names[i]);
		pifs_auth_free(a);
	}
	cr_assert_eq(pifs_auth_refusals(s.node), 0);
}

Test(auth, a_key_not_in_the_list_is_refused_at_the_handshake_and_counted)
{
	char other[128], err[512];
	struct pifs_conf c;
	struct pifs_auth *stranger;
	uint64_t role, may;

	/* A key directory of another cluster: its client key is well formed,
	 * and it knows node-1 by this cluster's public key. */
	snprintf(other, sizeof(other), "%s/other", s.dir);
	keyring_make(other, 1);
	pifs_conf_init(&c);
	snprintf(c.keys_dir, sizeof(c.keys_dir), "%s", other);
	cr_assert_eq(pifs_auth_open(&c, "client", &stranger, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pifs_auth_probe(stranger, s.zctx, 1, s.ep, 2000), -EPROTO,
		     "it does not even know node 1's key");
	pifs_auth_free(stranger);

	/* The same client key name, another key, in a copy of our list. */
	snprintf(err, sizeof(err),
		 "set -e; d=%s; o=%s; grep -v '^client ' $d/allowed > $o/allowed.x; "
		 "grep '^client ' $o/allowed >> $o/allowed.x; mv $o/allowed.x $o/allowed",
		 s.keys, other);
	cr_assert_eq(system(err), 0);
	cr_assert_eq(pifs_auth_open(&c, "client", &stranger, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pifs_auth_probe(stranger, s.zctx, 1, s.ep, 2000), -EACCES);
	cr_assert_eq(ask_as(stranger, PIFS_MSG_GETATTR, &role, &may), -EHOSTUNREACH);
	cr_assert_geq(pifs_auth_refusals(s.node), 1);
	pifs_auth_free(stranger);
	pifs_conf_fini(&c);
}

Test(auth, a_caller_without_keys_cannot_talk_to_a_node_with_them)
{
	cr_assert_eq(pifs_auth_probe(NULL, s.zctx, 1, s.ep, 2000), -EPROTO);
}

Test(auth, a_key_revoked_while_connected_is_refused_at_its_next_request)
{
	struct pifs_auth *a = keyring_auth(s.keys, "client");
	struct pifs_msg req, rep;
	struct pifs_allow l;
	struct pifs_rpc *r;
	char path[128];
	int64_t until;

	cr_assert_eq(pifs_rpc_new(s.zctx, a, 1, s.ep, &r), 0);
	pifs_msg_init(&req, PIFS_MSG_GETATTR);
	cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 1000), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, PIFS_ROLE_CLIENT);

	/* pifs-admin keys revoke writes the list; the node sees the file
	 * change within seconds, with no signal. */
	pifs_allow_init(&l);
	revoking(&l, "client", 2, path, sizeof(path));
	cr_assert_eq(pifs_allow_save(&l, path), 0);
	pifs_allow_fini(&l);
	until = pifs_now_ms() + 5000;
	do {
		usleep(100 * 1000);
		pifs_msg_init(&req, PIFS_MSG_GETATTR);
		cr_assert_eq(pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, 1000), 0,
			     "the connection stays, its requests are judged");
	} while (rep.u.R_ATTR.attr.ino != PIFS_ROLE_NONE && pifs_now_ms() < until);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, PIFS_ROLE_NONE, "still served 5 s after the revoke");
	cr_assert_eq(rep.u.R_ATTR.attr.uid, 0);
	cr_assert_eq(pifs_auth_generation(s.node), 2);
	cr_assert_eq(pifs_auth_probe(a, s.zctx, 1, s.ep, 2000), -EACCES,
		     "and a new connection is refused");
	pifs_rpc_free(r);
	pifs_auth_free(a);
}

Test(auth, an_impostor_node_is_not_believed)
{
	struct pifs_auth *a = keyring_auth(s.keys, "admin");

	/* The server proves node-1's key; a caller that wants node 2 there
	 * does not finish the handshake. */
	cr_assert_neq(pifs_auth_probe(a, s.zctx, 2, s.ep, 2000), 0);
	cr_assert_eq(pifs_auth_probe(a, s.zctx, 1, s.ep, 2000), 0);
	pifs_auth_free(a);
}

Test(auth, a_pushed_list_is_taken_only_when_newer_and_only_if_it_keeps_this_node)
{
	char err[512], path[128], *text;
	struct pifs_allow l;

	text = list_revoking("kiosk-none", 1);
	cr_assert_eq(pifs_auth_install(s.node, text, strlen(text), err, sizeof(err)), 0,
		     "generation 1 is not newer than 1");
	free(text);
	text = list_revoking("client", 3);
	cr_assert_eq(pifs_auth_install(s.node, text, strlen(text), err, sizeof(err)), 1, "%s",
		     err);
	free(text);
	cr_assert_eq(pifs_auth_generation(s.node), 3);
	pifs_allow_init(&l);
	snprintf(path, sizeof(path), "%s/allowed", s.keys);
	cr_assert_eq(pifs_allow_load(&l, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(l.generation, 3, "on disk, for the next start");
	cr_assert(pifs_allow_find(&l, "client")->revoked);
	pifs_allow_fini(&l);

	text = list_revoking("node-1", 4);
	cr_assert_eq(pifs_auth_install(s.node, text, strlen(text), err, sizeof(err)),
		     -EKEYREVOKED);
	free(text);
	cr_assert_eq(pifs_auth_install(s.node, "generation 9\n", 13, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "node-1"), "%s", err);
	cr_assert_eq(pifs_auth_install(s.node, "garbage", 7, err, sizeof(err)), -EINVAL);
	cr_assert_eq(pifs_auth_generation(s.node), 3);
}

Test(auth, roles)
{
	const uint16_t mount[] = {PIFS_MSG_CHUNK_PUT, PIFS_MSG_CHUNK_GET, PIFS_MSG_MKNOD,
				  PIFS_MSG_COMMIT,    PIFS_MSG_READDIR,	  PIFS_MSG_MAP_GET};
	const uint16_t peer[] = {PIFS_MSG_RAFT_APPEND, PIFS_MSG_NODE_HELLO, PIFS_MSG_CHUNK_DEL,
				 PIFS_MSG_CHUNK_REFS};
	const uint16_t admin[] = {PIFS_MSG_NODE_ADD,  PIFS_MSG_NODE_SET,  PIFS_MSG_NODE_DEL,
				  PIFS_MSG_WORK_START, PIFS_MSG_WORK_SET, PIFS_MSG_PLAN,
				  PIFS_MSG_KEYS_SET,  PIFS_MSG_META_VOTER, PIFS_MSG_VOTERS,
				  PIFS_MSG_INIT};

	for (size_t i = 0; i < sizeof(mount) / sizeof(mount[0]); i++) {
		cr_assert(pifs_auth_may(PIFS_ROLE_CLIENT, mount[i]), "%s", pifs_proto_name(mount[i]));
		cr_assert(pifs_auth_may(PIFS_ROLE_ADMIN, mount[i]));
	}
	cr_assert_not(pifs_auth_may(PIFS_ROLE_NODE, PIFS_MSG_MKNOD), "a node key writes no files");
	for (size_t i = 0; i < sizeof(peer) / sizeof(peer[0]); i++) {
		cr_assert(pifs_auth_may(PIFS_ROLE_NODE, peer[i]), "%s", pifs_proto_name(peer[i]));
		cr_assert_not(pifs_auth_may(PIFS_ROLE_CLIENT, peer[i]), "%s",
			      pifs_proto_name(peer[i]));
	}
	for (size_t i = 0; i < sizeof(admin) / sizeof(admin[0]); i++) {
		cr_assert(pifs_auth_may(PIFS_ROLE_ADMIN, admin[i]));
		cr_assert_not(pifs_auth_may(PIFS_ROLE_CLIENT, admin[i]), "%s",
			      pifs_proto_name(admin[i]));
		cr_assert_not(pifs_auth_may(PIFS_ROLE_NODE, admin[i]), "%s",
			      pifs_proto_name(admin[i]));
	}
	cr_assert_not(pifs_auth_may(PIFS_ROLE_NONE, PIFS_MSG_GETATTR));
}

Test(auth, open_says_what_is_missing_and_what_to_do)
{
	struct pifs_auth *a = NULL;
	struct pifs_conf c;
	char err[1024], path[160];

	pifs_conf_init(&c);
	snprintf(c.keys_dir, sizeof(c.keys_dir), "%s", s.keys);
	cr_assert_eq(pifs_auth_open(&c, "nobody", &a, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "pifs-admin keys init") && strstr(err, "security = none") &&
		      strstr(err, "'pifs-admin keys import FILE' here"),
		  "%s", err);
	snprintf(path, sizeof(path), "%s/client.key", s.keys);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(pifs_auth_open(&c, "client", &a, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "chmod 600"), "%s", err);
	c.security_none = true;
	cr_assert_eq(pifs_auth_open(&c, "nobody", &a, err, sizeof(err)), 0);
	cr_assert(pifs_auth_insecure(a));
	cr_assert_eq(pifs_auth_generation(a), 0);
	pifs_auth_free(a);
	pifs_conf_fini(&c);
}
