/* test_store.c - the chunk store keeps, serves, counts, lists, verifies and
 * quarantines chunks, and deletes for garbage collection only what no put
 * has touched since the cut-off. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

static char base[64]; /* the test's directory, removed whole afterwards */
static char dir[128]; /* the data directory in it */
static struct pifs_store *st;
static struct pifs_buf scratch;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	mkdir("/tmp/pifs-storaged", 0755);
	snprintf(base, sizeof(base), "/tmp/pifs-storaged/store-XXXXXX");
	cr_assert_not_null(mkdtemp(base));
	snprintf(dir, sizeof(dir), "%s/data", base);
	pifs_buf_init(&scratch);
	st = NULL;
}

static void teardown(void)
{
	pifs_store_close(st);
	pifs_buf_fini(&scratch);
	nftw(base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store, .init = setup, .fini = teardown);

/* A frame of @len bytes of @seed-dependent data; @text makes it compressible. */
static struct pifs_frame make_frame(size_t len, unsigned seed, bool text)
{
	struct pifs_frame f;
	uint8_t *raw = malloc(len ? len : 1);
	size_t i;

	cr_assert_not_null(raw);
	for (i = 0; i < len; i++)
		raw[i] = text ? (uint8_t)("pifs chunk store "[(i + seed) % 17])
			      : (uint8_t)((i * 2654435761u + seed * 40503u) >> 13);
	cr_assert_eq(pifs_frame_pack(&f, raw, len), 0);
	free(raw);
	return f;
}

static void open_store(uint64_t reserve)
{
	cr_assert_eq(pifs_store_open(dir, reserve, &st), 0);
}

static void path_of(const struct pifs_chunk_id *id, char *out, size_t cap)
{
	char hex[33];

	pifs_chunk_id_hex(id, hex);
	snprintf(out, cap, "%s/chunks/%.2s/%.2s/%s", dir, hex, hex + 2, hex);
}

static void quarantine_path_of(const struct pifs_chunk_id *id, char *out, size_t cap)
{
	char hex[33];

	pifs_chunk_id_hex(id, hex);
	snprintf(out, cap, "%s/quarantine/%s", dir, hex);
}

/* Overwrite one byte of the file at @path. */
static void poke(const char *path, off_t off, uint8_t v)
{
	int fd = open(path, O_WRONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, &v, 1, off), 1);
	close(fd);
}

static bool exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static struct pifs_store_stat stat_of(void)
{
	struct pifs_store_stat s;

	cr_assert_eq(pifs_store_stat(st, &s), 0);
	return s;
}

Test(store, put_then_get_returns_the_same_frame)
{
	struct pifs_frame raw = make_frame(100000, 1, false), lz = make_frame(200000, 2, true);
	void *got;
	size_t len;

	cr_assert_eq(lz.hdr.codec, PIFS_CODEC_LZ4, "the text frame should be compressed");
	open_store(0);
	cr_assert_eq(pifs_store_put(st, raw.data, raw.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, lz.data, lz.len, PIFS_STORE_SYNC, &scratch), 0);
	cr_assert_eq(pifs_store_get(st, &raw.hdr.id, &scratch, &got, &len), 0);
	cr_assert_eq(len, raw.len);
	cr_assert_arr_eq(got, raw.data, len);
	free(got);
	cr_assert_eq(pifs_store_get(st, &lz.hdr.id, &scratch, &got, &len), 0);
	cr_assert_eq(len, lz.len);
	cr_assert_arr_eq(got, lz.data, len);
	free(got);
	pifs_frame_release(&raw);
	pifs_frame_release(&lz);
}

Test(store, keeps_a_chunk_as_its_frame_under_a_fanned_out_name)
{
	struct pifs_frame f = make_frame(5000, 3, false);
	char path[PATH_MAX];
	struct stat sb;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(stat(path, &sb), 0, "no file at %s", path);
	cr_assert_eq((size_t)sb.st_size, f.len);
	pifs_frame_release(&f);
}

/* Entries of @dir/tmp, the files of chunks being written. */
static int tmp_files(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/tmp", dir);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(store, a_chunk_written_in_pieces_is_placed_only_when_finished)
{
	struct pifs_frame f = make_frame(300000, 40, false);
	struct pifs_store_tmp *t;
	char path[PATH_MAX];
	void *got;
	size_t len, off, n;

	open_store(0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(pifs_store_begin(st, &f.hdr.id, f.len, &t), 0);
	for (off = 0; off < f.len; off += n) {
		n = f.len - off < 65536 ? f.len - off : 65536;
		cr_assert_eq(pifs_store_append(t, (const uint8_t *)f.data + off, n), 0);
		cr_assert_not(exists(path), "a chunk must not appear before it is whole");
	}
	cr_assert_eq(tmp_files(), 1);
	cr_assert_eq(pifs_store_finish(st, t, f.data, f.len, PIFS_STORE_SYNC, &scratch), 0);
	cr_assert_eq(tmp_files(), 0);
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), 0);
	cr_assert_eq(len, f.len);
	cr_assert_arr_eq(got, f.data, len);
	free(got);
	cr_assert_eq(stat_of().chunks, 1);
	cr_assert_eq(stat_of().bytes, f.len);
	pifs_frame_release(&f);
}

Test(store, an_aborted_or_short_chunk_in_pieces_leaves_nothing)
{
	struct pifs_frame f = make_frame(100000, 41, false);
	struct pifs_store_tmp *t;
	char path[PATH_MAX];

	open_store(0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(pifs_store_begin(st, &f.hdr.id, f.len, &t), 0);
	cr_assert_eq(pifs_store_append(t, f.data, 1000), 0);
	pifs_store_abort(st, t);
	cr_assert_eq(tmp_files(), 0);
	cr_assert_eq(pifs_store_begin(st, &f.hdr.id, f.len, &t), 0);
	cr_assert_eq(pifs_store_append(t, f.data, f.len - 1), 0);
	cr_assert_eq(pifs_store_finish(st, t, f.data, f.len, 0, &scratch), -EINVAL,
		     "a file one byte short must not become the chunk");
	cr_assert_eq(tmp_files(), 0);
	cr_assert_not(exists(path));
	cr_assert_eq(stat_of().chunks, 0);
	pifs_store_abort(st, NULL);
	pifs_frame_release(&f);
}

Test(store, a_chunk_in_pieces_that_is_here_already_keeps_one_copy_and_the_reserve_holds)
{
	struct pifs_frame f = make_frame(50000, 42, false), g = make_frame(50000, 43, false);
	struct pifs_store_tmp *t;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_begin(st, &f.hdr.id, f.len, &t), 0);
	cr_assert_eq(pifs_store_append(t, f.data, f.len), 0);
	cr_assert_eq(pifs_store_finish(st, t, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(stat_of().chunks, 1);
	cr_assert_eq(stat_of().bytes, f.len);
	cr_assert_eq(tmp_files(), 0);
	pifs_store_close(st);
	open_store(UINT64_MAX / 2);
	t = (struct pifs_store_tmp *)1;
	cr_assert_eq(pifs_store_begin(st, &g.hdr.id, g.len, &t), -ENOSPC);
	cr_assert_null(t);
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

Test(store, get_of_a_missing_chunk_is_enoent)
{
	struct pifs_chunk_id id = {1, 2};
	void *got = NULL;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_get(st, &id, &scratch, &got, &len), -ENOENT);
	cr_assert_null(got);
}

Test(store, put_of_a_chunk_already_here_keeps_one_copy)
{
	struct pifs_frame f = make_frame(4096, 4, false);
	struct pifs_store_stat s;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, PIFS_STORE_SYNC, &scratch), 0);
	s = stat_of();
	cr_assert_eq(s.chunks, 1);
	cr_assert_eq(s.bytes, f.len);
	pifs_frame_release(&f);
}

Test(store, put_replaces_a_corrupt_copy_and_quarantines_it)
{
	struct pifs_frame f = make_frame(4096, 5, false);
	char path[PATH_MAX], qpath[PATH_MAX];
	struct pifs_store_stat s;
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	poke(path, PIFS_FRAME_HDR + 7, (uint8_t)(f.data[PIFS_FRAME_HDR + 7] ^ 0x40));
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	quarantine_path_of(&f.hdr.id, qpath, sizeof(qpath));
	cr_assert_not(exists(qpath), "a repaired chunk must not look lost after a restart");
	strcat(qpath, ".repaired");
	cr_assert(exists(qpath), "the damaged copy should be kept in quarantine");
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), 0);
	cr_assert_arr_eq(got, f.data, f.len);
	free(got);
	s = stat_of();
	cr_assert_eq(s.chunks, 1);
	cr_assert_eq(s.corrupt, 1);
	cr_assert_eq(s.lost, 0);
	pifs_frame_release(&f);
}

Test(store, get_quarantines_a_flipped_bit_and_says_ebadmsg)
{
	struct pifs_frame f = make_frame(70000, 6, true);
	char path[PATH_MAX], qpath[PATH_MAX];
	struct pifs_store_stat s;
	void *got = NULL;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	poke(path, (off_t)f.len - 1, (uint8_t)(f.data[f.len - 1] ^ 1));
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), -EBADMSG);
	cr_assert_null(got);
	quarantine_path_of(&f.hdr.id, qpath, sizeof(qpath));
	cr_assert(exists(qpath));
	cr_assert_not(exists(path), "a corrupt chunk must not stay where it is served from");
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), -ENOENT);
	s = stat_of();
	cr_assert_eq(s.chunks, 0);
	cr_assert_eq(s.bytes, 0);
	cr_assert_eq(s.corrupt, 1);
	pifs_frame_release(&f);
}

Test(store, get_quarantines_a_truncated_chunk)
{
	struct pifs_frame f = make_frame(9000, 7, false);
	char path[PATH_MAX];
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(truncate(path, 100), 0);
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), -EBADMSG);
	cr_assert_eq(stat_of().corrupt, 1);
	pifs_frame_release(&f);
}

Test(store, get_quarantines_a_file_that_holds_another_chunk)
{
	struct pifs_frame a = make_frame(3000, 8, false), b = make_frame(3000, 9, false);
	char pa[PATH_MAX], pb[PATH_MAX];
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, a.data, a.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, b.data, b.len, 0, &scratch), 0);
	path_of(&a.hdr.id, pa, sizeof(pa));
	path_of(&b.hdr.id, pb, sizeof(pb));
	cr_assert_eq(rename(pa, pb), 0);
	cr_assert_eq(pifs_store_get(st, &b.hdr.id, &scratch, &got, &len), -EBADMSG);
	pifs_frame_release(&a);
	pifs_frame_release(&b);
}

Test(store, get_quarantines_a_frame_of_another_version)
{
	struct pifs_frame f = make_frame(3000, 10, false);
	char path[PATH_MAX];
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	poke(path, 4, PIFS_FRAME_VERSION + 1);
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), -EBADMSG);
	cr_assert_eq(stat_of().corrupt, 1);
	pifs_frame_release(&f);
}

Test(store, put_of_a_frame_that_does_not_parse_is_ebadmsg)
{
	struct pifs_frame f = make_frame(3000, 11, false);

	open_store(0);
	f.data[0] ^= 0xff;
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), -EBADMSG);
	cr_assert_eq(pifs_store_put(st, f.data, 10, 0, &scratch), -EBADMSG);
	cr_assert_eq(stat_of().chunks, 0);
	pifs_frame_release(&f);
}

Test(store, refuses_new_chunks_below_the_reserve_with_enospc_but_serves_and_dedups)
{
	struct pifs_frame f = make_frame(3000, 12, false), g = make_frame(3000, 13, false);
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	pifs_store_close(st);
	/* No disk has this much free, so every new chunk crosses the reserve. */
	open_store(UINT64_MAX / 2);
	cr_assert_eq(pifs_store_put(st, g.data, g.len, 0, &scratch), -ENOSPC);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0,
		     "a chunk already here takes no space");
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), 0);
	free(got);
	cr_assert_eq(stat_of().chunks, 1);
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

Test(store, del_removes_a_chunk_and_its_count)
{
	struct pifs_frame f = make_frame(3000, 14, false);
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_del(st, &f.hdr.id), 0);
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), -ENOENT);
	cr_assert_eq(stat_of().chunks, 0);
	cr_assert_eq(stat_of().bytes, 0);
	pifs_frame_release(&f);
}

Test(store, del_of_a_missing_chunk_is_enoent)
{
	struct pifs_chunk_id id = {3, 4};

	open_store(0);
	cr_assert_eq(pifs_store_del(st, &id), -ENOENT);
}

Test(store, sync_of_chunks_here_succeeds)
{
	struct pifs_frame f[3] = {make_frame(100, 15, false), make_frame(200, 16, false),
				  make_frame(300, 17, false)};
	struct pifs_chunk_id ids[3];
	int i;

	open_store(0);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(pifs_store_put(st, f[i].data, f[i].len, 0, &scratch), 0);
		ids[i] = f[i].hdr.id;
	}
	cr_assert_eq(pifs_store_sync(st, ids, 3), 0);
	cr_assert_eq(pifs_store_sync(st, ids, 0), 0);
	for (i = 0; i < 3; i++)
		pifs_frame_release(&f[i]);
}

Test(store, sync_of_a_missing_chunk_is_enoent_and_still_syncs_the_others)
{
	struct pifs_frame f = make_frame(100, 18, false);
	struct pifs_chunk_id ids[2];

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	ids[0] = (struct pifs_chunk_id){5, 6};
	ids[1] = f.hdr.id;
	cr_assert_eq(pifs_store_sync(st, ids, 2), -ENOENT);
	pifs_frame_release(&f);
}

Test(store, open_counts_the_chunks_already_on_disk)
{
	struct pifs_frame a = make_frame(1000, 19, false), b = make_frame(2000, 20, false);
	struct pifs_store_stat s;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, a.data, a.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, b.data, b.len, 0, &scratch), 0);
	pifs_store_close(st);
	open_store(0);
	s = stat_of();
	cr_assert_eq(s.chunks, 2);
	cr_assert_eq(s.bytes, a.len + b.len);
	cr_assert_gt(s.capacity, 0);
	cr_assert_leq(s.free, s.capacity);
	pifs_frame_release(&a);
	pifs_frame_release(&b);
}

Test(store, open_empties_the_tmp_directory)
{
	char path[PATH_MAX];
	FILE *f;

	open_store(0);
	pifs_store_close(st);
	st = NULL;
	snprintf(path, sizeof(path), "%s/tmp/leftover", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("half a chunk", f);
	fclose(f);
	open_store(0);
	cr_assert_not(exists(path));
}

Test(store, open_of_a_directory_in_use_is_ebusy)
{
	struct pifs_store *other = NULL;

	open_store(0);
	cr_assert_eq(pifs_store_open(dir, 0, &other), -EBUSY);
	cr_assert_null(other);
}

Test(store, open_without_the_parent_directory_is_enoent)
{
	char deep[PATH_MAX];

	snprintf(deep, sizeof(deep), "%s/not-mounted/data", base);
	cr_assert_eq(pifs_store_open(deep, 0, &st), -ENOENT);
	cr_assert_not(exists(deep));
}

Test(store, open_of_a_file_is_enotdir)
{
	FILE *f = fopen(dir, "w");

	cr_assert_not_null(f);
	fclose(f);
	cr_assert_eq(pifs_store_open(dir, 0, &st), -ENOTDIR);
}

Test(store, open_of_an_overlong_path_is_enametoolong)
{
	char *longpath = malloc(PATH_MAX + 1);

	cr_assert_not_null(longpath);
	memset(longpath, 'a', PATH_MAX);
	longpath[0] = '/';
	longpath[PATH_MAX] = '\0';
	cr_assert_eq(pifs_store_open(longpath, 0, &st), -ENAMETOOLONG);
	free(longpath);
}

struct racer {
	struct pifs_frame *f;
	int rc;
};

static void *race_put(void *arg)
{
	struct racer *r = arg;
	struct pifs_buf s;
	int i;

	pifs_buf_init(&s);
	for (i = 0; i < 50 && r->rc == 0; i++)
		r->rc = pifs_store_put(st, r->f->data, r->f->len, 0, &s);
	pifs_buf_fini(&s);
	return NULL;
}

Test(store, writers_of_the_same_chunk_at_once_leave_one_counted_copy)
{
	struct pifs_frame f = make_frame(50000, 21, false);
	struct racer r[4];
	pthread_t t[4];
	struct pifs_store_stat s;
	int i;

	open_store(0);
	for (i = 0; i < 4; i++) {
		r[i] = (struct racer){&f, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, race_put, &r[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].rc, 0);
	}
	s = stat_of();
	cr_assert_eq(s.chunks, 1);
	cr_assert_eq(s.bytes, f.len);
	pifs_frame_release(&f);
}

Test(store, has_says_which_chunks_are_here)
{
	struct pifs_frame f = make_frame(3000, 40, false), g = make_frame(3000, 41, false);

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_has(st, &f.hdr.id), 1);
	cr_assert_eq(pifs_store_has(st, &g.hdr.id), 0);
	cr_assert_eq(pifs_store_del(st, &f.hdr.id), 0);
	cr_assert_eq(pifs_store_has(st, &f.hdr.id), 0);
	pifs_frame_release(&f);
	pifs_frame_release(&g);
}

struct seen {
	struct pifs_chunk_id ids[8];
	uint64_t sizes[8];
	int n;
	int stop_at; /* return 7 at this call; 0: never */
};

static int note(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 8);
	s->ids[s->n] = *id;
	s->sizes[s->n] = size;
	s->n++;
	return s->n == s->stop_at ? 7 : 0;
}

static int index_of(const struct seen *s, const struct pifs_chunk_id *id)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (pifs_chunk_id_eq(&s->ids[i], id))
			return i;
	return -1;
}

Test(store, each_visits_every_chunk_once_with_its_size_and_nothing_else)
{
	struct pifs_frame f[3] = {make_frame(1000, 42, false), make_frame(2000, 43, true),
				  make_frame(3000, 44, false)};
	struct seen s = {.n = 0};
	char path[PATH_MAX];
	int i, at;
	FILE *fp;

	open_store(0);
	for (i = 0; i < 3; i++)
		cr_assert_eq(pifs_store_put(st, f[i].data, f[i].len, 0, &scratch), 0);
	/* Strays in the fan-out are not chunks. */
	snprintf(path, sizeof(path), "%s/chunks/README", dir);
	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	path_of(&f[0].hdr.id, path, sizeof(path));
	strcpy(strrchr(path, '/') + 1, "not-a-chunk");
	fp = fopen(path, "w");
	cr_assert_not_null(fp);
	fclose(fp);
	cr_assert_eq(pifs_store_each(st, note, &s), 0);
	cr_assert_eq(s.n, 3);
	for (i = 0; i < 3; i++) {
		at = index_of(&s, &f[i].hdr.id);
		cr_assert_geq(at, 0, "chunk %d was not visited", i);
		cr_assert_eq(s.sizes[at], f[i].len);
		pifs_frame_release(&f[i]);
	}
}

Test(store, each_stops_at_the_first_non_zero_return_and_returns_it)
{
	struct pifs_frame f[3] = {make_frame(1000, 45, false), make_frame(1000, 46, false),
				  make_frame(1000, 47, false)};
	struct seen s = {.n = 0, .stop_at = 2};
	int i;

	open_store(0);
	for (i = 0; i < 3; i++)
		cr_assert_eq(pifs_store_put(st, f[i].data, f[i].len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_each(st, note, &s), 7);
	cr_assert_eq(s.n, 2);
	for (i = 0; i < 3; i++)
		pifs_frame_release(&f[i]);
}

static int del_each(const struct pifs_chunk_id *id, uint64_t size, void *arg)
{
	(void)size;
	(*(int *)arg)++;
	return pifs_store_del(st, id);
}

Test(store, each_lets_its_callback_delete_what_it_visits)
{
	struct pifs_frame f[3] = {make_frame(1000, 48, false), make_frame(1000, 49, false),
				  make_frame(1000, 50, false)};
	int i, n = 0;

	open_store(0);
	for (i = 0; i < 3; i++)
		cr_assert_eq(pifs_store_put(st, f[i].data, f[i].len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_each(st, del_each, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(stat_of().chunks, 0);
	for (i = 0; i < 3; i++)
		pifs_frame_release(&f[i]);
}

Test(store, each_of_a_store_whose_chunks_directory_is_gone_is_enoent)
{
	char path[PATH_MAX];
	struct seen s = {.n = 0};

	open_store(0);
	snprintf(path, sizeof(path), "%s/chunks", dir);
	cr_assert_eq(rmdir(path), 0);
	cr_assert_eq(pifs_store_each(st, note, &s), -ENOENT);
}

Test(store, verify_passes_a_sound_chunk_and_quarantines_a_flipped_bit)
{
	struct pifs_frame f = make_frame(80000, 51, false);
	char path[PATH_MAX], qpath[PATH_MAX];

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, PIFS_STORE_SYNC, &scratch), 0);
	cr_assert_eq(pifs_store_verify(st, &f.hdr.id, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	poke(path, PIFS_FRAME_HDR + 10, (uint8_t)(f.data[PIFS_FRAME_HDR + 10] ^ 0x80));
	cr_assert_eq(pifs_store_verify(st, &f.hdr.id, &scratch), -EBADMSG);
	quarantine_path_of(&f.hdr.id, qpath, sizeof(qpath));
	cr_assert(exists(qpath));
	cr_assert_not(exists(path));
	cr_assert_eq(pifs_store_verify(st, &f.hdr.id, &scratch), -ENOENT);
	cr_assert_eq(stat_of().corrupt, 1);
	pifs_frame_release(&f);
}

/* Set the time of the file at @path to @ago_s seconds ago. */
static void age(const char *path, long ago_s)
{
	struct timespec t[2];

	clock_gettime(CLOCK_REALTIME, &t[0]);
	t[0].tv_sec -= ago_s;
	t[1] = t[0];
	cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

static int64_t mtime_ns(const char *path)
{
	struct stat sb;

	cr_assert_eq(stat(path, &sb), 0);
	return (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

Test(store, put_of_a_chunk_already_here_sets_its_time_to_now)
{
	struct pifs_frame f = make_frame(4000, 30, false);
	char path[PATH_MAX];
	int64_t before;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	age(path, 7200);
	before = now_ns();
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_geq(mtime_ns(path), before - 1000000000,
		      "a second upload of a chunk must count as a new upload");
	cr_assert_eq(stat_of().chunks, 1);
	pifs_frame_release(&f);
}

Test(store, del_older_keeps_a_chunk_written_since_the_cutoff)
{
	struct pifs_frame f = make_frame(4000, 31, false);
	char path[PATH_MAX];
	uint64_t size = 0;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(pifs_store_del_older(st, &f.hdr.id, now_ns() - 3600000000000ll, false, &size),
		     0);
	cr_assert(exists(path));
	cr_assert_eq(size, f.len);
	cr_assert_eq(stat_of().chunks, 1);
	pifs_frame_release(&f);
}

Test(store, del_older_deletes_an_older_chunk_and_a_dry_run_only_says_so)
{
	struct pifs_frame f = make_frame(4000, 32, false);
	char path[PATH_MAX];
	uint64_t size = 0;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	age(path, 7200);
	cr_assert_eq(pifs_store_del_older(st, &f.hdr.id, now_ns() - 3600000000000ll, true, &size),
		     1);
	cr_assert(exists(path), "a dry run deleted the chunk");
	cr_assert_eq(size, f.len);
	cr_assert_eq(pifs_store_del_older(st, &f.hdr.id, now_ns() - 3600000000000ll, false, &size),
		     1);
	cr_assert_not(exists(path));
	cr_assert_eq(stat_of().chunks, 0);
	cr_assert_eq(stat_of().bytes, 0);
	pifs_frame_release(&f);
}

Test(store, del_older_of_a_missing_chunk_is_enoent)
{
	struct pifs_chunk_id id = {5, 6};
	uint64_t size;

	open_store(0);
	cr_assert_eq(pifs_store_del_older(st, &id, now_ns(), false, &size), -ENOENT);
}

struct collector {
	const struct pifs_chunk_id *id;
	volatile bool stop;
	int deleted, rc;
};

/* Delete the chunk whenever it is older than now, as a sweep with no
 * grace would, until told to stop. */
static void *race_collect(void *arg)
{
	struct collector *c = arg;
	uint64_t size;
	int rc;

	while (!c->stop && c->rc == 0) {
		rc = pifs_store_del_older(st, c->id, now_ns(), false, &size);
		if (rc == 1)
			c->deleted++;
		else if (rc < 0 && rc != -ENOENT)
			c->rc = rc;
	}
	return NULL;
}

struct uploader {
	const struct pifs_frame *f;
	int rc, stale;
};

/* Make the chunk an hour old, then put it again; the file (unless deleted
 * since) must then be no older than the put. File times come from the
 * kernel's coarse clock, a tick behind now_ns(): hence the slack. */
static void *race_upload(void *arg)
{
	struct uploader *u = arg;
	char path[PATH_MAX];
	struct timespec t[2];
	struct pifs_buf s;
	uint64_t size;
	int64_t t0;
	int i;

	pifs_buf_init(&s);
	path_of(&u->f->hdr.id, path, sizeof(path));
	for (i = 0; i < 300 && u->rc == 0; i++) {
		clock_gettime(CLOCK_REALTIME, &t[0]);
		t[0].tv_sec -= 3600;
		t[1] = t[0];
		utimensat(AT_FDCWD, path, t, 0);
		t0 = now_ns() - 50000000;
		u->rc = pifs_store_put(st, u->f->data, u->f->len, 0, &s);
		if (pifs_store_del_older(st, &u->f->hdr.id, t0, true, &size) == 1)
			u->stale++;
	}
	pifs_buf_fini(&s);
	return NULL;
}

Test(store, puts_racing_collections_always_leave_a_fresh_chunk_and_true_counts)
{
	struct pifs_frame f = make_frame(20000, 33, false);
	struct collector c = {&f.hdr.id, false, 0, 0};
	struct uploader u = {&f, 0, 0};
	struct racer r = {&f, 0};
	pthread_t t[3];
	struct pifs_store_stat s;
	char path[PATH_MAX];
	int i;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	path_of(&f.hdr.id, path, sizeof(path));
	cr_assert_eq(pthread_create(&t[2], NULL, race_collect, &c), 0);
	cr_assert_eq(pthread_create(&t[0], NULL, race_upload, &u), 0);
	cr_assert_eq(pthread_create(&t[1], NULL, race_put, &r), 0);
	for (i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(u.rc, 0);
	cr_assert_eq(r.rc, 0);
	cr_assert_eq(u.stale, 0, "%d puts left a chunk older than themselves", u.stale);
	c.stop = true;
	pthread_join(t[2], NULL);
	cr_assert_eq(c.rc, 0);
	cr_assert_gt(c.deleted, 0, "the collector never won a race: the test proves nothing");
	s = stat_of();
	cr_assert_eq(s.chunks, exists(path) ? 1u : 0u);
	cr_assert_eq(s.bytes, exists(path) ? f.len : 0u);
	pifs_frame_release(&f);
}

/* Readers of one corrupt chunk at once: a client's read and a peer's repair
 * fetch, say. */
struct reader {
	const struct pifs_frame *f;
	pthread_barrier_t *go;
	int rc;
};

static void *race_get(void *arg)
{
	struct reader *r = arg;
	struct pifs_buf s;
	void *got = NULL;
	size_t len;

	pifs_buf_init(&s);
	pthread_barrier_wait(r->go);
	r->rc = pifs_store_get(st, &r->f->hdr.id, &s, &got, &len);
	free(got);
	pifs_buf_fini(&s);
	return NULL;
}

Test(store, readers_of_one_corrupt_chunk_at_once_report_and_count_it_once)
{
	enum { READERS = 4, ROUNDS = 40 };
	struct pifs_frame f = make_frame(300000, 31, false);
	struct reader r[READERS];
	pthread_t t[READERS];
	pthread_barrier_t go;
	char path[PATH_MAX];
	struct pifs_store_stat s;
	int round, i, bad;

	open_store(0);
	path_of(&f.hdr.id, path, sizeof(path));
	for (round = 0; round < ROUNDS; round++) {
		cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
		poke(path, (off_t)f.len - 1, (uint8_t)(f.data[f.len - 1] ^ 1));
		cr_assert_eq(pthread_barrier_init(&go, NULL, READERS), 0);
		for (i = 0; i < READERS; i++) {
			r[i] = (struct reader){&f, &go, 0};
			cr_assert_eq(pthread_create(&t[i], NULL, race_get, &r[i]), 0);
		}
		for (i = 0, bad = 0; i < READERS; i++) {
			pthread_join(t[i], NULL);
			cr_assert(r[i].rc == -EBADMSG || r[i].rc == -ENOENT,
				  "round %d: reader %d got %d", round, i, r[i].rc);
			bad += r[i].rc == -EBADMSG;
		}
		pthread_barrier_destroy(&go);
		cr_assert_eq(bad, 1, "round %d: %d readers reported the one corrupt copy", round,
			     bad);
		s = stat_of();
		cr_assert_eq(s.corrupt, (uint64_t)round + 1);
		cr_assert_eq(s.chunks, 0);
		cr_assert_eq(s.lost, 1);
	}
	pifs_frame_release(&f);
}

Test(store, a_quarantined_chunk_is_lost_until_a_good_copy_is_put)
{
	struct pifs_frame f = make_frame(9000, 32, false);
	struct pifs_chunk_id ids[4];
	char path[PATH_MAX], qpath[PATH_MAX];
	void *got;
	size_t len;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, f.data, f.len, 0, &scratch), 0);
	cr_assert_eq(stat_of().lost, 0);
	path_of(&f.hdr.id, path, sizeof(path));
	poke(path, PIFS_FRAME_HDR + 3, (uint8_t)(f.data[PIFS_FRAME_HDR + 3] ^ 0x10));
	cr_assert_eq(pifs_store_verify(st, &f.hdr.id, &scratch), -EBADMSG);
	cr_assert_eq(stat_of().lost, 1);
	cr_assert_eq(pifs_store_verify(st, &f.hdr.id, &scratch), -ENOENT);
	cr_assert_eq(stat_of().lost, 1, "a chunk is lost once, however often it is looked for");
	cr_assert_eq(pifs_store_lost(st, ids, 0), 1, "the count, even without room for ids");
	cr_assert_eq(pifs_store_lost(st, ids, 4), 1);
	cr_assert(pifs_chunk_id_eq(&ids[0], &f.hdr.id));
	cr_assert_eq(pifs_store_put(st, f.data, f.len, PIFS_STORE_SYNC, &scratch), 0);
	cr_assert_eq(stat_of().lost, 0);
	cr_assert_eq(pifs_store_lost(st, ids, 4), 0);
	cr_assert_eq(stat_of().corrupt, 1);
	quarantine_path_of(&f.hdr.id, qpath, sizeof(qpath));
	strcat(qpath, ".repaired");
	cr_assert(exists(qpath));
	cr_assert_eq(pifs_store_get(st, &f.hdr.id, &scratch, &got, &len), 0);
	free(got);
	pifs_frame_release(&f);
}

Test(store, open_counts_the_quarantined_chunks_never_repaired_as_lost)
{
	struct pifs_frame a = make_frame(5000, 33, false), b = make_frame(6000, 34, true);
	struct pifs_frame c = make_frame(7000, 35, false);
	char path[PATH_MAX];
	struct pifs_store_stat s;

	open_store(0);
	cr_assert_eq(pifs_store_put(st, a.data, a.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, b.data, b.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, c.data, c.len, 0, &scratch), 0);
	path_of(&a.hdr.id, path, sizeof(path));
	poke(path, 0, (uint8_t)(a.data[0] ^ 0xff));
	path_of(&b.hdr.id, path, sizeof(path));
	poke(path, (off_t)b.len - 2, (uint8_t)(b.data[b.len - 2] ^ 4));
	path_of(&c.hdr.id, path, sizeof(path));
	poke(path, (off_t)c.len - 2, (uint8_t)(c.data[c.len - 2] ^ 4));
	cr_assert_eq(pifs_store_verify(st, &a.hdr.id, &scratch), -EBADMSG);
	cr_assert_eq(pifs_store_verify(st, &b.hdr.id, &scratch), -EBADMSG);
	cr_assert_eq(pifs_store_verify(st, &c.hdr.id, &scratch), -EBADMSG);
	/* a is repaired; c is repaired and later deleted (a surplus copy):
	 * neither is lost, whatever the store holds of it now. */
	cr_assert_eq(pifs_store_put(st, a.data, a.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_put(st, c.data, c.len, 0, &scratch), 0);
	cr_assert_eq(pifs_store_del(st, &c.hdr.id), 0);
	cr_assert_eq(stat_of().lost, 1);
	pifs_store_close(st);
	st = NULL;
	open_store(0);
	s = stat_of();
	cr_assert_eq(s.lost, 1, "only b has no good copy");
	cr_assert_eq(s.corrupt, 3);
	cr_assert_eq(s.chunks, 1);
	cr_assert_eq(pifs_store_put(st, b.data, b.len, 0, &scratch), 0);
	cr_assert_eq(stat_of().lost, 0);
	pifs_store_close(st);
	st = NULL;
	open_store(0);
	cr_assert_eq(stat_of().lost, 0);
	cr_assert_eq(stat_of().corrupt, 3);
	pifs_frame_release(&a);
	pifs_frame_release(&b);
	pifs_frame_release(&c);
}
