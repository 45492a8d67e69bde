/* keys.c - the key directory's two kinds of file, the allow-list and the
 * key pairs, and the bundle that carries one of each to a new machine
 * (keys.h has their formats).
 *
 * The parsers walk the text one line at a time through the same reader,
 * which counts lines, copies each into a bounded buffer and refuses bytes
 * that are not text, so that every message can name its line and quote
 * what it refuses without carrying control characters to a terminal. Only
 * the first error is reported: the operator fixes it and runs again.
 *
 * A secret half is never quoted in a message, and the buffers that held
 * one are wiped before they are given back. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* Longer than any valid line (a name, a role, a key and "revoked", with
 * room for alignment), short enough to live on the stack. */
#define LINE_MAX_CHARS 512
/* No key directory file comes near these: a bigger one is not ours. */
#define ALLOW_FILE_MAX (4u << 20)
#define KEY_FILE_MAX (64u << 10)
#define NODE_ID_MAX 2147483647u
#define KEY_BYTES 32

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				".-:+=^!/*?&<>()[]{}@%$#";

/* ---- names, roles, keys ---- */

static const char *const role_names[] = {
    [PIFS_ROLE_NONE] = "none",
    [PIFS_ROLE_CLIENT] = "client",
    [PIFS_ROLE_NODE] = "node",
    [PIFS_ROLE_ADMIN] = "admin",
};

const char *pifs_role_name(enum pifs_role r)
{
	if ((unsigned)r >= sizeof(role_names) / sizeof(role_names[0]))
		return "none";
	return role_names[r];
}

int pifs_role_parse(const char *s, enum pifs_role *out)
{
	/* "none" names no role a key may have: it is not parsed. */
	for (unsigned r = PIFS_ROLE_CLIENT; r <= PIFS_ROLE_ADMIN; r++) {
		if (strcmp(s, role_names[r]) == 0) {
			*out = (enum pifs_role)r;
			return 0;
		}
	}
	return -EINVAL;
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool pifs_key_name_ok(const char *name)
{
	size_t i;

	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= '0' && name[0] <= '9')))
		return false;
	for (i = 0; name[i]; i++)
		if (i == PIFS_KEY_NAME_MAX || !name_char(name[i]))
			return false;
	return true;
}

uint32_t pifs_key_node(const char *name)
{
	uint64_t n = 0;
	const char *p;

	if (strncmp(name, "node-", 5) != 0)
		return 0;
	p = name + 5;
	if (*p < '1' || *p > '9')
		return 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > NODE_ID_MAX)
			return 0;
	}
	return (uint32_t)n;
}

/* "node-" and digits only, as node-N is written, whether or not the digits
 * make a valid N: "node-007" and "node-0" must not pass for other keys. */
static bool node_form(const char *name)
{
	const char *p;

	if (strncmp(name, "node-", 5) != 0 || !name[5])
		return false;
	for (p = name + 5; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

bool pifs_key_z85_ok(const char *z)
{
	uint8_t bytes[KEY_BYTES];
	size_t i;

	if (!z)
		return false;
	for (i = 0; z[i]; i++)
		if (i == PIFS_KEY_Z85 || !strchr(z85_chars, z[i]))
			return false;
	/* Five characters can spell more than 2^32: ZeroMQ refuses those. */
	return i == PIFS_KEY_Z85 && zmq_z85_decode(bytes, z) != NULL;
}

/* Do @name and @role agree: node-N keys, and only they, have role node?
 * Returns 0 or -EINVAL. */
static int name_role_ok(const char *name, enum pifs_role role)
{
	if (!pifs_key_name_ok(name) || role < PIFS_ROLE_CLIENT || role > PIFS_ROLE_ADMIN)
		return -EINVAL;
	if (node_form(name) && !pifs_key_node(name))
		return -EINVAL;
	if ((pifs_key_node(name) != 0) != (role == PIFS_ROLE_NODE))
		return -EINVAL;
	return 0;
}

/* The sentences shared by both files. */
#define NAME_RULE "a name is 1 to 48 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
#define COPY_AGAIN "copy the file again from the admin's machine"

/* ---- the line reader and its messages ---- */

struct reader {
	const char *p, *end; /* what is left of the text */
	const char *cur;     /* where the line in @line starts in the text */
	const char *path;
	int lineno;
	/* The line that errors about the text as a whole name: 0 for a file
	 * (the message names the file alone), a section's "---" line in a
	 * bundle, whose text starts on the line after it. */
	int whole_line;
	bool failed;
	int sys_rc; /* 0, or the -errno of a failed allocation */
	char *err;
	size_t errlen;
	char line[LINE_MAX_CHARS + 1]; /* the current line, trimmed */
};

/* Read @len bytes at @text, whose first line is line @line0 + 1 of @path. */
static void reader_init(struct reader *rd, const char *text, size_t len, const char *path,
			int line0, char *err, size_t errlen)
{
	rd->p = text;
	rd->end = text + len;
	rd->cur = text;
	rd->path = path;
	rd->lineno = line0;
	rd->whole_line = line0;
	rd->failed = false;
	rd->sys_rc = 0;
	rd->err = err;
	rd->errlen = errlen;
	if (err && errlen)
		err[0] = '\0';
}

/* Record the first error only, as "path:line: ..."; @line 0 stands for the
 * whole text (rd->whole_line: "path: ..." for a file). */
static __attribute__((format(printf, 3, 4))) void fail(struct reader *rd, int line, const char *fmt,
						       ...)
{
	va_list ap;
	int n;

	if (rd->failed)
		return;
	rd->failed = true;
	if (!rd->err || !rd->errlen)
		return;
	if (!line)
		line = rd->whole_line;
	if (line)
		n = snprintf(rd->err, rd->errlen, "%s:%d: ", rd->path, line);
	else
		n = snprintf(rd->err, rd->errlen, "%s: ", rd->path);
	if (n < 0 || (size_t)n >= rd->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The next line that is neither blank nor a comment, trimmed, in rd->line.
 * Returns 1, 0 at the end of the text, or -EINVAL (recorded). */
static int next_line(struct reader *rd)
{
	const char *nl, *s;
	size_t len, i;

	while (rd->p < rd->end) {
		rd->lineno++;
		nl = memchr(rd->p, '\n', (size_t)(rd->end - rd->p));
		len = (size_t)((nl ? nl : rd->end) - rd->p);
		s = rd->cur = rd->p;
		rd->p = nl ? nl + 1 : rd->end;
		if (len && s[len - 1] == '\r')
			len--;
		/* A byte order mark, as some editors write one (a bundle's
		 * sections start further on: their lines are never line 1). */
		if (rd->lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
			s += 3;
			len -= 3;
		}
		while (len && blank(*s)) {
			s++;
			len--;
		}
		while (len && blank(s[len - 1]))
			len--;
		if (len > LINE_MAX_CHARS) {
			fail(rd, rd->lineno, "line is longer than %d characters: shorten it",
			     LINE_MAX_CHARS);
			return -EINVAL;
		}
		for (i = 0; i < len; i++) {
			unsigned char c = (unsigned char)s[i];

			if ((c < 0x20 && c != '\t') || c == 0x7f) {
				fail(rd, rd->lineno,
				     "byte 0x%02x is not text: is this the right file? " COPY_AGAIN,
				     c);
				return -EINVAL;
			}
		}
		memcpy(rd->line, s, len);
		rd->line[len] = '\0';
		if (len && rd->line[0] != '#')
			return 1;
	}
	return 0;
}

/* Split @line in place into at most @max words; returns how many there
 * were, counting one past @max when there are more. */
static size_t split(char *line, char **words, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		while (blank(*p))
			*p++ = '\0';
		if (!*p)
			return n;
		if (n == max)
			return n + 1;
		words[n++] = p;
		while (*p && !blank(*p))
			p++;
	}
}

/* Say why @name with @role is refused, on @line. */
static void fail_name_role(struct reader *rd, int line, const char *name, enum pifs_role role)
{
	if (!pifs_key_name_ok(name))
		fail(rd, line, "bad key name '%.64s': " NAME_RULE, name);
	else if (node_form(name) && !pifs_key_node(name))
		fail(rd, line,
		     "bad key name '%s': node-N is the key of node N, with N from 1 to %u written "
		     "without leading zeros, and no other key has that form",
		     name, NODE_ID_MAX);
	else if (role == PIFS_ROLE_NODE)
		fail(rd, line,
		     "key '%s' has role node but is not named node-N: a node's key is named after "
		     "its node id ('pifs-admin keys add-node N' makes it)",
		     name);
	else
		fail(rd, line,
		     "key '%s' has role %s, but node-N names the key of node N, whose role is "
		     "node: give it role node, or another name",
		     name, pifs_role_name(role));
}

/* ---- the allow-list ---- */

void pifs_allow_init(struct pifs_allow *a)
{
	a->generation = 0;
	a->n = 0;
	a->keys = NULL;
}

void pifs_allow_fini(struct pifs_allow *a)
{
	if (!a)
		return;
	free(a->keys);
	pifs_allow_init(a);
}

const struct pifs_key *pifs_allow_find(const struct pifs_allow *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->keys[i].name, name) == 0)
			return &a->keys[i];
	return NULL;
}

const struct pifs_key *pifs_allow_find_pub(const struct pifs_allow *a, const char *pub)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->keys[i].pub, pub) == 0)
			return &a->keys[i];
	return NULL;
}

/* The list has no capacity field: the array is kept at the next power of
 * two of @n (at least 8), so it grows exactly when @n reaches one. */
static int allow_grow(struct pifs_allow *a)
{
	struct pifs_key *keys;
	size_t cap;

	if (a->n == 0)
		cap = 8;
	else if (a->n >= 8 && (a->n & (a->n - 1)) == 0)
		cap = 2 * a->n;
	else
		return 0;
	keys = realloc(a->keys, cap * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	a->keys = keys;
	return 0;
}

int pifs_allow_add(struct pifs_allow *a, const struct pifs_key *k)
{
	struct pifs_key *dst;
	int rc;

	if (strnlen(k->name, sizeof(k->name)) == sizeof(k->name) ||
	    strnlen(k->pub, sizeof(k->pub)) == sizeof(k->pub))
		return -EINVAL;
	if (name_role_ok(k->name, k->role) < 0 || !pifs_key_z85_ok(k->pub))
		return -EINVAL;
	if (pifs_allow_find(a, k->name) || pifs_allow_find_pub(a, k->pub))
		return -EEXIST;
	if (a->n >= PIFS_KEYS_MAX)
		return -ENOSPC;
	rc = allow_grow(a);
	if (rc < 0)
		return rc;
	dst = &a->keys[a->n++];
	memset(dst, 0, sizeof(*dst));
	strcpy(dst->name, k->name);
	dst->role = k->role;
	strcpy(dst->pub, k->pub);
	dst->revoked = k->revoked;
	return 0;
}

int pifs_allow_add_pair(struct pifs_allow *a, const struct pifs_keypair *kp)
{
	struct pifs_key k = {.role = kp->role};

	memcpy(k.name, kp->name, sizeof(k.name));
	memcpy(k.pub, kp->pub, sizeof(k.pub));
	return pifs_allow_add(a, &k);
}

/* Parse "generation N" (@words[1]) on the current line. */
static void parse_generation(struct reader *rd, struct pifs_allow *a, char **words, size_t n,
			     int *gen_line)
{
	const char *p = n == 2 ? words[1] : "";
	uint64_t v = 0;

	if (*gen_line) {
		fail(rd, rd->lineno, "generation is given twice (first on line %d): keep one",
		     *gen_line);
		return;
	}
	if (!*p)
		goto bad;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*gen_line = rd->lineno;
	a->generation = v;
	return;
bad:
	fail(rd, rd->lineno,
	     "bad generation line: write 'generation N' with N a whole number (the list's "
	     "version, which grows by one at every change)");
}

/* Parse a key line "NAME ROLE PUBLIC [revoked]" into @a; @lines[i] is the
 * line of a->keys[i], for the messages about doubles. */
static void parse_key_line(struct reader *rd, struct pifs_allow *a, char **words, size_t n,
			   int *lines)
{
	struct pifs_key k = {0};
	const struct pifs_key *dup;
	int rc;

	if (n < 3 || n > 4) {
		fail(rd, rd->lineno,
		     "cannot read this line: write 'NAME ROLE PUBLIC' (with 'revoked' after a "
		     "revoked key), 'generation N', or a comment starting with '#'");
		return;
	}
	if (!pifs_key_name_ok(words[0])) {
		fail(rd, rd->lineno, "bad key name '%.64s': " NAME_RULE, words[0]);
		return;
	}
	strcpy(k.name, words[0]);
	if (pifs_role_parse(words[1], &k.role) < 0) {
		fail(rd, rd->lineno,
		     "unknown role '%.32s' for key '%s': the roles are client, node and admin",
		     words[1], k.name);
		return;
	}
	if (name_role_ok(k.name, k.role) < 0) {
		fail_name_role(rd, rd->lineno, k.name, k.role);
		return;
	}
	if (!pifs_key_z85_ok(words[2])) {
		fail(rd, rd->lineno,
		     "bad public key for '%s': a key is 40 characters of Z85 text; " COPY_AGAIN,
		     k.name);
		return;
	}
	strcpy(k.pub, words[2]);
	if (n == 4) {
		if (strcmp(words[3], "revoked") != 0) {
			fail(rd, rd->lineno,
			     "unknown word '%.32s' after the key of '%s': only 'revoked' may "
			     "follow a key",
			     words[3], k.name);
			return;
		}
		k.revoked = true;
	}
	if ((dup = pifs_allow_find(a, k.name))) {
		fail(rd, rd->lineno, "key '%s' is listed twice (first on line %d): keep one",
		     k.name, lines[dup - a->keys]);
		return;
	}
	if ((dup = pifs_allow_find_pub(a, k.pub))) {
		fail(rd, rd->lineno,
		     "'%s' has the public key of '%s' (line %d): every key is made apart; "
		     "keep the right line, or " COPY_AGAIN,
		     k.name, dup->name, lines[dup - a->keys]);
		return;
	}
	if (a->n == PIFS_KEYS_MAX) {
		fail(rd, rd->lineno,
		     "more than %d keys: pifs takes at most %d; revoke and remove keys no one "
		     "uses",
		     PIFS_KEYS_MAX, PIFS_KEYS_MAX);
		return;
	}
	rc = pifs_allow_add(a, &k);
	if (rc < 0) {
		/* Only -ENOMEM is left: everything else was checked above. */
		fail(rd, rd->lineno, "out of memory reading the allow-list");
		rd->sys_rc = rc;
		return;
	}
	lines[a->n - 1] = rd->lineno;
}

/* pifs_allow_parse of text whose first line is line @line0 + 1 of @path. */
static int allow_parse_at(struct pifs_allow *a, const char *text, size_t len, const char *path,
			  int line0, char *err, size_t errlen)
{
	enum pifs_role role;
	struct reader *rd;
	char *words[5];
	int *lines, gen_line = 0, rc;
	size_t n;

	/* Several KiB of line numbers and buffer: too much for a thread's stack. */
	rd = malloc(sizeof(*rd));
	lines = malloc(PIFS_KEYS_MAX * sizeof(*lines));
	if (!rd || !lines) {
		free(rd);
		free(lines);
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory reading the allow-list", path);
		return -ENOMEM;
	}
	pifs_allow_fini(a);
	reader_init(rd, text, len, path, line0, err, errlen);
	while (!rd->failed && (rc = next_line(rd)) == 1) {
		n = split(rd->line, words, 4);
		/* A key may be named "generation": its line has a role as
		 * second word, which the generation line never has. */
		if (strcmp(words[0], "generation") == 0 &&
		    (n < 3 || pifs_role_parse(words[1], &role) < 0))
			parse_generation(rd, a, words, n, &gen_line);
		else
			parse_key_line(rd, a, words, n, lines);
	}
	if (!rd->failed && !gen_line)
		fail(rd, 0,
		     "no 'generation N' line: this is not a whole allow-list; " COPY_AGAIN
		     " (pifs-admin keys init makes the first one)");
	rc = rd->failed ? (rd->sys_rc ? rd->sys_rc : -EINVAL) : 0;
	free(lines);
	free(rd);
	if (rc < 0)
		pifs_allow_fini(a);
	return rc;
}

int pifs_allow_parse(struct pifs_allow *a, const char *text, size_t len, const char *path,
		     char *err, size_t errlen)
{
	return allow_parse_at(a, text, len, path, 0, err, errlen);
}

/* ---- reading and writing files ---- */

/* The files read_whole reads: the last two hold a secret. */
enum file_kind { FILE_LIST, FILE_KEY, FILE_BUNDLE };

/* Read the file @path, at most @max bytes, into *@out (malloc'd, with a NUL
 * after its *@len bytes). A key file or a bundle must be a regular file that
 * group and others have no access to. @what names the file in messages.
 * Returns 0 or -errno, with a sentence in @err. */
static int read_whole(const char *path, size_t max, enum file_kind kind, const char *what,
		      char **out, size_t *len, char *err, size_t errlen)
{
	bool secret = kind != FILE_LIST;
	struct stat st;
	char *buf = NULL, *grown;
	size_t got = 0, cap;
	ssize_t n;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT && kind == FILE_BUNDLE)
			snprintf(err, errlen,
				 "%s: no such file: make the bundle on the admin's machine "
				 "('pifs-admin keys export NAME -o FILE') and copy it here",
				 path);
		else if (rc == -ENOENT && kind == FILE_KEY)
			snprintf(
			    err, errlen,
			    "%s: no such file: make the key on the admin's machine (pifs-admin "
			    "keys add-node, add-client or add-admin) and copy it here, mode "
			    "600; or check the config's 'keys =' directory",
			    path);
		else if (rc == -ENOENT)
			snprintf(err, errlen,
				 "%s: no such file: make it with 'pifs-admin keys init', or copy "
				 "'allowed' from the admin's machine; or check the config's 'keys "
				 "=' directory",
				 path);
		else if (rc == -EACCES)
			snprintf(err, errlen,
				 "%s: cannot open the %s: permission denied: run as the user that "
				 "owns it (root, for /etc/pifs/keys)",
				 path, what);
		else
			snprintf(err, errlen, "%s: cannot open the %s: %s", path, what,
				 strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: cannot stat the %s: %s", path, what, strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: the %s is not a regular file: name the file itself",
			 path, what);
		goto out_close;
	}
	if (secret && (st.st_mode & 077)) {
		rc = -EACCES;
		snprintf(err, errlen,
			 "%s: group or others may use this %s (mode %04o): run 'chmod 600 "
			 "%s'; if others could read it, it may have been copied: then revoke its "
			 "key (pifs-admin keys revoke NAME) and make a new one",
			 path, what, (unsigned)(st.st_mode & 07777), path);
		goto out_close;
	}
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		snprintf(err, errlen,
			 "%s: %lld bytes is far too big for a %s: is this the right file?", path,
			 (long long)st.st_size, what);
		goto out_close;
	}
	/* Read to the end, not to st_size: the file may have grown since. */
	cap = (size_t)st.st_size + 1;
	buf = malloc(cap + 1);
	if (!buf) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory reading the %s", path, what);
		goto out_close;
	}
	for (;;) {
		if (got == cap) {
			if (cap > max)
				break;
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			grown = realloc(buf, cap + 1);
			if (!grown) {
				rc = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory reading the %s", path,
					 what);
				goto out_free;
			}
			buf = grown;
		}
		n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: cannot read the %s: %s", path, what,
				 strerror(-rc));
			goto out_free;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		rc = -EFBIG;
		snprintf(err, errlen,
			 "%s: over %zu bytes is far too big for a %s: is this the right file?",
			 path, max, what);
		goto out_free;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	close(fd);
	return 0;
out_free:
	if (buf)
		explicit_bzero(buf, got);
	free(buf);
out_close:
	close(fd);
	return rc;
}

/* Write @len bytes of @text to @path whole or not at all: a temporary file
 * beside it, mode 0600, synced, then renamed over @path or, with
 * @noreplace, moved in only if @path does not exist (-EEXIST); then the
 * directory is synced, so that the new name survives a power cut. */
static int write_whole(const char *path, const char *text, size_t len, bool noreplace)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	size_t done = 0;
	ssize_t n;
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	/* mkostemp makes the file 0600 whatever the umask; fchmod says so
	 * again for a umask that takes even those bits away. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600) < 0) {
		rc = -errno;
		goto out_close;
	}
	while (done < len) {
		n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_close;
		}
		done += (size_t)n;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		goto out_close;
	}
	rc = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (rc < 0)
		goto out_unlink;
	if (!noreplace) {
		if (rename(tmp, path) < 0)
			rc = -errno;
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		rc = -errno;
		/* A file system without RENAME_NOREPLACE: link(2) refuses an
		 * existing name as well. */
		if (rc == -EINVAL || rc == -ENOSYS) {
			rc = link(tmp, path) < 0 ? -errno : 0;
			unlink(tmp);
		}
	}
	if (rc < 0)
		goto out_unlink;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
out_close:
	close(fd);
out_unlink:
	unlink(tmp);
	return rc;
}

int pifs_allow_load(struct pifs_allow *a, const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = read_whole(path, ALLOW_FILE_MAX, FILE_LIST, "allow-list", &text, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = pifs_allow_parse(a, text, len, path, err, errlen);
	free(text);
	return rc;
}

int pifs_allow_format(const struct pifs_allow *a, char **out, size_t *len)
{
	static const char head[] =
	    "# pifs allow-list (fs/keys.h): the keys this cluster accepts, public halves only.\n"
	    "# The same file on every machine; change it with 'pifs-admin keys', which sends\n"
	    "# it to the nodes.\n";
	size_t cap, used, width = 1;
	char *buf;
	int n;

	for (size_t i = 0; i < a->n; i++)
		if (strlen(a->keys[i].name) > width)
			width = strlen(a->keys[i].name);
	/* A key line is at most the name, 6 for the role, the key, "revoked"
	 * and its separators. */
	cap = sizeof(head) + 64 + a->n * (width + PIFS_KEY_Z85 + 20);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	used = (size_t)snprintf(buf, cap, "%sgeneration %llu\n", head,
				(unsigned long long)a->generation);
	for (size_t i = 0; i < a->n; i++) {
		const struct pifs_key *k = &a->keys[i];

		n = snprintf(buf + used, cap - used, "%-*s %-6s %s%s\n", (int)width, k->name,
			     pifs_role_name(k->role), k->pub, k->revoked ? " revoked" : "");
		if (n < 0 || (size_t)n >= cap - used) {
			free(buf);
			return -ENOMEM; /* cannot happen: cap is counted above */
		}
		used += (size_t)n;
	}
	*out = buf;
	*len = used;
	return 0;
}

int pifs_allow_save(const struct pifs_allow *a, const char *path)
{
	char *text;
	size_t len;
	int rc;

	rc = pifs_allow_format(a, &text, &len);
	if (rc < 0)
		return rc;
	rc = write_whole(path, text, len, false);
	free(text);
	return rc;
}

/* ---- key pairs ---- */

int pifs_keypair_make(struct pifs_keypair *kp, const char *name, enum pifs_role role)
{
	memset(kp, 0, sizeof(*kp));
	if (name_role_ok(name, role) < 0)
		return -EINVAL;
	if (zmq_curve_keypair(kp->pub, kp->secret) < 0) {
		int rc = -errno;

		explicit_bzero(kp, sizeof(*kp));
		return rc ? rc : -ENOTSUP;
	}
	strcpy(kp->name, name);
	kp->role = role;
	return 0;
}

enum { KF_NAME, KF_ROLE, KF_PUBLIC, KF_SECRET, KF_N };

static const char *const kf_names[KF_N] = {"name", "role", "public", "secret"};

/* One "field = value" line of a key file into @kp; @seen[f] is the line
 * of field f, 0 while unseen. */
static void parse_field(struct reader *rd, struct pifs_keypair *kp, int *seen)
{
	char *eq = strchr(rd->line, '='), *key = rd->line, *value, *end;
	int f;

	if (!eq) {
		fail(rd, rd->lineno,
		     "cannot read this line: write 'key = value' (name, role, public, secret), or "
		     "a comment starting with '#'");
		return;
	}
	/* Z85 has '=' among its characters: the field name ends at the first. */
	for (end = eq; end > key && blank(end[-1]); end--)
		;
	*end = '\0';
	for (value = eq + 1; blank(*value); value++)
		;
	for (f = 0; f < KF_N; f++)
		if (strcmp(key, kf_names[f]) == 0)
			break;
	if (f == KF_N) {
		fail(rd, rd->lineno, "unknown key '%.32s' (keys: name, role, public, secret)", key);
		return;
	}
	if (seen[f]) {
		fail(rd, rd->lineno, "'%s' is set twice (first on line %d): keep one", kf_names[f],
		     seen[f]);
		return;
	}
	seen[f] = rd->lineno;
	switch (f) {
	case KF_NAME:
		if (!pifs_key_name_ok(value))
			fail(rd, rd->lineno, "bad key name '%.64s': " NAME_RULE, value);
		else
			strcpy(kp->name, value);
		break;
	case KF_ROLE:
		if (pifs_role_parse(value, &kp->role) < 0)
			fail(rd, rd->lineno,
			     "unknown role '%.32s': the roles are client, node and admin", value);
		break;
	case KF_PUBLIC:
		if (!pifs_key_z85_ok(value))
			fail(rd, rd->lineno,
			     "bad public key: a key is 40 characters of Z85 text; " COPY_AGAIN);
		else
			strcpy(kp->pub, value);
		break;
	case KF_SECRET:
		/* Never quoted: the message may end up in a log. */
		if (!pifs_key_z85_ok(value))
			fail(rd, rd->lineno,
			     "bad secret key: a key is 40 characters of Z85 text; " COPY_AGAIN);
		else
			strcpy(kp->secret, value);
		break;
	}
}

/* pifs_keypair_parse of text whose first line is line @line0 + 1 of @path. */
static int keypair_parse_at(struct pifs_keypair *kp, const char *text, size_t len, const char *path,
			    int line0, char *err, size_t errlen)
{
	char derived[PIFS_KEY_Z85 + 1];
	int seen[KF_N] = {0}, rc = 0;
	struct reader *rd;

	memset(kp, 0, sizeof(*kp));
	rd = malloc(sizeof(*rd));
	if (!rd) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory reading the key file", path);
		return -ENOMEM;
	}
	reader_init(rd, text, len, path, line0, err, errlen);
	while (!rd->failed && next_line(rd) == 1)
		parse_field(rd, kp, seen);
	for (int f = 0; f < KF_N && !rd->failed; f++)
		if (!seen[f])
			fail(rd, 0, "no '%s =' line: this is not a whole key file; " COPY_AGAIN,
			     kf_names[f]);
	if (!rd->failed && name_role_ok(kp->name, kp->role) < 0)
		fail_name_role(rd, seen[KF_ROLE], kp->name, kp->role);
	if (!rd->failed) {
		if (zmq_curve_public(derived, kp->secret) < 0) {
			rc = errno ? -errno : -ENOTSUP;
			fail(rd, seen[KF_SECRET],
			     "cannot check the secret key: this libzmq has no CURVE (%s): install "
			     "one built with libsodium",
			     strerror(-rc));
		} else if (strcmp(derived, kp->pub) != 0) {
			fail(
			    rd, seen[KF_SECRET],
			    "the secret key does not belong to the public key of line %d: the file "
			    "is damaged or pieced together from two keys; " COPY_AGAIN,
			    seen[KF_PUBLIC]);
		}
		explicit_bzero(derived, sizeof(derived));
	}
	if (rd->failed && !rc)
		rc = -EINVAL;
	explicit_bzero(rd, sizeof(*rd));
	free(rd);
	if (rc < 0)
		explicit_bzero(kp, sizeof(*kp));
	return rc;
}

int pifs_keypair_parse(struct pifs_keypair *kp, const char *text, size_t len, const char *path,
		       char *err, size_t errlen)
{
	return keypair_parse_at(kp, text, len, path, 0, err, errlen);
}

int pifs_keypair_load(struct pifs_keypair *kp, const char *path, char *err, size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	memset(kp, 0, sizeof(*kp));
	if (err && errlen)
		err[0] = '\0';
	rc = read_whole(path, KEY_FILE_MAX, FILE_KEY, "key file", &text, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = pifs_keypair_parse(kp, text, len, path, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* Is @kp a whole, well-formed key pair? (Not whether its halves belong
 * together: that costs a curve multiplication, and the parser checks it.) */
static bool keypair_ok(const struct pifs_keypair *kp)
{
	if (strnlen(kp->name, sizeof(kp->name)) == sizeof(kp->name) ||
	    strnlen(kp->pub, sizeof(kp->pub)) == sizeof(kp->pub) ||
	    strnlen(kp->secret, sizeof(kp->secret)) == sizeof(kp->secret))
		return false;
	return name_role_ok(kp->name, kp->role) == 0 && pifs_key_z85_ok(kp->pub) &&
	       pifs_key_z85_ok(kp->secret);
}

/* The text of a key file for @kp (checked by keypair_ok) into @buf (@cap
 * bytes, which the caller wipes). Returns its length, or -EINVAL when it
 * does not fit. */
static int keypair_text(const struct pifs_keypair *kp, char *buf, size_t cap)
{
	int n =
	    snprintf(buf, cap,
		     "# A pifs key pair (fs/keys.h), made by pifs-admin keys. It goes only to the\n"
		     "# machine that uses it, mode 600: whoever reads the secret below can act as\n"
		     "# '%s'. If it leaks: pifs-admin keys revoke %s.\n"
		     "name = %s\nrole = %s\npublic = %s\nsecret = %s\n",
		     kp->name, kp->name, kp->name, pifs_role_name(kp->role), kp->pub, kp->secret);

	return n < 0 || (size_t)n >= cap ? -EINVAL : n;
}

int pifs_keypair_save(const struct pifs_keypair *kp, const char *path)
{
	char text[1024];
	int n, rc;

	if (!keypair_ok(kp))
		return -EINVAL;
	n = keypair_text(kp, text, sizeof(text));
	rc = n < 0 ? n : write_whole(path, text, (size_t)n, true);
	explicit_bzero(text, sizeof(text));
	return rc;
}

int pifs_keypair_path(const char *dir, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s.key", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* ---- bundles ---- */

#define BUNDLE_HEAD "# pifs key bundle "
#define BUNDLE_FORMAT 1
#define BUNDLE_FILE_MAX (ALLOW_FILE_MAX + KEY_FILE_MAX)
#define EXPORT_AGAIN "export it again on the admin's machine (pifs-admin keys export NAME)"

/* One "--- NAME" section of a bundle: the text after its line. */
struct section {
	int line; /* of the "---" line; 0: not seen */
	const char *p, *end;
};

/* Check the bundle's first line, "# pifs key bundle 1 ...". Returns 0 or
 * -EINVAL (recorded). */
static int bundle_head(struct reader *rd, const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	size_t head = strlen(BUNDLE_HEAD), digits = 0;
	unsigned long v = 0;

	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	if ((size_t)(end - p) < head || memcmp(p, BUNDLE_HEAD, head) != 0) {
		fail(rd, 1,
		     "not a pifs key bundle, whose first line is '" BUNDLE_HEAD "%d': make one on "
		     "the admin's machine with 'pifs-admin keys export NAME -o FILE' (a bare "
		     "NAME.key or allowed goes into the key directory as it is)",
		     BUNDLE_FORMAT);
		return -EINVAL;
	}
	for (p += head; p < end && *p >= '0' && *p <= '9'; p++)
		if (++digits <= 9)
			v = v * 10 + (unsigned long)(*p - '0');
	if (digits == 0 || digits > 9 || v != BUNDLE_FORMAT) {
		fail(rd, 1,
		     "a key bundle of a format this pifs does not read (it reads format %d, "
		     "'" BUNDLE_HEAD "%d'): export it with the pifs-admin of this version, or "
		     "update pifs here",
		     BUNDLE_FORMAT, BUNDLE_FORMAT);
		return -EINVAL;
	}
	return 0;
}

/* Read the "---" line in rd->line as the start of a section: @key or
 * @list, the key's name going to @name. Returns the section, or NULL
 * (recorded). */
static struct section *bundle_section(struct reader *rd, struct section *key, struct section *list,
				      char *name)
{
	struct section *sec;
	char *words[2] = {NULL, NULL}; /* set when split finds them; -O3 cannot tell */
	size_t n, len;
	bool spaced;

	/* split() writes over the blanks: look at the one after the dashes first. */
	spaced = blank(rd->line[3]);
	n = split(rd->line + 3, words, 1);
	if (!spaced || n != 1) {
		fail(rd, rd->lineno,
		     "bad section line: write '--- NAME.key' or '--- allowed', one space after "
		     "the dashes; " EXPORT_AGAIN);
		return NULL;
	}
	len = strlen(words[0]);
	if (strcmp(words[0], PIFS_KEYS_ALLOWED) == 0) {
		sec = list;
	} else if (len > 4 && strcmp(words[0] + len - 4, ".key") == 0) {
		words[0][len - 4] = '\0';
		if (!pifs_key_name_ok(words[0])) {
			fail(rd, rd->lineno, "bad key name '%.64s': " NAME_RULE, words[0]);
			return NULL;
		}
		if (key->line) {
			fail(rd, rd->lineno,
			     "a second key section (the first is on line %d): a bundle carries one "
			     "key; export one bundle for each",
			     key->line);
			return NULL;
		}
		strcpy(name, words[0]);
		sec = key;
	} else {
		fail(rd, rd->lineno,
		     "unknown section '%.64s': a bundle has a '--- NAME.key' and a '--- allowed' "
		     "section; " EXPORT_AGAIN,
		     words[0]);
		return NULL;
	}
	if (sec->line) {
		fail(rd, rd->lineno,
		     "a second allowed section (the first is on line %d); " EXPORT_AGAIN,
		     sec->line);
		return NULL;
	}
	sec->line = rd->lineno;
	sec->p = rd->p;
	sec->end = rd->end;
	return sec;
}

/* The line of @name in the allow-list section @sec (which parsed), or
 * @sec's own line when it cannot be told. */
static int list_line(const struct section *sec, const char *path, const char *name)
{
	enum pifs_role role;
	struct reader *rd = malloc(sizeof(*rd));
	char *words[5];
	int line = sec->line;
	size_t n;

	if (!rd)
		return line;
	reader_init(rd, sec->p, (size_t)(sec->end - sec->p), path, sec->line, NULL, 0);
	while (next_line(rd) == 1) {
		n = split(rd->line, words, 4);
		if (n >= 3 && strcmp(words[0], name) == 0 &&
		    pifs_role_parse(words[1], &role) == 0) {
			line = rd->lineno;
			break;
		}
	}
	free(rd);
	return line;
}

/* Does the key pair @kp match its line in @a: listed, active, the same
 * public half and role? Returns 0, or -ENOENT, -EKEYREVOKED, -EKEYREJECTED
 * (another public half) or -EPERM (another role). */
static int bundle_match(const struct pifs_keypair *kp, const struct pifs_allow *a)
{
	const struct pifs_key *k = pifs_allow_find(a, kp->name);

	if (!k)
		return -ENOENT;
	if (k->revoked)
		return -EKEYREVOKED;
	if (strcmp(k->pub, kp->pub) != 0)
		return -EKEYREJECTED;
	return k->role == kp->role ? 0 : -EPERM;
}

int pifs_bundle_parse(const char *text, size_t len, const char *path, struct pifs_keypair *kp,
		      struct pifs_allow *a, char *err, size_t errlen)
{
	struct section key = {0}, list = {0}, *cur = NULL;
	char name[PIFS_KEY_NAME_MAX + 1] = "";
	struct reader *rd;
	int rc = 0, line;

	memset(kp, 0, sizeof(*kp));
	pifs_allow_fini(a);
	rd = malloc(sizeof(*rd));
	if (!rd) {
		if (err && errlen)
			snprintf(err, errlen, "%s: out of memory reading the key bundle", path);
		return -ENOMEM;
	}
	/* First the sections, by their "---" lines (no line of a key file or
	 * an allow-list starts so); each is then read by its own parser. */
	reader_init(rd, text, len, path, 0, err, errlen);
	if (bundle_head(rd, text, len) < 0)
		goto out;
	while (!rd->failed && next_line(rd) == 1) {
		if (strncmp(rd->line, "---", 3) == 0) {
			if (cur)
				cur->end = rd->cur;
			cur = bundle_section(rd, &key, &list, name);
		} else if (!cur) {
			/* Not quoted: it may be a misplaced secret. */
			fail(rd, rd->lineno,
			     "a line before the first section: a bundle has a '--- NAME.key' and a "
			     "'--- allowed' section, and comments; " EXPORT_AGAIN);
		}
	}
	if (rd->failed)
		goto out;
	if (!key.line || !list.line) {
		fail(rd, 0, "no '--- %s' section: this is not a whole key bundle; " EXPORT_AGAIN,
		     key.line ? PIFS_KEYS_ALLOWED : "NAME.key");
		goto out;
	}
	rc = keypair_parse_at(kp, key.p, (size_t)(key.end - key.p), path, key.line, err, errlen);
	if (rc == 0)
		rc = allow_parse_at(a, list.p, (size_t)(list.end - list.p), path, list.line, err,
				    errlen);
	if (rc < 0)
		goto out_rc;
	if (strcmp(kp->name, name) != 0) {
		fail(rd, key.line,
		     "the section of %s.key holds the key '%s': the bundle is pieced together "
		     "or damaged; " EXPORT_AGAIN,
		     name, kp->name);
		goto out;
	}
	switch (bundle_match(kp, a)) {
	case -ENOENT:
		fail(rd, key.line,
		     "key '%s' is not in the bundle's allow-list (the section of line %d): the "
		     "nodes would refuse it; the bundle is pieced together or "
		     "damaged; " EXPORT_AGAIN,
		     name, list.line);
		break;
	case -EKEYREVOKED:
		line = list_line(&list, path, name);
		fail(rd, line,
		     "key '%s' is revoked in the bundle's allow-list: the nodes refuse it; make "
		     "a new key on the admin's machine (pifs-admin keys add-node N, or add-client "
		     "NAME) and export that",
		     name);
		break;
	case -EKEYREJECTED:
		line = list_line(&list, path, name);
		fail(rd, line,
		     "the allow-list has another public key for '%s' than its key section (line "
		     "%d): the bundle is pieced together or damaged; " EXPORT_AGAIN,
		     name, key.line);
		break;
	case -EPERM:
		line = list_line(&list, path, name);
		fail(rd, line,
		     "the allow-list gives '%s' the role %s, its key section the role %s: the "
		     "bundle is pieced together or damaged; " EXPORT_AGAIN,
		     name, pifs_role_name(pifs_allow_find(a, name)->role),
		     pifs_role_name(kp->role));
		break;
	}
out:
	rc = rd->failed ? -EINVAL : 0;
out_rc:
	explicit_bzero(rd, sizeof(*rd));
	free(rd);
	if (rc < 0) {
		explicit_bzero(kp, sizeof(*kp));
		pifs_allow_fini(a);
	}
	return rc;
}

int pifs_bundle_load(const char *path, struct pifs_keypair *kp, struct pifs_allow *a, char *err,
		     size_t errlen)
{
	char *text;
	size_t len;
	int rc;

	memset(kp, 0, sizeof(*kp));
	pifs_allow_fini(a);
	if (err && errlen)
		err[0] = '\0';
	rc = read_whole(path, BUNDLE_FILE_MAX, FILE_BUNDLE, "key bundle", &text, &len, err, errlen);
	if (rc < 0)
		return rc;
	rc = pifs_bundle_parse(text, len, path, kp, a, err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

int pifs_bundle_format(const struct pifs_keypair *kp, const struct pifs_allow *a, char **out,
		       size_t *len)
{
	char head[512], key[1024], *list = NULL, *buf;
	size_t list_len = 0, cap;
	int nh, nk, n, rc;

	*out = NULL;
	*len = 0;
	if (!keypair_ok(kp) || bundle_match(kp, a) < 0)
		return -EINVAL;
	nh = snprintf(head, sizeof(head),
		      BUNDLE_HEAD "%d (fs/keys.h): the key pair of '%s' (%s) and the allow-list,\n"
				  "# generation %llu. It holds a secret: mode 600, to that machine "
				  "only, where 'pifs-admin\n"
				  "# keys import FILE' puts both into the key directory; then "
				  "delete it.\n",
		      BUNDLE_FORMAT, kp->name, pifs_role_name(kp->role),
		      (unsigned long long)a->generation);
	nk = keypair_text(kp, key, sizeof(key));
	if (nh < 0 || (size_t)nh >= sizeof(head) || nk < 0) {
		rc = -EINVAL; /* cannot happen: a name is at most 48 characters */
		goto out;
	}
	rc = pifs_allow_format(a, &list, &list_len);
	if (rc < 0)
		goto out;
	cap = (size_t)nh + (size_t)nk + list_len + PIFS_KEY_NAME_MAX + 32;
	buf = malloc(cap);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	n = snprintf(buf, cap, "%s--- %s.key\n%s--- " PIFS_KEYS_ALLOWED "\n%s", head, kp->name, key,
		     list);
	if (n < 0 || (size_t)n >= cap) {
		explicit_bzero(buf, cap);
		free(buf);
		rc = -ENOMEM; /* cannot happen: cap is counted above */
		goto out;
	}
	*out = buf;
	*len = (size_t)n;
out:
	explicit_bzero(key, sizeof(key));
	free(list);
	return rc;
}

int pifs_bundle_save(const struct pifs_keypair *kp, const struct pifs_allow *a, const char *path)
{
	char *text;
	size_t len;
	int rc;

	rc = pifs_bundle_format(kp, a, &text, &len);
	if (rc < 0)
		return rc;
	rc = write_whole(path, text, len, false);
	explicit_bzero(text, len);
	free(text);
	return rc;
}
