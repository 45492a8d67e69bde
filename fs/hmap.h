/* hmap.h - an open-addressing hash set of pointers, for the metadata indexes.
 *
 * The map stores pointers to the caller's elements (it never owns them) in
 * one array of 8-byte slots, probed linearly and kept at most 3/4 full; a
 * removal shifts the following slots back, so there are no tombstones and a
 * lookup never slows down with churn. That costs about 11 to 16 bytes per
 * element, which matters with a million inodes on a Pi with 1 GiB of RAM.
 *
 * The caller gives two functions at init: the hash of a stored element (used
 * when the table grows or shifts) and the equality of an element with a key
 * (any type the caller likes: an inode number, a (parent, name) pair). The
 * hash of a key passed to find or remove must equal the hash of the element
 * that matches it.
 *
 * Iteration order depends on the table's history: never let it reach
 * anything that must be deterministic.
 *
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_HMAP_H
#define PIFS_HMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pifs_hmap {
	void **slot; /* owned; @mask + 1 slots, NULL when empty */
	size_t mask;
	size_t count;
	uint64_t (*hash)(const void *elem);
	bool (*eq)(const void *elem, const void *key);
};

/* An empty map (no memory until the first insert). */
void pifs_hmap_init(struct pifs_hmap *h, uint64_t (*hash)(const void *elem),
		    bool (*eq)(const void *elem, const void *key));

/* Free the slot array (not the elements) and leave @h empty. NULL-safe. */
void pifs_hmap_fini(struct pifs_hmap *h);

/* Make room for @n elements in all, so that inserts up to that count cannot
 * fail. Returns 0 or -ENOMEM. */
int pifs_hmap_reserve(struct pifs_hmap *h, size_t n);

/* The element matching @key (borrowed), whose hash is @hash, or NULL. */
void *pifs_hmap_find(const struct pifs_hmap *h, uint64_t hash, const void *key);

/* Add @elem (borrowed: it must stay valid until removed), which must not
 * match any element already present. Returns 0 or -ENOMEM. */
int pifs_hmap_insert(struct pifs_hmap *h, void *elem);

/* Remove and return the element matching @key, or NULL if there is none. */
void *pifs_hmap_remove(struct pifs_hmap *h, uint64_t hash, const void *key);

/* Walk the elements: start with *@pos = 0; returns the next element, or NULL
 * at the end. The map must not change during a walk. */
void *pifs_hmap_next(const struct pifs_hmap *h, size_t *pos);

/* A 64-bit mix of @x (the finaliser of MurmurHash3), for integer keys. */
static inline uint64_t pifs_hmap_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
