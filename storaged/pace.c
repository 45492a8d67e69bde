/* pace.c - keeping background copies under a rate, and measuring it. */
#include "pace.h"

/* Both the pace and the meter look at about a second at a time. */
#define WINDOW_MS 1000
/* A meter that has counted nothing for this long reads 0: the work stopped. */
#define STALE_MS 10000

void pifs_pace_init(struct pifs_pace *p, uint64_t rate, int64_t now)
{
	p->rate = rate;
	p->start = now;
	p->bytes = 0;
}

/* The ms that @bytes take at @rate bytes/s, without overflowing. */
static int64_t ms_for(uint64_t bytes, uint64_t rate)
{
	return (int64_t)(bytes / rate * 1000 + bytes % rate * 1000 / rate);
}

int64_t pifs_pace_spend(struct pifs_pace *p, uint64_t bytes, int64_t now)
{
	int64_t elapsed, due;

	if (!p->rate)
		return 0;
	elapsed = now - p->start;
	/* A new window once the old one is paid for: the budget of an idle
	 * spell is forgotten, so that it never turns into a burst. */
	if (elapsed >= WINDOW_MS && ms_for(p->bytes, p->rate) <= elapsed) {
		p->start = now;
		p->bytes = 0;
		elapsed = 0;
	}
	p->bytes += bytes;
	due = ms_for(p->bytes, p->rate);
	return due > elapsed ? due - elapsed : 0;
}

void pifs_meter_init(struct pifs_meter *m, int64_t now)
{
	m->start = now;
	m->bytes = 0;
	m->rate = 0;
}

void pifs_meter_add(struct pifs_meter *m, uint64_t bytes, int64_t now)
{
	int64_t elapsed = now - m->start;

	if (elapsed >= WINDOW_MS) {
		/* A window that ended long ago says nothing about now. */
		m->rate = elapsed < STALE_MS ? m->bytes * 1000 / (uint64_t)elapsed : 0;
		m->start = now;
		m->bytes = 0;
	}
	m->bytes += bytes;
}

uint64_t pifs_meter_rate(const struct pifs_meter *m, int64_t now)
{
	int64_t elapsed = now - m->start;

	if (elapsed >= STALE_MS)
		return 0;
	if (elapsed >= WINDOW_MS)
		return m->bytes * 1000 / (uint64_t)elapsed;
	return m->rate;
}
