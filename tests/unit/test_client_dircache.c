/* Tests of the client's cache of the attributes of directories it changed:
 * each answer is the newest change's, given once, within the timeout. */
#include <criterion/criterion.h>

#include "dircache.h"

#define TTL 1000000000LL /* 1 s, in ns */

static struct pifs_dircache *dc;

static void setup(void)
{
	dc = pifs_dircache_new(TTL);
	cr_assert_not_null(dc);
}

static void teardown(void)
{
	pifs_dircache_free(dc);
}

TestSuite(dircache, .init = setup, .fini = teardown);

static struct pifs_attr dir(uint64_t ino, int64_t ctime, uint32_t nlink)
{
	return (struct pifs_attr){.ino = ino, .mode = 040755, .nlink = nlink, .ctime = ctime,
				  .mtime = ctime};
}

Test(dircache, answers_once_with_what_remains_of_the_timeout)
{
	struct pifs_attr a = dir(7, 100, 3), out;
	int64_t left;

	pifs_dircache_put(dc, &a, 5000);
	cr_assert(pifs_dircache_take(dc, 7, 5000 + TTL / 4, &out, &left));
	cr_assert_eq(out.ino, 7);
	cr_assert_eq(out.nlink, 3);
	cr_assert_eq(out.ctime, 100);
	cr_assert_eq(left, TTL - TTL / 4);
	cr_assert_not(pifs_dircache_take(dc, 7, 5000 + TTL / 4, &out, &left),
		      "a second GETATTR must ask the metadata service");
}

Test(dircache, an_entry_older_than_the_timeout_is_not_used)
{
	struct pifs_attr a = dir(7, 100, 3), out;
	int64_t left;

	pifs_dircache_put(dc, &a, 5000);
	cr_assert_not(pifs_dircache_take(dc, 7, 5000 + TTL, &out, &left));
	pifs_dircache_put(dc, &a, 5000);
	cr_assert_not(pifs_dircache_take(dc, 7, 4000, &out, &left), "a clock that went back");
}

Test(dircache, the_newer_change_wins_whatever_order_the_replies_come_in)
{
	struct pifs_attr newer = dir(7, 200, 4), older = dir(7, 100, 3), out;
	int64_t left;

	pifs_dircache_put(dc, &newer, 10);
	pifs_dircache_put(dc, &older, 20);
	cr_assert(pifs_dircache_take(dc, 7, 30, &out, &left));
	cr_assert_eq(out.ctime, 200);
	cr_assert_eq(out.nlink, 4);
}

Test(dircache, a_dropped_directory_is_asked_for_again)
{
	struct pifs_attr a = dir(7, 100, 3), b = dir(8, 100, 2), out;
	int64_t left;

	pifs_dircache_put(dc, &a, 10);
	pifs_dircache_put(dc, &b, 10);
	pifs_dircache_drop(dc, 7);
	cr_assert_not(pifs_dircache_take(dc, 7, 20, &out, &left));
	cr_assert(pifs_dircache_take(dc, 8, 20, &out, &left), "only the dropped one goes");
}

Test(dircache, directories_sharing_a_slot_never_answer_for_each_other)
{
	struct pifs_attr a = dir(7, 100, 3), b = dir(7 + 64, 100, 2), out;
	int64_t left;

	pifs_dircache_put(dc, &a, 10);
	pifs_dircache_put(dc, &b, 10);
	cr_assert_not(pifs_dircache_take(dc, 7, 20, &out, &left));
	cr_assert(pifs_dircache_take(dc, 7 + 64, 20, &out, &left));
	cr_assert_eq(out.ino, 7 + 64);
	cr_assert_not(pifs_dircache_take(dc, 0, 20, &out, &left), "inode 0 is no directory");
}
