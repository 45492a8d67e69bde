/* fuzz_config.c - any configuration file is loaded or refused with a
 * sentence, never a crash, and what loads answers its own questions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	char path[512], err[512], ep[300];
	struct pifs_conf c;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/pifs-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	fd = mkstemp(path);
	if (fd < 0)
		abort();
	if (size > 0 && write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	pifs_conf_init(&c);
	err[0] = '\0';
	rc = pifs_conf_load(&c, path, err, sizeof(err));
	if (rc == 0) {
		for (size_t i = 0; i < c.n_nodes; i++) {
			if (pifs_conf_node(&c, c.nodes[i].id) == NULL)
				abort();
			(void)pifs_conf_endpoint(c.nodes[i].addr, ep, sizeof(ep));
		}
		if (pifs_conf_meta(&c) == NULL)
			abort();
	} else if (c.n_nodes != 0 || strnlen(err, sizeof(err)) == sizeof(err)) {
		abort();
	}
	pifs_conf_fini(&c);
	unlink(path);
	return 0;
}
