/* storaged_i.h - what the threads of pifs-storaged share.
 *
 * Threads: the main thread runs the broker (server.c) and the start and stop
 * sequence (main.c); PIFS_WORKERS chunk workers (chunk.c); the metadata
 * service (metad.c); the heartbeat (heartbeat.c); the
 * convergence loop (heal.c), the scrub (scrub.c) and garbage collection
 * (gc.c). They talk over inproc ZeroMQ sockets; the store, the node map, and
 * the small thread-safe entry points of heal, scrub and gc (kick, report,
 * corrupt, set_rate, forecast) are all they share. */
#ifndef PIFS_STORAGED_I_H
#define PIFS_STORAGED_I_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "metacall.h"
#include "nodemap.h"
#include "store.h"

/* Chunk requests go round-robin to this many worker threads. */
#define PIFS_WORKERS 4

/* The broker's inproc sockets, bound before any thread connects. */
#define PIFS_CHUNK_ENDPOINT "inproc://pifs-storaged-chunk"
/* Worker i also takes the pieces of CHUNK_PUTs sent in pieces on
 * PIFS_PIECE_ENDPOINT with %u = i, so that all pieces of a put meet. */
#define PIFS_PIECE_ENDPOINT "inproc://pifs-storaged-piece-%u"
#define PIFS_META_ENDPOINT "inproc://pifs-storaged-meta"

/* A request frame set on the ROUTER is [identity][message][payload]; an
 * identity is at most 255 bytes (ZeroMQ's limit). */
#define PIFS_IDENT_MAX 255

struct pifs_gc;
/* The file a daemon leaves in its data directory once an operator removed
 * it from the cluster map; it deletes it when started again. */
#define PIFS_REMOVED_MARK "removed"

struct pifs_heal;
struct pifs_scrub;

struct pifsd {
	const struct pifs_conf *conf;	    /* borrowed */
	const struct pifs_conf_node *self;  /* borrowed from @conf, or main's for a
					     * node the config does not name */
	const char *data;		    /* the data directory, borrowed */
	void *zctx;
	/* This node's key and the allow-list (fs/auth.h): every socket that
	 * leaves the process connects with it. */
	struct pifs_auth *auth;
	/* The metadata voters known to the heartbeat and gc, and the leader. */
	struct pifs_metacall_book *book;
	struct pifs_store *store;
	struct pifs_nodemap map;
	/* Made before the chunk workers start and freed after they stop, so
	 * that the workers may always use them; their threads start last. */
	struct pifs_heal *heal;
	struct pifs_scrub *scrub;
	struct pifs_gc *gc;
	/* Set by the main thread before it publishes the matching PIFS_CTL_*
	 * topic, so that a thread whose subscription was not yet in place
	 * when the topic went out still stops at its next poll timeout. */
	atomic_bool heartbeat_stop;
	atomic_bool workers_stop;
	atomic_bool heartbeat_running; /* cleared when the heartbeat exits */
};

#endif
