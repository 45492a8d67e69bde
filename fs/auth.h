/* auth.h - who may talk to a pifs node, and what it may ask.
 *
 * Every TCP socket of pifs runs ZeroMQ's CURVE: the connection is encrypted
 * and both ends prove their key. A caller (DEALER) knows the public key of
 * the node it connects to from the allow-list (node N's key is "node-N"),
 * so a machine that pretends to be a node is not believed; a node (ROUTER)
 * asks its ZAP handler about every handshake, which accepts only keys that
 * the allow-list names and has not revoked. Then every request is checked
 * again, as it arrives, against the list as it is now and against the
 * role of its key (pifs_auth_may): a key revoked while it was connected is
 * refused from its next request on, and a client key cannot change the map.
 *
 * A struct pifs_auth is what one process knows: its own key pair, the
 * allow-list of its key directory (fs/keys.h), and what it refused. With
 * "security = none" in the config it holds no keys, every socket stays plain
 * TCP and every peer is treated as an admin.
 *
 * The allow-list is re-read when its file changes (looked at every second
 * by the ZAP handler), on pifs_auth_reload (SIGHUP), and replaced by
 * pifs_auth_install (pifs-admin keys push). Thread-safe. */
#ifndef PIFS_AUTH_H
#define PIFS_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "config.h"
#include "keys.h"

struct pifs_auth;

/* The security of a process that uses the key named @name ("node-3",
 * "client", "admin", ...) under the config @c (borrowed for the call):
 * @c->keys_dir/@name.key and @c->keys_dir/allowed. With
 * @c->security_none, no key is read. On an error @err (@errlen bytes) gets
 * a sentence naming the file and the next step. Returns 0, -ENOENT (no such
 * key or list), -EACCES (a key file others may read), -EKEYREVOKED (the key
 * is revoked), -EINVAL (a file that does not parse, or a key the list does
 * not name or names with another public half) or -ENOMEM. */
int pifs_auth_open(const struct pifs_conf *c, const char *name, struct pifs_auth **out /* OUT */,
		   char *err, size_t errlen);

/* Stop the ZAP handler if it runs, and free @a. NULL-safe. */
void pifs_auth_free(struct pifs_auth *a);

/* "security = none": no keys, plain sockets. */
bool pifs_auth_insecure(const struct pifs_auth *a);

/* The name of this process's key ("" when insecure). */
const char *pifs_auth_name(const struct pifs_auth *a);

/* The role of this process's key (PIFS_ROLE_ADMIN when insecure: then
 * nothing is checked). */
enum pifs_role pifs_auth_role(const struct pifs_auth *a);

/* Make @sock, about to connect to node @node, a CURVE client with this
 * process's key, believing only node-@node's key at the other end. The
 * allow-list is read again once when it does not name the node (a node
 * added since). Returns 0 (also when insecure or @a is NULL: then nothing
 * is set), -ENOKEY (the list has no key for the node), -EKEYREVOKED, or the
 * -errno of zmq_setsockopt. */
int pifs_auth_client(struct pifs_auth *a, void *sock, uint32_t node);

/* Make @sock, about to bind, a CURVE server with this process's key whose
 * every handshake the ZAP handler judges. pifs_auth_zap_start must have
 * run (-EINVAL otherwise): without a handler, ZeroMQ would admit any key.
 * Returns 0 (nothing when insecure) or -errno. */
int pifs_auth_server(struct pifs_auth *a, void *sock);

/* Start the ZAP handler of the ZeroMQ context @zctx (borrowed; it must
 * outlive @a's handler, which pifs_auth_free stops): a thread that answers
 * each CURVE handshake of the context's server sockets. Returns 0 (nothing
 * when insecure), -EBUSY if it runs, or -errno. */
int pifs_auth_zap_start(struct pifs_auth *a, void *zctx);

/* The role of the peer that sent @frame (a message part received on a
 * server socket), as the allow-list says now, and its key's name in @name
 * (@cap bytes; "" for a key no longer listed). PIFS_ROLE_NONE for a key
 * revoked or dropped from the list since its handshake. PIFS_ROLE_ADMIN,
 * name "", when insecure. */
enum pifs_role pifs_auth_peer(struct pifs_auth *a, zmq_msg_t *frame, char *name, size_t cap);

/* May a key of role @r send a request of type @type (PIFS_MSG_*)? */
bool pifs_auth_may(enum pifs_role r, uint16_t type);

/* Count a refusal, and log it (at warning) the first time this key is
 * refused from this @addr: @what says what was refused, for the log.
 * Bounded: past a few hundred peers, refusals are counted only. */
void pifs_auth_refused(struct pifs_auth *a, const char *addr, const char *key, const char *what);

/* Refusals counted since start. */
uint64_t pifs_auth_refusals(const struct pifs_auth *a);

/* Read the allow-list file again. Returns 0 (also when unchanged or
 * insecure) or the error of pifs_allow_load, and then the list in force
 * stays. */
int pifs_auth_reload(struct pifs_auth *a);

/* Take @len bytes at @text as the allow-list if its generation is newer
 * than the one in force: write it to the key directory, then use it.
 * Returns 1 if taken, 0 if not newer, -EINVAL (with a sentence in @err) if
 * it does not parse or no longer names this process's own key as active,
 * -EPERM when insecure, or the -errno of writing it. */
int pifs_auth_install(struct pifs_auth *a, const char *text, size_t len, char *err,
		      size_t errlen);

/* The generation of the allow-list in force; 0 when insecure. */
uint64_t pifs_auth_generation(struct pifs_auth *a);

/* Why do requests to node @node at @endpoint ("tcp://host:port") get no
 * answer? One handshake in @zctx, watched for up to @timeout_ms: 0 when it
 * succeeds, -EACCES when the node refused this process's key, -EPROTO when
 * the handshake failed otherwise (the node proves another key than node-N's
 * in the allow-list, or runs without security while this process runs with
 * it, or the reverse), -ETIMEDOUT when none was made (nothing listens
 * there), or the -errno of setting it up. For the messages of callers. */
int pifs_auth_probe(struct pifs_auth *a, void *zctx, uint32_t node, const char *endpoint,
		    int timeout_ms);

/* Why does the metadata service of @c not answer, when keys may be the
 * reason? pifs_auth_probe of the config's first voter (within @timeout_ms,
 * in @zctx), told in @out (@cap bytes): "node N at ADDR, asked with the
 * key 'K': what is wrong and what to do". Returns 1 when the handshake
 * failed for a reason to tell, 0 when it succeeded or nothing answered
 * (the caller's own message says that much). */
int pifs_auth_explain(struct pifs_auth *a, void *zctx, const struct pifs_conf *c, int timeout_ms,
		      char *out, size_t cap);

#endif
