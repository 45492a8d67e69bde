/* fuzz_proto.c - the message decoder must refuse garbage, never crash.
 * Anything that decodes must encode again to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pifs_msg m;
	struct pifs_buf again;
	char line[512];

	if (pifs_proto_decode(data, size, &m) != 0)
		return 0;
	pifs_proto_format(&m, line, sizeof(line));
	pifs_buf_init(&again);
	if (pifs_proto_encode(&m, &again) != 0 || again.len != size ||
	    memcmp(again.p, data, size) != 0)
		abort();
	pifs_buf_fini(&again);
	return 0;
}
