/*
 * tiny: a host-side, compile-only check that xen_abi.h matches Xen's
 * public headers (libxen-dev). Built by test_tiny_qemu.py when
 * /usr/include/xen exists; never linked into the guest.
 */
#include <stddef.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/event_channel.h>
#include <xen/sched.h>
#include <xen/vcpu.h>
#include <xen/hvm/hvm_op.h>
#include <xen/hvm/params.h>
#include <xen/hvm/hvm_vcpu.h>
#include <xen/io/console.h>
#include <xen/arch-x86/hvm/start_info.h>

#include "xen_abi.h"

#define SAME(a, b) _Static_assert((a) == (b), #a " != " #b)
#define SAME_STRUCT(t, x) _Static_assert(sizeof(struct t) == sizeof(struct x), #t)
#define SAME_FIELD(t, x, f) \
	_Static_assert(offsetof(struct t, f) == offsetof(struct x, f), #t "." #f)

SAME(TINY_HYPERVISOR_vcpu_op, __HYPERVISOR_vcpu_op);
SAME(TINY_HYPERVISOR_sched_op, 29);
SAME(TINY_HYPERVISOR_event_channel_op, 32);
SAME(TINY_HYPERVISOR_hvm_op, __HYPERVISOR_hvm_op);
SAME(TINY_DOMID_SELF, DOMID_SELF);
SAME(TINY_SCHEDOP_yield, SCHEDOP_yield);
SAME(TINY_EVTCHNOP_send, EVTCHNOP_send);
SAME_STRUCT(tiny_evtchn_send, evtchn_send);
SAME(TINY_HVMOP_get_param, HVMOP_get_param);
SAME(TINY_HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_PFN);
SAME(TINY_HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_EVTCHN);
SAME_STRUCT(tiny_xen_hvm_param, xen_hvm_param);
SAME_FIELD(tiny_xen_hvm_param, xen_hvm_param, index);
SAME_FIELD(tiny_xen_hvm_param, xen_hvm_param, value);
SAME(TINY_VCPUOP_initialise, VCPUOP_initialise);
SAME(TINY_VCPUOP_up, VCPUOP_up);
SAME(TINY_VCPUOP_is_up, VCPUOP_is_up);
SAME(TINY_VCPU_HVM_MODE_64B, VCPU_HVM_MODE_64B);
SAME_STRUCT(tiny_vcpu_hvm_context, vcpu_hvm_context);
SAME_STRUCT(tiny_vcpu_hvm_x86_64, vcpu_hvm_x86_64);
SAME_FIELD(tiny_vcpu_hvm_context, vcpu_hvm_context, cpu_regs);
SAME_FIELD(tiny_vcpu_hvm_x86_64, vcpu_hvm_x86_64, rip);
SAME_FIELD(tiny_vcpu_hvm_x86_64, vcpu_hvm_x86_64, rflags);
SAME_FIELD(tiny_vcpu_hvm_x86_64, vcpu_hvm_x86_64, cr0);
SAME_FIELD(tiny_vcpu_hvm_x86_64, vcpu_hvm_x86_64, efer);
SAME_STRUCT(tiny_xencons_interface, xencons_interface);
SAME_FIELD(tiny_xencons_interface, xencons_interface, out);
SAME_FIELD(tiny_xencons_interface, xencons_interface, out_cons);
SAME_FIELD(tiny_xencons_interface, xencons_interface, out_prod);
SAME(TINY_HVM_START_MAGIC, XEN_HVM_START_MAGIC_VALUE);
SAME(TINY_HVM_MEMMAP_TYPE_RAM, XEN_HVM_MEMMAP_TYPE_RAM);
SAME_STRUCT(tiny_hvm_start_info, hvm_start_info);
SAME_FIELD(tiny_hvm_start_info, hvm_start_info, cmdline_paddr);
SAME_FIELD(tiny_hvm_start_info, hvm_start_info, memmap_paddr);
SAME_FIELD(tiny_hvm_start_info, hvm_start_info, memmap_entries);
SAME_STRUCT(tiny_hvm_memmap_table_entry, hvm_memmap_table_entry);
SAME_FIELD(tiny_hvm_memmap_table_entry, hvm_memmap_table_entry, type);

int tiny_xen_abi_check_unused;
