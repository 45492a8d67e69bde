/* keys.h - the cluster's CURVE keys on disk.
 *
 * A key directory (the config's [cluster] keys, default /etc/pifs/keys)
 * holds two kinds of file:
 *
 *   allowed     the allow-list: every key the cluster has made, public halves
 *               only, each with its name and role, revoked ones marked. The
 *               same file on every machine: a node accepts a connection only
 *               from a key listed here and not revoked, and finds here the
 *               public key of the node it connects to (node-N for node N).
 *   NAME.key    one key pair made here: name, role, public and secret
 *               halves. Mode 0600; it goes only to the machine that uses it
 *               (node-4.key to node 4, admin.key nowhere).
 *
 *   allowed:                           NAME.key:
 *     # comments and blank lines         # comments and blank lines
 *     generation 7                       name = node-1
 *     node-1  node    <public>           role = node
 *     expo    client  <public>           public = <public>
 *     admin   admin   <public>           secret = <secret>
 *     kiosk   client  <public> revoked
 *
 * Keys are ZeroMQ's Z85 text of 32-byte Curve25519 keys (40 characters).
 * A name is 1..48 of [a-z0-9._-] and starts with a letter or digit; node N's
 * key is named "node-N" and has role node, and no other key has that form.
 * The generation grows by one at every change of the list, so that a node
 * told of a list takes it only when it is newer than its own.
 *
 * A key bundle carries both files to a new machine in one: one key pair and
 * the allow-list it is in ('pifs-admin keys export NAME' writes it, mode
 * 0600; 'keys import FILE' on that machine writes NAME.key and allowed into
 * its key directory). The first line names the format; each file follows a
 * "---" line naming it, as it is in the key directory:
 *
 *   # pifs key bundle 1 (comments)
 *   --- node-4.key
 *   name = node-4
 *   ...                                (the key file, as above)
 *   --- allowed
 *   generation 7
 *   ...                                (the allow-list, as above)
 *
 * A bundle is taken only whole and consistent: its key must be listed in
 * its allow-list, not revoked, with the same public half and role.
 *
 * Pure but for reading and writing the files: no globals, no locks. */
#ifndef PIFS_KEYS_H
#define PIFS_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PIFS_KEY_Z85 40	      /* characters of a key in Z85 */
#define PIFS_KEY_NAME_MAX 48  /* characters of a key's name */
#define PIFS_KEYS_MAX 4096    /* keys in one allow-list */
#define PIFS_KEYS_DIR "/etc/pifs/keys"
#define PIFS_KEYS_ALLOWED "allowed"

/* What a key may do (fs/auth.h has the table of requests). */
enum pifs_role {
	PIFS_ROLE_NONE = 0,
	PIFS_ROLE_CLIENT, /* a mount: the namespace and chunk reads and writes */
	PIFS_ROLE_NODE,	  /* a storage daemon: peer traffic */
	PIFS_ROLE_ADMIN,  /* pifs-admin: everything */
};

/* "client", "node", "admin" ("none" for PIFS_ROLE_NONE). */
const char *pifs_role_name(enum pifs_role r);

/* The role named @s; returns 0 or -EINVAL. */
int pifs_role_parse(const char *s, enum pifs_role *out /* OUT */);

/* Is @name a valid key name (see above)? */
bool pifs_key_name_ok(const char *name);

/* N for a name "node-N" with N from 1 to 2^31-1 written without leading
 * zeros, else 0. */
uint32_t pifs_key_node(const char *name);

/* Is @z a well-formed Z85 key (40 characters that decode to 32 bytes)? */
bool pifs_key_z85_ok(const char *z);

/* One line of the allow-list. */
struct pifs_key {
	char name[PIFS_KEY_NAME_MAX + 1];
	enum pifs_role role;
	char pub[PIFS_KEY_Z85 + 1];
	bool revoked;
};

struct pifs_allow {
	uint64_t generation;
	size_t n;
	struct pifs_key *keys; /* owned; @n entries in file order */
};

/* An empty list, generation 0. */
void pifs_allow_init(struct pifs_allow *a);

/* Free what @a owns; @a is empty again. NULL-safe. */
void pifs_allow_fini(struct pifs_allow *a);

/* Parse @len bytes at @text (need not be NUL-terminated) into @a (empty).
 * @path names the text in errors. On an error @err (@errlen bytes) gets a
 * sentence naming @path and the line and what to do, and @a stays empty.
 * Returns 0, -ENOMEM, or -EINVAL for a bad line (an unknown role, a bad name
 * or key, a name or public key listed twice, a node-N key whose role is not
 * node, more than PIFS_KEYS_MAX keys, no generation line, or a line too
 * long). */
int pifs_allow_parse(struct pifs_allow *a, const char *text, size_t len, const char *path,
		     char *err, size_t errlen);

/* pifs_allow_parse of the file @path. Returns as that, or -ENOENT and the
 * other -errno of reading it (with a sentence in @err). */
int pifs_allow_load(struct pifs_allow *a, const char *path, char *err, size_t errlen);

/* The text of @a as the file holds it, in *@out (malloc'd, NUL-terminated,
 * *@len bytes without the NUL). Returns 0 or -ENOMEM. */
int pifs_allow_format(const struct pifs_allow *a, char **out /* OUT */, size_t *len /* OUT */);

/* Write @a to @path, mode 0600, whole or not at all (a temporary file,
 * fsync, rename, fsync of the directory). Returns 0 or -errno. */
int pifs_allow_save(const struct pifs_allow *a, const char *path);

/* The key named @name, revoked or not; NULL if none. Borrowed from @a. */
const struct pifs_key *pifs_allow_find(const struct pifs_allow *a, const char *name);

/* The key whose public half is @pub (Z85), revoked or not; NULL if none. */
const struct pifs_key *pifs_allow_find_pub(const struct pifs_allow *a, const char *pub);

/* Append a copy of @k. Returns 0, -EEXIST (its name or public key is
 * listed), -EINVAL (bad name, role or key), -ENOSPC (PIFS_KEYS_MAX) or
 * -ENOMEM. Does not change the generation. */
int pifs_allow_add(struct pifs_allow *a, const struct pifs_key *k);

/* One key pair, as in NAME.key. */
struct pifs_keypair {
	char name[PIFS_KEY_NAME_MAX + 1];
	enum pifs_role role;
	char pub[PIFS_KEY_Z85 + 1];
	char secret[PIFS_KEY_Z85 + 1];
};

/* Append the public half of @kp (its name, role and public key, active),
 * as pifs_allow_add does. */
int pifs_allow_add_pair(struct pifs_allow *a, const struct pifs_keypair *kp);

/* A new random key pair named @name with role @role. Returns 0, -EINVAL
 * (a bad name, or a node-N name without role node or the reverse) or the
 * -errno of ZeroMQ (no CURVE in this libzmq: -ENOTSUP). */
int pifs_keypair_make(struct pifs_keypair *kp /* OUT */, const char *name, enum pifs_role role);

/* Parse a key file's @len bytes at @text into @kp, as pifs_allow_parse
 * does (errors name @path and the line). -EINVAL also when a field is
 * missing or twice, or the secret does not belong to the public key. */
int pifs_keypair_parse(struct pifs_keypair *kp /* OUT */, const char *text, size_t len,
		       const char *path, char *err, size_t errlen);

/* pifs_keypair_parse of the file @path; -EACCES (with a sentence saying to
 * chmod 600 it) when group or others have any access to it (read, and also
 * write: whoever may change a key file may swap the key). */
int pifs_keypair_load(struct pifs_keypair *kp /* OUT */, const char *path, char *err,
		      size_t errlen);

/* Write @kp to @path, mode 0600, whole or not at all, never over an existing
 * file (-EEXIST). Returns 0 or -errno. */
int pifs_keypair_save(const struct pifs_keypair *kp, const char *path);

/* "@dir/@name.key" into @out (@cap bytes); -ENAMETOOLONG if it does not
 * fit. */
int pifs_keypair_path(const char *dir, const char *name, char *out, size_t cap);

/* Parse a key bundle's @len bytes at @text into @kp and @a (initialised;
 * what it held is freed). @path names the text in errors, which name the
 * bundle's line as the other parsers do, those inside a section included.
 * On an error @kp is wiped and @a is empty. Returns 0, -ENOMEM, or -EINVAL:
 * no "# pifs key bundle 1" first line (or another format), a line other
 * than a comment before the first section, a section other than NAME.key
 * and allowed or one of them twice or missing, a section that its own
 * parser refuses (see pifs_keypair_parse and pifs_allow_parse), a key file
 * whose name is not the NAME of its section, or a key that its allow-list
 * does not list, lists revoked, or lists with another public half or role. */
int pifs_bundle_parse(const char *text, size_t len, const char *path,
		      struct pifs_keypair *kp /* OUT */, struct pifs_allow *a /* OUT */, char *err,
		      size_t errlen);

/* pifs_bundle_parse of the file @path; like a key file, it holds a secret,
 * and is refused with -EACCES when group or others have any access to it.
 * Returns as that, or -ENOENT and the other -errno of reading it (with a
 * sentence in @err). */
int pifs_bundle_load(const char *path, struct pifs_keypair *kp /* OUT */,
		     struct pifs_allow *a /* OUT */, char *err, size_t errlen);

/* The bundle of @kp and @a (both borrowed) in *@out (malloc'd,
 * NUL-terminated, *@len bytes without the NUL; it holds the secret: the
 * caller wipes it with explicit_bzero and frees it). Returns 0, -ENOMEM, or
 * -EINVAL when @kp is not a well-formed pair that @a lists active with the
 * same public half and role (what pifs_bundle_parse would refuse). */
int pifs_bundle_format(const struct pifs_keypair *kp, const struct pifs_allow *a,
		       char **out /* OUT */, size_t *len /* OUT */);

/* Write the bundle of @kp and @a to @path, mode 0600, whole or not at all,
 * in place of any file there. Returns 0 or -errno (-EINVAL as
 * pifs_bundle_format). */
int pifs_bundle_save(const struct pifs_keypair *kp, const struct pifs_allow *a, const char *path);

#endif
