/*
 * vmi_insn.h - recognise the x86 instructions that Xen intercepts and
 * completes itself, and say how long they are.
 *
 * When Xen finishes an intercepted instruction it advances RIP itself and,
 * finding RFLAGS.TF set, injects a #DB straight into the guest: no #DB
 * intercept, no monitor event (vmi/REVIEW-intel.md, finding 2). With MTF
 * the stop comes one instruction late. The session therefore steps over
 * these with an execution breakpoint at RIP + length instead, and needs
 * only this much of a decoder: every instruction of the set has a fixed
 * length once its prefixes are known (none has a ModRM byte; E4-E7 take
 * an imm8).
 *
 * Pure: no I/O, no allocation. Debian bookworm has full x86 decoders
 * (libzydis-dev 4.0, libcapstone-dev 4.0.2, libdistorm3-dev); one of them
 * would give the length, but which instructions Xen completes would still
 * be this file's list, and a disassembler in dom0 for twenty fixed-length
 * opcodes is more to carry than this.
 */
#ifndef VMI_INSN_H
#define VMI_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The architectural limit (SDM vol. 2, 2.3.11): a longer one is #GP. */
#define VMI_INSN_MAX 15

/*
 * b[0..n) are the bytes at RIP (n may be short of VMI_INSN_MAX where the
 * next page does not translate). mode64: the vCPU runs 64-bit code
 * (EFER.LMA and CS.L), where 40-4F are REX prefixes rather than INC/DEC.
 *
 * Returns the instruction's length if it is one of CPUID, RDTSC, RDTSCP,
 * IN, OUT, INS, OUTS, HLT, VMCALL, VMMCALL, RDMSR, WRMSR, XSETBV, INVD,
 * WBINVD, MONITOR, MWAIT after any legacy prefixes (66 67 F2 F3 2E 36 3E
 * 26 64 65) and, in 64-bit mode, REX; 0 for anything else, for a LOCK
 * prefix (F0: #UD, which comes before any intercept, SDM vol. 3C
 * "Relative Priority of Faults and VM Exits"), for
 * more than VMI_INSN_MAX bytes and when n bytes do not hold it all.
 */
unsigned vmi_insn_intercepted(const uint8_t *b, size_t n, bool mode64);

#endif
