/* cluster.c - the cluster map, per-thread sockets, chunk put/get/sync/has. */
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "log.h"
#include "metacall.h"
#include "rpc.h"

#define EP_MAX 300

/* A node that is not even connected cannot take a request: waiting longer
 * than this for the connection only delays the next node. ZeroMQ retries a
 * lost connection at least once a second (rpc.c), so a node that is back
 * connects well within it. */
#define CONNECT_MS 2000
/* How long a node that failed stays avoided when the map does not say that
 * it went down and came back. */
#define AVOID_MS 5000
/* Map fetches that a newer epoch asks for are at most this frequent, and a
 * failed one is not tried again for MAP_RETRY_MS: the service may be
 * restarting. */
#define MAP_THROTTLE_MS 200
#define MAP_RETRY_MS 1000
/* Chunk ids per CHUNK_HAS: 1 MiB of ids, far under the message limit. */
#define HAS_BATCH 65536

struct mnode {
	struct pifs_plan_node pn;
	char ep[EP_MAX];
};

struct peer {
	uint32_t node;
	char ep[EP_MAX];
	struct pifs_rpc *rpc;
};

/* The calling thread's sockets, one per endpoint, and its way to the
 * metadata leader. */
struct tls {
	struct peer *p;
	size_t n, cap;
	struct pifs_metacall *mc; /* made on first use */
};

/* A node that failed a request, and whether a map showed it down since. */
struct suspect {
	uint32_t id;
	int err; /* what it failed with */
	int64_t since_ms;
	bool seen_down;
};

struct pifs_cluster {
	const struct pifs_conf *conf;
	struct pifs_auth *auth; /* borrowed */
	void *zctx;
	int timeout_ms;
	int connect_ms;
	/* The first voter of the config, for the messages of a thread that
	 * never asked the service: written once, so any thread may read it. */
	char meta_name[EP_MAX + 32];
	pthread_key_t key;
	uint32_t local_id; /* -o node=N; 0: found from the addresses */
	char **local_ips;  /* owned; this machine's addresses but loopback */
	size_t nlocal_ips;
	char hostname[256];

	/* Map fetches after the first run on the map thread, with its own
	 * metacall, so that a fetch never disturbs the reply a caller's
	 * metacall still lends out: a caller that saw a newer epoch or a dead
	 * node only asks for one (poke), and never waits for it, the
	 * metadata leader may be the node that died. */
	struct pifs_metacall *map_mc;
	/* The voters and the leader, as every thread's metacall learns them. */
	struct pifs_metacall_book *book;
	/* When a metadata call last found no leader, 0 once one answered. */
	_Atomic int64_t meta_lost_ms;
	pthread_mutex_t poke_mu;
	pthread_cond_t poke_cond;
	bool poked, stop;
	pthread_t map_thread;

	pthread_rwlock_t map_lock;
	uint64_t epoch;
	uint32_t replicas, chunk_size;
	struct mnode *nodes; /* owned; @n */
	size_t n;

	pthread_mutex_t sus_mu;
	struct suspect sus[PIFS_PLACE_MAX_NODES];
	size_t nsus;
};

static void *map_loop(void *arg);

/* A metacall waits the whole timeout for the service, but not for one voter
 * that is down: the next voter is asked after connect_ms. */
static const struct pifs_metacall_opts *meta_opts(const struct pifs_cluster *cl,
						  struct pifs_metacall_opts *mo)
{
	mo->timeout_ms = cl->timeout_ms;
	mo->try_ms = cl->connect_ms;
	mo->book = cl->book;
	return mo;
}

static void tls_free(void *p)
{
	struct tls *t = p;

	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		pifs_rpc_free(t->p[i].rpc);
	pifs_metacall_free(t->mc);
	free(t->p);
	free(t);
}

static void free_ips(struct pifs_cluster *cl)
{
	for (size_t i = 0; i < cl->nlocal_ips; i++)
		free(cl->local_ips[i]);
	free(cl->local_ips);
	cl->local_ips = NULL;
	cl->nlocal_ips = 0;
}

/* Note this machine's interface addresses other than loopback. A failure
 * only means that no node is taken for local. */
static void find_local_ips(struct pifs_cluster *cl)
{
	struct ifaddrs *ifs, *ifa;

	if (gethostname(cl->hostname, sizeof(cl->hostname)) < 0)
		cl->hostname[0] = '\0';
	cl->hostname[sizeof(cl->hostname) - 1] = '\0';
	if (getifaddrs(&ifs) < 0)
		return;
	for (ifa = ifs; ifa; ifa = ifa->ifa_next) {
		char ip[INET6_ADDRSTRLEN], **v;
		const void *a;
		int fam;

		if (!ifa->ifa_addr)
			continue;
		fam = ifa->ifa_addr->sa_family;
		if (fam == AF_INET) {
			const struct sockaddr_in *sin = (const void *)ifa->ifa_addr;

			if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127)
				continue;
			a = &sin->sin_addr;
		} else if (fam == AF_INET6) {
			const struct sockaddr_in6 *sin6 = (const void *)ifa->ifa_addr;

			if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
				continue;
			a = &sin6->sin6_addr;
		} else {
			continue;
		}
		if (!inet_ntop(fam, a, ip, sizeof(ip)))
			continue;
		v = realloc(cl->local_ips, (cl->nlocal_ips + 1) * sizeof(*v));
		if (!v)
			break;
		cl->local_ips = v;
		v[cl->nlocal_ips] = strdup(ip);
		if (!v[cl->nlocal_ips])
			break;
		cl->nlocal_ips++;
	}
	freeifaddrs(ifs);
}

/* Whether the map address @addr ("host:port" or "[v6]:port") names this
 * machine by an interface address or by its host name. */
static bool addr_is_local(const struct pifs_cluster *cl, const char *addr)
{
	char host[256];
	const char *end;
	size_t len;

	if (addr[0] == '[') {
		addr++;
		end = strchr(addr, ']');
	} else {
		end = strrchr(addr, ':');
	}
	if (!end)
		return false;
	len = (size_t)(end - addr);
	if (len == 0 || len >= sizeof(host))
		return false;
	memcpy(host, addr, len);
	host[len] = '\0';
	for (size_t i = 0; i < cl->nlocal_ips; i++)
		if (strcmp(cl->local_ips[i], host) == 0)
			return true;
	return cl->hostname[0] && strcasecmp(cl->hostname, host) == 0;
}

int pifs_cluster_new(const struct pifs_conf *conf, struct pifs_auth *auth,
		     struct pifs_cluster **out)
{
	const struct pifs_conf_node *meta = pifs_conf_meta(conf);
	struct pifs_metacall_opts mo;
	struct pifs_cluster *cl;
	int rc;

	*out = NULL;
	if (!meta)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->conf = conf;
	cl->auth = auth;
	cl->timeout_ms = conf->timeout_ms ? (int)conf->timeout_ms : 10000;
	cl->connect_ms = cl->timeout_ms < CONNECT_MS ? cl->timeout_ms : CONNECT_MS;
	snprintf(cl->meta_name, sizeof(cl->meta_name), "%s (node %" PRIu32 ")", meta->addr,
		 meta->id);
	cl->zctx = zmq_ctx_new();
	/* CURVE's work is done in the I/O threads (see rpc.h). */
	if (cl->zctx)
		zmq_ctx_set(cl->zctx, ZMQ_IO_THREADS, PIFS_IO_THREADS);
	if (!cl->zctx) {
		rc = -errno;
		goto out_free;
	}
	rc = -pthread_key_create(&cl->key, tls_free);
	if (rc < 0)
		goto out_ctx;
	rc = pifs_metacall_book_new(conf, &cl->book);
	if (rc < 0)
		goto out_key;
	rc = pifs_metacall_new(cl->zctx, auth, conf, meta_opts(cl, &mo), &cl->map_mc);
	if (rc < 0)
		goto out_key;
	find_local_ips(cl);
	pthread_rwlock_init(&cl->map_lock, NULL);
	pthread_mutex_init(&cl->sus_mu, NULL);
	pthread_mutex_init(&cl->poke_mu, NULL);
	pthread_cond_init(&cl->poke_cond, NULL);
	rc = -pthread_create(&cl->map_thread, NULL, map_loop, cl);
	if (rc < 0)
		goto out_locks;
	*out = cl;
	return 0;
out_locks:
	pthread_cond_destroy(&cl->poke_cond);
	pthread_mutex_destroy(&cl->poke_mu);
	pthread_mutex_destroy(&cl->sus_mu);
	pthread_rwlock_destroy(&cl->map_lock);
	free_ips(cl);
	pifs_metacall_free(cl->map_mc);
out_key:
	pifs_metacall_book_free(cl->book);
	pthread_key_delete(cl->key);
out_ctx:
	zmq_ctx_term(cl->zctx);
out_free:
	free(cl);
	return rc;
}

void pifs_cluster_free(struct pifs_cluster *cl)
{
	if (!cl)
		return;
	pthread_mutex_lock(&cl->poke_mu);
	cl->stop = true;
	pthread_cond_signal(&cl->poke_cond);
	pthread_mutex_unlock(&cl->poke_mu);
	pthread_join(cl->map_thread, NULL);
	tls_free(pthread_getspecific(cl->key));
	pthread_setspecific(cl->key, NULL);
	pthread_key_delete(cl->key);
	pifs_metacall_free(cl->map_mc);
	pifs_metacall_book_free(cl->book);
	zmq_ctx_term(cl->zctx);
	pthread_cond_destroy(&cl->poke_cond);
	pthread_mutex_destroy(&cl->poke_mu);
	pthread_mutex_destroy(&cl->sus_mu);
	pthread_rwlock_destroy(&cl->map_lock);
	free_ips(cl);
	free(cl->nodes);
	free(cl);
}

void pifs_cluster_set_local(struct pifs_cluster *cl, uint32_t id)
{
	cl->local_id = id;
}

const char *pifs_cluster_meta_name(const struct pifs_cluster *cl)
{
	const struct tls *t = pthread_getspecific(cl->key);

	return t && t->mc ? pifs_metacall_name(t->mc) : cl->meta_name;
}

static uint64_t epoch_now(struct pifs_cluster *cl)
{
	uint64_t e;

	pthread_rwlock_rdlock(&cl->map_lock);
	e = cl->epoch;
	pthread_rwlock_unlock(&cl->map_lock);
	return e;
}

uint32_t pifs_cluster_chunk_size(struct pifs_cluster *cl)
{
	uint32_t v;

	pthread_rwlock_rdlock(&cl->map_lock);
	v = cl->chunk_size;
	pthread_rwlock_unlock(&cl->map_lock);
	return v;
}

uint32_t pifs_cluster_replicas(struct pifs_cluster *cl)
{
	uint32_t v;

	pthread_rwlock_rdlock(&cl->map_lock);
	v = cl->replicas;
	pthread_rwlock_unlock(&cl->map_lock);
	return v;
}

/* The calling thread's sockets, made on first use. */
static int thread_tls(struct pifs_cluster *cl, struct tls **out)
{
	struct tls *t = pthread_getspecific(cl->key);
	int rc;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		rc = -pthread_setspecific(cl->key, t);
		if (rc < 0) {
			free(t);
			return rc;
		}
	}
	*out = t;
	return 0;
}

/* The calling thread's socket to node @node at @ep, made on first use. */
static int peer(struct pifs_cluster *cl, uint32_t node, const char *ep, struct pifs_rpc **out)
{
	struct peer *p;
	struct tls *t;
	int rc;

	rc = thread_tls(cl, &t);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < t->n; i++) {
		if (t->p[i].node == node && strcmp(t->p[i].ep, ep) == 0) {
			*out = t->p[i].rpc;
			pifs_rpc_set_epoch(*out, epoch_now(cl));
			return 0;
		}
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;

		p = realloc(t->p, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		t->p = p;
		t->cap = cap;
	}
	p = &t->p[t->n];
	p->node = node;
	snprintf(p->ep, sizeof(p->ep), "%s", ep);
	rc = pifs_rpc_new(cl->zctx, cl->auth, node, ep, &p->rpc);
	if (rc < 0)
		return rc;
	t->n++;
	*out = p->rpc;
	pifs_rpc_set_epoch(*out, epoch_now(cl));
	return 0;
}

/* The calling thread's metacall, made on first use, with the map's epoch. */
static int thread_metacall(struct pifs_cluster *cl, struct pifs_metacall **out)
{
	struct pifs_metacall_opts mo;
	struct tls *t;
	int rc;

	rc = thread_tls(cl, &t);
	if (rc < 0)
		return rc;
	if (!t->mc) {
		rc = pifs_metacall_new(cl->zctx, cl->auth, cl->conf, meta_opts(cl, &mo), &t->mc);
		if (rc < 0)
			return rc;
	}
	pifs_metacall_set_epoch(t->mc, epoch_now(cl));
	*out = t->mc;
	return 0;
}

/* ---- avoided nodes ---- */

/* Avoid node @id for a while: it timed out, was unreachable or failed a
 * write with @err. */
static void avoid(struct pifs_cluster *cl, uint32_t id, int err)
{
	struct suspect *s = NULL;

	pthread_mutex_lock(&cl->sus_mu);
	for (size_t i = 0; i < cl->nsus && !s; i++)
		if (cl->sus[i].id == id)
			s = &cl->sus[i];
	if (!s && cl->nsus < PIFS_PLACE_MAX_NODES)
		s = &cl->sus[cl->nsus++];
	if (s) {
		s->id = id;
		s->err = err;
		s->since_ms = pifs_now_ms();
		s->seen_down = false;
	}
	pthread_mutex_unlock(&cl->sus_mu);
}

/* Whether node @id is avoided now, and why (*@err); forgets the
 * suspicions that expired. */
static bool avoided(struct pifs_cluster *cl, uint32_t id, int64_t now, int *err)
{
	bool hit = false;

	*err = 0;
	pthread_mutex_lock(&cl->sus_mu);
	for (size_t i = 0; i < cl->nsus;) {
		if (now - cl->sus[i].since_ms >= AVOID_MS) {
			cl->sus[i] = cl->sus[--cl->nsus];
			continue;
		}
		if (cl->sus[i].id == id) {
			hit = true;
			*err = cl->sus[i].err;
		}
		i++;
	}
	pthread_mutex_unlock(&cl->sus_mu);
	return hit;
}

/* A new map: a suspect it shows down has been noticed by the cluster; one
 * it shows up again after that is back, and no longer avoided. */
static void suspects_follow(struct pifs_cluster *cl, const struct mnode *nodes, size_t n)
{
	pthread_mutex_lock(&cl->sus_mu);
	for (size_t i = 0; i < cl->nsus;) {
		struct suspect *s = &cl->sus[i];
		const struct mnode *m = NULL;

		for (size_t k = 0; k < n && !m; k++)
			if (nodes[k].pn.id == s->id)
				m = &nodes[k];
		if (m && !(m->pn.flags & PIFS_NODE_UP)) {
			s->seen_down = true;
		} else if (m && s->seen_down) {
			cl->sus[i] = cl->sus[--cl->nsus];
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&cl->sus_mu);
}

/* ---- the map ---- */

/* Replace the map with the one in @m (an R_MAP). */
static int map_install(struct pifs_cluster *cl, const struct pifs_msg_R_MAP *m)
{
	struct pifs_cursor cur;
	struct pifs_node rec;
	struct mnode *nodes;
	size_t n = 0;
	int rc;

	if (m->chunk_size == 0 || m->chunk_size > PIFS_FRAME_MAX_RAW ||
	    m->nodes.count > PIFS_PLACE_MAX_NODES)
		return -EPROTO;
	nodes = calloc(m->nodes.count ? m->nodes.count : 1, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	pifs_cursor_init(&cur, &m->nodes);
	while (n < m->nodes.count && (rc = pifs_node_next(&cur, &rec)) == 1) {
		char addr[EP_MAX];

		if (pifs_str_copy(rec.addr, addr, sizeof(addr)) < 0 ||
		    pifs_conf_endpoint(addr, nodes[n].ep, sizeof(nodes[n].ep)) < 0) {
			pifs_warn("cluster map epoch %" PRIu64 ": node %" PRIu32
				  " has an unusable address; it is left out until the map is fixed",
				  m->epoch, rec.id);
			continue;
		}
		nodes[n].pn.id = rec.id;
		nodes[n].pn.weight = rec.weight;
		nodes[n].pn.flags = rec.flags;
		nodes[n].pn.local = cl->local_id ? rec.id == cl->local_id : addr_is_local(cl, addr);
		n++;
	}
	pthread_rwlock_wrlock(&cl->map_lock);
	if (m->epoch >= cl->epoch) {
		free(cl->nodes);
		cl->nodes = nodes;
		cl->n = n;
		cl->epoch = m->epoch;
		cl->replicas = m->replicas ? m->replicas : 1;
		cl->chunk_size = m->chunk_size;
		suspects_follow(cl, nodes, n);
		nodes = NULL;
	}
	pthread_rwlock_unlock(&cl->map_lock);
	free(nodes);
	return 0;
}

/* Fetch the map with @mc (the calling thread's), with the nodes' liveness
 * as of now. */
static int map_fetch(struct pifs_cluster *cl, struct pifs_metacall *mc)
{
	struct pifs_msg req, rep;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	req.u.MAP_GET.have_epoch = epoch_now(cl);
	pifs_metacall_set_epoch(mc, req.u.MAP_GET.have_epoch);
	rc = pifs_metacall(mc, &req, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_MAP)
		rc = -EPROTO;
	if (rc == 0)
		rc = pifs_metacall_book_learn_map(cl->book, &rep.u.R_MAP);
	if (rc == 0)
		rc = map_install(cl, &rep.u.R_MAP);
	return rc;
}

/* Ask the map thread for a fetch; pokes while one runs make one more. */
static void map_poke(struct pifs_cluster *cl)
{
	pthread_mutex_lock(&cl->poke_mu);
	cl->poked = true;
	pthread_cond_signal(&cl->poke_cond);
	pthread_mutex_unlock(&cl->poke_mu);
}

/* Wait up to @ms or until the cluster is freed. Called with poke_mu held. */
static void pause_locked(struct pifs_cluster *cl, int ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!cl->stop && pthread_cond_timedwait(&cl->poke_cond, &cl->poke_mu, &until) == 0)
		;
}

/* The map thread: one fetch per poke, at most one per MAP_THROTTLE_MS, and
 * one per MAP_RETRY_MS while the service does not answer. */
static void *map_loop(void *arg)
{
	struct pifs_cluster *cl = arg;
	bool failing = false;
	int rc;

	pthread_mutex_lock(&cl->poke_mu);
	for (;;) {
		while (!cl->poked && !cl->stop)
			pthread_cond_wait(&cl->poke_cond, &cl->poke_mu);
		if (cl->stop)
			break;
		cl->poked = false;
		pthread_mutex_unlock(&cl->poke_mu);
		rc = map_fetch(cl, cl->map_mc);
		if (rc < 0 && !failing)
			pifs_warn(
			    "cannot fetch the cluster map from the metadata service (voters: "
			    "%s): %s; keeping epoch %" PRIu64 " and asking again every %d ms: "
			    "check that pifs-storaged runs on the voters and that most of them "
			    "are up",
			    pifs_metacall_voters(cl->map_mc), strerror(-rc), epoch_now(cl),
			    MAP_RETRY_MS);
		else if (rc == 0 && failing)
			pifs_info("cluster map epoch %" PRIu64 " fetched from %s again",
				  epoch_now(cl), pifs_metacall_name(cl->map_mc));
		failing = rc < 0;
		pthread_mutex_lock(&cl->poke_mu);
		if (failing)
			cl->poked = true;
		pause_locked(cl, failing ? MAP_RETRY_MS : MAP_THROTTLE_MS);
	}
	pthread_mutex_unlock(&cl->poke_mu);
	return NULL;
}

/* A reply came with map epoch @epoch: catch up when it is newer. */
static void map_follow(struct pifs_cluster *cl, uint64_t epoch)
{
	if (epoch > epoch_now(cl))
		map_poke(cl);
}

int pifs_cluster_connect(struct pifs_cluster *cl, int timeout_ms)
{
	int64_t deadline = pifs_now_ms() + timeout_ms;
	struct pifs_metacall *mc;
	int rc;

	rc = thread_metacall(cl, &mc);
	if (rc < 0)
		return rc;
	for (;;) {
		struct timespec pause = {0, 200 * 1000 * 1000};

		rc = map_fetch(cl, mc);
		if (rc == 0 && pifs_cluster_chunk_size(cl) != 0)
			return 0;
		if (rc == 0)
			rc = -EAGAIN;
		if (pifs_now_ms() + 200 >= deadline)
			return rc;
		nanosleep(&pause, NULL);
	}
}

bool pifs_cluster_meta_lost(struct pifs_cluster *cl)
{
	int64_t lost = atomic_load(&cl->meta_lost_ms);

	return lost != 0 && pifs_now_ms() - lost < META_LOST_MS;
}

int pifs_cluster_meta_call(struct pifs_cluster *cl, struct pifs_msg *req, struct pifs_msg *rep)
{
	return pifs_cluster_meta_call_within(cl, req, rep, cl->timeout_ms);
}

int pifs_cluster_meta_call_within(struct pifs_cluster *cl, struct pifs_msg *req,
				  struct pifs_msg *rep, int timeout_ms)
{
	struct pifs_metacall *mc;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rc = thread_metacall(cl, &mc);
	if (rc < 0)
		return rc;
	rc = pifs_metacall_within(mc, req, rep, timeout_ms);
	if (rc == 0 || rep->type == PIFS_MSG_R_STATUS) {
		map_follow(cl, rep->epoch);
		atomic_store(&cl->meta_lost_ms, 0);
	}
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH)
		atomic_store(&cl->meta_lost_ms, pifs_now_ms());
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH)
		pifs_warn("%s to the metadata service (voters: %s): %s within %d ms; check that "
			  "pifs-storaged runs on the voters, that most of them are up and that "
			  "this machine reaches their addresses",
			  pifs_proto_name(req->type), pifs_metacall_voters(mc), strerror(-rc),
			  timeout_ms);
	return rc;
}

/* A copy of the map's nodes with the avoided ones marked: @n entries, the
 * caller frees it. */
static struct mnode *map_copy(struct pifs_cluster *cl, size_t *n, uint32_t *replicas)
{
	int64_t now = pifs_now_ms();
	struct mnode *copy;

	pthread_rwlock_rdlock(&cl->map_lock);
	copy = malloc((cl->n ? cl->n : 1) * sizeof(*copy));
	if (copy) {
		memcpy(copy, cl->nodes, cl->n * sizeof(*copy));
		*n = cl->n;
		*replicas = cl->replicas;
	}
	pthread_rwlock_unlock(&cl->map_lock);
	for (size_t i = 0; copy && i < *n; i++)
		copy[i].pn.avoid = avoided(cl, copy[i].pn.id, now, &copy[i].pn.avoid_err);
	return copy;
}

/* The plan's view of @nodes, in @pn (room for @n). */
static void plan_nodes(const struct mnode *nodes, size_t n, struct pifs_plan_node *pn)
{
	for (size_t i = 0; i < n; i++)
		pn[i] = nodes[i].pn;
}

static const struct mnode *node_by_id(const struct mnode *nodes, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].pn.id == id)
			return &nodes[i];
	return NULL;
}

/* A node that cannot be reached or did not answer in time. */
static bool unreachable(int rc)
{
	return rc == -ETIMEDOUT || rc == -EHOSTUNREACH;
}

/* ---- put ---- */

/* Send @f to the chain @chain (@nchain nodes of @nodes) and record the
 * answer in @plan. The frame's data goes to the socket without a copy:
 * @f->data is NULL afterwards. Returns 0 (whatever the chain did) or
 * -ENOMEM. */
/* The pieces a frame of @len bytes goes in: a quarter of it, so that a small
 * file's frame is passed down the chain while it arrives too (a 64 KiB
 * thumbnail in four), from 16 KiB (smaller ones cost more per piece than
 * they save) up to PIFS_PUT_PIECE. */
static size_t piece_of(size_t len)
{
	size_t p = len / 4;

	return p < (16u << 10) ? (16u << 10) : p > PIFS_PUT_PIECE ? PIFS_PUT_PIECE : p;
}

static int put_chain(struct pifs_cluster *cl, const struct mnode *nodes, size_t n,
		     struct pifs_frame *f, uint32_t flags, const uint32_t *chain, size_t nchain,
		     struct pifs_wplan *plan, const char *hex)
{
	const struct mnode *head = node_by_id(nodes, n, chain[0]);
	uint32_t stored[PIFS_PLACE_MAX_NODES];
	size_t nstored = 0;
	struct pifs_msg req, rep;
	struct pifs_nodeid nid;
	struct pifs_cursor cur;
	struct pifs_buf lb;
	struct pifs_rpc *r;
	int rc = 0;

	memset(&rep, 0, sizeof(rep));
	pifs_buf_init(&lb);
	for (size_t i = 1; i < nchain && rc == 0; i++) {
		nid.id = chain[i];
		rc = pifs_nodeid_append(&lb, &nid);
	}
	if (rc == 0)
		rc = peer(cl, head->pn.id, head->ep, &r);
	if (rc < 0)
		goto out_buf;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.u.CHUNK_PUT.id = f->hdr.id;
	req.u.CHUNK_PUT.flags = flags;
	req.u.CHUNK_PUT.chain = pifs_list_of(&lb, (uint32_t)(nchain - 1));
	rc = pifs_rpc_send_pieces(r, &req, f->data, f->len, piece_of(f->len), cl->connect_ms);
	f->data = NULL;
	if (rc == 0)
		rc = pifs_rpc_recv(r, req.reqid, &rep, NULL, NULL, cl->timeout_ms);
	if (rc == 0 || rep.type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep.epoch);
	if (rc == 0 && rep.type != PIFS_MSG_R_PUT)
		rc = -EPROTO;
	if (rc == 0) {
		pifs_cursor_init(&cur, &rep.u.R_PUT.nodes);
		while (nstored < PIFS_PLACE_MAX_NODES && pifs_nodeid_next(&cur, &nid) == 1)
			stored[nstored++] = nid.id;
		pifs_wplan_stored(plan, chain, nchain, stored, nstored);
		/* A node the chain passed over is down, full or failing: the
		 * next chunks go to the next nodes meanwhile. */
		for (size_t i = 0; i < nchain; i++) {
			bool got = false;

			for (size_t k = 0; k < nstored && !got; k++)
				got = stored[k] == chain[i];
			if (got)
				continue;
			avoid(cl, chain[i], -EIO);
			if (i == 0)
				pifs_warn("chunk %s: node %" PRIu32 ", the head of its chain, did "
					  "not store it (the rest did); the next node in HRW order "
					  "takes its copy",
					  hex, chain[0]);
			else
				pifs_warn("chunk %s: node %" PRIu32
					  " of its chain (from node %" PRIu32
					  ") did not store it; the next node in HRW order "
					  "takes its copy and heal moves it home later",
					  hex, chain[i], chain[0]);
		}
	} else {
		pifs_wplan_failed(plan, chain[0], rc);
		if (rc != -EBADMSG)
			avoid(cl, chain[0], rc);
		if (unreachable(rc))
			map_poke(cl);
		pifs_warn("chunk %s: node %" PRIu32 " (%s) at the head of a chain of %zu did not "
			  "store it: %s; trying the next node in HRW order",
			  hex, chain[0], head->ep, nchain, strerror(-rc));
		rc = 0;
	}
	pifs_rpc_release(r);
out_buf:
	pifs_buf_fini(&lb);
	return rc;
}

int pifs_cluster_put(struct pifs_cluster *cl, const void *raw, uint32_t raw_len, uint32_t flags,
		     struct pifs_cluster_put *res)
{
	struct pifs_plan_node pn[PIFS_PLACE_MAX_NODES];
	uint32_t replicas, chain[PIFS_PLAN_MAX_CHAIN];
	struct pifs_wplan *plan;
	struct pifs_frame f;
	struct mnode *nodes;
	size_t n = 0, nchain;
	char hex[33];
	int rc;

	memset(res, 0, sizeof(*res));
	memset(&f, 0, sizeof(f));
	plan = malloc(sizeof(*plan));
	nodes = map_copy(cl, &n, &replicas);
	rc = -ENOMEM;
	if (!plan || !nodes)
		goto out_free;
	rc = pifs_frame_pack(&f, raw, raw_len);
	if (rc < 0)
		goto out_free;
	pifs_chunk_id_hex(&f.hdr.id, hex);
	plan_nodes(nodes, n, pn);
	pifs_wplan_init(plan, &f.hdr.id, pn, n, replicas);
	res->id = f.hdr.id;
	res->raw_len = f.hdr.raw_len;
	res->stored_len = (uint32_t)f.len;
	res->wanted = plan->replicas;
	while ((nchain = pifs_wplan_next(plan, chain)) > 0) {
		/* The frame went to the socket without a copy: a chain after
		 * the first packs it again, which is cheap next to a failure. */
		if (!f.data) {
			rc = pifs_frame_pack(&f, raw, raw_len);
			if (rc < 0)
				goto out_free;
		}
		rc = put_chain(cl, nodes, n, &f, flags, chain, nchain, plan, hex);
		if (rc < 0)
			goto out_free;
	}
	rc = pifs_wplan_result(plan);
	if (rc == 0)
		res->n_nodes = pifs_wplan_nodes(plan, res->nodes, PIFS_CLUSTER_MAX_CHAIN);
	else
		pifs_err("chunk %s: no node of %zu stored it (%s); check 'pifs-admin status' for "
			 "down or full nodes",
			 hex, n,
			 rc == -ENOSPC ? "every node that answered is full"
				       : "the others are down, unreachable or failing");
out_free:
	pifs_frame_release(&f);
	free(nodes);
	free(plan);
	return rc;
}

/* ---- get ---- */

/* Ask one node for @id and decode its frame. */
static int get_from(struct pifs_cluster *cl, const struct mnode *m, const struct pifs_chunk_id *id,
		    uint8_t **raw, uint32_t *len)
{
	struct pifs_msg req, rep;
	const void *payload;
	size_t plen;
	struct pifs_rpc *r;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = peer(cl, m->pn.id, m->ep, &r);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_GET);
	req.u.CHUNK_GET.id = *id;
	rc = pifs_rpc_send(r, &req, NULL, 0, cl->connect_ms);
	if (rc == 0)
		rc = pifs_rpc_recv(r, req.reqid, &rep, &payload, &plen, cl->timeout_ms);
	if (rc == 0 || rep.type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep.epoch);
	if (rc < 0)
		goto out_release;
	if (rep.type != PIFS_MSG_R_CHUNK || !payload)
		rc = -EPROTO;
	else
		rc = pifs_frame_decode(payload, plen, id, raw, len);
out_release:
	/* A thread that read a chunk must not keep its frame while idle. */
	pifs_rpc_release(r);
	return rc;
}

/* Start the reads of chunk @id at one of the first R live nodes of its read
 * order (its owners while they are up), picked by the chunk's hash rather
 * than always the first in HRW order: a file's chunks then come from all R
 * owners in turn, so that two readers of files whose first owners are the
 * same node still use more than one node's link. A mount with a local node
 * keeps asking it first. */
static void spread(const struct pifs_chunk_id *id, const struct pifs_plan_node *pn, size_t n,
		   uint32_t replicas, uint32_t *order, size_t nlive)
{
	uint32_t head[PIFS_PLAN_MAX_CHAIN];
	size_t k = replicas < nlive ? replicas : nlive, shift;

	for (size_t i = 0; i < n; i++)
		if (pn[i].local)
			return;
	if (k < 2 || k > PIFS_PLAN_MAX_CHAIN)
		return;
	shift = (size_t)(id->lo >> 40) % k;
	for (size_t i = 0; i < k; i++)
		head[i] = order[(i + shift) % k];
	memcpy(order, head, k * sizeof(*order));
}

int pifs_cluster_get(struct pifs_cluster *cl, const struct pifs_chunk_id *id, uint8_t **raw,
		     uint32_t *len)
{
	struct pifs_plan_node pn[PIFS_PLACE_MAX_NODES];
	uint32_t replicas, order[PIFS_PLACE_MAX_NODES];
	size_t n = 0, ntries, nlive, bad = 0, gone = 0, lack = 0;
	struct mnode *nodes;
	char hex[33];
	int rc = -EIO;

	*raw = NULL;
	*len = 0;
	nodes = map_copy(cl, &n, &replicas);
	if (!nodes)
		return -ENOMEM;
	plan_nodes(nodes, n, pn);
	ntries = pifs_plan_read(id, pn, n, replicas, order, &nlive);
	spread(id, pn, n, replicas, order, nlive);
	pifs_chunk_id_hex(id, hex);
	for (size_t i = 0; i < ntries; i++) {
		const struct mnode *m = node_by_id(nodes, n, order[i]);
		int grc = get_from(cl, m, id, raw, len);

		if (grc == 0) {
			rc = 0;
			break;
		}
		if (grc == -ENOMEM) {
			rc = grc;
			break;
		}
		if (grc == -ENOENT) {
			lack++;
			continue;
		}
		if (grc == -EBADMSG || grc == -EPROTO) {
			bad++;
			pifs_warn("chunk %s: the copy on node %" PRIu32 " (%s) is corrupt; reading "
				  "another copy, and heal or scrub repairs this one",
				  hex, m->pn.id, m->ep);
			continue;
		}
		if (unreachable(grc)) {
			gone++;
			avoid(cl, m->pn.id, grc);
			map_poke(cl);
		}
		pifs_warn("chunk %s: node %" PRIu32 " (%s) could not serve it: %s; trying the next "
			  "node",
			  hex, m->pn.id, m->ep, strerror(-grc));
	}
	if (rc == -EIO)
		pifs_err("chunk %s: no node of %zu served a copy that verifies (%zu corrupt, %zu "
			 "unreachable, %zu without it); the file reads as an I/O error until a "
			 "good copy is back: bring its nodes up and run 'pifs-admin status'",
			 hex, ntries, bad, gone, lack);
	free(nodes);
	return rc;
}

/* ---- sync ---- */

int pifs_cluster_sync(struct pifs_cluster *cl, uint32_t node, const struct pifs_chunk_id *ids,
		      size_t n)
{
	struct pifs_msg req, rep;
	char ep[EP_MAX] = "";
	struct pifs_rpc *r;
	struct pifs_buf lb;
	int rc = 0;

	pthread_rwlock_rdlock(&cl->map_lock);
	for (size_t i = 0; i < cl->n; i++)
		if (cl->nodes[i].pn.id == node)
			snprintf(ep, sizeof(ep), "%s", cl->nodes[i].ep);
	pthread_rwlock_unlock(&cl->map_lock);
	if (!ep[0])
		return -EIO;
	pifs_buf_init(&lb);
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct pifs_chunkid cid = {.id = ids[i]};

		rc = pifs_chunkid_append(&lb, &cid);
	}
	if (rc < 0)
		goto out_buf;
	rc = peer(cl, node, ep, &r);
	if (rc < 0)
		goto out_buf;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_SYNC);
	req.u.CHUNK_SYNC.ids = pifs_list_of(&lb, (uint32_t)n);
	rc = pifs_rpc_send(r, &req, NULL, 0, cl->connect_ms);
	if (rc == 0)
		rc = pifs_rpc_recv(r, req.reqid, &rep, NULL, NULL, cl->timeout_ms);
	if (rc == 0 || rep.type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep.epoch);
	pifs_rpc_release(r);
	if (unreachable(rc))
		avoid(cl, node, rc);
	if (rc < 0)
		pifs_warn("CHUNK_SYNC of %zu chunk(s) on node %" PRIu32 " (%s): %s", n, node, ep,
			  strerror(-rc));
out_buf:
	pifs_buf_fini(&lb);
	return rc;
}

/* ---- has ---- */

void pifs_cluster_has_fini(struct pifs_cluster_has *h)
{
	if (!h)
		return;
	free(h->nodes);
	free(h->err);
	free(h->have);
	memset(h, 0, sizeof(*h));
}

/* Ask the nodes of @h (their endpoints in @eps) about the @cnt chunks at
 * @ids, which are chunks @first.. of the @n: all requests first, then the
 * replies, so that the nodes answer in parallel. */
static int has_batch(struct pifs_cluster *cl, struct pifs_cluster_has *h, char (*eps)[EP_MAX],
		     const struct pifs_chunk_id *ids, size_t n, size_t first, size_t cnt)
{
	uint64_t reqid[PIFS_PLACE_MAX_NODES];
	struct pifs_rpc *r[PIFS_PLACE_MAX_NODES];
	struct pifs_buf lb;
	int rc = 0;

	pifs_buf_init(&lb);
	for (size_t c = 0; c < cnt && rc == 0; c++) {
		struct pifs_chunkid cid = {.id = ids[first + c]};

		rc = pifs_chunkid_append(&lb, &cid);
	}
	for (size_t i = 0; i < h->nnodes && rc == 0; i++) {
		struct pifs_msg req;

		r[i] = NULL;
		if (h->err[i])
			continue;
		rc = peer(cl, h->nodes[i], eps[i], &r[i]);
		if (rc < 0)
			break;
		pifs_msg_init(&req, PIFS_MSG_CHUNK_HAS);
		req.u.CHUNK_HAS.ids = pifs_list_of(&lb, (uint32_t)cnt);
		h->err[i] = pifs_rpc_send(r[i], &req, NULL, 0, cl->connect_ms);
		reqid[i] = req.reqid;
	}
	for (size_t i = 0; i < h->nnodes && rc == 0; i++) {
		struct pifs_msg rep;
		int hrc;

		if (h->err[i] || !r[i])
			continue;
		memset(&rep, 0, sizeof(rep));
		hrc = pifs_rpc_recv(r[i], reqid[i], &rep, NULL, NULL, cl->timeout_ms);
		if (hrc == 0 && (rep.type != PIFS_MSG_R_HAS || rep.u.R_HAS.have.len != cnt))
			hrc = -EPROTO;
		if (hrc == 0)
			for (size_t c = 0; c < cnt; c++)
				h->have[i * n + first + c] = rep.u.R_HAS.have.p[c] ? 1 : 0;
		if (hrc == 0 || rep.type == PIFS_MSG_R_STATUS)
			map_follow(cl, rep.epoch);
		pifs_rpc_release(r[i]);
		h->err[i] = hrc;
	}
	pifs_buf_fini(&lb);
	return rc;
}

int pifs_cluster_has(struct pifs_cluster *cl, const struct pifs_chunk_id *ids, size_t n,
		     struct pifs_cluster_has *out)
{
	char(*eps)[EP_MAX] = NULL;
	struct mnode *nodes;
	uint32_t replicas;
	size_t nn = 0;
	int rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	nodes = map_copy(cl, &nn, &replicas);
	if (!nodes)
		return -ENOMEM;
	out->nodes = calloc(nn ? nn : 1, sizeof(*out->nodes));
	out->err = calloc(nn ? nn : 1, sizeof(*out->err));
	out->have = calloc(nn && n ? nn * n : 1, 1);
	eps = calloc(nn ? nn : 1, sizeof(*eps));
	if (!out->nodes || !out->err || !out->have || !eps)
		goto out_free;
	for (size_t i = 0; i < nn; i++) {
		if (!(nodes[i].pn.flags & PIFS_NODE_UP))
			continue;
		out->nodes[out->nnodes] = nodes[i].pn.id;
		memcpy(eps[out->nnodes], nodes[i].ep, EP_MAX);
		out->nnodes++;
	}
	rc = 0;
	for (size_t first = 0; first < n && rc == 0; first += HAS_BATCH)
		rc = has_batch(cl, out, eps, ids, n, first,
			       n - first < HAS_BATCH ? n - first : HAS_BATCH);
	for (size_t i = 0; i < out->nnodes; i++)
		if (unreachable(out->err[i]))
			avoid(cl, out->nodes[i], out->err[i]);
out_free:
	if (rc < 0)
		pifs_cluster_has_fini(out);
	free(eps);
	free(nodes);
	return rc;
}
