/* test_keys.c - the key directory's files: the allow-list, the key pairs
 * and the bundles that carry both round trip, every line the parsers refuse
 * is named with its file:line and what to do, and key files are written
 * whole, mode 0600, never over another, and refused when others may read
 * them. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "keys.h"

static char dir[64];

static void make_dir(void)
{
	strcpy(dir, "/tmp/pifs-test-keys-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir(dir);

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

TestSuite(keys, .init = make_dir, .fini = remove_dir);

/* ---- helpers ---- */

/* A fresh public key in @pub. */
static void new_pub(char *pub)
{
	char secret[PIFS_KEY_Z85 + 1];

	cr_assert_eq(zmq_curve_keypair(pub, secret), 0);
}

/* A valid Z85 key made from @i: 40 characters of 0-9a-z, whose 5-character
 * groups all stay far below 2^32. Cheap, for lists of thousands. */
static void fake_pub(char *pub, unsigned i)
{
	static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

	for (int k = PIFS_KEY_Z85 - 1; k >= 0; k--, i /= 36)
		pub[k] = digits[i % 36];
	pub[PIFS_KEY_Z85] = '\0';
}

static char *path_in(const char *name, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", dir, name);
	return buf;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

/* How many entries the test directory holds (no temporary files left). */
static int entries(void)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Check that @err starts with "allowed:@line: " (or "allowed: ") and holds
 * @what. */
static void expect_msg(const char *err, const char *path, int line, const char *what)
{
	char want[160];

	if (line)
		snprintf(want, sizeof(want), "%s:%d: ", path, line);
	else
		snprintf(want, sizeof(want), "%s: ", path);
	cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got \"%s\"\nwanted \"%s...\"", err,
		     want);
	cr_assert_not_null(strstr(err, what), "got \"%s\"\nwanted \"%s\"", err, what);
}

/* Parse @len bytes of @text as an allow-list: expect -EINVAL, the message
 * of @line with @what, and the list left empty. */
static void expect_allow_error_n(const char *text, size_t len, int line, const char *what)
{
	struct pifs_allow a;
	char err[512];

	pifs_allow_init(&a);
	cr_assert_eq(pifs_allow_parse(&a, text, len, "allowed", err, sizeof(err)), -EINVAL,
		     "accepted:\n%s", text);
	expect_msg(err, "allowed", line, what);
	cr_assert_eq(a.n, 0);
	cr_assert_null(a.keys);
	cr_assert_eq(a.generation, 0);
}

static void expect_allow_error(const char *text, int line, const char *what)
{
	expect_allow_error_n(text, strlen(text), line, what);
}

static void expect_pair_error_n(const char *text, size_t len, int line, const char *what)
{
	struct pifs_keypair kp;
	char err[512];

	cr_assert_eq(pifs_keypair_parse(&kp, text, len, "x.key", err, sizeof(err)), -EINVAL,
		     "accepted:\n%s", text);
	expect_msg(err, "x.key", line, what);
	cr_assert_eq(kp.secret[0], '\0', "a refused key file left its secret behind");
}

static void expect_pair_error(const char *text, int line, const char *what)
{
	expect_pair_error_n(text, strlen(text), line, what);
}

/* A key file's text for @kp. */
static void pair_text(char *buf, size_t cap, const char *name, const char *role, const char *pub,
		      const char *secret)
{
	snprintf(buf, cap, "name = %s\nrole = %s\npublic = %s\nsecret = %s\n", name, role, pub,
		 secret);
}

static void fill_allow(struct pifs_allow *a)
{
	struct pifs_key k = {.role = PIFS_ROLE_NODE};

	pifs_allow_init(a);
	a->generation = 7;
	strcpy(k.name, "node-1");
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
	strcpy(k.name, "node-2147483647");
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
	strcpy(k.name, "expo");
	k.role = PIFS_ROLE_CLIENT;
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
	strcpy(k.name, "admin");
	k.role = PIFS_ROLE_ADMIN;
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
	strcpy(k.name, "kiosk.2_b");
	k.role = PIFS_ROLE_CLIENT;
	k.revoked = true;
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
}

static void assert_same_list(const struct pifs_allow *x, const struct pifs_allow *y)
{
	cr_assert_eq(x->generation, y->generation);
	cr_assert_eq(x->n, y->n);
	for (size_t i = 0; i < x->n; i++) {
		cr_assert_str_eq(x->keys[i].name, y->keys[i].name);
		cr_assert_eq(x->keys[i].role, y->keys[i].role);
		cr_assert_str_eq(x->keys[i].pub, y->keys[i].pub);
		cr_assert_eq(x->keys[i].revoked, y->keys[i].revoked);
	}
}

/* ---- names, roles, keys ---- */

Test(keys, names_its_roles_and_reads_them_back)
{
	enum pifs_role r;

	for (r = PIFS_ROLE_CLIENT; r <= PIFS_ROLE_ADMIN; r++) {
		enum pifs_role back = PIFS_ROLE_NONE;

		cr_assert_eq(pifs_role_parse(pifs_role_name(r), &back), 0);
		cr_assert_eq(back, r);
	}
	cr_assert_str_eq(pifs_role_name(PIFS_ROLE_NONE), "none");
	cr_assert_str_eq(pifs_role_name((enum pifs_role)99), "none");
	cr_assert_eq(pifs_role_parse("none", &r), -EINVAL);
	cr_assert_eq(pifs_role_parse("Admin", &r), -EINVAL);
	cr_assert_eq(pifs_role_parse("", &r), -EINVAL);
}

Test(keys, takes_only_the_names_it_documents)
{
	char long_name[64];

	memset(long_name, 'a', 48);
	long_name[48] = '\0';
	cr_assert(pifs_key_name_ok(long_name));
	long_name[48] = 'a';
	long_name[49] = '\0';
	cr_assert_not(pifs_key_name_ok(long_name));
	cr_assert(pifs_key_name_ok("a"));
	cr_assert(pifs_key_name_ok("0"));
	cr_assert(pifs_key_name_ok("kiosk-2.b_c"));
	cr_assert_not(pifs_key_name_ok(""));
	cr_assert_not(pifs_key_name_ok(NULL));
	cr_assert_not(pifs_key_name_ok("Expo"));
	cr_assert_not(pifs_key_name_ok("-x"));
	cr_assert_not(pifs_key_name_ok(".key"));
	cr_assert_not(pifs_key_name_ok("_x"));
	cr_assert_not(pifs_key_name_ok("a b"));
	cr_assert_not(pifs_key_name_ok("a/b"));
	cr_assert_not(pifs_key_name_ok("caf\xc3\xa9"));
}

Test(keys, reads_node_ids_only_in_their_one_spelling)
{
	cr_assert_eq(pifs_key_node("node-1"), 1);
	cr_assert_eq(pifs_key_node("node-40"), 40);
	cr_assert_eq(pifs_key_node("node-2147483647"), 2147483647u);
	cr_assert_eq(pifs_key_node("node-2147483648"), 0);
	cr_assert_eq(pifs_key_node("node-99999999999999999999"), 0);
	cr_assert_eq(pifs_key_node("node-0"), 0);
	cr_assert_eq(pifs_key_node("node-01"), 0);
	cr_assert_eq(pifs_key_node("node-"), 0);
	cr_assert_eq(pifs_key_node("node-1a"), 0);
	cr_assert_eq(pifs_key_node("node1"), 0);
	cr_assert_eq(pifs_key_node("xnode-1"), 0);
	cr_assert_eq(pifs_key_node("client"), 0);
}

Test(keys, checks_z85_keys)
{
	char pub[PIFS_KEY_Z85 + 1], bad[PIFS_KEY_Z85 + 2];

	new_pub(pub);
	cr_assert(pifs_key_z85_ok(pub));
	fake_pub(pub, 12345);
	cr_assert(pifs_key_z85_ok(pub));
	cr_assert_not(pifs_key_z85_ok(NULL));
	cr_assert_not(pifs_key_z85_ok(""));
	memcpy(bad, pub, PIFS_KEY_Z85 - 1);
	bad[PIFS_KEY_Z85 - 1] = '\0';
	cr_assert_not(pifs_key_z85_ok(bad), "39 characters");
	memcpy(bad, pub, PIFS_KEY_Z85);
	bad[PIFS_KEY_Z85] = '0';
	bad[PIFS_KEY_Z85 + 1] = '\0';
	cr_assert_not(pifs_key_z85_ok(bad), "41 characters");
	memcpy(bad, pub, PIFS_KEY_Z85 + 1);
	bad[7] = '~';
	cr_assert_not(pifs_key_z85_ok(bad), "'~' is not Z85");
	bad[7] = ' ';
	cr_assert_not(pifs_key_z85_ok(bad), "' ' is not Z85");
	/* Every character is Z85, but "#####" is 85^5 - 1, over 2^32. */
	memset(bad, '#', PIFS_KEY_Z85);
	bad[PIFS_KEY_Z85] = '\0';
	cr_assert_not(pifs_key_z85_ok(bad));
}

/* ---- the allow-list ---- */

Test(keys, formats_and_parses_an_allow_list_back)
{
	struct pifs_allow a, b;
	char *text, *again, err[512];
	size_t len, len2;

	fill_allow(&a);
	cr_assert_eq(pifs_allow_format(&a, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	cr_assert_not_null(strstr(text, "\ngeneration 7\n"), "%s", text);
	cr_assert_not_null(strstr(text, " revoked\n"), "%s", text);
	pifs_allow_init(&b);
	cr_assert_eq(pifs_allow_parse(&b, text, len, "allowed", err, sizeof(err)), 0, "%s", err);
	assert_same_list(&a, &b);
	cr_assert_eq(pifs_allow_format(&b, &again, &len2), 0);
	cr_assert_eq(len2, len);
	cr_assert_str_eq(again, text);
	free(text);
	free(again);
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
	cr_assert_eq(b.n, 0);
	cr_assert_null(b.keys);
	pifs_allow_fini(NULL);
}

Test(keys, an_empty_list_is_generation_zero_and_round_trips)
{
	struct pifs_allow a, b;
	char *text, err[256];
	size_t len;

	pifs_allow_init(&a);
	cr_assert_eq(a.generation, 0);
	cr_assert_eq(a.n, 0);
	cr_assert_eq(pifs_allow_format(&a, &text, &len), 0);
	pifs_allow_init(&b);
	cr_assert_eq(pifs_allow_parse(&b, text, len, "allowed", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(b.generation, 0);
	cr_assert_eq(b.n, 0);
	free(text);
	pifs_allow_fini(&b);
}

Test(keys, reads_a_hand_written_list)
{
	char p1[41], p2[41], p3[41], text[1024], err[256];
	const struct pifs_key *k;
	struct pifs_allow a;

	new_pub(p1);
	new_pub(p2);
	new_pub(p3);
	/* A byte order mark, CRLF, tabs, comments, the generation after the
	 * keys, and a last line without its newline. */
	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf# the museum's keys\r\n"
		 "\r\n"
		 "   node-12\tnode  %s\r\n"
		 "\t# kiosks\n"
		 "kiosk client %s   revoked  \n"
		 "generation 18446744073709551615\n"
		 "root admin %s",
		 p1, p2, p3);
	pifs_allow_init(&a);
	cr_assert_eq(pifs_allow_parse(&a, text, strlen(text), "allowed", err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(a.generation, UINT64_MAX);
	cr_assert_eq(a.n, 3);
	cr_assert_str_eq(a.keys[0].name, "node-12");
	cr_assert_eq(a.keys[0].role, PIFS_ROLE_NODE);
	cr_assert_str_eq(a.keys[0].pub, p1);
	cr_assert_not(a.keys[0].revoked);
	cr_assert(a.keys[1].revoked);
	cr_assert_eq(a.keys[1].role, PIFS_ROLE_CLIENT);
	cr_assert_str_eq(a.keys[2].name, "root");
	cr_assert_eq(a.keys[2].role, PIFS_ROLE_ADMIN);

	k = pifs_allow_find(&a, "kiosk");
	cr_assert_eq(k, &a.keys[1], "a revoked key is found too");
	cr_assert_null(pifs_allow_find(&a, "kiosk2"));
	cr_assert_null(pifs_allow_find(&a, "kios"));
	cr_assert_eq(pifs_allow_find_pub(&a, p3), &a.keys[2]);
	cr_assert_eq(pifs_allow_find_pub(&a, p2), &a.keys[1]);
	p1[0] = p1[0] == 'a' ? 'b' : 'a';
	cr_assert_null(pifs_allow_find_pub(&a, p1));
	pifs_allow_fini(&a);
}

Test(keys, a_key_may_be_named_generation)
{
	struct pifs_key k = {.name = "generation", .role = PIFS_ROLE_CLIENT};
	struct pifs_allow a, b;
	char *text, err[256];
	size_t len;

	pifs_allow_init(&a);
	a.generation = 2;
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(&a, &k), 0);
	cr_assert_eq(pifs_allow_format(&a, &text, &len), 0);
	pifs_allow_init(&b);
	cr_assert_eq(pifs_allow_parse(&b, text, len, "allowed", err, sizeof(err)), 0, "%s", err);
	assert_same_list(&a, &b);
	free(text);
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
}

Test(keys, a_key_may_contain_the_comment_character)
{
	char pub[41], text[256], err[256];
	struct pifs_allow a;

	/* '#' and '=' are Z85 characters: a key holding them is no comment. */
	fake_pub(pub, 77);
	pub[4] = '#';
	pub[5] = '=';
	cr_assert(pifs_key_z85_ok(pub));
	snprintf(text, sizeof(text), "generation 1\nexpo client %s\n", pub);
	pifs_allow_init(&a);
	cr_assert_eq(pifs_allow_parse(&a, text, strlen(text), "allowed", err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(a.keys[0].pub, pub);
	pifs_allow_fini(&a);
}

Test(keys, names_the_line_of_every_bad_allow_list_line)
{
	char p1[41], p2[41], t[2048], longline[700];

	new_pub(p1);
	new_pub(p2);

	memset(longline, 'a', 600);
	longline[600] = '\0';
	snprintf(t, sizeof(t), "generation 1\n# fine\n%s\n", longline);
	expect_allow_error(t, 3, "line is longer than 512 characters: shorten it");

	expect_allow_error_n("generation 1\nexpo client \0bc\n", 30, 2, "byte 0x00 is not text");
	expect_allow_error("generation 1\n\x1b[31m\n", 2, "byte 0x1b is not text");

	expect_allow_error("# v\ngeneration x\n", 2,
			   "bad generation line: write 'generation N' with N a whole number");
	expect_allow_error("generation\n", 1, "bad generation line");
	expect_allow_error("generation 1 2\n", 1, "bad generation line");
	expect_allow_error("generation -1\n", 1, "bad generation line");
	expect_allow_error("generation 18446744073709551616\n", 1, "bad generation line");
	expect_allow_error("generation 3\n\ngeneration 4\n", 3,
			   "generation is given twice (first on line 1): keep one");

	snprintf(t, sizeof(t), "generation 1\nexpo client\n");
	expect_allow_error(t, 2, "cannot read this line: write 'NAME ROLE PUBLIC'");
	snprintf(t, sizeof(t), "generation 1\nexpo client %s revoked now\n", p1);
	expect_allow_error(t, 2, "cannot read this line");

	snprintf(t, sizeof(t), "generation 1\nExpo client %s\n", p1);
	expect_allow_error(t, 2, "bad key name 'Expo': a name is 1 to 48 of a-z, 0-9");
	snprintf(t, sizeof(t), "generation 1\nexpo clint %s\n", p1);
	expect_allow_error(t, 2,
			   "unknown role 'clint' for key 'expo': the roles are client, node and "
			   "admin");
	snprintf(t, sizeof(t), "generation 1\nexpo none %s\n", p1);
	expect_allow_error(t, 2, "unknown role 'none'");
	snprintf(t, sizeof(t), "generation 1\nexpo client %.39s\n", p1);
	expect_allow_error(t, 2, "bad public key for 'expo': a key is 40 characters of Z85");
	snprintf(t, sizeof(t), "generation 1\nexpo client %s revokd\n", p1);
	expect_allow_error(t, 2,
			   "unknown word 'revokd' after the key of 'expo': only 'revoked' may "
			   "follow a key");

	snprintf(t, sizeof(t), "generation 1\nexpo client %s\n\nexpo admin %s\n", p1, p2);
	expect_allow_error(t, 4, "key 'expo' is listed twice (first on line 2): keep one");
	snprintf(t, sizeof(t), "generation 1\nexpo client %s\nkiosk client %s revoked\n", p1, p1);
	expect_allow_error(t, 3, "'kiosk' has the public key of 'expo' (line 2)");

	snprintf(t, sizeof(t), "generation 1\nnode-3 client %s\n", p1);
	expect_allow_error(t, 2,
			   "key 'node-3' has role client, but node-N names the key of node N, "
			   "whose role is node");
	snprintf(t, sizeof(t), "generation 1\ngateway node %s\n", p1);
	expect_allow_error(t, 2, "key 'gateway' has role node but is not named node-N");
	snprintf(t, sizeof(t), "generation 1\nnode-007 node %s\n", p1);
	expect_allow_error(t, 2, "bad key name 'node-007': node-N is the key of node N");
	snprintf(t, sizeof(t), "generation 1\nnode-0 client %s\n", p1);
	expect_allow_error(t, 2, "bad key name 'node-0'");

	snprintf(t, sizeof(t), "# keys\nexpo client %s\n", p1);
	expect_allow_error(t, 0, "no 'generation N' line: this is not a whole allow-list");
	expect_allow_error("", 0, "no 'generation N' line");
	expect_allow_error_n("", 0, 0, "no 'generation N' line");
}

Test(keys, refuses_more_than_the_most_keys)
{
	size_t cap = 32 + (size_t)(PIFS_KEYS_MAX + 1) * 64, len;
	char *text = malloc(cap), pub[41];
	struct pifs_allow a;
	char err[256];

	cr_assert_not_null(text);
	len = (size_t)snprintf(text, cap, "generation 9\n");
	for (unsigned i = 0; i < PIFS_KEYS_MAX; i++) {
		fake_pub(pub, i);
		len += (size_t)snprintf(text + len, cap - len, "c%u client %s\n", i, pub);
	}
	pifs_allow_init(&a);
	cr_assert_eq(pifs_allow_parse(&a, text, len, "allowed", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.n, PIFS_KEYS_MAX);
	cr_assert_str_eq(a.keys[PIFS_KEYS_MAX - 1].name, "c4095");
	fake_pub(pub, PIFS_KEYS_MAX);
	cr_assert_eq(pifs_allow_add(&a, &(struct pifs_key){"more", PIFS_ROLE_CLIENT, "", false}),
		     -EINVAL, "a key with no public half");
	{
		struct pifs_key k = {.name = "more", .role = PIFS_ROLE_CLIENT};

		strcpy(k.pub, pub);
		cr_assert_eq(pifs_allow_add(&a, &k), -ENOSPC);
	}
	pifs_allow_fini(&a);

	len += (size_t)snprintf(text + len, cap - len, "more client %s\n", pub);
	expect_allow_error_n(text, len, PIFS_KEYS_MAX + 2, "more than 4096 keys");
	free(text);
}

Test(keys, adds_keys_and_refuses_doubles_and_bad_ones)
{
	struct pifs_key k = {.name = "expo", .role = PIFS_ROLE_CLIENT}, d;
	struct pifs_allow a;

	pifs_allow_init(&a);
	a.generation = 3;
	new_pub(k.pub);
	cr_assert_eq(pifs_allow_add(&a, &k), 0);
	cr_assert_eq(a.n, 1);
	cr_assert_eq(a.generation, 3, "add does not change the generation");
	cr_assert_neq(a.keys, &k);

	d = k;
	cr_assert_eq(pifs_allow_add(&a, &d), -EEXIST, "the same name");
	strcpy(d.name, "expo2");
	cr_assert_eq(pifs_allow_add(&a, &d), -EEXIST, "the same public key");
	new_pub(d.pub);
	strcpy(d.name, "Expo");
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "a bad name");
	strcpy(d.name, "expo2");
	d.role = PIFS_ROLE_NONE;
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "no role");
	d.role = (enum pifs_role)7;
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "no such role");
	d.role = PIFS_ROLE_NODE;
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "role node without a node-N name");
	strcpy(d.name, "node-5");
	d.role = PIFS_ROLE_ADMIN;
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "node-N without role node");
	d.role = PIFS_ROLE_NODE;
	d.pub[3] = '~';
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "a bad key");
	new_pub(d.pub);
	memset(d.name, 'a', sizeof(d.name));
	cr_assert_eq(pifs_allow_add(&a, &d), -EINVAL, "a name without its NUL");
	strcpy(d.name, "node-5");
	d.revoked = true;
	cr_assert_eq(pifs_allow_add(&a, &d), 0);
	cr_assert_eq(a.n, 2);
	cr_assert(a.keys[1].revoked);
	cr_assert_eq(pifs_allow_find(&a, "node-5"), &a.keys[1]);
	pifs_allow_fini(&a);
}

Test(keys, saves_an_allow_list_whole_and_mode_0600)
{
	struct pifs_allow a, b;
	char path[256], err[512];

	fill_allow(&a);
	path_in("allowed", path, sizeof(path));
	cr_assert_eq(pifs_allow_save(&a, path), 0);
	cr_assert_eq(mode_of(path), 0600);
	pifs_allow_init(&b);
	cr_assert_eq(pifs_allow_load(&b, path, err, sizeof(err)), 0, "%s", err);
	assert_same_list(&a, &b);
	pifs_allow_fini(&b);

	/* A new generation replaces the file. */
	a.keys[2].revoked = true;
	a.generation++;
	cr_assert_eq(pifs_allow_save(&a, path), 0);
	cr_assert_eq(pifs_allow_load(&b, path, err, sizeof(err)), 0, "%s", err);
	assert_same_list(&a, &b);
	cr_assert_eq(entries(), 1, "a temporary file was left behind");
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
}

Test(keys, says_what_to_do_when_the_allow_list_is_missing_or_bad)
{
	struct pifs_allow a;
	char path[256], err[512];

	pifs_allow_init(&a);
	path_in("allowed", path, sizeof(path));
	cr_assert_eq(pifs_allow_load(&a, path, err, sizeof(err)), -ENOENT);
	expect_msg(err, path, 0, "make it with 'pifs-admin keys init'");

	write_file(path, "generation 1\nexpo clint x\n", 0600);
	cr_assert_eq(pifs_allow_load(&a, path, err, sizeof(err)), -EINVAL);
	expect_msg(err, path, 2, "unknown role 'clint'");
	cr_assert_eq(a.n, 0);

	cr_assert_eq(pifs_allow_load(&a, dir, err, sizeof(err)), -EINVAL);
	expect_msg(err, dir, 0, "not a regular file");
	pifs_allow_fini(&a);
}

Test(keys, the_save_fails_cleanly_where_it_cannot_write)
{
	struct pifs_allow a;
	struct pifs_keypair kp;
	char path[256];

	pifs_allow_init(&a);
	path_in("no/such/dir/allowed", path, sizeof(path));
	cr_assert_eq(pifs_allow_save(&a, path), -ENOENT);
	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	path_in("no/such/dir/expo.key", path, sizeof(path));
	cr_assert_eq(pifs_keypair_save(&kp, path), -ENOENT);
	cr_assert_eq(entries(), 0);
}

/* ---- key pairs ---- */

Test(keys, makes_key_pairs_whose_halves_belong_together)
{
	struct pifs_keypair kp, kp2;
	char derived[41];

	cr_assert_eq(pifs_keypair_make(&kp, "node-4", PIFS_ROLE_NODE), 0);
	cr_assert_str_eq(kp.name, "node-4");
	cr_assert_eq(kp.role, PIFS_ROLE_NODE);
	cr_assert(pifs_key_z85_ok(kp.pub));
	cr_assert(pifs_key_z85_ok(kp.secret));
	cr_assert_eq(zmq_curve_public(derived, kp.secret), 0);
	cr_assert_str_eq(derived, kp.pub);
	cr_assert_eq(pifs_keypair_make(&kp2, "admin", PIFS_ROLE_ADMIN), 0);
	cr_assert_str_neq(kp2.pub, kp.pub);

	cr_assert_eq(pifs_keypair_make(&kp, "Admin", PIFS_ROLE_ADMIN), -EINVAL);
	cr_assert_eq(pifs_keypair_make(&kp, "node-4", PIFS_ROLE_CLIENT), -EINVAL);
	cr_assert_eq(pifs_keypair_make(&kp, "gateway", PIFS_ROLE_NODE), -EINVAL);
	cr_assert_eq(pifs_keypair_make(&kp, "node-04", PIFS_ROLE_NODE), -EINVAL);
	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_NONE), -EINVAL);
	cr_assert_eq(kp.secret[0], '\0');
}

Test(keys, saves_and_loads_a_key_pair)
{
	struct pifs_keypair kp, back;
	char path[256], err[512];

	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	cr_assert_eq(pifs_keypair_path(dir, "expo", path, sizeof(path)), 0);
	cr_assert_eq(pifs_keypair_save(&kp, path), 0);
	cr_assert_eq(mode_of(path), 0600);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.name, "expo");
	cr_assert_eq(back.role, PIFS_ROLE_CLIENT);
	cr_assert_str_eq(back.pub, kp.pub);
	cr_assert_str_eq(back.secret, kp.secret);
	cr_assert_eq(entries(), 1, "a temporary file was left behind");
}

Test(keys, never_saves_over_an_existing_key_file)
{
	struct pifs_keypair kp, other, back;
	char path[256], err[512];

	cr_assert_eq(pifs_keypair_make(&kp, "admin", PIFS_ROLE_ADMIN), 0);
	cr_assert_eq(pifs_keypair_make(&other, "admin", PIFS_ROLE_ADMIN), 0);
	cr_assert_eq(pifs_keypair_path(dir, "admin", path, sizeof(path)), 0);
	cr_assert_eq(pifs_keypair_save(&kp, path), 0);
	cr_assert_eq(pifs_keypair_save(&other, path), -EEXIST);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.secret, kp.secret, "the first key was replaced");
	cr_assert_eq(entries(), 1, "a temporary file was left behind");

	/* Not over any other file either. */
	path_in("allowed", path, sizeof(path));
	write_file(path, "generation 1\n", 0600);
	cr_assert_eq(pifs_keypair_save(&other, path), -EEXIST);
}

Test(keys, refuses_to_save_a_bad_pair)
{
	struct pifs_keypair kp;
	char path[256];

	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	path_in("expo.key", path, sizeof(path));
	kp.role = PIFS_ROLE_NODE;
	cr_assert_eq(pifs_keypair_save(&kp, path), -EINVAL);
	kp.role = PIFS_ROLE_CLIENT;
	kp.secret[0] = '~';
	cr_assert_eq(pifs_keypair_save(&kp, path), -EINVAL);
	cr_assert_eq(entries(), 0);
}

Test(keys, refuses_a_key_file_others_may_read)
{
	struct pifs_keypair kp, back;
	char path[256], err[512];

	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	cr_assert_eq(pifs_keypair_path(dir, "expo", path, sizeof(path)), 0);
	cr_assert_eq(pifs_keypair_save(&kp, path), 0);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), -EACCES);
	expect_msg(err, path, 0, "group or others may use this key file (mode 0644)");
	cr_assert_not_null(strstr(err, "chmod 600"), "%s", err);
	cr_assert_eq(back.secret[0], '\0');
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), -EACCES);
	cr_assert_eq(chmod(path, 0602), 0);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), -EACCES);
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(pifs_keypair_load(&back, path, err, sizeof(err)), 0, "%s", err);
}

Test(keys, says_what_to_do_when_a_key_file_is_missing)
{
	struct pifs_keypair kp;
	char path[256], err[512];

	path_in("client.key", path, sizeof(path));
	cr_assert_eq(pifs_keypair_load(&kp, path, err, sizeof(err)), -ENOENT);
	expect_msg(err, path, 0, "make the key on the admin's machine");
}

Test(keys, refuses_a_secret_that_does_not_belong_to_the_public_key)
{
	struct pifs_keypair a, b;
	char text[512], path[256], err[512];

	cr_assert_eq(pifs_keypair_make(&a, "expo", PIFS_ROLE_CLIENT), 0);
	cr_assert_eq(pifs_keypair_make(&b, "expo", PIFS_ROLE_CLIENT), 0);
	snprintf(text, sizeof(text),
		 "# pieced together\nname = expo\nrole = client\n"
		 "public = %s\n\nsecret = %s\n",
		 a.pub, b.secret);
	expect_pair_error(text, 6,
			  "the secret key does not belong to the public key of line 4: the file is "
			  "damaged or pieced together from two keys");
	/* The same through a file. */
	path_in("expo.key", path, sizeof(path));
	write_file(path, text, 0600);
	cr_assert_eq(pifs_keypair_load(&a, path, err, sizeof(err)), -EINVAL);
	expect_msg(err, path, 6, "does not belong to the public key");
}

Test(keys, reads_a_hand_written_key_file)
{
	struct pifs_keypair kp, back;
	char text[512], err[256];

	cr_assert_eq(pifs_keypair_make(&kp, "node-9", PIFS_ROLE_NODE), 0);
	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf# node 9\r\n  secret=%s\r\n\tpublic   =\t%s\nrole = node\n"
		 "name = node-9",
		 kp.secret, kp.pub);
	cr_assert_eq(pifs_keypair_parse(&back, text, strlen(text), "x.key", err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(back.name, "node-9");
	cr_assert_eq(back.role, PIFS_ROLE_NODE);
	cr_assert_str_eq(back.pub, kp.pub);
	cr_assert_str_eq(back.secret, kp.secret);
}

Test(keys, names_the_line_of_every_bad_key_file_line)
{
	struct pifs_keypair kp, other;
	char t[1024], longline[700];

	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	cr_assert_eq(pifs_keypair_make(&other, "node-2", PIFS_ROLE_NODE), 0);

	snprintf(t, sizeof(t), "name = expo\nrole client\n");
	expect_pair_error(t, 2, "cannot read this line: write 'key = value'");
	snprintf(t, sizeof(t), "name = expo\nrol = client\n");
	expect_pair_error(t, 2, "unknown key 'rol' (keys: name, role, public, secret)");
	snprintf(t, sizeof(t), "name = expo\n\nname = kiosk\n");
	expect_pair_error(t, 3, "'name' is set twice (first on line 1): keep one");
	snprintf(t, sizeof(t), "name = Expo\n");
	expect_pair_error(t, 1, "bad key name 'Expo'");
	snprintf(t, sizeof(t), "name = expo\nrole = root\n");
	expect_pair_error(t, 2, "unknown role 'root': the roles are client, node and admin");
	snprintf(t, sizeof(t), "name = expo\nrole = client\npublic = %.30s\n", kp.pub);
	expect_pair_error(t, 3, "bad public key: a key is 40 characters of Z85 text");
	snprintf(t, sizeof(t), "name = expo\nrole = client\npublic = %s\nsecret = %.39s~\n", kp.pub,
		 kp.secret);
	expect_pair_error(t, 4, "bad secret key: a key is 40 characters of Z85 text");
	{
		struct pifs_keypair out;
		char err[512];

		cr_assert_eq(pifs_keypair_parse(&out, t, strlen(t), "x.key", err, sizeof(err)),
			     -EINVAL);
		cr_assert_null(strstr(err, kp.secret + 10), "a message quotes the secret: %s", err);
	}

	snprintf(t, sizeof(t), "name = expo\nrole = client\npublic = %s\n", kp.pub);
	expect_pair_error(t, 0, "no 'secret =' line: this is not a whole key file");
	snprintf(t, sizeof(t), "role = client\npublic = %s\nsecret = %s\n", kp.pub, kp.secret);
	expect_pair_error(t, 0, "no 'name =' line");
	expect_pair_error("", 0, "no 'name =' line");

	pair_text(t, sizeof(t), "node-2", "client", other.pub, other.secret);
	expect_pair_error(t, 2, "key 'node-2' has role client, but node-N names the key of node N");
	pair_text(t, sizeof(t), "gateway", "node", other.pub, other.secret);
	expect_pair_error(t, 2, "key 'gateway' has role node but is not named node-N");

	memset(longline, ' ', 10);
	memset(longline + 10, 'x', 600);
	longline[610] = '\0';
	snprintf(t, sizeof(t), "name = expo\n%s\n", longline);
	expect_pair_error(t, 2, "line is longer than 512 characters");
	expect_pair_error_n("name = ex\0po\n", 13, 1, "byte 0x00 is not text");
}

/* ---- bundles ---- */

/* Key node-4 and, in @a, the list of fill_allow with node-4 added. */
static void bundle_parts(struct pifs_keypair *kp, struct pifs_allow *a)
{
	struct pifs_key k = {.role = PIFS_ROLE_NODE};

	fill_allow(a);
	cr_assert_eq(pifs_keypair_make(kp, "node-4", PIFS_ROLE_NODE), 0);
	strcpy(k.name, kp->name);
	strcpy(k.pub, kp->pub);
	cr_assert_eq(pifs_allow_add(a, &k), 0);
}

/* Parse @text as a bundle: expect -EINVAL, the message of @line with @what,
 * the key pair wiped and the list empty. */
static void expect_bundle_error_n(const char *text, size_t len, int line, const char *what)
{
	struct pifs_keypair kp;
	struct pifs_allow a;
	char err[768];

	pifs_allow_init(&a);
	cr_assert_eq(pifs_bundle_parse(text, len, "b.keys", &kp, &a, err, sizeof(err)), -EINVAL,
		     "accepted:\n%s", text);
	expect_msg(err, "b.keys", line, what);
	cr_assert_eq(kp.secret[0], '\0', "a refused bundle left its secret behind");
	cr_assert_eq(kp.name[0], '\0');
	cr_assert_eq(a.n, 0);
	cr_assert_null(a.keys);
	cr_assert_eq(a.generation, 0);
}

static void expect_bundle_error(const char *text, int line, const char *what)
{
	expect_bundle_error_n(text, strlen(text), line, what);
}

/* A bundle written by hand, with its line numbers fixed:
 *   1 # pifs key bundle 1         6 secret = @secret
 *   2 --- @section.key            7 --- allowed
 *   3 name = @name                8 generation 7
 *   4 role = @role                9 @list_line
 *   5 public = @pub              10 expo client <another key> */
static void hand_bundle(char *buf, size_t cap, const char *section, const char *name,
			const char *role, const char *pub, const char *secret,
			const char *list_line)
{
	char other[PIFS_KEY_Z85 + 1];

	new_pub(other);
	snprintf(buf, cap,
		 "# pifs key bundle 1\n--- %s.key\nname = %s\nrole = %s\npublic = %s\n"
		 "secret = %s\n--- allowed\ngeneration 7\n%s\nexpo client %s\n",
		 section, name, role, pub, secret, list_line, other);
}

Test(keys, formats_and_parses_a_bundle_back)
{
	struct pifs_keypair kp, back;
	struct pifs_allow a, b;
	char *text, *again, err[512];
	size_t len, len2;

	bundle_parts(&kp, &a);
	cr_assert_eq(pifs_bundle_format(&kp, &a, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	cr_assert_eq(strncmp(text, "# pifs key bundle 1 ", 20), 0, "%s", text);
	cr_assert_not_null(strstr(text, "\n--- node-4.key\n"), "%s", text);
	cr_assert_not_null(strstr(text, "\n--- allowed\n"), "%s", text);
	cr_assert_not_null(strstr(text, kp.secret), "%s", text);
	pifs_allow_init(&b);
	cr_assert_eq(pifs_bundle_parse(text, len, "b.keys", &back, &b, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(back.name, "node-4");
	cr_assert_eq(back.role, PIFS_ROLE_NODE);
	cr_assert_str_eq(back.pub, kp.pub);
	cr_assert_str_eq(back.secret, kp.secret);
	assert_same_list(&a, &b);
	cr_assert_eq(pifs_bundle_format(&back, &b, &again, &len2), 0);
	cr_assert_eq(len2, len);
	cr_assert_str_eq(again, text);
	free(text);
	free(again);
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
}

Test(keys, a_bundle_holds_the_two_files_as_they_are_saved)
{
	struct pifs_keypair kp;
	struct pifs_allow a;
	char path[256], *text, *list, *file;
	size_t len, list_len, file_len;
	FILE *f;

	bundle_parts(&kp, &a);
	cr_assert_eq(pifs_bundle_format(&kp, &a, &text, &len), 0);
	cr_assert_eq(pifs_allow_format(&a, &list, &list_len), 0);
	cr_assert_eq(strcmp(text + len - list_len, list), 0,
		     "the allow-list is not the bundle's end");
	/* The key section is the key file pifs_keypair_save writes, byte for byte. */
	cr_assert_eq(pifs_keypair_path(dir, "node-4", path, sizeof(path)), 0);
	cr_assert_eq(pifs_keypair_save(&kp, path), 0);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	file = calloc(1, 2048);
	file_len = fread(file, 1, 2047, f);
	fclose(f);
	cr_assert_not_null(strstr(text, "\n--- node-4.key\n"));
	cr_assert_eq(strncmp(strstr(text, "\n--- node-4.key\n") + 16, file, file_len), 0, "%s",
		     text);
	free(file);
	free(text);
	free(list);
	pifs_allow_fini(&a);
}

Test(keys, reads_a_hand_written_bundle)
{
	struct pifs_keypair kp, back;
	struct pifs_allow a;
	char text[2048], err[512];

	cr_assert_eq(pifs_keypair_make(&kp, "expo", PIFS_ROLE_CLIENT), 0);
	/* A byte order mark, CRLF, the allow-list first, comments between. */
	snprintf(text, sizeof(text),
		 "\xef\xbb\xbf# pifs key bundle 1\r\n# made by hand\r\n\r\n---\tallowed\r\n"
		 "generation 3\r\nexpo client %s\r\n# the key\r\n---  expo.key  \r\n"
		 "secret = %s\r\npublic = %s\r\nrole = client\r\nname = expo",
		 kp.pub, kp.secret, kp.pub);
	pifs_allow_init(&a);
	cr_assert_eq(pifs_bundle_parse(text, strlen(text), "b.keys", &back, &a, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(back.secret, kp.secret);
	cr_assert_eq(a.generation, 3);
	cr_assert_eq(a.n, 1);
	pifs_allow_fini(&a);
}

Test(keys, names_the_line_of_every_bad_bundle_line)
{
	struct pifs_keypair kp, other, expo;
	char t[4096], line[256], longline[700];
	size_t n;

	cr_assert_eq(pifs_keypair_make(&kp, "node-4", PIFS_ROLE_NODE), 0);
	cr_assert_eq(pifs_keypair_make(&other, "node-5", PIFS_ROLE_NODE), 0);
	cr_assert_eq(pifs_keypair_make(&expo, "gw", PIFS_ROLE_CLIENT), 0);
	snprintf(line, sizeof(line), "node-4 node %s", kp.pub);

	/* The whole, as hand_bundle writes it, is taken: each case below
	 * changes one thing. */
	{
		struct pifs_keypair back;
		struct pifs_allow a;
		char err[512];

		hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
		pifs_allow_init(&a);
		cr_assert_eq(pifs_bundle_parse(t, strlen(t), "b.keys", &back, &a, err, sizeof(err)),
			     0, "%s", err);
		pifs_allow_fini(&a);
	}

	/* What it is. */
	expect_bundle_error("", 1,
			    "not a pifs key bundle, whose first line is '# pifs key bundle 1'");
	snprintf(t, sizeof(t), "name = node-4\nrole = node\npublic = %s\nsecret = %s\n", kp.pub,
		 kp.secret);
	expect_bundle_error(t, 1, "a bare NAME.key or allowed goes into the key directory");
	expect_bundle_error("# pifs key bundle 2\n", 1,
			    "a key bundle of a format this pifs does not read (it reads format 1");
	expect_bundle_error("# pifs key bundle x\n", 1, "a format this pifs does not read");
	expect_bundle_error("# pifs key bundle 10000000001\n", 1,
			    "a format this pifs does not read");

	/* Its sections. */
	snprintf(t, sizeof(t), "# pifs key bundle 1\n\nsecret = %s\n--- allowed\n", kp.secret);
	expect_bundle_error(t, 3, "a line before the first section");
	{
		struct pifs_keypair out;
		struct pifs_allow a;
		char err[512];

		pifs_allow_init(&a);
		cr_assert_eq(pifs_bundle_parse(t, strlen(t), "b.keys", &out, &a, err, sizeof(err)),
			     -EINVAL);
		cr_assert_null(strstr(err, kp.secret + 10), "a message quotes the secret: %s", err);
	}
	expect_bundle_error("# pifs key bundle 1\n---node-4.key\n", 2, "bad section line");
	expect_bundle_error("# pifs key bundle 1\n--- node-4.key allowed\n", 2, "bad section line");
	expect_bundle_error("# pifs key bundle 1\n---\n", 2, "bad section line");
	expect_bundle_error("# pifs key bundle 1\n---- allowed\n", 2, "bad section line");
	expect_bundle_error("# pifs key bundle 1\n--- node-4.pub\n", 2,
			    "unknown section 'node-4.pub'");
	expect_bundle_error("# pifs key bundle 1\n--- .key\n", 2, "unknown section '.key'");
	expect_bundle_error("# pifs key bundle 1\n--- Node.key\n", 2, "bad key name 'Node'");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	n = strlen(t);
	snprintf(t + n, sizeof(t) - n, "--- node-5.key\n");
	expect_bundle_error(t, 11, "a second key section (the first is on line 2)");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	n = strlen(t);
	snprintf(t + n, sizeof(t) - n, "--- allowed\n");
	expect_bundle_error(t, 11, "a second allowed section (the first is on line 7)");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	*strstr(t, "--- allowed\n") = '\0';
	expect_bundle_error(t, 0, "no '--- allowed' section: this is not a whole key bundle");
	snprintf(t, sizeof(t), "# pifs key bundle 1\n--- allowed\ngeneration 1\n");
	expect_bundle_error(t, 0, "no '--- NAME.key' section");
	expect_bundle_error("# pifs key bundle 1\n", 0, "no '--- NAME.key' section");

	/* The key file's lines, by their line in the bundle. */
	hand_bundle(t, sizeof(t), "node-4", "node-4", "nod", kp.pub, kp.secret, line);
	expect_bundle_error(t, 4, "unknown role 'nod'");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, other.secret, line);
	expect_bundle_error(t, 6, "the secret key does not belong to the public key of line 5");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	memcpy(strstr(t, "secret = "), "#ecret = ", 9);
	expect_bundle_error(t, 2, "no 'secret =' line: this is not a whole key file");
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	strstr(t, "role = node")[4] = '\x01';
	expect_bundle_error(t, 4, "byte 0x01 is not text");

	/* The allow-list's lines, the same. */
	snprintf(line, sizeof(line), "node-4 nod %s", kp.pub);
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	expect_bundle_error(t, 9, "unknown role 'nod' for key 'node-4'");
	snprintf(line, sizeof(line), "node-4 node %s", kp.pub);
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	memcpy(strstr(t, "generation 7"), "#eneration 7", 12);
	expect_bundle_error(t, 7, "no 'generation N' line");
	memset(longline, 'x', 600);
	longline[600] = '\0';
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, longline);
	expect_bundle_error(t, 9, "line is longer than 512 characters");

	/* The key and its allow-list disagree. */
	snprintf(line, sizeof(line), "node-4 node %s", kp.pub);
	hand_bundle(t, sizeof(t), "node-5", "node-4", "node", kp.pub, kp.secret, line);
	expect_bundle_error(t, 2, "the section of node-5.key holds the key 'node-4'");
	snprintf(line, sizeof(line), "node-5 node %s", other.pub);
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	expect_bundle_error(
	    t, 2, "key 'node-4' is not in the bundle's allow-list (the section of line 7)");
	snprintf(line, sizeof(line), "node-4 node %s revoked", kp.pub);
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	expect_bundle_error(t, 9, "key 'node-4' is revoked in the bundle's allow-list");
	snprintf(line, sizeof(line), "node-4 node %s", other.pub);
	hand_bundle(t, sizeof(t), "node-4", "node-4", "node", kp.pub, kp.secret, line);
	expect_bundle_error(t, 9,
			    "the allow-list has another public key for 'node-4' than its key "
			    "section (line 2)");
	snprintf(line, sizeof(line), "gw admin %s", expo.pub);
	hand_bundle(t, sizeof(t), "gw", "gw", "client", expo.pub, expo.secret, line);
	expect_bundle_error(t, 9,
			    "the allow-list gives 'gw' the role admin, its key section the role "
			    "client");
}

Test(keys, formats_no_bundle_that_it_would_refuse)
{
	struct pifs_keypair kp, other;
	struct pifs_allow a;
	char *text = (char *)"untouched";
	size_t len = 99;

	bundle_parts(&kp, &a);
	cr_assert_eq(pifs_keypair_make(&other, "node-5", PIFS_ROLE_NODE), 0);
	cr_assert_eq(pifs_bundle_format(&other, &a, &text, &len), -EINVAL, "not listed");
	cr_assert_null(text);
	cr_assert_eq(len, 0);
	a.keys[a.n - 1].revoked = true;
	cr_assert_eq(pifs_bundle_format(&kp, &a, &text, &len), -EINVAL, "revoked");
	a.keys[a.n - 1].revoked = false;
	strcpy(a.keys[a.n - 1].pub, other.pub);
	cr_assert_eq(pifs_bundle_format(&kp, &a, &text, &len), -EINVAL, "another public half");
	strcpy(a.keys[a.n - 1].pub, kp.pub);
	kp.secret[3] = '~';
	cr_assert_eq(pifs_bundle_format(&kp, &a, &text, &len), -EINVAL, "a bad secret");
	pifs_allow_fini(&a);
}

Test(keys, saves_and_loads_a_bundle_mode_0600)
{
	struct pifs_keypair kp, back;
	struct pifs_allow a, b;
	char path[256], err[768];

	bundle_parts(&kp, &a);
	path_in("node-4.keys", path, sizeof(path));
	/* In place of a file there, as a redirect would be. */
	write_file(path, "old\n", 0644);
	cr_assert_eq(pifs_bundle_save(&kp, &a, path), 0);
	cr_assert_eq(mode_of(path), 0600);
	cr_assert_eq(entries(), 1, "a temporary file was left behind");
	pifs_allow_init(&b);
	cr_assert_eq(pifs_bundle_load(path, &back, &b, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.secret, kp.secret);
	assert_same_list(&a, &b);
	pifs_allow_fini(&b);

	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(pifs_bundle_load(path, &back, &b, err, sizeof(err)), -EACCES);
	expect_msg(err, path, 0, "group or others may use this key bundle (mode 0640)");
	cr_assert_eq(back.secret[0], '\0');
	cr_assert_eq(b.n, 0);

	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(pifs_bundle_load(path, &back, &b, err, sizeof(err)), -ENOENT);
	expect_msg(err, path, 0, "pifs-admin keys export NAME -o FILE");

	a.keys[a.n - 1].revoked = true;
	cr_assert_eq(pifs_bundle_save(&kp, &a, path), -EINVAL);
	cr_assert_eq(entries(), 0, "a refused bundle was written");
	pifs_allow_fini(&a);
}
