/*
 * reply.c - reply payload builders (GDB manual, "Packets" for the reply of
 * each command, "Stop Reply Packets", "General Query Packets" for qXfer).
 */
#include <errno.h>
#include <string.h>

#include "rsp_codec.h"
#include "rsp_reply.h"

void rsp_reply_init(struct rsp_reply *r, uint8_t *buf, size_t cap)
{
	r->buf = buf;
	r->cap = cap;
	r->len = 0;
	r->overflow = false;
}

void rsp_reply_reset(struct rsp_reply *r)
{
	r->len = 0;
	r->overflow = false;
}

int rsp_reply_status(const struct rsp_reply *r)
{
	return r->overflow ? -ENOSPC : 0;
}

ssize_t rsp_reply_frame(const struct rsp_reply *r, uint8_t *out, size_t cap,
			unsigned flags)
{
	if (r->overflow)
		return -ENOSPC;
	return rsp_encode(out, cap, r->buf, r->len, flags);
}

/* Room for n more bytes?  Marks the reply overflowed if not. */
static bool room(struct rsp_reply *r, size_t n)
{
	if (r->overflow || n > r->cap - r->len) {
		r->overflow = true;
		return false;
	}
	return true;
}

void rsp_reply_bytes(struct rsp_reply *r, const void *data, size_t len)
{
	if (!room(r, len))
		return;
	if (len)
		memcpy(r->buf + r->len, data, len);
	r->len += len;
}

void rsp_reply_str(struct rsp_reply *r, const char *s)
{
	rsp_reply_bytes(r, s, strlen(s));
}

void rsp_reply_char(struct rsp_reply *r, uint8_t c)
{
	rsp_reply_bytes(r, &c, 1);
}

void rsp_reply_hex(struct rsp_reply *r, const void *data, size_t len)
{
	if (len > (SIZE_MAX - 1) / 2 || !room(r, 2 * len))
		return;
	r->len += rsp_hex_encode(r->buf + r->len, data, len);
}

void rsp_reply_hex_u8(struct rsp_reply *r, uint8_t v)
{
	rsp_reply_hex(r, &v, 1);
}

void rsp_reply_hex_u64(struct rsp_reply *r, uint64_t v)
{
	static const char d[] = "0123456789abcdef";
	uint8_t tmp[16];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (uint8_t)d[v & 0xf];
		v >>= 4;
	} while (v);
	rsp_reply_bytes(r, tmp + sizeof(tmp) - n, n);
}

static void id(struct rsp_reply *r, int64_t v)
{
	if (v < 0)
		rsp_reply_str(r, "-1");
	else
		rsp_reply_hex_u64(r, (uint64_t)v);
}

void rsp_reply_thread_id(struct rsp_reply *r, const struct rsp_thread_id *t,
			 bool multiprocess)
{
	if (multiprocess) {
		rsp_reply_char(r, 'p');
		id(r, t->has_pid ? t->pid : 1);
		rsp_reply_char(r, '.');
	}
	id(r, t->tid);
}

void rsp_reply_ok(struct rsp_reply *r)
{
	rsp_reply_str(r, "OK");
}

void rsp_reply_error(struct rsp_reply *r, uint8_t code)
{
	rsp_reply_char(r, 'E');
	rsp_reply_hex_u8(r, code);
}

void rsp_reply_mem_hex(struct rsp_reply *r, const void *data, size_t len)
{
	rsp_reply_hex(r, data, len);
}

void rsp_reply_mem_bin(struct rsp_reply *r, const void *data, size_t len)
{
	/* "x addr,length" replies 'b' then the bytes, so that an empty read
	 * is still distinguishable from an unsupported packet. */
	if (len == SIZE_MAX || !room(r, len + 1))
		return;
	rsp_reply_char(r, 'b');
	rsp_reply_bytes(r, data, len);
}

size_t rsp_reply_xfer(struct rsp_reply *r, const void *doc, size_t doclen,
		      uint64_t offset, uint64_t length)
{
	size_t n, space;

	if (offset >= doclen) {
		rsp_reply_char(r, 'l');
		return 0;
	}
	n = doclen - (size_t)offset;
	if (length < n)
		n = (size_t)length;
	space = r->overflow || r->len >= r->cap ? 0 : r->cap - r->len - 1;
	if (n > space)
		n = space;
	if (!room(r, 1))
		return 0;
	/* 'm': "more data follows"; 'l': "this is the last". */
	rsp_reply_char(r, offset + n < doclen ? 'm' : 'l');
	rsp_reply_bytes(r, (const uint8_t *)doc + offset, n);
	return n;
}

void rsp_reply_console(struct rsp_reply *r, const void *text, size_t len)
{
	rsp_reply_char(r, 'O');
	rsp_reply_hex(r, text, len);
}

static void stop_reason(struct rsp_reply *r, const struct rsp_stop *s)
{
	static const char *const name[] = {
		[RSP_STOP_SWBREAK] = "swbreak",
		[RSP_STOP_HWBREAK] = "hwbreak",
		[RSP_STOP_WATCH] = "watch",
		[RSP_STOP_RWATCH] = "rwatch",
		[RSP_STOP_AWATCH] = "awatch",
	};

	if (s->reason == RSP_STOP_NONE || s->reason > RSP_STOP_AWATCH)
		return;
	rsp_reply_str(r, name[s->reason]);
	rsp_reply_char(r, ':');
	/* watch/rwatch/awatch carry the data address; swbreak/hwbreak
	 * carry nothing ("Stop Reply Packets"). */
	if (s->reason >= RSP_STOP_WATCH)
		rsp_reply_hex_u64(r, s->watch_addr);
	rsp_reply_char(r, ';');
}

void rsp_reply_stop(struct rsp_reply *r, const struct rsp_stop *s)
{
	switch (s->kind) {
	case RSP_STOP_EXITED:
	case RSP_STOP_TERMINATED:
		rsp_reply_char(r, s->kind == RSP_STOP_EXITED ? 'W' : 'X');
		rsp_reply_hex_u8(r, s->code);
		if (s->multiprocess) {
			rsp_reply_str(r, ";process:");
			rsp_reply_hex_u64(r, (uint64_t)s->pid);
		}
		return;
	case RSP_STOP_SIGNAL:
		break;
	}
	if (!s->has_thread && s->core < 0 && s->reason == RSP_STOP_NONE &&
	    s->nregs == 0) {
		rsp_reply_char(r, 'S');
		rsp_reply_hex_u8(r, s->code);
		return;
	}
	/* "T AA n1:r1;n2:r2;...": every pair ends with ';' (gdb's
	 * remote_parse_stop_reply insists); the order of pairs is free. */
	rsp_reply_char(r, 'T');
	rsp_reply_hex_u8(r, s->code);
	for (size_t i = 0; i < s->nregs; i++) {
		/* Two digits at least, as gdbserver sends them: some
		 * clients other than gdb expect that. */
		if (s->regs[i].regno < 0x10)
			rsp_reply_char(r, '0');
		rsp_reply_hex_u64(r, s->regs[i].regno);
		rsp_reply_char(r, ':');
		rsp_reply_hex(r, s->regs[i].value, s->regs[i].len);
		rsp_reply_char(r, ';');
	}
	if (s->has_thread) {
		rsp_reply_str(r, "thread:");
		rsp_reply_thread_id(r, &s->thread, s->multiprocess);
		rsp_reply_char(r, ';');
	}
	if (s->core >= 0) {
		rsp_reply_str(r, "core:");
		rsp_reply_hex_u64(r, (uint64_t)s->core);
		rsp_reply_char(r, ';');
	}
	stop_reason(r, s);
}
