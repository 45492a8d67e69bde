/* test_once.c - exactly-once mutations: a retried request gets the first
 * reply and changes nothing, acknowledged replies are forgotten, sessions
 * survive a snapshot and expire, the envelope carries them. */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "meta.h"
#include "once.h"

#define ROOT PIFS_META_ROOT

static struct pifs_meta *m;
static struct pifs_buf scratch;
static struct pifs_msg rep;
static int64_t clock_ns = 1000;

/* Apply @op to @s as its next entry at time @now (0: the next tick). */
static int apply_at(struct pifs_meta *s, struct pifs_msg *op, int64_t now)
{
	clock_ns = now ? now : clock_ns + 1;
	pifs_proto_stamp(op, clock_ns);
	cr_assert_eq(pifs_meta_apply(s, pifs_meta_index(s) + 1, op, &rep, &scratch), 0);
	return rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.status : 0;
}

/* A MKNOD of @name in the root by session (@client, @seq, @acked). */
static void mknod_op(struct pifs_msg *op, const char *name, uint64_t client, uint64_t seq,
		     uint64_t acked)
{
	pifs_msg_init(op, PIFS_MSG_MKNOD);
	op->u.MKNOD.parent = ROOT;
	op->u.MKNOD.name = pifs_str_of(name);
	op->u.MKNOD.mode = S_IFREG | 0644;
	if (client) {
		op->flags = PIFS_MSG_ONCE;
		op->once = (struct pifs_session){client, seq, acked};
	}
}

static int mknod_once(struct pifs_meta *s, const char *name, uint64_t client, uint64_t seq,
		      uint64_t acked, int64_t now)
{
	struct pifs_msg op;

	mknod_op(&op, name, client, seq, acked);
	return apply_at(s, &op, now);
}

static int lookup(struct pifs_meta *s, const char *name)
{
	struct pifs_msg q;

	pifs_msg_init(&q, PIFS_MSG_LOOKUP);
	q.u.LOOKUP.parent = ROOT;
	q.u.LOOKUP.name = pifs_str_of(name);
	cr_assert_eq(pifs_meta_query(s, &q, &rep, &scratch), 0);
	return rep.type == PIFS_MSG_R_STATUS ? rep.u.R_STATUS.status : 0;
}

static void setup(void)
{
	struct pifs_msg op;

	m = pifs_meta_new();
	cr_assert_not_null(m);
	pifs_buf_init(&scratch);
	clock_ns = 1000;
	pifs_msg_init(&op, PIFS_MSG_INIT);
	op.u.INIT.replicas = 2;
	op.u.INIT.chunk_size = 1024;
	cr_assert_eq(apply_at(m, &op, 0), 0);
}

static void teardown(void)
{
	pifs_meta_free(m);
	pifs_buf_fini(&scratch);
}

TestSuite(once, .init = setup, .fini = teardown);

Test(once, a_retry_gets_the_first_reply_and_changes_nothing)
{
	uint64_t ino, inodes;
	struct pifs_meta_stats st;

	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	ino = rep.u.R_ATTR.attr.ino;
	pifs_meta_stats(m, &st);
	inodes = st.inodes;
	/* The copy: the same reply (not EEXIST), no new inode. */
	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, ino);
	pifs_meta_stats(m, &st);
	cr_assert_eq(st.inodes, inodes);
	/* A new request of the same session is applied: EEXIST is real. */
	cr_assert_eq(mknod_once(m, "a", 7, 2, 1, 0), -EEXIST);
	/* Another session has its own numbers. */
	cr_assert_eq(mknod_once(m, "b", 8, 1, 1, 0), 0);
	cr_assert_eq(lookup(m, "b"), 0);
}

Test(once, a_retried_unlink_does_not_fail_with_enoent)
{
	struct pifs_msg op;

	cr_assert_eq(mknod_once(m, "gone", 7, 1, 1, 0), 0);
	pifs_msg_init(&op, PIFS_MSG_UNLINK);
	op.u.UNLINK.parent = ROOT;
	op.u.UNLINK.name = pifs_str_of("gone");
	op.flags = PIFS_MSG_ONCE;
	op.once = (struct pifs_session){7, 2, 2};
	cr_assert_eq(apply_at(m, &op, 0), 0);
	cr_assert_eq(apply_at(m, &op, 0), 0, "the retry answers what the first did");
	cr_assert_eq(lookup(m, "gone"), -ENOENT);
}

Test(once, acknowledged_replies_are_forgotten_and_their_copies_not_applied)
{
	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), 0);
	cr_assert_eq(mknod_once(m, "b", 7, 2, 2, 0), 0);
	/* seq 1 is acknowledged by acked 2: a late copy of it is refused,
	 * not applied (it would have created "a" again after an unlink). */
	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), -ESTALE);
	/* seq 2 is still outstanding: its copy gets the reply. */
	cr_assert_eq(mknod_once(m, "b", 7, 2, 2, 0), 0);
	cr_assert_eq(rep.type, PIFS_MSG_R_ATTR);
}

Test(once, a_session_without_ids_is_refused)
{
	cr_assert_eq(mknod_once(m, "a", 0, 0, 0, 0), 0, "no session: applied as before");
	cr_assert_eq(mknod_once(m, "b", 7, 0, 0, 0), -EINVAL);
	cr_assert_eq(lookup(m, "b"), -ENOENT);
}

Test(once, sessions_survive_a_snapshot)
{
	struct pifs_meta *copy = pifs_meta_new();
	struct pifs_buf snap;
	uint64_t ino;

	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), 0);
	ino = rep.u.R_ATTR.attr.ino;
	cr_assert_eq(mknod_once(m, "b", 9, 5, 5, 0), 0);
	pifs_buf_init(&snap);
	cr_assert_eq(pifs_meta_save(m, &snap), 0);
	cr_assert_eq(pifs_meta_load(copy, snap.p, snap.len), 0);
	cr_assert_eq(pifs_meta_digest(copy), pifs_meta_digest(m));
	/* The copy answers a retry as the original would. */
	cr_assert_eq(mknod_once(copy, "a", 7, 1, 1, 0), 0);
	cr_assert_eq(rep.u.R_ATTR.attr.ino, ino);
	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, clock_ns), 0);
	cr_assert_eq(pifs_meta_digest(copy), pifs_meta_digest(m));
	/* A snapshot damaged in its session table is refused. */
	snap.p[snap.len - 20] ^= 0x40;
	pifs_meta_free(copy);
	copy = pifs_meta_new();
	cr_assert_eq(pifs_meta_load(copy, snap.p, snap.len), -EBADMSG);
	pifs_meta_free(copy);
	pifs_buf_fini(&snap);
}

Test(once, idle_sessions_expire)
{
	int64_t t0 = clock_ns;

	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, t0 + 1), 0);
	cr_assert_eq(mknod_once(m, "b", 8, 1, 1, t0 + PIFS_ONCE_IDLE / 2), 0);
	/* Past the idle time of session 7 (not of 8): 7 is forgotten, so its
	 * copy is applied again and finds "a" there. */
	cr_assert_eq(mknod_once(m, "c", 9, 1, 1, t0 + PIFS_ONCE_IDLE + 10), 0);
	cr_assert_eq(mknod_once(m, "a", 7, 1, 1, 0), -EEXIST);
	cr_assert_eq(mknod_once(m, "b", 8, 1, 1, 0), 0, "session 8 is still there");
}

Test(once, the_envelope_carries_the_session)
{
	struct pifs_msg op, d;
	struct pifs_buf b;

	mknod_op(&op, "x", 0x1122334455667788ull, 42, 40);
	pifs_buf_init(&b);
	cr_assert_eq(pifs_proto_encode(&op, &b), 0);
	cr_assert_eq(pifs_proto_decode(b.p, b.len, &d), 0);
	cr_assert_eq(d.flags, PIFS_MSG_ONCE);
	cr_assert_eq(d.once.client, 0x1122334455667788ull);
	cr_assert_eq(d.once.seq, 42);
	cr_assert_eq(d.once.acked, 40);
	cr_assert_eq(d.u.MKNOD.name.len, 1);
	/* Cut inside the session: malformed. */
	cr_assert_eq(pifs_proto_decode(b.p, PIFS_PROTO_HDR + 10, &d), -EBADMSG);
	/* An unknown envelope flag is refused both ways. */
	b.p[3] |= 0x80;
	cr_assert_eq(pifs_proto_decode(b.p, b.len, &d), -EBADMSG);
	op.flags = 0x80;
	pifs_buf_reset(&b);
	cr_assert_eq(pifs_proto_encode(&op, &b), -EINVAL);
	pifs_buf_fini(&b);
}

Test(once, voters_set_the_meta_flags_of_the_map)
{
	struct pifs_msg op;
	struct pifs_buf ids;
	uint32_t flags, weight;

	for (uint32_t id = 1; id <= 3; id++) {
		pifs_msg_init(&op, PIFS_MSG_NODE_ADD);
		op.u.NODE_ADD.id = id;
		op.u.NODE_ADD.weight = 1;
		op.u.NODE_ADD.flags = id == 1 ? PIFS_NODE_META : 0;
		op.u.NODE_ADD.addr = pifs_str_of("127.0.0.1:7000");
		cr_assert_eq(apply_at(m, &op, 0), 0);
	}
	pifs_buf_init(&ids);
	for (uint32_t id = 2; id <= 3; id++)
		cr_assert_eq(pifs_nodeid_append(&ids, &(struct pifs_nodeid){id}), 0);
	pifs_msg_init(&op, PIFS_MSG_VOTERS);
	op.u.VOTERS.ids = pifs_list_of(&ids, 2);
	cr_assert_eq(apply_at(m, &op, 0), 0);
	cr_assert_eq(pifs_meta_node(m, 1, &flags, &weight), 0);
	cr_assert_eq(flags & PIFS_NODE_META, 0);
	cr_assert_eq(pifs_meta_node(m, 3, &flags, &weight), 0);
	cr_assert_neq(flags & PIFS_NODE_META, 0);
	pifs_msg_init(&op, PIFS_MSG_NOOP);
	cr_assert_eq(apply_at(m, &op, 0), 0);
	pifs_buf_fini(&ids);
}
