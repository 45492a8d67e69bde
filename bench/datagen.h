/* datagen.h - benchmark data: incompressible bytes and JSON-like text.
 *
 * Both generators are deterministic for a seed and never repeat a chunk-sized
 * stretch, so that a content-addressed store cannot deduplicate what a
 * benchmark writes: every run measures the data path, not the dedup path.
 * Pure: no I/O, no locks, no globals. */
#ifndef PIFS_DATAGEN_H
#define PIFS_DATAGEN_H

#include <stddef.h>
#include <stdint.h>

/* Generator state (xoshiro256**). */
struct pifs_datagen {
	uint64_t s[4];
	uint64_t line; /* records written so far by the text generator */
};

/* Seed @g; different seeds give unrelated streams. */
void pifs_datagen_init(struct pifs_datagen *g, uint64_t seed);

/* The next 64 random bits of @g. */
uint64_t pifs_datagen_next(struct pifs_datagen *g);

/* Fill @buf (@len bytes) with random bytes: LZ4 cannot shrink them. */
void pifs_datagen_random(struct pifs_datagen *g, void *buf, size_t len);

/* Fill @buf (@len bytes) with JSON lines (records with counters, times, tags
 * and words from a small vocabulary): LZ4 shrinks them to about a third,
 * like application logs and JSON documents. */
void pifs_datagen_text(struct pifs_datagen *g, void *buf, size_t len);

#endif
