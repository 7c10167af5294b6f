/*
 * test_paging.c - vmi_xlate() over synthetic page tables in a buffer:
 * every paging mode, page size and failure, each checked against an
 * address computed by hand from the SDM's layout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmi.h"
#include "vmi_paging.h"

#define FRAMES 256
#define P   0x1ULL
#define RW  0x2ULL
#define US  0x4ULL
#define PS  0x80ULL
#define XD  (1ULL << 63)
#define TBL (P | RW | US)

static uint64_t mem[FRAMES * 512];

static int
rd(void *ctx, uint64_t gpa, uint64_t *val)
{
	(void)ctx;
	if (gpa % 8 != 0 || gpa / 8 >= FRAMES * 512)
		return -EFAULT;
	*val = mem[gpa / 8];
	return 0;
}

static void
set(unsigned frame, unsigned idx, uint64_t e)
{
	mem[frame * 512 + idx] = e;
}

static unsigned
ix(uint64_t va, unsigned level)
{
	return (unsigned)((va >> (12 + 9 * (level - 1))) & 511);
}

static uint64_t
fa(unsigned frame)
{
	return (uint64_t)frame << 12;
}

/* Kernel-half address, distinct index at each level. */
static const uint64_t VA4 = 0xffff8881234a5b6cULL;
/* 5-level: bits 56:48 carry the PML5 index, sign-extended from bit 56. */
static const uint64_t VA5 = 0xff5a8881234a5b6cULL;

static int
setup(void **state)
{
	(void)state;
	memset(mem, 0, sizeof(mem));
	return 0;
}

/* PML5 at 1 (if 5-level), PML4 at 2, PDPT 3, PD 4, PT 5. */
static void
build(uint64_t va, unsigned levels, unsigned leaf_level, uint64_t leaf)
{
	unsigned frame = levels == 5 ? 1 : 2;

	for (unsigned l = levels; l > leaf_level; l--) {
		unsigned next = 7 - l;  /* l=5 -> 2, 4 -> 3, 3 -> 4, 2 -> 5 */

		set(frame, ix(va, l), fa(next) | TBL);
		frame = next;
	}
	set(frame, ix(va, leaf_level), leaf);
}

static struct vmi_as
as_of(unsigned levels)
{
	return (struct vmi_as){ .cr3 = fa(levels == 5 ? 1 : 2), .levels =
	    (uint8_t)levels, .nxe = true, .maxphyaddr = 52 };
}

static void
expect_ok(unsigned levels, uint64_t va, uint64_t gpa, uint64_t size,
    unsigned leaf_level)
{
	struct vmi_as as = as_of(levels);
	struct vmi_xlate x;

	assert_int_equal(vmi_xlate(&as, va, rd, NULL, &x), 0);
	assert_int_equal(x.err, VMI_XLATE_OK);
	assert_int_equal(x.gpa, gpa);
	assert_int_equal(x.page_size, size);
	assert_int_equal(x.level, leaf_level);
	assert_int_equal(x.nentries, levels - leaf_level + 1);
}

static void
expect_fail(const struct vmi_as *as, uint64_t va, enum vmi_xlate_err err,
    unsigned level)
{
	struct vmi_xlate x;

	assert_int_equal(vmi_xlate(as, va, rd, NULL, &x), -EFAULT);
	assert_int_equal(x.err, err);
	assert_int_equal(x.level, level);
}

static void
t_4level_4k(void **state)
{
	(void)state;
	build(VA4, 4, 1, fa(0x42) | TBL);
	expect_ok(4, VA4, fa(0x42) | (VA4 & 0xfff), 4096, 1);
}

static void
t_4level_2m(void **state)
{
	(void)state;
	/* Bit 12 is PAT in a large-page entry, not an address bit. */
	build(VA4, 4, 2, 0x40000000ULL | 0x1000 | PS | TBL);
	expect_ok(4, VA4, 0x40000000ULL | (VA4 & 0x1fffff), 2 << 20, 2);
}

static void
t_4level_1g(void **state)
{
	(void)state;
	build(VA4, 4, 3, 0x80000000ULL | PS | TBL);
	expect_ok(4, VA4, 0x80000000ULL | (VA4 & 0x3fffffff), 1 << 30, 3);
}

static void
t_5level_all_sizes(void **state)
{
	(void)state;
	build(VA5, 5, 1, fa(0x77) | TBL);
	expect_ok(5, VA5, fa(0x77) | (VA5 & 0xfff), 4096, 1);
	setup(NULL);
	build(VA5, 5, 2, 0x200000ULL * 9 | PS | TBL);
	expect_ok(5, VA5, 0x200000ULL * 9 | (VA5 & 0x1fffff), 2 << 20, 2);
	setup(NULL);
	build(VA5, 5, 3, (1ULL << 30) * 5 | PS | TBL);
	expect_ok(5, VA5, (1ULL << 30) * 5 | (VA5 & 0x3fffffff), 1 << 30, 3);
}

static void
t_paging_off(void **state)
{
	struct vmi_as as = { .levels = 0 };
	struct vmi_xlate x;

	(void)state;
	assert_int_equal(vmi_xlate(&as, 0x123456789, rd, NULL, &x), 0);
	assert_int_equal(x.gpa, 0x123456789);
	assert_int_equal(x.nentries, 0);
}

static void
t_noncanonical(void **state)
{
	struct vmi_as as4 = as_of(4), as5 = as_of(5);
	uint64_t va = 0x0000800000000000ULL; /* bit 47 set, 63:48 clear */

	(void)state;
	expect_fail(&as4, va, VMI_XLATE_NONCANONICAL, 4);
	expect_fail(&as4, 0xfffe000000000000ULL, VMI_XLATE_NONCANONICAL, 4);
	/* Canonical with 57-bit addresses: the walk goes on and meets an
	 * empty PML5. */
	expect_fail(&as5, va, VMI_XLATE_NOT_PRESENT, 5);
	expect_fail(&as5, 0x0100000000000000ULL, VMI_XLATE_NONCANONICAL, 5);
	/* VA4 is canonical for 4 levels but not for 5 (bits 63:57 set,
	 * bit 56 clear). */
	expect_fail(&as5, 0xfe00000000000000ULL, VMI_XLATE_NONCANONICAL, 5);
}

static void
t_not_present_each_level(void **state)
{
	(void)state;
	for (unsigned levels = 4; levels <= 5; levels++) {
		uint64_t va = levels == 5 ? VA5 : VA4;
		struct vmi_as as = as_of(levels);

		for (unsigned fail_at = levels; fail_at >= 1; fail_at--) {
			setup(NULL);
			build(va, levels, 1, fa(0x42) | TBL);
			/* Clear P at fail_at, keep the rest of the entry. */
			unsigned frame = levels == 5 ? 1 : 2;
			for (unsigned l = levels; l > fail_at; l--)
				frame = 7 - l;
			mem[frame * 512 + ix(va, fail_at)] &= ~P;
			expect_fail(&as, va, VMI_XLATE_NOT_PRESENT, fail_at);
		}
	}
}

static void
t_reserved_ps_in_pml4_pml5(void **state)
{
	struct vmi_as as4 = as_of(4), as5 = as_of(5);

	(void)state;
	build(VA4, 4, 1, fa(0x42) | TBL);
	mem[2 * 512 + ix(VA4, 4)] |= PS;
	expect_fail(&as4, VA4, VMI_XLATE_RESERVED, 4);
	setup(NULL);
	build(VA5, 5, 1, fa(0x42) | TBL);
	mem[1 * 512 + ix(VA5, 5)] |= PS;
	expect_fail(&as5, VA5, VMI_XLATE_RESERVED, 5);
}

static void
t_reserved_large_page_bits(void **state)
{
	struct vmi_as as = as_of(4);

	(void)state;
	/* 1 GiB: bits 29:13 reserved. */
	build(VA4, 4, 3, 0x80000000ULL | (1ULL << 13) | PS | TBL);
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 3);
	setup(NULL);
	build(VA4, 4, 3, 0x80000000ULL | (1ULL << 29) | PS | TBL);
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 3);
	/* 2 MiB: bits 20:13 reserved. */
	setup(NULL);
	build(VA4, 4, 2, 0x40000000ULL | (1ULL << 20) | PS | TBL);
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 2);
	/* A 4 KiB PTE has no such bits: bit 13 is address. */
	setup(NULL);
	build(VA4, 4, 1, fa(0x42) | (1ULL << 13) | TBL);
	expect_ok(4, VA4, fa(0x42) | (1ULL << 13) | (VA4 & 0xfff), 4096, 1);
}

static void
t_reserved_maxphyaddr_and_xd(void **state)
{
	struct vmi_as as = as_of(4);
	struct vmi_xlate x;

	(void)state;
	as.maxphyaddr = 40;
	build(VA4, 4, 1, fa(0x42) | (1ULL << 45) | TBL);
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 1);
	/* The same bit in a PD entry fails at the PD. */
	setup(NULL);
	build(VA4, 4, 1, fa(0x42) | TBL);
	mem[4 * 512 + ix(VA4, 2)] |= 1ULL << 41;
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 2);
	/* XD is reserved unless EFER.NXE. */
	setup(NULL);
	build(VA4, 4, 1, fa(0x42) | XD | TBL);
	as = as_of(4);
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), 0);
	assert_true(x.nx);
	as.nxe = false;
	expect_fail(&as, VA4, VMI_XLATE_RESERVED, 1);
}

static void
t_read_failure_names_level(void **state)
{
	struct vmi_as as = as_of(4);

	(void)state;
	build(VA4, 4, 1, fa(0x42) | TBL);
	/* The PD entry points at a PT beyond the buffer. */
	mem[4 * 512 + ix(VA4, 2)] = fa(FRAMES + 10) | TBL;
	expect_fail(&as, VA4, VMI_XLATE_READ_FAILED, 1);
	as.cr3 = fa(FRAMES + 1);
	expect_fail(&as, VA4, VMI_XLATE_READ_FAILED, 4);
}

static void
t_permissions_combine(void **state)
{
	struct vmi_as as = as_of(4);
	struct vmi_xlate x;

	(void)state;
	build(VA4, 4, 1, fa(0x42) | TBL);
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), 0);
	assert_true(x.writable && x.user && !x.nx);
	mem[3 * 512 + ix(VA4, 3)] &= ~RW;   /* PDPT read-only */
	mem[5 * 512 + ix(VA4, 1)] &= ~US;   /* PTE supervisor */
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), 0);
	assert_false(x.writable);
	assert_false(x.user);
	assert_int_equal(x.entries[0], fa(3) | TBL);
}

static void
t_cr3_low_bits_ignored(void **state)
{
	struct vmi_as as = as_of(4);
	struct vmi_xlate x;

	(void)state;
	build(VA4, 4, 1, fa(0x42) | TBL);
	as.cr3 |= 0x5a5;       /* a PCID */
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), 0);
	assert_int_equal(x.gpa, fa(0x42) | (VA4 & 0xfff));
}

static void
t_malformed_as(void **state)
{
	struct vmi_as as = as_of(4);
	struct vmi_xlate x;

	(void)state;
	as.levels = 3;
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), -EINVAL);
	as = as_of(4);
	as.maxphyaddr = 60;
	assert_int_equal(vmi_xlate(&as, VA4, rd, NULL, &x), -EINVAL);
}

static void
t_as_from_regs(void **state)
{
	struct vmi_regs r = { 0 };
	struct vmi_as as;

	(void)state;
	r.cr3 = 0x1234000;
	assert_int_equal(vmi_as_from_regs(&r, &as), 0);
	assert_int_equal(as.levels, 0);
	r.cr0 = VMI_CR0_PG;           /* 32-bit paging */
	assert_int_equal(vmi_as_from_regs(&r, &as), -EOPNOTSUPP);
	r.cr4 = VMI_CR4_PAE;          /* PAE, legacy mode */
	assert_int_equal(vmi_as_from_regs(&r, &as), -EOPNOTSUPP);
	r.efer = VMI_EFER_LMA;
	assert_int_equal(vmi_as_from_regs(&r, &as), 0);
	assert_int_equal(as.levels, 4);
	assert_false(as.nxe);
	assert_int_equal(as.cr3, 0x1234000);
	r.cr4 |= VMI_CR4_LA57;
	r.efer |= VMI_EFER_NXE;
	assert_int_equal(vmi_as_from_regs(&r, &as), 0);
	assert_int_equal(as.levels, 5);
	assert_true(as.nxe);
}

static void
t_names(void **state)
{
	(void)state;
	assert_string_equal(vmi_xlate_levelstr(2), "PD");
	assert_string_equal(vmi_xlate_levelstr(5), "PML5");
	assert_string_equal(vmi_xlate_errstr(VMI_XLATE_RESERVED),
	    "reserved bit set");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(t_4level_4k, setup),
		cmocka_unit_test_setup(t_4level_2m, setup),
		cmocka_unit_test_setup(t_4level_1g, setup),
		cmocka_unit_test_setup(t_5level_all_sizes, setup),
		cmocka_unit_test_setup(t_paging_off, setup),
		cmocka_unit_test_setup(t_noncanonical, setup),
		cmocka_unit_test_setup(t_not_present_each_level, setup),
		cmocka_unit_test_setup(t_reserved_ps_in_pml4_pml5, setup),
		cmocka_unit_test_setup(t_reserved_large_page_bits, setup),
		cmocka_unit_test_setup(t_reserved_maxphyaddr_and_xd, setup),
		cmocka_unit_test_setup(t_read_failure_names_level, setup),
		cmocka_unit_test_setup(t_permissions_combine, setup),
		cmocka_unit_test_setup(t_cr3_low_bits_ignored, setup),
		cmocka_unit_test_setup(t_malformed_as, setup),
		cmocka_unit_test_setup(t_as_from_regs, setup),
		cmocka_unit_test_setup(t_names, setup),
	};

	return cmocka_run_group_tests_name("vmi_paging", tests, NULL, NULL);
}
