/* test_buf.c - pifs_grow: an array gets room for one more element, its
 * elements kept, its capacity doubled from the first size given. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "buf.h"

Test(buf, grow_starts_at_first_doubles_and_keeps_the_elements)
{
	int *a = NULL;
	size_t cap = 0, n;

	for (n = 0; n < 100; n++) {
		cr_assert_eq(pifs_grow(&a, &cap, n, sizeof(*a), 4), 0);
		cr_assert_gt(cap, n, "no room for element %zu", n);
		a[n] = (int)n;
	}
	cr_assert_eq(cap, 128, "4, 8, ..., 128: got %zu", cap);
	for (n = 0; n < 100; n++)
		cr_assert_eq(a[n], (int)n);
	/* With room left, nothing moves. */
	cr_assert_eq(pifs_grow(&a, &cap, 100, sizeof(*a), 4), 0);
	cr_assert_eq(cap, 128);
	free(a);
}
