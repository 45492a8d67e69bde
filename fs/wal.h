/* wal.h - the metadata write-ahead log and its snapshots, in one directory.
 *
 * Files: "snap" (the newest snapshot: a header with its index and checksum,
 * then pifs_meta_save's bytes), "wal" (the entries after it). An entry is
 * u32 length | u64 index | the encoded mutation (proto.h) | u64 XXH3 of the
 * index and the mutation. Recovery loads the snapshot, replays every entry
 * that checks, and cuts the file at the first one that does not (a torn
 * tail from a crash in the middle of a write): an entry whose commit
 * returned is never cut. Snapshots are written to a temporary name, synced,
 * and renamed over the old one; the log then starts again empty.
 *
 * No threads; the caller serialises calls. */
#ifndef PIFS_WAL_H
#define PIFS_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "meta.h"

struct pifs_wal;

/* Open or create the log in @dir (created if missing), load the snapshot and
 * replay the log into @m (new, empty). On success *@out is the log, which the
 * caller frees with pifs_wal_close. Returns 0, -EBADMSG for a snapshot that
 * does not check (never silently ignored: the operator must act), or -errno. */
int pifs_wal_open(const char *dir, struct pifs_meta *m, struct pifs_wal **out);

/* Queue the encoded mutation @entry (@len bytes, borrowed) as entry @index.
 * Nothing is durable until pifs_wal_commit returns 0. Returns 0 or -ENOMEM. */
int pifs_wal_append(struct pifs_wal *w, uint64_t index, const void *entry, size_t len);

/* Write every queued entry and fdatasync the log: one sync for a whole batch
 * (group commit). Returns 0 or -errno (then the caller must stop: its state
 * is ahead of the disk). */
int pifs_wal_commit(struct pifs_wal *w);

/* Bytes in the log since the last snapshot. */
uint64_t pifs_wal_size(const struct pifs_wal *w);

/* Write a snapshot of @m (whose index is the last committed entry) and empty
 * the log. Returns 0 or -errno; on failure the old snapshot and log stay. */
int pifs_wal_snapshot(struct pifs_wal *w, const struct pifs_meta *m);

/* Close the log. NULL-safe. */
void pifs_wal_close(struct pifs_wal *w);

#endif
