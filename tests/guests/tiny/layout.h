/*
 * tiny: the guest's memory layout, shared by the C code and entry.S.
 * tiny.ld repeats the numbers it needs (a linker script cannot include a
 * header); tiny_paging_init() checks the linker's symbols against these at
 * boot and stops with a FATAL line if they disagree.
 *
 * Guest virtual                         Guest physical    Mapping
 * ------------------------------------  ----------------  --------------------
 * 0xffffffff80100000 .. __text_end      0x100000 ..       4 KiB PTEs, read-only
 *   (.note.Xen, .text, .rodata)                           (CR0.WP=1)
 * __text_end .. __image_end             .. < 0x200000     4 KiB PTEs, read-write
 *   (.data, .bss: page tables, GDT, IDT, all ordinary globals)
 * 0xffffffff80200000 .. +2 MiB          0x200000          one 2 MiB PDE (PS=1), RW
 *   (.big: tiny_demand_frame at its start, tiny_big_counter, the vCPU stacks)
 * 0xffffffff80600000 (TINY_DEMAND_VA)   0x200000          4 KiB PTE, not present
 *   until first touched; tiny_pf_cycle() unmaps it again every iteration.
 *   The frame is tiny_demand_frame: one physical page, two virtual names.
 * 0xffffffff80601000 (TINY_CONSOLE_VA)  Xen console pfn   4 KiB PTE, only under Xen
 * 0x0 .. 1 GiB (identity)               0x0 .. 1 GiB      2 MiB PDEs, boot only:
 *   removed by tiny_paging_drop_identity() before the main loop starts
 *
 * Page-table walk for the higher half: PML4[511] -> PDPT[510] -> PD, with
 * PD[0] -> the kernel PT, PD[1] = the 2 MiB page, PD[3] -> the fixed PT.
 * Everything between is not present: a stray pointer faults.
 */
#ifndef TINY_LAYOUT_H
#define TINY_LAYOUT_H

/* Guest virtual = guest physical + TINY_VOFF for the kernel image and .big. */
#define TINY_VOFF        0xffffffff80000000
#define TINY_PHYS_BASE   0x100000
#define TINY_BIG_PHYS    0x200000
#define TINY_BIG_VA      (TINY_VOFF + TINY_BIG_PHYS)
#define TINY_BIG_SIZE    0x200000
/* The first page of .big, so it is part of the image: no loader puts
 * start info or modules there. */
#define TINY_DEMAND_PHYS TINY_BIG_PHYS
#define TINY_FIX_VA      (TINY_VOFF + 0x600000)
#define TINY_DEMAND_VA   (TINY_FIX_VA + 0x0000)
#define TINY_CONSOLE_VA  (TINY_FIX_VA + 0x1000)
#define TINY_FIX_DEMAND  0
#define TINY_FIX_CONSOLE 1

/* GDT selectors (entry.S builds the GDT). */
#define TINY_CS64 0x08
#define TINY_DS   0x10

#define TINY_STACK_SIZE 0x8000

#endif
