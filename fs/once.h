/* once.h - the sessions that make a metadata mutation apply exactly once.
 *
 * A caller that sent a mutation and heard nothing (its leader died, the
 * answer was lost) cannot tell whether it was applied, so it sends it again,
 * perhaps to another leader; both copies may then be in the log. The
 * envelope session of proto.h (client, seq, acked) tells them apart: the
 * first copy to be applied records its reply under (client, seq), and any
 * later copy gets that reply back without being applied. Replies below
 * acked are forgotten (the caller no longer waits for them), and a copy
 * below acked is not applied at all.
 *
 * The table is part of the replicated state: it changes only in
 * pifs_once_begin/end, called in log order with the entries' times, and is
 * saved with the snapshot, so that every voter answers a retry the same way.
 * A session unused for PIFS_ONCE_IDLE of entry time is dropped (its caller
 * is gone); past PIFS_ONCE_SESSIONS sessions the least recently used goes,
 * and past PIFS_ONCE_REPLIES outstanding replies in one session its oldest.
 *
 * Memory: a reply is its encoded bytes (about 130 for an R_ATTR) plus 16;
 * a mount with 64 mutations in flight keeps about 10 KiB.
 *
 * Pure: no I/O, no locks, no globals. One thread at a time. */
#ifndef PIFS_ONCE_H
#define PIFS_ONCE_H

#include <stdint.h>

#include "buf.h"
#include "hmap.h"
#include "proto.h"

#define PIFS_ONCE_IDLE (3600ll * 1000000000ll) /* ns */
#define PIFS_ONCE_SESSIONS 4096u
#define PIFS_ONCE_REPLIES 1024u

struct pifs_once {
	struct pifs_hmap sessions;
	int64_t sweep_at; /* entry time of the next sweep for idle sessions */
};

/* What pifs_once_begin decided. */
enum {
	PIFS_ONCE_APPLY = 0, /* a new mutation: apply it, then pifs_once_end */
	PIFS_ONCE_DONE = 1,  /* a copy: @rep holds the reply; do not apply it */
};

void pifs_once_init(struct pifs_once *t);
/* Free everything and leave @t as init made it. */
void pifs_once_fini(struct pifs_once *t);

/* Before applying @op (borrowed; with PIFS_MSG_ONCE) at entry time @now:
 * PIFS_ONCE_APPLY, or PIFS_ONCE_DONE with the reply in @rep (OUT; it
 * borrows the table until its next change): the recorded one, or R_STATUS
 * -ESTALE for a copy whose reply was forgotten, or -EINVAL for a session
 * with client or seq 0. Returns -ENOMEM when memory runs out. */
int pifs_once_begin(struct pifs_once *t, const struct pifs_msg *op, int64_t now,
		    struct pifs_msg *rep);

/* Record @rep (borrowed) as the reply to @op, applied after
 * pifs_once_begin said PIFS_ONCE_APPLY. Returns 0 or -ENOMEM. */
int pifs_once_end(struct pifs_once *t, const struct pifs_msg *op, const struct pifs_msg *rep);

/* Drop the sessions idle since before @now - PIFS_ONCE_IDLE, at most once a
 * tenth of that: called for every entry with its time. */
void pifs_once_sweep(struct pifs_once *t, int64_t now);

/* Sessions and replies held. */
uint64_t pifs_once_sessions(const struct pifs_once *t);

/* Append the table to @out, sessions by client id and replies by seq, so
 * that equal tables give equal bytes. Returns 0 or -ENOMEM. */
int pifs_once_save(const struct pifs_once *t, struct pifs_buf *out);

/* Load a table saved by pifs_once_save into @t (empty) from the @len bytes
 * at @p; *@used (OUT) is how many it took. Returns 0, -EBADMSG (malformed:
 * @t is left empty) or -ENOMEM. */
int pifs_once_load(struct pifs_once *t, const void *p, size_t len, size_t *used);

#endif
