/* rpc.h - requests and replies over ZeroMQ.
 *
 * A caller holds one struct pifs_rpc per peer per thread: a DEALER socket
 * connected to the peer's ROUTER. Every request gets a fresh request id;
 * replies are matched by it, so a late reply to a request that timed out is
 * recognised and dropped. Many requests may be in flight on one rpc
 * (pifs_rpc_send, then pifs_rpc_recv with id 0 for whichever comes first).
 *
 * Every socket made here has ZMQ_MAXMSGSIZE, small high-water marks, a
 * handshake timeout (5 s), ZMQ_IMMEDIATE (never queue for a peer that is not connected) and LINGER 0.
 * After a timeout the socket is rebuilt, so that nothing queued for a dead
 * peer is delivered minutes later.
 *
 * Errors: -ETIMEDOUT (no reply in time), -EHOSTUNREACH (could not even send
 * in time: the peer is not connected), -EPROTO/-EBADMSG (a reply that does
 * not decode), or the -errno of an R_STATUS reply. */
#ifndef PIFS_RPC_H
#define PIFS_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct pifs_auth;

/* ZeroMQ I/O threads of a daemon's or a mount's context. CURVE encrypts
 * and decrypts there, and one connection stays on one thread: two let a
 * node decrypt what comes in while it encrypts what it forwards. */
#define PIFS_IO_THREADS 2

/* The largest message any pifs socket accepts: a chunk frame of the largest
 * chunk with LZ4's worst case, plus room. */
#define PIFS_RPC_MAX_MSG ((int64_t)PIFS_FRAME_MAX_RAW + (PIFS_FRAME_MAX_RAW / 200) + (1 << 20))

struct pifs_rpc;

/* Connect to node @node at @endpoint ("tcp://host:port", borrowed) in the
 * ZeroMQ context @zctx (borrowed), with the keys of @auth (borrowed; it must
 * outlive the rpc; NULL for plain TCP): the other end must prove node
 * @node's key (fs/auth.h). *@out is freed with pifs_rpc_free. Returns 0,
 * -ENOKEY or -EKEYREVOKED (no usable key for the node) or -errno. */
int pifs_rpc_new(void *zctx, struct pifs_auth *auth, uint32_t node, const char *endpoint,
		 struct pifs_rpc **out);

/* Close the socket. NULL-safe. */
void pifs_rpc_free(struct pifs_rpc *r);

/* The endpoint @r talks to (borrowed). */
const char *pifs_rpc_endpoint(const struct pifs_rpc *r);

/* Set the map epoch written into every request from now on. */
void pifs_rpc_set_epoch(struct pifs_rpc *r, uint64_t epoch);

/* Give @req a new request id (written to req->reqid) and send it, with
 * @plen bytes at @payload (borrowed; copied) as a payload frame when
 * @payload is not NULL. Returns 0, -EHOSTUNREACH after @timeout_ms, or
 * -errno. */
int pifs_rpc_send(struct pifs_rpc *r, struct pifs_msg *req, const void *payload, size_t plen,
		  int timeout_ms);

/* As pifs_rpc_send, but the payload is taken without a copy: @data (malloc'd)
 * belongs to the rpc from now on, whatever the result, and is freed with
 * free() once sent. */
int pifs_rpc_send_owned(struct pifs_rpc *r, struct pifs_msg *req, void *data, size_t len,
			int timeout_ms);

/* As pifs_rpc_send_owned for a CHUNK_PUT @req, but the frame @data goes in
 * messages of at most @piece bytes under one request id (their offset and
 * total set in @req), so that each node of the chain can pass a piece on
 * before the next arrives; a frame of at most @piece bytes goes whole
 * (total 0). The pieces share @data without copying it. */
int pifs_rpc_send_pieces(struct pifs_rpc *r, struct pifs_msg *req, void *data, size_t len,
			 size_t piece, int timeout_ms);

/* Wait up to @timeout_ms for the reply to @reqid (0: any reply) and decode
 * it into @rep (OUT). Its strings and lists, and the payload (*@payload,
 * *@plen; NULL and 0 without one; both may be NULL), borrow the rpc until
 * its next send or recv. Returns 0, the -errno of an R_STATUS reply (then
 * @rep holds it, detail included), -ETIMEDOUT, -EPROTO or -EBADMSG. */
int pifs_rpc_recv(struct pifs_rpc *r, uint64_t reqid, struct pifs_msg *rep, const void **payload,
		  size_t *plen, int timeout_ms);

/* Drop the last reply (and its payload) now rather than at the next recv:
 * a thread that read a 4 MiB chunk should not keep it pinned while idle. */
void pifs_rpc_release(struct pifs_rpc *r);

/* pifs_rpc_send then pifs_rpc_recv for its reply, within @timeout_ms in all. */
int pifs_rpc_call(struct pifs_rpc *r, struct pifs_msg *req, const void *payload, size_t plen,
		  struct pifs_msg *rep, const void **rpayload, size_t *rplen, int timeout_ms);

/* Server side: set the options above on @sock. Returns 0 or -errno. */
int pifs_rpc_sockopts(void *sock);

/* Server side: send @m (borrowed) on @sock, preceded by the routing frame
 * @ident (@ilen bytes; none when NULL) and followed by a payload frame when
 * @payload is not NULL. When @owned is non-zero @payload is malloc'd memory
 * that the rpc takes and frees after sending, whatever the result.
 * Returns 0 or -errno. */
int pifs_rpc_sendto(void *sock, const void *ident, size_t ilen, const struct pifs_msg *m,
		    void *payload, size_t plen, int owned);

/* Server side: reply R_STATUS with @status (0 or -errno) and @detail (may be
 * NULL) to the request @req that arrived with routing frame @ident. */
int pifs_rpc_status(void *sock, const void *ident, size_t ilen, const struct pifs_msg *req,
		    int status, const char *detail);

/* Monotonic milliseconds, for deadlines. */
int64_t pifs_now_ms(void);

/* Wall-clock nanoseconds since the Unix epoch. */
int64_t pifs_now_ns(void);

#endif
