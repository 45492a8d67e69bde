/* fuzz_sum.h - put right the checksums of a fuzzer's input, for the fuzz
 * targets of formats that check themselves with XXH3-64.
 *
 * A mutated byte almost never comes with its checksum, so without this the
 * fuzzer would spend its time on inputs refused at the first check and
 * never reach the parser behind it. The targets try each input as it is
 * (which covers the checks themselves) and then with its sums recomputed.
 * Inline, so that each target stays one file with its own
 * LLVMFuzzerTestOneInput. */
#ifndef PIFS_FUZZ_SUM_H
#define PIFS_FUZZ_SUM_H

#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

static inline uint64_t fuzz_be_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void fuzz_be_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

/* The last 8 bytes of @p (@len bytes) are the XXH3-64 of the rest: a
 * pifs_meta_save snapshot, and raft.hard. */
static inline void fuzz_sum_tail(uint8_t *p, size_t len)
{
	if (len >= 8)
		fuzz_be_put(p + len - 8, XXH3_64bits(p, len - 8), 8);
}

/* raft.log: u32 length | u64 index | u64 term | u8 type | bytes | u64 sum,
 * as far as whole entries go. */
static inline void fuzz_sum_raftlog(uint8_t *p, size_t len)
{
	size_t off = 0;

	while (len - off >= 21 + 8) {
		uint64_t n = fuzz_be_get(p + off, 4);

		if (n > len - off - 21 - 8)
			break;
		fuzz_be_put(p + off + 21 + n, XXH3_64bits(p + off, 21 + n), 8);
		off += 21 + n + 8;
	}
}

/* raft.snap: a 28-byte head whose last u32 counts the voter ids after it,
 * a meta snapshot, u64 its length, u64 the sum of everything before. */
static inline void fuzz_sum_raftsnap(uint8_t *p, size_t len)
{
	uint64_t n, meta_off;

	if (len < 28 + 16)
		return;
	n = fuzz_be_get(p + 24, 4);
	if (n <= 7 && len - 28 - 16 >= 4 * n) {
		meta_off = 28 + 4 * n;
		fuzz_be_put(p + len - 16, len - 16 - meta_off, 8);
		fuzz_sum_tail(p + meta_off, len - 16 - meta_off);
	}
	fuzz_sum_tail(p, len);
}

#endif
