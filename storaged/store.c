/* store.c - the chunk store: one file per chunk under DATA/chunks.
 *
 * Every path is opened relative to a descriptor of DATA, so that the store
 * keeps working with short relative names and a data directory renamed under
 * it cannot make it write somewhere else. Counters are atomics: the chunk
 * workers run put, get and delete at the same time, and the heartbeat reads
 * the figures without a lock. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"

/* The largest file a valid frame can be: the header and LZ4's worst case for
 * the largest chunk. Anything longer is corrupt, and is not read into RAM. */
#define MAX_FRAME_FILE                                                                             \
	((uint64_t)PIFS_FRAME_HDR + PIFS_FRAME_MAX_RAW + PIFS_FRAME_MAX_RAW / 255 + 16)

/* "chunks/ab/cd/" + 32 hex digits + NUL. */
#define CHUNK_PATH 46
/* "tmp/" + 32 hex digits + "." + a 20-digit counter + NUL. */
#define TMP_PATH 58
/* Chunks share STRIPES locks by id. A put holds its chunk's lock while it
 * touches a chunk that is already here or places a new one, and a delete
 * while it looks and unlinks, so that garbage collection's check of a
 * chunk's time and its unlink are one step against every upload of it. */
#define STRIPES 64

struct pifs_store {
	int dfd;    /* DATA */
	int lockfd; /* DATA/lock, flock'ed */
	char *dir;  /* owned, for messages */
	uint64_t reserve;
	_Atomic uint64_t chunks;
	_Atomic uint64_t bytes;
	_Atomic uint64_t corrupt;
	_Atomic uint64_t seq; /* names temporary files */
	pthread_mutex_t stripe[STRIPES];
	/* The lost chunks: quarantined, and not stored again since. An id
	 * enters and leaves under its stripe lock, so the set always agrees
	 * with the disk; @nlost lets puts skip the lock while it is empty. */
	pthread_mutex_t lost_lock;
	struct pifs_chunk_id *lost; /* owned; @nlost of @lost_cap, under @lost_lock */
	size_t lost_cap;
	_Atomic uint64_t nlost;
};

/* A quarantined chunk that has a good copy here again keeps its damaged
 * copy under its name with this suffix, so that a restart does not count it
 * as lost. */
#define REPAIRED ".repaired"

static pthread_mutex_t *stripe_of(struct pifs_store *st, const struct pifs_chunk_id *id)
{
	return &st->stripe[id->lo % STRIPES];
}

/* Add @id to the lost set. Returns 0 or -ENOMEM. */
static int lost_add(struct pifs_store *st, const struct pifs_chunk_id *id)
{
	size_t i, n;
	int rc = 0;

	pthread_mutex_lock(&st->lost_lock);
	n = atomic_load(&st->nlost);
	for (i = 0; i < n; i++)
		if (pifs_chunk_id_eq(&st->lost[i], id))
			goto out_unlock;
	if (n == st->lost_cap) {
		size_t cap = st->lost_cap ? 2 * st->lost_cap : 16;
		struct pifs_chunk_id *nl = realloc(st->lost, cap * sizeof(*nl));

		if (!nl) {
			rc = -ENOMEM;
			goto out_unlock;
		}
		st->lost = nl;
		st->lost_cap = cap;
	}
	st->lost[n] = *id;
	atomic_store(&st->nlost, n + 1);
out_unlock:
	pthread_mutex_unlock(&st->lost_lock);
	return rc;
}

/* Take @id out of the lost set. Returns whether it was there. */
static bool lost_remove(struct pifs_store *st, const struct pifs_chunk_id *id)
{
	bool found = false;
	size_t i, n;

	if (!atomic_load(&st->nlost))
		return false;
	pthread_mutex_lock(&st->lost_lock);
	n = atomic_load(&st->nlost);
	for (i = 0; i < n && !found; i++) {
		if (!pifs_chunk_id_eq(&st->lost[i], id))
			continue;
		st->lost[i] = st->lost[n - 1];
		atomic_store(&st->nlost, n - 1);
		found = true;
	}
	pthread_mutex_unlock(&st->lost_lock);
	return found;
}

/* Mark the chunk at @path as written now: for garbage collection, a put of
 * a chunk that is already here is an upload like any other. Called with the
 * chunk's stripe lock held. */
static int touch(struct pifs_store *st, const char *path)
{
	return utimensat(st->dfd, path, NULL, 0) < 0 ? -errno : 0;
}

static void chunk_path(const struct pifs_chunk_id *id, char out[CHUNK_PATH], char hex[33])
{
	pifs_chunk_id_hex(id, hex);
	snprintf(out, CHUNK_PATH, "chunks/%.2s/%.2s/%s", hex, hex + 2, hex);
}

/* The directory part of a chunk path: "chunks/ab/cd". */
static void dir_of(const char *path, char out[CHUNK_PATH])
{
	memcpy(out, path, 12);
	out[12] = '\0';
}

static int mkdir_at(int dfd, const char *name)
{
	if (mkdirat(dfd, name, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int fsync_at(int dfd, const char *name, int oflags)
{
	int fd = openat(dfd, name, oflags | O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly @len bytes; a file that ends early reads as -EBADMSG. */
static int read_all(int fd, uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Remove every file in DATA/tmp: writes that a crash interrupted. */
static int clean_tmp(struct pifs_store *st)
{
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	fd = openat(st->dfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) < 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
	}
	closedir(d);
	return rc;
}

/* Call @fn for every entry of the directory @name under @dfd but "." and "..".
 * Stops at the first error of @fn. */
static int each_entry(int dfd, const char *name, int (*fn)(int dfd, const char *name, void *arg),
		      void *arg)
{
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (rc == 0 && (e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			rc = fn(fd, e->d_name, arg);
	closedir(d);
	return rc;
}

struct tally {
	uint64_t files, bytes;
};

/* Count a file named by a chunk id; anything else is not the store's. */
static int count_file(int dfd, const char *name, void *arg)
{
	struct pifs_chunk_id id;
	struct tally *t = arg;
	struct stat sb;

	if (strlen(name) != 32 || pifs_chunk_id_parse(name, &id) < 0)
		return 0;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISREG(sb.st_mode)) {
		t->files++;
		t->bytes += (uint64_t)sb.st_size;
	}
	return 0;
}

static int count_level2(int dfd, const char *name, void *arg)
{
	return strlen(name) == 2 ? each_entry(dfd, name, count_file, arg) : 0;
}

static int count_level1(int dfd, const char *name, void *arg)
{
	return strlen(name) == 2 ? each_entry(dfd, name, count_level2, arg) : 0;
}

/* Count a file of DATA/quarantine, and note its chunk as lost when the
 * store holds no copy of it and it was never repaired. */
static int count_quarantined(int dfd, const char *name, void *arg)
{
	struct pifs_store *st = arg;
	char hex[33], path[CHUNK_PATH];
	struct pifs_chunk_id id;
	struct stat sb;
	size_t len = strlen(name);

	if (len == 32 + strlen(REPAIRED) && strcmp(name + 32, REPAIRED) == 0) {
		memcpy(hex, name, 32);
		hex[32] = '\0';
		if (pifs_chunk_id_parse(hex, &id) == 0)
			atomic_fetch_add(&st->corrupt, 1);
		return 0;
	}
	if (len != 32 || pifs_chunk_id_parse(name, &id) < 0)
		return 0;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(sb.st_mode))
		return 0;
	atomic_fetch_add(&st->corrupt, 1);
	chunk_path(&id, path, hex);
	if (faccessat(st->dfd, path, F_OK, AT_EACCESS) == 0)
		return 0;
	if (errno != ENOENT)
		return -errno;
	return lost_add(st, &id);
}

int pifs_store_open(const char *dir, uint64_t reserve, struct pifs_store **out)
{
	struct tally chunks = {0, 0};
	struct pifs_store *st;
	int rc, i;

	if (strlen(dir) >= PATH_MAX - CHUNK_PATH)
		return -ENAMETOOLONG;
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_init(&st->stripe[i], NULL);
	pthread_mutex_init(&st->lost_lock, NULL);
	atomic_init(&st->corrupt, 0);
	atomic_init(&st->nlost, 0);
	st->dfd = st->lockfd = -1;
	st->reserve = reserve;
	st->dir = strdup(dir);
	if (!st->dir) {
		rc = -ENOMEM;
		goto out_free;
	}
	/* One level only: a missing parent is usually a disk that is not
	 * mounted, and the chunks must not land on the SD card instead. */
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		goto out_free;
	}
	st->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->dfd < 0) {
		rc = -errno;
		goto out_free;
	}
	st->lockfd = openat(st->dfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (st->lockfd < 0) {
		rc = -errno;
		goto out_free;
	}
	if (flock(st->lockfd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto out_free;
	}
	if ((rc = mkdir_at(st->dfd, "chunks")) < 0 || (rc = mkdir_at(st->dfd, "tmp")) < 0 ||
	    (rc = mkdir_at(st->dfd, "quarantine")) < 0)
		goto out_free;
	rc = clean_tmp(st);
	if (rc < 0)
		goto out_free;
	rc = each_entry(st->dfd, "chunks", count_level1, &chunks);
	if (rc == 0)
		rc = each_entry(st->dfd, "quarantine", count_quarantined, st);
	if (rc < 0)
		goto out_free;
	atomic_init(&st->chunks, chunks.files);
	atomic_init(&st->bytes, chunks.bytes);
	atomic_init(&st->seq, 0);
	if (atomic_load(&st->nlost))
		pifs_warn("%s: %llu chunks in %s/quarantine have no good copy here; files that "
			  "use them read as errors (EIO) unless another node has one: bring back "
			  "nodes that are down, or restore those files; delete a quarantined "
			  "chunk that no file needs any more and restart to stop counting it",
			  dir, (unsigned long long)atomic_load(&st->nlost), dir);
	*out = st;
	return 0;
out_free:
	pifs_store_close(st);
	return rc;
}

void pifs_store_close(struct pifs_store *st)
{
	int i;

	if (!st)
		return;
	for (i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&st->stripe[i]);
	pthread_mutex_destroy(&st->lost_lock);
	free(st->lost);
	if (st->lockfd >= 0)
		close(st->lockfd); /* releases the flock */
	if (st->dfd >= 0)
		close(st->dfd);
	free(st->dir);
	free(st);
}

/* Move chunk @id, whose file at @path is @sb (read through an open
 * descriptor) and failed verification, out of the store, so that it is never
 * served again and heal sees it as missing. Two readers (a client's read and
 * a repair fetch, say) may find the same bad file at once: under the stripe
 * lock, only the one that still finds that very file at @path moves it.
 * Returns -EBADMSG when this call dealt with the bad copy (the caller reports
 * it, once), or -ENOENT when another call already had: the chunk is simply
 * not here now. */
static int quarantine(struct pifs_store *st, const struct pifs_chunk_id *id, const char *path,
		      const char *hex, const struct stat *sb, int why)
{
	pthread_mutex_t *lock = stripe_of(st, id);
	char dst[CHUNK_PATH];
	struct stat now;
	bool gone;
	int rc = -EBADMSG;

	snprintf(dst, sizeof(dst), "quarantine/%s", hex);
	pthread_mutex_lock(lock);
	if (fstatat(st->dfd, path, &now, AT_SYMLINK_NOFOLLOW) < 0)
		gone = errno == ENOENT;
	else
		gone = now.st_ino != sb->st_ino || now.st_dev != sb->st_dev;
	if (gone) {
		/* Moved already, and maybe even replaced by a good copy,
		 * which must stay. */
		rc = -ENOENT;
		goto out_unlock;
	}
	if (renameat(st->dfd, path, st->dfd, dst) < 0) {
		if (errno == ENOENT) {
			rc = -ENOENT;
			goto out_unlock;
		}
		pifs_err("chunk %s in %s failed verification (%s) but could not be moved to "
			 "quarantine: %s; move or delete %s/%s by hand",
			 hex, st->dir, strerror(-why), strerror(errno), st->dir, path);
		goto out_unlock;
	}
	atomic_fetch_sub(&st->chunks, 1);
	atomic_fetch_sub(&st->bytes, (uint64_t)sb->st_size);
	atomic_fetch_add(&st->corrupt, 1);
	if (lost_add(st, id) < 0)
		pifs_warn("chunk %s in %s: out of memory noting it as lost; status undercounts "
			  "lost chunks until the daemon restarts",
			  hex, st->dir);
	pifs_warn("chunk %s in %s failed verification (%s): moved to %s/%s; a replica will "
		  "replace it",
		  hex, st->dir, strerror(-why), st->dir, dst);
out_unlock:
	pthread_mutex_unlock(lock);
	return rc;
}

/* Chunk @id was just placed, with its stripe lock held: if it was lost, it
 * is not any more, and its damaged copy is renamed so that a restart does
 * not count it again. */
static void found_again(struct pifs_store *st, const struct pifs_chunk_id *id, const char *hex)
{
	char src[CHUNK_PATH], dst[CHUNK_PATH + sizeof(REPAIRED)];

	if (!lost_remove(st, id))
		return;
	snprintf(src, sizeof(src), "quarantine/%s", hex);
	snprintf(dst, sizeof(dst), "quarantine/%s" REPAIRED, hex);
	if (renameat(st->dfd, src, st->dfd, dst) < 0 && errno != ENOENT)
		pifs_warn("chunk %s in %s has a good copy again, but %s/%s could not be renamed "
			  "to %s: %s; a restart counts the chunk as lost until you rename it by "
			  "hand",
			  hex, st->dir, st->dir, src, dst, strerror(errno));
}

/* Check a frame read from disk: it parses, names @id and hashes to it.
 * Returns 0, -ENOMEM, or the frame's own error (-EBADMSG, -EPROTO). */
static int check_frame(const uint8_t *p, size_t len, const struct pifs_chunk_id *id,
		       struct pifs_buf *scratch)
{
	struct pifs_frame_hdr h;
	int rc;

	rc = pifs_frame_parse(p, len, &h);
	if (rc < 0)
		return rc;
	if (!pifs_chunk_id_eq(&h.id, id))
		return -EBADMSG;
	pifs_buf_reset(scratch);
	if (pifs_buf_reserve(scratch, h.raw_len ? h.raw_len : 1) < 0)
		return -ENOMEM;
	return pifs_frame_verify(p, len, scratch->p, scratch->cap);
}

/* Read the open chunk file @fd (of @path) whole into a malloc'd buffer and
 * check it; a chunk that fails is quarantined. */
static int load(struct pifs_store *st, int fd, const char *path, const char *hex,
		const struct pifs_chunk_id *id, struct pifs_buf *scratch, uint8_t **frame,
		size_t *len)
{
	struct stat sb;
	uint8_t *p;
	size_t size;
	int rc;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size < PIFS_FRAME_HDR || (uint64_t)sb.st_size > MAX_FRAME_FILE)
		return quarantine(st, id, path, hex, &sb, -EBADMSG);
	size = (size_t)sb.st_size;
	p = malloc(size);
	if (!p)
		return -ENOMEM;
	rc = read_all(fd, p, size);
	if (rc == 0)
		rc = check_frame(p, size, id, scratch);
	if (rc == -EBADMSG || rc == -EPROTO) {
		/* This build accepted the frame when it was stored: another
		 * version on disk now is damage, not an upgrade. */
		rc = quarantine(st, id, path, hex, &sb, rc);
	}
	if (rc < 0) {
		free(p);
		return rc;
	}
	*frame = p;
	*len = size;
	return 0;
}

/* Make a placed chunk durable: the file, then the directory entry. */
static int sync_placed(struct pifs_store *st, const char *path)
{
	char dir[CHUNK_PATH];
	int rc = fsync_at(st->dfd, path, 0);

	dir_of(path, dir);
	return rc < 0 ? rc : fsync_at(st->dfd, dir, O_DIRECTORY);
}

/* A chunk with this id is already here: keep it if it is sound. Returns 0
 * (kept), -EBADMSG (it was corrupt and is now quarantined) or -errno. */
static int keep_existing(struct pifs_store *st, int fd, const char *path, const char *hex,
			 const struct pifs_chunk_id *id, const void *frame, size_t len,
			 struct pifs_buf *scratch)
{
	struct stat sb;
	uint8_t *p;
	size_t plen;
	int rc;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if ((uint64_t)sb.st_size == len) {
		/* The new frame was verified by the caller: equal bytes need
		 * no second hash. */
		p = malloc(len);
		if (!p)
			return -ENOMEM;
		rc = read_all(fd, p, len);
		if (rc == 0 && memcmp(p, frame, len) == 0) {
			free(p);
			return 0;
		}
		free(p);
		if (rc < 0 && rc != -EBADMSG)
			return rc;
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
	}
	/* Another encoding of the same bytes (another LZ4 build) is fine if it
	 * verifies; load quarantines it if it does not. */
	rc = load(st, fd, path, hex, id, scratch, &p, &plen);
	if (rc == 0)
		free(p);
	return rc;
}

/* Create chunks/ab and chunks/ab/cd; with @sync, make the new entries durable. */
static int make_dirs(struct pifs_store *st, const char *path, int sync)
{
	char d1[CHUNK_PATH], d2[CHUNK_PATH];
	int rc;

	snprintf(d1, sizeof(d1), "%.9s", path);
	dir_of(path, d2);
	if ((rc = mkdir_at(st->dfd, d1)) < 0 || (rc = mkdir_at(st->dfd, d2)) < 0)
		return rc;
	if (!sync)
		return 0;
	if ((rc = fsync_at(st->dfd, "chunks", O_DIRECTORY)) < 0)
		return rc;
	return fsync_at(st->dfd, d1, O_DIRECTORY);
}

/* Rename @tmp to @path unless @path exists, and then touch the chunk that
 * is there. Called with the chunk's stripe lock held. Returns 1 when placed,
 * 0 when another writer placed the same chunk first, or -errno. */
static int place(struct pifs_store *st, const char *tmp, const char *path, int sync)
{
	int rc, tries;

	for (tries = 0; tries < 3; tries++) {
		if (renameat2(st->dfd, tmp, st->dfd, path, RENAME_NOREPLACE) == 0)
			return 1;
		if (errno == EEXIST) {
			rc = touch(st, path);
			/* Quarantined in between: place ours after all. */
			if (rc == -ENOENT)
				continue;
			unlinkat(st->dfd, tmp, 0);
			return rc;
		}
		if (errno == EINVAL) {
			/* A file system without RENAME_NOREPLACE (a network
			 * mount): the chunk is the same bytes either way, only
			 * the counters may count a racing twin twice. */
			if (renameat(st->dfd, tmp, st->dfd, path) == 0)
				return 1;
		}
		if (errno != ENOENT)
			break;
		rc = make_dirs(st, path, sync);
		if (rc < 0)
			return rc;
	}
	return -errno;
}

static int room_for(struct pifs_store *st, size_t len)
{
	struct statvfs vfs;
	uint64_t avail;

	if (fstatvfs(st->dfd, &vfs) < 0)
		return -errno;
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	return avail < st->reserve || avail - st->reserve < len ? -ENOSPC : 0;
}

/* A chunk file being written under tmp/ before it is placed. */
struct pifs_store_tmp {
	int fd;
	size_t len; /* bytes written */
	char name[TMP_PATH];
};

static int tmp_create(struct pifs_store *st, const char *hex, struct pifs_store_tmp *t)
{
	snprintf(t->name, sizeof(t->name), "tmp/%s.%llu", hex,
		 (unsigned long long)atomic_fetch_add(&st->seq, 1));
	t->len = 0;
	t->fd = openat(st->dfd, t->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return t->fd < 0 ? -errno : 0;
}

static void tmp_discard(struct pifs_store *st, struct pifs_store_tmp *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
	unlinkat(st->dfd, t->name, 0);
}

/* Place the written temporary file @t as chunk @id at @path, under the
 * stripe lock @lock; @t is closed and gone either way. */
static int tmp_place(struct pifs_store *st, pthread_mutex_t *lock, const struct pifs_chunk_id *id,
		     const char *path, const char *hex, struct pifs_store_tmp *t, int sync)
{
	int rc = 0;

	if (sync && fsync(t->fd) < 0)
		rc = -errno;
	/* Start writing the chunk out now rather than when the kernel's dirty
	 * pages pile up: a later fsync (CHUNK_SYNC) then finds it mostly on
	 * the disk, and no burst of writeback stalls the metadata log's
	 * syncs behind gigabytes of chunks. Only a hint: its failure changes
	 * nothing. */
	if (!sync)
		sync_file_range(t->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	if (close(t->fd) < 0 && rc == 0)
		rc = -errno;
	t->fd = -1;
	if (rc == 0) {
		pthread_mutex_lock(lock);
		rc = place(st, t->name, path, sync);
		if (rc == 1)
			found_again(st, id, hex);
		pthread_mutex_unlock(lock);
	}
	if (rc < 0) {
		unlinkat(st->dfd, t->name, 0);
		return rc;
	}
	if (rc == 1) {
		atomic_fetch_add(&st->chunks, 1);
		atomic_fetch_add(&st->bytes, t->len);
	}
	/* A twin placed by another writer may not be durable yet: sync the
	 * file at its final name, whoever wrote it. */
	return sync ? sync_placed(st, path) : 0;
}

/* Write @frame to a new temporary file and place it at @path, under the
 * stripe lock @lock. */
static int write_new(struct pifs_store *st, pthread_mutex_t *lock, const struct pifs_chunk_id *id,
		     const char *path, const char *hex, const void *frame, size_t len, int sync)
{
	struct pifs_store_tmp t;
	int rc = tmp_create(st, hex, &t);

	if (rc < 0)
		return rc;
	rc = write_all(t.fd, frame, len);
	if (rc < 0) {
		tmp_discard(st, &t);
		return rc;
	}
	t.len = len;
	return tmp_place(st, lock, id, path, hex, &t, sync);
}

/* The copy of chunk @h already at @path (open as @fd): 1 when it is kept
 * (sound, and now touched and synced as asked), 0 when @frame must be
 * stored after all, or -errno. */
static int keep_if_there(struct pifs_store *st, pthread_mutex_t *lock, int fd, const char *path,
			 const char *hex, const struct pifs_frame_hdr *h, const void *frame,
			 size_t len, int sync, struct pifs_buf *scratch)
{
	int rc = keep_existing(st, fd, path, hex, &h->id, frame, len, scratch);

	if (rc == 0) {
		pthread_mutex_lock(lock);
		rc = touch(st, path);
		pthread_mutex_unlock(lock);
		if (rc == 0 && sync)
			rc = sync_placed(st, path);
		if (rc == 0)
			return 1;
	}
	/* -EBADMSG: the old copy is in quarantine now; -ENOENT: it was
	 * deleted since it was read (garbage collection, or heal dropping a
	 * surplus copy). Either way, store this one. */
	return rc == -EBADMSG || rc == -ENOENT ? 0 : rc;
}

/* Where chunk frame @frame goes: its header in @h, its path and stripe lock;
 * then whether a copy is there already (see keep_if_there). */
static int existing(struct pifs_store *st, const void *frame, size_t len, int sync,
		    struct pifs_buf *scratch, struct pifs_frame_hdr *h, char path[CHUNK_PATH],
		    char hex[33], pthread_mutex_t **lock)
{
	int fd, rc;

	rc = pifs_frame_parse(frame, len, h);
	if (rc < 0)
		return rc;
	chunk_path(&h->id, path, hex);
	*lock = stripe_of(st, &h->id);
	fd = openat(st->dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = keep_if_there(st, *lock, fd, path, hex, h, frame, len, sync, scratch);
	close(fd);
	return rc;
}

int pifs_store_put(struct pifs_store *st, const void *frame, size_t len, unsigned flags,
		   struct pifs_buf *scratch)
{
	char path[CHUNK_PATH], hex[33];
	struct pifs_frame_hdr h;
	pthread_mutex_t *lock;
	int sync = !!(flags & PIFS_STORE_SYNC);
	int rc;

	rc = existing(st, frame, len, sync, scratch, &h, path, hex, &lock);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	rc = room_for(st, len);
	if (rc < 0)
		return rc;
	return write_new(st, lock, &h.id, path, hex, frame, len, sync);
}

int pifs_store_begin(struct pifs_store *st, const struct pifs_chunk_id *id, size_t len,
		     struct pifs_store_tmp **out)
{
	struct pifs_store_tmp *t;
	char hex[33];
	int rc;

	*out = NULL;
	rc = room_for(st, len);
	if (rc < 0)
		return rc;
	t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	pifs_chunk_id_hex(id, hex);
	rc = tmp_create(st, hex, t);
	if (rc < 0) {
		free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int pifs_store_append(struct pifs_store_tmp *t, const void *p, size_t len)
{
	int rc = write_all(t->fd, p, len);

	if (rc == 0)
		t->len += len;
	return rc;
}

int pifs_store_finish(struct pifs_store *st, struct pifs_store_tmp *t, const void *frame,
		      size_t len, unsigned flags, struct pifs_buf *scratch)
{
	char path[CHUNK_PATH], hex[33];
	struct pifs_frame_hdr h;
	pthread_mutex_t *lock;
	int sync = !!(flags & PIFS_STORE_SYNC);
	int rc;

	if (t->len != len) {
		pifs_store_abort(st, t);
		return -EINVAL;
	}
	rc = existing(st, frame, len, sync, scratch, &h, path, hex, &lock);
	if (rc != 0) {
		pifs_store_abort(st, t);
		return rc < 0 ? rc : 0;
	}
	rc = tmp_place(st, lock, &h.id, path, hex, t, sync);
	free(t);
	return rc;
}

void pifs_store_abort(struct pifs_store *st, struct pifs_store_tmp *t)
{
	if (!t)
		return;
	tmp_discard(st, t);
	free(t);
}

int pifs_store_get(struct pifs_store *st, const struct pifs_chunk_id *id, struct pifs_buf *scratch,
		   void **frame, size_t *len)
{
	char path[CHUNK_PATH], hex[33];
	uint8_t *p;
	int fd, rc;

	chunk_path(id, path, hex);
	fd = openat(st->dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = load(st, fd, path, hex, id, scratch, &p, len);
	close(fd);
	if (rc == 0)
		*frame = p;
	return rc;
}

int pifs_store_verify(struct pifs_store *st, const struct pifs_chunk_id *id,
		      struct pifs_buf *scratch)
{
	char path[CHUNK_PATH], hex[33];
	uint8_t *p;
	size_t len;
	int fd, rc;

	chunk_path(id, path, hex);
	fd = openat(st->dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	rc = load(st, fd, path, hex, id, scratch, &p, &len);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	if (rc == 0)
		free(p);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	const struct pifs_chunk_id *x = a, *y = b;

	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

int pifs_store_sync(struct pifs_store *st, const struct pifs_chunk_id *ids, size_t n)
{
	char path[CHUNK_PATH], hex[33], dir[CHUNK_PATH], last[CHUNK_PATH] = "";
	struct pifs_chunk_id *sorted;
	int rc = 0, r;
	size_t i;

	if (n == 0)
		return 0;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	memcpy(sorted, ids, n * sizeof(*sorted));
	/* Sorted by id, the chunks of one directory are neighbours: each
	 * directory is synced once, after its files. */
	qsort(sorted, n, sizeof(*sorted), cmp_id);
	for (i = 0; i < n; i++) {
		chunk_path(&sorted[i], path, hex);
		dir_of(path, dir);
		if (last[0] && strcmp(dir, last) != 0) {
			r = fsync_at(st->dfd, last, O_DIRECTORY);
			rc = rc ? rc : r;
			last[0] = '\0';
		}
		r = fsync_at(st->dfd, path, 0);
		rc = rc ? rc : r;
		if (r == 0)
			memcpy(last, dir, sizeof(last));
	}
	if (last[0]) {
		r = fsync_at(st->dfd, last, O_DIRECTORY);
		rc = rc ? rc : r;
	}
	free(sorted);
	return rc;
}

/* Delete the chunk at @path, whose file is @sb, with its stripe lock held. */
static int unlink_chunk(struct pifs_store *st, const char *path, const struct stat *sb)
{
	if (unlinkat(st->dfd, path, 0) < 0)
		return -errno;
	atomic_fetch_sub(&st->chunks, 1);
	atomic_fetch_sub(&st->bytes, (uint64_t)sb->st_size);
	return 0;
}

int pifs_store_del(struct pifs_store *st, const struct pifs_chunk_id *id)
{
	pthread_mutex_t *lock = stripe_of(st, id);
	char path[CHUNK_PATH], hex[33];
	struct stat sb;
	int rc;

	chunk_path(id, path, hex);
	pthread_mutex_lock(lock);
	rc = fstatat(st->dfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0 ? -errno
								  : unlink_chunk(st, path, &sb);
	pthread_mutex_unlock(lock);
	return rc;
}

int pifs_store_del_older(struct pifs_store *st, const struct pifs_chunk_id *id, int64_t before_ns,
			 bool dry, uint64_t *size)
{
	pthread_mutex_t *lock = stripe_of(st, id);
	char path[CHUNK_PATH], hex[33];
	struct stat sb;
	int64_t mtime;
	int rc;

	chunk_path(id, path, hex);
	pthread_mutex_lock(lock);
	if (fstatat(st->dfd, path, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = -errno;
		goto out_unlock;
	}
	mtime = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	*size = (uint64_t)sb.st_size;
	rc = 0;
	if (mtime >= before_ns)
		goto out_unlock;
	rc = dry ? 1 : unlink_chunk(st, path, &sb);
	if (rc == 0)
		rc = 1;
out_unlock:
	pthread_mutex_unlock(lock);
	return rc;
}

int pifs_store_has(struct pifs_store *st, const struct pifs_chunk_id *id)
{
	char path[CHUNK_PATH], hex[33];

	chunk_path(id, path, hex);
	if (faccessat(st->dfd, path, F_OK, AT_EACCESS) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

struct walk {
	int (*fn)(const struct pifs_chunk_id *id, uint64_t size, void *arg);
	void *arg;
};

static int walk_file(int dfd, const char *name, void *arg)
{
	struct walk *wk = arg;
	struct pifs_chunk_id id;
	struct stat sb;

	if (strlen(name) != 32 || pifs_chunk_id_parse(name, &id) < 0)
		return 0;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISREG(sb.st_mode))
		return 0;
	return wk->fn(&id, (uint64_t)sb.st_size, wk->arg);
}

static int walk_level2(int dfd, const char *name, void *arg)
{
	return strlen(name) == 2 ? each_entry(dfd, name, walk_file, arg) : 0;
}

static int walk_level1(int dfd, const char *name, void *arg)
{
	return strlen(name) == 2 ? each_entry(dfd, name, walk_level2, arg) : 0;
}

int pifs_store_each(struct pifs_store *st,
		    int (*fn)(const struct pifs_chunk_id *id, uint64_t size, void *arg), void *arg)
{
	struct walk wk = {fn, arg};

	return each_entry(st->dfd, "chunks", walk_level1, &wk);
}

size_t pifs_store_lost(struct pifs_store *st, struct pifs_chunk_id *out, size_t cap)
{
	size_t n, i;

	pthread_mutex_lock(&st->lost_lock);
	n = atomic_load(&st->nlost);
	for (i = 0; i < n && i < cap; i++)
		out[i] = st->lost[i];
	pthread_mutex_unlock(&st->lost_lock);
	return n;
}

int pifs_store_stat(struct pifs_store *st, struct pifs_store_stat *out)
{
	struct statvfs vfs;

	if (fstatvfs(st->dfd, &vfs) < 0)
		return -errno;
	out->capacity = (uint64_t)vfs.f_blocks * vfs.f_frsize;
	out->free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	out->chunks = atomic_load(&st->chunks);
	out->bytes = atomic_load(&st->bytes);
	out->corrupt = atomic_load(&st->corrupt);
	out->lost = atomic_load(&st->nlost);
	return 0;
}
