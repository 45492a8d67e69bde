/* keyring.c - keys for the daemons a test starts. */
#include "keyring.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"
#include "keys.h"

static void make_one(const char *dir, struct pifs_allow *l, const char *name, enum pifs_role role)
{
	struct pifs_keypair kp;
	char path[1200];

	cr_assert_eq(pifs_keypair_make(&kp, name, role), 0, "key %s", name);
	cr_assert_eq(pifs_keypair_path(dir, name, path, sizeof(path)), 0);
	cr_assert_eq(pifs_keypair_save(&kp, path), 0, "saving %s", path);
	cr_assert_eq(pifs_allow_add_pair(l, &kp), 0, "listing %s", name);
}

void keyring_make(const char *dir, uint32_t nodes)
{
	struct pifs_allow l;
	char path[1200], name[32];

	cr_assert(mkdir(dir, 0700) == 0, "mkdir %s", dir);
	pifs_allow_init(&l);
	l.generation = 1;
	for (uint32_t i = 1; i <= nodes; i++) {
		snprintf(name, sizeof(name), "node-%u", i);
		make_one(dir, &l, name, PIFS_ROLE_NODE);
	}
	make_one(dir, &l, "client", PIFS_ROLE_CLIENT);
	make_one(dir, &l, "admin", PIFS_ROLE_ADMIN);
	snprintf(path, sizeof(path), "%s/%s", dir, PIFS_KEYS_ALLOWED);
	cr_assert_eq(pifs_allow_save(&l, path), 0, "saving %s", path);
	pifs_allow_fini(&l);
}

struct pifs_auth *keyring_auth(const char *dir, const char *name)
{
	struct pifs_conf c;
	struct pifs_auth *a = NULL;
	char err[1024] = "";

	pifs_conf_init(&c);
	snprintf(c.keys_dir, sizeof(c.keys_dir), "%s", dir);
	cr_assert_eq(pifs_auth_open(&c, name, &a, err, sizeof(err)), 0, "%s", err);
	pifs_conf_fini(&c);
	return a;
}
