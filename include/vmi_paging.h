/*
 * vmi_paging.h - x86-64 guest address translation, pure.
 *
 * No session, no driver, no hypervisor: the walk reads page-table entries
 * through a callback, so it runs over a real guest (vmi/session.c passes
 * its mapping cache) or over synthetic tables in a buffer (tests/vmi).
 *
 * Facts cited below are from the Intel SDM vol. 3A ch. 4 ("Paging") and the
 * AMD APM vol. 2 ch. 5 ("Page Translation and Protection"); both vendors
 * agree on every bit used here.
 */
#ifndef VMI_PAGING_H
#define VMI_PAGING_H

#include <stdbool.h>
#include <stdint.h>

struct vmi_regs;

/* CR0/CR4/EFER bits that select the paging mode (SDM 4.1.1). */
#define VMI_CR0_PG      (1ULL << 31)
#define VMI_CR4_PAE     (1ULL << 5)
#define VMI_CR4_LA57    (1ULL << 12)
#define VMI_EFER_LMA    (1ULL << 10)
#define VMI_EFER_NXE    (1ULL << 11)

#define VMI_PAGE_SHIFT  12
#define VMI_PAGE_SIZE   (1ULL << VMI_PAGE_SHIFT)

/*
 * One guest address space: what a walk needs from a vCPU's state.
 * levels is 0 (paging off: virtual == physical), 4 or 5.
 */
struct vmi_as {
	uint64_t cr3;
	uint8_t levels;
	bool nxe;          /* EFER.NXE: else bit 63 of an entry is reserved */
	uint8_t maxphyaddr;/* bits above it in an entry are reserved; 52 if unknown */
};

enum vmi_xlate_err {
	VMI_XLATE_OK = 0,
	VMI_XLATE_NONCANONICAL, /* address bits above 47 (or 56) not a sign extension */
	VMI_XLATE_NOT_PRESENT,  /* P clear at .level */
	VMI_XLATE_RESERVED,     /* a reserved bit set at .level (SDM 4.5.4) */
	VMI_XLATE_READ_FAILED,  /* the entry at .level could not be read */
};

/*
 * The result of a walk. On success gpa/page_size are set and level is the
 * level of the leaf (1 = 4 KiB PTE, 2 = 2 MiB PDE, 3 = 1 GiB PDPTE).
 * On failure err says why and level names the table that failed
 * (5 = PML5, 4 = PML4, 3 = PDPT, 2 = PD, 1 = PT).
 * entries[] holds every entry read, highest level first, for reports.
 */
struct vmi_xlate {
	enum vmi_xlate_err err;
	uint8_t level;
	uint8_t nentries;
	bool writable, user, nx;   /* combined over the walk (SDM 4.6) */
	uint64_t gpa;
	uint64_t page_size;
	uint64_t entries[5];
};

/* Read the 8-byte entry at guest physical address gpa; 0 or -errno. */
typedef int (*vmi_read_u64_fn)(void *ctx, uint64_t gpa, uint64_t *val);

/*
 * The address space a vCPU's registers describe. Returns -EOPNOTSUPP for
 * 32-bit protected mode with paging (2- and 3-level legacy modes), which
 * vmistub does not translate: it debugs 64-bit kernels and the boot code
 * before paging is enabled.
 */
int vmi_as_from_regs(const struct vmi_regs *r, struct vmi_as *as);

/*
 * Walk the tables for va. Returns 0 with out->gpa set, -EFAULT when the
 * address does not translate (out->err and out->level say why and where),
 * or -EINVAL for a malformed as.
 */
int vmi_xlate(const struct vmi_as *as, uint64_t va, vmi_read_u64_fn rd,
    void *ctx, struct vmi_xlate *out);

/* "not present at PD (level 2)", for logs and the probe's JSON. */
const char *vmi_xlate_errstr(enum vmi_xlate_err err);
const char *vmi_xlate_levelstr(unsigned level);

#endif
