/* frame.c - a chunk as stored and sent: hash, compress when it pays, verify.
 *
 * The compression decision is made to be cheap on media, which is most of
 * what a photo or video library stores and which LZ4 cannot shrink: known
 * compressed formats are recognised by their first bytes and stored raw
 * without any LZ4 call, and any other chunk over 64 KiB is stored raw when
 * its first 64 KiB do not compress by an eighth. */
#include "frame.h"

#include <errno.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define PROBE_LEN (64u << 10)

static void put_be(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

struct pifs_chunk_id pifs_chunk_id_of(const void *raw, size_t len)
{
	XXH128_hash_t h = XXH3_128bits(raw, len);
	struct pifs_chunk_id id = {.hi = h.high64, .lo = h.low64};

	return id;
}

void pifs_chunk_id_hex(const struct pifs_chunk_id *id, char out[33])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	for (i = 0; i < 16; i++) {
		out[i] = digits[(id->hi >> (60 - 4 * i)) & 0xf];
		out[16 + i] = digits[(id->lo >> (60 - 4 * i)) & 0xf];
	}
	out[32] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pifs_chunk_id_parse(const char *hex, struct pifs_chunk_id *id)
{
	uint64_t half[2] = {0, 0};
	int i, d;

	for (i = 0; i < 32; i++) {
		d = hex_digit(hex[i]);
		if (d < 0)
			return -EINVAL;
		half[i / 16] = (half[i / 16] << 4) | (uint64_t)d;
	}
	if (hex[32] != '\0')
		return -EINVAL;
	id->hi = half[0];
	id->lo = half[1];
	return 0;
}

/* True when @p starts like a format that is already compressed. */
static bool is_compressed_media(const uint8_t *p, size_t n)
{
	static const struct {
		uint8_t off, len;
		const char *magic;
	} known[] = {
	    {0, 3, "\xff\xd8\xff"},		/* JPEG */
	    {0, 4, "\x89PNG"},			/* PNG */
	    {0, 4, "GIF8"},			/* GIF */
	    {4, 4, "ftyp"},			/* MP4, MOV, HEIC */
	    {0, 4, "\x1a\x45\xdf\xa3"},		/* Matroska, WebM */
	    {0, 4, "PK\x03\x04"},		/* ZIP, and so DOCX, EPUB, JAR */
	    {0, 2, "\x1f\x8b"},			/* gzip */
	    {0, 6, "\xfd\x37\x7a\x58\x5a\x00"}, /* xz */
	    {0, 4, "\x28\xb5\x2f\xfd"},		/* zstd */
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (n >= (size_t)known[i].off + known[i].len &&
		    memcmp(p + known[i].off, known[i].magic, known[i].len) == 0)
			return true;
	/* WebP is a RIFF container; RIFF alone also holds uncompressed WAV. */
	if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
		return true;
	/* bzip2 is "BZh" and a block size digit; the digit keeps text that
	 * happens to start with "BZh" compressible. */
	return n >= 4 && memcmp(p, "BZh", 3) == 0 && p[3] >= '1' && p[3] <= '9';
}

/* LZ4-compress @raw into @dst, which holds @raw_len bytes. Returns the
 * compressed length, or 0 when storing raw is the better choice. */
static uint32_t compress(const uint8_t *raw, uint32_t raw_len, uint8_t *dst)
{
	int n;

	if (raw_len == 0 || is_compressed_media(raw, raw_len))
		return 0;
	/* The probe writes into @dst, which is larger than the probe's cap. */
	if (raw_len > PROBE_LEN &&
	    LZ4_compress_default((const char *)raw, (char *)dst, (int)PROBE_LEN,
				 (int)(PROBE_LEN - PROBE_LEN / 8)) == 0)
		return 0;
	/* Capping the output makes LZ4 give up as soon as the result would not
	 * save an eighth, which also keeps it inside @dst. */
	n = LZ4_compress_default((const char *)raw, (char *)dst, (int)raw_len,
				 (int)(raw_len - raw_len / 8));
	return n > 0 ? (uint32_t)n : 0;
}

static void put_hdr(uint8_t *p, const struct pifs_frame_hdr *h)
{
	put_be(p, PIFS_FRAME_MAGIC, 4);
	p[4] = PIFS_FRAME_VERSION;
	p[5] = (uint8_t)h->codec;
	put_be(p + 6, 0, 2);
	put_be(p + 8, h->raw_len, 4);
	put_be(p + 12, h->stored_len, 4);
	put_be(p + 16, h->id.hi, 8);
	put_be(p + 24, h->id.lo, 8);
}

int pifs_frame_pack(struct pifs_frame *f, const void *raw, size_t raw_len)
{
	uint8_t *data, *shrunk;
	uint32_t n;

	if (raw_len > PIFS_FRAME_MAX_RAW)
		return -EINVAL;
	/* Room for the raw fallback: compression is only kept when smaller. */
	data = malloc(PIFS_FRAME_HDR + raw_len);
	if (!data)
		return -ENOMEM;
	f->hdr.id = pifs_chunk_id_of(raw, raw_len);
	f->hdr.raw_len = (uint32_t)raw_len;
	n = compress(raw, (uint32_t)raw_len, data + PIFS_FRAME_HDR);
	if (n > 0) {
		f->hdr.codec = PIFS_CODEC_LZ4;
		f->hdr.stored_len = n;
		/* A compressed chunk may be a quarter of its raw size: give the
		 * rest back, since frames wait in queues and caches. A failed
		 * shrink leaves the larger block, which is still valid. */
		shrunk = realloc(data, PIFS_FRAME_HDR + n);
		if (shrunk)
			data = shrunk;
	} else {
		f->hdr.codec = PIFS_CODEC_NONE;
		f->hdr.stored_len = (uint32_t)raw_len;
		if (raw_len)
			memcpy(data + PIFS_FRAME_HDR, raw, raw_len);
	}
	put_hdr(data, &f->hdr);
	f->data = data;
	f->len = PIFS_FRAME_HDR + f->hdr.stored_len;
	return 0;
}

int pifs_frame_parse(const void *buf, size_t len, struct pifs_frame_hdr *h)
{
	const uint8_t *p = buf;
	uint32_t raw_len, stored_len;

	if (len < PIFS_FRAME_HDR || get_be(p, 4) != PIFS_FRAME_MAGIC)
		return -EBADMSG;
	if (p[4] != PIFS_FRAME_VERSION)
		return -EPROTO;
	if (get_be(p + 6, 2) != 0)
		return -EBADMSG;
	raw_len = (uint32_t)get_be(p + 8, 4);
	stored_len = (uint32_t)get_be(p + 12, 4);
	if (raw_len > PIFS_FRAME_MAX_RAW || len - PIFS_FRAME_HDR != stored_len)
		return -EBADMSG;
	switch (p[5]) {
	case PIFS_CODEC_NONE:
		if (stored_len != raw_len)
			return -EBADMSG;
		h->codec = PIFS_CODEC_NONE;
		break;
	case PIFS_CODEC_LZ4:
		if (stored_len == 0 || stored_len > (uint32_t)LZ4_compressBound((int)raw_len))
			return -EBADMSG;
		h->codec = PIFS_CODEC_LZ4;
		break;
	default:
		return -EBADMSG;
	}
	h->raw_len = raw_len;
	h->stored_len = stored_len;
	h->id.hi = get_be(p + 16, 8);
	h->id.lo = get_be(p + 24, 8);
	return 0;
}

/* Check the parsed frame @h whose payload is @payload; an LZ4 payload is
 * decoded into @out (@cap bytes, at least @h->raw_len). */
static int check(const struct pifs_frame_hdr *h, const uint8_t *payload, void *out)
{
	struct pifs_chunk_id id;
	const void *raw = payload;
	int n;

	if (h->codec == PIFS_CODEC_LZ4) {
		/* A capacity of exactly raw_len makes a payload that would
		 * decode to more fail instead of writing past it. */
		n = LZ4_decompress_safe((const char *)payload, out, (int)h->stored_len,
					(int)h->raw_len);
		if (n < 0 || (uint32_t)n != h->raw_len)
			return -EBADMSG;
		raw = out;
	}
	id = pifs_chunk_id_of(raw, h->raw_len);
	return pifs_chunk_id_eq(&id, &h->id) ? 0 : -EBADMSG;
}

ssize_t pifs_frame_unpack(const void *buf, size_t len, void *out, size_t cap)
{
	const uint8_t *payload = (const uint8_t *)buf + PIFS_FRAME_HDR;
	struct pifs_frame_hdr h;
	int rc;

	rc = pifs_frame_parse(buf, len, &h);
	if (rc < 0)
		return rc;
	if (cap < h.raw_len)
		return -ERANGE;
	rc = check(&h, payload, out);
	if (rc < 0)
		return rc;
	if (h.codec == PIFS_CODEC_NONE && h.raw_len)
		memcpy(out, payload, h.raw_len);
	return (ssize_t)h.raw_len;
}

int pifs_frame_verify(const void *buf, size_t len, void *scratch, size_t cap)
{
	struct pifs_frame_hdr h;
	int rc;

	rc = pifs_frame_parse(buf, len, &h);
	if (rc < 0)
		return rc;
	/* Refused even for a raw frame, which needs no scratch, so that a
	 * caller with too small a buffer finds out on the first frame. */
	if (cap < h.raw_len)
		return -ERANGE;
	return check(&h, (const uint8_t *)buf + PIFS_FRAME_HDR, scratch);
}

void pifs_frame_release(struct pifs_frame *f)
{
	if (!f)
		return;
	free(f->data);
	memset(f, 0, sizeof(*f));
}

int pifs_frame_decode(const void *buf, size_t len, const struct pifs_chunk_id *id, uint8_t **raw,
		      uint32_t *raw_len)
{
	struct pifs_frame_hdr h;
	uint8_t *out;
	ssize_t got;
	int rc;

	rc = pifs_frame_parse(buf, len, &h);
	if (rc < 0)
		return rc;
	if (!pifs_chunk_id_eq(&h.id, id))
		return -EBADMSG;
	out = malloc(h.raw_len ? h.raw_len : 1);
	if (!out)
		return -ENOMEM;
	got = pifs_frame_unpack(buf, len, out, h.raw_len);
	if (got < 0) {
		free(out);
		return (int)got;
	}
	*raw = out;
	*raw_len = (uint32_t)got;
	return 0;
}
