/* frame.h - a chunk as stored and sent: a 32-byte header and the payload.
 *
 * Header, big-endian:
 *   u32 magic "PIFC" | u8 version | u8 codec | u16 zero |
 *   u32 raw length | u32 stored length | u64 id.hi | u64 id.lo
 * then @stored length bytes of payload in @codec. The same bytes are the file
 * a storage daemon keeps and the payload frame of CHUNK_PUT and R_CHUNK, so a
 * daemon stores and serves a frame without re-encoding it.
 *
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_FRAME_H
#define PIFS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PIFS_FRAME_MAGIC 0x50494643u
#define PIFS_FRAME_VERSION 1
#define PIFS_FRAME_HDR 32

/* The largest chunk a frame can carry. */
#define PIFS_FRAME_MAX_RAW (64u << 20)

enum pifs_codec { PIFS_CODEC_NONE = 0, PIFS_CODEC_LZ4 = 1 };

struct pifs_chunk_id {
	uint64_t hi, lo; /* XXH3-128 of the raw bytes */
};

/* A decoded frame header. */
struct pifs_frame_hdr {
	struct pifs_chunk_id id;
	enum pifs_codec codec;
	uint32_t raw_len;
	uint32_t stored_len;
};

/* An encoded frame: header + payload in @data. */
struct pifs_frame {
	struct pifs_frame_hdr hdr;
	uint8_t *data; /* owned (malloc); @len = PIFS_FRAME_HDR + stored_len */
	size_t len;
};

/* The id of @len raw bytes at @raw (borrowed). */
struct pifs_chunk_id pifs_chunk_id_of(const void *raw, size_t len);

static inline bool pifs_chunk_id_eq(const struct pifs_chunk_id *a, const struct pifs_chunk_id *b)
{
	return a->hi == b->hi && a->lo == b->lo;
}

static inline bool pifs_chunk_id_is_zero(const struct pifs_chunk_id *a)
{
	return a->hi == 0 && a->lo == 0;
}

/* Write @id as 32 lowercase hex digits and a NUL into @out. */
void pifs_chunk_id_hex(const struct pifs_chunk_id *id, char out[33]);

/* Parse 32 hex digits. Returns 0 or -EINVAL. */
int pifs_chunk_id_parse(const char *hex, struct pifs_chunk_id *id /* OUT */);

/* Hash @raw (borrowed, @raw_len bytes) and encode it into @f (OUT; the caller
 * frees with pifs_frame_release). LZ4 is kept only when it saves at least an
 * eighth; known compressed formats and data whose first 64 KiB do not shrink
 * are stored raw without trying the rest. Returns 0, -EINVAL (@raw_len over
 * PIFS_FRAME_MAX_RAW) or -ENOMEM. */
int pifs_frame_pack(struct pifs_frame *f, const void *raw, size_t raw_len);

/* Parse and check the header of the encoded frame at @buf (@len bytes,
 * borrowed): magic, version, codec, and that @len is exactly header + stored
 * length. Returns 0, -EPROTO (another version) or -EBADMSG. */
int pifs_frame_parse(const void *buf, size_t len, struct pifs_frame_hdr *h /* OUT */);

/* Decode the frame at @buf (@len bytes, borrowed) into @out (@cap bytes) and
 * check that the raw bytes hash to the frame's id. Returns the raw length,
 * -ERANGE if @cap is too small, -EPROTO or -EBADMSG. */
ssize_t pifs_frame_unpack(const void *buf, size_t len, void *out, size_t cap);

/* pifs_frame_unpack into a new buffer: on success *@raw (malloc'd; the
 * caller frees it) holds the *@raw_len raw bytes of chunk @id. Returns 0,
 * -EBADMSG (also for a sound frame of another chunk), -EPROTO or -ENOMEM. */
int pifs_frame_decode(const void *buf, size_t len, const struct pifs_chunk_id *id,
		      uint8_t **raw /* OUT */, uint32_t *raw_len /* OUT */);

/* Check the frame at @buf fully (as unpack) without keeping the raw bytes;
 * @scratch must hold PIFS_FRAME_MAX_RAW bytes or the frame's raw length.
 * Returns 0, -ERANGE, -EPROTO or -EBADMSG. */
int pifs_frame_verify(const void *buf, size_t len, void *scratch, size_t cap);

/* Free @f->data and zero @f. NULL-safe. */
void pifs_frame_release(struct pifs_frame *f);

#endif
