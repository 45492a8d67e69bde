/* ops.c - the FUSE low-level operations: requests to the metadata service,
 * file data through data.c, and every reply to the kernel. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "health.h"
#include "rpc.h"
#include "log.h"
#include "meta.h"

#define BLKSIZE (1u << 20) /* st_blksize: cp and friends then use 1 MiB buffers */
#define STATFS_BSIZE 4096

static struct pifs_mount *mnt_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pifs_file *file_of(struct fuse_file_info *fi)
{
	return (struct pifs_file *)(uintptr_t)fi->fh;
}

static void reply_err(fuse_req_t req, int rc)
{
	fuse_reply_err(req, rc < 0 ? -rc : rc);
}

static struct timespec ts_of(int64_t ns)
{
	struct timespec ts;

	ts.tv_sec = ns / 1000000000;
	ts.tv_nsec = ns % 1000000000;
	if (ts.tv_nsec < 0) {
		ts.tv_sec--;
		ts.tv_nsec += 1000000000;
	}
	return ts;
}

static int64_t ns_of(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void stat_of(const struct pifs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = BLKSIZE;
	st->st_atim = ts_of(a->atime);
	st->st_mtim = ts_of(a->mtime);
	st->st_ctim = ts_of(a->ctime);
}

static void entry_of(struct pifs_mount *m, const struct pifs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = 1;
	stat_of(a, &e->attr);
	e->attr_timeout = m->attr_timeout;
	e->entry_timeout = m->entry_timeout;
}

static int check_name(const char *name)
{
	return strlen(name) > PIFS_META_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* After the change @req (answered @rc, @rep): keep what the service told
 * of the directory it changed, and forget the directories it changed, or
 * may have, without saying how (dircache.h). */
static void note_dirs(struct pifs_mount *m, const struct pifs_msg *req, int rc,
		      const struct pifs_msg *rep)
{
	if (pifs_proto_kind(req->type) != PIFS_KIND_MUT)
		return;
	if (rc == 0 && rep->type == PIFS_MSG_R_ATTR && rep->u.R_ATTR.dir.ino) {
		pifs_dircache_put(m->dirs, &rep->u.R_ATTR.dir, pifs_now_ns());
		return;
	}
	switch (req->type) {
	case PIFS_MSG_MKNOD:
		pifs_dircache_drop(m->dirs, req->u.MKNOD.parent);
		break;
	case PIFS_MSG_SYMLINK:
		pifs_dircache_drop(m->dirs, req->u.SYMLINK.parent);
		break;
	case PIFS_MSG_LINK:
		pifs_dircache_drop(m->dirs, req->u.LINK.parent);
		break;
	case PIFS_MSG_UNLINK:
		pifs_dircache_drop(m->dirs, req->u.UNLINK.parent);
		break;
	case PIFS_MSG_RMDIR:
		pifs_dircache_drop(m->dirs, req->u.RMDIR.parent);
		break;
	case PIFS_MSG_RENAME:
		pifs_dircache_drop(m->dirs, req->u.RENAME.parent);
		pifs_dircache_drop(m->dirs, req->u.RENAME.newparent);
		break;
	case PIFS_MSG_SETATTR:
		pifs_dircache_drop(m->dirs, req->u.SETATTR.ino);
		break;
	case PIFS_MSG_SETXATTR:
		pifs_dircache_drop(m->dirs, req->u.SETXATTR.ino);
		break;
	case PIFS_MSG_REMOVEXATTR:
		pifs_dircache_drop(m->dirs, req->u.REMOVEXATTR.ino);
		break;
	default:
		break;
	}
}

static int call(struct pifs_mount *m, struct pifs_msg *req, struct pifs_msg *rep)
{
	int rc = pifs_cluster_meta_call(m->cl, req, rep);

	note_dirs(m, req, rc, rep);
	return rc;
}

/* Send a mutation that answers R_ATTR and reply with the new entry. */
static void reply_entry_call(fuse_req_t req, struct pifs_msg *msg)
{
	struct pifs_mount *m = mnt_of(req);
	struct fuse_entry_param e;
	struct pifs_msg rep;
	int rc = call(m, msg, &rep);

	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	entry_of(m, &rep.u.R_ATTR.attr, &e);
	fuse_reply_entry(req, &e);
}

static void reply_status_call(fuse_req_t req, struct pifs_msg *msg)
{
	struct pifs_msg rep;

	reply_err(req, call(mnt_of(req), msg, &rep));
}

/* ---- session ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	unsigned want = FUSE_CAP_READDIRPLUS | FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_ASYNC_READ |
			FUSE_CAP_PARALLEL_DIROPS;

	(void)userdata;
	conn->want |= conn->capable & want;
	/* Size and mtime stay ours: other mounts commit too (PERFORMANCE.md). */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->time_gran = 1;
}

static void op_destroy(void *userdata)
{
	struct pifs_mount *m = userdata;
	int rc;

	if (!m->data)
		return;
	rc = pifs_data_flush_all(m->data);
	if (rc < 0)
		pifs_err("unmount: some file data could not be stored: %s", strerror(-rc));
}

/* ---- names ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pifs_mount *m = mnt_of(req);
	struct fuse_entry_param e;
	struct pifs_msg msg, rep;
	int rc = check_name(name);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_LOOKUP);
	msg.u.LOOKUP.parent = parent;
	msg.u.LOOKUP.name = pifs_str_of(name);
	rc = call(m, &msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc < 0) {
		/* A plain error reply: the kernel never caches ENOENT then. */
		reply_err(req, rc);
		return;
	}
	pifs_data_attr(m->data, rep.u.R_ATTR.attr.ino, PIFS_ATTR_SERVER, &rep.u.R_ATTR.attr);
	entry_of(m, &rep.u.R_ATTR.attr, &e);
	fuse_reply_entry(req, &e);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	(void)count;
	(void)forgets;
	fuse_reply_none(req);
}

/* How long the GETATTR of a file open here waits for a metadata leader
 * before the mount answers from what it holds: an election (1 to 2 s) and
 * a little more. */
#define OPEN_GETATTR_MS 3000

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pifs_mount *m = mnt_of(req);
	struct pifs_msg msg, rep;
	struct pifs_attr attr;
	struct stat st;
	bool open_here;
	int64_t left_ns;
	int rc;

	(void)fi;
	/* A directory this mount just changed: the kernel asks before the next
	 * create or unlink in it. */
	if (pifs_dircache_take(m->dirs, ino, pifs_now_ns(), &attr, &left_ns)) {
		stat_of(&attr, &st);
		fuse_reply_attr(req, &st, (double)left_ns / 1e9);
		return;
	}
	/* The kernel asks before reads too (to see a size changed elsewhere):
	 * a file open here goes on with the attributes this mount holds when
	 * no metadata leader answers within an election's time, and at once
	 * while none has answered lately, so that reading it never waits
	 * long. */
	open_here = pifs_data_attr(m->data, ino, PIFS_ATTR_HELD, &attr) == 0;
	if (open_here && pifs_cluster_meta_lost(m->cl)) {
		stat_of(&attr, &st);
		fuse_reply_attr(req, &st, m->attr_timeout);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_GETATTR);
	msg.u.GETATTR.ino = ino;
	if (open_here) {
		rc = pifs_cluster_meta_call_within(m->cl, &msg, &rep, OPEN_GETATTR_MS);
		note_dirs(m, &msg, rc, &rep);
	} else {
		rc = call(m, &msg, &rep);
	}
	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc == 0) {
		attr = rep.u.R_ATTR.attr;
		pifs_data_attr(m->data, ino, PIFS_ATTR_SERVER, &attr);
	} else if (rc == -ENOENT || rc == -ETIMEDOUT || rc == -EHOSTUNREACH) {
		/* Unlinked but still open here: it lives until the last close.
		 * No leader: an open file keeps the attributes held here. */
		int lrc = pifs_data_attr(m->data, ino,
					 rc == -ENOENT ? PIFS_ATTR_GONE : PIFS_ATTR_HELD, &attr);

		rc = lrc == 0 || rc == -ENOENT ? lrc : rc;
	}
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	stat_of(&attr, &st);
	fuse_reply_attr(req, &st, m->attr_timeout);
}

/* Flush local data of @ino, then apply @msg (a SETATTR); the new
 * attributes go to @attr (OUT). */
static int setattr_call(struct pifs_mount *m, uint64_t ino, struct pifs_msg *msg,
			struct pifs_attr *attr)
{
	struct pifs_file *f = pifs_data_find(m->data, ino);
	struct pifs_msg rep;
	int rc = 0;

	/* Local data first, so that a COMMIT at close neither undoes a
	 * truncate nor overwrites an mtime set here (cp -p). */
	if (f && pifs_data_dirty(m->data, f))
		rc = pifs_data_flush(m->data, f);
	if (rc < 0)
		goto out_put;
	rc = call(m, msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc == 0) {
		*attr = rep.u.R_ATTR.attr;
	} else if (rc == -ENOENT && f) {
		/* An unlinked file open here: its size is ours alone. */
		rc = pifs_data_attr(m->data, ino, PIFS_ATTR_GONE, attr);
		if (msg->u.SETATTR.valid & PIFS_SET_SIZE)
			attr->size = msg->u.SETATTR.size;
	}
	if (rc == 0 && f && (msg->u.SETATTR.valid & PIFS_SET_SIZE))
		pifs_data_truncated(m->data, f, attr);
	if (rc == 0 && f)
		rc = pifs_data_attr(m->data, ino, attr->nlink ? PIFS_ATTR_SERVER : PIFS_ATTR_GONE,
				    attr);
out_put:
	pifs_data_put(m->data, f);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *st, int to_set,
		       struct fuse_file_info *fi)
{
	struct pifs_mount *m = mnt_of(req);
	struct pifs_attr attr;
	struct pifs_msg msg;
	struct stat out;
	uint32_t valid = 0;
	int rc;

	(void)fi;
	pifs_msg_init(&msg, PIFS_MSG_SETATTR);
	msg.u.SETATTR.ino = ino;
	if (to_set & FUSE_SET_ATTR_MODE) {
		valid |= PIFS_SET_MODE;
		msg.u.SETATTR.mode = st->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		valid |= PIFS_SET_UID;
		msg.u.SETATTR.uid = st->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		valid |= PIFS_SET_GID;
		msg.u.SETATTR.gid = st->st_gid;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (st->st_size < 0) {
			reply_err(req, -EINVAL);
			return;
		}
		valid |= PIFS_SET_SIZE;
		msg.u.SETATTR.size = (uint64_t)st->st_size;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		valid |= PIFS_SET_ATIME | PIFS_SET_ATIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		valid |= PIFS_SET_ATIME;
		msg.u.SETATTR.atime = ns_of(&st->st_atim);
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		valid |= PIFS_SET_MTIME | PIFS_SET_MTIME_NOW;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		valid |= PIFS_SET_MTIME;
		msg.u.SETATTR.mtime = ns_of(&st->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		valid |= PIFS_SET_CTIME;
		msg.u.SETATTR.ctime = ns_of(&st->st_ctim);
	}
	msg.u.SETATTR.valid = valid;
	rc = setattr_call(m, ino, &msg, &attr);
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	stat_of(&attr, &out);
	fuse_reply_attr(req, &out, m->attr_timeout);
}

static void mknod_msg(fuse_req_t req, struct pifs_msg *msg, fuse_ino_t parent, const char *name,
		      uint32_t mode, uint32_t rdev)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	pifs_msg_init(msg, PIFS_MSG_MKNOD);
	msg->u.MKNOD.parent = parent;
	msg->u.MKNOD.name = pifs_str_of(name);
	msg->u.MKNOD.mode = mode;
	msg->u.MKNOD.rdev = rdev;
	msg->u.MKNOD.uid = ctx->uid;
	msg->u.MKNOD.gid = ctx->gid;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct pifs_msg msg;
	int rc = check_name(name);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	mknod_msg(req, &msg, parent, name, mode, (uint32_t)rdev);
	reply_entry_call(req, &msg);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct pifs_msg msg;
	int rc = check_name(name);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	mknod_msg(req, &msg, parent, name, S_IFDIR | (mode & 07777), 0);
	reply_entry_call(req, &msg);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct pifs_msg msg;
	int rc = check_name(name);

	if (rc == 0 && strlen(target) > PIFS_META_PATH_MAX)
		rc = -ENAMETOOLONG;
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_SYMLINK);
	msg.u.SYMLINK.parent = parent;
	msg.u.SYMLINK.name = pifs_str_of(name);
	msg.u.SYMLINK.target = pifs_str_of(target);
	msg.u.SYMLINK.uid = ctx->uid;
	msg.u.SYMLINK.gid = ctx->gid;
	reply_entry_call(req, &msg);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct pifs_msg msg;
	int rc = check_name(newname);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_LINK);
	msg.u.LINK.ino = ino;
	msg.u.LINK.parent = newparent;
	msg.u.LINK.name = pifs_str_of(newname);
	reply_entry_call(req, &msg);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pifs_msg msg;

	pifs_msg_init(&msg, PIFS_MSG_UNLINK);
	msg.u.UNLINK.parent = parent;
	msg.u.UNLINK.name = pifs_str_of(name);
	reply_status_call(req, &msg);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pifs_msg msg;

	pifs_msg_init(&msg, PIFS_MSG_RMDIR);
	msg.u.RMDIR.parent = parent;
	msg.u.RMDIR.name = pifs_str_of(name);
	reply_status_call(req, &msg);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct pifs_msg msg;
	int rc = check_name(newname);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_RENAME);
	msg.u.RENAME.parent = parent;
	msg.u.RENAME.name = pifs_str_of(name);
	msg.u.RENAME.newparent = newparent;
	msg.u.RENAME.newname = pifs_str_of(newname);
	msg.u.RENAME.flags = flags;
	reply_status_call(req, &msg);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char target[PIFS_META_PATH_MAX + 1];
	struct pifs_msg msg, rep;
	int rc;

	pifs_msg_init(&msg, PIFS_MSG_READLINK);
	msg.u.READLINK.ino = ino;
	rc = call(mnt_of(req), &msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_LINK)
		rc = -EPROTO;
	if (rc == 0)
		rc = pifs_str_copy(rep.u.R_LINK.target, target, sizeof(target));
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	fuse_reply_readlink(req, target);
}

/* ---- files ---- */

/* Truncate @ino to zero for an open with O_TRUNC. */
static int open_trunc(struct pifs_mount *m, uint64_t ino)
{
	struct pifs_attr attr;
	struct pifs_msg msg;

	pifs_msg_init(&msg, PIFS_MSG_SETATTR);
	msg.u.SETATTR.ino = ino;
	msg.u.SETATTR.valid = PIFS_SET_SIZE;
	msg.u.SETATTR.size = 0;
	return setattr_call(m, ino, &msg, &attr);
}

/* OPEN @ino and attach a handle to @fi. */
static int open_file(struct pifs_mount *m, uint64_t ino, struct fuse_file_info *fi)
{
	struct pifs_msg msg, rep;
	struct pifs_file *f;
	bool keep = false;
	int rc;

	if ((fi->flags & O_TRUNC) && (fi->flags & O_ACCMODE) != O_RDONLY) {
		rc = open_trunc(m, ino);
		if (rc < 0)
			return rc;
	}
	pifs_msg_init(&msg, PIFS_MSG_OPEN);
	msg.u.OPEN.ino = ino;
	rc = call(m, &msg, &rep);
	/* The name the kernel looked up was replaced (a rename over it, an
	 * unlink) since: ESTALE makes the kernel look the name up again and
	 * open what it names now, so "write a temp file, rename it over"
	 * never shows a reader a missing file. */
	if (rc == -ENOENT)
		rc = -ESTALE;
	if (rc == 0 && rep.type != PIFS_MSG_R_FILE)
		rc = -EPROTO;
	if (rc < 0)
		return rc;
	rc = pifs_data_open(m->data, &rep.u.R_FILE.attr, &rep.u.R_FILE.refs, &keep, &f);
	if (rc < 0)
		return rc;
	fi->fh = (uintptr_t)f;
	fi->keep_cache = keep;
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int rc = open_file(mnt_of(req), ino, fi);

	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	if (fuse_reply_open(req, fi) != 0)
		pifs_data_release(mnt_of(req)->data, file_of(fi));
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct pifs_mount *m = mnt_of(req);
	const struct pifs_list none = {0};
	struct fuse_entry_param e;
	struct pifs_msg msg, rep;
	struct pifs_file *f;
	bool keep;
	int rc = check_name(name);

	if (rc < 0)
		goto out_err;
	mknod_msg(req, &msg, parent, name, S_IFREG | (mode & 07777), 0);
	rc = call(m, &msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc == 0) {
		entry_of(m, &rep.u.R_ATTR.attr, &e);
		rc = pifs_data_open(m->data, &rep.u.R_ATTR.attr, &none, &keep, &f);
		if (rc < 0)
			goto out_err;
		fi->fh = (uintptr_t)f;
		goto out_reply;
	}
	if (rc != -EEXIST || (fi->flags & O_EXCL))
		goto out_err;
	/* Another mount made it between the kernel's lookup and ours: open
	 * the file that is there, as open(2) without O_EXCL does. */
	pifs_msg_init(&msg, PIFS_MSG_LOOKUP);
	msg.u.LOOKUP.parent = parent;
	msg.u.LOOKUP.name = pifs_str_of(name);
	rc = call(m, &msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_ATTR)
		rc = -EPROTO;
	if (rc < 0)
		goto out_err;
	if (S_ISDIR(rep.u.R_ATTR.attr.mode)) {
		rc = -EISDIR;
		goto out_err;
	}
	entry_of(m, &rep.u.R_ATTR.attr, &e);
	rc = open_file(m, rep.u.R_ATTR.attr.ino, fi);
	if (rc < 0)
		goto out_err;
out_reply:
	if (fuse_reply_create(req, &e, fi) != 0)
		pifs_data_release(m->data, file_of(fi));
	return;
out_err:
	reply_err(req, rc);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pifs_mount *m = mnt_of(req);
	char *buf;
	ssize_t n;

	(void)ino;
	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	n = pifs_data_read(m->data, file_of(fi), buf, size, (uint64_t)off);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct pifs_mount *m = mnt_of(req);
	ssize_t n;

	(void)ino;
	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	n = pifs_data_write(m->data, file_of(fi), buf, size, (uint64_t)off,
			    (fi->flags & O_APPEND) != 0);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, pifs_data_flush(mnt_of(req)->data, file_of(fi)));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	reply_err(req, pifs_data_fsync(mnt_of(req)->data, file_of(fi)));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	reply_err(req, pifs_data_release(mnt_of(req)->data, file_of(fi)));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			 struct fuse_file_info *fi)
{
	(void)ino;
	(void)mode;
	(void)offset;
	(void)length;
	(void)fi;
	reply_err(req, -EOPNOTSUPP);
}

/* ---- directories ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fi->fh = 0;
	fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	reply_err(req, 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	reply_err(req, pifs_data_sync_meta(mnt_of(req)->data));
}

/* Add one entry to @buf; returns its size, or 0 when it did not fit. */
static size_t add_entry(fuse_req_t req, char *buf, size_t room, const char *name,
			const struct pifs_attr *a, off_t next, bool plus)
{
	struct fuse_entry_param e;
	size_t len;

	entry_of(mnt_of(req), a, &e);
	if (plus) {
		/* "." and ".." carry no entry: the kernel must not count a
		 * lookup for them. */
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			e.ino = 0;
		len = fuse_add_direntry_plus(req, buf, room, name, &e, next);
	} else {
		len = fuse_add_direntry(req, buf, room, name, &e.attr, next);
	}
	return len <= room ? len : 0;
}

/* Offsets: "." is 1, ".." is 2, and the server's cookies start at 3. */
static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct pifs_mount *m = mnt_of(req);
	struct pifs_attr self = {.ino = ino, .mode = S_IFDIR, .nlink = 2};
	uint64_t cookie = off <= 2 ? 0 : (uint64_t)off;
	size_t used = 0, len;
	bool full = false;
	char *buf;
	int rc = 0;

	buf = malloc(size ? size : 1);
	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	if (off < 1) {
		len = add_entry(req, buf + used, size - used, ".", &self, 1, plus);
		full = len == 0;
		used += len;
	}
	if (off < 2 && !full) {
		len = add_entry(req, buf + used, size - used, "..", &self, 2, plus);
		full = len == 0;
		used += len;
	}
	while (!full) {
		struct pifs_msg msg, rep;
		struct pifs_cursor cur;
		struct pifs_dirent de;
		uint32_t got = 0;

		pifs_msg_init(&msg, PIFS_MSG_READDIR);
		msg.u.READDIR.ino = ino;
		msg.u.READDIR.cookie = cookie;
		msg.u.READDIR.max_bytes = (uint32_t)(size > 4096 ? size : 4096);
		rc = call(m, &msg, &rep);
		if (rc == 0 && rep.type != PIFS_MSG_R_DIR)
			rc = -EPROTO;
		if (rc < 0)
			break;
		pifs_cursor_init(&cur, &rep.u.R_DIR.entries);
		while (!full && (rc = pifs_dirent_next(&cur, &de)) == 1) {
			char name[PIFS_META_NAME_MAX + 1];

			if (pifs_str_copy(de.name, name, sizeof(name)) < 0)
				continue;
			if (plus)
				pifs_data_attr(m->data, de.attr.ino, PIFS_ATTR_SERVER, &de.attr);
			len = add_entry(req, buf + used, size - used, name, &de.attr,
					(off_t)de.cookie, plus);
			full = len == 0;
			if (!full) {
				used += len;
				cookie = de.cookie;
				got++;
			}
		}
		if (rc < 0 || rep.u.R_DIR.eof || got == 0)
			break;
	}
	/* Entries already in the buffer are worth more than a late error. */
	if (rc < 0 && used == 0)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

/* ---- the file system ---- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pifs_msg msg, rep;
	struct statvfs st;
	uint64_t r;
	int rc;

	(void)ino;
	pifs_msg_init(&msg, PIFS_MSG_STATFS);
	rc = call(mnt_of(req), &msg, &rep);
	if (rc == 0 && rep.type != PIFS_MSG_R_STATFS)
		rc = -EPROTO;
	if (rc < 0) {
		reply_err(req, rc);
		return;
	}
	/* Every byte is stored R times: usable space is raw space over R. */
	r = rep.u.R_STATFS.replicas ? rep.u.R_STATFS.replicas : 1;
	memset(&st, 0, sizeof(st));
	st.f_bsize = STATFS_BSIZE;
	st.f_frsize = STATFS_BSIZE;
	st.f_blocks = rep.u.R_STATFS.capacity / r / STATFS_BSIZE;
	st.f_bfree = rep.u.R_STATFS.free / r / STATFS_BSIZE;
	st.f_bavail = st.f_bfree;
	st.f_ffree = st.f_bfree;
	st.f_favail = st.f_bfree;
	st.f_files = rep.u.R_STATFS.inodes + st.f_ffree;
	st.f_namemax = PIFS_META_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

/* ---- extended attributes ---- */

/* Names under "security." and "system." are answered here, never sent:
 * pifs keeps no ACLs, capabilities or security labels (see op_setxattr),
 * and the kernel asks for them all the time, security.capability before
 * every write and system.posix_acl_access and security.selinux for every
 * entry of ls -l, so each would cost a round trip to the metadata service
 * for an answer that is always "none". */
static bool local_ns(const char *name)
{
	return strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct pifs_msg msg;

	if (pifs_health_reserved(name)) {
		reply_err(req, -EPERM);
		return;
	}
	/* pifs keeps no ACLs, capabilities or security labels: storing one as
	 * a plain attribute would let cp -a believe it set the mode, or a
	 * program believe it has a capability. Refused, cp falls back to
	 * chmod. */
	if (local_ns(name)) {
		reply_err(req, -EOPNOTSUPP);
		return;
	}
	if (size > PIFS_META_XATTR_MAX) {
		reply_err(req, -E2BIG);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_SETXATTR);
	msg.u.SETXATTR.ino = ino;
	msg.u.SETXATTR.name = pifs_str_of(name);
	msg.u.SETXATTR.value.p = (const uint8_t *)value;
	msg.u.SETXATTR.value.len = (uint32_t)size;
	msg.u.SETXATTR.flags = (uint32_t)flags;
	reply_status_call(req, &msg);
}

/* Reply with an xattr value or name list: its size for a probe of @size 0,
 * ERANGE when it does not fit. */
static void reply_xattr_call(fuse_req_t req, struct pifs_msg *msg, size_t size)
{
	struct pifs_msg rep;
	int rc = call(mnt_of(req), msg, &rep);

	if (rc == 0 && rep.type != PIFS_MSG_R_XATTR)
		rc = -EPROTO;
	if (rc == 0 && size != 0 && rep.u.R_XATTR.value.len > size)
		rc = -ERANGE;
	if (rc < 0)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, rep.u.R_XATTR.value.len);
	else
		fuse_reply_buf(req, (const char *)rep.u.R_XATTR.value.p, rep.u.R_XATTR.value.len);
}

/* The virtual attributes of health.h: computed here, never stored. */
static void reply_health(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *value;
	size_t len;
	int rc = pifs_health_get(mnt_of(req)->cl, ino, name, &value, &len);

	if (rc == 0 && size != 0 && len > size)
		rc = -ERANGE;
	if (rc < 0)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, len);
	else
		fuse_reply_buf(req, value, len);
	free(value);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct pifs_msg msg;

	if (pifs_health_reserved(name)) {
		reply_health(req, ino, name, size);
		return;
	}
	if (local_ns(name)) {
		reply_err(req, -ENODATA);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_GETXATTR);
	msg.u.GETXATTR.ino = ino;
	msg.u.GETXATTR.name = pifs_str_of(name);
	reply_xattr_call(req, &msg, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct pifs_msg msg;

	pifs_msg_init(&msg, PIFS_MSG_LISTXATTR);
	msg.u.LISTXATTR.ino = ino;
	reply_xattr_call(req, &msg, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct pifs_msg msg;

	if (pifs_health_reserved(name)) {
		reply_err(req, -EPERM);
		return;
	}
	if (local_ns(name)) {
		reply_err(req, -ENODATA);
		return;
	}
	pifs_msg_init(&msg, PIFS_MSG_REMOVEXATTR);
	msg.u.REMOVEXATTR.ino = ino;
	msg.u.REMOVEXATTR.name = pifs_str_of(name);
	reply_status_call(req, &msg);
}

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
    .fallocate = op_fallocate,
};

const struct fuse_lowlevel_ops *pifs_ops_table(void)
{
	return &ops;
}
