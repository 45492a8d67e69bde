/* buf.h - a growable byte buffer, for encoding messages and snapshots.
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_BUF_H
#define PIFS_BUF_H

#include <stddef.h>
#include <stdint.h>

struct pifs_buf {
	uint8_t *p;	/* owned; @len bytes used of @cap */
	size_t len;
	size_t cap;
};

void pifs_buf_init(struct pifs_buf *b);

/* Free the bytes and zero @b. NULL-safe. */
void pifs_buf_fini(struct pifs_buf *b);

/* Make room for @more bytes past @len. Returns 0 or -ENOMEM. */
int pifs_buf_reserve(struct pifs_buf *b, size_t more);

/* Append @n bytes of @src (borrowed). Returns 0 or -ENOMEM. */
int pifs_buf_append(struct pifs_buf *b, const void *src, size_t n);

/* Make room for one more element in the array *@pp of *@cap elements of
 * @size bytes when @n of them are used: doubled, or @first to begin with.
 * Returns 0, or -ENOMEM with the array as it was. */
int pifs_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first);

/* Forget the contents, keep the memory. */
static inline void pifs_buf_reset(struct pifs_buf *b)
{
	b->len = 0;
}

#endif
