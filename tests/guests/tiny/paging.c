/*
 * tiny: the final page tables (layout.h has the map).
 *
 * entry.S enters the higher half through boot tables made only of 2 MiB
 * pages. Here the higher half is rebuilt with both page sizes, so the vmi
 * translation code meets a 4 KiB walk (kernel image), a 2 MiB walk (.big)
 * and a not-present entry (the demand page between touches).
 */
#include "tiny.h"

#define PTE_P   0x001ull
#define PTE_RW  0x002ull
#define PTE_PS  0x080ull
#define PTE_ADDR 0x000ffffffffff000ull

/* Virtual address bits to table indices. */
#define PML4_IDX(va) (((va) >> 39) & 511)
#define PDPT_IDX(va) (((va) >> 30) & 511)
#define PD_IDX(va)   (((va) >> 21) & 511)
#define PT_IDX(va)   (((va) >> 12) & 511)

extern uint64_t tiny_pdpt_hi[512];

static uint64_t tiny_pd_hi[512] __attribute__((aligned(4096)));
static uint64_t tiny_pt_kernel[512] __attribute__((aligned(4096)));
static uint64_t tiny_pt_fix[512] __attribute__((aligned(4096)));

uint64_t tiny_virt_to_phys(const void *p)
{
	return (uint64_t)(uintptr_t)p - TINY_VOFF;
}

static void tiny_invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" : : "r"(va) : "memory");
}

void tiny_paging_init(void)
{
	uint64_t va, start, end, rw_from;

	start = (uint64_t)(uintptr_t)__image_start;
	end = (uint64_t)(uintptr_t)__image_end;
	rw_from = (uint64_t)(uintptr_t)__text_end;
	/* tiny.ld cannot include layout.h: catch the two drifting apart. */
	if (start != TINY_VOFF + TINY_PHYS_BASE || (uint64_t)(uintptr_t)__big_start != TINY_BIG_VA ||
	    tiny_virt_to_phys(tiny_demand_frame) != TINY_DEMAND_PHYS ||
	    PD_IDX(TINY_FIX_VA) != 3 || PD_IDX(TINY_BIG_VA) != 1) {
		tiny_printf("tiny: FATAL layout.h and tiny.ld disagree\n");
		tiny_halt();
	}

	/* Kernel image: read-only up to __text_end, so a stray write faults. */
	for (va = start; va < end; va += 4096)
		tiny_pt_kernel[PT_IDX(va)] = (va - TINY_VOFF) | PTE_P | (va >= rw_from ? PTE_RW : 0);

	tiny_pd_hi[PD_IDX(start)] = tiny_virt_to_phys(tiny_pt_kernel) | PTE_P | PTE_RW;
	tiny_pd_hi[PD_IDX(TINY_BIG_VA)] = TINY_BIG_PHYS | PTE_P | PTE_RW | PTE_PS;
	tiny_pd_hi[PD_IDX(TINY_FIX_VA)] = tiny_virt_to_phys(tiny_pt_fix) | PTE_P | PTE_RW;

	/*
	 * One 8-byte store swaps the boot PD for the final one. Both map the
	 * code and stack we run on at the same physical addresses, so nothing
	 * observes the switch; the CR3 reload drops the old 2 MiB TLB entries.
	 */
	__atomic_store_n(&tiny_pdpt_hi[PDPT_IDX(TINY_VOFF)],
			 tiny_virt_to_phys(tiny_pd_hi) | PTE_P | PTE_RW, __ATOMIC_RELEASE);
	tiny_write_cr3(tiny_read_cr(3));
}

/*
 * The identity map is only needed until the higher half runs and the
 * start info is copied; removing it makes guest virtual != guest physical
 * everywhere, which is what the vmi tests check.
 */
void tiny_paging_drop_identity(void)
{
	__atomic_store_n(&tiny_pml4[0], 0, __ATOMIC_RELEASE);
	tiny_write_cr3(tiny_read_cr(3));
}

void tiny_map_fix(unsigned int slot, uint64_t paddr)
{
	__atomic_store_n(&tiny_pt_fix[slot], (paddr & PTE_ADDR) | PTE_P | PTE_RW, __ATOMIC_RELEASE);
	tiny_invlpg(TINY_FIX_VA + (uint64_t)slot * 4096);
}

void tiny_unmap_fix(unsigned int slot)
{
	__atomic_store_n(&tiny_pt_fix[slot], 0, __ATOMIC_RELEASE);
	tiny_invlpg(TINY_FIX_VA + (uint64_t)slot * 4096);
}

/*
 * #PF policy: only a not-present fault on the demand page is expected; it
 * is mapped to TINY_DEMAND_PHYS and the access retried. Anything else is
 * a bug and the caller halts.
 */
bool tiny_demand_fault(uint64_t addr, uint64_t error)
{
	if ((addr & ~0xfffull) != TINY_DEMAND_VA || (error & PTE_P))
		return false;
	tiny_map_fix(TINY_FIX_DEMAND, TINY_DEMAND_PHYS);
	return true;
}
