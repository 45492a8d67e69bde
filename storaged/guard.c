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

/* One accepted connection: its descriptor and the address it came from. */
struct conn {
	int fd;
	char addr[INET6_ADDRSTRLEN];
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
	if (zmq_socket_monitor(router, MONITOR_ENDPOINT,
			       ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED) < 0)
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

/* The peer address of @fd into @out; "?" if the socket has none. */
static void peer_of(int fd, char *out, size_t cap)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	const void *ip = NULL;

	snprintf(out, cap, "?");
	if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return;
	if (sa.ss_family == AF_INET)
		ip = &((struct sockaddr_in *)&sa)->sin_addr;
	else if (sa.ss_family == AF_INET6)
		ip = &((struct sockaddr_in6 *)&sa)->sin6_addr;
	if (ip)
		inet_ntop(sa.ss_family, ip, out, (socklen_t)cap);
}

static void forget(struct pifs_guard *g, int fd)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->conns[i].fd == fd) {
			g->conns[i] = g->conns[--g->n];
			return;
		}
}

static void accepted(struct pifs_guard *g, int fd)
{
	char addr[INET6_ADDRSTRLEN];
	size_t same = 0;

	/* A descriptor reused before its old connection's event came. */
	forget(g, fd);
	peer_of(fd, addr, sizeof(addr));
	for (size_t i = 0; i < g->n; i++)
		same += strcmp(g->conns[i].addr, addr) == 0;
	if (same >= PIFS_GUARD_PER_PEER ||
	    pifs_grow(&g->conns, &g->cap, g->n, sizeof(*g->conns), 64) < 0) {
		/* ZeroMQ sees the connection end and closes it itself. */
		shutdown(fd, SHUT_RDWR);
		pifs_auth_refused(g->auth, addr, "(any)",
				  "a connection over the bound of " PIFS_GUARD_PER_PEER_TEXT
				  " per address");
		return;
	}
	g->conns[g->n].fd = fd;
	memcpy(g->conns[g->n].addr, addr, sizeof(addr));
	g->n++;
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
		else if (ev == ZMQ_EVENT_DISCONNECTED || ev == ZMQ_EVENT_CLOSED)
			forget(g, (int)fd);
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
