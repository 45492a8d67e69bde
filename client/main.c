/* main.c - pifs-mount: mount a pifs cluster with FUSE.
 *
 * Order matters: the options and the configuration are checked first (exit
 * 2), then the metadata service must answer (exit 1), then the kernel mount
 * is made, and only then does the process go to the background: ZeroMQ and
 * the worker threads start after that fork, never before it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "auth.h"
#include "cluster.h"
#include "config.h"
#include "data.h"
#include "keys.h"
#include "log.h"
#include "ops.h"

#ifndef PIFS_VERSION
#define PIFS_VERSION "unknown"
#endif

#define EXIT_USAGE 2
#define DEFAULT_CONF "/etc/pifs/pifs.conf"
#define READ_AHEAD_KB "1024"

struct cli {
	const char *conf;
	const char *mountpoint;
	bool foreground, debug;
	char fuse_opts[4096];	/* the -o options that are FUSE's, comma-separated */
	double attr_timeout, entry_timeout;
	uint64_t cache_bytes;
	bool cache_set;
	uint32_t node;		/* -o node=N: reads ask this node first; 0 none */
	char key[PIFS_KEY_NAME_MAX + 1]; /* -o key=NAME */
};

static void usage(FILE *out)
{
	fprintf(out,
"NAME\n"
"    pifs-mount - mount a pifs cluster as a local directory\n"
"\n"
"SYNOPSIS\n"
"    pifs-mount [-c FILE] [-f] [-d] [-o OPTION[,OPTION...]] MOUNTPOINT\n"
"    pifs-mount --help | --version\n"
"    mount -t pifs FILE MOUNTPOINT [-o OPTIONS]      (through mount.pifs)\n"
"\n"
"DESCRIPTION\n"
"    pifs-mount makes the files of a pifs cluster appear under MOUNTPOINT.\n"
"    It reads the cluster's configuration file, asks the metadata service\n"
"    named there for the cluster map, mounts the file system with FUSE and\n"
"    then serves it, in the background unless -f is given.\n"
"\n"
"    Data is written in chunks (the cluster's chunk_size): each chunk is\n"
"    hashed, compressed when that pays, and stored on its replicas by chain\n"
"    replication. close(2) and fflush return only when every chunk of the\n"
"    file is on its replicas and the new chunk list is committed; fsync(2)\n"
"    also makes the replicas write the chunks to disk. A replica that is\n"
"    down or full is replaced by the next node in placement order. When\n"
"    fewer nodes than replicas are alive or have room, a chunk is accepted\n"
"    on as many as took it, if at least one did, with a warning in the log;\n"
"    the storage daemons' heal adds the missing copies later. With no copy\n"
"    anywhere write, fsync or close fail (ENOSPC when every node that\n"
"    answered was full, else EIO); nothing is lost silently. A read that no\n"
"    node can serve with a copy that verifies fails with EIO, never with\n"
"    zeros. What one node closed, another node sees when it next opens the\n"
"    file (close-to-open consistency, as with NFS).\n"
"\n"
"    Any user who can read a file can see its health:\n"
"    getfattr -n user.pifs.status FILE says healthy, degraded or\n"
"    unreadable, and user.pifs.chunks lists each chunk's id and the nodes\n"
"    holding it. The user.pifs. names are computed, not stored: they\n"
"    cannot be set or removed. pifs keeps no ACLs, file capabilities or\n"
"    security labels: names under security. and system. read as absent\n"
"    (ENODATA) and cannot be set (EOPNOTSUPP), without asking the cluster.\n"
"\n"
"OPTIONS\n"
"    -c, --config FILE\n"
"        The cluster configuration. Default: $PIFS_CONF, else\n"
"        " DEFAULT_CONF ".\n"
"    -f, --foreground\n"
"        Stay in the foreground; log to standard error. Without it the\n"
"        process detaches once the mount is up.\n"
"    -d, --debug\n"
"        Log every FUSE request and debug messages; implies -f.\n"
"    -o OPTIONS\n"
"        Comma-separated mount options, below. May be repeated.\n"
"    -h, --help\n"
"        Show this text.\n"
"    -V, --version\n"
"        Show the version of pifs-mount and of libfuse.\n"
"\n"
"MOUNT OPTIONS\n"
"    cache=SIZE\n"
"        Memory for the chunk cache of this mount (K, M, G suffixes).\n"
"        Default: the [client] cache of the configuration, 64M if unset.\n"
"    attr_timeout=SECONDS, entry_timeout=SECONDS\n"
"        How long the kernel may trust attributes and names. Default 1.\n"
"        Failed lookups are never cached.\n"
"    node=N\n"
"        This machine runs storage node N: reads of a chunk ask it first when\n"
"        it holds one of the chunk's owner copies. Without it, a node is\n"
"        taken for local when its address is one of this machine's network\n"
"        addresses (loopback aside) or its host name.\n"
"    key=NAME\n"
"        The key this mount proves itself with: KEYS/NAME.key, KEYS being\n"
"        the configuration's [cluster] keys directory. Default: client.\n"
"    ro, allow_other and the other options of mount.fuse3(8) are passed to\n"
"    FUSE. default_permissions is always on: the kernel checks every access\n"
"    against the files' modes and owners. allow_other (every user of the\n"
"    machine may use the files, as they may on a local disk) is on when root\n"
"    mounts; a user mounting needs user_allow_other in /etc/fuse.conf for it.\n"
"\n"
"FILES\n"
"    " DEFAULT_CONF "\n"
"        The cluster configuration, the same on every node. pifs-mount uses\n"
"        the [cluster] and [client] sections and the address of the first\n"
"        node with meta = yes.\n"
"    /etc/pifs/keys/client.key, /etc/pifs/keys/allowed\n"
"        The mount's key and the cluster's allow-list (the directory is the\n"
"        configuration's [cluster] keys): every connection is encrypted, and\n"
"        the mount believes a node only when it proves the key the list\n"
"        names for it. A mount whose key is revoked gets EACCES from its next\n"
"        request on. With 'security = none' no key is read, and anyone on\n"
"        the network can read and change every file.\n"
"\n"
"ENVIRONMENT\n"
"    PIFS_CONF    the configuration file when -c is not given.\n"
"\n"
"EXIT STATUS\n"
"    0   unmounted cleanly (fusermount3 -u, umount, SIGTERM, SIGINT), every\n"
"        file's data stored.\n"
"    1   the cluster could not be reached, the mount failed, or data could\n"
"        not be stored at unmount (see the log).\n"
"    2   bad command line or configuration.\n"
"\n"
"EXAMPLES\n"
"    pifs-mount /mnt/expo\n"
"    pifs-mount -c /tmp/pifs.conf -f -o allow_other,cache=128M /mnt/expo\n"
"    mount -t pifs /etc/pifs/pifs.conf /mnt/expo -o allow_other\n"
"    /etc/fstab:  /etc/pifs/pifs.conf /mnt/expo pifs _netdev,allow_other 0 0\n"
"    Unmount with: fusermount3 -u /mnt/expo\n"
"\n"
"SEE ALSO\n"
"    pifs-storaged(8), pifs-admin(8), mount.fuse3(8), fusermount3(1)\n");
}

static void version(void)
{
	printf("pifs-mount %s (libfuse %s)\n", PIFS_VERSION, fuse_pkgversion());
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 86400)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_node(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > INT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Take our own options out of @opts (one -o argument); the rest is FUSE's. */
static int parse_o(struct cli *c, const char *opts)
{
	char *copy = strdup(opts), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
		size_t have = strlen(c->fuse_opts);

		if (strncmp(tok, "attr_timeout=", 13) == 0) {
			rc = parse_seconds(tok + 13, &c->attr_timeout);
		} else if (strncmp(tok, "entry_timeout=", 14) == 0) {
			rc = parse_seconds(tok + 14, &c->entry_timeout);
		} else if (strncmp(tok, "node=", 5) == 0) {
			rc = parse_node(tok + 5, &c->node);
		} else if (strncmp(tok, "key=", 4) == 0) {
			rc = pifs_key_name_ok(tok + 4) ? 0 : -EINVAL;
			if (rc == 0)
				snprintf(c->key, sizeof(c->key), "%s", tok + 4);
		} else if (strncmp(tok, "cache=", 6) == 0) {
			rc = pifs_conf_parse_size(tok + 6, &c->cache_bytes);
			c->cache_set = true;
		} else if (have + strlen(tok) + 2 < sizeof(c->fuse_opts)) {
			snprintf(c->fuse_opts + have, sizeof(c->fuse_opts) - have, "%s%s",
				 have ? "," : "", tok);
		} else {
			rc = -E2BIG;
		}
		if (rc < 0)
			fprintf(stderr, "pifs-mount: bad mount option '%s': %s\n", tok,
				rc == -E2BIG ? "too many options" :
				"expected attr_timeout=SECONDS, entry_timeout=SECONDS, "
				"cache=SIZE, node=N or key=NAME");
	}
	free(copy);
	return rc;
}

static int parse_cli(struct cli *c, int argc, char **argv)
{
	static const struct option longs[] = {
		{"config", required_argument, NULL, 'c'},
		{"foreground", no_argument, NULL, 'f'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int opt;

	memset(c, 0, sizeof(*c));
	c->attr_timeout = 1.0;
	c->entry_timeout = 1.0;
	snprintf(c->key, sizeof(c->key), "client");
	c->conf = getenv("PIFS_CONF");
	if (!c->conf || !*c->conf)
		c->conf = DEFAULT_CONF;
	while ((opt = getopt_long(argc, argv, "c:fdo:hV", longs, NULL)) != -1) {
		switch (opt) {
		case 'c':
			c->conf = optarg;
			break;
		case 'f':
			c->foreground = true;
			break;
		case 'd':
			c->debug = true;
			c->foreground = true;
			break;
		case 'o':
			if (parse_o(c, optarg) < 0)
				return -EINVAL;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			version();
			exit(0);
		default:
			fprintf(stderr, "Try 'pifs-mount --help'.\n");
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "pifs-mount: %s\nUsage: pifs-mount [-c FILE] [-f] [-d] [-o OPTS] "
			"MOUNTPOINT; try 'pifs-mount --help'.\n",
			optind >= argc ? "no mount point given" :
					 "more than one mount point given");
		return -EINVAL;
	}
	c->mountpoint = argv[optind];
	return 0;
}

/* Raise the kernel's readahead of the mount to 1 MiB: FUSE reads otherwise
 * arrive as 128 KiB pieces (PERFORMANCE.md). The stat needs the session
 * loop to answer, so this runs on its own thread once the loop is up. */
static void *raise_readahead(void *arg)
{
	const char *mnt = arg;
	char path[128];
	struct stat st;
	FILE *f;

	if (stat(mnt, &st) < 0)
		return NULL;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	f = fopen(path, "w");
	if (!f)
		return NULL;
	if (fputs(READ_AHEAD_KB, f) < 0)
		pifs_debug("cannot raise %s: %s", path, strerror(errno));
	fclose(f);
	return NULL;
}

/* "node 1 at host:port, node 2 at ..." of the config's metadata voters,
 * into @out (@cap bytes), for messages: any of them may lead. */
static const char *conf_voters(const struct pifs_conf *conf, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < conf->n_nodes && len < cap; i++) {
		int w;

		if (!conf->nodes[i].meta)
			continue;
		w = snprintf(out + len, cap - len, "%snode %u at %s", len ? ", " : "",
			     conf->nodes[i].id, conf->nodes[i].addr);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	return out;
}

/* Why the first voter did not answer, when keys may be the reason. */
static void explain(const struct pifs_conf *conf, struct pifs_auth *auth)
{
	char why[1024];
	void *zctx = zmq_ctx_new();

	if (!zctx)
		return;
	if (pifs_auth_explain(auth, zctx, conf, 2000, why, sizeof(why)))
		fprintf(stderr, "pifs-mount: %s\n", why);
	zmq_ctx_term(zctx);
}

/* The metadata service must answer before anything is mounted: a mount
 * that hangs on every access is worse than a clear error now. */
static int probe(const struct pifs_conf *conf, struct pifs_auth *auth)
{
	struct pifs_cluster *cl;
	char voters[1024];
	int rc;

	conf_voters(conf, voters, sizeof(voters));
	rc = pifs_cluster_new(conf, auth, &cl);
	if (rc < 0) {
		fprintf(stderr, "pifs-mount: cannot set up the connection to the metadata "
			"service (voters: %s): %s\n", voters, strerror(-rc));
		return rc;
	}
	rc = pifs_cluster_connect(cl, (int)conf->timeout_ms);
	if (rc == -ETIMEDOUT || rc == -EHOSTUNREACH)
		fprintf(stderr, "pifs-mount: cannot reach the metadata service (voters: %s): is "
			"pifs-storaged running there, and are most of the voters up? (no "
			"answer within %u ms)\n",
			voters, conf->timeout_ms);
	else if (rc < 0)
		fprintf(stderr, "pifs-mount: cannot reach the metadata service (voters: %s): is "
			"pifs-storaged running there, and are most of the voters up? (%s)\n",
			voters, strerror(-rc));
	pifs_cluster_free(cl);
	if (rc < 0)
		explain(conf, auth);
	return rc;
}

int main(int argc, char **argv)
{
	struct pifs_mount m = {0};
	struct fuse_session *se = NULL;
	struct fuse_loop_config *lcfg = NULL;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct pifs_auth *auth = NULL;
	struct pifs_conf conf;
	struct cli cli;
	char mnt[PATH_MAX], err[1024];
	pthread_t ra;
	bool ra_started = false;
	int rc, status = 1;

	/* Chunk buffers are a few MiB each: keep them in mmap so that freeing
	 * one gives the memory back, and few arenas for the many threads. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 4);

	if (parse_cli(&cli, argc, argv) < 0)
		return EXIT_USAGE;
	pifs_log_init("pifs-mount", cli.debug ? PIFS_LOG_DEBUG : PIFS_LOG_INFO);
	pifs_conf_init(&conf);
	rc = pifs_conf_load(&conf, cli.conf, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "pifs-mount: %s\n", err[0] ? err : strerror(-rc));
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	if (cli.node && !pifs_conf_node(&conf, cli.node)) {
		fprintf(stderr, "pifs-mount: -o node=%u: %s has no [node %u] section; give the id "
			"of the storage node on this machine\n", cli.node, cli.conf, cli.node);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	if (!realpath(cli.mountpoint, mnt)) {
		fprintf(stderr, "pifs-mount: mount point %s: %s\n", cli.mountpoint,
			strerror(errno));
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	rc = pifs_auth_open(&conf, cli.key, &auth, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "pifs-mount: %s\n", err);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	if (pifs_auth_role(auth) == PIFS_ROLE_NODE) {
		fprintf(stderr, "pifs-mount: the key '%s' is a node's (role node), which may not "
			"read or write files: a mount proves itself with a client key; give -o "
			"key=NAME of one ('pifs-admin keys list' shows them)\n", cli.key);
		pifs_auth_free(auth);
		pifs_conf_fini(&conf);
		return EXIT_USAGE;
	}
	if (pifs_auth_insecure(auth))
		fprintf(stderr, "pifs-mount: warning: 'security = none' in %s: no keys, no "
			"encryption; anyone on the network can read, change and destroy every "
			"file\n", cli.conf);
	m.attr_timeout = cli.attr_timeout;
	m.entry_timeout = cli.entry_timeout;

	/* The files carry modes and owners that the services on a node rely on
	 * (a web server's user must not write the database's files), and pifs
	 * checks none itself: the kernel does, always. Mounted by root, the
	 * tree is for every user of the node, as a local disk would be. */
	if (fuse_opt_add_arg(&args, argv[0]) < 0 || fuse_opt_add_arg(&args, "-o") < 0 ||
	    fuse_opt_add_arg(&args, geteuid() == 0
					? "fsname=pifs,subtype=pifs,default_permissions,allow_other"
					: "fsname=pifs,subtype=pifs,default_permissions") < 0 ||
	    (cli.debug && fuse_opt_add_arg(&args, "-d") < 0) ||
	    (cli.fuse_opts[0] &&
	     (fuse_opt_add_arg(&args, "-o") < 0 || fuse_opt_add_arg(&args, cli.fuse_opts) < 0)))
		goto out_conf;
	se = fuse_session_new(&args, pifs_ops_table(), sizeof(*pifs_ops_table()), &m);
	if (!se) {
		fprintf(stderr, "pifs-mount: the FUSE options '%s' were refused (see above); "
			"try 'pifs-mount --help'\n", cli.fuse_opts);
		status = EXIT_USAGE;
		goto out_conf;
	}
	if (probe(&conf, auth) < 0)
		goto out_session;
	if (fuse_set_signal_handlers(se) < 0)
		goto out_session;
	if (fuse_session_mount(se, mnt) < 0) {
		fprintf(stderr, "pifs-mount: cannot mount on %s: is it an empty directory, and is "
			"/dev/fuse usable by this user?\n", mnt);
		goto out_signals;
	}
	if (fuse_daemonize(cli.foreground) < 0)
		goto out_unmount;

	rc = pifs_cluster_new(&conf, auth, &m.cl);
	if (rc == 0 && cli.node)
		pifs_cluster_set_local(m.cl, cli.node);
	if (rc == 0)
		rc = pifs_cluster_connect(m.cl, (int)conf.timeout_ms);
	if (rc == 0)
		rc = pifs_data_new(m.cl, cli.cache_set ? cli.cache_bytes :
				   (conf.cache_bytes ? conf.cache_bytes : 64u << 20), &m.data);
	if (rc == 0) {
		m.dirs = pifs_dircache_new((int64_t)(cli.attr_timeout * 1e9));
		rc = m.dirs ? 0 : -ENOMEM;
	}
	if (rc < 0) {
		char voters[1024];

		pifs_err("cannot start the mount on %s: the metadata service (voters: %s): %s", mnt,
			 conf_voters(&conf, voters, sizeof(voters)), strerror(-rc));
		goto out_cluster;
	}
	if (geteuid() == 0)
		ra_started = pthread_create(&ra, NULL, raise_readahead, mnt) == 0;
	pifs_info("mounted on %s; metadata leader %s; chunk size %u, %u replica(s)", mnt,
		  pifs_cluster_meta_name(m.cl), pifs_cluster_chunk_size(m.cl),
		  pifs_cluster_replicas(m.cl));

	lcfg = fuse_loop_cfg_create();
	if (!lcfg)
		goto out_cluster;
	fuse_loop_cfg_set_max_threads(lcfg, 16);
	/* The loop returns the number of the signal that ended it (SIGTERM,
	 * SIGINT, SIGHUP: a clean stop), or a -errno. */
	rc = fuse_session_loop_mt(se, lcfg);
	fuse_loop_cfg_destroy(lcfg);
	status = rc < 0 ? 1 : 0;
	if (rc < 0)
		pifs_err("the FUSE session on %s failed: %s", mnt, strerror(-rc));
	rc = pifs_data_flush_all(m.data);
	if (rc < 0) {
		pifs_err("unmount of %s: some file data could not be stored: %s", mnt,
			 strerror(-rc));
		status = 1;
	}
out_cluster:
	if (ra_started)
		pthread_join(ra, NULL);
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	/* Runs the destroy op, which flushes, so the data layer is freed after. */
	fuse_session_destroy(se);
	pifs_dircache_free(m.dirs);
	pifs_data_free(m.data);
	pifs_cluster_free(m.cl);
out_conf:
	fuse_opt_free_args(&args);
	pifs_auth_free(auth);
	pifs_conf_fini(&conf);
	return status;
}
