/* heartbeat.c - this node's heartbeat to the metadata voter. */
#include "heartbeat.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ctl.h"
#include "heal.h"
#include "log.h"
#include "rpc.h"
#include "scrub.h"

struct pifs_heartbeat {
	struct pifsd *d;
	pthread_t thread;
	void *ctl;	      /* SUB to PIFS_CTL_HEARTBEAT */
	struct pifs_rpc *rpc; /* to the voter; made by the thread */
	char endpoint[300];
	int timeout_ms;
	bool unreachable; /* warned already: say it once, not every beat */
};

static uint32_t self_id(const struct pifs_heartbeat *hb)
{
	return hb->d->self->id;
}

/* Fetch the map and install it. */
static void fetch_map(struct pifs_heartbeat *hb)
{
	struct pifs_msg req, rep;
	int rc;

	pifs_msg_init(&req, PIFS_MSG_MAP_GET);
	req.u.MAP_GET.have_epoch = pifs_nodemap_epoch(&hb->d->map);
	rc = pifs_rpc_call(hb->rpc, &req, NULL, 0, &rep, NULL, NULL, hb->timeout_ms);
	if (rc == 0 && rep.type != PIFS_MSG_R_MAP)
		rc = -EPROTO;
	if (rc == 0)
		rc = pifs_nodemap_install(&hb->d->map, &rep.u.R_MAP);
	if (rc < 0)
		pifs_warn("node %u: could not fetch the cluster map from node %u: %s; using the "
			  "addresses of the config until the next heartbeat",
			  self_id(hb), hb->d->voter->id, strerror(-rc));
	else if (rc == 1) {
		pifs_info("node %u: cluster map epoch %" PRIu64 " installed (%" PRIu32 " nodes)",
			  self_id(hb), rep.u.R_MAP.epoch, rep.u.R_MAP.nodes.count);
		/* A new map may move chunks: heal looks at once. */
		pifs_heal_kick(hb->d->heal);
	}
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
	pifs_rpc_set_epoch(hb->rpc, pifs_nodemap_epoch(&d->map));
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_rpc_call(hb->rpc, &req, NULL, 0, &rep, NULL, NULL, hb->timeout_ms);
	if (rc < 0) {
		/* Only an R_STATUS to this very request says why; anything else
		 * in @rep is stale. */
		if (rep.type == PIFS_MSG_R_STATUS && rep.reqid == req.reqid &&
		    rep.u.R_STATUS.detail.p)
			detail = rep.u.R_STATUS.detail;
		if (!hb->unreachable)
			pifs_warn(
			    "node %u: metadata voter node %u at %s did not take the heartbeat: "
			    "%s%s%.*s; retrying every %" PRIu32 " ms: check that it runs and "
			    "that its address is reachable",
			    self_id(hb), d->voter->id, hb->endpoint, strerror(-rc),
			    detail.len ? ": " : "", (int)detail.len, detail.len ? detail.p : "",
			    d->conf->heartbeat_ms);
		hb->unreachable = true;
		return;
	}
	if (hb->unreachable)
		pifs_info("node %u: metadata voter node %u answers heartbeats again", self_id(hb),
			  d->voter->id);
	hb->unreachable = false;
	if (rep.epoch > pifs_nodemap_epoch(&d->map))
		fetch_map(hb);
}

static void *run(void *arg)
{
	struct pifs_heartbeat *hb = arg;
	struct pifsd *d = hb->d;
	int rc;

	rc = pifs_rpc_new(d->zctx, hb->endpoint, &hb->rpc);
	if (rc < 0) {
		pifs_err("node %u: no heartbeat to %s: %s; the voter will see this node as down",
			 self_id(hb), hb->endpoint, strerror(-rc));
		atomic_store(&d->heartbeat_running, false);
		return NULL;
	}
	while (!atomic_load(&d->heartbeat_stop)) {
		zmq_pollitem_t item = {hb->ctl, 0, ZMQ_POLLIN, 0};

		beat(hb);
		rc = zmq_poll(&item, 1, (long)d->conf->heartbeat_ms);
		if (rc < 0 && errno != EINTR)
			break;
		if (rc > 0)
			break;
	}
	pifs_rpc_free(hb->rpc);
	hb->rpc = NULL;
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
	rc = pifs_conf_endpoint(d->voter->addr, hb->endpoint, sizeof(hb->endpoint));
	if (rc < 0)
		goto out_free;
	/* Long enough for a voter busy with a sync, short enough that a stop
	 * does not wait for a dead voter: two beats, at least a second, at
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
