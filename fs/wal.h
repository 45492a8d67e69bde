/* wal.h - the metadata write-ahead log and its snapshots, in one directory.
 *
 * Files: "snap" (the newest snapshot), "wal" (the entries after it). All
 * integers are big-endian.
 *
 *   entry:    u32 length | u64 index | the encoded mutation (@length bytes,
 *             proto.h) | u64 XXH3-64 of the 12 + @length bytes before it
 *   snapshot: u32 magic "PSNP" | u32 version | u64 index |
 *             pifs_meta_save's bytes | u64 their length |
 *             u64 XXH3-64 of all the bytes before it
 *             (the length comes last so that a snapshot is written as it
 *             is produced, without holding it in memory)
 *
 * Recovery loads the snapshot, replays every entry that checks, and cuts the
 * file at the first one that does not (a torn tail from a crash in the
 * middle of a write): an entry whose sync returned is never cut. Entries
 * at or below the snapshot's index are skipped (a crash between writing a
 * snapshot and emptying the log leaves them). Snapshots are written to
 * "snap.tmp", synced, and renamed over the old one; the log then starts
 * again empty.
 *
 * The caller serialises calls, except that pifs_wal_sync and
 * pifs_wal_unsynced may also run in another thread (a syncer) while the
 * owner writes. */
#ifndef PIFS_WAL_H
#define PIFS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "meta.h"

struct pifs_wal;

/* Open or create the log in @dir (borrowed; created if missing), load the
 * snapshot and replay the log into @m (new, empty). On success *@out is the
 * log, which the caller frees with pifs_wal_close. Returns 0, -EBADMSG for a
 * snapshot that does not check, or for an entry that checks but does not
 * decode or apply in order (never silently ignored: the operator must act),
 * -ENOMEM, or the -errno of a failed system call. On failure @m may hold part
 * of the state: the caller frees it. */
int pifs_wal_open(const char *dir, struct pifs_meta *m, struct pifs_wal **out);

/* Queue the encoded mutation @entry (@len bytes, borrowed) as entry @index.
 * Nothing is in the log until pifs_wal_write returns 0, nor durable until
 * pifs_wal_sync does. Returns 0, -EINVAL for an entry longer than
 * PIFS_PROTO_MAX_MSG (recovery would take it for a torn tail), or -ENOMEM. */
int pifs_wal_append(struct pifs_wal *w, uint64_t index, const void *entry, size_t len);

/* Write every queued entry to the log file, without syncing it: from then on
 * the entries survive the death of the process (the kernel holds them), not
 * yet a power cut. A failed write is cut back off the file. Returns 0 or
 * -errno (then the caller must stop: its state is ahead of the log). */
int pifs_wal_write(struct pifs_wal *w);

/* fdatasync what was written: one sync for every entry written since the last
 * one (group commit). When it returns 0, every pifs_wal_write that returned
 * before it was called is durable, even if another thread's sync was under
 * way. Returns 0 or -errno (then the caller must stop: what it acknowledged
 * may not be on the disk). */
int pifs_wal_sync(struct pifs_wal *w);

/* Were entries written that no sync covers yet? */
bool pifs_wal_unsynced(struct pifs_wal *w);

/* pifs_wal_write, then pifs_wal_sync. */
int pifs_wal_commit(struct pifs_wal *w);

/* Bytes written to the log since the last snapshot (queued entries not
 * included): the caller snapshots when this grows too large. */
uint64_t pifs_wal_size(const struct pifs_wal *w);

/* Write a snapshot of @m (borrowed; every entry it has applied must be
 * committed or queued) and empty the log. Queued entries stay queued; those
 * at or below the snapshot's index will be skipped by recovery. Returns 0,
 * -ENOMEM or -errno; on failure the old snapshot and log stay usable. */
int pifs_wal_snapshot(struct pifs_wal *w, const struct pifs_meta *m);

/* Close the log. NULL-safe. */
void pifs_wal_close(struct pifs_wal *w);

#endif
