/* keyring.h - keys for the daemons a test starts.
 *
 * The suite runs with security on, as a cluster does by default: a test
 * that starts pifs-storaged writes "keys = DIR" into its config after
 * keyring_make(DIR, ...) and talks to the daemons with keyring_auth(DIR,
 * "admin"). Failures abort the test (Criterion asserts). */
#ifndef PIFS_TEST_KEYRING_H
#define PIFS_TEST_KEYRING_H

#include <stdint.h>

#include "auth.h"

/* A key directory at @dir (made, mode 0700) with node-1..node-@nodes, one
 * "client" and one "admin" key, and the allow-list of them all,
 * generation 1. */
void keyring_make(const char *dir, uint32_t nodes);

/* The auth of key @name of the key directory @dir; freed with
 * pifs_auth_free. */
struct pifs_auth *keyring_auth(const char *dir, const char *name);

#endif
