/* wbuf.h - the write buffer of one chunk slot of a file.
 *
 * A client copies what an application writes into a buffer as large as the
 * chunk, without fetching the chunk that held those bytes before: most writes
 * are sequential and replace whole chunks, so a fetch would be wasted. The
 * buffer therefore remembers which bytes are real: the written extent
 * [lo, hi), and whether the old chunk's bytes were merged under it. A write
 * that is not contiguous with the extent, a read outside it, or an upload of
 * a partly written chunk needs the merge first.
 *
 * Pure: no I/O, no locks, no globals. The caller serialises calls. */
#ifndef PIFS_WBUF_H
#define PIFS_WBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pifs_wbuf {
	uint8_t *data;	 /* owned; @cap bytes, zero where never written */
	uint32_t cap;	 /* the chunk size */
	uint32_t lo, hi; /* the written extent; lo == hi when nothing was written */
	bool merged;	 /* the old bytes are in place: every byte is valid */
};

/* Allocate @cap zeroed bytes for @w (OUT). Returns 0, -EINVAL for a zero
 * @cap, or -ENOMEM. */
int pifs_wbuf_init(struct pifs_wbuf *w, uint32_t cap);

/* Free the bytes and zero @w. NULL-safe. */
void pifs_wbuf_fini(struct pifs_wbuf *w);

/* Whether @len bytes at @off can be written without a merge: the buffer is
 * merged or empty, or the range touches or overlaps the extent. */
bool pifs_wbuf_can_write(const struct pifs_wbuf *w, uint32_t off, uint32_t len);

/* Copy @len bytes of @src (borrowed) to @off and grow the extent. Returns 0,
 * -EINVAL for a range past @cap, or -EAGAIN when the range is not contiguous
 * with the extent of an unmerged buffer (merge first). */
int pifs_wbuf_write(struct pifs_wbuf *w, uint32_t off, const void *src, uint32_t len);

/* Whether every byte of [@off, @off + @len) is valid in the buffer alone. */
bool pifs_wbuf_covers(const struct pifs_wbuf *w, uint32_t off, uint32_t len);

/* Put the old chunk's bytes, @base_len bytes at @base (borrowed; NULL and 0
 * when the slot had no chunk), under the written extent: bytes outside the
 * extent take the old value, or zero past @base_len. Merging twice is a
 * no-op. Returns 0, or -EINVAL when @base_len is over @cap. */
int pifs_wbuf_merge(struct pifs_wbuf *w, const void *base, uint32_t base_len);

/* Copy [@off, @off + @len) to @out. Returns 0, -EINVAL for a range past
 * @cap, or -EAGAIN when the range is not covered (merge first). */
int pifs_wbuf_read(const struct pifs_wbuf *w, uint32_t off, void *out, uint32_t len);

#endif
