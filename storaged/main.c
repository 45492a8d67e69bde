/* main.c - pifs-storaged: the command line, the start and the stop.
 *
 * Everything that can be wrong with the command line or the config is found
 * before anything starts (exit 2). Signals are blocked in every thread and
 * read from a signalfd by the broker, so that a stop is one orderly path:
 * stop the heartbeat, answer what is in flight, stop the workers and the
 * metadata service (which writes a snapshot), close every socket, end the
 * ZeroMQ context. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "chunk.h"
#include "ctl.h"
#include "gc.h"
#include "heal.h"
#include "heartbeat.h"
#include "log.h"
#include "metad.h"
#include "rpc.h"
#include "scrub.h"
#include "server.h"
#include "storaged_i.h"

#ifndef PIFS_VERSION
#error "PIFS_VERSION must come from the build (storaged/CMakeLists.txt)"
#endif

#define PROG "pifs-storaged"
#define DEFAULT_CONF "/etc/pifs/pifs.conf"
#define EXIT_USAGE 2

static const char help_text[] =
    "pifs-storaged - the storage daemon of a pifs cluster\n"
    "\n"
    "Usage: pifs-storaged [-c FILE] -n ID [-d DIR] [-l HOST:PORT] [--log-level LEVEL]\n"
    "       pifs-storaged [-c FILE] -n ID -d DIR -l HOST:PORT   (a new node joining)\n"
    "       pifs-storaged --help | --version\n"
    "\n"
    "pifs-storaged keeps one node's share of a pifs cluster. It stores chunks of\n"
    "files (compressed, checksummed, named by their hash) under its data\n"
    "directory, verifies every chunk before it acknowledges it and whenever it\n"
    "reads it, passes each new chunk on down its replication chain, and serves\n"
    "chunks to clients and peers. In the background it copies its chunks to the\n"
    "nodes that should hold them and drops copies that are no longer needed\n"
    "(heal and rebalance), re-reads every chunk to repair damaged ones from\n"
    "another copy (scrub), and deletes the chunks that no file references once\n"
    "they are older than gc_grace (garbage collection). Every daemon also runs\n"
    "the metadata service (the namespace and the cluster map): on the metadata\n"
    "voters (meta = yes on 1, 3 or 5 nodes of a new cluster; pifs-admin meta\n"
    "add/remove later) it keeps a copy of the metadata log, replicated with\n"
    "Raft, in DATA/meta; the elected leader answers, and every other node\n"
    "redirects callers to it. Every node sends a heartbeat to the leader, which\n"
    "marks a silent node down, and out after out_after. The daemon runs in the\n"
    "foreground and logs to stderr: run it under systemd or another supervisor.\n"
    "\n"
    "A new node joins a running cluster without a [node ID] section: start it\n"
    "with the cluster's config, a node id no other node has, --data and\n"
    "--listen (the address the other nodes reach it at). Its first heartbeat\n"
    "adds it to the cluster map as new; it takes no data until an operator\n"
    "admits it (pifs-admin node add HOST:PORT).\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE       the cluster's configuration file, the same on every\n"
    "                          node (default: $PIFS_CONF, else " DEFAULT_CONF ")\n"
    "  -n, --node ID           which [node ID] section of the config this daemon\n"
    "                          is, or a new node's id (required)\n"
    "  -d, --data DIR          the data directory (default: the node's 'data' key);\n"
    "                          created if its parent exists, never with parents, so\n"
    "                          that an unmounted disk is not replaced by the SD card\n"
    "  -l, --listen HOST:PORT  bind here instead of the node's 'address' (such as\n"
    "                          0.0.0.0:7070); other nodes still use 'address'.\n"
    "                          For a new node, its address: not 0.0.0.0 or [::]\n"
    "      --log-level LEVEL   error, warn, info (default) or debug\n"
    "  -h, --help              show this help and exit\n"
    "  -V, --version           show the version and exit\n"
    "\n"
    "Configuration file (INI; see the pifs documentation for every key):\n"
    "  [cluster]\n"
    "  replicas = 2            ; copies of every chunk\n"
    "  chunk_size = 4M\n"
    "  heartbeat = 1s          ; how often each node reports to the leader\n"
    "  down_after = 5s         ; no heartbeat for this long: the node is down\n"
    "  out_after = 10m         ; down for this long: its chunks are copied elsewhere\n"
    "  reserve = 256M          ; refuse new chunks rather than go below this free\n"
    "  heal_interval = 60s     ; how often to check that every chunk is on its owners\n"
    "  heal_rate = 50M         ; bytes/s that heal may copy (0: no limit)\n"
    "  scrub_interval = 168h   ; how often to re-read and verify every chunk (0: never)\n"
    "  scrub_rate = 20M        ; bytes/s that scrub may read (0: no limit)\n"
    "  gc_interval = 1h        ; how often to delete unreferenced chunks (0: never)\n"
    "  gc_grace = 1h           ; keep a chunk written or re-written this recently\n"
    "  keys = /etc/pifs/keys   ; the key directory: node-ID.key and allowed\n"
    "  security = curve        ; or none: no keys, and anyone who reaches the port\n"
    "                          ; can read, change and destroy every file\n"
    "\n"
    "  [node 1]\n"
    "  address = 192.168.1.11:7070\n"
    "  data = /srv/pifs\n"
    "  meta = yes              ; a metadata voter of a new cluster\n"
    "  weight = 100            ; optional; default: the data disk's size in GiB\n"
    "\n"
    "  [client]\n"
    "  timeout = 10s           ; how long a request waits for a node; a node\n"
    "                          ; forwarding a chunk waits a share of it\n"
    "\n"
    "Data directory:\n"
    "  chunks/ab/cd/ID         one file per chunk, as sent on the wire\n"
    "  quarantine/ID           chunks that failed verification (never served)\n"
    "  scrub.last              its time is the end of the last complete scrub\n"
    "  tmp/                    chunks being written; emptied at start\n"
    "  meta/                   metadata log, term and snapshot (voters)\n"
    "  lock                    held while a daemon uses the directory\n"
    "\n"
    "Keys:\n"
    "  Every connection is encrypted and authenticated with CURVE. The daemon\n"
    "  proves itself with KEYS/node-ID.key and accepts only the keys listed in\n"
    "  KEYS/allowed and not revoked there, each for what its role allows (a\n"
    "  client key: a mount's requests; a node key: peer traffic; an admin key:\n"
    "  everything). It reads allowed again when the file changes, on SIGHUP, and\n"
    "  when pifs-admin keys pushes a new one. pifs-admin keys init makes them.\n"
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT         stop taking requests, answer those in flight, write\n"
    "                          a metadata snapshot, exit 0; a second signal\n"
    "                          stops without waiting\n"
    "  SIGHUP                  read the allow-list (KEYS/allowed) again\n"
    "\n"
    "Example:\n"
    "  pifs-storaged -c /etc/pifs/pifs.conf --node 1\n"
    "\n"
    "Exit status:\n"
    "  0  stopped by SIGTERM or SIGINT, or --help or --version\n"
    "  1  could not start or had to stop: data directory, address or metadata log\n"
    "  2  bad command line or configuration file; nothing was started\n";

struct args {
	const char *config;
	const char *data;
	const char *listen;
	uint32_t node;
	int level;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, PROG ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '" PROG " --help' for more information.\n");
	return -EINVAL;
}

/* Returns 0 to run, 1 when done (help, version), or -EINVAL (reported). */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},	 {"node", required_argument, NULL, 'n'},
	    {"data", required_argument, NULL, 'd'},	 {"listen", required_argument, NULL, 'l'},
	    {"log-level", required_argument, NULL, 'L'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},	 {NULL, 0, NULL, 0},
	};
	unsigned long v;
	char *end;
	int c;

	memset(a, 0, sizeof(*a));
	a->level = PIFS_LOG_INFO;
	a->config = getenv("PIFS_CONF");
	if (!a->config || !a->config[0])
		a->config = DEFAULT_CONF;
	while ((c = getopt_long(argc, argv, "c:n:d:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'n':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 2147483647ul ||
			    optarg[0] == '-')
				return usage_error(
				    "--node wants a node id from 1 to 2147483647, not "
				    "'%s'",
				    optarg);
			a->node = (uint32_t)v;
			break;
		case 'd':
			if (!optarg[0])
				return usage_error("--data wants a directory");
			a->data = optarg;
			break;
		case 'l':
			a->listen = optarg;
			break;
		case 'L':
			a->level = pifs_log_parse_level(optarg);
			if (a->level < 0)
				return usage_error(
				    "--log-level wants error, warn, info or debug, not "
				    "'%s'",
				    optarg);
			break;
		case 'h':
			fputs(help_text, stdout);
			return 1;
		case 'V':
			printf(PROG " " PIFS_VERSION "\n");
			return 1;
		default:
			/* getopt_long has said what was wrong. */
			fprintf(stderr, "Try '" PROG " --help' for more information.\n");
			return -EINVAL;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!a->node)
		return usage_error("which node is this? Give --node ID, one of the [node ID] "
				   "sections of the config");
	return 0;
}

/* Is @addr (host:port, checked) a wildcard, which other nodes cannot reach? */
static bool wildcard(const char *addr)
{
	return strncmp(addr, "0.0.0.0:", 8) == 0 || strncmp(addr, "[::]:", 5) == 0 ||
	       strncmp(addr, "*:", 2) == 0;
}

/* A node that the config does not name joins with the address it listens
 * on and the data directory it was given: fill @self with them. Returns 0,
 * or -EINVAL after saying what is missing. */
static int joining_node(const struct args *a, struct pifs_conf_node *self)
{
	char ep[300];

	if (!a->listen || !a->data) {
		fprintf(stderr,
			PROG ": node %u is not in %s: give --node the id of one of its [node ID] "
			     "sections, or, to join a new node, give --listen HOST:PORT (its "
			     "address) and --data DIR as well\n",
			a->node, a->config);
		return -EINVAL;
	}
	if (wildcard(a->listen) || strlen(a->listen) >= sizeof(self->addr) ||
	    pifs_conf_endpoint(a->listen, ep, sizeof(ep)) < 0) {
		fprintf(stderr,
			PROG ": --listen '%s' must be the address the other nodes reach new node "
			     "%u at, such as 192.168.1.14:7070 (not 0.0.0.0 or [::])\n",
			a->listen, a->node);
		return -EINVAL;
	}
	memset(self, 0, sizeof(*self));
	self->id = a->node;
	strcpy(self->addr, a->listen);
	snprintf(self->data, sizeof(self->data), "%s", a->data);
	return 0;
}

/* What to do about a data directory that does not open. */
static const char *store_hint(int rc)
{
	switch (rc) {
	case -EBUSY:
		return "another pifs-storaged uses it: stop that one, or give this one its own "
		       "--data";
	case -ENOENT:
		return "its parent directory does not exist: mount the data disk or create the "
		       "parent";
	case -EACCES:
	case -EPERM:
	case -EROFS:
		return "the daemon cannot write there: fix the permissions or the mount";
	default:
		return "check the data disk";
	}
}

static void stop_workers(struct pifsd *d, struct pifs_server *srv,
			 struct pifs_chunk_worker **workers, struct pifs_metad *md)
{
	int i;

	atomic_store(&d->workers_stop, true);
	pifs_server_publish(srv, PIFS_CTL_WORKERS);
	for (i = 0; i < PIFS_WORKERS; i++)
		pifs_chunk_worker_join(workers[i]);
	pifs_metad_free(md);
}

/* Connections, chunk files and the metadata log all take descriptors; the
 * soft limit is often 1024, the hard one far more. A peer's share of them
 * is bounded by the guard (guard.h), not by running out. */
static void raise_fd_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* Start everything, serve until a signal, stop everything. Returns the exit
 * status. */
static int run(struct pifsd *d, const char *endpoint, const char *listen_addr, int sigfd)
{
	struct pifs_chunk_worker *workers[PIFS_WORKERS] = {NULL};
	struct pifs_heartbeat *hb = NULL;
	struct pifs_server *srv = NULL;
	struct pifs_metad *md = NULL;
	int rc, status = EXIT_FAILURE, i;
	bool started = false;
	char mark[4096];

	rc = pifs_store_open(d->data, d->conf->reserve_bytes, &d->store);
	if (rc < 0) {
		pifs_err("node %u: cannot open the data directory %s: %s; %s", d->self->id, d->data,
			 strerror(-rc), store_hint(rc));
		return EXIT_FAILURE;
	}
	/* Started again after a removal: it joins as a new node. */
	if (snprintf(mark, sizeof(mark), "%s/" PIFS_REMOVED_MARK, d->data) < (int)sizeof(mark))
		unlink(mark);
	d->zctx = zmq_ctx_new();
	if (!d->zctx) {
		pifs_err("node %u: cannot start ZeroMQ: %s", d->self->id, zmq_strerror(errno));
		goto out_store;
	}
	/* CURVE encrypts and decrypts in ZeroMQ's I/O threads: with one, a
	 * node forwarding a chain at link speed does all of it on one core. */
	zmq_ctx_set(d->zctx, ZMQ_IO_THREADS, PIFS_IO_THREADS);
	rc = pifs_auth_zap_start(d->auth, d->zctx);
	if (rc < 0) {
		pifs_err("node %u: cannot start the key check (ZAP): %s", d->self->id,
			 zmq_strerror(-rc));
		goto out_ctx;
	}
	rc = pifs_server_open(d, endpoint, &srv);
	if (rc < 0) {
		pifs_err("node %u: cannot listen on %s: %s; %s", d->self->id, endpoint,
			 strerror(-rc),
			 rc == -EADDRINUSE ? "another process has that address: stop it, or change "
					     "the node's address or --listen"
					   : "check the node's address in the config or --listen");
		goto out_ctx;
	}
	rc = pifs_heal_new(d, &d->heal);
	if (rc == 0)
		rc = pifs_scrub_new(d, &d->scrub);
	if (rc == 0)
		rc = pifs_gc_new(d, &d->gc);
	if (rc < 0) {
		pifs_err("node %u: cannot set up heal, scrub and garbage collection: %s",
			 d->self->id, strerror(-rc));
		goto out_server;
	}
	rc = pifs_metad_open(d, &md);
	if (rc < 0)
		goto out_server;
	for (i = 0; i < PIFS_WORKERS; i++) {
		rc = pifs_chunk_worker_start(d, (unsigned)i, &workers[i]);
		if (rc < 0)
			goto out_threads;
	}
	if ((rc = pifs_metad_start(md)) < 0)
		goto out_threads;
	rc = pifs_heartbeat_start(d, &hb);
	if (rc < 0)
		goto out_threads;
	if ((rc = pifs_heal_start(d->heal)) < 0 || (rc = pifs_scrub_start(d->scrub)) < 0 ||
	    (rc = pifs_gc_start(d->gc)) < 0)
		goto out_threads;
	started = true;
	pifs_info("node %u ready on %s (data %s)", d->self->id, listen_addr, d->data);
	rc = pifs_server_run(srv, sigfd);
	if (rc < 0)
		pifs_err("node %u: the broker failed: %s; stopping the node", d->self->id,
			 zmq_strerror(-rc));
	else
		status = EXIT_SUCCESS;
out_threads:
	if (!started)
		pifs_err("node %u: cannot start its threads: %s", d->self->id, strerror(-rc));
	/* Already done by the broker on a signal; needed on the other paths. */
	atomic_store(&d->heartbeat_stop, true);
	pifs_server_publish(srv, PIFS_CTL_HEARTBEAT);
	pifs_heal_stop(d->heal);
	pifs_scrub_stop(d->scrub);
	pifs_gc_stop(d->gc);
	pifs_heartbeat_join(hb);
	stop_workers(d, srv, workers, md);
out_server:
	/* After the workers, which may still hand them corrupt chunks. */
	pifs_heal_free(d->heal);
	pifs_scrub_free(d->scrub);
	pifs_gc_free(d->gc);
	d->heal = NULL;
	d->scrub = NULL;
	d->gc = NULL;
	pifs_server_close(srv);
out_ctx:
	zmq_ctx_term(d->zctx);
out_store:
	pifs_store_close(d->store);
	if (status == EXIT_SUCCESS)
		pifs_info("node %u stopped", d->self->id);
	return status;
}

int main(int argc, char **argv)
{
	struct pifs_conf_node joiner;
	struct pifs_conf conf;
	struct pifsd d;
	struct args a;
	const char *listen_addr;
	char err[1024], endpoint[300], keyname[32];
	sigset_t set;
	int rc, sigfd, status;

	rc = parse_args(argc, argv, &a);
	if (rc != 0)
		return rc > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	pifs_log_init(PROG, (enum pifs_log_level)a.level);
	pifs_conf_init(&conf);
	rc = pifs_conf_load(&conf, a.config, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	memset(&d, 0, sizeof(d));
	d.conf = &conf;
	d.self = pifs_conf_node(&conf, a.node);
	if (!d.self) {
		if (joining_node(&a, &joiner) < 0) {
			pifs_conf_fini(&conf);
			return EXIT_USAGE;
		}
		d.self = &joiner;
	}
	listen_addr = a.listen ? a.listen : d.self->addr;
	if (pifs_conf_endpoint(listen_addr, endpoint, sizeof(endpoint)) < 0) {
		fprintf(stderr, PROG ": %s '%s' is not host:port, such as 192.168.1.11:7070\n",
			a.listen ? "--listen" : "the node's address", listen_addr);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	d.data = a.data ? a.data : d.self->data;
	snprintf(keyname, sizeof(keyname), "node-%u", d.self->id);
	rc = pifs_auth_open(&conf, keyname, &d.auth, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, PROG ": node %u: %s\n", d.self->id, err);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	if (pifs_auth_insecure(d.auth))
		pifs_warn("node %u: 'security = none' in %s: no keys, no encryption; anyone who "
			  "can reach %s can read, change and destroy every file of the cluster",
			  d.self->id, a.config, listen_addr);

	/* Chunk buffers are megabytes each: give them back to the system when
	 * they are freed instead of letting glibc keep them for later, and
	 * keep few arenas, so that the daemon stays small on a 1 GiB Pi. The
	 * pieces of a put (256 KiB, which ZeroMQ allocates as they arrive)
	 * come from the heap and are reused: mapped each, every piece cost
	 * the kernel fresh zeroed pages, about a tenth of a write's CPU. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	mallopt(M_ARENA_MAX, 2);
	raise_fd_limit();

	/* Blocked before any thread starts (ZeroMQ's too), so that only the
	 * signalfd sees them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	if (sigfd < 0) {
		pifs_err("node %u: cannot watch for signals: %s", a.node, strerror(errno));
		pifs_auth_free(d.auth);
		pifs_conf_fini(&conf);
		return EXIT_FAILURE;
	}
	if (pifs_metacall_book_new(&conf, &d.book) < 0) {
		pifs_err("node %u: out of memory", a.node);
		close(sigfd);
		pifs_auth_free(d.auth);
		pifs_conf_fini(&conf);
		return EXIT_FAILURE;
	}
	pifs_nodemap_init(&d.map, &conf);
	atomic_init(&d.heartbeat_stop, false);
	atomic_init(&d.workers_stop, false);
	atomic_init(&d.heartbeat_running, false);
	status = run(&d, endpoint, listen_addr, sigfd);
	pifs_nodemap_fini(&d.map);
	pifs_metacall_book_free(d.book);
	pifs_auth_free(d.auth);
	close(sigfd);
	pifs_conf_fini(&conf);
	return status;
}
