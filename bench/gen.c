/* gen.c - pifs-bench-gen: write benchmark data to stdout.
 *
 *   pifs-bench-gen random|text MIB SEED
 *
 * The bench scripts write their source files with it (into tmpfs) so that the
 * time of a write workload is the file system's time, not the generator's. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "datagen.h"

#define BLOCK (1u << 20)

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pifs_datagen g;
	unsigned long long mib, seed;
	char *buf, *end;
	int text, rc = 0;

	if (argc != 4 || (strcmp(argv[1], "random") && strcmp(argv[1], "text"))) {
		fprintf(stderr, "usage: pifs-bench-gen random|text MIB SEED > FILE\n");
		return 2;
	}
	text = !strcmp(argv[1], "text");
	mib = strtoull(argv[2], &end, 10);
	if (*end || !mib) {
		fprintf(stderr, "pifs-bench-gen: size '%s' is not a positive number of MiB\n", argv[2]);
		return 2;
	}
	seed = strtoull(argv[3], &end, 10);
	if (*end) {
		fprintf(stderr, "pifs-bench-gen: seed '%s' is not a number\n", argv[3]);
		return 2;
	}
	buf = malloc(BLOCK);
	if (!buf) {
		fprintf(stderr, "pifs-bench-gen: out of memory for a 1 MiB buffer\n");
		return 1;
	}
	pifs_datagen_init(&g, seed);
	for (unsigned long long i = 0; i < mib && rc == 0; i++) {
		if (text)
			pifs_datagen_text(&g, buf, BLOCK);
		else
			pifs_datagen_random(&g, buf, BLOCK);
		rc = write_all(STDOUT_FILENO, buf, BLOCK);
	}
	free(buf);
	if (rc < 0) {
		fprintf(stderr, "pifs-bench-gen: writing stdout failed: %s; check the disk it goes to\n",
			strerror(-rc));
		return 1;
	}
	return 0;
}
