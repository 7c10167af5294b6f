/*
 * test_insn.c - vmi_insn_intercepted: every instruction of the set bare,
 * behind each legacy prefix and behind REX; REX only in 64-bit mode;
 * LOCK, truncation, the 15-byte limit, and near misses that are not in
 * the set.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmi_insn.h"

struct insn {
	const char *name;
	uint8_t b[3];
	unsigned len;
};

/* The set, with the length each has bare (E4-E7: opcode and imm8). */
static const struct insn set[] = {
	{ "cpuid",    { 0x0f, 0xa2 }, 2 },
	{ "rdtsc",    { 0x0f, 0x31 }, 2 },
	{ "rdtscp",   { 0x0f, 0x01, 0xf9 }, 3 },
	{ "in al,ib", { 0xe4, 0x60 }, 2 },
	{ "in ax,ib", { 0xe5, 0x71 }, 2 },
	{ "out ib,al", { 0xe6, 0x80 }, 2 },
	{ "out ib,ax", { 0xe7, 0xed }, 2 },
	{ "in al,dx", { 0xec }, 1 },
	{ "in ax,dx", { 0xed }, 1 },
	{ "out dx,al", { 0xee }, 1 },
	{ "out dx,ax", { 0xef }, 1 },
	{ "insb",     { 0x6c }, 1 },
	{ "insd",     { 0x6d }, 1 },
	{ "outsb",    { 0x6e }, 1 },
	{ "outsd",    { 0x6f }, 1 },
	{ "hlt",      { 0xf4 }, 1 },
	{ "vmcall",   { 0x0f, 0x01, 0xc1 }, 3 },
	{ "vmmcall",  { 0x0f, 0x01, 0xd9 }, 3 },
	{ "wrmsr",    { 0x0f, 0x30 }, 2 },
	{ "rdmsr",    { 0x0f, 0x32 }, 2 },
	{ "xsetbv",   { 0x0f, 0x01, 0xd1 }, 3 },
	{ "invd",     { 0x0f, 0x08 }, 2 },
	{ "wbinvd",   { 0x0f, 0x09 }, 2 },
	{ "monitor",  { 0x0f, 0x01, 0xc8 }, 3 },
	{ "mwait",    { 0x0f, 0x01, 0xc9 }, 3 },
};
#define NSET (sizeof(set) / sizeof(set[0]))

static const uint8_t legacy[] = {
	0x66, 0x67, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65,
};

/* What follows the instruction must never change the answer. */
static const uint8_t tail[] = { 0x90, 0x0f, 0xa2, 0xe4, 0xcc, 0x48 };

static unsigned
decode(const uint8_t *pre, size_t npre, const struct insn *in, bool mode64)
{
	uint8_t b[32];
	size_t n = 0;

	if (npre > 0)
		memcpy(b, pre, npre);
	n = npre;
	memcpy(b + n, in->b, in->len);
	n += in->len;
	memcpy(b + n, tail, sizeof(tail));
	n += sizeof(tail);
	return vmi_insn_intercepted(b, n, mode64);
}

static void
t_bare(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSET; i++) {
		assert_int_equal(decode(NULL, 0, &set[i], false), set[i].len);
		assert_int_equal(decode(NULL, 0, &set[i], true), set[i].len);
		/* Exactly its own bytes are enough. */
		assert_int_equal(vmi_insn_intercepted(set[i].b, set[i].len,
		    true), set[i].len);
	}
}

static void
t_legacy_prefixes(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSET; i++) {
		for (size_t p = 0; p < sizeof(legacy); p++) {
			assert_int_equal(decode(&legacy[p], 1, &set[i], false),
			    set[i].len + 1);
			assert_int_equal(decode(&legacy[p], 1, &set[i], true),
			    set[i].len + 1);
		}
		/* rep outsb with a segment override, and the like. */
		assert_int_equal(decode((const uint8_t *)"\xf3\x2e\x66", 3,
		    &set[i], true), set[i].len + 3);
	}
}

static void
t_rex_only_in_64bit_mode(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSET; i++) {
		for (unsigned rex = 0x40; rex <= 0x4f; rex++) {
			uint8_t r = (uint8_t)rex;

			assert_int_equal(decode(&r, 1, &set[i], true),
			    set[i].len + 1);
			/* Outside 64-bit mode 40-4F are INC/DEC: an
			 * instruction of its own, not in the set. */
			assert_int_equal(decode(&r, 1, &set[i], false), 0);
		}
		/* Mandatory-prefix order (66 then REX), and a REX followed by
		 * a legacy prefix, ignored by the CPU but still a byte. */
		assert_int_equal(decode((const uint8_t *)"\x66\x48", 2, &set[i],
		    true), set[i].len + 2);
		assert_int_equal(decode((const uint8_t *)"\x48\x66", 2, &set[i],
		    true), set[i].len + 2);
	}
}

static void
t_lock_is_not_intercepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSET; i++) {
		assert_int_equal(decode((const uint8_t *)"\xf0", 1, &set[i],
		    true), 0);
		assert_int_equal(decode((const uint8_t *)"\x66\xf0", 2, &set[i],
		    false), 0);
	}
}

static void
t_truncated_and_too_long(void **state)
{
	uint8_t b[VMI_INSN_MAX + 4];

	(void)state;
	for (size_t i = 0; i < NSET; i++)
		for (unsigned n = 0; n < set[i].len; n++)
			assert_int_equal(vmi_insn_intercepted(set[i].b, n, true),
			    0);
	assert_int_equal(vmi_insn_intercepted(NULL, 0, true), 0);
	/* 13 prefixes and cpuid: 15 bytes, the limit. */
	memset(b, 0x66, sizeof(b));
	b[13] = 0x0f;
	b[14] = 0xa2;
	assert_int_equal(vmi_insn_intercepted(b, sizeof(b), false), 15);
	/* 14 prefixes and cpuid: 16 bytes, #GP. */
	b[13] = 0x66;
	b[14] = 0x0f;
	b[15] = 0xa2;
	assert_int_equal(vmi_insn_intercepted(b, sizeof(b), false), 0);
	/* Prefixes only. */
	assert_int_equal(vmi_insn_intercepted(b, 8, true), 0);
}

static void
t_not_in_the_set(void **state)
{
	static const struct {
		uint8_t b[4];
		size_t n;
	} others[] = {
		{ { 0x90 }, 1 },                    /* nop */
		{ { 0xcc }, 1 },                    /* int3 */
		{ { 0xfb }, 1 },                    /* sti */
		{ { 0xfa }, 1 },                    /* cli */
		{ { 0xc3 }, 1 },                    /* ret */
		{ { 0xe8, 0, 0, 0 }, 4 },           /* call rel32 (cut) */
		{ { 0xe3, 0x10 }, 2 },              /* jrcxz, next to E4 */
		{ { 0xeb, 0xfe }, 2 },              /* jmp $ */
		{ { 0x6b, 0xc0, 0x01 }, 3 },        /* imul, next to 6C */
		{ { 0x70, 0x00 }, 2 },              /* jo, next to 6F */
		{ { 0xf5 }, 1 },                    /* cmc, next to F4 */
		{ { 0x0f, 0x0b }, 2 },              /* ud2 */
		{ { 0x0f, 0x05 }, 2 },              /* syscall */
		{ { 0x0f, 0xa1 }, 2 },              /* pop fs, next to cpuid */
		{ { 0x0f, 0xa3, 0xc0 }, 3 },        /* bt */
		{ { 0x0f, 0x33 }, 2 },              /* rdpmc */
		{ { 0x0f, 0x34 }, 2 },              /* sysenter */
		{ { 0x0f, 0x07 }, 2 },              /* sysret */
		{ { 0x0f, 0x0a }, 2 },
		{ { 0x0f, 0x01, 0xf8 }, 3 },        /* swapgs, next to rdtscp */
		{ { 0x0f, 0x01, 0xd0 }, 3 },        /* xgetbv, next to xsetbv */
		{ { 0x0f, 0x01, 0xca }, 3 },        /* clac */
		{ { 0x0f, 0x01, 0xcb }, 3 },        /* stac */
		{ { 0x0f, 0x01, 0xc2 }, 3 },        /* vmlaunch */
		{ { 0x0f, 0x01, 0xd8 }, 3 },        /* vmrun */
		{ { 0x0f, 0x01, 0x38 }, 3 },        /* invlpg [rax] */
		{ { 0x0f, 0x01 }, 2 },              /* cut short */
		{ { 0x0f }, 1 },
		{ { 0x41, 0x90 }, 2 },              /* REX nop */
		{ { 0x40 }, 1 },                    /* inc eax in 32-bit mode */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_int_equal(vmi_insn_intercepted(others[i].b, others[i].n,
		    true), 0);
		assert_int_equal(vmi_insn_intercepted(others[i].b, others[i].n,
		    false), 0);
	}
	/* A prefix does not make a member of something else. */
	assert_int_equal(vmi_insn_intercepted((const uint8_t *)"\xf3\x90", 2,
	    true), 0);                       /* pause */
	assert_int_equal(vmi_insn_intercepted((const uint8_t *)"\x66\x0f\x01\xf8",
	    4, true), 0);
}

/* Every three-byte sequence, in an array of exactly that size (ASan
 * catches a read past it): never longer than what it was given, and
 * nothing but the set is recognised. */
static void
t_every_three_bytes(void **state)
{
	unsigned hits = 0;

	(void)state;
	for (unsigned x = 0; x < (1u << 24); x++) {
		const uint8_t b[3] = { (uint8_t)x, (uint8_t)(x >> 8),
		    (uint8_t)(x >> 16) };

		for (int m = 0; m < 2; m++) {
			unsigned len = vmi_insn_intercepted(b, sizeof(b), m);

			assert_true(len <= sizeof(b));
			hits += len > 0;
		}
	}
	/* Summed over both modes, every member (imm8 free), every run of
	 * prefixes before it (10 legacy, 16 REX more in 64-bit mode) and
	 * every byte after it that still fits in three: sum of
	 * prefixes^k * 256^(3 - k - length). Worked out apart from the
	 * decoder, so that any change to the set shows here. */
	assert_int_equal(hits, 1834028);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_bare),
		cmocka_unit_test(t_legacy_prefixes),
		cmocka_unit_test(t_rex_only_in_64bit_mode),
		cmocka_unit_test(t_lock_is_not_intercepted),
		cmocka_unit_test(t_truncated_and_too_long),
		cmocka_unit_test(t_not_in_the_set),
		cmocka_unit_test(t_every_three_bytes),
	};

	return cmocka_run_group_tests_name("vmi_insn", tests, NULL, NULL);
}
