/* Unit tests: reply builders, stop replies, the register table, g/G/p/P
 * and the target description writer. */
#include <errno.h>
#include <stdio.h>

#include "rsp_test.h"

static uint8_t rbuf[2048];
static struct rsp_reply r;

static int setup(void **state)
{
	rsp_reply_init(&r, rbuf, sizeof(rbuf));
	return 0;
}

static void basics(void **state)
{
	rsp_reply_ok(&r);
	assert_reply(&r, "OK");
	rsp_reply_reset(&r);
	rsp_reply_error(&r, 0x0e);
	assert_reply(&r, "E0e");
	rsp_reply_reset(&r);
	rsp_reply_hex_u64(&r, 0);
	rsp_reply_char(&r, ',');
	rsp_reply_hex_u64(&r, 0xffffffff81000000ull);
	rsp_reply_char(&r, ',');
	rsp_reply_hex_u64(&r, UINT64_MAX);
	rsp_reply_char(&r, ',');
	rsp_reply_hex_u8(&r, 5);
	assert_reply(&r, "0,ffffffff81000000,ffffffffffffffff,05");
	rsp_reply_reset(&r);
	rsp_reply_mem_hex(&r, "\x00\x7f\x80\xff", 4);
	assert_reply(&r, "007f80ff");
	rsp_reply_reset(&r);
	rsp_reply_mem_bin(&r, "#$}*", 4);
	assert_reply(&r, "b#$}*");
	rsp_reply_reset(&r);
	rsp_reply_mem_bin(&r, "", 0);
	assert_reply(&r, "b");
	rsp_reply_reset(&r);
	rsp_reply_console(&r, "hi\n", 3);
	assert_reply(&r, "O68690a");
}

static void overflow(void **state)
{
	uint8_t small[4], out[32];
	struct rsp_reply s;

	memset(small, 0xee, sizeof(small));
	rsp_reply_init(&s, small, 3);
	rsp_reply_str(&s, "OK");
	assert_int_equal(rsp_reply_status(&s), 0);
	/* Does not fit: nothing written, marked, later appends ignored even
	 * if they would fit. */
	rsp_reply_hex(&s, "\x01", 1);
	assert_int_equal(rsp_reply_status(&s), -ENOSPC);
	rsp_reply_char(&s, 'x');
	assert_int_equal(s.len, 2);
	assert_int_equal(small[2], 0xee);
	assert_int_equal(small[3], 0xee);
	assert_int_equal(rsp_reply_frame(&s, out, sizeof(out), 0), -ENOSPC);
	rsp_reply_reset(&s);
	rsp_reply_str(&s, "OK");
	assert_int_equal(rsp_reply_frame(&s, out, sizeof(out), 0), 6);
	assert_memory_equal(out, "$OK#9a", 6);
}

static void thread_ids(void **state)
{
	struct rsp_thread_id t = { .has_pid = true, .pid = 1, .tid = 0x1f };

	rsp_reply_thread_id(&r, &t, true);
	rsp_reply_char(&r, ' ');
	rsp_reply_thread_id(&r, &t, false);
	rsp_reply_char(&r, ' ');
	t.tid = RSP_ID_ALL;
	rsp_reply_thread_id(&r, &t, true);
	assert_reply(&r, "p1.1f 1f p1.-1");
}

static void xfer(void **state)
{
	static const char doc[] = "0123456789";
	uint8_t b[8];
	struct rsp_reply s;

	/* More follows: 'm'. */
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, 0, 4), 4);
	assert_reply(&r, "m0123");
	/* Exactly the rest: 'l'. */
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, 6, 4), 4);
	assert_reply(&r, "l6789");
	/* More than the rest: 'l' with what there is. */
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, 8, 100), 2);
	assert_reply(&r, "l89");
	/* At or past the end, and huge offsets: an empty 'l'. */
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, 10, 4), 0);
	assert_reply(&r, "l");
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, UINT64_MAX, UINT64_MAX), 0);
	assert_reply(&r, "l");
	/* Length 0 before the end: nothing sent, more follows. */
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_xfer(&r, doc, 10, 3, 0), 0);
	assert_reply(&r, "m");
	/* Cut to the reply buffer: 'm' even though gdb asked for it all. */
	rsp_reply_init(&s, b, sizeof(b));
	assert_int_equal(rsp_reply_xfer(&s, doc, 10, 0, 100), 7);
	assert_int_equal(s.len, 8);
	assert_memory_equal(b, "m0123456", 8);
	assert_int_equal(rsp_reply_status(&s), 0);
}

static void stop_replies(void **state)
{
	struct rsp_stop s = { .kind = RSP_STOP_SIGNAL, .code = 5, .core = -1 };
	struct rsp_expedited regs[2] = {
		{ 6, (const uint8_t *)"\x10\x20\x30\x40\x50\x60\x70\x80", 8 },
		{ 16, (const uint8_t *)"\xef\xbe\xad\xde\xff\xff\xff\xff", 8 },
	};

	rsp_reply_stop(&r, &s);
	assert_reply(&r, "S05");

	rsp_reply_reset(&r);
	s.has_thread = true;
	s.thread.tid = 2;
	s.reason = RSP_STOP_SWBREAK;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T05thread:2;swbreak:;");

	rsp_reply_reset(&r);
	s.multiprocess = true;
	s.thread.has_pid = true;
	s.thread.pid = 1;
	s.core = 1;
	s.reason = RSP_STOP_HWBREAK;
	s.regs = regs;
	s.nregs = 2;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T0506:1020304050607080;10:efbeaddeffffffff;"
			 "thread:p1.2;core:1;hwbreak:;");

	rsp_reply_reset(&r);
	s.nregs = 0;
	s.core = -1;
	s.multiprocess = false;
	s.reason = RSP_STOP_WATCH;
	s.watch_addr = 0xffff888000001000ull;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T05thread:2;watch:ffff888000001000;");
	rsp_reply_reset(&r);
	s.reason = RSP_STOP_RWATCH;
	s.watch_addr = 0;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T05thread:2;rwatch:0;");
	rsp_reply_reset(&r);
	s.reason = RSP_STOP_AWATCH;
	s.code = 2;
	s.watch_addr = 0x10;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T02thread:2;awatch:10;");

	/* Only a reason, no thread: still a T packet. */
	rsp_reply_reset(&r);
	s.has_thread = false;
	s.reason = RSP_STOP_SWBREAK;
	s.code = 5;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T05swbreak:;");

	rsp_reply_reset(&r);
	s.kind = RSP_STOP_EXITED;
	s.code = 0;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "W00");
	rsp_reply_reset(&r);
	s.kind = RSP_STOP_TERMINATED;
	s.code = 9;
	s.multiprocess = true;
	s.pid = 0x2a;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "X09;process:2a");
}

static void table(void **state)
{
	size_t off = 0;

	/* Numbering and g offsets are the running order, sizes match the
	 * storage, and every row lies inside the register file. */
	for (unsigned i = 0; i < RSP_AMD64_NREGS; i++) {
		const struct rsp_reg *g = &rsp_amd64_regs[i];
		size_t size = g->bitsize / 8;

		assert_non_null(g->name);
		assert_int_equal(g->regno, i);
		assert_int_equal(g->g_offset, off);
		assert_true(g->offset + size <=
			    offsetof(struct rsp_amd64_regfile, unavailable));
		if (g->store == RSP_STORE_U32)
			assert_int_equal(g->bitsize, 32);
		else if (g->store == RSP_STORE_U64)
			assert_int_equal(g->bitsize, 64);
		assert_ptr_equal(rsp_amd64_reg_by_name(g->name), g);
		off += size;
	}
	assert_int_equal(rsp_amd64_g_size(), off);
	assert_int_equal(off, 608);
	assert_null(rsp_amd64_reg_by_name("orig_rax"));
	assert_string_equal(rsp_amd64_regs[RSP_AMD64_RIP].name, "rip");
	assert_string_equal(rsp_amd64_regs[RSP_AMD64_MXCSR].name, "mxcsr");
	assert_string_equal(rsp_amd64_regs[RSP_AMD64_FS_BASE].name, "fs_base");
	assert_string_equal(rsp_amd64_regs[RSP_AMD64_KERNEL_GS_BASE].name,
			    "kernel_gs_base");
	assert_int_equal(rsp_amd64_regs[RSP_AMD64_ST7].g_offset, 234);
	assert_int_equal(rsp_amd64_regs[RSP_AMD64_XMM15].g_offset, 516);
}

static void fill(struct rsp_amd64_regfile *f)
{
	memset(f, 0, sizeof(*f));
	for (int i = 0; i < 16; i++)
		f->gpr[i] = 0x0102030405060700ull + (uint64_t)i;
	f->rip = 0xffffffff81a592ebull;
	f->eflags = 0x246;
	f->seg[0] = 0x10;
	memcpy(f->st[0], "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a", 10);
	f->fpu[0] = 0x37f;
	for (int i = 0; i < 16; i++)
		f->xmm[1][i] = (uint8_t)(0xa0 + i);
	f->mxcsr = 0x1f80;
	f->fs_base = 0x7f0000001000ull;
	f->cr0 = 0x80050033;
	f->cr3 = 0x1234000;
	f->efer = 0xd01;
	f->kernel_gs_base = 0xffff88807fc00000ull;
}

static void g_reply(void **state)
{
	struct rsp_amd64_regfile f;

	fill(&f);
	rsp_reply_regs(&r, &f);
	assert_int_equal(rsp_reply_status(&r), 0);
	assert_int_equal(r.len, 2 * 608);
	/* rax little-endian, rip at 128, eflags at 136 (4 bytes). */
	assert_memory_equal(rbuf, "0007060504030201", 16);
	assert_memory_equal(rbuf + 2 * 128, "eb92a581ffffffff", 16);
	assert_memory_equal(rbuf + 2 * 136, "46020000", 8);
	assert_memory_equal(rbuf + 2 * 140, "10000000", 8);
	assert_memory_equal(rbuf + 2 * 164, "0102030405060708090a", 20);
	assert_memory_equal(rbuf + 2 * 244, "7f030000", 8);
	assert_memory_equal(rbuf + 2 * 292, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
			    32);
	assert_memory_equal(rbuf + 2 * 532, "801f0000", 8);
	assert_memory_equal(rbuf + 2 * 536, "00100000007f0000", 16);
	assert_memory_equal(rbuf + 2 * 552, "3300058000000000", 16);
	assert_memory_equal(rbuf + 2 * 592, "010d000000000000", 16);
	assert_memory_equal(rbuf + 2 * 600, "0000c07f8088ffff", 16);

	/* Unavailable registers are 'x' digits of the right width. */
	rsp_regfile_set_available(&f, RSP_AMD64_EFLAGS, false);
	rsp_regfile_set_available(&f, RSP_AMD64_KERNEL_GS_BASE, false);
	assert_false(rsp_regfile_available(&f, RSP_AMD64_EFLAGS));
	assert_false(rsp_regfile_available(&f, RSP_AMD64_NREGS));
	rsp_reply_reset(&r);
	rsp_reply_regs(&r, &f);
	assert_int_equal(r.len, 2 * 608);
	assert_memory_equal(rbuf + 2 * 136, "xxxxxxxx10000000", 16);
	assert_memory_equal(rbuf + 2 * 600, "xxxxxxxxxxxxxxxx", 16);
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_reg(&r, &f, RSP_AMD64_EFLAGS), 0);
	assert_reply(&r, "xxxxxxxx");
}

static void p_reply(void **state)
{
	struct rsp_amd64_regfile f;

	fill(&f);
	assert_int_equal(rsp_reply_reg(&r, &f, RSP_AMD64_RIP), 0);
	assert_reply(&r, "eb92a581ffffffff");
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_reg(&r, &f, RSP_AMD64_ST0), 0);
	assert_reply(&r, "0102030405060708090a");
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_reg(&r, &f, RSP_AMD64_CS), 0);
	assert_reply(&r, "10000000");
	rsp_reply_reset(&r);
	assert_int_equal(rsp_reply_reg(&r, &f, RSP_AMD64_NREGS), -ENOENT);
	assert_int_equal(r.len, 0);
}

static void g_write(void **state)
{
	struct rsp_amd64_regfile f, g;
	uint64_t changed[2] = { 0, 0 };

	/* What g sends, G takes back: changed are exactly the registers
	 * that differ, and the file ends up equal to what g described. */
	fill(&f);
	rsp_reply_regs(&r, &f);
	g = f;
	g.gpr[3] ^= 1;
	g.eflags = 0;
	g.st[7][9] = 0x55;
	g.xmm[15][0] ^= 0xff;
	g.kernel_gs_base = 0;
	assert_int_equal(rsp_regfile_write_g(&g, rbuf, r.len, changed), 0);
	assert_memory_equal(&g, &f, sizeof(f));
	assert_true(changed[0] == (1ull << RSP_AMD64_RDX |
				   1ull << RSP_AMD64_EFLAGS |
				   1ull << RSP_AMD64_ST7 |
				   1ull << RSP_AMD64_XMM15));
	assert_true(changed[1] == 1ull << (RSP_AMD64_KERNEL_GS_BASE - 64));
	/* Writing the same again changes nothing. */
	memset(changed, 0, sizeof(changed));
	assert_int_equal(rsp_regfile_write_g(&g, rbuf, r.len, changed), 0);
	assert_true(changed[0] == 0 && changed[1] == 0);
	/* An unavailable register keeps its value and stays unavailable,
	 * whatever G says for it. */
	rsp_regfile_set_available(&g, RSP_AMD64_CR3, false);
	g.cr3 = 0x1234;
	assert_int_equal(rsp_regfile_write_g(&g, rbuf, r.len, changed), 0);
	assert_int_equal(g.cr3, 0x1234);
	assert_false(rsp_regfile_available(&g, RSP_AMD64_CR3));
	assert_true(changed[0] == 0 && changed[1] == 0);

	/* A shorter G stops at a register boundary: rax and rbx only. */
	memset(changed, 0, sizeof(changed));
	fill(&g);
	assert_int_equal(rsp_regfile_write_g(&g, S("ffffffffffffffff"
						   "0100000000000000"),
					     changed), 0);
	assert_true(g.gpr[0] == UINT64_MAX);
	assert_int_equal(g.gpr[1], 1);
	assert_int_equal(g.gpr[2], f.gpr[2]);
	assert_int_equal(changed[0], 3);   /* rcx onwards: not in the packet */
	assert_int_equal(changed[1], 0);

	/* Errors leave the file untouched. */
	fill(&g);
	assert_int_equal(rsp_regfile_write_g(&g, S("ffffffffffffffff01"), NULL),
			 -EINVAL);
	assert_int_equal(rsp_regfile_write_g(&g, S("fffffffffffffffff"), NULL),
			 -EINVAL);
	assert_int_equal(rsp_regfile_write_g(&g, S("ffffffffffffffffzz000000"
						   "00000000"), NULL), -EINVAL);
	assert_int_equal(rsp_regfile_write_g(&g, S("ffffffffffffffxx"), NULL),
			 -EINVAL);
	assert_memory_equal(&g, &f, sizeof(f));
	/* Longer than g: refused. */
	uint8_t big[2 * 608 + 2];

	memset(big, '0', sizeof(big));
	assert_int_equal(rsp_regfile_write_g(&g, big, sizeof(big), NULL),
			 -EINVAL);
	assert_int_equal(rsp_regfile_write_g(&g, big, sizeof(big) - 2, NULL),
			 0);
	assert_int_equal(g.kernel_gs_base, 0);
}

static void p_write(void **state)
{
	struct rsp_amd64_regfile f;

	fill(&f);
	rsp_regfile_set_available(&f, RSP_AMD64_EFLAGS, false);
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_EFLAGS,
					     S("02010000")), 0);
	assert_int_equal(f.eflags, 0x102);
	assert_true(rsp_regfile_available(&f, RSP_AMD64_EFLAGS));
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_CR3,
					     S("00f0ffffffffffff")), 0);
	assert_true(f.cr3 == 0xfffffffffffff000ull);
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_XMM0 + 15,
					     S("000102030405060708090a0b0c0d0e0f")),
			 0);
	assert_memory_equal(f.xmm[15], "\x00\x01\x02\x03\x04\x05\x06\x07"
				       "\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16);
	/* Wrong width, bad digits, bad number. */
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_EFLAGS,
					     S("0201000000000000")), -EINVAL);
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_RAX, S("00")),
			 -EINVAL);
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_EFLAGS,
					     S("0201000g")), -EINVAL);
	assert_int_equal(rsp_regfile_write_p(&f, RSP_AMD64_NREGS, S("00")),
			 -ENOENT);
	assert_int_equal(f.eflags, 0x102);
}

static void expedite(void **state)
{
	struct rsp_amd64_regfile f;
	static const uint16_t want[] = { RSP_AMD64_RBP, RSP_AMD64_RSP,
					 RSP_AMD64_RIP, RSP_AMD64_EFLAGS };
	struct rsp_expedited regs[4];
	uint8_t scratch[64];
	struct rsp_stop s = { .kind = RSP_STOP_SIGNAL, .code = 5, .core = -1,
			      .has_thread = true, .thread = { .tid = 1 } };

	fill(&f);
	rsp_regfile_set_available(&f, RSP_AMD64_RSP, false);
	s.nregs = rsp_regfile_expedite(&f, want, 4, regs, scratch,
				       sizeof(scratch));
	assert_int_equal(s.nregs, 3);
	s.regs = regs;
	rsp_reply_stop(&r, &s);
	assert_reply(&r, "T0506:0607060504030201;10:eb92a581ffffffff;"
			 "11:46020000;thread:1;");
	/* The same in one call. */
	rsp_reply_reset(&r);
	s.regs = NULL;
	s.nregs = 0;
	rsp_reply_stop_regs(&r, &s, &f, want, 4);
	assert_reply(&r, "T0506:0607060504030201;10:eb92a581ffffffff;"
			 "11:46020000;thread:1;");
	/* Scratch too small: stops cleanly. */
	assert_int_equal(rsp_regfile_expedite(&f, want, 4, regs, scratch, 12),
			 1);
}

static void tdesc(void **state)
{
	static char xml[16384], small[64];
	size_t n = rsp_tdesc_write(xml, sizeof(xml));

	assert_true(n > 1000 && n < sizeof(xml));
	assert_int_equal(strlen(xml), n);
	assert_non_null(strstr(xml, "<architecture>i386:x86-64</architecture>"));
	assert_non_null(strstr(xml, "<feature name=\"org.gnu.gdb.i386.core\">"));
	/* Defaults left out: sequential numbers, integer types, "general". */
	assert_non_null(strstr(xml, "<reg name=\"rip\" bitsize=\"64\" "
				    "type=\"code_ptr\"/>"));
	assert_non_null(strstr(xml, "<reg name=\"fctrl\" bitsize=\"32\" "
				    "group=\"float\"/>"));
	assert_non_null(strstr(xml, "<reg name=\"kernel_gs_base\" "
				    "bitsize=\"64\" group=\"system\"/>"));
	/* gdb reads it 4 KiB per packet: two packets, not three. */
	assert_true(n <= 8192);
	/* Every row appears once, in order. */
	const char *p = xml;

	for (unsigned i = 0; i < RSP_AMD64_NREGS; i++) {
		char pat[64];

		snprintf(pat, sizeof(pat), "<reg name=\"%s\"",
			 rsp_amd64_regs[i].name);
		p = strstr(p, pat);
		assert_non_null(p);
	}
	/* Truncation: snprintf-like, NUL-terminated, same length. */
	assert_int_equal(rsp_tdesc_write(small, sizeof(small)), n);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, xml, sizeof(small) - 1);
	assert_int_equal(rsp_tdesc_write(NULL, 0), n);
}

static void threads_xml(void **state)
{
	static const char want[] =
		"<?xml version=\"1.0\"?>\n<threads>\n"
		"  <thread id=\"p1.1\" core=\"0\" name=\"vcpu0\"/>\n"
		"  <thread id=\"p1.2\" core=\"17\" name=\"a&lt;&amp;&gt;&quot;&apos;\">"
		"halted &lt;hlt&gt;</thread>\n"
		"  <thread id=\"p1.3\"/>\n"
		"</threads>\n";
	const struct rsp_thread_info t[] = {
		{ .id = { true, 1, 1 }, .core = 0, .name = "vcpu0" },
		{ .id = { true, 1, 2 }, .core = 17, .name = "a<&>\"'",
		  .extra = "halted <hlt>" },
		{ .id = { false, 0, 3 }, .core = -1 },
	};
	char buf[512], small[20];

	assert_int_equal(rsp_threads_xml_write(buf, sizeof(buf), t, 3, true),
			 sizeof(want) - 1);
	assert_string_equal(buf, want);
	/* Truncation: snprintf-like. */
	assert_int_equal(rsp_threads_xml_write(small, sizeof(small), t, 3, true),
			 sizeof(want) - 1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, want, sizeof(small) - 1);
	/* Not multiprocess: bare thread numbers. */
	assert_true(rsp_threads_xml_write(buf, sizeof(buf), t, 1, false) <
		    sizeof(buf));
	assert_non_null(strstr(buf, "<thread id=\"1\" core=\"0\""));
	assert_int_equal(rsp_threads_xml_write(buf, sizeof(buf), t, 0, false),
			 strlen("<?xml version=\"1.0\"?>\n<threads>\n</threads>\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(basics, setup),
		cmocka_unit_test_setup(overflow, setup),
		cmocka_unit_test_setup(thread_ids, setup),
		cmocka_unit_test_setup(xfer, setup),
		cmocka_unit_test_setup(stop_replies, setup),
		cmocka_unit_test_setup(table, setup),
		cmocka_unit_test_setup(g_reply, setup),
		cmocka_unit_test_setup(p_reply, setup),
		cmocka_unit_test_setup(g_write, setup),
		cmocka_unit_test_setup(p_write, setup),
		cmocka_unit_test_setup(expedite, setup),
		cmocka_unit_test_setup(tdesc, setup),
		cmocka_unit_test_setup(threads_xml, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
