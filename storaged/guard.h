/* guard.h - how many connections one peer address may hold open to a node.
 *
 * ZeroMQ accepts every TCP connection; CURVE refuses a peer without a key
 * only once the handshake fails or times out (5 s). A host that opens
 * connections in a loop could meanwhile hold every descriptor of the
 * daemon, and a chunk file could then not be opened. The guard watches the
 * ROUTER's accepts (a socket monitor) and shuts down at once any connection
 * beyond PIFS_GUARD_PER_PEER from one address, counting it as a refusal of
 * the auth (fs/auth.h), logged once per address.
 *
 * Memory queued per peer is bounded elsewhere: a connection carries
 * messages only once its key is proven, at most ROUTER_RCVHWM of them
 * (server.c), each at most PIFS_RPC_MAX_MSG (fs/rpc.h). Used by the
 * broker's thread only. */
#ifndef PIFS_GUARD_H
#define PIFS_GUARD_H

#include "auth.h"

/* A mount opens one connection per thread to a node (about 40 at most), a
 * node a dozen to each peer: this leaves room for several of them behind
 * one address, and for a whole test cluster on 127.0.0.1. */
#define PIFS_GUARD_PER_PEER 256

struct pifs_guard;

/* Watch the connections of @router (not yet bound) in @zctx; refusals
 * count in @auth (all borrowed, outliving the guard). Returns 0 or -errno. */
int pifs_guard_open(void *zctx, void *router, struct pifs_auth *auth,
		    struct pifs_guard **out /* OUT */);

/* The socket to poll for ZMQ_POLLIN: events to take with pifs_guard_take. */
void *pifs_guard_socket(struct pifs_guard *g);

/* Take the events waiting, closing the connections over the bound. */
void pifs_guard_take(struct pifs_guard *g);

/* Stop watching; before @router is closed. NULL-safe. */
void pifs_guard_close(struct pifs_guard *g);

#endif
