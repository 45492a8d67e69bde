/* null_cluster.c - client/cluster.h with no network: the "null backend".
 *
 * pifs-mount-null links this file instead of client/cluster.c, so that the
 * FUSE client runs against a cluster that costs nothing: its throughput is
 * then the client's own ceiling (FUSE, the write buffer, chunk framing, the
 * cache), and a regression shows where it happens rather than somewhere in
 * the network or the storage daemons.
 *
 * The cluster is one healthy node, the configuration's metadata voter, with
 * R = 1. The metadata is a struct pifs_meta in this process, stamped and
 * applied as the metadata service does (storaged/metad.c) but without its
 * log. Chunks are packed exactly as cluster.c packs them (hash, LZ4 when it
 * pays, frame) and kept in RAM by id, never deleted; reads unpack and verify
 * them, so the CPU of the real path is all here but the transfer.
 *
 * Thread-safe: one mutex for the metadata and one for the chunk map. */
#include "cluster.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hmap.h"
#include "log.h"
#include "meta.h"
#include "rpc.h"

#define META_NAME_MAX 320

/* A stored chunk. Never changed nor freed before the cluster is: a reader
 * unpacks it after dropping the lock. */
struct chunk {
	struct pifs_chunk_id id;
	uint8_t *frame; /* owned; @len bytes, as pifs_frame_pack made it */
	size_t len;
};

struct pifs_cluster {
	const struct pifs_conf *conf;
	uint32_t node;	   /* the one node: the configuration's metadata voter */
	uint64_t capacity; /* bytes: the machine's RAM, where the chunks live */
	char meta_name[META_NAME_MAX];
	/* Each thread's encoded last reply, which the decoded reply borrows
	 * until the thread's next call, as it borrows a socket in cluster.c. */
	pthread_key_t key;

	pthread_mutex_t meta_mu;
	struct pifs_meta *meta;
	struct pifs_buf scratch; /* what apply's and query's replies borrow */
	int64_t last_now;	 /* the last "now" stamped, so that stamps increase */
	uint64_t reqid;

	pthread_mutex_t store_mu;
	struct pifs_hmap chunks; /* struct chunk, by id */
	uint64_t stored;	 /* frame bytes held */
};

static uint64_t id_hash(const struct pifs_chunk_id *id)
{
	/* The id is an XXH3-128 already: its low half is a good hash. */
	return id->lo;
}

static uint64_t chunk_hash(const void *elem)
{
	return id_hash(&((const struct chunk *)elem)->id);
}

static bool chunk_eq(const void *elem, const void *key)
{
	return pifs_chunk_id_eq(&((const struct chunk *)elem)->id, key);
}

static void reply_buf_free(void *p)
{
	pifs_buf_fini(p);
	free(p);
}

/* The calling thread's reply buffer, made on first use, or NULL. */
static struct pifs_buf *reply_buf(struct pifs_cluster *cl)
{
	struct pifs_buf *b = pthread_getspecific(cl->key);

	if (b)
		return b;
	b = malloc(sizeof(*b));
	if (!b)
		return NULL;
	pifs_buf_init(b);
	if (pthread_setspecific(cl->key, b) != 0) {
		free(b);
		return NULL;
	}
	return b;
}

int pifs_cluster_new(const struct pifs_conf *conf, struct pifs_auth *auth,
		     struct pifs_cluster **out)
{
	const struct pifs_conf_node *meta = pifs_conf_meta(conf);
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	struct pifs_cluster *cl;
	int rc;

	(void)auth; /* no network, nothing to prove */
	*out = NULL;
	if (!meta)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->conf = conf;
	cl->node = meta->id;
	cl->capacity = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
	snprintf(cl->meta_name, sizeof(cl->meta_name),
		 "in-process (node %" PRIu32 ", null backend)", meta->id);
	cl->meta = pifs_meta_new();
	if (!cl->meta) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = -pthread_key_create(&cl->key, reply_buf_free);
	if (rc < 0)
		goto out_meta;
	pifs_buf_init(&cl->scratch);
	pifs_hmap_init(&cl->chunks, chunk_hash, chunk_eq);
	pthread_mutex_init(&cl->meta_mu, NULL);
	pthread_mutex_init(&cl->store_mu, NULL);
	*out = cl;
	return 0;
out_meta:
	pifs_meta_free(cl->meta);
out_free:
	free(cl);
	return rc;
}

void pifs_cluster_free(struct pifs_cluster *cl)
{
	struct chunk *c;
	size_t pos = 0;

	if (!cl)
		return;
	reply_buf_free(pthread_getspecific(cl->key));
	pthread_setspecific(cl->key, NULL);
	pthread_key_delete(cl->key);
	while ((c = pifs_hmap_next(&cl->chunks, &pos))) {
		free(c->frame);
		free(c);
	}
	pifs_hmap_fini(&cl->chunks);
	pifs_buf_fini(&cl->scratch);
	pifs_meta_free(cl->meta);
	pthread_mutex_destroy(&cl->store_mu);
	pthread_mutex_destroy(&cl->meta_mu);
	free(cl);
}

void pifs_cluster_set_local(struct pifs_cluster *cl, uint32_t id)
{
	/* The one node is every chunk's only owner: it is asked first anyway. */
	(void)cl;
	(void)id;
}

const char *pifs_cluster_meta_name(const struct pifs_cluster *cl)
{
	return cl->meta_name;
}

static void stats(struct pifs_cluster *cl, struct pifs_meta_stats *st)
{
	pthread_mutex_lock(&cl->meta_mu);
	pifs_meta_stats(cl->meta, st);
	pthread_mutex_unlock(&cl->meta_mu);
}

uint32_t pifs_cluster_chunk_size(struct pifs_cluster *cl)
{
	struct pifs_meta_stats st;

	stats(cl, &st);
	return st.chunk_size;
}

uint32_t pifs_cluster_replicas(struct pifs_cluster *cl)
{
	struct pifs_meta_stats st;

	stats(cl, &st);
	return st.replicas ? st.replicas : 1;
}

/* ---- metadata ---- */

/* Stamp the mutation @m with an increasing "now" and apply it, as the
 * metadata service does; @rep (OUT) borrows cl->scratch and the state.
 * Called with meta_mu held. A failed apply leaves the state unusable, so
 * the process stops, as pifs-storaged does. */
static void mutate(struct pifs_cluster *cl, struct pifs_msg *m, struct pifs_msg *rep)
{
	uint64_t index = pifs_meta_index(cl->meta) + 1;
	int64_t now = pifs_now_ns();
	int rc;

	if (now <= cl->last_now)
		now = cl->last_now + 1;
	cl->last_now = now;
	pifs_proto_stamp(m, now);
	rc = pifs_meta_apply(cl->meta, index, m, rep, &cl->scratch);
	if (rc < 0) {
		pifs_err("null backend: applying metadata entry %" PRIu64 " (%s) failed: %s; "
			 "stopping, as the state in RAM is no longer usable: unmount and mount "
			 "again (the null backend keeps nothing)",
			 index, pifs_proto_name(m->type), strerror(-rc));
		_exit(EXIT_FAILURE);
	}
}

/* Answer @m (a copy of the caller's request; mutations are stamped in it)
 * into @rep, as storaged/metad.c's process() does. Called with meta_mu held. */
static void serve(struct pifs_cluster *cl, struct pifs_msg *m, struct pifs_msg *rep)
{
	int kind = pifs_proto_kind(m->type);
	int rc = 0;

	if (kind == PIFS_KIND_MUT) {
		mutate(cl, m, rep);
		return;
	}
	/* Nothing is logged, so there is nothing to sync. */
	if (m->type == PIFS_MSG_META_SYNC) {
		pifs_msg_init(rep, PIFS_MSG_R_STATUS);
		return;
	}
	if (kind == PIFS_KIND_QRY || m->type == PIFS_MSG_MAP_GET)
		rc = pifs_meta_query(cl->meta, m, rep, &cl->scratch);
	else
		rc = -EOPNOTSUPP;
	if (rc < 0) {
		pifs_msg_init(rep, PIFS_MSG_R_STATUS);
		rep->u.R_STATUS.status = rc;
		rep->u.R_STATUS.detail = pifs_str_of("the null backend serves metadata "
						     "mutations, queries and MAP_GET only");
		return;
	}
	/* df: the chunks live in this process's RAM, so the machine's RAM is
	 * the space, and what they take of it is used. */
	if (rep->type == PIFS_MSG_R_STATFS) {
		pthread_mutex_lock(&cl->store_mu);
		rep->u.R_STATFS.capacity = cl->capacity;
		rep->u.R_STATFS.free = cl->capacity > cl->stored ? cl->capacity - cl->stored : 0;
		pthread_mutex_unlock(&cl->store_mu);
	}
}

int pifs_cluster_meta_call(struct pifs_cluster *cl, struct pifs_msg *req, struct pifs_msg *rep)
{
	struct pifs_buf *out = reply_buf(cl);
	struct pifs_meta_stats st;
	struct pifs_msg m, r;
	int rc;

	memset(rep, 0, sizeof(*rep));
	if (!out)
		return -ENOMEM;
	pthread_mutex_lock(&cl->meta_mu);
	req->reqid = ++cl->reqid;
	m = *req;
	serve(cl, &m, &r);
	pifs_meta_stats(cl->meta, &st);
	r.reqid = req->reqid;
	r.epoch = st.epoch;
	/* Encoded under the lock: the reply borrows the scratch and the state
	 * (a symlink's target), which the next caller may change. The thread
	 * then decodes its own copy, as it would decode a reply off the wire. */
	pifs_buf_reset(out);
	rc = pifs_proto_encode(&r, out);
	pthread_mutex_unlock(&cl->meta_mu);
	if (rc < 0)
		return rc;
	rc = pifs_proto_decode(out->p, out->len, rep);
	if (rc < 0)
		return rc;
	if (rep->type == PIFS_MSG_R_STATUS && rep->u.R_STATUS.status < 0)
		return rep->u.R_STATUS.status;
	return 0;
}

/* The state is in this process: it always answers, at once. */
int pifs_cluster_meta_call_within(struct pifs_cluster *cl, struct pifs_msg *req,
				  struct pifs_msg *rep, int timeout_ms)
{
	(void)timeout_ms;
	return pifs_cluster_meta_call(cl, req, rep);
}

bool pifs_cluster_meta_lost(struct pifs_cluster *cl)
{
	(void)cl;
	return false;
}

/* A new cluster of one node, as pifs-storaged's bootstrap makes it, but
 * with R = 1 and the node up at once: there is no heartbeat to wait for. */
static int bootstrap(struct pifs_cluster *cl)
{
	const struct pifs_conf_node *meta = pifs_conf_meta(cl->conf);
	uint32_t weight = meta->weight;
	struct pifs_msg m, rep;

	/* Weight "auto" is the data disk's size in GiB; here RAM is the disk. */
	if (weight == 0)
		weight = cl->capacity >> 30 ? (uint32_t)(cl->capacity >> 30) : 1;
	pifs_msg_init(&m, PIFS_MSG_INIT);
	m.u.INIT.replicas = 1;
	m.u.INIT.chunk_size = cl->conf->chunk_size;
	m.u.INIT.cluster_id = (uint64_t)pifs_now_ns() ^ ((uint64_t)getpid() << 32);
	mutate(cl, &m, &rep);
	if (rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.status < 0)
		return rep.u.R_STATUS.status;
	pifs_msg_init(&m, PIFS_MSG_NODE_ADD);
	m.u.NODE_ADD.id = meta->id;
	m.u.NODE_ADD.weight = weight;
	m.u.NODE_ADD.flags = PIFS_NODE_IN | PIFS_NODE_UP | PIFS_NODE_META;
	m.u.NODE_ADD.addr = pifs_str_of(meta->addr);
	mutate(cl, &m, &rep);
	if (rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.status < 0)
		return rep.u.R_STATUS.status;
	return 0;
}

int pifs_cluster_connect(struct pifs_cluster *cl, int timeout_ms)
{
	int rc = 0;

	/* The service is this process: nothing to wait for. */
	(void)timeout_ms;
	pthread_mutex_lock(&cl->meta_mu);
	if (pifs_meta_index(cl->meta) == 0)
		rc = bootstrap(cl);
	pthread_mutex_unlock(&cl->meta_mu);
	if (rc < 0)
		pifs_err("null backend: could not initialise the one-node cluster with chunk "
			 "size %" PRIu32 ": %s; check [cluster] chunk_size in the configuration",
			 cl->conf->chunk_size, strerror(-rc));
	return rc;
}

/* ---- chunks ---- */

/* The stored chunk @id, or NULL. */
static const struct chunk *find(struct pifs_cluster *cl, const struct pifs_chunk_id *id)
{
	const struct chunk *c;

	pthread_mutex_lock(&cl->store_mu);
	c = pifs_hmap_find(&cl->chunks, id_hash(id), id);
	pthread_mutex_unlock(&cl->store_mu);
	return c;
}

int pifs_cluster_put(struct pifs_cluster *cl, const void *raw, uint32_t raw_len, uint32_t flags,
		     struct pifs_cluster_put *res)
{
	struct pifs_frame f;
	struct chunk *c;
	int rc;

	/* RAM needs no fsync: PIFS_PUT_SYNC is met as soon as the chunk is in
	 * the map. */
	(void)flags;
	memset(res, 0, sizeof(*res));
	memset(&f, 0, sizeof(f));
	rc = pifs_frame_pack(&f, raw, raw_len);
	if (rc < 0)
		return rc;
	c = malloc(sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out_release;
	}
	c->id = f.hdr.id;
	c->frame = f.data;
	c->len = f.len;
	pthread_mutex_lock(&cl->store_mu);
	/* The same id is the same bytes: a chunk stored already is kept, as a
	 * storage daemon keeps it. */
	if (!pifs_hmap_find(&cl->chunks, id_hash(&c->id), &c->id)) {
		rc = pifs_hmap_insert(&cl->chunks, c);
		if (rc == 0) {
			cl->stored += c->len;
			f.data = NULL; /* the map has the frame now */
			c = NULL;
		}
	}
	pthread_mutex_unlock(&cl->store_mu);
	free(c); /* not inserted: a copy was there, or the insert failed */
	if (rc < 0)
		goto out_release;
	res->id = f.hdr.id;
	res->raw_len = f.hdr.raw_len;
	res->stored_len = (uint32_t)f.len;
	res->nodes[0] = cl->node;
	res->n_nodes = 1;
	res->wanted = 1;
out_release:
	pifs_frame_release(&f);
	return rc;
}

int pifs_cluster_get(struct pifs_cluster *cl, const struct pifs_chunk_id *id, uint8_t **raw,
		     uint32_t *len)
{
	const struct chunk *c = find(cl, id);
	char hex[33];
	int rc;

	*raw = NULL;
	*len = 0;
	pifs_chunk_id_hex(id, hex);
	if (!c) {
		pifs_err("chunk %s: the null backend does not hold it (it keeps only what this "
			 "mount wrote); the file reads as an I/O error",
			 hex);
		return -EIO;
	}
	rc = pifs_frame_decode(c->frame, c->len, id, raw, len);
	if (rc == 0 || rc == -ENOMEM)
		return rc;
	pifs_err("chunk %s: its frame in the null backend's RAM does not verify (%s): memory "
		 "corruption in this process; unmount and check the machine's RAM",
		 hex, strerror(-rc));
	return -EIO;
}

int pifs_cluster_sync(struct pifs_cluster *cl, uint32_t node, const struct pifs_chunk_id *ids,
		      size_t n)
{
	if (node != cl->node)
		return -EIO;
	/* A node asked to sync a chunk it does not hold says so, as
	 * pifs-storaged does; one it holds is as durable as RAM gets. */
	for (size_t i = 0; i < n; i++) {
		if (!find(cl, &ids[i])) {
			char hex[33];

			pifs_chunk_id_hex(&ids[i], hex);
			pifs_warn("CHUNK_SYNC of %zu chunk(s) on node %" PRIu32 " (null backend): "
				  "it does not hold chunk %s",
				  n, node, hex);
			return -ENOENT;
		}
	}
	return 0;
}

void pifs_cluster_has_fini(struct pifs_cluster_has *h)
{
	if (!h)
		return;
	free(h->nodes);
	free(h->err);
	free(h->have);
	memset(h, 0, sizeof(*h));
}

int pifs_cluster_has(struct pifs_cluster *cl, const struct pifs_chunk_id *ids, size_t n,
		     struct pifs_cluster_has *out)
{
	memset(out, 0, sizeof(*out));
	out->nodes = calloc(1, sizeof(*out->nodes));
	out->err = calloc(1, sizeof(*out->err));
	out->have = calloc(n ? n : 1, 1);
	if (!out->nodes || !out->err || !out->have) {
		pifs_cluster_has_fini(out);
		return -ENOMEM;
	}
	out->nnodes = 1;
	out->nodes[0] = cl->node;
	pthread_mutex_lock(&cl->store_mu);
	for (size_t i = 0; i < n; i++)
		out->have[i] = pifs_hmap_find(&cl->chunks, id_hash(&ids[i]), &ids[i]) != NULL;
	pthread_mutex_unlock(&cl->store_mu);
	return 0;
}
