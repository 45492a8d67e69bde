/* health.c - the virtual extended attributes user.pifs.status and
 * user.pifs.chunks. */
#include "health.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "plan.h"

#define STATUS_MAX 1024

bool pifs_health_reserved(const char *name)
{
	return strncmp(name, PIFS_HEALTH_PREFIX, strlen(PIFS_HEALTH_PREFIX)) == 0;
}

/* The slots of inode @ino that hold a chunk: *@idx and *@ids (malloc'd,
 * the caller frees them), *@n of them. */
static int chunk_list(struct pifs_cluster *cl, uint64_t ino, uint64_t **idx,
		      struct pifs_chunk_id **ids, size_t *n)
{
	struct pifs_msg req, rep;
	struct pifs_cursor cur;
	struct pifs_chunkref r;
	size_t k = 0;
	int rc;

	*idx = NULL;
	*ids = NULL;
	*n = 0;
	pifs_msg_init(&req, PIFS_MSG_OPEN);
	req.u.OPEN.ino = ino;
	rc = pifs_cluster_meta_call(cl, &req, &rep);
	if (rc < 0)
		return rc;
	if (rep.type != PIFS_MSG_R_FILE)
		return -EPROTO;
	if (!S_ISREG(rep.u.R_FILE.attr.mode))
		return -ENODATA;
	/* The list borrows the thread's metacall until its next metadata call. */
	*idx = malloc((rep.u.R_FILE.refs.count ? rep.u.R_FILE.refs.count : 1) * sizeof(**idx));
	*ids = malloc((rep.u.R_FILE.refs.count ? rep.u.R_FILE.refs.count : 1) * sizeof(**ids));
	if (!*idx || !*ids)
		return -ENOMEM;
	pifs_cursor_init(&cur, &rep.u.R_FILE.refs);
	while (k < rep.u.R_FILE.refs.count && (rc = pifs_chunkref_next(&cur, &r)) == 1) {
		if (pifs_chunk_id_is_zero(&r.id))
			continue;
		(*idx)[k] = r.index;
		(*ids)[k] = r.id;
		k++;
	}
	*n = k;
	return rc < 0 ? rc : 0;
}

static int format_status(const struct pifs_cluster_has *h, const uint64_t *idx, size_t n,
			 uint32_t replicas, struct pifs_buf *out)
{
	struct pifs_plan_copies *c = calloc(n ? n : 1, sizeof(*c));
	uint32_t *silent = calloc(h->nnodes ? h->nnodes : 1, sizeof(*silent));
	size_t nsilent = 0;
	int rc = -ENOMEM, w;

	if (!c || !silent)
		goto out_free;
	for (size_t i = 0; i < h->nnodes; i++)
		if (h->err[i])
			silent[nsilent++] = h->nodes[i];
	for (size_t k = 0; k < n; k++) {
		c[k].index = idx[k];
		for (size_t i = 0; i < h->nnodes; i++) {
			if (h->err[i] || !h->have[i * n + k])
				continue;
			if (c[k].copies < PIFS_PLAN_MAX_CHAIN)
				c[k].node[c[k].copies] = h->nodes[i];
			c[k].copies++;
		}
	}
	rc = pifs_buf_reserve(out, STATUS_MAX);
	if (rc < 0)
		goto out_free;
	w = pifs_plan_health(c, n, replicas, silent, nsilent, (char *)out->p, STATUS_MAX);
	out->len = w < STATUS_MAX ? (size_t)w : STATUS_MAX - 1;
out_free:
	free(silent);
	free(c);
	return rc;
}

static int format_chunks(const struct pifs_cluster_has *h, const uint64_t *idx,
			 const struct pifs_chunk_id *ids, size_t n, struct pifs_buf *out)
{
	char line[128];
	int rc = 0;

	for (size_t k = 0; k < n && rc == 0; k++) {
		char hex[33];
		bool any = false;
		int w;

		pifs_chunk_id_hex(&ids[k], hex);
		w = snprintf(line, sizeof(line), "%" PRIu64 " %s ", idx[k], hex);
		rc = pifs_buf_append(out, line, (size_t)w);
		for (size_t i = 0; i < h->nnodes && rc == 0; i++) {
			if (h->err[i] || !h->have[i * n + k])
				continue;
			w = snprintf(line, sizeof(line), "%s%" PRIu32, any ? "," : "", h->nodes[i]);
			rc = pifs_buf_append(out, line, (size_t)w);
			any = true;
		}
		if (rc == 0)
			rc = pifs_buf_append(out, any ? "\n" : "-\n", any ? 1 : 2);
	}
	return rc;
}

int pifs_health_get(struct pifs_cluster *cl, uint64_t ino, const char *name, char **out,
		    size_t *len)
{
	bool status = strcmp(name, PIFS_HEALTH_PREFIX "status") == 0;
	bool chunks = strcmp(name, PIFS_HEALTH_PREFIX "chunks") == 0;
	struct pifs_cluster_has h = {0};
	struct pifs_chunk_id *ids = NULL;
	uint64_t *idx = NULL;
	struct pifs_buf b;
	size_t n = 0;
	int rc;

	*out = NULL;
	*len = 0;
	if (!status && !chunks)
		return -ENODATA;
	pifs_buf_init(&b);
	rc = chunk_list(cl, ino, &idx, &ids, &n);
	if (rc == 0)
		rc = pifs_cluster_has(cl, ids, n, &h);
	if (rc < 0)
		goto out_free;
	if (status)
		rc = format_status(&h, idx, n, pifs_cluster_replicas(cl), &b);
	else
		rc = format_chunks(&h, idx, ids, n, &b);
	if (rc == 0)
		rc = pifs_buf_append(&b, "", 1);
	if (rc < 0)
		goto out_free;
	*len = b.len - 1;
	*out = (char *)b.p;
	pifs_buf_init(&b);
out_free:
	pifs_buf_fini(&b);
	pifs_cluster_has_fini(&h);
	free(ids);
	free(idx);
	return rc;
}
