/* buf.c - a growable byte buffer. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pifs_buf_init(struct pifs_buf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void pifs_buf_fini(struct pifs_buf *b)
{
	if (!b)
		return;
	free(b->p);
	pifs_buf_init(b);
}

int pifs_buf_reserve(struct pifs_buf *b, size_t more)
{
	size_t want, cap;
	uint8_t *p;

	if (more > SIZE_MAX - b->len)
		return -ENOMEM;
	want = b->len + more;
	if (want <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int pifs_buf_append(struct pifs_buf *b, const void *src, size_t n)
{
	int rc = pifs_buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n)
		memcpy(b->p + b->len, src, n);
	b->len += n;
	return 0;
}

int pifs_grow(void *pp, size_t *cap, size_t n, size_t size, size_t first)
{
	void **p = pp;
	size_t ncap;
	void *np;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : first;
	np = realloc(*p, ncap * size);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}
