/* fileio.h - the few file and byte helpers the on-disk logs share.
 *
 * Integers on disk are big-endian, as on the wire. Pure but for the system
 * calls they make: no globals. */
#ifndef PIFS_FILEIO_H
#define PIFS_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Store the low @n bytes of @v at @p, most significant first. */
void pifs_be_put(uint8_t *p, uint64_t v, unsigned n);

/* Read @n bytes at @p, most significant first. */
uint64_t pifs_be_get(const uint8_t *p, unsigned n);

/* Write all @len bytes at @p to @fd, through short writes and EINTR.
 * Returns 0 or -errno. */
int pifs_write_all(int fd, const void *p, size_t len);

/* fsync the directory that holds @path, so that a file created, renamed or
 * removed there survives a power cut. Returns 0 or -errno. */
int pifs_sync_parent(const char *path);

#endif
