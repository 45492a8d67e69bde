/* meta.c - the metadata state machine: namespace, chunk references, cluster map.
 *
 * Layout in memory, chosen for a million inodes on a small Pi:
 * - every inode is one malloc'd struct (96 bytes) found by number through an
 *   open-addressing map of pointers;
 * - every directory entry is one malloc'd struct holding its name, found by
 *   (parent, name) through a second map, and listed in its directory's array
 *   of (cookie, entry) pairs, which is sorted by cookie because cookies only
 *   grow: readdir resumes with a binary search. A removed entry leaves a
 *   tombstone (its cookie, no entry) until the tombstones outnumber the
 *   entries, when the array is compacted;
 * - a regular file's chunk slots are one array sorted by slot index;
 * - chunks live in a third map, id -> reference count and lengths.
 *
 * Hash-map order never reaches the state's bytes: save walks inodes by
 * number, entries by cookie and chunks by id, so equal states save equally. */
#include "meta.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "hmap.h"
#include "once.h"

/* The size a directory reports: a constant, as on many local file systems,
 * so that adding an entry does not look like a data change. */
#define DIR_SIZE 4096

#define LINK_MAX_COUNT 65000
#define FIRST_COOKIE 3

/* The <linux/fs.h> and <sys/xattr.h> values, which travel on the wire. */
#define REN_NOREPLACE 1u
#define REN_EXCHANGE 2u
#define XA_CREATE 1u
#define XA_REPLACE 2u

#define SET_ALL                                                                                    \
	(PIFS_SET_MODE | PIFS_SET_UID | PIFS_SET_GID | PIFS_SET_SIZE | PIFS_SET_ATIME |            \
	 PIFS_SET_MTIME | PIFS_SET_CTIME | PIFS_SET_ATIME_NOW | PIFS_SET_MTIME_NOW)

#define SNAP_MAGIC 0x5049464du /* "PIFM" */
#define SNAP_VERSION 2u /* 2 adds the sessions (once.h); 1 still loads */

/* A snapshot is handed over in pieces of about this size, so that saving
 * a large state never needs a second copy of it in memory. */
#define SAVE_PIECE (64u << 10)

struct slot {
	uint64_t index;
	struct pifs_chunk_id id;
	uint32_t len; /* > 0; the slot never reaches past the file size */
};

struct chunk {
	struct pifs_chunk_id id;
	uint64_t refs;
	uint32_t raw_len;
	uint32_t stored_len;
};

struct xattr {
	uint32_t vlen;
	uint8_t nlen;
	char data[]; /* the name, then the value */
};

struct dent {
	uint64_t parent;
	uint64_t cookie;
	uint64_t ino;
	uint8_t nlen;
	char name[];
};

struct dslot {
	uint64_t cookie;
	struct dent *d; /* NULL: a tombstone */
};

struct dir {
	uint64_t parent; /* the root is its own parent */
	uint64_t next_cookie;
	struct dslot *v; /* sorted by cookie */
	uint32_t n, cap;
	uint32_t live; /* entries that are not tombstones */
};

struct inode {
	uint64_t ino;
	uint64_t size;
	uint64_t version;
	int64_t atime, mtime, ctime;
	uint32_t mode, nlink, uid, gid, rdev;
	uint32_t nxattr;
	struct xattr **xattrs; /* sorted by name */
	union {
		struct {
			struct slot *v; /* sorted by index */
			uint32_t n, cap;
		} file;
		struct dir *dir;
		char *target; /* @size bytes, not NUL-terminated */
	} u;
};

struct node {
	uint32_t id, weight, flags;
	uint16_t alen;
	char *addr;
};

struct pifs_meta {
	uint64_t index;
	bool ready; /* INIT applied */
	uint64_t epoch;
	uint32_t replicas;
	uint32_t chunk_size;
	uint64_t cluster_id;
	uint64_t next_ino;
	struct node *nodes; /* sorted by id */
	uint32_t nnodes;
	struct pifs_hmap inodes;
	struct pifs_hmap dents;
	struct pifs_hmap chunks;
	uint64_t logical;
	uint64_t chunk_raw;
	uint64_t chunk_stored;
	uint64_t chunk_refs;
	struct pifs_once once; /* the exactly-once sessions */
};

struct dkey {
	uint64_t parent;
	const char *name;
	size_t len;
};

/* Hashes and equalities of the three maps. */

static uint64_t inode_hash(const void *e)
{
	return pifs_hmap_mix(((const struct inode *)e)->ino);
}

static bool inode_eq(const void *e, const void *key)
{
	return ((const struct inode *)e)->ino == *(const uint64_t *)key;
}

static uint64_t name_hash(uint64_t parent, const char *name, size_t len)
{
	return XXH3_64bits_withSeed(name, len, parent);
}

static uint64_t dent_hash(const void *e)
{
	const struct dent *d = e;

	return name_hash(d->parent, d->name, d->nlen);
}

static bool dent_eq(const void *e, const void *key)
{
	const struct dent *d = e;
	const struct dkey *k = key;

	return d->parent == k->parent && d->nlen == k->len && memcmp(d->name, k->name, k->len) == 0;
}

static uint64_t id_hash(const struct pifs_chunk_id *id)
{
	return pifs_hmap_mix(id->lo ^ pifs_hmap_mix(id->hi));
}

static uint64_t chunk_hash(const void *e)
{
	return id_hash(&((const struct chunk *)e)->id);
}

static bool chunk_eq(const void *e, const void *key)
{
	return pifs_chunk_id_eq(&((const struct chunk *)e)->id, key);
}

/* Lookups. */

static struct inode *inode_get(const struct pifs_meta *m, uint64_t ino)
{
	return pifs_hmap_find(&m->inodes, pifs_hmap_mix(ino), &ino);
}

static struct dent *dent_get(const struct pifs_meta *m, uint64_t parent, const char *name,
			     size_t len)
{
	struct dkey k = {parent, name, len};

	return pifs_hmap_find(&m->dents, name_hash(parent, name, len), &k);
}

static struct chunk *chunk_get(const struct pifs_meta *m, const struct pifs_chunk_id *id)
{
	return pifs_hmap_find(&m->chunks, id_hash(id), id);
}

/* The directory @ino, or NULL with *@rc = -ENOENT or -ENOTDIR. */
static struct inode *dir_get(const struct pifs_meta *m, uint64_t ino, int *rc)
{
	struct inode *in = inode_get(m, ino);

	if (!in) {
		*rc = -ENOENT;
		return NULL;
	}
	if (!S_ISDIR(in->mode)) {
		*rc = -ENOTDIR;
		return NULL;
	}
	return in;
}

static bool is_dots(const char *p, size_t len)
{
	return (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.');
}

/* A name that an entry may have. */
static int check_name(const char *p, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > PIFS_META_NAME_MAX)
		return -ENAMETOOLONG;
	if (is_dots(p, len) || memchr(p, '/', len) || memchr(p, '\0', len))
		return -EINVAL;
	return 0;
}

static bool valid_type(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		return true;
	default:
		return false;
	}
}

/* Chunk references. */

static int chunk_take(struct pifs_meta *m, const struct pifs_chunk_id *id, uint32_t raw_len,
		      uint32_t stored_len)
{
	struct chunk *c = chunk_get(m, id);

	if (!c) {
		c = malloc(sizeof(*c));
		if (!c)
			return -ENOMEM;
		c->id = *id;
		c->refs = 0;
		c->raw_len = raw_len;
		c->stored_len = stored_len;
		if (pifs_hmap_insert(&m->chunks, c) < 0) {
			free(c);
			return -ENOMEM;
		}
		m->chunk_raw += raw_len;
		m->chunk_stored += stored_len;
	}
	c->refs++;
	m->chunk_refs++;
	return 0;
}

/* Drop one reference; a chunk nobody references leaves the table (its
 * deletion from the stores is the garbage collector's business). */
static void chunk_release(struct pifs_meta *m, const struct pifs_chunk_id *id)
{
	struct chunk *c = chunk_get(m, id);

	if (!c)
		return;
	m->chunk_refs--;
	if (--c->refs > 0)
		return;
	pifs_hmap_remove(&m->chunks, id_hash(id), id);
	m->chunk_raw -= c->raw_len;
	m->chunk_stored -= c->stored_len;
	free(c);
}

/* Regular files' slots. */

/* The position of the first slot whose index is >= @index. */
static uint32_t slot_pos(const struct inode *in, uint64_t index)
{
	uint32_t lo = 0, hi = in->u.file.n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (in->u.file.v[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int slot_reserve(struct inode *in, uint32_t more)
{
	uint32_t cap = in->u.file.cap;
	struct slot *v;

	if (in->u.file.n + (uint64_t)more <= cap)
		return 0;
	if (in->u.file.n + (uint64_t)more > UINT32_MAX / 2)
		return -ENOMEM;
	cap = cap ? cap : 1;
	while (cap < in->u.file.n + more)
		cap *= 2;
	v = realloc(in->u.file.v, (size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	in->u.file.v = v;
	in->u.file.cap = cap;
	return 0;
}

/* Set the size of the regular file @in: slots that start at or past @size
 * go (with their chunk references), the last one is trimmed to end at it. */
static void file_resize(struct pifs_meta *m, struct inode *in, uint64_t size)
{
	uint64_t cs = m->chunk_size;
	uint32_t i, keep = 0;

	for (i = 0; i < in->u.file.n; i++) {
		struct slot *s = &in->u.file.v[i];
		uint64_t start = s->index * cs;

		if (start >= size) {
			chunk_release(m, &s->id);
			continue;
		}
		if (size - start < s->len)
			s->len = (uint32_t)(size - start);
		in->u.file.v[keep++] = *s;
	}
	in->u.file.n = keep;
	m->logical = m->logical - in->size + size;
	in->size = size;
}

static uint64_t file_blocks(const struct inode *in)
{
	uint64_t used = 0;
	uint32_t i;

	if (!S_ISREG(in->mode))
		return 0;
	for (i = 0; i < in->u.file.n; i++)
		used += in->u.file.v[i].len;
	return (used + 511) / 512;
}

/* Directories. */

static uint32_t dslot_pos(const struct dir *d, uint64_t cookie)
{
	uint32_t lo = 0, hi = d->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (d->v[mid].cookie < cookie)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Make sure @more entries can be added to @d and the entry map without
 * failing half-way through an operation. */
static int dir_reserve(struct pifs_meta *m, struct dir *d, uint32_t more)
{
	uint32_t cap = d->cap;
	struct dslot *v;

	if (pifs_hmap_reserve(&m->dents, m->dents.count + more) < 0)
		return -ENOMEM;
	if (d->n + (uint64_t)more <= cap)
		return 0;
	if (d->n + (uint64_t)more > UINT32_MAX / 2)
		return -ENOMEM;
	cap = cap ? cap : 4;
	while (cap < d->n + more)
		cap *= 2;
	v = realloc(d->v, (size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	d->v = v;
	d->cap = cap;
	return 0;
}

static struct dent *dent_alloc(uint64_t parent, const char *name, size_t len, uint64_t ino)
{
	struct dent *d = malloc(sizeof(*d) + len);

	if (!d)
		return NULL;
	d->parent = parent;
	d->cookie = 0;
	d->ino = ino;
	d->nlen = (uint8_t)len;
	memcpy(d->name, name, len);
	return d;
}

/* Link the entry @d (owned from now on) into the directory @dir, which has
 * room for it (dir_reserve). */
static void dir_link(struct pifs_meta *m, struct inode *dir, struct dent *d)
{
	struct dir *dd = dir->u.dir;

	d->parent = dir->ino;
	d->cookie = dd->next_cookie++;
	dd->v[dd->n].cookie = d->cookie;
	dd->v[dd->n].d = d;
	dd->n++;
	dd->live++;
	pifs_hmap_insert(&m->dents, d);
}

/* Unlink the entry @d from the directory @dir and return it (the caller
 * frees it). Compacts the array once tombstones outnumber entries, so a
 * directory's memory follows its size and readdir never wades through more
 * tombstones than entries. */
static struct dent *dir_unlink(struct pifs_meta *m, struct inode *dir, struct dent *d)
{
	struct dir *dd = dir->u.dir;
	struct dkey k = {d->parent, d->name, d->nlen};
	uint32_t pos = dslot_pos(dd, d->cookie), i, keep = 0;

	pifs_hmap_remove(&m->dents, dent_hash(d), &k);
	dd->v[pos].d = NULL;
	dd->live--;
	if (dd->n - dd->live > 16 && dd->n - dd->live > dd->live) {
		for (i = 0; i < dd->n; i++)
			if (dd->v[i].d)
				dd->v[keep++] = dd->v[i];
		dd->n = keep;
	}
	return d;
}

/* Inodes. */

/* A new inode of @mode, not yet linked anywhere, or NULL. Type-specific
 * parts (a directory's table, a symlink's target) are the caller's. */
static struct inode *inode_alloc(uint32_t mode, uint32_t uid, uint32_t gid, int64_t now)
{
	struct inode *in = calloc(1, sizeof(*in));

	if (!in)
		return NULL;
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->atime = in->mtime = in->ctime = now;
	in->version = 1;
	in->nlink = 1;
	if (S_ISDIR(mode)) {
		in->u.dir = calloc(1, sizeof(*in->u.dir));
		if (!in->u.dir) {
			free(in);
			return NULL;
		}
		in->u.dir->next_cookie = FIRST_COOKIE;
		in->nlink = 2;
		in->size = DIR_SIZE;
	}
	return in;
}

/* Free what @in owns and @in itself; it is in no map. */
static void inode_destroy(struct inode *in)
{
	uint32_t i;

	for (i = 0; i < in->nxattr; i++)
		free(in->xattrs[i]);
	free(in->xattrs);
	if (S_ISREG(in->mode)) {
		free(in->u.file.v);
	} else if (S_ISDIR(in->mode)) {
		if (in->u.dir) {
			for (i = 0; i < in->u.dir->n; i++)
				free(in->u.dir->v[i].d);
			free(in->u.dir->v);
			free(in->u.dir);
		}
	} else if (S_ISLNK(in->mode)) {
		free(in->u.target);
	}
	free(in);
}

/* Remove @in, whose last link went away, from the state. */
static void inode_drop(struct pifs_meta *m, struct inode *in)
{
	uint32_t i;

	if (S_ISREG(in->mode)) {
		for (i = 0; i < in->u.file.n; i++)
			chunk_release(m, &in->u.file.v[i].id);
		m->logical -= in->size;
	}
	pifs_hmap_remove(&m->inodes, pifs_hmap_mix(in->ino), &in->ino);
	inode_destroy(in);
}

/* Give @in the next inode number and add it to the map. */
static int inode_add(struct pifs_meta *m, struct inode *in)
{
	in->ino = m->next_ino;
	if (pifs_hmap_insert(&m->inodes, in) < 0)
		return -ENOMEM;
	m->next_ino++;
	return 0;
}

static void fill_attr(const struct inode *in, struct pifs_attr *a)
{
	a->ino = in->ino;
	a->mode = in->mode;
	a->nlink = in->nlink;
	a->uid = in->uid;
	a->gid = in->gid;
	a->rdev = in->rdev;
	a->size = in->size;
	a->blocks = file_blocks(in);
	a->atime = in->atime;
	a->mtime = in->mtime;
	a->ctime = in->ctime;
	a->version = in->version;
}

static void touch_dir(struct inode *dir, int64_t now)
{
	dir->mtime = now;
	dir->ctime = now;
}

/* Is @ino the directory @anc or inside it? Follows ".." up to the root. */
static bool in_subtree(const struct pifs_meta *m, uint64_t ino, uint64_t anc)
{
	for (;;) {
		const struct inode *in;

		if (ino == anc)
			return true;
		if (ino == PIFS_META_ROOT)
			return false;
		in = inode_get(m, ino);
		if (!in || !S_ISDIR(in->mode))
			return false;
		ino = in->u.dir->parent;
	}
}

/* Extended attributes. */

static int xname_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* The position of the attribute @name in @in, or where it would go; *@found
 * says whether it is there. */
static uint32_t xattr_pos(const struct inode *in, const char *name, size_t len, bool *found)
{
	uint32_t lo = 0, hi = in->nxattr;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		const struct xattr *x = in->xattrs[mid];
		int c = xname_cmp(x->data, x->nlen, name, len);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

/* Replies. */

static void reply_status(struct pifs_msg *rep, int status, const char *detail)
{
	pifs_msg_init(rep, PIFS_MSG_R_STATUS);
	rep->u.R_STATUS.status = status;
	rep->u.R_STATUS.detail = pifs_str_of(detail ? detail : "");
}

static void reply_attr(struct pifs_msg *rep, const struct inode *in)
{
	pifs_msg_init(rep, PIFS_MSG_R_ATTR);
	fill_attr(in, &rep->u.R_ATTR.attr);
}

/* The reply to a change of the directory @dir: the entry @in (NULL when it
 * was removed) and @dir as the change left it. */
static void reply_entry(struct pifs_msg *rep, const struct inode *in, const struct inode *dir)
{
	pifs_msg_init(rep, PIFS_MSG_R_ATTR);
	if (in)
		fill_attr(in, &rep->u.R_ATTR.attr);
	fill_attr(dir, &rep->u.R_ATTR.dir);
}

/* Mutations. Each returns 0 with @rep filled, or -errno with the state as
 * it was (-ENOMEM excepted). */

static int op_init(struct pifs_meta *m, const struct pifs_msg_INIT *o, struct pifs_msg *rep)
{
	struct inode *root;

	if (m->ready)
		return -EEXIST;
	if (o->replicas == 0 || o->chunk_size == 0 || o->chunk_size > PIFS_FRAME_MAX_RAW)
		return -EINVAL;
	root = inode_alloc(S_IFDIR | 0755, 0, 0, o->now);
	if (!root)
		return -ENOMEM;
	m->next_ino = PIFS_META_ROOT;
	if (inode_add(m, root) < 0) {
		inode_destroy(root);
		return -ENOMEM;
	}
	root->u.dir->parent = PIFS_META_ROOT;
	m->ready = true;
	m->replicas = o->replicas;
	m->chunk_size = o->chunk_size;
	m->cluster_id = o->cluster_id;
	m->epoch = 1;
	reply_status(rep, 0, NULL);
	return 0;
}

/* Where node @id is, or would go, in m->nodes (sorted by id). */
static uint32_t node_pos(const struct pifs_meta *m, uint32_t id)
{
	uint32_t lo = 0, hi = m->nnodes;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (m->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The index of node @id in m->nodes, or -1. */
static long node_find(const struct pifs_meta *m, uint32_t id)
{
	uint32_t i = node_pos(m, id);

	return i < m->nnodes && m->nodes[i].id == id ? (long)i : -1;
}

static int op_node_add(struct pifs_meta *m, const struct pifs_msg_NODE_ADD *o, struct pifs_msg *rep)
{
	uint32_t lo = node_pos(m, o->id);
	struct node *n, *v;
	char *addr;

	n = lo < m->nnodes && m->nodes[lo].id == o->id ? &m->nodes[lo] : NULL;
	if (n && n->weight == o->weight && n->flags == o->flags && n->alen == o->addr.len &&
	    memcmp(n->addr, o->addr.p, o->addr.len) == 0) {
		reply_status(rep, 0, NULL);
		return 0;
	}
	addr = malloc(o->addr.len ? o->addr.len : 1);
	if (!addr)
		return -ENOMEM;
	memcpy(addr, o->addr.p, o->addr.len);
	if (!n) {
		v = realloc(m->nodes, (m->nnodes + 1) * sizeof(*v));
		if (!v) {
			free(addr);
			return -ENOMEM;
		}
		m->nodes = v;
		memmove(&v[lo + 1], &v[lo], (m->nnodes - lo) * sizeof(*v));
		m->nnodes++;
		n = &v[lo];
		n->id = o->id;
	} else {
		free(n->addr);
	}
	n->weight = o->weight;
	n->flags = o->flags;
	n->alen = o->addr.len;
	n->addr = addr;
	m->epoch++;
	reply_status(rep, 0, NULL);
	return 0;
}


static int op_node_set(struct pifs_meta *m, const struct pifs_msg_NODE_SET *o, struct pifs_msg *rep)
{
	long i = node_find(m, o->id);
	struct node *n;
	uint32_t flags;
	char *addr = NULL;

	if (i < 0)
		return -ENOENT;
	n = &m->nodes[i];
	flags = (n->flags | o->set) & ~o->clear;
	if (o->addr.len) {
		addr = malloc(o->addr.len);
		if (!addr)
			return -ENOMEM;
		memcpy(addr, o->addr.p, o->addr.len);
		free(n->addr);
		n->addr = addr;
		n->alen = o->addr.len;
	}
	if (addr || flags != n->flags || (o->weight && o->weight != n->weight))
		m->epoch++;
	n->flags = flags;
	if (o->weight)
		n->weight = o->weight;
	reply_status(rep, 0, NULL);
	return 0;
}

/* The voters changed (a Raft CONF entry): the map's META flags follow. */
static int op_voters(struct pifs_meta *m, const struct pifs_msg_VOTERS *o, struct pifs_msg *rep)
{
	bool changed = false;

	for (uint32_t i = 0; i < m->nnodes; i++) {
		struct pifs_cursor c;
		struct pifs_nodeid v;
		uint32_t flags = m->nodes[i].flags & ~PIFS_NODE_META;
		int rc;

		pifs_cursor_init(&c, &o->ids);
		while ((rc = pifs_nodeid_next(&c, &v)) > 0)
			if (v.id == m->nodes[i].id)
				flags |= PIFS_NODE_META;
		if (rc < 0)
			return -EINVAL;
		changed |= flags != m->nodes[i].flags;
		m->nodes[i].flags = flags;
	}
	if (changed)
		m->epoch++;
	reply_status(rep, 0, NULL);
	return 0;
}

static int op_node_del(struct pifs_meta *m, const struct pifs_msg_NODE_DEL *o, struct pifs_msg *rep)
{
	long i = node_find(m, o->id);

	if (i < 0)
		return -ENOENT;
	/* Removing the voter would leave the log without a home: a voter is
	 * replaced by moving its role first, never by deleting it. */
	if (m->nodes[i].flags & PIFS_NODE_META)
		return -EBUSY;
	free(m->nodes[i].addr);
	memmove(&m->nodes[i], &m->nodes[i + 1], (m->nnodes - (uint32_t)i - 1) * sizeof(*m->nodes));
	m->nnodes--;
	m->epoch++;
	reply_status(rep, 0, NULL);
	return 0;
}

/* Check that @name can be created in the directory @parent: 0 and the
 * directory, or -errno. */
static int check_create(struct pifs_meta *m, uint64_t parent, struct pifs_str name,
			struct inode **dir)
{
	int rc = 0;

	*dir = dir_get(m, parent, &rc);
	if (!*dir)
		return rc;
	rc = check_name(name.p, name.len);
	if (rc < 0)
		return rc;
	if (dent_get(m, parent, name.p, name.len))
		return -EEXIST;
	return 0;
}

/* Add the new inode @in under @name in @dir and reply with its attributes;
 * frees @in on failure. */
static int create_entry(struct pifs_meta *m, struct inode *dir, struct pifs_str name,
			struct inode *in, int64_t now, struct pifs_msg *rep)
{
	struct dent *d;

	if (dir_reserve(m, dir->u.dir, 1) < 0 || pifs_hmap_reserve(&m->inodes, m->inodes.count + 1))
		goto out_nomem;
	d = dent_alloc(dir->ino, name.p, name.len, 0);
	if (!d)
		goto out_nomem;
	inode_add(m, in);
	d->ino = in->ino;
	dir_link(m, dir, d);
	if (S_ISDIR(in->mode)) {
		in->u.dir->parent = dir->ino;
		dir->nlink++;
	}
	touch_dir(dir, now);
	reply_entry(rep, in, dir);
	return 0;

out_nomem:
	inode_destroy(in);
	return -ENOMEM;
}

static int op_mknod(struct pifs_meta *m, const struct pifs_msg_MKNOD *o, struct pifs_msg *rep)
{
	struct inode *dir, *in;
	int rc = check_create(m, o->parent, o->name, &dir);

	if (rc < 0)
		return rc;
	if (!valid_type(o->mode) || S_ISLNK(o->mode))
		return -EINVAL;
	in = inode_alloc((o->mode & S_IFMT) | (o->mode & 07777), o->uid, o->gid, o->now);
	if (!in)
		return -ENOMEM;
	if (S_ISCHR(o->mode) || S_ISBLK(o->mode))
		in->rdev = o->rdev;
	return create_entry(m, dir, o->name, in, o->now, rep);
}

static int op_symlink(struct pifs_meta *m, const struct pifs_msg_SYMLINK *o, struct pifs_msg *rep)
{
	struct inode *dir, *in;
	int rc = check_create(m, o->parent, o->name, &dir);

	if (rc < 0)
		return rc;
	if (o->target.len == 0)
		return -ENOENT;
	if (o->target.len > PIFS_META_PATH_MAX)
		return -ENAMETOOLONG;
	in = inode_alloc(S_IFLNK | 0777, o->uid, o->gid, o->now);
	if (!in)
		return -ENOMEM;
	in->u.target = malloc(o->target.len);
	if (!in->u.target) {
		inode_destroy(in);
		return -ENOMEM;
	}
	memcpy(in->u.target, o->target.p, o->target.len);
	in->size = o->target.len;
	return create_entry(m, dir, o->name, in, o->now, rep);
}

static int op_link(struct pifs_meta *m, const struct pifs_msg_LINK *o, struct pifs_msg *rep)
{
	struct inode *in = inode_get(m, o->ino), *dir;
	struct dent *d;
	int rc;

	if (!in)
		return -ENOENT;
	rc = check_create(m, o->parent, o->name, &dir);
	if (rc < 0)
		return rc;
	if (S_ISDIR(in->mode))
		return -EPERM;
	if (in->nlink >= LINK_MAX_COUNT)
		return -EMLINK;
	if (dir_reserve(m, dir->u.dir, 1) < 0)
		return -ENOMEM;
	d = dent_alloc(dir->ino, o->name.p, o->name.len, in->ino);
	if (!d)
		return -ENOMEM;
	dir_link(m, dir, d);
	in->nlink++;
	in->ctime = o->now;
	touch_dir(dir, o->now);
	reply_entry(rep, in, dir);
	return 0;
}

/* Drop the entry @d of @dir pointing at the non-directory @in. */
static void remove_link(struct pifs_meta *m, struct inode *dir, struct dent *d, struct inode *in,
			int64_t now)
{
	free(dir_unlink(m, dir, d));
	if (--in->nlink == 0)
		inode_drop(m, in);
	else
		in->ctime = now;
}

/* Drop the entry @d of @dir pointing at the empty directory @in. */
static void remove_dir(struct pifs_meta *m, struct inode *dir, struct dent *d, struct inode *in)
{
	free(dir_unlink(m, dir, d));
	dir->nlink--;
	inode_drop(m, in);
}

/* The entry @name of the directory @parent and its inode, or -errno. */
static int find_entry(struct pifs_meta *m, uint64_t parent, struct pifs_str name,
		      struct inode **dir, struct dent **d, struct inode **in)
{
	int rc = 0;

	*dir = dir_get(m, parent, &rc);
	if (!*dir)
		return rc;
	rc = check_name(name.p, name.len);
	if (rc < 0)
		return rc;
	*d = dent_get(m, parent, name.p, name.len);
	if (!*d)
		return -ENOENT;
	*in = inode_get(m, (*d)->ino);
	return 0;
}

static int op_unlink(struct pifs_meta *m, const struct pifs_msg_UNLINK *o, struct pifs_msg *rep)
{
	struct inode *dir, *in;
	struct dent *d;
	int rc = find_entry(m, o->parent, o->name, &dir, &d, &in);

	if (rc < 0)
		return rc;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	remove_link(m, dir, d, in, o->now);
	touch_dir(dir, o->now);
	reply_entry(rep, NULL, dir);
	return 0;
}

static int op_rmdir(struct pifs_meta *m, const struct pifs_msg_RMDIR *o, struct pifs_msg *rep)
{
	struct inode *dir, *in;
	struct dent *d;
	int rc;

	/* The root has no entry: it can only be named as its own "..". */
	if (o->parent == PIFS_META_ROOT && pifs_str_eq(o->name, ".."))
		return -EBUSY;
	if (pifs_str_eq(o->name, ".."))
		return dir_get(m, o->parent, &rc) ? -ENOTEMPTY : rc;
	rc = find_entry(m, o->parent, o->name, &dir, &d, &in);
	if (rc < 0)
		return rc;
	if (!S_ISDIR(in->mode))
		return -ENOTDIR;
	if (in->u.dir->live)
		return -ENOTEMPTY;
	remove_dir(m, dir, d, in);
	touch_dir(dir, o->now);
	reply_entry(rep, NULL, dir);
	return 0;
}

/* Move directory @in from @from to @to: ".." and both link counts follow. */
static void reparent(struct inode *in, struct inode *from, struct inode *to)
{
	if (!S_ISDIR(in->mode) || from == to)
		return;
	in->u.dir->parent = to->ino;
	from->nlink--;
	to->nlink++;
}

static int rename_exchange(const struct pifs_meta *m, const struct pifs_msg_RENAME *o,
			   struct inode *sp, struct dent *sd, struct inode *src, struct inode *dp,
			   struct dent *dd, struct inode *dst)
{
	uint64_t ino;

	if (sd == dd || src == dst)
		return 0;
	if (sp != dp && S_ISDIR(src->mode) && in_subtree(m, dp->ino, src->ino))
		return -EINVAL;
	if (sp != dp && S_ISDIR(dst->mode) && in_subtree(m, sp->ino, dst->ino))
		return -EINVAL;
	ino = sd->ino;
	sd->ino = dd->ino;
	dd->ino = ino;
	reparent(src, sp, dp);
	reparent(dst, dp, sp);
	src->ctime = o->now;
	dst->ctime = o->now;
	touch_dir(sp, o->now);
	touch_dir(dp, o->now);
	return 0;
}

static int op_rename(struct pifs_meta *m, const struct pifs_msg_RENAME *o, struct pifs_msg *rep)
{
	struct inode *sp, *dp, *src, *dst = NULL;
	struct dent *sd, *dd, *nd;
	int rc;

	if ((o->flags & ~(REN_NOREPLACE | REN_EXCHANGE)) ||
	    o->flags == (REN_NOREPLACE | REN_EXCHANGE))
		return -EINVAL;
	rc = find_entry(m, o->parent, o->name, &sp, &sd, &src);
	if (rc < 0)
		return rc;
	dp = dir_get(m, o->newparent, &rc);
	if (!dp)
		return rc;
	rc = check_name(o->newname.p, o->newname.len);
	if (rc < 0)
		return rc;
	dd = dent_get(m, o->newparent, o->newname.p, o->newname.len);
	if (dd)
		dst = inode_get(m, dd->ino);
	if (o->flags & REN_EXCHANGE) {
		if (!dd)
			return -ENOENT;
		rc = rename_exchange(m, o, sp, sd, src, dp, dd, dst);
		if (rc == 0)
			reply_status(rep, 0, NULL);
		return rc;
	}
	if (dd && (o->flags & REN_NOREPLACE))
		return -EEXIST;
	if (dd && (sd == dd || src == dst)) {
		reply_status(rep, 0, NULL);
		return 0;
	}
	if (S_ISDIR(src->mode) && in_subtree(m, dp->ino, src->ino))
		return -EINVAL;
	if (dst && S_ISDIR(src->mode) && !S_ISDIR(dst->mode))
		return -ENOTDIR;
	if (dst && !S_ISDIR(src->mode) && S_ISDIR(dst->mode))
		return -EISDIR;
	if (dst && S_ISDIR(dst->mode) && dst->u.dir->live)
		return -ENOTEMPTY;

	if (dir_reserve(m, dp->u.dir, 1) < 0)
		return -ENOMEM;
	nd = dent_alloc(dp->ino, o->newname.p, o->newname.len, src->ino);
	if (!nd)
		return -ENOMEM;
	if (dst && S_ISDIR(dst->mode))
		remove_dir(m, dp, dd, dst);
	else if (dst)
		remove_link(m, dp, dd, dst, o->now);
	free(dir_unlink(m, sp, sd));
	dir_link(m, dp, nd);
	reparent(src, sp, dp);
	src->ctime = o->now;
	touch_dir(sp, o->now);
	touch_dir(dp, o->now);
	reply_status(rep, 0, NULL);
	return 0;
}

static int op_setattr(struct pifs_meta *m, const struct pifs_msg_SETATTR *o, struct pifs_msg *rep)
{
	struct inode *in = inode_get(m, o->ino);
	uint32_t v = o->valid;

	if (!in)
		return -ENOENT;
	if (v & ~(uint32_t)SET_ALL)
		return -EINVAL;
	if (v & PIFS_SET_SIZE) {
		if (S_ISDIR(in->mode))
			return -EISDIR;
		if (!S_ISREG(in->mode))
			return -EINVAL;
	}
	if (v & PIFS_SET_MODE)
		in->mode = (in->mode & S_IFMT) | (o->mode & 07777);
	if (v & PIFS_SET_UID)
		in->uid = o->uid;
	if (v & PIFS_SET_GID)
		in->gid = o->gid;
	if ((v & PIFS_SET_SIZE) && o->size != in->size) {
		file_resize(m, in, o->size);
		in->version++;
		/* A size change is a data change, as truncate(2) says. */
		in->mtime = o->now;
	}
	if (v & PIFS_SET_ATIME)
		in->atime = o->atime;
	if (v & PIFS_SET_ATIME_NOW)
		in->atime = o->now;
	if (v & PIFS_SET_MTIME)
		in->mtime = o->mtime;
	if (v & PIFS_SET_MTIME_NOW)
		in->mtime = o->now;
	if (v)
		in->ctime = (v & PIFS_SET_CTIME) ? o->ctime : o->now;
	reply_attr(rep, in);
	return 0;
}

/* A chunk reference of a COMMIT that the state can hold. */
static bool valid_ref(const struct pifs_meta *m, const struct pifs_chunkref *r)
{
	if (r->index > UINT64_MAX / m->chunk_size - 1)
		return false;
	if (pifs_chunk_id_is_zero(&r->id))
		return true;
	return r->len > 0 && r->len <= m->chunk_size && r->len <= r->raw_len &&
	       r->raw_len <= PIFS_FRAME_MAX_RAW;
}

/* Put the reference @r into its slot of @in (a zero id clears the slot). */
static int commit_ref(struct pifs_meta *m, struct inode *in, const struct pifs_chunkref *r)
{
	uint32_t pos = slot_pos(in, r->index);
	bool has = pos < in->u.file.n && in->u.file.v[pos].index == r->index;
	struct slot *s;

	if (pifs_chunk_id_is_zero(&r->id)) {
		if (!has)
			return 0;
		chunk_release(m, &in->u.file.v[pos].id);
		in->u.file.n--;
		memmove(&in->u.file.v[pos], &in->u.file.v[pos + 1],
			(in->u.file.n - pos) * sizeof(struct slot));
		return 0;
	}
	/* Take the new reference first: the slot may already hold this chunk. */
	if (chunk_take(m, &r->id, r->raw_len, r->stored_len) < 0)
		return -ENOMEM;
	if (has) {
		chunk_release(m, &in->u.file.v[pos].id);
	} else {
		if (slot_reserve(in, 1) < 0)
			return -ENOMEM;
		memmove(&in->u.file.v[pos + 1], &in->u.file.v[pos],
			(in->u.file.n - pos) * sizeof(struct slot));
		in->u.file.n++;
	}
	s = &in->u.file.v[pos];
	s->index = r->index;
	s->id = r->id;
	s->len = r->len;
	return 0;
}

static int op_commit(struct pifs_meta *m, const struct pifs_msg_COMMIT *o, struct pifs_msg *rep)
{
	struct inode *in = inode_get(m, o->ino);
	struct pifs_chunkref r;
	struct pifs_cursor c;
	int got;

	if (!in)
		return -ENOENT;
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	pifs_cursor_init(&c, &o->refs);
	while ((got = pifs_chunkref_next(&c, &r)) > 0)
		if (!valid_ref(m, &r))
			return -EINVAL;
	if (got < 0)
		return -EINVAL;
	pifs_cursor_init(&c, &o->refs);
	while (pifs_chunkref_next(&c, &r) > 0)
		if (commit_ref(m, in, &r) < 0)
			return -ENOMEM;
	file_resize(m, in, o->size);
	in->mtime = o->mtime;
	in->ctime = o->now;
	in->version++;
	reply_attr(rep, in);
	return 0;
}

static int op_setxattr(struct pifs_meta *m, const struct pifs_msg_SETXATTR *o, struct pifs_msg *rep)
{
	struct inode *in = inode_get(m, o->ino);
	struct xattr *x, **v;
	uint32_t pos;
	bool found;

	if (!in)
		return -ENOENT;
	if (o->flags & ~(XA_CREATE | XA_REPLACE))
		return -EINVAL;
	if (o->name.len == 0 || memchr(o->name.p, '\0', o->name.len))
		return -EINVAL;
	if (o->name.len > PIFS_META_NAME_MAX)
		return -ERANGE;
	if (o->value.len > PIFS_META_XATTR_MAX)
		return -E2BIG;
	pos = xattr_pos(in, o->name.p, o->name.len, &found);
	if (found && (o->flags & XA_CREATE))
		return -EEXIST;
	if (!found && (o->flags & XA_REPLACE))
		return -ENODATA;
	x = malloc(sizeof(*x) + o->name.len + o->value.len);
	if (!x)
		return -ENOMEM;
	x->nlen = (uint8_t)o->name.len;
	x->vlen = o->value.len;
	memcpy(x->data, o->name.p, o->name.len);
	if (o->value.len)
		memcpy(x->data + o->name.len, o->value.p, o->value.len);
	if (found) {
		free(in->xattrs[pos]);
	} else {
		v = realloc(in->xattrs, (in->nxattr + 1) * sizeof(*v));
		if (!v) {
			free(x);
			return -ENOMEM;
		}
		in->xattrs = v;
		memmove(&v[pos + 1], &v[pos], (in->nxattr - pos) * sizeof(*v));
		in->nxattr++;
	}
	in->xattrs[pos] = x;
	in->ctime = o->now;
	reply_status(rep, 0, NULL);
	return 0;
}

static int op_removexattr(struct pifs_meta *m, const struct pifs_msg_REMOVEXATTR *o,
			  struct pifs_msg *rep)
{
	struct inode *in = inode_get(m, o->ino);
	uint32_t pos;
	bool found;

	if (!in)
		return -ENOENT;
	pos = xattr_pos(in, o->name.p, o->name.len, &found);
	if (!found)
		return -ENODATA;
	free(in->xattrs[pos]);
	in->nxattr--;
	memmove(&in->xattrs[pos], &in->xattrs[pos + 1], (in->nxattr - pos) * sizeof(in->xattrs[0]));
	if (in->nxattr == 0) {
		free(in->xattrs);
		in->xattrs = NULL;
	}
	in->ctime = o->now;
	reply_status(rep, 0, NULL);
	return 0;
}

static int dispatch(struct pifs_meta *m, const struct pifs_msg *op, struct pifs_msg *rep)
{
	if (op->type != PIFS_MSG_INIT && op->type != PIFS_MSG_NOOP && op->type != PIFS_MSG_VOTERS &&
	    !m->ready)
		return -EAGAIN;
	switch (op->type) {
	case PIFS_MSG_INIT:
		return op_init(m, &op->u.INIT, rep);
	case PIFS_MSG_NODE_ADD:
		return op_node_add(m, &op->u.NODE_ADD, rep);
	case PIFS_MSG_MKNOD:
		return op_mknod(m, &op->u.MKNOD, rep);
	case PIFS_MSG_SYMLINK:
		return op_symlink(m, &op->u.SYMLINK, rep);
	case PIFS_MSG_LINK:
		return op_link(m, &op->u.LINK, rep);
	case PIFS_MSG_UNLINK:
		return op_unlink(m, &op->u.UNLINK, rep);
	case PIFS_MSG_RMDIR:
		return op_rmdir(m, &op->u.RMDIR, rep);
	case PIFS_MSG_RENAME:
		return op_rename(m, &op->u.RENAME, rep);
	case PIFS_MSG_SETATTR:
		return op_setattr(m, &op->u.SETATTR, rep);
	case PIFS_MSG_COMMIT:
		return op_commit(m, &op->u.COMMIT, rep);
	case PIFS_MSG_SETXATTR:
		return op_setxattr(m, &op->u.SETXATTR, rep);
	case PIFS_MSG_REMOVEXATTR:
		return op_removexattr(m, &op->u.REMOVEXATTR, rep);
	case PIFS_MSG_NODE_SET:
		return op_node_set(m, &op->u.NODE_SET, rep);
	case PIFS_MSG_NODE_DEL:
		return op_node_del(m, &op->u.NODE_DEL, rep);
	case PIFS_MSG_NOOP:
		reply_status(rep, 0, NULL);
		return 0;
	case PIFS_MSG_VOTERS:
		return op_voters(m, &op->u.VOTERS, rep);
	default:
		return -EINVAL;
	}
}

static const char not_ready[] =
    "the metadata log has no INIT entry yet: initialise the cluster before using it";

int pifs_meta_apply(struct pifs_meta *m, uint64_t index, const struct pifs_msg *op,
		    struct pifs_msg *rep, struct pifs_buf *scratch)
{
	int64_t now = pifs_proto_now(op);
	bool once = op->flags & PIFS_MSG_ONCE;
	int rc;

	if (pifs_proto_kind(op->type) != PIFS_KIND_MUT || index != m->index + 1)
		return -EINVAL;
	pifs_buf_reset(scratch);
	if (now)
		pifs_once_sweep(&m->once, now);
	if (once) {
		rc = pifs_once_begin(&m->once, op, now, rep);
		if (rc < 0)
			return rc;
		if (rc == PIFS_ONCE_DONE) {
			m->index = index;
			return 0;
		}
	}
	rc = dispatch(m, op, rep);
	if (rc == -ENOMEM)
		return rc;
	m->index = index;
	if (rc < 0)
		reply_status(rep, rc, rc == -EAGAIN ? not_ready : NULL);
	return once ? pifs_once_end(&m->once, op, rep) : 0;
}

/* Queries. */

static int q_lookup(const struct pifs_meta *m, const struct pifs_msg_LOOKUP *q,
		    struct pifs_msg *rep)
{
	const struct inode *dir, *in;
	const struct dent *d;
	int rc = 0;

	dir = dir_get(m, q->parent, &rc);
	if (!dir)
		return rc;
	if (q->name.len > PIFS_META_NAME_MAX)
		return -ENAMETOOLONG;
	if (pifs_str_eq(q->name, ".")) {
		in = dir;
	} else if (pifs_str_eq(q->name, "..")) {
		in = inode_get(m, dir->u.dir->parent);
	} else {
		d = dent_get(m, q->parent, q->name.p, q->name.len);
		if (!d)
			return -ENOENT;
		in = inode_get(m, d->ino);
	}
	reply_attr(rep, in);
	return 0;
}

static int q_getattr(const struct pifs_meta *m, uint64_t ino, struct pifs_msg *rep)
{
	const struct inode *in = inode_get(m, ino);

	if (!in)
		return -ENOENT;
	reply_attr(rep, in);
	return 0;
}

static int q_readlink(const struct pifs_meta *m, uint64_t ino, struct pifs_msg *rep)
{
	const struct inode *in = inode_get(m, ino);

	if (!in)
		return -ENOENT;
	if (!S_ISLNK(in->mode))
		return -EINVAL;
	pifs_msg_init(rep, PIFS_MSG_R_LINK);
	rep->u.R_LINK.target.p = in->u.target;
	rep->u.R_LINK.target.len = (uint16_t)in->size;
	return 0;
}

static int q_readdir(const struct pifs_meta *m, const struct pifs_msg_READDIR *q,
		     struct pifs_msg *rep, struct pifs_buf *scratch)
{
	const struct inode *dir;
	const struct dir *dd;
	struct pifs_dirent e;
	uint32_t i, count = 0;
	uint32_t eof = 1;
	int rc = 0;

	dir = dir_get(m, q->ino, &rc);
	if (!dir)
		return rc;
	dd = dir->u.dir;
	i = q->cookie == UINT64_MAX ? dd->n : dslot_pos(dd, q->cookie + 1);
	for (; i < dd->n; i++) {
		const struct dent *d = dd->v[i].d;
		size_t before = scratch->len;

		if (!d)
			continue;
		e.cookie = d->cookie;
		fill_attr(inode_get(m, d->ino), &e.attr);
		e.name.p = d->name;
		e.name.len = d->nlen;
		if (pifs_dirent_append(scratch, &e) < 0)
			return -ENOMEM;
		if (count > 0 && scratch->len > q->max_bytes) {
			scratch->len = before;
			eof = 0;
			break;
		}
		count++;
	}
	pifs_msg_init(rep, PIFS_MSG_R_DIR);
	rep->u.R_DIR.eof = eof;
	rep->u.R_DIR.entries = pifs_list_of(scratch, count);
	return 0;
}

static int q_open(const struct pifs_meta *m, uint64_t ino, struct pifs_msg *rep,
		  struct pifs_buf *scratch)
{
	const struct inode *in = inode_get(m, ino);
	struct pifs_chunkref r;
	uint32_t i, count = 0;

	if (!in)
		return -ENOENT;
	if (S_ISREG(in->mode)) {
		for (i = 0; i < in->u.file.n; i++) {
			const struct slot *s = &in->u.file.v[i];
			const struct chunk *c = chunk_get(m, &s->id);

			r.index = s->index;
			r.id = s->id;
			r.len = s->len;
			r.raw_len = c->raw_len;
			r.stored_len = c->stored_len;
			if (pifs_chunkref_append(scratch, &r) < 0)
				return -ENOMEM;
			count++;
		}
	}
	pifs_msg_init(rep, PIFS_MSG_R_FILE);
	fill_attr(in, &rep->u.R_FILE.attr);
	rep->u.R_FILE.refs = pifs_list_of(scratch, count);
	return 0;
}

static int q_getxattr(const struct pifs_meta *m, const struct pifs_msg_GETXATTR *q,
		      struct pifs_msg *rep)
{
	const struct inode *in = inode_get(m, q->ino);
	const struct xattr *x;
	uint32_t pos;
	bool found;

	if (!in)
		return -ENOENT;
	pos = xattr_pos(in, q->name.p, q->name.len, &found);
	if (!found)
		return -ENODATA;
	x = in->xattrs[pos];
	pifs_msg_init(rep, PIFS_MSG_R_XATTR);
	rep->u.R_XATTR.value.p = (const uint8_t *)x->data + x->nlen;
	rep->u.R_XATTR.value.len = x->vlen;
	return 0;
}

static int q_listxattr(const struct pifs_meta *m, uint64_t ino, struct pifs_msg *rep,
		       struct pifs_buf *scratch)
{
	const struct inode *in = inode_get(m, ino);
	uint32_t i;

	if (!in)
		return -ENOENT;
	for (i = 0; i < in->nxattr; i++) {
		const struct xattr *x = in->xattrs[i];

		if (pifs_buf_append(scratch, x->data, x->nlen) < 0 ||
		    pifs_buf_append(scratch, "", 1) < 0)
			return -ENOMEM;
	}
	pifs_msg_init(rep, PIFS_MSG_R_XATTR);
	rep->u.R_XATTR.value.p = scratch->p;
	rep->u.R_XATTR.value.len = (uint32_t)scratch->len;
	return 0;
}

static int q_map(const struct pifs_meta *m, struct pifs_msg *rep, struct pifs_buf *scratch)
{
	struct pifs_node n;
	uint32_t i;

	for (i = 0; i < m->nnodes; i++) {
		n.id = m->nodes[i].id;
		n.weight = m->nodes[i].weight;
		n.flags = m->nodes[i].flags;
		n.addr.p = m->nodes[i].addr;
		n.addr.len = m->nodes[i].alen;
		if (pifs_node_append(scratch, &n) < 0)
			return -ENOMEM;
	}
	pifs_msg_init(rep, PIFS_MSG_R_MAP);
	rep->u.R_MAP.epoch = m->epoch;
	rep->u.R_MAP.replicas = m->replicas;
	rep->u.R_MAP.chunk_size = m->chunk_size;
	rep->u.R_MAP.cluster_id = m->cluster_id;
	rep->u.R_MAP.nodes = pifs_list_of(scratch, m->nnodes);
	return 0;
}

/* One byte per id: 1 when some file references the chunk. Garbage
 * collection on the storage nodes asks this before deleting anything. */
static int q_chunk_refs(const struct pifs_meta *m, const struct pifs_msg_CHUNK_REFS *q,
			struct pifs_msg *rep, struct pifs_buf *scratch)
{
	struct pifs_cursor c;
	struct pifs_chunkid id;
	int rc;

	if (pifs_buf_reserve(scratch, q->ids.count) < 0)
		return -ENOMEM;
	pifs_cursor_init(&c, &q->ids);
	while ((rc = pifs_chunkid_next(&c, &id)) == 1) {
		const struct chunk *ch = chunk_get(m, &id.id);

		scratch->p[scratch->len++] = ch && ch->refs > 0;
	}
	if (rc < 0)
		return rc;
	pifs_msg_init(rep, PIFS_MSG_R_HAS);
	rep->u.R_HAS.have.p = scratch->p;
	rep->u.R_HAS.have.len = (uint32_t)scratch->len;
	return 0;
}

static int answer(const struct pifs_meta *m, const struct pifs_msg *q, struct pifs_msg *rep,
		  struct pifs_buf *scratch)
{
	if (!m->ready)
		return -EAGAIN;
	switch (q->type) {
	case PIFS_MSG_LOOKUP:
		return q_lookup(m, &q->u.LOOKUP, rep);
	case PIFS_MSG_GETATTR:
		return q_getattr(m, q->u.GETATTR.ino, rep);
	case PIFS_MSG_READLINK:
		return q_readlink(m, q->u.READLINK.ino, rep);
	case PIFS_MSG_READDIR:
		return q_readdir(m, &q->u.READDIR, rep, scratch);
	case PIFS_MSG_OPEN:
		return q_open(m, q->u.OPEN.ino, rep, scratch);
	case PIFS_MSG_GETXATTR:
		return q_getxattr(m, &q->u.GETXATTR, rep);
	case PIFS_MSG_LISTXATTR:
		return q_listxattr(m, q->u.LISTXATTR.ino, rep, scratch);
	case PIFS_MSG_STATFS:
		pifs_msg_init(rep, PIFS_MSG_R_STATFS);
		rep->u.R_STATFS.inodes = m->inodes.count;
		rep->u.R_STATFS.replicas = m->replicas;
		rep->u.R_STATFS.chunk_size = m->chunk_size;
		return 0;
	case PIFS_MSG_MAP_GET:
		return q_map(m, rep, scratch);
	case PIFS_MSG_CHUNK_REFS:
		return q_chunk_refs(m, &q->u.CHUNK_REFS, rep, scratch);
	default:
		return -EINVAL;
	}
}

int pifs_meta_query(struct pifs_meta *m, const struct pifs_msg *q, struct pifs_msg *rep,
		    struct pifs_buf *scratch)
{
	int rc;

	if (pifs_proto_kind(q->type) != PIFS_KIND_QRY && q->type != PIFS_MSG_MAP_GET)
		return -EINVAL;
	pifs_buf_reset(scratch);
	rc = answer(m, q, rep, scratch);
	if (rc < 0) {
		pifs_buf_reset(scratch);
		reply_status(rep, rc, rc == -EAGAIN ? not_ready : NULL);
	}
	return 0;
}

/* Life cycle and figures. */

struct pifs_meta *pifs_meta_new(void)
{
	struct pifs_meta *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pifs_hmap_init(&m->inodes, inode_hash, inode_eq);
	pifs_hmap_init(&m->dents, dent_hash, dent_eq);
	pifs_hmap_init(&m->chunks, chunk_hash, chunk_eq);
	pifs_once_init(&m->once);
	return m;
}

/* Free everything @m holds and leave it as pifs_meta_new made it. */
static void meta_clear(struct pifs_meta *m)
{
	size_t pos = 0;
	void *e;
	uint32_t i;

	/* Entries are freed with their directories. */
	while ((e = pifs_hmap_next(&m->inodes, &pos)))
		inode_destroy(e);
	pos = 0;
	while ((e = pifs_hmap_next(&m->chunks, &pos)))
		free(e);
	for (i = 0; i < m->nnodes; i++)
		free(m->nodes[i].addr);
	free(m->nodes);
	pifs_hmap_fini(&m->inodes);
	pifs_hmap_fini(&m->dents);
	pifs_hmap_fini(&m->chunks);
	pifs_once_fini(&m->once);
	memset(m, 0, sizeof(*m));
	pifs_hmap_init(&m->inodes, inode_hash, inode_eq);
	pifs_hmap_init(&m->dents, dent_hash, dent_eq);
	pifs_hmap_init(&m->chunks, chunk_hash, chunk_eq);
	pifs_once_init(&m->once);
}

void pifs_meta_free(struct pifs_meta *m)
{
	if (!m)
		return;
	meta_clear(m);
	free(m);
}

uint64_t pifs_meta_index(const struct pifs_meta *m)
{
	return m->index;
}

void pifs_meta_stats(const struct pifs_meta *m, struct pifs_meta_stats *st)
{
	st->epoch = m->epoch;
	st->replicas = m->replicas;
	st->chunk_size = m->chunk_size;
	st->cluster_id = m->cluster_id;
	st->index = m->index;
	st->inodes = m->inodes.count;
	st->logical = m->logical;
	st->chunks = m->chunks.count;
	st->chunk_raw = m->chunk_raw;
	st->chunk_stored = m->chunk_stored;
	st->chunk_refs = m->chunk_refs;
}

int pifs_meta_node(const struct pifs_meta *m, uint32_t id, uint32_t *flags, uint32_t *weight)
{
	uint32_t i;

	for (i = 0; i < m->nnodes; i++) {
		if (m->nodes[i].id == id) {
			*flags = m->nodes[i].flags;
			*weight = m->nodes[i].weight;
			return 0;
		}
	}
	return -ENOENT;
}

/* Snapshots.
 *
 * Body, big-endian:
 *   u32 magic "PIFM" | u32 version | u64 index | u8 ready | u64 epoch |
 *   u32 replicas | u32 chunk_size | u64 cluster_id | u64 next_ino
 *   u32 nodes, each: u32 id | u32 weight | u32 flags | u16 len + addr  (by id)
 *   u64 chunks, each: id (16) | u32 raw_len | u32 stored_len       (by id)
 *   u64 inodes, each (by number):
 *     u64 ino | u32 mode | u32 nlink | u32 uid | u32 gid | u32 rdev | u64 size |
 *     i64 atime | i64 mtime | i64 ctime | u64 version |
 *     u32 xattrs, each: u8 len + name | u32 len + value              (by name)
 *     regular:   u32 slots, each: u64 index | id (16) | u32 len      (by index)
 *     directory: u64 parent | u64 next_cookie |
 *                u32 entries, each: u64 cookie | u64 ino | u8 len + name (by cookie)
 *     symlink:   the target (@size bytes)
 *   u64 XXH3-64 of all the bytes before it
 * Reference counts are not stored: load counts the slots. */

struct wr {
	struct pifs_buf *b; /* the piece being built */
	XXH3_state_t *sum;  /* the checksum of the pieces handed over */
	int (*sink)(void *ctx, const void *p, size_t len);
	void *ctx;
	int rc;
};

static void put_be(struct wr *w, uint64_t v, unsigned n)
{
	uint8_t tmp[8];
	unsigned i;

	for (i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	if (w->rc == 0)
		w->rc = pifs_buf_append(w->b, tmp, n);
}

static void put_bytes(struct wr *w, const void *p, size_t n)
{
	if (w->rc == 0)
		w->rc = pifs_buf_append(w->b, p, n);
}

static void put_id(struct wr *w, const struct pifs_chunk_id *id)
{
	put_be(w, id->hi, 8);
	put_be(w, id->lo, 8);
}

/* Hand the piece over once it holds @min bytes. */
static void flush(struct wr *w, size_t min)
{
	if (w->rc == 0 && w->b->len >= min && w->b->len > 0) {
		XXH3_64bits_update(w->sum, w->b->p, w->b->len);
		w->rc = w->sink(w->ctx, w->b->p, w->b->len);
		pifs_buf_reset(w->b);
	}
}

static int cmp_inode(const void *a, const void *b)
{
	uint64_t x = (*(const struct inode *const *)a)->ino;
	uint64_t y = (*(const struct inode *const *)b)->ino;

	return x < y ? -1 : x > y;
}

static int cmp_id(const struct pifs_chunk_id *x, const struct pifs_chunk_id *y)
{
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int cmp_chunk(const void *a, const void *b)
{
	return cmp_id(&(*(const struct chunk *const *)a)->id,
		      &(*(const struct chunk *const *)b)->id);
}

/* The elements of @h in an array (the caller frees it), sorted by @cmp. */
static void **sorted(const struct pifs_hmap *h, int (*cmp)(const void *, const void *))
{
	void **v = malloc((h->count ? h->count : 1) * sizeof(*v));
	size_t pos = 0, n = 0;
	void *e;

	if (!v)
		return NULL;
	while ((e = pifs_hmap_next(h, &pos)))
		v[n++] = e;
	qsort(v, n, sizeof(*v), cmp);
	return v;
}

static void save_inode(struct wr *w, const struct inode *in)
{
	uint32_t i;

	put_be(w, in->ino, 8);
	put_be(w, in->mode, 4);
	put_be(w, in->nlink, 4);
	put_be(w, in->uid, 4);
	put_be(w, in->gid, 4);
	put_be(w, in->rdev, 4);
	put_be(w, in->size, 8);
	put_be(w, (uint64_t)in->atime, 8);
	put_be(w, (uint64_t)in->mtime, 8);
	put_be(w, (uint64_t)in->ctime, 8);
	put_be(w, in->version, 8);
	put_be(w, in->nxattr, 4);
	for (i = 0; i < in->nxattr; i++) {
		const struct xattr *x = in->xattrs[i];

		put_be(w, x->nlen, 1);
		put_bytes(w, x->data, x->nlen);
		put_be(w, x->vlen, 4);
		put_bytes(w, x->data + x->nlen, x->vlen);
	}
	if (S_ISREG(in->mode)) {
		put_be(w, in->u.file.n, 4);
		for (i = 0; i < in->u.file.n; i++) {
			put_be(w, in->u.file.v[i].index, 8);
			put_id(w, &in->u.file.v[i].id);
			put_be(w, in->u.file.v[i].len, 4);
		}
	} else if (S_ISDIR(in->mode)) {
		const struct dir *d = in->u.dir;

		put_be(w, d->parent, 8);
		put_be(w, d->next_cookie, 8);
		put_be(w, d->live, 4);
		for (i = 0; i < d->n; i++) {
			if (!d->v[i].d)
				continue;
			put_be(w, d->v[i].cookie, 8);
			put_be(w, d->v[i].d->ino, 8);
			put_be(w, d->v[i].d->nlen, 1);
			put_bytes(w, d->v[i].d->name, d->v[i].d->nlen);
			flush(w, SAVE_PIECE);
		}
	} else if (S_ISLNK(in->mode)) {
		put_bytes(w, in->u.target, in->size);
	}
	flush(w, SAVE_PIECE);
}

static int save(const struct pifs_meta *m, struct wr *w)
{
	struct inode **inodes = NULL;
	struct chunk **chunks = NULL;
	size_t i;

	put_be(w, SNAP_MAGIC, 4);
	put_be(w, SNAP_VERSION, 4);
	put_be(w, m->index, 8);
	put_be(w, m->ready, 1);
	put_be(w, m->epoch, 8);
	put_be(w, m->replicas, 4);
	put_be(w, m->chunk_size, 4);
	put_be(w, m->cluster_id, 8);
	put_be(w, m->next_ino, 8);
	put_be(w, m->nnodes, 4);
	for (i = 0; i < m->nnodes; i++) {
		put_be(w, m->nodes[i].id, 4);
		put_be(w, m->nodes[i].weight, 4);
		put_be(w, m->nodes[i].flags, 4);
		put_be(w, m->nodes[i].alen, 2);
		put_bytes(w, m->nodes[i].addr, m->nodes[i].alen);
	}
	chunks = (struct chunk **)sorted(&m->chunks, cmp_chunk);
	inodes = (struct inode **)sorted(&m->inodes, cmp_inode);
	if (!chunks || !inodes) {
		w->rc = -ENOMEM;
		goto out_free;
	}
	put_be(w, m->chunks.count, 8);
	for (i = 0; i < m->chunks.count; i++) {
		put_id(w, &chunks[i]->id);
		put_be(w, chunks[i]->raw_len, 4);
		put_be(w, chunks[i]->stored_len, 4);
		flush(w, SAVE_PIECE);
	}
	put_be(w, m->inodes.count, 8);
	for (i = 0; i < m->inodes.count; i++)
		save_inode(w, inodes[i]);
	if (w->rc == 0)
		w->rc = pifs_once_save(&m->once, w->b);
out_free:
	free(chunks);
	free(inodes);
	return w->rc;
}

int pifs_meta_save_to(const struct pifs_meta *m, int (*sink)(void *ctx, const void *p, size_t len),
		      void *ctx)
{
	XXH3_state_t *sum = XXH3_createState();
	struct pifs_buf b;
	struct wr w = {&b, sum, sink, ctx, 0};
	uint8_t tail[8];
	unsigned i;
	int rc;

	if (!sum)
		return -ENOMEM;
	XXH3_64bits_reset(sum);
	pifs_buf_init(&b);
	rc = save(m, &w);
	if (rc == 0) {
		flush(&w, 0);
		rc = w.rc;
	}
	if (rc == 0) {
		uint64_t h = XXH3_64bits_digest(sum);

		for (i = 0; i < 8; i++)
			tail[i] = (uint8_t)(h >> (56 - 8 * i));
		rc = sink(ctx, tail, sizeof(tail));
	}
	pifs_buf_fini(&b);
	XXH3_freeState(sum);
	return rc;
}

static int append_sink(void *ctx, const void *p, size_t len)
{
	return pifs_buf_append(ctx, p, len);
}

int pifs_meta_save(const struct pifs_meta *m, struct pifs_buf *out)
{
	size_t start = out->len;
	int rc = pifs_meta_save_to(m, append_sink, out);

	if (rc < 0)
		out->len = start;
	return rc;
}

static int hash_sink(void *ctx, const void *p, size_t len)
{
	XXH3_64bits_update(ctx, p, len);
	return 0;
}

uint64_t pifs_meta_digest(const struct pifs_meta *m)
{
	XXH3_state_t *dig = XXH3_createState();
	uint64_t h = 0;

	if (!dig)
		return 0;
	XXH3_64bits_reset(dig);
	if (pifs_meta_save_to(m, hash_sink, dig) == 0)
		h = XXH3_64bits_digest(dig);
	XXH3_freeState(dig);
	return h;
}

/* Loading: every read is bounds-checked; a failed read sets @bad and
 * returns zeros, and the loader checks @bad before it trusts a length. */
struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static uint64_t get_be(struct rd *r, unsigned n)
{
	uint64_t x = 0;
	unsigned i;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	for (i = 0; i < n; i++)
		x = (x << 8) | r->p[i];
	r->p += n;
	return x;
}

static const void *get_bytes(struct rd *r, size_t n)
{
	const void *p = r->p;

	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	return p;
}

static void get_id(struct rd *r, struct pifs_chunk_id *id)
{
	id->hi = get_be(r, 8);
	id->lo = get_be(r, 8);
}

/* Can @count records of at least @min bytes each still be in @r? */
static bool fits(const struct rd *r, uint64_t count, size_t min)
{
	return !r->bad && count <= (uint64_t)(r->end - r->p) / min;
}

static int load_nodes(struct pifs_meta *m, struct rd *r)
{
	uint32_t n = (uint32_t)get_be(r, 4), i;

	if (!fits(r, n, 14))
		return -EBADMSG;
	m->nodes = calloc(n ? n : 1, sizeof(*m->nodes));
	if (!m->nodes)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct node *nd = &m->nodes[i];
		const void *p;

		nd->id = (uint32_t)get_be(r, 4);
		nd->weight = (uint32_t)get_be(r, 4);
		nd->flags = (uint32_t)get_be(r, 4);
		nd->alen = (uint16_t)get_be(r, 2);
		p = get_bytes(r, nd->alen);
		if (r->bad || (i > 0 && nd->id <= m->nodes[i - 1].id))
			return -EBADMSG;
		nd->addr = malloc(nd->alen ? nd->alen : 1);
		if (!nd->addr)
			return -ENOMEM;
		memcpy(nd->addr, p, nd->alen);
		m->nnodes++;
	}
	return 0;
}

static int load_chunks(struct pifs_meta *m, struct rd *r)
{
	uint64_t n = get_be(r, 8), i;
	struct pifs_chunk_id prev = {0, 0};

	if (!fits(r, n, 24))
		return -EBADMSG;
	if (pifs_hmap_reserve(&m->chunks, n) < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct chunk *c = malloc(sizeof(*c));

		if (!c)
			return -ENOMEM;
		get_id(r, &c->id);
		c->raw_len = (uint32_t)get_be(r, 4);
		c->stored_len = (uint32_t)get_be(r, 4);
		c->refs = 0;
		if (r->bad || cmp_id(&c->id, &prev) <= 0 || c->raw_len > PIFS_FRAME_MAX_RAW) {
			free(c);
			return -EBADMSG;
		}
		prev = c->id;
		pifs_hmap_insert(&m->chunks, c);
		m->chunk_raw += c->raw_len;
		m->chunk_stored += c->stored_len;
	}
	return 0;
}

static int load_xattrs(struct inode *in, struct rd *r)
{
	uint32_t n = (uint32_t)get_be(r, 4), i;

	if (!fits(r, n, 5))
		return -EBADMSG;
	if (n == 0)
		return 0;
	in->xattrs = calloc(n, sizeof(*in->xattrs));
	if (!in->xattrs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		uint8_t nlen = (uint8_t)get_be(r, 1);
		const char *name = get_bytes(r, nlen);
		uint32_t vlen = (uint32_t)get_be(r, 4);
		const void *value = get_bytes(r, vlen);
		struct xattr *x;

		if (r->bad || nlen == 0 || memchr(name, '\0', nlen) || vlen > PIFS_META_XATTR_MAX)
			return -EBADMSG;
		if (i > 0) {
			x = in->xattrs[i - 1];
			if (xname_cmp(x->data, x->nlen, name, nlen) >= 0)
				return -EBADMSG;
		}
		x = malloc(sizeof(*x) + nlen + vlen);
		if (!x)
			return -ENOMEM;
		x->nlen = nlen;
		x->vlen = vlen;
		memcpy(x->data, name, nlen);
		memcpy(x->data + nlen, value, vlen);
		in->xattrs[i] = x;
		in->nxattr++;
	}
	return 0;
}

static int load_slots(struct pifs_meta *m, struct inode *in, struct rd *r)
{
	uint32_t n = (uint32_t)get_be(r, 4), i;

	if (!fits(r, n, 28))
		return -EBADMSG;
	if (n && slot_reserve(in, n) < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct slot *s = &in->u.file.v[i];
		struct chunk *c;

		s->index = get_be(r, 8);
		get_id(r, &s->id);
		s->len = (uint32_t)get_be(r, 4);
		if (r->bad || (i > 0 && s->index <= in->u.file.v[i - 1].index))
			return -EBADMSG;
		c = chunk_get(m, &s->id);
		if (!c || s->len == 0 || s->len > c->raw_len || s->len > m->chunk_size ||
		    s->index > UINT64_MAX / m->chunk_size - 1 ||
		    s->index * m->chunk_size >= in->size ||
		    in->size - s->index * m->chunk_size < s->len)
			return -EBADMSG;
		c->refs++;
		m->chunk_refs++;
		in->u.file.n++;
	}
	m->logical += in->size;
	return 0;
}

static int load_dir(struct pifs_meta *m, struct inode *in, struct rd *r)
{
	struct dir *d = in->u.dir;
	uint32_t n, i;

	d->parent = get_be(r, 8);
	d->next_cookie = get_be(r, 8);
	n = (uint32_t)get_be(r, 4);
	if (!fits(r, n, 18) || in->size != DIR_SIZE)
		return -EBADMSG;
	if (n && dir_reserve(m, d, n) < 0)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		uint64_t cookie = get_be(r, 8);
		uint64_t ino = get_be(r, 8);
		uint8_t nlen = (uint8_t)get_be(r, 1);
		const char *name = get_bytes(r, nlen);
		struct dent *e;

		if (r->bad || check_name(name, nlen) < 0 || cookie < FIRST_COOKIE ||
		    cookie >= d->next_cookie || (i > 0 && cookie <= d->v[i - 1].cookie))
			return -EBADMSG;
		if (dent_get(m, in->ino, name, nlen))
			return -EBADMSG;
		e = dent_alloc(in->ino, name, nlen, ino);
		if (!e)
			return -ENOMEM;
		e->cookie = cookie;
		d->v[i].cookie = cookie;
		d->v[i].d = e;
		d->n++;
		d->live++;
		pifs_hmap_insert(&m->dents, e);
	}
	return 0;
}

static int load_inode(struct pifs_meta *m, struct rd *r, uint64_t prev, struct inode **out)
{
	struct inode *in;
	uint32_t mode;
	const void *p;
	int rc;

	*out = NULL;
	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->ino = get_be(r, 8);
	in->mode = mode = (uint32_t)get_be(r, 4);
	in->nlink = (uint32_t)get_be(r, 4);
	in->uid = (uint32_t)get_be(r, 4);
	in->gid = (uint32_t)get_be(r, 4);
	in->rdev = (uint32_t)get_be(r, 4);
	in->size = get_be(r, 8);
	in->atime = (int64_t)get_be(r, 8);
	in->mtime = (int64_t)get_be(r, 8);
	in->ctime = (int64_t)get_be(r, 8);
	in->version = get_be(r, 8);
	/* The type must be right before the union is touched, even by free. */
	if (r->bad || !valid_type(mode) || in->ino <= prev || in->ino >= m->next_ino) {
		in->mode = 0;
		inode_destroy(in);
		return -EBADMSG;
	}
	if (S_ISDIR(mode)) {
		in->u.dir = calloc(1, sizeof(*in->u.dir));
		if (!in->u.dir) {
			inode_destroy(in);
			return -ENOMEM;
		}
	}
	/* From here the inode is in the map, which frees it on failure. */
	if (pifs_hmap_insert(&m->inodes, in) < 0) {
		inode_destroy(in);
		return -ENOMEM;
	}
	*out = in;
	rc = load_xattrs(in, r);
	if (rc < 0)
		return rc;
	if (S_ISREG(mode))
		return load_slots(m, in, r);
	if (S_ISDIR(mode))
		return load_dir(m, in, r);
	if (S_ISLNK(mode)) {
		if (in->size == 0 || in->size > PIFS_META_PATH_MAX)
			return -EBADMSG;
		p = get_bytes(r, in->size);
		if (r->bad)
			return -EBADMSG;
		in->u.target = malloc(in->size);
		if (!in->u.target)
			return -ENOMEM;
		memcpy(in->u.target, p, in->size);
	}
	return 0;
}

/* The position of inode @ino in @v (@n, sorted by number), or @n. */
static size_t find_pos(struct inode **v, size_t n, uint64_t ino)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid]->ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo]->ino == ino ? lo : n;
}

/* Check that the loaded inodes (@v, @n, by number) form one tree from the
 * root: every entry names an inode, every link count is the number of
 * entries (directories: 2 + subdirectories), every directory but the root
 * has exactly one entry and ".." naming its holder, and every directory is
 * reachable from the root (no cycle hides beside the tree). */
static int check_tree(struct pifs_meta *m, struct inode **v, size_t n)
{
	uint32_t *links = calloc(n ? n : 1, sizeof(*links));
	struct inode **stack = NULL;
	size_t i, j, ndirs = 0, top = 0, seen = 0;
	int rc = -EBADMSG;

	if (!links)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct dir *d;
		uint64_t subdirs = 0;

		if (!S_ISDIR(v[i]->mode))
			continue;
		ndirs++;
		d = v[i]->u.dir;
		for (j = 0; j < d->n; j++) {
			size_t t = find_pos(v, n, d->v[j].d->ino);

			if (t == n || v[t]->ino == PIFS_META_ROOT || links[t] == UINT32_MAX)
				goto out_free;
			links[t]++;
			if (S_ISDIR(v[t]->mode)) {
				if (v[t]->u.dir->parent != v[i]->ino)
					goto out_free;
				subdirs++;
			}
		}
		if (v[i]->nlink != 2 + subdirs)
			goto out_free;
	}
	for (i = 0; i < n; i++) {
		if (S_ISDIR(v[i]->mode) ? links[i] != (v[i]->ino != PIFS_META_ROOT)
					: links[i] != v[i]->nlink || links[i] == 0)
			goto out_free;
	}
	if (n == 0 || v[0]->ino != PIFS_META_ROOT || !S_ISDIR(v[0]->mode) ||
	    v[0]->u.dir->parent != PIFS_META_ROOT)
		goto out_free;
	stack = malloc(ndirs * sizeof(*stack));
	if (!stack) {
		rc = -ENOMEM;
		goto out_free;
	}
	stack[top++] = v[0];
	while (top > 0) {
		const struct dir *d = stack[--top]->u.dir;

		seen++;
		for (j = 0; j < d->n; j++) {
			struct inode *t = inode_get(m, d->v[j].d->ino);

			if (S_ISDIR(t->mode)) {
				if (top == ndirs)
					goto out_free;
				stack[top++] = t;
			}
		}
	}
	rc = seen == ndirs ? 0 : -EBADMSG;
out_free:
	free(stack);
	free(links);
	return rc;
}

static int load(struct pifs_meta *m, struct rd *r)
{
	struct inode **v = NULL;
	uint64_t n, i, prev = 0, version, ready;
	size_t pos = 0, used;
	struct chunk *c;
	int rc;

	if (get_be(r, 4) != SNAP_MAGIC)
		return -EBADMSG;
	version = get_be(r, 4);
	if (version != 1 && version != SNAP_VERSION)
		return -EBADMSG;
	m->index = get_be(r, 8);
	ready = get_be(r, 1);
	m->ready = ready != 0;
	m->epoch = get_be(r, 8);
	m->replicas = (uint32_t)get_be(r, 4);
	m->chunk_size = (uint32_t)get_be(r, 4);
	m->cluster_id = get_be(r, 8);
	m->next_ino = get_be(r, 8);
	/* save writes ready as 0 or 1: anything else would load as a state
	 * whose snapshot is other bytes. */
	if (r->bad || ready > 1 ||
	    (m->ready && (m->chunk_size == 0 || m->chunk_size > PIFS_FRAME_MAX_RAW ||
			  m->replicas == 0)))
		return -EBADMSG;
	rc = load_nodes(m, r);
	if (rc == 0)
		rc = load_chunks(m, r);
	if (rc < 0)
		return rc;
	n = get_be(r, 8);
	if (!fits(r, n, 72) || (!m->ready && (n || m->nnodes || m->chunks.count)))
		return -EBADMSG;
	if (pifs_hmap_reserve(&m->inodes, n) < 0)
		return -ENOMEM;
	v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		rc = load_inode(m, r, prev, &v[i]);
		if (rc < 0)
			goto out_free;
		prev = v[i]->ino;
	}
	if (version >= 2) {
		rc = pifs_once_load(&m->once, r->p, (size_t)(r->end - r->p), &used);
		if (rc < 0)
			goto out_free;
		r->p += used;
	}
	rc = -EBADMSG;
	if (r->p != r->end)
		goto out_free;
	while ((c = pifs_hmap_next(&m->chunks, &pos)))
		if (c->refs == 0)
			goto out_free;
	rc = m->ready ? check_tree(m, v, n) : 0;
out_free:
	free(v);
	return rc;
}

int pifs_meta_load(struct pifs_meta *m, const void *p, size_t len)
{
	const uint8_t *b = p;
	struct rd r, tail;
	int rc;

	if (m->index || m->ready)
		return -EINVAL;
	if (len < 8)
		return -EBADMSG;
	r = (struct rd){b, b + len - 8, false};
	tail = (struct rd){b + len - 8, b + len, false};
	if (XXH3_64bits(b, len - 8) != get_be(&tail, 8))
		return -EBADMSG;
	rc = load(m, &r);
	if (rc < 0)
		meta_clear(m);
	return rc;
}
