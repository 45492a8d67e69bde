/* admin_i.h - what the modules of pifs-admin share: the cluster as the tool
 * sees it, the output helpers, the calls to the daemons, and the commands.
 *
 *   admin.c            main: options, the command table, the global help
 *   admin_out.c        JSON writer, sizes/times/durations for people, bars
 *   admin_view.c       CLUSTER_STAT, NODE_STAT, WORK_START, WORK_SET, PLAN,
 *                      metadata mutations (NODE_SET, NODE_DEL, NODE_ADD); the
 *                      metadata requests go through a metacall (fs/metacall.h),
 *                      which finds the leader among the voters
 *   admin_work.c       status, scrub, heal: start passes and follow them
 *   admin_node.c       nodes, node add/drain/remove/set-weight
 *   admin_meta.c       meta status/add/remove: META_STAT of every voter,
 *                      META_VOTER to the leader
 *   admin_rebalance.c  rebalance: plan, throttle, start, follow
 *   admin_space.c      df and gc
 *   admin_keys.c       keys init/add-node/add-client/add-admin/revoke/list/push/
 *                      export/import: the key directory's files (fs/keys.h),
 *                      key bundles, and KEYS_SET of the allow-list to every
 *                      node in parallel */
#ifndef PIFS_ADMIN_I_H
#define PIFS_ADMIN_I_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "config.h"
#include "metacall.h"
#include "proto.h"
#include "raft.h"

#define PROG "pifs-admin"
/* The configuration file when neither -c nor $PIFS_CONF names one. */
#define DEFAULT_CONF "/etc/pifs/pifs.conf"

/* Exit codes, as the help text documents them. */
#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_DEGRADED 3

/* A node as the tool shows it: what the metadata service says of it, and
 * what the node itself answered. */
struct node_view {
	uint32_t id;
	char addr[256];
	uint32_t weight;
	uint32_t flags;	   /* PIFS_NODE_*, from the cluster map */
	int64_t last_seen; /* ns since the epoch; 0: never heard of */
	bool in_map;	   /* false: named in the configuration file only */
	int stat_rc;	   /* NODE_STAT: 0 answered, else -errno */
	uint32_t stat_id;  /* the id the answering daemon gave */
	uint64_t capacity, free_bytes, used, chunks, corrupt;
	uint64_t keys_gen; /* NODE_STAT: its allow-list's generation (0: none) */
	uint64_t refused;  /* NODE_STAT: requests and connections it refused */
	/* Background work: from the last heartbeat (CLUSTER_STAT), replaced by
	 * the node's own answer when it was asked (NODE_STAT). */
	struct pifs_work work;
};

struct cluster_view {
	uint64_t epoch;
	uint32_t replicas;
	uint32_t chunk_size;
	uint64_t log_index;
	uint64_t inodes;
	uint64_t logical;
	uint64_t chunks;
	uint64_t chunk_raw;
	uint64_t chunk_stored;
	uint64_t chunk_refs;
	size_t n_nodes;
	struct node_view *nodes; /* owned; @n_nodes, ordered by id */
};

struct admin {
	const char *conf_path;
	bool json;
	int timeout_ms;	 /* 0: the configuration's [client] timeout */
	bool wait;	 /* scrub, heal: follow the passes until done */
	int64_t wait_ms; /* heal --wait: give up after this long; 0: never */
	bool wait_set;	 /* --timeout was given after a command that takes it */
	bool dry_run;	 /* rebalance, gc: show, change nothing */
	bool force;	 /* node remove: even what may lose data; keys revoke, export */
	uint64_t limit;	 /* rebalance --limit, bytes/s; 0: leave the nodes' rate */
	uint32_t weight; /* node add --weight; 0: auto */
	int argc;	 /* the words after the command and its options */
	char **argv;
	struct pifs_conf conf;
	const char *key;	  /* --key: the name of the key to use; "admin" */
	const char *output;	  /* keys export -o FILE; NULL: standard output */
	struct pifs_auth *auth;	  /* owned: that key and the allow-list */
	char auth_err[1024];	  /* why auth is NULL */
	void *zctx;
	struct pifs_metacall *mc; /* owned: asks the metadata leader, wherever it is */
};

struct command {
	const char *name;
	const char *help;
	int (*run)(struct admin *a);
	const char *opts;	/* its own options: w (--wait), T (--timeout is the wait's),
				 * d (--dry-run), l (--limit), W (--weight), f (--force),
				 * o (--output) */
	int min_args, max_args; /* words after the command */
	/* Check the words before the configuration is read, so that a bad
	 * command line is told as such (exit 2); -1 to go on. May be NULL. */
	int (*check)(const struct admin *a);
	/* Works without this machine's key (keys init makes it): main goes on
	 * with auth NULL and the reason in auth_err. */
	bool keyless;
};

#define JSON_MAX_DEPTH 8

struct json {
	FILE *f;
	int depth;
	bool comma[JSON_MAX_DEPTH];
};

/* A voter as the leader's META_STAT lists it. */
struct meta_peer {
	uint32_t id;
	char addr[256];
	uint64_t match, synced;
	int64_t contact_ms; /* how long ago it last answered the leader */
	uint32_t flags;
};

/* A metadata voter (or a node the configuration file calls one), and what
 * it answered to META_STAT. */
struct voter_view {
	uint32_t id;
	char addr[256];
	bool in_conf;	      /* "meta = yes" in the configuration file */
	bool voter;	      /* in the voter set (the leader's, when one answered) */
	int rc;		      /* META_STAT: 0 answered, -ENODATA not asked, else -errno */
	char why[256];	      /* the detail of an R_STATUS error */
	uint32_t answered_id; /* the id the answering daemon gave */
	uint32_t role;	      /* enum pifs_raft_role */
	uint32_t leader;      /* whom it follows; 0: none known */
	uint64_t term, commit, applied, last_index, snap_index, log_bytes;
	size_t n_peers;	      /* the voters it lists (meaningful on the leader) */
	struct meta_peer peers[PIFS_RAFT_MAX_VOTERS];
	/* Its entry in the leader's list. */
	bool tracked;
	uint64_t match, synced;
	int64_t contact_ms;
};

struct meta_view {
	size_t n;
	struct voter_view *v;	 /* owned; @n, in the order found */
	struct voter_view *lead; /* the leader that answered; NULL: none */
	uint32_t leader;	 /* the leader's id, even when it did not answer; 0: none */
	uint64_t term;		 /* the leader's, else the highest answered */
	size_t voters, up;	 /* the voter set, and how many of it answered */
	bool unsupported;	 /* no R_META, only refusals: daemons of before Raft */
};

/* How often --wait asks the nodes how far they are. */
#define POLL_MS 500
/* Without a terminal, a progress line this often. */
#define LOG_EVERY_MS 5000

/* A node that scrub or heal works with. */
struct tracked {
	uint32_t id;
	bool started;	 /* WORK_START accepted, @start taken just before it */
	bool seen;	 /* up in the map at the last look */
	bool lost;	 /* went down, or restarted, after its pass was started */
	int rc;		 /* the last NODE_STAT or WORK_START: 0 or -errno */
	uint64_t target; /* the pass count that means a pass begun after the command ended */
	uint64_t rekick; /* heal: kick again once passes reach this (0: no) */
	struct pifs_work start, now;
	/* Moved by this node for the command before it restarted. */
	uint64_t carried_chunks, carried_bytes;
};

struct follow {
	struct admin *a;
	uint32_t flags;	  /* PIFS_WORK_* */
	const char *what; /* "scrub" or "heal" */
	size_t n;
	struct tracked *t; /* owned; @n, grows as nodes come up */
	int64_t t0, last_log;
	uint64_t most_left; /* heal: the most bytes left seen, for the bar */
	uint32_t replicas;
	bool tty;
	bool drawn; /* a progress line is on the terminal */
	/* rebalance: the plan taken at the start, and what was moved before
	 * nodes restarted (their counters start again from zero). */
	bool rebalance;
	uint64_t plan_chunks, plan_bytes;
	uint64_t limit; /* bytes/s set with WORK_SET on each node started; 0: none */
};

/* The background work of the nodes that are up, summed. A node that is down
 * is left out: its figures are those of its last heartbeat, and it does no
 * work now. */
struct work_sums {
	uint64_t degraded, heal_chunks, heal_bytes, heal_rate, moved_chunks, moved_bytes;
	uint64_t scrub_running, scrub_done, scrub_total;
	uint64_t scrub_corrupt, scrub_repaired, scrub_unrepairable;
	size_t up, never_healed;
};

/* A rebalance plan summed over nodes: what goes from where to where. */
struct plan_move {
	uint32_t from, to;
	uint64_t chunks, bytes;
};

struct plan {
	uint64_t chunks, bytes;
	size_t n;
	struct plan_move *moves; /* owned; @n */
};

/* ---- admin_out.c ---- */
void json_string(FILE *f, const char *s);
void json_key(struct json *j, const char *key);
void json_open(struct json *j, const char *key, char brace);
void json_close(struct json *j, char brace);
void json_u64(struct json *j, const char *key, uint64_t v);
void json_i64(struct json *j, const char *key, int64_t v);
void json_bool(struct json *j, const char *key, bool v);
void json_str(struct json *j, const char *key, const char *s);
void json_null(struct json *j, const char *key);
void json_ratio(struct json *j, const char *key, uint64_t num, uint64_t den);
void json_cluster_head(struct json *j, const struct admin *a, const struct cluster_view *v);
void json_work(struct json *j, const struct pifs_work *w);
/* 1536 -> "1.5 KiB"; returns @buf. */
const char *human(uint64_t bytes, char *buf, size_t cap);
const char *ago(int64_t ns, char *buf, size_t cap);
const char *human_secs(uint64_t s, char *buf, size_t cap);
bool eta_secs(uint64_t bytes, uint64_t rate, uint64_t *secs /* OUT */);
void bar(char *buf, size_t cap, uint64_t num, uint64_t den, int width);

/* ---- admin_view.c ---- */
const char *node_state(const struct node_view *n);
const char *node_placement(const struct node_view *n);
bool node_up(const struct node_view *n);
bool node_full(const struct admin *a, const struct node_view *n, uint32_t chunk_size);
const char *stat_problem(const struct node_view *n, char *buf, size_t cap);
void unreachable_meta(const struct admin *a, int rc);
/* The metadata leader that answered last (before any answer, the first
 * voter): "host:port (node N)", its id, and its address. Borrowed. */
const char *meta_name(const struct admin *a);
uint32_t meta_leader_id(const struct admin *a);
const char *meta_leader_addr(const struct admin *a);
int fetch_cluster(struct admin *a, struct cluster_view *v);
int probe_nodes(struct admin *a, struct cluster_view *v, bool only_up);
/* fetch_cluster then probe_nodes, saying why on stderr when it fails; on
 * failure @v is freed. Returns 0 or -errno. */
int view_cluster(struct admin *a, struct cluster_view *v, bool only_up);
/* A node's space figures (used, free, capacity, chunks), or nulls and the
 * reason when it did not answer NODE_STAT. */
void json_node_space(struct json *j, const struct node_view *n);
int work_start(struct admin *a, const struct node_view *n, uint32_t flags);
/* WORK_SET {heal_rate} on node @n (0 keeps its rate). Returns 0 or -errno. */
int work_set(struct admin *a, const struct node_view *n, uint64_t heal_rate);
struct pifs_rpc;
/* Send @req to node @id at @addr and wait for the reply in @rep, whose
 * lists borrow *@r until it is freed (the caller frees *@r, also on
 * failure). Returns 0 or -errno; an R_STATUS error's detail goes to @why. */
int call_at(struct admin *a, uint32_t id, const char *addr, struct pifs_msg *req,
	    struct pifs_rpc **r, struct pifs_msg *rep, char *why, size_t cap);
/* Send the metadata mutation @req (now 0: the leader stamps it) to the
 * leader. Returns 0 or -errno, with the leader's reason in @why. */
int meta_mutate(struct admin *a, struct pifs_msg *req, char *why, size_t cap);
/* PLAN @flags on node @n, added to @p, made under the map *@epoch (OUT).
 * Returns 0 or -errno (reason in @why). */
int node_plan(struct admin *a, const struct node_view *n, uint32_t flags, struct plan *p,
	      uint64_t *epoch, char *why, size_t cap);

/* ---- admin_work.c ---- */
void work_sum(const struct cluster_view *v, struct work_sums *s /* OUT */);
void follow_init(struct follow *f, struct admin *a, uint32_t flags);
int follow_look(struct follow *f, bool first);
bool heal_over(const struct follow *f);
bool pass_done(const struct follow *f, const struct tracked *t);
bool heal_clean(const struct tracked *t);
void show_progress(struct follow *f, bool final);
/* What the followed nodes copied since the start, and their copy rate now. */
void follow_moved(const struct follow *f, uint64_t *chunks, uint64_t *bytes, uint64_t *rate);
void progress_break(struct follow *f);
size_t report_refusals(struct follow *f);
/* heal --wait's closing report: what is left, per node. Returns an exit code. */
int heal_report(struct follow *f, bool over);
uint64_t delta(uint64_t now, uint64_t start);
int cmd_status(struct admin *a);
int cmd_scrub(struct admin *a);
int cmd_heal(struct admin *a);
extern const char status_help[], scrub_help[], heal_help[];

/* ---- admin_node.c ---- */
int cmd_nodes(struct admin *a);
int cmd_node(struct admin *a);
/* The node of @v that @word names: its id, or its address. NULL, having
 * said why, when none does. */
struct node_view *node_named(struct cluster_view *v, const char *word);
extern const char nodes_help[], node_help[];

/* ---- admin_meta.c ---- */
/* META_STAT voter @v at v->addr; the outcome goes to v->rc (also returned). */
int meta_stat(struct admin *a, struct voter_view *v);
/* Ask every voter (the configuration file's, then those the answers name)
 * for META_STAT, and settle who leads and who votes. @mv starts zeroed or
 * from an earlier probe; free it with meta_view_free. Returns 0 or -ENOMEM. */
int meta_probe(struct admin *a, struct meta_view *mv);
void meta_view_free(struct meta_view *mv);
size_t meta_majority(size_t voters);
int meta_check(const struct admin *a);
int cmd_meta(struct admin *a);
extern const char meta_help[];

/* ---- admin_rebalance.c ---- */
int cmd_rebalance(struct admin *a);
extern const char rebalance_help[];

/* ---- admin_space.c ---- */
int cmd_df(struct admin *a);
int cmd_gc(struct admin *a);
extern const char df_help[], gc_help[];

/* ---- admin_keys.c ---- */
int keys_check(const struct admin *a);
int cmd_keys(struct admin *a);
/* The help of keys @verb (NULL or unknown: of keys as a whole). */
const char *keys_help_for(const char *verb);
extern const char keys_help[];

#endif
