/* store.h - the chunk store of one storage daemon, on its data disk.
 *
 * Layout under the data directory DATA:
 *   DATA/chunks/ab/cd/<32 hex digits>   one file per chunk, named by its id and
 *                                       fanned out by the first four hex digits;
 *                                       the file is the encoded frame (frame.h)
 *   DATA/tmp/                           chunks being written; emptied at open
 *   DATA/quarantine/<32 hex digits>     chunks that failed verification
 *   DATA/quarantine/<32 hex>.repaired   the same, once a good copy was stored
 *                                       here again
 *   DATA/lock                           held (flock) while a store is open
 *   DATA/scrub.last                     its time is the end of the last scrub
 *                                       (scrub.c)
 *
 * A chunk is written to tmp/ and renamed into place without replacing an
 * existing file, so a reader never sees half a chunk and two writers of the
 * same chunk store it once. Chunks are immutable and content-addressed: a put
 * of a chunk that is already here keeps the existing file (after checking it)
 * and sets its time to now, so that the file's time is always that of the
 * last upload of the chunk: garbage collection deletes nothing uploaded
 * within its grace (pifs_store_del_older).
 *
 * Thread-safe: the daemon's chunk workers share one store. */
#ifndef PIFS_STORE_H
#define PIFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"

/* pifs_store_put flags. */
#define PIFS_STORE_SYNC 0x1 /* fsync the file and its directory before returning */

struct pifs_store;

struct pifs_store_stat {
	uint64_t capacity; /* bytes of the file system holding DATA */
	uint64_t free;	   /* bytes available to this process there */
	uint64_t chunks;   /* chunk files */
	uint64_t bytes;	   /* their sizes, summed */
	uint64_t corrupt;  /* files in quarantine */
	uint64_t lost;	   /* quarantined chunks with no good copy stored here
			    * since (counted from DATA/quarantine at open) */
};

/* Open the store in @dir (borrowed; created if its parent exists), take its
 * lock, empty DATA/tmp and count the chunks. New chunks are refused while
 * storing them would leave less than @reserve bytes free. On success *@out is
 * the store, freed with pifs_store_close. Returns 0, -EBUSY (another process
 * holds the lock), -ENOENT (the parent of @dir does not exist), -ENOTDIR,
 * -ENAMETOOLONG or another -errno from the file system. */
int pifs_store_open(const char *dir, uint64_t reserve, struct pifs_store **out /* OUT */);

/* Release the lock and free @st. NULL-safe. */
void pifs_store_close(struct pifs_store *st);

/* Store the encoded frame @frame (@len bytes, borrowed) under the id in its
 * header. The caller has verified the frame (pifs_frame_verify): the store
 * checks only the header. A chunk already present is not rewritten; it is
 * compared with @frame and, if it differs, verified, and replaced when it
 * fails (it is then quarantined). @scratch (borrowed) is grown as needed for
 * that verification. Returns 0, -EBADMSG (the header does not parse),
 * -ENOSPC (the reserve would be crossed, or the disk is full) or -errno. */
int pifs_store_put(struct pifs_store *st, const void *frame, size_t len, unsigned flags,
		   struct pifs_buf *scratch);

/* A chunk being received in pieces is written as they arrive, to a file
 * under tmp/ that becomes the chunk only once the whole frame is verified:
 * begin, append each piece in order, then finish with the whole frame, or
 * abort. So the disk write of a large chunk is spread over its transfer
 * instead of holding the receiving thread once at the end. */
struct pifs_store_tmp;

/* Start a chunk of @len bytes whose id will be @id. Returns 0 with *@out
 * set, -ENOSPC (the reserve would be crossed), -ENOMEM or -errno. */
int pifs_store_begin(struct pifs_store *st, const struct pifs_chunk_id *id, size_t len,
		     struct pifs_store_tmp **out /* OUT */);

/* Write the next @len bytes at @p (borrowed). Returns 0 or -errno; after a
 * failure the caller aborts. */
int pifs_store_append(struct pifs_store_tmp *t, const void *p, size_t len);

/* The whole frame was appended and is @frame (@len bytes, borrowed, verified
 * by the caller): place it as pifs_store_put would store @frame, with the
 * same results. Consumes @t. -EINVAL when fewer or more than @len bytes
 * were appended. */
int pifs_store_finish(struct pifs_store *st, struct pifs_store_tmp *t, const void *frame,
		      size_t len, unsigned flags, struct pifs_buf *scratch);

/* Drop a chunk that will not be finished (its file is removed). NULL-safe. */
void pifs_store_abort(struct pifs_store *st, struct pifs_store_tmp *t);

/* Read chunk @id whole and verify it. On success *@frame is a malloc'd buffer
 * of *@len bytes that the caller frees with free(). A chunk that fails
 * verification (or whose header names another id) is moved to quarantine.
 * @scratch (borrowed) is grown to the chunk's raw length for the check.
 * Returns 0, -ENOENT, -EBADMSG (corrupt, now quarantined) or another -errno.
 * Of several calls that find the same corrupt file at once, one returns
 * -EBADMSG and the others -ENOENT: a corrupt copy is reported once. */
int pifs_store_get(struct pifs_store *st, const struct pifs_chunk_id *id, struct pifs_buf *scratch,
		   void **frame /* OUT */, size_t *len /* OUT */);

/* Re-read chunk @id from the disk rather than the page cache (clean cached
 * pages are dropped first and after) and verify it, as pifs_store_get does:
 * a chunk that fails is quarantined. For scrub, which must see what the disk
 * holds and should not push clients' data out of the cache. @scratch as for
 * pifs_store_get. Returns 0, -ENOENT, -EBADMSG (corrupt, now quarantined,
 * reported by this call alone, as for pifs_store_get) or another -errno. */
int pifs_store_verify(struct pifs_store *st, const struct pifs_chunk_id *id,
		      struct pifs_buf *scratch);

/* Make the @n chunks @ids (borrowed) durable: fsync each file and each
 * directory that holds one. Every chunk is tried; returns 0 or the first
 * -errno (-ENOENT for a chunk that is not here). */
int pifs_store_sync(struct pifs_store *st, const struct pifs_chunk_id *ids, size_t n);

/* Delete chunk @id. Returns 0, -ENOENT or -errno. */
int pifs_store_del(struct pifs_store *st, const struct pifs_chunk_id *id);

/* Delete chunk @id if its file was last written or touched before
 * @before_ns (CLOCK_REALTIME, ns), looking and unlinking under the lock that
 * every put of the chunk takes to touch or place it: a put either comes
 * first, and the chunk stays, or comes after, and stores it again. With
 * @dry, only say whether it would go. *@size (OUT) is the file's size.
 * Returns 1 (deleted, or would be), 0 (kept: written since), -ENOENT or
 * another -errno. */
int pifs_store_del_older(struct pifs_store *st, const struct pifs_chunk_id *id, int64_t before_ns,
			 bool dry, uint64_t *size /* OUT */);

/* Is chunk @id here (verified or not)? Returns 1, 0, or -errno. */
int pifs_store_has(struct pifs_store *st, const struct pifs_chunk_id *id);

/* Call @fn(@id, @size, @arg) for every chunk in the store, @size being the
 * bytes of its file, in no particular order; @id is borrowed for the call.
 * Chunks put or deleted meanwhile may be seen or not; @fn may itself put and
 * delete. Stops at the first non-zero return of @fn and returns it. Returns
 * 0, @fn's value, or -errno when a directory of the store cannot be read. */
int pifs_store_each(struct pifs_store *st,
		    int (*fn)(const struct pifs_chunk_id *id, uint64_t size, void *arg), void *arg);

/* Copy the ids of up to @cap lost chunks (quarantined, and not stored again
 * since) into @out (OUT). Returns how many there are, which may be more
 * than @cap. */
size_t pifs_store_lost(struct pifs_store *st, struct pifs_chunk_id *out /* OUT */, size_t cap);

/* Fill @out with the space of the disk and the store's counters. Returns 0 or
 * -errno from statvfs. */
int pifs_store_stat(struct pifs_store *st, struct pifs_store_stat *out /* OUT */);

#endif
