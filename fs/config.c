/* config.c - the cluster's configuration file, read with inih.
 *
 * inih splits lines into sections and key = value pairs; this file feeds it
 * the lines itself, through a reader that counts them, so that every message
 * can name the line it is about. The reader also sees the section headers,
 * which inih does not report, so that an empty [node N] or a misspelt
 * section is caught on its own line. Only the first error is reported: the
 * operator fixes it and runs again. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keys.h"

#define NODE_ID_MAX 2147483647u

enum kind { K_INT, K_SIZE, K_DURATION, K_BOOL, K_ADDR, K_PATH, K_SECURITY };

/* A key of a section: where its value goes in the section's struct, and the
 * values it takes, which an error message states as @expect. */
struct key {
	const char *name;
	enum kind kind;
	size_t off;
	size_t width; /* of the integer, or of the string with its NUL */
	uint64_t min, max;
	bool pow2;
	const char *expect;
};

#define CONF(field) offsetof(struct pifs_conf, field), sizeof(((struct pifs_conf *)0)->field)
#define NODE(field)                                                                                \
	offsetof(struct pifs_conf_node, field), sizeof(((struct pifs_conf_node *)0)->field)

enum {
	CK_REPLICAS,
	CK_CHUNK_SIZE,
	CK_HEARTBEAT,
	CK_DOWN_AFTER,
	CK_OUT_AFTER,
	CK_RESERVE,
	CK_HEAL_INTERVAL,
	CK_HEAL_RATE,
	CK_SCRUB_INTERVAL,
	CK_SCRUB_RATE,
	CK_GC_INTERVAL,
	CK_GC_GRACE,
	CK_KEYS,
	CK_SECURITY,
	CK_N
};

static const struct key cluster_keys[CK_N] = {
    [CK_REPLICAS] = {"replicas", K_INT, CONF(replicas), 1, 8, false, "a whole number from 1 to 8"},
    [CK_CHUNK_SIZE] = {"chunk_size", K_SIZE, CONF(chunk_size), 64u << 10, 64u << 20, true,
		       "a power of two between 64K and 64M, such as 4M"},
    [CK_HEARTBEAT] = {"heartbeat", K_DURATION, CONF(heartbeat_ms), 1, UINT32_MAX, false,
		      "a duration from 1ms to 49 days, such as 500ms or 1s"},
    [CK_DOWN_AFTER] = {"down_after", K_DURATION, CONF(down_after_ms), 1, UINT32_MAX, false,
		       "a duration from 1ms to 49 days, such as 5s"},
    [CK_OUT_AFTER] = {"out_after", K_DURATION, CONF(out_after_ms), 0, UINT64_MAX, false,
		      "a duration such as 10m or 1h"},
    [CK_RESERVE] = {"reserve", K_SIZE, CONF(reserve_bytes), 0, UINT64_MAX, false,
		    "a size such as 256M or 1G"},
    [CK_HEAL_INTERVAL] = {"heal_interval", K_DURATION, CONF(heal_interval_ms), 100, UINT32_MAX,
			  false, "a duration from 100ms to 49 days, such as 60s"},
    [CK_HEAL_RATE] = {"heal_rate", K_SIZE, CONF(heal_rate), 0, UINT64_MAX, false,
		      "bytes per second, such as 50M, or 0 for no limit"},
    [CK_SCRUB_INTERVAL] = {"scrub_interval", K_DURATION, CONF(scrub_interval_ms), 0, UINT64_MAX,
			   false, "a duration such as 168h (a week), or 0 for no scheduled scrub"},
    [CK_SCRUB_RATE] = {"scrub_rate", K_SIZE, CONF(scrub_rate), 0, UINT64_MAX, false,
		       "bytes per second, such as 20M, or 0 for no limit"},
    [CK_GC_INTERVAL] = {"gc_interval", K_DURATION, CONF(gc_interval_ms), 0, UINT64_MAX, false,
			"a duration such as 1h, or 0 for no scheduled garbage collection"},
    [CK_GC_GRACE] = {"gc_grace", K_DURATION, CONF(gc_grace_ms), 1000, UINT64_MAX, false,
		     "a duration of at least 1s, such as 1h; it must be much longer than a "
		     "client takes to commit what it uploaded"},
    [CK_KEYS] = {"keys", K_PATH, CONF(keys_dir), 0, 0, false,
		 "an absolute path shorter than 1024 bytes, such as /etc/pifs/keys"},
    [CK_SECURITY] = {"security", K_SECURITY, CONF(security_none), 0, 1, false,
		     "curve (the default: keys from 'pifs-admin keys init') or none (no "
		     "authentication or encryption: anyone on the network can read and destroy "
		     "the data)"},
};

enum { NK_ADDRESS, NK_DATA, NK_META, NK_WEIGHT, NK_N };

static const struct key node_keys[NK_N] = {
    [NK_ADDRESS] = {"address", K_ADDR, NODE(addr), 0, 0, false,
		    "host:port, such as 192.168.1.11:7070 or [fd00::11]:7070"},
    [NK_DATA] = {"data", K_PATH, NODE(data), 0, 0, false,
		 "an absolute path shorter than 1024 bytes, such as /srv/pifs"},
    [NK_META] = {"meta", K_BOOL, NODE(meta), 0, 1, false, "yes or no"},
    [NK_WEIGHT] =
	{"weight", K_INT, NODE(weight), 1, UINT32_MAX, false,
	 "a whole number from 1 to 4294967295 (leave it out to use the data disk's size in GiB)"},
};

enum { LK_CACHE, LK_TIMEOUT, LK_N };

static const struct key client_keys[LK_N] = {
    [LK_CACHE] = {"cache", K_SIZE, CONF(cache_bytes), 0, UINT64_MAX, false, "a size such as 64M"},
    [LK_TIMEOUT] = {"timeout", K_DURATION, CONF(timeout_ms), 1, UINT32_MAX, false,
		    "a duration from 1ms to 49 days, such as 10s"},
};

enum section { SEC_NONE, SEC_CLUSTER, SEC_NODE, SEC_CLIENT, SEC_BAD };

/* Where each node's section and keys are, for messages about the whole. */
struct node_lines {
	int section;
	int key[NK_N];
};

struct parse {
	struct pifs_conf *c;
	const char *path;
	FILE *f;
	char *line; /* owned, getline's buffer */
	size_t line_cap;
	int lineno;
	int sys_rc; /* 0, or the -errno of a failed read or allocation */
	enum section sec;
	char sec_name[32]; /* "[node 7]", for messages */
	int cluster_line, client_line;
	int cluster_key[CK_N], client_key[LK_N];
	struct node_lines node[PIFS_CONF_MAX_NODES];
	size_t nodes_cap;
	int err_line; /* 0: none yet; -1: an error about the whole file */
	char *err;
	size_t errlen;
};

static __attribute__((format(printf, 3, 0))) void vfail(struct parse *ps, int line, const char *fmt,
							va_list ap)
{
	int n;

	ps->err_line = line ? line : -1;
	if (!ps->err || !ps->errlen)
		return;
	if (line)
		n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->path, line);
	else
		n = snprintf(ps->err, ps->errlen, "%s: ", ps->path);
	if (n < 0 || (size_t)n >= ps->errlen)
		return;
	vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
}

/* Record the first error only: later ones are often its consequences. A
 * @line of 0 names no line. */
static __attribute__((format(printf, 3, 4))) void fail(struct parse *ps, int line, const char *fmt,
						       ...)
{
	va_list ap;

	if (ps->err_line)
		return;
	va_start(ap, fmt);
	vfail(ps, line, fmt, ap);
	va_end(ap);
}

/* A failed read or allocation: it replaces any error about the contents,
 * since the contents were not all seen. */
static __attribute__((format(printf, 4, 5))) void sys_fail(struct parse *ps, int rc, int line,
							   const char *fmt, ...)
{
	va_list ap;

	if (ps->sys_rc)
		return;
	ps->sys_rc = rc;
	va_start(ap, fmt);
	vfail(ps, line, fmt, ap);
	va_end(ap);
}

void pifs_conf_init(struct pifs_conf *c)
{
	c->replicas = 2;
	c->chunk_size = 4u << 20;
	c->heartbeat_ms = 1000;
	c->down_after_ms = 5000;
	c->out_after_ms = 10 * 60 * 1000;
	c->reserve_bytes = 256ull << 20;
	c->cache_bytes = 64ull << 20;
	c->timeout_ms = 10000;
	c->heal_interval_ms = 60 * 1000;
	c->heal_rate = 50ull << 20;
	c->scrub_interval_ms = 7ull * 24 * 60 * 60 * 1000;
	c->scrub_rate = 20ull << 20;
	c->gc_interval_ms = 60 * 60 * 1000;
	c->gc_grace_ms = 60 * 60 * 1000;
	snprintf(c->keys_dir, sizeof(c->keys_dir), "%s", PIFS_KEYS_DIR);
	c->security_none = false;
	c->n_nodes = 0;
	c->nodes = NULL;
}

void pifs_conf_fini(struct pifs_conf *c)
{
	if (!c)
		return;
	free(c->nodes);
	c->nodes = NULL;
	c->n_nodes = 0;
}

/* Digits only: strtoull would also take signs, spaces and hex. */
static int parse_uint(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned d;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	for (; *s >= '0' && *s <= '9'; s++) {
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*end = s;
	*out = v;
	return 0;
}

/* @v * @mult into @out, or -EINVAL on overflow. */
static int scale(uint64_t v, uint64_t mult, uint64_t *out)
{
	if (v > UINT64_MAX / mult)
		return -EINVAL;
	*out = v * mult;
	return 0;
}

int pifs_conf_parse_size(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v;
	unsigned shift;

	if (parse_uint(s, &end, &v) < 0)
		return -EINVAL;
	switch (*end) {
	case '\0':
		*out = v;
		return 0;
	case 'K':
	case 'k':
		shift = 10;
		break;
	case 'M':
	case 'm':
		shift = 20;
		break;
	case 'G':
	case 'g':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (end[1] != '\0')
		return -EINVAL;
	return scale(v, 1ull << shift, out);
}

int pifs_conf_parse_duration(const char *s, uint64_t *out)
{
	const char *end;
	uint64_t v, mult;

	if (parse_uint(s, &end, &v) < 0)
		return -EINVAL;
	if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 60 * 60 * 1000;
	else
		return -EINVAL;
	return scale(v, mult, out);
}

static int parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0")) {
		*out = false;
		return 0;
	}
	return -EINVAL;
}

/* Check that @addr is "host:port" or "[v6 address]:port", port 1..65535. */
static int check_addr(const char *addr)
{
	const char *colon, *end;
	uint64_t port;
	size_t i;

	if (addr[0] == '[') {
		colon = strchr(addr, ']');
		if (!colon || colon == addr + 1 || colon[1] != ':')
			return -EINVAL;
		colon++;
	} else {
		colon = strchr(addr, ':');
		/* A second colon is an IPv6 address without its brackets,
		 * which cannot be told apart from its port. */
		if (!colon || colon == addr || strchr(colon + 1, ':'))
			return -EINVAL;
	}
	for (i = 0; addr + i < colon; i++)
		if ((unsigned char)addr[i] <= ' ' || addr[i] == '/')
			return -EINVAL;
	if (parse_uint(colon + 1, &end, &port) < 0 || *end || port < 1 || port > 65535)
		return -EINVAL;
	return 0;
}

int pifs_conf_endpoint(const char *addr, char *out, size_t cap)
{
	int n;

	if (check_addr(addr) < 0)
		return -EINVAL;
	n = snprintf(out, cap, "tcp://%s", addr);
	if (n < 0 || (size_t)n >= cap)
		return -ERANGE;
	return 0;
}

/* Parse @value for @k into the struct at @base. Returns 0 or -EINVAL. */
static int set_value(const struct key *k, const char *value, uint8_t *base)
{
	const char *end;
	uint64_t v;
	bool b;
	int rc;

	if (k->kind == K_SECURITY) {
		if (strcmp(value, "curve") && strcmp(value, "none"))
			return -EINVAL;
		*(bool *)(base + k->off) = strcmp(value, "none") == 0;
		return 0;
	}
	if (k->kind == K_BOOL) {
		if (parse_bool(value, &b) < 0)
			return -EINVAL;
		*(bool *)(base + k->off) = b;
		return 0;
	}
	if (k->kind == K_ADDR || k->kind == K_PATH) {
		if (strlen(value) >= k->width)
			return -EINVAL;
		if (k->kind == K_ADDR ? check_addr(value) < 0 : value[0] != '/')
			return -EINVAL;
		strcpy((char *)(base + k->off), value);
		return 0;
	}
	if (k->kind == K_SIZE)
		rc = pifs_conf_parse_size(value, &v);
	else if (k->kind == K_DURATION)
		rc = pifs_conf_parse_duration(value, &v);
	else
		rc = parse_uint(value, &end, &v) < 0 || *end ? -EINVAL : 0;
	if (rc < 0 || v < k->min || v > k->max || (k->pow2 && (v & (v - 1))))
		return -EINVAL;
	if (k->width == sizeof(uint32_t))
		*(uint32_t *)(base + k->off) = (uint32_t)v;
	else
		*(uint64_t *)(base + k->off) = v;
	return 0;
}

static void list_keys(const struct key *keys, size_t n, char *out, size_t cap)
{
	size_t i, len = 0;
	int m;

	out[0] = '\0';
	for (i = 0; i < n && len < cap; i++) {
		m = snprintf(out + len, cap - len, "%s%s", i ? ", " : "", keys[i].name);
		if (m < 0)
			return;
		len += (size_t)m;
	}
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	const struct key *keys;
	uint8_t *base;
	int *seen;
	size_t n, i;
	char list[256];

	(void)section; /* The reader tracks sections, with their lines. */
	if (ps->sec == SEC_NONE) {
		fail(ps, ps->lineno,
		     "'%s' is outside any section: put it under [cluster], [node N] or [client]",
		     name);
		return 0;
	}
	if (ps->sec == SEC_BAD)
		return 1; /* The section header's error is already recorded. */
	if (ps->sec == SEC_CLUSTER) {
		keys = cluster_keys;
		n = CK_N;
		seen = ps->cluster_key;
		base = (uint8_t *)ps->c;
	} else if (ps->sec == SEC_CLIENT) {
		keys = client_keys;
		n = LK_N;
		seen = ps->client_key;
		base = (uint8_t *)ps->c;
	} else {
		keys = node_keys;
		n = NK_N;
		seen = ps->node[ps->c->n_nodes - 1].key;
		base = (uint8_t *)&ps->c->nodes[ps->c->n_nodes - 1];
	}
	for (i = 0; i < n; i++)
		if (strcmp(name, keys[i].name) == 0)
			break;
	if (i == n) {
		list_keys(keys, n, list, sizeof(list));
		fail(ps, ps->lineno, "unknown key '%s' in %s (keys: %s)", name, ps->sec_name, list);
		return 0;
	}
	if (seen[i]) {
		fail(ps, ps->lineno, "'%s' is set twice in %s (first on line %d): keep one", name,
		     ps->sec_name, seen[i]);
		return 0;
	}
	seen[i] = ps->lineno;
	if (set_value(&keys[i], value, base) < 0) {
		fail(ps, ps->lineno, "bad %s '%s' in %s: %s must be %s", name, value, ps->sec_name,
		     name, keys[i].expect);
		return 0;
	}
	return 1;
}

/* "node 7" -> 7, or 0 when the id is missing or out of range. */
static uint32_t node_id(const char *name)
{
	const char *end;
	uint64_t id;

	name += strlen("node");
	name += strspn(name, " \t");
	if (parse_uint(name, &end, &id) < 0 || *end || id < 1 || id > NODE_ID_MAX)
		return 0;
	return (uint32_t)id;
}

static void begin_node(struct parse *ps, const char *name)
{
	struct pifs_conf *c = ps->c;
	struct pifs_conf_node *nodes;
	uint32_t id;
	size_t i;

	ps->sec = SEC_BAD;
	id = node_id(name);
	if (!id) {
		fail(ps, ps->lineno,
		     "bad node id in [%s]: write [node N] with N a whole number from 1 to %u", name,
		     NODE_ID_MAX);
		return;
	}
	for (i = 0; i < c->n_nodes; i++) {
		if (c->nodes[i].id == id) {
			fail(ps, ps->lineno,
			     "node %u is defined twice (first on line %d): give each node its own "
			     "id",
			     id, ps->node[i].section);
			return;
		}
	}
	if (c->n_nodes == PIFS_CONF_MAX_NODES) {
		fail(ps, ps->lineno,
		     "more than %d nodes: pifs supports at most %d, remove [node %u]",
		     PIFS_CONF_MAX_NODES, PIFS_CONF_MAX_NODES, id);
		return;
	}
	if (c->n_nodes == ps->nodes_cap) {
		ps->nodes_cap = ps->nodes_cap ? 2 * ps->nodes_cap : 8;
		nodes = realloc(c->nodes, ps->nodes_cap * sizeof(*nodes));
		if (!nodes) {
			sys_fail(ps, -ENOMEM, ps->lineno, "out of memory reading [node %u]", id);
			return;
		}
		c->nodes = nodes;
	}
	memset(&c->nodes[c->n_nodes], 0, sizeof(c->nodes[0]));
	c->nodes[c->n_nodes].id = id;
	memset(&ps->node[c->n_nodes], 0, sizeof(ps->node[0]));
	ps->node[c->n_nodes].section = ps->lineno;
	c->n_nodes++;
	snprintf(ps->sec_name, sizeof(ps->sec_name), "[node %u]", id);
	ps->sec = SEC_NODE;
}

/* A section header on the current line: @len bytes of @name, trimmed. */
static void begin_section(struct parse *ps, const char *text, size_t len)
{
	char name[64];
	bool cluster;
	int *first;

	/* Every valid name is much shorter: a longer one is unknown. */
	if (len >= sizeof(name)) {
		ps->sec = SEC_BAD;
		fail(ps, ps->lineno,
		     "unknown section [%.*s...] (sections: [cluster], [node N], [client])", 32,
		     text);
		return;
	}
	memcpy(name, text, len);
	name[len] = '\0';
	cluster = strcmp(name, "cluster") == 0;

	if (cluster || strcmp(name, "client") == 0) {
		first = cluster ? &ps->cluster_line : &ps->client_line;
		if (*first) {
			ps->sec = SEC_BAD;
			fail(ps, ps->lineno, "[%s] appears twice (first on line %d): merge them",
			     name, *first);
			return;
		}
		*first = ps->lineno;
		ps->sec = cluster ? SEC_CLUSTER : SEC_CLIENT;
		strcpy(ps->sec_name, cluster ? "[cluster]" : "[client]");
		return;
	}
	if (strcmp(name, "node") == 0 ||
	    (strncmp(name, "node", 4) == 0 && (name[4] == ' ' || name[4] == '\t'))) {
		begin_node(ps, name);
		return;
	}
	ps->sec = SEC_BAD;
	fail(ps, ps->lineno, "unknown section [%.64s] (sections: [cluster], [node N], [client])",
	     name);
}

/* inih's fgets-like reader: hands over one line at a time, counting them and
 * following section headers. Lines are left-trimmed, so that indentation
 * never makes inih take a line for the continuation of the previous value. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	const char *name;
	char *p, *end;
	size_t len, n;

	errno = 0;
	if (getline(&ps->line, &ps->line_cap, ps->f) < 0) {
		/* getline leaves errno alone at the end of the file. */
		if (errno)
			sys_fail(ps, -errno, ps->lineno + 1,
				 "cannot read the configuration file: %s", strerror(errno));
		return NULL;
	}
	ps->lineno++;
	p = ps->line;
	if (ps->lineno == 1 && strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	p += strspn(p, " \t\r\n\v\f");
	len = strcspn(p, "\r\n");
	p[len] = '\0';
	if (len >= (size_t)num) {
		fail(ps, ps->lineno, "line is longer than %d characters: shorten it", num - 1);
		str[0] = '\0';
		return str;
	}
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end) {
			ps->sec = SEC_BAD;
			fail(ps, ps->lineno,
			     "section header without ']': write [cluster], [node N] or [client]");
		} else {
			name = p + 1 + strspn(p + 1, " \t");
			n = (size_t)(end - name);
			while (n && (name[n - 1] == ' ' || name[n - 1] == '\t'))
				n--;
			begin_section(ps, name, n);
		}
	}
	memcpy(str, p, len + 1);
	return str;
}

/* Checks that need the whole file. */
static void check_whole(struct parse *ps)
{
	const struct pifs_conf *c = ps->c;
	size_t i, j, voters = 0;

	if (c->n_nodes == 0) {
		fail(ps, 0,
		     "no [node N] section: add one for each storage node, with its address and "
		     "data directory");
		return;
	}
	for (i = 0; i < c->n_nodes; i++) {
		if (!ps->node[i].key[NK_ADDRESS])
			fail(ps, ps->node[i].section,
			     "[node %u] has no address: add 'address = host:port'", c->nodes[i].id);
		if (!ps->node[i].key[NK_DATA])
			fail(ps, ps->node[i].section,
			     "[node %u] has no data directory: add 'data = /path/to/store'",
			     c->nodes[i].id);
		for (j = 0; j < i; j++)
			if (ps->node[i].key[NK_ADDRESS] && ps->node[j].key[NK_ADDRESS] &&
			    strcasecmp(c->nodes[i].addr, c->nodes[j].addr) == 0)
				fail(ps, ps->node[i].key[NK_ADDRESS],
				     "node %u has the same address as node %u (line %d): give each "
				     "node its own host:port",
				     c->nodes[i].id, c->nodes[j].id, ps->node[j].key[NK_ADDRESS]);
		voters += c->nodes[i].meta;
	}
	if (!voters)
		fail(ps, 0,
		     "no node has 'meta = yes': make one node (or three, to survive the loss of "
		     "one) a metadata voter");
	if (c->replicas > c->n_nodes)
		fail(ps, ps->cluster_key[CK_REPLICAS],
		     "replicas is %u%s but only %zu node%s configured: add nodes or set a lower "
		     "'replicas' in [cluster]",
		     c->replicas, ps->cluster_key[CK_REPLICAS] ? "" : " (the default)", c->n_nodes,
		     c->n_nodes == 1 ? " is" : "s are");
	if (c->down_after_ms <= c->heartbeat_ms)
		fail(ps,
		     ps->cluster_key[CK_DOWN_AFTER] ? ps->cluster_key[CK_DOWN_AFTER]
						    : ps->cluster_key[CK_HEARTBEAT],
		     "down_after (%u ms) must be longer than heartbeat (%u ms), or live nodes "
		     "would be marked down: raise down_after or lower heartbeat",
		     c->down_after_ms, c->heartbeat_ms);
	if (c->out_after_ms < c->down_after_ms)
		fail(ps,
		     ps->cluster_key[CK_OUT_AFTER] ? ps->cluster_key[CK_OUT_AFTER]
						   : ps->cluster_key[CK_DOWN_AFTER],
		     "out_after (%llu ms) must not be shorter than down_after (%u ms): raise "
		     "out_after",
		     (unsigned long long)c->out_after_ms, c->down_after_ms);
}

int pifs_conf_load(struct pifs_conf *c, const char *path, char *err, size_t errlen)
{
	struct parse *ps;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	/* The per-node line table is a few KiB: too much for a thread's stack. */
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->c = c;
	ps->path = path;
	ps->err = err;
	ps->errlen = errlen;
	ps->f = fopen(path, "re");
	if (!ps->f) {
		rc = -errno;
		fail(ps, 0,
		     "cannot open the configuration file: %s: check the path, every node needs a "
		     "copy of it",
		     strerror(-rc));
		goto out_free;
	}
	rc = ini_parse_stream(read_line, ps, handler, ps);
	if (rc == -2)
		sys_fail(ps, -ENOMEM, 0, "out of memory reading the configuration file");
	if (ps->sys_rc) {
		rc = ps->sys_rc;
		goto out_close;
	}
	/* inih reports the first line it could not split as well as the first
	 * line the handler refused; a reader error comes before its line. */
	if (rc > 0 && (ps->err_line <= 0 || rc < ps->err_line)) {
		ps->err_line = 0;
		fail(ps, rc,
		     "cannot read this line: write 'key = value', a [section] header, or a comment "
		     "starting with ';' or '#'");
	}
	check_whole(ps);
	rc = ps->err_line ? -EINVAL : 0;
out_close:
	fclose(ps->f);
out_free:
	free(ps->line);
	free(ps);
	if (rc < 0) {
		pifs_conf_fini(c);
		pifs_conf_init(c);
	}
	return rc;
}

const struct pifs_conf_node *pifs_conf_node(const struct pifs_conf *c, uint32_t id)
{
	size_t i;

	for (i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}

const struct pifs_conf_node *pifs_conf_meta(const struct pifs_conf *c)
{
	size_t i;

	for (i = 0; i < c->n_nodes; i++)
		if (c->nodes[i].meta)
			return &c->nodes[i];
	return NULL;
}
