/* meta.h - the metadata state machine: the namespace and the cluster map.
 *
 * The whole metadata of a cluster is one deterministic state: inodes (with
 * attributes, xattrs, symlink targets, the chunk list of every regular file),
 * directory entries, chunk reference counts, and the cluster map (nodes,
 * weights, flags, epoch, replicas, chunk size). It changes only by applying
 * mutations (messages of kind MUT, proto.def), in log order; the same entries
 * applied in the same order give the same state, byte for byte (compare
 * pifs_meta_digest). Times come from the entries ("now", stamped by the
 * leader), never from the clock, so that replay is exact.
 *
 * Inode numbers start at 1 (the root, created by INIT) and are never reused.
 * Directory cookies are per directory, increasing from 3 (the client keeps 1
 * and 2 for "." and ".."), and never reused, so a readdir resumed at a
 * cookie neither skips nor repeats an entry that stayed.
 *
 * Semantics are those of a local POSIX file system, with these choices:
 * - before INIT every mutation and query fails with -EAGAIN; INIT again is
 *   -EEXIST;
 * - a directory's size is 4096 whatever it holds; blocks count 512-byte
 *   units of a regular file's chunk slots (holes take none), 0 otherwise;
 * - version is the data version: 1 at creation, +1 on every COMMIT and size
 *   change;
 * - LOOKUP resolves "." and ".." (the root is its own parent); RMDIR of ".."
 *   in the root names the root itself and fails with -EBUSY;
 * - MAP_GET always answers the whole map (R_MAP); a caller that already has
 *   its epoch just keeps what it has.
 * Memory: about 340 bytes per small file (its inode, its entry, one chunk
 * slot, the chunk, and their index slots): a million take about 330 MiB.
 *
 * Pure: no I/O, no locks, no globals. One thread at a time. */
#ifndef PIFS_META_H
#define PIFS_META_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

#define PIFS_META_ROOT 1
#define PIFS_META_NAME_MAX 255
#define PIFS_META_PATH_MAX 4095
#define PIFS_META_XATTR_MAX 65536 /* one value */

struct pifs_meta;

/* Figures for status and df. */
struct pifs_meta_stats {
	uint64_t epoch;
	uint32_t replicas;
	uint32_t chunk_size;
	uint64_t cluster_id;
	uint64_t index; /* last applied log index */
	uint64_t inodes;
	uint64_t logical;      /* sum of regular file sizes */
	uint64_t chunks;       /* distinct chunks referenced */
	uint64_t chunk_raw;    /* their raw bytes, each counted once */
	uint64_t chunk_stored; /* their stored (framed, maybe compressed) bytes, once */
	uint64_t chunk_refs;   /* references to them from files */
};

/* A new, empty state (index 0, no root until INIT is applied), or NULL. The
 * caller frees it with pifs_meta_free. */
struct pifs_meta *pifs_meta_new(void);

void pifs_meta_free(struct pifs_meta *m);

/* Apply the mutation @op (borrowed) as log entry @index, which must be the
 * last applied index + 1. @rep (OUT) gets the reply: R_ATTR, R_STATUS with 0,
 * or R_STATUS with -errno when the operation fails, in which case the state
 * is unchanged but for the index. Lists in @rep borrow @scratch, which is
 * reset first. Returns 0 when the entry was applied (whatever its outcome),
 * -EINVAL if @op is not a mutation or @index is out of order, -ENOMEM (the
 * state is then unusable: the caller must stop). */
int pifs_meta_apply(struct pifs_meta *m, uint64_t index, const struct pifs_msg *op,
		    struct pifs_msg *rep, struct pifs_buf *scratch);

/* Answer the query @q (kind QRY, or MAP_GET) into @rep (OUT), borrowing
 * @scratch as apply does. Returns 0 (the reply may carry -errno), or -EINVAL
 * for a message that is not a query. */
int pifs_meta_query(struct pifs_meta *m, const struct pifs_msg *q, struct pifs_msg *rep,
		    struct pifs_buf *scratch);

/* The last applied log index. */
uint64_t pifs_meta_index(const struct pifs_meta *m);

void pifs_meta_stats(const struct pifs_meta *m, struct pifs_meta_stats *st /* OUT */);

/* Node @id's entry in the map: 0 and its flags and weight, or -ENOENT. */
int pifs_meta_node(const struct pifs_meta *m, uint32_t id, uint32_t *flags /* OUT */,
		   uint32_t *weight /* OUT */);

/* Append a snapshot of the whole state (with its index) to @out; its last 8
 * bytes are an XXH3-64 of the rest. The same state always gives the same
 * bytes. Returns 0 or -ENOMEM (then @out is as it was). */
int pifs_meta_save(const struct pifs_meta *m, struct pifs_buf *out);

/* As pifs_meta_save, but hand the bytes in order to @sink in pieces of about
 * 64 KiB instead of keeping them, so that writing or hashing a large state
 * needs no copy of it: @sink(@ctx, @p, @len) borrows @p and returns 0 or
 * -errno; its first error stops the save and is returned. Returns 0, -ENOMEM
 * or @sink's error. */
int pifs_meta_save_to(const struct pifs_meta *m, int (*sink)(void *ctx, const void *p, size_t len),
		      void *ctx);

/* Replace the state of @m (which must be new) with the snapshot at @p (@len
 * bytes, borrowed). Every length, count, reference and link is checked: the
 * checksum, then that the entries form one tree from the root with right
 * link counts. Returns 0, -EINVAL if @m is not new, -EBADMSG for a malformed
 * snapshot, or -ENOMEM; on failure @m is left new and empty. */
int pifs_meta_load(struct pifs_meta *m, const void *p, size_t len);

/* XXH3-64 of pifs_meta_save's bytes, computed piecewise without holding
 * them all: equal states have equal digests. 0 when memory runs out. */
uint64_t pifs_meta_digest(const struct pifs_meta *m);

#endif
