/*
 * libFuzzer target: the byte-fed decoder on hostile input.  The first two
 * bytes choose the packet buffer size (to reach "too long" often) and how
 * reads are split; the rest is the stream.  Invariants checked with abort():
 * progress on every call, payloads inside the buffer and within its size,
 * and every decoded packet handed to the parser as the stub would.
 */
#include <stdlib.h>
#include <string.h>

#include "rsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t caps[] = { 0, 1, 7, 64, 600, 4096 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rsp_decoder d;
	struct rsp_command cmd;
	size_t cap, off = 0;
	uint32_t rng;
	uint8_t *buf;

	if (size < 2)
		return 0;
	cap = caps[data[0] % (sizeof(caps) / sizeof(caps[0]))];
	rng = data[1] | 1u;
	/* Exactly cap bytes on the heap: ASan sees any write past the end. */
	buf = malloc(cap ? cap : 1);
	if (!buf)
		abort();
	rsp_decoder_init(&d, buf, cap);
	if (data[0] & 0x80)
		rsp_decoder_set_noack(&d, true);
	data += 2;
	size -= 2;
	while (off < size) {
		size_t chunk, left;
		const uint8_t *p;

		rng = rng * 1103515245u + 12345u;
		chunk = 1 + (rng >> 16) % 97;
		if (chunk > size - off)
			chunk = size - off;
		p = data + off;
		left = chunk;
		off += chunk;
		while (left > 0) {
			struct rsp_decoded out;
			size_t used = 0;
			enum rsp_event ev = rsp_decoder_feed(&d, p, left, &used,
							     &out);

			if (used == 0 || used > left || ev != out.event)
				abort();
			p += used;
			left -= used;
			if (ev == RSP_EV_NEED_MORE && left != 0)
				abort();
			if (out.reply && (d.noack || (out.reply != '+' &&
						      out.reply != '-')))
				abort();
			if (ev != RSP_EV_PACKET)
				continue;
			if (out.len > cap || (out.len && out.data != buf))
				abort();
			(void)rsp_parse(out.data, out.len, &cmd);
		}
	}
	free(buf);
	return 0;
}
