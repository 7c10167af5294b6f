/*
 * parse.c - one GDB RSP packet to a typed struct rsp_command.
 *
 * One declarative table of commands (GDB manual, "Packets" and "General
 * Query Packets").  A single-letter command takes its arguments right after
 * the letter (m1000,4); a named command matches only when its name is
 * followed by the end of the packet or a delimiter (':', ';', ','), so
 * "qC" never matches "qCRC:..." and the order of rows never matters.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "rsp_codec.h"
#include "rsp_cmd.h"

struct cursor {
	const uint8_t *p;
	const uint8_t *end;
};

typedef int parse_fn(struct cursor *c, struct rsp_command *cmd);

struct row {
	const char *name;
	enum rsp_cmd_kind kind;
	bool letter;         /* single letter, arguments follow at once */
	parse_fn *parse;
	unsigned flags;
};

int rsp_parse_hex_u64(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
	const uint8_t *p = *pp;
	uint64_t x = 0;
	unsigned sig = 0;     /* significant digits so far */
	bool any = false;
	int d;

	while (p < end && (d = rsp_hex_digit(*p)) >= 0) {
		any = true;
		if (x != 0 || d != 0)
			sig++;
		if (sig > 16)
			return -ERANGE;
		x = x << 4 | (uint64_t)d;
		p++;
	}
	if (!any)
		return -EINVAL;
	*v = x;
	*pp = p;
	return 0;
}

/* One id of a thread-id: "-1" or a positive hex number. */
static int parse_id(const uint8_t **pp, const uint8_t *end, int64_t *id)
{
	const uint8_t *p = *pp;
	uint64_t v;
	int rc;

	if (end - p >= 2 && p[0] == '-' && p[1] == '1' &&
	    (end - p == 2 || rsp_hex_digit(p[2]) < 0)) {
		*id = RSP_ID_ALL;
		*pp = p + 2;
		return 0;
	}
	rc = rsp_parse_hex_u64(&p, end, &v);
	if (rc)
		return rc;
	if (v > INT64_MAX)
		return -ERANGE;
	*id = (int64_t)v;
	*pp = p;
	return 0;
}

/* "thread-id syntax": p<pid>.<tid>, p<pid> (all its threads), or <tid>. */
int rsp_parse_thread_id(const uint8_t **pp, const uint8_t *end,
			struct rsp_thread_id *id)
{
	const uint8_t *p = *pp;
	int rc;

	memset(id, 0, sizeof(*id));
	if (p < end && *p == 'p') {
		p++;
		id->has_pid = true;
		rc = parse_id(&p, end, &id->pid);
		if (rc)
			return rc;
		if (p < end && *p == '.') {
			p++;
			rc = parse_id(&p, end, &id->tid);
			if (rc)
				return rc;
		} else {
			id->tid = RSP_ID_ALL;
		}
	} else {
		rc = parse_id(&p, end, &id->tid);
		if (rc)
			return rc;
	}
	*pp = p;
	return 0;
}

static bool at_end(const struct cursor *c)
{
	return c->p == c->end;
}

static bool eat(struct cursor *c, uint8_t ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

static int num(struct cursor *c, uint64_t *v)
{
	return rsp_parse_hex_u64(&c->p, c->end, v);
}

/* "a,b": two numbers and the comma between them. */
static int num_pair(struct cursor *c, uint64_t *a, uint64_t *b)
{
	int rc = num(c, a);

	if (rc)
		return rc;
	if (!eat(c, ','))
		return -EINVAL;
	return num(c, b);
}

static int done(const struct cursor *c)
{
	return at_end(c) ? 0 : -EINVAL;
}

/* A run of hex digits up to the end of the packet standing for bytes. */
static int hex_rest(struct cursor *c, struct rsp_hex *h)
{
	size_t n = (size_t)(c->end - c->p);

	if (n % 2)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (rsp_hex_digit(c->p[i]) < 0)
			return -EINVAL;
	h->hex = c->p;
	h->len = n / 2;
	c->p = c->end;
	return 0;
}

static int no_args(struct cursor *c, struct rsp_command *cmd)
{
	return done(c);
}

static int p_write_regs(struct cursor *c, struct rsp_command *cmd)
{
	return hex_rest(c, &cmd->u.regs);
}

static int regno(struct cursor *c, uint32_t *r)
{
	uint64_t v;
	int rc = num(c, &v);

	if (rc)
		return rc;
	if (v > UINT32_MAX)
		return -ERANGE;
	*r = (uint32_t)v;
	return 0;
}

static int p_read_reg(struct cursor *c, struct rsp_command *cmd)
{
	int rc = regno(c, &cmd->u.reg.regno);

	return rc ? rc : done(c);
}

static int p_write_reg(struct cursor *c, struct rsp_command *cmd)
{
	int rc = regno(c, &cmd->u.reg.regno);

	if (rc)
		return rc;
	if (!eat(c, '='))
		return -EINVAL;
	return hex_rest(c, &cmd->u.reg.value);
}

/* addr,length with the range [addr, addr + length) inside 64 bits. */
static int addr_len(struct cursor *c, struct rsp_command *cmd)
{
	int rc = num_pair(c, &cmd->u.mem.addr, &cmd->u.mem.len);

	if (rc)
		return rc;
	if (cmd->u.mem.len > 0 &&
	    cmd->u.mem.addr + (cmd->u.mem.len - 1) < cmd->u.mem.addr)
		return -ERANGE;
	return 0;
}

static int p_read_mem(struct cursor *c, struct rsp_command *cmd)
{
	int rc = addr_len(c, cmd);

	return rc ? rc : done(c);
}

static int p_write_mem(struct cursor *c, struct rsp_command *cmd)
{
	struct rsp_hex h;
	int rc = addr_len(c, cmd);

	if (rc)
		return rc;
	if (!eat(c, ':'))
		return -EINVAL;
	rc = hex_rest(c, &h);
	if (rc)
		return rc;
	/* "M addr,length:XX...": exactly length bytes of data. */
	if (h.len != cmd->u.mem.len)
		return -EINVAL;
	cmd->u.mem.data = h.hex;
	return 0;
}

static int p_write_mem_bin(struct cursor *c, struct rsp_command *cmd)
{
	int rc = addr_len(c, cmd);

	if (rc)
		return rc;
	if (!eat(c, ':'))
		return -EINVAL;
	/* The decoder already undid the escapes: what is left is the data. */
	if ((uint64_t)(c->end - c->p) != cmd->u.mem.len)
		return -EINVAL;
	cmd->u.mem.data = c->p;
	c->p = c->end;
	return 0;
}

static int signo(struct cursor *c, uint8_t *sig)
{
	uint64_t v;
	int rc = num(c, &v);

	if (rc)
		return rc;
	if (v > 0xff)
		return -ERANGE;
	*sig = (uint8_t)v;
	return 0;
}

static int p_resume(struct cursor *c, struct rsp_command *cmd)
{
	int rc;

	if (at_end(c))
		return 0;
	rc = num(c, &cmd->u.resume.addr);
	if (rc)
		return rc;
	cmd->u.resume.has_addr = true;
	return done(c);
}

static int p_resume_sig(struct cursor *c, struct rsp_command *cmd)
{
	int rc = signo(c, &cmd->u.resume.sig);

	if (rc)
		return rc;
	if (!eat(c, ';'))
		return done(c);
	rc = num(c, &cmd->u.resume.addr);
	if (rc)
		return rc;
	cmd->u.resume.has_addr = true;
	return done(c);
}

static int vcont_action(struct cursor *c, struct rsp_vcont_action *a)
{
	static const struct {
		uint8_t letter;
		enum rsp_vcont_op op;
	} ops[] = {
		{ 'c', RSP_VCONT_CONTINUE }, { 'C', RSP_VCONT_CONTINUE_SIG },
		{ 's', RSP_VCONT_STEP }, { 'S', RSP_VCONT_STEP_SIG },
		{ 't', RSP_VCONT_STOP }, { 'r', RSP_VCONT_RANGE },
	};
	uint8_t letter = *c->p++;
	size_t i = 0;

	while (i < sizeof(ops) / sizeof(ops[0]) && ops[i].letter != letter)
		i++;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return -EINVAL;
	a->op = ops[i].op;
	switch (a->op) {
	case RSP_VCONT_CONTINUE_SIG:
	case RSP_VCONT_STEP_SIG:
		return signo(c, &a->sig);
	case RSP_VCONT_RANGE:
		/* "r start,end": step while start <= pc < end. */
		return num_pair(c, &a->start, &a->end);
	default:
		return 0;
	}
}

static int p_vcont(struct cursor *c, struct rsp_command *cmd)
{
	/* "vCont[;action[:thread-id]]...": at least one action. */
	if (at_end(c))
		return -EINVAL;
	while (!at_end(c)) {
		struct rsp_vcont_action *a;
		int rc;

		if (!eat(c, ';') || at_end(c))
			return -EINVAL;
		if (cmd->u.vcont.n == RSP_VCONT_MAX)
			return -E2BIG;
		a = &cmd->u.vcont.action[cmd->u.vcont.n++];
		rc = vcont_action(c, a);
		if (rc)
			return rc;
		if (eat(c, ':')) {
			rc = rsp_parse_thread_id(&c->p, c->end, &a->thread);
			if (rc)
				return rc;
			a->has_thread = true;
		}
	}
	return 0;
}

/* "X len,expr": an agent expression of len bytes in hex. */
static int agent_expr(struct cursor *c, struct rsp_hex *h)
{
	uint64_t n;
	int rc;

	if (!eat(c, 'X'))
		return -EINVAL;
	rc = num(c, &n);
	if (rc)
		return rc;
	if (!eat(c, ','))
		return -EINVAL;
	if (n > (uint64_t)(c->end - c->p) / 2)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++)
		if (rsp_hex_digit(c->p[i]) < 0)
			return -EINVAL;
	h->hex = c->p;
	h->len = (size_t)n;
	c->p += 2 * n;
	return 0;
}

/* A list of agent expressions: gdb writes them back to back
 * (remote.c, remote_add_target_side_condition); also take ';' between. */
static int expr_list(struct cursor *c, struct rsp_hex *list, size_t *n)
{
	do {
		int rc;

		if (*n == RSP_BP_EXPR_MAX)
			return -E2BIG;
		rc = agent_expr(c, &list[*n]);
		if (rc)
			return rc;
		(*n)++;
	} while (c->p < c->end &&
		 (*c->p == 'X' ||
		  (*c->p == ';' && c->end - c->p > 1 && c->p[1] == 'X' &&
		   c->p++)));
	return 0;
}

static int p_bp(struct cursor *c, struct rsp_command *cmd)
{
	uint64_t type;
	int rc = num(c, &type);

	if (rc)
		return rc;
	/* "A remote target shall return an empty string for an unrecognized
	 * breakpoint or watchpoint packet type." */
	if (type > RSP_BP_ACCESS_WATCH) {
		cmd->kind = RSP_CMD_UNKNOWN;
		return 0;
	}
	cmd->u.bp.type = (enum rsp_bp_type)type;
	if (!eat(c, ','))
		return -EINVAL;
	rc = num(c, &cmd->u.bp.addr);
	if (rc)
		return rc;
	if (!eat(c, ','))
		return -EINVAL;
	rc = num(c, &cmd->u.bp.kind);
	if (rc)
		return rc;
	/* "Z0,addr,kind[;cond_list...][;cmds:persist,cmd_list...]" */
	if (c->end - c->p > 1 && c->p[0] == ';' && c->p[1] == 'X') {
		c->p++;
		rc = expr_list(c, cmd->u.bp.cond, &cmd->u.bp.ncond);
		if (rc)
			return rc;
	}
	if (eat(c, ';')) {
		uint64_t persist;
		static const char cmds[] = "cmds:";

		if ((size_t)(c->end - c->p) < sizeof(cmds) - 1 ||
		    memcmp(c->p, cmds, sizeof(cmds) - 1))
			return -EINVAL;
		c->p += sizeof(cmds) - 1;
		rc = num(c, &persist);
		if (rc)
			return rc;
		if (persist > 1)
			return -EINVAL;
		if (!eat(c, ','))
			return -EINVAL;
		cmd->u.bp.has_cmds = true;
		cmd->u.bp.persist = persist;
		rc = expr_list(c, cmd->u.bp.cmd, &cmd->u.bp.ncmd);
		if (rc)
			return rc;
	}
	return done(c);
}

static int p_set_thread(struct cursor *c, struct rsp_command *cmd)
{
	int rc;

	if (at_end(c))
		return -EINVAL;
	cmd->u.set_thread.op = *c->p++;
	if (cmd->u.set_thread.op != 'g' && cmd->u.set_thread.op != 'c')
		return -EINVAL;
	rc = rsp_parse_thread_id(&c->p, c->end, &cmd->u.set_thread.thread);
	return rc ? rc : done(c);
}

static int p_thread(struct cursor *c, struct rsp_command *cmd)
{
	int rc = rsp_parse_thread_id(&c->p, c->end, &cmd->u.thread);

	return rc ? rc : done(c);
}

static int p_thread_extra(struct cursor *c, struct rsp_command *cmd)
{
	if (!eat(c, ','))
		return -EINVAL;
	return p_thread(c, cmd);
}

static const struct {
	const char *name;
	uint32_t bit;
} gdb_features[] = {
	{ "multiprocess", RSP_GF_MULTIPROCESS },
	{ "swbreak", RSP_GF_SWBREAK },
	{ "hwbreak", RSP_GF_HWBREAK },
	{ "qRelocInsn", RSP_GF_QRELOCINSN },
	{ "fork-events", RSP_GF_FORK_EVENTS },
	{ "vfork-events", RSP_GF_VFORK_EVENTS },
	{ "exec-events", RSP_GF_EXEC_EVENTS },
	{ "vContSupported", RSP_GF_VCONT_SUPPORTED },
	{ "QThreadEvents", RSP_GF_QTHREADEVENTS },
	{ "no-resumed", RSP_GF_NO_RESUMED },
	{ "memory-tagging", RSP_GF_MEMORY_TAGGING },
	{ "error-message", RSP_GF_ERROR_MESSAGE },
	{ "binary-upload", RSP_GF_BINARY_UPLOAD },
};

static bool word_is(const uint8_t *w, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(w, s, n) == 0;
}

static int p_supported(struct cursor *c, struct rsp_command *cmd)
{
	if (at_end(c))
		return 0;
	if (!eat(c, ':') || at_end(c))
		return -EINVAL;
	/* "qSupported [:gdbfeature [;gdbfeature]...]", each feature being
	 * name+, name-, name? or name=value. */
	while (!at_end(c)) {
		const uint8_t *f = c->p, *e;
		size_t n;

		while (c->p < c->end && *c->p != ';')
			c->p++;
		e = c->p;
		if (eat(c, ';') && at_end(c))
			return -EINVAL;
		n = (size_t)(e - f);
		if (n == 0)
			return -EINVAL;
		if (f[n - 1] == '+') {
			for (size_t i = 0; i < sizeof(gdb_features) /
						sizeof(gdb_features[0]); i++)
				if (word_is(f, n - 1, gdb_features[i].name))
					cmd->u.supported.features |=
						gdb_features[i].bit;
		} else if (f[n - 1] != '-' && f[n - 1] != '?') {
			const uint8_t *eq = memchr(f, '=', n);

			if (!eq || eq == f)
				return -EINVAL;
			if (word_is(f, (size_t)(eq - f), "xmlRegisters")) {
				cmd->u.supported.xml_registers = eq + 1;
				cmd->u.supported.xml_registers_len =
					(size_t)(e - eq - 1);
			}
		}
	}
	return 0;
}

static int p_xfer(struct cursor *c, struct rsp_command *cmd)
{
	static const struct {
		const char *name;
		enum rsp_xfer_object object;
	} objects[] = {
		{ "features", RSP_XFER_FEATURES },
		{ "threads", RSP_XFER_THREADS },
		{ "osdata", RSP_XFER_OSDATA },
	};
	const uint8_t *w, *colon = NULL;
	size_t i, n;
	int rc;

	if (!eat(c, ':'))
		return -EINVAL;
	/* "qXfer:object:read:annex:offset,length" */
	w = c->p;
	while (c->p < c->end && *c->p != ':')
		c->p++;
	n = (size_t)(c->p - w);
	for (i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
		if (word_is(w, n, objects[i].name))
			break;
	if (!eat(c, ':'))
		return -EINVAL;
	w = c->p;
	while (c->p < c->end && *c->p != ':')
		c->p++;
	/* The manual: a stub answers "" for objects and operations it does
	 * not support, so gdb falls back or reports them missing. */
	if (i == sizeof(objects) / sizeof(objects[0]) ||
	    !word_is(w, (size_t)(c->p - w), "read")) {
		cmd->kind = RSP_CMD_UNKNOWN;
		return 0;
	}
	cmd->u.xfer.object = objects[i].object;
	if (!eat(c, ':'))
		return -EINVAL;
	/* The annex ends at the last ':' (offset,length hold none). */
	for (const uint8_t *q = c->p; q < c->end; q++)
		if (*q == ':')
			colon = q;
	if (!colon)
		return -EINVAL;
	cmd->u.xfer.annex = c->p;
	cmd->u.xfer.annex_len = (size_t)(colon - c->p);
	c->p = colon + 1;
	rc = num_pair(c, &cmd->u.xfer.offset, &cmd->u.xfer.length);
	return rc ? rc : done(c);
}

static int pid(struct cursor *c, struct rsp_command *cmd)
{
	uint64_t v;
	int rc = num(c, &v);

	if (rc)
		return rc;
	if (v > INT64_MAX)
		return -ERANGE;
	cmd->u.process.has_pid = true;
	cmd->u.process.pid = (int64_t)v;
	return done(c);
}

static int p_opt_pid(struct cursor *c, struct rsp_command *cmd)
{
	if (at_end(c))
		return 0;
	/* qAttached:pid, D;pid */
	if (!eat(c, ':') && !eat(c, ';'))
		return -EINVAL;
	return pid(c, cmd);
}

static int p_req_pid(struct cursor *c, struct rsp_command *cmd)
{
	if (!eat(c, ';'))
		return -EINVAL;
	return pid(c, cmd);
}

static int p_rcmd(struct cursor *c, struct rsp_command *cmd)
{
	if (!eat(c, ','))
		return -EINVAL;
	return hex_rest(c, &cmd->u.rcmd);
}

/* Named commands all begin with q, Q or v, which no single-letter command
 * uses, so at most one row can match a packet. */
#define LETTER(n, k, fn, fl) { n, k, true, fn, fl }
#define NAMED(n, k, fn, fl) { n, k, false, fn, fl }

static const struct row rows[] = {
	LETTER("?", RSP_CMD_HALT_REASON, no_args, 0),
	LETTER("g", RSP_CMD_READ_REGS, no_args, 0),
	LETTER("G", RSP_CMD_WRITE_REGS, p_write_regs, 0),
	LETTER("p", RSP_CMD_READ_REG, p_read_reg, 0),
	LETTER("P", RSP_CMD_WRITE_REG, p_write_reg, 0),
	LETTER("m", RSP_CMD_READ_MEM, p_read_mem, 0),
	LETTER("M", RSP_CMD_WRITE_MEM, p_write_mem, 0),
	LETTER("X", RSP_CMD_WRITE_MEM_BIN, p_write_mem_bin, 0),
	LETTER("x", RSP_CMD_READ_MEM_BIN, p_read_mem, 0),
	LETTER("c", RSP_CMD_CONTINUE, p_resume, RSP_CMDF_RESUMES),
	LETTER("s", RSP_CMD_STEP, p_resume, RSP_CMDF_RESUMES),
	LETTER("C", RSP_CMD_CONTINUE_SIG, p_resume_sig, RSP_CMDF_RESUMES),
	LETTER("S", RSP_CMD_STEP_SIG, p_resume_sig, RSP_CMDF_RESUMES),
	LETTER("Z", RSP_CMD_INSERT_BP, p_bp, 0),
	LETTER("z", RSP_CMD_REMOVE_BP, p_bp, 0),
	LETTER("H", RSP_CMD_SET_THREAD, p_set_thread, 0),
	LETTER("T", RSP_CMD_THREAD_ALIVE, p_thread, 0),
	LETTER("D", RSP_CMD_DETACH, p_opt_pid, 0),
	LETTER("k", RSP_CMD_KILL, no_args, RSP_CMDF_NO_REPLY),
	LETTER("!", RSP_CMD_EXTENDED, no_args, 0),
	NAMED("vCont?", RSP_CMD_VCONT_QUERY, no_args, 0),
	NAMED("vCont", RSP_CMD_VCONT, p_vcont, RSP_CMDF_RESUMES),
	NAMED("qSupported", RSP_CMD_QSUPPORTED, p_supported, 0),
	NAMED("qXfer", RSP_CMD_QXFER_READ, p_xfer, 0),
	NAMED("qfThreadInfo", RSP_CMD_QFTHREADINFO, no_args, 0),
	NAMED("qsThreadInfo", RSP_CMD_QSTHREADINFO, no_args, 0),
	NAMED("qC", RSP_CMD_QC, no_args, 0),
	NAMED("qAttached", RSP_CMD_QATTACHED, p_opt_pid, 0),
	NAMED("qThreadExtraInfo", RSP_CMD_QTHREADEXTRAINFO, p_thread_extra, 0),
	NAMED("qRcmd", RSP_CMD_QRCMD, p_rcmd, 0),
	NAMED("QStartNoAckMode", RSP_CMD_START_NOACK, no_args, 0),
	NAMED("vAttach", RSP_CMD_VATTACH, p_req_pid, RSP_CMDF_RESUMES),
	NAMED("vKill", RSP_CMD_VKILL, p_req_pid, 0),
	NAMED("vMustReplyEmpty", RSP_CMD_VMUSTREPLYEMPTY, no_args, 0),
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

static bool delimiter(uint8_t c)
{
	return c == ':' || c == ';' || c == ',';
}

static const struct row *match(const uint8_t *pkt, size_t len)
{
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *r = &rows[i];
		size_t n = strlen(r->name);

		if (r->letter) {
			if (pkt[0] == (uint8_t)r->name[0])
				return r;
			continue;
		}
		if (len < n || memcmp(pkt, r->name, n) != 0)
			continue;
		if (len == n || delimiter(pkt[n]))
			return r;
	}
	return NULL;
}

int rsp_parse(const uint8_t *packet, size_t len, struct rsp_command *cmd)
{
	const struct row *r;
	struct cursor c;
	int rc;

	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = RSP_CMD_UNKNOWN;
	/* An empty packet is no command ("Packets": unknown -> ""). */
	if (len == 0)
		return 0;
	r = match(packet, len);
	if (!r)
		return 0;
	cmd->kind = r->kind;
	c.p = packet + strlen(r->name);
	c.end = packet + len;
	rc = r->parse(&c, cmd);
	return rc;
}

const char *rsp_cmd_name(enum rsp_cmd_kind kind)
{
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].kind == kind)
			return rows[i].name;
	return kind == RSP_CMD_UNKNOWN ? "unknown" : "?invalid";
}

unsigned rsp_cmd_flags(enum rsp_cmd_kind kind)
{
	for (size_t i = 0; i < NROWS; i++)
		if (rows[i].kind == kind)
			return rows[i].flags;
	return 0;
}
