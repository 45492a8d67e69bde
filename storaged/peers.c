/* peers.c - one request socket per other node, for a background thread. */
#include "peers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pifs_peers_init(struct pifs_peers *p, void *zctx, struct pifs_auth *auth,
		     struct pifs_nodemap *map)
{
	memset(p, 0, sizeof(*p));
	p->zctx = zctx;
	p->auth = auth;
	p->map = map;
}

void pifs_peers_fini(struct pifs_peers *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		pifs_rpc_free(p->v[i].rpc);
	free(p->v);
	p->v = NULL;
	p->n = p->cap = 0;
}

int pifs_peers_get(struct pifs_peers *p, uint32_t id, struct pifs_rpc **out)
{
	struct pifs_peer_sock *s = NULL, *nv;
	char ep[300];
	size_t i;
	int rc;

	rc = pifs_nodemap_endpoint(p->map, id, ep, sizeof(ep));
	if (rc < 0)
		return rc;
	for (i = 0; i < p->n && !s; i++)
		if (p->v[i].id == id)
			s = &p->v[i];
	if (!s) {
		if (p->n == p->cap) {
			size_t cap = p->cap ? 2 * p->cap : 8;

			nv = realloc(p->v, cap * sizeof(*nv));
			if (!nv)
				return -ENOMEM;
			p->v = nv;
			p->cap = cap;
		}
		s = &p->v[p->n++];
		memset(s, 0, sizeof(*s));
		s->id = id;
	}
	if (s->rpc && strcmp(s->endpoint, ep) != 0) {
		pifs_rpc_free(s->rpc);
		s->rpc = NULL;
	}
	if (!s->rpc) {
		rc = pifs_rpc_new(p->zctx, p->auth, id, ep, &s->rpc);
		if (rc < 0)
			return rc;
		snprintf(s->endpoint, sizeof(s->endpoint), "%s", ep);
	}
	pifs_rpc_set_epoch(s->rpc, pifs_nodemap_epoch(p->map));
	*out = s->rpc;
	return 0;
}
