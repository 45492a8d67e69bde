/* test_wal.c - the metadata log: durability across reopen, torn tails,
 * snapshots, and damage that must stop a node. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wal.h"

static char dir[] = "/tmp/pifs-test-wal-XXXXXX";
static char path[256];
static struct pifs_buf scratch;
static int64_t clock_ns = 5000;
/* ends[i]: the byte offset in "wal" where entry i ends, for a fresh log. */
static off_t ends[64];

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
	pifs_buf_init(&scratch);
}

static void teardown(void)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	pifs_buf_fini(&scratch);
}

TestSuite(wal, .init = setup, .fini = teardown);

static const char *file(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static off_t file_size(const char *name)
{
	struct stat st;

	cr_assert_eq(stat(file(name), &st), 0, "%s", file(name));
	return st.st_size;
}

/* Apply @op to @m as its next entry and queue it in @w. */
static void log_op(struct pifs_wal *w, struct pifs_meta *m, struct pifs_msg *op)
{
	struct pifs_buf enc;
	struct pifs_msg rep;
	uint64_t index = pifs_meta_index(m) + 1;

	pifs_proto_stamp(op, ++clock_ns);
	pifs_buf_init(&enc);
	cr_assert_eq(pifs_proto_encode(op, &enc), 0);
	cr_assert_eq(pifs_meta_apply(m, index, op, &rep, &scratch), 0);
	cr_assert_eq(pifs_wal_append(w, index, enc.p, enc.len), 0);
	if (index < 64)
		ends[index] = ends[index - 1] + 12 + (off_t)enc.len + 8;
	pifs_buf_fini(&enc);
}

static void log_init(struct pifs_wal *w, struct pifs_meta *m)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_INIT);
	op.u.INIT.replicas = 2;
	op.u.INIT.chunk_size = 4096;
	op.u.INIT.cluster_id = 7;
	log_op(w, m, &op);
}

static void log_mkdir(struct pifs_wal *w, struct pifs_meta *m, const char *name)
{
	struct pifs_msg op;

	pifs_msg_init(&op, PIFS_MSG_MKNOD);
	op.u.MKNOD.parent = PIFS_META_ROOT;
	op.u.MKNOD.name = pifs_str_of(name);
	op.u.MKNOD.mode = S_IFDIR | 0755;
	log_op(w, m, &op);
}

/* Open the log in dir into a new state; returns pifs_wal_open's result. */
static int reopen(struct pifs_meta **m, struct pifs_wal **w)
{
	*m = pifs_meta_new();
	cr_assert_not_null(*m);
	return pifs_wal_open(dir, *m, w);
}

/* A log of INIT and @n directories, committed in two batches, then closed.
 * Returns the digest of the state after each entry in @digests (n + 2). */
static void write_log(int n, uint64_t *digests)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	char name[16];
	int i;

	cr_assert_eq(reopen(&m, &w), 0);
	log_init(w, m);
	digests[0] = 0;
	digests[1] = pifs_meta_digest(m);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		log_mkdir(w, m, name);
		digests[i + 2] = pifs_meta_digest(m);
		if (i == n / 2)
			cr_assert_eq(pifs_wal_commit(w), 0);
	}
	cr_assert_eq(pifs_wal_commit(w), 0);
	cr_assert_eq(pifs_wal_size(w), (uint64_t)file_size("wal"));
	pifs_wal_close(w);
	pifs_meta_free(m);
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

Test(wal, open_creates_the_directory_and_an_empty_log)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	char sub[300];

	snprintf(sub, sizeof(sub), "%s/meta", dir);
	m = pifs_meta_new();
	cr_assert_eq(pifs_wal_open(sub, m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 0);
	cr_assert_eq(pifs_wal_size(w), 0);
	cr_assert_eq(pifs_wal_commit(w), 0, "nothing queued, nothing to do");
	cr_assert_eq(file_size("meta/wal"), 0);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, open_under_a_file_fails_with_its_errno)
{
	struct pifs_meta *m = pifs_meta_new();
	struct pifs_wal *w = (struct pifs_wal *)1;
	char sub[300];
	int fd = open(file("plain"), O_CREAT | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	close(fd);
	snprintf(sub, sizeof(sub), "%s/plain/meta", dir);
	cr_assert_eq(pifs_wal_open(sub, m, &w), -ENOTDIR);
	cr_assert_null(w);
	pifs_meta_free(m);
}

Test(wal, append_refuses_an_entry_longer_than_a_message)
{
	struct pifs_meta *m;
	struct pifs_wal *w;

	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_wal_append(w, 1, "", PIFS_PROTO_MAX_MSG + 1), -EINVAL);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, committed_entries_survive_close_and_reopen)
{
	uint64_t d[12];
	struct pifs_meta *m;
	struct pifs_wal *w;

	write_log(10, d);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 11);
	cr_assert_eq(pifs_meta_digest(m), d[11]);
	/* And the log goes on after the replayed entries. */
	log_mkdir(w, m, "more");
	cr_assert_eq(pifs_wal_commit(w), 0);
	d[0] = pifs_meta_digest(m);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), d[0]);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, queued_entries_are_not_durable_before_commit)
{
	uint64_t d[5];
	struct pifs_meta *m;
	struct pifs_wal *w;

	write_log(3, d);
	cr_assert_eq(reopen(&m, &w), 0);
	log_mkdir(w, m, "lost");
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), d[4]);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, written_entries_outlive_the_process_before_their_sync)
{
	uint64_t d[5], want;
	struct pifs_meta *m;
	struct pifs_wal *w;
	pid_t pid;
	int st;

	write_log(3, d);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* The metadata service acknowledges after the write: a kill
		 * right after it must lose nothing. */
		if (reopen(&m, &w) != 0)
			_exit(2);
		log_mkdir(w, m, "kept");
		_exit(pifs_wal_write(w) == 0 && pifs_wal_unsynced(w) ? 0 : 3);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 5, "the unsynced entry was replayed");
	want = pifs_meta_digest(m);
	cr_assert_neq(want, d[4]);
	cr_assert_not(pifs_wal_unsynced(w), "nothing written since open");
	log_mkdir(w, m, "synced");
	cr_assert_eq(pifs_wal_write(w), 0);
	cr_assert(pifs_wal_unsynced(w));
	cr_assert_eq(pifs_wal_sync(w), 0);
	cr_assert_not(pifs_wal_unsynced(w));
	cr_assert_eq(pifs_wal_sync(w), 0, "a second sync has nothing to do");
	pifs_wal_close(w);
	pifs_meta_free(m);
}

struct sync_loop {
	struct pifs_wal *w;
	atomic_bool stop;
	atomic_int syncs;
	int failures;
};

/* The metadata service's syncer: sync until told to stop (bounded). */
static void *sync_loop(void *arg)
{
	struct sync_loop *l = arg;

	while (!atomic_load(&l->stop) && atomic_load(&l->syncs) < 100000) {
		if (pifs_wal_sync(l->w) < 0)
			l->failures++;
		atomic_fetch_add(&l->syncs, 1);
	}
	return NULL;
}

Test(wal, a_syncer_thread_may_sync_while_the_owner_writes)
{
	struct sync_loop l = {0};
	struct pifs_meta *m;
	uint64_t want;
	pthread_t t;
	char name[16];

	cr_assert_eq(reopen(&m, &l.w), 0);
	log_init(l.w, m);
	cr_assert_eq(pifs_wal_write(l.w), 0);
	cr_assert_eq(pthread_create(&t, NULL, sync_loop, &l), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		log_mkdir(l.w, m, name);
		cr_assert_eq(pifs_wal_write(l.w), 0);
		/* Half-way, make sure the syncer runs beside the writes (5 s
		 * at most). */
		for (int j = 0; i == 150 && j < 500 && atomic_load(&l.syncs) == 0; j++)
			usleep(10000);
	}
	atomic_store(&l.stop, true);
	pthread_join(t, NULL);
	cr_assert_eq(l.failures, 0);
	cr_assert_gt(atomic_load(&l.syncs), 0);
	cr_assert_eq(pifs_wal_sync(l.w), 0);
	cr_assert_not(pifs_wal_unsynced(l.w));
	want = pifs_meta_digest(m);
	pifs_wal_close(l.w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &l.w), 0);
	cr_assert_eq(pifs_meta_index(m), 301);
	cr_assert_eq(pifs_meta_digest(m), want);
	pifs_wal_close(l.w);
	pifs_meta_free(m);
}

Test(wal, a_torn_tail_is_cut_and_the_rest_replayed)
{
	uint64_t d[12];
	struct pifs_meta *m;
	struct pifs_wal *w;

	write_log(10, d);
	cr_assert_eq(file_size("wal"), ends[11]);
	cr_assert_eq(truncate(file("wal"), (ends[10] + ends[11]) / 2), 0);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 10);
	cr_assert_eq(pifs_meta_digest(m), d[10]);
	cr_assert_eq(file_size("wal"), ends[10], "the torn entry is gone from the file");
	cr_assert_eq(pifs_wal_size(w), (uint64_t)ends[10]);

	/* New entries follow the cut and replay. */
	log_mkdir(w, m, "after");
	cr_assert_eq(pifs_wal_commit(w), 0);
	d[0] = pifs_meta_digest(m);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 11);
	cr_assert_eq(pifs_meta_digest(m), d[0]);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, a_tail_shorter_than_an_entry_header_is_cut)
{
	uint64_t d[4];
	struct pifs_meta *m;
	struct pifs_wal *w;
	off_t full;

	write_log(2, d);
	full = file_size("wal");
	cr_assert_eq(truncate(file("wal"), full + 5), 0);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), d[3]);
	cr_assert_eq(file_size("wal"), full);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, garbage_after_the_last_entry_is_cut)
{
	uint64_t d[7];
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint8_t junk[333];
	off_t full;
	size_t i;
	FILE *f;

	write_log(5, d);
	full = file_size("wal");
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	/* A plausible length first, so that the checksum is what catches it. */
	junk[0] = 0;
	junk[1] = 0;
	junk[2] = 0;
	junk[3] = 100;
	f = fopen(file("wal"), "ab");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), d[6]);
	cr_assert_eq(file_size("wal"), full);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, a_flipped_bit_in_the_last_entry_cuts_only_that_entry)
{
	uint64_t d[12];
	struct pifs_meta *m;
	struct pifs_wal *w;

	write_log(10, d);
	flip_bit("wal", ends[11] - 20, 3);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 10);
	cr_assert_eq(pifs_meta_digest(m), d[10]);
	cr_assert_eq(file_size("wal"), ends[10]);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, snapshot_then_more_entries_replays_to_the_same_state)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint64_t d[7], want;

	write_log(5, d);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_wal_snapshot(w, m), 0);
	cr_assert_eq(pifs_wal_size(w), 0);
	cr_assert_eq(file_size("wal"), 0);
	cr_assert_gt(file_size("snap"), 0);
	log_mkdir(w, m, "x");
	log_mkdir(w, m, "y");
	cr_assert_eq(pifs_wal_commit(w), 0);
	cr_assert_gt(pifs_wal_size(w), 0);
	want = pifs_meta_digest(m);
	pifs_wal_close(w);
	pifs_meta_free(m);

	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 8);
	cr_assert_eq(pifs_meta_digest(m), want);
	/* A second snapshot replaces the first. */
	cr_assert_eq(pifs_wal_snapshot(w, m), 0);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(access(file("snap.tmp"), F_OK), -1);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), want);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

static void copy_file(const char *from, const char *to)
{
	char src[256], buf[4096];
	FILE *in, *out;
	size_t n;

	snprintf(src, sizeof(src), "%s", file(from));
	in = fopen(src, "rb");
	out = fopen(file(to), "wb");
	cr_assert(in && out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		cr_assert_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	fclose(out);
}

/* A crash after the snapshot's rename but before the log was emptied
 * leaves entries the snapshot already holds: they are skipped. */
Test(wal, entries_already_in_the_snapshot_are_skipped)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint64_t d[6], want;

	write_log(4, d);
	copy_file("wal", "wal.old");
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_wal_snapshot(w, m), 0);
	pifs_wal_close(w);
	pifs_meta_free(m);
	copy_file("wal.old", "wal");
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 5);
	cr_assert_eq(pifs_meta_digest(m), d[5]);
	/* New entries then follow the old ones and replay. */
	log_mkdir(w, m, "new");
	cr_assert_eq(pifs_wal_commit(w), 0);
	want = pifs_meta_digest(m);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_index(m), 6);
	cr_assert_eq(pifs_meta_digest(m), want);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, a_corrupted_snapshot_is_ebadmsg)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint64_t d[5];
	off_t size;

	write_log(3, d);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_wal_snapshot(w, m), 0);
	pifs_wal_close(w);
	pifs_meta_free(m);
	size = file_size("snap");
	flip_bit("snap", size / 2, 0);
	cr_assert_eq(reopen(&m, &w), -EBADMSG);
	pifs_meta_free(m);
	flip_bit("snap", size / 2, 0);
	cr_assert_eq(reopen(&m, &w), 0, "the repaired snapshot loads again");
	cr_assert_eq(pifs_meta_digest(m), d[4]);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(truncate(file("snap"), size - 1), 0);
	cr_assert_eq(reopen(&m, &w), -EBADMSG);
	pifs_meta_free(m);
	cr_assert_eq(truncate(file("snap"), 10), 0);
	cr_assert_eq(reopen(&m, &w), -EBADMSG);
	pifs_meta_free(m);
}

Test(wal, a_stale_temporary_snapshot_is_removed)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	int fd = open(file("snap.tmp"), O_CREAT | O_WRONLY, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "half", 4), 4);
	close(fd);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(access(file("snap.tmp"), F_OK), -1);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

/* An entry whose checksum holds but which is not the next one in order
 * (or is no mutation at all) is damage, not a torn tail: it is never cut
 * silently. */
Test(wal, a_checked_entry_out_of_order_is_ebadmsg)
{
	struct pifs_meta *m, *other;
	struct pifs_wal *w;
	struct pifs_buf enc;
	struct pifs_msg op;
	uint64_t d[4];
	off_t size;

	write_log(2, d);
	size = file_size("wal");
	cr_assert_eq(reopen(&m, &w), 0);
	pifs_msg_init(&op, PIFS_MSG_UNLINK);
	op.u.UNLINK.parent = PIFS_META_ROOT;
	op.u.UNLINK.name = pifs_str_of("d0");
	pifs_buf_init(&enc);
	cr_assert_eq(pifs_proto_encode(&op, &enc), 0);
	cr_assert_eq(pifs_wal_append(w, 9, enc.p, enc.len), 0);
	cr_assert_eq(pifs_wal_commit(w), 0);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), -EBADMSG);
	pifs_meta_free(m);
	cr_assert_gt(file_size("wal"), size, "nothing was cut");

	cr_assert_eq(truncate(file("wal"), size), 0);
	other = pifs_meta_new();
	cr_assert_eq(pifs_wal_open(dir, other, &w), 0);
	pifs_msg_init(&op, PIFS_MSG_GETATTR);
	pifs_buf_reset(&enc);
	cr_assert_eq(pifs_proto_encode(&op, &enc), 0);
	cr_assert_eq(pifs_wal_append(w, 4, enc.p, enc.len), 0);
	cr_assert_eq(pifs_wal_commit(w), 0);
	pifs_wal_close(w);
	pifs_meta_free(other);
	cr_assert_eq(reopen(&m, &w), -EBADMSG, "a query in the log");
	pifs_meta_free(m);
	pifs_buf_fini(&enc);
}

/* Let the process write files of at most @bytes: a write past it fails
 * with EFBIG (after writing what fits), as a full disk would. */
static void limit_files(rlim_t bytes)
{
	struct rlimit rl;

	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = bytes;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

Test(wal, a_failed_commit_leaves_no_half_entry_behind)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint64_t d[5], want;

	write_log(3, d);
	cr_assert_eq(reopen(&m, &w), 0);
	/* Room for half of the next entry only. */
	limit_files((rlim_t)ends[4] + 30);
	log_mkdir(w, m, "too-much");
	cr_assert_eq(pifs_wal_commit(w), -EFBIG);
	cr_assert_eq(file_size("wal"), ends[4], "the partial entry is cut back");
	cr_assert_eq(pifs_wal_size(w), (uint64_t)ends[4]);
	pifs_wal_close(w);
	pifs_meta_free(m);

	/* Space comes back: entries written now must not hide behind garbage. */
	limit_files(RLIM_INFINITY);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), d[4]);
	log_mkdir(w, m, "fits");
	cr_assert_eq(pifs_wal_commit(w), 0);
	want = pifs_meta_digest(m);
	pifs_wal_close(w);
	pifs_meta_free(m);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), want);
	pifs_wal_close(w);
	pifs_meta_free(m);
}

Test(wal, a_failed_snapshot_keeps_the_old_snapshot_and_log)
{
	struct pifs_meta *m;
	struct pifs_wal *w;
	uint64_t d[5], want;
	char name[16];
	int i;

	write_log(3, d);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_wal_snapshot(w, m), 0);
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "late%d", i);
		log_mkdir(w, m, name);
	}
	cr_assert_eq(pifs_wal_commit(w), 0);
	want = pifs_meta_digest(m);
	limit_files((rlim_t)file_size("snap") + 16);
	cr_assert_eq(pifs_wal_snapshot(w, m), -EFBIG);
	cr_assert_eq(access(file("snap.tmp"), F_OK), -1, "the temporary file is removed");
	cr_assert_gt(pifs_wal_size(w), 0, "the log is kept");
	pifs_wal_close(w);
	pifs_meta_free(m);
	limit_files(RLIM_INFINITY);
	cr_assert_eq(reopen(&m, &w), 0);
	cr_assert_eq(pifs_meta_digest(m), want);
	pifs_wal_close(w);
	pifs_meta_free(m);
}
