/* hmap.c - an open-addressing hash set of pointers (linear probing,
 * backward-shift deletion). */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>

#define MIN_SLOTS 16

void pifs_hmap_init(struct pifs_hmap *h, uint64_t (*hash)(const void *elem),
		    bool (*eq)(const void *elem, const void *key))
{
	h->slot = NULL;
	h->mask = 0;
	h->count = 0;
	h->hash = hash;
	h->eq = eq;
}

void pifs_hmap_fini(struct pifs_hmap *h)
{
	if (!h)
		return;
	free(h->slot);
	h->slot = NULL;
	h->mask = 0;
	h->count = 0;
}

/* Put @elem in the first free slot of its probe sequence; the table has one. */
static void place(void **slot, size_t mask, uint64_t hash, void *elem)
{
	size_t i = (size_t)hash & mask;

	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = elem;
}

static int grow(struct pifs_hmap *h, size_t nslots)
{
	void **slot = calloc(nslots, sizeof(*slot));
	size_t i;

	if (!slot)
		return -ENOMEM;
	if (h->slot)
		for (i = 0; i <= h->mask; i++)
			if (h->slot[i])
				place(slot, nslots - 1, h->hash(h->slot[i]), h->slot[i]);
	free(h->slot);
	h->slot = slot;
	h->mask = nslots - 1;
	return 0;
}

int pifs_hmap_reserve(struct pifs_hmap *h, size_t n)
{
	size_t nslots = h->slot ? h->mask + 1 : 0;
	size_t want = MIN_SLOTS;

	/* At most 3/4 full: linear probing stays short below that. */
	if (n > SIZE_MAX / 8)
		return -ENOMEM;
	while (want / 4 * 3 < n)
		want *= 2;
	if (want <= nslots)
		return 0;
	return grow(h, want);
}

void *pifs_hmap_find(const struct pifs_hmap *h, uint64_t hash, const void *key)
{
	size_t i;

	if (!h->slot)
		return NULL;
	for (i = (size_t)hash & h->mask; h->slot[i]; i = (i + 1) & h->mask)
		if (h->eq(h->slot[i], key))
			return h->slot[i];
	return NULL;
}

int pifs_hmap_insert(struct pifs_hmap *h, void *elem)
{
	int rc = pifs_hmap_reserve(h, h->count + 1);

	if (rc < 0)
		return rc;
	place(h->slot, h->mask, h->hash(elem), elem);
	h->count++;
	return 0;
}

void *pifs_hmap_remove(struct pifs_hmap *h, uint64_t hash, const void *key)
{
	size_t i, j, home;
	void *found;

	if (!h->slot)
		return NULL;
	for (i = (size_t)hash & h->mask; h->slot[i]; i = (i + 1) & h->mask)
		if (h->eq(h->slot[i], key))
			break;
	found = h->slot[i];
	if (!found)
		return NULL;
	/* Shift back every following element of the run that may move into
	 * the hole: one whose home slot is not cyclically in (hole, j]. */
	for (j = (i + 1) & h->mask; h->slot[j]; j = (j + 1) & h->mask) {
		home = (size_t)h->hash(h->slot[j]) & h->mask;
		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slot[i] = h->slot[j];
			i = j;
		}
	}
	h->slot[i] = NULL;
	h->count--;
	return found;
}

void *pifs_hmap_next(const struct pifs_hmap *h, size_t *pos)
{
	if (!h->slot)
		return NULL;
	while (*pos <= h->mask) {
		void *e = h->slot[(*pos)++];

		if (e)
			return e;
	}
	return NULL;
}
