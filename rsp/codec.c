/*
 * codec.c - GDB RSP framing: the byte-fed decoder and the encoder.
 *
 * GDB manual, "Overview": a packet is $packet-data#checksum, the checksum
 * being the sum modulo 256 of the bytes between '$' and '#' as sent.
 * Binary data escapes '#', '$', '}' (and '*' in replies) as '}' then the
 * byte XOR 0x20.  A '*' followed by a count byte n repeats the preceding
 * character n - 29 more times.  gdb itself expands the run-length
 * sequences on the raw bytes first and only then undoes the escapes
 * (remote.c read_frame, then remote_unescape_input); the decoder below
 * keeps that order, so the character repeated is the raw byte before '*'
 * and the copies go through the unescaping like bytes received.
 */
#include <errno.h>
#include <string.h>

#include "rsp_codec.h"

enum {
	ST_IDLE,
	ST_DATA,
	ST_COUNT,     /* after '*': the next byte is the repeat count */
	ST_CSUM1,
	ST_CSUM2,
};

/* "the repeat count is n - 29": a count byte of ' ' repeats 3 more times. */
#define RLE_BIAS 29
/* The manual: counts must be printable and not '#' or '$'; 126 ('~') is
 * the largest printable byte. */
#define RLE_MAX_REPEAT (126 - RLE_BIAS)

/* Hex digit values plus one, so that the zero default means "not hex". */
static const uint8_t digit1[256] = {
	['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
	['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
	['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

int rsp_hex_digit(uint8_t c)
{
	return (int)digit1[c] - 1;
}

static const char hexdig[] = "0123456789abcdef";
/* The two digits of every byte value, one copy per byte when encoding. */
static const char hexpairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

size_t rsp_hex_encode(uint8_t *out, const uint8_t *in, size_t len)
{
	for (size_t i = 0; i < len; i++)
		memcpy(out + 2 * i, hexpairs + 2 * in[i], 2);
	return 2 * len;
}

ssize_t rsp_hex_decode(uint8_t *out, size_t cap, const uint8_t *hex,
		       size_t hexlen)
{
	if (hexlen % 2)
		return -EINVAL;
	if (hexlen / 2 > cap)
		return -ENOSPC;
	for (size_t i = 0; i < hexlen / 2; i++) {
		unsigned hi = digit1[hex[2 * i]];
		unsigned lo = digit1[hex[2 * i + 1]];

		if (!hi || !lo)
			return -EINVAL;
		out[i] = (uint8_t)((hi - 1) << 4 | (lo - 1));
	}
	return (ssize_t)(hexlen / 2);
}

void rsp_decoder_init(struct rsp_decoder *d, uint8_t *buf, size_t cap)
{
	memset(d, 0, sizeof(*d));
	d->buf = buf;
	d->cap = cap;
	d->state = ST_IDLE;
}

static void start_packet(struct rsp_decoder *d)
{
	d->len = 0;
	d->state = ST_DATA;
	d->sum = 0;
	d->rx_sum = 0;
	d->have_last = false;
	d->escape = false;
	d->overflow = false;
	d->malformed = false;
	d->bad_digit = false;
}

void rsp_decoder_reset(struct rsp_decoder *d)
{
	d->len = 0;
	d->state = ST_IDLE;
	d->escape = false;
}

void rsp_decoder_set_noack(struct rsp_decoder *d, bool noack)
{
	d->noack = noack;
}

/* How many of n more payload bytes fit; the rest is dropped and the
 * packet marked too long. */
static size_t fit(struct rsp_decoder *d, size_t n)
{
	size_t room = d->cap - d->len;

	if (n > room) {
		d->overflow = true;
		return room;
	}
	return n;
}

static void store(struct rsp_decoder *d, uint8_t b, size_t n)
{
	n = fit(d, n);
	memset(d->buf + d->len, b, n);
	d->len += n;
}

/* Bytes that end a plain run inside a packet: the frame end, a new frame,
 * a run-length marker and the escape character. */
static const bool special[256] = {
	['#'] = true, ['$'] = true, ['*'] = true, ['}'] = true,
};

static size_t plain_run(const uint8_t *p, size_t n)
{
	size_t k = 0;

	while (k < n && !special[p[k]])
		k++;
	return k;
}

static uint8_t sum_bytes(const uint8_t *p, size_t n)
{
	unsigned s = 0;

	for (size_t k = 0; k < n; k++)
		s += p[k];
	return (uint8_t)s;
}

static void copy(struct rsp_decoder *d, const uint8_t *p, size_t n)
{
	n = fit(d, n);
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

/* Second stage: undo '}' escapes on the raw (run-length expanded) bytes. */
static void unescape(struct rsp_decoder *d, uint8_t c, size_t n)
{
	while (n > 0) {
		if (d->escape) {
			d->escape = false;
			store(d, c ^ 0x20, 1);
			n--;
		} else if (c == '}') {
			d->escape = true;
			n--;
		} else {
			store(d, c, n);
			return;
		}
	}
}

static enum rsp_event finish(struct rsp_decoder *d, struct rsp_decoded *out)
{
	uint8_t ack = d->noack ? 0 : '+';

	d->state = ST_IDLE;
	/* A trailing '}' escapes nothing: remote_unescape_input rejects it. */
	if (d->escape)
		d->malformed = true;
	/*
	 * The checksum is verified in no-ack mode too: the manual lets the
	 * receiver ignore it there, but a damaged stream (a reconnect over a
	 * serial link delivering stale bytes) is better reported than obeyed.
	 * Without acks there is nobody to ask for a resend, so no reply.
	 */
	if (d->bad_digit || d->rx_sum != d->sum) {
		d->stats.bad_checksums++;
		out->event = RSP_EV_BAD_CHECKSUM;
		out->reply = d->noack ? 0 : '-';
		return out->event;
	}
	/* The frame arrived intact, so '+' it: a resend would be the same
	 * bytes.  The stub answers with an error reply instead. */
	out->reply = ack;
	if (d->malformed) {
		d->stats.malformed++;
		out->event = RSP_EV_MALFORMED;
	} else if (d->overflow) {
		d->stats.too_long++;
		out->event = RSP_EV_TOO_LONG;
	} else {
		d->stats.packets++;
		out->event = RSP_EV_PACKET;
		out->data = d->buf;
		out->len = d->len;
	}
	return out->event;
}

enum rsp_event rsp_decoder_feed(struct rsp_decoder *d, const uint8_t *in,
				size_t len, size_t *consumed,
				struct rsp_decoded *out)
{
	size_t i = 0;

	out->event = RSP_EV_NEED_MORE;
	out->reply = 0;
	out->data = NULL;
	out->len = 0;

	while (i < len) {
		uint8_t c = in[i++];
		int v;

		switch (d->state) {
		case ST_IDLE:
			switch (c) {
			case '$':
				start_packet(d);
				break;
			case '+':
				out->event = RSP_EV_ACK;
				goto done;
			case '-':
				out->event = RSP_EV_NAK;
				goto done;
			case 0x03:
				/* "Interrupts": a lone 0x03 outside packets. */
				out->event = RSP_EV_INTERRUPT;
				goto done;
			default:
				d->stats.garbage++;
				break;
			}
			break;
		case ST_DATA:
			if (c == '#') {
				d->state = ST_CSUM1;
			} else if (c == '$') {
				/* gdb never sends '$' inside a packet: the old
				 * one was cut short, resynchronise on this. */
				d->stats.restarts++;
				start_packet(d);
			} else {
				d->sum += c;
				if (c == '*') {
					if (!d->have_last)
						d->malformed = true;
					d->state = ST_COUNT;
				} else {
					d->last_raw = c;
					d->have_last = true;
					/* Fast path for plain runs: copy up to
					 * the next byte that needs a look. */
					if (!d->escape && c != '}') {
						size_t n = plain_run(in + i, len - i);

						store(d, c, 1);
						if (n > 0) {
							d->sum += sum_bytes(in + i, n);
							copy(d, in + i, n);
							d->last_raw = in[i + n - 1];
							i += n;
						}
					} else {
						unescape(d, c, 1);
					}
				}
			}
			break;
		case ST_COUNT:
			d->sum += c;
			d->state = ST_DATA;
			if (c <= RLE_BIAS) {
				d->malformed = true;
				break;
			}
			if (d->have_last)
				unescape(d, d->last_raw, (size_t)(c - RLE_BIAS));
			break;
		case ST_CSUM1:
		case ST_CSUM2:
			v = rsp_hex_digit(c);
			if (v < 0)
				d->bad_digit = true;
			d->rx_sum = (uint8_t)(d->rx_sum << 4 | (v & 0xf));
			if (d->state++ == ST_CSUM1)
				break;
			finish(d, out);
			goto done;
		}
	}
done:
	*consumed = i;
	return out->event;
}

ssize_t rsp_encode(uint8_t *out, size_t cap, const uint8_t *payload,
		   size_t len, unsigned flags)
{
	size_t o = 0;
	uint8_t sum = 0;

	if (cap < 4)
		return -ENOSPC;
	out[o++] = '$';
	for (size_t i = 0; i < len;) {
		uint8_t b = payload[i];

		if (!(flags & RSP_ENC_RLE)) {
			/* Without run-length encoding a plain run goes out
			 * as one copy. */
			size_t n = plain_run(payload + i, len - i);

			if (n > 0) {
				if (cap - o < n + 3)
					return -ENOSPC;
				memcpy(out + o, payload + i, n);
				sum += sum_bytes(payload + i, n);
				o += n;
				i += n;
				continue;
			}
		}

		/* The bytes a plain run stops at are the ones to escape. */
		if (special[b]) {
			if (cap - o < 2 + 3)
				return -ENOSPC;
			out[o++] = '}';
			out[o++] = b ^ 0x20;
			sum += (uint8_t)('}' + (b ^ 0x20));
			i++;
			continue;
		}
		if (cap - o < 1 + 3)
			return -ENOSPC;
		out[o++] = b;
		sum += b;
		i++;
		if (!(flags & RSP_ENC_RLE))
			continue;
		size_t run = 0;

		while (i + run < len && payload[i + run] == b &&
		       run < RLE_MAX_REPEAT)
			run++;
		/* Counts below 3 would need non-printable count bytes and
		 * save nothing; 6 and 7 would be '#' and '$', which the
		 * manual forbids: send 5 and let the rest follow. */
		if (run < 3)
			continue;
		if (run == 6 || run == 7)
			run = 5;
		if (cap - o < 2 + 3)
			return -ENOSPC;
		out[o++] = '*';
		out[o++] = (uint8_t)(run + RLE_BIAS);
		sum += (uint8_t)('*' + run + RLE_BIAS);
		i += run;
	}
	if (cap - o < 3)
		return -ENOSPC;
	out[o++] = '#';
	out[o++] = (uint8_t)hexdig[sum >> 4];
	out[o++] = (uint8_t)hexdig[sum & 0xf];
	return (ssize_t)o;
}
