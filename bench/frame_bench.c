/* frame_bench.c - pifs-bench-frame: chunk frame pack and unpack speed.
 *
 *   pifs-bench-frame [CHUNK_KIB] [SECONDS]
 *
 * Packs (XXH3-128 id, LZ4 when it pays) and unpacks (decode and verify) 16
 * distinct chunks of CHUNK_KIB (default 4096) over and over for SECONDS
 * (default 1) per case, on incompressible and on JSON-like data. Prints CSV:
 * data,op,chunk_kib,mb_per_s,stored_ratio (MB = 10^6 raw bytes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datagen.h"
#include "frame.h"

#define NCHUNKS 16
#define MAX_ITERS 100000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_case(const char *name, int text, size_t chunk, double secs)
{
	struct pifs_frame frames[NCHUNKS] = { 0 };
	struct pifs_datagen g;
	uint8_t *raw, *out;
	double t0, dt, stored = 0;
	long iters;
	ssize_t got;
	int rc = 0;

	raw = malloc(chunk * NCHUNKS);
	out = malloc(chunk);
	if (!raw || !out) {
		fprintf(stderr, "pifs-bench-frame: out of memory for %d chunks of %zu bytes\n",
			NCHUNKS, chunk);
		rc = 1;
		goto out_free;
	}
	pifs_datagen_init(&g, 42);
	if (text)
		pifs_datagen_text(&g, raw, chunk * NCHUNKS);
	else
		pifs_datagen_random(&g, raw, chunk * NCHUNKS);

	t0 = now_s();
	for (iters = 0; iters < MAX_ITERS; iters++) {
		struct pifs_frame *f = &frames[iters % NCHUNKS];

		pifs_frame_release(f);
		rc = pifs_frame_pack(f, raw + (size_t)(iters % NCHUNKS) * chunk, chunk);
		if (rc < 0) {
			fprintf(stderr, "pifs-bench-frame: pack of a %s chunk failed: %s\n", name,
				strerror(-rc));
			rc = 1;
			goto out_release;
		}
		if ((dt = now_s() - t0) >= secs && iters >= NCHUNKS)
			break;
	}
	for (int i = 0; i < NCHUNKS; i++)
		stored += (double)frames[i].len;
	printf("%s,pack,%zu,%.1f,%.3f\n", name, chunk >> 10, (double)(iters + 1) * chunk / dt / 1e6,
	       stored / ((double)chunk * NCHUNKS));

	t0 = now_s();
	for (iters = 0; iters < MAX_ITERS; iters++) {
		const struct pifs_frame *f = &frames[iters % NCHUNKS];

		got = pifs_frame_unpack(f->data, f->len, out, chunk);
		if (got != (ssize_t)chunk) {
			fprintf(stderr, "pifs-bench-frame: unpack of a %s chunk gave %zd, not %zu\n",
				name, got, chunk);
			rc = 1;
			goto out_release;
		}
		if ((dt = now_s() - t0) >= secs && iters >= NCHUNKS)
			break;
	}
	printf("%s,unpack,%zu,%.1f,%.3f\n", name, chunk >> 10,
	       (double)(iters + 1) * chunk / dt / 1e6, stored / ((double)chunk * NCHUNKS));
	rc = 0;
out_release:
	for (int i = 0; i < NCHUNKS; i++)
		pifs_frame_release(&frames[i]);
out_free:
	free(raw);
	free(out);
	return rc;
}

int main(int argc, char **argv)
{
	long kib = argc > 1 ? atol(argv[1]) : 4096;
	double secs = argc > 2 ? atof(argv[2]) : 1.0;

	if (argc > 3 || kib < 1 || (size_t)kib << 10 > PIFS_FRAME_MAX_RAW || secs <= 0 || secs > 60) {
		fprintf(stderr, "usage: pifs-bench-frame [CHUNK_KIB (1..65536)] [SECONDS (<= 60)]\n");
		return 2;
	}
	printf("data,op,chunk_kib,mb_per_s,stored_ratio\n");
	if (run_case("random", 0, (size_t)kib << 10, secs) ||
	    run_case("text", 1, (size_t)kib << 10, secs))
		return 1;
	return 0;
}
