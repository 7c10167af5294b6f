/*
 * insn.c - the instructions Xen completes itself, and their lengths (see
 * include/vmi_insn.h for why the session needs them).
 *
 * Which instructions, from Xen 4.17's exit handlers: svm_vmexit_handler
 * (xen/arch/x86/hvm/svm/svm.c) and vmx_vmexit_handler
 * (xen/arch/x86/hvm/vmx/vmx.c) finish CPUID, RDTSC/RDTSCP (when the TSC
 * is intercepted), I/O, MSR accesses, HLT, VMCALL/VMMCALL (hypercalls),
 * XSETBV, INVD/WBINVD with __update_guest_eip / update_guest_eip, which
 * inject #DB when TF is set (REVIEW-intel.md, finding 2). MONITOR/MWAIT
 * get an injected #UD from both (the guest never sees the feature); they
 * are in the set anyway, so that a guest which handles that #UD and
 * resumes after the instruction still stops there.
 *
 * Recognising an instruction that turns out not to be intercepted costs
 * nothing: a breakpoint after an instruction that falls through is a
 * correct step whether or not Xen was involved.
 */
#include "vmi_insn.h"

static bool
legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x66: case 0x67:               /* operand, address size */
	case 0xf2: case 0xf3:               /* REPNE, REP */
	case 0x2e: case 0x36: case 0x3e:    /* CS, SS, DS */
	case 0x26: case 0x64: case 0x65:    /* ES, FS, GS */
	case 0xf0:                          /* LOCK */
		return true;
	}
	return false;
}

/* Opcode length (without prefixes) of a one-byte-map member, or 0. */
static unsigned
one_byte(uint8_t op)
{
	switch (op) {
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:  /* IN/OUT imm8 */
		return 2;
	case 0xec: case 0xed: case 0xee: case 0xef:  /* IN/OUT DX */
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:  /* INS/OUTS */
	case 0xf4:                                   /* HLT */
		return 1;
	}
	return 0;
}

/* Opcode length, 0F included, of a member that starts with 0F, given the
 * n bytes after the 0F at p; 0 if not a member or cut short. */
static unsigned
two_byte(const uint8_t *p, size_t n)
{
	if (n < 1)
		return 0;
	switch (p[0]) {
	case 0xa2:  /* CPUID */
	case 0x31:  /* RDTSC */
	case 0x30:  /* WRMSR */
	case 0x32:  /* RDMSR */
	case 0x08:  /* INVD */
	case 0x09:  /* WBINVD */
		return 2;
	case 0x01:
		if (n < 2)
			return 0;
		switch (p[1]) {
		case 0xf9:  /* RDTSCP */
		case 0xc1:  /* VMCALL */
		case 0xd9:  /* VMMCALL */
		case 0xd1:  /* XSETBV */
		case 0xc8:  /* MONITOR */
		case 0xc9:  /* MWAIT */
			return 3;
		}
		return 0;
	}
	return 0;
}

unsigned
vmi_insn_intercepted(const uint8_t *b, size_t n, bool mode64)
{
	size_t i = 0, op;
	bool lock = false;

	if (n > VMI_INSN_MAX)
		n = VMI_INSN_MAX;
	/* A REX not right before the opcode is ignored (SDM vol. 2, 2.2.1)
	 * but still counts in the length, so it is skipped like the others. */
	while (i < n && (legacy_prefix(b[i]) ||
	    (mode64 && (b[i] & 0xf0) == 0x40))) {
		lock |= b[i] == 0xf0;
		i++;
	}
	if (i == n || lock)
		return 0;
	if (b[i] == 0x0f)
		op = two_byte(b + i + 1, n - i - 1);
	else
		op = one_byte(b[i]);
	if (op == 0 || i + op > n)
		return 0;
	return (unsigned)(i + op);
}
