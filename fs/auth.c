/* auth.c - CURVE keys on sockets, the ZAP handler, and the role of each
 * request. */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "proto.h"
#include "rpc.h"

/* ZeroMQ asks the handler bound here about every handshake (RFC 27). */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* How often the handler looks at the allow-list file, and its stop flag. */
#define ZAP_POLL_MS 1000
/* Peers whose refusal was logged; past this many, refusals are counted. */
#define LOGGED_MAX 256

struct pifs_auth {
	bool insecure;
	struct pifs_keypair self;
	char allowed_path[1100];
	pthread_mutex_t lock; /* @allow, @file and @logged */
	struct pifs_allow allow;
	struct stat file;     /* of the list in force, to see it change */
	char logged[LOGGED_MAX][PIFS_KEY_NAME_MAX + 64];
	unsigned n_logged;
	_Atomic uint64_t refusals;
	/* The ZAP handler. */
	pthread_t zap;
	void *zap_sock; /* REP on ZAP_ENDPOINT, the thread's */
	bool zap_running;
	_Atomic bool zap_stop;
};

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Load the list file into @out and its stat into @st. */
static int load_list(struct pifs_auth *a, struct pifs_allow *out, struct stat *st, char *err,
		     size_t errlen)
{
	if (stat(a->allowed_path, st) < 0)
		memset(st, 0, sizeof(*st));
	return pifs_allow_load(out, a->allowed_path, err, errlen);
}

/* Does @l name our own key, active and with our public half? */
static int check_self(const struct pifs_auth *a, const struct pifs_allow *l, char *err,
		      size_t errlen)
{
	const struct pifs_key *k = pifs_allow_find(l, a->self.name);

	if (!k) {
		snprintf(err, errlen,
			 "%s does not list the key '%s': add it with 'pifs-admin keys add-...' on "
			 "the admin's machine and copy the new list here",
			 a->allowed_path, a->self.name);
		return -EINVAL;
	}
	if (k->revoked) {
		snprintf(err, errlen,
			 "the key '%s' is revoked in %s: this machine may no longer take part; "
			 "make it a new key with 'pifs-admin keys add-...'",
			 a->self.name, a->allowed_path);
		return -EKEYREVOKED;
	}
	if (strcmp(k->pub, a->self.pub) != 0 || k->role != a->self.role) {
		snprintf(err, errlen,
			 "%s lists the key '%s' with another public key or role than its key "
			 "file: copy both from the same 'pifs-admin keys' directory",
			 a->allowed_path, a->self.name);
		return -EINVAL;
	}
	return 0;
}

int pifs_auth_open(const struct pifs_conf *c, const char *name, struct pifs_auth **out, char *err,
		   size_t errlen)
{
	struct pifs_auth *a;
	char path[1100];
	int rc;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	pifs_allow_init(&a->allow);
	a->insecure = c->security_none;
	if (a->insecure) {
		*out = a;
		return 0;
	}
	snprintf(a->allowed_path, sizeof(a->allowed_path), "%s/%s", c->keys_dir,
		 PIFS_KEYS_ALLOWED);
	rc = pifs_keypair_path(c->keys_dir, name, path, sizeof(path));
	if (rc < 0) {
		snprintf(err, errlen, "%s: the key directory's path is too long", c->keys_dir);
		goto fail;
	}
	rc = pifs_keypair_load(&a->self, path, err, errlen);
	if (rc == -ENOENT)
		snprintf(err, errlen,
			 "no key '%s' at %s: make the cluster's keys with 'pifs-admin keys init' "
			 "(or 'keys add-...' for a new one) and bring this machine its key and the "
			 "allow-list in one file ('pifs-admin keys export %s -o FILE' there, "
			 "'pifs-admin keys import FILE' here), or set 'security = none' in "
			 "[cluster] to run without any (anyone on the network can then read and "
			 "destroy the data)",
			 name, path, name);
	if (rc < 0)
		goto fail;
	rc = load_list(a, &a->allow, &a->file, err, errlen);
	if (rc == -ENOENT)
		snprintf(err, errlen,
			 "no allow-list at %s: copy it from the key directory where 'pifs-admin "
			 "keys init' ran, or import a key bundle ('pifs-admin keys import FILE')",
			 a->allowed_path);
	if (rc == 0)
		rc = check_self(a, &a->allow, err, errlen);
	if (rc < 0)
		goto fail;
	*out = a;
	return 0;
fail:
	pifs_auth_free(a);
	return rc;
}

void pifs_auth_free(struct pifs_auth *a)
{
	if (!a)
		return;
	if (a->zap_running) {
		atomic_store(&a->zap_stop, true);
		pthread_join(a->zap, NULL);
	}
	pifs_allow_fini(&a->allow);
	pthread_mutex_destroy(&a->lock);
	explicit_bzero(&a->self, sizeof(a->self));
	free(a);
}

bool pifs_auth_insecure(const struct pifs_auth *a)
{
	return !a || a->insecure;
}

const char *pifs_auth_name(const struct pifs_auth *a)
{
	return pifs_auth_insecure(a) ? "" : a->self.name;
}

enum pifs_role pifs_auth_role(const struct pifs_auth *a)
{
	return pifs_auth_insecure(a) ? PIFS_ROLE_ADMIN : a->self.role;
}

/* Put @l (taken over) in force, read from a file whose stat is @st. Under
 * @a->lock. */
static void use_list(struct pifs_auth *a, struct pifs_allow *l, const struct stat *st)
{
	pifs_allow_fini(&a->allow);
	a->allow = *l;
	a->file = *st;
}

int pifs_auth_reload(struct pifs_auth *a)
{
	struct pifs_allow l;
	struct stat st;
	char err[512];
	int rc;

	if (pifs_auth_insecure(a))
		return 0;
	if (stat(a->allowed_path, &st) == 0) {
		pthread_mutex_lock(&a->lock);
		rc = same_file(&st, &a->file);
		pthread_mutex_unlock(&a->lock);
		if (rc)
			return 0;
	}
	pifs_allow_init(&l);
	rc = load_list(a, &l, &st, err, sizeof(err));
	if (rc < 0) {
		pifs_warn("%s; the list read before stays in force", err);
		return rc;
	}
	pthread_mutex_lock(&a->lock);
	if (l.generation != a->allow.generation)
		pifs_info("allow-list generation %llu in force (%zu keys)",
			  (unsigned long long)l.generation, l.n);
	use_list(a, &l, &st);
	pthread_mutex_unlock(&a->lock);
	return 0;
}

/* Node @node's public key into @pub: 0, -ENOKEY or -EKEYREVOKED. */
static int node_key(struct pifs_auth *a, uint32_t node, char *pub)
{
	const struct pifs_key *k;
	char name[32];
	int rc = -ENOKEY;

	snprintf(name, sizeof(name), "node-%u", node);
	pthread_mutex_lock(&a->lock);
	k = pifs_allow_find(&a->allow, name);
	if (k && k->role == PIFS_ROLE_NODE) {
		rc = k->revoked ? -EKEYREVOKED : 0;
		memcpy(pub, k->pub, PIFS_KEY_Z85 + 1);
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int pifs_auth_client(struct pifs_auth *a, void *sock, uint32_t node)
{
	char server[PIFS_KEY_Z85 + 1];
	int rc;

	if (pifs_auth_insecure(a))
		return 0;
	rc = node_key(a, node, server);
	if (rc == -ENOKEY) {
		pifs_auth_reload(a);
		rc = node_key(a, node, server);
	}
	if (rc < 0)
		return rc;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, PIFS_KEY_Z85) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, a->self.pub, PIFS_KEY_Z85) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->self.secret, PIFS_KEY_Z85) < 0)
		return -errno;
	return 0;
}

int pifs_auth_server(struct pifs_auth *a, void *sock)
{
	int one = 1;

	if (pifs_auth_insecure(a))
		return 0;
	/* Without a ZAP handler, libzmq 4.3 admits every key (refusing
	 * instead, ZMQ_ZAP_ENFORCE_DOMAIN, is still a draft): hence the rule
	 * that the handler is bound before any server socket and stays until
	 * the context ends. */
	if (!a->zap_running)
		return -EINVAL;
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->self.secret, PIFS_KEY_Z85) < 0 ||
	    zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, "pifs", 4) < 0)
		return -errno;
	return 0;
}

void pifs_auth_refused(struct pifs_auth *a, const char *addr, const char *key, const char *what)
{
	char peer[sizeof(a->logged[0])];
	bool log = true;
	unsigned i;

	atomic_fetch_add(&a->refusals, 1);
	snprintf(peer, sizeof(peer), "%s %s", addr, key);
	pthread_mutex_lock(&a->lock);
	for (i = 0; i < a->n_logged && log; i++)
		log = strcmp(a->logged[i], peer) != 0;
	if (log && a->n_logged < LOGGED_MAX)
		memcpy(a->logged[a->n_logged++], peer, sizeof(peer));
	else
		log = false;
	pthread_mutex_unlock(&a->lock);
	if (log)
		pifs_warn("refused %s from %s with key %s (logged once per peer and key; "
			  "'pifs-admin status' counts them all)",
			  what, addr, key);
}

uint64_t pifs_auth_refusals(const struct pifs_auth *a)
{
	return a ? atomic_load(&a->refusals) : 0;
}

enum pifs_role pifs_auth_peer(struct pifs_auth *a, zmq_msg_t *frame, char *name, size_t cap)
{
	const struct pifs_key *k;
	const char *user;
	enum pifs_role r = PIFS_ROLE_NONE;

	if (cap)
		name[0] = '\0';
	if (pifs_auth_insecure(a))
		return PIFS_ROLE_ADMIN;
	user = zmq_msg_gets(frame, "User-Id");
	if (!user)
		return PIFS_ROLE_NONE;
	pthread_mutex_lock(&a->lock);
	k = pifs_allow_find_pub(&a->allow, user);
	if (k) {
		snprintf(name, cap, "%s", k->name);
		if (!k->revoked)
			r = k->role;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

bool pifs_auth_may(enum pifs_role r, uint16_t type)
{
	switch (r) {
	case PIFS_ROLE_ADMIN:
		return true;
	case PIFS_ROLE_NONE:
		return false;
	default:
		break;
	}
	switch (type) {
	/* What a mount asks: the namespace, chunks in and out, the map. */
	case PIFS_MSG_CHUNK_PUT:
	case PIFS_MSG_CHUNK_GET:
	case PIFS_MSG_CHUNK_SYNC:
	case PIFS_MSG_CHUNK_HAS:
	case PIFS_MSG_MAP_GET:
	case PIFS_MSG_STATFS:
	case PIFS_MSG_META_SYNC:
		return true;
	case PIFS_MSG_MKNOD:
	case PIFS_MSG_SYMLINK:
	case PIFS_MSG_LINK:
	case PIFS_MSG_UNLINK:
	case PIFS_MSG_RMDIR:
	case PIFS_MSG_RENAME:
	case PIFS_MSG_SETATTR:
	case PIFS_MSG_COMMIT:
	case PIFS_MSG_SETXATTR:
	case PIFS_MSG_REMOVEXATTR:
	case PIFS_MSG_LOOKUP:
	case PIFS_MSG_GETATTR:
	case PIFS_MSG_READLINK:
	case PIFS_MSG_READDIR:
	case PIFS_MSG_OPEN:
	case PIFS_MSG_GETXATTR:
	case PIFS_MSG_LISTXATTR:
		return r == PIFS_ROLE_CLIENT;
	/* Between nodes: forwarding, heal, scrub, gc, heartbeats, Raft. */
	case PIFS_MSG_CHUNK_DEL:
	case PIFS_MSG_NODE_STAT:
	case PIFS_MSG_NODE_HELLO:
	case PIFS_MSG_CLUSTER_STAT:
	case PIFS_MSG_CHUNK_REFS:
	case PIFS_MSG_RAFT_VOTE:
	case PIFS_MSG_RAFT_VOTE_R:
	case PIFS_MSG_RAFT_APPEND:
	case PIFS_MSG_RAFT_APPEND_R:
	case PIFS_MSG_RAFT_SNAP:
	case PIFS_MSG_RAFT_SNAP_R:
		return r == PIFS_ROLE_NODE;
	/* The map, background work, the voters and the keys: admins only. */
	default:
		return false;
	}
}

uint64_t pifs_auth_generation(struct pifs_auth *a)
{
	uint64_t g;

	if (pifs_auth_insecure(a))
		return 0;
	pthread_mutex_lock(&a->lock);
	g = a->allow.generation;
	pthread_mutex_unlock(&a->lock);
	return g;
}

int pifs_auth_install(struct pifs_auth *a, const char *text, size_t len, char *err, size_t errlen)
{
	struct pifs_allow l;
	struct stat st;
	int rc;

	if (pifs_auth_insecure(a)) {
		snprintf(err, errlen, "this node runs with 'security = none' and takes no keys");
		return -EPERM;
	}
	pifs_allow_init(&l);
	rc = pifs_allow_parse(&l, text, len, "the allow-list sent", err, errlen);
	if (rc == 0)
		rc = check_self(a, &l, err, errlen);
	if (rc < 0) {
		pifs_allow_fini(&l);
		return rc == -EKEYREVOKED || rc == -ENOMEM ? rc : -EINVAL;
	}
	/* One install at a time: the lock is held across the write so that
	 * two pushes cannot leave the older list on disk. */
	pthread_mutex_lock(&a->lock);
	if (l.generation <= a->allow.generation) {
		pthread_mutex_unlock(&a->lock);
		pifs_allow_fini(&l);
		return 0;
	}
	rc = pifs_allow_save(&l, a->allowed_path);
	if (rc < 0) {
		pthread_mutex_unlock(&a->lock);
		snprintf(err, errlen, "could not write %s: %s", a->allowed_path, strerror(-rc));
		pifs_allow_fini(&l);
		return rc;
	}
	if (stat(a->allowed_path, &st) < 0)
		memset(&st, 0, sizeof(st));
	pifs_info("allow-list generation %llu in force (%zu keys), as pushed",
		  (unsigned long long)l.generation, l.n);
	use_list(a, &l, &st);
	pthread_mutex_unlock(&a->lock);
	return 1;
}

/* ---- the ZAP handler ---- */

/* Receive the parts of one ZAP request into @part (up to @max of them);
 * returns how many came, or -1. */
static int zap_recv(void *sock, zmq_msg_t *part, int max)
{
	int n = 0, more = 1;

	while (more) {
		zmq_msg_t junk, *m = n < max ? &part[n] : &junk;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, 0) < 0) {
			zmq_msg_close(m);
			while (n > 0)
				zmq_msg_close(&part[--n]);
			return -1;
		}
		more = zmq_msg_more(m);
		if (m == &junk)
			zmq_msg_close(m);
		else
			n++;
	}
	return n;
}

static void zap_send(void *sock, zmq_msg_t *reqid, const char *code, const char *text,
		     const char *user)
{
	zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_msg_send(reqid, sock, ZMQ_SNDMORE);
	zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(sock, "", 0, 0);
}

/* Judge one handshake: version, request id, domain, address, routing id,
 * mechanism, and for CURVE the client's 32-byte public key. */
static void zap_answer(struct pifs_auth *a, void *sock)
{
	enum { VERSION, REQID, DOMAIN, ADDRESS, IDENTITY, MECHANISM, KEY, N };
	zmq_msg_t part[N];
	char addr[64], pub[PIFS_KEY_Z85 + 1], who[PIFS_KEY_NAME_MAX + 32] = "";
	const struct pifs_key *k;
	const char *why = NULL;
	int n, i;

	n = zap_recv(sock, part, N);
	if (n < 0)
		return;
	if (n < REQID + 1) {
		for (i = 0; i < n; i++)
			zmq_msg_close(&part[i]);
		return;
	}
	snprintf(addr, sizeof(addr), "%.*s",
		 n > ADDRESS ? (int)zmq_msg_size(&part[ADDRESS]) : 0,
		 n > ADDRESS ? (const char *)zmq_msg_data(&part[ADDRESS]) : "");
	if (n != N || zmq_msg_size(&part[MECHANISM]) != 5 ||
	    memcmp(zmq_msg_data(&part[MECHANISM]), "CURVE", 5) != 0 ||
	    zmq_msg_size(&part[KEY]) != 32) {
		why = "a handshake without a CURVE key";
		snprintf(who, sizeof(who), "(none)");
	} else {
		zmq_z85_encode(pub, zmq_msg_data(&part[KEY]), 32);
		pthread_mutex_lock(&a->lock);
		k = pifs_allow_find_pub(&a->allow, pub);
		if (!k) {
			why = "a connection";
			snprintf(who, sizeof(who), "%.12s... (not in the list)", pub);
		} else if (k->revoked) {
			why = "a connection";
			snprintf(who, sizeof(who), "'%s' (revoked)", k->name);
		}
		pthread_mutex_unlock(&a->lock);
	}
	if (why) {
		pifs_auth_refused(a, addr, who, why);
		zap_send(sock, &part[REQID], "400", "key not allowed", "");
	} else {
		zap_send(sock, &part[REQID], "200", "OK", pub);
	}
	for (i = 0; i < n; i++)
		zmq_msg_close(&part[i]);
}

static void *zap_main(void *arg)
{
	struct pifs_auth *a = arg;
	int64_t looked = pifs_now_ms();

	while (!atomic_load(&a->zap_stop)) {
		zmq_pollitem_t it = {a->zap_sock, 0, ZMQ_POLLIN, 0};
		int rc = zmq_poll(&it, 1, ZAP_POLL_MS);

		if (rc < 0 && errno == ETERM)
			break;
		if (rc > 0)
			zap_answer(a, a->zap_sock);
		if (pifs_now_ms() - looked >= ZAP_POLL_MS) {
			pifs_auth_reload(a);
			looked = pifs_now_ms();
		}
	}
	zmq_close(a->zap_sock);
	a->zap_sock = NULL;
	return NULL;
}

int pifs_auth_zap_start(struct pifs_auth *a, void *zctx)
{
	int linger = 0, rc;

	if (pifs_auth_insecure(a))
		return 0;
	if (a->zap_running)
		return -EBUSY;
	/* Bound here, before the caller binds a server socket, so that no
	 * handshake finds the handler missing; the thread takes the socket
	 * over (pthread_create is the barrier ZeroMQ asks for). */
	a->zap_sock = zmq_socket(zctx, ZMQ_REP);
	if (!a->zap_sock)
		return -errno;
	if (zmq_setsockopt(a->zap_sock, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
	    zmq_bind(a->zap_sock, ZAP_ENDPOINT) < 0) {
		rc = -errno;
		zmq_close(a->zap_sock);
		a->zap_sock = NULL;
		return rc;
	}
	atomic_store(&a->zap_stop, false);
	rc = pthread_create(&a->zap, NULL, zap_main, a);
	if (rc) {
		zmq_close(a->zap_sock);
		a->zap_sock = NULL;
		return -rc;
	}
	a->zap_running = true;
	return 0;
}

/* ---- probe ---- */

/* The next event of the monitor @mon into *@ev and *@value; 0, or -1 when
 * none came within @ms. */
static int next_event(void *mon, int ms, uint16_t *ev, uint32_t *value)
{
	zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
	zmq_msg_t head, addr;
	int rc = -1;

	if (zmq_poll(&it, 1, ms) <= 0)
		return -1;
	zmq_msg_init(&head);
	zmq_msg_init(&addr);
	if (zmq_msg_recv(&head, mon, 0) >= 0 && zmq_msg_more(&head) &&
	    zmq_msg_recv(&addr, mon, 0) >= 0 && zmq_msg_size(&head) == 6) {
		const uint8_t *p = zmq_msg_data(&head);

		memcpy(ev, p, 2);
		memcpy(value, p + 2, 4);
		rc = 0;
	}
	zmq_msg_close(&head);
	zmq_msg_close(&addr);
	return rc;
}

int pifs_auth_probe(struct pifs_auth *a, void *zctx, uint32_t node, const char *endpoint,
		    int timeout_ms)
{
	const int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
			   ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
			   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
	void *sock = zmq_socket(zctx, ZMQ_DEALER), *mon = NULL;
	int64_t deadline = pifs_now_ms() + timeout_ms;
	bool connected = false;
	char monep[64];
	int zero = 0, rc;

	if (!sock)
		return -errno;
	snprintf(monep, sizeof(monep), "inproc://pifs-auth-probe-%p", sock);
	rc = zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ? -errno : 0;
	if (rc == 0)
		rc = pifs_auth_client(a, sock, node);
	if (rc == 0 && zmq_socket_monitor(sock, monep, events) < 0)
		rc = -errno;
	if (rc == 0) {
		mon = zmq_socket(zctx, ZMQ_PAIR);
		if (!mon || zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
		    zmq_connect(mon, monep) < 0 || zmq_connect(sock, endpoint) < 0)
			rc = -errno;
	}
	for (rc = rc ? rc : -ETIMEDOUT; rc == -ETIMEDOUT;) {
		int64_t left = deadline - pifs_now_ms();
		uint16_t ev;
		uint32_t value;

		if (left <= 0 || next_event(mon, (int)left, &ev, &value) < 0)
			break;
		if (ev == ZMQ_EVENT_CONNECTED)
			connected = true;
		else if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
			rc = 0;
		else if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
			rc = -EACCES;
		else if (ev != ZMQ_EVENT_DISCONNECTED || connected)
			rc = -EPROTO;
	}
	if (mon)
		zmq_close(mon);
	zmq_socket_monitor(sock, NULL, 0);
	zmq_close(sock);
	return rc;
}

/* A sentence for an operator about the result @rc of pifs_auth_probe. */
static const char *probe_hint(const struct pifs_auth *a, int rc)
{
	switch (rc) {
	case 0:
		return "the handshake succeeds: the node is up and takes this key";
	case -EACCES:
		return pifs_auth_insecure(a) ? "the node refused the connection"
					     : "the node refused this machine's key: it is "
					       "revoked, or missing from the node's allow-list "
					       "(pifs-admin keys list; keys push)";
	case -EPROTO:
		return pifs_auth_insecure(a)
			   ? "the handshake failed: the node runs with security on while this "
			     "config says 'security = none'"
			   : "the handshake failed: the node runs without security, or with "
			     "another key than the allow-list names for it (copy the same "
			     "key directory's files to both)";
	case -ETIMEDOUT:
		return "nothing answered: is pifs-storaged running there, and is the address "
		       "right?";
	case -ENOKEY:
		return "the allow-list has no key for that node: copy the newest allowed file "
		       "from the admin's key directory";
	case -EKEYREVOKED:
		return "the allow-list says that node's key is revoked";
	default:
		return "the connection could not be set up";
	}
}

int pifs_auth_explain(struct pifs_auth *a, void *zctx, const struct pifs_conf *c, int timeout_ms,
		      char *out, size_t cap)
{
	const struct pifs_conf_node *v = pifs_conf_meta(c);
	char ep[300];
	int rc;

	if (!v || pifs_conf_endpoint(v->addr, ep, sizeof(ep)) < 0)
		return 0;
	rc = pifs_auth_probe(a, zctx, v->id, ep, timeout_ms);
	if (rc == 0 || rc == -ETIMEDOUT)
		return 0;
	snprintf(out, cap, "node %u at %s, asked with the key '%s': %s", v->id, v->addr,
		 pifs_auth_name(a), probe_hint(a, rc));
	return 1;
}
