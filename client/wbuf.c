/* wbuf.c - the write buffer of one chunk slot. */
#include "wbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int pifs_wbuf_init(struct pifs_wbuf *w, uint32_t cap)
{
	memset(w, 0, sizeof(*w));
	if (cap == 0)
		return -EINVAL;
	/* calloc of a chunk comes from mmap: untouched pages cost nothing. */
	w->data = calloc(1, cap);
	if (!w->data)
		return -ENOMEM;
	w->cap = cap;
	return 0;
}

void pifs_wbuf_fini(struct pifs_wbuf *w)
{
	if (!w)
		return;
	free(w->data);
	memset(w, 0, sizeof(*w));
}

static bool in_range(const struct pifs_wbuf *w, uint32_t off, uint32_t len)
{
	return off <= w->cap && len <= w->cap - off;
}

bool pifs_wbuf_can_write(const struct pifs_wbuf *w, uint32_t off, uint32_t len)
{
	if (w->merged || w->lo == w->hi)
		return true;
	return off <= w->hi && off + len >= w->lo;
}

int pifs_wbuf_write(struct pifs_wbuf *w, uint32_t off, const void *src, uint32_t len)
{
	bool empty = w->lo == w->hi;

	if (!in_range(w, off, len))
		return -EINVAL;
	if (!pifs_wbuf_can_write(w, off, len))
		return -EAGAIN;
	if (len == 0)
		return 0;
	memcpy(w->data + off, src, len);
	if (empty) {
		w->lo = off;
		w->hi = off + len;
		return 0;
	}
	/* A merged buffer may take a write away from its extent; the extent
	 * then spans both, which stays true since every byte is valid. */
	if (off < w->lo)
		w->lo = off;
	if (off + len > w->hi)
		w->hi = off + len;
	return 0;
}

bool pifs_wbuf_covers(const struct pifs_wbuf *w, uint32_t off, uint32_t len)
{
	if (!in_range(w, off, len))
		return false;
	if (w->merged || len == 0)
		return true;
	return off >= w->lo && off + len <= w->hi;
}

int pifs_wbuf_merge(struct pifs_wbuf *w, const void *base, uint32_t base_len)
{
	const uint8_t *b = base;
	uint32_t lo = w->lo, hi = w->hi;

	if (base_len > w->cap)
		return -EINVAL;
	if (w->merged)
		return 0;
	if (lo == hi)
		lo = hi = 0;
	/* Bytes outside the extent are still zero from the allocation, so
	 * only the old bytes below base_len need copying. */
	if (b && base_len) {
		memcpy(w->data, b, lo < base_len ? lo : base_len);
		if (hi < base_len)
			memcpy(w->data + hi, b + hi, base_len - hi);
	}
	w->merged = true;
	return 0;
}

int pifs_wbuf_read(const struct pifs_wbuf *w, uint32_t off, void *out, uint32_t len)
{
	if (!in_range(w, off, len))
		return -EINVAL;
	if (!pifs_wbuf_covers(w, off, len))
		return -EAGAIN;
	if (len)
		memcpy(out, w->data + off, len);
	return 0;
}
