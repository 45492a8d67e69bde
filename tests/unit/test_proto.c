/* test_proto.c - every message round-trips; malformed frames are refused. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

/* Fill every field of every message with values derived from a seed, so that
 * a codec that swaps, drops or truncates a field is caught. Lists get two
 * records; strings and blobs borrow static text. */
static const char text[] = "thumbnail-0042.jpg";
static struct pifs_buf lists[16];
static int nlists;

#define FILL_INT(T)                                                  \
	static void __attribute__((unused)) fill_##T(PIFS_CT_##T *v, uint64_t *seed) \
	{                                                            \
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull; \
		*v = (PIFS_CT_##T)(*seed >> 7);                      \
	}
FILL_INT(U8)
FILL_INT(U16)
FILL_INT(U32)
FILL_INT(U64)
FILL_INT(I32)
FILL_INT(I64)

static void fill_ID(struct pifs_chunk_id *id, uint64_t *seed)
{
	fill_U64(&id->hi, seed);
	fill_U64(&id->lo, seed);
}

static void fill_STR(struct pifs_str *s, uint64_t *seed)
{
	uint16_t n;

	fill_U16(&n, seed);
	s->p = text;
	s->len = (uint16_t)(n % sizeof(text));
}

static void fill_BLOB(struct pifs_blob *b, uint64_t *seed)
{
	uint16_t n;

	fill_U16(&n, seed);
	b->p = (const uint8_t *)text;
	b->len = n % sizeof(text);
}

#define MSG(NAME, code, kind, fields)
#define F(type, name) fill_##type(&r->name, seed);
#define ITEM(name, fields)                                                        \
	static void __attribute__((unused)) fill_##name(struct pifs_##name *r, uint64_t *seed) \
	{                                                                         \
		fields                                                            \
	}                                                                         \
	static void __attribute__((unused)) fill_L##name(struct pifs_list *l, uint64_t *seed) \
	{                                                                         \
		struct pifs_buf *b = &lists[nlists++];                            \
		struct pifs_##name rec;                                           \
		pifs_buf_init(b);                                                 \
		for (int i = 0; i < 2; i++) {                                     \
			memset(&rec, 0, sizeof(rec));                             \
			fill_##name(&rec, seed);                                  \
			cr_assert_eq(pifs_##name##_append(b, &rec), 0);           \
		}                                                                 \
		*l = pifs_list_of(b, 2);                                          \
	}
#include "proto.def"
#undef ITEM
#undef F
#undef MSG

static void free_lists(void)
{
	while (nlists > 0)
		pifs_buf_fini(&lists[--nlists]);
}

static const enum pifs_msg_type all_types[] = {
#define ITEM(name, fields)
#define MSG(NAME, code, kind, fields) PIFS_MSG_##NAME,
#include "proto.def"
#undef MSG
#undef ITEM
};
#define N_TYPES (sizeof(all_types) / sizeof(all_types[0]))

static void fill_msg(struct pifs_msg *m, enum pifs_msg_type type, uint64_t seed)
{
	pifs_msg_init(m, type);
	m->reqid = seed * 31 + 7;
	m->epoch = seed + 3;
	switch (type) {
#define ITEM(name, fields)
#define F(type, name) fill_##type(&r->name, &seed);
#define MSG(NAME, code, kind, fields)                        \
	case PIFS_MSG_##NAME: {                              \
		struct pifs_msg_##NAME *r = &m->u.NAME;      \
		fields break;                                \
	}
#include "proto.def"
#undef MSG
#undef F
#undef ITEM
	default:
		cr_assert_fail("unknown type %d", type);
	}
}

/* Encode, decode, encode again: the two encodings must be identical, which
 * checks every field's value and order without comparing structs by hand. */
Test(proto, every_message_round_trips)
{
	for (size_t i = 0; i < N_TYPES; i++) {
		struct pifs_buf a, b;
		struct pifs_msg m, d;

		pifs_buf_init(&a);
		pifs_buf_init(&b);
		fill_msg(&m, all_types[i], i + 1);
		cr_assert_eq(pifs_proto_encode(&m, &a), 0, "%s", pifs_proto_name(all_types[i]));
		cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), 0, "%s", pifs_proto_name(all_types[i]));
		cr_assert_eq(d.type, m.type);
		cr_assert_eq(d.reqid, m.reqid);
		cr_assert_eq(d.epoch, m.epoch);
		cr_assert_eq(pifs_proto_encode(&d, &b), 0);
		cr_assert_eq(a.len, b.len, "%s", pifs_proto_name(all_types[i]));
		cr_assert(memcmp(a.p, b.p, a.len) == 0, "%s", pifs_proto_name(all_types[i]));
		pifs_buf_fini(&a);
		pifs_buf_fini(&b);
		free_lists();
	}
}

Test(proto, a_chunk_put_piece_keeps_its_offset_and_total)
{
	struct pifs_msg m, d;
	struct pifs_buf a;

	pifs_buf_init(&a);
	pifs_msg_init(&m, PIFS_MSG_CHUNK_PUT);
	m.reqid = 7;
	m.u.CHUNK_PUT.flags = PIFS_PUT_SYNC;
	m.u.CHUNK_PUT.offset = 3u << 18;
	m.u.CHUNK_PUT.total = 0xfedcba98u;
	cr_assert_eq(pifs_proto_encode(&m, &a), 0);
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), 0);
	cr_assert_eq(d.u.CHUNK_PUT.offset, 3u << 18);
	cr_assert_eq(d.u.CHUNK_PUT.total, 0xfedcba98u);
	cr_assert_eq(d.u.CHUNK_PUT.flags, PIFS_PUT_SYNC);
	pifs_buf_fini(&a);
}

Test(proto, list_records_read_back)
{
	struct pifs_buf lb, enc;
	struct pifs_msg m, d;
	struct pifs_cursor c;
	struct pifs_chunkref r;
	uint32_t n = 0;

	pifs_buf_init(&lb);
	pifs_buf_init(&enc);
	for (uint64_t i = 0; i < 100; i++) {
		struct pifs_chunkref in = {.index = i, .id = {i, ~i}, .len = (uint32_t)i * 3};

		cr_assert_eq(pifs_chunkref_append(&lb, &in), 0);
	}
	pifs_msg_init(&m, PIFS_MSG_COMMIT);
	m.u.COMMIT.refs = pifs_list_of(&lb, 100);
	cr_assert_eq(pifs_proto_encode(&m, &enc), 0);
	cr_assert_eq(pifs_proto_decode(enc.p, enc.len, &d), 0);
	pifs_cursor_init(&c, &d.u.COMMIT.refs);
	while (pifs_chunkref_next(&c, &r) == 1) {
		cr_assert_eq(r.index, n);
		cr_assert_eq(r.id.lo, ~(uint64_t)n);
		cr_assert_eq(r.len, n * 3);
		n++;
	}
	cr_assert_eq(n, 100);
	pifs_buf_fini(&lb);
	pifs_buf_fini(&enc);
}

/* Every proper prefix of every valid message is refused, never read past. */
Test(proto, rejects_every_truncation)
{
	for (size_t i = 0; i < N_TYPES; i++) {
		struct pifs_buf a;
		struct pifs_msg m, d;

		pifs_buf_init(&a);
		fill_msg(&m, all_types[i], i + 11);
		cr_assert_eq(pifs_proto_encode(&m, &a), 0);
		for (size_t cut = 0; cut < a.len; cut++) {
			/* A copy of exactly @cut bytes, so that ASan sees any over-read. */
			uint8_t *p = malloc(cut ? cut : 1);

			memcpy(p, a.p, cut);
			cr_assert_eq(pifs_proto_decode(p, cut, &d), -EBADMSG, "%s cut at %zu",
				     pifs_proto_name(all_types[i]), cut);
			free(p);
		}
		pifs_buf_fini(&a);
		free_lists();
	}
}

Test(proto, rejects_trailing_bytes)
{
	struct pifs_buf a;
	struct pifs_msg m, d;

	pifs_buf_init(&a);
	fill_msg(&m, PIFS_MSG_LOOKUP, 5);
	cr_assert_eq(pifs_proto_encode(&m, &a), 0);
	cr_assert_eq(pifs_buf_append(&a, "x", 1), 0);
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EBADMSG);
	pifs_buf_fini(&a);
}

Test(proto, refuses_foreign_magic_and_other_versions)
{
	struct pifs_buf a;
	struct pifs_msg m, d;

	pifs_buf_init(&a);
	fill_msg(&m, PIFS_MSG_GETATTR, 9);
	cr_assert_eq(pifs_proto_encode(&m, &a), 0);
	a.p[2] = PIFS_PROTO_VERSION + 1;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EPROTO);
	a.p[2] = PIFS_PROTO_VERSION;
	a.p[0] ^= 0xff;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EPROTO);
	pifs_buf_fini(&a);
}

Test(proto, unknown_type_keeps_the_request_id)
{
	struct pifs_buf a;
	struct pifs_msg m, d;

	pifs_buf_init(&a);
	fill_msg(&m, PIFS_MSG_GETATTR, 9);
	cr_assert_eq(pifs_proto_encode(&m, &a), 0);
	a.p[4] = 0x7f;
	a.p[5] = 0x7f;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EOPNOTSUPP);
	cr_assert_eq(d.reqid, m.reqid);
	pifs_buf_fini(&a);
}

/* A list whose count promises more records than its bytes hold, or whose
 * byte length runs past the frame, is malformed. */
Test(proto, rejects_lying_list_lengths)
{
	struct pifs_buf lb, a;
	struct pifs_msg m, d;
	struct pifs_chunkid id = {{1, 2}};
	size_t off;

	pifs_buf_init(&lb);
	pifs_buf_init(&a);
	cr_assert_eq(pifs_chunkid_append(&lb, &id), 0);
	pifs_msg_init(&m, PIFS_MSG_CHUNK_SYNC);
	m.u.CHUNK_SYNC.ids = pifs_list_of(&lb, 1);
	cr_assert_eq(pifs_proto_encode(&m, &a), 0);
	off = PIFS_PROTO_HDR;	/* the list's count, then its length */
	a.p[off + 3] = 2;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EBADMSG);
	a.p[off + 3] = 1;
	a.p[off + 7] = 17;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EBADMSG);
	a.p[off + 7] = 16;
	a.p[off + 4] = 0xff;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), -EBADMSG);
	a.p[off + 4] = 0;
	cr_assert_eq(pifs_proto_decode(a.p, a.len, &d), 0);
	pifs_buf_fini(&lb);
	pifs_buf_fini(&a);
}

/* Random bit flips must give a clean error or a message, never a crash or an
 * over-read (ASan builds run this too). */
Test(proto, survives_random_corruption)
{
	uint64_t seed = 0x5eed;

	for (int round = 0; round < 2000; round++) {
		struct pifs_buf a;
		struct pifs_msg m, d;
		uint8_t *p;
		int flips;

		pifs_buf_init(&a);
		fill_msg(&m, all_types[(size_t)round % N_TYPES], (uint64_t)round);
		cr_assert_eq(pifs_proto_encode(&m, &a), 0);
		p = malloc(a.len);
		memcpy(p, a.p, a.len);
		for (flips = 0; flips < 3; flips++) {
			seed = seed * 6364136223846793005ull + 1;
			p[(seed >> 33) % a.len] ^= (uint8_t)(1u << ((seed >> 20) % 8));
		}
		int rc = pifs_proto_decode(p, a.len, &d);
		cr_assert(rc == 0 || rc == -EBADMSG || rc == -EPROTO || rc == -EOPNOTSUPP);
		free(p);
		pifs_buf_fini(&a);
		free_lists();
	}
}

Test(proto, mutations_take_the_leaders_time)
{
	struct pifs_msg m;

	pifs_msg_init(&m, PIFS_MSG_MKNOD);
	cr_assert_eq(pifs_proto_stamp(&m, 123456789), 0);
	cr_assert_eq(m.u.MKNOD.now, 123456789);
	pifs_msg_init(&m, PIFS_MSG_LOOKUP);
	cr_assert_eq(pifs_proto_stamp(&m, 1), -EINVAL);
	cr_assert_eq(pifs_proto_kind(PIFS_MSG_COMMIT), PIFS_KIND_MUT);
	cr_assert_eq(pifs_proto_kind(PIFS_MSG_CHUNK_PUT), PIFS_KIND_CHK);
	cr_assert_eq(pifs_proto_kind((enum pifs_msg_type)0x7777), -1);
	cr_assert_str_eq(pifs_proto_name(PIFS_MSG_RENAME), "RENAME");
}

Test(proto, format_names_the_message)
{
	struct pifs_msg m;
	char line[256];

	pifs_msg_init(&m, PIFS_MSG_LOOKUP);
	m.reqid = 42;
	m.u.LOOKUP.parent = 1;
	m.u.LOOKUP.name = pifs_str_of("a.jpg");
	pifs_proto_format(&m, line, sizeof(line));
	cr_assert_str_eq(line, "LOOKUP#42 parent=1 name=\"a.jpg\"");
}

Test(proto, unknown_type_does_not_encode)
{
	struct pifs_buf a;
	struct pifs_msg m;

	pifs_buf_init(&a);
	pifs_msg_init(&m, (enum pifs_msg_type)0x7777);
	cr_assert_eq(pifs_proto_encode(&m, &a), -EINVAL);
	cr_assert_eq(a.len, 0);
	pifs_buf_fini(&a);
}
