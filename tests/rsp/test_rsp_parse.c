/* Unit tests: packet -> struct rsp_command for every packet kind. */
#include <errno.h>

#include "rsp_test.h"

static struct rsp_command cmd;

static int parse(const char *s)
{
	return rsp_parse((const uint8_t *)s, strlen(s), &cmd);
}

#define ok(s, k) do { \
	assert_int_equal(parse(s), 0); \
	assert_int_equal(cmd.kind, k); \
} while (0)

#define bad(s, k, err) do { \
	assert_int_equal(parse(s), err); \
	assert_int_equal(cmd.kind, k); \
} while (0)

static void simple_commands(void **state)
{
	ok("?", RSP_CMD_HALT_REASON);
	ok("g", RSP_CMD_READ_REGS);
	ok("k", RSP_CMD_KILL);
	ok("!", RSP_CMD_EXTENDED);
	ok("vCont?", RSP_CMD_VCONT_QUERY);
	ok("qfThreadInfo", RSP_CMD_QFTHREADINFO);
	ok("qsThreadInfo", RSP_CMD_QSTHREADINFO);
	ok("qC", RSP_CMD_QC);
	ok("QStartNoAckMode", RSP_CMD_START_NOACK);
	ok("vMustReplyEmpty", RSP_CMD_VMUSTREPLYEMPTY);
	bad("?x", RSP_CMD_HALT_REASON, -EINVAL);
	bad("g0", RSP_CMD_READ_REGS, -EINVAL);
	bad("vCont?;c", RSP_CMD_VCONT_QUERY, -EINVAL);
	bad("QStartNoAckMode:1", RSP_CMD_START_NOACK, -EINVAL);
	assert_int_equal(rsp_cmd_flags(RSP_CMD_KILL), RSP_CMDF_NO_REPLY);
	assert_int_equal(rsp_cmd_flags(RSP_CMD_VCONT), RSP_CMDF_RESUMES);
	assert_int_equal(rsp_cmd_flags(RSP_CMD_READ_MEM), 0);
	assert_string_equal(rsp_cmd_name(RSP_CMD_QXFER_READ), "qXfer");
	assert_string_equal(rsp_cmd_name(RSP_CMD_UNKNOWN), "unknown");
}

static void unknown(void **state)
{
	/* Empty packet, unserved packets, and names that only share a
	 * prefix with a served one (matched at a delimiter only). */
	assert_int_equal(rsp_parse((const uint8_t *)"", 0, &cmd), 0);
	assert_int_equal(cmd.kind, RSP_CMD_UNKNOWN);
	ok("qCRC:0,4", RSP_CMD_UNKNOWN);
	ok("qTStatus", RSP_CMD_UNKNOWN);
	ok("qSymbol::", RSP_CMD_UNKNOWN);
	ok("vContX", RSP_CMD_UNKNOWN);
	ok("qSupportedX", RSP_CMD_UNKNOWN);
	ok("vFile:open:6a7573742070726f62696e67,0,1c0", RSP_CMD_UNKNOWN);
	ok("QNonStop:1", RSP_CMD_UNKNOWN);
	ok("qOffsets", RSP_CMD_UNKNOWN);
	ok("y", RSP_CMD_UNKNOWN);
	ok("\xff", RSP_CMD_UNKNOWN);
	/* Unserved breakpoint types and qXfer objects/operations: "". */
	ok("Z5,1000,1", RSP_CMD_UNKNOWN);
	ok("qXfer:auxv:read::0,1000", RSP_CMD_UNKNOWN);
	ok("qXfer:features:write:target.xml:0:abc", RSP_CMD_UNKNOWN);
}

static void registers(void **state)
{
	ok("G0011aaBB", RSP_CMD_WRITE_REGS);
	assert_int_equal(cmd.u.regs.len, 4);
	assert_memory_equal(cmd.u.regs.hex, "0011aaBB", 8);
	ok("G", RSP_CMD_WRITE_REGS);
	assert_int_equal(cmd.u.regs.len, 0);
	bad("G001", RSP_CMD_WRITE_REGS, -EINVAL);
	bad("G00xx", RSP_CMD_WRITE_REGS, -EINVAL);
	ok("p10", RSP_CMD_READ_REG);
	assert_int_equal(cmd.u.reg.regno, 16);
	ok("pffffffff", RSP_CMD_READ_REG);
	assert_int_equal(cmd.u.reg.regno, 0xffffffffu);
	bad("p100000000", RSP_CMD_READ_REG, -ERANGE);
	bad("p", RSP_CMD_READ_REG, -EINVAL);
	bad("p1,", RSP_CMD_READ_REG, -EINVAL);
	ok("P10=efbeadde00000000", RSP_CMD_WRITE_REG);
	assert_int_equal(cmd.u.reg.regno, 16);
	assert_int_equal(cmd.u.reg.value.len, 8);
	assert_memory_equal(cmd.u.reg.value.hex, "efbeadde", 8);
	bad("P10", RSP_CMD_WRITE_REG, -EINVAL);
	bad("P10=abc", RSP_CMD_WRITE_REG, -EINVAL);
	bad("P=00", RSP_CMD_WRITE_REG, -EINVAL);
	bad("P10:00", RSP_CMD_WRITE_REG, -EINVAL);
}

static void memory(void **state)
{
	ok("mffffffff81000000,1000", RSP_CMD_READ_MEM);
	assert_true(cmd.u.mem.addr == 0xffffffff81000000ull);
	assert_int_equal(cmd.u.mem.len, 0x1000);
	/* Leading zeros do not count against 64 bits. */
	ok("m00000000000000000000ffffffffffffffff,1", RSP_CMD_READ_MEM);
	assert_true(cmd.u.mem.addr == UINT64_MAX);
	/* The last page ends exactly at 2^64: fine.  One byte more: not. */
	ok("mfffffffffffff000,1000", RSP_CMD_READ_MEM);
	bad("mfffffffffffff000,1001", RSP_CMD_READ_MEM, -ERANGE);
	bad("mffffffffffffffff,2", RSP_CMD_READ_MEM, -ERANGE);
	ok("mffffffffffffffff,0", RSP_CMD_READ_MEM);
	bad("m10000000000000000,1", RSP_CMD_READ_MEM, -ERANGE);
	bad("m0,10000000000000000", RSP_CMD_READ_MEM, -ERANGE);
	bad("m1000", RSP_CMD_READ_MEM, -EINVAL);
	bad("m1000,", RSP_CMD_READ_MEM, -EINVAL);
	bad("m,4", RSP_CMD_READ_MEM, -EINVAL);
	bad("m-1,4", RSP_CMD_READ_MEM, -EINVAL);
	bad("m0x10,4", RSP_CMD_READ_MEM, -EINVAL);
	bad("m10,4;", RSP_CMD_READ_MEM, -EINVAL);
	ok("x1000,20", RSP_CMD_READ_MEM_BIN);
	assert_int_equal(cmd.u.mem.addr, 0x1000);
	assert_int_equal(cmd.u.mem.len, 0x20);
	ok("x0,0", RSP_CMD_READ_MEM_BIN);
	bad("x1000", RSP_CMD_READ_MEM_BIN, -EINVAL);

	ok("M1000,2:cc90", RSP_CMD_WRITE_MEM);
	assert_int_equal(cmd.u.mem.len, 2);
	assert_memory_equal(cmd.u.mem.data, "cc90", 4);
	ok("M1000,0:", RSP_CMD_WRITE_MEM);
	bad("M1000,2:cc9", RSP_CMD_WRITE_MEM, -EINVAL);    /* odd digits */
	bad("M1000,2:cc", RSP_CMD_WRITE_MEM, -EINVAL);     /* truncated */
	bad("M1000,2:cc9000", RSP_CMD_WRITE_MEM, -EINVAL); /* too much */
	bad("M1000,2:cg90", RSP_CMD_WRITE_MEM, -EINVAL);
	bad("M1000,2cc90", RSP_CMD_WRITE_MEM, -EINVAL);
	bad("Mffffffffffffffff,ffffffffffffffff:00", RSP_CMD_WRITE_MEM,
	    -ERANGE);
	bad("M0,ffffffffffffffff:00", RSP_CMD_WRITE_MEM, -EINVAL);

	/* X carries raw bytes (the decoder undid the escapes), any value. */
	static const uint8_t x[] = "X10,4:\x00#}*";
	assert_int_equal(rsp_parse(x, sizeof(x) - 1, &cmd), 0);
	assert_int_equal(cmd.kind, RSP_CMD_WRITE_MEM_BIN);
	assert_int_equal(cmd.u.mem.len, 4);
	assert_memory_equal(cmd.u.mem.data, "\x00#}*", 4);
	/* gdb probes X with a zero-length write. */
	ok("X40003cf7e750,0:", RSP_CMD_WRITE_MEM_BIN);
	assert_int_equal(cmd.u.mem.len, 0);
	bad("X10,4:abc", RSP_CMD_WRITE_MEM_BIN, -EINVAL);
	bad("X10,4:abcde", RSP_CMD_WRITE_MEM_BIN, -EINVAL);
	bad("X10,4", RSP_CMD_WRITE_MEM_BIN, -EINVAL);
}

static void resume(void **state)
{
	ok("c", RSP_CMD_CONTINUE);
	assert_false(cmd.u.resume.has_addr);
	ok("cffffffff81000000", RSP_CMD_CONTINUE);
	assert_true(cmd.u.resume.has_addr);
	assert_true(cmd.u.resume.addr == 0xffffffff81000000ull);
	ok("s", RSP_CMD_STEP);
	ok("s10", RSP_CMD_STEP);
	assert_int_equal(cmd.u.resume.addr, 0x10);
	bad("sz", RSP_CMD_STEP, -EINVAL);
	ok("C0b", RSP_CMD_CONTINUE_SIG);
	assert_int_equal(cmd.u.resume.sig, 11);
	assert_false(cmd.u.resume.has_addr);
	ok("S05;1234", RSP_CMD_STEP_SIG);
	assert_int_equal(cmd.u.resume.sig, 5);
	assert_int_equal(cmd.u.resume.addr, 0x1234);
	bad("C", RSP_CMD_CONTINUE_SIG, -EINVAL);
	bad("C100", RSP_CMD_CONTINUE_SIG, -ERANGE);
	bad("C05;", RSP_CMD_CONTINUE_SIG, -EINVAL);
	bad("C05,1", RSP_CMD_CONTINUE_SIG, -EINVAL);
}

static void vcont(void **state)
{
	struct rsp_vcont_action *a = cmd.u.vcont.action;

	ok("vCont;c", RSP_CMD_VCONT);
	assert_int_equal(cmd.u.vcont.n, 1);
	assert_int_equal(a[0].op, RSP_VCONT_CONTINUE);
	assert_false(a[0].has_thread);

	ok("vCont;s:2;c", RSP_CMD_VCONT);
	assert_int_equal(cmd.u.vcont.n, 2);
	assert_int_equal(a[0].op, RSP_VCONT_STEP);
	assert_true(a[0].has_thread);
	assert_false(a[0].thread.has_pid);
	assert_int_equal(a[0].thread.tid, 2);
	assert_int_equal(a[1].op, RSP_VCONT_CONTINUE);

	ok("vCont;r1000,1010:p1.3;C0b:p1.-1;S05:4;t:1", RSP_CMD_VCONT);
	assert_int_equal(cmd.u.vcont.n, 4);
	assert_int_equal(a[0].op, RSP_VCONT_RANGE);
	assert_int_equal(a[0].start, 0x1000);
	assert_int_equal(a[0].end, 0x1010);
	assert_true(a[0].thread.has_pid);
	assert_int_equal(a[0].thread.pid, 1);
	assert_int_equal(a[0].thread.tid, 3);
	assert_int_equal(a[1].op, RSP_VCONT_CONTINUE_SIG);
	assert_int_equal(a[1].sig, 11);
	assert_int_equal(a[1].thread.tid, RSP_ID_ALL);
	assert_int_equal(a[2].op, RSP_VCONT_STEP_SIG);
	assert_int_equal(a[2].sig, 5);
	assert_int_equal(a[3].op, RSP_VCONT_STOP);
	assert_int_equal(a[3].thread.tid, 1);

	ok("vCont;c:p1", RSP_CMD_VCONT);
	assert_int_equal(a[0].thread.pid, 1);
	assert_int_equal(a[0].thread.tid, RSP_ID_ALL);

	bad("vCont", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;c;", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;x", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;C", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;r1000", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;r1000,", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;c:", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;c:p", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;c:zz", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;cc", RSP_CMD_VCONT, -EINVAL);
	bad("vCont;c:8000000000000000", RSP_CMD_VCONT, -ERANGE);

	/* The fixed action array: exactly full is fine, one more is E2BIG. */
	char big[RSP_VCONT_MAX * 8 + 16];
	size_t o = (size_t)snprintf(big, sizeof(big), "vCont");

	for (int i = 0; i < RSP_VCONT_MAX; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, ";s:%x", i + 1);
	ok(big, RSP_CMD_VCONT);
	assert_int_equal(cmd.u.vcont.n, RSP_VCONT_MAX);
	assert_int_equal(a[RSP_VCONT_MAX - 1].thread.tid, RSP_VCONT_MAX);
	snprintf(big + o, sizeof(big) - o, ";c");
	bad(big, RSP_CMD_VCONT, -E2BIG);
}

static void breakpoints(void **state)
{
	ok("Z0,ffffffff81000000,1", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.type, RSP_BP_SOFTWARE);
	assert_true(cmd.u.bp.addr == 0xffffffff81000000ull);
	assert_int_equal(cmd.u.bp.kind, 1);
	assert_int_equal(cmd.u.bp.ncond, 0);
	assert_false(cmd.u.bp.has_cmds);
	ok("z1,1000,1", RSP_CMD_REMOVE_BP);
	assert_int_equal(cmd.u.bp.type, RSP_BP_HARDWARE);
	ok("Z2,2000,8", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.type, RSP_BP_WRITE_WATCH);
	assert_int_equal(cmd.u.bp.kind, 8);
	ok("Z3,2000,4", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.type, RSP_BP_READ_WATCH);
	ok("z4,2000,2", RSP_CMD_REMOVE_BP);
	assert_int_equal(cmd.u.bp.type, RSP_BP_ACCESS_WATCH);

	/* Conditions as gdb writes them: back to back after one ';'. */
	ok("Z0,1000,1;X2,2201X1,27", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.ncond, 2);
	assert_int_equal(cmd.u.bp.cond[0].len, 2);
	assert_memory_equal(cmd.u.bp.cond[0].hex, "2201", 4);
	assert_int_equal(cmd.u.bp.cond[1].len, 1);
	assert_memory_equal(cmd.u.bp.cond[1].hex, "27", 2);
	/* ... and with ';' between, and commands. */
	ok("Z0,1000,1;X1,27;X1,28;cmds:1,X3,aabbccX0,", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.ncond, 2);
	assert_true(cmd.u.bp.has_cmds);
	assert_true(cmd.u.bp.persist);
	assert_int_equal(cmd.u.bp.ncmd, 2);
	assert_int_equal(cmd.u.bp.cmd[0].len, 3);
	assert_memory_equal(cmd.u.bp.cmd[0].hex, "aabbcc", 6);
	assert_int_equal(cmd.u.bp.cmd[1].len, 0);
	ok("Z0,1000,1;cmds:0,X1,01", RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.ncond, 0);
	assert_false(cmd.u.bp.persist);
	assert_int_equal(cmd.u.bp.ncmd, 1);

	bad("Z0,1000", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;X2,22", RSP_CMD_INSERT_BP, -EINVAL);   /* truncated */
	bad("Z0,1000,1;X2,2201z", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;X2,22zz", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;Xffffffffffffffff,00", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;cmds:2,X1,00", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;cmds:1", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,1000,1;cmd:1,X1,00", RSP_CMD_INSERT_BP, -EINVAL);
	bad("Z0,10000000000000000,1", RSP_CMD_INSERT_BP, -ERANGE);

	char big[RSP_BP_EXPR_MAX * 8 + 32];
	size_t o = (size_t)snprintf(big, sizeof(big), "Z0,1000,1;");

	for (int i = 0; i < RSP_BP_EXPR_MAX; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "X1,%02x", i);
	ok(big, RSP_CMD_INSERT_BP);
	assert_int_equal(cmd.u.bp.ncond, RSP_BP_EXPR_MAX);
	snprintf(big + o, sizeof(big) - o, "X1,ff");
	bad(big, RSP_CMD_INSERT_BP, -E2BIG);
}

static void threads(void **state)
{
	ok("Hg0", RSP_CMD_SET_THREAD);
	assert_int_equal(cmd.u.set_thread.op, 'g');
	assert_int_equal(cmd.u.set_thread.thread.tid, RSP_ID_ANY);
	ok("Hc-1", RSP_CMD_SET_THREAD);
	assert_int_equal(cmd.u.set_thread.op, 'c');
	assert_int_equal(cmd.u.set_thread.thread.tid, RSP_ID_ALL);
	ok("Hgp1.2", RSP_CMD_SET_THREAD);
	assert_true(cmd.u.set_thread.thread.has_pid);
	assert_int_equal(cmd.u.set_thread.thread.pid, 1);
	assert_int_equal(cmd.u.set_thread.thread.tid, 2);
	ok("Hgp-1.-1", RSP_CMD_SET_THREAD);
	assert_int_equal(cmd.u.set_thread.thread.pid, RSP_ID_ALL);
	bad("Hx1", RSP_CMD_SET_THREAD, -EINVAL);
	bad("H", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hg", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hg-2", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hg-10", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hgp1.", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hg1.2", RSP_CMD_SET_THREAD, -EINVAL);
	bad("Hg7fffffffffffffff0", RSP_CMD_SET_THREAD, -ERANGE);
	ok("Hg7fffffffffffffff", RSP_CMD_SET_THREAD);
	assert_true(cmd.u.set_thread.thread.tid == INT64_MAX);

	ok("T3", RSP_CMD_THREAD_ALIVE);
	assert_int_equal(cmd.u.thread.tid, 3);
	ok("Tp2.a", RSP_CMD_THREAD_ALIVE);
	assert_int_equal(cmd.u.thread.pid, 2);
	assert_int_equal(cmd.u.thread.tid, 10);
	bad("T", RSP_CMD_THREAD_ALIVE, -EINVAL);

	ok("qThreadExtraInfo,2", RSP_CMD_QTHREADEXTRAINFO);
	assert_int_equal(cmd.u.thread.tid, 2);
	ok("qThreadExtraInfo,p1.1", RSP_CMD_QTHREADEXTRAINFO);
	bad("qThreadExtraInfo", RSP_CMD_QTHREADEXTRAINFO, -EINVAL);
	bad("qThreadExtraInfo,", RSP_CMD_QTHREADEXTRAINFO, -EINVAL);
	bad("qThreadExtraInfo:1", RSP_CMD_QTHREADEXTRAINFO, -EINVAL);
}

static void supported(void **state)
{
	/* gdb 13's list on x86-64, then 16's additions. */
	ok("qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;"
	   "fork-events+;vfork-events+;exec-events+;vContSupported+;"
	   "QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386",
	   RSP_CMD_QSUPPORTED);
	assert_int_equal(cmd.u.supported.features,
			 RSP_GF_MULTIPROCESS | RSP_GF_SWBREAK | RSP_GF_HWBREAK |
			 RSP_GF_QRELOCINSN | RSP_GF_FORK_EVENTS |
			 RSP_GF_VFORK_EVENTS | RSP_GF_EXEC_EVENTS |
			 RSP_GF_VCONT_SUPPORTED | RSP_GF_QTHREADEVENTS |
			 RSP_GF_NO_RESUMED | RSP_GF_MEMORY_TAGGING);
	assert_int_equal(cmd.u.supported.xml_registers_len, 4);
	assert_memory_equal(cmd.u.supported.xml_registers, "i386", 4);
	ok("qSupported:error-message+;binary-upload+;swbreak-;hwbreak?;"
	   "future-thing+;QThreadOptions=3", RSP_CMD_QSUPPORTED);
	assert_int_equal(cmd.u.supported.features,
			 RSP_GF_ERROR_MESSAGE | RSP_GF_BINARY_UPLOAD);
	assert_null(cmd.u.supported.xml_registers);
	ok("qSupported", RSP_CMD_QSUPPORTED);
	assert_int_equal(cmd.u.supported.features, 0);
	ok("qSupported:xmlRegisters=", RSP_CMD_QSUPPORTED);
	assert_int_equal(cmd.u.supported.xml_registers_len, 0);
	/* A feature named like a prefix of a known one is not it. */
	ok("qSupported:swbrea+;swbreakx+", RSP_CMD_QSUPPORTED);
	assert_int_equal(cmd.u.supported.features, 0);
	bad("qSupported:", RSP_CMD_QSUPPORTED, -EINVAL);
	bad("qSupported:a+;", RSP_CMD_QSUPPORTED, -EINVAL);
	bad("qSupported:a+;;b+", RSP_CMD_QSUPPORTED, -EINVAL);
	bad("qSupported:plain", RSP_CMD_QSUPPORTED, -EINVAL);
	bad("qSupported:=x", RSP_CMD_QSUPPORTED, -EINVAL);
	bad("qSupported;a+", RSP_CMD_QSUPPORTED, -EINVAL);
}

static void xfer(void **state)
{
	ok("qXfer:features:read:target.xml:0,ffb", RSP_CMD_QXFER_READ);
	assert_int_equal(cmd.u.xfer.object, RSP_XFER_FEATURES);
	assert_int_equal(cmd.u.xfer.annex_len, 10);
	assert_memory_equal(cmd.u.xfer.annex, "target.xml", 10);
	assert_int_equal(cmd.u.xfer.offset, 0);
	assert_int_equal(cmd.u.xfer.length, 0xffb);
	ok("qXfer:threads:read::7fe,ffb", RSP_CMD_QXFER_READ);
	assert_int_equal(cmd.u.xfer.object, RSP_XFER_THREADS);
	assert_int_equal(cmd.u.xfer.annex_len, 0);
	assert_int_equal(cmd.u.xfer.offset, 0x7fe);
	ok("qXfer:osdata:read:processes:0,1000", RSP_CMD_QXFER_READ);
	assert_int_equal(cmd.u.xfer.object, RSP_XFER_OSDATA);
	assert_int_equal(cmd.u.xfer.annex_len, 9);
	/* An annex holding ':' ends at the last one. */
	ok("qXfer:features:read:a:b.xml:10,20", RSP_CMD_QXFER_READ);
	assert_int_equal(cmd.u.xfer.annex_len, 7);
	assert_int_equal(cmd.u.xfer.offset, 0x10);
	bad("qXfer", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read:target.xml", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read:target.xml:0", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read:target.xml:0,", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read:target.xml:,1", RSP_CMD_QXFER_READ, -EINVAL);
	bad("qXfer:features:read:t:10000000000000000,1", RSP_CMD_QXFER_READ,
	    -ERANGE);
	bad("qXfer:features:read:t:0,1;", RSP_CMD_QXFER_READ, -EINVAL);
}

static void process(void **state)
{
	ok("qAttached", RSP_CMD_QATTACHED);
	assert_false(cmd.u.process.has_pid);
	ok("qAttached:1", RSP_CMD_QATTACHED);
	assert_true(cmd.u.process.has_pid);
	assert_int_equal(cmd.u.process.pid, 1);
	bad("qAttached:", RSP_CMD_QATTACHED, -EINVAL);
	bad("qAttached,1", RSP_CMD_QATTACHED, -EINVAL);
	ok("vAttach;2a", RSP_CMD_VATTACH);
	assert_int_equal(cmd.u.process.pid, 42);
	bad("vAttach", RSP_CMD_VATTACH, -EINVAL);
	bad("vAttach;", RSP_CMD_VATTACH, -EINVAL);
	bad("vAttach;8000000000000000", RSP_CMD_VATTACH, -ERANGE);
	ok("vKill;1", RSP_CMD_VKILL);
	assert_int_equal(cmd.u.process.pid, 1);
	bad("vKill", RSP_CMD_VKILL, -EINVAL);
	ok("D", RSP_CMD_DETACH);
	assert_false(cmd.u.process.has_pid);
	ok("D;1", RSP_CMD_DETACH);
	assert_int_equal(cmd.u.process.pid, 1);
	bad("D;", RSP_CMD_DETACH, -EINVAL);
	bad("D1", RSP_CMD_DETACH, -EINVAL);
}

static void rcmd(void **state)
{
	uint8_t text[16];

	/* "monitor help" */
	ok("qRcmd,68656c70", RSP_CMD_QRCMD);
	assert_int_equal(cmd.u.rcmd.len, 4);
	assert_int_equal(rsp_hex_decode(text, sizeof(text), cmd.u.rcmd.hex,
					2 * cmd.u.rcmd.len), 4);
	assert_memory_equal(text, "help", 4);
	ok("qRcmd,", RSP_CMD_QRCMD);
	assert_int_equal(cmd.u.rcmd.len, 0);
	bad("qRcmd", RSP_CMD_QRCMD, -EINVAL);
	bad("qRcmd,686", RSP_CMD_QRCMD, -EINVAL);
	bad("qRcmd,help", RSP_CMD_QRCMD, -EINVAL);
}

static void numbers(void **state)
{
	const uint8_t *p;
	uint64_t v;
	struct rsp_thread_id id;

	p = (const uint8_t *)"FfFfFfFfFfFfFfFf,";
	assert_int_equal(rsp_parse_hex_u64(&p, p + 17, &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(*p, ',');
	p = (const uint8_t *)"0";
	assert_int_equal(rsp_parse_hex_u64(&p, p + 1, &v), 0);
	assert_int_equal(v, 0);
	p = (const uint8_t *)"10000000000000000";
	assert_int_equal(rsp_parse_hex_u64(&p, p + 17, &v), -ERANGE);
	p = (const uint8_t *)",";
	assert_int_equal(rsp_parse_hex_u64(&p, p + 1, &v), -EINVAL);
	/* The end pointer bounds the scan, not a NUL. */
	p = (const uint8_t *)"123";
	assert_int_equal(rsp_parse_hex_u64(&p, p + 2, &v), 0);
	assert_int_equal(v, 0x12);
	p = (const uint8_t *)"-1";
	assert_int_equal(rsp_parse_thread_id(&p, p + 2, &id), 0);
	assert_int_equal(id.tid, RSP_ID_ALL);
	p = (const uint8_t *)"-";
	assert_int_equal(rsp_parse_thread_id(&p, p + 1, &id), -EINVAL);
	p = (const uint8_t *)"p-1";
	assert_int_equal(rsp_parse_thread_id(&p, p + 3, &id), 0);
	assert_int_equal(id.pid, RSP_ID_ALL);
	assert_int_equal(id.tid, RSP_ID_ALL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simple_commands),
		cmocka_unit_test(unknown),
		cmocka_unit_test(registers),
		cmocka_unit_test(memory),
		cmocka_unit_test(resume),
		cmocka_unit_test(vcont),
		cmocka_unit_test(breakpoints),
		cmocka_unit_test(threads),
		cmocka_unit_test(supported),
		cmocka_unit_test(xfer),
		cmocka_unit_test(process),
		cmocka_unit_test(rcmd),
		cmocka_unit_test(numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
