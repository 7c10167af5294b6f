/*
 * tiny: the few pieces of Xen's public guest ABI the guest uses, written
 * out from the public headers (cited per item) rather than included: the
 * guest is freestanding and must build without libxen-dev, and only
 * vmi/xen includes Xen's headers (DESIGN.md). xen_abi_check.c proves they
 * match /usr/include/xen: meson builds it where libxen-dev is installed,
 * and test_tiny_qemu.py compiles it too.
 */
#ifndef TINY_XEN_ABI_H
#define TINY_XEN_ABI_H

#include <stdint.h>

/* xen.h */
#define TINY_HYPERVISOR_vcpu_op          24
#define TINY_HYPERVISOR_sched_op         29
#define TINY_HYPERVISOR_event_channel_op 32
#define TINY_HYPERVISOR_hvm_op           34
#define TINY_DOMID_SELF                  0x7ff0

/* sched.h */
#define TINY_SCHEDOP_yield 0

/* event_channel.h */
#define TINY_EVTCHNOP_send 4
struct tiny_evtchn_send {
	uint32_t port;
};

/* hvm/hvm_op.h, hvm/params.h */
#define TINY_HVMOP_get_param          1
#define TINY_HVM_PARAM_CONSOLE_PFN    17
#define TINY_HVM_PARAM_CONSOLE_EVTCHN 18
struct tiny_xen_hvm_param {
	uint16_t domid;
	uint16_t pad;
	uint32_t index;
	uint64_t value;
};

/* vcpu.h */
#define TINY_VCPUOP_initialise 0
#define TINY_VCPUOP_up         1
#define TINY_VCPUOP_is_up      3

/* hvm/hvm_vcpu.h: only the 64-bit variant is used; the union's other
 * member (struct vcpu_hvm_x86_32) is larger, so pad to its size. */
#define TINY_VCPU_HVM_MODE_64B 1
struct tiny_vcpu_hvm_x86_64 {
	uint64_t rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
	uint64_t rip, rflags;
	uint64_t cr0, cr3, cr4, efer;
};
#define TINY_VCPU_HVM_X86_32_SIZE 120
struct tiny_vcpu_hvm_context {
	uint32_t mode;
	uint32_t pad;
	union {
		struct tiny_vcpu_hvm_x86_64 x86_64;
		uint8_t x86_32[TINY_VCPU_HVM_X86_32_SIZE];
	} cpu_regs;
};

/* io/console.h */
struct tiny_xencons_interface {
	char in[1024];
	char out[2048];
	uint32_t in_cons, in_prod;
	uint32_t out_cons, out_prod;
};

/* arch-x86/hvm/start_info.h */
#define TINY_HVM_START_MAGIC 0x336ec578
#define TINY_HVM_MEMMAP_TYPE_RAM 1
struct tiny_hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
struct tiny_hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

#endif
