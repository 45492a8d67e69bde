/* cluster.h - what a mount knows of the cluster and how it talks to it.
 *
 * One ZeroMQ context per process; one DEALER socket per peer per thread,
 * and one metacall (metacall.h: it finds the metadata leader among the
 * voters) per thread, made on first use and closed when the thread exits
 * (ZeroMQ sockets are not thread-safe). The cluster map (nodes, their addresses and flags, replicas,
 * chunk size) comes from the metadata service and is fetched again whenever
 * a reply carries a newer map epoch (one fetch at a time, throttled).
 *
 * A node that timed out, was unreachable, or failed a chunk write is avoided
 * for a few seconds: no new chunks go to it and reads ask it last, until the
 * map shows it down and then up again, or the time has passed. Waiting for a
 * node is bounded by the configured timeout, and sending to a node that is
 * not even connected by the shorter of it and two seconds.
 *
 * Thread-safe. */
#ifndef PIFS_CLIENT_CLUSTER_H
#define PIFS_CLIENT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "plan.h"
#include "proto.h"

/* The most nodes a chunk is written to: the longest replication chain. */
#define PIFS_CLUSTER_MAX_CHAIN PIFS_PLAN_MAX_CHAIN

struct pifs_cluster;
struct pifs_auth;

/* Where a chunk went: what a COMMIT and a CHUNK_SYNC need. */
struct pifs_cluster_put {
	struct pifs_chunk_id id;
	uint32_t raw_len;
	uint32_t stored_len;			/* the frame's length */
	uint32_t nodes[PIFS_CLUSTER_MAX_CHAIN]; /* the nodes holding a copy */
	size_t n_nodes;
	uint32_t wanted; /* the copies the map asks for; more than n_nodes when degraded */
};

/* What the live nodes said they hold, from pifs_cluster_has. */
struct pifs_cluster_has {
	size_t nnodes;
	uint32_t *nodes; /* owned; the nodes asked: those the map says are up */
	int *err;	 /* owned; 0, or why node i did not answer */
	uint8_t *have;	 /* owned; have[i * n + c] is 1 when node i holds chunk c */
};

/* A cluster for the configuration @conf, connecting with the keys of @auth
 * (both borrowed; they must outlive the cluster), with a new ZeroMQ
 * context. Returns 0 or -errno; *@out is freed with pifs_cluster_free after
 * every thread that used it has ended. */
int pifs_cluster_new(const struct pifs_conf *conf, struct pifs_auth *auth,
		     struct pifs_cluster **out /* OUT */);

/* Close the calling thread's sockets and the context. NULL-safe. */
void pifs_cluster_free(struct pifs_cluster *cl);

/* Fetch the cluster map from the metadata service, trying again for up to
 * @timeout_ms (one fetch may take the config's [client] timeout: asking
 * every voter in turn). Returns 0, -ETIMEDOUT/-EHOSTUNREACH when the
 * service never answered, or another -errno. */
int pifs_cluster_connect(struct pifs_cluster *cl, int timeout_ms);

/* Reads ask node @id first when it is an owner of the chunk (-o node=N).
 * Without it a node is local when its address is one of this machine's
 * interface addresses other than loopback, or its host name: on a cluster
 * on loopback no node is local and reads keep the plain HRW order. Call it
 * before pifs_cluster_connect. */
void pifs_cluster_set_local(struct pifs_cluster *cl, uint32_t id);

/* "host:port (node N)" of the metadata voter that last answered the calling
 * thread (its leader then), or of the config's first voter, for messages.
 * Borrowed. */
const char *pifs_cluster_meta_name(const struct pifs_cluster *cl);

/* The map's chunk size and replication factor. */
uint32_t pifs_cluster_chunk_size(struct pifs_cluster *cl);
uint32_t pifs_cluster_replicas(struct pifs_cluster *cl);

/* Send @req (borrowed; its request id and, for a mutation, its session are
 * set) to the metadata leader and wait for the reply @rep (OUT), whose
 * strings and lists borrow the calling thread's metacall until its next
 * call. Returns 0, the -errno of an R_STATUS
 * reply, -ETIMEDOUT, -EHOSTUNREACH, -EPROTO or -EBADMSG. */
int pifs_cluster_meta_call(struct pifs_cluster *cl, struct pifs_msg *req, struct pifs_msg *rep);

/* As pifs_cluster_meta_call, giving up after @timeout_ms (for a caller that
 * has something to answer without the service). */
int pifs_cluster_meta_call_within(struct pifs_cluster *cl, struct pifs_msg *req,
				  struct pifs_msg *rep, int timeout_ms);

/* Did a metadata call find no leader (a majority of the voters down or out
 * of reach) in the last META_LOST_MS, with no answer since? The mount then
 * answers what it can from what it holds (the attributes of files open
 * here) rather than wait for the service at every read. */
#define META_LOST_MS 5000
bool pifs_cluster_meta_lost(struct pifs_cluster *cl);

/* Hash, compress and frame @raw_len bytes at @raw (borrowed), and store the
 * frame on R nodes by chain replication (@flags: PIFS_PUT_*): sent once, to
 * the head of the chain (plan.h). Nodes that did not store it are replaced
 * by the next candidates in HRW order until R copies are stored or no
 * candidate is left. Fills @res (OUT). Returns 0 when at least one copy is
 * stored (res->n_nodes < res->wanted says the chunk is short of copies, for
 * heal to make up); -ENOSPC when no node stored it and every node that
 * answered was full; -ENOMEM; or -EIO. */
int pifs_cluster_put(struct pifs_cluster *cl, const void *raw, uint32_t raw_len, uint32_t flags,
		     struct pifs_cluster_put *res /* OUT */);

/* Fetch chunk @id in the order of pifs_plan_read (a local owner, the
 * owners, every other node; down and avoided nodes last) and check its hash:
 * a copy that does not verify is never returned, the next node is asked.
 * *@raw (malloc'd; the caller frees it) receives *@len bytes. Returns 0,
 * -EIO when no node served a frame that verifies, or -ENOMEM. */
int pifs_cluster_get(struct pifs_cluster *cl, const struct pifs_chunk_id *id,
		     uint8_t **raw /* OUT */, uint32_t *len /* OUT */);

/* Make the @n chunks @ids (borrowed) durable on node @node. Returns 0 or
 * -errno (-EIO when the node is not in the map). */
int pifs_cluster_sync(struct pifs_cluster *cl, uint32_t node, const struct pifs_chunk_id *ids,
		      size_t n);

/* Ask every node that the map says is up which of the @n chunks @ids
 * (borrowed) it holds: all nodes at once, in batches. Fills @out (OUT; free
 * with pifs_cluster_has_fini); a node that did not answer has its err set
 * and holds nothing. Returns 0 or -ENOMEM. */
int pifs_cluster_has(struct pifs_cluster *cl, const struct pifs_chunk_id *ids, size_t n,
		     struct pifs_cluster_has *out /* OUT */);

/* Free what @h owns. NULL-safe. */
void pifs_cluster_has_fini(struct pifs_cluster_has *h);

#endif
