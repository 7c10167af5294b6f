/*
 * tiny: boot sequence, the deterministic main loop on vCPU 0 and vCPU 1's
 * loop.
 *
 * Each iteration of vCPU 0 calls the same named functions in the same
 * order and changes the named globals in a way a test can predict from
 * tiny_iterations alone (given tiny_delta): breakpoints, watchpoints and
 * console lines line up with the source. README.md lists every name.
 */
#include "tiny.h"
#include "xen_abi.h"

/*
 * Default progress-line period: measured ~2000 iterations/s both under
 * stock QEMU TCG and as a PVH domU of Xen nested in QEMU TCG, so a line
 * every ~0.5 s (slower with a monitor re-injecting every int3). Tests may
 * change it (gdb: set var tiny_print_every=...; command line:
 * tiny.print_every=N).
 */
#define TINY_PRINT_EVERY_DEFAULT 1000
#define TINY_FIB_BASE 8
#define TINY_VCPU1_WAIT_YIELDS 100000

/* Monotonic (while tiny_delta > 0): tiny_counter += tiny_delta each iteration. */
volatile uint64_t tiny_counter;
/* What the guest adds each iteration; a debugger writing it changes the
 * counter= and delta= values on the console. */
volatile uint64_t tiny_delta = 1;
volatile uint64_t tiny_iterations;
/* Written (= tiny_counter) once per iteration by tiny_step_counter(): for watch. */
volatile uint64_t tiny_watch_target;
/* Read once per iteration by tiny_update_checksum(), never written: for rwatch. */
volatile uint64_t tiny_read_target = 0x5eed;
volatile uint64_t tiny_checksum;
volatile uint64_t tiny_fib_result;
volatile uint64_t tiny_long_sink;
volatile uint64_t tiny_print_every = TINY_PRINT_EVERY_DEFAULT;
volatile uint32_t tiny_selftest_flags = TINY_SELFTEST_DEFAULT;
/* Calls of tiny_hw_target(): one per iteration while TINY_SELFTEST_HWBP is set. */
volatile uint64_t tiny_hw_calls;
/* RDTSCP self-test: executions, and the TSC_AUX value the last one read. */
volatile uint64_t tiny_rdtscp_count;
volatile uint64_t tiny_tsc_aux;
/* Single-step traps seen during the last tiny_self_step() call. */
volatile uint64_t tiny_step_last;
volatile uint64_t tiny_demand_touches;

/* vCPU 1 */
volatile uint32_t tiny_vcpu1_state;
volatile int64_t tiny_vcpu1_error;
volatile uint64_t tiny_vcpu1_counter;
volatile uint64_t tiny_vcpu1_value = 1;
/* Non-zero: vCPU 1 calls SCHEDOP_yield each iteration so that, under
 * nested emulation, a spinning vCPU 1 does not starve dom0. */
volatile uint32_t tiny_vcpu1_yield = 1;
/* Calls of tiny_shared_fn() from both vCPUs, and per vCPU. */
volatile uint64_t tiny_shared_calls;
volatile uint64_t tiny_shared_by[2];
uint32_t tiny_nr_vcpus = 1;

/* Boot facts, copied from hvm_start_info before the identity map goes. */
uint32_t tiny_start_info_magic;
uint64_t tiny_mem_kib;
char tiny_cmdline[128];

/* The demand page's frame, also visible here through the 2 MiB page. */
__attribute__((section(".big.demand"), aligned(4096))) uint8_t tiny_demand_frame[4096];
/* In the 2 MiB page: a global whose translation goes through a PS=1 PDE. */
__attribute__((section(".big.data"))) volatile uint64_t tiny_big_counter;

TINY_NAMED uint64_t tiny_step_counter(void)
{
	tiny_counter += tiny_delta;
	tiny_watch_target = tiny_counter;
	return tiny_counter;
}

/* Recursive on purpose: breakpoints in it give deep, predictable backtraces. */
TINY_NAMED uint64_t tiny_fib(uint64_t n)
{
	if (n < 2)
		return n;
	return tiny_fib(n - 1) + tiny_fib(n - 2);
}

TINY_NAMED void tiny_update_checksum(void)
{
	uint64_t c = tiny_checksum;

	c = (c << 5 | c >> 59) ^ tiny_counter ^ tiny_read_target ^ tiny_fib_result;
	tiny_checksum = c;
}

/* One source line, 1000 iterations: a gdb `next` over it is one range step. */
TINY_NAMED void tiny_long_line(void)
{
	for (uint32_t i = 0; i < 1000; i++) tiny_long_sink += i;
}

/* The int3 self-test: every execution must reach the guest's #BP handler,
 * directly or re-injected by whatever monitors breakpoints underneath. */
TINY_NAMED void tiny_self_int3(void)
{
	__asm__ volatile(".globl tiny_self_int3_insn\n"
			 "tiny_self_int3_insn:\n\t"
			 "int3" ::: "memory");
}

/* The hardware-breakpoint self-test: DR0 holds this function's address. */
TINY_NAMED void tiny_hw_target(void)
{
	tiny_hw_calls++;
}

/*
 * The RDTSCP self-test: where a hypervisor intercepts TSC reads (Xen does in
 * its default TSC mode here), RDTSCP must reach it as RDTSCP; a platform that
 * reports it as RDTSC makes Xen inject #GP ("Insn mismatch"), and this
 * guest then stops on the unexpected vector, as Linux does in early boot.
 */
TINY_NAMED void tiny_self_rdtscp(void)
{
	uint32_t lo, hi, aux;

	__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
	tiny_tsc_aux = aux;
	tiny_rdtscp_count++;
}

/*
 * The single-step self-test: TF on for a few instructions. A trap follows
 * each instruction after the POPF that sets TF, up to and including the
 * POPF that clears it.
 */
TINY_NAMED void tiny_self_step(void)
{
	uint64_t before = tiny_db_step_count;

	__asm__ volatile("pushfq\n\t"
			 "orq $0x100, (%%rsp)\n\t"
			 "popfq\n\t"
			 "nop\n\tnop\n\tnop\n\tnop\n\t"
			 "pushfq\n\t"
			 "andq $~0x100, (%%rsp)\n\t"
			 "popfq" ::: "memory", "cc");
	tiny_step_last = tiny_db_step_count - before;
}

/*
 * The #PF self-test: unmap the demand page, then touch it. The #PF handler
 * maps it back and the access is retried, so every call is one fault, and
 * the page's contents survive (it is the same frame every time).
 */
TINY_NAMED void tiny_pf_cycle(void)
{
	volatile uint64_t *page = (volatile uint64_t *)(uintptr_t)TINY_DEMAND_VA;

	tiny_unmap_fix(TINY_FIX_DEMAND);
	*page += 1;
	tiny_demand_touches = *page;
}

TINY_NAMED void tiny_shared_fn(unsigned int vcpu)
{
	__atomic_fetch_add(&tiny_shared_calls, 1, __ATOMIC_RELAXED);
	tiny_shared_by[vcpu & 1]++;
}

TINY_NAMED void tiny_report(void)
{
	tiny_printf("tiny: iter=%lu counter=%lu delta=%lu bp=%lu db=%lu dr0=%lu step=%lu pf=%lu "
		    "rfign=%lu dbnc=%lu demand=%lu vcpu1=%lu shared=%lu flags=%#x checksum=%#lx dropped=%lu "
		    "rdtscp=%lu tsc=%lu\n",
		    tiny_iterations, tiny_counter, tiny_delta, tiny_bp_count, tiny_db_count,
		    tiny_db_dr_hits[0], tiny_db_step_count, tiny_pf_count, tiny_db_rf_ignored,
		    tiny_db_no_cause, tiny_demand_touches,
		    tiny_vcpu1_counter, tiny_shared_calls, tiny_selftest_flags, tiny_checksum,
		    tiny_console_dropped, tiny_rdtscp_count, tiny_rdtsc());
}

/* One iteration of vCPU 0's loop: the order of calls never changes. */
TINY_NAMED void tiny_iteration(void)
{
	uint32_t flags = tiny_selftest_flags;
	uint64_t every;

	tiny_step_counter();
	tiny_fib_result = tiny_fib(TINY_FIB_BASE + (tiny_iterations & 3));
	tiny_update_checksum();
	tiny_long_line();
	tiny_shared_fn(0);
	tiny_hwbp_sync();
	if (flags & TINY_SELFTEST_INT3)
		tiny_self_int3();
	if (flags & TINY_SELFTEST_HWBP)
		tiny_hw_target();
	if (flags & TINY_SELFTEST_PF)
		tiny_pf_cycle();
	if (flags & TINY_SELFTEST_STEP)
		tiny_self_step();
	if (flags & TINY_SELFTEST_RDTSCP)
		tiny_self_rdtscp();
	tiny_big_counter++;
	tiny_iterations++;
	every = tiny_print_every;
	if (every != 0 && tiny_iterations % every == 0)
		tiny_report();
}

TINY_NAMED TINY_NORETURN void tiny_main_loop(void)
{
	for (;;)
		tiny_iteration();
}

TINY_NAMED void tiny_vcpu1_work(void)
{
	tiny_vcpu1_value = tiny_vcpu1_value * 6364136223846793005ull + 1442695040888963407ull;
}

TINY_NAMED TINY_NORETURN void tiny_vcpu1_loop(void)
{
	for (;;) {
		tiny_vcpu1_counter++;
		tiny_vcpu1_work();
		tiny_shared_fn(1);
		if (tiny_vcpu1_yield)
			tiny_xen_yield();
	}
}

void tiny_vcpu1_main(void)
{
	tiny_trap_init_cpu();
	__atomic_store_n(&tiny_vcpu1_state, TINY_VCPU1_RUNNING, __ATOMIC_RELEASE);
	tiny_vcpu1_loop();
}

/* tiny.print_every=N, tiny.selftest=N and tiny.e9=N on the kernel command line. */
static void tiny_parse_cmdline(void)
{
	const char *p = tiny_cmdline, *tok, *eq;
	uint64_t v;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		tok = p;
		while (*p != '\0' && *p != ' ')
			p++;
		eq = tok;
		while (eq < p && *eq != '=')
			eq++;
		if (eq == p || !tiny_parse_u64(eq + 1, (size_t)(p - eq - 1), &v))
			continue;
		if ((size_t)(eq - tok) == 16 && memcmp(tok, "tiny.print_every", 16) == 0)
			tiny_print_every = v;
		else if ((size_t)(eq - tok) == 13 && memcmp(tok, "tiny.selftest", 13) == 0)
			tiny_selftest_flags = (uint32_t)v;
		else if ((size_t)(eq - tok) == 7 && memcmp(tok, "tiny.e9", 7) == 0)
			tiny_console_e9 = v != 0;
	}
}

/*
 * Read through the identity map, which still exists here. The memory map
 * is only in version 1+ of the structure; QEMU's PVH boot provides it too.
 */
static void tiny_read_start_info(uint32_t paddr)
{
	const struct tiny_hvm_start_info *si;
	const struct tiny_hvm_memmap_table_entry *mm;
	const char *cl;
	uint32_t i;

	if (paddr == 0)
		return;
	si = (const struct tiny_hvm_start_info *)(uintptr_t)paddr;
	tiny_start_info_magic = si->magic;
	if (si->magic != TINY_HVM_START_MAGIC)
		return;
	if (si->cmdline_paddr != 0 && si->cmdline_paddr < 0x40000000) {
		cl = (const char *)(uintptr_t)si->cmdline_paddr;
		for (i = 0; i < sizeof(tiny_cmdline) - 1 && cl[i] != '\0'; i++)
			tiny_cmdline[i] = cl[i] == '"' ? '\'' : cl[i];
		tiny_cmdline[i] = '\0';
	}
	if (si->version >= 1 && si->memmap_paddr != 0 && si->memmap_paddr < 0x40000000) {
		mm = (const struct tiny_hvm_memmap_table_entry *)(uintptr_t)si->memmap_paddr;
		for (i = 0; i < si->memmap_entries; i++)
			if (mm[i].type == TINY_HVM_MEMMAP_TYPE_RAM)
				tiny_mem_kib += mm[i].size / 1024;
	}
}

/* The PV console: its frame is mapped into the fixed PT, never identity. */
static void tiny_setup_xen_console(void)
{
	uint64_t pfn = 0, port = 0;

	if (tiny_xen_get_param(TINY_HVM_PARAM_CONSOLE_PFN, &pfn) != 0 || pfn == 0 ||
	    tiny_xen_get_param(TINY_HVM_PARAM_CONSOLE_EVTCHN, &port) != 0) {
		tiny_printf("tiny: no PV console (pfn=%#lx port=%lu)\n", pfn, port);
		return;
	}
	tiny_map_fix(TINY_FIX_CONSOLE, pfn << 12);
	tiny_console_xen((volatile void *)(uintptr_t)TINY_CONSOLE_VA, (uint32_t)port);
}

static void tiny_start_vcpu1(void)
{
	unsigned int i;
	int rc;

	rc = tiny_xen_start_vcpu1();
	if (rc != 0) {
		tiny_printf("tiny: vcpu1 not started rc=%d\n", rc);
		return;
	}
	for (i = 0; i < TINY_VCPU1_WAIT_YIELDS; i++) {
		if (__atomic_load_n(&tiny_vcpu1_state, __ATOMIC_ACQUIRE) == TINY_VCPU1_RUNNING) {
			tiny_nr_vcpus = 2;
			return;
		}
		tiny_xen_yield();
	}
	tiny_printf("tiny: vcpu1 up but not running after %u yields\n", i);
}

void tiny_main(uint32_t start_info_paddr)
{
	tiny_paging_init();
	tiny_trap_init_cpu();
	tiny_read_start_info(start_info_paddr);
	tiny_paging_drop_identity();
	tiny_parse_cmdline();

	if (tiny_xen_detect()) {
		tiny_setup_xen_console();
		tiny_start_vcpu1();
	}
	tiny_printf("tiny: boot xen=%u vcpus=%u mem_kib=%lu start_info=%#x magic=%#x cmdline=\"%s\"\n",
		    tiny_xen ? 1u : 0u, tiny_nr_vcpus, tiny_mem_kib, start_info_paddr,
		    tiny_start_info_magic, tiny_cmdline);
	tiny_printf("tiny: layout voff=%#lx text=%#lx big=%#lx demand=%#lx demand_phys=%#lx console=%#lx cr3=%#lx "
		    "print_every=%lu flags=%#x\n",
		    (uint64_t)TINY_VOFF, (uint64_t)(uintptr_t)__image_start, (uint64_t)TINY_BIG_VA,
		    (uint64_t)TINY_DEMAND_VA, (uint64_t)TINY_DEMAND_PHYS, (uint64_t)TINY_CONSOLE_VA,
		    tiny_read_cr(3),
		    tiny_print_every, tiny_selftest_flags);
	tiny_main_loop();
}
