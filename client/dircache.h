/* dircache.h - the attributes of directories this mount just changed.
 *
 * With default_permissions the kernel checks a directory's mode before every
 * create or unlink in it, and every such change invalidates the attributes
 * it holds of the directory: without this cache each create and each unlink
 * would cost a GETATTR round trip before its own. The metadata service
 * answers a create, link, unlink or rmdir with the directory as the change
 * left it; that is kept here and answers the kernel's next GETATTR of it,
 * once, if it comes within the attribute timeout. The kernel could not have
 * been told fresher attributes, and would have kept them as long.
 *
 * Thread-safe: one mutex. No I/O. */
#ifndef PIFS_CLIENT_DIRCACHE_H
#define PIFS_CLIENT_DIRCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct pifs_dircache;

/* A cache whose entries are good for @ttl_ns after they were put, or NULL. */
struct pifs_dircache *pifs_dircache_new(int64_t ttl_ns);

/* NULL-safe. */
void pifs_dircache_free(struct pifs_dircache *dc);

/* Keep @a (borrowed; a directory's attributes as the metadata service gave
 * them at @now_ns), replacing what was kept of that directory unless that is
 * newer (a later ctime). */
void pifs_dircache_put(struct pifs_dircache *dc, const struct pifs_attr *a, int64_t now_ns);

/* Take what was kept of directory @ino into @a (OUT) if it was put less than
 * the ttl before @now_ns; *@left_ns (OUT) is what remains of the ttl. The
 * entry is gone after it, taken or expired. Returns whether @a was set. */
bool pifs_dircache_take(struct pifs_dircache *dc, uint64_t ino, int64_t now_ns,
			struct pifs_attr *a, int64_t *left_ns);

/* Forget directory @ino: this mount changed it in a way whose result it was
 * not told (a rename, a chmod), or another mount may have. */
void pifs_dircache_drop(struct pifs_dircache *dc, uint64_t ino);

#endif
