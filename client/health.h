/* health.h - the virtual extended attributes user.pifs.*: what any user who
 * can read a file's attributes learns about its copies, no admin rights
 * needed.
 *
 *   user.pifs.status  one line: "healthy: 16 chunks, 2 copies each",
 *                     "degraded: ...", "unreadable: ..." (plan.h)
 *   user.pifs.chunks  one line per chunk: "INDEX ID NODES", NODES the live
 *                     nodes holding a copy, comma-separated, or "-"
 *
 * Both are computed at each read from the file's committed chunk list and a
 * CHUNK_HAS to every live node; data this mount has not committed yet is not
 * in them. The names are not listed by listxattr, and the whole user.pifs.
 * namespace is reserved: setting or removing a name in it is refused.
 *
 * Thread-safe. */
#ifndef PIFS_CLIENT_HEALTH_H
#define PIFS_CLIENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

#define PIFS_HEALTH_PREFIX "user.pifs."

/* Whether @name is in the reserved user.pifs. namespace. */
bool pifs_health_reserved(const char *name);

/* The value of the virtual attribute @name of inode @ino into *@out
 * (malloc'd, the caller frees it; NUL-terminated, *@len bytes without the
 * NUL). Returns 0; -ENODATA for another name in the namespace or an inode
 * that is not a regular file; the -errno of the metadata service (-ENOENT);
 * -EBADMSG for a malformed chunk list; or -ENOMEM. */
int pifs_health_get(struct pifs_cluster *cl, uint64_t ino, const char *name, char **out /* OUT */,
		    size_t *len /* OUT */);

#endif
