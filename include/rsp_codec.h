/*
 * rsp_codec.h - GDB Remote Serial Protocol framing: the byte-fed packet
 * decoder, the packet encoder and the hex helpers.
 *
 * Pure code: no I/O, no clock, no allocation, no logging, no globals.  The
 * caller owns every buffer.  See the GDB manual, appendix "Remote Serial
 * Protocol", sections "Overview" (framing, escapes, run-length encoding)
 * and "Packet Acknowledgment" (+/-, no-ack mode).
 */
#ifndef VMISTUB_RSP_CODEC_H
#define VMISTUB_RSP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What one call to rsp_decoder_feed() found. */
enum rsp_event {
	/* Every byte given was consumed and no event completed. */
	RSP_EV_NEED_MORE = 0,
	/* A packet with a good checksum; its payload (escapes and run-length
	 * sequences undone) is in rsp_decoded.data/len. */
	RSP_EV_PACKET,
	/* 0x03 between packets: gdb asks the target to stop ("Interrupts"). */
	RSP_EV_INTERRUPT,
	/* '+' / '-' from gdb about the last packet we sent. */
	RSP_EV_ACK,
	RSP_EV_NAK,
	/* The packet arrived damaged: the checksum did not match or its two
	 * digits were not hex.  The payload is dropped; reply is '-' so gdb
	 * resends.  Checked in no-ack mode too (reply 0 there): the stub
	 * decides what a damaged stream without acks means. */
	RSP_EV_BAD_CHECKSUM,
	/* The frame was intact but its content cannot be decoded: a '*' with
	 * no character before it, a repeat count below 1, or a '}' with
	 * nothing after it.  The payload is dropped. */
	RSP_EV_MALFORMED,
	/* The frame was intact but its decoded payload exceeded the packet
	 * buffer; the excess was discarded, never written.  Like
	 * RSP_EV_MALFORMED: reply is '+' (a resend would be the same bytes)
	 * and the stub answers with an error packet. */
	RSP_EV_TOO_LONG,
};

struct rsp_decoded {
	enum rsp_event event;
	/* The byte the caller must send back now ('+' or '-'), or 0 for none
	 * (no-ack mode, or an event that needs no answer). */
	uint8_t reply;
	/* RSP_EV_PACKET only: the payload, borrowed from the decoder's buffer
	 * until the next rsp_decoder_feed() or rsp_decoder_reset() call. */
	const uint8_t *data;
	size_t len;
};

struct rsp_decoder_stats {
	uint64_t packets;        /* RSP_EV_PACKET delivered */
	uint64_t bad_checksums;
	uint64_t malformed;
	uint64_t too_long;
	uint64_t garbage;        /* bytes skipped between packets */
	uint64_t restarts;       /* '$' inside a packet: the old one dropped */
};

/* Caller-owned.  The fields are private to rsp/; read stats freely. */
struct rsp_decoder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	uint8_t state;
	uint8_t sum;
	uint8_t rx_sum;
	uint8_t last_raw;
	bool have_last;
	bool escape;
	bool overflow;
	bool malformed;
	bool bad_digit;
	bool noack;
	struct rsp_decoder_stats stats;
};

/* buf/cap is where payloads are decoded; cap is the maximum packet size
 * (advertise it to gdb as PacketSize in the qSupported reply). */
void rsp_decoder_init(struct rsp_decoder *d, uint8_t *buf, size_t cap);
/* Forget any partial packet (e.g. a new connection); keeps stats/noack. */
void rsp_decoder_reset(struct rsp_decoder *d);
/* No-ack mode ("QStartNoAckMode"): switch it on after sending the OK. */
void rsp_decoder_set_noack(struct rsp_decoder *d, bool noack);

/*
 * Consume bytes from in[0..len) up to and including the first byte that
 * completes an event, and report that event.  *consumed says how many bytes
 * were used; call again with the rest.  A libev read callback loops:
 *
 *	while (len > 0) {
 *		ev = rsp_decoder_feed(&d, p, len, &used, &out);
 *		p += used; len -= used;
 *		if (out.reply) send the byte out.reply;
 *		handle ev (RSP_EV_NEED_MORE means len is now 0);
 *	}
 *
 * Never reads or writes outside in[0..len) and d->buf[0..cap).
 */
enum rsp_event rsp_decoder_feed(struct rsp_decoder *d, const uint8_t *in,
				size_t len, size_t *consumed,
				struct rsp_decoded *out);

/* rsp_encode() flags. */
#define RSP_ENC_RLE 0x1u  /* run-length encode runs of equal bytes */

/* The worst case framed size of a payload of len bytes: "$" + every byte
 * escaped + "#xx". */
static inline size_t rsp_encode_bound(size_t len)
{
	return 2 * len + 4;
}

/*
 * Frame payload[0..len) as "$...#xx" into out[0..cap): '$', '#', '}' and
 * '*' escaped as '}' followed by the byte XOR 0x20, optional run-length
 * encoding, checksum computed over the bytes as sent.  Returns the framed
 * length, or -ENOSPC (out's content then unspecified).
 */
ssize_t rsp_encode(uint8_t *out, size_t cap, const uint8_t *payload,
		   size_t len, unsigned flags);

/* Hex helpers.  Digits are accepted in either case and written lowercase. */
int rsp_hex_digit(uint8_t c);  /* 0..15, or -1 */
/* Decode hexlen digits (must be even) into out[0..cap); returns the byte
 * count, -EINVAL for an odd count or a non-hex digit, -ENOSPC. */
ssize_t rsp_hex_decode(uint8_t *out, size_t cap, const uint8_t *hex,
		       size_t hexlen);
/* Write 2*len digits into out; returns 2*len. */
size_t rsp_hex_encode(uint8_t *out, const uint8_t *in, size_t len);

#endif
