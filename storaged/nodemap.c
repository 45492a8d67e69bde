/* nodemap.c - the cluster map as this daemon last heard it. */
#include "nodemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pifs_nodemap_init(struct pifs_nodemap *m, const struct pifs_conf *conf)
{
	pthread_mutex_init(&m->lock, NULL);
	atomic_init(&m->epoch, 0);
	m->n = 0;
	m->nodes = NULL;
	m->replicas = conf->replicas;
	m->conf = conf;
}

void pifs_nodemap_fini(struct pifs_nodemap *m)
{
	free(m->nodes);
	m->nodes = NULL;
	m->n = 0;
	pthread_mutex_destroy(&m->lock);
}

int pifs_nodemap_install(struct pifs_nodemap *m, const struct pifs_msg_R_MAP *r)
{
	struct pifs_nodemap_entry *nodes, *old;
	struct pifs_cursor c;
	struct pifs_node n;
	size_t i = 0;
	int rc;

	if (r->epoch <= pifs_nodemap_epoch(m))
		return 0;
	nodes = calloc(r->nodes.count ? r->nodes.count : 1, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	pifs_cursor_init(&c, &r->nodes);
	while (i < r->nodes.count && (rc = pifs_node_next(&c, &n)) == 1) {
		nodes[i].id = n.id;
		nodes[i].weight = n.weight;
		nodes[i].flags = n.flags;
		if (pifs_str_copy(n.addr, nodes[i].addr, sizeof(nodes[i].addr)) < 0)
			break;
		i++;
	}
	if (i != r->nodes.count) {
		free(nodes);
		return -EBADMSG;
	}
	pthread_mutex_lock(&m->lock);
	old = m->nodes;
	m->nodes = nodes;
	m->n = i;
	m->replicas = r->replicas;
	atomic_store(&m->epoch, r->epoch);
	pthread_mutex_unlock(&m->lock);
	free(old);
	return 1;
}

int pifs_nodemap_endpoint(struct pifs_nodemap *m, uint32_t id, char *out, size_t cap)
{
	const struct pifs_conf_node *cn;
	char addr[256] = "";
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n; i++) {
		if (m->nodes[i].id == id) {
			memcpy(addr, m->nodes[i].addr, sizeof(addr));
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	if (!addr[0]) {
		cn = pifs_conf_node(m->conf, id);
		if (!cn)
			return -ENOENT;
		memcpy(addr, cn->addr, sizeof(addr));
	}
	return pifs_conf_endpoint(addr, out, cap);
}

int pifs_nodemap_flags(struct pifs_nodemap *m, uint32_t id, uint32_t *flags)
{
	int rc = -ENOENT;
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n; i++) {
		if (m->nodes[i].id == id) {
			*flags = m->nodes[i].flags;
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

bool pifs_nodemap_is_down(struct pifs_nodemap *m, uint32_t id)
{
	bool down = false;
	size_t i;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->n; i++) {
		if (m->nodes[i].id == id) {
			down = !(m->nodes[i].flags & PIFS_NODE_UP);
			break;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return down;
}

int pifs_nodemap_copy(struct pifs_nodemap *m, struct pifs_nodemap_entry **nodes, size_t *n,
		      uint32_t *replicas, uint64_t *epoch)
{
	struct pifs_nodemap_entry *copy;

	pthread_mutex_lock(&m->lock);
	copy = malloc((m->n ? m->n : 1) * sizeof(*copy));
	if (!copy) {
		pthread_mutex_unlock(&m->lock);
		return -ENOMEM;
	}
	if (m->n)
		memcpy(copy, m->nodes, m->n * sizeof(*copy));
	*nodes = copy;
	*n = m->n;
	*replicas = m->replicas;
	*epoch = pifs_nodemap_epoch(m);
	pthread_mutex_unlock(&m->lock);
	return 0;
}
