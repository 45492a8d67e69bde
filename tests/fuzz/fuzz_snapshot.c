/* fuzz_snapshot.c - a metadata snapshot that does not check is refused
 * whole, never half-loaded into a crash. One that loads must save again to
 * the same bytes (the format has one encoding of each state), and the state
 * it gives must take the next mutation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "meta.h"
#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
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
		return 0;
	}
	pifs_buf_init(&again);
	pifs_buf_init(&scratch);
	if (pifs_meta_save(m, &again) != 0 || again.len != size || memcmp(again.p, data, size) != 0)
		abort();
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
	return 0;
}
