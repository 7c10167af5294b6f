/*
 * libFuzzer target: the parser on every packet, then what the stub does
 * with the parsed arguments (hex decoding, register writes, qXfer chunks),
 * so every borrowed pointer and length the parser hands out is exercised.
 * The input is one decoded packet, exactly as the decoder delivers it.
 */
#include <stdlib.h>
#include <string.h>

#include "rsp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *p, size_t n, const uint8_t *data,
		   size_t size)
{
	if (n && (p < data || p + n > data + size))
		abort();
}

/* The parser promised h is 2 * len hex digits inside the packet: check
 * both by decoding it. */
static void hex_ok(const struct rsp_hex *h, const uint8_t *data, size_t size)
{
	static uint8_t out[4096];

	inside(h->hex, 2 * h->len, data, size);
	if (h->len <= sizeof(out) &&
	    rsp_hex_decode(out, sizeof(out), h->hex, 2 * h->len) !=
		    (ssize_t)h->len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char xml[16384];
	static uint8_t tmp[4096], rbuf[4096];
	static struct rsp_amd64_regfile f;
	struct rsp_command cmd;
	struct rsp_reply r;
	size_t xlen;
	int rc;

	rc = rsp_parse(data, size, &cmd);
	if (rc > 0 || cmd.kind >= RSP_CMD__COUNT)
		abort();
	(void)rsp_cmd_name(cmd.kind);
	rsp_reply_init(&r, rbuf, sizeof(rbuf));
	if (rc)
		return 0;
	switch (cmd.kind) {
	case RSP_CMD_WRITE_REGS:
		hex_ok(&cmd.u.regs, data, size);
		(void)rsp_regfile_write_g(&f, cmd.u.regs.hex,
					  2 * cmd.u.regs.len, NULL);
		rsp_reply_regs(&r, &f);
		break;
	case RSP_CMD_WRITE_REG:
		hex_ok(&cmd.u.reg.value, data, size);
		(void)rsp_regfile_write_p(&f, cmd.u.reg.regno,
					  cmd.u.reg.value.hex,
					  2 * cmd.u.reg.value.len);
		(void)rsp_reply_reg(&r, &f, cmd.u.reg.regno);
		break;
	case RSP_CMD_READ_REG:
		(void)rsp_reply_reg(&r, &f, cmd.u.reg.regno);
		break;
	case RSP_CMD_WRITE_MEM:
		hex_ok(&(struct rsp_hex){ cmd.u.mem.data, cmd.u.mem.len },
		       data, size);
		break;
	case RSP_CMD_WRITE_MEM_BIN:
		inside(cmd.u.mem.data, cmd.u.mem.len, data, size);
		if (cmd.u.mem.len <= sizeof(tmp))
			memcpy(tmp, cmd.u.mem.data, cmd.u.mem.len);
		break;
	case RSP_CMD_READ_MEM:
	case RSP_CMD_READ_MEM_BIN:
		if (cmd.u.mem.len &&
		    cmd.u.mem.addr + (cmd.u.mem.len - 1) < cmd.u.mem.addr)
			abort();
		break;
	case RSP_CMD_INSERT_BP:
	case RSP_CMD_REMOVE_BP:
		if (cmd.u.bp.ncond > RSP_BP_EXPR_MAX ||
		    cmd.u.bp.ncmd > RSP_BP_EXPR_MAX)
			abort();
		for (size_t i = 0; i < cmd.u.bp.ncond; i++)
			hex_ok(&cmd.u.bp.cond[i], data, size);
		for (size_t i = 0; i < cmd.u.bp.ncmd; i++)
			hex_ok(&cmd.u.bp.cmd[i], data, size);
		break;
	case RSP_CMD_VCONT:
		if (cmd.u.vcont.n == 0 || cmd.u.vcont.n > RSP_VCONT_MAX)
			abort();
		break;
	case RSP_CMD_QRCMD:
		hex_ok(&cmd.u.rcmd, data, size);
		(void)rsp_hex_decode(tmp, sizeof(tmp), cmd.u.rcmd.hex,
				     2 * cmd.u.rcmd.len);
		rsp_reply_console(&r, tmp, cmd.u.rcmd.len < sizeof(tmp) ?
						   cmd.u.rcmd.len : sizeof(tmp));
		break;
	case RSP_CMD_QXFER_READ:
		inside(cmd.u.xfer.annex, cmd.u.xfer.annex_len, data, size);
		xlen = rsp_tdesc_write(xml, sizeof(xml));
		if (xlen >= sizeof(xml))
			abort();
		if (rsp_reply_xfer(&r, xml, xlen, cmd.u.xfer.offset,
				   cmd.u.xfer.length) > xlen)
			abort();
		break;
	case RSP_CMD_QSUPPORTED:
		inside(cmd.u.supported.xml_registers,
		       cmd.u.supported.xml_registers_len, data, size);
		break;
	case RSP_CMD_SET_THREAD:
	case RSP_CMD_THREAD_ALIVE:
	case RSP_CMD_QTHREADEXTRAINFO: {
		struct rsp_thread_id id = cmd.kind == RSP_CMD_SET_THREAD ?
			cmd.u.set_thread.thread : cmd.u.thread;

		rsp_reply_thread_id(&r, &id, id.has_pid);
		break;
	}
	default:
		break;
	}
	if (rsp_reply_status(&r) == 0) {
		static uint8_t out[2 * sizeof(rbuf) + 4];

		if (rsp_reply_frame(&r, out, sizeof(out), RSP_ENC_RLE) < 0)
			abort();
	}
	return 0;
}
