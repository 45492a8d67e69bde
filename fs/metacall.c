/* metacall.c - asking the metadata service, wherever its leader is. */
#include "metacall.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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
/* While no leader is known an election is under way (it takes a few ms once
 * a voter's timeout fires); asking again at once only adds load to voters
 * busy electing. */
#define NO_LEADER_PAUSE_MS 50
/* A voter that could not take a request is not asked again for this long
 * while others may answer: a dead leader costs a caller one SEND_MS. */
#define GONE_MS 1000
/* A redirect that sends us where we were already sent in this call, with no
 * newer term, means the voters' views have not settled yet. */
#define LOOP_PAUSE_MS 50
/* Room for the voter list of messages: a few voters of long host names. */
#define VOTERS_MAX 1024
/* A voter whose connection cannot take a request this soon is not there. */
#define SEND_MS 250

struct book_voter {
	uint32_t id;
	char addr[256];
};

struct pifs_metacall_book {
	pthread_mutex_t mu;
	struct book_voter *v; /* owned; @n of @cap */
	size_t n, cap;
	uint32_t leader;  /* the voter that answered last, 0 for none yet */
	uint64_t version; /* counts the changes of @v */
};

struct voter {
	uint32_t id;
	char addr[256];	      /* "host:port" */
	char ep[EP_MAX];      /* "tcp://host:port" */
	struct pifs_rpc *rpc; /* owned; made on first use */
	uint64_t sent_in;     /* the call in which a redirect last sent us here */
	int64_t gone_until;   /* pifs_now_ms() until which it is passed over */
};

struct pifs_metacall {
	void *zctx; /* borrowed */
	struct pifs_auth *auth; /* borrowed */
	struct pifs_metacall_book *book;
	bool own_book;
	uint64_t book_version; /* of the book's voters this metacall has */
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

	if (pifs_grow(&mc->v, &mc->cap, mc->n, sizeof(*mc->v), 8) < 0)
		return -ENOMEM;
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

int pifs_metacall_book_new(const struct pifs_conf *conf, struct pifs_metacall_book **out)
{
	struct pifs_metacall_book *b;
	int rc = 0;

	*out = NULL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	pthread_mutex_init(&b->mu, NULL);
	/* The config's voters first; then its other nodes, which redirect to
	 * the leader too, for when the file predates a pifs-admin meta add. */
	for (int voters = 1; voters >= 0 && rc == 0; voters--)
		for (size_t i = 0; i < conf->n_nodes && rc == 0; i++)
			if (conf->nodes[i].meta == (voters == 1))
				rc = pifs_metacall_book_learn(b, conf->nodes[i].id,
							      conf->nodes[i].addr);
	if (rc < 0) {
		pifs_metacall_book_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void pifs_metacall_book_free(struct pifs_metacall_book *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->v);
	free(b);
}

int pifs_metacall_book_learn(struct pifs_metacall_book *b, uint32_t id, const char *addr)
{
	char ep[EP_MAX];
	size_t i;
	int rc = 0;

	if (strlen(addr) >= sizeof(b->v[0].addr) || pifs_conf_endpoint(addr, ep, sizeof(ep)) < 0)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	for (i = 0; i < b->n && b->v[i].id != id; i++)
		;
	if (i == b->n) {
		rc = pifs_grow(&b->v, &b->cap, b->n, sizeof(*b->v), 8);
		if (rc < 0)
			goto out;
		b->v[b->n].id = id;
		b->v[b->n].addr[0] = '\0';
		b->n++;
	}
	if (strcmp(b->v[i].addr, addr) != 0) {
		strcpy(b->v[i].addr, addr);
		b->version++;
	}
out:
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int pifs_metacall_book_learn_map(struct pifs_metacall_book *b, const struct pifs_msg_R_MAP *m)
{
	struct pifs_cursor c;
	struct pifs_node n;
	char addr[256];

	for (int voters = 1; voters >= 0; voters--) {
		pifs_cursor_init(&c, &m->nodes);
		while (pifs_node_next(&c, &n) == 1) {
			if (!(n.flags & PIFS_NODE_META) != !voters ||
			    pifs_str_copy(n.addr, addr, sizeof(addr)) < 0)
				continue;
			if (pifs_metacall_book_learn(b, n.id, addr) == -ENOMEM)
				return -ENOMEM;
		}
	}
	return 0;
}

uint32_t pifs_metacall_book_leader(struct pifs_metacall_book *b)
{
	uint32_t id;

	pthread_mutex_lock(&b->mu);
	id = b->leader;
	pthread_mutex_unlock(&b->mu);
	return id;
}

static void book_note_leader(struct pifs_metacall_book *b, uint32_t id)
{
	pthread_mutex_lock(&b->mu);
	b->leader = id;
	pthread_mutex_unlock(&b->mu);
}

static int find_voter(const struct pifs_metacall *mc, uint32_t id)
{
	for (size_t i = 0; i < mc->n; i++)
		if (mc->v[i].id == id)
			return (int)i;
	return -ENOENT;
}

/* Move voter @i to @addr (borrowed), closing its connection. */
static void move_voter(struct pifs_metacall *mc, size_t i, const char *addr, const char *ep)
{
	struct voter *v = &mc->v[i];

	strcpy(v->addr, addr);
	strcpy(v->ep, ep);
	pifs_rpc_free(v->rpc);
	v->rpc = NULL;
	set_voters(mc);
}

/* Take in what other metacalls learnt: new voters, moved ones, and the
 * leader, which this call asks first. */
static int read_book(struct pifs_metacall *mc)
{
	struct pifs_metacall_book *b = mc->book;
	char ep[EP_MAX];
	uint32_t leader;
	int rc = 0, i;

	pthread_mutex_lock(&b->mu);
	if (b->version != mc->book_version) {
		for (size_t k = 0; k < b->n && rc >= 0; k++) {
			i = find_voter(mc, b->v[k].id);
			if (i < 0)
				rc = add_voter(mc, b->v[k].id, b->v[k].addr);
			else if (strcmp(mc->v[i].addr, b->v[k].addr) != 0 &&
				 pifs_conf_endpoint(b->v[k].addr, ep, sizeof(ep)) == 0)
				move_voter(mc, (size_t)i, b->v[k].addr, ep);
		}
		if (rc >= 0)
			mc->book_version = b->version;
	}
	leader = b->leader;
	pthread_mutex_unlock(&b->mu);
	if (rc == -EINVAL)
		rc = 0; /* checked when learnt: cannot happen */
	if (rc < 0)
		return rc;
	if (leader && (i = find_voter(mc, leader)) >= 0)
		mc->cur = (size_t)i;
	return 0;
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

int pifs_metacall_new(void *zctx, struct pifs_auth *auth, const struct pifs_conf *conf,
		      const struct pifs_metacall_opts *o, struct pifs_metacall **out)
{
	struct pifs_metacall *mc;
	int rc = 0;

	*out = NULL;
	mc = calloc(1, sizeof(*mc));
	if (!mc)
		return -ENOMEM;
	mc->zctx = zctx;
	mc->auth = auth;
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
	if (rc >= 0 && o && o->book) {
		mc->book = o->book;
	} else if (rc >= 0) {
		rc = pifs_metacall_book_new(conf, &mc->book);
		mc->own_book = rc == 0;
	}
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
	if (mc->own_book)
		pifs_metacall_book_free(mc->book);
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
			move_voter(mc, i, addr, ep);
			pifs_metacall_book_learn(mc->book, l->leader, addr);
		}
		return (int)i;
	}
	if (!have_addr)
		return -ENOENT;
	pifs_metacall_book_learn(mc->book, l->leader, addr);
	return add_voter(mc, l->leader, addr);
}

/* Move to the next voter, passing over those that were just found gone
 * unless all are. */
static void next_voter(struct pifs_metacall *mc)
{
	int64_t now = pifs_now_ms();

	for (size_t k = 1; k <= mc->n; k++) {
		size_t i = (mc->cur + k) % mc->n;

		if (mc->v[i].gone_until <= now || k == mc->n) {
			mc->cur = i;
			return;
		}
	}
}

static bool unreachable(int rc)
{
	return rc == -ETIMEDOUT || rc == -EHOSTUNREACH || rc == -ESHUTDOWN;
}

int pifs_metacall(struct pifs_metacall *mc, struct pifs_msg *req, struct pifs_msg *rep)
{
	return pifs_metacall_within(mc, req, rep, mc->timeout_ms);
}

int pifs_metacall_within(struct pifs_metacall *mc, struct pifs_msg *req, struct pifs_msg *rep,
			 int timeout_ms)
{
	int64_t deadline = pifs_now_ms() + timeout_ms;
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
	rc = read_book(mc);
	if (rc < 0)
		return rc;
	for (;;) {
		int64_t left = deadline - pifs_now_ms();
		struct voter *v = &mc->v[mc->cur];
		uint64_t term;
		int next;

		if (left <= 0)
			break;
		if (!v->rpc) {
			rc = pifs_rpc_new(mc->zctx, mc->auth, v->id, v->ep, &v->rpc);
			if (rc < 0)
				return rc;
		}
		pifs_rpc_set_epoch(v->rpc, mc->epoch);
		pifs_msg_init(rep, PIFS_MSG_NONE);
		/* Not connected within SEND_MS: gone, ask the next one. */
		rc = pifs_rpc_send(v->rpc, req, NULL, 0, (int)(left < SEND_MS ? left : SEND_MS));
		if (rc == 0) {
			reached = true;
			left = deadline - pifs_now_ms();
			rc = pifs_rpc_recv(v->rpc, req->reqid, rep, NULL, NULL,
					   (int)(left < mc->try_ms ? (left > 0 ? left : 0)
								  : mc->try_ms));
		}
		if (rc == -EHOSTUNREACH)
			v->gone_until = pifs_now_ms() + GONE_MS;
		if (unreachable(rc)) {
			next_voter(mc);
			continue;
		}
		if (rc < 0 || rep->type != PIFS_MSG_R_LEADER) {
			if (rc == 0 || rep->type == PIFS_MSG_R_STATUS) {
				book_note_leader(mc->book, v->id);
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
		/* A follower that has not yet noticed its leader died names it:
		 * no better than no leader. */
		if (next >= 0 && mc->v[next].gone_until > pifs_now_ms())
			next = -ENOENT;
		if (next < 0) {
			/* No leader to go to: an election is under way. */
			pause_ms(left < NO_LEADER_PAUSE_MS ? left : NO_LEADER_PAUSE_MS);
			next_voter(mc);
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
