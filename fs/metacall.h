/* metacall.h - asking the metadata service, wherever its leader is.
 *
 * The metadata log is replicated over the voters (fs/raft.h); only the
 * leader answers. A voter that is not the leader answers any metadata
 * request with R_LEADER {leader, addr, term}: leader 0 while an election is
 * under way. A struct pifs_metacall hides that from its caller: it sends to
 * the voter it believes leads (at first the config's voters, in file
 * order), follows R_LEADER at once, moves to the next voter when one does
 * not answer within the try time, pauses briefly while no leader is known,
 * and gives up only when the whole call's time is spent.
 *
 * Resending is safe. A mutation (kind MUT) goes with a session in its
 * envelope (PIFS_MSG_ONCE: a random client id per metacall, a seq per
 * mutation that every resend of it keeps, acked = that seq since the calls
 * of one metacall are sequential), so the state machine applies it once
 * however many leaders saw it (fs/once.c); queries and administration
 * requests change nothing or are idempotent.
 *
 * A voter that cannot even take the request within SEND_MS (no connection:
 * its process or its Pi is gone) is passed over at once rather than after
 * the try time, so that a dead leader costs a caller a fraction of a second
 * once the others have elected a new one.
 *
 * One metacall serves one thread at a time (its sockets are ZeroMQ
 * sockets); a book may be shared by many. No globals. */
#ifndef PIFS_METACALL_H
#define PIFS_METACALL_H

#include <stdint.h>

#include "config.h"
#include "proto.h"

struct pifs_auth;

struct pifs_metacall;

/* What the metacalls of one process share, so that what one thread learns
 * every thread uses at its next call: the voters known (the config's, those
 * named by redirects, and those the cluster map flags PIFS_NODE_META, such
 * as a voter added with pifs-admin meta add after the config was written)
 * and the voter that answered last. Thread-safe. */
struct pifs_metacall_book;

/* A book of the voters of @conf (borrowed for the call), and after them its
 * other nodes, asked only when no voter answers. Returns 0 or
 * -ENOMEM; *@out is freed with pifs_metacall_book_free once no metacall
 * uses it. */
int pifs_metacall_book_new(const struct pifs_conf *conf,
			   struct pifs_metacall_book **out /* OUT */);
void pifs_metacall_book_free(struct pifs_metacall_book *b);

/* Node @id at @addr ("host:port", borrowed) is a voter (its address
 * replacing an older one). Returns 0, -EINVAL or -ENOMEM. */
int pifs_metacall_book_learn(struct pifs_metacall_book *b, uint32_t id, const char *addr);

/* Learn the nodes of the cluster map @m (borrowed): those it flags
 * PIFS_NODE_META, and after them the others, which are asked only when no
 * voter known answers: every node redirects to the leader it knows, so a
 * caller whose map is older than the last change of the voters still finds
 * them. Nodes with an unusable address are skipped. Returns 0 or -ENOMEM. */
int pifs_metacall_book_learn_map(struct pifs_metacall_book *b, const struct pifs_msg_R_MAP *m);

struct pifs_metacall_opts {
	int timeout_ms; /* the whole call, across voters and elections: 10000 */
	int try_ms;	/* one try at one voter before the next is asked: 2000 */
	/* Shared with other metacalls (borrowed; it must outlive them), or
	 * NULL for a book of this metacall's own. */
	struct pifs_metacall_book *book;
};

/* A metacall for the voters of @conf (borrowed; it must outlive the
 * metacall) in the ZeroMQ context @zctx (borrowed), with the keys of @auth
 * (borrowed, as long; NULL: plain TCP). @o may be NULL for the
 * defaults above, with timeout_ms the config's [client] timeout. Returns 0,
 * -EINVAL (no voter in @conf) or -ENOMEM; *@out is freed with
 * pifs_metacall_free. */
int pifs_metacall_new(void *zctx, struct pifs_auth *auth, const struct pifs_conf *conf,
		      const struct pifs_metacall_opts *o, struct pifs_metacall **out /* OUT */);

/* Close the sockets. NULL-safe. */
void pifs_metacall_free(struct pifs_metacall *mc);

/* Send @req (borrowed; its request id and, for a mutation, its session are
 * set here) to the leader and wait for its reply @rep (OUT), whose strings
 * and lists borrow the metacall until its next call. Returns 0, the -errno
 * of an R_STATUS reply (@rep holds it, detail included), -ETIMEDOUT when no
 * leader answered in timeout_ms (-EHOSTUNREACH when no voter could even be
 * reached), -EPROTO or -EBADMSG. Never returns with @rep an R_LEADER. */
int pifs_metacall(struct pifs_metacall *mc, struct pifs_msg *req, struct pifs_msg *rep /* OUT */);

/* As pifs_metacall, giving up after @timeout_ms instead of timeout_ms. */
int pifs_metacall_within(struct pifs_metacall *mc, struct pifs_msg *req, struct pifs_msg *rep,
			 int timeout_ms);

/* Set the map epoch written into every request from now on. */
void pifs_metacall_set_epoch(struct pifs_metacall *mc, uint64_t epoch);

/* The leader last seen by any metacall of @b, 0 for none yet. */
uint32_t pifs_metacall_book_leader(struct pifs_metacall_book *b);

/* The voter that answered last, 0 before any answer; and "host:port (node
 * N)" of it (or of the first voter tried), for messages. Borrowed. */
uint32_t pifs_metacall_leader(const struct pifs_metacall *mc);
const char *pifs_metacall_name(const struct pifs_metacall *mc);

/* "node 1 at host:port, node 2 at host:port": every voter known, those of
 * the config and those learnt from R_LEADER, for messages that must say
 * where to look when none answered. Borrowed, until the next call. */
const char *pifs_metacall_voters(const struct pifs_metacall *mc);

#endif
