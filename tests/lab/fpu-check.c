/*
 * fpu-check SECONDS: watches for lost vector-register state in dom0.
 *
 * QEMU's nested SVM lost a PV dom0's XMM registers across Xen's lazy FPU
 * switching once HVM guests ran (tests/lab/README.md, "Known
 * instability"): processes saw other contexts' values in their registers.
 * This program holds known values in every XMM register across a
 * sched_yield() system call (nothing in the kernel may change them: only
 * a context switch saves and restores them) and checks that memcpy, whose
 * glibc routine moves data through those registers, copies exactly. Run
 * two at once so each yield really switches.
 *
 * Prints one line of JSON: rounds, register rounds that came back changed,
 * copies that came back different, and the first difference seen.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#define XMM_REGS 16
#define COPY_BYTES 4096

/* Called through a pointer so that gcc neither inlines the copy (it would
 * use rep movsq, no vector registers) nor assumes its result. */
static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

static uint64_t
next_random(uint64_t *state)
{
	/* xorshift64: different values every round, cheap. */
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Load xmm0-15 from in, yield, store them to out, in one asm block so the
 * compiler cannot spill or reuse them. */
static void
xmm_across_yield(const uint64_t in[2 * XMM_REGS], uint64_t out[2 * XMM_REGS])
{
	long nr = SYS_sched_yield;

	__asm__ volatile(
	    "movdqu 0x00(%[in]), %%xmm0\n\t"
	    "movdqu 0x10(%[in]), %%xmm1\n\t"
	    "movdqu 0x20(%[in]), %%xmm2\n\t"
	    "movdqu 0x30(%[in]), %%xmm3\n\t"
	    "movdqu 0x40(%[in]), %%xmm4\n\t"
	    "movdqu 0x50(%[in]), %%xmm5\n\t"
	    "movdqu 0x60(%[in]), %%xmm6\n\t"
	    "movdqu 0x70(%[in]), %%xmm7\n\t"
	    "movdqu 0x80(%[in]), %%xmm8\n\t"
	    "movdqu 0x90(%[in]), %%xmm9\n\t"
	    "movdqu 0xa0(%[in]), %%xmm10\n\t"
	    "movdqu 0xb0(%[in]), %%xmm11\n\t"
	    "movdqu 0xc0(%[in]), %%xmm12\n\t"
	    "movdqu 0xd0(%[in]), %%xmm13\n\t"
	    "movdqu 0xe0(%[in]), %%xmm14\n\t"
	    "movdqu 0xf0(%[in]), %%xmm15\n\t"
	    "syscall\n\t"
	    "movdqu %%xmm0, 0x00(%[out])\n\t"
	    "movdqu %%xmm1, 0x10(%[out])\n\t"
	    "movdqu %%xmm2, 0x20(%[out])\n\t"
	    "movdqu %%xmm3, 0x30(%[out])\n\t"
	    "movdqu %%xmm4, 0x40(%[out])\n\t"
	    "movdqu %%xmm5, 0x50(%[out])\n\t"
	    "movdqu %%xmm6, 0x60(%[out])\n\t"
	    "movdqu %%xmm7, 0x70(%[out])\n\t"
	    "movdqu %%xmm8, 0x80(%[out])\n\t"
	    "movdqu %%xmm9, 0x90(%[out])\n\t"
	    "movdqu %%xmm10, 0xa0(%[out])\n\t"
	    "movdqu %%xmm11, 0xb0(%[out])\n\t"
	    "movdqu %%xmm12, 0xc0(%[out])\n\t"
	    "movdqu %%xmm13, 0xd0(%[out])\n\t"
	    "movdqu %%xmm14, 0xe0(%[out])\n\t"
	    "movdqu %%xmm15, 0xf0(%[out])\n\t"
	    : "+a"(nr)
	    : [in] "r"(in), [out] "r"(out)
	    : "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
	      "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
	      "xmm12", "xmm13", "xmm14", "xmm15");
}

int
main(int argc, char **argv)
{
	static unsigned char src[COPY_BYTES], dst[COPY_BYTES];
	uint64_t in[2 * XMM_REGS], out[2 * XMM_REGS];
	uint64_t seed = 0x9e3779b97f4a7c15ull, rounds = 0;
	uint64_t bad_regs = 0, bad_copies = 0;
	char first[160] = "";
	time_t end;

	if (argc != 2) {
		fprintf(stderr, "usage: fpu-check SECONDS\n");
		return 2;
	}
	end = time(NULL) + atol(argv[1]);
	while (time(NULL) < end) {
		for (unsigned i = 0; i < 2 * XMM_REGS; i++)
			in[i] = next_random(&seed);
		xmm_across_yield(in, out);
		for (unsigned i = 0; i < 2 * XMM_REGS; i++) {
			if (in[i] == out[i])
				continue;
			if (bad_regs++ == 0)
				snprintf(first, sizeof(first),
				    "xmm%u: wrote %#" PRIx64 ", read %#" PRIx64,
				    i / 2, in[i], out[i]);
			break;
		}
		for (unsigned i = 0; i < COPY_BYTES; i += 8) {
			uint64_t v = next_random(&seed);
			memcpy(src + i, &v, 8);
		}
		copy(dst, src, COPY_BYTES);
		if (memcmp(dst, src, COPY_BYTES) != 0 && bad_copies++ == 0 &&
		    first[0] == '\0')
			snprintf(first, sizeof(first), "memcpy of %d bytes differs",
			    COPY_BYTES);
		rounds++;
	}
	printf("{\"rounds\": %" PRIu64 ", \"bad_registers\": %" PRIu64
	       ", \"bad_copies\": %" PRIu64 ", \"first\": \"%s\"}\n",
	    rounds, bad_regs, bad_copies, first);
	return bad_regs || bad_copies ? 1 : 0;
}
