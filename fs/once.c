/* once.c - the exactly-once sessions of the metadata state machine.
 *
 * Sessions are found by client id through a hash map; each holds its
 * outstanding replies in an array sorted by seq (a caller has few in
 * flight, and they are mostly recorded in order, so the array only appends
 * and drops from the front). */
#include "once.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct reply {
	uint64_t seq;
	uint32_t len;
	uint8_t *bytes; /* the encoded reply */
};

struct session {
	uint64_t client;
	uint64_t acked; /* the highest acked it sent */
	int64_t last;	/* entry time of its last mutation */
	uint32_t n, cap;
	struct reply *r; /* @n, by seq */
};

static uint64_t session_hash(const void *e)
{
	return pifs_hmap_mix(((const struct session *)e)->client);
}

static bool session_eq(const void *e, const void *key)
{
	return ((const struct session *)e)->client == *(const uint64_t *)key;
}

static struct session *session_get(const struct pifs_once *t, uint64_t client)
{
	return pifs_hmap_find(&t->sessions, pifs_hmap_mix(client), &client);
}

static void session_free(struct session *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		free(s->r[i].bytes);
	free(s->r);
	free(s);
}

static void session_drop(struct pifs_once *t, struct session *s)
{
	pifs_hmap_remove(&t->sessions, pifs_hmap_mix(s->client), &s->client);
	session_free(s);
}

/* Forget the first @k replies of @s. */
static void forget(struct session *s, uint32_t k)
{
	if (k == 0)
		return;
	for (uint32_t i = 0; i < k; i++)
		free(s->r[i].bytes);
	memmove(s->r, s->r + k, (s->n - k) * sizeof(*s->r));
	s->n -= k;
}

/* The position of @seq in @s, or where it would go. */
static uint32_t reply_pos(const struct session *s, uint64_t seq)
{
	uint32_t lo = 0, hi = s->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (s->r[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void pifs_once_init(struct pifs_once *t)
{
	pifs_hmap_init(&t->sessions, session_hash, session_eq);
	t->sweep_at = 0;
}

void pifs_once_fini(struct pifs_once *t)
{
	size_t pos = 0;
	struct session *s;

	while ((s = pifs_hmap_next(&t->sessions, &pos)))
		session_free(s);
	pifs_hmap_fini(&t->sessions);
	pifs_once_init(t);
}

uint64_t pifs_once_sessions(const struct pifs_once *t)
{
	return t->sessions.count;
}

/* The least recently used session (ties by client id, so that every voter
 * picks the same one whatever its map's order). */
static struct session *oldest(const struct pifs_once *t)
{
	struct session *s, *old = NULL;
	size_t pos = 0;

	while ((s = pifs_hmap_next(&t->sessions, &pos)))
		if (!old || s->last < old->last || (s->last == old->last && s->client < old->client))
			old = s;
	return old;
}

static void status(struct pifs_msg *rep, int rc, const char *detail)
{
	pifs_msg_init(rep, PIFS_MSG_R_STATUS);
	rep->u.R_STATUS.status = rc;
	rep->u.R_STATUS.detail = pifs_str_of(detail);
}

int pifs_once_begin(struct pifs_once *t, const struct pifs_msg *op, int64_t now,
		    struct pifs_msg *rep)
{
	const struct pifs_session *o = &op->once;
	struct session *s;
	uint32_t k;

	if (o->client == 0 || o->seq == 0) {
		status(rep, -EINVAL, "a session needs a client id and a sequence number");
		return PIFS_ONCE_DONE;
	}
	s = session_get(t, o->client);
	if (!s) {
		if (t->sessions.count >= PIFS_ONCE_SESSIONS)
			session_drop(t, oldest(t));
		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->client = o->client;
		if (pifs_hmap_insert(&t->sessions, s) < 0) {
			free(s);
			return -ENOMEM;
		}
	}
	if (now > s->last)
		s->last = now;
	if (o->acked > s->acked) {
		s->acked = o->acked;
		forget(s, reply_pos(s, s->acked));
	}
	if (o->seq < s->acked) {
		status(rep, -ESTALE, "a copy of a request already answered and acknowledged");
		return PIFS_ONCE_DONE;
	}
	k = reply_pos(s, o->seq);
	if (k < s->n && s->r[k].seq == o->seq) {
		/* Recorded bytes always decode: they were encoded here, and
		 * loading checks them. */
		if (pifs_proto_decode(s->r[k].bytes, s->r[k].len, rep) < 0)
			status(rep, -EIO, "the recorded reply does not decode");
		return PIFS_ONCE_DONE;
	}
	return PIFS_ONCE_APPLY;
}

/* Put the reply @bytes (owned from now on) of @seq into @s. */
static int insert(struct session *s, uint64_t seq, uint8_t *bytes, uint32_t len)
{
	uint32_t k;

	if (s->n == PIFS_ONCE_REPLIES)
		forget(s, 1);
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		struct reply *r = realloc(s->r, cap * sizeof(*r));

		if (!r) {
			free(bytes);
			return -ENOMEM;
		}
		s->r = r;
		s->cap = cap;
	}
	k = reply_pos(s, seq);
	memmove(s->r + k + 1, s->r + k, (s->n - k) * sizeof(*s->r));
	s->r[k] = (struct reply){seq, len, bytes};
	s->n++;
	return 0;
}

int pifs_once_end(struct pifs_once *t, const struct pifs_msg *op, const struct pifs_msg *rep)
{
	struct session *s = session_get(t, op->once.client);
	struct pifs_buf b;
	int rc;

	if (!s)
		return -EINVAL;
	pifs_buf_init(&b);
	rc = pifs_proto_encode(rep, &b);
	if (rc < 0) {
		pifs_buf_fini(&b);
		return rc;
	}
	return insert(s, op->once.seq, b.p, (uint32_t)b.len);
}

void pifs_once_sweep(struct pifs_once *t, int64_t now)
{
	struct session *s;
	size_t pos = 0;

	if (now < t->sweep_at)
		return;
	t->sweep_at = now + PIFS_ONCE_IDLE / 10;
	while ((s = pifs_hmap_next(&t->sessions, &pos)))
		if (s->last < now - PIFS_ONCE_IDLE) {
			session_drop(t, s);
			pos = 0; /* removal moves slots: walk again */
		}
}

/* Saving and loading. */

static int put_be(struct pifs_buf *b, uint64_t v, unsigned n)
{
	uint8_t x[8];

	for (unsigned i = 0; i < n; i++)
		x[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return pifs_buf_append(b, x, n);
}

static int cmp_session(const void *a, const void *b)
{
	const struct session *x = *(struct session *const *)a, *y = *(struct session *const *)b;

	return (x->client > y->client) - (x->client < y->client);
}

int pifs_once_save(const struct pifs_once *t, struct pifs_buf *out)
{
	size_t start = out->len, n = 0, pos = 0;
	struct session **v, *s;
	int rc;

	v = malloc((t->sessions.count ? t->sessions.count : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	while ((s = pifs_hmap_next(&t->sessions, &pos)))
		v[n++] = s;
	qsort(v, n, sizeof(*v), cmp_session);
	rc = put_be(out, (uint64_t)t->sweep_at, 8);
	if (rc == 0)
		rc = put_be(out, n, 4);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		s = v[i];
		if ((rc = put_be(out, s->client, 8)) < 0 || (rc = put_be(out, s->acked, 8)) < 0 ||
		    (rc = put_be(out, (uint64_t)s->last, 8)) < 0 || (rc = put_be(out, s->n, 4)) < 0)
			break;
		for (uint32_t k = 0; rc == 0 && k < s->n; k++)
			if ((rc = put_be(out, s->r[k].seq, 8)) == 0 &&
			    (rc = put_be(out, s->r[k].len, 4)) == 0)
				rc = pifs_buf_append(out, s->r[k].bytes, s->r[k].len);
	}
	free(v);
	if (rc < 0)
		out->len = start;
	return rc;
}

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t get_be(struct rd *r, unsigned n)
{
	uint64_t v = 0;

	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		r->p = r->end;
		return 0;
	}
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | *r->p++;
	return v;
}

/* One session's replies: by increasing seq, none below acked, each a reply
 * that decodes. */
static int load_replies(struct session *s, struct rd *r, uint32_t n)
{
	uint64_t prev = 0;

	for (uint32_t k = 0; k < n; k++) {
		uint64_t seq = get_be(r, 8);
		uint32_t len = (uint32_t)get_be(r, 4);
		struct pifs_msg m;
		uint8_t *bytes;

		if (r->bad || seq < s->acked || seq == 0 || (k && seq <= prev) ||
		    (size_t)(r->end - r->p) < len ||
		    pifs_proto_decode(r->p, len, &m) < 0 || pifs_proto_kind(m.type) != PIFS_KIND_REP)
			return -EBADMSG;
		bytes = malloc(len ? len : 1);
		if (!bytes)
			return -ENOMEM;
		memcpy(bytes, r->p, len);
		r->p += len;
		if (insert(s, seq, bytes, len) < 0)
			return -ENOMEM;
		prev = seq;
	}
	return 0;
}

static int load(struct pifs_once *t, struct rd *r)
{
	uint64_t prev = 0;
	uint32_t n;

	t->sweep_at = (int64_t)get_be(r, 8);
	n = (uint32_t)get_be(r, 4);
	if (r->bad || n > PIFS_ONCE_SESSIONS)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		struct session *s;
		uint32_t replies;
		int rc;

		s = calloc(1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		s->client = get_be(r, 8);
		s->acked = get_be(r, 8);
		s->last = (int64_t)get_be(r, 8);
		replies = (uint32_t)get_be(r, 4);
		if (r->bad || s->client <= prev || replies > PIFS_ONCE_REPLIES) {
			free(s);
			return -EBADMSG;
		}
		prev = s->client;
		if (pifs_hmap_insert(&t->sessions, s) < 0) {
			free(s);
			return -ENOMEM;
		}
		rc = load_replies(s, r, replies);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int pifs_once_load(struct pifs_once *t, const void *p, size_t len, size_t *used)
{
	struct rd r = {p, (const uint8_t *)p + len, false};
	int rc = load(t, &r);

	if (rc < 0) {
		pifs_once_fini(t);
		return rc;
	}
	*used = (size_t)(r.p - (const uint8_t *)p);
	return 0;
}
