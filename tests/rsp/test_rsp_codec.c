/* Unit tests: the byte-fed decoder, the encoder and the hex helpers. */
#include <errno.h>

#include "rsp_test.h"

struct ev {
	enum rsp_event event;
	uint8_t reply;
	uint8_t data[512];
	size_t len;
};

/* Feed in[0..len) in chunks of `chunk` bytes (0: all at once), collecting
 * every event.  Returns the number of events. */
static size_t run(struct rsp_decoder *d, const uint8_t *in, size_t len,
		  size_t chunk, struct ev *evs, size_t max)
{
	size_t n = 0, off = 0;

	while (off < len) {
		size_t part = chunk && chunk < len - off ? chunk : len - off;
		const uint8_t *p = in + off;

		off += part;
		while (part > 0) {
			struct rsp_decoded out;
			size_t used = 0;
			enum rsp_event e = rsp_decoder_feed(d, p, part, &used,
							    &out);

			assert_true(used > 0 && used <= part);
			p += used;
			part -= used;
			assert_int_equal(e, out.event);
			if (e == RSP_EV_NEED_MORE) {
				assert_int_equal(part, 0);
				assert_int_equal(out.reply, 0);
				continue;
			}
			assert_true(n < max);
			evs[n].event = e;
			evs[n].reply = out.reply;
			evs[n].len = out.len;
			if (e == RSP_EV_PACKET) {
				assert_true(out.len <= sizeof(evs[n].data));
				memcpy(evs[n].data, out.data, out.len);
			} else {
				assert_null(out.data);
				assert_int_equal(out.len, 0);
			}
			n++;
		}
	}
	return n;
}

static uint8_t pbuf[256];

static void dec_init(struct rsp_decoder *d, size_t cap)
{
	rsp_decoder_init(d, pbuf, cap);
}

#define assert_packet(e, lit) do { \
	assert_int_equal((e).event, RSP_EV_PACKET); \
	assert_int_equal((e).len, sizeof(lit) - 1); \
	assert_memory_equal((e).data, lit, sizeof(lit) - 1); \
} while (0)

static void simple_packet(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	/* 'g' is 0x67: the checksum of a one-byte packet is the byte. */
	assert_int_equal(run(&d, S("$g#67"), 0, e, 4), 1);
	assert_packet(e[0], "g");
	assert_int_equal(e[0].reply, '+');
	assert_int_equal(d.stats.packets, 1);
}

static void empty_packet(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	assert_int_equal(run(&d, S("$#00"), 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_PACKET);
	assert_int_equal(e[0].len, 0);
	assert_int_equal(e[0].reply, '+');
}

static const char stream[] =
	"+$qSupported:multiprocess+;swbreak+#1b-"
	"$m0,4#fd\x03" "$?#3f+$vCont;c:p1.-1#0f";

static void check_stream(struct ev *e, size_t n)
{
	assert_int_equal(n, 8);
	assert_int_equal(e[0].event, RSP_EV_ACK);
	assert_int_equal(e[0].reply, 0);
	assert_packet(e[1], "qSupported:multiprocess+;swbreak+");
	assert_int_equal(e[2].event, RSP_EV_NAK);
	assert_packet(e[3], "m0,4");
	assert_int_equal(e[4].event, RSP_EV_INTERRUPT);
	assert_packet(e[5], "?");
	assert_int_equal(e[6].event, RSP_EV_ACK);
	assert_packet(e[7], "vCont;c:p1.-1");
}

static void split_and_coalesced(void **state)
{
	/* The same stream gives the same events however the reads split
	 * it: all at once, byte by byte, and every chunk size between. */
	for (size_t chunk = 0; chunk <= sizeof(stream); chunk++) {
		struct rsp_decoder d;
		struct ev e[16];
		size_t n;

		dec_init(&d, sizeof(pbuf));
		n = run(&d, (const uint8_t *)stream, sizeof(stream) - 1, chunk,
			e, 16);
		check_stream(e, n);
	}
}

static void consumed_stops_at_event(void **state)
{
	struct rsp_decoder d;
	struct rsp_decoded out;
	size_t used;
	const uint8_t in[] = "$g#67$?#3f";

	dec_init(&d, sizeof(pbuf));
	assert_int_equal(rsp_decoder_feed(&d, in, 10, &used, &out),
			 RSP_EV_PACKET);
	assert_int_equal(used, 5);
	assert_int_equal(rsp_decoder_feed(&d, in + 5, 5, &used, &out),
			 RSP_EV_PACKET);
	assert_int_equal(used, 5);
	assert_int_equal(out.len, 1);
	assert_int_equal(out.data[0], '?');
	/* Partial input: everything consumed, nothing reported. */
	assert_int_equal(rsp_decoder_feed(&d, in, 3, &used, &out),
			 RSP_EV_NEED_MORE);
	assert_int_equal(used, 3);
	assert_int_equal(rsp_decoder_feed(&d, in + 3, 2, &used, &out),
			 RSP_EV_PACKET);
	assert_int_equal(used, 2);
}

static void bad_checksum(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	assert_int_equal(run(&d, S("$g#68$g#67"), 0, e, 4), 2);
	assert_int_equal(e[0].event, RSP_EV_BAD_CHECKSUM);
	assert_int_equal(e[0].reply, '-');
	assert_packet(e[1], "g");
	assert_int_equal(d.stats.bad_checksums, 1);
	/* Digits that are not hex are a damaged checksum too. */
	assert_int_equal(run(&d, S("$g#6g$g#g7$g#$$"), 0, e, 4), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(e[i].event, RSP_EV_BAD_CHECKSUM);
	/* Upper-case digits are fine. */
	assert_int_equal(run(&d, S("$OK#9A"), 0, e, 4), 1);
	assert_packet(e[0], "OK");
}

static void interrupt_only_between_packets(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	/* Inside a packet 0x03 is data (X packets carry raw bytes). */
	assert_int_equal(run(&d, S("\x03$a\x03#64\x03"), 1, e, 4), 3);
	assert_int_equal(e[0].event, RSP_EV_INTERRUPT);
	assert_int_equal(e[0].reply, 0);
	assert_packet(e[1], "a\x03");
	assert_int_equal(e[2].event, RSP_EV_INTERRUPT);
}

static void garbage_and_restart(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	assert_int_equal(run(&d, S("xyz\n\r#00$g#67"), 0, e, 4), 1);
	assert_packet(e[0], "g");
	assert_int_equal(d.stats.garbage, 8);
	/* A '$' inside a packet: the cut one is dropped, the new one kept. */
	assert_int_equal(run(&d, S("$m10,$g#67"), 0, e, 4), 1);
	assert_packet(e[0], "g");
	assert_int_equal(d.stats.restarts, 1);
	assert_int_equal(d.stats.garbage, 8);
}

static void escapes(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];
	/* '}' then byte ^ 0x20 for each of # $ } * and for a plain byte. */
	const uint8_t in[] = { '$', 'X', '}', 0x03, '}', 0x04, '}', 0x5d, '}',
			       0x0a, '}', 'A', '#', 0, 0 };
	uint8_t sum = 0;
	char cs[3];

	for (size_t i = 1; i < 12; i++)
		sum += in[i];
	snprintf(cs, sizeof(cs), "%02x", sum);
	uint8_t pkt[sizeof(in)];

	memcpy(pkt, in, sizeof(in));
	pkt[13] = (uint8_t)cs[0];
	pkt[14] = (uint8_t)cs[1];
	dec_init(&d, sizeof(pbuf));
	for (size_t chunk = 0; chunk < 3; chunk++) {
		assert_int_equal(run(&d, pkt, sizeof(pkt), chunk, e, 4), 1);
		assert_packet(e[0], "X#$}*a");
	}
}

/* Frame a raw body with a correct checksum. */
static size_t frame(uint8_t *out, const char *body, size_t n)
{
	uint8_t sum = 0;

	out[0] = '$';
	memcpy(out + 1, body, n);
	for (size_t i = 0; i < n; i++)
		sum += (uint8_t)body[i];
	snprintf((char *)out + 1 + n, 4, "#%02x", sum);
	return n + 4;
}

#define FRAME(out, lit) frame(out, lit, sizeof(lit) - 1)

static void run_length(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];
	uint8_t f[300];
	size_t n;

	dec_init(&d, sizeof(pbuf));
	/* ' ' (32) = 3 more: "0* " is "0000" (manual's example). */
	n = FRAME(f, "0* ");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "0000");
	/* '~' (126) = 97 more. */
	n = FRAME(f, "a0*~b");
	assert_int_equal(run(&d, f, n, 1, e, 4), 1);
	assert_int_equal(e[0].len, 100);
	assert_int_equal(e[0].data[0], 'a');
	for (size_t i = 1; i < 99; i++)
		assert_int_equal(e[0].data[i], '0');
	assert_int_equal(e[0].data[99], 'b');
	/* The count byte is taken raw even if it is '#' (6 more), as gdb's
	 * read_frame does; the frame ends at the next '#'. */
	n = FRAME(f, "x*#");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "xxxxxxx");
	/* Run after run repeats the same character. */
	n = FRAME(f, "5* * ");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "5555555");
	/* gdb expands runs on raw bytes before undoing escapes: after "}]"
	 * (an escaped '}') the repeated raw byte is ']' itself. */
	n = FRAME(f, "}]*!");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "}]]]]");
	/* A run of the escape character escapes the following copies. */
	n = FRAME(f, "}}*!");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "]]]");
}

static void malformed(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];
	uint8_t f[64];
	size_t n;

	dec_init(&d, sizeof(pbuf));
	/* '*' with nothing before it. */
	n = FRAME(f, "* ");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_MALFORMED);
	assert_int_equal(e[0].reply, '+');
	/* Count byte below 30: a repeat of zero or less. */
	n = FRAME(f, "a*\x1d");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_MALFORMED);
	/* 30 is the smallest count gdb takes: one more. */
	n = FRAME(f, "a*\x1e");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "aa");
	/* A dangling escape. */
	n = FRAME(f, "ab}");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_MALFORMED);
	assert_int_equal(d.stats.malformed, 3);
	/* And the decoder is fine afterwards. */
	assert_int_equal(run(&d, S("$g#67"), 0, e, 4), 1);
	assert_packet(e[0], "g");
}

static void too_long(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];
	uint8_t f[64];
	size_t n;

	memset(pbuf, 0xee, sizeof(pbuf));
	rsp_decoder_init(&d, pbuf, 8);
	n = FRAME(f, "12345678");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_packet(e[0], "12345678");
	n = FRAME(f, "123456789abc");
	for (size_t chunk = 0; chunk < 4; chunk++) {
		assert_int_equal(run(&d, f, n, chunk, e, 4), 1);
		assert_int_equal(e[0].event, RSP_EV_TOO_LONG);
		assert_int_equal(e[0].reply, '+');
	}
	/* Run-length expansion past the limit, and escapes at the edge. */
	n = FRAME(f, "0*~");
	assert_int_equal(run(&d, f, n, 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_TOO_LONG);
	n = FRAME(f, "1234567}]}]");
	assert_int_equal(run(&d, f, n, 1, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_TOO_LONG);
	for (size_t i = 8; i < sizeof(pbuf); i++)
		assert_int_equal(pbuf[i], 0xee);
	/* A damaged oversize frame is a bad checksum (resend), not too long. */
	assert_int_equal(run(&d, S("$123456789#00"), 0, e, 4), 1);
	assert_int_equal(e[0].event, RSP_EV_BAD_CHECKSUM);
	assert_int_equal(d.stats.too_long, 6);
	/* Zero capacity: only the empty packet fits. */
	memset(pbuf, 0xee, sizeof(pbuf));
	rsp_decoder_init(&d, pbuf, 0);
	assert_int_equal(run(&d, S("$#00$g#67"), 0, e, 4), 2);
	assert_int_equal(e[0].event, RSP_EV_PACKET);
	assert_int_equal(e[1].event, RSP_EV_TOO_LONG);
	for (size_t i = 0; i < sizeof(pbuf); i++)
		assert_int_equal(pbuf[i], 0xee);
}

static void noack(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	rsp_decoder_set_noack(&d, true);
	assert_int_equal(run(&d, S("$g#67$g#00+"), 0, e, 4), 3);
	assert_packet(e[0], "g");
	assert_int_equal(e[0].reply, 0);
	assert_int_equal(e[1].event, RSP_EV_BAD_CHECKSUM);
	assert_int_equal(e[1].reply, 0);
	assert_int_equal(e[2].event, RSP_EV_ACK);
	rsp_decoder_set_noack(&d, false);
	assert_int_equal(run(&d, S("$g#67"), 0, e, 4), 1);
	assert_int_equal(e[0].reply, '+');
}

static void reset(void **state)
{
	struct rsp_decoder d;
	struct ev e[4];

	dec_init(&d, sizeof(pbuf));
	assert_int_equal(run(&d, S("$m12"), 0, e, 4), 0);
	rsp_decoder_reset(&d);
	assert_int_equal(run(&d, S("34#00$g#67"), 0, e, 4), 1);
	assert_packet(e[0], "g");
}

/* --- encoder ---------------------------------------------------------- */

/* Framed output must equal lit (which holds no NUL) byte for byte. */
static void enc_check(const uint8_t *payload, size_t len, unsigned flags,
		      const char *lit)
{
	uint8_t o[600];
	ssize_t n = rsp_encode(o, sizeof(o), payload, len, flags);

	assert_int_equal(n, strlen(lit));
	assert_memory_equal(o, lit, strlen(lit));
}

#define assert_encoded(...) enc_check(__VA_ARGS__)

static void encode_exact(void **state)
{
	assert_encoded(S("OK"), 0, "$OK#9a");
	assert_encoded(S(""), 0, "$#00");
	assert_encoded(S(""), RSP_ENC_RLE, "$#00");
	/* # $ } * each become '}' and the byte ^ 0x20; the checksum counts
	 * the bytes as sent. */
	assert_encoded(S("#$}*"), 0, "$}\x03}\x04}]}\x0a#62");
	/* 0x03 and high bytes go as they are. */
	assert_encoded(S("\x03\xff"), 0, "$\x03\xff#02");
}

static void encode_rle(void **state)
{
	uint8_t zeros[300];

	memset(zeros, '0', sizeof(zeros));
	/* 4 equal bytes: one and 3 more -> "0* ". */
	assert_encoded(zeros, 4, RSP_ENC_RLE, "$0* #7a");
	/* 3 equal bytes gain nothing: sent as they are. */
	assert_encoded(zeros, 3, RSP_ENC_RLE, "$000#90");
	/* 7 and 8 equal bytes: counts of 6 and 7 would be '#' and '$'. */
	assert_encoded(zeros, 7, RSP_ENC_RLE, "$0*\"0#ac");
	assert_encoded(zeros, 8, RSP_ENC_RLE, "$0*\"00#dc");
	/* 10: one and 9 more ('&'). */
	assert_encoded(zeros, 10, RSP_ENC_RLE, "$0*&#80");
	/* 98 is the longest single run ('~'); 99 needs a second piece. */
	assert_encoded(zeros, 98, RSP_ENC_RLE, "$0*~#d8");
	assert_encoded(zeros, 99, RSP_ENC_RLE, "$0*~0#08");
	/* Escaped bytes are never run-length encoded (gdb would repeat the
	 * raw second byte), runs resume after them. */
	assert_encoded(S("****"), RSP_ENC_RLE, "$}\x0a}\x0a}\x0a}\x0a#1c");
	assert_encoded(S("a}bbbb"), RSP_ENC_RLE, "$a}]b* #e7");
	/* Without the flag nothing is compressed. */
	assert_encoded(zeros, 5, 0, "$00000#f0");
}

static void encode_nospace(void **state)
{
	uint8_t o[64];
	uint8_t payload[] = "a#bcdef";
	ssize_t full = rsp_encode(o, sizeof(o), payload, 7, 0);

	assert_int_equal(full, 1 + 8 + 3);
	for (size_t cap = 0; cap < (size_t)full; cap++)
		assert_int_equal(rsp_encode(o, cap, payload, 7, 0), -ENOSPC);
	assert_int_equal(rsp_encode(o, (size_t)full, payload, 7, 0), full);
	assert_true(rsp_encode_bound(7) >= (size_t)full);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint8_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint8_t)rng;
}

static void round_trip(void **state)
{
	static uint8_t payload[256], framed[2 * 256 + 4], buf[256];

	for (int iter = 0; iter < 4000; iter++) {
		size_t len = rnd() % sizeof(payload);
		unsigned flags = iter & 1 ? RSP_ENC_RLE : 0;
		/* Small alphabets make runs and special bytes common. */
		uint8_t alpha = (uint8_t)(iter % 3 == 0 ? 0 : 1 + rnd() % 5);
		struct rsp_decoder d;
		struct rsp_decoded out;
		ssize_t n;
		size_t used;

		for (size_t i = 0; i < len; i++)
			payload[i] = alpha ? (uint8_t)("0#}*$\x03"[rnd() % alpha])
					   : rnd();
		n = rsp_encode(framed, sizeof(framed), payload, len, flags);
		assert_true(n > 0 && (size_t)n <= rsp_encode_bound(len));
		rsp_decoder_init(&d, buf, sizeof(buf));
		assert_int_equal(rsp_decoder_feed(&d, framed, (size_t)n, &used,
						  &out), RSP_EV_PACKET);
		assert_int_equal(used, (size_t)n);
		assert_int_equal(out.len, len);
		assert_memory_equal(out.data, payload, len);
	}
}

static void hex(void **state)
{
	uint8_t out[8];
	uint8_t enc[16];

	assert_int_equal(rsp_hex_decode(out, sizeof(out), S("00fFa9")), 3);
	assert_memory_equal(out, "\x00\xff\xa9", 3);
	assert_int_equal(rsp_hex_decode(out, sizeof(out), S("abc")), -EINVAL);
	assert_int_equal(rsp_hex_decode(out, sizeof(out), S("0g")), -EINVAL);
	assert_int_equal(rsp_hex_decode(out, 1, S("0011")), -ENOSPC);
	assert_int_equal(rsp_hex_decode(out, 0, S("")), 0);
	assert_int_equal(rsp_hex_encode(enc, (const uint8_t *)"\x00\xff\xa9", 3), 6);
	assert_memory_equal(enc, "00ffa9", 6);
	assert_int_equal(rsp_hex_digit('/'), -1);
	assert_int_equal(rsp_hex_digit(':'), -1);
	assert_int_equal(rsp_hex_digit('@'), -1);
	assert_int_equal(rsp_hex_digit('G'), -1);
	assert_int_equal(rsp_hex_digit('`'), -1);
	assert_int_equal(rsp_hex_digit('F'), 15);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simple_packet),
		cmocka_unit_test(empty_packet),
		cmocka_unit_test(split_and_coalesced),
		cmocka_unit_test(consumed_stops_at_event),
		cmocka_unit_test(bad_checksum),
		cmocka_unit_test(interrupt_only_between_packets),
		cmocka_unit_test(garbage_and_restart),
		cmocka_unit_test(escapes),
		cmocka_unit_test(run_length),
		cmocka_unit_test(malformed),
		cmocka_unit_test(too_long),
		cmocka_unit_test(noack),
		cmocka_unit_test(reset),
		cmocka_unit_test(encode_exact),
		cmocka_unit_test(encode_rle),
		cmocka_unit_test(encode_nospace),
		cmocka_unit_test(round_trip),
		cmocka_unit_test(hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
