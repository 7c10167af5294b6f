/*
 * paging.c - x86-64 4- and 5-level page walks over any CR3.
 *
 * Bit positions follow the Intel SDM vol. 3A, 4.5 ("4-level paging and
 * 5-level paging"), tables 4-14 to 4-20; reserved-bit rules follow 4.5.4
 * and 4.7 (a set reserved bit makes the walk fail with a #PF RSVD).
 */
#include <errno.h>
#include <stddef.h>

#include "vmi.h"
#include "vmi_paging.h"

#define PTE_P   (1ULL << 0)
#define PTE_RW  (1ULL << 1)
#define PTE_US  (1ULL << 2)
#define PTE_PS  (1ULL << 7)
#define PTE_XD  (1ULL << 63)

static uint64_t
bits(unsigned hi, unsigned lo)
{
	return ((hi == 63 ? ~0ULL : (1ULL << (hi + 1)) - 1)) & ~((1ULL << lo) - 1);
}

static bool
canonical(uint64_t va, unsigned levels)
{
	/* 4-level: 48-bit addresses; 5-level: 57-bit (SDM 4.5.1). */
	unsigned top = levels == 5 ? 56 : 47;
	uint64_t high = va & bits(63, top);

	return high == 0 || high == bits(63, top);
}

/* Reserved bits of an entry at level that maps (leaf) or points on. */
static uint64_t
reserved_mask(const struct vmi_as *as, unsigned level, bool leaf)
{
	uint64_t m = 0;

	if (as->maxphyaddr < 52)
		m |= bits(51, as->maxphyaddr);
	if (!as->nxe)
		m |= PTE_XD;
	if (level >= 4)
		m |= PTE_PS;            /* PML4E/PML5E: PS must be 0 */
	else if (leaf && level == 3)
		m |= bits(29, 13);      /* 1 GiB page: bit 12 is PAT */
	else if (leaf && level == 2)
		m |= bits(20, 13);      /* 2 MiB page: bit 12 is PAT */
	return m;
}

int
vmi_as_from_regs(const struct vmi_regs *r, struct vmi_as *as)
{
	*as = (struct vmi_as){ .cr3 = r->cr3, .maxphyaddr = 52 };
	if (!(r->cr0 & VMI_CR0_PG)) {
		as->levels = 0;
		return 0;
	}
	/* 32-bit and PAE paging (SDM 4.1.1) are outside vmistub's scope. */
	if (!(r->cr4 & VMI_CR4_PAE) || !(r->efer & VMI_EFER_LMA))
		return -EOPNOTSUPP;
	as->levels = (r->cr4 & VMI_CR4_LA57) ? 5 : 4;
	as->nxe = (r->efer & VMI_EFER_NXE) != 0;
	return 0;
}

static int
fail(struct vmi_xlate *out, enum vmi_xlate_err err, unsigned level)
{
	out->err = err;
	out->level = (uint8_t)level;
	return -EFAULT;
}

int
vmi_xlate(const struct vmi_as *as, uint64_t va, vmi_read_u64_fn rd,
    void *ctx, struct vmi_xlate *out)
{
	uint64_t table, addr_mask;
	unsigned level;

	*out = (struct vmi_xlate){ .writable = true, .user = true };
	if (as->maxphyaddr != 0 && (as->maxphyaddr < 32 || as->maxphyaddr > 52))
		return -EINVAL;
	if (as->levels == 0) {
		out->gpa = va;
		out->page_size = VMI_PAGE_SIZE;
		return 0;
	}
	if (as->levels != 4 && as->levels != 5)
		return -EINVAL;
	if (!canonical(va, as->levels))
		return fail(out, VMI_XLATE_NONCANONICAL, as->levels);

	struct vmi_as a = *as;
	if (a.maxphyaddr == 0)
		a.maxphyaddr = 52;
	addr_mask = bits(a.maxphyaddr - 1, 12);
	/* CR3 bits 11:0 are PCID or PWT/PCD, never address (SDM 4.5.2). */
	table = a.cr3 & addr_mask;

	for (level = a.levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t idx = (va >> shift) & 511;
		uint64_t e;

		if (rd(ctx, table + idx * 8, &e) != 0)
			return fail(out, VMI_XLATE_READ_FAILED, level);
		out->entries[out->nentries++] = e;
		if (!(e & PTE_P))
			return fail(out, VMI_XLATE_NOT_PRESENT, level);

		bool leaf = level == 1 || (level <= 3 && (e & PTE_PS));
		if (e & reserved_mask(&a, level, leaf))
			return fail(out, VMI_XLATE_RESERVED, level);

		out->writable = out->writable && (e & PTE_RW);
		out->user = out->user && (e & PTE_US);
		out->nx = out->nx || (a.nxe && (e & PTE_XD));

		if (leaf) {
			uint64_t size = 1ULL << shift;

			out->gpa = (e & addr_mask & ~(size - 1)) | (va & (size - 1));
			out->page_size = size;
			out->level = (uint8_t)level;
			return 0;
		}
		table = e & addr_mask;
	}
	return -EINVAL; /* not reached: level 1 is always a leaf */
}

const char *
vmi_xlate_errstr(enum vmi_xlate_err err)
{
	switch (err) {
	case VMI_XLATE_OK:          return "ok";
	case VMI_XLATE_NONCANONICAL: return "non-canonical address";
	case VMI_XLATE_NOT_PRESENT: return "not present";
	case VMI_XLATE_RESERVED:    return "reserved bit set";
	case VMI_XLATE_READ_FAILED: return "table unreadable";
	}
	return "?";
}

const char *
vmi_xlate_levelstr(unsigned level)
{
	static const char *const names[] = {
		"none", "PT", "PD", "PDPT", "PML4", "PML5"
	};

	return level < sizeof(names) / sizeof(names[0]) ? names[level] : "?";
}
