/* scrub.h - re-reading every chunk, and repairing the corrupt ones.
 *
 * A background thread re-reads and verifies every chunk of the store (past
 * the page cache), every scrub_interval and on pifs_scrub_kick (WORK_START),
 * paced at scrub_rate (which WORK_SET changes). A chunk that fails is quarantined by the store and
 * repaired: fetched from the other nodes in HRW order (the owners first),
 * verified, and stored again. A chunk found corrupt elsewhere (a CHUNK_GET,
 * a heal copy) is handed over with pifs_scrub_corrupt and repaired at once,
 * between the chunks of a pass. Each pass first tries again the chunks the
 * store counts as lost (pifs_store_lost), whose good copy may be back. The
 * time of the last complete pass is kept in DATA/scrub.last, so that a node
 * that restarts more often than scrub_interval still scrubs. */
#ifndef PIFS_SCRUB_H
#define PIFS_SCRUB_H

#include <stdint.h>

#include "frame.h"
#include "proto.h"
#include "storaged_i.h"

struct pifs_scrub;

/* The scrub of the daemon @d (borrowed; it must outlive the scrub). *@out
 * is freed with pifs_scrub_free. Returns 0 or -errno. */
int pifs_scrub_new(struct pifsd *d, struct pifs_scrub **out /* OUT */);

/* Start the thread. Returns 0 or -errno. */
int pifs_scrub_start(struct pifs_scrub *s);

/* Start a pass now, or right after the one under way. NULL-safe. */
void pifs_scrub_kick(struct pifs_scrub *s);

/* Read at most @rate bytes/s from now on, the running pass included (until
 * the daemon restarts); 0 changes nothing, UINT64_MAX lifts the limit.
 * Thread-safe, NULL-safe. */
void pifs_scrub_set_rate(struct pifs_scrub *s, uint64_t rate);

/* Count a corrupt copy of chunk @id (borrowed) that was just quarantined,
 * and queue its repair. Thread-safe, never blocks on the network; a full
 * queue drops the repair with a warning (heal still brings the chunk back
 * if this node owns it). NULL-safe. */
void pifs_scrub_corrupt(struct pifs_scrub *s, const struct pifs_chunk_id *id);

/* Ask the thread to stop soon, without waiting for it. NULL-safe. */
void pifs_scrub_stop(struct pifs_scrub *s);

/* Stop the thread if it runs, wait for it and free @s. NULL-safe. */
void pifs_scrub_free(struct pifs_scrub *s);

/* Fill the scrub_* fields of @w (OUT). NULL-safe: no scrub reports zeros. */
void pifs_scrub_report(struct pifs_scrub *s, struct pifs_work *w);

#endif
