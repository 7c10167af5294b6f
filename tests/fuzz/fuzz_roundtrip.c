/*
 * libFuzzer target: encode then decode must give the payload back, byte for
 * byte, with and without run-length encoding, whole and byte by byte.  The
 * first byte chooses the flags; the rest is the payload.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXLEN 8192

static void decode_check(const uint8_t *framed, size_t n, size_t step,
			 const uint8_t *payload, size_t len)
{
	static uint8_t buf[MAXLEN];
	struct rsp_decoder d;
	size_t off = 0, packets = 0;

	rsp_decoder_init(&d, buf, sizeof(buf));
	while (off < n) {
		struct rsp_decoded out;
		size_t used;
		size_t chunk = step && step < n - off ? step : n - off;
		enum rsp_event ev = rsp_decoder_feed(&d, framed + off, chunk,
						     &used, &out);

		off += used;
		if (ev == RSP_EV_NEED_MORE)
			continue;
		if (ev != RSP_EV_PACKET || off != n || out.len != len ||
		    (len && memcmp(out.data, payload, len) != 0) ||
		    out.reply != '+')
			abort();
		packets++;
	}
	if (packets != 1 || d.stats.garbage != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t framed[2 * MAXLEN + 4];
	unsigned flags;
	size_t step;
	ssize_t n;

	if (size < 1 || size - 1 > MAXLEN)
		return 0;
	flags = data[0] & 1 ? RSP_ENC_RLE : 0;
	step = 1 + (data[0] >> 1) % 13u;
	data++;
	size--;
	n = rsp_encode(framed, sizeof(framed), data, size, flags);
	if (n < 4 || (size_t)n > rsp_encode_bound(size))
		abort();
	/* Never a bare '#' or '$' inside the frame: a receiver must find
	 * the frame's end by the first '#' not a run-length count. */
	for (ssize_t i = 1; i < n - 3; i++) {
		if (framed[i] == '$')
			abort();
		if (framed[i] == '#' && framed[i - 1] != '*')
			abort();
	}
	/* Too small an output buffer fails cleanly. */
	if (rsp_encode(framed, (size_t)n - 1, data, size, flags) != -ENOSPC)
		abort();
	n = rsp_encode(framed, sizeof(framed), data, size, flags);
	decode_check(framed, (size_t)n, 0, data, size);
	decode_check(framed, (size_t)n, 1, data, size);
	decode_check(framed, (size_t)n, step, data, size);
	return 0;
}
