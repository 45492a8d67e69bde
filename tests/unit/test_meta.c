/* test_meta.c - the metadata state machine: every operation, every errno,
 * rename rules, link counts, chunk references, readdir resumption,
 * determinism and snapshots. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "meta.h"

#define ROOT PIFS_META_ROOT
#define CS 1024u /* chunk size of the test cluster */

static struct pifs_meta *m;
static struct pifs_buf scratch;
static struct pifs_msg rep;
static int64_t clock_ns = 1000;

/* Apply @op to @s as its next entry, stamped with a new time; the reply is
 * in rep. Returns the reply's status (0 for R_ATTR). */
static int apply_to(struct pifs_meta *s, struct pifs_msg *op)
{
	pifs_proto_stamp(op, ++clock_ns);
	cr_assert_eq(pifs_meta_apply(s, pifs_meta_index(s) + 1, op, &rep, &scratch), 0);
	return rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.status : 0;
}

static int init_to(struct pifs_meta *s, uint32_t replicas, uint32_t chunk_size)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_INIT);
	op.u.INIT.replicas = replicas;
	op.u.INIT.chunk_size = chunk_size;
	op.u.INIT.cluster_id = 0xc1;
	return apply_to(s, &op);
}

static void setup(void)
{
	m = pifs_meta_new();
	cr_assert_not_null(m);
	pifs_buf_init(&scratch);
	clock_ns = 1000;
	cr_assert_eq(init_to(m, 2, CS), 0);
}

static void teardown(void)
{
	pifs_meta_free(m);
	pifs_buf_fini(&scratch);
}

TestSuite(meta, .init = setup, .fini = teardown);

static int mknod_(uint64_t parent, const char *name, uint32_t mode, uint32_t rdev)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_MKNOD);
	op.u.MKNOD.parent = parent;
	op.u.MKNOD.name = pifs_str_of(name);
	op.u.MKNOD.mode = mode;
	op.u.MKNOD.rdev = rdev;
	op.u.MKNOD.uid = 1000;
	op.u.MKNOD.gid = 100;
	return apply_to(m, &op);
}

/* Create and return the inode number, asserting success. */
static uint64_t mk(uint64_t parent, const char *name, uint32_t mode)
{
	cr_assert_eq(mknod_(parent, name, mode, 0), 0, "creating %s", name);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	return rep.u.R_ATTR.attr.ino;
}

static uint64_t mkfile(uint64_t parent, const char *name)
{
	return mk(parent, name, S_IFREG | 0644);
}

static uint64_t mkdir_(uint64_t parent, const char *name)
{
	return mk(parent, name, S_IFDIR | 0755);
}

static int symlink_(uint64_t parent, const char *name, struct pifs_str target)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_SYMLINK);
	op.u.SYMLINK.parent = parent;
	op.u.SYMLINK.name = pifs_str_of(name);
	op.u.SYMLINK.target = target;
	return apply_to(m, &op);
}

static int link_(uint64_t ino, uint64_t parent, const char *name)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_LINK);
	op.u.LINK.ino = ino;
	op.u.LINK.parent = parent;
	op.u.LINK.name = pifs_str_of(name);
	return apply_to(m, &op);
}

static int unlink_(uint64_t parent, const char *name)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_UNLINK);
	op.u.UNLINK.parent = parent;
	op.u.UNLINK.name = pifs_str_of(name);
	return apply_to(m, &op);
}

static int rmdir_(uint64_t parent, const char *name)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_RMDIR);
	op.u.RMDIR.parent = parent;
	op.u.RMDIR.name = pifs_str_of(name);
	return apply_to(m, &op);
}

static int rename_(uint64_t parent, const char *name, uint64_t newparent, const char *newname,
		   uint32_t flags)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_RENAME);
	op.u.RENAME.parent = parent;
	op.u.RENAME.name = pifs_str_of(name);
	op.u.RENAME.newparent = newparent;
	op.u.RENAME.newname = pifs_str_of(newname);
	op.u.RENAME.flags = flags;
	return apply_to(m, &op);
}

static int setattr_(const struct pifs_msg_SETATTR *sa)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_SETATTR);
	op.u.SETATTR = *sa;
	return apply_to(m, &op);
}

static int truncate_(uint64_t ino, uint64_t size)
{
	struct pifs_msg_SETATTR sa = {.ino = ino, .valid = PIFS_SET_SIZE, .size = size};

	return setattr_(&sa);
}

static struct pifs_chunk_id cid(uint64_t n)
{
	struct pifs_chunk_id id = {n * 0x9e3779b97f4a7c15ULL, n};

	return id;
}

static struct pifs_chunkref ref(uint64_t index, uint64_t chunk, uint32_t len)
{
	struct pifs_chunkref r = {index, cid(chunk), len, CS, chunk ? CS / 2 + 32 : 0};

	if (chunk == 0)
		r.raw_len = 0;
	return r;
}

static int commit_to(struct pifs_meta *s, uint64_t ino, uint64_t size,
		     const struct pifs_chunkref *refs, size_t n)
{
	struct pifs_buf l;
	struct pifs_msg op;
	size_t i;
	int rc;

	pifs_buf_init(&l);
	for (i = 0; i < n; i++)
		cr_assert_eq(pifs_chunkref_append(&l, &refs[i]), 0);
	pifs_msg_init(&op, PIFS_MSG_COMMIT);
	op.u.COMMIT.ino = ino;
	op.u.COMMIT.size = size;
	op.u.COMMIT.mtime = 777;
	op.u.COMMIT.refs = pifs_list_of(&l, (uint32_t)n);
	rc = apply_to(s, &op);
	pifs_buf_fini(&l);
	return rc;
}

static int commit_(uint64_t ino, uint64_t size, const struct pifs_chunkref *refs, size_t n)
{
	return commit_to(m, ino, size, refs, n);
}

static int setxattr_(uint64_t ino, struct pifs_str name, const void *value, uint32_t len,
		     uint32_t flags)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_SETXATTR);
	op.u.SETXATTR.ino = ino;
	op.u.SETXATTR.name = name;
	op.u.SETXATTR.value.p = value;
	op.u.SETXATTR.value.len = len;
	op.u.SETXATTR.flags = flags;
	return apply_to(m, &op);
}

static int removexattr_(uint64_t ino, const char *name)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_REMOVEXATTR);
	op.u.REMOVEXATTR.ino = ino;
	op.u.REMOVEXATTR.name = pifs_str_of(name);
	return apply_to(m, &op);
}

static int node_add_(uint32_t id, uint32_t weight, uint32_t flags, const char *addr)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_NODE_ADD);
	op.u.NODE_ADD.id = id;
	op.u.NODE_ADD.weight = weight;
	op.u.NODE_ADD.flags = flags;
	op.u.NODE_ADD.addr = pifs_str_of(addr);
	return apply_to(m, &op);
}

/* Run the query @q; returns the reply's status (0 for any other reply). */
static int query(struct pifs_msg *q)
{
	cr_assert_eq(pifs_meta_query(m, q, &rep, &scratch), 0);
	return rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.status : 0;
}

static int getattr_(uint64_t ino, struct pifs_attr *a)
{
	struct pifs_msg q;
	int rc;

	pifs_msg_init(&q, PIFS_MSG_GETATTR);
	q.u.GETATTR.ino = ino;
	rc = query(&q);
	if (rc == 0 && a)
		*a = rep.u.R_ATTR.attr;
	return rc;
}

static struct pifs_attr attr_of(uint64_t ino)
{
	struct pifs_attr a;

	cr_assert_eq(getattr_(ino, &a), 0, "getattr %llu", (unsigned long long)ino);
	return a;
}

static int lookup_(uint64_t parent, struct pifs_str name, struct pifs_attr *a)
{
	struct pifs_msg q;
	int rc;

	pifs_msg_init(&q, PIFS_MSG_LOOKUP);
	q.u.LOOKUP.parent = parent;
	q.u.LOOKUP.name = name;
	rc = query(&q);
	if (rc == 0 && a)
		*a = rep.u.R_ATTR.attr;
	return rc;
}

/* The inode number of @name in @parent, or -errno. */
static int64_t ino_of(uint64_t parent, const char *name)
{
	struct pifs_attr a = {0};
	int rc = lookup_(parent, pifs_str_of(name), &a);

	return rc < 0 ? rc : (int64_t)a.ino;
}

static int readdir_(uint64_t ino, uint64_t cookie, uint32_t max)
{
	struct pifs_msg q;

	pifs_msg_init(&q, PIFS_MSG_READDIR);
	q.u.READDIR.ino = ino;
	q.u.READDIR.cookie = cookie;
	q.u.READDIR.max_bytes = max;
	return query(&q);
}

static int open_(uint64_t ino)
{
	struct pifs_msg q;

	pifs_msg_init(&q, PIFS_MSG_OPEN);
	q.u.OPEN.ino = ino;
	return query(&q);
}

static int getxattr_(uint64_t ino, const char *name)
{
	struct pifs_msg q;

	pifs_msg_init(&q, PIFS_MSG_GETXATTR);
	q.u.GETXATTR.ino = ino;
	q.u.GETXATTR.name = pifs_str_of(name);
	return query(&q);
}

static struct pifs_meta_stats stats(void)
{
	struct pifs_meta_stats st;

	pifs_meta_stats(m, &st);
	return st;
}

/* A hash of everything in the state but the log index, which failed
 * operations advance too. */
static uint64_t content(const struct pifs_meta *s)
{
	struct pifs_buf b;
	uint64_t h;

	pifs_buf_init(&b);
	cr_assert_eq(pifs_meta_save(s, &b), 0);
	cr_assert_gt(b.len, 24);
	memset(b.p + 8, 0, 8);
	h = XXH3_64bits(b.p, b.len - 8);
	pifs_buf_fini(&b);
	return h;
}

/* Assert that @expr fails with @err and leaves the state as it was. */
#define cr_assert_fails(expr, err)                                                                 \
	do {                                                                                       \
		uint64_t before_ = content(m);                                                     \
		int rc_ = (expr);                                                                  \
		cr_assert_eq(rc_, (err), "%s: got %d, wanted %d", #expr, rc_, (err));              \
		cr_assert_eq(content(m), before_, "%s changed the state", #expr);                  \
	} while (0)

static char long_name[4200];

/* A name of @n bytes (NUL-terminated; valid until the next call). */
static const char *long_str(size_t n)
{
	memset(long_name, 'n', n);
	long_name[n] = '\0';
	return long_name;
}

static struct pifs_str name_of_len(size_t n)
{
	return pifs_str_of(long_str(n));
}

/* INIT, the map, the guards of apply and query. */

Test(meta, init_creates_the_root_directory)
{
	struct pifs_attr a = attr_of(ROOT);
	struct pifs_meta_stats st = stats();

	cr_assert_eq(a.mode, S_IFDIR | 0755);
	cr_assert_eq(a.nlink, 2);
	cr_assert_eq(a.uid, 0);
	cr_assert_eq(a.gid, 0);
	cr_assert_eq(st.epoch, 1);
	cr_assert_eq(st.replicas, 2);
	cr_assert_eq(st.chunk_size, CS);
	cr_assert_eq(st.cluster_id, 0xc1);
	cr_assert_eq(st.inodes, 1);
	cr_assert_eq(st.index, 1);
}

Test(meta, init_twice_is_eexist)
{
	cr_assert_fails(init_to(m, 3, CS), -EEXIST);
}

Test(meta, init_rejects_zero_replicas_or_chunk_size)
{
	struct pifs_meta *s = pifs_meta_new();

	cr_assert_eq(init_to(s, 0, CS), -EINVAL);
	cr_assert_eq(init_to(s, 2, 0), -EINVAL);
	cr_assert_eq(init_to(s, 2, CS), 0);
	pifs_meta_free(s);
}

Test(meta, everything_before_init_is_eagain)
{
	struct pifs_meta *s = pifs_meta_new();
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_MKNOD);
	op.u.MKNOD.parent = ROOT;
	op.u.MKNOD.name = pifs_str_of("a");
	op.u.MKNOD.mode = S_IFREG | 0644;
	cr_assert_eq(apply_to(s, &op), -EAGAIN);
	cr_assert_gt(rep.u.R_STATUS.detail.len, 0, "an operator needs to know why");
	cr_assert_eq(pifs_meta_index(s), 1, "a failed entry is still applied");
	pifs_msg_init(&op, PIFS_MSG_GETATTR);
	op.u.GETATTR.ino = ROOT;
	cr_assert_eq(pifs_meta_query(s, &op, &rep, &scratch), 0);
	cr_assert_eq(rep.u.R_STATUS.status, -EAGAIN);
	cr_assert_eq(init_to(s, 2, CS), 0);
	pifs_meta_free(s);
}

Test(meta, apply_refuses_an_index_out_of_order_or_a_non_mutation)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_UNLINK);
	op.u.UNLINK.parent = ROOT;
	op.u.UNLINK.name = pifs_str_of("x");
	cr_assert_eq(pifs_meta_apply(m, 1, &op, &rep, &scratch), -EINVAL);
	cr_assert_eq(pifs_meta_apply(m, 3, &op, &rep, &scratch), -EINVAL);
	pifs_msg_init(&op, PIFS_MSG_GETATTR);
	cr_assert_eq(pifs_meta_apply(m, 2, &op, &rep, &scratch), -EINVAL);
	cr_assert_eq(pifs_meta_index(m), 1);
}

Test(meta, query_refuses_a_mutation)
{
	struct pifs_msg q;

	pifs_msg_init(&q, PIFS_MSG_UNLINK);
	cr_assert_eq(pifs_meta_query(m, &q, &rep, &scratch), -EINVAL);
}

Test(meta, node_add_upserts_and_bumps_the_epoch_only_on_change)
{
	struct pifs_msg q;
	struct pifs_cursor c;
	struct pifs_node n;
	uint32_t flags, weight;

	cr_assert_eq(node_add_(7, 100, PIFS_NODE_IN, "10.0.0.7:7070"), 0);
	cr_assert_eq(node_add_(3, 50, PIFS_NODE_IN | PIFS_NODE_META, "10.0.0.3:7070"), 0);
	cr_assert_eq(stats().epoch, 3);
	cr_assert_eq(node_add_(7, 100, PIFS_NODE_IN, "10.0.0.7:7070"), 0);
	cr_assert_eq(stats().epoch, 3, "an unchanged node is no new map");
	cr_assert_eq(node_add_(7, 100, PIFS_NODE_IN, "10.0.0.8:7070"), 0);
	cr_assert_eq(stats().epoch, 4);
	cr_assert_eq(pifs_meta_node(m, 3, &flags, &weight), 0);
	cr_assert_eq(flags, PIFS_NODE_IN | PIFS_NODE_META);
	cr_assert_eq(weight, 50);
	cr_assert_eq(pifs_meta_node(m, 5, &flags, &weight), -ENOENT);

	pifs_msg_init(&q, PIFS_MSG_MAP_GET);
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_MAP);
	cr_assert_eq(rep.u.R_MAP.epoch, 4);
	cr_assert_eq(rep.u.R_MAP.replicas, 2);
	cr_assert_eq(rep.u.R_MAP.chunk_size, CS);
	cr_assert_eq(rep.u.R_MAP.cluster_id, 0xc1);
	cr_assert_eq(rep.u.R_MAP.nodes.count, 2);
	pifs_cursor_init(&c, &rep.u.R_MAP.nodes);
	cr_assert_eq(pifs_node_next(&c, &n), 1);
	cr_assert_eq(n.id, 3);
	cr_assert_eq(pifs_node_next(&c, &n), 1);
	cr_assert_eq(n.id, 7);
	cr_assert(pifs_str_eq(n.addr, "10.0.0.8:7070"));
	cr_assert_eq(pifs_node_next(&c, &n), 0);
}

/* MKNOD and SYMLINK. */

Test(meta, mknod_creates_every_file_type)
{
	static const uint32_t modes[] = {S_IFREG | 0640, S_IFIFO | 0600, S_IFSOCK | 0755,
					 S_IFCHR | 0620, S_IFBLK | 0660};
	struct pifs_attr a;
	char name[8];
	size_t i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		snprintf(name, sizeof(name), "f%zu", i);
		cr_assert_eq(mknod_(ROOT, name, modes[i], 0x0801), 0);
		a = rep.u.R_ATTR.attr;
		cr_assert_eq(a.mode, modes[i]);
		cr_assert_eq(a.nlink, 1);
		cr_assert_eq(a.uid, 1000);
		cr_assert_eq(a.gid, 100);
		cr_assert_eq(a.rdev, S_ISCHR(modes[i]) || S_ISBLK(modes[i]) ? 0x0801u : 0u);
		cr_assert_eq(a.ctime, clock_ns);
		cr_assert_eq(ino_of(ROOT, name), (int64_t)a.ino);
	}
	cr_assert_eq(attr_of(ROOT).mtime, clock_ns, "creating updates the parent's mtime");
	cr_assert_eq(stats().inodes, 6);
}

Test(meta, mkdir_links_the_parent)
{
	uint64_t d = mkdir_(ROOT, "d");
	struct pifs_attr a = attr_of(d);

	cr_assert_eq(a.mode, S_IFDIR | 0755);
	cr_assert_eq(a.nlink, 2);
	cr_assert_eq(a.size, 4096);
	cr_assert_eq(attr_of(ROOT).nlink, 3);
	mkdir_(d, "e");
	cr_assert_eq(attr_of(d).nlink, 3);
	cr_assert_eq(attr_of(ROOT).nlink, 3);
}

Test(meta, mknod_errors_leave_the_state_unchanged)
{
	uint64_t f = mkfile(ROOT, "file");

	cr_assert_fails(mknod_(999, "x", S_IFREG | 0644, 0), -ENOENT);
	cr_assert_fails(mknod_(f, "x", S_IFREG | 0644, 0), -ENOTDIR);
	cr_assert_fails(mknod_(ROOT, "file", S_IFREG | 0644, 0), -EEXIST);
	cr_assert_fails(mknod_(ROOT, "", S_IFREG | 0644, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, ".", S_IFDIR | 0755, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, "..", S_IFDIR | 0755, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, "a/b", S_IFREG | 0644, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, "x", 0644, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, "x", S_IFLNK | 0777, 0), -EINVAL);
	cr_assert_fails(mknod_(ROOT, long_str(256), S_IFREG | 0644, 0), -ENAMETOOLONG);
	cr_assert_eq(mknod_(ROOT, long_str(255), S_IFREG | 0644, 0), 0, "255 bytes is allowed");
}

Test(meta, symlink_keeps_its_target)
{
	struct pifs_msg q;
	struct pifs_attr a;

	cr_assert_eq(symlink_(ROOT, "l", pifs_str_of("../some/where")), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.mode, S_IFLNK | 0777);
	cr_assert_eq(a.size, 13);
	pifs_msg_init(&q, PIFS_MSG_READLINK);
	q.u.READLINK.ino = a.ino;
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_LINK);
	cr_assert(pifs_str_eq(rep.u.R_LINK.target, "../some/where"));
	cr_assert_eq(symlink_(ROOT, "max", name_of_len(4095)), 0, "4095 bytes is allowed");
}

Test(meta, symlink_errors)
{
	mkfile(ROOT, "f");
	cr_assert_fails(symlink_(ROOT, "l", pifs_str_of("")), -ENOENT);
	cr_assert_fails(symlink_(ROOT, "l", name_of_len(4096)), -ENAMETOOLONG);
	cr_assert_fails(symlink_(ROOT, "f", pifs_str_of("t")), -EEXIST);
	cr_assert_fails(symlink_(42, "l", pifs_str_of("t")), -ENOENT);
}

Test(meta, readlink_of_a_non_symlink_is_einval)
{
	struct pifs_msg q;
	uint64_t f = mkfile(ROOT, "f");

	pifs_msg_init(&q, PIFS_MSG_READLINK);
	q.u.READLINK.ino = f;
	cr_assert_eq(query(&q), -EINVAL);
	q.u.READLINK.ino = 555;
	cr_assert_eq(query(&q), -ENOENT);
}

/* LINK, UNLINK, RMDIR. */

Test(meta, hard_links_count_and_the_last_unlink_frees)
{
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_chunkref r = ref(0, 1, 100);
	int64_t t;

	cr_assert_eq(commit_(f, 100, &r, 1), 0);
	cr_assert_eq(link_(f, d, "g"), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.nlink, 2);
	t = clock_ns;
	cr_assert_eq(attr_of(f).ctime, t, "a new link changes the inode");
	cr_assert_eq(attr_of(d).mtime, t);
	cr_assert_eq(link_(f, ROOT, "h"), 0);
	cr_assert_eq(attr_of(f).nlink, 3);
	cr_assert_eq(ino_of(d, "g"), (int64_t)f);

	cr_assert_eq(unlink_(ROOT, "f"), 0);
	cr_assert_eq(attr_of(f).nlink, 2);
	cr_assert_eq(attr_of(f).ctime, clock_ns);
	cr_assert_eq(ino_of(ROOT, "f"), -ENOENT);
	cr_assert_eq(unlink_(d, "g"), 0);
	cr_assert_eq(stats().chunks, 1, "one link still holds the data");
	cr_assert_eq(unlink_(ROOT, "h"), 0);
	cr_assert_eq(getattr_(f, NULL), -ENOENT);
	cr_assert_eq(stats().chunks, 0);
	cr_assert_eq(stats().chunk_refs, 0);
	cr_assert_eq(stats().logical, 0);
	cr_assert_eq(stats().inodes, 2);
}

Test(meta, creates_links_and_removals_reply_with_their_directory_as_they_left_it)
{
	uint64_t d = mkdir_(ROOT, "d"), f;
	struct pifs_attr a;

	cr_assert_eq(rep.u.R_ATTR.dir.ino, ROOT);
	cr_assert_eq(rep.u.R_ATTR.dir.nlink, 3, "the new subdirectory's \"..\" counts");
	f = mkfile(d, "f");
	a = rep.u.R_ATTR.dir;
	cr_assert_eq(rep.u.R_ATTR.attr.ino, f);
	cr_assert_eq(a.ino, d);
	cr_assert_eq(a.mtime, attr_of(d).mtime);
	cr_assert_eq(a.ctime, attr_of(d).ctime);
	cr_assert_eq(a.mode, attr_of(d).mode);

	cr_assert_eq(link_(f, ROOT, "g"), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, f);
	cr_assert_eq(rep.u.R_ATTR.dir.ino, ROOT);
	cr_assert_eq(rep.u.R_ATTR.dir.mtime, clock_ns);

	cr_assert_eq(unlink_(d, "f"), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 0, "the entry is gone");
	cr_assert_eq(rep.u.R_ATTR.dir.ino, d);
	cr_assert_eq(rep.u.R_ATTR.dir.mtime, clock_ns);
	cr_assert_eq(rep.u.R_ATTR.dir.mtime, attr_of(d).mtime);

	cr_assert_eq(rmdir_(ROOT, "d"), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, 0);
	cr_assert_eq(rep.u.R_ATTR.dir.ino, ROOT);
	cr_assert_eq(rep.u.R_ATTR.dir.nlink, 2);
	cr_assert_eq(rep.u.R_ATTR.dir.ctime, clock_ns);

	cr_assert_eq(getattr_(f, &a), 0);
	cr_assert_eq(rep.u.R_ATTR.dir.ino, 0, "a plain query changes no directory");
}

Test(meta, link_errors)
{
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t f = mkfile(ROOT, "f");

	cr_assert_fails(link_(d, ROOT, "d2"), -EPERM);
	cr_assert_fails(link_(f, ROOT, "d"), -EEXIST);
	cr_assert_fails(link_(404, ROOT, "x"), -ENOENT);
	cr_assert_fails(link_(f, 404, "x"), -ENOENT);
	cr_assert_fails(link_(f, f, "x"), -ENOTDIR);
	cr_assert_fails(link_(f, ROOT, "x/y"), -EINVAL);
}

Test(meta, link_past_65000_is_emlink)
{
	uint64_t f = mkfile(ROOT, "f");
	char name[16];
	int i;

	for (i = 1; i < 65000; i++) {
		snprintf(name, sizeof(name), "l%d", i);
		cr_assert_eq(link_(f, ROOT, name), 0);
	}
	cr_assert_eq(attr_of(f).nlink, 65000);
	cr_assert_fails(link_(f, ROOT, "one-more"), -EMLINK);
}

Test(meta, unlink_errors)
{
	uint64_t f = mkfile(ROOT, "f");

	mkdir_(ROOT, "d");
	cr_assert_fails(unlink_(ROOT, "d"), -EISDIR);
	cr_assert_fails(unlink_(ROOT, "nope"), -ENOENT);
	cr_assert_fails(unlink_(f, "x"), -ENOTDIR);
	cr_assert_fails(unlink_(77, "x"), -ENOENT);
}

Test(meta, rmdir_removes_an_empty_directory)
{
	uint64_t d = mkdir_(ROOT, "d");

	cr_assert_eq(attr_of(ROOT).nlink, 3);
	cr_assert_eq(rmdir_(ROOT, "d"), 0);
	cr_assert_eq(getattr_(d, NULL), -ENOENT);
	cr_assert_eq(attr_of(ROOT).nlink, 2);
	cr_assert_eq(attr_of(ROOT).mtime, clock_ns);
	cr_assert_eq(stats().inodes, 1);
}

Test(meta, rmdir_errors)
{
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t f = mkfile(ROOT, "f");

	mkfile(d, "inside");
	cr_assert_fails(rmdir_(ROOT, "f"), -ENOTDIR);
	cr_assert_fails(rmdir_(ROOT, "d"), -ENOTEMPTY);
	cr_assert_fails(rmdir_(d, "."), -EINVAL);
	cr_assert_fails(rmdir_(ROOT, ".."), -EBUSY);
	cr_assert_fails(rmdir_(d, ".."), -ENOTEMPTY);
	cr_assert_fails(rmdir_(ROOT, "nope"), -ENOENT);
	cr_assert_fails(rmdir_(f, "x"), -ENOTDIR);
}

/* RENAME. */

Test(meta, rename_moves_a_file_and_sets_the_times)
{
	uint64_t a = mkdir_(ROOT, "a");
	uint64_t b = mkdir_(ROOT, "b");
	uint64_t f = mkfile(a, "f");

	cr_assert_eq(rename_(a, "f", b, "g", 0), 0);
	cr_assert_eq(ino_of(a, "f"), -ENOENT);
	cr_assert_eq(ino_of(b, "g"), (int64_t)f);
	cr_assert_eq(attr_of(f).ctime, clock_ns);
	cr_assert_eq(attr_of(a).mtime, clock_ns);
	cr_assert_eq(attr_of(a).ctime, clock_ns);
	cr_assert_eq(attr_of(b).mtime, clock_ns);
	cr_assert_eq(attr_of(b).ctime, clock_ns);
	cr_assert_eq(rename_(b, "g", b, "h", 0), 0);
	cr_assert_eq(ino_of(b, "h"), (int64_t)f);
	cr_assert_eq(ino_of(b, "g"), -ENOENT);
}

Test(meta, rename_over_a_file_drops_the_old_target)
{
	uint64_t f = mkfile(ROOT, "f");
	uint64_t g = mkfile(ROOT, "g");
	struct pifs_chunkref r = ref(0, 9, 10);

	cr_assert_eq(commit_(g, 10, &r, 1), 0);
	cr_assert_eq(rename_(ROOT, "f", ROOT, "g", 0), 0);
	cr_assert_eq(ino_of(ROOT, "g"), (int64_t)f);
	cr_assert_eq(getattr_(g, NULL), -ENOENT);
	cr_assert_eq(stats().chunks, 0, "the old target's data is released");
	cr_assert_eq(stats().inodes, 2);
}

Test(meta, rename_over_a_hard_linked_file_keeps_its_other_link)
{
	uint64_t g = mkfile(ROOT, "g");

	mkfile(ROOT, "f");
	cr_assert_eq(link_(g, ROOT, "g2"), 0);
	cr_assert_eq(rename_(ROOT, "f", ROOT, "g", 0), 0);
	cr_assert_eq(attr_of(g).nlink, 1);
	cr_assert_eq(attr_of(g).ctime, clock_ns);
}

Test(meta, rename_of_a_directory_over_an_empty_directory)
{
	uint64_t a = mkdir_(ROOT, "a");
	uint64_t b = mkdir_(ROOT, "b");
	uint64_t c = mkdir_(a, "c");
	uint64_t e = mkdir_(b, "e");

	cr_assert_eq(attr_of(ROOT).nlink, 4);
	cr_assert_eq(rename_(a, "c", b, "e", 0), 0);
	cr_assert_eq(getattr_(e, NULL), -ENOENT);
	cr_assert_eq(ino_of(b, "e"), (int64_t)c);
	cr_assert_eq(attr_of(a).nlink, 2);
	cr_assert_eq(attr_of(b).nlink, 3);
	cr_assert_eq(ino_of(c, ".."), (int64_t)b, "\"..\" follows the move");
	cr_assert_eq(rename_(ROOT, "a", ROOT, "b", 0), -ENOTEMPTY);
	cr_assert_eq(rename_(ROOT, "b", ROOT, "a", 0), 0);
	cr_assert_eq(attr_of(ROOT).nlink, 3);
	cr_assert_eq(ino_of(ROOT, "a"), (int64_t)b);
}

Test(meta, rename_type_mismatches_and_cycles_are_refused)
{
	uint64_t a = mkdir_(ROOT, "a");
	uint64_t b = mkdir_(a, "b");
	uint64_t f = mkfile(ROOT, "f");

	mkdir_(ROOT, "full");
	mkfile(ino_of(ROOT, "full"), "x");
	mkdir_(ROOT, "empty");
	cr_assert_fails(rename_(ROOT, "f", ROOT, "empty", 0), -EISDIR);
	cr_assert_fails(rename_(ROOT, "a", ROOT, "f", 0), -ENOTDIR);
	cr_assert_fails(rename_(ROOT, "empty", ROOT, "full", 0), -ENOTEMPTY);
	cr_assert_fails(rename_(ROOT, "a", b, "x", 0), -EINVAL);
	cr_assert_fails(rename_(ROOT, "a", a, "x", 0), -EINVAL);
	cr_assert_fails(rename_(ROOT, "nope", ROOT, "x", 0), -ENOENT);
	cr_assert_fails(rename_(ROOT, "f", 999, "x", 0), -ENOENT);
	cr_assert_fails(rename_(ROOT, "f", f, "x", 0), -ENOTDIR);
	cr_assert_fails(rename_(ROOT, "f", ROOT, "", 0), -EINVAL);
	cr_assert_fails(rename_(ROOT, "f", ROOT, long_str(256), 0), -ENAMETOOLONG);
	cr_assert_fails(rename_(ROOT, "f", ROOT, "g", 4), -EINVAL);
	cr_assert_fails(rename_(ROOT, "f", ROOT, "g", 3), -EINVAL);
}

Test(meta, rename_between_hard_links_of_one_inode_does_nothing)
{
	uint64_t f = mkfile(ROOT, "f");

	cr_assert_eq(link_(f, ROOT, "g"), 0);
	cr_assert_fails(rename_(ROOT, "f", ROOT, "g", 0), 0);
	cr_assert_eq(ino_of(ROOT, "f"), (int64_t)f);
	cr_assert_eq(ino_of(ROOT, "g"), (int64_t)f);
	cr_assert_eq(attr_of(f).nlink, 2);
	cr_assert_fails(rename_(ROOT, "f", ROOT, "f", 0), 0);
}

Test(meta, rename_noreplace_refuses_an_existing_target)
{
	uint64_t f = mkfile(ROOT, "f");

	mkfile(ROOT, "g");
	cr_assert_fails(rename_(ROOT, "f", ROOT, "g", 1), -EEXIST);
	cr_assert_eq(rename_(ROOT, "f", ROOT, "h", 1), 0);
	cr_assert_eq(ino_of(ROOT, "h"), (int64_t)f);
}

Test(meta, rename_exchange_swaps_two_entries)
{
	uint64_t a = mkdir_(ROOT, "a");
	uint64_t b = mkdir_(ROOT, "b");
	uint64_t d = mkdir_(a, "d");
	uint64_t f = mkfile(b, "f");

	cr_assert_eq(rename_(a, "d", b, "f", 2), 0);
	cr_assert_eq(ino_of(a, "d"), (int64_t)f);
	cr_assert_eq(ino_of(b, "f"), (int64_t)d);
	cr_assert_eq(ino_of(d, ".."), (int64_t)b);
	cr_assert_eq(attr_of(a).nlink, 2, "a lost its subdirectory");
	cr_assert_eq(attr_of(b).nlink, 3, "b gained one");
	cr_assert_eq(attr_of(f).ctime, clock_ns);
	cr_assert_eq(attr_of(d).ctime, clock_ns);
	cr_assert_fails(rename_(a, "d", b, "missing", 2), -ENOENT);
	cr_assert_fails(rename_(ROOT, "b", d, "x", 2), -ENOENT);
	mkfile(d, "x");
	cr_assert_fails(rename_(ROOT, "b", d, "x", 2), -EINVAL);
}

/* SETATTR, COMMIT, OPEN. */

Test(meta, setattr_changes_what_valid_says)
{
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_msg_SETATTR sa = {.ino = f,
				      .valid = PIFS_SET_MODE | PIFS_SET_UID | PIFS_SET_GID |
					       PIFS_SET_ATIME | PIFS_SET_MTIME,
				      .mode = S_IFDIR | 04711,
				      .uid = 5,
				      .gid = 6,
				      .atime = 11,
				      .mtime = 12};
	struct pifs_attr a;

	cr_assert_eq(setattr_(&sa), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.mode, S_IFREG | 04711, "the type never changes");
	cr_assert_eq(a.uid, 5);
	cr_assert_eq(a.gid, 6);
	cr_assert_eq(a.atime, 11);
	cr_assert_eq(a.mtime, 12);
	cr_assert_eq(a.ctime, clock_ns);

	sa.valid = PIFS_SET_ATIME_NOW | PIFS_SET_MTIME_NOW | PIFS_SET_CTIME;
	sa.ctime = 99;
	cr_assert_eq(setattr_(&sa), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.atime, clock_ns);
	cr_assert_eq(a.mtime, clock_ns);
	cr_assert_eq(a.ctime, 99);
	cr_assert_eq(a.uid, 5);
}

Test(meta, setattr_errors)
{
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t p = mk(ROOT, "p", S_IFIFO | 0600);

	cr_assert_fails(truncate_(d, 0), -EISDIR);
	cr_assert_fails(truncate_(p, 0), -EINVAL);
	cr_assert_fails(truncate_(321, 0), -ENOENT);
	struct pifs_msg_SETATTR sa = {.ino = d, .valid = 0x8000};
	cr_assert_fails(setattr_(&sa), -EINVAL);
}

Test(meta, truncate_drops_and_trims_slots_and_grows_with_a_hole)
{
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_chunkref r[3] = {ref(0, 1, CS), ref(1, 2, CS), ref(2, 3, CS)};
	struct pifs_cursor c;
	struct pifs_chunkref got;
	struct pifs_attr a;
	uint64_t v;

	cr_assert_eq(commit_(f, 3 * CS, r, 3), 0);
	v = rep.u.R_ATTR.attr.version;
	cr_assert_eq(rep.u.R_ATTR.attr.blocks, 3 * CS / 512);
	cr_assert_eq(truncate_(f, CS + 100), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.size, CS + 100);
	cr_assert_eq(a.version, v + 1, "a size change is a data change");
	cr_assert_eq(a.mtime, clock_ns);
	cr_assert_eq(a.blocks, (CS + 100 + 511) / 512);
	cr_assert_eq(stats().chunks, 2);
	cr_assert_eq(stats().chunk_refs, 2);
	cr_assert_eq(stats().logical, CS + 100);

	cr_assert_eq(open_(f), 0);
	cr_assert_eq(rep.u.R_FILE.refs.count, 2);
	pifs_cursor_init(&c, &rep.u.R_FILE.refs);
	cr_assert_eq(pifs_chunkref_next(&c, &got), 1);
	cr_assert_eq(got.index, 0);
	cr_assert_eq(got.len, CS);
	cr_assert_eq(pifs_chunkref_next(&c, &got), 1);
	cr_assert_eq(got.index, 1);
	cr_assert_eq(got.len, 100, "the last slot is trimmed to the size");
	cr_assert_eq(got.raw_len, CS, "the chunk itself is unchanged");

	cr_assert_eq(truncate_(f, 10 * CS), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.size, 10 * CS);
	cr_assert_eq(a.blocks, (CS + 100 + 511) / 512, "growing makes a hole, not data");
	cr_assert_eq(stats().logical, 10 * CS);
	cr_assert_eq(truncate_(f, 0), 0);
	cr_assert_eq(stats().chunks, 0);
	cr_assert_eq(rep.u.R_ATTR.attr.blocks, 0);
}

Test(meta, commit_replaces_and_clears_slots)
{
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_chunkref r1[2] = {ref(0, 1, CS), ref(4, 2, 10)};
	struct pifs_chunkref r2[2] = {ref(0, 3, CS), ref(4, 0, 0)};
	struct pifs_cursor c;
	struct pifs_chunkref got;
	struct pifs_attr a;

	cr_assert_eq(commit_(f, 4 * CS + 10, r1, 2), 0);
	a = rep.u.R_ATTR.attr;
	cr_assert_eq(a.size, 4 * CS + 10);
	cr_assert_eq(a.mtime, 777);
	cr_assert_eq(a.ctime, clock_ns);
	cr_assert_eq(a.blocks, (CS + 10 + 511) / 512, "a sparse file has fewer blocks");
	cr_assert_eq(stats().chunks, 2);
	cr_assert_eq(stats().chunk_raw, 2 * CS);
	cr_assert_eq(stats().chunk_stored, 2 * (CS / 2 + 32));

	cr_assert_eq(commit_(f, 4 * CS + 10, r2, 2), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.version, a.version + 1);
	cr_assert_eq(stats().chunks, 1);
	cr_assert_eq(stats().chunk_refs, 1);
	cr_assert_eq(open_(f), 0);
	cr_assert_eq(rep.u.R_FILE.refs.count, 1);
	pifs_cursor_init(&c, &rep.u.R_FILE.refs);
	cr_assert_eq(pifs_chunkref_next(&c, &got), 1);
	cr_assert(pifs_chunk_id_eq(&got.id, &r2[0].id));

	cr_assert_eq(commit_(f, CS / 2, NULL, 0), 0, "a commit may only shrink");
	cr_assert_eq(open_(f), 0);
	pifs_cursor_init(&c, &rep.u.R_FILE.refs);
	cr_assert_eq(pifs_chunkref_next(&c, &got), 1);
	cr_assert_eq(got.len, CS / 2);
}

Test(meta, commit_of_the_same_chunk_in_its_own_slot_keeps_it)
{
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_chunkref r = ref(0, 5, 100);

	cr_assert_eq(commit_(f, 100, &r, 1), 0);
	cr_assert_eq(commit_(f, 100, &r, 1), 0);
	cr_assert_eq(stats().chunks, 1);
	cr_assert_eq(stats().chunk_refs, 1);
}

Test(meta, dedup_counts_one_chunk_with_two_references)
{
	uint64_t f = mkfile(ROOT, "f");
	uint64_t g = mkfile(ROOT, "g");
	struct pifs_chunkref r = ref(0, 42, CS);
	struct pifs_meta_stats st;

	cr_assert_eq(commit_(f, CS, &r, 1), 0);
	cr_assert_eq(commit_(g, CS, &r, 1), 0);
	st = stats();
	cr_assert_eq(st.chunks, 1);
	cr_assert_eq(st.chunk_refs, 2);
	cr_assert_eq(st.chunk_raw, CS);
	cr_assert_eq(st.chunk_stored, CS / 2 + 32);
	cr_assert_eq(st.logical, 2 * CS);
	cr_assert_eq(unlink_(ROOT, "f"), 0);
	cr_assert_eq(stats().chunks, 1);
	cr_assert_eq(stats().chunk_refs, 1);
}

Test(meta, commit_errors)
{
	uint64_t f = mkfile(ROOT, "f");
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t p = mk(ROOT, "p", S_IFIFO | 0600);
	struct pifs_chunkref r = ref(0, 1, CS);
	struct pifs_chunkref bad = ref(0, 1, CS);

	cr_assert_fails(commit_(d, 0, &r, 1), -EISDIR);
	cr_assert_fails(commit_(p, 0, &r, 1), -EINVAL);
	cr_assert_fails(commit_(5000, 0, &r, 1), -ENOENT);
	bad.raw_len = CS - 1;
	cr_assert_fails(commit_(f, CS, &bad, 1), -EINVAL);
	bad = ref(0, 1, CS + 1);
	bad.raw_len = CS + 1;
	cr_assert_fails(commit_(f, CS, &bad, 1), -EINVAL);
	bad = ref(UINT64_MAX / CS, 1, 1);
	cr_assert_fails(commit_(f, CS, &bad, 1), -EINVAL);
}

Test(meta, open_of_a_non_regular_file_has_no_chunks)
{
	uint64_t d = mkdir_(ROOT, "d");

	cr_assert_eq(open_(d), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_FILE);
	cr_assert_eq(rep.u.R_FILE.attr.ino, d);
	cr_assert_eq(rep.u.R_FILE.refs.count, 0);
	cr_assert_eq(open_(9999), -ENOENT);
}

/* Extended attributes. */

Test(meta, xattrs_are_set_read_listed_and_removed)
{
	uint64_t f = mkfile(ROOT, "f");
	struct pifs_msg q;

	cr_assert_eq(setxattr_(f, pifs_str_of("user.b"), "2", 1, 0), 0);
	cr_assert_eq(attr_of(f).ctime, clock_ns);
	cr_assert_eq(setxattr_(f, pifs_str_of("user.a"), "one", 3, 0), 0);
	cr_assert_eq(setxattr_(f, pifs_str_of("user.empty"), NULL, 0, 0), 0);
	cr_assert_eq(getxattr_(f, "user.a"), 0);
	cr_assert_eq(rep.u.R_XATTR.value.len, 3);
	cr_assert_eq(memcmp(rep.u.R_XATTR.value.p, "one", 3), 0);
	cr_assert_eq(setxattr_(f, pifs_str_of("user.a"), "uno!", 4, 2), 0);
	cr_assert_eq(getxattr_(f, "user.a"), 0);
	cr_assert_eq(rep.u.R_XATTR.value.len, 4);

	pifs_msg_init(&q, PIFS_MSG_LISTXATTR);
	q.u.LISTXATTR.ino = f;
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.u.R_XATTR.value.len, sizeof("user.a\0user.b\0user.empty"));
	cr_assert_eq(memcmp(rep.u.R_XATTR.value.p, "user.a\0user.b\0user.empty",
			    sizeof("user.a\0user.b\0user.empty")),
		     0);

	cr_assert_eq(removexattr_(f, "user.b"), 0);
	cr_assert_eq(getxattr_(f, "user.b"), -ENODATA);
	cr_assert_eq(removexattr_(f, "user.a"), 0);
	cr_assert_eq(removexattr_(f, "user.empty"), 0);
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.u.R_XATTR.value.len, 0);
}

Test(meta, xattr_errors)
{
	uint64_t f = mkfile(ROOT, "f");
	static uint8_t big[PIFS_META_XATTR_MAX + 1];

	cr_assert_eq(setxattr_(f, pifs_str_of("user.a"), "1", 1, 0), 0);
	cr_assert_fails(setxattr_(f, pifs_str_of("user.a"), "2", 1, 1), -EEXIST);
	cr_assert_fails(setxattr_(f, pifs_str_of("user.b"), "2", 1, 2), -ENODATA);
	cr_assert_fails(setxattr_(f, pifs_str_of("user.b"), big, sizeof(big), 0), -E2BIG);
	cr_assert_eq(setxattr_(f, pifs_str_of("user.big"), big, sizeof(big) - 1, 0), 0);
	cr_assert_fails(setxattr_(f, name_of_len(256), "v", 1, 0), -ERANGE);
	cr_assert_fails(setxattr_(f, pifs_str_of(""), "v", 1, 0), -EINVAL);
	cr_assert_fails(setxattr_(f, pifs_str_of("user.c"), "v", 1, 4), -EINVAL);
	cr_assert_fails(setxattr_(888, pifs_str_of("user.c"), "v", 1, 0), -ENOENT);
	cr_assert_fails(removexattr_(f, "user.none"), -ENODATA);
	cr_assert_fails(removexattr_(888, "user.a"), -ENOENT);
	cr_assert_eq(getxattr_(f, "user.none"), -ENODATA);
	cr_assert_eq(getxattr_(888, "user.a"), -ENOENT);
}

/* LOOKUP, READDIR, STATFS. */

Test(meta, lookup_errors_and_dot_names)
{
	uint64_t d = mkdir_(ROOT, "d");
	uint64_t f = mkfile(d, "f");

	cr_assert_eq(ino_of(d, "."), (int64_t)d);
	cr_assert_eq(ino_of(d, ".."), ROOT);
	cr_assert_eq(ino_of(ROOT, ".."), ROOT);
	cr_assert_eq(ino_of(d, "nope"), -ENOENT);
	cr_assert_eq(ino_of(f, "x"), -ENOTDIR);
	cr_assert_eq(ino_of(1234, "x"), -ENOENT);
	cr_assert_eq(lookup_(d, name_of_len(256), NULL), -ENAMETOOLONG);
}

/* One READDIR reply: its names, the cookie to resume from, its eof flag. */
struct page {
	char names[64][16];
	int n;
	uint64_t last;
	uint32_t eof;
};

/* Read one page of @dir from @cookie in @max bytes into @p, checking that
 * cookies increase and that each entry's attributes are its inode's. */
static void read_page(uint64_t dir, uint64_t cookie, uint32_t max, struct page *p)
{
	struct pifs_cursor c;
	struct pifs_dirent e;
	uint64_t prev = cookie, inos[64];
	uint32_t count;
	int k;

	cr_assert_eq(readdir_(dir, cookie, max), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_DIR);
	p->n = 0;
	p->eof = rep.u.R_DIR.eof;
	count = rep.u.R_DIR.entries.count;
	pifs_cursor_init(&c, &rep.u.R_DIR.entries);
	while (pifs_dirent_next(&c, &e) > 0) {
		cr_assert_gt(e.cookie, prev, "cookies increase");
		cr_assert_lt(p->n, 64);
		cr_assert_eq(pifs_str_copy(e.name, p->names[p->n], sizeof(p->names[0])), 0);
		inos[p->n] = e.attr.ino;
		prev = e.cookie;
		p->n++;
	}
	cr_assert_eq((uint32_t)p->n, count);
	p->last = prev;
	/* Lookups reuse the reply and scratch: only after the walk. */
	for (k = 0; k < p->n; k++)
		cr_assert_eq(ino_of(dir, p->names[k]), (int64_t)inos[k]);
}

Test(meta, readdir_lists_entries_from_cookie_three)
{
	uint64_t d = mkdir_(ROOT, "d");
	struct pifs_cursor c;
	struct pifs_dirent e;
	struct page p;

	mkfile(d, "one");
	mkdir_(d, "two");
	cr_assert_eq(readdir_(d, 0, 1 << 20), 0);
	cr_assert_eq(rep.u.R_DIR.eof, 1);
	cr_assert_eq(rep.u.R_DIR.entries.count, 2);
	pifs_cursor_init(&c, &rep.u.R_DIR.entries);
	cr_assert_eq(pifs_dirent_next(&c, &e), 1);
	cr_assert_eq(e.cookie, 3);
	cr_assert(pifs_str_eq(e.name, "one"));
	cr_assert_eq(e.attr.mode, S_IFREG | 0644);
	cr_assert_eq(pifs_dirent_next(&c, &e), 1);
	cr_assert_eq(e.cookie, 4);
	cr_assert_eq(e.attr.nlink, 2);

	read_page(d, 0, 1, &p);
	cr_assert_eq(p.n, 1, "at least one entry, however small the buffer");
	cr_assert_eq(p.eof, 0);
	read_page(d, p.last, 1, &p);
	cr_assert_eq(p.n, 1);
	cr_assert_eq(p.eof, 1);
	read_page(d, p.last, 1, &p);
	cr_assert_eq(p.n, 0);
	cr_assert_eq(p.eof, 1);
	read_page(d, UINT64_MAX, 1, &p);
	cr_assert_eq(p.n, 0);
	cr_assert_eq(readdir_(ino_of(d, "one"), 0, 4096), -ENOTDIR);
	cr_assert_eq(readdir_(4242, 0, 4096), -ENOENT);
}

Test(meta, readdir_resumes_across_inserts_and_deletes_without_skip_or_repeat)
{
	enum { N = 200 };
	uint64_t d = mkdir_(ROOT, "d");
	uint8_t seen[N + 100] = {0}, gone[N + 100] = {0};
	uint64_t cookie = 0;
	char name[16];
	struct page p;
	int i, k, added = 0, pages = 0;

	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		mkfile(d, name);
	}
	do {
		read_page(d, cookie, 700, &p);
		cr_assert_gt(p.n + (int)p.eof, 0, "a page makes progress");
		for (k = 0; k < p.n; k++) {
			i = atoi(p.names[k] + 1);
			cr_assert_eq(seen[i], 0, "%s repeated", p.names[k]);
			cr_assert_eq(gone[i], 0, "%s listed after its removal", p.names[k]);
			seen[i] = 1;
		}
		cookie = p.last;
		if (p.eof)
			break;
		/* Churn between pages: delete an entry (listed already, or in
		 * the second half, not listed yet) and add a new one. */
		for (i = 0; i < N; i += 7) {
			snprintf(name, sizeof(name), "e%d", i);
			if (!gone[i] && (seen[i] || i > N / 2)) {
				cr_assert_eq(unlink_(d, name), 0);
				gone[i] = 1;
				break;
			}
		}
		if (added < 100) {
			snprintf(name, sizeof(name), "e%d", N + added++);
			mkfile(d, name);
		}
		pages++;
	} while (pages < 1000);
	cr_assert(p.eof);
	for (i = 0; i < N; i++)
		cr_assert(seen[i] || gone[i], "e%d, present throughout, was skipped", i);
	for (i = N; i < N + added; i++)
		cr_assert(seen[i], "e%d, added before the end, was skipped", i);
}

Test(meta, readdir_after_many_removals_still_resumes)
{
	uint64_t d = mkdir_(ROOT, "d");
	char name[16];
	struct page p;
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		mkfile(d, name);
	}
	read_page(d, 0, 300, &p);
	for (i = 0; i < 95; i++) {
		snprintf(name, sizeof(name), "e%d", i);
		cr_assert_eq(unlink_(d, name), 0);
	}
	read_page(d, p.last, 1 << 20, &p);
	cr_assert_eq(p.n, 5);
	cr_assert_str_eq(p.names[0], "e95");
	cr_assert_eq(p.eof, 1);
}

Test(meta, statfs_reports_the_figures_of_the_state)
{
	struct pifs_msg q;

	mkfile(ROOT, "f");
	pifs_msg_init(&q, PIFS_MSG_STATFS);
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_STATFS);
	cr_assert_eq(rep.u.R_STATFS.inodes, 2);
	cr_assert_eq(rep.u.R_STATFS.replicas, 2);
	cr_assert_eq(rep.u.R_STATFS.chunk_size, CS);
	cr_assert_eq(rep.u.R_STATFS.capacity, 0);
}

/* Determinism and snapshots. */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r, uint64_t n)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s % n;
}

/* Inode numbers that creations replied with, to aim random operations at:
 * directories, regular files and everything. */
struct known {
	uint64_t dir[256], reg[256], any[256];
	int ndir, nreg, nany;
};

static uint64_t pick(struct rng *r, const uint64_t *v, int n)
{
	if (rnd(r, 10) == 0)
		return 1 + rnd(r, 64);
	return v[rnd(r, (uint64_t)n)];
}

#define DIR_INO() pick(r, k->dir, k->ndir)
#define ANY_INO() pick(r, k->any, k->nany)
#define REG_INO() (k->nreg ? pick(r, k->reg, k->nreg) : ANY_INO())

/* A random mutation over a small namespace, so that both successes and
 * every kind of failure happen; @list backs its chunk list. */
static void random_op(struct rng *r, const struct known *k, struct pifs_msg *op,
		      struct pifs_buf *list)
{
	static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
	static const uint32_t types[] = {S_IFREG, S_IFDIR, S_IFDIR, S_IFIFO, S_IFLNK};
	uint64_t ino = DIR_INO();
	const char *name = names[rnd(r, 8)];
	struct pifs_chunkref cr;
	uint32_t i, n;

	switch (rnd(r, 12)) {
	case 0:
	case 1:
		pifs_msg_init(op, PIFS_MSG_MKNOD);
		op->u.MKNOD.parent = ino;
		op->u.MKNOD.name = pifs_str_of(name);
		op->u.MKNOD.mode = types[rnd(r, 5)] | 0644;
		break;
	case 2:
		pifs_msg_init(op, PIFS_MSG_SYMLINK);
		op->u.SYMLINK.parent = ino;
		op->u.SYMLINK.name = pifs_str_of(name);
		op->u.SYMLINK.target = pifs_str_of(names[rnd(r, 8)]);
		break;
	case 3:
		pifs_msg_init(op, PIFS_MSG_LINK);
		op->u.LINK.ino = ANY_INO();
		op->u.LINK.parent = ino;
		op->u.LINK.name = pifs_str_of(name);
		break;
	case 4:
		pifs_msg_init(op, PIFS_MSG_UNLINK);
		op->u.UNLINK.parent = ino;
		op->u.UNLINK.name = pifs_str_of(name);
		break;
	case 5:
		pifs_msg_init(op, PIFS_MSG_RMDIR);
		op->u.RMDIR.parent = ino;
		op->u.RMDIR.name = pifs_str_of(name);
		break;
	case 6:
	case 7:
		pifs_msg_init(op, PIFS_MSG_RENAME);
		op->u.RENAME.parent = ino;
		op->u.RENAME.name = pifs_str_of(name);
		op->u.RENAME.newparent = DIR_INO();
		op->u.RENAME.newname = pifs_str_of(names[rnd(r, 8)]);
		op->u.RENAME.flags = (uint32_t)rnd(r, 3);
		break;
	case 8:
		pifs_msg_init(op, PIFS_MSG_SETATTR);
		op->u.SETATTR.ino = ANY_INO();
		op->u.SETATTR.valid = (uint32_t)rnd(r, 0x200);
		op->u.SETATTR.mode = (uint32_t)rnd(r, 07777);
		op->u.SETATTR.uid = (uint32_t)rnd(r, 3);
		op->u.SETATTR.size = rnd(r, 5 * CS);
		op->u.SETATTR.mtime = (int64_t)rnd(r, 1000);
		break;
	case 9:
		pifs_buf_reset(list);
		n = (uint32_t)rnd(r, 4);
		for (i = 0; i < n; i++) {
			uint64_t chunk = rnd(r, 6);

			cr = ref(rnd(r, 6), chunk, chunk ? 1 + (uint32_t)rnd(r, CS) : 0);
			cr_assert_eq(pifs_chunkref_append(list, &cr), 0);
		}
		pifs_msg_init(op, PIFS_MSG_COMMIT);
		op->u.COMMIT.ino = REG_INO();
		op->u.COMMIT.size = rnd(r, 6 * CS);
		op->u.COMMIT.mtime = (int64_t)rnd(r, 1000);
		op->u.COMMIT.refs = pifs_list_of(list, n);
		break;
	case 10:
		pifs_msg_init(op, PIFS_MSG_SETXATTR);
		op->u.SETXATTR.ino = ANY_INO();
		op->u.SETXATTR.name = pifs_str_of(name);
		op->u.SETXATTR.value.p = (const uint8_t *)name;
		op->u.SETXATTR.value.len = 1;
		op->u.SETXATTR.flags = (uint32_t)rnd(r, 3);
		break;
	default:
		if (rnd(r, 2)) {
			pifs_msg_init(op, PIFS_MSG_REMOVEXATTR);
			op->u.REMOVEXATTR.ino = ANY_INO();
			op->u.REMOVEXATTR.name = pifs_str_of(name);
		} else {
			pifs_msg_init(op, PIFS_MSG_NODE_ADD);
			op->u.NODE_ADD.id = (uint32_t)rnd(r, 5);
			op->u.NODE_ADD.weight = (uint32_t)rnd(r, 3);
			op->u.NODE_ADD.addr = pifs_str_of(name);
		}
		break;
	}
}

/* Apply @n random operations from @seed to @s; returns how many succeeded.
 * The operations depend on earlier replies, so two runs stay the same only
 * if the state machine is deterministic. */
static int random_run(struct pifs_meta *s, uint64_t seed, int n)
{
	struct rng r = {seed};
	struct known k = {.dir = {ROOT}, .any = {ROOT}, .ndir = 1, .nany = 1, .nreg = 0};
	struct pifs_buf list;
	struct pifs_msg op;
	int i, ok = 0;

	pifs_buf_init(&list);
	for (i = 0; i < n; i++) {
		random_op(&r, &k, &op, &list);
		if (apply_to(s, &op) != 0)
			continue;
		ok++;
		if (op.type != PIFS_MSG_MKNOD && op.type != PIFS_MSG_SYMLINK)
			continue;
		if (S_ISDIR(rep.u.R_ATTR.attr.mode) && k.ndir < 256)
			k.dir[k.ndir++] = rep.u.R_ATTR.attr.ino;
		if (S_ISREG(rep.u.R_ATTR.attr.mode) && k.nreg < 256)
			k.reg[k.nreg++] = rep.u.R_ATTR.attr.ino;
		if (k.nany < 256)
			k.any[k.nany++] = rep.u.R_ATTR.attr.ino;
	}
	pifs_buf_fini(&list);
	return ok;
}

Test(meta, the_same_entries_give_the_same_state)
{
	struct pifs_meta *s = pifs_meta_new();
	int64_t start = clock_ns;
	int ok;

	/* Both states start from an INIT at the same time. */
	clock_ns = 1000;
	cr_assert_eq(init_to(s, 2, CS), 0);
	clock_ns = start;
	ok = random_run(m, 0x5eed, 2000);
	clock_ns = start;
	cr_assert_eq(random_run(s, 0x5eed, 2000), ok);
	cr_assert_gt(ok, 600, "the random run must do real work (%d ops succeeded)", ok);
	cr_assert_gt(stats().inodes, 5);
	cr_assert_eq(pifs_meta_digest(s), pifs_meta_digest(m));
	cr_assert_neq(pifs_meta_digest(m), 0);
	cr_assert_eq(unlink_(ROOT, "no-such-name"), -ENOENT);
	cr_assert_neq(pifs_meta_digest(s), pifs_meta_digest(m), "the index is part of the state");
	pifs_meta_free(s);
}

Test(meta, digest_equals_the_hash_of_the_snapshot)
{
	struct pifs_buf b;
	char name[300];
	int i;

	/* Big enough (about 300 KiB) for the digest to hash it in pieces. */
	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%0200d", i);
		mkfile(ROOT, name);
	}
	random_run(m, 77, 3000);
	pifs_buf_init(&b);
	cr_assert_eq(pifs_meta_save(m, &b), 0);
	cr_assert_eq(pifs_meta_digest(m), XXH3_64bits(b.p, b.len));
	pifs_buf_fini(&b);
}

static int full_after_one_piece(void *ctx, const void *p, size_t len)
{
	int *calls = ctx;

	(void)p;
	(void)len;
	return ++*calls > 1 ? -ENOSPC : 0;
}

Test(meta, save_to_stops_at_the_first_sink_error)
{
	char name[300];
	int i, calls = 0;

	for (i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%0200d", i);
		mkfile(ROOT, name);
	}
	cr_assert_eq(pifs_meta_save_to(m, full_after_one_piece, &calls), -ENOSPC);
	cr_assert_eq(calls, 2, "nothing is handed over after the error");
}

Test(meta, a_loaded_snapshot_is_the_same_state)
{
	struct pifs_meta *s = pifs_meta_new();
	struct pifs_buf b, b2;
	int64_t start;

	random_run(m, 0xabc, 2000);
	pifs_buf_init(&b);
	pifs_buf_init(&b2);
	cr_assert_eq(pifs_meta_save(m, &b), 0);
	cr_assert_eq(pifs_meta_load(s, b.p, b.len), 0);
	cr_assert_eq(pifs_meta_digest(s), pifs_meta_digest(m));
	cr_assert_eq(pifs_meta_save(s, &b2), 0);
	cr_assert_eq(b2.len, b.len);
	cr_assert_eq(memcmp(b.p, b2.p, b.len), 0);
	cr_assert_eq(pifs_meta_index(s), pifs_meta_index(m));
	struct pifs_meta_stats x, y;
	pifs_meta_stats(m, &x);
	pifs_meta_stats(s, &y);
	cr_assert_eq(memcmp(&x, &y, sizeof(x)), 0, "the figures are rebuilt");

	/* And it behaves the same from there on. */
	start = clock_ns;
	random_run(m, 0xdef, 1000);
	clock_ns = start;
	random_run(s, 0xdef, 1000);
	cr_assert_eq(pifs_meta_digest(s), pifs_meta_digest(m));
	pifs_buf_fini(&b);
	pifs_buf_fini(&b2);
	pifs_meta_free(s);
}

Test(meta, an_uninitialised_state_round_trips)
{
	struct pifs_meta *a = pifs_meta_new(), *s = pifs_meta_new();
	struct pifs_buf b;

	pifs_buf_init(&b);
	cr_assert_eq(pifs_meta_save(a, &b), 0);
	cr_assert_eq(pifs_meta_load(s, b.p, b.len), 0);
	cr_assert_eq(pifs_meta_digest(s), pifs_meta_digest(a));
	cr_assert_eq(pifs_meta_load(m, b.p, b.len), -EINVAL, "load needs a new state");
	pifs_buf_fini(&b);
	pifs_meta_free(a);
	pifs_meta_free(s);
}

Test(meta, load_refuses_every_truncation_and_bit_flip)
{
	struct pifs_meta *s = pifs_meta_new();
	struct rng r = {99};
	struct pifs_buf b;
	size_t len, i;

	random_run(m, 0x77, 300);
	pifs_buf_init(&b);
	cr_assert_eq(pifs_meta_save(m, &b), 0);
	for (len = 0; len < b.len; len++)
		cr_assert_eq(pifs_meta_load(s, b.p, len), -EBADMSG, "truncated at %zu", len);
	for (i = 0; i < 2000; i++) {
		size_t bit = rnd(&r, b.len * 8);

		b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cr_assert_eq(pifs_meta_load(s, b.p, b.len), -EBADMSG, "bit %zu flipped", bit);
		b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	cr_assert_eq(pifs_meta_load(s, b.p, b.len), 0, "the intact snapshot still loads");
	pifs_buf_fini(&b);
	pifs_meta_free(s);
}

/* Recompute the trailing checksum of the snapshot in @b after an edit. */
static void reseal(struct pifs_buf *b)
{
	uint64_t h = XXH3_64bits(b->p, b->len - 8);
	int i;

	for (i = 0; i < 8; i++)
		b->p[b->len - 8 + i] = (uint8_t)(h >> (56 - 8 * i));
}

Test(meta, load_refuses_a_sealed_snapshot_whose_structure_lies)
{
	struct pifs_meta *s = pifs_meta_new();
	struct rng r = {1234};
	struct pifs_buf b;
	size_t i, len, cut;
	int rc;

	mkdir_(ROOT, "d");
	pifs_buf_init(&b);
	cr_assert_eq(pifs_meta_save(m, &b), 0);
	/* No nodes, no chunks: the root's nlink is at byte 81. */
	cr_assert_eq(b.p[84], 3);
	b.p[84] = 4;
	reseal(&b);
	cr_assert_eq(pifs_meta_load(s, b.p, b.len), -EBADMSG, "a wrong link count");
	pifs_buf_reset(&b);

	/* Damage inside a valid checksum must never crash: cut the body short,
	 * or flip bits, and seal it again. */
	random_run(m, 0x99, 400);
	cr_assert_eq(pifs_meta_save(m, &b), 0);
	len = b.len;
	for (i = 0; i < 3000; i++) {
		size_t bit = rnd(&r, (len - 8) * 8);

		b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		reseal(&b);
		rc = pifs_meta_load(s, b.p, b.len);
		cr_assert(rc == 0 || rc == -EBADMSG, "bit %zu: %d", bit, rc);
		if (rc == 0) {
			pifs_meta_free(s);
			s = pifs_meta_new();
		}
		b.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		reseal(&b);
	}
	for (cut = 8; cut < len; cut += 1 + rnd(&r, 16)) {
		struct pifs_buf c;

		pifs_buf_init(&c);
		cr_assert_eq(pifs_buf_append(&c, b.p, cut), 0);
		reseal(&c);
		cr_assert_eq(pifs_meta_load(s, c.p, c.len), -EBADMSG, "body cut to %zu", cut - 8);
		pifs_buf_fini(&c);
	}
	pifs_buf_fini(&b);
	pifs_meta_free(s);
}

/* A hand-made snapshot of directories only, in the documented format, to
 * build structures that apply can never produce. */
struct sdir {
	uint64_t ino, parent;
	uint32_t nlink;
	int n;
	struct {
		uint64_t ino;
		const char *name;
	} e[2];
};

static void put(struct pifs_buf *b, uint64_t v, unsigned n)
{
	uint8_t t[8];
	unsigned i;

	for (i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	cr_assert_eq(pifs_buf_append(b, t, n), 0);
}

static void build(struct pifs_buf *b, const struct sdir *d, int n)
{
	int i, k;

	pifs_buf_reset(b);
	put(b, 0x5049464d, 4);
	put(b, 1, 4);
	put(b, 1, 8); /* index */
	put(b, 1, 1); /* ready */
	put(b, 1, 8); /* epoch */
	put(b, 2, 4);
	put(b, CS, 4);
	put(b, 0, 8);
	put(b, 100, 8); /* next_ino */
	put(b, 0, 4);	/* nodes */
	put(b, 0, 8);	/* chunks */
	put(b, (uint64_t)n, 8);
	for (i = 0; i < n; i++) {
		put(b, d[i].ino, 8);
		put(b, S_IFDIR | 0755, 4);
		put(b, d[i].nlink, 4);
		put(b, 0, 4); /* uid */
		put(b, 0, 4); /* gid */
		put(b, 0, 4); /* rdev */
		put(b, 4096, 8);
		put(b, 0, 8); /* atime */
		put(b, 0, 8); /* mtime */
		put(b, 0, 8); /* ctime */
		put(b, 1, 8);
		put(b, 0, 4); /* xattrs */
		put(b, d[i].parent, 8);
		put(b, 3 + (uint64_t)d[i].n, 8);
		put(b, (uint64_t)d[i].n, 4);
		for (k = 0; k < d[i].n; k++) {
			put(b, 3 + (uint64_t)k, 8);
			put(b, d[i].e[k].ino, 8);
			put(b, strlen(d[i].e[k].name), 1);
			cr_assert_eq(pifs_buf_append(b, d[i].e[k].name, strlen(d[i].e[k].name)), 0);
		}
	}
	put(b, 0, 8);
	reseal(b);
}

static int load_dirs(const struct sdir *d, int n)
{
	struct pifs_meta *s = pifs_meta_new();
	struct pifs_buf b;
	int rc;

	pifs_buf_init(&b);
	build(&b, d, n);
	rc = pifs_meta_load(s, b.p, b.len);
	pifs_buf_fini(&b);
	pifs_meta_free(s);
	return rc;
}

Test(meta, load_accepts_a_well_formed_tree)
{
	struct sdir d[3] = {
	    {ROOT, ROOT, 3, 1, {{2, "a"}}},
	    {2, ROOT, 3, 1, {{3, "b"}}},
	    {3, 2, 2, 0, {{0, NULL}}},
	};

	cr_assert_eq(load_dirs(d, 3), 0, "the hand-made format must match the real one");
}

Test(meta, load_refuses_a_directory_cycle_beside_the_tree)
{
	/* a and b hold each other, and nothing holds them. */
	struct sdir d[3] = {
	    {ROOT, ROOT, 2, 0, {{0, NULL}}},
	    {2, 3, 3, 1, {{3, "b"}}},
	    {3, 2, 3, 1, {{2, "a"}}},
	};

	cr_assert_eq(load_dirs(d, 3), -EBADMSG);
}

Test(meta, load_refuses_dangling_entries_and_wrong_parents)
{
	struct sdir dangling[1] = {{ROOT, ROOT, 2, 1, {{9, "x"}}}};
	struct sdir parent[3] = {
	    {ROOT, ROOT, 3, 1, {{2, "a"}}},
	    {2, ROOT, 3, 1, {{3, "b"}}},
	    {3, ROOT, 2, 0, {{0, NULL}}},
	};
	struct sdir twice[3] = {
	    {ROOT, ROOT, 4, 2, {{2, "a"}, {2, "b"}}},
	    {2, ROOT, 2, 0, {{0, NULL}}},
	};
	struct sdir no_root[1] = {{2, 2, 2, 0, {{0, NULL}}}};

	cr_assert_eq(load_dirs(dangling, 1), -EBADMSG);
	cr_assert_eq(load_dirs(parent, 3), -EBADMSG);
	cr_assert_eq(load_dirs(twice, 2), -EBADMSG);
	cr_assert_eq(load_dirs(no_root, 1), -EBADMSG);
}

static int node_set_(uint32_t id, uint32_t set, uint32_t clear, uint32_t weight)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_NODE_SET);
	op.u.NODE_SET.id = id;
	op.u.NODE_SET.set = set;
	op.u.NODE_SET.clear = clear;
	op.u.NODE_SET.weight = weight;
	return apply_to(m, &op);
}

static int node_del_(uint32_t id)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_NODE_DEL);
	op.u.NODE_DEL.id = id;
	return apply_to(m, &op);
}

Test(meta, node_set_changes_only_what_it_names_and_bumps_the_epoch)
{
	struct pifs_meta_stats st;
	uint32_t flags, weight;
	uint64_t epoch;

	cr_assert_eq(node_add_(2, 5, PIFS_NODE_IN | PIFS_NODE_UP, "10.0.0.2:7070"), 0);
	pifs_meta_stats(m, &st);
	epoch = st.epoch;
	cr_assert_eq(node_set_(2, PIFS_NODE_DRAIN, PIFS_NODE_IN, 0), 0);
	cr_assert_eq(pifs_meta_node(m, 2, &flags, &weight), 0);
	cr_assert_eq(flags, PIFS_NODE_UP | PIFS_NODE_DRAIN);
	cr_assert_eq(weight, 5);
	pifs_meta_stats(m, &st);
	cr_assert_eq(st.epoch, epoch + 1);
	cr_assert_eq(node_set_(2, 0, 0, 9), 0);
	cr_assert_eq(pifs_meta_node(m, 2, &flags, &weight), 0);
	cr_assert_eq(weight, 9);
	cr_assert_eq(flags, PIFS_NODE_UP | PIFS_NODE_DRAIN);
	/* Nothing changes: the epoch stays, so nobody refetches the map. */
	pifs_meta_stats(m, &st);
	epoch = st.epoch;
	cr_assert_eq(node_set_(2, PIFS_NODE_UP, 0, 9), 0);
	pifs_meta_stats(m, &st);
	cr_assert_eq(st.epoch, epoch);
	cr_assert_eq(node_set_(3, PIFS_NODE_IN, 0, 0), -ENOENT);
}

Test(meta, node_del_takes_a_node_out_of_the_map_but_never_the_voter)
{
	uint32_t flags, weight;

	cr_assert_eq(node_add_(1, 1, PIFS_NODE_IN | PIFS_NODE_META, "10.0.0.1:7070"), 0);
	cr_assert_eq(node_add_(2, 1, PIFS_NODE_IN, "10.0.0.2:7070"), 0);
	cr_assert_eq(node_add_(3, 1, PIFS_NODE_IN, "10.0.0.3:7070"), 0);
	cr_assert_eq(node_del_(2), 0);
	cr_assert_eq(pifs_meta_node(m, 2, &flags, &weight), -ENOENT);
	cr_assert_eq(pifs_meta_node(m, 3, &flags, &weight), 0);
	cr_assert_eq(node_del_(2), -ENOENT);
	cr_assert_eq(node_del_(1), -EBUSY);
	cr_assert_eq(pifs_meta_node(m, 1, &flags, &weight), 0);
}

Test(meta, chunk_refs_says_which_chunks_files_still_use)
{
	struct pifs_chunkref r = ref(0, 0x11, 100);
	struct pifs_chunkid ids[3] = {{cid(0x11)}, {cid(0x22)}, {cid(0x11)}};
	struct pifs_buf l;
	struct pifs_msg q;
	uint64_t f = mk(ROOT, "f", S_IFREG | 0644);

	cr_assert_eq(commit_(f, 100, &r, 1), 0);
	pifs_buf_init(&l);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(pifs_chunkid_append(&l, &ids[i]), 0);
	pifs_msg_init(&q, PIFS_MSG_CHUNK_REFS);
	q.u.CHUNK_REFS.ids = pifs_list_of(&l, 3);
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_HAS);
	cr_assert_eq(rep.u.R_HAS.have.len, 3);
	cr_assert_eq(rep.u.R_HAS.have.p[0], 1);
	cr_assert_eq(rep.u.R_HAS.have.p[1], 0);
	cr_assert_eq(rep.u.R_HAS.have.p[2], 1);
	/* Once the file is gone, so is the reference. */
	cr_assert_eq(unlink_(ROOT, "f"), 0);
	cr_assert_eq(query(&q), 0);
	cr_assert_eq(rep.u.R_HAS.have.p[0], 0);
	pifs_buf_fini(&l);
}
