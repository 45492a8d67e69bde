/* admin_meta.c - pifs-admin meta: the replicated metadata log. status asks
 * every voter for META_STAT itself (each answers with its own view, the
 * leader with how far each voter follows it), so that a voter that is down
 * or cut off shows as such even when the leader still answers; add and
 * remove send META_VOTER to the leader and wait until the new voter set is
 * committed. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_i.h"
#include "raft.h"
#include "rpc.h"

/* meta add and remove wait this long for the change without --timeout. */
#define META_WAIT_MS 30000
/* Voters are found from the answers of others: so many rounds at most. */
#define META_ROUNDS 4

static void pause_ms(long ms)
{
	nanosleep(&(struct timespec){.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L}, NULL);
}

static const struct voter_view *voter_of(const struct meta_view *mv, uint32_t id)
{
	for (size_t i = 0; i < mv->n; i++)
		if (mv->v[i].id == id)
			return &mv->v[i];
	return NULL;
}

/* Add voter @id at @addr (NULL or empty: the configuration file's address;
 * it must not point into @mv, which may move) unless known. Returns 0 or
 * -ENOMEM. */
static int voter_add(struct meta_view *mv, const struct admin *a, uint32_t id, const char *addr)
{
	const struct pifs_conf_node *c = pifs_conf_node(&a->conf, id);
	struct voter_view *v, *grown;

	for (size_t i = 0; i < mv->n; i++) {
		v = &mv->v[i];
		if (v->id != id)
			continue;
		if (!v->addr[0] && addr && *addr)
			snprintf(v->addr, sizeof(v->addr), "%s", addr);
		return 0;
	}
	grown = realloc(mv->v, (mv->n + 1) * sizeof(*mv->v));
	if (!grown)
		return -ENOMEM;
	mv->v = grown;
	v = &mv->v[mv->n++];
	memset(v, 0, sizeof(*v));
	v->id = id;
	v->rc = -ENODATA;
	v->in_conf = c && c->meta;
	if (addr && *addr)
		snprintf(v->addr, sizeof(v->addr), "%s", addr);
	else if (c)
		snprintf(v->addr, sizeof(v->addr), "%s", c->addr);
	return 0;
}

void meta_view_free(struct meta_view *mv)
{
	free(mv->v);
	memset(mv, 0, sizeof(*mv));
}

int meta_stat(struct admin *a, struct voter_view *v)
{
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_voter pv;
	char ep[300];
	int rc;

	v->why[0] = '\0';
	v->n_peers = 0;
	if (!v->addr[0]) {
		rc = -EDESTADDRREQ;
		goto out;
	}
	rc = pifs_conf_endpoint(v->addr, ep, sizeof(ep));
	if (rc < 0)
		goto out;
	rc = pifs_rpc_new(a->zctx, a->auth, v->id, ep, &r);
	if (rc < 0)
		goto out;
	pifs_msg_init(&req, PIFS_MSG_META_STAT);
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, a->timeout_ms);
	if (rc < 0) {
		if (rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.detail.len)
			snprintf(v->why, sizeof(v->why), "%.*s", (int)rep.u.R_STATUS.detail.len,
				 rep.u.R_STATUS.detail.p);
		goto out;
	}
	if (rep.type != PIFS_MSG_R_META) {
		rc = -EPROTO;
		goto out;
	}
	v->answered_id = rep.u.R_META.id;
	if (v->answered_id != v->id) {
		/* Another daemon listens at this address: its view is not this voter's. */
		rc = -EXDEV;
		goto out;
	}
	v->role = rep.u.R_META.role;
	v->leader = rep.u.R_META.leader;
	v->term = rep.u.R_META.term;
	v->commit = rep.u.R_META.commit;
	v->applied = rep.u.R_META.applied;
	v->last_index = rep.u.R_META.last_index;
	v->snap_index = rep.u.R_META.snap_index;
	v->log_bytes = rep.u.R_META.log_bytes;
	pifs_cursor_init(&cur, &rep.u.R_META.voters);
	while ((rc = pifs_voter_next(&cur, &pv)) == 1) {
		struct meta_peer *p;

		if (v->n_peers == PIFS_RAFT_MAX_VOTERS) {
			rc = -EBADMSG;
			goto out;
		}
		p = &v->peers[v->n_peers++];
		p->id = pv.id;
		p->match = pv.match;
		p->synced = pv.synced;
		p->contact_ms = pv.contact_ms;
		p->flags = pv.flags;
		if (pifs_str_copy(pv.addr, p->addr, sizeof(p->addr)) < 0) {
			rc = -EBADMSG;
			goto out;
		}
	}
out:
	pifs_rpc_free(r);
	v->rc = rc;
	return rc;
}

struct stat_job {
	struct admin *a;
	struct voter_view *v;
	pthread_t thread;
	bool started;
};

static void *stat_thread(void *arg)
{
	struct stat_job *j = arg;

	meta_stat(j->a, j->v);
	return NULL;
}

/* META_STAT every voter of @mv not asked yet, all at once, so that voters
 * that are down cost one timeout in all. Returns how many were asked, or
 * -ENOMEM. */
static ssize_t stat_round(struct admin *a, struct meta_view *mv)
{
	struct stat_job *j = calloc(mv->n ? mv->n : 1, sizeof(*j));
	ssize_t asked = 0;

	if (!j)
		return -ENOMEM;
	for (size_t i = 0; i < mv->n; i++) {
		if (mv->v[i].rc != -ENODATA)
			continue;
		j[i].a = a;
		j[i].v = &mv->v[i];
		j[i].started = pthread_create(&j[i].thread, NULL, stat_thread, &j[i]) == 0;
		if (!j[i].started)
			stat_thread(&j[i]);
		asked++;
	}
	for (size_t i = 0; i < mv->n; i++)
		if (j[i].started)
			pthread_join(j[i].thread, NULL);
	free(j);
	return asked;
}

static bool answered(const struct voter_view *v)
{
	return v->rc == 0;
}

static bool any_answer(const struct meta_view *mv)
{
	for (size_t i = 0; i < mv->n; i++)
		if (answered(&mv->v[i]))
			return true;
	return false;
}

/* Decide who leads and who votes from the answers. The leader is the one
 * that says it leads in the highest term: a deposed leader cut off from the
 * others may still believe it leads in an older one. The voter set is the
 * leader's; without a leader, every voter any answer names, else the
 * configuration file's. */
static void settle(struct meta_view *mv)
{
	bool any_list = false;

	mv->lead = NULL;
	mv->leader = 0;
	mv->term = 0;
	for (size_t i = 0; i < mv->n; i++) {
		struct voter_view *v = &mv->v[i];

		if (!answered(v))
			continue;
		if (v->term > mv->term)
			mv->term = v->term;
		if (v->role == PIFS_RAFT_LEADER && (!mv->lead || v->term > mv->lead->term))
			mv->lead = v;
		any_list |= v->n_peers > 0;
	}
	if (mv->lead) {
		mv->leader = mv->lead->id;
		mv->term = mv->lead->term;
	} else {
		/* A follower of the highest term names a leader that did not answer us. */
		for (size_t i = 0; i < mv->n; i++)
			if (answered(&mv->v[i]) && mv->v[i].term == mv->term && mv->v[i].leader)
				mv->leader = mv->v[i].leader;
	}
	for (size_t i = 0; i < mv->n; i++) {
		struct voter_view *v = &mv->v[i];

		v->voter = false;
		v->tracked = false;
		if (mv->lead) {
			for (size_t k = 0; k < mv->lead->n_peers; k++) {
				const struct meta_peer *p = &mv->lead->peers[k];

				if (p->id != v->id)
					continue;
				v->voter = v->tracked = true;
				v->match = p->match;
				v->synced = p->synced;
				v->contact_ms = p->contact_ms;
			}
			continue;
		}
		if (!any_list) {
			v->voter = v->in_conf;
			continue;
		}
		for (size_t w = 0; w < mv->n && !v->voter; w++)
			for (size_t k = 0; k < mv->v[w].n_peers; k++)
				v->voter |= answered(&mv->v[w]) && mv->v[w].peers[k].id == v->id;
	}
	mv->voters = mv->up = 0;
	mv->unsupported = false;
	for (size_t i = 0; i < mv->n; i++) {
		const struct voter_view *v = &mv->v[i];

		mv->voters += v->voter;
		mv->up += v->voter && answered(v);
	}
	/* Daemons of before replicated metadata refuse META_STAT as a request
	 * they do not serve (EOPNOTSUPP, which is ENOTSUP here), or as one they
	 * cannot decode; none of them answers R_META. */
	for (size_t i = 0; i < mv->n && !any_answer(mv); i++) {
		int rc = mv->v[i].rc;

		mv->unsupported |= rc == -EOPNOTSUPP || rc == -EPROTO || rc == -EBADMSG;
	}
}

/* Ask every node of @mv not asked yet, then those their answers name, for
 * at most META_ROUNDS rounds. Returns 0 or -errno. */
static int probe_rounds(struct admin *a, struct meta_view *mv)
{
	ssize_t asked;

	for (int round = 0; round < META_ROUNDS; round++) {
		size_t n;

		asked = stat_round(a, mv);
		if (asked < 0)
			return (int)asked;
		if (asked == 0)
			break;
		/* Voters added with pifs-admin meta add are in the answers' lists,
		 * not in the configuration file; and a leader may be named that
		 * is neither. */
		n = mv->n;
		for (size_t i = 0; i < n; i++) {
			if (!answered(&mv->v[i]))
				continue;
			for (size_t k = 0; k < mv->v[i].n_peers; k++) {
				struct meta_peer p = mv->v[i].peers[k];

				if (voter_add(mv, a, p.id, p.addr) < 0)
					return -ENOMEM;
			}
			if (mv->v[i].leader && voter_add(mv, a, mv->v[i].leader, NULL) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

int meta_probe(struct admin *a, struct meta_view *mv)
{
	int rc;

	/* Ask again from scratch: a voter that answered before may be gone. */
	for (size_t i = 0; i < mv->n; i++)
		mv->v[i].rc = -ENODATA;
	for (size_t i = 0; i < a->conf.n_nodes; i++)
		if (a->conf.nodes[i].meta && voter_add(mv, a, a->conf.nodes[i].id, NULL) < 0)
			return -ENOMEM;
	rc = probe_rounds(a, mv);
	/* No voter of the configuration file answered: it may predate a meta
	 * add (or its voters are down). Every node answers META_STAT with the
	 * voters it knows, so ask the others too. */
	if (rc == 0 && !any_answer(mv)) {
		for (size_t i = 0; i < a->conf.n_nodes; i++)
			if (voter_add(mv, a, a->conf.nodes[i].id, NULL) < 0)
				return -ENOMEM;
		rc = probe_rounds(a, mv);
	}
	if (rc < 0)
		return rc;
	settle(mv);
	return 0;
}

size_t meta_majority(size_t voters)
{
	return voters / 2 + 1;
}

/* ---- meta status ---- */

static const char *role_word(const struct voter_view *v)
{
	if (!answered(v))
		return "unreachable";
	return pifs_raft_role_name((enum pifs_raft_role)v->role);
}

/* Why a voter gave no view, in a few words for a table cell. */
static const char *voter_problem(const struct voter_view *v, char *buf, size_t cap)
{
	if (v->rc == -EXDEV)
		snprintf(buf, cap, "answers as node %" PRIu32, v->answered_id);
	else if (v->rc == -ETIMEDOUT || v->rc == -EHOSTUNREACH || v->rc == -ECONNREFUSED)
		snprintf(buf, cap, "unreachable");
	else if (v->rc == -EDESTADDRREQ)
		snprintf(buf, cap, "no address known");
	else if (v->rc == -EBADMSG || v->rc == -EPROTO)
		snprintf(buf, cap, "bad reply: another version?");
	else
		snprintf(buf, cap, "error: %s", strerror(-v->rc));
	return buf;
}

/* How far @v is behind the leader: the leader's last index minus what the
 * leader knows @v holds. False when that is not known. */
static bool voter_lag(const struct meta_view *mv, const struct voter_view *v, uint64_t *lag)
{
	if (!mv->lead || !v->tracked)
		return false;
	*lag = mv->lead->last_index > v->match ? mv->lead->last_index - v->match : 0;
	return true;
}

/* "12ms ago", "3.4s ago", "never", "-" for the leader itself. */
static const char *contact(const struct meta_view *mv, const struct voter_view *v, char *buf,
			   size_t cap)
{
	char b[32];

	if (!mv->lead || !v->tracked)
		snprintf(buf, cap, "-");
	else if (v == mv->lead)
		snprintf(buf, cap, "(leader)");
	else if (v->contact_ms < 0)
		snprintf(buf, cap, "never");
	else if (v->contact_ms < 10000)
		snprintf(buf, cap, "%" PRId64 "ms ago", v->contact_ms);
	else
		snprintf(buf, cap, "%s ago", human_secs((uint64_t)v->contact_ms / 1000, b, sizeof(b)));
	return buf;
}

/* ok (a leader, every voter answers), degraded (a leader, a voter down) or
 * down (no leader, or no majority). */
static const char *meta_health(const struct meta_view *mv)
{
	if (!mv->lead || mv->up < meta_majority(mv->voters))
		return "down";
	return mv->up == mv->voters ? "ok" : "degraded";
}

/* The voter ids of @mv, space-separated, into @buf. */
static const char *voter_ids(const struct meta_view *mv, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < mv->n && off < cap; i++)
		if (mv->v[i].voter)
			off += (size_t)snprintf(buf + off, cap - off, "%s%" PRIu32, off ? " " : "",
						mv->v[i].id);
	return buf;
}

static int cmp_voter(const void *x, const void *y)
{
	const struct voter_view *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static void meta_status_json(const struct meta_view *mv)
{
	struct json j = {.f = stdout};
	char why[256];

	json_open(&j, NULL, '{');
	/* leader is one that answered as such: scripts act on it. The one the
	 * followers name may be dead. */
	if (mv->lead) {
		json_u64(&j, "leader", mv->lead->id);
		json_str(&j, "leader_address", mv->lead->addr);
	} else {
		json_null(&j, "leader");
		json_null(&j, "leader_address");
	}
	if (mv->leader)
		json_u64(&j, "named_leader", mv->leader);
	else
		json_null(&j, "named_leader");
	json_u64(&j, "term", mv->term);
	if (mv->lead) {
		json_u64(&j, "commit", mv->lead->commit);
		json_u64(&j, "last_index", mv->lead->last_index);
	} else {
		json_null(&j, "commit");
		json_null(&j, "last_index");
	}
	json_u64(&j, "voters_total", mv->voters);
	json_u64(&j, "voters_up", mv->up);
	json_u64(&j, "majority", meta_majority(mv->voters));
	json_bool(&j, "quorum", mv->up >= meta_majority(mv->voters));
	/* How many more voters may be lost with metadata still served. */
	json_i64(&j, "can_lose",
		 mv->up >= meta_majority(mv->voters)
		     ? (int64_t)(mv->up - meta_majority(mv->voters))
		     : -1);
	json_str(&j, "health", meta_health(mv));
	json_open(&j, "voters", '[');
	for (size_t i = 0; i < mv->n; i++) {
		const struct voter_view *v = &mv->v[i];
		uint64_t lag;

		if (!v->voter)
			continue;
		json_open(&j, NULL, '{');
		json_u64(&j, "id", v->id);
		json_str(&j, "address", v->addr);
		json_bool(&j, "reachable", answered(v));
		json_str(&j, "role", role_word(v));
		if (answered(v)) {
			json_u64(&j, "term", v->term);
			json_u64(&j, "commit", v->commit);
			json_u64(&j, "applied", v->applied);
			json_u64(&j, "last_index", v->last_index);
			json_u64(&j, "snap_index", v->snap_index);
			json_u64(&j, "log_bytes", v->log_bytes);
		} else {
			json_null(&j, "term");
			json_null(&j, "commit");
			json_null(&j, "applied");
			json_null(&j, "last_index");
			json_null(&j, "snap_index");
			json_null(&j, "log_bytes");
			json_str(&j, "error", voter_problem(v, why, sizeof(why)));
		}
		if (voter_lag(mv, v, &lag)) {
			json_u64(&j, "match", v->match);
			json_u64(&j, "synced", v->synced);
			json_u64(&j, "lag", lag);
			if (v->contact_ms >= 0)
				json_i64(&j, "contact_ms", v->contact_ms);
			else
				json_null(&j, "contact_ms");
		} else {
			json_null(&j, "match");
			json_null(&j, "synced");
			json_null(&j, "lag");
			json_null(&j, "contact_ms");
		}
		json_close(&j, '}');
	}
	json_close(&j, ']');
	/* Nodes the configuration file calls voters that the log does not. */
	json_open(&j, "not_voters", '[');
	for (size_t i = 0; i < mv->n; i++) {
		const struct voter_view *v = &mv->v[i];

		if (v->voter)
			continue;
		json_open(&j, NULL, '{');
		json_u64(&j, "id", v->id);
		json_str(&j, "address", v->addr);
		json_bool(&j, "reachable", answered(v));
		json_bool(&j, "in_conf", v->in_conf);
		json_close(&j, '}');
	}
	json_close(&j, ']');
	json_close(&j, '}');
	fputc('\n', stdout);
}

/* The closing line: is a majority up, and what one more loss would do. */
static void quorum_line(const struct meta_view *mv)
{
	size_t maj = meta_majority(mv->voters);
	const char *sep = "";

	printf("quorum:    %zu of %zu voters up, a majority is %zu: ", mv->up, mv->voters, maj);
	if (mv->up < maj) {
		printf("metadata is stopped (nothing can be opened, created or listed) until %zu "
		       "more voter(s) answer; start the daemons of node ",
		       maj - mv->up);
		for (size_t i = 0; i < mv->n; i++) {
			if (mv->v[i].voter && !answered(&mv->v[i])) {
				printf("%s%" PRIu32, sep, mv->v[i].id);
				sep = ", ";
			}
		}
		printf(" (see pifs-local status / journalctl)\n");
		return;
	}
	if (!mv->lead) {
		printf("no leader answered (term %" PRIu64
		       "): an election is under way or the leader just stopped; run this again "
		       "in a few seconds, and if it lasts see the voters' logs\n",
		       mv->term);
		return;
	}
	if (mv->up == maj)
		printf("losing one more voter stops metadata");
	else
		printf("metadata survives the loss of %zu more voter(s)", mv->up - maj);
	if (mv->up < mv->voters) {
		printf("; bring back node ");
		for (size_t i = 0; i < mv->n; i++) {
			if (mv->v[i].voter && !answered(&mv->v[i])) {
				printf("%s%" PRIu32, sep, mv->v[i].id);
				sep = ", ";
			}
		}
	} else if (mv->voters % 2 == 0) {
		printf("; %zu voters survive no more losses than %zu: add a voter or remove one",
		       mv->voters, mv->voters - 1);
	}
	putchar('\n');
}

static void meta_status_text(const struct meta_view *mv)
{
	char b1[32], b2[32], ids[128], why[256];
	int aw = (int)strlen("ADDRESS");

	if (mv->lead)
		printf("metadata:  leader node %" PRIu32 " at %s, term %" PRIu64 ", commit %" PRIu64
		       ", last index %" PRIu64 "\n",
		       mv->lead->id, mv->lead->addr, mv->term, mv->lead->commit,
		       mv->lead->last_index);
	else if (mv->leader)
		printf("metadata:  no leader answered; the voters of term %" PRIu64
		       " name node %" PRIu32 ", which did not answer\n",
		       mv->term, mv->leader);
	else
		printf("metadata:  no leader (term %" PRIu64 ")\n", mv->term);
	printf("voters:    %s\n", voter_ids(mv, ids, sizeof(ids)));
	for (size_t i = 0; i < mv->n; i++)
		if ((int)strlen(mv->v[i].addr) > aw)
			aw = (int)strlen(mv->v[i].addr);
	printf("  %-4s %-*s %-13s %6s %10s %8s %-12s %10s %10s\n", "ID", aw, "ADDRESS", "ROLE",
	       "TERM", "COMMIT", "LAG", "CONTACT", "SNAPSHOT", "LOG");
	for (size_t i = 0; i < mv->n; i++) {
		const struct voter_view *v = &mv->v[i];
		char lag[24], c[32];
		uint64_t l;

		if (!v->voter)
			continue;
		if (voter_lag(mv, v, &l))
			snprintf(lag, sizeof(lag), "%" PRIu64, l);
		else
			snprintf(lag, sizeof(lag), "-");
		contact(mv, v, c, sizeof(c));
		if (!answered(v)) {
			printf("  %-4" PRIu32 " %-*s %-13s %6s %10s %8s %-12s %10s %10s\n", v->id, aw,
			       v->addr, voter_problem(v, why, sizeof(why)), "-", "-", lag, c, "-",
			       "-");
			continue;
		}
		snprintf(b2, sizeof(b2), "%" PRIu64, v->snap_index);
		printf("  %-4" PRIu32 " %-*s %-13s %6" PRIu64 " %10" PRIu64 " %8s %-12s %10s %10s\n",
		       v->id, aw, v->addr, role_word(v), v->term, v->commit, lag, c, b2,
		       human(v->log_bytes, b1, sizeof(b1)));
	}
	for (size_t i = 0; i < mv->n; i++) {
		const struct voter_view *v = &mv->v[i];

		if (v->voter || !v->in_conf)
			continue;
		printf("  node %" PRIu32 " at %s has \"meta = yes\" in the configuration file but is "
		       "not a voter in the replicated log (%s): set it to no, or make it one with "
		       "'" PROG " meta add %" PRIu32 "'\n",
		       v->id, v->addr, answered(v) ? "it answers" : "it does not answer", v->id);
	}
	quorum_line(mv);
}

/* Say why the voters gave no view at all; returns the exit code. */
static int meta_unanswered(const struct admin *a, const struct meta_view *mv)
{
	char why[256];

	if (mv->unsupported) {
		for (size_t i = 0; i < mv->n; i++) {
			const struct voter_view *v = &mv->v[i];

			if (v->rc == -ETIMEDOUT || v->rc == -EHOSTUNREACH)
				continue;
			fprintf(stderr,
				PROG ": this cluster's daemons do not report replicated metadata "
				     "(node %" PRIu32 " at %s answered META_STAT with: %s%s%s): they "
				     "run the metadata service on one node; '" PROG " status' shows "
				     "it\n",
				v->id, v->addr, strerror(-v->rc), v->why[0] ? ": " : "", v->why);
			break;
		}
		return EXIT_FAIL;
	}
	fprintf(stderr, PROG ": no metadata voter answered META_STAT within %d ms:", a->timeout_ms);
	for (size_t i = 0; i < mv->n; i++)
		fprintf(stderr, "%s node %" PRIu32 " at %s (%s)", i ? "," : "", mv->v[i].id,
			mv->v[i].addr, voter_problem(&mv->v[i], why, sizeof(why)));
	fprintf(stderr, "; is pifs-storaged running there? (see pifs-local status / journalctl)\n");
	return EXIT_FAIL;
}

static int meta_status(struct admin *a)
{
	struct meta_view mv = {0};
	const char *health;
	int rc;

	rc = meta_probe(a, &mv);
	if (rc < 0) {
		fprintf(stderr, PROG ": out of memory while asking the voters\n");
		meta_view_free(&mv);
		return EXIT_FAIL;
	}
	if (!any_answer(&mv)) {
		rc = meta_unanswered(a, &mv);
		meta_view_free(&mv);
		return rc;
	}
	qsort(mv.v, mv.n, sizeof(*mv.v), cmp_voter);
	/* The lead pointer moved with the sort. */
	settle(&mv);
	if (a->json)
		meta_status_json(&mv);
	else
		meta_status_text(&mv);
	health = meta_health(&mv);
	rc = strcmp(health, "ok") == 0 ? EXIT_OK : strcmp(health, "degraded") == 0 ? EXIT_DEGRADED
										  : EXIT_FAIL;
	meta_view_free(&mv);
	return rc;
}

/* ---- meta add, meta remove ---- */

/* Is the change done: @id a voter (@add) or not, in a configuration that the
 * leader has committed? A configuration takes effect once in the log, so the
 * leader's list shows it before it commits: it is committed once the leader
 * said so (@confirmed), or once the commit index reaches the last index of
 * the first look that showed it (*@seen_at, 0 until then). */
static bool change_done(const struct meta_view *mv, uint32_t id, bool add, bool confirmed,
			uint64_t *seen_at)
{
	const struct voter_view *v = voter_of(mv, id);
	bool is_voter = v && v->voter;

	if (!mv->lead || is_voter != add) {
		*seen_at = 0;
		return false;
	}
	if (*seen_at == 0)
		*seen_at = mv->lead->last_index;
	return confirmed || mv->lead->commit >= *seen_at;
}

/* Send META_VOTER to the leader of @mv. Returns 0 (committed), -EAGAIN (not
 * the leader any more: look again), or -errno with the reason in @why. */
static int send_change(struct admin *a, const struct meta_view *mv, uint32_t id, bool add,
		       int try_ms, char *why, size_t cap)
{
	struct pifs_rpc *r = NULL;
	struct pifs_msg req, rep;
	char ep[300];
	int rc;

	why[0] = '\0';
	rc = pifs_conf_endpoint(mv->lead->addr, ep, sizeof(ep));
	if (rc < 0)
		return rc;
	rc = pifs_rpc_new(a->zctx, a->auth, mv->lead->id, ep, &r);
	if (rc < 0)
		return rc;
	pifs_msg_init(&req, PIFS_MSG_META_VOTER);
	req.u.META_VOTER.id = id;
	req.u.META_VOTER.add = add;
	pifs_msg_init(&rep, PIFS_MSG_NONE);
	rc = pifs_rpc_call(r, &req, NULL, 0, &rep, NULL, NULL, try_ms);
	if (rc < 0 && rep.type == PIFS_MSG_R_STATUS && rep.u.R_STATUS.detail.len)
		snprintf(why, cap, "%.*s", (int)rep.u.R_STATUS.detail.len, rep.u.R_STATUS.detail.p);
	if (rc == 0 && rep.type == PIFS_MSG_R_LEADER)
		rc = -EAGAIN;
	else if (rc == 0 && rep.type != PIFS_MSG_R_STATUS)
		rc = -EPROTO;
	pifs_rpc_free(r);
	return rc;
}

/* Refuse a change that the cluster could not carry, saying why. Returns 0
 * to go on, or an exit code. */
static int check_change(const struct meta_view *mv, const struct node_view *n, bool add,
			char *ids, size_t cap)
{
	const struct voter_view *v = voter_of(mv, n->id);
	bool is_voter = v && v->voter;
	size_t after, up_after;

	voter_ids(mv, ids, cap);
	if (add && !node_up(n)) {
		fprintf(stderr,
			PROG ": node %" PRIu32 " at %s is down: a voter that does not answer "
			     "counts against the majority from the moment it is added; start its "
			     "pifs-storaged first (the voters are %s)\n",
			n->id, n->addr, ids);
		return EXIT_FAIL;
	}
	if (add && !is_voter && mv->voters + 1 > PIFS_RAFT_MAX_VOTERS) {
		fprintf(stderr,
			PROG ": there are %zu voters already, the most a cluster may have: remove "
			     "one first (the voters are %s)\n",
			mv->voters, ids);
		return EXIT_FAIL;
	}
	if (add || !is_voter)
		return 0;
	if (mv->voters == 1) {
		fprintf(stderr,
			PROG ": node %" PRIu32 " is the last metadata voter: the cluster cannot "
			     "keep its metadata without one; add another first ('" PROG " meta "
			     "add NODE'), then remove it\n",
			n->id);
		return EXIT_FAIL;
	}
	/* The new set must still have a majority up, or it could never commit
	 * the change that makes it. */
	after = mv->voters - 1;
	up_after = mv->up - (answered(v) ? 1 : 0);
	if (up_after < meta_majority(after)) {
		fprintf(stderr,
			PROG ": removing node %" PRIu32 " would leave %zu voter(s) of which only %zu "
			     "answer%s, short of the majority of %zu: metadata would stop; bring "
			     "the voters that are down back first (see '" PROG " meta status')\n",
			n->id, after, up_after, up_after == 1 ? "s" : "", meta_majority(after));
		return EXIT_FAIL;
	}
	return 0;
}

static void change_json(const struct meta_view *mv, const struct node_view *n, bool add,
			bool changed)
{
	struct json j = {.f = stdout};

	json_open(&j, NULL, '{');
	json_str(&j, "action", add ? "add" : "remove");
	json_u64(&j, "id", n->id);
	json_str(&j, "address", n->addr);
	json_bool(&j, "changed", changed);
	json_u64(&j, "leader", mv->leader);
	json_u64(&j, "term", mv->term);
	json_open(&j, "voters", '[');
	for (size_t i = 0; i < mv->n; i++) {
		if (!mv->v[i].voter)
			continue;
		json_key(&j, NULL);
		fprintf(j.f, "%" PRIu32, mv->v[i].id);
	}
	json_close(&j, ']');
	json_close(&j, '}');
	fputc('\n', stdout);
}

/* What the voter set now survives, for the line after a change. */
static void change_text(const struct meta_view *mv, const struct node_view *n, bool add,
			bool changed)
{
	char ids[128];
	size_t tol = mv->voters - meta_majority(mv->voters);

	voter_ids(mv, ids, sizeof(ids));
	if (!changed)
		printf("node %" PRIu32 " at %s is %s a metadata voter: nothing changed; the voters "
		       "are %s\n",
		       n->id, n->addr, add ? "already" : "not", ids);
	else if (add)
		printf("node %" PRIu32 " at %s is now a metadata voter (leader node %" PRIu32
		       ", term %" PRIu64 "): the voters are %s\n",
		       n->id, n->addr, mv->leader, mv->term, ids);
	else
		printf("node %" PRIu32 " at %s is no longer a metadata voter (leader node %" PRIu32
		       ", term %" PRIu64 "): the voters are %s; its daemon goes on serving "
		       "chunks\n",
		       n->id, n->addr, mv->leader, mv->term, ids);
	if (tol == 0)
		printf("with %zu voter(s), metadata stops if any one is lost: with 3 ('" PROG " meta "
		       "add NODE') it survives the loss of one\n",
		       mv->voters);
	else
		printf("with %zu voters, metadata survives the loss of %zu%s\n", mv->voters, tol,
		       mv->voters % 2 == 0 ? ": an even count survives no more than one fewer" : "");
	if (changed)
		printf("set \"meta = %s\" in the [node %" PRIu32 "] section of the configuration "
		       "file on every machine, so that clients look for the leader among the "
		       "voters\n",
		       add ? "yes" : "no", n->id);
}

static int meta_change(struct admin *a, bool add, const char *word)
{
	struct meta_view mv = {0};
	struct cluster_view cv = {0};
	struct node_view node;
	const struct node_view *n;
	int64_t wait = a->wait_set ? a->wait_ms : META_WAIT_MS;
	int64_t deadline = wait ? pifs_now_ms() + wait : 0;
	uint64_t seen_at = 0;
	char ids[128], why[256] = "";
	bool sent = false, checked = false;
	int rc, last = 0, ex = EXIT_FAIL;

	rc = meta_probe(a, &mv);
	if (rc < 0) {
		fprintf(stderr, PROG ": out of memory while asking the voters\n");
		goto out_free;
	}
	if (!any_answer(&mv)) {
		ex = meta_unanswered(a, &mv);
		goto out_free;
	}
	/* The map comes from the leader: while the voters elect one, wait. */
	while (!mv.lead && (!deadline || pifs_now_ms() < deadline)) {
		pause_ms(POLL_MS);
		if (meta_probe(a, &mv) < 0) {
			fprintf(stderr, PROG ": out of memory while asking the voters\n");
			goto out_free;
		}
	}
	if (!mv.lead) {
		fprintf(stderr,
			PROG ": no metadata leader answered within %" PRId64 "s (%zu of %zu voters "
			     "answer, a majority is %zu): nothing was changed; see '" PROG " meta "
			     "status', then retry\n",
			wait / 1000, mv.up, mv.voters, meta_majority(mv.voters));
		goto out_free;
	}
	/* The map says which node NODE is and whether it is up. */
	if (fetch_cluster(a, &cv) < 0)
		goto out_free;
	n = node_named(&cv, word);
	if (!n)
		goto out_free;
	node = *n;
	for (;;) {
		int64_t now = pifs_now_ms(), left = deadline ? deadline - now : INT32_MAX;

		if (change_done(&mv, node.id, add, sent && last == 0, &seen_at)) {
			if (a->json)
				change_json(&mv, &node, add, sent);
			else
				change_text(&mv, &node, add, sent);
			ex = EXIT_OK;
			break;
		}
		if (left <= 0)
			break;
		/* Judged on the first look with a leader: before that, the voter
		 * set is not known. */
		if (mv.lead && !checked) {
			ex = check_change(&mv, &node, add, ids, sizeof(ids));
			if (ex != 0)
				goto out_free;
			ex = EXIT_FAIL;
			checked = true;
		}
		if (mv.lead && seen_at == 0) {
			/* One try lasts until the deadline: the leader answers once the
			 * change is committed, and a new voter may first need the whole
			 * log. A leader that dies meanwhile costs the rest of the wait. */
			last = send_change(a, &mv, node.id, add,
					   left > INT32_MAX ? INT32_MAX : (int)left, why,
					   sizeof(why));
			sent = true;
			if (last < 0 && last != -EAGAIN && last != -EBUSY && last != -ETIMEDOUT &&
			    last != -EHOSTUNREACH && last != -ECONNREFUSED) {
				fprintf(stderr,
					PROG ": the leader, node %" PRIu32 " at %s, refused to %s "
					     "node %" PRIu32 " %s the voters: %s%s%s; see its log\n",
					mv.lead->id, mv.lead->addr, add ? "add" : "remove", node.id,
					add ? "to" : "from", strerror(-last), why[0] ? ": " : "",
					why);
				goto out_free;
			}
		} else {
			last = mv.lead ? -EINPROGRESS : -ENOENT;
		}
		if (last != 0)
			pause_ms(POLL_MS);
		rc = meta_probe(a, &mv);
		if (rc < 0) {
			fprintf(stderr, PROG ": out of memory while asking the voters\n");
			goto out_free;
		}
	}
	if (ex == EXIT_OK)
		goto out_free;
	voter_ids(&mv, ids, sizeof(ids));
	if (last == -EBUSY)
		fprintf(stderr,
			PROG ": another change of the voters is in progress (not committed yet) "
			     "and was still after %" PRId64 "s: wait until '" PROG " meta status' "
			     "shows every voter up and following, and retry (the voters are %s)\n",
			wait / 1000, ids);
	else if (!mv.lead)
		fprintf(stderr,
			PROG ": no metadata leader answered within %" PRId64 "s (%zu of %zu voters "
			     "answer, a majority is %zu): nothing was changed that can be seen; see "
			     "'" PROG " meta status', then retry\n",
			wait / 1000, mv.up, mv.voters, meta_majority(mv.voters));
	else
		fprintf(stderr,
			PROG ": the change of node %" PRIu32 " was not committed within %" PRId64
			     "s (%s): it may still be; see '" PROG " meta status' (the voters are "
			     "now %s), and retry with a longer --timeout\n",
			node.id, wait / 1000,
			last == -EINPROGRESS ? "in the log, waiting for a majority"
					     : strerror(-last),
			ids);
out_free:
	free(cv.nodes);
	meta_view_free(&mv);
	return ex;
}

int meta_check(const struct admin *a)
{
	const char *verb = a->argv[0];
	bool status = strcmp(verb, "status") == 0;

	if (!status && strcmp(verb, "add") && strcmp(verb, "remove")) {
		fprintf(stderr,
			PROG ": meta %s: unknown; say meta status, add or remove (see '" PROG
			     " meta --help')\n",
			verb);
		fprintf(stderr, "Try '" PROG " --help'.\n");
		return EXIT_USAGE;
	}
	if (status != (a->argc == 1)) {
		fprintf(stderr, PROG ": meta %s takes %s\nTry '" PROG " --help'.\n", verb,
			status ? "no NODE" : "one NODE");
		return EXIT_USAGE;
	}
	if (status && a->wait_set) {
		fprintf(stderr,
			PROG ": meta status takes no --timeout after it: give it before 'meta' (how "
			     "long each voter may take to answer)\nTry '" PROG " --help'.\n");
		return EXIT_USAGE;
	}
	return -1;
}

int cmd_meta(struct admin *a)
{
	if (strcmp(a->argv[0], "status") == 0)
		return meta_status(a);
	return meta_change(a, strcmp(a->argv[0], "add") == 0, a->argv[1]);
}

const char meta_help[] =
    "Usage: " PROG " [-c FILE] [--json] [--timeout DUR] meta status\n"
    "       " PROG " [-c FILE] [--json] meta add NODE [--timeout DUR]\n"
    "       " PROG " [-c FILE] [--json] meta remove NODE [--timeout DUR]\n"
    "\n"
    "The metadata log is replicated over the metadata voters with Raft: one voter\n"
    "leads and answers every metadata request, and a change is made once a majority\n"
    "of the voters holds it. Metadata is served while a majority of the voters is up:\n"
    "with 3 voters one may be lost, with 5 two; with 1 or 2, none. NODE is a node id or\n"
    "address, as '" PROG " nodes' shows them.\n"
    "\n"
    "  status        ask every voter for its own view (the voters of the configuration\n"
    "                file, and those the answers name) and print, per voter:\n"
    "                  ROLE      leader, follower, pre-candidate or candidate; or why it\n"
    "                            did not answer (unreachable: down or cut off)\n"
    "                  TERM      its election term (one above the others: it is trying to\n"
    "                            start an election, cut off from the leader)\n"
    "                  COMMIT    the last log index it knows is committed\n"
    "                  LAG       entries it lacks of the leader's log, as the leader sees\n"
    "                  CONTACT   when it last answered the leader\n"
    "                  SNAPSHOT  the index of its last snapshot; LOG the bytes of its log\n"
    "                then whether a majority is up and what losing one more voter does.\n"
    "  add NODE      make NODE a voter: the leader sends it the log (or a snapshot)\n"
    "                and the command returns once the new voter set is committed.\n"
    "                Refused while NODE is down. One change at a time: while another is\n"
    "                not committed, it waits and tries again. Already a voter: nothing\n"
    "                changes, exit 0.\n"
    "  remove NODE   make NODE no longer a voter (its daemon goes on serving chunks);\n"
    "                refused for the last voter, and when the voters left would not\n"
    "                have a majority up. The leader may remove itself: another is\n"
    "                elected. Not a voter: nothing changes, exit 0.\n"
    "  -t, --timeout DUR  after add or remove: how long to wait for the change to be\n"
    "                committed, through elections and other changes (default 30s; 0:\n"
    "                no limit). Before 'meta' it is, as for every command, how long\n"
    "                each voter may take to answer.\n"
    "\n"
    "After add or remove, set \"meta =\" in the configuration file to match, so that\n"
    "clients and " PROG " find a voter even when others are down.\n"
    "\n"
    "JSON (status): leader and leader_address (the leader that answered, else null),\n"
    "named_leader (whom the voters follow, even if it did not answer), term, commit,\n"
    "last_index, voters_total, voters_up, majority, quorum, can_lose (voters that may\n"
    "still be lost; -1 without a majority), health (ok, degraded, down), voters: [{id,\n"
    "address, reachable, role, term, commit, applied, last_index, snap_index, log_bytes,\n"
    "match, synced, lag, contact_ms, error}] (null where unknown), not_voters: [{id,\n"
    "address, reachable, in_conf}]. add, remove: action, id, address, changed, leader,\n"
    "term, voters.\n"
    "\n"
    "Exit status: status: 0 a leader answers and so does every voter; 3 a voter is down\n"
    "but a majority is up; 1 no leader, or no majority (metadata is stopped). add,\n"
    "remove: 0 the change is committed, or there was nothing to change; 1 refused (the\n"
    "reason is printed), no leader, or not committed in time. 2 bad command line or\n"
    "configuration file.\n"
    "\n"
    "Examples:\n"
    "  " PROG " meta status\n"
    "  " PROG " meta status --json | jq -r .leader\n"
    "  " PROG " meta add 2 && " PROG " meta add 3\n"
    "  " PROG " meta remove 3 --timeout 1m\n";
