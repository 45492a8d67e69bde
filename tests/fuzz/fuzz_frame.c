/* fuzz_frame.c - a chunk frame that does not verify is never unpacked. */
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pifs_frame_hdr h;
	static uint8_t out[1 << 20];
	ssize_t n;

	if (pifs_frame_parse(data, size, &h) != 0)
		return 0;
	n = pifs_frame_unpack(data, size, out, sizeof(out));
	if (n >= 0) {
		struct pifs_chunk_id id = pifs_chunk_id_of(out, (size_t)n);

		if (!pifs_chunk_id_eq(&id, &h.id) || (uint32_t)n != h.raw_len)
			abort();
	}
	return 0;
}
