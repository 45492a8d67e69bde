/* metad.h - the metadata service of a voter node.
 *
 * The state machine (meta.h) in RAM and its write-ahead log (wal.h) in
 * DATA/meta. One thread takes requests from the broker's inproc socket in
 * batches: every mutation of a batch is stamped, logged and applied, the log
 * is synced once, and only then are the batch's replies sent (group commit:
 * nothing is acknowledged before it is durable). It also keeps what each
 * node's last heartbeat said (space, heal and scrub figures) for status and
 * df, and logs the changes of liveness in the map, so that every client and
 * daemon learns them through the map epoch: a node silent for down_after is
 * down, one silent for out_after is out, and one that answers again is up
 * (and in, unless it is new or being drained). A node that the map does not
 * list joins it with its first heartbeat as new (PIFS_NODE_NEW, not in) and
 * stays so until an operator admits it (NODE_SET). After a restart every
 * node gets down_after from the restart before it can be marked down. */
#ifndef PIFS_METAD_H
#define PIFS_METAD_H

#include "storaged_i.h"

struct pifs_metad;

/* Open the log in DATA/meta and recover the state; a new log is initialised
 * with the cluster of the config (INIT, then NODE_ADD for each node) and
 * committed. @d is borrowed and must outlive the service. Returns 0,
 * -EBADMSG (a snapshot that does not check: the operator must act), -ENOMEM
 * or -errno; *@out is freed with pifs_metad_free. */
int pifs_metad_open(struct pifsd *d, struct pifs_metad **out /* OUT */);

/* Start serving on the broker's PIFS_META_ENDPOINT. It stops when
 * PIFS_CTL_WORKERS is published. Returns 0 or -errno. */
int pifs_metad_start(struct pifs_metad *md);

/* Wait for the service to stop (if started), write a snapshot and free it.
 * NULL-safe. */
void pifs_metad_free(struct pifs_metad *md);

#endif
