/* pace.h - keeping background copies under a rate, and measuring it.
 *
 * Heal and scrub move bytes in the background at a configured rate so that
 * clients keep most of the disk and the link. A pace says how long to wait
 * after each piece of work; a meter tells the rate actually reached, for
 * status. Times are pifs_now_ms() values passed in, so both are pure.
 * Not thread-safe: each belongs to one thread (a meter read by others is
 * read under its owner's lock). */
#ifndef PIFS_PACE_H
#define PIFS_PACE_H

#include <stdint.h>

struct pifs_pace {
	uint64_t rate;	/* bytes/s allowed; 0: no limit */
	int64_t start;	/* ms: the start of the current window */
	uint64_t bytes; /* spent since @start */
};

struct pifs_meter {
	int64_t start;	/* ms: the start of the current window */
	uint64_t bytes; /* counted since @start */
	uint64_t rate;	/* bytes/s of the last full window */
};

/* A pace of @rate bytes/s (0: no limit) starting at @now. */
void pifs_pace_init(struct pifs_pace *p, uint64_t rate, int64_t now);

/* Count @bytes of work done at @now. Returns how many ms to wait before the
 * next piece of work (0: none), so that the average over the last second or
 * so stays at or under the rate: an idle spell lends no burst beyond one
 * second's worth. */
int64_t pifs_pace_spend(struct pifs_pace *p, uint64_t bytes, int64_t now);

/* A meter that has seen nothing, at @now. */
void pifs_meter_init(struct pifs_meter *m, int64_t now);

/* Count @bytes moved at @now. */
void pifs_meter_add(struct pifs_meter *m, uint64_t bytes, int64_t now);

/* The rate in bytes/s as of @now: over the window under way once it is a
 * second long, else over the last one; 0 when nothing has moved for ten
 * seconds. */
uint64_t pifs_meter_rate(const struct pifs_meter *m, int64_t now);

#endif
