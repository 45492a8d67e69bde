/* heartbeat.c - this node's heartbeat to the metadata leader. */
#include "heartbeat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ctl.h"
#include "gc.h"
#include "heal.h"
#include "log.h"
#include "metacall.h"
#include "scrub.h"

struct pifs_heartbeat {
	struct pifsd *d;
	pthread_t thread;
	void *ctl;		  /* SUB to PIFS_CTL_HEARTBEAT */
	struct pifs_metacall *mc; /* to the leader; made by the thread */
	int timeout_ms;
	bool unreachable; /* warned already: say it once, not every beat */
	bool removed;	  /* an operator took this node out of the map: stay quiet */
};

/* The installed map as heal sees it: *@out (OUT, freed with free()) gets
 * *@n nodes; *@self_flags those of this node, or UINT32_MAX when the map
 * does not list it. Returns the map's epoch, or 0 (no map, or no memory). */
static uint64_t map_nodes(struct pifsd *d, struct pifs_heal_node **out, size_t *n,
			  uint32_t *self_flags)
{
	struct pifs_nodemap_entry *nodes;
	uint32_t replicas;
	uint64_t epoch;
	size_t i;

	*out = NULL;
	*n = 0;
	*self_flags = UINT32_MAX;
	if (pifs_nodemap_copy(&d->map, &nodes, n, &replicas, &epoch) < 0)
		return 0;
	*out = malloc((*n ? *n : 1) * sizeof(**out));
	if (!*out) {
		free(nodes);
		*n = 0;
		return 0;
	}
	for (i = 0; i < *n; i++) {
		(*out)[i].id = nodes[i].id;
		(*out)[i].weight = nodes[i].weight;
		(*out)[i].flags = nodes[i].flags;
		if (nodes[i].id == d->self->id)
			*self_flags = nodes[i].flags;
	}
	free(nodes);
	return epoch;
}

static uint32_t self_id(const struct pifs_heartbeat *hb)
{
	return hb->d->self->id;
}

/* A new map is installed; the one before was @old (@nold nodes, this node's
 * flags @was, of @epoch). Start a pass if it needs one, and say what changed
 * for this node. */
/* Leave PIFS_REMOVED_MARK in the data directory, so that the tools that
 * start the nodes of a config (pifs-local up) know not to wait for this one. */
static void mark_removed(struct pifsd *d)
{
	char path[4096];
	int fd;

	if (snprintf(path, sizeof(path), "%s/" PIFS_REMOVED_MARK, d->data) >= (int)sizeof(path))
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		pifs_warn("node %u: cannot leave the mark %s that it was removed: %s; tools that "
			  "start the cluster will wait for this node",
			  d->self->id, path, strerror(errno));
		return;
	}
	close(fd);
}

static void react(struct pifs_heartbeat *hb, const struct pifs_heal_node *old, size_t nold,
		  uint32_t was, uint64_t epoch)
{
	struct pifsd *d = hb->d;
	struct pifs_heal_node *cur;
	uint32_t is;
	size_t ncur;

	map_nodes(d, &cur, &ncur, &is);
	if (!epoch || pifs_heal_urgent(old, nold, cur, ncur))
		pifs_heal_kick(d->heal);
	if (was != UINT32_MAX && is == UINT32_MAX) {
		hb->removed = true;
		mark_removed(d);
		pifs_warn("node %u: an operator removed this node from the cluster map: it stops "
			  "its heartbeat and takes no part in the cluster; stop this daemon, or "
			  "restart it to join again as a new node",
			  self_id(hb));
	} else if (is != UINT32_MAX && (is & PIFS_NODE_NEW) &&
		   (was == UINT32_MAX || !(was & PIFS_NODE_NEW))) {
		pifs_info("node %u: joined the cluster map as a new node; it takes no data until "
			  "an operator admits it: pifs-admin node add %s",
			  self_id(hb), d->self->addr);
	} else if (was != UINT32_MAX && (was & PIFS_NODE_NEW) && is != UINT32_MAX &&
		   !(is & PIFS_NODE_NEW)) {
		pifs_info("node %u: admitted to the cluster; it takes its share of the data at "
			  "the next rebalance",
			  self_id(hb));
	}
	free(cur);
}

/* Fetch the map and install it. */
static void fetch_map(struct pifs_heartbeat *hb)
{
	struct pifs_heal_node *old;
	struct pifs_msg req, rep;
	uint64_t epoch;
	uint32_t was;
	size_t nold;
	int rc;

	epoch = map_nodes(hb->d, &old, &nold, &was);
	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	req.u.MAP_GET.have_epoch = pifs_nodemap_epoch(&hb->d->map);
	rc = pifs_metacall(hb->mc, &req, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_MAP)
		rc = -EPROTO;
	/* Voters added since the config was written are in the map. */
	if (rc == 0)
		rc = pifs_metacall_book_learn_map(hb->d->book, &rep.u.R_MAP);
	if (rc == 0)
		rc = pifs_nodemap_install(&hb->d->map, &rep.u.R_MAP);
	if (rc < 0)
		pifs_warn("node %u: could not fetch the cluster map from the metadata service "
			  "(voters: %s): %s; using the addresses of the config until the next "
			  "heartbeat",
			  self_id(hb), pifs_metacall_voters(hb->mc), strerror(-rc));
	else if (rc == 1) {
		pifs_info("node %u: cluster map epoch %" PRIu64 " installed (%" PRIu32 " nodes)",
			  self_id(hb), rep.u.R_MAP.epoch, rep.u.R_MAP.nodes.count);
		react(hb, old, nold, was, epoch);
	}
	free(old);
}

static void beat(struct pifs_heartbeat *hb)
{
	struct pifsd *d = hb->d;
	struct pifs_str detail = {NULL, 0};
	struct pifs_store_stat st;
	struct pifs_msg req, rep;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = pifs_store_stat(d->store, &st);
	if (rc < 0)
		pifs_warn("node %u: could not read the space of %s: %s; reporting zero",
			  self_id(hb), d->data, strerror(-rc));
	pifs_msg_init(&req, PIFS_MSG_NODE_HELLO);
	req.u.NODE_HELLO.id = self_id(hb);
	req.u.NODE_HELLO.addr = pifs_str_of(d->self->addr);
	req.u.NODE_HELLO.capacity = st.capacity;
	req.u.NODE_HELLO.free = st.free;
	req.u.NODE_HELLO.used = st.bytes;
	req.u.NODE_HELLO.chunks = st.chunks;
	pifs_heal_report(d->heal, &req.u.NODE_HELLO.work);
	pifs_scrub_report(d->scrub, &req.u.NODE_HELLO.work);
	pifs_gc_report(d->gc, &req.u.NODE_HELLO.work);
	req.u.NODE_HELLO.work.lost = st.lost;
	pifs_metacall_set_epoch(hb->mc, pifs_nodemap_epoch(&d->map));
	rc = pifs_metacall(hb->mc, &req, &rep);
	if (rc < 0) {
		/* Only an R_STATUS to this very request says why; anything else
		 * in @rep is stale. */
		if (rep.type == PIFS_MSG_R_STATUS && rep.reqid == req.reqid &&
		    rep.u.R_STATUS.detail.p)
			detail = rep.u.R_STATUS.detail;
		if (!hb->unreachable)
			pifs_warn("node %u: the metadata service (voters: %s) did not take the "
				  "heartbeat: %s%s%.*s; retrying every %" PRIu32 " ms: check that "
				  "pifs-storaged runs on the voters, that most of them are up and "
				  "that their addresses are reachable from here",
				  self_id(hb), pifs_metacall_voters(hb->mc), strerror(-rc),
				  detail.len ? ": " : "", (int)detail.len,
				  detail.len ? detail.p : "", d->conf->heartbeat_ms);
		hb->unreachable = true;
		return;
	}
	if (hb->unreachable)
		pifs_info("node %u: the metadata service answers heartbeats again (leader %s)",
			  self_id(hb), pifs_metacall_name(hb->mc));
	hb->unreachable = false;
	if (rep.epoch > pifs_nodemap_epoch(&d->map))
		fetch_map(hb);
}

static void *run(void *arg)
{
	struct pifs_heartbeat *hb = arg;
	struct pifsd *d = hb->d;
	/* A voter that is down costs half a heartbeat's wait, not all of
	 * it: the rest is left for the next voter. */
	struct pifs_metacall_opts o = {hb->timeout_ms, hb->timeout_ms / 2, d->book};
	int rc;

	rc = pifs_metacall_new(d->zctx, d->auth, d->conf, &o, &hb->mc);
	if (rc < 0) {
		pifs_err("node %u: no heartbeat to the metadata service: %s; it will see this "
			 "node as down: restart the daemon",
			 self_id(hb), strerror(-rc));
		atomic_store(&d->heartbeat_running, false);
		return NULL;
	}
	while (!atomic_load(&d->heartbeat_stop)) {
		zmq_pollitem_t item = {hb->ctl, 0, ZMQ_POLLIN, 0};

		if (!hb->removed)
			beat(hb);
		rc = zmq_poll(&item, 1, (long)d->conf->heartbeat_ms);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0)
			break;
	}
	pifs_metacall_free(hb->mc);
	hb->mc = NULL;
	atomic_store(&d->heartbeat_running, false);
	return NULL;
}

int pifs_heartbeat_start(struct pifsd *d, struct pifs_heartbeat **out)
{
	struct pifs_heartbeat *hb;
	int64_t t;
	int rc;

	hb = calloc(1, sizeof(*hb));
	if (!hb)
		return -ENOMEM;
	hb->d = d;
	/* Long enough for a leader busy with a sync, short enough that a stop
	 * does not wait for dead voters: two beats, at least a second, at
	 * most the client timeout. */
	t = 2 * (int64_t)d->conf->heartbeat_ms;
	if (t < 1000)
		t = 1000;
	if (t > d->conf->timeout_ms)
		t = d->conf->timeout_ms;
	hb->timeout_ms = (int)t;
	rc = pifs_ctl_subscribe(d->zctx, PIFS_CTL_HEARTBEAT, &hb->ctl);
	if (rc < 0)
		goto out_free;
	atomic_store(&d->heartbeat_running, true);
	rc = -pthread_create(&hb->thread, NULL, run, hb);
	if (rc < 0) {
		atomic_store(&d->heartbeat_running, false);
		zmq_close(hb->ctl);
		goto out_free;
	}
	*out = hb;
	return 0;
out_free:
	free(hb);
	return rc;
}

void pifs_heartbeat_join(struct pifs_heartbeat *hb)
{
	if (!hb)
		return;
	pthread_join(hb->thread, NULL);
	zmq_close(hb->ctl);
	free(hb);
}
