/* proto.c - the codec of every message, expanded from proto.def.
 *
 * Each field type T has put_T (append to a buffer) and get_T (read from a
 * bounds-checked reader); records and messages are sequences of those calls
 * generated from the one list. A reader never looks past its end: every get
 * checks the remaining length first and fails with -EBADMSG. */
#include "proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNUSED __attribute__((unused))

struct rd {
	const uint8_t *p, *end;
};

static int put_be(struct pifs_buf *b, uint64_t v, unsigned n)
{
	uint8_t tmp[8];
	unsigned i;

	for (i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return pifs_buf_append(b, tmp, n);
}

static int get_be(struct rd *r, uint64_t *v, unsigned n)
{
	uint64_t x = 0;
	unsigned i;

	if ((size_t)(r->end - r->p) < n)
		return -EBADMSG;
	for (i = 0; i < n; i++)
		x = (x << 8) | r->p[i];
	r->p += n;
	*v = x;
	return 0;
}

#define INT_CODEC(T, ctype, n)                                        \
	static UNUSED int put_##T(struct pifs_buf *b, const ctype *v)      \
	{                                                              \
		return put_be(b, (uint64_t)*v, n);                     \
	}                                                              \
	static UNUSED int get_##T(struct rd *r, ctype *v)                  \
	{                                                              \
		uint64_t x;                                            \
		int rc = get_be(r, &x, n);                             \
		if (rc == 0)                                           \
			*v = (ctype)x;                                 \
		return rc;                                             \
	}

INT_CODEC(U8, uint8_t, 1)
INT_CODEC(U16, uint16_t, 2)
INT_CODEC(U32, uint32_t, 4)
INT_CODEC(U64, uint64_t, 8)
INT_CODEC(I32, int32_t, 4)
INT_CODEC(I64, int64_t, 8)

static int put_ID(struct pifs_buf *b, const struct pifs_chunk_id *id)
{
	int rc = put_be(b, id->hi, 8);

	return rc < 0 ? rc : put_be(b, id->lo, 8);
}

static int get_ID(struct rd *r, struct pifs_chunk_id *id)
{
	int rc = get_U64(r, &id->hi);

	return rc < 0 ? rc : get_U64(r, &id->lo);
}

static int put_STR(struct pifs_buf *b, const struct pifs_str *s)
{
	int rc = put_be(b, s->len, 2);

	return rc < 0 ? rc : pifs_buf_append(b, s->p, s->len);
}

static int get_STR(struct rd *r, struct pifs_str *s)
{
	int rc = get_U16(r, &s->len);

	if (rc < 0)
		return rc;
	if ((size_t)(r->end - r->p) < s->len)
		return -EBADMSG;
	s->p = (const char *)r->p;
	r->p += s->len;
	return 0;
}

static int put_BLOB(struct pifs_buf *b, const struct pifs_blob *s)
{
	int rc = put_be(b, s->len, 4);

	return rc < 0 ? rc : pifs_buf_append(b, s->p, s->len);
}

static int get_BLOB(struct rd *r, struct pifs_blob *s)
{
	int rc = get_U32(r, &s->len);

	if (rc < 0)
		return rc;
	if ((size_t)(r->end - r->p) < s->len)
		return -EBADMSG;
	s->p = r->p;
	r->p += s->len;
	return 0;
}

static int put_list(struct pifs_buf *b, const struct pifs_list *l)
{
	int rc = put_be(b, l->count, 4);

	if (rc == 0)
		rc = put_be(b, l->len, 4);
	return rc < 0 ? rc : pifs_buf_append(b, l->p, l->len);
}

/* Read a list's bounds; the caller then checks every record in them. */
static int get_list(struct rd *r, struct pifs_list *l)
{
	int rc = get_U32(r, &l->count);

	if (rc == 0)
		rc = get_U32(r, &l->len);
	if (rc < 0)
		return rc;
	if ((size_t)(r->end - r->p) < l->len)
		return -EBADMSG;
	/* A record takes at least one byte: a count past the length is a lie
	 * that would make a reader loop for nothing. */
	if (l->count > l->len)
		return -EBADMSG;
	l->p = r->p;
	r->p += l->len;
	return 0;
}

/* Records: get_item_<name>, pifs_<name>_append/_next, and the list codecs
 * put_L<name>/get_L<name> that check every record of a list on decode. */
#define MSG(NAME, code, kind, fields)
#define F(type, name)                              \
	if ((rc = get_##type(r, &out->name)) < 0) \
		return rc;
#define ITEM(name, fields)                                                \
	static int get_item_##name(struct rd *r, struct pifs_##name *out) \
	{                                                                 \
		int rc;                                                   \
		fields return 0;                                          \
	}                                                                 \
	static UNUSED int get_##name(struct rd *r, struct pifs_##name *out) \
	{                                                                 \
		return get_item_##name(r, out);                           \
	}
#include "proto.def"
#undef ITEM
#undef F

#define F(type, name)                              \
	if ((rc = put_##type(b, &in->name)) < 0) \
		return rc;
#define ITEM(name, fields)                                                                \
	int pifs_##name##_append(struct pifs_buf *b, const struct pifs_##name *in)        \
	{                                                                                 \
		int rc;                                                                   \
		fields return 0;                                                          \
	}                                                                                 \
	static UNUSED int put_##name(struct pifs_buf *b, const struct pifs_##name *in)    \
	{                                                                                 \
		return pifs_##name##_append(b, in);                                       \
	}                                                                                 \
	int pifs_##name##_next(struct pifs_cursor *c, struct pifs_##name *out)            \
	{                                                                                 \
		struct rd r = {c->p, c->end};                                             \
		if (c->p >= c->end)                                                       \
			return 0;                                                         \
		if (get_item_##name(&r, out) < 0)                                         \
			return -EBADMSG;                                                  \
		c->p = r.p;                                                               \
		return 1;                                                                 \
	}                                                                                 \
	static UNUSED int put_L##name(struct pifs_buf *b, const struct pifs_list *l)      \
	{                                                                                 \
		return put_list(b, l);                                                    \
	}                                                                                 \
	static UNUSED int get_L##name(struct rd *r, struct pifs_list *l)                  \
	{                                                                                 \
		struct rd in;                                                             \
		struct pifs_##name tmp;                                                   \
		uint32_t i;                                                               \
		int rc = get_list(r, l);                                                  \
		if (rc < 0)                                                               \
			return rc;                                                        \
		in.p = l->p;                                                              \
		in.end = l->p + l->len;                                                   \
		for (i = 0; i < l->count; i++)                                            \
			if ((rc = get_item_##name(&in, &tmp)) < 0)                        \
				return rc;                                                \
		return in.p == in.end ? 0 : -EBADMSG;                                     \
	}
#include "proto.def"
#undef ITEM
#undef F
#undef MSG

#define ITEM(name, fields)

void pifs_msg_init(struct pifs_msg *m, enum pifs_msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

const char *pifs_proto_name(enum pifs_msg_type type)
{
	switch (type) {
#define MSG(NAME, code, kind, fields) \
	case PIFS_MSG_##NAME:          \
		return #NAME;
#include "proto.def"
#undef MSG
	default:
		return "?";
	}
}

int pifs_proto_kind(enum pifs_msg_type type)
{
	switch (type) {
#define MSG(NAME, code, kind, fields) \
	case PIFS_MSG_##NAME:          \
		return PIFS_KIND_##kind;
#include "proto.def"
#undef MSG
	default:
		return -1;
	}
}

#define STAMP_CHK(NAME)
#define STAMP_QRY(NAME)
#define STAMP_ADM(NAME)
#define STAMP_REP(NAME)
#define STAMP_RFT(NAME)
#define STAMP_MUT(NAME)              \
	case PIFS_MSG_##NAME:        \
		m->u.NAME.now = now; \
		return 0;

int pifs_proto_stamp(struct pifs_msg *m, int64_t now)
{
	switch (m->type) {
#define MSG(NAME, code, kind, fields) STAMP_##kind(NAME)
#include "proto.def"
#undef MSG
	default:
		return -EINVAL;
	}
}

#define NOW_CHK(NAME)
#define NOW_QRY(NAME)
#define NOW_ADM(NAME)
#define NOW_REP(NAME)
#define NOW_RFT(NAME)
#define NOW_MUT(NAME)         \
	case PIFS_MSG_##NAME: \
		return m->u.NAME.now;

int64_t pifs_proto_now(const struct pifs_msg *m)
{
	switch (m->type) {
#define MSG(NAME, code, kind, fields) NOW_##kind(NAME)
#include "proto.def"
#undef MSG
	default:
		return 0;
	}
}

int pifs_proto_encode(const struct pifs_msg *m, struct pifs_buf *out)
{
	size_t start = out->len;
	int rc;

	if (pifs_proto_kind(m->type) < 0)
		return -EINVAL;
	if ((rc = put_be(out, PIFS_PROTO_MAGIC, 2)) < 0 ||
	    (rc = put_be(out, PIFS_PROTO_VERSION, 1)) < 0 || (rc = put_be(out, m->flags, 1)) < 0 ||
	    (rc = put_be(out, (uint64_t)m->type, 2)) < 0 || (rc = put_be(out, 0, 2)) < 0 ||
	    (rc = put_be(out, m->reqid, 8)) < 0 || (rc = put_be(out, m->epoch, 8)) < 0)
		goto fail;
	if ((m->flags & ~PIFS_MSG_FLAGS) != 0) {
		rc = -EINVAL;
		goto fail;
	}
	if ((m->flags & PIFS_MSG_ONCE) &&
	    ((rc = put_be(out, m->once.client, 8)) < 0 || (rc = put_be(out, m->once.seq, 8)) < 0 ||
	     (rc = put_be(out, m->once.acked, 8)) < 0))
		goto fail;

	switch (m->type) {
#define F(type, name)                             \
	if ((rc = put_##type(out, &r->name)) < 0) \
		goto fail;
#define MSG(NAME, code, kind, fields)                               \
	case PIFS_MSG_##NAME: {                                     \
		const struct pifs_msg_##NAME *r = &m->u.NAME;       \
		fields break;                                       \
	}
#include "proto.def"
#undef MSG
#undef F
	default:
		rc = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	out->len = start;
	return rc;
}

int pifs_proto_decode(const void *buf, size_t len, struct pifs_msg *m)
{
	struct rd rd = {buf, (const uint8_t *)buf + len}, *r = &rd;
	uint16_t magic = 0, type = 0, zero = 0;
	uint8_t version = 0;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len < PIFS_PROTO_HDR)
		return -EBADMSG;
	get_U16(r, &magic);
	get_U8(r, &version);
	if (magic != PIFS_PROTO_MAGIC || version != PIFS_PROTO_VERSION)
		return -EPROTO;
	get_U8(r, &m->flags);
	get_U16(r, &type);
	get_U16(r, &zero);
	get_U64(r, &m->reqid);
	get_U64(r, &m->epoch);
	m->type = (enum pifs_msg_type)type;
	if (zero != 0 || (m->flags & ~PIFS_MSG_FLAGS) != 0)
		return -EBADMSG;
	if (m->flags & PIFS_MSG_ONCE) {
		if (rd.end - rd.p < 24)
			return -EBADMSG;
		get_U64(r, &m->once.client);
		get_U64(r, &m->once.seq);
		get_U64(r, &m->once.acked);
	}

	switch (m->type) {
#define F(type, name)                                 \
	if ((rc = get_##type(r, &out->name)) < 0)     \
		return rc;
#define MSG(NAME, code, kind, fields)                   \
	case PIFS_MSG_##NAME: {                         \
		struct pifs_msg_##NAME *out = &m->u.NAME; \
		fields break;                           \
	}
#include "proto.def"
#undef MSG
#undef F
	default:
		return -EOPNOTSUPP;
	}
	return rd.p == rd.end ? 0 : -EBADMSG;
}

/* The printer: one "name=value" per field, lists and blobs by size. */
struct fmt {
	char *p;
	size_t cap;
	int len;
};

static void fmt_add(struct fmt *f, const char *fmtstr, ...) __attribute__((format(printf, 2, 3)));

static void fmt_add(struct fmt *f, const char *fmtstr, ...)
{
	size_t used = (size_t)f->len < f->cap ? (size_t)f->len : f->cap;
	va_list ap;
	int n;

	va_start(ap, fmtstr);
	n = vsnprintf(f->p + used, f->cap - used, fmtstr, ap);
	va_end(ap);
	if (n > 0)
		f->len += n;
}

#define FMT_INT(T, pri)                                                       \
	static UNUSED void fmt_##T(struct fmt *f, const char *n, const PIFS_CT_##T *v) \
	{                                                                     \
		fmt_add(f, " %s=%" pri, n, *v);                               \
	}
FMT_INT(U8, PRIu8)
FMT_INT(U16, PRIu16)
FMT_INT(U32, PRIu32)
FMT_INT(U64, PRIu64)
FMT_INT(I32, PRId32)
FMT_INT(I64, PRId64)

static void fmt_ID(struct fmt *f, const char *n, const struct pifs_chunk_id *id)
{
	fmt_add(f, " %s=%016" PRIx64 "%016" PRIx64, n, id->hi, id->lo);
}

static void fmt_STR(struct fmt *f, const char *n, const struct pifs_str *s)
{
	fmt_add(f, " %s=\"%.*s\"", n, s->len > 64 ? 64 : (int)s->len, s->p ? s->p : "");
}

static void fmt_BLOB(struct fmt *f, const char *n, const struct pifs_blob *b)
{
	fmt_add(f, " %s=<%" PRIu32 " bytes>", n, b->len);
}

static void fmt_attr(struct fmt *f, const char *n, const struct pifs_attr *a)
{
	fmt_add(f, " %s={ino=%" PRIu64 " mode=%o size=%" PRIu64 "}", n, a->ino, a->mode, a->size);
}

static void fmt_work(struct fmt *f, const char *n, const struct pifs_work *w)
{
	fmt_add(f, " %s={heal_chunks=%" PRIu64 " scrub_done=%" PRIu64 "}", n, w->heal_chunks,
		w->scrub_done);
}

static void fmt_list(struct fmt *f, const char *n, const struct pifs_list *l)
{
	fmt_add(f, " %s=[%" PRIu32 " records]", n, l->count);
}

#define fmt_Ldirent fmt_list
#define fmt_Lchunkref fmt_list
#define fmt_Lchunkid fmt_list
#define fmt_Lnodeid fmt_list
#define fmt_Lnode fmt_list
#define fmt_Lnodestat fmt_list
#define fmt_Lmove fmt_list
#define fmt_Lraftent fmt_list
#define fmt_Lvoter fmt_list

int pifs_proto_format(const struct pifs_msg *m, char *out, size_t cap)
{
	struct fmt f = {out, cap, 0};

	if (cap)
		out[0] = '\0';
	fmt_add(&f, "%s#%" PRIu64, pifs_proto_name(m->type), m->reqid);
	switch (m->type) {
#define F(type, name) fmt_##type(&f, #name, &r->name);
#define MSG(NAME, code, kind, fields)                         \
	case PIFS_MSG_##NAME: {                               \
		const struct pifs_msg_##NAME *r = &m->u.NAME; \
		fields break;                                 \
	}
#include "proto.def"
#undef MSG
#undef F
	default:
		break;
	}
	return f.len;
}

struct pifs_str pifs_str_of(const char *s)
{
	size_t n = strlen(s);
	struct pifs_str out = {s, (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n)};

	return out;
}

int pifs_str_copy(struct pifs_str s, char *out, size_t cap)
{
	if (cap == 0 || s.len >= cap)
		return -ENAMETOOLONG;
	memcpy(out, s.p, s.len);
	out[s.len] = '\0';
	return 0;
}

bool pifs_str_eq(struct pifs_str s, const char *c)
{
	size_t n = strlen(c);

	return n == s.len && memcmp(s.p, c, n) == 0;
}

struct pifs_list pifs_list_of(const struct pifs_buf *b, uint32_t count)
{
	struct pifs_list l = {b->p, (uint32_t)b->len, count};

	return l;
}

void pifs_cursor_init(struct pifs_cursor *c, const struct pifs_list *l)
{
	c->p = l->p;
	c->end = l->p + l->len;
}
