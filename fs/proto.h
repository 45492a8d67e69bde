/* proto.h - the pifs wire protocol: every message, its struct, its codec.
 *
 * The messages are listed once, in proto.def; this header and proto.c expand
 * that list. A message travels as one ZeroMQ frame (the envelope and the
 * fields) optionally followed by one payload frame (a chunk frame, see
 * frame.h) that the codec never copies.
 *
 * Envelope, big-endian:
 *   u16 magic 0x5046 ("PF") | u8 version | u8 flags | u16 type | u16 zero |
 *   u64 request id | u64 map epoch of the sender
 * then, with PIFS_MSG_ONCE in flags, the request's session:
 *   u64 client | u64 seq | u64 acked
 * then the fields in the order proto.def gives them.
 *
 * A session makes a metadata mutation apply exactly once however often it is
 * sent (a caller retries at the next leader after a failover, not knowing
 * whether the first try was applied): client is a random non-zero id of the
 * caller, seq numbers its mutations from 1 (a retry keeps its number), and
 * acked is the lowest number whose reply it still waits for, so the state
 * machine forgets the replies below it (fs/meta.h).
 *
 * Decoding never allocates: strings, blobs and lists in a decoded message
 * borrow the buffer they were decoded from, which must outlive them.
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_PROTO_H
#define PIFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"

#define PIFS_PROTO_MAGIC 0x5046
#define PIFS_PROTO_VERSION 1
#define PIFS_PROTO_HDR 24

/* Envelope flags. */
#define PIFS_MSG_ONCE 0x1	/* a session follows the envelope */
#define PIFS_MSG_FLAGS PIFS_MSG_ONCE

/* The longest message frame we accept, payload frames aside. */
#define PIFS_PROTO_MAX_MSG (8u << 20)

/* Node flags in the cluster map and in node records. */
#define PIFS_NODE_IN 0x1	/* placement counts it */
#define PIFS_NODE_UP 0x2	/* it answered its last heartbeat in time */
#define PIFS_NODE_META 0x4	/* a metadata voter */
#define PIFS_NODE_DRAIN 0x8	/* being emptied */
#define PIFS_NODE_NEW 0x10	/* joined by itself, waiting to be admitted */

/* WORK_START flags. */
#define PIFS_WORK_SCRUB 0x0
#define PIFS_WORK_HEAL 0x1
#define PIFS_WORK_GC 0x2
#define PIFS_WORK_DRYRUN 0x4	/* with GC: count what could go, delete nothing */

/* RAFT_APPEND flags. */
#define PIFS_RAFT_SYNC 0x1	/* make the entries durable (fsync) before answering */

/* CHUNK_PUT flags. */
#define PIFS_PUT_SYNC 0x1	/* fsync the chunk file before acknowledging */
/* A CHUNK_PUT may carry its frame in pieces of at most this many bytes
 * (offset and total say where each goes; total 0 is the whole frame in one
 * message), so that each node passes a piece on as soon as it has it. */
#define PIFS_PUT_PIECE (256u << 10)

/* SETATTR valid bits. */
#define PIFS_SET_MODE 0x01
#define PIFS_SET_UID 0x02
#define PIFS_SET_GID 0x04
#define PIFS_SET_SIZE 0x08
#define PIFS_SET_ATIME 0x10
#define PIFS_SET_MTIME 0x20
#define PIFS_SET_CTIME 0x40
#define PIFS_SET_ATIME_NOW 0x80	/* use the entry's now */
#define PIFS_SET_MTIME_NOW 0x100

/* A borrowed string, not NUL-terminated. */
struct pifs_str {
	const char *p;
	uint16_t len;
};

/* Borrowed bytes. */
struct pifs_blob {
	const uint8_t *p;
	uint32_t len;
};

/* A borrowed list of @count encoded records in @len bytes. */
struct pifs_list {
	const uint8_t *p;
	uint32_t len;
	uint32_t count;
};

/* A read position in a list. */
struct pifs_cursor {
	const uint8_t *p, *end;
};

enum pifs_msg_kind {
	PIFS_KIND_CHK,
	PIFS_KIND_MUT,
	PIFS_KIND_QRY,
	PIFS_KIND_ADM,
	PIFS_KIND_REP,
	PIFS_KIND_RFT,
};

#define PIFS_CT_U8 uint8_t
#define PIFS_CT_U16 uint16_t
#define PIFS_CT_U32 uint32_t
#define PIFS_CT_U64 uint64_t
#define PIFS_CT_I32 int32_t
#define PIFS_CT_I64 int64_t
#define PIFS_CT_ID struct pifs_chunk_id
#define PIFS_CT_STR struct pifs_str
#define PIFS_CT_BLOB struct pifs_blob
#define PIFS_CT_attr struct pifs_attr
#define PIFS_CT_work struct pifs_work
#define PIFS_CT_Ldirent struct pifs_list
#define PIFS_CT_Lchunkref struct pifs_list
#define PIFS_CT_Lchunkid struct pifs_list
#define PIFS_CT_Lnodeid struct pifs_list
#define PIFS_CT_Lnode struct pifs_list
#define PIFS_CT_Lnodestat struct pifs_list
#define PIFS_CT_Lmove struct pifs_list
#define PIFS_CT_Lraftent struct pifs_list
#define PIFS_CT_Lvoter struct pifs_list

/* The records: struct pifs_attr, struct pifs_dirent, ... */
#define F(type, name) PIFS_CT_##type name;
#define ITEM(name, fields) struct pifs_##name { fields };
#define MSG(NAME, code, kind, fields)
#include "proto.def"
#undef MSG
#undef ITEM

/* The messages: struct pifs_msg_CHUNK_PUT, ... */
#define ITEM(name, fields)
#define MSG(NAME, code, kind, fields) struct pifs_msg_##NAME { fields };
#include "proto.def"
#undef MSG
#undef ITEM
#undef F

enum pifs_msg_type {
	PIFS_MSG_NONE = 0,
#define ITEM(name, fields)
#define MSG(NAME, code, kind, fields) PIFS_MSG_##NAME = code,
#include "proto.def"
#undef MSG
#undef ITEM
};

struct pifs_msg {
	enum pifs_msg_type type;
	uint8_t flags;		/* PIFS_MSG_* */
	uint64_t reqid;
	uint64_t epoch;
	struct pifs_session {
		uint64_t client, seq, acked;
	} once;			/* with PIFS_MSG_ONCE */
	union {
#define ITEM(name, fields)
#define MSG(NAME, code, kind, fields) struct pifs_msg_##NAME NAME;
#include "proto.def"
#undef MSG
#undef ITEM
	} u;
};

/* Zero @m and set its type. */
void pifs_msg_init(struct pifs_msg *m, enum pifs_msg_type type);

/* Append the encoding of @m (borrowed) to @out. Returns 0, -EINVAL for an
 * unknown type or a field too long for its length prefix, or -ENOMEM. */
int pifs_proto_encode(const struct pifs_msg *m, struct pifs_buf *out);

/* Decode one message frame of @len bytes at @buf into @m (OUT; it borrows
 * @buf). Returns 0; -EPROTO for a foreign magic or another protocol version;
 * -EOPNOTSUPP for a type this build does not know (m->type and m->reqid are
 * still set, so the caller can answer); -EBADMSG for a short frame, a length
 * past the end, a malformed list or trailing bytes. */
int pifs_proto_decode(const void *buf, size_t len, struct pifs_msg *m);

/* "CHUNK_PUT", or "?" for an unknown type. */
const char *pifs_proto_name(enum pifs_msg_type type);

/* The kind of @type, or -1 for an unknown type. */
int pifs_proto_kind(enum pifs_msg_type type);

/* Set the "now" field of a mutation. Returns 0, or -EINVAL for another kind. */
int pifs_proto_stamp(struct pifs_msg *m, int64_t now);
/* The "now" field of a mutation; 0 for another kind. */
int64_t pifs_proto_now(const struct pifs_msg *m);

/* Write a one-line description of @m into @out (@cap bytes, always
 * NUL-terminated). Returns the length it wanted, as snprintf. */
int pifs_proto_format(const struct pifs_msg *m, char *out, size_t cap);

/* A string of @s for a field; @s is borrowed and must be NUL-terminated. */
struct pifs_str pifs_str_of(const char *s);

/* Copy @s into @out (@cap bytes, NUL-terminated). Returns 0 or -ENAMETOOLONG. */
int pifs_str_copy(struct pifs_str s, char *out, size_t cap);

bool pifs_str_eq(struct pifs_str s, const char *c);

/* A list view of @count records encoded in @b (borrowed). */
struct pifs_list pifs_list_of(const struct pifs_buf *b, uint32_t count);

void pifs_cursor_init(struct pifs_cursor *c, const struct pifs_list *l);

/* For each record type: pifs_<item>_append() encodes @r at the end of @b
 * (0 or -ENOMEM/-EINVAL), pifs_<item>_next() reads the next record at @c
 * into @r (1, 0 at the end of the list, or -EBADMSG). Strings in @r borrow
 * the list's buffer. */
#define F(type, name)
#define MSG(NAME, code, kind, fields)
#define ITEM(name, fields)                                                        \
	int pifs_##name##_append(struct pifs_buf *b, const struct pifs_##name *r); \
	int pifs_##name##_next(struct pifs_cursor *c, struct pifs_##name *r);
#include "proto.def"
#undef MSG
#undef ITEM
#undef F

#endif
