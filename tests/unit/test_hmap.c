/* test_hmap.c - the open-addressing pointer map under collisions and churn. */
#include <criterion/criterion.h>

#include <stdlib.h>

#include "hmap.h"

struct item {
	uint64_t key;
};

/* A deliberately poor hash: long runs of collisions exercise probing and
 * the backward shift of removals. */
static uint64_t bad_hash_of(uint64_t key)
{
	return key % 7;
}

static uint64_t item_hash(const void *e)
{
	return bad_hash_of(((const struct item *)e)->key);
}

static bool item_eq(const void *e, const void *key)
{
	return ((const struct item *)e)->key == *(const uint64_t *)key;
}

static struct item *find(const struct pifs_hmap *h, uint64_t key)
{
	return pifs_hmap_find(h, bad_hash_of(key), &key);
}

Test(hmap, an_empty_map_finds_nothing)
{
	struct pifs_hmap h;
	size_t pos = 0;
	uint64_t key = 1;

	pifs_hmap_init(&h, item_hash, item_eq);
	cr_assert_null(find(&h, 1));
	cr_assert_null(pifs_hmap_remove(&h, bad_hash_of(key), &key));
	cr_assert_null(pifs_hmap_next(&h, &pos));
	pifs_hmap_fini(&h);
	pifs_hmap_fini(NULL);
}

Test(hmap, survives_colliding_inserts_and_removals)
{
	enum { N = 3000 };
	static struct item items[N];
	static uint8_t present[N];
	struct pifs_hmap h;
	struct item *e;
	size_t pos = 0, seen = 0, i;
	uint64_t x = 88172645463325252ULL;
	int round;

	pifs_hmap_init(&h, item_hash, item_eq);
	for (i = 0; i < N; i++)
		items[i].key = i * 3 + 1;
	for (round = 0; round < 20000; round++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = x % N;
		if (present[i]) {
			e = pifs_hmap_remove(&h, bad_hash_of(items[i].key), &items[i].key);
			cr_assert_eq(e, &items[i]);
			present[i] = 0;
		} else {
			cr_assert_eq(pifs_hmap_insert(&h, &items[i]), 0);
			present[i] = 1;
		}
		if (round % 1000 == 0)
			for (i = 0; i < N; i++)
				cr_assert_eq(find(&h, items[i].key), present[i] ? &items[i] : NULL,
					     "key %llu", (unsigned long long)items[i].key);
	}
	for (i = 0; i < N; i++)
		cr_assert_eq(find(&h, items[i].key), present[i] ? &items[i] : NULL);
	while ((e = pifs_hmap_next(&h, &pos))) {
		cr_assert(present[e - items]);
		seen++;
	}
	cr_assert_eq(seen, h.count);
	pifs_hmap_fini(&h);
}

Test(hmap, reserve_makes_room_ahead)
{
	struct pifs_hmap h;
	struct item it = {5};
	void **before;

	pifs_hmap_init(&h, item_hash, item_eq);
	cr_assert_eq(pifs_hmap_reserve(&h, 1000), 0);
	cr_assert_geq((h.mask + 1) / 4 * 3, 1000);
	before = h.slot;
	cr_assert_eq(pifs_hmap_insert(&h, &it), 0);
	cr_assert_eq(h.slot, before, "no growth within the reservation");
	cr_assert_eq(find(&h, 5), &it);
	pifs_hmap_fini(&h);
}

Test(hmap, mix_spreads_consecutive_keys)
{
	uint64_t a = pifs_hmap_mix(1), b = pifs_hmap_mix(2);

	cr_assert_neq(a & 0xffff, b & 0xffff);
	cr_assert_neq(pifs_hmap_mix(0), pifs_hmap_mix(1));
}
