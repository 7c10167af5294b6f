/*
 * commands.c - one declarative table from parsed RSP command to handler.
 *
 * rsp_parse() already matched the packet to a kind at a delimiter (so row
 * order never matters) and typed its arguments; a row says what the
 * handler needs (an attached domain, a stopped one) and handlers write
 * into the reply buffer and return 0, STUB_REPLY_LATER or -errno, which
 * stub_reply_errno() alone turns into a reply.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stub.h"

#define NEEDS_TARGET  0x1u   /* an attached domain */
#define NEEDS_STOPPED 0x2u   /* ... that gdb sees stopped */

typedef int (*stub_cmd_fn)(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r);

struct stub_cmd {
	stub_cmd_fn fn;
	unsigned flags;
};

/* One function maps internal errors to RSP replies: "" for what this
 * platform cannot do (the manual: an empty reply means "not supported"),
 * Exx (the errno) otherwise. */
void
stub_reply_errno(struct rsp_reply *r, int err)
{
	rsp_reply_reset(r);
	if (err == -EOPNOTSUPP)
		return;
	rsp_reply_error(r, (uint8_t)(err < 0 ? -err : err));
}

static unsigned
vcpu_of_tid(const struct stub *s, int64_t tid)
{
	if (tid <= 0 || (uint64_t)tid > s->nvcpus)
		return s->gvcpu;
	return (unsigned)(tid - 1);
}

/* ---- connection ------------------------------------------------------------ */

static int
cmd_supported(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	c->features = cmd->u.supported.features;
	rsp_reply_str(r, "PacketSize=");
	rsp_reply_hex_u64(r, STUB_PACKET_SIZE);
	rsp_reply_str(r, ";QStartNoAckMode+;qXfer:features:read+"
	    ";qXfer:threads:read+;qXfer:osdata:read+;vContSupported+");
	/* Stop reasons vmistub reports when gdb understands them. */
	rsp_reply_str(r, ";swbreak+;hwbreak+");
	return 0;
}

static int
cmd_noack(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	c->noack_next = true;
	rsp_reply_ok(r);
	return 0;
}

static int
cmd_empty(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	return 0;
}

static int
cmd_extended(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	s->extended = true;
	rsp_reply_ok(r);
	return 0;
}

/* ---- stop state -------------------------------------------------------------- */

static int
cmd_halt_reason(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	struct stub_stop st = s->last_stop;

	if (s->v == NULL) {
		if (s->gone)
			stub_exit_reply(s, r);
		else
			rsp_reply_str(r, "W00");   /* nothing attached yet */
		return 0;
	}
	if (!st.valid)
		st = (struct stub_stop){ .valid = true, .signo = 5 };
	stub_stop_reply(s, s->last_stop_vcpu >= 0 ?
	    (unsigned)s->last_stop_vcpu : 0, &st, r);
	return 0;
}

/* ---- registers ------------------------------------------------------------------ */

/* CR8 is not in vmi_regs (a hypercall of its own on Xen, vmi.h): read
 * only when gdb asks for it, alone or with the whole file. */
static bool
wants_cr8(const struct rsp_command *cmd)
{
	bool one = cmd->kind == RSP_CMD_READ_REG ||
	    cmd->kind == RSP_CMD_WRITE_REG;

	return !one || cmd->u.reg.regno == RSP_AMD64_CR8;
}

static void
regfile_cr8(struct stub *s, struct rsp_amd64_regfile *f)
{
	if (vmi_get_cr8(s->v, s->gvcpu, &f->cr8) != 0) {
		f->cr8 = 0;
		rsp_regfile_set_available(f, RSP_AMD64_CR8, false);
	}
}

static int
cmd_read_regs(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	struct rsp_amd64_regfile f;
	struct vmi_regs *regs;
	int ret = stub_regs(s, s->gvcpu, &regs);

	if (ret == -ENODATA) {
		/* A vCPU that is down (never brought up, as with maxvcpus
		 * above vcpus, or taken offline by the guest) has no registers:
		 * gdb shows them <unavailable> rather than failing the thread. */
		memset(&f, 0, sizeof(f));
		for (unsigned i = 0; i < RSP_AMD64_NREGS; i++)
			rsp_regfile_set_available(&f, i, false);
	} else if (ret < 0) {
		return ret;
	} else {
		stub_regfile_from(&f, regs);
		if (wants_cr8(cmd))
			regfile_cr8(s, &f);
	}
	if (cmd->kind == RSP_CMD_READ_REG)
		return rsp_reply_reg(r, &f, cmd->u.reg.regno) ? -EINVAL : 0;
	rsp_reply_regs(r, &f);
	return 0;
}

static int
cmd_write_regs(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	struct rsp_amd64_regfile f;
	struct vmi_regs *regs, copy;
	uint64_t cr8;
	int ret = stub_regs(s, s->gvcpu, &regs);

	if (ret < 0)
		return ret;
	stub_regfile_from(&f, regs);
	if (wants_cr8(cmd))
		regfile_cr8(s, &f);
	cr8 = f.cr8;
	if (cmd->kind == RSP_CMD_WRITE_REG)
		ret = rsp_regfile_write_p(&f, cmd->u.reg.regno,
		    cmd->u.reg.value.hex, 2 * cmd->u.reg.value.len);
	else
		ret = rsp_regfile_write_g(&f, cmd->u.regs.hex,
		    2 * cmd->u.regs.len, NULL);
	if (ret < 0)
		return -EINVAL;
	/* CR8 is read only (vmi.h): a write that changes it is refused
	 * whole, rather than done without it. An error, not the empty reply
	 * of -EOPNOTSUPP: that would tell gdb P is not supported at all. */
	if (f.cr8 != cr8)
		return -EPERM;
	copy = *regs;
	stub_regfile_to(&copy, &f);
	ret = stub_regs_write(s, s->gvcpu, &copy);
	if (ret == 0)
		rsp_reply_ok(r);
	return ret;
}

/* ---- memory ----------------------------------------------------------------------- */

static int
cmd_read_mem(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	static uint8_t buf[STUB_PACKET_SIZE];
	bool bin = cmd->kind == RSP_CMD_READ_MEM_BIN;
	size_t max = bin ? sizeof(buf) : sizeof(buf) / 2;
	size_t len = cmd->u.mem.len < max ? (size_t)cmd->u.mem.len : max;
	size_t done = 0;
	int ret = stub_mem_read(s, cmd->u.mem.addr, buf, len, &done);

	/* A short read is a valid answer (the manual: "fewer bytes than
	 * requested"); nothing at all is an error. */
	if (done == 0 && len > 0)
		return ret < 0 ? ret : -EFAULT;
	if (bin)
		rsp_reply_mem_bin(r, buf, done);
	else
		rsp_reply_mem_hex(r, buf, done);
	return 0;
}

static int
cmd_write_mem(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	static uint8_t buf[STUB_PACKET_SIZE];
	const uint8_t *data = cmd->u.mem.data;
	int ret;

	if (cmd->u.mem.len > sizeof(buf))
		return -E2BIG;
	if (cmd->kind == RSP_CMD_WRITE_MEM) {
		if (rsp_hex_decode(buf, sizeof(buf), data, 2 * cmd->u.mem.len) < 0)
			return -EINVAL;
		data = buf;
	}
	ret = cmd->u.mem.len == 0 ? 0 :
	    stub_mem_write(s, cmd->u.mem.addr, data, (size_t)cmd->u.mem.len);
	if (ret == 0)
		rsp_reply_ok(r);
	return ret;
}

/* ---- execution ------------------------------------------------------------------------ */

static int
cmd_resume(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	struct rsp_vcont_action a = { .op = RSP_VCONT_CONTINUE };
	bool step = cmd->kind == RSP_CMD_STEP || cmd->kind == RSP_CMD_STEP_SIG;

	if (s->v != NULL && !s->running && cmd->u.resume.has_addr) {
		struct vmi_regs *regs, copy;
		int ret = stub_regs(s, s->gvcpu, &regs);

		if (ret < 0)
			return ret;
		copy = *regs;
		copy.g.rip = cmd->u.resume.addr;
		ret = stub_regs_write(s, s->gvcpu, &copy);
		if (ret < 0)
			return ret;
	}
	if (step) {
		/* The legacy s packet steps the current thread alone. */
		a.op = RSP_VCONT_STEP;
		a.has_thread = true;
		a.thread.tid = s->gvcpu + 1;
	}
	return stub_resume(s, &a, 1);
}

static int
cmd_vcont(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	return stub_resume(s, cmd->u.vcont.action, cmd->u.vcont.n);
}

static int
cmd_vcont_query(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	rsp_reply_str(r, "vCont;c;C;t");
	if (s->v == NULL || vmi_has(s->v, VMI_CAP_STEP))
		rsp_reply_str(r, ";s;S;r");
	return 0;
}

static int
cmd_breakpoint(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	int ret = cmd->kind == RSP_CMD_INSERT_BP ? stub_bp_insert(s, cmd) :
	    stub_bp_remove(s, cmd);

	if (ret == 0)
		rsp_reply_ok(r);
	return ret;
}

/* ---- threads ----------------------------------------------------------------------------- */

static int
cmd_set_thread(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	int64_t tid = cmd->u.set_thread.thread.tid;

	if (tid > 0 && (s->v == NULL || (uint64_t)tid > s->nvcpus))
		return -ESRCH;
	if (cmd->u.set_thread.op == 'g')
		s->gvcpu = vcpu_of_tid(s, tid);
	rsp_reply_ok(r);
	return 0;
}

static int
cmd_thread_alive(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	int64_t tid = cmd->u.thread.tid;

	if (tid <= 0 || (uint64_t)tid > s->nvcpus)
		return -ESRCH;
	rsp_reply_ok(r);
	return 0;
}

static int
cmd_thread_info(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	if (cmd->kind == RSP_CMD_QSTHREADINFO || s->v == NULL) {
		rsp_reply_char(r, 'l');
		return 0;
	}
	rsp_reply_char(r, 'm');
	for (unsigned i = 0; i < s->nvcpus; i++) {
		if (i > 0)
			rsp_reply_char(r, ',');
		rsp_reply_hex_u64(r, i + 1);
	}
	return 0;
}

static int
cmd_current_thread(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	rsp_reply_str(r, "QC");
	rsp_reply_hex_u64(r, s->gvcpu + 1);
	return 0;
}

static int
cmd_attached(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	/* "1": an existing domain was attached, so quitting detaches. */
	rsp_reply_char(r, '1');
	return 0;
}

static void
vcpu_extra(struct stub *s, unsigned vcpu, char *buf, size_t cap)
{
	struct vmi_regs *regs;

	int r = stub_regs(s, vcpu, &regs);

	if (r == 0)
		snprintf(buf, cap, "cr3 %#" PRIx64 ", rip %#" PRIx64 "%s",
		    regs->cr3, regs->g.rip,
		    vmi_pending(s->v, vcpu) ? ", held" : "");
	else if (r == -ENODATA)
		snprintf(buf, cap, "offline");
	else
		snprintf(buf, cap, "registers unreadable");
}

static int
cmd_thread_extra(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	char text[160], extra[128];
	int64_t tid = cmd->u.thread.tid;

	if (tid <= 0 || (uint64_t)tid > s->nvcpus)
		return -ESRCH;
	vcpu_extra(s, (unsigned)(tid - 1), extra, sizeof(extra));
	snprintf(text, sizeof(text), "vCPU %u (%s)", (unsigned)(tid - 1), extra);
	rsp_reply_hex(r, text, strlen(text));
	return 0;
}

/* ---- qXfer ---------------------------------------------------------------------------------- */

static void
threads_doc(struct stub *s, struct stub_text *d)
{
	char extra[128];

	stub_text_add(d, "<?xml version=\"1.0\"?>\n<threads>\n");
	for (unsigned i = 0; i < s->nvcpus; i++) {
		vcpu_extra(s, i, extra, sizeof(extra));
		stub_text_add(d, "<thread id=\"%x\" core=\"%x\" name=\"vCPU %u\">"
		    "vCPU %u (%s)</thread>\n", i + 1, i, i, i, extra);
	}
	stub_text_add(d, "</threads>\n");
}

static bool
annex_is(const struct rsp_command *cmd, const char *name)
{
	return cmd->u.xfer.annex_len == strlen(name) &&
	    memcmp(cmd->u.xfer.annex, name, cmd->u.xfer.annex_len) == 0;
}

static int
cmd_xfer(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	static char buf[32768];
	struct stub_text d = { .buf = buf, .cap = sizeof(buf) };
	int ret;

	buf[0] = '\0';
	switch (cmd->u.xfer.object) {
	case RSP_XFER_FEATURES:
		if (!annex_is(cmd, "target.xml") || s->tdesc == NULL)
			return -ENOENT;
		rsp_reply_xfer(r, s->tdesc, s->tdesc_len, cmd->u.xfer.offset,
		    cmd->u.xfer.length);
		return 0;
	case RSP_XFER_THREADS:
		if (s->v == NULL)
			stub_text_add(&d, "<threads/>\n");
		else
			threads_doc(s, &d);
		break;
	case RSP_XFER_OSDATA:
		ret = stub_osdata(s, (const char *)cmd->u.xfer.annex,
		    cmd->u.xfer.annex_len, d.buf, d.cap);
		if (ret < 0)
			return ret;
		d.len = (size_t)ret;
		break;
	}
	rsp_reply_xfer(r, d.buf, d.len, cmd->u.xfer.offset, cmd->u.xfer.length);
	return 0;
}

/* ---- monitor, attach, detach -------------------------------------------------------------- */

static int
cmd_rcmd(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	char text[1024];
	ssize_t n = rsp_hex_decode((uint8_t *)text, sizeof(text) - 1,
	    cmd->u.rcmd.hex, 2 * cmd->u.rcmd.len);

	if (n < 0)
		return -EINVAL;
	text[n] = '\0';
	return stub_monitor(s, text, r);
}

static int
cmd_vattach(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	int ret;

	if (s->v != NULL)
		return -EBUSY;
	if (!cmd->u.process.has_pid || cmd->u.process.pid < 0)
		return -EINVAL;
	s->gone = false;
	ret = stub_attach(s, (uint32_t)cmd->u.process.pid);
	if (ret < 0)
		return ret;
	s->last_stop = (struct stub_stop){ .valid = true, .signo = 5 };
	stub_stop_reply(s, 0, &s->last_stop, r);
	return 0;
}

static int
cmd_detach(struct stub *s, struct stub_conn *c,
    const struct rsp_command *cmd, struct rsp_reply *r)
{
	bool had = s->v != NULL;

	stub_detach(s);
	s->gone = false;
	if (cmd->kind == RSP_CMD_KILL) {
		/* k must not destroy a domain: it is left running. */
		log_info("kill request: detached, domain %u left running",
		    s->domid);
		return 0;
	}
	if (!had && cmd->kind == RSP_CMD_DETACH)
		return -ESRCH;
	rsp_reply_ok(r);
	return 0;
}

static const struct stub_cmd table[RSP_CMD__COUNT] = {
	[RSP_CMD_UNKNOWN]          = { cmd_empty, 0 },
	[RSP_CMD_VMUSTREPLYEMPTY]  = { cmd_empty, 0 },
	[RSP_CMD_QSUPPORTED]       = { cmd_supported, 0 },
	[RSP_CMD_START_NOACK]      = { cmd_noack, 0 },
	[RSP_CMD_EXTENDED]         = { cmd_extended, 0 },
	[RSP_CMD_HALT_REASON]      = { cmd_halt_reason, 0 },
	[RSP_CMD_READ_REGS]        = { cmd_read_regs, NEEDS_STOPPED },
	[RSP_CMD_READ_REG]         = { cmd_read_regs, NEEDS_STOPPED },
	[RSP_CMD_WRITE_REGS]       = { cmd_write_regs, NEEDS_STOPPED },
	[RSP_CMD_WRITE_REG]        = { cmd_write_regs, NEEDS_STOPPED },
	[RSP_CMD_READ_MEM]         = { cmd_read_mem, NEEDS_TARGET },
	[RSP_CMD_READ_MEM_BIN]     = { cmd_read_mem, NEEDS_TARGET },
	[RSP_CMD_WRITE_MEM]        = { cmd_write_mem, NEEDS_TARGET },
	[RSP_CMD_WRITE_MEM_BIN]    = { cmd_write_mem, NEEDS_TARGET },
	[RSP_CMD_CONTINUE]         = { cmd_resume, 0 },
	[RSP_CMD_CONTINUE_SIG]     = { cmd_resume, 0 },
	[RSP_CMD_STEP]             = { cmd_resume, 0 },
	[RSP_CMD_STEP_SIG]         = { cmd_resume, 0 },
	[RSP_CMD_VCONT_QUERY]      = { cmd_vcont_query, 0 },
	[RSP_CMD_VCONT]            = { cmd_vcont, 0 },
	[RSP_CMD_INSERT_BP]        = { cmd_breakpoint, NEEDS_STOPPED },
	[RSP_CMD_REMOVE_BP]        = { cmd_breakpoint, NEEDS_STOPPED },
	[RSP_CMD_SET_THREAD]       = { cmd_set_thread, 0 },
	[RSP_CMD_THREAD_ALIVE]     = { cmd_thread_alive, NEEDS_TARGET },
	[RSP_CMD_QFTHREADINFO]     = { cmd_thread_info, 0 },
	[RSP_CMD_QSTHREADINFO]     = { cmd_thread_info, 0 },
	[RSP_CMD_QC]               = { cmd_current_thread, NEEDS_TARGET },
	[RSP_CMD_QATTACHED]        = { cmd_attached, 0 },
	[RSP_CMD_QTHREADEXTRAINFO] = { cmd_thread_extra, NEEDS_STOPPED },
	[RSP_CMD_QXFER_READ]       = { cmd_xfer, 0 },
	[RSP_CMD_QRCMD]            = { cmd_rcmd, 0 },
	[RSP_CMD_VATTACH]          = { cmd_vattach, 0 },
	[RSP_CMD_VKILL]            = { cmd_detach, 0 },
	[RSP_CMD_DETACH]           = { cmd_detach, 0 },
	[RSP_CMD_KILL]             = { cmd_detach, 0 },
};

void
stub_dispatch(struct stub_conn *c, const uint8_t *pkt, size_t len)
{
	struct stub *s = c->s;
	struct rsp_command cmd;
	const struct stub_cmd *row;
	struct rsp_reply *r = &c->reply;
	int ret = rsp_parse(pkt, len, &cmd);

	rsp_reply_reset(r);
	row = (unsigned)cmd.kind < RSP_CMD__COUNT ? &table[cmd.kind] : NULL;
	if (row == NULL || row->fn == NULL)
		row = &table[RSP_CMD_UNKNOWN];
	if (ret == 0 && (row->flags & (NEEDS_TARGET | NEEDS_STOPPED)) &&
	    s->v == NULL)
		ret = -ESRCH;
	if (ret == 0 && (row->flags & NEEDS_STOPPED) && s->running)
		ret = -EBUSY;
	if (ret == 0)
		ret = row->fn(s, c, &cmd, r);
	if (ret == STUB_REPLY_LATER)
		return;
	if (ret < 0) {
		log_debug("%s: %s", rsp_cmd_name(cmd.kind), strerror(-ret));
		stub_reply_errno(r, ret);
	}
	if (!(rsp_cmd_flags(cmd.kind) & RSP_CMDF_NO_REPLY) || ret < 0)
		stub_conn_send(c);
	if (c->noack_next) {
		c->noack_next = false;
		rsp_decoder_set_noack(&c->dec, true);
	}
	if (cmd.kind == RSP_CMD_KILL || (cmd.kind == RSP_CMD_DETACH &&
	    !s->extended))
		log_debug("gdb ended the session");
}
