/* peers.h - one request socket per other node, for a background thread.
 *
 * Heal and scrub talk to other storage daemons with blocking calls (they
 * have nothing else to do meanwhile). Each of their threads keeps its own
 * table, since ZeroMQ sockets belong to one thread; a node's socket is made
 * on first use and made again when the map moves the node to another
 * address. Every request carries this node's map epoch. Not thread-safe. */
#ifndef PIFS_PEERS_H
#define PIFS_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include "nodemap.h"
#include "rpc.h"

struct pifs_peer_sock {
	uint32_t id;
	char endpoint[300];
	struct pifs_rpc *rpc; /* owned */
};

struct pifs_peers {
	void *zctx;		  /* borrowed */
	struct pifs_auth *auth;	  /* borrowed */
	struct pifs_nodemap *map; /* borrowed */
	struct pifs_peer_sock *v; /* owned; @n of @cap */
	size_t n, cap;
};

/* An empty table that connects in @zctx with the keys of @auth to the
 * addresses of @map (all borrowed; they must outlive the table). */
void pifs_peers_init(struct pifs_peers *p, void *zctx, struct pifs_auth *auth,
		     struct pifs_nodemap *map);

/* Close every socket. */
void pifs_peers_fini(struct pifs_peers *p);

/* The socket for node @id, borrowed from @p until pifs_peers_fini. Returns 0,
 * -ENOENT (no map or config knows the node), -EINVAL (its address has no
 * port), -ENOMEM or -errno from ZeroMQ. */
int pifs_peers_get(struct pifs_peers *p, uint32_t id, struct pifs_rpc **out /* OUT */);

#endif
