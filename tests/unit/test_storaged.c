/* test_storaged.c - pifs-storaged as a process: a chain put lands on every
 * node of the chain, bad requests get error replies, metadata survives a
 * restart, and SIGTERM stops it cleanly; nodes that stop answering are
 * marked down and out in the map and up again when they return; heal gives
 * chunks their missing copies and moves stand-in copies home; scrub repairs
 * a corrupt chunk from another copy; a full node refuses chunks and the
 * chain goes on without it; garbage collection deletes only unreferenced
 * chunks past their grace, even against a concurrent upload; a plan matches
 * the moves of the rebalance after it; a node that joins by itself takes
 * nothing until admitted; a drained node ends empty; WORK_SET changes the
 * copy rate at once (suite "storaged"). Also the daemon's node map,
 * which resolves chain nodes to addresses (suite "nodemap").
 *
 * Each test starts its own daemons (fork/exec) on its own loopback ports in
 * 17100-17199 and its own directory under /tmp/pifs-storaged; the fixture's
 * teardown kills whatever is left, so that no daemon outlives its test. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "keyring.h"
#include "nodemap.h"
#include "place.h"
#include "rpc.h"

#define NODES 3 /* in the config */
#define MAXN 4	/* and one more that joins by itself */
#define SLOTS 5 /* and a daemon that claims a node id already taken */
#define WAIT_MS 5000

static struct {
	char dir[64];
	char conf[96];
	int port[SLOTS + 1]; /* of each node */
	pid_t pid[SLOTS + 1];
	struct pifs_rpc *rpc[SLOTS + 1];
	void *zctx;
	char keys[96];		/* the daemons' key directory */
	struct pifs_auth *auth; /* the test's: the admin key */
} c;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	memset(&c, 0, sizeof(c));
	mkdir("/tmp/pifs-storaged", 0755);
	snprintf(c.dir, sizeof(c.dir), "/tmp/pifs-storaged/daemon-XXXXXX");
	cr_assert_not_null(mkdtemp(c.dir));
	snprintf(c.conf, sizeof(c.conf), "%s/pifs.conf", c.dir);
	snprintf(c.keys, sizeof(c.keys), "%s/keys", c.dir);
	keyring_make(c.keys, SLOTS + 1);
	c.auth = keyring_auth(c.keys, "admin");
	c.zctx = zmq_ctx_new();
	cr_assert_not_null(c.zctx);
}

static int wait_exit(pid_t pid, int ms);

/* The first line of the daemons' log that a sanitizer wrote, into @out. */
static bool sanitizer_report(char *out, size_t cap)
{
	char path[128];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", c.dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(out, (int)cap, f))
		found = strstr(out, "Sanitizer") || strstr(out, "runtime error:");
	fclose(f);
	return found;
}

/* Stop what is left: SIGTERM first, so that a sanitizer build reports what
 * the daemon leaked or broke on its way out, then SIGKILL. */
static void teardown(void)
{
	char report[512];
	bool bad;
	int i;

	for (i = 1; i <= SLOTS; i++)
		if (c.pid[i] > 0)
			kill(c.pid[i], SIGTERM);
	for (i = 1; i <= SLOTS; i++) {
		pifs_rpc_free(c.rpc[i]);
		if (c.pid[i] > 0 && wait_exit(c.pid[i], WAIT_MS) == -1) {
			kill(c.pid[i], SIGKILL);
			waitpid(c.pid[i], NULL, 0);
		}
	}
	zmq_ctx_term(c.zctx);
	pifs_auth_free(c.auth);
	bad = sanitizer_report(report, sizeof(report));
	nftw(c.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	cr_assert_not(bad, "a daemon's sanitizer said: %s", report);
}

TestSuite(storaged, .init = setup, .fini = teardown, .timeout = 60);

/* A config of three nodes on the ports @ports[1..3] at @path; node 1 is
 * the voter. @cluster adds lines to [cluster]; @reserve is the reserve's
 * value. */
static void write_conf_ports(const char *path, const int *ports, const char *cluster,
			     const char *reserve)
{
	FILE *f = fopen(path, "w");
	int i;

	cr_assert_not_null(f);
	fprintf(f, "[cluster]\nreplicas = 2\nchunk_size = 1M\n%s\nreserve = %s\nkeys = %s\n\n",
		cluster[0] ? cluster : "heartbeat = 200ms\ndown_after = 3s", reserve, c.keys);
	for (i = 1; i <= NODES; i++) {
		c.port[i] = ports[i];
		fprintf(f, "[node %d]\naddress = 127.0.0.1:%d\ndata = %s/n%d\n%s\n", i, ports[i],
			c.dir, i, i == 1 ? "meta = yes\n" : "");
	}
	fprintf(f, "[client]\ntimeout = 1s\n");
	fclose(f);
}

/* The same on @port + 1..3. */
static void write_conf_at(const char *path, int port, const char *cluster, const char *reserve)
{
	const int ports[] = {0, port + 1, port + 2, port + 3};

	write_conf_ports(path, ports, cluster, reserve);
}

static void write_conf(int port)
{
	write_conf_at(c.conf, port, "", "1M");
}

/* Quick liveness and heal, for the tests of failures. */
#define FAST                                                                                       \
	"heartbeat = 100ms\ndown_after = 1s\nout_after = 2500ms\nheal_interval = 1h\n"             \
	"scrub_interval = 0"

static pid_t spawn(const char *const argv[])
{
	char log[128];
	pid_t pid;
	int fd;

	snprintf(log, sizeof(log), "%s/daemon.log", c.dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* Not outlive a test process killed on its timeout. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		execv(PIFS_STORAGED_BIN, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static struct pifs_rpc *rpc_to(int id)
{
	char ep[64];

	if (!c.rpc[id]) {
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", c.port[id]);
		cr_assert_eq(pifs_rpc_new(c.zctx, c.auth, (uint32_t)id, ep, &c.rpc[id]), 0);
	}
	return c.rpc[id];
}

/* Wait until node @id answers NODE_STAT. */
static void wait_answer(int id)
{
	struct pifs_msg req, rep;
	int64_t until = pifs_now_ms() + WAIT_MS;
	int rc = -1;

	while (rc != 0 && pifs_now_ms() < until) {
		pifs_msg_init(&req, PIFS_MSG_NODE_STAT);
		rc = pifs_rpc_call(rpc_to(id), &req, NULL, 0, &rep, NULL, NULL, 200);
	}
	cr_assert_eq(rc, 0, "node %d did not answer within %d ms", id, WAIT_MS);
	cr_assert_eq(rep.type, PIFS_MSG_R_NODE);
	cr_assert_eq(rep.u.R_NODE.id, (uint32_t)id);
}

/* Start node @id with the config at @conf and wait until it answers. */
static void start_with(int id, const char *conf)
{
	const char *argv[] = {"pifs-storaged", "-c",	conf, "-n", NULL,
			      "--log-level",   "debug", NULL};
	char idstr[16];

	snprintf(idstr, sizeof(idstr), "%d", id);
	argv[4] = idstr;
	c.pid[id] = spawn(argv);
	wait_answer(id);
}

/* Start node @id, which the config does not name, on @port with its data
 * in DIR/nID, as a new Pi joins, and wait until it answers. */
static void start_new(int id, int port)
{
	const char *argv[] = {"pifs-storaged", "-c", c.conf,	    "-n",    NULL, "--listen", NULL,
			      "--data",	       NULL, "--log-level", "debug", NULL};
	char idstr[16], listen[32], data[128];

	snprintf(idstr, sizeof(idstr), "%d", id);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(data, sizeof(data), "%s/n%d", c.dir, id);
	argv[4] = idstr;
	argv[6] = listen;
	argv[8] = data;
	c.port[id] = port;
	c.pid[id] = spawn(argv);
	wait_answer(id);
}

static void start(int id)
{
	start_with(id, c.conf);
}

/* Wait for @pid to exit; its wait status, or -1 after @ms. */
static int wait_exit(pid_t pid, int ms)
{
	int64_t until = pifs_now_ms() + ms;
	int st;

	while (pifs_now_ms() < until) {
		if (waitpid(pid, &st, WNOHANG) == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

/* SIGTERM node @id; returns its wait status. */
static int stop(int id)
{
	int st;

	cr_assert_eq(kill(c.pid[id], SIGTERM), 0);
	st = wait_exit(c.pid[id], WAIT_MS);
	cr_assert_neq(st, -1, "node %d did not stop within %d ms of SIGTERM", id, WAIT_MS);
	c.pid[id] = 0;
	pifs_rpc_free(c.rpc[id]);
	c.rpc[id] = NULL;
	return st;
}

static struct pifs_frame make_frame(size_t len, unsigned seed)
{
	struct pifs_frame f;
	uint8_t *raw = malloc(len);
	size_t i;

	cr_assert_not_null(raw);
	for (i = 0; i < len; i++)
		raw[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 13);
	cr_assert_eq(pifs_frame_pack(&f, raw, len), 0);
	free(raw);
	return f;
}

/* A frame of @len bytes that do not compress, so that it is as long as
 * they are: its copy costs @len bytes, and the tests of puts in pieces
 * count them. */
static struct pifs_frame noise_frame(size_t len, uint64_t seed)
{
	struct pifs_frame f;
	uint8_t *raw = malloc(len);
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	cr_assert_not_null(raw);
	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		raw[i] = (uint8_t)x;
	}
	cr_assert_eq(pifs_frame_pack(&f, raw, len), 0);
	free(raw);
	return f;
}

static bool has_chunk_file(int node, const struct pifs_chunk_id *id)
{
	char hex[33], path[192];
	struct stat sb;

	pifs_chunk_id_hex(id, hex);
	snprintf(path, sizeof(path), "%s/n%d/chunks/%.2s/%.2s/%s", c.dir, node, hex, hex + 2, hex);
	return stat(path, &sb) == 0;
}

/* CHUNK_PUT @f to node @to with the chain @chain (@n nodes). */
static int put(int to, const struct pifs_frame *f, const uint32_t *chain, int n, uint32_t flags,
	       struct pifs_msg *rep)
{
	struct pifs_msg req;
	struct pifs_buf list;
	struct pifs_nodeid nid;
	int i, rc;

	pifs_buf_init(&list);
	for (i = 0; i < n; i++) {
		nid.id = chain[i];
		cr_assert_eq(pifs_nodeid_append(&list, &nid), 0);
	}
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.u.CHUNK_PUT.id = f->hdr.id;
	req.u.CHUNK_PUT.flags = flags;
	req.u.CHUNK_PUT.chain = pifs_list_of(&list, (uint32_t)n);
	rc = pifs_rpc_call(rpc_to(to), &req, f->data, f->len, rep, NULL, NULL, WAIT_MS);
	pifs_buf_fini(&list);
	return rc;
}

/* The node ids of an R_PUT, in order, as a string such as "1,2". */
static void nodes_of(const struct pifs_msg *rep, char *out, size_t cap)
{
	struct pifs_cursor cur;
	struct pifs_nodeid n;
	size_t len = 0;

	out[0] = '\0';
	cr_assert_eq(rep->type, PIFS_MSG_R_PUT);
	pifs_cursor_init(&cur, &rep->u.R_PUT.nodes);
	while (pifs_nodeid_next(&cur, &n) == 1 && len < cap)
		len += (size_t)snprintf(out + len, cap - len, len ? ",%u" : "%u", n.id);
}

static int get(int from, const struct pifs_chunk_id *id, struct pifs_msg *rep, const void **p,
	       size_t *plen)
{
	struct pifs_msg req;

	pifs_msg_init(&req, PIFS_MSG_CHUNK_GET);
	req.u.CHUNK_GET.id = *id;
	return pifs_rpc_call(rpc_to(from), &req, NULL, 0, rep, p, plen, WAIT_MS);
}

/* SIGKILL node @id, as a crash or a power cut would stop it. */
static void crash(int id)
{
	cr_assert_eq(kill(c.pid[id], SIGKILL), 0);
	waitpid(c.pid[id], NULL, 0);
	c.pid[id] = 0;
	pifs_rpc_free(c.rpc[id]);
	c.rpc[id] = NULL;
}

/* The map as the voter has it: each node's flags and weight by id (0 for a
 * node it does not list); returns its epoch. */
static uint64_t voter_map(uint32_t flags[MAXN + 1], uint32_t weights[MAXN + 1])
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_node n;

	memset(flags, 0, (MAXN + 1) * sizeof(flags[0]));
	if (weights)
		memset(weights, 0, (MAXN + 1) * sizeof(weights[0]));
	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_MAP);
	pifs_cursor_init(&cur, &rep.u.R_MAP.nodes);
	while (pifs_node_next(&cur, &n) == 1) {
		cr_assert(n.id >= 1 && n.id <= MAXN);
		flags[n.id] = n.flags;
		if (weights)
			weights[n.id] = n.weight;
	}
	return rep.u.R_MAP.epoch;
}

static bool node_stat(int id, struct pifs_msg *rep)
{
	struct pifs_msg req;

	pifs_msg_init(&req, PIFS_MSG_NODE_STAT);
	return pifs_rpc_call(rpc_to(id), &req, NULL, 0, rep, NULL, NULL, WAIT_MS) == 0 &&
	       rep->type == PIFS_MSG_R_NODE;
}

/* Wait until the voter's map has exactly the nodes of @up (a bit per id) up
 * and every running node has installed that map. Returns its epoch. */
static uint64_t settle(unsigned up)
{
	int64_t until = pifs_now_ms() + 10000;
	uint32_t flags[MAXN + 1];
	struct pifs_msg rep;
	uint64_t epoch = 0;
	bool ok = false;
	int i;

	while (!ok && pifs_now_ms() < until) {
		epoch = voter_map(flags, NULL);
		ok = true;
		for (i = 1; i <= MAXN; i++)
			ok = ok && !!(up & (1u << i)) == !!(flags[i] & PIFS_NODE_UP);
		for (i = 1; ok && i <= MAXN; i++)
			if (c.pid[i] > 0)
				ok = node_stat(i, &rep) && rep.epoch == epoch;
		if (!ok)
			usleep(50000);
	}
	cr_assert(ok, "the map did not settle with nodes %#x up within 10 s", up);
	return epoch;
}

/* The nodes in of the voter's map, in HRW order for chunk @id, into
 * @order; returns how many. */
static int owners(const struct pifs_chunk_id *id, uint32_t order[MAXN])
{
	uint32_t flags[MAXN + 1], weights[MAXN + 1];
	struct pifs_place_node pn[MAXN];
	int i, n = 0;

	voter_map(flags, weights);
	for (i = 1; i <= MAXN; i++) {
		if (!(flags[i] & PIFS_NODE_IN))
			continue;
		pn[n].id = (uint32_t)i;
		pn[n].weight = weights[i];
		n++;
	}
	pifs_place_rank(id, pn, (size_t)n, order);
	return n;
}

/* A frame of chunk whose HRW order puts the voter (node 1) first when
 * @voter_first, else last, so that a test can stop an owner that is not the
 * voter; its order goes in @order. */
static struct pifs_frame frame_ranked(bool voter_first, uint32_t order[MAXN])
{
	struct pifs_frame f;
	unsigned seed;

	for (seed = 100; seed < 400; seed++) {
		f = make_frame(200000, seed);
		cr_assert_eq(owners(&f.hdr.id, order), NODES);
		if ((order[0] == 1) == voter_first && (voter_first || order[NODES - 1] == 1))
			return f;
		pifs_frame_release(&f);
	}
	cr_assert_fail("no chunk of 300 ranks the voter as wanted");
	return f;
}

static void work_start(int id, uint32_t flags)
{
	struct pifs_msg req, rep;

	pifs_msg_init(&req, PIFS_MSG_WORK_START);
	req.u.WORK_START.flags = flags;
	cr_assert_eq(pifs_rpc_call(rpc_to(id), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
}

/* Wait up to @ms for node @node to hold chunk @id (@want) or not. */
static bool wait_file(int node, const struct pifs_chunk_id *id, bool want, int ms)
{
	int64_t until = pifs_now_ms() + ms;

	while (has_chunk_file(node, id) != want && pifs_now_ms() < until)
		usleep(20000);
	return has_chunk_file(node, id) == want;
}

/* Start a heal pass on node @id and wait up to @ms for it to end. */
static struct pifs_work heal_once(int id, int64_t until)
{
	struct pifs_msg rep;
	uint64_t passes;

	cr_assert(node_stat(id, &rep));
	passes = rep.u.R_NODE.work.heal_passes;
	work_start(id, PIFS_WORK_HEAL);
	while (pifs_now_ms() < until) {
		cr_assert(node_stat(id, &rep));
		if (rep.u.R_NODE.work.heal_passes > passes)
			return rep.u.R_NODE.work;
		usleep(20000);
	}
	cr_assert_fail("node %d finished no heal pass in time", id);
	return rep.u.R_NODE.work;
}

/* Wait up to @ms for a whole heal pass of node @id that starts after now:
 * the first pass that ends may have started before. Returns its figures. */
static struct pifs_work wait_heal_pass(int id, int ms)
{
	int64_t until = pifs_now_ms() + ms;

	heal_once(id, until);
	return heal_once(id, until);
}

/* Wait up to @ms for node @id to finish scrub pass number @pass. */
static struct pifs_work wait_scrub_pass(int id, uint64_t pass, int ms)
{
	int64_t until = pifs_now_ms() + ms;
	struct pifs_msg rep;

	while (pifs_now_ms() < until) {
		cr_assert(node_stat(id, &rep));
		if (rep.u.R_NODE.work.scrub_passes >= pass)
			return rep.u.R_NODE.work;
		usleep(50000);
	}
	cr_assert_fail("node %d finished no scrub pass within %d ms", id, ms);
	return rep.u.R_NODE.work;
}

/* Does the log of the daemons have a line with @text? */
static bool logged(const char *text)
{
	char path[128], line[1024];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/daemon.log", c.dir);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

/* Flip one bit of the payload of node @node's copy of @f. */
static void flip_bit(int node, const struct pifs_frame *f, size_t at)
{
	char hex[33], path[192];
	uint8_t b;
	int fd;

	pifs_chunk_id_hex(&f->hdr.id, hex);
	snprintf(path, sizeof(path), "%s/n%d/chunks/%.2s/%.2s/%s", c.dir, node, hex, hex + 2, hex);
	fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "node %d has no chunk file to damage", node);
	cr_assert_eq(pread(fd, &b, 1, (off_t)(PIFS_FRAME_HDR + at)), 1);
	b ^= 0x04;
	cr_assert_eq(pwrite(fd, &b, 1, (off_t)(PIFS_FRAME_HDR + at)), 1);
	close(fd);
}

static bool same_file(int node, const struct pifs_frame *f)
{
	char hex[33], path[192];
	uint8_t *buf = malloc(f->len + 1);
	ssize_t n;
	bool same;
	int fd;

	cr_assert_not_null(buf);
	pifs_chunk_id_hex(&f->hdr.id, hex);
	snprintf(path, sizeof(path), "%s/n%d/chunks/%.2s/%.2s/%s", c.dir, node, hex, hex + 2, hex);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, f->len + 1);
	if (fd >= 0)
		close(fd);
	same = n == (ssize_t)f->len && memcmp(buf, f->data, f->len) == 0;
	free(buf);
	return same;
}

Test(storaged, a_put_down_a_chain_of_two_lands_on_both_and_reads_back)
{
	struct pifs_frame f = make_frame(700000, 1);
	uint32_t chain[] = {2};
	struct pifs_msg rep;
	const void *p;
	size_t plen;
	char nodes[64];

	write_conf(17110);
	start(1);
	start(2);
	start(3);
	settle(0xe);
	cr_assert_eq(put(1, &f, chain, 1, PIFS_PUT_SYNC, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "1,2");
	cr_assert(has_chunk_file(1, &f.hdr.id));
	cr_assert(has_chunk_file(2, &f.hdr.id));
	cr_assert_not(has_chunk_file(3, &f.hdr.id));
	cr_assert_eq(get(2, &f.hdr.id, &rep, &p, &plen), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_CHUNK);
	cr_assert_eq(plen, f.len);
	cr_assert_arr_eq(p, f.data, f.len);
	cr_assert_eq(get(3, &f.hdr.id, &rep, &p, &plen), -ENOENT);
	pifs_frame_release(&f);
}

Test(storaged, a_chain_of_three_answers_with_every_node_first_owner_first)
{
	struct pifs_frame f = make_frame(300000, 2);
	uint32_t chain[] = {3, 1};
	struct pifs_msg rep;
	char nodes[64];

	write_conf(17120);
	start(1);
	start(2);
	start(3);
	settle(0xe);
	cr_assert_eq(put(2, &f, chain, 2, 0, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "2,3,1");
	cr_assert(has_chunk_file(1, &f.hdr.id) && has_chunk_file(3, &f.hdr.id));
	pifs_frame_release(&f);
}

Test(storaged, a_dead_node_down_the_chain_leaves_the_nodes_that_stored_it)
{
	struct pifs_frame f = make_frame(100000, 3);
	uint32_t chain[] = {3};
	struct pifs_msg rep;
	char nodes[64];

	write_conf(17130);
	start(1);
	start(2);
	cr_assert_eq(put(2, &f, chain, 1, 0, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "2");
	cr_assert(has_chunk_file(2, &f.hdr.id));
	pifs_frame_release(&f);
}

Test(storaged, a_frame_that_does_not_hash_to_its_id_is_refused_and_not_stored)
{
	struct pifs_frame f = make_frame(50000, 4), g = make_frame(50000, 5);
	uint32_t chain[] = {2};
	struct pifs_msg rep;

	write_conf(17140);
	start(1);
	start(2);
	f.data[PIFS_FRAME_HDR + 100] ^= 0x10;
	cr_assert_eq(put(1, &f, chain, 1, 0, &rep), -EBADMSG);
	cr_assert_gt(rep.u.R_STATUS.detail.len, 0);
	cr_assert_not(has_chunk_file(1, &f.hdr.id));
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	/* A sound frame under another chunk's id. */
	g.hdr.id = f.hdr.id;
	cr_assert_eq(put(1, &g, chain, 1, 0, &rep), -EBADMSG);
	cr_assert_not(has_chunk_file(1, &f.hdr.id));
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

/* CHUNK_PUT @f to node @to with the chain @chain (@n nodes) in pieces of
 * @piece bytes, as a writer sends it. */
static int put_pieces(int to, const struct pifs_frame *f, const uint32_t *chain, int n,
		      size_t piece, struct pifs_msg *rep)
{
	struct pifs_msg req;
	struct pifs_buf list;
	struct pifs_nodeid nid;
	uint8_t *copy = malloc(f->len);
	int i, rc;

	cr_assert_not_null(copy);
	memcpy(copy, f->data, f->len);
	pifs_buf_init(&list);
	for (i = 0; i < n; i++) {
		nid.id = chain[i];
		cr_assert_eq(pifs_nodeid_append(&list, &nid), 0);
	}
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.u.CHUNK_PUT.id = f->hdr.id;
	req.u.CHUNK_PUT.chain = pifs_list_of(&list, (uint32_t)n);
	rc = pifs_rpc_send_pieces(rpc_to(to), &req, copy, f->len, piece, WAIT_MS);
	cr_assert_gt(req.u.CHUNK_PUT.total, 0, "the frame went whole, not in pieces");
	if (rc == 0)
		rc = pifs_rpc_recv(rpc_to(to), req.reqid, rep, NULL, NULL, WAIT_MS);
	pifs_buf_fini(&list);
	return rc;
}

/* Send one piece of @f (@len bytes from @from) as put @reqid on the raw
 * DEALER @sock, claiming @offset of @total, with the chain @chain (@n). */
static void send_piece(void *sock, uint64_t reqid, const struct pifs_frame *f, const uint32_t *chain,
		       int n, uint32_t offset, uint32_t total, size_t from, size_t len)
{
	struct pifs_msg req;
	struct pifs_buf list, enc;
	struct pifs_nodeid nid;
	int i;

	pifs_buf_init(&list);
	pifs_buf_init(&enc);
	for (i = 0; i < n; i++) {
		nid.id = chain[i];
		cr_assert_eq(pifs_nodeid_append(&list, &nid), 0);
	}
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.reqid = reqid;
	req.u.CHUNK_PUT.id = f->hdr.id;
	req.u.CHUNK_PUT.chain = pifs_list_of(&list, (uint32_t)n);
	req.u.CHUNK_PUT.offset = offset;
	req.u.CHUNK_PUT.total = total;
	cr_assert_eq(pifs_proto_encode(&req, &enc), 0);
	cr_assert_geq(zmq_send(sock, enc.p, enc.len, ZMQ_SNDMORE), 0);
	cr_assert_geq(zmq_send(sock, f->data + from, len, 0), 0);
	pifs_buf_fini(&list);
	pifs_buf_fini(&enc);
}

/* No reply came in time (a node may answer -ETIMEDOUT itself). */
#define NO_REPLY 2

/* Wait up to @ms for one reply on @sock: its R_STATUS code, 1 for an R_PUT,
 * or NO_REPLY. */
static int piece_reply(void *sock, uint64_t reqid, int ms)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	struct pifs_msg rep;
	zmq_msg_t keep;
	int rc;

	if (zmq_poll(&item, 1, ms) != 1)
		return NO_REPLY;
	zmq_msg_init(&keep);
	cr_assert_geq(zmq_msg_recv(&keep, sock, 0), 0);
	cr_assert_eq(pifs_proto_decode(zmq_msg_data(&keep), zmq_msg_size(&keep), &rep), 0);
	cr_assert_eq(rep.reqid, reqid);
	rc = rep.type == PIFS_MSG_R_PUT ? 1 : rep.u.R_STATUS.status;
	cr_assert(rep.type == PIFS_MSG_R_PUT || rep.type == PIFS_MSG_R_STATUS);
	zmq_msg_close(&keep);
	return rc;
}

static void *raw_dealer(int node)
{
	char ep[64];
	int zero = 0;
	void *sock = zmq_socket(c.zctx, ZMQ_DEALER);

	cr_assert_not_null(sock);
	zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
	cr_assert_eq(pifs_auth_client(c.auth, sock, (uint32_t)node), 0);
	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", c.port[node]);
	cr_assert_eq(zmq_connect(sock, ep), 0);
	return sock;
}

Test(storaged, a_put_in_pieces_through_a_chain_of_three_stores_identical_copies)
{
	struct pifs_frame f = noise_frame(1000000, 40);
	uint32_t chain[] = {3, 1};
	struct pifs_msg rep;
	char nodes[64];

	write_conf(17510);
	start(1);
	start(2);
	start(3);
	settle(0xe);
	cr_assert_eq(put_pieces(2, &f, chain, 2, 65536, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "2,3,1");
	cr_assert(same_file(1, &f) && same_file(2, &f) && same_file(3, &f));
	/* Pieces of uneven size, the last one short. */
	pifs_frame_release(&f);
	f = noise_frame(300001, 41);
	cr_assert_eq(put_pieces(1, &f, chain, 2, 100000, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "1,3");
	cr_assert(same_file(1, &f) && same_file(3, &f));
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	pifs_frame_release(&f);
}

Test(storaged, a_put_whose_pieces_stop_half_way_is_freed_after_the_timeout_and_stores_nothing)
{
	struct pifs_frame f = noise_frame(200000, 42);
	uint32_t chain[] = {2};
	struct pifs_msg rep;
	int64_t t0;
	void *sock;

	write_conf(17520);
	start(1);
	start(2);
	settle(0x6);
	sock = raw_dealer(1);
	t0 = pifs_now_ms();
	send_piece(sock, 11, &f, chain, 1, 0, (uint32_t)f.len, 0, 65536);
	/* The client's timeout in the config is 1 s. */
	cr_assert_eq(piece_reply(sock, 11, 4000), -ETIMEDOUT);
	cr_assert_geq(pifs_now_ms() - t0, 900);
	cr_assert(logged("stopped arriving after 65536 of"));
	/* The rest, too late: dropped without a word, and nothing stored. */
	send_piece(sock, 11, &f, chain, 1, 65536, (uint32_t)f.len, 65536, f.len - 65536);
	cr_assert_eq(piece_reply(sock, 11, 500), NO_REPLY);
	cr_assert_not(has_chunk_file(1, &f.hdr.id));
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	/* The worker still takes whole puts and puts in pieces. */
	cr_assert_eq(put(1, &f, chain, 1, 0, &rep), 0);
	cr_assert(same_file(1, &f) && same_file(2, &f));
	zmq_close(sock);
	pifs_frame_release(&f);
}

Test(storaged, a_piece_with_a_wrong_offset_or_total_is_refused)
{
	struct pifs_frame f = noise_frame(200000, 43);
	uint32_t chain[] = {2}, total;
	void *sock;

	write_conf(17530);
	start(1);
	start(2);
	settle(0x6);
	sock = raw_dealer(1);
	total = (uint32_t)f.len;
	cr_assert_gt(total, 110000);
	/* A gap: the second piece claims to start past the first one's end. */
	send_piece(sock, 21, &f, chain, 1, 0, total, 0, 50000);
	send_piece(sock, 21, &f, chain, 1, 60000, total, 60000, 50000);
	cr_assert_eq(piece_reply(sock, 21, 3000), -EPROTO);
	/* Another total half-way. */
	send_piece(sock, 22, &f, chain, 1, 0, total, 0, 50000);
	send_piece(sock, 22, &f, chain, 1, 50000, total + 1, 50000, 50000);
	cr_assert_eq(piece_reply(sock, 22, 3000), -EPROTO);
	/* A piece past the end of the frame it announced. */
	send_piece(sock, 23, &f, chain, 1, 0, 1000, 0, 1001);
	cr_assert_eq(piece_reply(sock, 23, 3000), -EPROTO);
	/* A frame larger than any chunk frame. */
	send_piece(sock, 24, &f, chain, 1, 0, 0xffffffffu, 0, 50000);
	cr_assert_eq(piece_reply(sock, 24, 3000), -EMSGSIZE);
	/* The rest of the refused puts is dropped, and nothing was stored. */
	send_piece(sock, 21, &f, chain, 1, 110000, total, 110000, total - 110000);
	cr_assert_eq(piece_reply(sock, 21, 500), NO_REPLY);
	cr_assert_not(has_chunk_file(1, &f.hdr.id));
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	zmq_close(sock);
	pifs_frame_release(&f);
}

Test(storaged, a_corrupted_piece_fails_the_put_with_ebadmsg_on_every_node)
{
	struct pifs_frame f = noise_frame(600000, 44);
	uint32_t chain[] = {2, 3}, tail[] = {3};
	struct pifs_msg rep;

	write_conf(17540);
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f.data[PIFS_FRAME_HDR + 300000] ^= 0x04;
	cr_assert_eq(put_pieces(1, &f, chain, 2, 65536, &rep), -EBADMSG);
	cr_assert_not(has_chunk_file(1, &f.hdr.id));
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	cr_assert_not(has_chunk_file(3, &f.hdr.id));
	/* Each node down the chain refuses it by itself too. */
	cr_assert_eq(put_pieces(2, &f, tail, 1, 65536, &rep), -EBADMSG);
	cr_assert_eq(put_pieces(3, &f, NULL, 0, 65536, &rep), -EBADMSG);
	cr_assert_not(has_chunk_file(2, &f.hdr.id));
	cr_assert_not(has_chunk_file(3, &f.hdr.id));
	pifs_frame_release(&f);
}

Test(storaged, a_corrupt_chunk_on_disk_is_not_served)
{
	struct pifs_frame f = make_frame(20000, 6);
	struct pifs_msg rep;
	const void *p;
	size_t plen;
	char hex[33], path[192];
	FILE *fp;

	write_conf(17150);
	start(1);
	cr_assert_eq(put(1, &f, NULL, 0, 0, &rep), 0);
	pifs_chunk_id_hex(&f.hdr.id, hex);
	snprintf(path, sizeof(path), "%s/n1/chunks/%.2s/%.2s/%s", c.dir, hex, hex + 2, hex);
	fp = fopen(path, "r+");
	cr_assert_not_null(fp);
	fseek(fp, PIFS_FRAME_HDR + 5, SEEK_SET);
	fputc(f.data[PIFS_FRAME_HDR + 5] ^ 0xff, fp);
	fclose(fp);
	cr_assert_eq(get(1, &f.hdr.id, &rep, &p, &plen), -EBADMSG);
	cr_assert_eq(get(1, &f.hdr.id, &rep, &p, &plen), -ENOENT);
	pifs_frame_release(&f);
}

/* Send raw frames on a DEALER and wait for one reply; 0 with @rep, or -ETIMEDOUT. */
static int raw_call(void *sock, const void *const *parts, const size_t *lens, int n,
		    struct pifs_msg *rep, zmq_msg_t *keep)
{
	zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
	int i;

	for (i = 0; i < n; i++)
		cr_assert_geq(zmq_send(sock, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0), 0);
	if (zmq_poll(&item, 1, 1000) != 1)
		return -ETIMEDOUT;
	cr_assert_geq(zmq_msg_recv(keep, sock, 0), 0);
	cr_assert_eq(pifs_proto_decode(zmq_msg_data(keep), zmq_msg_size(keep), rep), 0);
	return 0;
}

static void envelope(uint8_t *p, uint8_t version, uint16_t type, uint64_t reqid)
{
	int i;

	memset(p, 0, PIFS_PROTO_HDR);
	p[0] = 0x50;
	p[1] = 0x46;
	p[2] = version;
	p[4] = (uint8_t)(type >> 8);
	p[5] = (uint8_t)type;
	for (i = 0; i < 8; i++)
		p[8 + i] = (uint8_t)(reqid >> (56 - 8 * i));
}

static void expect_status(void *sock, const void *const *parts, const size_t *lens, int n,
			  uint64_t reqid, int status)
{
	struct pifs_msg rep;
	zmq_msg_t keep;

	zmq_msg_init(&keep);
	cr_assert_eq(raw_call(sock, parts, lens, n, &rep, &keep), 0, "no reply to request %llu",
		     (unsigned long long)reqid);
	cr_assert_eq(rep.type, PIFS_MSG_R_STATUS);
	cr_assert_eq(rep.reqid, reqid);
	cr_assert_eq(rep.u.R_STATUS.status, status, "request %llu: got %d, want %d",
		     (unsigned long long)reqid, rep.u.R_STATUS.status, status);
	zmq_msg_close(&keep);
}

/* A node key speaks for its own node only: node 2's key may send node 2's
 * heartbeat, not node 3's; a client key sends none. */
static int hello_as(const char *key, uint32_t id, char *why, size_t cap)
{
	struct pifs_auth *a = keyring_auth(c.keys, key);
	struct pifs_msg req, rep;
	struct pifs_rpc *r;
	char ep[64], addr[32];
	int rc;

	snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", c.port[1]);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", c.port[1] + 10 + (int)id);
	rc = pifs_rpc_new(c.zctx, a, 1, ep, &r);
	if (rc == 0) {
		pifs_msg_init(&req, PIFS_MSG_NODE_HELLO);
		req.u.NODE_HELLO.id = id;
		req.u.NODE_HELLO.addr = pifs_str_of(addr);
		rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, WAIT_MS);
		snprintf(why, cap, "%.*s", rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.detail.len : 0,
			 rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.detail.p : "");
		pifs_rpc_free(r);
	}
	pifs_auth_free(a);
	return rc;
}

Test(storaged, a_node_key_heartbeats_for_its_own_node_only)
{
	char why[512];

	write_conf(17550);
	start(1);
	cr_assert_eq(hello_as("node-2", 3, why, sizeof(why)), -EACCES);
	cr_assert(strstr(why, "heartbeat for node 3 signed with the key 'node-2'"), "%s", why);
	cr_assert_eq(hello_as("node-2", 2, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(hello_as("client", 2, why, sizeof(why)), -EACCES);
	cr_assert(strstr(why, "the key 'client'"), "%s", why);
}

Test(storaged, malformed_requests_get_error_replies_and_the_node_keeps_serving)
{
	uint8_t hdr[PIFS_PROTO_HDR + 4], junk[] = "not a pifs message at all";
	struct pifs_msg rep, m;
	struct pifs_buf enc;
	zmq_msg_t keep;
	const void *parts[4];
	size_t lens[4];
	void *sock;

	write_conf(17160);
	start(1);
	start(2);
	sock = raw_dealer(1);

	/* Garbage without the magic: nobody to answer, dropped. */
	parts[0] = junk;
	lens[0] = sizeof(junk);
	zmq_msg_init(&keep);
	cr_assert_eq(raw_call(sock, parts, lens, 1, &rep, &keep), -ETIMEDOUT);
	zmq_msg_close(&keep);
	/* An unknown type, another version, a short body. */
	envelope(hdr, PIFS_PROTO_VERSION, 0x7777, 42);
	parts[0] = hdr;
	lens[0] = PIFS_PROTO_HDR;
	expect_status(sock, parts, lens, 1, 42, -EOPNOTSUPP);
	envelope(hdr, PIFS_PROTO_VERSION + 1, PIFS_MSG_CHUNK_GET, 43);
	expect_status(sock, parts, lens, 1, 43, -EPROTO);
	envelope(hdr, PIFS_PROTO_VERSION, PIFS_MSG_CHUNK_GET, 44);
	lens[0] = PIFS_PROTO_HDR + 4;
	expect_status(sock, parts, lens, 1, 44, -EBADMSG);

	/* Well-formed messages in the wrong shape. */
	pifs_buf_init(&enc);
	pifs_msg_init(&m, PIFS_MSG_CHUNK_PUT);
	m.reqid = 45;
	cr_assert_eq(pifs_proto_encode(&m, &enc), 0);
	parts[0] = enc.p;
	lens[0] = enc.len;
	expect_status(sock, parts, lens, 1, 45, -EBADMSG); /* no frame */
	parts[1] = junk;
	lens[1] = sizeof(junk);
	enc.p[15] = 46;
	expect_status(sock, parts, lens, 2, 46, -EBADMSG); /* a frame that is no frame */
	parts[2] = parts[3] = junk;
	lens[2] = lens[3] = 3;
	enc.p[15] = 47;
	expect_status(sock, parts, lens, 4, 47, -EBADMSG); /* too many parts */
	pifs_buf_reset(&enc);
	pifs_msg_init(&m, PIFS_MSG_R_STATUS);
	m.reqid = 48;
	cr_assert_eq(pifs_proto_encode(&m, &enc), 0);
	parts[0] = enc.p;
	lens[0] = enc.len;
	expect_status(sock, parts, lens, 1, 48, -EOPNOTSUPP); /* a reply as a request */
	pifs_buf_reset(&enc);
	pifs_msg_init(&m, PIFS_MSG_GETATTR);
	m.reqid = 49;
	m.u.GETATTR.ino = 1;
	cr_assert_eq(pifs_proto_encode(&m, &enc), 0);
	parts[0] = enc.p;
	lens[0] = enc.len;
	zmq_close(sock);
	sock = raw_dealer(2);
	zmq_msg_init(&keep);
	cr_assert_eq(raw_call(sock, parts, lens, 1, &rep, &keep), 0);
	/* Node 2 is no voter: it never leads, so it sends the caller on (to
	 * the leader when it knows it, else to the config's voters). */
	cr_assert_eq(rep.type, PIFS_MSG_R_LEADER, "a non-voter must redirect metadata requests");
	cr_assert_neq(rep.u.R_LEADER.leader, 2);
	zmq_msg_close(&keep);
	pifs_buf_fini(&enc);
	zmq_close(sock);

	/* Still serving. */
	pifs_msg_init(&m, PIFS_MSG_NODE_STAT);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &m, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_NODE);
}

Test(storaged, metadata_is_logged_and_survives_a_restart)
{
	struct pifs_msg req, rep;
	uint64_t ino;
	char snap[128];
	struct stat sb;
	int st;

	write_conf(17170);
	start(1);
	pifs_msg_init(&req, PIFS_MSG_MKNOD);
	req.u.MKNOD.parent = 1;
	req.u.MKNOD.name = pifs_str_of("photo.jpg");
	req.u.MKNOD.mode = S_IFREG | 0644;
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	cr_assert_gt(rep.epoch, 0, "replies carry the map epoch");
	ino = rep.u.R_ATTR.attr.ino;
	st = stop(1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(snap, sizeof(snap), "%s/n1/meta/raft.snap", c.dir);
	cr_assert_eq(stat(snap, &sb), 0, "a voter writes a snapshot when it stops");
	start(1);
	pifs_msg_init(&req, PIFS_MSG_LOOKUP);
	req.u.LOOKUP.parent = 1;
	req.u.LOOKUP.name = pifs_str_of("photo.jpg");
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, ino);
}

Test(storaged, an_acknowledged_change_outlives_a_kill_of_the_voter_before_its_sync)
{
	struct pifs_msg req, rep;
	uint64_t ino;

	write_conf(17174);
	start(1);
	pifs_msg_init(&req, PIFS_MSG_MKNOD);
	req.u.MKNOD.parent = 1;
	req.u.MKNOD.name = pifs_str_of("kept.jpg");
	req.u.MKNOD.mode = S_IFREG | 0644;
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	ino = rep.u.R_ATTR.attr.ino;
	/* At once: well within the time the voter may wait to sync. */
	crash(1);
	start(1);
	pifs_msg_init(&req, PIFS_MSG_LOOKUP);
	req.u.LOOKUP.parent = 1;
	req.u.LOOKUP.name = pifs_str_of("kept.jpg");
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR, "the file was lost with the voter");
	cr_assert_eq(rep.u.R_ATTR.attr.ino, ino);

	pifs_msg_init(&req, PIFS_MSG_META_SYNC);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_STATUS);
	cr_assert_eq(rep.u.R_STATUS.status, 0);
}

Test(storaged, the_map_lists_every_node_and_marks_the_running_ones_up)
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_node n;
	uint32_t up = 0, count = 0;

	write_conf(17180);
	start(1);
	start(2);
	usleep(500000); /* two heartbeats */
	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_MAP);
	pifs_cursor_init(&cur, &rep.u.R_MAP.nodes);
	while (pifs_node_next(&cur, &n) == 1) {
		count++;
		if (n.flags & PIFS_NODE_UP)
			up |= 1u << n.id;
		cr_assert(n.flags & PIFS_NODE_IN);
		/* "auto" weights come from the disk size in a heartbeat. */
		if (n.id != 3)
			cr_assert_gt(n.weight, 0, "node %u has no weight", n.id);
	}
	cr_assert_eq(count, 3);
	cr_assert_eq(up, (1u << 1) | (1u << 2));
}

Test(storaged, status_and_df_count_the_space_the_heartbeats_report)
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_nodestat ns;
	uint64_t cap = 0;
	uint32_t count = 0;

	write_conf(17185);
	start(1);
	start(2);
	usleep(500000); /* two heartbeats */
	pifs_msg_init(&req, PIFS_MSG_CLUSTER_STAT);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_CLUSTER);
	cr_assert_eq(rep.u.R_CLUSTER.replicas, 2);
	cr_assert_eq(rep.u.R_CLUSTER.chunk_size, 1u << 20);
	pifs_cursor_init(&cur, &rep.u.R_CLUSTER.nodes);
	while (pifs_nodestat_next(&cur, &ns) == 1) {
		count++;
		if (ns.id == 3) {
			cr_assert_eq(ns.last_seen, 0, "node 3 never said hello");
			cr_assert_not(ns.flags & PIFS_NODE_UP);
			continue;
		}
		cr_assert(ns.flags & PIFS_NODE_UP, "node %u should be up", ns.id);
		cr_assert_gt(ns.capacity, 0);
		cr_assert_gt(ns.last_seen, 0);
		cap += ns.capacity;
	}
	cr_assert_eq(count, 3);
	pifs_msg_init(&req, PIFS_MSG_STATFS);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_STATFS);
	cr_assert_eq(rep.u.R_STATFS.capacity, cap, "df sums the capacity of every node");
	cr_assert_gt(rep.u.R_STATFS.free, 0);
}

Test(storaged, sigterm_stops_every_node_with_status_0)
{
	struct pifs_frame f = make_frame(10000, 7);
	uint32_t chain[] = {1};
	struct pifs_msg rep;
	int i, st;

	write_conf(17190);
	for (i = 1; i <= NODES; i++)
		start(i);
	cr_assert_eq(put(3, &f, chain, 1, 0, &rep), 0);
	for (i = NODES; i >= 1; i--) {
		st = stop(i);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "node %d: status %d", i, st);
	}
	pifs_frame_release(&f);
}

Test(storaged, a_bad_config_or_command_line_exits_2_and_starts_nothing)
{
	const char *bad_node[] = {"pifs-storaged", "-c", c.conf, "-n", "9", NULL};
	const char *bad_flag[] = {"pifs-storaged", "--frobnicate", NULL};
	const char *no_conf[] = {"pifs-storaged", "-c", "/nonexistent/pifs.conf", "-n", "1", NULL};
	const char *bad_conf[] = {"pifs-storaged", "-c", c.conf, "-n", "1", NULL};
	char data[128];
	struct stat sb;
	FILE *f;
	int st;

	write_conf(17195);
	st = wait_exit(spawn(bad_node), WAIT_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	st = wait_exit(spawn(bad_flag), WAIT_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	st = wait_exit(spawn(no_conf), WAIT_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	f = fopen(c.conf, "a");
	cr_assert_not_null(f);
	fputs("adress = 1.2.3.4:5\n", f);
	fclose(f);
	st = wait_exit(spawn(bad_conf), WAIT_MS);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	snprintf(data, sizeof(data), "%s/n1", c.dir);
	cr_assert_neq(stat(data, &sb), 0, "nothing may start on a bad config");
}

Test(storaged, a_node_that_stops_is_marked_down_then_out_and_comes_back_up_and_in)
{
	uint32_t flags[MAXN + 1];
	uint64_t epoch, later;
	int64_t t0, until;

	write_conf_at(c.conf, 17100, FAST, "1M");
	start(1);
	start(2);
	start(3);
	epoch = settle(0xe);
	t0 = pifs_now_ms();
	crash(3);
	until = t0 + 5000;
	do {
		usleep(50000);
		later = voter_map(flags, NULL);
	} while ((flags[3] & PIFS_NODE_UP) && pifs_now_ms() < until);
	cr_assert_not(flags[3] & PIFS_NODE_UP, "node 3 is still up 5 s after its crash");
	cr_assert_geq(pifs_now_ms() - t0, 900, "marked down before down_after");
	cr_assert(flags[3] & PIFS_NODE_IN, "a node down is still in, for its grace period");
	cr_assert_gt(later, epoch, "marking a node down makes a new map");
	cr_assert(flags[1] & flags[2] & PIFS_NODE_UP);
	cr_assert(logged("node 3 is down (no heartbeat for "));
	/* The other daemons learn it from the epoch. */
	settle(0x6);
	do {
		usleep(50000);
		voter_map(flags, NULL);
	} while ((flags[3] & PIFS_NODE_IN) && pifs_now_ms() < t0 + 8000);
	cr_assert_not(flags[3] & PIFS_NODE_IN, "node 3 is still in past out_after");
	cr_assert(logged("node 3 is out: its chunks are being copied to other nodes"));
	start(3);
	settle(0xe);
	voter_map(flags, NULL);
	cr_assert(flags[3] & PIFS_NODE_IN, "a node that returns is in again");
	cr_assert(logged("node 3 is up"));
}

Test(storaged, the_map_stays_as_it_was_across_a_restart_of_the_voter)
{
	uint32_t flags[MAXN + 1];
	uint64_t epoch;

	write_conf_at(c.conf, 17114, FAST, "1M");
	start(1);
	start(2);
	start(3);
	epoch = settle(0xe);
	stop(1);
	start(1);
	/* Within down_after of the restart, nobody is marked down. */
	cr_assert_eq(voter_map(flags, NULL), epoch);
	cr_assert(flags[1] & flags[2] & flags[3] & PIFS_NODE_UP);
	usleep(1500000);
	cr_assert_eq(voter_map(flags, NULL), epoch, "the nodes kept beating: nothing changed");
}

Test(storaged, a_forward_to_a_node_the_map_says_is_down_is_not_attempted)
{
	struct pifs_frame f = make_frame(50000, 60);
	uint32_t chain[] = {3};
	struct pifs_msg rep;
	char nodes[64];
	int64_t t0;

	write_conf_at(c.conf, 17124, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	crash(3);
	settle(0x6);
	t0 = pifs_now_ms();
	cr_assert_eq(put(2, &f, chain, 1, 0, &rep), 0);
	cr_assert_lt(pifs_now_ms() - t0, 250, "the write waited for a dead node");
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "2");
	pifs_frame_release(&f);
}

Test(storaged, chunk_has_says_which_chunks_a_node_holds_and_work_start_checks_its_flags)
{
	struct pifs_frame f = make_frame(40000, 61), g = make_frame(40000, 62);
	struct pifs_msg req, rep;
	struct pifs_chunkid rec;
	struct pifs_buf ids;

	write_conf(17134);
	start(1);
	cr_assert_eq(put(1, &f, NULL, 0, 0, &rep), 0);
	pifs_buf_init(&ids);
	rec.id = g.hdr.id;
	cr_assert_eq(pifs_chunkid_append(&ids, &rec), 0);
	rec.id = f.hdr.id;
	cr_assert_eq(pifs_chunkid_append(&ids, &rec), 0);
	pifs_msg_init(&req, PIFS_MSG_CHUNK_HAS);
	req.u.CHUNK_HAS.ids = pifs_list_of(&ids, 2);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_HAS);
	cr_assert_eq(rep.u.R_HAS.have.len, 2);
	cr_assert_eq(rep.u.R_HAS.have.p[0], 0);
	cr_assert_eq(rep.u.R_HAS.have.p[1], 1);
	pifs_msg_init(&req, PIFS_MSG_WORK_START);
	req.u.WORK_START.flags = 7;
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), -EINVAL);
	pifs_buf_fini(&ids);
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

Test(storaged, a_chunk_on_one_owner_gets_its_second_copy_from_a_heal_pass)
{
	uint32_t order[MAXN];
	struct pifs_frame f;
	struct pifs_msg rep;
	struct pifs_work w;

	write_conf_at(c.conf, 17144, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(false, order);
	/* The passes that the last map started are over by now. */
	usleep(500000);
	/* Only the first owner gets it, as if the second had lost it. */
	cr_assert_eq(put((int)order[0], &f, NULL, 0, 0, &rep), 0);
	usleep(300000);
	cr_assert_not(has_chunk_file((int)order[1], &f.hdr.id), "no pass was due yet");
	w = wait_heal_pass((int)order[0], 10000);
	cr_assert(wait_file((int)order[1], &f.hdr.id, true, 2000),
		  "the second owner did not get its copy");
	cr_assert(same_file((int)order[1], &f));
	cr_assert_not(has_chunk_file((int)order[2], &f.hdr.id), "a non-owner got a copy");
	cr_assert_geq(w.moved_chunks, 1);
	cr_assert_geq(w.moved_bytes, f.len);
	cr_assert_eq(w.heal_chunks, 0, "nothing is left once the copy is made");
	pifs_frame_release(&f);
}

Test(storaged, a_stand_in_copy_goes_home_and_is_deleted_when_the_owner_returns)
{
	uint32_t order[MAXN], chain[1];
	struct pifs_frame f;
	int o0, o1, s;
	struct pifs_msg rep;
	struct pifs_work w;
	char nodes[64];

	write_conf_at(c.conf, 17154, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(true, order);
	o0 = (int)order[0];
	o1 = (int)order[1];
	s = (int)order[2];
	/* The second owner is down: the writer puts the copy on the next node. */
	stop(o1);
	settle((1u << o0) | (1u << s));
	chain[0] = (uint32_t)s;
	cr_assert_eq(put(o0, &f, chain, 1, 0, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert(has_chunk_file(s, &f.hdr.id), "the stand-in did not store it (%s)", nodes);
	/* While the owner is down the stand-in keeps its copy. */
	w = wait_heal_pass(s, 10000);
	cr_assert(has_chunk_file(s, &f.hdr.id), "a stand-in dropped a copy while an owner is down");
	cr_assert_geq(w.heal_chunks, 1, "the stand-in copy is away from its owners");
	start(o1);
	settle(0xe);
	wait_heal_pass(o0, 10000);
	cr_assert(wait_file(o1, &f.hdr.id, true, 3000), "the owner did not get its copy back");
	w = wait_heal_pass(s, 10000);
	cr_assert(wait_file(s, &f.hdr.id, false, 3000), "the stand-in kept its copy");
	cr_assert(has_chunk_file(o0, &f.hdr.id) && has_chunk_file(o1, &f.hdr.id));
	cr_assert_eq(w.heal_chunks, 0);
	pifs_frame_release(&f);
}

Test(storaged, scrub_finds_a_flipped_bit_and_repairs_it_from_the_other_copy)
{
	uint32_t order[MAXN], chain[1];
	struct pifs_frame f;
	int o0, o1;
	struct pifs_msg req, rep;
	struct pifs_nodestat ns;
	struct pifs_cursor cur;
	struct pifs_work w;
	int64_t until;
	bool seen = false;

	write_conf_at(c.conf, 17164, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(false, order);
	o0 = (int)order[0];
	o1 = (int)order[1];
	chain[0] = (uint32_t)o1;
	cr_assert_eq(put(o0, &f, chain, 1, PIFS_PUT_SYNC, &rep), 0);
	flip_bit(o0, &f, 1000);
	work_start(o0, PIFS_WORK_SCRUB);
	w = wait_scrub_pass(o0, 1, 10000);
	cr_assert_eq(w.scrub_corrupt, 1);
	cr_assert_eq(w.scrub_repaired, 1);
	cr_assert_eq(w.scrub_unrepairable, 0);
	cr_assert_eq(w.scrub_running, 0);
	cr_assert_eq(w.scrub_done, 1);
	cr_assert(same_file(o0, &f), "the copy was not repaired");
	cr_assert(same_file(o1, &f));
	/* The figures reach the metadata service with the heartbeats. */
	until = pifs_now_ms() + 3000;
	while (!seen && pifs_now_ms() < until) {
		pifs_msg_init(&req, PIFS_MSG_CLUSTER_STAT);
		cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
		pifs_cursor_init(&cur, &rep.u.R_CLUSTER.nodes);
		while (pifs_nodestat_next(&cur, &ns) == 1)
			if (ns.id == (uint32_t)o0)
				seen = ns.work.scrub_repaired == 1 && ns.work.scrub_passes == 1;
		if (!seen)
			usleep(50000);
	}
	cr_assert(seen, "CLUSTER_STAT does not carry node %d's scrub figures", o0);
	pifs_frame_release(&f);
}

Test(storaged, a_corrupt_read_is_repaired_at_once)
{
	uint32_t order[MAXN], chain[1];
	struct pifs_frame f;
	int o0, o1;
	struct pifs_msg rep;
	const void *p;
	size_t plen;

	write_conf_at(c.conf, 17174, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(false, order);
	o0 = (int)order[0];
	o1 = (int)order[1];
	chain[0] = (uint32_t)o1;
	cr_assert_eq(put(o0, &f, chain, 1, 0, &rep), 0);
	flip_bit(o0, &f, 5);
	cr_assert_eq(get(o0, &f.hdr.id, &rep, &p, &plen), -EBADMSG);
	cr_assert(wait_file(o0, &f.hdr.id, true, 3000), "the corrupt read was not repaired");
	cr_assert_eq(get(o0, &f.hdr.id, &rep, &p, &plen), 0);
	cr_assert_eq(plen, f.len);
	cr_assert_arr_eq(p, f.data, f.len);
	cr_assert(node_stat(o0, &rep));
	cr_assert_eq(rep.u.R_NODE.work.scrub_corrupt, 1);
	cr_assert_eq(rep.u.R_NODE.work.scrub_repaired, 1);
	pifs_frame_release(&f);
}

Test(storaged, a_chunk_corrupt_on_every_copy_counts_as_unrepairable_and_is_never_served)
{
	uint32_t order[MAXN], chain[1];
	struct pifs_frame f;
	int o0, o1;
	struct pifs_msg rep;
	struct pifs_work w;
	const void *p;
	size_t plen;

	write_conf_at(c.conf, 17104, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(false, order);
	o0 = (int)order[0];
	o1 = (int)order[1];
	chain[0] = (uint32_t)o1;
	cr_assert_eq(put(o0, &f, chain, 1, 0, &rep), 0);
	flip_bit(o0, &f, 77);
	flip_bit(o1, &f, 99);
	work_start(o0, PIFS_WORK_SCRUB);
	w = wait_scrub_pass(o0, 1, 10000);
	cr_assert_eq(w.scrub_corrupt, 1);
	cr_assert_eq(w.scrub_repaired, 0);
	cr_assert_eq(w.scrub_unrepairable, 1);
	cr_assert_eq(w.lost, 1);
	cr_assert_neq(get(o0, &f.hdr.id, &rep, &p, &plen), 0);
	cr_assert_neq(get(o1, &f.hdr.id, &rep, &p, &plen), 0);
	cr_assert(logged("is corrupt here and none of the"));
	pifs_frame_release(&f);
}

Test(storaged, a_chunk_with_no_good_copy_stays_lost_across_a_restart_until_one_comes_back)
{
	const int ports[] = {0, 17100, 17114, 17124};
	uint32_t order[MAXN], chain[1];
	struct pifs_frame f;
	struct pifs_msg rep;
	struct pifs_work w;
	const void *p;
	size_t plen;
	int64_t until;
	int o0, o1, st;

	write_conf_ports(c.conf, ports, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	f = frame_ranked(false, order);
	o0 = (int)order[0];
	o1 = (int)order[1];
	chain[0] = (uint32_t)o1;
	cr_assert_eq(put(o0, &f, chain, 1, 0, &rep), 0);
	/* The good copy is away while the bad one is found. */
	st = stop(o1);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	settle(0xe & ~(1u << o1));
	flip_bit(o0, &f, 123);
	work_start(o0, PIFS_WORK_SCRUB);
	w = wait_scrub_pass(o0, 1, 10000);
	cr_assert_eq(w.scrub_unrepairable, 1);
	cr_assert_eq(w.lost, 1);
	st = stop(o0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	start(o0);
	cr_assert(node_stat(o0, &rep));
	cr_assert_eq(rep.u.R_NODE.work.scrub_unrepairable, 0, "that figure is the daemon's own");
	cr_assert_eq(rep.u.R_NODE.work.lost, 1, "a lost chunk must not be forgotten at a restart");
	cr_assert(logged("have no good copy here"));
	/* The node with the good copy is back: the chunk comes back too. */
	start(o1);
	settle(0xe);
	until = pifs_now_ms() + 15000;
	do {
		work_start(o0, PIFS_WORK_SCRUB);
		usleep(300000);
		cr_assert(node_stat(o0, &rep));
	} while (rep.u.R_NODE.work.lost && pifs_now_ms() < until);
	cr_assert_eq(rep.u.R_NODE.work.lost, 0, "the chunk was not brought back");
	cr_assert_eq(get(o0, &f.hdr.id, &rep, &p, &plen), 0);
	st = stop(o0);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	start(o0);
	cr_assert(node_stat(o0, &rep));
	cr_assert_eq(rep.u.R_NODE.work.lost, 0);
	pifs_frame_release(&f);
}

Test(storaged, heal_reports_each_copy_as_it_is_made_and_no_rate_once_idle)
{
	enum { N = 10 };
	const int ports[] = {0, 17134, 17144, 17154};
	struct pifs_frame fr[N];
	uint32_t order[MAXN];
	struct pifs_msg rep;
	struct pifs_work w;
	uint64_t passes;
	unsigned seed = 8000;
	bool mid = false, rated = false;
	int64_t until;
	int i;

	write_conf_ports(c.conf, ports, FAST "\nheal_rate = 100K", "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	/* 600 KB for node 1 to copy at 100 KB/s: a pass of six seconds. */
	for (i = 0; i < N; i++) {
		do {
			fr[i] = noise_frame(60000, seed++);
			owners(&fr[i].hdr.id, order);
			if (order[0] != 1)
				pifs_frame_release(&fr[i]);
		} while (order[0] != 1 && seed < 9000);
		cr_assert_eq(order[0], 1);
		cr_assert_eq(put(1, &fr[i], NULL, 0, 0, &rep), 0);
	}
	cr_assert(node_stat(1, &rep));
	passes = rep.u.R_NODE.work.heal_passes;
	cr_assert_eq(rep.u.R_NODE.work.heal_running, 0);
	work_start(1, PIFS_WORK_HEAL);
	until = pifs_now_ms() + 15000;
	do {
		usleep(100000);
		cr_assert(node_stat(1, &rep));
		w = rep.u.R_NODE.work;
		if (w.heal_passes == passes && w.moved_chunks >= 2 && w.moved_chunks <= N - 3) {
			/* A stat may fall between a copy and its count. */
			cr_assert_eq(w.heal_running, 1);
			cr_assert(w.heal_chunks == N - w.moved_chunks ||
				      w.heal_chunks == N + 1 - w.moved_chunks,
				  "heal_chunks %llu after %llu copies of %d: it should follow the "
				  "copies one by one",
				  (unsigned long long)w.heal_chunks,
				  (unsigned long long)w.moved_chunks, N);
			cr_assert(w.degraded == N - w.moved_chunks ||
				  w.degraded == N + 1 - w.moved_chunks);
			mid = true;
			/* The meter needs a second of copies to read a rate. */
			rated = rated || w.heal_rate > 0;
		}
	} while (w.heal_passes == passes && pifs_now_ms() < until);
	cr_assert_gt(w.heal_passes, passes, "the pass did not end in time");
	cr_assert(mid, "no report was seen in the middle of the pass");
	cr_assert(rated, "no copy rate was reported while copying");
	cr_assert_eq(w.heal_running, 0);
	cr_assert_eq(w.heal_chunks, 0);
	cr_assert_eq(w.moved_chunks, N);
	/* Longer than heal_rate's idle time, shorter than the meter's window. */
	usleep(4000000);
	cr_assert(node_stat(1, &rep));
	cr_assert_eq(rep.u.R_NODE.work.heal_rate, 0, "a loop that copies nothing has no rate");
	for (i = 0; i < N; i++)
		pifs_frame_release(&fr[i]);
}

Test(storaged, heal_converges_on_more_chunks_than_one_batch_and_leaves_nothing_to_do)
{
	enum { N = 700 };
	struct pifs_frame *f = calloc(N, sizeof(*f));
	uint32_t order[N][MAXN];
	struct pifs_msg rep;
	struct pifs_work w;
	int i, node, misplaced = 0;

	cr_assert_not_null(f);
	write_conf_at(c.conf, 17117, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	usleep(500000);
	for (i = 0; i < N; i++) {
		f[i] = make_frame(1000, 1000 + (unsigned)i);
		cr_assert_eq(owners(&f[i].hdr.id, order[i]), NODES);
		/* Every chunk on its second owner only, as if its first had lost it. */
		cr_assert_eq(put((int)order[i][1], &f[i], NULL, 0, 0, &rep), 0);
	}
	for (node = 1; node <= NODES; node++)
		wait_heal_pass(node, 20000);
	for (node = 1; node <= NODES; node++) {
		w = wait_heal_pass(node, 20000);
		cr_assert_eq(w.heal_chunks, 0, "node %d has %llu chunks left", node,
			     (unsigned long long)w.heal_chunks);
		cr_assert_eq(w.degraded, 0);
	}
	for (i = 0; i < N; i++) {
		misplaced += !has_chunk_file((int)order[i][0], &f[i].hdr.id) ||
			     !has_chunk_file((int)order[i][1], &f[i].hdr.id) ||
			     has_chunk_file((int)order[i][2], &f[i].hdr.id);
		pifs_frame_release(&f[i]);
	}
	cr_assert_eq(misplaced, 0, "%d chunks are not on exactly their owners", misplaced);
	free(f);
}

Test(storaged, when_a_node_is_out_the_others_restore_every_second_copy)
{
	enum { N = 60 };
	struct pifs_frame *f = calloc(N, sizeof(*f));
	uint32_t order[MAXN], flags[MAXN + 1], chain[1];
	struct pifs_msg rep;
	int64_t until;
	int i, node, had3 = 0, short_of = 0;

	cr_assert_not_null(f);
	write_conf_at(c.conf, 17127, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	for (i = 0; i < N; i++) {
		f[i] = make_frame(2000, 2000 + (unsigned)i);
		owners(&f[i].hdr.id, order);
		chain[0] = order[1];
		cr_assert_eq(put((int)order[0], &f[i], chain, 1, 0, &rep), 0);
		had3 += has_chunk_file(3, &f[i].hdr.id);
	}
	cr_assert_gt(had3, N / 3, "too few chunks on node 3 for the test to mean much");
	crash(3);
	until = pifs_now_ms() + 8000;
	do {
		usleep(50000);
		voter_map(flags, NULL);
	} while ((flags[3] & PIFS_NODE_IN) && pifs_now_ms() < until);
	cr_assert_not(flags[3] & PIFS_NODE_IN, "node 3 was not marked out");
	settle(0x6);
	for (node = 1; node <= 2; node++)
		wait_heal_pass(node, 10000);
	for (i = 0; i < N; i++) {
		short_of += !has_chunk_file(1, &f[i].hdr.id) || !has_chunk_file(2, &f[i].hdr.id);
		pifs_frame_release(&f[i]);
	}
	cr_assert_eq(short_of, 0, "%d chunks have fewer than two copies", short_of);
	free(f);
}

Test(storaged, a_full_node_refuses_chunks_serves_reads_and_the_chain_goes_on_without_it)
{
	struct pifs_frame f = make_frame(30000, 63), g = make_frame(30000, 64);
	uint32_t chain2[] = {2, 3}, chain3[] = {3};
	char full[128], nodes[64];
	struct pifs_msg rep;
	const void *p;
	size_t plen;

	snprintf(full, sizeof(full), "%s/full.conf", c.dir);
	write_conf_at(full, 17107, FAST, "1000000G");
	write_conf_at(c.conf, 17107, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	cr_assert_eq(put(2, &f, NULL, 0, 0, &rep), 0);
	/* Node 2 again, now with a reserve larger than any disk. */
	stop(2);
	start_with(2, full);
	settle(0xe);
	cr_assert_eq(put(2, &g, NULL, 0, 0, &rep), -ENOSPC);
	cr_assert_not(has_chunk_file(2, &g.hdr.id));
	cr_assert_eq(get(2, &f.hdr.id, &rep, &p, &plen), 0, "a full node still serves reads");
	cr_assert_eq(plen, f.len);
	/* Full in the middle of a chain: the nodes that stored it answer. */
	cr_assert_eq(put(1, &g, chain2, 2, 0, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "1,3");
	/* Full at the head: it still passes the chunk on. */
	pifs_frame_release(&g);
	g = make_frame(30000, 65);
	cr_assert_eq(put(2, &g, chain3, 1, 0, &rep), 0);
	nodes_of(&rep, nodes, sizeof(nodes));
	cr_assert_str_eq(nodes, "3");
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

/* Growing and shrinking: garbage collection, plans, new nodes, drains. */

/* A mutation or query to the voter; returns its status. */
static int meta_call(struct pifs_msg *req, struct pifs_msg *rep)
{
	return pifs_rpc_call(rpc_to(1), req, NULL, 0, rep, NULL, NULL, WAIT_MS);
}

/* Create /@name holding the one chunk @f; returns its inode. */
static uint64_t commit_file(const char *name, const struct pifs_frame *f)
{
	struct pifs_chunkref ref;
	struct pifs_msg req, rep;
	struct pifs_buf refs;
	uint64_t ino;

	pifs_msg_init(&req, PIFS_MSG_MKNOD);
	req.u.MKNOD.parent = 1;
	req.u.MKNOD.name = pifs_str_of(name);
	req.u.MKNOD.mode = S_IFREG | 0644;
	cr_assert_eq(meta_call(&req, &rep), 0);
	ino = rep.u.R_ATTR.attr.ino;
	pifs_buf_init(&refs);
	memset(&ref, 0, sizeof(ref));
	ref.id = f->hdr.id;
	ref.len = ref.raw_len = f->hdr.raw_len;
	ref.stored_len = f->hdr.stored_len;
	cr_assert_eq(pifs_chunkref_append(&refs, &ref), 0);
	pifs_msg_init(&req, PIFS_MSG_COMMIT);
	req.u.COMMIT.ino = ino;
	req.u.COMMIT.size = f->hdr.raw_len;
	req.u.COMMIT.refs = pifs_list_of(&refs, 1);
	cr_assert_eq(meta_call(&req, &rep), 0);
	pifs_buf_fini(&refs);
	return ino;
}

static void unlink_file(const char *name)
{
	struct pifs_msg req, rep;

	pifs_msg_init(&req, PIFS_MSG_UNLINK);
	req.u.UNLINK.parent = 1;
	req.u.UNLINK.name = pifs_str_of(name);
	cr_assert_eq(meta_call(&req, &rep), 0);
}

/* Make node @node's copy of chunk @id look written @secs seconds ago. */
static void backdate(int node, const struct pifs_chunk_id *id, long secs)
{
	char hex[33], path[192];
	struct timespec t[2];

	pifs_chunk_id_hex(id, hex);
	snprintf(path, sizeof(path), "%s/n%d/chunks/%.2s/%.2s/%s", c.dir, node, hex, hex + 2, hex);
	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= secs;
	t[1] = t[0];
	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* Start a garbage collection sweep (@flags: PIFS_WORK_GC, with or without
 * PIFS_WORK_DRYRUN) on node @id and wait for it to end. */
static struct pifs_work gc_sweep(int id, uint32_t flags)
{
	int64_t until = pifs_now_ms() + WAIT_MS;
	struct pifs_msg rep;
	uint64_t passes;

	cr_assert(node_stat(id, &rep));
	passes = rep.u.R_NODE.work.gc_passes;
	work_start(id, flags);
	while (pifs_now_ms() < until) {
		cr_assert(node_stat(id, &rep));
		if (rep.u.R_NODE.work.gc_passes > passes)
			return rep.u.R_NODE.work;
		usleep(20000);
	}
	cr_assert_fail("node %d finished no garbage collection sweep in time", id);
	return rep.u.R_NODE.work;
}

#define GC_FAST FAST "\ngc_interval = 0\ngc_grace = 2s"

Test(storaged, gc_deletes_an_unreferenced_chunk_only_after_the_grace_and_never_a_referenced_one)
{
	struct pifs_frame a = make_frame(30000, 70), b = make_frame(30000, 71);
	struct pifs_msg rep;
	struct pifs_work w;
	int64_t t0;

	write_conf_at(c.conf, 17167, GC_FAST, "1M");
	start(1);
	start(2);
	settle(0x6);
	cr_assert_eq(put(1, &a, NULL, 0, 0, &rep), 0);
	cr_assert_eq(put(1, &b, NULL, 0, 0, &rep), 0);
	t0 = pifs_now_ms();
	commit_file("kept.jpg", &a);
	w = gc_sweep(1, PIFS_WORK_GC);
	cr_assert(has_chunk_file(1, &a.hdr.id) && has_chunk_file(1, &b.hdr.id),
		  "a chunk went within its grace");
	cr_assert_eq(w.gc_deleted_chunks, 0);
	cr_assert_eq(w.gc_chunks, 0, "nothing is reclaimable within the grace");
	usleep((useconds_t)(t0 + 2300 - pifs_now_ms()) * 1000);
	w = gc_sweep(1, PIFS_WORK_GC | PIFS_WORK_DRYRUN);
	cr_assert_eq(w.gc_chunks, 1);
	cr_assert_eq(w.gc_bytes, b.len);
	cr_assert_eq(w.gc_deleted_chunks, 0);
	cr_assert(has_chunk_file(1, &b.hdr.id), "a dry run deleted a chunk");
	w = gc_sweep(1, PIFS_WORK_GC);
	cr_assert_not(has_chunk_file(1, &b.hdr.id), "the unreferenced chunk is still there");
	cr_assert(has_chunk_file(1, &a.hdr.id), "a referenced chunk was deleted");
	cr_assert_eq(w.gc_deleted_chunks, 1);
	cr_assert_eq(w.gc_deleted_bytes, b.len);
	cr_assert_eq(w.gc_chunks, 0, "nothing reclaimable is left");
	/* Once its file is gone, the chunk goes too. */
	unlink_file("kept.jpg");
	w = gc_sweep(1, PIFS_WORK_GC);
	cr_assert_not(has_chunk_file(1, &a.hdr.id));
	cr_assert_eq(w.gc_deleted_chunks, 2);
	cr_assert(logged("garbage collection sweep"));
	pifs_frame_release(&a);
	pifs_frame_release(&b);
}

#define GC_STOPPED "garbage collection stopped: the metadata service (voters: node 1 at "

Test(storaged, gc_deletes_nothing_while_the_metadata_service_cannot_be_asked)
{
	struct pifs_frame f = make_frame(20000, 72);
	struct pifs_msg rep;
	int64_t until;
	uint64_t passes;

	const int ports[] = {0, 17189, 17190, 17194};

	write_conf_ports(c.conf, ports, GC_FAST, "1M");
	start(1);
	start(2);
	settle(0x6);
	cr_assert_eq(put(2, &f, NULL, 0, 0, &rep), 0);
	backdate(2, &f.hdr.id, 3600);
	usleep(2300000); /* past node 2's first gc_grace */
	stop(1);
	cr_assert(node_stat(2, &rep));
	passes = rep.u.R_NODE.work.gc_passes;
	work_start(2, PIFS_WORK_GC);
	until = pifs_now_ms() + 10000;
	while (!logged(GC_STOPPED) && pifs_now_ms() < until)
		usleep(100000);
	cr_assert(logged(GC_STOPPED));
	cr_assert(has_chunk_file(2, &f.hdr.id), "a chunk went without asking the metadata");
	cr_assert(node_stat(2, &rep));
	cr_assert_eq(rep.u.R_NODE.work.gc_passes, passes, "a sweep that could not ask counted");
	pifs_frame_release(&f);
}

/* Wait up to @ms for the file @path to exist. */
static bool wait_path(const char *path, int ms)
{
	int64_t until = pifs_now_ms() + ms;
	struct stat sb;

	while (stat(path, &sb) < 0 && pifs_now_ms() < until)
		usleep(10000);
	return stat(path, &sb) == 0;
}

static void touch_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	cr_assert_geq(fd, 0);
	close(fd);
}

Test(storaged, a_chunk_uploaded_again_between_the_question_and_the_delete_is_kept)
{
	struct pifs_frame f = make_frame(25000, 73);
	char gate[128], asked[140];
	struct pifs_msg rep;
	uint64_t passes;
	int64_t until;

	snprintf(gate, sizeof(gate), "%s/gate", c.dir);
	snprintf(asked, sizeof(asked), "%s.asked", gate);
	cr_assert_eq(setenv("PIFS_TEST_GC_GATE", gate, 1), 0);
	write_conf_at(c.conf, 17177, GC_FAST, "1M");
	start(1);
	settle(0x2);
	cr_assert_eq(put(1, &f, NULL, 0, 0, &rep), 0);
	backdate(1, &f.hdr.id, 3600);
	usleep(2300000); /* past the daemon's first gc_grace */
	/* The sweep asks, learns the chunk is unreferenced and old, and waits
	 * at the gate: a client uploads the same content right then. */
	cr_assert(node_stat(1, &rep));
	passes = rep.u.R_NODE.work.gc_passes;
	work_start(1, PIFS_WORK_GC);
	cr_assert(wait_path(asked, WAIT_MS), "the sweep never reached its gate");
	cr_assert_eq(put(1, &f, NULL, 0, 0, &rep), 0);
	touch_path(gate);
	until = pifs_now_ms() + WAIT_MS;
	do {
		usleep(20000);
		cr_assert(node_stat(1, &rep));
	} while (rep.u.R_NODE.work.gc_passes == passes && pifs_now_ms() < until);
	cr_assert_gt(rep.u.R_NODE.work.gc_passes, passes, "the sweep did not end");
	cr_assert(has_chunk_file(1, &f.hdr.id), "a chunk uploaded during the sweep was deleted");
	cr_assert_eq(rep.u.R_NODE.work.gc_deleted_chunks, 0);
	/* The same sweep without the upload deletes it: the gate held a real
	 * deletion back. */
	backdate(1, &f.hdr.id, 3600);
	work_start(1, PIFS_WORK_GC);
	cr_assert(wait_path(asked, WAIT_MS), "the sweep never reached its gate");
	touch_path(gate);
	cr_assert(wait_file(1, &f.hdr.id, false, WAIT_MS), "the old chunk was not deleted");
	pifs_frame_release(&f);
}

static void node_set(uint32_t id, uint32_t set, uint32_t clear)
{
	struct pifs_msg req, rep;

	pifs_msg_init(&req, PIFS_MSG_NODE_SET);
	req.u.NODE_SET.id = id;
	req.u.NODE_SET.set = set;
	req.u.NODE_SET.clear = clear;
	cr_assert_eq(meta_call(&req, &rep), 0);
}

/* Wait until every running node has installed the voter's map. */
static void sync_maps(void)
{
	int64_t until = pifs_now_ms() + 10000;
	uint32_t flags[MAXN + 1];
	struct pifs_msg rep;
	uint64_t epoch;
	bool ok = false;
	int i;

	while (!ok && pifs_now_ms() < until) {
		epoch = voter_map(flags, NULL);
		ok = true;
		for (i = 1; ok && i <= MAXN; i++)
			if (c.pid[i] > 0)
				ok = node_stat(i, &rep) && rep.epoch == epoch;
		if (!ok)
			usleep(50000);
	}
	cr_assert(ok, "the nodes did not all install the map within 10 s");
}

static int files_seen;

static int count_file(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path;
	(void)sb;
	files_seen += flag == FTW_F && ftw->level == 3;
	return 0;
}

/* The chunk files of node @node. */
static int count_chunks(int node)
{
	char path[128];

	files_seen = 0;
	snprintf(path, sizeof(path), "%s/n%d/chunks", c.dir, node);
	nftw(path, count_file, 16, FTW_PHYS);
	return files_seen;
}

/* Store @n chunks of @size bytes (seeds from @seed) on their two owners
 * among the nodes in; the frames go in @f. */
static void fill(struct pifs_frame *f, int n, size_t size, unsigned seed)
{
	uint32_t order[MAXN], chain[1];
	struct pifs_msg rep;
	int i;

	for (i = 0; i < n; i++) {
		f[i] = make_frame(size, seed + (unsigned)i);
		owners(&f[i].hdr.id, order);
		chain[0] = order[1];
		cr_assert_eq(put((int)order[0], &f[i], chain, 1, 0, &rep), 0);
	}
}

/* A whole heal pass that starts after now on every running node, in turn,
 * @rounds times. */
static void heal_all(int rounds)
{
	int r, i;

	for (r = 0; r < rounds; r++)
		for (i = 1; i <= MAXN; i++)
			if (c.pid[i] > 0)
				wait_heal_pass(i, 20000);
}

/* How many of the @n chunks @f are not on exactly their owners. */
static int misplaced(const struct pifs_frame *f, int n)
{
	uint32_t order[MAXN];
	int i, k, nin, bad = 0;

	for (i = 0; i < n; i++) {
		nin = owners(&f[i].hdr.id, order);
		for (k = 0; k < nin; k++)
			if (has_chunk_file((int)order[k], &f[i].hdr.id) != (k < 2))
				break;
		bad += k < nin;
	}
	return bad;
}

/* PLAN on node @id: its totals in @chunks and @bytes; every move must be
 * from @id, to @to (if not 0), and add up to the totals. */
static int plan(int id, uint32_t flags, uint32_t to, uint64_t *chunks, uint64_t *bytes)
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_move mv;
	uint64_t sc = 0, sb = 0;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_PLAN);
	req.u.PLAN.flags = flags;
	rc = pifs_rpc_call(rpc_to(id), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS);
	if (rc < 0)
		return rc;
	cr_assert_eq(rep.type, PIFS_MSG_R_PLAN);
	pifs_cursor_init(&cur, &rep.u.R_PLAN.moves);
	while (pifs_move_next(&cur, &mv) == 1) {
		cr_assert_eq(mv.from, (uint32_t)id);
		if (to)
			cr_assert_eq(mv.to, to, "node %d plans a move to node %u", id, mv.to);
		sc += mv.chunks;
		sb += mv.bytes;
	}
	cr_assert_eq(sc, rep.u.R_PLAN.chunks);
	cr_assert_eq(sb, rep.u.R_PLAN.bytes);
	*chunks = sc;
	*bytes = sb;
	return 0;
}

/* The copies sent so far by every running node. */
static void moved_all(uint64_t *chunks, uint64_t *bytes)
{
	struct pifs_msg rep;
	int i;

	*chunks = *bytes = 0;
	for (i = 1; i <= MAXN; i++) {
		if (c.pid[i] <= 0)
			continue;
		cr_assert(node_stat(i, &rep));
		*chunks += rep.u.R_NODE.work.moved_chunks;
		*bytes += rep.u.R_NODE.work.moved_bytes;
	}
}

Test(storaged, a_plan_made_before_a_node_is_admitted_matches_what_the_rebalance_moves)
{
	enum { N = 300 };
	struct pifs_frame *f = calloc(N, sizeof(*f));
	uint64_t pc = 0, pb = 0, c0, b0, c1, b1, x, y;
	uint32_t flags[MAXN + 1];
	int i;

	cr_assert_not_null(f);
	write_conf_at(c.conf, 17137, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	fill(f, N, 4000, 3000);
	start_new(4, 17184);
	settle(0x1e);
	sync_maps();
	voter_map(flags, NULL);
	cr_assert_eq(flags[4], PIFS_NODE_NEW | PIFS_NODE_UP);
	cr_assert_eq(plan(1, 1, 0, &x, &y), -EINVAL);
	for (i = 1; i <= MAXN; i++) {
		cr_assert_eq(plan(i, 0, 0, &x, &y), 0);
		cr_assert_eq(x, 0, "node %d plans moves under a map that it already follows", i);
		cr_assert_eq(plan(i, PIFS_NODE_NEW, 4, &x, &y), 0);
		pc += x;
		pb += y;
	}
	/* Each chunk has two copies; adding a fourth equal node moves a
	 * quarter of them, and only to it. */
	cr_assert(pc >= N / 4 && pc <= 13 * (2 * N / 4) / 10, "planned %llu copies of %d",
		  (unsigned long long)pc, 2 * N);
	moved_all(&c0, &b0);
	node_set(4, PIFS_NODE_IN, PIFS_NODE_NEW);
	sync_maps();
	heal_all(2);
	moved_all(&c1, &b1);
	c1 -= c0;
	b1 -= b0;
	cr_assert(c1 * 100 >= pc * 95 && c1 * 100 <= pc * 105, "planned %llu copies, moved %llu",
		  (unsigned long long)pc, (unsigned long long)c1);
	cr_assert(b1 * 100 >= pb * 95 && b1 * 100 <= pb * 105, "planned %llu bytes, moved %llu",
		  (unsigned long long)pb, (unsigned long long)b1);
	cr_assert_eq((uint64_t)count_chunks(4), c1);
	cr_assert_eq(misplaced(f, N), 0, "chunks are not on exactly their owners");
	for (i = 0; i < N; i++)
		pifs_frame_release(&f[i]);
	free(f);
}

Test(storaged, a_new_node_joins_as_new_and_takes_nothing_until_it_is_admitted)
{
	enum { N = 60 };
	struct pifs_frame *f = calloc(N, sizeof(*f)), g = make_frame(5000, 4999);
	const char *impostor[] = {"pifs-storaged",   "-c",     c.conf, "-n", "4", "--listen",
				  "127.0.0.1:17174", "--data", NULL,   NULL};
	uint32_t flags[MAXN + 1], weights[MAXN + 1];
	struct pifs_msg rep;
	char other[128];
	int64_t until;
	int i;

	snprintf(other, sizeof(other), "%s/other", c.dir);
	impostor[8] = other;
	cr_assert_not_null(f);
	write_conf_at(c.conf, 17147, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	fill(f, N, 3000, 4000);
	start_new(4, 17185);
	settle(0x1e);
	voter_map(flags, weights);
	cr_assert_eq(flags[4], PIFS_NODE_NEW | PIFS_NODE_UP, "node 4 joined with flags %#x",
		     flags[4]);
	cr_assert_gt(weights[4], 0, "a new node's weight is its disk's size in GiB");
	cr_assert(logged("joins the cluster map as a new node"));
	sync_maps();
	heal_all(1);
	cr_assert_eq(count_chunks(4), 0, "a node not admitted got chunks");
	cr_assert_eq(put(4, &g, NULL, 0, 0, &rep), -EPERM);
	cr_assert_not(has_chunk_file(4, &g.hdr.id));
	/* Coming back after it was down does not admit it either. */
	crash(4);
	until = pifs_now_ms() + 5000;
	do {
		usleep(50000);
		voter_map(flags, NULL);
	} while ((flags[4] & PIFS_NODE_UP) && pifs_now_ms() < until);
	cr_assert_not(flags[4] & PIFS_NODE_UP);
	start_new(4, 17185);
	settle(0x1e);
	voter_map(flags, NULL);
	cr_assert_eq(flags[4], PIFS_NODE_NEW | PIFS_NODE_UP, "liveness made flags %#x", flags[4]);
	/* Another daemon that says it is node 4 does not pass for it. */
	c.pid[SLOTS] = spawn(impostor);
	until = pifs_now_ms() + WAIT_MS;
	while (!logged("node id 4 belongs to the node at 127.0.0.1:17185") && pifs_now_ms() < until)
		usleep(50000);
	cr_assert(logged("node id 4 belongs to the node at 127.0.0.1:17185"));
	kill(c.pid[SLOTS], SIGTERM);
	cr_assert_neq(wait_exit(c.pid[SLOTS], WAIT_MS), -1);
	c.pid[SLOTS] = 0;
	node_set(4, PIFS_NODE_IN, PIFS_NODE_NEW);
	sync_maps();
	cr_assert_eq(put(4, &g, NULL, 0, 0, &rep), 0, "an admitted node takes chunks");
	heal_all(1);
	cr_assert_gt(count_chunks(4), 1, "the admitted node got no share of the chunks");
	for (i = 0; i < N; i++)
		pifs_frame_release(&f[i]);
	free(f);
	pifs_frame_release(&g);
}

Test(storaged, a_drained_node_hands_its_chunks_to_their_owners_and_ends_empty)
{
	enum { N = 60 };
	struct pifs_frame *f = calloc(N, sizeof(*f));
	uint32_t flags[MAXN + 1];
	struct pifs_msg rep;
	int64_t until;
	int i, round, short_of = 0;

	cr_assert_not_null(f);
	write_conf_at(c.conf, 17157, FAST, "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	fill(f, N, 3000, 5000);
	cr_assert_gt(count_chunks(3), N / 3, "too few chunks on node 3 for the test to mean much");
	node_set(3, PIFS_NODE_DRAIN, PIFS_NODE_IN);
	/* A restart does not put a draining node back in. */
	stop(3);
	until = pifs_now_ms() + 5000;
	do {
		usleep(50000);
		voter_map(flags, NULL);
	} while ((flags[3] & PIFS_NODE_UP) && pifs_now_ms() < until);
	start(3);
	settle(0xe);
	voter_map(flags, NULL);
	cr_assert_eq(flags[3], PIFS_NODE_DRAIN | PIFS_NODE_UP, "node 3 came back with %#x",
		     flags[3]);
	sync_maps();
	for (round = 0; round < 3 && count_chunks(3); round++)
		heal_all(1);
	cr_assert_eq(count_chunks(3), 0, "the drained node still holds chunks");
	for (i = 0; i < N; i++) {
		short_of += !has_chunk_file(1, &f[i].hdr.id) || !has_chunk_file(2, &f[i].hdr.id);
		pifs_frame_release(&f[i]);
	}
	cr_assert_eq(short_of, 0, "%d chunks have fewer than two copies", short_of);
	cr_assert(node_stat(3, &rep));
	cr_assert_eq(rep.u.R_NODE.work.heal_chunks, 0);
	free(f);
}

Test(storaged, work_set_changes_the_copy_rate_of_a_pass_under_way)
{
	enum { N = 10 };
	const int ports[] = {0, 17195, 17199, 17104};
	struct pifs_frame f[N];
	uint32_t order[MAXN];
	struct pifs_msg req, rep;
	uint64_t passes;
	unsigned seed = 6000;
	int64_t until;
	int i;

	write_conf_ports(c.conf, ports, FAST "\nheal_rate = 100K", "1M");
	start(1);
	start(2);
	start(3);
	settle(0xe);
	/* Chunks whose first owner is node 1, on node 1 alone: node 1 must
	 * copy 600 KB, six seconds at 100 KB/s. */
	for (i = 0; i < N; i++) {
		do {
			f[i] = make_frame(60000, seed++);
			owners(&f[i].hdr.id, order);
			if (order[0] != 1)
				pifs_frame_release(&f[i]);
		} while (order[0] != 1 && seed < 7000);
		cr_assert_eq(order[0], 1);
		cr_assert_eq(put(1, &f[i], NULL, 0, 0, &rep), 0);
	}
	cr_assert(node_stat(1, &rep));
	passes = rep.u.R_NODE.work.heal_passes;
	work_start(1, PIFS_WORK_HEAL);
	usleep(1000000);
	cr_assert(node_stat(1, &rep));
	cr_assert_leq(rep.u.R_NODE.work.moved_bytes, 250000, "heal_rate was not kept");
	pifs_msg_init(&req, PIFS_MSG_WORK_SET);
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0,
		     "zero keeps both rates");
	req.u.WORK_SET.heal_rate = 100 << 20;
	cr_assert_eq(pifs_rpc_call(rpc_to(1), &req, NULL, 0, &rep, NULL, NULL, WAIT_MS), 0);
	until = pifs_now_ms() + 2500;
	do {
		usleep(50000);
		cr_assert(node_stat(1, &rep));
	} while (rep.u.R_NODE.work.heal_passes == passes && pifs_now_ms() < until);
	cr_assert_gt(rep.u.R_NODE.work.heal_passes, passes,
		     "the pass did not speed up with the new rate");
	cr_assert_eq(rep.u.R_NODE.work.moved_chunks, N);
	for (i = 0; i < N; i++)
		pifs_frame_release(&f[i]);
}

/* The node map, without daemons. */

static struct pifs_conf_node conf_nodes[2] = {
    {.id = 1, .addr = "10.0.0.1:7070", .data = "/srv/pifs", .meta = true},
    {.id = 2, .addr = "10.0.0.2:7070", .data = "/srv/pifs"},
};

static void conf_of_two(struct pifs_conf *conf)
{
	pifs_conf_init(conf);
	conf->n_nodes = 2;
	conf->nodes = conf_nodes;
}

/* An R_MAP of @n nodes (id, addr) at @epoch; the records go in @b. */
static struct pifs_msg_R_MAP map_of(struct pifs_buf *b, uint64_t epoch, int n, const uint32_t *ids,
				    const char *const *addrs)
{
	struct pifs_msg_R_MAP m;
	struct pifs_node node;
	int i;

	memset(&m, 0, sizeof(m));
	pifs_buf_reset(b);
	for (i = 0; i < n; i++) {
		node.id = ids[i];
		node.weight = 1;
		node.flags = PIFS_NODE_IN;
		node.addr = pifs_str_of(addrs[i]);
		cr_assert_eq(pifs_node_append(b, &node), 0);
	}
	m.epoch = epoch;
	m.nodes = pifs_list_of(b, (uint32_t)n);
	return m;
}

Test(nodemap, uses_the_config_until_a_map_arrives)
{
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	char ep[64];

	conf_of_two(&conf);
	pifs_nodemap_init(&nm, &conf);
	cr_assert_eq(pifs_nodemap_epoch(&nm), 0);
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 2, ep, sizeof(ep)), 0);
	cr_assert_str_eq(ep, "tcp://10.0.0.2:7070");
	pifs_nodemap_fini(&nm);
}

Test(nodemap, a_newer_map_moves_a_node_and_an_older_one_is_ignored)
{
	const uint32_t ids[] = {2, 3};
	const char *const moved[] = {"10.0.0.22:7070", "10.0.0.3:7070"};
	const char *const old[] = {"10.0.0.99:7070", "10.0.0.98:7070"};
	struct pifs_msg_R_MAP m;
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	struct pifs_buf b;
	char ep[64];

	conf_of_two(&conf);
	pifs_buf_init(&b);
	pifs_nodemap_init(&nm, &conf);
	m = map_of(&b, 5, 2, ids, moved);
	cr_assert_eq(pifs_nodemap_install(&nm, &m), 1);
	cr_assert_eq(pifs_nodemap_epoch(&nm), 5);
	m = map_of(&b, 4, 2, ids, old);
	cr_assert_eq(pifs_nodemap_install(&nm, &m), 0);
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 2, ep, sizeof(ep)), 0);
	cr_assert_str_eq(ep, "tcp://10.0.0.22:7070");
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 3, ep, sizeof(ep)), 0, "a node only the map has");
	cr_assert_str_eq(ep, "tcp://10.0.0.3:7070");
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 1, ep, sizeof(ep)), 0,
		     "a node only the config has");
	cr_assert_str_eq(ep, "tcp://10.0.0.1:7070");
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&b);
}

Test(nodemap, a_node_nobody_knows_is_enoent)
{
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	char ep[64];

	conf_of_two(&conf);
	pifs_nodemap_init(&nm, &conf);
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 7, ep, sizeof(ep)), -ENOENT);
	pifs_nodemap_fini(&nm);
}

Test(nodemap, an_address_without_a_port_is_einval)
{
	const uint32_t ids[] = {4};
	const char *const addrs[] = {"10.0.0.4"};
	struct pifs_msg_R_MAP m;
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	struct pifs_buf b;
	char ep[64];

	conf_of_two(&conf);
	pifs_buf_init(&b);
	pifs_nodemap_init(&nm, &conf);
	m = map_of(&b, 2, 1, ids, addrs);
	cr_assert_eq(pifs_nodemap_install(&nm, &m), 1);
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 4, ep, sizeof(ep)), -EINVAL);
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&b);
}

Test(nodemap, a_map_whose_list_lies_about_its_count_is_ebadmsg_and_changes_nothing)
{
	const uint32_t ids[] = {2};
	const char *const addrs[] = {"10.0.0.22:7070"};
	struct pifs_msg_R_MAP m;
	struct pifs_nodemap nm;
	struct pifs_conf conf;
	struct pifs_buf b;
	char ep[64];

	conf_of_two(&conf);
	pifs_buf_init(&b);
	pifs_nodemap_init(&nm, &conf);
	m = map_of(&b, 3, 1, ids, addrs);
	m.nodes.count = 2;
	cr_assert_eq(pifs_nodemap_install(&nm, &m), -EBADMSG);
	cr_assert_eq(pifs_nodemap_epoch(&nm), 0);
	cr_assert_eq(pifs_nodemap_endpoint(&nm, 2, ep, sizeof(ep)), 0);
	cr_assert_str_eq(ep, "tcp://10.0.0.2:7070");
	pifs_nodemap_fini(&nm);
	pifs_buf_fini(&b);
}
