/* datagen.c - benchmark data generators, see datagen.h. */
#include "datagen.h"

#include <string.h>

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* splitmix64 spreads a small seed over the whole state, as xoshiro wants. */
static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void pifs_datagen_init(struct pifs_datagen *g, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		g->s[i] = splitmix(&x);
	g->line = 0;
}

uint64_t pifs_datagen_next(struct pifs_datagen *g)
{
	uint64_t *s = g->s;
	uint64_t r = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

void pifs_datagen_random(struct pifs_datagen *g, void *buf, size_t len)
{
	uint8_t *p = buf;
	uint64_t v;

	for (; len >= 8; len -= 8, p += 8) {
		v = pifs_datagen_next(g);
		memcpy(p, &v, 8);
	}
	if (len) {
		v = pifs_datagen_next(g);
		memcpy(p, &v, len);
	}
}

static const char *const words[] = {
	"photo",   "album",  "camera", "summer",  "winter",   "beach",   "mountain", "river",
	"family",  "friend", "party",  "holiday", "city",     "night",   "morning",  "sunset",
	"garden",  "flower", "street", "portrait", "landscape", "travel", "museum",  "concert",
	"dinner",  "school", "office", "project", "meeting",  "report",  "upload",   "thumbnail",
	"width",   "height", "orientation", "exposure", "aperture", "iso", "lens",   "flash",
	"latitude", "longitude", "altitude", "created", "modified", "owner", "shared", "private",
	"red",     "green",  "blue",   "yellow",  "black",    "white",   "bright",   "dark",
	"small",   "large",  "medium", "original", "edited",  "copy",    "backup",   "archive",
};

#define NWORDS (sizeof(words) / sizeof(words[0]))

struct out {
	char *p, *end;
};

static void put(struct out *o, const char *s, size_t n)
{
	size_t room = (size_t)(o->end - o->p);

	if (n > room)
		n = room;
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + sizeof(tmp) - n, (size_t)n);
}

static const char *word(struct pifs_datagen *g)
{
	return words[pifs_datagen_next(g) % NWORDS];
}

void pifs_datagen_text(struct pifs_datagen *g, void *buf, size_t len)
{
	struct out o = { buf, (char *)buf + len };
	uint64_t r;
	int n;

	while (o.p < o.end) {
		r = pifs_datagen_next(g);
		put_str(&o, "{\"id\":");
		put_u64(&o, ++g->line);
		put_str(&o, ",\"user\":\"");
		put_str(&o, word(g));
		put_u64(&o, r % 1000);
		put_str(&o, "\",\"ts\":");
		put_u64(&o, 1700000000000ull + g->line * 1000 + (r >> 20) % 1000);
		put_str(&o, ",\"size\":");
		put_u64(&o, (r >> 32) % 10000000);
		put_str(&o, ",\"tags\":[\"");
		put_str(&o, word(g));
		put_str(&o, "\",\"");
		put_str(&o, word(g));
		put_str(&o, "\"],\"text\":\"");
		n = 4 + (int)((r >> 40) % 12);
		for (int i = 0; i < n; i++) {
			if (i)
				put(&o, " ", 1);
			put_str(&o, word(g));
		}
		put_str(&o, "\"}\n");
	}
}
