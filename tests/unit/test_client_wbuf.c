/* Tests of the client's write buffer: the written extent and the merge of
 * the old chunk under it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "wbuf.h"

#define CAP 4096

static struct pifs_wbuf w;

static void setup(void)
{
	cr_assert_eq(pifs_wbuf_init(&w, CAP), 0);
}

static void teardown(void)
{
	pifs_wbuf_fini(&w);
}

TestSuite(wbuf, .init = setup, .fini = teardown);

static void fill(uint8_t *p, size_t n, uint8_t v)
{
	memset(p, v, n);
}

Test(wbuf, rejects_a_zero_capacity)
{
	struct pifs_wbuf z;

	cr_assert_eq(pifs_wbuf_init(&z, 0), -EINVAL);
	pifs_wbuf_fini(&z);
}

Test(wbuf, sequential_writes_grow_one_extent_to_the_whole_chunk)
{
	uint8_t src[1024];

	fill(src, sizeof(src), 7);
	for (uint32_t off = 0; off < CAP; off += sizeof(src))
		cr_assert_eq(pifs_wbuf_write(&w, off, src, sizeof(src)), 0);
	cr_assert_eq(w.lo, 0);
	cr_assert_eq(w.hi, CAP);
	cr_assert(pifs_wbuf_covers(&w, 0, CAP));
	cr_assert_not(w.merged);
}

Test(wbuf, a_write_with_a_gap_needs_a_merge_first)
{
	uint8_t src[16] = {1};

	cr_assert_eq(pifs_wbuf_write(&w, 100, src, 16), 0);
	cr_assert_not(pifs_wbuf_can_write(&w, 200, 16));
	cr_assert_eq(pifs_wbuf_write(&w, 200, src, 16), -EAGAIN);
	cr_assert_eq(w.lo, 100);
	cr_assert_eq(w.hi, 116);
}

Test(wbuf, adjacent_and_overlapping_writes_need_no_merge)
{
	uint8_t src[16] = {1};

	cr_assert_eq(pifs_wbuf_write(&w, 100, src, 16), 0);
	cr_assert_eq(pifs_wbuf_write(&w, 116, src, 16), 0);	/* after */
	cr_assert_eq(pifs_wbuf_write(&w, 84, src, 16), 0);	/* before */
	cr_assert_eq(pifs_wbuf_write(&w, 90, src, 16), 0);	/* inside */
	cr_assert_eq(w.lo, 84);
	cr_assert_eq(w.hi, 132);
}

Test(wbuf, rejects_a_range_past_the_chunk)
{
	uint8_t src[16] = {0}, out[16];

	cr_assert_eq(pifs_wbuf_write(&w, CAP - 8, src, 16), -EINVAL);
	cr_assert_eq(pifs_wbuf_read(&w, CAP - 8, out, 16), -EINVAL);
	cr_assert_not(pifs_wbuf_covers(&w, CAP, 1));
}

Test(wbuf, reads_outside_the_extent_need_a_merge)
{
	uint8_t src[16], out[32];

	fill(src, sizeof(src), 9);
	cr_assert_eq(pifs_wbuf_write(&w, 64, src, 16), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 64, out, 16), 0);
	cr_assert_eq(memcmp(out, src, 16), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 56, out, 16), -EAGAIN);
	cr_assert_eq(pifs_wbuf_read(&w, 72, out, 16), -EAGAIN);
}

Test(wbuf, merge_keeps_written_bytes_over_the_old_ones)
{
	uint8_t base[CAP], src[100], out[CAP];

	fill(base, sizeof(base), 0xaa);
	fill(src, sizeof(src), 0x55);
	cr_assert_eq(pifs_wbuf_write(&w, 1000, src, sizeof(src)), 0);
	cr_assert_eq(pifs_wbuf_merge(&w, base, CAP), 0);
	cr_assert(w.merged);
	cr_assert_eq(pifs_wbuf_read(&w, 0, out, CAP), 0);
	for (uint32_t i = 0; i < CAP; i++)
		cr_assert_eq(out[i], i >= 1000 && i < 1100 ? 0x55 : 0xaa, "byte %u", i);
}

Test(wbuf, merge_zero_fills_past_a_short_old_chunk)
{
	uint8_t base[500], src[10], out[CAP];

	fill(base, sizeof(base), 0xaa);
	fill(src, sizeof(src), 0x55);
	cr_assert_eq(pifs_wbuf_write(&w, 2000, src, sizeof(src)), 0);
	cr_assert_eq(pifs_wbuf_merge(&w, base, sizeof(base)), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 0, out, CAP), 0);
	for (uint32_t i = 0; i < CAP; i++) {
		uint8_t want = i < 500 ? 0xaa : (i >= 2000 && i < 2010 ? 0x55 : 0);

		cr_assert_eq(out[i], want, "byte %u", i);
	}
}

Test(wbuf, merge_without_an_old_chunk_reads_as_zeros)
{
	uint8_t src[10], out[CAP];

	fill(src, sizeof(src), 0x55);
	cr_assert_eq(pifs_wbuf_write(&w, 3000, src, sizeof(src)), 0);
	cr_assert_eq(pifs_wbuf_merge(&w, NULL, 0), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 0, out, CAP), 0);
	for (uint32_t i = 0; i < CAP; i++)
		cr_assert_eq(out[i], i >= 3000 && i < 3010 ? 0x55 : 0, "byte %u", i);
}

Test(wbuf, merge_of_an_empty_buffer_copies_the_old_chunk)
{
	uint8_t base[CAP], out[CAP];

	for (uint32_t i = 0; i < CAP; i++)
		base[i] = (uint8_t)i;
	cr_assert_eq(pifs_wbuf_merge(&w, base, CAP), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 0, out, CAP), 0);
	cr_assert_eq(memcmp(out, base, CAP), 0);
}

Test(wbuf, a_second_merge_does_not_overwrite_later_writes)
{
	uint8_t base[CAP], src[10], out[10];

	fill(base, sizeof(base), 0xaa);
	fill(src, sizeof(src), 0x55);
	cr_assert_eq(pifs_wbuf_merge(&w, base, CAP), 0);
	cr_assert_eq(pifs_wbuf_write(&w, 10, src, sizeof(src)), 0);
	cr_assert_eq(pifs_wbuf_merge(&w, base, CAP), 0);
	cr_assert_eq(pifs_wbuf_read(&w, 10, out, sizeof(out)), 0);
	cr_assert_eq(memcmp(out, src, sizeof(src)), 0);
}

Test(wbuf, a_merged_buffer_takes_writes_anywhere)
{
	uint8_t src[10] = {1};

	cr_assert_eq(pifs_wbuf_write(&w, 0, src, 10), 0);
	cr_assert_eq(pifs_wbuf_merge(&w, NULL, 0), 0);
	cr_assert(pifs_wbuf_can_write(&w, 3000, 10));
	cr_assert_eq(pifs_wbuf_write(&w, 3000, src, 10), 0);
	cr_assert(pifs_wbuf_covers(&w, 0, CAP));
}

Test(wbuf, rejects_an_old_chunk_larger_than_the_buffer)
{
	static uint8_t base[CAP + 1];

	cr_assert_eq(pifs_wbuf_merge(&w, base, CAP + 1), -EINVAL);
	cr_assert_not(w.merged);
}
