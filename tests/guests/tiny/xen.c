/*
 * tiny: finding Xen, hypercalls, and bringing vCPU 1 up.
 *
 * Without Xen (stock QEMU) none of this runs and the guest is single-vCPU
 * with port 0xE9 as its only console.
 */
#include "tiny.h"
#include "xen_abi.h"

bool tiny_xen;
uint32_t tiny_xen_base;

/* Xen's CPUID leaves may start at any 0x100 step from 0x40000000
 * (arch-x86/cpuid.h): with Viridian enabled, Hyper-V's come first. */
bool tiny_xen_detect(void)
{
	uint32_t base, a, b, c, d;

	for (base = 0x40000000u; base < 0x40010000u; base += 0x100) {
		tiny_cpuid(base, &a, &b, &c, &d);
		if (b == 0x566e6558u && c == 0x65584d4du && d == 0x4d4d566eu && a >= base + 2) {
			tiny_cpuid(base + 2, &a, &b, &c, &d);
			/* eax = number of hypercall pages, ebx = the MSR that installs them */
			if (a < 1)
				return false;
			tiny_wrmsr(b, tiny_virt_to_phys(tiny_hypercall_page));
			tiny_xen_base = base;
			tiny_xen = true;
			return true;
		}
	}
	return false;
}

/*
 * One stub per hypercall, 32 bytes apart; 64-bit arguments in rdi, rsi,
 * rdx (xen.h, "HYPERCALLS"). Xen may clobber argument registers it does not
 * use (debug builds do, on purpose), so they are all outputs.
 */
static long tiny_hypercall3(unsigned int nr, uint64_t a1, uint64_t a2, uint64_t a3)
{
	register uint64_t rdi __asm__("rdi") = a1;
	register uint64_t rsi __asm__("rsi") = a2;
	register uint64_t rdx __asm__("rdx") = a3;
	uint64_t stub = (uint64_t)(uintptr_t)tiny_hypercall_page + (uint64_t)nr * 32;
	long ret;

	__asm__ volatile("call *%[stub]"
			 : "=a"(ret), "+r"(rdi), "+r"(rsi), "+r"(rdx)
			 : [stub] "r"(stub)
			 : "memory", "rcx", "r8", "r9", "r10", "r11");
	return ret;
}

long tiny_xen_get_param(uint32_t index, uint64_t *value)
{
	struct tiny_xen_hvm_param p = { .domid = TINY_DOMID_SELF, .index = index };
	long rc;

	rc = tiny_hypercall3(TINY_HYPERVISOR_hvm_op, TINY_HVMOP_get_param, (uint64_t)(uintptr_t)&p, 0);
	if (rc == 0)
		*value = p.value;
	return rc;
}

long tiny_xen_evtchn_send(uint32_t port)
{
	struct tiny_evtchn_send s = { .port = port };

	return tiny_hypercall3(TINY_HYPERVISOR_event_channel_op, TINY_EVTCHNOP_send,
			       (uint64_t)(uintptr_t)&s, 0);
}

long tiny_xen_yield(void)
{
	return tiny_hypercall3(TINY_HYPERVISOR_sched_op, TINY_SCHEDOP_yield, 0, 0);
}

/*
 * VCPUOP_initialise takes a struct vcpu_hvm_context for HVM/PVH guests
 * (Xen's arch_initialise_vcpu): in VCPU_HVM_MODE_64B the vCPU starts in
 * long mode with flat cached segments and the CR0/CR3/CR4/EFER given. Xen
 * requires CR0.PG, CR4.PAE and EFER.LME there, so vCPU 0's own values are
 * passed: same page tables, same paging mode. Returns 0 or -errno (Xen's).
 */
int tiny_xen_start_vcpu1(void)
{
	static struct tiny_vcpu_hvm_context ctx;
	long rc;

	ctx.mode = TINY_VCPU_HVM_MODE_64B;
	ctx.cpu_regs.x86_64.rip = (uint64_t)(uintptr_t)tiny_vcpu1_entry;
	ctx.cpu_regs.x86_64.rsp = (uint64_t)(uintptr_t)tiny_stack1_top;
	ctx.cpu_regs.x86_64.rflags = 0x2; /* bit 1 is reserved-one; IF off */
	ctx.cpu_regs.x86_64.cr0 = tiny_read_cr(0);
	ctx.cpu_regs.x86_64.cr3 = tiny_read_cr(3);
	ctx.cpu_regs.x86_64.cr4 = tiny_read_cr(4);
	ctx.cpu_regs.x86_64.efer = tiny_rdmsr(TINY_MSR_EFER);

	tiny_vcpu1_state = TINY_VCPU1_STARTING;
	rc = tiny_hypercall3(TINY_HYPERVISOR_vcpu_op, TINY_VCPUOP_initialise, 1,
			     (uint64_t)(uintptr_t)&ctx);
	if (rc == 0)
		rc = tiny_hypercall3(TINY_HYPERVISOR_vcpu_op, TINY_VCPUOP_up, 1, 0);
	if (rc != 0) {
		tiny_vcpu1_error = rc;
		tiny_vcpu1_state = TINY_VCPU1_FAILED;
	}
	return (int)rc;
}
