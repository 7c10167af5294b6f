/*
 * tiny: PVH entry, the switch to long mode in the higher half, vCPU 1's
 * entry, the exception stubs and the hypercall page.
 *
 * PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h): the guest
 * is entered at the physical address of the XEN_ELFNOTE_PHYS32_ENTRY note
 * in 32-bit protected mode, paging off, flat CS/DS/ES/SS, interrupts off,
 * %ebx = physical address of struct hvm_start_info. GDTR/IDTR are not
 * usable. QEMU's -kernel PVH loader follows the same ABI.
 *
 * Everything is linked at its higher-half address (layout.h); until paging
 * is on, the 32-bit code uses PHYS(sym) = sym - TINY_VOFF.
 */
#include "layout.h"

#define PHYS(sym) ((sym) - TINY_VOFF)

#define X86_CR0_PE  0x00000001
#define X86_CR0_MP  0x00000002
#define X86_CR0_NE  0x00000020
#define X86_CR0_WP  0x00010000
#define X86_CR0_PG  0x80000000
#define X86_CR4_PAE 0x00000020
#define X86_EFER_LME 0x00000100
#define MSR_EFER    0xc0000080
#define PTE_P_RW    0x003
#define PDE_2M      0x083   /* present, writable, page size */

/*
 * The note's descriptor is 8 bytes: Xen reads 4- or 8-byte numeric notes,
 * and QEMU's PVH loader reads a 64-bit value from a 64-bit ELF.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                 /* namesz: "Xen\0" */
	.long 8                 /* descsz */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY (elfnote.h) */
	.asciz "Xen"
	.balign 4
	.quad PHYS(tiny_entry32)
	.balign 4

	.section .text.entry32, "ax", @progbits
	.code32
	.globl tiny_entry32
	.type tiny_entry32, @function
tiny_entry32:
	cli
	cld
	/* Keep %ebx (start info) in %esi: the .bss clear below uses eax/ecx/edi. */
	movl %ebx, %esi

	/*
	 * Both loaders zero .bss, but the boot page tables live there and a
	 * stale entry would map garbage: clear it ourselves.
	 */
	movl $PHYS(__bss_start), %edi
	movl $PHYS(__bss_end), %ecx
	subl %edi, %ecx
	shrl $2, %ecx
	xorl %eax, %eax
	rep stosl
	movl %esi, PHYS(tiny_boot_ebx)

	movl $PHYS(tiny_stack0_top), %esp

	/*
	 * Boot page tables: one PD of 2 MiB pages covering physical 0..1 GiB,
	 * reachable both as the identity map (PML4[0] -> PDPT_lo[0]) and as the
	 * higher half (PML4[511] -> PDPT_hi[510]). tiny_paging_init() replaces
	 * the higher-half part with the final 4 KiB / 2 MiB layout, and
	 * tiny_paging_drop_identity() removes PML4[0].
	 */
	movl $PHYS(tiny_boot_pd), %edi
	xorl %ecx, %ecx
1:	movl %ecx, %eax
	shll $21, %eax
	orl $PDE_2M, %eax
	movl %eax, (%edi,%ecx,8)
	movl $0, 4(%edi,%ecx,8)
	incl %ecx
	cmpl $512, %ecx
	jne 1b

	movl $(PHYS(tiny_boot_pd) + PTE_P_RW), %eax
	movl %eax, PHYS(tiny_boot_pdpt_lo)
	movl %eax, PHYS(tiny_pdpt_hi) + 510 * 8
	movl $(PHYS(tiny_boot_pdpt_lo) + PTE_P_RW), %eax
	movl %eax, PHYS(tiny_pml4)
	movl $(PHYS(tiny_pdpt_hi) + PTE_P_RW), %eax
	movl %eax, PHYS(tiny_pml4) + 511 * 8

	movl %cr4, %eax
	orl $X86_CR4_PAE, %eax
	movl %eax, %cr4
	movl $PHYS(tiny_pml4), %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $X86_EFER_LME, %eax
	wrmsr

	lgdt PHYS(tiny_boot_gdtr)
	movl %cr0, %eax
	orl $(X86_CR0_PG | X86_CR0_WP | X86_CR0_NE | X86_CR0_MP | X86_CR0_PE), %eax
	movl %eax, %cr0
	/* Paging on with EFER.LME: compatibility mode until CS has L=1. */
	ljmp $TINY_CS64, $PHYS(tiny_entry64_low)

	.code64
tiny_entry64_low:
	/* Still running from the identity map: jump to the linked address. */
	movabsq $tiny_entry64, %rax
	jmpq *%rax
	.size tiny_entry32, . - tiny_entry32

	.text
	.globl tiny_entry64
	.type tiny_entry64, @function
tiny_entry64:
	.cfi_startproc
	.cfi_undefined %rip
	movabsq $tiny_stack0_top, %rsp
	call tiny_gdt_load
	xorl %ebp, %ebp
	movl tiny_boot_ebx(%rip), %edi
	call tiny_main
	jmp tiny_halt
	.cfi_endproc
	.size tiny_entry64, . - tiny_entry64

/*
 * Reload GDTR with the GDT's virtual address (the boot GDTR holds its
 * physical one, which stops working when the identity map goes), then every
 * segment register: CS through a far return.
 */
	.globl tiny_gdt_load
	.type tiny_gdt_load, @function
tiny_gdt_load:
	lgdt tiny_gdtr(%rip)
	movl $TINY_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	popq %rax
	pushq $TINY_CS64
	pushq %rax
	lretq
	.size tiny_gdt_load, . - tiny_gdt_load

/*
 * vCPU 1 starts here from VCPUOP_initialise in VCPU_HVM_MODE_64B
 * (hvm/hvm_vcpu.h): long mode, our CR3, RSP at its own stack, flat cached
 * segments but no GDT/IDT of ours yet.
 */
	.globl tiny_vcpu1_entry
	.type tiny_vcpu1_entry, @function
tiny_vcpu1_entry:
	.cfi_startproc
	.cfi_undefined %rip
	call tiny_gdt_load
	xorl %ebp, %ebp
	call tiny_vcpu1_main
	jmp tiny_halt
	.cfi_endproc
	.size tiny_vcpu1_entry, . - tiny_vcpu1_entry

/*
 * Exception stubs. Vectors 8, 10-14, 17, 21, 29 and 30 push an error code;
 * the others get a 0 so that struct tiny_frame has one shape. 64-bit mode
 * aligns RSP to 16 before pushing SS..RIP (5 slots); with the error code,
 * vector and 15 registers the call happens 16-byte aligned, as the ABI
 * wants.
 *
 * The CFI describes the exception frame as a signal frame, so gdb's
 * backtrace from a handler continues into the interrupted code: the CFA is
 * the address just above the CPU-pushed SS slot; the interrupted RIP is at
 * CFA-40, its RSP at CFA-16.
 */
.macro TINY_ISR vec, has_err
	.type tiny_isr_\vec, @function
tiny_isr_\vec:
	.cfi_startproc simple
	.cfi_signal_frame
	.if \has_err == 0
	.cfi_def_cfa %rsp, 40
	.else
	.cfi_def_cfa %rsp, 48
	.endif
	.cfi_offset %rip, -40
	.cfi_offset %rsp, -16
	.if \has_err == 0
	pushq $0
	.cfi_adjust_cfa_offset 8
	.endif
	pushq $\vec
	.cfi_adjust_cfa_offset 8
	jmp tiny_isr_common
	.cfi_endproc
	.size tiny_isr_\vec, . - tiny_isr_\vec
.endm

	.irp v, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
	TINY_ISR \v, 0
	.endr
	.irp v, 8,10,11,12,13,14,17,21,29,30
	TINY_ISR \v, 1
	.endr

/* Push one register and say where it went (CFA-relative, for gdb). */
.macro TINY_SAVE reg, off
	pushq %\reg
	.cfi_adjust_cfa_offset 8
	.cfi_offset %\reg, \off
.endm

	.type tiny_isr_common, @function
tiny_isr_common:
	.cfi_startproc simple
	.cfi_signal_frame
	.cfi_def_cfa %rsp, 56
	.cfi_offset %rip, -40
	.cfi_offset %rsp, -16
	TINY_SAVE rax, -64
	TINY_SAVE rbx, -72
	TINY_SAVE rcx, -80
	TINY_SAVE rdx, -88
	TINY_SAVE rsi, -96
	TINY_SAVE rdi, -104
	TINY_SAVE rbp, -112
	TINY_SAVE r8, -120
	TINY_SAVE r9, -128
	TINY_SAVE r10, -136
	TINY_SAVE r11, -144
	TINY_SAVE r12, -152
	TINY_SAVE r13, -160
	TINY_SAVE r14, -168
	TINY_SAVE r15, -176
	movq %rsp, %rdi
	cld
	call tiny_trap
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rbp
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rbx
	popq %rax
	addq $16, %rsp
	iretq
	.cfi_endproc
	.size tiny_isr_common, . - tiny_isr_common

/*
 * Xen fills this page with one 32-byte stub per hypercall once the guest
 * writes its physical address to the MSR from CPUID leaf base+2. It sits in
 * .text so that it is mapped executable; Xen writes it through the p2m, so
 * the read-only guest mapping does not matter.
 */
	.section .text.hypercall, "ax", @progbits
	.balign 4096
	.globl tiny_hypercall_page
	.type tiny_hypercall_page, @object
tiny_hypercall_page:
	.fill 4096, 1, 0xcc
	.size tiny_hypercall_page, 4096

	.section .rodata
	.balign 8
	.globl tiny_isr_table
	.type tiny_isr_table, @object
tiny_isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad tiny_isr_\v
	.endr
	.size tiny_isr_table, . - tiny_isr_table

/*
 * GDT: null, 64-bit code (0x08), data (0x10). Accessed bits are preset so
 * the CPU never needs to write them. It is in .data, not .rodata, because a
 * CPU that did set an accessed bit would fault on a read-only page.
 */
	.data
	.balign 16
	.globl tiny_gdt
	.type tiny_gdt, @object
tiny_gdt:
	.quad 0
	.quad 0x00af9b000000ffff
	.quad 0x00cf93000000ffff
tiny_gdt_end:
	.size tiny_gdt, . - tiny_gdt

	.balign 8
	.type tiny_boot_gdtr, @object
tiny_boot_gdtr:
	.word tiny_gdt_end - tiny_gdt - 1
	.long PHYS(tiny_gdt)
	.size tiny_boot_gdtr, . - tiny_boot_gdtr

	.balign 8
	.type tiny_gdtr, @object
tiny_gdtr:
	.word tiny_gdt_end - tiny_gdt - 1
	.quad tiny_gdt
	.size tiny_gdtr, . - tiny_gdtr

	.balign 4
	.globl tiny_boot_ebx
	.type tiny_boot_ebx, @object
tiny_boot_ebx:
	.long 0
	.size tiny_boot_ebx, 4

/* Page tables: all zero at entry; see the walk in layout.h. */
	.section .bss.pagetables, "aw", @nobits
	.balign 4096
	.globl tiny_pml4, tiny_pdpt_hi, tiny_boot_pdpt_lo, tiny_boot_pd
tiny_pml4:		.skip 4096
tiny_pdpt_hi:		.skip 4096
tiny_boot_pdpt_lo:	.skip 4096
tiny_boot_pd:		.skip 4096

/* The stacks live in the 2 MiB page, so every push goes through it. */
	.section .big.stack, "aw", @nobits
	.balign 4096
	.globl tiny_stack0, tiny_stack0_top, tiny_stack1, tiny_stack1_top
tiny_stack0:		.skip TINY_STACK_SIZE
tiny_stack0_top:
tiny_stack1:		.skip TINY_STACK_SIZE
tiny_stack1_top:

	.section .note.GNU-stack, "", @progbits
