/* cache.h - the chunk cache of a mount: decoded chunks by id.
 *
 * Entries are the raw bytes of chunks, least recently used first out when
 * the bytes held pass the capacity. Readers hold a reference while they copy
 * from an entry, so an entry pushed out meanwhile is freed only when its last
 * reference goes. A missing chunk is fetched once however many threads want
 * it: the first lookup reserves the entry and loads it, the others wait for
 * it (the kernel sends many reads of one chunk at once).
 *
 * Thread-safe: one mutex. No I/O. */
#ifndef PIFS_CLIENT_CACHE_H
#define PIFS_CLIENT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct pifs_ccache;

/* One cached chunk. @data and @len are valid while the caller holds a
 * reference and the entry was filled. */
struct pifs_centry {
	struct pifs_chunk_id id;
	uint8_t *data; /* owned by the cache; @len raw bytes */
	uint32_t len;
	/* Private to cache.c. */
	int refs;
	int state;
	int err;
	bool in_table;
	struct pifs_centry *hnext;
	struct pifs_centry *lprev, *lnext;
};

/* A cache that keeps at most @cap bytes of chunks, or NULL. Freed with
 * pifs_ccache_free once no entry is referenced. */
struct pifs_ccache *pifs_ccache_new(uint64_t cap);

void pifs_ccache_free(struct pifs_ccache *c);

/* Find chunk @id. Returns 0 with *@out a reference to the filled entry;
 * 1 when the chunk is not cached: *@out is then a new entry reserved for
 * the caller, who must load it and call pifs_ccache_fill or pifs_ccache_fail
 * (other lookups of @id wait meanwhile); the -errno a failed load passed to
 * pifs_ccache_fail, for the lookups that waited for it; or -ENOMEM. Release
 * the reference with pifs_ccache_release in every case but an error. */
int pifs_ccache_lookup(struct pifs_ccache *c, const struct pifs_chunk_id *id,
		       struct pifs_centry **out /* OUT */);

/* As pifs_ccache_lookup, but never waits: returns 1 with a reserved entry
 * (as above) when the chunk is neither cached nor being loaded, 0 with no
 * reference otherwise, or -ENOMEM. For prefetching. */
int pifs_ccache_reserve(struct pifs_ccache *c, const struct pifs_chunk_id *id,
			struct pifs_centry **out /* OUT */);

/* Complete the reserved entry @e with @len bytes at @data (malloc'd; the
 * cache takes it) and wake the waiters. The caller keeps its reference. */
void pifs_ccache_fill(struct pifs_ccache *c, struct pifs_centry *e, uint8_t *data, uint32_t len);

/* Give up loading the reserved entry @e: the waiters get @err (a -errno),
 * later lookups try again. The caller keeps its reference. */
void pifs_ccache_fail(struct pifs_ccache *c, struct pifs_centry *e, int err);

/* Take one more reference to @e, which the caller holds. */
void pifs_ccache_hold(struct pifs_ccache *c, struct pifs_centry *e);

/* Wait until the entry @e, which the caller holds, is filled or failed.
 * Returns 0, or the -errno its loader passed to pifs_ccache_fail. */
int pifs_ccache_wait(struct pifs_ccache *c, struct pifs_centry *e);

/* Drop a reference. NULL-safe. */
void pifs_ccache_release(struct pifs_ccache *c, struct pifs_centry *e);

/* Bytes of the filled entries the cache holds now. */
uint64_t pifs_ccache_bytes(struct pifs_ccache *c);

/* Whether chunk @id is cached and filled now. */
bool pifs_ccache_contains(struct pifs_ccache *c, const struct pifs_chunk_id *id);

#endif
