/* data.h - the file data of a mount: per-inode state, write buffers, the
 * upload and prefetch pools, reads through the chunk cache, commits.
 *
 * Every open handle of an inode in this mount shares one struct pifs_file,
 * keyed by inode number and refcounted. Writes go into chunk-sized buffers;
 * a buffer whose written extent reaches the end of its chunk is uploaded at
 * once by the upload pool (hashing, compression and the network stay off the
 * FUSE threads); flush uploads the rest and commits the new chunk list, so
 * that close-to-open holds: what one mount closed, another sees on open. A
 * file written or held open for long commits the chunks stored so far in
 * steps, so that every chunk is committed within 30 s of its upload (garbage
 * collection, docs/design.md); a chunk whose commit was delayed longer is
 * looked for on the nodes first and fails the file with EIO if gone. An
 * upload or commit that failed is remembered and returned by the next write,
 * flush, fsync and close: data is never lost silently.
 *
 * Thread-safe. Functions return 0, a count, or -errno for FUSE as it is. */
#ifndef PIFS_CLIENT_DATA_H
#define PIFS_CLIENT_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cluster.h"
#include "proto.h"

struct pifs_data;
struct pifs_file;

/* The data layer of a mount on @cl (borrowed; it must outlive it), with a
 * chunk cache of @cache_bytes, and its worker threads. Returns 0, -EINVAL
 * when the map has no chunk size yet, or -errno; *@out is freed with
 * pifs_data_free. */
int pifs_data_new(struct pifs_cluster *cl, uint64_t cache_bytes, struct pifs_data **out /* OUT */);

/* Stop the workers (after the queued uploads are done) and free everything,
 * the state of files still open included: flush them first. NULL-safe. */
void pifs_data_free(struct pifs_data *d);

/* Open a handle on the inode @attr->ino with the chunk list @refs (both
 * borrowed, from an OPEN reply). A state already here with local changes is
 * kept; otherwise it takes the server's list and size. *@keep_cache says
 * whether the kernel's page cache of the inode is still right (this mount
 * saw this data version and has no local changes). *@out is released with
 * pifs_data_release. Returns 0, -EBADMSG for a malformed list, or -ENOMEM. */
int pifs_data_open(struct pifs_data *d, const struct pifs_attr *attr, const struct pifs_list *refs,
		   bool *keep_cache /* OUT */, struct pifs_file **out /* OUT */);

/* Close the handle @f: flush what is left. Returns the flush's error. */
int pifs_data_release(struct pifs_data *d, struct pifs_file *f);

/* The state of inode @ino if some handle has it open, with a reference that
 * the caller drops with pifs_data_put; NULL otherwise. */
struct pifs_file *pifs_data_find(struct pifs_data *d, uint64_t ino);

void pifs_data_put(struct pifs_data *d, struct pifs_file *f);

/* Read up to @size bytes at @off into @buf: short only at the end of the
 * file. Returns the count, -EIO when a chunk that exists could not be read
 * from any node, or -ENOMEM. */
ssize_t pifs_data_read(struct pifs_data *d, struct pifs_file *f, void *buf, size_t size,
		       uint64_t off);

/* Write @size bytes of @buf at @off (at the end of the file when @append).
 * Returns the count, the remembered error of a failed upload, -EFBIG past
 * the largest file offset, -EIO or -ENOMEM. Waits while too many uploads
 * are queued. */
ssize_t pifs_data_write(struct pifs_data *d, struct pifs_file *f, const void *buf, size_t size,
			uint64_t off, bool append);

/* Upload every dirty buffer of @f, wait for its uploads and commit the
 * chunk list, size and mtime. A file unlinked meanwhile commits nothing and
 * succeeds. Returns 0, the remembered error, or the COMMIT's -errno. */
int pifs_data_flush(struct pifs_data *d, struct pifs_file *f);

/* Flush, then make the chunks written since the last fsync durable on the
 * nodes that stored them, and the metadata log on its node (META_SYNC, which
 * covers the chunk lists committed since). A chunk counts as durable when one of its nodes
 * synced it (a node that died meanwhile is heal's to make up). Returns 0;
 * -EIO (-ENOSPC when a node said so) when some chunk is durable on no node,
 * which the next fsync tries again; the flush's error; or -ENOMEM. */
int pifs_data_fsync(struct pifs_data *d, struct pifs_file *f);

/* Make every metadata change acknowledged so far durable on the metadata
 * node's disk (fsync, fsyncdir). Returns 0 or the call's -errno. */
int pifs_data_sync_meta(struct pifs_data *d);

/* Flush every open file (at unmount). Returns 0 or the first -errno. */
int pifs_data_flush_all(struct pifs_data *d);

/* After a SETATTR with a new size acknowledged as @attr (borrowed): drop the
 * chunk slots past the size and take the attributes. */
void pifs_data_truncated(struct pifs_data *d, struct pifs_file *f, const struct pifs_attr *attr);

/* Whether @f has data the server does not have yet. */
bool pifs_data_dirty(struct pifs_data *d, struct pifs_file *f);

/* Where the attributes of pifs_data_attr come from. */
enum pifs_attr_from {
	PIFS_ATTR_SERVER, /* @attr is what the server said */
	PIFS_ATTR_GONE,	  /* the server no longer knows the inode (unlinked) */
	PIFS_ATTR_HELD,	  /* the server cannot be asked (no metadata leader) */
};

/* Attributes for the kernel. PIFS_ATTR_SERVER: @attr (IN/OUT) is what the
 * server said, and an inode with local changes gets its local size and
 * mtime. Otherwise (OUT) an inode open here gets its last attributes with
 * its local size and mtime, and nlink 0 when it is GONE. Returns 0, or
 * -ENOENT when it is not open here and the server did not answer for it. */
int pifs_data_attr(struct pifs_data *d, uint64_t ino, enum pifs_attr_from from,
		   struct pifs_attr *attr);

#endif
