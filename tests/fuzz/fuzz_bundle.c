/* fuzz_bundle.c - any key bundle (the file 'pifs-admin keys import' reads,
 * fs/keys.h) is taken or refused with a sentence, never a crash. What is
 * taken is a key pair whose halves belong together and that its allow-list
 * lists active with the same public half and role; it formats back to a
 * bundle that parses to the same pair and list and formats to the same
 * bytes again.
 *
 * The input is the bundle's text, given as bytes with no NUL after them, as
 * a file read from disk would be. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_list(const struct pifs_allow *a, const struct pifs_allow *b)
{
	if (a->generation != b->generation || a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->keys[i].name, b->keys[i].name) ||
		    a->keys[i].role != b->keys[i].role || strcmp(a->keys[i].pub, b->keys[i].pub) ||
		    a->keys[i].revoked != b->keys[i].revoked)
			abort();
}

static void fuzz_bundle(const char *text, size_t len)
{
	char err[768], derived[PIFS_KEY_Z85 + 1], *out, *again;
	struct pifs_keypair kp, back;
	struct pifs_allow a, b;
	const struct pifs_key *k;
	size_t out_len, again_len;

	pifs_allow_init(&a);
	if (pifs_bundle_parse(text, len, "b.keys", &kp, &a, err, sizeof(err)) < 0) {
		/* One sentence that names the bundle: nothing is refused
		 * silently, and nothing of a refused bundle is kept. */
		if (strnlen(err, sizeof(err)) == sizeof(err) || strncmp(err, "b.keys", 6) != 0)
			abort();
		if (kp.secret[0] || kp.pub[0] || kp.name[0] || a.n || a.keys || a.generation)
			abort();
		return;
	}
	if (!pifs_key_name_ok(kp.name) || !pifs_key_z85_ok(kp.pub) || !pifs_key_z85_ok(kp.secret) ||
	    kp.role < PIFS_ROLE_CLIENT || kp.role > PIFS_ROLE_ADMIN)
		abort();
	if ((pifs_key_node(kp.name) != 0) != (kp.role == PIFS_ROLE_NODE))
		abort();
	if (zmq_curve_public(derived, kp.secret) != 0 || strcmp(derived, kp.pub) != 0)
		abort();
	k = pifs_allow_find(&a, kp.name);
	if (!k || k->revoked || strcmp(k->pub, kp.pub) != 0 || k->role != kp.role)
		abort();
	/* One bundle, one text: format, parse again, format again. */
	if (pifs_bundle_format(&kp, &a, &out, &out_len) != 0)
		abort();
	pifs_allow_init(&b);
	if (pifs_bundle_parse(out, out_len, "formatted", &back, &b, err, sizeof(err)) != 0)
		abort();
	if (strcmp(back.name, kp.name) || back.role != kp.role || strcmp(back.pub, kp.pub) ||
	    strcmp(back.secret, kp.secret))
		abort();
	same_list(&a, &b);
	if (pifs_bundle_format(&back, &b, &again, &again_len) != 0 || again_len != out_len ||
	    memcmp(out, again, out_len) != 0)
		abort();
	free(out);
	free(again);
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly the input's bytes, so that ASan catches a parser
	 * that reads one past them (the fuzzer's buffer may have slack). */
	char *text = malloc(size ? size : 1);

	if (!text)
		abort();
	memcpy(text, data, size);
	fuzz_bundle(text, size);
	free(text);
	return 0;
}
