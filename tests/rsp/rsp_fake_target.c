/*
 * rsp_fake_target - test helper: a minimal GDB remote target built only on
 * the rsp codec, spoken to by the real gdb over a pipe
 * (`target remote | rsp_fake_target`).  One thread, a register file with
 * known values, 64 KiB of memory at FAKE_BASE.  It exists to prove that
 * what the codec frames, parses and builds is what gdb sends and accepts:
 * acks then no-ack mode, run-length encoded replies, qXfer chunking of the
 * target description, g/G/p/P, m/M/X, vCont and T stop replies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rsp.h"

#define FAKE_BASE 0xffffffff81000000ull
#define FAKE_SIZE 0x10000u
#define PACKET_SIZE 0x4000u

static uint8_t memory[FAKE_SIZE];
static struct rsp_amd64_regfile regs;
static char tdesc[16384];
static size_t tdesc_len;
static char threads[512];
static size_t threads_len;
static bool noack;

static void put(const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			exit(1);
		p += w;
		n -= (size_t)w;
	}
}

static void send_reply(const struct rsp_reply *r)
{
	static uint8_t out[2 * PACKET_SIZE + 8];
	ssize_t n = rsp_reply_frame(r, out, sizeof(out), RSP_ENC_RLE);

	if (n < 0)
		exit(2);
	put(out, (size_t)n);
}

static bool mem_range(uint64_t addr, uint64_t len)
{
	return addr >= FAKE_BASE && len <= FAKE_SIZE &&
	       addr - FAKE_BASE <= FAKE_SIZE - len;
}

static void stop_reply(struct rsp_reply *r)
{
	static const uint16_t want[] = { RSP_AMD64_RBP, RSP_AMD64_RSP,
					 RSP_AMD64_RIP };
	static const struct rsp_stop s = {
		.kind = RSP_STOP_SIGNAL, .code = 5, .has_thread = true,
		.thread = { .tid = 1 }, .core = 0,
	};

	rsp_reply_stop_regs(r, &s, &regs, want, 3);
}

/* Returns false when the session is over. */
static bool serve(const struct rsp_command *c, struct rsp_reply *r)
{
	uint8_t tmp[PACKET_SIZE];

	switch (c->kind) {
	case RSP_CMD_QSUPPORTED:
		rsp_reply_str(r, "PacketSize=");
		rsp_reply_hex_u64(r, PACKET_SIZE);
		rsp_reply_str(r, ";qXfer:features:read+;qXfer:threads:read+;"
				 "QStartNoAckMode+;vContSupported+");
		break;
	case RSP_CMD_START_NOACK:
		rsp_reply_ok(r);
		noack = true;
		break;
	case RSP_CMD_HALT_REASON:
		stop_reply(r);
		break;
	case RSP_CMD_READ_REGS:
		rsp_reply_regs(r, &regs);
		break;
	case RSP_CMD_WRITE_REGS:
		if (rsp_regfile_write_g(&regs, c->u.regs.hex, 2 * c->u.regs.len,
					NULL))
			rsp_reply_error(r, 0x16);
		else
			rsp_reply_ok(r);
		break;
	case RSP_CMD_READ_REG:
		if (rsp_reply_reg(r, &regs, c->u.reg.regno))
			rsp_reply_error(r, 0x16);
		break;
	case RSP_CMD_WRITE_REG:
		if (rsp_regfile_write_p(&regs, c->u.reg.regno,
					c->u.reg.value.hex,
					2 * c->u.reg.value.len))
			rsp_reply_error(r, 0x16);
		else
			rsp_reply_ok(r);
		break;
	case RSP_CMD_READ_MEM:
		if (!mem_range(c->u.mem.addr, c->u.mem.len) ||
		    c->u.mem.len > PACKET_SIZE / 2)
			rsp_reply_error(r, 0x0e);
		else
			rsp_reply_mem_hex(r, memory + (c->u.mem.addr - FAKE_BASE),
					  c->u.mem.len);
		break;
	case RSP_CMD_WRITE_MEM:
		if (!mem_range(c->u.mem.addr, c->u.mem.len) ||
		    rsp_hex_decode(tmp, sizeof(tmp), c->u.mem.data,
				   2 * c->u.mem.len) < 0) {
			rsp_reply_error(r, 0x0e);
			break;
		}
		memcpy(memory + (c->u.mem.addr - FAKE_BASE), tmp, c->u.mem.len);
		rsp_reply_ok(r);
		break;
	case RSP_CMD_WRITE_MEM_BIN:
		if (c->u.mem.len && !mem_range(c->u.mem.addr, c->u.mem.len)) {
			rsp_reply_error(r, 0x0e);
			break;
		}
		if (c->u.mem.len)
			memcpy(memory + (c->u.mem.addr - FAKE_BASE),
			       c->u.mem.data, c->u.mem.len);
		rsp_reply_ok(r);
		break;
	case RSP_CMD_QXFER_READ:
		if (c->u.xfer.object == RSP_XFER_THREADS) {
			rsp_reply_xfer(r, threads, threads_len, c->u.xfer.offset,
				       c->u.xfer.length);
			break;
		}
		if (c->u.xfer.object != RSP_XFER_FEATURES ||
		    c->u.xfer.annex_len != 10 ||
		    memcmp(c->u.xfer.annex, "target.xml", 10) != 0) {
			rsp_reply_error(r, 0x00);
			break;
		}
		rsp_reply_xfer(r, tdesc, tdesc_len, c->u.xfer.offset,
			       c->u.xfer.length);
		break;
	case RSP_CMD_QFTHREADINFO:
		rsp_reply_str(r, "m1");
		break;
	case RSP_CMD_QSTHREADINFO:
		rsp_reply_str(r, "l");
		break;
	case RSP_CMD_QC:
		rsp_reply_str(r, "QC1");
		break;
	case RSP_CMD_QATTACHED:
		rsp_reply_str(r, "1");
		break;
	case RSP_CMD_SET_THREAD:
	case RSP_CMD_THREAD_ALIVE:
	case RSP_CMD_INSERT_BP:
	case RSP_CMD_REMOVE_BP:
		rsp_reply_ok(r);
		break;
	case RSP_CMD_VCONT_QUERY:
		rsp_reply_str(r, "vCont;c;C;s;S;t");
		break;
	case RSP_CMD_VCONT:
	case RSP_CMD_STEP:
	case RSP_CMD_CONTINUE:
		/* Every resume "executes" one 4-byte instruction and stops. */
		regs.rip += 4;
		stop_reply(r);
		break;
	case RSP_CMD_DETACH:
		rsp_reply_ok(r);
		send_reply(r);
		return false;
	case RSP_CMD_KILL:
		return false;
	default:
		break;
	}
	send_reply(r);
	return true;
}

int main(void)
{
	static uint8_t pbuf[PACKET_SIZE], in[4096], rbuf[PACKET_SIZE];
	struct rsp_decoder d;
	struct rsp_reply r;

	for (size_t i = 0; i < FAKE_SIZE; i++)
		memory[i] = (uint8_t)(i * 7 + (i >> 8));
	for (unsigned i = 0; i < 16; i++)
		regs.gpr[i] = 0x1111111111111111ull * (i % 15 + 1);
	regs.gpr[RSP_AMD64_RSP] = 0xffffc90000013f00ull;
	regs.rip = FAKE_BASE + 0x100;
	regs.eflags = 0x246;
	regs.seg[0] = 0x10;
	regs.seg[1] = 0x18;
	regs.fpu[0] = 0x37f;
	regs.mxcsr = 0x1f80;
	regs.cr0 = 0x80050033;
	regs.cr3 = 0x10c8000;
	regs.cr4 = 0x3506f0;
	regs.efer = 0xd01;
	regs.kernel_gs_base = 0xffff88807fc00000ull;
	static const struct rsp_thread_info vcpu = {
		.id = { .tid = 1 }, .core = 0, .name = "vcpu<0>",
		.extra = "paused & \"well\"",
	};

	threads_len = rsp_threads_xml_write(threads, sizeof(threads), &vcpu, 1,
					    false);
	if (threads_len >= sizeof(threads))
		return 2;
	tdesc_len = rsp_tdesc_write(tdesc, sizeof(tdesc));
	if (tdesc_len >= sizeof(tdesc))
		return 2;
	rsp_decoder_init(&d, pbuf, sizeof(pbuf));
	rsp_reply_init(&r, rbuf, sizeof(rbuf));
	for (;;) {
		ssize_t n = read(0, in, sizeof(in));
		const uint8_t *p = in;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return 0;
		while (n > 0) {
			struct rsp_decoded out;
			struct rsp_command cmd;
			size_t used;

			rsp_decoder_feed(&d, p, (size_t)n, &used, &out);
			p += used;
			n -= (ssize_t)used;
			if (out.reply)
				put(&out.reply, 1);
			if (out.event == RSP_EV_TOO_LONG ||
			    out.event == RSP_EV_MALFORMED) {
				rsp_reply_reset(&r);
				rsp_reply_error(&r, 0x16);
				send_reply(&r);
			}
			if (out.event != RSP_EV_PACKET)
				continue;
			rsp_reply_reset(&r);
			if (rsp_parse(out.data, out.len, &cmd) != 0) {
				rsp_reply_error(&r, 0x16);
				send_reply(&r);
				continue;
			}
			if (!serve(&cmd, &r))
				return 0;
			/* No-ack mode starts after the OK went out. */
			rsp_decoder_set_noack(&d, noack);
		}
	}
}
