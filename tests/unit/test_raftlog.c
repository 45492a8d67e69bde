/* test_raftlog.c - a voter's Raft log on disk: entries, term and vote across
 * reopen, torn tails and damage, truncation, snapshots (local, and sent in
 * pieces to another voter), conversion of a directory of fs/wal.c, and a
 * syncer thread beside the owner. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "raftlog.h"
#include "wal.h"

#define MAX_ENTRIES 512

static char dir[] = "/tmp/pifs-test-raftlog-XXXXXX";
static char path[512];
static char meta_dir[64];
static struct pifs_buf scratch;
static int64_t clock_ns = 5000;
static const struct pifs_raft_conf voters = {3, {1, 2, 3}};
/* terms[i]: the term entry i was appended with, for checking them back. */
static uint64_t terms[MAX_ENTRIES];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(meta_dir, sizeof(meta_dir), "%s/meta", dir);
	pifs_buf_init(&scratch);
}

static void teardown(void)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	pifs_buf_fini(&scratch);
}

TestSuite(raftlog, .init = setup, .fini = teardown);

/* The path of @name in the directory @d. */
static const char *file_in(const char *d, const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", d, name);
	return path;
}

static const char *file(const char *name)
{
	return file_in(meta_dir, name);
}

static off_t file_size(const char *name)
{
	struct stat st;

	cr_assert_eq(stat(file(name), &st), 0, "%s", file(name));
	return st.st_size;
}

static bool file_exists(const char *name)
{
	struct stat st;

	return stat(file(name), &st) == 0;
}

static void flip_bit(const char *name, off_t byte, int bit)
{
	int fd = open(file(name), O_RDWR);
	uint8_t c;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, byte), 1);
	c ^= (uint8_t)(1u << bit);
	cr_assert_eq(pwrite(fd, &c, 1, byte), 1);
	close(fd);
}

/* Open the log in @d into a new state @m. */
static int open_in(const char *d, struct pifs_meta **m, struct pifs_raftlog **l,
		   struct pifs_raft_state *st)
{
	*m = pifs_meta_new();
	cr_assert_not_null(*m);
	return pifs_raftlog_open(d, &voters, *m, l, st);
}

static int reopen(struct pifs_meta **m, struct pifs_raftlog **l, struct pifs_raft_state *st)
{
	return open_in(meta_dir, m, l, st);
}

static void close_all(struct pifs_meta *m, struct pifs_raftlog *l)
{
	pifs_raftlog_close(l);
	pifs_meta_free(m);
}

/* Entry @index of term @term: its bytes depend on both, its length and
 * type on the index, so that a mixed-up entry shows. */
static void make_entry(uint64_t index, uint64_t term, uint8_t *buf, struct pifs_raft_entry *e)
{
	uint32_t j;

	e->term = term;
	e->type = index % 7 == 0 ? PIFS_RAFT_NOOP : PIFS_RAFT_DATA;
	e->len = e->type == PIFS_RAFT_NOOP ? 0 : (uint32_t)((index * 37) % 300 + 1);
	for (j = 0; j < e->len; j++)
		buf[j] = (uint8_t)(index * 7 + j + term);
	e->data = buf;
}

/* Queue entries @from to @to of term @term. */
static void add(struct pifs_raftlog *l, uint64_t from, uint64_t to, uint64_t term)
{
	uint8_t buf[512];
	struct pifs_raft_entry e;

	for (uint64_t i = from; i <= to; i++) {
		make_entry(i, term, buf, &e);
		cr_assert_eq(pifs_raftlog_append(l, i, &e), 0, "entry %lu", (unsigned long)i);
		terms[i] = term;
	}
}

/* The bytes entry @index takes in raft.log. */
static off_t entry_bytes(uint64_t index)
{
	uint8_t buf[512];
	struct pifs_raft_entry e;

	make_entry(index, 1, buf, &e);
	return 21 + (off_t)e.len + 8;
}

struct seen {
	uint64_t first, next; /* the first index seen, and the one expected next */
	size_t n;
};

static int check_one(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct seen *s = ctx;
	uint8_t buf[512];
	struct pifs_raft_entry want;

	if (s->n == 0)
		s->first = s->next = index;
	cr_assert_eq(index, s->next, "entries come in order");
	cr_assert_lt(index, MAX_ENTRIES);
	make_entry(index, terms[index], buf, &want);
	cr_assert_eq(e->term, want.term, "term of entry %lu", (unsigned long)index);
	cr_assert_eq(e->type, want.type);
	cr_assert_eq(e->len, want.len, "length of entry %lu", (unsigned long)index);
	cr_assert_eq(memcmp(e->data, want.data, want.len), 0);
	s->next++;
	s->n++;
	return 0;
}

/* The log holds exactly entries @first to @last, as added. */
static void expect_entries(struct pifs_raftlog *l, uint64_t first, uint64_t last)
{
	struct seen s = {0};

	cr_assert_eq(pifs_raftlog_entries(l, check_one, &s), 0);
	cr_assert_eq(s.n, last + 1 - first, "%zu entries, %lu expected", s.n,
		     (unsigned long)(last + 1 - first));
	if (s.n > 0)
		cr_assert_eq(s.first, first);
	cr_assert_eq(pifs_raftlog_last_index(l), last);
}

/* A log of entries 1 to @n (term 1 to 5, increasing), written in two
 * batches, then closed. */
static void write_log(uint64_t n)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	cr_assert_eq(reopen(&m, &l, &st), 0);
	for (uint64_t i = 1; i <= n; i++) {
		add(l, i, i, 1 + i * 5 / (n + 1));
		if (i == n / 2)
			cr_assert_eq(pifs_raftlog_write(l), 0);
	}
	cr_assert_eq(pifs_raftlog_write(l), 0);
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)file_size("raft.log"));
	close_all(m, l);
}

static void apply_op(struct pifs_meta *m, struct pifs_msg *op)
{
	struct pifs_msg rep;

	cr_assert_eq(pifs_meta_apply(m, pifs_meta_index(m) + 1, op, &rep, &scratch), 0);
}

/* Apply @op to @m as its next entry and queue it in @l as a DATA entry of
 * term @term. */
static void log_op(struct pifs_raftlog *l, struct pifs_meta *m, uint64_t term, struct pifs_msg *op)
{
	struct pifs_raft_entry e = {.term = term, .type = PIFS_RAFT_DATA};
	struct pifs_buf enc;

	pifs_proto_stamp(op, ++clock_ns);
	pifs_buf_init(&enc);
	cr_assert_eq(pifs_proto_encode(op, &enc), 0);
	apply_op(m, op);
	e.data = enc.p;
	e.len = (uint32_t)enc.len;
	cr_assert_eq(pifs_raftlog_append(l, pifs_meta_index(m), &e), 0);
	pifs_buf_fini(&enc);
}

static void init_op(struct pifs_msg *op)
{
	pifs_msg_init(op, PIFS_MSG_INIT);
	op->u.INIT.replicas = 2;
	op->u.INIT.chunk_size = 4096;
	op->u.INIT.cluster_id = 7;
}

static void mkdir_op(struct pifs_msg *op, const char *name)
{
	pifs_msg_init(op, PIFS_MSG_MKNOD);
	op->u.MKNOD.parent = PIFS_META_ROOT;
	op->u.MKNOD.name = pifs_str_of(name);
	op->u.MKNOD.mode = S_IFDIR | 0755;
}

/* Queue INIT, then directories d@from.. up to entry @last, in @term. */
static void log_ops(struct pifs_raftlog *l, struct pifs_meta *m, uint64_t last, uint64_t term)
{
	struct pifs_msg op;
	char name[16];

	while (pifs_meta_index(m) < last) {
		if (pifs_meta_index(m) == 0) {
			init_op(&op);
		} else {
			snprintf(name, sizeof(name), "d%lu", (unsigned long)pifs_meta_index(m));
			mkdir_op(&op, name);
		}
		log_op(l, m, term, &op);
	}
}

/* Apply every entry of the log past @m's index to @m. */
static int apply_entry(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct pifs_meta *m = ctx;
	struct pifs_msg op;

	if (index <= pifs_meta_index(m))
		return 0;
	cr_assert_eq(e->type, PIFS_RAFT_DATA);
	cr_assert_eq(pifs_proto_decode(e->data, e->len, &op), 0);
	apply_op(m, &op);
	return 0;
}

Test(raftlog, an_empty_directory_opens_at_term_0_with_the_initial_voters)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint8_t b[16];

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.term, 0);
	cr_assert_eq(st.vote, 0);
	cr_assert_eq(st.snap_index, 0);
	cr_assert_eq(st.snap_term, 0);
	cr_assert_eq(st.applied, 0);
	cr_assert_eq(st.conf.n, 3);
	cr_assert_eq(memcmp(st.conf.id, voters.id, sizeof(voters.id)), 0);
	cr_assert_not(pifs_raftlog_migrated(l));
	cr_assert_eq(pifs_meta_index(m), 0);
	cr_assert_eq(pifs_raftlog_size(l), 0);
	cr_assert_eq(pifs_raftlog_write(l), 0, "nothing queued, nothing to do");
	cr_assert_eq(pifs_raftlog_sync(l), 0);
	expect_entries(l, 1, 0);
	cr_assert_eq(pifs_raftlog_snap_read(l, 0, b, sizeof(b)), -ENOENT);
	cr_assert_eq(file_size("raft.log"), 0);
	close_all(m, l);
}

Test(raftlog, open_refuses_an_invalid_set_of_voters)
{
	struct pifs_raft_conf bad = {2, {3, 3}};
	struct pifs_raft_state st;
	struct pifs_raftlog *l = (struct pifs_raftlog *)1;
	struct pifs_meta *m = pifs_meta_new();

	cr_assert_eq(pifs_raftlog_open(meta_dir, &bad, m, &l, &st), -EINVAL);
	cr_assert_null(l);
	bad.n = 0;
	cr_assert_eq(pifs_raftlog_open(meta_dir, &bad, m, &l, &st), -EINVAL);
	pifs_meta_free(m);
}

Test(raftlog, append_refuses_an_entry_out_of_order_or_too_long)
{
	struct pifs_raft_entry e = {.term = 1, .type = PIFS_RAFT_DATA, .data = NULL, .len = 0};
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(pifs_raftlog_append(l, 2, &e), -EINVAL);
	cr_assert_eq(pifs_raftlog_append(l, 0, &e), -EINVAL);
	e.len = PIFS_PROTO_MAX_MSG + 1;
	cr_assert_eq(pifs_raftlog_append(l, 1, &e), -EINVAL);
	add(l, 1, 3, 1);
	cr_assert_eq(pifs_raftlog_append(l, 3, &e), -EINVAL);
	cr_assert_eq(pifs_raftlog_last_index(l), 3);
	close_all(m, l);
}

Test(raftlog, written_entries_survive_reopen_and_queued_ones_do_not)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	write_log(40);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 40);
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)file_size("raft.log"));
	add(l, 41, 45, 9);
	expect_entries(l, 1, 45);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 40);
	add(l, 41, 42, 9);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 42);
	close_all(m, l);
}

/* Files of this process may grow to @bytes, no further (a full disk). */
static void limit_files(rlim_t bytes)
{
	struct rlimit rl;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = bytes;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

Test(raftlog, a_failed_write_leaves_no_half_entry_behind)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	off_t end;

	write_log(3);
	end = file_size("raft.log");
	cr_assert_eq(reopen(&m, &l, &st), 0);
	/* Room for part of the next two entries only. */
	limit_files((rlim_t)(end + entry_bytes(4) + 10));
	add(l, 4, 5, 2);
	cr_assert_eq(pifs_raftlog_write(l), -EFBIG);
	cr_assert_eq(file_size("raft.log"), end, "the partial write is cut back");
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)end);
	cr_assert_eq(pifs_raftlog_last_index(l), 3, "the failed entries are gone");
	close_all(m, l);

	/* Space comes back: entries written now must not hide behind garbage. */
	limit_files(RLIM_INFINITY);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 3);
	add(l, 4, 4, 3);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 4);
	close_all(m, l);
}

Test(raftlog, term_and_vote_survive_reopen)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(pifs_raftlog_set_hard(l, 7, 2), 0);
	cr_assert_eq(pifs_raftlog_set_hard(l, 9, 3), 0);
	close_all(m, l);
	cr_assert_not(file_exists("raft.hard.tmp"));
	cr_assert_eq(file_size("raft.hard"), 28);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.term, 9);
	cr_assert_eq(st.vote, 3);
	cr_assert_eq(pifs_raftlog_set_hard(l, 10, 0), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.term, 10);
	cr_assert_eq(st.vote, 0);
	close_all(m, l);
}

Test(raftlog, a_torn_last_entry_is_cut_and_the_log_goes_on)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	off_t end = 0;

	write_log(10);
	for (uint64_t i = 1; i <= 9; i++)
		end += entry_bytes(i);
	cr_assert_eq(truncate(file("raft.log"), end + entry_bytes(10) / 2), 0);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 9);
	cr_assert_eq(file_size("raft.log"), end, "the torn entry is cut off the file");
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)end);
	add(l, 10, 12, 6);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 12);
	close_all(m, l);
}

Test(raftlog, a_tail_shorter_than_an_entry_head_is_cut)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	off_t end;

	write_log(5);
	end = file_size("raft.log");
	cr_assert_eq(truncate(file("raft.log"), end - entry_bytes(5) + 7), 0);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 4);
	cr_assert_eq(file_size("raft.log"), end - entry_bytes(5));
	close_all(m, l);
}

Test(raftlog, garbage_after_the_last_entry_is_cut)
{
	static const char junk[] = "\0\0\0\x05garbage that is not an entry";
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	off_t end;
	int fd;

	write_log(10);
	end = file_size("raft.log");
	fd = open(file("raft.log"), O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 10);
	cr_assert_eq(file_size("raft.log"), end);
	add(l, 11, 11, 6);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 11);
	close_all(m, l);
}

Test(raftlog, a_flipped_bit_in_the_middle_cuts_the_log_there)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	off_t at = 0;

	write_log(10);
	for (uint64_t i = 1; i <= 4; i++)
		at += entry_bytes(i);
	flip_bit("raft.log", at + 25, 3); /* entry 5's data */
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 4);
	cr_assert_eq(file_size("raft.log"), at);
	close_all(m, l);
}

/* Entry @index of term @term as raft.log holds it, encoded here again from
 * the format in raftlog.h; returns its length. */
static size_t encode_entry(uint64_t index, uint64_t term, uint8_t *out)
{
	uint8_t buf[512];
	struct pifs_raft_entry e;
	uint64_t h;
	size_t n;

	make_entry(index, term, buf, &e);
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(e.len >> (24 - 8 * i));
	for (int i = 0; i < 8; i++) {
		out[4 + i] = (uint8_t)(index >> (56 - 8 * i));
		out[12 + i] = (uint8_t)(term >> (56 - 8 * i));
	}
	out[20] = e.type;
	memcpy(out + 21, buf, e.len);
	n = 21 + e.len;
	h = XXH3_64bits(out, n);
	for (int i = 0; i < 8; i++)
		out[n + i] = (uint8_t)(h >> (56 - 8 * i));
	return n + 8;
}

Test(raftlog, entries_are_written_as_the_header_says)
{
	uint8_t want[600], got[600];
	size_t n;
	int fd;

	write_log(3);
	n = encode_entry(1, terms[1], want);
	fd = open(file("raft.log"), O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, got, n, 0), (ssize_t)n);
	close(fd);
	cr_assert_eq(memcmp(got, want, n), 0);
}

Test(raftlog, an_entry_out_of_sequence_cuts_the_log_there)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint8_t ent[600];
	size_t n;
	off_t at;
	int fd;

	write_log(3);
	at = file_size("raft.log");
	/* A well-formed entry 5 after entry 3, as if 4 were lost. */
	n = encode_entry(5, 1, ent);
	fd = open(file("raft.log"), O_WRONLY | O_APPEND);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, ent, n), (ssize_t)n);
	close(fd);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 3);
	cr_assert_eq(file_size("raft.log"), at);
	close_all(m, l);
}

Test(raftlog, truncate_drops_written_and_queued_entries_and_the_log_goes_on)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	write_log(10);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	add(l, 11, 14, 5);
	/* Queued only. */
	cr_assert_eq(pifs_raftlog_truncate(l, 13), 0);
	expect_entries(l, 1, 12);
	cr_assert_eq(pifs_raftlog_truncate(l, 20), 0, "past the end: nothing to do");
	expect_entries(l, 1, 12);
	/* Written and queued. */
	cr_assert_eq(pifs_raftlog_truncate(l, 6), 0);
	expect_entries(l, 1, 5);
	add(l, 6, 8, 7);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	cr_assert_eq(pifs_raftlog_sync(l), 0);
	expect_entries(l, 1, 8);
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)file_size("raft.log"));
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 8);
	/* Everything. */
	cr_assert_eq(pifs_raftlog_truncate(l, 1), 0);
	expect_entries(l, 1, 0);
	cr_assert_eq(pifs_raftlog_size(l), 0);
	add(l, 1, 2, 8);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	expect_entries(l, 1, 2);
	close_all(m, l);
}

Test(raftlog, a_flipped_bit_in_the_term_file_is_ebadmsg)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(pifs_raftlog_set_hard(l, 4, 1), 0);
	close_all(m, l);
	flip_bit("raft.hard", 15, 0);
	cr_assert_eq(reopen(&m, &l, &st), -EBADMSG);
	pifs_meta_free(m);
	cr_assert_eq(truncate(file("raft.hard"), 27), 0);
	cr_assert_eq(reopen(&m, &l, &st), -EBADMSG, "a short term file is damage too");
	pifs_meta_free(m);
}

/* A log of INIT and directories up to entry 20 in term 2, and a snapshot of
 * the state at entry 12 in @meta_dir. Returns the digest at 12 in @at12 and
 * at 20 in @at20. @crash: put the log back as it was before the snapshot,
 * as if the process had died between writing the snapshot and rewriting
 * the log (which is written aside and renamed: a second link keeps the old
 * one). */
static void write_snapshot_log(uint64_t *at12, uint64_t *at20, bool crash)
{
	struct pifs_raft_state st;
	char saved[300];
	struct pifs_raftlog *l;
	struct pifs_meta *m, *full = pifs_meta_new();

	cr_assert_eq(reopen(&m, &l, &st), 0);
	log_ops(l, m, 12, 2);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	*at12 = pifs_meta_digest(m);
	/* The log runs ahead of the state that is snapshotted. */
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, full), 0);
	log_ops(l, full, 20, 2);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	*at20 = pifs_meta_digest(full);
	snprintf(saved, sizeof(saved), "%s/saved.log", dir);
	if (crash)
		cr_assert_eq(link(file("raft.log"), saved), 0);
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 12, 2, &voters), 0);
	cr_assert_eq(pifs_raftlog_last_index(l), 20);
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)file_size("raft.log"));
	pifs_meta_free(full);
	close_all(m, l);
	if (crash)
		cr_assert_eq(rename(saved, file("raft.log")), 0);
}

Test(raftlog, a_snapshot_keeps_the_state_and_the_entries_after_it)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint64_t at12, at20;

	write_snapshot_log(&at12, &at20, false);
	cr_assert_not(file_exists("raft.snap.tmp"));
	cr_assert_not(file_exists("raft.log.tmp"));
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.snap_index, 12);
	cr_assert_eq(st.snap_term, 2);
	cr_assert_eq(st.applied, 12);
	cr_assert_eq(pifs_meta_index(m), 12);
	cr_assert_eq(pifs_meta_digest(m), at12);
	cr_assert_eq(pifs_raftlog_last_index(l), 20);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_index(m), 20, "entries 13 to 20 were kept, and only they");
	cr_assert_eq(pifs_meta_digest(m), at20);
	/* A second snapshot at the end empties the log. */
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 20, 2, &voters), 0);
	cr_assert_eq(pifs_raftlog_size(l), 0);
	cr_assert_eq(file_size("raft.log"), 0);
	cr_assert_eq(pifs_raftlog_last_index(l), 20);
	log_ops(l, m, 22, 3);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	at20 = pifs_meta_digest(m);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.snap_index, 20);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_index(m), 22);
	cr_assert_eq(pifs_meta_digest(m), at20);
	close_all(m, l);
}

Test(raftlog, a_failed_snapshot_leaves_the_old_snapshot_and_log)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint64_t at12, at20;

	write_snapshot_log(&at12, &at20, false);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	limit_files(200);
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 20, 2, &voters), -EFBIG);
	limit_files(RLIM_INFINITY);
	cr_assert_not(file_exists("raft.snap.tmp"));
	cr_assert_eq(pifs_raftlog_last_index(l), 20);
	log_ops(l, m, 21, 2);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	at20 = pifs_meta_digest(m);
	close_all(m, l);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.snap_index, 12);
	cr_assert_eq(pifs_meta_digest(m), at12);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_index(m), 21);
	cr_assert_eq(pifs_meta_digest(m), at20);
	close_all(m, l);
}

Test(raftlog, snapshot_refuses_a_state_not_at_its_index)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;

	cr_assert_eq(reopen(&m, &l, &st), 0);
	log_ops(l, m, 3, 1);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 2, 1, &voters), -EINVAL);
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 3, 1, &voters), 0);
	cr_assert_eq(pifs_raftlog_snapshot(l, m, 2, 1, &voters), -EINVAL, "behind the snapshot");
	close_all(m, l);
}

Test(raftlog, entries_a_snapshot_covers_are_skipped_after_a_crash_before_the_log_rewrite)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint64_t at12, at20;
	off_t before;

	write_snapshot_log(&at12, &at20, true);
	before = file_size("raft.log");
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(st.snap_index, 12);
	cr_assert_eq(pifs_meta_digest(m), at12);
	cr_assert_eq(pifs_raftlog_last_index(l), 20);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_index(m), 20);
	cr_assert_eq(pifs_meta_digest(m), at20);
	cr_assert_lt(file_size("raft.log"), before);
	cr_assert_eq(pifs_raftlog_size(l), (uint64_t)file_size("raft.log"),
		     "the log now holds only the entries after the snapshot");
	close_all(m, l);
}

Test(raftlog, a_flipped_bit_in_the_snapshot_is_ebadmsg)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m;
	uint64_t at12, at20;
	off_t size;

	write_snapshot_log(&at12, &at20, false);
	size = file_size("raft.snap");
	flip_bit("raft.snap", size / 2, 5);
	cr_assert_eq(reopen(&m, &l, &st), -EBADMSG);
	pifs_meta_free(m);
	flip_bit("raft.snap", size / 2, 5);
	flip_bit("raft.snap", 9, 0); /* the index in the head */
	cr_assert_eq(reopen(&m, &l, &st), -EBADMSG);
	pifs_meta_free(m);
	flip_bit("raft.snap", 9, 0);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_eq(pifs_meta_digest(m), at12);
	close_all(m, l);
}

/* Copy the snapshot of @from to @to in pieces of @piece bytes; the piece
 * numbered @damage (if any) gets a flipped bit on the way. Returns the
 * total. */
static uint64_t send_snapshot(struct pifs_raftlog *from, struct pifs_raftlog *to, size_t piece,
			      int damage)
{
	uint8_t buf[256];
	uint64_t off = 0;
	ssize_t n;
	int k = 0;

	cr_assert_leq(piece, sizeof(buf));
	do {
		n = pifs_raftlog_snap_read(from, off, buf, piece);
		cr_assert_geq(n, 0);
		if (k++ == damage)
			buf[n / 2] ^= 0x10;
		cr_assert_eq(pifs_raftlog_snap_write(to, off, buf, (size_t)n), 0);
		off += (uint64_t)n;
	} while ((size_t)n == piece);
	return off;
}

Test(raftlog, a_snapshot_sent_in_pieces_installs_the_same_state)
{
	struct pifs_raft_state st, st2;
	struct pifs_raftlog *l, *l2;
	struct pifs_meta *m, *m2, *got;
	uint64_t at12, at20, total;
	char other[64];

	write_snapshot_log(&at12, &at20, false);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	/* The receiver has a log of its own, of an older term, which the
	 * snapshot replaces. */
	snprintf(other, sizeof(other), "%s/other", dir);
	cr_assert_eq(open_in(other, &m2, &l2, &st2), 0);
	add(l2, 1, 5, 1);
	cr_assert_eq(pifs_raftlog_write(l2), 0);
	add(l2, 6, 6, 1);
	total = send_snapshot(l, l2, 100, -1);
	cr_assert_eq(total, (uint64_t)file_size("raft.snap"));
	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 2, &voters, total, &got), 0);
	cr_assert_not_null(got);
	cr_assert_eq(pifs_meta_index(got), 12);
	cr_assert_eq(pifs_meta_digest(got), at12);
	cr_assert_eq(pifs_raftlog_last_index(l2), 12, "the log is empty after the snapshot");
	cr_assert_eq(pifs_raftlog_size(l2), 0);
	expect_entries(l2, 13, 12);
	pifs_meta_free(got);
	/* The log goes on after the snapshot. */
	add(l2, 13, 14, 2);
	cr_assert_eq(pifs_raftlog_write(l2), 0);
	close_all(m2, l2);
	cr_assert_eq(open_in(other, &m2, &l2, &st2), 0);
	cr_assert_eq(st2.snap_index, 12);
	cr_assert_eq(st2.snap_term, 2);
	cr_assert_eq(pifs_meta_digest(m2), at12);
	expect_entries(l2, 13, 14);
	cr_assert_neq(access(file_in(other, "raft.snap.in"), F_OK), 0);
	close_all(m2, l2);
	close_all(m, l);
}

Test(raftlog, a_snapshot_damaged_on_the_way_is_refused_and_nothing_changes)
{
	struct pifs_raft_state st, st2;
	struct pifs_raftlog *l, *l2;
	struct pifs_meta *m, *m2, *got = (struct pifs_meta *)1;
	struct pifs_raft_conf two = {2, {1, 2}};
	uint64_t at12, at20, total;
	char other[64];
	uint8_t b[8] = {0};

	write_snapshot_log(&at12, &at20, false);
	cr_assert_eq(reopen(&m, &l, &st), 0);
	snprintf(other, sizeof(other), "%s/other", dir);
	cr_assert_eq(open_in(other, &m2, &l2, &st2), 0);
	add(l2, 1, 5, 1);
	cr_assert_eq(pifs_raftlog_write(l2), 0);

	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 2, &voters, 0, &got), -EINVAL,
		     "nothing came in");
	cr_assert_null(got);
	cr_assert_eq(pifs_raftlog_snap_write(l2, 100, b, sizeof(b)), -EINVAL);
	total = send_snapshot(l, l2, 64, 3);
	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 2, &voters, total, &got), -EBADMSG);
	cr_assert_null(got);
	cr_assert_eq(pifs_raftlog_snap_write(l2, total, b, sizeof(b)), -EINVAL,
		     "a refused snapshot starts over");
	/* Whole, but not the snapshot the leader names. */
	total = send_snapshot(l, l2, 64, -1);
	cr_assert_eq(pifs_raftlog_snap_write(l2, 10, b, 1), -EINVAL, "out of order");
	cr_assert_eq(pifs_raftlog_snap_install(l2, 11, 2, &voters, total, &got), -EBADMSG);
	total = send_snapshot(l, l2, 64, -1);
	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 3, &voters, total, &got), -EBADMSG);
	total = send_snapshot(l, l2, 64, -1);
	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 2, &two, total, &got), -EBADMSG);
	total = send_snapshot(l, l2, 64, -1);
	cr_assert_eq(pifs_raftlog_snap_install(l2, 12, 2, &voters, total - 1, &got), -EBADMSG);
	cr_assert_null(got);

	expect_entries(l2, 1, 5);
	add(l2, 6, 6, 1);
	cr_assert_eq(pifs_raftlog_write(l2), 0);
	close_all(m2, l2);
	cr_assert_eq(open_in(other, &m2, &l2, &st2), 0);
	cr_assert_eq(st2.snap_index, 0, "no snapshot was taken");
	cr_assert_eq(pifs_meta_index(m2), 0);
	expect_entries(l2, 1, 6);
	close_all(m2, l2);
	close_all(m, l);
}

Test(raftlog, a_directory_of_the_single_voter_log_is_converted)
{
	struct pifs_raft_state st;
	struct pifs_raftlog *l;
	struct pifs_meta *m, *old = pifs_meta_new();
	struct pifs_wal *w;
	struct pifs_buf enc;
	struct pifs_msg op;
	uint64_t want;
	char name[16];

	/* The old log: INIT and 10 directories, a snapshot after 6. */
	cr_assert_eq(pifs_wal_open(meta_dir, old, &w), 0);
	pifs_buf_init(&enc);
	for (int i = 0; i <= 10; i++) {
		if (i == 0) {
			init_op(&op);
		} else {
			snprintf(name, sizeof(name), "old%d", i);
			mkdir_op(&op, name);
		}
		pifs_proto_stamp(&op, ++clock_ns);
		pifs_buf_reset(&enc);
		cr_assert_eq(pifs_proto_encode(&op, &enc), 0);
		apply_op(old, &op);
		cr_assert_eq(pifs_wal_append(w, pifs_meta_index(old), enc.p, enc.len), 0);
		cr_assert_eq(pifs_wal_commit(w), 0);
		if (i == 6)
			cr_assert_eq(pifs_wal_snapshot(w, old), 0);
	}
	pifs_buf_fini(&enc);
	pifs_wal_close(w);
	want = pifs_meta_digest(old);
	pifs_meta_free(old);

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert(pifs_raftlog_migrated(l));
	cr_assert_eq(st.snap_index, 11);
	cr_assert_eq(st.snap_term, 1);
	cr_assert_eq(st.applied, 11);
	cr_assert_eq(st.term, 1);
	cr_assert_eq(st.vote, 0);
	cr_assert_eq(st.conf.n, 3);
	cr_assert_eq(pifs_meta_digest(m), want);
	cr_assert_eq(pifs_raftlog_last_index(l), 11);
	expect_entries(l, 12, 11);
	cr_assert(file_exists("snap.old"));
	cr_assert(file_exists("wal.old"));
	cr_assert_not(file_exists("snap"));
	cr_assert_not(file_exists("wal"));
	/* The new log goes on from there. */
	log_ops(l, m, 13, 2);
	cr_assert_eq(pifs_raftlog_write(l), 0);
	want = pifs_meta_digest(m);
	close_all(m, l);

	cr_assert_eq(reopen(&m, &l, &st), 0);
	cr_assert_not(pifs_raftlog_migrated(l), "converted once");
	cr_assert_eq(st.snap_index, 11);
	cr_assert_eq(pifs_raftlog_entries(l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_digest(m), want);
	close_all(m, l);
}

struct sync_loop {
	struct pifs_raftlog *l;
	atomic_bool stop;
	atomic_int syncs;
	int failures;
};

/* The voter's syncer: sync until told to stop. */
static void *sync_loop(void *arg)
{
	struct sync_loop *s = arg;

	while (!atomic_load(&s->stop)) {
		if (pifs_raftlog_sync(s->l) < 0)
			s->failures++;
		atomic_fetch_add(&s->syncs, 1);
	}
	return NULL;
}

Test(raftlog, a_syncer_thread_may_sync_while_the_owner_appends_and_writes)
{
	struct sync_loop s = {0};
	struct pifs_raft_state st;
	struct pifs_meta *m;
	uint64_t want;
	pthread_t t;

	cr_assert_eq(reopen(&m, &s.l, &st), 0);
	log_ops(s.l, m, 1, 1);
	cr_assert_eq(pifs_raftlog_write(s.l), 0);
	cr_assert_eq(pthread_create(&t, NULL, sync_loop, &s), 0);
	for (uint64_t i = 2; i <= 300; i++) {
		log_ops(s.l, m, i, 1 + i / 100);
		cr_assert_eq(pifs_raftlog_write(s.l), 0);
		/* Half-way, make sure the syncer runs beside the writes (5 s
		 * at most), then rewrite the log under it. */
		for (int j = 0; i == 150 && j < 500 && atomic_load(&s.syncs) == 0; j++)
			usleep(10000);
		if (i == 200)
			cr_assert_eq(pifs_raftlog_snapshot(s.l, m, 200, 2, &voters), 0);
	}
	atomic_store(&s.stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(s.failures, 0);
	cr_assert_gt(atomic_load(&s.syncs), 0);
	cr_assert_eq(pifs_raftlog_sync(s.l), 0);
	want = pifs_meta_digest(m);
	close_all(m, s.l);
	cr_assert_eq(reopen(&m, &s.l, &st), 0);
	cr_assert_eq(st.snap_index, 200);
	cr_assert_eq(pifs_raftlog_last_index(s.l), 300);
	cr_assert_eq(pifs_raftlog_entries(s.l, apply_entry, m), 0);
	cr_assert_eq(pifs_meta_index(m), 300);
	cr_assert_eq(pifs_meta_digest(m), want);
	close_all(m, s.l);
}
