/* metad.h - the metadata service, on every node.
 *
 * The state machine (meta.h) in RAM, replicated with Raft (raft.h) over the
 * metadata voters, each keeping its log, term and snapshot in DATA/meta
 * (raftlog.h). One thread takes what the broker hands it in batches:
 * requests, which the leader answers (a mutation once a majority has it in
 * its log; what must survive a power cut once a majority has synced it)
 * and the others redirect with R_LEADER; and the voters' RAFT_* messages,
 * which share the node's port. The leader also keeps what each node's last
 * heartbeat said (space, heal and scrub figures) for status and df, and
 * logs the changes of liveness in the map, so that every client and daemon
 * learns them through the map epoch: a node silent for down_after is down,
 * one silent for out_after is out, and one that answers again is up (and
 * in, unless it is new or being drained). A node that the map does not
 * list joins it with its first heartbeat as new (PIFS_NODE_NEW, not in) and
 * stays so until an operator admits it (NODE_SET). A new leader gives every
 * node down_after from its election before it can be marked down. */
#ifndef PIFS_METAD_H
#define PIFS_METAD_H

#include "storaged_i.h"

struct pifs_metad;

/* Open the log in DATA/meta (converting a single voter's snap and wal) and
 * recover the state; the first leader of a new cluster proposes the
 * cluster of the config (INIT, then NODE_ADD for each node). @d is borrowed
 * and must outlive the service. Returns 0, -EBADMSG (a term file or
 * snapshot that does not check: the operator must act), -ENOMEM or -errno;
 * *@out is freed with pifs_metad_free. */
int pifs_metad_open(struct pifsd *d, struct pifs_metad **out /* OUT */);

/* Start serving on the broker's PIFS_META_ENDPOINT. It stops when
 * PIFS_CTL_WORKERS is published. Returns 0 or -errno. */
int pifs_metad_start(struct pifs_metad *md);

/* Wait for the service to stop (if started), write a snapshot of what a
 * majority made durable, and free it. NULL-safe. */
void pifs_metad_free(struct pifs_metad *md);

#endif
