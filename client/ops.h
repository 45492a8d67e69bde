/* ops.h - the FUSE low-level operations of pifs-mount.
 *
 * FUSE node ids are pifs inode numbers (the root is 1 in both), so lookups
 * need no table and forget has nothing to free. This is the one file that
 * answers the kernel (fuse_reply_*); everything it calls returns 0/-errno
 * and the errno goes to the kernel unchanged. */
#ifndef PIFS_CLIENT_OPS_H
#define PIFS_CLIENT_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "cluster.h"
#include "data.h"
#include "dircache.h"

/* The state of one mount, the session's userdata. @cl and @data are set
 * before the session loop starts and stay until it ended. */
struct pifs_mount {
	struct pifs_cluster *cl;
	struct pifs_data *data;
	struct pifs_dircache *dirs;
	double attr_timeout;
	double entry_timeout;
};

/* The operations table, for fuse_session_new. */
const struct fuse_lowlevel_ops *pifs_ops_table(void);

#endif
