/* test_frame.c - the chunk codec: layout, compression choice, verification. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <xxhash.h>

#include "frame.h"

/* Deterministic bytes that LZ4 cannot shrink. */
static void fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 32);
	}
}

/* Log-like text: compresses well, but not to nothing. */
static void fill_text(uint8_t *p, size_t n)
{
	static const char *const words[] = {"GET",   "/photos/", "2024/",   "album", ".jpg",
					    " 200 ", "HTTP/1.1", " bytes=", "node",  "\n"};
	size_t i = 0, w = 0, k;

	while (i < n) {
		const char *s = words[(w * 7 + w / 3) % 10];

		for (k = 0; s[k] && i < n; k++)
			p[i++] = (uint8_t)s[k];
		if (i < n)
			p[i++] = (uint8_t)('0' + w % 10);
		w++;
	}
}

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	cr_assert_not_null(p);
	return p;
}

static void check_round_trip(const uint8_t *raw, size_t n, enum pifs_codec want)
{
	struct pifs_frame f;
	uint8_t *out = xmalloc(n);
	uint8_t *scratch = xmalloc(n);

	cr_assert_eq(pifs_frame_pack(&f, raw, n), 0);
	cr_assert_eq(f.hdr.codec, want, "codec %d, expected %d for %zu bytes", f.hdr.codec, want,
		     n);
	cr_assert_eq(f.hdr.raw_len, n);
	cr_assert_eq(f.len, PIFS_FRAME_HDR + f.hdr.stored_len);
	if (want == PIFS_CODEC_LZ4)
		cr_assert_leq(f.hdr.stored_len, n - n / 8);
	else
		cr_assert_eq(f.hdr.stored_len, n);
	cr_assert_eq(pifs_frame_unpack(f.data, f.len, out, n), (ssize_t)n);
	cr_assert(n == 0 || memcmp(out, raw, n) == 0);
	cr_assert_eq(pifs_frame_verify(f.data, f.len, scratch, n), 0);
	pifs_frame_release(&f);
	free(scratch);
	free(out);
}

Test(frame, round_trips_compressible_text_as_lz4)
{
	size_t sizes[] = {1024, 64u << 10, (64u << 10) + 1, 1u << 20};
	uint8_t *raw = xmalloc(1u << 20);
	size_t i;

	fill_text(raw, 1u << 20);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_round_trip(raw, sizes[i], PIFS_CODEC_LZ4);
	free(raw);
}

Test(frame, round_trips_incompressible_random_raw)
{
	size_t sizes[] = {1, 100, 64u << 10, 1u << 20};
	uint8_t *raw = xmalloc(1u << 20);
	size_t i;

	fill_random(raw, 1u << 20, 1);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_round_trip(raw, sizes[i], PIFS_CODEC_NONE);
	free(raw);
}

Test(frame, packs_an_empty_chunk)
{
	struct pifs_frame f;
	struct pifs_chunk_id empty = pifs_chunk_id_of(NULL, 0);
	uint8_t out[1];

	cr_assert_eq(pifs_frame_pack(&f, NULL, 0), 0);
	cr_assert_eq(f.hdr.codec, PIFS_CODEC_NONE);
	cr_assert_eq(f.hdr.raw_len, 0);
	cr_assert_eq(f.hdr.stored_len, 0);
	cr_assert_eq(f.len, PIFS_FRAME_HDR);
	cr_assert(pifs_chunk_id_eq(&f.hdr.id, &empty));
	cr_assert_eq(pifs_frame_unpack(f.data, f.len, out, 0), 0);
	cr_assert_eq(pifs_frame_verify(f.data, f.len, out, 0), 0);
	pifs_frame_release(&f);
}

Test(frame, round_trips_the_largest_chunk)
{
	uint8_t *raw = xmalloc(PIFS_FRAME_MAX_RAW);

	fill_text(raw, PIFS_FRAME_MAX_RAW);
	check_round_trip(raw, PIFS_FRAME_MAX_RAW, PIFS_CODEC_LZ4);
	free(raw);
}

Test(frame, refuses_a_chunk_over_the_maximum)
{
	struct pifs_frame f = {.data = NULL};
	uint8_t raw[16] = {0};

	/* The length is checked before the bytes are read. */
	cr_assert_eq(pifs_frame_pack(&f, raw, PIFS_FRAME_MAX_RAW + 1u), -EINVAL);
	cr_assert_null(f.data);
}

/* AddressSanitizer reserves terabytes of address space up front, so an
 * address space limit cannot be used to make malloc fail under it. */
#ifndef __SANITIZE_ADDRESS__
Test(frame, reports_running_out_of_memory)
{
	struct pifs_frame f = {.data = NULL};
	unsigned long pages = 0;
	struct rlimit lim;
	uint8_t *raw;
	FILE *statm;

	raw = xmalloc(PIFS_FRAME_MAX_RAW);
	memset(raw, 'a', PIFS_FRAME_MAX_RAW);
	statm = fopen("/proc/self/statm", "r");
	cr_assert_not_null(statm);
	cr_assert_eq(fscanf(statm, "%lu", &pages), 1);
	fclose(statm);
	/* Room for small allocations, not for another 64 MiB frame. */
	lim.rlim_cur = lim.rlim_max = pages * (rlim_t)sysconf(_SC_PAGESIZE) + (16u << 20);
	cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
	cr_assert_eq(pifs_frame_pack(&f, raw, PIFS_FRAME_MAX_RAW), -ENOMEM);
	cr_assert_null(f.data);
	free(raw);
}
#endif

Test(frame, writes_the_documented_header)
{
	uint8_t raw[300];
	struct pifs_frame f;
	XXH128_hash_t h;
	const uint8_t *p;
	uint64_t hi = 0, lo = 0;
	int i;

	fill_random(raw, sizeof(raw), 2);
	h = XXH3_128bits(raw, sizeof(raw));
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	p = f.data;
	cr_assert_eq(memcmp(p, "PIFC", 4), 0);
	cr_assert_eq(p[4], PIFS_FRAME_VERSION);
	cr_assert_eq(p[5], PIFS_CODEC_NONE);
	cr_assert_eq(p[6] | p[7], 0);
	cr_assert_eq(((uint32_t)p[8] << 24 | p[9] << 16 | p[10] << 8 | p[11]), sizeof(raw));
	cr_assert_eq(((uint32_t)p[12] << 24 | p[13] << 16 | p[14] << 8 | p[15]), sizeof(raw));
	for (i = 0; i < 8; i++) {
		hi = hi << 8 | p[16 + i];
		lo = lo << 8 | p[24 + i];
	}
	cr_assert_eq(hi, h.high64);
	cr_assert_eq(lo, h.low64);
	cr_assert_eq(f.hdr.id.hi, h.high64);
	cr_assert_eq(f.hdr.id.lo, h.low64);
	cr_assert_eq(memcmp(p + PIFS_FRAME_HDR, raw, sizeof(raw)), 0);
	pifs_frame_release(&f);
}

Test(frame, stores_known_compressed_formats_raw)
{
	static const struct {
		const char *name;
		size_t len;
		const char *magic;
	} media[] = {
	    {"JPEG", 3, "\xff\xd8\xff"},
	    {"PNG", 4, "\x89PNG"},
	    {"GIF", 4, "GIF8"},
	    {"WebP", 12, "RIFF\x10\0\0\0WEBP"},
	    {"MP4", 8, "\0\0\0\030ftyp"},
	    {"WebM", 4, "\x1a\x45\xdf\xa3"},
	    {"ZIP", 4, "PK\x03\x04"},
	    {"gzip", 2, "\x1f\x8b"},
	    {"xz", 6, "\xfd\x37\x7a\x58\x5a\x00"},
	    {"zstd", 4, "\x28\xb5\x2f\xfd"},
	    {"bzip2", 4, "BZh9"},
	};
	uint8_t raw[8192];
	struct pifs_frame f;
	size_t i;

	/* Zeros after the magic would compress to almost nothing: only the
	 * magic can make the codec choose raw. */
	for (i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
		memset(raw, 0, sizeof(raw));
		memcpy(raw, media[i].magic, media[i].len);
		cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
		cr_assert_eq(f.hdr.codec, PIFS_CODEC_NONE, "%s was compressed", media[i].name);
		pifs_frame_release(&f);
	}
}

Test(frame, compresses_lookalikes_of_compressed_formats)
{
	static const struct {
		const char *name;
		size_t len;
		const char *start;
	} lookalikes[] = {
	    {"WAV", 12, "RIFF\x10\0\0\0WAVE"},
	    {"text starting with BZh", 7, "BZhello"},
	    {"empty ZIP", 4, "PK\x05\x06"},
	    {"zeros", 0, ""},
	};
	uint8_t raw[8192];
	struct pifs_frame f;
	size_t i;

	for (i = 0; i < sizeof(lookalikes) / sizeof(lookalikes[0]); i++) {
		memset(raw, 0, sizeof(raw));
		memcpy(raw, lookalikes[i].start, lookalikes[i].len);
		cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
		cr_assert_eq(f.hdr.codec, PIFS_CODEC_LZ4, "%s was stored raw", lookalikes[i].name);
		pifs_frame_release(&f);
	}
}

Test(frame, stores_raw_when_the_first_64k_do_not_compress)
{
	size_t n = 1u << 20;
	uint8_t *raw = xmalloc(n);

	/* The rest would compress, but the probe is trusted for the whole. */
	memset(raw, 0, n);
	fill_random(raw, 64u << 10, 3);
	check_round_trip(raw, n, PIFS_CODEC_NONE);
	free(raw);
}

Test(frame, stores_raw_when_the_whole_saves_less_than_an_eighth)
{
	size_t n = 1u << 20;
	uint8_t *raw = xmalloc(n);

	/* The probe passes on the zeros; the random rest keeps the whole over
	 * seven eighths. */
	memset(raw, 0, n);
	fill_random(raw + (64u << 10), n - (64u << 10), 4);
	check_round_trip(raw, n, PIFS_CODEC_NONE);
	free(raw);
}

/* Flip every bit of the frame, one at a time. A flip in the header, or in a
 * raw payload, must be refused. An LZ4 payload can have a flip that decodes
 * to the same bytes (a match offset moved to an identical earlier copy):
 * such a frame is still the chunk, so it must be refused or return exactly
 * the original bytes, never other ones. */
static void check_every_bit_flip(const uint8_t *raw, size_t n, enum pifs_codec codec)
{
	struct pifs_frame f;
	uint8_t *copy, *out;
	size_t bit, same = 0;
	ssize_t rc;
	int vrc;

	/* A flipped raw length can name up to the maximum: give that much room
	 * so that -ERANGE cannot hide a missed check. */
	out = xmalloc(PIFS_FRAME_MAX_RAW);
	cr_assert_eq(pifs_frame_pack(&f, raw, n), 0);
	cr_assert_eq(f.hdr.codec, codec);
	copy = xmalloc(f.len);
	for (bit = 0; bit < f.len * 8; bit++) {
		memcpy(copy, f.data, f.len);
		copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		rc = pifs_frame_unpack(copy, f.len, out, PIFS_FRAME_MAX_RAW);
		vrc = pifs_frame_verify(copy, f.len, out, PIFS_FRAME_MAX_RAW);
		if (codec == PIFS_CODEC_LZ4 && bit >= PIFS_FRAME_HDR * 8 && rc == (ssize_t)n) {
			cr_assert_eq(memcmp(out, raw, n), 0, "bit %zu: wrong bytes accepted", bit);
			cr_assert_eq(vrc, 0, "bit %zu: unpack accepted, verify refused", bit);
			same++;
			continue;
		}
		cr_assert(rc == -EBADMSG || rc == -EPROTO, "bit %zu: unpack returned %zd", bit, rc);
		cr_assert(vrc == -EBADMSG || vrc == -EPROTO, "bit %zu: verify returned %d", bit,
			  vrc);
	}
	/* Equivalent encodings are rare: most flips must be caught. */
	cr_assert_lt(same, f.len * 8 / 100, "%zu of %zu flips went unnoticed", same, f.len * 8);
	free(copy);
	free(out);
	pifs_frame_release(&f);
}

Test(frame, never_accepts_wrong_bytes_after_a_flipped_bit_in_lz4)
{
	uint8_t raw[4096];

	fill_text(raw, sizeof(raw));
	check_every_bit_flip(raw, sizeof(raw), PIFS_CODEC_LZ4);
}

Test(frame, rejects_a_flipped_bit_in_a_raw_frame)
{
	uint8_t raw[1024];

	fill_random(raw, sizeof(raw), 5);
	check_every_bit_flip(raw, sizeof(raw), PIFS_CODEC_NONE);
}

Test(frame, rejects_a_wrong_length)
{
	uint8_t raw[4096], out[4096];
	struct pifs_frame_hdr h;
	struct pifs_frame f;
	uint8_t *longer;

	fill_text(raw, sizeof(raw));
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	longer = xmalloc(f.len + 1);
	memcpy(longer, f.data, f.len);
	longer[f.len] = 0;
	cr_assert_eq(pifs_frame_parse(f.data, f.len, &h), 0);
	cr_assert_eq(pifs_frame_parse(f.data, f.len - 1, &h), -EBADMSG);
	cr_assert_eq(pifs_frame_parse(longer, f.len + 1, &h), -EBADMSG);
	cr_assert_eq(pifs_frame_parse(f.data, PIFS_FRAME_HDR - 1, &h), -EBADMSG);
	cr_assert_eq(pifs_frame_parse(f.data, 0, &h), -EBADMSG);
	cr_assert_eq(pifs_frame_unpack(f.data, f.len - 1, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(pifs_frame_unpack(longer, f.len + 1, out, sizeof(out)), -EBADMSG);
	cr_assert_eq(pifs_frame_verify(f.data, f.len - 1, out, sizeof(out)), -EBADMSG);
	free(longer);
	pifs_frame_release(&f);
}

Test(frame, rejects_another_version)
{
	uint8_t raw[512], out[512];
	struct pifs_frame_hdr h;
	struct pifs_frame f;

	fill_text(raw, sizeof(raw));
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	f.data[4] = PIFS_FRAME_VERSION + 1;
	cr_assert_eq(pifs_frame_parse(f.data, f.len, &h), -EPROTO);
	cr_assert_eq(pifs_frame_unpack(f.data, f.len, out, sizeof(out)), -EPROTO);
	cr_assert_eq(pifs_frame_verify(f.data, f.len, out, sizeof(out)), -EPROTO);
	pifs_frame_release(&f);
}

Test(frame, rejects_an_unknown_codec_and_a_nonzero_reserved_field)
{
	uint8_t raw[512];
	struct pifs_frame_hdr h;
	struct pifs_frame f;

	fill_random(raw, sizeof(raw), 6);
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	f.data[5] = 2;
	cr_assert_eq(pifs_frame_parse(f.data, f.len, &h), -EBADMSG);
	f.data[5] = PIFS_CODEC_NONE;
	f.data[7] = 1;
	cr_assert_eq(pifs_frame_parse(f.data, f.len, &h), -EBADMSG);
	f.data[7] = 0;
	cr_assert_eq(pifs_frame_parse(f.data, f.len, &h), 0);
	pifs_frame_release(&f);
}

Test(frame, needs_room_for_the_raw_bytes)
{
	uint8_t raw[4096], out[4096];
	struct pifs_frame f;
	size_t i;

	for (i = 0; i < 2; i++) {
		if (i == 0)
			fill_text(raw, sizeof(raw));
		else
			fill_random(raw, sizeof(raw), 7);
		cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
		cr_assert_eq(pifs_frame_unpack(f.data, f.len, out, sizeof(raw) - 1), -ERANGE);
		cr_assert_eq(pifs_frame_verify(f.data, f.len, out, sizeof(raw) - 1), -ERANGE);
		cr_assert_eq(pifs_frame_unpack(f.data, f.len, out, sizeof(raw)),
			     (ssize_t)sizeof(raw));
		pifs_frame_release(&f);
	}
}

Test(frame, verify_catches_what_unpack_catches)
{
	uint8_t raw[4096], scratch[4096];
	struct pifs_frame f;

	fill_text(raw, sizeof(raw));
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	cr_assert_eq(pifs_frame_verify(f.data, f.len, scratch, sizeof(scratch)), 0);
	/* A wrong id with a sound payload: only the hash can tell. */
	f.data[31] ^= 0x80;
	cr_assert_eq(pifs_frame_verify(f.data, f.len, scratch, sizeof(scratch)), -EBADMSG);
	pifs_frame_release(&f);
}

Test(frame, gives_identical_bytes_one_id_and_one_frame)
{
	uint8_t a[2048], b[2048];
	struct pifs_frame fa, fb;
	struct pifs_chunk_id ia, ib;

	fill_text(a, sizeof(a));
	memcpy(b, a, sizeof(b));
	cr_assert_eq(pifs_frame_pack(&fa, a, sizeof(a)), 0);
	cr_assert_eq(pifs_frame_pack(&fb, b, sizeof(b)), 0);
	cr_assert(pifs_chunk_id_eq(&fa.hdr.id, &fb.hdr.id));
	cr_assert_eq(fa.len, fb.len);
	cr_assert_eq(memcmp(fa.data, fb.data, fa.len), 0);
	ia = pifs_chunk_id_of(a, sizeof(a));
	b[1000] ^= 1;
	ib = pifs_chunk_id_of(b, sizeof(b));
	cr_assert(pifs_chunk_id_eq(&ia, &fa.hdr.id));
	cr_assert_not(pifs_chunk_id_eq(&ia, &ib));
	pifs_frame_release(&fa);
	pifs_frame_release(&fb);
}

Test(frame, writes_and_parses_ids_as_hex)
{
	struct pifs_chunk_id id = {.hi = 0x0123456789abcdefull, .lo = 0xfedcba9876543210ull};
	struct pifs_chunk_id back = {0, 0};
	char hex[33];

	pifs_chunk_id_hex(&id, hex);
	cr_assert_str_eq(hex, "0123456789abcdeffedcba9876543210");
	cr_assert_eq(pifs_chunk_id_parse(hex, &back), 0);
	cr_assert(pifs_chunk_id_eq(&id, &back));
	cr_assert_eq(pifs_chunk_id_parse("0123456789ABCDEFFEDCBA9876543210", &back), 0);
	cr_assert(pifs_chunk_id_eq(&id, &back));
}

Test(frame, refuses_ids_that_are_not_32_hex_digits)
{
	struct pifs_chunk_id id = {.hi = 1, .lo = 2};

	cr_assert_eq(pifs_chunk_id_parse("0123456789abcdeffedcba987654321", &id), -EINVAL);
	cr_assert_eq(pifs_chunk_id_parse("0123456789abcdeffedcba98765432100", &id), -EINVAL);
	cr_assert_eq(pifs_chunk_id_parse("0123456789abcdeffedcba987654321g", &id), -EINVAL);
	cr_assert_eq(pifs_chunk_id_parse(" 123456789abcdeffedcba9876543210", &id), -EINVAL);
	cr_assert_eq(pifs_chunk_id_parse("", &id), -EINVAL);
	cr_assert_eq(id.hi, 1);
	cr_assert_eq(id.lo, 2);
}

Test(frame, release_is_null_safe_and_zeroes)
{
	struct pifs_frame f;
	uint8_t raw[64] = {1};

	pifs_frame_release(NULL);
	cr_assert_eq(pifs_frame_pack(&f, raw, sizeof(raw)), 0);
	pifs_frame_release(&f);
	cr_assert_null(f.data);
	cr_assert_eq(f.len, 0);
	pifs_frame_release(&f);
}

Test(frame, decode_gives_the_raw_bytes_of_the_chunk_asked_for_and_nothing_else)
{
	uint8_t *raw = xmalloc(100000), *got = NULL;
	struct pifs_frame f, g;
	struct pifs_chunk_id id;
	uint32_t len = 0;

	fill_text(raw, 100000);
	cr_assert_eq(pifs_frame_pack(&f, raw, 100000), 0);
	cr_assert_eq(pifs_frame_decode(f.data, f.len, &f.hdr.id, &got, &len), 0);
	cr_assert_eq(len, 100000);
	cr_assert_arr_eq(got, raw, len);
	free(got);

	fill_random(raw, 5000, 3);
	cr_assert_eq(pifs_frame_pack(&g, raw, 5000), 0);
	got = NULL;
	cr_assert_eq(pifs_frame_decode(g.data, g.len, &f.hdr.id, &got, &len), -EBADMSG,
		     "a sound frame of another chunk must not pass for the one asked for");
	cr_assert_null(got);
	id = g.hdr.id;
	((uint8_t *)g.data)[g.len - 1] ^= 0x10;
	cr_assert_eq(pifs_frame_decode(g.data, g.len, &id, &got, &len), -EBADMSG);
	cr_assert_null(got);
	cr_assert_eq(pifs_frame_decode(g.data, 10, &id, &got, &len), -EBADMSG);
	pifs_frame_release(&f);
	pifs_frame_release(&g);
	free(raw);
}
