/* files.c - pifs-bench-files: small-file and metadata workloads.
 *
 *   pifs-bench-files create DIR N SIZE SEED   make DIR, then N files of SIZE bytes
 *   pifs-bench-files read DIR N SIZE          read every file whole, check its size
 *   pifs-bench-files stat DIR                 list DIR, then lstat every entry
 *   pifs-bench-files rm DIR N                 unlink every file, then rmdir DIR
 *
 * Prints "COUNT SECONDS" on success. Every file has its own content (a
 * different random stream), so a deduplicating store stores all of them.
 * Each step stops at the first error with a message naming the file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "datagen.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void name_of(char *out, size_t cap, const char *dir, long i)
{
	snprintf(out, cap, "%s/f%06ld.jpg", dir, i);
}

static int fail(const char *what, const char *path, int err)
{
	fprintf(stderr, "pifs-bench-files: %s %s failed: %s\n", what, path, strerror(err));
	return 1;
}

static int do_create(const char *dir, long n, size_t size, unsigned long long seed)
{
	struct pifs_datagen g;
	char path[4096];
	char *buf;
	ssize_t w;
	int fd;

	buf = malloc(size ? size : 1);
	if (!buf)
		return fail("allocating a buffer for", dir, ENOMEM);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		free(buf);
		return fail("mkdir", dir, errno);
	}
	for (long i = 0; i < n; i++) {
		pifs_datagen_init(&g, seed * 1000003ull + (unsigned long long)i);
		pifs_datagen_random(&g, buf, size);
		name_of(path, sizeof(path), dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			goto out_err;
		w = write(fd, buf, size);
		if (w < 0 || (size_t)w != size) {
			if (w >= 0)
				errno = EIO;
			close(fd);
			goto out_err;
		}
		if (close(fd) < 0)
			goto out_err;
	}
	free(buf);
	return 0;
out_err:
	free(buf);
	return fail("writing", path, errno);
}

static int do_read(const char *dir, long n, size_t size)
{
	char path[4096];
	size_t cap = size + 4096, got;
	char *buf;
	ssize_t r;
	int fd;

	buf = malloc(cap);
	if (!buf)
		return fail("allocating a buffer for", dir, ENOMEM);
	for (long i = 0; i < n; i++) {
		name_of(path, sizeof(path), dir, i);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			goto out_err;
		got = 0;
		do {
			r = read(fd, buf, cap);
			if (r > 0)
				got += (size_t)r;
		} while (r > 0);
		if (r < 0) {
			close(fd);
			goto out_err;
		}
		close(fd);
		if (got != size) {
			fprintf(stderr, "pifs-bench-files: %s has %zu bytes, expected %zu\n", path, got,
				size);
			free(buf);
			return 1;
		}
	}
	free(buf);
	return 0;
out_err:
	free(buf);
	return fail("reading", path, errno);
}

static int do_stat(const char *dir, long *count)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	d = opendir(dir);
	if (!d)
		return fail("opendir", dir, errno);
	dfd = dirfd(d);
	*count = 0;
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			fail("lstat of an entry of", dir, errno);
			closedir(d);
			return 1;
		}
		(*count)++;
	}
	if (errno) {
		fail("readdir", dir, errno);
		closedir(d);
		return 1;
	}
	closedir(d);
	return 0;
}

static int do_rm(const char *dir, long n)
{
	char path[4096];

	for (long i = 0; i < n; i++) {
		name_of(path, sizeof(path), dir, i);
		if (unlink(path) < 0)
			return fail("unlink", path, errno);
	}
	if (rmdir(dir) < 0)
		return fail("rmdir", dir, errno);
	return 0;
}

static int parse_long(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return (errno || *end || *out < 0) ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	long n = 0, size = 0, seed = 0, count;
	const char *op = argc > 1 ? argv[1] : "";
	double t0;
	int rc;

	if (!strcmp(op, "create") && argc == 6 && !parse_long(argv[3], &n) &&
	    !parse_long(argv[4], &size) && !parse_long(argv[5], &seed)) {
		t0 = now_s();
		rc = do_create(argv[2], n, (size_t)size, (unsigned long long)seed);
	} else if (!strcmp(op, "read") && argc == 5 && !parse_long(argv[3], &n) &&
		   !parse_long(argv[4], &size)) {
		t0 = now_s();
		rc = do_read(argv[2], n, (size_t)size);
	} else if (!strcmp(op, "stat") && argc == 3) {
		t0 = now_s();
		rc = do_stat(argv[2], &n);
	} else if (!strcmp(op, "rm") && argc == 4 && !parse_long(argv[3], &n)) {
		t0 = now_s();
		rc = do_rm(argv[2], n);
	} else {
		fprintf(stderr, "usage: pifs-bench-files create DIR N SIZE SEED | read DIR N SIZE |"
				" stat DIR | rm DIR N\n");
		return 2;
	}
	if (rc)
		return rc;
	count = n;
	printf("%ld %.6f\n", count, now_s() - t0);
	return 0;
}
