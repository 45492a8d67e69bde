/* server.h - the broker of pifs-storaged: one ROUTER for everyone.
 *
 * Clients, peers and admin tools talk to one ROUTER bound on the node's
 * address. The broker decodes each request only to route it: chunk requests
 * go round-robin to the chunk workers, metadata requests to the metadata
 * service (on the voter; elsewhere they are refused with the voter's id). The
 * frames themselves move without a copy, and the replies come back on the
 * same inproc sockets, routing identity first, to be sent on the ROUTER.
 *
 * A request is read from the ROUTER only when both inproc queues have room,
 * so that a busy node pushes back on its clients through ZeroMQ's
 * high-water marks and TCP instead of holding their requests in RAM. */
#ifndef PIFS_SERVER_H
#define PIFS_SERVER_H

#include "storaged_i.h"

struct pifs_server;

/* Bind the control publisher, the inproc sockets of the workers and the
 * metadata service, and the ROUTER on @endpoint ("tcp://host:port",
 * borrowed), in that order. @d is borrowed and must outlive the server.
 * Returns 0 or -errno (-EADDRINUSE: another process has the address). */
int pifs_server_open(struct pifsd *d, const char *endpoint, struct pifs_server **out /* OUT */);

/* Serve until a signal arrives on @sigfd (a signalfd), then stop the
 * heartbeat, refuse new requests with -ESHUTDOWN, and return once every
 * request in flight has been answered and the heartbeat has stopped, or after
 * the client timeout. Returns 0, or -errno when polling fails. */
int pifs_server_run(struct pifs_server *s, int sigfd);

/* Publish @topic (PIFS_CTL_*) to the daemon's threads. Returns 0 or -errno. */
int pifs_server_publish(struct pifs_server *s, const char *topic);

/* Close every socket. Call after the threads using the inproc endpoints have
 * stopped. NULL-safe. */
void pifs_server_close(struct pifs_server *s);

#endif
