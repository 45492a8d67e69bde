/* admin_out.c - pifs-admin output helpers: a tiny JSON writer, sizes, times and
 * durations for people, progress bars. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_i.h"
#include "rpc.h"

/* ---- a tiny JSON writer: objects, arrays, integers, strings, booleans ---- */

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* Write the separator and, inside an object, the key of the next value. */
void json_key(struct json *j, const char *key)
{
	if (j->comma[j->depth])
		fputc(',', j->f);
	j->comma[j->depth] = true;
	if (key) {
		json_string(j->f, key);
		fputc(':', j->f);
	}
}

void json_open(struct json *j, const char *key, char brace)
{
	json_key(j, key);
	fputc(brace, j->f);
	/* The writers below nest three levels at most; a deeper call is a bug here. */
	if (j->depth + 1 >= JSON_MAX_DEPTH)
		abort();
	j->comma[++j->depth] = false;
}

void json_close(struct json *j, char brace)
{
	fputc(brace, j->f);
	j->depth--;
}

void json_u64(struct json *j, const char *key, uint64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRIu64, v);
}

void json_i64(struct json *j, const char *key, int64_t v)
{
	json_key(j, key);
	fprintf(j->f, "%" PRId64, v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	json_key(j, key);
	fputs(v ? "true" : "false", j->f);
}

void json_str(struct json *j, const char *key, const char *s)
{
	json_key(j, key);
	json_string(j->f, s);
}

void json_null(struct json *j, const char *key)
{
	json_key(j, key);
	fputs("null", j->f);
}

/* @num / @den with four decimals, or null when there is nothing to divide. */
void json_ratio(struct json *j, const char *key, uint64_t num, uint64_t den)
{
	json_key(j, key);
	if (den == 0)
		fputs("null", j->f);
	else
		fprintf(j->f, "%.4f", (double)num / (double)den);
}

/* ---- text helpers ---- */

/* 1536 -> "1.5 KiB"; below 1 KiB, plain bytes. Returns @buf. */
const char *human(uint64_t bytes, char *buf, size_t cap)
{
	static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)bytes;
	size_t u = 0;

	if (bytes < 1024) {
		snprintf(buf, cap, "%" PRIu64 " B", bytes);
		return buf;
	}
	v /= 1024.0;
	while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

/* How long ago @ns (since the epoch) was: "never", "just now", "12s ago", ... */
const char *ago(int64_t ns, char *buf, size_t cap)
{
	int64_t s;

	if (ns == 0) {
		snprintf(buf, cap, "never");
		return buf;
	}
	s = (pifs_now_ns() - ns) / 1000000000;
	if (s < 1)
		snprintf(buf, cap, "just now");
	else if (s < 120)
		snprintf(buf, cap, "%" PRId64 "s ago", s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%" PRId64 "m ago", s / 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%" PRId64 "h ago", s / 3600);
	else
		snprintf(buf, cap, "%" PRId64 "d ago", s / 86400);
	return buf;
}

void json_cluster_head(struct json *j, const struct admin *a, const struct cluster_view *v)
{
	json_u64(j, "epoch", v->epoch);
	json_u64(j, "replicas", v->replicas);
	json_u64(j, "chunk_size", v->chunk_size);
	json_u64(j, "log_index", v->log_index);
	json_u64(j, "meta_node", meta_leader_id(a));
	json_str(j, "meta_address", meta_leader_addr(a));
}

/* 75 -> "75s", 200 -> "3m20s", 7300 -> "2h01m": a duration for people.
 * Returns @buf. */
const char *human_secs(uint64_t s, char *buf, size_t cap)
{
	if (s < 120)
		snprintf(buf, cap, "%" PRIu64 "s", s);
	else if (s < 2 * 3600)
		snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else if (s < 2 * 86400)
		snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
	else
		snprintf(buf, cap, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s / 3600 % 24);
	return buf;
}

/* Seconds until @bytes are copied at @rate bytes/s. Returns false when
 * nothing is being copied, so that no time can be told. */
bool eta_secs(uint64_t bytes, uint64_t rate, uint64_t *secs /* OUT */)
{
	*secs = 0;
	if (bytes == 0)
		return true;
	if (rate == 0)
		return false;
	*secs = (bytes + rate - 1) / rate;
	return true;
}

void json_work(struct json *j, const struct pifs_work *w)
{
	json_open(j, "work", '{');
	json_u64(j, "heal_passes", w->heal_passes);
	json_u64(j, "heal_chunks", w->heal_chunks);
	json_u64(j, "heal_bytes", w->heal_bytes);
	json_u64(j, "degraded", w->degraded);
	json_u64(j, "heal_rate", w->heal_rate);
	json_u64(j, "moved_chunks", w->moved_chunks);
	json_u64(j, "moved_bytes", w->moved_bytes);
	json_u64(j, "scrub_passes", w->scrub_passes);
	json_bool(j, "scrub_running", w->scrub_running);
	json_u64(j, "scrub_done", w->scrub_done);
	json_u64(j, "scrub_total", w->scrub_total);
	json_u64(j, "scrub_corrupt", w->scrub_corrupt);
	json_u64(j, "scrub_repaired", w->scrub_repaired);
	json_u64(j, "scrub_unrepairable", w->scrub_unrepairable);
	json_close(j, '}');
}

/* "[#######-------------]": @num of @den, @width characters inside. */
void bar(char *buf, size_t cap, uint64_t num, uint64_t den, int width)
{
	int full = den ? (int)((double)num / (double)den * width) : 0;

	if ((size_t)width + 3 > cap)
		width = (int)cap - 3;
	if (full > width)
		full = width;
	buf[0] = '[';
	for (int i = 0; i < width; i++)
		buf[1 + i] = i < full ? '#' : '-';
	buf[1 + width] = ']';
	buf[2 + width] = '\0';
}
