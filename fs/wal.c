/* wal.c - the metadata write-ahead log and its snapshots (format in wal.h). */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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

#include "log.h"

#define ENTRY_HEAD 12	       /* u32 length | u64 index */
#define ENTRY_TAIL 8	       /* u64 hash */
#define SNAP_MAGIC 0x50534e50u /* "PSNP" */
#define SNAP_VERSION 1u
#define SNAP_HEAD 16 /* magic | version | index */
#define SNAP_TAIL 16 /* length | hash */

struct pifs_wal {
	char *dir; /* owned, for messages */
	int dirfd;
	int fd;	       /* "wal", opened O_APPEND */
	uint64_t size;	/* written bytes */
	/* Written bytes that no fdatasync has covered yet; the syncs serialise
	 * on @sync_mu, so that one that returns has covered every write
	 * before it even while another thread's sync was under way. */
	atomic_bool unsynced;
	pthread_mutex_t sync_mu;
	struct pifs_buf pending;
};

/* Read the whole file @fd into @out (OUT; the caller frees it with
 * pifs_buf_fini). Returns 0 or -errno. */
static int read_all(int fd, struct pifs_buf *out)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size > SIZE_MAX - 1)
		return -EFBIG;
	rc = pifs_buf_reserve(out, (size_t)st.st_size + 1);
	if (rc < 0)
		return rc;
	for (;;) {
		ssize_t n;

		if (out->len == out->cap && (rc = pifs_buf_reserve(out, 1 << 16)) < 0)
			return rc;
		n = pread(fd, out->p + out->len, out->cap - out->len, (off_t)out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		out->len += (size_t)n;
	}
}

/* Make a new name in @path's parent directory durable. */

/* Load "snap" if there is one. It is mapped, not read, so that its bytes
 * sit in the page cache (which the kernel may drop) rather than on the heap
 * next to the state being built from them. */
static int load_snapshot(struct pifs_wal *w, struct pifs_meta *m)
{
	const uint8_t *p = MAP_FAILED;
	struct stat st;
	uint64_t len, index;
	size_t size = 0;
	int fd, rc;

	fd = openat(w->dirfd, "snap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	size = (size_t)st.st_size;
	rc = -EBADMSG;
	if (size < SNAP_HEAD + SNAP_TAIL)
		goto out_bad;
	p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		rc = -errno;
		goto out_close;
	}
	if (pifs_be_get(p, 4) != SNAP_MAGIC || pifs_be_get(p + 4, 4) != SNAP_VERSION)
		goto out_bad;
	index = pifs_be_get(p + 8, 8);
	len = pifs_be_get(p + size - SNAP_TAIL, 8);
	if (len != size - SNAP_HEAD - SNAP_TAIL ||
	    XXH3_64bits(p, size - 8) != pifs_be_get(p + size - 8, 8))
		goto out_bad;
	rc = pifs_meta_load(m, p + SNAP_HEAD, (size_t)len);
	if (rc == -EBADMSG || (rc == 0 && pifs_meta_index(m) != index))
		goto out_bad;
	goto out_close;

out_bad:
	rc = -EBADMSG;
	pifs_err(
	    "metadata snapshot %s/snap is damaged (%zu bytes do not check): refusing to "
	    "start on it; restore the metadata directory from another metadata node or a backup",
	    w->dir, size);
out_close:
	if (p != MAP_FAILED)
		munmap((void *)p, size);
	close(fd);
	return rc;
}

/* Replay the log into @m and cut a torn tail. */
static int replay(struct pifs_wal *w, struct pifs_meta *m)
{
	struct pifs_buf b, scratch;
	struct pifs_msg op, rep;
	size_t off = 0;
	int rc;

	pifs_buf_init(&b);
	pifs_buf_init(&scratch);
	rc = read_all(w->fd, &b);
	if (rc < 0)
		goto out_free;
	while (b.len - off >= ENTRY_HEAD + ENTRY_TAIL) {
		const uint8_t *e = b.p + off;
		uint64_t len = pifs_be_get(e, 4), index = pifs_be_get(e + 4, 8);

		if (len > PIFS_PROTO_MAX_MSG || b.len - off - ENTRY_HEAD - ENTRY_TAIL < len ||
		    XXH3_64bits(e, ENTRY_HEAD + len) != pifs_be_get(e + ENTRY_HEAD + len, 8))
			break;
		if (index > pifs_meta_index(m)) {
			rc = pifs_proto_decode(e + ENTRY_HEAD, len, &op);
			if (rc == 0)
				rc = pifs_meta_apply(m, index, &op, &rep, &scratch);
			if (rc < 0) {
				pifs_err(
				    "metadata log %s/wal: entry %" PRIu64 " at offset %zu checks "
				    "but cannot be applied after entry %" PRIu64 " (%s): refusing "
				    "to start; restore the metadata directory from another "
				    "metadata node or a backup",
				    w->dir, index, off, pifs_meta_index(m), strerror(-rc));
				rc = rc == -ENOMEM ? rc : -EBADMSG;
				goto out_free;
			}
		}
		off += ENTRY_HEAD + len + ENTRY_TAIL;
	}
	if (off < b.len) {
		if (ftruncate(w->fd, (off_t)off) < 0 || fsync(w->fd) < 0) {
			rc = -errno;
			goto out_free;
		}
		pifs_warn(
		    "metadata log %s/wal: cut %zu bytes of torn tail at offset %zu, after entry "
		    "%" PRIu64 " (a write interrupted by a crash); the entries before it were "
		    "replayed, nothing to do unless this happens without a crash",
		    w->dir, b.len - off, off, pifs_meta_index(m));
	}
	w->size = off;
	rc = 0;
out_free:
	pifs_buf_fini(&scratch);
	pifs_buf_fini(&b);
	return rc;
}

/* Open "wal", creating it (and syncing the directory) if needed. */
static int open_log(struct pifs_wal *w)
{
	w->fd = openat(w->dirfd, "wal", O_RDWR | O_APPEND | O_CLOEXEC);
	if (w->fd >= 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	w->fd = openat(w->dirfd, "wal", O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0 || fsync(w->dirfd) < 0)
		return -errno;
	return 0;
}

int pifs_wal_open(const char *dir, struct pifs_meta *m, struct pifs_wal **out)
{
	struct pifs_wal *w;
	int rc;

	*out = NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->dirfd = -1;
	pthread_mutex_init(&w->sync_mu, NULL);
	pifs_buf_init(&w->pending);
	w->dir = strdup(dir);
	if (!w->dir) {
		rc = -ENOMEM;
		goto out_close;
	}
	if (mkdir(dir, 0700) == 0) {
		rc = pifs_sync_parent(dir);
		if (rc < 0)
			goto out_close;
	} else if (errno != EEXIST) {
		rc = -errno;
		goto out_close;
	}
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		rc = -errno;
		goto out_close;
	}
	/* A snapshot that was being written when we stopped is useless. */
	unlinkat(w->dirfd, "snap.tmp", 0);
	rc = load_snapshot(w, m);
	if (rc == 0)
		rc = open_log(w);
	if (rc == 0)
		rc = replay(w, m);
	if (rc < 0)
		goto out_close;
	*out = w;
	return 0;

out_close:
	pifs_wal_close(w);
	return rc;
}

int pifs_wal_append(struct pifs_wal *w, uint64_t index, const void *entry, size_t len)
{
	uint8_t head[ENTRY_HEAD], tail[ENTRY_TAIL];
	size_t start = w->pending.len;
	int rc;

	if (len > PIFS_PROTO_MAX_MSG)
		return -EINVAL;
	rc = pifs_buf_reserve(&w->pending, ENTRY_HEAD + len + ENTRY_TAIL);
	if (rc < 0)
		return rc;
	pifs_be_put(head, len, 4);
	pifs_be_put(head + 4, index, 8);
	pifs_buf_append(&w->pending, head, sizeof(head));
	pifs_buf_append(&w->pending, entry, len);
	pifs_be_put(tail, XXH3_64bits(w->pending.p + start, ENTRY_HEAD + len), 8);
	pifs_buf_append(&w->pending, tail, sizeof(tail));
	return 0;
}

int pifs_wal_write(struct pifs_wal *w)
{
	int rc;

	if (w->pending.len == 0)
		return 0;
	rc = pifs_write_all(w->fd, w->pending.p, w->pending.len);
	if (rc < 0) {
		/* Leave no half entry for the next commit to write after: that
		 * would hide it from recovery behind a "torn tail". */
		if (ftruncate(w->fd, (off_t)w->size) < 0)
			pifs_err("metadata log %s/wal: cannot cut a failed write back to %" PRIu64
				 " bytes (%s): stop this metadata node and check its disk",
				 w->dir, w->size, strerror(errno));
		pifs_buf_reset(&w->pending);
		return rc;
	}
	w->size += w->pending.len;
	atomic_store(&w->unsynced, true);
	pifs_buf_reset(&w->pending);
	return 0;
}

int pifs_wal_sync(struct pifs_wal *w)
{
	int rc = 0;

	pthread_mutex_lock(&w->sync_mu);
	if (atomic_exchange(&w->unsynced, false) && fdatasync(w->fd) < 0) {
		rc = -errno;
		atomic_store(&w->unsynced, true);
		pifs_err("metadata log %s/wal: fdatasync failed (%s): what it held may not be on "
			 "the disk; stop this metadata node and check its disk",
			 w->dir, strerror(-rc));
	}
	pthread_mutex_unlock(&w->sync_mu);
	return rc;
}

bool pifs_wal_unsynced(struct pifs_wal *w)
{
	return atomic_load(&w->unsynced);
}

int pifs_wal_commit(struct pifs_wal *w)
{
	int rc = pifs_wal_write(w);

	return rc < 0 ? rc : pifs_wal_sync(w);
}

uint64_t pifs_wal_size(const struct pifs_wal *w)
{
	return w->size;
}

/* Where a snapshot streams to: the file, and the hash of what went in. */
struct snap_out {
	int fd;
	XXH3_state_t *hash;
	uint64_t len;
};

static int snap_write(struct snap_out *o, const void *p, size_t len)
{
	XXH3_64bits_update(o->hash, p, len);
	return pifs_write_all(o->fd, p, len);
}

static int snap_sink(void *ctx, const void *p, size_t len)
{
	struct snap_out *o = ctx;

	o->len += len;
	return snap_write(o, p, len);
}

/* Write the snapshot of @m into "snap.tmp" and sync it. */
static int write_snapshot(struct pifs_wal *w, const struct pifs_meta *m)
{
	struct snap_out o = {-1, XXH3_createState(), 0};
	uint8_t head[SNAP_HEAD], tail[SNAP_TAIL];
	int rc;

	if (!o.hash)
		return -ENOMEM;
	XXH3_64bits_reset(o.hash);
	o.fd = openat(w->dirfd, "snap.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (o.fd < 0) {
		rc = -errno;
		goto out_free;
	}
	pifs_be_put(head, SNAP_MAGIC, 4);
	pifs_be_put(head + 4, SNAP_VERSION, 4);
	pifs_be_put(head + 8, pifs_meta_index(m), 8);
	rc = snap_write(&o, head, sizeof(head));
	if (rc == 0)
		rc = pifs_meta_save_to(m, snap_sink, &o);
	if (rc == 0) {
		pifs_be_put(tail, o.len, 8);
		rc = snap_write(&o, tail, 8);
	}
	if (rc == 0) {
		pifs_be_put(tail + 8, XXH3_64bits_digest(o.hash), 8);
		rc = pifs_write_all(o.fd, tail + 8, 8);
	}
	if (rc == 0 && fsync(o.fd) < 0)
		rc = -errno;
	if (close(o.fd) < 0 && rc == 0)
		rc = -errno;
out_free:
	XXH3_freeState(o.hash);
	return rc;
}

int pifs_wal_snapshot(struct pifs_wal *w, const struct pifs_meta *m)
{
	int rc = write_snapshot(w, m);

	if (rc == 0 && renameat(w->dirfd, "snap.tmp", w->dirfd, "snap") < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(w->dirfd, "snap.tmp", 0);
		goto out_log;
	}
	/* From here the new snapshot stands; the old entries in the log are
	 * below its index, so a failure below leaves a log that replays. */
	if (fsync(w->dirfd) < 0 || ftruncate(w->fd, 0) < 0 || fsync(w->fd) < 0) {
		rc = -errno;
		goto out_log;
	}
	w->size = 0;
	atomic_store(&w->unsynced, false);
	return 0;

out_log:
	pifs_err("metadata log %s: cannot write a snapshot at entry %" PRIu64 " (%s); the "
		 "previous snapshot and the log stay in use: free disk space or check the disk",
		 w->dir, pifs_meta_index(m), strerror(-rc));
	return rc;
}

void pifs_wal_close(struct pifs_wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	pthread_mutex_destroy(&w->sync_mu);
	pifs_buf_fini(&w->pending);
	free(w->dir);
	free(w);
}
