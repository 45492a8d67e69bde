/* fuzz_snapshot.c - a metadata snapshot that does not check is refused
 * whole, never half-loaded into a crash. One that loads must save again to
 * the same bytes (the format has one encoding of each state), and the state
 * it gives must take the next mutation. (A snapshot of an older version
 * saves as the current one, which must then round-trip.) Each input is
 * tried as it is, then with its checksum put right (fuzz_sum.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "fuzz_sum.h"
#include "meta.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size)
{
	struct pifs_meta *m = pifs_meta_new();
	struct pifs_meta_stats st;
	struct pifs_buf again, scratch;
	struct pifs_msg op, rep;

	if (!m)
		abort();
	if (pifs_meta_load(m, data, size) != 0) {
		/* A refused snapshot leaves the state new: it must load a good one. */
		if (pifs_meta_index(m) != 0)
			abort();
		pifs_meta_free(m);
		return;
	}
	pifs_buf_init(&again);
	pifs_buf_init(&scratch);
	if (pifs_meta_save(m, &again) != 0)
		abort();
	if (memcmp(again.p + 4, data + 4, 4) == 0) {
		/* The same version: one state, one encoding. */
		if (again.len != size || memcmp(again.p, data, size) != 0)
			abort();
	} else {
		/* An older version is saved as the current one, which must then
		 * load and save to itself. */
		struct pifs_meta *m2 = pifs_meta_new();
		struct pifs_buf third;

		pifs_buf_init(&third);
		if (!m2 || pifs_meta_load(m2, again.p, again.len) != 0 ||
		    pifs_meta_save(m2, &third) != 0 || third.len != again.len ||
		    memcmp(third.p, again.p, again.len) != 0)
			abort();
		pifs_buf_fini(&third);
		pifs_meta_free(m2);
	}
	pifs_meta_stats(m, &st);
	pifs_msg_init(&op, PIFS_MSG_NOOP);
	op.u.NOOP.now = 1;
	if (pifs_meta_index(m) < UINT64_MAX &&
	    pifs_meta_apply(m, pifs_meta_index(m) + 1, &op, &rep, &scratch) != 0)
		abort();
	(void)pifs_meta_digest(m);
	pifs_buf_fini(&scratch);
	pifs_buf_fini(&again);
	pifs_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;

	one(data, size);
	if (size < 8)
		return 0;
	fixed = malloc(size);
	if (!fixed)
		abort();
	memcpy(fixed, data, size);
	fuzz_sum_tail(fixed, size);
	if (memcmp(fixed, data, size) != 0)
		one(fixed, size);
	free(fixed);
	return 0;
}
