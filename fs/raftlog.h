/* raftlog.h - a metadata voter's Raft log, term and snapshot on its disk.
 *
 * Files in one directory (DATA/meta), all integers big-endian:
 *
 *   raft.hard   u32 magic "PRHD" | u32 version 1 | u64 term | u32 vote |
 *               u64 XXH3-64 of the bytes before it
 *               (written to raft.hard.tmp, synced, renamed, the directory
 *               synced: a vote once given survives a power cut)
 *   raft.log    the entries after the snapshot, each:
 *               u32 length | u64 index | u64 term | u8 type | @length bytes |
 *               u64 XXH3-64 of the 21 + @length bytes before it
 *   raft.snap   u32 magic "PRSN" | u32 version 1 | u64 index | u64 term |
 *               u32 voters | u32 id each | pifs_meta_save's bytes |
 *               u64 their length | u64 XXH3-64 of all the bytes before it
 *
 * The snapshot file is also what travels to a voter that is too far behind
 * (pifs_raftlog_snap_read, then snap_write and snap_install on the other
 * side): it checks itself, so a piece damaged on the way is refused whole.
 *
 * Recovery loads the snapshot into the state machine, then reads the
 * entries that check and cuts the log at the first one that does not (a
 * torn tail from a crash in the middle of a write: an entry whose write
 * returned is never cut, as the kernel holds it). Entries at or below the
 * snapshot's index are skipped (a crash between writing a snapshot and
 * rewriting the log leaves them). A damaged raft.hard or raft.snap is an
 * error, never silently ignored.
 *
 * A directory from before replication (files "snap" and "wal", fs/wal.h)
 * is converted on open: its state becomes the first snapshot (term 1, the
 * initial voters; none if it had applied nothing), raft.hard says term 1
 * (so that every later election is for a later term than the snapshot's),
 * and the old files are renamed snap.old and wal.old.
 *
 * The caller serialises calls, except that pifs_raftlog_sync may also run
 * in another thread (a syncer) while the owner writes. */
#ifndef PIFS_RAFTLOG_H
#define PIFS_RAFTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta.h"
#include "raft.h"

struct pifs_raftlog;

/* Open or create the log in @dir (borrowed; created if missing). The
 * snapshot, if any, is loaded into @m (new, empty); *@st (OUT) gets the
 * term, the vote, the snapshot's index, term and voters (@initial, copied,
 * when there is no snapshot yet) and applied (the snapshot's index). The
 * entries are then read with pifs_raftlog_entries. Returns 0, -EINVAL
 * (@initial is not a valid set of voters), -EBADMSG for a term file or a
 * snapshot that does not check (or, converting, what pifs_wal_open refuses),
 * -ENOMEM, or the -errno of a failed system call; on failure @m may hold
 * part of the state (the caller frees it). *@out is freed with
 * pifs_raftlog_close. */
int pifs_raftlog_open(const char *dir, const struct pifs_raft_conf *initial, struct pifs_meta *m,
		      struct pifs_raftlog **out /* OUT */, struct pifs_raft_state *st /* OUT */);

/* Was an old-format directory converted by pifs_raftlog_open? */
bool pifs_raftlog_migrated(const struct pifs_raftlog *l);

/* Hand every entry of the log after the snapshot (queued ones included) to
 * @each, oldest first; @e borrows the log for the call. Written entries are
 * read back from the file, so memory stays bounded. Stops at @each's first
 * error, returned; -EBADMSG if a written entry no longer checks (the file
 * changed since it was read), -ENOMEM or -errno. */
int pifs_raftlog_entries(struct pifs_raftlog *l,
			 int (*each)(void *ctx, uint64_t index, const struct pifs_raft_entry *e),
			 void *ctx);

/* Queue entry @index (copied), which must follow the last one. Nothing is
 * in the log until pifs_raftlog_write returns 0. Returns 0, -EINVAL (out of
 * order, or longer than PIFS_PROTO_MAX_MSG) or -ENOMEM. */
int pifs_raftlog_append(struct pifs_raftlog *l, uint64_t index, const struct pifs_raft_entry *e);

/* Write the queued entries, without syncing: they survive the death of the
 * process from then on. A failed write is cut back off, and the entries it
 * held are dropped from the queue. Returns 0 or -errno (the caller must
 * stop). */
int pifs_raftlog_write(struct pifs_raftlog *l);

/* fdatasync what was written (group commit: one sync covers every write
 * that returned before it was called). Thread-safe against the owner's
 * calls. Returns 0 or -errno (the caller must stop). */
int pifs_raftlog_sync(struct pifs_raftlog *l);

/* Drop entries @from and after, queued or written (all of them when @from
 * is at or below the snapshot's index). The shorter log is durable after
 * the next pifs_raftlog_sync. Returns 0 or -errno. */
int pifs_raftlog_truncate(struct pifs_raftlog *l, uint64_t from);

/* Make term and vote (0: none) durable before returning. Returns 0 or
 * -errno. */
int pifs_raftlog_set_hard(struct pifs_raftlog *l, uint64_t term, uint32_t vote);

/* The last entry's index (queued ones included), or the snapshot's. */
uint64_t pifs_raftlog_last_index(const struct pifs_raftlog *l);

/* Bytes of log written since the last snapshot: snapshot when it grows. */
uint64_t pifs_raftlog_size(const struct pifs_raftlog *l);

/* Write a snapshot of @m (borrowed), which has applied every entry up to
 * @index (of term @term; @conf the voters in force there), and drop the
 * entries up to @index from the log (queued ones included: those after
 * @index stay queued). Returns 0, -EINVAL (@index below the snapshot's, @m
 * not at @index, or @conf not a valid set of voters), -ENOMEM or -errno; on
 * failure the old snapshot and log stay usable (the new snapshot may be in
 * place, if only the rewrite of the log failed: the next open then skips the
 * entries it covers). */
int pifs_raftlog_snapshot(struct pifs_raftlog *l, const struct pifs_meta *m, uint64_t index,
			  uint64_t term, const struct pifs_raft_conf *conf);

/* Copy up to @cap bytes of raft.snap from @off into @buf. Returns the
 * count (less than @cap only at the end; 0 past it) or -errno (-ENOENT:
 * none yet). */
ssize_t pifs_raftlog_snap_read(struct pifs_raftlog *l, uint64_t off, void *buf, size_t cap);

/* Store @len bytes (borrowed) of an incoming snapshot at @off (pieces come
 * in order; @off 0 starts a new one). Returns 0, -EINVAL (out of order: @off
 * is not where the last piece ended) or -errno (the same piece may then be
 * written again). */
int pifs_raftlog_snap_write(struct pifs_raftlog *l, uint64_t off, const void *p, size_t len);

/* The incoming snapshot is whole at @total bytes: check it (checksum, and
 * that it is at @index, @term with the voters @conf), load it into a new
 * state *@m (OUT, the caller's), make it the snapshot and empty the log.
 * The incoming file is gone afterwards, taken or refused: a refused one is
 * sent again from offset 0. Returns 0, -EINVAL (no incoming snapshot),
 * -EBADMSG (it does not check, or it is not @total bytes: nothing changed),
 * -ENOMEM or -errno (a system call failed: the new snapshot may be in place
 * on the disk, and the caller must stop). */
int pifs_raftlog_snap_install(struct pifs_raftlog *l, uint64_t index, uint64_t term,
			      const struct pifs_raft_conf *conf, uint64_t total,
			      struct pifs_meta **m /* OUT */);

/* Close the log (NULL-safe). */
void pifs_raftlog_close(struct pifs_raftlog *l);

#endif
