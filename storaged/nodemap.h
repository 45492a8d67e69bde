/* nodemap.h - the cluster map as this daemon last heard it.
 *
 * The heartbeat thread installs the map the metadata service sends; the chunk
 * workers read it to turn the node ids of a replication chain into addresses
 * and to skip nodes that are down; heal and scrub take copies of it.
 * Until a map arrives, and for a node the map does not know, the addresses of
 * the configuration file are used. Thread-safe. */
#ifndef PIFS_NODEMAP_H
#define PIFS_NODEMAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

struct pifs_nodemap_entry {
	uint32_t id;
	uint32_t weight;
	uint32_t flags;
	char addr[256];
};

struct pifs_nodemap {
	pthread_mutex_t lock;
	_Atomic uint64_t epoch; /* 0 until a map is installed */
	size_t n;
	struct pifs_nodemap_entry *nodes; /* owned; @n entries, under @lock */
	uint32_t replicas;		  /* of the installed map, under @lock */
	const struct pifs_conf *conf;	  /* borrowed */
};

/* An empty map that falls back on @conf (borrowed; must outlive @m). */
void pifs_nodemap_init(struct pifs_nodemap *m, const struct pifs_conf *conf);

void pifs_nodemap_fini(struct pifs_nodemap *m);

/* Replace the map with the one in @r (borrowed), unless ours is as new. One
 * thread installs (the heartbeat); any thread may read meanwhile. Returns 1 if installed, 0 if not
 * newer, -EBADMSG for a malformed node list or -ENOMEM. */
int pifs_nodemap_install(struct pifs_nodemap *m, const struct pifs_msg_R_MAP *r);

static inline uint64_t pifs_nodemap_epoch(struct pifs_nodemap *m)
{
	return atomic_load(&m->epoch);
}

/* The endpoint ("tcp://host:port") of node @id into @out (@cap bytes).
 * Returns 0, -ENOENT for a node neither the map nor the config knows, or
 * -EINVAL for an address without a port. */
int pifs_nodemap_endpoint(struct pifs_nodemap *m, uint32_t id, char *out, size_t cap);

/* The flags (PIFS_NODE_*) of node @id in the installed map into *@flags.
 * Returns 0, or -ENOENT for a node the map does not list (or no map). */
int pifs_nodemap_flags(struct pifs_nodemap *m, uint32_t id, uint32_t *flags /* OUT */);

/* Does the installed map say that node @id is down (PIFS_NODE_UP clear)?
 * False without a map and for a node the map does not list. */
bool pifs_nodemap_is_down(struct pifs_nodemap *m, uint32_t id);

/* A copy of the installed map: *@nodes (OUT, the caller frees with free()),
 * *@n entries, the map's replicas and its epoch (0 without a map, and then
 * no nodes). Returns 0 or -ENOMEM. */
int pifs_nodemap_copy(struct pifs_nodemap *m, struct pifs_nodemap_entry **nodes /* OUT */,
		      size_t *n /* OUT */, uint32_t *replicas /* OUT */, uint64_t *epoch /* OUT */);

#endif
