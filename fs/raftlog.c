/* raftlog.c - a metadata voter's Raft log, term and snapshot on its disk
 * (format in raftlog.h). */
#include "raftlog.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"

#include "wal.h"

#define HARD_MAGIC 0x50524844u /* "PRHD" */
#define HARD_VERSION 1u
#define HARD_BODY 20	       /* magic | version | term | vote */
#define HARD_SIZE 28	       /* ... | hash */
#define ENTRY_HEAD 21	       /* u32 length | u64 index | u64 term | u8 type */
#define ENTRY_TAIL 8	       /* u64 hash */
#define SNAP_MAGIC 0x5052534eu /* "PRSN" */
#define SNAP_VERSION 1u
#define SNAP_HEAD 28	    /* magic | version | index | term | voters; their ids follow */
#define SNAP_TAIL 16	    /* length | hash */
#define WINDOW (256u << 10) /* bytes of raft.log read at once */
#define COPY (64u << 10)    /* bytes copied at once when the log is rewritten */

struct pifs_raftlog {
	int dirfd;
	/* raft.log. The owner replaces it (when the log is rewritten) under
	 * @sync_mu, which a syncer holds while it uses it; the owner's own
	 * reads need no lock, as only the owner ever changes it. */
	int fd;
	uint64_t snap_index;
	uint64_t size; /* bytes of raft.log written */
	/* off[i]: where entry snap_index + 1 + i starts, in raft.log, or past
	 * @size in @pending (at off[i] - size) while it is queued. */
	uint64_t *off;
	size_t n, cap;
	struct pifs_buf pending;
	/* Written bytes that no fdatasync has covered yet; the syncs serialise
	 * on @sync_mu, so that one that returns has covered every write
	 * before it even while another thread's sync was under way. */
	atomic_bool unsynced;
	pthread_mutex_t sync_mu;
	int infd;	 /* raft.snap.in while a snapshot comes in, else -1 */
	uint64_t in_off; /* where its next piece goes */
	bool migrated;
};

/* What the head of a snapshot file says. */
struct snap_head {
	uint64_t index, term;
	struct pifs_raft_conf conf;
	size_t meta_off;   /* where pifs_meta_save's bytes start */
	uint64_t meta_len; /* and how many there are */
};

static int pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	const uint8_t *b = p;

	while (len > 0) {
		ssize_t n = pwrite(fd, b, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		b += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read up to @len bytes at @off, fewer only where the file ends. Returns
 * the count or -errno. */
static ssize_t pread_full(int fd, void *p, size_t len, uint64_t off)
{
	uint8_t *b = p;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, b + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Make a new name in @path's parent directory durable. */

/* A file @fd written as @tmp (@rc: how its writing went) becomes @name:
 * synced first, so that the name never points at bytes the disk does not
 * hold. On failure @tmp is removed and @name is left as it was. The caller
 * closes @fd and syncs the directory. */
static int publish(struct pifs_raftlog *l, int fd, int rc, const char *tmp, const char *name)
{
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (rc == 0 && renameat(l->dirfd, tmp, l->dirfd, name) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(l->dirfd, tmp, 0);
	return rc;
}

static bool conf_valid(const struct pifs_raft_conf *c)
{
	uint32_t i;

	if (c->n == 0 || c->n > PIFS_RAFT_MAX_VOTERS)
		return false;
	for (i = 0; i < c->n; i++)
		if (c->id[i] == 0 || (i > 0 && c->id[i] <= c->id[i - 1]))
			return false;
	return true;
}

static bool conf_equal(const struct pifs_raft_conf *a, const struct pifs_raft_conf *b)
{
	return a->n == b->n && memcmp(a->id, b->id, a->n * sizeof(a->id[0])) == 0;
}

/* Check the framing, checksum and voters of the snapshot file's bytes @p
 * (@size of them) and read its head into @h. Returns 0 or -EBADMSG. */
static int snap_check(const uint8_t *p, size_t size, struct snap_head *h)
{
	uint32_t i;

	if (size < SNAP_HEAD + SNAP_TAIL || pifs_be_get(p, 4) != SNAP_MAGIC ||
	    pifs_be_get(p + 4, 4) != SNAP_VERSION || XXH3_64bits(p, size - 8) != pifs_be_get(p + size - 8, 8))
		return -EBADMSG;
	h->index = pifs_be_get(p + 8, 8);
	h->term = pifs_be_get(p + 16, 8);
	h->conf.n = (uint32_t)pifs_be_get(p + 24, 4);
	if (h->conf.n > PIFS_RAFT_MAX_VOTERS || size - SNAP_HEAD - SNAP_TAIL < 4 * h->conf.n)
		return -EBADMSG;
	for (i = 0; i < h->conf.n; i++)
		h->conf.id[i] = (uint32_t)pifs_be_get(p + SNAP_HEAD + 4 * i, 4);
	h->meta_off = SNAP_HEAD + 4 * h->conf.n;
	h->meta_len = pifs_be_get(p + size - SNAP_TAIL, 8);
	if (!conf_valid(&h->conf) || h->meta_len != size - SNAP_TAIL - h->meta_off)
		return -EBADMSG;
	return 0;
}

/* Check the snapshot file @fd and load it into @m (new). It is mapped, not
 * read, so that its bytes sit in the page cache (which the kernel may drop)
 * rather than on the heap next to the state being built from them. Returns
 * 0, -EBADMSG, -ENOMEM or -errno. */
static int snap_load(int fd, struct pifs_meta *m, struct snap_head *h)
{
	const uint8_t *p;
	struct stat st;
	size_t size;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size < SNAP_HEAD + SNAP_TAIL)
		return -EBADMSG;
	if ((uint64_t)st.st_size > SIZE_MAX)
		return -EFBIG;
	size = (size_t)st.st_size;
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	rc = snap_check(p, size, h);
	if (rc == 0)
		rc = pifs_meta_load(m, p + h->meta_off, (size_t)h->meta_len);
	/* The state must be the one the head names, or recovery would apply
	 * the wrong entries on top of it. */
	if (rc == 0 && pifs_meta_index(m) != h->index)
		rc = -EBADMSG;
	munmap((void *)p, size);
	return rc;
}

/* Where a snapshot streams to: the file, and the hash of what went in. */
struct snap_out {
	int fd;
	XXH3_state_t *hash;
	uint64_t len;
};

static int out_write(struct snap_out *o, const void *p, size_t len)
{
	XXH3_64bits_update(o->hash, p, len);
	return pifs_write_all(o->fd, p, len);
}

static int out_sink(void *ctx, const void *p, size_t len)
{
	struct snap_out *o = ctx;

	o->len += len;
	return out_write(o, p, len);
}

/* Make raft.snap durably a snapshot of @m at @index of @term, with the
 * voters @conf. The state streams into the file as pifs_meta_save_to
 * produces it, so that it is never held twice. */
static int snap_save(struct pifs_raftlog *l, const struct pifs_meta *m, uint64_t index,
		     uint64_t term, const struct pifs_raft_conf *conf)
{
	uint8_t head[SNAP_HEAD + 4 * PIFS_RAFT_MAX_VOTERS], tail[SNAP_TAIL];
	struct snap_out o = {-1, XXH3_createState(), 0};
	uint32_t i;
	int rc;

	if (!o.hash)
		return -ENOMEM;
	XXH3_64bits_reset(o.hash);
	o.fd = openat(l->dirfd, "raft.snap.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		rc = -errno;
		goto out_free;
	}
	pifs_be_put(head, SNAP_MAGIC, 4);
	pifs_be_put(head + 4, SNAP_VERSION, 4);
	pifs_be_put(head + 8, index, 8);
	pifs_be_put(head + 16, term, 8);
	pifs_be_put(head + 24, conf->n, 4);
	for (i = 0; i < conf->n; i++)
		pifs_be_put(head + SNAP_HEAD + 4 * i, conf->id[i], 4);
	rc = out_write(&o, head, SNAP_HEAD + 4 * conf->n);
	if (rc == 0)
		rc = pifs_meta_save_to(m, out_sink, &o);
	if (rc == 0) {
		pifs_be_put(tail, o.len, 8);
		rc = out_write(&o, tail, 8);
	}
	if (rc == 0) {
		pifs_be_put(tail + 8, XXH3_64bits_digest(o.hash), 8);
		rc = pifs_write_all(o.fd, tail + 8, 8);
	}
	rc = publish(l, o.fd, rc, "raft.snap.tmp", "raft.snap");
	close(o.fd);
	if (rc == 0 && fsync(l->dirfd) < 0)
		rc = -errno;
out_free:
	XXH3_freeState(o.hash);
	return rc;
}

/* Copy @len bytes of @from at @off to the end of @to. */
static int copy_range(int from, uint64_t off, uint64_t len, int to)
{
	uint8_t *b;
	int rc = 0;

	if (len == 0)
		return 0;
	b = malloc(COPY);
	if (!b)
		return -ENOMEM;
	while (len > 0) {
		ssize_t n = pread_full(from, b, len < COPY ? (size_t)len : COPY, off);

		if (n <= 0) {
			/* Shorter than what we wrote to it: the disk lost it. */
			rc = n < 0 ? (int)n : -EIO;
			break;
		}
		rc = pifs_write_all(to, b, (size_t)n);
		if (rc < 0)
			break;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	free(b);
	return rc;
}

/* Replace raft.log by a copy without its first @drop entries (queued ones
 * included), and make @snap the snapshot's index. The new file is written
 * aside and renamed over the old one, so that a crash leaves one or the
 * other whole; until the rename nothing changes, and from it on the log
 * follows the new file whatever fails after. */
static int rewrite_log(struct pifs_raftlog *l, size_t drop, uint64_t snap)
{
	uint64_t end = l->size + l->pending.len;
	uint64_t from = drop < l->n ? l->off[drop] : end;
	uint64_t keep = from < l->size ? from : l->size;
	int fd, old, rc;
	size_t i;

	fd = openat(l->dirfd, "raft.log.tmp", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = copy_range(l->fd, keep, l->size - keep, fd);
	rc = publish(l, fd, rc, "raft.log.tmp", "raft.log");
	if (rc < 0) {
		close(fd);
		return rc;
	}
	/* Everything in the new file was synced before the rename: no sync
	 * owes anything to it, nor to the old file, whose entries are either
	 * in the new one or covered by the snapshot. */
	pthread_mutex_lock(&l->sync_mu);
	old = l->fd;
	l->fd = fd;
	atomic_store(&l->unsynced, false);
	pthread_mutex_unlock(&l->sync_mu);
	close(old);
	if (from > l->size) {
		memmove(l->pending.p, l->pending.p + (from - l->size),
			l->pending.len - (size_t)(from - l->size));
		l->pending.len -= (size_t)(from - l->size);
	}
	l->n -= drop;
	for (i = 0; i < l->n; i++)
		l->off[i] = l->off[i + drop] - from;
	l->size -= keep;
	l->snap_index = snap;
	return fsync(l->dirfd) < 0 ? -errno : 0;
}

static int push_off(struct pifs_raftlog *l, uint64_t off)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		uint64_t *p = realloc(l->off, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->off = p;
		l->cap = cap;
	}
	l->off[l->n++] = off;
	return 0;
}

/* Is the entry at @p, of @len bytes of data, entry @index and whole? */
static bool entry_checks(const uint8_t *p, uint64_t index, uint64_t len)
{
	return pifs_be_get(p + 4, 8) == index &&
	       XXH3_64bits(p, ENTRY_HEAD + len) == pifs_be_get(p + ENTRY_HEAD + len, 8);
}

/* Reads raft.log through a window, so that scanning a long log needs
 * neither a read per entry nor the whole file in memory. */
struct reader {
	int fd;
	struct pifs_buf b;
	uint64_t at; /* the file offset of b.p[0] */
};

/* Point *@p at the @len bytes of the file at @off, reading them and what
 * follows if they are not in the window. Returns 0, 1 when the file ends
 * before them, or -errno. */
static int rd_get(struct reader *r, uint64_t off, size_t len, const uint8_t **p)
{
	size_t want = len > WINDOW ? len : WINDOW;
	ssize_t got;
	int rc;

	if (off < r->at || off - r->at + len > r->b.len) {
		pifs_buf_reset(&r->b);
		rc = pifs_buf_reserve(&r->b, want);
		if (rc < 0)
			return rc;
		got = pread_full(r->fd, r->b.p, want, off);
		if (got < 0)
			return (int)got;
		r->at = off;
		r->b.len = (size_t)got;
		if ((size_t)got < len)
			return 1;
	}
	*p = r->b.p + (off - r->at);
	return 0;
}

/* Read raft.log's entries, keep the ones that check and follow each other,
 * and cut the file at the first that does not: what follows it is a torn
 * tail. Entries the snapshot covers are then dropped (a crash came between
 * writing a snapshot and rewriting the log). */
static int scan(struct pifs_raftlog *l)
{
	struct reader r = {.fd = l->fd};
	uint64_t off = 0, first = 0, prev = 0;
	struct stat st;
	int rc;

	pifs_buf_init(&r.b);
	if (fstat(l->fd, &st) < 0) {
		rc = -errno;
		goto out_free;
	}
	for (;;) {
		const uint8_t *p = NULL;
		uint64_t len, index;

		rc = rd_get(&r, off, ENTRY_HEAD, &p);
		if (rc != 0)
			break;
		len = pifs_be_get(p, 4);
		index = pifs_be_get(p + 4, 8);
		if (len > PIFS_PROTO_MAX_MSG || index == 0 ||
		    (prev == 0 && index > l->snap_index + 1) || (prev != 0 && index != prev + 1))
			break;
		rc = rd_get(&r, off, ENTRY_HEAD + len + ENTRY_TAIL, &p);
		if (rc != 0)
			break;
		if (!entry_checks(p, index, len))
			break;
		rc = push_off(l, off);
		if (rc < 0)
			break;
		if (prev == 0)
			first = index;
		prev = index;
		off += ENTRY_HEAD + len + ENTRY_TAIL;
	}
	if (rc < 0)
		goto out_free;
	if (off < (uint64_t)st.st_size && (ftruncate(l->fd, (off_t)off) < 0 || fsync(l->fd) < 0)) {
		rc = -errno;
		goto out_free;
	}
	l->size = off;
	rc = 0;
	if (first != 0 && first <= l->snap_index) {
		uint64_t covered = l->snap_index + 1 - first;

		rc = rewrite_log(l, covered < l->n ? (size_t)covered : l->n, l->snap_index);
	}
out_free:
	pifs_buf_fini(&r.b);
	return rc;
}

/* Read raft.hard into @st, if there is one. */
static int hard_load(struct pifs_raftlog *l, struct pifs_raft_state *st)
{
	uint8_t b[HARD_SIZE + 1];
	ssize_t n;
	int fd;

	fd = openat(l->dirfd, "raft.hard", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* One byte more than the file should hold, to see that it does not. */
	n = pread_full(fd, b, sizeof(b), 0);
	close(fd);
	if (n < 0)
		return (int)n;
	if (n != HARD_SIZE || pifs_be_get(b, 4) != HARD_MAGIC || pifs_be_get(b + 4, 4) != HARD_VERSION ||
	    XXH3_64bits(b, HARD_BODY) != pifs_be_get(b + HARD_BODY, 8))
		return -EBADMSG;
	st->term = pifs_be_get(b + 8, 8);
	st->vote = (uint32_t)pifs_be_get(b + 16, 4);
	return 0;
}

/* Is @name in the directory? Returns 1, 0 or -errno. */
static int exists(struct pifs_raftlog *l, const char *name)
{
	struct stat st;

	if (fstatat(l->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* Rename @from to @to if it is there. */
static int rename_old(struct pifs_raftlog *l, const char *from, const char *to)
{
	if (renameat(l->dirfd, from, l->dirfd, to) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A directory of fs/wal.c becomes the first snapshot, at term 1 with the
 * voters @initial. The term file says term 1 as well, so that every
 * election after the conversion is for a later term than the snapshot's.
 * The old files go last: a crash before that leaves raft files, which the
 * next open takes, and old files that it ignores. */
static int migrate(struct pifs_raftlog *l, const char *dir, const struct pifs_raft_conf *initial,
		   struct pifs_meta *m, struct pifs_raft_state *st)
{
	struct pifs_wal *w;
	uint64_t index;
	int rc;

	rc = pifs_wal_open(dir, m, &w);
	if (rc < 0)
		return rc;
	pifs_wal_close(w);
	index = pifs_meta_index(m);
	/* An old log that never applied anything gives no snapshot: the
	 * state is the empty one of a new directory. */
	if (index > 0) {
		rc = snap_save(l, m, index, 1, initial);
		if (rc < 0)
			return rc;
		l->snap_index = st->snap_index = index;
		st->snap_term = 1;
	}
	rc = pifs_raftlog_set_hard(l, 1, 0);
	if (rc < 0)
		return rc;
	st->term = 1;
	rc = rename_old(l, "snap", "snap.old");
	if (rc == 0)
		rc = rename_old(l, "wal", "wal.old");
	if (rc == 0 && fsync(l->dirfd) < 0)
		rc = -errno;
	l->migrated = rc == 0;
	return rc;
}

/* Load raft.snap if there is one. */
static int load(struct pifs_raftlog *l, struct pifs_meta *m, struct pifs_raft_state *st)
{
	struct snap_head h;
	int fd, rc;

	fd = openat(l->dirfd, "raft.snap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = snap_load(fd, m, &h);
	close(fd);
	if (rc < 0)
		return rc;
	l->snap_index = st->snap_index = h.index;
	st->snap_term = h.term;
	st->conf = h.conf;
	return 0;
}

/* Open raft.log, creating it (and syncing the directory) if needed. */
static int open_log(struct pifs_raftlog *l)
{
	l->fd = openat(l->dirfd, "raft.log", O_RDWR | O_CLOEXEC);
	if (l->fd >= 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	l->fd = openat(l->dirfd, "raft.log", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (l->fd < 0 || fsync(l->dirfd) < 0)
		return -errno;
	return 0;
}

/* Find what the directory holds and read it. */
static int recover(struct pifs_raftlog *l, const char *dir, const struct pifs_raft_conf *initial,
		   struct pifs_meta *m, struct pifs_raft_state *st)
{
	static const char *const raft[] = {"raft.snap", "raft.hard", "raft.log"};
	static const char *const old[] = {"snap", "wal"};
	int has_raft = 0, has_old = 0, rc;
	size_t i;

	for (i = 0; i < sizeof(raft) / sizeof(raft[0]) && has_raft == 0; i++)
		has_raft = exists(l, raft[i]);
	for (i = 0; i < sizeof(old) / sizeof(old[0]) && has_old == 0 && has_raft == 0; i++)
		has_old = exists(l, old[i]);
	if (has_raft < 0 || has_old < 0)
		return has_raft < 0 ? has_raft : has_old;
	rc = has_old ? migrate(l, dir, initial, m, st) : load(l, m, st);
	if (rc == 0)
		rc = hard_load(l, st);
	if (rc == 0)
		rc = open_log(l);
	if (rc == 0)
		rc = scan(l);
	st->applied = st->snap_index;
	return rc;
}

int pifs_raftlog_open(const char *dir, const struct pifs_raft_conf *initial, struct pifs_meta *m,
		      struct pifs_raftlog **out, struct pifs_raft_state *st)
{
	static const char *const tmp[] = {"raft.hard.tmp", "raft.snap.tmp", "raft.log.tmp",
					  "raft.snap.in"};
	struct pifs_raftlog *l;
	size_t i;
	int rc;

	*out = NULL;
	memset(st, 0, sizeof(*st));
	if (!conf_valid(initial))
		return -EINVAL;
	st->conf = *initial;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->dirfd = -1;
	l->infd = -1;
	pthread_mutex_init(&l->sync_mu, NULL);
	pifs_buf_init(&l->pending);
	if (mkdir(dir, 0700) == 0) {
		rc = pifs_sync_parent(dir);
		if (rc < 0)
			goto out_close;
	} else if (errno != EEXIST) {
		rc = -errno;
		goto out_close;
	}
	l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (l->dirfd < 0) {
		rc = -errno;
		goto out_close;
	}
	/* Files that were being written when we stopped are useless: each was
	 * to be renamed whole, or (an incoming snapshot) is sent again. */
	for (i = 0; i < sizeof(tmp) / sizeof(tmp[0]); i++)
		unlinkat(l->dirfd, tmp[i], 0);
	rc = recover(l, dir, initial, m, st);
	if (rc < 0)
		goto out_close;
	*out = l;
	return 0;

out_close:
	pifs_raftlog_close(l);
	return rc;
}

bool pifs_raftlog_migrated(const struct pifs_raftlog *l)
{
	return l->migrated;
}

int pifs_raftlog_entries(struct pifs_raftlog *l,
			 int (*each)(void *ctx, uint64_t index, const struct pifs_raft_entry *e),
			 void *ctx)
{
	struct reader r = {.fd = l->fd};
	uint64_t end = l->size + l->pending.len;
	size_t i;
	int rc = 0;

	pifs_buf_init(&r.b);
	for (i = 0; i < l->n && rc == 0; i++) {
		uint64_t index = l->snap_index + 1 + i;
		uint64_t next = i + 1 < l->n ? l->off[i + 1] : end;
		size_t size = (size_t)(next - l->off[i]), len = size - ENTRY_HEAD - ENTRY_TAIL;
		struct pifs_raft_entry e;
		const uint8_t *p = NULL;

		if (l->off[i] >= l->size) {
			p = l->pending.p + (l->off[i] - l->size);
		} else {
			rc = rd_get(&r, l->off[i], size, &p);
			if (rc < 0)
				break;
			/* It checked when it was written or read at open: the
			 * file changed under us since. */
			if (rc == 1 || !entry_checks(p, index, len)) {
				rc = -EBADMSG;
				break;
			}
		}
		e.term = pifs_be_get(p + 12, 8);
		e.type = p[20];
		e.data = p + ENTRY_HEAD;
		e.len = (uint32_t)len;
		rc = each(ctx, index, &e);
	}
	pifs_buf_fini(&r.b);
	return rc;
}

int pifs_raftlog_append(struct pifs_raftlog *l, uint64_t index, const struct pifs_raft_entry *e)
{
	uint8_t head[ENTRY_HEAD], tail[ENTRY_TAIL];
	size_t start = l->pending.len;
	int rc;

	if (index != pifs_raftlog_last_index(l) + 1 || e->len > PIFS_PROTO_MAX_MSG)
		return -EINVAL;
	rc = pifs_buf_reserve(&l->pending, ENTRY_HEAD + e->len + ENTRY_TAIL);
	if (rc == 0)
		rc = push_off(l, l->size + start);
	if (rc < 0)
		return rc;
	pifs_be_put(head, e->len, 4);
	pifs_be_put(head + 4, index, 8);
	pifs_be_put(head + 12, e->term, 8);
	head[20] = e->type;
	pifs_buf_append(&l->pending, head, sizeof(head));
	if (e->len > 0)
		pifs_buf_append(&l->pending, e->data, e->len);
	pifs_be_put(tail, XXH3_64bits(l->pending.p + start, ENTRY_HEAD + e->len), 8);
	pifs_buf_append(&l->pending, tail, sizeof(tail));
	return 0;
}

int pifs_raftlog_write(struct pifs_raftlog *l)
{
	int rc;

	if (l->pending.len == 0)
		return 0;
	rc = pwrite_all(l->fd, l->pending.p, l->pending.len, l->size);
	if (rc < 0) {
		/* Leave no half entry behind: recovery would take the
		 * entries written after it for a torn tail. The queued
		 * entries are gone with it; the caller stops anyway. */
		if (ftruncate(l->fd, (off_t)l->size) < 0)
			rc = -errno;
		while (l->n > 0 && l->off[l->n - 1] >= l->size)
			l->n--;
		pifs_buf_reset(&l->pending);
		return rc;
	}
	l->size += l->pending.len;
	atomic_store(&l->unsynced, true);
	pifs_buf_reset(&l->pending);
	return 0;
}

int pifs_raftlog_sync(struct pifs_raftlog *l)
{
	int rc = 0;

	pthread_mutex_lock(&l->sync_mu);
	if (atomic_exchange(&l->unsynced, false) && fdatasync(l->fd) < 0) {
		rc = -errno;
		atomic_store(&l->unsynced, true);
	}
	pthread_mutex_unlock(&l->sync_mu);
	return rc;
}

int pifs_raftlog_truncate(struct pifs_raftlog *l, uint64_t from)
{
	size_t keep;
	uint64_t cut;

	if (l->n == 0 || from > pifs_raftlog_last_index(l))
		return 0;
	keep = from > l->snap_index ? (size_t)(from - l->snap_index - 1) : 0;
	cut = l->off[keep];
	if (cut < l->size) {
		if (ftruncate(l->fd, (off_t)cut) < 0)
			return -errno;
		l->size = cut;
		pifs_buf_reset(&l->pending);
		/* The shorter file is only durable once a sync covers it:
		 * until then a power cut may bring the entries back. */
		atomic_store(&l->unsynced, true);
	} else {
		l->pending.len = (size_t)(cut - l->size);
	}
	l->n = keep;
	return 0;
}

int pifs_raftlog_set_hard(struct pifs_raftlog *l, uint64_t term, uint32_t vote)
{
	uint8_t b[HARD_SIZE];
	int fd, rc;

	pifs_be_put(b, HARD_MAGIC, 4);
	pifs_be_put(b + 4, HARD_VERSION, 4);
	pifs_be_put(b + 8, term, 8);
	pifs_be_put(b + 16, vote, 4);
	pifs_be_put(b + HARD_BODY, XXH3_64bits(b, HARD_BODY), 8);
	fd = openat(l->dirfd, "raft.hard.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = publish(l, fd, pifs_write_all(fd, b, sizeof(b)), "raft.hard.tmp", "raft.hard");
	close(fd);
	if (rc == 0 && fsync(l->dirfd) < 0)
		rc = -errno;
	return rc;
}

uint64_t pifs_raftlog_last_index(const struct pifs_raftlog *l)
{
	return l->snap_index + l->n;
}

uint64_t pifs_raftlog_size(const struct pifs_raftlog *l)
{
	return l->size;
}

int pifs_raftlog_snapshot(struct pifs_raftlog *l, const struct pifs_meta *m, uint64_t index,
			  uint64_t term, const struct pifs_raft_conf *conf)
{
	uint64_t covered;
	int rc;

	if (index < l->snap_index || pifs_meta_index(m) != index || !conf_valid(conf))
		return -EINVAL;
	rc = snap_save(l, m, index, term, conf);
	if (rc < 0)
		return rc;
	/* The snapshot stands from here: if the log is not rewritten, its
	 * entries up to @index are skipped at the next open. */
	covered = index - l->snap_index;
	return rewrite_log(l, covered < l->n ? (size_t)covered : l->n, index);
}

ssize_t pifs_raftlog_snap_read(struct pifs_raftlog *l, uint64_t off, void *buf, size_t cap)
{
	ssize_t n;
	int fd;

	/* Opened for each piece: a snapshot written meanwhile replaces the
	 * file, and the receiver refuses the mixture by its checksum. */
	fd = openat(l->dirfd, "raft.snap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread_full(fd, buf, cap, off);
	close(fd);
	return n;
}

int pifs_raftlog_snap_write(struct pifs_raftlog *l, uint64_t off, const void *p, size_t len)
{
	int rc;

	if (off == 0) {
		if (l->infd >= 0)
			close(l->infd);
		l->infd =
		    openat(l->dirfd, "raft.snap.in", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (l->infd < 0)
			return -errno;
		l->in_off = 0;
	} else if (l->infd < 0 || off != l->in_off) {
		return -EINVAL;
	}
	rc = pwrite_all(l->infd, p, len, off);
	if (rc < 0)
		return rc;
	l->in_off += len;
	return 0;
}

int pifs_raftlog_snap_install(struct pifs_raftlog *l, uint64_t index, uint64_t term,
			      const struct pifs_raft_conf *conf, uint64_t total,
			      struct pifs_meta **m)
{
	struct pifs_meta *nm;
	struct snap_head h;
	int rc;

	*m = NULL;
	if (l->infd < 0)
		return -EINVAL;
	nm = pifs_meta_new();
	rc = nm ? 0 : -ENOMEM;
	if (rc == 0 && l->in_off != total)
		rc = -EBADMSG;
	if (rc == 0)
		rc = snap_load(l->infd, nm, &h);
	if (rc == 0 && (h.index != index || h.term != term || !conf_equal(&h.conf, conf)))
		rc = -EBADMSG;
	/* Refused or taken, the incoming file is done with: a refused one is
	 * sent again from its start. */
	rc = publish(l, l->infd, rc, "raft.snap.in", "raft.snap");
	close(l->infd);
	l->infd = -1;
	/* The snapshot must be durably in place before the log is emptied:
	 * the other way round, a crash would lose entries this voter may have
	 * acknowledged. */
	if (rc == 0 && fsync(l->dirfd) < 0)
		rc = -errno;
	if (rc == 0)
		rc = rewrite_log(l, l->n, index);
	if (rc < 0) {
		pifs_meta_free(nm);
		return rc;
	}
	*m = nm;
	return 0;
}

void pifs_raftlog_close(struct pifs_raftlog *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (l->infd >= 0)
		close(l->infd);
	if (l->dirfd >= 0)
		close(l->dirfd);
	pthread_mutex_destroy(&l->sync_mu);
	pifs_buf_fini(&l->pending);
	free(l->off);
	free(l);
}
