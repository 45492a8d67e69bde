/* admin.c - pifs-admin: what an operator asks of a running cluster.
 *
 * Every subcommand reads the cluster's configuration file, asks the metadata
 * leader (found among the voters by fs/metacall.c) for CLUSTER_STAT (the map, the namespace figures and each node's
 * background work as its last heartbeat told) and, where it shows per-node
 * use, asks every storage node for NODE_STAT in parallel. status, nodes and
 * df only read; scrub, heal, rebalance and gc ask the nodes to start a pass
 * now (WORK_START) and, with --wait, follow the passes with NODE_STAT until
 * they are done; node changes the cluster map through the metadata leader;
 * meta asks every voter for its view of the replicated log; keys works on
 * the files of the key directory and sends the allow-list to every node.
 * This file holds main, the options and the command table; admin_i.h says
 * which module does what. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "admin_i.h"

/* ---- help ---- */

static const char global_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] COMMAND [OPTIONS]\n"
    "       " PROG " COMMAND --help\n"
    "\n"
    "Show the state of a pifs cluster, and start its background work. " PROG " reads the\n"
    "cluster's configuration file, asks the metadata service (its leader, found among\n"
    "the nodes with \"meta = yes\") for the cluster map and its figures, and asks each\n"
    "storage node for its own. status, nodes and df change nothing; scrub, heal, rebalance and gc start\n"
    "a pass now; node changes the cluster map; keys makes and revokes the keys that\n"
    "every connection needs.\n"
    "\n"
    "Commands:\n"
    "  status   the cluster in a few lines: map epoch, replicas, chunk size, each node's\n"
    "           state, chunks short of copies, heal progress, scrub figures, health\n"
    "  nodes    one line per node: address, up/down, in/out, metadata voter, weight,\n"
    "           used/capacity, chunks, when the metadata service last heard from it\n"
    "  df       space: logical bytes, data, compression, dedup saving, stored bytes,\n"
    "           replication, and use and free space per node\n"
    "  scrub    re-read and verify every chunk on every node now, repairing bad copies\n"
    "           (--wait: follow it and print what it found)\n"
    "  heal     make every chunk's owners hold it now (--wait: until every chunk has\n"
    "           its copies where they belong)\n"
    "  node     node add ADDRESS [--weight W], node drain NODE, node remove NODE\n"
    "           [--force], node set-weight NODE W: change who is a member\n"
    "  meta     meta status: the metadata voters, their leader, how far each follows\n"
    "           and whether a majority is up; meta add NODE, meta remove NODE: change\n"
    "           who votes\n"
    "  rebalance  move chunks to their owners under the current map (--dry-run: the\n"
    "           plan; --wait: a progress bar until done; --limit MB/s)\n"
    "  gc       delete chunk copies no file uses (--dry-run: count; --wait: report)\n"
    "  keys     keys init, add-node N, add-client NAME, add-admin NAME, revoke NAME\n"
    "           [--force], list, push: the cluster's CURVE keys and the allow-list the\n"
    "           nodes hold (files in the configuration's key directory); keys export\n"
    "           NAME -o FILE, keys import FILE: a new machine's key and the allow-list\n"
    "           in one file, from the admin's machine to it\n"
    "\n"
    "Options (before or after the command):\n"
    "  -c, --config FILE   the cluster's configuration file (default: $PIFS_CONF, else\n"
    "                      " DEFAULT_CONF ")\n"
    "  -k, --key NAME      the key to prove this tool with: KEYS/NAME.key, KEYS being the\n"
    "                      [cluster] keys directory of the configuration (default: admin)\n"
    "  -j, --json          print one JSON object with every figure: sizes as integers in\n"
    "                      bytes, times in nanoseconds since the epoch, stable key names\n"
    "  -t, --timeout DUR   how long to wait for each node, as 500ms, 2s, 1m (default: the\n"
    "                      [client] timeout of the configuration file); after heal, how\n"
    "                      long --wait waits in all (see heal --help)\n"
    "  -h, --help          show this help; after a command, that command's help\n"
    "\n"
    "Exit status:\n"
    "  0  success; for status, every node is up and every chunk has its copies\n"
    "  1  the metadata service could not be reached, or answered with an error; for\n"
    "     scrub and heal, see their help\n"
    "  2  bad command line, or a configuration file that cannot be read\n"
    "  3  status and meta status: the cluster answered, but a node (or a metadata\n"
    "     voter) is down or has never registered, chunks are short of copies, or some\n"
    "     could not be repaired; keys: the files are saved, but not every node took\n"
    "     the new allow-list\n"
    "\n"
    "Environment:\n"
    "  PIFS_CONF  the configuration file when -c is not given\n"
    "\n"
    "Examples:\n"
    "  " PROG " status\n"
    "  " PROG " -c ~/cluster/pifs.conf nodes\n"
    "  " PROG " df --json | jq .stored\n"
    "  " PROG " --timeout 2s status --json\n"
    "  " PROG " scrub --wait\n"
    "  " PROG " heal --wait --timeout 10m\n"
    "  " PROG " node add 192.168.1.24:7100 && " PROG " rebalance --dry-run\n"
    "  " PROG " rebalance --wait --limit 20\n"
    "  " PROG " gc --wait\n"
    "  " PROG " meta status\n"
    "  " PROG " keys init && " PROG " keys list\n";

static const struct command commands[] = {
    {"status", status_help, cmd_status, "", 0, 0, NULL, false},
    {"nodes", nodes_help, cmd_nodes, "", 0, 0, NULL, false},
    {"node", node_help, cmd_node, "Wf", 2, 3, NULL, false},
    {"df", df_help, cmd_df, "", 0, 0, NULL, false},
    {"scrub", scrub_help, cmd_scrub, "w", 0, 0, NULL, false},
    {"heal", heal_help, cmd_heal, "wT", 0, 0, NULL, false},
    {"rebalance", rebalance_help, cmd_rebalance, "wTdl", 0, 0, NULL, false},
    {"gc", gc_help, cmd_gc, "wTd", 0, 0, NULL, false},
    {"meta", meta_help, cmd_meta, "T", 1, 2, meta_check, false},
    {"keys", keys_help, cmd_keys, "fo", 1, 2, keys_check, true},
};

#define COMMAND_NAMES "status, nodes, node, meta, df, scrub, heal, rebalance, gc and keys"

static void usage_hint(void)
{
	fprintf(stderr, "Try '" PROG " --help'.\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* Load the configuration and check that it names a metadata voter; prints
 * why not. Returns 0 or -errno. */
static int load_conf(struct admin *a)
{
	char err[512] = "";
	int rc;

	rc = pifs_conf_load(&a->conf, a->conf_path, err, sizeof(err));
	if (rc < 0) {
		if (err[0])
			fprintf(stderr, PROG ": %s\n", err);
		else
			fprintf(stderr,
				PROG ": cannot read the configuration file %s: %s; give "
				     "another with -c FILE\n",
				a->conf_path, strerror(-rc));
		return rc;
	}
	if (!pifs_conf_meta(&a->conf)) {
		fprintf(stderr,
			PROG ": %s names no metadata voter: add \"meta = yes\" to one "
			     "[node N] section\n",
			a->conf_path);
		return -EINVAL;
	}
	if (a->timeout_ms == 0)
		a->timeout_ms = a->conf.timeout_ms ? (int)a->conf.timeout_ms : 10000;
	return 0;
}

/* The metadata caller. Each try at one voter gets a share of --timeout, so
 * that a voter that is down leaves time to ask the others within it; at
 * most the default try, at least enough for a loaded leader to answer.
 * Returns 0 or an exit code, having said why. */
static int new_metacall(struct admin *a)
{
	struct pifs_metacall_opts o = {.timeout_ms = a->timeout_ms};
	size_t voters = 0;
	int rc;

	for (size_t i = 0; i < a->conf.n_nodes; i++)
		voters += a->conf.nodes[i].meta;
	o.try_ms = a->timeout_ms / (int)(voters ? voters : 1);
	if (o.try_ms > 2000)
		o.try_ms = 2000;
	if (o.try_ms < 200)
		o.try_ms = 200;
	rc = pifs_metacall_new(a->zctx, a->auth, &a->conf, &o, &a->mc);
	if (rc == -EINVAL) {
		fprintf(stderr,
			PROG ": %s: a metadata voter's address is not host:port; fix its "
			     "\"address =\" line\n",
			a->conf_path);
		return EXIT_USAGE;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot set up the metadata caller: %s\n", strerror(-rc));
		return EXIT_FAIL;
	}
	return 0;
}

/* Take the value of a command's own option @c (getopt's letter). Returns -1
 * to go on, or an exit code. */
static int own_option(int c, const char *val, struct admin *a)
{
	char *end;
	double mb;
	unsigned long w;

	switch (c) {
	case 'd':
		a->dry_run = true;
		break;
	case 'f':
		a->force = true;
		break;
	case 'o':
		a->output = val;
		break;
	case 'l':
		errno = 0;
		mb = strtod(val, &end);
		if (errno || end == val || *end || !(mb > 0) || mb > 1e9) {
			fprintf(stderr,
				PROG ": --limit '%s' is not a rate: give MB/s as a number above "
				     "0, like 5 or 0.5\n",
				val);
			usage_hint();
			return EXIT_USAGE;
		}
		a->limit = (uint64_t)(mb * 1048576.0);
		if (a->limit == 0)
			a->limit = 1;
		break;
	case 'W':
		errno = 0;
		w = strtoul(val, &end, 10);
		if (errno || end == val || *end || *val == '-' || w > UINT32_MAX) {
			fprintf(stderr,
				PROG ": --weight '%s' is not a weight: give a whole number (0: "
				     "the node's disk size in GiB)\n",
				val);
			usage_hint();
			return EXIT_USAGE;
		}
		a->weight = (uint32_t)w;
		break;
	}
	return -1;
}

/* Parse the options of argv[0..argc) with getopt_long from its current
 * optind. Before the command (@cmd NULL) it stops at the first word that is
 * not an option; after it, @cmd's own options count too, and --timeout is
 * the wait's when @cmd says so. Returns -1 to go on, or an exit code. */
static int parse_opts(int argc, char **argv, const struct command *cmd, struct admin *a,
		      bool *help /* OUT */)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},  {"json", no_argument, NULL, 'j'},
	    {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
	    {"wait", no_argument, NULL, 'w'},	       {"dry-run", no_argument, NULL, 'd'},
	    {"limit", required_argument, NULL, 'l'},   {"weight", required_argument, NULL, 'W'},
	    {"force", no_argument, NULL, 'f'},	       {"key", required_argument, NULL, 'k'},
	    {"output", required_argument, NULL, 'o'},  {NULL, 0, NULL, 0},
	};
	bool own_wait = cmd && strchr(cmd->opts, 'w');
	bool own_timeout = cmd && strchr(cmd->opts, 'T');
	uint64_t ms;
	int c, rc;

	while ((c = getopt_long(argc, argv, cmd ? ":c:jk:t:hwdl:W:fo:" : "+:c:jk:t:hw", opts,
				NULL)) != -1) {
		switch (c) {
		case 'c':
			a->conf_path = optarg;
			break;
		case 'j':
			a->json = true;
			break;
		case 'k':
			if (!pifs_key_name_ok(optarg)) {
				fprintf(stderr,
					PROG ": --key '%s' is not a key name (letters, digits, '.', "
					     "'_' and '-'): see '" PROG " keys list'\n",
					optarg);
				usage_hint();
				return EXIT_USAGE;
			}
			a->key = optarg;
			break;
		case 't':
			if (own_timeout) {
				if (pifs_conf_parse_duration(optarg, &ms) < 0 ||
				    ms > (uint64_t)INT64_MAX) {
					fprintf(stderr,
						PROG ": %s --timeout '%s' is not a duration: write "
						     "it as 30s, 10m or 1h (0: no limit)\n",
						cmd->name, optarg);
					usage_hint();
					return EXIT_USAGE;
				}
				a->wait_ms = (int64_t)ms;
				a->wait_set = true;
				break;
			}
			if (pifs_conf_parse_duration(optarg, &ms) < 0 || ms == 0 || ms > INT_MAX) {
				fprintf(stderr,
					PROG ": --timeout '%s' is not a duration: write it as "
					     "500ms, 2s or 1m\n",
					optarg);
				usage_hint();
				return EXIT_USAGE;
			}
			a->timeout_ms = (int)ms;
			break;
		case 'h':
			*help = true;
			break;
		case 'w':
			if (!own_wait) {
				fprintf(stderr,
					PROG
					": --wait belongs to scrub, heal, rebalance and gc%s%s\n",
					cmd ? ", not to " : "", cmd ? cmd->name : "");
				usage_hint();
				return EXIT_USAGE;
			}
			a->wait = true;
			break;
		case 'd':
		case 'l':
		case 'W':
		case 'f':
		case 'o':
			if (!cmd || !strchr(cmd->opts, c)) {
				fprintf(stderr, PROG ": %s belongs to %s%s%s\n", argv[optind - 1],
					c == 'd'   ? "rebalance and gc"
					: c == 'l' ? "rebalance"
					: c == 'f' ? "node remove, keys revoke and keys export"
					: c == 'o' ? "keys export"
						   : "node",
					cmd ? ", not to " : "", cmd ? cmd->name : "");
				usage_hint();
				return EXIT_USAGE;
			}
			rc = own_option(c, optarg, a);
			if (rc >= 0)
				return rc;
			break;
		case ':':
			fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]);
			usage_hint();
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, PROG ": unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
			usage_hint();
			return EXIT_USAGE;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct admin a = {.conf_path = getenv("PIFS_CONF"), .key = "admin"};
	const struct command *cmd;
	bool help = false;
	int rc, first;

	if (!a.conf_path || !*a.conf_path)
		a.conf_path = DEFAULT_CONF;
	/* Our own messages: getopt's would name the program by its path. */
	opterr = 0;
	rc = parse_opts(argc, argv, NULL, &a, &help);
	if (rc >= 0)
		return rc;
	if (optind == argc) {
		if (help) {
			fputs(global_help, stdout);
			return EXIT_OK;
		}
		fprintf(stderr, PROG ": no command given: say one of " COMMAND_NAMES "\n");
		usage_hint();
		return EXIT_USAGE;
	}
	cmd = find_command(argv[optind]);
	if (!cmd) {
		fprintf(stderr, PROG ": unknown command '%s': the commands are " COMMAND_NAMES "\n",
			argv[optind]);
		usage_hint();
		return EXIT_USAGE;
	}
	/* The words after the command, the command standing in for argv[0]:
	 * optind 0 makes getopt start afresh on them. */
	first = optind;
	optind = 0;
	rc = parse_opts(argc - first, argv + first, cmd, &a, &help);
	if (rc >= 0)
		return rc;
	if (help) {
		/* keys has a page per subcommand: "keys init --help". */
		if (cmd->run == cmd_keys)
			fputs(keys_help_for(optind < argc - first ? argv[first + optind] : NULL),
			      stdout);
		else
			fputs(cmd->help, stdout);
		return EXIT_OK;
	}
	a.argc = argc - first - optind;
	a.argv = argv + first + optind;
	if (a.argc > cmd->max_args) {
		fprintf(stderr, PROG ": %s takes %s, but got '%s'\n", cmd->name,
			cmd->max_args ? "fewer words" : "no argument", a.argv[cmd->max_args]);
		usage_hint();
		return EXIT_USAGE;
	}
	if (a.argc < cmd->min_args) {
		fprintf(stderr, PROG ": %s needs more words: see '" PROG " %s --help'\n", cmd->name,
			cmd->name);
		usage_hint();
		return EXIT_USAGE;
	}
	if (cmd->check && (rc = cmd->check(&a)) >= 0)
		return rc;
	pifs_conf_init(&a.conf);
	if (load_conf(&a) < 0) {
		pifs_conf_fini(&a.conf);
		return EXIT_USAGE;
	}
	rc = pifs_auth_open(&a.conf, a.key, &a.auth, a.auth_err, sizeof(a.auth_err));
	if (rc < 0 && !cmd->keyless) {
		fprintf(stderr, PROG ": %s\n", a.auth_err);
		pifs_conf_fini(&a.conf);
		return EXIT_USAGE;
	}
	a.zctx = zmq_ctx_new();
	if (!a.zctx) {
		fprintf(stderr, PROG ": cannot start ZeroMQ: %s\n", strerror(errno));
		pifs_auth_free(a.auth);
		pifs_conf_fini(&a.conf);
		return EXIT_FAIL;
	}
	rc = new_metacall(&a);
	if (rc == 0)
		rc = cmd->run(&a);
	/* Its sockets first: zmq_ctx_term waits for every socket to close. */
	pifs_metacall_free(a.mc);
	zmq_ctx_term(a.zctx);
	pifs_auth_free(a.auth);
	pifs_conf_fini(&a.conf);
	return rc;
}
