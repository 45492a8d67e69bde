/* admin_keys.c - pifs-admin keys: the cluster's CURVE keys (fs/keys.h).
 *
 * init, add-node, add-client, add-admin, revoke and list work on the files
 * of the configuration's key directory and need nothing running. After a
 * change, and on push, the new allow-list goes to every node with KEYS_SET,
 * all at once, so that nodes that are down cost one timeout in all: the
 * configuration's nodes are asked at once, and those that only the cluster
 * map knows (added after the file was written) as soon as the metadata
 * service has named them. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_i.h"
#include "keys.h"
#include "rpc.h"

#define NODE_ID_MAX 2147483647u

/* The names init gives the keys of the mounts and of pifs-admin, which the
 * programs use when not told another (pifs-admin --key, pifs-mount -o key=). */
#define CLIENT_KEY "client"
#define ADMIN_KEY "admin"

/* The admin key this pifs-admin itself uses (--key, "admin" by default):
 * revoking it would lock this machine out. */
static const char *own_admin_key(const struct admin *a)
{
	return a->key ? a->key : ADMIN_KEY;
}

static const char *keys_dir(const struct admin *a)
{
	return a->conf.keys_dir;
}

/* "@dir/allowed" into @out; -ENAMETOOLONG when it does not fit. */
static int allowed_path(const struct admin *a, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", keys_dir(a), PIFS_KEYS_ALLOWED);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* With "security = none" the files do nothing until the line is gone: say
 * so, on stderr, so that --json stays one object on stdout. */
static void note_insecure(const struct admin *a)
{
	if (!a->conf.security_none)
		return;
	fprintf(stderr,
		PROG ": note: %s says 'security = none': the cluster runs without keys, and "
		     "anyone on the network can read and destroy its data; these keys take effect "
		     "once that line is gone from the configuration of every machine and the "
		     "nodes are restarted\n",
		a->conf_path);
}

/* Load the allow-list of the key directory into @l (initialised), its path
 * into @path. Says why not. Returns 0 or -errno. */
static int load_list(const struct admin *a, struct pifs_allow *l, char *path, size_t cap)
{
	char err[512];
	int rc;

	if (allowed_path(a, path, cap) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		return -ENAMETOOLONG;
	}
	rc = pifs_allow_load(l, path, err, sizeof(err));
	if (rc == -ENOENT)
		fprintf(stderr,
			PROG ": no allow-list at %s: make the cluster's keys with '" PROG
			     " keys init' (the key directory is 'keys =' in %s)\n",
			path, a->conf_path);
	else if (rc < 0)
		fprintf(stderr, PROG ": %s\n", err);
	return rc;
}

static int save_list(const struct pifs_allow *l, const char *path)
{
	int rc = pifs_allow_save(l, path);

	if (rc < 0)
		fprintf(stderr,
			PROG ": cannot write %s: %s: nothing changed; check the directory's owner "
			     "and free space\n",
			path, strerror(-rc));
	return rc;
}

/* "host" of "host:port" (brackets kept around an IPv6 address, as scp
 * wants them). */
static const char *host_of(const char *addr, char *buf, size_t cap)
{
	const char *colon = strrchr(addr, ':');

	snprintf(buf, cap, "%.*s", colon ? (int)(colon - addr) : (int)strlen(addr), addr);
	return buf;
}

/* " -c FILE" when the configuration is not the default one, for the
 * commands this machine is told to run; "" otherwise. */
static const char *conf_opt(const struct admin *a, char *buf, size_t cap)
{
	if (strcmp(a->conf_path, DEFAULT_CONF) == 0)
		return "";
	snprintf(buf, cap, " -c %s", a->conf_path);
	return buf;
}

/* mkdir -p @path: the parents 0755, @path itself 0700. Returns 0 or -errno. */
static int make_dirs(const char *path)
{
	char buf[1024];
	struct stat st;
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (stat(buf, &st) < 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* ---- sending the list to the nodes ---- */

struct push {
	struct admin *a;
	uint32_t id;
	char addr[256];
	const char *text; /* borrowed: the list's text */
	size_t len;
	/* The configuration's address of a node that the cluster map has
	 * elsewhere: its outcome says nothing of the node. */
	bool stale;
	int rc; /* KEYS_SET: 0 taken, else -errno */
	char why[256];
	pthread_t thread;
	bool started;
};

struct pushes {
	size_t n;
	struct push **p; /* owned, each and the array */
	size_t took, refused, silent;
	bool map; /* the metadata service named the nodes of the map */
};

static void *push_one(void *arg)
{
	struct push *p = arg;
	struct pifs_rpc *r;
	struct pifs_msg req, rep;

	pifs_msg_init(&req, PIFS_MSG_KEYS_SET);
	req.u.KEYS_SET.allowed = (struct pifs_blob){(const uint8_t *)p->text, (uint32_t)p->len};
	p->rc = call_at(p->a, p->id, p->addr, &req, &r, &rep, p->why, sizeof(p->why));
	if (p->rc == 0 && rep.type != PIFS_MSG_R_STATUS)
		p->rc = -EPROTO;
	pifs_rpc_free(r);
	return NULL;
}

/* Start sending to node @id at @addr. Returns 0 or -ENOMEM. */
static int push_start(struct pushes *ps, struct admin *a, uint32_t id, const char *addr,
		      const char *text, size_t len)
{
	struct push **grown, *p;

	grown = realloc(ps->p, (ps->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	ps->p = grown;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->a = a;
	p->id = id;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->text = text;
	p->len = len;
	ps->p[ps->n++] = p;
	p->started = pthread_create(&p->thread, NULL, push_one, p) == 0;
	if (!p->started)
		push_one(p);
	return 0;
}

static int cmp_push(const void *x, const void *y)
{
	const struct push *a = *(struct push *const *)x, *b = *(struct push *const *)y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/* Send @text to every node but @skip: the configuration's at once, then
 * those the cluster map adds, all in parallel; wait for every answer.
 * Returns 0 or -ENOMEM. */
static int push_all(struct admin *a, const char *text, size_t len, uint32_t skip, struct pushes *ps)
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_nodestat ns;
	char addr[256];
	int rc = 0;

	memset(ps, 0, sizeof(*ps));
	for (size_t i = 0; i < a->conf.n_nodes && rc == 0; i++)
		if (a->conf.nodes[i].id != skip)
			rc = push_start(ps, a, a->conf.nodes[i].id, a->conf.nodes[i].addr, text,
					len);
	/* The map's nodes, without the words fetch_cluster has for a service
	 * that does not answer: the list is saved either way, and what the
	 * nodes did with it is told below. */
	pifs_msg_init(&req, PIFS_MSG_CLUSTER_STAT);
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	if (rc == 0 && pifs_metacall(a->mc, &req, &rep) == 0 && rep.type == PIFS_MSG_R_CLUSTER) {
		ps->map = true;
		pifs_cursor_init(&cur, &rep.u.R_CLUSTER.nodes);
		while (rc == 0 && pifs_nodestat_next(&cur, &ns) == 1) {
			bool known = false;
			size_t conf_nodes = ps->n;

			if (ns.id == skip || pifs_str_copy(ns.addr, addr, sizeof(addr)) < 0)
				continue;
			for (size_t i = 0; i < conf_nodes; i++) {
				if (ps->p[i]->id != ns.id)
					continue;
				if (strcmp(ps->p[i]->addr, addr) == 0)
					known = true;
				else
					ps->p[i]->stale = true;
			}
			if (!known)
				rc = push_start(ps, a, ns.id, addr, text, len);
		}
	}
	for (size_t i = 0; i < ps->n; i++)
		if (ps->p[i]->started)
			pthread_join(ps->p[i]->thread, NULL);
	qsort(ps->p, ps->n, sizeof(*ps->p), cmp_push);
	for (size_t i = 0; i < ps->n; i++) {
		const struct push *p = ps->p[i];

		if (p->stale && p->rc < 0)
			continue;
		if (p->rc == 0)
			ps->took++;
		else if (p->rc == -ETIMEDOUT || p->rc == -EHOSTUNREACH || p->rc == -ECONNREFUSED)
			ps->silent++;
		else
			ps->refused++;
	}
	if (rc < 0)
		fprintf(stderr, PROG ": out of memory while sending the list to the nodes\n");
	return rc;
}

static void pushes_free(struct pushes *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		free(ps->p[i]);
	free(ps->p);
	memset(ps, 0, sizeof(*ps));
}

static bool counted(const struct push *p)
{
	return !(p->stale && p->rc < 0);
}

/* What node @p answered, in a few words. */
static const char *push_outcome(const struct push *p, int timeout_ms, char *buf, size_t cap)
{
	if (p->rc == 0)
		snprintf(buf, cap, "took it");
	else if (p->rc == -ETIMEDOUT || p->rc == -EHOSTUNREACH || p->rc == -ECONNREFUSED)
		snprintf(buf, cap, "no answer within %d ms", timeout_ms);
	else if (p->rc == -EBADMSG || p->rc == -EPROTO)
		snprintf(buf, cap, "a reply that does not decode: another version?");
	else
		snprintf(buf, cap, "refused it: %s%s%s", strerror(-p->rc), p->why[0] ? ": " : "",
			 p->why);
	return buf;
}

static void json_pushes(struct json *j, const struct admin *a, const struct pushes *ps)
{
	char buf[400];

	json_u64(j, "nodes_took", ps->took);
	json_u64(j, "nodes_asked", ps->took + ps->refused + ps->silent);
	json_open(j, "nodes", '[');
	for (size_t i = 0; i < ps->n; i++) {
		const struct push *p = ps->p[i];

		if (!counted(p))
			continue;
		json_open(j, NULL, '{');
		json_u64(j, "id", p->id);
		json_str(j, "address", p->addr);
		json_bool(j, "took", p->rc == 0);
		if (p->rc == 0)
			json_null(j, "error");
		else
			json_str(j, "error", push_outcome(p, a->timeout_ms, buf, sizeof(buf)));
		json_close(j, '}');
	}
	json_close(j, ']');
}

enum { PUSH_ALL, PUSH_NONE, PUSH_SOME };

/* Tell what the nodes did with generation @gen (saved at @path), and what
 * to do about those that did not take it. Returns PUSH_ALL when every node
 * asked took it, PUSH_NONE when none did, else PUSH_SOME. */
static int report_pushes(const struct admin *a, const struct pushes *ps, uint64_t gen,
			 const char *path)
{
	char buf[400];
	size_t asked = ps->took + ps->refused + ps->silent;

	if (asked == 0) {
		if (!a->json)
			printf("no other node to send the allow-list to\n");
		return PUSH_ALL;
	}
	if (!a->json) {
		printf("sent the allow-list (generation %" PRIu64 ") to %zu node%s:\n", gen, asked,
		       asked == 1 ? "" : "s");
		for (size_t i = 0; i < ps->n; i++)
			if (counted(ps->p[i]))
				printf("  node %-4" PRIu32 " %-21s %s\n", ps->p[i]->id,
				       ps->p[i]->addr,
				       push_outcome(ps->p[i], a->timeout_ms, buf, sizeof(buf)));
	}
	if (ps->took == asked)
		return PUSH_ALL;
	if (ps->took == 0 && ps->refused == 0) {
		fprintf(stderr,
			PROG ": no node answered%s: the list is saved in %s, and each node reads "
			     "the one in its own key directory when it starts: copy it to every "
			     "machine, or run '" PROG " keys push' once the nodes run\n",
			ps->map ? ""
				: " (is the cluster running? the metadata service did not "
				  "answer either)",
			path);
		return PUSH_NONE;
	}
	for (size_t i = 0; i < ps->n; i++) {
		const struct push *p = ps->p[i];

		if (p->rc == 0 || !counted(p))
			continue;
		if (p->rc == -ETIMEDOUT || p->rc == -EHOSTUNREACH || p->rc == -ECONNREFUSED)
			fprintf(stderr,
				PROG ": node %" PRIu32 " at %s did not answer: it keeps its older "
				     "list until you run '" PROG
				     " keys push' once it is back (or it "
				     "restarts with %s copied there)\n",
				p->id, p->addr, path);
		else if (p->rc == -EOPNOTSUPP || p->rc == -EPROTO || p->rc == -EBADMSG)
			fprintf(stderr,
				PROG
				": node %" PRIu32 " at %s cannot take a list over the network "
				"(%s): is its pifs-storaged older than this pifs-admin? update it, "
				"or copy %s there and restart it\n",
				p->id, p->addr, strerror(-p->rc), path);
		else
			fprintf(stderr,
				PROG ": node %" PRIu32 " at %s refused the list: %s%s%s; see its "
				     "log, then run '" PROG " keys push'\n",
				p->id, p->addr, strerror(-p->rc), p->why[0] ? ": " : "", p->why);
	}
	return ps->took ? PUSH_SOME : PUSH_NONE;
}

/* ---- the subcommands ---- */

/* What init and add print as the files of a new key: the key file and the
 * line of the list it is on. */
static void json_key_made(struct json *j, const struct pifs_keypair *kp, const char *file)
{
	json_open(j, NULL, '{');
	json_str(j, "name", kp->name);
	json_str(j, "role", pifs_role_name(kp->role));
	json_str(j, "public", kp->pub);
	json_str(j, "file", file);
	json_close(j, '}');
}

static int keys_init(struct admin *a)
{
	size_t n = a->conf.n_nodes + 2, saved = 0;
	struct pifs_keypair *kp = calloc(n, sizeof(*kp));
	char(*paths)[1100] = calloc(n, sizeof(*paths));
	char apath[1100], err[512], host[256], copt[1100];
	struct pifs_allow l, old;
	int rc = EXIT_FAIL;

	pifs_allow_init(&l);
	pifs_allow_init(&old);
	if (!kp || !paths) {
		fprintf(stderr, PROG ": out of memory\n");
		goto out_free;
	}
	if (allowed_path(a, apath, sizeof(apath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		goto out_free;
	}
	if (exists(apath)) {
		if (pifs_allow_load(&old, apath, err, sizeof(err)) == 0)
			snprintf(err, sizeof(err), "generation %" PRIu64 ", %zu keys",
				 old.generation, old.n);
		else
			snprintf(err, sizeof(err), "it does not load");
		fprintf(stderr,
			PROG ": %s exists (%s): this cluster has its keys already; add keys with "
			     "'" PROG
			     " keys add-node N', 'keys add-client NAME' or 'keys add-admin "
			     "NAME' (see '" PROG " keys list'), or move %s away to start afresh, "
			     "after which every machine needs the new files\n",
			apath, err, keys_dir(a));
		goto out_free;
	}
	for (size_t i = 0; i < n; i++) {
		char name[PIFS_KEY_NAME_MAX + 1];
		enum pifs_role role = PIFS_ROLE_NODE;

		if (i < a->conf.n_nodes) {
			snprintf(name, sizeof(name), "node-%" PRIu32, a->conf.nodes[i].id);
		} else {
			snprintf(name, sizeof(name), "%s", i == n - 2 ? CLIENT_KEY : ADMIN_KEY);
			role = i == n - 2 ? PIFS_ROLE_CLIENT : PIFS_ROLE_ADMIN;
		}
		if (pifs_keypair_path(keys_dir(a), name, paths[i], sizeof(paths[i])) < 0) {
			fprintf(stderr,
				PROG
				": the key directory %s is too long a path: shorten 'keys ='\n",
				keys_dir(a));
			goto out_free;
		}
		if (exists(paths[i])) {
			fprintf(stderr,
				PROG ": %s exists, but %s does not: a key directory half made, or "
				     "left over? move its .key files away, then run '" PROG " keys "
				     "init' again\n",
				paths[i], apath);
			goto out_free;
		}
		rc = pifs_keypair_make(&kp[i], name, role);
		if (rc < 0) {
			fprintf(stderr, PROG ": cannot make a key pair: %s%s\n", strerror(-rc),
				rc == -ENOTSUP ? ": this libzmq has no CURVE; install one built "
						 "with libsodium"
					       : "");
			rc = EXIT_FAIL;
			goto out_free;
		}
		rc = EXIT_FAIL;
	}
	rc = make_dirs(keys_dir(a));
	if (rc < 0) {
		fprintf(stderr,
			PROG ": cannot make the key directory %s: %s: make it by hand (mode 700) "
			     "or set another 'keys =' in %s\n",
			keys_dir(a), strerror(-rc), a->conf_path);
		rc = EXIT_FAIL;
		goto out_free;
	}
	/* The key files first and the list last: a list on disk means init
	 * is done, and a failure undoes the files of this run. */
	for (saved = 0; saved < n; saved++) {
		rc = pifs_keypair_save(&kp[saved], paths[saved]);
		if (rc < 0) {
			fprintf(stderr, PROG ": cannot write %s: %s: nothing was made\n",
				paths[saved], strerror(-rc));
			goto out_undo;
		}
		rc = pifs_allow_add_pair(&l, &kp[saved]);
		if (rc < 0) {
			/* Only -ENOMEM: the names are distinct and the keys new. */
			fprintf(stderr, PROG ": cannot list %s: %s: nothing was made\n",
				kp[saved].name, strerror(-rc));
			saved++;
			goto out_undo;
		}
	}
	l.generation = 1;
	rc = pifs_allow_save(&l, apath);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot write %s: %s: nothing was made\n", apath,
			strerror(-rc));
		goto out_undo;
	}
	if (a->json) {
		struct json j = {.f = stdout};

		json_open(&j, NULL, '{');
		json_str(&j, "action", "init");
		json_str(&j, "dir", keys_dir(a));
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		json_str(&j, "security", a->conf.security_none ? "none" : "curve");
		json_open(&j, "keys", '[');
		for (size_t i = 0; i < n; i++)
			json_key_made(&j, &kp[i], paths[i]);
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		printf("made the cluster's keys in %s (allow-list generation 1):\n", keys_dir(a));
		for (size_t i = 0; i < a->conf.n_nodes; i++)
			printf("  %-16s node %" PRIu32 " at %s\n", strrchr(paths[i], '/') + 1,
			       a->conf.nodes[i].id, a->conf.nodes[i].addr);
		printf("  %-16s the mounts (pifs-mount)\n", CLIENT_KEY ".key");
		printf("  %-16s pifs-admin, on this machine\n", ADMIN_KEY ".key");
		printf("  %-16s the allow-list: every public key, no secret\n", PIFS_KEYS_ALLOWED);
		conf_opt(a, copt, sizeof(copt));
		printf("\nWhat goes where: each machine gets the configuration file and one "
		       "bundle of its own\nkey and the allow-list, made here:\n");
		for (size_t i = 0; i < n - 1; i++) {
			if (i < a->conf.n_nodes)
				snprintf(host, sizeof(host), "node %" PRIu32, a->conf.nodes[i].id);
			else
				snprintf(host, sizeof(host), "mounts only");
			printf("  %-12s " PROG "%s keys export %s -o %s.keys\n", host, copt,
			       kp[i].name, kp[i].name);
		}
		printf("  %-12s %s stays on this machine: it may change the cluster map and the "
		       "keys\n",
		       "nowhere", paths[n - 1]);
		printf("A bundle holds a secret: copy it to its machine only, import it there "
		       "(as the user the\nprograms run as) and delete it. For node %" PRIu32
		       ", with the configuration file there:\n"
		       "  scp -p %s.keys root@%s: && ssh root@%s '" PROG " keys import %s.keys && "
		       "rm %s.keys'\n",
		       a->conf.nodes[0].id, kp[0].name,
		       host_of(a->conf.nodes[0].addr, host, sizeof(host)), host, kp[0].name,
		       kp[0].name);
	}
	note_insecure(a);
	rc = EXIT_OK;
	goto out_free;
out_undo:
	for (size_t i = 0; i < saved; i++)
		unlink(paths[i]);
	rc = EXIT_FAIL;
out_free:
	if (kp)
		explicit_bzero(kp, n * sizeof(*kp));
	free(kp);
	free(paths);
	pifs_allow_fini(&l);
	pifs_allow_fini(&old);
	return rc;
}

/* Send @text (@len bytes of the list of generation @gen, saved at @path)
 * to every node but @skip and say what they did; under --json the outcome
 * goes into @j. Returns as report_pushes, or PUSH_NONE when the nodes could
 * not even be asked. */
static int push_text(struct admin *a, const char *text, size_t len, uint64_t gen, const char *path,
		     uint32_t skip, struct json *j)
{
	struct pushes ps;
	int rc;

	if (!a->auth) {
		fprintf(stderr,
			PROG ": the list is saved in %s but was sent to no node: this tool has no "
			     "key to prove itself with (%s)\n",
			path, a->auth_err);
		return PUSH_NONE;
	}
	rc = push_all(a, text, len, skip, &ps);
	if (rc == 0) {
		if (j)
			json_pushes(j, a, &ps);
		rc = report_pushes(a, &ps, gen, path);
	} else {
		rc = PUSH_NONE;
	}
	pushes_free(&ps);
	return rc;
}

/* push_text of the list @l, as pifs_allow_save wrote it. */
static int push_list(struct admin *a, const struct pifs_allow *l, const char *path, uint32_t skip,
		     struct json *j)
{
	char *text;
	size_t len;
	int rc;

	if (pifs_allow_format(l, &text, &len) < 0) {
		fprintf(stderr, PROG ": out of memory\n");
		return PUSH_NONE;
	}
	rc = push_text(a, text, len, l->generation, path, skip, j);
	free(text);
	return rc;
}

static int keys_add(struct admin *a, enum pifs_role role, const char *name)
{
	char apath[1100], kpath[1100], host[256], copt[1100];
	const struct pifs_conf_node *cn = NULL;
	struct json j = {.f = stdout};
	const struct pifs_key *old;
	struct pifs_keypair kp;
	struct pifs_allow l;
	uint32_t node = pifs_key_node(name);
	int rc;

	pifs_allow_init(&l);
	if (load_list(a, &l, apath, sizeof(apath)) < 0)
		return EXIT_FAIL;
	rc = EXIT_FAIL;
	old = pifs_allow_find(&l, name);
	/* A revoked key keeps its name, so that a new key is never taken for
	 * it; but node N's key has no other name, so a node may have a new key
	 * in place of its revoked one. */
	if (old && !(old->revoked && role == PIFS_ROLE_NODE)) {
		if (role == PIFS_ROLE_NODE)
			fprintf(stderr,
				PROG ": node %" PRIu32 " has a key already (%s): a node has one "
				     "key; if it leaked, run '" PROG " keys revoke %s' first, then "
				     "add-node %" PRIu32 " again\n",
				node, name, name, node);
		else if (old->revoked)
			fprintf(stderr,
				PROG
				": key '%s' was revoked, and a revoked name stays in the list so "
				"that no new key is taken for it: give the new key another name, "
				"such as %.40s-2\n",
				name, name);
		else
			fprintf(stderr,
				PROG ": key '%s' exists already (%s, active): give the new key "
				     "another name, such as %.40s-2 (see '" PROG " keys list')\n",
				name, pifs_role_name(old->role), name);
		goto out_free;
	}
	if (pifs_keypair_path(keys_dir(a), name, kpath, sizeof(kpath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		goto out_free;
	}
	if (exists(kpath)) {
		fprintf(stderr,
			PROG ": %s exists, but %s has no active key '%s': a left-over? move it "
			     "away, then run this again\n",
			kpath, apath, name);
		goto out_free;
	}
	if (l.generation == UINT64_MAX) {
		fprintf(stderr, PROG ": %s is at the last generation there is: start afresh\n",
			apath);
		goto out_free;
	}
	rc = pifs_keypair_make(&kp, name, role);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot make a key pair: %s%s\n", strerror(-rc),
			rc == -ENOTSUP ? ": this libzmq has no CURVE; install one built with "
					 "libsodium"
				       : "");
		rc = EXIT_FAIL;
		goto out_free;
	}
	rc = pifs_keypair_save(&kp, kpath);
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot write %s: %s: nothing changed\n", kpath,
			strerror(-rc));
		rc = EXIT_FAIL;
		goto out_wipe;
	}
	if (old) {
		struct pifs_key *k = &l.keys[old - l.keys];

		strcpy(k->pub, kp.pub);
		k->revoked = false;
	} else {
		rc = pifs_allow_add_pair(&l, &kp);
		if (rc == -EEXIST) {
			/* Two random keys alike: never seen, but not to be listed. */
			fprintf(stderr,
				PROG ": the new key is one listed already: run this again\n");
		} else if (rc < 0) {
			fprintf(stderr, PROG ": cannot add '%s' to the list: %s\n", name,
				strerror(-rc));
		}
	}
	l.generation++;
	if (rc < 0 || save_list(&l, apath) < 0) {
		unlink(kpath);
		rc = EXIT_FAIL;
		goto out_wipe;
	}
	if (node)
		cn = pifs_conf_node(&a->conf, node);
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "action",
			 role == PIFS_ROLE_NODE	    ? "add-node"
			 : role == PIFS_ROLE_CLIENT ? "add-client"
						    : "add-admin");
		json_str(&j, "name", name);
		json_str(&j, "role", pifs_role_name(role));
		json_str(&j, "public", kp.pub);
		json_str(&j, "file", kpath);
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		json_bool(&j, "replaced_revoked", old != NULL);
	} else {
		printf("made %s (%s): %s, in the allow-list at generation %" PRIu64 "%s\n", name,
		       pifs_role_name(role), kpath, l.generation,
		       old ? " in place of its revoked key" : "");
		conf_opt(a, copt, sizeof(copt));
		if (role == PIFS_ROLE_NODE)
			printf("for node %" PRIu32 "%s%s: '" PROG "%s keys export %s -o %s.keys', "
			       "copy that one file and %s there, run '" PROG " keys import "
			       "%s.keys' there, then start its pifs-storaged\n",
			       node, cn ? " at " : "",
			       cn ? host_of(cn->addr, host, sizeof(host)) : "", copt, name, name,
			       a->conf_path, name);
		else if (role == PIFS_ROLE_CLIENT)
			printf("for the machine that mounts with it: '" PROG "%s keys export %s -o "
			       "%s.keys', copy that one file and %s there, run '" PROG " keys "
			       "import %s.keys' there, and mount with 'pifs-mount -o key=%s'\n",
			       copt, name, name, a->conf_path, name, name);
		else
			printf("an admin key may change the cluster map and the keys: copy it "
			       "only to that administrator's machine, with %s and %s (mode 600); "
			       "it is used with '" PROG " --key %s'\n",
			       a->conf_path, apath, name);
	}
	if (node && !cn)
		fprintf(stderr,
			PROG ": note: %s has no [node %" PRIu32 "] yet: add its section (address, "
			     "data) to the configuration file of every machine\n",
			a->conf_path, node);
	note_insecure(a);
	/* A new node reads the list when it starts, with its new key: it is
	 * not asked. */
	rc = push_list(a, &l, apath, node, a->json ? &j : NULL) ? EXIT_DEGRADED : EXIT_OK;
	if (a->json) {
		json_close(&j, '}');
		fputc('\n', stdout);
	}
out_wipe:
	explicit_bzero(&kp, sizeof(kp));
out_free:
	pifs_allow_fini(&l);
	return rc;
}

static int keys_revoke(struct admin *a, const char *name)
{
	char apath[1100], kpath[1100];
	struct json j = {.f = stdout};
	struct pifs_allow l;
	struct pifs_key *k;
	size_t admins = 0;
	bool deleted = false, changed;
	int rc = EXIT_FAIL;

	pifs_allow_init(&l);
	if (load_list(a, &l, apath, sizeof(apath)) < 0)
		return EXIT_FAIL;
	if (!pifs_allow_find(&l, name)) {
		fprintf(stderr,
			PROG ": no key '%s' in %s: '" PROG " keys list' shows the keys there\n",
			name, apath);
		goto out_free;
	}
	k = &l.keys[pifs_allow_find(&l, name) - l.keys];
	if (pifs_keypair_path(keys_dir(a), name, kpath, sizeof(kpath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		goto out_free;
	}
	for (size_t i = 0; i < l.n; i++)
		admins += l.keys[i].role == PIFS_ROLE_ADMIN && !l.keys[i].revoked;
	if (!k->revoked && k->role == PIFS_ROLE_ADMIN && admins == 1) {
		fprintf(stderr,
			PROG
			": '%s' is the last admin key that is not revoked: without one, no one "
			"could change the cluster map or the keys again; make another first "
			"('" PROG " keys add-admin NAME'), then revoke this one\n",
			name);
		goto out_free;
	}
	if (!k->revoked && strcmp(name, own_admin_key(a)) == 0 && !a->force) {
		fprintf(stderr,
			PROG ": '%s' is the key this " PROG " uses (--key): once it is revoked, "
			     "this machine cannot run " PROG " against the cluster with it; use "
			     "another admin key from then on (--key NAME), and give --force to "
			     "revoke it anyway\n",
			name);
		goto out_free;
	}
	changed = !k->revoked;
	if (changed) {
		if (l.generation == UINT64_MAX) {
			fprintf(stderr,
				PROG ": %s is at the last generation there is: start afresh\n",
				apath);
			goto out_free;
		}
		k->revoked = true;
		l.generation++;
		if (save_list(&l, apath) < 0)
			goto out_free;
	}
	/* The list first: a key file gone from a key still accepted would
	 * help no one. */
	if (unlink(kpath) == 0)
		deleted = true;
	else if (errno != ENOENT)
		fprintf(stderr,
			PROG
			": warning: cannot delete %s: %s: delete it by hand (the key is revoked "
			"all the same)\n",
			kpath, strerror(errno));
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "action", "revoke");
		json_str(&j, "name", name);
		json_str(&j, "role", pifs_role_name(k->role));
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		json_bool(&j, "changed", changed);
		json_bool(&j, "deleted", deleted);
	} else if (!changed) {
		printf("%s (%s) was revoked already (allow-list generation %" PRIu64 "): nothing "
		       "changed%s\n",
		       name, pifs_role_name(k->role), l.generation,
		       deleted ? ", but its key file here is deleted now" : "");
	} else {
		printf("%s (%s) is revoked, allow-list generation %" PRIu64 "%s\n", name,
		       pifs_role_name(k->role), l.generation,
		       deleted ? "; its key file here is deleted" : "");
		if (k->role == PIFS_ROLE_NODE)
			printf("delete %s.key from that node as well; it cannot join the "
			       "cluster until it has a new key ('" PROG " keys add-node %" PRIu32
			       "')\n",
			       name, pifs_key_node(name));
		else
			printf(
			    "delete %s.key wherever it was copied; the nodes refuse it once they "
			    "have this list\n",
			    name);
	}
	note_insecure(a);
	rc = EXIT_OK;
	if (changed)
		rc = push_list(a, &l, apath, 0, a->json ? &j : NULL) ? EXIT_DEGRADED : EXIT_OK;
	if (a->json) {
		json_close(&j, '}');
		fputc('\n', stdout);
	}
out_free:
	pifs_allow_fini(&l);
	return rc;
}

/* Is the file named @e in the key directory a key file the list @l does
 * not name? */
static bool unlisted(const struct pifs_allow *l, const char *file)
{
	char name[PIFS_KEY_NAME_MAX + 1];
	size_t len = strlen(file);

	if (len <= 4 || strcmp(file + len - 4, ".key") != 0)
		return false;
	if (len - 4 > PIFS_KEY_NAME_MAX)
		return true;
	snprintf(name, sizeof(name), "%.*s", (int)(len - 4), file);
	return !pifs_allow_find(l, name);
}

static int keys_list(struct admin *a)
{
	char apath[1100], kpath[1100];
	struct json j = {.f = stdout};
	struct pifs_allow l;
	struct dirent *e;
	size_t revoked = 0, width = 4;
	bool *here;
	DIR *d;

	pifs_allow_init(&l);
	if (load_list(a, &l, apath, sizeof(apath)) < 0)
		return EXIT_FAIL;
	here = calloc(l.n ? l.n : 1, sizeof(*here));
	if (!here) {
		fprintf(stderr, PROG ": out of memory\n");
		pifs_allow_fini(&l);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < l.n; i++) {
		here[i] =
		    pifs_keypair_path(keys_dir(a), l.keys[i].name, kpath, sizeof(kpath)) == 0 &&
		    exists(kpath);
		revoked += l.keys[i].revoked;
		if (strlen(l.keys[i].name) > width)
			width = strlen(l.keys[i].name);
	}
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "dir", keys_dir(a));
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		json_str(&j, "security", a->conf.security_none ? "none" : "curve");
		json_open(&j, "keys", '[');
		for (size_t i = 0; i < l.n; i++) {
			const struct pifs_key *k = &l.keys[i];

			json_open(&j, NULL, '{');
			json_str(&j, "name", k->name);
			json_str(&j, "role", pifs_role_name(k->role));
			json_str(&j, "state", k->revoked ? "revoked" : "active");
			json_bool(&j, "revoked", k->revoked);
			json_str(&j, "public", k->pub);
			json_bool(&j, "secret_here", here[i]);
			json_close(&j, '}');
		}
		json_close(&j, ']');
		json_open(&j, "unlisted", '[');
	} else {
		printf("allow-list %s: generation %" PRIu64 ", %zu key%s (%zu revoked)\n", apath,
		       l.generation, l.n, l.n == 1 ? "" : "s", revoked);
		printf("%-*s  %-6s  %-7s  %-13s  %s\n", (int)width, "NAME", "ROLE", "STATE",
		       "PUBLIC", "SECRET");
		for (size_t i = 0; i < l.n; i++) {
			const struct pifs_key *k = &l.keys[i];

			/* The ellipsis is one column but three bytes: it is
			 * written outside the padded field. */
			printf("%-*s  %-6s  %-7s  %.12s\u2026  %s\n", (int)width, k->name,
			       pifs_role_name(k->role), k->revoked ? "revoked" : "active", k->pub,
			       here[i] ? "here" : "-");
		}
	}
	d = opendir(keys_dir(a));
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.' || !unlisted(&l, e->d_name))
			continue;
		if (a->json)
			json_str(&j, NULL, e->d_name);
		else
			printf("note: %s/%s is not in the allow-list: the nodes refuse it; a "
			       "left-over? move it away\n",
			       keys_dir(a), e->d_name);
	}
	if (d)
		closedir(d);
	if (a->json) {
		json_close(&j, ']');
		json_close(&j, '}');
		fputc('\n', stdout);
	}
	note_insecure(a);
	free(here);
	pifs_allow_fini(&l);
	return EXIT_OK;
}

/* The text of the file @path, at most @max bytes, into *@out (malloc'd). */
static int read_text(const char *path, size_t max, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = malloc(max + 1);
	size_t n = 0;
	int rc = 0;

	*out = NULL;
	if (!f || !buf) {
		rc = f ? -ENOMEM : -errno;
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f))
		rc = -EIO;
	else if (n > max)
		rc = -EFBIG;
out:
	if (f)
		fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int keys_push(struct admin *a)
{
	char apath[1100], err[512], *text;
	struct json j = {.f = stdout};
	struct pifs_allow l;
	size_t len;
	int rc;

	/* The file's own text, comments and all, once it is known to parse:
	 * the nodes keep what they are sent. */
	if (allowed_path(a, apath, sizeof(apath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		return EXIT_FAIL;
	}
	rc = read_text(apath, 4u << 20, &text, &len);
	if (rc == -ENOENT) {
		fprintf(stderr,
			PROG ": no allow-list at %s: make the cluster's keys with '" PROG
			     " keys init' (the key directory is 'keys =' in %s)\n",
			apath, a->conf_path);
		return EXIT_FAIL;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": cannot read %s: %s\n", apath, strerror(-rc));
		return EXIT_FAIL;
	}
	pifs_allow_init(&l);
	rc = pifs_allow_parse(&l, text, len, apath, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		free(text);
		return EXIT_FAIL;
	}
	note_insecure(a);
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "action", "push");
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
	}
	rc = push_text(a, text, len, l.generation, apath, 0, a->json ? &j : NULL);
	if (a->json) {
		json_close(&j, '}');
		fputc('\n', stdout);
	}
	free(text);
	pifs_allow_fini(&l);
	return rc == PUSH_ALL ? EXIT_OK : rc == PUSH_SOME ? EXIT_DEGRADED : EXIT_FAIL;
}

/* ---- bundles: a new machine's key and the list in one file ---- */

/* "to node 4 at 192.168.1.14", "to the machine that mounts with it", ...:
 * where the key @name of role @role goes. */
static const char *key_dest(const struct admin *a, const char *name, enum pifs_role role, char *buf,
			    size_t cap)
{
	const struct pifs_conf_node *cn = pifs_conf_node(&a->conf, pifs_key_node(name));
	char host[256];

	if (role == PIFS_ROLE_NODE && cn)
		snprintf(buf, cap, "node %" PRIu32 " at %s", pifs_key_node(name),
			 host_of(cn->addr, host, sizeof(host)));
	else if (role == PIFS_ROLE_NODE)
		snprintf(buf, cap, "node %" PRIu32, pifs_key_node(name));
	else if (role == PIFS_ROLE_CLIENT)
		snprintf(buf, cap, "the machine that mounts with it");
	else
		snprintf(buf, cap, "that administrator's machine");
	return buf;
}

/* Is @path a name in the key directory? A bundle written there would take
 * the place of its files (node-1.key, allowed) or sit among them. */
static bool in_key_dir(const struct admin *a, const char *path)
{
	char dir[1100], *slash;
	struct stat d, k;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return stat(dir, &d) == 0 && stat(keys_dir(a), &k) == 0 && d.st_dev == k.st_dev &&
	       d.st_ino == k.st_ino;
}

static int keys_export(struct admin *a, const char *name)
{
	char apath[1100], kpath[1100], err[1200], dest[300];
	uint32_t node = pifs_key_node(name);
	struct json j = {.f = stdout};
	const struct pifs_key *k;
	struct pifs_keypair kp;
	struct pifs_allow l;
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int rc = EXIT_FAIL, e;
	FILE *say;

	memset(&kp, 0, sizeof(kp));
	pifs_allow_init(&l);
	if (load_list(a, &l, apath, sizeof(apath)) < 0)
		return EXIT_FAIL;
	k = pifs_allow_find(&l, name);
	if (!k) {
		fprintf(stderr,
			PROG ": no key '%s' in %s: make it first ('" PROG " keys add-node N' or "
			     "'keys add-client NAME'); '" PROG " keys list' shows the keys there\n",
			name, apath);
		goto out_free;
	}
	if (k->revoked) {
		if (node)
			fprintf(stderr,
				PROG ": '%s' is revoked: the nodes refuse it, so it goes to no "
				     "machine; make node %" PRIu32 " a new key with '" PROG
				     " keys add-node %" PRIu32 "' and export that\n",
				name, node, node);
		else
			fprintf(stderr,
				PROG ": '%s' is revoked: the nodes refuse it, so it goes to no "
				     "machine; make a new key under another name ('" PROG
				     " keys add-client %.40s-2') and export that\n",
				name, name);
		goto out_free;
	}
	if (k->role == PIFS_ROLE_ADMIN && !a->force) {
		fprintf(stderr,
			PROG
			": '%s' is an admin key, which may change the cluster map and the keys: "
			"it stays on the admin's machine; for another administrator's machine, "
			"make a key of its own ('" PROG " keys add-admin NAME') and export that "
			"with --force\n",
			name);
		goto out_free;
	}
	if (pifs_keypair_path(keys_dir(a), name, kpath, sizeof(kpath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		goto out_free;
	}
	e = pifs_keypair_load(&kp, kpath, err, sizeof(err));
	if (e == -ENOENT) {
		fprintf(stderr,
			PROG ": %s is not in %s: a key is exported from the machine that made it, "
			     "where '" PROG " keys list' shows its secret 'here'; if it is lost, "
			     "revoke the key and make a new one\n",
			strrchr(kpath, '/') + 1, keys_dir(a));
		goto out_free;
	}
	if (e < 0) {
		fprintf(stderr, PROG ": %s\n", err);
		goto out_free;
	}
	if (strcmp(kp.pub, k->pub) != 0 || kp.role != k->role) {
		fprintf(stderr,
			PROG ": %s is not the key that %s lists as '%s' (another %s): a left-over? "
			     "move it away; if the listed key's file is lost, revoke it and make a "
			     "new one\n",
			kpath, apath, name, kp.role != k->role ? "role" : "public half");
		goto out_free;
	}
	if (a->output && in_key_dir(a, a->output)) {
		fprintf(stderr,
			PROG ": %s is in the key directory %s, whose files it could replace: write "
			     "the bundle elsewhere, such as -o %s.keys\n",
			a->output, keys_dir(a), name);
		goto out_free;
	}
	if (a->output) {
		e = pifs_bundle_save(&kp, &l, a->output);
		if (e < 0) {
			fprintf(stderr, PROG ": cannot write %s: %s: nothing was written\n",
				a->output, strerror(-e));
			goto out_free;
		}
	} else {
		/* A redirect made the file with the shell's umask: it holds a
		 * secret, so it is made 0600 before the secret is in it. */
		if (fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) &&
		    fchmod(STDOUT_FILENO, 0600) < 0) {
			fprintf(stderr,
				PROG ": cannot make the file on standard output mode 600 (%s): it "
				     "would hold a secret; give -o FILE instead\n",
				strerror(errno));
			goto out_free;
		}
		e = pifs_bundle_format(&kp, &l, &text, &len);
		if (e == 0 && (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0))
			e = errno ? -errno : -EIO;
		if (e < 0) {
			fprintf(stderr, PROG ": cannot write the bundle to standard output: %s\n",
				strerror(-e));
			goto out_free;
		}
	}
	key_dest(a, name, k->role, dest, sizeof(dest));
	say = a->output ? stdout : stderr;
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "action", "export");
		json_str(&j, "name", name);
		json_str(&j, "role", pifs_role_name(k->role));
		json_str(&j, "public", k->pub);
		json_str(&j, "file", a->output);
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		fprintf(
		    say,
		    "%swrote %s%s: the key pair of %s (%s) and the allow-list, generation %" PRIu64
		    "\n"
		    "copy it, with %s, to %s only; there run '" PROG
		    " keys import %s', then delete it: it holds the secret of %s\n",
		    a->output ? "" : PROG ": ", a->output ? a->output : "to standard output",
		    a->output ? " (mode 600)" : "", name, pifs_role_name(k->role), l.generation,
		    a->conf_path, dest, a->output ? a->output : "FILE", name);
	}
	if (node && !pifs_conf_node(&a->conf, node))
		fprintf(stderr,
			PROG ": note: %s has no [node %" PRIu32 "] yet: add its section (address, "
			     "data) to the configuration file of every machine\n",
			a->conf_path, node);
	note_insecure(a);
	rc = EXIT_OK;
out_free:
	if (text)
		explicit_bzero(text, len);
	free(text);
	explicit_bzero(&kp, sizeof(kp));
	pifs_allow_fini(&l);
	return rc;
}

/* The next step on this machine once key @kp is imported, as a command. */
static const char *next_step(const struct admin *a, const struct pifs_keypair *kp, char *buf,
			     size_t cap)
{
	char copt[1100];

	conf_opt(a, copt, sizeof(copt));
	if (kp->role == PIFS_ROLE_NODE)
		snprintf(buf, cap, "start the storage daemon: pifs-storaged -c %s --node %" PRIu32,
			 a->conf_path, pifs_key_node(kp->name));
	else if (kp->role == PIFS_ROLE_CLIENT && strcmp(kp->name, CLIENT_KEY) == 0)
		snprintf(buf, cap, "mount: pifs-mount -c %s MOUNTPOINT (client is its default key)",
			 a->conf_path);
	else if (kp->role == PIFS_ROLE_CLIENT)
		snprintf(buf, cap, "mount: pifs-mount -c %s -o key=%s MOUNTPOINT", a->conf_path,
			 kp->name);
	else
		snprintf(buf, cap, "run " PROG "%s --key %s status", copt, kp->name);
	return buf;
}

static int keys_import(struct admin *a, const char *file)
{
	char apath[1100], kpath[1100], err[1200], next[1300], was[64];
	struct json j = {.f = stdout};
	struct pifs_keypair kp, old;
	struct pifs_allow l, here;
	bool had_list, key_written = true;
	uint64_t before = 0;
	int rc = EXIT_FAIL, e;

	memset(&old, 0, sizeof(old));
	pifs_allow_init(&l);
	pifs_allow_init(&here);
	e = pifs_bundle_load(file, &kp, &l, err, sizeof(err));
	if (e < 0) {
		fprintf(stderr, PROG ": %s; nothing was written\n", err);
		return EXIT_FAIL;
	}
	if (allowed_path(a, apath, sizeof(apath)) < 0 ||
	    pifs_keypair_path(keys_dir(a), kp.name, kpath, sizeof(kpath)) < 0) {
		fprintf(stderr,
			PROG ": the key directory %s is too long a path: shorten 'keys ='\n",
			keys_dir(a));
		goto out_free;
	}
	/* Everything is checked before anything is written. */
	had_list = exists(apath);
	if (had_list) {
		e = pifs_allow_load(&here, apath, err, sizeof(err));
		if (e < 0) {
			fprintf(stderr,
				PROG ": %s\n" PROG
				     ": so the bundle's list cannot be told newer than "
				     "the one here: move %s away, then import again; nothing was "
				     "written\n",
				err, apath);
			goto out_free;
		}
		before = here.generation;
		if (before > l.generation) {
			fprintf(stderr,
				PROG
				": %s is generation %" PRIu64 ", newer than the bundle's %" PRIu64
				": the bundle was made before the keys last changed, and its list "
				"would undo that change here; export a new bundle on the admin's "
				"machine (or, if the list here is another cluster's, move it "
				"away); nothing was written\n",
				apath, before, l.generation);
			goto out_free;
		}
	}
	if (exists(kpath)) {
		e = pifs_keypair_load(&old, kpath, err, sizeof(err));
		if (e < 0) {
			fprintf(stderr,
				PROG ": %s\n" PROG
				     ": %s is in the way of the bundle's key: move it "
				     "away, then import again; nothing was written\n",
				err, kpath);
			goto out_free;
		}
		if (strcmp(old.pub, kp.pub) != 0 || strcmp(old.secret, kp.secret) != 0 ||
		    old.role != kp.role) {
			fprintf(stderr,
				PROG ": %s holds another key '%s' than the bundle: a machine keeps "
				     "the key it has; if the bundle's replaces it (the old one was "
				     "revoked), move %s away, then import again; nothing was "
				     "written\n",
				kpath, kp.name, kpath);
			goto out_free;
		}
		key_written = false;
	}
	e = make_dirs(keys_dir(a));
	if (e < 0) {
		fprintf(stderr,
			PROG ": cannot make the key directory %s: %s: make it by hand (mode 700) "
			     "or set another 'keys =' in %s; nothing was written\n",
			keys_dir(a), strerror(-e), a->conf_path);
		goto out_free;
	}
	if (key_written) {
		e = pifs_keypair_save(&kp, kpath);
		if (e < 0) {
			fprintf(stderr, PROG ": cannot write %s: %s: nothing was written\n", kpath,
				strerror(-e));
			goto out_free;
		}
	}
	e = pifs_allow_save(&l, apath);
	if (e < 0) {
		fprintf(stderr, PROG ": cannot write %s: %s: nothing was written\n", apath,
			strerror(-e));
		if (key_written)
			unlink(kpath);
		goto out_free;
	}
	next_step(a, &kp, next, sizeof(next));
	if (a->json) {
		json_open(&j, NULL, '{');
		json_str(&j, "action", "import");
		json_str(&j, "bundle", file);
		json_str(&j, "dir", keys_dir(a));
		json_str(&j, "name", kp.name);
		json_str(&j, "role", pifs_role_name(kp.role));
		json_str(&j, "public", kp.pub);
		json_str(&j, "file", kpath);
		json_bool(&j, "key_written", key_written);
		json_str(&j, "allowed", apath);
		json_u64(&j, "generation", l.generation);
		if (had_list)
			json_u64(&j, "generation_before", before);
		else
			json_null(&j, "generation_before");
		json_close(&j, '}');
		fputc('\n', stdout);
	} else {
		if (!had_list)
			snprintf(was, sizeof(was), "there was none");
		else if (before == l.generation)
			snprintf(was, sizeof(was), "the same as before");
		else
			snprintf(was, sizeof(was), "was %" PRIu64, before);
		printf("%s %s (%s, %s; %s) %s %s (generation %" PRIu64 "; %s)\n",
		       key_written ? "wrote" : "kept", kpath, kp.name, pifs_role_name(kp.role),
		       key_written ? "mode 600" : "already here", key_written ? "and" : "and wrote",
		       apath, l.generation, was);
		printf("next: %s; and delete %s: it holds the secret of %s\n", next, file, kp.name);
	}
	if (kp.role == PIFS_ROLE_NODE && !pifs_conf_node(&a->conf, pifs_key_node(kp.name)))
		fprintf(stderr,
			PROG ": note: %s has no [node %" PRIu32
			     "]: copy the cluster's configuration "
			     "file here, with that section, before starting the daemon\n",
			a->conf_path, pifs_key_node(kp.name));
	note_insecure(a);
	rc = EXIT_OK;
out_free:
	explicit_bzero(&kp, sizeof(kp));
	explicit_bzero(&old, sizeof(old));
	pifs_allow_fini(&l);
	pifs_allow_fini(&here);
	return rc;
}

/* ---- the command line ---- */

static const char *const verbs0[] = {"init", "list", "push"};
static const char *const verbs1[] = {"add-node", "add-client", "add-admin",
				     "revoke",	 "export",     "import"};

static bool one_of(const char *verb, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(verb, set[i]) == 0)
			return true;
	return false;
}

#define TRY_HELP "\nTry '" PROG " --help'.\n"

int keys_check(const struct admin *a)
{
	const char *verb = a->argv[0], *word = a->argc > 1 ? a->argv[1] : NULL;
	bool takes_word = one_of(verb, verbs1, 6), export = strcmp(verb, "export") == 0;

	if (!takes_word && !one_of(verb, verbs0, 3)) {
		fprintf(stderr,
			PROG ": keys %s: unknown; say keys init, add-node, add-client, add-admin, "
			     "revoke, list, push, export or import (see '" PROG
			     " keys --help')" TRY_HELP,
			verb);
		return EXIT_USAGE;
	}
	if (takes_word != (word != NULL)) {
		fprintf(stderr, PROG ": keys %s takes %s" TRY_HELP, verb,
			!takes_word			? "no word after it"
			: strcmp(verb, "add-node") == 0 ? "one node id N, as in [node N]"
			: strcmp(verb, "import") == 0	? "one FILE, the key bundle"
							: "one key NAME");
		return EXIT_USAGE;
	}
	if (a->force && strcmp(verb, "revoke") != 0 && !export) {
		fprintf(stderr,
			PROG
			": --force belongs to keys revoke, keys export and node remove, not to "
			"keys %s" TRY_HELP,
			verb);
		return EXIT_USAGE;
	}
	if (a->output && !export) {
		fprintf(stderr, PROG ": -o belongs to keys export, not to keys %s" TRY_HELP, verb);
		return EXIT_USAGE;
	}
	if (export && a->output && !*a->output) {
		fprintf(stderr, PROG ": keys export -o '': name the file to write" TRY_HELP);
		return EXIT_USAGE;
	}
	if (export && !a->output && a->json) {
		fprintf(stderr, PROG
			": keys export --json prints what it did, so the bundle needs a file of "
			"its own: give -o FILE" TRY_HELP);
		return EXIT_USAGE;
	}
	if (export && !a->output && isatty(STDOUT_FILENO)) {
		fprintf(stderr, PROG
			": keys export writes a secret, and not to a terminal: give -o FILE, or "
			"redirect it (> FILE)" TRY_HELP);
		return EXIT_USAGE;
	}
	if (strcmp(verb, "import") == 0)
		return -1;
	if (strcmp(verb, "add-node") == 0) {
		char name[32];

		snprintf(name, sizeof(name), "node-%.20s", word);
		if (!pifs_key_node(name)) {
			fprintf(stderr,
				PROG
				": keys add-node '%s': N is a node id, a whole number from 1 to "
				"%u without leading zeros, as in [node N]" TRY_HELP,
				word, NODE_ID_MAX);
			return EXIT_USAGE;
		}
		return -1;
	}
	if (!word)
		return -1;
	if (!pifs_key_name_ok(word)) {
		fprintf(stderr,
			PROG ": keys %s '%s': a key name is 1 to 48 of a-z, 0-9, '.', '_' and '-', "
			     "starting with a letter or digit" TRY_HELP,
			verb, word);
		return EXIT_USAGE;
	}
	if (strncmp(word, "node-", 5) == 0 && word[5] &&
	    strspn(word + 5, "0123456789") == strlen(word + 5) && strcmp(verb, "revoke") != 0 &&
	    !export) {
		fprintf(stderr,
			PROG ": keys %s '%s': node-N names the key of node N: make it with 'keys "
			     "add-node N', or give this key another name" TRY_HELP,
			verb, word);
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_keys(struct admin *a)
{
	const char *verb = a->argv[0];

	if (strcmp(verb, "init") == 0)
		return keys_init(a);
	if (strcmp(verb, "list") == 0)
		return keys_list(a);
	if (strcmp(verb, "push") == 0)
		return keys_push(a);
	if (strcmp(verb, "revoke") == 0)
		return keys_revoke(a, a->argv[1]);
	if (strcmp(verb, "export") == 0)
		return keys_export(a, a->argv[1]);
	if (strcmp(verb, "import") == 0)
		return keys_import(a, a->argv[1]);
	if (strcmp(verb, "add-node") == 0) {
		char name[32];

		snprintf(name, sizeof(name), "node-%s", a->argv[1]);
		return keys_add(a, PIFS_ROLE_NODE, name);
	}
	return keys_add(a, strcmp(verb, "add-client") == 0 ? PIFS_ROLE_CLIENT : PIFS_ROLE_ADMIN,
			a->argv[1]);
}

/* ---- help ---- */

#define EXIT_PUSHED                                                                                \
	"Exit status: 0 done, and every node took the new list; 1 refused or failed (the\n"        \
	"reason is printed), nothing changed; 2 bad command line or configuration file;\n"         \
	"3 done and saved, but not every node took the new list: each is named, with what\n"       \
	"to do ('" PROG " keys push' once it is back).\n"

#define PUSHED_JSON "nodes_took, nodes_asked, nodes: [{id, address, took, error}]"

const char keys_help[] =
    "Usage: " PROG " [-c FILE] [--json] keys init\n"
    "       " PROG " [-c FILE] [--json] [--timeout DUR] keys add-node N\n"
    "       " PROG " [-c FILE] [--json] [--timeout DUR] keys add-client NAME\n"
    "       " PROG " [-c FILE] [--json] [--timeout DUR] keys add-admin NAME\n"
    "       " PROG " [-c FILE] [--json] [--timeout DUR] keys revoke NAME [--force]\n"
    "       " PROG " [-c FILE] [--json] keys list\n"
    "       " PROG " [-c FILE] [--json] [--timeout DUR] keys push\n"
    "       " PROG " [-c FILE] [--json] keys export NAME [-o FILE] [--force]\n"
    "       " PROG " [-c FILE] [--json] keys import FILE\n"
    "       " PROG " keys SUBCOMMAND --help\n"
    "\n"
    "Make and revoke the cluster's CURVE keys. Every connection between pifs programs\n"
    "is encrypted and authenticated: a node accepts a peer only when its public key is\n"
    "in the allow-list and not revoked, and lets it do what the key's role allows:\n"
    "client, what a mount needs; node, the traffic between nodes; admin, everything,\n"
    "such as changing the cluster map.\n"
    "\n"
    "The keys live in the key directory that the configuration file names (keys = DIR\n"
    "in [cluster], default /etc/pifs/keys):\n"
    "  allowed     the allow-list: each key's name, role and public half, revoked ones\n"
    "              marked, and a generation that grows by one at every change. The same\n"
    "              file on every machine; it holds no secret.\n"
    "  NAME.key    one key pair, secret half included, mode 600. It goes to the one\n"
    "              machine that uses it: node-N.key to node N, client.key to the\n"
    "              machines that mount; admin.key stays on the admin's machine.\n"
    "pifs-storaged uses node-N.key, pifs-mount client.key (another with -o key=NAME)\n"
    "and " PROG " admin.key (another with --key NAME).\n"
    "\n"
    "A new machine gets both files in one, a key bundle: 'keys export NAME -o FILE'\n"
    "here, copy FILE there with the configuration file, 'keys import FILE' there.\n"
    "\n"
    "Subcommands (each has its own --help: " PROG " keys init --help):\n"
    "  init              make the directory, a key for every [node N] of the\n"
    "                    configuration, one client and one admin key, and the\n"
    "                    allow-list; say what to copy where\n"
    "  add-node N        a key for node N, a new Pi\n"
    "  add-client NAME   a key for mounts, such as one per kiosk\n"
    "  add-admin NAME    another admin key, such as one per administrator\n"
    "  revoke NAME       mark a key revoked: the nodes refuse it from then on\n"
    "      --force       even the admin key this " PROG " uses\n"
    "  list              the keys, their roles and states, and which secret halves\n"
    "                    are in this directory\n"
    "  push              send the allow-list to every node again\n"
    "  export NAME       write a bundle of key NAME and the allow-list, for its machine\n"
    "      -o FILE       to FILE (mode 600), not to standard output\n"
    "      --force       even an admin key\n"
    "  import FILE       on that machine: put the bundle's key and allow-list into the\n"
    "                    key directory\n"
    "\n"
    "add-node, add-client, add-admin and revoke send the new list to every node of the\n"
    "cluster map (all at once, each within --timeout), which puts it in force at once:\n"
    "a revoked key is refused within seconds, without a restart. A node that does not\n"
    "answer keeps its older list until '" PROG " keys push' reaches it. A node reads the\n"
    "list in its own key directory when it starts.\n"
    "\n"
    "export and import ask no node. All of these commands work on the files whatever\n"
    "the configuration says of security; with 'security = none' they also say that\n"
    "the cluster runs without keys.\n"
    "\n"
    "Exit status: 0 done (and every node took the new list); 1 refused or failed (the\n"
    "reason is printed); 2 bad command line or configuration file; 3 the files are\n"
    "saved but not every node took the new list (each is named, with what to do).\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys init\n"
    "  " PROG " keys add-client kiosk-3\n"
    "  " PROG " keys revoke kiosk-3\n"
    "  " PROG " keys list --json\n"
    "  " PROG " keys export kiosk-3 -o kiosk-3.keys\n";

static const char init_help[] =
    "Usage: " PROG " [-c FILE] [--json] keys init\n"
    "\n"
    "Make the cluster's keys, once, on the admin's machine: the key directory that the\n"
    "configuration file names (keys = DIR in [cluster], default /etc/pifs/keys; made\n"
    "mode 700 when missing) and in it\n"
    "  node-N.key   a key pair for every [node N] of the configuration (role node)\n"
    "  client.key   the key of the mounts (role client)\n"
    "  admin.key    the key of " PROG " (role admin)\n"
    "  allowed      the allow-list: the name, role and public half of each key,\n"
    "               generation 1\n"
    "Each .key file is mode 600 and holds a secret half. init is refused, with the\n"
    "next step, where an allow-list or one of these key files exists already: add keys\n"
    "to a cluster that has them with add-node, add-client and add-admin.\n"
    "\n"
    "Then each machine gets the configuration file and one key bundle, its own key\n"
    "and the allow-list in one file: 'keys export NAME -o FILE' here, copy FILE\n"
    "there, 'keys import FILE' there (see keys export --help):\n"
    "  each Pi, node N              the bundle of node-N (no other node's)\n"
    "  a machine that only mounts   the bundle of client\n"
    "  admin.key goes nowhere: whoever holds it may change the cluster map and the keys.\n"
    "The key directory is mode 700 and the .key files mode 600, owned by the user the\n"
    "programs run as: a program refuses a key file that others may read. init asks no\n"
    "node: the nodes read these files when they start.\n"
    "\n"
    "JSON: action (\"init\"), dir, allowed, generation, security (\"curve\" or \"none\"),\n"
    "keys: [{name, role, public, file}].\n"
    "\n"
    "Exit status: 0 made; 1 refused (keys are there already) or a file could not be\n"
    "written (what this run wrote is removed again); 2 bad command line or\n"
    "configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys init\n"
    "  " PROG " -c ~/cluster/pifs.conf keys init --json | jq -r '.keys[].file'\n";

static const char add_node_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] keys add-node N\n"
    "\n"
    "Make the key of node N, a new Pi: DIR/node-N.key (role node, mode 600) and its\n"
    "line in DIR/allowed, whose generation grows by one; DIR is the configuration's\n"
    "keys = (default /etc/pifs/keys). Then send the new list to every node of the\n"
    "cluster map but N itself (all at once, each within --timeout), so that they accept\n"
    "node N from then on; each is named with what it did. Node N reads the list when\n"
    "it starts.\n"
    "\n"
    "Then give node N the configuration file (with its [node N] section) and the\n"
    "bundle of its key and the allow-list: 'keys export node-N -o node-N.keys' here,\n"
    "copy that file there, 'keys import node-N.keys' there; then start its\n"
    "pifs-storaged.\n"
    "\n"
    "A node has one key: add-node N is refused while node-N is listed and not revoked.\n"
    "After 'keys revoke node-N' (its key leaked, or its Pi was replaced), add-node N\n"
    "makes it a new key in place of the revoked one.\n"
    "\n"
    "JSON: action (\"add-node\"), name, role, public, file, allowed, generation,\n"
    "replaced_revoked, " PUSHED_JSON ".\n"
    "\n" EXIT_PUSHED "\n"
    "Examples:\n"
    "  " PROG " keys add-node 4 && " PROG " keys export node-4 -o node-4.keys\n"
    "  scp -p node-4.keys root@192.168.1.14: && ssh root@192.168.1.14 '" PROG
    " keys import node-4.keys'\n";

static const char add_client_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] keys add-client NAME\n"
    "\n"
    "Make a key for mounts named NAME: DIR/NAME.key (role client, mode 600) and its\n"
    "line in DIR/allowed, whose generation grows by one; then send the new list to every\n"
    "node of the cluster map (all at once, each within --timeout). A client key may do\n"
    "what a mount needs and nothing more: files, not the cluster. A key per machine,\n"
    "or per kiosk, lets one be revoked without touching the others.\n"
    "\n"
    "Then give that machine the configuration file and the bundle of the key and the\n"
    "allow-list: 'keys export NAME -o NAME.keys' here, copy that file there, 'keys\n"
    "import NAME.keys' there; and mount with 'pifs-mount -o key=NAME' (a mount uses\n"
    "client.key by default).\n"
    "\n"
    "NAME is 1 to 48 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit;\n"
    "node-N is for node keys. A name is never given to two keys: a revoked key keeps its\n"
    "name in the list.\n"
    "\n"
    "JSON: action (\"add-client\"), name, role, public, file, allowed, generation,\n"
    "replaced_revoked (false), " PUSHED_JSON ".\n"
    "\n" EXIT_PUSHED "\n"
    "Examples:\n"
    "  " PROG " keys add-client kiosk-3 && " PROG " keys export kiosk-3 -o kiosk-3.keys\n";

static const char add_admin_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] keys add-admin NAME\n"
    "\n"
    "Make another admin key named NAME: DIR/NAME.key (role admin, mode 600) and its\n"
    "line in DIR/allowed, whose generation grows by one; then send the new list to every\n"
    "node of the cluster map (all at once, each within --timeout). An admin key may do\n"
    "everything: change the cluster map, run gc, rebalance and scrub, and read and\n"
    "change the keys. One per administrator lets one be revoked alone; a second one,\n"
    "kept apart, lets the first be replaced.\n"
    "\n"
    "Copy DIR/NAME.key only to that administrator's machine, with the configuration\n"
    "file and DIR/allowed ('keys export NAME --force -o FILE' makes one file of the\n"
    "two), and use it with '" PROG " --key NAME'.\n"
    "\n"
    "NAME is 1 to 48 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit;\n"
    "node-N is for node keys. A name is never given to two keys.\n"
    "\n"
    "JSON: action (\"add-admin\"), name, role, public, file, allowed, generation,\n"
    "replaced_revoked (false), " PUSHED_JSON ".\n"
    "\n" EXIT_PUSHED "\n"
    "Examples:\n"
    "  " PROG " keys add-admin alice\n";

static const char revoke_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] keys revoke NAME [--force]\n"
    "\n"
    "Mark key NAME revoked in DIR/allowed (its generation grows by one), delete\n"
    "DIR/NAME.key if it is there, and send the new list to every node of the cluster\n"
    "map (all at once, each within --timeout): each refuses the key from then on,\n"
    "within seconds and without a restart. Delete NAME.key wherever else it was\n"
    "copied. A revoked key stays in the list, so that its name is not given again;\n"
    "node N, whose key has no other name, gets a new one with 'keys add-node N'.\n"
    "\n"
    "Refused, with the reason:\n"
    "  - the last admin key that is not revoked: without one, no one could change the\n"
    "    cluster map or the keys again; make another first (keys add-admin NAME)\n"
    "  - the admin key this " PROG " uses (--key NAME, admin by default), unless\n"
    "      --force   revoke it anyway; use another admin key from then on\n"
    "Revoking a key that is revoked already changes nothing (its file here, if any, is\n"
    "deleted) and sends nothing.\n"
    "\n"
    "JSON: action (\"revoke\"), name, role, allowed, generation, changed, deleted,\n" PUSHED_JSON
    ".\n"
    "\n" EXIT_PUSHED "Until a node takes the list, it still accepts the key.\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys revoke kiosk-3\n"
    "  " PROG " keys add-admin alice && " PROG " --key alice keys revoke admin\n"
    "  " PROG " keys revoke admin --force\n";

static const char list_help[] =
    "Usage: " PROG " [-c FILE] [--json] keys list\n"
    "\n"
    "Show the keys of DIR/allowed, one line each, after its generation:\n"
    "  NAME    the key's name; node-N is the key of node N\n"
    "  ROLE    client (mounts), node (storage daemons) or admin (" PROG ")\n"
    "  STATE   active, or revoked (the nodes that have this list refuse it)\n"
    "  PUBLIC  the first 12 characters of the public half\n"
    "  SECRET  here when NAME.key, with the secret half, is in this directory; - when\n"
    "          it is not (copied to its machine and removed here, or revoked)\n"
    "A .key file in the directory that the list does not name is noted after the table.\n"
    "list reads the files only: it asks no node.\n"
    "\n"
    "JSON: dir, allowed, generation, security (\"curve\" or \"none\"), keys: [{name, role,\n"
    "state, revoked, public, secret_here}] with the whole public half, and unlisted:\n"
    "[the .key files the list does not name].\n"
    "\n"
    "Exit status: 0 listed; 1 no allow-list, or one that does not load (its line and\n"
    "what to do are printed); 2 bad command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys list\n"
    "  " PROG " keys list --json | jq -r '.keys[] | select(.state == \"active\") | .name'\n";

static const char push_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] keys push\n"
    "\n"
    "Send DIR/allowed, as it is, to every node and show what each did. A node takes a\n"
    "list whose generation is newer than its own, saves it in its own key directory\n"
    "and puts it in force at once. add-node, add-client, add-admin and revoke push by\n"
    "themselves: push is for the nodes that did not answer then, and for a list copied\n"
    "here by hand.\n"
    "\n"
    "The nodes asked are those of the configuration file and those the metadata\n"
    "service names in the cluster map, all at once, each within --timeout (default: the\n"
    "configuration's [client] timeout).\n"
    "\n"
    "JSON: action (\"push\"), allowed, generation, " PUSHED_JSON ".\n"
    "\n"
    "Exit status: 0 every node took it; 1 no node took it (none answered, or all\n"
    "refused), or there is no allow-list; 2 bad command line or configuration file;\n"
    "3 some nodes took it and some did not (those are named, with what to do).\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys push\n"
    "  " PROG " --timeout 2s keys push --json\n";

static const char export_help[] =
    "Usage: " PROG " [-c FILE] [--json] keys export NAME [-o FILE] [--force]\n"
    "\n"
    "Write a key bundle for the machine that uses key NAME: DIR/NAME.key, with its\n"
    "secret half, and DIR/allowed, the allow-list, in one text file; DIR is the\n"
    "configuration's keys = (default /etc/pifs/keys). Copy it, with the configuration\n"
    "file, to that machine only, run '" PROG " keys import FILE' there, and delete it\n"
    "here and there: whoever reads it can act as NAME.\n"
    "\n"
    "  -o, --output FILE   write FILE, mode 600, whole or not at all, in place of any\n"
    "                      file there; without it the bundle goes to standard output\n"
    "                      (a file it is redirected to is made mode 600), never to a\n"
    "                      terminal\n"
    "  --force             export an admin key too\n"
    "\n"
    "The bundle is a comment line '# pifs key bundle 1', then '--- NAME.key' and the\n"
    "key file, then '--- allowed' and the allow-list, as they are in DIR.\n"
    "\n"
    "Refused, with the reason and the next step:\n"
    "  - a key the allow-list does not name, or names revoked\n"
    "  - an admin key, without --force: it stays on the admin's machine; another\n"
    "    administrator gets a key of their own (keys add-admin NAME)\n"
    "  - a key whose NAME.key is not in DIR (a key is exported from the machine that\n"
    "    made it, where 'keys list' shows its secret 'here'), or does not match the\n"
    "    allow-list\n"
    "  - -o FILE in DIR, where it could take the place of a key file or the list\n"
    "export asks no node and changes nothing in DIR.\n"
    "\n"
    "JSON (with -o only): action (\"export\"), name, role, public, file, allowed,\n"
    "generation.\n"
    "\n"
    "Exit status: 0 written; 1 refused or not written (the reason is printed); 2 bad\n"
    "command line (standard output a terminal, --json without -o) or configuration\n"
    "file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys export node-4 -o node-4.keys\n"
    "  " PROG " keys export kiosk-3 | ssh root@192.168.1.30 'umask 077; cat > kiosk-3.keys'\n"
    "  " PROG " keys add-admin alice && " PROG " keys export alice --force -o alice.keys\n";

static const char import_help[] =
    "Usage: " PROG " [-c FILE] [--json] keys import FILE\n"
    "\n"
    "On a new machine: put the key and the allow-list of the key bundle FILE (made by\n"
    "'keys export' on the admin's machine) into the key directory DIR that the\n"
    "configuration file names (keys = DIR in [cluster], default /etc/pifs/keys; made\n"
    "mode 700 when missing): DIR/NAME.key, mode 600, and DIR/allowed. This machine\n"
    "needs no key of its own for it, and no node is asked. Then it says what to start:\n"
    "pifs-storaged --node N for a node's key, pifs-mount -o key=NAME for a client's.\n"
    "Delete FILE afterwards: it holds the secret.\n"
    "\n"
    "Refused, with the reason, and then nothing is written:\n"
    "  - FILE is not a whole bundle, or one pieced together: its key must be in its\n"
    "    allow-list, not revoked, with the same public half and role, and its secret\n"
    "    half must belong to its public half (the line at fault is named, FILE:LINE)\n"
    "  - FILE may be read or written by group or others (chmod 600 it)\n"
    "  - DIR/NAME.key exists and holds another key: a machine keeps the key it has;\n"
    "    move it away first if the bundle's replaces it. The same key is kept as it is.\n"
    "  - DIR/allowed is of a newer generation than the bundle's (the keys changed\n"
    "    after the bundle was made): export a new one. A list of the same or an older\n"
    "    generation is replaced by the bundle's.\n"
    "\n"
    "JSON: action (\"import\"), bundle, dir, name, role, public, file, key_written\n"
    "(false: the same key was there), allowed, generation, generation_before (null:\n"
    "there was no list).\n"
    "\n"
    "Exit status: 0 imported; 1 refused or not written (the reason is printed); 2 bad\n"
    "command line or configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " keys import node-4.keys && rm node-4.keys\n"
    "  " PROG " -c /etc/pifs/pifs.conf keys import /root/kiosk-3.keys --json\n";

const char *keys_help_for(const char *verb)
{
	static const struct {
		const char *verb, *help;
	} pages[] = {
	    {"init", init_help},
	    {"add-node", add_node_help},
	    {"add-client", add_client_help},
	    {"add-admin", add_admin_help},
	    {"revoke", revoke_help},
	    {"list", list_help},
	    {"push", push_help},
	    {"export", export_help},
	    {"import", import_help},
	};

	for (size_t i = 0; verb && i < sizeof(pages) / sizeof(pages[0]); i++)
		if (strcmp(verb, pages[i].verb) == 0)
			return pages[i].help;
	return keys_help;
}
