/* fuzz_raftlog.c - a voter's files as found on its disk after anything:
 * opening them may fail, but never crash or leak, and a log that opens
 * reads back every entry and takes one more.
 *
 * An input is a 9-byte header, then the files' bytes:
 *   u8 flags (bit 0: no raft.hard, bit 1: no raft.log, bit 2: no
 *   raft.snap, bit 3: keep the checksums as they are) | u32 length of
 *   raft.hard | u32 length of raft.log |
 *   raft.hard | raft.log | raft.snap (the rest)
 * (big-endian; lengths past the end are cut to it). Without bit 3 every
 * checksum in the files is put right first (fuzz_sum.h), so that the
 * fuzzer gets past them to the parsers. Each input gets a
 * fresh directory under $TMPDIR (or /tmp), removed afterwards. */
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_sum.h"
#include "meta.h"
#include "raftlog.h"

#define HEAD 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* Write @len bytes at @p to @dir/@name, first putting right its checksums
 * with @fix unless it is NULL. */
static void put_file(const char *dir, const char *name, const uint8_t *p, size_t len,
		     void (*fix)(uint8_t *p, size_t len))
{
	uint8_t *copy = malloc(len ? len : 1);
	char path[1024];
	int fd;

	if (!copy)
		abort();
	memcpy(copy, p, len);
	if (fix)
		fix(copy, len);
	p = copy;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (len > 0 && write(fd, p, len) != (ssize_t)len))
		abort();
	close(fd);
	free(copy);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The lowest free descriptor: the same before and after an input, or the
 * input leaked one. */
static int lowest_fd(void)
{
	int fd = open("/dev/null", O_RDONLY);

	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

struct walk {
	uint64_t next, sum;
};

static int each(void *ctx, uint64_t index, const struct pifs_raft_entry *e)
{
	struct walk *w = ctx;

	/* Entries come oldest first, one after another. */
	if (w->next != 0 && index != w->next)
		abort();
	w->next = index + 1;
	for (uint32_t i = 0; i < e->len; i++)
		w->sum += e->data[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pifs_raft_conf voters = {1, {1}};
	static const uint8_t noop[] = {0};
	const char *tmp = getenv("TMPDIR");
	char dir[512];
	struct pifs_raft_entry e = {.type = PIFS_RAFT_NOOP, .data = noop, .len = 0};
	struct pifs_raft_state st;
	struct pifs_raftlog *l = NULL;
	struct walk w = {0, 0};
	struct pifs_meta *m;
	size_t hard, loglen, off = HEAD;
	int fd0, keep;

	if (size < HEAD)
		return 0;
	keep = data[0] & 8;
	hard = be32(data + 1);
	if (hard > size - off)
		hard = size - off;
	loglen = be32(data + 5);
	if (loglen > size - off - hard)
		loglen = size - off - hard;
	fd0 = lowest_fd();
	snprintf(dir, sizeof(dir), "%s/pifs-fuzz-raftlog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		abort();
	if (!(data[0] & 1))
		put_file(dir, "raft.hard", data + off, hard, keep ? NULL : fuzz_sum_tail);
	off += hard;
	if (!(data[0] & 2))
		put_file(dir, "raft.log", data + off, loglen, keep ? NULL : fuzz_sum_raftlog);
	off += loglen;
	if (!(data[0] & 4))
		put_file(dir, "raft.snap", data + off, size - off, keep ? NULL : fuzz_sum_raftsnap);

	m = pifs_meta_new();
	if (!m)
		abort();
	if (pifs_raftlog_open(dir, &voters, m, &l, &st) == 0) {
		uint64_t last;

		if (pifs_raftlog_entries(l, each, &w) == 0 && w.next != 0 &&
		    w.next != pifs_raftlog_last_index(l) + 1)
			abort();
		last = pifs_raftlog_last_index(l);
		e.term = st.term > 0 ? st.term : 1;
		if (last < UINT64_MAX && pifs_raftlog_append(l, last + 1, &e) == 0)
			(void)pifs_raftlog_write(l);
		pifs_raftlog_close(l);
	}
	pifs_meta_free(m);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if (lowest_fd() != fd0)
		abort();
	return 0;
}
