/* Tests of the client's chunk cache: the LRU bound in bytes, references
 * that outlive eviction, and one load per chunk however many readers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"

static struct pifs_chunk_id id_of(uint64_t n)
{
	struct pifs_chunk_id id = {.hi = n * 0x9e3779b97f4a7c15ull, .lo = n};

	return id;
}

/* Load chunk @n of @len bytes (all @n) into @c and drop the reference. */
static void load(struct pifs_ccache *c, uint64_t n, uint32_t len)
{
	struct pifs_chunk_id id = id_of(n);
	struct pifs_centry *e;
	uint8_t *data = malloc(len);

	cr_assert_not_null(data);
	memset(data, (int)n, len);
	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	pifs_ccache_fill(c, e, data, len);
	pifs_ccache_release(c, e);
}

Test(cache, a_filled_chunk_is_found_again)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct pifs_chunk_id id = id_of(1);
	struct pifs_centry *e;

	load(c, 1, 1000);
	cr_assert(pifs_ccache_contains(c, &id));
	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 0);
	cr_assert_eq(e->len, 1000);
	cr_assert_eq(e->data[999], 1);
	pifs_ccache_release(c, e);
	pifs_ccache_free(c);
}

Test(cache, never_holds_more_than_its_capacity)
{
	struct pifs_ccache *c = pifs_ccache_new(10000);

	for (uint64_t n = 1; n <= 50; n++) {
		load(c, n, 3000);
		cr_assert_leq(pifs_ccache_bytes(c), 10000);
	}
	cr_assert_eq(pifs_ccache_bytes(c), 9000);
	pifs_ccache_free(c);
}

Test(cache, evicts_the_least_recently_used_first)
{
	struct pifs_ccache *c = pifs_ccache_new(3000);
	struct pifs_chunk_id one = id_of(1), two = id_of(2), three = id_of(3);
	struct pifs_centry *e;

	load(c, 1, 1000);
	load(c, 2, 1000);
	load(c, 3, 1000);
	/* Use 1 again: 2 is now the oldest. */
	cr_assert_eq(pifs_ccache_lookup(c, &one, &e), 0);
	pifs_ccache_release(c, e);
	load(c, 4, 1000);
	cr_assert(pifs_ccache_contains(c, &one));
	cr_assert_not(pifs_ccache_contains(c, &two));
	cr_assert(pifs_ccache_contains(c, &three));
	pifs_ccache_free(c);
}

Test(cache, a_referenced_entry_survives_its_eviction)
{
	struct pifs_ccache *c = pifs_ccache_new(2000);
	struct pifs_chunk_id one = id_of(1);
	struct pifs_centry *e;

	load(c, 1, 1000);
	cr_assert_eq(pifs_ccache_lookup(c, &one, &e), 0);
	load(c, 2, 1000);
	load(c, 3, 1000);
	cr_assert_not(pifs_ccache_contains(c, &one));
	/* Still readable through the reference (ASan checks the access). */
	for (uint32_t i = 0; i < e->len; i++)
		cr_assert_eq(e->data[i], 1);
	pifs_ccache_release(c, e);
	cr_assert_leq(pifs_ccache_bytes(c), 2000);
	pifs_ccache_free(c);
}

Test(cache, a_chunk_larger_than_the_cache_is_served_but_not_kept)
{
	struct pifs_ccache *c = pifs_ccache_new(100);
	struct pifs_chunk_id id = id_of(7);
	struct pifs_centry *e;
	uint8_t *data = calloc(1, 1000);

	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	pifs_ccache_fill(c, e, data, 1000);
	cr_assert_eq(e->len, 1000);
	cr_assert_eq(pifs_ccache_bytes(c), 0);
	pifs_ccache_release(c, e);
	cr_assert_not(pifs_ccache_contains(c, &id));
	pifs_ccache_free(c);
}

Test(cache, reserve_refuses_a_chunk_that_is_cached_or_loading)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct pifs_chunk_id one = id_of(1), two = id_of(2);
	struct pifs_centry *e, *again;

	load(c, 1, 10);
	cr_assert_eq(pifs_ccache_reserve(c, &one, &again), 0);
	cr_assert_null(again);
	cr_assert_eq(pifs_ccache_reserve(c, &two, &e), 1);
	cr_assert_eq(pifs_ccache_reserve(c, &two, &again), 0);
	pifs_ccache_fail(c, e, -EIO);
	pifs_ccache_release(c, e);
	pifs_ccache_free(c);
}

/* Wait up to 2 s until @n lookups hold @e (the loader's reference and the
 * waiters'), so that the test knows they are all waiting. */
static void wait_refs(struct pifs_centry *e, int n)
{
	for (int i = 0; i < 2000 && __atomic_load_n(&e->refs, __ATOMIC_SEQ_CST) < n; i++)
		usleep(1000);
	cr_assert_eq(__atomic_load_n(&e->refs, __ATOMIC_SEQ_CST), n);
}

struct waiter {
	struct pifs_ccache *c;
	struct pifs_chunk_id id;
	int rc;
	uint32_t len;
};

static void *wait_for(void *arg)
{
	struct waiter *w = arg;
	struct pifs_centry *e;

	w->rc = pifs_ccache_lookup(w->c, &w->id, &e);
	if (w->rc == 0) {
		w->len = e->len;
		pifs_ccache_release(w->c, e);
	}
	return NULL;
}

Test(cache, concurrent_lookups_wait_for_one_load)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct waiter w[4];
	pthread_t t[4];
	struct pifs_centry *e;
	struct pifs_chunk_id id = id_of(5);

	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	for (int i = 0; i < 4; i++) {
		w[i] = (struct waiter){.c = c, .id = id, .rc = 99};
		cr_assert_eq(pthread_create(&t[i], NULL, wait_for, &w[i]), 0);
	}
	wait_refs(e, 5);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(w[i].rc, 99, "a lookup did not wait for the load");
	pifs_ccache_fill(c, e, calloc(1, 321), 321);
	pifs_ccache_release(c, e);
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(w[i].rc, 0);
		cr_assert_eq(w[i].len, 321);
	}
	pifs_ccache_free(c);
}

Test(cache, waiters_get_the_error_of_a_failed_load_and_may_retry)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct pifs_chunk_id id = id_of(6);
	struct waiter w = {.rc = 99};
	struct pifs_centry *e;
	pthread_t t;

	w.c = c;
	w.id = id;
	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	cr_assert_eq(pthread_create(&t, NULL, wait_for, &w), 0);
	wait_refs(e, 2);
	pifs_ccache_fail(c, e, -EHOSTUNREACH);
	pifs_ccache_release(c, e);
	pthread_join(t, NULL);
	cr_assert_eq(w.rc, -EHOSTUNREACH);
	/* The failure is not cached: the next lookup loads again. */
	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	pifs_ccache_fail(c, e, -EIO);
	pifs_ccache_release(c, e);
	pifs_ccache_free(c);
}

struct filler {
	struct pifs_ccache *c;
	struct pifs_centry *e;
	int err;
};

static void *fill_later(void *arg)
{
	struct filler *f = arg;

	usleep(20 * 1000);
	if (f->err)
		pifs_ccache_fail(f->c, f->e, f->err);
	else
		pifs_ccache_fill(f->c, f->e, calloc(1, 77), 77);
	pifs_ccache_release(f->c, f->e);
	return NULL;
}

Test(cache, wait_returns_once_another_thread_filled_the_entry)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct pifs_chunk_id id = id_of(8);
	struct filler f = {.c = c};
	struct pifs_centry *e;
	pthread_t t;

	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	pifs_ccache_hold(c, e);
	f.e = e;
	cr_assert_eq(pthread_create(&t, NULL, fill_later, &f), 0);
	cr_assert_eq(pifs_ccache_wait(c, e), 0);
	cr_assert_eq(e->len, 77);
	pthread_join(t, NULL);
	pifs_ccache_release(c, e);
	cr_assert(pifs_ccache_contains(c, &id));
	pifs_ccache_free(c);
}

Test(cache, wait_returns_the_error_of_a_failed_load)
{
	struct pifs_ccache *c = pifs_ccache_new(1 << 20);
	struct pifs_chunk_id id = id_of(9);
	struct filler f = {.c = c, .err = -EBADMSG};
	struct pifs_centry *e;
	pthread_t t;

	cr_assert_eq(pifs_ccache_lookup(c, &id, &e), 1);
	pifs_ccache_hold(c, e);
	f.e = e;
	cr_assert_eq(pthread_create(&t, NULL, fill_later, &f), 0);
	cr_assert_eq(pifs_ccache_wait(c, e), -EBADMSG);
	pthread_join(t, NULL);
	pifs_ccache_release(c, e);
	cr_assert_not(pifs_ccache_contains(c, &id));
	pifs_ccache_free(c);
}
