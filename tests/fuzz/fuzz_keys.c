/* fuzz_keys.c - any allow-list or key file is taken or refused with a
 * sentence, never a crash; what is taken formats back to the same list, and
 * a key pair taken is one whose halves belong together.
 *
 * The first byte picks the parser: even, the allow-list; odd, a key file
 * (the corpus spells them '0' and '1'). The rest is the file's text, given
 * as bytes with no NUL after them, as a file read from disk would be. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @err holds one sentence that names @path: nothing is refused silently. */
static void check_message(const char *err, size_t cap, const char *path)
{
	if (strnlen(err, cap) == cap || strncmp(err, path, strlen(path)) != 0)
		abort();
}

static void fuzz_allow(const char *text, size_t len)
{
	struct pifs_allow a, b, c;
	char err[512], *out, *again;
	size_t out_len, again_len;

	pifs_allow_init(&a);
	if (pifs_allow_parse(&a, text, len, "allowed", err, sizeof(err)) < 0) {
		check_message(err, sizeof(err), "allowed");
		if (a.n != 0 || a.keys != NULL || a.generation != 0)
			abort();
		return;
	}
	if (a.n > PIFS_KEYS_MAX)
		abort();
	/* Every key taken is one pifs_allow_add takes, with no double. */
	pifs_allow_init(&c);
	for (size_t i = 0; i < a.n; i++) {
		if (pifs_allow_add(&c, &a.keys[i]) != 0)
			abort();
		if (pifs_allow_find(&a, a.keys[i].name) != &a.keys[i] ||
		    pifs_allow_find_pub(&a, a.keys[i].pub) != &a.keys[i])
			abort();
	}
	pifs_allow_fini(&c);
	/* One list, one text: format, parse again, format again. */
	if (pifs_allow_format(&a, &out, &out_len) != 0)
		abort();
	pifs_allow_init(&b);
	if (pifs_allow_parse(&b, out, out_len, "formatted", err, sizeof(err)) != 0)
		abort();
	if (b.generation != a.generation || b.n != a.n)
		abort();
	for (size_t i = 0; i < a.n; i++)
		if (strcmp(a.keys[i].name, b.keys[i].name) || a.keys[i].role != b.keys[i].role ||
		    strcmp(a.keys[i].pub, b.keys[i].pub) || a.keys[i].revoked != b.keys[i].revoked)
			abort();
	if (pifs_allow_format(&b, &again, &again_len) != 0 || again_len != out_len ||
	    memcmp(out, again, out_len) != 0)
		abort();
	free(out);
	free(again);
	pifs_allow_fini(&a);
	pifs_allow_fini(&b);
}

static void fuzz_keypair(const char *text, size_t len)
{
	struct pifs_keypair kp;
	char err[512], derived[PIFS_KEY_Z85 + 1];

	if (pifs_keypair_parse(&kp, text, len, "x.key", err, sizeof(err)) < 0) {
		check_message(err, sizeof(err), "x.key");
		if (kp.secret[0] || kp.pub[0] || kp.name[0])
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0)
		return 0;
	/* A copy of exactly the text's bytes, so that ASan catches a parser
	 * that reads one past them (the fuzzer's buffer may have slack). */
	text = malloc(size - 1 ? size - 1 : 1);
	if (!text)
		abort();
	memcpy(text, data + 1, size - 1);
	if (data[0] & 1)
		fuzz_keypair(text, size - 1);
	else
		fuzz_allow(text, size - 1);
	free(text);
	return 0;
}
