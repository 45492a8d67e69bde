/* cluster.h - what a mount knows of the cluster and how it talks to it.
 *
 * One ZeroMQ context per process; one DEALER socket per peer per thread,
 * made on first use and closed when the thread exits (ZeroMQ sockets are not
 * thread-safe). The cluster map (nodes, their addresses and flags, replicas,
 * chunk size) comes from the metadata service and is fetched again whenever
 * a reply carries a newer map epoch.
 *
 * Thread-safe. */
#ifndef PIFS_CLIENT_CLUSTER_H
#define PIFS_CLIENT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

/* The most nodes a chunk is written to: the longest replication chain. */
#define PIFS_CLUSTER_MAX_CHAIN 16

struct pifs_cluster;

/* Where a chunk went: what a COMMIT and a CHUNK_SYNC need. */
struct pifs_cluster_put {
	struct pifs_chunk_id id;
	uint32_t raw_len;
	uint32_t stored_len;	/* the frame's length */
	uint32_t nodes[PIFS_CLUSTER_MAX_CHAIN];
	size_t n_nodes;
};

/* A cluster for the configuration @conf (borrowed; it must outlive the
 * cluster), with a new ZeroMQ context. Returns 0 or -errno; *@out is freed
 * with pifs_cluster_free after every thread that used it has ended. */
int pifs_cluster_new(const struct pifs_conf *conf, struct pifs_cluster **out /* OUT */);

/* Close the calling thread's sockets and the context. NULL-safe. */
void pifs_cluster_free(struct pifs_cluster *cl);

/* Fetch the cluster map from the metadata service, trying again for up to
 * @timeout_ms. Returns 0, -ETIMEDOUT/-EHOSTUNREACH when the service never
 * answered, or another -errno. */
int pifs_cluster_connect(struct pifs_cluster *cl, int timeout_ms);

/* "host:port (node N)" of the metadata service, for messages. Borrowed. */
const char *pifs_cluster_meta_name(const struct pifs_cluster *cl);

/* The map's chunk size and replication factor. */
uint32_t pifs_cluster_chunk_size(struct pifs_cluster *cl);
uint32_t pifs_cluster_replicas(struct pifs_cluster *cl);

/* Send @req (borrowed; its request id is set) to the metadata service and
 * wait for the reply @rep (OUT), whose strings and lists borrow the calling
 * thread's socket until its next call. Returns 0, the -errno of an R_STATUS
 * reply, -ETIMEDOUT, -EHOSTUNREACH, -EPROTO or -EBADMSG. */
int pifs_cluster_meta_call(struct pifs_cluster *cl, struct pifs_msg *req, struct pifs_msg *rep);

/* Hash, compress and frame @raw_len bytes at @raw (borrowed), and store the
 * frame on the chunk's owners by chain replication (@flags: PIFS_PUT_*).
 * Tries once more with a fresh map when a node of the chain failed.
 * Fills @res (OUT). Returns 0, -ENOSPC when the owners are full, or -EIO. */
int pifs_cluster_put(struct pifs_cluster *cl, const void *raw, uint32_t raw_len, uint32_t flags,
		     struct pifs_cluster_put *res /* OUT */);

/* Fetch chunk @id from its first live owner, falling back along the HRW
 * order and then to every other live node, and check its hash. *@raw
 * (malloc'd; the caller frees it) receives *@len bytes. Returns 0, -EIO when
 * no node served a frame that verifies, or -ENOMEM. */
int pifs_cluster_get(struct pifs_cluster *cl, const struct pifs_chunk_id *id,
		     uint8_t **raw /* OUT */, uint32_t *len /* OUT */);

/* Make the @n chunks @ids (borrowed) durable on node @node. Returns 0 or
 * -errno (-EIO when the node is not in the map). */
int pifs_cluster_sync(struct pifs_cluster *cl, uint32_t node, const struct pifs_chunk_id *ids,
		      size_t n);

#endif
