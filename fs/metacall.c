/* metacall.c - asking the metadata service, wherever its leader is. */
#include "metacall.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "rpc.h"

#define EP_MAX 300
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_TRY_MS 2000
/* While no leader is known an election is under way; asking again at once
 * only adds load to voters busy electing. */
#define NO_LEADER_PAUSE_MS 100
/* A redirect that sends us where we were already sent in this call, with no
 * newer term, means the voters' views have not settled yet. */
#define LOOP_PAUSE_MS 50
/* Room for the voter list of messages: a few voters of long host names. */
#define VOTERS_MAX 1024

struct voter {
	uint32_t id;
	char addr[256];	      /* "host:port" */
	char ep[EP_MAX];      /* "tcp://host:port" */
	struct pifs_rpc *rpc; /* owned; made on first use */
	uint64_t sent_in;     /* the call in which a redirect last sent us here */
};

struct pifs_metacall {
	void *zctx; /* borrowed */
	int timeout_ms, try_ms;
	struct voter *v; /* owned; @n of @cap, the config's first, then learnt ones */
	size_t n, cap;
	size_t cur;	 /* the voter believed to lead: asked first */
	uint32_t leader; /* the voter that answered last; 0 before any answer */
	uint64_t epoch;
	uint64_t client; /* the session's id, random and non-zero */
	uint64_t seq;	 /* of the last mutation sent */
	uint64_t calls;	 /* calls made, to tell this call's redirects from older ones */
	char name[EP_MAX + 32];
	char voters[VOTERS_MAX];
};

static void set_name(struct pifs_metacall *mc, const struct voter *v)
{
	snprintf(mc->name, sizeof(mc->name), "%s (node %" PRIu32 ")", v->addr, v->id);
}

/* Write "node 1 at host:port, node 2 at ..." into mc->voters; a list too
 * long for it ends in "...". */
static void set_voters(struct pifs_metacall *mc)
{
	size_t len = 0;

	mc->voters[0] = '\0';
	for (size_t i = 0; i < mc->n; i++) {
		int w =
		    snprintf(mc->voters + len, sizeof(mc->voters) - len, "%snode %" PRIu32 " at %s",
			     i ? ", " : "", mc->v[i].id, mc->v[i].addr);

		if (w < 0 || (size_t)w >= sizeof(mc->voters) - len) {
			strcpy(mc->voters + sizeof(mc->voters) - 4, "...");
			return;
		}
		len += (size_t)w;
	}
}

/* Append voter @id at @addr (borrowed). Returns its index, -EINVAL for an
 * address that is not host:port, or -ENOMEM. */
static int add_voter(struct pifs_metacall *mc, uint32_t id, const char *addr)
{
	struct voter *v;

	if (mc->n == mc->cap) {
		size_t cap = mc->cap ? mc->cap * 2 : 8;

		v = realloc(mc->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		mc->v = v;
		mc->cap = cap;
	}
	v = &mc->v[mc->n];
	memset(v, 0, sizeof(*v));
	if (strlen(addr) >= sizeof(v->addr) || pifs_conf_endpoint(addr, v->ep, sizeof(v->ep)) < 0)
		return -EINVAL;
	v->id = id;
	strcpy(v->addr, addr);
	mc->n++;
	set_voters(mc);
	return (int)(mc->n - 1);
}

static int new_client_id(uint64_t *out)
{
	uint64_t id = 0;

	while (id == 0) {
		ssize_t got = getrandom(&id, sizeof(id), 0);

		if (got < 0 && errno == EINTR)
			continue;
		if (got != (ssize_t)sizeof(id))
			return got < 0 ? -errno : -EIO;
	}
	*out = id;
	return 0;
}

int pifs_metacall_new(void *zctx, const struct pifs_conf *conf, const struct pifs_metacall_opts *o,
		      struct pifs_metacall **out)
{
	struct pifs_metacall *mc;
	int rc = 0;

	*out = NULL;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	mc->zctx = zctx;
	mc->timeout_ms = o && o->timeout_ms > 0 ? o->timeout_ms
			 : conf->timeout_ms	? (int)conf->timeout_ms
						: DEFAULT_TIMEOUT_MS;
	mc->try_ms = o && o->try_ms > 0 ? o->try_ms : DEFAULT_TRY_MS;
	if (mc->try_ms > mc->timeout_ms)
		mc->try_ms = mc->timeout_ms;
	for (size_t i = 0; i < conf->n_nodes && rc >= 0; i++)
		if (conf->nodes[i].meta)
			rc = add_voter(mc, conf->nodes[i].id, conf->nodes[i].addr);
	if (rc >= 0 && mc->n == 0)
		rc = -EINVAL;
	if (rc >= 0)
		rc = new_client_id(&mc->client);
	if (rc < 0) {
		pifs_metacall_free(mc);
		return rc;
	}
	set_name(mc, &mc->v[0]);
	*out = mc;
	return 0;
}

void pifs_metacall_free(struct pifs_metacall *mc)
{
	if (!mc)
		return;
	for (size_t i = 0; i < mc->n; i++)
		pifs_rpc_free(mc->v[i].rpc);
	free(mc->v);
	free(mc);
}

void pifs_metacall_set_epoch(struct pifs_metacall *mc, uint64_t epoch)
{
	mc->epoch = epoch;
}

uint32_t pifs_metacall_leader(const struct pifs_metacall *mc)
{
	return mc->leader;
}

const char *pifs_metacall_name(const struct pifs_metacall *mc)
{
	return mc->name;
}

const char *pifs_metacall_voters(const struct pifs_metacall *mc)
{
	return mc->voters;
}

static void pause_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

	while (ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Where R_LEADER @l sends us: the index of its leader, learnt as a new
 * voter when we did not know it (added with pifs-admin meta add after the
 * config was written), its address updated when the map moved it. Returns
 * the index, -ENOENT when it names no usable address, or -ENOMEM. */
static int follow(struct pifs_metacall *mc, const struct pifs_msg_R_LEADER *l)
{
	char addr[256], ep[EP_MAX];
	bool have_addr;

	have_addr = l->addr.len && pifs_str_copy(l->addr, addr, sizeof(addr)) == 0 &&
		    pifs_conf_endpoint(addr, ep, sizeof(ep)) == 0;
	for (size_t i = 0; i < mc->n; i++) {
		struct voter *v = &mc->v[i];

		if (v->id != l->leader)
			continue;
		if (have_addr && strcmp(v->ep, ep) != 0) {
			strcpy(v->addr, addr);
			strcpy(v->ep, ep);
			pifs_rpc_free(v->rpc);
			v->rpc = NULL;
			set_voters(mc);
		}
		return (int)i;
	}
	if (!have_addr)
		return -ENOENT;
	return add_voter(mc, l->leader, addr);
}

static bool unreachable(int rc)
{
	return rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ESHUTDOWN;
}

int pifs_metacall(struct pifs_metacall *mc, struct pifs_msg *req, struct pifs_msg *rep)
{
	int64_t deadline = pifs_now_ms() + mc->timeout_ms;
	uint64_t max_term = 0;
	bool reached = false;
	int rc;

	mc->calls++;
	if (pifs_proto_kind(req->type) == PIFS_KIND_MUT) {
		req->flags |= PIFS_MSG_ONCE;
		req->once.client = mc->client;
		req->once.seq = ++mc->seq;
		/* Calls are sequential: no older reply is still awaited. */
		req->once.acked = mc->seq;
	} else {
		req->flags &= (uint8_t)~PIFS_MSG_ONCE;
		memset(&req->once, 0, sizeof(req->once));
	}
	for (;;) {
		int64_t left = deadline - pifs_now_ms();
		struct voter *v = &mc->v[mc->cur];
		uint64_t term;
		int next;

		if (left <= 0)
			break;
		if (!v->rpc) {
			rc = pifs_rpc_new(mc->zctx, v->ep, &v->rpc);
			if (rc < 0)
				return rc;
		}
		pifs_rpc_set_epoch(v->rpc, mc->epoch);
		pifs_msg_init(rep, PIFS_MSG_NONE);
		rc = pifs_rpc_call(v->rpc, req, NULL, 0, rep, NULL, NULL,
				   (int)(left < mc->try_ms ? left : mc->try_ms));
		if (rc != -EHOSTUNREACH)
			reached = true;
		if (unreachable(rc)) {
			mc->cur = (mc->cur + 1) % mc->n;
			continue;
		}
		if (rc < 0 || rep->type != PIFS_MSG_R_LEADER) {
			if (rc == 0 || rep->type == PIFS_MSG_R_STATUS) {
				mc->leader = v->id;
				set_name(mc, v);
			}
			return rc;
		}
		/* Read before follow(), which may close the socket @rep borrows. */
		term = rep->u.R_LEADER.term;
		next = rep->u.R_LEADER.leader ? follow(mc, &rep->u.R_LEADER) : -ENOENT;
		if (next == -ENOMEM)
			return next;
		if (next < 0) {
			/* No leader to go to: an election is under way. */
			pause_ms(left < NO_LEADER_PAUSE_MS ? left : NO_LEADER_PAUSE_MS);
			mc->cur = (mc->cur + 1) % mc->n;
			continue;
		}
		if (mc->v[next].sent_in == mc->calls && term <= max_term)
			pause_ms(left < LOOP_PAUSE_MS ? left : LOOP_PAUSE_MS);
		if (term > max_term)
			max_term = term;
		mc->v[next].sent_in = mc->calls;
		mc->cur = (size_t)next;
	}
	pifs_msg_init(rep, PIFS_MSG_NONE);
	return reached ? -ETIMEDOUT : -EHOSTUNREACH;
}
