/*
 * tiny: declarations shared by the guest's C files. The guest is a test
 * fixture: every global below is read or written by name from gdb, the
 * vmi tests or the lab, so the names and meanings are its interface
 * (README.md lists them).
 */
#ifndef TINY_TINY_H
#define TINY_TINY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/*
 * A function a debugger or test names: noipa keeps it a real, separately
 * callable function (no inlining, cloning or interprocedural shortcuts), so
 * a breakpoint on its name is hit on every call; used keeps it in the ELF.
 */
#if defined(__has_attribute) && __has_attribute(noipa)
#define TINY_NAMED __attribute__((noipa, used))
#else
/* clang has no noipa; noinline is its closest (it does not clone). */
#define TINY_NAMED __attribute__((noinline, used))
#endif
#define TINY_NORETURN __attribute__((noreturn))

/* tiny_selftest_flags bits: each enables one self-test in the main loop. */
#define TINY_SELFTEST_INT3  0x1u /* tiny_self_int3(): the guest's own int3 */
#define TINY_SELFTEST_HWBP  0x2u /* DR0 = tiny_hw_target, execute breakpoint */
#define TINY_SELFTEST_PF    0x4u /* tiny_pf_cycle(): demand-mapped page */
#define TINY_SELFTEST_STEP  0x8u /* tiny_self_step(): RFLAGS.TF over 4 nops */
#define TINY_SELFTEST_RDTSCP 0x10u /* tiny_self_rdtscp(): one RDTSCP */
#define TINY_SELFTEST_DEFAULT \
	(TINY_SELFTEST_INT3 | TINY_SELFTEST_HWBP | TINY_SELFTEST_PF)

/* Values of tiny_vcpu1_state. */
#define TINY_VCPU1_ABSENT   0 /* not tried (no Xen) */
#define TINY_VCPU1_STARTING 1 /* VCPUOP_up returned 0, not yet running */
#define TINY_VCPU1_RUNNING  2 /* tiny_vcpu1_main() reached */
#define TINY_VCPU1_FAILED   3 /* a VCPUOP failed: tiny_vcpu1_error has rc */

/* The register frame entry.S pushes before calling tiny_trap(). */
struct tiny_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

/* Linker-script symbols (tiny.ld). */
extern char __image_start[], __text_end[], __image_end[];
extern char __big_start[], __big_end[];

/* main.c: the interface globals */
extern volatile uint64_t tiny_counter, tiny_delta, tiny_iterations;
extern volatile uint64_t tiny_watch_target, tiny_read_target;
extern volatile uint64_t tiny_print_every;
extern volatile uint32_t tiny_selftest_flags;
extern volatile uint64_t tiny_hw_calls;
extern volatile uint64_t tiny_rdtscp_count;
extern volatile uint64_t tiny_tsc_aux;
extern volatile uint64_t tiny_vcpu1_counter, tiny_shared_calls;
extern volatile uint32_t tiny_vcpu1_state;
extern volatile int64_t tiny_vcpu1_error;
extern volatile uint32_t tiny_boot_ebx;
extern uint8_t tiny_demand_frame[4096];

void tiny_main(uint32_t start_info_paddr) TINY_NORETURN;
void tiny_vcpu1_main(void) TINY_NORETURN;
void tiny_shared_fn(unsigned int vcpu);
/* The named functions of the loop (README.md). */
uint64_t tiny_step_counter(void);
uint64_t tiny_fib(uint64_t n);
void tiny_update_checksum(void);
void tiny_long_line(void);
void tiny_self_int3(void);
void tiny_hw_target(void);
void tiny_self_step(void);
void tiny_self_rdtscp(void);
void tiny_pf_cycle(void);
void tiny_report(void);
void tiny_iteration(void);
void tiny_main_loop(void) TINY_NORETURN;
void tiny_vcpu1_work(void);
void tiny_vcpu1_loop(void) TINY_NORETURN;

/* lib.c: what GCC may call even in freestanding code, plus parsing. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t tiny_strlen(const char *s);
bool tiny_parse_u64(const char *s, size_t n, uint64_t *out);

/* trap.c */
extern volatile uint64_t tiny_bp_count, tiny_db_count, tiny_db_step_count;
extern volatile uint64_t tiny_db_dr_hits[4], tiny_db_last_dr6;
extern volatile uint64_t tiny_db_rf_ignored, tiny_db_no_cause, tiny_pf_count, tiny_pf_last_addr;
void tiny_trap_init_cpu(void);
void tiny_trap(struct tiny_frame *f);
void tiny_hwbp_sync(void);
void tiny_halt(void) TINY_NORETURN;

/* paging.c */
void tiny_paging_init(void);
void tiny_paging_drop_identity(void);
void tiny_map_fix(unsigned int slot, uint64_t paddr);
void tiny_unmap_fix(unsigned int slot);
bool tiny_demand_fault(uint64_t addr, uint64_t error);
uint64_t tiny_virt_to_phys(const void *p);

/* console.c */
void tiny_console_xen(volatile void *ring, uint32_t evtchn);
extern volatile uint32_t tiny_console_e9;
void tiny_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void tiny_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
extern volatile uint64_t tiny_console_dropped;

/* xen.c */
extern bool tiny_xen;
extern uint32_t tiny_xen_base;
bool tiny_xen_detect(void);
long tiny_xen_get_param(uint32_t index, uint64_t *value);
long tiny_xen_evtchn_send(uint32_t port);
long tiny_xen_yield(void);
int tiny_xen_start_vcpu1(void);

/* entry.S */
extern char tiny_vcpu1_entry[];
extern char tiny_hypercall_page[];
extern const uint64_t tiny_isr_table[32];
extern uint64_t tiny_pml4[512];
extern uint8_t tiny_stack1_top[];
void tiny_gdt_load(void);

/* CPU access helpers: inline asm, so they live here. */
static inline void tiny_outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint64_t tiny_read_cr(int n)
{
	uint64_t v = 0;

	switch (n) {
	case 0: __asm__ volatile("mov %%cr0, %0" : "=r"(v)); break;
	case 2: __asm__ volatile("mov %%cr2, %0" : "=r"(v)); break;
	case 3: __asm__ volatile("mov %%cr3, %0" : "=r"(v)); break;
	case 4: __asm__ volatile("mov %%cr4, %0" : "=r"(v)); break;
	default: break;
	}
	return v;
}

static inline void tiny_write_cr3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t tiny_rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void tiny_wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void tiny_cpuid(uint32_t leaf, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline uint64_t tiny_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void tiny_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

#define TINY_MSR_EFER 0xc0000080u

#endif
