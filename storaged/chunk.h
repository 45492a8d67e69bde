/* chunk.h - the chunk workers: CHUNK_PUT/GET/SYNC/DEL/HAS, NODE_STAT,
 * WORK_START, WORK_SET and PLAN (which holds its worker while it asks the
 * other nodes, as a convergence pass would).
 *
 * A worker takes requests from the broker's inproc DEALER, answers on the
 * same socket with the requester's routing identity first, and forwards
 * CHUNK_PUTs down their replication chain itself. It never waits for a
 * downstream node: a forward in flight is a pending entry answered when the
 * downstream reply or the deadline comes, so that two nodes forwarding to
 * each other cannot tie up each other's workers. */
#ifndef PIFS_CHUNK_H
#define PIFS_CHUNK_H

#include "storaged_i.h"

struct pifs_chunk_worker;

/* Start worker number @index for the daemon @d (borrowed; must outlive the
 * worker). It stops when PIFS_CTL_WORKERS is published. Returns 0 or -errno. */
int pifs_chunk_worker_start(struct pifsd *d, unsigned index, struct pifs_chunk_worker **out);

/* Wait for the worker to stop, then free it. NULL-safe. */
void pifs_chunk_worker_join(struct pifs_chunk_worker *w);

#endif
