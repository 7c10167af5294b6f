/*
 * tiny: the IDT and what it does with each exception.
 *
 * #BP, #DB and #PF count what they see in named globals, so a test can
 * tell whether an exception reached the guest (the counter moved) or was
 * consumed by the debugger underneath (it did not). Every other vector
 * prints a FATAL line and halts that vCPU: a bug stays visible instead of
 * becoming a triple fault and a silent domain crash.
 */
#include "tiny.h"

#define X86_RFLAGS_TF 0x00000100ull
#define X86_RFLAGS_RF 0x00010000ull
#define X86_DR6_BS    0x00004000ull
#define X86_DR6_BMASK 0x0000000full
/* Architectural DR6 value with no condition recorded (SDM 18.2.3). */
#define X86_DR6_CLEAR 0xffff0ff0ull
/* DR7: L0 (local enable of DR0); bit 10 reads as one. R/W0 = LEN0 = 00
 * is an instruction breakpoint. */
#define X86_DR7_L0    0x00000001ull
#define X86_DR7_RSVD1 0x00000400ull
#define X86_DR7_DR0_MASK 0x000f0003ull

/* Every #BP the guest's IDT received (vCPU 0's int3 self-test, mostly). */
volatile uint64_t tiny_bp_count;
volatile uint64_t tiny_bp_last_rip;
/* Every #DB, whatever its cause. */
volatile uint64_t tiny_db_count;
/* #DB with DR6.BS: single-step traps (tiny_self_step()). */
volatile uint64_t tiny_db_step_count;
/* Instruction-breakpoint hits per debug register. */
volatile uint64_t tiny_db_dr_hits[4];
volatile uint64_t tiny_db_last_dr6;
/* #DB whose DR6 named no cause; classified by RIP instead (a hypervisor
 * that re-injects #DB may not carry DR6 along). */
volatile uint64_t tiny_db_no_cause;
/* DR0 fired twice in one call of tiny_hw_target: the platform ignored
 * RFLAGS.RF on return; DR0 was disarmed until the next iteration. */
volatile uint64_t tiny_db_rf_ignored;
/* Demand-page faults handled (tiny_pf_cycle()). */
volatile uint64_t tiny_pf_count;
volatile uint64_t tiny_pf_last_addr;

struct tiny_idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
};

static struct tiny_idt_gate tiny_idt[32] __attribute__((aligned(16)));
static bool tiny_idt_built;
static bool tiny_hwbp_armed;
static uint64_t tiny_hwbp_last_call = ~0ull;

static uint64_t tiny_read_dr(int n)
{
	uint64_t v = 0;

	switch (n) {
	case 6: __asm__ volatile("mov %%dr6, %0" : "=r"(v)); break;
	case 7: __asm__ volatile("mov %%dr7, %0" : "=r"(v)); break;
	default: break;
	}
	return v;
}

static void tiny_write_dr(int n, uint64_t v)
{
	switch (n) {
	case 0: __asm__ volatile("mov %0, %%dr0" : : "r"(v)); break;
	case 6: __asm__ volatile("mov %0, %%dr6" : : "r"(v)); break;
	case 7: __asm__ volatile("mov %0, %%dr7" : : "r"(v)); break;
	default: break;
	}
}

/* Both vCPUs share one IDT; each loads it. Interrupt gates (type 0xe), so
 * IF and TF are clear inside every handler. */
void tiny_trap_init_cpu(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr;
	unsigned int v;

	if (!tiny_idt_built) {
		for (v = 0; v < 32; v++) {
			uint64_t a = tiny_isr_table[v];

			tiny_idt[v].offset_lo = (uint16_t)a;
			tiny_idt[v].selector = TINY_CS64;
			tiny_idt[v].ist = 0;
			tiny_idt[v].type_attr = 0x8e;
			tiny_idt[v].offset_mid = (uint16_t)(a >> 16);
			tiny_idt[v].offset_hi = (uint32_t)(a >> 32);
		}
		tiny_idt_built = true;
	}
	idtr.limit = sizeof(tiny_idt) - 1;
	idtr.base = (uint64_t)(uintptr_t)tiny_idt;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void tiny_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt");
}

/*
 * Make DR0/DR7 match TINY_SELFTEST_HWBP. DR7 is written only on a change,
 * never every iteration: a debugger underneath may be using DR1-3 and the
 * guest must not keep stomping on them.
 */
void tiny_hwbp_sync(void)
{
	bool want = (tiny_selftest_flags & TINY_SELFTEST_HWBP) != 0;
	uint64_t dr7;

	if (want == tiny_hwbp_armed)
		return;
	dr7 = tiny_read_dr(7) & ~X86_DR7_DR0_MASK;
	if (want) {
		tiny_write_dr(0, (uint64_t)(uintptr_t)&tiny_hw_target);
		dr7 |= X86_DR7_L0;
	}
	tiny_write_dr(7, dr7 | X86_DR7_RSVD1);
	tiny_hwbp_armed = want;
}

static void tiny_hwbp_disarm(void)
{
	tiny_write_dr(7, (tiny_read_dr(7) & ~X86_DR7_DR0_MASK) | X86_DR7_RSVD1);
	tiny_hwbp_armed = false;
}

static void tiny_trap_db(struct tiny_frame *f)
{
	uint64_t dr6 = tiny_read_dr(6);
	bool dr0 = (dr6 & 1) != 0;
	unsigned int i;

	__atomic_fetch_add(&tiny_db_count, 1, __ATOMIC_RELAXED);
	tiny_db_last_dr6 = dr6;
	if ((dr6 & (X86_DR6_BMASK | X86_DR6_BS)) == 0) {
		__atomic_fetch_add(&tiny_db_no_cause, 1, __ATOMIC_RELAXED);
		/* An instruction breakpoint is a fault: RIP is its address. */
		dr0 = tiny_hwbp_armed && f->rip == (uint64_t)(uintptr_t)&tiny_hw_target;
	}
	for (i = 1; i < 4; i++)
		if (dr6 & (1ull << i))
			__atomic_fetch_add(&tiny_db_dr_hits[i], 1, __ATOMIC_RELAXED);
	if (dr0) {
		if (tiny_hwbp_last_call == tiny_hw_calls) {
			__atomic_fetch_add(&tiny_db_rf_ignored, 1, __ATOMIC_RELAXED);
			tiny_hwbp_disarm();
		} else {
			__atomic_fetch_add(&tiny_db_dr_hits[0], 1, __ATOMIC_RELAXED);
			tiny_hwbp_last_call = tiny_hw_calls;
		}
	}
	if (dr6 & X86_DR6_BMASK || dr0)
		/* Resume flag: re-execute the instruction without the
		 * breakpoint firing again (SDM 18.3.1.1). */
		f->rflags |= X86_RFLAGS_RF;
	if (dr6 & X86_DR6_BS)
		__atomic_fetch_add(&tiny_db_step_count, 1, __ATOMIC_RELAXED);
	/* DR6 is sticky: clear it, or the next #DB reports stale causes. */
	tiny_write_dr(6, X86_DR6_CLEAR);
}

static const char *const tiny_vector_names[32] = {
	"DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS", "NP",
	"SS", "GP", "PF", "15", "MF", "AC", "MC", "XM", "VE", "CP", "22", "23",
	"24", "25", "26", "27", "HV", "VC", "SX", "31",
};

void tiny_trap(struct tiny_frame *f)
{
	uint64_t cr2;

	switch (f->vector) {
	case 3:
		__atomic_fetch_add(&tiny_bp_count, 1, __ATOMIC_RELAXED);
		/* #BP is a trap: RIP is already past the int3. */
		tiny_bp_last_rip = f->rip - 1;
		return;
	case 1:
		tiny_trap_db(f);
		return;
	case 14:
		cr2 = tiny_read_cr(2);
		if (tiny_demand_fault(cr2, f->error)) {
			__atomic_fetch_add(&tiny_pf_count, 1, __ATOMIC_RELAXED);
			tiny_pf_last_addr = cr2;
			return;
		}
		break;
	default:
		break;
	}

	tiny_printf("tiny: FATAL vector=%lu name=%s error=%#lx rip=%#lx rsp=%#lx cr2=%#lx rflags=%#lx vcpu=%u\n",
		    f->vector, tiny_vector_names[f->vector & 31], f->error, f->rip, f->rsp,
		    tiny_read_cr(2), f->rflags,
		    f->rsp >= (uint64_t)(uintptr_t)tiny_stack1_top - TINY_STACK_SIZE &&
				    f->rsp <= (uint64_t)(uintptr_t)tiny_stack1_top ? 1u : 0u);
	tiny_halt();
}
