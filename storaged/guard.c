/* guard.c - how many connections one peer address may hold open to a node. */
#include "guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zmq.h>

#include "buf.h"

#define MONITOR_ENDPOINT "inproc://pifs-storaged-guard"

/* One accepted connection: its descriptor and the peer it came from
 * (address and port, to tell it from a later connection that reuses the
 * descriptor). */
struct conn {
	int fd;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct pifs_guard {
	void *router; /* watched, borrowed */
	void *mon;    /* PAIR: the monitor's events */
	struct pifs_auth *auth;
	struct conn *conns; /* live connections, in no order */
	size_t n, cap;
};

int pifs_guard_open(void *zctx, void *router, struct pifs_auth *auth, struct pifs_guard **out)
{
	struct pifs_guard *g = calloc(1, sizeof(*g));
	int zero = 0, rc = 0;

	if (!g)
		return -ENOMEM;
	g->router = router;
	g->auth = auth;
	if (zmq_socket_monitor(router, MONITOR_ENDPOINT, ZMQ_EVENT_ACCEPTED) < 0)
		rc = -errno;
	if (rc == 0 && !(g->mon = zmq_socket(zctx, ZMQ_PAIR)))
		rc = -errno;
	if (rc == 0 && (zmq_setsockopt(g->mon, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
			zmq_connect(g->mon, MONITOR_ENDPOINT) < 0))
		rc = -errno;
	if (rc < 0) {
		pifs_guard_close(g);
		return rc;
	}
	*out = g;
	return 0;
}

void *pifs_guard_socket(struct pifs_guard *g)
{
	return g->mon;
}

/* The address of @sa as text into @out; "?" if it is no IP address. */
static void text_of(const struct sockaddr_storage *sa, char *out, size_t cap)
{
	const void *ip = NULL;

	snprintf(out, cap, "?");
	if (sa->ss_family == AF_INET)
		ip = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->ss_family == AF_INET6)
		ip = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (ip)
		inet_ntop(sa->ss_family, ip, out, (socklen_t)cap);
}

/* Do @a and @b come from one host (the port aside)? */
static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return true; /* no IP address: all alike */
}

/* Is connection @c still open under its descriptor? ZeroMQ closes
 * connections in its I/O threads and tells of it out of order with the
 * accepts of the others, which may reuse the number: rather than follow
 * its events, the guard asks the descriptor itself who is at the other
 * end. */
static bool still_open(const struct conn *c)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	return getpeername(c->fd, (struct sockaddr *)&sa, &len) == 0 && len == c->peer_len &&
	       memcmp(&sa, &c->peer, len) == 0;
}

static void accepted(struct pifs_guard *g, int fd)
{
	struct conn c = {.fd = fd, .peer_len = sizeof(c.peer)};
	char addr[INET6_ADDRSTRLEN], what[64];
	size_t same = 0, i = 0;

	if (getpeername(fd, (struct sockaddr *)&c.peer, &c.peer_len) < 0)
		return; /* gone already */
	while (i < g->n) {
		if (!still_open(&g->conns[i])) {
			g->conns[i] = g->conns[--g->n];
			continue;
		}
		if (g->conns[i].fd == fd)
			return; /* the same connection, told of twice */
		same += same_host(&g->conns[i].peer, &c.peer);
		i++;
	}
	if (same >= PIFS_GUARD_PER_PEER ||
	    pifs_grow(&g->conns, &g->cap, g->n, sizeof(*g->conns), 64) < 0) {
		/* ZeroMQ sees the connection end and closes it itself. */
		shutdown(fd, SHUT_RDWR);
		text_of(&c.peer, addr, sizeof(addr));
		snprintf(what, sizeof(what), "a connection over the bound of %d per address",
			 PIFS_GUARD_PER_PEER);
		pifs_auth_refused(g->auth, addr, "(any)", what);
		return;
	}
	g->conns[g->n++] = c;
}

void pifs_guard_take(struct pifs_guard *g)
{
	for (;;) {
		zmq_msg_t head, addr;
		uint16_t ev = 0;
		uint32_t fd = 0;
		int rc;

		zmq_msg_init(&head);
		zmq_msg_init(&addr);
		rc = zmq_msg_recv(&head, g->mon, ZMQ_DONTWAIT);
		if (rc >= 0 && zmq_msg_more(&head))
			rc = zmq_msg_recv(&addr, g->mon, 0);
		if (rc >= 0 && zmq_msg_size(&head) == 6) {
			memcpy(&ev, zmq_msg_data(&head), 2);
			memcpy(&fd, (const uint8_t *)zmq_msg_data(&head) + 2, 4);
		}
		zmq_msg_close(&head);
		zmq_msg_close(&addr);
		if (rc < 0)
			return;
		if (ev == ZMQ_EVENT_ACCEPTED)
			accepted(g, (int)fd);
	}
}

void pifs_guard_close(struct pifs_guard *g)
{
	if (!g)
		return;
	zmq_socket_monitor(g->router, NULL, 0);
	if (g->mon)
		zmq_close(g->mon);
	free(g->conns);
	free(g);
}
