/* gc.h - garbage collection: deleting the chunks that no file references.
 *
 * A background thread sweeps this node's chunks every gc_interval and on
 * pifs_gc_kick (WORK_START {PIFS_WORK_GC}). For each batch it notes the time
 * K, asks the metadata service which of the chunks some file references
 * (CHUNK_REFS), and deletes each chunk that none does and whose file was
 * last written or touched before K - gc_grace; the store re-checks the time
 * and unlinks under the lock every put of the chunk takes to touch it
 * (pifs_store_del_older). Since a client commits what it uploaded well
 * within gc_grace, no committed file can point at a deleted chunk, even one
 * whose content is being uploaded again during the sweep. Nothing is deleted
 * when the metadata service cannot be asked. A dry run (PIFS_WORK_DRYRUN)
 * only counts.
 *
 * For tests, the environment variable PIFS_TEST_GC_GATE=PATH holds each
 * sweep between the answer of CHUNK_REFS and the deletions of a batch that
 * has unreferenced chunks: the sweep creates PATH.asked and waits (at most
 * 30 s) for PATH to exist, then removes both. A test can so upload a chunk
 * at exactly that moment. */
#ifndef PIFS_GC_H
#define PIFS_GC_H

#include <stdbool.h>

#include "proto.h"
#include "storaged_i.h"

struct pifs_gc;

/* The garbage collection of the daemon @d (borrowed; it must outlive it).
 * *@out is freed with pifs_gc_free. Returns 0 or -errno. */
int pifs_gc_new(struct pifsd *d, struct pifs_gc **out /* OUT */);

/* Start the thread. Returns 0 or -errno. */
int pifs_gc_start(struct pifs_gc *g);

/* Start a sweep now, or right after the one under way; with @dry, one that
 * only counts. NULL-safe. */
void pifs_gc_kick(struct pifs_gc *g, bool dry);

/* Ask the thread to stop soon, without waiting for it. NULL-safe. */
void pifs_gc_stop(struct pifs_gc *g);

/* Stop the thread if it runs, wait for it and free @g. NULL-safe. */
void pifs_gc_free(struct pifs_gc *g);

/* Fill the gc_* fields of @w (OUT): completed sweeps; the chunks and bytes
 * the last one found reclaimable (unreferenced, past the grace) and left on
 * disk: all of them after a dry run, those it failed to delete otherwise;
 * and every chunk and byte deleted since the daemon started. NULL-safe: no
 * garbage collection reports zeros. */
void pifs_gc_report(struct pifs_gc *g, struct pifs_work *w);

#endif
