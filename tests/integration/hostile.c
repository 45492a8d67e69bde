/* hostile.c - a hostile peer, for tests/integration/hostile.sh.
 *
 *   it_hostile -c CONF [-n TRIES] [-s SECONDS] NODE...
 *
 * Sends TRIES (default 10000) bad connections, spread over the kinds below,
 * to each NODE (an id of the config) in turn, and stops early once SECONDS
 * (default 120) have passed. Every kind is bounded in count and time; none
 * sends anything to an address outside the config.
 *
 *   garbage     TCP, random bytes, close
 *   greeting    TCP, the first 1..63 bytes of a ZMTP 3.0 greeting, close
 *   length      TCP, a NULL-mechanism greeting and READY, then a frame that
 *               claims 2^62 bytes
 *   stranger    ZeroMQ with CURVE and a key the cluster never made
 *   plain       ZeroMQ without CURVE
 *   oversize    the client key, a message over ZMQ_MAXMSGSIZE
 *   absurd      the client key, a pifs header whose list counts and lengths
 *               point far past the frame
 *   flood       400 TCP connections at once from this address, held for a
 *               second (the node keeps at most 256 from one address, its
 *               cluster's own included): how many the node kept is
 *               printed, "flood of node N: K of 400 ..."
 *
 * Exit status: 0 once every try was made (what the node did with them is for
 * the caller to judge), 2 bad arguments. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "auth.h"
#include "config.h"
#include "proto.h"
#include "rpc.h"

#define FLOOD 400

enum kind { GARBAGE, GREETING, LENGTH, STRANGER, PLAIN, OVERSIZE, ABSURD, KINDS };

static const char *const kind_name[KINDS] = {"garbage", "greeting", "length", "stranger",
					     "plain",   "oversize", "absurd"};

struct target {
	uint32_t id;
	struct sockaddr_in sa;
	char ep[300];
	char server[41]; /* the node's public key, as the allow-list has it */
};

/* Each oversize try costs the sender a 5 MiB encryption: a few hundred show
 * what they show. */
#define OVERSIZE_MAX 200

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int tcp_to(const struct target *t)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&t->sa, sizeof(t->sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

/* A ZMTP 3.0 greeting offering @mech. */
static void greeting(uint8_t g[64], const char *mech)
{
	memset(g, 0, 64);
	g[0] = 0xff;
	g[9] = 0x7f;
	g[10] = 3;
	memcpy(g + 12, mech, strlen(mech));
}

static void try_garbage(const struct target *t)
{
	uint8_t buf[4096];
	size_t n = 1 + rnd() % sizeof(buf);
	int fd = tcp_to(t);

	if (fd < 0)
		return;
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)rnd();
	send_all(fd, buf, n);
	close(fd);
}

static void try_greeting(const struct target *t)
{
	uint8_t g[64];
	int fd = tcp_to(t);

	if (fd < 0)
		return;
	greeting(g, rnd() % 2 ? "CURVE" : "NULL");
	send_all(fd, g, 1 + rnd() % 63);
	close(fd);
}

static void try_length(const struct target *t)
{
	static const uint8_t ready[] = {0x04, 0x19, 0x05, 'R', 'E', 'A', 'D', 'Y', 0x0b, 'S',
					'o', 'c', 'k', 'e', 't', '-', 'T', 'y', 'p', 'e', 0,
					0, 0, 6, 'D', 'E', 'A', 'L', 'E', 'R'};
	static const uint8_t huge[] = {0x02, 0x40, 0, 0, 0, 0, 0, 0, 0, 'x', 'y'};
	uint8_t g[64];
	int fd = tcp_to(t);

	if (fd < 0)
		return;
	greeting(g, "NULL");
	send_all(fd, g, sizeof(g));
	send_all(fd, ready, sizeof(ready));
	send_all(fd, huge, sizeof(huge));
	close(fd);
}

/* A DEALER that says one message and leaves, with CURVE and a key of its
 * own making (believing @server_key at the other end) or without. */
static void zmq_once(void *zctx, const struct target *t, const char *server_key, bool curve,
		     const void *msg, size_t len)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	char pub[41], sec[41];
	int zero = 0;

	if (!s)
		return;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (curve) {
		zmq_curve_keypair(pub, sec);
		zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_key, 40);
		zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
		zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
	}
	if (zmq_connect(s, t->ep) == 0)
		zmq_send(s, msg, len, ZMQ_DONTWAIT);
	/* Long enough for the handshake to be tried. */
	zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
	zmq_poll(&it, 1, 5);
	zmq_close(s);
}

/* The client key's DEALER to @t, kept across tries (an insider sends
 * many); rebuilt when the node drops it. */
static void insider(void *zctx, struct pifs_auth *auth, const struct target *t, void **s,
		    const void *msg, size_t len)
{
	int zero = 0;
	int64_t max = -1;

	if (!*s) {
		*s = zmq_socket(zctx, ZMQ_DEALER);
		zmq_setsockopt(*s, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_setsockopt(*s, ZMQ_MAXMSGSIZE, &max, sizeof(max));
		if (pifs_auth_client(auth, *s, t->id) < 0 || zmq_connect(*s, t->ep) < 0) {
			zmq_close(*s);
			*s = NULL;
			return;
		}
	}
	if (zmq_send(*s, msg, len, ZMQ_DONTWAIT) < 0) {
		zmq_close(*s);
		*s = NULL;
	}
	/* Drain what came back (error replies), not to fill our queue. */
	char buf[512];
	while (*s && zmq_recv(*s, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
		;
}

/* A COMMIT or CHUNK_SYNC whose list counts and lengths, overwritten with
 * 0xff runs, claim billions of records and bytes past the frame. */
static size_t absurd(uint8_t *buf, size_t cap)
{
	struct pifs_msg m;
	struct pifs_buf b;
	size_t n;

	pifs_buf_init(&b);
	pifs_msg_init(&m, rnd() % 2 ? PIFS_MSG_COMMIT : PIFS_MSG_CHUNK_SYNC);
	m.reqid = rnd();
	if (pifs_proto_encode(&m, &b) < 0 || b.len > cap) {
		pifs_buf_fini(&b);
		return 0;
	}
	memcpy(buf, b.p, b.len);
	n = b.len;
	pifs_buf_fini(&b);
	/* Smash the lengths and counts past the header with 0xff runs. */
	for (size_t i = PIFS_PROTO_HDR; i + 4 <= n; i += 4 + rnd() % 8)
		memset(buf + i, 0xff, 4);
	return n;
}

/* Has the other end of @fd not closed it? What it sent (a greeting) is
 * read past first. */
static bool still_open(int fd)
{
	char buf[256];
	ssize_t r;

	while ((r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* Open FLOOD connections to @t at once, hold them a second, and return how
 * many the node kept open (the others it shut down: a read sees their
 * end). */
static int flood(const struct target *t)
{
	static int fd[FLOOD];
	int n = 0, kept = 0;

	for (int i = 0; i < FLOOD; i++)
		if ((fd[n] = tcp_to(t)) >= 0)
			n++;
	usleep(1000 * 1000);
	for (int i = 0; i < n; i++)
		kept += still_open(fd[i]);
	while (n > 0)
		close(fd[--n]);
	return kept;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *conf_path = NULL;
	long tries = 10000, seconds = 120;
	struct pifs_conf conf;
	struct pifs_auth *auth = NULL;
	struct target t[16];
	size_t nt = 0;
	char err[1024];
	uint8_t *big;
	size_t big_len = (size_t)PIFS_RPC_MAX_MSG + 1;
	long done[KINDS] = {0};
	void *zctx, *in = NULL;
	double end;
	int c;

	while ((c = getopt(argc, argv, "c:n:s:")) != -1) {
		if (c == 'c')
			conf_path = optarg;
		else if (c == 'n')
			tries = strtol(optarg, NULL, 10);
		else if (c == 's')
			seconds = strtol(optarg, NULL, 10);
		else
			return 2;
	}
	if (!conf_path || optind == argc || tries <= 0 || seconds <= 0) {
		fprintf(stderr, "usage: it_hostile -c CONF [-n TRIES] [-s SECONDS] NODE...\n");
		return 2;
	}
	pifs_conf_init(&conf);
	if (pifs_conf_load(&conf, conf_path, err, sizeof(err)) < 0 ||
	    pifs_auth_open(&conf, "client", &auth, err, sizeof(err)) < 0) {
		fprintf(stderr, "it_hostile: %s\n", err);
		return 2;
	}
	zctx = zmq_ctx_new();
	if (!zctx)
		return 1;
	for (; optind < argc && nt < 16; optind++) {
		const struct pifs_conf_node *n = pifs_conf_node(&conf, (uint32_t)atoi(argv[optind]));
		char host[256], *colon;

		if (!n || pifs_conf_endpoint(n->addr, t[nt].ep, sizeof(t[nt].ep)) < 0) {
			fprintf(stderr, "it_hostile: no node %s in %s\n", argv[optind], conf_path);
			return 2;
		}
		snprintf(host, sizeof(host), "%s", n->addr);
		colon = strrchr(host, ':');
		*colon = '\0';
		t[nt].id = n->id;
		{
			void *probe = zmq_socket(zctx, ZMQ_DEALER);
			size_t sz = sizeof(t[nt].server);

			if (!probe || pifs_auth_client(auth, probe, n->id) < 0 ||
			    zmq_getsockopt(probe, ZMQ_CURVE_SERVERKEY, t[nt].server, &sz) < 0) {
				fprintf(stderr, "it_hostile: no key for node %u\n", n->id);
				return 2;
			}
			zmq_close(probe);
		}
		t[nt].sa.sin_family = AF_INET;
		t[nt].sa.sin_port = htons((uint16_t)atoi(colon + 1));
		if (inet_pton(AF_INET, host, &t[nt].sa.sin_addr) != 1) {
			fprintf(stderr, "it_hostile: node %u is not at an IPv4 address\n", n->id);
			return 2;
		}
		nt++;
	}
	big = calloc(1, big_len);
	if (!big)
		return 1;
	end = now_s() + (double)seconds;
	for (long i = 0; i < tries && now_s() < end; i++) {
		const struct target *to = &t[(size_t)i % nt];
		enum kind k = (enum kind)(rnd() % KINDS);
		uint8_t msg[512];
		size_t len;

		switch (k) {
		case GARBAGE:
			try_garbage(to);
			break;
		case GREETING:
			try_greeting(to);
			break;
		case LENGTH:
			try_length(to);
			break;
		case STRANGER:
			/* The node's real public key: the handshake fails on ours. */
			zmq_once(zctx, to, to->server, true, "hello", 5);
			break;
		case PLAIN:
			zmq_once(zctx, to, NULL, false, "hello", 5);
			break;
		case OVERSIZE:
			if (done[OVERSIZE] < OVERSIZE_MAX)
				insider(zctx, auth, to, &in, big, big_len);
			break;
		case ABSURD:
			len = absurd(msg, sizeof(msg));
			if (len)
				insider(zctx, auth, to, &in, msg, len);
			break;
		default:
			break;
		}
		done[k]++;
		/* One socket per node for the insider: move on with the target. */
		if (in && (size_t)(i + 1) % nt == 0) {
			zmq_close(in);
			in = NULL;
		}
	}
	if (in)
		zmq_close(in);
	for (int k = 0; k < KINDS; k++)
		printf("%s%s %ld", k ? ", " : "it_hostile: ", kind_name[k], done[k]);
	printf("\n");
	for (size_t i = 0; i < nt && now_s() < end; i++)
		printf("it_hostile: flood of node %u: %d of %d connections kept\n", t[i].id,
		       flood(&t[i]), FLOOD);
	zmq_ctx_term(zctx);
	free(big);
	pifs_auth_free(auth);
	pifs_conf_fini(&conf);
	return 0;
}
