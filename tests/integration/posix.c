/* posix.c - the system calls programs make, against a real pifs mount.
 *
 * Run by posix.sh, which starts a cluster and names its mount in $PIFS_MNT.
 * Every test works in its own fresh directory inside the mount and checks
 * both results and errno. Reads that must prove what the cluster holds drop
 * the file's page cache first (POSIX_FADV_DONTNEED), so that a file system
 * that kept nothing would not pass on the kernel's copy. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#define KIB 1024L
#define MIB (1024L * 1024L)
#define GIB (1024L * MIB)
#define FUSE_MAGIC 0x65735546

static char dir[PATH_MAX];

/* The path of @name in this test's directory. Four rotating buffers, so that
 * one call may take several paths. */
static const char *at(const char *name)
{
	static char bufs[4][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 4];
	int n = snprintf(b, PATH_MAX, "%s/%s", dir, name);

	cr_assert(n > 0 && n < PATH_MAX, "the path of '%s' is too long", name);
	return b;
}

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "?";
}

static long check_ok(long r, const char *what)
{
	int e = errno;

	cr_assert(r >= 0, "%s failed: %s (%s)", what, errname(e), strerror(e));
	return r;
}

static void check_err(long r, int want, const char *what)
{
	int e = errno;

	cr_assert(r == -1 && e == want, "%s: want -1 with %s, got %ld%s%s", what, errname(want), r,
		  r == -1 ? " with " : "", r == -1 ? errname(e) : "");
}

/* OK(call): the call succeeds; its result. FAILS(call, E): -1 with errno E. */
#define OK(call) check_ok((long)(call), #call)
#define FAILS(call, err)                                                                           \
	do {                                                                                       \
		errno = 0;                                                                         \
		check_err((long)(call), (err), #call);                                             \
	} while (0)

/* A byte of a pseudo-random stream that depends on @seed and the file
 * offset: never all zeros, and different in every chunk. */
static uint8_t pat(uint64_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (seed + 1) * 0xBF58476D1CE4E5B9ull;

	x ^= x >> 31;
	x *= 0x94D049BB133111EBull;
	x ^= x >> 29;
	return (uint8_t)x;
}

static void fill(uint8_t *b, size_t n, uint64_t seed, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		b[i] = pat(seed, off + i);
}

static void expect_pattern(const uint8_t *b, size_t n, uint64_t seed, uint64_t off,
			   const char *what)
{
	for (size_t i = 0; i < n; i++)
		cr_assert(b[i] == pat(seed, off + i),
			  "%s: byte at file offset %llu is 0x%02x, want 0x%02x", what,
			  (unsigned long long)(off + i), b[i], pat(seed, off + i));
}

static void expect_zeros(const uint8_t *b, size_t n, uint64_t off, const char *what)
{
	for (size_t i = 0; i < n; i++)
		cr_assert(b[i] == 0, "%s: byte at file offset %llu is 0x%02x, want 0", what,
			  (unsigned long long)(off + i), b[i]);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	cr_assert(p, "malloc(%zu)", n);
	return p;
}

static void write_at(int fd, const void *b, size_t n, off_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = pwrite(fd, (const uint8_t *)b + done, n - done, off + (off_t)done);

		cr_assert(w > 0, "pwrite of %zu bytes at %lld: %s", n - done,
			  (long long)(off + (off_t)done), w < 0 ? strerror(errno) : "wrote 0");
		done += (size_t)w;
	}
}

/* Read exactly @n bytes at @off: a short read here is a bug. */
static void read_at(int fd, void *b, size_t n, off_t off)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = pread(fd, (uint8_t *)b + done, n - done, off + (off_t)done);

		cr_assert(r > 0, "pread of %zu bytes at %lld: %s", n - done,
			  (long long)(off + (off_t)done), r < 0 ? strerror(errno) : "end of file");
		done += (size_t)r;
	}
}

/* Drop the page cache of @fd's file, so that the next reads ask the file system. */
static void drop_cache(int fd)
{
	int e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

	cr_assert_eq(e, 0, "posix_fadvise(DONTNEED): %s", strerror(e));
}

static int open_uncached(const char *path, int flags)
{
	int fd = (int)OK(open(path, flags));

	drop_cache(fd);
	return fd;
}

/* Write @n pattern bytes of @seed to a new file @name and close it. */
static void make_file(const char *name, size_t n, uint64_t seed)
{
	uint8_t *b = xmalloc(n);
	int fd = (int)OK(open(at(name), O_WRONLY | O_CREAT | O_TRUNC, 0644));

	fill(b, n, seed, 0);
	write_at(fd, b, n, 0);
	OK(close(fd));
	free(b);
}

static void expect_file_pattern(const char *path, size_t n, uint64_t seed)
{
	uint8_t *b = xmalloc(n);
	struct stat st;
	int fd = open_uncached(path, O_RDONLY);

	OK(fstat(fd, &st));
	cr_assert_eq(st.st_size, (off_t)n, "%s: size %lld, want %zu", path, (long long)st.st_size,
		     n);
	read_at(fd, b, n, 0);
	expect_pattern(b, n, seed, 0, path);
	OK(close(fd));
	free(b);
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return type == FTW_DP ? rmdir(path) : unlink(path);
}

static void setup(void)
{
	const char *mnt = getenv("PIFS_MNT");
	struct statfs sfs;

	cr_assert(mnt && *mnt, "PIFS_MNT must name a pifs mount: run this through posix.sh");
	cr_assert(statfs(mnt, &sfs) == 0, "statfs %s: %s", mnt, strerror(errno));
	/* Passing on the local disk would prove nothing. */
	cr_assert_eq(sfs.f_type, FUSE_MAGIC, "%s is not a FUSE mount (f_type 0x%lx)", mnt,
		     (unsigned long)sfs.f_type);
	snprintf(dir, sizeof(dir), "%s/posix.XXXXXX", mnt);
	cr_assert(mkdtemp(dir), "mkdtemp in %s: %s", mnt, strerror(errno));
}

static void teardown(void)
{
	cr_assert(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0,
		  "removing the test directory %s: %s", dir, strerror(errno));
}

TestSuite(posix, .init = setup, .fini = teardown, .timeout = 90);

Test(posix, o_excl_creates_once_then_fails_with_eexist)
{
	int fd = (int)OK(open(at("f"), O_WRONLY | O_CREAT | O_EXCL, 0644));

	OK(close(fd));
	FAILS(open(at("f"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	/* O_EXCL does not follow a symlink either, even a dangling one. */
	OK(symlink("nowhere", at("l")));
	FAILS(open(at("l"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
}

Test(posix, o_trunc_empties_the_file)
{
	struct stat st;
	char c;
	int fd;

	make_file("f", 3 * MIB, 1);
	fd = (int)OK(open(at("f"), O_WRONLY | O_TRUNC));
	OK(fstat(fd, &st));
	cr_assert_eq(st.st_size, 0, "size right after O_TRUNC: %lld", (long long)st.st_size);
	OK(close(fd));
	fd = open_uncached(at("f"), O_RDONLY);
	cr_assert_eq(OK(read(fd, &c, 1)), 0, "a truncated file still has data");
	OK(close(fd));
}

Test(posix, o_append_from_two_fds_adds_at_the_end_every_time)
{
	char a[100], b[100], got[2000];
	int fa, fb;

	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	fa = (int)OK(open(at("log"), O_WRONLY | O_CREAT | O_APPEND, 0644));
	fb = (int)OK(open(at("log"), O_WRONLY | O_APPEND));
	for (int i = 0; i < 10; i++) {
		cr_assert_eq(OK(write(fa, a, sizeof(a))), (long)sizeof(a));
		cr_assert_eq(OK(write(fb, b, sizeof(b))), (long)sizeof(b));
	}
	OK(close(fa));
	OK(close(fb));
	fa = open_uncached(at("log"), O_RDONLY);
	read_at(fa, got, sizeof(got), 0);
	cr_assert_eq(OK(pread(fa, a, 1, sizeof(got))), 0,
		     "the file is longer than the 2000 bytes appended");
	for (int i = 0; i < 20; i++)
		for (int k = 0; k < 100; k++)
			cr_assert_eq(got[i * 100 + k], i % 2 ? 'B' : 'A',
				     "byte %d is '%c': an append overwrote another", i * 100 + k,
				     got[i * 100 + k]);
	OK(close(fa));
}

Test(posix, write_and_read_at_lseek_offsets)
{
	uint8_t b[300], z[5000];
	int fd = (int)OK(open(at("f"), O_RDWR | O_CREAT, 0644));

	fill(b, sizeof(b), 2, 5000);
	cr_assert_eq(OK(lseek(fd, 5000, SEEK_SET)), 5000);
	cr_assert_eq(OK(write(fd, b, 100)), 100);
	cr_assert_eq(OK(lseek(fd, 0, SEEK_CUR)), 5100, "the position after a write");
	cr_assert_eq(OK(write(fd, b + 100, 200)), 200);
	cr_assert_eq(OK(lseek(fd, 0, SEEK_END)), 5300, "SEEK_END is the size");
	OK(close(fd));
	fd = open_uncached(at("f"), O_RDONLY);
	cr_assert_eq(OK(read(fd, z, sizeof(z))), (long)sizeof(z));
	expect_zeros(z, sizeof(z), 0, "the unwritten start");
	memset(b, 0, sizeof(b));
	cr_assert_eq(OK(read(fd, b, sizeof(b))), (long)sizeof(b));
	expect_pattern(b, sizeof(b), 2, 5000, "the bytes written at 5000");
	cr_assert_eq(OK(read(fd, b, 1)), 0, "read at the end returns 0");
	OK(close(fd));
}

Test(posix, pread_and_pwrite_across_a_chunk_boundary_keep_the_position)
{
	const size_t n = 256 * KIB;
	const off_t off = MIB - 100 * KIB; /* crosses the 1 MiB chunk boundary of the tests */
	uint8_t *b = xmalloc(n);
	int fd = (int)OK(open(at("f"), O_RDWR | O_CREAT, 0644));

	fill(b, n, 3, (uint64_t)off);
	cr_assert_eq(OK(lseek(fd, 7, SEEK_SET)), 7);
	write_at(fd, b, n, off);
	cr_assert_eq(OK(lseek(fd, 0, SEEK_CUR)), 7, "pwrite moved the file position");
	memset(b, 0, n);
	read_at(fd, b, n, off);
	cr_assert_eq(OK(lseek(fd, 0, SEEK_CUR)), 7, "pread moved the file position");
	expect_pattern(b, n, 3, (uint64_t)off, "pread right after pwrite");
	OK(close(fd));
	fd = open_uncached(at("f"), O_RDONLY);
	memset(b, 0, n);
	read_at(fd, b, n, off);
	expect_pattern(b, n, 3, (uint64_t)off, "pread after reopening");
	OK(close(fd));
	free(b);
}

Test(posix, a_hole_in_a_sparse_file_reads_as_zeros)
{
	const size_t n = 3 * MIB;
	uint8_t *b = xmalloc(n + 5 + 4096);
	struct stat st;
	int fd = (int)OK(open(at("f"), O_RDWR | O_CREAT, 0644));

	fill(b, 4096, 4, 0);
	write_at(fd, b, 4096, 0);
	fill(b, 4096, 4, 3 * MIB + 5);
	write_at(fd, b, 4096, 3 * MIB + 5);
	OK(close(fd));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_size, 3 * MIB + 5 + 4096);
	fd = open_uncached(at("f"), O_RDONLY);
	read_at(fd, b, n + 4096 + 5, 0);
	expect_pattern(b, 4096, 4, 0, "data before the hole");
	expect_zeros(b + 4096, n + 5 - 4096, 4096, "the hole");
	expect_pattern(b + n + 5, 4096, 4, n + 5, "data after the hole");
	OK(close(fd));
	free(b);
}

Test(posix, a_file_past_4_gib_keeps_its_size_and_data)
{
	const off_t off = 4 * GIB + MIB;
	const size_t n = MIB;
	uint8_t *b = xmalloc(n + 100);
	struct stat st;
	int fd = (int)OK(open(at("big"), O_RDWR | O_CREAT, 0644));

	fill(b, n, 5, (uint64_t)off);
	write_at(fd, b, n, off);
	OK(fstat(fd, &st));
	cr_assert_eq(st.st_size, off + (off_t)n, "size %lld", (long long)st.st_size);
	OK(close(fd));
	OK(stat(at("big"), &st));
	cr_assert_eq(st.st_size, off + (off_t)n, "size after close %lld", (long long)st.st_size);
	fd = open_uncached(at("big"), O_RDONLY);
	read_at(fd, b, n, off);
	expect_pattern(b, n, 5, (uint64_t)off, "the data past 4 GiB");
	read_at(fd, b, n + 100, off - 100);
	expect_zeros(b, 100, (uint64_t)off - 100, "the hole just before the data");
	expect_pattern(b + 100, n, 5, (uint64_t)off, "the data past 4 GiB, read across its start");
	read_at(fd, b, 4096, 2 * GIB);
	expect_zeros(b, 4096, 2 * GIB, "the hole at 2 GiB");
	OK(close(fd));
	free(b);
}

Test(posix, truncate_down_then_up_reads_zeros_in_the_tail)
{
	const size_t n = 3 * MIB, cut = 3 * MIB / 2 + 77;
	uint8_t *b = xmalloc(n);
	struct stat st;
	int fd;

	make_file("f", n, 6);
	OK(truncate(at("f"), (off_t)cut));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_size, (off_t)cut);
	fd = (int)OK(open(at("f"), O_RDWR));
	OK(ftruncate(fd, (off_t)n));
	OK(close(fd));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_size, (off_t)n);
	fd = open_uncached(at("f"), O_RDONLY);
	read_at(fd, b, n, 0);
	expect_pattern(b, cut, 6, 0, "the part kept by truncate");
	expect_zeros(b + cut, n - cut, cut, "the tail after truncating down and up");
	OK(close(fd));
	OK(truncate(at("f"), 0));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_size, 0);
	free(b);
}

Test(posix, a_partial_overwrite_inside_a_chunk_keeps_the_rest)
{
	const size_t n = 2 * MIB, off = 300000, len = 1000;
	uint8_t *b = xmalloc(n), *want = xmalloc(n);
	int fd;

	make_file("f", n, 7);
	fd = (int)OK(open(at("f"), O_RDWR));
	fill(b, len, 8, off);
	write_at(fd, b, len, (off_t)off);
	OK(close(fd));
	fill(want, n, 7, 0);
	fill(want + off, len, 8, off);
	fd = open_uncached(at("f"), O_RDONLY);
	read_at(fd, b, n, 0);
	for (size_t i = 0; i < n; i++)
		cr_assert(b[i] == want[i], "byte %zu is 0x%02x, want 0x%02x (overwrite at %zu+%zu)",
			  i, b[i], want[i], off, len);
	OK(close(fd));
	free(b);
	free(want);
}

Test(posix, an_unlinked_open_file_stays_readable_until_close)
{
	const size_t n = 2 * MIB + 3;
	uint8_t *b = xmalloc(n);
	struct stat st;
	int fd;

	make_file("f", n, 9);
	fd = (int)OK(open(at("f"), O_RDONLY));
	OK(unlink(at("f")));
	FAILS(stat(at("f"), &st), ENOENT);
	OK(fstat(fd, &st));
	cr_assert_eq(st.st_nlink, 0, "nlink of an unlinked open file: %lu",
		     (unsigned long)st.st_nlink);
	drop_cache(fd);
	read_at(fd, b, n, 0);
	expect_pattern(b, n, 9, 0, "reading an unlinked open file");
	OK(close(fd));
	free(b);
}

Test(posix, rename_over_an_existing_file_replaces_it)
{
	char buf[16] = "";
	struct stat st;
	int old;

	make_file("new", 10, 10);
	make_file("old", 20, 11);
	old = (int)OK(open(at("old"), O_RDONLY));
	OK(rename(at("new"), at("old")));
	FAILS(stat(at("new"), &st), ENOENT);
	expect_file_pattern(at("old"), 10, 10);
	/* The replaced file lives on for whoever has it open. */
	read_at(old, buf, 16, 0);
	expect_pattern((uint8_t *)buf, 16, 11, 0, "the replaced file through an open fd");
	OK(close(old));
}

Test(posix, rename_over_a_file_never_shows_the_name_missing)
{
	int pfd[2], status, misses;
	pid_t pid;

	make_file("b", 10, 40);
	OK(pipe2(pfd, O_NONBLOCK));
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Open "b" over and over until the parent closes the pipe. */
		char c;

		close(pfd[1]);
		misses = 0;
		for (int i = 0; i < 1000000 && read(pfd[0], &c, 1) != 0; i++) {
			int fd = open(at("b"), O_RDONLY);

			if (fd >= 0)
				close(fd);
			else if (errno == ENOENT && misses < 255)
				misses++;
		}
		_exit(misses);
	}
	close(pfd[0]);
	for (int i = 0; i < 100; i++) {
		make_file("tmp", 10, 41 + (uint64_t)(i % 2));
		OK(rename(at("tmp"), at("b")));
	}
	close(pfd[1]);
	OK(waitpid(pid, &status, 0));
	cr_assert(WIFEXITED(status), "the reader died");
	misses = WEXITSTATUS(status);
	cr_assert_eq(misses, 0, "'b' was missing %d times while files were renamed over it",
		     misses);
	expect_file_pattern(at("b"), 10, 42);
}

Test(posix, rename_noreplace_fails_with_eexist_and_changes_nothing)
{
	make_file("a", 10, 12);
	make_file("b", 20, 13);
	FAILS(syscall(SYS_renameat2, AT_FDCWD, at("a"), AT_FDCWD, at("b"), RENAME_NOREPLACE),
	      EEXIST);
	expect_file_pattern(at("a"), 10, 12);
	expect_file_pattern(at("b"), 20, 13);
	OK(syscall(SYS_renameat2, AT_FDCWD, at("a"), AT_FDCWD, at("c"), RENAME_NOREPLACE));
	expect_file_pattern(at("c"), 10, 12);
}

Test(posix, rename_exchange_swaps_two_names)
{
	struct stat st;

	make_file("a", 10, 14);
	OK(mkdir(at("d"), 0755));
	make_file("d/inner", 5, 15);
	OK(syscall(SYS_renameat2, AT_FDCWD, at("a"), AT_FDCWD, at("d"), RENAME_EXCHANGE));
	OK(lstat(at("a"), &st));
	cr_assert(S_ISDIR(st.st_mode), "after the exchange 'a' should be the directory");
	expect_file_pattern(at("d"), 10, 14);
	expect_file_pattern(at("a/inner"), 5, 15);
	FAILS(syscall(SYS_renameat2, AT_FDCWD, at("a"), AT_FDCWD, at("none"), RENAME_EXCHANGE),
	      ENOENT);
}

Test(posix, rename_of_a_dir_over_a_non_empty_dir_fails_with_enotempty)
{
	struct stat st;

	OK(mkdir(at("src"), 0755));
	make_file("src/s", 3, 16);
	OK(mkdir(at("full"), 0755));
	make_file("full/x", 3, 17);
	OK(mkdir(at("empty"), 0755));
	FAILS(rename(at("src"), at("full")), ENOTEMPTY);
	expect_file_pattern(at("full/x"), 3, 17);
	OK(rename(at("src"), at("empty")));
	expect_file_pattern(at("empty/s"), 3, 16);
	FAILS(stat(at("src"), &st), ENOENT);
	/* A directory over a file and a file over a directory. */
	make_file("file", 1, 18);
	FAILS(rename(at("empty"), at("file")), ENOTDIR);
	FAILS(rename(at("file"), at("full")), EISDIR);
}

Test(posix, rename_of_a_dir_into_its_own_subtree_fails_with_einval)
{
	struct stat st;

	OK(mkdir(at("d"), 0755));
	OK(mkdir(at("d/sub"), 0755));
	FAILS(rename(at("d"), at("d/sub/d")), EINVAL);
	OK(stat(at("d/sub"), &st));
}

Test(posix, mkdir_and_rmdir_report_eexist_enotempty_enotdir)
{
	struct stat st;

	OK(mkdir(at("d"), 0750));
	OK(stat(at("d"), &st));
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0750, "mode %o", st.st_mode & 07777);
	FAILS(mkdir(at("d"), 0755), EEXIST);
	make_file("f", 1, 19);
	FAILS(mkdir(at("f"), 0755), EEXIST);
	FAILS(mkdir(at("f/x"), 0755), ENOTDIR);
	FAILS(rmdir(at("f")), ENOTDIR);
	FAILS(unlink(at("d")), EISDIR);
	make_file("d/x", 1, 20);
	FAILS(rmdir(at("d")), ENOTEMPTY);
	OK(unlink(at("d/x")));
	OK(rmdir(at("d")));
	FAILS(stat(at("d"), &st), ENOENT);
	FAILS(rmdir(at("d")), ENOENT);
}

/* The kernel asks for a directory's attributes before each create or unlink
 * in it, and the client may answer from what the change itself returned:
 * what stat shows must still be the directory as the last change left it. */
Test(posix, a_directory_shows_every_change_in_it_in_mtime_ctime_nlink_and_mode)
{
	struct stat before, after;

	OK(mkdir(at("d"), 0755));
	OK(stat(at("d"), &before));
	cr_assert_eq(before.st_nlink, 2);
	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "d/f%d", i);
		make_file(name, 10, 30 + i);
		OK(stat(at("d"), &after));
		cr_assert(after.st_mtim.tv_sec > before.st_mtim.tv_sec ||
				  (after.st_mtim.tv_sec == before.st_mtim.tv_sec &&
				   after.st_mtim.tv_nsec > before.st_mtim.tv_nsec),
			  "create %d did not move the directory's mtime", i);
		cr_assert_eq(after.st_ctim.tv_sec, after.st_mtim.tv_sec);
		before = after;
	}
	OK(mkdir(at("d/sub"), 0700));
	OK(stat(at("d"), &after));
	cr_assert_eq(after.st_nlink, 3, "nlink %lu after mkdir", (unsigned long)after.st_nlink);
	OK(chmod(at("d"), 0711));
	OK(stat(at("d"), &after));
	cr_assert_eq(after.st_mode & 07777, 0711, "mode %o after chmod", after.st_mode & 07777);
	OK(rmdir(at("d/sub")));
	OK(unlink(at("d/f0")));
	OK(stat(at("d"), &after));
	cr_assert_eq(after.st_nlink, 2, "nlink %lu after rmdir", (unsigned long)after.st_nlink);
	cr_assert_eq(after.st_mode & 07777, 0711, "the mode came back as %o after an unlink",
		     after.st_mode & 07777);
	OK(rename(at("d/f1"), at("d/g1")));
	OK(chmod(at("d"), 0755));
	OK(unlink(at("d/g1")));
	OK(stat(at("d"), &after));
	cr_assert_eq(after.st_mode & 07777, 0755, "mode %o after rename, chmod, unlink",
		     after.st_mode & 07777);
}

Test(posix, a_hard_link_shares_the_inode_and_counts_in_st_nlink)
{
	struct stat a, b;
	uint8_t buf[100];
	int fd;

	make_file("f", 100, 21);
	OK(link(at("f"), at("g")));
	OK(stat(at("f"), &a));
	OK(stat(at("g"), &b));
	cr_assert_eq(a.st_ino, b.st_ino, "two names, two inodes");
	cr_assert_eq(a.st_nlink, 2, "nlink %lu after link", (unsigned long)a.st_nlink);
	FAILS(link(at("f"), at("g")), EEXIST);
	OK(mkdir(at("d"), 0755));
	FAILS(link(at("d"), at("d2")), EPERM);
	fd = (int)OK(open(at("g"), O_WRONLY));
	fill(buf, 50, 22, 0);
	write_at(fd, buf, 50, 0);
	OK(close(fd));
	fd = open_uncached(at("f"), O_RDONLY);
	read_at(fd, buf, 100, 0);
	expect_pattern(buf, 50, 22, 0, "a write through the other name");
	expect_pattern(buf + 50, 50, 21, 50, "the rest");
	OK(close(fd));
	OK(unlink(at("f")));
	OK(stat(at("g"), &b));
	cr_assert_eq(b.st_nlink, 1, "nlink %lu after unlinking one name",
		     (unsigned long)b.st_nlink);
}

Test(posix, symlink_and_readlink_keep_the_target_exactly)
{
	const char *target = "some/where/../that does not exist";
	char buf[PATH_MAX];
	struct stat st;

	OK(symlink(target, at("l")));
	cr_assert_eq(OK(readlink(at("l"), buf, sizeof(buf))), (long)strlen(target));
	cr_assert(memcmp(buf, target, strlen(target)) == 0, "readlink gave '%.*s'",
		  (int)strlen(target), buf);
	OK(lstat(at("l"), &st));
	cr_assert(S_ISLNK(st.st_mode), "lstat of a symlink: mode %o", st.st_mode);
	cr_assert_eq(st.st_size, (off_t)strlen(target), "a symlink's size is its target's length");
	FAILS(stat(at("l"), &st), ENOENT);
	FAILS(symlink("x", at("l")), EEXIST);
	make_file("f", 33, 23);
	OK(symlink("f", at("tof")));
	expect_file_pattern(at("tof"), 33, 23);
	FAILS(readlink(at("f"), buf, sizeof(buf)), EINVAL);
}

Test(posix, a_symlink_loop_gives_eloop)
{
	struct stat st;

	OK(symlink("b", at("a")));
	OK(symlink("a", at("b")));
	FAILS(open(at("a"), O_RDONLY), ELOOP);
	FAILS(stat(at("a"), &st), ELOOP);
	OK(lstat(at("a"), &st));
}

Test(posix, a_256_byte_name_fails_with_enametoolong)
{
	char name[257];
	struct stat st;
	int fd;

	memset(name, 'n', 256);
	name[256] = '\0';
	FAILS(open(at(name), O_WRONLY | O_CREAT, 0644), ENAMETOOLONG);
	FAILS(mkdir(at(name), 0755), ENAMETOOLONG);
	FAILS(stat(at(name), &st), ENAMETOOLONG);
	name[255] = '\0';
	fd = (int)OK(open(at(name), O_WRONLY | O_CREAT, 0644));
	OK(close(fd));
	OK(stat(at(name), &st));
}

Test(posix, missing_names_give_enoent)
{
	struct stat st;

	FAILS(open(at("none"), O_RDONLY), ENOENT);
	FAILS(stat(at("none"), &st), ENOENT);
	FAILS(unlink(at("none")), ENOENT);
	FAILS(rmdir(at("none")), ENOENT);
	FAILS(rename(at("none"), at("other")), ENOENT);
	FAILS(open(at("none/x"), O_WRONLY | O_CREAT, 0644), ENOENT);
	FAILS(getxattr(at("none"), "user.x", NULL, 0), ENOENT);
}

Test(posix, a_directory_cannot_be_opened_for_writing)
{
	char c;
	int fd;

	OK(mkdir(at("d"), 0755));
	FAILS(open(at("d"), O_WRONLY), EISDIR);
	FAILS(open(at("d"), O_RDWR), EISDIR);
	fd = (int)OK(open(at("d"), O_RDONLY | O_DIRECTORY));
	FAILS(read(fd, &c, 1), EISDIR);
	OK(close(fd));
	make_file("f", 1, 24);
	FAILS(open(at("f"), O_RDONLY | O_DIRECTORY), ENOTDIR);
}

Test(posix, chmod_and_chown_change_mode_and_owner)
{
	struct stat st;
	int fd;

	make_file("f", 1, 25);
	OK(chmod(at("f"), 0640));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_mode & 07777, 0640, "mode %o after chmod 0640", st.st_mode & 07777);
	cr_assert(S_ISREG(st.st_mode));
	OK(chown(at("f"), 1234, 5678));
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_uid, 1234u);
	cr_assert_eq(st.st_gid, 5678u);
	fd = (int)OK(open(at("f"), O_RDONLY));
	OK(fchmod(fd, 04711));
	OK(fstat(fd, &st));
	cr_assert_eq(st.st_mode & 07777, 04711, "mode %o after fchmod 04711", st.st_mode & 07777);
	OK(close(fd));
	OK(symlink("f", at("l")));
	OK(lchown(at("l"), 42, 43));
	OK(lstat(at("l"), &st));
	cr_assert(st.st_uid == 42 && st.st_gid == 43, "lchown gave %u:%u", st.st_uid, st.st_gid);
	OK(stat(at("f"), &st));
	cr_assert_eq(st.st_uid, 1234u, "lchown of the link changed its target");
}

static int64_t ns_of(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

Test(posix, utimensat_keeps_nanoseconds_and_honours_now_and_omit)
{
	struct timespec ts[2] = {{1000000001, 123456789}, {1200000002, 987654321}};
	struct timespec before, after;
	struct stat st;

	make_file("f", 1, 26);
	OK(utimensat(AT_FDCWD, at("f"), ts, 0));
	OK(stat(at("f"), &st));
	cr_assert(st.st_atim.tv_sec == ts[0].tv_sec && st.st_atim.tv_nsec == ts[0].tv_nsec,
		  "atime %lld.%09ld", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
	cr_assert(st.st_mtim.tv_sec == ts[1].tv_sec && st.st_mtim.tv_nsec == ts[1].tv_nsec,
		  "mtime %lld.%09ld", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);

	clock_gettime(CLOCK_REALTIME, &before);
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_NOW;
	OK(utimensat(AT_FDCWD, at("f"), ts, 0));
	clock_gettime(CLOCK_REALTIME, &after);
	OK(stat(at("f"), &st));
	cr_assert(st.st_atim.tv_sec == 1000000001 && st.st_atim.tv_nsec == 123456789,
		  "UTIME_OMIT changed atime to %lld.%09ld", (long long)st.st_atim.tv_sec,
		  st.st_atim.tv_nsec);
	/* The metadata leader stamps "now": same host, allow a second of skew. */
	cr_assert(ns_of(st.st_mtim) >= ns_of(before) - 1000000000 &&
		      ns_of(st.st_mtim) <= ns_of(after) + 1000000000,
		  "UTIME_NOW set mtime %lld.%09ld, not about now (%lld)",
		  (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)before.tv_sec);
	ts[0].tv_nsec = UTIME_NOW;
	ts[1].tv_nsec = UTIME_OMIT;
	OK(utimensat(AT_FDCWD, at("f"), ts, 0));
	OK(stat(at("f"), &st));
	cr_assert(ns_of(st.st_atim) >= ns_of(before) - 1000000000, "UTIME_NOW left atime old");
	OK(symlink("f", at("l")));
	ts[0] = (struct timespec){5, 5};
	ts[1] = (struct timespec){6, 6};
	OK(utimensat(AT_FDCWD, at("l"), ts, AT_SYMLINK_NOFOLLOW));
	OK(lstat(at("l"), &st));
	cr_assert(st.st_mtim.tv_sec == 6 && st.st_mtim.tv_nsec == 6, "a symlink's own mtime");
}

Test(posix, st_blocks_of_a_sparse_file_is_below_that_of_a_dense_one)
{
	struct stat dense, sparse;
	int fd;

	make_file("dense", 4 * MIB, 27);
	fd = (int)OK(open(at("sparse"), O_WRONLY | O_CREAT, 0644));
	write_at(fd, "x", 1, 4 * MIB - 1);
	OK(close(fd));
	OK(stat(at("dense"), &dense));
	OK(stat(at("sparse"), &sparse));
	cr_assert_eq(dense.st_size, sparse.st_size);
	cr_assert(dense.st_blocks * 512 >= 4 * MIB,
		  "a dense 4 MiB file of random bytes has only %lld blocks",
		  (long long)dense.st_blocks);
	cr_assert(sparse.st_blocks < dense.st_blocks,
		  "sparse file: %lld blocks, dense file: %lld blocks", (long long)sparse.st_blocks,
		  (long long)dense.st_blocks);
}

Test(posix, mkfifo_makes_a_working_fifo)
{
	struct stat st;
	char c = 0;
	int fd;

	OK(mkfifo(at("fifo"), 0640));
	OK(lstat(at("fifo"), &st));
	cr_assert(S_ISFIFO(st.st_mode), "mode %o is not a FIFO", st.st_mode);
	cr_assert_eq(st.st_mode & 07777, 0640);
	fd = (int)OK(open(at("fifo"), O_RDWR | O_NONBLOCK));
	cr_assert_eq(OK(write(fd, "z", 1)), 1);
	cr_assert_eq(OK(read(fd, &c, 1)), 1);
	cr_assert_eq(c, 'z');
	OK(close(fd));
	FAILS(mkfifo(at("fifo"), 0640), EEXIST);
}

Test(posix, xattrs_set_get_list_remove_with_their_errors)
{
	uint8_t val[1000], got[1000];
	char list[256];
	ssize_t n;
	bool k1 = false, k2 = false;

	make_file("f", 1, 28);
	FAILS(getxattr(at("f"), "user.k", NULL, 0), ENODATA);
	OK(setxattr(at("f"), "user.k", "v1", 2, XATTR_CREATE));
	FAILS(setxattr(at("f"), "user.k", "v2", 2, XATTR_CREATE), EEXIST);
	FAILS(setxattr(at("f"), "user.none", "v", 1, XATTR_REPLACE), ENODATA);
	OK(setxattr(at("f"), "user.k", "v22", 3, XATTR_REPLACE));
	cr_assert_eq(OK(getxattr(at("f"), "user.k", NULL, 0)), 3, "size probe");
	FAILS(getxattr(at("f"), "user.k", got, 2), ERANGE);
	cr_assert_eq(OK(getxattr(at("f"), "user.k", got, sizeof(got))), 3);
	cr_assert(memcmp(got, "v22", 3) == 0, "value '%.3s'", (char *)got);
	/* Binary values with zero bytes survive whole. */
	fill(val, sizeof(val), 29, 0);
	val[0] = val[500] = 0;
	OK(setxattr(at("f"), "user.bin", val, sizeof(val), 0));
	cr_assert_eq(OK(getxattr(at("f"), "user.bin", got, sizeof(got))), (long)sizeof(val));
	cr_assert(memcmp(got, val, sizeof(val)) == 0, "a binary value changed");

	n = OK(listxattr(at("f"), NULL, 0));
	cr_assert_geq(n, (ssize_t)sizeof("user.k") + (ssize_t)sizeof("user.bin"));
	FAILS(listxattr(at("f"), list, 1), ERANGE);
	n = OK(listxattr(at("f"), list, sizeof(list)));
	for (char *p = list; p < list + n; p += strlen(p) + 1) {
		k1 |= strcmp(p, "user.k") == 0;
		k2 |= strcmp(p, "user.bin") == 0;
	}
	cr_assert(k1 && k2, "listxattr misses a name (user.k %d, user.bin %d)", k1, k2);

	OK(removexattr(at("f"), "user.k"));
	FAILS(getxattr(at("f"), "user.k", got, sizeof(got)), ENODATA);
	FAILS(removexattr(at("f"), "user.k"), ENODATA);
	cr_assert_eq(OK(getxattr(at("f"), "user.bin", NULL, 0)), (long)sizeof(val));
	/* On a directory too. */
	OK(mkdir(at("d"), 0755));
	OK(setxattr(at("d"), "user.dir", "1", 1, 0));
	cr_assert_eq(OK(getxattr(at("d"), "user.dir", got, sizeof(got))), 1);
}

Test(posix, a_posix_acl_xattr_sets_the_mode_or_is_refused)
{
	/* user::rw- group::r-- other::r--, as cp -p and cp -a write it. Those
	 * tools (and rsync -A, tar --acls) set the mode through this xattr when
	 * the file system takes it, and fall back to chmod on EOPNOTSUPP: a file
	 * system that stores it as a plain xattr leaves every copy at 0600. */
	static const char acl[] = "\x02\0\0\0"			  /* version 2 */
				  "\x01\0\x06\0\xff\xff\xff\xff"  /* user::rw- */
				  "\x04\0\x04\0\xff\xff\xff\xff"  /* group::r-- */
				  "\x20\0\x04\0\xff\xff\xff\xff"; /* other::r-- */
	struct stat st;

	make_file("f", 1, 31);
	OK(chmod(at("f"), 0600));
	errno = 0;
	if (setxattr(at("f"), "system.posix_acl_access", acl, sizeof(acl) - 1, 0) == 0) {
		OK(stat(at("f"), &st));
		cr_assert_eq(st.st_mode & 0777, 0644,
			     "system.posix_acl_access was taken but the mode is %o, not 644",
			     st.st_mode & 0777);
	} else {
		cr_assert_eq(errno, EOPNOTSUPP, "setxattr(system.posix_acl_access) failed with %s",
			     errname(errno));
	}
}

Test(posix, readdir_of_1000_entries_lists_each_once)
{
	enum { N = 1000 };
	static bool seen[N];
	int dots = 0, dotdots = 0, total = 0;
	struct dirent *de;
	char name[32];
	DIR *d;

	OK(mkdir(at("many"), 0755));
	for (int i = 0; i < N; i++) {
		int fd;

		snprintf(name, sizeof(name), "many/entry-%04d", i);
		fd = (int)OK(open(at(name), O_WRONLY | O_CREAT | O_EXCL, 0644));
		OK(close(fd));
	}
	d = opendir(at("many"));
	cr_assert(d, "opendir: %s", strerror(errno));
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		int i;

		total++;
		if (strcmp(de->d_name, ".") == 0) {
			dots++;
			continue;
		}
		if (strcmp(de->d_name, "..") == 0) {
			dotdots++;
			continue;
		}
		cr_assert(sscanf(de->d_name, "entry-%d", &i) == 1 && i >= 0 && i < N,
			  "readdir returned a name never created: '%s'", de->d_name);
		cr_assert(!seen[i], "readdir returned '%s' twice", de->d_name);
		seen[i] = true;
		cr_assert(de->d_type == DT_REG || de->d_type == DT_UNKNOWN, "d_type %d of '%s'",
			  de->d_type, de->d_name);
	}
	cr_assert_eq(errno, 0, "readdir failed: %s", strerror(errno));
	closedir(d);
	cr_assert(dots == 1 && dotdots == 1, "'.' %d times, '..' %d times", dots, dotdots);
	for (int i = 0; i < N; i++)
		cr_assert(seen[i], "readdir never returned entry-%04d", i);
	cr_assert_eq(total, N + 2);
}

Test(posix, statfs_reports_sane_figures)
{
	struct statvfs sv;

	OK(statvfs(dir, &sv));
	cr_assert_gt(sv.f_bsize, 0);
	cr_assert_gt(sv.f_frsize, 0);
	cr_assert_gt(sv.f_blocks, 0, "a cluster of size zero");
	cr_assert_leq(sv.f_bfree, sv.f_blocks);
	cr_assert_leq(sv.f_bavail, sv.f_bfree);
	cr_assert_gt(sv.f_bavail, 0, "a fresh test cluster with no free space");
	cr_assert_eq(sv.f_namemax, 255, "namemax %lu", sv.f_namemax);
}

Test(posix, fallocate_works_or_says_eopnotsupp)
{
	uint8_t b[4096];
	struct stat st;
	int fd = (int)OK(open(at("f"), O_RDWR | O_CREAT, 0644));

	errno = 0;
	if (fallocate(fd, 0, 0, 2 * MIB) == 0) {
		OK(fstat(fd, &st));
		cr_assert_eq(st.st_size, 2 * MIB, "size %lld after fallocate",
			     (long long)st.st_size);
		read_at(fd, b, sizeof(b), MIB);
		expect_zeros(b, sizeof(b), MIB, "fallocated space");
	} else {
		cr_assert_eq(errno, EOPNOTSUPP, "fallocate failed with %s, not EOPNOTSUPP",
			     errname(errno));
	}
	OK(close(fd));
}

Test(posix, fsync_and_fdatasync_return_zero)
{
	uint8_t b[8192];
	int fd = (int)OK(open(at("f"), O_RDWR | O_CREAT, 0644));

	fill(b, sizeof(b), 30, 0);
	write_at(fd, b, sizeof(b), 0);
	cr_assert_eq(fsync(fd), 0, "fsync: %s", strerror(errno));
	write_at(fd, b, sizeof(b), sizeof(b));
	cr_assert_eq(fdatasync(fd), 0, "fdatasync: %s", strerror(errno));
	OK(close(fd));
	fd = (int)OK(open(dir, O_RDONLY | O_DIRECTORY));
	cr_assert_eq(fsync(fd), 0, "fsync of a directory: %s", strerror(errno));
	OK(close(fd));
	fd = open_uncached(at("f"), O_RDONLY);
	read_at(fd, b, sizeof(b), sizeof(b));
	expect_pattern(b, sizeof(b), 30, 0, "the data written before fdatasync");
	OK(close(fd));
}

/* Run @fn as user and group 65534 (nobody) in a child; returns what it
 * returned, or -1 if the child could not become nobody. */
static int as_nobody(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(255);
		_exit(fn() & 0x7f);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status) == 255 ? -1 : WEXITSTATUS(status);
}

static char secret[PATH_MAX + 16], shared_dir[PATH_MAX + 16];

/* Each returns the errno it got (0 for success), as an exit status. */
static int stat_secret(void)
{
	struct stat st;

	return stat(secret, &st) < 0 ? errno : 0;
}

static int read_secret(void)
{
	int fd = open(secret, O_RDONLY);

	return fd < 0 ? errno : 0;
}

static int chmod_secret(void)
{
	return chmod(secret, 0666) < 0 ? errno : 0;
}

static int create_in_shared(void)
{
	char path[PATH_MAX + 32];
	int fd;

	snprintf(path, sizeof(path), "%s/mine", shared_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		return errno;
	return close(fd) < 0 ? errno : 0;
}

/* The kernel checks modes and owners on every access (default_permissions is
 * always on): another user of the node cannot read a 0600 file of root's,
 * nor chmod it, but can create files where the mode lets it. */
Test(posix, modes_and_owners_are_enforced_for_other_users)
{
	struct stat st;
	char mine[PATH_MAX + 32];
	int fd;

	snprintf(secret, sizeof(secret), "%s/secret", dir);
	snprintf(shared_dir, sizeof(shared_dir), "%s/shared", dir);
	fd = open(secret, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0, "creating %s: %s", secret, strerror(errno));
	cr_assert_eq(write(fd, "k", 1), 1);
	cr_assert_eq(close(fd), 0);
	cr_assert_eq(mkdir(shared_dir, 0777), 0);
	cr_assert_eq(chmod(shared_dir, 0777), 0);
	cr_assert_eq(chmod(dir, 0755), 0);

	/* Nobody reaches the file, so a refusal below is the file's own mode. */
	cr_assert_eq(as_nobody(stat_secret), 0, "nobody cannot even reach %s", secret);
	cr_assert_eq(as_nobody(read_secret), EACCES);
	cr_assert_eq(as_nobody(chmod_secret), EPERM);
	cr_assert_eq(as_nobody(create_in_shared), 0);
	snprintf(mine, sizeof(mine), "%s/mine", shared_dir);
	cr_assert_eq(stat(mine, &st), 0);
	cr_assert_eq(st.st_uid, 65534, "a file created by nobody belongs to nobody");
	cr_assert_eq(st.st_gid, 65534);
}
