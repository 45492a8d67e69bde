/* seed.c - write the first inputs of the snapshot, raftlog, config, keys and
 * bundle corpora with the real code: snapshots saved by pifs_meta_save, voter
 * directories made by pifs_raftlog_*, configuration files, and allow-lists,
 * key files and key bundles with keys from pifs_keypair_make. Run once as
 * "fuzz_seed tests/fuzz/corpus"; the fuzzer grows the corpora from there.
 * The keys are new at every run: to add seeds of one corpus, write into a
 * temporary directory and copy that corpus alone.
 * Usage errors and failures exit 1. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fileio.h"
#include "keys.h"
#include "meta.h"
#include "proto.h"
#include "raftlog.h"

#define CS (1u << 20)

static const char *root;
static int64_t now = 1000;
static struct pifs_buf scratch;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_seed: %s\n", what);
	exit(1);
}

static void put(const char *target, const char *name, const void *p, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || (len > 0 && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
		die(path);
}

static void apply(struct pifs_meta *m, struct pifs_msg *op)
{
	struct pifs_msg rep;

	pifs_proto_stamp(op, ++now);
	if (pifs_meta_apply(m, pifs_meta_index(m) + 1, op, &rep, &scratch) != 0)
		die("apply");
}

static void init_(struct pifs_meta *m)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_INIT);
	op.u.INIT.replicas = 2;
	op.u.INIT.chunk_size = CS;
	op.u.INIT.cluster_id = 0xc1;
	apply(m, &op);
}

static void mknod_(struct pifs_meta *m, uint64_t parent, const char *name, uint32_t mode)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_MKNOD);
	op.u.MKNOD.parent = parent;
	op.u.MKNOD.name = pifs_str_of(name);
	op.u.MKNOD.mode = mode;
	op.u.MKNOD.uid = 1000;
	op.u.MKNOD.gid = 100;
	apply(m, &op);
}

/* INIT, a directory with two files, a symlink, an xattr, a node, and one
 * file with two chunks: every table of the state holds something. */
static void fill(struct pifs_meta *m, int rich)
{
	struct pifs_msg op;
	struct pifs_buf l;
	struct pifs_chunkref r[2] = {
	    {0, {0x1111, 0x2222}, CS, CS, CS / 2},
	    {2, {0x3333, 0x4444}, 100, 100, 80},
	};

	init_(m);
	mknod_(m, PIFS_META_ROOT, "d", 040755);
	mknod_(m, 2, "a", 0100644);
	mknod_(m, 2, "b", 0100600);
	if (!rich)
		return;
	pifs_msg_init(&op, PIFS_MSG_SYMLINK);
	op.u.SYMLINK.parent = PIFS_META_ROOT;
	op.u.SYMLINK.name = pifs_str_of("s");
	op.u.SYMLINK.target = pifs_str_of("d/a");
	apply(m, &op);
	pifs_msg_init(&op, PIFS_MSG_SETXATTR);
	op.u.SETXATTR.ino = 3;
	op.u.SETXATTR.name = pifs_str_of("user.x");
	op.u.SETXATTR.value.p = (const uint8_t *)"value";
	op.u.SETXATTR.value.len = 5;
	apply(m, &op);
	pifs_msg_init(&op, PIFS_MSG_NODE_ADD);
	op.u.NODE_ADD.id = 1;
	op.u.NODE_ADD.weight = 100;
	op.u.NODE_ADD.addr = pifs_str_of("127.0.0.1:7070");
	apply(m, &op);
	pifs_buf_init(&l);
	if (pifs_chunkref_append(&l, &r[0]) != 0 || pifs_chunkref_append(&l, &r[1]) != 0)
		die("chunkref");
	pifs_msg_init(&op, PIFS_MSG_COMMIT);
	op.u.COMMIT.ino = 3;
	op.u.COMMIT.size = 2 * (uint64_t)CS + 100;
	op.u.COMMIT.mtime = 777;
	op.u.COMMIT.refs = pifs_list_of(&l, 2);
	apply(m, &op);
	pifs_buf_fini(&l);
	mknod_(m, PIFS_META_ROOT, "fifo", 010644);
}

static void save(const char *name, const struct pifs_meta *m)
{
	struct pifs_buf b;

	pifs_buf_init(&b);
	if (pifs_meta_save(m, &b) != 0)
		die("save");
	put("snapshot", name, b.p, b.len);
	pifs_buf_fini(&b);
}

static void snapshots(void)
{
	struct pifs_meta *m = pifs_meta_new();

	if (!m)
		die("new");
	save("new", m);
	init_(m);
	save("init", m);
	pifs_meta_free(m);
	m = pifs_meta_new();
	fill(m, 0);
	save("init_mknod3", m);
	pifs_meta_free(m);
	m = pifs_meta_new();
	fill(m, 1);
	save("every_table", m);
	pifs_meta_free(m);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Append the file @name of @dir to @b; absent: set @bit in @absent. */
static size_t slurp(const char *dir, const char *name, struct pifs_buf *b, uint8_t *absent,
		    uint8_t bit)
{
	char path[256], tmp[4096];
	size_t n, total = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f) {
		*absent |= bit;
		return 0;
	}
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (pifs_buf_append(b, tmp, n) != 0)
			die("append");
		total += n;
	}
	fclose(f);
	return total;
}

/* Package the voter directory @dir as one input of fuzz_raftlog, with the
 * last @cut bytes of raft.log torn off (a crash in the middle of a write). */
static void pack_cut(const char *name, const char *dir, size_t cut)
{
	struct pifs_buf hard, log, snap, out;
	uint8_t head[9] = {0};
	size_t nh, nl;

	pifs_buf_init(&hard);
	pifs_buf_init(&log);
	pifs_buf_init(&snap);
	pifs_buf_init(&out);
	nh = slurp(dir, "raft.hard", &hard, &head[0], 1);
	nl = slurp(dir, "raft.log", &log, &head[0], 2);
	if (cut > nl)
		cut = nl;
	nl -= cut;
	log.len -= cut;
	slurp(dir, "raft.snap", &snap, &head[0], 4);
	pifs_be_put(head + 1, nh, 4);
	pifs_be_put(head + 5, nl, 4);
	if (pifs_buf_append(&out, head, sizeof(head)) != 0 ||
	    pifs_buf_append(&out, hard.p, hard.len) != 0 ||
	    pifs_buf_append(&out, log.p, log.len) != 0 ||
	    pifs_buf_append(&out, snap.p, snap.len) != 0)
		die("append");
	put("raftlog", name, out.p, out.len);
	pifs_buf_fini(&hard);
	pifs_buf_fini(&log);
	pifs_buf_fini(&snap);
	pifs_buf_fini(&out);
}

static void pack(const char *name, const char *dir)
{
	pack_cut(name, dir, 0);
}

/* Append the mutation @op to @l as entry @index of term 1 and apply it to @m. */
static void logged(struct pifs_raftlog *l, struct pifs_meta *m, struct pifs_msg *op)
{
	struct pifs_buf b;
	struct pifs_raft_entry e = {.term = 1, .type = PIFS_RAFT_DATA};
	uint64_t index = pifs_raftlog_last_index(l) + 1;

	pifs_buf_init(&b);
	pifs_proto_stamp(op, ++now);
	if (pifs_proto_encode(op, &b) != 0)
		die("encode");
	e.data = b.p;
	e.len = (uint32_t)b.len;
	if (pifs_raftlog_append(l, index, &e) != 0)
		die("raftlog append");
	pifs_buf_fini(&b);
	if (m)
		apply(m, op);
}

static void raftlogs(void)
{
	static const struct pifs_raft_conf voters = {3, {1, 2, 3}};
	char dir[] = "/tmp/pifs-fuzz-seed-XXXXXX";
	struct pifs_raft_entry noop = {.term = 1, .type = PIFS_RAFT_NOOP};
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	struct pifs_msg op;

	if (!mkdtemp(dir))
		die("mkdtemp");
	m = pifs_meta_new();
	if (!m || pifs_raftlog_open(dir, &voters, m, &l, &st) != 0)
		die("raftlog open");
	pack("fresh", dir);
	if (pifs_raftlog_set_hard(l, 1, 1) != 0 || pifs_raftlog_append(l, 1, &noop) != 0)
		die("raftlog");
	/* Entry 1 is the leader's NOOP: the state applies it as NOOP. */
	pifs_msg_init(&op, PIFS_MSG_NOOP);
	apply(m, &op);
	pifs_msg_init(&op, PIFS_MSG_INIT);
	op.u.INIT.replicas = 2;
	op.u.INIT.chunk_size = CS;
	op.u.INIT.cluster_id = 0xc1;
	logged(l, m, &op);
	pifs_msg_init(&op, PIFS_MSG_MKNOD);
	op.u.MKNOD.parent = PIFS_META_ROOT;
	op.u.MKNOD.name = pifs_str_of("d");
	op.u.MKNOD.mode = 040755;
	logged(l, m, &op);
	if (pifs_raftlog_write(l) != 0)
		die("raftlog write");
	pack("entries3", dir);
	pack_cut("entries3_torn", dir, 5);
	if (pifs_raftlog_snapshot(l, m, pifs_meta_index(m), 1, &voters) != 0)
		die("raftlog snapshot");
	pack("snapshot_only", dir);
	op.u.MKNOD.parent = 2;
	op.u.MKNOD.name = pifs_str_of("f");
	op.u.MKNOD.mode = 0100644;
	logged(l, m, &op);
	op.u.MKNOD.name = pifs_str_of("g");
	logged(l, m, &op);
	if (pifs_raftlog_write(l) != 0)
		die("raftlog write");
	pack("snapshot_entries2", dir);
	pack_cut("snapshot_entries2_torn", dir, 30);
	pifs_raftlog_close(l);
	pifs_meta_free(m);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static const char example[] = "[cluster]\n"
			      "replicas = 2          ; copies of every chunk\n"
			      "chunk_size = 4M\n"
			      "\n"
			      "[node 1]\n"
			      "address = 192.168.1.11:7070\n"
			      "data = /srv/pifs\n"
			      "meta = yes            ; a metadata voter\n"
			      "\n"
			      "[node 2]\n"
			      "address = 192.168.1.12:7070\n"
			      "data = /srv/pifs\n"
			      "meta = yes\n"
			      "\n"
			      "[node 3]\n"
			      "address = 192.168.1.13:7070\n"
			      "data = /srv/pifs\n"
			      "meta = yes\n"
			      "\n"
			      "[client]\n"
			      "cache = 64M           ; chunk cache of each mount\n";

/* The README's example with @line appended to its [node 1] section. */
static void config_with(const char *name, const char *line)
{
	char buf[2048];
	const char *cut = strstr(example, "\n[node 2]");
	int n = snprintf(buf, sizeof(buf), "%.*s%s\n%s", (int)(cut - example), example, line, cut);

	put("config", name, buf, (size_t)n);
}

static void configs(void)
{
	static const char every_key[] = "[cluster]\n"
					"replicas = 1\n"
					"chunk_size = 64K\n"
					"heartbeat = 250ms\n"
					"down_after = 5s\n"
					"out_after = 10m\n"
					"reserve = 256M\n"
					"heal_interval = 60s\n"
					"heal_rate = 50M\n"
					"scrub_interval = 168h\n"
					"scrub_rate = 0\n"
					"gc_interval = 1h\n"
					"gc_grace = 1h\n"
					"[node 7]\n"
					"address = [::1]:7070\n"
					"data = /srv/pifs\n"
					"meta = yes\n"
					"weight = 100\n"
					"[client]\n"
					"cache = 1G\n"
					"timeout = 10s\n";
	static const char bad_chunk[] = "[cluster]\nchunk_size = 3M\n"
					"[node 1]\naddress = a:1\ndata = /d\nmeta = yes\n";

	put("config", "readme", example, sizeof(example) - 1);
	put("config", "every_key", every_key, sizeof(every_key) - 1);
	put("config", "empty", "", 0);
	config_with("typo_key", "adress = 192.168.1.11:7071");
	config_with("no_equals", "meta");
	config_with("bad_size", "weight = 12Q");
	config_with("dup_id", "[node 1]\naddress = 10.0.0.1:1\ndata = /x");
	config_with("bad_section", "[node 0x]");
	config_with("unterminated_section", "[node 4");
	config_with("huge_number", "weight = 99999999999999999999999");
	put("config", "bad_chunk_size", bad_chunk, sizeof(bad_chunk) - 1);
}

/* A key made here, or die. */
static void keypair(struct pifs_keypair *kp, const char *name, enum pifs_role role)
{
	if (pifs_keypair_make(kp, name, role) != 0)
		die("pifs_keypair_make (a libzmq without CURVE?)");
}

/* Seed @name of the keys corpus: the selector byte @sel ('0' an
 * allow-list, '1' a key file, as fuzz_keys.c reads them), then @text. */
static void put_key_seed(const char *name, char sel, const char *text, size_t len)
{
	char *buf = malloc(len + 1);

	if (!buf)
		die("out of memory");
	buf[0] = sel;
	memcpy(buf + 1, text, len);
	put("keys", name, buf, len + 1);
	free(buf);
}

static void keys(void)
{
	static const char *const names[] = {"node-1", "node-2", "node-3",
					    "client", "admin",	"kiosk"};
	static const enum pifs_role roles[] = {PIFS_ROLE_NODE,	 PIFS_ROLE_NODE,  PIFS_ROLE_NODE,
					       PIFS_ROLE_CLIENT, PIFS_ROLE_ADMIN, PIFS_ROLE_CLIENT};
	struct pifs_keypair kp[6];
	struct pifs_allow a;
	char *text, buf[2048];
	size_t len;
	int n;

	pifs_allow_init(&a);
	a.generation = 3;
	for (int i = 0; i < 6; i++) {
		keypair(&kp[i], names[i], roles[i]);
		if (pifs_allow_add_pair(&a, &kp[i]) != 0)
			die("pifs_allow_add_pair");
		a.keys[a.n - 1].revoked = i == 5;
	}
	if (pifs_allow_format(&a, &text, &len) != 0)
		die("pifs_allow_format");
	put_key_seed("allow_init_and_a_revoked_client", '0', text, len);
	free(text);
	pifs_allow_fini(&a);

	n = snprintf(buf, sizeof(buf),
		     "\xef\xbb\xbf# by hand\r\n\r\n\tnode-2147483647  node   %s\r\n"
		     "generation 18446744073709551615\r\nroot admin %s   revoked",
		     kp[0].pub, kp[4].pub);
	put_key_seed("allow_crlf_bom_tabs", '0', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "# no generation\nclient client %s\n", kp[3].pub);
	put_key_seed("allow_no_generation", '0', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "generation 2\nclient client %s\nkiosk client %s\n",
		     kp[3].pub, kp[3].pub);
	put_key_seed("allow_same_public_twice", '0', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "generation 2\nnode-4 client %s\ngw node %s\n", kp[3].pub,
		     kp[4].pub);
	put_key_seed("allow_node_name_without_role_node", '0', buf, (size_t)n);
	put_key_seed("allow_empty", '0', "", 0);

	n = snprintf(buf, sizeof(buf), "name = %s\nrole = node\npublic = %s\nsecret = %s\n",
		     kp[0].name, kp[0].pub, kp[0].secret);
	put_key_seed("pair_node", '1', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf),
		     "# mount key\r\nrole=client\r\n  secret =\t%s\r\nname = %s\r\npublic = %s",
		     kp[3].secret, kp[3].name, kp[3].pub);
	put_key_seed("pair_client_crlf_any_order", '1', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "name = admin\nrole = admin\npublic = %s\nsecret = %s\n",
		     kp[4].pub, kp[3].secret);
	put_key_seed("pair_secret_of_another", '1', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "name = client\nrole = client\npublic = %s\n", kp[3].pub);
	put_key_seed("pair_no_secret", '1', buf, (size_t)n);
	n = snprintf(buf, sizeof(buf),
		     "name = client\nrole = client\nrole = client\npublic = %s\nsecret = %s\n",
		     kp[3].pub, kp[3].secret);
	put_key_seed("pair_role_twice", '1', buf, (size_t)n);
}

/* The key file of @kp as a bundle writes it, without the comments. */
static int pair_lines(char *buf, size_t cap, const struct pifs_keypair *kp, const char *role)
{
	return snprintf(buf, cap, "name = %s\nrole = %s\npublic = %s\nsecret = %s\n", kp->name,
			role, kp->pub, kp->secret);
}

static void put_text(const char *target, const char *name, const char *text, int n)
{
	if (n < 0)
		die("snprintf");
	put(target, name, text, (size_t)n);
}

static void bundles(void)
{
	struct pifs_keypair node, client, other;
	struct pifs_allow a;
	char pair[512], buf[4096], *text;
	size_t len;
	int n;

	keypair(&node, "node-4", PIFS_ROLE_NODE);
	keypair(&client, "kiosk", PIFS_ROLE_CLIENT);
	keypair(&other, "node-5", PIFS_ROLE_NODE);
	pifs_allow_init(&a);
	a.generation = 9;
	for (int i = 0; i < 3; i++) {
		const struct pifs_keypair *kp = i == 0 ? &node : i == 1 ? &client : &other;

		if (pifs_allow_add_pair(&a, kp) != 0)
			die("pifs_allow_add_pair");
		a.keys[a.n - 1].revoked = i == 2;
	}
	/* As pifs-admin keys export writes them. */
	if (pifs_bundle_format(&node, &a, &text, &len) != 0)
		die("pifs_bundle_format");
	put("bundle", "export_node", text, len);
	free(text);
	if (pifs_bundle_format(&client, &a, &text, &len) != 0)
		die("pifs_bundle_format");
	put("bundle", "export_client", text, len);
	free(text);
	pifs_allow_fini(&a);

	/* By hand: a byte order mark, CRLF, the list first. */
	n = snprintf(buf, sizeof(buf),
		     "\xef\xbb\xbf# pifs key bundle 1\r\n\r\n---\tallowed\r\ngeneration 2\r\n"
		     "kiosk client %s\r\n--- kiosk.key  \r\nrole = client\r\nsecret = %s\r\n"
		     "public = %s\r\nname = kiosk",
		     client.pub, client.secret, client.pub);
	put_text("bundle", "crlf_bom_list_first", buf, n);

	/* Refused: each for one reason. */
	pair_lines(pair, sizeof(pair), &node, "node");
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-4.key\n%s--- allowed\ngeneration 3\n"
		     "node-5 node %s\n",
		     pair, other.pub);
	put_text("bundle", "key_not_in_list", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-4.key\n%s--- allowed\ngeneration 3\n"
		     "node-4 node %s revoked\n",
		     pair, node.pub);
	put_text("bundle", "key_revoked", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-4.key\n%s--- allowed\ngeneration 3\n"
		     "node-4 node %s\n",
		     pair, other.pub);
	put_text("bundle", "list_has_another_public_key", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- kiosk.key\nname = kiosk\nrole = client\n"
		     "public = %s\nsecret = %s\n--- allowed\ngeneration 3\nkiosk admin %s\n",
		     client.pub, client.secret, client.pub);
	put_text("bundle", "list_has_another_role", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-4.key\nname = node-4\nrole = node\n"
		     "public = %s\nsecret = %s\n--- allowed\ngeneration 3\nnode-4 node %s\n",
		     node.pub, other.secret, node.pub);
	put_text("bundle", "secret_of_another", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-5.key\n%s--- allowed\ngeneration 3\n"
		     "node-4 node %s\n",
		     pair, node.pub);
	put_text("bundle", "section_of_another_name", buf, n);
	n = snprintf(buf, sizeof(buf),
		     "# pifs key bundle 1\n--- node-4.key\n%s--- node-5.key\n--- allowed\n"
		     "--- allowed\ngeneration 3\n",
		     pair);
	put_text("bundle", "sections_twice", buf, n);
	n = snprintf(buf, sizeof(buf), "# pifs key bundle 1\n--- node-4.key\n%s", pair);
	put_text("bundle", "no_allowed", buf, n);
	n = snprintf(buf, sizeof(buf), "# pifs key bundle 2\n--- node-4.key\n%s", pair);
	put_text("bundle", "format_2", buf, n);
	put_text("bundle", "bare_key_file", pair, (int)strlen(pair));
	put("bundle", "empty", "", 0);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: fuzz_seed CORPUS_DIR");
	root = argv[1];
	pifs_buf_init(&scratch);
	snapshots();
	raftlogs();
	configs();
	keys();
	bundles();
	pifs_buf_fini(&scratch);
	return 0;
}
