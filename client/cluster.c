/* cluster.c - the cluster map, per-thread sockets, chunk put/get/sync. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "log.h"
#include "place.h"
#include "rpc.h"

#define EP_MAX 300

/* Node liveness (the UP flag) changes without a new map epoch, so a map in
 * use is fetched again when it is older than this, and after a node did
 * not answer (at most once per MAP_RETRY_MS). */
#define MAP_MAX_AGE_MS 5000
#define MAP_RETRY_MS 1000

struct mnode {
	uint32_t id, weight, flags;
	char ep[EP_MAX];
};

struct peer {
	char ep[EP_MAX];
	struct pifs_rpc *rpc;
};

/* The calling thread's sockets, one per endpoint. */
struct tls {
	struct peer *p;
	size_t n, cap;
};

struct pifs_cluster {
	const struct pifs_conf *conf;
	void *zctx;
	int timeout_ms;
	char meta_ep[EP_MAX];
	char meta_name[EP_MAX + 32];
	pthread_key_t key;

	/* Map fetches are serialised on their own socket, so that a fetch
	 * never disturbs the reply a caller's socket still lends out. */
	pthread_mutex_t fetch_mu;
	struct pifs_rpc *map_rpc;

	pthread_rwlock_t map_lock;
	int64_t fetched_ms;	/* when the map was last fetched */
	uint64_t epoch;
	uint32_t replicas, chunk_size;
	struct mnode *nodes;	/* owned; @n */
	size_t n;
};

static void tls_free(void *p)
{
	struct tls *t = p;

	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		pifs_rpc_free(t->p[i].rpc);
	free(t->p);
	free(t);
}

int pifs_cluster_new(const struct pifs_conf *conf, struct pifs_cluster **out)
{
	const struct pifs_conf_node *meta = pifs_conf_meta(conf);
	struct pifs_cluster *cl;
	int rc;

	*out = NULL;
	if (!meta)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->conf = conf;
	cl->timeout_ms = conf->timeout_ms ? (int)conf->timeout_ms : 10000;
	rc = pifs_conf_endpoint(meta->addr, cl->meta_ep, sizeof(cl->meta_ep));
	if (rc < 0)
		goto out_free;
	snprintf(cl->meta_name, sizeof(cl->meta_name), "%s (node %" PRIu32 ")", meta->addr,
		 meta->id);
	cl->zctx = zmq_ctx_new();
	if (!cl->zctx) {
		rc = -errno;
		goto out_free;
	}
	rc = -pthread_key_create(&cl->key, tls_free);
	if (rc < 0)
		goto out_ctx;
	rc = pifs_rpc_new(cl->zctx, cl->meta_ep, &cl->map_rpc);
	if (rc < 0)
		goto out_key;
	pthread_mutex_init(&cl->fetch_mu, NULL);
	pthread_rwlock_init(&cl->map_lock, NULL);
	*out = cl;
	return 0;
out_key:
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
	tls_free(pthread_getspecific(cl->key));
	pthread_setspecific(cl->key, NULL);
	pthread_key_delete(cl->key);
	pifs_rpc_free(cl->map_rpc);
	zmq_ctx_term(cl->zctx);
	pthread_rwlock_destroy(&cl->map_lock);
	pthread_mutex_destroy(&cl->fetch_mu);
	free(cl->nodes);
	free(cl);
}

const char *pifs_cluster_meta_name(const struct pifs_cluster *cl)
{
	return cl->meta_name;
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

/* The calling thread's socket to @ep, made on first use. */
static int peer(struct pifs_cluster *cl, const char *ep, struct pifs_rpc **out)
{
	struct tls *t = pthread_getspecific(cl->key);
	struct peer *p;
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
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->p[i].ep, ep) == 0) {
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
	snprintf(p->ep, sizeof(p->ep), "%s", ep);
	rc = pifs_rpc_new(cl->zctx, ep, &p->rpc);
	if (rc < 0)
		return rc;
	t->n++;
	*out = p->rpc;
	pifs_rpc_set_epoch(*out, epoch_now(cl));
	return 0;
}

/* Replace the map with the one in @m (an R_MAP). */
static int map_install(struct pifs_cluster *cl, const struct pifs_msg_R_MAP *m)
{
	struct pifs_cursor cur;
	struct pifs_node rec;
	struct mnode *nodes;
	size_t n = 0;
	int rc;

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
		nodes[n].id = rec.id;
		nodes[n].weight = rec.weight;
		nodes[n].flags = rec.flags;
		n++;
	}
	if (m->chunk_size == 0 || m->chunk_size > PIFS_FRAME_MAX_RAW) {
		free(nodes);
		return -EPROTO;
	}
	pthread_rwlock_wrlock(&cl->map_lock);
	if (m->epoch >= cl->epoch) {
		free(cl->nodes);
		cl->nodes = nodes;
		cl->n = n;
		cl->epoch = m->epoch;
		cl->replicas = m->replicas ? m->replicas : 1;
		cl->chunk_size = m->chunk_size;
		cl->fetched_ms = pifs_now_ms();
		nodes = NULL;
	}
	pthread_rwlock_unlock(&cl->map_lock);
	free(nodes);
	return 0;
}

/* Fetch the map (the newest, with the nodes' liveness as of now). Called
 * with fetch_mu held. */
static int map_fetch_locked(struct pifs_cluster *cl, int timeout_ms)
{
	struct pifs_msg req, rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	req.u.MAP_GET.have_epoch = epoch_now(cl);
	pifs_rpc_set_epoch(cl->map_rpc, req.u.MAP_GET.have_epoch);
	rc = pifs_rpc_call(cl->map_rpc, &req, NULL, 0, &rep, NULL, NULL, timeout_ms);
	if (rc == 0 && rep.type == PIFS_MSG_R_MAP)
		rc = map_install(cl, &rep.u.R_MAP);
	return rc;
}

static int map_fetch(struct pifs_cluster *cl, int timeout_ms)
{
	int rc;

	pthread_mutex_lock(&cl->fetch_mu);
	rc = map_fetch_locked(cl, timeout_ms);
	pthread_mutex_unlock(&cl->fetch_mu);
	return rc;
}

/* Fetch the map again when it is older than @max_age_ms, unless another
 * thread is fetching it right now: nobody waits for this. */
static void map_refresh(struct pifs_cluster *cl, int64_t max_age_ms)
{
	int64_t fetched;

	pthread_rwlock_rdlock(&cl->map_lock);
	fetched = cl->fetched_ms;
	pthread_rwlock_unlock(&cl->map_lock);
	if (pifs_now_ms() - fetched < max_age_ms || pthread_mutex_trylock(&cl->fetch_mu) != 0)
		return;
	if (map_fetch_locked(cl, cl->timeout_ms) < 0) {
		/* Do not ask again at once: the service may be restarting. */
		pthread_rwlock_wrlock(&cl->map_lock);
		cl->fetched_ms = pifs_now_ms() - max_age_ms + MAP_RETRY_MS;
		pthread_rwlock_unlock(&cl->map_lock);
	}
	pthread_mutex_unlock(&cl->fetch_mu);
}

/* A reply came with map epoch @epoch: catch up when it is newer. */
static void map_follow(struct pifs_cluster *cl, uint64_t epoch)
{
	int rc;

	if (epoch <= epoch_now(cl))
		return;
	rc = map_fetch(cl, cl->timeout_ms);
	if (rc < 0)
		pifs_warn("cannot fetch cluster map epoch %" PRIu64 " from %s: %s; keeping the old "
			  "one", epoch, cl->meta_name, strerror(-rc));
}

int pifs_cluster_connect(struct pifs_cluster *cl, int timeout_ms)
{
	int64_t deadline = pifs_now_ms() + timeout_ms;
	int rc;

	for (;;) {
		int64_t left = deadline - pifs_now_ms();
		struct timespec pause = {0, 200 * 1000 * 1000};

		rc = map_fetch(cl, left < 1000 ? (left > 100 ? (int)left : 100) : 1000);
		if (rc == 0 && pifs_cluster_chunk_size(cl) != 0)
			return 0;
		if (rc == 0)
			rc = -EAGAIN;
		if (pifs_now_ms() + 200 >= deadline)
			return rc;
		nanosleep(&pause, NULL);
	}
}

int pifs_cluster_meta_call(struct pifs_cluster *cl, struct pifs_msg *req, struct pifs_msg *rep)
{
	struct pifs_rpc *r;
	int rc;

	memset(rep, 0, sizeof(*rep));
	rc = peer(cl, cl->meta_ep, &r);
	if (rc < 0)
		return rc;
	rc = pifs_rpc_call(r, req, NULL, 0, rep, NULL, NULL, cl->timeout_ms);
	if (rc == 0 || rep->type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep->epoch);
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH)
		pifs_warn("%s to the metadata service at %s: %s; is pifs-storaged running there?",
			  pifs_proto_name(req->type), cl->meta_name, strerror(-rc));
	return rc;
}

/* A copy of the map's nodes for placement: @n entries, caller frees. */
static struct mnode *map_copy(struct pifs_cluster *cl, size_t *n, uint32_t *replicas)
{
	struct mnode *copy;

	map_refresh(cl, MAP_MAX_AGE_MS);
	pthread_rwlock_rdlock(&cl->map_lock);
	copy = malloc((cl->n ? cl->n : 1) * sizeof(*copy));
	if (copy) {
		memcpy(copy, cl->nodes, cl->n * sizeof(*copy));
		*n = cl->n;
		*replicas = cl->replicas;
	}
	pthread_rwlock_unlock(&cl->map_lock);
	return copy;
}

static const struct mnode *node_by_id(const struct mnode *nodes, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (nodes[i].id == id)
			return &nodes[i];
	return NULL;
}

/* The nodes that are in, best first for @id, into @order (room for @n). */
static size_t rank_in(const struct pifs_chunk_id *id, const struct mnode *nodes, size_t n,
		      uint32_t *order)
{
	struct pifs_place_node *pn = malloc((n ? n : 1) * sizeof(*pn));
	size_t k = 0;

	if (!pn)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!(nodes[i].flags & PIFS_NODE_IN))
			continue;
		pn[k].id = nodes[i].id;
		pn[k].weight = nodes[i].weight;
		k++;
	}
	if (k)
		pifs_place_rank(id, pn, k, order);
	free(pn);
	return k;
}

static bool chain_stored(const struct pifs_msg_R_PUT *rp, const uint32_t *chain, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pifs_cursor cur;
		struct pifs_nodeid nid;
		bool found = false;

		pifs_cursor_init(&cur, &rp->nodes);
		while (!found && pifs_nodeid_next(&cur, &nid) == 1)
			found = nid.id == chain[i];
		if (!found)
			return false;
	}
	return true;
}

/* One attempt to store @f on the current map's chain. Takes @f->data. */
static int put_once(struct pifs_cluster *cl, struct pifs_frame *f, uint32_t flags,
		    struct pifs_cluster_put *res)
{
	uint32_t replicas, *order = NULL, chain[PIFS_CLUSTER_MAX_CHAIN];
	struct mnode *nodes;
	size_t n = 0, k, nchain = 0;
	struct pifs_msg req, rep;
	struct pifs_buf lb;
	struct pifs_rpc *r;
	char hex[33];
	int rc = -ENOMEM;

	memset(&rep, 0, sizeof(rep));
	pifs_buf_init(&lb);
	nodes = map_copy(cl, &n, &replicas);
	if (!nodes)
		goto out_frame;
	order = malloc((n ? n : 1) * sizeof(*order));
	if (!order)
		goto out_nodes;
	k = rank_in(&f->hdr.id, nodes, n, order);
	for (size_t i = 0; i < k && nchain < replicas && nchain < PIFS_CLUSTER_MAX_CHAIN; i++) {
		const struct mnode *m = node_by_id(nodes, n, order[i]);

		if (m && (m->flags & PIFS_NODE_UP))
			chain[nchain++] = m->id;
	}
	rc = -EHOSTUNREACH;
	if (nchain == 0)
		goto out_order;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_PUT);
	req.u.CHUNK_PUT.id = f->hdr.id;
	req.u.CHUNK_PUT.flags = flags;
	for (size_t i = 1; i < nchain; i++) {
		struct pifs_nodeid nid = {.id = chain[i]};

		rc = pifs_nodeid_append(&lb, &nid);
		if (rc < 0)
			goto out_order;
	}
	req.u.CHUNK_PUT.chain = pifs_list_of(&lb, (uint32_t)(nchain - 1));
	rc = peer(cl, node_by_id(nodes, n, chain[0])->ep, &r);
	if (rc < 0)
		goto out_order;
	res->id = f->hdr.id;
	res->raw_len = f->hdr.raw_len;
	res->stored_len = (uint32_t)f->len;
	rc = pifs_rpc_send_owned(r, &req, f->data, f->len, cl->timeout_ms);
	f->data = NULL;
	if (rc == 0)
		rc = pifs_rpc_recv(r, req.reqid, &rep, NULL, NULL, cl->timeout_ms);
	if (rc == 0 || rep.type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep.epoch);
	if (rc == 0 && rep.type != PIFS_MSG_R_PUT)
		rc = -EPROTO;
	if (rc == 0 && !chain_stored(&rep.u.R_PUT, chain, nchain))
		rc = -EHOSTUNREACH;
	if (rc == 0) {
		memcpy(res->nodes, chain, nchain * sizeof(chain[0]));
		res->n_nodes = nchain;
	} else {
		pifs_chunk_id_hex(&f->hdr.id, hex);
		pifs_warn("chunk %s: chain from node %" PRIu32 " (%s) of %zu node(s) did not store "
			  "it: %s", hex, chain[0], node_by_id(nodes, n, chain[0])->ep, nchain,
			  strerror(-rc));
	}
out_order:
	free(order);
out_nodes:
	free(nodes);
out_frame:
	pifs_buf_fini(&lb);
	pifs_frame_release(f);
	return rc;
}

int pifs_cluster_put(struct pifs_cluster *cl, const void *raw, uint32_t raw_len, uint32_t flags,
		     struct pifs_cluster_put *res)
{
	struct pifs_frame f;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	for (int attempt = 0; attempt < 2; attempt++) {
		if (attempt > 0) {
			int frc = map_fetch(cl, cl->timeout_ms);

			if (frc < 0)
				pifs_warn("cannot refresh the cluster map from %s: %s",
					  cl->meta_name, strerror(-frc));
		}
		/* The frame goes to the socket without a copy, so a retry packs
		 * it again from the raw bytes: cheap next to a failed write. */
		rc = pifs_frame_pack(&f, raw, raw_len);
		if (rc < 0)
			return rc;
		rc = put_once(cl, &f, flags, res);
		if (rc == 0)
			return 0;
	}
	return rc == -ENOSPC ? -ENOSPC : -EIO;
}

/* Ask one node for @id and decode its frame. */
static int get_from(struct pifs_cluster *cl, const struct mnode *m,
		    const struct pifs_chunk_id *id, uint8_t **raw, uint32_t *len)
{
	struct pifs_frame_hdr h;
	struct pifs_msg req, rep;
	const void *payload;
	size_t plen;
	struct pifs_rpc *r;
	ssize_t got;
	uint8_t *buf;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = peer(cl, m->ep, &r);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_GET);
	req.u.CHUNK_GET.id = *id;
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, &payload, &plen, cl->timeout_ms);
	if (rc == 0 || rep.type == PIFS_MSG_R_STATUS)
		map_follow(cl, rep.epoch);
	if (rc < 0)
		return rc;
	if (rep.type != PIFS_MSG_R_CHUNK || !payload)
		return -EPROTO;
	rc = pifs_frame_parse(payload, plen, &h);
	if (rc < 0)
		return rc;
	if (!pifs_chunk_id_eq(&h.id, id))
		return -EBADMSG;
	buf = malloc(h.raw_len ? h.raw_len : 1);
	if (!buf)
		return -ENOMEM;
	got = pifs_frame_unpack(payload, plen, buf, h.raw_len);
	if (got < 0) {
		free(buf);
		return (int)got;
	}
	*raw = buf;
	*len = (uint32_t)got;
	return 0;
}

int pifs_cluster_get(struct pifs_cluster *cl, const struct pifs_chunk_id *id, uint8_t **raw,
		     uint32_t *len)
{
	uint32_t replicas, *order, *tries;
	size_t n = 0, k, ntries = 0;
	struct mnode *nodes;
	char hex[33];
	int rc = -ENOMEM;

	*raw = NULL;
	*len = 0;
	nodes = map_copy(cl, &n, &replicas);
	if (!nodes)
		return -ENOMEM;
	order = malloc((n ? n : 1) * sizeof(*order));
	tries = malloc((n ? n : 1) * sizeof(*tries));
	if (!order || !tries)
		goto out_free;
	/* Live owners in HRW order, then the live stand-ins that are not in
	 * (a rebalance may have left the chunk there), then the nodes marked
	 * down, whose heartbeat may only be late. */
	k = rank_in(id, nodes, n, order);
	for (size_t i = 0; i < k; i++)
		if (node_by_id(nodes, n, order[i])->flags & PIFS_NODE_UP)
			tries[ntries++] = order[i];
	for (size_t i = 0; i < n; i++)
		if ((nodes[i].flags & PIFS_NODE_UP) && !(nodes[i].flags & PIFS_NODE_IN))
			tries[ntries++] = nodes[i].id;
	for (size_t i = 0; i < k; i++)
		if (!(node_by_id(nodes, n, order[i])->flags & PIFS_NODE_UP))
			tries[ntries++] = order[i];
	pifs_chunk_id_hex(id, hex);
	rc = -EIO;
	for (size_t i = 0; i < ntries; i++) {
		const struct mnode *m = node_by_id(nodes, n, tries[i]);
		int grc = get_from(cl, m, id, raw, len);

		if (grc == 0) {
			rc = 0;
			break;
		}
		if (grc == -ENOMEM) {
			rc = grc;
			break;
		}
		if (grc != -ENOENT)
			pifs_warn("chunk %s: node %" PRIu32 " (%s) could not serve it: %s; trying "
				  "the next owner", hex, m->id, m->ep, strerror(-grc));
		if (grc == -ETIMEDOUT || grc == -EHOSTUNREACH)
			map_refresh(cl, MAP_RETRY_MS);
	}
	if (rc == -EIO)
		pifs_err("chunk %s: no node of %zu served a copy that verifies; run 'pifs-admin "
			 "heal' and check that its owners are up", hex, ntries);
out_free:
	free(tries);
	free(order);
	free(nodes);
	return rc;
}

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
		if (cl->nodes[i].id == node)
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
	rc = peer(cl, ep, &r);
	if (rc < 0)
		goto out_buf;
	pifs_msg_init(&req, PIFS_MSG_CHUNK_SYNC);
	req.u.CHUNK_SYNC.ids = pifs_list_of(&lb, (uint32_t)n);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, cl->timeout_ms);
	if (rc < 0)
		pifs_warn("CHUNK_SYNC of %zu chunk(s) on node %" PRIu32 " (%s): %s", n, node, ep,
			  strerror(-rc));
out_buf:
	pifs_buf_fini(&lb);
	return rc;
}
